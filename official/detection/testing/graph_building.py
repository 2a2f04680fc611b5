"""Builds a model's training graph from a config, through the real parser and
model_fn, on one synthetic image: for variable-list and config-corpus tests."""

import numpy as np
import tensorflow.compat.v1 as tf

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import mode_keys, tf_example_builder
from official.detection.modeling import base_model
from official.detection.modeling import factory as modeling_factory
from official.detection.modeling.layers import cpu_kernels as cpu_kernels_lib


def synthetic_example(height, width):
    """A serialized example with two objects and their masks."""
    rng = np.random.RandomState(0)
    image = rng.randint(0, 255, [height, width, 3]).astype(np.uint8)
    boxes = np.array([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]], np.float32)
    masks = []
    for ymin, xmin, ymax, xmax in boxes:
        mask = np.zeros([height, width], np.uint8)
        mask[int(ymin * height) : int(ymax * height), int(xmin * width) : int(xmax * width)] = 1
        masks.append(tf_example_builder.encode_mask(mask))
    example = tf_example_builder.build_example(
        tf_example_builder.encode_image(image),
        height,
        width,
        boxes,
        [1, 2],
        masks_png=masks,
    )
    return example.SerializeToString()


def build_training_graph(params, *, batch_size=1, image_size=(96, 128), cpu_kernels=False):
    """Adds the global step, the input and the TRAIN model_fn to the default graph.

    `cpu_kernels` builds it with the CPU kernels, as the executor of a CPU run does.

    Returns:
      the EstimatorSpec.
    """
    tf.train.get_or_create_global_step()
    parser = dataloader_factory.parser_generator(params, mode_keys.TRAIN)
    serialized = synthetic_example(*image_size)
    dataset = tf.data.Dataset.from_tensors(serialized).repeat().map(parser)
    # Static batch size, as the training input reader gives it.
    batched = dataset.batch(batch_size, drop_remainder=True)
    images, labels = tf.data.make_one_shot_iterator(batched).get_next()
    model_fn = modeling_factory.build_model(params).model_fn
    if cpu_kernels:
        model_fn = cpu_kernels_lib.wrap_model_fn(model_fn)
    return model_fn(images, labels, base_model.TRAIN, None)
