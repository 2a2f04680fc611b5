"""A training hook that measures throughput after warm-up and records the loss, then
writes this process's summary file (format and aggregation: train_summary.py)."""

import time

import tensorflow.compat.v1 as tf

from official.detection.executor import train_summary

# Loss entries kept in a summary file (the most recent ones).
MAX_LOSS_ENTRIES = 10000


def warmup_steps_for(total_steps):
    """Steps left out of throughput: 10% of the run, between 1 and 100."""
    return min(max(int(total_steps) // 10, 1), 100)


def _reported_loss():
    """The loss the Estimator reports: the last entry it adds to GraphKeys.LOSSES.

    Under a distribution strategy this is the loss reduced over replicas, which the
    model_fn (running per replica) cannot see.
    """
    losses = tf.get_collection(tf.GraphKeys.LOSSES)
    if not losses:
        raise ValueError(
            "TrainSummaryHook: no tensor in GraphKeys.LOSSES; use it with tf.estimator"
        )
    return losses[-1]


class TrainSummaryHook(tf.train.SessionRunHook):
    """Measures steps/s after warm-up and the loss; writes the summary when training ends.

    The global step is read after every session run, so runs that cover several steps
    (Ascend iterations_per_loop) are measured correctly. The first run of each
    `Estimator.train` call holds graph set-up and is never measured; neither are the first
    `warmup_steps` steps of the first call. One hook may serve several train calls
    (train_and_eval); its figures then cover all of them.

    Args:
      path: the JSON file to write.
      rank, rank_size: this process and the processes of the run.
      global_batch_size: images per step over all devices.
      replica_batch_size: images per device per step.
      warmup_steps: steps at the start not measured.
      loss_every_n_steps: record the loss at steps divisible by this (and the last).
      info: extra JSON-serialisable fields (device, precision, ...).
    """

    def __init__(
        self,
        path,
        *,
        rank,
        rank_size,
        global_batch_size,
        replica_batch_size,
        warmup_steps,
        loss_every_n_steps=1,
        info=None,
    ):
        self._path = path
        self._fields = dict(info or {})
        self._fields.update(
            rank=rank,
            rank_size=rank_size,
            global_batch_size=global_batch_size,
            replica_batch_size=replica_batch_size,
            warmup_steps=warmup_steps,
        )
        self._warmup_steps = warmup_steps
        self._every_n = max(int(loss_every_n_steps), 1)
        self._first_step = None
        self._losses = []
        self._latest = None
        self._measured_steps = 0
        self._measured_seconds = 0.0
        self._train_seconds = 0.0

    def begin(self):
        self._global_step = tf.train.get_global_step()
        self._loss = _reported_loss()
        self._mark = None  # (step, time) of the last measured run end
        self._begin_time = time.time()

    def after_create_session(self, session, coord):
        step = int(session.run(self._global_step))
        if self._first_step is None:
            self._first_step = step
            self._measure_from = step + self._warmup_steps
        else:
            self._measure_from = step
        self._last_step = step

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self._loss)

    def after_run(self, run_context, run_values):
        now = time.time()
        step = int(run_context.session.run(self._global_step))
        if self._mark is not None:
            self._measured_steps += step - self._mark[0]
            self._measured_seconds += now - self._mark[1]
        if self._mark is not None or step >= self._measure_from:
            self._mark = (step, now)
        self._latest = [step, float(run_values.results)]
        if step % self._every_n == 0:
            self._losses.append(self._latest)
            del self._losses[:-MAX_LOSS_ENTRIES]
        self._last_step = step

    def end(self, session):
        self._train_seconds += time.time() - self._begin_time
        self._write()

    def _write(self):
        rate = self._measured_steps / self._measured_seconds if self._measured_seconds else None
        losses = list(self._losses)
        if self._latest and (not losses or losses[-1][0] != self._latest[0]):
            losses.append(self._latest)
        summary = dict(self._fields)
        summary.update(
            first_step=self._first_step,
            last_step=self._last_step,
            measured_steps=self._measured_steps,
            measured_seconds=self._measured_seconds,
            steps_per_second=rate,
            images_per_second=None if rate is None else rate * summary["global_batch_size"],
            final_loss=self._latest[1] if self._latest else None,
            losses=losses,
            train_seconds=self._train_seconds,
        )
        train_summary.write_json(self._path, summary)
