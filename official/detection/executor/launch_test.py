"""The launch module: network lookup, model from the config's content, device detection,
ranks, the main.py command and the summary file."""

import json
import os
import sys

import pytest

from official.detection.configs import factory as config_factory
from official.detection.configs.errors import ConfigError
from official.detection.executor import launch, train_summary
from official.detection.testing.launch_scripts import TINY_CONFIG, write_rank_table

CONFIG_ROOT = launch.CONFIG_ROOT


def _args(argv):
    return launch.build_parser().parse_args(["plan", *argv])


def _plan_args(tmp_path, *extra, layout="1p", kind="full"):
    return _args(
        [
            f"--kind={kind}",
            f"--layout={layout}",
            f"--data_path={tmp_path}",
            f"--output_dir={tmp_path / 'output'}",
            *extra,
        ]
    )


def _run_main(argv, capsys, environ=None):
    status = launch.main(argv, environ=environ or {})
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def _write_yaml(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "network, relative",
    [
        ("faster_rcnn", "maskrcnn/faster_rcnn_r101_fpn_coco.yaml"),
        ("MASK_RCNN", "maskrcnn/mask_rcnn_r101_fpn_coco.yaml"),
        ("retinanet", "retinanet/retinanet_r50_fpn_coco.yaml"),
        ("SpineNet49S_RetinaNet", "spinenet/spinenet49S_retinanet.yaml"),
        ("spinenet49s_mrcnn", "spinenet/spinenet49s_mrcnn.yaml"),
    ],
)
def test_network_names_are_case_insensitive_with_aliases(network, relative):
    assert launch.find_network_config(network) == os.path.join(CONFIG_ROOT, relative)


def test_an_unknown_network_lists_every_name():
    with pytest.raises(launch.LaunchError) as error:
        launch.find_network_config("yolo")
    message = str(error.value)
    assert message.startswith("--network=yolo is not a shipped config; valid (case-insensitive): ")
    names = message.split(": ", 1)[1].split()
    assert names[:3] == ["faster_rcnn", "mask_rcnn", "retinanet"]
    assert len(names) == 3 + len(launch.shipped_configs()) == 17
    assert "spinenet49S_retinanet" in names


def test_every_shipped_config_gives_the_model_of_its_content():
    models = {
        name: launch.load_network_config(path)[0] for name, path in launch.shipped_configs().items()
    }
    assert models.pop("faster_rcnn_r101_fpn_coco") == "faster_rcnn"
    mask = {"mask_rcnn_r101_fpn_coco", "mask_rcnn_r50_fpn_coco", "mask_rcnn_shapes"}
    mask |= {"spinenet49_mrcnn", "spinenet49s_mrcnn"}
    assert {name for name, model in models.items() if model == "mask_rcnn"} == mask
    assert {model for name, model in models.items() if name not in mask} == {"retinanet"}


def test_the_model_comes_from_the_content_not_the_file_name(tmp_path):
    """A RetinaNet file named faster_*, a Faster R-CNN file with no 'faster' in its name."""
    retinanet = _write_yaml(tmp_path / "faster_rcnn_mine.yaml", "type: 'retinanet'\n")
    assert launch.load_network_config(retinanet)[0] == "retinanet"
    boxes_only = _write_yaml(
        tmp_path / "mine.yaml",
        "type: 'mask_rcnn'\narchitecture:\n  include_mask: false\neval:\n  type: 'box'\n",
    )
    model, params = launch.load_network_config(boxes_only)
    assert model == "faster_rcnn" and params.architecture.include_mask is False
    untyped = _write_yaml(tmp_path / "untyped.yaml", "train:\n  iterations_per_loop: 7\n")
    model, params = launch.load_network_config(untyped)
    assert (model, params.train.iterations_per_loop) == ("retinanet", 7)


def test_a_config_of_no_model_is_an_error(tmp_path):
    yolo = _write_yaml(tmp_path / "yolo.yaml", "type: 'yolo'\n")
    with pytest.raises(launch.LaunchError) as error:
        launch.load_network_config(yolo)
    assert str(error.value) == (
        f"type 'yolo' is not a model type (file {yolo}); use retinanet or mask_rcnn "
        "(Faster R-CNN: mask_rcnn with architecture.include_mask false)"
    )
    assert set(launch.CONFIG_TYPES) < set(config_factory.MODELS)
    unknown_key = _write_yaml(tmp_path / "typo.yaml", "type: 'retinanet'\ntrian: {}\n")
    with pytest.raises(ConfigError, match="trian"):
        launch.load_network_config(unknown_key)


