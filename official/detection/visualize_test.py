import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from official.detection import visualize

BLACK = np.zeros((48, 64, 3), np.uint8)


def _rle(height, width, rows, cols):
    mask = np.zeros((height, width), np.uint8, order="F")
    mask[rows, cols] = 1
    rle = mask_util.encode(mask)
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


DETECTIONS = [
    {"image_id": 2, "category_id": 7, "bbox": [10, 20, 20, 20], "score": 0.9},
    {
        "image_id": 2,
        "category_id": 3,
        "bbox": [40, 20, 10, 10],
        "score": 0.8,
        "segmentation": _rle(48, 64, slice(22, 30), slice(42, 50)),
    },
]


def _colour(category_id):
    return np.array(visualize.category_colour(category_id))


def test_boxes_masks_and_labels_at_the_images_size():
    pixels = np.asarray(visualize.draw_image(BLACK, DETECTIONS, {7: "circle"}, min_size=0))
    assert pixels.shape == (48, 64, 3)
    # Outlines 2 pixels wide, inside the box: left edge x = 10, 11 at mid height.
    np.testing.assert_array_equal(pixels[30, 10], _colour(7))
    np.testing.assert_array_equal(pixels[30, 11], _colour(7))
    assert pixels[30, 12].max() == 0
    # The mask is tinted toward its colour, not opaque.
    np.testing.assert_allclose(pixels[26, 45].astype(float), 0.45 * _colour(3), atol=1)
    # The label sits on the box, above it: category colour with black text.
    label = pixels[5:20, 10:40].reshape(-1, 3)
    assert (label == _colour(7)).all(-1).sum() > 50 and (label == 0).all(-1).sum() > 10


def test_small_images_are_enlarged_with_their_boxes_and_masks():
    image = Image.fromarray(BLACK)
    pixels = np.asarray(visualize.draw_image(image, DETECTIONS, {}, min_size=3 * 64 + 10))
    assert pixels.shape == (3 * 48, 3 * 64, 3)
    np.testing.assert_array_equal(pixels[3 * 30, 3 * 10], _colour(7))
    np.testing.assert_allclose(pixels[3 * 26, 3 * 45].astype(float), 0.45 * _colour(3), atol=1)


def _label_height(image, x, y):
    """Rows of the label above a box with top-left corner (x, y), in its margin column."""
    box = [{"category_id": 1, "bbox": [x, y, 100, 100], "score": 0.5}]
    pixels = np.asarray(visualize.draw_image(image, box, {1: "person"}, min_size=0))
    return int((pixels[:y, x + 1] == _colour(1)).all(-1).sum()), pixels


def test_lines_and_labels_grow_with_large_images():
    small_height, _ = _label_height(np.zeros((500, 500, 3), np.uint8), 100, 200)
    large_height, pixels = _label_height(np.zeros((1000, 2000, 3), np.uint8), 500, 400)
    # 1 + 2000 // 512 = 4 steps: outlines 8 pixels wide, labels drawn 4 times larger.
    assert small_height >= 10 and large_height == 4 * small_height
    row = (pixels[450, 495:515] == _colour(1)).all(-1)
    assert row.tolist() == [False] * 5 + [True] * 8 + [False] * 7


def test_a_box_at_the_top_has_its_label_inside():
    pixels = np.asarray(
        visualize.draw_image(
            BLACK, [{"category_id": 7, "bbox": [5, 0, 40, 30], "score": 1.0}], {}, min_size=0
        )
    )
    assert (pixels[3, 8:30] == _colour(7)).all(-1).any()


def test_select_detections_keeps_the_best_above_the_threshold():
    detections = [{"score": s} for s in (0.2, 0.9, 0.5, 0.7, 0.31)]
    selected = visualize.select_detections(detections, 0.3, 3)
    assert [d["score"] for d in selected] == [0.9, 0.7, 0.5]
    assert visualize.select_detections(detections, 0.95, 3) == []


def test_enlargement_is_a_whole_factor_up_to_min_size():
    assert visualize.enlargement(64, 48, 512) == 8
    assert visualize.enlargement(100, 30, 512) == 5
    assert visualize.enlargement(600, 400, 512) == 1
    assert visualize.enlargement(64, 48, 0) == 1
