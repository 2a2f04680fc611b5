import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.backbones import spinenet
from official.detection.testing import reference_variables as ref

# spinenet.* options of the ancestor's configs/spinenet/spinenet49S_retinanet.yaml
# (model_id left at its default), with batch_norm_activation's swish and sync BN.
_YAML_49S = dict(
    filter_size_scale=0.65,
    block_repeats=1,
    resample_alpha=0.5,
    endpoints_num_filters=128,
    init_drop_connect_rate=0.2,
    activation="swish",
    use_sync_bn=True,
)

# A small topology for behaviour tests: cheap to build, levels 3..5.
_TINY_SPECS = [
    (5, "residual", (0, 1), True),
    (3, "bottleneck", (0, 2), True),
    (4, "residual", (2, 3), True),
]
_TINY = dict(min_level=3, max_level=5, block_specs=_TINY_SPECS, filter_size_scale=0.25)


def _shapes(features):
    return {level: f.shape.as_list() for level, f in features.items()}


@pytest.fixture(scope="module")
def spinenet49s_graph():
    """The yaml's SpineNet-49S on 128x128 training inputs, built once and run once."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        # Batch 2: at level 7 (1x1) training-mode batch norm of a single example is 0.
        images = tf.random_normal([2, 128, 128, 3], seed=1)
        features = spinenet.SpineNet(**_YAML_49S)(images, is_training=True)
        trainable = ref.graph_variables(tf.trainable_variables())
        global_ = ref.graph_variables(tf.global_variables())
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            values = sess.run(features)
    return dict(graph=graph, features=features, values=values, trainable=trainable, global_=global_)


def test_spinenet49s_variables_equal_the_ancestor(spinenet49s_graph):
    ref_trainable, ref_global = ref.load_reference_variables("retinanet_spinenet49s")
    assert spinenet49s_graph["trainable"] == ref.select_scope(ref_trainable, "spinenet/")
    assert spinenet49s_graph["global_"] == ref.select_scope(ref_global, "spinenet/")
    assert len(spinenet49s_graph["trainable"]) == 390
    assert len(spinenet49s_graph["global_"]) == 650


def test_spinenet49s_parameter_count(spinenet49s_graph):
    count = sum(ref.count_parameters(s) for _, s in spinenet49s_graph["trainable"])
    ref_trainable, _ = ref.load_reference_variables("retinanet_spinenet49s")
    reference = sum(
        ref.count_parameters(s) for _, s in ref.select_scope(ref_trainable, "spinenet/")
    )
    assert count == reference == 9089215


def test_spinenet49s_outputs(spinenet49s_graph):
    assert _shapes(spinenet49s_graph["features"]) == {
        level: [2, 128 // 2**level, 128 // 2**level, 128] for level in range(3, 8)
    }
    for value in spinenet49s_graph["values"].values():
        assert np.all(np.isfinite(value))
        assert value.std() > 0.0


def test_spinenet49s_drop_rates_grow_with_block_index(spinenet49s_graph):
    keep_probs = sorted(
        float(tf.get_static_value(op.inputs[1]))
        for op in spinenet49s_graph["graph"].get_operations()
        if op.type == "RealDiv" and tf.get_static_value(op.inputs[1]) is not None
    )
    # Block i of 15 drops with 0.2 * (i + 1) / 15; the stem never drops.
    assert keep_probs == pytest.approx(sorted(1.0 - 0.2 * (i + 1) / 15 for i in range(15)))


def test_spinenet49_shapes_and_channels():
    with tf.Graph().as_default():
        backbone = spinenet.SpineNet("49")
        features = backbone(tf.zeros([2, 128, 128, 3]))
        stem_kernel = tf.trainable_variables()[3]
    assert _shapes(features) == {
        level: [2, 128 // 2**level, 128 // 2**level, 256] for level in range(3, 8)
    }
    assert backbone.output_channels(5) == 256
    # First stem block projection: 64 -> 4 * 64 channels.
    assert stem_kernel.shape.as_list() == [1, 1, 64, 256]


def test_scaling_table():
    assert spinenet.get_scaling("49S") == (128, 0.65, 0.5, 1)
    assert spinenet.get_scaling("49s") == spinenet.get_scaling("49S")
    assert spinenet.get_scaling(49) == (256, 1.0, 0.5, 1)
    assert spinenet.get_scaling("96") == (256, 1.0, 0.5, 2)
    assert spinenet.get_scaling("143") == (256, 1.0, 1.0, 3)
    assert spinenet.get_scaling("143L") == (256, 1.3, 1.0, 3)
    assert spinenet.get_scaling("190") == (512, 1.3, 1.0, 4)


def test_explicit_arguments_override_the_model_id():
    backbone = spinenet.SpineNet("190", endpoints_num_filters=64)
    assert backbone.output_channels(3) == 64


def test_non_power_of_two_widths_are_resampled_to_the_level_grid():
    # 100 px: level widths 25 (stem), 13, 7, 4. 25 -> 4 pools and then resizes,
    # 4 -> 13 and 4 -> 7 upsample by non-integer ratios.
    with tf.Graph().as_default():
        features = spinenet.SpineNet(**_TINY)(tf.zeros([1, 100, 100, 3]))
    assert _shapes(features) == {3: [1, 13, 13, 256], 4: [1, 7, 7, 256], 5: [1, 4, 4, 256]}


@pytest.mark.parametrize("native, expected_op", [(False, "Tile"), (True, "ResizeNearestNeighbor")])
def test_integer_upsampling_op(native, expected_op):
    with tf.Graph().as_default() as graph:
        spinenet.SpineNet(**_TINY, use_native_resize_op=native)(tf.zeros([1, 64, 64, 3]))
        # sub_policy1 upsamples level 5 (width 2) to level 3 (width 8).
        op_types = {
            op.type
            for op in graph.get_operations()
            if op.name.startswith("spinenet/sub_policy1/resample_with_alpha_resample_1_1/")
        }
    assert expected_op in op_types


def test_output_blocks_absorb_unconsumed_features():
    specs = [
        (3, "bottleneck", (0, 1), False),  # feature 2, never an input
        (3, "bottleneck", (0, 1), True),  # same level and width: takes feature 2 in
    ]
    with tf.Graph().as_default() as graph:
        spinenet.SpineNet(min_level=3, max_level=3, block_specs=specs, filter_size_scale=0.25)(
            tf.zeros([1, 64, 64, 3])
        )
        names = {op.name for op in graph.get_operations()}
    assert "spinenet/sub_policy1/add_1" in names
    assert "spinenet/sub_policy0/add_1" not in names


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"model_id": "50"},
            r"SpineNet: model_id '50' is not supported; "
            r"valid ids: \['49S', '49', '96', '143', '143L', '190'\]",
        ),
        (
            {"block_specs": [(3, "mbconv", (0, 1), True)], "min_level": 3, "max_level": 3},
            r"block_specs\[0\] = \(3, 'mbconv', \(0, 1\), True\): unknown block type 'mbconv'",
        ),
        (
            {"block_specs": [(3, "residual", (0, 2), True)], "min_level": 3, "max_level": 3},
            r"block_specs\[0\] .*: input_offsets must be two indices in \[0, 1\]",
        ),
        (
            {"block_specs": [(9, "residual", (0, 1), True)], "min_level": 3, "max_level": 3},
            r"block_specs\[0\] .*: level must be one of \[1, 2, 3, 4, 5, 6, 7\]",
        ),
        (
            {"min_level": 2},
            r"output blocks must cover each level 2..7 once; "
            r"block_specs output levels are \[3, 4, 5, 6, 7\]",
        ),
        (
            {"init_drop_connect_rate": 1.0},
            r"SpineNet: init_drop_connect_rate must be None or a number in \[0, 1\); got 1.0",
        ),
        ({"activation": "elu"}, r"activation: unknown name 'elu'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spinenet.SpineNet(**kwargs)


@pytest.mark.parametrize("shape", [[1, 64, None, 3], [1, None, 64, 3], [64, 64, 3]])
def test_images_need_a_static_size(shape):
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, shape)
        with pytest.raises(
            ValueError,
            match=r"SpineNet: inputs must be \[B, H, W, 3\] with static height and width; got",
        ):
            spinenet.SpineNet(**_TINY)(images)
