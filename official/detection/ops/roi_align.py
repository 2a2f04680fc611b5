"""Multilevel RoIAlign: fixed-size feature crops of boxes on an FPN pyramid.

Each box is read from one pyramid level chosen by the FPN rule (Lin et al., "Feature
Pyramid Networks for Object Detection", eq. 1): a box of side sqrt(area) goes to level
`floor(log2(sqrt(area) / 224)) + 4`, clamped to the levels present. On that level the
box is cut into output_size x output_size bins; each bin's value is the mean of
sampling_ratio x sampling_ratio bilinear samples spread evenly inside it (the ancestor
takes one sample at the bin centre: sampling_ratio=1).

Coordinates follow the ancestor: a pixel box maps to level l by dividing by the stride
2**l, and feature pixel (i, j) sits at level coordinates (i, j) (no half-pixel shift),
so checkpoints trained with it see the same crops. A sample past the last row or column
reads that row or column. Boxes are first clipped to the extent of the maps (the padded
image), which leaves proposals, sampled RoIs and detections unchanged.

Speed: all levels of an image are stacked into one canvas, each level followed by a
copy of its last row and column, and every box is cropped from it by a single
`tf.image.crop_and_resize`. The copied border makes the bilinear reads past the last
row or column match the clamp above, and boxes never read a neighbouring level. On CPU
the backward pass is then one scatter of the crop gradients into the canvas. Measured
on 2 CPU cores (2 images x 512 boxes, 7 x 7, 256 channels, levels 2-5 of a 256 px
input), forward and backward take 3-4x less CPU time than gathering the four bilinear
neighbours of every sample (4x the crops in memory, and a gradient that is an
unsorted segment sum over random rows).
"""

import math

import numpy as np
import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops

# The FPN rule: a 224 x 224 box (the ImageNet crop) reads level 4.
CANONICAL_SIZE = 224.0
CANONICAL_LEVEL = 4

# Floor on box areas before the logarithm, so degenerate and padded boxes (area 0)
# land on the lowest level instead of producing -inf.
_MIN_AREA = 1e-6


def assign_levels(boxes, min_level, max_level):
    """Pyramid level of each box by the FPN rule, clamped to [min_level, max_level].

    Args:
      boxes: float32 [..., 4] pixel boxes [ymin, xmin, ymax, xmax]; padded rows
        (all -1) have area 0 and get min_level.
      min_level, max_level: Python ints, the levels available.

    Returns:
      int32 [...] levels.
    """
    if min_level > max_level:
        raise ValueError(
            f"assign_levels: `min_level` must be <= `max_level`; received {min_level} > "
            f"{max_level}."
        )
    with tf.name_scope("assign_levels"):
        areas = tf.maximum(box_ops.box_areas(tf.cast(boxes, tf.float32)), _MIN_AREA)
        log2_ratio = tf.math.log(tf.sqrt(areas) / CANONICAL_SIZE) / math.log(2.0)
        levels = tf.cast(tf.floor(log2_ratio), tf.int32) + CANONICAL_LEVEL
        return tf.clip_by_value(levels, min_level, max_level)


def _check_inputs(features, boxes, output_size, sampling_ratio):
    """Validates the arguments; returns ({level: [H, W, C]}, sorted levels)."""
    where = "multilevel_roi_align"
    if not features:
        raise ValueError(f"{where}: `features` is empty; expected {{level: [B, H, W, C]}}.")
    levels = sorted(features)
    if levels != list(range(levels[0], levels[-1] + 1)):
        raise ValueError(f"{where}: `features` levels must be consecutive; received {levels}.")
    for name, value in (("output_size", output_size), ("sampling_ratio", sampling_ratio)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}: `{name}` must be an int >= 1; received {value!r}.")
    if boxes.shape.ndims != 3 or boxes.shape[-1] != 4 or boxes.shape[1] is None:
        raise ValueError(
            f"{where}: `boxes` must be [B, R, 4] with a static R; received shape {boxes.shape}."
        )
    sizes = {}
    for level in levels:
        shape = features[level].shape
        if shape.ndims != 4 or not shape[1:].is_fully_defined():
            raise ValueError(
                f"{where}: `features[{level}]` must be [B, H, W, C] with static H, W and C; "
                f"received shape {shape}."
            )
        sizes[level] = shape.as_list()[1:]
    channels = {level: size[2] for level, size in sizes.items()}
    if len(set(channels.values())) != 1:
        raise ValueError(f"{where}: every level must have the same channels; received {channels}.")
    return sizes, levels


