import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import blocks
from official.detection.modeling.layers.batch_norm import BatchNormActivation


def _variables():
    return [(v.op.name, v.shape.as_list()) for v in tf.trainable_variables()]


def test_residual_block_creates_projection_first():
    with tf.Graph().as_default():
        y = blocks.residual_block(
            tf.zeros([1, 9, 9, 4]),
            8,
            2,
            use_projection=True,
            batch_norm_activation=BatchNormActivation(),
        )
        assert y.shape.as_list() == [1, 5, 5, 8]
        assert _variables() == [
            ("conv2d/kernel", [1, 1, 4, 8]),
            ("batch_normalization/gamma", [8]),
            ("batch_normalization/beta", [8]),
            ("conv2d_1/kernel", [3, 3, 4, 8]),
            ("batch_normalization_1/gamma", [8]),
            ("batch_normalization_1/beta", [8]),
            ("conv2d_2/kernel", [3, 3, 8, 8]),
            ("batch_normalization_2/gamma", [8]),
            ("batch_normalization_2/beta", [8]),
        ]


def test_bottleneck_block_layout():
    with tf.Graph().as_default():
        y = blocks.bottleneck_block(
            tf.zeros([1, 8, 8, 16]),
            4,
            2,
            use_projection=True,
            batch_norm_activation=BatchNormActivation(),
        )
        assert y.shape.as_list() == [1, 4, 4, 16]
        kernels = [(n, s) for n, s in _variables() if n.endswith("kernel")]
        assert kernels == [
            ("conv2d/kernel", [1, 1, 16, 16]),
            ("conv2d_1/kernel", [1, 1, 16, 4]),
            ("conv2d_2/kernel", [3, 3, 4, 4]),  # the stride sits here
            ("conv2d_3/kernel", [1, 1, 4, 16]),
        ]


@pytest.mark.parametrize("block, filters", [("residual", 8), ("bottleneck", 2)])
def test_zero_branch_leaves_activation_of_identity_shortcut(block, filters):
    # With the last batch norm's gamma and beta at 0 the branch adds nothing,
    # so the block computes relu(inputs): the shortcut is wired as identity.
    x = np.random.RandomState(0).randn(2, 4, 4, 8).astype(np.float32)
    with tf.Graph().as_default():
        y = blocks.BLOCKS[block].build(
            tf.constant(x),
            filters,
            1,
            use_projection=False,
            batch_norm_activation=BatchNormActivation(),
        )
        # Variables are listed in creation order: the last two are gamma and
        # beta of the branch's last batch norm.
        last_bn = tf.trainable_variables()[-2:]
        assert [v.op.name.split("/")[1] for v in last_bn] == ["gamma", "beta"]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for v in last_bn:
                sess.run(v.assign(tf.zeros_like(v)))
            out = sess.run(y)
    np.testing.assert_allclose(out, np.maximum(x, 0.0), rtol=1e-6)


def test_dropped_examples_reduce_to_the_shortcut():
    x = np.random.RandomState(1).randn(64, 3, 3, 4).astype(np.float32)
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        y = blocks.residual_block(
            tf.constant(x),
            4,
            1,
            use_projection=False,
            batch_norm_activation=BatchNormActivation(),
            drop_rate=0.5,
            is_training=True,
        )
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            out = sess.run(y)
    dropped = np.all(np.isclose(out, np.maximum(x, 0.0)), axis=(1, 2, 3))
    assert 16 <= dropped.sum() <= 48


def test_block_group_projects_and_strides_only_in_its_first_block():
    with tf.Graph().as_default():
        y = blocks.build_block_group(
            tf.zeros([1, 8, 8, 8]),
            block_type=blocks.BLOCKS["bottleneck"],
            filters=4,
            strides=2,
            repeats=3,
            use_projection=True,
            batch_norm_activation=BatchNormActivation(),
            name="group",
        )
        assert y.op.name == "group"
        assert y.shape.as_list() == [1, 4, 4, 16]
        kernels = [s for n, s in _variables() if n.endswith("kernel")]
        assert len(kernels) == 1 + 3 * 3
        assert kernels[0] == [1, 1, 8, 16]


def test_get_block_type_lists_valid_types():
    assert blocks.get_block_type("residual", "x").expansion == 1
    assert blocks.get_block_type("bottleneck", "x").expansion == 4
    with pytest.raises(
        ValueError, match=r"SpineNet: unknown block type 'mbconv'; valid types: \['bottleneck'"
    ):
        blocks.get_block_type("mbconv", "SpineNet")
