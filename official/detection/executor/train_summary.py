"""Machine-readable training summaries: one JSON file per process, and their aggregate.

Every training process (each Ascend rank, each TF_CONFIG worker, or the single process
of a one-machine run) writes `<model_dir>/train_summary/rank_<k>.json` when its training
ends (see train_summary_hook.py). `aggregate` combines them into
`<model_dir>/train_summary.json`; the launch scripts read their figures from it with

    python -m official.detection.executor.train_summary --model_dir=DIR --format=shell

Throughput counts the images of all devices of all processes: training is synchronous,
so every process runs the same steps per second, and images/s = global batch x the mean
of the processes' steps per second, measured after warm-up. `seconds_per_step` is the
inverse of that mean rate. The loss is the mean over processes of each one's last
recorded loss (on Ascend each rank reports the loss of its own shard; under a
tf.distribute strategy the loss is already averaged over replicas). No TensorFlow here:
the scripts call this after training.
"""

import argparse
import glob
import json
import os
import re
import sys

from official.detection.atomic_file import write_atomically

SUMMARY_DIR = "train_summary"
AGGREGATE_FILE = "train_summary.json"


class SummaryError(ValueError):
    """No usable summary in a model_dir."""


def rank_summary_path(model_dir, rank):
    return os.path.join(model_dir, SUMMARY_DIR, f"rank_{rank}.json")


def write_json(path, data):
    """Writes `data` as JSON (no half files, see atomic_file); returns `path`."""
    return write_atomically(path, json.dumps(data, indent=1, sort_keys=True))


def read_rank_summaries(model_dir):
    """The per-process summaries in model_dir, sorted by rank."""
    summaries = []
    for path in glob.glob(os.path.join(model_dir, SUMMARY_DIR, "rank_*.json")):
        with open(path, encoding="utf-8") as stream:
            summaries.append(json.load(stream))
    return sorted(summaries, key=lambda s: s["rank"])


def latest_eval_metrics(model_dir):
    """(step, metrics) of the newest `<model_dir>/eval/metrics_<step>.json`, or None."""
    found = []
    for path in glob.glob(os.path.join(model_dir, "eval", "metrics_*.json")):
        match = re.search(r"metrics_(\d+)\.json$", path)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        return None
    step, path = max(found)
    with open(path, encoding="utf-8") as stream:
        return step, json.load(stream)


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def aggregate(model_dir):
    """Combines the per-process summaries of model_dir (see the module docstring).

    Raises:
      SummaryError: model_dir holds no per-process summary.
    """
    ranks = read_rank_summaries(model_dir)
    if not ranks:
        raise SummaryError(
            f"no training summary in {os.path.join(model_dir, SUMMARY_DIR)!r}: did training "
            "run (a run that resumes at its last step trains nothing)?"
        )
    rate = _mean([r["steps_per_second"] for r in ranks])
    global_batch = ranks[0]["global_batch_size"]
    evaluation = latest_eval_metrics(model_dir)
    return {
        "ranks_found": len(ranks),
        "rank_size": ranks[0]["rank_size"],
        "num_replicas": ranks[0]["num_replicas"],
        "device": ranks[0]["device"],
        "precision": ranks[0]["precision"],
        "precision_mode": ranks[0].get("precision_mode"),
        "global_batch_size": global_batch,
        "replica_batch_size": ranks[0]["replica_batch_size"],
        "last_step": max(r["last_step"] for r in ranks),
        "measured_steps": min(r["measured_steps"] for r in ranks),
        "images_per_second": None if rate is None else global_batch * rate,
        "seconds_per_step": None if not rate else 1.0 / rate,
        "final_loss": _mean([r["final_loss"] for r in ranks]),
        "train_seconds": max(r["train_seconds"] for r in ranks),
        "eval_step": evaluation[0] if evaluation else None,
        "AP": evaluation[1].get("AP") if evaluation else None,
    }


SHELL_FIELDS = (
    ("fps", "images_per_second"),
    ("seconds_per_step", "seconds_per_step"),
    ("loss", "final_loss"),
    ("accuracy", "AP"),
    ("ranks_found", "ranks_found"),
    ("rank_size", "rank_size"),
    ("num_replicas", "num_replicas"),
    ("device", "device"),
)


def format_shell(summary):
    """`key=value` lines for shell scripts; unknown values print as 'None'."""
    lines = []
    for key, field in SHELL_FIELDS:
        value = summary.get(field)
        if isinstance(value, float):
            value = f"{value:.4f}" if key != "loss" else f"{value:.6f}"
        lines.append(f"{key}={value}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--format", choices=("json", "shell"), default="json")
    args = parser.parse_args(argv)
    try:
        summary = aggregate(args.model_dir)
    except SummaryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json(os.path.join(args.model_dir, AGGREGATE_FILE), summary)
    if args.format == "shell":
        print(format_shell(summary))
    else:
        print(json.dumps(summary, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
