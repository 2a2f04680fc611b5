"""Per-device construction: RunConfig, Estimator class and optimizer wrapper.

Models know nothing of devices; the runner asks this module for

- `place(...)`: the Placement of this process (device, precision, replicas, rank);
- `build_run_config(params, placement)`: NPURunConfig on Ascend, else a RunConfig with
  a distribution strategy when there are several replicas, and on GPUs with
  `--precision=mixed` the automatic mixed precision graph rewrite;
- `build_estimator_fn(placement)`: `fn(model_fn, run_config) -> Estimator`;
- `build_optimizer_wrapper(params, placement)`: `fn(optimizer) -> optimizer`, or None.

Precision: the NPU computes in fp16 under its precision mode (default
`allow_mix_precision`) with NPULossScaleOptimizer; GPUs with `--precision=mixed` use
TF's automatic mixed precision rewrite and MixedPrecisionLossScaleOptimizer; CPUs train
in fp32 (`--precision=mixed` there is an error).
"""

import os

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator
from tensorflow.core.protobuf import rewriter_config_pb2

from official.detection.executor import distribution, npu
from official.detection.executor import placement as placement_lib
from official.detection.modeling.layers import cpu_kernels as cpu_kernels_lib

# TF's own default starting scale for float16 dynamic loss scaling.
DEFAULT_GPU_INIT_LOSS_SCALE = 2.0**15


def count_gpus():
    """GPUs TensorFlow can see (0 on CPU-only builds)."""
    return len(tf.config.experimental.list_physical_devices("GPU"))


def place(
    device,
    *,
    precision=None,
    precision_mode=None,
    num_devices=0,
    environ=None,
    cpu_kernels="auto",
    grappler="auto",
):
    """Resolves `device` ('auto' included) and returns this process's Placement.

    Args:
      device: --device ('auto', 'cpu', 'gpu' or 'npu').
      precision, precision_mode, num_devices, cpu_kernels, grappler: the flags of the
        same names, as main.py's placement.check_device_flags passed them; a
        --cpu_kernels or --grappler that the device overrules is logged as a warning.
      environ: the environment (default os.environ): RANK_SIZE, RANK_ID, TF_CONFIG.

    Raises:
      placement.DeviceError: the device is missing or the flags and environment
        cannot run together.
    """
    environ = os.environ if environ is None else environ
    npu_available = placement_lib.npu_bridge_available()
    num_gpus = count_gpus() if device in ("auto", "gpu") else 0
    resolved = placement_lib.resolve_device(device, npu_available=npu_available, num_gpus=num_gpus)
    if device == "auto":
        # main.py checked the flags against an explicit device; this one is known now.
        placement_lib.check_flags_for_device(resolved, precision, precision_mode, num_devices)
    _, warning = placement_lib.resolve_cpu_kernels(cpu_kernels, resolved)
    if warning:
        tf.logging.warning("%s", warning)
    placement = placement_lib.plan_placement(
        resolved,
        precision=precision,
        precision_mode=precision_mode,
        num_devices=num_devices,
        num_gpus=num_gpus,
        environ=environ,
        cpu_kernels=cpu_kernels,
        grappler=grappler,
    )
    _, warning = placement_lib.resolve_grappler(grappler, resolved, placement.precision)
    if warning:
        tf.logging.warning("%s", warning)
    return placement


def build_session_config(placement):
    """Session options: virtual CPU devices, GPU memory growth, mixed precision rewrite,
    TensorFlow's graph optimiser off when the placement says so."""
    config = tf.ConfigProto(allow_soft_placement=True)
    if not placement.grappler:
        config.graph_options.rewrite_options.disable_meta_optimizer = True
    if placement.device == "cpu" and placement.local_devices > 1:
        config.device_count["CPU"] = placement.local_devices
    if placement.device == "gpu":
        config.gpu_options.allow_growth = True
        if placement.precision == "mixed":
            config.graph_options.rewrite_options.auto_mixed_precision = (
                rewriter_config_pb2.RewriterConfig.ON
            )
    return config


def build_run_config(params, placement):
    """The run config for the device; checkpoints and logs every iterations_per_loop steps."""
    if placement.device == "npu":
        return npu.build_run_config(
            params, placement, session_config=tf.ConfigProto(allow_soft_placement=True)
        )
    steps = max(int(params.train.iterations_per_loop), 1)
    return tf_estimator.RunConfig(
        model_dir=params.model_dir,
        save_checkpoints_steps=steps,
        save_summary_steps=steps,
        log_step_count_steps=steps,
        keep_checkpoint_max=params.train.keep_checkpoint_max,
        session_config=build_session_config(placement),
        tf_random_seed=params.train.seed,
        train_distribute=distribution.build_strategy(placement),
    )


def _build_estimator(model_fn, run_config):
    return tf_estimator.Estimator(model_fn=model_fn, config=run_config)


def build_estimator_fn(placement):
    """`fn(model_fn, run_config) -> Estimator`: NPUEstimator on Ascend, else tf.estimator's."""
    if placement.device == "npu":
        return npu.build_estimator
    return _build_estimator


def gpu_loss_scale_spec(loss_scale):
    """('fixed', value), ('dynamic', kwargs of DynamicLossScale) or None for 'none'."""
    if loss_scale.type == "none":
        return None
    if loss_scale.type == "fixed":
        return "fixed", float(placement_lib.fixed_loss_scale(loss_scale))
    if loss_scale.type == "dynamic":
        init = loss_scale.init_loss_scale
        return "dynamic", {
            "initial_loss_scale": DEFAULT_GPU_INIT_LOSS_SCALE if init is None else init,
            "increment_period": loss_scale.incr_every_n_steps,
            # TF grows and shrinks by the same factor.
            "multiplier": 1.0 / loss_scale.decr_ratio,
        }
    raise placement_lib.DeviceError(
        f"train.loss_scale.type={loss_scale.type!r}; valid: dynamic, fixed, none"
    )


def _gpu_optimizer_wrapper(spec):
    def wrap(optimizer):
        kind, value = spec
        # Built here, inside the model_fn's graph: a dynamic scale owns variables.
        scale = tf.train.experimental.DynamicLossScale(**value) if kind == "dynamic" else value
        return tf.train.experimental.MixedPrecisionLossScaleOptimizer(optimizer, scale)

    return wrap


def build_optimizer_wrapper(params, placement):
    """`fn(optimizer) -> optimizer` for the device, or None when nothing wraps it."""
    if placement.device == "npu":
        return npu.build_optimizer_wrapper(params.train.loss_scale, placement)
    if placement.uses_fp16:
        spec = gpu_loss_scale_spec(params.train.loss_scale)
        if spec is not None:
            return _gpu_optimizer_wrapper(spec)
    return None


def describe(placement):
    """One line for the log: device, precision, the replica layout and the kernels."""
    text = f"device {placement.device} x{placement.local_devices}, precision {placement.precision}"
    if placement.precision_mode:
        text += f" (precision_mode {placement.precision_mode})"
    if placement.num_workers > 1:
        text += f", rank {placement.worker_index} of {placement.num_workers} processes"
    text += f", {placement.num_replicas} replica(s) in all; "
    if placement.cpu_kernels:
        text += f"CPU kernels in training graphs: {cpu_kernels_lib.description()}"
    else:
        text += "TensorFlow's kernels"
    return text + ("" if placement.grappler else "; Grappler graph optimisation off")
