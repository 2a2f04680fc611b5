"""What the launch scripts in test/ decide in Python: the network's config and model, the
device, the ranks to start, the main.py command, and the summary file after training.

The scripts (test/common.sh) parse their flags, set each rank's environment, start the
processes and write the logs; they call

    python -m official.detection.executor.launch plan --kind=full --layout=8p ...
    python -m official.detection.executor.launch summary --model_dir=DIR ...

`plan` prints `key=value` lines: `tensorflow=<version>` first, then `device`, `network`,
`first_device`, `rank_size`, `rank_table`, `model_dir`, `fresh_model_dir`, one
`rank=<rank_id> <device_id>` line per Ascend process of this server, and one `arg=<word>`
line per argument of official/detection/main.py. A Python that cannot import TensorFlow
prints nothing and exits 1, so the script can say which interpreter it tried. `summary`
aggregates the processes' training summaries (train_summary.py) into
`<output_dir>/<device id>/<CaseName>.log`.
"""

import argparse
import json
import os
import sys
import time

from official.detection import configs as configs_package
from official.detection.configs import loader, yaml_io
from official.detection.configs.errors import ConfigError
from official.detection.executor import placement, rank_table, train_summary

CONFIG_ROOT = os.path.dirname(os.path.abspath(configs_package.__file__))
DEFAULT_NETWORK = "faster_rcnn_r101_fpn_coco"
NETWORK_ALIASES = {
    "faster_rcnn": "faster_rcnn_r101_fpn_coco",
    "mask_rcnn": "mask_rcnn_r101_fpn_coco",
    "retinanet": "retinanet_r50_fpn_coco",
}
# main.py's --model when a config has no `type`.
DEFAULT_MODEL = "retinanet"
# A config's `type`; Faster R-CNN configs are mask_rcnn ones without the mask branch.
CONFIG_TYPES = ("retinanet", "mask_rcnn")
KINDS = ("full", "performance")
LAYOUTS = ("1p", "8p", "multinodes")
CPU_KERNELS = ("auto", "on", "off")
PERFORMANCE_STEPS = 1000
SUMMARY_KEYS = {"full": "acc", "performance": "perf"}


class LaunchError(ValueError):
    """Launch flags, files or environment that cannot run together."""


def _strip_suffix(name, suffix):
    return name[: -len(suffix)] if name.endswith(suffix) else name


def shipped_configs():
    """{lower-case name: path} of every official/detection/configs/<dir>/<name>.yaml."""
    found = {}
    for directory in sorted(os.listdir(CONFIG_ROOT)):
        folder = os.path.join(CONFIG_ROOT, directory)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".yaml"):
                found[_strip_suffix(name, ".yaml").lower()] = os.path.join(folder, name)
    return found


def find_network_config(network):
    """The config YAML of a --network name, case-insensitive, aliases included."""
    wanted = network.lower()
    wanted = NETWORK_ALIASES.get(wanted, wanted)
    configs = shipped_configs()
    if wanted not in configs:
        names = [_strip_suffix(os.path.basename(path), ".yaml") for path in configs.values()]
        raise LaunchError(
            f"--network={network} is not a shipped config; valid (case-insensitive): "
            + " ".join(list(NETWORK_ALIASES) + names)
        )
    return configs[wanted]


def load_network_config(config_file, ckpt_path=""):
    """(main.py's --model, the loaded Config) of a config file. The model is the file's
    `type`, and Faster R-CNN for a Mask R-CNN config without the mask branch
    (`architecture.include_mask: false`). Loading checks the file as main.py will, with
    the warm-start checkpoint the run gets (so its config warnings are the run's)."""
    model = yaml_io.read_yaml_mapping(config_file).get("type", DEFAULT_MODEL)
    if model not in CONFIG_TYPES:
        raise LaunchError(
            f"type {model!r} is not a model type (file {config_file}); use "
            f"{' or '.join(CONFIG_TYPES)} (Faster R-CNN: mask_rcnn with "
            "architecture.include_mask false)"
        )
    override = {"train": {"checkpoint": {"path": ckpt_path}}} if ckpt_path else None
    params = loader.load_config(model, config_file, params_override=override)
    if model == "mask_rcnn" and not params.architecture.include_mask:
        model = "faster_rcnn"
    return model, params


