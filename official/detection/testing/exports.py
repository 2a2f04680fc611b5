"""What the export tests share: a small model of each family with a checkpoint, test
images, the checkpoint's `Estimator.predict` outputs, and their comparison."""

import os

import numpy as np
from PIL import Image
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import input_reader, mode_keys
from official.detection.export import saved_model
from official.detection.modeling import factory as modeling_factory
from official.detection.ops import preprocess_ops
from official.detection.testing import saved_models, script_runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
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
# (flags, message) of the errors both export scripts report alike, exporting the
# retinanet_resnet checkpoint with TINY_CONFIG; `{tmp}` is the test's directory.
SHARED_ERRORS = [
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
    (["--input_image_size=big"], "error: --input_image_size=big is not a size"),
    (
        ["--output_full_image_masks=true"],
        "error: only a Mask R-CNN has masks to paste (--output_full_image_masks); leave the "
        "flag out for this model",
    ),
    (["--model=yolo"], "error: unknown model 'yolo'; valid models: retinanet, mask_rcnn"),
]


def family_config(family):
    """The export Config of a family of FAMILIES."""
    model, config_file, override, _ = FAMILIES[family]
    return saved_model.load_export_config(model, config_file, override)


class Checkpoints:
    """Model dirs with a checkpoint per kind, made on first use and kept."""

    def __init__(self, root, records):
        self._root = root
        self._records = records
        self._dirs = {}

    def model_dir(self, family):
        kind = FAMILIES[family][3]
        if kind not in self._dirs:
            model_dir = os.path.join(self._root, kind)
            if kind == "initialised":
                saved_models.save_initialised_checkpoint(family_config(family), model_dir)
            else:
                self._train(kind, model_dir)
            self._dirs[kind] = model_dir
        return self._dirs[kind]

    def _train(self, kind, model_dir):
        model, config_file, override = TRAINED[kind]
        steps = (
            f"train.train_file_pattern={self._records['train_file_pattern']},"
            "train.total_steps=1,train.iterations_per_loop=1,train.train_batch_size=2,"
            "train.learning_rate.warmup_steps=0,train.seed=1,train.deterministic_input=true"
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


def sample_images(output_size):
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


def normalised(image):
    """What `preprocess_ops.normalize_image` computes, in NumPy float32."""
    multiplier = np.array([1.0 / (255.0 * s) for s in preprocess_ops.STDDEV_RGB], np.float32)
    bias = np.array(
        [-m / s for m, s in zip(preprocess_ops.MEAN_RGB, preprocess_ops.STDDEV_RGB)], np.float32
    )
    return image.astype(np.float32) * multiplier + bias


def estimator_predictions(params, checkpoint, record_path, work_dir):
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


def assert_same_detections(served, expected, where):
    """The detection outputs (and image_info) of an export equal the Estimator's: counts
    and classes exactly, boxes, scores and masks to 1e-5."""
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


def assert_same_pasted_masks(pasted, expected, where):
    """Full-image masks pasted in the graph (float32) against the evaluation's NumPy paste
    (float64): a pixel whose value is within rounding of the 0.5 threshold may differ, and
    an untrained model's mask probabilities sit near 0.5, so up to 1% of the expected
    pixels (and at least 2) may."""
    differing = np.count_nonzero(np.asarray(pasted) != np.asarray(expected))
    assert differing <= max(2, 0.01 * np.count_nonzero(expected)), (where, differing)


def assert_one_error_line(result, message):
    """A script run that failed as users should see it: exit 1, `message` in stderr,
    one `error: ` line and no traceback."""
    assert result.returncode == 1, result.stderr[-4000:]
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
