"""NPULossScaleOptimizer of the fake adapter: scales the loss, unscales the gradients,
and skips the update of a step whose gradients overflow (tf.math.is_finite stands in
for the NPU float status)."""

import tensorflow.compat.v1 as tf

from npu_bridge._record import record
from npu_bridge.hccl import hccl_ops


class NPULossScaleOptimizer(tf.train.Optimizer):
    def __init__(self, opt, loss_scale_manager, is_distributed=False):
        record(
            "NPULossScaleOptimizer",
            opt=opt,
            loss_scale_manager=loss_scale_manager,
            is_distributed=is_distributed,
        )
        super().__init__(use_locking=False, name="NPULossScaleOptimizer")
        self._opt = opt
        self._loss_scale_manager = loss_scale_manager
        self._is_distributed = is_distributed

    def compute_gradients(self, loss, var_list=None, **kwargs):
        scale = self._loss_scale_manager.get_loss_scale()
        grads_and_vars = self._opt.compute_gradients(loss * scale, var_list=var_list, **kwargs)
        return [(None if g is None else g / scale, v) for g, v in grads_and_vars]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = list(grads_and_vars)
        finite = tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(g)) for g, _ in grads_and_vars if g is not None]
        )
        if self._is_distributed:
            overflow = hccl_ops.allreduce(tf.cast(tf.logical_not(finite), tf.float32), "sum")
            finite = tf.equal(overflow, 0.0)

        def apply():
            return self._opt.apply_gradients(grads_and_vars, global_step=global_step, name=name)

        def skip():
            if global_step is None:
                return tf.no_op()
            return tf.group(global_step.assign_add(1))

        update = tf.cond(finite, apply, skip)
        return tf.group(update, self._loss_scale_manager.update_loss_scale(finite))

    def get_slot(self, *args, **kwargs):
        return self._opt.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._opt.get_slot_names(*args, **kwargs)

    def variables(self, *args, **kwargs):
        return self._opt.variables(*args, **kwargs)
