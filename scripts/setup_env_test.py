"""scripts/setup_env.sh: lane choice and its errors (on a copy, so nothing is installed)."""

import os
import shutil
import subprocess

import pytest

SETUP = os.path.join(os.path.dirname(__file__), "setup_env.sh")


def _run(tmp_path, *args, **env):
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(SETUP, tmp_path / "scripts" / "setup_env.sh")
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "PYTHON37")}
    base.pop("DETECTION_LANE", None)
    return subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup_env.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(base, **env),
    )


@pytest.mark.parametrize(
    "args, env, message",
    [
        (
            ["--tf1"],
            {"PYTHON37": "/bin/false"},
            "error: Python 3.7 not found (TensorFlow 1.15 lane: ",
        ),
        ([], {"DETECTION_LANE": "tf1", "PYTHON37": "no-such-python"}, "set PYTHON37="),
        ([], {"PYTHON": "no-such-python"}, "error: Python not found (no-such-python); install"),
        ([], {"DETECTION_LANE": "tf3"}, "error: unknown lane 'tf3' (DETECTION_LANE); use"),
        (["--tf5"], {}, "error: unknown argument '--tf5' (scripts/setup_env.sh); use --tf1"),
    ],
)
def test_errors_exit_1_with_one_line_and_create_nothing(tmp_path, args, env, message):
    result = _run(tmp_path, *args, **env)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / ".venv").exists() and not (tmp_path / ".venv-tf1").exists()


def test_finds_python_3_7_when_pyenv_has_one(tmp_path):
    """The 3.7 finder prefers python3.7 on the PATH, then pyenv's newest 3.7."""
    root = tmp_path / "pyenv"
    for version in ("3.7.9", "3.7.16", "3.8.18"):
        bin_dir = root / "versions" / version / "bin"
        bin_dir.mkdir(parents=True)
        fake = bin_dir / f"python{version[:3]}"
        fake.write_text(f"#!/bin/sh\necho {fake}\n")  # prints its sys.executable
        fake.chmod(0o755)
    script = (
        f'source <(sed -n "/^find_python37/,/^}}/p" {SETUP}); '
        f"PATH=/usr/bin:/bin PYENV_ROOT={root} HOME={tmp_path} find_python37"
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == str(root / "versions" / "3.7.16" / "bin" / "python3.7")
