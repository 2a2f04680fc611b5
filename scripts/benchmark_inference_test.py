import os
import re

from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_inference.py")


def test_small_retinanet_reports_both_paths_with_the_same_detections(tmp_path):
    result = script_runs.run_python_script(
        _SCRIPT,
        "--configs=retinanet_r50_fpn_coco",
        "--params_override=resnet.resnet_depth=10,fpn.fpn_feat_dims=16,"
        "retinanet_head.num_filters=16,architecture.num_classes=3",
        "--image_size=128",
        "--batch_sizes=1,2",
        "--iterations=1",
        "--matmul_size=128",
        f"--work_dir={tmp_path}",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert float(re.search(r"^matmul_gflop_per_s: ([0-9.]+) best", out, re.M).group(1)) > 0
    for field in ("export_seconds", "saved_model_load_seconds"):
        assert float(re.search(rf"^{field}: ([0-9.]+)", out, re.M).group(1)) > 0
    assert float(re.search(r"^max_box_difference_px: (\S+)", out, re.M).group(1)) < 1e-3
    for batch in (1, 2):
        for path in ("saved_model", "checkpoint"):
            line = re.search(
                rf"^batch {batch} {path}: ([0-9.]+) s/batch median, ([0-9.]+) images/s", out, re.M
            )
            assert line, out
            seconds, rate = float(line.group(1)), float(line.group(2))
            assert abs(rate - batch / seconds) < 0.02 * rate + 0.01
    assert os.path.isfile(
        os.path.join(tmp_path, "retinanet_r50_fpn_coco", "export", "saved_model.pb")
    )


def test_unknown_config_is_one_line():
    result = script_runs.run_python_script(_SCRIPT, "--configs=no_such_config", timeout=120)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: --config: 'no_such_config' is neither a file nor a shipped config; shipped: "
        )
    )
