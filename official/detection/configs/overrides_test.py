"""Tests of the --params_override forms."""

import pytest

from official.detection.configs.errors import ConfigError
from official.detection.configs.overrides import parse_params_override

# The second seed's override, with ${data_path} expanded: note the unquoted globs.
SEED_OVERRIDE = (
    "{ train: { total_steps : 10, train_batch_size : 4, train_file_pattern: /data/train-* }, "
    "eval: { val_json_file: /d/annotations/instances_val2017.json, eval_file_pattern: /d/val-* } }"
)


@pytest.mark.parametrize("value", [None, "", "   ", "\n"])
def test_empty_means_no_override(value):
    assert parse_params_override(value) == ({}, "--params_override")


def test_seed_mapping_string():
    mapping, source = parse_params_override(SEED_OVERRIDE)
    assert source == "--params_override"
    assert mapping == {
        "train": {"total_steps": 10, "train_batch_size": 4, "train_file_pattern": "/data/train-*"},
        "eval": {
            "val_json_file": "/d/annotations/instances_val2017.json",
            "eval_file_pattern": "/d/val-*",
        },
    }


def test_json_mapping():
    mapping, _ = parse_params_override('{"train": {"total_steps": 10, "l2_weight_decay": 1e-5}}')
    assert mapping == {"train": {"total_steps": 10, "l2_weight_decay": 1e-5}}


def test_dict_passes_through():
    assert parse_params_override({"a": 1}) == ({"a": 1}, "--params_override")


def test_pairs_with_lists_quotes_and_nesting():
    mapping, _ = parse_params_override(
        "anchor.aspect_ratios=[1.0,2.0], train.total_steps=10,"
        "train.checkpoint.prefix='a,b/',eval.eval_samples=null,model_dir=,"
        "train.learning_rate.learning_rate_steps=[1, 2]"
    )
    assert mapping == {
        "anchor": {"aspect_ratios": [1.0, 2.0]},
        "train": {
            "total_steps": 10,
            "checkpoint": {"prefix": "a,b/"},
            "learning_rate": {"learning_rate_steps": [1, 2]},
        },
        "eval": {"eval_samples": None},
        "model_dir": "",
    }


def test_pair_values_that_are_not_yaml_are_strings():
    mapping, _ = parse_params_override("train.train_file_pattern=*.tfrecord,x.y=a{1,2}")
    assert mapping == {"train": {"train_file_pattern": "*.tfrecord"}, "x": {"y": "a{1,2}"}}


def test_pair_value_with_broken_brackets_is_an_error():
    with pytest.raises(ConfigError, match=r"--params_override value of 'a.b': invalid YAML"):
        parse_params_override("a.b=[1, , 2]")


def test_yaml_file_path(tmp_path):
    path = tmp_path / "override.yml"
    path.write_text("train:\n  total_steps: 3\n")
    mapping, source = parse_params_override(str(path))
    assert mapping == {"train": {"total_steps": 3}}
    assert source == f"file {path} (from --params_override)"


def test_missing_yaml_path_is_an_error_not_a_string(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"ends in .yaml/.yml, so it is read as a file path, but"):
        parse_params_override(str(missing))


@pytest.mark.parametrize(
    "value, reads_as",
    [
        ("foo", "received 'foo' (str)"),
        ("42", "received '42', which reads as 42 (int)"),
        ("[1, 2]", "which reads as [1, 2] (list)"),
        ("some/file.txt", "received 'some/file.txt' (str)"),
    ],
)
def test_other_values_are_errors(value, reads_as):
    with pytest.raises(
        ConfigError, match=r"--params_override: expected a YAML/JSON mapping"
    ) as info:
        parse_params_override(value)
    assert str(info.value).endswith(reads_as)


def test_malformed_mapping_string():
    with pytest.raises(ConfigError, match=r"--params_override: invalid YAML at line 1, column"):
        parse_params_override("{ train: { total_steps: 10 }")


@pytest.mark.parametrize(
    "value, message",
    [
        ("a.b=1,c", r"'c' is not a 'key.path=value' pair"),
        ("a.b=1,c..d=2", r"'c..d=2' is not a 'key.path=value' pair"),
        ("a.b=1,a.b=2", "'a.b' is given twice"),
        ("a.b=1,a.b.c=2", "'a.b.c' is set both as a value and as a section"),
        ("a.b.c=1,a.b=2", "'a.b' is set both as a value and as a section"),
        ("a.b=[1,2", "unbalanced bracket"),
        ("a.b='x", "unbalanced quote"),
    ],
)
def test_malformed_pairs(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_params_override(value)


def test_non_string_value():
    with pytest.raises(
        ConfigError, match=r"expected a string or a mapping; received \[1\] \(list\)"
    ):
        parse_params_override([1])
