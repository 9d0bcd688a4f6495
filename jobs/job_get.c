/* job_get.c: `strata get WORLD X Y Z` and `strata get WORLD --points FILE`. */
#include <ctype.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata get WORLD X Y Z | strata get WORLD --points FILE   [--lod L "
                            "[--threshold T]] [--units m]";

/* Rank 0 prints every rank's answers in rank order, which is file order. Rank 0's
 * buffers are agreed on before each gather (a failed allocation fails every rank). */
static int print_in_order(const job *j, const uint16_t *values, size_t n)
{
    int count = (int)n;
    int *counts = j->rank == 0 ? malloc((size_t)j->size * sizeof *counts) : NULL;
    int *displs = j->rank == 0 ? malloc((size_t)j->size * sizeof *displs) : NULL;
    uint16_t *all = NULL;
    int rc = job_agree_message(j, j->rank == 0 && (!counts || !displs),
                               "rank 0: out of memory for the answer counts");
    if (!rc)
        MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    size_t total = 0;
    if (!rc && j->rank == 0) {
        for (int r = 0; r < j->size; r++)
            displs[r] = (int)total, total += (size_t)counts[r];
        all = malloc((total ? total : 1) * sizeof *all);
    }
    if (!rc)
        rc = job_agree_message(j, j->rank == 0 && !all, "rank 0: out of memory for the answers");
    if (!rc)
        MPI_Gatherv(values, count, MPI_UINT16_T, all, counts, displs, MPI_UINT16_T, 0,
                    MPI_COMM_WORLD);
    if (!rc && j->rank == 0)
        for (size_t i = 0; i < total; i++)
            printf("%u\n", all[i]);
    fflush(stdout);
    free(all);
    free(counts);
    free(displs);
    return rc;
}

/* A command-line argument that is an option, not a coordinate (-5 and -.5 are coordinates). */
static int looks_like_option(const char *arg)
{
    return arg[0] == '-' && !(isdigit((unsigned char)arg[1]) || arg[1] == '.');
}

/* X Y Z: voxel coordinates (integers), or with --units m metres (any finite number).
 * The usage error names the axis and what was given. */
static int parse_point(const job *j, char *const text[3], int metres, int64_t point[3],
                       double metric[3])
{
    for (int i = 0; i < 3; i++) {
        const char *problem =
            metres ? double_problem(text[i], &metric[i]) : int64_problem(text[i], &point[i]);
        if (problem)
            return job_usage(j, usage, "%c coordinate '%s' %s%s", "xyz"[i], text[i], problem,
                             !metres && !strcmp(problem, "is not an integer")
                                 ? " (voxel coordinates are integers; --units m takes metres)"
                                 : "");
    }
    return JOB_OK;
}

/* What the command line asks for. */
typedef struct {
    const char *points_file; /* --points FILE, or NULL: the point X Y Z */
    int64_t point[3];        /* X Y Z in voxels (once converted, when given in metres) */
    double metric[3];        /* X Y Z in metres (with metres) */
    int metres;              /* --units m */
    int64_t lod;             /* --lod L, or -1 */
    double threshold;        /* --threshold T, or -1 */
} get_args;

/* The whole command line into a; JOB_OK or the usage error printed. */
static int parse_get_args(const job *j, int argc, char **argv, void *args)
{
    get_args *a = args;
    char *coordinates[3];
    int given = 0;
    *a = (get_args){.lod = -1, .threshold = -1};
    int rc = job_units(j, usage, argc, argv, &a->metres);
    for (int i = 2; i < argc && !rc; i++) {
        const char *value;
        int used = parse_lod_option(j, usage, argc, argv, &i, &a->lod, &a->threshold);
        if (used < 0)
            rc = JOB_USAGE;
        else if (used || skip_open_option(argc, argv, &i))
            continue;
        else if (option_value(argc, argv, &i, "--points", &value))
            rc = (a->points_file = value) ? JOB_OK : job_usage(j, usage, "--points wants FILE");
        else if (looks_like_option(argv[i]) || given == 3)
            rc = job_usage(j, usage, "unexpected argument %s", argv[i]);
        else
            coordinates[given++] = argv[i];
    }
    if (rc)
        return rc;
    if (given > 0 && given < 3)
        return job_usage(j, usage, "expected X Y Z, got %d coordinate%s (%s%s%s)", given,
                         given == 1 ? "" : "s", coordinates[0], given == 2 ? " " : "",
                         given == 2 ? coordinates[1] : "");
    if ((given == 3) == !!a->points_file)
        return job_usage(j, usage, "give either X Y Z or --points FILE");
    if (given == 3 && (rc = parse_point(j, coordinates, a->metres, a->point, a->metric)))
        return rc;
    if (a->threshold >= 0 && a->lod < 0)
        return job_usage(j, usage, "--threshold needs --lod");
    return JOB_OK;
}

/* This rank's points, every one checked inside the world: the point X Y Z on rank 0,
 * or the rank's slice of the points file. Collective. */
static int load_points(const job *j, strata_world *w, get_args *a, int64_t (**points)[3], size_t *n)
{
    int rc = JOB_OK;
    if (a->points_file) {
        strata_config cfg;
        strata_world_config(w, &cfg);
        /* Voxel coordinates are checked against the world while parsed (naming
         * the line); positions in metres once converted. */
        rc = a->metres ? load_position_slice(j, a->points_file, w, points, n)
                       : load_point_slice(j, a->points_file, cfg.dims, points, n);
        if (rc || !a->metres)
            return rc;
    } else {
        *points = NULL;
        *n = 0;
        if (a->metres && (rc = job_metres_point(j, w, a->metric, a->point)))
            return rc;
        *points = malloc(sizeof **points);
        char message[64];
        snprintf(message, sizeof message, "rank %d: out of memory for the point", j->rank);
        if ((rc = job_agree_message(j, !*points, message)))
            return rc;
        if (j->rank == 0) {
            memcpy((*points)[0], a->point, sizeof a->point);
            *n = 1;
        }
    }
    const int64_t(*checked)[3] = (const int64_t(*)[3])(*points);
    return check_points_inside(j, w, a->points_file, checked, *n);
}

/* The material (or with --lod, the block mode) at each point; rank 0 prints them. */
static int query_points(const job *j, strata_world *w, const get_args *a,
                        const int64_t (*points)[3], size_t n)
{
    uint16_t *values = malloc((n ? n : 1) * sizeof *values);
    char message[96];
    snprintf(message, sizeof message, "rank %d: out of memory for %zu answers", j->rank, n);
    int rc = job_agree_message(j, !values, message);
    if (rc) {
        free(values);
        return rc;
    }
    strata_status st = a->lod >= 0
                           ? strata_query_lod(w, points, n, (int)a->lod, a->threshold, values, NULL)
                           : strata_query_points(w, points, n, values);
    rc = st ? job_fail(j, st, w) : print_in_order(j, values, n);
    free(values);
    return rc;
}

int job_get(job *j, int argc, char **argv)
{
    strata_world *w;
    get_args a;
    int rc = job_parse_open(j, usage, argc, argv, parse_get_args, &a, STRATA_READ, &w);
    if (rc)
        return rc;
    int64_t(*points)[3];
    size_t n;
    rc = load_points(j, w, &a, &points, &n);
    if (!rc)
        rc = query_points(j, w, &a, (const int64_t(*)[3])points, n);
    uint64_t total = n, all = 0;
    MPI_Reduce(&total, &all, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    free(points);
    strata_world_close(w);
    if (!rc)
        job_summary(j, "read %" PRIu64 " points in %.3f s", all, MPI_Wtime() - j->start);
    return rc;
}
