"""Sampling RoIs for the Fast R-CNN and mask heads during training.

`sample_rois`: the ground-truth boxes join the proposals (`mix_gt_boxes`), every
candidate takes its highest-IoU ground-truth box, and a balanced random subset
(`sampling.sample_balanced`) of `num_samples_per_image` is drawn:

- foreground: IoU >= fg_iou_thresh, at most `fg_fraction` of the samples;
- background: bg_iou_thresh_lo <= IoU < bg_iou_thresh_hi, filling the rest; a
  proposal in an image without ground truth has IoU 0;
- neither (IoU between the two ranges, or below bg_iou_thresh_lo): never sampled.

Sampled RoIs come foreground first, then background. When there are fewer
candidates than samples, the remaining rows are filler: box `sentinels.PAD`, class 0
(background, as the ancestor's filler), matched index -1.

`select_foreground_rois` takes the mask head's RoIs: the foreground rows, which
`sample_rois` put first, so this is a static slice.
"""

import tensorflow.compat.v1 as tf

from official.detection.ops import box_ops, sampling, sentinels

# Fast R-CNN box codec weights (dy, dx, dh, dw).
RCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)

# Sort keys that put sampled foreground rows first, then sampled background.
_FOREGROUND_KEY = 2
_BACKGROUND_KEY = 1


