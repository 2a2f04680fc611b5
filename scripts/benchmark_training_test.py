import os
import re

from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_training.py")


def _run(*args):
    return script_runs.run_python_script(_SCRIPT, *args, timeout=240)


def _field(out, name):
    match = re.search(rf"^{name}: (?:median )?([0-9.]+)", out, re.M)
    assert match, f"no {name} in:\n{out}"
    return float(match.group(1))


def test_tiny_resnet18_retinanet_reports_every_field(tmp_path):
    result = _run(
        "--config=retinanet_r50_fpn_coco",
        "--params_override={resnet: {resnet_depth: 18}, architecture: {num_classes: 3}, "
        "fpn: {fpn_feat_dims: 16}, retinanet_head: {num_filters: 16}}",
        "--image_size=128",
        "--steps=2",
        "--warmup=1",
        "--eval_steps=1",
        "--eval_warmup=1",
        "--matmul_size=256",
        f"--data_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "retinanet_r50_fpn_coco.yaml (type retinanet)" in out
    assert re.search(r"^machine: nproc=\d+ cpu='.*' cores_used=2 onednn=(on|off)", out, re.M)
    assert "cached in memory and repeated; not timed" in out
    setting = r"^setting: .* kernels=cpu \(--cpu_kernels=auto\) grappler=off \(--grappler=auto\)$"
    assert re.search(setting, out, re.M)
    # ResNet-18 (11.2M without its classifier) plus the small FPN and head.
    assert 11_000_000 < _field(out, "parameters") < 12_500_000
    for name in ("train_step_s", "train_step_cpu_s", "train_images_per_s", "eval_images_per_s"):
        assert _field(out, name) > 0
    train_gflop = _field(out, "train_step_gflop")
    forward_gflop = _field(out, "forward_gflop")
    # The backward pass is counted: up to two forward passes, less here because
    # this config freezes the stem and first stage (no backward ops there).
    assert 1.5 * forward_gflop < train_gflop < 3.2 * forward_gflop
    # Counted with direct convolutions; the graph as run (GEMM filter gradients, no
    # Winograd at 16 channels) has its own count, no larger.
    as_run = re.search(r"^train_step_gflop: .*; ([0-9.]+) as run\)", out, re.M)
    assert as_run and 0.5 * train_gflop < float(as_run.group(1)) <= train_gflop
    achieved = _field(out, "train_gflop_per_s")
    step = _field(out, "train_step_s")
    assert abs(achieved - train_gflop / step) < 0.02 * achieved + 0.2
    assert _field(out, "matmul_gflop_per_s") > 0
    assert re.search(r"^load_average: [0-9.]+ -> [0-9.]+", out, re.M)


def test_real_training_is_timed_beside_the_isolated_step(tmp_path):
    result = _run(
        "--config=retinanet_r50_fpn_coco",
        "--params_override={resnet: {resnet_depth: 10}, architecture: {num_classes: 3}, "
        "fpn: {fpn_feat_dims: 16}, retinanet_head: {num_filters: 16}, "
        "train: {iterations_per_loop: 3}}",
        "--image_size=64",
        "--steps=3",
        "--warmup=1",
        "--skip_eval",
        "--real_steps=4",
        "--matmul_size=128",
        f"--data_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    real = re.search(
        r"^real_train_step_s: median ([0-9.]+) .* over (\d+) steps after 2 warm-up", out, re.M
    )
    assert real and int(real.group(2)) == 4, out
    ratio = re.search(r"^real_vs_isolated: ([0-9.]+)x wall \(([0-9.]+) / ([0-9.]+) s\)", out, re.M)
    assert ratio and float(ratio.group(2)) == float(real.group(1))
    # The ratio is printed to 0.01 from unrounded steps, the steps to 0.001 s: at this
    # model's few hundredths of a second per step, that rounding alone reaches 3%.
    shown, real_s, isolated_s = (float(ratio.group(i)) for i in (1, 2, 3))
    rounding = 0.005 + real_s / isolated_s * (0.0005 / real_s + 0.0005 / isolated_s)
    assert abs(shown - real_s / isolated_s) <= rounding * 1.01, ratio.group(0)
    assert ratio.group(3) == f"{_field(out, 'train_step_s'):.3f}"
    for name in ("real_graph_build_s", "real_session_s", "real_first_step_s", "real_end_of_run_s"):
        assert _field(out, name) > 0


def test_unknown_config_lists_the_shipped_ones():
    result = _run("--config=spinenet7_retinanet")
    assert result.returncode == 1
    assert "--config: 'spinenet7_retinanet' is neither a file nor a shipped config" in result.stderr
    assert "'spinenet49S_retinanet'" in result.stderr


def test_model_that_contradicts_the_yaml_type_is_refused():
    result = _run("--config=spinenet49S_retinanet", "--model=mask_rcnn")
    assert result.returncode == 1
    assert "--model: 'mask_rcnn' but" in result.stderr
    assert "declares type 'retinanet'" in result.stderr


def test_a_bad_kernel_choice_is_refused():
    result = _run("--model=retinanet", "--cpu_kernels=fast")
    assert result.returncode == 2
    assert "--cpu_kernels: invalid choice: 'fast' (choose from 'auto', 'on', 'off')" in (
        result.stderr
    )


def test_config_or_model_is_required():
    result = _run("--steps=2")
    assert result.returncode == 1
    assert "give --config (a YAML path or name) or --model" in result.stderr


def test_model_must_match_the_config_type_except_faster_rcnn_on_mask_rcnn(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark_training", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = tmp_path / "m.yaml"
    config.write_text("type: 'mask_rcnn'\n")
    assert module.resolve_model(str(config), "faster_rcnn") == "faster_rcnn"
    assert module.resolve_model(str(config), None) == "mask_rcnn"
    try:
        module.resolve_model(str(config), "retinanet")
    except module.BenchmarkArgumentError as error:
        assert "declares type 'mask_rcnn'" in str(error)
    else:
        raise AssertionError("retinanet on a mask_rcnn config was accepted")
