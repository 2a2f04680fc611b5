"""Tests for box_ops: IoU, the box codec, clipping, normalisation and conversions."""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops


def _eval(fn):
    """Builds `fn()` in a fresh graph and returns its evaluated value."""
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(fn())


def _random_boxes(rng, n, size=100.0):
    corners = rng.uniform(0.0, size, [n, 2, 2]).astype(np.float32)
    low, high = corners.min(axis=1), corners.max(axis=1) + 1.0
    return np.concatenate([low, high], axis=1).astype(np.float32)


def _numpy_iou(boxes1, boxes2):
    """Reference pairwise IoU in float64 with -1 for padded rows."""
    b1 = boxes1.astype(np.float64)[:, None, :]
    b2 = boxes2.astype(np.float64)[None, :, :]
    h = np.clip(np.minimum(b1[..., 2], b2[..., 2]) - np.maximum(b1[..., 0], b2[..., 0]), 0, None)
    w = np.clip(np.minimum(b1[..., 3], b2[..., 3]) - np.maximum(b1[..., 1], b2[..., 1]), 0, None)
    inter = h * w
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    iou = inter / (area1 + area2 - inter)
    padded = (boxes1.max(axis=1) < 0)[:, None] | (boxes2.max(axis=1) < 0)[None, :]
    return np.where(padded, -1.0, iou)


def test_iou_hand_computed():
    boxes1 = np.array([[0, 0, 10, 10]], np.float32)
    boxes2 = np.array(
        [
            [0, 0, 10, 10],  # identical: 1
            [20, 20, 30, 30],  # disjoint: 0
            [0, 5, 10, 15],  # half overlap: 50 / 150
            [0, 0, 5, 10],  # contained half: 50 / 100
            [10, 0, 20, 10],  # touching edge: 0
            [-1, -1, -1, -1],  # padding: -1
        ],
        np.float32,
    )
    iou = _eval(lambda: box_ops.compute_iou(boxes1, boxes2))
    np.testing.assert_allclose(iou, [[1.0, 0.0, 1.0 / 3.0, 0.5, 0.0, -1.0]], rtol=1e-6)


def test_iou_matches_numpy_reference():
    rng = np.random.RandomState(0)
    boxes1, boxes2 = _random_boxes(rng, 7), _random_boxes(rng, 5)
    iou = _eval(lambda: box_ops.compute_iou(boxes1, boxes2))
    assert iou.shape == (7, 5)
    np.testing.assert_allclose(iou, _numpy_iou(boxes1, boxes2), rtol=1e-5, atol=1e-7)


def test_iou_batched_with_padding():
    rng = np.random.RandomState(1)
    boxes1 = np.stack([_random_boxes(rng, 4), _random_boxes(rng, 4)])
    boxes2 = np.stack([_random_boxes(rng, 3), _random_boxes(rng, 3)])
    boxes2[0, 2] = -1.0
    boxes1[1, 0] = -1.0
    iou = _eval(lambda: box_ops.compute_iou(boxes1, boxes2))
    assert iou.shape == (2, 4, 3)
    for b in range(2):
        np.testing.assert_allclose(iou[b], _numpy_iou(boxes1[b], boxes2[b]), rtol=1e-5, atol=1e-7)
    assert np.all(iou[0, :, 2] == -1.0) and np.all(iou[1, 0, :] == -1.0)
    # Anchors with some negative coordinates are real boxes, not padding.
    partly_outside = np.array([[-5, -5, 5, 5]], np.float32)
    inside = np.array([[0, 0, 5, 5]], np.float32)
    np.testing.assert_allclose(_eval(lambda: box_ops.compute_iou(partly_outside, inside)), [[0.25]])


def test_iou_degenerate_boxes_are_zero_not_nan():
    point = np.array([[3, 3, 3, 3]], np.float32)
    assert _eval(lambda: box_ops.compute_iou(point, point))[0, 0] == 0.0


def test_iou_rejects_mixed_ranks():
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"compute_iou: .*or both \[B, N, 4\]; received shapes \[2, 4\]",
        ):
            box_ops.compute_iou(tf.zeros([2, 4]), tf.zeros([1, 2, 4]))
        with pytest.raises(
            ValueError, match=r"compute_iou: `boxes2` must have a last dimension of 4"
        ):
            box_ops.compute_iou(tf.zeros([2, 4]), tf.zeros([2, 5]))


