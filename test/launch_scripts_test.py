"""The launch scripts' flags, network names and the commands they run (--dry_run);
training runs are in launch_runs_test.py."""

import json
import os
import subprocess

import pytest
import yaml

from official.detection.testing import shapes_records
from official.detection.testing.launch_scripts import (
    REPO,
    SCRIPTS,
    TINY_CONFIG,
    override_pairs,
    parse_dry_run,
    run_script,
    script_env,
    write_rank_table,
)

CONFIG_ROOT = os.path.join(REPO, "official", "detection", "configs")


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes"))
    records = shapes_records.write_shapes_records(root, num_train=2, num_val=2, image_size=64)
    data = os.path.dirname(records["train_file_pattern"])
    os.symlink(os.path.dirname(records["val_json_file"]), os.path.join(data, "annotations"))
    return data


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    result = run_script(script, "--help")
    assert result.returncode == 0
    assert f"Usage: bash test/{script} --data_path=DIR" in result.stdout
    for flag in ("--ckpt_path", "--precision_mode", "--network", "--config_file", "--batch_size"):
        assert flag in result.stdout
    assert "--train_steps" in result.stdout and "--num_devices" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_missing_data_path_exits_1(script):
    result = run_script(script, "--batch_size=2")
    assert result.returncode == 1
    assert "error: --data_path is required" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus=1"], "unknown option '--bogus=1' (options take the form --name=value"),
        (["--batch_size", "2"], "unknown option '--batch_size'"),
        (["--batch_size=0"], "--batch_size=0 is not a positive integer"),
        (["--train_steps=x"], "--train_steps=x is not a positive integer"),
        (["--device=tpu"], "--device=tpu: use auto, npu, gpu or cpu"),
        (["--network=yolo"], "--network=yolo is not a shipped config; valid (case-insensitive)"),
        (["--config_file=/no/such.yaml"], "--config_file=/no/such.yaml does not exist"),
    ],
)
def test_bad_options_exit_1(data_path, args, message):
    result = run_script("train_full_1p.sh", f"--data_path={data_path}", "--device=cpu", *args)
    assert result.returncode == 1
    assert message in result.stderr


def test_data_path_without_records_exits_1(tmp_path):
    result = run_script("train_full_1p.sh", f"--data_path={tmp_path}")
    assert result.returncode == 1
    assert f"--data_path={tmp_path} holds no train-* TFRecord files" in result.stderr


def _dry_run(script, data_path, *args, env=None):
    result = run_script(script, f"--data_path={data_path}", "--dry_run=True", *args, env=env)
    assert result.returncode == 0, result.stderr
    return parse_dry_run(result.stdout)


def test_every_shipped_config_is_a_network_name(data_path):
    configs = {}
    for directory in ("spinenet", "retinanet", "maskrcnn", "shapes"):
        for name in os.listdir(os.path.join(CONFIG_ROOT, directory)):
            if name.endswith(".yaml"):
                configs[name[: -len(".yaml")]] = os.path.join(CONFIG_ROOT, directory, name)
    assert len(configs) >= 10
    for name, path in configs.items():
        ((_, flags),) = _dry_run(
            "train_performance_1p.sh", data_path, f"--network={name.upper()}", "--device=cpu"
        )
        assert flags["config_file"] == path
        model_type = yaml.safe_load(open(path)).get("type", "retinanet")
        assert flags["model"] == ("faster_rcnn" if "faster" in name else model_type)


@pytest.mark.parametrize(
    "network, config, model",
    [
        (None, "maskrcnn/faster_rcnn_r101_fpn_coco.yaml", "faster_rcnn"),
        ("faster_rcnn", "maskrcnn/faster_rcnn_r101_fpn_coco.yaml", "faster_rcnn"),
        ("mask_rcnn", "maskrcnn/mask_rcnn_r101_fpn_coco.yaml", "mask_rcnn"),
        ("spinenet49s_retinanet", "spinenet/spinenet49S_retinanet.yaml", "retinanet"),
    ],
)
def test_network_aliases(data_path, network, config, model):
    args = ["--device=cpu"] + ([f"--network={network}"] if network else [])
    ((_, flags),) = _dry_run("train_full_1p.sh", data_path, *args)
    assert flags["config_file"] == os.path.join(CONFIG_ROOT, config)
    assert flags["model"] == model


def test_every_flag_reaches_main_on_one_cpu(data_path, tmp_path):
    ((env, flags),) = _dry_run(
        "train_full_1p.sh",
        data_path,
        "--device=cpu",
        f"--config_file={TINY_CONFIG}",
        "--ckpt_path=/ckpt/resnet101/model.ckpt",
        "--batch_size=3",
        "--train_steps=7",
        f"--model_dir={tmp_path / 'model'}",
        "--precision_mode=allow_fp32_to_fp16",
    )
    assert flags["config_file"] == TINY_CONFIG and flags["model"] == "retinanet"
    assert (flags["device"], flags["precision"], flags["num_devices"]) == ("cpu", "fp32", "1")
    assert flags["model_dir"] == str(tmp_path / "model") and flags["mode"] == "train"
    assert flags["eval_after_training"] == "True"
    assert override_pairs(flags) == {
        "train.train_file_pattern": f"{data_path}/train-*",
        "eval.eval_file_pattern": f"{data_path}/val-*",
        "train.train_batch_size": "3",
        "train.total_steps": "7",
        "train.checkpoint.path": "/ckpt/resnet101/model.ckpt",
        "eval.val_json_file": f"{data_path}/annotations/instances_val2017.json",
    }


