"""The inference tool on a folder of odd images: pictures, a COCO results file that
pycocotools loads, the same detections from a checkpoint and from each kind of
SavedModel, batches equal to single images, and one-line errors."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from pycocotools import coco as coco_api
from pycocotools import mask as mask_api

from official.detection import visualize
from official.detection.dataloader import tf_example_builder, tf_example_decoder
from official.detection.export import inference, label_map, predictors, saved_model
from official.detection.testing import exports, saved_models, script_runs

HERE = os.path.dirname(__file__)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SCRIPT = os.path.join(REPO, "scripts", "inference.py")
TINY_CONFIG = os.path.join(REPO, "official", "detection", "testing", "retinanet_tiny.yaml")
MASK_RCNN_CONFIG = os.path.join(
    REPO, "official", "detection", "configs", "shapes", "mask_rcnn_shapes.yaml"
)
# Every detection slot filled (no score is below 0), so every one is compared.
ALL_DETECTIONS = "postprocess.score_threshold=0.0"
MODELS = {
    "retinanet": ("retinanet", TINY_CONFIG, ALL_DETECTIONS),
    "mask_rcnn": (
        "mask_rcnn",
        MASK_RCNN_CONFIG,
        f"resnet.resnet_depth=10,maskrcnn_parser.output_size=[64,64],{ALL_DETECTIONS}",
    ),
}
# Factors of the class logit kernels that spread an initialised model's scores out (the
# features below RetinaNet's are far smaller).
LOGIT_LAYERS = {
    "class_net/class-predict": 10000.0,
    "fast_rcnn_head/class-predict": 100.0,
    "rpn-class": 100.0,
    "mask_fcn_logits": 100.0,
}
# (file name, width, height, PIL mode); then a file that is not an image.
GOOD_IMAGES = (
    ("photo.jpg", 90, 60, "RGB"),
    ("gray.jpg", 40, 50, "L"),
    ("alpha.png", 70, 70, "RGBA"),
    ("cmyk.jpg", 48, 64, "CMYK"),
)
CORRUPT = "corrupt.jpg"


def _image(width, height, seed):
    """Two rectangles on a grey background, with noise: no two places of the image look
    the same, so no two anchors tie in score (ties are ordered differently by batches).
    uint8 [height, width, 3]."""
    rng = np.random.RandomState(seed)
    image = np.full((height, width, 3), 90, np.int64)
    image[height // 5 : height // 2, width // 6 : width // 2] = rng.randint(150, 230, 3)
    image[height // 2 :, width // 2 :] = rng.randint(25, 100, 3)
    return (image + rng.randint(-25, 26, image.shape)).astype(np.uint8)


def _write_folder(directory):
    os.makedirs(directory)
    for seed, (name, width, height, mode) in enumerate(GOOD_IMAGES):
        image = Image.fromarray(_image(width, height, seed))
        if mode == "RGBA":
            image.putalpha(128)
        image.convert(mode).save(os.path.join(directory, name), quality=95)
    with open(os.path.join(directory, CORRUPT), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return directory


class Models:
    """Initialised checkpoints and their SavedModels, made on first use."""

    def __init__(self, root):
        self.root = root
        self._dirs = {}

    def params(self, name):
        return saved_model.load_export_config(*MODELS[name])

    def model_dir(self, name):
        if name not in self._dirs:
            self._dirs[name] = os.path.join(self.root, name)
            saved_models.save_initialised_checkpoint(self.params(name), self._dirs[name])
            _spread_scores(self._dirs[name])
        return self._dirs[name]

    def export(self, name, input_type, **options):
        suffix = "_".join(f"{k}={v}" for k, v in sorted(options.items()))
        export_dir = os.path.join(self.root, f"{name}_{input_type}_{suffix}")
        if not os.path.exists(export_dir):
            saved_model.export_saved_model(
                self.params(name),
                export_dir,
                self.model_dir(name),
                input_type=input_type,
                **options,
            )
        return export_dir


def _spread_scores(model_dir):
    """Saves model_dir/model.ckpt-1 with the class logit kernels of its latest checkpoint
    scaled up: initialised, every score is about the prior and near-ties make the order
    of detections depend on float rounding; spread out, they are far apart."""
    checkpoint = tf.train.latest_checkpoint(model_dir)
    reader = tf.train.load_checkpoint(checkpoint)
    with tf.Graph().as_default():
        variables = []
        for name, _ in tf.train.list_variables(checkpoint):
            value = reader.get_tensor(name)
            factor = [f for layer, f in LOGIT_LAYERS.items() if f"/{layer}/kernel" in name]
            value = value * factor[0] if factor else value
            variables.append(tf.Variable(value, name=name))
        assert [v.op.name for v in variables] == [n for n, _ in tf.train.list_variables(checkpoint)]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver(variables).save(sess, os.path.join(model_dir, "model.ckpt"), 1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return Models(str(tmp_path_factory.mktemp("inference_models")))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(str(tmp_path_factory.mktemp("inference_images") / "images"))


def _run_script(*args):
    return script_runs.run_python_script(SCRIPT, *args, timeout=300)


def _checkpoint_flags(models, name):
    model, config_file, override = MODELS[name]
    return [
        f"--model={model}",
        f"--config_file={config_file}",
        f"--params_override={override}",
        f"--checkpoint_path={models.model_dir(name)}",
    ]


def _load_results(output_dir, image_sizes, names):
    """detections.json loaded by pycocotools against images of `image_sizes` {id: (h, w)}."""
    ground_truth = coco_api.COCO()
    ground_truth.dataset = {
        "images": [{"id": i, "height": h, "width": w} for i, (h, w) in image_sizes.items()],
        "categories": [{"id": i, "name": n} for i, n in names.items()],
        "annotations": [],
    }
    ground_truth.createIndex()
    return ground_truth.loadRes(os.path.join(output_dir, inference.DETECTIONS_FILE))


def _sorted_ids():
    """Sequential image ids: positions in the sorted file list, from 1."""
    names = sorted([name for name, *_ in GOOD_IMAGES] + [CORRUPT])
    return {name: names.index(name) + 1 for name, *_ in GOOD_IMAGES}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pictures_and_coco_results_for_a_folder_of_odd_images(name, models, folder, tmp_path):
    output_dir = str(tmp_path / "out")
    result = _run_script(
        *_checkpoint_flags(models, name),
        f"--image_file_pattern={folder}",
        f"--output_dir={output_dir}",
        "--min_score_threshold=0",
        "--max_boxes_to_draw=3",
        "--batch_size=2",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"skipped 1 of 5 files, not decodable images:\n  {folder}/{CORRUPT}: " in result.stdout
    max_total_size = models.params(name).postprocess.max_total_size
    assert f"images/s in the model, batch 2); {4 * max_total_size} detections" in result.stdout

    assert sorted(os.listdir(output_dir)) == sorted(
        ["alpha.png", "cmyk.png", "gray.png", "photo.png", inference.DETECTIONS_FILE]
    )
    ids = _sorted_ids()
    sizes = {ids[n]: (h, w) for n, w, h, _ in GOOD_IMAGES}
    names = label_map.load_label_map().names
    results = _load_results(output_dir, sizes, names)
    with open(os.path.join(output_dir, inference.DETECTIONS_FILE)) as f:
        assert all(("segmentation" in d) == (name == "mask_rcnn") for d in json.load(f))
    for file_name, width, height, _ in GOOD_IMAGES:
        detections = results.loadAnns(results.getAnnIds(imgIds=[ids[file_name]]))
        assert len(detections) == max_total_size, file_name
        for det in detections:
            x, y, w, h = det["bbox"]
            assert 0 <= x <= x + w <= width + 1e-3 and 0 <= y <= y + h <= height + 1e-3
            assert 0.0 <= det["score"] <= 1.0 and det["category_id"] in range(1, 10)
            if name == "mask_rcnn":
                assert det["segmentation"]["size"] == [height, width]
                # Pasted into its box: no pixel outside it (but for rounding).
                mask = mask_api.decode(det["segmentation"])
                inside = np.zeros_like(mask)
                inside[int(y) : int(np.ceil(y + h)) + 1, int(x) : int(np.ceil(x + w)) + 1] = 1
                assert mask.shape == (height, width) and not (mask & ~inside.astype(bool)).any()
        # Enlarged by a whole factor to at most 512 pixels, with the three best boxes.
        picture = np.asarray(Image.open(os.path.join(output_dir, file_name[:-4] + ".png")))
        scale = 512 // max(width, height)
        assert picture.shape == (height * scale, width * scale, 3), file_name
        best = max(detections, key=lambda d: d["score"])
        colour = visualize.category_colour(best["category_id"])
        x, y, w, h = best["bbox"]
        # The best box is drawn last: its right edge (2 pixels wide, inside) has its colour.
        right = min(int((x + w) * scale), width * scale - 1)
        middle = int((y + h / 2) * scale)
        edge = picture[middle - 1 : middle + 2, right - 3 : right + 1]
        assert (edge == colour).all(axis=-1).any(), (file_name, edge)


def test_grayscale_cmyk_and_alpha_images_become_rgb(folder):
    for seed, (file_name, _, _, mode) in enumerate(GOOD_IMAGES):
        image = inference.read_image(os.path.join(folder, file_name))
        expected = _image(*GOOD_IMAGES[seed][1:3], seed)
        assert image.dtype == np.uint8 and image.shape == expected.shape, file_name
        if mode == "L":
            assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
            luma = expected.astype(float) @ [0.299, 0.587, 0.114]
            expected = np.repeat(luma[..., np.newaxis], 3, -1)
        # JPEG loses a little; the alpha channel is dropped, the colours kept.
        tolerance = 0 if mode == "RGBA" else 12
        assert np.abs(image.astype(float) - expected).mean() <= tolerance, file_name
    with pytest.raises(inference.NotAnImageError, match="corrupt.jpg is not a decodable image"):
        inference.read_image(os.path.join(folder, CORRUPT))


def test_jpegs_are_decoded_as_evaluation_decodes_them(models, folder):
    """Pixels of the evaluation decoder of a record holding the same file: the detections
    of evaluation, not those of Pillow's rounding of the inverse DCT."""
    predictor = predictors.checkpoint_predictor(*_model(models, "retinanet"))
    for file_name in ("photo.jpg", "gray.jpg"):
        path = os.path.join(folder, file_name)
        with open(path, "rb") as f:
            example = tf_example_builder.build_example(f.read(), 1, 1, image_format="jpeg")
        with tf.Graph().as_default(), tf.Session() as sess:
            decoded = tf_example_decoder.TfExampleDecoder().decode(example.SerializeToString())
            expected = sess.run(decoded["image"])
        read = inference.read_image(path, predictor.decode_jpeg)
        np.testing.assert_array_equal(read, expected, err_msg=file_name)
        assert read.shape == inference.read_image(path).shape


