"""What the runner hands the model for each device."""

import pytest

from official.detection.configs import loader
from official.detection.executor import detection_executor, runner
from official.detection.executor import placement as placement_lib
from official.detection.modeling import factory as modeling_factory


@pytest.mark.parametrize("device, cpu_kernels", [("cpu", True), ("cpu", False), ("gpu", False)])
def test_the_executor_gets_the_kernels_of_the_placement(monkeypatch, tmp_path, device, cpu_kernels):
    built = {}
    real_build_model = modeling_factory.build_model
    real_executor = detection_executor.DetectionExecutor

    def build_model(params, **kwargs):
        built.update(kwargs)
        return real_build_model(params, **kwargs)

    def executor(model_fn, **kwargs):
        built["executor_cpu_kernels"] = kwargs["cpu_kernels"]
        return real_executor(model_fn, **kwargs)

    monkeypatch.setattr(modeling_factory, "build_model", build_model)
    monkeypatch.setattr(detection_executor, "DetectionExecutor", executor)
    params = loader.load_config("retinanet", forced={"model_dir": str(tmp_path)})
    placement = placement_lib.Placement(
        device=device,
        precision="fp32",
        precision_mode=None,
        local_devices=1,
        cpu_kernels=cpu_kernels,
    )
    runner.build_executor(params, placement)
    assert built["executor_cpu_kernels"] is cpu_kernels
    assert built["compiled_device"] is False
    assert "cpu_kernels" not in built


@pytest.mark.parametrize(
    "message, headline",
    [
        (
            "Graph execution error:\n\njpeg::Uncompress failed. Invalid JPEG data.\n"
            "\t [[{{node DecodeJpeg}}]]\n\t [[IteratorGetNext]]",
            "jpeg::Uncompress failed. Invalid JPEG data.",
        ),
        ("Invalid JPEG data, data size 270\n\t [[node DecodeJpeg (defined at x.py:1) ]]",
         "Invalid JPEG data, data size 270"),
        ("no nodes here\nsecond line", "no nodes here"),
        ("", ""),
    ],
)  # fmt: skip
def test_error_headline(message, headline):
    assert runner.error_headline(message) == headline


def test_model_dir_check_ignores_keys_that_do_not_change_variables(tmp_path):
    def params(override=None):
        return loader.load_config(
            "mask_rcnn", params_override=override, forced={"model_dir": str(tmp_path)}
        )

    loader.write_config(params(), str(tmp_path))
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
    (tmp_path / "model.ckpt-5.index").write_bytes(b"")
    runner.check_model_dir(params("mrcnn_head.only_foreground_rois=false"))
    runner.check_model_dir(params("train.total_steps=7,postprocess.max_total_size=9"))
    with pytest.raises(runner.RunError, match=r"mrcnn_head.num_convs is 4 there and 2 in this"):
        runner.check_model_dir(params("mrcnn_head.num_convs=2"))
