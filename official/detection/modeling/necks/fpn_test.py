"""Tests for the FPN and the identity neck."""

import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from official.detection.modeling.necks import fpn as fpn_lib
from official.detection.testing import reference_variables as refs

# ResNet-50 outputs C2..C5 for a 256x256 image: (size, channels).
RESNET50_LEVELS = {2: (64, 256), 3: (32, 512), 4: (16, 1024), 5: (8, 2048)}


def _names_and_shapes(variables, prefix):
    return refs.select_scope(refs.graph_variables(variables), prefix)


def _resnet50_features(batch_size=1):
    return {
        level: tf.placeholder(tf.float32, [batch_size, size, size, channels])
        for level, (size, channels) in RESNET50_LEVELS.items()
    }


def test_variables_match_ancestor_resnet50_fpn():
    ref_trainable, ref_global = refs.load_reference_variables("retinanet_r50")
    with tf.Graph().as_default():
        fpn_lib.FPN(3, 7, 256)(_resnet50_features(), is_training=True)
        trainable = _names_and_shapes(tf.trainable_variables(), "fpn/")
        global_vars = _names_and_shapes(tf.global_variables(), "fpn/")
    assert trainable == refs.select_scope(ref_trainable, "fpn/")
    assert global_vars == refs.select_scope(ref_global, "fpn/")
    assert len(trainable) == 26
    assert sum(int(np.prod(s)) for _, s in trainable) == 3_871_232


def test_separable_convs_and_no_batch_norm():
    with tf.Graph().as_default():
        fpn_lib.FPN(3, 7, 8, use_separable_conv=True, use_batch_norm=False)(_resnet50_features())
        names = [v.op.name for v in tf.global_variables()]
    assert names[:3] == ["fpn/l3/depthwise_kernel", "fpn/l3/pointwise_kernel", "fpn/l3/bias"]
    assert "fpn/p7/pointwise_kernel" in names
    assert not [n for n in names if "-bn" in n]


def _set_centre_tap_weights(session, dims):
    """Kernels become identity maps on the centre tap (x2 for the smoothing convs), biases 0."""
    for var in tf.global_variables():
        shape = var.shape.as_list()
        if var.op.name.endswith("kernel"):
            value = np.zeros(shape, np.float32)
            centre = shape[0] // 2
            gain = 2.0 if "post_hoc" in var.op.name else 1.0
            value[centre, centre] = gain * np.eye(dims, dtype=np.float32)
            var.load(value, session)
        elif var.op.name.endswith("bias"):
            var.load(np.zeros(shape, np.float32), session)


