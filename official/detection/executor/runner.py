"""From a resolved config to a finished run: builds inputs, model, evaluator and
executor, then trains and/or evaluates as the mode asks.

This is an edge module: it reads the config and hands explicit values to the
components.
"""

import os
import re

import tensorflow.compat.v1 as tf
import yaml

from official.detection import tf_compat
from official.detection.configs import loader
from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import input_reader, mode_keys, record_check
from official.detection.evaluation import factory as evaluation_factory
from official.detection.executor import (
    data_faults,
    detection_executor,
    devices,
    hooks,
    train_summary,
    train_summary_hook,
)
from official.detection.executor import placement as placement_lib
from official.detection.executor.failures import error_headline
from official.detection.modeling import factory as modeling_factory
from official.detection.modeling import warm_start


class RunError(RuntimeError):
    """A run that cannot go on; the message says why and what to change."""


class _FixedBatchInputFn:
    """Calls an InputFn with a batch size of its own (the Estimator `params` convention).

    Under a distribution strategy the Estimator asks for one replica's batch; on Ascend
    each rank reads one device's batch of its shard.
    """

    def __init__(self, input_fn, batch_size):
        self._input_fn = input_fn
        self._batch_size = batch_size

    def __call__(self, params=None, input_context=None):
        params = dict(params or {}, batch_size=self._batch_size)
        return self._input_fn(params=params, input_context=input_context)


def build_device_train_input_fn(params, placement):
    """The training input of this process: its shard, one replica's batch per call."""
    batch_size = placement_lib.replica_batch_size(
        params.train.train_batch_size, placement.num_replicas
    )
    kwargs = {"deterministic": params.train.deterministic_input}
    if placement.device == "npu" and placement.num_workers > 1:
        # Estimator gives no input_context on Ascend: each rank reads its own shard.
        kwargs["shard"] = (placement.num_workers, placement.worker_index)
    return _FixedBatchInputFn(build_train_input_fn(params, **kwargs), batch_size)


def build_train_input_fn(params, **kwargs):
    return dataloader_factory.input_fn_generator(params, mode_keys.TRAIN, **kwargs)


class _PredictInputFn:
    """Packs (images, labels) as Estimator predict features {'images', 'labels'}.

    Estimator.predict keeps only the features of an input_fn, so evaluation
    labels (image_info, source_id, ground truth) travel inside them.
    """

    def __init__(self, input_fn):
        self._input_fn = input_fn

    def __call__(self, params=None, input_context=None):
        dataset = self._input_fn(params=params, input_context=input_context)
        return dataset.map(lambda images, labels: {"images": images, "labels": labels})


def build_eval_input_fn(params, **kwargs):
    return _PredictInputFn(
        dataloader_factory.input_fn_generator(params, mode_keys.PREDICT_WITH_GT, **kwargs)
    )


