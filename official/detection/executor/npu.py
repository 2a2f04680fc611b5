"""Ascend NPU pieces of a run, built from the `npu_bridge` adapter (TensorFlow 1.15).

`npu_bridge` exists only on Ascend images, so it is imported when an NPU run is built,
never at module import. What an NPU run gets:

- `NPURunConfig` with the precision mode, `iterations_per_loop` steps per session run,
  `hcom_parallel=True` (gradient all-reduce overlapped with the backward pass),
  `enable_data_pre_proc=True` (the tf.data pipeline feeds the device) and checkpoint /
  summary / logging intervals of `iterations_per_loop` steps;
- `NPUEstimator`;
- `NPUDistributedOptimizer` (mean all-reduce of gradients over RANK_SIZE processes),
  wrapped by `NPULossScaleOptimizer` when the precision mode may compute in fp16. The
  Ascend 910 saturates on overflow instead of producing inf, so the float-status check
  inside `NPULossScaleOptimizer` is what detects overflow; the dynamic manager shrinks
  the scale and the step is skipped.

Checkpoints: NPUEstimator saves checkpoints on every rank, so rank 0 writes to
`model_dir` and rank k to `model_dir/rank_k` (identical weights; each rank resumes
from its own directory).
"""

import os
import types

from official.detection.executor import placement as placement_lib

# Ascend float-status overflow detection works with a large starting scale.
DEFAULT_INIT_LOSS_SCALE = 2.0**32


def import_npu_bridge():
    """The npu_bridge classes used here, as attributes of a namespace.

    Raises:
      placement.DeviceError: npu_bridge is not importable; the message says what to
        install or which device to use instead.
    """
    try:
        from npu_bridge.estimator.npu import (
            npu_config,
            npu_estimator,
            npu_loss_scale_manager,
            npu_loss_scale_optimizer,
            npu_optimizer,
        )
    except ImportError as exc:
        raise placement_lib.DeviceError(
            f"--device=npu: {placement_lib.NPU_MISSING_HELP} (import failed: {exc})"
        ) from exc
    return types.SimpleNamespace(
        NPURunConfig=npu_config.NPURunConfig,
        NPUEstimator=npu_estimator.NPUEstimator,
        NPUDistributedOptimizer=npu_optimizer.NPUDistributedOptimizer,
        NPULossScaleOptimizer=npu_loss_scale_optimizer.NPULossScaleOptimizer,
        FixedLossScaleManager=npu_loss_scale_manager.FixedLossScaleManager,
        ExponentialUpdateLossScaleManager=npu_loss_scale_manager.ExponentialUpdateLossScaleManager,
    )


def rank_model_dir(model_dir, placement):
    """Where this rank keeps its checkpoints: model_dir on rank 0, model_dir/rank_k else."""
    if placement.worker_index == 0:
        return model_dir
    return os.path.join(model_dir, f"rank_{placement.worker_index}")


def check_loop_steps(total_steps, iterations_per_loop):
    """An NPU session run covers iterations_per_loop steps, so they must tile the run."""
    if iterations_per_loop > 1 and total_steps % iterations_per_loop:
        raise placement_lib.DeviceError(
            f"train.total_steps={total_steps} is not a multiple of "
            f"train.iterations_per_loop={iterations_per_loop}; on the NPU each session run "
            "trains iterations_per_loop steps, so make total_steps a multiple of it"
        )


def build_run_config(params, placement, *, session_config=None):
    """NPURunConfig for this rank (see the module docstring)."""
    bridge = import_npu_bridge()
    steps = max(int(params.train.iterations_per_loop), 1)
    check_loop_steps(params.train.total_steps, steps)
    return bridge.NPURunConfig(
        model_dir=rank_model_dir(params.model_dir, placement),
        precision_mode=placement.precision_mode,
        iterations_per_loop=steps,
        hcom_parallel=True,
        enable_data_pre_proc=True,
        save_checkpoints_steps=steps,
        # Summaries from rank 0 only; the ranks' values differ just by their data shard.
        save_summary_steps=steps if placement.is_chief else 0,
        log_step_count_steps=steps,
        keep_checkpoint_max=params.train.keep_checkpoint_max,
        tf_random_seed=params.train.seed,
        session_config=session_config,
    )


def build_estimator(model_fn, run_config):
    """NPUEstimator(model_fn, model_dir, config)."""
    bridge = import_npu_bridge()
    return bridge.NPUEstimator(model_fn=model_fn, model_dir=run_config.model_dir, config=run_config)


def loss_scale_manager_spec(loss_scale):
    """(manager class name, constructor kwargs) for `train.loss_scale`, or None for 'none'.

    Managers own TF variables, so they are built inside the model_fn's graph; this
    checks the settings up front.
    """
    if loss_scale.type == "none":
        return None
    if loss_scale.type == "fixed":
        return "FixedLossScaleManager", {"loss_scale": placement_lib.fixed_loss_scale(loss_scale)}
    if loss_scale.type == "dynamic":
        init = loss_scale.init_loss_scale
        return "ExponentialUpdateLossScaleManager", {
            "init_loss_scale": DEFAULT_INIT_LOSS_SCALE if init is None else init,
            "incr_every_n_steps": loss_scale.incr_every_n_steps,
            "decr_every_n_nan_or_inf": loss_scale.decr_every_n_nan_or_inf,
            "decr_ratio": loss_scale.decr_ratio,
        }
    raise placement_lib.DeviceError(
        f"train.loss_scale.type={loss_scale.type!r}; valid: dynamic, fixed, none"
    )


def build_optimizer_wrapper(loss_scale, placement):
    """`fn(optimizer) -> optimizer`: gradient all-reduce over ranks, then loss scaling.

    NPUDistributedOptimizer wraps the optimizer when RANK_SIZE > 1; NPULossScaleOptimizer
    wraps the result when the precision mode may compute in fp16 and loss scaling is on.
    """
    bridge = import_npu_bridge()
    distributed = placement.num_workers > 1
    manager_spec = loss_scale_manager_spec(loss_scale) if placement.uses_fp16 else None

    def wrap(optimizer):
        if distributed:
            optimizer = bridge.NPUDistributedOptimizer(optimizer)
        if manager_spec is not None:
            name, kwargs = manager_spec
            manager = getattr(bridge, name)(**kwargs)
            optimizer = bridge.NPULossScaleOptimizer(optimizer, manager, is_distributed=distributed)
        return optimizer

    return wrap
