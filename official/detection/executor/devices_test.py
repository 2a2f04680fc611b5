"""devices.py: session options, run configs, strategies and loss scaling per device."""

import types

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from official.detection import tf_compat
from official.detection.configs import loader
from official.detection.executor import devices, distribution, npu
from official.detection.executor import placement as placement_lib
from official.detection.executor.placement import DeviceError, Placement


def _params(tmp_path, override=None):
    return loader.load_config(
        "retinanet", params_override=override, forced={"model_dir": str(tmp_path / "model")}
    )


def _placement(device, local=1, precision="fp32", **kwargs):
    return Placement(
        device=device, precision=precision, precision_mode=None, local_devices=local, **kwargs
    )


def test_session_config_per_device():
    cpus = devices.build_session_config(_placement("cpu", local=3))
    assert cpus.device_count["CPU"] == 3 and cpus.allow_soft_placement
    one_cpu = devices.build_session_config(_placement("cpu"))
    assert "CPU" not in one_cpu.device_count
    mixed = devices.build_session_config(_placement("gpu", local=2, precision="mixed"))
    rewrite = mixed.graph_options.rewrite_options
    assert rewrite.auto_mixed_precision == rewriter_config_pb2.RewriterConfig.ON
    assert mixed.gpu_options.allow_growth
    fp32 = devices.build_session_config(_placement("gpu", local=2))
    assert fp32.graph_options.rewrite_options.auto_mixed_precision != (
        rewriter_config_pb2.RewriterConfig.ON
    )


def test_run_config_strategies(tmp_path):
    params = _params(tmp_path, "train.iterations_per_loop=7,train.keep_checkpoint_max=3")
    single = devices.build_run_config(params, _placement("cpu"))
    assert single.train_distribute is None
    assert (single.save_checkpoints_steps, single.log_step_count_steps) == (7, 7)
    assert (single.keep_checkpoint_max, single.model_dir) == (3, str(tmp_path / "model"))

    cpus = devices.build_run_config(params, _placement("cpu", local=2))
    assert isinstance(cpus.train_distribute, tf.distribute.MirroredStrategy)
    assert [d[-5:] for d in cpus.train_distribute.extended.worker_devices] == ["CPU:0", "CPU:1"]
    assert cpus.session_config.device_count["CPU"] == 2

    gpus = devices.build_run_config(params, _placement("gpu", local=4, precision="mixed"))
    worker_devices = gpus.train_distribute.extended.worker_devices
    assert [d[-5:] for d in worker_devices] == ["GPU:0", "GPU:1", "GPU:2", "GPU:3"]
    assert gpus.train_distribute.num_replicas_in_sync == 4


def test_estimator_class_per_device():
    assert devices.build_estimator_fn(_placement("cpu")) is devices._build_estimator


def test_optimizer_wrappers(tmp_path):
    params = _params(tmp_path)
    assert devices.build_optimizer_wrapper(params, _placement("cpu")) is None
    assert devices.build_optimizer_wrapper(params, _placement("gpu", local=2)) is None
    mixed = _placement("gpu", precision="mixed")
    with tf.Graph().as_default():
        wrapped = devices.build_optimizer_wrapper(params, mixed)(
            tf.train.GradientDescentOptimizer(1.0)
        )
        assert isinstance(wrapped, tf.train.experimental.MixedPrecisionLossScaleOptimizer)
        scale = wrapped._loss_scale
        assert isinstance(scale, tf.train.experimental.DynamicLossScale)
        assert (scale.initial_loss_scale, scale.increment_period, scale.multiplier) == (
            2.0**15,
            1000,
            2.0,
        )
    none = _params(tmp_path, "train.loss_scale.type=none")
    assert devices.build_optimizer_wrapper(none, mixed) is None
    fixed = _params(tmp_path, "train.loss_scale.type=fixed")
    with pytest.raises(DeviceError, match="'fixed' but train.loss_scale.init_loss_scale is null"):
        devices.build_optimizer_wrapper(fixed, mixed)
    assert devices.gpu_loss_scale_spec(
        _params(
            tmp_path, "train.loss_scale.type=fixed,train.loss_scale.init_loss_scale=128"
        ).train.loss_scale
    ) == ("fixed", 128.0)


