#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by tools/slurm/start_slurm.sh: cancel its jobs, then stop
# slurmd, slurmctld and munged by the pids in their pidfiles. Safe to run when nothing is running.
set -u

stop_pid() {  # NAME PIDFILE
  local name=$1 pidfile=$2 pid
  if [ ! -s "$pidfile" ]; then echo "[stop_slurm] $name: not running (no $pidfile)"; return 0; fi
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; echo "[stop_slurm] $name ($pid) killed"
    else echo "[stop_slurm] $name ($pid) stopped"; fi
  else
    echo "[stop_slurm] $name: pid $pid was not running"
  fi
  rm -f "$pidfile"
}

if command -v squeue >/dev/null && scontrol ping 2>/dev/null | grep -q 'is UP'; then
  jobs=$(squeue -h -o %i 2>/dev/null)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel --full --quiet $jobs 2>/dev/null || true
    for _ in $(seq 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
  fi
fi
stop_pid slurmd /run/slurm/slurmd.pid
stop_pid slurmctld /run/slurm/slurmctld.pid
stop_pid munged /run/munge/munged.pid
exit 0
