"""SpineNet backbone (Du et al., SpineNet: Learning Scale-Permuted Backbone, CVPR 2020).

A stem (7x7 conv, max pool, two level-2 bottleneck groups) is followed by a
fixed, searched sequence of blocks at permuted scales. Every block sums two
earlier features, each resampled to the block's resolution and width; output
blocks also absorb earlier features that nothing else consumed. A 1x1 conv per
level maps the outputs to `endpoints_num_filters` channels.

Variables live under `spinenet/`: the stem and the endpoint convs directly in
it, block `i` under `sub_policy{i}/` with its two resamplings in
`resample_with_alpha_resample_{i}_{0,1}/` and its block group in
`scale_permuted_block_{i + 2}/` (the index of the feature it creates). Names
inside are the auto-generated `conv2d[_N]`, `batch_normalization[_N]`.
"""

import collections
import math

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import blocks, conv, functional, resize, stochastic_depth
from official.detection.modeling.layers.batch_norm import BatchNormActivation

# Channels of a block at each level before `filter_size_scale` (and before the
# x4 expansion of bottleneck blocks).
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}

BlockSpec = collections.namedtuple("BlockSpec", ["level", "block_fn", "input_offsets", "is_output"])

# The searched SpineNet-49 topology. input_offsets index the list of features
# built so far: 0 and 1 are the two stem groups, 2 + i is block i.
SPINENET_BLOCK_SPECS = (
    BlockSpec(2, "bottleneck", (0, 1), False),
    BlockSpec(4, "residual", (0, 1), False),
    BlockSpec(3, "bottleneck", (2, 3), False),
    BlockSpec(4, "bottleneck", (2, 4), False),
    BlockSpec(6, "residual", (3, 5), False),
    BlockSpec(4, "bottleneck", (3, 5), False),
    BlockSpec(5, "residual", (6, 7), False),
    BlockSpec(7, "residual", (6, 8), False),
    BlockSpec(5, "bottleneck", (8, 9), False),
    BlockSpec(5, "bottleneck", (8, 10), False),
    BlockSpec(4, "bottleneck", (5, 10), True),
    BlockSpec(3, "bottleneck", (4, 10), True),
    BlockSpec(5, "bottleneck", (7, 12), True),
    BlockSpec(7, "bottleneck", (5, 14), True),
    BlockSpec(6, "bottleneck", (12, 14), True),
)

Scaling = collections.namedtuple(
    "Scaling", ["endpoints_num_filters", "filter_size_scale", "resample_alpha", "block_repeats"]
)

# model_id -> scaling of the SpineNet-49 topology (SpineNet paper,
# Du et al. 2020; tensorflow/tpu `modeling/architecture/spinenet.py`).
SCALING_MAP = {
    "49S": Scaling(128, 0.65, 0.5, 1),
    "49": Scaling(256, 1.0, 0.5, 1),
    "96": Scaling(256, 1.0, 0.5, 2),
    "143": Scaling(256, 1.0, 1.0, 3),
    "143L": Scaling(256, 1.3, 1.0, 3),
    "190": Scaling(512, 1.3, 1.0, 4),
}

_NUM_STEM_FEATURES = 2
_STEM_BLOCK = "bottleneck"


def get_scaling(model_id):
    """Scaling of `model_id` ('49S', '49', '96', '143', '143L', '190'; case-insensitive)."""
    key = str(model_id).upper()
    if key not in SCALING_MAP:
        raise ValueError(
            f"SpineNet: model_id {model_id!r} is not supported; valid ids: {list(SCALING_MAP)}"
        )
    return SCALING_MAP[key]


def _check_block_specs(block_specs, min_level, max_level):
    """Validates the topology once, so a bad spec fails before any graph is built."""
    output_levels = []
    for i, spec in enumerate(block_specs):
        where = f"SpineNet: block_specs[{i}] = {tuple(spec)}"
        if spec.level not in FILTER_SIZE_MAP:
            raise ValueError(f"{where}: level must be one of {sorted(FILTER_SIZE_MAP)}")
        blocks.get_block_type(spec.block_fn, where)
        num_available = _NUM_STEM_FEATURES + i
        if len(spec.input_offsets) != 2 or not all(
            0 <= offset < num_available for offset in spec.input_offsets
        ):
            raise ValueError(
                f"{where}: input_offsets must be two indices in [0, {num_available - 1}] "
                "(features built before this block)"
            )
        if spec.is_output:
            output_levels.append(spec.level)
    expected = list(range(min_level, max_level + 1))
    if sorted(output_levels) != expected:
        raise ValueError(
            f"SpineNet: output blocks must cover each level {min_level}..{max_level} once; "
            f"block_specs output levels are {sorted(output_levels)}"
        )


