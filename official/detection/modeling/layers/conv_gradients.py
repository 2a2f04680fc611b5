"""Convolution filter gradients as matrix multiplies, for training on CPUs.

The filter gradient of a stride-1 convolution is a sum over kernel taps of
`shifted_input^T @ output_gradient`. On a CPU, TensorFlow's own
`Conv2DBackpropFilter` (oneDNN or Eigen) reaches about a third of the machine's
fp32 matmul rate at the sizes a detector's heads and FPN use (3x3, 256
channels, levels of 2x2 to 64x64), where the same product as GEMMs reaches
half to three quarters of it; docs/BENCHMARKS.md has the per-shape figures.

Without oneDNN (TensorFlow 1.15's CPU build, or TensorFlow 2 with
`TF_ENABLE_ONEDNN_OPTS=0`), the input gradient is slow as well: Eigen's
`Conv2DBackpropInput` takes 1.2-2.5x the time of the same product as a GEMM for
1x1 kernels, strided or not, and up to 1.9x that of a forward convolution with
the flipped kernel for 3x3 kernels below 256 channels (above, it is faster).
oneDNN's input gradient is as fast as either, so it is kept there.

`matmul_filter_gradients()` makes every `Conv2D` created inside it take its
gradient from `conv2d_gradient` below: the filter gradient is GEMMs for
stride-1, undilated NHWC convolutions with static shapes, and TensorFlow's for
everything else (strided convolutions are faster there); the input gradient is
TensorFlow's, or, where the context asks for it (by default: without oneDNN),
the GEMM or forward convolution above. Variables and forward ops do not change,
so checkpoints do not either; the gradients agree with TensorFlow's to float32
rounding.
"""

import collections
import contextlib
import threading

import tensorflow.compat.v1 as tf

from official.detection import tf_compat

GRADIENT_OP_TYPE = "Conv2DWithMatmulFilterGradient"

# Below this many output positions (batch x height x width) one GEMM over
# explicit patches is faster than one GEMM per tap; above it the patches' 9x
# copy of the input costs more than it saves and memory grows with the image.
_PATCHES_MAX_POSITIONS = 512

# Kernels of at least this many input or output channels keep Eigen's input
# gradient: at 256 channels it beat the forward convolution (8x8x256: 1.68 vs
# 1.87 ms; 8x8x512: 6.43 vs 7.73), below it lost (64x64x64: 4.90 vs 2.75 ms;
# 16x16x166: 1.91 vs 1.39).
_INPUT_GRADIENT_MAX_CHANNELS = 255

# The open `matmul_filter_gradients()` contexts of this thread, innermost last.
_state = threading.local()
_Context = collections.namedtuple("_Context", ["on_fallback", "input_gradients"])


def _innermost():
    contexts = getattr(_state, "contexts", None)
    return contexts[-1] if contexts else None


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


def _nhwc_undilated(op):
    if _attr(op, "data_format") != "NHWC" or _attr(op, "padding") not in ("SAME", "VALID"):
        return False
    return list(op.get_attr("dilations")) == [1, 1, 1, 1]


def _static(*tensors):
    return all(t.get_shape().is_fully_defined() for t in tensors)


def _uses_matmul(op, inputs, kernel, grad):
    if not _nhwc_undilated(op) or list(op.get_attr("strides")) != [1, 1, 1, 1]:
        return False
    if _static(inputs, kernel, grad):
        return True
    context = _innermost()
    if context:
        context.on_fallback(op, f"needs static shapes, got {inputs.get_shape().as_list()}")
    return False


