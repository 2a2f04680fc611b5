r"""Times inference from a SavedModel and from a checkpoint, and the export and load.

For each config: a checkpoint with random weights is written, exported as a SavedModel
(`image_tensor` input, any batch), and the same uint8 images (random pixels, fixed
seed) are run through
  saved_model   the export, loaded by `tf.saved_model.loader.load` (what a serving
                user runs), and
  checkpoint    the predict graph built in this process from the config, with the
                checkpoint restored (what scripts/inference.py --checkpoint_path runs),
alternating the two, batch by batch, so that a machine's slow phases hit both alike.
Reported per batch size: median seconds per batch and images/s, after one untimed
batch; and once per model: export seconds, SavedModel load seconds, checkpoint
graph-build + restore seconds, and each path's first batch. The machine's float32
matmul rate (GFLOP/s) is measured in the same process.

  python scripts/benchmark_inference.py \
      --configs=retinanet_r50_fpn_coco,spinenet49S_retinanet,mask_rcnn_r50_fpn_coco \
      --image_size=640 --batch_sizes=1,8 --iterations=3

With random weights few anchors score above the threshold, so post-processing handles
fewer boxes than a trained model's; the network dominates either way.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from benchmark_training import (  # noqa: E402
    BenchmarkArgumentError,
    describe_machine,
    matmul_gflops,
    resolve_config,
    resolve_model,
)


def _elapsed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


class _SavedModelPath:
    def __init__(self, tf, export_dir):
        self._graph = tf.Graph()
        self.sess = tf.Session(graph=self._graph)
        with self._graph.as_default():
            meta_graph = tf.saved_model.loader.load(
                self.sess, [tf.saved_model.tag_constants.SERVING], export_dir
            )
        signature = meta_graph.signature_def["serving_default"]
        (info,) = signature.inputs.values()
        self.input = info.name
        self.fetches = {name: out.name for name, out in signature.outputs.items()}


class _CheckpointPath:
    def __init__(self, tf, params, checkpoint):
        from official.detection.dataloader import factory as dataloader_factory
        from official.detection.dataloader import mode_keys
        from official.detection.export import saved_model
        from official.detection.modeling import factory as modeling_factory

        self._graph = tf.Graph()
        with self._graph.as_default():
            parser = dataloader_factory.parser_generator(params, mode_keys.PREDICT)
            anchor_boxes = parser.anchor_boxes
            size = list(params[dataloader_factory.parser_name(params)].output_size)
            placeholder, images, image_info = saved_model.build_serving_inputs(
                "image_tensor", parser, batch_size=None, input_name="input", input_image_size=size
            )
            outputs = saved_model.build_serving_outputs(
                modeling_factory.build_model(params), anchor_boxes, images, image_info
            )
            self.sess = tf.Session(graph=self._graph)
            tf.train.Saver().restore(self.sess, checkpoint)
        self.input = placeholder
        self.fetches = outputs


def _run(path, images):
    return path.sess.run(path.fetches, {path.input: images})


def benchmark_model(tf, args, config_name, work_dir):
    from official.detection.export import saved_model
    from official.detection.testing import saved_models

    config_file = resolve_config(config_name)
    model = resolve_model(config_file, None)
    size = [args.image_size, args.image_size]
    params = saved_model.load_export_config(model, config_file, args.params_override, size)
    model_dir = os.path.join(work_dir, config_name)
    os.makedirs(model_dir, exist_ok=True)
    checkpoint = saved_models.save_initialised_checkpoint(params, model_dir)
    export_dir = os.path.join(model_dir, "export")
    _, export_seconds = _elapsed(
        saved_model.export_saved_model, params, export_dir, checkpoint, input_type="image_tensor"
    )
    served, load_seconds = _elapsed(_SavedModelPath, tf, export_dir)
    restored, build_seconds = _elapsed(_CheckpointPath, tf, params, checkpoint)

    rng = np.random.RandomState(0)
    batches = {
        b: rng.randint(0, 256, size=(b, args.image_size, args.image_size, 3)).astype(np.uint8)
        for b in args.batch_sizes
    }
    first = {}
    for name, path in (("saved_model", served), ("checkpoint", restored)):
        _, first[name] = _elapsed(_run, path, batches[args.batch_sizes[0]])
    # The two paths must compute the same detections.
    a, b = (_run(p, batches[args.batch_sizes[0]]) for p in (served, restored))
    max_box_difference = float(np.max(np.abs(a["detection_boxes"] - b["detection_boxes"])))

    lines = [
        f"== {config_name} ({model}, {args.image_size}x{args.image_size})",
        f"export_seconds: {export_seconds:.1f}",
        f"saved_model_load_seconds: {load_seconds:.1f}",
        f"checkpoint_build_and_restore_seconds: {build_seconds:.1f}",
        f"first_batch_seconds: saved_model {first['saved_model']:.2f}, "
        f"checkpoint {first['checkpoint']:.2f} (batch {args.batch_sizes[0]})",
        f"max_box_difference_px: {max_box_difference:.2e}",
    ]
    for batch_size in args.batch_sizes:
        images = batches[batch_size]
        _run(served, images)
        _run(restored, images)
        seconds = {"saved_model": [], "checkpoint": []}
        cpu = {"saved_model": 0.0, "checkpoint": 0.0}
        for _ in range(args.iterations):
            for name, path in (("saved_model", served), ("checkpoint", restored)):
                cpu_start = time.process_time()
                _, elapsed = _elapsed(_run, path, images)
                cpu[name] += time.process_time() - cpu_start
                seconds[name].append(elapsed)
        for name in seconds:
            median = statistics.median(seconds[name])
            lines.append(
                f"batch {batch_size} {name}: {median:.4f} s/batch median, "
                f"{batch_size / median:.2f} images/s, "
                f"{cpu[name] / args.iterations:.2f} CPU s/batch"
            )
    served.sess.close()
    restored.sess.close()
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--configs",
        default="retinanet_r50_fpn_coco,spinenet49S_retinanet,mask_rcnn_r50_fpn_coco",
        help="comma-separated shipped config names or YAML paths",
    )
    parser.add_argument("--params_override", default=None, help="as in main.py, for every config")
    parser.add_argument("--image_size", type=int, default=640)
    parser.add_argument("--batch_sizes", default="1,8")
    parser.add_argument("--iterations", type=int, default=3, help="timed batches per size")
    parser.add_argument("--matmul_size", type=int, default=2048)
    parser.add_argument("--work_dir", default="", help="for checkpoints and exports (temp)")
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        for name in args.configs.split(","):
            resolve_config(name)
    except (ValueError, BenchmarkArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    import tensorflow.compat.v1 as tf

    from official.detection import tf_compat

    tf.logging.set_verbosity(tf.logging.ERROR)
    if hasattr(tf, "disable_tensor_equality"):
        tf.disable_tensor_equality()
    print(describe_machine(os.cpu_count(), tf_compat.onednn_enabled()))
    best, median = matmul_gflops(None, args.matmul_size, 5)
    print(
        f"matmul_gflop_per_s: {best:.1f} best, {median:.1f} median "
        f"(float32 {args.matmul_size}^3 tf.matmul, default threads)"
    )
    print(f"tensorflow: {tf.__version__}")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="benchmark_inference_")
    with tf_compat.quiet_deprecations():
        for name in args.configs.split(","):
            for line in benchmark_model(tf, args, name, work_dir):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
