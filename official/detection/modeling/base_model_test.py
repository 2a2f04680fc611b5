import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.configs import base_config
from official.detection.modeling import base_model, optimizers


class _LinearModel(base_model.BaseModel):
    """y = x @ W + b with a squared loss; enough to observe the plumbing."""

    def build_outputs(self, images, labels, mode):
        with tf.variable_scope("frozen_part"):
            scale = tf.get_variable("kernel", [], initializer=tf.ones_initializer())
        dense = tf.layers.dense(images * scale, 1, kernel_initializer=tf.ones_initializer())
        return {"y": dense}

    def build_losses(self, outputs, labels):
        loss = tf.reduce_mean(tf.square(outputs["y"] - labels["y"]))
        return {"model_loss": loss, "squared_error": loss}

    def build_predictions(self, outputs, labels):
        return {"y": outputs["y"]}


def _model(**kwargs):
    args = dict(
        optimizer_fn=lambda lr: optimizers.build_optimizer("sgd", lr),
        learning_rate_fn=lambda step: tf.constant(0.1),
        regularization_variable_regex=base_config.REGULARIZATION_VARIABLE_REGEX,
    )
    args.update(kwargs)
    return _LinearModel(**args)


def _train_step(model):
    """Runs one training step; returns (variables before, after, loss, hooks scalars)."""
    with tf.Graph().as_default():
        x = tf.constant([[1.0, 2.0]])
        spec = model.model_fn(x, {"y": tf.constant([[0.0]])}, base_model.TRAIN)
        names = [v.op.name for v in tf.global_variables()]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            before = dict(zip(names, sess.run(tf.global_variables())))
            loss, _ = sess.run([spec.loss, spec.train_op])
            after = dict(zip(names, sess.run(tf.global_variables())))
    return before, after, loss


def test_l2_applies_to_kernels_only():
    # kernels: frozen_part/kernel=1 and dense/kernel=[1,1]; bias is excluded.
    _, _, loss = _train_step(_model(l2_weight_decay=0.5))
    model_loss = (1.0 + 2.0) ** 2
    l2 = 0.5 * (1.0 + 1.0 + 1.0) / 2.0
    assert loss == pytest.approx(model_loss + l2)


def test_frozen_variables_do_not_change_and_others_do():
    before, after, _ = _train_step(_model(frozen_variable_prefix="frozen_part/"))
    assert after["frozen_part/kernel"] == before["frozen_part/kernel"]
    assert not np.allclose(after["dense/kernel"], before["dense/kernel"])
    assert after["global_step"] == 1


def test_gradient_clipping_bounds_the_update():
    before, after, _ = _train_step(_model(gradient_clip_norm=0.01))
    delta = np.concatenate([np.ravel(after[n] - before[n]) for n in before if n != "global_step"])
    # SGD: the update is lr * clipped gradient, whose global norm is the clip norm.
    assert np.linalg.norm(delta) == pytest.approx(0.1 * 0.01, rel=1e-4)


def test_freezing_everything_is_an_error():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="freezes every variable"):
            _model(frozen_variable_prefix=".*").model_fn(
                tf.constant([[1.0, 2.0]]), {"y": tf.constant([[0.0]])}, base_model.TRAIN
            )


def test_training_hooks_receive_named_scalars():
    seen = {}

    def hooks_fn(scalars):
        seen.update(scalars)
        return []

    _train_step(_model(training_hooks_fn=hooks_fn))
    assert {"model_loss", "squared_error", "l2_regularization_loss", "total_loss"} <= set(seen)
    assert "learning_rate" in seen


def test_unknown_optimizer_lists_choices():
    with pytest.raises(ValueError, match=r"Unknown optimizer type 'lamb'.*momentum"):
        optimizers.build_optimizer("lamb", 0.1)


class _NanModel(_LinearModel):
    def build_losses(self, outputs, labels):
        loss = tf.reduce_mean(outputs["y"]) * float("nan")
        return {"model_loss": loss}


@pytest.mark.parametrize(
    "on_host, message",
    [
        (True, r"non-finite loss nan at step 1"),
        (False, r"non-finite loss \(value.*\] \[nan\] \[0\]"),
    ],
)
def test_non_finite_loss_stops_before_the_update(on_host, message):
    model = _NanModel(
        optimizer_fn=lambda lr: optimizers.build_optimizer("sgd", lr),
        learning_rate_fn=lambda step: tf.constant(0.1),
        regularization_variable_regex=base_config.REGULARIZATION_VARIABLE_REGEX,
        finite_check_on_host=on_host,
    )
    with tf.Graph().as_default():
        spec = model.model_fn(tf.constant([[1.0, 2.0]]), {"y": tf.constant([[0.0]])}, "train")
        kernel = [v for v in tf.global_variables() if v.op.name == "dense/kernel"][0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(kernel)
            with pytest.raises(Exception, match=message):
                sess.run(spec.train_op)
            np.testing.assert_array_equal(sess.run(kernel), before)
            assert sess.run(tf.train.get_global_step()) == 0
