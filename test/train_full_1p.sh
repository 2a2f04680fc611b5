#!/usr/bin/env bash
# Full training run, then COCO evaluation (TrainAccuracy = AP)
# on one device.
# bash test/train_full_1p.sh --data_path=/data/coco [--network=NAME] [...]; see --help.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
launch full 1p "$@"
