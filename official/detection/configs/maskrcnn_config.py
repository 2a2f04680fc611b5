"""Mask R-CNN and Faster R-CNN defaults and rules (the ancestor's maskrcnn_config.py).

Faster R-CNN is Mask R-CNN without the mask branch: the same keys, with
`architecture.include_mask: false` and `eval.type: box`. Its `type` stays
'mask_rcnn', as the ancestor has no other name for it, so its files and
params.yaml load in both code bases.
"""

from official.detection.configs import detection_config, rules
from official.detection.configs.rules import Rule
from official.detection.configs.schema import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_ITEMS,
    Field,
    ListOf,
    Section,
)

MASKRCNN_PARSER = Section(
    "Mask R-CNN input pipeline: resize, augment, RPN targets, cropped masks.",
    {
        "output_size": Field(
            [1024, 1024],
            "Training image [height, width] after resizing (padded to a multiple of 2**max_level).",
            type=ListOf(int, length=2),
            check=POSITIVE_ITEMS,
        ),
        "rpn_match_threshold": Field(
            0.7, "Anchors with IoU >= this with a box are RPN positives.", check=FRACTION
        ),
        "rpn_unmatched_threshold": Field(
            0.3, "Anchors with best IoU < this are RPN negatives.", check=FRACTION
        ),
        "rpn_batch_size_per_im": Field(
            256, "Anchors sampled per image for the RPN loss.", check=POSITIVE
        ),
        "rpn_fg_fraction": Field(0.5, "Largest share of positives among them.", check=FRACTION),
        "aug_rand_hflip": Field(True, "Flip training images horizontally at random."),
        "aug_scale_min": Field(1.0, "Smallest random scale of the training image.", check=POSITIVE),
        "aug_scale_max": Field(1.0, "Largest random scale of the training image.", check=POSITIVE),
        "skip_crowd_during_training": Field(True, "Drop is_crowd boxes from training targets."),
        "max_num_instances": Field(
            100, "Ground-truth boxes kept per image (padded to this count).", check=POSITIVE
        ),
        "mask_crop_size": Field(
            112,
            "Side of the per-box mask crops the parser produces; > 0 with masks.",
            check=NON_NEGATIVE,
        ),
        "regenerate_source_id": Field(
            False, "Derive source_id from the image bytes instead of reading it."
        ),
        "copy_paste": Field(
            False,
            "The ancestor's copy-paste augmentation; only false is implemented.",
            frozen=True,
        ),
    },
)

RPN_HEAD = Section(
    "Region proposal network head, shared across levels.",
    {
        "anchors_per_location": Field(
            None,
            "Deprecated (derived from the anchor section); null or the derived count.",
            type=int,
        ),
        "num_convs": Field(
            1, "3x3 convolutions before the objectness and box outputs.", check=NON_NEGATIVE
        ),
        "num_filters": Field(256, "Channels of those convolutions.", check=POSITIVE),
        "use_separable_conv": Field(False, "Use separable convolutions."),
        "use_batch_norm": Field(False, "Batch-normalise each conv, with statistics per level."),
        "cast_to_float32": Field(
            False, "The ancestor's bfloat16 cast of RPN outputs; no effect here.", inert=True
        ),
    },
)

FRCNN_HEAD = Section(
    "Fast R-CNN box head on 7x7 RoIAlign features.",
    {
        "num_convs": Field(
            0, "3x3 convolutions before the fully connected layers.", check=NON_NEGATIVE
        ),
        "num_filters": Field(256, "Channels of those convolutions.", check=POSITIVE),
        "use_separable_conv": Field(False, "Use separable convolutions."),
        "num_fcs": Field(2, "Fully connected layers before the outputs.", check=NON_NEGATIVE),
        "fc_dims": Field(1024, "Width of the fully connected layers.", check=POSITIVE),
        "use_batch_norm": Field(False, "Batch-normalise convs and fully connected layers."),
        "class_agnostic_bbox_pred": Field(
            False, "One box per RoI (4 outputs) instead of one per class (4 x num_classes)."
        ),
    },
)

MRCNN_HEAD = Section(
    "Mask head on 14x14 RoIAlign features.",
    {
        "num_convs": Field(4, "3x3 convolutions before the 2x2 deconvolution.", check=NON_NEGATIVE),
        "num_filters": Field(256, "Channels of those convolutions.", check=POSITIVE),
        "use_separable_conv": Field(False, "Use separable convolutions."),
        "use_batch_norm": Field(False, "Batch-normalise the convolutions."),
        "class_agnostic_mask_pred": Field(
            False,
            "One mask per RoI instead of one per class; only false is implemented.",
            frozen=True,
        ),
        # Same loss and gradients, less compute, but a dynamic RoI count: ignored with
        # use_batch_norm in training (batch statistics would change) and on Ascend,
        # which compiles static shapes.
        "only_foreground_rois": Field(
            True, "Skip the mask convolutions for padded (background) mask RoIs."
        ),
    },
)

