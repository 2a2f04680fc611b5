"""Training-mode batch norm over NHWC written out in a few ops, for CPUs.

oneDNN's fused batch norm, which TensorFlow uses on x86 CPUs, is 2-3x slower
for channel counts that are not a multiple of 4 (SpineNet-49S scales its
filters by 0.65: 41, 83, 166, ... channels); see docs/BENCHMARKS.md. This
version does the per-channel sums as matrix products over the [N, C] view of
the input (one GEMV each) and writes the gradient out:

  y = (x - mean) * gamma / sqrt(var + eps) + beta
  dbeta = sum(dy),  dgamma = sum(dy * (x - mean)) / sqrt(var + eps)
  dx = gamma / sqrt(var + eps) * (dy - dbeta / N - (x - mean) * dgamma / (N sqrt(var + eps)))

The variance is the two-pass one (of the centred input), as in the fused
kernel; the centred input is recomputed in the backward pass rather than kept.
"""

import tensorflow.compat.v1 as tf


def _channel_sums(values, ones):
    """[N, C] column sums of `values` (any shape ending in C) as one matrix product."""
    channels = values.get_shape().as_list()[-1]
    return tf.reshape(tf.matmul(ones, tf.reshape(values, [-1, channels])), [channels])


def batch_norm_training(inputs, gamma, beta, epsilon):
    """What `tf.nn.fused_batch_norm(..., is_training=True)` computes, for NHWC.

    Args:
      inputs: float32 tensor [B, H, W, C] with a fully static shape.
      gamma, beta: float32 [C] scale and offset.
      epsilon: added to the variance before the square root.

    Returns:
      (outputs, batch_mean, batch_variance): the normalised tensor, and the
      per-channel mean and the Bessel-corrected variance (N / (N - 1) times the
      one used to normalise), which is what the fused op returns for the moving
      averages.
    """
    shape = inputs.get_shape()
    if shape.ndims != 4 or not shape.is_fully_defined():
        raise ValueError(
            f"cpu_batch_norm.batch_norm_training: needs a static 4-D NHWC input; got {shape}"
        )
    batch, height, width, _ = shape.as_list()
    count = batch * height * width
    ones = tf.ones([1, count], inputs.dtype)
    statistics = []  # (mean, variance) of the one call below, for the moving averages

    @tf.custom_gradient
    def normalize(x, scale_param, offset):
        mean = _channel_sums(x, ones) / count
        centered = x - mean
        variance = _channel_sums(tf.square(centered), ones) / count
        inverse_std = tf.rsqrt(variance + epsilon)
        scale = scale_param * inverse_std
        outputs = centered * scale + offset
        statistics.append((mean, variance))

        def gradient(output_gradient):
            centered_again = x - mean
            offset_gradient = _channel_sums(output_gradient, ones)
            scale_gradient = _channel_sums(output_gradient * centered_again, ones) * inverse_std
            centered_factor = scale * inverse_std * scale_gradient / -count
            constant = scale * offset_gradient / -count
            input_gradient = output_gradient * scale + (centered_again * centered_factor + constant)
            return input_gradient, scale_gradient, offset_gradient

        return outputs, gradient

    outputs = normalize(inputs, gamma, beta)
    mean, variance = (tf.stop_gradient(t) for t in statistics[0])
    return outputs, mean, variance * (count / max(count - 1, 1))
