"""Feature Pyramid Network (Lin et al., CVPR 2017) and an identity neck.

Variable names follow the ancestor's checkpoints: 1x1 laterals `fpn/l{L}`,
3x3 smoothing convs `fpn/post_hoc_d{L}`, stride-2 convs for the extra coarse
levels `fpn/p{L}`, then one batch norm per output level `fpn/p{L}-bn`. The
layers are auto-named as by `tf.compat.v1.layers`, so the creation order below is
part of the checkpoint format: all laterals, all smoothing convs, the coarse
convs, and the batch norms last.
"""

import functools

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import activations, functional
from official.detection.modeling.layers.batch_norm import BatchNormActivation


def _check_levels(min_level, max_level, owner):
    if not (isinstance(min_level, int) and isinstance(max_level, int)):
        raise TypeError(
            f"{owner}: min_level and max_level must be ints; got {min_level!r} and {max_level!r}"
        )
    if min_level > max_level:
        raise ValueError(
            f"{owner}: min_level must be <= max_level; got min_level={min_level}, "
            f"max_level={max_level}"
        )


def _upsample_nearest_2x(features):
    """[B, H, W, C] -> [B, 2H, 2W, C], each pixel repeated in a 2x2 block."""
    static = features.get_shape().as_list()
    dynamic = tf.shape(features)
    height, width, channels = (
        static[i] if static[i] is not None else dynamic[i] for i in (1, 2, 3)
    )
    # A reshape-and-tile instead of tf.image.resize keeps the op set small and
    # exact on every device.
    features = tf.reshape(features, [-1, height, 1, width, 1, channels])
    features = tf.tile(features, [1, 1, 2, 1, 2, 1])
    return tf.reshape(features, [-1, height * 2, width * 2, channels])


