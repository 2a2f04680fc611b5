"""COCO evaluation of an exported SavedModel, as `main.py --mode=eval` evaluates a checkpoint.

    python official/detection/main.py --mode=eval --saved_model_dir=EXPORT \
        --model=retinanet --config_file=CONFIG.yaml --model_dir=RUN

reads `eval.eval_file_pattern` with the evaluation parser of the config (for the source
ids, the ground truth and each image's resize parameters), runs the SavedModel's
`serving_default` signature on each batch, and writes `RUN/eval/metrics_<step>.json` and
`RUN/eval/detections_<step>.json`, `<step>` being the exported checkpoint's global step.

What the signature is fed depends on its input (see `saved_model.INPUT_TYPES`): the
serialized records (tf_example), their `image/encoded` bytes (image_bytes), the decoded
images one size at a time (image_tensor), or the evaluation parser's normalised images
(raw_image_tensor; the export's input size must then equal the parser's output_size,
and boxes are mapped back to the original pixels with the parser's scale).
"""

import time

import numpy as np
import tensorflow.compat.v1 as tf

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import input_reader, mode_keys, tf_example_decoder
from official.detection.executor import detection_executor
from official.detection.export import saved_model
from official.detection.modeling import base_model

# Outputs the evaluator reads, beside the ground truth of the records.
_DETECTION_OUTPUTS = saved_model.DETECTION_KEYS + ("detection_masks",)


class SavedModelEvalError(ValueError):
    """A SavedModel that cannot be evaluated with this config; the message says why."""


def _load(sess, export_dir):
    if not tf.saved_model.loader.maybe_saved_model_directory(export_dir):
        raise SavedModelEvalError(
            f"{export_dir} holds no SavedModel (--saved_model_dir); give the directory "
            "written by scripts/export_saved_model.py"
        )
    meta_graph = tf.saved_model.loader.load(
        sess, [tf.saved_model.tag_constants.SERVING], export_dir
    )
    if saved_model.SIGNATURE_KEY not in meta_graph.signature_def:
        raise SavedModelEvalError(
            f"{export_dir} has no {saved_model.SIGNATURE_KEY!r} signature (--saved_model_dir); "
            f"it has {sorted(meta_graph.signature_def)}"
        )
    return meta_graph.signature_def[saved_model.SIGNATURE_KEY]


def _signature_input(signature, input_type):
    """(tensor name, static batch or None, static [h, w] or None) of the one input."""
    (info,) = signature.inputs.values()
    dims = [d.size for d in info.tensor_shape.dim]
    batch = dims[0] if dims and dims[0] > 0 else None
    size = dims[1:3] if input_type == "raw_image_tensor" else None
    return info.name, batch, size


def _with_sources(parser):
    """parser_fn -> ({'serialized', 'encoded', 'image'}, labels) per record."""

    def parse(serialized):
        image, labels = parser(serialized)
        encoded = tf.io.parse_single_example(
            serialized, {"image/encoded": tf.io.FixedLenFeature((), tf.string)}
        )["image/encoded"]
        return {"serialized": serialized, "encoded": encoded, "image": image}, labels

    return parse


def _pad_rows(values, batch):
    """values [n, ...] -> [batch, ...] repeating the last row (n <= batch)."""
    values = np.asarray(values)
    if batch is None or len(values) == batch:
        return values
    return np.concatenate([values, np.repeat(values[-1:], batch - len(values), axis=0)])


class _Runner:
    """Runs the signature on one eval batch's inputs; returns its outputs for the batch."""

    def __init__(self, sess, signature, input_type, export_info):
        self._sess = sess
        self._input_type = input_type
        self._input, self._batch, self.size = _signature_input(signature, input_type)
        self._fetches = {
            key: info.name for key, info in signature.outputs.items() if key in _DETECTION_OUTPUTS
        }
        self._normalized = bool(export_info.get("output_normalized_coordinates"))
        if input_type == "image_tensor":
            self._encoded = tf.placeholder(tf.string, [])
            self._decoded = tf_example_decoder.decode_image(self._encoded)

    def _run(self, feed, count):
        outputs = self._sess.run(self._fetches, {self._input: _pad_rows(feed, self._batch)})
        return {key: value[:count] for key, value in outputs.items()}

    def _run_rows(self, feeds):
        """Each row alone (as a batch of one, or tiled to the static batch)."""
        rows = [self._run(feed[np.newaxis], 1) for feed in feeds]
        return {key: saved_model.concatenate_outputs([row[key] for row in rows]) for key in rows[0]}

    def __call__(self, features, labels):
        count = len(features["serialized"])
        if self._input_type == "tf_example":
            outputs = self._batches(features["serialized"])
        elif self._input_type == "image_bytes":
            outputs = self._batches(features["encoded"])
        elif self._input_type == "image_tensor":
            images = [
                self._sess.run(self._decoded, {self._encoded: e}) for e in features["encoded"]
            ]
            outputs = self._run_rows(images)
        else:
            outputs = self._batches(features["image"])
        outputs = {key: np.asarray(value) for key, value in outputs.items()}
        for key in ("num_detections", "detection_classes"):
            outputs[key] = outputs[key].astype(np.int32)
        original_size = labels["image_info"][:, 0, :]
        if self._input_type == "raw_image_tensor":
            # The network saw the parser's scaled image; its boxes are in those pixels.
            scale = np.tile(labels["image_info"][:, 2, :], 2)[:, np.newaxis, :]
            boxes = outputs["detection_boxes"]
            if self._normalized:
                boxes = boxes * np.tile(np.asarray(self.size, np.float32), 2)
            boxes = boxes / scale
            outputs["detection_boxes"] = np.minimum(
                np.maximum(boxes, 0.0), np.tile(original_size, 2)[:, np.newaxis, :]
            )
        elif self._normalized:
            outputs["detection_boxes"] = (
                outputs["detection_boxes"] * np.tile(original_size, 2)[:, np.newaxis, :]
            )
        assert len(outputs["num_detections"]) == count
        return outputs

    def _batches(self, feeds):
        """The rows in chunks of the static batch (any number when it is dynamic)."""
        step = self._batch or len(feeds)
        parts = [
            self._run(feeds[i : i + step], len(feeds[i : i + step]))
            for i in range(0, len(feeds), step)
        ]
        return {
            key: saved_model.concatenate_outputs([part[key] for part in parts]) for key in parts[0]
        }


