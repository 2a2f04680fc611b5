import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import resize


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_nearest_upsample_repeats_pixels(scale):
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    with tf.Graph().as_default(), tf.Session() as sess:
        out = sess.run(resize.nearest_upsample(tf.constant(x), scale))
    expected = np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)
    np.testing.assert_array_equal(out, expected)


def test_nearest_upsample_with_unknown_batch_and_size():
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 3, 2)
    with tf.Graph().as_default():
        ph = tf.placeholder(tf.float32, [None, None, None, 2])
        y = resize.nearest_upsample(ph, 2)
        assert y.shape.as_list() == [None, None, None, 2]
        with tf.Session() as sess:
            out = sess.run(y, {ph: x})
    np.testing.assert_array_equal(out, np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))


def test_resize_nearest_reads_floor_of_scaled_index():
    x = np.arange(5 * 5, dtype=np.float32).reshape(1, 5, 5, 1)
    with tf.Graph().as_default(), tf.Session() as sess:
        out = sess.run(resize.resize_nearest(tf.constant(x), [3, 2]))
    rows = np.floor(np.arange(3) * 5 / 3).astype(int)
    cols = np.floor(np.arange(2) * 5 / 2).astype(int)
    np.testing.assert_array_equal(out[0, :, :, 0], x[0][np.ix_(rows, cols)][:, :, 0])


def test_resize_nearest_keeps_dtype():
    with tf.Graph().as_default():
        y = resize.resize_nearest(tf.zeros([1, 4, 4, 2], tf.bfloat16), [6, 6])
    assert y.dtype == tf.bfloat16
    assert y.shape.as_list() == [1, 6, 6, 2]
