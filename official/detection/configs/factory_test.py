"""Tests of the model table: defaults equal the ancestor's, every key is documented."""

import re

import pytest

from official.detection.configs import factory
from official.detection.configs.base_config import RESNET_FROZEN_VARIABLE_PREFIX
from official.detection.configs.errors import ConfigError
from official.detection.configs.loader import load_config

# Defaults read off the ancestor's base, detection, retinanet and maskrcnn configs.
SHARED_DEFAULTS = {
    "model_dir": "",
    "use_tpu": True,
    "architecture.backbone": "resnet",
    "architecture.multilevel_features": "fpn",
    "architecture.num_classes": 91,
    "architecture.use_bfloat16": True,
    "train.iterations_per_loop": 100,
    "train.train_batch_size": 64,
    "train.total_steps": 22500,
    "train.optimizer.type": "momentum",
    "train.optimizer.momentum": 0.9,
    "train.learning_rate.type": "step",
    "train.learning_rate.warmup_learning_rate": 0.0067,
    "train.learning_rate.warmup_steps": 500,
    "train.learning_rate.init_learning_rate": 0.08,
    "train.learning_rate.learning_rate_levels": (0.008, 0.0008),
    "train.learning_rate.learning_rate_steps": (15000, 20000),
    "train.checkpoint.path": "",
    "train.checkpoint.prefix": "",
    "train.checkpoint.skip_variables_regex": "",
    "train.frozen_variable_prefix": None,
    "train.regularization_variable_regex": r".*(kernel|weight):0$",
    "train.l2_weight_decay": 0.0001,
    "train.gradient_clip_norm": 0.0,
    "eval.eval_batch_size": 8,
    "eval.eval_samples": None,
    "eval.min_eval_interval": 180,
    "eval.eval_timeout": None,
    "eval.num_steps_per_eval": 1000,
    "eval.use_json_file": True,
    "eval.val_json_file": "",
    "eval.per_category_metrics": False,
    "predict.predict_batch_size": 8,
    "batch_norm_activation.batch_norm_momentum": 0.997,
    "batch_norm_activation.batch_norm_epsilon": 1e-4,
    "batch_norm_activation.batch_norm_trainable": True,
    "batch_norm_activation.use_sync_bn": False,
    "batch_norm_activation.activation": "relu",
    "resnet.resnet_depth": 50,
    "resnet.init_drop_connect_rate": None,
    "spinenet.model_id": "49",
    "spinenet.init_drop_connect_rate": None,
    "spinenet.use_native_resize_op": False,
    "anchor.aspect_ratios": (1.0, 2.0, 0.5),
    "fpn.fpn_feat_dims": 256,
    "fpn.use_separable_conv": False,
    "fpn.use_batch_norm": True,
    "postprocess.max_total_size": 100,
    "postprocess.nms_iou_threshold": 0.5,
    "postprocess.score_threshold": 0.05,
    "enable_summary": False,
    # Project additions.
    "train.keep_checkpoint_max": 5,
    "train.seed": None,
}

RETINANET_DEFAULTS = {
    "type": "retinanet",
    "architecture.parser": "retinanet_parser",
    "architecture.min_level": 3,
    "architecture.max_level": 7,
    "eval.type": "box",
    "anchor.num_scales": 3,
    "anchor.anchor_size": 4.0,
    "postprocess.pre_nms_num_boxes": 5000,
    "retinanet_parser.output_size": (640, 640),
    "retinanet_parser.match_threshold": 0.5,
    "retinanet_parser.unmatched_threshold": 0.5,
    "retinanet_parser.aug_rand_hflip": True,
    "retinanet_parser.aug_scale_min": 1.0,
    "retinanet_parser.aug_scale_max": 1.0,
    "retinanet_parser.skip_crowd_during_training": True,
    "retinanet_parser.max_num_instances": 100,
    "retinanet_head.num_convs": 4,
    "retinanet_head.num_filters": 256,
    "retinanet_head.use_batch_norm": True,
    "retinanet_loss.focal_loss_alpha": 0.25,
    "retinanet_loss.focal_loss_gamma": 1.5,
    "retinanet_loss.huber_loss_delta": 0.1,
    "retinanet_loss.box_loss_weight": 50.0,
}

