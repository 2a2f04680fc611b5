"""Final detections from raw head outputs: decode, select, class-aware NMS, rescale.

Both generators follow the same recipe and return the same dict:

1. Scores per (box, foreground class); class 0 is the background and never output.
2. The `pre_nms_num_boxes` best (box, class) pairs over all boxes and classes of the
   image are kept (a top-k per level, then of their union). This is where the time goes
   (~7M pairs for RetinaNet at 640 px), so only the winners are decoded, rescaled and
   suppressed. Scores at or below `score_threshold` are dropped by the NMS; since the
   threshold only removes the lowest scores, thresholding before or after the top-k
   selects the same pairs.
3. Boxes are decoded with `box_ops.decode_boxes`, mapped from the network input back to
   original-image pixels with `image_info` and clipped to the original image.
4. Greedy NMS within each class (`nms.class_aware_non_max_suppression`), keeping the
   `max_total_size` best survivors of all classes.

In the tensorflow_tpu box convention (`box_ops`) step 3 decodes that way and clips in
the network input, to [0, scaled height - 1] x [0, scaled width - 1], before mapping to
the original image (without clipping there), as the tensorflow/tpu detection code
does.

The ancestor instead took the top `pre_nms_num_boxes` per class and ran one NMS per
class (90 top-k and 90 NMS ops per image). With the same candidates both give the same
detections. The candidate sets can only differ when more than `pre_nms_num_boxes` pairs
score above the threshold (early in training, crowded images), and the final detections
only when so many of the best pairs are suppressed that fewer than `max_total_size`
survive among them (none differed in scripts/benchmark_postprocess.py).

Outputs (B images, M = max_total_size):
  detection_boxes: float32 [B, M, 4] [ymin, xmin, ymax, xmax] in original-image pixels.
  detection_scores: float32 [B, M] by decreasing score.
  detection_classes: int32 [B, M] class ids as in the dataset (1..num_classes-1).
  num_detections: int32 [B]; rows after num_detections[b] are all zero.
"""

import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib
from official.detection.ops import box_ops, nms

# Box-code weights of the Fast R-CNN head (dy, dx, dh, dw).
RCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def _check_settings(where, num_classes, max_total_size, pre_nms_num_boxes, score_threshold):
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"{where}: `num_classes` must be an int >= 2 (background + at least one class); "
            f"received {num_classes!r}."
        )
    for name, value in (
        ("max_total_size", max_total_size),
        ("pre_nms_num_boxes", pre_nms_num_boxes),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}: `{name}` must be a positive int; received {value!r}.")
    if not 0.0 <= score_threshold < 1.0:
        raise ValueError(
            f"{where}: `score_threshold` must be in [0, 1); received {score_threshold!r}."
        )


def _check_image_info(where, image_info):
    shape = image_info.shape
    if shape.ndims is not None and (shape.ndims != 3 or shape.as_list()[1:] != [4, 2]):
        raise ValueError(
            f"{where}: `image_info` must be [batch, 4, 2] ([[orig h, orig w], [scaled h, "
            f"scaled w], [y scale, x scale], [y offset, x offset]]); received shape "
            f"{shape.as_list() if shape.ndims is not None else None}."
        )


def _scale_and_offset(image_info):
    """[B, 1, 4] scale and offset tensors in box-coordinate order (y, x, y, x)."""
    scale = tf.tile(image_info[:, 2, :], [1, 2])[:, tf.newaxis, :]
    offset = tf.tile(image_info[:, 3, :], [1, 2])[:, tf.newaxis, :]
    return scale, offset


