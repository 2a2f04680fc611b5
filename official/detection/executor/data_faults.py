"""One-line errors for faults in a run's TFRecords, found after the failure."""

import tensorflow.compat.v1 as tf

from official.detection.dataloader import record_check
from official.detection.executor.failures import error_headline


def _file_keys(params, mode):
    """[(config key, file pattern)] of the records a run in `mode` reads."""
    keys = [] if mode == "eval" else [("train.train_file_pattern", params.train.train_file_pattern)]
    keys.append(("eval.eval_file_pattern", params.eval.eval_file_pattern))
    return keys


def broken_record_message(params, mode, error_text):
    """The error line for a TensorFlow record-reader failure, naming the broken file.

    Returns None when `error_text` is not a record-reader error (a corrupt checkpoint,
    say). The files are checked only now, after the failure.
    """
    offset = record_check.record_error_offset(error_text)
    if offset is None:
        return None
    keys = _file_keys(params, mode)
    for key, pattern in keys:
        found = record_check.find_broken_record(pattern, offset) if pattern else None
        if found:
            path, what = found
            return (
                f"broken TFRecord file: {what} ({path}, matched by {key}); write this shard "
                "again with scripts/create_coco_tf_record.py or leave it out of the pattern, "
                "then run the same command to resume from the last checkpoint"
            )
    return (
        f"broken TFRecord: {error_text.splitlines()[0]} "
        f"({' or '.join(key for key, _ in keys)}); write the files again with "
        "scripts/create_coco_tf_record.py"
    )


def undecodable_image_message(params, mode, error_text):
    """The error line for an image that does not decode, naming its record when found."""
    keys = _file_keys(params, mode)
    advice = (
        "write the records again with scripts/create_coco_tf_record.py, which checks every "
        "image (--skip_bad_images leaves bad ones out)"
    )
    tf.logging.info("Looking for the record whose image does not decode.")
    for key, pattern in keys:
        found = record_check.find_undecodable_image(pattern, error_text) if pattern else None
        if found:
            path, index, source_id, what = found
            return (
                f"the image of source_id {source_id!r} does not decode: {what} (record "
                f"{index} of {path}, matched by {key}); {advice}"
            )
    return (
        f"an image in the TFRecords does not decode: {error_headline(error_text)} "
        f"({' or '.join(key for key, _ in keys)}); {advice}"
    )