def test_gpu_loss_scaling_skips_overflowing_steps_and_shrinks_the_scale(tmp_path):
    """The mixed-precision wrapper on the CPU: finite steps apply, an inf gradient does not."""
    params = _params(tmp_path, "train.loss_scale.init_loss_scale=8,train.loss_scale.decr_ratio=0.5")
    wrap = devices.build_optimizer_wrapper(params, _placement("gpu", precision="mixed"))
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [])
        w = tf.get_variable("w", initializer=1.0)
        optimizer = wrap(tf.train.GradientDescentOptimizer(0.5))
        grads = optimizer.compute_gradients(w * x, [w])
        train_op = optimizer.apply_gradients(grads)
        scale = optimizer._loss_scale()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(train_op, {x: 2.0})
            assert session.run([w, scale]) == pytest.approx([1.0 - 0.5 * 2.0, 8.0])
            session.run(train_op, {x: np.inf})
            assert session.run([w, scale]) == pytest.approx([0.0, 4.0])


def test_place_on_this_machine():
    placement = devices.place("auto", environ={})
    assert (placement.device, placement.num_replicas, placement.precision) == ("cpu", 1, "fp32")
    with pytest.raises(DeviceError, match="--device=gpu but TensorFlow sees no GPU"):
        devices.place("gpu", environ={})
    with pytest.raises(DeviceError, match="npu_bridge"):
        devices.place("npu", environ={})
    # 'auto' becomes the CPU here, which has no mixed precision and no precision modes.
    with pytest.raises(DeviceError, match="--precision=mixed needs a GPU or an Ascend NPU"):
        devices.place("auto", precision="mixed", environ={})
    with pytest.raises(DeviceError, match="is an Ascend NPU setting, not for --device=cpu"):
        devices.place("auto", precision_mode="allow_mix_precision", environ={})
    kernels = (
        "Winograd convolutions (3x3), GEMM filter gradients, GEMM input gradients "
        "(TensorFlow's CPU kernels are Eigen's, not oneDNN's), written-out batch norms"
        if not tf_compat.onednn_enabled()
        else "Winograd convolutions (3x3), GEMM filter gradients, written-out batch norms"
    )
    assert devices.describe(devices.place("cpu", num_devices=2, environ={})) == (
        "device cpu x2, precision fp32, 2 replica(s) in all; CPU kernels in training graphs: "
        f"{kernels}; Grappler graph optimisation off"
    )
    cpu = devices.place("cpu", environ={}, cpu_kernels="off")
    assert devices.describe(cpu) == (
        "device cpu x1, precision fp32, 1 replica(s) in all; TensorFlow's kernels; "
        "Grappler graph optimisation off"
    )
    assert devices.build_session_config(cpu).graph_options.rewrite_options.disable_meta_optimizer
    on = devices.place("cpu", environ={}, cpu_kernels="off", grappler="on")
    assert devices.describe(on) == (
        "device cpu x1, precision fp32, 1 replica(s) in all; TensorFlow's kernels"
    )
    assert not devices.build_session_config(on).graph_options.rewrite_options.disable_meta_optimizer


def test_unknown_loss_scale_types_and_placements_are_errors():
    bogus = types.SimpleNamespace(type="bogus")
    with pytest.raises(DeviceError, match="train.loss_scale.type='bogus'; valid: dynamic, fixed"):
        devices.gpu_loss_scale_spec(bogus)
    with pytest.raises(DeviceError, match="train.loss_scale.type='bogus'; valid: dynamic, fixed"):
        npu.loss_scale_manager_spec(bogus)
    npu_placement = Placement(
        device="npu", precision="mixed", precision_mode="force_fp16", local_devices=1
    )
    with pytest.raises(ValueError, match="build_strategy: only cpu and gpu placements, got 'npu'"):
        distribution.build_strategy(npu_placement)
    with pytest.raises(DeviceError, match="plan_placement needs a resolved device, got 'auto'"):
        placement_lib.plan_placement("auto")
