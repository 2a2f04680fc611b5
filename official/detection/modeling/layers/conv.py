"""Convolutions whose padding depends on the kernel size only.

A strided 'SAME' convolution pads asymmetrically depending on whether the
input size is even or odd. Padding explicitly by `kernel_size - 1` (the
larger half after the image) and convolving 'VALID' makes a stride-2 layer
see the same neighbourhood for every input size, as the ancestor's
checkpoints were trained with.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import functional

DATA_FORMATS = ("channels_last", "channels_first")


def check_data_format(data_format, owner):
    """Raises ValueError unless `data_format` is 'channels_last' or 'channels_first'."""
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"{owner}: data_format must be one of {list(DATA_FORMATS)}; got {data_format!r}"
        )


def fixed_padding(inputs, kernel_size, data_format="channels_last"):
    """Zero-pads the two spatial dimensions by `kernel_size - 1` in total.

    Args:
      inputs: tensor [B, H, W, C] (channels_last) or [B, C, H, W].
      kernel_size: int >= 1; the padding is `(k - 1) // 2` before and the rest
        after each spatial dimension.
      data_format: 'channels_last' or 'channels_first'.

    Returns:
      Tensor [B, H + k - 1, W + k - 1, C] (or the channels_first equivalent).
    """
    pad_total = kernel_size - 1
    pad_before = pad_total // 2
    spatial = [pad_before, pad_total - pad_before]
    if data_format == "channels_last":
        paddings = [[0, 0], spatial, spatial, [0, 0]]
    else:
        paddings = [[0, 0], [0, 0], spatial, spatial]
    return tf.pad(inputs, paddings)


def conv2d_fixed_padding(inputs, filters, kernel_size, strides, data_format="channels_last"):
    """Bias-free conv creating `conv2d[_N]/kernel` [k, k, C_in, filters].

    Stride 1 convolves 'SAME'; larger strides pad with `fixed_padding` first
    and convolve 'VALID', so the output size is ceil(H / strides) either way.
    The kernel starts from `tf.variance_scaling_initializer()` (scale 1, fan-in,
    truncated normal).

    Args:
      inputs: float tensor [B, H, W, C_in] (channels_last) or [B, C_in, H, W].
      filters: output channels.
      kernel_size: int, square kernel.
      strides: int, same in both spatial dimensions.
      data_format: 'channels_last' or 'channels_first'.

    Returns:
      Tensor [B, ceil(H / strides), ceil(W / strides), filters] (or channels_first).
    """
    if strides > 1:
        inputs = fixed_padding(inputs, kernel_size, data_format=data_format)
    return functional.conv2d(
        inputs=inputs,
        filters=filters,
        kernel_size=kernel_size,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        use_bias=False,
        kernel_initializer=tf.variance_scaling_initializer(),
        data_format=data_format,
    )
