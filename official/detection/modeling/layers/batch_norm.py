"""Batch normalization followed by an optional activation, as used after every backbone conv.

Each call creates one fused batch norm (`functional.batch_normalization`, the
variables of a `tf.compat.v1.layers` batch-norm layer), auto-named
`batch_normalization[_N]` in the current variable scope, with variables
`gamma`, `beta` (trainable unless frozen), `moving_mean` and `moving_variance`:
the names of the ancestor's checkpoints.
"""

from official.detection.modeling.layers import activations, conv, functional


class BatchNormActivation:
    """Fused batch norm, then `activation` unless the caller asks for none.

    `use_sync_bn` is accepted so the ancestor's configs load (its SpineNet
    recipes set it), and maps to the per-device batch norm here. That is what
    the ancestor itself computes on up to 8 devices: its cross-replica batch
    norm only pools statistics over groups of more than 8 TPU cores.
    """

    def __init__(
        self,
        *,
        momentum=0.997,
        epsilon=1e-4,
        trainable=True,
        use_sync_bn=False,
        activation="relu",
        data_format="channels_last",
    ):
        """Args:
        momentum: decay of the moving mean/variance, in [0, 1).
        epsilon: added to the variance before the square root, > 0.
        trainable: False freezes the layer: `gamma`/`beta` leave the trainable
          collection and the moving statistics are used even in training.
        use_sync_bn: see the class docstring.
        activation: 'relu' or 'swish'.
        data_format: 'channels_last' (NHWC) or 'channels_first' (NCHW).
        """
        if not 0.0 <= momentum < 1.0:
            raise ValueError(
                f"BatchNormActivation: batch_norm_momentum must be in [0, 1); got {momentum!r}"
            )
        if not epsilon > 0.0:
            raise ValueError(
                f"BatchNormActivation: batch_norm_epsilon must be > 0; got {epsilon!r}"
            )
        conv.check_data_format(data_format, "BatchNormActivation")
        self.momentum = momentum
        self.epsilon = epsilon
        self.trainable = bool(trainable)
        self.use_sync_bn = bool(use_sync_bn)
        self.activation_name = activation
        self.activation = activations.get_activation(activation)
        self.data_format = data_format

    def __call__(self, inputs, *, is_training=False, apply_activation=True, name=None):
        """Normalizes `inputs`.

        Args:
          inputs: float tensor [B, H, W, C] (or [B, C, H, W] for channels_first)
            with a static channel dimension.
          is_training: Python bool; True normalizes with batch statistics and
            adds the moving-average updates to `tf.GraphKeys.UPDATE_OPS`
            (unless the layer is frozen).
          apply_activation: False returns the normalized tensor as is, e.g.
            before a residual addition.
          name: layer name; None auto-names it `batch_normalization[_N]`.

        Returns:
          Tensor of the shape and dtype of `inputs`.
        """
        outputs = functional.batch_normalization(
            inputs,
            axis=-1 if self.data_format == "channels_last" else 1,
            momentum=self.momentum,
            epsilon=self.epsilon,
            training=bool(is_training) and self.trainable,
            trainable=self.trainable,
            name=name,
        )
        if apply_activation:
            outputs = self.activation(outputs)
        return outputs
