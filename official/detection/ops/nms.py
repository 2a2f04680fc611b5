"""Non-maximum suppression for batches of boxes, single-class and class-aware.

Both functions run greedy NMS per image: visit boxes by decreasing score, keep a box
unless its IoU with an already kept box (of the same class) is above `iou_threshold`,
drop boxes whose score is not above `score_threshold`, stop after `max_output_size`.
Boxes are [ymin, xmin, ymax, xmax] float32 pixels; outputs have static size
`max_output_size` and are padded after the `num_valid` leading rows.

Both sit on TensorFlow's C++ kernels (`NonMaxSuppressionV3` and
`CombinedNonMaxSuppression`), which exist on TF 1.15 and run fast on CPU. The
TPU-style `tf.image.non_max_suppression_padded` is avoided on purpose: on TF 2.x it is a
Python while-loop and was what made the ancestor's post-processing take seconds.
"""

import tensorflow.compat.v1 as tf


def _check_thresholds(where, max_output_size, iou_threshold, score_threshold):
    if not isinstance(max_output_size, int) or max_output_size < 1:
        raise ValueError(
            f"{where}: `max_output_size` must be a positive Python int; "
            f"received {max_output_size!r}."
        )
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"{where}: `iou_threshold` must be in [0, 1]; received {iou_threshold!r}.")
    if score_threshold != score_threshold:  # NaN would silently drop every box.
        raise ValueError(f"{where}: `score_threshold` must be a number; received NaN.")


def _check_batched(where, boxes, scores):
    if boxes.shape.ndims is not None and (
        boxes.shape.ndims != 3 or boxes.shape[-1] not in (None, 4)
    ):
        raise ValueError(
            f"{where}: `boxes` must be [batch, num_boxes, 4]; received shape "
            f"{boxes.shape.as_list()}."
        )
    if scores.shape.ndims is not None and scores.shape.ndims != 2:
        raise ValueError(
            f"{where}: `scores` must be [batch, num_boxes]; received shape "
            f"{scores.shape.as_list()}."
        )


def non_max_suppression_padded(
    boxes, scores, *, max_output_size, iou_threshold=0.5, score_threshold=float("-inf")
):
    """Single-class greedy NMS on every image of a batch.

    Args:
      boxes: float32 [B, N, 4] pixel boxes.
      scores: float32 [B, N] scores of the boxes.
      max_output_size: Python int, most boxes kept per image.
      iou_threshold: a kept box suppresses boxes whose IoU with it is above this.
      score_threshold: boxes whose score is not above this are never kept.

    Returns:
      (indices, num_valid): int32 [B, max_output_size] indices into N of the kept boxes
      by decreasing score, padded with 0 after the first num_valid[b]; int32 [B].
    """
    where = "non_max_suppression_padded"
    _check_thresholds(where, max_output_size, iou_threshold, score_threshold)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    _check_batched(where, boxes, scores)

    def one_image(inputs):
        image_boxes, image_scores = inputs
        # An empty box (zero height or width) overlaps nothing, so NMS always keeps it
        # and it suppresses nothing; it bypasses the kernel, whose TF 1.15 version
        # returns an empty box over and over once it has selected one.
        ymin, xmin, ymax, xmax = tf.unstack(image_boxes, axis=-1)
        empty = tf.logical_or(tf.equal(ymin, ymax), tf.equal(xmin, xmax))
        kept = tf.image.non_max_suppression(
            image_boxes,
            tf.where(empty, tf.fill(tf.shape(image_scores), float("-inf")), image_scores),
            max_output_size,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
        )
        kept_empty = tf.where(tf.logical_and(empty, image_scores > score_threshold))[:, 0]
        kept = tf.sort(tf.concat([kept, tf.cast(kept_empty, tf.int32)], axis=0))
        # By decreasing score, ties by index (the kernel's order).
        order = tf.argsort(tf.gather(image_scores, kept), direction="DESCENDING", stable=True)
        kept = tf.gather(kept, order[:max_output_size])
        num_valid = tf.shape(kept)[0]
        kept = tf.pad(kept, [[0, max_output_size - num_valid]])
        return tf.reshape(kept, [max_output_size]), num_valid

    with tf.name_scope(where):
        return tf.map_fn(one_image, (boxes, scores), dtype=(tf.int32, tf.int32), back_prop=False)


def class_aware_non_max_suppression(
    boxes,
    scores,
    classes,
    *,
    num_classes,
    max_output_size,
    iou_threshold=0.5,
    score_threshold=0.0,
):
    """Greedy NMS within each class, all classes in one op; the best boxes overall.

    Equals running single-class NMS for every class and keeping the `max_output_size`
    highest-scoring survivors of all classes; a box never suppresses a box of another
    class. Each candidate box carries one class (as after a top-k over (box, class)
    pairs), so a box with two plausible classes appears twice.

    Args:
      boxes: float32 [B, N, 4] pixel boxes.
      scores: float32 [B, N] scores in [0, 1].
      classes: int32 [B, N] class of every box, in [0, num_classes).
      num_classes: Python int, number of class ids.
      max_output_size: Python int, most boxes kept per image (over all classes).
      iou_threshold: a kept box suppresses same-class boxes whose IoU is above this.
      score_threshold: boxes whose score is not above this are never kept; must be
        >= 0 (scores are probabilities).

    Returns:
      dict with `boxes` float32 [B, max_output_size, 4], `scores` float32
      [B, max_output_size], `classes` int32 [B, max_output_size], all sorted by
      decreasing score and zero after the first `num_valid[b]` rows, and `num_valid`
      int32 [B].
    """
    where = "class_aware_non_max_suppression"
    _check_thresholds(where, max_output_size, iou_threshold, score_threshold)
    if score_threshold < 0.0:
        raise ValueError(
            f"{where}: `score_threshold` must be >= 0 (scores are probabilities); "
            f"received {score_threshold!r}."
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"{where}: `num_classes` must be a positive Python int; received {num_classes!r}."
        )
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    classes = tf.convert_to_tensor(classes, tf.int32)
    _check_batched(where, boxes, scores)
    with tf.name_scope(where):
        # The combined op wants a score per (box, class); the other classes of a box get
        # -1, which no score threshold >= 0 lets through.
        per_class_scores = tf.where(
            tf.one_hot(classes, num_classes, on_value=True, off_value=False),
            tf.tile(scores[..., tf.newaxis], [1, 1, num_classes]),
            -tf.ones(tf.concat([tf.shape(scores), [num_classes]], 0), tf.float32),
        )
        # Per-class NMS capped at max_output_size per class, then the overall best
        # max_output_size: the same as uncapped per-class NMS followed by a top-k.
        nms_boxes, nms_scores, nms_classes, num_valid = tf.image.combined_non_max_suppression(
            boxes[:, :, tf.newaxis, :],
            per_class_scores,
            max_output_size_per_class=max_output_size,
            max_total_size=max_output_size,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            pad_per_class=False,
            clip_boxes=False,
        )
        valid = tf.range(max_output_size)[tf.newaxis, :] < num_valid[:, tf.newaxis]
        nms_classes = tf.where(
            valid, tf.cast(nms_classes, tf.int32), tf.zeros_like(nms_classes, tf.int32)
        )
        return {
            "boxes": nms_boxes,
            "scores": nms_scores,
            "classes": nms_classes,
            "num_valid": tf.cast(num_valid, tf.int32),
        }