class FPN:
    """Top-down feature pyramid with extra coarse levels for RetinaNet.

    Backbone levels from `min_level` to `min(max backbone level, max_level)`
    get a 1x1 lateral conv (with bias), are merged top-down by nearest 2x
    upsampling and addition, and smoothed by a 3x3 conv. Each further level up
    to `max_level` is a stride-2 3x3 conv of the level below; from the second
    extra level on its input first goes through `activation` (for ResNet:
    P6 = conv(P5), P7 = conv(relu(P6))).
    """

    def __init__(
        self,
        min_level=3,
        max_level=7,
        fpn_feat_dims=256,
        *,
        use_separable_conv=False,
        activation="relu",
        use_batch_norm=True,
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
    ):
        """Args:
        min_level, max_level: output levels, inclusive.
        fpn_feat_dims: channels of every output level.
        use_separable_conv: depthwise-separable convs (depth multiplier 1)
          instead of plain convs; the variables are then `depthwise_kernel`,
          `pointwise_kernel` and `bias`.
        activation: nonlinearity on the input of the second and later extra
          coarse levels, 'relu' or 'swish'. The ancestor always uses ReLU there,
          whatever `batch_norm_activation.activation` says: keep the default to
          compute what its checkpoints were trained with.
        use_batch_norm: one batch norm per output level after all convs (no
          activation after it).
        batch_norm_momentum, batch_norm_epsilon: batch-norm hyperparameters.
        """
        _check_levels(min_level, max_level, "FPN")
        if activation not in activations.ACTIVATIONS:
            raise ValueError(
                f"FPN: unknown activation {activation!r}; valid: {sorted(activations.ACTIVATIONS)}"
            )
        self._min_level = min_level
        self._max_level = max_level
        self._fpn_feat_dims = fpn_feat_dims
        self._activation = activations.ACTIVATIONS[activation]
        self._batch_norm = None
        if use_batch_norm:
            self._batch_norm = BatchNormActivation(
                momentum=batch_norm_momentum, epsilon=batch_norm_epsilon
            )
        if use_separable_conv:
            self._conv2d = functools.partial(functional.separable_conv2d, depth_multiplier=1)
        else:
            self._conv2d = functional.conv2d

    def _backbone_max_level(self, multilevel_features):
        available = sorted(multilevel_features)
        if not available:
            raise ValueError("FPN: multilevel_features is empty; expected levels {level: tensor}")
        top = min(available[-1], self._max_level)
        missing = [lv for lv in range(self._min_level, top + 1) if lv not in multilevel_features]
        if available[0] > self._min_level or top < self._min_level or missing:
            raise ValueError(
                f"FPN: needs backbone levels {self._min_level}..{max(top, self._min_level)} "
                f"(min_level={self._min_level}); got levels {available}"
            )
        return top

    def __call__(self, multilevel_features, is_training=False):
        """Builds the pyramid.

        Args:
          multilevel_features: {level: float tensor [B, H_l, W_l, C_l]} from the
            backbone, H_l = 2 * H_{l+1} (pad images to a multiple of 2**max_level).
          is_training: batch norm uses batch statistics and updates its moving
            averages (UPDATE_OPS) when True.

        Returns:
          {level: float tensor [B, H_l, W_l, fpn_feat_dims]} for levels
          min_level..max_level.
        """
        top = self._backbone_max_level(multilevel_features)
        dims = self._fpn_feat_dims
        with tf.variable_scope("fpn"):
            laterals = {
                level: self._conv2d(
                    multilevel_features[level],
                    filters=dims,
                    kernel_size=(1, 1),
                    padding="same",
                    name=f"l{level}",
                )
                for level in range(self._min_level, top + 1)
            }

            feats = {top: laterals[top]}
            for level in range(top - 1, self._min_level - 1, -1):
                upsampled = _upsample_nearest_2x(feats[level + 1])
                _check_same_spatial_size(upsampled, laterals[level], level)
                feats[level] = upsampled + laterals[level]

            for level in range(self._min_level, top + 1):
                feats[level] = self._conv2d(
                    feats[level],
                    filters=dims,
                    kernel_size=(3, 3),
                    strides=(1, 1),
                    padding="same",
                    name=f"post_hoc_d{level}",
                )

            for level in range(top + 1, self._max_level + 1):
                inputs = feats[level - 1]
                if level > top + 1:
                    inputs = self._activation(inputs)
                feats[level] = self._conv2d(
                    inputs,
                    filters=dims,
                    kernel_size=(3, 3),
                    strides=(2, 2),
                    padding="same",
                    name=f"p{level}",
                )

            if self._batch_norm is not None:
                for level in range(self._min_level, self._max_level + 1):
                    feats[level] = self._batch_norm(
                        feats[level],
                        is_training=is_training,
                        apply_activation=False,
                        name=f"p{level}-bn",
                    )
        return feats


def _check_same_spatial_size(upsampled, lateral, level):
    up_hw = upsampled.get_shape().as_list()[1:3]
    lateral_hw = lateral.get_shape().as_list()[1:3]
    if None in up_hw or None in lateral_hw:
        return
    if up_hw != lateral_hw:
        raise ValueError(
            f"FPN: level {level + 1} upsampled 2x has spatial size {up_hw} but level "
            f"{level} has {lateral_hw}; each level must be exactly half the size of the one "
            "below (pad the image to a multiple of 2**max_level)"
        )


class IdentityNeck:
    """Passes backbone levels min_level..max_level through unchanged.

    For backbones that already output the pyramid, such as SpineNet; creates
    no variables.
    """

    def __init__(self, min_level=3, max_level=7):
        _check_levels(min_level, max_level, "IdentityNeck")
        self._min_level = min_level
        self._max_level = max_level

    def __call__(self, multilevel_features, is_training=False):
        """Returns {level: tensor} for levels min_level..max_level.

        Args:
          multilevel_features: {level: float tensor [B, H_l, W_l, C]}; may hold
            more levels than needed (they are dropped).
          is_training: unused, for the neck interface.
        """
        del is_training
        wanted = range(self._min_level, self._max_level + 1)
        missing = [level for level in wanted if level not in multilevel_features]
        if missing:
            raise ValueError(
                f"IdentityNeck: levels {missing} are missing; it needs levels "
                f"{self._min_level}..{self._max_level} and the backbone gave "
                f"{sorted(multilevel_features)}"
            )
        return {level: multilevel_features[level] for level in wanted}