def boxes_to_original_image(boxes, image_info, *, convention=box_ops.CONSISTENT):
    """Maps boxes from network-input pixels to original-image pixels, clipped.

    Inverts the input pipeline's resize (scale) and crop (offset, 0 in evaluation).
    The consistent convention clips to the original image after mapping; tensorflow_tpu
    clips to the scaled image (`box_ops.clip_boxes`) before.

    Args:
      boxes: float32 [B, N, 4] boxes in the scaled (and cropped) input image.
      image_info: float32 [B, 4, 2] as produced by the parsers.
      convention: one of `box_ops.BOX_CONVENTIONS`.

    Returns:
      float32 [B, N, 4] boxes in original-image pixels.
    """
    box_ops.check_convention(convention, "boxes_to_original_image")
    image_info = tf.convert_to_tensor(image_info, tf.float32)
    _check_image_info("boxes_to_original_image", image_info)
    scale, offset = _scale_and_offset(image_info)
    if convention == box_ops.TENSORFLOW_TPU:
        boxes = box_ops.clip_boxes(boxes, image_info[:, 1:2, :], convention=convention)
        return (boxes + offset) / scale
    boxes = (boxes + offset) / scale
    return box_ops.clip_boxes(boxes, image_info[:, 0:1, :])


def boxes_to_input_image(boxes, image_info):
    """Inverse of `boxes_to_original_image` (without clipping): original -> input pixels.

    E.g. for running a Mask R-CNN mask head on final detections.

    Args:
      boxes: float32 [B, N, 4] boxes in original-image pixels.
      image_info: float32 [B, 4, 2].
    """
    image_info = tf.convert_to_tensor(image_info, tf.float32)
    _check_image_info("boxes_to_input_image", image_info)
    scale, offset = _scale_and_offset(image_info)
    return boxes * scale - offset


def _static_or_dynamic(tensor, axis):
    static = tensor.shape[axis]
    return static if static is not None else tf.shape(tensor)[axis]


