"""Faster convolution kernels for training and evaluating on CPUs.

Inside `cpu_kernels()`:
- 3x3, stride-1, 'SAME', NHWC convolutions made by `functional.conv2d` on
  feature maps of at least `WINOGRAD_MIN_POSITIONS` output positions (batch x
  height x width) and `WINOGRAD_MIN_CHANNELS` input channels run as Winograd
  F(2x2, 3x3) (winograd.py);
- every other `Conv2D` op gets its filter gradient as GEMMs where that is
  faster (conv_gradients.py);
- training-mode batch norms made by `functional.batch_normalization` over NHWC
  inputs whose channel count is not a multiple of 4, where oneDNN's fused
  kernel is 2-3x slower, are written out in a few ops (cpu_batch_norm.py).

All compute the same function with the same variables, to float32 rounding,
so checkpoints and configs do not change. The executor turns them on for the
CPU only: GPUs (cuDNN) and Ascend have their own kernels for this.
"""

import contextlib
import threading

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import conv_gradients

# Below these sizes the Winograd transforms, which are separate element-wise
# TensorFlow ops, cost more than the multiplies they save (measured at batch 2,
# docs/BENCHMARKS.md): 8x8x256 maps are slower, 16x16x256 and 32x32x128 faster.
WINOGRAD_MIN_POSITIONS = 512
WINOGRAD_MIN_CHANNELS = 128

_state = threading.local()


def active():
    """True inside `cpu_kernels()` on this thread."""
    return getattr(_state, "depth", 0) > 0


def _static_float32_4d(inputs):
    """The kernels here need float32 and every dimension known when the graph is built."""
    shape = inputs.get_shape()
    return shape.ndims == 4 and shape.is_fully_defined() and inputs.dtype.base_dtype == tf.float32


def use_winograd(inputs, kernel_size, strides, padding, data_format, dilation=(1, 1)):
    """Whether `functional.conv2d` should compute this convolution as Winograd."""
    if not active():
        return False
    if tuple(kernel_size) != (3, 3) or tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
        return False
    if padding.lower() != "same" or data_format != "channels_last":
        return False
    if not _static_float32_4d(inputs):
        return False
    batch, height, width, channels = inputs.get_shape().as_list()
    return batch * height * width >= WINOGRAD_MIN_POSITIONS and channels >= WINOGRAD_MIN_CHANNELS


def use_cpu_batch_norm(inputs, axis, training):
    """Whether `functional.batch_normalization` should use cpu_batch_norm.py."""
    if not active() or not training or axis not in (-1, 3):
        return False
    return _static_float32_4d(inputs) and inputs.get_shape().as_list()[-1] % 4 != 0


@contextlib.contextmanager
def cpu_kernels(enabled=True):
    """Within it, convolutions and batch norms built use the CPU kernels above;
    False changes nothing."""
    if not enabled:
        yield
        return
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        with conv_gradients.matmul_filter_gradients():
            yield
    finally:
        _state.depth -= 1