def _check_fits(params, signature, input_type, size, export_dir, export_info):
    has_masks = "detection_masks" in signature.outputs
    if params.eval.type == "box_and_mask" and not has_masks:
        raise SavedModelEvalError(
            f"eval.type is box_and_mask but {export_dir} has no detection_masks output "
            "(--saved_model_dir); evaluate it with eval.type=box, or export a Mask R-CNN"
        )
    if input_type == "raw_image_tensor" and export_info.get("output_full_image_masks"):
        raise SavedModelEvalError(
            f"{export_dir} pastes its masks into the raw input, not the original images "
            "(--saved_model_dir); evaluate an export without --output_full_image_masks, or "
            "of another --input_type"
        )
    if input_type == "raw_image_tensor":
        parser_size = list(params[dataloader_factory.parser_name(params)].output_size)
        if list(size) != parser_size:
            raise SavedModelEvalError(
                f"{export_dir} takes raw images of {size[0]}x{size[1]} but the evaluation "
                f"parser makes {parser_size[0]}x{parser_size[1]} "
                f"({dataloader_factory.parser_name(params)}.output_size); set it to "
                f"{size[0]},{size[1]} or export with another --input_type"
            )


def evaluate_saved_model(params, export_dir, evaluator_fn, eval_dir, progress_secs=30.0):
    """Evaluates the SavedModel in `export_dir` on the config's eval records.

    Args:
      params: the model's Config (eval files, eval batch size, parser, eval type).
      export_dir: the SavedModel (scripts/export_saved_model.py).
      evaluator_fn: `fn() -> COCOEvaluator` (evaluation/factory.py).
      eval_dir: where metrics_<step>.json and detections_<step>.json go.
      progress_secs: seconds between progress lines.

    Returns:
      (step, metrics dict); step is the exported checkpoint's global step (0 if unknown).
    """
    # Set-up is everything before the first batch (loading, the input pipeline's
    # graph); closing, the session's end after the last.
    timing = detection_executor.EvalTiming()
    export_info = saved_model.read_export_info(export_dir)
    step = int(export_info.get("global_step", 0))
    evaluator = evaluator_fn()
    input_fn = input_reader.InputFn(
        params.eval.eval_file_pattern,
        _with_sources(dataloader_factory.parser_generator(params, mode_keys.PREDICT_WITH_GT)),
        mode_keys.PREDICT_WITH_GT,
        params.eval.eval_batch_size,
        num_examples=params.eval.eval_samples or -1,
    )
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        start = time.time()
        signature = _load(sess, export_dir)
        load_seconds = time.time() - start
        (input_info,) = signature.inputs.values()
        input_type = saved_model.served_input_type(
            graph, graph.get_tensor_by_name(input_info.name), export_info
        )
        if input_type is None:
            raise SavedModelEvalError(
                f"the input {input_info.name} of {export_dir} is not an input type of "
                "scripts/export_saved_model.py (--saved_model_dir); export it with that script"
            )
        run = _Runner(sess, signature, input_type, export_info)
        _check_fits(params, signature, input_type, run.size, export_dir, export_info)
        next_batch = tf.data.make_one_shot_iterator(input_fn()).get_next()
        start = last_progress = time.time()
        timing.add("set-up", timing.elapsed())
        num_images = 0
        while True:
            with timing.stage("predict"):
                try:
                    features, labels = sess.run(next_batch)
                except tf.errors.OutOfRangeError:
                    break
                predictions = run(features, labels)
            with timing.stage("results"):
                predictions = base_model.with_labels_for_evaluation(predictions, labels)
                evaluator.update(predictions)
            num_images += len(labels["source_id"])
            if time.time() - last_progress >= progress_secs:
                last_progress = time.time()
                tf.logging.info(
                    "Evaluated %d images (%.2f images/s)",
                    num_images,
                    num_images / (last_progress - start),
                )
        last_batch = time.time()
    timing.add("closing", time.time() - last_batch)
    what = f"SavedModel {export_dir} ({input_type} input, loaded in {load_seconds:.1f} s)"
    metrics = detection_executor.finish_evaluation(
        evaluator, eval_dir, step, what, num_images, timing
    )
    return step, metrics
