"""Runs a Python script of the repository in a child process, as a user would."""

import os
import subprocess
import sys


def run_python_script(script, *args, timeout, python=sys.executable):
    """`python script args...` with TensorFlow's C++ logging quiet (`python`: this
    process's interpreter unless given, e.g. the other TensorFlow lane's).

    Returns the CompletedProcess with text stdout and stderr.
    """
    return subprocess.run(
        [python, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
