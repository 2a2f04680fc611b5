"""Argmax IoU matching of anchors (or any boxes) to ground-truth boxes.

Each anchor takes its highest-IoU ground-truth box and a state from that IoU:
POSITIVE when IoU >= positive_threshold, IGNORE when negative_threshold <= IoU <
positive_threshold, NEGATIVE below. With force_match, every ground-truth box also makes
its own highest-IoU anchor POSITIVE for itself, overriding that anchor's argmax (the
lowest gt index wins when several pick the same anchor); a gt whose best IoU is 0
(e.g. a degenerate box) forces nothing. A gt's best anchor is the lowest-index anchor
whose IoU is within a relative FORCE_MATCH_TOLERANCE of the best: equally good anchors
differ in float32 IoU by rounding alone, and the tolerance makes the choice depend on
geometry rather than on rounding. Other ties go to the lowest gt index. Padded gt rows
(all coordinates -1) match nothing; with no valid gt every anchor is NEGATIVE.

`match_boxes` works on any [N, 4] boxes with a dense [N, G] IoU matrix. `match_anchors`
gives the same result for an `anchors.Anchors` grid without forming that matrix, which
at 260k anchors and 100 gt boxes would cost far more than the input pipeline can spend
per image. On a grid, an anchor's overlap area with a box is (overlap height of its
row) * (overlap width of its column), and an anchor can reach IoU >= t only with a gt
centred within a few strides of it. So the overlaps are computed per row and per
column, a conservative area test on a fixed window of cells around each gt keeps the
few pairs that can reach negative_threshold, and their exact IoU (the arithmetic of
`box_ops.compute_iou`) decides the states; each gt's best anchor comes from its best
row and column per level and anchor shape.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib
from official.detection.ops import box_ops, sentinels

FORCE_MATCH_TOLERANCE = 1e-5

# Relative slack of the conservative IoU pre-filter in `match_anchors` (far above float32
# rounding), and the smallest area bound it divides by.
_FILTER_SLACK = 1e-4
_MIN_BOUND = 1e-20
# Coordinate of the padding rows and columns of the grid tables in `match_anchors`.
_FAR = -1e9


def _check_inputs(where, gt_boxes, positive_threshold, negative_threshold):
    if not 0.0 <= negative_threshold <= positive_threshold <= 1.0 or positive_threshold <= 0.0:
        raise ValueError(
            f"{where}: thresholds must satisfy 0 <= negative_threshold <= positive_threshold "
            f"<= 1 and positive_threshold > 0; received positive_threshold={positive_threshold}, "
            f"negative_threshold={negative_threshold}."
        )
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    dims = gt_boxes.shape.as_list() if gt_boxes.shape.ndims is not None else None
    if dims is None or len(dims) != 2 or dims[-1] not in (None, 4):
        raise ValueError(f"{where}: `gt_boxes` must be [G, 4]; received shape {dims}.")
    # A padded row at the end keeps every reduction over gt non-empty when G is 0.
    return tf.concat([gt_boxes, tf.fill([1, 4], float(sentinels.PAD))], axis=0)


def _states_from_iou(max_iou, positive_threshold, negative_threshold):
    shape = tf.shape(max_iou)
    return tf.where(
        max_iou >= positive_threshold,
        tf.fill(shape, sentinels.POSITIVE),
        tf.where(
            max_iou >= negative_threshold,
            tf.fill(shape, sentinels.IGNORE),
            tf.fill(shape, sentinels.NEGATIVE),
        ),
    )


def _apply_force_match(matched, states, best_anchor, forcing, num_anchors):
    """Makes anchor best_anchor[g] POSITIVE for gt g wherever forcing[g]."""
    num_gt = tf.shape(best_anchor)[0]
    # Gts that force nothing go to an extra segment that is dropped.
    segments = tf.where(forcing, best_anchor, tf.fill([num_gt], num_anchors))
    forced_gt = tf.math.unsorted_segment_min(tf.range(num_gt), segments, num_anchors + 1)
    forced_gt = forced_gt[:num_anchors]
    is_forced = forced_gt < num_gt
    matched = tf.where(is_forced, forced_gt, matched)
    states = tf.where(is_forced, tf.fill([num_anchors], sentinels.POSITIVE), states)
    return matched, states


def match_boxes(anchors, gt_boxes, positive_threshold, negative_threshold, force_match=True):
    """Matches boxes to ground truth through a dense IoU matrix.

    Args:
      anchors: float32 [N, 4] pixel boxes with a static N >= 1.
      gt_boxes: float32 [G, 4] pixel boxes, G >= 0; padded rows are ignored.
      positive_threshold: IoU at or above which an anchor is POSITIVE.
      negative_threshold: IoU below which an anchor is NEGATIVE (IGNORE in between).
      force_match: also make each gt's best anchor POSITIVE (see the module docstring).

    Returns:
      matched_gt_indices: int32 [N], the matched gt row of POSITIVE anchors, 0 elsewhere.
      match_state: int32 [N] in {POSITIVE, NEGATIVE, IGNORE} (`sentinels`).
    """
    gt_boxes = _check_inputs("match_boxes", gt_boxes, positive_threshold, negative_threshold)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    dims = anchors.shape.as_list() if anchors.shape.ndims is not None else None
    if dims is None or len(dims) != 2 or dims[0] in (None, 0) or dims[1] != 4:
        raise ValueError(
            f"match_boxes: `anchors` must be [N, 4] with a static N >= 1; received shape {dims}."
        )
    num_anchors = dims[0]
    with tf.name_scope("match_boxes"):
        iou = box_ops.compute_iou(anchors, gt_boxes)
        states = _states_from_iou(
            tf.reduce_max(iou, axis=1), positive_threshold, negative_threshold
        )
        best_gt = tf.argmax(iou, axis=1, output_type=tf.int32)
        matched = tf.where(
            tf.equal(states, sentinels.POSITIVE), best_gt, tf.zeros([num_anchors], tf.int32)
        )
        if force_match:
            best_iou = tf.reduce_max(iou, axis=0)
            near_best = iou >= best_iou * (1.0 - FORCE_MATCH_TOLERANCE)
            best_anchor = tf.argmax(tf.cast(near_best, tf.int32), axis=0, output_type=tf.int32)
            forcing = best_iou > 0.0
            matched, states = _apply_force_match(matched, states, best_anchor, forcing, num_anchors)
        return matched, states


def _reach(extent, threshold):
    """Largest centre offset (pixels) at which a box can reach IoU >= threshold with a
    box of side `extent` along one axis; IoU >= t needs an overlap of at least t times
    the longer side and a gt side of at most extent / t."""
    if threshold >= 0.5:
        return extent * (1.0 - threshold)
    return extent * (1.0 / threshold - 1.0) / 2.0


def _grid_tables(anchors, threshold):
    """NumPy description of the anchor grid, all levels padded to common sizes.

    Anchor ymin/ymax depend on (level, shape, row) only and xmin/xmax on (level, shape,
    column), so an anchor's overlap with a box is overlap_h[row] * overlap_w[column].
    Padding rows and columns sit far away and overlap nothing.
    """
    levels = sorted(anchors.multilevel_boxes_numpy)
    per_cell = anchors.anchors_per_location
    rows = np.array([anchors.feature_sizes[lv][0] for lv in levels], np.int32)
    cols = np.array([anchors.feature_sizes[lv][1] for lv in levels], np.int32)
    shape_h, shape_w = [len(levels), per_cell, rows.max()], [len(levels), per_cell, cols.max()]
    tables = {
        "y_min": np.full(shape_h, _FAR, np.float32),
        "y_max": np.full(shape_h, _FAR, np.float32),
        "x_min": np.full(shape_w, _FAR, np.float32),
        "x_max": np.full(shape_w, _FAR, np.float32),
        "min_area": np.zeros([len(levels), per_cell], np.float32),
        "reach_y": np.zeros([len(levels)], np.float32),
        "reach_x": np.zeros([len(levels)], np.float32),
        "stride": np.array([2.0**lv for lv in levels], np.float32),
        "rows": rows,
        "cols": cols,
        "offset": np.array([anchors.level_offsets[lv] for lv in levels], np.int32),
    }
    window_h, window_w = 1, 1
    for i, level in enumerate(levels):
        grid = anchors.multilevel_boxes_numpy[level]
        tables["y_min"][i, :, : rows[i]] = grid[:, 0, :, 0].T
        tables["y_max"][i, :, : rows[i]] = grid[:, 0, :, 2].T
        tables["x_min"][i, :, : cols[i]] = grid[0, :, :, 1].T
        tables["x_max"][i, :, : cols[i]] = grid[0, :, :, 3].T
        areas = (grid[..., 2] - grid[..., 0]) * (grid[..., 3] - grid[..., 1])
        tables["min_area"][i] = areas.min(axis=(0, 1))
        if threshold > 0.0:
            height = (grid[0, 0, :, 2].astype(np.float64) - grid[0, 0, :, 0]).max()
            width = (grid[0, 0, :, 3].astype(np.float64) - grid[0, 0, :, 1]).max()
            tables["reach_y"][i] = _reach(height, threshold)
            tables["reach_x"][i] = _reach(width, threshold)
            # One spare cell on each side absorbs float rounding at the window edges.
            window_h = max(window_h, min(rows[i], int(2.0 * tables["reach_y"][i] / 2**level) + 3))
            window_w = max(window_w, min(cols[i], int(2.0 * tables["reach_x"][i] / 2**level) + 3))
        else:
            window_h, window_w = rows.max(), cols.max()
    return tables, int(window_h), int(window_w)


def _window_start(centers, reach, stride, num_cells, window):
    """int32 [G, L]: first cell of a `window`-cell range per gt and level that holds
    every cell centred within `reach` of the gt centre."""
    first = tf.clip_by_value((centers - reach) / stride - 0.5, -1.0, float(num_cells.max()))
    first = tf.cast(tf.math.ceil(first), tf.int32) - 1
    return tf.maximum(tf.minimum(first, np.maximum(num_cells - window, 0)), 0)


def _first_near_max(overlap):
    """Index along the last axis of the first entry within the tolerance of the maximum."""
    best = tf.reduce_max(overlap, axis=-1, keepdims=True)
    near_best = overlap >= best * (1.0 - FORCE_MATCH_TOLERANCE)
    return tf.argmax(tf.cast(near_best, tf.int32), axis=-1, output_type=tf.int32)


def _grid_pairs(anchors, gt_boxes, gt_valid, threshold, force_match):
    """Candidate (anchor, gt) pairs: every pair with IoU >= threshold, and a few below.

    Returns int32 anchor ids [K], int32 gt ids [K] and, with force_match, int32 [G, L * A]:
    per gt, level and anchor shape the id of the anchor with the largest overlap (first
    row and column within the tolerance), else None.
    """
    tables, window_h, window_w = _grid_tables(anchors, threshold)
    per_cell = anchors.anchors_per_location
    gy1, gx1, gy2, gx2 = [tf.reshape(c, [-1, 1, 1, 1]) for c in tf.unstack(gt_boxes, axis=-1)]
    overlap_h = tf.maximum(tf.minimum(tables["y_max"], gy2) - tf.maximum(tables["y_min"], gy1), 0.0)
    overlap_w = tf.maximum(tf.minimum(tables["x_max"], gx2) - tf.maximum(tables["x_min"], gx1), 0.0)
    best = None
    if force_match:
        best_cell = _first_near_max(overlap_h) * tables["cols"][:, np.newaxis]
        best_cell += _first_near_max(overlap_w)
        best = (
            tables["offset"][:, np.newaxis]
            + best_cell * per_cell
            + np.arange(per_cell, dtype=np.int32)
        )
        best = tf.reshape(best, [-1, len(tables["offset"]) * per_cell])

    center_y = tf.reshape(gy1 + gy2, [-1, 1]) / 2.0
    center_x = tf.reshape(gx1 + gx2, [-1, 1]) / 2.0
    start_row = _window_start(
        center_y, tables["reach_y"], tables["stride"], tables["rows"], window_h
    )
    start_col = _window_start(
        center_x, tables["reach_x"], tables["stride"], tables["cols"], window_w
    )
    window_rows = start_row[..., tf.newaxis] + tf.range(window_h)
    window_cols = start_col[..., tf.newaxis] + tf.range(window_w)
    window_overlap_h = tf.gather(overlap_h, window_rows, axis=3, batch_dims=2)  # [G, L, A, wh]
    window_overlap_w = tf.gather(overlap_w, window_cols, axis=3, batch_dims=2)  # [G, L, A, ww]

    # IoU >= t  <=>  intersection >= t / (1 + t) * (anchor area + gt area). With the
    # level's smallest anchor area and some slack this keeps a superset of the pairs.
    gt_areas = tf.maximum((gy2 - gy1) * (gx2 - gx1), 0.0)[..., 0]  # [G, 1, 1]
    ratio = threshold / (1.0 + threshold) * (1.0 - _FILTER_SLACK)
    bound = tf.maximum(ratio * (tables["min_area"] + gt_areas), _MIN_BOUND)  # [G, L, A]
    scale = tf.reshape(tf.cast(gt_valid, tf.float32), [-1, 1, 1]) / bound
    coverage = (window_overlap_h * scale[..., tf.newaxis])[..., tf.newaxis]
    coverage = coverage * window_overlap_w[..., tf.newaxis, :]  # [G, L, A, wh, ww]
    pairs = tf.cast(tf.where(coverage >= 1.0), tf.int32)
    gt_ids, level_ids, shape_ids, window_row, window_col = tf.unstack(pairs, axis=1)
    gt_and_level = tf.stack([gt_ids, level_ids], axis=1)
    row = tf.gather_nd(start_row, gt_and_level) + window_row
    col = tf.gather_nd(start_col, gt_and_level) + window_col
    cell = row * tf.gather(tables["cols"], level_ids) + col
    anchor_ids = tf.gather(tables["offset"], level_ids) + cell * per_cell + shape_ids
    return anchor_ids, gt_ids, best


def match_anchors(anchors, gt_boxes, positive_threshold, negative_threshold, force_match=True):
    """Same result as `match_boxes(anchors.boxes, ...)` for an `anchors.Anchors` grid.

    Args:
      anchors: an `anchors.Anchors` instance.
      gt_boxes, positive_threshold, negative_threshold, force_match: as `match_boxes`.

    Returns:
      (matched_gt_indices, match_state), int32 [N] each, as `match_boxes`.
    """
    if not isinstance(anchors, anchors_lib.Anchors):
        raise TypeError(
            f"match_anchors: `anchors` must be an anchors.Anchors; received {type(anchors)}."
        )
    gt_boxes = _check_inputs("match_anchors", gt_boxes, positive_threshold, negative_threshold)
    num_anchors = anchors.num_anchors
    with tf.name_scope("match_anchors"):
        gt_valid = tf.logical_not(box_ops.is_padding(gt_boxes))
        anchor_ids, gt_ids, best_candidates = _grid_pairs(
            anchors, gt_boxes, gt_valid, negative_threshold, force_match
        )
        # The same IoU arithmetic as compute_iou, so the states equal match_boxes'.
        iou = box_ops.iou_from_coordinates(
            tf.unstack(tf.gather(anchors.boxes, anchor_ids), axis=-1),
            tf.unstack(tf.gather(gt_boxes, gt_ids), axis=-1),
        )
        max_iou = tf.math.unsorted_segment_max(iou, anchor_ids, num_anchors)
        if negative_threshold <= 0.0:
            # Pairs without overlap were left out; their IoU of 0 still reaches 0.
            max_iou = tf.where(
                tf.fill([num_anchors], tf.reduce_any(gt_valid)), tf.maximum(max_iou, 0.0), max_iou
            )
        states = _states_from_iou(max_iou, positive_threshold, negative_threshold)
        # A positive anchor's best gt has IoU >= positive_threshold, so it is among the
        # pairs; the lowest gt id among equal IoUs wins, as with argmax.
        is_best = iou >= tf.gather(max_iou, anchor_ids)
        no_gt = tf.fill(tf.shape(gt_ids), tf.int32.max)
        best_gt = tf.math.unsorted_segment_min(
            tf.where(is_best, gt_ids, no_gt), anchor_ids, num_anchors
        )
        matched = tf.where(
            tf.equal(states, sentinels.POSITIVE), best_gt, tf.zeros([num_anchors], tf.int32)
        )

        if force_match:
            candidate_iou = box_ops.iou_from_coordinates(
                tf.unstack(tf.gather(anchors.boxes, best_candidates), axis=-1),
                [c[:, tf.newaxis] for c in tf.unstack(gt_boxes, axis=-1)],
            )
            best_iou = tf.reduce_max(candidate_iou, axis=1)
            is_best = candidate_iou >= (best_iou * (1.0 - FORCE_MATCH_TOLERANCE))[:, tf.newaxis]
            no_anchor = tf.fill(tf.shape(best_candidates), num_anchors)
            best_anchor = tf.reduce_min(tf.where(is_best, best_candidates, no_anchor), axis=1)
            forcing = tf.logical_and(gt_valid, best_iou > 0.0)
            matched, states = _apply_force_match(matched, states, best_anchor, forcing, num_anchors)
        return matched, states
