import json
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from official.detection.datasets import shapes

_SIZE = 128
_OPTIONS = shapes.ShapesOptions(image_size=_SIZE)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes"))
    paths = shapes.write_dataset(root, num_train=30, num_val=6, seed=3, options=_OPTIONS)
    return root, paths, COCO(paths["train_annotations_file"])


def _files(root):
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as stream:
                found[os.path.relpath(path, root)] = stream.read()
    return found


def test_layout_and_coco_fields(dataset):
    root, paths, coco = dataset
    assert paths["train_image_dir"] == os.path.join(root, "train2017")
    assert sorted(os.listdir(os.path.join(root, "annotations"))) == [
        "instances_train2017.json",
        "instances_val2017.json",
    ]
    data = coco.dataset
    assert set(data) == {"info", "licenses", "images", "annotations", "categories"}
    assert data["categories"] == [dict(c) for c in shapes.CATEGORIES]
    assert [image["id"] for image in data["images"]] == list(range(1, 31))
    for image in data["images"]:
        assert (image["height"], image["width"]) == (_SIZE, _SIZE)
        with Image.open(os.path.join(root, "train2017", image["file_name"])) as pil_image:
            assert (pil_image.format, pil_image.mode, pil_image.size) == ("JPEG", "RGB", (128, 128))
    ids = [a["id"] for a in data["annotations"]]
    assert len(ids) == len(set(ids))
    assert all(a["iscrowd"] == 0 for a in data["annotations"])
    val = COCO(paths["val_annotations_file"]).dataset
    assert [image["id"] for image in val["images"]] == list(range(1000001, 1000007))
    assert set(os.listdir(os.path.join(root, "val2017"))) == {
        f"{i:012d}.jpg" for i in range(1000001, 1000007)
    }


def test_num_classes_counts_background_and_sparse_ids():
    ids = [c["id"] for c in shapes.CATEGORIES]
    assert ids == [1, 2, 4, 5, 7, 9]
    assert shapes.NUM_CLASSES == 10
    assert set(shapes.CATEGORY_COLORS) == {c["name"] for c in shapes.CATEGORIES}


def test_bbox_and_area_match_decoded_masks(dataset):
    _, _, coco = dataset
    for annotation in coco.dataset["annotations"]:
        mask = coco.annToMask(annotation)
        ys, xs = np.nonzero(mask)
        tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        np.testing.assert_allclose(annotation["bbox"], tight, atol=1.0)
        assert annotation["area"] == pytest.approx(mask.sum(), rel=0.01)


def test_visible_masks_do_not_overlap_and_match_pixels(dataset):
    root, _, coco = dataset
    colors = np.array([shapes.CATEGORY_COLORS[c["name"]] for c in shapes.CATEGORIES])
    category_ids = [c["id"] for c in shapes.CATEGORIES]
    for image_id, image_info in coco.imgs.items():
        annotations = coco.imgToAnns[image_id]
        if not annotations:
            continue
        masks = np.stack([coco.annToMask(a) for a in annotations])
        assert masks.sum(axis=0).max() <= 1
        pixels = np.asarray(Image.open(os.path.join(root, "train2017", image_info["file_name"])))
        for annotation, mask in zip(annotations, masks):
            median = np.median(pixels[mask.astype(bool)], axis=0)
            nearest = np.argmin(np.abs(colors - median).sum(axis=1))
            assert category_ids[nearest] == annotation["category_id"]


def test_dataset_properties(dataset):
    _, _, coco = dataset
    annotations = coco.dataset["annotations"]
    assert {a["category_id"] for a in annotations} == {c["id"] for c in shapes.CATEGORIES}
    per_image = [len(coco.imgToAnns[i]) for i in coco.imgs]
    assert 1 <= min(per_image) and max(per_image) <= _OPTIONS.max_objects
    boxes = np.array([a["bbox"] for a in annotations])
    touching = (
        (boxes[:, 0] == 0)
        | (boxes[:, 1] == 0)
        | (boxes[:, 0] + boxes[:, 2] == _SIZE)
        | (boxes[:, 1] + boxes[:, 3] == _SIZE)
    )
    assert 0 < touching.sum() < 0.5 * len(boxes)
    occluded = [a for a in annotations if isinstance(a["segmentation"], dict)]
    assert 0 < len(occluded) < 0.5 * len(annotations)
    for annotation in occluded:
        assert isinstance(annotation["segmentation"]["counts"], str)
        assert annotation["segmentation"]["size"] == [_SIZE, _SIZE]
    areas = boxes[:, 2] * boxes[:, 3]
    assert areas.max() / areas.min() > 10
    aspect = boxes[:, 2] / boxes[:, 3]
    assert aspect.min() < 0.5 and aspect.max() > 2.0


