"""Named sentinel values shared by matching, sampling, targets, parsers and losses.

Every module that writes or reads one of these values imports it from here, so the
meaning of, say, -2 in a class-target map is defined in exactly one place.
"""

# Match states returned by `matching.match_boxes` / `matching.match_anchors`. RetinaNet
# class targets reuse NEGATIVE and IGNORE for anchors that are not positive (positive
# anchors carry their class id, which is >= 0).
POSITIVE = 1
NEGATIVE = -1
IGNORE = -2

# Fill value of padded ground-truth rows: boxes are [-1, -1, -1, -1], classes -1.
# `box_ops.compute_iou` recognises a box whose four coordinates are all negative as
# padding and gives it IoU -1 against everything.
PAD = -1

# RPN score targets after balanced sampling (`targets.assign_rpn_targets`).
RPN_POSITIVE = 1
RPN_NEGATIVE = 0
RPN_NOT_SAMPLED = -1
