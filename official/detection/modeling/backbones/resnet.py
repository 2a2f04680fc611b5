"""ResNet v1 backbone (He et al., Deep Residual Learning, CVPR 2016) returning C2..C5.

Variables live under `resnet{depth}/` with auto-generated names
(`conv2d[_N]/kernel`, `batch_normalization[_N]/...`) in the ancestor's
creation order: the 7x7 stem conv and its batch norm, then block by block
(projection shortcut first). ImageNet checkpoints of the same layout load with
the prefix `resnet{depth}/`, as in tensorflow/tpu detection checkpoints.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import blocks, conv, functional, stochastic_depth
from official.detection.modeling.layers.batch_norm import BatchNormActivation

# depth -> (block type, blocks per group for C2, C3, C4, C5)
RESNET_SPECS = {
    10: ("residual", (1, 1, 1, 1)),
    18: ("residual", (2, 2, 2, 2)),
    34: ("residual", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}

# Inner width of the blocks of C2..C5; bottleneck outputs are 4 times wider.
_GROUP_FILTERS = (64, 128, 256, 512)


class ResNet:
    """Builds the ResNet graph; `__call__` returns {level: feature} for levels 2..5."""

    def __init__(
        self,
        resnet_depth,
        *,
        activation="relu",
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
        batch_norm_trainable=True,
        use_sync_bn=False,
        init_drop_connect_rate=None,
        data_format="channels_last",
    ):
        """Args:
        resnet_depth: one of `RESNET_SPECS` (10, 18, 34, 50, 101, 152, 200).
        activation: 'relu' or 'swish', after every batch norm that has one and
          after each residual addition.
        batch_norm_momentum, batch_norm_epsilon, batch_norm_trainable,
          use_sync_bn: see `BatchNormActivation`.
        init_drop_connect_rate: stochastic depth; None or 0 disables it, else
          the blocks of C2..C5 drop their branch with probability
          rate * 2/5, 3/5, 4/5 and 5/5.
        data_format: 'channels_last' (inputs [B, H, W, 3]) or 'channels_first'.
        """
        if resnet_depth not in RESNET_SPECS:
            raise ValueError(
                f"ResNet: resnet_depth {resnet_depth!r} is not supported; "
                f"valid depths: {sorted(RESNET_SPECS)}"
            )
        stochastic_depth.check_drop_rate(init_drop_connect_rate, "ResNet")
        conv.check_data_format(data_format, "ResNet")
        block_name, self._repeats = RESNET_SPECS[resnet_depth]
        self._block_type = blocks.get_block_type(block_name, "ResNet")
        self._depth = resnet_depth
        self._init_drop_connect_rate = init_drop_connect_rate
        self._data_format = data_format
        self._batch_norm_activation = BatchNormActivation(
            momentum=batch_norm_momentum,
            epsilon=batch_norm_epsilon,
            trainable=batch_norm_trainable,
            use_sync_bn=use_sync_bn,
            activation=activation,
            data_format=data_format,
        )

    @property
    def scope(self):
        """Variable scope of the backbone, e.g. 'resnet50'."""
        return f"resnet{self._depth}"

    def output_channels(self, level):
        """Channels of the feature at `level` (2..5): 64..512, x4 for bottlenecks."""
        return _GROUP_FILTERS[level - 2] * self._block_type.expansion

    def __call__(self, inputs, is_training=False):
        """Builds the backbone on `inputs`.

        Args:
          inputs: float32 images [B, H, W, 3] (channels_last) or [B, 3, H, W].
          is_training: Python bool; batch statistics and stochastic depth.

        Returns:
          {level: tensor} for levels 2..5; level l has spatial size
          ceil(H / 2**l) x ceil(W / 2**l) (every stride pads to keep ceil) and
          `output_channels(l)` channels.
        """
        bn = self._batch_norm_activation
        with tf.variable_scope(self.scope):
            net = conv.conv2d_fixed_padding(inputs, 64, 7, 2, self._data_format)
            net = tf.identity(net, "initial_conv")
            net = bn(net, is_training=is_training)
            net = functional.max_pooling2d(
                net, pool_size=3, strides=2, padding="same", data_format=self._data_format
            )
            net = tf.identity(net, "initial_max_pool")

            features = {}
            for index, (filters, repeats) in enumerate(zip(_GROUP_FILTERS, self._repeats)):
                level = index + 2
                net = blocks.build_block_group(
                    net,
                    block_type=self._block_type,
                    filters=filters,
                    strides=1 if level == 2 else 2,
                    repeats=repeats,
                    use_projection=True,
                    batch_norm_activation=bn,
                    drop_rate=stochastic_depth.scale_drop_rate(
                        self._init_drop_connect_rate, level, 5
                    ),
                    is_training=is_training,
                    data_format=self._data_format,
                    name=f"block_group{index + 1}",
                )
                features[level] = net
        return features
