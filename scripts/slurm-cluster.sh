#!/bin/bash
# slurm-cluster.sh up|down|status STATE [munge|none]
#
# A real single-node Slurm on this host, without systemd, for tests and for trying
# the slurm/*.sbatch scripts: munged (or auth/none), slurmctld and slurmd, all
# state, logs, sockets and pid files under the directory STATE (use a fresh one
# per cluster: a controller restarted on the state of a killed one resurrects
# its jobs). After `up`, point the Slurm commands at it:
#
#   scripts/slurm-cluster.sh up /tmp/slurm-state
#   export SLURM_CONF=/tmp/slurm-state/slurm.conf
#   sbatch --wait slurm/fsck.sbatch my-world
#   scripts/slurm-cluster.sh down /tmp/slurm-state
#
# Authentication: munge (a private munged with its own key and socket in STATE)
# when munged is installed, auth/none otherwise; the third argument or
# STRATA_SLURM_AUTH forces one. Ports: 6817/6818 unless taken (another cluster on
# this host), then the next free pair. The node is this host (`hostname -s`,
# which slurmctld insists on) with the CPUs and memory `slurmd -C` reports.
# Facts behind each setting: ../shared/recipes/slurm-local.md (in the project
# workspace); docs/operations.md describes the scripts that run on it.
set -eu

usage() { echo "usage: $0 up|down|status STATE [munge|none]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
STATE=$2
AUTH=${3:-${STRATA_SLURM_AUTH:-}}
if [ -z "$AUTH" ]; then
    if command -v munged >/dev/null && command -v mungekey >/dev/null; then AUTH=munge; else AUTH=none; fi
fi
case $AUTH in munge | none) ;; *) usage ;; esac
export SLURM_CONF=$STATE/slurm.conf

die() { echo "slurm-cluster: $*" >&2; exit 1; }

# A pid file naming a live process.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

pick_ports() {
    local p=6817
    while [ $p -lt 6917 ]; do
        if port_free $p && port_free $((p + 1)); then
            CTLD_PORT=$p D_PORT=$((p + 1))
            return 0
        fi
        p=$((p + 2))
    done
    die "no free port pair in 6817..6916"
}

start_munge() {
    local m=$STATE/munge
    # munged refuses a socket whose directory or any parent is not o+x.
    mkdir -p "$m" && chmod 755 "$STATE" "$m"
    [ -f "$m/munge.key" ] || mungekey --create --keyfile="$m/munge.key"
    munged --key-file="$m/munge.key" --socket="$m/munge.socket" --pid-file="$m/munged.pid" \
        --log-file="$m/munged.log" --seed-file="$m/munged.seed" ||
        die "munged did not start (see $m/munged.log)"
    munge -n -S "$m/munge.socket" | unmunge -S "$m/munge.socket" >/dev/null ||
        die "munge credential round trip failed (see $m/munged.log)"
}

write_conf() {
    local host=$1 authconf
    if [ "$AUTH" = munge ]; then
        authconf="AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket"
    else
        authconf="AuthType=auth/none
CredType=cred/none"
    fi
    # MpiDefault=none: the sbatch scripts ask for --mpi=pmix themselves, as they
    # must on sites whose default differs. MinJobAge=4 and a 1 s scheduler
    # interval make `sbatch --wait` and --begin jobs react within seconds.
    cat >"$SLURM_CONF" <<EOF
ClusterName=strata-local
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=$(id -un)
SlurmdUser=root
$authconf
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
ReturnToService=2
MinJobAge=4
KillWait=5
MailProg=/bin/true
EnforcePartLimits=ALL
DependencyParameters=kill_invalid_depend
$(slurmd -C | head -1) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null ||
        die "slurmctld/slurmd not installed (apt-get install slurm-wlm munge)"
    [ "$(id -u)" = 0 ] || die "slurmd must run as root (it starts jobs as their users)"
    if alive "$STATE/run/slurmctld.pid" || alive "$STATE/run/slurmd.pid"; then
        die "a cluster is already running on $STATE (run: $0 down $STATE)"
    fi
    local host
    host=$(hostname -s)
    mkdir -p "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log" "$STATE/run"
    [ "$AUTH" = munge ] && start_munge
    pick_ports
    write_conf "$host"
    slurmctld || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
    slurmd || die "slurmd did not start (see $STATE/log/slurmd.log)"
    # sinfo can block ~10 s on a controller that is not answering: bound it.
    local state
    for _ in $(seq 150); do
        state=$(timeout 5 sinfo -h -o %T 2>/dev/null || true)
        if [ "$state" = idle ]; then
            echo "slurm-cluster: up on $host (auth/$AUTH, ports $CTLD_PORT/$D_PORT);" \
                "export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm-cluster: node not idle after 30 s (state '$state'):" >&2
    tail -n 5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    exit 1
}

down() {
    [ -d "$STATE" ] || die "no state directory $STATE"
    local pids="" f p still
    for f in "$STATE/run/slurmctld.pid" "$STATE/run/slurmd.pid"; do
        alive "$f" && pids="$pids $(cat "$f")"
    done
    if [ -n "$pids" ] && [ -f "$SLURM_CONF" ]; then
        timeout 10 scontrol shutdown >/dev/null 2>&1 || true
    fi
    # slurmd only acts on a shutdown after its current registration attempt
    # (10 s or more when the controller is gone): wait, then kill what is left.
    for _ in $(seq 100); do
        still=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && still="$still $p"; done
        [ -z "$still" ] && break
        sleep 0.1
    done
    for p in $still; do kill -9 "$p" 2>/dev/null || true; done
    if alive "$STATE/munge/munged.pid"; then
        p=$(cat "$STATE/munge/munged.pid")
        kill "$p"
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    fi
    echo "slurm-cluster: down ($STATE)"
}

status() {
    local f
    for f in run/slurmctld.pid run/slurmd.pid munge/munged.pid; do
        if alive "$STATE/$f"; then echo "$(basename "$f" .pid): running ($(cat "$STATE/$f"))"
        else echo "$(basename "$f" .pid): not running"; fi
    done
    alive "$STATE/run/slurmctld.pid" && timeout 5 sinfo || true
}

case $cmd in
up) up ;;
down) down ;;
status) status ;;
*) usage ;;
esac
