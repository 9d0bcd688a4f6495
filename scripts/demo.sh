#!/bin/bash
# The demo of the brief: install what is missing, build, then on 4 ranks import a
# crop of real Earth relief (NOAA ETOPO5: the Andes meeting the Peru-Chile trench),
# run an erosion simulation, rebuild the LOD index, and extract a region to
# HDF5 + XDMF (ParaView) with a PNG slice, and end with pictures of the world
# before and after its erosion run (strata render). Output goes to demo/ (or $1).
set -eu
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-$root/demo}
scripts/install-deps.sh demo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
cmake -S . -B "${STRATA_BUILD:-build}" -DCMAKE_BUILD_TYPE=Release -DSTRATA_WERROR=OFF >/dev/null
cmake --build "${STRATA_BUILD:-build}" -j "$(nproc)" >/dev/null
strata=${STRATA_BUILD:-$root/build}/strata
mkdir -p "$out"
world=$out/andes
etopo=/usr/share/ferret-vis/data/etopo5.cdf
run() { echo "+ mpirun -np 4 strata $*" >&2; mpirun -np 4 "$strata" "$@"; }

# 240 x 192 cells of 5' (about 9 x 9 km), 32S-16S, 80W-60W, in 25 m layers from
# the Peru-Chile trench floor to the Andes' peaks: about 24 million voxels.
run import "$world" --dem "$etopo" --var ROSE --crop 3360,696,3600,888 \
    --vertical-res 25 --force
run info "$world"
run render "$world" -o "$out/andes-before.png" --size 800,600
run simulate "$world" --steps 40 --process erosion --seed 7 --commit-every 10 --defer-index
run reindex "$world"
run region "$world" --box 0,0,0,240,192,600 --lod 5 --threshold 0.9 > "$out/regions.txt"
echo "regions at LOD 5: $(wc -l < "$out/regions.txt") lines in $out/regions.txt" >&2
run extract "$world" --box 0,0,0,240,192,600 -o "$out/andes.h5" \
    --png "$out/andes-slice.png" --axis y --at 96
run extract "$world" --box 0,0,0,240,192,600 -o "$out/andes-top.h5" \
    --png "$out/andes-z.png" --axis z --at 260
run fsck "$world"
run render "$world" -o "$out/andes-after.png" --size 800,600
run render "$world" -o "$out/andes-seafloor.png" --size 800,600 --hide water
echo "demo done: $out/andes.h5 + andes.xmf (open in ParaView), $out/andes-slice.png, $out/andes-z.png" >&2
echo "the world before and after erosion: $out/andes-before.png $out/andes-after.png" >&2
echo "after erosion without its sea (the trench): $out/andes-seafloor.png" >&2
