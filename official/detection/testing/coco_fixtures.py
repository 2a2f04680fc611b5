"""Small COCO-format datasets on disk for converter, decoder and parser tests.

`write_odd_coco_dataset` writes a handful of awkward images and annotations, the
cases real COCO files contain and a converter must handle: non-square images,
grayscale / CMYK JPEGs and RGBA / palette PNGs, sparse category ids, crowd
regions as compressed and uncompressed RLE, multi-part polygons, images without
objects, 1-pixel boxes, a zero-width box and a box that overshoots the image by
rounding. `write_shapes_coco_dataset` writes a small synthetic shapes set.

Annotation conventions follow COCO: `bbox` is [x, y, w, h] in pixels (floats);
a polygon's `area` is its geometric area, an RLE's the number of its pixels.
"""

import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_api

from official.detection.datasets import shapes

ODD_CATEGORIES = (
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 7, "name": "train", "supercategory": "vehicle"},
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
)

# (image id, file name, width, height, PIL mode, intended RGB of the background).
# Objects stay out of the top-left 16 x 16 pixels (one JPEG block with chroma
# subsampling), so the decoded background there is within a few levels of `rgb`.
_ODD_IMAGES = (
    (1, "rgb_131x97.jpg", 131, 97, "RGB", (200, 60, 30)),
    (2, "gray_200x64.jpg", 200, 64, "L", (98, 98, 98)),
    (3, "rgba_320x240.png", 320, 240, "RGBA", (30, 90, 160)),
    (4, "cmyk_64x80.jpg", 64, 80, "CMYK", (40, 150, 70)),
    (11, "palette_90x50.png", 90, 50, "P", (120, 40, 140)),
    (12, "empty_33x77.jpg", 33, 77, "RGB", (60, 60, 60)),
)


# Far from every background colour, in RGB and in gray levels alike.
_OBJECT_COLORS = ((250, 250, 250), (10, 10, 10), (250, 220, 0), (0, 200, 250), (170, 0, 170))


def _rectangle(x, y, w, h):
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def _polygon_area(flat):
    points = np.reshape(np.asarray(flat, np.float64), [-1, 2])
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _polygon_annotation(category_id, polygons, bbox=None, tags=()):
    points = np.reshape(np.concatenate([np.asarray(p, np.float64) for p in polygons]), [-1, 2])
    if bbox is None:
        low, high = points.min(axis=0), points.max(axis=0)
        bbox = [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]
    return {
        "category_id": category_id,
        "segmentation": [list(p) for p in polygons],
        "area": sum(_polygon_area(p) for p in polygons),
        "bbox": bbox,
        "iscrowd": 0,
        "tags": tags,
    }


def _block_mask(height, width, rows, cols):
    mask = np.zeros((height, width), np.uint8)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = 1
    return mask


def _uncompressed_rle(mask):
    """COCO uncompressed RLE: run lengths of the column-major mask, starting with zeros."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def _crowd_annotation(category_id, mask, compressed):
    encoded = mask_api.encode(np.asfortranarray(mask))
    if compressed:
        segmentation = {"size": list(mask.shape), "counts": encoded["counts"].decode("ascii")}
        tag = "compressed_rle"
    else:
        segmentation = _uncompressed_rle(mask)
        tag = "uncompressed_rle"
    return {
        "category_id": category_id,
        "segmentation": segmentation,
        "area": float(mask.sum()),
        "bbox": [float(v) for v in mask_api.toBbox(encoded)],
        "iscrowd": 1,
        "tags": ("crowd", tag),
    }


def _odd_annotations():
    """Annotations per image id; `tags` name the odd cases and are removed before writing."""
    # An L-shaped (concave) outline, and two disjoint parts of one object.
    l_shape = [200, 100, 300, 100, 300, 130, 230, 130, 230, 220, 200, 220]
    two_parts = [_rectangle(60, 20, 20, 20), [90, 40, 110, 40, 100, 60]]
    return {
        1: [
            _polygon_annotation(1, [_rectangle(20.5, 18.25, 40, 30)]),
            _polygon_annotation(7, two_parts, tags=("multipart_polygon",)),
            _polygon_annotation(90, [_rectangle(5, 80, 1, 1)], tags=("tiny",)),
            _polygon_annotation(1, [_rectangle(20, 85, 2, 3)], tags=("tiny",)),
            _crowd_annotation(1, _block_mask(97, 131, (50, 90), (30, 70)), compressed=True),
        ],
        2: [
            _polygon_annotation(
                7, [[30, 20, 30, 40, 30, 40]], bbox=[30.0, 20.0, 0.0, 20.0], tags=("zero_size",)
            ),
            # x + w = 200.4 > width 200: a COCO box that overshoots by rounding.
            _polygon_annotation(1, [_rectangle(150.4, 20.0, 50.0, 30.0)], tags=("overshooting",)),
            _crowd_annotation(90, _block_mask(64, 200, (20, 50), (20, 60)), compressed=False),
            _polygon_annotation(1, [_rectangle(100, 30, 20, 20)]),
        ],
        3: [
            _polygon_annotation(90, [l_shape]),
            _polygon_annotation(7, [_rectangle(20, 20, 100, 60)]),
            # Ends exactly at the right and bottom edges: inside, not overshooting.
            _polygon_annotation(1, [_rectangle(250, 200, 70, 40)]),
        ],
        4: [_polygon_annotation(1, [_rectangle(20, 20, 30, 40)])],
    }


def _draw_image(height, width, rgb, annotations):
    """RGB uint8 [H, W, 3]: the background colour with each object's mask in its own colour."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rgb
    for index, annotation in enumerate(annotations):
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):
            rle = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation["counts"], list):
            rle = mask_api.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation, counts=segmentation["counts"].encode("ascii"))
        mask = mask_api.decode(rle).astype(bool)
        image[mask] = _OBJECT_COLORS[index % len(_OBJECT_COLORS)]
    return image


