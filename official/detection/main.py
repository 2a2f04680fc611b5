"""Trains and evaluates detection models.

    python official/detection/main.py --model=retinanet --mode=train \
        --model_dir=/tmp/run --config_file=CONFIG.yaml --params_override=OVERRIDES

Modes: `train` (then `--eval_after_training` evaluates the final checkpoint),
`eval` (evaluates each new checkpoint in model_dir, exits after the one at
train.total_steps or after eval.eval_timeout seconds without a new one) and
`train_and_eval` (alternates eval.num_steps_per_eval training steps and an
evaluation).

Devices: `--device=auto` takes an Ascend NPU when npu_bridge imports, else the GPUs
TensorFlow sees, else the CPU. `--precision=mixed` computes in fp16 where safe (NPU
default; GPUs through the automatic mixed precision rewrite; not on CPUs);
`--precision_mode` sets the Ascend precision mode directly. `--cpu_kernels=off` keeps
TensorFlow's kernels on a CPU run (auto and on: the CPU kernels of
modeling/layers/cpu_kernels.py). Several processes (Ascend
ranks from RANK_SIZE/RANK_ID, or workers from TF_CONFIG) train one model together;
`train.train_batch_size` is the global batch over all their devices. See
executor/devices.py and the launch scripts in test/.
"""

import sys
import traceback

from absl import app, flags, logging

from official.detection.configs import factory as config_factory
from official.detection.configs import loader
from official.detection.executor import placement
from official.detection.executor.failures import unexpected_failure

MODES = ("train", "eval", "train_and_eval")

flags.DEFINE_string(
    "model", "retinanet", f"Model to run, one of {', '.join(config_factory.MODELS)}."
)
flags.DEFINE_string("mode", "train", f"What to run, one of {', '.join(MODES)}.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, params.yaml and eval output.")
flags.DEFINE_string("config_file", "", "YAML file with overrides of the model defaults.")
flags.DEFINE_string(
    "params_override",
    "",
    "Overrides applied after --config_file: a YAML/JSON mapping string, "
    "'a.b=1,c.d=x' pairs, or the path of a YAML file.",
)
flags.DEFINE_boolean(
    "eval_after_training", False, "In --mode=train, evaluate the final checkpoint."
)
flags.DEFINE_string(
    "saved_model_dir",
    None,
    "With --mode=eval: evaluate this SavedModel (scripts/export_saved_model.py) once on "
    "eval.eval_file_pattern instead of the checkpoints of --model_dir; the metrics and "
    "detections go to --model_dir/eval, named by the exported checkpoint's step.",
)
flags.DEFINE_boolean(
    "verbose",
    False,
    "On a failure, print the full Python traceback as well as the one error line (it is "
    "always logged at debug level: --verbosity=1).",
)
flags.DEFINE_boolean(
    "use_tpu", False, "Accepted for command-line compatibility; only False is supported."
)
flags.DEFINE_string(
    "device",
    "auto",
    f"Where to train, one of {', '.join(placement.DEVICES)}; auto: an Ascend NPU when "
    "npu_bridge imports, else the visible GPUs, else the CPU.",
)
flags.DEFINE_string(
    "precision",
    None,
    f"One of {', '.join(placement.PRECISIONS)}; unset: mixed on the NPU, fp32 elsewhere. "
    "mixed needs a GPU or an NPU.",
)
flags.DEFINE_string(
    "precision_mode",
    None,
    "Ascend only: the NPU precision mode, one of "
    f"{', '.join(placement.NPU_PRECISION_MODES)}; unset: allow_mix_precision "
    "(allow_fp32_to_fp16 with --precision=fp32).",
)
flags.DEFINE_string(
    "cpu_kernels",
    "auto",
    f"One of {', '.join(placement.CPU_KERNELS)}: the CPU kernels (Winograd 3x3 "
    "convolutions, GEMM filter gradients, written-out batch norms) or TensorFlow's own; "
    "auto and on: on for CPU runs (GPUs and NPUs keep their own kernels).",
)
flags.DEFINE_string(
    "grappler",
    "auto",
    f"One of {', '.join(placement.GRAPPLER)}: TensorFlow's graph optimiser (Grappler) in "
    "the training and evaluation sessions. auto: off for CPU runs, where the step is as "
    "fast without it and the first step starts 7-20 s sooner; on for GPUs and NPUs.",
)
flags.DEFINE_integer(
    "num_devices",
    0,
    "Devices this process trains on: GPUs (0: all visible), or virtual CPU devices with "
    "--device=cpu (0: one). Ascend runs one process per NPU.",
)
FLAGS = flags.FLAGS