def test_encode_hand_computed():
    anchor = np.array([0, 0, 10, 20], np.float32)  # centre (5, 10), h 10, w 20
    boxes = np.array(
        [
            [0, 0, 10, 20],  # same box
            [5, 0, 15, 20],  # moved down by half its height
            [-5, -10, 15, 30],  # twice the size, same centre
        ],
        np.float32,
    )
    codes = _eval(lambda: box_ops.encode_boxes(boxes, anchor))
    np.testing.assert_allclose(
        codes, [[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0, math.log(2), math.log(2)]], atol=1e-6
    )
    weighted = _eval(lambda: box_ops.encode_boxes(boxes, anchor, weights=[10, 10, 5, 5]))
    np.testing.assert_allclose(weighted, codes * np.array([10, 10, 5, 5]), atol=1e-5)


@pytest.mark.parametrize("weights", [None, [10.0, 10.0, 5.0, 5.0]])
def test_encode_decode_round_trip(weights):
    rng = np.random.RandomState(2)
    anchors = _random_boxes(rng, 50, 500.0)
    # Boxes within a factor 30 of their anchor's size, so decoding does not clip.
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2 + rng.uniform(-50, 50, [50, 2])
    sizes = (anchors[:, 2:] - anchors[:, :2]) * np.exp(rng.uniform(-3.4, 3.4, [50, 2]))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1).astype(np.float32)
    decoded = _eval(
        lambda: box_ops.decode_boxes(
            box_ops.encode_boxes(boxes, anchors, weights), anchors, weights
        )
    )
    np.testing.assert_allclose(decoded, boxes, atol=1e-4, rtol=1e-4)
    # Batched anchors broadcast against batched boxes.
    batched = _eval(
        lambda: box_ops.decode_boxes(
            box_ops.encode_boxes(boxes.reshape(5, 10, 4), anchors.reshape(5, 10, 4), weights),
            anchors.reshape(5, 10, 4),
            weights,
        )
    )
    np.testing.assert_allclose(batched.reshape(50, 4), boxes, atol=1e-4, rtol=1e-4)


def test_decode_clips_log_scale():
    anchor = np.array([[0, 0, 16, 16]], np.float32)
    codes = np.array([[0, 0, 10.0, -1.0]], np.float32)
    decoded = _eval(lambda: box_ops.decode_boxes(codes, anchor))
    height = decoded[0, 2] - decoded[0, 0]
    width = decoded[0, 3] - decoded[0, 1]
    np.testing.assert_allclose(height, 1000.0, rtol=1e-5)  # 16 * exp(log(1000 / 16))
    np.testing.assert_allclose(width, 16.0 * math.exp(-1.0), rtol=1e-5)  # not clipped below
    np.testing.assert_allclose((decoded[0, 0] + decoded[0, 2]) / 2, 8.0, rtol=1e-6)
    # With weights the clip applies after dividing by them.
    decoded_w = _eval(lambda: box_ops.decode_boxes(codes * 5.0, anchor, [1, 1, 5, 5]))
    np.testing.assert_allclose(decoded_w, decoded, rtol=1e-5)


def test_encode_zero_size_box_is_finite():
    codes = _eval(
        lambda: box_ops.encode_boxes(
            np.array([[5, 5, 5, 5]], np.float32), np.array([[0, 0, 10, 10]], np.float32)
        )
    )
    assert np.all(np.isfinite(codes))


def test_codec_rejects_bad_weights_and_shapes():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"encode_boxes: `weights` must be None or four"):
            box_ops.encode_boxes(tf.zeros([1, 4]), tf.zeros([1, 4]), weights=[1, 1, 1])
        with pytest.raises(ValueError, match=r"decode_boxes: `weights` .* received \[1, 1, 0, 1\]"):
            box_ops.decode_boxes(tf.zeros([1, 4]), tf.zeros([1, 4]), weights=[1, 1, 0, 1])
        with pytest.raises(
            ValueError, match=r"decode_boxes: `encoded_boxes` must have .* \[1, 3\]"
        ):
            box_ops.decode_boxes(tf.zeros([1, 3]), tf.zeros([1, 4]))
        with pytest.raises(ValueError, match=r"encode_boxes: `anchors` must have a last dim"):
            box_ops.encode_boxes(tf.zeros([1, 4]), tf.zeros([1, 2]))


