"""Writes a COCO dataset as sharded TFRecord files, in parallel and crash-safe.

- Image i of the dataset goes to shard i % num_shards (the ancestor's assignment), so a
  dataset and a shard count always give the same files.
- Worker processes write whole shards and read the image files themselves; the parent
  only holds the annotations and hands each worker one shard's worth of them.
- Shards are written as `<final name>.tmp-<parent pid>` and renamed to their final
  names once every shard is complete. A failed or killed run thus never leaves a file
  that looks finished, and an earlier complete output is replaced only on success.
  Temporary files left by killed runs with the same prefix are removed at the start;
  after a success, finished shards of the same prefix but another shard count are
  removed too (they would match the same `<prefix>-*` file pattern).
- On an error or an interrupt the parent sets an event that makes the workers stop at
  their next image, waits for them, and removes this run's temporary files. Workers are
  not killed: a worker killed while passing a result back can leave a queue lock held
  and hang the parent. A worker that dies anyway raises WorkerDiedError.
"""

import collections
import dataclasses
import glob
import multiprocessing
import os
import signal
import time
from concurrent import futures
from concurrent.futures import process

import tensorflow.compat.v1 as tf
from absl import logging

from official.detection.dataloader import coco_conversion

_DIGITS5 = "[0-9]" * 5


def shard_path(output_prefix, index, num_shards):
    """`<prefix>-00003-of-00032.tfrecord`."""
    return f"{output_prefix}-{index:05d}-of-{num_shards:05d}.tfrecord"


def _shard_glob(output_prefix):
    return f"{glob.escape(output_prefix)}-{_DIGITS5}-of-{_DIGITS5}.tfrecord"


@dataclasses.dataclass
class ConversionSummary:
    """Counts of one conversion (or one shard of it)."""

    num_images: int = 0
    num_images_without_objects: int = 0
    num_objects: int = 0
    num_objects_clipped: int = 0
    objects_skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    images_reencoded: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    bad_images: list = dataclasses.field(default_factory=list)  # [(path, reason)]

    def add_image(self, converted):
        """Counts one coco_conversion.ConvertedImage."""
        self.num_images += 1
        self.num_images_without_objects += int(converted.num_objects == 0)
        self.num_objects += converted.num_objects
        self.num_objects_clipped += converted.num_clipped
        self.objects_skipped.update(converted.skipped)
        if converted.reencoded:
            self.images_reencoded[converted.reencoded] += 1

    def merge(self, other):
        self.num_images += other.num_images
        self.num_images_without_objects += other.num_images_without_objects
        self.num_objects += other.num_objects
        self.num_objects_clipped += other.num_objects_clipped
        self.objects_skipped.update(other.objects_skipped)
        self.images_reencoded.update(other.images_reencoded)
        self.bad_images.extend(other.bad_images)

    def format(self, output_prefix, num_shards, seconds):
        """The end-of-run report, one fact per line."""

        def by_reason(counter):
            total = sum(counter.values())
            details = ", ".join(f"{reason}: {n}" for reason, n in sorted(counter.items()))
            return f"{total} ({details})" if total else "0"

        pattern = shard_path(output_prefix, 0, num_shards).replace("-00000-of-", "-*-of-")
        lines = [
            f"Wrote {self.num_images} images and {self.num_objects} objects to {pattern} "
            f"({num_shards} shards) in {seconds:.1f} s",
            f"Images without objects: {self.num_images_without_objects}",
            f"Objects skipped: {by_reason(self.objects_skipped)}",
            f"Objects clipped to the image: {self.num_objects_clipped}",
            f"Images re-encoded as RGB JPEG: {by_reason(self.images_reencoded)}",
            f"Bad images skipped: {len(self.bad_images)}",
        ]
        lines += [f"  {path}: {reason}" for path, reason in sorted(self.bad_images)]
        return "\n".join(lines)


_ShardTask = collections.namedtuple(
    "_ShardTask",
    ["index", "temp_path", "entries", "image_dir", "category_names", "include_masks", "skip_bad"],
)


class WorkerDiedError(RuntimeError):
    """A worker process ended abruptly (e.g. killed by the out-of-memory killer)."""


class _Aborted(Exception):
    pass


# Set in each worker process by _init_worker: the parent sets it to make workers stop.
_abort_event = None


def _init_worker(abort_event):
    global _abort_event
    _abort_event = abort_event
    # Ctrl-C reaches the whole process group. Only the parent reacts (through
    # abort_event), so that no worker dies in the middle of talking to the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _write_shard(task):
    """Writes one shard to its temporary path.

    Returns:
      (shard index, ConversionSummary), or (shard index, None) if the run was aborted.
    """
    summary = ConversionSummary()
    try:
        with tf.io.TFRecordWriter(task.temp_path) as writer:
            for image, annotations, captions in task.entries:
                if _abort_event is not None and _abort_event.is_set():
                    raise _Aborted()
                try:
                    converted = coco_conversion.convert_image(
                        image,
                        task.image_dir,
                        annotations,
                        captions,
                        task.category_names,
                        task.include_masks,
                    )
                except coco_conversion.BadImageError as e:
                    if not task.skip_bad:
                        raise
                    summary.bad_images.append((e.path, e.reason))
                    continue
                writer.write(converted.serialized)
                summary.add_image(converted)
    except _Aborted:
        _remove_quietly(task.temp_path)
        return task.index, None
    except BaseException:
        _remove_quietly(task.temp_path)
        raise
    return task.index, summary


