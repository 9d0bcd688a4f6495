#!/bin/bash
# test_simulate.sh STRATA WORKDIR SRCDIR BUILDDIR: `strata simulate` for every process
# at 1, 2, 3 and 4 ranks from the same world and seed: it commits ceil(steps / K)
# times, changes the world, fsck is clean, and the result (every voxel, extracted)
# and the changed-voxel count are the same at every rank count. The same steps
# written with plain parallel HDF5 (bench/sim_hdf5, the bench's peer) on the
# extracted world make the same world and the same changed-voxel count, and so
# does `--all-blocks` (every voxel of every block computed every step, the
# reference for the active tiles simulate computes by default) at one rank count
# per case (a different one each), also on a world whose size is no multiple of
# its chunks or tiles.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
PEER=$BUILD/bench/sim_hdf5
MPIRUN="mpirun --oversubscribe"
epoch() { $STRATA info "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])'; }

$STRATA create base --dims 64,48,40 --chunk 16 --generate terrain --seed 5 --quiet
$STRATA extract base --box 0,0,0,64,48,40 -o base.h5 --quiet
reference_np=(2 3 4 1)
case_index=0
for spec in "erosion 5 2" "deposition 4 4" "volcanic 6 4" "erosion 3 1"; do
  read -r process steps every <<< "$spec"
  first_sum="" first_changed=""
  reference=${reference_np[$case_index]}
  case_index=$((case_index + 1))
  for np in 1 2 3 4 "$reference --all-blocks"; do
    read -r np mode <<< "$np"
    rm -rf w && cp -r base w
    before=$(epoch w)
    $MPIRUN -np $np $STRATA simulate w --steps $steps --process $process --seed 9 \
      --commit-every $every $mode 2> sim.err || fail "simulate $spec at $np ranks $mode: $(cat sim.err)"
    if [ -n "$mode" ]; then
      grep -q "every block of the domain, every step" sim.err || fail "$spec $mode: $(cat sim.err)"
    else
      grep -q "active tiles" sim.err || fail "$spec: no active tiles in the summary: $(cat sim.err)"
    fi
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
      [ "$sum" = "$first_sum" ] || fail "$spec: the world after $np ranks $mode differs from 1 rank's"
      [ "$changed" = "$first_changed" ] || fail "$spec: $changed voxels changed at $np ranks $mode, $first_changed at 1"
    fi
  done
  echo "ok $spec: same world and $first_changed changed voxels at 1, 2, 3 and 4 ranks and with --all-blocks at $reference"
done
# A world of partial chunks and tiles (61 x 45 x 37, chunk 16: tiles of 8 columns
# cut by the world's end): active tiles at 3 ranks, every block at 2.
$STRATA create odd --dims 61,45,37 --chunk 16 --generate terrain --seed 3 --quiet
for process in erosion volcanic; do
  sums=""
  for run in "3" "2 --all-blocks"; do
    read -r np mode <<< "$run"
    rm -rf w out.h5 out.xmf m.bin && cp -r odd w
    $MPIRUN -np $np $STRATA simulate w --steps 4 --process $process --seed 4 --commit-every 2 \
      $mode 2> sim.err || fail "odd world, $process at $np $mode: $(cat sim.err)"
    changed=$(sed -n 's/.* voxels read, \([0-9]*\) changed;.*/\1/p' sim.err)
    [ "${changed:-0}" -gt 0 ] || fail "odd world, $process at $np $mode: nothing changed: $(cat sim.err)"
    $STRATA extract w --box 0,0,0,61,45,37 -o out.h5 --quiet
    h5dump -d /material -b LE -o m.bin out.h5 > /dev/null
    sums="$sums $(md5sum < m.bin | cut -c1-32)/$changed"
  done
  read -r three every_block <<< "$sums"
  [ "$three" = "$every_block" ] ||
    fail "odd world, $process: worlds/changes differ (3 ranks, --all-blocks at 2):$sums"
  echo "ok odd world $process: same world and changes at 3 ranks and with --all-blocks"
done
# Erosion on real relief (a 64 x 48 corner of the demo's Andes), where a change
# makes candidates one column across that no tile's range held (this case fails
# when sim_candidate_reach's reach across is 0): active tiles of 1 column at 2
# ranks and of 2 at 3 ranks against --all-blocks at 1.
etopo=/usr/share/ferret-vis/data/etopo5.cdf
[ -r $etopo ] || skip "$etopo missing (scripts/install-deps.sh test)"
$MPIRUN -np 2 $STRATA import andes --dem $etopo --var ROSE --crop 3360,696,3424,744 \
  --vertical-res 25 --force --quiet || fail "importing the Andes corner"
sums=""
for run in "2 --tile 1" "3 --tile 2" "1 --all-blocks"; do
  read -r np mode <<< "$run"
  rm -rf w out.h5 out.xmf m.bin && cp -r andes w
  $MPIRUN -np $np $STRATA simulate w --steps 16 --process erosion --seed 7 --commit-every 8 \
    $mode 2> sim.err || fail "Andes corner at $np $mode: $(cat sim.err)"
  changed=$(sed -n 's/.* voxels read, \([0-9]*\) changed;.*/\1/p' sim.err)
  $STRATA extract w --box 0,0,0,64,48,1000 -o out.h5 --quiet
  h5dump -d /material -b LE -o m.bin out.h5 > /dev/null
  sums="$sums $(md5sum < m.bin | cut -c1-32)/$changed"
done
read -r tile1 tile2 every_block <<< "$sums"
[ "$tile1" = "$every_block" ] && [ "$tile2" = "$every_block" ] ||
  fail "Andes corner: worlds/changes differ (tile 1 at 2 ranks, tile 2 at 3, --all-blocks at 1):$sums"
echo "ok Andes corner erosion: same world and changes with tiles of 1 and 2 columns and --all-blocks"
# Chunks of 256: a domain block of 2^3 chunks (2^27 voxels) would need 512 MiB for
# its two arrays alone; simulate reads and computes blocks of one chunk there
# (block_chunks), so a step on this 512^3 world (all 8 chunks at 1 rank) stays
# well under 768 MB (440-545 MB measured; 890-940 MB with blocks of 2^3 chunks). The
# sanitizers' shadow memory makes the figure meaningless in their build.
if [ "${STRATA_SANITIZED:-0}" != 1 ]; then
  $STRATA create big --dims 512,512,512 --chunk 256 --generate terrain --seed 5 --quiet
  peak=$(/usr/bin/python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' \
    $STRATA simulate big --steps 1 --process deposition --quiet) || fail "simulate on chunks of 256"
  [ "$peak" -lt 768 ] || fail "simulate on chunks of 256: $peak MB at its peak (want < 768)"
  echo "ok chunks of 256: a step's peak $peak MB"
  rm -rf big
fi
# Bad options change nothing.
before=$(epoch w)
if $STRATA simulate w --steps 0 2> /dev/null; then fail "--steps 0 accepted"; fi
if $STRATA simulate w --steps 2 --process mining 2> /dev/null; then fail "unknown process accepted"; fi
if $STRATA simulate w --steps 2 --tile 3 2> /dev/null; then fail "--tile 3 accepted"; fi
[ "$(epoch w)" = "$before" ] || fail "a refused simulate changed the epoch"
echo "test_simulate: ok"
