/* main.c: `strata SUBCOMMAND ...`: MPI set-up and dispatch to one job per file. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"
#include "mpi_start.h"

static const struct {
    const char *name;
    job_main run;
    const char *summary;
} jobs[] = {
    {"create", job_create, "create a world (empty or generated terrain)"},
    {"import", job_import, "create a world from a DEM (netCDF) or a raw label volume"},
    {"update", job_update, "apply an update file (text or binary) and commit"},
    {"get", job_get, "read voxels at points"},
    {"info", job_info, "describe a world"},
    {"fsck", job_fsck, "verify every checksum, the manifest and the segments"},
    {"compact", job_compact, "merge all segments into one, atomically"},
    {"rebalance", job_rebalance, "recompute splitters by stored bytes or chunk count"},
    {"region", job_region, "homogeneous regions of a box at a LOD"},
    {"ray", job_ray, "first non-air voxel along a ray"},
    {"render", job_render, "a perspective picture of the world (PNG), shaded, with shadows"},
    {"stats", job_stats, "voxels per material in a box"},
    {"reindex", job_reindex, "rebuild the LOD index (stale chunks, or --full)"},
    {"extract", job_extract, "write a box (full resolution or a LOD) to HDF5 + XDMF + PNG"},
    {"simulate", job_simulate, "run a geological process (erosion, deposition, volcanic)"},
    {"bench", job_bench, "run the benchmark suite (bench/, docs/benchmarks.md)"},
};

static void usage(void)
{
    fprintf(stderr,
            "usage: strata COMMAND WORLD [options]   (run under mpirun with any rank count)\n\n");
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++)
        fprintf(stderr, "  %-10s %s\n", jobs[i].name, jobs[i].summary);
    fprintf(stderr, "\n`strata COMMAND --help` describes one command; see README.md and docs/.\n");
}

int main(int argc, char **argv)
{
    int provided;
    int init = mpi_start(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    if (init != MPI_SUCCESS) {
        fprintf(stderr, "strata: MPI_Init failed\n");
        return 1;
    }
    job j = {.name = argc > 1 ? argv[1] : "strata", .start = MPI_Wtime()};
    MPI_Comm_rank(MPI_COMM_WORLD, &j.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &j.size);
    /* MPI errors come back as codes, so the library can agree on them. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rc = JOB_USAGE;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (j.rank == 0)
            usage();
        rc = argc < 2 ? JOB_USAGE : JOB_OK;
    } else {
        size_t i = 0;
        while (i < sizeof jobs / sizeof jobs[0] && strcmp(jobs[i].name, argv[1]))
            i++;
        if (i == sizeof jobs / sizeof jobs[0]) {
            if (j.rank == 0) {
                fprintf(stderr, "strata: unknown command '%s'\n", argv[1]);
                usage();
            }
        } else {
            j.summary = jobs[i].summary;
            /* --quiet (-q) is every job's: it is taken out of argv here, once. */
            int kept = 2;
            for (int a = 2; a < argc; a++) {
                if (!strcmp(argv[a], "--quiet") || !strcmp(argv[a], "-q"))
                    j.quiet = 1;
                else
                    argv[kept++] = argv[a];
            }
            argc = kept;
            for (int a = 2; a < argc; a++) {
                /* --help anywhere: the job stops at its first usage check (bench has its own) */
                if ((!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) &&
                    strcmp(argv[1], "bench"))
                    j.help = 1;
            }
            strata_install_signal_handlers();
            rc = jobs[i].run(&j, j.help ? 1 : argc - 1, argv + 1);
            if (rc == JOB_HELP)
                rc = JOB_OK;
        }
    }
    /* Every rank exits with the worst code, so mpirun reports the failure. */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
