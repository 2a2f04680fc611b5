"""tf.data input function: TFRecord files -> parsed, batched (image, labels) pairs.

Training: files sharded per worker, shuffled, repeated, read in parallel, examples
shuffled, parsed in parallel, batched with drop_remainder=True (static batch size).
Evaluation and prediction: one pass in file order, optionally limited to `num_examples`;
the last partial batch is kept (Estimator eval on CPU/GPU), dropped, or padded to a
full batch for devices that need static shapes (`eval_batch_mode`).
"""

import tensorflow.compat.v1 as tf

from official.detection import tf_compat
from official.detection.dataloader import mode_keys

AUTOTUNE = tf.data.experimental.AUTOTUNE

# How the last, partial evaluation batch is handled.
EVAL_BATCH_MODES = ("keep", "drop", "pad")


class NoMatchingFilesError(ValueError):
    """A file pattern matched no files."""


class InputConfigError(ValueError):
    """An input function was given arguments that do not fit together."""


def expand_file_pattern(file_pattern):
    """Sorted file names matched by a pattern, a comma-separated list of them, or a list.

    Raises:
      NoMatchingFilesError: naming the first pattern that matches nothing.
    """
    if isinstance(file_pattern, str):
        patterns = [p.strip() for p in file_pattern.split(",") if p.strip()]
    else:
        patterns = list(file_pattern)
    if not patterns:
        raise NoMatchingFilesError(f"input file pattern is empty: {file_pattern!r}")
    files = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise NoMatchingFilesError(
                f"input file pattern {pattern!r} matches no files (from {file_pattern!r})"
            )
        files.extend(matched)
    return files


def _set_option(options, names, value):
    """Sets the first of `names` that `options` has (TF 1.15 and 2.x spell them differently)."""
    for name in names:
        path = name.split(".")
        target = options
        try:
            for attr in path[:-1]:
                target = getattr(target, attr)
            if hasattr(target, path[-1]):
                setattr(target, path[-1], value)
                return
        except AttributeError:
            continue
    raise AttributeError(f"tf.data.Options has none of {names}")


def dataset_options(deterministic, num_threads=None, autotune=True):
    """tf.data options: determinism, autotuning and, when given, a private thread pool of
    `num_threads`."""
    options = tf.data.Options()
    _set_option(options, ["deterministic", "experimental_deterministic"], deterministic)
    if not autotune:
        _set_option(options, ["autotune.enabled", "experimental_optimization.autotune"], False)
    if num_threads:
        _set_option(
            options,
            ["threading.private_threadpool_size", "experimental_threading.private_threadpool_size"],
            num_threads,
        )
        _set_option(
            options,
            [
                "threading.max_intra_op_parallelism",
                "experimental_threading.max_intra_op_parallelism",
            ],
            1,
        )
    return options


def pad_batch(batch, batch_size):
    """Pads every tensor of a partial batch along axis 0 to `batch_size` rows.

    Padding rows are zeros ('' for strings) except `source_id` tensors, which get -1 so
    an evaluator can tell them from real images. The batch dimension becomes static.
    """

    def pad(tensor, key):
        rows = batch_size - tf.shape(tensor)[0]
        paddings = [[0, rows]] + [[0, 0]] * (tensor.shape.ndims - 1)
        if tensor.dtype == tf.string:
            value = ""
        elif key == "source_id":
            value = -1
        else:
            value = 0
        padded = tf.pad(tensor, paddings, constant_values=tf.cast(value, tensor.dtype))
        padded.set_shape([batch_size] + tensor.shape.as_list()[1:])
        return padded

    def walk(structure, key=None):
        if isinstance(structure, dict):
            return {k: walk(v, k) for k, v in structure.items()}
        if isinstance(structure, (list, tuple)):
            return type(structure)(walk(v, key) for v in structure)
        return pad(structure, key)

    return walk(batch)


