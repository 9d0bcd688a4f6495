#!/bin/bash
# docs/format.md is enough to read a world: a Python reader using only h5py and
# zstandard must agree with `strata get` on every point, for worlds written at
# 1, 2 and 4 ranks, with uniform, palette and shuffle chunks and several segments;
# and its LOD pyramids (docs/index.md) must hold the exact mode of every block.
set -eu
# Sanitized builds run three times slower: they check one rank count here (the
# MPI tests still run at 1, 2 and 4 ranks).
RANKS="1 2 4"
[ "${STRATA_SANITIZED:-0}" = 1 ] && RANKS="2"
. "$(dirname "$0")/common.sh" "$@"
need_python "h5py, zstandard"
# Updates: a noisy block (> 256 distinct ids: shuffle codec) and scattered ones.
$py - <<'PY'
import random
random.seed(7)
with open("updates.txt", "w") as f:
    for z in range(16, 32):
        for y in range(0, 16):
            for x in range(0, 16):
                f.write(f"{x} {y} {z} {random.randrange(2000)}\n")
    for _ in range(3000):
        f.write(f"{random.randrange(80)} {random.randrange(70)} {random.randrange(50)} {random.randrange(20)}\n")
    # a regular pattern in one chunk: a delta record of equal Rice codes and 3 materials
    for i in range(250):
        v = 3 * i
        f.write(f"{48 + v % 16} {v // 16 % 16} {v // 256} {1 + i % 3}\n")
with open("points.txt", "w") as f:
    for z in range(0, 50, 3):
        for y in range(0, 70, 2):
            for x in range(0, 80, 2):
                f.write(f"{x} {y} {z}\n")
    for z in range(16, 32):
        for y in range(0, 16):
            f.write(f"3 {y} {z}\n")
PY
for np in $RANKS; do
  rm -rf w$np
  mpirun -np $np "$STRATA" create w$np --dims 80,70,50 --chunk 16 --generate terrain --seed 3 -q
  mpirun -np $np "$STRATA" update w$np updates.txt -q
  mpirun -np $np "$STRATA" get w$np --points points.txt -q > strata.txt
  $py "$SRC/tests/scripts/read_world.py" w$np points.txt > python.txt
  cmp strata.txt python.txt || { echo "reader disagrees at $np ranks"; exit 1; }
  # docs/index.md is enough to read the LOD pyramids: every cell against the voxels
  $py "$SRC/tests/scripts/read_world.py" w$np --pyramids
  [ -f reference.txt ] || cp strata.txt reference.txt
  cmp strata.txt reference.txt || { echo "$np ranks differ from 1 rank"; exit 1; }
done
# A compacted world: pyramids in packs (docs/index.md, "Pyramid packs")
np=${RANKS##* }
mpirun -np $np "$STRATA" compact w$np -q
mpirun -np $np "$STRATA" get w$np --points points.txt -q > strata.txt
$py "$SRC/tests/scripts/read_world.py" w$np points.txt > python.txt
cmp strata.txt python.txt || { echo "reader disagrees after compaction"; exit 1; }
cmp strata.txt reference.txt || { echo "compaction changed values"; exit 1; }
$py "$SRC/tests/scripts/read_world.py" w$np --pyramids
echo "format reader agrees with strata get ($(wc -l < points.txt) points, ranks: $RANKS)"
