"""Tests for the RetinaNet parser on tiny hand-built examples."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.dataloader import retinanet_parser
from official.detection.dataloader import tf_example_builder as builder

LEVELS = (3, 7)
NUM_ANCHORS = 9  # 3 scales x 3 aspect ratios.


def _parser(mode, **kwargs):
    args = dict(
        output_size=[128, 128],
        min_level=LEVELS[0],
        max_level=LEVELS[1],
        num_scales=3,
        aspect_ratios=[1.0, 2.0, 0.5],
        anchor_size=4.0,
        max_num_instances=5,
        mode=mode,
    )
    args.update(kwargs)
    return retinanet_parser.Parser(**args)


def _example(height, width, boxes_normalized=(), classes=(), is_crowd=None, source_id="42"):
    image = np.full([height, width, 3], 100, np.uint8)
    return builder.build_example(
        builder.encode_image(image, "png"),
        height,
        width,
        boxes_normalized,
        classes,
        is_crowd=is_crowd,
        source_id=source_id,
        image_format="png",
    ).SerializeToString()


def _parse(parser, serialized):
    with tf.Graph().as_default():
        image, labels = parser(tf.constant(serialized))
        with tf.Session() as sess:
            values = sess.run((image, labels))
        return values, (image, labels)


def test_train_outputs_have_static_shapes():
    serialized = _example(96, 64, [[0.1, 0.1, 0.6, 0.7]], [5])
    parser = _parser("train", aug_rand_hflip=True, aug_scale_min=0.5, aug_scale_max=2.0)
    (image_v, labels_v), (image, labels) = _parse(parser, serialized)
    assert image.shape.as_list() == [128, 128, 3]
    assert image.dtype == tf.float32
    assert labels["image_info"].shape.as_list() == [4, 2]
    assert labels["num_positives"].shape.as_list() == []
    for level in range(LEVELS[0], LEVELS[1] + 1):
        size = 128 // 2**level
        assert labels["cls_targets"][level].shape.as_list() == [size, size, NUM_ANCHORS]
        assert labels["box_targets"][level].shape.as_list() == [size, size, NUM_ANCHORS * 4]
        assert labels["anchor_boxes"][level].shape.as_list() == [size, size, NUM_ANCHORS * 4]
    assert set(labels) == {
        "cls_targets",
        "box_targets",
        "anchor_boxes",
        "num_positives",
        "image_info",
    }
    assert image_v.shape == (128, 128, 3)


def test_image_info_and_padding_for_known_size():
    # 96 x 64 into 128 x 128: scale = min(128/96, 128/64) = 4/3 -> 128 x round(85.33) = 85.
    (image, labels), _ = _parse(_parser("eval"), _example(96, 64))
    np.testing.assert_allclose(
        labels["image_info"], [[96, 64], [128, 85], [128 / 96, 85 / 64], [0, 0]], rtol=1e-6
    )
    # Pixel value 100 normalised; zeros (the mean colour) in the padded columns.
    expected = (100 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(image[:, :85], np.broadcast_to(expected, [128, 85, 3]), rtol=1e-4)
    assert (image[:, 85:] == 0).all()


def test_box_matching_an_anchor_is_positive_with_its_class():
    # Level-3 anchor (stride 8, scale 0, ratio 1: 32 x 32) centred at (44, 44).
    box = np.array([28.0, 28.0, 60.0, 60.0]) / 128.0
    (_, labels), _ = _parse(_parser("train"), _example(128, 128, [box], [17]))
    cls_targets = labels["cls_targets"][3]
    assert cls_targets[5, 5, 0] == 17
    np.testing.assert_allclose(labels["box_targets"][3][5, 5, 0:4], 0.0, atol=1e-5)
    assert labels["num_positives"] >= 1
    positives = sum((t > 0).sum() for t in labels["cls_targets"].values())
    assert positives == labels["num_positives"]
    assert set(np.unique(cls_targets)) <= {-2, -1, 17}
    # Far from the box every anchor is negative.
    assert (labels["cls_targets"][3][12:, 12:] == -1).all()


def test_crowd_objects_are_skipped_in_training():
    boxes = [[0.0, 0.0, 0.25, 0.25], [0.5, 0.5, 1.0, 1.0]]
    serialized = _example(128, 128, boxes, [3, 4], is_crowd=[1, 0])
    (_, skipped), _ = _parse(_parser("train"), serialized)
    (_, kept), _ = _parse(_parser("train", skip_crowd_during_training=False), serialized)
    classes_skipped = np.unique(
        np.concatenate([t.ravel() for t in skipped["cls_targets"].values()])
    )
    classes_kept = np.unique(np.concatenate([t.ravel() for t in kept["cls_targets"].values()]))
    assert 3 not in classes_skipped and 4 in classes_skipped
    assert 3 in classes_kept and 4 in classes_kept


def test_image_without_objects_parses():
    (_, labels), _ = _parse(_parser("train", aug_rand_hflip=True), _example(80, 100))
    assert labels["num_positives"] == 0
    for targets in labels["cls_targets"].values():
        assert (targets == -1).all()


def test_eval_groundtruths_are_padded_in_original_pixels():
    boxes = [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]]
    serialized = _example(96, 64, boxes, [3, 90], is_crowd=[0, 1], source_id="397133")
    (image, labels), (_, tensors) = _parse(_parser("eval"), serialized)
    gt = labels["groundtruths"]
    assert labels["source_id"] == 397133 and gt["source_id"] == 397133
    assert (gt["height"], gt["width"], gt["num_detections"]) == (96, 64, 2)
    np.testing.assert_allclose(
        gt["boxes"],
        [[9.6, 12.8, 48.0, 38.4], [0, 0, 96, 64], [-1] * 4, [-1] * 4, [-1] * 4],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(gt["classes"], [3, 90, -1, -1, -1])
    np.testing.assert_array_equal(gt["is_crowds"], [0, 1, 0, 0, 0])
    np.testing.assert_allclose(gt["areas"][2:], [-1, -1, -1])
    assert tensors["groundtruths"]["boxes"].shape.as_list() == [5, 4]
    # Eval targets (for the eval loss) are there too, without augmentation.
    assert labels["num_positives"] > 0
    assert image.shape == (128, 128, 3)


def test_eval_clips_groundtruths_beyond_max_num_instances():
    boxes = [[0.1, 0.1, 0.2, 0.2]] * 7
    (_, labels), _ = _parse(_parser("eval"), _example(64, 64, boxes, [1] * 7))
    assert labels["groundtruths"]["num_detections"] == 5
    assert labels["groundtruths"]["boxes"].shape == (5, 4)


def test_predict_modes():
    serialized = _example(64, 64, [[0.1, 0.1, 0.5, 0.5]], [2], source_id="")
    (_, labels), _ = _parse(_parser("predict"), serialized)
    assert set(labels) == {"image_info", "source_id", "anchor_boxes"}
    assert labels["source_id"] >= 0  # A hash of the image bytes stands in for the id.
    (_, labels), _ = _parse(_parser("infer"), serialized)
    assert "groundtruths" not in labels
    (_, labels), _ = _parse(_parser("predict_with_gt"), serialized)
    assert labels["groundtruths"]["num_detections"] == 1


def test_image_is_float32_in_every_mode():
    for mode in ("train", "eval", "predict"):
        (_, _), (image, _) = _parse(_parser(mode), _example(64, 64))
        assert image.dtype == tf.float32


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="retinanet_parser.Parser: unknown mode 'test'"):
        _parser("test")
