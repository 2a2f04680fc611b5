"""Runs training and evaluation of a detection `model_fn` with tf.estimator.

The executor knows nothing of a model's internals: it receives the model_fn,
a RunConfig built for the device, input functions and an evaluator factory.
"""

import contextlib
import json
import os
import time

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.executor import hooks as hooks_lib
from official.detection.executor.failures import error_headline
from official.detection.modeling import finite_loss
from official.detection.modeling.layers import cpu_kernels as cpu_kernels_lib


class TrainingStoppedError(RuntimeError):
    """Training stopped on a non-finite loss; the message names the step."""


def _write_eval_summaries(eval_dir, step, metrics):
    # FileWriter needs graph mode; TF 2.x runs eagerly outside Estimator.
    with tf.Graph().as_default():
        writer = tf.summary.FileWriter(eval_dir)
        values = [
            tf.Summary.Value(tag=name, simple_value=float(value)) for name, value in metrics.items()
        ]
        writer.add_summary(tf.Summary(value=values), step)
        writer.close()


class EvalTiming:
    """Seconds an evaluation spends in each stage, for its closing log line.

    Stages: set-up (graph, session, checkpoint or SavedModel), predict (input pipeline,
    model and post-processing in the session), results (detections to COCO results,
    masks pasted), closing (past the last batch: the end of the input, the session
    closed), COCO evaluation, writing (metrics, detections, summaries).
    """

    STAGES = ("set-up", "predict", "results", "closing", "COCO evaluation", "writing")

    def __init__(self):
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self._start = time.time()

    def add(self, stage, seconds):
        self.seconds[stage] += seconds

    @contextlib.contextmanager
    def stage(self, stage):
        start = time.time()
        try:
            yield
        finally:
            self.add(stage, time.time() - start)

    def elapsed(self):
        """Seconds since this timing began."""
        return time.time() - self._start

    def text(self, num_images):
        total = self.elapsed()
        predict = self.seconds["predict"]
        parts = ", ".join(f"{name} {self.seconds[name]:.1f} s" for name in self.STAGES)
        return (
            f"{num_images / max(total, 1e-9):.2f} images/s over {total:.1f} s ({parts}; "
            f"predict alone {num_images / max(predict, 1e-9):.2f} images/s)"
        )


def finish_evaluation(evaluator, eval_dir, step, what, num_images, timing):
    """Computes the metrics of what `evaluator` holds, writes them with the detections
    (metrics_<step>.json, detections_<step>.json) and as TensorBoard summaries into
    `eval_dir`, logs them with the time per stage (`timing`, an EvalTiming), and
    returns them."""
    with timing.stage("COCO evaluation"):
        metrics = evaluator.evaluate()
    with timing.stage("writing"):
        tf.io.gfile.makedirs(eval_dir)
        evaluator.write_outputs(eval_dir, step)
        _write_eval_summaries(eval_dir, step, metrics)
    tf.logging.info(
        "Evaluated %d images of %s: %s\n%s",
        num_images,
        what,
        timing.text(num_images),
        evaluator.summary_text,
    )
    tf.logging.info("Eval metrics at step %s: %s", step, json.dumps(metrics, sort_keys=True))
    return metrics


def _saves_like_estimator(run_config):
    """Whether training on `run_config` saves through one chief saver hook that
    hooks_lib.CheckpointSaverHook can stand in for: a plain RunConfig that saves, on
    one device (distributed and NPU training keep their own savers)."""
    return (
        type(run_config) is tf_estimator.RunConfig
        and run_config.train_distribute is None
        and bool(run_config.save_checkpoints_steps or run_config.save_checkpoints_secs)
    )


class _SessionReady(tf.train.SessionRunHook):
    """Notes when the predict session is ready (graph built, checkpoint restored)."""

    def __init__(self):
        self.time = None

    def after_create_session(self, session, coord):
        self.time = time.time()


