#!/usr/bin/env bash
# Evaluation on a Slurm cluster with srun (one task per GPU, or CPU tasks with gloo).
#
#   [GPUS=8] bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#
# Environment: as tools/slurm_train.sh (GPUS, GPUS_PER_NODE, TASKS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, PORT,
# PYTHON).
set -eo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
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
    "$PYTHON" -u "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "${@:5}"
