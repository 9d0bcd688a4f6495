#!/bin/bash
# test_extract.sh STRATA WORKDIR SRCDIR BUILDDIR: `strata extract` at 1, 2 and 4 ranks
# against `strata get --points` (L = 0) and brute-force block modes (L > 0): boxes
# inside, on chunk edges, partly outside (clipped) and wholly outside (an error);
# the XDMF parsed, the HDF5 read with h5py, the PNG decoded and its pixels checked;
# /materials naming every id present; outputs inside the world refused, the world
# left byte-identical.
set -euo pipefail
# Sanitized builds run three times slower: they check one rank count here (the
# MPI tests still run at 1, 2 and 4 ranks).
RANKS="1 2 4"
[ "${STRATA_SANITIZED:-0}" = 1 ] && RANKS="2"
. "$(dirname "$0")/common.sh" "$@"
CHECK="$py $SRC/tests/scripts/check_extract.py"
MPIRUN="mpirun --oversubscribe"

# 72 x 60 x 40 with 16-voxel chunks: partial chunks at every far edge.
$STRATA create w --dims 72,60,40 --chunk 16 --generate terrain --seed 7 --quiet
# Some updates on top, so that extraction sees more than the generator's layers.
$py - <<'PY' > upd.txt
import random
r = random.Random(11)
for _ in range(3000):
    print(r.randrange(72), r.randrange(60), r.randrange(40), r.choice([0, 1, 5, 300, 65535]))
PY
$STRATA update w upd.txt --quiet
# An id outside the material table, in the inner box's middle z-slice (its PNG).
echo "20 20 16 1000" > rare.txt
$STRATA update w rare.txt --quiet

# name  requested box            box after clipping
BOXES=(
  "inner   5,7,3,41,33,29        5,7,3,41,33,29"
  "edges   16,16,16,48,48,32     16,16,16,48,48,32"
  "clipped -5,-3,10,100,70,45    0,0,10,72,60,40"
  "column  70,59,0,71,60,40      70,59,0,71,60,40"
)
for spec in "${BOXES[@]}"; do
  read -r name box clipped <<< "$spec"
  $CHECK points "$clipped" "$name.pts"
  $STRATA get w --points "$name.pts" --quiet > "$name.ref"
  for np in $RANKS; do
    $MPIRUN -np $np $STRATA extract w --box "$box" -o "$name.$np.h5" --png "$name.$np.png" --quiet
    $CHECK h5 "$name.$np.h5" "$clipped" 0 "$name.ref"
    first=${RANKS%% *}
    cmp "$name.$first.h5" "$name.$np.h5" > /dev/null 2>&1 || $py - "$name.$first.h5" "$name.$np.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["material"][...] for p in sys.argv[1:3])
assert np.array_equal(a, b), "extractions differ between rank counts"
PY
  done
done

# Rounds: the same result however many z-layers a collective round holds.
# A 36 x 26 layer is 1872 bytes: 1 byte -> 26 one-layer rounds, 5000 -> 13 two-layer
# rounds, 40000 -> 21 layers, cut at chunk boundaries: [3,16) and [16,29).
for spec in "1 26" "5000 13" "40000 2"; do
  read -r rb rounds <<< "$spec"
  $MPIRUN -np 3 $STRATA extract w --box 5,7,3,41,33,29 -o rounds.h5 --round-bytes $rb 2> rounds.err
  $CHECK h5 rounds.h5 5,7,3,41,33,29 0 inner.ref
  grep -q " $rounds rounds" rounds.err || fail "round bytes $rb: $(cat rounds.err)"
done

