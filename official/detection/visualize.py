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


def draw_image(image, detections, category_names, score_threshold, scale=1):
    """Returns an RGB PIL image with `detections` (COCO results entries) drawn.

    `scale` (a positive int) enlarges the image, boxes and masks first, so that
    labels stay readable on small images.
    """
    canvas = image.convert("RGB")
    if scale != 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.BICUBIC)
    overlay = np.asarray(canvas, dtype=np.float32).copy()
    kept = [d for d in detections if d["score"] >= score_threshold]
    for det in kept:
        if "segmentation" in det:
            mask = mask_util.decode(det["segmentation"]).astype(bool)
            if scale != 1:
                mask = mask.repeat(scale, axis=0).repeat(scale, axis=1)
            colour = np.array(category_colour(det["category_id"]), np.float32)
            overlay[mask] = 0.55 * overlay[mask] + 0.45 * colour
    canvas = Image.fromarray(overlay.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for det in sorted(kept, key=lambda d: d["score"]):
        x, y, w, h = (v * scale for v in det["bbox"])
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
    detections_file,
    annotations_file,
    image_dir,
    output_dir,
    *,
    num_images,
    score_threshold,
    min_size=0,
):
    """Writes `num_images` PNGs; returns their paths.

    Images whose longer side is under `min_size` pixels are enlarged by the
    largest whole factor that keeps it at most `min_size`.
    """
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
        scale = max(1, int(min_size) // max(info["width"], info["height"]))
        with Image.open(path) as image:
            drawn = draw_image(image, by_image.get(image_id, []), names, score_threshold, scale)
        out = os.path.join(
            output_dir, os.path.splitext(os.path.basename(info["file_name"]))[0] + ".png"
        )
        drawn.save(out)
        written.append(out)
    return written
