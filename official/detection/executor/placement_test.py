"""placement.py: device flags, device resolution, launch environments, batch split."""

import json
import re

import pytest

from official.detection.executor import placement as pl
from official.detection.executor.placement import DeviceError


@pytest.fixture
def no_npu(monkeypatch):
    monkeypatch.setattr(pl, "npu_bridge_available", lambda: False)


@pytest.fixture
def with_npu(monkeypatch):
    monkeypatch.setattr(pl, "npu_bridge_available", lambda: True)


def _tf_config(cluster, task_type, index):
    return {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(device="tpu"), "--device='tpu' is not a device; valid: auto, cpu, gpu, npu"),
        (dict(device="gpu", precision="bf16"), "--precision='bf16' is not a precision; valid"),
        (
            dict(device="npu", precision_mode="fp16"),
            "--precision_mode='fp16' is not an Ascend precision mode; valid: allow_mix_precision",
        ),
        (
            dict(device="gpu", precision_mode="allow_mix_precision"),
            "is an Ascend NPU setting, not for --device=gpu; on GPUs and CPUs choose --precision",
        ),
        (dict(device="cpu", precision="mixed"), "--precision=mixed needs a GPU or an Ascend NPU"),
        (dict(device="cpu", num_devices=-1), "--num_devices must be an int >= 0, got -1"),
        (dict(device="npu", num_devices=8), "each process drives one NPU; start one process"),
        (
            dict(device="cpu", cpu_kernels="fast"),
            "--cpu_kernels='fast' is not a kernel choice; valid: auto, on, off (auto: on for CPU",
        ),
    ],
)
def test_bad_device_flags_name_the_flag(kwargs, message, with_npu):
    with pytest.raises(DeviceError, match=re.escape(message)):
        pl.check_device_flags(**kwargs)


def test_auto_leaves_the_device_rules_to_the_resolved_device():
    pl.check_device_flags("auto", precision="mixed", precision_mode="force_fp16", num_devices=8)
    with pytest.raises(DeviceError, match="--num_devices=8 with --device=npu"):
        pl.check_flags_for_device("npu", None, None, 8)
    pl.check_flags_for_device("gpu", "mixed", None, 8)


def test_npu_without_npu_bridge_names_the_package(no_npu):
    with pytest.raises(DeviceError, match="'npu_bridge' is not importable.*--device=gpu"):
        pl.check_device_flags("npu")
    with pytest.raises(DeviceError, match="npu_bridge"):
        pl.resolve_device("npu", npu_available=False, num_gpus=4)


@pytest.mark.parametrize(
    "choice, device, expected, warned",
    [
        ("auto", "cpu", True, False),
        ("on", "cpu", True, False),
        ("off", "cpu", False, False),
        ("auto", "gpu", False, False),
        ("off", "npu", False, False),
        ("on", "gpu", False, True),
        ("on", "npu", False, True),
    ],
)
def test_cpu_kernels_are_resolved_with_the_device(choice, device, expected, warned, with_npu):
    enabled, warning = pl.resolve_cpu_kernels(choice, device)
    assert enabled is expected
    if warned:
        assert warning == (
            f"--cpu_kernels=on is for CPU runs; this {device} run keeps TensorFlow's kernels, "
            "which are the fast ones there"
        )
    else:
        assert warning is None
    placement = pl.plan_placement(device, num_gpus=1, cpu_kernels=choice)
    assert placement.cpu_kernels is expected


# (--grappler, device, --precision) -> whether sessions run Grappler.
GRAPPLER_CASES = {
    ("auto", "cpu", None): False,
    ("on", "cpu", None): True,
    ("off", "cpu", None): False,
    ("auto", "gpu", None): True,
    ("off", "gpu", "fp32"): False,
    ("auto", "gpu", "mixed"): True,
    ("auto", "npu", None): True,
    ("off", "npu", None): True,
}


@pytest.mark.parametrize("case", sorted(GRAPPLER_CASES, key=str))
def test_grappler_is_resolved_with_the_device(case, with_npu):
    choice, device, precision = case
    expected = GRAPPLER_CASES[case]
    placement = pl.plan_placement(device, num_gpus=1, precision=precision, grappler=choice)
    assert placement.grappler is expected
    _, warning = pl.resolve_grappler(choice, device, placement.precision)
    if device == "npu" and choice == "off":
        assert warning == (
            "--grappler=off does not apply on the NPU; npu_bridge sets the optimiser"
        )
    else:
        assert warning is None


def test_grappler_off_cannot_drop_the_gpu_mixed_precision_rewrite():
    with pytest.raises(DeviceError) as error:
        pl.plan_placement("gpu", num_gpus=1, precision="mixed", grappler="off")
    assert str(error.value) == (
        "--grappler=off with --precision=mixed on GPUs: the mixed precision rewrite is a "
        "Grappler pass; use --grappler=auto or on, or --precision=fp32"
    )
    with pytest.raises(DeviceError, match="--grappler='fast' is not a choice; valid: auto, on"):
        pl.check_device_flags("cpu", grappler="fast")


def test_npu_bridge_is_not_importable_in_the_test_environment():
    assert pl.npu_bridge_available() is False


@pytest.mark.parametrize(
    "requested, npu, gpus, expected",
    [
        ("auto", True, 8, "npu"),
        ("auto", False, 2, "gpu"),
        ("auto", False, 0, "cpu"),
        ("cpu", True, 8, "cpu"),
        ("gpu", True, 1, "gpu"),
        ("npu", True, 0, "npu"),
    ],
)
def test_resolve_device(requested, npu, gpus, expected):
    assert pl.resolve_device(requested, npu_available=npu, num_gpus=gpus) == expected


