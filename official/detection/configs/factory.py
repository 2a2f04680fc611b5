"""The model table: each model name with its schema (defaults) and cross-field rules.

from official.detection.configs import factory
params = factory.config_generator('retinanet')   # validated defaults
"""

import collections

from official.detection.configs import maskrcnn_config, retinanet_config, rules
from official.detection.configs.errors import (
    ConfigError,
    close_matches,
    did_you_mean,
    join_message,
)
from official.detection.configs.merge import Builder

ModelSpec = collections.namedtuple("ModelSpec", ["schema", "rules"])

MODELS = {
    "retinanet": ModelSpec(retinanet_config.SCHEMA, retinanet_config.RULES),
    "mask_rcnn": ModelSpec(maskrcnn_config.SCHEMA, maskrcnn_config.RULES),
    "faster_rcnn": ModelSpec(maskrcnn_config.FASTER_RCNN_SCHEMA, maskrcnn_config.FASTER_RCNN_RULES),
}


def model_spec(model):
    """The ModelSpec of `model`; ConfigError listing the models if it is unknown."""
    if model not in MODELS:
        raise ConfigError(
            join_message(
                f"unknown model {model!r}",
                did_you_mean(close_matches(model, MODELS)),
                "valid models: " + ", ".join(MODELS),
            ),
            path="model",
        )
    return MODELS[model]


def config_generator(model):
    """The default Config of 'retinanet', 'mask_rcnn' or 'faster_rcnn', validated."""
    spec = model_spec(model)
    config = Builder(spec.schema, model).build()
    rules.validate(config, spec.rules)
    return config
