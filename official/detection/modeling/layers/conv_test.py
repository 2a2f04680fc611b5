import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import conv


def _numpy_conv(image, kernel, stride):
    """'VALID' cross-correlation of [H, W, Cin] with [k, k, Cin, Cout]."""
    k = kernel.shape[0]
    out_h = (image.shape[0] - k) // stride + 1
    out_w = (image.shape[1] - k) // stride + 1
    out = np.zeros([out_h, out_w, kernel.shape[3]], np.float32)
    for y in range(out_h):
        for x in range(out_w):
            patch = image[y * stride : y * stride + k, x * stride : x * stride + k]
            out[y, x] = np.tensordot(patch, kernel, axes=3)
    return out


def test_fixed_padding_puts_the_larger_half_after():
    x = np.ones([1, 2, 3, 1], np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        padded = sess.run(conv.fixed_padding(tf.constant(x), 4))
        padded_first = sess.run(
            conv.fixed_padding(tf.constant(x.transpose(0, 3, 1, 2)), 4, "channels_first")
        )
    # k=4: 1 before, 2 after.
    expected = np.pad(x, [[0, 0], [1, 2], [1, 2], [0, 0]])
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(padded_first, expected.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("size", [7, 8])
def test_strided_conv_matches_explicit_padding_reference(size):
    rng = np.random.RandomState(0)
    image = rng.rand(1, size, size, 2).astype(np.float32)
    with tf.Graph().as_default():
        y = conv.conv2d_fixed_padding(tf.constant(image), filters=3, kernel_size=3, strides=2)
        variables = tf.trainable_variables()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            out, kernel = sess.run([y, variables[0]])
    assert [v.op.name for v in variables] == ["conv2d/kernel"]
    assert kernel.shape == (3, 3, 2, 3)
    assert out.shape == (1, 4, 4, 3)  # ceil(size / 2)
    padded = np.pad(image[0], [[1, 1], [1, 1], [0, 0]])
    np.testing.assert_allclose(out[0], _numpy_conv(padded, kernel, 2), rtol=1e-5, atol=1e-5)


def test_stride_one_conv_keeps_size_and_names_layers_in_order():
    with tf.Graph().as_default():
        x = tf.zeros([2, 5, 5, 4])
        y = conv.conv2d_fixed_padding(x, filters=8, kernel_size=3, strides=1)
        y = conv.conv2d_fixed_padding(y, filters=6, kernel_size=1, strides=1)
        assert y.shape.as_list() == [2, 5, 5, 6]
        assert [(v.op.name, v.shape.as_list()) for v in tf.global_variables()] == [
            ("conv2d/kernel", [3, 3, 4, 8]),
            ("conv2d_1/kernel", [1, 1, 8, 6]),
        ]


def test_check_data_format_names_the_owner():
    with pytest.raises(ValueError, match=r"ResNet: data_format must be one of .*; got 'nchw'"):
        conv.check_data_format("nchw", "ResNet")
