"""Frozen-graph export: each family's graph, imported in a fresh process (and on the other
TensorFlow lane), gives the checkpoint's `Estimator.predict` outputs or, without
postprocessing, its head outputs and anchors; no host-only op; errors through the script."""

import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import mode_keys, tf_example_builder
from official.detection.evaluation import mask_paste
from official.detection.export import frozen_graph
from official.detection.modeling import base_model
from official.detection.modeling import factory as modeling_factory
from official.detection.testing import exports, lanes, saved_models, script_runs
from official.detection.testing.exports import ALL_DETECTIONS, MASK_RCNN_CONFIG, TINY_CONFIG

SCRIPT = os.path.join(exports.REPO, "scripts", "export_inference_graph.py")
# Ops of variables, which a frozen graph holds as constants instead.
VARIABLE_OPS = {"VariableV2", "VarHandleOp", "ReadVariableOp", "Assign", "AssignVariableOp"}


def _run_script(*args):
    return script_runs.run_python_script(SCRIPT, *args, timeout=300)


def _read_graph_def(path):
    graph_def = tf.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    return graph_def


def _job(graph, feed):
    return {
        "graph_file": graph.path,
        "input_name": graph.input[0],
        "output_names": [name for name, _, _ in graph.outputs],
        "feeds": [feed],
    }


def _input_image(params):
    """A uint8 image of the model's input size."""
    output_size = list(params[dataloader_factory.parser_name(params)].output_size)
    arrays, _ = exports.sample_images(output_size)
    return arrays[0]


@pytest.mark.parametrize("family", sorted(exports.FAMILIES))
def test_imported_graph_gives_the_checkpoints_predictions(family, checkpoints, tmp_path):
    model_dir = checkpoints.model_dir(family)
    params = exports.family_config(family)
    image = _input_image(params)
    record_path = str(tmp_path / "image.tfrecord")
    encoded = tf_example_builder.encode_image(image, "png")
    example = tf_example_builder.build_example(encoded, *image.shape[:2], image_format="png")
    tf_example_builder.write_tfrecord(record_path, [example.SerializeToString()])
    checkpoint = tf.train.latest_checkpoint(model_dir)
    (expected,) = exports.estimator_predictions(
        params, checkpoint, record_path, str(tmp_path / "estimator")
    )
    expected = {k: v for k, v in expected.items() if k != "source_id"}
    assert int(expected["num_detections"][0]) == params.postprocess.max_total_size

    feeds = {
        "raw_image_tensor": exports.normalised(image)[np.newaxis],
        "image_tensor": image[np.newaxis],
    }
    jobs = []
    for input_type, feed in feeds.items():
        graph = frozen_graph.export_frozen_graph(
            params, str(tmp_path / input_type), model_dir, input_type=input_type
        )
        assert graph.checkpoint == checkpoint
        assert graph.input == ("input", feed.dtype.name, list(feed.shape))
        graph_def = _read_graph_def(graph.path)
        op_types = frozen_graph.op_types(graph_def)
        assert frozen_graph.host_only_ops(graph_def) == []
        assert not op_types & (frozen_graph.HOST_ONLY_OPS | VARIABLE_OPS), op_types
        assert {"Conv2D", "CombinedNonMaxSuppression"} <= op_types
        jobs.append(_job(graph, feed))
    results = saved_models.run_in_fresh_process(jobs, str(tmp_path))

    for input_type, result in zip(feeds, results):
        (outputs,) = result["outputs"]
        exports.assert_same_detections(outputs, expected, f"{family} {input_type}")


def test_full_image_masks_have_a_static_shape(checkpoints, tmp_path):
    """ATC compiles static shapes: the pasted masks of an image_tensor graph have the
    input's size in the graph, and equal the per-box masks pasted as evaluation does."""
    params = exports.family_config("mask_rcnn")
    image = _input_image(params)
    graphs = [
        frozen_graph.export_frozen_graph(
            params,
            str(tmp_path / str(full)),
            checkpoints.model_dir("mask_rcnn"),
            batch_size=2,
            output_full_image_masks=full,
        )
        for full in (False, True)
    ]
    slots = params.postprocess.max_total_size
    outputs = dict((name, shape) for name, _, shape in graphs[1].outputs)
    assert outputs["detection_masks"] == [2, slots, *image.shape[:2]]
    feed = np.stack([image, image[::-1]])
    per_box, full = (
        result["outputs"][0]
        for result in saved_models.run_in_fresh_process(
            [_job(graph, feed) for graph in graphs], str(tmp_path)
        )
    )
    assert full["detection_masks"].dtype == np.uint8 and full["detection_masks"].sum() > 100
    for b in range(2):
        expected = mask_paste.paste_instance_masks(
            per_box["detection_masks"][b], per_box["detection_boxes"][b], *image.shape[:2]
        )
        exports.assert_same_pasted_masks(full["detection_masks"][b], expected, b)