class DetectionExecutor:
    """Trains and evaluates one model in one `model_dir`."""

    def __init__(
        self,
        model_fn,
        *,
        run_config,
        estimator_fn,
        evaluator_fn,
        eval_batches=None,
        multi_worker=False,
        eval_progress_secs=30.0,
        cpu_kernels=False,
    ):
        """
        Args:
          model_fn: Estimator model_fn.
          run_config: tf.estimator.RunConfig (or a device subclass of it).
          estimator_fn: `fn(model_fn, run_config) -> Estimator` for the device
            (devices.build_estimator_fn).
          evaluator_fn: `fn() -> evaluator` with `update(batch)`, `evaluate()`,
            `write_outputs(eval_dir, step)` and `summary_text`.
          eval_batches: number of prediction batches per evaluation; None
            evaluates until the eval input is exhausted.
          multi_worker: the run config holds a MultiWorkerMirroredStrategy over a
            TF_CONFIG cluster; training then goes through the distribute
            coordinator of `tf.estimator.train_and_evaluate`.
          eval_progress_secs: an evaluation logs its progress (images, images/s, time
            left) when this many seconds passed since its start or last progress line.
          cpu_kernels: build the model_fn's graphs with the CPU kernels
            (modeling/layers/cpu_kernels.py), as the placement resolved them.
        """
        if cpu_kernels:
            model_fn = cpu_kernels_lib.wrap_model_fn(model_fn)
        if _saves_like_estimator(run_config):
            model_fn = hooks_lib.with_checkpoint_saver(model_fn, run_config)
        self._estimator = estimator_fn(model_fn, run_config)
        self._evaluator_fn = evaluator_fn
        self._eval_batches = eval_batches
        self._multi_worker = multi_worker
        self._eval_progress_secs = eval_progress_secs

    @property
    def model_dir(self):
        return self._estimator.model_dir

    @property
    def estimator(self):
        return self._estimator

    def train(self, input_fn, max_steps, hooks=None):
        """Trains until the global step reaches `max_steps` (resuming from model_dir)."""
        try:
            if self._multi_worker:
                # Estimator.train cannot start the workers' servers; train_and_evaluate
                # does, and with no 'evaluator' task in the cluster it only trains.
                tf_estimator.train_and_evaluate(
                    self._estimator,
                    tf_estimator.TrainSpec(input_fn, max_steps=max_steps, hooks=hooks or ()),
                    tf_estimator.EvalSpec(input_fn, steps=1),
                )
            else:
                self._estimator.train(input_fn=input_fn, max_steps=max_steps, hooks=hooks)
        except tf.errors.OpError as exc:
            check = finite_loss.failed_check(exc)
            if check is None:
                raise
            # A device guard has no Python error; its Assert message holds value and step.
            raise TrainingStoppedError(str(check.error or error_headline(exc.message))) from exc

    def evaluate(self, input_fn, checkpoint_path=None):
        """Evaluates one checkpoint (default: the latest) with COCO metrics.

        Writes `<model_dir>/eval/metrics_<step>.json`, `detections_<step>.json`
        and TensorBoard summaries in `<model_dir>/eval`.

        Returns:
          (step, metrics dict).
        """
        checkpoint_path = checkpoint_path or self._estimator.latest_checkpoint()
        if checkpoint_path is None:
            raise FileNotFoundError(
                f"no checkpoint in {self.model_dir!r} to evaluate; train first or point "
                "--model_dir at a directory holding model.ckpt-* files"
            )
        step = hooks_lib.parse_step(checkpoint_path)
        evaluator = self._evaluator_fn()
        timing = EvalTiming()
        start = time.time()
        num_images = 0
        ready = _SessionReady()
        predictions = self._estimator.predict(
            input_fn=input_fn,
            checkpoint_path=checkpoint_path,
            yield_single_examples=False,
            hooks=[ready],
        )
        last_progress = start
        waited_since = start
        for index, batch in enumerate(predictions):
            now = time.time()
            if index == 0:
                waited_since = ready.time or start
                timing.add("set-up", waited_since - start)
            timing.add("predict", now - waited_since)
            waited_since = now
            if self._eval_batches is not None and index >= self._eval_batches:
                break
            with timing.stage("results"):
                evaluator.update(batch)
            waited_since = time.time()
            num_images += len(batch["source_id"])
            now = time.time()
            if now - last_progress >= self._eval_progress_secs:
                last_progress = now
                tf.logging.info(
                    hooks_lib.eval_progress_text(
                        num_images, index + 1, self._eval_batches, now - start
                    )
                )
        # Past the last batch: the end of the input, closing the session.
        timing.add("closing", time.time() - waited_since)
        return step, finish_evaluation(
            evaluator,
            os.path.join(self.model_dir, "eval"),
            step,
            f"checkpoint {checkpoint_path}",
            num_images,
            timing,
        )

    def evaluate_checkpoints(self, input_fn, *, final_step, min_interval_secs=0, timeout=None):
        """Evaluates each new checkpoint; returns after the one at `final_step`.

        Returns the last (step, metrics), or None when `timeout` seconds pass
        without a new checkpoint before any was evaluated.
        """
        result = None
        for checkpoint_path in tf.train.checkpoints_iterator(
            self.model_dir, min_interval_secs=min_interval_secs, timeout=timeout
        ):
            try:
                result = self.evaluate(input_fn, checkpoint_path)
            except (tf.errors.NotFoundError, ValueError):
                # The trainer's keep_checkpoint_max can delete it before it is restored
                # (TensorFlow then says NotFound or "not a valid checkpoint").
                if tf.io.gfile.exists(checkpoint_path + ".index"):
                    raise
                tf.logging.warning(
                    "Checkpoint %s disappeared before it was read (the trainer keeps "
                    "train.keep_checkpoint_max); waiting for the next",
                    checkpoint_path,
                )
                continue
            if result[0] >= final_step:
                break
        if result is None:
            tf.logging.warning(
                "No checkpoint appeared in %s within %s s; evaluation ended",
                self.model_dir,
                timeout,
            )
        return result
