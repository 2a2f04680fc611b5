"""When the CPU kernels apply, and that a model trains the same with them."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection import tf_compat
from official.detection.configs import loader
from official.detection.modeling.layers import cpu_kernels, functional
from official.detection.testing import graph_building


@pytest.mark.parametrize(
    "shape, kernel, strides, padding, expected",
    [
        ([2, 16, 16, 256], (3, 3), (1, 1), "same", True),  # 512 positions, 256 channels
        ([2, 16, 16, 128], (3, 3), (1, 1), "same", None),  # 128 channels: oneDNN only
        ([1, 32, 32, 256], (3, 3), (1, 1), "SAME", True),
        ([2, 8, 8, 256], (3, 3), (1, 1), "same", False),  # too few positions
        ([2, 32, 32, 64], (3, 3), (1, 1), "same", False),  # too few channels
        ([2, 32, 32, 256], (3, 3), (2, 2), "same", False),
        ([2, 32, 32, 256], (1, 1), (1, 1), "same", False),
        ([2, 32, 32, 256], (3, 3), (1, 1), "valid", False),
        ([None, 32, 32, 256], (3, 3), (1, 1), "same", False),
    ],
)
def test_which_convolutions_run_as_winograd(shape, kernel, strides, padding, expected):
    if expected is None:
        expected = tf_compat.onednn_enabled()
    with tf.Graph().as_default():
        inputs = tf.placeholder(tf.float32, shape)
        assert not cpu_kernels.use_winograd(inputs, kernel, strides, padding, "channels_last")
        with cpu_kernels.cpu_kernels():
            got = cpu_kernels.use_winograd(inputs, kernel, strides, padding, "channels_last")
            assert cpu_kernels.active()
        assert not cpu_kernels.active()
    assert got is expected


def test_winograd_channels_follow_the_kernels_tensorflow_runs():
    # Against Eigen's direct convolutions (TensorFlow 1.15) Winograd pays from 256
    # channels; against oneDNN's from 128.
    expected = 128 if tf_compat.onednn_enabled() else 256
    assert cpu_kernels.winograd_min_channels() == expected
    if tf_compat.IS_TF1:
        assert cpu_kernels.winograd_min_channels() == 256


@pytest.fixture
def winograd_from_128(monkeypatch):
    """Winograd on the 128-channel layers of the small test models, on both lanes."""
    monkeypatch.setattr(cpu_kernels, "winograd_min_channels", lambda: 128)


def test_disabled_context_changes_nothing():
    with tf.Graph().as_default() as graph:
        with cpu_kernels.cpu_kernels(enabled=False):
            functional.conv2d(tf.zeros([2, 16, 16, 128]), 8, 3, padding="same")
    assert "Conv2D" in {op.type for op in graph.get_operations()}
    assert graph._gradient_override_map == {}


def _model_fn(features, labels, mode, params):
    """A tiny model_fn whose layers qualify for the CPU kernels but cannot use them."""
    del labels, params
    with tf.variable_scope("net"):
        dynamic = functional.conv2d(features, 128, 3, padding="same", name="dynamic")
        half = functional.conv2d(tf.cast(dynamic, tf.float16), 128, 3, padding="same")
        norm = functional.batch_normalization(features[..., :3], training=True)
    loss = tf.reduce_sum(tf.cast(half, tf.float32)) + tf.reduce_sum(norm)
    return tf.gradients(loss, tf.trainable_variables()), mode


def test_fallbacks_are_logged_once_with_their_reason(monkeypatch, winograd_from_128):
    logged = []
    monkeypatch.setattr(tf.logging, "info", lambda text, *args: logged.append(text % args))
    model_fn = cpu_kernels.wrap_model_fn(_model_fn)
    for _ in range(2):  # as Estimator builds a graph per train() call
        with tf.Graph().as_default() as graph:
            model_fn(tf.placeholder(tf.float32, [None, 16, 16, 128]), None, "train", None)
        assert graph._gradient_override_map == {}
    assert logged == [
        "CPU kernels: 5 layer(s) or gradient(s) keep TensorFlow's kernels; "
        "Winograd convolution needs static shapes, got [None, 16, 16, 128]: 1 (net/dynamic); "
        "Winograd convolution needs float32, got float16: 1 (net/conv2d); "
        "written-out batch norm needs static shapes, got [None, 16, 16, 3]: 1 "
        "(net/batch_normalization); "
        "GEMM filter gradient needs static shapes, got [None, 16, 16, 128]: 2 "
        "(net/conv2d/Conv2D, net/dynamic/Conv2D) (train graph)"
    ]


def test_no_fallback_is_no_log_line(monkeypatch, winograd_from_128):
    logged = []
    monkeypatch.setattr(tf.logging, "info", lambda text, *args: logged.append(text % args))

    def model_fn(features, labels, mode, params):
        outputs = functional.conv2d(features, 8, 3, padding="same")
        return tf.gradients(tf.reduce_sum(outputs), tf.trainable_variables())

    with tf.Graph().as_default() as graph:
        cpu_kernels.wrap_model_fn(model_fn)(tf.zeros([2, 16, 16, 128]), None, "train", None)
    assert logged == []
    assert "BatchMatMulV2" in {op.type for op in graph.get_operations()}


def _train_values(params, cpu_kernels, initial=None):
    """Total loss and gradient norms of one training graph, from given variable values."""
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        spec = graph_building.build_training_graph(
            params, batch_size=2, image_size=(128, 128), cpu_kernels=cpu_kernels
        )
        variables = tf.trainable_variables()
        grads = tf.gradients(spec.loss, variables)
        op_types = {op.type for op in graph.get_operations()}
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            if initial is not None:
                for var in variables:
                    var.load(initial[var.op.name], sess)
            values = dict(zip([v.op.name for v in variables], sess.run(variables)))
            loss, grad_values = sess.run([spec.loss, grads])
    named = {v.op.name: g for v, g in zip(variables, grad_values) if g is not None}
    return values, loss, named, op_types


def test_retinanet_loss_and_gradients_do_not_change(winograd_from_128):
    params = loader.load_config(
        "retinanet",
        params_override={
            "architecture": {"num_classes": 3, "max_level": 5},
            "resnet": {"resnet_depth": 18},
            "retinanet_head": {"num_filters": 128, "num_convs": 2},
            "fpn": {"fpn_feat_dims": 128},
            "retinanet_parser": {"output_size": [128, 128]},
        },
    )
    initial, loss, grads, op_types = _train_values(params, cpu_kernels=False)
    _, fast_loss, fast_grads, fast_op_types = _train_values(params, True, initial)
    # Level 3 is 16x16 at 128x128: 512 positions of 128 channels in the head and FPN.
    assert "BatchMatMulV2" in fast_op_types and "BatchMatMulV2" not in op_types
    np.testing.assert_allclose(fast_loss, loss, rtol=1e-5)
    assert fast_grads.keys() == grads.keys()
    # Gradients of this small network are sensitive: scaling the input images by
    # 1 + 1e-6 moves the kernels' gradients by about 1% with TensorFlow's own
    # kernels. A wrong gradient is off by far more than that.
    for name, grad in grads.items():
        if np.linalg.norm(grad) < 1e-8:
            continue  # a bias followed by batch norm: zero up to rounding noise
        error = np.linalg.norm(fast_grads[name] - grad) / np.linalg.norm(grad)
        assert error < 0.05, (name, error)
    every = np.concatenate([g.ravel() for g in grads.values()])
    fast_every = np.concatenate([fast_grads[name].ravel() for name in grads])
    assert np.linalg.norm(fast_every - every) / np.linalg.norm(every) < 0.02
