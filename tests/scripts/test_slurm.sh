#!/bin/bash
# Every slurm/*.sbatch script on a real single-node Slurm (munge, slurmctld,
# slurmd, brought up by scripts/slurm-cluster.sh in a fresh state directory),
# each run with `sbatch --wait` and its result checked: simulate (the epoch grows),
# reindex (nothing left stale), extract (/material agrees with `strata get`),
# compact (one segment), fsck (clean), an afterok chain (and a child cancelled
# when its parent fails), the self-resubmitting reindex (runs, then stops by its
# stop file and by its run count), the recurring reindex beside a running simulation
# (both --overcommit: it publishes, the simulation keeps every commit, fsck clean),
# and SIGTERM to a running simulation, to the
# ranks (srun) and to the batch shell (mpirun launcher): the world stays at the
# commit the job names, fsck is clean, and the job says so.
# Args: strata-binary workdir source-dir build-dir.
set -u
BIN=$(readlink -f "$1")
. "$(dirname "$0")/common.sh" "$@"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null; then
    skip "slurmctld/slurmd not installed (apt-get install slurm-wlm munge)"
fi
T0=$(date +%s)
STATE=$WORK/state
SLURM_DIR=$SRC/slurm
PATH="$(dirname "$BIN"):$PATH"
export PATH STRATA_BIN=$BIN
unset STRATA_LAUNCHER STRATA_REINDEX_INTERVAL STRATA_REINDEX_MAX_RUNS STRATA_REINDEX_STOP STRATA
export SLURM_CONF=$STATE/slurm.conf

fail() {
    echo "FAIL: $*"
    exit 1
}
step() { echo "[$(($(date +%s) - T0)) s] $*"; }
show() { echo "---- $1"; cat "$1" 2>/dev/null; echo "----"; }

