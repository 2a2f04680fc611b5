"""Mask R-CNN mask head (He et al., ICCV 2017) on RoIAlign features.

3x3 convs on the S x S RoI features, a 2x2 stride-2 transposed conv to 2S x 2S,
then a 1x1 conv to one mask logit per class; the head returns the logits of
one class per RoI. Variable names and shapes follow the ancestor's
checkpoints: `mask_head/mask-conv-l{i}`, `mask_head/conv5-mask` (kernel
[2, 2, out, in], the transposed-conv layout), `mask_head/mask_fcn_logits`, and
auto-named `batch_normalization[_N]` after each conv when batch norm is on.

The last two layers are computed differently from the ancestor, with the same
variables and the same result up to float rounding, because it is cheaper:
- The transposed conv has a 2x2 kernel and stride 2, so output pixel
  (2i + a, 2j + b) depends on input pixel (i, j) only, through kernel tap
  (a, b). It is one matmul of the input with the kernel rearranged to
  [in, 4 * out], which gives the four sub-pixels of every input pixel side by
  side.
- The activation and the 1x1 logits conv act per pixel, so they run on that
  sub-pixel layout, and only the kernel column of the RoI's class is applied
  (the ancestor computes all `num_classes` logits, then keeps one). Only the
  single-channel result is rearranged into a 2S x 2S image.
On a 2-core CPU, forward plus backward for 256 RoIs of 14x14x256 and 91
classes, these two layers cost 1.45 CPU-seconds here, 2.5 as the ancestor
computes them (`conv2d_transpose`, all-class logits, gather) and 2.7 with a 1x1
conv to 4 * out channels and `depth_to_space`. The four 3x3 convs, about 10.5
CPU-seconds, dominate the head; `only_foreground_rois` skips them for RoIs the
mask loss ignores.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.heads.head_layers import (
    check_activation,
    check_ints,
    conv_layer,
    msra_initializer,
)
from official.detection.modeling.layers.batch_norm import BatchNormActivation


def deconv_2x2_as_matmul(features, kernel):
    """A 2x2, stride-2, 'VALID' transposed conv in the sub-pixel layout.

    Equals `tf.nn.conv2d_transpose(features, kernel, [N, 2H, 2W, F], strides=2,
    padding='VALID')` after `depth_to_space`-style rearrangement: output
    pixel (2i + a, 2j + b) is `result[:, i, j, 2a + b]`.

    Args:
      features: float tensor [N, H, W, C] with static C.
      kernel: float tensor [2, 2, F, C] (transposed-conv layout: taps, output
        channels, input channels).

    Returns:
      float tensor [N, H, W, 4, F], no bias.
    """
    channels = features.get_shape().as_list()[-1]
    filters = kernel.get_shape().as_list()[2]
    # [2, 2, F, C] -> [C, 2, 2, F] -> [C, 4F]: column (2a + b) * F + f is tap (a, b), filter f.
    weights = tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [channels, 4 * filters])
    shape = tf.shape(features)
    outputs = tf.matmul(tf.reshape(features, [-1, channels]), weights)
    return tf.reshape(outputs, tf.stack([shape[0], shape[1], shape[2], 4, filters]))


class MaskHead:
    """Class-specific mask logits for every RoI."""

    def __init__(
        self,
        num_classes,
        mask_target_size=28,
        num_convs=4,
        num_filters=256,
        *,
        use_separable_conv=False,
        activation="relu",
        use_batch_norm=False,
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
        only_foreground_rois=False,
    ):
        """Args:
        num_classes: mask classes, background (0) included, e.g. 91.
        mask_target_size: side of the predicted masks, twice the RoI feature
          side (28 for 14x14 RoIAlign features).
        num_convs: 3x3 convs before the transposed conv.
        num_filters: channels of those convs and of the transposed conv.
        use_separable_conv: depthwise-separable 3x3 and logits convs (depth
          multiplier 1, default initialisers) instead of plain convs with MSRA
          fill; the transposed conv stays plain, as in the ancestor.
        activation: 'relu' or 'swish', after each conv and the transposed conv
          (after its batch norm when use_batch_norm is True).
        use_batch_norm: batch norm after each conv and the transposed conv
          (the ancestor's Mask R-CNN default is False).
        batch_norm_momentum, batch_norm_epsilon: batch-norm hyperparameters.
        only_foreground_rois: run the network only on RoIs whose class index
          is > 0 and return logits 0 for the others. The mask loss ignores
          those RoIs (padding of the mask sampler, padded detections), so
          the loss and its gradients are unchanged while the cost falls with
          the share of such RoIs. The number of RoIs computed is then dynamic,
          which CPUs and GPUs handle and NPUs do not. Not applied when training
          with batch norm, whose batch statistics span every RoI.
        """
        check_ints("MaskHead", 1, num_classes=num_classes, num_filters=num_filters)
        check_ints("MaskHead", 2, mask_target_size=mask_target_size)
        check_ints("MaskHead", 0, num_convs=num_convs)
        if mask_target_size % 2:
            raise ValueError(
                f"MaskHead: mask_target_size must be even (twice the RoI feature size); "
                f"got {mask_target_size}"
            )
        self._activation = check_activation("MaskHead", activation)
        self._num_classes = num_classes
        self._mask_target_size = mask_target_size
        self._num_convs = num_convs
        self._num_filters = num_filters
        self._use_separable_conv = bool(use_separable_conv)
        self._only_foreground_rois = bool(only_foreground_rois)
        self._conv = conv_layer(use_separable_conv, msra_initializer())
        self._batch_norm = None
        if use_batch_norm:
            self._batch_norm = BatchNormActivation(
                momentum=batch_norm_momentum, epsilon=batch_norm_epsilon, activation=activation
            )

    def __call__(self, roi_features, class_indices, is_training=False):
        """Predicts one mask per RoI, for the RoI's class.

        Args:
          roi_features: float tensor [B, R, S, S, C] (RoIAlign output, 14x14 in
            the ancestor) with static R, S and C; 2S must equal
            mask_target_size.
          class_indices: int tensor [B, R], the class whose mask each RoI gets,
            in [0, num_classes) (the target class in training, the detected
            class in inference); an id outside that range gets logits 0.
          is_training: batch norm uses batch statistics and updates its moving
            averages (UPDATE_OPS) when True.

        Returns:
          float tensor [B, R, mask_target_size, mask_target_size]: mask logits
          of each RoI's class.
        """
        num_rois, size, channels = self._check_inputs(roi_features, class_indices)
        batch_size = tf.shape(roi_features)[0]
        features = tf.reshape(roi_features, [-1, size, size, channels])
        classes = tf.reshape(tf.cast(class_indices, tf.int32), [-1])
        with tf.variable_scope("mask_head"):
            if self._only_foreground_rois and not (self._batch_norm is not None and is_training):
                keep = tf.where(tf.greater(classes, 0))[:, 0]
                foreground_masks = self._masks(
                    tf.gather(features, keep), tf.gather(classes, keep), is_training
                )
                side = self._mask_target_size
                masks = tf.scatter_nd(
                    keep[:, tf.newaxis],
                    foreground_masks,
                    tf.stack([tf.shape(features, out_type=tf.int64)[0], side, side]),
                )
            else:
                masks = self._masks(features, classes, is_training)
        return tf.reshape(
            masks, [batch_size, num_rois, self._mask_target_size, self._mask_target_size]
        )

    def _masks(self, features, classes, is_training):
        """[N, S, S, C] features and [N] classes -> [N, 2S, 2S] logits."""
        size = features.get_shape().as_list()[1]
        net = features
        for i in range(self._num_convs):
            net = self._conv(
                net,
                self._num_filters,
                kernel_size=(3, 3),
                padding="same",
                activation=self._activation if self._batch_norm is None else None,
                name=f"mask-conv-l{i}",
            )
            net = self._normalize(net, is_training)
        net = self._upsample(net, is_training)
        logits = self._class_logits(net, classes)
        # [N, S, S, 2, 2] (a, b sub-pixels) -> [N, S, 2, S, 2] -> rows 2i + a, columns 2j + b.
        logits = tf.transpose(tf.reshape(logits, [-1, size, size, 2, 2]), [0, 1, 3, 2, 4])
        return tf.reshape(logits, [-1, 2 * size, 2 * size])

    def _check_inputs(self, roi_features, class_indices):
        shape = roi_features.get_shape().as_list()
        if len(shape) != 5 or None in shape[1:] or shape[2] != shape[3]:
            raise ValueError(
                "MaskHead: roi_features must be [B, R, S, S, C] with static R, S and C; "
                f"got shape {shape}"
            )
        if 2 * shape[2] != self._mask_target_size:
            raise ValueError(
                f"MaskHead: mask_target_size={self._mask_target_size} must be twice the RoI "
                f"feature size; got roi_features of shape {shape}"
            )
        class_shape = class_indices.get_shape().as_list()
        if len(class_shape) != 2 or any(
            c is not None and s is not None and c != s for c, s in zip(class_shape, shape[:2])
        ):
            raise ValueError(
                f"MaskHead: class_indices must be [B, R] = {shape[:2]}; got shape {class_shape}"
            )
        if not class_indices.dtype.is_integer:
            raise TypeError(
                f"MaskHead: class_indices must be an integer tensor; got {class_indices.dtype.name}"
            )
        return shape[1], shape[2], shape[4]

    def _normalize(self, net, is_training):
        if self._batch_norm is None:
            return net
        return self._batch_norm(net, is_training=is_training)

    def _upsample(self, net, is_training):
        """The `conv5-mask` transposed conv; [N, S, S, C] -> [N, S, S, 4, F] sub-pixels."""
        channels = net.get_shape().as_list()[-1]
        with tf.variable_scope("conv5-mask"):
            kernel = tf.get_variable(
                "kernel",
                [2, 2, self._num_filters, channels],
                dtype=tf.float32,
                initializer=msra_initializer(),
            )
            bias = tf.get_variable(
                "bias", [self._num_filters], dtype=tf.float32, initializer=tf.zeros_initializer()
            )
        net = deconv_2x2_as_matmul(net, tf.cast(kernel, net.dtype)) + tf.cast(bias, net.dtype)
        if self._batch_norm is None:
            return self._activation(net)
        # Batch norm's statistics are per channel over all pixels, which does
        # not depend on the pixel layout; fold the sub-pixels into width for
        # the fused 4-D kernel.
        shape = tf.shape(net)
        folded = tf.reshape(net, tf.stack([shape[0], shape[1], shape[2] * 4, self._num_filters]))
        folded = self._batch_norm(folded, is_training=is_training)
        return tf.reshape(folded, shape)

    def _class_logits(self, net, class_indices):
        """The `mask_fcn_logits` 1x1 conv, for one class per RoI; -> [N, S, S, 4]."""
        filters = net.get_shape().as_list()[-1]
        with tf.variable_scope("mask_fcn_logits"):
            if self._use_separable_conv:
                depthwise = tf.get_variable(
                    "depthwise_kernel",
                    [1, 1, filters, 1],
                    dtype=tf.float32,
                    initializer=tf.glorot_uniform_initializer(),
                )
                pointwise = tf.get_variable(
                    "pointwise_kernel",
                    [1, 1, filters, self._num_classes],
                    dtype=tf.float32,
                    initializer=tf.glorot_uniform_initializer(),
                )
                # A 1x1 depthwise conv scales each channel: fold it into the pointwise kernel.
                kernel = depthwise[0, 0] * pointwise[0, 0]
            else:
                kernel = tf.get_variable(
                    "kernel",
                    [1, 1, filters, self._num_classes],
                    dtype=tf.float32,
                    initializer=msra_initializer(),
                )[0, 0]
            bias = tf.get_variable(
                "bias", [self._num_classes], dtype=tf.float32, initializer=tf.zeros_initializer()
            )
        # One-hot products select each RoI's kernel column and bias with dense
        # gradients; [N, K] x [K, F] is negligible next to the convs.
        selector = tf.one_hot(class_indices, self._num_classes, dtype=tf.float32)
        roi_kernels = tf.matmul(selector, kernel, transpose_b=True)
        roi_biases = tf.matmul(selector, bias[:, tf.newaxis])
        shape = tf.shape(net)
        pixels = tf.reshape(net, tf.stack([shape[0], -1, filters]))
        logits = tf.matmul(pixels, tf.cast(roi_kernels, net.dtype)[:, :, tf.newaxis])
        logits += tf.cast(roi_biases, net.dtype)[:, :, tf.newaxis]
        return tf.reshape(logits, shape[:4])
