"""Exports a trained detector as a SavedModel for serving.

    python scripts/export_saved_model.py --model=retinanet \
        --config_file=CONFIG.yaml --checkpoint_path=MODEL_DIR \
        --export_dir=/tmp/export --input_type=image_bytes

The SavedModel has one signature, `serving_default`, under the tag `serve`: the input
named --input_name (see --input_type) and the outputs num_detections,
detection_boxes, detection_classes, detection_scores, detection_masks (Mask R-CNN;
per box, or pasted into the image with --output_full_image_masks) and image_info
(--output_image_info). See official/detection/export/saved_model.py.
"""

import time

from absl import app, flags

from official.detection.export import command_line

command_line.define_flags(
    export_dir_help="A new directory for the SavedModel.",
    batch_size=0,
    batch_size_help="Images per call; 0: any number.",
    input_type="image_bytes",
    input_name_help="Name of the signature's input.",
)
FLAGS = flags.FLAGS


def check_flags():
    if FLAGS.batch_size < 0:
        raise command_line.UsageError(
            f"--batch_size={FLAGS.batch_size} is negative (--batch_size); give 0 for any "
            "batch or the number of images per call"
        )


def export(params, start):
    from official.detection.export import saved_model

    checkpoint = saved_model.export_saved_model(params, **command_line.export_arguments())
    print(
        f"exported {checkpoint} to {FLAGS.export_dir} "
        f"({FLAGS.input_type} input, {time.time() - start:.1f} s)"
    )
    return 0


def main(argv):
    return command_line.run_export(argv, export, check_flags)


if __name__ == "__main__":
    app.run(main)
