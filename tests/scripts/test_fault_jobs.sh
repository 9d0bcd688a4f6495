#!/bin/bash
# test_fault_jobs.sh STRATA WORKDIR SRCDIR BUILDDIR: injected failures through the
# strata command (docs/reliability.md, "Injected failures"): an update whose batch
# fails on one rank (STRATA_FAULT=update-batch:R:error) ends on every rank with the
# failure reported and the world unchanged, at 2, 3 and 4 ranks; a staging failure on
# a rank other than 0 in `strata simulate` (STRATA_ALLOC_FAIL, in box.c and in
# simulate's own code) is printed by that rank. Every run is bounded: a hang is a failure.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
epoch() { $STRATA info "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])'; }

$STRATA create w --dims 64,48,32 --chunk 16 --generate terrain --seed 5 --quiet
for x in 1 20 40 63; do echo "$x 5 5 7"; done > upd.txt
before=$(epoch w)
for spec in "2 1" "4 3" "3 0" "2 0"; do
  read -r np rank <<< "$spec"
  rc=0
  STRATA_FAULT=update-batch:$rank:error run "$np" update w upd.txt --quiet 2> err.txt || rc=$?
  [ $rc = 124 ] || [ $rc = 137 ] && fail "update, batch failing on rank $rank of $np: hung"
  [ $rc = 0 ] && fail "update, batch failing on rank $rank of $np: succeeded"
  grep -q "rank $rank: fault injected in a batch" err.txt ||
    fail "update, batch failing on rank $rank of $np: not reported: $(cat err.txt)"
  [ "$(epoch w)" = "$before" ] || fail "update, batch failing on rank $rank of $np: world changed"
done
run 2 fsck w --quiet || fail "fsck after the failed updates"

# The first allocation of box.c (listing the domain's chunks), the second (its
# blocks), then the third (the first box read's counts), fails on rank 1 only:
# every rank stops, rank 1 says why.
for case in "1 cannot plan this rank's domain: cannot list" \
  "2 cannot plan this rank's domain: cannot list" "3 box I/O: no memory"; do
  read -r nth text <<< "$case"
  rc=0
  STRATA_ALLOC_FAIL=$nth:1:box.c run 2 simulate w --steps 2 --seed 3 2> err.txt || rc=$?
  [ $rc = 124 ] || [ $rc = 137 ] && fail "simulate with box.c allocation $nth failing on rank 1: hung"
  [ $rc = 0 ] && fail "simulate with box.c allocation $nth failing on rank 1: succeeded"
  grep -q "rank 1: $text" err.txt ||
    fail "simulate: rank 1's failure (box.c allocation $nth) not printed: $(cat err.txt)"
done
run 2 fsck w --quiet || fail "fsck after the failed simulate"

# simulate's own allocations (jobs/job_simulate.c, jobs/simulate_active.c: the
# activity, the step's blocks, the changes kept, the exchange of changed boxes),
# every fifth failing on rank 1 in turn until a run needs fewer: every rank
# stops, rank 1 says it is out of memory, and fsck finds the world whole.
failures=0 in_step=0
for nth in $(seq 1 5 200); do
  rm -rf v && cp -r w v
  rc=0
  STRATA_ALLOC_FAIL=$nth:1:simulate run 2 simulate v --steps 2 --seed 3 2> err.txt || rc=$?
  [ $rc = 124 ] || [ $rc = 137 ] && fail "simulate with its allocation $nth failing on rank 1: hung"
  [ $rc = 0 ] && break
  grep -q "rank 1: .*out of memory" err.txt ||
    fail "simulate: rank 1's failing allocation $nth not named: $(cat err.txt)"
  grep -q "rank 1: out of memory at step" err.txt && in_step=$((in_step + 1))
  failures=$((failures + 1))
done
[ $failures -ge 5 ] && [ $in_step -ge 2 ] ||
  fail "simulate's allocations: $failures runs failed, $in_step in a step (want 5 and 2)"
run 2 fsck v --quiet || fail "fsck after simulate's allocation failures"
echo "test_fault_jobs: ok"
