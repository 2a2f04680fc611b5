import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling import warm_start


def _write_checkpoint(path, values):
    """Saves variables {name: array} without any scope into `path`."""
    with tf.Graph().as_default():
        variables = [tf.Variable(v, name=n) for n, v in values.items()]
        saver = tf.train.Saver(variables)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return saver.save(sess, path)


def test_prefix_mapping_loads_values_and_lists_skipped(tmp_path):
    ckpt = _write_checkpoint(
        str(tmp_path / "backbone.ckpt"),
        {
            "conv2d/kernel": np.full([3, 3, 3, 8], 0.5, np.float32),
            "conv2d_1/kernel": np.ones([1, 1, 8, 4], np.float32),
        },
    )
    with tf.Graph().as_default():
        with tf.variable_scope("resnet101"):
            k0 = tf.get_variable("conv2d/kernel", [3, 3, 3, 8])
            k1 = tf.get_variable("conv2d_1/kernel", [1, 1, 8, 16])  # other shape
            tf.get_variable("conv2d_2/kernel", [1, 1, 16, 16])  # not in checkpoint
        tf.get_variable("head/kernel", [4, 4])  # outside the prefix: not considered
        loaded, skipped = warm_start.warm_start(ckpt, prefix="resnet101/")
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            np.testing.assert_allclose(sess.run(k0), 0.5)
            assert not np.allclose(sess.run(k1)[:, :, :, :4], 1.0)
    assert loaded == 1
    reasons = dict(skipped)
    assert reasons["resnet101/conv2d_2/kernel"] == warm_start.SKIP_MISSING
    assert reasons["resnet101/conv2d_1/kernel"].startswith(warm_start.SKIP_SHAPE)
    assert "[1, 1, 8, 16] vs checkpoint [1, 1, 8, 4]" in reasons["resnet101/conv2d_1/kernel"]
    assert "head/kernel" not in reasons


def test_skip_regex_and_directory_path(tmp_path):
    _write_checkpoint(
        str(tmp_path / "model.ckpt"),
        {"a/kernel": np.zeros([2], np.float32), "b/kernel": np.zeros([2], np.float32)},
    )
    with tf.Graph().as_default():
        tf.get_variable("a/kernel", [2])
        tf.get_variable("b/kernel", [2])
        loaded, skipped = warm_start.warm_start(str(tmp_path), skip_variables_regex="b/")
    assert loaded == 1
    assert skipped == [("b/kernel", warm_start.SKIP_BY_REGEX)]


def test_missing_path_is_an_error(tmp_path):
    with tf.Graph().as_default():
        tf.get_variable("a", [2])
        with pytest.raises(warm_start.WarmStartError, match="does not exist"):
            warm_start.warm_start(str(tmp_path / "nope.ckpt"))


def test_directory_without_checkpoint_is_an_error(tmp_path):
    with tf.Graph().as_default():
        tf.get_variable("a", [2])
        with pytest.raises(warm_start.WarmStartError, match="directory without a checkpoint"):
            warm_start.warm_start(str(tmp_path))


def test_loading_nothing_is_an_error(tmp_path):
    ckpt = _write_checkpoint(str(tmp_path / "c.ckpt"), {"conv2d/kernel": np.zeros([2], np.float32)})
    with tf.Graph().as_default():
        with tf.variable_scope("resnet50"):
            tf.get_variable("conv2d/kernel", [2])
        with pytest.raises(warm_start.WarmStartError, match="would load no variable.*prefix"):
            warm_start.warm_start(ckpt, prefix="resnet101/")


def test_skipped_variables_are_summarised_by_reason_with_the_first_of_each():
    skipped = [
        ("head/bias", warm_start.SKIP_MISSING),
        ("head/kernel", warm_start.SKIP_MISSING),
        ("cls/kernel", f"{warm_start.SKIP_SHAPE}: model [3, 3, 8, 90] vs checkpoint [3, 3, 8, 9]"),
        ("resnet/beta", warm_start.SKIP_BY_REGEX),
    ]
    assert warm_start.summarize_skipped(skipped) == (
        "2 not in checkpoint (first: head/bias), "
        "1 shape differs (first: cls/kernel: model [3, 3, 8, 90] vs checkpoint [3, 3, 8, 9]), "
        "1 matches skip_variables_regex (first: resnet/beta)"
    )
    assert warm_start.summarize_skipped([]) == "none skipped"
