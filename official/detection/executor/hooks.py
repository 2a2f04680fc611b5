"""Progress logging (training hook, evaluation line), the checkpoint saver and
checkpoint step numbers."""

import os
import re
import time

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator


def _format_seconds(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def eval_progress_text(num_images, num_batches, total_batches, seconds):
    """One evaluation progress line: images done, images/s and, with a known batch
    count, the total and the time left."""
    rate = num_images / max(seconds, 1e-9)
    if total_batches:
        total_images = int(round(num_images / num_batches * total_batches))
        left = (total_batches - num_batches) * seconds / num_batches
        return (
            f"evaluating: {num_images}/{total_images} images | {rate:.2f} images/s | "
            f"time left {_format_seconds(left)}"
        )
    return f"evaluating: {num_images} images | {rate:.2f} images/s"


class TrainProgressHook(tf.train.SessionRunHook):
    """Logs step, losses, learning rate, images/s and time left every N steps.

    Images/s counts `global_batch_size` images per step and leaves out the
    first logging interval, which holds graph warm-up. The global step is read
    after each run: a session run may do several steps (Ascend's
    iterations_per_loop), and a read fetched with the train op races with its
    increment.
    """

    def __init__(
        self,
        scalars,
        *,
        global_batch_size,
        total_steps,
        every_n_steps=10,
        log_fn=None,
    ):
        self._scalars = dict(scalars)
        self._batch_size = global_batch_size
        self._total_steps = total_steps
        self._every_n = max(int(every_n_steps), 1)
        self._log = log_fn or tf.logging.info
        self._last_time = None
        self._last_step = None
        self._measured_steps = 0
        self._measured_seconds = 0.0
        self.images_per_second = None

    def begin(self):
        self._global_step = tf.train.get_global_step()

    def before_run(self, run_context):
        return tf.train.SessionRunArgs({"scalars": self._scalars})

    def after_run(self, run_context, run_values):
        step = int(run_context.session.run(self._global_step))
        now = time.time()
        if self._last_time is None:
            self._last_time, self._last_step = now, step
            return
        if step - self._last_step < self._every_n and step < self._total_steps:
            return
        elapsed = now - self._last_time
        steps = step - self._last_step
        self._measured_steps += steps
        self._measured_seconds += elapsed
        rate = self._measured_steps / max(self._measured_seconds, 1e-9)
        self.images_per_second = rate * self._batch_size
        remaining = max(self._total_steps - step, 0) / max(rate, 1e-9)
        values = run_values.results["scalars"]
        parts = [f"step {step}/{self._total_steps}"]
        for name in sorted(values):
            if name != "learning_rate":
                parts.append(f"{name} {float(values[name]):.4f}")
        if "learning_rate" in values:
            parts.append(f"lr {float(values['learning_rate']):.6g}")
        parts.append(f"{self.images_per_second:.2f} images/s")
        parts.append(f"time left {_format_seconds(remaining)}")
        self._log(" | ".join(parts))
        self._last_time, self._last_step = now, step

    def end(self, session):
        # What follows the last step (the final checkpoint unless the step just wrote
        # it, then closing the session and its input pipeline) takes seconds on a busy
        # machine; this line's timestamp and that of "Loss for final step" show it.
        step = int(session.run(self._global_step))
        self._log(
            f"training stopped at step {step}; closing the session (final checkpoint, "
            "input pipeline)"
        )


class CheckpointNameError(ValueError):
    """A checkpoint whose name does not end in its global step."""


def parse_step(checkpoint_path):
    """The global step in a checkpoint name like `.../model.ckpt-1200`.

    Raises:
      CheckpointNameError: the name does not end in `-<step>`.
    """
    name = os.path.basename(checkpoint_path)
    match = re.search(r"-([0-9]+)$", name)
    if match is None:
        raise CheckpointNameError(
            f"the checkpoint name {name!r} does not end in its global step ({checkpoint_path}); "
            "evaluation files its results by step: name the checkpoint <prefix>-<step> as "
            "training does (e.g. model.ckpt-1200), its files and the model_checkpoint_path "
            "of the 'checkpoint' file next to it alike"
        )
    return int(match.group(1))


class CheckpointSaverHook(tf.train.CheckpointSaverHook):
    """Estimator's checkpoint saver without its extra copies of the graph.

    When a training session starts, TensorFlow's saver hook writes the graph as text
    into model_dir/graph.pbtxt and adds the graph and meta graph to the TensorBoard
    events file, whose writer has already written both on opening. For SpineNet-49S's
    training graph (35,000 ops) the text copy takes 2.2 s and 55 MB and the second
    copies 0.8 s, before the first step; nothing reads them. This hook leaves them out
    and saves the checkpoint of the starting step, as TensorFlow's does; checkpoints
    keep their .meta files and TensorBoard its graph.
    """

    def after_create_session(self, session, coord):
        global_step = session.run(self._global_step_tensor)
        self._save(session, global_step)
        self._timer.update_last_triggered_step(global_step)


def with_checkpoint_saver(model_fn, run_config):
    """`model_fn` whose training spec brings a CheckpointSaverHook (chief only) saving
    as `run_config` asks; Estimator then adds none of its own."""

    def model_fn_with_saver(features, labels, mode, params):
        spec = model_fn(features, labels, mode, params)
        if mode != tf_estimator.ModeKeys.TRAIN:
            return spec
        saver = CheckpointSaverHook(
            run_config.model_dir,
            save_steps=run_config.save_checkpoints_steps,
            save_secs=run_config.save_checkpoints_secs,
            scaffold=spec.scaffold,
        )
        return spec._replace(training_chief_hooks=[*spec.training_chief_hooks, saver])

    return model_fn_with_saver
