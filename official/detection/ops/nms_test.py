import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import nms
from official.detection.testing import nms_reference


def _run(fn, *arrays):
    with tf.Graph().as_default():
        placeholders = [
            tf.placeholder(tf.as_dtype(a.dtype), [None] + list(a.shape[1:])) for a in arrays
        ]
        outputs = fn(*placeholders)
        with tf.Session() as sess:
            return sess.run(outputs, dict(zip(placeholders, arrays)))


def _clustered_boxes(rng, num_boxes, image_size=200.0):
    """Boxes around a few centres, so that many pairs overlap near the NMS threshold."""
    centres = rng.uniform(30, image_size - 30, (6, 2))
    centre = centres[rng.randint(0, 6, num_boxes)] + rng.normal(0, 8, (num_boxes, 2))
    size = rng.uniform(10, 60, (num_boxes, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return np.clip(boxes, 0, image_size).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_single_class_nms_equals_greedy_reference(seed):
    rng = np.random.RandomState(seed)
    boxes = np.stack([_clustered_boxes(rng, 300) for _ in range(2)])
    scores = rng.uniform(0, 1, (2, 300)).astype(np.float32)
    indices, num_valid = _run(
        lambda b, s: nms.non_max_suppression_padded(
            b, s, max_output_size=50, iou_threshold=0.5, score_threshold=0.1
        ),
        boxes,
        scores,
    )
    assert indices.shape == (2, 50)
    for b in range(2):
        expected = nms_reference.greedy_nms(
            boxes[b], scores[b], iou_threshold=0.5, score_threshold=0.1, max_output_size=50
        )
        assert num_valid[b] == len(expected)
        assert list(indices[b, : num_valid[b]]) == expected
        assert np.all(indices[b, num_valid[b] :] == 0)


def test_single_class_nms_keeps_empty_boxes_once():
    boxes = np.array(
        [
            [
                [149, 127, 212, 127],  # empty (zero width), best score
                [149, 127, 212, 127],  # the same empty box again
                [10, 10, 20, 20],
                [11, 10, 21, 20],  # IoU 9 / 11 with the box above: suppressed
                [5, 5, 5, 9],  # empty, below the score threshold
            ]
        ],
        np.float32,
    )
    scores = np.array([[0.9, 0.9, 0.8, 0.7, 0.05]], np.float32)
    indices, num_valid = _run(
        lambda b, s: nms.non_max_suppression_padded(
            b, s, max_output_size=4, iou_threshold=0.5, score_threshold=0.1
        ),
        boxes,
        scores,
    )
    # Each index once (TF 1.15's kernel alone gives [0, 0, 0, 0]).
    assert num_valid.tolist() == [3]
    assert indices.tolist() == [[0, 1, 2, 0]]
    indices, num_valid = _run(
        lambda b, s: nms.non_max_suppression_padded(b, s, max_output_size=2, iou_threshold=0.5),
        boxes,
        scores,
    )
    assert indices.tolist() == [[0, 1]] and num_valid.tolist() == [2]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_class_aware_nms_equals_per_class_reference(seed):
    rng = np.random.RandomState(seed)
    num_boxes, num_classes = 400, 5
    boxes = np.stack([_clustered_boxes(rng, num_boxes) for _ in range(2)])
    scores = rng.uniform(0, 1, (2, num_boxes)).astype(np.float32)
    classes = rng.randint(0, num_classes, (2, num_boxes)).astype(np.int32)
    result = _run(
        lambda b, s, c: nms.class_aware_non_max_suppression(
            b,
            s,
            c,
            num_classes=num_classes,
            max_output_size=60,
            iou_threshold=0.5,
            score_threshold=0.05,
        ),
        boxes,
        scores,
        classes,
    )
    for b in range(2):
        ref_boxes, ref_scores, ref_classes = nms_reference.per_class_nms(
            boxes[b],
            scores[b],
            classes[b],
            iou_threshold=0.5,
            score_threshold=0.05,
            max_output_size=60,
        )
        n = result["num_valid"][b]
        assert n == len(ref_scores) == 60  # enough survivors: the top-k cut is exercised
        np.testing.assert_array_equal(result["boxes"][b, :n], ref_boxes)
        np.testing.assert_array_equal(result["scores"][b, :n], ref_scores)
        np.testing.assert_array_equal(result["classes"][b, :n], ref_classes)


def test_class_aware_nms_suppresses_within_a_class_only():
    box = [10.0, 10.0, 50.0, 50.0]
    boxes = np.array([[box, box, box, [12.0, 12.0, 52.0, 52.0]]], np.float32)
    scores = np.array([[0.9, 0.8, 0.7, 0.6]], np.float32)
    classes = np.array([[3, 3, 7, 7]], np.int32)
    result = _run(
        lambda b, s, c: nms.class_aware_non_max_suppression(
            b, s, c, num_classes=8, max_output_size=4, iou_threshold=0.5
        ),
        boxes,
        scores,
        classes,
    )
    # Identical boxes of classes 3 and 7 both survive; each class keeps only its best.
    assert result["num_valid"].tolist() == [2]
    np.testing.assert_allclose(result["scores"][0], [0.9, 0.7, 0.0, 0.0])
    assert result["classes"][0].tolist() == [3, 7, 0, 0]
    np.testing.assert_array_equal(result["boxes"][0, :2], [box, box])
    np.testing.assert_array_equal(result["boxes"][0, 2:], np.zeros((2, 4)))


def test_class_aware_nms_score_threshold_is_exclusive_and_pads_with_zeros():
    boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]], np.float32)
    scores = np.array([[0.3, 0.2, 0.5]], np.float32)
    classes = np.array([[1, 1, 2]], np.int32)
    result = _run(
        lambda b, s, c: nms.class_aware_non_max_suppression(
            b, s, c, num_classes=3, max_output_size=5, score_threshold=0.2
        ),
        boxes,
        scores,
        classes,
    )
    assert result["num_valid"].tolist() == [2]
    np.testing.assert_allclose(result["scores"][0], [0.5, 0.3, 0, 0, 0])
    assert result["classes"][0].tolist() == [2, 1, 0, 0, 0]
    np.testing.assert_array_equal(result["boxes"][0, 1], [0, 0, 10, 10])
    assert not result["boxes"][0, 2:].any()


