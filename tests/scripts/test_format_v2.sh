#!/bin/bash
# Format compatibility: a world written by the format-2 library (tests/data/world-v2,
# made at 2 ranks by `strata create --generate terrain` and two `strata update`s, the
# second with --defer-index: two segments, uniform, palette and shuffle chunks, a stale
# row) opens with this library: every voxel as recorded then, fsck clean, the h5py
# reader agrees; a commit then writes format 4 (delta records) and both still agree.
# The same for a world written by the format-3 library (tests/data/world-v3, made at 2
# ranks by that library's `create --generate terrain --seed 3`, two updates, `compact`
# (SLPK pyramid packs), an update of five voxels (version-1 delta records), one with
# --defer-index, `reindex` (an index segment) and one more with --defer-index (a stale
# row)).
# A world of a newer format than the library's is refused with STRATA_ERR_VERSION.
set -eu
. "$(dirname "$0")/common.sh" "$@"
need_python "h5py, zstandard"
cp -r "$SRC/tests/data/world-v2" w
grep -q '^strata-manifest 2$' w/MANIFEST
$py -c '
with open("points.txt", "w") as f:
    for z in range(40):
        for y in range(36):
            for x in range(40):
                f.write(f"{x} {y} {z}\n")'
# read_old WORLD OUT SHA256 NP...: every voxel of a world an older library wrote, at
# each rank count, is what that library read (sha256 of its `strata get`) and what the
# h5py reader reads; fsck is clean.
read_old() {
  local world=$1 out=$2 want=$3 np
  shift 3
  for np in "$@"; do
    mpirun -np $np "$STRATA" get $world --points points.txt -q > $out
    echo "$want  $out" | sha256sum -c --quiet
  done
  $py "$SRC/tests/scripts/read_world.py" $world points.txt > python-$out
  cmp $out python-$out
  mpirun -np 2 "$STRATA" fsck $world 2>&1 | grep -q "clean, 0 problems"
}
read_old w got.txt 3e48190657ceadcadc3434d0b4ecf567c8613cc6a76683a5e3e3bd48be399c39 1 2
# A few changes: committed as delta records over format-2 base images.
printf '1 1 1 7\n20 5 3 9\n39 35 39 4\n5 30 12 2\n' > small.txt
mpirun -np 2 "$STRATA" update w small.txt -q
grep -q '^strata-manifest 4$' w/MANIFEST
mpirun -np 2 "$STRATA" info w --json | $py -c 'import json,sys; d=json.load(sys.stdin)["deltas"]; assert d["records"] >= 1, d'
mpirun -np 2 "$STRATA" get w --points points.txt -q > got3.txt
$py "$SRC/tests/scripts/read_world.py" w points.txt > python3.txt
cmp got3.txt python3.txt
[ "$(cmp got.txt got3.txt | wc -l)" = 1 ] # the world changed ...
$py - <<'PY'
# ... exactly at the four voxels
a = open("got.txt").read().split(); b = open("got3.txt").read().split()
diff = {i for i in range(len(a)) if a[i] != b[i]}
want = {x + 40 * (y + 36 * z): m for x, y, z, m in [(1,1,1,7),(20,5,3,9),(39,35,39,4),(5,30,12,2)]}
assert diff <= set(want), diff
assert all(b[i] == str(m) for i, m in want.items())
PY
mpirun -np 2 "$STRATA" fsck w 2>&1 | grep -q "clean, 0 problems"
# The format-3 world: every voxel as the format-3 library read it, fsck clean, the
# h5py reader agrees; a commit (a delta over a version-1 chain) and a compaction (SLPC
# packs) relabel it 4, and the voxels stay exact.
cp -r "$SRC/tests/data/world-v3" w3
grep -q '^strata-manifest 3$' w3/MANIFEST
read_old w3 got3a.txt 9b257ddeee0124d1c479febb76723cb9eca391aaafbdda8db2f0c20465aa8c30 1 3
printf '2 3 4 1\n' > one.txt
mpirun -np 2 "$STRATA" update w3 one.txt -q
grep -q '^strata-manifest 4$' w3/MANIFEST
mpirun -np 2 "$STRATA" compact w3 -q
mpirun -np 2 "$STRATA" get w3 --points points.txt -q > got3b.txt
$py "$SRC/tests/scripts/read_world.py" w3 points.txt > python3b.txt
cmp got3b.txt python3b.txt
[ "$(cmp -l got3a.txt got3b.txt | wc -l)" -ge 1 ]
$py - <<'PY'
a = open("got3a.txt").read().split(); b = open("got3b.txt").read().split()
diff = {i for i in range(len(a)) if a[i] != b[i]}
assert diff == {2 + 40 * (3 + 36 * 4)}, diff
assert b[2 + 40 * (3 + 36 * 4)] == "1"
PY
mpirun -np 2 "$STRATA" fsck w3 2>&1 | grep -q "clean, 0 problems"
# A newer format than this library's is refused, naming the version.
cp -r w newer
$py - <<'PY'
import zlib
lines = open("newer/MANIFEST").read().splitlines()[:-1]
lines[0] = "strata-manifest 99"
body = "".join(l + "\n" for l in lines)
open("newer/MANIFEST", "w").write(body + "checksum %08x\n" % zlib.crc32(body.encode()))
PY
set +e
out=$(mpirun -np 1 "$STRATA" info newer 2>&1); rc=$?
set -e
[ $rc -ne 0 ] && echo "$out" | grep -qi "version" || { echo "newer format not refused: $out"; exit 1; }
echo "format 2 and 3 worlds read, updated to format 4, newer format refused"