def fitting_loop_steps(train_steps, iterations_per_loop):
    """The largest divisor of train_steps not above iterations_per_loop: an Ascend session
    run covers iterations_per_loop steps, so they must tile the run."""
    steps = iterations_per_loop
    while steps > 1 and train_steps % steps:
        steps -= 1
    return steps


def precision_flag(device, precision_mode):
    """main.py's --precision off Ascend for an Ascend precision mode; CPUs train in fp32."""
    if device != "cpu" and precision_mode in placement.NPU_MIXED_PRECISION_MODES:
        return "--precision=mixed"
    return "--precision=fp32"


def count_gpus():
    """GPUs TensorFlow sees, as main.py counts them."""
    from official.detection.executor import devices

    return devices.count_gpus()


def detect_device(requested):
    """'auto' as main.py resolves it; an explicit device is left for main.py to check."""
    if requested != "auto":
        return requested
    npu_available = placement.npu_bridge_available()
    num_gpus = 0 if npu_available else count_gpus()
    return placement.resolve_device("auto", npu_available=npu_available, num_gpus=num_gpus)


def find_server_index(servers, host_ips, table_file):
    """Index of the rank table's server whose server_id is one of this host's IPs."""
    for index, server in enumerate(servers):
        if server.server_id in host_ips:
            return index
    raise LaunchError(
        f"no server_id of {table_file} is an address of this host ({' '.join(host_ips)}); "
        "pass --server_index"
    )


def tf_config_workers(environ):
    """Processes of the TF_CONFIG cluster (1 for a one-worker cluster)."""
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        raise LaunchError(
            "multinodes on GPUs/CPUs needs TF_CONFIG (the cluster and this worker); "
            "see configs/README.md"
        )
    try:
        json.loads(text)
    except ValueError:
        raise LaunchError(f"TF_CONFIG is not valid JSON: {text}") from None
    cluster = placement.read_tf_config(environ)
    return 1 if cluster is None else cluster.num_workers


def plan_ranks(args, device, environ):
    """(rank_size, local_devices, [(rank_id, device_id)] of this server, rank table or '')."""
    first = environ.get("ASCEND_DEVICE_ID", "0") or "0"
    if args.layout == "1p":
        return 1, 1, [(0, first)], ""
    if device == "npu":
        return _npu_ranks(args)
    if args.layout == "8p":
        return args.num_devices, args.num_devices, [(0, first)], ""
    local = count_gpus() if device == "gpu" else 1
    return tf_config_workers(environ) * local, local, [(0, first)], ""


def _npu_ranks(args):
    table = args.rank_table_file
    if not os.path.isfile(table):
        raise LaunchError(f"--rank_table_file={table} does not exist")
    servers = rank_table.load_rank_table(table)
    if args.server_index:
        try:
            index = int(args.server_index)
        except ValueError:
            raise LaunchError(f"--server_index={args.server_index} is not an integer") from None
    elif args.layout == "multinodes":
        index = find_server_index(servers, args.host_ips.split(), table)
    else:
        index = 0
    ranks = rank_table.local_ranks(servers, index)
    rank_size = sum(len(server.devices) for server in servers)
    if args.layout == "8p" and rank_size != args.num_devices:
        raise LaunchError(
            f"--rank_table_file={table} lists {rank_size} devices but "
            f"--num_devices={args.num_devices}; give a table with {args.num_devices} devices"
        )
    return rank_size, 1, ranks, table


