"""Tests of YAML reading and writing."""

import pytest

from official.detection.configs import yaml_io
from official.detection.configs.errors import ConfigError


@pytest.mark.parametrize(
    "text, value",
    [("1e-4", 1e-4), ("4E5", 4e5), ("-2.5e+3", -2500.0), (".5e-1", 0.05), ("1.0e-4", 1e-4)],
)
def test_exponent_floats_read_as_floats(text, value):
    parsed = yaml_io.parse_yaml(f"a: {text}", "test")
    assert parsed == {"a": value} and isinstance(parsed["a"], float)


def test_plain_yaml_types_are_unchanged():
    parsed = yaml_io.parse_yaml("a: 10\nb: '49'\nc: [1, 2.0]\nd: null\ne: true\nf: /d/x-*", "t")
    assert parsed == {"a": 10, "b": "49", "c": [1, 2.0], "d": None, "e": True, "f": "/d/x-*"}


def test_yaml_parsing_is_safe():
    with pytest.raises(ConfigError, match="invalid YAML"):
        yaml_io.parse_yaml("a: !!python/object/apply:os.system ['true']", "--params_override")


def test_duplicate_keys_are_an_error_with_both_lines():
    with pytest.raises(ConfigError) as info:
        yaml_io.parse_yaml("train:\n  total_steps: 1\n  total_steps: 2\n", "file a.yaml")
    message = str(info.value)
    assert message.startswith("file a.yaml: invalid YAML at line 3, column 3:")
    assert "the key 'total_steps' is given twice (first at line 2)" in message


def test_bad_yaml_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  total_steps: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"file {path}: invalid YAML at line 3, column 1: "):
        yaml_io.read_yaml_mapping(str(path))


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=rf"file {missing}: no such file \(looked for"):
        yaml_io.read_yaml_mapping(str(missing))
    with pytest.raises(ConfigError, match="is a directory, not a YAML file"):
        yaml_io.read_yaml_mapping(str(tmp_path))


def test_non_mapping_top_level(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"the top level must be a mapping .*received list \['a'"):
        yaml_io.read_yaml_mapping(str(path))
    path.write_text("just text\n")
    with pytest.raises(ConfigError, match="received str 'just text'"):
        yaml_io.read_yaml_mapping(str(path))


def test_empty_file_is_an_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n")
    assert yaml_io.read_yaml_mapping(str(path)) == {}


def test_undecodable_file(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00a")
    with pytest.raises(ConfigError, match="cannot be read"):
        yaml_io.read_yaml_mapping(str(path))


def test_dump_round_trips_and_quotes_number_like_strings():
    data = {
        "a": {"ratios": [1.0, 2.0, 0.5], "regex": ".*(kernel|weight):0$", "id": "49"},
        "small": 4e-05,
        "text": "1e-4",
        "none": None,
    }
    text = yaml_io.dump_yaml(data)
    assert "ratios: [1.0, 2.0, 0.5]" in text and "text: '1e-4'" in text
    assert yaml_io.parse_yaml(text, "t") == data
    assert list(yaml_io.parse_yaml(text, "t")) == ["a", "small", "text", "none"]
