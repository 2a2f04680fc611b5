"""The flags and the main function the export scripts share.

scripts/export_saved_model.py and scripts/export_inference_graph.py take the same
model, checkpoint, input and output flags (the names of tensorflow/tpu's export
scripts); each adds its own and says what it writes. Imports no TensorFlow, so a bad
command line fails before TensorFlow loads.
"""

import sys
import time
import traceback

from absl import flags, logging

from official.detection.configs import factory as config_factory
from official.detection.configs import loader
from official.detection.executor import failures

FLAGS = flags.FLAGS
INPUT_TYPES_HELP = (
    "raw_image_tensor (normalised float32 images at the input size), image_tensor "
    "(uint8 images), image_bytes (JPEG or PNG strings) or tf_example (serialized "
    "tf.Examples with image/encoded)."
)


class UsageError(ValueError):
    """A flag value that cannot be exported."""


def define_flags(*, export_dir_help, batch_size, batch_size_help, input_type, input_name_help):
    """Defines the shared flags, with the script's defaults and help where they differ."""
    flags.DEFINE_string("export_dir", None, export_dir_help)
    flags.DEFINE_string(
        "model", "retinanet", f"The model, one of {', '.join(config_factory.MODELS)}."
    )
    flags.DEFINE_string("config_file", "", "The training run's YAML config (as for main.py).")
    flags.DEFINE_string(
        "params_override", "", "The training run's overrides (as for main.py), after --config_file."
    )
    flags.DEFINE_string(
        "checkpoint_path", None, "A checkpoint prefix, or a model_dir (its latest checkpoint)."
    )
    flags.DEFINE_integer("batch_size", batch_size, batch_size_help)
    flags.DEFINE_string("input_type", input_type, INPUT_TYPES_HELP)
    flags.DEFINE_string("input_name", "input", input_name_help)
    flags.DEFINE_list(
        "input_image_size",
        None,
        "height,width the images are resized to (then padded to multiples of "
        "2**max_level); unset: the parser's output_size.",
    )
    flags.DEFINE_boolean("output_image_info", True, "Add the image_info output.")
    flags.DEFINE_boolean(
        "output_normalized_coordinates",
        False,
        "Boxes divided by the original image height and width, instead of in its pixels.",
    )
    flags.DEFINE_boolean("cast_num_detections_to_float", False, "num_detections as float32.")
    flags.DEFINE_boolean("cast_detection_classes_to_float", False, "detection_classes as float32.")
    flags.DEFINE_boolean(
        "output_full_image_masks",
        False,
        "Mask R-CNN: detection_masks pasted into the original image (uint8 0/1, the "
        "largest original size of the batch) instead of each box's float mask.",
    )
    flags.DEFINE_boolean(
        "verbose", False, "On a failure, print the Python traceback as well as the error line."
    )


def export_arguments():
    """The keyword arguments of an export function (export_saved_model,
    export_frozen_graph) from the shared flags, after `params`."""
    from official.detection.export import saved_model

    return dict(
        export_dir=FLAGS.export_dir,
        checkpoint_path=FLAGS.checkpoint_path,
        batch_size=FLAGS.batch_size,
        input_type=FLAGS.input_type,
        input_name=FLAGS.input_name,
        **{name: FLAGS[name].value for name in saved_model.OUTPUT_OPTIONS},
    )


def _input_image_size():
    size = FLAGS.input_image_size
    if size is None:
        return None
    try:
        values = [int(s) for s in size]
    except ValueError:
        values = []
    if len(values) != 2 or min(values) < 1:
        raise UsageError(
            f"--input_image_size={','.join(size)} is not a size; give height,width as two "
            "positive integers, e.g. 640,640"
        )
    return values


def check_required(argv, names):
    """Raises UsageError for positional arguments or a flag of `names` left empty."""
    if len(argv) > 1:
        raise UsageError(f"unexpected positional arguments {argv[1:]}; all options are --flags")
    for name in names:
        if not getattr(FLAGS, name):
            raise UsageError(f"--{name} is required (--{name}); see --help")


def _check_flags(argv):
    check_required(argv, ("export_dir", "checkpoint_path"))


def run_export(argv, export, check_flags=None):
    """The main function of an export script; returns its exit status.

    Args:
      argv: the positional arguments absl leaves.
      export: `fn(params, start_time) -> exit status`, exports the model of `params`
        (the flags' config, at --input_image_size) and prints what it wrote; may raise
        ConfigError or ExportError.
      check_flags: `fn()` that raises UsageError for the script's own flags, or None.

    Every failure is one `error: ...` line on stderr and status 1 (with the traceback
    too under --verbose).
    """
    try:
        try:
            _check_flags(argv)
            if check_flags:
                check_flags()
            size = _input_image_size()
        except UsageError as exc:
            return _fail(exc)
        # TensorFlow loads only once the command line is known good.
        from official.detection import tf_compat
        from official.detection.export import saved_model

        start = time.time()
        try:
            params = saved_model.load_export_config(
                FLAGS.model,
                config_file=FLAGS.config_file or None,
                params_override=FLAGS.params_override or None,
                input_image_size=size,
            )
            with tf_compat.quiet_deprecations():
                return export(params, start)
        except (loader.ConfigError, saved_model.ExportError) as exc:
            return _fail(exc)
    except Exception as exc:  # The last resort: one line, not a traceback.
        return _fail(failures.unexpected_failure(exc, "the command"))


def _fail(exc):
    logging.debug("%s", traceback.format_exc())
    if FLAGS.verbose:
        print(traceback.format_exc(), file=sys.stderr, end="")
    print(f"error: {exc}", file=sys.stderr)
    return 1
