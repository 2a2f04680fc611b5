import os
import re
import subprocess
import sys

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_postprocess.py")


def test_small_benchmark_runs_and_variants_agree():
    result = subprocess.run(
        [
            sys.executable,
            _SCRIPT,
            "--image_size=128",
            "--num_classes=4",
            "--iterations=1",
            "--batch_size=1",
            "--logit_mean=-3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for variant in ("project", "ancestor_v3", "ancestor"):
        assert re.search(rf"^\| {variant} \| [0-9.]+ \| [0-9.]+ \|", out, re.M), out
    agreements = re.findall(r"project vs \w+: (\d+) / (\d+) detections identical", out)
    assert len(agreements) == 2, out
    assert all(matched == total and int(total) > 0 for matched, total in agreements), out


def test_unknown_variant_exits_non_zero():
    result = subprocess.run(
        [sys.executable, _SCRIPT, "--variants=project,fastest"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert (
        "--variants: unknown ['fastest']; choose from ['ancestor', 'ancestor_v3', 'project']"
        in (result.stderr + result.stdout)
    )
