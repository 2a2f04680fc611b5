"""A synthetic COCO-format dataset of coloured shapes: the demo's default data.

Layout written by `write_dataset(output_dir, ...)`:
  output_dir/train2017/*.jpg, output_dir/val2017/*.jpg,
  output_dir/annotations/instances_{train,val}2017.json

Each image has a gradient background with a little noise and a handful of
shapes; each category has its own outline and its own colour so that a small
detector trained from scratch learns them in minutes. Shapes are painted in
order, later ones over earlier ones, and every annotation describes what is
visible:
  - `segmentation` is the exact polygon of an object nothing covers (clipped to
    the image when it crosses the border), and the compressed RLE of the visible
    pixels (counts as a string) for an object partly covered by later shapes;
  - `area` is the number of pixels of that mask, `bbox` [x, y, w, h] its tight
    box in whole pixels, `iscrowd` 0.
Every mask is the pycocotools rasterisation of the stored segmentation, and the
image is painted from the same masks, so masks and pixels agree exactly.
Occlusion is capped (each object keeps most of its pixels) and so is clipping at
the border, so no object is reduced to a sliver.

Output depends only on the arguments: image i of a split is drawn from
RandomState([seed, split, i]), JPEG quality is fixed and the JSON has no dates.
"""

import dataclasses
import io
import json
import math
import numbers
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_api

from official.detection.atomic_file import write_atomically
from official.detection.datasets import shape_geometry

# Sparse ids on purpose: label maps must not assume 1..N. NUM_CLASSES counts the
# background class 0, i.e. it is the largest id + 1 (`architecture.num_classes`).
CATEGORIES = (
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "rectangle", "supercategory": "shape"},
    {"id": 4, "name": "triangle", "supercategory": "shape"},
    {"id": 5, "name": "ellipse", "supercategory": "shape"},
    {"id": 7, "name": "star", "supercategory": "shape"},
    {"id": 9, "name": "cross", "supercategory": "shape"},
)
NUM_CLASSES = max(category["id"] for category in CATEGORIES) + 1

# Saturated, far-apart colours; backgrounds are greyish so they never match.
CATEGORY_COLORS = {
    "circle": (220, 40, 40),
    "rectangle": (40, 180, 60),
    "triangle": (50, 80, 225),
    "ellipse": (40, 205, 215),
    "star": (235, 215, 35),
    "cross": (205, 50, 200),
}

SPLITS = ("train2017", "val2017")
# Image and annotation ids of val start here, so the two splits never share an id.
_SPLIT_ID_OFFSET = {"train2017": 0, "val2017": 1000000}

_COLOR_JITTER = 20
# An object keeps at least this fraction of its pixels under later shapes, and at
# least this fraction of its outline's area inside the image.
_MIN_VISIBLE_FRACTION = 0.6
_MIN_INSIDE_FRACTION = 0.5
_MAX_PLACEMENT_TRIES = 30
# Centres stay this fraction of the image away from the border: large shapes still
# cross it often, small ones rarely.
_CENTER_MARGIN = 0.06
_MAX_EXTENT_FRACTION = 0.75


class ShapesDatasetError(ValueError):
    """A generator option is out of range."""


@dataclasses.dataclass(frozen=True)
class ShapesOptions:
    """How the images look; every field has a CLI flag of the same name."""

    image_size: int = 256  # height and width of every image, pixels
    min_objects: int = 2  # objects per image are uniform in [min_objects, max_objects]
    max_objects: int = 6
    min_object_fraction: float = 0.1  # object size (about sqrt(w*h)) / image_size,
    max_object_fraction: float = 0.4  # drawn log-uniformly between the two
    jpeg_quality: int = 90

    def validate(self):
        """Raises ShapesDatasetError naming the first option out of range."""
        _check_range("image_size", self.image_size, 32, 4096, integer=True)
        _check_range("min_objects", self.min_objects, 0, 50, integer=True)
        _check_range(
            "max_objects", self.max_objects, self.min_objects, 50, "min_objects", integer=True
        )
        _check_range("min_object_fraction", self.min_object_fraction, 0.01, 0.7)
        _check_range(
            "max_object_fraction",
            self.max_object_fraction,
            self.min_object_fraction,
            0.7,
            "min_object_fraction",
        )
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100, integer=True)


