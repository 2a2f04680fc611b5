"""Masks in the graph: the mask head's targets, and its outputs pasted into the image.

Targets (`crop_mask_targets`) come from the parser's per-box mask crops.

The parser stores each ground-truth mask as an S x S crop of its gt box
(`maskrcnn_parser`, `gt_masks`): crop pixel (i, j) is the mask sampled at the centre
of cell (i, j) of an S x S tiling of the box. The target of a RoI is the mask sampled
at the cell centres of a T x T tiling of the RoI (T = mask_target_size), read from
that crop by bilinear interpolation: a RoI equal to its gt box gives the crop resized
to T x T (half-pixel centres), the top half of the box gives the top half of the crop
resized, and so on. Outside the gt box the mask is 0: the crop is framed with one
pixel of zeros, so samples just past its edge blend towards 0 and samples further out
read 0. Targets are soft values in [0, 1], as the ancestor's.

`paste_instance_masks` turns the head's per-box masks into binary full-image masks
with the same sampling as the evaluation's NumPy paste (evaluation/mask_paste.py):
each mask covers its box exactly, a pixel is read at its centre by bilinear
interpolation between cell centres with zeros outside the box, and is on above 0.5.
"""

import tensorflow.compat.v1 as tf

# Floor on gt box sides, so a degenerate gt box cannot divide by zero.
_MIN_SIDE = 1e-6


def crop_mask_targets(gt_masks, rois, matched_gt_boxes, matched_gt_indices, *,
                      mask_target_size=28):  # fmt: skip
    """Mask targets of RoIs from the crops of their matched gt masks.

    Args:
      gt_masks: float [B, G, S, S] per-gt-box mask crops (padded rows ignored).
      rois: float32 [B, M, 4] pixel RoIs [ymin, xmin, ymax, xmax].
      matched_gt_boxes: float32 [B, M, 4] the pixel gt box each RoI is matched to.
      matched_gt_indices: int [B, M] row of that gt box in `gt_masks`; -1 for RoIs
        without a match (their targets are all 0).
      mask_target_size: int T.

    Returns:
      float32 [B, M, T, T] targets in [0, 1].
    """
    where = "crop_mask_targets"
    gt_masks = tf.convert_to_tensor(gt_masks)
    rois = tf.convert_to_tensor(rois, tf.float32)
    matched_gt_boxes = tf.convert_to_tensor(matched_gt_boxes, tf.float32)
    matched_gt_indices = tf.cast(matched_gt_indices, tf.int32)
    shape = gt_masks.shape
    if shape.ndims != 4 or not shape[1:].is_fully_defined() or shape[2] != shape[3]:
        raise ValueError(
            f"{where}: `gt_masks` must be [B, G, S, S] with static G and S; received shape {shape}."
        )
    if rois.shape.ndims != 3 or rois.shape[-1] != 4 or rois.shape[1] is None:
        raise ValueError(
            f"{where}: `rois` must be [B, M, 4] with a static M; received shape {rois.shape}."
        )
    if not isinstance(mask_target_size, int) or mask_target_size < 1:
        raise ValueError(
            f"{where}: `mask_target_size` must be an int >= 1; received {mask_target_size!r}."
        )
    num_gt, crop_size = int(shape[1]), int(shape[2])
    num_rois = int(rois.shape[1])

    with tf.name_scope(where):
        framed = tf.pad(
            tf.reshape(tf.cast(gt_masks, tf.float32), [-1, crop_size, crop_size, 1]),
            [[0, 0], [1, 1], [1, 1], [0, 0]],
        )
        gt_ymin, gt_xmin, gt_ymax, gt_xmax = tf.unstack(matched_gt_boxes, axis=-1)
        ymin, xmin, ymax, xmax = tf.unstack(rois, axis=-1)
        gt_height = tf.maximum(gt_ymax - gt_ymin, _MIN_SIDE)
        gt_width = tf.maximum(gt_xmax - gt_xmin, _MIN_SIDE)
        half_cell_y = (ymax - ymin) / (2.0 * mask_target_size)
        half_cell_x = (xmax - xmin) / (2.0 * mask_target_size)

        def to_framed(coordinate, origin, side):
            # Pixel -> framed-crop index (crop pixel k is centred at k + 0.5 in crop
            # units; the frame adds 1), then crop_and_resize's normalised coordinate.
            index = (coordinate - origin) / side * crop_size - 0.5 + 1.0
            return index / (crop_size + 1.0)

        boxes_normalized = tf.stack(
            [
                to_framed(ymin + half_cell_y, gt_ymin, gt_height),
                to_framed(xmin + half_cell_x, gt_xmin, gt_width),
                to_framed(ymax - half_cell_y, gt_ymin, gt_height),
                to_framed(xmax - half_cell_x, gt_xmin, gt_width),
            ],
            axis=-1,
        )
        has_match = matched_gt_indices >= 0
        batch_rows = tf.range(tf.shape(rois)[0])[:, tf.newaxis] * num_gt
        crop_indices = batch_rows + tf.maximum(matched_gt_indices, 0)
        targets = tf.image.crop_and_resize(
            framed,
            tf.reshape(boxes_normalized, [-1, 4]),
            box_indices=tf.reshape(crop_indices, [-1]),
            crop_size=[mask_target_size, mask_target_size],
            method="bilinear",
            extrapolation_value=0.0,
        )
        targets = tf.reshape(targets, [-1, num_rois, mask_target_size, mask_target_size])
        targets *= tf.cast(has_match, tf.float32)[..., tf.newaxis, tf.newaxis]
        return tf.stop_gradient(tf.clip_by_value(targets, 0.0, 1.0))


