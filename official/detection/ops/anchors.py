"""Multilevel anchor boxes for RetinaNet and the RPN.

Level l has stride s = 2**l and a grid of H_l x W_l = ceil(image_h / s) x
ceil(image_w / s) cells, the size of a feature map that halves the image (rounding up)
l times. The cell in row i, column j is centred at ((i + 0.5) s, (j + 0.5) s) and holds
A = num_scales * len(aspect_ratios) anchors ordered scale-major
(`for scale in range(num_scales): for ratio in aspect_ratios`); anchor k of a cell pairs
with channels k * num_classes + c of the class head and 4k..4k+3 of the box head. An
anchor of scale index q and aspect ratio r (width / height) is
`size = anchor_size * s * 2**(q / num_scales)`, `height = size * r**-0.5`,
`width = size * r**0.5`. The float32 values are those of the ancestor's anchors for
image sizes divisible by 2**max_level (the only sizes its input pipeline produces).

Flattened anchors list level by level, then row, column and anchor; per-anchor
targets and per-level maps convert with `flatten_multilevel` / `unflatten_multilevel`.
Anchors depend only on static sizes, so they are computed with NumPy once and enter
the graph as constants.
"""

import math
import numbers

import numpy as np
import tensorflow.compat.v1 as tf


def _check_layout(min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size):
    where = "anchors"
    for name, value in (("min_level", min_level), ("max_level", max_level)):
        if not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{where}: `{name}` must be an int >= 0; received {value!r}.")
    if min_level > max_level:
        raise ValueError(
            f"{where}: `min_level` must be <= `max_level`; received {min_level} > {max_level}."
        )
    if not isinstance(num_scales, numbers.Integral) or num_scales < 1:
        raise ValueError(f"{where}: `num_scales` must be an int >= 1; received {num_scales!r}.")
    ratios = list(aspect_ratios)
    if not ratios or any(not isinstance(r, numbers.Real) or r <= 0 for r in ratios):
        raise ValueError(
            f"{where}: `aspect_ratios` must be a non-empty list of positive numbers; "
            f"received {ratios!r}."
        )
    if not isinstance(anchor_size, numbers.Real) or anchor_size <= 0:
        raise ValueError(f"{where}: `anchor_size` must be a positive number; got {anchor_size!r}.")
    if isinstance(image_size, (tf.Tensor, tf.Variable)):
        raise TypeError(
            f"{where}: `image_size` must be two Python ints (anchors need static sizes); "
            f"received a tensor {image_size!r}."
        )
    size = list(image_size)
    if len(size) != 2 or any(not isinstance(v, numbers.Integral) or v < 1 for v in size):
        raise ValueError(
            f"{where}: `image_size` must be [height, width] of positive ints; received {size!r}."
        )
    return ratios, [int(v) for v in size]


def anchor_grid_numpy(min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size):
    """Anchors of every level as NumPy arrays.

    Args:
      min_level, max_level: first and last pyramid level (ints).
      num_scales: anchor scales per octave (int >= 1).
      aspect_ratios: list of width / height ratios.
      anchor_size: anchor side at scale 0 in units of the stride.
      image_size: [height, width] of the (padded) input image, Python ints.

    Returns:
      {level: float32 array [H_l, W_l, A, 4]} of [ymin, xmin, ymax, xmax] pixel boxes.
    """
    ratios, (image_h, image_w) = _check_layout(
        min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size
    )
    grids = {}
    for level in range(min_level, max_level + 1):
        stride = 2**level
        rows = math.ceil(image_h / stride)
        cols = math.ceil(image_w / stride)
        center_y = ((np.arange(rows) + 0.5) * stride).astype(np.float32)
        center_x = ((np.arange(cols) + 0.5) * stride).astype(np.float32)
        half_h, half_w = [], []
        for scale in range(num_scales):
            for ratio in ratios:
                size = anchor_size * stride * 2 ** (scale / float(num_scales))
                half_w.append(size * ratio**0.5 / 2.0)
                half_h.append(size * ratio**-0.5 / 2.0)
        # Rounded to float32 before subtracting, like float32 graph arithmetic on a
        # float32 centre and a Python-float half size.
        half_h = np.asarray(half_h, np.float64).astype(np.float32)
        half_w = np.asarray(half_w, np.float64).astype(np.float32)
        cy = center_y[:, np.newaxis, np.newaxis]
        cx = center_x[np.newaxis, :, np.newaxis]
        shape = (rows, cols, len(half_h))
        grid = np.stack(
            [
                np.broadcast_to(cy - half_h, shape),
                np.broadcast_to(cx - half_w, shape),
                np.broadcast_to(cy + half_h, shape),
                np.broadcast_to(cx + half_w, shape),
            ],
            axis=-1,
        )
        grids[level] = grid.astype(np.float32)
    return grids


def generate_anchors(min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size):
    """Anchors per level as constant tensors (arguments as in `anchor_grid_numpy`).

    Returns:
      {level: float32 tensor [H_l, W_l, A * 4]} of [ymin, xmin, ymax, xmax] pixel boxes;
      channels 4k..4k+3 hold anchor k of the cell.
    """
    grids = anchor_grid_numpy(
        min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size
    )
    return {
        level: tf.constant(grid.reshape(grid.shape[0], grid.shape[1], -1), name=f"anchors_{level}")
        for level, grid in grids.items()
    }


