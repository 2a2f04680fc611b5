"""Conv, separable conv, dense, batch norm and max pooling without Keras layer objects.

Drop-in stand-ins for the `tf.compat.v1.layers` functions the models use: the
same variable scopes (`name`, or the auto-numbered `conv2d`, `conv2d_1`, ...
of `variable_scope(None, default_name=...)`, which is what the Keras-backed
layers open), the same variables in the same order with the same shapes,
dtypes, initialisers, collections and trainable flags, the same ops, and the
same batch-norm moving-average updates in `tf.GraphKeys.UPDATE_OPS`.
functional_test.py checks all of that against `tf.compat.v1.layers`.

Why: every `tf.compat.v1.layers` weight copies the set of all global variables
(to decide about regularisers), so building a graph is quadratic in the
number of variables; a ResNet-50 RetinaNet training graph spent most of its
build time there.
"""

import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import cpu_batch_norm, cpu_kernels, winograd

_TF_DATA_FORMATS = {"channels_last": "NHWC", "channels_first": "NCHW"}


def _pair(value, what):
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"{what} must be an int or a pair of ints; got {value!r}")


def _spatial(values, data_format):
    """[1, a, b, 1] for NHWC, [1, 1, a, b] for NCHW."""
    if data_format == "channels_last":
        return [1, values[0], values[1], 1]
    return [1, 1, values[0], values[1]]


def _tf_format(data_format, owner):
    if data_format not in _TF_DATA_FORMATS:
        raise ValueError(
            f"{owner}: data_format must be one of {list(_TF_DATA_FORMATS)}; got {data_format!r}"
        )
    return _TF_DATA_FORMATS[data_format]


def _static_channels(inputs, axis, owner):
    channels = inputs.get_shape().as_list()[axis]
    if channels is None:
        raise ValueError(
            f"{owner}: the channel dimension of the inputs must be static; got shape "
            f"{inputs.get_shape()}"
        )
    return channels


def _padding(padding, owner):
    if padding.lower() not in ("same", "valid"):
        raise ValueError(f"{owner}: padding must be 'same' or 'valid'; got {padding!r}")
    return padding.upper()


def _bias_and_activation(
    outputs, use_bias, bias_initializer, activation, trainable, tf_format=None
):
    """Adds a `bias` variable [channels] (zeros by default) in the current variable
    scope when `use_bias`, then applies `activation` if given; `tf_format` is the
    data format of a 4-D `outputs` (NHWC or NCHW)."""
    if use_bias:
        channel_axis = 1 if tf_format == "NCHW" else -1
        bias = tf.get_variable(
            "bias",
            [outputs.get_shape().as_list()[channel_axis]],
            dtype=outputs.dtype.base_dtype,
            initializer=bias_initializer or tf.zeros_initializer(),
            trainable=trainable,
        )
        outputs = tf.nn.bias_add(outputs, bias, data_format=tf_format)
    if activation is not None:
        outputs = activation(outputs)
    return outputs


def conv2d(
    inputs,
    filters,
    kernel_size,
    strides=(1, 1),
    padding="valid",
    data_format="channels_last",
    activation=None,
    use_bias=True,
    kernel_initializer=None,
    bias_initializer=None,
    trainable=True,
    name=None,
):
    """As `tf.compat.v1.layers.conv2d`: variables `kernel` [kh, kw, C_in, filters]
    (glorot-uniform by default) and `bias` [filters] (zeros by default).

    Args:
      inputs: float tensor [B, H, W, C_in] (channels_last) or [B, C_in, H, W],
        static C_in; the variables take its dtype.
      filters, kernel_size, strides, padding ('same' or 'valid'), data_format,
        activation, use_bias, kernel_initializer, bias_initializer, trainable:
        as in `tf.compat.v1.layers.conv2d`.
      name: variable scope; None auto-numbers `conv2d[_N]` in the current scope.

    Returns:
      Tensor [B, H', W', filters] (or channels_first) of the dtype of `inputs`.
    """
    tf_format = _tf_format(data_format, "conv2d")
    kernel_h, kernel_w = _pair(kernel_size, "conv2d: kernel_size")
    stride_h, stride_w = _pair(strides, "conv2d: strides")
    channel_axis = -1 if data_format == "channels_last" else 1
    channels = _static_channels(inputs, channel_axis, "conv2d")
    dtype = inputs.dtype.base_dtype
    with tf.variable_scope(name, default_name="conv2d"):
        kernel = tf.get_variable(
            "kernel",
            [kernel_h, kernel_w, channels, filters],
            dtype=dtype,
            initializer=kernel_initializer or tf.glorot_uniform_initializer(),
            trainable=trainable,
        )
        if cpu_kernels.use_winograd(
            inputs, (kernel_h, kernel_w), (stride_h, stride_w), padding, data_format
        ):
            outputs = winograd.conv2d_3x3(inputs, kernel)
        else:
            outputs = tf.nn.conv2d(
                inputs,
                kernel,
                strides=_spatial((stride_h, stride_w), data_format),
                padding=_padding(padding, "conv2d"),
                data_format=tf_format,
            )
        outputs = _bias_and_activation(
            outputs, use_bias, bias_initializer, activation, trainable, tf_format
        )
    return outputs


