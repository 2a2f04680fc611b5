"""Tests for the RetinaNet focal and box losses."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.losses import retinanet_losses as losses


def _run(fetches, feed=None):
    with tf.Session() as session:
        return session.run(fetches, feed)


def _numpy_focal(logits, targets, alpha, gamma):
    """Textbook form: -alpha_t * (1 - p_t)**gamma * log(p_t)."""
    p = 1.0 / (1.0 + np.exp(-logits))
    p_t = np.where(targets == 1, p, 1.0 - p)
    alpha_t = np.where(targets == 1, alpha, 1.0 - alpha)
    return -alpha_t * (1.0 - p_t) ** gamma * np.log(p_t)


def test_focal_loss_two_anchors_three_classes():
    logits = np.array([[0.0, 2.0, -1.0], [-3.0, 1.0, 0.5]], np.float32)
    # Anchor 0 is class 1; anchor 1 is a negative for all classes.
    targets = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    with tf.Graph().as_default():
        loss = _run(losses.focal_loss(tf.constant(logits), tf.constant(targets), 0.25, 1.5, 2.0))
    np.testing.assert_allclose(loss, _numpy_focal(logits, targets, 0.25, 1.5) / 2.0, rtol=1e-5)
    # By hand, logit 0 (p = 0.5): positive 0.25 * 0.5**1.5 * ln 2 = 0.0612661,
    # negative 0.75 * 0.5**1.5 * ln 2 = 0.1837984; halved by the normalizer.
    np.testing.assert_allclose(loss[0, 0], 0.1837984 / 2, rtol=1e-5)
    with tf.Graph().as_default():
        positive_at_zero = _run(losses.focal_loss(tf.zeros([1]), tf.ones([1]), 0.25, 1.5, 1.0))
    np.testing.assert_allclose(positive_at_zero, [0.0612661], rtol=1e-5)


def test_focal_loss_is_finite_with_finite_gradients_for_extreme_logits():
    with tf.Graph().as_default():
        logits = tf.constant([-100.0, 100.0, 100.0, -100.0])
        targets = tf.constant([1.0, 0.0, 1.0, 0.0])
        loss = losses.focal_loss(logits, targets, 0.25, 0.5, 1.0)
        (grad,) = tf.gradients(tf.reduce_sum(loss), [logits])
        loss_value, grad_value = _run([loss, grad])
    assert np.all(np.isfinite(loss_value)) and np.all(np.isfinite(grad_value))
    # Confidently wrong: modulator 1, cross-entropy 100.
    np.testing.assert_allclose(loss_value[:2], [25.0, 75.0], rtol=1e-5)
    np.testing.assert_allclose(loss_value[2:], [0.0, 0.0], atol=1e-20)


def _class_case(seed=0, num_classes=3, anchors=2):
    rng = np.random.RandomState(seed)
    shapes = {3: (2, 2, 2), 4: (2, 1, 1)}
    logits = {
        lv: rng.randn(*shape, anchors * num_classes).astype(np.float32)
        for lv, shape in shapes.items()
    }
    targets = {lv: rng.randint(-2, num_classes, (*shape, anchors)) for lv, shape in shapes.items()}
    num_positives = sum((t >= 0).sum(axis=(1, 2, 3)) for t in targets.values()).astype(np.float32)
    return logits, targets, num_positives


def _numpy_class_loss(logits, targets, num_positives, num_classes, alpha, gamma):
    total = 0.0
    for level, level_targets in targets.items():
        for index in np.ndindex(level_targets.shape):
            target = level_targets[index]
            if target == -2:
                continue
            *position, anchor = index
            for k in range(num_classes):
                x = logits[level][(*position, anchor * num_classes + k)]
                total += _numpy_focal(np.array(x), np.array(float(target == k)), alpha, gamma)
    return total / (num_positives.sum() + 1.0)


def test_class_loss_matches_numpy_reference():
    logits, targets, num_positives = _class_case()
    expected = _numpy_class_loss(logits, targets, num_positives, 3, 0.25, 1.5)
    with tf.Graph().as_default():
        loss = losses.retinanet_class_loss(
            {lv: tf.constant(x) for lv, x in logits.items()},
            {lv: tf.constant(t) for lv, t in targets.items()},
            tf.constant(num_positives),
            num_classes=3,
            alpha=0.25,
            gamma=1.5,
        )
        value = _run(loss)
    assert num_positives.sum() > 0 and any((t == -2).any() for t in targets.values())
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_ignored_anchors_contribute_nothing():
    logits, targets, num_positives = _class_case(seed=1)
    with tf.Graph().as_default():
        logit_tensors = {lv: tf.constant(x) for lv, x in logits.items()}
        loss = losses.retinanet_class_loss(
            logit_tensors,
            {lv: tf.constant(t) for lv, t in targets.items()},
            num_positives,
            num_classes=3,
            alpha=0.25,
            gamma=1.5,
        )
        grads = tf.gradients(loss, [logit_tensors[3], logit_tensors[4]])
        grad_values = _run(grads)
    for level, grad in zip((3, 4), grad_values):
        per_class = grad.reshape(*targets[level].shape, 3)
        ignored = targets[level] == -2
        assert np.all(per_class[ignored] == 0.0)
        # Negatives (-1) push every class channel down.
        assert np.all(per_class[targets[level] == -1] > 0.0)


def test_zero_positives_normalizes_by_one():
    logits = np.array([[[[0.0, 1.0]]]], np.float32)  # one anchor, two classes
    targets = np.array([[[[-1]]]], np.int32)
    box_outputs = np.full((1, 1, 1, 4), 0.5, np.float32)
    with tf.Graph().as_default():
        box_out = tf.constant(box_outputs)
        result = losses.retinanet_losses(
            {3: tf.constant(logits)},
            {3: box_out},
            {3: tf.constant(targets)},
            {3: tf.zeros([1, 1, 1, 4])},
            tf.zeros([1]),
            num_classes=2,
        )
        (box_grad,) = tf.gradients(result["box_loss"], [box_out])
        values, box_grad_value = _run([result, box_grad])
    expected_cls = _numpy_focal(logits[0, 0, 0], np.zeros(2), 0.25, 1.5).sum()
    np.testing.assert_allclose(values["cls_loss"], expected_cls, rtol=1e-5)
    assert values["box_loss"] == 0.0 and np.all(box_grad_value == 0.0)
    np.testing.assert_allclose(values["model_loss"], values["cls_loss"], rtol=1e-6)


def test_huber_loss_by_hand_including_the_delta_boundary():
    with tf.Graph().as_default():
        outputs = tf.zeros([5])
        targets = tf.constant([0.05, -0.3, 0.1, 0.2, -0.1])
        value = _run(losses.huber_loss(outputs, targets, 0.1))
    # 0.5 * 0.05**2; 0.1 * (0.3 - 0.05); at |d| = delta both branches give
    # 0.5 * 0.1**2; 0.1 * (0.2 - 0.05).
    np.testing.assert_allclose(value, [0.00125, 0.025, 0.005, 0.015, 0.005], rtol=1e-5)
    with tf.Graph().as_default():
        below, above = _run(
            [
                losses.huber_loss(tf.constant(0.0), tf.constant(0.1 - 1e-4), 0.1),
                losses.huber_loss(tf.constant(0.0), tf.constant(0.1 + 1e-4), 0.1),
            ]
        )
    np.testing.assert_allclose([below, above], [0.005 - 1e-5, 0.005 + 1e-5], rtol=1e-3)


def test_box_loss_by_hand():
    # Two anchors at one position. Anchor 0 is positive; anchor 1 is not (zero
    # targets), so its large errors must not count.
    box_targets = np.array([[[[0.05, -0.3, 0.1, 0.2, 0.0, 0.0, 0.0, 0.0]]]], np.float32)
    box_outputs = np.array([[[[0.0, 0.0, 0.0, 0.2, 1.0, 1.0, 1.0, 1.0]]]], np.float32)
    with tf.Graph().as_default():
        loss = losses.retinanet_box_loss(
            {3: tf.constant(box_outputs)},
            {3: tf.constant(box_targets)},
            tf.constant([1.0]),
            delta=0.1,
        )
        value = _run(loss)
    # (0.00125 + 0.025 + 0.005 + 0) / (4 * (1 + 1))
    np.testing.assert_allclose(value, 0.03125 / 8, rtol=1e-5)


def test_model_loss_weights_the_box_loss():
    logits, targets, num_positives = _class_case(seed=2)
    rng = np.random.RandomState(3)
    box_targets = {
        lv: rng.randn(*t.shape[:3], t.shape[3] * 4).astype(np.float32) for lv, t in targets.items()
    }
    box_outputs = {lv: rng.randn(*x.shape).astype(np.float32) for lv, x in box_targets.items()}
    with tf.Graph().as_default():
        result = losses.retinanet_losses(
            {lv: tf.constant(x) for lv, x in logits.items()},
            {lv: tf.constant(x) for lv, x in box_outputs.items()},
            {lv: tf.constant(t) for lv, t in targets.items()},
            {lv: tf.constant(x) for lv, x in box_targets.items()},
            tf.constant(num_positives),
            num_classes=3,
        )
        values = _run(result)
    assert sorted(values) == ["box_loss", "cls_loss", "model_loss"]
    expected_box = sum(
        np.where(
            np.abs(box_targets[lv] - box_outputs[lv]) <= 0.1,
            0.5 * (box_targets[lv] - box_outputs[lv]) ** 2,
            0.1 * np.abs(box_targets[lv] - box_outputs[lv]) - 0.005,
        ).sum()
        for lv in box_targets
    ) / (4 * (num_positives.sum() + 1))
    np.testing.assert_allclose(values["box_loss"], expected_box, rtol=1e-5)
    np.testing.assert_allclose(
        values["cls_loss"],
        _numpy_class_loss(logits, targets, num_positives, 3, 0.25, 1.5),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        values["model_loss"], values["cls_loss"] + 50.0 * values["box_loss"], rtol=1e-6
    )


def test_half_precision_outputs_are_computed_in_float32():
    with tf.Graph().as_default():
        loss = losses.retinanet_class_loss(
            {3: tf.zeros([1, 1, 1, 2], tf.float16)},
            {3: tf.constant([[[[1]]]])},
            tf.constant([1.0]),
            num_classes=2,
            alpha=0.25,
            gamma=1.5,
        )
        assert loss.dtype == tf.float32
        value = _run(loss)
    # Class 1 positive, class 0 negative, both at p = 0.5, over 1 + 1.
    np.testing.assert_allclose(value, (0.0612661 + 0.1837984) / 2, rtol=1e-5)


def test_mismatched_levels_and_shapes_raise():
    with tf.Graph().as_default():
        outputs = {3: tf.zeros([1, 2, 2, 6])}
        with pytest.raises(
            ValueError, match=r"same levels; got output levels \[3\] and target levels \[3, 4\]"
        ):
            losses.retinanet_class_loss(
                outputs,
                {3: tf.zeros([1, 2, 2, 2], tf.int32), 4: tf.zeros([1, 1, 1, 2], tf.int32)},
                tf.ones([1]),
                num_classes=3,
                alpha=0.25,
                gamma=1.5,
            )
        with pytest.raises(ValueError, match=r"level 3 outputs have 6 channels .*need 2 \* 4 = 8"):
            losses.retinanet_class_loss(
                outputs,
                {3: tf.zeros([1, 2, 2, 2], tf.int32)},
                tf.ones([1]),
                num_classes=4,
                alpha=0.25,
                gamma=1.5,
            )
        with pytest.raises(
            ValueError, match=r"level 3 outputs \[1, 2, 2, 8\] and targets \[1, 2, 2, 4\] differ"
        ):
            losses.retinanet_box_loss(
                {3: tf.zeros([1, 2, 2, 8])}, {3: tf.zeros([1, 2, 2, 4])}, tf.ones([1]), delta=0.1
            )
        with pytest.raises(ValueError, match="retinanet_box_loss: no levels given"):
            losses.retinanet_box_loss({}, {}, tf.ones([1]), delta=0.1)


def _one_hot_class_loss(logits, targets, num_positives, num_classes, alpha, gamma):
    """The textbook TF form: one-hot targets, element-wise focal loss, masked sum."""
    total = 0.0
    for level in sorted(logits):
        shape = targets[level].shape
        level_logits = tf.reshape(logits[level], [*shape, num_classes])
        one_hot = tf.one_hot(targets[level], num_classes, dtype=tf.float32)
        per_anchor = tf.reduce_sum(
            losses.focal_loss(level_logits, one_hot, alpha, gamma, 1.0), axis=-1
        )
        total += tf.reduce_sum(per_anchor * tf.cast(tf.not_equal(targets[level], -2), tf.float32))
    return total / (tf.reduce_sum(num_positives) + 1.0)


def test_class_loss_and_gradient_equal_the_one_hot_form():
    # Negative-everywhere plus a gathered positive correction is the same sum
    # as the one-hot form; check values and gradients, with logits up to +-60
    # (p**gamma and softplus saturate) and ids outside [0, K) (negatives).
    rng = np.random.RandomState(4)
    num_classes, anchors = 5, 3
    shapes = {3: (2, 4, 4), 4: (2, 2, 2), 5: (2, 1, 1)}
    logits = {
        lv: (rng.randn(*shape, anchors * num_classes) * 4.0).astype(np.float32)
        for lv, shape in shapes.items()
    }
    logits[3][0, 0, 0, :4] = [60.0, -60.0, 25.0, -25.0]
    targets = {
        lv: rng.randint(-2, num_classes + 2, (*shape, anchors)) for lv, shape in shapes.items()
    }
    targets[3][0, 0, 0, 0] = 0  # positive on the +60 logit
    targets[3][0, 0, 0, 1] = 1  # positive on a -60 logit (channel 3 * 1 + 1 = 6)
    logits[3][0, 0, 0, num_classes + 1] = -60.0
    num_positives = np.array([7.0, 5.0], np.float32)
    with tf.Graph().as_default():
        logit_tensors = {lv: tf.constant(x) for lv, x in logits.items()}
        target_tensors = {lv: tf.constant(t, tf.int32) for lv, t in targets.items()}
        ours = losses.retinanet_class_loss(
            logit_tensors,
            target_tensors,
            tf.constant(num_positives),
            num_classes=num_classes,
            alpha=0.25,
            gamma=1.5,
        )
        reference = _one_hot_class_loss(
            logit_tensors, target_tensors, tf.constant(num_positives), num_classes, 0.25, 1.5
        )
        levels = sorted(logit_tensors)
        ours_grads = tf.gradients(ours, [logit_tensors[lv] for lv in levels])
        reference_grads = tf.gradients(reference, [logit_tensors[lv] for lv in levels])
        values = _run([ours, reference, ours_grads, reference_grads])
    ours_value, reference_value, ours_grad_values, reference_grad_values = values
    assert any((t >= num_classes).any() for t in targets.values())
    np.testing.assert_allclose(ours_value, reference_value, rtol=1e-6)
    for ours_grad, reference_grad in zip(ours_grad_values, reference_grad_values):
        assert np.all(np.isfinite(ours_grad))
        np.testing.assert_allclose(ours_grad, reference_grad, rtol=1e-5, atol=1e-7)
