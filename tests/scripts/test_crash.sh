#!/bin/bash
# Crash consistency under kill -9 (docs/reliability.md, "Crash consistency").
#
# Part A kills one rank with SIGKILL at each fault point of the commit path
# (STRATA_FAULT=POINT:RANK): in a batch, before and after the segment is written,
# before and after the manifest rename, after a compacted segment is written; the
# commits are delta commits and the compactions fold delta chains. Part B
# kills a random rank of a running `strata update` job after a random delay
# (fixed seed). After every kill: the world opens, `strata fsck` is clean, and
# `strata get --points` equals exactly the last acknowledged commit or the one
# in flight (Part A: exactly the one the protocol predicts for that point),
# computed independently by tests/scripts/crash_reference.py from the update
# files. Leftovers of a dead commit are ignored by readers, removed by the next
# writer, and never more than one orphan segment plus MANIFEST.tmp.
set -u
. "$(dirname "$0")/common.sh" "$@"
ref="$py $SRC/tests/scripts/crash_reference.py"
NP=2
run() { mpirun_strata "$NP" "$@"; }

live_files() {   # the files a world at rest must hold: MANIFEST, LOCK (and the PUBLISH
                 # and REINDEX lock files once made), live data and index segments
  { echo LOCK; echo MANIFEST
    [ -e w/PUBLISH ] && echo PUBLISH; [ -e w/REINDEX ] && echo REINDEX
    awk '/^segment /{printf "seg-%020d.h5\n", $2} /^index_segment /{printf "idx-%020d.h5\n", $2}' w/MANIFEST; } | sort
}
check_world() {  # $1: label; $2...: acceptable reference files. Sets $state.
  local label=$1; shift
  run fsck w -q > fsck.txt 2> fsck.err || { cat fsck.txt fsck.err; fail "$label: fsck not clean"; }
  run get w --points pts.txt -q > got.txt 2> get.err || { cat get.err; fail "$label: get failed"; }
  state=
  for r in "$@"; do cmp -s got.txt "$r" && { state=$r; break; }; done
  [ -n "$state" ] || fail "$label: content matches none of: $* ($(cmp got.txt "$1" | head -1))"
}
check_leftovers() {  # $1 label, $2 most extra files allowed
  local extra
  extra=$(comm -13 <(live_files) <(ls w | sort) | tr '\n' ' ')
  local n; n=$(echo $extra | wc -w)
  [ "$n" -le "$2" ] || fail "$1: $n leftover files ($extra), at most $2 allowed"
  leftovers=$extra
}
next_writer_cleans() {  # a writer that commits nothing must remove every leftover
  : > empty.txt
  run update w empty.txt -q 2> clean.err || { cat clean.err; fail "$1: writer open failed"; }
  [ "$(ls w | sort)" = "$(live_files)" ] || fail "$1: leftovers survive the next writer: $(ls w | tr '\n' ' ')"
}

run create w --dims 96,96,64 --chunk 16 --generate terrain --seed 5 -q || fail "create"
$ref points pts.txt 96 96 64 4
run get w --points pts.txt -q > ref0.txt || fail "get"
cur=ref0.txt k=0

