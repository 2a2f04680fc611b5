"""Residual and bottleneck blocks (He et al., 2016), shared by ResNet and SpineNet.

Post-activation ("v1") blocks: conv -> batch norm -> activation, with the last
batch norm of the branch left linear, the shortcut added, then the
activation. Layers are created in the ancestor's order, which fixes the
auto-generated variable names: the projection shortcut first (when used),
then the branch convs. Every conv is bias-free and followed by its own batch
norm. The stride sits on the first 3x3 conv of the branch and on the 1x1
projection.
"""

import collections

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import conv, stochastic_depth

BlockType = collections.namedtuple("BlockType", ["build", "expansion"])


def residual_block(
    inputs,
    filters,
    strides,
    *,
    use_projection,
    batch_norm_activation,
    drop_rate=None,
    is_training=False,
    data_format="channels_last",
):
    """Two 3x3 convs with a shortcut; output has `filters` channels.

    Args:
      inputs: float tensor [B, H, W, C_in] (or channels_first).
      filters: channels of both convs and of the output.
      strides: stride of the first conv and of the projection.
      use_projection: True adds a 1x1 conv + batch norm on the shortcut; it
        must be True when the stride or the channel count changes.
      batch_norm_activation: a `BatchNormActivation`; its activation is also
        applied after the addition.
      drop_rate: stochastic-depth drop probability of the branch, or None.
      is_training: Python bool.
      data_format: 'channels_last' or 'channels_first'.

    Returns:
      Tensor [B, ceil(H / strides), ceil(W / strides), filters].
    """
    shortcut = inputs
    if use_projection:
        shortcut = conv.conv2d_fixed_padding(inputs, filters, 1, strides, data_format)
        shortcut = batch_norm_activation(shortcut, is_training=is_training, apply_activation=False)

    net = conv.conv2d_fixed_padding(inputs, filters, 3, strides, data_format)
    net = batch_norm_activation(net, is_training=is_training)
    net = conv.conv2d_fixed_padding(net, filters, 3, 1, data_format)
    net = batch_norm_activation(net, is_training=is_training, apply_activation=False)
    net = stochastic_depth.drop_connect(net, drop_rate=drop_rate, is_training=is_training)
    return batch_norm_activation.activation(net + shortcut)


def bottleneck_block(
    inputs,
    filters,
    strides,
    *,
    use_projection,
    batch_norm_activation,
    drop_rate=None,
    is_training=False,
    data_format="channels_last",
):
    """1x1 reduce, 3x3, 1x1 expand with a shortcut; output has `4 * filters` channels.

    Args: as `residual_block`; `filters` is the width of the two inner convs.

    Returns:
      Tensor [B, ceil(H / strides), ceil(W / strides), 4 * filters].
    """
    shortcut = inputs
    if use_projection:
        shortcut = conv.conv2d_fixed_padding(inputs, 4 * filters, 1, strides, data_format)
        shortcut = batch_norm_activation(shortcut, is_training=is_training, apply_activation=False)

    net = conv.conv2d_fixed_padding(inputs, filters, 1, 1, data_format)
    net = batch_norm_activation(net, is_training=is_training)
    net = conv.conv2d_fixed_padding(net, filters, 3, strides, data_format)
    net = batch_norm_activation(net, is_training=is_training)
    net = conv.conv2d_fixed_padding(net, 4 * filters, 1, 1, data_format)
    net = batch_norm_activation(net, is_training=is_training, apply_activation=False)
    net = stochastic_depth.drop_connect(net, drop_rate=drop_rate, is_training=is_training)
    return batch_norm_activation.activation(net + shortcut)


BLOCKS = {
    "residual": BlockType(build=residual_block, expansion=1),
    "bottleneck": BlockType(build=bottleneck_block, expansion=4),
}


def get_block_type(name, owner):
    """The `BlockType` called `name` ('residual' or 'bottleneck'); ValueError otherwise."""
    if name not in BLOCKS:
        raise ValueError(f"{owner}: unknown block type {name!r}; valid types: {sorted(BLOCKS)}")
    return BLOCKS[name]


def build_block_group(
    inputs,
    *,
    block_type,
    filters,
    strides,
    repeats,
    use_projection,
    batch_norm_activation,
    drop_rate=None,
    is_training=False,
    data_format="channels_last",
    name=None,
):
    """`repeats` blocks of one type; only the first strides and may project.

    Args:
      inputs: float tensor [B, H, W, C_in] (or channels_first).
      block_type: a `BlockType` from `BLOCKS`.
      filters, batch_norm_activation, drop_rate, is_training, data_format: as
        in `residual_block`; every block of the group gets the same drop rate.
      strides: stride of the first block.
      repeats: number of blocks, >= 1.
      use_projection: projection shortcut on the first block.
      name: name of the output identity op.

    Returns:
      Tensor [B, ceil(H / strides), ceil(W / strides), filters * expansion].
    """
    net = inputs
    for index in range(repeats):
        net = block_type.build(
            net,
            filters,
            strides if index == 0 else 1,
            use_projection=use_projection and index == 0,
            batch_norm_activation=batch_norm_activation,
            drop_rate=drop_rate,
            is_training=is_training,
            data_format=data_format,
        )
    return tf.identity(net, name)
