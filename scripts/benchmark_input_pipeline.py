"""Measures training input-pipeline throughput (images/s) on a fixed number of CPU cores.

Writes its own COCO-like TFRecords (640 x 480 JPEGs with a textured background and
random polygon objects, one PNG mask each), then runs the full training input function
(decode, augmentation, anchor targets, batching) of the chosen parser with TensorFlow
and tf.data limited to `--cores` threads and the process pinned to that many cores.

  python scripts/benchmark_input_pipeline.py --parser retinanet --output_size 640 \
      --num_images 200 --cores 1
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw

IMAGE_HEIGHT, IMAGE_WIDTH = 480, 640


def _textured_image(rng):
    """A smooth colour field plus fine noise: JPEG sizes close to COCO photos (~100 KB)."""
    coarse = rng.randint(0, 256, size=[12, 16, 3]).astype(np.uint8)
    image = np.asarray(
        Image.fromarray(coarse).resize((IMAGE_WIDTH, IMAGE_HEIGHT), Image.BICUBIC), np.float32
    )
    image += rng.normal(0.0, 12.0, size=image.shape)
    return image


def _random_polygon(rng, box):
    """Vertices (x, y) of a star-shaped polygon inside box = (ymin, xmin, ymax, xmax)."""
    ymin, xmin, ymax, xmax = box
    cy, cx = (ymin + ymax) / 2.0, (xmin + xmax) / 2.0
    num = rng.randint(5, 12)
    angles = np.sort(rng.uniform(0, 2 * np.pi, num))
    radius = rng.uniform(0.5, 1.0, num)
    xs = cx + radius * np.cos(angles) * (xmax - xmin) / 2.0
    ys = cy + radius * np.sin(angles) * (ymax - ymin) / 2.0
    return list(zip(xs.tolist(), ys.tolist()))


def make_example(rng, index, num_objects):
    """One synthetic image with `num_objects` polygon objects, as a serialized Example."""
    from official.detection.dataloader import tf_example_builder as builder

    image = _textured_image(rng)
    boxes, classes, pngs, areas = [], [], [], []
    for _ in range(num_objects):
        h = rng.uniform(20, IMAGE_HEIGHT * 0.6)
        w = rng.uniform(20, IMAGE_WIDTH * 0.6)
        y0 = rng.uniform(0, IMAGE_HEIGHT - h)
        x0 = rng.uniform(0, IMAGE_WIDTH - w)
        canvas = Image.new("L", (IMAGE_WIDTH, IMAGE_HEIGHT), 0)
        ImageDraw.Draw(canvas).polygon(_random_polygon(rng, (y0, x0, y0 + h, x0 + w)), fill=1)
        mask = np.asarray(canvas, np.uint8)
        ys, xs = np.nonzero(mask)
        if ys.size == 0:
            continue
        image[mask > 0] = image[mask > 0] * 0.5 + rng.randint(0, 256, size=3) * 0.5
        boxes.append(
            [
                ys.min() / IMAGE_HEIGHT,
                xs.min() / IMAGE_WIDTH,
                (ys.max() + 1) / IMAGE_HEIGHT,
                (xs.max() + 1) / IMAGE_WIDTH,
            ]
        )
        classes.append(int(rng.randint(1, 91)))
        pngs.append(builder.encode_mask(mask))
        areas.append(float(mask.sum()))
    encoded = builder.encode_image(np.clip(image, 0, 255).astype(np.uint8), "jpeg", quality=90)
    return builder.build_example(
        encoded,
        IMAGE_HEIGHT,
        IMAGE_WIDTH,
        boxes,
        classes,
        source_id=str(index + 1),
        is_crowd=[0] * len(classes),
        areas=areas,
        masks_png=pngs,
    ).SerializeToString()


def write_records(data_dir, num_images, num_objects, num_files=4, seed=0):
    """Writes the records unless `data_dir` already holds the same set; returns the glob."""
    from official.detection.dataloader import tf_example_builder as builder

    pattern = os.path.join(data_dir, "train-*")
    manifest_path = os.path.join(data_dir, "benchmark_records.json")
    manifest = {"num_images": num_images, "num_objects": num_objects, "seed": seed}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            if json.load(f) == manifest:
                return pattern, False
    rng = np.random.RandomState(seed)
    examples = [make_example(rng, i, num_objects) for i in range(num_images)]
    for f in range(num_files):
        path = os.path.join(data_dir, f"train-{f:05d}-of-{num_files:05d}.tfrecord")
        builder.write_tfrecord(path, examples[f::num_files])
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return pattern, True


def build_parser(name, output_size, aug_scale_min, aug_scale_max):
    """The training parser with the ancestor's default anchors for that model."""
    from official.detection.dataloader import maskrcnn_parser, retinanet_parser

    common = dict(
        output_size=[output_size, output_size],
        aspect_ratios=[1.0, 2.0, 0.5],
        aug_rand_hflip=True,
        aug_scale_min=aug_scale_min,
        aug_scale_max=aug_scale_max,
        mode="train",
    )
    if name == "retinanet":
        return retinanet_parser.Parser(
            min_level=3, max_level=7, num_scales=3, anchor_size=4.0, **common
        )
    return maskrcnn_parser.Parser(
        min_level=2,
        max_level=6,
        num_scales=1,
        anchor_size=8.0,
        include_mask=True,
        mask_crop_size=112,
        **common,
    )