# ---- Part A: each fault point -------------------------------------------------
# point:rank:state the protocol predicts (prev = last acknowledged commit, next =
# the one in flight). The world a kill leaves is the base of the next step.
# Each update of Part A changes ~70 voxels per 16^3 chunk: the commits are delta commits
# (chains over the terrain's chunks), and the compactions fold those chains.
deltas() { run info w --json | $py -c 'import json, sys; print(json.load(sys.stdin)["deltas"]["records"])'; }
for spec in update-batch:1:prev segment-part:1:prev segment-written:1:prev \
            manifest-before-rename:0:prev manifest-after-rename:0:next segment-written:0:prev \
            compact@compact-written:1:prev compact@manifest-after-rename:0:prev; do
  point=${spec%:*} expect=${spec##*:}
  k=$((k + 1))
  allowed=2
  if [ "${point%%@*}" = compact ]; then
    point=${point#compact@}
    # A compaction killed after its rename leaves every old segment behind.
    [ "${point%%:*}" = manifest-after-rename ] && allowed=$(grep -c '^segment ' w/MANIFEST)
    [ "$(deltas)" -gt 0 ] || fail "before compact at $point: no delta chains to fold"
    STRATA_FAULT=$point run compact w -q > /dev/null 2> kill.err && fail "compact at $point: not killed"
    next=$cur   # compaction never changes content
    point="compact at $point"
  else
    $ref updates pts.txt u$k.txt 10000 $k
    $ref apply $cur pts.txt u$k.txt ref$k.txt
    next=ref$k.txt
    STRATA_FAULT=$point run update w u$k.txt -q > /dev/null 2> kill.err && fail "$point: job was not killed"
  fi
  grep -q "signal 9\|Killed" kill.err || { cat kill.err; fail "$point: no rank died of SIGKILL"; }
  check_leftovers "$point" $allowed
  want=$cur; [ $expect = next ] && want=$next
  check_world "$point" $want
  case $point in  # the delta records: kept by a commit, folded by a compaction that published
    manifest-after-rename:0) [ "$(deltas)" -gt 0 ] || fail "$point: the commit wrote no delta record" ;;
    "compact at manifest-after-rename:0") [ "$(deltas)" = 0 ] || fail "$point: chains left after folding" ;;
  esac
  echo "kill at $point: content = $expect commit, fsck clean, leftovers: ${leftovers:-none}, delta records: $(deltas)"
  if [ "$point" = manifest-before-rename:0 ] || [ "$point" = "compact at manifest-after-rename:0" ]; then
    [ -n "$leftovers" ] || fail "$point left no leftovers to clean"
    next_writer_cleans "$point"
    echo "  the next writer removed them"
  fi
  cur=$state
done

# ---- Part B: kill -9 of a random rank at a random moment -----------------------
# Delays (s) and victims from a fixed seed.
plan=($($py -c 'import random; r = random.Random(8); print(" ".join("%.2f:%d" % (r.uniform(0, 1.8), r.randrange(2)) for _ in range(5)))'))
outcomes=
# Sanitized builds run three times slower: fewer random kills keep the test short.
kills=5
[ "${STRATA_SANITIZED:-0}" = 1 ] && kills=2
for i in $(seq $kills); do
  k=$((k + 1))
  $ref updates pts.txt u$k.txt 20000 $k
  $ref apply $cur pts.txt u$k.txt ref$k.txt
  delay=${plan[$((i - 1))]%:*} victim=${plan[$((i - 1))]#*:}
  started=$(date +%s)
  timeout -k 10 60 mpirun -np $NP "$STRATA" update w u$k.txt -q > /dev/null 2> kill.err &
  job=$!
  # timeout -> mpirun -> ranks (in start order by pid); the delay runs from
  # the moment every rank exists.
  pids=
  for _ in $(seq 100); do
    mp=$(pgrep -P $job | head -1)
    pids=$( [ -n "$mp" ] && pgrep -P "$mp" | sort -n)
    [ "$(echo $pids | wc -w)" -ge $NP ] && break
    sleep 0.05
  done
  sleep "$delay"
  pid=$(echo "$pids" | sed -n "$((victim + 1))p")
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait $job
  rc=$?
  # a hang ends in timeout's TERM (124) or, if mpirun ignores it, KILL (137, as the victim's)
  [ $rc = 124 ] || [ $(($(date +%s) - started)) -ge 60 ] &&
    fail "random kill $i: the job hung after rank $victim died"
  # during a segment's write: the segment, its reserve and rarely Open MPI's lock-test file
  check_leftovers "random kill $i" 3
  if [ $rc = 0 ]; then
    check_world "random kill $i (acknowledged)" ref$k.txt     # acknowledged: never lost
    what=acknowledged
  else
    check_world "random kill $i" $cur ref$k.txt
    [ $state = $cur ] && what=previous || what=in-flight
  fi
  outcomes="$outcomes $delay s->$what;"
  echo "random kill $i: rank $victim after $delay s, job exit $rc: content = $what commit, fsck clean, leftovers: ${leftovers:-none}"
  cur=$state
done
next_writer_cleans "random kills"
run compact w -q 2> /dev/null || fail "final compaction"
check_world "after compaction" $cur
[ "$(ls w | sort)" = "$(live_files)" ] && [ "$(grep -c '^segment ' w/MANIFEST)" = 1 ] ||
  fail "compaction left $(ls w | tr '\n' ' ')"
echo "crash consistency: $(wc -l < pts.txt) points checked after every kill;$outcomes"