def resample_with_alpha(
    features,
    *,
    input_block_type,
    target_width,
    target_filters,
    target_block_type,
    alpha,
    use_native_resize_op,
    batch_norm_activation,
    is_training,
    name,
):
    """Brings a parent feature to a block's resolution and channel count.

    A 1x1 conv first narrows the parent to `alpha` times its block width; a
    stride-2 3x3 conv (plus max pooling for larger ratios) downsamples, nearest
    neighbour upsamples; a final 1x1 conv with a linear batch norm matches the
    target block's input channels.

    Args:
      features: float tensor [B, H, W, C] with static H, W and C.
      input_block_type, target_block_type: `BlockType` of the parent and of the
        target block; bottlenecks have 4x wider features than their width.
      target_width: static width of the target level.
      target_filters: block width of the target (before expansion).
      alpha: `resample_alpha`.
      use_native_resize_op: upsample with the image resize op even for
        integer ratios.
      batch_norm_activation: a `BatchNormActivation`.
      is_training: Python bool.
      name: suffix of the variable scope `resample_with_alpha_{name}`.

    Returns:
      Tensor [B, H', target_width, target_filters * expansion].
    """
    _, height, width, num_filters = features.get_shape().as_list()
    narrow_filters = int(num_filters / input_block_type.expansion * alpha)
    bn = batch_norm_activation
    with tf.variable_scope(f"resample_with_alpha_{name}"):
        net = conv.conv2d_fixed_padding(features, narrow_filters, 1, 1)
        net = bn(net, is_training=is_training)

        if width > target_width:
            net = conv.conv2d_fixed_padding(net, narrow_filters, 3, 2)
            net = bn(net, is_training=is_training)
            ratio = width // target_width
            if ratio > 2:
                stride = ratio // 2 if width % target_width == 0 else 2
                pool_size = 3 if width / target_width <= 4 else 5
                net = functional.max_pooling2d(
                    net, pool_size=pool_size, strides=stride, padding="same"
                )
            # Widths that are not a power-of-two multiple of the target land
            # off by one after striding; snap them to the target grid.
            if net.get_shape().as_list()[2] != target_width:
                net = resize.resize_nearest(net, [int(target_width / width * height), target_width])
        elif width < target_width:
            if target_width % width != 0 or use_native_resize_op:
                net = resize.resize_nearest(net, [int(target_width / width * height), target_width])
            else:
                net = resize.nearest_upsample(net, target_width // width)

        net = conv.conv2d_fixed_padding(net, target_filters * target_block_type.expansion, 1, 1)
        net = bn(net, is_training=is_training, apply_activation=False)
    return net


class SpineNet:
    """Builds SpineNet; `__call__` returns {level: feature} for min_level..max_level."""

    scope = "spinenet"

    def __init__(
        self,
        model_id="49",
        *,
        min_level=3,
        max_level=7,
        block_specs=None,
        endpoints_num_filters=None,
        resample_alpha=None,
        block_repeats=None,
        filter_size_scale=None,
        activation="relu",
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
        batch_norm_trainable=True,
        use_sync_bn=False,
        init_drop_connect_rate=None,
        use_native_resize_op=False,
    ):
        """Args:
        model_id: key of `SCALING_MAP`; supplies every scaling argument left None.
        min_level, max_level: output levels; the output blocks of `block_specs`
          must cover each level in between exactly once.
        block_specs: sequence of (level, block_fn, (input0, input1), is_output);
          None uses `SPINENET_BLOCK_SPECS`.
        endpoints_num_filters: channels of every output level.
        resample_alpha: width factor of the resampling convs.
        block_repeats: blocks per block group (stem groups included).
        filter_size_scale: multiplies every block width of `FILTER_SIZE_MAP`.
        activation: 'relu' or 'swish'.
        batch_norm_momentum, batch_norm_epsilon, batch_norm_trainable,
          use_sync_bn: see `BatchNormActivation`.
        init_drop_connect_rate: stochastic depth; block i of n (stem excluded)
          drops its branch with probability rate * (i + 1) / n. None or 0
          disables it.
        use_native_resize_op: see `resample_with_alpha`.
        """
        scaling = get_scaling(model_id)
        self._endpoints_num_filters = (
            scaling.endpoints_num_filters
            if endpoints_num_filters is None
            else endpoints_num_filters
        )
        self._resample_alpha = scaling.resample_alpha if resample_alpha is None else resample_alpha
        self._block_repeats = scaling.block_repeats if block_repeats is None else block_repeats
        self._filter_size_scale = (
            scaling.filter_size_scale if filter_size_scale is None else filter_size_scale
        )
        specs = SPINENET_BLOCK_SPECS if block_specs is None else block_specs
        self._block_specs = [BlockSpec(*spec) for spec in specs]
        _check_block_specs(self._block_specs, min_level, max_level)
        stochastic_depth.check_drop_rate(init_drop_connect_rate, "SpineNet")
        self._min_level = min_level
        self._max_level = max_level
        self._init_drop_connect_rate = init_drop_connect_rate
        self._use_native_resize_op = use_native_resize_op
        self._batch_norm_activation = BatchNormActivation(
            momentum=batch_norm_momentum,
            epsilon=batch_norm_epsilon,
            trainable=batch_norm_trainable,
            use_sync_bn=use_sync_bn,
            activation=activation,
        )

    def output_channels(self, level):
        """Channels of every output level: `endpoints_num_filters`."""
        del level
        return self._endpoints_num_filters

    def _block_filters(self, level):
        return int(FILTER_SIZE_MAP[level] * self._filter_size_scale)

    def _build_stem(self, images, is_training):
        bn = self._batch_norm_activation
        net = conv.conv2d_fixed_padding(images, 64, 7, 2)
        net = tf.identity(net, "initial_conv")
        net = bn(net, is_training=is_training)
        net = functional.max_pooling2d(net, pool_size=3, strides=2, padding="same")
        net = tf.identity(net, "initial_max_pool")

        block_type = blocks.BLOCKS[_STEM_BLOCK]
        filters = self._block_filters(2)
        stem_features = []
        for i in range(_NUM_STEM_FEATURES):
            in_channels = net.get_shape().as_list()[-1]
            net = blocks.build_block_group(
                net,
                block_type=block_type,
                filters=filters,
                strides=1,
                repeats=self._block_repeats,
                use_projection=in_channels != filters * block_type.expansion,
                batch_norm_activation=bn,
                is_training=is_training,
                name=f"stem_block_{i + 1}",
            )
            stem_features.append(net)
        return stem_features

    def _build_scale_permuted(self, features, image_width, is_training):
        bn = self._batch_norm_activation
        block_types = [blocks.BLOCKS[_STEM_BLOCK]] * len(features)
        num_consumers = [0] * len(features)
        outputs = {}
        for i, spec in enumerate(self._block_specs):
            with tf.variable_scope(f"sub_policy{i}"):
                target_width = int(math.ceil(image_width / 2**spec.level))
                target_filters = self._block_filters(spec.level)
                target_type = blocks.BLOCKS[spec.block_fn]

                parents = []
                for side, offset in enumerate(spec.input_offsets):
                    parents.append(
                        resample_with_alpha(
                            features[offset],
                            input_block_type=block_types[offset],
                            target_width=target_width,
                            target_filters=target_filters,
                            target_block_type=target_type,
                            alpha=self._resample_alpha,
                            use_native_resize_op=self._use_native_resize_op,
                            batch_norm_activation=bn,
                            is_training=is_training,
                            name=f"resample_{i}_{side}",
                        )
                    )
                    num_consumers[offset] += 1
                net = parents[0] + parents[1]

                # Output blocks take in features no later block consumed, when
                # their shape matches, so no computed feature is wasted.
                if spec.is_output:
                    for j, feature in enumerate(features):
                        _, _, width, channels = feature.get_shape().as_list()
                        if (
                            num_consumers[j] == 0
                            and width == target_width
                            and channels == net.get_shape().as_list()[-1]
                        ):
                            net += feature
                            num_consumers[j] += 1

                with tf.variable_scope(f"scale_permuted_block_{len(features)}"):
                    net = bn.activation(net)
                    net = blocks.build_block_group(
                        net,
                        block_type=target_type,
                        filters=target_filters,
                        strides=1,
                        repeats=self._block_repeats,
                        use_projection=(
                            net.get_shape().as_list()[-1] != target_filters * target_type.expansion
                        ),
                        batch_norm_activation=bn,
                        drop_rate=stochastic_depth.scale_drop_rate(
                            self._init_drop_connect_rate, i + 1, len(self._block_specs)
                        ),
                        is_training=is_training,
                        name=f"scale_permuted_block_{i}",
                    )
            features.append(net)
            block_types.append(target_type)
            num_consumers.append(0)
            if spec.is_output:
                outputs[spec.level] = net
        return outputs

    def __call__(self, inputs, is_training=False):
        """Builds the backbone on `inputs`.

        Args:
          inputs: float32 tensor [B, H, W, 3] with static H and W (the level
            sizes derive from them).
          is_training: Python bool; batch statistics and stochastic depth.

        Returns:
          {level: tensor [B, H_l, ceil(W / 2**level), endpoints_num_filters]}
          for min_level..max_level.
        """
        shape = inputs.get_shape()
        if shape.ndims != 4 or shape[1] is None or shape[2] is None:
            raise ValueError(
                "SpineNet: inputs must be [B, H, W, 3] with static height and width; "
                f"got shape {shape}"
            )
        image_width = shape.as_list()[2]
        bn = self._batch_norm_activation
        with tf.variable_scope(self.scope):
            features = self._build_stem(inputs, is_training)
            block_outputs = self._build_scale_permuted(features, image_width, is_training)
            endpoints = {}
            for level in range(self._min_level, self._max_level + 1):
                net = conv.conv2d_fixed_padding(
                    block_outputs[level], self._endpoints_num_filters, 1, 1
                )
                endpoints[level] = bn(net, is_training=is_training)
        return endpoints
