/* bench_suite.h: the benchmark suite behind `strata bench` (docs/benchmarks.md).
 *
 * Every measurement is one row: what was measured, on which volume, with which
 * access pattern, at how many ranks, whether it was durable, and the figure
 * with its unit. Rows go to a JSON file (bench/results.json when run by
 * bench/run.sh) together with a description of the machine. Peers (plain
 * parallel HDF5 here, OpenVDB in vdb_peer.cpp) are measured in the same run
 * on the same voxels, so that bench/report.py can put a ratio beside each row.
 */
#ifndef STRATA_BENCH_SUITE_H
#define STRATA_BENCH_SUITE_H

#include "bench_rows.h"

/** The strata rows: updates, staging, commit, storage, point and region reads. Collective. */
strata_status bench_strata(bench *b);
/**
 * The plain parallel HDF5 peer and the matching strata rows, in the same run:
 * ten batches of random updates and one durable commit, region reads. Collective.
 * @param[in] world path of the committed terrain world to copy into HDF5 and update
 */
strata_status bench_hdf5_peer(bench *b, const char *world);

/** Each volume (terrain, the demo's Andes import, a raw import) compacted, its
 * directory's bytes beside plain zstd-3 64^3 chunks and an HDF5 file with the
 * zstd filter (issue 18): rows storage_*_VOLUME, group "volumes". Collective. */
strata_status bench_volumes(bench *b);

/** Run the whole suite and write the JSON file (rank 0). Collective. */
strata_status bench_run(bench *b, const char *out_path);

#endif
