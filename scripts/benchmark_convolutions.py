"""Times one convolution layer with TensorFlow's kernels and with the CPU kernels.

For each shape (batch, height, width, in channels, out channels; 'SAME'; 3x3,
stride 1 unless --kernel_size / --strides say otherwise), the forward pass and the
gradients of both inputs are timed with `tf.nn.conv2d` and inside `cpu_kernels()`,
in one process with the same threads, alternating the two so that load on the
machine hits both alike. Each row says which CPU kernels the layer got: Winograd,
GEMM filter gradient, GEMM input gradient (only where TensorFlow's CPU kernels are
Eigen's, e.g. TensorFlow 1.15; the first line says whether oneDNN is on), or
none (TensorFlow's).

  python scripts/benchmark_convolutions.py --shapes 2x32x32x256x256,2x8x8x256x256
  python scripts/benchmark_convolutions.py --shapes 2x16x16x1024x256 --kernel_size 1

`--input_gradient` times the input gradient op alone instead: TensorFlow's
`Conv2DBackpropInput` against the GEMM or forward convolution that
`conv_gradients.gemm_input_gradient` builds for it, also above its channel bound
(whatever the kernels of this TensorFlow), and says whether the CPU kernels use it
for that layer where they replace Eigen's ("used", "kept": above the bound, "none":
no such form).
"""

import argparse
import os
import statistics
import sys
import time

DEFAULT_SHAPES = (
    "2x32x32x256x256,2x32x32x256x819,2x16x16x256x256,2x16x16x256x819,"
    "2x8x8x256x256,2x32x32x128x128,2x64x64x64x64"
)


class ShapeError(ValueError):
    pass


def parse_shapes(text):
    shapes = []
    for item in text.split(","):
        parts = item.strip().split("x")
        if len(parts) != 5 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ShapeError(
                f"--shapes: {item!r} is not BxHxWxCINxCOUT with positive integers, "
                "e.g. 2x32x32x256x256"
            )
        shapes.append(tuple(int(p) for p in parts))
    return shapes


def _kinds(winograd, op_types):
    if winograd:
        return "winograd"
    kinds = []
    if "Conv2DBackpropFilter" not in op_types:
        kinds.append("gemm filter gradient")
    if "Conv2DBackpropInput" not in op_types:
        kinds.append("gemm input gradient")
    return ", ".join(kinds) or "tensorflow's"


