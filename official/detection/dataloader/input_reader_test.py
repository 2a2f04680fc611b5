"""Tests for the tf.data input function: sharding, order, batching, errors."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.dataloader import input_reader, mode_keys
from official.detection.dataloader import tf_example_builder as builder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
NUM_FILES = 3
PER_FILE = 5
# Record ids in the deterministic read order: one record from each file in turn.
ROUND_ROBIN = [f * PER_FILE + i for i in range(PER_FILE) for f in range(NUM_FILES)]


def _id_example(record_id):
    return tf.train.Example(
        features=tf.train.Features(
            feature={"id": tf.train.Feature(int64_list=tf.train.Int64List(value=[record_id]))}
        )
    )


@pytest.fixture(name="record_dir")
def fixture_record_dir(tmp_path):
    """Three files holding ids 0-4, 5-9 and 10-14."""
    for f in range(NUM_FILES):
        ids = range(f * PER_FILE, (f + 1) * PER_FILE)
        path = os.path.join(str(tmp_path), f"train-{f:05d}-of-{NUM_FILES:05d}.tfrecord")
        builder.write_tfrecord(path, [_id_example(i) for i in ids])
    return str(tmp_path)


def _parse(serialized):
    features = tf.io.parse_single_example(serialized, {"id": tf.io.FixedLenFeature((), tf.int64)})
    image = tf.fill([2, 2, 3], tf.cast(features["id"], tf.float32))
    labels = {
        "source_id": features["id"],
        "name": tf.strings.as_string(features["id"]),
        "groundtruths": {"source_id": features["id"], "classes": tf.fill([2], features["id"])},
        "levels": {3: image},
    }
    return image, labels


def _read_batches(input_fn, max_batches=100, **call_kwargs):
    with tf.Graph().as_default():
        dataset = input_fn(**call_kwargs)
        next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
        batches = []
        with tf.Session() as sess:
            for _ in range(max_batches):
                try:
                    batches.append(sess.run(next_batch))
                except tf.errors.OutOfRangeError:
                    break
        return batches, dataset


def _ids(batches):
    return [int(i) for _, labels in batches for i in labels["source_id"]]


def _pattern(record_dir):
    return os.path.join(record_dir, "train-*")


def test_eval_reads_everything_once_in_fixed_order(record_dir):
    fn = input_reader.InputFn(_pattern(record_dir), _parse, mode_keys.EVAL, 4)
    batches, _ = _read_batches(fn)
    assert _ids(batches) == ROUND_ROBIN
    # 'keep': the last batch holds the 3 remaining examples.
    assert [len(b[1]["source_id"]) for b in batches] == [4, 4, 4, 3]


def test_eval_num_examples_and_drop(record_dir):
    fn = input_reader.InputFn(
        _pattern(record_dir), _parse, "eval", 4, num_examples=10, eval_batch_mode="drop"
    )
    batches, dataset = _read_batches(fn)
    assert _ids(batches) == ROUND_ROBIN[:8]
    assert dataset.element_spec[0].shape.as_list() == [4, 2, 2, 3]


def test_eval_pad_last_batch(record_dir):
    fn = input_reader.InputFn(
        _pattern(record_dir), _parse, "eval", 4, num_examples=6, eval_batch_mode="pad"
    )
    batches, dataset = _read_batches(fn)
    assert dataset.element_spec[0].shape.as_list() == [4, 2, 2, 3]
    assert dataset.element_spec[1]["source_id"].shape.as_list() == [4]
    assert len(batches) == 2
    np.testing.assert_array_equal(batches[1][1]["source_id"], ROUND_ROBIN[4:6] + [-1, -1])
    names = [str(i).encode() for i in ROUND_ROBIN[4:6]]
    assert list(batches[1][1]["name"]) == names + [b"", b""]
    # Nested dicts (int keys too) are padded the same way; any `source_id` gets -1.
    groundtruths = batches[1][1]["groundtruths"]
    np.testing.assert_array_equal(groundtruths["source_id"], ROUND_ROBIN[4:6] + [-1, -1])
    np.testing.assert_array_equal(groundtruths["classes"][2:], 0)
    assert dataset.element_spec[1]["levels"][3].shape.as_list() == [4, 2, 2, 3]
    assert (batches[1][0][2:] == 0).all()


def _autotuned(dataset):
    # TensorFlow 2 warns that in graph mode options() returns the options set in Python,
    # which is what this checks.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "To make it possible to preserve tf.data options")
        options = dataset.options()
    if hasattr(options, "autotune"):  # TensorFlow 2
        return options.autotune.enabled is not False
    return options.experimental_optimization.autotune is not False


def test_evaluation_input_is_not_autotuned_training_input_is(record_dir):
    """The tuner would hold the end of every evaluation's session for up to 10 s."""
    with tf.Graph().as_default():
        train = input_reader.InputFn(_pattern(record_dir), _parse, "train", 4)()
        evaluation = input_reader.InputFn(_pattern(record_dir), _parse, "eval", 4)()
        assert _autotuned(train) and not _autotuned(evaluation)
    batches, _ = _read_batches(input_reader.InputFn(_pattern(record_dir), _parse, "eval", 4))
    assert _ids(batches) == ROUND_ROBIN


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_parsers_run_as_written_not_converted_by_autograph(record_dir, mode):
    """tf.data would convert a map function with AutoGraph (1-4 s per pipeline for the
    detection parsers, which are graph code); the reader asks it not to. A parser with
    Python control flow on a tensor therefore fails as graph code does."""

    def branching_parse(serialized):
        image, labels = _parse(serialized)
        if labels["source_id"] > 2:  # would become a tf.cond under AutoGraph
            image = image * 2.0
        return image, labels

    with tf.Graph().as_default(), pytest.raises(TypeError, match="bool"):
        input_reader.InputFn(_pattern(record_dir), branching_parse, mode, 4)()
    with tf.Graph().as_default():
        input_reader.InputFn(_pattern(record_dir), _parse, mode, 4)()


