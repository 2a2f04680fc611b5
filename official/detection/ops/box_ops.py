"""Box operations shared by target assignment, losses, post-processing and evaluation.

Box convention of the whole project, stated here once: a box is
`[ymin, xmin, ymax, xmax]` in float32 pixels of the image it lives in, height is
`ymax - ymin` and width is `xmax - xmin` (no +1). Boxes in [0, 1] image coordinates
say so in their name (`boxes_normalized`). Padded rows of a box tensor hold
`sentinels.PAD` in every coordinate; a box whose four coordinates are all negative is
treated as padding (real boxes, anchors included, always have ymax, xmax > 0).

`encode_boxes` / `decode_boxes` are the only box codec in the project: RetinaNet and
RPN use them without weights, Fast R-CNN with weights [10, 10, 5, 5].

Box conventions (config key `architecture.box_convention`): the codec, clipping and
size filter read the same tensors in one of two ways.
  consistent (default): the convention above; clipping stops at the image's height
    and width.
  tensorflow_tpu: how the tensorflow/tpu detection code reads them, for checkpoints
    trained by it: a box is ymax - ymin + 1 pixels high and centred at
    ymin + height / 2, a decoded box ends at ymin + height - 1, and clipping stops at
    height - 1 and width - 1.
"""

import math

import numpy as np
import tensorflow.compat.v1 as tf

# Largest log-scale factor `decode_boxes` applies to an anchor's height or width, so a
# wild prediction cannot blow a box up by more than 1000 / 16.
BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)

# Added to heights and widths in consistent `encode_boxes` only, so that a zero-size
# box encodes to a finite code (as the ancestor's target-side coder); far below
# float32 resolution for any box of a pixel or more.
_SIZE_EPSILON = 1e-8

CONSISTENT = "consistent"
TENSORFLOW_TPU = "tensorflow_tpu"
BOX_CONVENTIONS = (CONSISTENT, TENSORFLOW_TPU)

# Union floor in IoU: two degenerate boxes have IoU 0 instead of 0 / 0.
_MIN_UNION = 1e-8


def _static_dims(tensor):
    """Static shape as a list of ints / None (None for an unknown rank), on TF 1 and 2."""
    return tensor.shape.as_list() if tensor.shape.ndims is not None else None


def _check_boxes(boxes, name, where):
    dims = _static_dims(boxes)
    if dims is not None and (not dims or dims[-1] not in (None, 4)):
        raise ValueError(
            f"{where}: `{name}` must have a last dimension of 4 ([ymin, xmin, ymax, xmax]); "
            f"received shape {dims}."
        )


def check_convention(convention, where):
    """Raises a ValueError naming `where` unless `convention` is in BOX_CONVENTIONS."""
    if convention not in BOX_CONVENTIONS:
        raise ValueError(
            f"{where}: `convention` must be one of {list(BOX_CONVENTIONS)}; "
            f"received {convention!r}."
        )


def _check_weights(weights, where):
    if weights is None:
        return
    if len(weights) != 4 or any(w <= 0 for w in weights):
        raise ValueError(
            f"{where}: `weights` must be None or four positive numbers (dy, dx, dh, dw); "
            f"received {list(weights)}."
        )


