# Shared by the launch scripts test/train_{full,performance}_{1p,8p}.sh and
# test/train_performance_multinodes.sh: flags, device detection, the training command,
# the rank processes and the summary file. Sourced, not run.
#
# A script calls `launch <full|performance> <1p|8p|multinodes> "$@"`.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The interpreter: PYTHON if set, else the repository's environment made by
# scripts/setup_env.sh (.venv, or .venv-tf1 first with DETECTION_LANE=tf1), else python3
# (as on Ascend images, whose system Python has TensorFlow 1.15 and npu_bridge).
choose_python() {
    local venv venvs=(.venv .venv-tf1)
    [ "${DETECTION_LANE:-}" = tf1 ] && venvs=(.venv-tf1 .venv)
    for venv in "${venvs[@]}"; do
        if [ -x "${REPO_ROOT}/${venv}/bin/python" ]; then
            echo "${REPO_ROOT}/${venv}/bin/python"
            return
        fi
    done
    echo python3
}
PYTHON_FROM="PYTHON"
[ -n "${PYTHON:-}" ] || PYTHON_FROM="chosen: PYTHON not set"
PYTHON="${PYTHON:-$(choose_python)}"
CONFIG_DIRS="spinenet retinanet maskrcnn shapes"
DEFAULT_NETWORK="faster_rcnn_r101_fpn_coco"

die() {
    echo "error: $*" >&2
    exit 1
}

usage() {
    local script="$1" kind="$2" layout="$3" devices="$4"
    cat <<EOF
Usage: bash test/${script} --data_path=DIR [options]

Trains a detector (${kind} run, ${layout}) with official/detection/main.py, logs to
<output_dir>/<device id>/train_<device id>.log and writes the summary file
<output_dir>/<device id>/<CaseName>.log (CaseName = <Network>_bs<N>_<R>p_<acc|perf>).
Ascend NPU when npu_bridge imports, else NVIDIA GPUs, else the CPU.
Python: \$PYTHON, else the repository's .venv (or .venv-tf1; first with
DETECTION_LANE=tf1) from scripts/setup_env.sh, else python3.

