#!/usr/bin/env bash
# The embedded default job; needs no download:
#   1. set up .venv (if missing) with the requirements and this package,
#   2. generate the shapes dataset (COCO layout) in WORK_DIR/shapes,
#   3. convert it to TFRecords with masks in WORK_DIR/tfrecords,
#   4. train a small detector from scratch in WORK_DIR/model,
#   5. evaluate it (COCO table; WORK_DIR/model/eval/metrics_<step>.json),
#   6. draw its predictions on the validation images into WORK_DIR/predictions
#      (scripts/inference.py: a PNG per image and detections.json).
# Usage: bash scripts/demo.sh [--work_dir DIR] [--model retinanet|mask_rcnn|faster_rcnn]
#                             [--num_train N] [--num_val M] [--params_override S] [--tf1]
# --tf1 runs it on the TensorFlow 1.15 lane (.venv-tf1, Python 3.7).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start_time=$(date +%s)

work_dir="demo_output"
model="retinanet"
num_train=600
num_val=100
extra_override=""
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --work_dir=*) work_dir="${1#*=}" ;;
    --work_dir) work_dir="${2:?--work_dir needs a value}"; shift ;;
    --model=*) model="${1#*=}" ;;
    --model) model="${2:?--model needs a value}"; shift ;;
    --num_train=*) num_train="${1#*=}" ;;
    --num_train) num_train="${2:?--num_train needs a value}"; shift ;;
    --num_val=*) num_val="${1#*=}" ;;
    --num_val) num_val="${2:?--num_val needs a value}"; shift ;;
    --params_override=*) extra_override="${1#*=}" ;;
    --params_override) extra_override="${2:?--params_override needs a value}"; shift ;;
    --tf1) export DETECTION_LANE=tf1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; usage >&2; exit 1 ;;
  esac
  shift
done
case "${model}" in
  retinanet) config="official/detection/configs/shapes/retinanet_shapes.yaml" ;;
  mask_rcnn|faster_rcnn) config="official/detection/configs/shapes/mask_rcnn_shapes.yaml" ;;
  *)
    echo "demo.sh: --model must be retinanet, mask_rcnn or faster_rcnn, got '${model}'" >&2
    exit 1 ;;
esac

cd "${repo_root}"
set -- # setup_env.sh reads the lane from DETECTION_LANE, not from these arguments
source scripts/setup_env.sh
mkdir -p "${work_dir}"
work_dir="$(cd "${work_dir}" && pwd)"
data_dir="${work_dir}/shapes"
record_dir="${work_dir}/tfrecords"
model_dir="${work_dir}/model"

echo "== shapes dataset -> ${data_dir}"
python scripts/make_shapes_dataset.py --output_dir "${data_dir}" \
  --num_train "${num_train}" --num_val "${num_val}" --seed 0 --image_size 128

echo "== TFRecords -> ${record_dir}"
mkdir -p "${record_dir}"
for split in train val; do
  python scripts/create_coco_tf_record.py \
    --image_dir "${data_dir}/${split}2017" \
    --object_annotations_file "${data_dir}/annotations/instances_${split}2017.json" \
    --output_file_prefix "${record_dir}/${split}" \
    --num_shards 4 --include_masks
done

echo "== training ${model} -> ${model_dir}"
# A fresh model each run: the demo shows training from scratch.
rm -rf "${model_dir}"
override="train.train_file_pattern=${record_dir}/train-*"
override+=",eval.eval_file_pattern=${record_dir}/val-*"
override+=",eval.val_json_file=${data_dir}/annotations/instances_val2017.json"
if [ -n "${extra_override}" ]; then override+=",${extra_override}"; fi
python official/detection/main.py --model="${model}" --mode=train --eval_after_training \
  --model_dir="${model_dir}" --config_file="${config}" --params_override="${override}"

metrics_file="$(ls -t "${model_dir}"/eval/metrics_*.json | head -n 1)"
echo "== drawing predictions -> ${work_dir}/predictions"
# The inference tool, as a user runs it on a trained model: the annotation file gives
# the class names and the images' ids.
rm -rf "${work_dir}/predictions"
python scripts/inference.py --model="${model}" --config_file="${model_dir}/params.yaml" \
  --checkpoint_path="${model_dir}" --image_file_pattern="${data_dir}/val2017" \
  --label_map_file="${data_dir}/annotations/instances_val2017.json" \
  --output_dir="${work_dir}/predictions" --batch_size 8

python - "${metrics_file}" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
print("== COCO metrics (" + sys.argv[1] + ")")
for name in sorted(metrics):
    print(f"  {name:12s} {metrics[name]:.4f}")
PY
echo "== done in $(( $(date +%s) - start_time )) s"
