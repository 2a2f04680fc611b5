import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib
from official.detection.ops import box_ops, postprocess
from official.detection.testing import nms_reference

IMAGE_SIZE = [64, 64]
LEVELS = (3, 4)
NUM_CLASSES = 4  # background + 3


def _anchors():
    return anchors_lib.Anchors(3, 4, 1, [1.0, 2.0], 4, IMAGE_SIZE)


def _image_info(orig_hw, scale_yx, offset_yx=(0.0, 0.0)):
    scaled = [orig_hw[0] * scale_yx[0], orig_hw[1] * scale_yx[1]]
    return np.array([orig_hw, scaled, scale_yx, offset_yx], np.float32)


def _random_outputs(rng, batch, anchors, logit_mean=-3.0):
    cls_outputs, box_outputs = {}, {}
    num_anchors = anchors.anchors_per_location
    for level, (h, w) in anchors.feature_sizes.items():
        cls_outputs[level] = rng.normal(logit_mean, 2.0, (batch, h, w, num_anchors * NUM_CLASSES))
        box_outputs[level] = rng.normal(0.0, 0.2, (batch, h, w, num_anchors * 4))
    cast = {k: v.astype(np.float32) for k, v in cls_outputs.items()}
    return cast, {k: v.astype(np.float32) for k, v in box_outputs.items()}


def _session_run(fetches, feed=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed)


def _reference(boxes_scaled, scores, image_info, *, pre_nms, max_total, iou, threshold):
    """NumPy pipeline: top pairs, rescale, clip, per-class NMS, pad.

    boxes_scaled: [P, 4] decoded input-image boxes of all (box, class) pairs; scores [P];
    pair p belongs to class p % C + 1 (C foreground classes).
    """
    num_fg = NUM_CLASSES - 1
    order = np.argsort(-scores, kind="stable")[:pre_nms]
    scale = np.tile(image_info[2], 2)
    offset = np.tile(image_info[3], 2)
    boxes = (boxes_scaled[order] + offset) / scale
    limits = np.tile(image_info[0], 2)
    boxes = np.maximum(np.minimum(boxes, limits), 0.0).astype(np.float32)
    ref_boxes, ref_scores, ref_classes = nms_reference.per_class_nms(
        boxes,
        scores[order],
        order % num_fg + 1,
        iou_threshold=iou,
        score_threshold=threshold,
        max_output_size=max_total,
    )
    return ref_boxes, ref_scores, ref_classes


