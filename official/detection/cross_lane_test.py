"""A checkpoint written on one TensorFlow lane restores on the other, same detections.

This lane trains a Mask R-CNN for three steps and evaluates it; the other lane's
`main.py --mode=eval` restores the same checkpoint and must find the same detections
(boxes, scores, classes, masks) on the same records. Run on both lanes
(`scripts/test.sh --both` sets both up first), it checks both directions.
"""

import json
import os
import shutil
import sys

import numpy as np
import pytest

from official.detection.testing import lanes, script_runs, shapes_records

MAIN = os.path.join(os.path.dirname(__file__), "main.py")
CONFIG = os.path.join(os.path.dirname(__file__), "configs", "shapes", "mask_rcnn_shapes.yaml")


def _run_main(python, *args):
    return script_runs.run_python_script(MAIN, *args, timeout=600, python=python)


def _by_key(detections):
    return sorted(detections, key=lambda d: (d["image_id"], d["category_id"], -d["score"]))


def test_checkpoint_restores_on_the_other_lane_with_the_same_detections(tmp_path):
    other_python = lanes.other_lane_python()
    if other_python is None:
        pytest.skip(
            f"the {lanes.other_lane()} lane is not set up "
            f"(bash scripts/setup_env.sh{' --tf1' if lanes.other_lane() == 'tf1' else ''})"
        )
    records = shapes_records.write_shapes_records(
        str(tmp_path / "shapes"), num_train=8, num_val=4, image_size=128
    )
    override = (
        f"train.train_file_pattern={records['train_file_pattern']},"
        f"eval.eval_file_pattern={records['eval_file_pattern']},"
        f"eval.val_json_file={records['val_json_file']},"
        "train.total_steps=3,train.iterations_per_loop=3,train.train_batch_size=2,"
        "train.learning_rate.warmup_steps=1,eval.eval_batch_size=2,"
        # Seeded and read in order (the same checkpoint every run), and a threshold low
        # enough that three steps from scratch give detections (read in order, none
        # score above 0.01).
        "postprocess.score_threshold=0.001,train.seed=1,train.deterministic_input=true"
    )
    common = ["--model=mask_rcnn", f"--config_file={CONFIG}", f"--params_override={override}"]
    here = str(tmp_path / "here")
    result = _run_main(
        sys.executable, *common, "--mode=train", "--eval_after_training", f"--model_dir={here}"
    )
    assert result.returncode == 0, result.stderr[-4000:]

    there = str(tmp_path / "there")
    shutil.copytree(here, there, ignore=shutil.ignore_patterns("eval"))
    result = _run_main(other_python, *common, "--mode=eval", f"--model_dir={there}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Restoring parameters from" in result.stderr and "model.ckpt-3" in result.stderr

    ours = _by_key(json.load(open(os.path.join(here, "eval", "detections_3.json"))))
    theirs = _by_key(json.load(open(os.path.join(there, "eval", "detections_3.json"))))
    assert len(ours) >= 10, len(ours)
    assert [(d["image_id"], d["category_id"]) for d in ours] == [
        (d["image_id"], d["category_id"]) for d in theirs
    ]
    np.testing.assert_allclose(
        [d["score"] for d in ours], [d["score"] for d in theirs], rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        [d["bbox"] for d in ours], [d["bbox"] for d in theirs], rtol=0, atol=1e-2
    )
    same_masks = [a["segmentation"] == b["segmentation"] for a, b in zip(ours, theirs)]
    assert np.mean(same_masks) >= 0.9, same_masks
    metrics_here = json.load(open(os.path.join(here, "eval", "metrics_3.json")))
    metrics_there = json.load(open(os.path.join(there, "eval", "metrics_3.json")))
    for name in ("AP", "mask_AP"):
        assert metrics_there[name] == pytest.approx(metrics_here[name], abs=1e-4)
