#!/usr/bin/env bash
# Performance run over several servers; run it on every server.
# Ascend: one process per NPU of this server, ranks from a multi-server rank table
#   (--rank_table_file=F, --server_index=I or found from this host's IPs).
# GPUs/CPUs: one process per server with TF_CONFIG set (MultiWorkerMirroredStrategy);
#   --model_dir must be a directory all servers share.
# See configs/README.md; options: --help.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
launch performance multinodes "$@"
