"""Where a run executes: the device kind, its precision, and this process's place among
all the processes of a synchronous run.

Pure Python (no TensorFlow import), so `main.py` can check the device flags before
loading TensorFlow. Three launch layouts are understood:

- one process on one device, or on several local GPUs / virtual CPU devices
  (`MirroredStrategy`);
- Ascend: one process per NPU, told its place by `RANK_SIZE` and `RANK_ID` (the launch
  scripts also set `DEVICE_ID`, `ASCEND_DEVICE_ID`, `RANK_TABLE_FILE` and `JOB_ID`);
- several machines with GPUs or CPUs: one process per machine, told its place by
  `TF_CONFIG` (`MultiWorkerMirroredStrategy`).

`train.train_batch_size` is the global batch over all of them; each replica gets
`train_batch_size / num_replicas` images per step.
"""

import dataclasses
import importlib.util
import json
from typing import Optional

DEVICES = ("auto", "cpu", "gpu", "npu")
PRECISIONS = ("fp32", "mixed")
# Ascend precision modes (NPURunConfig precision_mode). The first three may compute in
# fp16 and so use loss scaling.
NPU_PRECISION_MODES = (
    "allow_mix_precision",
    "allow_fp32_to_fp16",
    "force_fp16",
    "must_keep_origin_dtype",
    "force_fp32",
)
NPU_FP16_PRECISION_MODES = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16")
# Modes that are --precision=mixed (allow_fp32_to_fp16 keeps fp32 wherever a kernel has it).
NPU_MIXED_PRECISION_MODES = ("allow_mix_precision", "force_fp16")
# --precision on the NPU when --precision_mode is not given.
NPU_PRECISION_MODE_FOR = {"mixed": "allow_mix_precision", "fp32": "allow_fp32_to_fp16"}
DEFAULT_PRECISION = {"npu": "mixed", "gpu": "fp32", "cpu": "fp32"}
# --cpu_kernels: the kernels of modeling/layers/cpu_kernels.py. auto and on use them
# on the CPU only: GPUs and NPUs have fast kernels of their own for these layers,
# and the written-out batch norm is not meant for their fp16.
CPU_KERNELS = ("auto", "on", "off")
# --grappler: TensorFlow's graph optimiser. auto turns it off for CPU runs: there the
# training step is as fast without it (measured within 3% for RetinaNet R50-FPN and
# SpineNet-49S, both lanes) and the first step and each evaluation start 7-20 s sooner
# (docs/BENCHMARKS.md). GPUs keep it (the mixed precision rewrite is one of its passes);
# NPU runs take the optimiser settings npu_bridge requires.
GRAPPLER = ("auto", "on", "off")

NPU_PACKAGE = "npu_bridge"
NPU_MISSING_HELP = (
    "the Ascend TensorFlow adapter 'npu_bridge' is not importable in this Python. Run on an "
    "Ascend image with TensorFlow 1.15 and the CANN TF plugin installed (pip package "
    "npu_bridge, from Ascend-cann-tfplugin) and source the CANN set_env.sh, or choose "
    "--device=gpu, --device=cpu or --device=auto"
)


class DeviceError(ValueError):
    """Device flags, launch environment or config that cannot run together."""


