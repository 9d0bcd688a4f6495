/* job_update.c: `strata update WORLD FILE`: apply an update file and commit it. */
#include <inttypes.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata update WORLD FILE [--defer-index] [--quiet]\n"
                            "  FILE: text lines \"x y z material [expected]\" or the binary format";

int job_update(job *j, int argc, char **argv)
{
    if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return job_usage(j, usage, "missing WORLD or FILE");
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "--defer-index"))
            return job_usage(j, usage, "unknown option %s", argv[i]);
    const char *path = argv[1], *file = argv[2];
    strata_world *w;
    /* Open first: a bad world is reported before reading a large file. */
    int open_rc = job_open(j, usage, argc, argv, path, STRATA_WRITE, &w);
    if (open_rc)
        return open_rc;
    strata_status st = STRATA_OK;
    strata_update *updates = NULL;
    size_t n = 0;
    strata_config cfg;
    strata_world_config(w, &cfg);
    if (load_update_slice(j, file, cfg.dims, &updates, &n)) {
        strata_world_close(w);
        return JOB_FAILED;
    }
    strata_batch_stats bs = {0};
    strata_commit_stats cs = {0};
    /* One collective batch for the whole file keeps file order = (rank, order). */
    st = strata_update_batch(w, updates, n, &bs);
    free(updates);
    if (!st)
        st = strata_commit(w, &cs);
    if (st)
        return job_fail_close(j, st, w);
    strata_world_close(w);
    double seconds = MPI_Wtime() - j->start;
    job_summary(
        j,
        "%s: %" PRIu64 " updates, %" PRIu64 " applied, %" PRIu64 " skipped (expected "
        "material differed); routed+applied in %.3f s (%.3g updates/s), committed epoch %" PRIu64
        " (%" PRIu64 " chunks, %.2f MB) in %.3f s; total %.3f s",
        path, bs.submitted, bs.applied, bs.skipped, bs.seconds,
        bs.seconds > 0 ? (double)bs.submitted / bs.seconds : 0.0, cs.epoch, cs.chunks_written,
        cs.stored_bytes / 1e6, cs.seconds, seconds);
    return JOB_OK;
}