def main_args(args, *, model, config_file, device, rank_size, local_devices, loop_steps):
    """The arguments of official/detection/main.py for this run."""
    pairs = [
        ("train.train_file_pattern", f"{args.data_path}/train-*"),
        ("eval.eval_file_pattern", f"{args.data_path}/val-*"),
        ("train.train_batch_size", args.batch_size * rank_size),
    ]
    if args.train_steps:
        pairs.append(("train.total_steps", args.train_steps))
    if loop_steps:
        pairs.append(("train.iterations_per_loop", loop_steps))
    if args.ckpt_path:
        pairs.append(("train.checkpoint.path", args.ckpt_path))
    val_json = os.path.join(args.data_path, "annotations", "instances_val2017.json")
    if os.path.isfile(val_json):
        pairs.append(("eval.val_json_file", val_json))
    words = [
        "official/detection/main.py",
        f"--model={model}",
        "--mode=train",
        f"--model_dir={args.model_dir}",
        f"--config_file={config_file}",
        "--params_override=" + ",".join(f"{key}={value}" for key, value in pairs),
        f"--device={device}",
    ]
    if device == "npu":
        words.append(f"--precision_mode={args.precision_mode}")
    else:
        words.append(precision_flag(device, args.precision_mode))
        if args.layout != "multinodes":
            words.append(f"--num_devices={local_devices}")
    if args.kind == "full":
        words.append("--eval_after_training=True")
    if args.cpu_kernels:
        words.append(f"--cpu_kernels={args.cpu_kernels}")
    return words


def plan(args, environ):
    """The `key=value` lines of a run (see the module docstring), without `tensorflow=`."""
    if args.precision_mode not in placement.NPU_PRECISION_MODES:
        raise LaunchError(
            f"--precision_mode={args.precision_mode} is not an Ascend precision mode; "
            f"valid: {', '.join(placement.NPU_PRECISION_MODES)}"
        )
    if args.config_file:
        if not os.path.isfile(args.config_file):
            raise LaunchError(f"--config_file={args.config_file} does not exist")
        config_file = args.config_file
        network = args.network or _strip_suffix(os.path.basename(config_file), ".yaml")
    else:
        network = args.network or DEFAULT_NETWORK
        config_file = find_network_config(network)
    model, params = load_network_config(config_file, args.ckpt_path)
    if args.kind == "performance" and not args.train_steps:
        args.train_steps = PERFORMANCE_STEPS
    loop_steps = None
    if args.train_steps:
        configured = params.train.iterations_per_loop
        loop_steps = fitting_loop_steps(args.train_steps, configured)
        if loop_steps == configured:
            loop_steps = None
        else:
            print(
                f"note: train.iterations_per_loop={loop_steps}: the config's {configured} does "
                f"not divide --train_steps={args.train_steps}",
                file=sys.stderr,
            )
    device = detect_device(args.device)
    if device != "npu":
        print(
            f"note: --precision_mode={args.precision_mode} is an Ascend setting; this {device} "
            f"run uses {precision_flag(device, args.precision_mode)}",
            file=sys.stderr,
        )
    rank_size, local_devices, ranks, table = plan_ranks(args, device, environ)
    first_device = ranks[0][1]
    fresh = not args.model_dir
    if fresh:
        args.model_dir = os.path.join(args.output_dir, str(first_device), "model")
    lines = [
        f"device={device}",
        f"network={network}",
        f"first_device={first_device}",
        f"rank_size={rank_size}",
        f"rank_table={table}",
        f"model_dir={args.model_dir}",
        f"fresh_model_dir={int(fresh)}",
    ]
    if device == "npu":
        lines += [f"rank={rank_id} {device_id}" for rank_id, device_id in ranks]
    words = main_args(
        args,
        model=model,
        config_file=config_file,
        device=device,
        rank_size=rank_size,
        local_devices=local_devices,
        loop_steps=loop_steps,
    )
    for word in words:
        if "\n" in word:
            raise LaunchError(f"a path holds a line break: {word!r}; rename it")
    return lines + [f"arg={word}" for word in words]


