"""RetinaNet losses: sigmoid focal loss for classes, Huber loss for box codes.

Both are summed over every anchor of every image in the batch and divided by
`sum(num_positives) + 1` (the +1 keeps a batch without positives finite); the
box loss is divided by four times that, one per box coordinate. Targets follow
`ops/targets.py`: class id for positive anchors, -1 (negative: every class
channel is a negative) and -2 (ignored: contributes nothing); box targets are
0 wherever the anchor is not positive, and only non-zero box targets count.
"""

import tensorflow.compat.v1 as tf

from official.detection.ops import sentinels


def focal_loss(logits, targets_one_hot, alpha, gamma, normalizer):
    """Element-wise sigmoid focal loss divided by `normalizer`.

    loss = -alpha_t * (1 - p_t)**gamma * log(p_t), where p_t = sigmoid(logit)
    for a target of 1 and 1 - sigmoid(logit) for 0, and alpha_t = alpha for a
    target of 1, 1 - alpha for 0.

    Args:
      logits: float tensor of any shape.
      targets_one_hot: float tensor of the same shape with values in {0, 1}.
      alpha: weight of positive targets (negatives get 1 - alpha).
      gamma: focusing exponent, >= 0.
      normalizer: float scalar (tensor or number) > 0 the loss is divided by.

    Returns:
      float tensor shaped like `logits`.
    """
    with tf.name_scope("focal_loss"):
        return _unnormalized_focal_loss(logits, targets_one_hot, alpha, gamma) / normalizer


def _unnormalized_focal_loss(logits, targets_one_hot, alpha, gamma):
    targets_one_hot = tf.cast(targets_one_hot, logits.dtype)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets_one_hot, logits=logits)
    # (1 - p_t)**gamma in log space: log(1 - sigmoid(x)) = -x - softplus(-x)
    # and log(sigmoid(x)) = -softplus(-x); softplus stays finite (with finite
    # gradients) for logits of any magnitude and for gamma < 1.
    neg_logits = -logits
    modulator = tf.exp(gamma * (targets_one_hot * neg_logits - tf.nn.softplus(neg_logits)))
    # alpha for targets of 1, 1 - alpha for 0, without a select.
    weights = (1.0 - alpha) + (2.0 * alpha - 1.0) * targets_one_hot
    return weights * modulator * cross_entropy


def huber_loss(outputs, targets, delta):
    """Element-wise Huber loss: 0.5 * d**2 for |d| <= delta, else delta * (|d| - 0.5 * delta).

    Args:
      outputs, targets: float tensors of the same shape; d = targets - outputs.
      delta: where the loss turns from quadratic to linear.
    """
    abs_error = tf.abs(targets - outputs)
    quadratic = tf.minimum(abs_error, delta)
    return 0.5 * tf.square(quadratic) + delta * (abs_error - quadratic)


def _positives_normalizer(num_positives):
    return tf.reduce_sum(tf.cast(num_positives, tf.float32)) + 1.0


def _check_same_levels(outputs, targets, what):
    if sorted(outputs) != sorted(targets):
        raise ValueError(
            f"{what}: outputs and targets must have the same levels; got output levels "
            f"{sorted(outputs)} and target levels {sorted(targets)}"
        )
    if not outputs:
        raise ValueError(f"{what}: no levels given; expected {{level: tensor}} dicts")


# Both losses sum one chain of element-wise ops per level and divide once at
# the end. Concatenating the levels first was measured slower (CPU, batch 2,
# 640x640, 91 classes, 9 anchors, class loss forward+backward: 0.43 s median
# per level, 0.55 s concatenated): the concat copies every logit and
# serialises five independent chains.


def _negative_focal_loss(logits, alpha, gamma):
    """Focal loss of each logit for a target of 0: (1 - alpha) p**gamma (-log(1 - p)).

    -log(1 - p) = softplus(x) is computed directly (no cancellation for very
    negative logits); p**gamma = exp(gamma * (x - softplus(x))) may lose digits
    in the exponent for large logits, where that only perturbs a factor near 1.
    Finite, with finite gradients, for logits of any magnitude.
    """
    cross_entropy = tf.nn.softplus(logits)
    return (1.0 - alpha) * tf.exp(gamma * (logits - cross_entropy)) * cross_entropy


def _positive_focal_loss(logits, alpha, gamma):
    """Focal loss of each logit for a target of 1: alpha (1 - p)**gamma (-log p)."""
    cross_entropy = tf.nn.softplus(-logits)
    return alpha * tf.exp(-gamma * (logits + cross_entropy)) * cross_entropy


def _level_class_loss_sum(logits, targets, num_classes, alpha, gamma):
    """Focal loss of one level, summed over non-ignored anchors and all classes.

    Every (anchor, class) pair is first scored as a negative, so the targets
    never enter the large [B, H, W, A, K] tensor (no one-hot, no select, about a
    third of the element-wise ops of the textbook form); the positive pairs, at
    most one per anchor, are then corrected on a gathered [B * H * W * A] vector.
    Equal to the one-hot form up to float rounding (retinanet_losses_test).

    Args:
      logits: float32 [B, H, W, A, K].
      targets: int32 [B, H, W, A]; class id in [0, K) positive, -2 ignored, any
        other value a negative for every class (as a one-hot would make it).
    """
    per_anchor = tf.reduce_sum(_negative_focal_loss(logits, alpha, gamma), axis=-1)
    kept = tf.cast(tf.not_equal(targets, sentinels.IGNORE), tf.float32)
    negatives = tf.reduce_sum(per_anchor * kept)

    flat_targets = tf.reshape(targets, [-1])
    is_positive = tf.logical_and(flat_targets >= 0, flat_targets < num_classes)
    index = tf.range(tf.size(flat_targets)) * num_classes + tf.clip_by_value(
        flat_targets, 0, num_classes - 1
    )
    positive_logits = tf.gather(tf.reshape(logits, [-1]), index)
    correction = _positive_focal_loss(positive_logits, alpha, gamma) - _negative_focal_loss(
        positive_logits, alpha, gamma
    )
    return negatives + tf.reduce_sum(correction * tf.cast(is_positive, tf.float32))