MASK_THRESHOLD = 0.5


def _interpolation_weights(start, end, num_pixels, num_cells):
    """float32 [N, num_pixels, num_cells] bilinear weights of mask cells at pixel centres.

    Mask n's num_cells cells span [start[n], end[n]) along one axis; pixel p is centred
    at p + 0.5. Weights onto the zero padding either side of the mask are dropped.
    """
    centres = tf.range(tf.cast(num_pixels, tf.float32)) + 0.5
    side = tf.maximum(end - start, _MIN_SIDE)[:, tf.newaxis]
    position = (centres[tf.newaxis, :] - start[:, tf.newaxis]) / side * num_cells - 0.5
    # Far outside the mask every weight falls on the padding; clipping keeps the index
    # cast in range without changing any weight inside.
    position = tf.clip_by_value(position, -2.0, num_cells + 1.0)
    lower = tf.floor(position)
    fraction = (position - lower)[..., tf.newaxis]
    # Columns 0 and num_cells + 1 stand for the padding.
    lower_column = tf.clip_by_value(tf.cast(lower, tf.int32) + 1, 0, num_cells + 1)
    upper_column = tf.clip_by_value(tf.cast(lower, tf.int32) + 2, 0, num_cells + 1)
    weights = (
        tf.one_hot(lower_column, num_cells + 2) * (1.0 - fraction)
        + tf.one_hot(upper_column, num_cells + 2) * fraction
    )
    return weights[..., 1:-1]


def paste_instance_masks(masks, boxes, image_height, image_width):
    """Binary full-image masks from per-box soft masks, one image at a time.

    Args:
      masks: float32 [B, M, mh, mw] mask probabilities, each covering its box.
      boxes: float32 [B, M, 4] [ymin, xmin, ymax, xmax] in pixels of the target image.
      image_height, image_width: int scalars (Python or tensors), the target size.

    Returns:
      uint8 [B, M, image_height, image_width] in {0, 1}. Boxes without area give empty
      masks; parts of a box outside the image are cut off. Working memory is one
      image's M float32 masks at full size.
    """
    where = "paste_instance_masks"
    masks = tf.convert_to_tensor(masks, tf.float32)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if masks.shape.ndims != 4 or boxes.shape.ndims != 3 or boxes.shape[-1] != 4:
        raise ValueError(
            f"{where}: need `masks` [B, M, mh, mw] and `boxes` [B, M, 4]; received shapes "
            f"{masks.shape} and {boxes.shape}."
        )
    mask_height, mask_width = masks.shape[2], masks.shape[3]
    if mask_height is None or mask_width is None:
        raise ValueError(f"{where}: `masks` need a static mask size; received {masks.shape}.")
    mask_height, mask_width = int(mask_height), int(mask_width)

    def paste_image(inputs):
        image_masks, image_boxes = inputs
        ymin, xmin, ymax, xmax = tf.unstack(image_boxes, axis=-1)
        rows = _interpolation_weights(ymin, ymax, image_height, mask_height)
        columns = _interpolation_weights(xmin, xmax, image_width, mask_width)
        values = tf.matmul(tf.matmul(rows, image_masks), columns, transpose_b=True)
        has_area = tf.logical_and(ymax > ymin, xmax > xmin)[:, tf.newaxis, tf.newaxis]
        return tf.cast(tf.logical_and(values > MASK_THRESHOLD, has_area), tf.uint8)

    with tf.name_scope(where):
        pasted = tf.map_fn(
            paste_image, (masks, boxes), dtype=tf.uint8, parallel_iterations=1, back_prop=False
        )
        static_size = [tf.get_static_value(s) for s in (image_height, image_width)]
        static_size = [int(s) if s is not None else None for s in static_size]
        pasted.set_shape(masks.shape[:2].concatenate(static_size))
        return pasted
