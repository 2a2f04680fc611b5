"""Tests for mask targets (resizes of the gt-box crops, a NumPy reference, edge cases)
and for the graph's mask paste against the evaluation's NumPy paste."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.evaluation import mask_paste
from official.detection.ops import mask_ops, roi_sampling

CROP = 16
TARGET = 8
GT_BOX = [8.0, 4.0, 40.0, 68.0]  # 32 x 64 pixels


@pytest.fixture(autouse=True)
def _fresh_graph():
    with tf.Graph().as_default():
        yield


def _run(fetches):
    with tf.Session() as sess:
        return sess.run(fetches)


def _crops(rng, num_gt=3):
    """[1, num_gt, CROP, CROP] soft masks in [0, 1]."""
    return rng.uniform(0.0, 1.0, (1, num_gt, CROP, CROP)).astype(np.float32)


def _targets(gt_masks, rois, gt_boxes, indices, size=TARGET):
    return _run(
        mask_ops.crop_mask_targets(
            gt_masks,
            np.asarray(rois, np.float32),
            np.asarray(gt_boxes, np.float32),
            np.asarray(indices, np.int32),
            mask_target_size=size,
        )
    )


def _resize(image, size):
    """Half-pixel-centre bilinear resize of [H, W] to size x size (independent op)."""
    return _run(
        tf.image.resize_bilinear(image[None, ..., None], [size, size], half_pixel_centers=True)
    )[0, ..., 0]


def _reference(crop, roi, gt_box, size):
    """NumPy: the mask (0 outside its box) at the cell centres of a size x size RoI grid."""
    framed = np.pad(crop, 1)
    out = np.zeros([size, size])
    gt_h, gt_w = gt_box[2] - gt_box[0], gt_box[3] - gt_box[1]
    for i in range(size):
        y = roi[0] + (i + 0.5) * (roi[2] - roi[0]) / size
        v = (y - gt_box[0]) / gt_h * crop.shape[0] + 0.5
        for j in range(size):
            x = roi[1] + (j + 0.5) * (roi[3] - roi[1]) / size
            u = (x - gt_box[1]) / gt_w * crop.shape[1] + 0.5
            if not (0 <= v <= crop.shape[0] + 1 and 0 <= u <= crop.shape[1] + 1):
                continue
            v0, u0 = min(int(v), crop.shape[0]), min(int(u), crop.shape[1])
            dv, du = v - v0, u - u0
            out[i, j] = (
                framed[v0, u0] * (1 - dv) * (1 - du)
                + framed[v0, u0 + 1] * (1 - dv) * du
                + framed[v0 + 1, u0] * dv * (1 - du)
                + framed[v0 + 1, u0 + 1] * dv * du
            )
    return out


def test_roi_equal_to_its_gt_box_gives_the_crop_resized():
    rng = np.random.RandomState(0)
    gt_masks = _crops(rng)
    targets = _targets(gt_masks, [[GT_BOX]], [[GT_BOX]], [[2]])
    assert targets.shape == (1, 1, TARGET, TARGET)
    np.testing.assert_allclose(targets[0, 0], _resize(gt_masks[0, 2], TARGET), atol=1e-5)


def test_parser_sized_crop_to_28():
    rng = np.random.RandomState(1)
    gt_masks = rng.uniform(0.0, 1.0, (1, 1, 112, 112)).astype(np.float32)
    targets = _targets(gt_masks, [[GT_BOX]], [[GT_BOX]], [[0]], size=28)
    np.testing.assert_allclose(targets[0, 0], _resize(gt_masks[0, 0], 28), atol=1e-5)


def test_roi_covering_half_the_gt_box_gives_that_half():
    rng = np.random.RandomState(2)
    gt_masks = _crops(rng)
    ymin, xmin, ymax, xmax = GT_BOX
    top = [ymin, xmin, (ymin + ymax) / 2, xmax]
    right = [ymin, (xmin + xmax) / 2, ymax, xmax]
    targets = _targets(gt_masks, [[top, right]], [[GT_BOX, GT_BOX]], [[1, 1]])
    crop = gt_masks[0, 1]
    np.testing.assert_allclose(targets[0, 0], _resize(crop[: CROP // 2], TARGET), atol=1e-5)
    np.testing.assert_allclose(targets[0, 1], _resize(crop[:, CROP // 2 :], TARGET), atol=1e-5)


def test_rois_beyond_the_gt_box_read_zeros_outside_it():
    # A RoI twice the gt box: the outer quarter on each side is outside the mask.
    gt_masks = np.ones([1, 1, CROP, CROP], np.float32)
    ymin, xmin, ymax, xmax = GT_BOX
    h, w = ymax - ymin, xmax - xmin
    roi = [ymin - h / 2, xmin - w / 2, ymax + h / 2, xmax + w / 2]
    targets = _targets(gt_masks, [[roi]], [[GT_BOX]], [[0]])
    expected = np.zeros([TARGET, TARGET])
    expected[2:6, 2:6] = 1.0
    np.testing.assert_allclose(targets[0, 0], expected, atol=1e-6)


def test_matches_numpy_reference_for_arbitrary_rois():
    rng = np.random.RandomState(3)
    gt_masks = _crops(rng, num_gt=2)
    gt_boxes = [[10.0, 12.0, 50.0, 40.0], [0.0, 0.0, 30.0, 90.0]]
    rois, boxes, indices = [], [], []
    for _ in range(10):
        index = rng.randint(2)
        gt = np.array(gt_boxes[index])
        jitter = rng.uniform(-0.3, 0.3, 4) * np.tile([gt[2] - gt[0], gt[3] - gt[1]], 2)
        rois.append(gt + jitter)
        boxes.append(gt)
        indices.append(index)
    targets = _targets(gt_masks, [rois], [boxes], [indices])
    for r in range(10):
        expected = _reference(gt_masks[0, indices[r]], rois[r], boxes[r], TARGET)
        np.testing.assert_allclose(targets[0, r], expected, atol=1e-4)


def test_unmatched_rois_and_padded_masks_give_zeros():
    rng = np.random.RandomState(4)
    gt_masks = _crops(rng, num_gt=2)
    gt_masks[0, 1] = -1.0  # a padded row, as the parser pads
    targets = _targets(gt_masks, [[GT_BOX, [-1.0] * 4]], [[GT_BOX, [0.0] * 4]], [[0, -1]])
    assert np.all(targets[0, 1] == 0.0)
    assert np.all((targets >= 0.0) & (targets <= 1.0))


def test_each_image_reads_its_own_masks():
    rng = np.random.RandomState(5)
    gt_masks = rng.uniform(0.0, 1.0, (2, 3, CROP, CROP)).astype(np.float32)
    targets = _targets(gt_masks, [[GT_BOX], [GT_BOX]], [[GT_BOX], [GT_BOX]], [[2], [1]])
    np.testing.assert_allclose(targets[0, 0], _resize(gt_masks[0, 2], TARGET), atol=1e-5)
    np.testing.assert_allclose(targets[1, 0], _resize(gt_masks[1, 1], TARGET), atol=1e-5)


def test_with_sampled_rois_gt_rows_get_their_resized_crops():
    rng = np.random.RandomState(6)
    gt_boxes = np.array([[[8, 4, 40, 68], [50, 50, 90, 80], [-1, -1, -1, -1]]], np.float32)
    gt_masks = _crops(rng)
    far_away = np.array([[[100, 100, 110, 110]] * 6], np.float32)
    samples = roi_sampling.sample_rois(
        far_away, gt_boxes, [[1, 2, -1]], num_samples_per_image=8, fg_fraction=0.5
    )
    selected = roi_sampling.select_foreground_rois(samples, num_mask_samples_per_image=4)
    targets = mask_ops.crop_mask_targets(
        gt_masks,
        selected["rois"],
        selected["matched_gt_boxes"],
        selected["matched_gt_indices"],
        mask_target_size=TARGET,
    )
    selected, targets = _run([selected, targets])
    assert selected["matched_gt_indices"][0].tolist() == [0, 1, -1, -1]
    for r in range(2):
        np.testing.assert_allclose(targets[0, r], _resize(gt_masks[0, r], TARGET), atol=1e-5)
    assert np.all(targets[0, 2:] == 0.0)


@pytest.mark.parametrize(
    "masks, rois, size, message",
    [
        ([1, 2, 8, 6], [1, 3, 4], 28, r"`gt_masks` must be \[B, G, S, S\] with static G and S"),
        ([1, None, 8, 8], [1, 3, 4], 28, r"`gt_masks` must be \[B, G, S, S\]"),
        ([1, 2, 8, 8], [1, None, 4], 28, r"`rois` must be \[B, M, 4\] with a static M"),
        ([1, 2, 8, 8], [1, 3, 4], 0, "`mask_target_size` must be an int >= 1; received 0"),
    ],
)
def test_errors(masks, rois, size, message):
    with pytest.raises(ValueError, match=message):
        mask_ops.crop_mask_targets(
            tf.placeholder(tf.float32, masks),
            tf.placeholder(tf.float32, rois),
            tf.zeros([1, 3, 4]),
            tf.zeros([1, 3], tf.int32),
            mask_target_size=size,
        )


def _paste(masks, boxes, height, width, *, dynamic_size=False):
    if dynamic_size:
        size = tf.placeholder_with_default(np.int32([height, width]), [2])
        return _run(mask_ops.paste_instance_masks(masks, boxes, size[0], size[1]))
    return _run(mask_ops.paste_instance_masks(masks, boxes, height, width))


def test_paste_equals_the_evaluation_paste():
    rng = np.random.default_rng(3)
    masks = rng.uniform(0.0, 1.0, (2, 6, 7, 7)).astype(np.float32)
    corners = rng.uniform(-10.0, 70.0, (2, 6, 2, 2))
    boxes = np.concatenate([corners.min(axis=2), corners.max(axis=2)], axis=-1)
    boxes = boxes.astype(np.float32)
    pasted = _paste(masks, boxes, 50, 60)
    assert pasted.dtype == np.uint8 and pasted.shape == (2, 6, 50, 60)
    expected = np.stack(
        [mask_paste.paste_instance_masks(m, b, 50, 60) for m, b in zip(masks, boxes)]
    )
    # float32 here, float64 there: only a value within rounding of 0.5 may differ.
    assert np.count_nonzero(pasted != expected) <= 2
    assert expected.sum() > 1000


def test_paste_cuts_boxes_at_the_image_border_and_empties_degenerate_ones():
    masks = np.ones((1, 3, 4, 4), np.float32)
    boxes = np.float32([[[-5, -5, 5, 5], [2, 2, 2, 8], [6, 6, 1, 1]]])
    pasted = _paste(masks, boxes, 8, 10, dynamic_size=True)
    assert pasted.shape == (1, 3, 8, 10)
    # Cells are 2.5 pixels; pixel 4 (centre 4.5) reads 0.7 of the last cell and 0.3 of
    # the zero padding along each axis: on at the edges, 0.7 * 0.7 < 0.5 at the corner.
    expected = np.ones((5, 5), np.uint8)
    expected[4, 4] = 0
    np.testing.assert_array_equal(pasted[0, 0, :5, :5], expected)
    assert pasted[0, 0].sum() == 24
    assert pasted[0, 1:].sum() == 0


def test_paste_of_a_box_on_the_pixel_grid_is_the_resized_mask():
    # A 2x2 mask on a 4x4 box: each cell covers 2x2 pixels; values 0.9 and 0.2.
    masks = np.float32([[[[0.9, 0.2], [0.2, 0.9]]]])
    pasted = _paste(masks, np.float32([[[0, 0, 4, 4]]]), 4, 4)
    # Pixel centres 0.5, 1.5 are at cell positions -0.25, 0.25: the outer ones blend
    # with the zero padding (0.75 * 0.9 = 0.675 > 0.5), the inner ones with the
    # neighbour cell (0.75 * 0.9 + 0.25 * 0.2 = 0.725).
    np.testing.assert_array_equal(
        pasted[0, 0], [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    )
