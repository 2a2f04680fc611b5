#!/usr/bin/env bash
# The embedded default job: needs no download.
#   1. set up .venv (if missing) with the requirements and this package,
#   2. generate the shapes dataset (COCO layout) in WORK_DIR/shapes,
#   3. convert it to TFRecords with masks in WORK_DIR/tfrecords.
# Usage: bash scripts/demo.sh [--work_dir DIR] [--num_train N] [--num_val M]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

work_dir="demo_output"
num_train=600
num_val=100
while [ $# -gt 0 ]; do
  case "$1" in
    --work_dir=*) work_dir="${1#*=}" ;;
    --work_dir) work_dir="${2:?--work_dir needs a value}"; shift ;;
    --num_train=*) num_train="${1#*=}" ;;
    --num_val=*) num_val="${1#*=}" ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
  shift
done

cd "${repo_root}"
source scripts/setup_env.sh
mkdir -p "${work_dir}"
work_dir="$(cd "${work_dir}" && pwd)"
data_dir="${work_dir}/shapes"
record_dir="${work_dir}/tfrecords"

echo "== shapes dataset -> ${data_dir}"
python scripts/make_shapes_dataset.py --output_dir "${data_dir}" \
  --num_train "${num_train}" --num_val "${num_val}" --seed 0

echo "== TFRecords -> ${record_dir}"
mkdir -p "${record_dir}"
for split in train val; do
  python scripts/create_coco_tf_record.py --logtostderr \
    --image_dir "${data_dir}/${split}2017" \
    --object_annotations_file "${data_dir}/annotations/instances_${split}2017.json" \
    --output_file_prefix "${record_dir}/${split}" \
    --num_shards 4 --include_masks
done
echo "== done: $(ls "${record_dir}" | wc -l) TFRecord files in ${record_dir}"
