"""Winograd F(2x2, 3x3) against `tf.nn.conv2d`: outputs and both gradients."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import winograd


def _run_both(shape, out_channels, seed=0):
    """(direct, winograd) values of [outputs, d inputs, d kernel] for a random loss."""
    rng = np.random.RandomState(seed)
    inputs = rng.randn(*shape).astype(np.float32)
    kernel = rng.randn(3, 3, shape[-1], out_channels).astype(np.float32)
    weights = rng.randn(*shape[:3], out_channels).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        x, k = tf.constant(inputs), tf.constant(kernel)
        results = []
        for outputs in (tf.nn.conv2d(x, k, 1, "SAME"), winograd.conv2d_3x3(x, k)):
            loss = tf.reduce_sum(outputs * weights)
            results.append(sess.run([outputs] + tf.gradients(loss, [x, k])))
    return results


@pytest.mark.parametrize(
    "shape, out_channels",
    [
        ([2, 8, 8, 4], 5),  # even sizes: whole tiles
        ([1, 5, 7, 3], 4),  # odd, non-square: the last tile row and column are cut
        ([3, 1, 1, 2], 2),  # one pixel: one tile, mostly padding
        ([1, 6, 3, 1], 1),  # one channel
        ([2, 12, 10, 16], 24),
    ],
)
def test_outputs_and_gradients_equal_the_direct_convolution(shape, out_channels):
    direct, fast = _run_both(shape, out_channels)
    for name, a, b in zip(("outputs", "input gradient", "kernel gradient"), direct, fast):
        assert a.shape == b.shape, name
        scale = np.abs(a).max()
        np.testing.assert_allclose(b, a, rtol=0, atol=2e-6 * scale, err_msg=name)


def test_a_hand_computed_case():
    # A ramp image and a kernel that sums the 3x3 neighbourhood: each output is the
    # sum of the ramp over the in-image part of its window.
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    kernel = np.ones([3, 3, 1, 1], np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        outputs = sess.run(winograd.conv2d_3x3(tf.constant(image), tf.constant(kernel)))
    padded = np.pad(image[0, :, :, 0], 1)
    expected = np.array([[padded[i : i + 3, j : j + 3].sum() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(outputs[0, :, :, 0], expected, rtol=1e-6)
    assert outputs[0, 0, 0, 0] == 0 + 1 + 4 + 5


def test_no_direct_convolution_in_the_graph():
    with tf.Graph().as_default() as graph:
        x = tf.zeros([1, 8, 8, 4])
        k = tf.zeros([3, 3, 4, 4])
        tf.gradients(tf.reduce_sum(winograd.conv2d_3x3(x, k)), [x, k])
    op_types = {op.type for op in graph.get_operations()}
    assert not op_types & {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"}
    assert "BatchMatMulV2" in op_types


def test_rejects_dynamic_shapes_and_wrong_kernels():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"static 4-D shape; got \(None, 8, 8, 4\)"):
            winograd.conv2d_3x3(tf.placeholder(tf.float32, [None, 8, 8, 4]), tf.zeros([3, 3, 4, 2]))
        with pytest.raises(
            ValueError, match=r"kernel must be \[3, 3, 4, C_out\]; got \(5, 5, 4, 2\)"
        ):
            winograd.conv2d_3x3(tf.zeros([1, 8, 8, 4]), tf.zeros([5, 5, 4, 2]))
