"""R-CNN options the ancestor exposes, through the config: the training graph builds,
has the variables the option implies, and a training step gives a finite loss."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.configs import loader
from official.detection.testing import graph_building

SHAPES = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "configs", "shapes", "mask_rcnn_shapes.yaml"
)


def _variables(override, model="mask_rcnn"):
    params = loader.load_config(model, config_file=SHAPES, params_override=override)
    with tf.Graph().as_default():
        spec = graph_building.build_training_graph(params, image_size=(128, 128))
        shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            losses = [sess.run([spec.train_op, spec.loss])[1] for _ in range(2)]
    assert np.isfinite(losses).all(), losses
    return shapes


@pytest.mark.parametrize("agnostic, outputs", [(True, 4), (False, 40)])
def test_class_agnostic_boxes(agnostic, outputs):
    shapes = _variables(f"frcnn_head.class_agnostic_bbox_pred={str(agnostic).lower()}")
    box_kernels = [name for name in shapes if name.endswith("box-predict/kernel")]
    assert len(box_kernels) == 1
    assert shapes[box_kernels[0]][-1] == outputs


def test_convs_and_batch_norm_in_the_box_and_mask_heads():
    shapes = _variables(
        "frcnn_head.num_convs=2,frcnn_head.num_fcs=1,frcnn_head.use_batch_norm=true,"
        "mrcnn_head.use_batch_norm=true"
    )
    assert shapes["fast_rcnn_head/conv_1/kernel"] == [3, 3, 64, 64]
    assert shapes["fast_rcnn_head/fc6/kernel"] == [7 * 7 * 64, 256]
    assert "fast_rcnn_head/fc7/kernel" not in shapes
    # A batch norm after each conv and fc of the box head, after each conv of the mask head.
    assert shapes["fast_rcnn_head/batch_normalization_2/gamma"] == [256]
    assert shapes["mask_head/batch_normalization_1/moving_mean"] == [64]
