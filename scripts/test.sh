#!/usr/bin/env bash
# Sets up .venv, then runs the linters and the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k anchors`).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
source scripts/setup_env.sh

ruff check .
ruff format --check .
# One worker per core, at most 4: most tests build graphs in Python (one core
# each), and each worker holds its own TensorFlow (about 2 GB at the most).
cores="$(nproc)"
python -m pytest -q -n "$(( cores < 4 ? cores : 4 ))" "$@"
