#!/bin/bash
# Delta records (issue 17; docs/format.md, "Delta records"), end to end at 2 ranks:
# small commits over generated terrain leave delta chains; compaction folds them
# (every voxel equal before and after, no chain left, fsck clean); a chain damaged
# in each way a reader must catch -- a record truncated, one naming another base
# image, one out of order, one with a flipped byte -- is named by fsck and makes a
# read of the chunk fail with the chunk's key, never return wrong voxels. The
# damage keeps every CRC valid except for the flipped byte, so the chain checks
# themselves are what is tested (tests/scripts/corrupt_world.py delta).
set -u
. "$(dirname "$0")/common.sh" "$@"
ref="$py $SRC/tests/scripts/crash_reference.py"
damage="$py $SRC/tests/scripts/corrupt_world.py"
run() { mpirun_strata 2 "$@"; }
deltas() { run info "$1" --json | $py -c 'import json, sys; d = json.load(sys.stdin)["deltas"]; print(d["records"], d["deepest_chain"])'; }

run create w --dims 64,64,32 --chunk 16 --generate terrain --seed 4 -q || fail create
$ref points all.txt 64 64 32 1
$ref points pts.txt 64 64 32 2
for k in 1 2 3; do
  $ref updates pts.txt u$k.txt 600 $k
  run update w u$k.txt -q || fail "update $k"
done
read records depth < <(deltas w)
[ "$records" -gt 0 ] && [ "$depth" -ge 2 ] || fail "3 small commits left $records delta records, deepest $depth"
run get w --points all.txt -q > before.txt || fail "get"
echo "ok 3 small commits: $records delta records pending, deepest chain $depth"

# Folding: the compacted world holds the same voxels and no chain.
cp -r w f
run compact f -q || fail compact
run get f --points all.txt -q > after.txt || fail "get after compaction"
cmp -s before.txt after.txt || fail "compaction changed voxels: $(cmp before.txt after.txt)"
read records depth < <(deltas f)
[ "$records" = 0 ] && [ "$depth" = 0 ] || fail "compaction left $records delta records"
run fsck f -q > /dev/null || fail "fsck after compaction"
echo "ok compaction folds every chain: $(wc -l < all.txt) voxels equal, no delta record left, fsck clean"

for how in truncate base order flip; do
  rm -rf d && cp -r w d
  read -r key x y z < <($damage delta d $how) || fail "$how: no chain of 2 records to damage"
  run fsck d > fsck.txt 2>&1 && fail "$how: fsck found nothing"
  grep -q "chunk key $key" fsck.txt || { cat fsck.txt; fail "$how: fsck does not name chunk key $key"; }
  echo "$x $y $z" > p.txt
  run get d --points p.txt -q > got.txt 2> get.err && fail "$how: a read of chunk $key returned $(cat got.txt)"
  grep -q "key $key" get.err || { cat get.err; fail "$how: the read's error does not name chunk key $key"; }
  echo "ok $how: fsck: $(grep -m1 "chunk key $key" fsck.txt | cut -c1-160)"
  echo "   read: $(grep -m1 "key $key" get.err | cut -c1-160)"
done

# A row's chain size (delta_bytes, from disk) is checked before it sizes anything: a
# commit over chains with the index built reads them in one buffer (fetch_sources),
# which a bad size must not make huge (it reported 64 GiB out of memory).
rm -rf d && cp -r w d
$damage chainbytes d > keys.txt || fail "chainbytes: no chain to damage"
$ref updates pts.txt u4.txt 600 4
run update d u4.txt -q > /dev/null 2> up.err && fail "chainbytes: an update over bad chain sizes committed"
grep -q "chunk key [0-9]*: delta chain of 4294967295 bytes" up.err || { cat up.err; fail "chainbytes: the update's error does not name the chain's size"; }
! grep -q "out of memory" up.err || { cat up.err; fail "chainbytes: a size read from disk sized an allocation"; }
echo "ok chainbytes: update: $(grep -m1 "chunk key" up.err | cut -c1-160)"
