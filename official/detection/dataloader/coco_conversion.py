"""Converts one COCO image and its annotations into a serialized `tf.train.Example`.

The record follows the tensorflow/tpu detection schema (its
`dataloader/tf_example_decoder.py`; built by `tf_example_builder`), with these rules
of our own:
  - Images: the file's bytes are stored unchanged when they are a JPEG in RGB or
    grayscale (both decode to 3 channels with `tf.io.decode_image(channels=3)`).
    Anything else (PNG, GIF, BMP, CMYK/YCCK JPEG, palette or RGBA images) is re-encoded
    as an RGB JPEG of quality JPEG_QUALITY, so `image/format` is always 'jpeg'. Every
    image is decoded once with Pillow to prove it is whole; a missing or corrupt file or
    one whose size differs from the annotation raises BadImageError.
  - Boxes: COCO [x, y, width, height] in pixels. Boxes with a non-positive width or
    height are skipped; boxes overshooting the image are clipped to it (and counted);
    boxes left empty by clipping are skipped. Kept boxes are normalised by the image
    width/height of the annotation file.
  - Masks: polygons (any number of parts), compressed RLE (string counts) and
    uncompressed RLE (list counts) are rasterised with pycocotools into one full-image
    8-bit PNG per object, values {0, 1}. Polygon parts with fewer than 3 points are
    ignored (they cover no pixel).
  - Area: COCO 'area' as is; when an annotation has none, the clipped box's area.
"""

import collections
import io
import math
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_api

from official.detection.dataloader import tf_example_builder

JPEG_QUALITY = 95
# Pillow names these formats; both hold baseline/progressive JPEG data TF decodes.
_JPEG_FORMATS = ("JPEG", "MPO")
_JPEG_MODES_KEPT = ("RGB", "L")

SKIP_NON_FINITE = "non-finite box coordinates"
SKIP_NON_POSITIVE = "non-positive width or height"
SKIP_OUTSIDE = "empty after clipping to the image"

ConvertedImage = collections.namedtuple(
    "ConvertedImage", ["serialized", "num_objects", "skipped", "num_clipped", "reencoded"]
)
ConvertedImage.__doc__ = """The record of one image and what happened on the way.

serialized: bytes of the `tf.train.Example`.
num_objects: objects written.
skipped: collections.Counter {reason: objects skipped}, reasons SKIP_*.
num_clipped: objects whose box was clipped to the image.
reencoded: why the image was re-encoded (e.g. 'PNG RGBA'), or None if stored as is.
"""


class BadImageError(ValueError):
    """An image file is missing, unreadable, corrupt, or of another size than annotated."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):
        # Crosses process boundaries (raised in pool workers), so must pickle.
        return (BadImageError, (self.path, self.reason))


def read_image(path, height, width):
    """Reads and decodes one image file; re-encodes it when TF could not use it as is.

    Args:
      path: the image file.
      height, width: the size the annotation file gives, in pixels.

    Returns:
      (encoded bytes to store, reason string such as 'PNG RGBA' or None if unchanged).

    Raises:
      BadImageError: the file is missing, unreadable, not a whole image, or of another size.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadImageError(path, f"cannot read the image file ({e.strerror or e})") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != (width, height):
                raise BadImageError(
                    path,
                    f"image is {image.size[0]}x{image.size[1]} (width x height) but the "
                    f"annotation file says {width}x{height}",
                )
            if image.format in _JPEG_FORMATS and image.mode in _JPEG_MODES_KEPT:
                # Decoding at 1/8 scale still reads every entropy-coded byte, so truncation
                # is caught at a fraction of the cost of a full decode.
                image.draft(image.mode, (1, 1))
                image.load()
                return data, None
            reason = f"{image.format} {image.mode}"
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                image = image.convert("RGBA")
            output = io.BytesIO()
            image.convert("RGB").save(output, format="JPEG", quality=JPEG_QUALITY)
            return output.getvalue(), reason
    except BadImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise BadImageError(path, f"not a readable image ({e})") from None