def separable_conv2d(
    inputs,
    filters,
    kernel_size,
    strides=(1, 1),
    padding="valid",
    depth_multiplier=1,
    activation=None,
    use_bias=True,
    depthwise_initializer=None,
    pointwise_initializer=None,
    bias_initializer=None,
    trainable=True,
    name=None,
):
    """As `tf.compat.v1.layers.separable_conv2d` (channels_last): variables
    `depthwise_kernel` [kh, kw, C_in, depth_multiplier], `pointwise_kernel`
    [1, 1, C_in * depth_multiplier, filters] (both glorot-uniform by default)
    and `bias` [filters].

    Args:
      inputs: float tensor [B, H, W, C_in] with static C_in.
      Others: as in `tf.compat.v1.layers.separable_conv2d`; name None
        auto-numbers `separable_conv2d[_N]`.

    Returns:
      Tensor [B, H', W', filters].
    """
    kernel_h, kernel_w = _pair(kernel_size, "separable_conv2d: kernel_size")
    stride_h, stride_w = _pair(strides, "separable_conv2d: strides")
    channels = _static_channels(inputs, -1, "separable_conv2d")
    dtype = inputs.dtype.base_dtype
    with tf.variable_scope(name, default_name="separable_conv2d"):
        depthwise = tf.get_variable(
            "depthwise_kernel",
            [kernel_h, kernel_w, channels, depth_multiplier],
            dtype=dtype,
            initializer=depthwise_initializer or tf.glorot_uniform_initializer(),
            trainable=trainable,
        )
        pointwise = tf.get_variable(
            "pointwise_kernel",
            [1, 1, channels * depth_multiplier, filters],
            dtype=dtype,
            initializer=pointwise_initializer or tf.glorot_uniform_initializer(),
            trainable=trainable,
        )
        outputs = tf.nn.separable_conv2d(
            inputs,
            depthwise,
            pointwise,
            strides=[1, stride_h, stride_w, 1],
            padding=_padding(padding, "separable_conv2d"),
        )
        outputs = _bias_and_activation(
            outputs, use_bias, bias_initializer, activation, trainable, "NHWC"
        )
    return outputs


def dense(inputs, units, activation=None, kernel_initializer=None, name=None):
    """As `tf.compat.v1.layers.dense` on a matrix: variables `kernel` [D, units]
    (glorot-uniform by default) and `bias` [units] (zeros).

    Args:
      inputs: float tensor [N, D] with static D; the variables take its dtype.
      units, activation, kernel_initializer: as in `tf.compat.v1.layers.dense`.
      name: variable scope; None auto-numbers `dense[_N]` in the current scope.

    Returns:
      Tensor [N, units] of the dtype of `inputs`.
    """
    if inputs.get_shape().ndims != 2:
        raise ValueError(f"dense: inputs must be a matrix [N, D]; got shape {inputs.get_shape()}")
    depth = _static_channels(inputs, -1, "dense")
    with tf.variable_scope(name, default_name="dense"):
        kernel = tf.get_variable(
            "kernel",
            [depth, units],
            dtype=inputs.dtype.base_dtype,
            initializer=kernel_initializer or tf.glorot_uniform_initializer(),
        )
        return _bias_and_activation(
            tf.matmul(inputs, kernel), True, None, activation, trainable=True
        )


