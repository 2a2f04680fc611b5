"""What tf_compat sets up on each TensorFlow lane, seen from a fresh process."""

import json
import os
import subprocess
import sys

import pytest

from official.detection import tf_compat

_PROBE = (
    "import json, os; from official.detection import tf_compat; "
    "print(json.dumps([os.environ.get('TF_XLA_FLAGS'), tf_compat.XLA_CLUSTERING_SKIPPED]))"
)


def _probe(**environ):
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    env.update(environ)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_xla_clustering_search_is_skipped_on_tensorflow_1_only():
    if tf_compat.IS_TF1:
        assert _probe() == [tf_compat.XLA_NO_CLUSTERING, True]
    else:
        assert _probe() == [None, False]


@pytest.mark.parametrize("flags", ["--tf_xla_auto_jit=2", ""])
def test_a_users_xla_flags_are_left_alone(flags):
    assert _probe(TF_XLA_FLAGS=flags) == [flags, False]
