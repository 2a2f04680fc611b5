"""Pure TensorFlow functions on tensors: boxes, anchors, matching, NMS, RoIAlign, ..."""

from official.detection import tf_compat  # noqa: F401  (TensorFlow 1.15 behaves as 2.x)
