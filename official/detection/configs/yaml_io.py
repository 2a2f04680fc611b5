"""YAML reading and writing for configs: safe loading only, strict about duplicates.

Two departures from plain `yaml.safe_load`, both on the safe loader:
- `1e-4` and `4e5` are read as floats (YAML 1.1 wants `1.0e-4`; people and
  JSON write `1e-4`), and the dumper quotes strings of that form so that they
  read back as strings.
- A key given twice in one mapping is an error instead of "last one wins".
"""

import os
import re

import yaml

from official.detection.configs.errors import ConfigError, type_name

_FLOAT_TAG = "tag:yaml.org,2002:float"
# Exponent floats without a dot or without an exponent sign, which YAML 1.1 misses.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_FLOAT_FIRST_CHARS = list("-+0123456789.")


class _Loader(yaml.SafeLoader):
    """SafeLoader with exponent floats and duplicate-key detection."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key!r} is given twice (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            try:
                seen[key] = key_node.start_mark
            except TypeError:
                pass
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes lists in flow style ([1.0, 2.0]) and quotes '1e-4' strings."""


_Loader.add_implicit_resolver(_FLOAT_TAG, _EXPONENT_FLOAT, _FLOAT_FIRST_CHARS)
_Dumper.add_implicit_resolver(_FLOAT_TAG, _EXPONENT_FLOAT, _FLOAT_FIRST_CHARS)
_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)


def _yaml_problem(error):
    """'line 3, column 7: mapping values are not allowed here' from a YAMLError."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def parse_yaml(text, label):
    """Parses YAML `text`; `label` names its origin in errors (e.g. '--params_override').

    Raises:
      ConfigError: the text is not valid YAML.
    """
    try:
        # _Loader is a SafeLoader: no Python objects can be built from the text.
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise ConfigError(
            f"{label}: invalid YAML at {_yaml_problem(error)}", source=label
        ) from None


def read_yaml_mapping(path, label=None):
    """Reads a YAML file whose top level must be a mapping (an empty file gives {}).

    Args:
      path: the file path, as the user gave it.
      label: how errors name the file; defaults to 'file <path>'.

    Raises:
      ConfigError: the file is missing, unreadable, not YAML, or not a mapping.
    """
    label = label or f"file {path}"
    if not os.path.exists(path):
        raise ConfigError(
            f"{label}: no such file (looked for {os.path.abspath(path)!r})", source=label
        )
    if os.path.isdir(path):
        raise ConfigError(f"{label}: is a directory, not a YAML file", source=label)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label}: cannot be read ({error})", source=label) from None
    return require_mapping(parse_yaml(text, label), label)


def require_mapping(parsed, label):
    """`parsed` if it is a mapping, {} if empty; else a ConfigError naming `label`."""
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise ConfigError(
            f"{label}: the top level must be a mapping of keys to values; received "
            f"{type_name(parsed)} {parsed!r}"[:300],
            source=label,
        )
    return parsed


def dump_yaml(data):
    """Block-style YAML of nested dicts, keys in their given order, lists in flow style."""
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=False)
