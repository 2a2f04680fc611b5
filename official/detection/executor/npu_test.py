"""npu.py against the fake npu_bridge: the documented objects with the documented arguments,
per-rank checkpoint directories, rank-sharded input and the missing-adapter error."""

import os
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.configs import loader
from official.detection.executor import devices, npu, runner
from official.detection.executor.placement import DeviceError, Placement
from official.detection.testing import shapes_records

FAKE_BRIDGE_ROOT = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "testing", "fake_npu_bridge"
)


@pytest.fixture
def bridge(monkeypatch):
    """The fake adapter, importable for this test only."""
    monkeypatch.syspath_prepend(FAKE_BRIDGE_ROOT)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    import npu_bridge

    del npu_bridge.CALLS[:]
    yield npu_bridge
    for name in [n for n in sys.modules if n == "npu_bridge" or n.startswith("npu_bridge.")]:
        del sys.modules[name]


def _params(tmp_path, override=""):
    return loader.load_config(
        "retinanet", params_override=override, forced={"model_dir": str(tmp_path / "model")}
    )


def _npu(rank_id=0, rank_size=1, precision_mode="allow_mix_precision"):
    precision = "mixed" if precision_mode in ("allow_mix_precision", "force_fp16") else "fp32"
    return Placement(
        device="npu",
        precision=precision,
        precision_mode=precision_mode,
        local_devices=1,
        num_workers=rank_size,
        worker_index=rank_id,
    )


def _calls(bridge, name):
    return [call["kwargs"] for call in bridge.CALLS if call["name"] == name]


def test_run_config_and_estimator_have_the_documented_arguments(bridge, tmp_path):
    params = _params(tmp_path, "train.iterations_per_loop=10,train.total_steps=100,train.seed=3")
    run_config = devices.build_run_config(params, _npu())
    assert _calls(bridge, "NPURunConfig") == [
        dict(
            iterations_per_loop=10,
            model_dir=str(tmp_path / "model"),
            tf_random_seed=3,
            save_summary_steps=10,
            save_checkpoints_steps=10,
            save_checkpoints_secs=None,
            keep_checkpoint_max=5,
            log_step_count_steps=10,
            enable_data_pre_proc=True,
            precision_mode="allow_mix_precision",
            mix_compile_mode=False,
            hcom_parallel=True,
        )
    ]
    estimator = devices.build_estimator_fn(_npu())(lambda features, labels, mode: None, run_config)
    from npu_bridge.estimator.npu.npu_config import NPURunConfig
    from npu_bridge.estimator.npu.npu_estimator import NPUEstimator

    assert isinstance(estimator, NPUEstimator) and isinstance(estimator, tf_estimator.Estimator)
    assert isinstance(estimator.config, NPURunConfig)
    assert estimator.model_dir == str(tmp_path / "model")


def test_ranks_other_than_0_keep_checkpoints_apart_and_write_no_summaries(bridge, tmp_path):
    params = _params(tmp_path, "train.iterations_per_loop=5,train.total_steps=20")
    devices.build_run_config(params, _npu(rank_id=3, rank_size=8, precision_mode="force_fp16"))
    (call,) = _calls(bridge, "NPURunConfig")
    assert call["model_dir"] == str(tmp_path / "model" / "rank_3")
    assert (call["save_summary_steps"], call["precision_mode"]) == (0, "force_fp16")


def test_loop_steps_must_tile_the_run(bridge, tmp_path):
    params = _params(tmp_path, "train.iterations_per_loop=100,train.total_steps=250")
    with pytest.raises(
        DeviceError,
        match="train.total_steps=250 is not a multiple of train.iterations_per_loop=100",
    ):
        devices.build_run_config(params, _npu())


def _wrap(bridge, params, placement):
    with tf.Graph().as_default():
        inner = tf.train.MomentumOptimizer(0.1, 0.9)
        return inner, devices.build_optimizer_wrapper(params, placement)(inner)