class UsageError(ValueError):
    """A flag value that cannot be run."""


def check_flags(argv):
    """Validates flag values that the config does not cover."""
    if len(argv) > 1:
        raise UsageError(f"unexpected positional arguments {argv[1:]}; all options are --flags")
    if FLAGS.model not in config_factory.MODELS:
        raise UsageError(
            f"--model={FLAGS.model!r} is not a model; valid: {', '.join(config_factory.MODELS)}"
        )
    if FLAGS.mode not in MODES:
        raise UsageError(f"--mode={FLAGS.mode!r} is not a mode; valid: {', '.join(MODES)}")
    if FLAGS.use_tpu:
        raise UsageError(
            "--use_tpu=True: Cloud TPUs are not supported by this code base; "
            "run on Ascend NPUs, GPUs or the CPU with --use_tpu=False"
        )
    if not FLAGS.model_dir:
        raise UsageError("--model_dir is required: the directory for checkpoints and results")
    if FLAGS.eval_after_training and FLAGS.mode != "train":
        raise UsageError(
            f"--eval_after_training applies to --mode=train only, not --mode={FLAGS.mode}"
        )
    if FLAGS.saved_model_dir and FLAGS.mode != "eval":
        raise UsageError(f"--saved_model_dir applies to --mode=eval only, not --mode={FLAGS.mode}")
    placement.check_device_flags(
        FLAGS.device,
        FLAGS.precision,
        FLAGS.precision_mode,
        FLAGS.num_devices,
        FLAGS.cpu_kernels,
        FLAGS.grappler,
    )


def main(argv):
    try:
        return _run(argv)
    except Exception as exc:  # The last resort: one line, not a traceback.
        # (Errors a user can cause are caught where they arise, with advice.)
        return _fail(unexpected_failure(exc, "the command and params.yaml"))


def _run(argv):
    try:
        check_flags(argv)
        params = loader.load_config(
            FLAGS.model,
            config_file=FLAGS.config_file or None,
            params_override=FLAGS.params_override or None,
            forced={"model_dir": FLAGS.model_dir, "use_tpu": False},
        )
    except (UsageError, placement.DeviceError, loader.ConfigError) as exc:
        return _fail(exc)
    # TensorFlow loads only once the command line and the config are known good.
    from official.detection import tf_compat
    from official.detection.evaluation.coco_groundtruth import EvaluationInputError
    from official.detection.executor import runner

    try:
        with tf_compat.quiet_deprecations():
            runner.run(
                params,
                mode=FLAGS.mode,
                eval_after_training=FLAGS.eval_after_training,
                device=FLAGS.device,
                precision=FLAGS.precision,
                precision_mode=FLAGS.precision_mode,
                num_devices=FLAGS.num_devices,
                cpu_kernels=FLAGS.cpu_kernels,
                grappler=FLAGS.grappler,
                saved_model_dir=FLAGS.saved_model_dir,
            )
    except (loader.ConfigError, runner.RunError, EvaluationInputError) as exc:
        return _fail(exc)
    return 0


def _fail(exc):
    """Prints one error line for `exc` (an exception or a message) and returns exit code 1.

    The traceback of the exception being handled goes to the log at debug level, and to
    the terminal with --verbose.
    """
    details = traceback.format_exc()
    logging.debug("%s", details)
    if FLAGS.verbose:
        print(details, file=sys.stderr, end="")
    logging.error("%s", exc)
    print(f"error: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    app.run(main)