def _min(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return tf.minimum(a, b)


def _top_foreground_pairs(ranking, k):
    """The k best (box, foreground class) pairs of each image.

    Args:
      ranking: float32 [B, N, K] values to rank by (scores or any monotonic transform)
        with a static K; channel 0 is the background and never selected.
      k: Python int; capped at N * (K - 1).

    Returns:
      (values [B, k'], box_index [B, k'] int32, class_id [B, k'] int32 in [1, K)).
    """
    num_classes = ranking.shape.as_list()[-1]
    # -inf on the background channel keeps it out of the top-k without the copy a
    # slice of the (large) foreground channels would make.
    background = tf.constant([float("-inf")] + [0.0] * (num_classes - 1), tf.float32)
    flat = tf.reshape(ranking + background, [tf.shape(ranking)[0], -1])
    k = _min(k, _static_or_dynamic(ranking, 1) * (num_classes - 1))
    # Unsorted: the NMS orders its candidates itself.
    values, indices = tf.nn.top_k(flat, k=k, sorted=False)
    return values, indices // num_classes, indices % num_classes


def _top_multilevel_pairs(rankings, k):
    """`_top_foreground_pairs` over levels {level: [B, N_l, K]}; box indices count
    anchors of all levels in ascending level order (as `flatten_multilevel`)."""
    values, box_index, class_id = [], [], []
    offset = 0
    for level in sorted(rankings):
        level_values, level_box_index, level_class_id = _top_foreground_pairs(rankings[level], k)
        values.append(level_values)
        box_index.append(level_box_index + offset)
        class_id.append(level_class_id)
        offset = offset + _static_or_dynamic(rankings[level], 1)
    if len(values) == 1:
        return values[0], box_index[0], class_id[0]
    # Top-k per level, then of the union: the same pairs as one top-k over all levels,
    # without concatenating the per-level score maps.
    values = tf.concat(values, axis=1)
    k = _min(k, _static_or_dynamic(values, 1))
    values, order = tf.nn.top_k(values, k=k, sorted=False)
    box_index = tf.gather(tf.concat(box_index, axis=1), order, batch_dims=1)
    class_id = tf.gather(tf.concat(class_id, axis=1), order, batch_dims=1)
    return values, box_index, class_id


def _suppress(boxes, scores, classes, image_info, convention, **kwargs):
    """Rescales [B, k, 4] input-image boxes and runs class-aware NMS; the output dict."""
    boxes = boxes_to_original_image(boxes, image_info, convention=convention)
    result = nms.class_aware_non_max_suppression(boxes, scores, classes, **kwargs)
    return {
        "detection_boxes": result["boxes"],
        "detection_scores": result["scores"],
        "detection_classes": result["classes"],
        "num_detections": result["num_valid"],
    }


def _check_multilevel(where, cls_outputs, box_outputs, anchor_boxes, num_classes):
    levels = sorted(cls_outputs)
    if not levels or sorted(box_outputs) != levels or sorted(anchor_boxes) != levels:
        raise ValueError(
            f"{where}: `cls_outputs`, `box_outputs` and `anchor_boxes` must have the same, "
            f"non-empty set of levels; received {levels}, {sorted(box_outputs)} and "
            f"{sorted(anchor_boxes)}."
        )
    for level in levels:
        cls_channels = cls_outputs[level].shape[-1]
        box_channels = box_outputs[level].shape[-1]
        if cls_channels is None or box_channels is None:
            raise ValueError(
                f"{where}: level {level} outputs need static channel dimensions; received "
                f"{cls_outputs[level].shape.as_list()} and {box_outputs[level].shape.as_list()}."
            )
        if cls_channels % num_classes or box_channels != 4 * (cls_channels // num_classes):
            raise ValueError(
                f"{where}: level {level} must have A * num_classes class channels and A * 4 "
                f"box channels (num_classes={num_classes}); received {cls_channels} and "
                f"{box_channels}."
            )


def generate_detections(
    cls_outputs,
    box_outputs,
    anchor_boxes,
    image_info,
    *,
    num_classes,
    max_total_size=100,
    nms_iou_threshold=0.5,
    score_threshold=0.05,
    pre_nms_num_boxes=5000,
    use_sigmoid=True,
    convention=box_ops.CONSISTENT,
):
    """Detections of a one-stage (RetinaNet) head; see the module docstring for outputs.

    Args:
      cls_outputs: {level: float32 [B, H_l, W_l, A * num_classes]} class logits; channel
        a * num_classes + k belongs to anchor a and class k (k = 0 is background).
      box_outputs: {level: float32 [B, H_l, W_l, A * 4]} box codes relative to anchors.
      anchor_boxes: {level: float32 [H_l, W_l, A * 4] or [B, H_l, W_l, A * 4]} anchors in
        input-image pixels.
      image_info: float32 [B, 4, 2] as produced by the parsers.
      num_classes: number of classes including the background.
      max_total_size: detections per image.
      nms_iou_threshold: IoU above which a box is suppressed by a better one of its class.
      score_threshold: only scores above this become detections.
      pre_nms_num_boxes: (anchor, class) pairs kept per image before NMS.
      use_sigmoid: per-class sigmoid scores (RetinaNet); False for a softmax over classes.
      convention: one of `box_ops.BOX_CONVENTIONS` (see the module docstring).
    """
    where = "generate_detections"
    _check_settings(where, num_classes, max_total_size, pre_nms_num_boxes, score_threshold)
    box_ops.check_convention(convention, where)
    _check_multilevel(where, cls_outputs, box_outputs, anchor_boxes, num_classes)
    image_info = tf.convert_to_tensor(image_info, tf.float32)
    _check_image_info(where, image_info)
    with tf.name_scope(where):
        rankings = {}
        for level, level_outputs in cls_outputs.items():
            logits = tf.reshape(level_outputs, [tf.shape(level_outputs)[0], -1, num_classes])
            # The sigmoid is monotonic: rank by logit and squash only the winners.
            rankings[level] = logits if use_sigmoid else tf.nn.softmax(logits, axis=-1)
        values, anchor_index, class_id = _top_multilevel_pairs(rankings, pre_nms_num_boxes)
        scores = tf.sigmoid(values) if use_sigmoid else values
        encoded = tf.gather(anchors_lib.flatten_multilevel(box_outputs), anchor_index, batch_dims=1)
        anchors = anchors_lib.flatten_multilevel(anchor_boxes)
        if anchors.shape.ndims == 2:
            anchors = tf.gather(anchors, anchor_index)
        else:
            anchors = tf.gather(anchors, anchor_index, batch_dims=1)
        boxes = box_ops.decode_boxes(encoded, anchors, convention=convention)
        return _suppress(
            boxes,
            scores,
            class_id,
            image_info,
            convention,
            num_classes=num_classes,
            max_output_size=max_total_size,
            iou_threshold=nms_iou_threshold,
            score_threshold=score_threshold,
        )


def generate_detections_from_rcnn(
    class_outputs,
    box_outputs,
    rois,
    image_info,
    *,
    max_total_size=100,
    nms_iou_threshold=0.5,
    score_threshold=0.05,
    pre_nms_num_boxes=5000,
    box_weights=RCNN_BOX_WEIGHTS,
    convention=box_ops.CONSISTENT,
):
    """Detections of a two-stage (Fast R-CNN) head; see the module docstring for outputs.

    Args:
      class_outputs: float32 [B, R, K] class logits (softmax over K classes, 0 is
        background).
      box_outputs: float32 [B, R, K * 4] class-specific box codes (class k in channels
        4k..4k+3), or [B, R, 4] class-agnostic codes, relative to `rois`.
      rois: float32 [B, R, 4] proposals in input-image pixels.
      image_info: float32 [B, 4, 2] as produced by the parsers.
      max_total_size, nms_iou_threshold, score_threshold, pre_nms_num_boxes: as in
        `generate_detections`; pre_nms_num_boxes counts (roi, class) pairs.
      box_weights: the (dy, dx, dh, dw) weights the box targets were encoded with.
      convention: one of `box_ops.BOX_CONVENTIONS`, the one the box targets were
        encoded in.
    """
    where = "generate_detections_from_rcnn"
    box_ops.check_convention(convention, where)
    class_outputs = tf.convert_to_tensor(class_outputs, tf.float32)
    box_outputs = tf.convert_to_tensor(box_outputs, tf.float32)
    rois = tf.convert_to_tensor(rois, tf.float32)
    if class_outputs.shape.ndims != 3 or class_outputs.shape[-1] is None:
        raise ValueError(
            f"{where}: `class_outputs` must be [batch, num_rois, num_classes] with a static "
            f"num_classes; received shape {class_outputs.shape.as_list()}."
        )
    num_classes = int(class_outputs.shape[-1])
    _check_settings(where, num_classes, max_total_size, pre_nms_num_boxes, score_threshold)
    box_channels = box_outputs.shape[-1] if box_outputs.shape.ndims == 3 else None
    if box_channels not in (4, 4 * num_classes):
        raise ValueError(
            f"{where}: `box_outputs` must be [batch, num_rois, 4 * num_classes] "
            f"(num_classes={num_classes}) or [batch, num_rois, 4]; received shape "
            f"{box_outputs.shape.as_list() if box_outputs.shape.ndims is not None else None}."
        )
    image_info = tf.convert_to_tensor(image_info, tf.float32)
    _check_image_info(where, image_info)
    with tf.name_scope(where):
        scores = tf.nn.softmax(class_outputs, axis=-1)
        values, roi_index, class_id = _top_foreground_pairs(scores, pre_nms_num_boxes)
        batch_size = tf.shape(box_outputs)[0]
        if box_channels == 4:
            encoded = tf.gather(box_outputs, roi_index, batch_dims=1)
        else:
            # Codes flattened as (roi, class) pairs, in the order of `scores`.
            per_class = tf.reshape(box_outputs, [batch_size, -1, 4])
            encoded = tf.gather(per_class, roi_index * num_classes + class_id, batch_dims=1)
        rois = tf.gather(rois, roi_index, batch_dims=1)
        boxes = box_ops.decode_boxes(encoded, rois, weights=box_weights, convention=convention)
        return _suppress(
            boxes,
            values,
            class_id,
            image_info,
            convention,
            num_classes=num_classes,
            max_output_size=max_total_size,
            iou_threshold=nms_iou_threshold,
            score_threshold=score_threshold,
        )
