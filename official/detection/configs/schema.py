"""Declaration primitives: a `Field` is one key, a `Section` a group of keys.

Each model's defaults are declared once as a tree of Sections (see
base_config.py, detection_config.py, retinanet_config.py, maskrcnn_config.py).
A Field carries its default, a one-line doc, its type and the values it allows;
`Field.resolve` is the single place where a user's value is checked.

Types are inferred from the default: `bool`, `int`, `float` (which also takes
ints, stored as floats), `str`, or `ListOf(item_type)` for lists; bools are
never taken as ints. A `None` default needs an explicit `type=` and makes the
key nullable. Lists are stored as tuples so that a Config cannot be changed
through them.
"""

import re

from official.detection.configs.errors import (
    ConfigError,
    close_matches,
    describe,
    did_you_mean,
    join_message,
    type_name,
    where,
)


class ListOf:
    """The type of a list-valued key: items of `item_type`, `length` of them if given."""

    def __init__(self, item_type, length=None):
        self.item_type = item_type
        self.length = length

    def __eq__(self, other):
        return (
            isinstance(other, ListOf)
            and self.item_type == other.item_type
            and self.length == other.length
        )

    def __hash__(self):
        return hash((ListOf, self.item_type, self.length))

    def __repr__(self):
        return f"ListOf({type_label(self.item_type)}, length={self.length})"


def type_label(type_):
    """'int', 'float', 'list of float with 2 items', ..."""
    if isinstance(type_, ListOf):
        label = f"list of {type_label(type_.item_type)}"
        if type_.length is not None:
            label += f" with {type_.length} items"
        return label
    return type_.__name__


class _Mismatch(Exception):
    """Internal: a value does not have the declared type; args[0] adds detail."""


def coerce(value, type_):
    """Checks `value` against `type_`; widens int to float and lists to tuples.

    Raises:
      _Mismatch: the value has another type.
    """
    if type_ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch("")
        return float(value)
    if type_ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch("")
        return value
    if type_ in (bool, str):
        if not isinstance(value, type_):
            raise _Mismatch("")
        return value
    if isinstance(type_, ListOf):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch("")
        if type_.length is not None and len(value) != type_.length:
            raise _Mismatch(f"it has {len(value)} items")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(coerce(item, type_.item_type))
            except _Mismatch:
                raise _Mismatch(
                    f"item {index} is {describe(item)}, not {type_label(type_.item_type)}"
                ) from None
        return tuple(items)
    raise TypeError(f"Unsupported field type {type_!r}")


def _infer_type(default):
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float, str)):
        return type(default)
    if isinstance(default, (list, tuple)):
        if not default:
            raise TypeError("An empty list default needs an explicit type=ListOf(...)")
        item_types = {_infer_type(item) for item in default}
        if item_types == {int, float}:
            return ListOf(float)
        if len(item_types) != 1:
            raise TypeError(f"List default {default!r} mixes item types")
        return ListOf(item_types.pop())
    raise TypeError(f"Cannot infer a field type from default {default!r}; pass type=")


class Check:
    """A predicate on a (type-checked, non-null) value and the words for what it wants."""

    def __init__(self, predicate, expected):
        self.predicate = predicate
        self.expected = expected

    def __call__(self, value):
        return bool(self.predicate(value))


POSITIVE = Check(lambda v: v > 0, "a value > 0")
NON_NEGATIVE = Check(lambda v: v >= 0, "a value >= 0")
FRACTION = Check(lambda v: 0.0 <= v <= 1.0, "a value in [0, 1]")
DROP_RATE = Check(lambda v: 0.0 <= v < 1.0, "a value in [0, 1)")
POSITIVE_ITEMS = Check(
    lambda v: len(v) > 0 and all(x > 0 for x in v), "a non-empty list of values > 0"
)
NON_NEGATIVE_ITEMS = Check(lambda v: all(x >= 0 for x in v), "a list of values >= 0")


def _compiles(pattern):
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


REGEX = Check(_compiles, "a valid Python regular expression")


def at_least(minimum):
    return Check(lambda v: v >= minimum, f"a value >= {minimum}")


