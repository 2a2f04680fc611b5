"""Tests of every cross-field rule: its message, and that valid neighbours pass."""

import logging
import re

import pytest

from official.detection.configs.loader import ConfigError, load_config


def _fails(model, override, *fragments):
    with pytest.raises(ConfigError) as info:
        load_config(model, params_override=override)
    message = str(info.value)
    assert message.startswith("Inconsistent config")
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_min_level_above_max_level():
    _fails(
        "retinanet",
        "{architecture: {min_level: 5, max_level: 4}}",
        "architecture.min_level must not exceed architecture.max_level",
        "[architecture.min_level = 5 (from --params_override), "
        "architecture.max_level = 4 (from --params_override)]",
    )


def test_resnet_fpn_needs_min_level_on_resnet():
    _fails("mask_rcnn", "architecture.min_level=1", "architecture.min_level must be in 2..5")
    _fails("retinanet", "architecture.min_level=6", "architecture.min_level must be in 2..5")
    assert (
        load_config("retinanet", params_override="architecture.max_level=9").architecture.max_level
        == 9
    )


def test_resnet_identity_stays_within_resnet_levels():
    _fails(
        "retinanet",
        "architecture.multilevel_features=identity",
        "ResNet gives levels 2..5 and multilevel_features 'identity' adds none",
        "architecture.max_level = 7 (default)",
    )
    params = load_config(
        "retinanet",
        params_override="architecture.multilevel_features=identity,architecture.max_level=5",
    )
    assert params.architecture.max_level == 5


def test_spinenet_levels():
    _fails(
        "mask_rcnn",
        "architecture.backbone=spinenet",
        "SpineNet gives levels 3..7, so min_level..max_level must lie within them",
        "architecture.min_level = 2 (default)",
    )
    _fails("retinanet", "architecture.backbone=spinenet,architecture.max_level=8", "SpineNet")
    load_config(
        "mask_rcnn", params_override="architecture.backbone=spinenet,architecture.min_level=3"
    )


def test_step_schedule_lists_have_equal_length():
    _fails(
        "retinanet",
        "train.learning_rate.learning_rate_steps=[100]",
        "so both lists need the same length",
        "train.learning_rate.learning_rate_levels = [0.008, 0.0008] (default)",
        "train.learning_rate.learning_rate_steps = [100] (from --params_override)",
    )
    cosine = load_config(
        "retinanet",
        params_override="train.learning_rate.type=cosine,train.learning_rate.learning_rate_steps=[]",
    )
    assert cosine.train.learning_rate.learning_rate_steps == ()


def test_step_schedule_steps_increase():
    _fails(
        "retinanet",
        "train.learning_rate.learning_rate_steps=[200, 100]",
        "learning_rate_steps must be strictly increasing",
    )


def test_warmup_longer_than_training_only_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="official.detection.configs"):
        params = load_config("retinanet", params_override="train.total_steps=10")
    assert params.train.total_steps == 10
    assert "training stops before the learning-rate warm-up ends" in caplog.text
    assert "train.learning_rate.warmup_steps = 500 (default)" in caplog.text


def test_match_thresholds_and_scale_jitter():
    _fails(
        "retinanet",
        "retinanet_parser.unmatched_threshold=0.6",
        "retinanet_parser.unmatched_threshold must not exceed retinanet_parser.match_threshold",
    )
    _fails(
        "mask_rcnn",
        "maskrcnn_parser.rpn_unmatched_threshold=0.8",
        "maskrcnn_parser.rpn_unmatched_threshold must not exceed "
        "maskrcnn_parser.rpn_match_threshold",
    )
    _fails(
        "mask_rcnn",
        "maskrcnn_parser.aug_scale_min=2.0",
        "maskrcnn_parser.aug_scale_min must not exceed maskrcnn_parser.aug_scale_max",
    )


def test_deprecated_anchors_per_location():
    _fails(
        "retinanet",
        "retinanet_head.anchors_per_location=3",
        "retinanet_head.anchors_per_location is derived as anchor.num_scales * "
        "len(anchor.aspect_ratios)",
        "anchor.aspect_ratios = [1.0, 2.0, 0.5] (default)",
    )
    assert load_config("retinanet", params_override="retinanet_head.anchors_per_location=9")
    _fails("mask_rcnn", "rpn_head.anchors_per_location=9", "rpn_head.anchors_per_location")


@pytest.mark.parametrize(
    "path",
    [
        "maskrcnn_parser.mask_crop_size",
        "architecture.mask_target_size",
        "mask_sampling.num_mask_samples_per_image",
    ],
)
def test_masks_need_positive_sizes(path):
    _fails("mask_rcnn", f"{path}=0", f"architecture.include_mask needs {path} > 0")
    params = load_config("faster_rcnn", params_override=f"{path}=0")
    assert params.lookup(path) == 0


def test_box_and_mask_eval_needs_masks():
    _fails(
        "mask_rcnn",
        "architecture.include_mask=false",
        "eval.type 'box_and_mask' needs masks",
        "eval.type = 'box_and_mask' (default), architecture.include_mask = False "
        "(from --params_override)",
    )


def test_retinanet_eval_is_box_only():
    _fails("retinanet", "eval.type=box_and_mask", "RetinaNet predicts no masks")


def test_background_iou_range():
    _fails(
        "mask_rcnn",
        "roi_sampling.bg_iou_thresh_lo=0.6",
        "roi_sampling.bg_iou_thresh_lo must not exceed roi_sampling.bg_iou_thresh_hi",
    )


def test_faster_rcnn_forces_box_only_over_files_and_overrides():
    config = load_config(
        "faster_rcnn", params_override="architecture.include_mask=true,eval.type=box_and_mask"
    )
    assert config.architecture.include_mask is False
    assert config.eval.type == "box"
    assert config.source_of("architecture.include_mask") == "flag --model=faster_rcnn"


def test_all_failures_are_reported_together():
    message = _fails(
        "retinanet",
        "{architecture: {min_level: 8}, eval: {type: box_and_mask}}",
        "Inconsistent config (3 problems):\n  - ",
    )
    assert len(re.findall(r"\n  - ", message)) == 3
