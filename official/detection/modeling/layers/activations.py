"""Activation functions selectable by name (`batch_norm_activation.activation`)."""

import tensorflow.compat.v1 as tf

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "swish": tf.nn.swish,
}


def get_activation(name):
    """Returns the elementwise activation function called `name` ('relu' or 'swish')."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown name {name!r}; valid names: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
