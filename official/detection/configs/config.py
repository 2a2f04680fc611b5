"""`Config`: the read-only, validated configuration handed to the rest of the code.

    params.train.total_steps          # attribute access
    params['train']['total_steps']    # item access
    params.lookup('train.total_steps')
    params.source_of('train.total_steps')   # 'default', 'file x.yaml', ...
    params.as_dict()                  # plain nested dict (lists as lists)

List values come back as tuples. Unknown keys raise `UnknownKeyError` (a
ConfigError that is also an AttributeError and a KeyError) with a suggestion.
Configs are built by `load_config` / `config_generator`, not by hand.
"""

from official.detection.configs import yaml_io
from official.detection.configs.errors import (
    UnknownKeyError,
    close_matches,
    did_you_mean,
    join_message,
)
from official.detection.configs.schema import Section

DEFAULT_SOURCE = "default"


def _plain(value):
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


class Config:
    """A view of one section of a resolved configuration.

    Args:
      section: the schema `Section` this view follows.
      values: nested dict of this section's values (not copied: never mutated).
      sources: dotted path -> source label for every value that is not a default;
        shared by all views of one configuration.
      prefix: dotted path of this section followed by '.', '' for the root.
    """

    __slots__ = ("_section", "_values", "_sources", "_prefix")

    def __init__(self, section, values, sources, prefix=""):
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_sources", sources)
        object.__setattr__(self, "_prefix", prefix)

    def _get(self, name):
        if name not in self._values:
            location = f"section '{self._prefix[:-1]}'" if self._prefix else "the config"
            raise UnknownKeyError(
                join_message(
                    f"'{self._prefix}{name}' is not a key of {location}",
                    did_you_mean(close_matches(name, self._values)),
                    "valid keys: " + ", ".join(self._values),
                ),
                path=f"{self._prefix}{name}",
            )
        entry = self._section[name]
        if isinstance(entry, Section):
            return Config(entry, self._values[name], self._sources, f"{self._prefix}{name}.")
        return self._values[name]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._get(name)

    def __getitem__(self, name):
        return self._get(name)

    def __setattr__(self, name, value):
        raise TypeError(
            f"Config is read-only (tried to set '{self._prefix}{name}'); pass values through "
            "the config file, --params_override or load_config(forced=...)"
        )

    def __delattr__(self, name):
        raise TypeError(f"Config is read-only (tried to delete '{self._prefix}{name}')")

    def __contains__(self, name):
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def keys(self):
        return self._values.keys()

    def items(self):
        return [(name, self._get(name)) for name in self._values]

    def get(self, name, default=None):
        return self._get(name) if name in self._values else default

    def lookup(self, dotted):
        """The value (or sub-Config) at a dotted path relative to this section."""
        value, walked = self, self._prefix
        for name in dotted.split("."):
            if not isinstance(value, Config):
                raise UnknownKeyError(
                    f"'{walked[:-1]}' is a single value; it has no key '{name}'",
                    path=f"{self._prefix}{dotted}",
                )
            value = value._get(name)
            walked += name + "."
        return value

    def source_of(self, dotted):
        """Where the value at `dotted` came from: 'default', 'file x.yaml', a flag, ..."""
        self.lookup(dotted)
        return self._sources.get(f"{self._prefix}{dotted}", DEFAULT_SOURCE)

    def as_dict(self):
        """A new plain nested dict of this section (tuples turned into lists)."""
        return _plain(self._values)

    def to_yaml(self):
        """YAML text of `as_dict()`; loading it as a config file gives an equal Config."""
        return yaml_io.dump_yaml(self.as_dict())

    def __eq__(self, other):
        if not isinstance(other, Config):
            return NotImplemented
        return self._prefix == other._prefix and self._values == other._values

    __hash__ = None

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        name = self._prefix[:-1] or "root"
        return f"Config({name}: {self.as_dict()!r})"
