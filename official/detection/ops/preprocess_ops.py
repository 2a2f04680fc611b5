"""Image, box and mask preprocessing for detection input pipelines.

Pure tensor functions: normalisation with the ImageNet mean/std, horizontal flips,
aspect-preserving resize with scale jitter and random crop, padding to a multiple of the
largest feature stride, and the matching box and mask transforms. Boxes are
[ymin, xmin, ymax, xmax] float32; normalised boxes say so in their name.

Resizing uses half-pixel centres (as `tf.image.resize` in TF2), so a pixel edge at `y`
in the original image lands at `y * y_scale` in the scaled one, exactly where
`resize_and_crop_boxes` puts box edges.
"""

import math

import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops

# ImageNet statistics of RGB images scaled to [0, 1] (the ancestor's values).
MEAN_RGB = (0.485, 0.456, 0.406)
STDDEV_RGB = (0.229, 0.224, 0.225)


def normalize_image(image, offset=MEAN_RGB, scale=STDDEV_RGB):
    """Maps pixel values in [0, 255] to `(x / 255 - offset) / scale` per channel.

    Args:
      image: uint8 or float [..., W, 3] (at least rank 2) with values in [0, 255].
      offset, scale: per-channel mean and standard deviation of images in [0, 1].

    Returns:
      float32 tensor of the same shape.
    """
    with tf.name_scope("normalize_image"):
        # One multiply-add per value: (x / 255 - m) / s == x * (1 / (255 s)) - m / s. The
        # image is viewed as rows of W * 3 values so the per-channel constants broadcast
        # along rows; broadcasting a [3] vector over the last axis is several times slower.
        multiplier = tf.constant([1.0 / (255.0 * s) for s in scale], tf.float32)
        bias = tf.constant([-m / s for m, s in zip(offset, scale)], tf.float32)
        shape = tf.shape(image)
        num_channels = len(scale)
        rows = tf.reshape(tf.cast(image, tf.float32), [-1, shape[-2] * num_channels])
        rows = rows * tf.tile(multiplier, [shape[-2]]) + tf.tile(bias, [shape[-2]])
        output = tf.reshape(rows, shape)
        output.set_shape(image.shape)
        return output


def compute_padded_size(desired_size, stride):
    """Smallest [h, w] >= desired_size whose sides are multiples of `stride` (Python ints)."""
    return [int(math.ceil(d / stride) * stride) for d in desired_size]