@pytest.mark.parametrize(
    "train_steps, configured, expected",
    [(4, 500, 4), (750, 500, 375), (1500, 500, 500), (7, 5, 1), (12, 5, 4), (100, 100, 100)],
)
def test_fitting_loop_steps_is_the_largest_divisor_not_above_the_config(
    train_steps, configured, expected
):
    assert launch.fitting_loop_steps(train_steps, configured) == expected


@pytest.mark.parametrize(
    "device, mode, flag",
    [
        ("gpu", "allow_mix_precision", "--precision=mixed"),
        ("gpu", "force_fp16", "--precision=mixed"),
        ("gpu", "allow_fp32_to_fp16", "--precision=fp32"),
        ("gpu", "must_keep_origin_dtype", "--precision=fp32"),
        ("cpu", "allow_mix_precision", "--precision=fp32"),
    ],
)
def test_precision_flag_off_ascend(device, mode, flag):
    assert launch.precision_flag(device, mode) == flag


@pytest.mark.parametrize(
    "npu, gpus, expected", [(True, 2, "npu"), (False, 2, "gpu"), (False, 0, "cpu")]
)
def test_auto_detection_is_main_py_s(monkeypatch, npu, gpus, expected):
    monkeypatch.setattr(launch.placement, "npu_bridge_available", lambda: npu)
    monkeypatch.setattr(launch, "count_gpus", lambda: gpus)
    assert launch.detect_device("auto") == expected
    # An explicit device is main.py's to check.
    assert launch.detect_device("gpu") == "gpu"


def test_npu_ranks_of_one_and_of_several_servers(tmp_path):
    one = write_rank_table(tmp_path / "one.json", servers=1, devices=2)
    args = _plan_args(tmp_path, f"--rank_table_file={one}", "--num_devices=2", layout="8p")
    assert launch.plan_ranks(args, "npu", {}) == (2, 1, [(0, 0), (1, 1)], one)
    two = write_rank_table(tmp_path / "two.json", servers=2, devices=2)
    by_ip = _plan_args(
        tmp_path, f"--rank_table_file={two}", "--host_ips=127.0.0.1 10.0.0.2", layout="multinodes"
    )
    assert launch.plan_ranks(by_ip, "npu", {}) == (4, 1, [(2, 0), (3, 1)], two)
    by_index = _plan_args(
        tmp_path, f"--rank_table_file={two}", "--server_index=0", layout="multinodes"
    )
    assert launch.plan_ranks(by_index, "npu", {})[2] == [(0, 0), (1, 1)]


@pytest.mark.parametrize(
    "extra, layout, message",
    [
        (["--num_devices=8"], "8p", "one.json lists 2 devices but --num_devices=8; give a table"),
        (["--host_ips=127.0.0.1"], "multinodes", "no server_id of {table} is an address of"),
        (["--server_index=x"], "multinodes", "--server_index=x is not an integer"),
        (["--rank_table_file=/no/table.json"], "8p", "--rank_table_file=/no/table.json does not"),
    ],
)
def test_npu_rank_errors(tmp_path, extra, layout, message):
    table = write_rank_table(tmp_path / "one.json", servers=1, devices=2)
    args = _plan_args(tmp_path, f"--rank_table_file={table}", *extra, layout=layout)
    with pytest.raises(launch.LaunchError) as error:
        launch.plan_ranks(args, "npu", {})
    assert message.format(table=table) in str(error.value)


