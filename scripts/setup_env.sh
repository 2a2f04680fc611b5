#!/usr/bin/env bash
# Creates the virtual environment of a TensorFlow lane at the repository root (if
# missing) and installs that lane's requirements and this package (editable) into it.
# Sourced by demo.sh and test.sh; safe to run again: it reinstalls only when the
# requirements file or pyproject.toml changed.
#
# Lanes (DETECTION_LANE, or --tf1 when this file is run directly):
#   tf2 (default)  .venv      Python 3.11 (PYTHON, else python3), requirements.txt
#   tf1            .venv-tf1  Python 3.7 (PYTHON37, else python3.7 on the PATH, else
#                             pyenv's newest 3.7), requirements-tf1.txt: TensorFlow 1.15,
#                             the runtime of Ascend 910 images
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lane="${DETECTION_LANE:-tf2}"
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  for arg in "$@"; do
    case "${arg}" in
      --tf1) lane=tf1 ;;
      --tf2) lane=tf2 ;;
      *) echo "error: unknown argument '${arg}' (scripts/setup_env.sh); use --tf1 or --tf2" >&2; exit 1 ;;
    esac
  done
fi

# Prints the path of a Python 3.7 interpreter (python3.7 on the PATH, else the newest
# 3.7 that pyenv installed), or nothing.
find_python37() {
  local candidate root
  local -a candidates=(python3.7) roots=("${PYENV_ROOT:-${HOME}/.pyenv}")
  if command -v pyenv >/dev/null 2>&1; then roots=("$(pyenv root)" "${roots[@]}"); fi
  for root in "${roots[@]}"; do
    while read -r candidate; do
      candidates+=("${candidate}/bin/python3.7")
    done < <(ls -d "${root}"/versions/3.7* 2>/dev/null | sort -rV)
  done
  for candidate in "${candidates[@]}"; do
    if "${candidate}" -c 'import sys; assert sys.version_info[:2] == (3, 7); print(sys.executable)' 2>/dev/null; then
      return
    fi
  done
}

# Prints the interpreter that creates the lane's environment, or an error line and exits 1.
lane_python() {
  local python_bin
  if [ "${lane}" = tf2 ]; then
    python_bin="${PYTHON:-python3}"
    if ! command -v "${python_bin}" >/dev/null 2>&1; then
      echo "error: Python not found (${python_bin}); install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
      exit 1
    fi
  else
    python_bin="${PYTHON37:-$(find_python37)}"
    if [ -z "${python_bin}" ] || ! "${python_bin}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 7))' >/dev/null 2>&1; then
      echo "error: Python 3.7 not found (TensorFlow 1.15 lane: ${PYTHON37:-python3.7 on the PATH or in pyenv}); install it (e.g. 'pyenv install 3.7.16' or your distribution's python3.7) or set PYTHON37=/path/to/python3.7" >&2
      exit 1
    fi
  fi
  echo "${python_bin}"
}

case "${lane}" in
  tf2) venv="${repo_root}/.venv" requirements="${repo_root}/requirements.txt" ;;
  tf1) venv="${repo_root}/.venv-tf1" requirements="${repo_root}/requirements-tf1.txt" ;;
  *)
    echo "error: unknown lane '${lane}' (DETECTION_LANE); use tf2 or tf1" >&2
    exit 1
    ;;
esac

if [ ! -x "${venv}/bin/python" ]; then
  python_bin="$(lane_python)"
  echo "setup: creating ${venv} with $("${python_bin}" --version 2>&1) (${python_bin})"
  "${python_bin}" -m venv "${venv}"
fi

stamp="${venv}/.installed"
wanted="$(cat "${requirements}" "${repo_root}/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "${stamp}" ] || [ "$(cat "${stamp}")" != "${wanted}" ]; then
  echo "setup: installing requirements and the package into ${venv}"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip
  "${venv}/bin/python" -m pip install --quiet -r "${requirements}"
  "${venv}/bin/python" -m pip install --quiet --no-deps -e "${repo_root}"
  echo "${wanted}" > "${stamp}"
fi

# tcmalloc: TensorFlow on CPU allocates many large short-lived buffers; glibc
# returns each one over 32 MB to the kernel and pays page faults on the next,
# tcmalloc reuses them (measured: 3.3x faster on a 134 MB elementwise op).
# Optional: installed when this runs as root with apt, preloaded when present.
tcmalloc_lib=""
for candidate in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
                 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 \
                 /usr/lib64/libtcmalloc_minimal.so.4; do
  if [ -f "${candidate}" ]; then tcmalloc_lib="${candidate}"; break; fi
done
if [ -z "${tcmalloc_lib}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
   && [ "${DETECTION_NO_TCMALLOC:-0}" != 1 ]; then
  echo "setup: installing libtcmalloc-minimal4 (faster CPU memory allocation)"
  if (apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1; }); then
    for candidate in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
                     /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4; do
      if [ -f "${candidate}" ]; then tcmalloc_lib="${candidate}"; break; fi
    done
  else
    echo "setup: could not install libtcmalloc-minimal4; continuing with the system allocator"
  fi
fi
if [ -n "${tcmalloc_lib}" ] && [ "${DETECTION_NO_TCMALLOC:-0}" != 1 ]; then
  case ":${LD_PRELOAD:-}:" in
    *"${tcmalloc_lib}"*) ;;
    *) export LD_PRELOAD="${tcmalloc_lib}${LD_PRELOAD:+:${LD_PRELOAD}}" ;;
  esac
fi

export PATH="${venv}/bin:${PATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# oneDNN kernels for convolutions and matmuls: TensorFlow turns them on by default
# only on some Intel CPUs. Measured on a 2-core AMD EPYC: a ResNet-18 RetinaNet
# training step at 128x128, batch 8, 0.34 s with them, 0.47 s without.
# Set TF_ENABLE_ONEDNN_OPTS=0 to turn them off.
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-1}"
