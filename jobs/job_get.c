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

/* Rank 0 prints every rank's answers in rank order, which is file order. */
static int print_in_order(const job *j, const uint16_t *values, size_t n)
{
    int count = (int)n;
    int *counts = j->rank == 0 ? malloc((size_t)j->size * sizeof *counts) : NULL;
    int *displs = j->rank == 0 ? malloc((size_t)j->size * sizeof *displs) : NULL;
    MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    uint16_t *all = NULL;
    size_t total = 0;
    if (j->rank == 0) {
        for (int r = 0; r < j->size; r++)
            displs[r] = (int)total, total += (size_t)counts[r];
        all = malloc((total ? total : 1) * sizeof *all);
    }
    MPI_Gatherv(values, count, MPI_UINT16_T, all, counts, displs, MPI_UINT16_T, 0, MPI_COMM_WORLD);
    if (j->rank == 0)
        for (size_t i = 0; i < total; i++)
            printf("%u\n", all[i]);
    fflush(stdout);
    free(all);
    free(counts);
    free(displs);
    return JOB_OK;
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

int job_get(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    const char *path = argv[1], *points_file = NULL, *value;
    char *coordinates[3];
    int64_t point[3];
    double metric[3];
    int given = 0, metres;
    int urc = job_units(j, usage, argc, argv, &metres);
    if (urc)
        return urc;
    int64_t lod = -1;
    double threshold = -1;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--lod", &value)) {
            if (!value || parse_int64(value, &lod) || lod < 0 || lod > 62)
                return job_usage(j, usage, "--lod wants a level in [0, 62]");
        } else if (option_value(argc, argv, &i, "--threshold", &value)) {
            if (!value || parse_double_value(value, &threshold) ||
                !(threshold >= 0 && threshold <= 1))
                return job_usage(j, usage, "--threshold wants a number in [0, 1]");
        } else if (!strcmp(argv[i], "--cache-mb")) {
            i++;
        } else if (option_value(argc, argv, &i, "--points", &value)) {
            if (!value)
                return job_usage(j, usage, "--points wants FILE");
            points_file = value;
        } else if (option_value(argc, argv, &i, "--units", &value)) {
        } else if (looks_like_option(argv[i]) || given == 3) {
            return job_usage(j, usage, "unexpected argument %s", argv[i]);
        } else {
            coordinates[given++] = argv[i];
        }
    }
    if (given > 0 && given < 3)
        return job_usage(j, usage, "expected X Y Z, got %d coordinate%s (%s%s%s)", given,
                         given == 1 ? "" : "s", coordinates[0], given == 2 ? " " : "",
                         given == 2 ? coordinates[1] : "");
    int have_point = given == 3;
    if (have_point == !!points_file)
        return job_usage(j, usage, "give either X Y Z or --points FILE");
    if (have_point && (urc = parse_point(j, coordinates, metres, point, metric)))
        return urc;
    if (threshold >= 0 && lod < 0)
        return job_usage(j, usage, "--threshold needs --lod");
    strata_world *w;
    int open_rc = job_open(j, usage, argc, argv, path, STRATA_READ, &w);
    if (open_rc)
        return open_rc;
    strata_status st = STRATA_OK;
    int64_t(*points)[3] = NULL;
    size_t n = 0;
    int rc = have_point && metres ? job_metres_point(j, w, metric, point) : JOB_OK;
    if (rc) {
        strata_world_close(w);
        return rc;
    }
    if (have_point) {
        points = malloc(sizeof *points);
        if (j->rank == 0 && points) {
            memcpy(points[0], point, sizeof point);
            n = 1;
        }
        rc = check_points_inside(j, w, NULL, (const int64_t(*)[3])points, n);
    } else {
        strata_config cfg;
        strata_world_config(w, &cfg);
        /* Voxel coordinates are checked against the world while parsed (naming
         * the line); positions in metres once converted. */
        rc = metres ? load_position_slice(j, points_file, w, &points, &n)
                    : load_point_slice(j, points_file, cfg.dims, &points, &n);
        if (!rc && metres)
            rc = check_points_inside(j, w, points_file, (const int64_t(*)[3])points, n);
    }
    uint16_t *values = NULL;
    if (!rc) {
        values = malloc((n ? n : 1) * sizeof *values);
        if (!values)
            st = STRATA_ERR_NOMEM;
        else if (lod >= 0)
            st = strata_query_lod(w, (const int64_t(*)[3])points, n, (int)lod, threshold, values,
                                  NULL);
        else
            st = strata_query_points(w, (const int64_t(*)[3])points, n, values);
        rc = st ? job_fail(j, st, w) : print_in_order(j, values, n);
    }
    uint64_t total = n, all = 0;
    MPI_Reduce(&total, &all, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    free(points);
    free(values);
    strata_world_close(w);
    if (!rc)
        job_summary(j, "read %" PRIu64 " points in %.3f s", all, MPI_Wtime() - j->start);
    return rc;
}
