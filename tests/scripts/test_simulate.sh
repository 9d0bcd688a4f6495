#!/bin/bash
# test_simulate.sh STRATA WORKDIR SRCDIR BUILDDIR: `strata simulate` at 1, 2 and 4 ranks,
# every process: it commits ceil(steps / K) times, changes the world, and fsck is clean.
set -euo pipefail
STRATA=$1 WORK=$2
MPIRUN="mpirun --oversubscribe"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
fail() { echo "test_simulate: FAIL: $*" >&2; exit 1; }
epoch() { $STRATA info "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])'; }

$STRATA create base --dims 64,48,32 --chunk 16 --generate terrain --seed 5 --quiet
# Every voxel of the world, to see whether its content changed (a MANIFEST always
# differs once the epoch moved, so comparing manifests would prove nothing).
/usr/bin/python3 -c '
for z in range(32):
    for y in range(48):
        for x in range(64):
            print(x, y, z)' > all.pts
$STRATA get base --points all.pts --quiet > base.voxels
for spec in "1 erosion 5 2" "2 deposition 4 4" "4 volcanic 6 4" "2 erosion 3 1"; do
  read -r np process steps every <<< "$spec"
  rm -rf w && cp -r base w
  before=$(epoch w)
  $MPIRUN -np $np $STRATA simulate w --steps $steps --process $process --seed 9 \
    --commit-every $every 2> sim.err || fail "simulate $spec: $(cat sim.err)"
  after=$(epoch w)
  want=$(( before + (steps + every - 1) / every ))
  [ "$after" = "$want" ] || fail "$spec: epoch $before -> $after, want $want"
  grep -q "applied" sim.err || fail "$spec: no summary line: $(cat sim.err)"
  said=$(sed -n 's/.*, \([0-9]*\) commits, epoch \([0-9]*\).*/\1 \2/p' sim.err)
  [ "$said" = "$((after - before)) $after" ] || fail "$spec: summary says '$said' commits/epoch, world went $before -> $after"
  applied=$(sed -n 's/.*updates (\([0-9]*\) applied.*/\1/p' sim.err)
  [ "${applied:-0}" -gt 0 ] || fail "$spec: nothing applied: $(cat sim.err)"
  $MPIRUN -np $np $STRATA fsck w --quiet || fail "$spec: fsck after simulate"
  # The world changed: some voxel differs from the original.
  $STRATA get w --points all.pts --quiet > w.voxels
  [ "$(wc -l < w.voxels)" = 98304 ] || fail "$spec: get --points answered $(wc -l < w.voxels) of 98304 voxels"
  cmp -s base.voxels w.voxels && fail "$spec: no voxel changed"
done
# Bad options change nothing.
before=$(epoch w)
if $STRATA simulate w --steps 0 2> /dev/null; then fail "--steps 0 accepted"; fi
if $STRATA simulate w --steps 2 --process mining 2> /dev/null; then fail "unknown process accepted"; fi
[ "$(epoch w)" = "$before" ] || fail "a refused simulate changed the epoch"
echo "test_simulate: ok"
