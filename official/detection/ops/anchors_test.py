"""Tests for multilevel anchors and the flatten/unflatten helpers."""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.ops import anchors as anchors_lib

RETINANET = dict(
    min_level=3, max_level=7, num_scales=3, aspect_ratios=[1.0, 2.0, 0.5], anchor_size=4.0
)


def _eval(fn):
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(fn())


def _reference_anchors(min_level, max_level, num_scales, aspect_ratios, anchor_size, image_size):
    """Slow loop over cells and anchors, written from the layout description."""
    boxes = []
    for level in range(min_level, max_level + 1):
        stride = 2**level
        for row in range(math.ceil(image_size[0] / stride)):
            for col in range(math.ceil(image_size[1] / stride)):
                cy, cx = (row + 0.5) * stride, (col + 0.5) * stride
                for scale in range(num_scales):
                    for ratio in aspect_ratios:
                        size = anchor_size * stride * 2 ** (scale / num_scales)
                        h, w = size / math.sqrt(ratio), size * math.sqrt(ratio)
                        boxes.append([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])
    return np.array(boxes)


def test_first_anchors_of_level_3_hand_computed():
    anchors = anchors_lib.Anchors(image_size=[64, 64], **RETINANET)
    level3 = anchors.multilevel_boxes_numpy[3]
    assert level3.shape == (8, 8, 9, 4)
    half_32 = 16.0  # size 4 * 8 = 32 at scale 0
    expected_cell_00 = {
        0: [-12.0, -12.0, 20.0, 20.0],  # scale 2**0, ratio 1: 32 x 32 around (4, 4)
        1: [-7.3137085, -18.627417, 15.3137085, 26.627417],  # ratio 2: h 22.63, w 45.25
        2: [-18.627417, -7.3137085, 26.627417, 15.3137085],  # ratio 0.5: h 45.25, w 22.63
        3: [-16.158737, -16.158737, 24.158737, 24.158737],  # scale 2**(1/3): 40.317 square
        6: [-21.398417, -21.398417, 29.398417, 29.398417],  # scale 2**(2/3): 50.797 square
    }
    for k, box in expected_cell_00.items():
        np.testing.assert_allclose(level3[0, 0, k], box, rtol=1e-6, atol=1e-5)
    # Next cell to the right: centre x = 12.
    np.testing.assert_allclose(level3[0, 1, 0], [-12, 12 - half_32, 20, 12 + half_32], atol=1e-6)
    # Flattened order: level, row, column, then anchor.
    np.testing.assert_array_equal(anchors.boxes_numpy[:9], level3[0, 0])
    np.testing.assert_array_equal(anchors.boxes_numpy[9:18], level3[0, 1])


def test_anchor_counts_per_level_and_total():
    anchors = anchors_lib.Anchors(image_size=[640, 640], **RETINANET)
    assert anchors.feature_sizes == {3: (80, 80), 4: (40, 40), 5: (20, 20), 6: (10, 10), 7: (5, 5)}
    assert anchors.anchors_per_location == 9
    assert anchors.num_anchors == 9 * (6400 + 1600 + 400 + 100 + 25) == 76725
    assert anchors.level_offsets == {3: 0, 4: 57600, 5: 72000, 6: 75600, 7: 76500}
    rpn = anchors_lib.Anchors(2, 6, 1, [1.0, 2.0, 0.5], 8.0, [1024, 1024])
    assert rpn.num_anchors == 3 * (256**2 + 128**2 + 64**2 + 32**2 + 16**2) == 261888


def test_non_divisible_image_size_rounds_cells_up():
    anchors = anchors_lib.Anchors(3, 5, 1, [1.0], 2.0, [100, 130])
    assert anchors.feature_sizes == {3: (13, 17), 4: (7, 9), 5: (4, 5)}
    assert anchors.multilevel_boxes_numpy[3].shape == (13, 17, 1, 4)
    # The last row is centred at 12.5 * 8 = 100, on the bottom edge of the image.
    np.testing.assert_allclose(anchors.multilevel_boxes_numpy[3][-1, 0, 0], [92, -4, 108, 12])
    tensors = _eval(lambda: anchors_lib.generate_anchors(3, 5, 1, [1.0], 2.0, [100, 130]))
    assert {level: t.shape for level, t in tensors.items()} == {
        3: (13, 17, 4),
        4: (7, 9, 4),
        5: (4, 5, 4),
    }


@pytest.mark.parametrize(
    "layout, image_size",
    [
        (RETINANET, [128, 96]),
        (
            dict(
                min_level=2, max_level=6, num_scales=1, aspect_ratios=[1.0, 2.0, 0.5], anchor_size=8
            ),
            [96, 160],
        ),
        (
            dict(min_level=3, max_level=4, num_scales=2, aspect_ratios=[1.5], anchor_size=3),
            [40, 24],
        ),
    ],
)
def test_matches_slow_reference(layout, image_size):
    anchors = anchors_lib.Anchors(image_size=image_size, **layout)
    np.testing.assert_allclose(
        anchors.boxes_numpy,
        _reference_anchors(image_size=image_size, **layout),
        rtol=1e-6,
        atol=2e-5,
    )


