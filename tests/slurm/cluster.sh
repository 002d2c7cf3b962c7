#!/usr/bin/env bash
# A throw-away, single-node SLURM for the pipeline's cluster test (tests/test_slurm.py).
#
#   tests/slurm/cluster.sh install  # only install slurmctld, slurmd, slurm-client, munge (root + apt; CI)
#   tests/slurm/cluster.sh start    # install (root + apt) if needed, configure, start, wait for the node
#   tests/slurm/cluster.sh status   # our daemons and the partition
#   tests/slurm/cluster.sh stop     # cancel our jobs, stop ONLY the daemons this script started
#
# The configuration is /etc/slurm/slurm.conf, SLURM's default path, because client commands inside
# jobs must find it without SLURM_CONF (snakemake-executor-plugin-slurm-jobstep 0.6.1 removes every
# SLURM_* variable, SLURM_CONF included, before its nested srun). The script writes that file only
# if it is absent or was written by this script (first line), and removes it again on `stop`.
# Everything else is private to one state folder ($MGRL_SLURM_DIR, default /tmp/mgrl-slurm): a munge
# key and socket of its own, spool/state folders, logs and the PIDs of the daemons it started. The
# daemons listen on their own ports, so a system munge on the same machine is neither used nor
# disturbed.
#
# Exit codes: 0 ok, 1 failure, 4 cannot run here (SLURM/munge missing and not installable, not
# root, or a foreign /etc/slurm/slurm.conf): the test skips on 4 and fails on anything else.
#
# Knobs: MGRL_SLURM_DIR, MGRL_SLURM_PORT (slurmctld port, slurmd uses +1; default 16817),
# MGRL_SLURM_PARTITION (default debug), MGRL_SLURM_WAIT (seconds for the node to come up, 60).
#
# Notes from running Snakemake's SLURM executor against it:
# - no accounting database here: profiles must set `slurm-status-command: squeue` (with sacct the
#   status queries fail and Snakemake waits forever); MinJobAge stays at 300 s so that finished jobs
#   remain visible to squeue long enough;
# - no cgroups in containers: processes are tracked through /proc and tasks are not bound to cores.
set -euo pipefail

DIR=${MGRL_SLURM_DIR:-/tmp/mgrl-slurm}
PORT=${MGRL_SLURM_PORT:-16817}
PARTITION=${MGRL_SLURM_PARTITION:-debug}
WAIT=${MGRL_SLURM_WAIT:-60}
NODE=localhost
CONF=/etc/slurm/slurm.conf
MARK='# single-node test cluster written by tests/slurm/cluster.sh'

say() { echo "[mgrl-slurm] $*" >&2; }
fail() { say "error: $*"; exit 1; }
cannot() { say "cannot run here: $*"; exit 4; }

have_binaries() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null &&
    command -v squeue >/dev/null && command -v munged >/dev/null && command -v munge >/dev/null
}

install_binaries() {
  have_binaries && return 0
  [ "$(id -u)" -eq 0 ] || cannot "slurmctld/slurmd/munged are not installed and installing needs root"
  command -v apt-get >/dev/null || cannot "slurmctld/slurmd/munged are not installed and there is no apt-get"
  say "installing slurmctld slurmd slurm-client munge with apt-get (about a minute)"
  # The packages would start their services; a policy-rc.d that says no keeps them stopped.
  local added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added=1
  fi
  local rc=0
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null; } || rc=$?
  [ "$added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || fail "apt-get install failed (exit $rc)"
  have_binaries || fail "packages installed but the daemons are still missing"
}

