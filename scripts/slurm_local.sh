#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on this machine, to try profiles/slurm without a real cluster
# (and for CI: scripts/ci_slurm_smoke.sh). Debian/Ubuntu, as root.
#
#   scripts/slurm_local.sh start     # install packages if missing, start munged, mariadbd, slurmdbd, slurmctld, slurmd
#   eval "$(scripts/slurm_local.sh env)"   # SLURM_CONF for sbatch/sacct/sinfo (and snakemake --profile profiles/slurm)
#   scripts/slurm_local.sh status
#   scripts/slurm_local.sh stop      # stop exactly the daemons started here (pid files), cancel the cluster's jobs
#
# All state (configs, munge key, MariaDB data, spool, logs, pid files) lives in ${PCREG_SLURM_DIR:-/tmp/pcreg-slurm};
# delete it after `stop` to start from nothing. One node with this machine's CPUs and memory, one partition,
# proctrack/linuxproc and task/none (no cgroups), accounting through slurmdbd and MariaDB (the Slurm executor
# plugin reads job states with sacct, which needs accounting). `start` and `stop` are idempotent.
# Logs: $DIR/log (munged: $DIR/munge, mariadbd: $DIR/mysql-run, as they run as their own users).
# Ports (PCREG_SLURM_PORT_BASE, default 16817): slurmctld +0, slurmd +1, slurmdbd +2, MariaDB +3 (127.0.0.1).
set -euo pipefail

DIR="${PCREG_SLURM_DIR:-/tmp/pcreg-slurm}"
PORT="${PCREG_SLURM_PORT_BASE:-16817}"
CLUSTER=pcreg-local
PARTITION=local
TIMEOUT="${PCREG_SLURM_TIMEOUT:-120}"   # seconds to wait for each daemon / the idle node
NODE="$(hostname -s)"
export SLURM_CONF="$DIR/etc/slurm.conf"
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order; stopped in reverse

die() { echo "slurm_local: $*" >&2; exit 1; }
say() { echo "slurm_local: $*"; }

pidfile() {
  case "$1" in
    munged) echo "$DIR/munge/munged.pid" ;;
    mariadbd) echo "$DIR/mysql-run/mariadbd.pid" ;;
    *) echo "$DIR/run/$1.pid" ;;
  esac
}

