import os
import re

from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_convolutions.py")


def _run(*args):
    return script_runs.run_python_script(_SCRIPT, *args, timeout=120)


def test_times_both_kernels_and_says_which_cpu_kernel_ran():
    result = _run("--shapes=2x16x16x128x8,1x8x8x8x8", "--repeats=2")
    assert result.returncode == 0, result.stderr
    rows = re.findall(
        r"^(\S+) \| (.+?) \| ([0-9.]+) / ([0-9.]+) \| ([0-9.]+) / ([0-9.]+)$", result.stdout, re.M
    )
    assert [(shape, kind) for shape, kind, *_ in rows] == [
        ("2x16x16x128x8", "winograd"),  # 512 positions, 128 channels
        ("1x8x8x8x8", "gemm filter gradient"),
    ]
    assert all(float(ms) > 0 for row in rows for ms in row[2:])


def test_malformed_shape_is_refused():
    result = _run("--shapes=2x32x32x256")
    assert result.returncode == 1
    assert "--shapes: '2x32x32x256' is not BxHxWxCINxCOUT" in result.stderr
