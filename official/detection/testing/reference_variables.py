"""Variable lists recorded from the ancestor code base, for checkpoint-compatibility tests.

Each file `reference/ancestor_variables_<name>.txt` holds two sections, written
from a training graph of the ancestor (tensorflow/tpu `models/official/detection`):

    # trainable variables (<count>, <parameters> params)
    <name> [<dim>, <dim>, ...]
    ...

    # all global variables in graph (<count>)
    global_step []
    <name> [<dim>, ...]
    ...

Names carry no `:0` suffix; shapes are JSON-style integer lists (`[]` for
scalars). The global section also holds `global_step` and the optimizer's
`<variable>/Momentum` slots. The header counts are checked on load, so a
truncated or edited copy fails loudly instead of weakening the tests.
"""

import json
import os
import re

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
_FILE_PATTERN = "ancestor_variables_{}.txt"

_TRAINABLE_HEADER = re.compile(r"^# trainable variables \((\d+), (\d+) params\)$")
_GLOBAL_HEADER = re.compile(r"^# all global variables in graph \((\d+)\)$")


class ReferenceFileError(ValueError):
    """A reference variable file is missing, unknown or malformed."""


def available_references():
    """Names accepted by `load_reference_variables`, e.g. 'retinanet_r50'."""
    prefix, suffix = _FILE_PATTERN.split("{}")
    names = [
        f[len(prefix) : -len(suffix)]
        for f in os.listdir(REFERENCE_DIR)
        if f.startswith(prefix) and f.endswith(suffix)
    ]
    return sorted(names)


def _parse_entry(line, path, line_number):
    name, sep, shape_text = line.partition(" ")
    try:
        shape = json.loads(shape_text) if sep else None
    except json.JSONDecodeError:
        shape = None
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise ReferenceFileError(
            f"{path}:{line_number}: expected '<name> [<dims>]', received {line!r}"
        )
    return name, tuple(shape)


def load_reference_variables(name):
    """Reads `reference/ancestor_variables_<name>.txt`.

    Args:
      name: 'retinanet_r50', 'maskrcnn_r50' or 'retinanet_spinenet49s' (see
        `available_references()`).

    Returns:
      (trainable, global_): two lists of `(variable name, shape tuple)` in the
      ancestor's creation order.

    Raises:
      ReferenceFileError: unknown name, or a file whose entries do not match
        its header counts.
    """
    valid = available_references()
    if name not in valid:
        raise ReferenceFileError(
            f"load_reference_variables: unknown reference {name!r}; valid names: {valid}"
        )
    path = os.path.join(REFERENCE_DIR, _FILE_PATTERN.format(name))
    sections = {"trainable": [], "global": []}
    expected = {}
    current = None
    with open(path) as f:
        for line_number, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            trainable_match = _TRAINABLE_HEADER.match(line)
            global_match = _GLOBAL_HEADER.match(line)
            if trainable_match:
                current = "trainable"
                expected["trainable"] = int(trainable_match.group(1))
                expected["params"] = int(trainable_match.group(2))
            elif global_match:
                current = "global"
                expected["global"] = int(global_match.group(1))
            elif current is None:
                raise ReferenceFileError(
                    f"{path}:{line_number}: entry before any section header: {line!r}"
                )
            else:
                sections[current].append(_parse_entry(line, path, line_number))

    trainable, global_ = sections["trainable"], sections["global"]
    params = sum(count_parameters(shape) for _, shape in trainable)
    found = {"trainable": len(trainable), "global": len(global_), "params": params}
    for key, value in found.items():
        if expected.get(key) != value:
            raise ReferenceFileError(
                f"{path}: header says {key}={expected.get(key)}, entries give {value}"
            )
    return trainable, global_


def count_parameters(shape):
    """Number of scalars in a variable of `shape` (1 for a scalar)."""
    total = 1
    for dim in shape:
        total *= dim
    return total


def select_scope(variables, scope, *, include_slots=False):
    """Entries whose name starts with `scope` ('resnet50/'), optimizer slots dropped.

    Args:
      variables: list of `(name, shape)` as returned by `load_reference_variables`.
      scope: name prefix including the trailing '/'.
      include_slots: keep `<variable>/Momentum` optimizer slots.
    """
    return [
        (n, s)
        for n, s in variables
        if n.startswith(scope) and (include_slots or not n.endswith("/Momentum"))
    ]


def graph_variables(variables):
    """`(name, shape)` pairs of TF variables, in the same form as the reference files."""
    return [(v.op.name, tuple(v.shape.as_list())) for v in variables]
