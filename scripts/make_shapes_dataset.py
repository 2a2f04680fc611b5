"""Writes the synthetic shapes dataset in COCO layout (the demo's default data).

  python scripts/make_shapes_dataset.py --output_dir /tmp/shapes \
      [--num_train 600] [--num_val 100] [--seed 0] [--image_size 256] \
      [--min_objects 2] [--max_objects 6] \
      [--min_object_fraction 0.1] [--max_object_fraction 0.4] [--jpeg_quality 90]

Output: OUTPUT_DIR/{train2017,val2017}/*.jpg and
OUTPUT_DIR/annotations/instances_{train,val}2017.json. The same arguments write
the same bytes. See official/detection/datasets/shapes.py for what is drawn and
how occluded objects are annotated.
"""

import argparse
import dataclasses
import sys
import time

from official.detection.datasets import shapes


def _build_parser():
    defaults = shapes.ShapesOptions()
    parser = argparse.ArgumentParser(
        description="Write the synthetic shapes dataset (COCO layout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output_dir", required=True, help="dataset root to write into")
    parser.add_argument("--num_train", type=int, default=600, help="images in train2017")
    parser.add_argument("--num_val", type=int, default=100, help="images in val2017")
    parser.add_argument("--seed", type=int, default=0, help="random seed, 0 <= seed < 2**32")
    parser.add_argument(
        "--image_size", type=int, default=defaults.image_size, help="image height and width"
    )
    parser.add_argument("--min_objects", type=int, default=defaults.min_objects)
    parser.add_argument("--max_objects", type=int, default=defaults.max_objects)
    parser.add_argument(
        "--min_object_fraction",
        type=float,
        default=defaults.min_object_fraction,
        help="smallest object size (about sqrt(w*h)) as a fraction of image_size",
    )
    parser.add_argument(
        "--max_object_fraction",
        type=float,
        default=defaults.max_object_fraction,
        help="largest object size as a fraction of image_size",
    )
    parser.add_argument("--jpeg_quality", type=int, default=defaults.jpeg_quality)
    return parser


def main(argv=None):
    parser = _build_parser()
    args = parser.parse_args(argv)
    option_names = [field.name for field in dataclasses.fields(shapes.ShapesOptions)]
    options = shapes.ShapesOptions(**{name: getattr(args, name) for name in option_names})
    start = time.time()
    try:
        paths = shapes.write_dataset(
            args.output_dir, args.num_train, args.num_val, args.seed, options
        )
    except shapes.ShapesDatasetError as error:
        parser.error(str(error))
    print(
        f"wrote {args.num_train} train and {args.num_val} val images in "
        f"{time.time() - start:.1f}s:\n  {paths['train_annotations_file']}\n"
        f"  {paths['val_annotations_file']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
