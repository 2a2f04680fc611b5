"""Estimator plumbing shared by every detector.

A model subclass builds its forward pass, its losses and its predictions; this
class turns them into `EstimatorSpec`s: learning-rate schedule, optimizer, L2
on kernels, gradient clipping, frozen variables, warm start and summaries.
Devices are not its business: the executor passes `optimizer_wrapper` (for
example a distributed or loss-scaling optimizer) and `training_hooks_fn`.
"""

import abc
import re

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.modeling import warm_start as warm_start_lib
from official.detection.modeling.finite_loss import check_finite_loss

TRAIN = tf_estimator.ModeKeys.TRAIN
EVAL = tf_estimator.ModeKeys.EVAL
PREDICT = tf_estimator.ModeKeys.PREDICT


def select_trainable_variables(variables, frozen_variable_prefix):
    """Drops variables whose name matches `frozen_variable_prefix` (re.match)."""
    if not frozen_variable_prefix:
        return list(variables)
    frozen = re.compile(frozen_variable_prefix)
    return [v for v in variables if not frozen.match(v.name)]


def l2_regularization_loss(variables, weight_decay, regex):
    """`weight_decay * sum(w**2) / 2` over the variables whose name matches `regex`."""
    pattern = re.compile(regex)
    selected = [v for v in variables if pattern.match(v.name)]
    if not selected or not weight_decay:
        return tf.constant(0.0, tf.float32)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in selected])


GROUNDTRUTH_PREFIX = "groundtruths/"


def with_labels_for_evaluation(predictions, labels):
    """Adds `source_id`, `image_info` and flattened `groundtruths/*` to predictions.

    Estimator predictions must be a flat dict of batched tensors; evaluation
    needs the image identity and, without a JSON file, the ground truth.
    """
    merged = dict(predictions)
    merged["source_id"] = labels["source_id"]
    merged["image_info"] = labels["image_info"]
    for key, value in labels.get("groundtruths", {}).items():
        merged[GROUNDTRUTH_PREFIX + key] = value
    return merged


