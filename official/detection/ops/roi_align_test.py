"""Tests for multilevel RoIAlign: hand cases on ramps, a NumPy reference, gradients."""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import roi_align


@pytest.fixture(autouse=True)
def _fresh_graph():
    with tf.Graph().as_default():
        yield


def _run(fetches, feed_dict=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed_dict)


def _level_of(box, min_level, max_level):
    side = math.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-6))
    level = math.floor(math.log2(side / 224.0)) + 4
    return min(max(level, min_level), max_level)


def _reference_operator(sizes, box, level, output_size, sampling_ratio):
    """Dense matrix A [S*S, H*W] with crop = A @ feature_map.reshape(H*W, C) (NumPy)."""
    height, width = sizes[level]
    stride = 2.0**level
    ymin, xmin, ymax, xmax = np.clip(
        np.asarray(box, np.float64) / stride, 0.0, [height, width, height, width]
    )
    num = output_size * sampling_ratio
    operator = np.zeros([output_size, output_size, height * width])
    for i in range(num):
        y = min(max(ymin + (i + 0.5) * (ymax - ymin) / num, 0.0), height - 1.0)
        y0 = int(math.floor(y))
        y1, ly = min(y0 + 1, height - 1), y - y0
        for j in range(num):
            x = min(max(xmin + (j + 0.5) * (xmax - xmin) / num, 0.0), width - 1.0)
            x0 = int(math.floor(x))
            x1, lx = min(x0 + 1, width - 1), x - x0
            row = operator[i // sampling_ratio, j // sampling_ratio]
            for yy, wy in ((y0, 1 - ly), (y1, ly)):
                for xx, wx in ((x0, 1 - lx), (x1, lx)):
                    row[yy * width + xx] += wy * wx / sampling_ratio**2
    return operator.reshape(output_size * output_size, height * width)


def _reference_roi_align(features, boxes, output_size, sampling_ratio):
    """Per-sample clamped bilinear RoIAlign in NumPy; returns crops and operators."""
    levels = sorted(features)
    sizes = {level: features[level].shape[1:3] for level in levels}
    batch, num_boxes = boxes.shape[:2]
    channels = features[levels[0]].shape[-1]
    crops = np.zeros([batch, num_boxes, output_size, output_size, channels])
    operators = {}
    for b in range(batch):
        for r in range(num_boxes):
            level = _level_of(boxes[b, r], levels[0], levels[-1])
            operator = _reference_operator(sizes, boxes[b, r], level, output_size, sampling_ratio)
            operators[b, r] = (level, operator)
            values = features[level][b].reshape(-1, channels)
            crops[b, r] = (operator @ values).reshape(output_size, output_size, channels)
    return crops, operators


def _ramp(batch, height, width, channels, level):
    """f(b, y, x, c) = (c + 1) * (10 y + x) + 100 * level + 1000 * b (float32)."""
    y = np.arange(height)[:, None, None]
    x = np.arange(width)[None, :, None]
    c = np.arange(channels)[None, None, :]
    ramp = (c + 1) * (10.0 * y + x) + 100.0 * level
    return np.stack([ramp + 1000.0 * b for b in range(batch)]).astype(np.float32)


def test_ramp_hand_case_reads_bin_centres_on_the_assigned_level():
    features = {level: _ramp(2, 256 // 2**level, 256 // 2**level, 2, level) for level in (2, 3, 4)}
    boxes = np.array(
        [
            [[8.0, 4.0, 24.0, 20.0], [16.0, 32.0, 240.0, 256.0]],
            [[4.0, 8.0, 20.0, 40.0], [0.0, 0.0, 1.0, 1.0]],
        ],
        np.float32,
    )
    crops = _run(roi_align.multilevel_roi_align(features, tf.constant(boxes), output_size=2))
    assert crops.shape == (2, 2, 2, 2, 2)
    # 16 x 16 box -> level 2 (stride 4): [2, 1, 6, 5]; bins of 2, centres y {3, 5},
    # x {2, 4}; channel 0 is 10 y + x + 200, channel 1 twice the ramp part.
    expected = np.array([[32.0, 34.0], [52.0, 54.0]])
    np.testing.assert_allclose(crops[0, 0, :, :, 0], expected + 200.0, rtol=1e-6)
    np.testing.assert_allclose(crops[0, 0, :, :, 1], 2.0 * expected + 200.0, rtol=1e-6)
    # 224 x 224 box -> level 4 (stride 16): [1, 2, 15, 16]; bins of 7, centres y {4.5,
    # 11.5}, x {5.5, 12.5}.
    expected = np.array([[50.5, 57.5], [120.5, 127.5]]) + 400.0
    np.testing.assert_allclose(crops[0, 1, :, :, 0], expected, rtol=1e-6)
    # Image 1 (adds 1000): 16 x 32 box, side sqrt(512) -> level 2: [1, 2, 5, 10],
    # centres y {2, 4}, x {4, 8}.
    expected = np.array([[24.0, 28.0], [44.0, 48.0]]) + 1200.0
    np.testing.assert_allclose(crops[1, 0, :, :, 0], expected, rtol=1e-6)
    # 1 x 1 box -> level 2: [0, 0, 0.25, 0.25], centres 1/16 and 3/16.
    centres = np.array([1.0, 3.0]) / 16.0
    expected = 10.0 * centres[:, None] + centres[None, :] + 1200.0
    np.testing.assert_allclose(crops[1, 1, :, :, 0], expected, rtol=1e-6)


def test_samples_past_the_last_row_read_the_last_row():
    # Level 2 map of 4 x 4 (16 px image). A box covering the whole image has bin
    # centres at y = 0.5 .. 3.5 in level coordinates; 3.5 clamps to row 3.
    features = {2: _ramp(1, 4, 4, 1, 2)}
    boxes = tf.constant([[[0.0, 0.0, 16.0, 16.0]]])
    crops = _run(roi_align.multilevel_roi_align(features, boxes, output_size=4))
    centres = np.minimum(np.arange(4) + 0.5, 3.0)
    expected = 10.0 * centres[:, None] + centres[None, :] + 200.0
    np.testing.assert_allclose(crops[0, 0, :, :, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("sampling_ratio", [1, 2])
def test_matches_numpy_reference_on_random_maps(sampling_ratio):
    rng = np.random.RandomState(3)
    image = 512
    features = {
        level: rng.randn(2, image // 2**level, image // 2**level, 2).astype(np.float32)
        for level in (2, 3, 4, 5)
    }
    starts = rng.uniform(0, image, size=(2, 12, 2))
    sides = np.exp(rng.uniform(np.log(4.0), np.log(image), size=(2, 12, 2)))
    boxes = np.concatenate([starts, np.minimum(starts + sides, image)], axis=-1)
    boxes = boxes.astype(np.float32)
    boxes[0, 0] = [0.0, 0.0, image, image]  # touches every edge, level 5
    boxes[0, 1] = [10.0, 20.0, 300.0, 250.0]  # level 4
    boxes[0, 2] = [100.0, 50.0, 250.0, 200.0]  # level 3
    boxes[1, 0] = [500.0, 490.0, 512.0, 512.0]  # bottom-right corner, level 2
    crops = _run(
        roi_align.multilevel_roi_align(
            features, tf.constant(boxes), output_size=3, sampling_ratio=sampling_ratio
        )
    )
    expected, operators = _reference_roi_align(features, boxes, 3, sampling_ratio)
    assert {level for level, _ in operators.values()} == {2, 3, 4, 5}
    np.testing.assert_allclose(crops, expected, rtol=1e-4, atol=1e-4)


def test_gradient_matches_the_transposed_reference_operator():
    rng = np.random.RandomState(5)
    features_np = {level: rng.randn(1, 64 // 2**level, 64 // 2**level, 2) for level in (2, 3)}
    boxes = np.array([[[3.0, 5.0, 30.0, 50.0], [10.0, 0.0, 64.0, 64.0], [0, 0, 9, 7]]], np.float32)
    features = {level: tf.constant(value, tf.float32) for level, value in features_np.items()}
    crops = roi_align.multilevel_roi_align(features, tf.constant(boxes), output_size=2)
    upstream = rng.randn(*crops.shape.as_list())
    grads = tf.gradients(tf.reduce_sum(crops * upstream), [features[2], features[3]])
    grads = dict(zip((2, 3), _run(grads)))
    _, operators = _reference_roi_align(features_np, boxes, 2, 1)
    expected = {level: np.zeros_like(value[0]) for level, value in features_np.items()}
    for (_, r), (level, operator) in operators.items():
        contribution = operator.T @ upstream[0, r].reshape(4, 2)
        expected[level] += contribution.reshape(expected[level].shape)
    for level in (2, 3):
        np.testing.assert_allclose(grads[level][0], expected[level], rtol=1e-4, atol=1e-5)


def test_padded_boxes_crop_the_origin_of_the_lowest_level():
    features = {level: _ramp(1, 16 // 2**level, 16 // 2**level, 1, level) for level in (2, 3)}
    crops = _run(roi_align.multilevel_roi_align(features, -tf.ones([1, 1, 4]), output_size=2))
    np.testing.assert_allclose(crops[0, 0, :, :, 0], np.full([2, 2], 200.0))


def test_keeps_feature_dtype_and_static_shape():
    features = {
        level: tf.zeros([2, 32 // 2**level, 32 // 2**level, 4], tf.float16) for level in (2, 3)
    }
    boxes = tf.placeholder(tf.float32, [None, 5, 4])
    crops = roi_align.multilevel_roi_align(features, boxes, output_size=7)
    assert crops.dtype == tf.float16
    assert crops.shape.as_list() == [None, 5, 7, 7, 4]


@pytest.mark.parametrize(
    "side, level",
    [
        (224.0, 4),
        (223.9, 3),
        (112.0, 3),
        (111.9, 2),
        (448.0, 5),
        (447.0, 4),
        (896.0, 6),
        (16.0, 2),  # floor(log2(16/224)) + 4 = 0, clamped
        (5000.0, 6),  # 9, clamped
        (0.0, 2),  # degenerate
    ],
)
def test_assign_levels_hand_cases(side, level):
    boxes = tf.constant([[10.0, 20.0, 10.0 + side, 20.0 + side]])
    assert _run(roi_align.assign_levels(boxes, 2, 6)).tolist() == [level]


def test_assign_levels_uses_the_geometric_mean_side_and_padding_goes_lowest():
    boxes = tf.constant([[0.0, 0.0, 112.0, 448.0], [0.0, 0.0, 100.0, 448.0], [-1.0] * 4])
    assert _run(roi_align.assign_levels(boxes, 2, 5)).tolist() == [4, 3, 2]


def test_assign_levels_rejects_inverted_range():
    with pytest.raises(ValueError, match="`min_level` must be <= `max_level`; received 5 > 3"):
        roi_align.assign_levels(tf.zeros([1, 4]), 5, 3)


@pytest.mark.parametrize(
    "features, boxes, kwargs, message",
    [
        ({}, [1, 3, 4], {}, "`features` is empty"),
        ({2: [1, 8, 8, 2], 4: [1, 2, 2, 2]}, [1, 3, 4], {}, r"consecutive; received \[2, 4\]"),
        ({2: [1, 8, 8, 2]}, [1, 3, 4], {"output_size": 0}, "`output_size` must be an int >= 1"),
        ({2: [1, 8, 8, 2]}, [1, 3, 4], {"sampling_ratio": 1.5}, "`sampling_ratio` must be"),
        ({2: [1, 8, 8, 2]}, [3, 4], {}, r"`boxes` must be \[B, R, 4\] with a static R"),
        ({2: [1, 8, 8, 2]}, [1, None, 4], {}, "with a static R; received shape"),
        ({2: [1, 8, 8, 2], 3: [1, 4, 4, 3]}, [1, 3, 4], {}, "same channels; received"),
        (
            {2: [1, None, 8, 2]},
            [1, 3, 4],
            {},
            r"`features\[2\]` must be \[B, H, W, C\] with static",
        ),
    ],
)
def test_errors(features, boxes, kwargs, message):
    features = {level: tf.placeholder(tf.float32, shape) for level, shape in features.items()}
    with pytest.raises(ValueError, match=message):
        roi_align.multilevel_roi_align(features, tf.placeholder(tf.float32, boxes), **kwargs)
