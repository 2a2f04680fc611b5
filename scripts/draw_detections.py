"""Draws detections (COCO results JSON) on their images.

    python scripts/draw_detections.py \
        --detections_file=RUN/eval/detections_1000.json \
        --annotations_file=DATA/annotations/instances_val2017.json \
        --image_dir=DATA/val2017 --output_dir=RUN/predictions

Each output PNG shows an image with its detections above --score_threshold:
box, class name and score, and the mask when the detection has one.
"""

import sys

from absl import app, flags

from official.detection.visualize import draw_detections

flags.DEFINE_string("detections_file", None, "COCO results JSON written by evaluation.")
flags.DEFINE_string("annotations_file", None, "COCO JSON with the images and categories.")
flags.DEFINE_string("image_dir", None, "Directory holding the images named in the JSON.")
flags.DEFINE_string("output_dir", None, "Where the PNGs go.")
flags.DEFINE_integer("num_images", 8, "How many images to draw (those with most detections).")
flags.DEFINE_float("score_threshold", 0.3, "Detections below this score are not drawn.")
flags.DEFINE_integer(
    "min_size", 512, "Smaller images are enlarged by a whole factor up to this long side."
)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    for name in ("detections_file", "annotations_file", "image_dir", "output_dir"):
        if not getattr(FLAGS, name):
            print(f"error: --{name} is required", file=sys.stderr)
            return 1
    try:
        written = draw_detections(
            FLAGS.detections_file,
            FLAGS.annotations_file,
            FLAGS.image_dir,
            FLAGS.output_dir,
            num_images=FLAGS.num_images,
            score_threshold=FLAGS.score_threshold,
            min_size=FLAGS.min_size,
        )
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} images to {FLAGS.output_dir}")
    return 0


if __name__ == "__main__":
    app.run(main)
