"""The functional layers against `tf.compat.v1.layers`: same variables (names,
order, shapes, dtypes, flags, collections), same outputs, gradients and
moving-average updates."""

import types

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import functional

KERAS_LAYERS = types.SimpleNamespace(
    conv2d=tf.layers.conv2d,
    separable_conv2d=tf.layers.separable_conv2d,
    batch_normalization=lambda inputs, **kwargs: tf.layers.batch_normalization(
        inputs, fused=True, **kwargs
    ),
    max_pooling2d=tf.layers.max_pooling2d,
    dense=tf.layers.dense,
)

_SHAPE = [2, 8, 8, 3]


def _network(layers, images, training):
    """Auto-named, named, shared (AUTO_REUSE), frozen and re-opened scopes."""
    bn = dict(momentum=0.9, epsilon=1e-3, training=training)
    with tf.variable_scope("net"):
        net = layers.conv2d(
            images,
            4,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=tf.variance_scaling_initializer(),
        )
        net = tf.nn.relu(layers.batch_normalization(net, **bn))
        net = layers.conv2d(net, 5, (3, 3), strides=(2, 2), padding="valid")
        net = layers.batch_normalization(net, momentum=0.9, training=False, trainable=False)
        net = layers.max_pooling2d(net, pool_size=2, strides=1, padding="same")
    with tf.variable_scope("other"):
        net = layers.conv2d(net, 5, 1, padding="same")
        with tf.variable_scope("inner"):
            net = layers.conv2d(net, 5, 1, padding="same")
        net = layers.conv2d(net, 6, 1, padding="same", activation=tf.nn.relu)
    outputs = []
    for level in (0, 1):
        with tf.variable_scope("shared", reuse=tf.AUTO_REUSE):
            shared = layers.conv2d(
                net,
                6,
                (3, 3),
                padding="same",
                kernel_initializer=tf.random_normal_initializer(stddev=0.01),
                bias_initializer=tf.constant_initializer(-2.0),
                name="shared-0",
            )
            shared = layers.batch_normalization(shared, name=f"shared-0-{level}", **bn)
            shared = layers.separable_conv2d(
                shared, 7, (3, 3), padding="same", depth_multiplier=1, name="predict"
            )
        outputs.append(shared)
    net = tf.reshape(tf.concat(outputs, axis=-1), [_SHAPE[0], -1])
    with tf.variable_scope("fcs"):
        fc = layers.dense(net, 8, activation=tf.nn.relu, name="fc6")
        fc = layers.dense(fc, 5)
        fc = layers.dense(fc, 3, kernel_initializer=tf.random_normal_initializer(stddev=0.01))
    return tf.concat([net, fc], axis=1)


def _describe(variables):
    return [
        (v.op.name, v.shape.as_list(), v.dtype.base_dtype.name, str(v.synchronization))
        for v in variables
    ]


def _build(layers, training):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, _SHAPE)
        outputs = _network(layers, images, training)
        loss = tf.reduce_sum(tf.square(outputs))
        trainable = tf.trainable_variables()
        grads = tf.gradients(loss, trainable)
        summary = dict(
            global_=_describe(tf.global_variables()),
            trainable=_describe(trainable),
            num_updates=len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)),
            collections={
                key: len(graph.get_collection(key))
                for key in graph.get_all_collection_keys()
                if graph.get_collection(key)
            },
        )
    return graph, images, outputs, grads, summary


@pytest.mark.parametrize("training", [True, False])
def test_variables_outputs_gradients_and_updates_equal_tf_layers(training):
    ref_graph, ref_images, ref_out, ref_grads, ref_summary = _build(KERAS_LAYERS, training)
    graph, images, out, grads, summary = _build(functional, training)
    assert summary == ref_summary
    assert summary["num_updates"] == (6 if training else 0)
    assert [name for name, *_ in summary["trainable"]][:3] == [
        "net/conv2d/kernel",
        "net/batch_normalization/gamma",
        "net/batch_normalization/beta",
    ]
    assert "other/conv2d_1/kernel" in [name for name, *_ in summary["global_"]]

    x = np.random.RandomState(0).randn(*_SHAPE).astype(np.float32)
    with graph.as_default(), tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = {v.op.name: sess.run(v) for v in tf.global_variables()}
        out_value, grad_values = sess.run([out, grads], {images: x})
        sess.run(tf.get_collection(tf.GraphKeys.UPDATE_OPS), {images: x})
        updated = {v.op.name: sess.run(v) for v in tf.global_variables()}
    with ref_graph.as_default(), tf.Session() as sess:
        for v in tf.global_variables():
            v.load(values[v.op.name], sess)
        ref_out_value, ref_grad_values = sess.run([ref_out, ref_grads], {ref_images: x})
        sess.run(tf.get_collection(tf.GraphKeys.UPDATE_OPS), {ref_images: x})
        ref_updated = {v.op.name: sess.run(v) for v in tf.global_variables()}
    np.testing.assert_allclose(out_value, ref_out_value, rtol=1e-6, atol=1e-6)
    for grad, ref_grad in zip(grad_values, ref_grad_values):
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)
    for name, value in ref_updated.items():
        np.testing.assert_allclose(updated[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    moved = [n for n in updated if "moving" in n and not np.allclose(updated[n], values[n])]
    assert len(moved) == (6 if training else 0)


def test_channels_first_variables_equal_tf_layers():
    # Built only: the CPU kernels of these ops are NHWC-only.
    summaries = []
    for layers in (KERAS_LAYERS, functional):
        with tf.Graph().as_default():
            images = tf.placeholder(tf.float32, [2, 3, 8, 8])
            net = layers.conv2d(images, 4, 3, 2, padding="same", data_format="channels_first")
            layers.batch_normalization(net, axis=1, training=True)
            summaries.append(_describe(tf.global_variables()))
    assert summaries[0] == summaries[1]
    assert summaries[1][0] == (
        "conv2d/kernel",
        [3, 3, 3, 4],
        "float32",
        "VariableSynchronization.AUTO",
    )


def test_half_precision_batch_norm_keeps_float32_variables():
    with tf.Graph().as_default():
        out = functional.batch_normalization(tf.zeros([1, 2, 2, 3], tf.bfloat16), training=True)
        assert out.dtype == tf.bfloat16
        assert {v.dtype.base_dtype for v in tf.global_variables()} == {tf.float32}


def test_errors_name_the_layer_and_the_value():
    with tf.Graph().as_default():
        images = tf.zeros([1, 4, 4, 2])
        with pytest.raises(
            ValueError, match=r"conv2d: padding must be 'same' or 'valid'; got 'full'"
        ):
            functional.conv2d(images, 2, 3, padding="full")
        with pytest.raises(ValueError, match=r"conv2d: data_format must be one of .*got 'NHWC'"):
            functional.conv2d(images, 2, 3, data_format="NHWC")
        with pytest.raises(ValueError, match=r"conv2d: kernel_size must be an int or a pair"):
            functional.conv2d(images, 2, (3, 3, 3))
        with pytest.raises(ValueError, match=r"separable_conv2d: the channel dimension .* static"):
            functional.separable_conv2d(tf.placeholder(tf.float32, [1, 4, 4, None]), 2, 3)
        with pytest.raises(ValueError, match=r"batch_normalization: needs a rank-4 input"):
            functional.batch_normalization(tf.zeros([2, 3]))
        with pytest.raises(ValueError, match=r"dense: inputs must be a matrix \[N, D\]; got"):
            functional.dense(images, 2)
        with pytest.raises(ValueError, match=r"max_pooling2d: data_format must be one of"):
            functional.max_pooling2d(images, 2, 2, data_format="nchw")
