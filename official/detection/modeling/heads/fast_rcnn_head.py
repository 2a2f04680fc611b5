"""Fast R-CNN box head (Girshick, ICCV 2015) on RoIAlign features.

Optional 3x3 convs, then fully connected layers, then a softmax classifier
over `num_classes` (background 0 included) and a box regressor. Variable names
follow the ancestor's checkpoints: `fast_rcnn_head/conv_{i}`,
`fast_rcnn_head/fc{6 + i}`, `fast_rcnn_head/class-predict`,
`fast_rcnn_head/box-predict`, and auto-named `batch_normalization[_N]` after
each conv and fully connected layer when batch norm is on.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.heads.head_layers import (
    check_activation,
    check_ints,
    conv_layer,
    msra_initializer,
)
from official.detection.modeling.layers import functional
from official.detection.modeling.layers.batch_norm import BatchNormActivation


class FastRCNNHead:
    """Per-RoI class logits and box codes."""

    def __init__(
        self,
        num_classes,
        num_convs=0,
        num_filters=256,
        num_fcs=2,
        fc_dims=1024,
        *,
        class_agnostic_bbox_pred=False,
        use_separable_conv=False,
        activation="relu",
        use_batch_norm=False,
        batch_norm_momentum=0.997,
        batch_norm_epsilon=1e-4,
    ):
        """Args:
        num_classes: softmax classes, background (0) included, e.g. 91.
        num_convs: 3x3 convs on the RoI features before flattening.
        num_filters: channels of those convs.
        num_fcs: fully connected layers after flattening.
        fc_dims: width of the fully connected layers.
        class_agnostic_bbox_pred: predict one box per RoI instead of one per
          class.
        use_separable_conv: depthwise-separable convs (depth multiplier 1,
          default initialisers) instead of plain convs initialised with
          He-normal on fan-out (MSRA fill).
        activation: 'relu' or 'swish', after each conv and fully connected
          layer (after its batch norm when use_batch_norm is True).
        use_batch_norm: batch norm after each conv and fully connected layer
          (the ancestor's Mask R-CNN default is False).
        batch_norm_momentum, batch_norm_epsilon: batch-norm hyperparameters.
        """
        check_ints("FastRCNNHead", 1, num_classes=num_classes, num_filters=num_filters)
        check_ints("FastRCNNHead", 0, num_convs=num_convs, num_fcs=num_fcs)
        check_ints("FastRCNNHead", 1, fc_dims=fc_dims)
        self._activation = check_activation("FastRCNNHead", activation)
        self._num_classes = num_classes
        self._num_convs = num_convs
        self._num_filters = num_filters
        self._num_fcs = num_fcs
        self._fc_dims = fc_dims
        self._class_agnostic_bbox_pred = bool(class_agnostic_bbox_pred)
        self._conv = conv_layer(use_separable_conv, msra_initializer())
        self._batch_norm = None
        if use_batch_norm:
            self._batch_norm = BatchNormActivation(
                momentum=batch_norm_momentum, epsilon=batch_norm_epsilon, activation=activation
            )

    def __call__(self, roi_features, is_training=False):
        """Classifies and regresses every RoI.

        Args:
          roi_features: float tensor [B, R, S, S, C] (RoIAlign output, 7x7 in
            the ancestor) with static R, S and C.
          is_training: batch norm uses batch statistics and updates its moving
            averages (UPDATE_OPS) when True.

        Returns:
          (class_outputs, box_outputs): [B, R, num_classes] logits and
          [B, R, num_classes * 4] box codes (class k's dy, dx, dh, dw at
          4k..4k+3), or [B, R, 4] when class-agnostic.
        """
        shape = roi_features.get_shape().as_list()
        if len(shape) != 5 or None in shape[1:]:
            raise ValueError(
                "FastRCNNHead: roi_features must be [B, R, S, S, C] with static R, S and C; "
                f"got shape {shape}"
            )
        _, num_rois, height, width, channels = shape
        batch_size = tf.shape(roi_features)[0]
        with tf.variable_scope("fast_rcnn_head"):
            net = tf.reshape(roi_features, [-1, height, width, channels])
            for i in range(self._num_convs):
                net = self._conv(
                    net,
                    self._num_filters,
                    kernel_size=(3, 3),
                    padding="same",
                    activation=self._activation if self._batch_norm is None else None,
                    name=f"conv_{i}",
                )
                net = self._normalize(net, is_training)
            # Flattened in (y, x, channel) order, the layout of fc6's kernel.
            net = tf.reshape(net, [-1, height * width * net.get_shape().as_list()[-1]])
            for i in range(self._num_fcs):
                net = functional.dense(
                    net,
                    self._fc_dims,
                    activation=self._activation if self._batch_norm is None else None,
                    name=f"fc{i + 6}",
                )
                net = self._normalize_dense(net, is_training)
            class_outputs = functional.dense(
                net,
                self._num_classes,
                kernel_initializer=tf.random_normal_initializer(stddev=0.01),
                name="class-predict",
            )
            num_box_outputs = 4 if self._class_agnostic_bbox_pred else 4 * self._num_classes
            box_outputs = functional.dense(
                net,
                num_box_outputs,
                kernel_initializer=tf.random_normal_initializer(stddev=0.001),
                name="box-predict",
            )
        class_outputs = tf.reshape(class_outputs, [batch_size, num_rois, self._num_classes])
        box_outputs = tf.reshape(box_outputs, [batch_size, num_rois, num_box_outputs])
        return class_outputs, box_outputs

    def _normalize(self, net, is_training):
        if self._batch_norm is None:
            return net
        return self._batch_norm(net, is_training=is_training)

    def _normalize_dense(self, net, is_training):
        """Batch norm of [N, D] activations, as the 4-D [N, 1, 1, D] the fused kernel takes."""
        if self._batch_norm is None:
            return net
        images = self._batch_norm(net[:, tf.newaxis, tf.newaxis, :], is_training=is_training)
        return images[:, 0, 0, :]
