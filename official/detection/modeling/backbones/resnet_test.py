import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.backbones import resnet
from official.detection.testing import reference_variables as ref


def _expected_shapes(depth, size, batch=1):
    bottleneck = resnet.RESNET_SPECS[depth][0] == "bottleneck"
    return {
        level: [
            batch,
            -(-size // 2**level),
            -(-size // 2**level),
            (64 << (level - 2)) * (4 if bottleneck else 1),
        ]
        for level in (2, 3, 4, 5)
    }


@pytest.fixture(scope="module")
def resnet50_graph():
    """ResNet-50 on a 256x256 training graph (built once, never run)."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [1, 256, 256, 3])
        features = resnet.ResNet(50)(images, is_training=True)
        trainable = ref.graph_variables(tf.trainable_variables())
        global_ = ref.graph_variables(tf.global_variables())
    return features, trainable, global_


@pytest.mark.parametrize("reference", ["retinanet_r50", "maskrcnn_r50"])
def test_resnet50_variables_equal_the_ancestor(resnet50_graph, reference):
    _, trainable, global_ = resnet50_graph
    ref_trainable, ref_global = ref.load_reference_variables(reference)
    assert trainable == ref.select_scope(ref_trainable, "resnet50/")
    assert global_ == ref.select_scope(ref_global, "resnet50/")
    assert len(trainable) == 159
    assert len(global_) == 265


def test_resnet50_parameter_count(resnet50_graph):
    _, trainable, _ = resnet50_graph
    ref_trainable, _ = ref.load_reference_variables("retinanet_r50")
    count = sum(ref.count_parameters(shape) for _, shape in trainable)
    reference = sum(
        ref.count_parameters(s) for _, s in ref.select_scope(ref_trainable, "resnet50/")
    )
    assert count == reference == 23508032


def test_resnet50_output_shapes(resnet50_graph):
    features, _, _ = resnet50_graph
    shapes = {level: f.shape.as_list() for level, f in features.items()}
    assert shapes == _expected_shapes(50, 256)


@pytest.mark.parametrize("depth", [10, 18, 34])
def test_small_resnets_forward(depth):
    images = np.random.RandomState(depth).randn(1, 64, 64, 3).astype(np.float32)
    with tf.Graph().as_default():
        backbone = resnet.ResNet(depth)
        features = backbone(tf.constant(images), is_training=False)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            values = sess.run(features)
    assert {k: list(v.shape) for k, v in values.items()} == _expected_shapes(depth, 64)
    for level, value in values.items():
        assert value.shape[-1] == backbone.output_channels(level)
        assert np.all(np.isfinite(value))
        # Every block ends in a ReLU.
        assert value.min() >= 0.0 and value.max() > 0.0


def test_depth_table_matches_layer_counts():
    # depth = weighted layers: stem conv + convs per block x blocks + (classifier).
    for depth, (block, repeats) in resnet.RESNET_SPECS.items():
        convs_per_block = 2 if block == "residual" else 3
        assert convs_per_block * sum(repeats) + 2 == depth


def test_odd_input_sizes_round_up():
    with tf.Graph().as_default():
        features = resnet.ResNet(10)(tf.zeros([2, 65, 97, 3]))
    assert {k: v.shape.as_list()[1:3] for k, v in features.items()} == {
        2: [17, 25],
        3: [9, 13],
        4: [5, 7],
        5: [3, 4],
    }


def test_channels_first_layout():
    with tf.Graph().as_default():
        features = resnet.ResNet(18, data_format="channels_first")(tf.zeros([1, 3, 64, 64]))
        kernels = [v.shape.as_list() for v in tf.trainable_variables()][:1]
    assert features[2].shape.as_list() == [1, 64, 16, 16]
    assert features[5].shape.as_list() == [1, 512, 2, 2]
    assert kernels == [[7, 7, 3, 64]]


def test_batch_norm_momentum_and_epsilon_reach_every_layer():
    with tf.Graph().as_default() as graph:
        resnet.ResNet(10, batch_norm_momentum=0.9, batch_norm_epsilon=1e-3)(
            tf.zeros([2, 32, 32, 3]), is_training=True
        )
        ops = graph.get_operations()
        epsilons = {op.get_attr("epsilon") for op in ops if op.type == "FusedBatchNormV3"}
        # Moving averages update by (1 - momentum): the constant fed to that Sub.
        momenta = {
            float(tf.get_static_value(op.inputs[1]))
            for op in ops
            if op.name.endswith("AssignMovingAvg/sub")
        }
        num_batch_norms = sum(op.type == "FusedBatchNormV3" for op in ops)
    assert num_batch_norms == 1 + 4 * 3  # stem + 4 blocks of (projection + 2 convs)
    assert sorted(epsilons) == pytest.approx([1e-3])
    assert sorted(momenta) == pytest.approx([0.9])


def test_frozen_batch_norm_leaves_only_kernels_trainable():
    with tf.Graph().as_default():
        resnet.ResNet(10, batch_norm_trainable=False)(tf.zeros([1, 32, 32, 3]), is_training=True)
        trainable = [v.op.name for v in tf.trainable_variables()]
        assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
        assert len(tf.global_variables()) == 13 + 13 * 4
    assert len(trainable) == 13
    assert all(name.endswith("/kernel") for name in trainable)


def test_stochastic_depth_rates_grow_with_depth_and_vanish_at_eval():
    def keep_probs(is_training):
        with tf.Graph().as_default() as graph:
            backbone = resnet.ResNet(10, init_drop_connect_rate=0.5)
            backbone(tf.zeros([2, 32, 32, 3]), is_training=is_training)
            # drop_connect divides each branch by its keep probability.
            return sorted(
                float(tf.get_static_value(op.inputs[1]))
                for op in graph.get_operations()
                if op.type == "RealDiv" and tf.get_static_value(op.inputs[1]) is not None
            )

    # Groups C2..C5 drop with 0.5 * 2/5, 3/5, 4/5, 5/5.
    assert keep_probs(True) == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert keep_probs(False) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"resnet_depth": 42},
            r"ResNet: resnet_depth 42 is not supported; "
            r"valid depths: \[10, 18, 34, 50, 101, 152, 200\]",
        ),
        (
            {"resnet_depth": 50, "data_format": "NCHW"},
            r"ResNet: data_format must be one of .*; got 'NCHW'",
        ),
        (
            {"resnet_depth": 50, "init_drop_connect_rate": 1.5},
            r"ResNet: init_drop_connect_rate must be None or a number in \[0, 1\); got 1.5",
        ),
        ({"resnet_depth": 50, "activation": "tanh"}, r"unknown name 'tanh'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resnet.ResNet(**kwargs)