# The launcher block must be the same in every script (each is self-contained,
# since sbatch runs a copy of it).
ref=""
for f in "$SLURM_DIR"/*.sbatch; do
    sum=$(sed -n '/^# ---- launcher:/,/^# ---- end of launcher/p' "$f" | md5sum)
    [ "$(sed -n '/^# ---- launcher:/,/^# ---- end of launcher/p' "$f" | wc -l)" -gt 20 ] ||
        fail "$f has no launcher block"
    [ -z "$ref" ] && ref=$sum
    [ "$sum" = "$ref" ] || fail "$f: launcher block differs from the other scripts"
done

cleanup() {
    "$SRC/scripts/slurm-cluster.sh" down "$STATE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$SRC/scripts/slurm-cluster.sh" up "$STATE" || {
    tail -n 20 "$STATE"/log/*.log
    fail "cluster did not come up"
}

# sbatch --wait SBATCH-ARGS...; sets JID and OUT (its output file), returns its rc.
submit() {
    JID=$(sbatch --parsable --wait "$@")
    local rc=$?
    JID=${JID%%;*}
    OUT=$(ls strata-*-"$JID".out 2>/dev/null | head -n 1)
    return $rc
}
# sbatch without waiting; sets JID.
start() {
    JID=$(sbatch --parsable "$@") || fail "sbatch $* refused"
    JID=${JID%%;*}
}
wait_gone() { # JOBID TIMEOUT
    for _ in $(seq "$2"); do
        squeue -h -j "$1" 2>/dev/null | grep -q . || return 0
        sleep 1
    done
    fail "job $1 still in the queue after $2 s"
}
epoch() { "$BIN" info W --json -q | sed -n 's/^ *"epoch": \([0-9]*\),/\1/p'; }
segments() { "$BIN" info W --json -q | sed -n 's/^ *"segments": \([0-9]*\),/\1/p'; }
has_command() { "$BIN" --help 2>&1 | grep -qE "^ +$1 "; }

step "create"
"$BIN" create W --dims 128,128,64 --generate terrain --seed 5 -q || fail "strata create"
e0=$(epoch)

step "simulate"
submit -n 2 "$SLURM_DIR/simulate.sbatch" W --steps 2 --commit-every 1 --seed 1 ||
    { show "$OUT"; fail "simulate job failed"; }
grep -q "strata simulate: W: " "$OUT" || { show "$OUT"; fail "no simulate summary line"; }
grep -q "via srun" "$OUT" || { show "$OUT"; fail "simulate did not pick srun --mpi=pmix"; }
e1=$(epoch)
[ "$e1" -eq $((e0 + 2)) ] || fail "epoch $e0 -> $e1 after 2 steps committed every step"

if has_command reindex; then
    step "reindex"
    submit -n 2 "$SLURM_DIR/reindex.sbatch" W || { show "$OUT"; fail "reindex job failed"; }
    grep -q "strata reindex: W: " "$OUT" || { show "$OUT"; fail "no reindex summary line"; }
    "$BIN" info W --json -q | grep -q '"stale_chunks": 0' || fail "chunks still stale after reindex"
else
    echo "NOTE: strata has no reindex command yet: reindex.sbatch not run"
fi

if has_command extract; then
    step "extract"
    submit -n 2 "$SLURM_DIR/extract.sbatch" W 8,16,4,72,48,60 box.h5 ||
        { show "$OUT"; fail "extract job failed"; }
    [ -s box.h5 ] || fail "extract: no box.h5"
    # Compare /material with strata get on a sample of the box.
    $py - <<'PY' || fail "extract: /material disagrees with strata get"
import subprocess, sys, random, os, h5py
random.seed(3)
with h5py.File("box.h5", "r") as f:
    m = f["/material"][()]
assert m.shape == (56, 32, 64), m.shape
pts = [(random.randrange(8, 72), random.randrange(16, 48), random.randrange(4, 60)) for _ in range(300)]
with open("points.txt", "w") as f:
    f.writelines(f"{x} {y} {z}\n" for x, y, z in pts)
got = subprocess.run([os.environ["STRATA_BIN"], "get", "W", "--points", "points.txt", "-q"],
                     capture_output=True, text=True, check=True).stdout.split()
want = [str(m[z - 4, y - 16, x - 8]) for x, y, z in pts]
if got != want:
    sys.exit(f"first difference at {next(i for i in range(len(got)) if got[i] != want[i])}")
print(f"extract: /material {m.shape} agrees with strata get on {len(pts)} points")
PY
else
    echo "NOTE: strata has no extract command yet: extract.sbatch not run"
fi

step "compact"
[ "$(segments)" -gt 1 ] || fail "expected several segments before compaction"
submit -n 2 "$SLURM_DIR/compact.sbatch" W || { show "$OUT"; fail "compact job failed"; }
[ "$(segments)" -eq 1 ] || fail "segments = $(segments) after compaction"

step "fsck"
submit -n 2 "$SLURM_DIR/fsck.sbatch" W || { show "$OUT"; fail "fsck job failed"; }
grep -q "clean" "$OUT" || { show "$OUT"; fail "fsck did not say clean"; }

step "afterok chain: simulate, then fsck on 4 ranks (--overcommit)"
e2=$(epoch)
start -n 2 "$SLURM_DIR/simulate.sbatch" W --steps 1 --seed 2
parent=$JID
submit -n 4 --overcommit --dependency=afterok:"$parent" "$SLURM_DIR/fsck.sbatch" W ||
    { show "$OUT"; fail "chained fsck failed"; }
grep -q "finished" "strata-simulate-$parent.out" || fail "the chained fsck ran before simulate ended"
grep -q "on 4 rank(s)" "$OUT" && grep -q clean "$OUT" || { show "$OUT"; fail "chained fsck output"; }
[ "$(epoch)" -eq $((e2 + 1)) ] || fail "chained simulate did not commit (epoch $e2 -> $(epoch))"
# A failing parent (no such world: exit 2) cancels its afterok child.
start -n 1 "$SLURM_DIR/fsck.sbatch" no-such-world
bad=$JID
start -n 1 --dependency=afterok:"$bad" "$SLURM_DIR/fsck.sbatch" W
child=$JID
wait_gone "$child" 60
grep -q "no world at 'no-such-world'" "strata-fsck-$bad.out" || fail "missing world not reported"
[ ! -e "strata-fsck-$child.out" ] || fail "afterok child ran although its parent failed"

if has_command reindex; then
    step "recurring reindex: runs until its stop file appears"
    # Every successor is submitted held (STRATA_RESUBMIT_ARGS=--hold, passed on
    # from run to run), so that each run starts when this test releases it: the
    # stop file is touched after the second run ended and before the third may
    # start, whatever the machine's speed (without the hold, the third run could
    # start, find no stop file and reindex before the touch).
    rm -f strata-reindex-recurring-*.out
    STRATA_REINDEX_INTERVAL=1 STRATA_RESUBMIT_ARGS=--hold submit -n 2 \
        "$SLURM_DIR/reindex-recurring.sbatch" W || { show "$OUT"; fail "first recurring run failed"; }
    grep -q "next run is job" "$OUT" || { show "$OUT"; fail "first run did not resubmit"; }
    second=$(sed -n 's/.*next run is job \([0-9]*\).*/\1/p' "$OUT")
    scontrol release "$second" || fail "scontrol release $second"
    wait_gone "$second" 90
    grep -q "strata reindex: W" "strata-reindex-recurring-$second.out" ||
        { show "strata-reindex-recurring-$second.out"; fail "second run did not reindex"; }
    third=$(sed -n 's/.*next run is job \([0-9]*\).*/\1/p' "strata-reindex-recurring-$second.out")
    [ -n "$third" ] || { show "strata-reindex-recurring-$second.out"; fail "second run did not resubmit"; }
    touch W.reindex-stop
    scontrol release "$third" || fail "scontrol release $third"
    wait_gone "$third" 90
    grep -q "stop file W.reindex-stop exists" "strata-reindex-recurring-$third.out" ||
        { show "strata-reindex-recurring-$third.out"; fail "third run did not stop"; }
    [ "$(ls strata-reindex-recurring-*.out | wc -l)" -eq 3 ] || fail "not exactly 3 runs"
    [ -z "$(squeue -h)" ] || fail "jobs left in the queue: $(squeue -h)"
    rm W.reindex-stop

    step "recurring reindex: stops after STRATA_REINDEX_MAX_RUNS"
    STRATA_REINDEX_INTERVAL=1 STRATA_REINDEX_MAX_RUNS=1 submit -n 2 \
        "$SLURM_DIR/reindex-recurring.sbatch" W || { show "$OUT"; fail "max-runs run failed"; }
    grep -q "run 1 of 1: the last one" "$OUT" || { show "$OUT"; fail "max-runs did not stop"; }
    sleep 3
    [ -z "$(squeue -h)" ] || fail "a run was resubmitted past the maximum: $(squeue -h)"
