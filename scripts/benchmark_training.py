"""Times training steps and evaluation of a detector on a fixed number of CPU cores.

The model is the config's `type` built by `modeling/factory.build_model`; `--config` is
a YAML path or the name of a shipped YAML (`spinenet49S_retinanet`), `--model` alone
uses that model's defaults.

  python scripts/benchmark_training.py \
      --config official/detection/configs/retinanet/retinanet_r50_fpn_coco.yaml \
      --image_size 256 --batch_size 2 --steps 20 --warmup 5 --cores 2

Input: a small shapes dataset is written and run through the config's real parser; the
first parsed batches are kept in memory and repeated, so decoding, augmentation and
anchor targets are NOT part of the timed steps (scripts/benchmark_input_pipeline.py
measures those).

FLOPs: the TensorFlow profiler (`float_operation`, multiply-add = 2 FLOPs) counts the
ops a fetch depends on. It has counts for Conv2D, Conv2DBackpropInput,
Conv2DBackpropFilter, MatMul and element-wise ops, so the training graph is counted as
it is, backward pass included (frozen layers have no backward ops and are not counted);
3 x the forward (predict graph) count is printed next to it. Batch norm, pooling and ops
inside loops have no count. The count is taken on the graph with TensorFlow's direct
convolutions even when the timed graph uses the CPU kernels (Winograd does fewer
multiplies for the same result; its own count is printed as "as run"), so rates compare
across kernels. Achieved FLOP/s = training-step FLOPs / median step time,
compared with the best fp32 rate of a large `tf.matmul` timed in the same process with
the same thread settings.
"""

import argparse
import glob
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings

from official.detection.executor import placement

CONFIG_ROOT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "official", "detection", "configs"
)
TRAIN, PREDICT = "train", "infer"  # tf.estimator.ModeKeys values


class BenchmarkArgumentError(ValueError):
    """A command-line value the benchmark cannot use."""


def shipped_configs():
    """{name: path} of every YAML under official/detection/configs."""
    paths = glob.glob(os.path.join(CONFIG_ROOT, "**", "*.yaml"), recursive=True)
    return {os.path.splitext(os.path.basename(p))[0]: p for p in sorted(paths)}


def resolve_config(name_or_path):
    """The YAML path of `--config`: an existing file, or the name of a shipped YAML."""
    if os.path.isfile(name_or_path):
        return name_or_path
    configs = shipped_configs()
    name = os.path.splitext(os.path.basename(name_or_path))[0]
    if name not in configs:
        raise BenchmarkArgumentError(
            f"--config: {name_or_path!r} is neither a file nor a shipped config; "
            f"shipped: {sorted(configs)}"
        )
    return configs[name]


def resolve_model(config_file, requested):
    """`--model` if given, else the YAML's `type`, else 'retinanet' (the schema default)."""
    import yaml

    declared = None
    if config_file:
        with open(config_file) as f:
            declared = (yaml.safe_load(f) or {}).get("type")
    # --model=faster_rcnn is a mask_rcnn config with the mask branch off (main.py's rule).
    compatible = requested == "faster_rcnn" and declared == "mask_rcnn"
    if requested and declared and requested != declared and not compatible:
        raise BenchmarkArgumentError(
            f"--model: {requested!r} but {config_file} declares type {declared!r}; "
            "drop --model or pick a config of that type"
        )
    return requested or declared or "retinanet"


def load_params(args, config_file, model, records):
    """The config with the benchmark's image size, batch sizes and data files forced."""
    from official.detection.configs.loader import Forced, load_config

    # The probe only names the parser section; its config warnings would print twice.
    config_logger = logging.getLogger("official.detection.configs")
    level = config_logger.level
    config_logger.setLevel(logging.ERROR)
    try:
        probe = load_config(model, config_file, args.params_override)
    finally:
        config_logger.setLevel(level)
    forced = {
        f"{probe.architecture.parser}.output_size": Forced(
            [args.image_size, args.image_size], "--image_size"
        ),
        "train.train_batch_size": Forced(args.batch_size, "--batch_size"),
        "eval.eval_batch_size": Forced(args.batch_size, "--batch_size"),
        "train.train_file_pattern": Forced(records["train_file_pattern"], "--data_dir"),
        "eval.eval_file_pattern": Forced(records["eval_file_pattern"], "--data_dir"),
        # Random weights: no warm start from a checkpoint that may not exist here.
        "train.checkpoint.path": Forced("", "--config"),
    }
    return load_config(model, config_file, args.params_override, forced)


