import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.layers import activations


def test_swish_values_and_gradient_equal_tf_nn_swish():
    x_value = np.concatenate([np.linspace(-30.0, 30.0, 241), [-100.0, 100.0, 0.0]]).astype(
        np.float32
    )
    upstream_value = np.random.RandomState(0).randn(x_value.size).astype(np.float32)
    with tf.Graph().as_default():
        x = tf.constant(x_value)
        ours = activations.swish(x)
        reference = tf.nn.swish(x)
        upstream = tf.constant(upstream_value)
        (ours_grad,) = tf.gradients(ours, [x], grad_ys=upstream)
        (reference_grad,) = tf.gradients(reference, [x], grad_ys=upstream)
        with tf.Session() as sess:
            values = sess.run([ours, reference, ours_grad, reference_grad])
    np.testing.assert_array_equal(values[0], values[1])
    np.testing.assert_allclose(values[2], values[3], rtol=1e-6, atol=1e-7)
    # By hand at 0: swish' = sigmoid(0) = 0.5.
    assert values[2][-1] == pytest.approx(0.5 * upstream_value[-1])


def test_swish_gradient_reaches_an_upstream_variable():
    # y = swish(2w) + swish(-2w) at w = 2, so dy/dw = 2 swish'(4) - 2 swish'(-4)
    # with swish'(z) = s + z s (1 - s), s = sigmoid(z).
    with tf.Graph().as_default():
        w = tf.Variable(2.0)
        y = tf.reduce_sum(activations.swish(w * tf.constant([2.0, -2.0])))
        (grad,) = tf.gradients(y, [w])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            value = sess.run(grad)

    def swish_derivative(z):
        s = 1.0 / (1.0 + np.exp(-z))
        return s + z * s * (1.0 - s)

    assert value == pytest.approx(2.0 * swish_derivative(4.0) - 2.0 * swish_derivative(-4.0))


def test_unknown_activation_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown name 'gelu'; valid names: \['relu', 'swish'\]"):
        activations.get_activation("gelu")
