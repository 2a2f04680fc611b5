"""The error type for configuration problems, and the helpers that word its messages.

Every message names the dotted key, where the value came from (a file, a flag,
`--params_override`), what was received and what is allowed, so that a user can
fix a config without reading this package.
"""

import difflib


class ConfigError(ValueError):
    """A key, value, file or override string of a configuration is invalid.

    Attributes:
      path: the dotted key concerned (e.g. 'train.total_steps'), or None when
        the problem is not about one key (an unreadable file, say).
      source: where the offending value came from, e.g. 'file a.yaml',
        '--params_override', 'flag --model_dir'; None when not known.
    """

    def __init__(self, message, *, path=None, source=None):
        super().__init__(message)
        self.path = path
        self.source = source


class UnknownKeyError(ConfigError, AttributeError, KeyError):
    """A key that the schema does not declare.

    Also an AttributeError and a KeyError, so `getattr(config, name, default)`,
    `hasattr` and `except KeyError` behave as Python code expects.
    """

    def __str__(self):
        return self.args[0]


def type_name(value):
    """Names the type of a parsed YAML/Python value the way YAML users know it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def describe(value):
    """`describe(0.5)` -> "0.5 (float)"."""
    return f"{value!r} ({type_name(value)})"


def where(source):
    """The ' (from X)' phrase that follows a key in a message, or '' if unknown."""
    if source == "default":
        return " (default)"
    return f" (from {source})" if source else ""


def close_matches(name, candidates, limit=3):
    """Candidates that look like `name`, best first (difflib ratio >= 0.6)."""
    return difflib.get_close_matches(str(name), list(candidates), n=limit, cutoff=0.6)


def did_you_mean(matches):
    """ "did you mean 'a' or 'b'?" or '' when there is nothing to suggest."""
    if not matches:
        return ""
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"


def join_message(*parts):
    """Joins the non-empty fragments of a message with '; ' (just ' ' after a '?')."""
    text = ""
    for part in parts:
        if not part:
            continue
        if text:
            text += " " if text.endswith("?") else "; "
        text += part
    return text


def show(value):
    """repr() of a config value, with tuples shown as the lists a user wrote."""
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)
