"""Builds the evaluator a config asks for; the only evaluation module that reads config."""

import os

from official.detection.evaluation.coco_evaluator import COCOEvaluator
from official.detection.evaluation.coco_groundtruth import EvaluationInputError

# eval.type -> whether masks are evaluated too.
EVAL_TYPES = {"box": False, "box_and_mask": True}


def evaluator_generator(params):
    """`fn() -> COCOEvaluator` for `params.eval` (a fresh evaluator per evaluation).

    Ground truth comes from `eval.val_json_file` when `eval.use_json_file` is true and
    the file is set, and is otherwise built from the eval batches' ground truth. A
    missing annotation file is reported now rather than after training.
    """
    eval_params = params.eval
    if eval_params.type not in EVAL_TYPES:
        raise EvaluationInputError(
            f"eval.type: unknown evaluation type {eval_params.type!r}; "
            f"choose one of {sorted(EVAL_TYPES)}"
        )
    include_mask = EVAL_TYPES[eval_params.type]
    annotation_file = eval_params.val_json_file if eval_params.use_json_file else ""
    if annotation_file and not os.path.isfile(annotation_file):
        raise EvaluationInputError(
            f"eval.val_json_file: {annotation_file!r} does not exist; give the COCO "
            "instances JSON of the eval images, or '' to use the ground truth in the eval "
            "TFRecords"
        )

    def build():
        return COCOEvaluator(
            annotation_file=annotation_file or None,
            include_mask=include_mask,
            per_category_metrics=eval_params.per_category_metrics,
        )

    return build
