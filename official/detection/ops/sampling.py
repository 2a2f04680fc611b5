"""Balanced random subsampling of positive and negative examples (e.g. RPN anchors).

Up to `int(num_samples * positive_fraction)` positives are drawn at random; the rest
of the `num_samples` budget is filled with random negatives, so a batch short of
positives takes more negatives. When there are too few examples overall, all of them
are taken. Shapes stay static: the result is a boolean mask over the inputs.
"""

import tensorflow.compat.v1 as tf

# Random draws per wanted sample on the fast path of `_draw`: enough hits for masks that
# are at least about a third True.
_DRAWS_PER_SAMPLE = 4


def _check_mask(mask, name):
    mask = tf.convert_to_tensor(mask)
    dims = mask.shape.as_list() if mask.shape.ndims is not None else None
    if mask.dtype != tf.bool or dims is None or len(dims) != 1 or dims[0] is None:
        raise ValueError(
            f"sample_balanced: `{name}` must be a bool [N] tensor with a static N; received "
            f"{mask.dtype.name} of shape {dims}."
        )
    return mask, dims[0]


def _draw(mask, count, max_count, seeds):
    """int32 ids of min(count, #True) random True entries of a bool [N] mask.

    Dense masks (RPN negatives) take a fast path: ids drawn with replacement, in order
    of first occurrence and restricted to the mask, are a uniformly random sequence
    without replacement. When those draws hold too few hits (sparse masks, such as
    positives), the True entries are shuffled instead. Either way every subset of the
    requested size is equally likely. `seeds` holds the op seeds of the two paths.
    """
    num = mask.shape.as_list()[0]
    available = tf.reduce_sum(tf.cast(mask, tf.int32))
    wanted = tf.minimum(count, available)
    draws = tf.random.uniform([_DRAWS_PER_SAMPLE * max_count], 0, num, tf.int32, seed=seeds[0])
    distinct, _ = tf.unique(draws)
    hits = tf.boolean_mask(distinct, tf.gather(mask, distinct))

    def shuffle_all():
        ids = tf.cast(tf.where(mask)[:, 0], tf.int32)
        return tf.random.shuffle(ids, seed=seeds[1])[:wanted]

    return tf.cond(tf.size(hits) >= wanted, lambda: hits[:wanted], shuffle_all)


def sample_balanced(
    labels_positive_bool, labels_valid_bool, num_samples, positive_fraction, seed=None
):
    """Draws a balanced random subset of the valid examples.

    Args:
      labels_positive_bool: bool [N], True for positive examples.
      labels_valid_bool: bool [N], True for examples that may be sampled (positive or
        negative); positives that are not valid are never sampled.
      num_samples: Python int >= 0, the number of examples to draw.
      positive_fraction: Python float in [0, 1], the largest share of positives.
      seed: optional int; the random ops get op seeds seed, seed + 1, ... (graph-mode
        determinism also needs the graph seed, which TF fixes when only op seeds are set).

    Returns:
      bool [N], True for the sampled examples: min(#positives,
      int(num_samples * positive_fraction)) positives plus min(#negatives,
      num_samples - sampled positives) negatives.
    """
    positive, num = _check_mask(labels_positive_bool, "labels_positive_bool")
    valid, num_valid = _check_mask(labels_valid_bool, "labels_valid_bool")
    if num != num_valid:
        raise ValueError(
            "sample_balanced: `labels_positive_bool` and `labels_valid_bool` must have the same "
            f"length; received {num} and {num_valid}."
        )
    if not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(
            f"sample_balanced: `num_samples` must be an int >= 0; received {num_samples!r}."
        )
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(
            "sample_balanced: `positive_fraction` must be in [0, 1]; "
            f"received {positive_fraction!r}."
        )
    max_positives = int(num_samples * positive_fraction)
    with tf.name_scope("sample_balanced"):
        if num == 0:
            return tf.zeros([0], tf.bool)
        positive = tf.logical_and(positive, valid)
        negative = tf.logical_and(tf.logical_not(positive), valid)
        seeds = [None] * 4 if seed is None else [seed + i for i in range(4)]
        positive_ids = _draw(positive, max_positives, max_positives, seeds[:2])
        num_negatives = num_samples - tf.size(positive_ids)
        negative_ids = _draw(negative, num_negatives, num_samples, seeds[2:])
        ids = tf.concat([positive_ids, negative_ids], axis=0)
        hits = tf.scatter_nd(ids[:, tf.newaxis], tf.ones_like(ids), [num])
        return hits > 0
