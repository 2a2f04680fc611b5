"""A trained detector as a SavedModel: one `serving_default` signature under `serve`.

The graph is built with `tensorflow.compat.v1` graph APIs and written by the v1
`SavedModelBuilder`, so an export runs and loads on TensorFlow 1.15 and 2.x alike.

Inputs (`input_type`; B is `batch_size`, or any batch when it is None):
  raw_image_tensor: float32 [B, h, w, 3], images already normalised (the ImageNet mean
    subtracted and divided by its standard deviation, as `preprocess_ops.normalize_image`
    does) at the input size, which must be a multiple of 2**max_level: they are fed to
    the network as they are, and boxes come back in their pixels.
  image_tensor: uint8 [B, H, W, 3] RGB images of one size per batch.
  image_bytes: string [B] of JPEG or PNG files, each of any size.
  tf_example: string [B] of serialized `tf.train.Example`s with `image/encoded`, as in
    the TFRecords of this code base.
Except for raw_image_tensor, each image is normalised, resized and padded in the graph
by the evaluation parser's own ops, as evaluation does.

Outputs (M = postprocess.max_total_size):
  num_detections: int32 [B] (float32 with cast_num_detections_to_float).
  detection_boxes: float32 [B, M, 4] [ymin, xmin, ymax, xmax] in original-image pixels,
    or divided by the original height and width with output_normalized_coordinates.
  detection_classes: int32 [B, M] (float32 with cast_detection_classes_to_float).
  detection_scores: float32 [B, M].
  detection_masks: float32 [B, M, T, T] in [0, 1], Mask R-CNN only: each detection's
    mask inside its box (T = architecture.mask_target_size). With
    output_full_image_masks, uint8 [B, M, H, W] in {0, 1} instead: the masks pasted into
    the original image as evaluation pastes them (see `mask_ops.paste_instance_masks`),
    H x W being the largest original size in the batch. Image b's masks fill its own
    size, image_info[b, 0], from the top left, and are 0 beyond it; images of one size
    (every image_tensor batch) fill the whole output. raw_image_tensor masks are in the
    input's pixels, like its boxes.
  image_info: float32 [B, 4, 2] with output_image_info: original size, scaled size,
    scale and offset (see `preprocess_ops.compute_resize_params`).
"""

import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

from official.detection.atomic_file import write_atomically
from official.detection.configs import loader
from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import mode_keys, parser_ops, tf_example_decoder
from official.detection.modeling import base_model
from official.detection.modeling import factory as modeling_factory
from official.detection.ops import box_ops, mask_ops

INPUT_TYPES = ("raw_image_tensor", "image_tensor", "image_bytes", "tf_example")
SIGNATURE_KEY = "serving_default"
# Boolean options of the outputs, named like the flags of scripts/export_saved_model.py.
OUTPUT_OPTIONS = (
    "output_image_info",
    "output_normalized_coordinates",
    "cast_num_detections_to_float",
    "cast_detection_classes_to_float",
    "output_full_image_masks",
)
DETECTION_KEYS = ("num_detections", "detection_boxes", "detection_classes", "detection_scores")
# What the export was made from and how it is fed, beside the SavedModel (TensorFlow
# Serving ignores assets.extra); evaluation reads the checkpoint's step and options here.
EXPORT_INFO_FILE = os.path.join("assets.extra", "export_info.json")


# How a SavedModel without an export description is fed, read from its graph.
_PARSE_OPS = ("ParseExample", "ParseExampleV2", "ParseSingleExample")
_INPUT_DTYPES = {tf.uint8: "image_tensor", tf.float32: "raw_image_tensor"}


