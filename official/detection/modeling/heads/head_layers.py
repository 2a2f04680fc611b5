"""What the detection heads share: argument checks, initialisers and the conv layer
they build on (the `functional` primitives, so the heads get the CPU kernels and the
fast graph building that the backbones and FPN have)."""

import functools

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import activations, functional


def check_ints(owner, minimum, **values):
    """Raises ValueError unless each `name=value` is an int (not a bool) >= `minimum`;
    the message names `owner`, the argument and the value."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{owner}: {name} must be an int >= {minimum}; got {value!r}")


def check_activation(owner, activation):
    """The activation function named `activation`; ValueError listing the names otherwise."""
    if activation not in activations.ACTIVATIONS:
        raise ValueError(
            f"{owner}: unknown activation {activation!r}; valid: {sorted(activations.ACTIVATIONS)}"
        )
    return activations.ACTIVATIONS[activation]


def msra_initializer():
    """He-normal on fan-out (Caffe2's MSRA fill), the ancestor's R-CNN head initialiser."""
    return tf.variance_scaling_initializer(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def conv_layer(use_separable_conv, kernel_initializer):
    """`functional.conv2d` with `kernel_initializer`, or with `use_separable_conv`
    `functional.separable_conv2d` (depth multiplier 1, glorot-uniform kernels); the
    biases of both start at zero."""
    if use_separable_conv:
        return functools.partial(functional.separable_conv2d, depth_multiplier=1)
    return functools.partial(functional.conv2d, kernel_initializer=kernel_initializer)
