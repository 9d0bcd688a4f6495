#!/bin/bash
# bench/run.sh [BUILD_DIR]: the full benchmark suite (docs/benchmarks.md).
# Runs `strata bench` at 1, 2 and 4 ranks and the OpenVDB peer (when built),
# merges everything into bench/results.json with the machine's description,
# draws docs/img/scaling.png and docs/img/update_patterns.png with gnuplot and
# rewrites the generated tables of docs/benchmarks.md.
# QUICK=1 bench/run.sh rehearses it with --quick sizes (figures then mean little).
# Run it on a quiet machine: every figure is best-of-N wall time.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export HDF5_PLUGIN_PATH=$BUILD
quick=()
[ -n "${QUICK:-}" ] && quick=(--quick)
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-run-XXXXXX")
trap 'rm -rf "$work"' EXIT
for np in 1 2 4; do
  echo "== strata bench at $np ranks" >&2
  keep=()
  [ $np = 1 ] && keep=(--keep) # its volume-* worlds: the .vdb files of the same volumes below
  mpirun -np $np "$BUILD/strata" bench "${quick[@]}" "${keep[@]}" --out "$work/strata_np$np.json" --dir "$work/scratch$np"
done
worlds=()
for v in terrain andes raw; do
  [ -d "$work/scratch1/volume-$v" ] && worlds+=(--world "$v=$work/scratch1/volume-$v")
done
if [ -x "$BUILD/bench/vdb_peer" ]; then
  echo "== OpenVDB peer" >&2
  mpirun -np 1 "$BUILD/bench/vdb_peer" "${quick[@]}" "${worlds[@]}" --dir "$work/vdb" --out "$work/vdb.json"
else
  echo "== vdb_peer not built (apt install libopenvdb-dev libtbb-dev libboost-dev, re-run cmake)" >&2
fi
/usr/bin/python3 "$SRC/bench/report.py" --out "$SRC/bench/results.json" --docs "$SRC/docs/benchmarks.md" \
  --img "$SRC/docs/img" "$work"/*.json
