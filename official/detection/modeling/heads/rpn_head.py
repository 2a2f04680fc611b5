"""Region proposal network head (Ren et al., "Faster R-CNN", with FPN levels).

One small network runs on every pyramid level with the same weights: a 3x3
conv, then two 1x1 convs giving one objectness logit and four box codes per
anchor. Batch norm, when enabled, has its own statistics on every level. The
variables carry the ancestor's checkpoint names: `rpn_head/rpn` (3x3 conv),
`rpn_head/rpn-class`, `rpn_head/rpn-box`, and `rpn_head/rpn-l{level}-bn` for
the per-level batch norms.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.heads.head_layers import check_activation, check_ints, conv_layer
from official.detection.modeling.layers.batch_norm import BatchNormActivation


class RPNHead:
    """Objectness and box outputs for every anchor, shared across levels."""

    def __init__(
        self,
        min_level,
        max_level,
        anchors_per_location,
        num_convs=1,
        num_filters=256,
        *,
        use_separable_conv=False,
        activation="relu",
        use_batch_norm=False,
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
    ):
        """Args:
        min_level, max_level: pyramid levels to run on, inclusive.
        anchors_per_location: num_scales * len(aspect_ratios) (3 for the
          ancestor's Mask R-CNN).
        num_convs: 3x3 convs before the outputs. The ancestor always builds
          exactly one (named `rpn`) whatever its config says, which is the
          default here; further convs are named `rpn-{i}` (i >= 1) and have no
          counterpart in its checkpoints.
        num_filters: channels of those convs.
        use_separable_conv: depthwise-separable convs (depth multiplier 1,
          default initialisers) instead of plain convs initialised N(0, 0.01);
          the output convs follow the same choice, as in the ancestor.
        activation: 'relu' or 'swish', after each 3x3 conv (after its batch
          norm when use_batch_norm is True).
        use_batch_norm: per-level batch norm after each 3x3 conv (the
          ancestor's Mask R-CNN default is False).
        batch_norm_momentum, batch_norm_epsilon: batch-norm hyperparameters.
        """
        if min_level > max_level:
            raise ValueError(
                f"RPNHead: min_level must be <= max_level; got min_level={min_level}, "
                f"max_level={max_level}"
            )
        check_ints("RPNHead", 1, anchors_per_location=anchors_per_location)
        check_ints("RPNHead", 0, num_convs=num_convs)
        check_ints("RPNHead", 1, num_filters=num_filters)
        self._activation = check_activation("RPNHead", activation)
        self._min_level = min_level
        self._max_level = max_level
        self._anchors_per_location = anchors_per_location
        self._num_convs = num_convs
        self._num_filters = num_filters
        self._conv = conv_layer(use_separable_conv, tf.random_normal_initializer(stddev=0.01))
        self._batch_norm = None
        if use_batch_norm:
            self._batch_norm = BatchNormActivation(
                momentum=batch_norm_momentum, epsilon=batch_norm_epsilon, activation=activation
            )

    @property
    def levels(self):
        return list(range(self._min_level, self._max_level + 1))

    def __call__(self, features, is_training=False):
        """Runs the head on every level.

        Args:
          features: {level: float tensor [B, H_l, W_l, C]}, the same C on every
            level (the convs are shared); extra levels are ignored.
          is_training: batch norm uses batch statistics and updates its moving
            averages (UPDATE_OPS) when True.

        Returns:
          (score_outputs, box_outputs): {level: [B, H_l, W_l, A]} objectness
          logits and {level: [B, H_l, W_l, A * 4]} box codes (dy, dx, dh, dw
          per anchor, anchor-major), A = anchors_per_location, for levels
          min_level..max_level.
        """
        self._check_features(features)
        score_outputs = {}
        box_outputs = {}
        # AUTO_REUSE shares the named convs across levels while the
        # level-suffixed batch norms stay distinct.
        with tf.variable_scope("rpn_head", reuse=tf.AUTO_REUSE):
            for level in self.levels:
                score_outputs[level], box_outputs[level] = self._level_outputs(
                    features[level], level, is_training
                )
        return score_outputs, box_outputs

    def _check_features(self, features):
        missing = [level for level in self.levels if level not in features]
        if missing:
            raise ValueError(
                f"RPNHead: levels {missing} are missing; it needs levels "
                f"{self._min_level}..{self._max_level} and got {sorted(features)}"
            )
        channels = {level: features[level].get_shape().as_list()[-1] for level in self.levels}
        if len(set(channels.values())) > 1:
            raise ValueError(
                "RPNHead: all levels must have the same number of channels because the "
                f"convs are shared across levels; got channels per level {channels}"
            )

    def _level_outputs(self, features, level, is_training):
        for i in range(self._num_convs):
            name = "rpn" if i == 0 else f"rpn-{i}"
            features = self._conv(
                features,
                self._num_filters,
                kernel_size=(3, 3),
                padding="same",
                activation=self._activation if self._batch_norm is None else None,
                name=name,
            )
            if self._batch_norm is not None:
                features = self._batch_norm(
                    features, is_training=is_training, name=f"{name}-l{level}-bn"
                )
        scores = self._conv(
            features, self._anchors_per_location, kernel_size=(1, 1), name="rpn-class"
        )
        boxes = self._conv(
            features, 4 * self._anchors_per_location, kernel_size=(1, 1), name="rpn-box"
        )
        return scores, boxes
