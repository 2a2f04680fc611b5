import math

import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling import learning_rates


def _values(fn, steps):
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        rate = fn(step)
        with tf.Session() as sess:
            return [float(sess.run(rate, {step: s})) for s in steps]


def test_step_schedule_warmup_then_levels():
    fn = learning_rates.build_learning_rate_fn(
        "step",
        init_learning_rate=0.08,
        warmup_learning_rate=0.0067,
        warmup_steps=500,
        learning_rate_levels=[0.008, 0.0008],
        learning_rate_steps=[15000, 20000],
    )
    got = _values(fn, [0, 250, 500, 14999, 15000, 19999, 20000, 30000])
    expected = [0.0067, 0.0067 + 0.5 * (0.08 - 0.0067), 0.08, 0.08, 0.008, 0.008, 0.0008, 0.0008]
    assert got == pytest.approx(expected, rel=1e-5)


def test_cosine_schedule_warmup_midpoint_and_end():
    fn = learning_rates.build_learning_rate_fn(
        "cosine",
        init_learning_rate=0.02,
        warmup_learning_rate=0.002,
        warmup_steps=100,
        total_steps=1100,
    )
    got = _values(fn, [0, 50, 100, 600, 1100, 2000])
    mid = 0.5 * 0.02 * (1 + math.cos(math.pi * 0.5))
    assert got == pytest.approx([0.002, 0.011, 0.02, mid, 0.0, 0.0], abs=1e-7)


def test_unknown_schedule_lists_choices():
    with pytest.raises(ValueError, match=r"Unknown learning-rate schedule 'linear'.*cosine.*step"):
        learning_rates.build_learning_rate_fn("linear")


def test_step_levels_and_steps_must_pair():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="same length"):
            learning_rates.step_learning_rate(
                tf.constant(0),
                init_learning_rate=0.1,
                warmup_learning_rate=0.0,
                warmup_steps=1,
                learning_rate_levels=[0.01, 0.001],
                learning_rate_steps=[10],
            )
