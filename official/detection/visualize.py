"""Drawing detections (COCO results entries) on an image: boxes, names, scores, masks.

Readable at any image size: an image whose longer side is under `min_size` pixels is
enlarged by a whole factor first (boxes and masks with it), and on larger images lines
and labels grow with the image, so they keep about the same size relative to it.
"""

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pycocotools import mask as mask_util

# The longer side below which an image is enlarged, and the side over which one step of
# line width and label size is drawn.
MIN_SIZE = 512
_PIXELS_PER_STEP = 512
_MASK_OPACITY = 0.45


def category_colour(category_id):
    """A stable, saturated RGB colour per category id."""
    hue = (category_id * 0.61803398875) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def enlargement(width, height, min_size=MIN_SIZE):
    """The whole factor that brings the longer side closest to `min_size` without
    passing it; 1 for images already that large."""
    return max(1, int(min_size) // max(width, height, 1))


def select_detections(detections, score_threshold, max_boxes):
    """The `max_boxes` highest-scoring detections with a score >= `score_threshold`."""
    kept = [d for d in detections if d["score"] >= score_threshold]
    return sorted(kept, key=lambda d: -d["score"])[:max_boxes]


def draw_image(image, detections, category_names, min_size=MIN_SIZE):
    """Returns an RGB PIL image with all of `detections` drawn (see `select_detections`).

    Args:
      image: a PIL image or a uint8 [H, W, 3] array.
      detections: COCO results entries of this image: `bbox` [x, y, w, h] in its pixels,
        `category_id`, `score`, and optionally `segmentation` (RLE of the image's size).
      category_names: {category id: name}; a missing id is drawn as its number.
      min_size: images with a longer side under this are enlarged (see `enlargement`).
    """
    canvas = image if isinstance(image, Image.Image) else Image.fromarray(image)
    canvas = canvas.convert("RGB")
    scale = enlargement(canvas.width, canvas.height, min_size)
    if scale != 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.BICUBIC)
    overlay = np.asarray(canvas, dtype=np.float32).copy()
    for det in detections:
        if "segmentation" in det:
            mask = mask_util.decode(det["segmentation"]).astype(bool)
            if scale != 1:
                mask = mask.repeat(scale, axis=0).repeat(scale, axis=1)
            colour = np.array(category_colour(det["category_id"]), np.float32)
            overlay[mask] = (1 - _MASK_OPACITY) * overlay[mask] + _MASK_OPACITY * colour
    canvas = Image.fromarray(overlay.clip(0, 255).astype(np.uint8))
    step = 1 + max(canvas.width, canvas.height) // _PIXELS_PER_STEP
    draw = ImageDraw.Draw(canvas)
    # The most confident last, so that its label is on top.
    for det in sorted(detections, key=lambda d: d["score"]):
        x, y, w, h = (v * scale for v in det["bbox"])
        colour = category_colour(det["category_id"])
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=2 * step)
        name = category_names.get(det["category_id"], str(det["category_id"]))
        label = _label(f"{name} {det['score']:.2f}", colour, step)
        # Above the box, or inside it at the top when the box touches the image's top.
        top = y - label.height if y >= label.height else y
        left = min(max(int(x), 0), max(canvas.width - label.width, 0))
        canvas.paste(label, (left, int(top)))
    return canvas


def _label(text, colour, step):
    """`text` in black on `colour`, enlarged `step` times (the default bitmap font is
    small and has one size on every Pillow version)."""
    font = ImageFont.load_default()
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox(
        (0, 0), text, font=font
    )
    label = Image.new("RGB", (right - left + 4, bottom - top + 3), colour)
    ImageDraw.Draw(label).text((2 - left, 1 - top), text, fill=(0, 0, 0), font=font)
    if step != 1:
        label = label.resize((label.width * step, label.height * step), Image.NEAREST)
    return label
