"""Loads and checks the COCO-format JSON files that the TFRecord converter reads.

Three kinds of file, as in COCO 2017:
  - object annotations (`instances_*.json`): 'images', 'annotations' (boxes, classes,
    segmentations) and 'categories';
  - caption annotations (`captions_*.json`): 'images' and 'annotations' with 'caption';
  - image info (`image_info_test*.json`): 'images' only.
Everything is checked here, before any image is read, so that a bad entry stops a
conversion at once with a message naming the file and the entry, e.g.
"instances_val2017.json: annotation id 17 (index 3) refers to image_id 999 which is not
in 'images'". Boxes are not judged here (degenerate ones are skipped and counted later).
"""

import collections
import json
import math
import numbers

CocoImage = collections.namedtuple("CocoImage", ["id", "file_name", "height", "width"])
CocoImage.__doc__ = (
    """One 'images' entry: id (int or str), file_name, height and width in pixels."""
)

CocoDataset = collections.namedtuple(
    "CocoDataset", ["images", "category_names", "objects_by_image", "captions_by_image"]
)
CocoDataset.__doc__ = """What the converter writes, one record per entry of `images`.

images: list of CocoImage, in file order.
category_names: {category id: name}; empty without an object annotations file.
objects_by_image: {image id: [annotation dict]}, or None without object annotations.
captions_by_image: {image id: [caption str]}, or None without caption annotations.
"""

_IMAGE_KEYS = ("id", "file_name", "height", "width")
_OBJECT_KEYS = ("image_id", "bbox", "category_id")


class CocoFormatError(ValueError):
    """A COCO JSON file is unreadable or lacks what the converter needs.

    The message names the file and the entry (kind, id and index in its list).
    """


