# Shared by the launch scripts test/train_{full,performance}_{1p,8p}.sh and
# test/train_performance_multinodes.sh: flags, the rank environment, the processes and
# their logs. What needs Python (the network's config and model, the device, the ranks,
# the main.py command, the summary file) is official/detection/executor/launch.py.
# Sourced, not run. A script calls `launch <full|performance> <1p|8p|multinodes> "$@"`.

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

die() {
    echo "error: $*" >&2
    exit 1
}

# The launch module, run from the repository so that it imports without an install.
launch_py() {
    (cd "${REPO_ROOT}" && exec "${PYTHON}" -m official.detection.executor.launch "$@")
}

usage() {
    local script="$1" kind="$2" layout="$3" devices="$4"
    cat <<EOT
Usage: bash test/${script} --data_path=DIR [options]

Trains a detector (${kind} run, ${layout}) with official/detection/main.py, logs to
<output_dir>/<device id>/train_<device id>.log and writes the summary file
<output_dir>/<device id>/<CaseName>.log (CaseName = <Network>_bs<N>_<R>p_<acc|perf>).
Ascend NPU when npu_bridge imports, else the GPUs TensorFlow sees, else the CPU.
Python: \$PYTHON, else the repository's .venv (or .venv-tf1; first with
DETECTION_LANE=tf1) from scripts/setup_env.sh, else python3.

