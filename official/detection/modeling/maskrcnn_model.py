"""Faster R-CNN and Mask R-CNN: a region proposal network, RoIAlign over the
feature pyramid, a Fast R-CNN box head and, for Mask R-CNN, a mask head
(Ren et al. 2015; He et al. 2017). Without a mask head this is Faster R-CNN.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling import base_model
from official.detection.ops import mask_ops, postprocess, roi_align, roi_sampling


class MaskRCNN(base_model.BaseModel):
    """Assembles built components into an Estimator model.

    Args:
      backbone, neck: as in RetinaNet; levels must cover the RPN levels.
      rpn_head: `fn(features, is_training) -> (score_outputs, box_outputs)`.
      fast_rcnn_head: `fn(roi_features [B,R,7,7,C], is_training) ->
        (class_outputs [B,R,K], box_outputs [B,R,K*4] or [B,R,4])`.
      mask_head: `fn(roi_features [B,M,14,14,C], classes [B,M], is_training) ->
        mask logits [B,M,T,T]`, or None for Faster R-CNN.
      train_proposal_fn, eval_proposal_fn: `fn(rpn_box_outputs, rpn_score_outputs,
        anchor_boxes, image_shape [B,2]) -> {'rois', ...}` (ops.proposals with
        the training or evaluation top-k settings bound).
      roi_sampler_fn: `fn(rois, gt_boxes, gt_classes) -> samples` (ops.roi_sampling).
      num_mask_samples_per_image: foreground RoIs per image that get a mask loss.
      mask_target_size: side T of the mask targets and predictions.
      loss_fn: `fn(**tensors) -> dict with 'model_loss'` (losses.rcnn_losses).
      detection_fn: `fn(class_outputs, box_outputs, rois, image_info) -> detections`
        with boxes in original-image pixels (ops.postprocess).
      roi_output_size, mask_roi_output_size: RoIAlign sides for the two heads.
      **kwargs: training settings of BaseModel.
    """

    def __init__(
        self,
        *,
        backbone,
        neck,
        rpn_head,
        fast_rcnn_head,
        mask_head,
        train_proposal_fn,
        eval_proposal_fn,
        roi_sampler_fn,
        loss_fn,
        detection_fn,
        num_mask_samples_per_image=128,
        mask_target_size=28,
        roi_output_size=7,
        mask_roi_output_size=14,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._backbone = backbone
        self._neck = neck
        self._rpn_head = rpn_head
        self._fast_rcnn_head = fast_rcnn_head
        self._mask_head = mask_head
        self._train_proposal_fn = train_proposal_fn
        self._eval_proposal_fn = eval_proposal_fn
        self._roi_sampler_fn = roi_sampler_fn
        self._loss_fn = loss_fn
        self._detection_fn = detection_fn
        self._num_mask_samples = num_mask_samples_per_image
        self._mask_target_size = mask_target_size
        self._roi_output_size = roi_output_size
        self._mask_roi_output_size = mask_roi_output_size

    @property
    def include_mask(self):
        return self._mask_head is not None

    def build_outputs(self, images, labels, mode):
        is_training = mode == base_model.TRAIN
        features = self._backbone(images, is_training=is_training)
        features = self._neck(features, is_training=is_training)
        rpn_score_outputs, rpn_box_outputs = self._rpn_head(features, is_training=is_training)
        image_info = labels["image_info"]
        proposal_fn = self._train_proposal_fn if is_training else self._eval_proposal_fn
        proposals = proposal_fn(
            rpn_box_outputs, rpn_score_outputs, labels["anchor_boxes"], image_info[:, 1, :]
        )
        # Proposals are inputs to the second stage, not a path for its gradients.
        rois = tf.stop_gradient(proposals["rois"])
        outputs = {"rpn_score_outputs": rpn_score_outputs, "rpn_box_outputs": rpn_box_outputs}
        if is_training:
            samples = self._roi_sampler_fn(rois, labels["gt_boxes"], labels["gt_classes"])
            rois = samples["rois"]
            outputs["class_targets"] = samples["class_targets"]
            outputs["box_targets"] = samples["box_targets"]

        roi_features = roi_align.multilevel_roi_align(
            features, rois, output_size=self._roi_output_size
        )
        class_outputs, box_outputs = self._fast_rcnn_head(roi_features, is_training=is_training)
        outputs["class_outputs"] = class_outputs
        outputs["box_outputs"] = box_outputs

        if is_training:
            if self.include_mask:
                outputs.update(self._mask_training_outputs(features, samples, labels))
            return outputs

        detections = self._detection_fn(class_outputs, box_outputs, rois, image_info)
        outputs.update(detections)
        if self.include_mask:
            boxes = postprocess.boxes_to_input_image(detections["detection_boxes"], image_info)
            mask_features = roi_align.multilevel_roi_align(
                features, boxes, output_size=self._mask_roi_output_size
            )
            mask_logits = self._mask_head(
                mask_features, detections["detection_classes"], is_training=False
            )
            outputs["detection_masks"] = tf.sigmoid(mask_logits)
        return outputs

    def _mask_training_outputs(self, features, samples, labels):
        foreground = roi_sampling.select_foreground_rois(samples, self._num_mask_samples)
        mask_features = roi_align.multilevel_roi_align(
            features, foreground["rois"], output_size=self._mask_roi_output_size
        )
        mask_outputs = self._mask_head(mask_features, foreground["class_targets"], is_training=True)
        mask_targets = mask_ops.crop_mask_targets(
            labels["gt_masks"],
            foreground["rois"],
            foreground["matched_gt_boxes"],
            foreground["matched_gt_indices"],
            mask_target_size=self._mask_target_size,
        )
        return {
            "mask_outputs": mask_outputs,
            "mask_targets": tf.stop_gradient(mask_targets),
            "mask_class_targets": foreground["class_targets"],
        }

    def build_losses(self, outputs, labels):
        tensors = dict(
            rpn_score_outputs=outputs["rpn_score_outputs"],
            rpn_box_outputs=outputs["rpn_box_outputs"],
            rpn_score_targets=labels["rpn_score_targets"],
            rpn_box_targets=labels["rpn_box_targets"],
            class_outputs=outputs["class_outputs"],
            box_outputs=outputs["box_outputs"],
            class_targets=outputs["class_targets"],
            box_targets=outputs["box_targets"],
        )
        if self.include_mask:
            tensors.update(
                mask_outputs=outputs["mask_outputs"],
                mask_targets=outputs["mask_targets"],
                mask_class_targets=outputs["mask_class_targets"],
            )
        return dict(self._loss_fn(**tensors))

    def build_predictions(self, outputs, labels):
        keys = ["detection_boxes", "detection_scores", "detection_classes", "num_detections"]
        if self.include_mask:
            keys.append("detection_masks")
        return base_model.with_labels_for_evaluation({k: outputs[k] for k in keys}, labels)
