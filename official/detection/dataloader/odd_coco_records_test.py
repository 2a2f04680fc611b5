"""A COCO-format set unlike the shapes set converts with masks, and every record it
yields decodes and goes through the RetinaNet and Mask R-CNN parsers in every mode.

The odd set (testing/coco_fixtures.py) has non-square images of several sizes,
grayscale JPEGs, PNGs (RGB and grayscale), sparse category ids, compressed and
uncompressed crowd RLE, multi-part polygons, images without objects, tiny boxes,
a zero-width box and boxes that overshoot the image edge.
"""

import glob
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.configs import loader
from official.detection.dataloader import (
    coco_json,
    coco_tfrecord_writer,
    factory,
    mode_keys,
    tf_example_decoder,
)
from official.detection.testing import coco_fixtures

_MODES = (mode_keys.TRAIN, mode_keys.EVAL, mode_keys.PREDICT_WITH_GT)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("odd"))
    written = coco_fixtures.write_odd_coco_dataset(root)
    dataset = coco_json.load_coco_dataset(
        object_annotations_file=written["annotations_file"], include_masks=True
    )
    summary = coco_tfrecord_writer.write_coco_shards(
        dataset,
        written["image_dir"],
        os.path.join(root, "records", "odd"),
        3,
        include_masks=True,
        num_workers=1,
    )
    files = sorted(glob.glob(os.path.join(root, "records", "odd-*")))
    records = [r for f in files for r in tf.io.tf_record_iterator(f)]
    return written["expected"], summary, files, records


def test_conversion_summary(converted):
    expected, summary, files, records = converted
    assert len(files) == 3
    assert summary.num_images == len(records) == expected["num_images"]
    assert summary.num_objects == expected["num_valid_objects"]
    assert sum(summary.objects_skipped.values()) == expected["num_zero_size"]
    assert summary.num_images_without_objects == len(expected["image_ids_without_objects"])
    assert summary.num_objects_clipped >= expected["num_overshooting"]
    # RGB and grayscale JPEGs are stored as they are; PNGs and CMYK JPEGs are re-encoded.
    needs_reencoding = [
        info
        for info in expected["images"].values()
        if info["format"] != "JPEG" or info["mode"] not in ("RGB", "L")
    ]
    assert len(needs_reencoding) == 3
    assert sum(summary.images_reencoded.values()) == len(needs_reencoding)


def test_every_record_decodes_to_rgb_with_masks(converted):
    expected, _, _, records = converted
    decoder = tf_example_decoder.TfExampleDecoder(include_mask=True)
    seen = set()
    with tf.Graph().as_default():
        serialized = tf.placeholder(tf.string, [])
        decoded = decoder.decode(serialized)
        with tf.Session() as sess:
            for record in records:
                data = sess.run(decoded, {serialized: record})
                image_id = int(data["source_id"])
                info = expected["images"][image_id]
                seen.add(image_id)
                assert data["image"].shape == (info["height"], info["width"], 3)
                corner = data["image"][:4, :4].reshape([-1, 3]).astype(np.int32)
                # Decoded background is the declared colour (JPEG loses a little).
                assert np.abs(corner - np.asarray(info["rgb"])).max() <= 12, image_id
                num = len(data["groundtruth_classes"])
                assert data["groundtruth_boxes"].shape == (num, 4)
                assert data["groundtruth_instance_masks"].shape == (
                    num,
                    info["height"],
                    info["width"],
                )
                boxes = data["groundtruth_boxes"]
                assert ((boxes >= 0) & (boxes <= 1)).all()
                assert (boxes[:, 2:] > boxes[:, :2]).all()
                assert set(data["groundtruth_classes"]) <= set(expected["category_ids"])
                masks = data["groundtruth_instance_masks"]
                if num:
                    assert (masks.reshape([num, -1]).max(axis=1) > 0).all()
                assert num == info["num_objects"] - len(
                    set(info["annotation_ids"]) & set(expected["cases"]["zero_size"])
                )
    assert seen == set(expected["images"])


@pytest.mark.parametrize("model", ["retinanet", "mask_rcnn"])
def test_every_record_parses_for_both_models(converted, model):
    _, _, _, records = converted
    params = loader.load_config(
        model,
        params_override={"architecture": {"num_classes": 91}},
    )
    with tf.Graph().as_default():
        serialized = tf.placeholder(tf.string, [])
        outputs = {mode: factory.parser_generator(params, mode)(serialized) for mode in _MODES}
        with tf.Session() as sess:
            for record in records:
                for mode in _MODES:
                    image, labels = sess.run(outputs[mode], {serialized: record})
                    assert np.isfinite(image).all()
                    assert image.shape[-1] == 3
                    if mode == mode_keys.TRAIN:
                        continue
                    assert labels["image_info"].shape == (4, 2)
                    groundtruths = labels["groundtruths"]
                    assert (groundtruths["num_detections"] >= 0).all()
            if model == "mask_rcnn":
                image, labels = sess.run(outputs[mode_keys.TRAIN], {serialized: records[0]})
                assert labels["gt_masks"].ndim == 3