def time_layer(shape, cores, repeats, kernel_size=3, strides=1):
    """{kernels: (forward ms, backward ms)} and which CPU kernels the layer got."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    from official.detection.modeling.layers import cpu_kernels, functional

    batch, height, width, channels, filters = shape
    graphs = {}
    for name, enabled in (("tensorflow", False), ("cpu", True)):
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(0)
            inputs = tf.Variable(tf.random.normal([batch, height, width, channels]))
            with cpu_kernels.cpu_kernels(enabled):
                winograd = cpu_kernels.use_winograd(
                    inputs, (kernel_size,) * 2, (strides,) * 2, "same", "channels_last"
                )
                outputs = functional.conv2d(
                    inputs, filters, kernel_size, strides, padding="same", use_bias=False
                )
                kernel = tf.trainable_variables()[-1]
                weights = tf.constant(np.random.RandomState(0).randn(*outputs.shape).astype("f"))
                grads = tf.gradients(tf.reduce_sum(outputs * weights), [inputs, kernel])
            fetches = (tf.reduce_sum(outputs), tf.add_n([tf.reduce_sum(g) for g in grads]))
            config = tf.ConfigProto(
                intra_op_parallelism_threads=cores, inter_op_parallelism_threads=cores
            )
            sess = tf.Session(config=config)
            sess.run(tf.global_variables_initializer())
            for fetch in fetches:
                sess.run(fetch)
            kinds = _kinds(winograd, {op.type for op in graph.get_operations()})
            graphs[name] = (sess, fetches, kinds)
    times = {name: ([], []) for name in graphs}
    for _ in range(repeats):
        for name, (sess, fetches, _) in graphs.items():
            for i, fetch in enumerate(fetches):
                start = time.perf_counter()
                sess.run(fetch)
                times[name][i].append(time.perf_counter() - start)
    for sess, _, _ in graphs.values():
        sess.close()
    result = {name: tuple(1e3 * statistics.median(t) for t in pair) for name, pair in times.items()}
    return result, graphs["cpu"][2]


def time_input_gradient(shape, cores, repeats, kernel_size=3, strides=1):
    """(TensorFlow's ms, GEMM ms or None, whether the CPU kernels use the GEMM form)
    for the input gradient op alone."""
    import tensorflow.compat.v1 as tf

    from official.detection.modeling.layers import conv_gradients

    batch, height, width, channels, filters = shape
    out_h, out_w = -(-height // strides), -(-width // strides)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        kernel = tf.Variable(tf.random.normal([kernel_size, kernel_size, channels, filters]))
        output_gradient = tf.Variable(tf.random.normal([batch, out_h, out_w, filters]))
        input_shape = [batch, height, width, channels]
        candidates = {
            "tensorflow": tf.nn.conv2d_backprop_input(
                input_shape, kernel, output_gradient, [1, strides, strides, 1], "SAME"
            ),
            "gemm": conv_gradients.gemm_input_gradient(
                output_gradient, kernel, input_shape, (strides, strides), "SAME", max_channels=None
            ),
        }
        used = conv_gradients.gemm_input_gradient(
            output_gradient, kernel, input_shape, (strides, strides), "SAME"
        )
        fetches = {name: tf.reduce_sum(t) for name, t in candidates.items() if t is not None}
        config = tf.ConfigProto(
            intra_op_parallelism_threads=cores, inter_op_parallelism_threads=cores
        )
        with tf.Session(config=config) as sess:
            sess.run(tf.global_variables_initializer())
            times = {name: [] for name in fetches}
            for _ in range(repeats + 2):
                for name, fetch in fetches.items():
                    start = time.perf_counter()
                    sess.run(fetch)
                    times[name].append(time.perf_counter() - start)
    medians = {name: 1e3 * statistics.median(t[2:]) for name, t in times.items()}
    return medians["tensorflow"], medians.get("gemm"), used is not None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="BxHxWxCINxCOUT,...")
    parser.add_argument("--kernel_size", type=int, default=3, choices=range(1, 8))
    parser.add_argument("--strides", type=int, default=1, choices=(1, 2))
    parser.add_argument(
        "--input_gradient", action="store_true", help="time the input gradient op alone"
    )
    parser.add_argument("--cores", type=int, default=2, help="intra- and inter-op threads")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        shapes = parse_shapes(args.shapes)
    except ShapeError as error:
        print(error, file=sys.stderr)
        return 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow.compat.v1 as tf

    from official.detection import tf_compat

    tf.disable_eager_execution()
    print(
        f"kernel {args.kernel_size}x{args.kernel_size}, stride {args.strides}, 'SAME'; "
        f"oneDNN {'on' if tf_compat.onednn_enabled() else 'off'}"
    )
    if args.input_gradient:
        print("shape (BxHxWxCINxCOUT) | input gradient ms: tf / gemm | cpu kernels")
        for shape in shapes:
            tf_ms, gemm_ms, used = time_input_gradient(
                shape, args.cores, args.repeats, args.kernel_size, args.strides
            )
            gemm = "none" if gemm_ms is None else f"{gemm_ms:.2f}"
            use = "none" if gemm_ms is None else ("used" if used else "kept")
            print(f"{'x'.join(map(str, shape))} | {tf_ms:.2f} / {gemm} | {use}", flush=True)
        return 0
    print("shape (BxHxWxCINxCOUT) | kernel | forward ms: tf / cpu | gradients ms: tf / cpu")
    for shape in shapes:
        result, kind = time_layer(shape, args.cores, args.repeats, args.kernel_size, args.strides)
        tf_fwd, tf_bwd = result["tensorflow"]
        cpu_fwd, cpu_bwd = result["cpu"]
        print(
            f"{'x'.join(map(str, shape))} | {kind} | {tf_fwd:.1f} / {cpu_fwd:.1f} | "
            f"{tf_bwd:.1f} / {cpu_bwd:.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
