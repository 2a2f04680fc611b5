"""NPUEstimator of the fake adapter: an Estimator that insists on an NPURunConfig and,
like the adapter, adds a variable broadcast hook to training when RANK_SIZE > 1."""

import os

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator

from npu_bridge._record import record
from npu_bridge.estimator.npu.npu_config import NPURunConfig


class NPUEstimatorSpec(tf_estimator.EstimatorSpec):
    """EstimatorSpec with the adapter's extra (unused here) host_call."""

    def __new__(cls, mode, host_call=None, **kwargs):
        spec = super().__new__(cls, mode, **kwargs)
        spec._host_call = host_call
        return spec


class BroadcastGlobalVariablesHook(tf.train.SessionRunHook):
    """Stands for NPUBroadcastGlobalVariablesHook: counts its session creations."""

    def __init__(self, root_rank, index):
        record("NPUBroadcastGlobalVariablesHook", root_rank=root_rank, index=index)
        self.sessions = 0

    def after_create_session(self, session, coord):
        self.sessions += 1


class NPUEstimator(tf_estimator.Estimator):
    def __init__(
        self,
        model_fn=None,
        model_dir=None,
        config=None,
        params=None,
        job_start_file="",
        warm_start_from=None,
    ):
        record(
            "NPUEstimator",
            model_dir=model_dir,
            config=config,
            params=params,
            job_start_file=job_start_file,
            warm_start_from=warm_start_from,
        )
        if config is None or not isinstance(config, NPURunConfig):
            raise ValueError("`config` must be provided with type `NPUConfigs`")
        if model_dir and config.model_dir and model_dir != config.model_dir:
            raise ValueError(
                f"model_dir {model_dir!r} differs from the config's {config.model_dir!r}"
            )

        def npu_model_fn(features, labels, mode, params):
            spec = model_fn(features=features, labels=labels, mode=mode, params=params)
            rank_size = os.environ.get("RANK_SIZE", "1")
            if mode == tf_estimator.ModeKeys.TRAIN and rank_size.isdigit() and int(rank_size) > 1:
                hooks = [BroadcastGlobalVariablesHook(0, int(os.environ.get("RANK_ID", "0")))]
                spec = spec._replace(training_hooks=tuple(hooks) + tuple(spec.training_hooks))
            return spec

        super().__init__(
            model_fn=npu_model_fn,
            model_dir=model_dir,
            config=config,
            params=params or {},
            warm_start_from=warm_start_from,
        )
