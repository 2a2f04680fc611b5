"""SavedModel export: each family in each input type, reloaded in a fresh process, gives
the checkpoint's `Estimator.predict` outputs; export errors through the command line."""

import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import input_reader, mode_keys, tf_example_builder
from official.detection.export import saved_model
from official.detection.modeling import factory as modeling_factory
from official.detection.ops import preprocess_ops
from official.detection.testing import saved_models, script_runs, shapes_records

HERE = os.path.dirname(__file__)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SCRIPT = os.path.join(REPO, "scripts", "export_saved_model.py")
MAIN = os.path.join(REPO, "official", "detection", "main.py")
TINY_CONFIG = os.path.join(REPO, "official", "detection", "testing", "retinanet_tiny.yaml")
MASK_RCNN_CONFIG = os.path.join(
    REPO, "official", "detection", "configs", "shapes", "mask_rcnn_shapes.yaml"
)
# Every detection slot filled (no score is below 0), so all of them are compared.
ALL_DETECTIONS = "postprocess.score_threshold=0.0"
SPINENET = (
    "architecture.backbone=spinenet,architecture.multilevel_features=identity,"
    "architecture.num_classes=10,spinenet.model_id=49S,retinanet_parser.output_size=[128,128],"
    "retinanet_head.num_convs=1,retinanet_head.num_filters=16,anchor.num_scales=1,"
    "anchor.aspect_ratios=[1.0],postprocess.max_total_size=20"
)
SMALL_MASK_RCNN = "resnet.resnet_depth=10,maskrcnn_parser.output_size=[64,64]"
# model flag, config file, overrides, and how its checkpoint is made: trained by main.py
# (with optimizer slots and a global step, as users have them) or, for SpineNet whose
# training graph takes long to build, initialised. Faster R-CNN is exported from the
# Mask R-CNN checkpoint, whose mask head variables it leaves out.
MASK_RCNN_EXPORT = f"{SMALL_MASK_RCNN},{ALL_DETECTIONS}"
FAMILIES = {
    "retinanet_resnet": ("retinanet", TINY_CONFIG, ALL_DETECTIONS, "retinanet_resnet"),
    "retinanet_spinenet": ("retinanet", "", f"{SPINENET},{ALL_DETECTIONS}", "initialised"),
    "faster_rcnn": ("faster_rcnn", MASK_RCNN_CONFIG, MASK_RCNN_EXPORT, "mask_rcnn"),
    "mask_rcnn": ("mask_rcnn", MASK_RCNN_CONFIG, MASK_RCNN_EXPORT, "mask_rcnn"),
}
TRAINED = {
    "retinanet_resnet": ("retinanet", TINY_CONFIG, ""),
    "mask_rcnn": ("mask_rcnn", MASK_RCNN_CONFIG, SMALL_MASK_RCNN),
}


def _run_script(*args):
    return script_runs.run_python_script(SCRIPT, *args, timeout=300)