def read_export_info(export_dir):
    """The export's description (EXPORT_INFO_FILE), or {} when it has none."""
    path = os.path.join(export_dir, EXPORT_INFO_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def served_input_type(graph, input_tensor, export_info):
    """The input type of a loaded SavedModel: from its description, else from its graph
    (an export made before descriptions were written); None for an input it cannot be."""
    if export_info.get("input_type"):
        return export_info["input_type"]
    if input_tensor.dtype == tf.string:
        # The parse runs in the loop over images: a function of the graph on TensorFlow 2.
        graph_def = graph.as_graph_def()
        op_types = {node.op for node in graph_def.node}
        for function in graph_def.library.function:
            op_types.update(node.op for node in function.node_def)
        return "tf_example" if op_types & set(_PARSE_OPS) else "image_bytes"
    return _INPUT_DTYPES.get(input_tensor.dtype)


class ExportError(ValueError):
    """An export the user asked for that cannot be made; the message says why and what to do."""


def check_input_type(input_type):
    if input_type not in INPUT_TYPES:
        raise ExportError(
            f"{input_type!r} is not an input type (--input_type); valid: {', '.join(INPUT_TYPES)}"
        )


def check_input_image_size(input_type, input_image_size, max_level):
    """Raw images reach the network unpadded, so their size must tile its coarsest level."""
    stride = 2**max_level
    if input_type != "raw_image_tensor" or all(s % stride == 0 for s in input_image_size):
        return
    fitting = ",".join(str(-(-s // stride) * stride) for s in input_image_size)
    raise ExportError(
        f"input size {input_image_size[0]},{input_image_size[1]} is not divisible by "
        f"2**max_level = {stride} (--input_image_size, architecture.max_level={max_level}); "
        f"raw_image_tensor images are not padded: use multiples of {stride} such as {fitting}"
    )


def resolve_checkpoint(checkpoint_path):
    """A checkpoint prefix, or the latest checkpoint of a model_dir, as a prefix."""
    if checkpoint_path and os.path.isdir(checkpoint_path):
        latest = tf.train.latest_checkpoint(checkpoint_path)
        if latest:
            return latest
    elif checkpoint_path and tf.io.gfile.exists(checkpoint_path + ".index"):
        return checkpoint_path
    raise ExportError(
        f"no checkpoint at {checkpoint_path!r} (--checkpoint_path); give a checkpoint prefix "
        "such as MODEL_DIR/model.ckpt-1000, or a model_dir that holds a checkpoint"
    )


def check_checkpoint_fits(checkpoint, variables):
    """Raises ExportError naming the first variable of `variables` the checkpoint lacks
    or holds in another shape."""
    stored = dict(tf.train.list_variables(checkpoint))
    missing, misshaped = [], []
    for var in variables:
        name = var.op.name
        if name not in stored:
            missing.append(name)
        elif list(stored[name]) != var.shape.as_list():
            misshaped.append((name, list(stored[name]), var.shape.as_list()))
    if not missing and not misshaped:
        return
    counts = f"{len(missing)} missing, {len(misshaped)} of another shape"
    if missing:
        first = f"it has no variable {missing[0]!r}"
    else:
        name, theirs, ours = misshaped[0]
        first = f"its variable {name!r} is {theirs}, the model's is {ours}"
    raise ExportError(
        f"checkpoint {checkpoint} does not fit the model of the config: {first} ({counts}) "
        "(--checkpoint_path, --config_file, --params_override); export with the config the "
        "checkpoint was trained with (the params.yaml of its model_dir)"
    )


def checkpoint_step(checkpoint):
    """The checkpoint's global step: its `global_step` variable, else its name's suffix."""
    if "global_step" in dict(tf.train.list_variables(checkpoint)):
        return int(tf.train.load_variable(checkpoint, "global_step"))
    suffix = checkpoint.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def _tile_to_batch(tensor, batch):
    """[...] -> [batch, ...], one copy per image."""
    multiples = tf.concat([[batch], tf.ones([tensor.shape.ndims], tf.int32)], axis=0)
    return tf.tile(tensor[tf.newaxis], multiples)


def _map_images(fn, inputs):
    """`fn(one input) -> (image, image_info)` over the batch."""
    return tf.map_fn(fn, inputs, dtype=(tf.float32, tf.float32), back_prop=False)


def build_serving_inputs(
    input_type, parser, *, batch_size, input_name, input_image_size, fixed_image_size=False
):
    """The input placeholder and the model's batched images and image_info.

    Args:
      input_type: one of INPUT_TYPES.
      parser: the PREDICT-mode parser of the config with output_size `input_image_size`.
      batch_size: static batch size, or None for any.
      input_name: name of the placeholder and of the signature's input.
      input_image_size: [h, w] Python ints.
      fixed_image_size: image_tensor images must have the size `input_image_size`, so
        the placeholder's shape is static (a frozen graph's input); else any size.

    Returns:
      (placeholder, images float32 [B, padded h, padded w, 3], image_info float32 [B, 4, 2]).
    """
    check_input_type(input_type)
    padded_size = parser.padded_size

    def preprocess(image):
        image, _, image_info = parser_ops.transform_image_and_boxes(
            image, tf.zeros([0, 4]), output_size=input_image_size, padded_size=padded_size
        )
        return image, image_info

    if input_type == "raw_image_tensor":
        height, width = input_image_size
        placeholder = tf.placeholder(tf.float32, [batch_size, height, width, 3], input_name)
        identity_info = tf.constant(
            [[height, width], [height, width], [1.0, 1.0], [0.0, 0.0]], tf.float32
        )
        return placeholder, placeholder, _tile_to_batch(identity_info, tf.shape(placeholder)[0])
    if input_type == "image_tensor":
        size = list(input_image_size) if fixed_image_size else [None, None]
        placeholder = tf.placeholder(tf.uint8, [batch_size, *size, 3], input_name)
        return (placeholder, *_map_images(preprocess, placeholder))
    placeholder = tf.placeholder(tf.string, [batch_size], input_name)
    if input_type == "image_bytes":
        images, image_info = _map_images(
            lambda encoded: preprocess(tf_example_decoder.decode_image(encoded)), placeholder
        )
    else:
        images, image_info = _map_images(
            lambda serialized: _image_and_info(*parser(serialized)), placeholder
        )
    return placeholder, images, image_info


def _image_and_info(image, labels):
    return image, labels["image_info"]


def build_serving_outputs(
    model,
    anchor_boxes,
    images,
    image_info,
    *,
    output_image_info=True,
    output_normalized_coordinates=False,
    cast_num_detections_to_float=False,
    cast_detection_classes_to_float=False,
    output_full_image_masks=False,
    full_image_size=None,
):
    """The model's PREDICT outputs for `images`, as the signature's dict of tensors.

    `anchor_boxes` are the parser's, {level: [H_l, W_l, A * 4]}, for one image.
    `full_image_size` [h, w] Python ints: the original size of every image, when the
    input fixes it, for a static shape of full-image masks.
    """
    batch = tf.shape(images)[0]
    labels = {
        "image_info": image_info,
        "anchor_boxes": {
            level: _tile_to_batch(boxes, batch) for level, boxes in anchor_boxes.items()
        },
        "source_id": tf.fill([batch], tf.constant(-1, tf.int64)),
    }
    spec = model.model_fn({"images": images, "labels": labels}, None, base_model.PREDICT)
    keys = DETECTION_KEYS + (("detection_masks",) if "detection_masks" in spec.predictions else ())
    outputs = {key: spec.predictions[key] for key in keys}
    if output_full_image_masks:
        outputs["detection_masks"] = _full_image_masks(outputs, image_info, full_image_size)
    if output_normalized_coordinates:
        outputs["detection_boxes"] = box_ops.normalize_boxes(
            outputs["detection_boxes"], image_info[:, 0:1, :]
        )
    if cast_num_detections_to_float:
        outputs["num_detections"] = tf.cast(outputs["num_detections"], tf.float32)
    if cast_detection_classes_to_float:
        outputs["detection_classes"] = tf.cast(outputs["detection_classes"], tf.float32)
    if output_image_info:
        outputs["image_info"] = image_info
    # Named graph nodes, for users of the graph without the signature.
    return {key: tf.identity(value, name=key) for key, value in outputs.items()}


def _full_image_masks(outputs, image_info, full_image_size):
    if "detection_masks" not in outputs:
        raise ExportError(
            "only a Mask R-CNN has masks to paste (--output_full_image_masks); leave the "
            "flag out for this model"
        )
    if full_image_size is None:
        size = tf.cast(tf.round(tf.reduce_max(image_info[:, 0, :], axis=0)), tf.int32)
        full_image_size = [size[0], size[1]]
    return mask_ops.paste_instance_masks(
        outputs["detection_masks"], outputs["detection_boxes"], *full_image_size
    )


def concatenate_outputs(parts):
    """Row-wise concatenation of one output of several runs, whose trailing sizes may
    differ (full-image masks of batches of other image sizes): padded with 0 at the end
    of each axis, as the signature pads images of one batch."""
    size = np.max([part.shape[1:] for part in parts], axis=0)
    return np.concatenate(
        [
            np.pad(part, [(0, 0)] + [(0, s - n) for s, n in zip(size, part.shape[1:])])
            for part in parts
        ]
    )


def load_export_config(model, config_file=None, params_override=None, input_image_size=None):
    """The model's Config, with the parser's output_size set to `input_image_size` [h, w]
    when given (the flag --input_image_size)."""
    params = loader.load_config(model, config_file=config_file, params_override=params_override)
    if input_image_size is None:
        return params
    size_key = f"{dataloader_factory.parser_name(params)}.output_size"
    return loader.load_config(
        model,
        config_file=config_file,
        params_override=params_override,
        forced={size_key: loader.Forced([int(s) for s in input_image_size], "--input_image_size")},
    )


def export_saved_model(
    params,
    export_dir,
    checkpoint_path,
    *,
    batch_size=None,
    input_type="image_bytes",
    input_name="input",
    **output_options,
):
    """Writes the SavedModel of the config's model with the checkpoint's weights.

    Args:
      params: the model's Config.
      export_dir: a new (or empty) directory.
      checkpoint_path: a checkpoint prefix, or a model_dir (its latest checkpoint).
      batch_size: static batch size; None or 0 for any.
      input_type, input_name: see the module docstring. Images are resized to the
        parser's output_size (see `load_export_config`), then padded to multiples of
        2**max_level.
      **output_options: booleans named in OUTPUT_OPTIONS (see `build_serving_outputs`).

    Returns:
      The checkpoint prefix exported.

    Raises:
      ExportError: an unknown input type, a raw input size that the network cannot
        take, an existing export_dir, a missing checkpoint or one that does not fit.
    """
    check_input_type(input_type)
    input_image_size = list(params[dataloader_factory.parser_name(params)].output_size)
    check_input_image_size(input_type, input_image_size, params.architecture.max_level)
    if tf.io.gfile.exists(export_dir) and tf.io.gfile.listdir(export_dir):
        raise ExportError(
            f"{export_dir} exists and is not empty (--export_dir); a SavedModel needs a new "
            "directory: remove it or choose another"
        )
    checkpoint = resolve_checkpoint(checkpoint_path)

    graph = tf.Graph()
    with graph.as_default():
        parser = dataloader_factory.parser_generator(params, mode_keys.PREDICT)
        # Made here, outside the loop over images: the parser caches the anchor constants
        # of the graph it first runs in, and TensorFlow 1.15 cannot use a tensor made in a
        # loop outside of it.
        anchor_boxes = parser.anchor_boxes
        placeholder, images, image_info = build_serving_inputs(
            input_type,
            parser,
            batch_size=batch_size or None,
            input_name=input_name,
            input_image_size=input_image_size,
        )
        model = modeling_factory.build_model(params)
        outputs = build_serving_outputs(
            model,
            anchor_boxes,
            images,
            image_info,
            # Raw images are their own original: masks at the input size.
            full_image_size=input_image_size if input_type == "raw_image_tensor" else None,
            **output_options,
        )
        variables = tf.global_variables()
        check_checkpoint_fits(checkpoint, variables)
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            inputs={input_name: placeholder}, outputs=outputs
        )
        with tf.Session(graph=graph) as sess:
            tf.train.Saver(variables).restore(sess, checkpoint)
            builder = tf.saved_model.Builder(export_dir)
            builder.add_meta_graph_and_variables(
                sess,
                [tf.saved_model.tag_constants.SERVING],
                signature_def_map={SIGNATURE_KEY: signature},
                strip_default_attrs=True,
            )
            builder.save()
    info = {
        "model": params.type,
        "checkpoint": checkpoint,
        "global_step": checkpoint_step(checkpoint),
        "input_type": input_type,
        "input_name": input_name,
        "input_image_size": input_image_size,
        "batch_size": batch_size or None,
    }
    info.update(
        (name, bool(output_options.get(name, name == "output_image_info")))
        for name in OUTPUT_OPTIONS
    )
    write_atomically(os.path.join(export_dir, EXPORT_INFO_FILE), json.dumps(info, indent=2))
    return checkpoint
