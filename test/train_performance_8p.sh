#!/usr/bin/env bash
# Performance run (default 1000 steps; images/s after warm-up)
# on 8 devices (--num_devices=N for another count): one
# process per NPU on Ascend, one process over the GPUs, or virtual CPU devices.
# bash test/train_performance_8p.sh --data_path=/data/coco [--network=NAME] [...]; see --help.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
launch performance 8p "$@"
