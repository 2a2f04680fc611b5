"""scripts/demo.sh's command line, as the README writes it (the run itself is the
README's first command, timed in docs/BENCHMARKS.md)."""

import os
import subprocess

import pytest

_DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.sh")


def _demo(*args):
    return subprocess.run(["bash", _DEMO, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        ["--num_train", "40", "--num_val", "8", "--params_override", "a=1", "--model", "mask_rcnn"],
        ["--num_train=40", "--num_val=8", "--params_override=a=1", "--work_dir=/tmp/x"],
    ],
)
def test_every_option_takes_its_value_after_a_space_or_an_equals_sign(args):
    result = _demo(*args, "--help")  # parsed up to --help, which stops before any work
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The embedded default job")


@pytest.mark.parametrize("option", ["--num_train", "--num_val", "--params_override"])
def test_an_option_without_its_value_is_one_error(option):
    result = _demo(option)
    assert result.returncode != 0
    assert f"{option} needs a value" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_option_is_named():
    result = _demo("--epochs", "3")
    assert result.returncode == 1
    assert result.stderr.startswith("demo.sh: unknown argument '--epochs'")
