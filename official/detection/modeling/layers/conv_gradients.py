"""Convolution filter gradients as matrix multiplies, for training on CPUs.

The filter gradient of a stride-1 convolution is a sum over kernel taps of
`shifted_input^T @ output_gradient`. On a CPU, TensorFlow's own
`Conv2DBackpropFilter` (oneDNN or Eigen) reaches about a third of the machine's
fp32 matmul rate at the sizes a detector's heads and FPN use (3x3, 256
channels, levels of 2x2 to 64x64), where the same product as GEMMs reaches
half to three quarters of it; docs/BENCHMARKS.md has the per-shape figures.

`matmul_filter_gradients()` makes every `Conv2D` created inside it take its
gradient from `conv2d_gradient` below: the input gradient is TensorFlow's, the
filter gradient is GEMMs for stride-1, undilated NHWC convolutions with static
shapes, and TensorFlow's for everything else (strided convolutions are faster
there). Variables and forward ops do not change, so checkpoints do not either;
the gradients agree with TensorFlow's to float32 rounding.
"""

import contextlib
import threading

import tensorflow.compat.v1 as tf

GRADIENT_OP_TYPE = "Conv2DWithMatmulFilterGradient"

# Below this many output positions (batch x height x width) one GEMM over
# explicit patches is faster than one GEMM per tap; above it the patches' 9x
# copy of the input costs more than it saves and memory grows with the image.
_PATCHES_MAX_POSITIONS = 512

# The `on_fallback` callbacks of the open `matmul_filter_gradients()` contexts.
_state = threading.local()


def _attr(op, name):
    value = op.get_attr(name)
    return value.decode() if isinstance(value, bytes) else value


def _same_padding(kernel):
    """(before, after) padding of a stride-1 'SAME' convolution; the extra one goes after."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


def matmul_filter_gradient(inputs, output_gradient, kernel_size, padding):
    """d loss / d kernel of a stride-1, undilated NHWC `conv2d` as GEMMs.

    Args:
      inputs: float tensor [B, H, W, C_in] with static shape: the conv's input.
      output_gradient: tensor [B, H', W', C_out], static shape: d loss / d output.
      kernel_size: (kh, kw).
      padding: 'SAME' or 'VALID'.

    Returns:
      Tensor [kh, kw, C_in, C_out] of the dtype of `inputs`.
    """
    kernel_h, kernel_w = kernel_size
    channels = inputs.get_shape().as_list()[-1]
    _, out_h, out_w, out_channels = output_gradient.get_shape().as_list()
    if padding == "SAME":
        pad_h, pad_w = _same_padding(kernel_h), _same_padding(kernel_w)
        inputs = tf.pad(inputs, [[0, 0], list(pad_h), list(pad_w), [0, 0]])
    gradient_matrix = tf.reshape(output_gradient, [-1, out_channels])
    if kernel_h == kernel_w == 1:
        rows = tf.reshape(inputs, [-1, channels])
        product = tf.matmul(rows, gradient_matrix, transpose_a=True)
        return tf.reshape(product, [1, 1, channels, out_channels])
    positions = inputs.get_shape().as_list()[0] * out_h * out_w
    if positions <= _PATCHES_MAX_POSITIONS:
        # Patch features are ordered (kh, kw, C_in), the kernel's own layout.
        patches = tf.image.extract_patches(
            inputs, [1, kernel_h, kernel_w, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID"
        )
        rows = tf.reshape(patches, [-1, kernel_h * kernel_w * channels])
        product = tf.matmul(rows, gradient_matrix, transpose_a=True)
        return tf.reshape(product, [kernel_h, kernel_w, channels, out_channels])
    taps = []
    for i in range(kernel_h):
        for j in range(kernel_w):
            shifted = inputs[:, i : i + out_h, j : j + out_w, :]
            rows = tf.reshape(shifted, [-1, channels])
            taps.append(tf.matmul(rows, gradient_matrix, transpose_a=True))
    return tf.reshape(tf.stack(taps), [kernel_h, kernel_w, channels, out_channels])


def _uses_matmul(op, inputs, kernel, grad):
    if _attr(op, "data_format") != "NHWC" or _attr(op, "padding") not in ("SAME", "VALID"):
        return False
    if list(op.get_attr("strides")) != [1, 1, 1, 1]:
        return False
    if list(op.get_attr("dilations")) != [1, 1, 1, 1]:
        return False
    shapes = (inputs.get_shape(), kernel.get_shape(), grad.get_shape())
    if all(shape.is_fully_defined() for shape in shapes):
        return True
    callbacks = getattr(_state, "callbacks", None)
    if callbacks:
        callbacks[-1](op, f"needs static shapes, got {inputs.get_shape().as_list()}")
    return False


@tf.RegisterGradient(GRADIENT_OP_TYPE)
def conv2d_gradient(op, grad):
    """Gradient of a `Conv2D` op: TensorFlow's for the input, GEMMs for the filter."""
    inputs, kernel = op.inputs
    common = dict(
        strides=op.get_attr("strides"),
        padding=_attr(op, "padding"),
        explicit_paddings=op.get_attr("explicit_paddings"),
        use_cudnn_on_gpu=op.get_attr("use_cudnn_on_gpu"),
        data_format=_attr(op, "data_format"),
        dilations=op.get_attr("dilations"),
    )
    input_gradient = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(inputs), filter=kernel, out_backprop=grad, **common
    )
    if _uses_matmul(op, inputs, kernel, grad):
        kernel_h, kernel_w = kernel.get_shape().as_list()[:2]
        filter_gradient = matmul_filter_gradient(
            inputs, grad, (kernel_h, kernel_w), _attr(op, "padding")
        )
    else:
        filter_gradient = tf.raw_ops.Conv2DBackpropFilter(
            input=inputs, filter_sizes=tf.shape(kernel), out_backprop=grad, **common
        )
    return [input_gradient, filter_gradient]


@contextlib.contextmanager
def matmul_filter_gradients(enabled=True, on_fallback=None):
    """Within it, `Conv2D` ops get `conv2d_gradient`; `enabled=False` changes nothing.

    `on_fallback(op, reason)`, if given, is called for each stride-1 NHWC `Conv2D`
    whose filter gradient, built within the context, stays TensorFlow's because a
    shape is not static.
    """
    if not enabled:
        yield
        return
    callbacks = _state.__dict__.setdefault("callbacks", [])
    callbacks.append(on_fallback or (lambda op, reason: None))
    try:
        with tf.get_default_graph().gradient_override_map({"Conv2D": GRADIENT_OP_TYPE}):
            yield
    finally:
        callbacks.pop()
