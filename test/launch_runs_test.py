"""Real runs of the launch scripts on shapes TFRecords with
official/detection/testing/retinanet_tiny.yaml (3 steps). They start together; the
tests below check what each wrote:
- train_full_1p.sh on the CPU (COCO AP as TrainAccuracy);
- train_performance_1p.sh and train_performance_8p.sh (2 ranks) on the fake npu_bridge,
  which records what the NPU path builds and the launch environment of each rank;
- train_full_8p.sh over 2 virtual CPU devices (one process, MirroredStrategy), then
  train_performance_multinodes.sh as 2 TF_CONFIG workers on 127.0.0.1 starting from the
  same initial checkpoint: their per-step losses must match the one-process run, which
  has the same global batch and reads the same images per replica.
"""

import json
import math
import os
import shutil

import pytest
import yaml

from official.detection.testing import shapes_records
from official.detection.testing.launch_scripts import (
    FAKE_BRIDGE,
    TINY_CONFIG,
    finish,
    free_ports,
    read_summary_file,
    script_env,
    start_script,
    write_rank_table,
)

SUMMARY_KEYS = (
    "Network",
    "RankSize",
    "BatchSize",
    "DeviceType",
    "CaseName",
    "ActualFPS",
    "TrainingTime",
    "ActualLoss",
)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes"))
    records = shapes_records.write_shapes_records(root, num_train=8, num_val=4, image_size=64)
    data = os.path.dirname(records["train_file_pattern"])
    os.symlink(os.path.dirname(records["val_json_file"]), os.path.join(data, "annotations"))
    return data


