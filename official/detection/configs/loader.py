"""Loading and saving configurations.

Load order (later wins): the model's Python defaults -> `config_file` YAML ->
`params_override` -> values forced by flags -> validation (types and choices
as each value arrives, then the cross-field rules). `write_config` saves the
result to `<model_dir>/params.yaml`, which loads back as an equal Config.

    from official.detection.configs.loader import ConfigError, Forced, load_config, write_config

    params = load_config(
        "retinanet",
        config_file="official/detection/configs/spinenet/spinenet49S_retinanet.yaml",
        params_override="{ train: { total_steps: 10 } }",
        forced={"model_dir": "./result", "use_tpu": False},
    )
    write_config(params, params.model_dir)
"""

import collections
import logging
import os

from official.detection.atomic_file import write_atomically
from official.detection.configs import factory, overrides, rules, yaml_io
from official.detection.configs.errors import ConfigError, describe
from official.detection.configs.merge import Builder

__all__ = ["ConfigError", "Forced", "PARAMS_FILE", "load_config", "write_config"]

LOGGER = logging.getLogger("official.detection.configs")
PARAMS_FILE = "params.yaml"

Forced = collections.namedtuple("Forced", ["value", "flag"])
Forced.__doc__ = """A forced value with the flag it comes from, e.g. Forced(False, '--device')."""


# Values implied by the --model choice, applied after the config file and overrides.
MODEL_FORCED = {"faster_rcnn": {"architecture.include_mask": False, "eval.type": "box"}}


def load_config(model, config_file=None, params_override=None, forced=None):
    """Builds the validated Config of `model`.

    Args:
      model: 'retinanet', 'mask_rcnn' or 'faster_rcnn'.
      config_file: path of a YAML file of overrides, or None/''.
      params_override: the --params_override value (see overrides.py), or a dict.
      forced: dict of dotted key -> value set by command-line flags, applied
        last. A plain value is reported as coming from 'flag --<last key part>';
        wrap it as Forced(value, '--flag') to name another flag.

    Returns:
      A read-only Config.

    Raises:
      ConfigError: any problem, naming the key, where the value came from, what
        was received and what is allowed.
    """
    spec = factory.model_spec(model)
    builder = Builder(spec.schema, model)
    if config_file:
        if not isinstance(config_file, str):
            raise ConfigError(f"--config_file: expected a path; received {describe(config_file)}")
        builder.merge(yaml_io.read_yaml_mapping(config_file), f"file {config_file}")
    mapping, source = overrides.parse_params_override(params_override)
    builder.merge(mapping, source)
    for dotted, value in MODEL_FORCED.get(model, {}).items():
        # The model flag decides these whatever a (Mask R-CNN) file says, so a
        # Faster R-CNN run never needs masks.
        builder.set_value(dotted, value, f"flag --model={model}")
    for dotted, value in (forced or {}).items():
        if isinstance(value, Forced):
            builder.set_value(dotted, value.value, f"flag {value.flag}")
        else:
            builder.set_value(dotted, value, f"flag --{dotted.rsplit('.', 1)[-1]}")
    config = builder.build()
    rules.validate(config, spec.rules)
    _log_inert_settings(config, spec.schema)
    return config


def _log_inert_settings(config, schema):
    for path, field in schema.walk():
        if field.inert and config.lookup(path) != field.default:
            LOGGER.info(
                "Config: %s = %r (%s) has no effect in this project.",
                path,
                config.lookup(path),
                config.source_of(path),
            )


def write_config(config, model_dir):
    """Writes `config` to `<model_dir>/params.yaml` atomically; returns the path.

    The file is written under a temporary name in `model_dir` and renamed, so a
    reader never sees half a file. `model_dir` is created if missing.

    Raises:
      ConfigError: `model_dir` is empty.
    """
    if not model_dir:
        raise ConfigError("write_config: model_dir is empty; set --model_dir", path="model_dir")
    text = (
        f"# Resolved configuration (model type {config.type!r}) written by official.detection.\n"
        "# It loads back unchanged with --config_file.\n" + config.to_yaml()
    )
    return write_atomically(os.path.join(model_dir, PARAMS_FILE), text)