MASK_RCNN_DEFAULTS = {
    "type": "mask_rcnn",
    "architecture.parser": "maskrcnn_parser",
    "architecture.min_level": 2,
    "architecture.max_level": 6,
    "architecture.include_mask": True,
    "architecture.mask_target_size": 28,
    "eval.type": "box_and_mask",
    "anchor.num_scales": 1,
    "anchor.anchor_size": 8.0,
    "postprocess.pre_nms_num_boxes": 1000,
    "maskrcnn_parser.output_size": (1024, 1024),
    "maskrcnn_parser.rpn_match_threshold": 0.7,
    "maskrcnn_parser.rpn_unmatched_threshold": 0.3,
    "maskrcnn_parser.rpn_batch_size_per_im": 256,
    "maskrcnn_parser.rpn_fg_fraction": 0.5,
    "maskrcnn_parser.mask_crop_size": 112,
    "maskrcnn_parser.max_num_instances": 100,
    "rpn_head.num_convs": 1,
    "rpn_head.num_filters": 256,
    "rpn_head.use_batch_norm": False,
    "frcnn_head.num_convs": 0,
    "frcnn_head.num_fcs": 2,
    "frcnn_head.fc_dims": 1024,
    "frcnn_head.use_batch_norm": False,
    "mrcnn_head.num_convs": 4,
    "mrcnn_head.num_filters": 256,
    "mrcnn_head.use_batch_norm": False,
    "rpn_score_loss.rpn_batch_size_per_im": 256,
    "rpn_box_loss.huber_loss_delta": 1.0 / 9.0,
    "frcnn_box_loss.huber_loss_delta": 1.0,
    "roi_proposal.rpn_pre_nms_top_k": 2000,
    "roi_proposal.rpn_post_nms_top_k": 1000,
    "roi_proposal.rpn_nms_threshold": 0.7,
    "roi_proposal.test_rpn_pre_nms_top_k": 1000,
    "roi_proposal.test_rpn_post_nms_top_k": 1000,
    "roi_proposal.test_rpn_nms_threshold": 0.7,
    "roi_sampling.num_samples_per_image": 512,
    "roi_sampling.fg_fraction": 0.25,
    "roi_sampling.fg_iou_thresh": 0.5,
    "roi_sampling.bg_iou_thresh_hi": 0.5,
    "roi_sampling.bg_iou_thresh_lo": 0.0,
    "roi_sampling.mix_gt_boxes": True,
    "mask_sampling.num_mask_samples_per_image": 128,
}


@pytest.mark.parametrize(
    "model, expected",
    [("retinanet", RETINANET_DEFAULTS), ("mask_rcnn", MASK_RCNN_DEFAULTS)],
)
def test_defaults_are_the_ancestors(model, expected):
    params = factory.config_generator(model)
    for path, value in {**SHARED_DEFAULTS, **expected}.items():
        assert params.lookup(path) == value, path
        assert type(params.lookup(path)) is type(value), path


def test_faster_rcnn_is_mask_rcnn_without_masks():
    mask = factory.config_generator("mask_rcnn").as_dict()
    faster = factory.config_generator("faster_rcnn").as_dict()
    assert faster["type"] == "mask_rcnn"
    assert faster["architecture"].pop("include_mask") is False
    assert faster["eval"].pop("type") == "box"
    mask["architecture"].pop("include_mask")
    mask["eval"].pop("type")
    assert faster == mask


@pytest.mark.parametrize("model", sorted(factory.MODELS))
def test_every_key_is_documented_once(model):
    schema = factory.MODELS[model].schema
    paths = [path for path, _ in schema.walk()]
    assert len(paths) == len(set(paths))
    for path, field in schema.walk():
        assert field.doc.endswith(".") and len(field.doc) <= 100, path
        assert not (field.frozen and field.inert), path


def test_config_generator_returns_fresh_equal_configs():
    assert factory.config_generator("retinanet") == factory.config_generator("retinanet")


def test_unknown_model_lists_models():
    with pytest.raises(
        ConfigError, match="unknown model 'ssd'; valid models: retinanet, mask_rcnn"
    ):
        factory.config_generator("ssd")


def test_resnet_frozen_prefix_freezes_stem_and_first_stage():
    params = load_config(
        "mask_rcnn", forced={"train.frozen_variable_prefix": RESNET_FROZEN_VARIABLE_PREFIX}
    )
    pattern = re.compile(params.train.frozen_variable_prefix)
    assert pattern.match("resnet101/conv2d/kernel:0")
    assert pattern.match("resnet50/batch_normalization_10/gamma:0")
    assert not pattern.match("resnet50/conv2d_11/kernel:0")
    assert not pattern.match("fpn/l2/kernel:0")