class InputFn:
    """Callable input function for `tf.estimator` (Estimator passes params/input_context).

    Args:
      file_pattern: glob, comma-separated globs, or a list of them (TFRecord files).
      parser_fn: maps a serialized `tf.train.Example` to (image, labels).
      mode: one of `mode_keys.ALL_MODES` (or 'infer'); 'train' repeats and shuffles.
      batch_size: per-worker batch size; `params['batch_size']` overrides it when given
        (the TPUEstimator convention).
      num_examples: evaluation/prediction reads at most this many examples (-1: all).
      shard: (num_shards, shard_index) for this worker, e.g. (RANK_SIZE, RANK_ID) on
        Ascend; an Estimator `input_context` gives the same when `shard` is None.
      deterministic: no shuffling anywhere, fixed interleave order (for tests and for
        reproducible runs).
      shuffle_buffer_size: examples in the training shuffle buffer.
      cycle_length: files read concurrently.
      eval_batch_mode: 'keep' the partial last batch (dynamic batch dimension), 'drop'
        it, or 'pad' it to a full batch whose padding rows have source_id -1.
      num_parallel_calls: parser parallelism (AUTOTUNE by default).
      num_threads: size of a private tf.data thread pool (None: the global pool).
      seed: seed of the file and example shuffles.
    """

    def __init__(
        self,
        file_pattern,
        parser_fn,
        mode,
        batch_size,
        *,
        num_examples=-1,
        shard=None,
        deterministic=False,
        shuffle_buffer_size=64,
        cycle_length=32,
        eval_batch_mode="keep",
        num_parallel_calls=AUTOTUNE,
        num_threads=None,
        seed=None,
    ):
        self._mode = mode_keys.canonical_mode(mode, "InputFn")
        if eval_batch_mode not in EVAL_BATCH_MODES:
            raise InputConfigError(
                f"InputFn: eval_batch_mode must be one of {EVAL_BATCH_MODES}, "
                f"got {eval_batch_mode!r}"
            )
        if shard is not None:
            _check_shard(shard, "InputFn shard")
        self._file_pattern = file_pattern
        self._parser_fn = parser_fn
        self._batch_size = batch_size
        self._num_examples = num_examples
        self._shard = shard
        self._deterministic = deterministic
        self._shuffle_buffer_size = shuffle_buffer_size
        self._cycle_length = cycle_length
        self._eval_batch_mode = eval_batch_mode
        self._num_parallel_calls = num_parallel_calls
        self._num_threads = num_threads
        self._seed = seed

    @property
    def is_training(self):
        return self._mode == mode_keys.TRAIN

    def _resolve_shard(self, input_context):
        if self._shard is not None and input_context is not None:
            raise InputConfigError(
                f"InputFn: got both shard={self._shard!r} and an input_context with "
                f"{input_context.num_input_pipelines} pipelines; give one of them"
            )
        if input_context is not None:
            shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
            _check_shard(shard, "input_context")
            return shard
        return self._shard or (1, 0)

    def _resolve_batch_size(self, params):
        batch_size = self._batch_size
        if params and params.get("batch_size"):
            batch_size = params["batch_size"]
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise InputConfigError(
                f"InputFn: batch_size must be a positive int, got {batch_size!r}"
            )
        return batch_size

    def __call__(self, params=None, input_context=None):
        batch_size = self._resolve_batch_size(params)
        num_shards, index = self._resolve_shard(input_context)
        files = expand_file_pattern(self._file_pattern)
        shuffle = self.is_training and not self._deterministic

        if self.is_training:
            tf.logging.info("Training input: %s", shard_text(files, num_shards, index))
        if len(files) >= num_shards:
            # Whole files per worker: no worker reads records it then throws away.
            files = files[index::num_shards]
            dataset = tf.data.Dataset.from_tensor_slices(files)
            if shuffle:
                dataset = dataset.shuffle(len(files), seed=self._seed)
            if self.is_training:
                dataset = dataset.repeat()
            dataset = tf_compat.interleave_files(
                dataset, tf.data.TFRecordDataset, min(self._cycle_length, len(files))
            )
        else:
            # Fewer files than workers: every worker reads all files in a fixed order and
            # keeps every num_shards-th record, so the shards still partition the data.
            dataset = tf.data.TFRecordDataset(files).shard(num_shards, index)
            if self.is_training:
                dataset = dataset.repeat()

        if shuffle:
            dataset = dataset.shuffle(self._shuffle_buffer_size, seed=self._seed)
        if not self.is_training and self._num_examples > 0:
            dataset = dataset.take(self._num_examples)

        # The parsers are graph code: AutoGraph's conversion of them (which tf.data
        # applies to every map function) only costs time, 1-4 s per pipeline.
        parser_fn = _not_converted(self._parser_fn)
        dataset = dataset.map(parser_fn, num_parallel_calls=self._num_parallel_calls)
        drop_remainder = self.is_training or self._eval_batch_mode == "drop"
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        if not self.is_training and self._eval_batch_mode == "pad":
            dataset = dataset.map(_not_converted(lambda *batch: pad_batch(batch, batch_size)))
        dataset = dataset.prefetch(AUTOTUNE)
        return dataset.with_options(
            dataset_options(
                deterministic=self._deterministic or not self.is_training,
                num_threads=self._num_threads,
                # Evaluation is not autotuned: the tuner sleeps up to 10 s between
                # rounds and the end of an evaluation's session waits for it to wake
                # (9.2 s in 3 of 5 evaluations of 24 images at 640), while untuned
                # parallelism (all cores) feeds predict as fast.
                autotune=self.is_training,
            )
        )


def _not_converted(fn):
    return tf.autograph.experimental.do_not_convert(fn)


def shard_text(files, num_shards, index):
    """What worker `index` of `num_shards` reads of `files`, as one log line.

    The assignment depends only on the matched file list (sorted within each pattern),
    the worker count and the worker's index, so a resumed worker reads what it read
    before.
    """
    if len(files) < num_shards:
        return (
            f"worker {index} of {num_shards} reads one record in {num_shards}, from "
            f"record {index} on, of all {len(files)} files"
        )
    mine = files[index::num_shards]
    names = ", ".join(name.rsplit("/", 1)[-1] for name in mine[:3])
    more = f" and {len(mine) - 3} more" if len(mine) > 3 else ""
    return f"worker {index} of {num_shards} reads {len(mine)} of {len(files)} files ({names}{more})"


def _check_shard(shard, where):
    try:
        num_shards, index = shard
        valid = int(num_shards) >= 1 and 0 <= int(index) < int(num_shards)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise InputConfigError(
            f"{where}: expected (num_shards, index) with num_shards >= 1 and "
            f"0 <= index < num_shards, got {shard!r}"
        )
