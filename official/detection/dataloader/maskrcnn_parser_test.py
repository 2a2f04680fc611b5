"""Tests for the Mask R-CNN parser on tiny hand-built examples."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.dataloader import maskrcnn_parser
from official.detection.dataloader import tf_example_builder as builder

LEVELS = (2, 6)
NUM_ANCHORS = 3  # 1 scale x 3 aspect ratios.
MAX_INSTANCES = 4
CROP = 8


def _parser(mode, **kwargs):
    args = dict(
        output_size=[128, 128],
        min_level=LEVELS[0],
        max_level=LEVELS[1],
        num_scales=1,
        aspect_ratios=[1.0, 2.0, 0.5],
        anchor_size=8.0,
        max_num_instances=MAX_INSTANCES,
        include_mask=True,
        mask_crop_size=CROP,
        mode=mode,
    )
    args.update(kwargs)
    return maskrcnn_parser.Parser(**args)


def _example(height, width, boxes_px=(), classes=(), masks=None, is_crowd=None, image=None):
    """boxes_px: pixel boxes of the original image; masks: [N, H, W] {0, 1} or None."""
    if image is None:
        image = np.full([height, width, 3], 100, np.uint8)
    boxes = np.asarray(boxes_px, np.float32).reshape([-1, 4]) / [height, width, height, width]
    pngs = None if masks is None else [builder.encode_mask(m) for m in masks]
    return builder.build_example(
        builder.encode_image(image, "png"),
        height,
        width,
        boxes,
        classes,
        is_crowd=is_crowd,
        masks_png=pngs,
        source_id="7",
        image_format="png",
    ).SerializeToString()


def _box_mask(height, width, box):
    mask = np.zeros([height, width], np.uint8)
    ymin, xmin, ymax, xmax = [int(v) for v in box]
    mask[ymin:ymax, xmin:xmax] = 1
    return mask


def _parse(parser, serialized, repeats=1):
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        image, labels = parser(tf.constant(serialized))
        with tf.Session() as sess:
            values = [sess.run((image, labels)) for _ in range(repeats)]
        return values, (image, labels)


def test_train_outputs_have_static_shapes():
    box = [16.0, 8.0, 48.0, 40.0]
    serialized = _example(64, 96, [box], [3], masks=[_box_mask(64, 96, box)])
    parser = _parser("train", aug_rand_hflip=True, aug_scale_min=0.8, aug_scale_max=1.25)
    _, (image, labels) = _parse(parser, serialized)
    assert image.shape.as_list() == [128, 128, 3]
    assert labels["gt_boxes"].shape.as_list() == [MAX_INSTANCES, 4]
    assert labels["gt_classes"].shape.as_list() == [MAX_INSTANCES]
    assert labels["gt_masks"].shape.as_list() == [MAX_INSTANCES, CROP, CROP]
    assert labels["image_info"].shape.as_list() == [4, 2]
    for level in range(LEVELS[0], LEVELS[1] + 1):
        size = 128 // 2**level
        assert labels["rpn_score_targets"][level].shape.as_list() == [size, size, NUM_ANCHORS]
        assert labels["rpn_box_targets"][level].shape.as_list() == [size, size, NUM_ANCHORS * 4]
        assert labels["anchor_boxes"][level].shape.as_list() == [size, size, NUM_ANCHORS * 4]


def test_gt_boxes_round_trip_through_image_info():
    # 64 x 96 into 128 x 128: scale = min(128/64, 128/96) = 4/3 -> 85 x 128.
    boxes = [[16.0, 8.0, 48.0, 40.0], [0.0, 48.0, 30.0, 96.0]]
    serialized = _example(64, 96, boxes, [3, 9])
    [(_, labels)], _ = _parse(_parser("train", include_mask=False), serialized)
    info = labels["image_info"]
    np.testing.assert_allclose(info, [[64, 96], [85, 128], [85 / 64, 128 / 96], [0, 0]], rtol=1e-6)
    gt = labels["gt_boxes"]
    back = (gt[:2] + np.tile(info[3], 2)) / np.tile(info[2], 2)
    np.testing.assert_allclose(back, boxes, rtol=1e-5)
    np.testing.assert_array_equal(labels["gt_classes"], [3, 9, -1, -1])
    np.testing.assert_array_equal(gt[2:], -np.ones([2, 4]))
    assert "gt_masks" not in labels


def test_tensorflow_tpu_convention_clips_gt_boxes_to_output_size_minus_one():
    # The second box of test_gt_boxes_round_trip_through_image_info ends at x = 96 * 4/3
    # = 128, the right edge of the 128 px window.
    boxes = [[16.0, 8.0, 48.0, 40.0], [0.0, 48.0, 30.0, 96.0]]
    parser = _parser("train", include_mask=False, box_convention="tensorflow_tpu")
    [(_, labels)], _ = _parse(parser, _example(64, 96, boxes, [3, 9]))
    scale = [85 / 64, 128 / 96, 85 / 64, 128 / 96]
    np.testing.assert_allclose(labels["gt_boxes"][1], [0, 64, 30 * 85 / 64, 127], rtol=1e-5)
    np.testing.assert_allclose(labels["gt_boxes"][0], np.multiply(boxes[0], scale), rtol=1e-5)


def test_jittered_boxes_stay_consistent_with_image_info():
    box = [20.0, 30.0, 40.0, 60.0]
    parser = _parser("train", include_mask=False, aug_scale_min=1.5, aug_scale_max=2.0)
    values, _ = _parse(parser, _example(64, 96, [box], [1]), repeats=10)
    for _, labels in values:
        info, gt = labels["image_info"], labels["gt_boxes"][0]
        assert (gt >= 0).all() and (gt[[0, 2]] <= 128).all() and (gt[[1, 3]] <= 128).all()
        expected = np.array(box) * np.tile(info[2], 2) - np.tile(info[3], 2)
        np.testing.assert_allclose(gt, np.clip(expected, 0, 128), rtol=1e-5, atol=1e-4)


def test_box_matching_an_anchor_is_an_rpn_positive():
    # Level-2 anchor (stride 4, size 32, ratio 1) centred at (42, 42) in a 128 x 128 image.
    box = [26.0, 26.0, 58.0, 58.0]
    [(_, labels)], _ = _parse(_parser("train", include_mask=False), _example(128, 128, [box], [5]))
    assert labels["rpn_score_targets"][2][10, 10, 0] == 1
    np.testing.assert_allclose(labels["rpn_box_targets"][2][10, 10, 0:4], 0.0, atol=1e-5)


def test_full_box_masks_crop_to_ones_with_and_without_flip():
    box = [16.0, 8.0, 48.0, 40.0]
    serialized = _example(64, 96, [box], [3], masks=[_box_mask(64, 96, box)])
    parser = _parser("train", aug_rand_hflip=True)
    values, _ = _parse(parser, serialized, repeats=12)
    xmins = set()
    for _, labels in values:
        np.testing.assert_allclose(labels["gt_masks"][0], np.ones([CROP, CROP]), atol=1e-5)
        np.testing.assert_array_equal(labels["gt_masks"][1:], -np.ones([3, CROP, CROP]))
        xmins.add(round(float(labels["gt_boxes"][0, 1]), 3))
    assert len(xmins) == 2  # Both the flipped and the unflipped case were seen.


def test_flipped_masks_follow_the_flipped_image():
    # The mask fills the left half of its box; the image is dark left of x = 48.
    box = [16.0, 8.0, 48.0, 40.0]
    mask = _box_mask(64, 96, [16.0, 8.0, 48.0, 24.0])
    image = np.full([64, 96, 3], 200, np.uint8)
    image[:, :48] = 0
    serialized = _example(64, 96, [box], [3], masks=[mask], image=image)
    values, _ = _parse(_parser("train", aug_rand_hflip=True), serialized, repeats=12)
    seen = set()
    for image_v, labels in values:
        flipped = image_v[0, 0, 0] > 0  # Bright pixels moved to the left edge.
        seen.add(bool(flipped))
        crop = labels["gt_masks"][0]
        ones, zeros = (
            (crop[:, CROP // 2 :], crop[:, : CROP // 2])
            if flipped
            else (
                crop[:, : CROP // 2],
                crop[:, CROP // 2 :],
            )
        )
        np.testing.assert_allclose(ones, 1.0, atol=1e-5)
        np.testing.assert_allclose(zeros, 0.0, atol=1e-5)
        x_scale = labels["image_info"][2, 1]
        expected_xmin = (96 - 40.0) * x_scale if flipped else 8.0 * x_scale
        np.testing.assert_allclose(labels["gt_boxes"][0, 1], expected_xmin, rtol=1e-5)
    assert seen == {True, False}


def test_crowds_are_skipped_with_their_masks():
    boxes = [[0.0, 0.0, 32.0, 32.0], [32.0, 32.0, 64.0, 64.0]]
    masks = [np.zeros([64, 64], np.uint8), _box_mask(64, 64, boxes[1])]
    serialized = _example(64, 64, boxes, [8, 9], masks=masks, is_crowd=[1, 0])
    [(_, labels)], _ = _parse(_parser("train"), serialized)
    np.testing.assert_array_equal(labels["gt_classes"], [9, -1, -1, -1])
    np.testing.assert_allclose(labels["gt_boxes"][0], [64.0, 64.0, 128.0, 128.0])
    np.testing.assert_allclose(labels["gt_masks"][0], 1.0, atol=1e-5)  # The non-crowd mask.
    [(_, labels)], _ = _parse(_parser("train", skip_crowd_during_training=False), serialized)
    np.testing.assert_array_equal(labels["gt_classes"], [8, 9, -1, -1])
    np.testing.assert_allclose(labels["gt_masks"][0], 0.0, atol=1e-5)


def test_image_without_objects_parses():
    serialized = _example(64, 80, masks=np.zeros([0, 64, 80]))
    [(_, labels)], _ = _parse(_parser("train", aug_rand_hflip=True), serialized)
    np.testing.assert_array_equal(labels["gt_classes"], -np.ones(MAX_INSTANCES))
    np.testing.assert_array_equal(labels["gt_masks"], -np.ones([MAX_INSTANCES, CROP, CROP]))
    for targets in labels["rpn_score_targets"].values():
        assert (targets != 1).all()


def test_eval_groundtruths_carry_png_masks():
    box = [16.0, 8.0, 48.0, 40.0]
    mask = _box_mask(64, 96, box)
    serialized = _example(64, 96, [box], [3], masks=[mask])
    [(image, labels)], _ = _parse(_parser("eval"), serialized)
    assert set(labels) == {"image_info", "source_id", "anchor_boxes", "groundtruths"}
    gt = labels["groundtruths"]
    assert gt["num_detections"] == 1 and labels["source_id"] == 7
    np.testing.assert_allclose(gt["boxes"][0], box, rtol=1e-5)
    assert list(gt["masks"]) == [builder.encode_mask(mask), b"", b"", b""]
    np.testing.assert_array_equal(gt["classes"], [3, -1, -1, -1])
    assert image.shape == (128, 128, 3)

    [(_, labels)], _ = _parse(_parser("eval", include_mask=False), serialized)
    assert "masks" not in labels["groundtruths"]
    [(_, labels)], _ = _parse(_parser("predict"), serialized)
    assert "groundtruths" not in labels


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="maskrcnn_parser.Parser: unknown mode 'eval2'"):
        _parser("eval2")


def test_records_without_masks_fail_with_a_clear_message():
    serialized = _example(64, 64, [[8.0, 8.0, 40.0, 40.0]], [3], masks=None)
    with pytest.raises(tf.errors.InvalidArgumentError, match="fewer image/object/mask PNGs"):
        _parse(_parser("train"), serialized)