def test_eight_npu_ranks_get_their_environment(data_path, tmp_path):
    table = write_rank_table(tmp_path / "table.json", servers=1, devices=2)
    commands = _dry_run(
        "train_performance_8p.sh",
        data_path,
        "--device=npu",
        "--num_devices=2",
        f"--rank_table_file={table}",
        "--precision_mode=force_fp16",
        "--batch_size=3",
        env=script_env(JOB_ID="77"),
    )
    assert sorted(env["RANK_ID"] for env, _ in commands) == ["0", "1"]
    for env, flags in commands:
        assert env["DEVICE_ID"] == env["ASCEND_DEVICE_ID"] == env["RANK_ID"]
        assert (env["RANK_SIZE"], env["RANK_TABLE_FILE"], env["JOB_ID"]) == ("2", table, "77")
        assert (flags["device"], flags["precision_mode"]) == ("npu", "force_fp16")
        assert "num_devices" not in flags and "precision" not in flags
        assert override_pairs(flags)["train.train_batch_size"] == "6"
        assert override_pairs(flags)["train.total_steps"] == "1000"
    eight = run_script(
        "train_performance_8p.sh", f"--data_path={data_path}", "--device=npu", "--num_devices=2"
    )
    assert eight.returncode == 1
    assert "rank_table_8p.json lists 8 devices but --num_devices=2" in eight.stderr


def test_gpus_run_one_process_with_the_precision_of_the_mode(data_path):
    ((_, flags),) = _dry_run("train_full_8p.sh", data_path, "--device=gpu", "--num_devices=4")
    assert (flags["device"], flags["precision"], flags["num_devices"]) == ("gpu", "mixed", "4")
    assert override_pairs(flags)["train.train_batch_size"] == "8"
    ((_, flags),) = _dry_run(
        "train_full_8p.sh", data_path, "--device=gpu", "--precision_mode=must_keep_origin_dtype"
    )
    assert (flags["precision"], flags["num_devices"]) == ("fp32", "8")


def test_multinodes_layouts(data_path, tmp_path):
    cluster = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"]}
    tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    ((env, flags),) = _dry_run(
        "train_performance_multinodes.sh",
        data_path,
        "--device=cpu",
        env=script_env(TF_CONFIG=tf_config),
    )
    assert override_pairs(flags)["train.train_batch_size"] == "6"
    assert "num_devices" not in flags
    missing = run_script(
        "train_performance_multinodes.sh", f"--data_path={data_path}", "--device=cpu"
    )
    assert missing.returncode == 1 and "multinodes on GPUs/CPUs needs TF_CONFIG" in missing.stderr

    table = write_rank_table(tmp_path / "table.json", servers=2, devices=2)
    commands = _dry_run(
        "train_performance_multinodes.sh",
        data_path,
        "--device=npu",
        f"--rank_table_file={table}",
        "--server_index=1",
    )
    assert sorted((env["RANK_ID"], env["DEVICE_ID"]) for env, _ in commands) == [
        ("2", "0"),
        ("3", "1"),
    ]
    assert {env["RANK_SIZE"] for env, _ in commands} == {"4"}
    unknown = run_script(
        "train_performance_multinodes.sh",
        f"--data_path={data_path}",
        "--device=npu",
        f"--rank_table_file={table}",
    )
    assert unknown.returncode == 1 and "is an address of this host" in unknown.stderr


def test_launch_environment_errors(data_path, tmp_path):
    missing_dir = run_script("train_full_1p.sh", f"--data_path={tmp_path / 'none'}")
    assert missing_dir.returncode == 1
    assert f"--data_path={tmp_path / 'none'} is not a directory" in missing_dir.stderr
    no_table = run_script(
        "train_full_8p.sh",
        f"--data_path={data_path}",
        "--device=npu",
        f"--rank_table_file={tmp_path / 'none.json'}",
    )
    assert no_table.returncode == 1
    assert f"--rank_table_file={tmp_path / 'none.json'} does not exist" in no_table.stderr
    bad_cluster = run_script(
        "train_performance_multinodes.sh",
        f"--data_path={data_path}",
        "--device=cpu",
        env=script_env(TF_CONFIG="{cluster"),
    )
    assert bad_cluster.returncode == 1
    assert "TF_CONFIG is not valid JSON: {cluster" in bad_cluster.stderr


