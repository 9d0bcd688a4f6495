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
    "           extract, hdf5, box, checkpoint, chains, volumes (each volume compacted\n"
    "           beside plain zstd-3 64^3 and HDF5 + zstd); the commit group always runs\n"
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

/* The options besides the bench's own fields, which parse_bench_args sets in b. */
typedef struct {
    const char *out, *dir;
    int keep;
} bench_args;

/* The whole command line into b and a; JOB_OK, JOB_HELP (--help, usage printed) or the
 * usage error printed. */
static int parse_bench_args(const job *j, int argc, char **argv, bench *b, bench_args *a)
{
    const char *dims = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, **slot = NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (j->rank == 0)
                printf("%s\n", usage);
            return JOB_HELP;
        } else if (!strcmp(argv[i], "--quick")) {
            b->quick = 1;
        } else if (!strcmp(argv[i], "--keep")) {
            a->keep = 1;
        } else if (option_value(argc, argv, &i, "--out", &v)) {
            slot = &a->out;
        } else if (option_value(argc, argv, &i, "--dir", &v)) {
            slot = &a->dir;
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
    if (b->quick)
        d[0] = 192, d[1] = 192, d[2] = 128;
    if (dims && (parse_int64_list(dims, d, 3) != 0 || d[0] < 64 || d[1] < 64 || d[2] < 64))
        return job_usage(j, usage, "--dims needs X,Y,Z, each at least 64: '%s'", dims);
    memcpy(b->dims, d, sizeof d);
    if (only && snprintf(b->only, sizeof b->only, "%s", only) >= (int)sizeof b->only)
        return job_usage(j, usage, "--only list too long");
    return JOB_OK;
}

/* The scratch directory b->dir: dir, or $TMPDIR/strata-bench-PID (rank 0's PID) made by
 * rank 0. Collective; JOB_OK or JOB_FAILED on every rank. */
static int make_scratch(const job *j, bench *b, const char *dir)
{
    int pid = (int)getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (dir)
        snprintf(b->dir, sizeof b->dir, "%s", dir);
    else
        snprintf(b->dir, sizeof b->dir, "%s/strata-bench-%d",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", pid);
    int rc = JOB_OK;
    if (j->rank == 0 && mkdir(b->dir, 0755) != 0 && access(b->dir, W_OK) != 0) {
        job_error(j, "cannot create scratch directory %s", b->dir);
        rc = JOB_FAILED;
    }
    return job_agree(rc) != JOB_OK ? JOB_FAILED : JOB_OK;
}

int job_bench(job *j, int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.comm = MPI_COMM_WORLD;
    b.rank = j->rank, b.size = j->size, b.verbose = !j->quiet;
    b.chunk_edge = STRATA_CHUNK_EDGE_DEFAULT;
    b.seed = 1;
    bench_args a = {NULL, NULL, 0};
    int rc = parse_bench_args(j, argc, argv, &b, &a);
    if (rc)
        return rc == JOB_HELP ? JOB_OK : rc;
    record_command(&b, argc, argv);
    char default_out[64] = "";
    if (!a.out) {
        if (j->rank == 0)
            new_results_name(default_out, sizeof default_out);
        MPI_Bcast(default_out, sizeof default_out, MPI_CHAR, 0, MPI_COMM_WORLD);
        a.out = default_out;
    }
    if (make_scratch(j, &b, a.dir))
        return JOB_FAILED;
    job_summary(j, "%s terrain %" PRId64 "x%" PRId64 "x%" PRId64 " at %d ranks, scratch %s",
                b.quick ? "quick run:" : "full run:", b.dims[0], b.dims[1], b.dims[2], j->size,
                b.dir);
    strata_status st = bench_run(&b, a.out);
    if (st) {
        job_error(j, "%s: %s", strata_strerror(st), b.error.message);
        rc = JOB_FAILED;
    } else {
        job_summary(j, "%zu rows in %.1f s written to %s", b.row_count, MPI_Wtime() - j->start,
                    a.out);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (!a.keep && j->rank == 0) {
        strata_error err;
        remove_tree(b.dir, &err);
    }
    free(b.rows);
    return rc;
}
