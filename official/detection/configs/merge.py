"""Strict merging of user mappings into a model's defaults, and building the Config."""

from official.detection.configs.config import Config
from official.detection.configs.errors import (
    ConfigError,
    UnknownKeyError,
    close_matches,
    describe,
    did_you_mean,
    join_message,
    where,
)
from official.detection.configs.schema import Section


def nest_dotted(dotted, value):
    """'a.b.c', v -> {'a': {'b': {'c': v}}}."""
    nested = value
    for name in reversed(dotted.split(".")):
        nested = {name: nested}
    return nested


class Builder:
    """Accumulates values from successive sources over a schema's defaults.

    Args:
      schema: the root `Section` of the model.
      model: the model name the user asked for, used in messages.
    """

    def __init__(self, schema, model):
        self._schema = schema
        self._model = model
        self._values = schema.defaults()
        self._sources = {}
        self._all_paths = [path for path, _ in schema.walk()]

    def merge(self, mapping, source):
        """Applies a nested mapping; `source` labels it in errors and in `source_of`.

        Raises:
          ConfigError: an unknown key, a wrong type, a value outside the choices,
            a mapping where a value belongs (or the reverse), a foreign model type.
        """
        self._merge(self._schema, self._values, mapping, "", source)

    def set_value(self, dotted, value, source):
        """Sets one dotted key, e.g. ('model_dir', '/tmp/run', 'flag --model_dir')."""
        self.merge(nest_dotted(dotted, value), source)

    def build(self):
        """The Config of everything merged so far (the builder must not be used after)."""
        return Config(self._schema, self._values, dict(self._sources))

    def _merge(self, section, values, mapping, prefix, source):
        for name, value in self._canonical_items(section, mapping, prefix, source):
            path = prefix + name
            entry = section[name]
            if isinstance(entry, Section):
                if value is None:
                    continue  # An empty section in YAML ("retinanet_head:") changes nothing.
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"{path}{where(source)}: expected a mapping (a section with keys "
                        f"{', '.join(entry.keys())}); received {describe(value)}",
                        path=path,
                        source=source,
                    )
                self._merge(entry, values[name], value, path + ".", source)
                continue
            if path == "type" and value != entry.default:
                raise ConfigError(
                    f"type{where(source)}: the config is for model type {value!r}, but model "
                    f"{self._model!r} needs type {entry.default!r}; use a {entry.default} config "
                    "or choose the matching model",
                    path=path,
                    source=source,
                )
            values[name] = entry.resolve(value, path, source)
            self._sources[path] = source

    def _canonical_items(self, section, mapping, prefix, source):
        """(name, value) pairs with legacy aliases renamed; raises on unknown keys."""
        chosen = {}
        for key, value in mapping.items():
            name = section.aliases.get(key, key) if isinstance(key, str) else key
            if not isinstance(name, str) or name not in section:
                raise self._unknown_key(section, prefix, key, source)
            if name in chosen and chosen[name][1] != value:
                raise ConfigError(
                    f"{prefix}{name}{where(source)}: given twice with different values, as "
                    f"'{chosen[name][0]}' ({chosen[name][1]!r}) and '{key}' ({value!r})",
                    path=prefix + name,
                    source=source,
                )
            chosen[name] = (key, value)
        return [(name, value) for name, (_, value) in chosen.items()]

    def _unknown_key(self, section, prefix, key, source):
        path = f"{prefix}{key}"
        location = f"'{prefix[:-1]}'" if prefix else "the top level"
        hint = ""
        if isinstance(key, str) and self._schema.find(path) is not None:
            hint = (
                f"a dotted key is not expanded inside a mapping; nest it ({{{key.split('.')[0]}: "
                "{...}}) or use the 'a.b=value' form of --params_override"
            )
        elif isinstance(key, str):
            same_leaf = [p for p in self._all_paths if p.rsplit(".", 1)[-1] == key]
            if same_leaf:
                hint = did_you_mean(same_leaf[:3])
            else:
                nearby = [prefix + m for m in close_matches(key, section.keys())]
                hint = did_you_mean(nearby or close_matches(path, self._all_paths))
        return UnknownKeyError(
            join_message(
                f"unknown key '{path}'{where(source)}",
                hint,
                f"valid keys in {location}: " + ", ".join(section.keys()),
            ),
            path=path,
            source=source,
        )
