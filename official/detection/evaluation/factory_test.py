import json
import types

import pytest

from official.detection.configs import loader
from official.detection.evaluation import factory


def test_retinanet_default_builds_box_evaluator_from_batch_ground_truth():
    params = loader.load_config("retinanet")
    evaluator = factory.evaluator_generator(params)()
    assert evaluator.metric_names[:3] == ("AP", "AP50", "AP75")
    assert len(evaluator.metric_names) == 12
    assert evaluator.annotation_file is None


def test_mask_rcnn_with_annotation_file(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    params = loader.load_config("mask_rcnn", params_override={"eval": {"val_json_file": str(path)}})
    evaluator = factory.evaluator_generator(params)()
    assert len(evaluator.metric_names) == 24 and evaluator.metric_names[12] == "mask_AP"
    assert evaluator.annotation_file == str(path)


def test_use_json_file_false_ignores_the_file():
    params = loader.load_config(
        "retinanet",
        params_override={"eval": {"val_json_file": "/nowhere.json", "use_json_file": False}},
    )
    assert factory.evaluator_generator(params)().annotation_file is None


def test_missing_annotation_file_is_reported_up_front():
    params = loader.load_config(
        "retinanet", params_override={"eval": {"val_json_file": "/nowhere/instances.json"}}
    )
    with pytest.raises(
        ValueError,
        match=r"eval.val_json_file: '/nowhere/instances.json' does "
        "not exist",
    ):
        factory.evaluator_generator(params)


def test_unknown_eval_type():
    params = types.SimpleNamespace(eval=types.SimpleNamespace(type="keypoints"))
    with pytest.raises(
        ValueError,
        match=r"eval.type: unknown evaluation type 'keypoints'; "
        r"choose one of \['box', 'box_and_mask'\]",
    ):
        factory.evaluator_generator(params)
