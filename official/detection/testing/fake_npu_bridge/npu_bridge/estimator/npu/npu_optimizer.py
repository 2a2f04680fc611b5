"""NPUDistributedOptimizer of the fake adapter: wraps an optimizer and delegates; the
gradient all-reduce (mean over RANK_SIZE ranks) is the identity in one process."""

import os

import tensorflow.compat.v1 as tf

from npu_bridge._record import record
from npu_bridge.hccl import hccl_ops


class NPUDistributedOptimizer(tf.train.Optimizer):
    def __init__(self, optimizer, name=None):
        record("NPUDistributedOptimizer", optimizer=optimizer, name=name)
        super().__init__(use_locking=False, name=name or f"Distributed{type(optimizer).__name__}")
        self._optimizer = optimizer

    def compute_gradients(self, *args, **kwargs):
        grads_and_vars = self._optimizer.compute_gradients(*args, **kwargs)
        rank_size = int(os.environ.get("RANK_SIZE", "1"))
        if rank_size <= 1:
            return grads_and_vars
        reduced = []
        for grad, var in grads_and_vars:
            if grad is not None:
                grad = hccl_ops.allreduce(grad, "sum") / rank_size
            reduced.append((grad, var))
        return reduced

    def apply_gradients(self, *args, **kwargs):
        return self._optimizer.apply_gradients(*args, **kwargs)

    def get_slot(self, *args, **kwargs):
        return self._optimizer.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._optimizer.get_slot_names(*args, **kwargs)

    def variables(self, *args, **kwargs):
        return self._optimizer.variables(*args, **kwargs)
