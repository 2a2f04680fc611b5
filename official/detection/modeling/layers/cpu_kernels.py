"""Faster convolution kernels for training and evaluating on CPUs.

Inside `cpu_kernels()`:
- 3x3, stride-1, 'SAME', NHWC convolutions made by `functional.conv2d` on
  feature maps of at least `WINOGRAD_MIN_POSITIONS` output positions (batch x
  height x width) and `winograd_min_channels()` input channels run as Winograd
  F(2x2, 3x3) (winograd.py);
- every other `Conv2D` op gets its filter gradient as GEMMs where that is
  faster, and, where TensorFlow's CPU kernels are Eigen's rather than
  oneDNN's (TensorFlow 1.15), its input gradient as a GEMM or a forward
  convolution where that is faster (conv_gradients.py);
- training-mode batch norms made by `functional.batch_normalization` over NHWC
  inputs whose channel count is not a multiple of 4, where oneDNN's fused
  kernel is 2-3x slower, are written out in a few ops (cpu_batch_norm.py).

All compute the same function with the same variables, to float32 rounding,
so checkpoints and configs do not change. They need float32 tensors whose
every dimension is known when the graph is built; a layer that qualifies
otherwise keeps TensorFlow's kernel, and the context records it as a fallback
with the reason. Whether a run uses them is a runtime choice (`main.py
--cpu_kernels`, resolved with the device in executor/placement.py); the
executor wraps the Estimator model_fn with `wrap_model_fn`, so models never
see the choice.
"""

import collections
import contextlib
import threading

import tensorflow.compat.v1 as tf

from official.detection import tf_compat
from official.detection.modeling.layers import conv_gradients

# Below these sizes the Winograd transforms, which are separate element-wise
# TensorFlow ops, cost more than the multiplies they save (measured at batch 2,
# docs/BENCHMARKS.md): 8x8x256 maps are slower, 16x16x256 and 32x32x128 faster.
WINOGRAD_MIN_POSITIONS = 512
WINOGRAD_MIN_CHANNELS = 128
# Against Eigen's convolutions (TensorFlow 1.15) Winograd layers below 256 channels
# gain nothing in the training step (SpineNet-49S, all of whose are: 0.994x; R50-FPN
# with its 128-channel ones direct: 0.998x) and only add ops, which cost graph
# building and the first step (SpineNet-49S: 1.4-2.1 s and 0.5 s less without them).
WINOGRAD_MIN_CHANNELS_EIGEN = 256

# What the log calls each kernel.
WINOGRAD = "Winograd convolution"
BATCH_NORM = "written-out batch norm"
FILTER_GRADIENT = "GEMM filter gradient"
INPUT_GRADIENT = "GEMM input gradient"
DESCRIPTION = f"{WINOGRAD}s (3x3), {FILTER_GRADIENT}s, {BATCH_NORM}s"


def description():
    """What `cpu_kernels()` uses in this process, for the log line at start."""
    if conv_gradients.gemm_input_gradients_by_default():
        return (
            f"{WINOGRAD}s (3x3), {FILTER_GRADIENT}s, {INPUT_GRADIENT}s (TensorFlow's CPU "
            f"kernels are Eigen's, not oneDNN's), {BATCH_NORM}s"
        )
    return DESCRIPTION


# Layer names shown per kind of fallback in the log; the rest are counted.
_NAMES_SHOWN = 3

_state = threading.local()


class Fallbacks:
    """The layers that qualified for a CPU kernel but kept TensorFlow's, and why."""

    def __init__(self):
        self._layers = collections.OrderedDict()

    def add(self, kernel, reason, layer):
        self._layers.setdefault((kernel, reason), []).append(layer)

    def __len__(self):
        return sum(len(layers) for layers in self._layers.values())

    def summary(self):
        """One line for the log, or '' when no layer fell back."""
        parts = []
        for (kernel, reason), layers in self._layers.items():
            shown = ", ".join(layers[:_NAMES_SHOWN])
            more = len(layers) - _NAMES_SHOWN
            shown += f" and {more} more" if more > 0 else ""
            parts.append(f"{kernel} {reason}: {len(layers)} ({shown})")
        if not parts:
            return ""
        head = f"CPU kernels: {len(self)} layer(s) or gradient(s) keep TensorFlow's kernels"
        return head + "; " + "; ".join(parts)


