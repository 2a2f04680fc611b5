"""Trains and evaluates detection models.

    python official/detection/main.py --model=retinanet --mode=train \
        --model_dir=/tmp/run --config_file=CONFIG.yaml --params_override=OVERRIDES

Modes: `train` (then `--eval_after_training` evaluates the final checkpoint),
`eval` (evaluates each new checkpoint in model_dir, exits after the one at
train.total_steps or after eval.eval_timeout seconds without a new one) and
`train_and_eval` (alternates eval.num_steps_per_eval training steps and an
evaluation).
"""

import sys

from absl import app, flags, logging

from official.detection.configs import loader

MODELS = ("retinanet", "mask_rcnn", "faster_rcnn")
MODES = ("train", "eval", "train_and_eval")

flags.DEFINE_string("model", "retinanet", f"Model to run, one of {', '.join(MODELS)}.")
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
flags.DEFINE_boolean(
    "use_tpu", False, "Accepted for command-line compatibility; only False is supported."
)
FLAGS = flags.FLAGS


class UsageError(ValueError):
    """A flag value that cannot be run."""


def check_flags(argv):
    """Validates flag values that the config does not cover."""
    if len(argv) > 1:
        raise UsageError(f"unexpected positional arguments {argv[1:]}; all options are --flags")
    if FLAGS.model not in MODELS:
        raise UsageError(f"--model={FLAGS.model!r} is not a model; valid: {', '.join(MODELS)}")
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


def main(argv):
    try:
        check_flags(argv)
        params = loader.load_config(
            FLAGS.model,
            config_file=FLAGS.config_file or None,
            params_override=FLAGS.params_override or None,
            forced={"model_dir": FLAGS.model_dir, "use_tpu": False},
        )
    except (UsageError, loader.ConfigError) as exc:
        return _fail(exc)
    # TensorFlow loads only once the command line and the config are known good.
    from official.detection.executor import runner

    try:
        runner.run(
            params,
            model=FLAGS.model,
            mode=FLAGS.mode,
            eval_after_training=FLAGS.eval_after_training,
        )
    except (loader.ConfigError, runner.RunError) as exc:
        return _fail(exc)
    return 0


def _fail(exc):
    logging.error("%s", exc)
    print(f"error: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    app.run(main)