class Checkpoints:
    """Model dirs with a checkpoint per kind, made on first use and kept for the module."""

    def __init__(self, root, records):
        self._root = root
        self._records = records
        self._dirs = {}

    def model_dir(self, family):
        model, config_file, override, kind = FAMILIES[family]
        if kind not in self._dirs:
            model_dir = os.path.join(self._root, kind)
            if kind == "initialised":
                params = saved_model.load_export_config(model, config_file, override)
                saved_models.save_initialised_checkpoint(params, model_dir)
            else:
                self._train(kind, model_dir)
            self._dirs[kind] = model_dir
        return self._dirs[kind]

    def _train(self, kind, model_dir):
        model, config_file, override = TRAINED[kind]
        steps = (
            f"train.train_file_pattern={self._records['train_file_pattern']},"
            "train.total_steps=1,train.iterations_per_loop=1,train.train_batch_size=2,"
            "train.learning_rate.warmup_steps=0,train.seed=1"
        )
        result = script_runs.run_python_script(
            MAIN,
            f"--model={model}",
            "--mode=train",
            f"--model_dir={model_dir}",
            f"--config_file={config_file}",
            f"--params_override={steps},{override}" if override else f"--params_override={steps}",
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    records = shapes_records.write_shapes_records(
        str(root / "shapes"), num_train=4, num_val=3, image_size=96
    )
    return Checkpoints(str(root), records)


def _test_images(output_size):
    """Images of several sizes and aspects, with the encoding each is stored in.

    The first has the model's input size: it is also the raw_image_tensor input.
    """
    rng = np.random.RandomState(0)
    base = rng.randint(0, 256, size=(12, 16, 3)).astype(np.uint8)
    image = Image.fromarray(base)
    sizes = [tuple(output_size), (96, 96), (60, 96), (50, 130)]
    formats = ["png", "png", "jpeg", "png"]
    arrays = [np.asarray(image.resize((w, h), Image.BILINEAR)) for h, w in sizes]
    return arrays, formats


def _normalised(image):
    """What `preprocess_ops.normalize_image` computes, in NumPy float32."""
    multiplier = np.array([1.0 / (255.0 * s) for s in preprocess_ops.STDDEV_RGB], np.float32)
    bias = np.array(
        [-m / s for m, s in zip(preprocess_ops.MEAN_RGB, preprocess_ops.STDDEV_RGB)], np.float32
    )
    return image.astype(np.float32) * multiplier + bias


def _estimator_predictions(params, checkpoint, record_path, work_dir):
    """`Estimator.predict` of the checkpoint on each record, one image per batch, through
    the parser evaluation uses."""
    model = modeling_factory.build_model(params)
    reader = input_reader.InputFn(
        record_path, dataloader_factory.parser_generator(params, mode_keys.PREDICT), "predict", 1
    )

    def input_fn(params=None):
        return reader(params).map(lambda images, labels: {"images": images, "labels": labels})

    estimator = tf_estimator.Estimator(model.model_fn, model_dir=work_dir)
    return list(
        estimator.predict(input_fn, checkpoint_path=checkpoint, yield_single_examples=False)
    )


def _assert_same_detections(served, expected, where):
    keys = set(saved_model.DETECTION_KEYS) | {"image_info"}
    if "detection_masks" in expected:
        keys.add("detection_masks")
    assert set(served) == keys, where
    np.testing.assert_array_equal(served["num_detections"], expected["num_detections"], where)
    np.testing.assert_array_equal(served["detection_classes"], expected["detection_classes"], where)
    for key in keys - {"num_detections", "detection_classes"}:
        np.testing.assert_allclose(
            served[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=f"{where} {key}"
        )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_input_type_serves_the_checkpoints_predictions(family, checkpoints, tmp_path):
    model, config_file, override, _ = FAMILIES[family]
    model_dir = checkpoints.model_dir(family)
    params = saved_model.load_export_config(model, config_file, override)
    output_size = list(params[dataloader_factory.parser_name(params)].output_size)
    arrays, formats = _test_images(output_size)
    encoded = [tf_example_builder.encode_image(a, f) for a, f in zip(arrays, formats)]
    examples = [
        tf_example_builder.build_example(e, *a.shape[:2], image_format=f).SerializeToString()
        for e, a, f in zip(encoded, arrays, formats)
    ]
    record_path = str(tmp_path / "images.tfrecord")
    tf_example_builder.write_tfrecord(record_path, examples)

    checkpoint = tf.train.latest_checkpoint(model_dir)
    expected = _estimator_predictions(params, checkpoint, record_path, str(tmp_path / "estimator"))
    assert [int(p["num_detections"][0]) for p in expected] == [
        params.postprocess.max_total_size
    ] * len(arrays)

    pngs = [i for i, f in enumerate(formats) if f == "png"]
    feeds = {
        "raw_image_tensor": ([0], [_normalised(arrays[0])[np.newaxis]]),
        "image_tensor": (pngs, [arrays[i][np.newaxis] for i in pngs]),
        "image_bytes": (range(len(arrays)), [np.array(encoded, object)]),
        "tf_example": (range(len(arrays)), [np.array(examples, object)]),
    }
    jobs = []
    for input_type in saved_model.INPUT_TYPES:
        export_dir = str(tmp_path / input_type)
        exported = saved_model.export_saved_model(
            params, export_dir, model_dir, input_type=input_type
        )
        assert exported == checkpoint
        jobs.append({"export_dir": export_dir, "feeds": feeds[input_type][1]})
    results = saved_models.run_in_fresh_process(jobs, str(tmp_path))

    for input_type, result in zip(saved_model.INPUT_TYPES, results):
        indices, _ = feeds[input_type]
        if input_type in ("image_bytes", "tf_example"):
            (batch,) = result["outputs"]
            served = [{k: v[i : i + 1] for k, v in batch.items()} for i in indices]
        else:
            served = result["outputs"]
        for i, outputs in zip(indices, served):
            reference = {k: v for k, v in expected[i].items() if k != "source_id"}
            if input_type == "raw_image_tensor":
                # Fed at the network's size: no resize, boxes in its pixels, as here.
                np.testing.assert_allclose(reference["image_info"][0, 2], [1.0, 1.0])
            _assert_same_detections(outputs, reference, f"{family} {input_type} image {i}")
        assert result["input_shape"][0] == -1  # any batch


def test_command_line_options_shape_the_signature(checkpoints, tmp_path):
    model_dir = checkpoints.model_dir("retinanet_resnet")
    export_dir = str(tmp_path / "export")
    result = _run_script(
        "--model=retinanet",
        f"--config_file={TINY_CONFIG}",
        f"--params_override={ALL_DETECTIONS}",
        f"--checkpoint_path={model_dir}",
        f"--export_dir={export_dir}",
        "--input_type=image_tensor",
        "--input_name=images",
        "--input_image_size=96,128",
        "--batch_size=2",
        "--output_normalized_coordinates",
        "--cast_num_detections_to_float",
        "--cast_detection_classes_to_float",
        "--nooutput_image_info",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"to {export_dir} (image_tensor input" in result.stdout

    # Two 80x100 images, scaled by 1.2 to 96x120 and padded to 96x128.
    images = np.zeros([2, 80, 100, 3], np.uint8)
    images[:, 20:60, 30:70] = 255
    (served,) = saved_models.run_in_fresh_process(
        [{"export_dir": export_dir, "feeds": [images]}], str(tmp_path)
    )
    assert served["input_dtype"] == "uint8" and served["input_shape"] == [2, -1, -1, 3]
    (outputs,) = served["outputs"]
    assert set(outputs) == set(saved_model.DETECTION_KEYS)
    assert outputs["num_detections"].dtype == np.float32
    assert outputs["detection_classes"].dtype == np.float32
    np.testing.assert_array_equal(outputs["num_detections"], [20.0, 20.0])
    boxes = outputs["detection_boxes"]
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0 and boxes.max() > 0.5


def test_a_failure_nobody_foresaw_is_still_one_line(checkpoints, tmp_path):
    """A checkpoint whose data file is cut short: no traceback, one line, no export."""
    model_dir = tmp_path / "model"
    shutil.copytree(checkpoints.model_dir("retinanet_resnet"), str(model_dir))
    for data in model_dir.glob("model.ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    export_dir = tmp_path / "export"
    result = _run_script(
        "--model=retinanet",
        f"--config_file={TINY_CONFIG}",
        f"--checkpoint_path={model_dir}",
        f"--export_dir={export_dir}",
    )
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "(unexpected failure)" in errors[0], result.stderr[-2000:]
    assert not export_dir.exists() or not any(export_dir.iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--checkpoint_path={tmp}/nothing_here"],
            "error: no checkpoint at '{tmp}/nothing_here' (--checkpoint_path); give a "
            "checkpoint prefix such as MODEL_DIR/model.ckpt-1000, or a model_dir",
        ),
        (
            ["--input_type=jpeg"],
            "error: 'jpeg' is not an input type (--input_type); valid: raw_image_tensor, "
            "image_tensor, image_bytes, tf_example",
        ),
        (
            ["--input_type=raw_image_tensor", "--input_image_size=100,64"],
            "error: input size 100,64 is not divisible by 2**max_level = 32 (--input_image_size, "
            "architecture.max_level=5); raw_image_tensor images are not padded: use multiples "
            "of 32 such as 128,64",
        ),
        (
            ["--params_override=architecture.num_classes=5"],
            "does not fit the model of the config: its variable "
            "'retinanet/class_net/class-predict/kernel' is [3, 3, 16, 10], the model's is "
            "[3, 3, 16, 5] (0 missing, 2 of another shape) (--checkpoint_path, --config_file, "
            "--params_override); export with the config the checkpoint was trained with",
        ),
        (
            ["--params_override=resnet.resnet_depth=18"],
            "does not fit the model of the config: it has no variable 'resnet18/conv2d/kernel' "
            "(105 missing, 0 of another shape)",
        ),
        (["--input_image_size=big"], "error: --input_image_size=big is not a size"),
        (["--model=yolo"], "error: unknown model 'yolo'; valid models: retinanet, mask_rcnn"),
        (["--export_dir={ckpt}"], "exists and is not empty (--export_dir)"),
    ],
)
def test_export_errors_are_one_line_and_exit_1(args, message, checkpoints, tmp_path):
    model_dir = checkpoints.model_dir("retinanet_resnet")
    base = {
        "--model": "retinanet",
        "--config_file": TINY_CONFIG,
        "--checkpoint_path": model_dir,
        "--export_dir": str(tmp_path / "export"),
    }
    for arg in args:
        name, value = arg.split("=", 1)
        base[name] = value.format(tmp=tmp_path, ckpt=model_dir)
    result = _run_script(*[f"{k}={v}" for k, v in base.items()])
    assert result.returncode == 1, result.stderr[-4000:]
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert not os.path.exists(base["--export_dir"]) or base["--export_dir"] == model_dir
