"""Every shipped experiment YAML loads strictly and builds its training graph
on a small input, with a finite loss tensor and the variables it promises."""

import glob
import os

import pytest
import tensorflow.compat.v1 as tf
import yaml

from official.detection.configs import factory as config_factory
from official.detection.configs import loader
from official.detection.modeling import factory as modeling_factory
from official.detection.testing import graph_building

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")
SHIPPED = sorted(glob.glob(os.path.join(CONFIG_DIR, "*", "*.yaml")))


def test_the_corpus_is_complete():
    names = {os.path.relpath(p, CONFIG_DIR) for p in SHIPPED}
    for expected in [
        "spinenet/spinenet49S_retinanet.yaml",
        "spinenet/spinenet49_retinanet.yaml",
        "spinenet/spinenet96_retinanet.yaml",
        "spinenet/spinenet143_retinanet.yaml",
        "spinenet/spinenet190_retinanet.yaml",
        "spinenet/spinenet49_mrcnn.yaml",
        "spinenet/spinenet49s_mrcnn.yaml",
        "retinanet/retinanet_r50_fpn_coco.yaml",
        "retinanet/retinanet_r101_fpn_coco.yaml",
        "maskrcnn/faster_rcnn_r101_fpn_coco.yaml",
        "maskrcnn/mask_rcnn_r50_fpn_coco.yaml",
        "maskrcnn/mask_rcnn_r101_fpn_coco.yaml",
        "shapes/retinanet_shapes.yaml",
        "shapes/mask_rcnn_shapes.yaml",
    ]:
        assert expected in names


@pytest.mark.parametrize("model", sorted(config_factory.MODELS))
def test_every_model_name_has_a_builder(model):
    params = config_factory.config_generator(model)
    assert (
        modeling_factory.MODEL_TYPES[params.type]
        is {
            "retinanet": modeling_factory.build_retinanet,
            "mask_rcnn": modeling_factory.build_maskrcnn,
            "faster_rcnn": modeling_factory.build_maskrcnn,
        }[model]
    )


def _small_input_override(params, model):
    """Smallest input the levels allow (a multiple of 2**max_level), batch 1."""
    side = max(2**params.architecture.max_level, 64)
    parser = "retinanet_parser" if model == "retinanet" else "maskrcnn_parser"
    override = {parser: {"output_size": [side, side]}, "train": {"train_batch_size": 1}}
    if model != "retinanet":
        override["roi_proposal"] = {"rpn_pre_nms_top_k": 200, "rpn_post_nms_top_k": 100}
        override["roi_sampling"] = {"num_samples_per_image": 64}
        override["mask_sampling"] = {"num_mask_samples_per_image": 16}
    return override


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.relpath(p, CONFIG_DIR))
def test_shipped_config_builds_its_training_graph(path):
    with open(path) as f:
        model = yaml.safe_load(f)["type"]
    params = loader.load_config(model, config_file=path)
    params = loader.load_config(
        model, config_file=path, params_override=_small_input_override(params, model)
    )
    with tf.Graph().as_default():
        spec = graph_building.build_training_graph(params, image_size=(60, 80))
        assert spec.loss.shape.ndims == 0
        names = [v.op.name for v in tf.trainable_variables()]
    backbone = params.architecture.backbone
    assert any(n.startswith("spinenet/" if backbone == "spinenet" else "resnet") for n in names)
    if model == "retinanet":
        assert any(n.startswith("retinanet/class_net/class-predict") for n in names)
    else:
        assert any(n.startswith("fast_rcnn_head/") for n in names)
        assert any(n.startswith("mask_head/") for n in names) == params.architecture.include_mask