def test_clip_boxes():
    boxes = np.array([[-5, 3, 50, 120], [10, -1, 20, 30]], np.float32)
    clipped = _eval(lambda: box_ops.clip_boxes(boxes, [40, 100]))
    np.testing.assert_array_equal(clipped, [[0, 3, 40, 100], [10, 0, 20, 30]])
    # Per-image shapes [B, 1, 2] for boxes [B, N, 4].
    batched = np.stack([boxes, boxes])
    shapes = np.array([[[40, 100]], [[15, 25]]], np.float32)
    clipped_b = _eval(lambda: box_ops.clip_boxes(batched, shapes))
    np.testing.assert_array_equal(clipped_b[1], [[0, 3, 15, 25], [10, 0, 15, 25]])


def test_normalize_denormalize():
    boxes = np.array([[10, 20, 30, 40]], np.float32)
    normalized = _eval(lambda: box_ops.normalize_boxes(boxes, [100, 200]))
    np.testing.assert_allclose(normalized, [[0.1, 0.1, 0.3, 0.2]], rtol=1e-6)
    restored = _eval(lambda: box_ops.denormalize_boxes(normalized, tf.constant([100, 200])))
    np.testing.assert_allclose(restored, boxes, rtol=1e-6)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"`image_shape` must be \[2\] or \[\.\.\., 2\]"):
            box_ops.normalize_boxes(tf.zeros([1, 4]), tf.zeros([3]))


def test_yxyx_to_xywh_numpy_and_tensor():
    boxes = np.array([[10, 20, 30, 60]], np.float32)
    np.testing.assert_array_equal(box_ops.yxyx_to_xywh(boxes), [[20, 10, 40, 20]])
    np.testing.assert_array_equal(
        _eval(lambda: box_ops.yxyx_to_xywh(tf.constant(boxes))), [[20, 10, 40, 20]]
    )
    with pytest.raises(ValueError, match=r"yxyx_to_xywh: `boxes` must have a last dimension of 4"):
        box_ops.yxyx_to_xywh(np.zeros([2, 3]))


def test_box_areas():
    boxes = np.array([[0, 0, 2, 3], [1, 1, 1, 5]], np.float32)
    np.testing.assert_array_equal(_eval(lambda: box_ops.box_areas(boxes)), [6, 0])


