"""NPURunConfig of the fake adapter: a RunConfig that keeps the NPU settings."""

import json
import os

from tensorflow.compat.v1 import estimator as tf_estimator

from npu_bridge._record import record


class NPURunConfig(tf_estimator.RunConfig):
    """RunConfig with the NPU arguments of the TF 1.15 adapter (the ones used here)."""

    def __init__(
        self,
        iterations_per_loop=1,
        profiling_config=None,
        model_dir=None,
        tf_random_seed=None,
        save_summary_steps=0,
        save_checkpoints_steps=None,
        save_checkpoints_secs=None,
        session_config=None,
        keep_checkpoint_max=5,
        keep_checkpoint_every_n_hours=10000,
        log_step_count_steps=100,
        distribute=None,
        enable_data_pre_proc=True,
        precision_mode=None,
        enable_reduce_precision=False,
        variable_format_optimize=True,
        mix_compile_mode=False,
        hcom_parallel=False,
        graph_memory_max_size=None,
        variable_memory_max_size=None,
        auto_tune_mode=None,
        dump_config=None,
        stream_max_parallel_num=None,
        is_tailing_optimization=False,
        horovod_mode=False,
        graph_run_mode=1,
        op_debug_level=0,
        enable_scope_fusion_passes=None,
    ):
        record(
            "NPURunConfig",
            iterations_per_loop=iterations_per_loop,
            model_dir=model_dir,
            tf_random_seed=tf_random_seed,
            save_summary_steps=save_summary_steps,
            save_checkpoints_steps=save_checkpoints_steps,
            save_checkpoints_secs=save_checkpoints_secs,
            keep_checkpoint_max=keep_checkpoint_max,
            log_step_count_steps=log_step_count_steps,
            enable_data_pre_proc=enable_data_pre_proc,
            precision_mode=precision_mode,
            mix_compile_mode=mix_compile_mode,
            hcom_parallel=hcom_parallel,
        )
        if not isinstance(iterations_per_loop, int) or iterations_per_loop < 1:
            raise ValueError(
                f"iterations_per_loop must be a positive int, got {iterations_per_loop}"
            )
        if not isinstance(mix_compile_mode, bool):
            raise ValueError('"mix_compile_mode" type must be bool')
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster")
        if cluster:
            # As the adapter: a TF_CONFIG cluster only works in parameter-server mode.
            raise ValueError('"cluster" and "distribute" must all be set in ps mode')
        if save_checkpoints_secs is None and save_checkpoints_steps is None:
            save_checkpoints_steps = 100
        self.iterations_per_loop = iterations_per_loop
        self.enable_data_pre_proc = enable_data_pre_proc
        self.mix_compile_mode = mix_compile_mode
        self.horovod_mode = horovod_mode
        self._precision_mode = precision_mode
        self._hcom_parallel = hcom_parallel
        self._profiling_config = profiling_config
        self._dump_config = dump_config
        super().__init__(
            model_dir=model_dir,
            tf_random_seed=tf_random_seed,
            save_summary_steps=save_summary_steps,
            save_checkpoints_steps=save_checkpoints_steps,
            save_checkpoints_secs=save_checkpoints_secs,
            session_config=session_config,
            keep_checkpoint_max=keep_checkpoint_max,
            keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
            log_step_count_steps=log_step_count_steps,
        )
