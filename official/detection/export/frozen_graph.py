"""A trained detector as a frozen GraphDef: one `.pb` file, variables folded into constants.

For consumers that take a frozen graph rather than a SavedModel: Ascend's ATC offline
model converter and TensorFlow 1.15's `import_graph_def`. The graph is the SavedModel's
(`saved_model.build_serving_inputs` and `build_serving_outputs`), with a static input
shape and the checkpoint's values as constants.

Input, a placeholder named `input_name` (B = batch_size, h, w = the input image size):
  raw_image_tensor: float32 [B, h, w, 3], normalised images; h and w multiples of
    2**max_level (see `saved_model`).
  image_tensor: uint8 [B, h, w, 3] RGB images, normalised and padded in the graph.
  image_bytes, tf_example: string [B], each image of any size, as in the SavedModel;
    their decoding ops run in TensorFlow only, not in ATC.

Outputs, graph nodes named like the SavedModel's outputs:
  with postprocessing: num_detections, detection_boxes, detection_classes,
    detection_scores, detection_masks (Mask R-CNN) and image_info (see `saved_model`).
    As built for devices that compile static shapes (`compiled_device`), Mask R-CNN runs
    its mask head on every detection slot, so the masks of the empty slots after
    num_detections differ from the SavedModel's; the filled ones are the same.
  without (RetinaNet only): for each level l from min_level to max_level,
    cls_outputs_l float32 [B, H_l, W_l, A * num_classes] (logits, before the sigmoid),
    box_outputs_l float32 [B, H_l, W_l, A * 4] (encoded offsets) and anchor_boxes_l
    float32 [H_l, W_l, A * 4] ([ymin, xmin, ymax, xmax] in input-image pixels), with
    H_l, W_l = the padded input size / 2**l; and image_info when asked for. Decoding,
    score thresholds and NMS are then the consumer's.
"""

import collections
import os

import tensorflow.compat.v1 as tf

from official.detection import atomic_file, tf_compat
from official.detection.dataloader import factory as dataloader_factory
from official.detection.dataloader import mode_keys
from official.detection.export import saved_model
from official.detection.modeling import base_model
from official.detection.modeling import factory as modeling_factory

GRAPH_FILE = "frozen_inference_graph.pb"
# Ops that call back into the Python process: a frozen graph must run without it.
HOST_ONLY_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
# The options of saved_model.build_serving_outputs that change detections.
DETECTION_OPTIONS = tuple(o for o in saved_model.OUTPUT_OPTIONS if o != "output_image_info")

FrozenGraph = collections.namedtuple("FrozenGraph", ["path", "checkpoint", "input", "outputs"])
FrozenGraph.__doc__ = """An exported graph: its file, the checkpoint prefix whose values it
holds, its input as (name, dtype name, shape) and its outputs as a list of those."""


def raw_output_names(min_level, max_level):
    """The head output and anchor node names of a graph without postprocessing."""
    return [
        f"{kind}_{level}"
        for level in range(min_level, max_level + 1)
        for kind in ("cls_outputs", "box_outputs", "anchor_boxes")
    ]


def build_raw_outputs(model, anchor_boxes, images, image_info, *, output_image_info=True):
    """A RetinaNet's head outputs and anchors per level, as named graph nodes.

    `anchor_boxes` are the parser's, {level: [H_l, W_l, A * 4]}, for one image.
    """
    raw = model.build_outputs(images, {"image_info": image_info}, base_model.PREDICT)
    outputs = {}
    for level in sorted(raw["cls_outputs"]):
        outputs[f"cls_outputs_{level}"] = raw["cls_outputs"][level]
        outputs[f"box_outputs_{level}"] = raw["box_outputs"][level]
        outputs[f"anchor_boxes_{level}"] = anchor_boxes[level]
    if output_image_info:
        outputs["image_info"] = image_info
    return {key: tf.identity(value, name=key) for key, value in outputs.items()}


