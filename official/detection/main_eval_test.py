"""main.py --mode=eval as a user meets it beside a running trainer."""

import os
import shutil
import subprocess
import sys
import time

import tensorflow.compat.v1 as tf

from official.detection.testing import shapes_records

MAIN = os.path.join(os.path.dirname(__file__), "main.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TINY_CONFIG = os.path.join(os.path.dirname(__file__), "testing", "retinanet_tiny.yaml")


def _checkpoint_files(model_dir, step):
    return [
        os.path.join(model_dir, name)
        for name in os.listdir(model_dir)
        if name.startswith(f"model.ckpt-{step}.")
    ]


def _point_state_at(model_dir, step):
    """Writes the `checkpoint` file as the trainer does when `step` is its newest: whole,
    by a rename (the evaluator polls it and must not read it half-written)."""
    path = os.path.join(model_dir, "checkpoint")
    with open(path + ".tmp", "w") as state:
        state.write(
            f'model_checkpoint_path: "model.ckpt-{step}"\n'
            f'all_model_checkpoint_paths: "model.ckpt-{step}"\n'
        )
    os.replace(path + ".tmp", path)


def test_a_checkpoint_deleted_before_it_is_read_is_skipped(tmp_path):
    """The trainer's keep_checkpoint_max removes the newest checkpoint the evaluator saw;
    the evaluator says so, waits for the next one and evaluates it."""
    records = shapes_records.write_shapes_records(
        str(tmp_path / "shapes"), num_train=4, num_val=2, image_size=64
    )
    model_dir = str(tmp_path / "model")
    override = (
        f"train.train_file_pattern={records['train_file_pattern']},"
        f"eval.eval_file_pattern={records['eval_file_pattern']},"
        "train.total_steps=4,train.iterations_per_loop=2"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    common = ["--model=retinanet", f"--model_dir={model_dir}", f"--config_file={TINY_CONFIG}"]
    train = subprocess.run(
        [sys.executable, MAIN, *common, "--mode=train", f"--params_override={override}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    # Step 4 is held back; the evaluator finds step 2, which goes (as keep_checkpoint_max
    # removes it) while the evaluator builds its graph, before it restores it.
    held = tmp_path / "held"
    held.mkdir()
    for path in _checkpoint_files(model_dir, 4):
        shutil.move(path, str(held))
    _point_state_at(model_dir, 2)

    log_path = tmp_path / "eval.log"
    with open(log_path, "w") as log:
        evaluator = subprocess.Popen(
            [
                sys.executable,
                MAIN,
                *common,
                "--mode=eval",
                f"--params_override={override},eval.min_eval_interval=0,eval.eval_timeout=300",
            ],
            cwd=REPO,
            env=env,
            stderr=log,
        )
        deadline = time.time() + 300
        while "Calling model_fn" not in log_path.read_text():
            assert evaluator.poll() is None, log_path.read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.02)
        for path in _checkpoint_files(model_dir, 2):
            os.remove(path)
        while "model.ckpt-2 disappeared" not in log_path.read_text():
            assert evaluator.poll() is None, log_path.read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.1)
        for name in os.listdir(str(held)):
            shutil.move(str(held / name), model_dir)
        _point_state_at(model_dir, 4)
        assert evaluator.wait(timeout=300) == 0, log_path.read_text()[-3000:]
    text = log_path.read_text()
    assert "Traceback" not in text
    assert text.index("model.ckpt-2 disappeared") < text.index("Restoring parameters from")
    assert os.path.exists(os.path.join(model_dir, "eval", "metrics_4.json"))
    assert not os.path.exists(os.path.join(model_dir, "eval", "metrics_2.json"))
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-4")
