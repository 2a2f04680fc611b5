"""Region proposals from multilevel RPN outputs.

Per pyramid level and image: sigmoid the objectness logits, decode the box outputs
against the anchors (`box_ops.decode_boxes`, no weights), clip to the image, drop boxes
with a side not above `min_size_threshold` pixels (so empty boxes always go), keep the
`pre_nms_top_k` best, and run greedy NMS at `nms_iou_threshold` (boxes scoring not
above `score_threshold` are dropped there). The survivors of all
levels then compete in one top-k for the `post_nms_top_k` proposals of the image.
Training uses 2000 / 1000 and evaluation 1000 / 1000 (pre / post); the caller picks.

In the tensorflow_tpu box convention (`box_ops`) boxes are decoded and clipped that
way, and, as the tensorflow/tpu detection code does, the size filter runs only when
`min_size_threshold` > 0 (so empty boxes and boxes centred outside the image stay
candidates), a candidate whose coordinates are all 0 after clipping is never kept,
and padded proposal rows are zero boxes instead of `sentinels.PAD`.

Proposals are constants for the rest of the model (the usual approximate joint
training): no gradient flows from them back into the RPN outputs.
"""

import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops, nms, sentinels


def _check_settings(
    pre_nms_top_k, post_nms_top_k, nms_iou_threshold, score_threshold, min_size_threshold
):
    where = "generate_proposals"
    for name, value in (("pre_nms_top_k", pre_nms_top_k), ("post_nms_top_k", post_nms_top_k)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}: `{name}` must be an int >= 1; received {value!r}.")
    if not 0.0 <= nms_iou_threshold <= 1.0:
        raise ValueError(
            f"{where}: `nms_iou_threshold` must be in [0, 1] (0 turns NMS off); "
            f"received {nms_iou_threshold!r}."
        )
    if not 0.0 <= score_threshold < 1.0:
        raise ValueError(
            f"{where}: `score_threshold` must be in [0, 1); received {score_threshold!r}."
        )
    if min_size_threshold < 0.0:
        raise ValueError(
            f"{where}: `min_size_threshold` must be >= 0; received {min_size_threshold!r}."
        )


def _check_levels(rpn_box_outputs, rpn_score_outputs, anchor_boxes):
    levels = sorted(rpn_score_outputs)
    if not levels or sorted(rpn_box_outputs) != levels or not set(levels) <= set(anchor_boxes):
        raise ValueError(
            "generate_proposals: `rpn_score_outputs`, `rpn_box_outputs` and `anchor_boxes` "
            f"must cover the same levels; received {levels}, {sorted(rpn_box_outputs)} and "
            f"{sorted(anchor_boxes)}."
        )
    for level in levels:
        scores = rpn_score_outputs[level].shape
        boxes = rpn_box_outputs[level].shape
        if scores.ndims != 4 or not scores[1:].is_fully_defined():
            raise ValueError(
                f"generate_proposals: `rpn_score_outputs[{level}]` must be [B, H, W, A] with "
                f"static H, W, A; received shape {scores}."
            )
        if boxes.ndims != 4 or boxes[1:].as_list() != scores[1:3].as_list() + [scores[3] * 4]:
            raise ValueError(
                f"generate_proposals: `rpn_box_outputs[{level}]` must be [B, H, W, 4 * A] = "
                f"[B, {scores[1]}, {scores[2]}, {scores[3] * 4}]; received shape {boxes}."
            )
    return levels


def _level_candidates(box_outputs, score_outputs, anchors, image_shape, settings):
    """Best boxes of one level after NMS: ([B, K, 4], [B, K]), padded rows scored -1."""
    num_anchors = score_outputs.shape[1:].num_elements()
    scores = tf.sigmoid(tf.reshape(tf.cast(score_outputs, tf.float32), [-1, num_anchors]))
    encoded = tf.reshape(tf.cast(box_outputs, tf.float32), [-1, num_anchors, 4])
    convention = settings["convention"]
    boxes = box_ops.decode_boxes(
        encoded, tf.reshape(anchors, [-1, num_anchors, 4]), convention=convention
    )
    boxes = box_ops.clip_boxes(boxes, image_shape[:, tf.newaxis, :], convention=convention)
    tpu = convention == box_ops.TENSORFLOW_TPU
    # Removed boxes get score 0, which no score threshold (>= 0) lets through.
    if not tpu or settings["min_size_threshold"] > 0.0:
        boxes, scores = box_ops.filter_boxes_by_size(
            boxes, scores, image_shape, settings["min_size_threshold"], convention=convention
        )

    top_k = min(num_anchors, settings["pre_nms_top_k"])
    scores, indices = tf.nn.top_k(scores, k=top_k, sorted=True)
    boxes = tf.gather(boxes, indices, batch_dims=1)
    if tpu:
        # The tensorflow/tpu NMS takes a box without a positive coordinate for a removed
        # one; it keeps its place in the top-k above but is never selected.
        scores = tf.where(tf.reduce_max(boxes, axis=-1) > 0.0, scores, tf.zeros_like(scores))
    if settings["nms_iou_threshold"] > 0.0:
        max_output_size = min(top_k, settings["post_nms_top_k"])
        kept, num_kept = nms.non_max_suppression_padded(
            boxes,
            scores,
            max_output_size=max_output_size,
            iou_threshold=settings["nms_iou_threshold"],
            score_threshold=settings["score_threshold"],
        )
        boxes = tf.gather(boxes, kept, batch_dims=1)
        scores = tf.gather(scores, kept, batch_dims=1)
        valid = tf.range(max_output_size)[tf.newaxis, :] < num_kept[:, tf.newaxis]
    else:
        valid = scores > settings["score_threshold"]
    return boxes, tf.where(valid, scores, -tf.ones_like(scores))


