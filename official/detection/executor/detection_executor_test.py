"""DetectionExecutor.evaluate with a stand-in Estimator: what it logs and writes."""

import json
import os
import re
import types

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.executor import detection_executor
from official.detection.modeling import finite_loss
from official.detection.modeling.layers import cpu_kernels as cpu_kernels_lib


class _Clock:
    """Stands in for the executor's wall clock: the stand-ins below take time by
    advancing it, so the stage times the executor reports are exact."""

    def __init__(self):
        self.now = 1000.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


_CLOCK = _Clock()


class _Estimator:
    def __init__(self, model_dir, batches):
        self.model_dir = model_dir
        self._batches = batches

    def latest_checkpoint(self):
        return os.path.join(self.model_dir, "model.ckpt-7")

    def predict(self, input_fn, checkpoint_path, yield_single_examples, hooks=()):
        _CLOCK.sleep(SETUP_SECONDS)
        for hook in hooks:
            hook.after_create_session(None, None)
        for index in range(self._batches):
            _CLOCK.sleep(PREDICT_SECONDS)
            yield {"source_id": np.arange(4) + 4 * index}


# What each stage of the stand-in evaluation takes.
SETUP_SECONDS, PREDICT_SECONDS, UPDATE_SECONDS, COCO_SECONDS = 0.3, 0.1, 0.1, 0.2


class _Evaluator:
    summary_text = "summary"

    def __init__(self):
        self.images = 0

    def update(self, batch):
        _CLOCK.sleep(UPDATE_SECONDS)
        self.images += len(batch["source_id"])

    def evaluate(self):
        _CLOCK.sleep(COCO_SECONDS)
        return {"AP": self.images / 100.0}

    def write_outputs(self, eval_dir, step):
        with open(os.path.join(eval_dir, f"metrics_{step}.json"), "w") as stream:
            json.dump(self.evaluate(), stream)


def test_evaluation_logs_progress_and_stops_after_its_batches(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(
        detection_executor.tf.logging, "info", lambda text, *args: logged.append(text % args)
    )
    monkeypatch.setattr(detection_executor, "time", types.SimpleNamespace(time=_CLOCK.time))
    executor = detection_executor.DetectionExecutor(
        None,
        run_config=None,
        evaluator_fn=_Evaluator,
        eval_batches=3,
        estimator_fn=lambda model_fn, config: _Estimator(str(tmp_path), batches=5),
        eval_progress_secs=0.0,
    )
    step, metrics = executor.evaluate(input_fn=None)
    assert (step, metrics) == (7, {"AP": 0.12})
    progress = [line for line in logged if line.startswith("evaluating: ")]
    assert [line.split(" |")[0] for line in progress] == [
        "evaluating: 4/12 images",
        "evaluating: 8/12 images",
        "evaluating: 12/12 images",
    ]
    assert progress[-1].endswith("time left 0:00:00")
    assert json.load(open(tmp_path / "eval" / "metrics_7.json")) == {"AP": 0.12}
    # The closing line gives each stage's time: 3 batches predicted and converted (the
    # 4th batch is read, then dropped), COCO evaluation once.
    (closing,) = [line for line in logged if line.startswith("Evaluated 12 images of checkpoint")]
    stages = {
        k.strip(): float(v) for k, v in re.findall(r"([a-zA-Z -]+?) ([0-9.]+) s[,;]", closing)
    }
    assert stages == pytest.approx(
        {
            "set-up": SETUP_SECONDS,
            "predict": 4 * PREDICT_SECONDS,
            "results": 3 * UPDATE_SECONDS,
            "closing": 0.0,
            "COCO evaluation": COCO_SECONDS,
            "writing": COCO_SECONDS,  # the stand-in's write_outputs evaluates again
        }
    ), closing
    # 12 images over 1.4 s of stages in all; 12 in 0.4 s of predict.
    assert ": 8.57 images/s over 1.4 s (set-up" in closing, closing
    assert "; predict alone 30.00 images/s)\n" in closing, closing


class _TrainingEstimator:
    """Trains by running `loss` once, behind the non-finite loss guard."""

    def __init__(self, loss_value, on_host):
        self._loss_value = loss_value
        self._on_host = on_host

    def train(self, input_fn, max_steps, hooks):
        with tf.Graph().as_default():
            loss = tf.placeholder(tf.float32, [])
            step = tf.constant(4, tf.int64)
            guard = finite_loss.check_finite_loss(loss, step, on_host=self._on_host)
            with tf.control_dependencies([guard]):
                train_op = tf.debugging.assert_positive(
                    tf.identity(loss), message="another failure"
                )
            with tf.Session() as session:
                session.run(train_op, {loss: self._loss_value})


def _executor(estimator):
    return detection_executor.DetectionExecutor(
        None,
        run_config=None,
        estimator_fn=lambda model_fn, config: estimator,
        evaluator_fn=_Evaluator,
    )


def test_training_stopped_by_the_guard_is_a_typed_error_with_the_step():
    with pytest.raises(
        detection_executor.TrainingStoppedError,
        match=r"^non-finite loss nan at step 5; training stopped",
    ):
        _executor(_TrainingEstimator(float("nan"), on_host=True)).train(None, 10)
    with pytest.raises(
        detection_executor.TrainingStoppedError,
        match=r"^assertion failed: \[non-finite loss \(value.*\] \[inf\] \[4\]$",
    ):
        _executor(_TrainingEstimator(float("inf"), on_host=False)).train(None, 10)


def test_other_training_failures_pass_through():
    with pytest.raises(tf.errors.InvalidArgumentError, match="another failure"):
        _executor(_TrainingEstimator(-1.0, on_host=True)).train(None, 10)


@pytest.mark.parametrize("cpu_kernels", [True, False])
def test_the_estimator_model_fn_builds_with_the_cpu_kernels_when_asked(cpu_kernels):
    seen = []

    def model_fn(features, labels, mode, params):
        seen.append(cpu_kernels_lib.active())
        return mode

    executor = detection_executor.DetectionExecutor(
        model_fn,
        run_config=None,
        evaluator_fn=_Evaluator,
        estimator_fn=lambda model_fn, config: model_fn,
        cpu_kernels=cpu_kernels,
    )
    for mode in ("train", "eval", "infer"):
        with tf.Graph().as_default():
            assert executor.estimator(None, None, mode, {}) == mode
    # Evaluation and predict graphs keep TensorFlow's kernels: as fast or faster there.
    assert seen == [cpu_kernels, False, False]
    assert (executor.estimator is model_fn) is not cpu_kernels
