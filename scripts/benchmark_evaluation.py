r"""Times evaluation as users run it: `main.py --mode=eval`, with the time of each stage.

For each config: shapes validation records at --image_size (--num_images images and
their COCO annotation file) and a checkpoint with random weights are written once;
then `official/detection/main.py --mode=eval` runs on them as a new process per
--cpu_kernels choice, the choices alternating for --rounds rounds so that a machine's
slow phases hit each alike. Each run's closing log line gives images/s of the whole
evaluation and its stages: set-up (graph, session, checkpoint), predict (input
pipeline, network and post-processing in the session), results (detections to COCO
results, masks pasted), closing (the end of the input, the session closed), COCO
evaluation (pycocotools), writing.

  python scripts/benchmark_evaluation.py \
      --configs=spinenet49S_retinanet,retinanet_r50_fpn_coco --image_size=640 \
      --num_images=24 --batch_size=2 --cpu_kernels=off,on
  python scripts/benchmark_evaluation.py --configs=mask_rcnn_r50_fpn_coco \
      --image_size=1024 --num_images=12 --batch_size=2 --cpu_kernels=off,on

postprocess.score_threshold is 0 unless --params_override sets it: random weights
score every anchor low, and a threshold would leave the post-processing and COCO
evaluation nothing to do; at 0 every image keeps postprocess.max_total_size
detections, as a trained model's evaluation at COCO's usual 100 per image does.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmark_training import (  # noqa: E402
    BenchmarkArgumentError,
    describe_machine,
    resolve_config,
    resolve_model,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "official", "detection", "main.py")
STAGES = ("set-up", "predict", "results", "closing", "COCO evaluation", "writing")
_CLOSING = re.compile(
    r"Evaluated (\d+) images of .*?: ([0-9.]+) images/s over ([0-9.]+) s \((.*?); "
    r"predict alone ([0-9.]+) images/s\)"
)


def parse_closing_line(log):
    """{'images', 'images_per_s', 'seconds', 'predict_images_per_s', <stage>: seconds}
    from the closing line of a `main.py --mode=eval` log; None without one."""
    match = _CLOSING.search(log)
    if not match:
        return None
    stages = dict(re.findall(r"([A-Za-z -]+?) ([0-9.]+) s(?:, |$)", match.group(4)))
    result = {name.strip(): float(seconds) for name, seconds in stages.items()}
    result.update(
        images=int(match.group(1)),
        images_per_s=float(match.group(2)),
        seconds=float(match.group(3)),
        predict_images_per_s=float(match.group(5)),
    )
    return result


def _override(args, params, records):
    parser = params.architecture.parser
    parts = [
        f"eval.eval_file_pattern={records['eval_file_pattern']}",
        f"eval.val_json_file={records['val_json_file']}",
        f"eval.eval_batch_size={args.batch_size}",
        f"{parser}.output_size=[{args.image_size},{args.image_size}]",
        "postprocess.score_threshold=0.0",
        # The step-0 checkpoint, then no wait for another.
        "eval.eval_timeout=0,eval.min_eval_interval=0",
    ]
    return ",".join(parts + ([args.params_override] if args.params_override else []))


def prepare(args, config_name, work_dir, records):
    """(model, config file, --params_override, model_dir) of a config, with its
    initialised checkpoint written."""
    from official.detection.configs import loader
    from official.detection.testing import saved_models

    config_file = resolve_config(config_name)
    model = resolve_model(config_file, None)
    probe = loader.load_config(model, config_file, args.params_override or None)
    override = _override(args, probe, records)
    params = loader.load_config(model, config_file, override)
    model_dir = os.path.join(work_dir, config_name)
    saved_models.save_initialised_checkpoint(params, model_dir)
    return model, config_file, override, model_dir


def run_eval(model, config_file, override, model_dir, cpu_kernels):
    """One `main.py --mode=eval` process; its parsed closing line and detections count."""
    command = [
        sys.executable,
        MAIN,
        f"--model={model}",
        "--mode=eval",
        f"--model_dir={model_dir}",
        f"--config_file={config_file}",
        f"--params_override={override}",
        f"--cpu_kernels={cpu_kernels}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    parsed = parse_closing_line(result.stderr)
    if result.returncode != 0 or parsed is None:
        raise RuntimeError(
            f"main.py --mode=eval failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    with open(os.path.join(model_dir, "eval", "detections_0.json")) as f:
        parsed["detections_per_image"] = len(json.load(f)) / parsed["images"]
    return parsed


def format_row(config_name, cpu_kernels, run):
    stages = " ".join(f"{run[name]:.1f}" for name in STAGES)
    return (
        f"{config_name} cpu_kernels={cpu_kernels}: {run['images_per_s']:.2f} images/s "
        f"over {run['seconds']:.1f} s, {run['images']} images, "
        f"{run['detections_per_image']:.0f} detections/image; stages s "
        f"(set-up predict results closing COCO writing): {stages}; "
        f"predict alone {run['predict_images_per_s']:.2f} images/s"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="retinanet_r50_fpn_coco")
    parser.add_argument("--params_override", default="", help="as in main.py, for every config")
    parser.add_argument("--image_size", type=int, default=640)
    parser.add_argument("--num_images", type=int, default=24)
    parser.add_argument("--batch_size", type=int, default=2, help="eval.eval_batch_size")
    parser.add_argument(
        "--cpu_kernels", default="off,on", help="main.py --cpu_kernels choices to alternate"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--work_dir", default=None, help="records and checkpoints; default temp")
    args = parser.parse_args(argv)
    try:
        configs = [c for c in args.configs.split(",") if c]
        choices = [c for c in args.cpu_kernels.split(",") if c]
        for choice in choices:
            if choice not in ("auto", "on", "off"):
                raise BenchmarkArgumentError(f"--cpu_kernels: {choice!r} is not auto, on or off")
        for name in configs:
            resolve_config(name)
    except BenchmarkArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from official.detection.testing import shapes_records

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="benchmark_evaluation_")
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    print(describe_machine(os.cpu_count(), onednn), f"python={sys.version.split()[0]}", flush=True)
    records = shapes_records.write_shapes_records(
        os.path.join(work_dir, "shapes"),
        num_train=1,
        num_val=args.num_images,
        image_size=args.image_size,
    )
    prepared = {name: prepare(args, name, work_dir, records) for name in configs}
    for round_index in range(args.rounds):
        for name in configs:
            for choice in choices:
                run = run_eval(*prepared[name], choice)
                print(f"round {round_index + 1} " + format_row(name, choice, run), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
