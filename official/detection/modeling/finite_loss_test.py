"""The non-finite loss guard: what fails the step and how the failure is recognised."""

import pytest
import tensorflow.compat.v1 as tf

from official.detection.executor.failures import error_headline
from official.detection.modeling import finite_loss


def _run_guard(loss_value, on_host, step=3):
    """Runs a guard on `loss_value` at 0-based `step`; returns (result, op error or None)."""
    with tf.Graph().as_default():
        loss = tf.constant(loss_value, tf.float32)
        guard = finite_loss.check_finite_loss(loss, tf.constant(step, tf.int64), on_host=on_host)
        with tf.control_dependencies([guard]):
            out = tf.identity(loss)
        with tf.Session() as session:
            try:
                return session.run(out), None
            except tf.errors.OpError as error:
                return None, error


@pytest.mark.parametrize("on_host", [True, False])
def test_a_finite_loss_passes(on_host):
    assert _run_guard(2.5, on_host) == (2.5, None)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_the_host_guard_is_found_by_its_op_with_its_typed_error(value):
    _, error = _run_guard(value, on_host=True)
    check = finite_loss.failed_check(error)
    assert isinstance(check.error, finite_loss.NonFiniteLossError)
    assert str(check.error) == (
        f"non-finite loss {value} at step 4; training stopped before applying this step. "
        "The last checkpoint in model_dir is intact: lower the learning rate or lengthen "
        "warm-up, check the data, then run again to resume."
    )


def test_the_device_guard_is_found_by_its_op_and_its_message_has_value_and_step():
    _, error = _run_guard(float("nan"), on_host=False, step=7)
    check = finite_loss.failed_check(error)
    assert check is not None and check.error is None
    assert error_headline(error.message).endswith("[nan] [7]")


def test_another_failing_op_is_not_taken_for_the_guard():
    with tf.Graph().as_default():
        finite_loss.check_finite_loss(tf.constant(1.0), tf.constant(0, tf.int64))
        x = tf.placeholder(tf.float32, [])
        bad = tf.debugging.assert_positive(x, message="not the guard")
        with tf.Session() as session:
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                session.run(bad, {x: -1.0})
    assert finite_loss.failed_check(error.value) is None
    assert finite_loss.failed_check(tf.errors.UnknownError(None, None, "no op")) is None
