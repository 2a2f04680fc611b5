"""Runs the input-pipeline benchmark on a few tiny batches and checks its error exits."""

import os
import re

from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_input_pipeline.py")


def _run(*args):
    return script_runs.run_python_script(_SCRIPT, *args, timeout=300)


def test_small_benchmark_reports_rates_for_both_parsers(tmp_path):
    common = [
        "--output_size=128",
        "--num_images=4",
        "--num_objects=2",
        "--batch_size=2",
        "--warmup_batches=1",
        "--num_batches=2",
        f"--data_dir={tmp_path}",
    ]
    for parser, verb in (("retinanet", "wrote"), ("maskrcnn", "reusing")):
        result = _run(f"--parser={parser}", *common)
        assert result.returncode == 0, result.stderr
        # The second run finds the first run's records and reuses them.
        assert re.search(rf"^{verb} 4 images", result.stdout, re.M), result.stdout
        assert float(re.search(r"^images/s: ([0-9.]+)", result.stdout, re.M).group(1)) > 0
        assert re.search(r"^images per CPU-second: [0-9.]+", result.stdout, re.M)
    assert len(list(tmp_path.glob("train-*"))) == 4


def test_bad_arguments_exit_non_zero(tmp_path):
    result = _run("--parser=retinanet", "--cores=0")
    assert result.returncode == 2 and "--cores must be positive, got 0" in result.stderr
    result = _run("--parser=retinanet", "--cores=999", f"--data_dir={tmp_path}")
    assert result.returncode == 1
    assert "--cores=999 but only" in result.stderr