def test_strict_stops_at_the_corrupt_file_with_one_line(models, folder, tmp_path):
    result = _run_script(
        *_checkpoint_flags(models, "retinanet"),
        f"--image_file_pattern={folder}",
        f"--output_dir={tmp_path / 'out'}",
        "--strict",
    )
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"error: {folder}/{CORRUPT} is not a decodable image (")
    assert last.endswith(") (--image_file_pattern); remove it, or run without --strict to skip it")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / inference.DETECTIONS_FILE).exists()


def _detections(predictor, folder, output_dir, batch_size=1, labels=None):
    paths = inference.find_images(folder)
    labels = labels or label_map.load_label_map()
    summary = inference.run_inference(
        predictor, paths, output_dir, labels, batch_size=batch_size, min_score_threshold=0.0
    )
    with open(os.path.join(output_dir, inference.DETECTIONS_FILE)) as f:
        return summary, json.load(f)


def _same(a, e):
    return (
        (a["image_id"], a["category_id"]) == (e["image_id"], e["category_id"])
        and np.allclose(a["bbox"], e["bbox"], rtol=1e-5, atol=1e-4)
        and np.allclose(a["score"], e["score"], rtol=1e-5, atol=1e-6)
    )


def _assert_same_detections(actual, expected, where, pasted_in_graph=False):
    """The same detections to 1e-5; two whose scores differ by float rounding only may
    come in either order. `pasted_in_graph`: the actual masks are an export's full-image
    masks."""
    assert len(actual) == len(expected) > 0, where
    unmatched = list(actual)
    for e in expected:
        matches = [i for i, a in enumerate(unmatched) if _same(a, e)]
        assert matches, f"{where}: no detection like {e}"
        a = unmatched.pop(matches[0])
        if "segmentation" in e:
            a_mask, e_mask = (mask_api.decode(d["segmentation"]) for d in (a, e))
            if pasted_in_graph:
                exports.assert_same_pasted_masks(a_mask, e_mask, where)
            else:
                # Masks are thresholded at 0.5: allow a pixel or two at the border to flip.
                assert np.sum(a_mask != e_mask) <= 2, where