@pytest.fixture(scope="module")
def runs(data_path, tmp_path_factory):
    """Starts the real runs together; returns {name: (CompletedProcess, output_dir, ...)}."""
    root = tmp_path_factory.mktemp("runs")
    common = [f"--data_path={data_path}", f"--config_file={TINY_CONFIG}", "--train_steps=3"]
    fake_env = script_env(PYTHONPATH=FAKE_BRIDGE, FAKE_NPU_BRIDGE_RECORD=str(root / "calls.jsonl"))
    table = write_rank_table(root / "table.json", servers=1, devices=2)
    started = {
        "full_1p": start_script(
            "train_full_1p.sh", *common, f"--output_dir={root / 'full_1p'}", env=script_env()
        ),
        "performance_1p": start_script(
            "train_performance_1p.sh",
            *common,
            "--precision_mode=allow_fp32_to_fp16",
            f"--output_dir={root / 'performance_1p'}",
            env=fake_env,
        ),
        "performance_8p": start_script(
            "train_performance_8p.sh",
            *common,
            "--num_devices=2",
            f"--rank_table_file={table}",
            f"--output_dir={root / 'performance_8p'}",
            env=fake_env,
        ),
        "full_8p": start_script(
            "train_full_8p.sh",
            *common,
            "--num_devices=2",
            "--batch_size=1",
            "--device=cpu",
            f"--model_dir={root / 'one_process'}",
            f"--output_dir={root / 'full_8p'}",
            env=script_env(),
        ),
    }
    results = {"root": root}
    results["full_8p"] = finish(started.pop("full_8p"))
    # The workers start from the one-process run's initial checkpoint, so both runs train
    # the same weights on the same images.
    workers_dir = root / "workers"
    os.makedirs(workers_dir)
    for name in os.listdir(root / "one_process"):
        if name.startswith("model.ckpt-0."):
            shutil.copy(root / "one_process" / name, workers_dir / name)
    (workers_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-0"\n')
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    for index in (0, 1):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        started[f"worker_{index}"] = start_script(
            "train_performance_multinodes.sh",
            *common,
            "--batch_size=1",
            "--device=cpu",
            f"--model_dir={workers_dir}",
            f"--output_dir={root / f'worker_{index}'}",
            env=script_env(TF_CONFIG=tf_config),
        )
    for name, process in started.items():
        results[name] = finish(process)
    return results


def _check_summary(result, output_dir, case_name, *, device, rank_size, batch_size, full):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    path = os.path.join(output_dir, "0", f"{case_name}.log")
    summary = read_summary_file(path)
    expected = list(SUMMARY_KEYS) + (["TrainAccuracy"] if full else []) + ["E2ETrainingTime"]
    assert list(summary) == expected
    assert summary["Network"] == "retinanet_tiny" and summary["CaseName"] == case_name
    assert (summary["DeviceType"], summary["RankSize"], summary["BatchSize"]) == (
        device,
        str(rank_size),
        str(batch_size),
    )
    fps, step_seconds = float(summary["ActualFPS"]), float(summary["TrainingTime"])
    assert fps > 0 and step_seconds > 0
    # Images per second = global batch / seconds per step.
    assert fps == pytest.approx(batch_size * rank_size / step_seconds, rel=1e-3)
    assert 0 < float(summary["ActualLoss"]) < 100
    assert 0 < int(summary["E2ETrainingTime"]) < 900
    if full:
        assert 0.0 <= float(summary["TrainAccuracy"]) <= 1.0
    assert f"Final Performance images/sec : {summary['ActualFPS']}" in result.stdout
    assert f"E2E Training Duration sec : {summary['E2ETrainingTime']}" in result.stdout
    assert os.path.getsize(os.path.join(output_dir, "0", "train_0.log")) > 0
    return summary


def _calls(runs):
    with open(runs["root"] / "calls.jsonl") as stream:
        return [json.loads(line) for line in stream]


def test_full_1p_on_the_cpu(runs):
    output_dir = runs["root"] / "full_1p"
    _check_summary(
        runs["full_1p"],
        output_dir,
        "retinanet_tiny_bs2_1p_acc",
        device="cpu",
        rank_size=1,
        batch_size=2,
        full=True,
    )
    params = yaml.safe_load(open(output_dir / "0" / "model" / "params.yaml"))
    assert (params["train"]["total_steps"], params["train"]["train_batch_size"]) == (3, 2)
    assert os.path.exists(output_dir / "0" / "model" / "eval" / "metrics_3.json")


def test_performance_1p_on_the_npu(runs):
    _check_summary(
        runs["performance_1p"],
        runs["root"] / "performance_1p",
        "retinanet_tiny_bs2_1p_perf",
        device="npu",
        rank_size=1,
        batch_size=2,
        full=False,
    )
    model_dir = str(runs["root"] / "performance_1p" / "0" / "model")
    configs = [
        c
        for c in _calls(runs)
        if c["name"] == "NPURunConfig" and c["kwargs"]["model_dir"] == model_dir
    ]
    (config,) = configs
    assert config["kwargs"]["precision_mode"] == "allow_fp32_to_fp16"
    assert config["env"]["RANK_SIZE"] == "1" and config["env"]["ASCEND_DEVICE_ID"] == "0"


def test_performance_8p_on_npu_ranks(runs):
    output_dir = runs["root"] / "performance_8p"
    _check_summary(
        runs["performance_8p"],
        output_dir,
        "retinanet_tiny_bs2_2p_perf",
        device="npu",
        rank_size=2,
        batch_size=2,
        full=False,
    )
    model_dir = str(output_dir / "0" / "model")
    configs = [
        c
        for c in _calls(runs)
        if c["name"] == "NPURunConfig" and c["kwargs"]["model_dir"].startswith(model_dir)
    ]
    by_rank = {c["env"]["RANK_ID"]: c for c in configs}
    assert sorted(by_rank) == ["0", "1"]
    assert by_rank["1"]["kwargs"]["model_dir"] == os.path.join(model_dir, "rank_1")
    for rank, call in by_rank.items():
        assert call["env"]["DEVICE_ID"] == call["env"]["ASCEND_DEVICE_ID"] == rank
        assert call["env"]["RANK_SIZE"] == "2" and call["env"]["RANK_TABLE_FILE"].endswith(
            "table.json"
        )
        assert call["kwargs"]["precision_mode"] == "allow_mix_precision"
        log = (output_dir / rank / f"train_{rank}.log").read_text()
        # Each rank reads its own half of the training records.
        assert f"Training input: worker {rank} of 2 reads " in log
    pids = {c["pid"] for c in configs}
    distributed = [
        c for c in _calls(runs) if c["name"] == "NPUDistributedOptimizer" and c["pid"] in pids
    ]
    assert len(distributed) == 2
    aggregate = json.load(open(output_dir / "0" / "model" / "train_summary.json"))
    ranks = [
        json.load(open(output_dir / "0" / "model" / "train_summary" / f"rank_{r}.json"))
        for r in (0, 1)
    ]
    mean_rate = (ranks[0]["steps_per_second"] + ranks[1]["steps_per_second"]) / 2
    assert aggregate["ranks_found"] == 2
    assert aggregate["images_per_second"] == pytest.approx(4 * mean_rate)
    assert not os.path.exists(output_dir / "0" / "model" / "rank_1" / "params.yaml")


def test_full_8p_on_virtual_cpu_devices(runs):
    _check_summary(
        runs["full_8p"],
        runs["root"] / "full_8p",
        "retinanet_tiny_bs1_2p_acc",
        device="cpu",
        rank_size=2,
        batch_size=1,
        full=True,
    )
    assert (
        "Running on device cpu x2, precision fp32, 2 replica(s) in all"
        in open(runs["root"] / "full_8p" / "0" / "train_0.log").read()
    )


def test_two_workers_match_one_process_with_the_same_global_batch(runs):
    for index in (0, 1):
        _check_summary(
            runs[f"worker_{index}"],
            runs["root"] / f"worker_{index}",
            "retinanet_tiny_bs1_2p_perf",
            device="cpu",
            rank_size=2,
            batch_size=1,
            full=False,
        )
    one = json.load(open(runs["root"] / "one_process" / "train_summary" / "rank_0.json"))
    for index in (0, 1):
        worker = json.load(open(runs["root"] / "workers" / "train_summary" / f"rank_{index}.json"))
        assert (worker["rank"], worker["rank_size"], worker["num_replicas"]) == (index, 2, 2)
        assert [s for s, _ in worker["losses"]] == [s for s, _ in one["losses"]] == [1, 2, 3]
        for (_, loss), (_, expected) in zip(worker["losses"], one["losses"]):
            assert math.isclose(loss, expected, rel_tol=1e-4), (worker["losses"], one["losses"])
    assert os.path.exists(runs["root"] / "workers" / "model.ckpt-3.index")
