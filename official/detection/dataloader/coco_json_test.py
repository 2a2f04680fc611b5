"""Tests for coco_json: indexing of valid files and every error message."""

import copy
import json
import re

import pytest

from official.detection.dataloader import coco_json


def _objects():
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 4, "width": 5},
            {"id": 2, "file_name": "b.jpg", "height": 2, "width": 3},
            {"id": 3, "file_name": "c.jpg", "height": 2, "width": 3},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 90, "name": "toothbrush"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 90, "bbox": [0, 0, 2, 2], "area": 4.0,
             "iscrowd": 0, "segmentation": [[0, 0, 2, 0, 2, 2]]},
            {"id": 11, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 1,
             "segmentation": {"size": [2, 3], "counts": [1, 2, 3]}},
            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [1, 1, 1, 1],
             "segmentation": {"size": [4, 5], "counts": "abc"}},
        ],
    }  # fmt: skip


def _write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_load_objects_indexes_by_image(tmp_path):
    path = _write(tmp_path, _objects())
    dataset = coco_json.load_coco_dataset(object_annotations_file=path, include_masks=True)
    assert [image.id for image in dataset.images] == [1, 2, 3]
    assert dataset.images[0] == coco_json.CocoImage(1, "a.jpg", 4, 5)
    assert dataset.category_names == {1: "person", 90: "toothbrush"}
    assert [a["id"] for a in dataset.objects_by_image[1]] == [10, 12]
    assert [a["id"] for a in dataset.objects_by_image[2]] == [11]
    assert 3 not in dataset.objects_by_image
    assert dataset.captions_by_image is None


def test_image_info_file_chooses_images_and_captions(tmp_path):
    info = _write(tmp_path, {"images": [{"id": 7, "file_name": "t.jpg", "height": 3, "width": 3}]})
    captions = _write(
        tmp_path,
        {"images": _objects()["images"], "annotations": [{"id": 1, "image_id": 2, "caption": "x"}]},
        "captions.json",
    )
    dataset = coco_json.load_coco_dataset(info, "", captions)
    assert [image.id for image in dataset.images] == [7]
    assert dataset.objects_by_image is None and dataset.category_names == {}
    assert dataset.captions_by_image == {2: ["x"]}
    only_captions = coco_json.load_coco_dataset(caption_annotations_file=captions)
    assert [image.id for image in only_captions.images] == [1, 2, 3]


def test_no_file_given():
    with pytest.raises(ValueError, match="give at least one of image_info_file"):
        coco_json.load_coco_dataset("", None, "")


def test_missing_file_and_not_json(tmp_path):
    with pytest.raises(coco_json.CocoFormatError, match=r"nope\.json: no such file"):
        coco_json.load_json(str(tmp_path / "nope.json"))
    path = _write(tmp_path, "{'images': [")
    with pytest.raises(coco_json.CocoFormatError, match=r"ann\.json is not valid JSON: Expecting"):
        coco_json.load_json(path)
    path = _write(tmp_path, "[1, 2]")
    with pytest.raises(coco_json.CocoFormatError, match="top level must be a JSON object.*list"):
        coco_json.load_json(path)


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(tmp_path, key):
    data = _objects()
    del data[key]
    path = _write(tmp_path, data)
    with pytest.raises(coco_json.CocoFormatError, match=f"missing top-level key '{key}'"):
        coco_json.load_coco_dataset(object_annotations_file=path)


def _error_for(tmp_path, edit, include_masks=False):
    data = copy.deepcopy(_objects())
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(coco_json.CocoFormatError) as info:
        coco_json.load_coco_dataset(object_annotations_file=path, include_masks=include_masks)
    assert str(info.value).startswith(path + ": ")
    return str(info.value)


@pytest.mark.parametrize("key", ["id", "file_name", "height", "width"])
def test_image_missing_key(tmp_path, key):
    message = _error_for(tmp_path, lambda d: d["images"][1].pop(key))
    assert f"image {'at index 1' if key == 'id' else 'id 2 (index 1)'} is missing '{key}'" in (
        message
    )