Options (all --name=value):
  --data_path=DIR        required: DIR/train-*, DIR/val-* TFRecords and, optionally,
                         DIR/annotations/instances_val2017.json
  --network=NAME         a shipped config by name, case-insensitive (default
                         ${DEFAULT_NETWORK}; also faster_rcnn, mask_rcnn, retinanet,
                         spinenet49s_retinanet, ...: any official/detection/configs/*/NAME.yaml)
  --config_file=FILE     a config YAML instead of --network's
  --ckpt_path=PATH       checkpoint to start from (train.checkpoint.path), e.g. the
                         ResNet-101 ImageNet checkpoint of the Faster R-CNN recipe
  --precision_mode=MODE  Ascend precision mode (default allow_mix_precision); on GPUs the
                         fp16 modes (allow_mix_precision, force_fp16) mean --precision=mixed;
                         CPUs train in fp32
  --batch_size=N         images per device and step (default 2); the global batch is
                         N x devices
  --train_steps=N        training steps (default: $( [ "${kind}" = full ] && echo "the config's train.total_steps" || echo 1000 ))
  --num_devices=N        devices (default ${devices}); on Ascend one process per device,
                         on GPUs one process over N GPUs, on a CPU N virtual devices
  --device=KIND          auto (default), npu, gpu or cpu
  --output_dir=DIR       logs and summaries (default test/output)
  --model_dir=DIR        checkpoints (default <output_dir>/<device id>/model, emptied
                         first; an explicit DIR is kept, so a run resumes from it)
  --rank_table_file=F    Ascend rank table (default configs/rank_table_8p.json)
  --server_index=I       multinodes on Ascend: this server's entry in the rank table
                         (default: the entry whose server_id is one of this host's IPs)
  --dry_run=True         print the training commands and exit
  --help                 this text
EOF
}

# Relative paths are taken from the caller's directory (training runs in the repository).
absolute() {
    case "$1" in
        /* | *://*) echo "$1" ;;
        *) echo "${PWD}/$1" ;;
    esac
}

# Sets the option variables from "--name=value" arguments.
parse_args() {
    data_path=""
    ckpt_path=""
    precision_mode="allow_mix_precision"
    network=""
    config_file=""
    batch_size=2
    train_steps=""
    device="auto"
    output_dir="${REPO_ROOT}/test/output"
    model_dir=""
    rank_table_file="${REPO_ROOT}/configs/rank_table_8p.json"
    server_index=""
    dry_run="False"
    local arg
    for arg in "$@"; do
        case "${arg}" in
            --help | -h) usage "${SCRIPT_NAME}" "${KIND}" "${LAYOUT}" "${num_devices}"; exit 0 ;;
            --data_path=*) data_path="${arg#*=}" ;;
            --ckpt_path=*) ckpt_path="${arg#*=}" ;;
            --precision_mode=*) precision_mode="${arg#*=}" ;;
            --network=*) network="${arg#*=}" ;;
            --config_file=*) config_file="${arg#*=}" ;;
            --batch_size=*) batch_size="${arg#*=}" ;;
            --train_steps=*) train_steps="${arg#*=}" ;;
            --num_devices=*) num_devices="${arg#*=}" ;;
            --device=*) device="${arg#*=}" ;;
            --output_dir=*) output_dir="${arg#*=}" ;;
            --model_dir=*) model_dir="${arg#*=}" ;;
            --rank_table_file=*) rank_table_file="${arg#*=}" ;;
            --server_index=*) server_index="${arg#*=}" ;;
            --dry_run=*) dry_run="${arg#*=}" ;;
            *) die "unknown option '${arg}' (options take the form --name=value; see --help)" ;;
        esac
    done
    [ -n "${data_path}" ] || die "--data_path is required: the directory holding the train-* and val-* TFRecords (see --help)"
    data_path="$(absolute "${data_path}")"
    output_dir="$(absolute "${output_dir}")"
    rank_table_file="$(absolute "${rank_table_file}")"
    [ -z "${model_dir}" ] || model_dir="$(absolute "${model_dir}")"
    [ -z "${ckpt_path}" ] || ckpt_path="$(absolute "${ckpt_path}")"
    local name
    for name in batch_size num_devices; do
        [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "--${name}=${!name} is not a positive integer"
    done
    [ -z "${train_steps}" ] || [[ "${train_steps}" =~ ^[1-9][0-9]*$ ]] ||
        die "--train_steps=${train_steps} is not a positive integer"
    case "${device}" in auto | npu | gpu | cpu) ;; *) die "--device=${device}: use auto, npu, gpu or cpu" ;; esac
    case "${dry_run}" in True | true | 1) dry_run=True ;; *) dry_run=False ;; esac
}

# The config YAML of a network name (case-insensitive), or die listing the names.
network_config() {
    local wanted
    wanted="$(echo "$1" | tr '[:upper:]' '[:lower:]')"
    case "${wanted}" in
        faster_rcnn) wanted="faster_rcnn_r101_fpn_coco" ;;
        mask_rcnn) wanted="mask_rcnn_r101_fpn_coco" ;;
        retinanet) wanted="retinanet_r50_fpn_coco" ;;
    esac
    local dir file names=""
    for dir in ${CONFIG_DIRS}; do
        for file in "${REPO_ROOT}/official/detection/configs/${dir}"/*.yaml; do
            [ -f "${file}" ] || continue
            local base
            base="$(basename "${file}" .yaml)"
            if [ "$(echo "${base}" | tr '[:upper:]' '[:lower:]')" = "${wanted}" ]; then
                echo "${file}"
                return 0
            fi
            names="${names} ${base}"
        done
    done
    die "--network=$1 is not a shipped config; valid (case-insensitive): faster_rcnn mask_rcnn retinanet${names}"
}

# --model for main.py: faster_rcnn for Faster R-CNN configs, else the YAML's type.
model_of() {
    local config="$1" name="$2" type
    case "$(echo "${name}" | tr '[:upper:]' '[:lower:]')" in *faster*) echo faster_rcnn; return ;; esac
    type="$(sed -n "s/^type:[[:space:]]*['\"]\{0,1\}\([a-z_]*\).*/\1/p" "${config}" | head -n 1)"
    echo "${type:-retinanet}"
}

