import os

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from official.detection.testing import coco_fixtures


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    written = coco_fixtures.write_odd_coco_dataset(str(tmp_path_factory.mktemp("odd")))
    return written, COCO(written["annotations_file"])


def _annotation(coco, annotation_id):
    return coco.anns[annotation_id]


def test_counts_are_as_designed(odd):
    written, coco = odd
    expected = written["expected"]
    assert expected["num_images"] == len(coco.imgs) == 6
    assert expected["num_annotations"] == len(coco.anns) == 13
    assert expected["num_crowd"] == 2
    assert expected["num_zero_size"] == 1
    assert expected["num_overshooting"] == 1
    assert expected["num_valid_objects"] == 12
    assert expected["num_valid_non_crowd"] == 10
    assert expected["image_ids_without_objects"] == [11, 12]
    for image_id in expected["image_ids_without_objects"]:
        assert coco.imgToAnns[image_id] == []
    for image_id, info in expected["images"].items():
        assert [a["id"] for a in coco.imgToAnns[image_id]] == info["annotation_ids"]


def test_sparse_categories(odd):
    written, coco = odd
    assert sorted(coco.cats) == written["expected"]["category_ids"] == [1, 7, 90]
    assert {i: c["name"] for i, c in coco.cats.items()} == written["expected"]["category_names"]
    assert {a["category_id"] for a in coco.anns.values()} == {1, 7, 90}


def test_image_files_have_the_declared_format_mode_and_size(odd):
    written, coco = odd
    sizes = set()
    for image_id, info in written["expected"]["images"].items():
        assert coco.imgs[image_id]["file_name"] == info["file_name"]
        with Image.open(os.path.join(written["image_dir"], info["file_name"])) as image:
            assert (image.format, image.mode) == (info["format"], info["mode"])
            assert image.size == (info["width"], info["height"])
            assert (coco.imgs[image_id]["width"], coco.imgs[image_id]["height"]) == image.size
            corner = np.asarray(image.convert("RGB"))[:8, :8].reshape([-1, 3])
        np.testing.assert_allclose(corner.mean(axis=0), info["rgb"], atol=3)
        assert info["width"] != info["height"]
        sizes.add(image.size)
    assert {(131, 97), (200, 64), (320, 240)} <= sizes


def test_objects_are_painted_into_the_images(odd):
    written, coco = odd
    for annotation in coco.anns.values():
        if annotation["area"] < 100:
            continue
        info = coco.imgs[annotation["image_id"]]
        image = Image.open(os.path.join(written["image_dir"], info["file_name"])).convert("RGB")
        pixels = np.asarray(image, np.float64)
        inside = pixels[coco.annToMask(annotation).astype(bool)]
        background = written["expected"]["images"][info["id"]]["rgb"]
        assert np.abs(np.median(inside, axis=0) - background).max() > 20


def test_masks_areas_and_boxes_agree(odd):
    _, coco = odd
    for annotation in coco.anns.values():
        mask = coco.annToMask(annotation)
        assert mask.sum() == pytest.approx(annotation["area"])
        if mask.sum():
            ys, xs = np.nonzero(mask)
            x, y, w, h = annotation["bbox"]
            assert x - 1 < xs.min() and xs.max() < x + w
            assert y - 1 < ys.min() and ys.max() < y + h


def test_crowd_rle_forms(odd):
    written, coco = odd
    cases = written["expected"]["cases"]
    assert sorted(cases["crowd"]) == sorted(cases["compressed_rle"] + cases["uncompressed_rle"])
    (compressed,) = (_annotation(coco, i) for i in cases["compressed_rle"])
    (uncompressed,) = (_annotation(coco, i) for i in cases["uncompressed_rle"])
    for annotation in (compressed, uncompressed):
        assert annotation["iscrowd"] == 1
        info = coco.imgs[annotation["image_id"]]
        assert annotation["segmentation"]["size"] == [info["height"], info["width"]]
    assert isinstance(compressed["segmentation"]["counts"], str)
    counts = uncompressed["segmentation"]["counts"]
    assert isinstance(counts, list) and all(isinstance(c, int) for c in counts)
    assert sum(counts) == 64 * 200
    # A 30 x 40 block starting at row 20, column 20 of a 64-row image, column-major.
    assert counts[:3] == [20 * 64 + 20, 30, 34]
    assert coco.annToMask(uncompressed).sum() == 1200


def test_polygon_cases(odd):
    written, coco = odd
    cases = written["expected"]["cases"]
    (multipart,) = (_annotation(coco, i) for i in cases["multipart_polygon"])
    assert len(multipart["segmentation"]) == 2
    assert multipart["area"] == 20 * 20 + 0.5 * 20 * 20
    tiny = sorted(tuple(_annotation(coco, i)["bbox"][2:]) for i in cases["tiny"])
    assert tiny == [(1.0, 1.0), (2.0, 3.0)]
    assert [coco.annToMask(_annotation(coco, i)).sum() for i in cases["tiny"]] == [1, 6]
    (zero,) = (_annotation(coco, i) for i in cases["zero_size"])
    assert zero["bbox"][2] == 0 and zero["bbox"][3] > 0 and zero["area"] == 0
    assert coco.annToMask(zero).sum() == 0


def test_overshooting_box(odd):
    written, coco = odd
    (box,) = (_annotation(coco, i) for i in written["expected"]["cases"]["overshooting"])
    width = coco.imgs[box["image_id"]]["width"]
    assert box["bbox"][0] + box["bbox"][2] - width == pytest.approx(0.4)
    assert box["bbox"][0] < width
    others = [
        a for a in coco.anns.values() if a["id"] != box["id"] and not a["iscrowd"]
    ]  # every other box fits its image
    for annotation in others:
        info = coco.imgs[annotation["image_id"]]
        x, y, w, h = annotation["bbox"]
        assert x + w <= info["width"] and y + h <= info["height"]


def test_odd_set_is_deterministic(odd, tmp_path):
    written, _ = odd
    again = coco_fixtures.write_odd_coco_dataset(str(tmp_path))
    with open(written["annotations_file"], "rb") as a, open(again["annotations_file"], "rb") as b:
        assert a.read() == b.read()
    assert again["expected"] == written["expected"]


def test_write_shapes_coco_dataset(tmp_path):
    written = coco_fixtures.write_shapes_coco_dataset(str(tmp_path), 3, 1, seed=2, image_size=64)
    assert written["num_classes"] == 10
    train = COCO(written["train_annotations_file"])
    assert len(train.imgs) == 3 and all(i["width"] == 64 for i in train.imgs.values())
    assert len(os.listdir(written["train_image_dir"])) == 3
    assert len(COCO(written["val_annotations_file"]).imgs) == 1
    assert len(os.listdir(written["val_image_dir"])) == 1