def test_filter_boxes_by_size():
    boxes = np.array(
        [
            [10, 10, 30, 30],  # kept
            [10, 10, 12, 30],  # height 2 <= min_size 4
            [90, 90, 130, 130],  # centre (110, 110) outside the 100 x 100 image
            [0, 0, 5, 5],  # side 5 > 4, centre inside
        ],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    kept_boxes, kept_scores = _eval(
        lambda: box_ops.filter_boxes_by_size(boxes, scores, [100, 100], 4.0)
    )
    np.testing.assert_allclose(kept_scores, [0.9, 0, 0, 0.6])
    np.testing.assert_array_equal(kept_boxes[[1, 2]], np.zeros([2, 4]))
    np.testing.assert_array_equal(kept_boxes[[0, 3]], boxes[[0, 3]])
    batched_boxes, batched_scores = _eval(
        lambda: box_ops.filter_boxes_by_size(
            np.stack([boxes, boxes]), np.stack([scores, scores]), [[100, 100], [20, 20]], 4.0
        )
    )
    np.testing.assert_allclose(batched_scores, [[0.9, 0, 0, 0.6], [0, 0, 0, 0.6]])


# One anchor and one code, decoded by hand in both conventions. Anchor [10, 20, 29, 59]:
# consistent height 19, width 39, centre (19.5, 39.5); tensorflow_tpu height 20, width 40,
# centre (10 + 20 / 2, 20 + 40 / 2) = (20, 40).
CONVENTION_ANCHOR = np.array([[10, 20, 29, 59]], np.float32)
CONVENTION_CODE = np.array([[0.5, -0.25, math.log(2.0), 0.0]], np.float32)


def test_decode_hand_computed_in_both_conventions():
    consistent = _eval(lambda: box_ops.decode_boxes(CONVENTION_CODE, CONVENTION_ANCHOR))
    # centre (0.5 * 19 + 19.5, -0.25 * 39 + 39.5) = (29, 29.75), size 38 x 39.
    np.testing.assert_allclose(consistent, [[10, 10.25, 48, 49.25]], atol=1e-5)
    tpu = _eval(
        lambda: box_ops.decode_boxes(
            CONVENTION_CODE, CONVENTION_ANCHOR, convention="tensorflow_tpu"
        )
    )
    # centre (0.5 * 20 + 20, -0.25 * 40 + 40) = (30, 30), size 40 x 40: min = 30 - 20,
    # max = min + 40 - 1.
    np.testing.assert_allclose(tpu, [[10, 10, 49, 49]], atol=1e-5)
    # A zero code gives the anchor back in both.
    zero = np.zeros([1, 4], np.float32)
    back = _eval(
        lambda: [
            box_ops.decode_boxes(zero, CONVENTION_ANCHOR, convention=convention)
            for convention in box_ops.BOX_CONVENTIONS
        ]
    )
    np.testing.assert_allclose(back, [CONVENTION_ANCHOR] * 2, atol=1e-5)


def test_tpu_encode_hand_computed_and_round_trip():
    box = np.array([[10, 10, 49, 49]], np.float32)
    codes = _eval(
        lambda: box_ops.encode_boxes(
            box, CONVENTION_ANCHOR, weights=[10.0, 10.0, 5.0, 5.0], convention="tensorflow_tpu"
        )
    )
    np.testing.assert_allclose(codes, [[5.0, -2.5, 5.0 * math.log(2.0), 0.0]], atol=1e-5)
    # The consistent codec reads the same pair differently: centre 29.5 vs 19.5 over 19.
    consistent = _eval(lambda: box_ops.encode_boxes(box, CONVENTION_ANCHOR))
    np.testing.assert_allclose(consistent[0, :2], [10.0 / 19.0, -10.0 / 39.0], rtol=1e-5)
    rng = np.random.RandomState(3)
    boxes, anchors = _random_boxes(rng, 20), _random_boxes(rng, 20)
    back = _eval(
        lambda: box_ops.decode_boxes(
            box_ops.encode_boxes(boxes, anchors, convention="tensorflow_tpu"),
            anchors,
            convention="tensorflow_tpu",
        )
    )
    np.testing.assert_allclose(back, boxes, atol=1e-3)


def test_clip_in_both_conventions():
    boxes = np.array([[-3, -2, 70, 90], [5, 6, 7, 8]], np.float32)
    consistent = _eval(lambda: box_ops.clip_boxes(boxes, [64, 80]))
    np.testing.assert_array_equal(consistent, [[0, 0, 64, 80], [5, 6, 7, 8]])
    tpu = _eval(lambda: box_ops.clip_boxes(boxes, [64, 80], convention="tensorflow_tpu"))
    np.testing.assert_array_equal(tpu, [[0, 0, 63, 79], [5, 6, 7, 8]])


def test_filter_boxes_by_size_in_the_tpu_convention():
    boxes = np.array(
        [
            [5, 5, 5, 5],  # tpu size 1: not above the floor of 1; consistent size 0
            [5, 5, 6, 6],  # tpu size 2, consistent 1
            [63.5, 10, 64, 20],  # tpu centre 63.5 + 1.5 / 2 = 64.25: outside a 64 px image
        ],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7], np.float32)

    def kept(min_size, convention):
        return _eval(
            lambda: box_ops.filter_boxes_by_size(
                boxes, scores, [64, 64], min_size, convention=convention
            )
        )[1]

    np.testing.assert_allclose(kept(0.0, "consistent"), [0, 0.8, 0.7])
    np.testing.assert_allclose(kept(0.0, "tensorflow_tpu"), [0, 0.8, 0])
    np.testing.assert_allclose(kept(1.5, "consistent"), [0, 0, 0])
    np.testing.assert_allclose(kept(1.5, "tensorflow_tpu"), [0, 0.8, 0])


@pytest.mark.parametrize(
    "fn",
    [
        lambda c: box_ops.encode_boxes(CONVENTION_ANCHOR, CONVENTION_ANCHOR, convention=c),
        lambda c: box_ops.decode_boxes(CONVENTION_CODE, CONVENTION_ANCHOR, convention=c),
        lambda c: box_ops.clip_boxes(CONVENTION_ANCHOR, [10, 10], convention=c),
        lambda c: box_ops.filter_boxes_by_size(
            CONVENTION_ANCHOR, [1.0], [10, 10], 0.0, convention=c
        ),
    ],
)
def test_unknown_convention(fn):
    with pytest.raises(
        ValueError,
        match=r"`convention` must be one of \['consistent', 'tensorflow_tpu'\]; "
        r"received 'detectron'",
    ):
        fn("detectron")