# With --train_steps: when the config's train.iterations_per_loop does not divide it (an
# Ascend session run covers that many steps, so they must tile the run), prints the
# largest divisor not above it and says so; prints nothing when the config's fits.
fitting_loop_steps() {
    local configured
    configured="$(cd "${REPO_ROOT}" && "${PYTHON}" -c '
import sys
from official.detection.configs import loader
print(loader.load_config(sys.argv[1], sys.argv[2]).train.iterations_per_loop)' "${model}" "${config}")" ||
        die "cannot read train.iterations_per_loop from ${config}"
    local steps="${configured}"
    while [ "${steps}" -gt 1 ] && [ $((train_steps % steps)) != 0 ]; do
        steps=$((steps - 1))
    done
    if [ "${steps}" != "${configured}" ]; then
        echo "note: train.iterations_per_loop=${steps}: the config's ${configured} does not divide --train_steps=${train_steps}" >&2
        echo "${steps}"
    fi
}

detect_device() {
    if [ "${device}" != "auto" ]; then
        echo "${device}"
    elif "${PYTHON}" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('npu_bridge') is None)" 2>/dev/null; then
        echo npu
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        echo gpu
    else
        echo cpu
    fi
}

# --precision for GPUs and CPUs from the Ascend precision mode.
precision_flag() {
    if [ "${device_kind}" = cpu ]; then
        echo "--precision=fp32"
    else
        case "${precision_mode}" in
            allow_mix_precision | force_fp16) echo "--precision=mixed" ;;
            *) echo "--precision=fp32" ;;
        esac
    fi
}

# Workers x GPUs (or 1 CPU) per worker of the TF_CONFIG cluster.
tf_config_replicas() {
    local workers gpus=1
    workers="$("${PYTHON}" -c "import json, os; c = json.loads(os.environ['TF_CONFIG']).get('cluster', {}); print(len(c.get('chief', [])) + len(c.get('worker', [])))")" ||
        die "TF_CONFIG is not valid JSON: ${TF_CONFIG}"
    if [ "${device_kind}" = gpu ]; then
        gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')"
        if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
            gpus="$(echo "${CUDA_VISIBLE_DEVICES}" | tr ',' '\n' | grep -c .)"
        fi
    fi
    echo $((workers * gpus))
}

# The training command (main.py and its flags) as the array python_args.
build_python_args() {
    local global_batch=$((batch_size * rank_size))
    local override="train.train_file_pattern=${data_path}/train-*,eval.eval_file_pattern=${data_path}/val-*"
    override="${override},train.train_batch_size=${global_batch}"
    [ -z "${train_steps}" ] || override="${override},train.total_steps=${train_steps}"
    [ -z "${loop_steps}" ] || override="${override},train.iterations_per_loop=${loop_steps}"
    [ -z "${ckpt_path}" ] || override="${override},train.checkpoint.path=${ckpt_path}"
    if [ -f "${data_path}/annotations/instances_val2017.json" ]; then
        override="${override},eval.val_json_file=${data_path}/annotations/instances_val2017.json"
    fi
    python_args=(official/detection/main.py "--model=${model}" --mode=train "--model_dir=${model_dir}"
        "--config_file=${config}" "--params_override=${override}" "--device=${device_kind}")
    if [ "${device_kind}" = npu ]; then
        python_args+=("--precision_mode=${precision_mode}")
    else
        python_args+=("$(precision_flag)")
        [ "${LAYOUT}" = multinodes ] || python_args+=("--num_devices=${local_devices}")
    fi
    [ "${KIND}" = full ] && python_args+=(--eval_after_training=True)
    return 0
}

# Runs one training process; its output goes to <output_dir>/<dev>/train_<dev>.log.
run_process() {
    local dev="$1" log="${output_dir}/$1/train_$1.log"
    if [ "${dry_run}" = True ]; then
        echo "RANK_SIZE=${RANK_SIZE:-} RANK_ID=${RANK_ID:-} DEVICE_ID=${DEVICE_ID:-} ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-} RANK_TABLE_FILE=${RANK_TABLE_FILE:-} JOB_ID=${JOB_ID:-} ${PYTHON} $(printf '%q ' "${python_args[@]}")"
        return 0
    fi
    mkdir -p "${output_dir}/${dev}"
    echo "device ${dev}: training, log ${log}"
    (cd "${REPO_ROOT}" && exec "${PYTHON}" "${python_args[@]}") >"${log}" 2>&1
}

