"""Keys shared by the detection models: classes, backbone choice, anchors, FPN, NMS.

Names and defaults follow the ancestor's detection_config.py on top of
base_config.py; retinanet_config.py and maskrcnn_config.py extend this.
"""

from official.detection.configs import base_config
from official.detection.configs.schema import (
    FRACTION,
    POSITIVE,
    POSITIVE_ITEMS,
    Field,
    Section,
    at_least,
)

BACKBONES = ("resnet", "spinenet")
MULTILEVEL_FEATURES = ("fpn", "identity")
# The box conventions of ops/box_ops.py (BOX_CONVENTIONS there).
BOX_CONVENTIONS = ("consistent", "tensorflow_tpu")

ANCHOR = Section(
    "Anchor boxes: per level, num_scales sizes times len(aspect_ratios) shapes per location.",
    {
        "num_scales": Field(
            3, "Sizes per octave: anchor_size * 2**level * 2**(s / num_scales).", check=POSITIVE
        ),
        "aspect_ratios": Field(
            [1.0, 2.0, 0.5], "Width/height ratios of the anchors.", check=POSITIVE_ITEMS
        ),
        "anchor_size": Field(
            4.0, "Base anchor size in units of the level's stride.", check=POSITIVE
        ),
    },
)

FPN = Section(
    "Feature pyramid network (architecture.multilevel_features: fpn).",
    {
        "fpn_feat_dims": Field(256, "Channels of every pyramid level.", check=POSITIVE),
        "use_separable_conv": Field(False, "Use separable 3x3 convolutions."),
        "use_batch_norm": Field(True, "Batch-normalise the pyramid outputs."),
    },
)

NASFPN = Section(
    "The ancestor's NAS-FPN neck (not implemented; accepted so its files load).",
    {
        "fpn_feat_dims": Field(256, "NAS-FPN channels; no effect here.", inert=True),
        "num_repeats": Field(5, "NAS-FPN cell repeats; no effect here.", inert=True),
        "use_separable_conv": Field(False, "NAS-FPN separable convs; no effect here.", inert=True),
        "init_drop_connect_rate": Field(
            None, "NAS-FPN stochastic depth; no effect here.", type=float, inert=True
        ),
        "block_fn": Field("conv", "NAS-FPN block type; no effect here.", inert=True),
        "activation": Field(None, "NAS-FPN activation; no effect here.", type=str, inert=True),
        "use_sum_for_combination": Field(
            False, "NAS-FPN merge by sum; no effect here.", inert=True
        ),
    },
)

POSTPROCESS = Section(
    "Turning head outputs into final detections.",
    {
        "apply_nms": Field(
            True, "Run non-maximum suppression; only true is implemented.", frozen=True
        ),
        "use_batched_nms": Field(
            False, "The ancestor's choice of NMS implementation; no effect here.", inert=True
        ),
        "nms_version": Field(
            "v1",
            "The ancestor's choice of NMS implementation; no effect here.",
            choices=("v1", "v2", "batched"),
            inert=True,
        ),
        "max_total_size": Field(100, "Detections kept per image.", check=POSITIVE),
        "nms_iou_threshold": Field(
            0.5, "Boxes overlapping a kept box by more IoU are suppressed.", check=FRACTION
        ),
        "score_threshold": Field(0.05, "Detections scoring lower are dropped.", check=FRACTION),
        "pre_nms_num_boxes": Field(
            5000, "Top-scoring candidates per level (per class) that enter NMS.", check=POSITIVE
        ),
    },
)

DETECTION = base_config.BASE.extend(
    {
        "architecture": {
            "backbone": Field("resnet", "Backbone network.", choices=BACKBONES),
            "multilevel_features": Field(
                "fpn",
                "Neck: 'fpn', or 'identity' to use the backbone's levels as they are.",
                choices=MULTILEVEL_FEATURES,
            ),
            "num_classes": Field(
                91,
                "Classes including background 0 (COCO: 91, sparse ids 1..90).",
                check=at_least(2),
            ),
            # 'consistent': sizes max - min, clipping to the image size. 'tensorflow_tpu':
            # +1-pixel sizes, clipping to size - 1, and tensorflow/tpu's proposal filter
            # and Fast R-CNN targets; for checkpoints trained by that code.
            "box_convention": Field(
                "consistent",
                "Box decoding, clipping and filtering: 'consistent' or 'tensorflow_tpu'.",
                choices=BOX_CONVENTIONS,
            ),
        },
        "anchor": ANCHOR,
        "fpn": FPN,
        "nasfpn": NASFPN,
        "postprocess": POSTPROCESS,
    },
    doc="Configuration shared by the detection models.",
)
