"""Builds detection `tf.train.Example`s in the schema `TfExampleDecoder` reads (the tensorflow/tpu
detection schema).

The inverse of the decoder, in NumPy: tests, fixtures and the input-pipeline benchmark
use it to write small TFRecords without a COCO download.
"""

import hashlib
import io

import numpy as np
import tensorflow.compat.v1 as tf
from PIL import Image


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def encode_image(image, image_format="jpeg", quality=90):
    """uint8 [H, W, 3] NumPy image -> encoded bytes ('jpeg' or 'png')."""
    buffer = io.BytesIO()
    pil_format = {"jpeg": "JPEG", "png": "PNG"}[image_format]
    kwargs = {"quality": quality} if image_format == "jpeg" else {}
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format=pil_format, **kwargs)
    return buffer.getvalue()


def encode_mask(mask):
    """[H, W] NumPy mask in {0, 1} -> 8-bit grayscale PNG bytes (values stay {0, 1})."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def build_example(
    encoded_image,
    height,
    width,
    boxes_normalized=(),
    classes=(),
    *,
    source_id="1",
    filename="image.jpg",
    is_crowd=None,
    areas=None,
    masks_png=None,
    class_names=None,
    image_format="jpeg",
):
    """Returns a `tf.train.Example` holding one image and its objects.

    Args:
      encoded_image: the image file's bytes.
      height, width: ints written to `image/height` and `image/width`.
      boxes_normalized: [N, 4] float [ymin, xmin, ymax, xmax] in [0, 1].
      classes: [N] int COCO category ids.
      source_id: string written to `image/source_id` ('' to leave it empty).
      is_crowd: [N] ints, or None to leave the feature out.
      areas: [N] floats, or None to leave the feature out.
      masks_png: [N] PNG bytes (see `encode_mask`), or None for no mask feature.
      class_names: [N] strings for `image/object/class/text` (default: the ids).
    """
    boxes = np.asarray(boxes_normalized, np.float32).reshape([-1, 4])
    classes = [int(c) for c in classes]
    if len(classes) != boxes.shape[0]:
        raise ValueError(
            f"build_example: got {boxes.shape[0]} boxes but {len(classes)} classes; they must match"
        )
    if class_names is None:
        class_names = [str(c) for c in classes]
    feature = {
        "image/height": _ints([height]),
        "image/width": _ints([width]),
        "image/filename": _bytes([filename.encode("utf8")]),
        "image/source_id": _bytes([source_id.encode("utf8")]),
        "image/key/sha256": _bytes([hashlib.sha256(encoded_image).hexdigest().encode("utf8")]),
        "image/encoded": _bytes([encoded_image]),
        "image/format": _bytes([image_format.encode("utf8")]),
        "image/object/bbox/xmin": _floats(boxes[:, 1]),
        "image/object/bbox/xmax": _floats(boxes[:, 3]),
        "image/object/bbox/ymin": _floats(boxes[:, 0]),
        "image/object/bbox/ymax": _floats(boxes[:, 2]),
        "image/object/class/label": _ints(classes),
        "image/object/class/text": _bytes([n.encode("utf8") for n in class_names]),
    }
    if is_crowd is not None:
        feature["image/object/is_crowd"] = _ints([int(c) for c in is_crowd])
    if areas is not None:
        feature["image/object/area"] = _floats([float(a) for a in areas])
    if masks_png is not None:
        feature["image/object/mask"] = _bytes(masks_png)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_tfrecord(path, examples):
    """Writes `tf.train.Example`s (or serialized strings) to one TFRecord file."""
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            if not isinstance(example, bytes):
                example = example.SerializeToString()
            writer.write(example)