def _fallbacks():
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


def active():
    """True inside `cpu_kernels()` on this thread."""
    return _fallbacks() is not None


def _unsupported(inputs):
    """Why the kernels here cannot take `inputs`, or None: they need float32 and
    every dimension known when the graph is built."""
    if inputs.dtype.base_dtype != tf.float32:
        return f"needs float32, got {inputs.dtype.base_dtype.name}"
    shape = inputs.get_shape()
    if not shape.is_fully_defined():
        return f"needs static shapes, got {shape.as_list()}"
    return None


def winograd_min_channels():
    """The fewest input channels of a Winograd layer for the CPU kernels TensorFlow runs
    here: `WINOGRAD_MIN_CHANNELS` with oneDNN, `WINOGRAD_MIN_CHANNELS_EIGEN` without."""
    if tf_compat.onednn_enabled():
        return WINOGRAD_MIN_CHANNELS
    return WINOGRAD_MIN_CHANNELS_EIGEN


def use_winograd(inputs, kernel_size, strides, padding, data_format, dilation=(1, 1)):
    """Whether `functional.conv2d` should compute this convolution as Winograd.

    Call it inside the layer's variable scope, which names a fallback.
    """
    if not active():
        return False
    if tuple(kernel_size) != (3, 3) or tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
        return False
    if padding.lower() != "same" or data_format != "channels_last":
        return False
    if inputs.get_shape().ndims != 4 or inputs.get_shape().as_list()[-1] is None:
        return False
    if inputs.get_shape().as_list()[-1] < winograd_min_channels():
        return False
    reason = _unsupported(inputs)
    if reason:
        _fallbacks().add(WINOGRAD, reason, tf.get_variable_scope().name)
        return False
    batch, height, width, _ = inputs.get_shape().as_list()
    return batch * height * width >= WINOGRAD_MIN_POSITIONS


def use_cpu_batch_norm(inputs, axis, training):
    """Whether `functional.batch_normalization` should use cpu_batch_norm.py.

    Call it inside the layer's variable scope, which names a fallback.
    """
    if not active() or not training or axis not in (-1, 3):
        return False
    if inputs.get_shape().ndims != 4 or inputs.get_shape().as_list()[-1] % 4 == 0:
        return False
    reason = _unsupported(inputs)
    if reason:
        _fallbacks().add(BATCH_NORM, reason, tf.get_variable_scope().name)
        return False
    return True


@contextlib.contextmanager
def cpu_kernels(enabled=True):
    """Within it, convolutions and batch norms built (and the gradients of the
    convolutions) use the CPU kernels above. Yields the `Fallbacks` of what is
    built within it, or None when `enabled` is False, which changes nothing."""
    if not enabled:
        yield None
        return
    fallbacks = Fallbacks()

    def gradient_fallback(op, reason):
        fallbacks.add(FILTER_GRADIENT, reason, op.name)

    stack = _state.__dict__.setdefault("stack", [])
    stack.append(fallbacks)
    try:
        with conv_gradients.matmul_filter_gradients(on_fallback=gradient_fallback):
            yield fallbacks
    finally:
        stack.pop()


def wrap_model_fn(model_fn):
    """An Estimator model_fn that builds `model_fn`'s training graph inside
    `cpu_kernels()`, and its evaluation and predict graphs with TensorFlow's kernels.

    Forward-only, the Winograd convolutions are no faster than oneDNN's at evaluation
    sizes: `main.py --mode=eval` at 640 x 640, batch 2, predicts SpineNet-49S 3-5%
    slower with them and RetinaNet R50-FPN within +-4% (docs/BENCHMARKS.md); the batch
    norm and filter gradient kernels are training-only. Each distinct set of fallbacks
    is logged once (an Estimator builds a graph per train call), so a run says once
    why some layers keep TensorFlow's kernels.
    """
    logged = set()

    def model_fn_with_cpu_kernels(features, labels, mode, params):
        if mode != "train":
            return model_fn(features, labels, mode, params)
        with cpu_kernels() as fallbacks:
            spec = model_fn(features, labels, mode, params)
        summary = fallbacks.summary()
        if summary and summary not in logged:
            logged.add(summary)
            tf.logging.info("%s (%s graph)", summary, mode)
        return spec

    return model_fn_with_cpu_kernels
