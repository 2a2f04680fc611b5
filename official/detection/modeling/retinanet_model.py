"""RetinaNet: backbone, neck and a class/box head over anchors, trained with
focal and Huber losses (Lin et al., "Focal Loss for Dense Object Detection")."""

from official.detection.modeling import base_model


class RetinaNet(base_model.BaseModel):
    """Assembles built components into an Estimator model.

    Args:
      backbone: `fn(images, is_training) -> {level: features}`.
      neck: `fn({level: features}, is_training) -> {level: features}`.
      head: `fn({level: features}, is_training) -> (cls_outputs, box_outputs)`,
        each `{level: [B, H, W, A*K]}` and `{level: [B, H, W, A*4]}`.
      loss_fn: `fn(cls_outputs, box_outputs, cls_targets, box_targets,
        num_positives) -> {'model_loss', 'cls_loss', 'box_loss'}`.
      detection_fn: `fn(cls_outputs, box_outputs, anchor_boxes, image_info) ->
        {'detection_boxes', 'detection_scores', 'detection_classes',
        'num_detections'}` with boxes in original-image pixels.
      **kwargs: training settings of BaseModel.
    """

    def __init__(self, *, backbone, neck, head, loss_fn, detection_fn, **kwargs):
        super().__init__(**kwargs)
        self._backbone = backbone
        self._neck = neck
        self._head = head
        self._loss_fn = loss_fn
        self._detection_fn = detection_fn

    def build_outputs(self, images, labels, mode):
        is_training = mode == base_model.TRAIN
        features = self._backbone(images, is_training=is_training)
        features = self._neck(features, is_training=is_training)
        cls_outputs, box_outputs = self._head(features, is_training=is_training)
        return {"cls_outputs": cls_outputs, "box_outputs": box_outputs}

    def build_losses(self, outputs, labels):
        losses = self._loss_fn(
            outputs["cls_outputs"],
            outputs["box_outputs"],
            labels["cls_targets"],
            labels["box_targets"],
            labels["num_positives"],
        )
        return {
            "model_loss": losses["model_loss"],
            "cls_loss": losses["cls_loss"],
            "box_loss": losses["box_loss"],
        }

    def build_predictions(self, outputs, labels):
        detections = self._detection_fn(
            outputs["cls_outputs"],
            outputs["box_outputs"],
            labels["anchor_boxes"],
            labels["image_info"],
        )
        return base_model.with_labels_for_evaluation(detections, labels)
