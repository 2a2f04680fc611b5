"""Per-anchor training targets for RetinaNet and the RPN (one image at a time).

Anchors are matched to ground truth with `matching.match_anchors` (argmax IoU with
force-match). Box targets are `box_ops.encode_boxes(matched gt, anchor)` without
weights for every POSITIVE anchor and 0 elsewhere; only positives are encoded, so the
cost does not grow with the number of anchors. Crowd boxes are dropped by the parsers
before they get here.
"""

import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib
from official.detection.ops import box_ops, matching, sampling, sentinels


def _check_gt(where, anchors, gt_boxes, gt_classes=None):
    if not isinstance(anchors, anchors_lib.Anchors):
        raise TypeError(f"{where}: `anchors` must be an anchors.Anchors; received {type(anchors)}.")
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    dims = gt_boxes.shape.as_list() if gt_boxes.shape.ndims is not None else None
    if dims is None or len(dims) != 2 or dims[-1] not in (None, 4):
        raise ValueError(f"{where}: `gt_boxes` must be [N, 4]; received shape {dims}.")
    if gt_classes is None:
        return gt_boxes, None
    gt_classes = tf.cast(gt_classes, tf.int32)
    if gt_classes.shape.ndims != 1:
        raise ValueError(
            f"{where}: `gt_classes` must be [N]; received shape "
            f"{gt_classes.shape.as_list() if gt_classes.shape.ndims is not None else None}."
        )
    return gt_boxes, gt_classes


def _positive_box_targets(anchors, gt_boxes, matched, is_positive):
    """float32 [N, 4]: encoded matched gt for positive anchors, 0 elsewhere."""
    positive_ids = tf.cast(tf.where(is_positive)[:, 0], tf.int32)
    codes = box_ops.encode_boxes(
        tf.gather(gt_boxes, tf.gather(matched, positive_ids)),
        tf.gather(anchors.boxes, positive_ids),
    )
    return tf.scatter_nd(positive_ids[:, tf.newaxis], codes, [anchors.num_anchors, 4])


def assign_retinanet_targets(
    anchors, gt_boxes, gt_classes, *, match_threshold=0.5, unmatched_threshold=0.5
):
    """RetinaNet class and box targets.

    Args:
      anchors: `anchors.Anchors` of the (padded) input image.
      gt_boxes: float32 [N, 4] pixel boxes in that image, N >= 0, unpadded.
      gt_classes: int [N] class ids (>= 0) of the boxes.
      match_threshold: IoU at or above which an anchor is positive.
      unmatched_threshold: IoU below which an anchor is negative (ignored in between).

    Returns:
      dict with
        cls_targets: {level: int32 [H_l, W_l, A]}: class id of positive anchors,
          sentinels.NEGATIVE (-1) for negatives, sentinels.IGNORE (-2) for ignored.
        box_targets: {level: float32 [H_l, W_l, A * 4]}, 0 where not positive.
        num_positives: float32 scalar, the number of positive anchors.
    """
    gt_boxes, gt_classes = _check_gt("assign_retinanet_targets", anchors, gt_boxes, gt_classes)
    with tf.name_scope("assign_retinanet_targets"):
        matched, states = matching.match_anchors(
            anchors,
            gt_boxes,
            positive_threshold=match_threshold,
            negative_threshold=unmatched_threshold,
        )
        is_positive = tf.equal(states, sentinels.POSITIVE)
        # The extra entry keeps the gather valid when there is no gt (matched is 0).
        classes = tf.gather(tf.concat([gt_classes, [sentinels.PAD]], 0), matched)
        cls_targets = tf.where(is_positive, classes, states)
        box_targets = _positive_box_targets(anchors, gt_boxes, matched, is_positive)
        return {
            "cls_targets": anchors.unpack_labels(cls_targets),
            "box_targets": anchors.unpack_labels(box_targets),
            "num_positives": tf.reduce_sum(tf.cast(is_positive, tf.float32)),
        }


def assign_rpn_targets(
    anchors,
    gt_boxes,
    *,
    positive_threshold=0.7,
    negative_threshold=0.3,
    batch_size_per_image=256,
    positive_fraction=0.5,
    seed=None,
):
    """RPN objectness and box targets with balanced anchor sampling.

    Args:
      anchors: `anchors.Anchors` of the (padded) input image.
      gt_boxes: float32 [N, 4] pixel boxes in that image, N >= 0, unpadded.
      positive_threshold: IoU at or above which an anchor is positive.
      negative_threshold: IoU below which an anchor is negative (ignored in between).
      batch_size_per_image: anchors sampled per image (Python int).
      positive_fraction: largest share of positives among the sampled anchors.
      seed: optional op seed of the sampling.

    Returns:
      dict with
        score_targets: {level: int32 [H_l, W_l, A]}: sentinels.RPN_POSITIVE (1) and
          RPN_NEGATIVE (0) for sampled anchors, RPN_NOT_SAMPLED (-1) for the rest.
        box_targets: {level: float32 [H_l, W_l, A * 4]} for every positive anchor,
          sampled or not (the ancestor's RPN box loss takes all of them), 0 elsewhere.
    """
    gt_boxes, _ = _check_gt("assign_rpn_targets", anchors, gt_boxes)
    with tf.name_scope("assign_rpn_targets"):
        matched, states = matching.match_anchors(
            anchors,
            gt_boxes,
            positive_threshold=positive_threshold,
            negative_threshold=negative_threshold,
        )
        is_positive = tf.equal(states, sentinels.POSITIVE)
        sampled = sampling.sample_balanced(
            is_positive,
            tf.not_equal(states, sentinels.IGNORE),
            batch_size_per_image,
            positive_fraction,
            seed=seed,
        )
        shape = [anchors.num_anchors]
        score_targets = tf.where(
            sampled,
            tf.where(
                is_positive,
                tf.fill(shape, sentinels.RPN_POSITIVE),
                tf.fill(shape, sentinels.RPN_NEGATIVE),
            ),
            tf.fill(shape, sentinels.RPN_NOT_SAMPLED),
        )
        box_targets = _positive_box_targets(anchors, gt_boxes, matched, is_positive)
        return {
            "score_targets": anchors.unpack_labels(score_targets),
            "box_targets": anchors.unpack_labels(box_targets),
        }
