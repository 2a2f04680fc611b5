"""Tests that the dataloader factory maps every model config to a working parser."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.configs import loader
from official.detection.dataloader import factory, input_reader, maskrcnn_parser, retinanet_parser
from official.detection.dataloader import tf_example_builder as builder

SMALL = "{retinanet_parser: {output_size: [128, 128]}}"
SMALL_RCNN = "{maskrcnn_parser: {output_size: [64, 64], mask_crop_size: 8}}"


def _example():
    mask = np.zeros([48, 64], np.uint8)
    mask[8:24, 16:48] = 1
    return builder.build_example(
        builder.encode_image(np.full([48, 64, 3], 50, np.uint8), "png"),
        48,
        64,
        [[8 / 48, 16 / 64, 24 / 48, 48 / 64]],
        [4],
        masks_png=[builder.encode_mask(mask)],
        image_format="png",
    ).SerializeToString()


def _parse(parser):
    with tf.Graph().as_default():
        outputs = parser(tf.constant(_example()))
        with tf.Session() as sess:
            return sess.run(outputs)


def test_retinanet_config_builds_retinanet_parser():
    params = loader.load_config("retinanet", params_override=SMALL)
    parser = factory.parser_generator(params, "train")
    assert isinstance(parser, retinanet_parser.Parser)
    assert parser.padded_size == [128, 128]
    image, labels = _parse(parser)
    assert image.shape == (128, 128, 3)
    # Levels 3-7 and 3 scales x 3 ratios come from architecture.* and anchor.*.
    assert sorted(labels["cls_targets"]) == [3, 4, 5, 6, 7]
    assert labels["cls_targets"][3].shape == (16, 16, 9)


@pytest.mark.parametrize("model, has_masks", [("mask_rcnn", True), ("faster_rcnn", False)])
def test_rcnn_configs_build_maskrcnn_parser(model, has_masks):
    params = loader.load_config(model, params_override=SMALL_RCNN)
    parser = factory.parser_generator(params, "train")
    assert isinstance(parser, maskrcnn_parser.Parser)
    image, labels = _parse(parser)
    assert image.shape == (64, 64, 3)
    assert sorted(labels["rpn_score_targets"]) == [2, 3, 4, 5, 6]
    assert labels["rpn_score_targets"][2].shape == (16, 16, 3)
    assert ("gt_masks" in labels) == has_masks
    if has_masks:
        assert labels["gt_masks"].shape == (100, 8, 8)
        np.testing.assert_allclose(labels["gt_masks"][0], 1.0, atol=1e-5)
    _, eval_labels = _parse(factory.parser_generator(params, "eval"))
    assert ("masks" in eval_labels["groundtruths"]) == has_masks


def test_input_fn_generator_reads_config_files(tmp_path):
    path = os.path.join(str(tmp_path), "val-00000-of-00001.tfrecord")
    builder.write_tfrecord(path, [_example()] * 3)
    override = SMALL_RCNN[:-1] + f", eval: {{eval_file_pattern: '{path}', eval_batch_size: 2}}}}"
    params = loader.load_config("faster_rcnn", params_override=override)
    input_fn = factory.input_fn_generator(params, "eval")
    assert isinstance(input_fn, input_reader.InputFn)
    with tf.Graph().as_default():
        images, labels = tf.data.make_one_shot_iterator(input_fn()).get_next()
        with tf.Session() as sess:
            assert sess.run(images).shape == (2, 64, 64, 3)
            assert sess.run(labels["source_id"]).shape == (1,)  # 3 examples, batches of 2.


def test_empty_file_pattern_is_an_error():
    params = loader.load_config("retinanet")
    with pytest.raises(ValueError, match="train.train_file_pattern is empty"):
        factory.input_fn_generator(params, "train")


def test_bad_mode_is_an_error():
    params = loader.load_config("retinanet")
    with pytest.raises(ValueError, match="parser_generator: unknown mode 'fit'"):
        factory.parser_generator(params, "fit")


class _Section(dict):
    """A stand-in for a config section: attribute access and as_dict."""

    __getattr__ = dict.__getitem__

    def as_dict(self):
        return dict(self)


def test_unknown_parser_is_an_error():
    params = _Section(architecture=_Section(parser="shapemask_parser"))
    with pytest.raises(ValueError, match="unknown parser 'shapemask_parser'; allowed: "):
        factory.parser_generator(params, "train")
