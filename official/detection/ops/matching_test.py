"""Tests for argmax IoU matching: hand-computed cases and a NumPy reference."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib
from official.detection.ops import matching
from official.detection.ops.sentinels import IGNORE, NEGATIVE, POSITIVE

PAD_ROW = [-1.0, -1.0, -1.0, -1.0]


def _match(anchors, gt_boxes, positive, negative, force_match=True):
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(
            matching.match_boxes(
                np.asarray(anchors, np.float32),
                np.asarray(gt_boxes, np.float32).reshape(-1, 4),
                positive,
                negative,
                force_match=force_match,
            )
        )


def _numpy_iou(anchors, gt_boxes):
    """float32 IoU with the same operation order as box_ops, -1 for padded gt."""
    a, g = anchors[:, None, :], gt_boxes[None, :, :]
    zero = np.float32(0)
    h = np.maximum(np.minimum(a[..., 2], g[..., 2]) - np.maximum(a[..., 0], g[..., 0]), zero)
    w = np.maximum(np.minimum(a[..., 3], g[..., 3]) - np.maximum(a[..., 1], g[..., 1]), zero)
    inter = h * w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_g = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    iou = inter / np.maximum(area_a + area_g - inter, np.float32(1e-8))
    return np.where((gt_boxes.max(axis=1) < 0)[None, :], np.float32(-1), iou)


def _numpy_match(anchors, gt_boxes, positive, negative, force_match=True):
    """Reference matcher written from the module docstring."""
    num = len(anchors)
    if len(gt_boxes):
        iou = _numpy_iou(anchors, gt_boxes)
        max_iou, best_gt = iou.max(axis=1), iou.argmax(axis=1)
    else:
        iou, max_iou, best_gt = None, np.full([num], -1.0), np.zeros([num], int)
    states = np.where(
        max_iou >= positive, POSITIVE, np.where(max_iou >= negative, IGNORE, NEGATIVE)
    )
    matched = np.where(states == POSITIVE, best_gt, 0)
    if force_match:
        forced = {}
        for g in range(len(gt_boxes)):
            column = iou[:, g]
            best = column.max()
            if gt_boxes[g].max() < 0 or best <= 0:
                continue
            anchor = int(
                np.argmax(column >= best * np.float32(1.0 - matching.FORCE_MATCH_TOLERANCE))
            )
            forced.setdefault(anchor, g)
        for anchor, g in forced.items():
            matched[anchor], states[anchor] = g, POSITIVE
    return matched, states


def test_thresholds_and_ignore_band():
    anchors = [
        [0, 0, 10, 10],  # IoU 1
        [0, 5, 10, 15],  # IoU 1/3
        [0, 0, 10, 20],  # IoU 0.5
        [20, 20, 30, 30],  # IoU 0
    ]
    gt = [[0, 0, 10, 10]]
    matched, states = _match(anchors, gt, 0.5, 0.4)
    np.testing.assert_array_equal(states, [POSITIVE, NEGATIVE, POSITIVE, NEGATIVE])
    np.testing.assert_array_equal(matched, [0, 0, 0, 0])
    _, states = _match(anchors, gt, 0.5, 0.3)  # 1/3 falls in the ignore band [0.3, 0.5)
    np.testing.assert_array_equal(states, [POSITIVE, IGNORE, POSITIVE, NEGATIVE])
    _, states = _match(anchors, gt, 0.6, 0.5)  # IoU exactly 0.5 is not negative
    np.testing.assert_array_equal(states, [POSITIVE, NEGATIVE, IGNORE, NEGATIVE])


def test_each_anchor_takes_its_best_gt():
    anchors = [[0, 0, 10, 10], [0, 8, 10, 18]]
    gt = [[0, 9, 10, 19], [0, 0, 10, 11]]
    matched, states = _match(anchors, gt, 0.5, 0.5)
    np.testing.assert_array_equal(states, [POSITIVE, POSITIVE])
    np.testing.assert_array_equal(matched, [1, 0])


def test_force_match_when_best_iou_is_below_threshold():
    anchors = [[0, 0, 10, 30], [0, 0, 10, 40], [50, 50, 60, 60]]
    gt = [[0, 0, 10, 10]]  # IoU 1/3 and 1/4: no anchor reaches 0.5
    matched, states = _match(anchors, gt, 0.5, 0.5, force_match=False)
    np.testing.assert_array_equal(states, [NEGATIVE, NEGATIVE, NEGATIVE])
    matched, states = _match(anchors, gt, 0.5, 0.5)
    np.testing.assert_array_equal(states, [POSITIVE, NEGATIVE, NEGATIVE])
    np.testing.assert_array_equal(matched, [0, 0, 0])


def test_force_match_overrides_argmax_and_lowest_gt_wins():
    anchors = [[0, 0, 10, 10], [100, 100, 110, 110]]
    # gt 1 is anchor 0's argmax (IoU 1), but anchor 0 is also gt 0's only overlap.
    gt = [[0, 0, 10, 40], [0, 0, 10, 10]]
    matched, states = _match(anchors, gt, 0.5, 0.5)
    np.testing.assert_array_equal(states, [POSITIVE, NEGATIVE])
    np.testing.assert_array_equal(matched, [0, 0])
    # Two identical gts pick the same anchor: the lower index keeps it.
    matched, _ = _match(anchors, [[100, 100, 110, 111], [100, 100, 110, 111]], 0.5, 0.5)
    np.testing.assert_array_equal(matched, [0, 0])


def test_force_match_ties_go_to_the_lowest_anchor():
    # The gt sits in the middle of two equally good anchors.
    anchors = [[0, 0, 10, 10], [0, 6, 10, 16]]
    gt = [[0, 3, 10, 13]]  # IoU 70 / 130 with both
    _, states = _match(anchors, gt, 0.9, 0.9)
    np.testing.assert_array_equal(states, [POSITIVE, NEGATIVE])


def test_no_gt_padded_gt_and_degenerate_gt():
    anchors = [[0, 0, 10, 10], [0, 5, 10, 15]]
    for gt in ([], [PAD_ROW], [PAD_ROW, PAD_ROW]):
        matched, states = _match(anchors, gt, 0.5, 0.4)
        np.testing.assert_array_equal(states, [NEGATIVE, NEGATIVE])
        np.testing.assert_array_equal(matched, [0, 0])
    # Padded rows change nothing for the real ones.
    real = [[0, 4, 10, 14]]
    with_padding = _match(anchors, [PAD_ROW] + real + [PAD_ROW], 0.5, 0.4)
    without = _match(anchors, real, 0.5, 0.4)
    np.testing.assert_array_equal(with_padding[1], without[1])
    assert (without[1] == POSITIVE).any()
    expected = np.where(without[1] == POSITIVE, without[0] + 1, 0)
    np.testing.assert_array_equal(with_padding[0], expected)
    # A zero-size gt overlaps nothing and forces nothing.
    _, states = _match(anchors, [[20, 20, 20, 30]], 0.5, 0.4)
    np.testing.assert_array_equal(states, [NEGATIVE, NEGATIVE])


def _random_gt(rng, count, image_size):
    centers = rng.uniform(-10, image_size + 10, [count, 2])
    sizes = np.exp(rng.uniform(np.log(2.0), np.log(1.5 * image_size), [count, 2]))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    boxes[: count // 5, 2] = boxes[: count // 5, 0]  # a few zero-height boxes
    return boxes.astype(np.float32)


@pytest.mark.parametrize("thresholds", [(0.5, 0.5), (0.7, 0.3), (0.6, 0.4), (0.4, 0.0)])
@pytest.mark.parametrize(
    "layout",
    [
        (3, 5, 3, [1.0, 2.0, 0.5], 4.0, [64, 96]),
        (2, 4, 1, [1.0, 2.0, 0.5], 8.0, [72, 40]),
    ],
)
def test_match_boxes_and_match_anchors_agree_with_numpy(layout, thresholds):
    anchors = anchors_lib.Anchors(*layout)
    rng = np.random.RandomState(sum(layout[-1]) + int(10 * thresholds[1]))
    cases = [np.zeros([0, 4], np.float32), np.array([PAD_ROW], np.float32)]
    for count in (1, 3, 8, 20, 40):
        cases.append(_random_gt(rng, count, max(layout[-1])))
    cases.append(np.concatenate([cases[-1], [PAD_ROW, PAD_ROW]]).astype(np.float32))
    with tf.Graph().as_default(), tf.Session() as sess:
        gt = tf.placeholder(tf.float32, [None, 4])
        dense = matching.match_boxes(anchors.boxes, gt, *thresholds)
        grid = matching.match_anchors(anchors, gt, *thresholds)
        for gt_boxes in cases:
            (dense_m, dense_s), (grid_m, grid_s) = sess.run([dense, grid], {gt: gt_boxes})
            ref_m, ref_s = _numpy_match(anchors.boxes_numpy, gt_boxes, *thresholds)
            for matched, states in ((dense_m, dense_s), (grid_m, grid_s)):
                np.testing.assert_array_equal(states, ref_s)
                np.testing.assert_array_equal(matched, ref_m)
            if gt_boxes.shape[0] >= 20:
                # Every possible state occurs: an ignore band needs negative < positive,
                # and nothing is below a negative_threshold of 0.
                assert (ref_s == POSITIVE).any()
                assert (ref_s == IGNORE).any() == (thresholds[1] < thresholds[0])
                assert (ref_s == NEGATIVE).any() == (thresholds[1] > 0)


def test_match_anchors_without_force_match():
    anchors = anchors_lib.Anchors(3, 4, 1, [1.0], 4.0, [64, 64])
    gt_boxes = _random_gt(np.random.RandomState(5), 10, 64)
    with tf.Graph().as_default(), tf.Session() as sess:
        matched, states = sess.run(
            matching.match_anchors(anchors, gt_boxes, 0.6, 0.4, force_match=False)
        )
    ref_m, ref_s = _numpy_match(anchors.boxes_numpy, gt_boxes, 0.6, 0.4, force_match=False)
    np.testing.assert_array_equal(states, ref_s)
    np.testing.assert_array_equal(matched, ref_m)


def test_input_errors():
    anchors = anchors_lib.Anchors(3, 3, 1, [1.0], 4.0, [32, 32])
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"match_boxes: thresholds must satisfy .* "
            r"received positive_threshold=0.3, negative_threshold=0.5",
        ):
            matching.match_boxes(tf.zeros([3, 4]), tf.zeros([1, 4]), 0.3, 0.5)
        with pytest.raises(ValueError, match=r"match_anchors: thresholds must satisfy"):
            matching.match_anchors(anchors, tf.zeros([1, 4]), 1.5, 0.5)
        with pytest.raises(
            ValueError, match=r"match_boxes: `gt_boxes` must be \[G, 4\]; received shape \[4\]"
        ):
            matching.match_boxes(tf.zeros([3, 4]), tf.zeros([4]), 0.5, 0.5)
        with pytest.raises(
            ValueError, match=r"match_boxes: `anchors` must be \[N, 4\] with a static N"
        ):
            matching.match_boxes(tf.placeholder(tf.float32, [None, 4]), tf.zeros([1, 4]), 0.5, 0.5)
        with pytest.raises(TypeError, match=r"match_anchors: `anchors` must be an anchors.Anchors"):
            matching.match_anchors(tf.zeros([3, 4]), tf.zeros([1, 4]), 0.5, 0.5)
