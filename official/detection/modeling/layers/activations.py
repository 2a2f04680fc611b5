"""Activation functions selectable by name (`batch_norm_activation.activation`)."""

import tensorflow.compat.v1 as tf


@tf.custom_gradient
def swish(features):
    """x * sigmoid(x) (Ramachandran et al., 2017), for a float tensor of any shape.

    Same values as `tf.nn.swish`; the gradient s + y * (1 - s) (s = sigmoid(x),
    y = x * s) reuses the forward sigmoid and output, where `tf.nn.swish`
    recomputes the sigmoid: about half the element-wise ops in the backward
    pass (activations_test checks it against `tf.nn.swish`).
    """
    sigmoid = tf.sigmoid(features)
    outputs = features * sigmoid

    def grad(upstream):
        return upstream * (sigmoid + outputs * (1.0 - sigmoid))

    return outputs, grad


ACTIVATIONS = {
    "relu": tf.nn.relu,
    "swish": swish,
}


def get_activation(name):
    """Returns the elementwise activation function called `name` ('relu' or 'swish')."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown name {name!r}; valid names: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
