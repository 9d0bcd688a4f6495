/* job_reindex.c: `strata reindex WORLD [--full]`: rebuild the stored LOD index,
 * beside a writer job if one runs (STRATA_INDEX: no writer lock). */
#include <inttypes.h>
#include <mpi.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata reindex WORLD [--full]";

int job_reindex(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    int full = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--full"))
            full = 1;
        else if (!strcmp(argv[i], "--cache-mb"))
            i++;
        else
            return job_usage(j, usage, "unknown option %s", argv[i]);
    }
    strata_world *w;
    int open_rc = job_open(j, usage, argc, argv, argv[1], STRATA_INDEX, &w);
    if (open_rc)
        return open_rc;
    strata_status st = STRATA_OK;
    strata_reindex_stats rs = {0};
    st = strata_reindex(w, full, &rs);
    if (st)
        return job_fail_close(j, st, w);
    strata_world_close(w);
    double rate = rs.summarize_seconds > 0 ? (double)rs.voxels / rs.summarize_seconds / j->size : 0;
    if (rs.chunks == 0)
        job_summary(j, "%s: index up to date, nothing to do (%.3f s)", argv[1],
                    MPI_Wtime() - j->start);
    else
        job_summary(j,
                    "%s: %s reindex of %" PRIu64 " chunks (%" PRIu64 " voxels) of epoch %" PRIu64
                    ", published at epoch %" PRIu64 " (%" PRIu64 " current, %" PRIu64
                    " rewritten meanwhile; %" PRIu64 " stale now), summarised in %.3f s (%.3g "
                    "voxels/s per rank), %.3f s with the publication",
                    argv[1], full ? "full" : "incremental", rs.chunks, rs.voxels, rs.snapshot_epoch,
                    rs.epoch, rs.applied, rs.chunks - rs.applied, rs.stale_after,
                    rs.summarize_seconds, rate, rs.seconds);
    return JOB_OK;
}