def test_gpu_and_cpu_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "count_gpus", lambda: 4)
    eight = _plan_args(tmp_path, "--num_devices=3", layout="8p")
    assert launch.plan_ranks(eight, "gpu", {"ASCEND_DEVICE_ID": "5"}) == (3, 3, [(0, "5")], "")
    one = _plan_args(tmp_path, layout="1p")
    assert launch.plan_ranks(one, "npu", {"ASCEND_DEVICE_ID": "6"}) == (1, 1, [(0, "6")], "")
    cluster = {"worker": ["a:1", "b:1", "c:1"]}
    environ = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker"}})}
    nodes = _plan_args(tmp_path, layout="multinodes")
    assert launch.plan_ranks(nodes, "cpu", environ)[:2] == (3, 1)
    assert launch.plan_ranks(nodes, "gpu", environ)[:2] == (12, 4)
    with pytest.raises(launch.LaunchError, match="multinodes on GPUs/CPUs needs TF_CONFIG"):
        launch.plan_ranks(nodes, "cpu", {})
    with pytest.raises(launch.LaunchError, match="TF_CONFIG is not valid JSON: {cluster$"):
        launch.plan_ranks(nodes, "cpu", {"TF_CONFIG": "{cluster"})


def _plan_lines(tmp_path, capsys, *extra, kind="full", layout="1p", environ=None):
    status, lines, err = _run_main(
        [
            "plan",
            f"--kind={kind}",
            f"--layout={layout}",
            f"--data_path={tmp_path}",
            f"--output_dir={tmp_path / 'output'}",
            *extra,
        ],
        capsys,
        environ,
    )
    return status, lines, err


def test_plan_prints_the_run_and_the_main_py_command(tmp_path, capsys):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text("{}")
    status, lines, err = _plan_lines(
        tmp_path,
        capsys,
        "--device=cpu",
        f"--config_file={TINY_CONFIG}",
        "--batch_size=3",
        "--train_steps=7",
        "--ckpt_path=/ckpt/model.ckpt",
    )
    assert status == 0, err
    assert lines[0].startswith("tensorflow=")
    expected = [
        "device=cpu",
        "network=retinanet_tiny",
        "first_device=0",
        "rank_size=1",
        "rank_table=",
        f"model_dir={tmp_path}/output/0/model",
        "fresh_model_dir=1",
    ]
    assert lines[1:8] == expected
    overrides = [
        f"train.train_file_pattern={tmp_path}/train-*",
        f"eval.eval_file_pattern={tmp_path}/val-*",
        "train.train_batch_size=3",
        "train.total_steps=7",
        "train.checkpoint.path=/ckpt/model.ckpt",
        f"eval.val_json_file={tmp_path}/annotations/instances_val2017.json",
    ]
    assert lines[8:] == [
        "arg=official/detection/main.py",
        "arg=--model=retinanet",
        "arg=--mode=train",
        f"arg=--model_dir={tmp_path}/output/0/model",
        f"arg=--config_file={TINY_CONFIG}",
        "arg=--params_override=" + ",".join(overrides),
        "arg=--device=cpu",
        "arg=--precision=fp32",
        "arg=--num_devices=1",
        "arg=--eval_after_training=True",
    ]
    assert "this cpu run uses --precision=fp32" in err


def test_cpu_kernels_reach_main_py_only_when_given(tmp_path, capsys):
    base = ("--device=cpu", f"--config_file={TINY_CONFIG}")
    _, without, _ = _plan_lines(tmp_path, capsys, *base)
    assert not [line for line in without if "--cpu_kernels" in line]
    for mode in launch.CPU_KERNELS:
        _, lines, _ = _plan_lines(tmp_path, capsys, *base, f"--cpu_kernels={mode}")
        assert lines[-1] == f"arg=--cpu_kernels={mode}"
        assert lines[:-1] == without


def test_npu_plan_lists_ranks_and_a_performance_run_fits_its_loop(tmp_path, capsys):
    table = write_rank_table(tmp_path / "table.json", servers=1, devices=2)
    status, lines, err = _plan_lines(
        tmp_path,
        capsys,
        "--device=npu",
        "--network=retinanet_shapes",
        "--num_devices=2",
        f"--rank_table_file={table}",
        "--precision_mode=force_fp16",
        "--model_dir=/runs/one",
        kind="performance",
        layout="8p",
    )
    assert status == 0, err
    assert "rank=0 0" in lines and "rank=1 1" in lines
    assert f"rank_table={table}" in lines and "fresh_model_dir=0" in lines
    (override,) = [line for line in lines if "--params_override=" in line]
    # 1000 steps by default; retinanet_shapes.yaml's 500 steps per loop divide them.
    assert "train.total_steps=1000" in override and "iterations_per_loop" not in override
    assert "train.train_batch_size=4" in override
    assert lines[-2:] == ["arg=--device=npu", "arg=--precision_mode=force_fp16"]
    assert "note:" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--network=yolo"], "error: --network=yolo is not a shipped config"),
        (["--config_file=/no/such.yaml"], "error: --config_file=/no/such.yaml does not exist"),
        (["--precision_mode=fp8"], "error: --precision_mode=fp8 is not an Ascend precision"),
    ],
)
def test_plan_errors_are_one_line(tmp_path, capsys, extra, message):
    status, lines, err = _plan_lines(tmp_path, capsys, "--device=cpu", *extra)
    assert status == 1
    assert [line for line in lines if not line.startswith("tensorflow=")] == []
    assert err.strip().startswith(message) and len(err.strip().splitlines()) == 1


