"""benchmark_lanes.sh: its options are checked before it sets up the lanes."""

import os
import subprocess

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_lanes.sh")


def _run(*args):
    return subprocess.run(["bash", _SCRIPT, *args], capture_output=True, text=True, timeout=60)


def test_a_bad_kernel_choice_is_one_error_line():
    result = _run("--cpu_kernels=on,fast")
    assert result.returncode == 1
    assert result.stderr == (
        "error: --cpu_kernels value 'fast' is not a kernel choice "
        "(scripts/benchmark_lanes.sh); valid: auto, on, off\n"
    )


def test_help_names_the_kernel_choices():
    result = _run("--help")
    assert result.returncode == 0
    assert "[--cpu_kernels LIST]" in result.stdout
    assert "comma-separated values of main.py's --cpu_kernels (auto, on, off)" in result.stdout