def box_areas(boxes):
    """Areas of boxes.

    Args:
      boxes: float [..., 4] pixel boxes.

    Returns:
      float [...] `(ymax - ymin) * (xmax - xmin)`.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes", "box_areas")
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return (ymax - ymin) * (xmax - xmin)


def iou_from_coordinates(coordinates1, coordinates2):
    """Element-wise IoU of boxes given as separate, broadcastable coordinate tensors.

    The arithmetic of every IoU in the project; matching calls it on grids of anchor
    coordinates to get bit-identical values to `compute_iou` without stacking boxes.

    Args:
      coordinates1, coordinates2: tuples (ymin, xmin, ymax, xmax) of float tensors;
        all eight broadcast to one shape. No padding handling.

    Returns:
      float tensor of the broadcast shape with the IoU in [0, 1].
    """
    ymin1, xmin1, ymax1, xmax1 = coordinates1
    ymin2, xmin2, ymax2, xmax2 = coordinates2
    overlap_h = tf.maximum(tf.minimum(ymax1, ymax2) - tf.maximum(ymin1, ymin2), 0.0)
    overlap_w = tf.maximum(tf.minimum(xmax1, xmax2) - tf.maximum(xmin1, xmin2), 0.0)
    intersection = overlap_h * overlap_w
    area1 = (ymax1 - ymin1) * (xmax1 - xmin1)
    area2 = (ymax2 - ymin2) * (xmax2 - xmin2)
    union = area1 + area2 - intersection
    return intersection / tf.maximum(union, _MIN_UNION)


def is_padding(boxes):
    """bool [...]: True for padded rows of float [..., 4] boxes (all coordinates < 0)."""
    return tf.reduce_max(boxes, axis=-1) < 0.0


def compute_iou(boxes1, boxes2):
    """Pairwise IoU, optionally batched, with padded boxes at -1.

    Args:
      boxes1: float32 [N, 4] or [B, N, 4] pixel boxes; may contain padded rows.
      boxes2: float32 [M, 4] or [B, M, 4] (same rank as boxes1); may contain padded rows.

    Returns:
      float32 [N, M] or [B, N, M]: IoU of every pair, -1 where either box is padding.
    """
    boxes1 = tf.convert_to_tensor(boxes1, tf.float32)
    boxes2 = tf.convert_to_tensor(boxes2, tf.float32)
    _check_boxes(boxes1, "boxes1", "compute_iou")
    _check_boxes(boxes2, "boxes2", "compute_iou")
    rank1, rank2 = boxes1.shape.ndims, boxes2.shape.ndims
    if rank1 not in (2, 3) or rank1 != rank2:
        raise ValueError(
            "compute_iou: `boxes1` and `boxes2` must both be [N, 4] or both [B, N, 4]; "
            f"received shapes {boxes1.shape.as_list()} and {boxes2.shape.as_list()}."
        )
    with tf.name_scope("compute_iou"):
        coordinates1 = [c[..., :, tf.newaxis] for c in tf.unstack(boxes1, axis=-1)]
        coordinates2 = [c[..., tf.newaxis, :] for c in tf.unstack(boxes2, axis=-1)]
        iou = iou_from_coordinates(coordinates1, coordinates2)
        padded = tf.logical_or(
            is_padding(boxes1)[..., :, tf.newaxis], is_padding(boxes2)[..., tf.newaxis, :]
        )
        return tf.where(padded, -tf.ones_like(iou), iou)


def _centers_and_sizes(boxes):
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return (ymin + ymax) / 2.0, (xmin + xmax) / 2.0, ymax - ymin, xmax - xmin


def _tpu_centers_and_sizes(boxes):
    """Centres and sizes in the tensorflow_tpu convention (sizes count both end pixels)."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    h = ymax - ymin + 1.0
    w = xmax - xmin + 1.0
    return ymin + 0.5 * h, xmin + 0.5 * w, h, w


