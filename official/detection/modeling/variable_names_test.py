"""Whole-model variable names and shapes equal the reference code base's, in
order, including optimizer slots: checkpoints move both ways."""

import os

import pytest
import tensorflow.compat.v1 as tf

from official.detection.configs import loader
from official.detection.testing import graph_building, reference_variables

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")

# Trainable parameters of the reference models at 91 classes.
PARAMETERS = {
    "retinanet_r50": 34_091_159,
    "retinanet_spinenet49s": 11_265_942,
    "maskrcnn_r50": 45_047_153,
}

CASES = {
    # reference name: (model, config file or None, overrides)
    "retinanet_r50": ("retinanet", None, {"retinanet_parser": {"output_size": [256, 256]}}),
    "retinanet_spinenet49s": (
        "retinanet",
        os.path.join(CONFIGS, "spinenet", "spinenet49S_retinanet.yaml"),
        {"retinanet_parser": {"output_size": [256, 256]}},
    ),
    "maskrcnn_r50": ("mask_rcnn", None, {"maskrcnn_parser": {"output_size": [256, 256]}}),
}


@pytest.mark.parametrize("reference", sorted(CASES))
def test_model_variables_equal_reference(reference):
    model, config_file, overrides = CASES[reference]
    params = loader.load_config(model, config_file=config_file, params_override=overrides)
    trainable, global_ = reference_variables.load_reference_variables(reference)
    with tf.Graph().as_default():
        graph_building.build_training_graph(params)
        got_trainable = reference_variables.graph_variables(tf.trainable_variables())
        got_global = reference_variables.graph_variables(tf.global_variables())
    assert got_trainable == trainable
    assert got_global == global_
    total = sum(reference_variables.count_parameters(shape) for _, shape in got_trainable)
    assert total == PARAMETERS[reference]
