#!/usr/bin/env bash
# Creates .venv at the repository root (if missing) and installs requirements.txt
# and this package (editable) into it. Sourced by demo.sh and test.sh; safe to
# run again: it reinstalls only when requirements.txt or pyproject.toml changed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
python_bin="${PYTHON:-python3}"

if ! command -v "${python_bin}" >/dev/null 2>&1; then
  echo "setup: '${python_bin}' not found; install Python 3.11 or set PYTHON=/path/to/python3" >&2
  exit 1
fi

if [ ! -x "${venv}/bin/python" ]; then
  echo "setup: creating ${venv}"
  "${python_bin}" -m venv "${venv}"
fi

stamp="${venv}/.installed"
wanted="$(cat "${repo_root}/requirements.txt" "${repo_root}/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "${stamp}" ] || [ "$(cat "${stamp}")" != "${wanted}" ]; then
  echo "setup: installing requirements and the package into ${venv}"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip
  "${venv}/bin/python" -m pip install --quiet -r "${repo_root}/requirements.txt"
  "${venv}/bin/python" -m pip install --quiet --no-deps -e "${repo_root}"
  echo "${wanted}" > "${stamp}"
fi

export PATH="${venv}/bin:${PATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
