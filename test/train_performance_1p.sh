#!/usr/bin/env bash
# Performance run (default 1000 steps; images/s after warm-up)
# on one device.
# bash test/train_performance_1p.sh --data_path=/data/coco [--network=NAME] [...]; see --help.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
launch performance 1p "$@"
