#!/usr/bin/env bash
# Install (Debian packages slurm-wlm + munge) and start a single-node Slurm cluster on this machine.
#
# For CI and for trying tools/slurm_train.sh / slurm_test.sh on a machine without a cluster. Needs root and
# apt-get (Debian 12: slurm-wlm 22.05, munge 0.5); works without systemd (the daemons are started directly).
# Idempotent: a second run leaves the running cluster alone unless the generated slurm.conf changed.
#
#   bash tools/slurm/start_slurm.sh            # partition "debug" on node $(hostname -s)
#   WAVEVIT_SLURM_PARTITION=cpu bash tools/slurm/start_slurm.sh
#   bash tools/slurm/stop_slurm.sh             # stop it again
#
# Nothing here touches a real cluster: the node is 127.0.0.1 and the config lives in /etc/slurm/slurm.conf.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

partition=${WAVEVIT_SLURM_PARTITION:-debug}
node=$(hostname -s)
conf=/etc/slurm/slurm.conf
run_dir=/run/slurm

log() { echo "[start_slurm] $*"; }
die() { echo "[start_slurm] ERROR: $*" >&2; exit 1; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_from_pidfile() {
  local pidfile=$1 pid
  if ! running "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -f "$pidfile"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts system daemons)"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu machine (apt-get); install slurm-wlm and munge by hand"

# 1. packages ------------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v srun >/dev/null \
    || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge"
  apt-cache show slurm-wlm >/dev/null 2>&1 || apt-get update -qq
  # without systemd the packages' post-install scripts cannot start the services; that is expected
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# 2. munge (authentication between srun, slurmctld and slurmd) -----------------------------------------
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 0600 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! (munge -n | unmunge) >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged   # munged refuses a key owned by another user, so run it as munge
  for _ in $(seq 50); do (munge -n | unmunge) >/dev/null 2>&1 && break; sleep 0.1; done
fi
(munge -n | unmunge) >/dev/null 2>&1 || { tail -20 /var/log/munge/munged.log >&2 || true; die "munged is not working"; }
log "munge ok"

# 3. slurm.conf for one node (CPUs and memory as slurmd detects them) ----------------------------------
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm "$run_dir"
install -d -m 0755 /var/spool/slurmd /etc/slurm
hw=$(slurmd -C | head -n1 | sed -e 's/^NodeName=[^ ]* //')
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
# announce a little less memory than detected, or slurmd may report "Low RealMemory" and the node drains
hw=$(sed -e "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/" <<<"$hw")
new_conf=$(mktemp)
cat >"$new_conf" <<CONF
# written by wavevit-mm tools/slurm/start_slurm.sh: a single-node cluster on 127.0.0.1
ClusterName=wavevit
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${run_dir}/slurmctld.pid
SlurmdPidFile=${run_dir}/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=${node} NodeAddr=127.0.0.1 ${hw} State=UNKNOWN
PartitionName=${partition} Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
conf_changed=1
if [ -f "$conf" ] && cmp -s "$new_conf" "$conf"; then conf_changed=0; rm -f "$new_conf"
else install -m 0644 "$new_conf" "$conf"; rm -f "$new_conf"; fi
log "slurm.conf ($conf, changed=$conf_changed)"

# 4. daemons ---------------------------------------------------------------------------------------------
if [ "$conf_changed" -eq 1 ]; then
  stop_from_pidfile "$run_dir/slurmd.pid"
  stop_from_pidfile "$run_dir/slurmctld.pid"
fi
running "$run_dir/slurmctld.pid" || slurmctld
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q 'is UP' || { tail -30 /var/log/slurm/slurmctld.log >&2 || true; die "slurmctld did not start"; }
running "$run_dir/slurmd.pid" || slurmd -N "$node"
state=
for _ in $(seq 150); do
  state=$(sinfo -h -n "$node" -o '%T' 2>/dev/null | head -n1)
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    *drain*|down*) scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
case "$state" in
  idle|mixed|allocated|completing) ;;
  *) scontrol show node "$node" >&2 || true; tail -30 /var/log/slurm/slurmd.log >&2 || true
     die "node $node is not ready (state '$state')" ;;
esac
log "slurmctld and slurmd up, node $node $state"

# 5. one trivial job, so a broken set-up fails here and not inside a test ---------------------------------
timeout 60 srun -p "$partition" -N1 -n1 --time=1 true || die "srun smoke test failed"
for _ in $(seq 50); do [ "$(sinfo -h -n "$node" -o '%T' | head -n1)" = idle ] && break; sleep 0.1; done
log "srun works"
sinfo
