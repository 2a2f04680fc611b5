import os
import re

from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_evaluation.py")
_SMALL = (
    "resnet.resnet_depth=10,fpn.fpn_feat_dims=16,retinanet_head.num_filters=16,"
    "postprocess.max_total_size=20"
)


def test_main_py_evaluation_is_timed_by_stage_for_each_kernel_choice(tmp_path):
    sizes = ["--image_size=128", "--num_images=3", "--batch_size=2"]
    result = script_runs.run_python_script(
        _SCRIPT,
        "--configs=retinanet_r50_fpn_coco",
        f"--params_override={_SMALL}",
        *sizes,
        "--cpu_kernels=off,on",
        f"--work_dir={tmp_path}",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = re.findall(
        r"^round 1 retinanet_r50_fpn_coco cpu_kernels=(\w+): ([0-9.]+) images/s over ([0-9.]+) s, "
        r"(\d+) images, (\d+) detections/image; stages s \(set-up predict results closing "
        r"COCO writing\): ([0-9. ]+); predict alone ([0-9.]+) images/s$",
        result.stdout,
        re.M,
    )
    assert [row[0] for row in rows] == ["off", "on"], result.stdout
    for _, rate, seconds, images, per_image, stages, predict_rate in rows:
        assert (int(images), int(per_image)) == (3, 20)  # every slot kept at threshold 0
        assert abs(float(rate) - 3 / float(seconds)) < 0.05 * float(rate) + 0.01
        stage_seconds = [float(s) for s in stages.split()]
        assert len(stage_seconds) == 6 and sum(stage_seconds) <= float(seconds) + 0.3
        assert float(predict_rate) >= float(rate)
    assert os.path.isfile(tmp_path / "retinanet_r50_fpn_coco" / "eval" / "metrics_0.json")


def test_an_unknown_kernel_choice_is_one_line(tmp_path):
    result = script_runs.run_python_script(_SCRIPT, "--cpu_kernels=fast", timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --cpu_kernels: 'fast' is not auto, on or off"
