"""Reading the `--params_override` flag.

Accepted forms (anything else is a ConfigError, never guessed at):
- '' or None: no override.
- a YAML or JSON mapping: "{ train: { total_steps: 10, train_file_pattern: /d/train-* } }".
- dotted pairs separated by commas: "train.total_steps=10,anchor.aspect_ratios=[1.0,2.0]".
  Each value is read as YAML (so 10 is an int, [1.0,2.0] a list, null is None,
  an empty value is ''); a value that is not valid YAML on its own, such as
  *.tfrecord, is taken as a string. Commas inside brackets or quotes do not split.
- the path of an existing .yaml/.yml file, read like --config_file.
A Python dict is also accepted, for callers that are not a command line.
"""

import os
import re

from official.detection.configs import yaml_io
from official.detection.configs.errors import ConfigError, describe

FLAG = "--params_override"
_PAIR_START = re.compile(r"^\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\s*=")
_DOTTED_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_YAML_SUFFIXES = (".yaml", ".yml")
_OPENERS = {"[": "]", "{": "}"}


def parse_params_override(value):
    """Returns (mapping, source label) for a --params_override value.

    Raises:
      ConfigError: the value has none of the accepted forms, names a missing
        .yaml file, or is malformed.
    """
    if value is None:
        return {}, FLAG
    if isinstance(value, dict):
        return value, FLAG
    if not isinstance(value, str):
        raise ConfigError(f"{FLAG}: expected a string or a mapping; received {describe(value)}")
    text = value.strip()
    if not text:
        return {}, FLAG
    if _PAIR_START.match(text):
        return _parse_pairs(text), FLAG
    if _looks_like_path(text):
        if not os.path.isfile(text):
            raise ConfigError(
                f"{FLAG}: {text!r} ends in .yaml/.yml, so it is read as a file path, but there "
                f"is no such file (looked for {os.path.abspath(text)!r})",
                source=FLAG,
            )
        label = f"file {text} (from {FLAG})"
        return yaml_io.read_yaml_mapping(text, label), label
    parsed = yaml_io.parse_yaml(text, FLAG)
    if not isinstance(parsed, dict):
        raise ConfigError(
            f"{FLAG}: expected a YAML/JSON mapping such as '{{train: {{total_steps: 10}}}}', "
            "comma-separated 'key.path=value' pairs, or the path of an existing .yaml file; "
            f"received {text!r}"
            + (f", which reads as {describe(parsed)}" if parsed != text else " (str)"),
            source=FLAG,
        )
    return parsed, FLAG


def _looks_like_path(text):
    return (
        text.lower().endswith(_YAML_SUFFIXES)
        and "\n" not in text
        and not text.startswith("{")
        and ": " not in text
    )


def _split_top_level(text):
    """Splits on commas that are outside brackets, braces and quotes."""
    parts, current, closers, quote = [], [], [], None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in _OPENERS:
            closers.append(_OPENERS[char])
        elif closers and char == closers[-1]:
            closers.pop()
        elif char == "," and not closers:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote or closers:
        raise ConfigError(
            f"{FLAG}: unbalanced {'quote' if quote else 'bracket'} in {text!r}", source=FLAG
        )
    parts.append("".join(current))
    return parts


def _parse_value(key, text):
    if not text:
        return ""
    label = f"{FLAG} value of '{key}'"
    try:
        return yaml_io.parse_yaml(text, label)
    except ConfigError:
        if text[0] in "[{\"'":
            raise
        return text


def _parse_pairs(text):
    mapping, seen = {}, set()
    for item in _split_top_level(text):
        item = item.strip()
        if not item:
            continue
        key, equals, raw_value = item.partition("=")
        key = key.strip()
        if not equals or not _DOTTED_KEY.match(key):
            raise ConfigError(
                f"{FLAG}: {item!r} is not a 'key.path=value' pair (in {text!r})", source=FLAG
            )
        if key in seen:
            raise ConfigError(f"{FLAG}: '{key}' is given twice (in {text!r})", path=key)
        seen.add(key)
        _insert(mapping, key, _parse_value(key, raw_value.strip()), text)
    return mapping


def _insert(mapping, key, value, text):
    """Puts `value` at dotted `key` of `mapping`; a key cannot be both value and section."""
    names = key.split(".")
    target = mapping
    for name in names[:-1]:
        target = target.setdefault(name, {})
        if not isinstance(target, dict):
            break
    else:
        if names[-1] not in target:
            target[names[-1]] = value
            return
    raise ConfigError(
        f"{FLAG}: '{key}' is set both as a value and as a section (in {text!r})", path=key
    )
