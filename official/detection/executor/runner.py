"""From a resolved config to a finished run: builds inputs, model, evaluator and
executor, then trains and/or evaluates as the mode asks.

This is an edge module: it reads the config and hands explicit values to the
components.
"""

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1 import estimator as tf_estimator

from official.detection.configs import loader
from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import input_reader, mode_keys
from official.detection.evaluation import factory as evaluation_factory
from official.detection.executor import detection_executor, hooks
from official.detection.modeling import factory as modeling_factory
from official.detection.modeling import warm_start


class RunError(RuntimeError):
    """A run that cannot go on; the message says why and what to change."""


def build_run_config(params, session_config=None):
    """RunConfig for CPU/GPU: checkpoints and step logs every train.iterations_per_loop steps."""
    steps = max(int(params.train.iterations_per_loop), 1)
    return tf_estimator.RunConfig(
        model_dir=params.model_dir,
        save_checkpoints_steps=steps,
        save_summary_steps=steps,
        log_step_count_steps=steps,
        keep_checkpoint_max=params.train.keep_checkpoint_max,
        session_config=session_config,
        tf_random_seed=params.train.seed if params.train.seed is not None else None,
    )


def build_train_input_fn(params, **kwargs):
    return dataloader_factory.input_fn_generator(params, mode_keys.TRAIN, **kwargs)


class _PredictInputFn:
    """Packs (images, labels) as Estimator predict features {'images', 'labels'}.

    Estimator.predict keeps only the features of an input_fn, so evaluation
    labels (image_info, source_id, ground truth) travel inside them.
    """

    def __init__(self, input_fn):
        self._input_fn = input_fn

    def __call__(self, params=None, input_context=None):
        dataset = self._input_fn(params=params, input_context=input_context)
        return dataset.map(lambda images, labels: {"images": images, "labels": labels})


def build_eval_input_fn(params, **kwargs):
    return _PredictInputFn(
        dataloader_factory.input_fn_generator(params, mode_keys.PREDICT_WITH_GT, **kwargs)
    )


def build_executor(params):
    batch_size = params.train.train_batch_size

    def training_hooks_fn(scalars):
        return [
            hooks.TrainProgressHook(
                scalars,
                global_batch_size=batch_size,
                total_steps=params.train.total_steps,
                every_n_steps=max(min(params.train.iterations_per_loop, 50), 1),
            )
        ]

    model = modeling_factory.build_model(params, training_hooks_fn=training_hooks_fn)
    eval_batches = None
    if params.eval.eval_samples and params.eval.eval_samples > 0:
        eval_batches = -(-params.eval.eval_samples // params.eval.eval_batch_size)
    return detection_executor.DetectionExecutor(
        model.model_fn,
        run_config=build_run_config(params),
        evaluator_fn=evaluation_factory.evaluator_generator(params),
        eval_batches=eval_batches,
    )


def run(params, *, model, mode, eval_after_training=False):
    """Runs `mode` ('train', 'eval' or 'train_and_eval'); returns the last metrics or None."""
    del model  # The config already holds everything the model choice implies.
    tf.logging.set_verbosity(tf.logging.INFO)
    executor = build_executor(params)
    total_steps = params.train.total_steps
    try:
        if mode == "train":
            loader.write_config(params, params.model_dir)
            executor.train(build_train_input_fn(params), total_steps)
            if eval_after_training:
                return executor.evaluate(build_eval_input_fn(params))[1]
            return None
        if mode == "eval":
            result = executor.evaluate_checkpoints(
                build_eval_input_fn(params),
                final_step=total_steps,
                min_interval_secs=params.eval.min_eval_interval,
                timeout=params.eval.eval_timeout,
            )
            return result[1] if result else None
        if mode == "train_and_eval":
            loader.write_config(params, params.model_dir)
            train_input_fn = build_train_input_fn(params)
            eval_input_fn = build_eval_input_fn(params)
            interval = params.eval.num_steps_per_eval or total_steps
            metrics = None
            next_stop = interval
            while True:
                stop = min(next_stop, total_steps)
                executor.train(train_input_fn, stop)
                metrics = executor.evaluate(eval_input_fn)[1]
                if stop >= total_steps:
                    return metrics
                next_stop += interval
        raise RunError(f"unknown mode {mode!r}; valid: train, eval, train_and_eval")
    except (
        detection_executor.TrainingStoppedError,
        warm_start.WarmStartError,
        FileNotFoundError,
        input_reader.NoMatchingFilesError,
    ) as exc:
        raise RunError(str(exc)) from exc