@pytest.mark.parametrize(
    "field,value,expected",
    [
        ("height", 0, "image id 2 (index 1) has height 0; expected a positive int"),
        ("width", "3", "image id 2 (index 1) has width '3'; expected a positive int"),
        ("file_name", "", "has file_name ''; expected a name"),
        ("id", 1, "image id 1 (index 1) repeats the id of the image at index 0"),
        ("id", 2.5, "has id 2.5; expected an int or a string"),
    ],
)
def test_bad_image_entry(tmp_path, field, value, expected):
    assert expected in _error_for(tmp_path, lambda d: d["images"][1].update({field: value}))


@pytest.mark.parametrize("key", ["image_id", "bbox", "category_id"])
def test_annotation_missing_key(tmp_path, key):
    message = _error_for(tmp_path, lambda d: d["annotations"][2].pop(key))
    assert f"annotation id 12 (index 2) is missing '{key}'" in message


def test_annotation_unknown_image_and_category(tmp_path):
    message = _error_for(tmp_path, lambda d: d["annotations"][1].update(image_id=999))
    assert "annotation id 11 (index 1) refers to image_id 999 which is not in 'images'" in message
    message = _error_for(tmp_path, lambda d: d["annotations"][0].update(category_id=7))
    assert (
        "annotation id 10 (index 0) refers to category_id 7 which is not in 'categories' "
        "(ids: 1, 90)" in message
    )


@pytest.mark.parametrize(
    "edit,expected",
    [
        (lambda a: a.update(bbox=[0, 0, 1]), r"has bbox \[0, 0, 1\]; expected 4 numbers"),
        (lambda a: a.update(area="big"), "has area 'big'; expected a number"),
        (lambda a: a.pop("segmentation"), "has no 'segmentation', needed for masks"),
        (lambda a: a.update(segmentation=[[0, 0, 1]]), r"polygon part \[0, 0, 1\]"),
        (lambda a: a.update(segmentation="x"), "has segmentation 'x'; expected a list of polygons"),
        (
            lambda a: a.update(segmentation={"size": [2, 3], "counts": "ab"}),
            r"RLE of size \[2, 3\] but its image 1 is \[4, 5\]",
        ),
        (
            lambda a: a.update(segmentation={"size": [4, 5], "counts": [1, 2]}),
            "not non-negative ints summing to height \\* width = 20",
        ),
        (
            lambda a: a.update(segmentation={"size": [4, 5], "counts": 3}),
            "RLE counts of type int; expected a string",
        ),
    ],
)
def test_bad_annotation_values(tmp_path, edit, expected):
    message = _error_for(tmp_path, lambda d: edit(d["annotations"][0]), include_masks=True)
    assert "annotation id 10 (index 0)" in message
    assert re.search(expected, message), message


def test_segmentation_not_checked_without_masks(tmp_path):
    data = _objects()
    data["annotations"][0]["segmentation"] = "x"
    path = _write(tmp_path, data)
    dataset = coco_json.load_coco_dataset(object_annotations_file=path, include_masks=False)
    assert len(dataset.objects_by_image[1]) == 2


def test_bad_categories_and_captions(tmp_path):
    message = _error_for(tmp_path, lambda d: d["categories"][1].update(id=1))
    assert "category id 1 (index 1) repeats an earlier category id" in message
    message = _error_for(tmp_path, lambda d: d["categories"][0].pop("name"))
    assert "category id 1 (index 0) is missing 'name'" in message
    captions = {"images": _objects()["images"], "annotations": [{"id": 5, "image_id": 4}]}
    path = _write(tmp_path, captions)
    with pytest.raises(coco_json.CocoFormatError, match="caption annotation id 5 .* 'caption'"):
        coco_json.load_coco_dataset(caption_annotations_file=path)
    captions["annotations"][0]["caption"] = "hi"
    path = _write(tmp_path, captions)
    with pytest.raises(coco_json.CocoFormatError, match="image_id 4 which is not in 'images'"):
        coco_json.load_coco_dataset(caption_annotations_file=path)
