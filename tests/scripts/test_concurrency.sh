#!/bin/bash
# Readers see exactly one committed state while a writer commits; a job stopped
# by SIGTERM leaves the last commit and exits non-zero saying so
# (docs/reliability.md, "Concurrency"). Snapshot reads across a compaction are
# tested by tests/mpi/mpi_snapshot.c.
#
# Writer: commits k = 1..K, each setting the same 2048 voxels, spread over every
# chunk and both ranks' ranges, to 1000 + k. Reader: `strata get --points` of
# those voxels in a loop meanwhile. Every read must hold one value only (a mix
# would be two commits at once), and values never go back in time.
set -u
. "$(dirname "$0")/common.sh" "$@"
ref="$py $SRC/tests/scripts/crash_reference.py"
NP=2 K=16
run() { mpirun_strata "$NP" "$@"; }

run create w --dims 64,64,32 --chunk 16 -q || fail create
$ref points pts.txt 64 64 32 4
# every voxel: a full rewrite of every chunk (a few voxels per chunk would be delta records,
# which keep the segments of their chain live)
for k in $(seq 0 $K); do $ref block pts.txt u$k.txt $((1000 + k)) 0 64 0 64 0 32; done
run update w u0.txt -q || fail "commit 0"

( for k in $(seq 1 $K); do
    run update w u$k.txt -q 2> writer.err || { echo "writer failed at commit $k" > writer.failed; exit 1; }
  done ) &
writer=$!
trap 'kill $writer 2>/dev/null' EXIT
reads=0 last=1000 seen=
while kill -0 $writer 2>/dev/null || [ $reads -lt 3 ]; do
  run get w --points pts.txt -q > r.txt 2> r.err || { cat r.err; fail "a reader failed during commits"; }
  [ "$(wc -l < r.txt)" = "$(wc -l < pts.txt)" ] || fail "a read returned $(wc -l < r.txt) values"
  values=$(sort -u r.txt | tr '\n' ' ')
  [ "$(echo $values | wc -w)" = 1 ] || fail "a read mixed commits: values $values"
  v=$(head -1 r.txt)
  [ "$v" -ge "$last" ] && [ "$v" -le $((1000 + K)) ] || fail "read $v after $last"
  last=$v reads=$((reads + 1)) seen="$seen $((v - 1000))"
done
wait $writer || fail "writer: $(cat writer.failed writer.err 2>/dev/null)"
trap - EXIT
[ "$last" = $((1000 + K)) ] || {
  run get w --points pts.txt -q > r.txt; [ "$(sort -u r.txt)" = $((1000 + K)) ] || fail "last commit lost"; }
echo "ok $reads reads during $K commits, each one whole commit (commits seen:$seen)"
# Every commit rewrote every chunk, so each retired the segment before it (readers
# that had opened it kept reading it; readers that lost the race started over).
segs=$(run info w --json | $py -c 'import json, sys; print(json.load(sys.stdin)["segments"])')
files=$(ls w | grep -c '^seg-')
[ "$segs" = 1 ] && [ "$files" = 1 ] || fail "after $K full rewrites: $segs live segments, $files files"
echo "ok one live segment and one segment file after $K full rewrites"

# ---- SIGTERM mid-batch (Slurm's time limit): last commit kept, exit non-zero ----
run create t --dims 64,64,64 --chunk 16 --generate terrain --seed 9 -q || fail "create t"
timeout -k 10 60 mpirun -np $NP "$STRATA" simulate t --steps 100000 --commit-every 3 --seed 2 \
  > sim.out 2> sim.err < /dev/null &
sim=$!
trap 'kill -9 $(pgrep -P "$(pgrep -P $sim | head -1)") 2>/dev/null' EXIT
# Let it commit a few times, then signal every rank as Slurm does.
for _ in $(seq 200); do
  [ "$(awk '/^epoch /{print $2}' t/MANIFEST)" -ge 4 ] && break
  kill -0 $sim 2>/dev/null || break
  sleep 0.1
done
sleep 0.3
mp=$(pgrep -P $sim | head -1)
[ -n "$mp" ] && pkill -TERM -P "$mp"
wait $sim
rc=$?
trap - EXIT
[ $rc = 124 ] && fail "SIGTERM: the job hung"
[ $rc = 0 ] && fail "SIGTERM: the job exited 0 (did it finish 100000 steps?)"
grep -q "stopped by signal 15" sim.err || { cat sim.err; fail "SIGTERM: no message"; }
said=$(grep -o "last commit (epoch [0-9]*)" sim.err | head -1 | grep -o "[0-9]*")
epoch=$(awk '/^epoch /{print $2}' t/MANIFEST)
[ -n "$said" ] && [ "$said" = "$epoch" ] || fail "SIGTERM: job said epoch '$said', MANIFEST has $epoch"
run fsck t -q || fail "SIGTERM: fsck not clean"
[ "$(comm -13 <(awk '/^segment /{printf "seg-%020d.h5\n", $2}' t/MANIFEST | sort) \
      <(ls t | grep '^seg-' | sort))" = "" ] || echo "  (an orphan segment of the interrupted commit: removed by the next writer)"
echo "ok SIGTERM: exit $rc, '$(grep -m1 -o 'stopped by signal 15[^;]*; [^)]*)' sim.err)', MANIFEST epoch $epoch, fsck clean"
# Sparse commits are delta records: a chain keeps the segments it spans live, but only up
# to its bound (8 records), past which the chunk is written whole and they retire.
for k in $(seq 1 10); do
  $ref block pts.txt d$k.txt $((2000 + k)) 0 64 0 64 0 32 4
  run update w d$k.txt -q || fail "sparse commit $k"
  segs=$(run info w --json | $py -c 'import json, sys; print(json.load(sys.stdin)["segments"])')
  files=$(ls w | grep -c '^seg-')
  [ "$segs" = "$files" ] && [ "$segs" -le 9 ] || fail "sparse commit $k: $segs live segments, $files files"
done
run compact w -q || fail compact
segs=$(run info w --json | $py -c 'import json, sys; print(json.load(sys.stdin)["segments"])')
[ "$segs" = 1 ] && [ "$(ls w | grep -c '^seg-')" = 1 ] || fail "after compaction: $segs live segments"
run get w --points pts.txt -q | sort -u | grep -qx 2010 || fail "sparse commits lost"
echo "ok sparse commits (delta chains) keep at most 9 live segments; compaction leaves one"
