"""Exports a trained detector as a SavedModel for serving.

    python scripts/export_saved_model.py --model=retinanet \
        --config_file=CONFIG.yaml --checkpoint_path=MODEL_DIR \
        --export_dir=/tmp/export --input_type=image_bytes

The SavedModel has one signature, `serving_default`, under the tag `serve`: the input
named --input_name (see --input_type) and the outputs num_detections,
detection_boxes, detection_classes, detection_scores, detection_masks (Mask R-CNN)
and image_info (--output_image_info). See official/detection/export/saved_model.py.
"""

import sys
import time
import traceback

from absl import app, flags, logging

from official.detection.configs import factory as config_factory
from official.detection.configs import loader
from official.detection.executor import failures

flags.DEFINE_string("export_dir", None, "A new directory for the SavedModel.")
flags.DEFINE_string("model", "retinanet", f"The model, one of {', '.join(config_factory.MODELS)}.")
flags.DEFINE_string("config_file", "", "The training run's YAML config (as for main.py).")
flags.DEFINE_string(
    "params_override", "", "The training run's overrides (as for main.py), after --config_file."
)
flags.DEFINE_string(
    "checkpoint_path", None, "A checkpoint prefix, or a model_dir (its latest checkpoint)."
)
flags.DEFINE_integer("batch_size", 0, "Images per call; 0: any number.")
flags.DEFINE_string(
    "input_type",
    "image_bytes",
    "raw_image_tensor (normalised float32 images at the input size), image_tensor "
    "(uint8 images), image_bytes (JPEG or PNG strings) or tf_example (serialized "
    "tf.Examples with image/encoded).",
)
flags.DEFINE_string("input_name", "input", "Name of the signature's input.")
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
    "verbose", False, "On a failure, print the Python traceback as well as the error line."
)
FLAGS = flags.FLAGS


class UsageError(ValueError):
    """A flag value that cannot be exported."""


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


def check_flags(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected positional arguments {argv[1:]}; all options are --flags")
    for name in ("export_dir", "checkpoint_path"):
        if not getattr(FLAGS, name):
            raise UsageError(f"--{name} is required (--{name}); see --help")
    if FLAGS.batch_size < 0:
        raise UsageError(
            f"--batch_size={FLAGS.batch_size} is negative (--batch_size); give 0 for any "
            "batch or the number of images per call"
        )


def main(argv):
    try:
        return _run(argv)
    except Exception as exc:  # The last resort: one line, not a traceback.
        return _fail(failures.unexpected_failure(exc, "the command"))


def _run(argv):
    try:
        check_flags(argv)
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
            checkpoint = saved_model.export_saved_model(
                params,
                FLAGS.export_dir,
                FLAGS.checkpoint_path,
                batch_size=FLAGS.batch_size,
                input_type=FLAGS.input_type,
                input_name=FLAGS.input_name,
                **{name: FLAGS[name].value for name in saved_model.OUTPUT_OPTIONS},
            )
    except (loader.ConfigError, saved_model.ExportError) as exc:
        return _fail(exc)
    print(
        f"exported {checkpoint} to {FLAGS.export_dir} "
        f"({FLAGS.input_type} input, {time.time() - start:.1f} s)"
    )
    return 0


def _fail(exc):
    logging.debug("%s", traceback.format_exc())
    if FLAGS.verbose:
        print(traceback.format_exc(), file=sys.stderr, end="")
    print(f"error: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    app.run(main)
