import os
import re

from official.detection import tf_compat
from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_convolutions.py")


def _run(*args):
    return script_runs.run_python_script(_SCRIPT, *args, timeout=120)


def _rows(stdout):
    return re.findall(
        r"^(\S+) \| (.+?) \| ([0-9.]+) / ([0-9.]+) \| ([0-9.]+) / ([0-9.]+)$", stdout, re.M
    )


# Input gradients are GEMMs or forward convolutions where the CPU kernels are Eigen's.
_EIGEN = not tf_compat.onednn_enabled()
_INPUT = ", gemm input gradient" if _EIGEN else ""


def test_times_both_kernels_and_says_which_cpu_kernel_ran():
    result = _run("--shapes=2x16x16x256x8,1x8x8x8x8,1x8x8x256x8", "--repeats=2")
    assert result.returncode == 0, result.stderr
    assert f"oneDNN {'off' if _EIGEN else 'on'}" in result.stdout.splitlines()[0]
    rows = _rows(result.stdout)
    assert [(shape, kind) for shape, kind, *_ in rows] == [
        ("2x16x16x256x8", "winograd"),  # 512 positions, 256 channels
        ("1x8x8x8x8", "gemm filter gradient" + _INPUT),
        ("1x8x8x256x8", "gemm filter gradient"),  # 256 channels: Eigen's input gradient
    ]
    assert all(float(ms) > 0 for row in rows for ms in row[2:])


def test_1x1_and_strided_layers():
    result = _run("--shapes=1x8x8x16x8", "--repeats=2", "--kernel_size=1")
    assert result.returncode == 0, result.stderr
    assert [kind for _, kind, *_ in _rows(result.stdout)] == ["gemm filter gradient" + _INPUT]
    result = _run("--shapes=1x8x8x16x8", "--repeats=2", "--kernel_size=1", "--strides=2")
    assert [kind for _, kind, *_ in _rows(result.stdout)] == [
        "gemm input gradient" if _EIGEN else "tensorflow's"
    ]
    result = _run("--shapes=1x8x8x16x8", "--repeats=2", "--strides=2")
    assert [kind for _, kind, *_ in _rows(result.stdout)] == ["tensorflow's"]


def test_malformed_shape_is_refused():
    result = _run("--shapes=2x32x32x256")
    assert result.returncode == 1
    assert "--shapes: '2x32x32x256' is not BxHxWxCINxCOUT" in result.stderr


def test_the_input_gradient_op_alone():
    result = _run(
        "--shapes=1x8x8x16x8,1x8x8x256x8", "--repeats=2", "--input_gradient", "--strides=1"
    )
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^(\S+) \| ([0-9.]+) / ([0-9.]+|none) \| (\w+)$", result.stdout, re.M)
    assert [(shape, use) for shape, _, _, use in rows] == [
        ("1x8x8x16x8", "used"),
        ("1x8x8x256x8", "kept"),  # 256 channels: Eigen's was faster, timed all the same
    ]
    assert all(float(ms) > 0 for row in rows for ms in row[1:3])
    result = _run("--shapes=1x9x9x16x8", "--repeats=2", "--input_gradient", "--strides=2")
    assert re.search(r"^1x9x9x16x8 \| [0-9.]+ / none \| none$", result.stdout, re.M), result.stdout
    result = _run(
        "--shapes=1x9x9x16x8", "--repeats=2", "--input_gradient", "--kernel_size=1", "--strides=2"
    )
    assert re.search(r"^1x9x9x16x8 \| [0-9.]+ / [0-9.]+ \| used$", result.stdout, re.M)
