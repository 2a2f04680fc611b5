"""Faster / Mask R-CNN losses: RPN objectness and boxes, Fast R-CNN classes and boxes, masks.

Each loss is normalised as the ancestor normalises it, so training curves and
learning rates carry over:
- RPN objectness: sigmoid cross entropy summed over the sampled anchors of all
  levels (score target 1 or 0; -1 means not sampled) and divided by
  `batch_size * rpn_batch_size_per_im`, the number of anchors the sampler was
  asked for, whether or not it found that many.
- RPN boxes: Huber loss (delta 1/9) over the non-zero box targets, averaged
  per level over those targets, then summed over levels.
- Fast R-CNN classes: softmax cross entropy averaged over all sampled RoIs.
- Fast R-CNN boxes: Huber loss (delta 1) of the box predicted for the RoI's
  target class, averaged over the 4 coordinates of the foreground RoIs.
- Masks: sigmoid cross entropy averaged over the pixels of the foreground
  mask RoIs.
Averages over an empty set are 0. The total is the unweighted sum of the
parts, as in the ancestor.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.losses.retinanet_losses import huber_loss
from official.detection.ops import sentinels


def _check_same_levels(outputs, targets, what):
    if not outputs:
        raise ValueError(f"{what}: no levels given; expected {{level: tensor}} dicts")
    if sorted(outputs) != sorted(targets):
        raise ValueError(
            f"{what}: outputs and targets must have the same levels; got output levels "
            f"{sorted(outputs)} and target levels {sorted(targets)}"
        )


def _check_last_dim(outputs, targets, what, detail=""):
    output_shape = outputs.get_shape().as_list()
    target_shape = targets.get_shape().as_list()
    if output_shape and target_shape and None not in (output_shape[-1], target_shape[-1]):
        if output_shape[-1] != target_shape[-1]:
            raise ValueError(
                f"{what}: {detail}outputs {output_shape} and targets {target_shape} differ in "
                "the last dimension"
            )


def _mean_over(values, weights):
    """sum(values * weights) / count(weights != 0), and 0 when no weight is non-zero."""
    weights = tf.cast(weights, tf.float32)
    total = tf.reduce_sum(values * weights)
    count = tf.reduce_sum(tf.cast(tf.not_equal(weights, 0.0), tf.float32) * tf.ones_like(values))
    return tf.div_no_nan(total, count)


def rpn_score_loss(score_outputs, score_targets, *, rpn_batch_size_per_im=256):
    """Objectness loss over the sampled anchors of all levels.

    Args:
      score_outputs: {level: float tensor [B, H_l, W_l, A]} objectness logits;
        cast to float32.
      score_targets: {level: int tensor [B, H_l, W_l, A]}: 1 positive, 0
        negative, -1 not sampled (ignored).
      rpn_batch_size_per_im: anchors sampled per image (the normaliser).

    Returns:
      float32 scalar: sigmoid cross entropy summed over anchors whose target
      is 0 or 1, divided by B * rpn_batch_size_per_im.
    """
    _check_same_levels(score_outputs, score_targets, "rpn_score_loss")
    if isinstance(rpn_batch_size_per_im, bool) or not (
        isinstance(rpn_batch_size_per_im, int) and rpn_batch_size_per_im > 0
    ):
        raise ValueError(
            "rpn_score_loss: rpn_batch_size_per_im must be a positive int; "
            f"got {rpn_batch_size_per_im!r}"
        )
    with tf.name_scope("rpn_score_loss"):
        level_losses = []
        for level in sorted(score_outputs):
            logits = tf.cast(score_outputs[level], tf.float32)
            targets = tf.cast(score_targets[level], tf.int32)
            _check_last_dim(logits, targets, "rpn_score_loss", f"level {level} ")
            positive = tf.equal(targets, sentinels.RPN_POSITIVE)
            sampled = tf.logical_or(positive, tf.equal(targets, sentinels.RPN_NEGATIVE))
            cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(positive, tf.float32), logits=logits
            )
            level_losses.append(tf.reduce_sum(cross_entropy * tf.cast(sampled, tf.float32)))
        first = score_outputs[min(score_outputs)]
        batch_size = tf.cast(tf.shape(first)[0], tf.float32)
        return tf.add_n(level_losses) / (batch_size * float(rpn_batch_size_per_im))


def rpn_box_loss(box_outputs, box_targets, *, delta=1.0 / 9.0):
    """Huber loss over the non-zero RPN box targets, averaged per level.

    Args:
      box_outputs: {level: float tensor [B, H_l, W_l, A * 4]} box codes; cast
        to float32.
      box_targets: {level: float tensor [B, H_l, W_l, A * 4]} encoded targets,
        0 where the anchor is not a sampled positive.
      delta: Huber delta (the ancestor's `rpn_box_loss.huber_loss_delta`).

    Returns:
      float32 scalar: sum over levels of (Huber loss summed over the elements
      whose target is non-zero / number of those elements), a level without
      any contributing 0.
    """
    _check_same_levels(box_outputs, box_targets, "rpn_box_loss")
    with tf.name_scope("rpn_box_loss"):
        level_losses = []
        for level in sorted(box_outputs):
            outputs = tf.cast(box_outputs[level], tf.float32)
            targets = tf.cast(box_targets[level], tf.float32)
            _check_last_dim(outputs, targets, "rpn_box_loss", f"level {level} ")
            level_losses.append(
                _mean_over(huber_loss(outputs, targets, delta), tf.not_equal(targets, 0.0))
            )
        return tf.add_n(level_losses)


def _check_rank(tensor, rank, what, name):
    shape = tensor.get_shape()
    if shape.ndims is not None and shape.ndims != rank:
        raise ValueError(f"{what}: {name} must have rank {rank}; got shape {shape.as_list()}")


def fast_rcnn_class_loss(class_outputs, class_targets):
    """Softmax cross entropy averaged over every sampled RoI.

    Args:
      class_outputs: float tensor [B, R, K] logits, K with a static size;
        cast to float32.
      class_targets: int tensor [B, R] class ids in [0, K), 0 = background.

    Returns:
      float32 scalar: mean over the B * R RoIs.
    """
    _check_rank(class_outputs, 3, "fast_rcnn_class_loss", "class_outputs")
    _check_rank(class_targets, 2, "fast_rcnn_class_loss", "class_targets")
    num_classes = class_outputs.get_shape().as_list()[-1]
    if num_classes is None:
        raise ValueError(
            "fast_rcnn_class_loss: class_outputs needs a static class dimension; got shape "
            f"{class_outputs.get_shape().as_list()}"
        )
    with tf.name_scope("fast_rcnn_class_loss"):
        targets_one_hot = tf.one_hot(tf.cast(class_targets, tf.int32), num_classes)
        cross_entropy = tf.nn.softmax_cross_entropy_with_logits_v2(
            labels=targets_one_hot, logits=tf.cast(class_outputs, tf.float32)
        )
        return tf.reduce_mean(cross_entropy)


def fast_rcnn_box_loss(box_outputs, class_targets, box_targets, *, delta=1.0, class_agnostic=False):
    """Huber loss of the target class's box, averaged over foreground RoIs.

    Args:
      box_outputs: float tensor [B, R, K * 4] (class k's codes at 4k..4k+3),
        or [B, R, 4] when class_agnostic; cast to float32.
      class_targets: int tensor [B, R] class ids in [0, K); RoIs with class
        > 0 are foreground and the only ones with a box loss.
      box_targets: float tensor [B, R, 4] encoded targets (weights
        [10, 10, 5, 5]), anything for background RoIs.
      delta: Huber delta (the ancestor's `frcnn_box_loss.huber_loss_delta`).
      class_agnostic: box_outputs hold one box per RoI.

    Returns:
      float32 scalar: Huber loss summed over the 4 coordinates of the
      foreground RoIs / (4 * number of foreground RoIs), 0 without any.
    """
    what = "fast_rcnn_box_loss"
    _check_rank(box_outputs, 3, what, "box_outputs")
    _check_rank(class_targets, 2, what, "class_targets")
    _check_rank(box_targets, 3, what, "box_targets")
    channels = box_outputs.get_shape().as_list()[-1]
    if class_agnostic and channels not in (None, 4):
        raise ValueError(
            f"{what}: class-agnostic box_outputs must end in 4; got shape "
            f"{box_outputs.get_shape().as_list()}"
        )
    if not class_agnostic and (channels is None or channels % 4):
        raise ValueError(
            f"{what}: class-specific box_outputs need a static last dimension K * 4; got shape "
            f"{box_outputs.get_shape().as_list()}"
        )
    with tf.name_scope(what):
        outputs = tf.cast(box_outputs, tf.float32)
        class_targets = tf.cast(class_targets, tf.int32)
        if not class_agnostic:
            num_classes = channels // 4
            per_class = tf.reshape(
                outputs, tf.concat([tf.shape(outputs)[:2], [num_classes, 4]], axis=0)
            )
            # A one-hot product picks the target class's box with a dense
            # gradient and no gather, which every device supports.
            selector = tf.one_hot(class_targets, num_classes, dtype=tf.float32)
            outputs = tf.reduce_sum(per_class * selector[..., tf.newaxis], axis=2)
        foreground = tf.cast(tf.greater(class_targets, 0), tf.float32)[..., tf.newaxis]
        targets = tf.cast(box_targets, tf.float32)
        return _mean_over(huber_loss(outputs, targets, delta), foreground)


def mask_loss(mask_outputs, mask_targets, mask_class_targets):
    """Sigmoid cross entropy averaged over the pixels of foreground mask RoIs.

    Args:
      mask_outputs: float tensor [B, M, S, S] logits of each RoI's class (as
        returned by MaskHead); cast to float32.
      mask_targets: float tensor [B, M, S, S] target masks in [0, 1].
      mask_class_targets: int tensor [B, M] class of each mask RoI; RoIs with
        class > 0 contribute, the rest (padding) do not.

    Returns:
      float32 scalar: cross entropy summed over the contributing RoIs' pixels
      / (their number * S * S), 0 without any.
    """
    what = "mask_loss"
    _check_rank(mask_outputs, 4, what, "mask_outputs")
    _check_rank(mask_targets, 4, what, "mask_targets")
    _check_rank(mask_class_targets, 2, what, "mask_class_targets")
    output_shape = mask_outputs.get_shape().as_list()
    target_shape = mask_targets.get_shape().as_list()
    if any(o is not None and t is not None and o != t for o, t in zip(output_shape, target_shape)):
        raise ValueError(
            f"{what}: mask_outputs {output_shape} and mask_targets {target_shape} must have the "
            "same shape"
        )
    with tf.name_scope(what):
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(mask_targets, tf.float32), logits=tf.cast(mask_outputs, tf.float32)
        )
        foreground = tf.cast(tf.greater(mask_class_targets, 0), tf.float32)
        return _mean_over(cross_entropy, foreground[:, :, tf.newaxis, tf.newaxis])


def maskrcnn_losses(
    *,
    rpn_score_outputs,
    rpn_box_outputs,
    rpn_score_targets,
    rpn_box_targets,
    class_outputs,
    box_outputs,
    class_targets,
    box_targets,
    mask_outputs=None,
    mask_targets=None,
    mask_class_targets=None,
    rpn_batch_size_per_im=256,
    rpn_huber_loss_delta=1.0 / 9.0,
    frcnn_huber_loss_delta=1.0,
    class_agnostic_bbox_pred=False,
):
    """Faster R-CNN (no mask tensors) or Mask R-CNN training loss, without weight decay.

    Args: the tensors of the single losses above, named as the ancestor's model
      outputs and labels; the three mask tensors are given together or not at
      all. The keyword hyperparameters map to the config keys
      `rpn_score_loss.rpn_batch_size_per_im`, `rpn_box_loss.huber_loss_delta`,
      `frcnn_box_loss.huber_loss_delta` and
      `frcnn_head.class_agnostic_bbox_pred`.

    Returns:
      dict of float32 scalars: `rpn_score_loss`, `rpn_box_loss`,
      `fast_rcnn_class_loss`, `fast_rcnn_box_loss`, with masks also
      `mask_loss`, and `model_loss`, their sum.
    """
    mask_tensors = (mask_outputs, mask_targets, mask_class_targets)
    if any(t is None for t in mask_tensors) and any(t is not None for t in mask_tensors):
        given = [
            name
            for name, t in zip(("mask_outputs", "mask_targets", "mask_class_targets"), mask_tensors)
            if t is not None
        ]
        raise ValueError(
            "maskrcnn_losses: mask_outputs, mask_targets and mask_class_targets go together; "
            f"got only {given}"
        )
    with tf.name_scope("maskrcnn_loss"):
        losses = {
            "rpn_score_loss": rpn_score_loss(
                rpn_score_outputs, rpn_score_targets, rpn_batch_size_per_im=rpn_batch_size_per_im
            ),
            "rpn_box_loss": rpn_box_loss(
                rpn_box_outputs, rpn_box_targets, delta=rpn_huber_loss_delta
            ),
            "fast_rcnn_class_loss": fast_rcnn_class_loss(class_outputs, class_targets),
            "fast_rcnn_box_loss": fast_rcnn_box_loss(
                box_outputs,
                class_targets,
                box_targets,
                delta=frcnn_huber_loss_delta,
                class_agnostic=class_agnostic_bbox_pred,
            ),
        }
        if mask_outputs is not None:
            losses["mask_loss"] = mask_loss(mask_outputs, mask_targets, mask_class_targets)
        losses["model_loss"] = tf.add_n(list(losses.values()))
    return losses
