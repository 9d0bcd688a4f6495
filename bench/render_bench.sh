#!/bin/bash
# bench/render_bench.sh [BUILD_DIR]: strata render beside vdb_render, same run.
# The 512 x 512 x 256 terrain (seed 1, chunk 32) is drawn at 1024 x 768 with the
# default camera by `strata render` at LOD 0 and LOD 3 on 1 and 2 ranks, and by
# OpenVDB's vdb_render (Debian libopenvdb-tools) from the same volume as a level
# set (bench/vdb_levelset: every non-air voxel solid) with the same camera and
# image size, with 1 and 2 threads. Best of 3 each; prints a markdown table.
# Strata's figure is strata_render's call (world open excluded); vdb_render's is
# its "ray-tracing surface" time (file read excluded); both also as whole
# process wall time.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
command -v vdb_render >/dev/null || { echo "vdb_render missing: scripts/install-deps.sh test" >&2; exit 77; }
[ -x "$BUILD/bench/vdb_levelset" ] || { echo "vdb_levelset not built (OpenVDB dev packages)" >&2; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-render-XXXXXX")
trap 'rm -rf "$work"' EXIT
mpirun -np 2 "$BUILD/strata" create "$work/t" --dims 512,512,256 --generate terrain --seed 1 -q
mpirun -np 1 "$BUILD/bench/vdb_levelset" "$work/t" "$work/t.vdb" 2>/dev/null
# The default camera, as strata render prints it; vdb_render's fov is horizontal.
cam=$(mpirun -np 1 "$BUILD/strata" render "$work/t" -o "$work/probe.png" --size 1024,768 2>&1 |
  sed -n 's/.*camera from (\([^)]*\)) at (\([^)]*\)).*/\1|\2/p' | tr -d ' ')
from=${cam%|*} at=${cam#*|}
hfov=$(python3 -c "import math; print(2*math.degrees(math.atan(math.tan(math.radians(20))*1024/768)))")
best() { sort -g | head -1; }
echo "| what | ranks / threads | render s (best of 3) | whole process s (best of 3) |"
echo "|---|---|---|---|"
for lod in 0 3; do
  for np in 1 2; do
    r=() t=()
    for k in 1 2 3; do
      s=$(date +%s.%N)
      line=$(mpirun -np $np "$BUILD/strata" render "$work/t" -o "$work/s.png" --size 1024,768 --lod $lod 2>&1 | tail -1)
      e=$(date +%s.%N)
      r+=("$(echo "$line" | sed -n 's/.* \([0-9.]*\) s render.*/\1/p')")
      t+=("$(python3 -c "print(f'{$e-$s:.3f}')")")
    done
    echo "| strata render, LOD $lod | $np ranks | $(printf '%s\n' "${r[@]}" | best) | $(printf '%s\n' "${t[@]}" | best) |"
  done
done
for cpus in 1 2; do
  r=() t=()
  for k in 1 2 3; do
    s=$(date +%s.%N)
    out=$(vdb_render "$work/t.vdb" "$work/v.ppm" -res 1024x768 -translate "$from" -lookat "$at" \
      -up 0,0,1 -fov "$hfov" -shader diffuse -cpus $cpus -v 2>&1)
    e=$(date +%s.%N)
    r+=("$(echo "$out" | sed -n '/ray-tracing/,$p' | sed -n 's/.*completed in \([0-9.e-]*\) sec.*/\1/p' | head -1)")
    t+=("$(python3 -c "print(f'{$e-$s:.3f}')")")
  done
  echo "| vdb_render (level set, diffuse, no shadows) | $cpus threads | $(printf '%s\n' "${r[@]}" | best) | $(printf '%s\n' "${t[@]}" | best) |"
done
