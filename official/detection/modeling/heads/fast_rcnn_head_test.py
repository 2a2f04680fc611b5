"""Tests for the Fast R-CNN box head."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.heads import fast_rcnn_head
from official.detection.testing import reference_variables as refs


def _names_and_shapes(variables):
    return refs.select_scope(refs.graph_variables(variables), "fast_rcnn_head/")


def _assign_random(session, rng):
    """Gives every global variable random values; returns {name without scope: value}."""
    values = {}
    for variable in tf.global_variables():
        value = rng.randn(*variable.shape.as_list()).astype(np.float32)
        session.run(variable.assign(value))
        values[variable.op.name.split("/", 1)[1]] = value
    return values


def test_variables_match_ancestor():
    ref_trainable, ref_global = refs.load_reference_variables("maskrcnn_r50")
    with tf.Graph().as_default():
        # Mask R-CNN R50-FPN: 512 sampled RoIs per image, 7x7x256 RoIAlign features.
        roi_features = tf.placeholder(tf.float32, [2, 512, 7, 7, 256])
        fast_rcnn_head.FastRCNNHead(91)(roi_features, is_training=True)
        trainable = _names_and_shapes(tf.trainable_variables())
        global_vars = _names_and_shapes(tf.global_variables())
    assert trainable == refs.select_scope(ref_trainable, "fast_rcnn_head/")
    assert global_vars == refs.select_scope(ref_global, "fast_rcnn_head/")
    assert sum(refs.count_parameters(shape) for _, shape in trainable) == 14_362_055


def test_outputs_match_numpy():
    rng = np.random.RandomState(0)
    features = rng.randn(2, 3, 2, 2, 4).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as session:
        head = fast_rcnn_head.FastRCNNHead(5, num_fcs=2, fc_dims=6)
        class_outputs, box_outputs = head(tf.constant(features))
        w = _assign_random(session, rng)
        classes, boxes = session.run([class_outputs, box_outputs])
    # Flattened in (y, x, channel) order, as the ancestor's fc6 kernel expects.
    net = features.reshape(2, 3, 16)
    for layer in ("fc6", "fc7"):
        net = np.maximum(net @ w[f"{layer}/kernel"] + w[f"{layer}/bias"], 0.0)
    expected_classes = net @ w["class-predict/kernel"] + w["class-predict/bias"]
    expected_boxes = net @ w["box-predict/kernel"] + w["box-predict/bias"]
    assert classes.shape == (2, 3, 5)
    assert boxes.shape == (2, 3, 20)
    np.testing.assert_allclose(classes, expected_classes, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(boxes, expected_boxes, rtol=1e-4, atol=1e-4)


def test_class_agnostic_boxes():
    with tf.Graph().as_default():
        head = fast_rcnn_head.FastRCNNHead(91, fc_dims=8, class_agnostic_bbox_pred=True)
        class_outputs, box_outputs = head(tf.zeros([2, 16, 7, 7, 4]))
        variables = dict(_names_and_shapes(tf.global_variables()))
    assert class_outputs.shape.as_list() == [2, 16, 91]
    assert box_outputs.shape.as_list() == [2, 16, 4]
    assert variables["fast_rcnn_head/box-predict/kernel"] == (8, 4)


def test_dynamic_batch_size():
    with tf.Graph().as_default(), tf.Session() as session:
        roi_features = tf.placeholder(tf.float32, [None, 4, 3, 3, 2])
        class_outputs, box_outputs = fast_rcnn_head.FastRCNNHead(3, fc_dims=4)(roi_features)
        session.run(tf.global_variables_initializer())
        classes, boxes = session.run(
            [class_outputs, box_outputs], {roi_features: np.ones([3, 4, 3, 3, 2])}
        )
    assert class_outputs.shape.as_list() == [None, 4, 3]
    assert classes.shape == (3, 4, 3)
    assert boxes.shape == (3, 4, 12)


def test_initial_outputs_are_small():
    with tf.Graph().as_default(), tf.Session() as session:
        roi_features = tf.random_normal([1, 8, 7, 7, 16], seed=1)
        class_outputs, box_outputs = fast_rcnn_head.FastRCNNHead(10, fc_dims=32)(roi_features)
        session.run(tf.global_variables_initializer())
        classes, boxes = session.run([class_outputs, box_outputs])
    # Predictions start from N(0, 0.01) (classes) and N(0, 0.001) (boxes) kernels.
    assert np.abs(classes).max() < 0.5
    assert np.abs(boxes).max() < 0.05


def test_convs_and_batch_norm_in_the_ancestors_order():
    with tf.Graph().as_default():
        head = fast_rcnn_head.FastRCNNHead(
            3, num_convs=2, num_filters=4, num_fcs=2, fc_dims=8, use_batch_norm=True
        )
        head(tf.zeros([1, 2, 3, 3, 5]), is_training=True)
        variables = _names_and_shapes(tf.trainable_variables())
    assert variables == [
        ("fast_rcnn_head/conv_0/kernel", (3, 3, 5, 4)),
        ("fast_rcnn_head/conv_0/bias", (4,)),
        ("fast_rcnn_head/batch_normalization/gamma", (4,)),
        ("fast_rcnn_head/batch_normalization/beta", (4,)),
        ("fast_rcnn_head/conv_1/kernel", (3, 3, 4, 4)),
        ("fast_rcnn_head/conv_1/bias", (4,)),
        ("fast_rcnn_head/batch_normalization_1/gamma", (4,)),
        ("fast_rcnn_head/batch_normalization_1/beta", (4,)),
        # The conv output (3 x 3 x num_filters) is flattened into fc6.
        ("fast_rcnn_head/fc6/kernel", (36, 8)),
        ("fast_rcnn_head/fc6/bias", (8,)),
        ("fast_rcnn_head/batch_normalization_2/gamma", (8,)),
        ("fast_rcnn_head/batch_normalization_2/beta", (8,)),
        ("fast_rcnn_head/fc7/kernel", (8, 8)),
        ("fast_rcnn_head/fc7/bias", (8,)),
        ("fast_rcnn_head/batch_normalization_3/gamma", (8,)),
        ("fast_rcnn_head/batch_normalization_3/beta", (8,)),
        ("fast_rcnn_head/class-predict/kernel", (8, 3)),
        ("fast_rcnn_head/class-predict/bias", (3,)),
        ("fast_rcnn_head/box-predict/kernel", (8, 12)),
        ("fast_rcnn_head/box-predict/bias", (12,)),
    ]


def test_batch_norm_normalises_fully_connected_outputs_over_all_rois():
    rng = np.random.RandomState(1)
    features = rng.randn(2, 5, 1, 1, 3).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as session:
        head = fast_rcnn_head.FastRCNNHead(2, num_fcs=1, fc_dims=4, use_batch_norm=True)
        head(tf.constant(features), is_training=True)
        fc6 = session.graph.get_tensor_by_name("fast_rcnn_head/fc6/BiasAdd:0")
        normalised = session.graph.get_tensor_by_name("fast_rcnn_head/Relu:0")
        session.run(tf.global_variables_initializer())
        fc6_value, normalised_value = session.run([fc6, normalised])
    mean = fc6_value.mean(axis=0)
    variance = fc6_value.var(axis=0)
    expected = np.maximum((fc6_value - mean) / np.sqrt(variance + 1e-4), 0.0)
    np.testing.assert_allclose(normalised_value.reshape(10, 4), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("activation, op_type", [("relu", "Relu"), ("swish", "Sigmoid")])
def test_activation_follows_convs_and_fully_connected_layers(activation, op_type):
    with tf.Graph().as_default() as graph:
        head = fast_rcnn_head.FastRCNNHead(
            3, num_convs=1, num_filters=2, fc_dims=4, activation=activation
        )
        head(tf.zeros([1, 2, 3, 3, 2]))
        op_types = [op.type for op in graph.get_operations()]
    assert op_types.count(op_type) == 3


def test_separable_convs():
    with tf.Graph().as_default():
        head = fast_rcnn_head.FastRCNNHead(
            3, num_convs=1, num_filters=2, num_fcs=1, fc_dims=4, use_separable_conv=True
        )
        head(tf.zeros([1, 2, 3, 3, 2]))
        names = [name for name, _ in _names_and_shapes(tf.global_variables())]
    assert names[:3] == [
        "fast_rcnn_head/conv_0/depthwise_kernel",
        "fast_rcnn_head/conv_0/pointwise_kernel",
        "fast_rcnn_head/conv_0/bias",
    ]
    assert names[3:] == [
        f"fast_rcnn_head/{layer}/{var}"
        for layer in ("fc6", "class-predict", "box-predict")
        for var in ("kernel", "bias")
    ]


@pytest.mark.parametrize(
    "shape",
    [[2, 7, 7, 256], [2, 512, None, 7, 256], [2, None, 7, 7, 256]],
)
def test_bad_roi_features_raise(shape):
    head = fast_rcnn_head.FastRCNNHead(91)
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"roi_features must be \[B, R, S, S, C\] with static R, S and C; got shape",
        ):
            head(tf.placeholder(tf.float32, shape))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "tanh"}, r"unknown activation 'tanh'; valid: \['relu', 'swish'\]"),
        ({"num_classes": 0}, r"FastRCNNHead: num_classes must be an int >= 1; got 0"),
        ({"num_convs": -1}, r"num_convs must be an int >= 0; got -1"),
        ({"num_filters": 0}, r"num_filters must be an int >= 1; got 0"),
        ({"num_fcs": 1.5}, r"num_fcs must be an int >= 0; got 1\.5"),
        ({"fc_dims": None}, r"fc_dims must be an int >= 1; got None"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"num_classes": 91}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fast_rcnn_head.FastRCNNHead(**args)
