/* job_create.c: `strata create WORLD --dims X,Y,Z ...` */
#include <inttypes.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] =
    "strata create WORLD --dims X,Y,Z [--chunk C] [--voxel-size M|DX,DY,DZ] [--origin X,Y,Z]\n"
    "                    [--generate empty|terrain] [--seed S] [--materials FILE.csv] [--force]";

int job_create(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    const char *path = argv[1], *generate = "empty", *value;
    strata_config cfg;
    strata_config_init(&cfg);
    uint64_t seed = 1;
    world_options world = {&cfg, NULL, 0};
    int have_dims = 0;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--dims", &value)) {
            if (!value || parse_int64_list(value, cfg.dims, 3))
                return job_usage(j, usage, "--dims wants X,Y,Z");
            have_dims = 1;
        } else if (option_value(argc, argv, &i, "--generate", &value)) {
            if (!value || (strcmp(value, "empty") && strcmp(value, "terrain")))
                return job_usage(j, usage, "--generate wants empty or terrain");
            generate = value;
        } else if (option_value(argc, argv, &i, "--seed", &value)) {
            if (!value || parse_uint64(value, &seed))
                return job_usage(j, usage, "--seed wants a non-negative integer");
        } else {
            int used = parse_world_option(j, usage, argc, argv, &i, &world);
            if (used < 0)
                return JOB_USAGE;
            if (!used)
                return job_usage(j, usage, "unknown option %s", argv[i]);
        }
    }
    if (!have_dims)
        return job_usage(j, usage, "--dims is required");
    strata_material *table = NULL;
    if (world.materials) {
        char message[512];
        int failed = read_materials_csv(world.materials, &table, &cfg.material_count, message,
                                        sizeof message);
        if (job_agree(failed)) {
            if (j->rank == 0)
                job_error(j, "%s", failed ? message : "materials file unreadable on another rank");
            free(table);
            return JOB_FAILED;
        }
        cfg.materials = table;
    }
    strata_options opt;
    int options_rc = job_options(j, usage, argc, argv, &opt);
    if (options_rc)
        return options_rc;
    strata_world *w;
    strata_status st = strata_world_create(MPI_COMM_WORLD, path, &cfg, &opt, world.flags, &w);
    free(table);
    if (st)
        return job_fail(j, st, NULL);
    strata_commit_stats cs = {0};
    if (!strcmp(generate, "terrain")) {
        job_summary(j, "generating terrain (seed %" PRIu64 ") on %d ranks", seed, j->size);
        st = strata_generate_terrain(w, seed);
    }
    if (!st)
        st = strata_commit(w, &cs);
    if (st) /* a failed first commit (a full disk) leaves no world */
        return job_fail(j, strata_world_abandon(w, st), NULL);
    st = strata_world_close(w);
    if (st)
        return job_fail(j, st, NULL);
    double seconds = MPI_Wtime() - j->start;
    double voxels = (double)cfg.dims[0] * (double)cfg.dims[1] * (double)cfg.dims[2];
    job_summary(j,
                "created %s (%" PRId64 " x %" PRId64 " x %" PRId64 ", chunk %d, %s) in %.3f s: "
                "%" PRIu64 " chunks stored, %.1f MB raw -> %.1f MB stored, %.3g voxels/s",
                path, cfg.dims[0], cfg.dims[1], cfg.dims[2], cfg.chunk_edge, generate, seconds,
                cs.chunks_written, cs.raw_bytes / 1e6, cs.stored_bytes / 1e6,
                strcmp(generate, "terrain") ? 0.0 : voxels / seconds);
    return JOB_OK;
}
