"""Nearest-neighbour resizing of NHWC feature maps (SpineNet's cross-scale connections)."""

import tensorflow.compat.v1 as tf


def nearest_upsample(features, scale):
    """Repeats every pixel in a `scale` x `scale` block.

    Reshape-and-tile rather than an image resize op: it is exact, and its
    gradient is a plain sum on every device.

    Args:
      features: tensor [B, H, W, C] with static C.
      scale: int >= 1.

    Returns:
      Tensor [B, H * scale, W * scale, C], same dtype; output pixel (y, x)
      equals input pixel (y // scale, x // scale).
    """
    if scale == 1:
        return features
    static = features.get_shape().as_list()
    dynamic = tf.shape(features)
    height, width, channels = (
        static[i] if static[i] is not None else dynamic[i] for i in (1, 2, 3)
    )
    features = tf.reshape(features, [-1, height, 1, width, 1, channels])
    features = tf.tile(features, [1, 1, scale, 1, scale, 1])
    return tf.reshape(features, [-1, height * scale, width * scale, channels])


def resize_nearest(features, size):
    """Nearest-neighbour resize to `size` = [height, width] for non-integer ratios.

    Uses `tf.image.resize_nearest_neighbor` without corner alignment or
    half-pixel centres: output pixel i reads input pixel floor(i * in / out).
    Computed in float32.

    Args:
      features: tensor [B, H, W, C].
      size: two ints [height_out, width_out].

    Returns:
      Tensor [B, height_out, width_out, C] of the dtype of `features`.
    """
    resized = tf.image.resize_nearest_neighbor(tf.cast(features, tf.float32), size)
    return tf.cast(resized, features.dtype)
