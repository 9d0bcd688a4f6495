/* job_compact.c: `strata compact WORLD`: merge every segment into one, atomically. */
#include <inttypes.h>
#include <mpi.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata compact WORLD";

int job_compact(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    if (argc > 2)
        return job_usage(j, usage, "unknown option %s", argv[2]);
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_WRITE, NULL, &w);
    if (st)
        return job_fail(j, st, NULL);
    strata_info before;
    strata_commit_stats cs = {0};
    st = strata_world_info(w, &before);
    if (!st)
        st = strata_compact(w, &cs);
    if (st)
        return job_fail_close(j, st, w);
    strata_world_close(w);
    double seconds = MPI_Wtime() - j->start;
    job_summary(j,
                "%s: %" PRIu64 " segments (%.2f MB) -> 1 (%" PRIu64 " chunks, %.2f MB payload), "
                "epoch %" PRIu64 ", in %.3f s",
                argv[1], before.segments, before.stored_bytes / 1e6, cs.chunks_written,
                cs.stored_bytes / 1e6, cs.epoch, seconds);
    return JOB_OK;
}
