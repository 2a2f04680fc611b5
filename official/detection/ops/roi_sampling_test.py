"""Tests for RoI sampling: counts, thresholds, targets, ordering, edge cases, errors."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops, roi_sampling

PAD_BOX = [-1.0, -1.0, -1.0, -1.0]


@pytest.fixture(autouse=True)
def _fresh_graph():
    with tf.Graph().as_default():
        yield


def _run(fetches):
    with tf.Session() as sess:
        return sess.run(fetches)


def _iou(box, boxes):
    """NumPy IoU of one box against [N, 4] boxes."""
    ymin = np.maximum(box[0], boxes[:, 0])
    xmin = np.maximum(box[1], boxes[:, 1])
    ymax = np.minimum(box[2], boxes[:, 2])
    xmax = np.minimum(box[3], boxes[:, 3])
    overlap = np.maximum(ymax - ymin, 0) * np.maximum(xmax - xmin, 0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return overlap / (area + areas - overlap)


GT_BOXES = np.array([[10, 10, 50, 50], [60, 60, 100, 100]] + [PAD_BOX] * 3, np.float32)
GT_CLASSES = np.array([3, 7, -1, -1, -1], np.int32)


def _proposals(rng, num_fg, num_bg):
    """Jittered copies of the gt boxes (IoU > 0.7) and boxes away from them (IoU 0)."""
    fg = GT_BOXES[rng.randint(0, 2, num_fg)] + rng.uniform(-2, 2, (num_fg, 4))
    corners = rng.uniform(0, 20, (num_bg, 2)) + [[100, 0]]
    bg = np.concatenate([corners, corners + rng.uniform(2, 20, (num_bg, 2))], axis=1)
    boxes = np.concatenate([fg, bg]).astype(np.float32)
    return boxes[rng.permutation(len(boxes))]


def test_exactly_a_quarter_foreground_when_enough_and_targets_consistent():
    rng = np.random.RandomState(0)
    rois = np.stack([_proposals(rng, 300, 700), _proposals(rng, 200, 800)])
    gt_boxes = np.stack([GT_BOXES, GT_BOXES])
    gt_classes = np.stack([GT_CLASSES, GT_CLASSES])
    out = _run(roi_sampling.sample_rois(rois, gt_boxes, gt_classes, seed=1))
    assert out["rois"].shape == (2, 512, 4)
    assert out["num_foreground"].tolist() == [128, 128]
    for b in range(2):
        classes = out["class_targets"][b]
        assert np.all(classes[:128] > 0) and np.all(classes[128:] == 0)
        assert np.all(out["matched_gt_indices"][b, 128:] == -1)
        # Every row is a real candidate, no row twice.
        assert not np.any(out["rois"][b] < 0)
        assert len({tuple(r) for r in out["rois"][b]}) == 512
        for r in range(512):
            ious = _iou(out["rois"][b, r], GT_BOXES[:2])
            if r < 128:
                index = out["matched_gt_indices"][b, r]
                assert index == np.argmax(ious) and ious[index] >= 0.5
                assert classes[r] == GT_CLASSES[index]
                np.testing.assert_allclose(out["matched_gt_boxes"][b, r], GT_BOXES[index])
            else:
                assert ious.max() < 0.5
                np.testing.assert_array_equal(out["box_targets"][b, r], 0.0)
                np.testing.assert_array_equal(out["matched_gt_boxes"][b, r], 0.0)


def test_box_targets_use_weights_10_10_5_5_and_decode_to_the_gt():
    rng = np.random.RandomState(1)
    rois = _proposals(rng, 50, 100)[np.newaxis]
    samples = roi_sampling.sample_rois(rois, GT_BOXES[np.newaxis], GT_CLASSES[np.newaxis])
    decoded = box_ops.decode_boxes(
        samples["box_targets"], samples["rois"], weights=[10.0, 10.0, 5.0, 5.0]
    )
    unweighted = box_ops.encode_boxes(samples["matched_gt_boxes"], samples["rois"])
    out, decoded, unweighted = _run([samples, decoded, unweighted])
    num_fg = out["num_foreground"][0]
    assert num_fg == 52  # 50 jittered proposals + the 2 gt boxes
    np.testing.assert_allclose(decoded[0, :num_fg], out["matched_gt_boxes"][0, :num_fg], atol=1e-3)
    np.testing.assert_allclose(
        out["box_targets"][0, :num_fg], unweighted[0, :num_fg] * [10.0, 10.0, 5.0, 5.0], atol=1e-4
    )
    assert np.abs(out["box_targets"][0, :num_fg]).max() > 0.1


def test_gt_boxes_join_the_candidates():
    rng = np.random.RandomState(2)
    rois = _proposals(rng, 0, 600)[np.newaxis]
    out = _run(roi_sampling.sample_rois(rois, GT_BOXES[np.newaxis], GT_CLASSES[np.newaxis]))
    assert out["num_foreground"].tolist() == [2]
    np.testing.assert_allclose(out["rois"][0, :2], GT_BOXES[:2])
    assert out["class_targets"][0, :2].tolist() == [3, 7]
    assert out["matched_gt_indices"][0, :2].tolist() == [0, 1]
    np.testing.assert_allclose(out["box_targets"][0, :2], 0.0, atol=1e-6)
    # Without mixing no row is foreground.
    out = _run(
        roi_sampling.sample_rois(
            rois, GT_BOXES[np.newaxis], GT_CLASSES[np.newaxis], mix_gt_boxes=False
        )
    )
    assert out["num_foreground"].tolist() == [0]


def test_background_thresholds_and_filler_rows():
    # gt [0, 0, 10, 10]; proposal [0, 0, 10, w] has IoU w / 10.
    gt_boxes = np.array([[[0, 0, 10, 10]]], np.float32)
    widths = [0.5, 2.0, 4.5, 5.5, 9.0]  # IoU 0.05, 0.2, 0.45, 0.55, 0.9
    rois = np.array([[[0, 0, 10, w] for w in widths]], np.float32)
    out = _run(
        roi_sampling.sample_rois(
            rois,
            gt_boxes,
            [[1]],
            num_samples_per_image=8,
            fg_fraction=0.5,
            fg_iou_thresh=0.5,
            bg_iou_thresh_lo=0.1,
            bg_iou_thresh_hi=0.4,
            mix_gt_boxes=False,
        )
    )
    # Foreground 0.55 and 0.9; background 0.2 only (0.05 < lo, 0.45 >= hi); 5 filler.
    assert out["num_foreground"].tolist() == [2]
    np.testing.assert_allclose(out["rois"][0, :3, 3], [5.5, 9.0, 2.0])
    np.testing.assert_array_equal(out["rois"][0, 3:], [PAD_BOX] * 5)
    assert out["class_targets"][0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert out["matched_gt_indices"][0].tolist() == [0, 0, -1, -1, -1, -1, -1, -1]
    np.testing.assert_array_equal(out["box_targets"][0, 2:], 0.0)


def test_foreground_cap_leaves_room_for_background():
    gt_boxes = np.array([[[0, 0, 10, 10]]], np.float32)
    rois = np.array([[[0, 0, 10, w] for w in (6.0, 7.0, 8.0, 9.0, 1.0, 2.0, 3.0)]], np.float32)
    out = _run(roi_sampling.sample_rois(rois, gt_boxes, [[4]], num_samples_per_image=4, seed=3))
    # int(4 * 0.25) = 1 foreground, 3 background (all three IoU < 0.5 proposals).
    assert out["num_foreground"].tolist() == [1]
    assert out["class_targets"][0].tolist() == [4, 0, 0, 0]
    assert sorted(out["rois"][0, 1:, 3].tolist()) == [1.0, 2.0, 3.0]


def test_no_ground_truth_gives_all_background():
    rng = np.random.RandomState(4)
    rois = _proposals(rng, 30, 30)[np.newaxis]
    gt_boxes = np.full([1, 5, 4], -1.0, np.float32)
    gt_classes = np.full([1, 5], -1, np.int32)
    out = _run(roi_sampling.sample_rois(rois, gt_boxes, gt_classes, num_samples_per_image=64))
    assert out["num_foreground"].tolist() == [0]
    assert np.all(out["class_targets"] == 0) and np.all(out["matched_gt_indices"] == -1)
    np.testing.assert_array_equal(out["box_targets"], 0.0)
    # All 60 proposals are background, the 4 remaining rows filler; padded gt never joins.
    assert np.all(out["rois"][0, :60] >= 0.0)
    np.testing.assert_array_equal(out["rois"][0, 60:], [PAD_BOX] * 4)


def test_padded_proposals_and_padded_gt_are_ignored():
    rois = np.array([[[100, 0, 110, 10], PAD_BOX, PAD_BOX, [12, 11, 50, 50]]], np.float32)
    out = _run(
        roi_sampling.sample_rois(
            rois,
            GT_BOXES[np.newaxis],
            GT_CLASSES[np.newaxis],
            num_samples_per_image=8,
            fg_fraction=0.5,
        )
    )
    # Candidates: the 2 real proposals and the 2 real gt boxes.
    assert out["num_foreground"].tolist() == [3]
    assert out["matched_gt_indices"][0].tolist() == [0, 0, 1, -1, -1, -1, -1, -1]
    np.testing.assert_allclose(out["rois"][0, 3], [100, 0, 110, 10])
    np.testing.assert_array_equal(out["rois"][0, 4:], [PAD_BOX] * 4)


def test_one_box():
    # Two foreground candidates (the proposal and the gt box), room for one.
    out = _run(
        roi_sampling.sample_rois(
            [[[0.0, 0.0, 8.0, 8.0]]],
            [[[0.0, 0.0, 8.0, 8.0]]],
            [[5]],
            num_samples_per_image=2,
            fg_fraction=0.5,
        )
    )
    np.testing.assert_array_equal(out["rois"][0], [[0, 0, 8, 8], PAD_BOX])
    assert out["class_targets"].tolist() == [[5, 0]]
    assert out["matched_gt_indices"].tolist() == [[0, -1]]
    assert out["num_foreground"].tolist() == [1]


def test_select_foreground_rois_is_the_leading_slice():
    rng = np.random.RandomState(5)
    rois = _proposals(rng, 20, 200)[np.newaxis]
    samples = roi_sampling.sample_rois(rois, GT_BOXES[np.newaxis], GT_CLASSES[np.newaxis])
    selected = roi_sampling.select_foreground_rois(samples, num_mask_samples_per_image=128)
    assert selected["rois"].shape.as_list() == [1, 128, 4]
    samples, selected = _run([samples, selected])
    assert np.all(selected["class_targets"][0, :22] > 0)
    assert np.all(selected["class_targets"][0, 22:] == 0)
    assert np.all(selected["matched_gt_indices"][0, 22:] == -1)
    for key, value in selected.items():
        np.testing.assert_array_equal(value, samples[key][:, :128])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_samples_per_image": 0}, "`num_samples_per_image` must be an int >= 1; received 0"),
        ({"fg_fraction": 1.5}, r"`fg_fraction` must be in \[0, 1\]; received 1.5"),
        ({"fg_iou_thresh": -0.1}, r"`fg_iou_thresh` must be in \[0, 1\]; received -0.1"),
        (
            {"bg_iou_thresh_lo": 0.6, "bg_iou_thresh_hi": 0.5},
            "bg_iou_thresh_lo <= bg_iou_thresh_hi <= 1; received bg_iou_thresh_lo=0.6",
        ),
    ],
)
def test_setting_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        roi_sampling.sample_rois(tf.zeros([1, 3, 4]), tf.zeros([1, 2, 4]), [[1, 1]], **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"`rois` must be \[B, N, 4\] with a static N"):
        roi_sampling.sample_rois(tf.zeros([3, 4]), tf.zeros([1, 2, 4]), [[1, 1]])
    with pytest.raises(ValueError, match=r"`gt_boxes` must be \[B, N, 4\]"):
        roi_sampling.sample_rois(tf.zeros([1, 3, 4]), tf.zeros([1, 2, 5]), [[1, 1]])
    with pytest.raises(ValueError, match=r"`gt_classes` must be \[B, 2\] like `gt_boxes`"):
        roi_sampling.sample_rois(tf.zeros([1, 3, 4]), tf.zeros([1, 2, 4]), [[1, 1, 1]])
    samples = roi_sampling.sample_rois(
        tf.zeros([1, 3, 4]), tf.zeros([1, 2, 4]), [[1, 1]], num_samples_per_image=4
    )
    with pytest.raises(ValueError, match=r"must be an int in \[1, 4\] .* received 5"):
        roi_sampling.select_foreground_rois(samples, num_mask_samples_per_image=5)


def test_tensorflow_tpu_box_targets_count_both_end_pixels():
    # RoI [10, 10, 29, 49] is 20 x 40 pixels centred at (20, 30) in the tensorflow_tpu
    # convention; gt [10, 10, 50, 50] is 41 x 41 centred at (30.5, 30.5).
    rois = np.array([[[10, 10, 29, 49]]], np.float32)
    gt_boxes = np.array([[[10, 10, 50, 50]]], np.float32)
    samples = roi_sampling.sample_rois(
        rois,
        gt_boxes,
        np.array([[3]], np.int32),
        num_samples_per_image=2,
        fg_fraction=0.5,
        fg_iou_thresh=0.3,
        mix_gt_boxes=False,
        convention="tensorflow_tpu",
    )
    out = _run(samples)
    expected = [
        10.0 * 10.5 / 20.0,
        10.0 * 0.5 / 40.0,
        5.0 * np.log(41.0 / 20.0),
        5.0 * np.log(41.0 / 40.0),
    ]
    np.testing.assert_allclose(out["box_targets"][0, 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(out["box_targets"][0, 1], 0.0)