def build_executor(params, placement=None):
    """The DetectionExecutor of a run on `placement` (default: one CPU/GPU device)."""
    placement = placement or placement_lib.Placement(
        device="cpu", precision="fp32", precision_mode=None, local_devices=1
    )
    batch_size = params.train.train_batch_size

    def training_hooks_fn(scalars):
        return [
            hooks.TrainProgressHook(
                scalars,
                global_batch_size=batch_size,
                total_steps=params.train.total_steps,
                every_n_steps=_log_every_n_steps(params),
            )
        ]

    model = modeling_factory.build_model(
        params,
        optimizer_wrapper=devices.build_optimizer_wrapper(params, placement),
        training_hooks_fn=training_hooks_fn,
        compiled_device=placement.device == "npu",
    )
    eval_batches = None
    if params.eval.eval_samples:
        eval_batches = -(-params.eval.eval_samples // params.eval.eval_batch_size)
    return detection_executor.DetectionExecutor(
        model.model_fn,
        run_config=devices.build_run_config(params, placement),
        evaluator_fn=evaluation_factory.evaluator_generator(params),
        eval_batches=eval_batches,
        estimator_fn=devices.build_estimator_fn(placement),
        multi_worker=placement.multi_worker,
        cpu_kernels=placement.cpu_kernels,
    )


def _log_every_n_steps(params):
    return max(min(params.train.iterations_per_loop, 50), 1)


def build_train_summary_hook(params, placement):
    """Writes this process's throughput and loss to <model_dir>/train_summary/rank_<k>.json."""
    return train_summary_hook.TrainSummaryHook(
        train_summary.rank_summary_path(params.model_dir, placement.worker_index),
        rank=placement.worker_index,
        rank_size=placement.num_workers,
        global_batch_size=params.train.train_batch_size,
        replica_batch_size=placement_lib.replica_batch_size(
            params.train.train_batch_size, placement.num_replicas
        ),
        warmup_steps=train_summary_hook.warmup_steps_for(params.train.total_steps),
        loss_every_n_steps=_log_every_n_steps(params),
        info={
            "device": placement.device,
            "precision": placement.precision,
            "precision_mode": placement.precision_mode,
            "local_devices": placement.local_devices,
            "num_replicas": placement.num_replicas,
        },
    )


def place(
    device="auto",
    precision=None,
    precision_mode=None,
    num_devices=0,
    cpu_kernels="auto",
    grappler="auto",
):
    """This process's Placement from the device flags and the launch environment."""
    try:
        return devices.place(
            device,
            precision=precision,
            precision_mode=precision_mode,
            num_devices=num_devices,
            cpu_kernels=cpu_kernels,
            grappler=grappler,
        )
    except placement_lib.DeviceError as exc:
        raise RunError(str(exc)) from exc


def run(
    params,
    *,
    mode,
    eval_after_training=False,
    saved_model_dir=None,
    train_hooks=(),
    **device_flags,
):
    """Runs `mode` ('train', 'eval' or 'train_and_eval'); returns the last metrics or None.

    With `saved_model_dir` (eval only), evaluates that SavedModel once instead of the
    checkpoints of model_dir; its results go to model_dir/eval as a checkpoint's do.
    `train_hooks` are SessionRunHooks added to the training of mode 'train' (a benchmark
    times the steps with one).
    `device_flags` are main.py's device flags for `place` (device, precision,
    precision_mode, num_devices, cpu_kernels, grappler; see devices.py). With several
    processes (Ascend ranks, TF_CONFIG workers) all of them train; only the chief
    (rank 0) writes params.yaml and evaluates.
    """
    tf.logging.set_verbosity(tf.logging.INFO)
    # The models are TF 1.x graph code: tensors hash by identity, as on TF 1.15.
    # TF 2.x equality semantics ask on every hash whether execution is eager, which
    # makes graph building about 1.7x slower.
    if hasattr(tf, "disable_tensor_equality"):
        tf.disable_tensor_equality()
    if saved_model_dir:
        return _evaluate_saved_model(params, saved_model_dir)
    placement = place(**device_flags)
    tf.logging.info("Running on %s", devices.describe(placement))
    if tf_compat.XLA_CLUSTERING_SKIPPED:
        tf.logging.info(
            "TensorFlow 1.15: XLA's clustering search skipped at each session start "
            "(TF_XLA_FLAGS=%s; XLA compiles nothing here either way; set TF_XLA_FLAGS "
            "to choose otherwise)",
            tf_compat.XLA_NO_CLUSTERING,
        )
    total_steps = params.train.total_steps
    try:
        executor = build_executor(params, placement)
        eval_kwargs = {"eval_batch_mode": "pad"} if placement.device == "npu" else {}
        if mode == "train":
            if placement.is_chief:
                check_model_dir(params)
                loader.write_config(params, params.model_dir)
            executor.train(
                build_device_train_input_fn(params, placement),
                total_steps,
                hooks=[build_train_summary_hook(params, placement), *train_hooks],
            )
            if eval_after_training and placement.is_chief:
                return executor.evaluate(build_eval_input_fn(params, **eval_kwargs))[1]
            return None
        if mode == "eval":
            result = executor.evaluate_checkpoints(
                build_eval_input_fn(params, **eval_kwargs),
                final_step=total_steps,
                min_interval_secs=params.eval.min_eval_interval,
                timeout=params.eval.eval_timeout,
            )
            return result[1] if result else None
        if mode == "train_and_eval":
            if placement.is_chief:
                check_model_dir(params)
                loader.write_config(params, params.model_dir)
            train_input_fn = build_device_train_input_fn(params, placement)
            eval_input_fn = build_eval_input_fn(params, **eval_kwargs)
            summary_hook = build_train_summary_hook(params, placement)
            interval = params.eval.num_steps_per_eval
            metrics = None
            next_stop = interval
            while True:
                stop = min(next_stop, total_steps)
                executor.train(train_input_fn, stop, hooks=[summary_hook])
                if placement.is_chief:
                    metrics = executor.evaluate(eval_input_fn)[1]
                if stop >= total_steps:
                    return metrics
                next_stop += interval
        raise RunError(f"unknown mode {mode!r}; valid: train, eval, train_and_eval")
    except (
        detection_executor.TrainingStoppedError,
        hooks.CheckpointNameError,
        warm_start.WarmStartError,
        FileNotFoundError,
        input_reader.NoMatchingFilesError,
        placement_lib.DeviceError,
    ) as exc:
        raise RunError(str(exc)) from exc
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as exc:
        message = data_faults.broken_record_message(params, mode, str(exc))
        message = message or corrupt_checkpoint_message(params, str(exc))
        if message is None:
            raise
        raise RunError(message) from exc
    except tf.errors.NotFoundError as exc:
        match = re.search(r"Key (\S+) not found in checkpoint", str(exc))
        if match is None:
            raise
        raise RunError(
            f"the checkpoint in model_dir does not fit this model: it has no variable "
            f"{match.group(1)} ({params.model_dir}); give a new --model_dir, or run with the "
            "config that wrote it"
        ) from exc
    except tf.errors.InvalidArgumentError as exc:
        if not record_check.image_decode_error(str(exc)):
            raise
        raise RunError(data_faults.undecodable_image_message(params, mode, exc.message)) from exc


def _evaluate_saved_model(params, saved_model_dir):
    from official.detection.export import evaluation as export_evaluation

    try:
        return export_evaluation.evaluate_saved_model(
            params,
            saved_model_dir,
            evaluation_factory.evaluator_generator(params),
            os.path.join(params.model_dir, "eval"),
        )[1]
    except (export_evaluation.SavedModelEvalError, input_reader.NoMatchingFilesError) as exc:
        raise RunError(str(exc)) from exc
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as exc:
        message = data_faults.broken_record_message(params, "eval", str(exc))
        if message is None:
            raise
        raise RunError(message) from exc


# The config keys that decide a checkpoint's variables (names and shapes). Sections
# ending in "_head" count whole.
_ARCHITECTURE_KEYS = (
    "type",
    "architecture.backbone",
    "architecture.multilevel_features",
    "architecture.min_level",
    "architecture.max_level",
    "architecture.num_classes",
    "architecture.include_mask",
    "architecture.mask_target_size",
    "anchor.num_scales",
    "anchor.aspect_ratios",
)
# Keys of those sections that change how a run computes, not which variables it has.
_RUNTIME_KEYS = {
    "init_drop_connect_rate",
    "use_native_resize_op",
    "cast_to_float32",
    "only_foreground_rois",
    "activation",
}


def _architecture(config):
    """{dotted key: value} of what shapes the variables, from a config as a dict."""
    values = {}
    for key in _ARCHITECTURE_KEYS:
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[key] = node
    architecture = config.get("architecture") or {}
    sections = [architecture.get("backbone"), architecture.get("multilevel_features")]
    sections += [section for section in sorted(config) if section.endswith("_head")]
    for section in sections:
        for name, value in sorted((config.get(section) or {}).items()):
            if name not in _RUNTIME_KEYS:
                values[f"{section}.{name}"] = value
    return values


def check_model_dir(params):
    """Raises RunError when model_dir holds a checkpoint of another model or architecture.

    Compares the architecture keys of this run with those of the params.yaml that the
    run which wrote the checkpoint left, before anything in model_dir is written.
    """
    model_dir = params.model_dir
    path = os.path.join(model_dir, loader.PARAMS_FILE)
    if tf.train.latest_checkpoint(model_dir) is None or not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as stream:
        previous = _architecture(yaml.safe_load(stream) or {})
    current = _architecture(params.as_dict())
    changed = [key for key in current if previous.get(key) != current[key]]
    if changed:
        key = changed[0]
        raise RunError(
            f"model_dir holds a checkpoint of another model: {key} is {previous.get(key)!r} "
            f"there and {current[key]!r} in this run ({path}; {len(changed)} architecture "
            "key(s) differ); give a new --model_dir, or run with the config that wrote it"
        )


# What TensorFlow says when a checkpoint's data fails its checksum, or is cut short.
_CHECKPOINT_FAULTS = ("Checksum does not match", "Read less bytes than requested")


def corrupt_checkpoint_message(params, error_text):
    """The error line for a checkpoint whose data fails its checksum or is cut short.

    Returns None for other errors.

    For a checkpoint of model_dir it names the newest earlier one to resume from: its
    'checkpoint' file must name it, since a run whose latest checkpoint has no files
    starts again from step 0.
    """
    match = re.search(r"TensorBundle at (\S+?) shard", error_text)
    if match:
        prefix = match.group(1)
    elif any(text in error_text for text in _CHECKPOINT_FAULTS):
        # Without the file named, it is the checkpoint being restored.
        prefix = tf.train.latest_checkpoint(params.model_dir) or params.train.checkpoint.path
        if not prefix:
            return None
    else:
        return None
    headline = error_headline(error_text)
    if os.path.dirname(os.path.abspath(prefix)) != os.path.abspath(params.model_dir):
        return (
            f"corrupt checkpoint: {headline} ({prefix}, train.checkpoint.path); give "
            "train.checkpoint.path an intact copy of it"
        )
    state = tf.train.get_checkpoint_state(params.model_dir)
    earlier = [
        path
        for path in (state.all_model_checkpoint_paths if state else [])
        if os.path.basename(path) != os.path.basename(prefix)
    ]
    if not earlier:
        return (
            f"corrupt checkpoint: {headline} ({prefix}, model_dir); it is the only one: "
            "remove model_dir's checkpoint files to train from the start"
        )
    previous = os.path.basename(earlier[-1])
    return (
        f"corrupt checkpoint: {headline} ({prefix}, model_dir); remove "
        f"{os.path.basename(prefix)}.*, set model_checkpoint_path in "
        f'{os.path.join(params.model_dir, "checkpoint")} to "{previous}", then run the '
        f"same command to resume from {previous}"
    )
