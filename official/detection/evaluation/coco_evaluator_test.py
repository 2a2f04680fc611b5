import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from official.detection.evaluation import coco_groundtruth
from official.detection.evaluation.coco_evaluator import (
    MASK_METRIC_NAMES,
    METRIC_NAMES,
    COCOEvaluator,
)

# (image id, height, width, [(category, [x, y, w, h])]): two medium objects, one small,
# and an image without objects.
IMAGES = (
    (1, 100, 120, [(1, [10, 20, 40, 30]), (2, [50, 50, 60, 40])]),
    (2, 80, 80, [(1, [0, 0, 20, 20])]),
    (3, 60, 60, []),
)
MAX_INSTANCES = 3


def _yxyx(xywh):
    x, y, w, h = xywh
    return [y, x, y + h, x + w]


def _rectangle_mask(height, width, xywh):
    x, y, w, h = xywh
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + h, x : x + w] = 1
    return mask


def _png(mask):
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_annotations(tmp_path, images=IMAGES, with_masks=False):
    annotations = []
    for image_id, height, width, objects in images:
        for category, xywh in objects:
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category,
                "bbox": [float(v) for v in xywh],
                "area": float(xywh[2] * xywh[3]),
                "iscrowd": 0,
            }
            if with_masks:
                mask = _rectangle_mask(height, width, xywh)
                annotation["segmentation"] = coco_groundtruth.encode_rle(mask)
            annotations.append(annotation)
    dataset = {
        "images": [{"id": i, "height": h, "width": w} for i, h, w, _ in images],
        "annotations": annotations,
        "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(dataset))
    return str(path)


def _groundtruths(images, with_masks=False):
    batch = len(images)
    gt = {
        "source_id": np.array([i for i, _, _, _ in images], np.int64),
        "height": np.array([h for _, h, _, _ in images], np.int32),
        "width": np.array([w for _, _, w, _ in images], np.int32),
        "num_detections": np.array([len(o) for _, _, _, o in images], np.int32),
        "boxes": -np.ones((batch, MAX_INSTANCES, 4), np.float32),
        "classes": -np.ones((batch, MAX_INSTANCES), np.int32),
        "areas": -np.ones((batch, MAX_INSTANCES), np.float32),
        "is_crowds": np.zeros((batch, MAX_INSTANCES), np.int32),
    }
    if with_masks:
        gt["masks"] = np.full((batch, MAX_INSTANCES), b"", dtype=object)
    for b, (_, height, width, objects) in enumerate(images):
        for k, (category, xywh) in enumerate(objects):
            gt["boxes"][b, k] = _yxyx(xywh)
            gt["classes"][b, k] = category
            gt["areas"][b, k] = xywh[2] * xywh[3]
            if with_masks:
                gt["masks"][b, k] = _png(_rectangle_mask(height, width, xywh))
    return gt


def _predictions(images, detections, mask_size=None):
    """detections: {image id: [(category, [x, y, w, h], score, mask or None)]}."""
    batch = len(images)
    max_detections = 4
    out = {
        "source_id": np.array([i for i, _, _, _ in images], np.int64),
        "image_info": np.array(
            [[[h, w], [h, w], [1, 1], [0, 0]] for _, h, w, _ in images], np.float32
        ),
        "num_detections": np.zeros(batch, np.int32),
        "detection_boxes": np.zeros((batch, max_detections, 4), np.float32),
        "detection_scores": np.zeros((batch, max_detections), np.float32),
        "detection_classes": np.zeros((batch, max_detections), np.int32),
    }
    if mask_size:
        out["detection_masks"] = np.zeros((batch, max_detections, mask_size, mask_size))
    for b, (image_id, _, _, _) in enumerate(images):
        for k, (category, xywh, score, mask) in enumerate(detections.get(image_id, [])):
            out["detection_boxes"][b, k] = _yxyx(xywh)
            out["detection_scores"][b, k] = score
            out["detection_classes"][b, k] = category
            if mask_size:
                out["detection_masks"][b, k] = (
                    np.ones((mask_size, mask_size)) if mask is None else mask
                )
            out["num_detections"][b] = k + 1
    return out


def _perfect(images=IMAGES):
    return {i: [(c, xywh, 0.9, None) for c, xywh in objects] for i, _, _, objects in images}


PERFECT_METRICS = dict(
    {name: 1.0 for name in METRIC_NAMES},
    APl=-1.0,
    ARl=-1.0,  # no large objects
)


def test_perfect_detections_from_annotation_file(tmp_path):
    evaluator = COCOEvaluator(annotation_file=_write_annotations(tmp_path))
    evaluator.update(_predictions(IMAGES[:2], _perfect()))
    evaluator.update(_predictions(IMAGES[2:], _perfect()))
    metrics = evaluator.evaluate()
    assert list(metrics) == list(METRIC_NAMES)
    assert metrics == pytest.approx(PERFECT_METRICS)
    assert "Average Precision" in evaluator.summary_text


def test_perfect_detections_from_groundtruths_in_the_batch():
    evaluator = COCOEvaluator()
    for part in (IMAGES[:1], IMAGES[1:]):
        batch = _predictions(part, _perfect())
        batch.update({"groundtruths/" + k: v for k, v in _groundtruths(part).items()})
        evaluator.update(batch)
    assert evaluator.evaluate() == pytest.approx(PERFECT_METRICS)


def test_groundtruths_argument_with_string_ids_padding_and_repeats():
    evaluator = COCOEvaluator(num_classes=4)
    predictions = _predictions(IMAGES, _perfect())
    groundtruths = _groundtruths(IMAGES)
    predictions["source_id"] = np.array([b"1", b"2", b"3"], dtype=object)
    evaluator.update(predictions, groundtruths)
    # A repeated image and a padding row (-1) of a partial batch change nothing.
    repeat = _predictions(IMAGES[:1], {1: [(1, [0, 0, 5, 5], 0.99, None)]})
    evaluator.update(repeat, _groundtruths(IMAGES[:1]))
    padding = _predictions(IMAGES[:1], {1: [(1, [0, 0, 5, 5], 0.99, None)]})
    padding["source_id"][:] = -1
    gt_padding = _groundtruths(IMAGES[:1])
    gt_padding["source_id"][:] = -1
    evaluator.update(padding, gt_padding)
    assert evaluator.evaluate() == pytest.approx(PERFECT_METRICS)


def test_shifted_box_counts_at_iou_50_but_not_75(tmp_path):
    # A 100 x 100 gt and the same box shifted 24 px right: IoU 76 / 124 = 0.613, a
    # match at IoU thresholds 0.50, 0.55, 0.60 of the ten, so AP = 3 / 10.
    images = ((7, 200, 200, [(1, [50, 50, 100, 100])]),)
    evaluator = COCOEvaluator(annotation_file=_write_annotations(tmp_path, images))
    evaluator.update(_predictions(images, {7: [(1, [74, 50, 100, 100], 0.8, None)]}))
    metrics = evaluator.evaluate()
    assert metrics["AP"] == pytest.approx(0.3)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == pytest.approx(0.0)
    assert metrics["APl"] == pytest.approx(0.3)
    assert metrics["APs"] == -1.0 and metrics["APm"] == -1.0
    assert metrics["ARmax100"] == pytest.approx(0.3)


def test_per_category_metrics(tmp_path):
    # Category 1: perfect on both images; category 2: the shifted box of the test above
    # (AP 0.3, AP50 1, AP75 0); category 3 has no ground truth.
    detections = _perfect()
    detections[1][1] = (2, [50 + 14.4, 50, 60, 40], 0.9, None)  # IoU 45.6 / 74.4 = 0.613
    evaluator = COCOEvaluator(
        annotation_file=_write_annotations(tmp_path), per_category_metrics=True
    )
    evaluator.update(_predictions(IMAGES, detections))
    metrics = evaluator.evaluate()
    assert metrics["Precision mAP ByCategory/1"] == pytest.approx(1.0)
    assert metrics["Precision mAP ByCategory/2"] == pytest.approx(0.3)
    assert metrics["Precision mAP ByCategory@50IoU/2"] == pytest.approx(1.0)
    assert metrics["Precision mAP ByCategory@75IoU/2"] == pytest.approx(0.0)
    assert metrics["Recall AR@100 ByCategory/2"] == pytest.approx(0.3)
    assert metrics["Precision mAP ByCategory/3"] == -1.0
    assert metrics["AP"] == pytest.approx((1.0 + 0.3) / 2)


def test_false_positive_on_an_image_without_objects(tmp_path):
    # A false positive scoring above the only true positive: precision 1/2 at recall 1.
    images = ((1, 100, 100, [(1, [10, 10, 50, 50])]), (2, 100, 100, []))
    detections = {1: [(1, [10, 10, 50, 50], 0.8, None)], 2: [(1, [0, 0, 30, 30], 0.9, None)]}
    evaluator = COCOEvaluator(annotation_file=_write_annotations(tmp_path, images))
    evaluator.update(_predictions(images, detections))
    metrics = evaluator.evaluate()
    assert metrics["AP"] == pytest.approx(0.5)
    assert metrics["ARmax100"] == pytest.approx(1.0)


def test_no_detections_at_all(tmp_path):
    evaluator = COCOEvaluator(annotation_file=_write_annotations(tmp_path))
    evaluator.update(_predictions(IMAGES, {}))
    metrics = evaluator.evaluate()
    assert metrics["AP"] == 0.0 and metrics["ARmax100"] == 0.0
    assert metrics["APl"] == -1.0
    metrics_path, detections_path = evaluator.write_outputs(str(tmp_path / "eval"), 5)
    with open(detections_path) as f:
        assert json.load(f) == []


def test_perfect_masks_from_groundtruths():
    evaluator = COCOEvaluator(include_mask=True)
    batch = _predictions(IMAGES, _perfect(), mask_size=7)
    batch["groundtruths"] = _groundtruths(IMAGES, with_masks=True)
    evaluator.update(batch)
    metrics = evaluator.evaluate()
    assert list(metrics) == list(METRIC_NAMES + MASK_METRIC_NAMES)
    expected = dict(PERFECT_METRICS)
    expected.update({"mask_" + k: v for k, v in PERFECT_METRICS.items()})
    assert metrics == pytest.approx(expected)
    assert "Mask:" in evaluator.summary_text


def test_partial_mask_from_annotation_file(tmp_path):
    # The mask's top 27 of 40 rows: mask IoU 0.675 (matches at 0.50 ... 0.65, 4 of 10
    # thresholds) while the box is exact.
    images = ((3, 60, 60, [(2, [10, 10, 40, 40])]),)
    mask = np.zeros((40, 40))
    mask[:27] = 1.0
    evaluator = COCOEvaluator(
        annotation_file=_write_annotations(tmp_path, images, with_masks=True), include_mask=True
    )
    evaluator.update(_predictions(images, {3: [(2, [10, 10, 40, 40], 0.7, mask)]}, mask_size=40))
    metrics = evaluator.evaluate()
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["mask_AP"] == pytest.approx(0.4)
    assert metrics["mask_AP50"] == pytest.approx(1.0)
    assert metrics["mask_AP75"] == pytest.approx(0.0)


def test_write_outputs(tmp_path):
    evaluator = COCOEvaluator(include_mask=True)
    images = IMAGES[:1]
    batch = _predictions(images, _perfect(images), mask_size=5)
    evaluator.update(batch, _groundtruths(images, with_masks=True))
    metrics = evaluator.evaluate()
    eval_dir = tmp_path / "eval"
    evaluator.write_outputs(str(eval_dir), 1200)
    assert sorted(os.listdir(eval_dir)) == ["detections_1200.json", "metrics_1200.json"]
    with open(eval_dir / "metrics_1200.json") as f:
        assert json.load(f) == pytest.approx(metrics)
    with open(eval_dir / "detections_1200.json") as f:
        detections = json.load(f)
    assert len(detections) == 2
    first = detections[0]
    assert sorted(first) == ["bbox", "category_id", "image_id", "score", "segmentation"]
    assert first["image_id"] == 1 and first["category_id"] == 1
    assert first["bbox"] == pytest.approx([10, 20, 40, 30])
    assert first["score"] == pytest.approx(0.9)
    assert first["segmentation"]["size"] == [100, 120]
    assert isinstance(first["segmentation"]["counts"], str)


def test_evaluate_resets_for_the_next_round(tmp_path):
    evaluator = COCOEvaluator(annotation_file=_write_annotations(tmp_path))
    evaluator.update(_predictions(IMAGES, _perfect()))
    evaluator.evaluate()
    evaluator.update(_predictions(IMAGES, {}))
    assert evaluator.evaluate()["AP"] == 0.0


def test_error_messages(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"annotation_file '.*missing.json' \(eval.val_json_file\) "
        "does not exist",
    ):
        COCOEvaluator(annotation_file=str(tmp_path / "missing.json"))
    evaluator = COCOEvaluator(annotation_file=_write_annotations(tmp_path))
    batch = _predictions(IMAGES, {})
    del batch["detection_scores"]
    with pytest.raises(ValueError, match=r"predictions lack \['detection_scores'\]"):
        evaluator.update(batch)
    unknown = _predictions(((99, 10, 10, []),), {})
    with pytest.raises(ValueError, match="image id 99 is not in annotation file"):
        evaluator.update(unknown)
    with pytest.raises(RuntimeError, match="no images were added"):
        evaluator.evaluate()
    with pytest.raises(RuntimeError, match=r"call evaluate\(\) first"):
        evaluator.write_outputs(str(tmp_path), 1)

    no_file = COCOEvaluator()
    with pytest.raises(ValueError, match="no annotation_file was given, so every batch needs"):
        no_file.update(_predictions(IMAGES, {}))
    named = _predictions(IMAGES[:1], {})
    named["source_id"] = np.array([b"img-1"], dtype=object)
    with pytest.raises(ValueError, match=r"source_id 'img-1' is not a decimal integer"):
        no_file.update(named, _groundtruths(IMAGES[:1]))
    incomplete = _groundtruths(IMAGES[:1])
    del incomplete["num_detections"]
    with pytest.raises(ValueError, match=r"ground truth lacks \['num_detections'\]"):
        no_file.update(_predictions(IMAGES[:1], {}), incomplete)

    masks = COCOEvaluator(include_mask=True)
    with pytest.raises(ValueError, match=r"predictions lack \['detection_masks'\]"):
        masks.update(_predictions(IMAGES[:1], {}), _groundtruths(IMAGES[:1]))
    with pytest.raises(ValueError, match="mask evaluation needs the `masks` field"):
        masks.update(_predictions(IMAGES[:1], {}, mask_size=3), _groundtruths(IMAGES[:1]))
