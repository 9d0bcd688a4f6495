#!/bin/bash
# test_job_leaks.sh STRATA WORKDIR SRCDIR BUILDDIR: every `strata` command once, on
# its success path and on an error path at 1 rank, and the commands whose jobs code
# differs on ranks other than 0 (slices of input files, gathers) again at 2 ranks,
# with LeakSanitizer on.
#
# In a sanitized build the other script tests run with detect_leaks=0: telling Open
# MPI's allocations from Strata's needs the slow unwinder on every malloc
# (tests/lsan.supp) and a leak check at exit, about 1 s of CPU per process even with
# MPI_Init's allocations ignored (jobs/mpi_start.h). The library's own leaks are
# checked by every unit and MPI test; this script checks the jobs' code (jobs/*.c)
# once per path. Outside a sanitized build it has nothing to check and is skipped.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
[ "${STRATA_SANITIZED:-0}" = 1 ] || skip "not a sanitized build"
export ASAN_OPTIONS=fast_unwind_on_malloc=0:abort_on_error=0:detect_leaks=1
export LSAN_OPTIONS=suppressions=$SRC/tests/lsan.supp:print_suppressions=0
# ok NP ARGS...: must succeed with no leak report. bad NP ARGS...: must fail with a
# message from strata and no leak report.
ok() {
local np=$1; shift
mpirun --oversubscribe -np "$np" "$STRATA" "$@" > out.txt 2> err.txt || fail "np $np $*: $(tail -20 err.txt)"
! grep -q "LeakSanitizer" err.txt || fail "np $np $*: leak: $(grep -A8 'Direct leak' err.txt | head -30)"
}
bad() {
local np=$1; shift
if mpirun --oversubscribe -np "$np" "$STRATA" "$@" > out.txt 2> err.txt; then fail "np $np $* succeeded"; fi
! grep -q "LeakSanitizer" err.txt || fail "np $np $*: leak: $(grep -A8 'Direct leak' err.txt | head -30)"
grep -q "strata" err.txt || fail "np $np $*: no message: $(tail -5 err.txt)"
}

printf '1 1 1 3\n2 2 2 4 0\n40 40 20 5\n' > upd.txt
printf '1 1 1\n40 40 20\n' > pts.txt
printf '1 1 1 3\n99999 0 0 4\n' > outside.txt
head -c $((16 * 12 * 8 * 2)) /dev/zero > vol.raw
np=1 w=w1
ok $np create $w --dims 48,48,24 --chunk 16 --generate terrain --seed 3 --quiet
bad $np create $w --dims 8,8,8 --quiet
ok $np update $w upd.txt --quiet
ok $np update $w upd.txt --defer-index --quiet
bad $np update $w outside.txt --quiet
ok $np get $w 1 1 1
ok $np get $w --points pts.txt --lod 2 --threshold 0.5
bad $np get $w 1 1 99
ok $np info $w --json
bad $np info nowhere
ok $np reindex $w
ok $np reindex $w --full
ok $np region $w --box 0,0,0,48,48,24 --lod 2
bad $np region $w --box 0,0,0,48,48,24 --lod 99
ok $np ray $w --from 5,5,23 --dir 0,0,-1
bad $np ray $w --from 5,5,99 --dir 0,0,-1
ok $np render $w -o r$np.png --size 64,48 --hide water --lod 1 --quiet
bad $np render $w -o r$np.png --size 64,48 --camera "0,0,30|24,24,0|0,0,0|40"
ok $np stats $w --box 0,0,0,20,20,20
bad $np stats $w --box 0,0,0
ok $np simulate $w --steps 2 --process volcanic --seed 1 --quiet
bad $np simulate $w --steps 0
ok $np extract $w --box 0,0,0,48,48,24 -o x$np.h5 --png x$np.png --quiet
bad $np extract $w --box 0,0,0,48,48,24
ok $np compact $w
ok $np rebalance $w --by bytes
ok $np fsck $w
ok $np import r$np --raw vol.raw --dims 16,12,8 --type uint16 --chunk 16
bad $np import r$np --raw vol.raw --dims 16,12,9 --type uint16 --force
np=2 w=w2
ok $np create $w --dims 48,48,24 --chunk 16 --generate terrain --seed 3 --quiet
ok $np update $w upd.txt --quiet
bad $np update $w outside.txt --quiet
ok $np get $w --points pts.txt --lod 2
ok $np region $w --box 0,0,0,48,48,24 --lod 2
ok $np stats $w --box 0,0,0,20,20,20
ok $np simulate $w --steps 2 --process erosion --seed 1 --quiet
ok $np extract $w --box 0,0,0,48,48,24 -o x$np.h5 --png x$np.png --quiet
ok $np import r$np --raw vol.raw --dims 16,12,8 --type uint16 --chunk 16
echo "test_job_leaks: ok"
