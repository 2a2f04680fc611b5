"""Exports a trained detector as a frozen graph: one GraphDef file, variables as constants.

    python scripts/export_inference_graph.py --model=retinanet \
        --config_file=CONFIG.yaml --checkpoint_path=MODEL_DIR \
        --export_dir=/tmp/frozen --input_type=raw_image_tensor --input_image_size=640,640

writes /tmp/frozen/frozen_inference_graph.pb, for Ascend's ATC converter or TensorFlow's
`import_graph_def`. The input, a placeholder named --input_name, has a static shape:
--batch_size images of --input_image_size. The outputs are graph nodes named like the
SavedModel's (num_detections, detection_boxes, detection_classes, detection_scores,
detection_masks for Mask R-CNN, image_info), or with --include_postprocess=false (RetinaNet)
the head outputs and anchors per level (cls_outputs_L, box_outputs_L, anchor_boxes_L).
See official/detection/export/frozen_graph.py.
"""

import time

from absl import app, flags

from official.detection.export import command_line

command_line.define_flags(
    export_dir_help="The directory of the graph file (frozen_inference_graph.pb); made if "
    "missing, and a graph already there replaced.",
    batch_size=1,
    batch_size_help="Images per run, a static batch (1 or more).",
    input_type="image_tensor",
    input_name_help="Name of the input node.",
)
flags.DEFINE_boolean(
    "include_postprocess",
    True,
    "Detections (box decoding and NMS in the graph); false: RetinaNet's head outputs and "
    "anchors per level, for back ends without NMS.",
)
FLAGS = flags.FLAGS


def export(params, start):
    from official.detection.export import frozen_graph

    graph = frozen_graph.export_frozen_graph(
        params, include_postprocess=FLAGS.include_postprocess, **command_line.export_arguments()
    )
    print(f"exported {graph.checkpoint} to {graph.path} ({time.time() - start:.1f} s)")
    for kind, specs in (("input", [graph.input]), ("output", graph.outputs)):
        for name, dtype, shape in specs:
            print(f"  {kind} {name}: {dtype} {shape}")
    return 0


def main(argv):
    return command_line.run_export(argv, export)


if __name__ == "__main__":
    app.run(main)
