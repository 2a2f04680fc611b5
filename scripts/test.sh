#!/usr/bin/env bash
# Sets up .venv, then runs the linters and the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k anchors`).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
source scripts/setup_env.sh

ruff check .
ruff format --check .
python -m pytest -q "$@"
