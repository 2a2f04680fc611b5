"""Tests of the COCO -> TFRecord conversion: records, summary, shards, failures, the CLI.

A tiny COCO set is written with Pillow: an RGB JPEG with a two-part polygon, a 1x1 box,
a zero-width box, a box overshooting the edge and one outside the image; a grayscale
JPEG with a crowd in compressed RLE; an RGBA PNG with a crowd in uncompressed RLE; a
CMYK JPEG without objects; a palette PNG. Category ids are sparse (1, 7, 90).
"""

import glob
import hashlib
import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from pycocotools import mask as mask_api

from official.detection.dataloader import (
    coco_conversion,
    coco_json,
    coco_tfrecord_writer,
    tf_example_decoder,
)
from official.detection.testing import script_runs

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "create_coco_tf_record.py")
CATEGORIES = [{"id": 1, "name": "person"}, {"id": 7, "name": "train"}, {"id": 90, "name": "tb"}]
TWO_PARTS = [[4, 4, 20, 4, 20, 16, 4, 16], [24, 20, 36, 20, 36, 30, 24, 30]]


def _pixels(height, width):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x * y) % 256], -1).astype(np.uint8)


def _rect_mask(height, width, top, left, bottom, right):
    mask = np.zeros([height, width], np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def _uncompressed_rle(mask):
    """Column-major run lengths, starting with a run of zeros (COCO's list counts)."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat[0] else counts


def _area(segmentation, height, width):
    if isinstance(segmentation, list):
        rle = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_api.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation, counts=segmentation["counts"].encode())
    return float(mask_api.area(rle))


def _ann(ann_id, image, category_id, bbox, segmentation, iscrowd=0):
    return {
        "id": ann_id, "image_id": image["id"], "category_id": category_id, "bbox": bbox,
        "segmentation": segmentation, "iscrowd": iscrowd,
        "area": _area(segmentation, image["height"], image["width"]),
    }  # fmt: skip


def write_tiny_coco(root):
    """Writes images + instances.json + captions.json under `root`; returns their paths."""
    image_dir = os.path.join(root, "images")
    os.makedirs(image_dir)
    images = [
        {"id": 1, "file_name": "rgb.jpg", "height": 48, "width": 64},
        {"id": 2, "file_name": "gray.jpg", "height": 32, "width": 40},
        {"id": 3, "file_name": "rgba.png", "height": 40, "width": 48},
        {"id": 4, "file_name": "cmyk.jpg", "height": 32, "width": 32},
        {"id": 5, "file_name": "palette.png", "height": 24, "width": 30},
    ]
    saves = [("RGB", "JPEG"), ("L", "JPEG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("P", "PNG")]
    for image, (mode, image_format) in zip(images, saves):
        pixels = Image.fromarray(_pixels(image["height"], image["width"])).convert(mode)
        pixels.save(os.path.join(image_dir, image["file_name"]), format=image_format)
    gray_rle = mask_api.encode(np.asfortranarray(_rect_mask(32, 40, 5, 8, 15, 20)))
    gray_rle = {"size": [32, 40], "counts": gray_rle["counts"].decode("ascii")}
    rgba_rle = {"size": [40, 48], "counts": _uncompressed_rle(_rect_mask(40, 48, 2, 3, 12, 9))}
    tiny = [[10, 10, 11, 10, 11, 11, 10, 11]]
    edge = [[50, 30, 64, 30, 64, 48, 50, 48]]
    annotations = [
        _ann(101, images[0], 1, [4, 4, 32, 26], TWO_PARTS),
        _ann(102, images[0], 7, [10, 10, 1, 1], tiny),
        _ann(103, images[0], 90, [5, 5, 0, 10], tiny),
        _ann(104, images[0], 90, [50, 30, 30, 30], edge),
        _ann(105, images[0], 90, [70, 10, 5, 5], tiny),
        _ann(201, images[1], 1, [8, 5, 12, 10], gray_rle, iscrowd=1),
        _ann(301, images[2], 7, [3, 2, 6, 10], rgba_rle, iscrowd=1),
        _ann(501, images[4], 90, [2, 2, 10, 10], [[2, 2, 12, 2, 12, 12, 2, 12]]),
    ]
    instances = os.path.join(root, "instances.json")
    with open(instances, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": CATEGORIES}, f)
    captions = os.path.join(root, "captions.json")
    caption_entries = [{"id": 1, "image_id": 1, "caption": "a ramp"}]
    with open(captions, "w") as f:
        json.dump({"images": images, "annotations": caption_entries}, f)
    return image_dir, instances, captions


@pytest.fixture
def tiny_coco(tmp_path):
    return write_tiny_coco(str(tmp_path / "coco"))


def _records(path):
    return [tf.train.Example.FromString(r) for r in tf.io.tf_record_iterator(path)]


def _decode_image(encoded):
    # In a graph of its own: other tests in the same process may turn eager execution off.
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(tf.io.decode_image(encoded, channels=3))


def _convert(tiny_coco, prefix, num_shards=2, num_workers=2, **kwargs):
    image_dir, instances, captions = tiny_coco
    dataset = coco_json.load_coco_dataset("", instances, captions, include_masks=True)
    return coco_tfrecord_writer.write_coco_shards(
        dataset, image_dir, prefix, num_shards, include_masks=True, num_workers=num_workers,
        **kwargs,
    )  # fmt: skip


def test_records_summary_and_shards(tiny_coco, tmp_path):
    image_dir, instances, _ = tiny_coco
    prefix = str(tmp_path / "out" / "train")
    summary = _convert(tiny_coco, prefix)
    files = sorted(os.listdir(tmp_path / "out"))
    assert files == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert (summary.num_images, summary.num_objects, summary.num_objects_clipped) == (5, 6, 1)
    assert summary.num_images_without_objects == 1
    assert summary.objects_skipped == {
        "non-positive width or height": 1,
        "empty after clipping to the image": 1,
    }
    assert summary.images_reencoded == {"PNG RGBA": 1, "JPEG CMYK": 1, "PNG P": 1}
    # Image i goes to shard i % 2, in file order.
    shards = [_records(prefix + f"-0000{i}-of-00002.tfrecord") for i in range(2)]
    ids = [[r.features.feature["image/source_id"].bytes_list.value[0] for r in s] for s in shards]
    assert ids == [[b"1", b"3", b"5"], [b"2", b"4"]]

    with open(instances) as f:
        coco = json.load(f)
    for record in shards[0] + shards[1]:
        feature = record.features.feature
        image_id = int(feature["image/source_id"].bytes_list.value[0])
        image = next(i for i in coco["images"] if i["id"] == image_id)
        height, width = image["height"], image["width"]
        assert feature["image/height"].int64_list.value == [height]
        assert feature["image/width"].int64_list.value == [width]
        assert feature["image/filename"].bytes_list.value == [image["file_name"].encode()]
        assert feature["image/format"].bytes_list.value == [b"jpeg"]
        encoded = feature["image/encoded"].bytes_list.value[0]
        sha = hashlib.sha256(encoded).hexdigest().encode()
        assert feature["image/key/sha256"].bytes_list.value == [sha]
        with open(os.path.join(image_dir, image["file_name"]), "rb") as f:
            unchanged = f.read() == encoded
        assert unchanged == (image["file_name"] in ("rgb.jpg", "gray.jpg"))
        assert _decode_image(encoded).shape == (height, width, 3)

        # 103 (zero width) and 105 (outside the image) are skipped.
        kept = [
            a
            for a in coco["annotations"]
            if a["image_id"] == image_id and a["id"] not in (103, 105)
        ]
        assert list(feature["image/object/class/label"].int64_list.value) == [
            a["category_id"] for a in kept
        ]
        names = {c["id"]: c["name"].encode() for c in CATEGORIES}
        assert feature["image/object/class/text"].bytes_list.value == [
            names[a["category_id"]] for a in kept
        ]
        assert feature["image/object/is_crowd"].int64_list.value == [a["iscrowd"] for a in kept]
        np.testing.assert_allclose(
            feature["image/object/area"].float_list.value, [a["area"] for a in kept]
        )
        masks = feature["image/object/mask"].bytes_list.value
        assert len(masks) == len(kept)
        for png, annotation in zip(masks, kept):
            mask_image = Image.open(io.BytesIO(png))
            assert (mask_image.format, mask_image.mode) == ("PNG", "L")
            mask = np.asarray(mask_image)
            assert mask.shape == (height, width)
            assert set(np.unique(mask)) <= {0, 1}
            assert abs(mask.sum() - annotation["area"]) <= 0.02 * annotation["area"] + 1
        captions = [b"a ramp"] if image_id == 1 else []
        assert feature["image/caption"].bytes_list.value == captions

    first = shards[0][0].features.feature
    xmin, xmax = (first[f"image/object/bbox/{k}"].float_list.value for k in ("xmin", "xmax"))
    ymin, ymax = (first[f"image/object/bbox/{k}"].float_list.value for k in ("ymin", "ymax"))
    # Kept: the polygon box, the 1x1 box, and the overshooting box clipped to 64x48.
    np.testing.assert_allclose(xmin, [4 / 64, 10 / 64, 50 / 64])
    np.testing.assert_allclose(xmax, [36 / 64, 11 / 64, 1.0])
    np.testing.assert_allclose(ymin, [4 / 48, 10 / 48, 30 / 48])
    np.testing.assert_allclose(ymax, [30 / 48, 11 / 48, 1.0])


def test_records_decode_with_project_decoder(tiny_coco, tmp_path):
    prefix = str(tmp_path / "val")
    _convert(tiny_coco, prefix, num_shards=1, num_workers=1)
    serialized = next(tf.io.tf_record_iterator(prefix + "-00000-of-00001.tfrecord"))
    with tf.Graph().as_default(), tf.Session() as sess:
        decoded = tf_example_decoder.TfExampleDecoder(include_mask=True).decode(serialized)
        decoded = sess.run(decoded)
    assert decoded["image"].shape == (48, 64, 3)
    assert decoded["groundtruth_classes"].tolist() == [1, 7, 90]
    assert decoded["groundtruth_instance_masks"].shape == (3, 48, 64)
    np.testing.assert_allclose(decoded["groundtruth_boxes"][2], [30 / 48, 50 / 64, 1.0, 1.0])


def test_summary_format():
    summary = coco_tfrecord_writer.ConversionSummary(
        num_images=4, num_images_without_objects=1, num_objects=9, num_objects_clipped=2
    )
    summary.objects_skipped.update({"non-positive width or height": 3})
    summary.bad_images.append(("/d/x.jpg", "not a readable image (broken)"))
    assert summary.format("/o/train", 32, 12.34).splitlines() == [
        "Wrote 4 images and 9 objects to /o/train-*-of-00032.tfrecord (32 shards) in 12.3 s",
        "Images without objects: 1",
        "Objects skipped: 3 (non-positive width or height: 3)",
        "Objects clipped to the image: 2",
        "Images re-encoded as RGB JPEG: 0",
        "Bad images skipped: 1",
        "  /d/x.jpg: not a readable image (broken)",
    ]


def test_failed_run_keeps_earlier_output_and_leaves_no_temp_files(tiny_coco, tmp_path, monkeypatch):
    prefix = str(tmp_path / "train")
    _convert(tiny_coco, prefix, num_workers=1)
    before = {p: open(p, "rb").read() for p in glob.glob(prefix + "-*")}
    calls = []
    real_convert = coco_conversion.convert_image

    def fail_on_fourth(*args):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk on fire")
        return real_convert(*args)

    monkeypatch.setattr(coco_conversion, "convert_image", fail_on_fourth)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _convert(tiny_coco, prefix, num_workers=1)
    assert {p: open(p, "rb").read() for p in glob.glob(prefix + "-*")} == before


def test_stale_files_removed_and_unrelated_kept(tiny_coco, tmp_path):
    prefix = str(tmp_path / "train")
    stale = [prefix + "-00000-of-00002.tfrecord.tmp-99999", prefix + "-00002-of-00003.tfrecord"]
    unrelated = [prefix + "_more-00000-of-00001.tfrecord", str(tmp_path / "notes.txt")]
    for path in stale + unrelated:
        open(path, "w").close()
    _convert(tiny_coco, prefix)
    assert sorted(os.listdir(tmp_path)) == [
        "coco", "notes.txt", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
        "train_more-00000-of-00001.tfrecord",
    ]  # fmt: skip


def test_bad_image_fails_in_workers_or_is_skipped(tiny_coco, tmp_path):
    image_dir = tiny_coco[0]
    with open(os.path.join(image_dir, "gray.jpg"), "r+b") as f:
        f.truncate(200)
    prefix = str(tmp_path / "out" / "val")
    with pytest.raises(coco_conversion.BadImageError, match=r"gray\.jpg: not a readable image"):
        _convert(tiny_coco, prefix, num_shards=3)
    assert os.listdir(tmp_path / "out") == []
    summary = _convert(tiny_coco, prefix, num_shards=3, skip_bad_images=True)
    assert summary.num_images == 4
    assert [(os.path.basename(p), r[:20]) for p, r in summary.bad_images] == [
        ("gray.jpg", "not a readable image")
    ]
    assert sum(len(_records(p)) for p in glob.glob(prefix + "-*")) == 4


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork", reason="workers must inherit the patch"
)
def test_worker_killed_is_an_error_and_leaves_no_shards(tiny_coco, tmp_path, monkeypatch):
    real_convert = coco_conversion.convert_image

    def die_on_png(image, *args):
        if image.file_name.endswith(".png"):
            os._exit(3)
        return real_convert(image, *args)

    monkeypatch.setattr(coco_conversion, "convert_image", die_on_png)
    with pytest.raises(coco_tfrecord_writer.WorkerDiedError, match="worker process ended"):
        _convert(tiny_coco, str(tmp_path / "out" / "train"), num_shards=3)
    assert os.listdir(tmp_path / "out") == []


def test_images_only_from_image_info(tiny_coco, tmp_path):
    image_dir, instances, _ = tiny_coco
    dataset = coco_json.load_coco_dataset(image_info_file=instances)
    prefix = str(tmp_path / "test")
    summary = coco_tfrecord_writer.write_coco_shards(dataset, image_dir, prefix, 1)
    assert (summary.num_images, summary.num_objects) == (5, 0)
    records = _records(prefix + "-00000-of-00001.tfrecord")
    assert [r.features.feature["image/object/class/label"].int64_list.value for r in records] == (
        [[]] * 5
    )
    assert "image/object/mask" not in records[0].features.feature
    assert "image/caption" not in records[0].features.feature


def test_bad_arguments(tmp_path):
    dataset = coco_json.CocoDataset([], {}, None, None)
    prefix = str(tmp_path / "y")
    with pytest.raises(ValueError, match="num_shards must be >= 1, got 0"):
        coco_tfrecord_writer.write_coco_shards(dataset, str(tmp_path), prefix, 0)
    with pytest.raises(ValueError, match="num_workers must be >= 1, got 0"):
        coco_tfrecord_writer.write_coco_shards(dataset, str(tmp_path), prefix, 1, num_workers=0)
    with pytest.raises(ValueError, match="image_dir '/no/such/dir' is not a directory"):
        coco_tfrecord_writer.write_coco_shards(dataset, "/no/such/dir", prefix, 1)


def _run_script(*args):
    return script_runs.run_python_script(SCRIPT, *args, timeout=120)


def test_script_success_with_skipped_bad_image(tiny_coco, tmp_path):
    image_dir, instances, captions = tiny_coco
    os.remove(os.path.join(image_dir, "cmyk.jpg"))
    prefix = str(tmp_path / "val")
    result = _run_script(
        f"--image_dir={image_dir}", f"--object_annotations_file={instances}",
        f"--caption_annotations_file={captions}", f"--output_file_prefix={prefix}",
        "--num_shards=2", "--include_masks", "--skip_bad_images", "--num_workers=2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Wrote 4 images and 6 objects to {prefix}-*-of-00002.tfrecord")
    assert lines[2:6] == [
        "Objects skipped: 2 (empty after clipping to the image: 1, "
        "non-positive width or height: 1)",
        "Objects clipped to the image: 1",
        "Images re-encoded as RGB JPEG: 2 (PNG P: 1, PNG RGBA: 1)",
        "Bad images skipped: 1",
    ]
    assert lines[6].startswith(f"  {os.path.join(image_dir, 'cmyk.jpg')}: cannot read the image")
    assert "2/2 shards done" in result.stderr
    assert len(glob.glob(prefix + "-*-of-00002.tfrecord")) == 2


def test_script_errors_exit_1_with_message(tiny_coco, tmp_path):
    image_dir, instances, _ = tiny_coco
    os.remove(os.path.join(image_dir, "palette.png"))
    prefix = str(tmp_path / "out" / "train")
    args = [f"--image_dir={image_dir}", f"--output_file_prefix={prefix}", "--num_shards=2"]
    result = _run_script(*args, f"--object_annotations_file={instances}")
    assert result.returncode == 1
    assert "error: " + os.path.join(image_dir, "palette.png") + ": cannot read" in result.stderr
    assert "--skip_bad_images skips such images" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path / "out") == []

    with open(instances) as f:
        coco = json.load(f)
    coco["annotations"][3]["image_id"] = 999
    broken = str(tmp_path / "broken.json")
    with open(broken, "w") as f:
        json.dump(coco, f)
    result = _run_script(*args, f"--object_annotations_file={broken}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"create_coco_tf_record.py: error: {broken}: annotation id 104 (index 3) refers to "
        "image_id 999 which is not in 'images'"
    ]


def test_script_killed_mid_run_leaves_no_files(tiny_coco, tmp_path):
    image_dir, instances, _ = tiny_coco
    # Opening a FIFO blocks until someone writes to it: the run is stuck mid-shard.
    os.remove(os.path.join(image_dir, "rgba.png"))
    os.mkfifo(os.path.join(image_dir, "rgba.png"))
    prefix = str(tmp_path / "out" / "train")
    process = subprocess.Popen(
        [sys.executable, SCRIPT, f"--image_dir={image_dir}", f"--output_file_prefix={prefix}",
         f"--object_annotations_file={instances}", "--num_shards=1", "--num_workers=1"],
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )  # fmt: skip
    try:
        for line in process.stderr:
            if "Converting 5 images" in line:
                break
        deadline = time.time() + 60
        while not glob.glob(prefix + "*.tmp-*") and time.time() < deadline:
            time.sleep(0.05)
        assert len(glob.glob(prefix + "-00000-of-00001.tfrecord.tmp-*")) == 1
        process.terminate()
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.stderr.close()
    assert os.listdir(tmp_path / "out") == []
