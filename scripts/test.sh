#!/usr/bin/env bash
# Sets up a lane's virtual environment, then runs the linters and the whole test suite.
#   bash scripts/test.sh          TensorFlow 2.15 lane (.venv, Python 3.11)
#   bash scripts/test.sh --tf1    TensorFlow 1.15 lane (.venv-tf1, Python 3.7)
#   bash scripts/test.sh --both   both lanes, one after the other (what CI runs);
#                                 exits non-zero when either fails
# Other arguments go to pytest (e.g. `bash scripts/test.sh -k anchors`).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

lane="${DETECTION_LANE:-tf2}"
pytest_args=()
for arg in "$@"; do
  case "${arg}" in
    --tf1) lane=tf1 ;;
    --tf2) lane=tf2 ;;
    --both) lane=both ;;
    *) pytest_args+=("${arg}") ;;
  esac
done

if [ "${lane}" = both ]; then
  start=$(date +%s)
  # Both environments first: each lane's suite restores a checkpoint on the other lane.
  DETECTION_LANE=tf2 bash scripts/setup_env.sh
  DETECTION_LANE=tf1 bash scripts/setup_env.sh
  tf2=passed
  DETECTION_LANE=tf2 bash "${BASH_SOURCE[0]}" "${pytest_args[@]}" || tf2=FAILED
  middle=$(date +%s)
  tf1=passed
  DETECTION_LANE=tf1 bash "${BASH_SOURCE[0]}" "${pytest_args[@]}" || tf1=FAILED
  end=$(date +%s)
  echo "lanes: TensorFlow 2.15 ${tf2} in $(( middle - start )) s," \
    "TensorFlow 1.15 ${tf1} in $(( end - middle )) s"
  [ "${tf2}" = passed ] && [ "${tf1}" = passed ]
  exit
fi

export DETECTION_LANE="${lane}"
set -- # setup_env.sh reads the lane from DETECTION_LANE, not from these arguments
source scripts/setup_env.sh
python -c 'import sys, tensorflow as tf; print("lane: TensorFlow %s on Python %s" % (tf.__version__, sys.version.split()[0]))'

ruff check .
ruff format --check .
# One worker per core, at most 4: most tests build graphs in Python (one core
# each), and each worker holds its own TensorFlow (about 2 GB at the most).
cores="$(nproc)"
python -m pytest -q -n "$(( cores < 4 ? cores : 4 ))" "${pytest_args[@]}"