def _save_image(path, image, mode):
    pil_image = Image.fromarray(image)
    if mode == "P":
        pil_image = pil_image.quantize(colors=16)
    elif mode == "RGBA":
        alpha = np.full(image.shape[:2], 255, np.uint8)
        # Part of the image is half transparent; the background corner stays opaque.
        alpha[image.shape[0] // 2 :, image.shape[1] // 2 :] = 128
        pil_image = Image.fromarray(np.dstack([image, alpha]), mode="RGBA")
    else:
        pil_image = pil_image.convert(mode)
    if path.endswith(".png"):
        pil_image.save(path, format="PNG")
    else:
        pil_image.save(path, format="JPEG", quality=95)


def write_odd_coco_dataset(root_dir):
    """Writes the odd COCO set under root_dir; returns where it is and what it holds.

    Returns:
      dict with
        `image_dir`: root_dir/images, the image files;
        `annotations_file`: root_dir/annotations.json;
        `expected`: counts and per-case annotation ids, see below.
    `expected` keys: num_images, num_annotations, num_crowd, num_zero_size (w or h
    is 0), num_overshooting (x + w > width or y + h > height), num_valid_objects
    (w > 0 and h > 0, crowd included), num_valid_non_crowd, image_ids_without_objects,
    category_ids, category_names {id: name}, images {id: dict(file_name, height,
    width, format, mode, rgb (background colour, decoded to RGB), num_objects,
    annotation_ids)}, and cases {case: [annotation ids]} for the cases tiny,
    multipart_polygon, zero_size, overshooting, crowd, compressed_rle, uncompressed_rle.
    """
    image_dir = os.path.join(root_dir, "images")
    os.makedirs(image_dir, exist_ok=True)
    annotations_by_image = _odd_annotations()
    images, annotations = [], []
    expected_images = {}
    cases = {
        name: []
        for name in (
            "tiny",
            "multipart_polygon",
            "zero_size",
            "overshooting",
            "crowd",
            "compressed_rle",
            "uncompressed_rle",
        )
    }
    for image_id, file_name, width, height, mode, rgb in _ODD_IMAGES:
        objects = annotations_by_image.get(image_id, [])
        image = _draw_image(height, width, rgb, objects)
        _save_image(os.path.join(image_dir, file_name), image, mode)
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        annotation_ids = []
        for annotation in objects:
            annotation = dict(annotation, id=len(annotations) + 1, image_id=image_id)
            for tag in annotation.pop("tags"):
                cases[tag].append(annotation["id"])
            annotations.append(annotation)
            annotation_ids.append(annotation["id"])
        expected_images[image_id] = {
            "file_name": file_name,
            "height": height,
            "width": width,
            "format": "PNG" if file_name.endswith(".png") else "JPEG",
            "mode": mode,
            "rgb": rgb,
            "num_objects": len(objects),
            "annotation_ids": annotation_ids,
        }
    dataset = {
        "info": {"description": "odd COCO cases for tests", "version": "1.0", "year": 2017},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [dict(category) for category in ODD_CATEGORIES],
    }
    annotations_file = os.path.join(root_dir, "annotations.json")
    with open(annotations_file, "w") as stream:
        json.dump(dataset, stream)

    has_size = [min(a["bbox"][2:]) > 0 for a in annotations]
    num_zero_size = has_size.count(False)
    num_crowd = sum(a["iscrowd"] for a in annotations)
    empty_ids = [i["id"] for i in images if not expected_images[i["id"]]["num_objects"]]
    expected = {
        "num_images": len(images),
        "num_annotations": len(annotations),
        "num_crowd": num_crowd,
        "num_zero_size": num_zero_size,
        "num_overshooting": len(cases["overshooting"]),
        "num_valid_objects": len(annotations) - num_zero_size,
        "num_valid_non_crowd": sum(
            1 for a, sized in zip(annotations, has_size) if sized and not a["iscrowd"]
        ),
        "image_ids_without_objects": empty_ids,
        "category_ids": [c["id"] for c in ODD_CATEGORIES],
        "category_names": {c["id"]: c["name"] for c in ODD_CATEGORIES},
        "images": expected_images,
        "cases": cases,
    }
    return {"image_dir": image_dir, "annotations_file": annotations_file, "expected": expected}


def write_shapes_coco_dataset(root_dir, num_train, num_val, seed, image_size=128):
    """Writes a small shapes dataset (see official/detection/datasets/shapes.py).

    Returns:
      dict with `train_image_dir`, `train_annotations_file`, `val_image_dir`,
      `val_annotations_file`, and `num_classes` (largest category id + 1).
    """
    options = shapes.ShapesOptions(image_size=image_size)
    paths = shapes.write_dataset(root_dir, num_train, num_val, seed, options)
    return dict(paths, num_classes=shapes.NUM_CLASSES)
