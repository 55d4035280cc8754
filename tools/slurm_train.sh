#!/usr/bin/env bash
# Training on a Slurm cluster with srun (one task per GPU, or CPU tasks with gloo).
#
#   [GPUS=16] [GPUS_PER_NODE=8] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
#
# Environment:
#   GPUS (8)            processes in all
#   GPUS_PER_NODE       GPUs (= processes) per node; 0 for a CPU-only job (no --gres). Unset: 8 if the
#                       partition has GPU GRES, else 0
#   TASKS_PER_NODE      processes per node of a CPU-only job (default GPUS: one node)
#   CPUS_PER_TASK       5 for GPU jobs, 1 for CPU-only jobs (where OMP_NUM_THREADS defaults to it)
#   SRUN_ARGS           more srun options, e.g. "--quotatype=auto" or "--time=1:00:00"
#   PORT                the rendezvous port (MASTER_PORT; mmengine's default 29500)
#   PYTHON (python)
set -eo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
SRUN_ARGS=${SRUN_ARGS:-}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/slurm/srun_args.sh
source "$TOOLS_DIR/slurm/srun_args.sh"
if [ -n "${PORT:-}" ]; then export MASTER_PORT=$PORT; fi

set -x
# shellcheck disable=SC2086
PYTHONPATH="$(dirname "$TOOLS_DIR")${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    "${SLURM_RESOURCE_ARGS[@]}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$TOOLS_DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}"
