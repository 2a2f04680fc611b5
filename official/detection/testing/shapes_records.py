"""Shapes TFRecords for end-to-end tests and benchmarks: the dataset generator
followed by the converter, in this process."""

import os

from official.detection.dataloader import coco_json, coco_tfrecord_writer
from official.detection.testing import coco_fixtures


def write_shapes_records(
    root_dir, *, num_train=16, num_val=8, seed=0, image_size=128, include_masks=True, num_shards=2
):
    """Writes a shapes dataset and its TFRecords under `root_dir`.

    Returns:
      dict with `train_file_pattern`, `eval_file_pattern`, `val_json_file`,
      `val_image_dir`, `num_classes`.
    """
    paths = coco_fixtures.write_shapes_coco_dataset(
        root_dir, num_train, num_val, seed, image_size=image_size
    )
    record_dir = os.path.join(root_dir, "tfrecords")
    for split in ("train", "val"):
        dataset = coco_json.load_coco_dataset(
            object_annotations_file=paths[f"{split}_annotations_file"], include_masks=include_masks
        )
        coco_tfrecord_writer.write_coco_shards(
            dataset,
            paths[f"{split}_image_dir"],
            os.path.join(record_dir, split),
            num_shards,
            include_masks=include_masks,
            num_workers=1,
        )
    return dict(
        train_file_pattern=os.path.join(record_dir, "train-*"),
        eval_file_pattern=os.path.join(record_dir, "val-*"),
        val_json_file=paths["val_annotations_file"],
        val_image_dir=paths["val_image_dir"],
        num_classes=paths["num_classes"],
    )
