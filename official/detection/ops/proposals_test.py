"""Tests for multilevel proposal generation: hand cases, thresholds, shapes, errors."""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import anchors, box_ops, proposals


@pytest.fixture(autouse=True)
def _fresh_graph():
    with tf.Graph().as_default():
        yield


def _run(fetches):
    with tf.Session() as sess:
        return sess.run(fetches)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# Level 2: a 2 x 2 map with one anchor per cell; level 3: a 1 x 1 map.
ANCHORS = {
    2: np.array(
        [[[0, 0, 10, 10], [0, 1, 10, 11]], [[20, 20, 30, 30], [25, 25, 45, 45]]], np.float32
    ),
    3: np.array([[[0, 1, 10, 11]]], np.float32),
}
# a1 (logit 3) suppresses a0 (IoU 9 / 11); the level-3 copy of a1 survives because NMS
# runs per level. a2 is decoded with dy = 0.1, dh = log 2 to [16, 20, 36, 30].
LOGITS = {2: np.array([[2.0, 3.0], [1.0, 0.0]]), 3: np.array([[2.5]])}
CODES = {2: np.zeros([2, 2, 4], np.float32), 3: np.zeros([1, 1, 4], np.float32)}
CODES[2][1, 0] = [0.1, 0.0, math.log(2.0), 0.0]


def _inputs(batch=1):
    box_outputs = {level: tf.constant(np.stack([CODES[level]] * batch)) for level in (2, 3)}
    score_outputs = {
        level: tf.constant(np.stack([LOGITS[level][..., None]] * batch), tf.float32)
        for level in (2, 3)
    }
    return box_outputs, score_outputs


def _propose(image_shape=((40, 40),), **kwargs):
    box_outputs, score_outputs = _inputs(len(image_shape))
    kwargs.setdefault("post_nms_top_k", 6)
    return _run(
        proposals.generate_proposals(
            box_outputs, score_outputs, ANCHORS, tf.constant(image_shape, tf.float32), **kwargs
        )
    )


def test_hand_case_decode_clip_nms_and_merge():
    out = _propose()
    expected_boxes = [
        [0, 1, 10, 11],  # a1, logit 3
        [0, 1, 10, 11],  # level 3, logit 2.5
        [16, 20, 36, 30],  # a2 decoded, logit 1
        [25, 25, 40, 40],  # a3 clipped to the 40 x 40 image, logit 0
        [-1, -1, -1, -1],
        [-1, -1, -1, -1],
    ]
    np.testing.assert_allclose(out["rois"][0], expected_boxes, atol=1e-5)
    expected_scores = [_sigmoid(3.0), _sigmoid(2.5), _sigmoid(1.0), 0.5, 0.0, 0.0]
    np.testing.assert_allclose(out["roi_scores"][0], expected_scores, rtol=1e-6)
    assert out["num_rois"].tolist() == [4]


def test_clips_each_image_to_its_own_shape():
    out = _propose(image_shape=((40, 40), (30, 28)))
    np.testing.assert_allclose(out["rois"][0, 3], [25, 25, 40, 40])
    np.testing.assert_allclose(out["rois"][1, 3], [25, 25, 30, 28])
    # a2 decoded to [16, 20, 36, 30] is clipped to [16, 20, 30, 28] in the second image.
    np.testing.assert_allclose(out["rois"][1, 2], [16, 20, 30, 28], atol=1e-5)


def test_min_size_drops_small_boxes():
    # Sides: a0, a1, level 3 are 10 x 10, a2 is 20 x 10, a3 (clipped) 15 x 15.
    out = _propose(min_size_threshold=10.0)
    np.testing.assert_allclose(out["rois"][0, 0], [25, 25, 40, 40])
    assert out["num_rois"].tolist() == [1]


def test_empty_boxes_are_dropped_even_without_min_size():
    # An anchor entirely below the image clips to an empty box.
    anchors_outside = dict(ANCHORS)
    anchors_outside[3] = np.array([[[50, 0, 60, 10]]], np.float32)
    box_outputs, score_outputs = _inputs()
    out = _run(
        proposals.generate_proposals(
            box_outputs, score_outputs, anchors_outside, [[40.0, 40.0]], post_nms_top_k=6
        )
    )
    assert out["num_rois"].tolist() == [3]
    assert not np.any(out["rois"][0, :3, 0] >= 40.0)


