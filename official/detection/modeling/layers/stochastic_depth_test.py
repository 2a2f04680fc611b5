import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import stochastic_depth


def test_identity_at_eval_and_without_rate():
    x = tf.zeros([2, 3, 3, 1])
    assert stochastic_depth.drop_connect(x, drop_rate=0.5, is_training=False) is x
    assert stochastic_depth.drop_connect(x, drop_rate=None, is_training=True) is x
    assert stochastic_depth.drop_connect(x, drop_rate=0.0, is_training=True) is x


def test_training_drops_whole_examples_with_the_drop_rate():
    num_examples, drop_rate = 20000, 0.2
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        x = tf.ones([num_examples, 2, 2, 3])
        y = stochastic_depth.drop_connect(x, drop_rate=drop_rate, is_training=True)
        with tf.Session() as sess:
            out = sess.run(y)
    per_example = out.reshape(num_examples, -1)
    # Every example is either all zero or all 1 / keep_prob.
    kept = per_example[:, 0] > 0
    np.testing.assert_allclose(per_example[kept], 1.0 / (1.0 - drop_rate), rtol=1e-6)
    np.testing.assert_array_equal(per_example[~kept], 0.0)
    # Binomial std of the kept fraction is sqrt(0.8 * 0.2 / 20000) ~ 0.003.
    assert kept.mean() == pytest.approx(1.0 - drop_rate, abs=0.012)
    assert per_example.mean() == pytest.approx(1.0, abs=0.015)


def test_scale_drop_rate():
    assert stochastic_depth.scale_drop_rate(0.2, 2, 5) == pytest.approx(0.08)
    assert stochastic_depth.scale_drop_rate(0.2, 15, 15) == pytest.approx(0.2)
    assert stochastic_depth.scale_drop_rate(None, 3, 5) is None
    assert stochastic_depth.scale_drop_rate(0.0, 3, 5) is None


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.2", True])
def test_check_drop_rate_rejects(rate):
    with pytest.raises(
        ValueError, match=r"SpineNet: init_drop_connect_rate must be None or a number in \[0, 1\)"
    ):
        stochastic_depth.check_drop_rate(rate, "SpineNet")


def test_check_drop_rate_accepts():
    for rate in (None, 0, 0.0, 0.2):
        stochastic_depth.check_drop_rate(rate, "ResNet")
