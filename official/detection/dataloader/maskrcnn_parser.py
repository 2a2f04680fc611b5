"""Mask R-CNN / Faster R-CNN parser: serialized `tf.train.Example` -> (image, labels).

He et al., "Mask R-CNN", arXiv:1703.06870. With include_mask False it serves Faster
R-CNN and no mask is decoded.
"""

import tensorflow.compat.v1 as tf

from official.detection.dataloader import mode_keys, parser_ops, tf_example_decoder
from official.detection.ops import anchors as anchors_lib
from official.detection.ops import preprocess_ops, sentinels, targets

MISSING_MASKS_MESSAGE = (
    "maskrcnn_parser: include_mask is on but a record has fewer image/object/mask PNGs "
    "than objects; write the TFRecords with --include_masks or set "
    "architecture.include_mask: false"
)


class Parser:
    """Parses Mask R-CNN inputs for one mode; arguments are named like the config keys.

    Args:
      output_size: [height, width] of the scaled image; the image is padded so that
        each side is a multiple of 2**max_level.
      min_level, max_level: feature pyramid levels that carry anchors.
      num_scales, aspect_ratios, anchor_size: anchor layout (see ops/anchors.py).
      rpn_match_threshold, rpn_unmatched_threshold: RPN positive / negative IoU.
      rpn_batch_size_per_im, rpn_fg_fraction: RPN anchors sampled per image and the
        positive share of them.
      aug_rand_hflip: random horizontal flips in training.
      aug_scale_min, aug_scale_max: scale jitter range in training (crop to output_size).
      skip_crowd_during_training: drop is_crowd objects from training targets.
      max_num_instances: rows of the padded gt_* and groundtruths tensors.
      include_mask: parse instance masks (Mask R-CNN) or not (Faster R-CNN).
      mask_crop_size: side S of the gt_masks crops.
      mode: one of `mode_keys.ALL_MODES`.
      regenerate_source_id: use a hash of the image bytes as source id.
      seed: op seed of the random augmentation.
      box_convention: a box convention of `ops/box_ops.py`; how training ground-truth
        boxes are clipped to the crop (tensorflow_tpu: to output_size - 1).

    Calling the parser on a scalar string tensor returns (image, labels):
      image: float32 [padded h, padded w, 3], ImageNet-normalised.
      labels in training: anchor_boxes {level: float32 [H_l, W_l, A * 4]}, image_info
        float32 [4, 2], rpn_score_targets {level: int32 [H_l, W_l, A]} (1 positive, 0
        negative, -1 not sampled), rpn_box_targets {level: float32 [H_l, W_l, A * 4]},
        gt_boxes float32 [max_num_instances, 4] pixels of the scaled image padded with
        -1, gt_classes int32 [max_num_instances] padded with -1, and with include_mask
        gt_masks float32 [max_num_instances, S, S], each mask sampled inside its gt box,
        padded with -1.
      labels in eval / predict_with_gt: image_info, source_id int64, anchor_boxes and
        groundtruths (`parser_ops.build_groundtruths`, with PNG `masks` when
        include_mask); predict leaves out groundtruths.
    """

    def __init__(
        self,
        output_size,
        min_level,
        max_level,
        num_scales,
        aspect_ratios,
        anchor_size,
        rpn_match_threshold=0.7,
        rpn_unmatched_threshold=0.3,
        rpn_batch_size_per_im=256,
        rpn_fg_fraction=0.5,
        aug_rand_hflip=False,
        aug_scale_min=1.0,
        aug_scale_max=1.0,
        skip_crowd_during_training=True,
        max_num_instances=100,
        include_mask=False,
        mask_crop_size=112,
        mode=None,
        regenerate_source_id=False,
        *,
        seed=None,
        box_convention="consistent",
    ):
        self._mode = mode_keys.canonical_mode(mode, "maskrcnn_parser.Parser")
        self._output_size = [int(s) for s in output_size]
        self._padded_size = preprocess_ops.compute_padded_size(self._output_size, 2**max_level)
        # Anchors depend on static sizes only: computed once, graph constants on use.
        self._anchors = anchors_lib.Anchors(
            min_level, max_level, num_scales, list(aspect_ratios), anchor_size, self._padded_size
        )
        self._rpn_match_threshold = rpn_match_threshold
        self._rpn_unmatched_threshold = rpn_unmatched_threshold
        self._rpn_batch_size_per_im = rpn_batch_size_per_im
        self._rpn_fg_fraction = rpn_fg_fraction
        self._aug_rand_hflip = aug_rand_hflip
        self._aug_scale_min = aug_scale_min
        self._aug_scale_max = aug_scale_max
        self._skip_crowd = skip_crowd_during_training
        self._max_num_instances = max_num_instances
        self._include_mask = include_mask
        self._mask_crop_size = mask_crop_size
        self._seed = seed
        self._box_convention = box_convention
        # The decoder hands over the PNG strings only: training decodes just the masks
        # that survive crowd skipping and cropping, evaluation passes the strings on.
        self._decoder = tf_example_decoder.TfExampleDecoder(
            include_mask=include_mask,
            regenerate_source_id=regenerate_source_id,
            decode_masks=False,
        )

    @property
    def padded_size(self):
        """[h, w] of the images this parser returns."""
        return list(self._padded_size)

    @property
    def anchor_boxes(self):
        """{level: float32 [H_l, W_l, A * 4]}, the anchors of `padded_size` images."""
        return self._anchors.multilevel_boxes

    def __call__(self, serialized_example):
        with tf.name_scope("maskrcnn_parser"):
            data = self._decoder.decode(serialized_example)
            if self._mode == mode_keys.TRAIN:
                return self._parse_train(data)
            return self._parse_eval_or_predict(data)

    def _parse_train(self, data):
        boxes = data["groundtruth_boxes"]
        classes = data["groundtruth_classes"]
        # Row indices into the decoded masks, carried through every filter below so
        # the masks themselves are never gathered or transformed at full size.
        mask_rows = tf.range(tf.shape(classes)[0])
        if self._skip_crowd:
            boxes, classes, mask_rows = parser_ops.drop_crowds(
                data["groundtruth_is_crowd"], boxes, classes, mask_rows
            )
        flip = None
        if self._aug_rand_hflip:
            flip = preprocess_ops.random_flip_decision(self._seed)
        image, boxes, image_info = parser_ops.transform_image_and_boxes(
            data["image"],
            boxes,
            output_size=self._output_size,
            padded_size=self._padded_size,
            flip=flip,
            aug_scale_min=self._aug_scale_min,
            aug_scale_max=self._aug_scale_max,
            seed=self._seed,
            box_convention=self._box_convention,
        )
        boxes, classes, mask_rows = parser_ops.keep_non_empty_boxes(boxes, classes, mask_rows)

        rpn_targets = targets.assign_rpn_targets(
            self._anchors,
            boxes,
            positive_threshold=self._rpn_match_threshold,
            negative_threshold=self._rpn_unmatched_threshold,
            batch_size_per_image=self._rpn_batch_size_per_im,
            positive_fraction=self._rpn_fg_fraction,
        )
        pad = preprocess_ops.clip_or_pad_to_fixed_size
        labels = {
            "anchor_boxes": self._anchors.multilevel_boxes,
            "image_info": image_info,
            "rpn_score_targets": rpn_targets["score_targets"],
            "rpn_box_targets": rpn_targets["box_targets"],
            "gt_boxes": pad(boxes, self._max_num_instances, float(sentinels.PAD)),
            "gt_classes": pad(classes, self._max_num_instances, sentinels.PAD),
        }
        if self._include_mask:
            masks = self._crop_masks(
                data["groundtruth_instance_masks_png"],
                tf.size(data["groundtruth_classes"]),
                mask_rows,
                boxes,
                image_info,
                flip,
            )
            labels["gt_masks"] = pad(masks, self._max_num_instances, float(sentinels.PAD))
        return image, labels

    def _crop_masks(self, pngs, num_objects, mask_rows, boxes, image_info, flip):
        """Samples each original-size mask inside its gt box (given in output pixels).

        Equivalent to flipping, resizing and cropping the masks like the image and then
        cropping each at its box, without transforming a full-size mask: the box is
        mapped back to original-image pixels instead, and a flip becomes a mirrored box.
        Only the PNGs of the kept objects (`mask_rows`) are decoded.
        """
        # Only the first max_num_instances survive the padding; skip the others.
        mask_rows = mask_rows[: self._max_num_instances]
        boxes = boxes[: self._max_num_instances]
        boxes = preprocess_ops.inverse_resize_and_crop_boxes(boxes, image_info[2], image_info[3])
        if flip is not None:
            width = image_info[0, 1]
            ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
            mirrored = tf.stack([ymin, width - xmin, ymax, width - xmax], axis=-1)
            boxes = tf.cond(flip, lambda: mirrored, lambda: boxes)
        image_size = tf.cast(image_info[0], tf.int32)
        have_masks = tf.debugging.assert_equal(
            tf.size(pngs),
            num_objects,
            message=MISSING_MASKS_MESSAGE,
        )
        with tf.control_dependencies([have_masks]):
            pngs = tf.gather(pngs, mask_rows)
        masks = tf_example_decoder.decode_png_masks(pngs, image_size[0], image_size[1], tf.uint8)
        crops = preprocess_ops.crop_and_resize_masks(masks, boxes, self._mask_crop_size)
        # Binarising the small crops instead of the full masks: a no-op for {0, 1}
        # masks, and maps masks stored as {0, 255} onto [0, 1].
        return tf.minimum(crops, 1.0)

    def _parse_eval_or_predict(self, data):
        image, _, image_info = parser_ops.transform_image_and_boxes(
            data["image"],
            data["groundtruth_boxes"],
            output_size=self._output_size,
            padded_size=self._padded_size,
        )
        labels = {
            "image_info": image_info,
            "source_id": parser_ops.process_source_id(data["source_id"]),
            "anchor_boxes": self._anchors.multilevel_boxes,
        }
        if self._mode in (mode_keys.EVAL, mode_keys.PREDICT_WITH_GT):
            labels["groundtruths"] = parser_ops.build_groundtruths(
                data, self._max_num_instances, include_mask_png=self._include_mask
            )
        return image, labels
