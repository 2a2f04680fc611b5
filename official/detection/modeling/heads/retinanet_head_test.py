"""Tests for the RetinaNet head."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.heads import retinanet_head
from official.detection.testing import reference_variables as refs


def _names_and_shapes(variables, prefix="retinanet/"):
    return refs.select_scope(refs.graph_variables(variables), prefix)


def _pyramid(channels, image_size=64, batch_size=1, levels=range(3, 8)):
    return {
        level: tf.placeholder(
            tf.float32,
            [batch_size, -(-image_size // 2**level), -(-image_size // 2**level), channels],
        )
        for level in levels
    }


@pytest.mark.parametrize(
    "reference, num_filters, activation, num_params",
    [
        # ResNet-50 FPN: 256 filters, ReLU.
        ("retinanet_r50", 256, "relu", 6_711_895),
        # SpineNet-49S (shipped yaml): identity neck, 128-filter head, swish.
        ("retinanet_spinenet49s", 128, "swish", 2_176_727),
    ],
)
def test_variables_match_ancestor(reference, num_filters, activation, num_params):
    ref_trainable, ref_global = refs.load_reference_variables(reference)
    with tf.Graph().as_default():
        head = retinanet_head.RetinaNetHead(
            3, 7, 91, 9, num_filters=num_filters, activation=activation
        )
        head(_pyramid(num_filters), is_training=True)
        trainable = _names_and_shapes(tf.trainable_variables())
        global_vars = _names_and_shapes(tf.global_variables())
    assert trainable == refs.select_scope(ref_trainable, "retinanet/")
    assert global_vars == refs.select_scope(ref_global, "retinanet/")
    assert sum(int(np.prod(shape)) for _, shape in trainable) == num_params


def test_output_shapes_per_level():
    with tf.Graph().as_default(), tf.Session() as session:
        features = {
            level: tf.random_normal([2, 128 // 2**level, 128 // 2**level, 8])
            for level in (3, 4, 5, 6, 7)
        }
        head = retinanet_head.RetinaNetHead(3, 7, 5, 6, num_convs=2, num_filters=8)
        cls_outputs, box_outputs = head(features, is_training=False)
        session.run(tf.global_variables_initializer())
        cls_values, box_values = session.run([cls_outputs, box_outputs])
    for level in range(3, 8):
        size = 128 // 2**level
        assert cls_values[level].shape == (2, size, size, 6 * 5)
        assert box_values[level].shape == (2, size, size, 6 * 4)


def test_initial_class_probability_is_the_prior_and_boxes_are_near_zero():
    with tf.Graph().as_default(), tf.Session() as session:
        features = {level: tf.random_normal([1, 8, 8, 16], seed=level) for level in (3, 4)}
        head = retinanet_head.RetinaNetHead(3, 4, 10, 9, num_convs=2, num_filters=16)
        cls_outputs, box_outputs = head(features, is_training=False)
        session.run(tf.global_variables_initializer())
        cls_values, box_values = session.run([cls_outputs, box_outputs])
    bias = -np.log((1 - 0.01) / 0.01)
    for level in (3, 4):
        probabilities = 1.0 / (1.0 + np.exp(-cls_values[level]))
        np.testing.assert_allclose(probabilities, 0.01, atol=1e-4)
        np.testing.assert_allclose(cls_values[level], bias, atol=1e-2)
        assert np.abs(box_values[level]).max() < 1e-2


def test_convs_are_shared_and_batch_norms_are_per_level():
    with tf.Graph().as_default():
        head = retinanet_head.RetinaNetHead(3, 5, 2, 1, num_convs=1, num_filters=4)
        head(_pyramid(4, levels=range(3, 6)))
        names = [name for name, _ in _names_and_shapes(tf.trainable_variables())]
    kernels = [n for n in names if n.endswith("kernel")]
    assert kernels == [
        "retinanet/class_net/class-0/kernel",
        "retinanet/class_net/class-predict/kernel",
        "retinanet/box_net/box-0/kernel",
        "retinanet/box_net/box-predict/kernel",
    ]
    assert [n for n in names if n.endswith("gamma")] == [
        f"retinanet/{net}_net/{net}-0-{level}/gamma"
        for level in (3, 4, 5)
        for net in ("class", "box")
    ]


@pytest.mark.parametrize("activation, op_type", [("relu", "Relu"), ("swish", "Sigmoid")])
@pytest.mark.parametrize("use_batch_norm", [True, False])
def test_activation_follows_every_shared_conv(activation, op_type, use_batch_norm):
    with tf.Graph().as_default() as graph:
        head = retinanet_head.RetinaNetHead(
            3,
            4,
            2,
            1,
            num_convs=3,
            num_filters=4,
            activation=activation,
            use_batch_norm=use_batch_norm,
        )
        head(_pyramid(4, levels=(3, 4)))
        op_types = [op.type for op in graph.get_operations()]
    # 3 convs x 2 subnets x 2 levels; none after the prediction convs.
    assert op_types.count(op_type) == 12
    assert ("FusedBatchNormV3" in op_types) == use_batch_norm


def test_separable_convs_without_batch_norm():
    with tf.Graph().as_default():
        head = retinanet_head.RetinaNetHead(
            3, 4, 2, 1, num_convs=1, num_filters=4, use_separable_conv=True, use_batch_norm=False
        )
        head(_pyramid(4, levels=(3, 4)))
        names = [v.op.name for v in tf.global_variables()]
    assert names == [
        f"retinanet/{net}_net/{net}-{layer}/{var}"
        for net in ("class", "box")
        for layer in ("0", "predict")
        for var in ("depthwise_kernel", "pointwise_kernel", "bias")
    ]


def test_extra_levels_are_ignored():
    with tf.Graph().as_default():
        cls_outputs, box_outputs = retinanet_head.RetinaNetHead(
            3, 4, 2, 1, num_convs=0, num_filters=4
        )(_pyramid(4, levels=range(2, 8)))
    assert sorted(cls_outputs) == sorted(box_outputs) == [3, 4]


def test_missing_level_raises():
    head = retinanet_head.RetinaNetHead(3, 7, 2, 1)
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"levels \[6, 7\] are missing; it needs levels 3\.\.7 and got \[3, 4, 5\]",
        ):
            head(_pyramid(4, levels=(3, 4, 5)))


def test_unequal_channels_raise():
    head = retinanet_head.RetinaNetHead(3, 4, 2, 1)
    with tf.Graph().as_default():
        features = {3: tf.zeros([1, 8, 8, 4]), 4: tf.zeros([1, 4, 4, 8])}
        with pytest.raises(ValueError, match=r"same number of channels .*\{3: 4, 4: 8\}"):
            head(features)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "gelu"}, r"unknown activation 'gelu'; valid: \['relu', 'swish'\]"),
        ({"num_classes": 0}, r"num_classes must be an int >= 1; got 0"),
        ({"anchors_per_location": 2.0}, r"anchors_per_location must be an int >= 1; got 2\.0"),
        ({"num_filters": -1}, r"num_filters must be an int >= 1; got -1"),
        ({"num_convs": -1}, r"num_convs must be an int >= 0; got -1"),
        ({"min_level": 6, "max_level": 5}, r"min_level must be <= max_level; got min_level=6"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"min_level": 3, "max_level": 7, "num_classes": 91, "anchors_per_location": 9}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        retinanet_head.RetinaNetHead(**args)
