import numpy as np
import pytest

from official.detection.evaluation.mask_paste import paste_instance_masks


def test_full_mask_fills_exactly_its_box():
    masks = np.ones((1, 28, 28), np.float32)
    pasted = paste_instance_masks(masks, [[2, 3, 6, 9]], 10, 12)
    expected = np.zeros((10, 12), np.uint8)
    expected[2:6, 3:9] = 1
    np.testing.assert_array_equal(pasted[0], expected)
    assert pasted.dtype == np.uint8


def test_one_hot_cell_covers_its_quarter_of_the_box():
    # A 2x2 mask with only the top-left cell on, in a 4x4 box: pixel centres at 0.5 and
    # 1.5 sample that cell with weights 0.75 per axis (0.5625 > 0.5), the rest <= 0.1875.
    masks = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    pasted = paste_instance_masks(masks, [[0, 0, 4, 4]], 4, 4)
    expected = np.zeros((4, 4), np.uint8)
    expected[:2, :2] = 1
    np.testing.assert_array_equal(pasted[0], expected)


def test_fractional_box_uses_pixel_centres():
    # Box rows [1.2, 3.9): centres 1.5, 2.5, 3.5 inside; cols [0.6, 2.4): centres 1.5 only
    # (0.5 and 2.5 lie outside, so they sample half padding at most).
    pasted = paste_instance_masks(np.ones((1, 5, 5)), [[1.2, 0.6, 3.9, 2.4]], 5, 4)
    expected = np.zeros((5, 4), np.uint8)
    expected[1:4, 1] = 1
    np.testing.assert_array_equal(pasted[0], expected)


def test_box_outside_the_image_is_cut_and_empty_boxes_give_empty_masks():
    masks = np.ones((3, 4, 4))
    boxes = [[-2, -2, 3, 3], [5, 5, 5, 9], [20, 20, 30, 30]]
    pasted = paste_instance_masks(masks, boxes, 6, 6)
    expected = np.zeros((6, 6), np.uint8)
    expected[:3, :3] = 1
    np.testing.assert_array_equal(pasted[0], expected)
    assert not pasted[1].any() and not pasted[2].any()


def test_soft_values_are_thresholded_and_interpolated():
    # Left column 0.9, right 0.2; box 4 px wide: x centres sample 0.675, 0.725, 0.375, 0.15
    # (the outer ones blend in a quarter of the zero padding).
    masks = np.array([[[0.9, 0.2], [0.9, 0.2]]])
    pasted = paste_instance_masks(masks, [[0, 0, 2, 4]], 2, 4)
    np.testing.assert_array_equal(pasted[0], [[1, 1, 0, 0], [1, 1, 0, 0]])


def test_shape_error():
    with pytest.raises(
        ValueError,
        match=r"need `masks` \[N, mh, mw\] and `boxes` \[N, 4\]; "
        r"received shapes \[2, 3, 3\] and \[1, 4\]",
    ):
        paste_instance_masks(np.ones((2, 3, 3)), [[0, 0, 1, 1]], 4, 4)