def test_train_repeats_drops_remainder_and_has_static_batch(record_dir):
    fn = input_reader.InputFn(_pattern(record_dir), _parse, "train", 4, deterministic=True)
    batches, dataset = _read_batches(fn, max_batches=8)
    assert dataset.element_spec[0].shape.as_list() == [4, 2, 2, 3]
    ids = _ids(batches)
    assert len(ids) == 32  # Repeats past the 15 records.
    # Deterministic: files interleaved one record at a time, in sorted order.
    assert ids[:15] == ROUND_ROBIN
    again, _ = _read_batches(fn, max_batches=8)
    assert _ids(again) == ids


def test_train_shuffles_when_not_deterministic(record_dir):
    fn = input_reader.InputFn(_pattern(record_dir), _parse, "train", 5, seed=1)
    batches, _ = _read_batches(fn, max_batches=3)
    ids = _ids(batches)
    assert ids != ROUND_ROBIN
    assert set(ids) <= set(range(15)) and len(ids) == 15


@pytest.mark.parametrize("num_shards", [2, 5])  # Fewer and more shards than files.
def test_shards_partition_the_records(record_dir, num_shards):
    seen = []
    for index in range(num_shards):
        fn = input_reader.InputFn(
            _pattern(record_dir), _parse, "eval", 1, shard=(num_shards, index)
        )
        seen.append(_ids(_read_batches(fn)[0]))
    assert all(seen)
    flat = [i for ids in seen for i in ids]
    assert sorted(flat) == list(range(15))  # Disjoint and complete.


def test_input_context_shards_like_shard(record_dir):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    fn = input_reader.InputFn(_pattern(record_dir), _parse, "eval", 1)
    from_context = _ids(_read_batches(fn, input_context=context)[0])
    explicit = input_reader.InputFn(_pattern(record_dir), _parse, "eval", 1, shard=(2, 1))
    assert from_context == _ids(_read_batches(explicit)[0]) == list(range(5, 10))