# Full-image masks in batches of two: the images of a batch, and the batches of a
# call, differ in size.
FULL_MASKS = {"output_full_image_masks": True, "batch_size": 2}


@pytest.mark.parametrize(
    "name, input_type, options",
    [("retinanet", t, {}) for t in saved_model.INPUT_TYPES]
    + [("mask_rcnn", "image_bytes", {}), ("mask_rcnn", "image_bytes", FULL_MASKS)],
)
def test_saved_model_gives_the_checkpoints_detections(
    name, input_type, options, models, folder, tmp_path
):
    from_checkpoint = predictors.checkpoint_predictor(models.params(name), models.model_dir(name))
    _, expected = _detections(from_checkpoint, folder, str(tmp_path / "checkpoint"))
    from_saved_model = predictors.saved_model_predictor(models.export(name, input_type, **options))
    assert from_saved_model.input_type == input_type
    assert from_saved_model.include_mask == (name == "mask_rcnn")
    _, served = _detections(from_saved_model, folder, str(tmp_path / "saved_model"), 3)
    if input_type == "raw_image_tensor":
        # The network sees the padding of a raw input as image, so it clips boxes to it
        # before NMS: only images of the input's aspect (square) get exactly the same.
        square = _sorted_ids()["alpha.png"]
        served, expected = ([d for d in ds if d["image_id"] == square] for ds in (served, expected))
    _assert_same_detections(
        served, expected, f"{name} {input_type}", options.get("output_full_image_masks", False)
    )


