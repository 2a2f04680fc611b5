"""Runs a trained detector on image files: a picture per image and the COCO results.

    python scripts/inference.py --model=retinanet --config_file=MODEL_DIR/params.yaml \
        --checkpoint_path=MODEL_DIR --image_file_pattern='photos/*.jpg' --output_dir=out
    python scripts/inference.py --saved_model_dir=EXPORT_DIR \
        --image_file_pattern=photos --output_dir=out

writes out/<name>.png for every image (boxes, class names, scores, Mask R-CNN masks) and
out/detections.json (COCO results format). See official/detection/export/inference.py.
"""

import time

from absl import app, flags

from official.detection.configs import factory as config_factory
from official.detection.configs import loader
from official.detection.executor import failures
from official.detection.export import command_line

flags.DEFINE_string(
    "image_file_pattern", None, "A directory of images, or a glob such as 'photos/*.jpg'."
)
flags.DEFINE_string("output_dir", None, "Where the pictures and detections.json go.")
flags.DEFINE_string(
    "checkpoint_path", None, "A checkpoint prefix, or a model_dir (its latest checkpoint)."
)
flags.DEFINE_string("model", "retinanet", f"The model, one of {', '.join(config_factory.MODELS)}.")
flags.DEFINE_string("config_file", "", "The training run's YAML config (as for main.py).")
flags.DEFINE_string(
    "params_override", "", "The training run's overrides (as for main.py), after --config_file."
)
flags.DEFINE_string(
    "saved_model_dir",
    None,
    "A SavedModel of scripts/export_saved_model.py (any input type), instead of --checkpoint_path.",
)
flags.DEFINE_string(
    "label_map_file",
    "",
    "YAML or JSON mapping of category id to name, or a COCO annotation file (its "
    "categories, and the ids of the images it lists); unset: the COCO 2017 names.",
)
flags.DEFINE_float("min_score_threshold", 0.3, "Detections below this score are not drawn.")
flags.DEFINE_integer("max_boxes_to_draw", 20, "At most this many detections are drawn per image.")
flags.DEFINE_integer("batch_size", 1, "Images per model call.")
flags.DEFINE_boolean(
    "strict", False, "Stop at the first file that is not a decodable image instead of skipping it."
)
flags.DEFINE_boolean(
    "verbose", False, "On a failure, print the Python traceback as well as the error line."
)
FLAGS = flags.FLAGS


def check_flags(argv):
    command_line.check_required(argv, ("image_file_pattern", "output_dir"))
    if bool(FLAGS.checkpoint_path) == bool(FLAGS.saved_model_dir):
        raise command_line.UsageError(
            "give the model as one of --checkpoint_path or --saved_model_dir "
            "(--checkpoint_path, --saved_model_dir); see --help"
        )
    if FLAGS.batch_size < 1:
        raise command_line.UsageError(
            f"--batch_size={FLAGS.batch_size} is not a number of images (--batch_size); "
            "give 1 or more"
        )
    if not 0.0 <= FLAGS.min_score_threshold <= 1.0:
        raise command_line.UsageError(
            f"--min_score_threshold={FLAGS.min_score_threshold} is not a score "
            "(--min_score_threshold); give a value from 0 to 1"
        )
    if FLAGS.max_boxes_to_draw < 0:
        raise command_line.UsageError(
            f"--max_boxes_to_draw={FLAGS.max_boxes_to_draw} is negative (--max_boxes_to_draw); "
            "give 0 or more"
        )


def main(argv):
    return failures.run_command(_run, argv, verbose=lambda: FLAGS.verbose, report="the command")


def _run(argv):
    from official.detection.export import inference, label_map

    try:
        check_flags(argv)
        labels = label_map.load_label_map(FLAGS.label_map_file)
        paths = inference.find_images(FLAGS.image_file_pattern)
    except (command_line.UsageError, label_map.LabelMapError, inference.InferenceError) as exc:
        return _fail(exc)
    # TensorFlow loads only once the command line is known good.
    from official.detection import tf_compat
    from official.detection.export import predictors, saved_model

    start = time.time()
    try:
        with tf_compat.quiet_deprecations():
            predictor = _predictor(predictors, saved_model)
        print(f"model ready in {time.time() - start:.1f} s; {len(paths)} files")
        options = {
            name: FLAGS[name].value
            for name in ("batch_size", "min_score_threshold", "max_boxes_to_draw", "strict")
        }
        summary = inference.run_inference(predictor, paths, FLAGS.output_dir, labels, **options)
    except (
        loader.ConfigError,
        saved_model.ExportError,
        predictors.PredictorError,
        inference.InferenceError,
    ) as exc:
        return _fail(exc)
    rate = summary.images / max(summary.seconds, 1e-9)
    model_rate = summary.images / max(summary.model_seconds, 1e-9)
    print(
        f"inference: {summary.images} images in {summary.seconds:.1f} s, {rate:.1f} images/s "
        f"({model_rate:.1f} images/s in the model, batch {FLAGS.batch_size}); "
        f"{summary.detections} detections"
    )
    print(f"wrote {summary.images} pictures and {inference.DETECTIONS_FILE} to {FLAGS.output_dir}")
    if summary.skipped:
        print(f"skipped {len(summary.skipped)} of {len(paths)} files, not decodable images:")
        for path, reason in summary.skipped:
            print(f"  {path}: {reason}")
    return 0


def _predictor(predictors, saved_model):
    if FLAGS.saved_model_dir:
        return predictors.saved_model_predictor(FLAGS.saved_model_dir)
    params = saved_model.load_export_config(
        FLAGS.model,
        config_file=FLAGS.config_file or None,
        params_override=FLAGS.params_override or None,
    )
    return predictors.checkpoint_predictor(params, FLAGS.checkpoint_path)


def _fail(exc):
    return failures.fail(exc, FLAGS.verbose)


if __name__ == "__main__":
    app.run(main)
