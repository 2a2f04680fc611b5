"""Stochastic depth ("drop connect"): drop a block's residual branch per example.

Huang et al., Deep Networks with Stochastic Depth (ECCV 2016). During training
each example's residual branch is zeroed with probability `drop_rate` and
otherwise scaled by `1 / (1 - drop_rate)`, so its expected value is unchanged
and evaluation can use the branch as is.
"""

import tensorflow.compat.v1 as tf


def check_drop_rate(rate, owner):
    """Raises ValueError unless `rate` is None or a float in [0, 1)."""
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(
            f"{owner}: init_drop_connect_rate must be None or a number in [0, 1); got {rate!r}"
        )


def scale_drop_rate(init_rate, position, total):
    """Drop rate of a block at `position` of `total`: `init_rate * position / total`.

    Deeper blocks are dropped more often, the last one at `init_rate`.
    Returns None (no stochastic depth) when `init_rate` is None or 0.
    """
    if not init_rate:
        return None
    return init_rate * float(position) / total


def drop_connect(inputs, *, drop_rate, is_training):
    """Zeroes whole examples of `inputs` at random while training.

    Args:
      inputs: float tensor [B, ...]; each example (index along axis 0) is kept
        or dropped as a whole.
      drop_rate: probability of dropping an example, in [0, 1), or None.
      is_training: Python bool; False returns `inputs` unchanged.

    Returns:
      Tensor of the shape and dtype of `inputs`: each example is either 0 or
      `inputs / (1 - drop_rate)`. Randomness follows the graph-level seed.
    """
    if not is_training or not drop_rate:
        return inputs
    keep_prob = 1.0 - drop_rate
    mask_shape = tf.concat(
        [tf.shape(inputs)[:1], tf.ones([inputs.shape.ndims - 1], dtype=tf.int32)], axis=0
    )
    # floor(keep_prob + U[0, 1)) is 1 with probability keep_prob, else 0.
    keep = tf.floor(keep_prob + tf.random_uniform(mask_shape, dtype=inputs.dtype))
    # One multiply by a per-example scale: the full-size tensor is touched once
    # in each direction instead of twice.
    return inputs * (keep / keep_prob)
