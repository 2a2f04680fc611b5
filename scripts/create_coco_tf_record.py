r"""Converts a COCO-format dataset into sharded TFRecord files of `tf.train.Example`s.

One record per image, in the tensorflow/tpu detection schema, so the records work
with either code base's decoder. Example:

  python scripts/create_coco_tf_record.py \
    --image_dir=/data/coco/raw-data/val2017 \
    --object_annotations_file=/data/coco/annotations/instances_val2017.json \
    --caption_annotations_file=/data/coco/annotations/captions_val2017.json \
    --output_file_prefix=/data/coco/val --num_shards=32 --include_masks

writes /data/coco/val-00000-of-00032.tfrecord ... val-00031-of-00032.tfrecord. Images
only (e.g. test2017): pass --image_info_file=.../image_info_test2017.json and no
annotation files. Progress is logged per shard; a summary (images, objects, skipped
and clipped objects, re-encoded and bad images) is printed at the end. Errors in the
input (bad JSON entries, missing or corrupt images) stop the run with a message naming
the file and entry, exit status 1, and no finished-looking output file; so do Ctrl-C
(exit status 130) and SIGTERM (143). Earlier output with the same prefix is replaced only
when a run succeeds. The reusable parts live in official/detection/dataloader/:
coco_json (loading and checking), coco_conversion (one image -> one record) and
coco_tfrecord_writer (parallel sharded writing and the summary).
"""

import signal
import sys
import time

from absl import app, flags

from official.detection.dataloader import coco_conversion, coco_json, coco_tfrecord_writer

flags.DEFINE_string("image_dir", None, "Directory holding the images' file_name entries.")
flags.DEFINE_string(
    "object_annotations_file",
    "",
    "COCO object annotations JSON (instances_*.json): boxes, classes, segmentations.",
)
flags.DEFINE_string(
    "caption_annotations_file",
    "",
    "COCO captions JSON (captions_*.json); stored as the bytes list 'image/caption'.",
)
flags.DEFINE_string(
    "image_info_file",
    "",
    "JSON whose 'images' list says which images to write (e.g. image_info_test2017.json). "
    "Default: the images of --object_annotations_file, else of --caption_annotations_file.",
)
flags.DEFINE_string(
    "output_file_prefix",
    None,
    "Output path prefix: writes <prefix>-00000-of-<num_shards>.tfrecord, ...",
)
flags.DEFINE_integer("num_shards", 32, "Number of output files.", lower_bound=1)
flags.DEFINE_boolean(
    "include_masks", False, "Write one PNG instance mask per object ('image/object/mask')."
)
flags.DEFINE_boolean(
    "skip_bad_images",
    False,
    "Skip missing or corrupt image files (listed in the summary) instead of failing.",
)
flags.DEFINE_integer("num_workers", None, "Worker processes (default: all cores).", lower_bound=1)
flags.mark_flags_as_required(["image_dir", "output_file_prefix"])
flags.register_multi_flags_validator(
    ["image_info_file", "object_annotations_file", "caption_annotations_file"],
    lambda values: any(values.values()),
    message="give at least one of --image_info_file, --object_annotations_file and "
    "--caption_annotations_file",
)

FLAGS = flags.FLAGS


def _exit_on_sigterm(signum, frame):
    # Unwinds through the converter's clean-up, so a killed run leaves no temporary files.
    raise SystemExit(128 + signum)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    start = time.time()
    try:
        dataset = coco_json.load_coco_dataset(
            FLAGS.image_info_file,
            FLAGS.object_annotations_file,
            FLAGS.caption_annotations_file,
            include_masks=FLAGS.include_masks,
        )
        summary = coco_tfrecord_writer.write_coco_shards(
            dataset,
            FLAGS.image_dir,
            FLAGS.output_file_prefix,
            FLAGS.num_shards,
            include_masks=FLAGS.include_masks,
            skip_bad_images=FLAGS.skip_bad_images,
            num_workers=FLAGS.num_workers,
        )
    # ValueError covers CocoFormatError, BadImageError and bad arguments.
    except (ValueError, coco_tfrecord_writer.WorkerDiedError) as e:
        hint = ""
        if isinstance(e, coco_conversion.BadImageError):
            hint = " (--skip_bad_images skips such images)"
        print(f"create_coco_tf_record.py: error: {e}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "create_coco_tf_record.py: interrupted; no output of this run was kept", file=sys.stderr
        )
        return 130
    print(summary.format(FLAGS.output_file_prefix, FLAGS.num_shards, time.time() - start))
    return 0


if __name__ == "__main__":
    app.run(main)
