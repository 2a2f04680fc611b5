"""main.py: flag errors, and whole runs on shapes TFRecords made by the converter."""

import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import yaml

from official.detection.dataloader import tf_example_builder
from official.detection.testing import shapes_records

MAIN = os.path.join(os.path.dirname(__file__), "main.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TINY_CONFIG = os.path.join(os.path.dirname(__file__), "testing", "retinanet_tiny.yaml")
SHAPES_CONFIG = os.path.join(
    os.path.dirname(__file__), "configs", "shapes", "retinanet_shapes.yaml"
)


def _run_main(*args, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, MAIN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def _train_retinanet(model_dir, override, *extra, config=SHAPES_CONFIG):
    """main.py --mode=train of a RetinaNet config with these overrides."""
    return _run_main(
        "--model=retinanet",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--config_file={config}",
        f"--params_override={override}",
        *extra,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model_dir=/tmp/x", "--use_tpu=True"], "Cloud TPUs are not supported"),
        (["--model_dir=/tmp/x", "--mode=predict"], "--mode='predict' is not a mode; valid"),
        (
            ["--model_dir=/tmp/x", "--model=yolo"],
            "--model='yolo' is not a model; valid: retinanet, mask_rcnn, faster_rcnn",
        ),
        (["--mode=train"], "--model_dir is required"),
        (["--model_dir=/tmp/x", "--mode=eval", "--eval_after_training"], "applies to --mode=train"),
        (["--model_dir=/tmp/x", "--params_override=train.total_stepz=3"], "train.total_steps"),
        (
            ["--model_dir=/tmp/x", "--params_override=architecture.box_convention=detectron"],
            "error: architecture.box_convention (from --params_override): 'detectron' (str) is "
            "not a valid choice; expected one of 'consistent', 'tensorflow_tpu'\n",
        ),
        (
            ["--model_dir=/tmp/x", "--cpu_kernels=fast"],
            "error: --cpu_kernels='fast' is not a kernel choice; valid: auto, on, off",
        ),
    ],
)
def test_bad_flags_exit_1_with_a_clear_message(args, message):
    result = _run_main(*args, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert message in result.stderr


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return shapes_records.write_shapes_records(
        str(tmp_path_factory.mktemp("shapes")), num_train=8, num_val=4, image_size=128
    )


def test_train_then_evaluate_writes_checkpoints_metrics_and_detections(records, tmp_path):
    model_dir = str(tmp_path / "model")
    override = (
        f"train.train_file_pattern={records['train_file_pattern']},"
        f"eval.eval_file_pattern={records['eval_file_pattern']},"
        f"eval.val_json_file={records['val_json_file']},"
        "train.total_steps=4,train.iterations_per_loop=2,train.train_batch_size=2,"
        "train.learning_rate.warmup_steps=2,eval.eval_batch_size=2"
    )
    result = _train_retinanet(model_dir, override, "--eval_after_training=True")
    assert result.returncode == 0, result.stderr[-4000:]
    log = result.stderr
    assert "step 4/4" in log and "images/s" in log and "time left" in log
    assert "is deprecated" not in log and "Instructions for updating" not in log
    assert os.path.exists(os.path.join(model_dir, "model.ckpt-4.index"))
    params = yaml.safe_load(open(os.path.join(model_dir, "params.yaml")))
    assert params["train"]["total_steps"] == 4 and params["model_dir"] == model_dir
    metrics = json.load(open(os.path.join(model_dir, "eval", "metrics_4.json")))
    assert set(metrics) == {
        "AP", "AP50", "AP75", "APs", "APm", "APl",
        "ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl",
    }  # fmt: skip
    detections = json.load(open(os.path.join(model_dir, "eval", "detections_4.json")))
    assert isinstance(detections, list)
    for det in detections:
        assert set(det) >= {"image_id", "category_id", "bbox", "score"}
    assert glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))
    (events,) = glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))
    # Checkpoints every iterations_per_loop steps from the start, with .meta files; the
    # graph for TensorBoard in the events file, once, and no text copy of it.
    for step in (0, 2, 4):
        assert os.path.exists(os.path.join(model_dir, f"model.ckpt-{step}.meta")), step
    assert not os.path.exists(os.path.join(model_dir, "graph.pbtxt"))
    kinds = [e.WhichOneof("what") for e in tf.train.summary_iterator(events)]
    assert kinds.count("graph_def") == 1 and kinds.count("meta_graph_def") == 1

    # --mode=eval finds the final checkpoint, evaluates it and exits; the
    # ground truth now comes from the TFRecords (no JSON file).
    result = _run_main(
        "--model=retinanet",
        "--mode=eval",
        f"--model_dir={model_dir}",
        f"--config_file={SHAPES_CONFIG}",
        f"--params_override={override.replace(records['val_json_file'], '')}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    again = json.load(open(os.path.join(model_dir, "eval", "metrics_4.json")))
    assert again["AP"] == pytest.approx(metrics["AP"], abs=1e-6)


def test_eval_of_a_checkpoint_without_a_step_is_one_error_line(records, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "checkpoint").write_text('model_checkpoint_path: "final"\n')
    (model_dir / "final.index").write_bytes(b"")
    result = _run_main(
        "--model=retinanet",
        "--mode=eval",
        f"--model_dir={model_dir}",
        f"--config_file={TINY_CONFIG}",
        f"--params_override=eval.eval_file_pattern={records['eval_file_pattern']}",
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"error: the checkpoint name 'final' does not end in its global step ({model_dir}/final); "
    )


def test_seed_command_runs_as_written(records, tmp_path):
    """The SpineNet-49S RetinaNet seed command, with the data path of shapes records.

    The override string keeps the seed's form (unquoted globs, YAML flow
    mapping); only the step count and batch are smaller to keep the test short.
    """
    data_path = os.path.dirname(records["train_file_pattern"])
    override = (
        "{ train: { total_steps : 2, train_batch_size : 2, "
        f"train_file_pattern: {data_path}/train-* }}, "
        f"eval: {{ val_json_file: {records['val_json_file']}, "
        f"eval_file_pattern: {data_path}/val-*, eval_batch_size: 2 }} }}"
    )
    result = _run_main(
        f"--model_dir={tmp_path / 'result'}",
        "--use_tpu=False",
        "--mode=train",
        "--eval_after_training=True",
        "--config_file=official/detection/configs/spinenet/spinenet49S_retinanet.yaml",
        f"--params_override={override}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert os.path.exists(tmp_path / "result" / "eval" / "metrics_2.json")


MASK_RCNN_SHAPES_CONFIG = os.path.join(
    os.path.dirname(__file__), "configs", "shapes", "mask_rcnn_shapes.yaml"
)
BOX_METRICS = {"AP", "AP50", "AP75", "APs", "APm", "APl"}
BOX_METRICS |= {"ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl"}


@pytest.mark.parametrize("model, cpu_kernels", [("mask_rcnn", "auto"), ("faster_rcnn", "off")])
def test_rcnn_train_and_evaluate_boxes_and_masks(records, tmp_path, model, cpu_kernels):
    """A few steps of each R-CNN, evaluated with the JSON file, then from the records."""
    model_dir = str(tmp_path / "model")
    override = (
        f"train.train_file_pattern={records['train_file_pattern']},"
        f"eval.eval_file_pattern={records['eval_file_pattern']},"
        f"eval.val_json_file={records['val_json_file']},"
        "train.total_steps=3,train.iterations_per_loop=3,train.train_batch_size=2,"
        "train.learning_rate.warmup_steps=1,eval.eval_batch_size=2"
    )
    common = [f"--model={model}", f"--model_dir={model_dir}", f"--cpu_kernels={cpu_kernels}"]
    common.append(f"--config_file={MASK_RCNN_SHAPES_CONFIG}")
    result = _run_main(
        *common, "--mode=train", "--eval_after_training", f"--params_override={override}"
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "step 3/3" in result.stderr
    for loss in ("rpn_score_loss", "rpn_box_loss", "fast_rcnn_class_loss", "fast_rcnn_box_loss"):
        assert loss in result.stderr
    assert ("mask_loss" in result.stderr) == (model == "mask_rcnn")
    # Which kernels, once at the start; layers of the training graph that cannot use the
    # CPU kernels (the mask head on the foreground RoIs), once. The evaluation's predict
    # graph is built with TensorFlow's kernels.
    kernels = "replica(s) in all; " + (
        "TensorFlow's kernels"
        if cpu_kernels == "off"
        else "CPU kernels in training graphs: Winograd convolutions"
    )
    assert result.stderr.count(kernels) == 1
    # And that TensorFlow's graph optimiser is off (--grappler=auto on a CPU), once.
    assert result.stderr.count("; Grappler graph optimisation off") == 1
    fallbacks = re.findall(r"keep TensorFlow's kernels; .* \((\w+) graph\)", result.stderr)
    assert fallbacks == ([] if cpu_kernels == "off" else ["train"])
    metrics = json.load(open(os.path.join(model_dir, "eval", "metrics_3.json")))
    expected = BOX_METRICS | ({f"mask_{m}" for m in BOX_METRICS} if model == "mask_rcnn" else set())
    assert set(metrics) == expected
    detections = json.load(open(os.path.join(model_dir, "eval", "detections_3.json")))
    for det in detections:
        assert set(det) >= {"image_id", "category_id", "bbox", "score"}
        assert ("segmentation" in det) == (model == "mask_rcnn")

    # --mode=eval: the ground truth (masks included) from the TFRecords.
    no_json = override.replace(records["val_json_file"], "")
    result = _run_main(*common, "--mode=eval", f"--params_override={no_json}")
    assert result.returncode == 0, result.stderr[-4000:]
    again = json.load(open(os.path.join(model_dir, "eval", "metrics_3.json")))
    assert set(again) == expected
    for name in ("AP", "mask_AP") if model == "mask_rcnn" else ("AP",):
        assert again[name] == pytest.approx(metrics[name], abs=1e-6)


def test_a_missing_annotation_file_is_one_error_line_before_training(records, tmp_path):
    model_dir = tmp_path / "model"
    missing = tmp_path / "no_such.json"
    override = (
        f"train.train_file_pattern={records['train_file_pattern']},"
        f"eval.eval_file_pattern={records['eval_file_pattern']},"
        f"eval.val_json_file={missing},train.total_steps=2"
    )
    result = _train_retinanet(model_dir, override, "--eval_after_training=True")
    assert result.returncode == 1
    assert f"error: eval.val_json_file: '{missing}' does not exist; give the COCO" in result.stderr
    assert "Traceback" not in result.stderr
    assert not glob.glob(str(model_dir / "model.ckpt-*"))


def test_a_truncated_training_shard_is_named_and_checkpoints_stay(records, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shards = sorted(glob.glob(records["train_file_pattern"]))
    for shard in shards:
        shutil.copy(shard, data)
    broken = data / os.path.basename(shards[-1])
    broken.write_bytes(broken.read_bytes()[: os.path.getsize(broken) // 2])
    model_dir = tmp_path / "model"
    override = (
        f"train.train_file_pattern={data}/train-*,"
        f"eval.eval_file_pattern={records['eval_file_pattern']},"
        "train.total_steps=12,train.train_batch_size=2"
    )
    result = _train_retinanet(model_dir, override)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: broken TFRecord file: the record at byte ")
    assert f"({broken}, matched by train.train_file_pattern); write this shard again" in lines[0]
    assert "Traceback" not in result.stderr
    reader = tf.train.load_checkpoint(str(model_dir))
    assert reader.get_tensor("global_step") == 0


@pytest.mark.parametrize(
    "bad, fault",
    [
        (lambda good: good[:200] + b"garbage" * 10, "broken JPEG data ("),
        (lambda good: b"hello" * 20, "not a JPEG, PNG, GIF or BMP image ("),
    ],
    ids=["truncated_jpeg", "not_an_image"],
)
def test_an_image_that_does_not_decode_names_its_source_id(tmp_path, bad, fault):
    good = tf_example_builder.encode_image(np.full((64, 64, 3), 128, np.uint8))
    examples = [
        tf_example_builder.build_example(
            good if i != 2 else bad(good),
            64,
            64,
            [[0.1, 0.1, 0.5, 0.5]],
            [1],
            source_id=str(100 + i),
        )
        for i in range(4)
    ]
    records = tmp_path / "train-00000-of-00001.tfrecord"
    tf_example_builder.write_tfrecord(str(records), examples)
    args = [
        "--model=retinanet",
        "--mode=train",
        f"--model_dir={tmp_path / 'model'}",
        f"--config_file={SHAPES_CONFIG}",
        # Read in order: shuffled (repeat, then a 64-example buffer), record 2 stays out
        # of the first 12 examples in about 3% of runs.
        f"--params_override=train.train_file_pattern={records},train.total_steps=6,"
        "train.train_batch_size=2,train.deterministic_input=true",
    ]
    result = _run_main(*args)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: the image of source_id '102' does not decode: {fault}")
    assert error.endswith(
        f"(record 2 of {records}, matched by train.train_file_pattern); write the records "
        "again with scripts/create_coco_tf_record.py, which checks every image "
        "(--skip_bad_images leaves bad ones out)"
    )
    assert "Traceback" not in result.stderr
    verbose = _run_main(*args, "--verbose")
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == error


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL after the first checkpoint; the same command finishes the run."""
    records = shapes_records.write_shapes_records(
        str(tmp_path / "shapes"), num_train=8, num_val=2, image_size=64
    )
    model_dir = tmp_path / "model"
    command = [
        sys.executable,
        MAIN,
        "--model=retinanet",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--config_file={TINY_CONFIG}",
        f"--params_override=train.train_file_pattern={records['train_file_pattern']},"
        "train.total_steps=300,train.iterations_per_loop=10",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        first = subprocess.Popen(command, cwd=REPO, env=env, stderr=log)
        deadline = time.time() + 300
        # The 'checkpoint' file names a checkpoint once its files are complete.
        while (tf.train.latest_checkpoint(str(model_dir)) or "-0").endswith("-0"):
            assert first.poll() is None, log_path.read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
    first_log = log_path.read_text()
    assert first.returncode == -signal.SIGKILL and "step 300/300" not in first_log
    resumed_from = tf.train.latest_checkpoint(str(model_dir))
    step = int(resumed_from.rsplit("-", 1)[1])
    assert 10 <= step < 300

    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Restoring parameters from {resumed_from}" in second.stderr
    logged = [int(s) for s in re.findall(r"step (\d+)/300", second.stderr)]
    assert logged[0] > step and logged[-1] == 300, logged
    assert logged == sorted(logged)
    assert tf.train.load_checkpoint(str(model_dir)).get_tensor("global_step") == 300
    # Same data shard for the worker, and the schedule goes on where it stopped: the
    # cosine rate logged at step N (the rate step N trained with, computed from the
    # global step N - 1 before its increment) follows the schedule in both runs.
    shard_lines = [re.findall(r"Training input: (.*)", log) for log in (first_log, second.stderr)]
    assert (
        shard_lines[0]
        == shard_lines[1]
        == [
            "worker 0 of 1 reads 2 of 2 files "
            "(train-00000-of-00002.tfrecord, train-00001-of-00002.tfrecord)"
        ]
    )
    for log in (first_log, second.stderr):
        for logged_step, rate in re.findall(r"step (\d+)/300 .*?lr ([\d.e-]+)", log):
            expected = 0.005 * (1 + math.cos(math.pi * (int(logged_step) - 1) / 300))
            assert float(rate) == pytest.approx(expected, rel=1e-4, abs=1e-9), logged_step


@pytest.mark.parametrize(
    "damage, says",
    [
        (
            lambda data: (
                data[: len(data) // 2]
                + bytes([data[len(data) // 2] ^ 0xFF])
                + data[len(data) // 2 + 1 :]
            ),
            "Checksum does not match",
        ),
        (lambda data: data[:100], "Read less bytes than requested"),
    ],
    ids=["flipped_byte", "truncated"],
)
def test_a_corrupt_checkpoint_is_named_with_the_one_to_resume_from(tmp_path, damage, says):
    records = shapes_records.write_shapes_records(
        str(tmp_path / "shapes"), num_train=4, num_val=2, image_size=64
    )
    model_dir = tmp_path / "model"
    args = [
        "--model=retinanet",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--config_file={TINY_CONFIG}",
        f"--params_override=train.train_file_pattern={records['train_file_pattern']},"
        "train.total_steps=4,train.iterations_per_loop=2",
    ]
    assert _run_main(*args).returncode == 0
    data = model_dir / "model.ckpt-4.data-00000-of-00001"
    data.write_bytes(damage(data.read_bytes()))
    args[-1] = args[-1].replace("total_steps=4", "total_steps=6")
    result = _run_main(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: corrupt checkpoint: ")
    assert says in error
    checkpoint_file = model_dir / "checkpoint"
    assert error.endswith(
        f"({model_dir}/model.ckpt-4, model_dir); remove model.ckpt-4.*, set "
        f'model_checkpoint_path in {checkpoint_file} to "model.ckpt-2", then run the same '
        "command to resume from model.ckpt-2"
    )
    # Following the advice resumes from step 2.
    for path in glob.glob(str(model_dir / "model.ckpt-4.*")):
        os.remove(path)
    state = checkpoint_file.read_text().replace('"model.ckpt-4"', '"model.ckpt-2"', 1)
    checkpoint_file.write_text(state)
    result = _run_main(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Restoring parameters from {model_dir}/model.ckpt-2" in result.stderr


def test_a_model_dir_of_another_model_is_refused_before_training(tmp_path):
    records = shapes_records.write_shapes_records(
        str(tmp_path / "shapes"), num_train=4, num_val=2, image_size=64
    )
    model_dir = tmp_path / "model"
    override = f"train.train_file_pattern={records['train_file_pattern']},train.total_steps=2"
    common = [f"--model_dir={model_dir}", f"--params_override={override}", "--mode=train"]
    result = _run_main("--model=retinanet", f"--config_file={TINY_CONFIG}", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    params_yaml = (model_dir / "params.yaml").read_text()

    other = _run_main("--model=mask_rcnn", f"--config_file={MASK_RCNN_SHAPES_CONFIG}", *common)
    assert other.returncode == 1
    assert "Traceback" not in other.stderr
    assert (
        other.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: model_dir holds a checkpoint of another model: type is 'retinanet' there and "
            f"'mask_rcnn' in this run ({model_dir / 'params.yaml'}; "
        )
    )
    assert (model_dir / "params.yaml").read_text() == params_yaml

    # Without the params.yaml, restoring finds the first variable the checkpoint lacks.
    (model_dir / "params.yaml").unlink()
    common[1] = common[1].replace("total_steps=2", "total_steps=4")
    other = _run_main("--model=mask_rcnn", f"--config_file={MASK_RCNN_SHAPES_CONFIG}", *common)
    assert other.returncode == 1
    assert "Traceback" not in other.stderr
    error = other.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "error: the checkpoint in model_dir does not fit this model: it has no variable "
    )
    assert error.endswith(
        f"({model_dir}); give a new --model_dir, or run with the config that wrote it"
    )


def test_a_warm_start_checkpoint_that_does_not_fit_is_named_with_counts(tmp_path):
    records = shapes_records.write_shapes_records(
        str(tmp_path / "shapes"), num_train=4, num_val=2, image_size=64
    )
    source = tmp_path / "source"
    base = f"train.train_file_pattern={records['train_file_pattern']},train.total_steps=1"
    common = ["--model=retinanet", "--mode=train", f"--config_file={TINY_CONFIG}"]
    result = _run_main(*common, f"--model_dir={source}", f"--params_override={base}")
    assert result.returncode == 0, result.stderr[-3000:]

    # Another number of classes: the class outputs have another shape and stay unloaded.
    fits = _run_main(
        *common,
        f"--model_dir={tmp_path / 'other_classes'}",
        f"--params_override={base},architecture.num_classes=5,train.checkpoint.path={source}",
    )
    assert fits.returncode == 0, fits.stderr[-3000:]
    assert re.search(
        r"Warm start from \S+model.ckpt-1: loaded \d+ variables, skipped 2 \(2 shape differs "
        r"\(first: retinanet/class_net/class-predict/kernel: model \[3, 3, 16, 5\] vs "
        r"checkpoint \[3, 3, 16, 10\]\)\)",
        fits.stderr,
    ), fits.stderr[-3000:]

    none = _run_main(
        *common,
        f"--model_dir={tmp_path / 'nothing'}",
        f"--params_override={base},train.checkpoint.path={source},"
        "train.checkpoint.prefix=resnet50/",
    )
    assert none.returncode == 1
    assert "Traceback" not in none.stderr
    error = none.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"error: warm start would load no variable of the model from '{source}/model.ckpt-1': "
    )
    assert "(train.checkpoint.path, train.checkpoint.prefix='resnet50/'); check" in error


def test_a_tensorflow_that_does_not_import_is_one_error_line(tmp_path):
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise ImportError("libtensorflow_framework.so.1: no")\n')
    result = subprocess.run(
        [sys.executable, MAIN, "--model=retinanet", f"--model_dir={tmp_path / 'model'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(tmp_path)),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: ImportError: libtensorflow_framework.so.1: no (unexpected failure); run again"
        )
    )
