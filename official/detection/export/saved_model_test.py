"""SavedModel export: each family in each input type, reloaded in a fresh process, gives
the checkpoint's `Estimator.predict` outputs; export errors through the command line."""

import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import tf_example_builder
from official.detection.evaluation import mask_paste
from official.detection.export import saved_model
from official.detection.testing import exports, saved_models, script_runs
from official.detection.testing.exports import (
    ALL_DETECTIONS,
    FAMILIES,
    MASK_RCNN_CONFIG,
    MASK_RCNN_EXPORT,
    TINY_CONFIG,
)

SCRIPT = os.path.join(exports.REPO, "scripts", "export_saved_model.py")


def _run_script(*args):
    return script_runs.run_python_script(SCRIPT, *args, timeout=300)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_input_type_serves_the_checkpoints_predictions(family, checkpoints, tmp_path):
    model_dir = checkpoints.model_dir(family)
    params = exports.family_config(family)
    output_size = list(params[dataloader_factory.parser_name(params)].output_size)
    arrays, formats = exports.sample_images(output_size)
    encoded = [tf_example_builder.encode_image(a, f) for a, f in zip(arrays, formats)]
    examples = [
        tf_example_builder.build_example(e, *a.shape[:2], image_format=f).SerializeToString()
        for e, a, f in zip(encoded, arrays, formats)
    ]
    record_path = str(tmp_path / "images.tfrecord")
    tf_example_builder.write_tfrecord(record_path, examples)

    checkpoint = tf.train.latest_checkpoint(model_dir)
    expected = exports.estimator_predictions(
        params, checkpoint, record_path, str(tmp_path / "estimator")
    )
    assert [int(p["num_detections"][0]) for p in expected] == [
        params.postprocess.max_total_size
    ] * len(arrays)

    pngs = [i for i, f in enumerate(formats) if f == "png"]
    feeds = {
        "raw_image_tensor": ([0], [exports.normalised(arrays[0])[np.newaxis]]),
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
            exports.assert_same_detections(outputs, reference, f"{family} {input_type} image {i}")
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


def test_full_image_masks_are_the_per_box_masks_pasted(checkpoints, tmp_path):
    """One image_bytes batch of three sizes: each image's pasted masks fill its own size
    from the top left of the batch's largest, as evaluation pastes the per-box masks."""
    model_dir = checkpoints.model_dir("mask_rcnn")
    params = exports.family_config("mask_rcnn")
    arrays, formats = exports.sample_images([64, 64])
    arrays, formats = arrays[1:], formats[1:]  # 96x96, 60x96, 50x130
    encoded = np.array(
        [tf_example_builder.encode_image(a, f) for a, f in zip(arrays, formats)], object
    )
    per_box_dir = str(tmp_path / "per_box")
    saved_model.export_saved_model(params, per_box_dir, model_dir, input_type="image_bytes")
    full_dir = str(tmp_path / "full")
    result = _run_script(
        "--model=mask_rcnn",
        f"--config_file={MASK_RCNN_CONFIG}",
        f"--params_override={MASK_RCNN_EXPORT}",
        f"--checkpoint_path={model_dir}",
        f"--export_dir={full_dir}",
        "--input_type=image_bytes",
        "--output_full_image_masks",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    per_box, full = saved_models.run_in_fresh_process(
        [{"export_dir": d, "feeds": [encoded]} for d in (per_box_dir, full_dir)], str(tmp_path)
    )
    ((per_box,), (full,)) = per_box["outputs"], full["outputs"]
    for key in saved_model.DETECTION_KEYS:
        np.testing.assert_allclose(full[key], per_box[key], rtol=1e-5, atol=1e-5, err_msg=key)
    masks = full["detection_masks"]
    slots = params.postprocess.max_total_size
    assert masks.dtype == np.uint8 and masks.shape == (3, slots, 96, 130)
    assert masks.max() == 1 and masks.sum() > 1000
    for b, image in enumerate(arrays):
        height, width = image.shape[:2]
        expected = mask_paste.paste_instance_masks(
            per_box["detection_masks"][b], per_box["detection_boxes"][b], height, width
        )
        exports.assert_same_pasted_masks(masks[b, :, :height, :width], expected, b)
        assert not masks[b, :, height:].any() and not masks[b, :, :, width:].any(), b
    with open(os.path.join(full_dir, saved_model.EXPORT_INFO_FILE)) as f:
        assert '"output_full_image_masks": true' in f.read()


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
    exports.SHARED_ERRORS
    + [
        (
            ["--params_override=resnet.resnet_depth=18"],
            "does not fit the model of the config: it has no variable 'resnet18/conv2d/kernel' "
            "(105 missing, 0 of another shape)",
        ),
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
    exports.assert_one_error_line(result, message.format(tmp=tmp_path))
    assert not os.path.exists(base["--export_dir"]) or base["--export_dir"] == model_dir
