"""Drawing detections (COCO results entries) on images: boxes, names, scores, masks."""

import colorsys
import json
import os

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util


def category_colour(category_id):
    """A stable, saturated RGB colour per category id."""
    hue = (category_id * 0.61803398875) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_image(image, detections, category_names, score_threshold):
    """Returns an RGB PIL image with `detections` (COCO results entries) drawn."""
    canvas = image.convert("RGB")
    overlay = np.asarray(canvas, dtype=np.float32).copy()
    kept = [d for d in detections if d["score"] >= score_threshold]
    for det in kept:
        if "segmentation" in det:
            mask = mask_util.decode(det["segmentation"]).astype(bool)
            colour = np.array(category_colour(det["category_id"]), np.float32)
            overlay[mask] = 0.55 * overlay[mask] + 0.45 * colour
    canvas = Image.fromarray(overlay.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for det in sorted(kept, key=lambda d: d["score"]):
        x, y, w, h = det["bbox"]
        colour = category_colour(det["category_id"])
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=2)
        name = category_names.get(det["category_id"], str(det["category_id"]))
        label = f"{name} {det['score']:.2f}"
        left, top, right, bottom = draw.textbbox((x, y), label)
        text_top = max(y - (bottom - top) - 2, 0)
        draw.rectangle(
            [x, text_top, x + (right - left) + 4, text_top + (bottom - top) + 2], fill=colour
        )
        draw.text((x + 2, text_top), label, fill=(0, 0, 0))
    return canvas


def draw_detections(
    detections_file, annotations_file, image_dir, output_dir, *, num_images, score_threshold
):
    """Writes `num_images` PNGs; returns their paths."""
    with open(annotations_file) as f:
        coco = json.load(f)
    with open(detections_file) as f:
        detections = json.load(f)
    images = {img["id"]: img for img in coco["images"]}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image = {}
    for det in detections:
        if det["image_id"] not in images:
            raise ValueError(
                f"{detections_file}: detection for image_id {det['image_id']} which is not in "
                f"{annotations_file}; pass the annotation file the evaluation used"
            )
        by_image.setdefault(det["image_id"], []).append(det)
    ranked = sorted(
        images,
        key=lambda i: (-sum(d["score"] >= score_threshold for d in by_image.get(i, [])), i),
    )
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for image_id in ranked[:num_images]:
        info = images[image_id]
        path = os.path.join(image_dir, info["file_name"])
        with Image.open(path) as image:
            drawn = draw_image(image, by_image.get(image_id, []), names, score_threshold)
        out = os.path.join(
            output_dir, os.path.splitext(os.path.basename(info["file_name"]))[0] + ".png"
        )
        drawn.save(out)
        written.append(out)
    return written