def _check_options(params, batch_size, include_postprocess, output_options):
    if batch_size < 1:
        raise saved_model.ExportError(
            f"batch size {batch_size} is not a static batch (--batch_size); a frozen graph "
            "has a fixed number of images per run: give 1 or more"
        )
    if include_postprocess:
        return
    if params.type != "retinanet":
        raise saved_model.ExportError(
            f"a {params.type} graph without postprocessing is not exported "
            "(--include_postprocess=false): its second stage takes proposals that need NMS; "
            "export it with --include_postprocess=true, or a RetinaNet without"
        )
    asked = [name for name in DETECTION_OPTIONS if output_options.get(name)]
    if asked:
        raise saved_model.ExportError(
            f"--{asked[0]} changes detections, which a graph without postprocessing does not "
            "output (--include_postprocess=false); leave it out or export with "
            "--include_postprocess=true"
        )


def op_types(graph_def):
    """The set of op types of `graph_def`, its function library (loop bodies) included."""
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return {node.op for node in nodes}


def host_only_ops(graph_def):
    """The sorted op types of `graph_def` that need a Python host."""
    return sorted(op_types(graph_def) & HOST_ONLY_OPS)


def _tensor_spec(tensor):
    return (tensor.op.name, tensor.dtype.name, tensor.shape.as_list())


def export_frozen_graph(
    params,
    export_dir,
    checkpoint_path,
    *,
    batch_size=1,
    input_type="image_tensor",
    input_name="input",
    include_postprocess=True,
    **output_options,
):
    """Writes export_dir/GRAPH_FILE, the config's model with the checkpoint's values.

    Args:
      params: the model's Config; images are `input_image_size` = the parser's
        output_size (see `saved_model.load_export_config`), padded to multiples of
        2**max_level.
      export_dir: directory of the graph file (made if missing; a graph already there
        is replaced as a whole, and only by a complete new one).
      checkpoint_path: a checkpoint prefix, or a model_dir (its latest checkpoint).
      batch_size: images per run, static.
      input_type, input_name: see the module docstring.
      include_postprocess: detections (True), or RetinaNet's raw head outputs and
        anchors (False).
      **output_options: booleans named in saved_model.OUTPUT_OPTIONS.

    Returns:
      The FrozenGraph written.

    Raises:
      ExportError: an unknown input type, a raw input size the network cannot take, a
        batch size below 1, outputs without postprocessing for a two-stage model or
        with detection options, a missing checkpoint or one that does not fit.
    """
    saved_model.check_input_type(input_type)
    input_image_size = list(params[dataloader_factory.parser_name(params)].output_size)
    saved_model.check_input_image_size(input_type, input_image_size, params.architecture.max_level)
    _check_options(params, batch_size, include_postprocess, output_options)
    checkpoint = saved_model.resolve_checkpoint(checkpoint_path)

    graph = tf.Graph()
    with graph.as_default():
        parser = dataloader_factory.parser_generator(params, mode_keys.PREDICT)
        anchor_boxes = parser.anchor_boxes  # Outside the loop over images, as for a SavedModel.
        placeholder, images, image_info = saved_model.build_serving_inputs(
            input_type,
            parser,
            batch_size=batch_size,
            input_name=input_name,
            input_image_size=input_image_size,
            fixed_image_size=True,
        )
        # Static shapes throughout, as ATC compiles them.
        model = modeling_factory.build_model(params, compiled_device=True)
        if include_postprocess:
            outputs = saved_model.build_serving_outputs(
                model,
                anchor_boxes,
                images,
                image_info,
                full_image_size=input_image_size,  # Every input is of this size.
                **output_options,
            )
        else:
            outputs = build_raw_outputs(
                model,
                anchor_boxes,
                images,
                image_info,
                output_image_info=output_options.get("output_image_info", True),
            )
        variables = tf.global_variables()
        saved_model.check_checkpoint_fits(checkpoint, variables)
        with tf.Session(graph=graph) as sess:
            tf.train.Saver(variables).restore(sess, checkpoint)
            graph_def = tf.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), sorted(outputs)
            )
    graph_def = tf_compat.strip_default_attrs(graph_def)
    host_ops = host_only_ops(graph_def)
    if host_ops:  # A model change that would make every export unusable off the host.
        raise RuntimeError(
            f"the frozen graph has ops that call back into Python: {', '.join(host_ops)}; "
            "the model's PREDICT graph must not use py_func or numpy_function"
        )
    path = os.path.join(export_dir, GRAPH_FILE)
    atomic_file.write_atomically(path, graph_def.SerializeToString())
    return FrozenGraph(
        path,
        checkpoint,
        _tensor_spec(placeholder),
        [_tensor_spec(outputs[name]) for name in sorted(outputs)],
    )