def run(args):
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        if args.cores > len(available):
            raise ValueError(f"--cores={args.cores} but only {len(available)} cores are usable")
        os.sched_setaffinity(0, available[: args.cores])
    import tensorflow.compat.v1 as tf

    from official.detection.dataloader import input_reader

    tf.disable_eager_execution()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="benchmark_input_")
    t0 = time.time()
    pattern, written = write_records(data_dir, args.num_images, args.num_objects)
    record_kb = sum(os.path.getsize(f) for f in glob.glob(pattern)) / 1024.0 / args.num_images
    print(
        f"{'wrote' if written else 'reusing'} {args.num_images} images "
        f"({record_kb:.0f} KB per record) in {data_dir} ({time.time() - t0:.1f}s)"
    )

    parser = build_parser(args.parser, args.output_size, args.aug_scale_min, args.aug_scale_max)
    input_fn = input_reader.InputFn(
        pattern, parser, "train", args.batch_size, num_threads=args.cores, seed=0
    )
    with tf.Graph().as_default():
        batch = tf.data.make_one_shot_iterator(input_fn()).get_next()
        # Fetch one small tensor per batch so the timing is the pipeline, not the copy
        # of every label into NumPy.
        fetch = tf.group(tf.nest.flatten(batch))
        config = tf.ConfigProto(
            intra_op_parallelism_threads=args.cores, inter_op_parallelism_threads=args.cores
        )
        with tf.Session(config=config) as sess:
            for _ in range(args.warmup_batches):
                sess.run(fetch)
            start, start_cpu = time.time(), time.process_time()
            for _ in range(args.num_batches):
                sess.run(fetch)
            elapsed, cpu_seconds = time.time() - start, time.process_time() - start_cpu
    num_images = args.num_batches * args.batch_size
    images_per_s = num_images / elapsed
    print(
        f"parser={args.parser} output_size={args.output_size} cores={args.cores} "
        f"batch_size={args.batch_size} jitter=[{args.aug_scale_min}, {args.aug_scale_max}] "
        f"objects={args.num_objects}"
    )
    print(f"images/s: {images_per_s:.1f}")
    print(f"images/s per core: {images_per_s / args.cores:.1f}")
    # On a machine shared with other jobs the wall-clock rate drops with the share of the
    # cores we get; images per CPU-second of this process is what one idle core delivers.
    print(f"images per CPU-second: {num_images / cpu_seconds:.1f}")
    print(f"CPU utilisation: {cpu_seconds / elapsed / args.cores:.0%} of {args.cores} core(s)")
    return images_per_s


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parser", choices=["retinanet", "maskrcnn"], required=True)
    parser.add_argument("--output_size", type=int, default=640)
    parser.add_argument("--num_images", type=int, default=200)
    parser.add_argument("--num_objects", type=int, default=7, help="objects per image")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--warmup_batches", type=int, default=5)
    parser.add_argument("--num_batches", type=int, default=30)
    parser.add_argument("--aug_scale_min", type=float, default=1.0)
    parser.add_argument("--aug_scale_max", type=float, default=1.0)
    parser.add_argument("--data_dir", default="", help="where to write records (default: tmp)")
    args = parser.parse_args(argv)
    for name in ("cores", "num_images", "batch_size", "num_batches"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    return args


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    try:
        run(args)
    except ValueError as error:
        print(f"benchmark_input_pipeline: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
