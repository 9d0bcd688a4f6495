/* job_ray.c: `strata ray WORLD --from x,y,z --dir dx,dy,dz [--max-dist D]`. */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"

static const char usage[] =
    "strata ray WORLD --from x,y,z --dir dx,dy,dz [--max-dist D] [--units m]";

static const char *const axes[3] = {"x", "y", "z"}, *const components[3] = {"dx", "dy", "dz"};

/* Scale a non-zero direction by a power of two (exact: it points the same way) so that
 * its largest component lies in [0.5, 1): its length then neither overflows (1e308) nor
 * underflows (subnormals such as 1e-320), here or in the metres conversion. */
static void scale_direction(double dir[3])
{
    int exponent;
    frexp(fmax(fabs(dir[0]), fmax(fabs(dir[1]), fabs(dir[2]))), &exponent);
    for (int i = 0; i < 3; i++)
        dir[i] = ldexp(dir[i], -exponent);
}

/* What the command line asks for. */
typedef struct {
    double from[3], dir[3], max_dist;
    int metres;
} ray_args;

/* The whole command line into a (dir scaled by scale_direction); JOB_OK or the usage
 * error printed. */
static int parse_ray_args(const job *j, int argc, char **argv, void *args)
{
    ray_args *a = args;
    int have_from = 0, have_dir = 0;
    a->max_dist = INFINITY;
    int rc = job_units(j, usage, argc, argv, &a->metres);
    for (int i = 2; i < argc && !rc; i++) {
        const char *value;
        if (option_value(argc, argv, &i, "--from", &value)) {
            rc = job_double_triple(j, usage, "--from", axes, value, a->from);
            have_from = 1;
        } else if (option_value(argc, argv, &i, "--dir", &value)) {
            rc = job_double_triple(j, usage, "--dir", components, value, a->dir);
            have_dir = 1;
        } else if (option_value(argc, argv, &i, "--max-dist", &value)) {
            if (!value || parse_double_value(value, &a->max_dist) || !(a->max_dist >= 0))
                rc = job_usage(j, usage, "--max-dist wants a distance >= 0");
        } else if (!skip_open_option(argc, argv, &i)) {
            rc = job_usage(j, usage, "unknown option %s", argv[i]);
        }
    }
    if (rc)
        return rc;
    if (!have_from || !have_dir)
        return job_usage(j, usage, "--from and --dir are required");
    if (a->dir[0] == 0 && a->dir[1] == 0 && a->dir[2] == 0)
        return job_usage(j, usage, "--dir must not be zero");
    scale_direction(a->dir);
    return JOB_OK;
}

/* A ray given in metres in voxel units; returns voxel units per metre along it.
 * The start goes through the voxel size and origin (the README's rule, as every job
 * converts metres), the direction is divided by the voxel size; a distance d along the
 * unit direction u spans d |u / voxel size| voxel units. The limit is the distance to
 * the end point converted by the same rule, so that a ray ending exactly where a voxel
 * starts reaches that voxel, as a point there would be in it. Local. */
static double ray_to_voxels(const strata_world *w, ray_args *a)
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    double *dir = a->dir, m[3] = {a->from[0], a->from[1], a->from[2]}, end[3], along = 0;
    double length = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    for (int i = 0; i < 3; i++) {
        double unit = dir[i] / length;
        end[i] = m[i] + a->max_dist * unit;
        dir[i] /= cfg.voxel_size[i];
        along += (unit / cfg.voxel_size[i]) * (unit / cfg.voxel_size[i]);
    }
    job_metres_to_voxels(w, m, a->from);
    if (isfinite(a->max_dist)) {
        double v[3], sum = 0;
        job_metres_to_voxels(w, end, v);
        for (int i = 0; i < 3; i++)
            sum += (v[i] - a->from[i]) * (v[i] - a->from[i]);
        a->max_dist = sqrt(sum);
    }
    return sqrt(along);
}

int job_ray(job *j, int argc, char **argv)
{
    ray_args a;
    strata_world *w;
    int rc = job_parse_open(j, usage, argc, argv, parse_ray_args, &a, STRATA_READ, &w);
    if (rc)
        return rc;
    double per_metre = a.metres ? ray_to_voxels(w, &a) : 1;
    strata_ray_hit hit;
    double start = MPI_Wtime();
    strata_status st = strata_ray(w, a.from, a.dir, a.max_dist, &hit);
    double seconds = MPI_Wtime() - start;
    if (st)
        return job_fail_close(j, st, w);
    if (j->rank == 0) {
        if (hit.hit)
            printf("hit %" PRId64 " %" PRId64 " %" PRId64 " %u %.6f\n", hit.voxel[0], hit.voxel[1],
                   hit.voxel[2], hit.material, hit.distance / per_metre);
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