def _check_range(name, value, low, high, low_name=None, integer=False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        noun = "an integer" if integer else "a number"
        raise ShapesDatasetError(f"shapes dataset: {name} must be {noun}, got {value!r}")
    if not low <= value <= high:
        low_text = f"{low_name} ({low})" if low_name else str(low)
        raise ShapesDatasetError(
            f"shapes dataset: {name} must be in [{low_text}, {high}], got {value!r}"
        )


def _background(rng, height, width):
    """A linear gradient between two greyish colours, float32 [3, H, W] (channels first)."""
    colors = rng.uniform(60.0, 180.0, size=(2, 1)) + rng.uniform(-20.0, 20.0, size=(2, 3))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    xs = np.arange(width, dtype=np.float32) * np.float32(math.cos(angle))
    ys = np.arange(height, dtype=np.float32) * np.float32(math.sin(angle))
    ramp = ys[:, None] + xs[None, :]
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
    # Channels-first keeps the inner loops long; NumPy is slow on a trailing axis of 3.
    return np.stack([start + ramp * (end - start) for start, end in zip(*colors)])


def _rasterize(polygon, height, width):
    """Mask uint8 [H, W] of a flat [x0, y0, x1, y1, ...] polygon, as pycocotools draws it."""
    return mask_api.decode(mask_api.merge(mask_api.frPyObjects([polygon], height, width)))


def _tight_box(mask):
    """COCO [x, y, w, h] of the set pixels of a [H, W] mask, in whole pixels."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    return [
        float(cols[0]),
        float(rows[0]),
        float(cols[-1] - cols[0] + 1),
        float(rows[-1] - rows[0] + 1),
    ]


def _place_object(rng, name, labels, full_areas, visible_areas, options):
    """Tries random placements of one shape until one respects the visibility caps.

    Returns (flat rounded polygon, mask bool [H, W]) or None when every try failed.
    """
    height, width = labels.shape
    log_low = math.log(options.min_object_fraction * options.image_size)
    log_high = math.log(options.max_object_fraction * options.image_size)
    min_pixels = 0.4 * (options.min_object_fraction * options.image_size) ** 2
    for _ in range(_MAX_PLACEMENT_TRIES):
        size = math.exp(rng.uniform(log_low, log_high))
        center = (
            rng.uniform(_CENTER_MARGIN * width, (1.0 - _CENTER_MARGIN) * width),
            rng.uniform(_CENTER_MARGIN * height, (1.0 - _CENTER_MARGIN) * height),
        )
        outline = shape_geometry.make_shape(
            name, rng, size, center, _MAX_EXTENT_FRACTION * min(height, width)
        )
        clipped = shape_geometry.clip_polygon(outline, width, height)
        if len(clipped) < 3:
            continue
        # Rounded before rasterising, so the JSON polygon draws exactly this mask.
        polygon = [round(float(v), 2) for v in clipped.reshape(-1)]
        mask = _rasterize(polygon, height, width).astype(bool)
        area = int(mask.sum())
        if area < min_pixels or area < _MIN_INSIDE_FRACTION * shape_geometry.polygon_area(outline):
            continue
        covered = np.bincount(labels[mask] + 1, minlength=len(full_areas) + 1)[1:]
        remaining = np.asarray(visible_areas, np.int64) - covered
        if np.any(remaining < _MIN_VISIBLE_FRACTION * np.asarray(full_areas)):
            continue
        return polygon, mask
    return None


def render_image(rng, options):
    """Draws one image and its objects.

    Args:
      rng: numpy RandomState; the only source of randomness.
      options: ShapesOptions.

    Returns:
      (image uint8 [S, S, 3], objects) where objects is a list in painting order of
      dicts with `category_id`, `segmentation` (polygon list or compressed RLE
      dict), `area` (float, mask pixels) and `bbox` (COCO [x, y, w, h] floats).
    """
    size = options.image_size
    labels = np.full((size, size), -1, np.int32)
    categories, polygons, full_areas, visible_areas, colors = [], [], [], [], []
    for _ in range(rng.randint(options.min_objects, options.max_objects + 1)):
        category = CATEGORIES[rng.randint(len(CATEGORIES))]
        placed = _place_object(rng, category["name"], labels, full_areas, visible_areas, options)
        if placed is None:
            continue
        polygon, mask = placed
        covered = np.bincount(labels[mask] + 1, minlength=len(full_areas) + 1)[1:]
        visible_areas = [v - int(c) for v, c in zip(visible_areas, covered)]
        labels[mask] = len(full_areas)
        categories.append(category)
        polygons.append(polygon)
        full_areas.append(int(mask.sum()))
        visible_areas.append(int(mask.sum()))
        jitter = rng.randint(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3)
        colors.append(np.array(CATEGORY_COLORS[category["name"]]) + jitter)

    image = _background(rng, size, size)
    objects = []
    for index, category in enumerate(categories):
        visible = labels == index
        image[:, visible] = colors[index][:, None]
        if visible_areas[index] == full_areas[index]:
            segmentation = [polygons[index]]
        else:
            rle = mask_api.encode(np.asfortranarray(visible.astype(np.uint8)))
            segmentation = {"size": [size, size], "counts": rle["counts"].decode("ascii")}
        objects.append(
            {
                "category_id": category["id"],
                "segmentation": segmentation,
                "area": float(visible_areas[index]),
                "bbox": _tight_box(visible),
            }
        )
    # Triangular noise in [-7, 7] from two draws of 3 random bits (cheap to draw).
    noise = rng.randint(0, 8, size=(2, 3, size, size), dtype=np.uint8)
    image += noise[0] + noise[1].astype(np.float32) - 7.0
    planes = np.clip(image, 0, 255, out=image).astype(np.uint8)
    # Pillow interleaves the channels faster than a NumPy transpose copy.
    image = np.asarray(Image.merge("RGB", [Image.fromarray(plane) for plane in planes]))
    return image, objects


def write_split(output_dir, split, num_images, seed=0, options=None):
    """Writes the images of one split and, last, its annotation file.

    Args:
      output_dir: dataset root; `<split>/` and `annotations/` are created in it.
      split: one of SPLITS.
      num_images: int >= 0.
      seed: int in [0, 2**32); with the same options, the same seed writes the
        same bytes.
      options: ShapesOptions, default ShapesOptions().

    Returns:
      The path of `annotations/instances_<split>.json`.
    """
    options = options or ShapesOptions()
    options.validate()
    if split not in SPLITS:
        raise ShapesDatasetError(f"shapes dataset: split must be one of {SPLITS}, got {split!r}")
    _check_range("num_images", num_images, 0, 10**7, integer=True)
    _check_range("seed", seed, 0, 2**32 - 1, integer=True)
    image_dir = os.path.join(output_dir, split)
    annotation_dir = os.path.join(output_dir, "annotations")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(annotation_dir, exist_ok=True)
    annotations_file = os.path.join(annotation_dir, f"instances_{split}.json")
    # An annotation file left from an earlier run would describe images this run rewrites.
    if os.path.exists(annotations_file):
        os.remove(annotations_file)

    offset = _SPLIT_ID_OFFSET[split]
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.RandomState([seed, SPLITS.index(split), index])
        image, objects = render_image(rng, options)
        image_id = offset + index + 1
        file_name = f"{image_id:012d}.jpg"
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=options.jpeg_quality)
        write_atomically(os.path.join(image_dir, file_name), buffer.getvalue())
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "height": options.image_size,
                "width": options.image_size,
                "license": 1,
            }
        )
        for obj in objects:
            annotation = {"id": offset + len(annotations) + 1, "image_id": image_id}
            annotation.update(obj)
            annotation["iscrowd"] = 0
            annotations.append(annotation)

    dataset = {
        "info": {
            "description": "Synthetic coloured shapes",
            "version": "1.0",
            "year": 2017,
            "contributor": "official.detection.datasets.shapes",
            "generator": {"seed": seed, "split": split, **dataclasses.asdict(options)},
        },
        "licenses": [{"id": 1, "name": "CC0-1.0", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": [dict(category) for category in CATEGORIES],
    }
    write_atomically(annotations_file, json.dumps(dataset))
    return annotations_file


def write_dataset(output_dir, num_train=600, num_val=100, seed=0, options=None):
    """Writes both splits; returns a dict of their image dirs and annotation files.

    Keys: `train_image_dir`, `train_annotations_file`, `val_image_dir`,
    `val_annotations_file`. See `write_split` for the arguments.
    """
    (options or ShapesOptions()).validate()
    _check_range("num_train", num_train, 0, 10**7, integer=True)
    _check_range("num_val", num_val, 0, 10**7, integer=True)
    _check_range("seed", seed, 0, 2**32 - 1, integer=True)
    paths = {}
    for short_name, split, count in (
        ("train", "train2017", num_train),
        ("val", "val2017", num_val),
    ):
        paths[f"{short_name}_annotations_file"] = write_split(
            output_dir, split, count, seed, options
        )
        paths[f"{short_name}_image_dir"] = os.path.join(output_dir, split)
    return paths