fi

if has_command reindex; then
    # Issue 23: the recurring reindex beside a running simulation. Both jobs
    # --overcommit (one CPU each on this 2-CPU node), so that Slurm runs them at once.
    step "recurring reindex beside a running simulation"
    before=$(epoch)
    start -n 2 --overcommit "$SLURM_DIR/simulate.sbatch" W --steps 100000 --commit-every 1 \
        --defer-index --seed 6
    sim=$JID
    for _ in $(seq 120); do
        e=$(epoch)
        [ -n "$e" ] && [ "$e" -gt $((before + 1)) ] && break
        sleep 0.5
    done
    [ "$e" -gt $((before + 1)) ] || fail "the simulation job never committed"
    STRATA_REINDEX_MAX_RUNS=1 submit -n 2 --overcommit "$SLURM_DIR/reindex-recurring.sbatch" W ||
        { show "$OUT"; fail "the recurring reindex failed beside the simulation"; }
    squeue -h -j "$sim" -t RUNNING | grep -q . || fail "the simulation was not running beside the reindex"
    grep -q "strata reindex: W: incremental reindex of .* published at epoch" "$OUT" ||
        { show "$OUT"; fail "the reindex beside the simulation published nothing"; }
    scancel --signal=TERM "$sim" || fail "scancel --signal=TERM $sim"
    wait_gone "$sim" 120
    after=$(epoch)
    [ "$after" -gt $((before + 1)) ] || fail "the simulation's commits were lost (epoch $after)"
    "$BIN" fsck W -q || fail "fsck after a reindex beside a simulation"
    "$BIN" reindex W -q || fail "reindex after the simulation"
    "$BIN" fsck W -q || fail "fsck after the last reindex"
    echo "reindex beside a simulation: $(grep -o 'of epoch [0-9]*, published.*now)' "$OUT"); simulation kept every commit (epoch $before -> $after)"
fi

# SIGTERM while a simulation runs. Wait for a commit of this job, signal it, and
# check the world is at the commit the job names.
# Each case starts from a freshly generated world: a process reaches a steady state
# (volcanic on this world within about 80 steps, a fraction of a second), after which
# a step changes nothing and commits nothing. The job's steps outnumber what it can
# run before the signal, so only SIGTERM ends it.
term_test() { # LAUNCHER SCANCEL-OPTIONS...
    local launcher=$1 before e named
    shift
    "$BIN" create W --dims 128,128,64 --generate terrain --seed 5 --force -q || fail "strata create --force"
    before=$(epoch)
    STRATA_LAUNCHER=$launcher start -n 2 "$SLURM_DIR/simulate.sbatch" W --steps 1000000 --commit-every 1 \
        --seed 4 --process volcanic
    for _ in $(seq 120); do
        e=$(epoch)
        [ -n "$e" ] && [ "$e" -gt "$before" ] && break
        sleep 0.5
    done
    [ "$e" -gt "$before" ] || { show "strata-simulate-$JID.out"; fail "the simulation job never committed"; }
    scancel "$@" --signal=TERM "$JID" || fail "scancel $* --signal=TERM $JID"
    wait_gone "$JID" 120
    local out=strata-simulate-$JID.out
    grep -q "via $launcher" "$out" || { show "$out"; fail "not launched via $launcher"; }
    grep -q "STOPPED by SIGTERM.*the world stays at its last commit" "$out" ||
        { show "$out"; fail "the job did not say it stopped at its last commit"; }
    "$BIN" fsck W -q || fail "fsck after SIGTERM ($launcher)"
    named=$(sed -n 's/.*stays at its last commit (epoch \([0-9]*\)).*/\1/p' "$out" | head -n 1)
    e=$(epoch)
    [ -n "$named" ] && [ "$named" = "$e" ] || { show "$out"; fail "world at epoch $e, job said '$named'"; }
    echo "SIGTERM ($launcher, scancel $*): stopped at epoch $e (started at $before)"
}
step "SIGTERM to the ranks of an srun job (as --signal=TERM@T does)"
term_test srun
step "SIGTERM to the batch shell of an mpirun job (as --signal=B:TERM@T does)"
term_test mpirun --batch

step "all Slurm scripts passed"
