"""The guard that stops a training step whose loss is NaN or infinite, and how a
caller recognises that it fired.

The guard is an op the train op depends on, so the failing step never updates a
variable. A session run that it fails raises a `tf.errors.OpError` whose `op` is
the guard; `failed_check(error)` finds the guard by that op (not by the error's
text) and gives the NonFiniteLossError it raised.
"""

import weakref

import numpy as np
import tensorflow.compat.v1 as tf

ADVICE = (
    "training stopped before applying this step. The last checkpoint in model_dir is "
    "intact: lower the learning rate or lengthen warm-up, check the data, then run "
    "again to resume."
)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the value and the step."""


class FiniteLossCheck:
    """One guard op and, once its host callback fired, the NonFiniteLossError it raised.

    A device guard (a graph Assert) has no callback: its `error` stays None and the
    op error's message holds the value and the 0-based step.
    """

    def __init__(self):
        self.op = None
        self.error = None


# The guards of each graph; weak, so a graph's guards go with it.
_CHECKS = weakref.WeakKeyDictionary()


def check_finite_loss(loss, global_step, on_host=True):
    """An op that fails the session run when `loss` (a float scalar) is NaN or infinite.

    `on_host` raises from a Python callback with the 1-based step in the message;
    otherwise a graph `Assert` does it (for graphs compiled for a device, such as
    Ascend's, which cannot call back into Python) and prints the value and the
    0-based step `global_step` (int64 scalar).
    """
    check = FiniteLossCheck()
    if on_host:

        def _check(value, step):
            if not np.isfinite(value):
                check.error = NonFiniteLossError(
                    f"non-finite loss {value} at step {int(step) + 1}; {ADVICE}"
                )
                raise check.error
            return np.int32(0)

        # Stateful (never folded or pruned) by default on TensorFlow 1.15 and 2.x alike.
        result = tf.numpy_function(_check, [loss, global_step], tf.int32)
        check.op = result.op
    else:
        # String and int32 data make a plain Assert op rather than one inside a cond,
        # so the op error of a failed run names it.
        result = tf.Assert(
            tf.reduce_all(tf.is_finite(loss)),
            [
                f"non-finite loss (value, then the 0-based step; {ADVICE})",
                tf.strings.as_string(loss),
                tf.cast(global_step, tf.int32),
            ],
            name="check_finite_loss",
        )
        # TensorFlow 2.x wraps the op to warn when it goes unused.
        check.op = loss.graph.get_operation_by_name(result.name)
    _CHECKS.setdefault(check.op.graph, []).append(check)
    return result


def failed_check(op_error):
    """The FiniteLossCheck whose op failed `op_error` (a tf.errors.OpError), or None."""
    op = op_error.op
    if op is None:
        return None
    for check in _CHECKS.get(op.graph, ()):
        if check.op is op:
            return check
    return None
