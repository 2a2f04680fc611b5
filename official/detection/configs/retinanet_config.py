"""RetinaNet defaults and rules (the ancestor's retinanet_config.py)."""

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

RETINANET_PARSER = Section(
    "RetinaNet input pipeline: resize, augment, assign anchor targets.",
    {
        "output_size": Field(
            [640, 640],
            "Training image [height, width] after resizing (padded to a multiple of 2**max_level).",
            type=ListOf(int, length=2),
            check=POSITIVE_ITEMS,
        ),
        "match_threshold": Field(
            0.5, "Anchors with IoU >= this with a box are positives.", check=FRACTION
        ),
        "unmatched_threshold": Field(
            0.5,
            "Anchors with best IoU < this are negatives; in between are ignored.",
            check=FRACTION,
        ),
        "aug_rand_hflip": Field(True, "Flip training images horizontally at random."),
        "aug_scale_min": Field(1.0, "Smallest random scale of the training image.", check=POSITIVE),
        "aug_scale_max": Field(1.0, "Largest random scale of the training image.", check=POSITIVE),
        "aug_policy": Field(
            "", "The ancestor's AutoAugment policy; only '' (none) is implemented.", frozen=True
        ),
        "skip_crowd_during_training": Field(True, "Drop is_crowd boxes from training targets."),
        "max_num_instances": Field(
            100, "Ground-truth boxes kept per image (padded to this count).", check=POSITIVE
        ),
        "regenerate_source_id": Field(
            False, "Derive source_id from the image bytes instead of reading it."
        ),
    },
)

RETINANET_HEAD = Section(
    "RetinaNet class and box subnets, shared across levels.",
    {
        "anchors_per_location": Field(
            None,
            "Deprecated (derived from the anchor section); null or the derived count.",
            type=int,
        ),
        "num_convs": Field(
            4, "3x3 convolutions in each subnet before the prediction.", check=NON_NEGATIVE
        ),
        "num_filters": Field(256, "Channels of those convolutions.", check=POSITIVE),
        "use_separable_conv": Field(False, "Use separable convolutions."),
        "use_batch_norm": Field(True, "Batch-normalise each conv, with statistics per level."),
    },
    aliases={
        "retinanet_head_num_convs": "num_convs",
        "retinanet_head_num_filters": "num_filters",
    },
)

RETINANET_LOSS = Section(
    "RetinaNet losses.",
    {
        "focal_loss_alpha": Field(0.25, "Focal loss weight of positives.", check=FRACTION),
        "focal_loss_gamma": Field(1.5, "Focal loss focusing exponent.", check=NON_NEGATIVE),
        "huber_loss_delta": Field(
            0.1, "Huber loss transition point of the box loss.", check=POSITIVE
        ),
        "box_loss_weight": Field(
            50.0, "Weight of the box loss in the total loss.", check=NON_NEGATIVE
        ),
        "normalizer_momentum": Field(
            0.0,
            "The ancestor's moving average of the positive count; only 0 (off) is implemented.",
            frozen=True,
        ),
    },
)

_EXTENDED = detection_config.DETECTION.extend(
    {
        "architecture": {
            "parser": Field(
                "retinanet_parser", "Input parser section.", choices=("retinanet_parser",)
            ),
        },
        "retinanet_parser": RETINANET_PARSER,
        "retinanet_head": RETINANET_HEAD,
        "retinanet_loss": RETINANET_LOSS,
    }
)
SCHEMA = Section(
    "RetinaNet configuration.",
    {"type": Field("retinanet", "Model type.", choices=("retinanet",)), **_EXTENDED.entries},
)

RULES = (
    rules.LEVEL_RULES
    + rules.SCHEDULE_RULES
    + rules.parser_rules("retinanet_parser", "match_threshold", "unmatched_threshold")
    + [
        rules.anchors_per_location_rule("retinanet_head"),
        Rule(
            ("eval.type",),
            lambda eval_type: eval_type == "box",
            "RetinaNet predicts no masks, so eval.type must be 'box'",
        ),
    ]
)
