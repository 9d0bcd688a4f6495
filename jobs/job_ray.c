/* job_ray.c: `strata ray WORLD --from x,y,z --dir dx,dy,dz [--max-dist D]`. */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata ray WORLD --from x,y,z --dir dx,dy,dz [--max-dist D]";

int job_ray(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    double from[3], dir[3], max_dist = INFINITY;
    int have_from = 0, have_dir = 0;
    const char *value;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--from", &value)) {
            if (!value || parse_double_list(value, from, 3))
                return job_usage(j, usage, "--from wants x,y,z");
            have_from = 1;
        } else if (option_value(argc, argv, &i, "--dir", &value)) {
            if (!value || parse_double_list(value, dir, 3))
                return job_usage(j, usage, "--dir wants dx,dy,dz");
            have_dir = 1;
        } else if (option_value(argc, argv, &i, "--max-dist", &value)) {
            if (!value || parse_double_value(value, &max_dist) || !(max_dist >= 0))
                return job_usage(j, usage, "--max-dist wants a distance >= 0");
        } else if (!strcmp(argv[i], "--cache-mb")) {
            i++;
        } else if (strcmp(argv[i], "--quiet") && strcmp(argv[i], "-q")) {
            return job_usage(j, usage, "unknown option %s", argv[i]);
        }
    }
    if (!have_from || !have_dir)
        return job_usage(j, usage, "--from and --dir are required");
    if (dir[0] == 0 && dir[1] == 0 && dir[2] == 0)
        return job_usage(j, usage, "--dir must not be zero");
    strata_options opt;
    job_options(argc, argv, &opt);
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_READ, &opt, &w);
    if (st)
        return job_fail(j, st, NULL);
    strata_ray_hit hit;
    double start = MPI_Wtime();
    st = strata_ray(w, from, dir, max_dist, &hit);
    double seconds = MPI_Wtime() - start;
    if (st) {
        int rc = job_fail(j, st, w);
        strata_world_close(w);
        return rc;
    }
    if (j->rank == 0) {
        if (hit.hit)
            printf("hit %" PRId64 " %" PRId64 " %" PRId64 " %u %.6f\n", hit.voxel[0], hit.voxel[1],
                   hit.voxel[2], hit.material, hit.distance);
        else
            printf("miss\n");
        fflush(stdout);
    }
    strata_world_close(w);
    job_summary(j,
                "ray: %" PRIu64 " steps in %.1f us (query, index built on first use), %.3f s total",
                hit.steps, seconds * 1e6, MPI_Wtime() - j->start);
    return JOB_OK;
}
