#!/usr/bin/env bash
# Downloads COCO 2017 and converts it into TFRecords in the tensorflow/tpu schema.
#
# Usage: bash download_and_preprocess_mscoco.sh <data_dir>
#
# Writes, under <data_dir>:
#   train-*-of-00256.tfrecord   train2017 with masks and captions
#   val-*-of-00032.tfrecord     val2017 with masks and captions
#   test-*-of-00256.tfrecord    test2017 images only (image_info_test2017.json)
#   annotations/*.json          e.g. eval.val_json_file=<data_dir>/annotations/instances_val2017.json
#   raw-data/                   the downloaded zips and the extracted images
#   .done/<step>                one marker per finished step; a re-run skips those steps
#                               (delete a marker to redo its step)
# Downloads resume (curl -C - or wget -c); every zip is tested with `unzip -tq` and
# fetched again once if broken.
#
# Environment (defaults in brackets):
#   COCO_BASE_URL [http://images.cocodataset.org]  mirror with zips/ and annotations/
#   COCO_TRAIN_SHARDS [256], COCO_VAL_SHARDS [32], COCO_TEST_SHARDS [256]
#   COCO_NUM_WORKERS [all cores]  converter worker processes
#   COCO_MIN_FREE_GB [90]  free space needed in <data_dir> before starting: about 25 GB of
#     zips, 25 GB of extracted images and 30 GB of TFRecords (what is already in
#     <data_dir> counts towards it)
#   COCO_DOWNLOADER [curl if installed, else wget]
#   PYTHON [python3]  interpreter with tensorflow, pycocotools, Pillow, absl-py
set -euo pipefail

prog="download_and_preprocess_mscoco.sh"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
converter="${repo_root}/scripts/create_coco_tf_record.py"

die() {
  echo "${prog}: error: $*" >&2
  exit 1
}

usage() {
  echo "usage: bash ${prog} <data_dir>" >&2
  echo "Downloads COCO 2017 into <data_dir> and writes TFRecords there (see the header of" >&2
  echo "${repo_root}/${prog} for the layout and the environment variables)." >&2
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
  usage
  exit 1
fi
case "$1" in
  -h | --help) usage; exit 0 ;;
esac

base_url="${COCO_BASE_URL:-http://images.cocodataset.org}"
base_url="${base_url%/}"
train_shards="${COCO_TRAIN_SHARDS:-256}"
val_shards="${COCO_VAL_SHARDS:-32}"
test_shards="${COCO_TEST_SHARDS:-256}"
min_free_gb="${COCO_MIN_FREE_GB:-90}"
python_bin="${PYTHON:-python3}"
for value in "${train_shards}" "${val_shards}" "${test_shards}" "${min_free_gb}"; do
  [[ "${value}" =~ ^[0-9]+$ ]] || die "shard counts and COCO_MIN_FREE_GB must be whole numbers, got '${value}'"
done

# --- tools -------------------------------------------------------------------
downloader="${COCO_DOWNLOADER:-}"
if [ -z "${downloader}" ]; then
  if command -v curl >/dev/null 2>&1; then
    downloader=curl
  elif command -v wget >/dev/null 2>&1; then
    downloader=wget
  else
    die "neither curl nor wget is installed; install one of them (e.g. apt-get install curl)"
  fi
fi
case "${downloader}" in
  curl | wget) command -v "${downloader}" >/dev/null 2>&1 || die "COCO_DOWNLOADER=${downloader} is not installed" ;;
  *) die "COCO_DOWNLOADER must be curl or wget, got '${downloader}'" ;;