@pytest.mark.parametrize("seed, batched_anchors", [(0, False), (1, True), (2, False)])
def test_generate_detections_matches_numpy_pipeline(seed, batched_anchors):
    rng = np.random.RandomState(seed)
    anchors = _anchors()
    cls_np, box_np = _random_outputs(rng, 2, anchors)
    image_info = np.stack(
        [_image_info([32, 32], [2.0, 2.0]), _image_info([100, 128], [0.64, 0.5], [0, 0])]
    )
    with tf.Graph().as_default():
        anchor_boxes = anchors_lib.generate_anchors(3, 4, 1, [1.0, 2.0], 4, IMAGE_SIZE)
        if batched_anchors:
            anchor_boxes = {k: tf.stack([v, v]) for k, v in anchor_boxes.items()}
        out = postprocess.generate_detections(
            {k: tf.constant(v) for k, v in cls_np.items()},
            {k: tf.constant(v) for k, v in box_np.items()},
            anchor_boxes,
            tf.constant(image_info),
            num_classes=NUM_CLASSES,
            max_total_size=20,
            nms_iou_threshold=0.5,
            score_threshold=0.05,
            pre_nms_num_boxes=150,
        )
        # Reference inputs: every anchor decoded, every score squashed, by the same TF ops.
        logits = anchors_lib.flatten_multilevel(cls_np, NUM_CLASSES)[:, :, 1:]
        decoded = box_ops.decode_boxes(
            anchors_lib.flatten_multilevel(box_np), tf.constant(anchors.boxes_numpy)
        )
        out, scores, decoded = _session_run([out, tf.sigmoid(logits), decoded])
    assert out["detection_boxes"].shape == (2, 20, 4)
    assert out["detection_classes"].dtype == np.int32
    for b in range(2):
        pair_boxes = np.repeat(decoded[b], NUM_CLASSES - 1, axis=0)
        ref_boxes, ref_scores, ref_classes = _reference(
            pair_boxes,
            scores[b].reshape(-1),
            image_info[b],
            pre_nms=150,
            max_total=20,
            iou=0.5,
            threshold=0.05,
        )
        n = out["num_detections"][b]
        assert n == len(ref_scores) > 5
        np.testing.assert_allclose(out["detection_boxes"][b, :n], ref_boxes, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(out["detection_scores"][b, :n], ref_scores, rtol=1e-6)
        np.testing.assert_array_equal(out["detection_classes"][b, :n], ref_classes)
        assert not out["detection_boxes"][b, n:].any()
        assert not out["detection_scores"][b, n:].any()
        assert not out["detection_classes"][b, n:].any()


def _one_hot_outputs(anchors, hot_level, hot_index, hot_class, logit=3.0):
    """All logits -10 except one (anchor, class); all box codes zero."""
    num_anchors = anchors.anchors_per_location
    cls_outputs, box_outputs = {}, {}
    for level, (h, w) in anchors.feature_sizes.items():
        cls = np.full((1, h, w, num_anchors * NUM_CLASSES), -10.0, np.float32)
        if level == hot_level:
            y, x, a = hot_index
            cls[0, y, x, a * NUM_CLASSES + hot_class] = logit
        cls_outputs[level] = tf.constant(cls)
        box_outputs[level] = tf.zeros([1, h, w, num_anchors * 4])
    return cls_outputs, box_outputs


def test_anchor_box_in_2x_scaled_image_maps_to_half_size():
    anchors = _anchors()
    with tf.Graph().as_default():
        cls_outputs, box_outputs = _one_hot_outputs(anchors, 4, (1, 2, 1), hot_class=2)
        out = postprocess.generate_detections(
            cls_outputs,
            box_outputs,
            anchors_lib.generate_anchors(3, 4, 1, [1.0, 2.0], 4, IMAGE_SIZE),
            tf.constant(_image_info([32, 32], [2.0, 2.0])[np.newaxis]),
            num_classes=NUM_CLASSES,
            max_total_size=3,
        )
        out = _session_run(out)
    # Level 4 (stride 16), cell (1, 2), anchor 1 (ratio 2): size 64, h 64/sqrt2, w 64*sqrt2,
    # centred at (24, 40) in the 64 px input; halved in the 32 px original and clipped.
    anchor = anchors.multilevel_boxes_numpy[4][1, 2, 1]
    np.testing.assert_allclose(
        anchor, [24 - 22.627417, 40 - 45.254834, 24 + 22.627417, 40 + 45.254834], rtol=1e-6
    )
    expected = np.clip(anchor / 2.0, 0.0, 32.0)
    assert out["num_detections"].tolist() == [1]
    np.testing.assert_allclose(out["detection_boxes"][0, 0], expected, atol=1e-5)
    np.testing.assert_allclose(
        out["detection_scores"][0], [1 / (1 + np.exp(-3.0)), 0, 0], rtol=1e-6
    )
    assert out["detection_classes"][0].tolist() == [2, 0, 0]
    assert not out["detection_boxes"][0, 1:].any()


def test_crop_offset_is_undone_before_scaling():
    anchors = _anchors()
    with tf.Graph().as_default():
        cls_outputs, box_outputs = _one_hot_outputs(anchors, 3, (3, 3, 0), hot_class=1)
        out = postprocess.generate_detections(
            cls_outputs,
            box_outputs,
            anchors_lib.generate_anchors(3, 4, 1, [1.0, 2.0], 4, IMAGE_SIZE),
            tf.constant(_image_info([100, 100], [2.0, 2.0], [8.0, 16.0])[np.newaxis]),
            num_classes=NUM_CLASSES,
        )
        out = _session_run(out)
    # Level 3 cell (3, 3), ratio 1: anchor [12, 12, 44, 44] of the crop; plus the offset
    # (8, 16) that is [20, 28, 52, 60] in the scaled image, halved in the original.
    np.testing.assert_allclose(out["detection_boxes"][0, 0], [10, 14, 26, 30], atol=1e-5)


def test_score_threshold_and_pre_nms_top_k():
    anchors = _anchors()
    rng = np.random.RandomState(3)
    cls_np, box_np = _random_outputs(rng, 1, anchors, logit_mean=0.0)
    image_info = _image_info([64, 64], [1.0, 1.0])[np.newaxis]
    with tf.Graph().as_default():
        anchor_boxes = anchors_lib.generate_anchors(3, 4, 1, [1.0, 2.0], 4, IMAGE_SIZE)

        def run(**kwargs):
            return postprocess.generate_detections(
                cls_np, box_np, anchor_boxes, image_info, num_classes=NUM_CLASSES, **kwargs
            )

        top_one, high, everything = _session_run(
            [run(pre_nms_num_boxes=1), run(score_threshold=0.99), run(nms_iou_threshold=1.0)]
        )
    foreground = [np.delete(v, np.s_[::NUM_CLASSES], axis=-1) for v in cls_np.values()]
    best = 1 / (1 + np.exp(-max(v.max() for v in foreground)))
    assert top_one["num_detections"].tolist() == [1]
    np.testing.assert_allclose(top_one["detection_scores"][0, 0], best, rtol=1e-6)
    kept = high["detection_scores"][0, : high["num_detections"][0]]
    assert len(kept) > 0 and np.all(kept > 0.99)
    # IoU threshold 1 suppresses nothing, so the 100 best pairs come out in order.
    assert everything["num_detections"].tolist() == [100]
    assert np.all(np.diff(everything["detection_scores"][0]) <= 0)


def test_softmax_scores_and_dynamic_batch():
    anchors = _anchors()
    rng = np.random.RandomState(4)
    cls_np, box_np = _random_outputs(rng, 3, anchors, logit_mean=0.0)
    info = np.stack([_image_info([64, 64], [1.0, 1.0])] * 3)
    with tf.Graph().as_default():
        cls_in = {
            k: tf.placeholder(tf.float32, [None] + list(v.shape[1:])) for k, v in cls_np.items()
        }
        box_in = {
            k: tf.placeholder(tf.float32, [None] + list(v.shape[1:])) for k, v in box_np.items()
        }
        info_in = tf.placeholder(tf.float32, [None, 4, 2])
        out = postprocess.generate_detections(
            cls_in,
            box_in,
            anchors_lib.generate_anchors(3, 4, 1, [1.0, 2.0], 4, IMAGE_SIZE),
            info_in,
            num_classes=NUM_CLASSES,
            max_total_size=10,
            pre_nms_num_boxes=10000,
            use_sigmoid=False,
        )
        probs = tf.nn.softmax(anchors_lib.flatten_multilevel(cls_np, NUM_CLASSES), axis=-1)
        decoded = box_ops.decode_boxes(
            anchors_lib.flatten_multilevel(box_np), tf.constant(anchors.boxes_numpy)
        )
        feed = {cls_in[k]: cls_np[k] for k in cls_np}
        feed.update({box_in[k]: box_np[k] for k in box_np})
        feed[info_in] = info
        out, probs, decoded = _session_run([out, probs, decoded], feed)
    assert out["detection_boxes"].shape == (3, 10, 4)
    for b in range(3):
        ref_boxes, ref_scores, ref_classes = _reference(
            np.repeat(decoded[b], NUM_CLASSES - 1, axis=0),
            probs[b, :, 1:].reshape(-1),
            info[b],
            pre_nms=10000,
            max_total=10,
            iou=0.5,
            threshold=0.05,
        )
        np.testing.assert_allclose(out["detection_scores"][b], ref_scores, rtol=1e-6)
        np.testing.assert_array_equal(out["detection_classes"][b], ref_classes)
        np.testing.assert_allclose(out["detection_boxes"][b], ref_boxes, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("class_specific", [True, False])
def test_rcnn_detections_match_numpy_pipeline(class_specific):
    rng = np.random.RandomState(5)
    batch, num_rois = 2, 40
    centres = rng.uniform(10, 90, (batch, num_rois, 2))
    sizes = rng.uniform(10, 40, (batch, num_rois, 2))
    rois = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    logits = rng.normal(0, 2, (batch, num_rois, NUM_CLASSES)).astype(np.float32)
    channels = NUM_CLASSES * 4 if class_specific else 4
    codes = rng.normal(0, 0.5, (batch, num_rois, channels)).astype(np.float32)
    info = np.stack([_image_info([50, 50], [2.0, 2.0]), _image_info([100, 80], [1.0, 1.25])])
    with tf.Graph().as_default():
        out = postprocess.generate_detections_from_rcnn(
            logits, codes, rois, info, max_total_size=15, pre_nms_num_boxes=60
        )
        probs = tf.nn.softmax(logits, axis=-1)[:, :, 1:]
        per_class = (
            codes.reshape(batch, num_rois, -1, 4)[:, :, 1:] if class_specific else codes[:, :, None]
        )
        decoded = box_ops.decode_boxes(
            np.broadcast_to(per_class, (batch, num_rois, NUM_CLASSES - 1, 4)),
            rois[:, :, None, :],
            weights=postprocess.RCNN_BOX_WEIGHTS,
        )
        out, probs, decoded = _session_run([out, probs, decoded])
    for b in range(batch):
        ref_boxes, ref_scores, ref_classes = _reference(
            decoded[b].reshape(-1, 4),
            probs[b].reshape(-1),
            info[b],
            pre_nms=60,
            max_total=15,
            iou=0.5,
            threshold=0.05,
        )
        n = out["num_detections"][b]
        assert n == len(ref_scores) > 3
        np.testing.assert_allclose(out["detection_boxes"][b, :n], ref_boxes, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(out["detection_scores"][b, :n], ref_scores, rtol=1e-6)
        np.testing.assert_array_equal(out["detection_classes"][b, :n], ref_classes)


def test_rcnn_zero_codes_return_the_roi_in_original_pixels():
    rois = np.array([[[10, 20, 50, 60], [0, 0, 8, 8]]], np.float32)
    logits = np.full((1, 2, 3), -5.0, np.float32)
    logits[0, 0, 2] = 5.0  # roi 0 is class 2
    logits[0, 1, 0] = 5.0  # roi 1 is background
    with tf.Graph().as_default():
        out = postprocess.generate_detections_from_rcnn(
            logits, np.zeros((1, 2, 12), np.float32), rois, _image_info([40, 40], [2, 2])[None]
        )
        out = _session_run(out)
    assert out["num_detections"].tolist() == [1]
    np.testing.assert_allclose(out["detection_boxes"][0, 0], [5, 10, 25, 30], atol=1e-5)
    assert out["detection_classes"][0, 0] == 2


def test_box_mapping_round_trip():
    boxes = np.array([[[1.5, 2.0, 30.0, 40.0]], [[0.0, 0.0, 10.0, 10.0]]], np.float32)
    info = np.stack([_image_info([50, 60], [1.6, 0.8], [4, 2]), _image_info([20, 20], [3, 3])])
    with tf.Graph().as_default():
        back = postprocess.boxes_to_original_image(
            postprocess.boxes_to_input_image(boxes, info), info
        )
        np.testing.assert_allclose(_session_run(back), boxes, rtol=1e-6)


def _multilevel(channels_cls=8, channels_box=8):
    cls = {3: tf.zeros([1, 2, 2, channels_cls])}
    box = {3: tf.zeros([1, 2, 2, channels_box])}
    anchors = {3: tf.zeros([2, 2, 8])}
    return cls, box, anchors


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(num_classes=1), r"`num_classes` must be an int >= 2"),
        (dict(pre_nms_num_boxes=0), r"`pre_nms_num_boxes` must be a positive int; received 0"),
        (dict(max_total_size=2.5), r"`max_total_size` must be a positive int"),
        (dict(score_threshold=1.0), r"`score_threshold` must be in \[0, 1\); received 1.0"),
        (
            dict(box_channels=12),
            r"level 3 must have A \* num_classes class channels and A \* 4 "
            r"box channels \(num_classes=4\); received 8 and 12",
        ),
        (dict(levels=True), r"same, non-empty set of levels; received \[3\], \[3, 4\]"),
        (dict(image_info=[2, 4]), r"`image_info` must be \[batch, 4, 2\].*received shape \[2, 4\]"),
    ],
)
def test_generate_detections_errors(change, message):
    with tf.Graph().as_default():
        cls, box, anchors = _multilevel(channels_box=change.pop("box_channels", 8))
        if change.pop("levels", False):
            box[4] = box[3]
        image_info = tf.zeros(change.pop("image_info", [1, 4, 2]))
        kwargs = dict(dict(num_classes=4), **change)
        with pytest.raises(ValueError, match=message):
            postprocess.generate_detections(cls, box, anchors, image_info, **kwargs)