# The pid of daemon $1 if it is running (pid file present, process alive and of that name), else nothing.
running_pid() {
  local f pid
  f="$(pidfile "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' < "$f")"
  [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
  [[ "$(cat "/proc/$pid/comm")" == "$1"* ]] || return 1
  echo "$pid"
}

# Wait until command "$2..." succeeds; $1 names what we wait for (in the timeout message).
wait_for() {
  local what="$1" end=$((SECONDS + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || die "timed out after ${TIMEOUT} s waiting for $what (logs: $DIR/log)"
    sleep 1
  done
}

install_packages() {
  local missing=()
  for cmd in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct sacctmgr; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  (( ${#missing[@]} == 0 )) && return
  [[ $EUID -eq 0 ]] || die "missing ${missing[*]}; install as root: apt-get install slurm-wlm slurmdbd munge mariadb-server"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install Slurm, slurmdbd, munge and MariaDB"
  say "installing slurm-wlm slurmdbd munge mariadb-server (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/dev/null
}

write_configs() {
  local cpus mem
  mkdir -p "$DIR"/{etc,run,log,spool/ctld,spool/d,munge,mysql-run}
  # This machine's CPUs (the ones this process may use) and memory (as slurmd measures it, so the node is not
  # drained for "low RealMemory"), read at every start.
  cpus="$(nproc)"
  mem="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
  [[ -n "$mem" ]] || mem="$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
  cat > "$DIR/etc/slurm.conf" <<EOF
# Written by scripts/slurm_local.sh: a single-node test cluster; state in $DIR.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CryptoType=crypto/munge
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# jobacct_gather/linux samples each job's memory, so a job over its --mem is killed (OUT_OF_MEMORY) as on a
# real cluster, without cgroups.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobAcctGatherParams=OverMemoryKill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
# The munge socket for connections to slurmdbd (AuthInfo does not cover them).
AccountingStoragePass=$DIR/munge/munge.socket
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cat > "$DIR/etc/slurmdbd.conf" <<EOF
# Written by scripts/slurm_local.sh.
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$(pidfile slurmdbd)
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=pcreg-local
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/etc/slurmdbd.conf"   # slurmdbd refuses a readable password file
}

start_munged() {
  running_pid munged >/dev/null && return
  [[ -s "$DIR/munge/munge.key" ]] || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 755 "$DIR/munge" && chmod 400 "$DIR/munge/munge.key"
  chown -R munge:munge "$DIR/munge"
  runuser -u munge -- munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$(pidfile munged)" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" \
    || die "munged did not start (see $DIR/munge/munged.log)"
  wait_for "munged" bash -c "munge -S '$DIR/munge/munge.socket' -n | unmunge -S '$DIR/munge/munge.socket'"
}

start_mariadbd() {
  running_pid mariadbd >/dev/null && return
  chown mysql:mysql "$DIR/mysql-run"
  if [[ ! -d "$DIR/mysql/mysql" ]]; then
    mkdir -p "$DIR/mysql" && chown mysql:mysql "$DIR/mysql"
    mariadb-install-db --user=mysql --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
      > "$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $DIR/log/mariadb-install.log)"
  fi
  # setsid + nohup: mariadbd does not daemonize itself; it must outlive this script.
  setsid nohup mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql" --socket="$DIR/mysql-run/mysqld.sock" \
    --pid-file="$(pidfile mariadbd)" --bind-address=127.0.0.1 --port=$((PORT + 3)) \
    --log-error="$DIR/mysql-run/mariadbd.log" --innodb-buffer-pool-size=64M > /dev/null 2>&1 < /dev/null &
  wait_for "mariadbd" mariadb --socket="$DIR/mysql-run/mysqld.sock" -e "SELECT 1"
  mariadb --socket="$DIR/mysql-run/mysqld.sock" <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'pcreg-local';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'pcreg-local';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
}

start_slurmdbd() {
  running_pid slurmdbd >/dev/null && return
  slurmdbd || die "slurmdbd did not start (see $DIR/log/slurmdbd.log)"
  wait_for "slurmdbd" sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
}

start_slurmctld() {
  running_pid slurmctld >/dev/null && return
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start (see $DIR/log/slurmctld.log)"
  wait_for "slurmctld" scontrol ping
}

start_slurmd() {
  running_pid slurmd >/dev/null && return
  slurmd -f "$SLURM_CONF" || die "slurmd did not start (see $DIR/log/slurmd.log)"
}

node_idle() {
  [[ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" =~ ^(idle|mix|alloc) ]]
}

cmd_start() {
  [[ $EUID -eq 0 ]] || die "start needs root (daemons run as munge, mysql and root)"
  install_packages
  if ! running_pid slurmctld >/dev/null; then write_configs; fi   # never rewrite the config under live daemons
  start_munged
  start_mariadbd
  start_slurmdbd
  start_slurmctld
  start_slurmd
  local t=0 end=$((SECONDS + TIMEOUT))
  until node_idle; do
    t=$((t + 1))
    if (( SECONDS >= end )); then
      sinfo -N -l 2>&1 || true
      die "node $NODE is not idle after ${TIMEOUT} s (state above; logs: $DIR/log)"
    fi
    # A node that was down (e.g. slurmd restarted) comes back once slurmd registers; ask once.
    if (( t == 20 )); then scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true; fi
    sleep 1
  done
  say "cluster $CLUSTER up: node $NODE $(sinfo -h -n "$NODE" -o '%c CPUs, %m MB, %t'), partition $PARTITION"
  say "run: export SLURM_CONF=$SLURM_CONF"
}

cmd_stop() {
  local pid d t
  # Jobs first: their slurmstepd processes would otherwise outlive slurmd.
  if running_pid slurmctld >/dev/null; then
    scancel --quiet --partition="$PARTITION" 2>/dev/null || true
    t=0
    while [[ -n "$(squeue -h -p "$PARTITION" -o %i 2>/dev/null)" ]] && (( t++ < 30 )); do sleep 1; done
  fi
  for (( i = ${#DAEMONS[@]} - 1; i >= 0; i-- )); do
    d="${DAEMONS[i]}"
    pid="$(running_pid "$d")" || continue
    kill "$pid" 2>/dev/null || true
    t=0
    while kill -0 "$pid" 2>/dev/null; do
      if (( t++ >= 30 )); then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 1
    done
    say "stopped $d ($pid)"
  done
  # slurmstepd of a job that ignored the cancel: only ours (their spool dir is ours).
  for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
    if grep -qF "$DIR/spool/d" "/proc/$pid/cmdline" "/proc/$pid/environ" 2>/dev/null; then kill -9 "$pid" || true; fi
  done
  say "stopped (state kept in $DIR; remove it for a fresh cluster)"
}

cmd_status() {
  local d pid up=0
  for d in "${DAEMONS[@]}"; do
    if pid="$(running_pid "$d")"; then echo "$d: running ($pid)"; up=$((up + 1)); else echo "$d: stopped"; fi
  done
  if running_pid slurmctld >/dev/null; then sinfo -N -h -o 'node %N: %c CPUs, %m MB, %t'; squeue; fi
  (( up == ${#DAEMONS[@]} ))
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 start|stop|status|env   (state in \$PCREG_SLURM_DIR, default /tmp/pcreg-slurm)" >&2; exit 2 ;;
esac
