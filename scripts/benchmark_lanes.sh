#!/usr/bin/env bash
# Training-step and evaluation speed of the two TensorFlow lanes on this machine:
# scripts/benchmark_training.py for each config, alternated between the lanes (and
# between the kernel choices of --cpu_kernels) so that drifts in the host's speed hit
# every variant alike. Sets up both lanes first.
#
# Usage: bash scripts/benchmark_lanes.sh [--rounds N] [--cpu_kernels LIST] [CONFIG ...]
#   LIST: comma-separated values of main.py's --cpu_kernels (auto, on, off), e.g. on,off
#   to time the CPU kernels against TensorFlow's (default: auto, the CPU kernels)
#   CONFIG: a shipped config path (default: RetinaNet R50-FPN and Mask R-CNN R50-FPN)
#   Other settings: 256x256, batch 2, 20 timed steps after 5 warm-up steps.
# Prints one line per run and a table of medians; full outputs in $OUT (default a
# temporary directory).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

rounds=2
kernels=(auto)
configs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds=*) rounds="${1#*=}" ;;
    --rounds) rounds="${2:?--rounds needs a value}"; shift ;;
    --cpu_kernels=*) IFS=, read -r -a kernels <<< "${1#*=}" ;;
    --cpu_kernels) IFS=, read -r -a kernels <<< "${2:?--cpu_kernels needs a value}"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown argument '$1' (scripts/benchmark_lanes.sh); see --help" >&2; exit 1 ;;
    *) configs+=("$1") ;;
  esac
  shift
done
for kernel in "${kernels[@]}"; do
  case "${kernel}" in
    auto|on|off) ;;
    *) echo "error: --cpu_kernels value '${kernel}' is not a kernel choice" \
         "(scripts/benchmark_lanes.sh); valid: auto, on, off" >&2; exit 1 ;;
  esac
done
if [ ${#configs[@]} = 0 ]; then
  configs=(official/detection/configs/retinanet/retinanet_r50_fpn_coco.yaml
           official/detection/configs/maskrcnn/mask_rcnn_r50_fpn_coco.yaml)
fi
out="${OUT:-$(mktemp -d -t benchmark_lanes.XXXXXX)}"
mkdir -p "${out}"

for lane in tf2 tf1; do DETECTION_LANE="${lane}" bash scripts/setup_env.sh >/dev/null; done
data_dir="${out}/records"

for round in $(seq 1 "${rounds}"); do
  for config in "${configs[@]}"; do
    for lane in tf2 tf1; do
      for kernel in "${kernels[@]}"; do
        name="$(basename "${config}" .yaml).${lane}.${kernel}.${round}"
        DETECTION_LANE="${lane}" bash -c 'source scripts/setup_env.sh; exec python "$@"' _ \
          scripts/benchmark_training.py --config "${config}" --image_size 256 --batch_size 2 \
          --steps 20 --warmup 5 --data_dir "${data_dir}" --cpu_kernels="${kernel}" \
          >"${out}/${name}.log" 2>&1
        echo "${name}: $(grep -E '^train_step_s' "${out}/${name}.log")," \
          "$(grep -E '^eval_images_per_s' "${out}/${name}.log" | cut -d'(' -f1)"
      done
    done
  done
done

echo "median training step (s) and evaluation images/s per run, ${out}:"
for config in "${configs[@]}"; do
  for lane in tf2 tf1; do
    for kernel in "${kernels[@]}"; do
      base="$(basename "${config}" .yaml).${lane}.${kernel}"
      steps="$(grep -h '^train_step_s' "${out}/${base}".*.log | awk '{print $3}' | paste -sd' ')"
      evals="$(grep -h '^eval_images_per_s' "${out}/${base}".*.log | awk '{print $2}' | paste -sd' ')"
      echo "  ${base}: step ${steps} | eval ${evals}"
    done
  done
done
