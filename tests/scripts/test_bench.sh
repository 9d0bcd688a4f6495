#!/bin/bash
# `strata bench --quick` runs end to end at 2 ranks and writes results.json with
# the machine description and the expected rows (so the benchmark code never
# rots); where the OpenVDB peer was built, it runs too and agrees with strata on
# every voxel it reads (it aborts otherwise). Figures are not checked: this is
# not a timed test.
set -eu
. "$(dirname "$0")/common.sh" "$@"
mpirun -np 2 "$STRATA" bench --quick --keep --out results.json --dir "$WORK/scratch" -q
$py - results.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("cpu", "cores", "memory", "kernel", "compiler", "mpi", "hdf5", "zstd"):
    assert key in r["machine"], f"machine description lacks {key}"
rows = {row["id"]: row for row in r["rows"]}
expected = ["commit_terrain", "storage_strata_payload", "storage_strata_files", "storage_zstd3_chunks",
            "dense_chunk_bytes", "uniform_chunk_bytes", "route_apply_1M_uniform", "stage_one",
            "apply_sorted_own", "read_voxel_hot", "read_voxel_cold", "query_points_L0",
            "storage_hdf5_zstd3_file", "region_hdf5_hyperslab", "region_strata_load_chunk",
            "sim_strata_batches_commit", "sim_strata_batches_commit_deferred_index",
            "sim_hdf5_points", "sim_hdf5_chunk_rmw", "reindex_full", "reindex_full_durable",
            "reindex_incremental", "storage_world_total", "storage_zstd3_chunks64"]
expected += [f"update_{p}_1e+05" for p in ("uniform", "erosion", "volcanic", "river")]
expected += ["checkpoint_strata_commits", "checkpoint_hdf5_commits",
             "checkpoint_strata_bytes_per_commit", "checkpoint_hdf5_bytes_per_commit",
             "checkpoint_strata_delta_bytes_per_voxel", "checkpoint_strata_delta_headers_per_commit"]
expected += [f"chain_{c}{r}" for c in ("", "compacted_")
             for r in ("read_voxel_hot", "read_voxel_cold", "extract_whole_L0")]
expected += [f"storage_{k}_{v}" for v in ("terrain", "raw")
             for k in ("world_total", "payload", "index", "zstd3_chunks64", "hdf5_zstd3_file")]
missing = [e for e in expected if e not in rows]
# issue 18, byte counts (not timings): the compacted world beside plain zstd-3 64^3
# and the HDF5 file with the zstd filter, the LOD index <= 10 % of the payloads
for v in ("terrain", "raw"):
    world, index = rows[f"storage_world_total_{v}"]["value"], rows[f"storage_index_{v}"]["value"]
    payload = rows[f"storage_payload_{v}"]["value"]
    assert index <= 0.10 * payload, f"{v}: index {index} bytes > 10 % of payloads {payload}"
    assert 1.25 * world <= rows[f"storage_zstd3_chunks64_{v}"]["value"], f"{v}: world {world} bytes"
    assert world < rows[f"storage_hdf5_zstd3_file_{v}"]["value"], f"{v}: world {world} vs HDF5 file"
assert not missing, f"missing rows: {missing}"
# every file of the world's directory: at least its live segments, at most a few KB more
total, files = rows["storage_world_total"]["value"], rows["storage_strata_files"]["value"]
assert files <= total <= files + 8192, f"world total {total} vs segment files {files}"
assert rows["storage_zstd3_chunks64"]["value"] > 0
for row in r["rows"]:
    for key in ("volume", "pattern", "what", "unit", "command"):
        assert row[key], f"row {row['id']} has no {key}"
    assert row["ranks"] == 2, f"row {row['id']} says {row['ranks']} ranks"
    assert isinstance(row["value"], (int, float)) and row["value"] > 0, f"row {row['id']}: {row['value']}"
    assert len(row["samples"]) == row["best_of"] >= 1
print(f"results.json: {len(rows)} rows, all expected present")
PY
if [ -x "$BUILD/bench/vdb_peer" ]; then
  mpirun -np 1 "$BUILD/bench/vdb_peer" --dims 128,128,64 --dir "$WORK/vdb" --out vdb.json \
    --world raw="$WORK/scratch/volume-raw"
  $py -c 'import json,sys; r=json.load(open("vdb.json")); ids={x["id"] for x in r["rows"]}; need={"vdb_read_hot","vdb_peer_strata_read_hot","vdb_file_bytes","vdb_build","vdb_file_bytes_raw"}; assert need<=ids, need-ids; print("vdb.json:", len(ids), "rows")'
else
  echo "vdb_peer not built (no OpenVDB): its rows are skipped"
fi
