import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import activations
from official.detection.modeling.layers.batch_norm import BatchNormActivation
from official.detection.testing import lanes

# Two examples of a 2x2 map with 2 channels; channel 1 is a negative copy of channel 0.
_X = np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1)
_X = np.concatenate([_X, -_X], axis=-1)


def _run(layer, is_training, **call_kwargs):
    """Returns (output, moving_mean after one step, variable names, #update ops)."""
    with tf.Graph().as_default():
        x = tf.constant(_X)
        y = layer(x, is_training=is_training, **call_kwargs)
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        names = {
            "trainable": [v.op.name for v in tf.trainable_variables()],
            "global": [v.op.name for v in tf.global_variables()],
        }
        moving_mean = [v for v in tf.global_variables() if "moving_mean" in v.op.name][0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            out, _ = sess.run([y, updates])
            mean = sess.run(moving_mean)
    return out, mean, names, len(updates)


def test_training_normalizes_with_batch_statistics_and_updates_moving_mean():
    layer = BatchNormActivation(momentum=0.9, epsilon=0.5, activation="relu")
    out, moving_mean, names, num_updates = _run(layer, True, apply_activation=False)
    batch_mean = _X.mean(axis=(0, 1, 2))
    batch_var = _X.var(axis=(0, 1, 2))
    expected = (_X - batch_mean) / np.sqrt(batch_var + 0.5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # moving_mean starts at 0: 0.9 * 0 + 0.1 * batch_mean.
    np.testing.assert_allclose(moving_mean, 0.1 * batch_mean, rtol=1e-5)
    assert num_updates == 2
    assert names["trainable"] == ["batch_normalization/gamma", "batch_normalization/beta"]
    assert names["global"] == [
        "batch_normalization/gamma",
        "batch_normalization/beta",
        "batch_normalization/moving_mean",
        "batch_normalization/moving_variance",
    ]


def test_eval_uses_moving_statistics_and_applies_activation():
    layer = BatchNormActivation(epsilon=1e-4, activation="relu")
    out, moving_mean, _, num_updates = _run(layer, False)
    # Fresh moving mean 0 and variance 1: y = relu(x / sqrt(1 + eps)).
    np.testing.assert_allclose(out, np.maximum(_X, 0) / np.sqrt(1 + 1e-4), rtol=1e-5)
    np.testing.assert_array_equal(moving_mean, [0.0, 0.0])
    assert num_updates == 0


def test_swish_activation():
    layer = BatchNormActivation(activation="swish")
    out, _, _, _ = _run(layer, False)
    z = _X / np.sqrt(1 + 1e-4)
    np.testing.assert_allclose(out, z / (1 + np.exp(-z)), rtol=1e-5, atol=1e-6)


def test_frozen_layer_uses_moving_statistics_in_training_and_has_no_trainable_variables():
    layer = BatchNormActivation(trainable=False)
    out, moving_mean, names, num_updates = _run(layer, True, apply_activation=False)
    np.testing.assert_allclose(out, _X / np.sqrt(1 + 1e-4), rtol=1e-5)
    np.testing.assert_array_equal(moving_mean, [0.0, 0.0])
    assert num_updates == 0
    assert names["trainable"] == []
    assert len(names["global"]) == 4


def test_sync_bn_maps_to_the_same_layer_and_names():
    plain = _run(BatchNormActivation(), True)
    synced = _run(BatchNormActivation(use_sync_bn=True), True)
    np.testing.assert_allclose(plain[0], synced[0])
    assert plain[2] == synced[2]


@lanes.skip_on_tf1("its CPU FusedBatchNorm kernel takes NHWC only (NCHW runs on GPUs)")
def test_channels_first_normalizes_axis_1():
    layer = BatchNormActivation(data_format="channels_first", epsilon=0.5)
    with tf.Graph().as_default():
        x = tf.constant(np.transpose(_X, [0, 3, 1, 2]))
        y = layer(x, is_training=True, apply_activation=False)
        assert [v.shape.as_list() for v in tf.trainable_variables()] == [[2], [2]]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            out = sess.run(y)
    expected = (_X - _X.mean(axis=(0, 1, 2))) / np.sqrt(_X.var(axis=(0, 1, 2)) + 0.5)
    np.testing.assert_allclose(out, np.transpose(expected, [0, 3, 1, 2]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"momentum": 1.0}, r"batch_norm_momentum must be in \[0, 1\); got 1.0"),
        ({"epsilon": 0.0}, r"batch_norm_epsilon must be > 0; got 0.0"),
        (
            {"activation": "gelu"},
            r"activation: unknown name 'gelu'; valid names: \['relu', 'swish'\]",
        ),
        ({"data_format": "NHWC"}, r"data_format must be one of .*channels_last.*; got 'NHWC'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNormActivation(**kwargs)


def test_get_activation_table():
    assert activations.get_activation("relu") is tf.nn.relu
    # Same values as tf.nn.swish with a cheaper gradient (activations_test.py).
    assert activations.get_activation("swish") is activations.swish
