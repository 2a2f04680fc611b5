"""COCO box (and mask) evaluation of detection batches with pycocotools.

    evaluator = COCOEvaluator(annotation_file=params.eval.val_json_file, include_mask=...)
    for batch in estimator.predict(..., yield_single_examples=False):
        evaluator.update(batch)
    metrics = evaluator.evaluate()          # {'AP': ..., 'AP50': ..., ...}
    evaluator.write_outputs(eval_dir, step)  # metrics_<step>.json, detections_<step>.json

Batches are converted to COCO results as they arrive (masks are pasted and RLE-encoded
right away), so memory grows with the number of detections, not of mask pixels.

Differences from the ancestor, on purpose: images are evaluated when they were passed to
`update` (the ancestor evaluated only images with at least one detection, so images
where the model found nothing did not lower recall); only the `num_detections` valid
detections of an image are reported; an image seen twice (a repeated example) counts
once.
"""

import contextlib
import io
import json
import os

import numpy as np
from absl import logging
from pycocotools import coco as coco_api
from pycocotools import cocoeval
from pycocotools import mask as mask_api

from official.detection.atomic_file import write_atomically
from official.detection.evaluation import coco_groundtruth
from official.detection.evaluation.coco_groundtruth import EvaluationInputError
from official.detection.evaluation.mask_paste import paste_instance_masks

METRIC_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "ARmax1",
    "ARmax10",
    "ARmax100",
    "ARs",
    "ARm",
    "ARl",
)
MASK_METRIC_NAMES = tuple("mask_" + name for name in METRIC_NAMES)

# Key prefix of the ground truth in flat prediction batches (as written by
# `modeling.base_model.with_labels_for_evaluation`; Estimator predictions are flat).
GROUNDTRUTH_PREFIX = "groundtruths/"

PREDICTION_FIELDS = (
    "source_id",
    "num_detections",
    "detection_boxes",
    "detection_scores",
    "detection_classes",
)


