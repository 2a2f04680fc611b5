"""Loss-scale managers of the fake adapter (same arguments and update rule)."""

import tensorflow.compat.v1 as tf

from npu_bridge._record import record


class FixedLossScaleManager:
    def __init__(self, loss_scale, enable_overflow_check=True):
        record("FixedLossScaleManager", loss_scale=loss_scale)
        if loss_scale < 1:
            raise ValueError("loss scale must be at least 1.")
        self._loss_scale = tf.convert_to_tensor(loss_scale, dtype=tf.float32)

    def get_loss_scale(self):
        return self._loss_scale

    def update_loss_scale(self, finite_grads):
        del finite_grads
        return tf.no_op()


class ExponentialUpdateLossScaleManager:
    """Grows the scale by incr_ratio after incr_every_n_steps finite steps; shrinks it by
    decr_ratio after decr_every_n_nan_or_inf overflowing ones."""

    def __init__(
        self,
        init_loss_scale,
        incr_every_n_steps,
        decr_every_n_nan_or_inf=2,
        incr_ratio=2,
        decr_ratio=0.8,
    ):
        record(
            "ExponentialUpdateLossScaleManager",
            init_loss_scale=init_loss_scale,
            incr_every_n_steps=incr_every_n_steps,
            decr_every_n_nan_or_inf=decr_every_n_nan_or_inf,
            incr_ratio=incr_ratio,
            decr_ratio=decr_ratio,
        )
        self._incr_every_n_steps = incr_every_n_steps
        self._decr_every_n = decr_every_n_nan_or_inf
        self._incr_ratio = incr_ratio
        self._decr_ratio = decr_ratio
        self._loss_scale = tf.Variable(
            float(init_loss_scale), trainable=False, name="loss_scale", dtype=tf.float32
        )
        self._good_steps = tf.Variable(0, trainable=False, name="good_steps", dtype=tf.int32)
        self._bad_steps = tf.Variable(0, trainable=False, name="bad_steps", dtype=tf.int32)

    def get_loss_scale(self):
        return self._loss_scale

    def update_loss_scale(self, finite_grads):
        def on_finite():
            grow = self._good_steps + 1 >= self._incr_every_n_steps
            scale = tf.where(grow, self._loss_scale * self._incr_ratio, self._loss_scale)
            good = tf.where(grow, 0, self._good_steps + 1)
            return tf.group(
                self._loss_scale.assign(scale),
                self._good_steps.assign(good),
                self._bad_steps.assign(0),
            )

        def on_overflow():
            shrink = self._bad_steps + 1 >= self._decr_every_n
            scale = tf.where(
                shrink, tf.maximum(self._loss_scale * self._decr_ratio, 1.0), self._loss_scale
            )
            bad = tf.where(shrink, 0, self._bad_steps + 1)
            return tf.group(
                self._loss_scale.assign(scale),
                self._bad_steps.assign(bad),
                self._good_steps.assign(0),
            )

        return tf.cond(finite_grads, on_finite, on_overflow)
