#!/bin/bash
# Format compatibility: a world written by the format-2 library (tests/data/world-v2,
# made at 2 ranks by `strata create --generate terrain` and two `strata update`s, the
# second with --defer-index: two segments, uniform, palette and shuffle chunks, a stale
# row) opens with this library: every voxel as recorded then, fsck clean, the h5py
# reader agrees; a commit then writes format 3 (delta records) and both still agree.
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
# sha256 of `strata get` on every voxel, recorded by the format-2 library
want=3e48190657ceadcadc3434d0b4ecf567c8613cc6a76683a5e3e3bd48be399c39
for np in 1 2; do
  mpirun -np $np "$STRATA" get w --points points.txt -q > got.txt
  echo "$want  got.txt" | sha256sum -c --quiet
done
$py "$SRC/tests/scripts/read_world.py" w points.txt > python.txt
cmp got.txt python.txt
mpirun -np 2 "$STRATA" fsck w 2>&1 | grep -q "clean, 0 problems"
# A few changes: committed as delta records over format-2 base images.
printf '1 1 1 7\n20 5 3 9\n39 35 39 4\n5 30 12 2\n' > small.txt
mpirun -np 2 "$STRATA" update w small.txt -q
grep -q '^strata-manifest 3$' w/MANIFEST
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
echo "format 2 world read, updated to format 3, newer format refused"
