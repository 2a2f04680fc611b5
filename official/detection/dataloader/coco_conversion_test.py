"""Tests for coco_conversion: image re-encoding rules, masks, box clipping, one record."""

import hashlib
import io

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from pycocotools import mask as mask_api

from official.detection.dataloader import coco_conversion, coco_json


def _pixels(height=24, width=32):
    """A smooth colour ramp: survives JPEG well, so decoded pixels can be compared."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 4 % 256], -1).astype(np.uint8)


def _save(path, image, image_format, **kwargs):
    image.save(str(path), format=image_format, **kwargs)
    return str(path)


def _decode(encoded):
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(tf.io.decode_image(encoded, channels=3))


def test_rgb_and_grayscale_jpeg_are_stored_unchanged(tmp_path):
    rgb = _save(tmp_path / "rgb.jpg", Image.fromarray(_pixels()), "JPEG")
    gray = _save(tmp_path / "gray.jpg", Image.fromarray(_pixels()).convert("L"), "JPEG")
    for path in (rgb, gray):
        encoded, reason = coco_conversion.read_image(path, 24, 32)
        assert reason is None
        with open(path, "rb") as f:
            assert encoded == f.read()
        assert _decode(encoded).shape == (24, 32, 3)
    gray_pixels = _decode(coco_conversion.read_image(gray, 24, 32)[0])
    np.testing.assert_array_equal(gray_pixels[..., 0], gray_pixels[..., 2])


@pytest.mark.parametrize(
    "name,mode,image_format,reason",
    [
        ("cmyk.jpg", "CMYK", "JPEG", "JPEG CMYK"),
        ("rgba.png", "RGBA", "PNG", "PNG RGBA"),
        ("rgb.png", "RGB", "PNG", "PNG RGB"),
        ("palette.png", "P", "PNG", "PNG P"),
        ("gray.png", "L", "PNG", "PNG L"),
    ],
)
def test_other_images_become_rgb_jpeg(tmp_path, name, mode, image_format, reason):
    source = Image.fromarray(_pixels())
    # An adaptive palette has no dithering noise, which JPEG would blur away.
    converted = (
        source.convert(mode, palette=Image.ADAPTIVE) if mode == "P" else source.convert(mode)
    )
    kwargs = {"transparency": 0} if mode == "P" else {}
    path = _save(tmp_path / name, converted, image_format, **kwargs)
    encoded, got_reason = coco_conversion.read_image(path, 24, 32)
    assert got_reason == reason
    assert Image.open(io.BytesIO(encoded)).format == "JPEG"
    decoded = _decode(encoded)
    assert decoded.shape == (24, 32, 3)
    expected = np.asarray(converted.convert("RGB"), np.float32)
    assert np.abs(decoded - expected).mean() < 6.0


def test_bad_images(tmp_path):
    good = _save(tmp_path / "good.jpg", Image.fromarray(_pixels()), "JPEG")
    with open(good, "rb") as f:
        data = f.read()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.jpg"
    text.write_bytes(b"not an image")
    cases = [
        (str(tmp_path / "missing.jpg"), "cannot read the image file"),
        (str(truncated), r"not a readable image \((?i:truncated)"),
        (str(text), "not a readable image.*cannot identify"),
    ]
    for path, message in cases:
        with pytest.raises(coco_conversion.BadImageError, match=f"{path}: {message}"):
            coco_conversion.read_image(path, 24, 32)
    with pytest.raises(coco_conversion.BadImageError, match="is 32x24 .* file says 30x24"):
        coco_conversion.read_image(good, 24, 30)


def test_bad_image_error_pickles():
    import pickle

    error = pickle.loads(pickle.dumps(coco_conversion.BadImageError("a.jpg", "broken")))
    assert (error.path, error.reason, str(error)) == ("a.jpg", "broken", "a.jpg: broken")


def test_polygon_with_two_parts():
    parts = [[1, 1, 9, 1, 9, 5, 1, 5], [12, 6, 18, 6, 18, 10, 12, 10], [0, 0, 1, 1]]
    mask = coco_conversion.segmentation_to_mask(parts, 12, 20)
    assert mask.dtype == np.uint8 and mask.shape == (12, 20)
    assert set(np.unique(mask)) == {0, 1}
    # The 3rd part has two points (no pixels); the others are 8x4 and 6x4 rectangles.
    expected_area = mask_api.area(mask_api.merge(mask_api.frPyObjects(parts[:2], 12, 20)))
    assert mask.sum() == expected_area
    assert abs(int(mask.sum()) - (8 * 4 + 6 * 4)) <= 8
    assert mask[3, 5] == 1 and mask[8, 15] == 1 and mask[8, 5] == 0


def test_rle_masks():
    # Uncompressed counts run down the columns: 4 zeros, 2 ones, 6 zeros in a 3x4 image.
    mask = coco_conversion.segmentation_to_mask({"size": [3, 4], "counts": [4, 2, 6]}, 3, 4)
    expected = np.zeros([3, 4], np.uint8)
    expected[1:3, 1] = 1
    np.testing.assert_array_equal(mask, expected)
    compressed = mask_api.encode(np.asfortranarray(expected))
    as_string = {"size": [3, 4], "counts": compressed["counts"].decode("ascii")}
    np.testing.assert_array_equal(coco_conversion.segmentation_to_mask(as_string, 3, 4), expected)
    assert coco_conversion.segmentation_to_mask([], 3, 4).sum() == 0


@pytest.mark.parametrize(
    "bbox,box,clipped,skip",
    [
        ([2, 3, 4, 5], (2, 3, 6, 8), False, None),
        ([0, 0, 1, 1], (0, 0, 1, 1), False, None),
        ([-2, 5, 4, 20], (0, 5, 2, 10), True, None),
        ([2, 3, 0, 5], None, False, coco_conversion.SKIP_NON_POSITIVE),
        ([2, 3, 4, -1], None, False, coco_conversion.SKIP_NON_POSITIVE),
        ([25, 3, 4, 4], None, False, coco_conversion.SKIP_OUTSIDE),
        ([20, 3, 4, 4], None, False, coco_conversion.SKIP_OUTSIDE),
        ([float("nan"), 3, 4, 4], None, False, coco_conversion.SKIP_NON_FINITE),
    ],
)
def test_clip_coco_box(bbox, box, clipped, skip):
    # The image is 10 high, 20 wide.
    assert coco_conversion.clip_coco_box(bbox, 10, 20) == (box, clipped, skip)


def test_convert_image_record(tmp_path):
    _save(tmp_path / "a.jpg", Image.fromarray(_pixels()), "JPEG")
    image = coco_json.CocoImage(42, "a.jpg", 24, 32)
    annotations = [
        {"bbox": [4, 6, 8, 12], "category_id": 90, "area": 70.5, "iscrowd": 0,
         "segmentation": [[4, 6, 12, 6, 12, 18, 4, 18]]},
        {"bbox": [4, 6, 0, 12], "category_id": 1, "segmentation": []},
        {"bbox": [30, 20, 8, 8], "category_id": 1, "segmentation": []},
    ]  # fmt: skip
    converted = coco_conversion.convert_image(
        image, str(tmp_path), annotations, ["a cat", "ünï"], {1: "person", 90: "toothbrush"}, True
    )
    assert converted.num_objects == 2 and converted.num_clipped == 1
    assert converted.skipped == {coco_conversion.SKIP_NON_POSITIVE: 1}
    assert converted.reencoded is None
    feature = tf.train.Example.FromString(converted.serialized).features.feature
    encoded = feature["image/encoded"].bytes_list.value[0]
    assert feature["image/key/sha256"].bytes_list.value == [
        hashlib.sha256(encoded).hexdigest().encode()
    ]
    assert feature["image/source_id"].bytes_list.value == [b"42"]
    assert feature["image/caption"].bytes_list.value == [b"a cat", "ünï".encode()]
    np.testing.assert_allclose(
        feature["image/object/bbox/xmin"].float_list.value, [4 / 32, 30 / 32]
    )
    np.testing.assert_allclose(feature["image/object/bbox/xmax"].float_list.value, [12 / 32, 1.0])
    np.testing.assert_allclose(
        feature["image/object/bbox/ymin"].float_list.value, [6 / 24, 20 / 24]
    )
    np.testing.assert_allclose(feature["image/object/bbox/ymax"].float_list.value, [18 / 24, 1.0])
    # No 'area' in the second kept object: the clipped box's 2 x 4 pixels.
    np.testing.assert_allclose(feature["image/object/area"].float_list.value, [70.5, 8.0])
    assert feature["image/object/is_crowd"].int64_list.value == [0, 0]
    assert feature["image/object/class/label"].int64_list.value == [90, 1]
    masks = [
        np.asarray(Image.open(io.BytesIO(png)))
        for png in feature["image/object/mask"].bytes_list.value
    ]
    assert [m.shape for m in masks] == [(24, 32), (24, 32)]
    assert masks[0].sum() == 8 * 12 and masks[1].sum() == 0
