"""Learning-rate schedules: linear warm-up followed by steps or a cosine decay.

Both schedules are pure functions of the global step, so they give the same
value on every device and after a restart from a checkpoint.
"""

import math

import tensorflow.compat.v1 as tf


def _linear_warmup(step, warmup_learning_rate, init_learning_rate, warmup_steps):
    fraction = step / float(max(warmup_steps, 1))
    return warmup_learning_rate + fraction * (init_learning_rate - warmup_learning_rate)


def step_learning_rate(
    global_step,
    *,
    init_learning_rate,
    warmup_learning_rate,
    warmup_steps,
    learning_rate_levels,
    learning_rate_steps,
):
    """Warm-up, then `init_learning_rate`, then each level from its start step on.

    Args:
      global_step: integer scalar tensor.
      learning_rate_levels: rates that take over at the matching entry of
        `learning_rate_steps`; both lists have the same length, steps ascending.

    Returns:
      float32 scalar tensor.
    """
    if len(learning_rate_levels) != len(learning_rate_steps):
        raise ValueError(
            "learning_rate_levels and learning_rate_steps must have the same length; "
            f"got {list(learning_rate_levels)} and {list(learning_rate_steps)}"
        )
    step = tf.cast(global_step, tf.float32)
    rate = tf.where(
        step < warmup_steps,
        _linear_warmup(step, warmup_learning_rate, init_learning_rate, warmup_steps),
        tf.constant(init_learning_rate, tf.float32),
    )
    for level, start in zip(learning_rate_levels, learning_rate_steps):
        rate = tf.where(step >= start, tf.constant(level, tf.float32), rate)
    return rate


def cosine_learning_rate(
    global_step, *, init_learning_rate, warmup_learning_rate, warmup_steps, total_steps
):
    """Warm-up, then a half cosine from `init_learning_rate` to 0 at `total_steps`.

    Returns:
      float32 scalar tensor; 0 from `total_steps` on.
    """
    step = tf.cast(global_step, tf.float32)
    decay_steps = float(max(total_steps - warmup_steps, 1))
    progress = tf.minimum((step - warmup_steps) / decay_steps, 1.0)
    cosine = 0.5 * init_learning_rate * (1.0 + tf.cos(math.pi * progress))
    return tf.where(
        step < warmup_steps,
        _linear_warmup(step, warmup_learning_rate, init_learning_rate, warmup_steps),
        cosine,
    )


SCHEDULES = {"step": step_learning_rate, "cosine": cosine_learning_rate}


def build_learning_rate_fn(schedule, **kwargs):
    """Returns `fn(global_step) -> learning rate` for a schedule name in SCHEDULES."""
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}; valid: {sorted(SCHEDULES)}")
    fn = SCHEDULES[schedule]

    def learning_rate_fn(global_step):
        return fn(global_step, **kwargs)

    return learning_rate_fn
