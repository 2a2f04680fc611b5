"""Category names (and image ids) for the pictures and results of `scripts/inference.py`.

A label map file is either
  - a YAML or JSON mapping of category id to name (`1: person`, or `{"1": "person"}`), or
  - a COCO annotation file: its `categories` give the names and its `images` the ids of
    the images whose file name it lists (the name without directories).
Without a file, the 80 COCO 2017 categories are the names. Imports no TensorFlow.
"""

import collections
import os

import yaml

from official.detection.datasets.coco_categories import COCO_2017_CATEGORIES

# names: {category id: name}; image_ids: {file name: image id}, empty unless the file
# is a COCO annotation file.
LabelMap = collections.namedtuple("LabelMap", ["names", "image_ids"])


class LabelMapError(ValueError):
    """A label map file that cannot be read; the message names the file and the fix."""


def load_label_map(path=None):
    """The LabelMap of `path` (see the module docstring), or of COCO 2017 when None."""
    if not path:
        return LabelMap(dict(COCO_2017_CATEGORIES), {})
    try:
        with open(path, encoding="utf-8") as f:
            content = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise _error(path, f"cannot be read as YAML or JSON: {reason}") from None
    if isinstance(content, dict) and "categories" in content:
        return _coco_label_map(path, content)
    if not isinstance(content, dict) or not content:
        raise _error(path, f"holds a {type(content).__name__}, not a mapping of id to name")
    names = {}
    for key, name in content.items():
        category_id = _category_id(key)
        if category_id is None or not isinstance(name, str):
            raise _error(path, f"has the entry {key!r}: {name!r}, not a positive id: name")
        names[category_id] = name
    return LabelMap(names, {})


def _coco_label_map(path, content):
    categories = content["categories"]
    try:
        names = {_category_id(c["id"]): str(c["name"]) for c in categories}
        image_ids = {
            os.path.basename(image["file_name"]): int(image["id"])
            for image in content.get("images") or ()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise _error(path, f"is a COCO annotation file with a malformed entry ({exc!r})") from None
    if not names or None in names:
        raise _error(path, "is a COCO annotation file without valid categories")
    return LabelMap(names, image_ids)


def _category_id(key):
    """A positive int id from an int or a decimal string key; None otherwise."""
    if isinstance(key, bool):
        return None
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)
    return key if isinstance(key, int) and key > 0 else None


def _error(path, what):
    return LabelMapError(
        f"label map {path} {what} (--label_map_file); give a YAML or JSON mapping of category "
        "id to name, such as '1: person', or a COCO annotation file"
    )