def segmentation_to_mask(segmentation, height, width):
    """Rasterises one COCO segmentation.

    Args:
      segmentation: a list of polygons [[x1, y1, x2, y2, ...], ...] in pixels, or an RLE
        dict {'size': [height, width], 'counts': str (compressed) or [int] (uncompressed)}.
      height, width: the image size in pixels.

    Returns:
      uint8 NumPy array [height, width] with values {0, 1}.
    """
    if isinstance(segmentation, list):
        parts = [part for part in segmentation if len(part) >= 6]
        if not parts:
            return np.zeros([height, width], np.uint8)
        rle = mask_api.merge(mask_api.frPyObjects(parts, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_api.frPyObjects(segmentation, height, width)
    else:
        counts = segmentation["counts"]
        rle = {
            "size": [height, width],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
        }
    return np.ascontiguousarray(mask_api.decode(rle))


def clip_coco_box(bbox, height, width):
    """COCO [x, y, w, h] -> ((xmin, ymin, xmax, ymax) clipped to the image, was_clipped, skip).

    `skip` is None for a usable box, else one of the SKIP_* reasons (then the box is None).
    """
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None, False, SKIP_NON_FINITE
    if w <= 0 or h <= 0:
        return None, False, SKIP_NON_POSITIVE
    box = (max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height)))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None, False, SKIP_OUTSIDE
    return box, box != (x, y, x + w, y + h), None


def convert_objects(annotations, height, width, category_names, include_masks):
    """Turns one image's object annotations into the record's per-object lists.

    Args:
      annotations: list of COCO annotation dicts of the image (checked by coco_json).
      height, width: image size in pixels.
      category_names: {category id: name}.
      include_masks: also rasterise 'segmentation' into PNG masks.

    Returns:
      (objects, skipped, num_clipped): objects is a dict of equal-length lists:
      'boxes_normalized' [ymin, xmin, ymax, xmax] in [0, 1], 'classes' (sparse COCO ids),
      'class_names', 'is_crowd', 'areas', and with masks 'masks_png'; skipped is a
      Counter {reason: count}; num_clipped counts the kept boxes that were clipped.
    """
    objects = collections.defaultdict(list)
    skipped = collections.Counter()
    num_clipped = 0
    for annotation in annotations:
        box, clipped, skip = clip_coco_box(annotation["bbox"], height, width)
        if skip:
            skipped[skip] += 1
            continue
        num_clipped += int(clipped)
        xmin, ymin, xmax, ymax = box
        objects["boxes_normalized"].append(
            [ymin / height, xmin / width, ymax / height, xmax / width]
        )
        category_id = annotation["category_id"]
        objects["classes"].append(category_id)
        objects["class_names"].append(category_names[category_id])
        objects["is_crowd"].append(int(annotation.get("iscrowd", 0)))
        objects["areas"].append(float(annotation.get("area", (xmax - xmin) * (ymax - ymin))))
        if include_masks:
            mask = segmentation_to_mask(annotation["segmentation"], height, width)
            objects["masks_png"].append(tf_example_builder.encode_mask(mask))
    return objects, skipped, num_clipped


def convert_image(image, image_dir, annotations, captions, category_names, include_masks):
    """Builds the record of one image.

    Args:
      image: a coco_json.CocoImage.
      image_dir: directory holding `image.file_name`.
      annotations: the image's object annotation dicts, or None without an object file
        (then the record has empty object lists).
      captions: list of caption strings, or None to leave `image/caption` out.
      category_names: {category id: name}.
      include_masks: write `image/object/mask`.

    Returns:
      A ConvertedImage.

    Raises:
      BadImageError: see `read_image`.
    """
    path = os.path.join(image_dir, image.file_name)
    encoded, reencoded = read_image(path, image.height, image.width)
    objects, skipped, num_clipped = convert_objects(
        annotations or [], image.height, image.width, category_names, include_masks
    )
    example = tf_example_builder.build_example(
        encoded,
        image.height,
        image.width,
        objects["boxes_normalized"],
        objects["classes"],
        source_id=str(image.id),
        filename=image.file_name,
        is_crowd=objects["is_crowd"],
        areas=objects["areas"],
        masks_png=objects["masks_png"] if include_masks else None,
        class_names=objects["class_names"],
    )
    if captions is not None:
        caption_list = example.features.feature["image/caption"].bytes_list
        caption_list.value.extend(caption.encode("utf8") for caption in captions)
    return ConvertedImage(
        example.SerializeToString(), len(objects["classes"]), skipped, num_clipped, reencoded
    )
