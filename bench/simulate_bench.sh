#!/bin/bash
# bench/simulate_bench.sh [BUILD_DIR] [NP] [STEPS]: one `strata simulate` step
# against the same step written with plain parallel HDF5 and against the box I/O
# of the step alone, same run, on the README demo's Andes world (imported at NP
# ranks, default 2, as scripts/demo.sh does).
#   strata:    strata simulate --process erosion --seed 7 --commit-every STEPS --defer-index
#   box I/O:   strata simulate --process none (reads every block + halo, writes every
#              block back whole, no rule): the box I/O a step needs, measured alone
#   HDF5 peer: bench/sim_hdf5 on the world extracted to HDF5 (contiguous /material):
#              each rank reads its slab of y rows + halo with one collective
#              hyperslab read, computes with the same rules, writes the slab back
#              with one collective hyperslab write, H5Fflush + MPI_File_sync per commit
# The worlds both make are compared voxel for voxel (h5diff). Prints the best
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
run() { mpirun -np "$NP" "$@"; }
run "$strata" import "$work/andes" --dem $etopo --var ROSE --crop 3360,696,3600,888 \
  --vertical-res 25 --force --quiet
run "$strata" extract "$work/andes" --box 0,0,0,240,192,600 -o "$work/before.h5" --quiet
cp -r "$work/andes" "$work/start"
args=(--steps "$STEPS" --seed 7 --commit-every "$STEPS")
step() { sed -n 's/.*per step \([0-9.]*\) s.*/\1/p' <<< "$1"; }
field() { sed -n "s/.*$2 \([0-9.]*\) s.*/\1/p" <<< "$1"; }
# Best of REPS runs of each, from the same start (the machine may be shared).
best_sim="" best_io="" best_peer="" same=yes
for rep in $(seq "${REPS:-3}"); do
  rm -rf "$work/andes" "$work/none" "$work/peer.h5" "$work/after.h5" "$work/after.xmf"
  cp -r "$work/start" "$work/andes"
  cp -r "$work/start" "$work/none"
  cp "$work/before.h5" "$work/peer.h5"
  sim=$(run "$strata" simulate "$work/andes" "${args[@]}" --process erosion --defer-index 2>&1 | tail -1)
  io=$(run "$strata" simulate "$work/none" "${args[@]}" --process none --defer-index 2>&1 | tail -1)
  peer=$(run "$BUILD/bench/sim_hdf5" "$work/peer.h5" "${args[@]}" --process erosion | tail -1)
  run "$strata" extract "$work/andes" --box 0,0,0,240,192,600 -o "$work/after.h5" --quiet
  h5diff "$work/after.h5" "$work/peer.h5" /material /material > /dev/null || same=no
  io_s=$(python3 -c "print($(field "$io" 'box read') + $(field "$io" 'box write'))")
  if [ -z "$best_sim" ] || python3 -c "import sys; sys.exit(not $(step "$sim") < $(step "$best_sim"))"; then best_sim=$sim; fi
  if [ -z "$best_io" ] || python3 -c "import sys; sys.exit(not $io_s < $best_io_s)"; then best_io=$io best_io_s=$io_s; fi
  if [ -z "$best_peer" ] || python3 -c "import sys; sys.exit(not $(step "$peer") < $(step "$best_peer"))"; then best_peer=$peer; fi
done
sim=$best_sim io=$best_io peer=$best_peer
echo "$sim"
echo "$io"
echo "$peer"
python3 - "$(step "$sim")" "$(field "$io" 'box read')" "$(field "$io" 'box write')" \
  "$(step "$peer")" "$same" <<'EOF'
import sys
sim, io_read, io_write, peer, same = sys.argv[1:]
sim, io, peer = float(sim), float(io_read) + float(io_write), float(peer)
print(f"strata step {sim:.3f} s; box read + write of the domain alone {io:.3f} s: "
      f"step / box I/O = {sim / io:.2f}x (target <= 3x)")
print(f"HDF5 step {peer:.3f} s: HDF5 / strata = {peer / sim:.2f}x (target >= 5x); "
      f"same world voxel for voxel: {same}")
EOF
