"""The written-out training batch norm against `tf.nn.fused_batch_norm`."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import cpu_batch_norm, cpu_kernels, functional


def _both(shape, seed=0, epsilon=1e-3):
    """(fused, written out) values of [outputs, mean, variance, dx, dgamma, dbeta]."""
    rng = np.random.RandomState(seed)
    channels = shape[-1]
    # An offset mean and uneven scales, as after a convolution.
    inputs = (rng.randn(*shape) * rng.uniform(0.5, 3, channels) + 2.0).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    beta = rng.randn(channels).astype(np.float32)
    weights = rng.randn(*shape).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        x, g, b = tf.constant(inputs), tf.constant(gamma), tf.constant(beta)
        fused = tf.nn.fused_batch_norm(x, g, b, epsilon=epsilon, is_training=True)
        results = []
        for outputs, mean, variance in (
            fused,
            cpu_batch_norm.batch_norm_training(x, g, b, epsilon),
        ):
            loss = tf.reduce_sum(outputs * weights)
            results.append(sess.run([outputs, mean, variance] + tf.gradients(loss, [x, g, b])))
    return results


@pytest.mark.parametrize("shape", [[2, 8, 8, 42], [1, 5, 7, 3], [3, 1, 1, 2], [2, 4, 6, 83]])
def test_equals_the_fused_batch_norm(shape):
    fused, written_out = _both(shape)
    names = ("outputs", "mean", "variance", "input gradient", "gamma gradient", "beta gradient")
    for name, a, b in zip(names, fused, written_out):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(b, a, rtol=0, atol=2e-5 * np.abs(a).max(), err_msg=name)


def test_hand_computed_statistics():
    # One channel, values 1..4: mean 2.5, variance 1.25 (5/3 Bessel-corrected).
    inputs = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)
    with tf.Graph().as_default(), tf.Session() as sess:
        outputs, mean, variance = sess.run(
            cpu_batch_norm.batch_norm_training(
                tf.constant(inputs), tf.ones([1]), tf.zeros([1]), epsilon=0.0
            )
        )
    np.testing.assert_allclose(mean, [2.5])
    np.testing.assert_allclose(variance, [5.0 / 3.0], rtol=1e-6)
    expected = (np.arange(1, 5) - 2.5) / np.sqrt(1.25)
    np.testing.assert_allclose(outputs.ravel(), expected, rtol=1e-6)


def test_dynamic_shape_is_refused():
    with tf.Graph().as_default():
        inputs = tf.placeholder(tf.float32, [None, 4, 4, 3])
        with pytest.raises(ValueError, match="static 4-D NHWC"):
            cpu_batch_norm.batch_norm_training(inputs, tf.ones([3]), tf.zeros([3]), 1e-3)


@pytest.mark.parametrize(
    "channels, axis, training, dtype, expected",
    [
        (42, -1, True, tf.float32, True),
        (83, 3, True, tf.float32, True),
        (64, -1, True, tf.float32, False),  # oneDNN's fused kernel is fast here
        (42, -1, False, tf.float32, False),  # inference: moving statistics
        (42, 1, True, tf.float32, False),  # NCHW
        (42, -1, True, tf.float16, False),
    ],
)
def test_when_it_is_used(channels, axis, training, dtype, expected):
    with tf.Graph().as_default() as graph:
        shape = [2, 8, 8, channels] if axis != 1 else [2, channels, 8, 8]
        inputs = tf.zeros(shape, dtype)
        assert not cpu_kernels.use_cpu_batch_norm(inputs, axis, training)
        with cpu_kernels.cpu_kernels():
            assert cpu_kernels.use_cpu_batch_norm(inputs, axis, training) is expected
            functional.batch_normalization(inputs, axis=axis, training=training)
        fused = {"FusedBatchNormV3"} & {op.type for op in graph.get_operations()}
        assert bool(fused) is not expected
        # Either way the layer has the same variables and the two moving-average updates.
        names = sorted(v.op.name for v in tf.global_variables())
        assert names == [
            "batch_normalization/beta",
            "batch_normalization/gamma",
            "batch_normalization/moving_mean",
            "batch_normalization/moving_variance",
        ]
        assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == (2 if training else 0)