def test_rcnn_errors():
    with tf.Graph().as_default():
        info = tf.zeros([1, 4, 2])
        with pytest.raises(ValueError, match=r"`class_outputs` must be \[batch, num_rois, "):
            postprocess.generate_detections_from_rcnn(
                tf.zeros([1, 5]), tf.zeros([1, 5, 4]), tf.zeros([1, 5, 4]), info
            )
        with pytest.raises(
            ValueError,
            match=r"\[batch, num_rois, 4 \* num_classes\] "
            r"\(num_classes=3\) or \[batch, num_rois, 4\]; received shape \[1, 5, 8\]",
        ):
            postprocess.generate_detections_from_rcnn(
                tf.zeros([1, 5, 3]), tf.zeros([1, 5, 8]), tf.zeros([1, 5, 4]), info
            )


def test_boxes_to_original_image_in_both_conventions():
    boxes = np.array([[[-4, 10, 130, 90]]], np.float32)
    info = _image_info([50, 60], [2.0, 2.0])[None]  # scaled image 100 x 120
    with tf.Graph().as_default():
        consistent, tpu = _session_run(
            [
                postprocess.boxes_to_original_image(boxes, info),
                postprocess.boxes_to_original_image(boxes, info, convention="tensorflow_tpu"),
            ]
        )
    # consistent: halved to [-2, 5, 65, 45], then clipped to the 50 x 60 original.
    np.testing.assert_allclose(consistent, [[[0, 5, 50, 45]]])
    # tensorflow_tpu: clipped to the scaled image first, [0, 10, 99, 90], then halved.
    np.testing.assert_allclose(tpu, [[[0, 5, 49.5, 45]]])