def _check_settings(num_samples_per_image, fg_fraction, fg_iou_thresh, bg_lo, bg_hi):
    where = "sample_rois"
    if not isinstance(num_samples_per_image, int) or num_samples_per_image < 1:
        raise ValueError(
            f"{where}: `num_samples_per_image` must be an int >= 1; received "
            f"{num_samples_per_image!r}."
        )
    for name, value in (("fg_fraction", fg_fraction), ("fg_iou_thresh", fg_iou_thresh)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{where}: `{name}` must be in [0, 1]; received {value!r}.")
    if not 0.0 <= bg_lo <= bg_hi <= 1.0:
        raise ValueError(
            f"{where}: need 0 <= bg_iou_thresh_lo <= bg_iou_thresh_hi <= 1; received "
            f"bg_iou_thresh_lo={bg_lo!r}, bg_iou_thresh_hi={bg_hi!r}."
        )


def _check_shapes(rois, gt_boxes, gt_classes):
    where = "sample_rois"
    for name, tensor in (("rois", rois), ("gt_boxes", gt_boxes)):
        shape = tensor.shape
        if shape.ndims != 3 or shape[-1] != 4 or shape[1] is None:
            raise ValueError(
                f"{where}: `{name}` must be [B, N, 4] with a static N; received shape {shape}."
            )
    if gt_classes.shape.ndims != 2 or gt_classes.shape[1] != gt_boxes.shape[1]:
        raise ValueError(
            f"{where}: `gt_classes` must be [B, {gt_boxes.shape[1]}] like `gt_boxes`; received "
            f"shape {gt_classes.shape}."
        )


def _match(boxes, gt_boxes):
    """Best IoU and its gt index per box: float32 [B, N] (-1 for padded boxes), int32."""
    iou = box_ops.compute_iou(boxes, gt_boxes)
    best_iou = tf.reduce_max(iou, axis=-1)
    # Padded gt rows score -1 against everything; without any real gt a real box has
    # overlap 0 with the ground truth, which makes it a background candidate.
    best_iou = tf.where(box_ops.is_padding(boxes), best_iou, tf.maximum(best_iou, 0.0))
    return best_iou, tf.argmax(iou, axis=-1, output_type=tf.int32)


def sample_rois(
    rois,
    gt_boxes,
    gt_classes,
    *,
    num_samples_per_image=512,
    fg_fraction=0.25,
    fg_iou_thresh=0.5,
    bg_iou_thresh_hi=0.5,
    bg_iou_thresh_lo=0.0,
    mix_gt_boxes=True,
    seed=None,
    convention=box_ops.CONSISTENT,
):
    """Draws the training RoIs of every image and their targets.

    Args:
      rois: float32 [B, N, 4] proposals in pixels, rows of `sentinels.PAD` ignored.
      gt_boxes: float32 [B, G, 4] ground-truth pixel boxes, padded with `sentinels.PAD`.
      gt_classes: int [B, G] classes (>= 1) of the ground-truth boxes, padded with -1.
      num_samples_per_image: int K, RoIs per image.
      fg_fraction: largest share of foreground RoIs.
      fg_iou_thresh: foreground when the best IoU is >= this.
      bg_iou_thresh_hi, bg_iou_thresh_lo: background when lo <= best IoU < hi.
      mix_gt_boxes: add the ground-truth boxes to the candidates.
      seed: optional op seed of the random sampling.
      convention: one of `box_ops.BOX_CONVENTIONS`, the one `box_targets` are encoded
        in (tensorflow_tpu: the +1-pixel sizes of the tensorflow/tpu Fast R-CNN).

    Returns:
      dict with
        rois: float32 [B, K, 4] sampled RoIs, foreground first; filler rows PAD.
        class_targets: int32 [B, K] gt class for foreground, 0 otherwise.
        box_targets: float32 [B, K, 4] the matched gt box encoded against the RoI with
          `RCNN_BOX_WEIGHTS`; 0 except for foreground.
        matched_gt_boxes: float32 [B, K, 4] gt box of foreground rows, 0 otherwise.
        matched_gt_indices: int32 [B, K] row in `gt_boxes` of foreground rows, -1
          otherwise.
        num_foreground: int32 [B] foreground rows (the first ones).
    """
    _check_settings(
        num_samples_per_image, fg_fraction, fg_iou_thresh, bg_iou_thresh_lo, bg_iou_thresh_hi
    )
    box_ops.check_convention(convention, "sample_rois")
    rois = tf.convert_to_tensor(rois, tf.float32)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    gt_classes = tf.cast(gt_classes, tf.int32)
    _check_shapes(rois, gt_boxes, gt_classes)

    with tf.name_scope("sample_rois"):
        candidates = tf.concat([rois, gt_boxes], axis=1) if mix_gt_boxes else rois
        num_candidates = int(candidates.shape[1])
        best_iou, best_gt = _match(candidates, gt_boxes)
        foreground = best_iou >= fg_iou_thresh
        background = tf.logical_and(
            tf.logical_and(best_iou >= bg_iou_thresh_lo, best_iou < bg_iou_thresh_hi),
            tf.logical_not(foreground),
        )

        def sample_image(masks):
            return sampling.sample_balanced(
                masks[0],
                tf.logical_or(masks[0], masks[1]),
                num_samples_per_image,
                fg_fraction,
                seed=seed,
            )

        sampled = tf.map_fn(sample_image, (foreground, background), dtype=tf.bool, back_prop=False)
        sampled_fg = tf.logical_and(sampled, foreground)
        sampled_bg = tf.logical_and(sampled, background)
        keys = _FOREGROUND_KEY * tf.cast(sampled_fg, tf.int32)
        keys += _BACKGROUND_KEY * tf.cast(sampled_bg, tf.int32)
        # top_k keeps index order among equal keys, so the order is deterministic given
        # the sample; rows beyond the sample (key 0) become filler.
        if num_candidates < num_samples_per_image:
            keys = tf.pad(keys, [[0, 0], [0, num_samples_per_image - num_candidates]])
            candidates = tf.pad(
                candidates,
                [[0, 0], [0, num_samples_per_image - num_candidates], [0, 0]],
                constant_values=float(sentinels.PAD),
            )
            best_gt = tf.pad(best_gt, [[0, 0], [0, num_samples_per_image - num_candidates]])
        keys, order = tf.nn.top_k(keys, k=num_samples_per_image, sorted=True)
        is_fg = tf.equal(keys, _FOREGROUND_KEY)
        is_sampled = keys > 0

        sampled_rois = tf.gather(candidates, order, batch_dims=1)
        sampled_rois = tf.where(
            tf.tile(is_sampled[..., tf.newaxis], [1, 1, 4]),
            sampled_rois,
            tf.fill(tf.shape(sampled_rois), float(sentinels.PAD)),
        )
        matched_gt = tf.gather(best_gt, order, batch_dims=1)
        matched_gt_indices = tf.where(is_fg, matched_gt, -tf.ones_like(matched_gt))
        safe_indices = tf.maximum(matched_gt_indices, 0)
        fg_mask = tf.cast(is_fg, tf.float32)[..., tf.newaxis]
        matched_gt_boxes = tf.gather(gt_boxes, safe_indices, batch_dims=1) * fg_mask
        class_targets = tf.gather(gt_classes, safe_indices, batch_dims=1)
        class_targets = tf.where(is_fg, class_targets, tf.zeros_like(class_targets))
        # Other rows encode a unit box against itself: exactly 0 and never log(0).
        not_fg_unit_boxes = (1.0 - fg_mask) * tf.constant([0.0, 0.0, 1.0, 1.0])
        box_targets = box_ops.encode_boxes(
            matched_gt_boxes + not_fg_unit_boxes,
            sampled_rois * fg_mask + not_fg_unit_boxes,
            weights=RCNN_BOX_WEIGHTS,
            convention=convention,
        )
        return {
            "rois": sampled_rois,
            "class_targets": class_targets,
            "box_targets": box_targets,
            "matched_gt_boxes": matched_gt_boxes,
            "matched_gt_indices": matched_gt_indices,
            "num_foreground": tf.reduce_sum(tf.cast(is_fg, tf.int32), axis=1),
        }


def select_foreground_rois(samples, num_mask_samples_per_image=128):
    """The first `num_mask_samples_per_image` rows of `sample_rois` output (foreground).

    Args:
      samples: the dict returned by `sample_rois`.
      num_mask_samples_per_image: int M <= K.

    Returns:
      dict with `rois` [B, M, 4], `class_targets` [B, M] (0: not foreground, no mask
      loss), `matched_gt_boxes` [B, M, 4] and `matched_gt_indices` [B, M] (-1: not
      foreground), the slices of the same keys of `samples`.
    """
    num_samples = int(samples["rois"].shape[1])
    if not isinstance(num_mask_samples_per_image, int) or not (
        1 <= num_mask_samples_per_image <= num_samples
    ):
        raise ValueError(
            "select_foreground_rois: `num_mask_samples_per_image` must be an int in "
            f"[1, {num_samples}] (the sampled RoIs per image); received "
            f"{num_mask_samples_per_image!r}."
        )
    keys = ("rois", "class_targets", "matched_gt_boxes", "matched_gt_indices")
    return {key: samples[key][:, :num_mask_samples_per_image] for key in keys}
