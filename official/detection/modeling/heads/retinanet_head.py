"""RetinaNet head (Lin et al., "Focal Loss for Dense Object Detection").

Two subnets run on every pyramid level: `class_net` predicts
`anchors_per_location * num_classes` sigmoid logits and `box_net`
`anchors_per_location * 4` box codes per position. Their convolutions are
shared across levels, their batch norms are not (each level has its own
statistics), which gives the ancestor's checkpoint names:
`retinanet/class_net/class-{i}` (shared conv), `retinanet/class_net/class-{i}-{level}`
(batch norm), `retinanet/class_net/class-predict`, and the same under
`retinanet/box_net/box-*`. Variables are created level by level, class net
before box net, as in the ancestor.
"""

import math

import tensorflow.compat.v1 as tf

from official.detection.modeling.heads.head_layers import check_activation, check_ints, conv_layer
from official.detection.modeling.layers.batch_norm import BatchNormActivation

# Initial foreground probability of every class logit (the paper's prior pi),
# so that the many background anchors do not swamp the first iterations.
CLASS_PRIOR_PROBABILITY = 0.01


class RetinaNetHead:
    """Class and box subnets shared across pyramid levels."""

    def __init__(
        self,
        min_level,
        max_level,
        num_classes,
        anchors_per_location,
        num_convs=4,
        num_filters=256,
        *,
        use_separable_conv=False,
        activation="relu",
        use_batch_norm=True,
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
    ):
        """Args:
        min_level, max_level: pyramid levels to run on, inclusive.
        num_classes: sigmoid outputs per anchor, background (class 0) included,
          e.g. 91 for COCO.
        anchors_per_location: num_scales * len(aspect_ratios).
        num_convs: 3x3 convs before each prediction conv.
        num_filters: channels of those convs (256 for ResNet-FPN, 128 for
          SpineNet-49S).
        use_separable_conv: depthwise-separable convs (depth multiplier 1) with
          default initialisers, instead of plain convs initialised N(0, 0.01).
        activation: 'relu' or 'swish', after each batch norm (or on the conv
          itself when use_batch_norm is False).
        use_batch_norm: per-level batch norm after each shared conv.
        batch_norm_momentum, batch_norm_epsilon: batch-norm hyperparameters.
        """
        if min_level > max_level:
            raise ValueError(
                f"RetinaNetHead: min_level must be <= max_level; got min_level={min_level}, "
                f"max_level={max_level}"
            )
        check_ints("RetinaNetHead", 1, num_classes=num_classes, num_filters=num_filters)
        check_ints("RetinaNetHead", 1, anchors_per_location=anchors_per_location)
        check_ints("RetinaNetHead", 0, num_convs=num_convs)
        self._activation = check_activation("RetinaNetHead", activation)
        self._min_level = min_level
        self._max_level = max_level
        self._num_classes = num_classes
        self._anchors_per_location = anchors_per_location
        self._num_convs = num_convs
        self._num_filters = num_filters
        self._use_separable_conv = use_separable_conv
        self._batch_norm = None
        if use_batch_norm:
            self._batch_norm = BatchNormActivation(
                momentum=batch_norm_momentum, epsilon=batch_norm_epsilon, activation=activation
            )

    @property
    def levels(self):
        return list(range(self._min_level, self._max_level + 1))

    def __call__(self, features, is_training=False):
        """Runs both subnets on every level.

        Args:
          features: {level: float tensor [B, H_l, W_l, C]}, the same C on every
            level (the convs are shared); extra levels are ignored.
          is_training: batch norm uses batch statistics and updates its moving
            averages (UPDATE_OPS) when True.

        Returns:
          (cls_outputs, box_outputs): {level: [B, H_l, W_l, A * num_classes]}
          logits, anchor-major (channel a * num_classes + k is class k of
          anchor a), and {level: [B, H_l, W_l, A * 4]} box codes
          (dy, dx, dh, dw per anchor), for levels min_level..max_level.
        """
        self._check_features(features)
        prior_logit = -math.log((1.0 - CLASS_PRIOR_PROBABILITY) / CLASS_PRIOR_PROBABILITY)
        cls_outputs = {}
        box_outputs = {}
        with tf.variable_scope("retinanet"):
            for level in self.levels:
                # AUTO_REUSE shares the named convs across levels while the
                # level-suffixed batch norms stay distinct.
                with tf.variable_scope("class_net", reuse=tf.AUTO_REUSE):
                    cls_outputs[level] = self._subnet(
                        features[level],
                        level,
                        prefix="class",
                        num_outputs=self._num_classes * self._anchors_per_location,
                        bias_initializer=tf.constant_initializer(prior_logit),
                        is_training=is_training,
                    )
                with tf.variable_scope("box_net", reuse=tf.AUTO_REUSE):
                    box_outputs[level] = self._subnet(
                        features[level],
                        level,
                        prefix="box",
                        num_outputs=4 * self._anchors_per_location,
                        bias_initializer=tf.zeros_initializer(),
                        is_training=is_training,
                    )
        return cls_outputs, box_outputs

    def _check_features(self, features):
        missing = [level for level in self.levels if level not in features]
        if missing:
            raise ValueError(
                f"RetinaNetHead: levels {missing} are missing; it needs levels "
                f"{self._min_level}..{self._max_level} and got {sorted(features)}"
            )
        channels = {level: features[level].get_shape().as_list()[-1] for level in self.levels}
        if len(set(channels.values())) > 1:
            raise ValueError(
                "RetinaNetHead: all levels must have the same number of channels because the "
                f"convs are shared across levels; got channels per level {channels}"
            )

    def _conv(self, features, filters, name, *, kernel_stddev, bias_initializer, activation=None):
        conv = conv_layer(
            self._use_separable_conv, tf.random_normal_initializer(stddev=kernel_stddev)
        )
        return conv(
            features,
            filters,
            kernel_size=(3, 3),
            padding="same",
            activation=activation,
            bias_initializer=bias_initializer,
            name=name,
        )

    def _subnet(self, features, level, *, prefix, num_outputs, bias_initializer, is_training):
        for i in range(self._num_convs):
            features = self._conv(
                features,
                self._num_filters,
                f"{prefix}-{i}",
                kernel_stddev=0.01,
                bias_initializer=tf.zeros_initializer(),
                activation=self._activation if self._batch_norm is None else None,
            )
            if self._batch_norm is not None:
                features = self._batch_norm(
                    features, is_training=is_training, name=f"{prefix}-{i}-{level}"
                )
        # A tiny kernel makes the initial logits equal the bias (the prior).
        return self._conv(
            features,
            num_outputs,
            f"{prefix}-predict",
            kernel_stddev=1e-5,
            bias_initializer=bias_initializer,
        )