def npu_bridge_available():
    """True when the Ascend adapter package can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(NPU_PACKAGE) is not None
    except (ImportError, ValueError):
        return False


def check_device_flags(
    device, precision=None, precision_mode=None, num_devices=0, cpu_kernels="auto", grappler="auto"
):
    """Validates the device flags on their own; raises DeviceError naming the flag.

    main.py calls it once per run, before TensorFlow loads. With --device=auto the
    rules that depend on the device wait until it is resolved (check_flags_for_device).

    Args:
      device: --device, one of DEVICES.
      precision: --precision, one of PRECISIONS, or None for the device's default.
      precision_mode: --precision_mode (Ascend only), one of NPU_PRECISION_MODES, or None.
      num_devices: --num_devices, >= 0 (0: all visible GPUs, one CPU or one NPU).
      cpu_kernels: --cpu_kernels, one of CPU_KERNELS.
      grappler: --grappler, one of GRAPPLER.
    """
    if device not in DEVICES:
        raise DeviceError(f"--device={device!r} is not a device; valid: {', '.join(DEVICES)}")
    if cpu_kernels not in CPU_KERNELS:
        raise DeviceError(
            f"--cpu_kernels={cpu_kernels!r} is not a kernel choice; valid: "
            f"{', '.join(CPU_KERNELS)} (auto: on for CPU runs)"
        )
    if grappler not in GRAPPLER:
        raise DeviceError(
            f"--grappler={grappler!r} is not a choice; valid: {', '.join(GRAPPLER)} "
            "(auto: off for CPU runs)"
        )
    if precision is not None and precision not in PRECISIONS:
        raise DeviceError(
            f"--precision={precision!r} is not a precision; valid: {', '.join(PRECISIONS)}"
        )
    if precision_mode is not None and precision_mode not in NPU_PRECISION_MODES:
        raise DeviceError(
            f"--precision_mode={precision_mode!r} is not an Ascend precision mode; "
            f"valid: {', '.join(NPU_PRECISION_MODES)}"
        )
    if not isinstance(num_devices, int) or num_devices < 0:
        raise DeviceError(f"--num_devices must be an int >= 0, got {num_devices!r}")
    if device != "auto":
        check_flags_for_device(device, precision, precision_mode, num_devices)
    if device == "npu" and not npu_bridge_available():
        raise DeviceError(f"--device=npu: {NPU_MISSING_HELP}")


def check_flags_for_device(device, precision, precision_mode, num_devices):
    """The flag rules that depend on the device ('cpu', 'gpu' or 'npu'); DeviceError."""
    if precision_mode is not None and device in ("cpu", "gpu"):
        raise DeviceError(
            f"--precision_mode={precision_mode} is an Ascend NPU setting, not for "
            f"--device={device}; on GPUs and CPUs choose --precision=fp32 or --precision=mixed"
        )
    if device == "cpu" and precision == "mixed":
        raise DeviceError(
            "--precision=mixed needs a GPU or an Ascend NPU; CPUs train in fp32 "
            "(use --precision=fp32 or leave it unset)"
        )
    if device == "npu" and num_devices > 1:
        raise DeviceError(
            f"--num_devices={num_devices} with --device=npu: each process drives one NPU; "
            "start one process per device with RANK_SIZE/RANK_ID set "
            "(test/train_full_8p.sh does this)"
        )


def resolve_cpu_kernels(choice, device):
    """(use the CPU kernels, a warning for the log or None) for --cpu_kernels on `device`.

    `choice` is checked by check_device_flags. --cpu_kernels=on for a GPU or NPU run
    keeps TensorFlow's kernels and says so.
    """
    if choice == "off" or device == "cpu":
        return choice != "off", None
    if choice == "on":
        return False, (
            f"--cpu_kernels=on is for CPU runs; this {device} run keeps TensorFlow's "
            "kernels, which are the fast ones there"
        )
    return False, None


def resolve_grappler(choice, device, precision):
    """(run TensorFlow's graph optimiser, a warning for the log or None) for --grappler.

    NPU runs keep the settings npu_bridge needs; GPU runs in mixed precision need it
    (the rewrite to fp16 is one of its passes).
    """
    if device == "npu":
        warning = None
        if choice == "off":
            warning = "--grappler=off does not apply on the NPU; npu_bridge sets the optimiser"
        return True, warning
    if device == "gpu" and precision == "mixed" and choice == "off":
        raise DeviceError(
            "--grappler=off with --precision=mixed on GPUs: the mixed precision rewrite is a "
            "Grappler pass; use --grappler=auto or on, or --precision=fp32"
        )
    if choice == "auto":
        return device != "cpu", None
    return choice == "on", None


def resolve_device(requested, *, npu_available, num_gpus):
    """'auto' -> 'npu' when npu_bridge imports, else 'gpu' when one is visible, else 'cpu'.

    Explicit choices are checked: 'npu' needs npu_bridge, 'gpu' a visible GPU.
    """
    if requested == "auto":
        if npu_available:
            return "npu"
        return "gpu" if num_gpus > 0 else "cpu"
    if requested == "npu" and not npu_available:
        raise DeviceError(f"--device=npu: {NPU_MISSING_HELP}")
    if requested == "gpu" and num_gpus == 0:
        raise DeviceError(
            "--device=gpu but TensorFlow sees no GPU (check the CUDA installation, "
            "CUDA_VISIBLE_DEVICES and that tensorflow[and-cuda] is installed); "
            "or choose --device=cpu"
        )
    if requested not in DEVICES:
        raise DeviceError(f"--device={requested!r} is not a device; valid: {', '.join(DEVICES)}")
    return requested


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's task in a TF_CONFIG cluster of synchronous workers."""

    num_workers: int
    worker_index: int
    is_chief: bool
    task_type: str


def read_tf_config(environ):
    """The multi-worker cluster described by TF_CONFIG, or None for a one-process run.

    Workers are the `chief` task (if any) followed by the `worker` tasks; without a
    chief, worker 0 is the chief. `ps` and `evaluator` tasks are not supported.
    """
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeviceError(f"TF_CONFIG is not valid JSON ({exc}): {text[:200]!r}") from exc
    cluster = tf_config.get("cluster") or {}
    task = tf_config.get("task") or {}
    unsupported = sorted(set(cluster) - {"chief", "worker"})
    if unsupported:
        raise DeviceError(
            f"TF_CONFIG cluster has {unsupported} tasks; only 'chief' and 'worker' tasks "
            "(synchronous MultiWorkerMirroredStrategy) are supported"
        )
    chiefs = list(cluster.get("chief", []))
    workers = list(cluster.get("worker", []))
    num_workers = len(chiefs) + len(workers)
    if num_workers <= 1:
        return None
    task_type = task.get("type")
    index = task.get("index", 0)
    if task_type not in ("chief", "worker"):
        raise DeviceError(
            f"TF_CONFIG task type {task_type!r} is not supported; use 'chief' or 'worker'"
        )
    tasks = chiefs if task_type == "chief" else workers
    if not isinstance(index, int) or not 0 <= index < len(tasks):
        raise DeviceError(
            f"TF_CONFIG task index {index!r} is outside the {len(tasks)} '{task_type}' "
            "addresses of the cluster"
        )
    worker_index = index if task_type == "chief" else len(chiefs) + index
    return Cluster(
        num_workers=num_workers,
        worker_index=worker_index,
        is_chief=worker_index == 0,
        task_type=task_type,
    )


def read_rank_env(environ):
    """(RANK_SIZE, RANK_ID) of an Ascend launch; (1, 0) when they are not set."""
    values = {}
    for name, default in (("RANK_SIZE", "1"), ("RANK_ID", "0")):
        text = environ.get(name, default).strip() or default
        try:
            values[name] = int(text)
        except ValueError:
            raise DeviceError(f"environment variable {name}={text!r} is not an integer") from None
    rank_size, rank_id = values["RANK_SIZE"], values["RANK_ID"]
    if rank_size < 1 or not 0 <= rank_id < rank_size:
        raise DeviceError(
            f"RANK_SIZE={rank_size}, RANK_ID={rank_id}: need RANK_SIZE >= 1 and "
            "0 <= RANK_ID < RANK_SIZE"
        )
    return rank_size, rank_id


@dataclasses.dataclass(frozen=True)
class Placement:
    """Everything device-related a run needs to know about this process.

    Attributes:
      device: 'cpu', 'gpu' or 'npu'.
      precision: 'fp32' or 'mixed'.
      precision_mode: the Ascend precision mode (NPU only, else None).
      local_devices: replicas driven by this process.
      num_workers: processes taking part in each synchronous step (RANK_SIZE on
        Ascend, the TF_CONFIG workers on GPUs/CPUs, else 1).
      worker_index: this process's index among them (RANK_ID, TF_CONFIG order).
      multi_worker: a TF_CONFIG cluster (MultiWorkerMirroredStrategy).
      cpu_kernels: the model_fn is built with the CPU kernels
        (modeling/layers/cpu_kernels.py); see resolve_cpu_kernels.
      grappler: sessions run TensorFlow's graph optimiser; see resolve_grappler.
    """

    device: str
    precision: str
    precision_mode: Optional[str]
    local_devices: int
    num_workers: int = 1
    worker_index: int = 0
    multi_worker: bool = False
    cpu_kernels: bool = False
    grappler: bool = True

    @property
    def num_replicas(self):
        """Devices over all processes; the global batch is split among them."""
        return self.local_devices * self.num_workers

    @property
    def is_chief(self):
        """The process that writes params.yaml, checkpoints and evaluates."""
        return self.worker_index == 0

    @property
    def uses_fp16(self):
        """Whether the device may compute in fp16 (and so needs loss scaling)."""
        if self.device == "npu":
            return self.precision_mode in NPU_FP16_PRECISION_MODES
        return self.device == "gpu" and self.precision == "mixed"


def plan_placement(
    device,
    *,
    precision=None,
    precision_mode=None,
    num_devices=0,
    num_gpus=0,
    environ=None,
    cpu_kernels="auto",
    grappler="auto",
):
    """The Placement of this process.

    Args:
      device: a resolved device, 'cpu', 'gpu' or 'npu' (see resolve_device).
      precision: --precision or None (the device's default: mixed on NPU, else fp32).
      precision_mode: --precision_mode (NPU only) or None.
      num_devices: --num_devices; 0 means all visible GPUs, one CPU or one NPU.
      num_gpus: GPUs TensorFlow sees.
      environ: the environment (RANK_SIZE, RANK_ID, TF_CONFIG).
      cpu_kernels: --cpu_kernels (see resolve_cpu_kernels).
      grappler: --grappler (see resolve_grappler).
    """
    environ = {} if environ is None else environ
    if device not in ("cpu", "gpu", "npu"):
        raise DeviceError(f"plan_placement needs a resolved device, got {device!r}")
    placement = _plan_placement(device, precision, precision_mode, num_devices, num_gpus, environ)
    use_cpu_kernels, _ = resolve_cpu_kernels(cpu_kernels, device)
    use_grappler, _ = resolve_grappler(grappler, device, placement.precision)
    return dataclasses.replace(placement, cpu_kernels=use_cpu_kernels, grappler=use_grappler)


def _plan_placement(device, precision, precision_mode, num_devices, num_gpus, environ):
    cluster = read_tf_config(environ)
    if device == "npu":
        if cluster is not None:
            raise DeviceError(
                "TF_CONFIG describes a cluster but --device=npu: Ascend runs take their ranks "
                "from RANK_TABLE_FILE, RANK_SIZE and RANK_ID; unset TF_CONFIG"
            )
        rank_size, rank_id = read_rank_env(environ)
        precision, precision_mode = _npu_precision(precision, precision_mode)
        return Placement(
            device="npu",
            precision=precision,
            precision_mode=precision_mode,
            local_devices=1,
            num_workers=rank_size,
            worker_index=rank_id,
        )
    precision = precision or DEFAULT_PRECISION[device]
    if device == "gpu":
        if num_devices > num_gpus:
            raise DeviceError(
                f"--num_devices={num_devices} but TensorFlow sees {num_gpus} GPU(s); "
                "use at most that many (0 uses all)"
            )
        local = num_devices or num_gpus
        if cluster is not None and local != num_gpus:
            raise DeviceError(
                f"--num_devices={num_devices} with a TF_CONFIG cluster: each worker trains on "
                f"all {num_gpus} GPUs it sees; choose them with CUDA_VISIBLE_DEVICES instead"
            )
    else:
        local = num_devices or 1
        if cluster is not None and local > 1:
            raise DeviceError(
                f"--num_devices={num_devices} virtual CPU devices cannot be combined with a "
                "TF_CONFIG cluster; each CPU worker trains one replica"
            )
    if cluster is None:
        return Placement(
            device=device, precision=precision, precision_mode=None, local_devices=local
        )
    return Placement(
        device=device,
        precision=precision,
        precision_mode=None,
        local_devices=local,
        num_workers=cluster.num_workers,
        worker_index=cluster.worker_index,
        multi_worker=True,
    )


def _npu_precision(precision, precision_mode):
    """(precision, precision_mode) on the NPU from either flag; both given must agree."""
    if precision_mode is None:
        precision = precision or DEFAULT_PRECISION["npu"]
        return precision, NPU_PRECISION_MODE_FOR[precision]
    implied = "mixed" if precision_mode in NPU_MIXED_PRECISION_MODES else "fp32"
    if precision not in (None, implied):
        raise DeviceError(
            f"--precision={precision} contradicts --precision_mode={precision_mode} "
            f"(which is {implied}); give one of them"
        )
    return implied, precision_mode


def replica_batch_size(global_batch_size, num_replicas):
    """Images per replica and step; the global batch must split evenly."""
    if global_batch_size % num_replicas:
        lower = max(global_batch_size // num_replicas, 1) * num_replicas
        raise DeviceError(
            f"train.train_batch_size={global_batch_size} is the global batch over all "
            f"{num_replicas} devices and must be a multiple of {num_replicas}; use e.g. "
            f"{lower} or {lower + num_replicas}"
        )
    return global_batch_size // num_replicas


def fixed_loss_scale(loss_scale):
    """The constant of `train.loss_scale.type: fixed`; an error when it is not set."""
    if loss_scale.init_loss_scale is None:
        raise DeviceError(
            "train.loss_scale.type is 'fixed' but train.loss_scale.init_loss_scale is null; "
            "set the constant scale, e.g. 1024"
        )
    return loss_scale.init_loss_scale