def test_rcnn_detections_in_the_tpu_convention():
    rois = np.array([[[10, 20, 29, 59], [0, 0, 8, 8]]], np.float32)
    logits = np.full((1, 2, 3), -5.0, np.float32)
    logits[0, 0, 1] = 5.0
    logits[0, 1, 0] = 5.0
    codes = np.zeros((1, 2, 12), np.float32)
    # Class 1 of roi 0: (dy, dx, dh, dw) = (0.5, -0.25, log 2, 0) times (10, 10, 5, 5).
    codes[0, 0, 4:8] = [5.0, -2.5, 5.0 * np.log(2.0), 0.0]
    with tf.Graph().as_default():
        out = postprocess.generate_detections_from_rcnn(
            logits,
            codes,
            rois,
            _image_info([40, 40], [1, 1])[None],
            convention="tensorflow_tpu",
        )
        out = _session_run(out)
    # Decoded to [10, 10, 49, 49] (see box_ops_test), clipped to 40 - 1.
    assert out["num_detections"].tolist() == [1]
    np.testing.assert_allclose(out["detection_boxes"][0, 0], [10, 10, 39, 39], atol=1e-5)
    assert out["detection_classes"][0, 0] == 1


def test_unknown_convention_errors():
    with tf.Graph().as_default():
        cls, box, anchors = _multilevel()
        info = tf.zeros([1, 4, 2])
        with pytest.raises(ValueError, match=r"generate_detections: `convention` must be one"):
            postprocess.generate_detections(
                cls, box, anchors, info, num_classes=4, convention="tpu"
            )
        with pytest.raises(ValueError, match=r"generate_detections_from_rcnn: `convention`"):
            postprocess.generate_detections_from_rcnn(
                tf.zeros([1, 5, 3]), tf.zeros([1, 5, 4]), tf.zeros([1, 5, 4]), info, convention=""
            )