def _results_from_workers(executor, tasks, max_in_flight):
    """Yields `_write_shard` results as workers finish, keeping few tasks pickled at once."""
    tasks = iter(tasks)
    in_flight = set()
    while True:
        while len(in_flight) < max_in_flight:
            task = next(tasks, None)
            if task is None:
                break
            in_flight.add(executor.submit(_write_shard, task))
        if not in_flight:
            return
        done, in_flight = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
        for future in done:
            try:
                result = future.result()
            except process.BrokenProcessPool as e:
                raise WorkerDiedError(
                    f"a converter worker process ended abruptly ({e}); was it killed, e.g. by "
                    "the out-of-memory killer? Try fewer --num_workers"
                ) from None
            yield result


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _shard_tasks(dataset, image_dir, output_prefix, num_shards, temp_suffix, include_masks, skip):
    """One task per shard, built lazily so only the shards in flight are pickled."""
    for index in range(num_shards):
        entries = []
        for image in dataset.images[index::num_shards]:
            annotations = None
            if dataset.objects_by_image is not None:
                annotations = dataset.objects_by_image.get(image.id, [])
            captions = None
            if dataset.captions_by_image is not None:
                captions = dataset.captions_by_image.get(image.id, [])
            entries.append((image, annotations, captions))
        yield _ShardTask(
            index,
            shard_path(output_prefix, index, num_shards) + temp_suffix,
            entries,
            image_dir,
            dataset.category_names,
            include_masks,
            skip,
        )


def write_coco_shards(
    dataset,
    image_dir,
    output_prefix,
    num_shards,
    *,
    include_masks=False,
    skip_bad_images=False,
    num_workers=None,
):
    """Converts `dataset` into `num_shards` TFRecord files named by `shard_path`.

    Args:
      dataset: a coco_json.CocoDataset.
      image_dir: directory holding the images' file names.
      output_prefix: path prefix of the output files; its directory is created.
      num_shards: number of output files (>= 1).
      include_masks: write one PNG mask per object.
      skip_bad_images: skip (and list) missing or corrupt images instead of failing.
      num_workers: worker processes (None = all cores); never more than num_shards.
        With one worker everything runs in this process.

    Returns:
      A ConversionSummary.

    Raises:
      coco_conversion.BadImageError: a bad image, unless skip_bad_images. No finished
        shard of this run is left behind, and earlier finished shards stay as they were.
      WorkerDiedError: a worker process was killed (same clean-up).
      ValueError: num_shards or num_workers below 1, or image_dir is not a directory.
    """
    if num_shards < 1:
        raise ValueError(f"write_coco_shards: num_shards must be >= 1, got {num_shards}")
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"write_coco_shards: num_workers must be >= 1, got {num_workers}")
    if not os.path.isdir(image_dir):
        raise ValueError(f"write_coco_shards: image_dir {image_dir!r} is not a directory")
    num_workers = min(num_workers or os.cpu_count() or 1, num_shards)
    os.makedirs(os.path.dirname(os.path.abspath(output_prefix)), exist_ok=True)
    stale = glob.glob(_shard_glob(output_prefix) + ".tmp-*")
    for path in stale:
        _remove_quietly(path)
    if stale:
        logging.info("Removed %d temporary files of earlier unfinished runs", len(stale))

    temp_suffix = f".tmp-{os.getpid()}"
    tasks = _shard_tasks(
        dataset, image_dir, output_prefix, num_shards, temp_suffix, include_masks, skip_bad_images
    )
    logging.info(
        "Converting %d images into %d shards with %d worker process(es)",
        len(dataset.images),
        num_shards,
        num_workers,
    )
    summary = ConversionSummary()
    start = time.time()
    context = multiprocessing.get_context()
    abort_event = context.Event()
    executor = None
    if num_workers > 1:
        executor = futures.ProcessPoolExecutor(
            num_workers, mp_context=context, initializer=_init_worker, initargs=(abort_event,)
        )
    try:
        if executor:
            results = _results_from_workers(executor, tasks, 2 * num_workers)
        else:
            results = map(_write_shard, tasks)
        for done, (index, shard_summary) in enumerate(results, 1):
            summary.merge(shard_summary)
            logging.info(
                "%d/%d shards done (last: shard %d), %d/%d images, %.0f s elapsed",
                done,
                num_shards,
                index,
                summary.num_images + len(summary.bad_images),
                len(dataset.images),
                time.time() - start,
            )
    except BaseException:
        # Workers stop at their next image and delete their temporary files; nothing is
        # killed, so no worker dies holding a lock the others need.
        abort_event.set()
        if executor:
            executor.shutdown(wait=True)
        for index in range(num_shards):
            _remove_quietly(shard_path(output_prefix, index, num_shards) + temp_suffix)
        raise
    if executor:
        executor.shutdown(wait=True)

    finals = [shard_path(output_prefix, index, num_shards) for index in range(num_shards)]
    for final in finals:
        os.replace(final + temp_suffix, final)
    others = sorted(set(glob.glob(_shard_glob(output_prefix))) - set(finals))
    for path in others:
        os.remove(path)
    if others:
        logging.info("Removed %d shards of an earlier run with another shard count", len(others))
    return summary
