#!/bin/bash
# Across "nodes": ranks spread unevenly over three network namespaces, talking
# TCP only (tests/scripts/multinode.sh), sharing the file system as a parallel
# file system does. The MPI tests (engine, router, index with extraction,
# snapshot) must pass as on one node; a command-line workflow (create, routed
# updates, reindex, region, stats, extraction, fsck) must give byte-identical
# answers to the same workflow on one node; and kill -9 of a rank on another
# node, at fault points of the commit, must leave the world at the commit the
# protocol predicts, fsck clean. Skipped (77) where namespaces cannot be made.
set -u
. "$(dirname "$0")/common.sh" "$@"
source "$SRC/tests/scripts/multinode.sh"
nodes_up 3; rc=$?
[ $rc = 0 ] || exit $rc
ref="$py $SRC/tests/scripts/crash_reference.py"
# Uneven placements: 2+1+1 ranks and 1+2 ranks.
SPREAD4=1:2,2:1,3:1
SPREAD3=1:1,2:2
export NODES_TIMEOUT=90
quiet() { grep -v 'PMIX ERROR\|setpgid' "$@"; }

# ---- the MPI tests, across nodes ---------------------------------------------
for t in mpi_world mpi_router mpi_index mpi_snapshot; do
  for spread in $SPREAD4 $SPREAD3; do
    np=$(( $(echo ${spread//,/ } | tr ' ' '\n' | cut -d: -f2 | paste -sd+) ))
    start=$(date +%s)
    nodes_mpirun $spread -np $np "$BUILD/tests/$t" "$WORK/$t-$np" > $t.out 2>&1
    rc=$?
    [ $rc = 124 ] && fail "$t over nodes $spread: hung (killed after $NODES_TIMEOUT s)"
    [ $rc = 0 ] && grep -q "$np ranks, 0 failures" $t.out || { quiet $t.out | tail -30; fail "$t over nodes $spread (exit $rc)"; }
    echo "$t: $np ranks over nodes $spread: 0 failures ($(( $(date +%s) - start )) s)"
  done
done

# ---- the same workflow on one node and across nodes ----------------------------
$ref points pts.txt 80 72 40 3
$ref updates pts.txt u1.txt 20000 1
$ref updates pts.txt u2.txt 20000 2
workflow() {  # DIR RUN...: the same commands, their answers in DIR/
  local d=$1; shift
  mkdir -p $d
  "$@" create $d/w --dims 80,72,40 --chunk 16 --generate terrain --seed 3 -q &&
  "$@" update $d/w u1.txt -q --defer-index &&
  "$@" update $d/w u2.txt -q &&
  "$@" reindex $d/w -q &&
  "$@" get $d/w --points pts.txt -q > $d/get.txt &&
  "$@" get $d/w --points pts.txt --lod 2 -q > $d/get-lod2.txt &&
  "$@" region $d/w --box 0,0,0,80,72,40 --lod 3 > $d/region.txt &&
  "$@" stats $d/w --box 5,7,3,77,70,39 > $d/stats.txt &&
  "$@" ray $d/w --from 1,1,39 --dir 0.3,0.2,-1 > $d/ray.txt &&
  "$@" extract $d/w --box 3,4,0,77,70,40 -o $d/x.h5 -q &&
  "$@" extract $d/w --box 0,0,0,80,72,40 --lod 1 -o $d/x1.h5 -q &&
  "$@" fsck $d/w -q &&
  h5dump -d /material $d/x.h5 | tail -n +2 > $d/x.txt &&
  h5dump -d /material $d/x1.h5 | tail -n +2 > $d/x1.txt
}
one() { timeout -k 10 90 mpirun -np 4 "$STRATA" "$@" < /dev/null; }
many() { nodes_mpirun $SPREAD4 -np 4 "$STRATA" "$@" < /dev/null; }
workflow one one 2> one.err || { quiet one.err; fail "workflow on one node"; }
workflow many many 2> many.err || { quiet many.err; fail "workflow across nodes"; }
for f in get get-lod2 region stats ray x x1; do
  sed "s#many/w#W#g" many/$f.txt > a.txt; sed "s#one/w#W#g" one/$f.txt > b.txt
  cmp -s a.txt b.txt || { diff a.txt b.txt | head; fail "$f differs between one node and three"; }
done
echo "workflow (create, updates, reindex, get, LOD get, region, stats, ray, extractions, fsck): identical on one node and over nodes $SPREAD4"

# ---- kill -9 of a rank on another node -------------------------------------------
# The world of the workflow, killed at fault points: rank 2 is alone on node 2,
# rank 0 shares node 1 with rank 1.
cp -r many/w w
cur=many/get.txt k=2
for spec in update-batch:2:prev segment-written:3:prev manifest-before-rename:0:prev \
            manifest-after-rename:0:next; do
  point=${spec%:*} expect=${spec##*:}
  k=$((k + 1))
  $ref updates pts.txt u$k.txt 10000 $k
  $ref apply $cur pts.txt u$k.txt ref$k.txt
  nodes_mpirun $SPREAD4 -np 4 -x STRATA_FAULT=$point "$STRATA" update w u$k.txt -q \
    < /dev/null > kill.out 2> kill.err
  rc=$?
  [ $rc = 124 ] && fail "kill at $point: the job hung"
  [ $rc = 0 ] && fail "kill at $point: the job was not killed"
  grep -q "signal 9\|Killed" kill.err || { quiet kill.err | tail; fail "$point: no rank died of SIGKILL"; }
  many fsck w -q > fsck.txt 2> fsck.err || { cat fsck.txt; quiet fsck.err; fail "$point: fsck not clean"; }
  many get w --points pts.txt -q > got.txt 2> get.err || { quiet get.err; fail "$point: get failed"; }
  want=$cur; [ $expect = next ] && want=ref$k.txt
  cmp -s got.txt $want || fail "kill at $point: not at the $expect commit"
  echo "kill -9 at $point over nodes: world at the $expect commit, fsck clean"
  cur=$want
done
echo "multi-node: all checks passed"
