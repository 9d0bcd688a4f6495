/* job_bench.c: `strata bench [--quick] [--out FILE] [--dir DIR] [--dims X,Y,Z] [--keep]`.
 *
 * Runs the benchmark suite of bench/ (bench_suite.h) at this job's rank count
 * and writes its rows as JSON (to --out, else to a new file). bench/run.sh runs it at 1, 2 and 4
 * ranks beside the OpenVDB peer and makes docs/benchmarks.md's tables and plots.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_suite.h"
#include "fsutil.h"
#include "jobs.h"

static const char usage[] =
    "strata bench [--quick] [--out FILE.json] [--dir SCRATCH] [--dims X,Y,Z] [--only GROUPS]\n"
    "             [--keep] [--quiet]\n"
    "  --quick  small sizes (192 x 192 x 128 terrain, 1e5 updates): well under a minute\n"
    "  --out    results file (default: a new file strata-bench-YYYYMMDD-HHMMSS.json in the\n"
    "           working directory; an existing file is never replaced unless named here)\n"
    "  --dir    scratch directory for worlds and HDF5 files (default /tmp/strata-bench-PID);\n"
    "           removed at the end unless --keep\n"
    "  --dims   terrain size (default 512,512,256; --quick 192,192,128)\n"
    "  --only   run only these groups (comma-separated): storage, updates, reads, index,\n"
    "           extract, hdf5, box, checkpoint, chains; the commit group always runs\n"
    "           (it writes the terrain world)";

/* The default results file: a name no file has yet in the working directory, from
 * the UTC time (with -2, -3... after it if two runs start in the same second), so
 * that a run without --out never replaces a recorded bench/results.json. Rank 0
 * only: it alone writes the results. */
static void new_results_name(char *name, size_t size)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
    snprintf(name, size, "strata-bench-%s.json", stamp);
    for (int n = 2; access(name, F_OK) == 0; n++)
        snprintf(name, size, "strata-bench-%s-%d.json", stamp, n);
}

static void record_command(bench *b, int argc, char **argv)
{
    size_t at = (size_t)snprintf(b->command, sizeof b->command, "mpirun -np %d strata", b->size);
    for (int i = 0; i < argc && at < sizeof b->command; i++)
        at += (size_t)snprintf(b->command + at, sizeof b->command - at, " %s", argv[i]);
}

int job_bench(job *j, int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.comm = MPI_COMM_WORLD;
    b.rank = j->rank, b.size = j->size, b.verbose = !j->quiet;
    b.chunk_edge = STRATA_CHUNK_EDGE_DEFAULT;
    b.seed = 1;
    const char *out = NULL, *dir = NULL, *dims = NULL, *only = NULL;
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, **slot = NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (j->rank == 0)
                printf("%s\n", usage);
            return JOB_OK;
        } else if (!strcmp(argv[i], "--quick")) {
            b.quick = 1;
        } else if (!strcmp(argv[i], "--keep")) {
            keep = 1;
        } else if (option_value(argc, argv, &i, "--out", &v)) {
            slot = &out;
        } else if (option_value(argc, argv, &i, "--dir", &v)) {
            slot = &dir;
        } else if (option_value(argc, argv, &i, "--dims", &v)) {
            slot = &dims;
        } else if (option_value(argc, argv, &i, "--only", &v)) {
            slot = &only;
        } else {
            return job_usage(j, usage, "unknown option '%s'", argv[i]);
        }
        if (slot && !v)
            return job_usage(j, usage, "%s needs a value", argv[i]);
        if (slot)
            *slot = v;
    }
    int64_t d[3] = {512, 512, 256};
    if (b.quick)
        d[0] = 192, d[1] = 192, d[2] = 128;
    if (dims && (parse_int64_list(dims, d, 3) != 0 || d[0] < 64 || d[1] < 64 || d[2] < 64))
        return job_usage(j, usage, "--dims needs X,Y,Z, each at least 64: '%s'", dims);
    memcpy(b.dims, d, sizeof d);
    if (only && snprintf(b.only, sizeof b.only, "%s", only) >= (int)sizeof b.only)
        return job_usage(j, usage, "--only list too long");
    record_command(&b, argc, argv);
    char default_out[64] = "";
    if (!out) {
        if (j->rank == 0)
            new_results_name(default_out, sizeof default_out);
        MPI_Bcast(default_out, sizeof default_out, MPI_CHAR, 0, MPI_COMM_WORLD);
        out = default_out;
    }
    int pid = (int)getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (dir)
        snprintf(b.dir, sizeof b.dir, "%s", dir);
    else
        snprintf(b.dir, sizeof b.dir, "%s/strata-bench-%d",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", pid);
    int rc = JOB_OK;
    if (j->rank == 0 && mkdir(b.dir, 0755) != 0 && access(b.dir, W_OK) != 0) {
        job_error(j, "cannot create scratch directory %s", b.dir);
        rc = JOB_FAILED;
    }
    if (job_agree(rc) != JOB_OK)
        return JOB_FAILED;
    job_summary(j, "%s terrain %" PRId64 "x%" PRId64 "x%" PRId64 " at %d ranks, scratch %s",
                b.quick ? "quick run:" : "full run:", d[0], d[1], d[2], j->size, b.dir);
    strata_status st = bench_run(&b, out);
    if (st) {
        job_error(j, "%s: %s", strata_strerror(st), b.error.message);
        rc = JOB_FAILED;
    } else {
        job_summary(j, "%zu rows in %.1f s written to %s", b.row_count, MPI_Wtime() - j->start,
                    out);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (!keep && j->rank == 0) {
        strata_error err;
        remove_tree(b.dir, &err);
    }
    free(b.rows);
    return rc;
}