def generate_proposals(
    rpn_box_outputs,
    rpn_score_outputs,
    anchor_boxes,
    image_shape,
    *,
    pre_nms_top_k=2000,
    post_nms_top_k=1000,
    nms_iou_threshold=0.7,
    score_threshold=0.0,
    min_size_threshold=0.0,
    convention=box_ops.CONSISTENT,
):
    """Turns RPN outputs into the best `post_nms_top_k` proposals per image.

    Args:
      rpn_box_outputs: {level: float [B, H_l, W_l, 4 * A]} encoded boxes (dy, dx, dh, dw)
        per anchor, unweighted.
      rpn_score_outputs: {level: float [B, H_l, W_l, A]} objectness logits; static
        H_l, W_l, A.
      anchor_boxes: {level: float32 [H_l, W_l, 4 * A] or [B, H_l, W_l, 4 * A]} pixel
        anchors [ymin, xmin, ymax, xmax] in the layout of `anchors.Anchors`.
      image_shape: float or int [B, 2], (height, width) of the valid (scaled) image in
        each padded input, e.g. `image_info[:, 1, :]`; boxes are clipped to it.
      pre_nms_top_k: int, boxes per level entering NMS.
      post_nms_top_k: int, proposals kept per image over all levels.
      nms_iou_threshold: float in [0, 1]; 0 skips NMS (the ancestor's convention).
      score_threshold: float in [0, 1), boxes whose score is not above this are dropped.
      min_size_threshold: float >= 0, boxes whose height or width is not above this
        (pixels, after clipping) are dropped.
      convention: one of `box_ops.BOX_CONVENTIONS` (see the module docstring).

    Returns:
      dict with
        rois: float32 [B, post_nms_top_k, 4] pixel boxes by decreasing score; rows after
          num_rois[b] hold `sentinels.PAD` (0 in the tensorflow_tpu convention).
        roi_scores: float32 [B, post_nms_top_k] sigmoid scores, 0 on padded rows.
        num_rois: int32 [B] number of real proposals.
    """
    settings = {
        "pre_nms_top_k": pre_nms_top_k,
        "post_nms_top_k": post_nms_top_k,
        "nms_iou_threshold": nms_iou_threshold,
        "score_threshold": score_threshold,
        "min_size_threshold": min_size_threshold,
    }
    _check_settings(**settings)
    box_ops.check_convention(convention, "generate_proposals")
    settings["convention"] = convention
    levels = _check_levels(rpn_box_outputs, rpn_score_outputs, anchor_boxes)
    with tf.name_scope("generate_proposals"):
        image_shape = tf.cast(image_shape, tf.float32)
        level_boxes, level_scores = [], []
        for level in levels:
            with tf.name_scope(f"level_{level}"):
                boxes, scores = _level_candidates(
                    rpn_box_outputs[level],
                    rpn_score_outputs[level],
                    tf.convert_to_tensor(anchor_boxes[level], tf.float32),
                    image_shape,
                    settings,
                )
            level_boxes.append(boxes)
            level_scores.append(scores)
        boxes = tf.concat(level_boxes, axis=1)
        scores = tf.concat(level_scores, axis=1)

        num_candidates = int(scores.shape[1])
        if num_candidates < post_nms_top_k:
            padding = post_nms_top_k - num_candidates
            boxes = tf.pad(boxes, [[0, 0], [0, padding], [0, 0]])
            scores = tf.pad(scores, [[0, 0], [0, padding]], constant_values=-1.0)
        scores, indices = tf.nn.top_k(scores, k=post_nms_top_k, sorted=True)
        boxes = tf.gather(boxes, indices, batch_dims=1)
        valid = scores >= 0.0
        pad = 0.0 if convention == box_ops.TENSORFLOW_TPU else float(sentinels.PAD)
        rois = tf.where(
            tf.tile(valid[..., tf.newaxis], [1, 1, 4]), boxes, tf.fill(tf.shape(boxes), pad)
        )
        return {
            "rois": tf.stop_gradient(rois),
            "roi_scores": tf.stop_gradient(tf.where(valid, scores, tf.zeros_like(scores))),
            "num_rois": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
        }