ROI_PROPOSAL = Section(
    "Turning RPN outputs into proposals (rpn_*: training, test_rpn_*: eval and predict).",
    {
        "rpn_pre_nms_top_k": Field(
            2000, "Top-scoring anchors per level entering NMS.", check=POSITIVE
        ),
        "rpn_post_nms_top_k": Field(1000, "Proposals kept per image.", check=POSITIVE),
        "rpn_nms_threshold": Field(0.7, "NMS IoU threshold.", check=FRACTION),
        "rpn_score_threshold": Field(0.0, "Proposals scoring lower are dropped.", check=FRACTION),
        "rpn_min_size_threshold": Field(
            0.0,
            "Proposals with a side shorter than this (pixels) are dropped.",
            check=NON_NEGATIVE,
        ),
        "test_rpn_pre_nms_top_k": Field(
            1000, "Eval: top-scoring anchors per level entering NMS.", check=POSITIVE
        ),
        "test_rpn_post_nms_top_k": Field(1000, "Eval: proposals kept per image.", check=POSITIVE),
        "test_rpn_nms_threshold": Field(0.7, "Eval: NMS IoU threshold.", check=FRACTION),
        "test_rpn_score_threshold": Field(
            0.0, "Eval: proposals scoring lower are dropped.", check=FRACTION
        ),
        "test_rpn_min_size_threshold": Field(
            0.0,
            "Eval: proposals with a side shorter than this (pixels) are dropped.",
            check=NON_NEGATIVE,
        ),
        "use_batched_nms": Field(
            False, "The ancestor's choice of NMS implementation; no effect here.", inert=True
        ),
    },
)

ROI_SAMPLING = Section(
    "Sampling proposals for the Fast R-CNN and mask heads during training.",
    {
        "num_samples_per_image": Field(512, "RoIs sampled per image.", check=POSITIVE),
        "fg_fraction": Field(0.25, "Largest share of foreground RoIs.", check=FRACTION),
        "fg_iou_thresh": Field(0.5, "RoIs with IoU >= this are foreground.", check=FRACTION),
        "bg_iou_thresh_hi": Field(0.5, "RoIs with IoU < this can be background.", check=FRACTION),
        "bg_iou_thresh_lo": Field(0.0, "RoIs with IoU >= this can be background.", check=FRACTION),
        "mix_gt_boxes": Field(True, "Add the ground-truth boxes to the proposals."),
        "cascade_iou_thresholds": Field(
            None,
            "The ancestor's Cascade R-CNN stages; must stay null.",
            type=ListOf(float),
            frozen=True,
        ),
    },
)

_EXTENDED = detection_config.DETECTION.extend(
    {
        "architecture": {
            "parser": Field(
                "maskrcnn_parser", "Input parser section.", choices=("maskrcnn_parser",)
            ),
            "min_level": 2,
            "max_level": 6,
            "include_mask": Field(True, "Build the mask branch (false: Faster R-CNN)."),
            "mask_target_size": Field(
                28,
                "Side of the predicted masks and their targets; > 0 with masks.",
                check=NON_NEGATIVE,
            ),
        },
        "eval": {"type": "box_and_mask"},
        "anchor": {"num_scales": 1, "anchor_size": 8.0},
        "postprocess": {"pre_nms_num_boxes": 1000},
        "maskrcnn_parser": MASKRCNN_PARSER,
        "rpn_head": RPN_HEAD,
        "frcnn_head": FRCNN_HEAD,
        "mrcnn_head": MRCNN_HEAD,
        "rpn_score_loss": Section(
            "RPN objectness loss.",
            {
                "rpn_batch_size_per_im": Field(
                    256, "Sampled anchors per image that normalise the loss.", check=POSITIVE
                )
            },
        ),
        "rpn_box_loss": Section(
            "RPN box loss.",
            {"huber_loss_delta": Field(1.0 / 9.0, "Huber loss transition point.", check=POSITIVE)},
        ),
        "frcnn_box_loss": Section(
            "Fast R-CNN box loss.",
            {"huber_loss_delta": Field(1.0, "Huber loss transition point.", check=POSITIVE)},
        ),
        "roi_proposal": ROI_PROPOSAL,
        "roi_sampling": ROI_SAMPLING,
        "mask_sampling": Section(
            "Sampling foreground RoIs for the mask head.",
            {
                "num_mask_samples_per_image": Field(
                    128,
                    "Foreground RoIs per image that get a mask loss; > 0 with masks.",
                    check=NON_NEGATIVE,
                )
            },
        ),
    }
)

_TYPE = Field("mask_rcnn", "Model type.", choices=("mask_rcnn",))
SCHEMA = Section("Mask R-CNN configuration.", {"type": _TYPE, **_EXTENDED.entries})
FASTER_RCNN_SCHEMA = SCHEMA.extend(
    {"architecture": {"include_mask": False}, "eval": {"type": "box"}},
    doc="Faster R-CNN configuration (Mask R-CNN without masks).",
)


def _mask_rule(path, words):
    return Rule(
        ("architecture.include_mask", path),
        lambda include_mask, value: not include_mask or value > 0,
        f"architecture.include_mask needs {path} > 0 ({words})",
    )


RULES = (
    rules.LEVEL_RULES
    + rules.SCHEDULE_RULES
    + rules.parser_rules("maskrcnn_parser", "rpn_match_threshold", "rpn_unmatched_threshold")
    + [
        rules.anchors_per_location_rule("rpn_head"),
        Rule(
            ("roi_sampling.bg_iou_thresh_lo", "roi_sampling.bg_iou_thresh_hi"),
            lambda low, high: low <= high,
            "roi_sampling.bg_iou_thresh_lo must not exceed roi_sampling.bg_iou_thresh_hi",
        ),
        _mask_rule("maskrcnn_parser.mask_crop_size", "the parser crops each mask to it"),
        _mask_rule("architecture.mask_target_size", "the mask head predicts masks of this side"),
        _mask_rule("mask_sampling.num_mask_samples_per_image", "the mask loss needs sampled RoIs"),
        Rule(
            ("eval.type", "architecture.include_mask"),
            lambda eval_type, include_mask: eval_type != "box_and_mask" or include_mask,
            "eval.type 'box_and_mask' needs masks: set architecture.include_mask to true "
            "or eval.type to 'box'",
        ),
    ]
)

# --model=faster_rcnn forces include_mask false and box evaluation (see
# loader.MODEL_FORCED), so the Mask R-CNN rules cover it.
FASTER_RCNN_RULES = RULES