def _head_outputs(params, checkpoint, images):
    """The model's raw head outputs on `images` with the checkpoint's values, and the
    parser's anchors, as NumPy."""
    with tf.Graph().as_default():
        parser = dataloader_factory.parser_generator(params, mode_keys.PREDICT)
        model = modeling_factory.build_model(params)
        outputs = model.build_outputs(tf.constant(images), None, base_model.PREDICT)
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, checkpoint)
            return sess.run(outputs), sess.run(parser.anchor_boxes)


@pytest.mark.parametrize("family", ["retinanet_resnet", "retinanet_spinenet"])
def test_graph_without_postprocess_gives_head_outputs_and_anchors(family, checkpoints, tmp_path):
    model_dir = checkpoints.model_dir(family)
    params = exports.family_config(family)
    images = exports.normalised(_input_image(params))[np.newaxis]
    graph = frozen_graph.export_frozen_graph(
        params,
        str(tmp_path),
        model_dir,
        input_type="raw_image_tensor",
        include_postprocess=False,
    )
    min_level, max_level = params.architecture.min_level, params.architecture.max_level
    names = frozen_graph.raw_output_names(min_level, max_level)
    assert [name for name, _, _ in graph.outputs] == sorted(names + ["image_info"])
    graph_def = _read_graph_def(graph.path)
    op_types = frozen_graph.op_types(graph_def)
    assert frozen_graph.host_only_ops(graph_def) == []
    # No NMS, top-k or loop: what back ends without NMS ops can take.
    assert not [op for op in op_types if "NonMaxSuppression" in op or "While" in op]
    assert "TopKV2" not in op_types and "Conv2D" in op_types
    (result,) = saved_models.run_in_fresh_process([_job(graph, images)], str(tmp_path))
    (outputs,) = result["outputs"]

    heads, anchors = _head_outputs(params, tf.train.latest_checkpoint(model_dir), images)
    height, width = images.shape[1:3]
    for level in range(min_level, max_level + 1):
        for kind in ("cls_outputs", "box_outputs"):
            served = outputs[f"{kind}_{level}"]
            assert served.shape[1:3] == (height // 2**level, width // 2**level)
            np.testing.assert_allclose(served, heads[kind][level], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(outputs[f"anchor_boxes_{level}"], anchors[level])
    np.testing.assert_array_equal(
        outputs["image_info"], [[[height, width], [height, width], [1, 1], [0, 0]]]
    )


def test_graph_exported_here_runs_on_the_other_lane(checkpoints, tmp_path):
    other_python = lanes.other_lane_python()
    if other_python is None:
        pytest.skip(
            f"the {lanes.other_lane()} lane is not set up "
            f"(bash scripts/setup_env.sh{' --tf1' if lanes.other_lane() == 'tf1' else ''})"
        )
    jobs = []
    for family, include_postprocess in (("mask_rcnn", True), ("retinanet_resnet", False)):
        params = exports.family_config(family)
        graph = frozen_graph.export_frozen_graph(
            params,
            str(tmp_path / family),
            checkpoints.model_dir(family),
            include_postprocess=include_postprocess,
        )
        jobs.append(_job(graph, _input_image(params)[np.newaxis]))
    here = saved_models.run_in_fresh_process(jobs, str(tmp_path))
    there = saved_models.run_in_fresh_process(jobs, str(tmp_path), python=other_python)
    for job, ours, theirs in zip(jobs, here, there):
        ((ours,), (theirs,)) = ours["outputs"], theirs["outputs"]
        assert set(ours) == set(theirs) == set(job["output_names"])
        for name in ours:
            np.testing.assert_allclose(theirs[name], ours[name], rtol=1e-5, atol=1e-5)


def _square(x):
    return x * x


def test_host_only_ops_are_found():
    with tf.Graph().as_default() as graph:
        x = tf.constant([1.0, 2.0])
        tf.py_func(_square, [x], tf.float32)
        tf.py_func(_square, [x], tf.float32, stateful=False)
        tf.py_function(_square, [x], tf.float32)
        tf.identity(x)
    assert frozen_graph.host_only_ops(graph.as_graph_def()) == [
        "EagerPyFunc",
        "PyFunc",
        "PyFuncStateless",
    ]


def test_export_refuses_a_graph_with_host_only_ops(checkpoints, tmp_path, monkeypatch):
    """As if the model called back into Python: here its convolutions are taken for that."""
    monkeypatch.setattr(frozen_graph, "HOST_ONLY_OPS", frozenset({"Conv2D", "PyFunc"}))
    message = "the frozen graph has ops that call back into Python: Conv2D; the model's"
    with pytest.raises(RuntimeError, match=message):
        frozen_graph.export_frozen_graph(
            exports.family_config("retinanet_resnet"),
            str(tmp_path),
            checkpoints.model_dir("retinanet_resnet"),
        )
    assert os.listdir(tmp_path) == []


def test_command_line_exports_a_static_batch(checkpoints, tmp_path):
    export_dir = tmp_path / "frozen"
    result = _run_script(
        "--model=retinanet",
        f"--config_file={TINY_CONFIG}",
        f"--params_override={ALL_DETECTIONS}",
        f"--checkpoint_path={checkpoints.model_dir('retinanet_resnet')}",
        f"--export_dir={export_dir}",
        "--input_image_size=96,128",
        "--batch_size=2",
        "--input_name=images",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    path = str(export_dir / frozen_graph.GRAPH_FILE)
    assert f"to {path} (" in result.stdout
    assert "  input images: uint8 [2, 96, 128, 3]\n" in result.stdout
    assert "  output detection_boxes: float32 [2, 20, 4]\n" in result.stdout
    assert sorted(os.listdir(export_dir)) == [frozen_graph.GRAPH_FILE]

    images = np.zeros([2, 96, 128, 3], np.uint8)
    images[0, 20:60, 30:70] = 255
    images[1, 40:90, 10:100] = 128
    job = {
        "graph_file": path,
        "input_name": "images",
        "output_names": ["num_detections", "detection_boxes", "image_info"],
        "feeds": [images],
    }
    (served,) = saved_models.run_in_fresh_process([job], str(tmp_path))
    assert served["input_dtype"] == "uint8" and served["input_shape"] == [2, 96, 128, 3]
    (outputs,) = served["outputs"]
    np.testing.assert_array_equal(outputs["num_detections"], [20, 20])
    np.testing.assert_array_equal(
        outputs["image_info"], [[[96, 128], [96, 128], [1, 1], [0, 0]]] * 2
    )
    boxes = outputs["detection_boxes"]
    assert boxes.min() >= 0.0 and boxes[..., 2].max() <= 96.0 and boxes[..., 3].max() <= 128.0
    assert not np.allclose(boxes[0], boxes[1])


@pytest.mark.parametrize(
    "args, message",
    exports.SHARED_ERRORS
    + [
        (
            ["--batch_size=0"],
            "error: batch size 0 is not a static batch (--batch_size); a frozen graph has a "
            "fixed number of images per run: give 1 or more",
        ),
        (
            ["--model=mask_rcnn", f"--config_file={MASK_RCNN_CONFIG}", "--noinclude_postprocess"],
            "error: a mask_rcnn graph without postprocessing is not exported "
            "(--include_postprocess=false): its second stage takes proposals that need NMS; "
            "export it with --include_postprocess=true, or a RetinaNet without",
        ),
        (
            ["--include_postprocess=false", "--output_normalized_coordinates"],
            "error: --output_normalized_coordinates changes detections, which a graph without "
            "postprocessing does not output (--include_postprocess=false); leave it out or "
            "export with --include_postprocess=true",
        ),
        # A checkpoint whose data file is cut short.
        (["--checkpoint_path={cut}"], "(unexpected failure)"),
    ],
)
def test_failed_exports_are_one_line_and_keep_the_old_graph(args, message, checkpoints, tmp_path):
    model_dir = checkpoints.model_dir("retinanet_resnet")
    export_dir = tmp_path / "frozen"
    export_dir.mkdir()
    (export_dir / frozen_graph.GRAPH_FILE).write_bytes(b"the previous graph")
    base = {
        "--model": "retinanet",
        "--config_file": TINY_CONFIG,
        "--checkpoint_path": model_dir,
        "--export_dir": str(export_dir),
    }
    for arg in args:
        name, _, value = arg.partition("=")
        if value == "{cut}":
            value = str(tmp_path / "cut")
            shutil.copytree(model_dir, value)
            for data in (tmp_path / "cut").glob("model.ckpt-*.data-*"):
                data.write_bytes(data.read_bytes()[:100])
        base[name] = value.format(tmp=tmp_path)
    result = _run_script(*[f"{k}={v}" if v else k for k, v in base.items()])
    exports.assert_one_error_line(result, message.format(tmp=tmp_path))
    assert os.listdir(export_dir) == [frozen_graph.GRAPH_FILE]
    assert (export_dir / frozen_graph.GRAPH_FILE).read_bytes() == b"the previous graph"