def load_json(path):
    """Reads a JSON file whose top level must be an object (dict)."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CocoFormatError(f"{path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise CocoFormatError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise CocoFormatError(
            f"{path}: the top level must be a JSON object with 'images' (and 'annotations', "
            f"'categories'), got a {type(data).__name__}"
        )
    return data


def _top_level_list(data, key, path):
    if key not in data:
        present = ", ".join(repr(k) for k in data) or "none"
        raise CocoFormatError(f"{path}: missing top-level key '{key}' (keys present: {present})")
    if not isinstance(data[key], list):
        raise CocoFormatError(
            f"{path}: top-level '{key}' must be a list, got a {type(data[key]).__name__}"
        )
    return data[key]


def _describe(kind, entry, index):
    if isinstance(entry, dict) and "id" in entry:
        return f"{kind} id {entry['id']!r} (index {index})"
    return f"{kind} at index {index}"


def _check_entry(entry, kind, index, keys, path):
    if not isinstance(entry, dict):
        raise CocoFormatError(
            f"{path}: {kind} at index {index} must be a JSON object, got {entry!r:.80}"
        )
    for key in keys:
        if key not in entry:
            raise CocoFormatError(
                f"{path}: {_describe(kind, entry, index)} is missing '{key}' "
                f"(required: {', '.join(keys)})"
            )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value):
    return _is_int(value) or isinstance(value, str)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def parse_images(data, path):
    """The 'images' list of a loaded file -> [CocoImage]; ids must be unique."""
    images = []
    first_index = {}
    for index, entry in enumerate(_top_level_list(data, "images", path)):
        _check_entry(entry, "image", index, _IMAGE_KEYS, path)
        where = f"{path}: {_describe('image', entry, index)}"
        if not _is_id(entry["id"]):
            raise CocoFormatError(f"{where} has id {entry['id']!r}; expected an int or a string")
        if not isinstance(entry["file_name"], str) or not entry["file_name"]:
            raise CocoFormatError(f"{where} has file_name {entry['file_name']!r}; expected a name")
        for key in ("height", "width"):
            if not _is_int(entry[key]) or entry[key] <= 0:
                raise CocoFormatError(f"{where} has {key} {entry[key]!r}; expected a positive int")
        if entry["id"] in first_index:
            raise CocoFormatError(
                f"{where} repeats the id of the image at index {first_index[entry['id']]}"
            )
        first_index[entry["id"]] = index
        images.append(CocoImage(entry["id"], entry["file_name"], entry["height"], entry["width"]))
    return images


def parse_categories(data, path):
    """The 'categories' list of a loaded file -> {id: name}."""
    names = {}
    for index, entry in enumerate(_top_level_list(data, "categories", path)):
        _check_entry(entry, "category", index, ("id", "name"), path)
        where = f"{path}: {_describe('category', entry, index)}"
        if not _is_int(entry["id"]) or not isinstance(entry["name"], str):
            raise CocoFormatError(f"{where} needs an int 'id' and a string 'name', got {entry!r}")
        if entry["id"] in names:
            raise CocoFormatError(f"{where} repeats an earlier category id")
        names[entry["id"]] = entry["name"]
    return names


def _list_ids(ids, limit=10):
    ids = sorted(ids, key=str)
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def _check_segmentation(segmentation, image, where):
    """Raises CocoFormatError unless `segmentation` is polygons or an RLE of the image size."""
    if isinstance(segmentation, list):
        for part in segmentation:
            if not isinstance(part, list) or len(part) % 2 or not all(_is_number(v) for v in part):
                raise CocoFormatError(
                    f"{where} has a polygon part {part!r:.80}; expected a list of "
                    "x, y numbers [x1, y1, x2, y2, ...]"
                )
        return
    if not isinstance(segmentation, dict) or not {"counts", "size"} <= set(segmentation):
        raise CocoFormatError(
            f"{where} has segmentation {segmentation!r:.80}; expected a list of polygons or "
            "an RLE {'counts': ..., 'size': [height, width]}"
        )
    if list(segmentation["size"]) != [image.height, image.width]:
        raise CocoFormatError(
            f"{where} has an RLE of size {segmentation['size']!r} but its image "
            f"{image.id!r} is [{image.height}, {image.width}] (height, width)"
        )
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != image.height * (
            image.width
        ):
            raise CocoFormatError(
                f"{where} has uncompressed RLE counts that are not non-negative ints summing "
                f"to height * width = {image.height * image.width}"
            )
    elif not isinstance(counts, str):
        raise CocoFormatError(
            f"{where} has RLE counts of type {type(counts).__name__}; expected a string "
            "(compressed RLE) or a list of ints (uncompressed RLE)"
        )


def index_object_annotations(data, path, images, category_names, check_masks):
    """Checks a loaded object annotations file; returns {image id: [annotation dict]}.

    Args:
      data: the loaded file (dict).
      path: its path, for messages.
      images: [CocoImage] of the same file (`parse_images`).
      category_names: {id: name} of the same file (`parse_categories`).
      check_masks: also require and check 'segmentation' (for --include_masks).
    """
    images = {image.id: image for image in images}
    by_image = collections.defaultdict(list)
    for index, entry in enumerate(_top_level_list(data, "annotations", path)):
        _check_entry(entry, "annotation", index, _OBJECT_KEYS, path)
        where = f"{path}: {_describe('annotation', entry, index)}"
        image = images.get(entry["image_id"])
        if image is None:
            raise CocoFormatError(
                f"{where} refers to image_id {entry['image_id']!r} which is not in 'images'"
            )
        if entry["category_id"] not in category_names:
            raise CocoFormatError(
                f"{where} refers to category_id {entry['category_id']!r} which is not in "
                f"'categories' (ids: {_list_ids(category_names)})"
            )
        bbox = entry["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise CocoFormatError(
                f"{where} has bbox {bbox!r:.80}; expected 4 numbers [x, y, width, height]"
            )
        for key in ("area", "iscrowd"):
            if key in entry and not (_is_number(entry[key]) and math.isfinite(entry[key])):
                raise CocoFormatError(f"{where} has {key} {entry[key]!r}; expected a number")
        if check_masks:
            if "segmentation" not in entry:
                raise CocoFormatError(f"{where} has no 'segmentation', needed for masks")
            _check_segmentation(entry["segmentation"], image, where)
        by_image[entry["image_id"]].append(entry)
    return dict(by_image)


def index_captions(data, path, images):
    """Checks a loaded caption annotations file; returns {image id: [caption]}.

    `images` are the file's own [CocoImage] (`parse_images`).
    """
    image_ids = {image.id for image in images}
    by_image = collections.defaultdict(list)
    for index, entry in enumerate(_top_level_list(data, "annotations", path)):
        _check_entry(entry, "caption annotation", index, ("image_id", "caption"), path)
        where = f"{path}: {_describe('caption annotation', entry, index)}"
        if entry["image_id"] not in image_ids:
            raise CocoFormatError(
                f"{where} refers to image_id {entry['image_id']!r} which is not in 'images'"
            )
        if not isinstance(entry["caption"], str):
            raise CocoFormatError(f"{where} has caption {entry['caption']!r}; expected a string")
        by_image[entry["image_id"]].append(entry["caption"])
    return dict(by_image)


def load_coco_dataset(
    image_info_file=None,
    object_annotations_file=None,
    caption_annotations_file=None,
    *,
    include_masks=False,
):
    """Loads and checks the given files (empty string or None = not given).

    The images written are those of `image_info_file` if given, else of the object
    annotations file, else of the caption file (the ancestor converter's rule).

    Returns:
      A CocoDataset.
    Raises:
      CocoFormatError: a file is missing, not JSON, or has a bad entry.
      ValueError: no file is given.
    """
    if not (image_info_file or object_annotations_file or caption_annotations_file):
        raise ValueError(
            "load_coco_dataset: give at least one of image_info_file, object_annotations_file "
            "and caption_annotations_file"
        )
    images = None
    if image_info_file:
        images = parse_images(load_json(image_info_file), image_info_file)
    category_names, objects_by_image, captions_by_image = {}, None, None
    if object_annotations_file:
        data = load_json(object_annotations_file)
        file_images = parse_images(data, object_annotations_file)
        category_names = parse_categories(data, object_annotations_file)
        objects_by_image = index_object_annotations(
            data, object_annotations_file, file_images, category_names, include_masks
        )
        images = file_images if images is None else images
    if caption_annotations_file:
        data = load_json(caption_annotations_file)
        file_images = parse_images(data, caption_annotations_file)
        captions_by_image = index_captions(data, caption_annotations_file, file_images)
        images = file_images if images is None else images
    return CocoDataset(images, category_names, objects_by_image, captions_by_image)