# Starts the Ascend ranks of this server (rank table entries) and waits for all.
run_npu_ranks() {
    local table_out ranks status=0 pids=() devs=() rank dev
    table_out="$("${PYTHON}" -m official.detection.executor.rank_table \
        --rank_table_file="${rank_table_file}" --server_index="${server_index:-0}")" || exit 1
    ranks="$(echo "${table_out}" | tail -n +2)"
    export RANK_TABLE_FILE="${rank_table_file}" RANK_SIZE="${rank_size}" JOB_ID="${JOB_ID:-10087}"
    while read -r rank dev; do
        [ -n "${rank}" ] || continue
        (
            export RANK_ID="${rank}" DEVICE_ID="${dev}" ASCEND_DEVICE_ID="${dev}"
            run_process "${dev}"
        ) &
        pids+=($!)
        devs+=("${dev}")
    done <<<"${ranks}"
    local i
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            echo "rank on device ${devs[$i]} failed; see ${output_dir}/${devs[$i]}/train_${devs[$i]}.log" >&2
            status=1
        fi
    done
    return "${status}"
}

# This server's index in a multi-server rank table: the entry with one of its IPs.
find_server_index() {
    local ips
    ips="$(hostname -I 2>/dev/null)"
    IPS="${ips}" "${PYTHON}" -c "
import json, os, sys
table = json.load(open(sys.argv[1]))
ips = os.environ['IPS'].split()
for i, server in enumerate(table.get('server_list', [])):
    if server.get('server_id') in ips:
        print(i); break
else:
    sys.exit('no server_id of ' + sys.argv[1] + ' is an address of this host (' + ' '.join(ips) + '); pass --server_index')
" "${rank_table_file}"
}

write_summary() {
    local summary_dir="$1" case_kind fps="None" sps="None" loss="None" accuracy="None" replicas="${rank_size}" key value
    while IFS='=' read -r key value; do
        case "${key}" in
            fps) fps="${value}" ;;
            seconds_per_step) sps="${value}" ;;
            loss) loss="${value}" ;;
            accuracy) accuracy="${value}" ;;
            num_replicas) replicas="${value}" ;;
        esac
    done < <("${PYTHON}" -m official.detection.executor.train_summary --model_dir="${model_dir}" --format=shell)
    case_kind="$([ "${KIND}" = full ] && echo acc || echo perf)"
    local case_name="${network_name}_bs${batch_size}_${replicas}p_${case_kind}"
    local e2e=$(($(date +%s) - start_time))
    echo "Final Performance images/sec : ${fps}"
    echo "E2E Training Duration sec : ${e2e}"
    mkdir -p "${summary_dir}"
    {
        echo "Network = ${network_name}"
        echo "RankSize = ${replicas}"
        echo "BatchSize = ${batch_size}"
        echo "DeviceType = ${device_kind}"
        echo "CaseName = ${case_name}"
        echo "ActualFPS = ${fps}"
        echo "TrainingTime = ${sps}"
        echo "ActualLoss = ${loss}"
        [ "${KIND}" = full ] && echo "TrainAccuracy = ${accuracy}"
        echo "E2ETrainingTime = ${e2e}"
    } >"${summary_dir}/${case_name}.log"
    echo "summary: ${summary_dir}/${case_name}.log"
}

