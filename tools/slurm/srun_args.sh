# Sourced by tools/slurm_train.sh and tools/slurm_test.sh: works out the srun resource options.
#
# In:  PARTITION, GPUS (processes in all, default 8), GPUS_PER_NODE, TASKS_PER_NODE, CPUS_PER_TASK
# Out: SLURM_RESOURCE_ARGS (array); for CPU jobs OMP_NUM_THREADS (exported, default CPUS_PER_TASK)
#
# GPU jobs (GPUS_PER_NODE > 0): one task per GPU, --gres=gpu:GPUS_PER_NODE, exactly as the mm libraries'
# scripts. CPU jobs (GPUS_PER_NODE=0): no --gres; TASKS_PER_NODE processes per node (default: all GPUS on one
# node) that talk through gloo. If GPUS_PER_NODE is not set, the partition decides: 8 if its nodes have GPU
# GRES (as sinfo reports them), else 0. The check asks slurmctld, so it is right on a login node without GPUs.

GPUS=${GPUS:-8}
if [ -z "${GPUS_PER_NODE:-}" ]; then
  if sinfo -h -p "$PARTITION" -o '%G' 2>/dev/null | grep -q 'gpu'; then
    GPUS_PER_NODE=8
  else
    GPUS_PER_NODE=0
    echo "[wavevit_mm] partition '$PARTITION' has no GPU GRES: starting $GPUS CPU processes (gloo)" >&2
  fi
fi
if [ "$GPUS_PER_NODE" -gt 0 ]; then
  TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS_PER_NODE}
  CPUS_PER_TASK=${CPUS_PER_TASK:-5}
  SLURM_RESOURCE_ARGS=(--gres="gpu:$GPUS_PER_NODE")
else
  TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS}
  CPUS_PER_TASK=${CPUS_PER_TASK:-1}
  SLURM_RESOURCE_ARGS=()
fi
SLURM_RESOURCE_ARGS+=(--ntasks="$GPUS" --ntasks-per-node="$TASKS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK")
if [ "$GPUS_PER_NODE" -eq 0 ]; then
  # a CPU process computes with OMP threads: give it its CPUs, but not one thread per core of the whole node
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$CPUS_PER_TASK}
fi
