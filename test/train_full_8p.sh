#!/usr/bin/env bash
# Full training run, then COCO evaluation (TrainAccuracy = AP)
# on 8 devices (--num_devices=N for another count): one
# process per NPU on Ascend, one process over the GPUs, or virtual CPU devices.
# bash test/train_full_8p.sh --data_path=/data/coco [--network=NAME] [...]; see --help.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
launch full 8p "$@"
