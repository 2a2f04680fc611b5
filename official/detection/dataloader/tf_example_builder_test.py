"""Tests for the tf.train.Example builder used by fixtures and the benchmark."""

import io

import numpy as np
import pytest
from PIL import Image

from official.detection.dataloader import tf_example_builder as builder


def test_features_follow_the_schema():
    boxes = [[0.1, 0.2, 0.3, 0.4]]
    example = builder.build_example(
        b"jpeg-bytes", 48, 64, boxes, [18], source_id="9", is_crowd=[1], areas=[12.5]
    )
    feature = example.features.feature
    assert feature["image/height"].int64_list.value == [48]
    assert feature["image/width"].int64_list.value == [64]
    assert feature["image/source_id"].bytes_list.value == [b"9"]
    assert feature["image/format"].bytes_list.value == [b"jpeg"]
    np.testing.assert_allclose(feature["image/object/bbox/ymin"].float_list.value, [0.1])
    np.testing.assert_allclose(feature["image/object/bbox/xmin"].float_list.value, [0.2])
    np.testing.assert_allclose(feature["image/object/bbox/ymax"].float_list.value, [0.3])
    np.testing.assert_allclose(feature["image/object/bbox/xmax"].float_list.value, [0.4])
    assert feature["image/object/class/label"].int64_list.value == [18]
    assert feature["image/object/is_crowd"].int64_list.value == [1]
    assert len(feature["image/key/sha256"].bytes_list.value[0]) == 64
    assert "image/object/mask" not in feature


def test_mask_png_keeps_0_1_values():
    mask = np.zeros([5, 7], np.uint8)
    mask[1:3, 2:6] = 1
    decoded = np.asarray(Image.open(io.BytesIO(builder.encode_mask(mask))))
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, mask)


def test_box_class_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="got 2 boxes but 1 classes"):
        builder.build_example(b"x", 4, 4, [[0, 0, 1, 1], [0, 0, 1, 1]], [1])
