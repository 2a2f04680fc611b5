"""Evaluating a SavedModel gives the checkpoint's evaluation: same detections, same AP.

Each model is trained for two steps by main.py and evaluated from its checkpoint
(`main.py --mode=eval`); its exports, in each input type, are evaluated on the same
records (`main.py --mode=eval --saved_model_dir`, in-process through runner.run, and once
through the command line). Scores are thresholded at 0 so that every detection slot is
compared.
"""

import collections
import json
import os
import re

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from official.detection.configs import loader
from official.detection.export import saved_model
from official.detection.testing import script_runs, shapes_records

HERE = os.path.dirname(__file__)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MAIN = os.path.join(REPO, "official", "detection", "main.py")
TINY_CONFIG = os.path.join(REPO, "official", "detection", "testing", "retinanet_tiny.yaml")
MASK_RCNN_CONFIG = os.path.join(
    REPO, "official", "detection", "configs", "shapes", "mask_rcnn_shapes.yaml"
)
MODELS = {
    "retinanet": (TINY_CONFIG, ""),
    "mask_rcnn": (
        MASK_RCNN_CONFIG,
        "resnet.resnet_depth=10,maskrcnn_parser.output_size=[64,64],eval.eval_batch_size=2",
    ),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return shapes_records.write_shapes_records(
        str(tmp_path_factory.mktemp("records")), num_train=4, num_val=5, image_size=80
    )


def _override(model, records, extra=""):
    override = MODELS[model][1]
    parts = [
        f"train.train_file_pattern={records['train_file_pattern']}",
        f"eval.eval_file_pattern={records['eval_file_pattern']}",
        f"eval.val_json_file={records['val_json_file']}",
        "train.total_steps=2,train.iterations_per_loop=1,train.train_batch_size=2",
        "train.learning_rate.warmup_steps=0,train.seed=1,train.deterministic_input=true",
        "postprocess.score_threshold=0.0",
    ]
    return ",".join(parts + [p for p in (override, extra) if p])


def _params(model, records, model_dir, extra=""):
    return loader.load_config(
        model,
        config_file=MODELS[model][0],
        params_override=_override(model, records, extra),
        forced={"model_dir": model_dir},
    )


@pytest.fixture(scope="module")
def trained(records, tmp_path_factory):
    """{model: model_dir} trained for 2 steps and evaluated from the checkpoint."""
    dirs = {}
    for model in MODELS:
        model_dir = str(tmp_path_factory.mktemp(model))
        flags = {
            "model": model,
            "mode": "train",
            "model_dir": model_dir,
            "config_file": MODELS[model][0],
            "params_override": _override(model, records),
        }
        args = [f"--{name}={value}" for name, value in flags.items()]
        result = _run_main(*args, "--eval_after_training")
        assert result.returncode == 0, result.stderr[-4000:]
        dirs[model] = model_dir
    return dirs


def _read_eval(eval_dir, step=2):
    with open(os.path.join(eval_dir, f"metrics_{step}.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(eval_dir, f"detections_{step}.json")) as f:
        detections = json.load(f)
    return metrics, detections


def _matches(got, want):
    if abs(got["score"] - want["score"]) > 1e-5:
        return False
    if np.max(np.abs(np.subtract(got["bbox"], want["bbox"]))) > 1e-3:
        return False
    if "segmentation" not in want or got["segmentation"] == want["segmentation"]:
        return True
    return mask_utils.iou([got["segmentation"]], [want["segmentation"]], [0])[0][0] > 0.99


def _assert_same_evaluation(served_dir, checkpoint_dir):
    """Every detection of the checkpoint has one of the SavedModel (same image and class,
    score to 1e-5, box to 1e-3 px, mask IoU > 0.99) and the metrics agree to 1e-4.
    Detections are matched, not sorted: an untrained model ties scores."""
    served_metrics, served = _read_eval(served_dir)
    metrics, expected = _read_eval(checkpoint_dir)
    assert len(served) == len(expected) > 0
    unmatched = collections.defaultdict(list)
    for got in served:
        unmatched[got["image_id"], got["category_id"]].append(got)
    for want in expected:
        candidates = unmatched[want["image_id"], want["category_id"]]
        match = next((i for i, got in enumerate(candidates) if _matches(got, want)), None)
        assert match is not None, f"no served detection like {want}"
        del candidates[match]
    assert set(served_metrics) == set(metrics)
    for name, value in metrics.items():
        assert served_metrics[name] == pytest.approx(value, abs=1e-4), name
    return metrics


CASES = [
    ("retinanet", "tf_example", 0, {}),
    ("retinanet", "image_bytes", 3, {"output_normalized_coordinates": True}),
    ("retinanet", "image_tensor", 0, {"cast_detection_classes_to_float": True}),
    ("retinanet", "raw_image_tensor", 2, {}),
    ("mask_rcnn", "tf_example", 0, {}),
    ("mask_rcnn", "image_bytes", 0, {"output_image_info": False}),
    ("mask_rcnn", "image_bytes", 3, {"output_full_image_masks": True}),
    ("mask_rcnn", "image_tensor", 0, {"output_full_image_masks": True}),
]


@pytest.mark.parametrize("model,input_type,batch_size,options", CASES)
def test_savedmodel_evaluation_equals_checkpoint_evaluation(
    model, input_type, batch_size, options, trained, records, tmp_path
):
    from official.detection.executor import runner

    model_dir = trained[model]
    params = _params(model, records, model_dir)
    export_dir = str(tmp_path / "export")
    saved_model.export_saved_model(
        params,
        export_dir,
        model_dir,
        batch_size=batch_size,
        input_type=input_type,
        **options,
    )
    run_dir = str(tmp_path / "run")
    metrics = runner.run(_params(model, records, run_dir), mode="eval", saved_model_dir=export_dir)
    checkpoint_metrics = _assert_same_evaluation(
        os.path.join(run_dir, "eval"), os.path.join(model_dir, "eval")
    )
    assert metrics == pytest.approx(checkpoint_metrics, abs=1e-4)
    if model == "mask_rcnn":
        assert "mask_AP" in metrics


def test_masks_pasted_into_raw_images_are_not_evaluated(trained, records, tmp_path):
    from official.detection.executor import runner

    model_dir = trained["mask_rcnn"]
    export_dir = str(tmp_path / "export")
    saved_model.export_saved_model(
        _params("mask_rcnn", records, model_dir),
        export_dir,
        model_dir,
        input_type="raw_image_tensor",
        output_full_image_masks=True,
    )
    with pytest.raises(runner.RunError) as raised:
        runner.run(
            _params("mask_rcnn", records, str(tmp_path / "run")),
            mode="eval",
            saved_model_dir=export_dir,
        )
    assert str(raised.value) == (
        f"{export_dir} pastes its masks into the raw input, not the original images "
        "(--saved_model_dir); evaluate an export without --output_full_image_masks, or of "
        "another --input_type"
    )


def _run_main(*args):
    return script_runs.run_python_script(MAIN, *args, timeout=600)


def test_command_line_evaluates_an_export_and_names_a_misfit(trained, records, tmp_path):
    model_dir = trained["retinanet"]
    params = _params("retinanet", records, model_dir)
    export_dir = str(tmp_path / "export")
    saved_model.export_saved_model(params, export_dir, model_dir, input_type="tf_example")
    with open(os.path.join(export_dir, saved_model.EXPORT_INFO_FILE)) as f:
        info = json.load(f)
    assert (info["global_step"], info["input_type"], info["model"]) == (
        2,
        "tf_example",
        "retinanet",
    )

    run_dir = str(tmp_path / "run")
    common = [
        "--model=retinanet",
        f"--config_file={TINY_CONFIG}",
        f"--model_dir={run_dir}",
        f"--saved_model_dir={export_dir}",
    ]
    result = _run_main(
        *common, "--mode=eval", f"--params_override={_override('retinanet', records)}"
    )
    assert result.returncode == 0, result.stderr[-4000:]
    _assert_same_evaluation(os.path.join(run_dir, "eval"), os.path.join(model_dir, "eval"))
    # The stages account for the whole evaluation (each printed to 0.1 s).
    closing = re.search(r"images/s over ([0-9.]+) s \(([^;]+);", result.stderr)
    assert closing, result.stderr[-4000:]
    stages = [float(v) for v in re.findall(r" ([0-9.]+) s", closing.group(2))]
    assert len(stages) == 6 and abs(sum(stages) - float(closing.group(1))) <= 0.4, closing.group(0)

    # Raw images of another size than the parser makes: one line naming both keys.
    raw_dir = str(tmp_path / "raw")
    saved_model.export_saved_model(params, raw_dir, model_dir, input_type="raw_image_tensor")
    bigger = _override("retinanet", records, "retinanet_parser.output_size=[128,128]")
    result = _run_main(
        *common[:3], f"--saved_model_dir={raw_dir}", "--mode=eval", f"--params_override={bigger}"
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {raw_dir} takes raw images of 64x64 but the evaluation parser makes 128x128 "
        "(retinanet_parser.output_size); set it to 64,64 or export with another --input_type"
    )
    assert "Traceback" not in result.stderr

    # Not a SavedModel; and the flag outside eval.
    result = _run_main(
        *common[:3],
        f"--saved_model_dir={tmp_path}",
        "--mode=eval",
        f"--params_override={_override('retinanet', records)}",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path} holds no SavedModel (--saved_model_dir); give the directory "
        "written by scripts/export_saved_model.py"
    )
    result = _run_main(*common, "--mode=train")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --saved_model_dir applies to --mode=eval only, not --mode=train"
    )