# running NAME: the PID this script recorded for NAME, if that process is still NAME
running() {
  local pid
  pid=$(cat "$DIR/$1.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

# launch NAME CMD...: start a foreground daemon in its own session, remember its PID
launch() {
  local name=$1; shift
  if running "$name" >/dev/null; then say "$name already running (pid $(running "$name"))"; return; fi
  # Not a process-group leader in a script, so setsid execs in place and $! is the daemon itself.
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/$name.pid"
  sleep 0.3
  running "$name" >/dev/null || { tail -n 20 "$DIR/log/$name.out" >&2 || true; fail "$name exited at start"; }
  say "started $name (pid $(running "$name"))"
}

write_config() {
  local cpus mem
  cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n1)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$cpus" ] && [ -n "$mem" ] || fail "slurmd -C reported no CPUs/RealMemory"
  mem=$((mem * 9 / 10))  # a RealMemory above what slurmd measures would drain the node
  if [ -f "$CONF" ] && ! ours_conf; then
    cannot "$CONF exists and was not written by this script; not overwriting a real cluster's config"
  fi
  install -d -m 0755 "$(dirname "$CONF")"
  cat >"$CONF.new" <<EOF
$MARK (rewritten on every start, removed on stop)
ClusterName=mgrltest
SlurmctldHost=$NODE
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/socket
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MinJobAge=300
KillWait=5
JobRequeue=1
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then rm -f "$CONF.new"; return 1; fi
  mv "$CONF.new" "$CONF"
  return 0
}

ours_conf() { [ -f "$CONF" ] && [ "$(head -n1 "$CONF" | cut -c1-${#MARK})" = "$MARK" ]; }

node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true; }

cmd_start() {
  local t0=$SECONDS state="" i
  install_binaries
  [ "$(id -u)" -eq 0 ] || cannot "starting slurmctld/slurmd needs root"
  # munged insists that every folder above its socket is searchable by everyone
  install -d -m 0755 "$DIR" "$DIR/munge" "$DIR/ctld" "$DIR/spool" "$DIR/run" "$DIR/log"
  if [ ! -s "$DIR/munge/key" ]; then
    dd if=/dev/urandom of="$DIR/munge/key" bs=1024 count=1 status=none
    chmod 0400 "$DIR/munge/key"
  fi
  if write_config && { running slurmctld >/dev/null || running slurmd >/dev/null; }; then
    say "configuration changed: restarting our daemons"
    stop_daemons
  fi
  launch munged munged --foreground --force --socket="$DIR/munge/socket" --key-file="$DIR/munge/key" \
    --pid-file="$DIR/run/munged.pid" --seed-file="$DIR/munge/seed" --log-file="$DIR/log/munged.log"
  for i in $(seq 1 50); do [ -S "$DIR/munge/socket" ] && break; sleep 0.1; done
  munge -S "$DIR/munge/socket" -n | unmunge -S "$DIR/munge/socket" >/dev/null ||
    fail "munge round trip failed; see $DIR/log/munged.log"
  launch slurmctld slurmctld -D -c -f "$CONF"  # -c: no jobs recovered from an earlier run
  launch slurmd slurmd -D -f "$CONF" -N "$NODE"
  for i in $(seq 1 $((WAIT * 4))); do
    state=$(node_state)
    case "$state" in
      idle | mixed | allocated) break ;;
      down* | drain*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.25
  done
  case "$state" in
    idle | mixed | allocated) ;;
    *) sinfo -N -l >&2 || true; fail "node $NODE is '${state:-unknown}' after ${WAIT}s; see $DIR/log/" ;;
  esac
  say "node $NODE $state, partition $PARTITION up in $((SECONDS - t0))s"
}

# stop_one NAME: TERM (then KILL) the process this script recorded, only if it is still NAME
stop_one() {
  local name=$1 pid i
  pid=$(running "$name" || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do running "$name" >/dev/null || break; sleep 0.1; done
    if running "$name" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$DIR/$name.pid"
}

stop_daemons() {
  stop_one slurmd
  stop_one slurmctld
}

cmd_stop() {
  local i
  if running slurmctld >/dev/null && ours_conf; then
    # jobs of this cluster would outlive slurmd (slurmstepd keeps running): cancel them first
    scancel --full --quiet --partition="$PARTITION" 2>/dev/null || true
    for i in $(seq 1 40); do
      [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
      sleep 0.25
    done
  fi
  stop_daemons
  stop_one munged
  if ours_conf; then rm -f "$CONF"; fi
}

cmd_status() {
  local name
  for name in munged slurmctld slurmd; do
    if running "$name" >/dev/null; then echo "$name: running (pid $(running "$name"))"
    else echo "$name: not running"; fi
  done
  if running slurmctld >/dev/null; then sinfo || true; squeue || true; fi
}

case "${1:-}" in
  install) install_binaries ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
