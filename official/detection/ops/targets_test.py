"""Tests for RetinaNet and RPN anchor targets."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib
from official.detection.ops import matching, targets
from official.detection.ops.sentinels import IGNORE, NEGATIVE, POSITIVE

RETINANET_LAYOUT = (3, 5, 3, [1.0, 2.0, 0.5], 4.0, [64, 64])
RPN_LAYOUT = (2, 4, 1, [1.0, 2.0, 0.5], 8.0, [96, 96])


def _flat(multilevel, values_per_anchor=None):
    """{level: [H, W, A * k]} NumPy maps -> [N] (k = 1) or [N, k] in anchor order."""
    shape = [-1] if values_per_anchor is None else [-1, values_per_anchor]
    return np.concatenate([multilevel[level].reshape(shape) for level in sorted(multilevel)])


def _numpy_encode(boxes, anchors):
    boxes, anchors = boxes.astype(np.float64), anchors.astype(np.float64)
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    dy = ((boxes[:, 0] + boxes[:, 2]) - (anchors[:, 0] + anchors[:, 2])) / 2 / ha
    dx = ((boxes[:, 1] + boxes[:, 3]) - (anchors[:, 1] + anchors[:, 3])) / 2 / wa
    return np.stack([dy, dx, np.log(h / ha), np.log(w / wa)], axis=1)


def _random_gt(rng, count, size):
    centers = rng.uniform(0, size, [count, 2])
    sides = rng.uniform(8, size / 2, [count, 2])
    return np.clip(np.concatenate([centers - sides / 2, centers + sides / 2], 1), 0, size).astype(
        np.float32
    )


def _retinanet(anchors, gt_boxes, gt_classes, **kwargs):
    with tf.Graph().as_default(), tf.Session() as sess:
        out = targets.assign_retinanet_targets(
            anchors,
            np.asarray(gt_boxes, np.float32).reshape(-1, 4),
            np.asarray(gt_classes, np.int32),
            **kwargs,
        )
        for level, (h, w) in anchors.feature_sizes.items():
            a = anchors.anchors_per_location
            assert out["cls_targets"][level].shape.as_list() == [h, w, a]
            assert out["cls_targets"][level].dtype == tf.int32
            assert out["box_targets"][level].shape.as_list() == [h, w, 4 * a]
        return sess.run(out)


def test_gt_equal_to_one_anchor_makes_exactly_that_anchor_positive():
    # 8 x 8 anchors at stride 8 do not overlap their neighbours, and the 16 x 16 anchors
    # of level 4 reach IoU 0.25 at most with an 8 x 8 box.
    anchors = anchors_lib.Anchors(3, 4, 1, [1.0], 1.0, [64, 64])
    gt_box = anchors.multilevel_boxes_numpy[3][2, 3, 0]
    np.testing.assert_array_equal(gt_box, [16, 24, 24, 32])
    out = _retinanet(anchors, [gt_box], [7])
    cls3 = out["cls_targets"][3]
    assert cls3[2, 3, 0] == 7
    assert (cls3 == 7).sum() == 1 and (cls3 == NEGATIVE).sum() == cls3.size - 1
    assert np.all(out["cls_targets"][4] == NEGATIVE)
    assert out["num_positives"] == 1.0
    for box_targets in out["box_targets"].values():
        np.testing.assert_array_equal(box_targets, 0.0)


def test_retinanet_layout_gt_on_an_anchor():
    anchors = anchors_lib.Anchors(*RETINANET_LAYOUT)
    gt_box = anchors.multilevel_boxes_numpy[4][1, 2, 4]  # scale 1, ratio 2
    out = _retinanet(anchors, [gt_box], [3])
    assert out["cls_targets"][4][1, 2, 4] == 3
    np.testing.assert_allclose(out["box_targets"][4][1, 2, 16:20], 0.0, atol=1e-6)
    cls = _flat(out["cls_targets"])
    iou = _iou_with(anchors, gt_box)
    np.testing.assert_array_equal(cls == 3, iou >= 0.5)
    assert out["num_positives"] == (iou >= 0.5).sum() > 1


def _iou_with(anchors, box):
    a = anchors.boxes_numpy.astype(np.float64)
    h = np.clip(np.minimum(a[:, 2], box[2]) - np.maximum(a[:, 0], box[0]), 0, None)
    w = np.clip(np.minimum(a[:, 3], box[3]) - np.maximum(a[:, 1], box[1]), 0, None)
    inter = h * w
    union = (
        (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    )
    return inter / union


@pytest.mark.parametrize("thresholds", [(0.5, 0.5), (0.5, 0.4)])
def test_retinanet_targets_match_reference(thresholds):
    anchors = anchors_lib.Anchors(*RETINANET_LAYOUT)
    rng = np.random.RandomState(3)
    gt_boxes = _random_gt(rng, 6, 64)
    gt_classes = rng.randint(1, 91, [6]).astype(np.int32)
    out = _retinanet(
        anchors,
        gt_boxes,
        gt_classes,
        match_threshold=thresholds[0],
        unmatched_threshold=thresholds[1],
    )
    with tf.Graph().as_default(), tf.Session() as sess:
        matched, states = sess.run(matching.match_boxes(anchors.boxes, gt_boxes, *thresholds))
    positive = states == POSITIVE
    expected_cls = np.where(positive, gt_classes[matched], states)
    np.testing.assert_array_equal(_flat(out["cls_targets"]), expected_cls)
    assert out["num_positives"] == positive.sum() > 0
    assert (expected_cls == IGNORE).any() == (thresholds[1] < thresholds[0])
    box_targets = _flat(out["box_targets"], 4)
    np.testing.assert_array_equal(box_targets[~positive], 0.0)
    expected = _numpy_encode(gt_boxes[matched[positive]], anchors.boxes_numpy[positive])
    np.testing.assert_allclose(box_targets[positive], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gt_boxes", [np.zeros([0, 4]), -np.ones([2, 4])], ids=["none", "padding"])
def test_retinanet_without_gt(gt_boxes):
    anchors = anchors_lib.Anchors(*RETINANET_LAYOUT)
    out = _retinanet(anchors, gt_boxes, -np.ones([len(gt_boxes)]))
    for level in anchors.feature_sizes:
        assert np.all(out["cls_targets"][level] == NEGATIVE)
        assert np.all(out["box_targets"][level] == 0.0)
    assert out["num_positives"] == 0.0


def _rpn(anchors, gt_boxes, **kwargs):
    with tf.Graph().as_default(), tf.Session() as sess:
        out = targets.assign_rpn_targets(
            anchors, np.asarray(gt_boxes, np.float32).reshape(-1, 4), **kwargs
        )
        for level, (h, w) in anchors.feature_sizes.items():
            assert out["score_targets"][level].shape.as_list() == [
                h,
                w,
                anchors.anchors_per_location,
            ]
            assert out["box_targets"][level].shape.as_list() == [
                h,
                w,
                4 * anchors.anchors_per_location,
            ]
        return sess.run(out)


def test_rpn_sampled_counts_and_box_targets():
    anchors = anchors_lib.Anchors(*RPN_LAYOUT)
    gt_boxes = _random_gt(np.random.RandomState(4), 12, 96)
    out = _rpn(anchors, gt_boxes, seed=1)
    scores = _flat(out["score_targets"])
    with tf.Graph().as_default(), tf.Session() as sess:
        matched, states = sess.run(matching.match_boxes(anchors.boxes, gt_boxes, 0.7, 0.3))
    positive = states == POSITIVE
    assert positive.sum() > 0
    assert (scores == 1).sum() == min(positive.sum(), 128)
    assert (scores == 0).sum() == 256 - (scores == 1).sum()
    assert set(np.unique(scores)) <= {-1, 0, 1}
    assert np.all(positive[scores == 1]) and np.all(states[scores == 0] == NEGATIVE)
    # Box targets for every positive anchor, sampled or not.
    box_targets = _flat(out["box_targets"], 4)
    np.testing.assert_array_equal(box_targets[~positive], 0.0)
    expected = _numpy_encode(gt_boxes[matched[positive]], anchors.boxes_numpy[positive])
    np.testing.assert_allclose(box_targets[positive], expected, rtol=1e-4, atol=1e-5)


def test_rpn_small_batch_and_fraction():
    anchors = anchors_lib.Anchors(*RPN_LAYOUT)
    gt_boxes = _random_gt(np.random.RandomState(6), 12, 96)
    out = _rpn(anchors, gt_boxes, batch_size_per_image=16, positive_fraction=0.25)
    scores = _flat(out["score_targets"])
    assert (scores == 1).sum() == 4 and (scores == 0).sum() == 12


def test_rpn_without_gt_samples_only_negatives():
    anchors = anchors_lib.Anchors(*RPN_LAYOUT)
    out = _rpn(anchors, np.zeros([0, 4]))
    scores = _flat(out["score_targets"])
    assert (scores == 0).sum() == 256 and (scores == 1).sum() == 0
    assert (scores == -1).sum() == anchors.num_anchors - 256
    assert all(np.all(b == 0.0) for b in out["box_targets"].values())


def test_rpn_one_box():
    anchors = anchors_lib.Anchors(*RPN_LAYOUT)
    gt_box = anchors.multilevel_boxes_numpy[3][5, 5, 0]
    out = _rpn(anchors, [gt_box])
    assert out["score_targets"][3][5, 5, 0] == 1
    np.testing.assert_allclose(out["box_targets"][3][5, 5, :4], 0.0, atol=1e-6)


def test_input_errors():
    anchors = anchors_lib.Anchors(*RETINANET_LAYOUT)
    with tf.Graph().as_default():
        with pytest.raises(
            TypeError, match=r"assign_retinanet_targets: `anchors` must be an anchors.Anchors"
        ):
            targets.assign_retinanet_targets(
                tf.zeros([4, 4]), tf.zeros([1, 4]), tf.zeros([1], tf.int32)
            )
        with pytest.raises(
            ValueError,
            match=r"assign_rpn_targets: `gt_boxes` must be \[N, 4\]; received shape \[1, 5\]",
        ):
            targets.assign_rpn_targets(anchors, tf.zeros([1, 5]))
        with pytest.raises(
            ValueError,
            match=r"assign_retinanet_targets: `gt_classes` must be \[N\]; received shape \[1, 1\]",
        ):
            targets.assign_retinanet_targets(anchors, tf.zeros([1, 4]), tf.zeros([1, 1], tf.int64))