def test_pre_nms_top_k_is_per_level():
    out = _propose(pre_nms_top_k=1)
    np.testing.assert_allclose(out["rois"][0, :2], [[0, 1, 10, 11], [0, 1, 10, 11]])
    assert out["num_rois"].tolist() == [2]


def test_post_nms_top_k_keeps_the_best_over_all_levels():
    out = _propose(post_nms_top_k=2)
    np.testing.assert_allclose(out["roi_scores"][0], [_sigmoid(3.0), _sigmoid(2.5)], rtol=1e-6)


def test_zero_nms_threshold_turns_nms_off():
    out = _propose(nms_iou_threshold=0.0)
    # a0 (logit 2) is no longer suppressed by a1.
    np.testing.assert_allclose(
        out["roi_scores"][0, :5],
        [_sigmoid(3.0), _sigmoid(2.5), _sigmoid(2.0), _sigmoid(1.0), 0.5],
        rtol=1e-6,
    )
    assert out["num_rois"].tolist() == [5]


def test_score_threshold_drops_low_scores():
    out = _propose(score_threshold=0.6)
    assert out["num_rois"].tolist() == [3]
    assert out["roi_scores"][0, 3] == 0.0


def test_shapes_and_invariants_on_a_real_anchor_grid():
    image_size = (64, 96)
    grid = anchors.Anchors(2, 6, 1, [1.0, 2.0, 0.5], 8.0, image_size)
    rng = np.random.RandomState(0)
    box_outputs, score_outputs = {}, {}
    for level, level_anchors in grid.multilevel_boxes.items():
        height, width, channels = level_anchors.shape.as_list()
        box_outputs[level] = tf.constant(0.2 * rng.randn(2, height, width, channels), tf.float32)
        score_outputs[level] = tf.constant(rng.randn(2, height, width, channels // 4), tf.float32)
    result = proposals.generate_proposals(
        box_outputs,
        score_outputs,
        grid.multilevel_boxes,
        [[64.0, 96.0], [60.0, 80.0]],
        pre_nms_top_k=200,
        post_nms_top_k=300,
    )
    assert result["rois"].shape.as_list() == [2, 300, 4]
    assert result["roi_scores"].shape.as_list() == [2, 300]
    out = _run(result)
    for b, (height, width) in enumerate([(64, 96), (60, 80)]):
        num = out["num_rois"][b]
        assert 0 < num <= 300
        scores, rois = out["roi_scores"][b], out["rois"][b]
        assert np.all(np.diff(scores[:num]) <= 0.0)
        assert np.all(rois[:num] >= 0.0)
        assert np.all(rois[:num, 2] <= height) and np.all(rois[:num, 3] <= width)
        assert np.all(rois[:num, 2] > rois[:num, 0]) and np.all(rois[:num, 3] > rois[:num, 1])
        assert np.all(rois[num:] == -1.0) and np.all(scores[num:] == 0.0)


def test_no_gradient_flows_into_rpn_outputs():
    box_outputs, score_outputs = _inputs()
    result = proposals.generate_proposals(box_outputs, score_outputs, ANCHORS, [[40.0, 40.0]])
    loss = tf.reduce_sum(result["rois"]) + tf.reduce_sum(result["roi_scores"])
    assert tf.gradients(loss, [box_outputs[2], score_outputs[2]]) == [None, None]


def test_decoding_uses_the_shared_codec():
    # Round trip: codes from box_ops.encode_boxes decode back to the boxes.
    target = np.array([[[3.0, 4.0, 17.0, 30.0]]], np.float32)
    anchor = np.array([[[0.0, 0.0, 16.0, 16.0]]], np.float32)
    codes = box_ops.encode_boxes(target, anchor)
    out = _run(
        proposals.generate_proposals(
            {2: tf.reshape(codes, [1, 1, 1, 4])},
            {2: tf.ones([1, 1, 1, 1])},
            {2: anchor},
            [[40.0, 40.0]],
            post_nms_top_k=1,
        )
    )
    np.testing.assert_allclose(out["rois"][0], target[0], atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pre_nms_top_k": 0}, "`pre_nms_top_k` must be an int >= 1; received 0"),
        ({"post_nms_top_k": 1.5}, "`post_nms_top_k` must be an int >= 1; received 1.5"),
        ({"nms_iou_threshold": 1.5}, r"`nms_iou_threshold` must be in \[0, 1\]"),
        ({"score_threshold": 1.0}, r"`score_threshold` must be in \[0, 1\); received 1.0"),
        ({"min_size_threshold": -1.0}, "`min_size_threshold` must be >= 0; received -1.0"),
    ],
)
def test_setting_errors(kwargs, message):
    box_outputs, score_outputs = _inputs()
    with pytest.raises(ValueError, match=message):
        proposals.generate_proposals(box_outputs, score_outputs, ANCHORS, [[40, 40]], **kwargs)


def test_level_errors():
    box_outputs, score_outputs = _inputs()
    with pytest.raises(ValueError, match=r"must cover the same levels; received \[2, 3\], \[2\]"):
        proposals.generate_proposals({2: box_outputs[2]}, score_outputs, ANCHORS, [[40, 40]])
    with pytest.raises(ValueError, match=r"`rpn_box_outputs\[3\]` must be \[B, H, W, 4 \* A\]"):
        bad = {2: box_outputs[2], 3: tf.zeros([1, 1, 1, 8])}
        proposals.generate_proposals(bad, score_outputs, ANCHORS, [[40, 40]])
    with pytest.raises(ValueError, match=r"`rpn_score_outputs\[2\]` must be \[B, H, W, A\]"):
        bad = {2: tf.placeholder(tf.float32, [1, None, 2, 1]), 3: score_outputs[3]}
        proposals.generate_proposals(box_outputs, bad, ANCHORS, [[40, 40]])


def test_tensorflow_tpu_hand_case():
    out = _propose(convention="tensorflow_tpu")
    expected_boxes = [
        [0, 1, 10, 11],
        [0, 1, 10, 11],
        # a2: anchor height 11, centre 25.5; centre 0.1 * 11 + 25.5 = 26.6, height 22:
        # ymin 26.6 - 11, ymax = ymin + 22 - 1.
        [15.6, 20, 36.6, 30],
        [25, 25, 39, 39],  # a3 clipped to 40 - 1
        [0, 0, 0, 0],  # padded rows are zero boxes
        [0, 0, 0, 0],
    ]
    np.testing.assert_allclose(out["rois"][0], expected_boxes, atol=1e-5)
    assert out["num_rois"].tolist() == [4]


@pytest.mark.parametrize(
    "anchor, num_rois",
    [
        ([50, 0, 60, 10], 4),  # clips to [39, 0, 39, 10]: empty, centred below; kept
        ([-20, -20, -10, -10], 3),  # clips to [0, 0, 0, 0]: never kept
    ],
)
def test_tensorflow_tpu_keeps_empty_boxes_without_min_size(anchor, num_rois):
    anchors_outside = dict(ANCHORS)
    anchors_outside[3] = np.array([[anchor]], np.float32)
    box_outputs, score_outputs = _inputs()
    out = _run(
        proposals.generate_proposals(
            box_outputs,
            score_outputs,
            anchors_outside,
            [[40.0, 40.0]],
            post_nms_top_k=6,
            convention="tensorflow_tpu",
        )
    )
    assert out["num_rois"].tolist() == [num_rois]
    if num_rois == 4:
        np.testing.assert_allclose(out["rois"][0, 1], [39, 0, 39, 10])
        np.testing.assert_allclose(out["roi_scores"][0, 1], _sigmoid(2.5), rtol=1e-6)


def test_tensorflow_tpu_min_size_counts_both_end_pixels():
    # Sides a0, a1, level 3: 10 + 1 = 11 > 10, so only NMS removes a0 (consistent keeps
    # just a3, see test_min_size_drops_small_boxes).
    out = _propose(min_size_threshold=10.0, convention="tensorflow_tpu")
    assert out["num_rois"].tolist() == [4]


def test_unknown_convention_error():
    box_outputs, score_outputs = _inputs()
    with pytest.raises(ValueError, match=r"generate_proposals: `convention` must be one of"):
        proposals.generate_proposals(
            box_outputs, score_outputs, ANCHORS, [[40, 40]], convention="tpu"
        )