def _assign_moving_average(variable, value, momentum):
    """variable -= (variable - value) * (1 - momentum), as the Keras layer does it."""
    with tf.name_scope("AssignMovingAvg") as scope:
        decay = tf.convert_to_tensor(1.0 - momentum, name="decay")
        delta = (variable - tf.cast(value, variable.dtype)) * decay
        with tf.colocate_with(variable):
            return tf.assign_sub(variable, delta, name=scope)


def batch_normalization(
    inputs,
    axis=-1,
    momentum=0.99,
    epsilon=1e-3,
    training=False,
    trainable=True,
    name=None,
):
    """As `tf.compat.v1.layers.batch_normalization(fused=True, center=True, scale=True)`.

    Variables `gamma` (ones), `beta` (zeros), then `moving_mean` (zeros) and
    `moving_variance` (ones), which are not trainable. Half-precision inputs
    get float32 variables.

    Args:
      inputs: float tensor of rank 4 with a static channel dimension.
      axis: the channel axis, -1 or 3 (NHWC) or 1 (NCHW).
      momentum, epsilon: as in the Keras layer.
      training: Python bool. True normalises with the batch statistics and adds
        the two moving-average updates to `tf.GraphKeys.UPDATE_OPS`.
      trainable: False keeps gamma and beta out of the trainable variables.
      name: variable scope; None auto-numbers `batch_normalization[_N]`.

    Returns:
      Tensor of the shape and dtype of `inputs`.
    """
    if inputs.get_shape().ndims != 4 or axis not in (-1, 1, 3):
        raise ValueError(
            "batch_normalization: needs a rank-4 input and axis -1, 3 (NHWC) or 1 (NCHW); "
            f"got shape {inputs.get_shape()} and axis {axis!r}"
        )
    data_format = "NCHW" if axis == 1 else "NHWC"
    channels = _static_channels(inputs, axis, "batch_normalization")
    dtype = inputs.dtype.base_dtype
    param_dtype = tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype
    with tf.variable_scope(name, default_name="batch_normalization"):
        gamma = tf.get_variable(
            "gamma", [channels], param_dtype, tf.ones_initializer(), trainable=trainable
        )
        beta = tf.get_variable(
            "beta", [channels], param_dtype, tf.zeros_initializer(), trainable=trainable
        )
        moving = {}
        for var_name, initializer in (
            ("moving_mean", tf.zeros_initializer()),
            ("moving_variance", tf.ones_initializer()),
        ):
            moving[var_name] = tf.get_variable(
                var_name,
                [channels],
                param_dtype,
                initializer,
                trainable=False,
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.MEAN,
            )
        if cpu_kernels.use_cpu_batch_norm(inputs, axis, bool(training)):
            outputs, batch_mean, batch_variance = cpu_batch_norm.batch_norm_training(
                inputs, gamma, beta, epsilon
            )
        else:
            # In training the batch statistics are used and the moving averages must
            # not be passed (TensorFlow 1.15 refuses them there).
            outputs, batch_mean, batch_variance = tf.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=None if training else moving["moving_mean"],
                variance=None if training else moving["moving_variance"],
                epsilon=epsilon,
                is_training=bool(training),
                data_format=data_format,
            )
        if training:
            momentum_tensor = tf.convert_to_tensor(momentum)
            for var_name, value in (
                ("moving_mean", batch_mean),
                ("moving_variance", batch_variance),
            ):
                update = _assign_moving_average(moving[var_name], value, momentum_tensor)
                tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update.op)
    return outputs


def max_pooling2d(inputs, pool_size, strides, padding="valid", data_format="channels_last"):
    """As `tf.compat.v1.layers.max_pooling2d`; creates no variables."""
    tf_format = _tf_format(data_format, "max_pooling2d")
    return tf.nn.max_pool2d(
        inputs,
        ksize=_spatial(_pair(pool_size, "max_pooling2d: pool_size"), data_format),
        strides=_spatial(_pair(strides, "max_pooling2d: strides"), data_format),
        padding=_padding(padding, "max_pooling2d"),
        data_format=tf_format,
    )
