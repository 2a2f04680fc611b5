"""Tests for the TFRecord decoder on hand-built examples."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.dataloader import tf_example_builder as builder
from official.detection.dataloader import tf_example_decoder

H, W = 48, 64


def _image():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=[H, W, 3]).astype(np.uint8)


def _decode(example, **kwargs):
    with tf.Graph().as_default():
        decoder = tf_example_decoder.TfExampleDecoder(**kwargs)
        serialized = tf.constant(example.SerializeToString())
        outputs = decoder.decode(serialized)
        with tf.Session() as sess:
            return sess.run(outputs), outputs


def _two_object_example(**kwargs):
    boxes = [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]]
    return builder.build_example(
        builder.encode_image(_image(), "png"),
        H,
        W,
        boxes,
        [3, 90],
        source_id="397133",
        is_crowd=[0, 1],
        areas=[100.0, 3072.0],
        image_format="png",
        **kwargs,
    )


def test_decodes_boxes_classes_and_metadata():
    values, tensors = _decode(_two_object_example())
    np.testing.assert_array_equal(values["image"], _image())  # PNG is lossless.
    assert values["source_id"] == b"397133"
    assert (values["height"], values["width"]) == (H, W)
    np.testing.assert_allclose(
        values["groundtruth_boxes"], [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]]
    )
    np.testing.assert_array_equal(values["groundtruth_classes"], [3, 90])
    np.testing.assert_array_equal(values["groundtruth_is_crowd"], [False, True])
    np.testing.assert_allclose(values["groundtruth_area"], [100.0, 3072.0])
    assert tensors["groundtruth_classes"].dtype == tf.int32
    assert tensors["height"].dtype == tf.int32
    assert tensors["image"].shape.as_list() == [None, None, 3]
    assert "groundtruth_instance_masks" not in values


def test_missing_optional_features_get_defaults():
    example = builder.build_example(
        builder.encode_image(_image(), "jpeg"), H, W, [[0.0, 0.0, 0.5, 0.25]], [7], source_id=""
    )
    values, _ = _decode(example)
    assert values["image"].shape == (H, W, 3)
    np.testing.assert_array_equal(values["groundtruth_is_crowd"], [False])
    # Area from the box: 0.5 * H * 0.25 * W.
    np.testing.assert_allclose(values["groundtruth_area"], [0.5 * H * 0.25 * W])
    # Empty source id falls back to a decimal hash of the image bytes.
    assert values["source_id"].isdigit()


def test_regenerate_source_id_ignores_record_id():
    values, _ = _decode(_two_object_example(), regenerate_source_id=True)
    assert values["source_id"] != b"397133" and values["source_id"].isdigit()


def test_decodes_masks():
    mask_a = np.zeros([H, W], np.uint8)
    mask_a[5:20, 10:30] = 1
    mask_b = np.ones([H, W], np.uint8)
    pngs = [builder.encode_mask(mask_a), builder.encode_mask(mask_b)]
    example = _two_object_example(masks_png=pngs)
    values, tensors = _decode(example, include_mask=True)
    assert tensors["groundtruth_instance_masks"].dtype == tf.float32
    np.testing.assert_array_equal(values["groundtruth_instance_masks"], [mask_a, mask_b])
    assert list(values["groundtruth_instance_masks_png"]) == pngs

    values, tensors = _decode(example, include_mask=True, mask_dtype=tf.uint8)
    assert tensors["groundtruth_instance_masks"].dtype == tf.uint8
    np.testing.assert_array_equal(values["groundtruth_instance_masks"], [mask_a, mask_b])

    values, _ = _decode(example, include_mask=True, decode_masks=False)
    assert "groundtruth_instance_masks" not in values
    assert list(values["groundtruth_instance_masks_png"]) == pngs


def test_masks_stored_as_0_255_are_binarised_as_float():
    mask = np.zeros([H, W], np.uint8)
    mask[:10] = 255
    example = _two_object_example(masks_png=[builder.encode_mask(mask)] * 2)
    values, _ = _decode(example, include_mask=True)
    np.testing.assert_array_equal(values["groundtruth_instance_masks"][0], mask // 255)
    values, _ = _decode(example, include_mask=True, mask_dtype=tf.uint8)
    np.testing.assert_array_equal(values["groundtruth_instance_masks"][0], mask)


def test_zero_objects():
    example = builder.build_example(
        builder.encode_image(_image(), "jpeg"), H, W, source_id="5", masks_png=[]
    )
    values, _ = _decode(example, include_mask=True)
    assert values["groundtruth_boxes"].shape == (0, 4)
    assert values["groundtruth_classes"].shape == (0,)
    assert values["groundtruth_is_crowd"].shape == (0,)
    assert values["groundtruth_area"].shape == (0,)
    assert values["groundtruth_instance_masks"].shape == (0, H, W)
    assert values["groundtruth_instance_masks_png"].shape == (0,)


def test_missing_size_comes_from_image():
    example = builder.build_example(builder.encode_image(_image(), "jpeg"), H, W)
    del example.features.feature["image/height"]
    del example.features.feature["image/width"]
    values, _ = _decode(example)
    assert (values["height"], values["width"]) == (H, W)


def test_bad_mask_dtype_is_rejected():
    with pytest.raises(TypeError, match="mask_dtype must be tf.float32 or tf.uint8"):
        tf_example_decoder.TfExampleDecoder(include_mask=True, mask_dtype=tf.int64)
