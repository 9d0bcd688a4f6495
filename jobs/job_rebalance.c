/* job_rebalance.c: `strata rebalance WORLD [--by bytes|count]`. */
#include <inttypes.h>
#include <mpi.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata rebalance WORLD [--by bytes|count]";

int job_rebalance(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    int by = STRATA_WEIGHT_BYTES;
    const char *value;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--by", &value)) {
            if (value && !strcmp(value, "bytes"))
                by = STRATA_WEIGHT_BYTES;
            else if (value && !strcmp(value, "count"))
                by = STRATA_WEIGHT_COUNT;
            else
                return job_usage(j, usage, "--by wants bytes or count");
        } else {
            return job_usage(j, usage, "unknown option %s", argv[i]);
        }
    }
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_WRITE, NULL, &w);
    if (st)
        return job_fail(j, st, NULL);
    strata_commit_stats cs = {0};
    st = strata_rebalance(w, by, NULL, NULL);
    if (!st)
        st = strata_commit(w, &cs);
    uint64_t first = 0, last = 0;
    strata_key_range(w, &first, &last);
    if (st)
        return job_fail_close(j, st, w);
    strata_world_close(w);
    job_summary(
        j, "%s: splitters recomputed by %s for %d ranks, recorded at epoch %" PRIu64 " in %.3f s",
        argv[1], by == STRATA_WEIGHT_BYTES ? "stored bytes" : "chunk count", j->size, cs.epoch,
        MPI_Wtime() - j->start);
    return JOB_OK;
}