def test_a_saved_model_with_fixed_batch_and_normalised_float_outputs(models, folder, tmp_path):
    """Fed in batches of its size (the last filled up), boxes scaled back to pixels."""
    checkpoint = predictors.checkpoint_predictor(
        models.params("retinanet"), models.model_dir("retinanet")
    )
    _, expected = _detections(checkpoint, folder, str(tmp_path / "checkpoint"))
    export_dir = models.export(
        "retinanet",
        "image_bytes",
        batch_size=3,
        output_normalized_coordinates=True,
        cast_num_detections_to_float=True,
        cast_detection_classes_to_float=True,
        output_image_info=False,
    )
    served = predictors.saved_model_predictor(export_dir)
    assert served.fixed_batch_size == 3
    _, actual = _detections(served, folder, str(tmp_path / "saved_model"), batch_size=2)
    _assert_same_detections(actual, expected, "fixed batch, normalised")


def test_batches_give_the_detections_of_single_images(models, tmp_path):
    """Images of three sizes: image_tensor batches group them by size. Square, as is the
    model's input: the padding of other shapes makes anchors that tie in score, and
    batches order ties differently."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, (height, width) in enumerate([(90, 90), (50, 50), (90, 90), (64, 64), (50, 50)] * 2):
        Image.fromarray(_image(width, height, i)).save(folder / f"{i:02d}.png")
    for name, predictor in [
        ("checkpoint", predictors.checkpoint_predictor(*_model(models, "retinanet"))),
        (
            "image_bytes",
            predictors.saved_model_predictor(models.export("retinanet", "image_bytes")),
        ),
    ]:
        calls = []
        predict = predictor.predict
        predictor.predict = lambda images, predict=predict, calls=calls: (
            calls.append(len(images)) or predict(images)
        )
        _, single = _detections(predictor, str(folder), str(tmp_path / f"{name}_1"))
        assert calls == [1] * 10
        calls.clear()
        _, batched = _detections(predictor, str(folder), str(tmp_path / f"{name}_4"), 4)
        _assert_same_detections(batched, single, name)
        # image_tensor (checkpoint): the four 90x90 and four 50x50 images fill batches of
        # their own size, the two 64x64 ones are run at the end; image_bytes: in order.
        assert calls == [4, 4, 2], calls


def _model(models, name):
    return models.params(name), models.model_dir(name)


def test_image_ids_from_a_coco_annotation_file(models, folder, tmp_path):
    annotations = tmp_path / "instances.json"
    annotations.write_text(
        json.dumps(
            {
                "images": [
                    {"id": 42, "file_name": "val/photo.jpg", "height": 60, "width": 90},
                    {"id": 7, "file_name": "other.jpg", "height": 1, "width": 1},
                ],
                "categories": [{"id": c, "name": f"shape {c}"} for c in range(1, 10)],
                "annotations": [],
            }
        )
    )
    labels = label_map.load_label_map(str(annotations))
    predictor = predictors.checkpoint_predictor(*_model(models, "retinanet"))
    _, detections = _detections(predictor, folder, str(tmp_path / "out"), labels=labels)
    # photo.jpg has its id; the others the largest id (42) plus their position.
    positions = _sorted_ids()
    expected = {42} | {42 + positions[n] for n, *_ in GOOD_IMAGES if n != "photo.jpg"}
    assert {d["image_id"] for d in detections} == expected


def test_output_names_keep_files_apart():
    paths = ["a/x.jpg", "a/x.png", "a/y.jpg", "b/x.jpg", "b/z.jpg"]
    assert inference.output_names(paths) == {
        "a/x.jpg": "x.jpg.png",
        "a/x.png": "x.png.png",
        "a/y.jpg": "y.png",
        "b/x.jpg": "x.jpg-4.png",
        "b/z.jpg": "z.png",
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--checkpoint_path={tmp}/nothing_here"],
            "error: no checkpoint at '{tmp}/nothing_here' (--checkpoint_path); give a "
            "checkpoint prefix such as MODEL_DIR/model.ckpt-1000, or a model_dir",
        ),
        (
            ["--image_file_pattern={tmp}/*.jpg"],
            "error: no files match '{tmp}/*.jpg' (--image_file_pattern); give a directory of "
            "images or a glob such as 'photos/*.jpg'",
        ),
        (
            ["--label_map_file={tmp}/labels.yaml"],
            "error: label map {tmp}/labels.yaml has the entry 'one': 'circle', not a positive "
            "id: name (--label_map_file); give a YAML or JSON mapping of category id to name",
        ),
        (
            ["--label_map_file={tmp}/missing.yaml"],
            "error: label map {tmp}/missing.yaml cannot be read as YAML or JSON: No such file "
            "or directory (--label_map_file)",
        ),
        (
            ["--saved_model_dir={tmp}"],
            "error: give the model as one of --checkpoint_path or --saved_model_dir "
            "(--checkpoint_path, --saved_model_dir); see --help",
        ),
        (
            ["--checkpoint_path=", "--saved_model_dir={tmp}"],
            "error: no SavedModel in '{tmp}' (--saved_model_dir); give the --export_dir of "
            "scripts/export_saved_model.py",
        ),
        (
            ["--params_override=architecture.num_classes=5"],
            "does not fit the model of the config: its variable "
            "'retinanet/class_net/class-predict/kernel' is [3, 3, 16, 10], the model's is "
            "[3, 3, 16, 5]",
        ),
        (
            ["--batch_size=0"],
            "error: --batch_size=0 is not a number of images (--batch_size); give 1 or more",
        ),
        (
            ["--min_score_threshold=1.5"],
            "error: --min_score_threshold=1.5 is not a score (--min_score_threshold); give a "
            "value from 0 to 1",
        ),
        (["--output_dir="], "error: --output_dir is required (--output_dir); see --help"),
    ],
)
def test_errors_are_one_line_and_exit_1(args, message, models, folder, tmp_path):
    (tmp_path / "labels.yaml").write_text("1: square\none: circle\n")
    base = dict(
        arg.split("=", 1)
        for arg in _checkpoint_flags(models, "retinanet")
        + [f"--image_file_pattern={folder}", f"--output_dir={tmp_path / 'out'}"]
    )
    for arg in args:
        flag, value = arg.split("=", 1)
        base[flag] = value.format(tmp=tmp_path)
    result = _run_script(*[f"{k}={v}" for k, v in base.items()])
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert message.format(tmp=tmp_path) in errors[0]


def test_a_failure_nobody_foresaw_is_still_one_line(models, folder, tmp_path):
    """A checkpoint whose data file is cut short: no traceback, one line, exit 1."""
    model_dir = tmp_path / "model"
    shutil.copytree(models.model_dir("retinanet"), str(model_dir))
    for data in model_dir.glob("model.ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    # The prefix: the `checkpoint` file of the copy names the original's files.
    prefix = f"--checkpoint_path={model_dir}/model.ckpt-1"
    flags = _checkpoint_flags(models, "retinanet")[:-1] + [prefix]
    result = _run_script(
        *flags, f"--image_file_pattern={folder}", f"--output_dir={tmp_path / 'out'}"
    )
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "(unexpected failure); run again with --verbose" in errors[0]
    verbose = _run_script(
        *flags, f"--image_file_pattern={folder}", f"--output_dir={tmp_path / 'out'}", "--verbose"
    )
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_exports_without_their_description_are_read_from_the_graph(models, folder, tmp_path):
    """An export without assets.extra/export_info.json: the parse op tells tf_example
    from image_bytes, the normalisation scope normalised boxes."""
    checkpoint = predictors.checkpoint_predictor(*_model(models, "retinanet"))
    _, expected = _detections(checkpoint, folder, str(tmp_path / "checkpoint"))
    exports = {
        "tf_example": models.export("retinanet", "tf_example"),
        "image_bytes": models.export(
            "retinanet", "image_bytes", output_normalized_coordinates=True
        ),
    }
    for input_type, export_dir in exports.items():
        copy = str(tmp_path / input_type)
        shutil.copytree(export_dir, copy)
        os.remove(os.path.join(copy, saved_model.EXPORT_INFO_FILE))
        predictor = predictors.saved_model_predictor(copy)
        assert predictor.input_type == input_type
        _, actual = _detections(predictor, folder, str(tmp_path / f"{input_type}_out"))
        _assert_same_detections(actual, expected, input_type)


def _save_signature(export_dir, signature_key, dtype, shape):
    """A SavedModel whose one input (named `input`) passes to four detection outputs."""
    with tf.Graph().as_default(), tf.Session() as sess:
        placeholder = tf.placeholder(dtype, shape, "input")
        value = tf.reduce_sum(tf.cast(placeholder, tf.float32))
        outputs = {key: tf.identity(value, name=key) for key in saved_model.DETECTION_KEYS}
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            inputs={"input": placeholder}, outputs=outputs
        )
        builder = tf.saved_model.Builder(export_dir)
        builder.add_meta_graph_and_variables(
            sess,
            [tf.saved_model.tag_constants.SERVING],
            signature_def_map={signature_key: signature},
        )
        builder.save()
    return export_dir


@pytest.mark.parametrize(
    "signature_key, dtype, shape, message",
    [
        (
            "predict",
            tf.uint8,
            [None, None, None, 3],
            "has no 'serving_default' signature with one input and the outputs num_detections, "
            "detection_boxes, detection_classes, detection_scores (--saved_model_dir); export "
            "it with scripts/export_saved_model.py",
        ),
        (
            "serving_default",
            tf.int32,
            [None, None, None, 3],
            "is int32; this tool feeds uint8 images, float32 images or string images or "
            "tf.Examples (--saved_model_dir)",
        ),
        (
            "serving_default",
            tf.float32,
            [None, None, None, 3],
            "the raw_image_tensor input input:0 has no static size ([None, None]) "
            "(--saved_model_dir); export it with --input_image_size",
        ),
    ],
)
def test_saved_models_the_tool_cannot_feed(signature_key, dtype, shape, message, tmp_path):
    export_dir = _save_signature(str(tmp_path / "export"), signature_key, dtype, shape)
    with pytest.raises(predictors.PredictorError) as info:
        predictors.saved_model_predictor(export_dir)
    assert message in str(info.value)