def test_params_batch_size_overrides(record_dir):
    fn = input_reader.InputFn(_pattern(record_dir), _parse, "eval", 4)
    batches, _ = _read_batches(fn, params={"batch_size": 5})
    assert [len(b[1]["source_id"]) for b in batches] == [5, 5, 5]


def test_file_pattern_forms(record_dir):
    files = sorted(os.path.join(record_dir, f) for f in os.listdir(record_dir))
    assert input_reader.expand_file_pattern(_pattern(record_dir)) == files
    assert input_reader.expand_file_pattern(",".join(files[::-1])) == files[::-1]
    assert input_reader.expand_file_pattern(files[:2]) == files[:2]


def test_bad_pattern_names_the_pattern(record_dir):
    missing = os.path.join(record_dir, "val-*")
    with pytest.raises(input_reader.NoMatchingFilesError, match="'.*val-\\*' matches no files"):
        input_reader.expand_file_pattern(_pattern(record_dir) + "," + missing)
    with pytest.raises(ValueError, match="input file pattern is empty"):
        input_reader.expand_file_pattern(" , ")
    fn = input_reader.InputFn(missing, _parse, "train", 2)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="matches no files"):
            fn()


def test_argument_errors(record_dir):
    pattern = _pattern(record_dir)
    with pytest.raises(ValueError, match="eval_batch_mode must be one of"):
        input_reader.InputFn(pattern, _parse, "eval", 2, eval_batch_mode="fill")
    with pytest.raises(ValueError, match=r"expected \(num_shards, index\).*got \(2, 2\)"):
        input_reader.InputFn(pattern, _parse, "train", 2, shard=(2, 2))
    with pytest.raises(ValueError, match="unknown mode 'training'"):
        input_reader.InputFn(pattern, _parse, "training", 2)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0)
    fn = input_reader.InputFn(pattern, _parse, "train", 2, shard=(2, 0))
    with pytest.raises(ValueError, match="got both shard=.* and an input_context"):
        fn(input_context=context)
    fn = input_reader.InputFn(pattern, _parse, "train", 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        fn()


def test_shard_text_says_which_files_a_worker_reads():
    files = [f"/data/train-0000{i}-of-00008.tfrecord" for i in range(8)]
    assert input_reader.shard_text(files, 2, 1) == (
        "worker 1 of 2 reads 4 of 8 files (train-00001-of-00008.tfrecord, "
        "train-00003-of-00008.tfrecord, train-00005-of-00008.tfrecord and 1 more)"
    )
    assert input_reader.shard_text(files[:1], 1, 0) == (
        "worker 0 of 1 reads 1 of 1 files (train-00000-of-00008.tfrecord)"
    )
    assert input_reader.shard_text(files[:3], 4, 3) == (
        "worker 3 of 4 reads one record in 4, from record 3 on, of all 3 files"
    )


_STOP_EARLY = """
import sys
import tensorflow.compat.v1 as tf
from official.detection.dataloader import input_reader
from official.detection.dataloader.input_reader_test import _parse, _read_batches
pattern = sys.argv[1]
for _ in range(6):
    _read_batches(input_reader.InputFn(pattern, _parse, "eval", 4))
    _read_batches(input_reader.InputFn(pattern, _parse, "eval", 4, num_examples=10))
    _read_batches(input_reader.InputFn(pattern, _parse, "train", 2, seed=1), max_batches=3)
print("done")
"""


def test_iterators_stopped_early_leave_the_process_alive(record_dir):
    """Training stops at a step count and evaluation at num_examples, so readers are
    destroyed while they still read files; later runs in the process must not crash
    (TensorFlow 1.15's parallel `interleave` did, with a segmentation fault)."""
    result = subprocess.run(
        [sys.executable, "-c", _STOP_EARLY, _pattern(record_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "done"