class BaseModel(abc.ABC):
    """Builds `model_fn` for tf.estimator from a subclass's forward pass and losses."""

    def __init__(
        self,
        *,
        optimizer_fn,
        learning_rate_fn,
        regularization_variable_regex,
        l2_weight_decay=0.0,
        gradient_clip_norm=0.0,
        frozen_variable_prefix="",
        checkpoint_path="",
        checkpoint_prefix="",
        skip_variables_regex="",
        enable_summary=True,
        optimizer_wrapper=None,
        training_hooks_fn=None,
        finite_check_on_host=True,
    ):
        """
        Args:
          optimizer_fn: `fn(learning_rate) -> tf.train.Optimizer`.
          learning_rate_fn: `fn(global_step) -> scalar tensor`.
          regularization_variable_regex: regex (re.match on the variable name) of
            the variables that get L2 (train.regularization_variable_regex).
          l2_weight_decay: coefficient of the L2 loss on those variables.
          gradient_clip_norm: clip by global norm when > 0.
          frozen_variable_prefix: regex; matching variables are not trained.
          checkpoint_path, checkpoint_prefix, skip_variables_regex: warm start
            (see warm_start.py); empty path means none.
          enable_summary: besides the scalars (each loss, LR), which are always
            written, add variable histograms and input images.
          optimizer_wrapper: `fn(optimizer) -> optimizer`, applied last.
          training_hooks_fn: `fn(dict of scalar tensors) -> list of hooks`.
          finite_check_on_host: check the loss in a Python callback (see
            `check_finite_loss`); False for graphs compiled for a device.
        """
        self._optimizer_fn = optimizer_fn
        self._learning_rate_fn = learning_rate_fn
        self._l2_weight_decay = float(l2_weight_decay)
        self._gradient_clip_norm = float(gradient_clip_norm)
        self._frozen_variable_prefix = frozen_variable_prefix
        self._regularization_variable_regex = regularization_variable_regex
        self._checkpoint_path = checkpoint_path
        self._checkpoint_prefix = checkpoint_prefix
        self._skip_variables_regex = skip_variables_regex
        self._enable_summary = enable_summary
        self._optimizer_wrapper = optimizer_wrapper
        self._training_hooks_fn = training_hooks_fn
        self._finite_check_on_host = bool(finite_check_on_host)

    @abc.abstractmethod
    def build_outputs(self, images, labels, mode):
        """Forward pass; returns a dict of raw head outputs."""

    @abc.abstractmethod
    def build_losses(self, outputs, labels):
        """Returns a dict with `model_loss` and its named parts (scalars)."""

    @abc.abstractmethod
    def build_predictions(self, outputs, labels):
        """Returns a dict of post-processed prediction tensors, batch first."""

    def model_fn(self, features, labels, mode, params=None):
        """The Estimator `model_fn`.

        In TRAIN and EVAL, `features` is the image batch [B, H, W, 3] float32 and
        `labels` the parser's label dict. In PREDICT, `features` is
        `{'images': ..., 'labels': ...}` and `labels` is None. `params` is unused;
        Ascend's NPUEstimator passes it to every model_fn.
        """
        del params
        if mode == PREDICT:
            images, labels = features["images"], features["labels"]
        else:
            images = features
        outputs = self.build_outputs(images, labels, mode)
        if mode == TRAIN:
            return self._train_spec(images, outputs, labels)
        if mode == EVAL:
            losses = self.build_losses(outputs, labels)
            metrics = {k: tf.metrics.mean(v) for k, v in losses.items()}
            return tf_estimator.EstimatorSpec(
                mode, loss=losses["model_loss"], eval_metric_ops=metrics
            )
        predictions = self.build_predictions(outputs, labels)
        return tf_estimator.EstimatorSpec(mode, predictions=predictions)

    def _train_spec(self, images, outputs, labels):
        if self._checkpoint_path:
            warm_start_lib.warm_start(
                self._checkpoint_path,
                prefix=self._checkpoint_prefix,
                skip_variables_regex=self._skip_variables_regex,
            )
        losses = self.build_losses(outputs, labels)
        train_vars = select_trainable_variables(
            tf.trainable_variables(), self._frozen_variable_prefix
        )
        if not train_vars:
            raise ValueError(
                f"train.frozen_variable_prefix {self._frozen_variable_prefix!r} freezes every "
                "variable; nothing would be trained"
            )
        l2_loss = l2_regularization_loss(
            train_vars, self._l2_weight_decay, self._regularization_variable_regex
        )
        # What the optimizer minimises; `model_loss` is the detector's loss alone.
        # The summary keeps the ancestor's name, total_loss.
        total_loss = losses["model_loss"] + l2_loss

        global_step = tf.train.get_or_create_global_step()
        learning_rate = self._learning_rate_fn(global_step)
        optimizer = self._optimizer_fn(learning_rate)
        if self._optimizer_wrapper is not None:
            optimizer = self._optimizer_wrapper(optimizer)

        grads_and_vars = optimizer.compute_gradients(total_loss, train_vars)
        grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
        if self._gradient_clip_norm > 0:
            grads, tvars = zip(*grads_and_vars)
            grads, _ = tf.clip_by_global_norm(grads, self._gradient_clip_norm)
            grads_and_vars = list(zip(grads, tvars))
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        update_ops.append(
            check_finite_loss(total_loss, global_step, on_host=self._finite_check_on_host)
        )
        with tf.control_dependencies(update_ops):
            train_op = optimizer.apply_gradients(grads_and_vars, global_step)

        scalars = dict(losses)
        scalars["l2_regularization_loss"] = l2_loss
        scalars["total_loss"] = total_loss
        scalars["learning_rate"] = learning_rate
        for name, value in sorted(scalars.items()):
            tf.summary.scalar(name, value)
        if self._enable_summary:
            for var in train_vars:
                tf.summary.histogram(var.op.name, var)
            tf.summary.image("input_images", images[:2], max_outputs=2)
        hooks = self._training_hooks_fn(scalars) if self._training_hooks_fn else []
        return tf_estimator.EstimatorSpec(
            TRAIN, loss=total_loss, train_op=train_op, training_hooks=hooks
        )
