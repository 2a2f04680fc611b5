"""A detector that runs on host images: a checkpoint's predict graph, or a SavedModel.

Both take RGB uint8 images, [H, W, 3] each, and return the detections of each in its
own pixels, so the inference tool does not care where the model came from:
  - `checkpoint_predictor` builds the serving graph of `export/saved_model.py` with an
    `image_tensor` input in this process and restores the checkpoint into it;
  - `saved_model_predictor` loads an export of `scripts/export_saved_model.py` of any
    input type and feeds its input what it takes: the images (image_tensor), PNG files
    of them (image_bytes), `tf.train.Example`s holding those (tf_example), or the images
    normalised, resized and padded to its static input size by the evaluation parser's
    ops in this process (raw_image_tensor).
An `image_tensor` input takes one size per batch: `same_size_batches` says so.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import (
    mode_keys,
    parser_ops,
    tf_example_builder,
    tf_example_decoder,
)
from official.detection.export import saved_model
from official.detection.modeling import factory as modeling_factory


class PredictorError(ValueError):
    """A model that cannot be loaded or run; the message says why and what to do."""


class Predictor:
    """Runs a detection graph on lists of images.

    Args:
      session: the tf.Session of the graph, variables restored.
      input_tensor: the graph's input (see the module docstring for `input_type`).
      input_type: one of `saved_model.INPUT_TYPES`.
      outputs: {name: tensor} with at least `saved_model.DETECTION_KEYS`, and
        `detection_masks` for Mask R-CNN; boxes in original-image pixels, or divided by
        the original size when `normalized_boxes`.
    """

    def __init__(self, session, input_tensor, input_type, outputs, *, normalized_boxes=False):
        self._session = session
        self._input = input_tensor
        self.input_type = input_type
        keys = saved_model.DETECTION_KEYS + ("detection_masks",)
        self._outputs = {key: outputs[key] for key in keys if key in outputs}
        self._normalized_boxes = normalized_boxes
        self.include_mask = "detection_masks" in self._outputs
        self.same_size_batches = input_type == "image_tensor"
        # A fixed batch of the graph: shorter batches are filled up to it.
        self.fixed_batch_size = input_tensor.shape.as_list()[0]
        if input_type == "raw_image_tensor":
            self._build_raw_preprocessing(input_tensor.shape.as_list()[1:3])
        with session.graph.as_default():
            self._jpeg = tf.placeholder(tf.string, [], "inference_jpeg")
            self._decoded_jpeg = tf_example_decoder.decode_image(self._jpeg)
        session.graph.finalize()

    def decode_jpeg(self, data):
        """uint8 [H, W, 3] pixels of a JPEG file's bytes, decoded as evaluation decodes
        them (Pillow's decoder rounds some pixels differently); ValueError if it fails."""
        try:
            return self._session.run(self._decoded_jpeg, {self._jpeg: data})
        except tf.errors.OpError as exc:
            raise ValueError(exc.message.splitlines()[0]) from None

    def _build_raw_preprocessing(self, input_size):
        if None in input_size:
            raise PredictorError(
                f"the raw_image_tensor input {self._input.name} has no static size "
                f"({input_size}) (--saved_model_dir); export it with --input_image_size"
            )
        with self._session.graph.as_default():
            self._raw_image = tf.placeholder(tf.uint8, [None, None, 3], "inference_image")
            image, _, image_info = parser_ops.transform_image_and_boxes(
                self._raw_image, tf.zeros([0, 4]), output_size=input_size, padded_size=input_size
            )
            self._raw_outputs = (image, image_info)

    def predict(self, images):
        """Detections of `images` (uint8 [H, W, 3] RGB arrays; one size with
        `same_size_batches`).

        Returns:
          dict of NumPy arrays, B = len(images), M the graph's detections per image:
          num_detections int32 [B], detection_boxes float32 [B, M, 4] [ymin, xmin, ymax,
          xmax] in each image's pixels, detection_classes int32 [B, M],
          detection_scores float32 [B, M], and for Mask R-CNN detection_masks float32
          [B, M, T, T] (each detection's mask inside its box), or uint8 [B, M, H, W]
          from an export with full-image masks (image b's from the top left).
        """
        step = self.fixed_batch_size or len(images)
        parts = [self._predict_batch(images[i : i + step]) for i in range(0, len(images), step)]
        return {key: saved_model.concatenate_outputs([p[key] for p in parts]) for key in parts[0]}

    def _predict_batch(self, images):
        count = len(images)
        feed, scales = self._feed(images)
        if self.fixed_batch_size and count < self.fixed_batch_size:
            filler = np.repeat(feed[-1:], self.fixed_batch_size - count, axis=0)
            feed = np.concatenate([feed, filler])
        outputs = self._session.run(self._outputs, {self._input: feed})
        outputs = {key: value[:count] for key, value in outputs.items()}
        outputs["num_detections"] = outputs["num_detections"].astype(np.int32)
        outputs["detection_classes"] = outputs["detection_classes"].astype(np.int32)
        sizes = np.array([image.shape[:2] for image in images], np.float32)
        boxes = outputs["detection_boxes"]
        if self._normalized_boxes:
            boxes = boxes * np.tile(sizes, [1, 2])[:, np.newaxis, :]
        if scales is not None:
            # Back from the raw input's pixels to the image's, as the graph does for the
            # other input types (`postprocess.boxes_to_original_image`, no offset).
            boxes = boxes / np.tile(scales, [1, 2])[:, np.newaxis, :]
            boxes = np.minimum(np.maximum(boxes, 0.0), np.tile(sizes, [1, 2])[:, np.newaxis, :])
        outputs["detection_boxes"] = boxes.astype(np.float32)
        return outputs

    def _feed(self, images):
        """The input value for `images`, and for raw input each image's [y, x] scale."""
        if self.input_type == "image_tensor":
            return np.stack(images), None
        if self.input_type == "raw_image_tensor":
            prepared = [self._session.run(self._raw_outputs, {self._raw_image: i}) for i in images]
            feed = np.stack([image for image, _ in prepared])
            return feed, np.stack([info[2] for _, info in prepared])
        encoded = [tf_example_builder.encode_image(image, "png") for image in images]
        if self.input_type == "tf_example":
            encoded = [
                tf_example_builder.build_example(e, *i.shape[:2], image_format="png")
                .SerializeToString()
                for e, i in zip(encoded, images)
            ]  # fmt: skip
        return np.array(encoded, object), None

    def close(self):
        self._session.close()


def checkpoint_predictor(params, checkpoint_path):
    """A Predictor of the config's model with the checkpoint's weights.

    Raises:
      saved_model.ExportError: no checkpoint at `checkpoint_path` (a prefix or a
        model_dir), or one that does not fit the model.
    """
    checkpoint = saved_model.resolve_checkpoint(checkpoint_path)
    input_image_size = list(params[dataloader_factory.parser_name(params)].output_size)
    graph = tf.Graph()
    with graph.as_default():
        parser = dataloader_factory.parser_generator(params, mode_keys.PREDICT)
        # Outside the loop over images (see `saved_model.export_saved_model`).
        anchor_boxes = parser.anchor_boxes
        placeholder, images, image_info = saved_model.build_serving_inputs(
            "image_tensor",
            parser,
            batch_size=None,
            input_name="input",
            input_image_size=input_image_size,
        )
        model = modeling_factory.build_model(params)
        outputs = saved_model.build_serving_outputs(model, anchor_boxes, images, image_info)
        variables = tf.global_variables()
        saved_model.check_checkpoint_fits(checkpoint, variables)
        session = tf.Session(graph=graph)
        tf.train.Saver(variables).restore(session, checkpoint)
    return Predictor(session, placeholder, "image_tensor", outputs)


def saved_model_predictor(export_dir):
    """A Predictor of the `serving_default` signature of the SavedModel in `export_dir`.

    Raises:
      PredictorError: no SavedModel there, or a signature this tool cannot feed.
    """
    if not tf.saved_model.loader.maybe_saved_model_directory(export_dir):
        raise PredictorError(
            f"no SavedModel in {export_dir!r} (--saved_model_dir); give the --export_dir of "
            "scripts/export_saved_model.py"
        )
    graph = tf.Graph()
    session = tf.Session(graph=graph)
    with graph.as_default():
        meta_graph = tf.saved_model.loader.load(
            session, [tf.saved_model.tag_constants.SERVING], export_dir
        )
    signature = meta_graph.signature_def.get(saved_model.SIGNATURE_KEY)
    missing = [
        key for key in saved_model.DETECTION_KEYS if signature and key not in signature.outputs
    ]
    if signature is None or len(signature.inputs) != 1 or missing:
        session.close()
        raise PredictorError(
            f"the SavedModel in {export_dir} has no {saved_model.SIGNATURE_KEY!r} signature "
            f"with one input and the outputs {', '.join(saved_model.DETECTION_KEYS)} "
            "(--saved_model_dir); export it with scripts/export_saved_model.py"
        )
    (input_info,) = signature.inputs.values()
    input_tensor = graph.get_tensor_by_name(input_info.name)
    outputs = {key: graph.get_tensor_by_name(info.name) for key, info in signature.outputs.items()}
    # The export's description says how it is fed; without one (an export made before
    # it was written), the graph does.
    export_info = saved_model.read_export_info(export_dir)
    input_type = saved_model.served_input_type(graph, input_tensor, export_info)
    if input_type is None:
        session.close()
        raise PredictorError(
            f"the input {input_info.name} of the SavedModel in {export_dir} is "
            f"{input_tensor.dtype.name}; this tool feeds uint8 images, float32 images or "
            "string images or tf.Examples (--saved_model_dir)"
        )
    normalized = export_info.get("output_normalized_coordinates")
    if normalized is None:
        # `build_serving_outputs` names the scope of the normalisation of its boxes.
        boxes_input = outputs["detection_boxes"].op.inputs[0].op
        normalized = boxes_input.name.startswith("normalize_boxes")
    return Predictor(session, input_tensor, input_type, outputs, normalized_boxes=normalized)
