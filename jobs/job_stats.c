/* job_stats.c: `strata stats WORLD --box x0,y0,z0,x1,y1,z1`: voxels per material. */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata stats WORLD --box x0,y0,z0,x1,y1,z1 [--units m]";

int job_stats(job *j, int argc, char **argv)
{
    box_arg box;
    strata_world *w;
    int rc = job_box_query(j, usage, argc, argv, &box, NULL, NULL, &w);
    if (rc)
        return rc;
    strata_status st = STRATA_OK;
    strata_material_count *counts = NULL;
    size_t n = 0;
    st = strata_box_stats(w, box.box, &counts, &n);
    if (st)
        return job_fail_close(j, st, w);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += counts[i].count;
    if (j->rank == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%u %" PRIu64 "\n", counts[i].material, counts[i].count);
        fflush(stdout);
    }
    free(counts);
    strata_world_close(w);
    job_summary(j, "%zu materials, %" PRIu64 " voxels in %.3f s", n, total, MPI_Wtime() - j->start);
    return JOB_OK;
}
