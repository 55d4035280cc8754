#!/usr/bin/env bash
# Multi-process training with torchrun on one or more machines, GPU or CPU-only.
#
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# GPUS is the number of processes on this machine (one per GPU; on a machine without a GPU, CPU processes
# that talk through gloo). Several machines: run it on each with the same NNODES, MASTER_ADDR and PORT and
# NODE_RANK=0..NNODES-1. Environment:
#   NNODES (1)  NODE_RANK (0)  PORT (29500)  MASTER_ADDR (127.0.0.1)  PYTHON (python)
# Example: NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh configs/.../x.py 8 --amp
set -eo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$(dirname "$TOOLS_DIR")${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS_DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