def gemm_input_gradient(
    output_gradient,
    kernel,
    input_shape,
    strides,
    padding,
    max_channels=_INPUT_GRADIENT_MAX_CHANNELS,
):
    """d loss / d input of an undilated NHWC `conv2d` without `Conv2DBackpropInput`.

    1x1 kernels, any stride: one GEMM against the transposed kernel, spread back
    onto the strided input positions (a 1x1 convolution never pads). Odd square
    kernels, stride 1, 'SAME', below 256 channels: a forward convolution of the
    output gradient with the kernel flipped in space and transposed in channels.

    Args:
      output_gradient: tensor [B, H', W', C_out] with static shape.
      kernel: tensor [kh, kw, C_in, C_out] with static shape.
      input_shape: [B, H, W, C_in], the convolution's static input shape.
      strides: (stride_h, stride_w).
      padding: 'SAME' or 'VALID'.
      max_channels: the most input or output channels of a kxk kernel done as a
        forward convolution; None: no bound (the benchmark times wider ones).

    Returns:
      Tensor [B, H, W, C_in], or None for a convolution neither form covers.
    """
    kernel_h, kernel_w, in_channels, out_channels = kernel.get_shape().as_list()
    batch, height, width, _ = input_shape
    stride_h, stride_w = strides
    if kernel_h == kernel_w == 1:
        _, out_h, out_w, _ = output_gradient.get_shape().as_list()
        rows = tf.matmul(
            tf.reshape(output_gradient, [-1, out_channels]),
            tf.reshape(kernel, [in_channels, out_channels]),
            transpose_b=True,
        )
        if stride_h == stride_w == 1:
            return tf.reshape(rows, input_shape)
        # Every stride-th position received a product; the positions between get zeros.
        spread = tf.reshape(rows, [batch, out_h, 1, out_w, 1, in_channels])
        between = [[0, 0], [0, 0], [0, stride_h - 1], [0, 0], [0, stride_w - 1], [0, 0]]
        spread = tf.pad(spread, between)
        spread = tf.reshape(spread, [batch, out_h * stride_h, out_w * stride_w, in_channels])
        return spread[:, :height, :width, :]
    if (stride_h, stride_w) != (1, 1) or padding != "SAME" or kernel_h != kernel_w:
        return None
    if kernel_h % 2 == 0:
        return None
    if max_channels is not None and max(in_channels, out_channels) > max_channels:
        return None
    flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
    return tf.nn.conv2d(output_gradient, flipped, [1, 1, 1, 1], "SAME")


@tf.RegisterGradient(GRADIENT_OP_TYPE)
def conv2d_gradient(op, grad):
    """Gradient of a `Conv2D` op: GEMMs for the filter, and for the input where the
    open context asks for them; TensorFlow's otherwise."""
    inputs, kernel = op.inputs
    common = dict(
        strides=op.get_attr("strides"),
        padding=_attr(op, "padding"),
        explicit_paddings=op.get_attr("explicit_paddings"),
        use_cudnn_on_gpu=op.get_attr("use_cudnn_on_gpu"),
        data_format=_attr(op, "data_format"),
        dilations=op.get_attr("dilations"),
    )
    input_gradient = None
    context = _innermost()
    wanted = context is not None and context.input_gradients
    if wanted and _nhwc_undilated(op) and _static(inputs, kernel, grad):
        strides = list(op.get_attr("strides"))
        input_gradient = gemm_input_gradient(
            grad, kernel, inputs.get_shape().as_list(), strides[1:3], _attr(op, "padding")
        )
    if input_gradient is None:
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


def gemm_input_gradients_by_default():
    """Whether `matmul_filter_gradients()` computes input gradients when not told:
    when TensorFlow's CPU kernels are Eigen's, not oneDNN's."""
    return not tf_compat.onednn_enabled()


@contextlib.contextmanager
def matmul_filter_gradients(enabled=True, on_fallback=None, input_gradients=None):
    """Within it, `Conv2D` ops get `conv2d_gradient`; `enabled=False` changes nothing.

    `on_fallback(op, reason)`, if given, is called for each stride-1 NHWC `Conv2D`
    whose filter gradient, built within the context, stays TensorFlow's because a
    shape is not static. `input_gradients`: whether input gradients are GEMMs or
    forward convolutions where `gemm_input_gradient` covers them; None:
    `gemm_input_gradients_by_default()`.
    """
    if not enabled:
        yield
        return
    if input_gradients is None:
        input_gradients = gemm_input_gradients_by_default()
    contexts = _state.__dict__.setdefault("contexts", [])
    contexts.append(_Context(on_fallback or (lambda op, reason: None), bool(input_gradients)))
    try:
        with tf.get_default_graph().gradient_override_map({"Conv2D": GRADIENT_OP_TYPE}):
            yield
    finally:
        contexts.pop()
