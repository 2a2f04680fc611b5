"""train_summary.py and train_summary_hook.py: per-process files, their aggregate, the
shell output of the launch scripts, and the hook on a real Estimator run."""

import json
import os

import pytest
import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.executor import train_summary, train_summary_hook


def _rank(rank, steps_per_second, final_loss, **extra):
    summary = dict(
        rank=rank,
        rank_size=2,
        num_replicas=2,
        device="npu",
        precision="mixed",
        precision_mode="allow_mix_precision",
        global_batch_size=16,
        replica_batch_size=8,
        last_step=100,
        measured_steps=90,
        steps_per_second=steps_per_second,
        final_loss=final_loss,
        train_seconds=50.0 + rank,
    )
    summary.update(extra)
    return summary


def test_aggregate_counts_every_device_and_averages_ranks(tmp_path):
    model_dir = str(tmp_path)
    train_summary.write_json(train_summary.rank_summary_path(model_dir, 0), _rank(0, 2.0, 1.0))
    train_summary.write_json(train_summary.rank_summary_path(model_dir, 1), _rank(1, 3.0, 2.0))
    os.makedirs(tmp_path / "eval")
    for step, ap in ((50, 0.1), (100, 0.25)):
        (tmp_path / "eval" / f"metrics_{step}.json").write_text(json.dumps({"AP": ap}))
    summary = train_summary.aggregate(model_dir)
    # 16 images per step over both ranks at the mean rate of 2.5 steps/s.
    assert summary["images_per_second"] == pytest.approx(40.0)
    assert summary["seconds_per_step"] == pytest.approx(0.4)
    assert summary["final_loss"] == pytest.approx(1.5)
    assert (summary["ranks_found"], summary["train_seconds"]) == (2, 51.0)
    assert (summary["eval_step"], summary["AP"]) == (100, 0.25)
    assert train_summary.format_shell(summary).splitlines() == [
        "fps=40.0000",
        "seconds_per_step=0.4000",
        "loss=1.500000",
        "accuracy=0.2500",
        "ranks_found=2",
        "rank_size=2",
        "num_replicas=2",
        "device=npu",
    ]


def test_cli_writes_the_aggregate_and_fails_without_summaries(tmp_path, capsys):
    assert train_summary.main([f"--model_dir={tmp_path}"]) == 1
    assert "no training summary in" in capsys.readouterr().err
    train_summary.write_json(
        train_summary.rank_summary_path(str(tmp_path), 0), _rank(0, None, 0.5, measured_steps=0)
    )
    assert train_summary.main([f"--model_dir={tmp_path}", "--format=shell"]) == 0
    out = capsys.readouterr().out
    assert "fps=None" in out and "loss=0.500000" in out and "accuracy=None" in out
    written = json.loads((tmp_path / train_summary.AGGREGATE_FILE).read_text())
    assert written["images_per_second"] is None and written["ranks_found"] == 1


def test_warmup_steps_for():
    assert [train_summary_hook.warmup_steps_for(n) for n in (3, 50, 1000, 90000)] == [
        1,
        5,
        100,
        100,
    ]


def _model_fn(features, labels, mode):
    w = tf.get_variable("w", [2], initializer=tf.ones_initializer())
    loss = tf.reduce_mean(tf.square(tf.reduce_sum(features * w, 1) - labels))
    step = tf.train.get_or_create_global_step()
    train_op = tf.train.GradientDescentOptimizer(0.01).minimize(loss, step)
    return tf_estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def _input_fn():
    features = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    return tf.data.Dataset.from_tensors((features, tf.constant([1.0, 2.0]))).repeat()


class _LossLog(tf.train.SessionRunHook):
    def begin(self):
        self.loss = tf.get_collection(tf.GraphKeys.LOSSES)[-1]
        self.values = []

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self.loss)

    def after_run(self, run_context, run_values):
        self.values.append(float(run_values.results))


def test_hook_measures_after_warmup_and_records_every_loss(tmp_path):
    path = str(tmp_path / "summary" / "rank_0.json")
    hook = train_summary_hook.TrainSummaryHook(
        path,
        rank=0,
        rank_size=1,
        global_batch_size=2,
        replica_batch_size=2,
        warmup_steps=2,
        info={"device": "cpu"},
    )
    losses = _LossLog()
    config = tf_estimator.RunConfig(model_dir=str(tmp_path / "model"), log_step_count_steps=None)
    estimator = tf_estimator.Estimator(_model_fn, config=config)
    estimator.train(_input_fn, max_steps=6, hooks=[hook, losses])
    first = json.loads(open(path).read())
    assert [step for step, _ in first["losses"]] == [1, 2, 3, 4, 5, 6]
    assert [loss for _, loss in first["losses"]] == pytest.approx(losses.values)
    # Steps 1-2 are warm-up; runs 3..6 are measured from the end of step 2.
    assert (first["first_step"], first["last_step"], first["measured_steps"]) == (0, 6, 4)
    assert first["steps_per_second"] == pytest.approx(4 / first["measured_seconds"])
    assert first["images_per_second"] == pytest.approx(2 * first["steps_per_second"])
    assert first["final_loss"] == pytest.approx(losses.values[-1])
    assert first["device"] == "cpu"

    # A second train call (train_and_eval) skips only its own first run.
    estimator.train(_input_fn, max_steps=9, hooks=[hook, losses])
    second = json.loads(open(path).read())
    assert (second["last_step"], second["measured_steps"]) == (9, 4 + 2)
    assert [step for step, _ in second["losses"]] == list(range(1, 10))


def test_hook_needs_an_estimator_loss():
    hook = train_summary_hook.TrainSummaryHook(
        "unused.json",
        rank=0,
        rank_size=1,
        global_batch_size=1,
        replica_batch_size=1,
        warmup_steps=1,
    )
    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()
        with pytest.raises(ValueError, match="no tensor in GraphKeys.LOSSES; use it with"):
            hook.begin()
