/* job_create.c: `strata create WORLD --dims X,Y,Z ...` */
#include <inttypes.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] =
    "strata create WORLD --dims X,Y,Z [--chunk C] [--voxel-size M|DX,DY,DZ] [--origin X,Y,Z]\n"
    "                    [--generate empty|terrain] [--seed S] [--materials FILE.csv] [--force]";

/* What the command line asks for. */
typedef struct {
    strata_config cfg;
    world_options world; /* world.cfg points at cfg */
    const char *generate;
    uint64_t seed;
} create_args;

/* The whole command line into a; JOB_OK or the usage error printed. */
static int parse_create_args(const job *j, int argc, char **argv, void *args)
{
    create_args *a = args;
    strata_config_init(&a->cfg);
    a->world = (world_options){&a->cfg, NULL, 0};
    a->generate = "empty";
    a->seed = 1;
    int have_dims = 0, rc = JOB_OK;
    for (int i = 2; i < argc && !rc; i++) {
        const char *value;
        if (option_value(argc, argv, &i, "--dims", &value)) {
            if (!value || parse_int64_list(value, a->cfg.dims, 3))
                rc = job_usage(j, usage, "--dims wants X,Y,Z");
            have_dims = 1;
        } else if (option_value(argc, argv, &i, "--generate", &value)) {
            if (!value || (strcmp(value, "empty") && strcmp(value, "terrain")))
                rc = job_usage(j, usage, "--generate wants empty or terrain");
            a->generate = value;
        } else if (option_value(argc, argv, &i, "--seed", &value)) {
            if (!value || parse_uint64(value, &a->seed))
                rc = job_usage(j, usage, "--seed wants a non-negative integer");
        } else {
            rc = parse_world_option(j, usage, argc, argv, &i, &a->world);
        }
    }
    if (!rc && !have_dims)
        rc = job_usage(j, usage, "--dims is required");
    return rc;
}

/* Create the world, generate its terrain if asked, and commit; a failed first commit
 * (a full disk) leaves no world. Collective. */
static strata_status make_world(const job *j, const char *path, const create_args *a,
                                const strata_options *opt, strata_commit_stats *cs)
{
    strata_world *w;
    strata_status st = strata_world_create(MPI_COMM_WORLD, path, &a->cfg, opt, a->world.flags, &w);
    if (st)
        return st;
    if (!strcmp(a->generate, "terrain")) {
        job_summary(j, "generating terrain (seed %" PRIu64 ") on %d ranks", a->seed, j->size);
        st = strata_generate_terrain(w, a->seed);
    }
    if (!st)
        st = strata_commit(w, cs);
    return st ? strata_world_abandon(w, st) : strata_world_close(w);
}

int job_create(job *j, int argc, char **argv)
{
    create_args a;
    strata_options opt;
    strata_material *table = NULL;
    int rc = job_parse(j, usage, argc, argv, parse_create_args, &a, &opt);
    const char *path = argv[1];
    if (!rc)
        rc = job_read_materials(j, a.world.materials, &a.cfg, &table);
    if (rc)
        return rc;
    strata_commit_stats cs = {0};
    strata_status st = make_world(j, path, &a, &opt, &cs);
    free(table);
    if (st)
        return job_fail(j, st, NULL);
    double seconds = MPI_Wtime() - j->start;
    const int64_t *d = a.cfg.dims;
    double voxels = (double)d[0] * (double)d[1] * (double)d[2];
    int terrain = !strcmp(a.generate, "terrain");
    job_summary(j,
                "created %s (%" PRId64 " x %" PRId64 " x %" PRId64 ", chunk %d, %s) in %.3f s: "
                "%" PRIu64 " chunks stored, %.1f MB raw -> %.1f MB stored, %.3g voxels/s",
                path, d[0], d[1], d[2], a.cfg.chunk_edge, a.generate, seconds, cs.chunks_written,
                cs.raw_bytes / 1e6, cs.stored_bytes / 1e6, terrain ? voxels / seconds : 0.0);
    return JOB_OK;
}
