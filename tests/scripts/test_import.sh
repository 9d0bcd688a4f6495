#!/bin/bash
# test_import.sh STRATA WORKDIR SOURCE_DIR BUILD_DIR
# Imports crops of real ETOPO relief (Debian's ferret-datasets) at 1, 2 and 4 ranks
# and checks sampled columns (counts of ground, water and air, and the materials)
# against the elevations read independently with numpy, plus `info --json`'s voxel
# size and origin; then a raw volume through the command, and bad input.
set -euo pipefail
# Sanitized builds run three times slower: they check one rank count here (the
# MPI tests still run at 1, 2 and 4 ranks).
RANKS="1 2 4"
[ "${STRATA_SANITIZED:-0}" = 1 ] && RANKS="2"
. "$(dirname "$0")/common.sh" "$@"
DATA=/usr/share/ferret-vis/data
MPIRUN=(mpirun --oversubscribe)

if [ ! -r "$DATA/etopo20.cdf" ] || [ ! -r "$DATA/etopo60.cdf" ]; then
    skip "$DATA/etopo20.cdf missing (apt-get install --no-install-recommends ferret-datasets)"
fi
need_python numpy

if "$STRATA" import probe --dem /dev/null --quiet 2>probe.err; then :; fi
if grep -q "without netCDF" probe.err; then
    skip "strata built without netCDF: $(cat probe.err)"
fi

# check.py FILE NX NY CROP M SEA SCALE WORLD MODE: MODE "points" writes the sample
# points, "verify" compares `strata get` output (ids.txt) and info.json.
cat > check.py <<'EOF'
import json, math, sys
import numpy as np

path, nx, ny = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
i0, j0, i1, j1 = map(int, sys.argv[4].split(","))
m, sea, scale, mode = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
size = __import__("os").path.getsize(path)
data = size - 4 * nx * ny          # ROSE is the last variable (recipes/real-data.md)
lat = np.fromfile(path, ">f8", count=ny, offset=data - 8 * ny)
lon = np.fromfile(path, ">f8", count=nx, offset=data - 8 * ny - 8 * nx)
grid = np.fromfile(path, ">f4", offset=data).reshape(ny, nx)
crop = grid[j0:j1, i0:i1].astype(np.float64) * scale
zmin = math.floor(crop.min() / m) * m
zmax = math.ceil(max(crop.max(), sea) / m) * m
Z = int(round((zmax - zmin) / m))
X, Y = i1 - i0, j1 - j0

# Sampled columns: a fixed-seed random set plus the deepest and highest cells.
rng = np.random.default_rng(7)
cols = [(int(x), int(y)) for x, y in zip(rng.integers(0, X, 14), rng.integers(0, Y, 14))]
cols.append(tuple(int(v) for v in np.unravel_index(np.argmin(crop), crop.shape)[::-1]))
cols.append(tuple(int(v) for v in np.unravel_index(np.argmax(crop), crop.shape)[::-1]))

if mode == "points":
    with open("points.txt", "w") as f:
        f.write("# x y z, every voxel of the sampled columns\n")
        for x, y in cols:
            for z in range(Z):
                f.write(f"{x} {y} {z}\n")
    sys.exit(0)

# Default layer table of docs/import.md: (thickness, material, zone).
LAYERS = [(200, 2, "land"), (200, 3, "coast"), (400, 4, "sea"), (800, 5, "any"), (1200, 6, "any"),
          (1500, 7, "any"), (3000, 8, "any"), (4000, 9, "any"), (0, 13, "any")]
def layer(e, depth):
    zone = "sea" if e < sea else "coast" if e < sea + 20 else "land"
    bottom, last = 0.0, 0
    for t, mat, zn in LAYERS:
        if zn not in ("any", zone):
            continue
        last = mat
        bottom += t
        if t == 0 or depth < bottom:
            break
    return last

ids = [int(v) for v in open("ids.txt").read().split()]
assert len(ids) == len(cols) * Z, (len(ids), len(cols) * Z)
bad = 0
for n, (x, y) in enumerate(cols):
    e = float(crop[y, x])
    got = ids[n * Z:(n + 1) * Z]
    want = []
    for k in range(Z):
        c, top = zmin + (k + 0.5) * m, zmin + (k + 1) * m
        want.append(layer(e, max(e - top, 0.0)) if c < e else 1 if c < sea else 0)
    counts = lambda v: (sum(1 for a in v if a > 1), v.count(1), v.count(0))
    if got != want:
        bad += 1
        print(f"column {x},{y} (elevation {e} m): ground/water/air {counts(got)}, want {counts(want)}")
if bad:
    sys.exit(f"{bad} of {len(cols)} columns differ")

# Georeference: WGS84 metres per degree at the crop's centre latitude (docs/import.md).
info = json.load(open("info.json"))
dlon, dlat = (lon[-1] - lon[0]) / (nx - 1), (lat[-1] - lat[0]) / (ny - 1)
centre = lat[0] + dlat * (j0 + j1 - 1) / 2
a, e2, rad = 6378137.0, 0.00669437999014, math.pi / 180
s = math.sin(centre * rad); w = 1 - e2 * s * s
lon_m = rad * a * math.cos(centre * rad) / math.sqrt(w)
lat_m = rad * a * (1 - e2) / (w * math.sqrt(w))
size_want = [dlon * lon_m, dlat * lat_m, m]
origin_want = [(lon[0] + dlon * i0 - dlon / 2) * lon_m, (lat[0] + dlat * j0 - dlat / 2) * lat_m, zmin]
assert info["dims"] == [X, Y, Z], (info["dims"], [X, Y, Z])
for k in range(3):
    assert abs(info["voxel_size"][k] - size_want[k]) < 1e-5, ("voxel_size", k, info["voxel_size"], size_want)
    assert abs(info["origin"][k] - origin_want[k]) < 1e-5, ("origin", k, info["origin"], origin_want)
