"""Steps shared by the detection parsers: crowd filtering, the image/box transform, and the
padded ground truth that evaluation reads.

Boxes are [ymin, xmin, ymax, xmax] float32; `*_normalized` ones are in [0, 1].
"""

import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops, preprocess_ops


def process_source_id(source_id):
    """Decimal string source id -> int64 scalar; an empty string gives -1."""
    return tf.cond(
        tf.strings.length(source_id) > 0,
        lambda: tf.strings.to_number(source_id, out_type=tf.int64),
        lambda: tf.constant(-1, tf.int64),
    )


def drop_crowds(is_crowd, *tensors):
    """Keeps the rows of every [N, ...] tensor in `tensors` whose `is_crowd` [N] is False."""
    keep = tf.where(tf.logical_not(is_crowd))[:, 0]
    return tuple(tf.gather(t, keep) for t in tensors)


def transform_image_and_boxes(
    image,
    boxes_normalized,
    *,
    output_size,
    padded_size,
    flip=None,
    aug_scale_min=1.0,
    aug_scale_max=1.0,
    seed=None,
    box_convention=box_ops.CONSISTENT,
):
    """Flips, normalises, resizes, crops and pads an image and maps its boxes along.

    Args:
      image: uint8 [H, W, 3] original image.
      boxes_normalized: float32 [N, 4] normalised boxes of the original image.
      output_size: [2] Python ints, the scaled (and cropped) image size.
      padded_size: [2] Python ints, the static size of the returned image.
      flip: None, or a bool scalar tensor telling whether to flip left-right.
      aug_scale_min, aug_scale_max: scale jitter range (1.0, 1.0 = none).
      seed: op seed of the jitter draws.
      box_convention: a box convention of `box_ops`, how boxes are clipped.

    Returns:
      image: float32 [padded h, padded w, 3], normalised, zero-padded.
      boxes: float32 [N, 4] pixel boxes in the output image, clipped to `output_size`
        (boxes left outside the crop are empty, see `keep_non_empty_boxes`).
      image_info: float32 [4, 2], see `preprocess_ops.compute_resize_params`.
    """
    image_size = tf.shape(image)[0:2]
    if flip is not None:
        image, boxes_normalized, _ = preprocess_ops.horizontal_flip(
            image, boxes_normalized, flip=flip
        )
    # Normalising before the resize is exact (bilinear resize is linear) and leaves the
    # padding at 0 after normalisation (the mean colour), as in the ancestor.
    image = preprocess_ops.normalize_image(image)
    image, image_info = preprocess_ops.resize_and_crop_image(
        image, output_size, padded_size, aug_scale_min, aug_scale_max, seed=seed
    )
    boxes = boxes_normalized * tf.tile(tf.cast(image_size, tf.float32), [2])
    boxes = preprocess_ops.resize_and_crop_boxes(
        boxes, image_info[2], output_size, image_info[3], convention=box_convention
    )
    return image, boxes, image_info


def keep_non_empty_boxes(boxes, *tensors):
    """Drops boxes with zero height or width, and the same rows of `tensors`."""
    keep = preprocess_ops.get_non_empty_box_indices(boxes)
    return (tf.gather(boxes, keep),) + tuple(tf.gather(t, keep) for t in tensors)


def build_groundtruths(data, max_num_instances, include_mask_png=False):
    """Ground truth for COCO evaluation, padded to `max_num_instances`.

    Args:
      data: a `TfExampleDecoder.decode` result.
      max_num_instances: static number of rows (extra objects are cut off).
      include_mask_png: add the PNG mask strings (needs a decoder with include_mask).

    Returns:
      dict: source_id int64 scalar (-1 if empty), height and width int32 scalars,
      num_detections int32 scalar (objects before padding, at most max_num_instances),
      boxes float32 [M, 4] in original-image pixels padded with -1, classes int32 [M]
      padded with -1, areas float32 [M] padded with -1, is_crowds int32 [M] padded with
      0, and with include_mask_png masks string [M] padded with ''.
    """
    image_size = tf.cast(tf.shape(data["image"])[0:2], tf.float32)
    boxes = data["groundtruth_boxes"] * tf.tile(image_size, [2])
    pad = preprocess_ops.clip_or_pad_to_fixed_size
    num_objects = tf.shape(data["groundtruth_classes"])[0]
    groundtruths = {
        "source_id": process_source_id(data["source_id"]),
        "height": data["height"],
        "width": data["width"],
        "num_detections": tf.minimum(num_objects, max_num_instances),
        "boxes": pad(boxes, max_num_instances, -1.0),
        "classes": pad(data["groundtruth_classes"], max_num_instances, -1),
        "areas": pad(data["groundtruth_area"], max_num_instances, -1.0),
        "is_crowds": pad(tf.cast(data["groundtruth_is_crowd"], tf.int32), max_num_instances, 0),
    }
    if include_mask_png:
        groundtruths["masks"] = pad(data["groundtruth_instance_masks_png"], max_num_instances, "")
    return groundtruths