def _quietly(fn, *args, **kwargs):
    """Runs fn with pycocotools' progress prints captured; returns (result, printed text)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn(*args, **kwargs)
    return result, buffer.getvalue()


def _coco_from_dataset(dataset):
    coco = coco_api.COCO()
    coco.dataset = dataset
    _quietly(coco.createIndex)
    return coco


def _mean_valid(values):
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def _per_category_metrics(evaluation):
    """Per-category AP (IoU 0.5:0.95, 0.5, 0.75) and AR@100 of an accumulated COCOeval."""
    # precision: [iou thresholds, recall points, categories, area ranges, max dets];
    # recall: [iou thresholds, categories, area ranges, max dets]. Area range 0 is
    # 'all', max-dets index -1 is 100.
    precision = evaluation.eval["precision"]
    recall = evaluation.eval["recall"]
    iou_thresholds = list(np.round(evaluation.params.iouThrs, 2))
    at50, at75 = iou_thresholds.index(0.5), iou_thresholds.index(0.75)
    metrics = {}
    for k, category_id in enumerate(evaluation.params.catIds):
        metrics[f"Precision mAP ByCategory/{category_id}"] = _mean_valid(precision[:, :, k, 0, -1])
        metrics[f"Precision mAP ByCategory@50IoU/{category_id}"] = _mean_valid(
            precision[at50, :, k, 0, -1]
        )
        metrics[f"Precision mAP ByCategory@75IoU/{category_id}"] = _mean_valid(
            precision[at75, :, k, 0, -1]
        )
        metrics[f"Recall AR@100 ByCategory/{category_id}"] = _mean_valid(recall[:, k, 0, -1])
    return metrics


def convert_detections(predictions, b, image_id, *, include_mask):
    """COCO results entries of image `b` of a prediction batch (see `COCOEvaluator.update`
    for the fields), with `image_id`: the `num_detections` valid detections, `bbox`
    [x, y, w, h], and with `include_mask` the masks pasted to the original image size
    (`image_info[b][0]`) as RLE `segmentation`s with str counts. uint8 masks are taken
    as pasted already (an export's full-image masks, image b's from the top left).
    """
    count = int(predictions["num_detections"][b])
    boxes = np.asarray(predictions["detection_boxes"][b][:count], np.float64)
    scores = predictions["detection_scores"][b][:count]
    classes = predictions["detection_classes"][b][:count]
    results = [
        {
            "image_id": image_id,
            "category_id": int(classes[i]),
            "bbox": [
                float(boxes[i, 1]),
                float(boxes[i, 0]),
                float(boxes[i, 3] - boxes[i, 1]),
                float(boxes[i, 2] - boxes[i, 0]),
            ],
            "score": float(scores[i]),
        }
        for i in range(count)
    ]
    if include_mask and count:
        height, width = np.round(predictions["image_info"][b][0]).astype(int)
        masks = np.asarray(predictions["detection_masks"][b][:count])
        if masks.dtype == np.uint8:
            masks = _fit_to_size(masks, height, width)
        else:
            masks = paste_instance_masks(masks, boxes, height, width)
        for result, rle in zip(
            results, mask_api.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
        ):
            rle["counts"] = rle["counts"].decode("ascii")
            result["segmentation"] = rle
    return results


def _fit_to_size(masks, height, width):
    """[N, h, w] -> [N, height, width]: cut, or padded with 0, at the bottom and right."""
    masks = masks[:, :height, :width]
    return np.pad(masks, [(0, 0), (0, height - masks.shape[1]), (0, width - masks.shape[2])])


class COCOEvaluator:
    """Accumulates detections of many batches and computes COCO metrics.

    Args:
      annotation_file: COCO instances JSON of the eval images; None or '' to build the
        ground truth from the `groundtruths` of the batches instead.
      include_mask: also evaluate `detection_masks` (metrics prefixed `mask_`).
      label_map: optional {category id: name}, names for a built ground truth.
      num_classes: optional, with a built ground truth: evaluate categories
        1..num_classes-1 (default: the ids seen in ground truth and detections; both
        give the same metrics, as categories without ground truth are left out).
      per_category_metrics: also report, per category id c, `Precision mAP
        ByCategory/c`, `Precision mAP ByCategory@50IoU/c`, `Precision mAP
        ByCategory@75IoU/c` and `Recall AR@100 ByCategory/c` (the ancestor's names;
        box metrics; -1 for categories without ground truth).

    Attributes:
      summary_text: pycocotools' summary table(s) of the last `evaluate`.
    """

    def __init__(
        self,
        annotation_file=None,
        include_mask=False,
        label_map=None,
        num_classes=None,
        per_category_metrics=False,
    ):
        self._annotation_file = annotation_file or None
        self._per_category_metrics = per_category_metrics
        self._include_mask = include_mask
        self._label_map = dict(label_map or {})
        self._num_classes = num_classes
        self._coco_gt = None
        if self._annotation_file:
            if not os.path.isfile(self._annotation_file):
                raise EvaluationInputError(
                    f"COCOEvaluator: annotation_file {self._annotation_file!r} "
                    "(eval.val_json_file) does not exist; give the COCO instances JSON of "
                    "the eval images, or leave it empty to use the ground truth in the "
                    "eval TFRecords"
                )
            self._coco_gt, _ = _quietly(coco_api.COCO, self._annotation_file)
        self.summary_text = ""
        self._last_metrics = None
        self._last_detections = None
        self.reset()

    @property
    def annotation_file(self):
        """The ground-truth JSON, or None when ground truth comes with the batches."""
        return self._annotation_file

    @property
    def metric_names(self):
        return METRIC_NAMES + (MASK_METRIC_NAMES if self._include_mask else ())

    def reset(self):
        """Forgets everything added by `update`."""
        self._image_ids = set()
        self._gt_images = []
        self._gt_annotations = []
        self._detections = []
        self._warned_duplicate = False

    def update(self, predictions, groundtruths=None):
        """Adds one batch of detections (and ground truth when there is no annotation file).

        Args:
          predictions: dict of NumPy arrays for B images: `source_id` [B] (int or
            decimal string; -1 marks padding images, which are skipped),
            `num_detections` [B], `detection_boxes` [B, M, 4] [ymin, xmin, ymax, xmax]
            original-image pixels, `detection_scores` [B, M], `detection_classes`
            [B, M] dataset class ids; with masks `detection_masks` [B, M, mh, mw]
            probabilities (or uint8 full-image masks, see `convert_detections`) and
            `image_info` [B, 4, 2] (row 0 is the original size).
            Ground truth may ride along as `groundtruths/<field>` keys or a nested
            `groundtruths` dict.
          groundtruths: dict of NumPy arrays (fields in `coco_groundtruth`); needed
            without an annotation file unless it is inside `predictions`.
        """
        where = "COCOEvaluator.update"
        required = PREDICTION_FIELDS + (
            ("detection_masks", "image_info") if self._include_mask else ()
        )
        missing = [k for k in required if k not in predictions]
        if missing:
            raise EvaluationInputError(
                f"{where}: predictions lack {missing}; received keys {sorted(predictions)}"
            )
        if groundtruths is None:
            groundtruths = predictions.get("groundtruths") or {
                k[len(GROUNDTRUTH_PREFIX) :]: v
                for k, v in predictions.items()
                if k.startswith(GROUNDTRUTH_PREFIX)
            }
        if self._coco_gt is None and not groundtruths:
            raise EvaluationInputError(
                f"{where}: no annotation_file was given, so every batch needs ground truth "
                f"(`groundtruths/*` keys or the `groundtruths` argument); received keys "
                f"{sorted(predictions)}"
            )

        fresh_ids = self._add_images(predictions["source_id"], where)
        if self._coco_gt is None:
            images, annotations = coco_groundtruth.convert_groundtruths(
                groundtruths, include_mask=self._include_mask
            )
            fresh = {image_id for image_id, _ in fresh_ids}
            self._gt_images.extend(i for i in images if i["id"] in fresh)
            self._gt_annotations.extend(a for a in annotations if a["image_id"] in fresh)
        for image_id, b in fresh_ids:
            self._detections.extend(
                convert_detections(predictions, b, image_id, include_mask=self._include_mask)
            )

    def _add_images(self, source_ids, where):
        """[(image id, row)] of the batch's real images not seen before."""
        fresh = []
        for b, source_id in enumerate(np.asarray(source_ids).reshape(-1)):
            image_id = coco_groundtruth.parse_image_id(source_id, where)
            if image_id < 0:
                continue
            if image_id in self._image_ids:
                if not self._warned_duplicate:
                    logging.warning("%s: image %d seen again; counting it once", where, image_id)
                    self._warned_duplicate = True
                continue
            if self._coco_gt is not None and image_id not in self._coco_gt.imgs:
                raise EvaluationInputError(
                    f"{where}: image id {image_id} is not in annotation file "
                    f"{self._annotation_file!r}; eval.val_json_file must describe the images "
                    "of eval.eval_file_pattern"
                )
            self._image_ids.add(image_id)
            fresh.append((image_id, b))
        return fresh

    def _ground_truth(self):
        if self._coco_gt is not None:
            return self._coco_gt
        if self._num_classes:
            category_ids = range(1, self._num_classes)
        elif self._label_map:
            category_ids = self._label_map
        else:
            category_ids = {a["category_id"] for a in self._gt_annotations}
            category_ids |= {d["category_id"] for d in self._detections}
        dataset = coco_groundtruth.build_coco_dataset(
            self._gt_images, self._gt_annotations, category_ids, self._label_map
        )
        return _coco_from_dataset(dataset)

    def _run_cocoeval(self, coco_gt, iou_type):
        """COCOeval stats [12] of the accumulated detections, and the summary text."""
        results = []
        for i, detection in enumerate(self._detections):
            result = dict(detection, id=i + 1, iscrowd=0)
            if iou_type == "segm":
                # Mask metrics bin objects by mask area and match masks only.
                result["area"] = float(mask_api.area(detection["segmentation"]))
                result["bbox"] = list(mask_api.toBbox(detection["segmentation"]))
            else:
                result.pop("segmentation", None)
                result["area"] = detection["bbox"][2] * detection["bbox"][3]
            results.append(result)
        coco_dt = _coco_from_dataset(
            {
                "images": coco_gt.dataset["images"],
                "categories": coco_gt.dataset["categories"],
                "annotations": results,
            }
        )
        evaluation = cocoeval.COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluation.params.imgIds = sorted(self._image_ids)
        _quietly(evaluation.evaluate)
        _quietly(evaluation.accumulate)
        _, summary = _quietly(evaluation.summarize)
        return evaluation, summary

    def evaluate(self):
        """COCO metrics of everything added since the last reset; then resets.

        Returns:
          {name: float} with the tensorflow/tpu detection metric names: AP, AP50,
          AP75, APs, APm, APl, ARmax1, ARmax10, ARmax100, ARs, ARm, ARl (and mask_*
          with masks). Values are pycocotools' (-1 where a metric has no ground truth,
          e.g. APs without small objects).
        """
        if not self._image_ids:
            raise RuntimeError(
                "COCOEvaluator.evaluate: no images were added; call update() with prediction "
                "batches first (is the eval input empty or eval.eval_samples 0?)"
            )
        coco_gt = self._ground_truth()
        evaluation, summary = self._run_cocoeval(coco_gt, "bbox")
        metrics = dict(zip(METRIC_NAMES, (float(v) for v in evaluation.stats)))
        self.summary_text = "Box:\n" + summary
        if self._include_mask:
            mask_evaluation, summary = self._run_cocoeval(coco_gt, "segm")
            metrics.update(zip(MASK_METRIC_NAMES, (float(v) for v in mask_evaluation.stats)))
            self.summary_text += "Mask:\n" + summary
        if self._per_category_metrics:
            metrics.update(_per_category_metrics(evaluation))
        self._last_metrics = metrics
        self._last_detections = self._detections
        self.reset()
        return dict(metrics)

    def write_outputs(self, eval_dir, step):
        """Writes metrics_<step>.json and detections_<step>.json of the last `evaluate`.

        Both are written to a temporary file and renamed, so readers never see a partial
        file. Detections are in the COCO results format (image_id, category_id,
        bbox [x, y, w, h], score, and segmentation RLE with str counts for masks).

        Returns:
          (metrics path, detections path).
        """
        if self._last_metrics is None:
            raise RuntimeError("COCOEvaluator.write_outputs: call evaluate() first")
        os.makedirs(eval_dir, exist_ok=True)
        metrics_path = os.path.join(eval_dir, f"metrics_{int(step)}.json")
        detections_path = os.path.join(eval_dir, f"detections_{int(step)}.json")
        write_atomically(metrics_path, json.dumps(self._last_metrics))
        write_atomically(detections_path, json.dumps(self._last_detections))
        return metrics_path, detections_path
