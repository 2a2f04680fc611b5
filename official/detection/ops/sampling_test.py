"""Tests for balanced positive/negative sampling."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import sampling


def _labels(num, positives, negatives, rng=None):
    """Random disjoint positive / negative sets; the rest is not valid."""
    rng = rng or np.random.RandomState(0)
    order = rng.permutation(num)
    positive = np.zeros([num], bool)
    valid = np.zeros([num], bool)
    positive[order[:positives]] = True
    valid[order[: positives + negatives]] = True
    return positive, valid


def _sample(positive, valid, num_samples=256, positive_fraction=0.5, seed=None, runs=1):
    with tf.Graph().as_default(), tf.Session() as sess:
        mask = sampling.sample_balanced(
            tf.constant(positive), tf.constant(valid), num_samples, positive_fraction, seed=seed
        )
        assert mask.shape.as_list() == [len(positive)]
        return [sess.run(mask) for _ in range(runs)]


@pytest.mark.parametrize(
    "positives, negatives, expected_pos, expected_neg",
    [
        (50, 500, 50, 206),  # short of positives: negatives fill the batch
        (300, 500, 128, 128),  # enough of both
        (300, 40, 128, 40),  # short of negatives: the batch stays short
        (10, 20, 10, 20),  # fewer than 256 in total: all of them
        (0, 1000, 0, 256),
        (0, 0, 0, 0),
    ],
)
def test_counts(positives, negatives, expected_pos, expected_neg):
    positive, valid = _labels(2000, positives, negatives)
    for mask in _sample(positive, valid, runs=3):
        assert (mask & positive).sum() == expected_pos
        assert (mask & ~positive).sum() == expected_neg
        assert not (mask & ~valid).any()


def test_positive_fraction_and_budget_are_respected():
    positive, valid = _labels(1000, 200, 600)
    (mask,) = _sample(positive, valid, num_samples=100, positive_fraction=0.25)
    assert (mask & positive).sum() == 25 and mask.sum() == 100
    (mask,) = _sample(positive, valid, num_samples=0)
    assert not mask.any()
    # Positives that are not valid are never drawn.
    (mask,) = _sample(positive, np.zeros_like(valid))
    assert not mask.any()


def test_seeded_sampling_is_deterministic_and_random():
    positive, valid = _labels(5000, 400, 3000)
    first = _sample(positive, valid, seed=7, runs=2)
    again = _sample(positive, valid, seed=7, runs=2)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])  # a new draw on every run
    other = _sample(positive, valid, seed=8)
    assert not np.array_equal(first[0], other[0])


def test_every_candidate_can_be_drawn():
    positive, valid = _labels(300, 20, 40)
    masks = np.stack(_sample(positive, valid, num_samples=20, positive_fraction=0.5, runs=60))
    drawn = masks.any(axis=0)
    np.testing.assert_array_equal(drawn, valid)
    # Each of the 20 positives is drawn in about half of the runs.
    rate = masks[:, positive].mean(axis=0)
    assert 0.2 < rate.min() and rate.max() < 0.8


def test_dense_masks_are_sampled_uniformly():
    # Nearly all examples are negatives (the RPN case): every one is equally likely.
    positive, valid = _labels(1000, 0, 1000)
    masks = np.stack(_sample(positive, valid, num_samples=50, runs=100))
    assert np.all(masks.sum(axis=1) == 50)
    counts = masks.sum(axis=0)  # about Binomial(100, 0.05) each
    assert counts.min() >= 0 and counts.max() <= 20
    assert abs(counts[:500].sum() - counts[500:].sum()) < 400  # 2500 each, sd 50


def test_input_errors():
    with tf.Graph().as_default():
        good = tf.zeros([10], tf.bool)
        with pytest.raises(
            ValueError,
            match=r"`labels_positive_bool` must be a bool \[N\] .* int32 of shape \[10\]",
        ):
            sampling.sample_balanced(tf.zeros([10], tf.int32), good, 4, 0.5)
        with pytest.raises(
            ValueError, match=r"`labels_valid_bool` must be a bool \[N\] tensor with a static N"
        ):
            sampling.sample_balanced(good, tf.placeholder(tf.bool, [None]), 4, 0.5)
        with pytest.raises(ValueError, match=r"must have the same length; received 10 and 5"):
            sampling.sample_balanced(good, tf.zeros([5], tf.bool), 4, 0.5)
        with pytest.raises(ValueError, match=r"`num_samples` must be an int >= 0; received -1"):
            sampling.sample_balanced(good, good, -1, 0.5)
        with pytest.raises(
            ValueError, match=r"`positive_fraction` must be in \[0, 1\]; received 1.5"
        ):
            sampling.sample_balanced(good, good, 4, 1.5)