def test_gpu_without_a_gpu_is_an_error():
    with pytest.raises(DeviceError, match="--device=gpu but TensorFlow sees no GPU"):
        pl.resolve_device("gpu", npu_available=False, num_gpus=0)


def test_tf_config_workers_and_chief():
    assert pl.read_tf_config({}) is None
    single = _tf_config({"worker": ["a:1"]}, "worker", 0)
    assert pl.read_tf_config(single) is None
    worker = pl.read_tf_config(_tf_config({"worker": ["a:1", "b:1", "c:1"]}, "worker", 2))
    assert (worker.num_workers, worker.worker_index, worker.is_chief) == (3, 2, False)
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    assert pl.read_tf_config(_tf_config(cluster, "chief", 0)).is_chief
    second = pl.read_tf_config(_tf_config(cluster, "worker", 1))
    assert (second.num_workers, second.worker_index, second.is_chief) == (3, 2, False)


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"TF_CONFIG": "{cluster"}, "TF_CONFIG is not valid JSON"),
        (
            _tf_config({"worker": ["a:1", "b:1"], "ps": ["c:1"]}, "worker", 0),
            r"TF_CONFIG cluster has \['ps'\] tasks; only 'chief' and 'worker'",
        ),
        (
            _tf_config({"worker": ["a:1", "b:1"]}, "evaluator", 0),
            "TF_CONFIG task type 'evaluator' is not supported",
        ),
        (
            _tf_config({"worker": ["a:1", "b:1"]}, "worker", 2),
            "TF_CONFIG task index 2 is outside the 2 'worker' addresses",
        ),
    ],
)
def test_bad_tf_config(environ, message):
    with pytest.raises(DeviceError, match=message):
        pl.read_tf_config(environ)


def test_rank_env():
    assert pl.read_rank_env({}) == (1, 0)
    assert pl.read_rank_env({"RANK_SIZE": "8", "RANK_ID": "7"}) == (8, 7)
    with pytest.raises(DeviceError, match="RANK_SIZE='eight' is not an integer"):
        pl.read_rank_env({"RANK_SIZE": "eight"})
    with pytest.raises(DeviceError, match="RANK_SIZE=8, RANK_ID=8: need RANK_SIZE >= 1"):
        pl.read_rank_env({"RANK_SIZE": "8", "RANK_ID": "8"})


def test_npu_placement_from_rank_env(with_npu):
    environ = {"RANK_SIZE": "8", "RANK_ID": "3"}
    placement = pl.plan_placement("npu", environ=environ)
    assert (placement.precision, placement.precision_mode) == ("mixed", "allow_mix_precision")
    assert (placement.num_workers, placement.worker_index, placement.num_replicas) == (8, 3, 8)
    assert not placement.is_chief and placement.uses_fp16
    fp32 = pl.plan_placement("npu", precision="fp32", environ={})
    assert (fp32.precision_mode, fp32.is_chief, fp32.uses_fp16) == (
        "allow_fp32_to_fp16",
        True,
        True,
    )
    keep = pl.plan_placement("npu", precision_mode="must_keep_origin_dtype")
    assert (keep.precision, keep.uses_fp16) == ("fp32", False)
    with pytest.raises(
        DeviceError, match="--precision=fp32 contradicts --precision_mode=force_fp16"
    ):
        pl.plan_placement("npu", precision="fp32", precision_mode="force_fp16")
    cluster = _tf_config({"worker": ["a:1", "b:1"]}, "worker", 0)
    with pytest.raises(DeviceError, match="TF_CONFIG describes a cluster but --device=npu"):
        pl.plan_placement("npu", environ=cluster)


def test_gpu_and_cpu_placements():
    gpus = pl.plan_placement("gpu", num_gpus=4)
    assert (gpus.local_devices, gpus.num_replicas, gpus.precision, gpus.uses_fp16) == (
        4,
        4,
        "fp32",
        False,
    )
    assert pl.plan_placement("gpu", precision="mixed", num_devices=2, num_gpus=4).uses_fp16
    with pytest.raises(DeviceError, match="--num_devices=8 but TensorFlow sees 4 GPU"):
        pl.plan_placement("gpu", num_devices=8, num_gpus=4)
    cpus = pl.plan_placement("cpu", num_devices=8)
    assert (cpus.local_devices, cpus.precision, cpus.multi_worker) == (8, "fp32", False)
    assert pl.plan_placement("cpu").local_devices == 1


def test_multi_worker_placements():
    environ = _tf_config({"worker": ["a:1", "b:1"]}, "worker", 1)
    cpu = pl.plan_placement("cpu", environ=environ)
    assert (cpu.multi_worker, cpu.num_workers, cpu.worker_index, cpu.num_replicas) == (
        True,
        2,
        1,
        2,
    )
    assert not cpu.is_chief
    gpu = pl.plan_placement("gpu", num_gpus=8, environ=environ)
    assert gpu.num_replicas == 16
    with pytest.raises(
        DeviceError, match="virtual CPU devices cannot be combined with a TF_CONFIG"
    ):
        pl.plan_placement("cpu", num_devices=2, environ=environ)
    with pytest.raises(DeviceError, match="each worker trains on all 8 GPUs it sees"):
        pl.plan_placement("gpu", num_devices=2, num_gpus=8, environ=environ)


def test_replica_batch_size():
    assert pl.replica_batch_size(16, 8) == 2
    assert pl.replica_batch_size(4, 1) == 4
    with pytest.raises(
        DeviceError,
        match="train.train_batch_size=10 is the global batch over all 8 devices and must be "
        "a multiple of 8; use e.g. 8 or 16",
    ):
        pl.replica_batch_size(10, 8)