def test_unoccluded_polygons_are_exact(dataset):
    _, _, coco = dataset
    polygons = [a for a in coco.dataset["annotations"] if isinstance(a["segmentation"], list)]
    assert polygons
    for annotation in polygons:
        (polygon,) = annotation["segmentation"]
        points = np.reshape(polygon, [-1, 2])
        assert points.min() >= 0 and points.max() <= _SIZE
        assert annotation["area"] == coco.annToMask(annotation).sum()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    options = shapes.ShapesOptions(image_size=64)
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        shapes.write_dataset(
            str(tmp_path / name), num_train=3, num_val=2, seed=seed, options=options
        )
    first, second, other = (_files(str(tmp_path / name)) for name in "abc")
    assert len(first) == 7
    assert first == second
    assert set(first) == set(other)
    assert all(first[name] != other[name] for name in first)


def test_images_do_not_depend_on_split_length(tmp_path):
    options = shapes.ShapesOptions(image_size=64)
    shapes.write_split(str(tmp_path / "a"), "train2017", 2, seed=1, options=options)
    shapes.write_split(str(tmp_path / "b"), "train2017", 4, seed=1, options=options)
    small, large = _files(str(tmp_path / "a")), _files(str(tmp_path / "b"))
    image_names = [name for name in small if name.endswith(".jpg")]
    assert len(image_names) == 2
    assert all(small[name] == large[name] for name in image_names)


def test_empty_split_is_valid_coco(tmp_path):
    path = shapes.write_split(str(tmp_path), "val2017", 0, seed=0)
    coco = COCO(path)
    assert coco.dataset["images"] == [] and coco.dataset["annotations"] == []
    assert len(coco.cats) == len(shapes.CATEGORIES)


def test_no_objects_option(tmp_path):
    options = shapes.ShapesOptions(image_size=64, min_objects=0, max_objects=0)
    coco = COCO(shapes.write_split(str(tmp_path), "train2017", 2, options=options))
    assert len(coco.dataset["images"]) == 2 and coco.dataset["annotations"] == []


def test_killed_run_leaves_no_annotation_file(tmp_path, monkeypatch):
    path = shapes.write_split(str(tmp_path), "train2017", 2, options=shapes.ShapesOptions(64))
    calls = []

    def render_then_fail(rng, options):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(rng, options)

    original = shapes.render_image
    monkeypatch.setattr(shapes, "render_image", render_then_fail)
    with pytest.raises(KeyboardInterrupt):
        shapes.write_split(str(tmp_path), "train2017", 3, options=shapes.ShapesOptions(64))
    # The earlier run's annotation file is gone: it no longer describes the images.
    assert not os.path.exists(path)
    assert not [name for name in _files(str(tmp_path)) if name.endswith(".tmp")]


def test_info_records_the_arguments(tmp_path):
    path = shapes.write_split(str(tmp_path), "val2017", 1, seed=9, options=shapes.ShapesOptions(64))
    with open(path) as stream:
        generator = json.load(stream)["info"]["generator"]
    assert generator["seed"] == 9 and generator["image_size"] == 64
    assert generator["split"] == "val2017"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 16}, r"image_size must be in \[32, 4096\], got 16"),
        ({"image_size": "256"}, r"image_size must be an integer, got '256'"),
        ({"max_object_fraction": "big"}, r"max_object_fraction must be a number, got 'big'"),
        ({"min_objects": -1}, r"min_objects must be in \[0, 50\], got -1"),
        (
            {"min_objects": 4, "max_objects": 3},
            r"max_objects must be in \[min_objects \(4\), 50\], got 3",
        ),
        ({"min_object_fraction": 0.0}, r"min_object_fraction must be in \[0.01, 0.7\], got 0.0"),
        (
            {"min_object_fraction": 0.3, "max_object_fraction": 0.2},
            r"max_object_fraction must be in \[min_object_fraction \(0.3\), 0.7\], got 0.2",
        ),
        ({"jpeg_quality": 101}, r"jpeg_quality must be in \[1, 100\], got 101"),
    ],
)
def test_option_errors(kwargs, message):
    with pytest.raises(shapes.ShapesDatasetError, match=message):
        shapes.ShapesOptions(**kwargs).validate()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_train": -1}, r"num_train must be in \[0, 10000000\], got -1"),
        ({"num_val": 2.5}, r"num_val must be an integer, got 2.5"),
        ({"seed": -3}, r"seed must be in \[0, 4294967295\], got -3"),
    ],
)
def test_write_dataset_errors_before_writing(tmp_path, kwargs, message):
    root = str(tmp_path / "out")
    with pytest.raises(ValueError, match=message):
        shapes.write_dataset(root, **dict({"num_train": 1, "num_val": 1}, **kwargs))
    assert not os.path.exists(root)


def test_unknown_split(tmp_path):
    with pytest.raises(shapes.ShapesDatasetError, match=r"split must be one of .*got 'test2017'"):
        shapes.write_split(str(tmp_path), "test2017", 1)
