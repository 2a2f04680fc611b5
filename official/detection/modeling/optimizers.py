"""The optimizer table: a name from `train.optimizer.type` to a TF1 optimizer."""

import tensorflow.compat.v1 as tf


def _momentum(learning_rate, momentum, nesterov):
    return tf.train.MomentumOptimizer(learning_rate, momentum=momentum, use_nesterov=nesterov)


def _sgd(learning_rate, momentum, nesterov):
    del momentum, nesterov
    return tf.train.GradientDescentOptimizer(learning_rate)


def _adam(learning_rate, momentum, nesterov):
    del momentum, nesterov
    return tf.train.AdamOptimizer(learning_rate)


def _adadelta(learning_rate, momentum, nesterov):
    del momentum, nesterov
    return tf.train.AdadeltaOptimizer(learning_rate)


def _adagrad(learning_rate, momentum, nesterov):
    del momentum, nesterov
    return tf.train.AdagradOptimizer(learning_rate)


def _rmsprop(learning_rate, momentum, nesterov):
    del nesterov
    # decay and epsilon as in the reference recipes that use RMSProp.
    return tf.train.RMSPropOptimizer(learning_rate, decay=0.9, momentum=momentum, epsilon=0.001)


OPTIMIZERS = {
    "momentum": _momentum,
    "sgd": _sgd,
    "adam": _adam,
    "adadelta": _adadelta,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
}


def build_optimizer(optimizer_type, learning_rate, *, momentum=0.9, nesterov=False):
    """Creates the optimizer named `optimizer_type` (a key of OPTIMIZERS)."""
    if optimizer_type not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer type {optimizer_type!r}; valid: {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[optimizer_type](learning_rate, momentum, nesterov)