def test_a_python_without_tensorflow_prints_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    status, lines, err = _plan_lines(tmp_path, capsys, "--device=cpu")
    assert (status, lines, err) == (1, [], "")


def _write_rank(model_dir, rank, steps_per_second, loss):
    summary = {
        "rank": rank,
        "rank_size": 2,
        "num_replicas": 2,
        "device": "npu",
        "precision": "mixed",
        "precision_mode": "allow_mix_precision",
        "global_batch_size": 4,
        "replica_batch_size": 2,
        "last_step": 10,
        "measured_steps": 8,
        "steps_per_second": steps_per_second,
        "final_loss": loss,
        "train_seconds": 12.0,
    }
    train_summary.write_json(train_summary.rank_summary_path(model_dir, rank), summary)


def _summary_argv(tmp_path, kind):
    return [
        "summary",
        f"--kind={kind}",
        f"--model_dir={tmp_path / 'model'}",
        f"--output_dir={tmp_path / 'out'}",
        "--network=retinanet_tiny",
        "--batch_size=2",
        "--device=npu",
        "--rank_size=2",
        "--start_time=1000",
    ]


def test_summary_file_of_two_ranks(tmp_path, capsys, monkeypatch):
    model_dir = tmp_path / "model"
    _write_rank(str(model_dir), 0, 2.0, 1.5)
    _write_rank(str(model_dir), 1, 3.0, 0.5)
    os.makedirs(model_dir / "eval")
    (model_dir / "eval" / "metrics_10.json").write_text(json.dumps({"AP": 0.25}))
    monkeypatch.setattr(launch.time, "time", lambda: 1042.7)
    status, lines, err = _run_main(_summary_argv(tmp_path, "full"), capsys)
    assert status == 0, err
    path = tmp_path / "out" / "retinanet_tiny_bs2_2p_acc.log"
    # images/s = global batch 4 x mean steps/s 2.5; seconds per step = 1 / 2.5.
    assert lines == [
        "Final Performance images/sec : 10.0000",
        "E2E Training Duration sec : 42",
        f"summary: {path}",
    ]
    assert path.read_text().splitlines() == [
        "Network = retinanet_tiny",
        "RankSize = 2",
        "BatchSize = 2",
        "DeviceType = npu",
        "CaseName = retinanet_tiny_bs2_2p_acc",
        "ActualFPS = 10.0000",
        "TrainingTime = 0.4000",
        "ActualLoss = 1.000000",
        "TrainAccuracy = 0.2500",
        "E2ETrainingTime = 42",
    ]
    aggregate = json.loads((model_dir / train_summary.AGGREGATE_FILE).read_text())
    assert aggregate["images_per_second"] == pytest.approx(10.0)


def test_summary_without_training_warns_and_writes_none(tmp_path, capsys):
    status, lines, err = _run_main(_summary_argv(tmp_path, "performance"), capsys)
    assert status == 0
    assert err.startswith("warning: no training summary in ")
    assert lines[0] == "Final Performance images/sec : None"
    text = (tmp_path / "out" / "retinanet_tiny_bs2_2p_perf.log").read_text()
    assert "ActualFPS = None\n" in text and "RankSize = 2\n" in text
    assert "TrainAccuracy" not in text


def test_a_config_error_is_one_line_naming_the_key_and_file(tmp_path, capsys):
    typo = _write_yaml(tmp_path / "typo.yaml", "type: 'retinanet'\ntrian: {}\n")
    status, _, err = _plan_lines(tmp_path, capsys, "--device=cpu", f"--config_file={typo}")
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: unknown key 'trian' (from file {typo}); did you mean 'train'?")
