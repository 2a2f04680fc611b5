"""TrainProgressHook: the steps, scalars and rates it logs; checkpoint step numbers."""

import pytest
import tensorflow.compat.v1 as tf

from official.detection.executor import hooks


def _run(steps_per_run, runs, **kwargs):
    logged = []
    with tf.Graph().as_default():
        global_step = tf.train.get_or_create_global_step()
        loss = tf.cast(global_step, tf.float32) * 0.5
        with tf.control_dependencies([loss]):  # the loss of the step's input state
            train_op = tf.assign_add(global_step, steps_per_run)
        hook = hooks.TrainProgressHook(
            {"total_loss": loss, "learning_rate": tf.constant(0.25)},
            global_batch_size=4,
            total_steps=steps_per_run * runs,
            log_fn=logged.append,
            **kwargs,
        )
        with tf.train.MonitoredSession(hooks=[hook]) as sess:
            for _ in range(runs):
                sess.run(train_op)
    return logged, hook


def test_logs_every_n_steps_with_losses_lr_rate_and_time_left():
    logged, hook = _run(1, 7, every_n_steps=3)
    assert [line.split(" | ")[0] for line in logged[:-1]] == ["step 4/7", "step 7/7"]
    assert logged[-1] == (
        "training stopped at step 7; closing the session (final checkpoint, input pipeline)"
    )
    # The scalars are fetched with the train op: the loss of the step's input state.
    assert "total_loss 1.5000" in logged[0] and "lr 0.25" in logged[0]
    assert "images/s" in logged[0] and "time left 0:00:0" in logged[0]
    assert hook.images_per_second > 0


def test_several_steps_per_run_are_read_from_the_global_step():
    logged, _ = _run(5, 4, every_n_steps=5)
    assert [line.split(" | ")[0] for line in logged[:-1]] == [
        "step 10/20",
        "step 15/20",
        "step 20/20",
    ]


def test_eval_progress_text_counts_images_rate_and_time_left():
    # 3 of 10 batches of 8 images in 12 s: 2 images/s, 7 batches x 4 s left.
    assert hooks.eval_progress_text(24, 3, 10, 12.0) == (
        "evaluating: 24/80 images | 2.00 images/s | time left 0:00:28"
    )
    # Until the input ends (no batch count): no total, no time left.
    assert hooks.eval_progress_text(24, 3, None, 12.0) == "evaluating: 24 images | 2.00 images/s"


def test_parse_step_reads_the_step_or_names_the_checkpoint():
    assert hooks.parse_step("/runs/a-2/model.ckpt-1200") == 1200
    for path in ("/runs/a-2/model.ckpt", "/runs/model.ckpt-12a", "/runs/model.ckpt-"):
        with pytest.raises(hooks.CheckpointNameError) as error:
            hooks.parse_step(path)
        name = path.rsplit("/", 1)[1]
        assert str(error.value).startswith(
            f"the checkpoint name {name!r} does not end in its global step ({path}); "
        )