def flip_boxes_left_right(boxes_normalized):
    """Mirrors normalised [N, 4] boxes about the vertical centre line of the image."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes_normalized, axis=-1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)


def horizontal_flip(image, boxes_normalized=None, masks=None, *, flip):
    """Flips image, boxes and masks left-right when the bool scalar `flip` is True.

    Args:
      image: [H, W, C] tensor of any dtype.
      boxes_normalized: optional float32 [N, 4] normalised boxes.
      masks: optional [N, H, W] tensor of any dtype.
      flip: bool scalar tensor (or Python bool).

    Returns:
      (image, boxes_normalized, masks); the optional ones stay None when not given.
    """
    with tf.name_scope("horizontal_flip"):
        flip = tf.convert_to_tensor(flip, tf.bool)
        image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
        if boxes_normalized is not None:
            boxes_normalized = tf.cond(
                flip, lambda: flip_boxes_left_right(boxes_normalized), lambda: boxes_normalized
            )
        if masks is not None:
            masks = tf.cond(flip, lambda: tf.reverse(masks, axis=[2]), lambda: masks)
        return image, boxes_normalized, masks


def random_flip_decision(seed=None):
    """A bool scalar tensor that is True with probability 1/2."""
    return tf.random.uniform([], 0.0, 1.0, seed=seed) < 0.5


def random_horizontal_flip(image, boxes_normalized=None, masks=None, *, seed=None):
    """`horizontal_flip` with a fair coin; same arguments and returns."""
    return horizontal_flip(image, boxes_normalized, masks, flip=random_flip_decision(seed))


def compute_resize_params(
    image_size, desired_size, aug_scale_min=1.0, aug_scale_max=1.0, seed=None
):
    """Scale and crop offset of the aspect-preserving resize (RetinaNet style).

    The image is scaled to the largest size that fits in `desired_size * s`, with the
    jitter factor `s` uniform in [aug_scale_min, aug_scale_max]; when jittering, a random
    window of `desired_size` is then cut out of the scaled image (offset 0 otherwise).

    Args:
      image_size: int or float [2] tensor, (height, width) of the original image.
      desired_size: [2] Python ints, (height, width) of the output before padding.
      aug_scale_min, aug_scale_max: jitter range; both 1.0 disables jitter and crop.
      seed: op seed of the random draws.

    Returns:
      image_info: float32 [4, 2] [[orig h, orig w], [scaled h, scaled w],
        [y scale, x scale], [y offset, x offset]] with scale = scaled / original size
        and the offset in scaled-image pixels (integer valued).
    """
    if not 0.0 < aug_scale_min <= aug_scale_max:
        raise ValueError(
            "compute_resize_params: need 0 < aug_scale_min <= aug_scale_max, got "
            f"aug_scale_min={aug_scale_min!r}, aug_scale_max={aug_scale_max!r}"
        )
    jitter = aug_scale_min != 1.0 or aug_scale_max != 1.0
    image_size = tf.cast(image_size, tf.float32)
    desired = tf.constant(desired_size, tf.float32)
    target = desired
    if jitter:
        random_scale = tf.random.uniform([], aug_scale_min, aug_scale_max, seed=seed)
        target = tf.round(random_scale * desired)
    scale = tf.minimum(target[0] / image_size[0], target[1] / image_size[1])
    scaled_size = tf.round(image_size * scale)
    image_scale = scaled_size / image_size
    if jitter:
        max_offset = tf.maximum(scaled_size - desired, 0.0)
        offset = tf.floor(max_offset * tf.random.uniform([2], 0.0, 1.0, seed=seed))
    else:
        offset = tf.zeros([2], tf.float32)
    return tf.stack([image_size, scaled_size, image_scale, offset])


def resize_and_crop_image(
    image,
    desired_size,
    padded_size,
    aug_scale_min=1.0,
    aug_scale_max=1.0,
    *,
    seed=None,
    image_info=None,
):
    """Resizes keeping the aspect ratio, crops to `desired_size`, zero-pads to `padded_size`.

    Args:
      image: [H, W, C] tensor with a known channel count, any real dtype.
      desired_size: [2] Python ints, (height, width) of the output before padding.
      padded_size: [2] Python ints >= desired_size, the static output size.
      aug_scale_min, aug_scale_max: scale jitter range (see `compute_resize_params`).
      seed: op seed of the random draws.
      image_info: optional precomputed `compute_resize_params` result to apply.

    Returns:
      (output_image, image_info): float32 [padded h, padded w, C] with the scaled image
      in the top-left corner and zeros elsewhere, and float32 [4, 2] image_info.
    """
    if padded_size[0] < desired_size[0] or padded_size[1] < desired_size[1]:
        raise ValueError(
            f"resize_and_crop_image: padded_size {list(padded_size)} must be at least "
            f"desired_size {list(desired_size)}"
        )
    with tf.name_scope("resize_and_crop_image"):
        if image_info is None:
            image_info = compute_resize_params(
                tf.shape(image)[0:2], desired_size, aug_scale_min, aug_scale_max, seed=seed
            )
        scaled_size = tf.cast(image_info[1], tf.int32)
        offset = tf.cast(image_info[3], tf.int32)

        def resize():
            return tf.image.resize_bilinear(
                image[tf.newaxis], scaled_size, align_corners=False, half_pixel_centers=True
            )[0]

        # Many COCO images already have the target size (640 px long side); resizing at
        # scale 1 would only copy them.
        same_size = tf.reduce_all(tf.equal(scaled_size, tf.shape(image)[0:2]))
        scaled = tf.cond(same_size, lambda: tf.cast(image, tf.float32), resize)
        scaled = scaled[
            offset[0] : offset[0] + desired_size[0], offset[1] : offset[1] + desired_size[1]
        ]
        output = pad_image(scaled, padded_size)
        return output, image_info


def pad_image(image, padded_size):
    """Zero-pads [h, w, C] (h, w <= padded_size) at the bottom/right to a static size."""
    shape = tf.shape(image)
    output = tf.pad(image, [[0, padded_size[0] - shape[0]], [0, padded_size[1] - shape[1]], [0, 0]])
    output.set_shape([padded_size[0], padded_size[1], image.shape[-1]])
    return output


def resize_and_crop_boxes(
    boxes, image_scale, output_size, offset, *, convention=box_ops.CONSISTENT
):
    """Maps pixel boxes of the original image into the cropped, scaled image.

    Args:
      boxes: float32 [N, 4] pixel boxes in the original image.
      image_scale: float32 [2] (y scale, x scale), `image_info[2]`.
      output_size: [2] (height, width) to clip to: the crop window, `desired_size`.
      offset: float32 [2] (y offset, x offset) of the crop, `image_info[3]`.
      convention: a box convention of `box_ops`; tensorflow_tpu clips to
        output_size - 1.

    Returns:
      float32 [N, 4] pixel boxes clipped to the crop window; boxes that fall outside
      the crop become empty (zero height or width).
    """
    with tf.name_scope("resize_and_crop_boxes"):
        scale = tf.tile(tf.cast(image_scale, tf.float32), [2])
        shift = tf.tile(tf.cast(offset, tf.float32), [2])
        boxes = boxes * scale - shift
        return box_ops.clip_boxes(boxes, tf.cast(output_size, tf.float32), convention=convention)


def inverse_resize_and_crop_boxes(boxes, image_scale, offset):
    """Maps pixel boxes of the cropped, scaled image back to original-image pixels."""
    scale = tf.tile(tf.cast(image_scale, tf.float32), [2])
    shift = tf.tile(tf.cast(offset, tf.float32), [2])
    return (boxes + shift) / scale


def resize_and_crop_masks(masks, image_scale, output_size, offset):
    """Nearest-neighbour resizes full-image masks and crops them like the image.

    Args:
      masks: [N, H, W] masks of any real dtype.
      image_scale: float32 [2], `image_info[2]`.
      output_size: [2] Python ints, the static output (padded) size.
      offset: float32 [2], `image_info[3]`.

    Returns:
      [N, output h, output w] masks of the input dtype, zero-padded at the bottom/right.
    """
    with tf.name_scope("resize_and_crop_masks"):
        dtype = masks.dtype
        mask_size = tf.cast(tf.shape(masks)[1:3], tf.float32)
        scaled_size = tf.cast(tf.round(mask_size * tf.cast(image_scale, tf.float32)), tf.int32)
        scaled = tf.image.resize_nearest_neighbor(
            masks[..., tf.newaxis], scaled_size, align_corners=False, half_pixel_centers=True
        )[..., 0]
        offset = tf.cast(offset, tf.int32)
        scaled = scaled[
            :, offset[0] : offset[0] + output_size[0], offset[1] : offset[1] + output_size[1]
        ]
        shape = tf.shape(scaled)
        scaled = tf.pad(
            scaled, [[0, 0], [0, output_size[0] - shape[1]], [0, output_size[1] - shape[2]]]
        )
        output = tf.cast(scaled, dtype)
        output.set_shape([masks.shape[0], output_size[0], output_size[1]])
        return output


def crop_and_resize_masks(masks, boxes, crop_size, mask_indices=None):
    """Bilinearly samples each mask inside its box onto a crop_size x crop_size grid.

    The grid points sit at the centres of a crop_size x crop_size tiling of the box, so
    a box that lies inside the object gives an all-ones crop. A box with xmin > xmax
    samples right to left (a mirrored crop), which is how a flipped image's box reads a
    mask that was not flipped.

    Args:
      masks: [N, H, W] masks of any real dtype (uint8 avoids a full-size float copy).
      boxes: float32 [K, 4] pixel boxes in the masks' coordinates.
      crop_size: int S.
      mask_indices: optional int32 [K], the mask each box reads (default: box k reads
        mask k, K == N); selecting rows here avoids copying full-size masks.

    Returns:
      float32 [K, S, S] in [0, 1] for {0, 1} masks.
    """
    with tf.name_scope("crop_and_resize_masks"):
        size = tf.cast(tf.shape(masks)[1:3], tf.float32)
        ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
        # crop_and_resize maps normalised t to pixel index t * (size - 1) and samples its
        # first and last points on the box edges; move them to the first and last cell
        # centres, then to index space where pixel i covers [i, i + 1).
        half_cell_y = (ymax - ymin) / (2.0 * crop_size)
        half_cell_x = (xmax - xmin) / (2.0 * crop_size)
        y1 = (ymin + half_cell_y - 0.5) / tf.maximum(size[0] - 1.0, 1.0)
        y2 = (ymax - half_cell_y - 0.5) / tf.maximum(size[0] - 1.0, 1.0)
        x1 = (xmin + half_cell_x - 0.5) / tf.maximum(size[1] - 1.0, 1.0)
        x2 = (xmax - half_cell_x - 0.5) / tf.maximum(size[1] - 1.0, 1.0)
        crops = tf.image.crop_and_resize(
            masks[..., tf.newaxis],
            tf.stack([y1, x1, y2, x2], axis=-1),
            tf.range(tf.shape(boxes)[0]) if mask_indices is None else mask_indices,
            [crop_size, crop_size],
            method="bilinear",
            extrapolation_value=0.0,
        )
        return crops[..., 0]


def get_non_empty_box_indices(boxes):
    """int32 [K] indices of the [N, 4] boxes with positive height and width."""
    keep = tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1])
    return tf.cast(tf.where(keep)[:, 0], tf.int32)


def clip_or_pad_to_fixed_size(tensor, size, pad_value):
    """Keeps the first `size` rows of `tensor` and pads with `pad_value` up to `size`.

    Args:
      tensor: [N, ...] tensor with static trailing dimensions.
      size: Python int, the static first dimension of the result.
      pad_value: scalar fill of the dtype of `tensor` (e.g. -1 or '').

    Returns:
      [size, ...] tensor.
    """
    tensor = tensor[:size]
    paddings = [[0, size - tf.shape(tensor)[0]]] + [[0, 0]] * (tensor.shape.ndims - 1)
    padded = tf.pad(tensor, paddings, constant_values=pad_value)
    padded.set_shape([size] + tensor.shape.as_list()[1:])
    return padded
