"""Tests for image/box/mask preprocessing ops."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import preprocess_ops


def _run(fetches, feed=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed)


def _graph(fn):
    """Runs `fn` (building ops) in a fresh graph and evaluates what it returns."""
    with tf.Graph().as_default():
        return _run(fn())


def test_normalize_image_numbers():
    pixel = np.array([[[0, 128, 255]]], np.uint8)
    out = _graph(lambda: preprocess_ops.normalize_image(tf.constant(pixel)))
    expected = [
        (0 / 255 - 0.485) / 0.229,
        (128 / 255 - 0.456) / 0.224,
        (255 / 255 - 0.406) / 0.225,
    ]
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-5)
    # Float input in [0, 255] gives the same numbers.
    out_f = _graph(lambda: preprocess_ops.normalize_image(tf.constant(pixel, tf.float32)))
    np.testing.assert_allclose(out_f, out, rtol=1e-6)


def test_normalize_image_matches_numpy_on_a_random_image():
    rng = np.random.RandomState(2)
    image = rng.randint(0, 256, [5, 7, 3]).astype(np.uint8)
    out = _graph(lambda: preprocess_ops.normalize_image(tf.constant(image)))
    mean, std = np.array(preprocess_ops.MEAN_RGB), np.array(preprocess_ops.STDDEV_RGB)
    np.testing.assert_allclose(out, (image / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)


def test_compute_padded_size():
    assert preprocess_ops.compute_padded_size([100, 200], 32) == [128, 224]
    assert preprocess_ops.compute_padded_size([640, 640], 128) == [640, 640]
    assert preprocess_ops.compute_padded_size([1024, 1000], 64) == [1024, 1024]


def test_flip_boxes_hand_numbers():
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 0.25]], np.float32)
    out = _graph(lambda: preprocess_ops.flip_boxes_left_right(tf.constant(boxes)))
    np.testing.assert_allclose(out, [[0.1, 0.4, 0.5, 0.8], [0.0, 0.75, 1.0, 1.0]], atol=1e-6)


def test_flip_moves_pixels_boxes_and_masks_together():
    image = np.zeros([4, 8, 3], np.uint8)
    image[1, 0] = 255  # Column 0 -> column 7 after the flip.
    masks = np.zeros([1, 4, 8], np.uint8)
    masks[0, :, 0:2] = 1
    boxes = np.array([[0.0, 0.0, 1.0, 0.25]], np.float32)  # Covers columns 0-1.

    def build():
        return preprocess_ops.horizontal_flip(
            tf.constant(image), tf.constant(boxes), tf.constant(masks), flip=True
        )

    out_image, out_boxes, out_masks = _graph(build)
    assert out_image[1, 7, 0] == 255 and out_image[1, 0, 0] == 0
    np.testing.assert_allclose(out_boxes, [[0.0, 0.75, 1.0, 1.0]])
    assert out_masks[0, :, 6:8].all() and not out_masks[0, :, :6].any()


def test_flip_twice_is_identity_and_no_flip_is_identity():
    rng = np.random.RandomState(1)
    image = rng.randint(0, 255, [5, 7, 3]).astype(np.uint8)
    boxes = np.array([[0.1, 0.2, 0.5, 0.9]], np.float32)
    masks = rng.randint(0, 2, [1, 5, 7]).astype(np.uint8)

    def build():
        once = preprocess_ops.horizontal_flip(
            tf.constant(image), tf.constant(boxes), tf.constant(masks), flip=True
        )
        twice = preprocess_ops.horizontal_flip(*once, flip=True)
        unflipped = preprocess_ops.horizontal_flip(
            tf.constant(image), tf.constant(boxes), None, flip=False
        )
        assert unflipped[2] is None
        return twice, unflipped[:2]

    (img2, boxes2, masks2), (img0, boxes0) = _graph(build)
    np.testing.assert_array_equal(img2, image)
    np.testing.assert_allclose(boxes2, boxes, atol=1e-6)
    np.testing.assert_array_equal(masks2, masks)
    np.testing.assert_array_equal(img0, image)
    np.testing.assert_allclose(boxes0, boxes)


def test_random_flip_flips_about_half_the_time():
    image = np.arange(4, dtype=np.uint8).reshape([1, 4, 1]).repeat(3, axis=2)

    def build():
        flipped, _, _ = preprocess_ops.random_horizontal_flip(tf.constant(image), seed=3)
        return flipped

    with tf.Graph().as_default():
        tf.set_random_seed(0)
        flipped = build()
        with tf.Session() as sess:
            firsts = [sess.run(flipped)[0, 0, 0] for _ in range(200)]
    assert set(firsts) == {0, 3}
    assert 60 < firsts.count(3) < 140


def test_resize_without_jitter_hand_numbers():
    # 60 x 80 into 64 x 64: scale = min(64/60, 64/80) = 0.8 -> 48 x 64.
    def build():
        image = tf.ones([60, 80, 3], tf.uint8)
        return preprocess_ops.resize_and_crop_image(image, [64, 64], [128, 128])

    out, info = _graph(build)
    assert out.shape == (128, 128, 3)
    np.testing.assert_allclose(info, [[60, 80], [48, 64], [0.8, 0.8], [0, 0]], rtol=1e-6)
    assert (out[:48, :64] == 1).all()
    assert (out[48:] == 0).all() and (out[:, 64:] == 0).all()


def test_resize_keeps_pixels_at_scale_one_and_averages_pairs_at_half():
    rng = np.random.RandomState(3)
    image = rng.randint(0, 256, [32, 48, 3]).astype(np.uint8)

    def build():
        same, _ = preprocess_ops.resize_and_crop_image(tf.constant(image), [48, 48], [64, 64])
        half, info = preprocess_ops.resize_and_crop_image(tf.constant(image), [24, 24], [32, 32])
        return same, half, info

    same, half, info = _graph(build)
    np.testing.assert_array_equal(same[:32, :48], image)
    np.testing.assert_allclose(info[1], [16, 24])
    # Half-pixel centres: output pixel i samples input 2i + 0.5, the mean of 2i, 2i + 1.
    pairs = image.astype(np.float64).reshape(16, 2, 24, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(half[:16, :24], pairs, atol=1e-3)


def test_scale_jitter_bounds_and_crop():
    def build():
        image = tf.ones([60, 80, 3], tf.uint8)
        return preprocess_ops.resize_and_crop_image(
            image, [64, 64], [64, 64], aug_scale_min=0.5, aug_scale_max=2.0
        )

    with tf.Graph().as_default():
        out, info = build()
        assert out.shape.as_list() == [64, 64, 3]
        with tf.Session() as sess:
            for _ in range(50):
                out_v, info_v = sess.run([out, info])
                # The jittered target is in [32, 128] x [32, 128]; the wider side (80)
                # sets the scale, the other side follows within rounding.
                assert 32 <= info_v[1, 1] <= 128
                np.testing.assert_allclose(info_v[1, 0], info_v[1, 1] * 0.75, atol=0.5)
                np.testing.assert_allclose(info_v[2], info_v[1] / info_v[0], rtol=1e-6)
                max_offset = np.maximum(info_v[1] - 64, 0)
                assert (info_v[3] >= 0).all() and (info_v[3] <= max_offset).all()
                assert (info_v[3] == np.floor(info_v[3])).all()
                visible = np.minimum(info_v[1] - info_v[3], 64).astype(int)
                assert (out_v[: visible[0], : visible[1]] == 1).all()
                assert (out_v[visible[0] :] == 0).all()


def test_bad_jitter_range_and_padding_are_rejected():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="need 0 < aug_scale_min <= aug_scale_max"):
            preprocess_ops.compute_resize_params([10, 10], [8, 8], 2.0, 1.0)
        with pytest.raises(ValueError, match=r"padded_size \[32, 32\] must be at least"):
            preprocess_ops.resize_and_crop_image(tf.zeros([10, 10, 3]), [64, 64], [32, 32])


def test_resize_and_crop_boxes_round_trip():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0], [50.0, 0.0, 60.0, 10.0]], np.float32)
    scale = np.array([2.0, 1.5], np.float32)
    offset = np.array([16.0, 8.0], np.float32)

    def build():
        cropped = preprocess_ops.resize_and_crop_boxes(
            tf.constant(boxes), tf.constant(scale), [64, 64], tf.constant(offset)
        )
        back = preprocess_ops.inverse_resize_and_crop_boxes(
            cropped, tf.constant(scale), tf.constant(offset)
        )
        return cropped, back

    cropped, back = _graph(build)
    # Box 0: y 20-60 -> 4-44, x 30-90 -> 22-64 (clipped at 64, i.e. x = 48 originally).
    np.testing.assert_allclose(cropped[0], [4.0, 22.0, 44.0, 64.0])
    # Box 1 lands below the 64-pixel window: empty after clipping.
    assert cropped[1, 0] == cropped[1, 2] == 64.0
    np.testing.assert_allclose(back[0], [10.0, 20.0, 30.0, 48.0], rtol=1e-6)


def test_resize_and_crop_boxes_tpu_convention_clips_to_size_minus_one():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]], np.float32)

    def build():
        return preprocess_ops.resize_and_crop_boxes(
            tf.constant(boxes),
            tf.constant([2.0, 1.5]),
            [64, 64],
            tf.constant([16.0, 8.0]),
            convention="tensorflow_tpu",
        )

    # As in test_resize_and_crop_boxes_round_trip, but x 22-64 stops at 63.
    np.testing.assert_allclose(_graph(build), [[4.0, 22.0, 44.0, 63.0]])


def test_resize_and_crop_masks_follows_boxes():
    masks = np.zeros([2, 20, 40], np.uint8)
    masks[0, 5:10, 10:20] = 1
    scale = np.array([2.0, 2.0], np.float32)
    offset = np.array([4.0, 6.0], np.float32)

    def build():
        empty = preprocess_ops.resize_and_crop_masks(
            tf.zeros([0, 20, 40], tf.uint8), tf.constant(scale), [48, 64], tf.constant(offset)
        )
        return (
            preprocess_ops.resize_and_crop_masks(
                tf.constant(masks), tf.constant(scale), [48, 64], tf.constant(offset)
            ),
            empty,
        )

    out, empty = _graph(build)
    assert out.shape == (2, 48, 64) and out.dtype == np.uint8
    expected = np.zeros([48, 64], np.uint8)
    expected[10 - 4 : 20 - 4, 20 - 6 : 40 - 6] = 1
    np.testing.assert_array_equal(out[0], expected)
    assert not out[1].any()
    assert empty.shape == (0, 48, 64)


def test_crop_and_resize_masks():
    masks = np.zeros([3, 40, 40], np.uint8)
    masks[0, 8:24, 4:36] = 1  # Exactly the box below.
    masks[1, :, :20] = 1  # Left half, read through a mirrored box.
    masks[2] = np.arange(40)[np.newaxis, :]  # A ramp along x.
    boxes = np.array(
        [[8.0, 4.0, 24.0, 36.0], [0.0, 40.0, 40.0, 0.0], [0.0, 0.0, 40.0, 40.0]], np.float32
    )

    def build():
        crops = preprocess_ops.crop_and_resize_masks(tf.constant(masks), tf.constant(boxes), 8)
        picked = preprocess_ops.crop_and_resize_masks(
            tf.constant(masks), tf.constant(boxes[:1]), 8, mask_indices=tf.constant([1])
        )
        return crops, picked

    crops, picked = _graph(build)
    assert crops.shape == (3, 8, 8)
    # Box 0 over mask 1 (ones in columns 0-19): the 4-pixel cells of x 4..36 are centred
    # at x = 6, 10, ..., 34, i.e. at indices 5.5, 9.5, 13.5, 17.5 (ones), 21.5, ... (zeros).
    np.testing.assert_allclose(picked[0][0], [1, 1, 1, 1, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(crops[0], np.ones([8, 8]))
    # Mirrored box: the left half of the mask shows up on the right of the crop.
    np.testing.assert_allclose(crops[1][:, 4:], 1.0)
    np.testing.assert_allclose(crops[1][:, :4], 0.0)
    # Cell centres of an 8-wide tiling of 40 pixels are at 2.5, 7.5, ...; in index space
    # (pixel i centred at i + 0.5) that is 2, 7, ..., and the ramp value equals the index.
    np.testing.assert_allclose(crops[2][0], 2.0 + 5.0 * np.arange(8), atol=1e-4)


def test_non_empty_box_indices():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 0, 1], [2, 2, 3, 2], [1, 1, 5, 6]], np.float32)
    out = _graph(lambda: preprocess_ops.get_non_empty_box_indices(tf.constant(boxes)))
    np.testing.assert_array_equal(out, [0, 3])


def test_clip_or_pad_to_fixed_size():
    def build():
        short = preprocess_ops.clip_or_pad_to_fixed_size(tf.ones([2, 4]), 3, -1.0)
        long = preprocess_ops.clip_or_pad_to_fixed_size(tf.range(5), 3, -1)
        strings = preprocess_ops.clip_or_pad_to_fixed_size(tf.constant(["a"]), 3, "")
        empty = preprocess_ops.clip_or_pad_to_fixed_size(tf.zeros([0, 4]), 2, -1.0)
        assert short.shape.as_list() == [3, 4] and long.shape.as_list() == [3]
        return short, long, strings, empty

    short, long, strings, empty = _graph(build)
    np.testing.assert_array_equal(short, [[1] * 4, [1] * 4, [-1] * 4])
    np.testing.assert_array_equal(long, [0, 1, 2])
    assert list(strings) == [b"a", b"", b""]
    np.testing.assert_array_equal(empty, -np.ones([2, 4]))
