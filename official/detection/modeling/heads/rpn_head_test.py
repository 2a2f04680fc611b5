"""Tests for the RPN head."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.heads import rpn_head
from official.detection.testing import reference_variables as refs


def _names_and_shapes(variables):
    return refs.select_scope(refs.graph_variables(variables), "rpn_head/")


def _pyramid(channels, image_size=64, batch_size=1, levels=range(2, 7)):
    return {
        level: tf.placeholder(
            tf.float32,
            [batch_size, -(-image_size // 2**level), -(-image_size // 2**level), channels],
        )
        for level in levels
    }


def _conv_same(inputs, kernel, bias):
    """NumPy 'SAME' stride-1 conv: inputs [B, H, W, C], kernel [k, k, C, F]."""
    k = kernel.shape[0]
    pad = (k - 1) // 2
    padded = np.pad(inputs, [(0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)])
    height, width = inputs.shape[1:3]
    out = np.zeros(inputs.shape[:3] + (kernel.shape[-1],))
    for dy in range(k):
        for dx in range(k):
            out += padded[:, dy : dy + height, dx : dx + width, :] @ kernel[dy, dx]
    return out + bias


def test_variables_match_ancestor():
    ref_trainable, ref_global = refs.load_reference_variables("maskrcnn_r50")
    with tf.Graph().as_default():
        # Mask R-CNN R50-FPN: 256-channel levels 2-6 of a 256x256 image, 3 anchors.
        rpn_head.RPNHead(2, 6, 3)(_pyramid(256, image_size=256, batch_size=2), is_training=True)
        trainable = _names_and_shapes(tf.trainable_variables())
        global_vars = _names_and_shapes(tf.global_variables())
    assert trainable == refs.select_scope(ref_trainable, "rpn_head/")
    assert global_vars == refs.select_scope(ref_global, "rpn_head/")
    assert sum(refs.count_parameters(shape) for _, shape in trainable) == 593_935


def test_outputs_match_numpy_on_every_level():
    rng = np.random.RandomState(0)
    values = {level: rng.randn(2, 16 // 2**level, 16 // 2**level, 4) for level in (2, 3)}
    with tf.Graph().as_default(), tf.Session() as session:
        features = {level: tf.constant(v, tf.float32) for level, v in values.items()}
        head = rpn_head.RPNHead(2, 3, 2, num_filters=5)
        score_outputs, box_outputs = head(features)
        variables = {v.op.name: v for v in tf.global_variables()}
        weights = {
            name: rng.randn(*v.shape.as_list()).astype(np.float32) for name, v in variables.items()
        }
        session.run([v.assign(weights[name]) for name, v in variables.items()])
        scores, boxes = session.run([score_outputs, box_outputs])
    w = {name.split("/", 1)[1]: value for name, value in weights.items()}
    for level, inputs in values.items():
        hidden = np.maximum(_conv_same(inputs, w["rpn/kernel"], w["rpn/bias"]), 0.0)
        expected_scores = _conv_same(hidden, w["rpn-class/kernel"], w["rpn-class/bias"])
        expected_boxes = _conv_same(hidden, w["rpn-box/kernel"], w["rpn-box/bias"])
        np.testing.assert_allclose(scores[level], expected_scores, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(boxes[level], expected_boxes, rtol=1e-4, atol=1e-4)
        assert scores[level].shape == (2, 16 // 2**level, 16 // 2**level, 2)
        assert boxes[level].shape == (2, 16 // 2**level, 16 // 2**level, 8)


def test_initial_outputs_are_small():
    with tf.Graph().as_default(), tf.Session() as session:
        features = {level: tf.random_normal([1, 8, 8, 16], seed=level) for level in (2, 3)}
        score_outputs, box_outputs = rpn_head.RPNHead(2, 3, 3, num_filters=16)(features)
        session.run(tf.global_variables_initializer())
        scores, boxes = session.run([score_outputs, box_outputs])
    # N(0, 0.01) kernels and zero biases keep the initial logits and codes near 0.
    for level in (2, 3):
        assert np.abs(scores[level]).max() < 0.05
        assert np.abs(boxes[level]).max() < 0.05


def test_batch_norm_is_per_level_and_convs_are_shared():
    with tf.Graph().as_default():
        head = rpn_head.RPNHead(2, 4, 3, num_filters=8, use_batch_norm=True)
        head(_pyramid(8, levels=range(2, 5)), is_training=True)
        names = [name for name, _ in _names_and_shapes(tf.global_variables())]
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert [n for n in names if n.endswith("kernel")] == [
        "rpn_head/rpn/kernel",
        "rpn_head/rpn-class/kernel",
        "rpn_head/rpn-box/kernel",
    ]
    assert [n for n in names if "-bn/" in n] == [
        f"rpn_head/rpn-l{level}-bn/{var}"
        for level in (2, 3, 4)
        for var in ("gamma", "beta", "moving_mean", "moving_variance")
    ]
    assert len(update_ops) == 2 * 3


def test_more_convs_get_suffixed_names_and_zero_convs_none():
    with tf.Graph().as_default():
        rpn_head.RPNHead(2, 3, 1, num_convs=3, num_filters=4)(_pyramid(4, levels=(2, 3)))
        kernels = [n for n, _ in _names_and_shapes(tf.global_variables()) if "kernel" in n]
    assert kernels == [
        "rpn_head/rpn/kernel",
        "rpn_head/rpn-1/kernel",
        "rpn_head/rpn-2/kernel",
        "rpn_head/rpn-class/kernel",
        "rpn_head/rpn-box/kernel",
    ]
    with tf.Graph().as_default():
        rpn_head.RPNHead(2, 3, 1, num_convs=0)(_pyramid(6, levels=(2, 3)))
        variables = _names_and_shapes(tf.global_variables())
    assert variables == [
        ("rpn_head/rpn-class/kernel", (1, 1, 6, 1)),
        ("rpn_head/rpn-class/bias", (1,)),
        ("rpn_head/rpn-box/kernel", (1, 1, 6, 4)),
        ("rpn_head/rpn-box/bias", (4,)),
    ]


@pytest.mark.parametrize("activation, op_type", [("relu", "Relu"), ("swish", "Sigmoid")])
@pytest.mark.parametrize("use_batch_norm", [True, False])
def test_activation_follows_each_conv(activation, op_type, use_batch_norm):
    with tf.Graph().as_default() as graph:
        head = rpn_head.RPNHead(
            2,
            3,
            3,
            num_convs=2,
            num_filters=4,
            activation=activation,
            use_batch_norm=use_batch_norm,
        )
        head(_pyramid(4, levels=(2, 3)))
        op_types = [op.type for op in graph.get_operations()]
    # 2 convs x 2 levels; none after the output convs.
    assert op_types.count(op_type) == 4
    assert ("FusedBatchNormV3" in op_types) == use_batch_norm


def test_separable_convs():
    with tf.Graph().as_default():
        rpn_head.RPNHead(2, 3, 3, num_filters=4, use_separable_conv=True)(
            _pyramid(4, levels=(2, 3))
        )
        names = [name for name, _ in _names_and_shapes(tf.global_variables())]
    assert names == [
        f"rpn_head/{layer}/{var}"
        for layer in ("rpn", "rpn-class", "rpn-box")
        for var in ("depthwise_kernel", "pointwise_kernel", "bias")
    ]


def test_extra_levels_are_ignored():
    with tf.Graph().as_default():
        score_outputs, box_outputs = rpn_head.RPNHead(3, 4, 3, num_filters=4)(
            _pyramid(4, levels=range(2, 7))
        )
    assert sorted(score_outputs) == sorted(box_outputs) == [3, 4]


def test_missing_level_raises():
    head = rpn_head.RPNHead(2, 6, 3)
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError,
            match=r"levels \[5, 6\] are missing; it needs levels 2\.\.6 and got \[2, 3, 4\]",
        ):
            head(_pyramid(4, levels=(2, 3, 4)))


def test_unequal_channels_raise():
    head = rpn_head.RPNHead(2, 3, 3)
    with tf.Graph().as_default():
        features = {2: tf.zeros([1, 8, 8, 4]), 3: tf.zeros([1, 4, 4, 8])}
        with pytest.raises(ValueError, match=r"same number of channels .*\{2: 4, 3: 8\}"):
            head(features)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "gelu"}, r"RPNHead: unknown activation 'gelu'; valid: \['relu', 'swish'\]"),
        ({"anchors_per_location": 0}, r"anchors_per_location must be an int >= 1; got 0"),
        ({"anchors_per_location": 3.0}, r"anchors_per_location must be an int >= 1; got 3\.0"),
        ({"num_convs": -1}, r"num_convs must be an int >= 0; got -1"),
        ({"num_filters": True}, r"num_filters must be an int >= 1; got True"),
        ({"min_level": 6, "max_level": 2}, r"min_level must be <= max_level; got min_level=6"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"min_level": 2, "max_level": 6, "anchors_per_location": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rpn_head.RPNHead(**args)
