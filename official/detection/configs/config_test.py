"""Tests of the read-only Config view."""

import copy

import pytest

from official.detection.configs import factory
from official.detection.configs.errors import ConfigError, UnknownKeyError
from official.detection.configs.loader import load_config


@pytest.fixture(scope="module")
def params():
    return load_config("retinanet", params_override="train.total_steps=10")


def test_attribute_and_item_access(params):
    assert params.train.total_steps == 10
    assert params["train"]["total_steps"] == 10
    assert params.lookup("train.optimizer.type") == "momentum"
    assert params.train.lookup("learning_rate.warmup_steps") == 500
    assert params.get("missing", 7) == 7


def test_lists_come_back_as_tuples_and_as_dict_gives_lists(params):
    assert params.anchor.aspect_ratios == (1.0, 2.0, 0.5)
    plain = params.as_dict()
    assert plain["anchor"]["aspect_ratios"] == [1.0, 2.0, 0.5]
    plain["anchor"]["aspect_ratios"].append(9.0)
    plain["train"]["total_steps"] = 5
    assert params.anchor.aspect_ratios == (1.0, 2.0, 0.5) and params.train.total_steps == 10


def test_unknown_attribute_suggests_and_lists_keys(params):
    with pytest.raises(UnknownKeyError) as info:
        params.train.total_step  # noqa: B018
    message = str(info.value)
    assert "'train.total_step' is not a key of section 'train'" in message
    assert "did you mean 'total_steps'?" in message
    assert "valid keys: iterations_per_loop, train_batch_size, total_steps" in message
    assert isinstance(info.value, (ConfigError, AttributeError, KeyError))


def test_unknown_key_works_with_getattr_hasattr_and_key_error(params):
    assert getattr(params, "nope", "fallback") == "fallback"
    assert not hasattr(params.train, "nope")
    with pytest.raises(KeyError):
        params["nope"]
    with pytest.raises(
        UnknownKeyError, match="'anchor.num_scales' is a single value; it has no key 'x'"
    ):
        params.lookup("anchor.num_scales.x")


def test_config_is_read_only(params):
    with pytest.raises(
        TypeError, match=r"Config is read-only \(tried to set 'train.total_steps'\)"
    ):
        params.train.total_steps = 3
    with pytest.raises(TypeError, match="read-only"):
        del params.train


def test_sources(params):
    assert params.source_of("train.total_steps") == "--params_override"
    assert params.source_of("train.train_batch_size") == "default"
    assert params.train.source_of("total_steps") == "--params_override"


def test_mapping_protocol(params):
    assert "train" in params and "nope" not in params
    assert list(params.train.optimizer) == ["type", "momentum"]
    assert len(params.train.optimizer) == 2
    assert dict(params.train.optimizer.items()) == {"type": "momentum", "momentum": 0.9}


def test_equality_copy_and_repr(params):
    same = load_config("retinanet", params_override={"train": {"total_steps": 10}})
    assert same == params
    assert factory.config_generator("retinanet") != params
    assert copy.deepcopy(params) is params and copy.copy(params) is params
    assert (
        repr(params.train.optimizer)
        == "Config(train.optimizer: {'type': 'momentum', 'momentum': 0.9})"
    )