class Field:
    """One configuration key.

    Args:
      default: the default value (also fixes the type unless `type` is given).
      doc: one line saying what the key does, shown in reference docs.
      type: int, float, bool, str or ListOf(...); required when default is None.
      choices: the only values allowed (compared after `normalize`).
      nullable: whether null is allowed; implied by a None default.
      check: a `Check` the non-null value must pass (range, sign, ...).
      normalize: a function applied to the type-checked value, e.g. str.upper.
      frozen: the key exists in the ancestor but its feature is not implemented
        here; it is declared so ancestor files load, and only the default is
        accepted.
      inert: the key only matters on TPUs (or to code paths this project does
        not have); any well-typed value is accepted and has no effect.
    """

    def __init__(
        self,
        default,
        doc,
        *,
        type=None,
        choices=None,
        nullable=False,
        check=None,
        normalize=None,
        frozen=False,
        inert=False,
    ):
        if not doc or "\n" in doc:
            raise TypeError(f"Field {default!r} needs a one-line doc")
        if type is None:
            if default is None:
                raise TypeError(f"Field {doc!r} has a None default and needs type=")
            type = _infer_type(default)
        self.doc = doc
        self.type = type
        self.choices = tuple(choices) if choices is not None else None
        self.nullable = nullable or default is None
        self.check = check
        self.normalize = normalize
        self.frozen = frozen
        self.inert = inert
        self.default = self._check_value(default, "<default>", None)

    def with_default(self, default):
        """A copy of this field with another default."""
        return Field(
            default,
            self.doc,
            type=self.type,
            choices=self.choices,
            nullable=self.nullable,
            check=self.check,
            normalize=self.normalize,
            frozen=self.frozen,
            inert=self.inert,
        )

    def type_description(self):
        label = type_label(self.type)
        return label + " or null" if self.nullable else label

    def resolve(self, value, path, source):
        """Returns the stored form of a user's `value` for this key or raises ConfigError.

        Args:
          value: the parsed YAML (or Python) value.
          path: the dotted key, for messages.
          source: where the value came from, for messages (or None).
        """
        result = self._check_value(value, path, source)
        if self.frozen and result != self.default:
            raise ConfigError(
                f"{path}{where(source)}: received {describe(value)}; only the default "
                f"{self.default!r} is supported. The ancestor's option is declared so its "
                "configs load, but this project does not implement it",
                path=path,
                source=source,
            )
        return result

    def _check_value(self, value, path, source):
        """Null, type, choices and check; returns the stored form of `value`."""
        if value is None:
            if not self.nullable:
                raise ConfigError(
                    f"{path}{where(source)}: expected {self.type_description()}; "
                    "received null (this key cannot be null)",
                    path=path,
                    source=source,
                )
            return None
        return self._resolve_value(value, path, source)

    def _resolve_value(self, value, path, source):
        try:
            result = coerce(value, self.type)
        except _Mismatch as mismatch:
            hint = ""
            if self.type is str and isinstance(value, (int, float)):
                hint = f"quote it in YAML: '{value}'"
            if isinstance(value, dict):
                hint = f"'{path}' is a single value, not a section"
            raise ConfigError(
                join_message(
                    f"{path}{where(source)}: expected {self.type_description()}",
                    f"received {describe(value)}",
                    mismatch.args[0],
                    hint,
                ),
                path=path,
                source=source,
            ) from None
        if self.normalize is not None:
            result = self.normalize(result)
        if self.choices is not None and result not in self.choices:
            text_choices = [c for c in self.choices if isinstance(c, str)]
            suggestion = close_matches(result, text_choices) if isinstance(result, str) else []
            raise ConfigError(
                join_message(
                    f"{path}{where(source)}: {describe(value)} is not a valid choice",
                    "expected one of " + ", ".join(repr(c) for c in self.choices),
                    did_you_mean(suggestion),
                ),
                path=path,
                source=source,
            )
        if self.check is not None and not self.check(result):
            raise ConfigError(
                f"{path}{where(source)}: expected {self.check.expected}; "
                f"received {describe(value)}",
                path=path,
                source=source,
            )
        return result


class Section:
    """A group of keys: name -> Field or Section, in declaration order.

    Args:
      doc: one line saying what the group configures.
      entries: mapping of key name to Field or Section.
      aliases: older key names accepted on input for a Field of this section,
        e.g. {'retinanet_head_num_filters': 'num_filters'}; output always uses
        the current name.
    """

    def __init__(self, doc, entries, *, aliases=None):
        if not doc or "\n" in doc:
            raise TypeError(f"Section {list(entries)} needs a one-line doc")
        self.doc = doc
        self.entries = dict(entries)
        self.aliases = dict(aliases or {})
        for name, entry in self.entries.items():
            if not isinstance(name, str) or not isinstance(entry, (Field, Section)):
                raise TypeError(f"Section entry {name!r} must be a Field or Section")
        for old, new in self.aliases.items():
            if old in self.entries or not isinstance(self.entries.get(new), Field):
                raise TypeError(f"Alias {old!r} -> {new!r} must name a new key for a Field")

    def __contains__(self, name):
        return name in self.entries

    def __getitem__(self, name):
        return self.entries[name]

    def keys(self):
        return self.entries.keys()

    def items(self):
        return self.entries.items()

    def defaults(self):
        """The default values as a nested dict (lists as tuples)."""
        return {
            name: entry.defaults() if isinstance(entry, Section) else entry.default
            for name, entry in self.entries.items()
        }

    def walk(self, prefix=""):
        """Yields (dotted path, Field) for every key below this section."""
        for name, entry in self.entries.items():
            if isinstance(entry, Section):
                yield from entry.walk(f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", entry

    def find(self, dotted):
        """The Field or Section at `dotted` (e.g. 'train.optimizer'), or None."""
        entry = self
        for name in dotted.split("."):
            if not isinstance(entry, Section) or name not in entry.entries:
                return None
            entry = entry.entries[name]
        return entry

    def extend(self, changes, *, doc=None):
        """A copy with `changes` applied.

        `changes` maps a key to a Field or Section (added or replaced), to a
        dict (applied to the sub-section of that name), or to a plain value
        (the new default of the existing Field).
        """
        entries = dict(self.entries)
        for name, change in changes.items():
            current = entries.get(name)
            if isinstance(change, (Field, Section)):
                entries[name] = change
            elif isinstance(change, dict):
                if not isinstance(current, Section):
                    raise TypeError(f"{name!r} is not a section to extend")
                entries[name] = current.extend(change)
            elif isinstance(current, Field):
                entries[name] = current.with_default(change)
            else:
                raise TypeError(f"{name!r} is not a declared field (got {type_name(change)})")
        return Section(doc or self.doc, entries, aliases=self.aliases)