def cache_batches(params, mode, num_batches, session_config):
    """The first `num_batches` batches of the config's input pipeline, as NumPy."""
    import tensorflow.compat.v1 as tf

    from official.detection.dataloader import factory as data_factory

    with tf.Graph().as_default():
        dataset = data_factory.input_fn_generator(params, mode, eval_batch_mode="drop")()
        next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
        with tf.Session(config=session_config) as sess:
            return [sess.run(next_batch) for _ in range(num_batches)]


def repeat_cached(batches):
    """(features, labels) tensors cycling through `batches`, with fully static shapes."""
    import tensorflow.compat.v1 as tf

    dataset = tf.data.Dataset.from_tensors(batches[0])
    for batch in batches[1:]:
        dataset = dataset.concatenate(tf.data.Dataset.from_tensors(batch))
    return tf.data.make_one_shot_iterator(dataset.repeat()).get_next()


def build_graph(params, batches, mode, cpu_kernels):
    """The model_fn graph of `mode` on cached batches.

    Returns (graph, fetches, seconds in model_fn); fetches is the train op in training
    and the prediction dict (post-processing included) otherwise.
    """
    import tensorflow.compat.v1 as tf

    from official.detection.modeling import factory as model_factory
    from official.detection.modeling.layers import cpu_kernels as cpu_kernels_lib

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        images, labels = repeat_cached(batches)
        model_fn = model_factory.build_model(params).model_fn
        if cpu_kernels:
            model_fn = cpu_kernels_lib.wrap_model_fn(model_fn)
        start = time.perf_counter()
        if mode == TRAIN:
            fetches = model_fn(images, labels, mode, None).train_op
        else:
            features = {"images": images, "labels": labels}
            fetches = model_fn(features, None, mode, None).predictions
        build_seconds = time.perf_counter() - start
    return graph, fetches, build_seconds


def count_flops(graph, fetches):
    """FLOPs of the ops `fetches` depend on, per the profiler's registered statistics."""
    import tensorflow.compat.v1 as tf

    names = [t.op.name if hasattr(t, "op") else t.name for t in tf.nest.flatten(fetches)]
    sub_graph_def = tf.graph_util.extract_sub_graph(graph.as_graph_def(), names)
    with tf.Graph().as_default() as counted:
        tf.import_graph_def(sub_graph_def, name="")
        options = (
            tf.profiler.ProfileOptionBuilder(tf.profiler.ProfileOptionBuilder.float_operation())
            .with_empty_output()
            .build()
        )
        return tf.profiler.profile(counted, options=options).total_float_ops