def test_a_failed_training_exits_1_and_shows_the_log(data_path, tmp_path):
    """--device=gpu on a machine without one: main.py fails, so does the script."""
    result = run_script(
        "train_full_1p.sh",
        f"--data_path={data_path}",
        f"--config_file={TINY_CONFIG}",
        "--device=gpu",
        f"--output_dir={tmp_path}",
        timeout=300,
    )
    assert result.returncode == 1
    assert f"error: training failed; last lines of {tmp_path}/0/train_0.log" in result.stderr
    assert "error: --device=gpu but TensorFlow sees no GPU" in result.stderr
    assert not [name for name in os.listdir(tmp_path / "0") if name.endswith("_acc.log")]


@pytest.mark.parametrize("lane", ["tf2", "tf1"])
def test_without_python_set_the_repository_environment_runs_from_test(data_path, lane):
    """As a new user calls them: from test/, after scripts/setup_env.sh, PYTHON unset."""
    order = [".venv", ".venv-tf1"] if lane == "tf2" else [".venv-tf1", ".venv"]
    pythons = [os.path.join(REPO, venv, "bin", "python") for venv in order]
    expected = next(p for p in pythons if os.access(p, os.X_OK))
    env = {k: v for k, v in script_env(DETECTION_LANE=lane).items() if k != "PYTHON"}
    result = subprocess.run(
        ["bash", "train_performance_1p.sh", f"--data_path={data_path}", "--dry_run=True"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.join(REPO, "test"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert f"python: {expected} (chosen: PYTHON not set), TensorFlow " in result.stdout
    ((_, flags),) = parse_dry_run(result.stdout)
    command = next(line for line in result.stdout.splitlines() if "main.py" in line)
    assert f" {expected} official/detection/main.py " in command
    assert override_pairs(flags)["train.train_file_pattern"] == f"{data_path}/train-*"


def test_a_python_without_tensorflow_is_named(data_path, tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    result = run_script(
        "train_performance_1p.sh", f"--data_path={data_path}", env=script_env(PYTHON=str(python))
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: TensorFlow is not importable by {python} (PYTHON); run "
        f"'bash scripts/setup_env.sh' (or '--tf1') in {REPO}, or set PYTHON to an "
        "interpreter with TensorFlow"
    )


def test_train_steps_choose_a_loop_length_that_divides_them(data_path):
    """shapes/retinanet_shapes.yaml has train.iterations_per_loop 500."""
    args = ("--network=retinanet_shapes", "--device=npu")
    result = run_script(
        "train_performance_1p.sh", f"--data_path={data_path}", "--dry_run=True", "--train_steps=4",
        *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "note: train.iterations_per_loop=4: the config's 500 does not divide --train_steps=4"
        in result.stderr
    )
    ((_, flags),) = parse_dry_run(result.stdout)
    assert override_pairs(flags)["train.iterations_per_loop"] == "4"
    ((_, flags),) = _dry_run("train_performance_1p.sh", data_path, "--train_steps=750", *args)
    assert override_pairs(flags)["train.iterations_per_loop"] == "375"
    ((_, flags),) = _dry_run("train_performance_1p.sh", data_path, "--train_steps=1500", *args)
    assert "train.iterations_per_loop" not in override_pairs(flags)


def test_cpu_kernels_reach_main_only_when_given(data_path):
    args = ("--device=cpu", f"--config_file={TINY_CONFIG}")
    ((_, flags),) = _dry_run("train_full_8p.sh", data_path, *args)
    assert "cpu_kernels" not in flags
    ((_, flags),) = _dry_run("train_full_8p.sh", data_path, *args, "--cpu_kernels=off")
    assert (flags["cpu_kernels"], flags["num_devices"]) == ("off", "8")
    bad = run_script("train_full_1p.sh", f"--data_path={data_path}", "--cpu_kernels=fast")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --cpu_kernels=fast: use auto, on or off"


def test_the_model_comes_from_the_config_not_its_name(data_path, tmp_path):
    """A RetinaNet config named faster_*, a box-only Mask R-CNN config named mine.yaml."""
    named_faster = tmp_path / "faster_rcnn_mine.yaml"
    named_faster.write_text(open(TINY_CONFIG).read())
    ((_, flags),) = _dry_run(
        "train_full_1p.sh", data_path, "--device=cpu", f"--config_file={named_faster}"
    )
    assert flags["model"] == "retinanet"
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "type: 'mask_rcnn'\narchitecture:\n  include_mask: false\neval:\n  type: 'box'\n"
    )
    ((_, flags),) = _dry_run("train_full_1p.sh", data_path, "--device=cpu", f"--config_file={mine}")
    assert flags["model"] == "faster_rcnn"
    broken = tmp_path / "broken.yaml"
    broken.write_text("type: 'yolo'\n")
    result = run_script(
        "train_full_1p.sh", f"--data_path={data_path}", "--device=cpu", f"--config_file={broken}"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: type 'yolo' is not a model type (file {broken}); use retinanet or mask_rcnn "
        "(Faster R-CNN: mask_rcnn with architecture.include_mask false)"
    )
