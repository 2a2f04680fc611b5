"""Markers for the few tests of behaviour that one TensorFlow lane does not have.

Each use states what is missing; models, data, evaluation, devices and scripts are
tested on both lanes.
"""

import pytest

from official.detection import tf_compat


def skip_on_tf1(reason):
    """Skips a test on TensorFlow 1.15; `reason` says what 1.15 lacks."""
    return pytest.mark.skipif(tf_compat.IS_TF1, reason=f"TensorFlow 1.15: {reason}")
