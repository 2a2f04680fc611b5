"""Mask targets of the mask head from the parser's per-box mask crops.

The parser stores each ground-truth mask as an S x S crop of its gt box
(`maskrcnn_parser`, `gt_masks`): crop pixel (i, j) is the mask sampled at the centre
of cell (i, j) of an S x S tiling of the box. The target of a RoI is the mask sampled
at the cell centres of a T x T tiling of the RoI (T = mask_target_size), read from
that crop by bilinear interpolation: a RoI equal to its gt box gives the crop resized
to T x T (half-pixel centres), the top half of the box gives the top half of the crop
resized, and so on. Outside the gt box the mask is 0: the crop is framed with one
pixel of zeros, so samples just past its edge blend towards 0 and samples further out
read 0. Targets are soft values in [0, 1], as the ancestor's.
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
