"""Call recording of the fake adapter: in memory and, if asked, in a JSON-lines file."""

import json
import os

CALLS = []
RECORD_ENV = "FAKE_NPU_BRIDGE_RECORD"
# The launch environment of an Ascend rank, recorded with every call.
LAUNCH_ENV = ("RANK_SIZE", "RANK_ID", "DEVICE_ID", "ASCEND_DEVICE_ID", "RANK_TABLE_FILE", "JOB_ID")


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return type(value).__name__


def record(*what, **kwargs):
    """Notes that `what` was constructed or called with `kwargs`; returns the entry.

    `what` is positional only (so any keyword, even `what`, belongs to the call recorded);
    written as `*what` because Python 3.7 has no `/` in signatures.
    """
    (what,) = what
    entry = {
        "name": what,
        "pid": os.getpid(),
        "env": {name: os.environ.get(name) for name in LAUNCH_ENV},
        "kwargs": {k: _plain(v) for k, v in kwargs.items()},
    }
    CALLS.append(entry)
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry) + "\n")
    return entry
