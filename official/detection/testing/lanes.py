"""Markers for the few tests of behaviour that one TensorFlow lane does not have.

Each use states what is missing; models, data, evaluation, devices and scripts are
tested on both lanes.
"""

import os

import pytest

from official.detection import tf_compat
from official.detection.testing import launch_scripts


def skip_on_tf1(reason):
    """Skips a test on TensorFlow 1.15; `reason` says what 1.15 lacks."""
    return pytest.mark.skipif(tf_compat.IS_TF1, reason=f"TensorFlow 1.15: {reason}")


VENVS = {"tf2": ".venv", "tf1": ".venv-tf1"}


def other_lane():
    """The lane this process is not on: 'tf1' or 'tf2'."""
    return "tf2" if tf_compat.IS_TF1 else "tf1"


def other_lane_python():
    """The other lane's Python (in its virtual environment at the repository root), or
    None when that lane is not set up."""
    path = os.path.join(launch_scripts.REPO, VENVS[other_lane()], "bin", "python")
    return path if os.access(path, os.X_OK) else None
