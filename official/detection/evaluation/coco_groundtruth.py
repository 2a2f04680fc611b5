"""COCO ground truth built from the `groundtruths` the eval parsers attach to each batch.

Used when `eval.val_json_file` is empty: the evaluator then collects, per image, the
ground truth decoded from the eval TFRecords and evaluates against that instead of an
annotation file. Field layout (per batch, B images, M padded instances; see
`dataloader/parser_ops.build_groundtruths`):

  source_id [B] int (or decimal strings), -1 for padding images of a partial batch;
  height, width [B] ints; num_detections [B] ints, the valid leading instances;
  boxes [B, M, 4] float [ymin, xmin, ymax, xmax] original-image pixels;
  classes [B, M] ints; optional areas [B, M], is_crowds [B, M], and masks [B, M] PNG
  strings (full-image, 8-bit, values {0, 1}).
"""

import io

import numpy as np
from PIL import Image
from pycocotools import mask as mask_api

REQUIRED_FIELDS = ("source_id", "height", "width", "num_detections", "boxes", "classes")


class EvaluationInputError(ValueError):
    """Predictions or ground truth handed to the evaluator are malformed."""


def parse_image_id(value, where):
    """COCO image id (int) from a source id given as int, bytes or str of an int.

    Padding images of a partial batch carry -1 (or an empty string); both give -1.
    """
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        if value == "":
            return -1
        try:
            return int(value)
        except ValueError:
            raise EvaluationInputError(
                f"{where}: source_id {value!r} is not a decimal integer; COCO image ids "
                "are integers (regenerate the TFRecords with the COCO image id as source_id)"
            ) from None
    return int(value)


def decode_png_mask(png_bytes):
    """uint8 [H, W] {0, 1} mask from the bytes of a PNG (any non-zero value is on)."""
    with Image.open(io.BytesIO(png_bytes)) as image:
        mask = np.asarray(image.convert("L"))
    return (mask > 0).astype(np.uint8)


def encode_rle(mask):
    """COCO RLE dict (counts as str, JSON-ready) of a uint8 [H, W] binary mask."""
    rle = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def check_fields(groundtruths, where):
    missing = [k for k in REQUIRED_FIELDS if k not in groundtruths]
    if missing:
        raise EvaluationInputError(
            f"{where}: ground truth lacks {missing}; received fields {sorted(groundtruths)}, "
            f"required {list(REQUIRED_FIELDS)} (plus masks for mask evaluation)"
        )


def convert_groundtruths(groundtruths, include_mask=False):
    """One batch of ground truth -> (images, annotations) as COCO dicts.

    Padding images (source_id -1) are skipped. Annotations get no `id` yet; ids are
    given when the dataset is assembled by `build_coco_dataset`.

    Args:
      groundtruths: dict of NumPy arrays, the fields in the module docstring.
      include_mask: decode `masks` into RLE `segmentation` (required then).

    Returns:
      (images, annotations): lists of {'id', 'height', 'width'} and of
      {'image_id', 'category_id', 'bbox' [x, y, w, h], 'area', 'iscrowd'
      (+ 'segmentation')}.
    """
    where = "COCO ground truth"
    check_fields(groundtruths, where)
    if include_mask and "masks" not in groundtruths:
        raise EvaluationInputError(
            f"{where}: mask evaluation needs the `masks` field (PNG strings); received "
            f"fields {sorted(groundtruths)}. Decode the eval records with include_mask."
        )
    images, annotations = [], []
    for b, source_id in enumerate(np.asarray(groundtruths["source_id"]).reshape(-1)):
        image_id = parse_image_id(source_id, where)
        if image_id < 0:
            continue
        height, width = int(groundtruths["height"][b]), int(groundtruths["width"][b])
        images.append({"id": image_id, "height": height, "width": width})
        for k in range(int(groundtruths["num_detections"][b])):
            ymin, xmin, ymax, xmax = (float(v) for v in groundtruths["boxes"][b][k])
            annotation = {
                "image_id": image_id,
                "category_id": int(groundtruths["classes"][b][k]),
                "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                "iscrowd": int(groundtruths["is_crowds"][b][k])
                if "is_crowds" in groundtruths
                else 0,
                "area": (xmax - xmin) * (ymax - ymin),
            }
            if include_mask:
                mask = decode_png_mask(groundtruths["masks"][b][k])
                annotation["segmentation"] = encode_rle(mask)
                annotation["area"] = float(mask.sum())
            if "areas" in groundtruths and groundtruths["areas"][b][k] > 0:
                # The dataset's own area (a polygon's or RLE's) decides small/medium/large.
                annotation["area"] = float(groundtruths["areas"][b][k])
            annotations.append(annotation)
    return images, annotations


def build_coco_dataset(images, annotations, category_ids, label_map=None):
    """A COCO ground-truth dataset dict (as loaded from an annotation JSON).

    Args:
      images: list of {'id', 'height', 'width'}.
      annotations: list of annotation dicts without ids; ids 1.. are assigned here.
      category_ids: iterable of the category ids to evaluate.
      label_map: optional {id: name} for category names.
    """
    label_map = label_map or {}
    numbered = [dict(annotation, id=i + 1) for i, annotation in enumerate(annotations)]
    categories = [
        {"id": int(c), "name": str(label_map.get(c, c))} for c in sorted(set(category_ids))
    ]
    return {"images": list(images), "annotations": numbered, "categories": categories}