esac
command -v unzip >/dev/null 2>&1 || die "unzip is not installed (e.g. apt-get install unzip)"
command -v "${python_bin}" >/dev/null 2>&1 || die "Python interpreter '${python_bin}' not found; set PYTHON=/path/to/python3"
# The converter imports `official` from this checkout even when it is not pip-installed.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
"${python_bin}" - <<'EOF' || die "'${python_bin}' lacks Python packages the converter needs (see above); run scripts/setup_env.sh or pip install -r requirements.txt"
import importlib.util, sys
missing = [m for m in ("tensorflow", "pycocotools", "PIL", "absl", "numpy", "official")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit("missing Python packages: " + ", ".join(missing))
EOF

# --- layout ------------------------------------------------------------------
mkdir -p "$1" || die "cannot create data_dir '$1'"
data_dir="$(cd "$1" && pwd)"
raw_dir="${data_dir}/raw-data"
done_dir="${data_dir}/.done"
mkdir -p "${raw_dir}" "${done_dir}"

image_zips=(train2017.zip val2017.zip test2017.zip)
annotation_zips=(annotations_trainval2017.zip image_info_test2017.zip)
convert_steps=("convert_train-${train_shards}" "convert_val-${val_shards}" "convert_test-${test_shards}")

is_done() { [ -f "${done_dir}/$1" ]; }
mark_done() { date -u +%Y-%m-%dT%H:%M:%SZ >"${done_dir}/$1"; }

# --- disk space (only when something is left to do) ---------------------------
pending=0
for zip in "${image_zips[@]}" "${annotation_zips[@]}"; do
  is_done "unzip_${zip}" || pending=1
done
for step in "${convert_steps[@]}"; do
  is_done "${step}" || pending=1
done
if [ "${pending}" = 1 ]; then
  free_kb="$(df -Pk "${data_dir}" | awk 'NR == 2 { print $4 }')"
  used_kb="$(du -sk "${data_dir}" | cut -f1)"
  need_kb=$((min_free_gb * 1024 * 1024 - used_kb))
  if [ "${free_kb}" -lt "${need_kb}" ]; then
    die "not enough disk space in ${data_dir}: $((free_kb / 1048576)) GB free, about" \
      "$(((need_kb + 1048575) / 1048576)) GB more needed (COCO_MIN_FREE_GB=${min_free_gb}" \
      "in all, $((used_kb / 1048576)) GB already there); free some space or lower COCO_MIN_FREE_GB"
  fi
fi

# --- download ----------------------------------------------------------------
fetch() {  # <url> <file>: resumes a partial file
  if [ "${downloader}" = curl ]; then
    curl --fail --location --silent --show-error --retry 3 --continue-at - --output "$2" "$1"
  else
    wget --quiet --continue --output-document="$2" "$1"
  fi
}

download_zip() {  # <url>
  local url="$1"
  local zip
  zip="$(basename "${url}")"
  local file="${raw_dir}/${zip}"
  if is_done "download_${zip}"; then
    echo "skip: ${zip} downloaded earlier"
    return
  fi
  # A zip left by a run killed after the download but before its marker.
  if [ -f "${file}" ] && unzip -tq "${file}" >/dev/null 2>&1; then
    mark_done "download_${zip}"
    echo "skip: ${zip} already complete"
    return
  fi
  local attempt problem status
  for attempt in 1 2; do
    echo "== download ${url} -> ${file} (attempt ${attempt})"
    status=0
    fetch "${url}" "${file}" || status=$?
    if [ "${status}" -ne 0 ]; then
      problem="the download failed (${downloader} exit status ${status})"
    elif ! unzip -tq "${file}" >/dev/null 2>&1; then
      problem="the file is not a valid zip archive (unzip -tq failed)"
    else
      mark_done "download_${zip}"
      return
    fi
    echo "${prog}: ${zip}: ${problem}" >&2
    # Start afresh: resuming a broken file cannot mend it.
    rm -f "${file}"
  done
  die "could not get ${url} after 2 attempts: ${problem}"
}

extract_zip() {  # <zip> <destination dir>
  if is_done "unzip_$1"; then
    echo "skip: $1 extracted earlier"
    return
  fi
  echo "== unzip $1 -> $2"
  unzip -q -o "${raw_dir}/$1" -d "$2" || die "unzip of ${raw_dir}/$1 failed"
  mark_done "unzip_$1"
}

for zip in "${image_zips[@]}"; do
  download_zip "${base_url}/zips/${zip}"
done
for zip in "${annotation_zips[@]}"; do
  download_zip "${base_url}/annotations/${zip}"
done
for zip in "${image_zips[@]}"; do
  extract_zip "${zip}" "${raw_dir}"
done
# The annotation zips hold an annotations/ folder: it lands at <data_dir>/annotations.
for zip in "${annotation_zips[@]}"; do
  extract_zip "${zip}" "${data_dir}"
done

# --- convert -----------------------------------------------------------------
annotations="${data_dir}/annotations"
workers=()
if [ -n "${COCO_NUM_WORKERS:-}" ]; then
  workers=("--num_workers=${COCO_NUM_WORKERS}")
fi

convert() {  # <step> <converter flags...>
  local step="$1"
  shift
  if is_done "${step}"; then
    echo "skip: ${step} finished earlier"
    return
  fi
  echo "== ${step}"
  "${python_bin}" "${converter}" "$@" ${workers[@]+"${workers[@]}"} ||
    die "${step} failed (see the converter's message above)"
  mark_done "${step}"
}

for split in train val; do
  shards_var="${split}_shards"
  convert "convert_${split}-${!shards_var}" \
    --image_dir="${raw_dir}/${split}2017" \
    --object_annotations_file="${annotations}/instances_${split}2017.json" \
    --caption_annotations_file="${annotations}/captions_${split}2017.json" \
    --output_file_prefix="${data_dir}/${split}" \
    --num_shards="${!shards_var}" \
    --include_masks
done
convert "convert_test-${test_shards}" \
  --image_dir="${raw_dir}/test2017" \
  --image_info_file="${annotations}/image_info_test2017.json" \
  --output_file_prefix="${data_dir}/test" \
  --num_shards="${test_shards}"

echo "== done: TFRecords in ${data_dir} (train-*, val-*, test-*), annotations in ${annotations}"
