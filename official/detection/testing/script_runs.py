"""Runs a Python script of the repository in a child process, as a user would."""

import os
import subprocess
import sys


def run_python_script(script, *args, timeout):
    """`python script args...` with TensorFlow's C++ logging quiet.

    Returns the CompletedProcess with text stdout and stderr.
    """
    return subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