def _build_canvas(features, sizes, levels):
    """Stacks the levels top to bottom, each with a copy of its last row and column.

    Built with one concat along the width per level and one along the height, the
    fewest copies of the maps (copies are what this costs on big images).

    Returns:
      (canvas float32 [B, H_c, W_c, C], row offset of each level in the canvas).
    """
    canvas_width = max(sizes[level][1] for level in levels) + 1
    rows, row_offsets, row = [], [], 0
    for level in levels:
        height, width, channels = sizes[level]
        level_map = tf.cast(features[level], tf.float32)
        columns = [level_map, level_map[:, :, -1:, :]]
        if canvas_width > width + 1:
            filler = tf.zeros([height, canvas_width - width - 1, channels], tf.float32)
            columns.append(tf.tile(filler[tf.newaxis], [tf.shape(level_map)[0], 1, 1, 1]))
        block = tf.concat(columns, axis=2)
        rows.extend([block, block[:, -1:]])
        row_offsets.append(row)
        row += height + 1
    return tf.concat(rows, axis=1), row_offsets


def multilevel_roi_align(features, boxes, output_size=7, sampling_ratio=1):
    """Crops output_size x output_size features of each box from its pyramid level.

    Args:
      features: {level(int): float [B, H_l, W_l, C]} with static H_l, W_l, C, where
        level l has stride 2**l relative to the image the boxes live in; the levels
        present must be consecutive. All levels share B, C and dtype.
      boxes: float32 [B, R, 4] pixel boxes [ymin, xmin, ymax, xmax] (R static);
        padded rows (-1) are clipped to an empty box at the origin and crop the
        top-left feature of the lowest level.
      output_size: int S, side of the crops.
      sampling_ratio: int, bilinear samples per bin along each axis (averaged).

    Returns:
      [B, R, S, S, C] crops in the features' dtype.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    features = {level: tf.convert_to_tensor(value) for level, value in features.items()}
    sizes, levels = _check_inputs(features, boxes, output_size, sampling_ratio)
    num_boxes = boxes.shape[1]
    num_channels = sizes[levels[0]][2]
    num_samples = output_size * sampling_ratio

    with tf.name_scope("multilevel_roi_align"):
        canvas, row_offsets = _build_canvas(features, sizes, levels)
        canvas_height = sum(sizes[level][0] + 1 for level in levels)
        canvas_width = max(sizes[level][1] for level in levels) + 1

        def per_level(values):
            return tf.gather(np.array(values, np.float32), box_levels)

        box_levels = assign_levels(boxes, levels[0], levels[-1]) - levels[0]
        strides = per_level([2.0**level for level in levels])
        limits = tf.stack(
            [
                per_level([sizes[level][0] for level in levels]),
                per_level([sizes[level][1] for level in levels]),
            ],
            axis=-1,
        )
        boxes = box_ops.clip_boxes(boxes / strides[..., tf.newaxis], limits)
        ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
        # crop_and_resize puts its first and last samples on the box edges; move them
        # to the centres of the first and last of num_samples equal cells.
        half_cell_y = (ymax - ymin) / (2.0 * num_samples)
        half_cell_x = (xmax - xmin) / (2.0 * num_samples)
        row_offset = per_level(row_offsets)
        boxes_normalized = tf.stack(
            [
                (row_offset + ymin + half_cell_y) / (canvas_height - 1.0),
                (xmin + half_cell_x) / (canvas_width - 1.0),
                (row_offset + ymax - half_cell_y) / (canvas_height - 1.0),
                (xmax - half_cell_x) / (canvas_width - 1.0),
            ],
            axis=-1,
        )
        batch_size = tf.shape(boxes)[0]
        image_indices = tf.tile(tf.range(batch_size)[:, tf.newaxis], [1, num_boxes])
        crops = tf.image.crop_and_resize(
            canvas,
            tf.reshape(boxes_normalized, [-1, 4]),
            box_indices=tf.reshape(image_indices, [-1]),
            crop_size=[num_samples, num_samples],
            method="bilinear",
        )
        if sampling_ratio > 1:
            window = [1, sampling_ratio, sampling_ratio, 1]
            crops = tf.nn.avg_pool(crops, window, window, "VALID")
        crops = tf.reshape(crops, [-1, num_boxes, output_size, output_size, num_channels])
        return tf.cast(crops, features[levels[0]].dtype)