def test_eight_ranks_all_reduce_then_scale_the_loss_dynamically(bridge, tmp_path):
    inner, optimizer = _wrap(bridge, _params(tmp_path), _npu(rank_id=1, rank_size=8))
    assert _calls(bridge, "ExponentialUpdateLossScaleManager") == [
        dict(
            init_loss_scale=2.0**32,
            incr_every_n_steps=1000,
            decr_every_n_nan_or_inf=2,
            incr_ratio=2,
            decr_ratio=0.5,
        )
    ]
    assert _calls(bridge, "NPUDistributedOptimizer") == [
        dict(optimizer="MomentumOptimizer", name=None)
    ]
    assert _calls(bridge, "NPULossScaleOptimizer") == [
        dict(
            opt="NPUDistributedOptimizer",
            loss_scale_manager="ExponentialUpdateLossScaleManager",
            is_distributed=True,
        )
    ]
    assert optimizer._opt._optimizer is inner


def test_one_rank_fixed_scale_and_no_scaling(bridge, tmp_path):
    fixed = _params(tmp_path, "train.loss_scale.type=fixed,train.loss_scale.init_loss_scale=1024")
    inner, optimizer = _wrap(bridge, fixed, _npu())
    assert _calls(bridge, "NPUDistributedOptimizer") == []
    assert _calls(bridge, "FixedLossScaleManager") == [dict(loss_scale=1024.0)]
    assert _calls(bridge, "NPULossScaleOptimizer")[0]["is_distributed"] is False
    assert optimizer._opt is inner
    inner, optimizer = _wrap(bridge, _params(tmp_path, "train.loss_scale.type=none"), _npu())
    assert optimizer is inner
    fp32 = _npu(rank_size=2, precision_mode="must_keep_origin_dtype")
    inner, optimizer = _wrap(bridge, _params(tmp_path), fp32)
    assert type(optimizer).__name__ == "NPUDistributedOptimizer"
    with pytest.raises(DeviceError, match="'fixed' but train.loss_scale.init_loss_scale is null"):
        devices.build_optimizer_wrapper(_params(tmp_path, "train.loss_scale.type=fixed"), _npu())


def test_missing_adapter_is_a_clear_error(tmp_path):
    with pytest.raises(DeviceError, match="'npu_bridge' is not importable.*import failed"):
        npu.import_npu_bridge()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return shapes_records.write_shapes_records(
        str(tmp_path_factory.mktemp("shapes")), num_train=8, num_val=2, image_size=64
    )


def _first_batches(input_fn, count):
    with tf.Graph().as_default():
        images, _ = tf.data.make_one_shot_iterator(input_fn(params={})).get_next()
        with tf.Session() as session:
            return [session.run(images) for _ in range(count)]


def test_each_rank_reads_its_shard_in_batches_of_one_device(records, tmp_path):
    """Two ranks, global batch 4: rank k reads 2 images per step, those of file k."""
    files = sorted(tf.io.gfile.glob(records["train_file_pattern"]))
    assert len(files) == 2

    def params(pattern, batch):
        return _params(
            tmp_path,
            f"train.train_file_pattern={pattern},train.train_batch_size={batch},"
            "train.deterministic_input=true,retinanet_parser.output_size=[64,64],"
            "retinanet_parser.aug_rand_hflip=false,retinanet_parser.aug_scale_min=1.0,"
            "retinanet_parser.aug_scale_max=1.0",
        )

    firsts = []
    for rank_id, path in enumerate(files):
        ranked = runner.build_device_train_input_fn(
            params(records["train_file_pattern"], 4), _npu(rank_id, rank_size=2)
        )
        alone = runner.build_device_train_input_fn(params(path, 2), _npu())
        got, expected = _first_batches(ranked, 2), _first_batches(alone, 2)
        # 64 px images padded to a multiple of 2**max_level = 128.
        assert [b.shape for b in got] == [(2, 128, 128, 3)] * 2
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
        firsts.append(got[0])
    assert not np.array_equal(firsts[0], firsts[1])
