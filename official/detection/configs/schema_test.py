"""Tests of the declaration primitives: type inference, checking, choices, extension."""

import pytest

from official.detection.configs.errors import ConfigError
from official.detection.configs.schema import (
    POSITIVE,
    POSITIVE_ITEMS,
    REGEX,
    Field,
    ListOf,
    Section,
)


def test_types_are_inferred_from_defaults():
    assert Field(True, "d").type is bool
    assert Field(3, "d").type is int
    assert Field(0.5, "d").type is float
    assert Field("x", "d").type is str
    assert Field([1, 2], "d").type == ListOf(int)
    assert Field([1.0, 2], "d").type == ListOf(float)


def test_declaration_errors():
    with pytest.raises(TypeError, match="None default and needs type="):
        Field(None, "doc")
    with pytest.raises(TypeError, match="one-line doc"):
        Field(1, "")
    with pytest.raises(TypeError, match="one-line doc"):
        Field(1, "two\nlines")
    with pytest.raises(TypeError, match="empty list default"):
        Field([], "doc")
    with pytest.raises(TypeError, match="Cannot infer"):
        Field({"a": 1}, "doc")


def test_float_field_accepts_int_and_stores_float():
    value = Field(0.5, "d").resolve(2, "a.b", "file x.yaml")
    assert value == 2.0 and isinstance(value, float)


@pytest.mark.parametrize(
    "default, value, expected, received",
    [
        (1, 1.5, "expected int", "received 1.5 (float)"),
        (1, True, "expected int", "received True (bool)"),
        (0.5, False, "expected float", "received False (bool)"),
        (True, 1, "expected bool", "received 1 (int)"),
        (True, "true", "expected bool", "received 'true' (str)"),
        ("x", None, "expected str", "received null"),
        ([1, 2], 3, "expected list of int", "received 3 (int)"),
    ],
)
def test_wrong_types_name_path_source_received_and_expected(default, value, expected, received):
    with pytest.raises(ConfigError) as info:
        Field(default, "d").resolve(value, "train.x", "file c.yaml")
    message = str(info.value)
    assert message.startswith("train.x (from file c.yaml): ")
    assert expected in message and received in message
    assert info.value.path == "train.x" and info.value.source == "file c.yaml"


def test_string_field_hints_quoting_numbers():
    with pytest.raises(ConfigError, match=r"received 49 \(int\); quote it in YAML: '49'"):
        Field("49", "d").resolve(49, "spinenet.model_id", "--params_override")


def test_mapping_for_a_value_says_it_is_not_a_section():
    with pytest.raises(ConfigError, match=r"received \{'a': 1\} \(mapping\); 'fpn.x' is a single"):
        Field(1, "d").resolve({"a": 1}, "fpn.x", None)


def test_list_items_are_checked_and_stored_as_tuple():
    field = Field([1.0, 2.0], "d")
    assert field.resolve([1, 2.5], "p", None) == (1.0, 2.5)
    with pytest.raises(ConfigError, match=r"item 1 is 'a' \(str\), not float"):
        field.resolve([1.0, "a"], "anchor.aspect_ratios", None)


def test_list_length():
    field = Field([640, 640], "d", type=ListOf(int, length=2))
    with pytest.raises(ConfigError, match="expected list of int with 2 items; .*it has 3 items"):
        field.resolve([1, 2, 3], "retinanet_parser.output_size", None)


def test_nullable():
    field = Field(None, "d", type=int)
    assert field.nullable and field.resolve(None, "p", None) is None
    assert field.resolve(3, "p", None) == 3
    with pytest.raises(ConfigError, match="expected int or null; received 'x'"):
        field.resolve("x", "p", None)


def test_choices_list_the_choices_and_suggest():
    field = Field("relu", "d", choices=("relu", "swish"))
    with pytest.raises(ConfigError) as info:
        field.resolve("swsh", "batch_norm_activation.activation", "file a.yaml")
    assert str(info.value) == (
        "batch_norm_activation.activation (from file a.yaml): 'swsh' (str) is not a valid "
        "choice; expected one of 'relu', 'swish'; did you mean 'swish'?"
    )


def test_integer_choices():
    field = Field(50, "d", choices=(18, 50))
    with pytest.raises(ConfigError, match="expected one of 18, 50"):
        field.resolve(51, "resnet.resnet_depth", None)


def test_normalize_runs_before_choices():
    field = Field("49", "d", choices=("49S", "49"), normalize=str.upper)
    assert field.resolve("49s", "p", None) == "49S"


def test_checks():
    with pytest.raises(ConfigError, match=r"train.total_steps: expected a value > 0; received 0"):
        Field(1, "d", check=POSITIVE).resolve(0, "train.total_steps", None)
    with pytest.raises(ConfigError, match="a non-empty list of values > 0; received"):
        Field([1.0], "d", check=POSITIVE_ITEMS).resolve([], "anchor.aspect_ratios", None)
    with pytest.raises(ConfigError, match="a non-empty list of values > 0"):
        Field([1.0], "d", check=POSITIVE_ITEMS).resolve([1.0, -2.0], "anchor.aspect_ratios", None)
    assert Field(None, "d", type=int, check=POSITIVE).resolve(None, "p", None) is None


def test_frozen_accepts_only_the_default():
    field = Field(None, "d", type=float, frozen=True)
    assert field.resolve(None, "dropblock.dropblock_keep_prob", None) is None
    with pytest.raises(ConfigError, match=r"received 0.9 \(float\); only the default None is"):
        field.resolve(0.9, "dropblock.dropblock_keep_prob", "file a.yaml")


def test_with_default_keeps_the_declaration():
    field = Field(1, "doc", check=POSITIVE).with_default(2)
    assert field.default == 2 and field.doc == "doc" and field.check is POSITIVE


def _section():
    return Section(
        "root",
        {
            "a": Field(1, "a"),
            "sub": Section("sub", {"b": Field(2.0, "b"), "c": Field("x", "c")}),
        },
    )


def test_section_defaults_walk_and_find():
    section = _section()
    assert section.defaults() == {"a": 1, "sub": {"b": 2.0, "c": "x"}}
    assert [path for path, _ in section.walk()] == ["a", "sub.b", "sub.c"]
    assert section.find("sub.b").default == 2.0
    assert section.find("sub.zz") is None and section.find("a.b") is None


def test_section_extend_changes_defaults_and_adds_entries():
    extended = _section().extend({"a": 5, "sub": {"b": 3, "d": Field(True, "d")}}, doc="new")
    assert extended.defaults() == {"a": 5, "sub": {"b": 3.0, "c": "x", "d": True}}
    assert extended.doc == "new"
    assert _section().defaults()["a"] == 1
    with pytest.raises(TypeError, match="not a section"):
        _section().extend({"a": {"x": 1}})
    with pytest.raises(TypeError, match="not a declared field"):
        _section().extend({"zz": 1})
    with pytest.raises(ConfigError, match="expected int"):
        _section().extend({"a": "text"})


def test_section_aliases_must_name_a_field():
    with pytest.raises(TypeError, match="Alias 'old' -> 'missing'"):
        Section("s", {"a": Field(1, "a")}, aliases={"old": "missing"})
    with pytest.raises(TypeError, match="needs a one-line doc"):
        Section("", {})


def test_regex_check():
    field = Field(None, "d", type=str, check=REGEX)
    assert field.resolve(r"resnet50/conv2d\/", "p", None) == r"resnet50/conv2d\/"
    with pytest.raises(ConfigError, match="expected a valid Python regular expression; received '"):
        field.resolve("(unclosed", "train.frozen_variable_prefix", "--params_override")
