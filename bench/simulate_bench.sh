#!/bin/bash
# bench/simulate_bench.sh [BUILD_DIR] [NP] [STEPS]: one `strata simulate` step
# against the same step written with plain parallel HDF5 and against the box I/O
# of the step alone, same run, on the README demo's Andes world (imported at NP
# ranks, default 2, as scripts/demo.sh does).
#   strata:    strata simulate --process erosion --seed 7 --commit-every STEPS --defer-index
#   box I/O:   strata simulate --process none (reads every block + halo, writes every
#              block back whole, no rule): the box I/O a step needs, measured alone
#   HDF5 peer: bench/sim_hdf5 on the world extracted to HDF5: each rank reads its
#              slab of y rows + halo with one collective hyperslab read, computes
#              with the same rules, writes the slab back with one collective
#              hyperslab write, H5Fflush + MPI_File_sync per commit. Two layouts of
#              the same /material, each run from the same start:
#              - zstd: 64^3 chunks, zstd level 3 (filter 32015), the layout of every
#                other HDF5 row of the bench (strata bench's hdf5, box, checkpoint
#                and volumes groups), a file in the world's size class;
#              - contiguous: uncompressed, 2 bytes per voxel on disk (the file is
#                ~150x the world on the Andes), HDF5's fastest layout.
# The worlds all three make are compared voxel for voxel (h5diff). Prints the best
# of REPS (default 3) summary lines of each and the ratios of the issue's targets
# (per step: the slowest rank's read + compute + write + commit seconds, over
# STEPS steps, default 10; the box I/O floor: box read + box write seconds).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
NP=${2:-2} STEPS=${3:-10}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
etopo=/usr/share/ferret-vis/data/etopo5.cdf
[ -r $etopo ] || { echo "$etopo missing: scripts/install-deps.sh demo" >&2; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-simulate-XXXXXX")
trap 'rm -rf "$work"' EXIT
strata=$BUILD/strata
export HDF5_PLUGIN_PATH=$BUILD # the zstd filter (libh5zstd.so) for h5repack and h5diff
run() { mpirun -np "$NP" "$@"; }
run "$strata" import "$work/andes" --dem $etopo --var ROSE --crop 3360,696,3600,888 \
  --vertical-res 25 --force --quiet
run "$strata" extract "$work/andes" --box 0,0,0,240,192,600 -o "$work/before.h5" --quiet
h5repack -f /material:UD=32015,0,1,3 -l /material:CHUNK=64x64x64 "$work/before.h5" \
  "$work/before-zstd.h5"
cp -r "$work/andes" "$work/start"
args=(--steps "$STEPS" --seed 7 --commit-every "$STEPS")
step() { sed -n 's/.*per step \([0-9.]*\) s.*/\1/p' <<< "$1"; }
field() { sed -n "s/.*$2 \([0-9.]*\) s.*/\1/p" <<< "$1"; }
# Best of REPS runs of each, from the same start (the machine may be shared).
best_sim="" best_io="" best_peer="" best_zpeer="" same=yes
for rep in $(seq "${REPS:-3}"); do
  rm -rf "$work/andes" "$work/none" "$work/peer.h5" "$work/zpeer.h5" "$work/after.h5" "$work/after.xmf"
  cp -r "$work/start" "$work/andes"
  cp -r "$work/start" "$work/none"
  cp "$work/before.h5" "$work/peer.h5"
  cp "$work/before-zstd.h5" "$work/zpeer.h5"
  sim=$(run "$strata" simulate "$work/andes" "${args[@]}" --process erosion --defer-index 2>&1 | tail -1)
  io=$(run "$strata" simulate "$work/none" "${args[@]}" --process none --defer-index 2>&1 | tail -1)
  peer=$(run "$BUILD/bench/sim_hdf5" "$work/peer.h5" "${args[@]}" --process erosion | tail -1)
  zpeer=$(run "$BUILD/bench/sim_hdf5" "$work/zpeer.h5" "${args[@]}" --process erosion | tail -1)
  run "$strata" extract "$work/andes" --box 0,0,0,240,192,600 -o "$work/after.h5" --quiet
  h5diff "$work/after.h5" "$work/peer.h5" /material /material > /dev/null || same=no
  h5diff "$work/after.h5" "$work/zpeer.h5" /material /material > /dev/null || same=no
  io_s=$(python3 -c "print($(field "$io" 'box read') + $(field "$io" 'box write'))")
  if [ -z "$best_sim" ] || python3 -c "import sys; sys.exit(not $(step "$sim") < $(step "$best_sim"))"; then best_sim=$sim; fi
  if [ -z "$best_io" ] || python3 -c "import sys; sys.exit(not $io_s < $best_io_s)"; then best_io=$io best_io_s=$io_s; fi
  if [ -z "$best_peer" ] || python3 -c "import sys; sys.exit(not $(step "$peer") < $(step "$best_peer"))"; then best_peer=$peer; fi
  if [ -z "$best_zpeer" ] || python3 -c "import sys; sys.exit(not $(step "$zpeer") < $(step "$best_zpeer"))"; then best_zpeer=$zpeer; fi
done
sim=$best_sim io=$best_io peer=$best_peer zpeer=$best_zpeer
echo "$sim"
echo "$io"
echo "zstd 64^3: $zpeer"
echo "contiguous: $peer"
python3 - "$(step "$sim")" "$(field "$io" 'box read')" "$(field "$io" 'box write')" \
  "$(step "$zpeer")" "$(step "$peer")" "$same" <<'EOF'
import sys
sim, io_read, io_write, zpeer, peer, same = sys.argv[1:]
sim, io, zpeer, peer = float(sim), float(io_read) + float(io_write), float(zpeer), float(peer)
print(f"strata step {sim:.3f} s; box read + write of the domain alone {io:.3f} s: "
      f"step / box I/O = {sim / io:.2f}x (target <= 3x)")
print(f"HDF5 step, zstd-3 64^3 chunks {zpeer:.3f} s: HDF5 / strata = {zpeer / sim:.2f}x "
      f"(target >= 5x)")
print(f"HDF5 step, uncompressed contiguous {peer:.3f} s: HDF5 / strata = {peer / sim:.2f}x; "
      f"same world voxel for voxel (all three): {same}")
EOF
