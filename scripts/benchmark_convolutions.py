"""Times one convolution layer with TensorFlow's kernels and with the CPU kernels.

For each shape (batch, height, width, in channels, out channels; 3x3, stride 1,
'SAME'), the forward pass and the gradients of both inputs are timed with
`tf.nn.conv2d` and inside `cpu_kernels()` (Winograd where that module would
use it, else the GEMM filter gradient), in one process with the same threads,
alternating the two so that load on the machine hits both alike.

  python scripts/benchmark_convolutions.py --shapes 2x32x32x256x256,2x8x8x256x256
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


def time_layer(shape, cores, repeats):
    """{kernels: (forward ms, backward ms)} and whether Winograd was used."""
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
                winograd = cpu_kernels.use_winograd(inputs, (3, 3), (1, 1), "same", "channels_last")
                outputs = functional.conv2d(inputs, filters, 3, padding="same", use_bias=False)
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
            graphs[name] = (sess, fetches, winograd)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="BxHxWxCINxCOUT,...")
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

    tf.disable_eager_execution()
    print("shape (BxHxWxCINxCOUT) | kernel | forward ms: tf / cpu | gradients ms: tf / cpu")
    for shape in shapes:
        result, winograd = time_layer(shape, args.cores, args.repeats)
        kind = "winograd" if winograd else "gemm filter gradient"
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