@pytest.mark.parametrize(
    "activation, activation_fn",
    [("relu", lambda x: np.maximum(x, 0)), ("swish", lambda x: x / (1 + np.exp(-x)))],
)
def test_top_down_path_and_coarse_levels_by_hand(activation, activation_fn):
    dims = 3
    rng = np.random.RandomState(0)
    inputs = {
        level: rng.randn(2, 32 // 2 ** (level - 2), 32 // 2 ** (level - 2), dims)
        for level in (2, 3, 4, 5)
    }
    # Grappler's oneDNN remapper fuses P6's conv and bias with the swish of P7's
    # input even though P6 itself is fetched, and the fetch then fails; the fusion
    # is not what this test is about.
    config = tf.ConfigProto()
    config.graph_options.rewrite_options.remapping = rewriter_config_pb2.RewriterConfig.OFF
    with tf.Graph().as_default(), tf.Session(config=config) as session:
        placeholders = {lv: tf.placeholder(tf.float32, x.shape) for lv, x in inputs.items()}
        fpn = fpn_lib.FPN(3, 7, dims, activation=activation, use_batch_norm=False)
        outputs = fpn(placeholders)
        session.run(tf.global_variables_initializer())
        _set_centre_tap_weights(session, dims)
        values = session.run(outputs, {placeholders[lv]: x for lv, x in inputs.items()})

    def up(x):
        return x.repeat(2, axis=1).repeat(2, axis=2)

    # The top-down sums use the laterals before smoothing (x2 here).
    merged5 = inputs[5]
    merged4 = inputs[4] + up(merged5)
    merged3 = inputs[3] + up(merged4)
    p3, p4, p5 = 2 * merged3, 2 * merged4, 2 * merged5
    # A stride-2 SAME 3x3 conv of an even-sized map pads only bottom/right, so
    # its centre tap reads pixels 1, 3, 5, ...; P6 comes from P5 (not C5) and
    # P7 from activation(P6).
    p6 = p5[:, 1::2, 1::2]
    p7 = activation_fn(p6)[:, 1::2, 1::2]
    assert sorted(values) == [3, 4, 5, 6, 7]
    for level, expected in zip((3, 4, 5, 6, 7), (p3, p4, p5, p6, p7)):
        np.testing.assert_allclose(values[level], expected, rtol=1e-5, atol=1e-5)


def test_output_shapes_and_batch_norm_updates_in_training():
    with tf.Graph().as_default(), tf.Session() as session:
        features = {
            level: tf.random_normal([2, 128 // 2**level, 128 // 2**level, 4 * level])
            for level in (2, 3, 4, 5)
        }
        outputs = fpn_lib.FPN(3, 7, 16)(features, is_training=True)
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        session.run(tf.global_variables_initializer())
        values = session.run(outputs)
    assert {lv: v.shape for lv, v in values.items()} == {
        3: (2, 16, 16, 16),
        4: (2, 8, 8, 16),
        5: (2, 4, 4, 16),
        6: (2, 2, 2, 16),
        7: (2, 1, 1, 16),
    }
    # Moving mean and variance for each of the five output levels.
    assert len(update_ops) == 10
    # Training-mode batch norm normalises each channel over the batch.
    np.testing.assert_allclose(values[3].mean(axis=(0, 1, 2)), 0.0, atol=1e-3)


def test_levels_above_the_backbone_are_ignored_when_max_level_is_lower():
    with tf.Graph().as_default():
        features = {
            level: tf.zeros([1, 2 ** (8 - level), 2 ** (8 - level), 4]) for level in range(2, 8)
        }
        outputs = fpn_lib.FPN(3, 5, 8)(features)
        names = [v.op.name for v in tf.trainable_variables()]
    assert sorted(outputs) == [3, 4, 5]
    assert "fpn/l5/kernel" in names and not [n for n in names if re.search(r"l[67]|p[67]/", n)]


@pytest.mark.parametrize(
    "levels, match",
    [
        ((4, 5), r"needs backbone levels 3\.\.5 \(min_level=3\); got levels \[4, 5\]"),
        ((2, 3, 5), r"needs backbone levels 3\.\.5 .*got levels \[2, 3, 5\]"),
        ((1, 2), r"needs backbone levels 3\.\.3 .*got levels \[1, 2\]"),
    ],
)
def test_missing_backbone_levels_raise(levels, match):
    with tf.Graph().as_default():
        features = {level: tf.zeros([1, 2 ** (8 - level), 2 ** (8 - level), 4]) for level in levels}
        with pytest.raises(ValueError, match=match):
            fpn_lib.FPN(3, 7, 8)(features)


def test_empty_features_raise():
    with pytest.raises(ValueError, match="multilevel_features is empty"):
        fpn_lib.FPN(3, 7, 8)({})


def test_sizes_that_do_not_halve_raise():
    with tf.Graph().as_default():
        features = {3: tf.zeros([1, 15, 15, 4]), 4: tf.zeros([1, 8, 8, 4])}
        with pytest.raises(ValueError, match=r"level 4 upsampled 2x has spatial size \[16, 16\]"):
            fpn_lib.FPN(3, 4, 8)(features)


def test_bad_arguments_raise():
    with pytest.raises(
        ValueError, match=r"FPN: unknown activation 'gelu'; valid: \['relu', 'swish'\]"
    ):
        fpn_lib.FPN(activation="gelu")
    with pytest.raises(
        ValueError, match="min_level must be <= max_level; got min_level=5, max_level=3"
    ):
        fpn_lib.FPN(5, 3)
    with pytest.raises(TypeError, match="must be ints; got 3.0 and 7"):
        fpn_lib.FPN(3.0, 7)


def test_identity_neck_passes_requested_levels_through():
    with tf.Graph().as_default():
        features = {level: tf.zeros([1, 4, 4, 2]) for level in range(2, 8)}
        outputs = fpn_lib.IdentityNeck(3, 7)(features, is_training=True)
        assert tf.global_variables() == []
    assert sorted(outputs) == [3, 4, 5, 6, 7]
    assert all(outputs[level] is features[level] for level in outputs)


def test_identity_neck_missing_level_raises():
    features = {3: None, 4: None, 5: None}
    with pytest.raises(
        ValueError,
        match=r"levels \[6, 7\] are missing; it needs levels 3\.\.7 and the backbone gave "
        r"\[3, 4, 5\]",
    ):
        fpn_lib.IdentityNeck(3, 7)(features)
