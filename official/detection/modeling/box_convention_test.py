"""architecture.box_convention reaches every op that decodes, clips or encodes boxes."""

import pytest

from official.detection.configs import loader
from official.detection.dataloader import factory as dataloader_factory
from official.detection.modeling import factory


@pytest.mark.parametrize("convention", ["consistent", "tensorflow_tpu"])
def test_factory_passes_the_convention(convention):
    override = f"architecture.box_convention={convention}"
    retinanet = loader.load_config("retinanet", params_override=override)
    assert factory.build_retinanet_detection_fn(retinanet).keywords["convention"] == convention
    mask_rcnn = loader.load_config("mask_rcnn", params_override=override)
    functions = [
        *factory.build_proposal_fns(mask_rcnn),
        factory.build_roi_sampler_fn(mask_rcnn),
        factory.build_rcnn_detection_fn(mask_rcnn),
    ]
    assert [fn.keywords["convention"] for fn in functions] == [convention] * 4
    for params in (retinanet, mask_rcnn):
        parser = dataloader_factory.parser_generator(params, "train")
        assert parser._box_convention == convention


def test_default_is_consistent():
    for model in ("retinanet", "mask_rcnn", "faster_rcnn"):
        assert loader.load_config(model).architecture.box_convention == "consistent"