Options (all --name=value):
  --data_path=DIR        required: DIR/train-*, DIR/val-* TFRecords and, optionally,
                         DIR/annotations/instances_val2017.json
  --network=NAME         a shipped config by name, case-insensitive (default
                         faster_rcnn_r101_fpn_coco; also faster_rcnn, mask_rcnn, retinanet,
                         spinenet49s_retinanet, ...: any official/detection/configs/*/NAME.yaml);
                         the model (--model of main.py) is the config's type, faster_rcnn
                         for a mask_rcnn config with architecture.include_mask false
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
  --cpu_kernels=MODE     auto, on or off: passed to main.py when given
  --output_dir=DIR       logs and summaries (default test/output)
  --model_dir=DIR        checkpoints (default <output_dir>/<device id>/model, emptied
                         first; an explicit DIR is kept, so a run resumes from it)
  --rank_table_file=F    Ascend rank table (default configs/rank_table_8p.json)
  --server_index=I       multinodes on Ascend: this server's entry in the rank table
                         (default: the entry whose server_id is one of this host's IPs)
  --dry_run=True         print the training commands and exit
  --help                 this text
EOT
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
    cpu_kernels=""
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
            --cpu_kernels=*) cpu_kernels="${arg#*=}" ;;
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
    [ -z "${config_file}" ] || [ -f "${config_file}" ] || die "--config_file=${config_file} does not exist"
    [ -z "${config_file}" ] || config_file="$(absolute "${config_file}")"
    local name
    for name in batch_size num_devices; do
        [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "--${name}=${!name} is not a positive integer"
    done
    [ -z "${train_steps}" ] || [[ "${train_steps}" =~ ^[1-9][0-9]*$ ]] ||
        die "--train_steps=${train_steps} is not a positive integer"
    case "${device}" in auto | npu | gpu | cpu) ;; *) die "--device=${device}: use auto, npu, gpu or cpu" ;; esac
    case "${cpu_kernels}" in "" | auto | on | off) ;; *) die "--cpu_kernels=${cpu_kernels}: use auto, on or off" ;; esac
    case "${dry_run}" in True | true | 1) dry_run=True ;; *) dry_run=False ;; esac
}

# Sets device_kind, network_name, first_dev, rank_size, rank_table, model_dir,
# fresh_model_dir, ranks ("<rank_id> <device_id>" per Ascend process) and python_args
# (main.py and its arguments) from the launch module's plan.
plan_run() {
    local out line status=0
    local args=(plan "--kind=${KIND}" "--layout=${LAYOUT}" "--data_path=${data_path}"
        "--device=${device}" "--network=${network}" "--config_file=${config_file}"
        "--ckpt_path=${ckpt_path}" "--precision_mode=${precision_mode}"
        "--batch_size=${batch_size}" "--train_steps=${train_steps:-0}"
        "--num_devices=${num_devices}" "--output_dir=${output_dir}" "--model_dir=${model_dir}"
        "--rank_table_file=${rank_table_file}" "--server_index=${server_index}")
    [ -z "${cpu_kernels}" ] || args+=("--cpu_kernels=${cpu_kernels}")
    [ "${LAYOUT}" != multinodes ] || [ -n "${server_index}" ] ||
        args+=("--host_ips=$(hostname -I 2>/dev/null)")
    out="$(launch_py "${args[@]}")" || status=1
    [[ "${out}" == tensorflow=* ]] ||
        die "TensorFlow is not importable by ${PYTHON} (${PYTHON_FROM}); run 'bash scripts/setup_env.sh' (or '--tf1') in ${REPO_ROOT}, or set PYTHON to an interpreter with TensorFlow"
    ranks=()
    python_args=()
    while IFS= read -r line; do
        case "${line}" in
            tensorflow=*) echo "python: ${PYTHON} (${PYTHON_FROM}), TensorFlow ${line#*=}" ;;
            device=*) device_kind="${line#*=}" ;;
            network=*) network_name="${line#*=}" ;;
            first_device=*) first_dev="${line#*=}" ;;
            rank_size=*) rank_size="${line#*=}" ;;
            rank_table=*) rank_table="${line#*=}" ;;
            model_dir=*) model_dir="${line#*=}" ;;
            fresh_model_dir=*) fresh_model_dir="${line#*=}" ;;
            rank=*) ranks+=("${line#*=}") ;;
            arg=*) python_args+=("${line#*=}") ;;
        esac
    done <<<"${out}"
    # The launch module has said what is wrong.
    [ "${status}" = 0 ] || exit 1
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

# Starts this server's Ascend processes, one per rank, and waits for all.
run_npu_ranks() {
    local status=0 pids=() devs=() entry rank dev i
    for entry in "${ranks[@]}"; do
        read -r rank dev <<<"${entry}"
        (
            export RANK_SIZE="${rank_size}" RANK_ID="${rank}" DEVICE_ID="${dev}"
            export ASCEND_DEVICE_ID="${dev}" JOB_ID="${JOB_ID:-10087}"
            if [ -n "${rank_table}" ]; then export RANK_TABLE_FILE="${rank_table}"; else unset RANK_TABLE_FILE; fi
            run_process "${dev}"
        ) &
        pids+=($!)
        devs+=("${dev}")
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            [ "${#pids[@]}" = 1 ] ||
                echo "rank on device ${devs[$i]} failed; see ${output_dir}/${devs[$i]}/train_${devs[$i]}.log" >&2
            status=1
        fi
    done
    return "${status}"
}

launch() {
    KIND="$1"
    LAYOUT="$2"
    shift 2
    SCRIPT_NAME="train_${KIND}_${LAYOUT}.sh"
    local start_time status=0
    start_time="$(date +%s)"
    case "${LAYOUT}" in 8p) num_devices=8 ;; *) num_devices=1 ;; esac
    parse_args "$@"
    [ -d "${data_path}" ] || die "--data_path=${data_path} is not a directory"
    compgen -G "${data_path}/train-*" >/dev/null || die "--data_path=${data_path} holds no train-* TFRecord files"
    plan_run

    if [ "${dry_run}" != True ]; then
        [ "${fresh_model_dir}" = 0 ] || rm -rf "${output_dir:?}/${first_dev}"
        rm -rf "${model_dir}/train_summary"
    fi
    if [ "${device_kind}" = npu ]; then
        run_npu_ranks || status=1
    else
        run_process "${first_dev}" || status=1
    fi
    [ "${dry_run}" = True ] && exit 0
    if [ "${status}" != 0 ]; then
        echo "error: training failed; last lines of ${output_dir}/${first_dev}/train_${first_dev}.log:" >&2
        tail -n 20 "${output_dir}/${first_dev}/train_${first_dev}.log" >&2
        exit 1
    fi
    launch_py summary "--kind=${KIND}" "--model_dir=${model_dir}" \
        "--output_dir=${output_dir}/${first_dev}" "--network=${network_name}" \
        "--batch_size=${batch_size}" "--device=${device_kind}" "--rank_size=${rank_size}" \
        "--start_time=${start_time}"
}
