#!/bin/bash
# test_simulate.sh STRATA WORKDIR SRCDIR BUILDDIR: `strata simulate` for every process
# at 1, 2, 3 and 4 ranks from the same world and seed: it commits ceil(steps / K)
# times, changes the world, fsck is clean, and the result (every voxel, extracted)
# and the changed-voxel count are the same at every rank count. The same steps
# written with plain parallel HDF5 (bench/sim_hdf5, the bench's peer) on the
# extracted world make the same world and the same changed-voxel count.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
PEER=$BUILD/bench/sim_hdf5
MPIRUN="mpirun --oversubscribe"
epoch() { $STRATA info "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])'; }

$STRATA create base --dims 64,48,40 --chunk 16 --generate terrain --seed 5 --quiet
$STRATA extract base --box 0,0,0,64,48,40 -o base.h5 --quiet
for spec in "erosion 5 2" "deposition 4 4" "volcanic 6 4" "erosion 3 1"; do
  read -r process steps every <<< "$spec"
  first_sum="" first_changed=""
  for np in 1 2 3 4; do
    rm -rf w && cp -r base w
    before=$(epoch w)
    $MPIRUN -np $np $STRATA simulate w --steps $steps --process $process --seed 9 \
      --commit-every $every 2> sim.err || fail "simulate $spec at $np ranks: $(cat sim.err)"
    after=$(epoch w)
    want=$(( before + (steps + every - 1) / every ))
    [ "$after" = "$want" ] || fail "$spec at $np: epoch $before -> $after, want $want"
    said=$(sed -n 's/.* \([0-9]*\) commits, epoch \([0-9]*\):.*/\1 \2/p' sim.err)
    [ "$said" = "$((after - before)) $after" ] || fail "$spec at $np: summary says '$said' commits/epoch, world went $before -> $after"
    changed=$(sed -n 's/.* voxels read, \([0-9]*\) changed;.*/\1/p' sim.err)
    [ "${changed:-0}" -gt 0 ] || fail "$spec at $np: nothing changed: $(cat sim.err)"
    grep -q "voxels/s per rank" sim.err || fail "$spec at $np: no rates in the summary: $(cat sim.err)"
    $MPIRUN -np $np $STRATA fsck w --quiet || fail "$spec at $np: fsck after simulate"
    rm -f out.h5 out.xmf m.bin
    $STRATA extract w --box 0,0,0,64,48,40 -o out.h5 --quiet
    h5dump -d /material -b LE -o m.bin out.h5 > /dev/null
    sum=$(md5sum < m.bin)
    if [ -z "$first_sum" ]; then
      first_sum=$sum first_changed=$changed
      cp base.h5 peer.h5
      $MPIRUN -np 2 $PEER peer.h5 --steps $steps --process $process --seed 9 \
        --commit-every $every > peer.txt || fail "sim_hdf5 $spec: $(cat peer.txt)"
      h5diff out.h5 peer.h5 /material /material > /dev/null ||
        fail "$spec: the plain HDF5 version of the steps made another world"
      grep -q " $changed changed;" peer.txt || fail "$spec: sim_hdf5 counts other changes: $(cat peer.txt)"
      cmp -s <(cat base/MANIFEST) <(cat w/MANIFEST) && fail "$spec: manifest unchanged"
    else
      [ "$sum" = "$first_sum" ] || fail "$spec: the world after $np ranks differs from 1 rank's"
      [ "$changed" = "$first_changed" ] || fail "$spec: $changed voxels changed at $np ranks, $first_changed at 1"
    fi
  done
  echo "ok $spec: same world and $first_changed changed voxels at 1, 2, 3 and 4 ranks"
done
# Bad options change nothing.
before=$(epoch w)
if $STRATA simulate w --steps 0 2> /dev/null; then fail "--steps 0 accepted"; fi
if $STRATA simulate w --steps 2 --process mining 2> /dev/null; then fail "unknown process accepted"; fi
[ "$(epoch w)" = "$before" ] || fail "a refused simulate changed the epoch"
echo "test_simulate: ok"