def encode_boxes(boxes, anchors, weights=None, *, convention=CONSISTENT):
    """Encodes boxes relative to anchors as (dy, dx, dh, dw) * weights.

    dy = (yc - yc_a) / h_a, dx = (xc - xc_a) / w_a, dh = log(h / h_a), dw = log(w / w_a),
    with centres and sizes measured in `convention` (see the module docstring).

    Args:
      boxes: float [..., 4] pixel boxes.
      anchors: float32 [..., 4] pixel boxes broadcastable to `boxes`.
      weights: None (all ones) or four positive floats scaling (dy, dx, dh, dw).
      convention: one of BOX_CONVENTIONS.

    Returns:
      float32 [..., 4] codes (broadcast shape of the inputs).
    """
    _check_weights(weights, "encode_boxes")
    check_convention(convention, "encode_boxes")
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    boxes = tf.cast(boxes, tf.float32)
    _check_boxes(boxes, "boxes", "encode_boxes")
    _check_boxes(anchors, "anchors", "encode_boxes")
    with tf.name_scope("encode_boxes"):
        if convention == TENSORFLOW_TPU:
            yc, xc, h, w = _tpu_centers_and_sizes(boxes)
            yc_a, xc_a, h_a, w_a = _tpu_centers_and_sizes(anchors)
        else:
            yc, xc, h, w = _centers_and_sizes(boxes)
            yc_a, xc_a, h_a, w_a = _centers_and_sizes(anchors)
            h, w = h + _SIZE_EPSILON, w + _SIZE_EPSILON
            h_a, w_a = h_a + _SIZE_EPSILON, w_a + _SIZE_EPSILON
        codes = [(yc - yc_a) / h_a, (xc - xc_a) / w_a, tf.math.log(h / h_a), tf.math.log(w / w_a)]
        if weights is not None:
            codes = [c * float(s) for c, s in zip(codes, weights)]
        return tf.stack(codes, axis=-1)


def decode_boxes(encoded_boxes, anchors, weights=None, *, convention=CONSISTENT):
    """Inverse of `encode_boxes`; dh and dw are clipped at BBOX_XFORM_CLIP first.

    Args:
      encoded_boxes: float [..., 4] codes (dy, dx, dh, dw) * weights.
      anchors: float32 [..., 4] pixel boxes broadcastable to `encoded_boxes`.
      weights: the weights the codes were encoded with (None for all ones).
      convention: one of BOX_CONVENTIONS, the one the codes were encoded in.

    Returns:
      float32 [..., 4] pixel boxes.
    """
    _check_weights(weights, "decode_boxes")
    check_convention(convention, "decode_boxes")
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    encoded_boxes = tf.cast(encoded_boxes, tf.float32)
    _check_boxes(encoded_boxes, "encoded_boxes", "decode_boxes")
    _check_boxes(anchors, "anchors", "decode_boxes")
    with tf.name_scope("decode_boxes"):
        dy, dx, dh, dw = tf.unstack(encoded_boxes, axis=-1)
        if weights is not None:
            dy, dx, dh, dw = [c / float(s) for c, s in zip((dy, dx, dh, dw), weights)]
        dh = tf.minimum(dh, BBOX_XFORM_CLIP)
        dw = tf.minimum(dw, BBOX_XFORM_CLIP)
        if convention == TENSORFLOW_TPU:
            yc_a, xc_a, h_a, w_a = _tpu_centers_and_sizes(anchors)
            h = tf.exp(dh) * h_a
            w = tf.exp(dw) * w_a
            ymin = dy * h_a + yc_a - 0.5 * h
            xmin = dx * w_a + xc_a - 0.5 * w
            return tf.stack([ymin, xmin, ymin + h - 1.0, xmin + w - 1.0], axis=-1)
        yc_a, xc_a, h_a, w_a = _centers_and_sizes(anchors)
        yc = dy * h_a + yc_a
        xc = dx * w_a + xc_a
        half_h = 0.5 * tf.exp(dh) * h_a
        half_w = 0.5 * tf.exp(dw) * w_a
        return tf.stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], axis=-1)


def _height_width(image_shape, dtype):
    """(height, width) tensors of shape [..., 1] from a [2] or [..., 2] image shape."""
    image_shape = tf.cast(image_shape, dtype)
    dims = _static_dims(image_shape)
    if dims and dims[-1] not in (None, 2):
        raise ValueError(
            f"`image_shape` must be [2] or [..., 2] (height, width); received shape {dims}."
        )
    return image_shape[..., 0:1], image_shape[..., 1:2]