# PNG: the default (middle z) and other axes; pixels checked against /material.
$CHECK png inner.2.png inner.2.h5 z 13
$MPIRUN -np 2 $STRATA extract w --box 5,7,3,41,33,29 -o ax.h5 --png ax_x.png --axis x --at 20 --quiet
$CHECK png ax_x.png ax.h5 x 15
$STRATA extract w --box 5,7,3,41,33,29 -o ax.h5 --png ax_y.png --axis y --at 7 --quiet
$CHECK png ax_y.png ax.h5 y 0
# The file starts with the PNG signature (checked without file(1), which a minimal
# system lacks).
[ "$(head -c 8 ax_y.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "ax_y.png does not start with the PNG signature"

# Errors: wholly outside, empty (x0 >= x1), --at outside the box. Nothing is written.
for bad in "100,0,0,120,10,10" "-20,-20,-20,0,5,5" "10,5,5,10,9,9" "12,5,5,10,9,9"; do
  if $MPIRUN -np 2 $STRATA extract w --box "$bad" -o bad.h5 --quiet 2> err.txt; then
    fail "box $bad was accepted"
  fi
  grep -q "rank" err.txt || fail "error for $bad does not name the rank: $(cat err.txt)"
  [ ! -e bad.h5 ] && [ ! -e bad.xmf ] && [ ! -e bad.h5.partial ] || fail "box $bad left files"
done
if $STRATA extract w --box 0,0,0,10,10,10 -o at.h5 --png at.png --at 50 --quiet 2> /dev/null; then
  fail "--at outside the box was accepted"
fi
if $STRATA extract w --box 0,0,0,10,10 -o bad.h5 --quiet 2> /dev/null; then
  fail "a 5-number box was accepted"
fi

# Extraction only reads the world: an output or a PNG resolving inside the world's
# directory (by any spelling: .., a symlink, a trailing slash, an existing file) is
# refused on every rank before anything is written, naming both paths, and the world
# stays byte-identical.
snapshot() {
  (cd w && find . -printf '%p %y %s %T@\n' | sort &&
     find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
snapshot > world.before
segment=$(cd w && ls seg-*.h5 | head -n 1)
ln -sfn w wlink
ln -sfn w/MANIFEST manifest.png
REFUSED=(
  "-o w/MANIFEST"  "-o w/$segment"  "-o w/out.h5"  "-o w/../w/x.h5"  "-o w/"  "-o ./w//x.h5"
  "-o w"  "-o wlink/x.h5"  "-o out.h5 --png w/slice.png"  "-o out.h5 --png manifest.png"
)
i=0
for args in "${REFUSED[@]}"; do
  np=$((i % 3 + 1)) i=$((i + 1))
  # shellcheck disable=SC2086 # $args is several words
  if $MPIRUN -np $np $STRATA extract w --box 5,7,3,41,33,29 $args --quiet 2> err.txt; then
    fail "extract $args was accepted"
  fi
  inside=${args##* }
  grep -qF "output $inside lies inside the world directory w (" err.txt ||
    fail "extract $args: the error does not name both paths: $(cat err.txt)"
  [ ! -e out.h5 ] && [ ! -e out.xmf ] && [ ! -e out.h5.partial ] ||
    fail "extract $args left files"
  snapshot | cmp -s - world.before || fail "extract $args changed the world"
done
[ "$(readlink manifest.png)" = w/MANIFEST ] || fail "the PNG symlink was replaced"
# A sibling whose name starts with the world's is outside it.
mkdir -p w.out
$MPIRUN -np 2 $STRATA extract w --box 5,7,3,41,33,29 -o w.out/x.h5 --png w.out/x.png --quiet
$CHECK h5 w.out/x.h5 5,7,3,41,33,29 0 inner.ref
snapshot | cmp -s - world.before || fail "an extraction changed the world"
# Outputs are written beside their name and renamed over it: a hard link to a
# world file (which no path check can see) is replaced, not written through, and
# so is a link planted at the partial names.
ln w/MANIFEST hard.png
ln -sfn w/MANIFEST planted.h5.partial
ln -sfn w/MANIFEST planted.xmf.partial
$MPIRUN -np 2 $STRATA extract w --box 5,7,3,41,33,29 -o planted.h5 --png hard.png --quiet
snapshot | cmp -s - world.before || fail "an extraction through links changed the world"
$py -c 'import sys; assert open("hard.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"' ||
  fail "hard.png is not a PNG"
[ ! -e planted.h5.partial ] && [ ! -e planted.xmf.partial ] && [ ! -e hard.png.partial ] ||
  fail "partial files left"
$CHECK h5 planted.h5 5,7,3,41,33,29 0 inner.ref

# Levels > 0: each cell is its aligned block's mode, from an L0 extraction of the
# aligned box (clipped to the world) as the brute-force reference.
for spec in "1 5,7,3,41,33,29 4,6,2,42,34,30" "2 -5,-3,10,100,70,45 0,0,8,72,60,40" \
              "4 16,16,16,48,48,32 16,16,16,48,48,32" "3 70,59,0,71,60,40 64,56,0,72,60,40"; do
    read -r level box aligned <<< "$spec"
    clipped=$($py -c "b=[int(v) for v in '$box'.split(',')]; d=[72,60,40]
print(','.join(str(v) for v in [max(0,b[0]),max(0,b[1]),max(0,b[2]),min(d[0],b[3]),min(d[1],b[4]),min(d[2],b[5])]))")
    $STRATA extract w --box "$aligned" -o "full$level.h5" --quiet
    for np in $RANKS; do
      $MPIRUN -np $np $STRATA extract w --box "$box" --lod "$level" -o "lod$level.$np.h5" \
        --png "lod$level.$np.png" --quiet
      $CHECK h5 "lod$level.$np.h5" "$clipped" "$level" "full$level.h5"
    done
    # and against the routed LOD point query
    $CHECK corners "$clipped" "$level" "lod$level.pts"
    $MPIRUN -np 2 $STRATA get w --points "lod$level.pts" --lod "$level" --quiet > "lod$level.ref"
    $CHECK h5 "lod$level.2.h5" "$clipped" "$level" "lod$level.ref"
done
# /materials: the world's table, plus every id /material holds that the table lacks
# (1000, 300 and 65535 from the updates) named and coloured as strata_material_get
# does, sorted by id; in every extraction above, at every level and rank count.
$STRATA info w --json --quiet > info.json
$py - info.json "inner.$first.h5" ./*.[0-9].h5 <<'PY'
import json, sys, h5py, numpy as np
table = {m["id"]: (m["name"], tuple(m["rgb"])) for m in json.load(open(sys.argv[1]))["materials"]}
def generated(i):  # src/world.c strata_material_get for an id not in the table
    h = (i * 2654435761) & 0xFFFFFFFF
    return f"material {i}", tuple(64 + (h >> s) % 192 for s in (8, 16, 24))
for path in sys.argv[2:]:
    f = h5py.File(path, "r")
    present = {int(v) for v in np.unique(f["material"][...])}
    rows = f["materials"][:]
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(set(ids)), f"{path}: /materials not sorted by unique id: {ids}"
    want = sorted(set(table) | present)
    assert ids == want, f"{path}: /materials ids {ids}, want {want}"
    for r in rows:
        i = int(r["id"])
        got = (r["name"].decode(), (int(r["r"]), int(r["g"]), int(r["b"])))
        assert got == (table[i] if i in table else generated(i)), f"{path}: id {i} is {got}"
    assert path != sys.argv[2] or {300, 1000, 65535} <= present - set(table), \
        f"{path}: the updates' unknown ids are not in the data"
print("ok /materials lists every present id")
PY

# A real client: ParaView's XDMF readers, where ParaView is installed
# (scripts/install-deps.sh all); they must see what h5py sees.
if command -v pvpython > /dev/null; then
  env -u DISPLAY pvpython "$SRC/tests/scripts/check_paraview.py" clipped.2.xmf lod1.2.xmf lod3.2.xmf 2>&1 \
    | grep -v '^$' || fail "ParaView read an extraction differently"
else
  echo "test_extract: pvpython not installed (scripts/install-deps.sh all): ParaView check skipped"
fi
echo "test_extract: ok"