def test_tensors_match_numpy_and_channel_layout():
    anchors = anchors_lib.Anchors(image_size=[64, 32], **RETINANET)
    with tf.Graph().as_default(), tf.Session() as sess:
        boxes, multilevel, flat = sess.run(
            [
                anchors.boxes,
                anchors.multilevel_boxes,
                anchors_lib.flatten_multilevel(anchors.multilevel_boxes),
            ]
        )
    np.testing.assert_array_equal(boxes, anchors.boxes_numpy)
    np.testing.assert_array_equal(flat, boxes)
    # Channels 4k..4k+3 of a cell hold anchor k.
    np.testing.assert_array_equal(
        multilevel[4][1, 1, 8:12], anchors.multilevel_boxes_numpy[4][1, 1, 2]
    )
    # Constants are rebuilt for each graph the anchors are used in.
    assert _eval(lambda: anchors.boxes).shape == (anchors.num_anchors, 4)


def test_flatten_unflatten_round_trip():
    sizes = {3: (4, 3), 4: (2, 2)}
    labels = np.arange(16 * 2).astype(np.int32)  # A = 2 anchors per cell
    boxes = np.arange(16 * 2 * 4).reshape(32, 4).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        unflat_labels = anchors_lib.unflatten_multilevel(tf.constant(labels), sizes)
        unflat_boxes = anchors_lib.unflatten_multilevel(tf.constant(boxes), sizes)
        batched = {lv: tf.stack([v, v + 1]) for lv, v in unflat_boxes.items()}
        out = sess.run(
            {
                "labels": unflat_labels,
                "boxes": unflat_boxes,
                "labels_flat": anchors_lib.flatten_multilevel(unflat_labels, None),
                "boxes_flat": anchors_lib.flatten_multilevel(unflat_boxes),
                "batched_flat": anchors_lib.flatten_multilevel(batched),
            }
        )
    assert out["labels"][3].shape == (4, 3, 2) and out["labels"][4].shape == (2, 2, 2)
    assert out["boxes"][3].shape == (4, 3, 8)
    np.testing.assert_array_equal(out["labels"][4][0, 1], [26, 27])
    np.testing.assert_array_equal(out["labels_flat"], labels)
    np.testing.assert_array_equal(out["boxes_flat"], boxes)
    assert out["batched_flat"].shape == (2, 32, 4)
    np.testing.assert_array_equal(out["batched_flat"][1], boxes + 1)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(min_level=5, max_level=3),
            ValueError,
            r"`min_level` must be <= `max_level`; received 5 > 3",
        ),
        (dict(min_level=-1), ValueError, r"`min_level` must be an int >= 0; received -1"),
        (dict(num_scales=0), ValueError, r"`num_scales` must be an int >= 1; received 0"),
        (dict(aspect_ratios=[]), ValueError, r"`aspect_ratios` must be a non-empty list"),
        (dict(aspect_ratios=[1.0, -2.0]), ValueError, r"positive numbers; received \[1.0, -2.0\]"),
        (dict(anchor_size=0), ValueError, r"`anchor_size` must be a positive number; got 0"),
        (
            dict(image_size=[64]),
            ValueError,
            r"`image_size` must be \[height, width\] of positive ints",
        ),
        (dict(image_size=[64.5, 64]), ValueError, r"positive ints; received \[64.5, 64\]"),
    ],
)
def test_layout_errors(kwargs, error, message):
    layout = dict(RETINANET, image_size=[64, 64])
    layout.update(kwargs)
    with pytest.raises(error, match=message):
        anchors_lib.Anchors(**layout)


def test_tensor_image_size_is_a_type_error():
    with tf.Graph().as_default():
        with pytest.raises(TypeError, match=r"`image_size` must be two Python ints"):
            anchors_lib.generate_anchors(image_size=tf.constant([64, 64]), **RETINANET)


def test_flatten_unflatten_errors():
    with tf.Graph().as_default():
        with pytest.raises(
            ValueError, match=r"multiple of the 16 cells in `sizes`; received shape \[30\]"
        ):
            anchors_lib.unflatten_multilevel(tf.zeros([30]), {3: (4, 3), 4: (2, 2)})
        with pytest.raises(ValueError, match=r"level 3 must be \[H, W, C\] or \[B, H, W, C\]"):
            anchors_lib.flatten_multilevel({3: tf.zeros([4, 4])})
        with pytest.raises(
            ValueError, match=r"levels must be all \[H, W, C\] or all .* ranks \[3, 4\]"
        ):
            anchors_lib.flatten_multilevel({3: tf.zeros([2, 2, 4]), 4: tf.zeros([1, 1, 1, 4])})