def retinanet_class_loss(cls_outputs, cls_targets, num_positives, *, num_classes, alpha, gamma):
    """Focal loss over all levels, anchors and images, normalised by positives.

    Args:
      cls_outputs: {level: float tensor [B, H_l, W_l, A * num_classes]} logits,
        anchor-major as produced by RetinaNetHead; cast to float32.
      cls_targets: {level: int tensor [B, H_l, W_l, A]}: class id in
        [0, num_classes) for positive anchors, -1 negative, -2 ignored.
      num_positives: float tensor [B] (or scalar), positive anchors per image.
      num_classes: classes per anchor (K).
      alpha, gamma: focal-loss parameters (the ancestor uses 0.25 and 1.5).

    Returns:
      float32 scalar: sum of the focal loss over non-ignored anchors and all K
      class channels, divided by sum(num_positives) + 1.
    """
    _check_same_levels(cls_outputs, cls_targets, "retinanet_class_loss")
    with tf.name_scope("retinanet_class_loss"):
        level_losses = []
        for level in sorted(cls_outputs):
            targets = tf.cast(cls_targets[level], tf.int32)
            channels = cls_outputs[level].get_shape().as_list()[-1]
            anchors = targets.get_shape().as_list()[-1]
            if channels is not None and anchors is not None and channels != anchors * num_classes:
                raise ValueError(
                    f"retinanet_class_loss: level {level} outputs have {channels} channels but "
                    f"targets {targets.get_shape().as_list()} with num_classes={num_classes} "
                    f"need {anchors} * {num_classes} = {anchors * num_classes}"
                )
            # [B, H, W, A * K] -> [B, H, W, A, K] to line up with the targets.
            logits = tf.reshape(
                tf.cast(cls_outputs[level], tf.float32),
                tf.concat([tf.shape(targets), [num_classes]], axis=0),
            )
            level_losses.append(_level_class_loss_sum(logits, targets, num_classes, alpha, gamma))
        return tf.add_n(level_losses) / _positives_normalizer(num_positives)


def retinanet_box_loss(box_outputs, box_targets, num_positives, *, delta):
    """Huber loss over non-zero box targets, normalised by 4 * positives.

    Args:
      box_outputs: {level: float tensor [B, H_l, W_l, A * 4]} predicted codes;
        cast to float32.
      box_targets: {level: float tensor [B, H_l, W_l, A * 4]} encoded targets,
        0 where the anchor is not positive.
      num_positives: float tensor [B] (or scalar), positive anchors per image.
      delta: Huber delta (the ancestor uses 0.1).

    Returns:
      float32 scalar: Huber loss summed over elements whose target is not 0,
      divided by 4 * (sum(num_positives) + 1).
    """
    _check_same_levels(box_outputs, box_targets, "retinanet_box_loss")
    with tf.name_scope("retinanet_box_loss"):
        level_losses = []
        for level in sorted(box_outputs):
            outputs = tf.cast(box_outputs[level], tf.float32)
            targets = tf.cast(box_targets[level], tf.float32)
            output_shape = outputs.get_shape().as_list()
            target_shape = targets.get_shape().as_list()
            if output_shape[-1] is not None and output_shape[-1] != target_shape[-1]:
                raise ValueError(
                    f"retinanet_box_loss: level {level} outputs {output_shape} and targets "
                    f"{target_shape} differ in the last (A * 4) dimension"
                )
            mask = tf.cast(tf.not_equal(targets, 0.0), tf.float32)
            level_losses.append(tf.reduce_sum(huber_loss(outputs, targets, delta) * mask))
        return tf.add_n(level_losses) / (4.0 * _positives_normalizer(num_positives))


def retinanet_losses(
    cls_outputs,
    box_outputs,
    cls_targets,
    box_targets,
    num_positives,
    *,
    num_classes,
    alpha=0.25,
    gamma=1.5,
    delta=0.1,
    box_loss_weight=50.0,
):
    """RetinaNet training loss (no weight decay).

    Args: as `retinanet_class_loss` and `retinanet_box_loss`;
      box_loss_weight: factor of the box loss in the model loss.

    Returns:
      dict of float32 scalars: `cls_loss`, `box_loss` and
      `model_loss = cls_loss + box_loss_weight * box_loss`.
    """
    with tf.name_scope("retinanet_loss"):
        cls_loss = retinanet_class_loss(
            cls_outputs,
            cls_targets,
            num_positives,
            num_classes=num_classes,
            alpha=alpha,
            gamma=gamma,
        )
        box_loss = retinanet_box_loss(box_outputs, box_targets, num_positives, delta=delta)
        model_loss = cls_loss + box_loss_weight * box_loss
    return {"model_loss": model_loss, "cls_loss": cls_loss, "box_loss": box_loss}
