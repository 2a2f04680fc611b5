"""GEMM filter and input gradients against TensorFlow's `Conv2DBackpropFilter` and
`Conv2DBackpropInput`."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection import tf_compat
from official.detection.modeling.layers import conv_gradients
from official.detection.testing import lanes


def _gradients(
    shape,
    kernel_shape,
    strides,
    padding,
    dilations=1,
    override=True,
    feed=False,
    input_gradients=False,
):
    rng = np.random.RandomState(1)
    inputs = rng.randn(*shape).astype(np.float32)
    kernel = rng.randn(*kernel_shape).astype(np.float32)
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None] + shape[1:]) if feed else tf.constant(inputs)
        k = tf.constant(kernel)
        with conv_gradients.matmul_filter_gradients(override, input_gradients=input_gradients):
            outputs = tf.nn.conv2d(x, k, strides, padding, dilations=dilations)
            weights = rng.randn(*outputs.get_shape().as_list()[1:]).astype(np.float32)
            grads = tf.gradients(tf.reduce_sum(outputs * weights), [x, k])
        values = sess.run(grads, {x: inputs} if feed else None)
        op_types = {op.type for op in graph.get_operations()}
    return values, op_types


@pytest.mark.parametrize(
    "shape, kernel_shape, padding",
    [
        ([2, 20, 20, 8], [3, 3, 8, 6], "SAME"),  # 800 positions: one GEMM per tap
        ([2, 6, 5, 8], [3, 3, 8, 6], "SAME"),  # 60 positions: one GEMM over patches
        ([1, 9, 7, 4], [3, 3, 4, 5], "VALID"),
        ([2, 24, 24, 4], [5, 5, 4, 3], "VALID"),
        ([1, 7, 6, 3], [4, 2, 3, 2], "SAME"),  # even kernel: 'SAME' pads more after
        ([2, 8, 8, 16], [1, 1, 16, 4], "SAME"),
    ],
)
def test_stride_one_filter_gradients_are_gemms_and_equal_tensorflows(shape, kernel_shape, padding):
    (input_grad, filter_grad), op_types = _gradients(shape, kernel_shape, 1, padding)
    (tf_input_grad, tf_filter_grad), tf_op_types = _gradients(
        shape, kernel_shape, 1, padding, override=False
    )
    assert "Conv2DBackpropFilter" in tf_op_types
    assert "Conv2DBackpropFilter" not in op_types and "MatMul" in op_types
    np.testing.assert_allclose(
        filter_grad, tf_filter_grad, rtol=0, atol=1e-5 * np.abs(tf_filter_grad).max()
    )
    np.testing.assert_array_equal(input_grad, tf_input_grad)


@pytest.mark.parametrize(
    "strides, dilations, feed",
    [
        (2, 1, False),
        pytest.param(
            1,
            2,
            False,
            marks=lanes.skip_on_tf1(
                "its CPU Conv2DBackpropFilter has no dilation support, so there is no "
                "TensorFlow gradient to keep"
            ),
        ),
        (1, 1, True),
    ],
    ids=["strided", "dilated", "dynamic batch"],
)
def test_other_convolutions_keep_tensorflows_filter_gradient(strides, dilations, feed):
    args = ([2, 9, 9, 4], [3, 3, 4, 5], strides, "SAME", dilations)
    (input_grad, filter_grad), op_types = _gradients(*args, feed=feed)
    (tf_input_grad, tf_filter_grad), _ = _gradients(*args, override=False, feed=feed)
    assert "Conv2DBackpropFilter" in op_types
    np.testing.assert_array_equal(filter_grad, tf_filter_grad)
    np.testing.assert_array_equal(input_grad, tf_input_grad)


@pytest.mark.parametrize(
    "shape, kernel_shape, strides, padding",
    [
        ([2, 8, 8, 16], [1, 1, 16, 4], 1, "SAME"),  # one GEMM
        ([2, 8, 8, 16], [1, 1, 16, 4], 2, "VALID"),  # a ResNet shortcut: GEMM, then spread
        ([1, 9, 7, 6], [1, 1, 6, 5], 2, "SAME"),  # odd sizes: the last row and column kept
        ([1, 10, 9, 3], [1, 1, 3, 2], (3, 2), "SAME"),
        ([2, 9, 9, 8], [3, 3, 8, 6], 1, "SAME"),  # forward convolution, flipped kernel
        ([1, 12, 10, 4], [5, 5, 4, 7], 1, "SAME"),
    ],
)
def test_input_gradients_without_conv2d_backprop_input(shape, kernel_shape, strides, padding):
    (input_grad, filter_grad), op_types = _gradients(
        shape, kernel_shape, strides, padding, input_gradients=True
    )
    (tf_input_grad, tf_filter_grad), tf_op_types = _gradients(
        shape, kernel_shape, strides, padding, override=False
    )
    assert "Conv2DBackpropInput" in tf_op_types
    assert "Conv2DBackpropInput" not in op_types
    assert input_grad.shape == tf_input_grad.shape == tuple(shape)
    np.testing.assert_allclose(
        input_grad, tf_input_grad, rtol=0, atol=1e-5 * np.abs(tf_input_grad).max()
    )
    np.testing.assert_allclose(
        filter_grad, tf_filter_grad, rtol=0, atol=1e-5 * np.abs(tf_filter_grad).max()
    )
    if strides != 1:
        # Only the positions a strided 1x1 convolution reads get a gradient.
        stride_h, stride_w = (strides, strides) if isinstance(strides, int) else strides
        read = np.zeros(shape[1:3], bool)
        read[::stride_h, ::stride_w] = True
        assert not input_grad[:, ~read].any() and input_grad[:, read].any()


@pytest.mark.parametrize(
    "shape, kernel_shape, strides, padding, why",
    [
        ([1, 6, 6, 256], [3, 3, 256, 8], 1, "SAME", "256 channels: Eigen's is faster"),
        ([1, 9, 7, 4], [3, 3, 4, 5], 1, "VALID", "VALID kxk"),
        ([1, 7, 6, 3], [4, 2, 3, 2], 1, "SAME", "even kernel: uneven 'SAME' padding"),
        ([2, 9, 9, 4], [3, 3, 4, 5], 2, "SAME", "strided kxk"),
    ],
)
def test_other_input_gradients_stay_tensorflows(shape, kernel_shape, strides, padding, why):
    (input_grad, _), op_types = _gradients(
        shape, kernel_shape, strides, padding, input_gradients=True
    )
    (tf_input_grad, _), _ = _gradients(shape, kernel_shape, strides, padding, override=False)
    assert "Conv2DBackpropInput" in op_types, why
    np.testing.assert_array_equal(input_grad, tf_input_grad)


def test_input_gradients_follow_the_kernels_tensorflow_runs():
    # Eigen's input gradients (TensorFlow 1.15's CPU build) are the slow ones; oneDNN's
    # (TensorFlow 2.15 on x86) are kept.
    assert conv_gradients.gemm_input_gradients_by_default() == (not tf_compat.onednn_enabled())
    if tf_compat.IS_TF1:
        assert conv_gradients.gemm_input_gradients_by_default()
    _, op_types = _gradients([1, 8, 8, 4], [1, 1, 4, 3], 1, "SAME", input_gradients=None)
    expected = not conv_gradients.gemm_input_gradients_by_default()
    assert ("Conv2DBackpropInput" in op_types) == expected