def clip_boxes(boxes, image_shape, *, convention=CONSISTENT):
    """Clips boxes to the image: y to [0, height], x to [0, width] (consistent) or
    y to [0, height - 1], x to [0, width - 1] (tensorflow_tpu).

    Args:
      boxes: float [..., 4] pixel boxes.
      image_shape: [2] (height, width) list or tensor, or a tensor [..., 2] whose
        leading dimensions broadcast against those of `boxes` (e.g. [B, 1, 2] for
        boxes [B, N, 4]).
      convention: one of BOX_CONVENTIONS.

    Returns:
      float [..., 4] clipped boxes.
    """
    check_convention(convention, "clip_boxes")
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes", "clip_boxes")
    with tf.name_scope("clip_boxes"):
        height, width = _height_width(image_shape, boxes.dtype)
        if convention == TENSORFLOW_TPU:
            height, width = height - 1.0, width - 1.0
        limits = tf.concat([height, width, height, width], axis=-1)
        return tf.maximum(tf.minimum(boxes, limits), 0.0)


def normalize_boxes(boxes, image_shape):
    """Pixel boxes [..., 4] -> boxes_normalized (y / height, x / width).

    `image_shape` as in `clip_boxes`.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes", "normalize_boxes")
    with tf.name_scope("normalize_boxes"):
        height, width = _height_width(image_shape, boxes.dtype)
        return boxes / tf.concat([height, width, height, width], axis=-1)


def denormalize_boxes(boxes_normalized, image_shape):
    """boxes_normalized [..., 4] -> pixel boxes (y * height, x * width).

    `image_shape` as in `clip_boxes`.
    """
    boxes_normalized = tf.convert_to_tensor(boxes_normalized)
    _check_boxes(boxes_normalized, "boxes_normalized", "denormalize_boxes")
    with tf.name_scope("denormalize_boxes"):
        height, width = _height_width(image_shape, boxes_normalized.dtype)
        return boxes_normalized * tf.concat([height, width, height, width], axis=-1)


def yxyx_to_xywh(boxes):
    """[ymin, xmin, ymax, xmax] -> [xmin, ymin, width, height] (COCO results format).

    Args:
      boxes: NumPy array or tensor [..., 4]; the result is of the same kind.
    """
    if isinstance(boxes, np.ndarray):
        if boxes.ndim < 1 or boxes.shape[-1] != 4:
            raise ValueError(
                "yxyx_to_xywh: `boxes` must have a last dimension of 4; "
                f"received shape {list(boxes.shape)}."
            )
        ymin, xmin, ymax, xmax = np.moveaxis(boxes, -1, 0)
        return np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes", "yxyx_to_xywh")
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)


def filter_boxes_by_size(boxes, scores, image_shape, min_size, *, convention=CONSISTENT):
    """Zeroes boxes (and their scores) that are too small or centred outside the image.

    A box is kept when its height and width are both > min_size and its centre lies
    strictly inside the image. In the tensorflow_tpu convention sizes and centres are
    measured with the +1 (see the module docstring) and the smallest min_size is 1, so
    a box must span more than one pixel.

    Args:
      boxes: float32 [..., N, 4] pixel boxes.
      scores: float32 [..., N] scores of the boxes.
      image_shape: [2] (height, width), or [B, 2] for boxes [B, N, 4].
      min_size: Python float, smallest side kept (exclusive), in pixels.
      convention: one of BOX_CONVENTIONS.

    Returns:
      (boxes, scores) of the input shapes with removed entries set to 0.
    """
    check_convention(convention, "filter_boxes_by_size")
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes", "filter_boxes_by_size")
    with tf.name_scope("filter_boxes_by_size"):
        height, width = _height_width(image_shape, boxes.dtype)
        if convention == TENSORFLOW_TPU:
            yc, xc, h, w = _tpu_centers_and_sizes(boxes)
            min_size = max(min_size, 1.0)
        else:
            yc, xc, h, w = _centers_and_sizes(boxes)
        keep = tf.logical_and(h > min_size, w > min_size)
        inside_y = tf.logical_and(yc > 0.0, yc < height)
        inside_x = tf.logical_and(xc > 0.0, xc < width)
        keep = tf.logical_and(keep, tf.logical_and(inside_y, inside_x))
        scores = tf.where(keep, scores, tf.zeros_like(scores))
        boxes = boxes * tf.cast(keep, boxes.dtype)[..., tf.newaxis]
        return boxes, scores
