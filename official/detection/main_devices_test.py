"""main.py's device flags, and a run stopped by a non-finite loss that resumes.

Runs of several processes and of the Ascend path live in test/launch_scripts_test.py.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from official.detection.testing import shapes_records

MAIN = os.path.join(os.path.dirname(__file__), "main.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TINY_CONFIG = os.path.join(os.path.dirname(__file__), "testing", "retinanet_tiny.yaml")


def _run_main(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "RANK_SIZE", "RANK_ID")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run(
        [sys.executable, MAIN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device=tpu"], "--device='tpu' is not a device; valid: auto, cpu, gpu, npu"),
        (["--precision=fp16"], "--precision='fp16' is not a precision; valid: fp32, mixed"),
        (["--device=cpu", "--precision=mixed"], "--precision=mixed needs a GPU or an Ascend NPU"),
        (
            ["--device=gpu", "--precision_mode=allow_mix_precision"],
            "--precision_mode=allow_mix_precision is an Ascend NPU setting",
        ),
        (["--device=npu"], "--device=npu: the Ascend TensorFlow adapter 'npu_bridge' is not"),
        (["--num_devices=-2"], "--num_devices must be an int >= 0, got -2"),
        # --device=auto is this machine's CPU: the rule is checked once it is resolved.
        (["--precision=mixed"], "error: --precision=mixed needs a GPU or an Ascend NPU"),
    ],
)
def test_bad_device_flags_exit_1_with_a_clear_message(args, message):
    result = _run_main("--model_dir=/tmp/unused", *args, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert message in result.stderr


def test_gpu_on_a_machine_without_one_exits_1():
    result = _run_main(
        "--model_dir=/tmp/unused", f"--config_file={TINY_CONFIG}", "--device=gpu", timeout=300
    )
    assert result.returncode == 1
    assert "error: --device=gpu but TensorFlow sees no GPU" in result.stderr


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return shapes_records.write_shapes_records(
        str(tmp_path_factory.mktemp("shapes")), num_train=8, num_val=2, image_size=64
    )


def test_non_finite_loss_stops_at_its_step_and_a_restart_resumes(records, tmp_path):
    """An infinite learning rate from step 3 on makes the loss of step 4 NaN.

    Checkpoints come every 2 steps, so model.ckpt-2 is the last good one; the step that
    met the NaN is never applied. A restart with a sane schedule resumes from it.
    """
    model_dir = str(tmp_path / "model")
    data = f"train: {{train_file_pattern: '{records['train_file_pattern']}', "
    exploding = (
        data + "total_steps: 6, iterations_per_loop: 2, learning_rate: {type: step, "
        "warmup_steps: 0, init_learning_rate: 0.01, learning_rate_levels: [.inf], "
        "learning_rate_steps: [2]}}"
    )
    result = _run_main(
        f"--model_dir={model_dir}", f"--config_file={TINY_CONFIG}", f"--params_override={exploding}"
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: non-finite loss nan at step 4; training stopped before applying" in result.stderr
    checkpoints = sorted(f for f in os.listdir(model_dir) if f.endswith(".index"))
    assert checkpoints == ["model.ckpt-0.index", "model.ckpt-2.index"]

    sane = data + "total_steps: 5, iterations_per_loop: 1}"
    result = _run_main(
        f"--model_dir={model_dir}", f"--config_file={TINY_CONFIG}", f"--params_override={sane}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Restoring parameters from " + os.path.join(model_dir, "model.ckpt-2") in result.stderr
    summary = json.load(open(os.path.join(model_dir, "train_summary", "rank_0.json")))
    assert summary["first_step"] == 2
    assert [step for step, _ in summary["losses"]] == [3, 4, 5]
    assert all(math.isfinite(loss) for _, loss in summary["losses"])
    assert os.path.exists(os.path.join(model_dir, "model.ckpt-5.index"))
