"""Slow, obvious NumPy NMS to test the TensorFlow NMS and post-processing against.

IoU is computed in float32 with the same formula as the TensorFlow kernels, so the
reference and the fast ops agree bit for bit on which pairs exceed the threshold.
"""

import numpy as np


def iou_one_to_many(box, boxes):
    """float32 IoU of one [4] box with every row of [N, 4] boxes (yxyx pixels)."""
    box = np.asarray(box, np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    overlap_h = np.maximum(
        np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), np.float32(0)
    )
    overlap_w = np.maximum(
        np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), np.float32(0)
    )
    intersection = overlap_h * overlap_w
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.float32(0))
    return iou.astype(np.float32)


def greedy_nms(boxes, scores, *, iou_threshold, score_threshold, max_output_size):
    """Indices of the boxes greedy NMS keeps, by decreasing score.

    Args:
      boxes: [N, 4] yxyx pixel boxes.
      scores: [N] scores; only scores above `score_threshold` are considered.
      iou_threshold: a kept box removes later boxes with IoU above this.
      max_output_size: most indices returned.
    """
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    kept = []
    for index in np.argsort(-scores, kind="stable"):
        if len(kept) == max_output_size or scores[index] <= score_threshold:
            break
        if not kept or np.all(iou_one_to_many(boxes[index], boxes[kept]) <= iou_threshold):
            kept.append(int(index))
    return kept


def per_class_nms(boxes, scores, classes, *, iou_threshold, score_threshold, max_output_size):
    """Greedy NMS within each class, then the `max_output_size` best survivors overall.

    Args:
      boxes: [N, 4] yxyx pixel boxes; scores [N]; classes [N] ints.

    Returns:
      (boxes [M, 4], scores [M], classes [M]) by decreasing score, M <= max_output_size.
    """
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    classes = np.asarray(classes)
    survivors = []
    for class_id in np.unique(classes):
        members = np.flatnonzero(classes == class_id)
        kept = greedy_nms(
            boxes[members],
            scores[members],
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            max_output_size=max_output_size,
        )
        survivors.extend(members[kept])
    survivors = np.asarray(survivors, np.int64)
    order = np.argsort(-scores[survivors], kind="stable")[:max_output_size]
    survivors = survivors[order]
    return boxes[survivors].reshape(-1, 4), scores[survivors], classes[survivors]
