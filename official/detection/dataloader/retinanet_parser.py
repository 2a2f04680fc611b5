"""RetinaNet parser: serialized `tf.train.Example` -> (image, labels).

Lin et al., "Focal Loss for Dense Object Detection", arXiv:1708.02002.
"""

import tensorflow.compat.v1 as tf

from official.detection.dataloader import mode_keys, parser_ops, tf_example_decoder
from official.detection.ops import anchors as anchors_lib
from official.detection.ops import preprocess_ops, targets


class Parser:
    """Parses RetinaNet inputs for one mode; arguments are named like the config keys.

    Args:
      output_size: [height, width] of the scaled image; the image is padded so that
        each side is a multiple of 2**max_level.
      min_level, max_level: feature pyramid levels that carry anchors.
      num_scales, aspect_ratios, anchor_size: anchor layout (see ops/anchors.py).
      match_threshold: IoU at or above which an anchor is positive.
      unmatched_threshold: IoU below which an anchor is negative (ignored in between).
      aug_rand_hflip: random horizontal flips in training.
      aug_scale_min, aug_scale_max: scale jitter range in training (crop to output_size).
      skip_crowd_during_training: drop is_crowd objects from training targets.
      max_num_instances: ground truth rows in evaluation labels.
      mode: one of `mode_keys.ALL_MODES`.
      regenerate_source_id: use a hash of the image bytes as source id.
      seed: op seed of the random augmentation.
      box_convention: a box convention of `ops/box_ops.py`; how training ground-truth
        boxes are clipped to the crop (tensorflow_tpu: to output_size - 1).

    Calling the parser on a scalar string tensor returns (image, labels):
      image: float32 [padded h, padded w, 3], ImageNet-normalised.
      labels in training: cls_targets {level: int32 [H_l, W_l, A]} (class id, -1
        negative, -2 ignored), box_targets {level: float32 [H_l, W_l, A * 4]},
        anchor_boxes {level: float32 [H_l, W_l, A * 4]}, num_positives float32 scalar,
        image_info float32 [4, 2].
      labels in eval: image_info, source_id int64, anchor_boxes, groundtruths (see
        `parser_ops.build_groundtruths`) and, for the eval loss, cls_targets,
        box_targets and num_positives computed without augmentation.
      labels in predict: image_info, source_id, anchor_boxes (+ groundtruths in
        predict_with_gt).
    """

    def __init__(
        self,
        output_size,
        min_level,
        max_level,
        num_scales,
        aspect_ratios,
        anchor_size,
        match_threshold=0.5,
        unmatched_threshold=0.5,
        aug_rand_hflip=False,
        aug_scale_min=1.0,
        aug_scale_max=1.0,
        skip_crowd_during_training=True,
        max_num_instances=100,
        mode=None,
        regenerate_source_id=False,
        *,
        seed=None,
        box_convention="consistent",
    ):
        self._mode = mode_keys.canonical_mode(mode, "retinanet_parser.Parser")
        self._output_size = [int(s) for s in output_size]
        self._padded_size = preprocess_ops.compute_padded_size(self._output_size, 2**max_level)
        # Anchors depend on static sizes only: computed once, graph constants on use.
        self._anchors = anchors_lib.Anchors(
            min_level, max_level, num_scales, list(aspect_ratios), anchor_size, self._padded_size
        )
        self._match_threshold = match_threshold
        self._unmatched_threshold = unmatched_threshold
        self._aug_rand_hflip = aug_rand_hflip
        self._aug_scale_min = aug_scale_min
        self._aug_scale_max = aug_scale_max
        self._skip_crowd = skip_crowd_during_training
        self._max_num_instances = max_num_instances
        self._seed = seed
        self._box_convention = box_convention
        self._decoder = tf_example_decoder.TfExampleDecoder(
            include_mask=False, regenerate_source_id=regenerate_source_id
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
        with tf.name_scope("retinanet_parser"):
            data = self._decoder.decode(serialized_example)
            if self._mode == mode_keys.TRAIN:
                return self._parse_train(data)
            return self._parse_eval_or_predict(data)

    def _targets(self, boxes, classes):
        return targets.assign_retinanet_targets(
            self._anchors,
            boxes,
            classes,
            match_threshold=self._match_threshold,
            unmatched_threshold=self._unmatched_threshold,
        )

    def _parse_train(self, data):
        boxes = data["groundtruth_boxes"]
        classes = data["groundtruth_classes"]
        if self._skip_crowd:
            boxes, classes = parser_ops.drop_crowds(data["groundtruth_is_crowd"], boxes, classes)
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
        boxes, classes = parser_ops.keep_non_empty_boxes(boxes, classes)
        anchor_targets = self._targets(boxes, classes)
        labels = {
            "cls_targets": anchor_targets["cls_targets"],
            "box_targets": anchor_targets["box_targets"],
            "anchor_boxes": self._anchors.multilevel_boxes,
            "num_positives": anchor_targets["num_positives"],
            "image_info": image_info,
        }
        return image, labels

    def _parse_eval_or_predict(self, data):
        image, boxes, image_info = parser_ops.transform_image_and_boxes(
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
            labels["groundtruths"] = parser_ops.build_groundtruths(data, self._max_num_instances)
        if self._mode == mode_keys.EVAL:
            boxes, classes = parser_ops.keep_non_empty_boxes(boxes, data["groundtruth_classes"])
            anchor_targets = self._targets(boxes, classes)
            labels["cls_targets"] = anchor_targets["cls_targets"]
            labels["box_targets"] = anchor_targets["box_targets"]
            labels["num_positives"] = anchor_targets["num_positives"]
        return image, labels