def flatten_multilevel(multilevel, values_per_anchor=4):
    """Concatenates per-level maps into one per-anchor tensor (levels in ascending order).

    Args:
      multilevel: {level: tensor [H, W, A * k]} or, batched, {level: [B, H, W, A * k]}.
      values_per_anchor: k, the values each anchor holds (4 for boxes); None for maps
        with one value per anchor and no trailing axis in the result.

    Returns:
      [sum H * W * A, k] (or [sum H * W * A] when `values_per_anchor` is None), with a
      leading B for batched input.
    """
    flat = []
    ranks = set()
    for level in sorted(multilevel):
        value = tf.convert_to_tensor(multilevel[level])
        rank = value.shape.ndims
        if rank not in (3, 4):
            raise ValueError(
                f"flatten_multilevel: level {level} must be [H, W, C] or [B, H, W, C]; "
                f"received shape {value.shape.as_list() if rank is not None else None}."
            )
        ranks.add(rank)
        shape = [] if rank == 3 else [_dim(value, 0)]
        shape.append(-1)
        if values_per_anchor is not None:
            shape.append(values_per_anchor)
        flat.append(tf.reshape(value, shape))
    if len(ranks) != 1:
        raise ValueError(
            "flatten_multilevel: levels must be all [H, W, C] or all [B, H, W, C]; "
            f"received ranks {sorted(ranks)}."
        )
    return tf.concat(flat, axis=0 if ranks == {3} else 1)


def _dim(tensor, axis):
    static = tensor.shape.as_list()[axis]
    return static if static is not None else tf.shape(tensor)[axis]


def unflatten_multilevel(tensor, sizes):
    """Splits a per-anchor tensor back into per-level maps (inverse of `flatten_multilevel`).

    Args:
      tensor: [N] or [N, k] with a static N = A * sum(H_l * W_l).
      sizes: {level: (H_l, W_l)} of Python ints, e.g. `Anchors.feature_sizes`.

    Returns:
      {level: [H_l, W_l, A * k]} (A * 1 for a [N] input).
    """
    tensor = tf.convert_to_tensor(tensor)
    num_cells = sum(h * w for h, w in sizes.values())
    total = tensor.shape.as_list()[0] if tensor.shape.ndims else None
    if total is None or tensor.shape.ndims not in (1, 2) or total % num_cells:
        raise ValueError(
            "unflatten_multilevel: `tensor` must be [N] or [N, k] with a static N that is a "
            f"multiple of the {num_cells} cells in `sizes`; received shape "
            f"{tensor.shape.as_list() if tensor.shape.ndims is not None else None}."
        )
    per_cell = total // num_cells
    levels = sorted(sizes)
    pieces = tf.split(tensor, [sizes[lv][0] * sizes[lv][1] * per_cell for lv in levels], axis=0)
    return {
        level: tf.reshape(piece, [sizes[level][0], sizes[level][1], -1])
        for level, piece in zip(levels, pieces)
    }


class Anchors:
    """Anchors of one input size: NumPy arrays plus graph constants built on demand.

    Attributes:
      min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size: the
        layout (see the module docstring).
      anchors_per_location: A = num_scales * len(aspect_ratios).
      feature_sizes: {level: (H_l, W_l)}.
      level_offsets: {level: index of the level's first anchor in `boxes`}.
      num_anchors: N = A * sum(H_l * W_l).
      multilevel_boxes_numpy: {level: float32 array [H_l, W_l, A, 4]}.
      boxes_numpy: float32 array [N, 4].
    """

    def __init__(self, min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size):
        self.multilevel_boxes_numpy = anchor_grid_numpy(
            min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size
        )
        self.min_level = min_level
        self.max_level = max_level
        self.num_scales = num_scales
        self.aspect_ratios = list(aspect_ratios)
        self.anchor_size = anchor_size
        self.image_size = [int(v) for v in image_size]
        self.anchors_per_location = num_scales * len(self.aspect_ratios)
        self.feature_sizes = {}
        self.level_offsets = {}
        offset = 0
        for level, grid in self.multilevel_boxes_numpy.items():
            self.feature_sizes[level] = (grid.shape[0], grid.shape[1])
            self.level_offsets[level] = offset
            offset += grid.shape[0] * grid.shape[1] * grid.shape[2]
        self.num_anchors = offset
        self.boxes_numpy = np.concatenate(
            [g.reshape(-1, 4) for g in self.multilevel_boxes_numpy.values()], axis=0
        )
        self._graph = None
        self._constants = None

    def _graph_constants(self):
        # Constants belong to one graph; a parser may be traced into several.
        graph = tf.get_default_graph()
        if self._graph is not graph:
            with tf.name_scope("anchors"):
                boxes = tf.constant(self.boxes_numpy, name="boxes")
                multilevel = {
                    level: tf.constant(
                        grid.reshape(grid.shape[0], grid.shape[1], -1), name=f"level_{level}"
                    )
                    for level, grid in self.multilevel_boxes_numpy.items()
                }
            self._graph, self._constants = graph, (boxes, multilevel)
        return self._constants

    @property
    def boxes(self):
        """float32 tensor [N, 4]: all anchors, flattened."""
        return self._graph_constants()[0]

    @property
    def multilevel_boxes(self):
        """{level: float32 tensor [H_l, W_l, A * 4]}."""
        return dict(self._graph_constants()[1])

    def unpack_labels(self, labels):
        """Per-anchor [N] or [N, k] tensor -> {level: [H_l, W_l, A * k]}."""
        return unflatten_multilevel(labels, self.feature_sizes)
