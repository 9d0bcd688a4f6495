/* job_region.c: `strata region WORLD --box x0,y0,z0,x1,y1,z1 --lod L [--threshold T]`. */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] =
    "strata region WORLD --box x0,y0,z0,x1,y1,z1 --lod L [--threshold 0.95] [--units m]";

int job_region(job *j, int argc, char **argv)
{
    box_arg box;
    int64_t level = -1;
    double threshold = 0.95;
    strata_world *w;
    int rc = job_box_query(j, usage, argc, argv, &box, &level, &threshold, &w);
    if (rc)
        return rc;
    strata_status st = STRATA_OK;
    strata_region *regions = NULL;
    size_t n = 0;
    double start = MPI_Wtime();
    st = strata_query_region(w, box.box, (int)level, threshold, &regions, &n);
    double seconds = MPI_Wtime() - start;
    if (st)
        return job_fail_close(j, st, w);
    if (j->rank == 0) {
        for (size_t i = 0; i < n; i++) {
            const strata_region *r = &regions[i];
            printf("%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                   " %u %.6f\n",
                   r->box[0], r->box[1], r->box[2], r->box[3], r->box[4], r->box[5], r->material,
                   r->homogeneity);
        }
        fflush(stdout);
    }
    free(regions);
    strata_world_close(w);
    /* the threshold as given: the shortest form that reads back as the same double */
    char given[32];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(given, sizeof given, "%.*g", digits, threshold);
        if (strtod(given, NULL) == threshold)
            break;
    }
    job_summary(j, "%zu regions at LOD %" PRId64 " (threshold %s) in %.3f ms (query), %.3f s total",
                n, level, given, seconds * 1e3, MPI_Wtime() - j->start);
    return JOB_OK;
}
