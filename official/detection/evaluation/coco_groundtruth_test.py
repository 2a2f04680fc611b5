import io

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_api

from official.detection.evaluation import coco_groundtruth


def _png(mask):
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _batch(with_areas=True):
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:5] = 1  # 9 pixels inside the 4 x 4 box below
    batch = {
        "source_id": np.array([b"12", b"-1"], dtype=object),
        "height": np.array([6, 6]),
        "width": np.array([8, 8]),
        "num_detections": np.array([2, 1]),
        "boxes": np.array(
            [[[1, 2, 5, 6], [0, 0, 2, 3], [-1, -1, -1, -1]], [[0, 0, 1, 1]] + [[-1] * 4] * 2],
            np.float32,
        ),
        "classes": np.array([[3, 5, -1], [1, -1, -1]]),
        "is_crowds": np.array([[0, 1, 0], [0, 0, 0]]),
        "masks": np.array([[_png(mask), _png(mask), b""], [b"", b"", b""]], dtype=object),
    }
    if with_areas:
        batch["areas"] = np.array([[10.5, 6.0, -1], [1, -1, -1]], np.float32)
    return batch


def test_boxes_classes_crowds_and_dataset_areas():
    images, annotations = coco_groundtruth.convert_groundtruths(_batch())
    assert images == [{"id": 12, "height": 6, "width": 8}]  # the -1 image is padding
    assert annotations == [
        {"image_id": 12, "category_id": 3, "bbox": [2, 1, 4, 4], "iscrowd": 0, "area": 10.5},
        {"image_id": 12, "category_id": 5, "bbox": [0, 0, 3, 2], "iscrowd": 1, "area": 6.0},
    ]


def test_masks_become_rle_and_give_the_area_when_the_dataset_has_none():
    _, annotations = coco_groundtruth.convert_groundtruths(
        _batch(with_areas=False), include_mask=True
    )
    assert annotations[0]["area"] == 9.0
    rle = dict(annotations[0]["segmentation"])
    assert isinstance(rle["counts"], str) and rle["size"] == [6, 8]
    decoded = mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert decoded.sum() == 9 and decoded[1:4, 2:5].all()
    _, box_only = coco_groundtruth.convert_groundtruths(_batch(with_areas=False))
    assert box_only[0]["area"] == 16.0


def test_build_coco_dataset_numbers_annotations_and_names_categories():
    dataset = coco_groundtruth.build_coco_dataset(
        [{"id": 1, "height": 2, "width": 2}],
        [{"image_id": 1, "category_id": 2}, {"image_id": 1, "category_id": 2}],
        [2, 1, 2],
        label_map={2: "cat"},
    )
    assert [a["id"] for a in dataset["annotations"]] == [1, 2]
    assert dataset["categories"] == [{"id": 1, "name": "1"}, {"id": 2, "name": "cat"}]


@pytest.mark.parametrize(
    "value, expected", [(7, 7), (np.int64(-1), -1), (b"42", 42), ("42", 42), (b"", -1)]
)
def test_parse_image_id(value, expected):
    assert coco_groundtruth.parse_image_id(value, "test") == expected


def test_errors():
    with pytest.raises(ValueError, match=r"test: source_id 'x1' is not a decimal integer"):
        coco_groundtruth.parse_image_id("x1", "test")
    batch = _batch()
    del batch["masks"]
    with pytest.raises(ValueError, match="mask evaluation needs the `masks` field"):
        coco_groundtruth.convert_groundtruths(batch, include_mask=True)
    del batch["boxes"]
    with pytest.raises(ValueError, match=r"ground truth lacks \['boxes'\]"):
        coco_groundtruth.convert_groundtruths(batch)