launch() {
    KIND="$1"
    LAYOUT="$2"
    shift 2
    SCRIPT_NAME="train_${KIND}_${LAYOUT}.sh"
    start_time="$(date +%s)"
    case "${LAYOUT}" in 8p) num_devices=8 ;; *) num_devices=1 ;; esac
    parse_args "$@"
    tf_version="$("${PYTHON}" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null)" ||
        die "TensorFlow is not importable by ${PYTHON} (${PYTHON_FROM}); run 'bash scripts/setup_env.sh' (or '--tf1') in ${REPO_ROOT}, or set PYTHON to an interpreter with TensorFlow"
    echo "python: ${PYTHON} (${PYTHON_FROM}), TensorFlow ${tf_version}"
    [ "${KIND}" = performance ] && [ -z "${train_steps}" ] && train_steps=1000
    [ -d "${data_path}" ] || die "--data_path=${data_path} is not a directory"
    compgen -G "${data_path}/train-*" >/dev/null || die "--data_path=${data_path} holds no train-* TFRecord files"

    if [ -n "${config_file}" ]; then
        [ -f "${config_file}" ] || die "--config_file=${config_file} does not exist"
        config="$(cd "$(dirname "${config_file}")" && pwd)/$(basename "${config_file}")"
        network_name="${network:-$(basename "${config_file}" .yaml)}"
    else
        network_name="${network:-${DEFAULT_NETWORK}}"
        config="$(network_config "${network_name}")" || exit 1
    fi
    model="$(model_of "${config}" "${network_name}")"
    loop_steps=""
    [ -z "${train_steps}" ] || loop_steps="$(fitting_loop_steps)" || exit 1
    device_kind="$(detect_device)"
    if [ "${device_kind}" != npu ]; then
        echo "note: --precision_mode=${precision_mode} is an Ascend setting; this ${device_kind} run uses $(precision_flag)"
    fi

    local first_dev="${ASCEND_DEVICE_ID:-0}"
    local_devices="${num_devices}"
    case "${LAYOUT}-${device_kind}" in
        1p-*) rank_size=1; local_devices=1 ;;
        8p-npu | multinodes-npu)
            [ -f "${rank_table_file}" ] || die "--rank_table_file=${rank_table_file} does not exist"
            if [ "${LAYOUT}" = multinodes ] && [ -z "${server_index}" ]; then
                server_index="$(find_server_index)" || exit 1
            fi
            local table_out
            table_out="$("${PYTHON}" -m official.detection.executor.rank_table \
                --rank_table_file="${rank_table_file}" --server_index="${server_index:-0}")" || exit 1
            rank_size="$(echo "${table_out}" | sed -n 's/^rank_size=//p')"
            first_dev="$(echo "${table_out}" | sed -n '2p' | cut -d' ' -f2)"
            if [ "${LAYOUT}" = 8p ] && [ "${rank_size}" != "${num_devices}" ]; then
                die "--rank_table_file=${rank_table_file} lists ${rank_size} devices but --num_devices=${num_devices}; give a table with ${num_devices} devices"
            fi
            ;;
        8p-*) rank_size="${num_devices}" ;;
        multinodes-*)
            [ -n "${TF_CONFIG:-}" ] || die "multinodes on GPUs/CPUs needs TF_CONFIG (the cluster and this worker); see configs/README.md"
            [ "${device_kind}" = gpu ] || local_devices=1
            rank_size="$(tf_config_replicas)" || exit 1
            ;;
    esac

    if [ -z "${model_dir}" ]; then
        model_dir="${output_dir}/${first_dev}/model"
        [ "${dry_run}" = True ] || rm -rf "${output_dir:?}/${first_dev}"
    fi
    [ "${dry_run}" = True ] || rm -rf "${model_dir}/train_summary"
    build_python_args

    local status=0
    if [ "${device_kind}" = npu ] && [ "${LAYOUT}" != 1p ]; then
        run_npu_ranks || status=1
    elif [ "${device_kind}" = npu ]; then
        (
            export RANK_SIZE=1 RANK_ID=0 DEVICE_ID="${first_dev}" ASCEND_DEVICE_ID="${first_dev}" JOB_ID="${JOB_ID:-10087}"
            unset RANK_TABLE_FILE
            run_process "${first_dev}"
        ) || status=1
    else
        run_process "${first_dev}" || status=1
    fi
    [ "${dry_run}" = True ] && exit 0
    if [ "${status}" != 0 ]; then
        echo "error: training failed; last lines of ${output_dir}/${first_dev}/train_${first_dev}.log:" >&2
        tail -n 20 "${output_dir}/${first_dev}/train_${first_dev}.log" >&2
        exit 1
    fi
    write_summary "${output_dir}/${first_dev}"
}