def test_class_aware_nms_with_no_box_above_threshold():
    boxes = np.array([[[0, 0, 10, 10]], [[5, 5, 9, 9]]], np.float32)
    scores = np.array([[0.01], [0.02]], np.float32)
    classes = np.zeros((2, 1), np.int32)
    result = _run(
        lambda b, s, c: nms.class_aware_non_max_suppression(
            b, s, c, num_classes=1, max_output_size=3, score_threshold=0.05
        ),
        boxes,
        scores,
        classes,
    )
    assert result["num_valid"].tolist() == [0, 0]
    assert not result["boxes"].any() and not result["scores"].any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_output_size=0), "`max_output_size` must be a positive Python int; received 0"),
        (dict(max_output_size=5, iou_threshold=1.5), r"`iou_threshold` must be in \[0, 1\]"),
        (dict(max_output_size=5, score_threshold=float("nan")), "received NaN"),
        (dict(max_output_size=5, score_threshold=-0.5), "must be >= 0"),
        (dict(max_output_size=5, num_classes=0), "`num_classes` must be a positive"),
    ],
)
def test_class_aware_nms_argument_errors(kwargs, message):
    kwargs = dict(dict(num_classes=3), **kwargs)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=message):
            nms.class_aware_non_max_suppression(
                tf.zeros([1, 2, 4]), tf.zeros([1, 2]), tf.zeros([1, 2], tf.int32), **kwargs
            )


def test_shape_errors_name_the_argument():
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"`boxes` must be \[batch, num_boxes, 4\]; "
            r"received shape \[2, 4\]",
        ):
            nms.non_max_suppression_padded(tf.zeros([2, 4]), tf.zeros([1, 2]), max_output_size=3)
        with pytest.raises(ValueError, match=r"`scores` must be \[batch, num_boxes\]"):
            nms.non_max_suppression_padded(tf.zeros([1, 2, 4]), tf.zeros([2]), max_output_size=3)