print(f"ok: {len(cols)} columns x {Z} voxels, voxel size {size_want}, origin {origin_want}")
EOF

run_case() { # name file nx ny crop m sea scale [extra import options]
    local name=$1 file=$2 nx=$3 ny=$4 crop=$5 m=$6 sea=$7 scale=$8
    shift 8
    $py check.py "$file" "$nx" "$ny" "$crop" "$m" "$sea" "$scale" points
    for np in $RANKS; do
        local world="$name.np$np"
        "${MPIRUN[@]}" -np $np "$STRATA" import "$world" --dem "$file" --crop "$crop" --vertical-res "$m" \
            --sea-level "$sea" --scale "$scale" --chunk 16 --quiet "$@"
        "${MPIRUN[@]}" -np $np "$STRATA" get "$world" --points points.txt > ids.txt
        "$STRATA" info "$world" --json > info.json
        $py check.py "$file" "$nx" "$ny" "$crop" "$m" "$sea" "$scale" verify
        cp ids.txt "ids.$name.np$np"
    done
    for np in $RANKS; do cmp "ids.$name.np${RANKS%% *}" "ids.$name.np$np"; done
    echo "ok: $name at 1, 2 and 4 ranks"
}

# The Andes meeting the Peru-Chile trench on ETOPO20 (lon 280..296 E, lat 33..20 S).
run_case andes20 "$DATA/etopo20.cdf" 1081 540 780,170,828,210 200 0 1
# Units: the same crop read as if in feet (--scale 0.3048), finer steps, sea level 100 m.
run_case feet20 "$DATA/etopo20.cdf" 1081 540 780,170,828,210 50 100 0.3048
# ETOPO60: the Himalaya to the Bay of Bengal (var named explicitly).
run_case asia60 "$DATA/etopo60.cdf" 360 180 60,100,80,125 250 0 1 --var ROSE

# A raw volume through the command: uint16 big-endian, compared voxel for voxel.
$py - <<'EOF'
import numpy as np
rng = np.random.default_rng(3)
v = rng.integers(0, 65536, size=(13, 21, 35), dtype=np.uint64).astype(np.uint16)  # [z][y][x]
v[:, :10, :] = 5
v.astype(">u2").tofile("vol.raw")
with open("vol_points.txt", "w") as f:
    for z, y, x in zip(rng.integers(0, 13, 300), rng.integers(0, 21, 300), rng.integers(0, 35, 300)):
        f.write(f"{x} {y} {z}\n")
pts = np.loadtxt("vol_points.txt", dtype=int)
np.savetxt("vol_want.txt", v[pts[:, 2], pts[:, 1], pts[:, 0]], fmt="%d")
EOF
for np in $RANKS; do
    "${MPIRUN[@]}" -np $np "$STRATA" import vol.np$np --raw vol.raw --dims 35,21,13 --type uint16 \
        --endian big --chunk 16 --quiet
    "${MPIRUN[@]}" -np $np "$STRATA" get vol.np$np --points vol_points.txt > vol_got.txt
    cmp vol_got.txt vol_want.txt
done
echo "ok: raw volume at ranks $RANKS"

# Bad input: non-zero exit, a clear message, nothing created.
expect_fail() { # pattern, command...
    local pattern=$1
    shift
    if "$@" 2> err.txt; then
        echo "FAIL: succeeded: $*"
        exit 1
    fi
    grep -q "$pattern" err.txt || { echo "FAIL: no '$pattern' in: $(cat err.txt)"; exit 1; }
    [ ! -e bad.world ] || { echo "FAIL: bad.world created by: $*"; exit 1; }
}
expect_fail "not a netCDF file" "${MPIRUN[@]}" -np 2 "$STRATA" import bad.world --dem vol.raw
expect_fail "no variable 'NOPE'" "${MPIRUN[@]}" -np 2 "$STRATA" import bad.world --dem "$DATA/etopo60.cdf" --var NOPE
expect_fail "has 1 dimensions" "${MPIRUN[@]}" -np 2 "$STRATA" import bad.world --dem "$DATA/etopo60.cdf" \
    --var ETOPO60X
expect_fail "does not fit" "$STRATA" import bad.world --dem "$DATA/etopo60.cdf" --crop 0,0,400,10
expect_fail "need" "${MPIRUN[@]}" -np 2 "$STRATA" import bad.world --raw vol.raw --dims 35,21,14 --type uint16
printf 'name,thickness,material,r,g,b,zone\nsoil,10,2,1,2,3,moon\n' > bad_layers.csv
expect_fail "bad_layers.csv line 2" "$STRATA" import bad.world --dem "$DATA/etopo60.cdf" --layers bad_layers.csv
printf 'name,thickness,material,r,g,b,zone\nrock,0,8,1,2,3,land\n' > sea_less.csv
expect_fail "no layer for coast" "$STRATA" import bad.world --dem "$DATA/etopo60.cdf" --layers sea_less.csv
echo "ok: bad input"
