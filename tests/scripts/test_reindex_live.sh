#!/bin/bash
# test_reindex_live.sh STRATA WORKDIR SRCDIR: a reindex beside a writer (issue 23),
# with real processes and interleavings forced at fault points (STRATA_FAULT).
#
# Part A kills (SIGKILL) a reindex at each of its fault points, each after a
# writer's deferred-index commit: the world keeps every acknowledged commit
# (MANIFEST's epoch and its data segments unchanged; published only after the
# rename), fsck is clean (it checks every serving index entry against the data:
# the index is exact where it claims to be current), and the next reindex
# removes what the dead one left.
# Part B pauses one job at a fault point ("pause": it waits until its pause file
# is removed) and runs the other beside it, so that the interleaving is forced,
# not left to timing: a writer commits between a reindex's snapshot and its
# publication; a writer blocks on the PUBLISH lock a paused reindex holds and is
# killed there; a reindex blocks on the lock a paused writer holds, and the
# writer is killed there or goes on. Reindexes run at 1, 2 and 3 ranks beside a
# 2-rank writer. Each case ends with fsck clean, and the last with a full
# reindex finding no stale chunk left.
set -u
. "$(dirname "$0")/common.sh" "$@"
info() { run 1 info w --json | $py -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
stale() { awk '/^index /{print $3}' w/MANIFEST; }   # index INDEX_EPOCH STALE_CHUNKS ...
epoch() { sed -n 's/^epoch //p' w/MANIFEST; }
fsck_clean() { run 2 fsck w -q > fsck.txt 2>&1 || { cat fsck.txt; fail "$1: fsck not clean"; }; }
# touch FILE VALUE CX,CY,CZ...: one voxel in each listed chunk (edge 16)
touch_chunks() {
  local f=$1 v=$2; shift 2; : > "$f"
  for c in "$@"; do IFS=, read -r x y z <<< "$c"; echo "$((x * 16 + 3)) $((y * 16 + 5)) $((z * 16 + 7)) $v" >> "$f"; done
}
commit() { run 2 update w "$1" --defer-index -q 2> commit.err || { cat commit.err; fail "commit $1"; }; }
live_files() {
  { echo LOCK; echo MANIFEST; [ -e w/PUBLISH ] && echo PUBLISH; [ -e w/REINDEX ] && echo REINDEX
    awk '/^segment /{printf "seg-%020d.h5\n", $2} /^index_segment /{printf "idx-%020d.h5\n", $2}' w/MANIFEST; } | sort
}
wait_paused() {  # $1: pause file; the paused job's pid on stdout
  for _ in $(seq 3000); do [ -s "$1" ] && { cut -d' ' -f1 "$1"; return; }; sleep 0.01; done
  fail "nothing paused at $1"
}
data_lines() { grep -v '^index\|^writer_ranks\|^splitters\|^checksum' w/MANIFEST; }

run 2 create w --dims 96,96,64 --chunk 16 --generate terrain --seed 5 -q || fail "create"
run 2 reindex w -q || fail "first reindex"

# ---- Part A: kill -9 of the reindex at each fault point ------------------------------
k=0
for case in reindex-summarised:1:2 segment-part:0:3 segment-written:1:2 reindex-written:0:1 \
            reindex-publish-locked:0:3 manifest-before-rename:0:2 manifest-after-rename:0:1; do
  k=$((k + 1)) spec=${case%:*} np=${case##*:}
  c=$((k % 6))
  touch_chunks u$k.txt $((k + 20)) $c,0,0 $c,1,0 0,$c,1 $c,$c,2
  commit u$k.txt
  before=$(data_lines); stale=$(stale)
  [ "$stale" -ge 4 ] || fail "$spec: $stale stale chunks after a deferred commit"
  STRATA_FAULT=$spec run $np reindex w -q > /dev/null 2> kill.err && fail "reindex at $spec: not killed"
  grep -q "signal 9\|Killed" kill.err || { cat kill.err; fail "$spec: no rank died of SIGKILL"; }
  [ "$(data_lines)" = "$before" ] || fail "$spec: the data lines of MANIFEST changed: $(diff <(echo "$before") <(data_lines))"
  after=$(stale)
  if [ "${spec%:*}" = manifest-after-rename ]; then
    [ "$after" = 0 ] || fail "$spec: killed after its publication, $after stale chunks"
  else
    [ "$after" = "$stale" ] || fail "$spec: $after stale chunks, want $stale (nothing published)"
  fi
  fsck_clean "$spec"
  extra=$(comm -13 <(live_files) <(ls w | sort) | tr '\n' ' ')
  echo "reindex killed at $spec ($np ranks): $after stale (was $stale), fsck clean, leftovers: ${extra:-none}"
done
touch_chunks u.txt 40 5,5,3
commit u.txt
run 2 reindex w -q || fail "the reindex after the kills"
[ "$(ls w | sort)" = "$(live_files)" ] || fail "leftovers survive the next reindex: $(ls w | tr '\n' ' ')"
[ "$(stale)" = 0 ] || fail "stale chunks after the reindex"
fsck_clean "after part A"

# ---- Part B: forced interleavings ----------------------------------------------------
# B1: a commit between the reindex's snapshot and its publication. Six chunks stale
# in the snapshot; the writer rewrites two of them and one current chunk: the two
# entries built from the replaced data never serve, three chunks stay stale.
touch_chunks s.txt 50 0,0,0 1,0,0 2,0,0 3,0,0 4,0,0 5,0,0
commit s.txt
export STRATA_FAULT_PAUSE=$WORK/paused
rm -f paused
STRATA_FAULT=reindex-written:0:pause run 1 reindex w > r.out 2>&1 &
job=$!
wait_paused paused > /dev/null
touch_chunks b1.txt 51 0,0,0 3,0,0 5,5,0
commit b1.txt
rm -f paused
wait $job || { cat r.out; fail "B1: the reindex failed"; }
grep -q "(4 current, 2 rewritten meanwhile; 3 stale now)" r.out || { cat r.out; fail "B1: summary"; }
[ "$(stale)" = 3 ] || fail "B1: stale chunks"
fsck_clean "B1"
echo "B1 commit between snapshot and publication: $(grep -o '(4 current.*now)' r.out), fsck clean"

# B2: the writer blocks on the PUBLISH lock of a paused reindex and is killed there.
e=$(epoch); rm -f paused
STRATA_FAULT=reindex-publish-locked:0:pause run 3 reindex w > r.out 2>&1 &
job=$!
wait_paused paused > /dev/null
touch_chunks b2.txt 52 1,1,1
timeout -k 10 60 mpirun -np 2 "$STRATA" update w b2.txt --defer-index -q > /dev/null 2> w.err < /dev/null &
writer=$!
sleep 1.5
kill -0 $writer 2>/dev/null || { cat w.err; fail "B2: the writer did not wait for the PUBLISH lock"; }
[ "$(epoch)" = "$e" ] || fail "B2: the writer published under the reindex's lock"
mp=$(pgrep -P $writer | head -1)
for p in $(pgrep -P "$mp"); do kill -9 "$p"; done
wait $writer && fail "B2: the killed writer succeeded"
rm -f paused
wait $job || { cat r.out; fail "B2: the reindex failed after the writer died"; }
[ "$(epoch)" = "$e" ] || fail "B2: epoch $(epoch), want $e (the killed commit was never acknowledged)"
[ "$(stale)" = 0 ] || fail "B2: stale chunks"
fsck_clean "B2"
commit b2.txt   # the next writer cleans the dead one's segment and keeps the index segment
[ "$(ls w | sort)" = "$(live_files)" ] || fail "B2: leftovers survive the next writer: $(ls w | tr '\n' ' ')"
grep -q '^index_segment ' w/MANIFEST || fail "B2: the next commit dropped the index segment"
[ "$(stale)" = 1 ] || fail "B2: stale chunks after the next commit"
echo "B2 writer killed waiting for a reindex's PUBLISH lock: epoch kept at $e, fsck clean"

# B3: a reindex blocks on the lock of a paused writer (its segment written), and the
# writer is killed there: the reindex publishes over the last acknowledged commit.
e=$(epoch); rm -f paused
touch_chunks b3.txt 53 2,2,2
STRATA_FAULT=commit-publish-locked:0:pause run 2 update w b3.txt --defer-index -q > /dev/null 2> w.err &
writer=$!
wpid=$(wait_paused paused)
run 2 reindex w > r.out 2>&1 &
job=$!
sleep 1.5
kill -0 $job 2>/dev/null || { cat r.out; fail "B3: the reindex did not wait for the writer's lock"; }
kill -9 "$wpid"
wait $writer && fail "B3: the killed writer succeeded"
rm -f paused
wait $job || { cat r.out; fail "B3: the reindex failed after the writer died"; }
[ "$(epoch)" = "$e" ] || fail "B3: epoch $(epoch), want $e"
[ "$(stale)" = 0 ] || fail "B3: stale chunks"
fsck_clean "B3"
echo "B3 writer killed holding the PUBLISH lock: the waiting reindex published at epoch $e, fsck clean"

# B4: the same, but the writer goes on: the reindex catches up with its commit
# (which rewrote one chunk of the reindex's snapshot) and publishes after it.
touch_chunks s4.txt 54 0,2,0 1,2,0 2,2,0
commit s4.txt
e=$(epoch); rm -f paused
touch_chunks b4.txt 55 1,2,0
STRATA_FAULT=commit-publish-locked:0:pause run 2 update w b4.txt --defer-index -q > /dev/null 2> w.err &
writer=$!
wait_paused paused > /dev/null
# The reindex's snapshot is taken before the writer goes on: it pauses once
# its index segment is written, then goes on to wait for the writer's lock.
rm -f rpaused
STRATA_FAULT_PAUSE=$WORK/rpaused STRATA_FAULT=reindex-written:0:pause run 2 reindex w > r.out 2>&1 &
job=$!
wait_paused rpaused > /dev/null
rm -f rpaused
sleep 1
kill -0 $job 2>/dev/null || { cat r.out; fail "B4: the reindex did not wait for the writer's lock"; }
rm -f paused
wait $writer || { cat w.err; fail "B4: the writer failed"; }
wait $job || { cat r.out; fail "B4: the reindex failed"; }
[ "$(epoch)" = $((e + 1)) ] || fail "B4: epoch $(epoch), want $((e + 1)) (the writer's commit)"
grep -q "(2 current, 1 rewritten meanwhile; 1 stale now)" r.out || { cat r.out; fail "B4: summary"; }
fsck_clean "B4"
run 2 reindex w --full -q || fail "full reindex"
[ "$(stale)" = 0 ] || fail "stale chunks after a full reindex"
fsck_clean "after a full reindex"
[ "$(ls w | sort)" = "$(live_files)" ] || fail "leftovers at the end: $(ls w | tr '\n' ' ')"
# strata info shows the index's lag: current after the full reindex.
lag=$(info '"%d %d %d %d" % (d["index"]["lag_epochs"], d["index"]["stale_chunks"], d["index"]["index_segments"], d["index"]["rebuild_age_seconds"] >= 0)')
[ "$lag" = "0 0 1 1" ] || fail "info: lag epochs, stale chunks, index segments, age known: $lag (want 0 0 1 1)"
echo "B4 writer resumed under a waiting reindex: both published (epoch $((e + 1))), $(grep -o '(2 current.*now)' r.out); full reindex: exact, fsck clean"
