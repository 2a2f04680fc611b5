import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from official.detection import visualize as draw_detections


def _dataset(tmp_path):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    Image.new("RGB", (64, 48), (0, 0, 0)).save(image_dir / "a.jpg")
    Image.new("RGB", (64, 48), (0, 0, 0)).save(image_dir / "b.jpg")
    coco = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 48, "width": 64},
            {"id": 2, "file_name": "b.jpg", "height": 48, "width": 64},
        ],
        "categories": [{"id": 7, "name": "circle"}],
        "annotations": [],
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(coco))
    mask = np.zeros((48, 64), np.uint8, order="F")
    mask[20:30, 30:40] = 1
    rle = mask_util.encode(mask)
    rle["counts"] = rle["counts"].decode("ascii")
    dets = [
        {"image_id": 2, "category_id": 7, "bbox": [10, 10, 20, 20], "score": 0.9},
        {
            "image_id": 2,
            "category_id": 7,
            "bbox": [30, 20, 10, 10],
            "score": 0.8,
            "segmentation": rle,
        },
        {"image_id": 1, "category_id": 7, "bbox": [0, 0, 5, 5], "score": 0.1},
    ]
    det = tmp_path / "det.json"
    det.write_text(json.dumps(dets))
    return image_dir, ann, det


def test_draws_boxes_and_masks_of_confident_detections(tmp_path):
    image_dir, ann, det = _dataset(tmp_path)
    out = tmp_path / "out"
    written = draw_detections.draw_detections(
        str(det), str(ann), str(image_dir), str(out), num_images=1, score_threshold=0.3
    )
    assert [Path(p).name for p in written] == ["b.png"]  # the image with most detections
    pixels = np.asarray(Image.open(written[0]))
    colour = np.array(draw_detections.category_colour(7))
    # The box outline (left edge of the first box) has the category colour.
    np.testing.assert_array_equal(pixels[25, 10], colour)
    # The mask interior is tinted toward the colour but not opaque.
    inside = pixels[25, 35].astype(float)
    np.testing.assert_allclose(inside, 0.45 * colour, atol=2)


def test_low_scores_are_not_drawn(tmp_path):
    image_dir, ann, det = _dataset(tmp_path)
    written = draw_detections.draw_detections(
        str(det), str(ann), str(image_dir), str(tmp_path / "o"), num_images=2, score_threshold=0.3
    )
    a = np.asarray(Image.open([p for p in written if p.endswith("a.png")][0]))
    assert a.max() < 10  # still the black image


def test_detection_for_unknown_image_is_a_clear_error(tmp_path):
    image_dir, ann, det = _dataset(tmp_path)
    det.write_text(
        json.dumps([{"image_id": 99, "category_id": 7, "bbox": [0, 0, 1, 1], "score": 1}])
    )
    with pytest.raises(ValueError, match="image_id 99 which is not in"):
        draw_detections.draw_detections(
            str(det), str(ann), str(image_dir), str(tmp_path / "o"), num_images=1, score_threshold=0
        )


def test_cli_requires_flags():
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parents[2] / "scripts" / "draw_detections.py")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "--detections_file is required" in result.stderr


def test_small_images_are_enlarged_with_their_boxes_and_masks(tmp_path):
    image_dir, ann, det = _dataset(tmp_path)
    size = Image.open(image_dir / "b.jpg").size
    written = draw_detections.draw_detections(
        str(det),
        str(ann),
        str(image_dir),
        str(tmp_path / "big"),
        num_images=1,
        score_threshold=0.3,
        min_size=3 * max(size) + 1,
    )
    pixels = np.asarray(Image.open(written[0]))
    assert pixels.shape[:2] == (3 * size[1], 3 * size[0])
    colour = np.array(draw_detections.category_colour(7))
    # The same points as at scale 1, three times further from the origin.
    np.testing.assert_array_equal(pixels[3 * 25, 3 * 10], colour)
    np.testing.assert_allclose(pixels[3 * 25, 3 * 35].astype(float), 0.45 * colour, atol=2)