def write_case_summary(args, now=None):
    """Writes <output_dir>/<CaseName>.log from the run's training summaries; returns the
    lines for the terminal."""
    try:
        summary = train_summary.aggregate(args.model_dir)
    except train_summary.SummaryError as exc:
        print(f"warning: {exc}", file=sys.stderr)
        summary = {}
    else:
        train_summary.write_json(
            os.path.join(args.model_dir, train_summary.AGGREGATE_FILE), summary
        )
    figures = dict(line.split("=", 1) for line in train_summary.format_shell(summary).splitlines())
    replicas = figures["num_replicas"]
    if replicas == "None":
        replicas = str(args.rank_size)
    case_name = f"{args.network}_bs{args.batch_size}_{replicas}p_{SUMMARY_KEYS[args.kind]}"
    elapsed = int((time.time() if now is None else now) - args.start_time)
    entries = [
        ("Network", args.network),
        ("RankSize", replicas),
        ("BatchSize", args.batch_size),
        ("DeviceType", args.device),
        ("CaseName", case_name),
        ("ActualFPS", figures["fps"]),
        ("TrainingTime", figures["seconds_per_step"]),
        ("ActualLoss", figures["loss"]),
    ]
    if args.kind == "full":
        entries.append(("TrainAccuracy", figures["accuracy"]))
    entries.append(("E2ETrainingTime", elapsed))
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, f"{case_name}.log")
    with open(path, "w", encoding="utf-8") as stream:
        stream.writelines(f"{key} = {value}\n" for key, value in entries)
    return [
        f"Final Performance images/sec : {figures['fps']}",
        f"E2E Training Duration sec : {elapsed}",
        f"summary: {path}",
    ]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.required = True
    run = commands.add_parser("plan", help="the device, ranks and main.py command of a run")
    run.add_argument("--kind", choices=KINDS, required=True)
    run.add_argument("--layout", choices=LAYOUTS, required=True)
    run.add_argument("--data_path", required=True)
    run.add_argument("--device", choices=placement.DEVICES, default="auto")
    run.add_argument("--network", default="")
    run.add_argument("--config_file", default="")
    run.add_argument("--ckpt_path", default="")
    run.add_argument("--precision_mode", default="allow_mix_precision")
    run.add_argument("--batch_size", type=int, default=2)
    run.add_argument("--train_steps", type=int, default=0)
    run.add_argument("--num_devices", type=int, default=1)
    run.add_argument("--output_dir", required=True)
    run.add_argument("--model_dir", default="")
    run.add_argument("--rank_table_file", default="")
    run.add_argument("--server_index", default="")
    run.add_argument("--host_ips", default="")
    run.add_argument("--cpu_kernels", choices=CPU_KERNELS)
    done = commands.add_parser("summary", help="write <output_dir>/<CaseName>.log")
    done.add_argument("--kind", choices=KINDS, required=True)
    done.add_argument("--model_dir", required=True)
    done.add_argument("--output_dir", required=True)
    done.add_argument("--network", required=True)
    done.add_argument("--batch_size", type=int, required=True)
    done.add_argument("--device", required=True)
    done.add_argument("--rank_size", type=int, required=True)
    done.add_argument("--start_time", type=int, required=True)
    return parser


def main(argv=None, environ=None):
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        if args.command == "summary":
            print("\n".join(write_case_summary(args)))
            return 0
        try:
            import tensorflow as tf
        except Exception:  # any failure: the script names the interpreter
            return 1
        print(f"tensorflow={tf.__version__}", flush=True)
        print("\n".join(plan(args, environ)))
    except (
        LaunchError,
        ConfigError,
        placement.DeviceError,
        rank_table.RankTableError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # TensorFlow's start-up logging is noise here; main.py's own run shows it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