def count_parameters(graph, frozen_variable_prefix):
    """(model parameters, parameters the optimizer updates) of a training graph."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    from official.detection.modeling import base_model

    with graph.as_default():
        weights = tf.trainable_variables()
    trained = base_model.select_trainable_variables(weights, frozen_variable_prefix)

    def total(variables):
        return sum(int(np.prod(v.shape.as_list())) for v in variables)

    return total(weights), total(trained)


def time_runs(sess, fetches, steps, warmup):
    """Wall seconds of each of `steps` runs after `warmup` untimed ones, and the
    process CPU seconds per run."""
    for _ in range(warmup):
        sess.run(fetches)
    seconds = []
    cpu_start = time.process_time()
    for _ in range(steps):
        start = time.perf_counter()
        sess.run(fetches)
        seconds.append(time.perf_counter() - start)
    return seconds, (time.process_time() - cpu_start) / steps


def matmul_gflops(session_config, size, steps):
    """(best, median) GFLOP/s of a float32 [size, size] x [size, size] tf.matmul."""
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():
        a = tf.Variable(tf.random_normal([size, size], seed=1))
        b = tf.Variable(tf.random_normal([size, size], seed=2))
        product = tf.matmul(a, b).op
        with tf.Session(config=session_config) as sess:
            sess.run(tf.global_variables_initializer())
            seconds, _ = time_runs(sess, product, steps, warmup=2)
    flop = 2.0 * size**3
    return flop / min(seconds) / 1e9, flop / statistics.median(seconds) / 1e9


def describe_machine(cores, onednn_enabled):
    model = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    allocator = "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "default"
    return (
        f"machine: nproc={os.cpu_count()} cpu='{model}' cores_used={cores} "
        f"onednn={'on' if onednn_enabled else 'off'} allocator={allocator}"
    )


def run(args):
    config_file = resolve_config(args.config) if args.config else None
    model = resolve_model(config_file, args.model)
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        if args.cores > len(available):
            raise BenchmarkArgumentError(
                f"--cores: {args.cores} but only {len(available)} cores are usable"
            )
        os.sched_setaffinity(0, available[: args.cores])
    if args.onednn != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow.compat.v1 as tf

    from official.detection import tf_compat
    from official.detection.testing import shapes_records

    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed")
    tf.disable_eager_execution()
    tf.logging.set_verbosity(tf.logging.ERROR)
    # As main.py resolves it for a CPU run.
    cpu_kernels, _ = placement.resolve_cpu_kernels(args.cpu_kernels, "cpu")
    session_config = tf.ConfigProto(
        intra_op_parallelism_threads=args.cores,
        inter_op_parallelism_threads=args.inter_op_threads or args.cores,
    )
    grappler, _ = placement.resolve_grappler(args.grappler, "cpu", "fp32")
    session_config.graph_options.rewrite_options.disable_meta_optimizer = not grappler
    num_batches = -(-args.cached_images // args.batch_size)
    records = shapes_records.write_shapes_records(
        args.data_dir or tempfile.mkdtemp(prefix="benchmark_training_"),
        num_train=num_batches * args.batch_size,
        num_val=num_batches * args.batch_size,
        image_size=args.image_size,
    )
    params = load_params(args, config_file, model, records)

    print(f"config: {config_file or 'defaults'} (type {params.type})")
    print(describe_machine(args.cores, tf_compat.onednn_enabled()))
    print(
        f"setting: image_size={args.image_size} batch_size={args.batch_size} "
        f"intra_op_threads={args.cores} inter_op_threads={args.inter_op_threads or args.cores} "
        f"tf={tf.__version__} kernels={'cpu' if cpu_kernels else 'tensorflow'} "
        f"(--cpu_kernels={args.cpu_kernels}) grappler={'on' if grappler else 'off'} "
        f"(--grappler={args.grappler})"
    )
    print(f"input: {num_batches} parsed batch(es) cached in memory and repeated; not timed")
    peak = max(matmul_gflops(session_config, args.matmul_size, args.matmul_steps))
    results = {}
    for mode in [TRAIN] + ([] if args.skip_eval else [PREDICT]):
        batches = cache_batches(params, mode, num_batches, session_config)
        graph, fetches, build_seconds = build_graph(params, batches, mode, cpu_kernels)
        with graph.as_default(), tf.Session(config=session_config) as sess:
            sess.run(tf.global_variables_initializer())
            load = os.getloadavg()[0]
            if mode == TRAIN:
                seconds, cpu = time_runs(sess, fetches, args.steps, args.warmup)
            else:
                seconds, cpu = time_runs(sess, fetches, args.eval_steps, args.eval_warmup)
        flops_as_run = count_flops(graph, fetches)
        if not cpu_kernels:
            flops = flops_as_run
        else:
            # The work measure is that of direct convolutions, so that rates compare
            # across kernels: Winograd does fewer multiplies for the same result.
            flops = count_flops(*build_graph(params, batches, mode, cpu_kernels=False)[:2])
        results[mode] = dict(
            graph=graph,
            flops=flops,
            flops_as_run=flops_as_run,
            seconds=seconds,
            median=statistics.median(seconds),
            cpu=cpu,
            build=build_seconds,
            load=(load, os.getloadavg()[0]),
        )
    best, median_rate = matmul_gflops(session_config, args.matmul_size, args.matmul_steps)
    peak = max(peak, best)
    report(args, params, results, peak, median_rate)
    if args.real_steps:
        report_real(args, run_real(args, params), results[TRAIN])
    return results[TRAIN]["median"]


def make_step_timer():
    """A SessionRunHook noting when the graph is built, the session ready, each step
    done (wall and process CPU time) and the hooks ended."""
    import tensorflow.compat.v1 as tf

    class StepTimer(tf.train.SessionRunHook):
        def __init__(self):
            self.marks = {}
            self.step_ends = []
            self.step_cpu = []

        def begin(self):
            self.marks["graph_built"] = time.perf_counter()

        def after_create_session(self, session, coord):
            self.marks["session_ready"] = time.perf_counter()

        def after_run(self, run_context, run_values):
            self.step_ends.append(time.perf_counter())
            self.step_cpu.append(time.process_time())

        def end(self, session):
            self.marks["hooks_ended"] = time.perf_counter()

    return StepTimer()


def run_real(args, params):
    """Trains as `main.py --mode=train` does (TFRecords through the training input
    pipeline, the executor's hooks, summaries and checkpoints) for warm-up + steps
    steps; returns the StepTimer and the seconds of the whole run."""
    import tensorflow.compat.v1 as tf

    from official.detection import tf_compat
    from official.detection.configs.loader import Forced, load_config
    from official.detection.executor import runner

    model_dir = tempfile.mkdtemp(prefix="benchmark_training_real_")
    forced = {
        "model_dir": Forced(model_dir, "--real_steps"),
        "train.total_steps": Forced(args.warmup + args.real_steps + 1, "--real_steps"),
    }
    real = load_config(params.type, None, params.to_yaml(), forced)
    hook = make_step_timer()
    # On 1.15 TensorFlow's logger has its own handler and, outside absl's app.run,
    # the root logger one too: each training log line would print twice.
    tf_logger = logging.getLogger("tensorflow")
    if tf_logger.handlers and logging.getLogger().handlers:
        tf_logger.propagate = False
    start = time.perf_counter()
    with tf_compat.quiet_deprecations():
        runner.run(
            real,
            mode="train",
            device="cpu",
            cpu_kernels=args.cpu_kernels,
            grappler=args.grappler,
            train_hooks=[hook],
        )
    hook.marks["returned"] = time.perf_counter()
    hook.marks["start"] = start
    tf.logging.set_verbosity(tf.logging.ERROR)
    return hook


def report_real(args, timer, isolated):
    marks = timer.marks
    ends, cpu = timer.step_ends, timer.step_cpu
    # Steps 2.. are the intervals between step ends; the first `warmup` are left out.
    seconds = [b - a for a, b in zip(ends, ends[1:])][args.warmup :]
    cpu_seconds = [b - a for a, b in zip(cpu, cpu[1:])][args.warmup :]
    median = statistics.median(seconds)
    first = ends[0] - marks["session_ready"]
    print(
        f"real_train_step_s: median {median:.3f} min {min(seconds):.3f} max {max(seconds):.3f} "
        f"over {len(seconds)} steps after {args.warmup + 1} warm-up (main.py training: "
        "TFRecords, input pipeline, hooks, summaries, checkpoints)"
    )
    print(
        f"real_vs_isolated: {median / isolated['median']:.2f}x wall "
        f"({median:.3f} / {isolated['median']:.3f} s), "
        f"{statistics.mean(cpu_seconds) / isolated['cpu']:.2f}x CPU "
        f"({statistics.mean(cpu_seconds):.3f} / {isolated['cpu']:.3f} CPU s/step)"
    )
    print(
        f"real_graph_build_s: {marks['graph_built'] - marks['start']:.2f} "
        f"(run start to graph built; isolated model_fn {isolated['build']:.2f})"
    )
    print(f"real_session_s: {marks['session_ready'] - marks['graph_built']:.2f} (create, init)")
    print(f"real_first_step_s: {first:.2f} ({first / median:.1f}x the median step)")
    print(
        f"real_end_of_run_s: {marks['returned'] - ends[-1]:.2f} (last step to return: "
        f"final checkpoint, hooks' end {marks['hooks_ended'] - ends[-1]:.2f}, session close)"
    )


def report(args, params, results, peak, matmul_median):
    train = results[TRAIN]
    median = train["median"]
    total_params, trained_params = count_parameters(
        train["graph"], params.train.frozen_variable_prefix
    )
    print(f"parameters: {total_params} (updated by the optimizer: {trained_params})")
    print(f"graph_build_s: {train['build']:.2f} (model_fn, training graph)")
    print(
        f"train_step_s: median {median:.3f} min {min(train['seconds']):.3f} "
        f"max {max(train['seconds']):.3f} over {args.steps} steps after {args.warmup} warm-up"
    )
    # On a shared machine wall time grows with the other jobs; CPU seconds much less.
    print(
        f"train_step_cpu_s: {train['cpu']:.3f} (process CPU time per step, all threads; "
        f"{train['cpu'] / median / args.cores:.0%} of {args.cores} core(s) busy)"
    )
    print(f"train_images_per_s: {args.batch_size / median:.2f}")
    print(
        f"train_step_gflop: {train['flops'] / 1e9:.2f} "
        "(profiler on the training graph with direct convolutions, backward included; "
        f"{train['flops_as_run'] / 1e9:.2f} as run)"
    )
    if PREDICT in results:
        predict = results[PREDICT]
        print(
            f"forward_gflop: {predict['flops'] / 1e9:.2f} "
            f"(predict graph; 3 x forward = {3 * predict['flops'] / 1e9:.2f})"
        )
        print(
            f"eval_images_per_s: {args.batch_size / predict['median']:.2f} (predict + "
            f"post-processing, median {predict['median']:.3f} s per batch of {args.batch_size} "
            f"over {args.eval_steps}; load {predict['load'][0]:.2f} -> {predict['load'][1]:.2f})"
        )
    achieved = train["flops"] / median / 1e9
    print(
        f"matmul_gflop_per_s: {peak:.1f} best, {matmul_median:.1f} median "
        f"(float32 {args.matmul_size}^3 tf.matmul, same threads)"
    )
    print(f"train_gflop_per_s: {achieved:.1f} ({achieved / peak:.0%} of the best matmul rate)")
    print(f"load_average: {train['load'][0]:.2f} -> {train['load'][1]:.2f} during training steps")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="YAML path or shipped config name")
    parser.add_argument("--model", default=None, help="model type; default: the YAML's type")
    parser.add_argument("--params_override", default=None, help="as in main.py")
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    parser.add_argument("--eval_steps", type=int, default=10, help="timed predict batches")
    parser.add_argument("--eval_warmup", type=int, default=2)
    parser.add_argument("--skip_eval", action="store_true")
    parser.add_argument(
        "--cpu_kernels",
        choices=placement.CPU_KERNELS,
        default="auto",
        help="as main.py --cpu_kernels on a CPU run: auto and on use the CPU kernels "
        "(modeling/layers/cpu_kernels.py), off TensorFlow's own",
    )
    parser.add_argument(
        "--grappler",
        choices=placement.GRAPPLER,
        default="auto",
        help="as main.py --grappler on a CPU run: TensorFlow's graph optimiser (auto: off)",
    )
    parser.add_argument("--cores", type=int, default=2, help="intra-op threads and CPU affinity")
    parser.add_argument("--inter_op_threads", type=int, default=0, help="0: --cores")
    parser.add_argument("--cached_images", type=int, default=4)
    parser.add_argument(
        "--real_steps",
        type=int,
        default=0,
        help="also train as main.py does for --warmup + 1 + this many steps and compare",
    )
    parser.add_argument("--matmul_size", type=int, default=2048)
    parser.add_argument("--matmul_steps", type=int, default=5)
    parser.add_argument("--onednn", choices=["default", "on", "off"], default="default")
    parser.add_argument("--data_dir", default="", help="where to write the shapes records")
    args = parser.parse_args(argv)
    if not args.config and not args.model:
        raise BenchmarkArgumentError("give --config (a YAML path or name) or --model")
    for name in ("image_size", "batch_size", "steps", "eval_steps", "cores", "cached_images"):
        if getattr(args, name) < 1:
            raise BenchmarkArgumentError(f"--{name}: must be >= 1; got {getattr(args, name)}")
    return args


def main(argv=None):
    try:
        run(parse_args(argv))
    except (ValueError, TypeError) as error:
        print(f"benchmark_training: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
