"""Tests for the Faster / Mask R-CNN losses, against NumPy and hand-computed values."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.losses import rcnn_losses


def _run(build):
    """Runs the tensor returned by `build()`, built in a fresh graph."""
    with tf.Graph().as_default(), tf.Session() as session:
        return session.run(build())


def _constant_dict(values, dtype):
    return {level: tf.constant(v, dtype) for level, v in values.items()}


def _sigmoid_cross_entropy(labels, logits):
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def _huber(error, delta):
    error = np.abs(error)
    return np.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta))


def test_rpn_score_loss_hand_computed():
    # One image, one level, four anchors: positive, negative, not sampled x 2.
    logits = {2: np.array([[[[0.0, 2.0, 5.0, -7.0]]]], np.float32)}
    targets = {2: np.array([[[[1, 0, -1, -1]]]], np.int32)}
    loss = _run(
        lambda: rcnn_losses.rpn_score_loss(
            _constant_dict(logits, tf.float32),
            _constant_dict(targets, tf.int32),
            rpn_batch_size_per_im=4,
        )
    )
    # (log 2 + log(1 + e^2)) / (1 image * 4 sampled anchors).
    assert loss == pytest.approx((np.log(2.0) + np.log1p(np.exp(2.0))) / 4.0, rel=1e-6)


def test_rpn_score_loss_matches_numpy_over_levels():
    rng = np.random.RandomState(0)
    logits = {level: rng.randn(2, 8 // 2**level, 8 // 2**level, 3) * 3 for level in (1, 2, 3)}
    targets = {level: rng.randint(-1, 2, size=v.shape) for level, v in logits.items()}
    loss = _run(
        lambda: rcnn_losses.rpn_score_loss(
            _constant_dict(logits, tf.float32), _constant_dict(targets, tf.int32)
        )
    )
    total = sum(
        (_sigmoid_cross_entropy(targets[level] == 1, logits[level]) * (targets[level] >= 0)).sum()
        for level in logits
    )
    # Normalised by batch size 2 times the default 256 sampled anchors.
    assert loss == pytest.approx(total / 512.0, rel=1e-5)


def test_rpn_score_loss_ignores_every_target_outside_0_and_1():
    logits = {2: np.full([1, 2, 2, 1], 3.0, np.float32)}
    targets = {2: np.array([-1, -2, 2, 7]).reshape(1, 2, 2, 1)}
    loss = _run(
        lambda: rcnn_losses.rpn_score_loss(
            _constant_dict(logits, tf.float32), _constant_dict(targets, tf.int32)
        )
    )
    assert loss == 0.0


def test_rpn_box_loss_is_averaged_per_level():
    delta = 1.0 / 9.0
    # Level 2: two non-zero targets, errors 0.05 (quadratic) and 0.5 (linear).
    # Level 3: one non-zero target, error 0.1 (quadratic). Level 4: no positives at all.
    outputs = {
        2: np.array([[[[0.05, 0.0, 0.0, 1.0]]]], np.float32),
        3: np.array([[[[0.3, 9.0, 0.0, 0.0]]]], np.float32),
        4: np.array([[[[4.0, 4.0, 4.0, 4.0]]]], np.float32),
    }
    targets = {
        2: np.array([[[[0.1, 0.0, 0.0, 0.5]]]], np.float32),
        3: np.array([[[[0.2, 0.0, 0.0, 0.0]]]], np.float32),
        4: np.zeros([1, 1, 1, 4], np.float32),
    }
    loss = _run(
        lambda: rcnn_losses.rpn_box_loss(
            _constant_dict(outputs, tf.float32), _constant_dict(targets, tf.float32)
        )
    )
    level2 = (0.5 * 0.05**2 + delta * (0.5 - 0.5 * delta)) / 2.0
    level3 = 0.5 * 0.1**2 / 1.0
    assert loss == pytest.approx(level2 + level3, rel=1e-5)


def test_rpn_box_loss_equals_the_ancestors_reduction():
    rng = np.random.RandomState(1)
    outputs = {level: rng.randn(2, 4, 4, 12).astype(np.float32) for level in (2, 3)}
    targets = {
        level: (rng.randn(2, 4, 4, 12) * (rng.rand(2, 4, 4, 12) > 0.7)).astype(np.float32)
        for level in (2, 3)
    }
    with tf.Graph().as_default(), tf.Session() as session:
        loss = rcnn_losses.rpn_box_loss(
            _constant_dict(outputs, tf.float32), _constant_dict(targets, tf.float32), delta=0.2
        )
        ancestor = tf.add_n(
            [
                tf.losses.huber_loss(
                    targets[level],
                    outputs[level],
                    weights=tf.cast(tf.not_equal(targets[level], 0.0), tf.float32),
                    delta=0.2,
                    reduction=tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
                )
                for level in (2, 3)
            ]
        )
        got, want = session.run([loss, ancestor])
    assert got == pytest.approx(want, rel=1e-5)


def test_rpn_box_loss_without_positives_is_zero():
    outputs = {2: np.ones([2, 3, 3, 8], np.float32)}
    targets = {2: np.zeros([2, 3, 3, 8], np.float32)}
    loss = _run(
        lambda: rcnn_losses.rpn_box_loss(
            _constant_dict(outputs, tf.float32), _constant_dict(targets, tf.float32)
        )
    )
    assert loss == 0.0


def test_fast_rcnn_class_loss_matches_numpy():
    rng = np.random.RandomState(2)
    logits = rng.randn(2, 5, 4).astype(np.float32) * 2
    targets = rng.randint(0, 4, size=[2, 5])
    loss = _run(lambda: rcnn_losses.fast_rcnn_class_loss(tf.constant(logits), tf.constant(targets)))
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_softmax, targets[..., None], axis=-1).mean()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_fast_rcnn_class_loss_hand_computed():
    # Uniform logits over 4 classes: -log(1/4) per RoI, background RoIs included.
    loss = _run(
        lambda: rcnn_losses.fast_rcnn_class_loss(
            tf.zeros([1, 3, 4]), tf.constant([[0, 2, 3]], tf.int32)
        )
    )
    assert loss == pytest.approx(np.log(4.0), rel=1e-6)


def test_fast_rcnn_box_loss_uses_the_target_class_box_of_foreground_rois():
    # 3 classes: each RoI predicts boxes (k, k, k, k) * 0.1 for class k, plus an offset.
    box_outputs = np.tile(np.repeat(np.arange(3.0), 4) * 0.1, [1, 3, 1]).astype(np.float32)
    box_outputs[0, 2] += 10.0  # Background RoI: ignored whatever it predicts.
    class_targets = np.array([[1, 2, 0]], np.int32)
    box_targets = np.zeros([1, 3, 4], np.float32)
    box_targets[0, 1] = [0.2, 0.2, 2.2, 0.2]
    loss = _run(
        lambda: rcnn_losses.fast_rcnn_box_loss(
            tf.constant(box_outputs), tf.constant(class_targets), tf.constant(box_targets)
        )
    )
    # RoI 0 (class 1): errors 0.1 x 4; RoI 1 (class 2): errors 0, 0, 2, 0; delta 1.
    expected = (4 * 0.5 * 0.1**2 + (2.0 - 0.5)) / (2 * 4)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_fast_rcnn_box_loss_matches_numpy_and_the_ancestors_reduction():
    rng = np.random.RandomState(3)
    num_classes = 5
    box_outputs = rng.randn(2, 6, num_classes * 4).astype(np.float32)
    class_targets = rng.randint(0, num_classes, size=[2, 6]).astype(np.int32)
    box_targets = rng.randn(2, 6, 4).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as session:
        loss = rcnn_losses.fast_rcnn_box_loss(
            tf.constant(box_outputs),
            tf.constant(class_targets),
            tf.constant(box_targets),
            delta=0.5,
        )
        selected = np.take_along_axis(
            box_outputs.reshape(2, 6, num_classes, 4), class_targets[..., None, None], axis=2
        )[:, :, 0]
        ancestor = tf.losses.huber_loss(
            box_targets,
            selected,
            weights=np.tile((class_targets > 0)[..., None], [1, 1, 4]).astype(np.float32),
            delta=0.5,
            reduction=tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
        )
        got, want = session.run([loss, ancestor])
    foreground = class_targets > 0
    expected = _huber(selected - box_targets, 0.5)[foreground].sum() / (4 * foreground.sum())
    assert got == pytest.approx(expected, rel=1e-5)
    assert got == pytest.approx(want, rel=1e-5)


def test_fast_rcnn_box_loss_class_agnostic():
    box_outputs = np.array([[[0.0, 0.0, 0.0, 3.0], [5.0, 5.0, 5.0, 5.0]]], np.float32)
    loss = _run(
        lambda: rcnn_losses.fast_rcnn_box_loss(
            tf.constant(box_outputs),
            tf.constant([[4, 0]]),
            tf.zeros([1, 2, 4]),
            class_agnostic=True,
        )
    )
    assert loss == pytest.approx((3.0 - 0.5) / 4.0, rel=1e-6)


def test_fast_rcnn_box_loss_without_foreground_is_zero():
    loss = _run(
        lambda: rcnn_losses.fast_rcnn_box_loss(
            tf.ones([2, 4, 12]), tf.zeros([2, 4], tf.int32), tf.zeros([2, 4, 4])
        )
    )
    assert loss == 0.0


def test_mask_loss_matches_numpy():
    rng = np.random.RandomState(4)
    mask_outputs = rng.randn(2, 3, 4, 4).astype(np.float32) * 3
    mask_targets = (rng.rand(2, 3, 4, 4) > 0.5).astype(np.float32)
    mask_class_targets = np.array([[3, 0, 1], [0, 0, 7]], np.int32)
    with tf.Graph().as_default(), tf.Session() as session:
        loss = rcnn_losses.mask_loss(
            tf.constant(mask_outputs), tf.constant(mask_targets), tf.constant(mask_class_targets)
        )
        ancestor = tf.losses.sigmoid_cross_entropy(
            mask_targets,
            mask_outputs,
            weights=np.tile((mask_class_targets > 0)[..., None, None], [1, 1, 4, 4]),
            reduction=tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
        )
        got, want = session.run([loss, ancestor])
    foreground = mask_class_targets > 0
    expected = _sigmoid_cross_entropy(mask_targets, mask_outputs)[foreground].mean()
    assert got == pytest.approx(expected, rel=1e-5)
    assert got == pytest.approx(want, rel=1e-5)


def test_mask_loss_hand_computed_and_without_foreground():
    # Logit 0 everywhere: log 2 per pixel, whatever the (soft) target.
    loss = _run(
        lambda: rcnn_losses.mask_loss(
            tf.zeros([1, 2, 3, 3]), tf.fill([1, 2, 3, 3], 0.25), tf.constant([[1, 0]])
        )
    )
    assert loss == pytest.approx(np.log(2.0), rel=1e-6)
    empty = _run(
        lambda: rcnn_losses.mask_loss(
            tf.ones([1, 2, 3, 3]), tf.ones([1, 2, 3, 3]), tf.zeros([1, 2], tf.int32)
        )
    )
    assert empty == 0.0


def _model_tensors(with_masks):
    rng = np.random.RandomState(5)
    tensors = {
        "rpn_score_outputs": {2: tf.constant(rng.randn(1, 2, 2, 3), tf.float32)},
        "rpn_box_outputs": {2: tf.constant(rng.randn(1, 2, 2, 12), tf.float32)},
        "rpn_score_targets": {2: tf.constant(rng.randint(-1, 2, [1, 2, 2, 3]), tf.int32)},
        "rpn_box_targets": {2: tf.constant(rng.randn(1, 2, 2, 12), tf.float32)},
        "class_outputs": tf.constant(rng.randn(1, 4, 3), tf.float32),
        "box_outputs": tf.constant(rng.randn(1, 4, 12), tf.float32),
        "class_targets": tf.constant([[0, 1, 2, 1]], tf.int32),
        "box_targets": tf.constant(rng.randn(1, 4, 4), tf.float32),
    }
    if with_masks:
        tensors.update(
            mask_outputs=tf.constant(rng.randn(1, 2, 4, 4), tf.float32),
            mask_targets=tf.constant(rng.rand(1, 2, 4, 4) > 0.5, tf.float32),
            mask_class_targets=tf.constant([[1, 0]], tf.int32),
        )
    return tensors


@pytest.mark.parametrize("with_masks", [False, True])
def test_maskrcnn_losses_total_is_the_sum_of_the_parts(with_masks):
    with tf.Graph().as_default(), tf.Session() as session:
        tensors = _model_tensors(with_masks)
        losses = session.run(rcnn_losses.maskrcnn_losses(**tensors))
        single = session.run(
            {
                "rpn_score_loss": rcnn_losses.rpn_score_loss(
                    tensors["rpn_score_outputs"], tensors["rpn_score_targets"]
                ),
                "fast_rcnn_box_loss": rcnn_losses.fast_rcnn_box_loss(
                    tensors["box_outputs"], tensors["class_targets"], tensors["box_targets"]
                ),
            }
        )
    parts = ["rpn_score_loss", "rpn_box_loss", "fast_rcnn_class_loss", "fast_rcnn_box_loss"]
    if with_masks:
        parts.append("mask_loss")
    assert sorted(losses) == sorted(parts + ["model_loss"])
    assert losses["model_loss"] == pytest.approx(sum(losses[p] for p in parts), rel=1e-6)
    for name, value in single.items():
        assert losses[name] == pytest.approx(value, rel=1e-6)


def test_maskrcnn_losses_needs_all_mask_tensors():
    with tf.Graph().as_default():
        tensors = _model_tensors(with_masks=True)
        del tensors["mask_targets"]
        with pytest.raises(
            ValueError,
            match=r"mask_outputs, mask_targets and mask_class_targets go together; "
            r"got only \['mask_outputs', 'mask_class_targets'\]",
        ):
            rcnn_losses.maskrcnn_losses(**tensors)


@pytest.mark.parametrize("fn", [rcnn_losses.rpn_score_loss, rcnn_losses.rpn_box_loss])
def test_rpn_losses_level_errors(fn):
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"no levels given"):
            fn({}, {})
        with pytest.raises(
            ValueError, match=r"same levels; got output levels \[2, 3\] and target levels \[2\]"
        ):
            fn({2: tf.zeros([1, 2, 2, 4]), 3: tf.zeros([1, 1, 1, 4])}, {2: tf.zeros([1, 2, 2, 4])})
        with pytest.raises(
            ValueError, match=r"level 2 outputs \[1, 2, 2, 4\] and targets \[1, 2, 2, 8\]"
        ):
            fn({2: tf.zeros([1, 2, 2, 4])}, {2: tf.zeros([1, 2, 2, 8])})


@pytest.mark.parametrize("value", [0, 2.5, True])
def test_rpn_score_loss_bad_batch_size_raises(value):
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"rpn_batch_size_per_im must be a positive int; got"):
            rcnn_losses.rpn_score_loss(
                {2: tf.zeros([1, 1, 1, 1])},
                {2: tf.zeros([1, 1, 1, 1])},
                rpn_batch_size_per_im=value,
            )


def test_fast_rcnn_loss_shape_errors():
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError, match=r"fast_rcnn_class_loss: class_outputs must have rank 3"
        ):
            rcnn_losses.fast_rcnn_class_loss(tf.zeros([4, 3]), tf.zeros([1, 4], tf.int32))
        with pytest.raises(ValueError, match=r"needs a static class dimension"):
            rcnn_losses.fast_rcnn_class_loss(
                tf.placeholder(tf.float32, [1, 4, None]), tf.zeros([1, 4], tf.int32)
            )
        with pytest.raises(
            ValueError, match=r"class-agnostic box_outputs must end in 4; got shape \[1, 4, 12\]"
        ):
            rcnn_losses.fast_rcnn_box_loss(
                tf.zeros([1, 4, 12]),
                tf.zeros([1, 4], tf.int32),
                tf.zeros([1, 4, 4]),
                class_agnostic=True,
            )
        with pytest.raises(ValueError, match=r"last dimension K \* 4; got shape \[1, 4, 10\]"):
            rcnn_losses.fast_rcnn_box_loss(
                tf.zeros([1, 4, 10]), tf.zeros([1, 4], tf.int32), tf.zeros([1, 4, 4])
            )
        with pytest.raises(ValueError, match=r"box_targets must have rank 3; got shape \[4, 4\]"):
            rcnn_losses.fast_rcnn_box_loss(
                tf.zeros([1, 4, 12]), tf.zeros([1, 4], tf.int32), tf.zeros([4, 4])
            )


def test_mask_loss_shape_errors():
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"mask_outputs \[1, 2, 28, 28\] and mask_targets \[1, 2, 14, 14\] must have "
            r"the same shape",
        ):
            rcnn_losses.mask_loss(
                tf.zeros([1, 2, 28, 28]), tf.zeros([1, 2, 14, 14]), tf.zeros([1, 2], tf.int32)
            )
        with pytest.raises(
            ValueError, match=r"mask_class_targets must have rank 2; got shape \[2\]"
        ):
            rcnn_losses.mask_loss(tf.zeros([1, 2, 4, 4]), tf.zeros([1, 2, 4, 4]), tf.zeros([2]))
