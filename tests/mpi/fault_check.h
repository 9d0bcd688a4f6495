/*
 * fault_check.h: what every injected-failure case checks (mpi_fault.c, mpi_alloc.c).
 *
 * A versioned world: version v writes pattern(v) into every voxel, each rank
 * its share by linear index, so a world holds exactly one version when nothing
 * is half-applied. After a failure, every rank must return the same status and
 * message; a fresh reader must see the previous or the new version, whole, and
 * fsck must find nothing. A hang is caught by the test's alarm (and ctest's
 * timeout): the case being run is printed first.
 */
#ifndef STRATA_FAULT_CHECK_H
#define STRATA_FAULT_CHECK_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi_common.h"
#include "strata.h"

enum { FC_X = 40, FC_Y = 36, FC_Z = 28, FC_EDGE = 16, FC_VOXELS = FC_X * FC_Y * FC_Z };

static char fc_case[256];

static void fc_alarm(int sig)
{
    (void)sig;
    static const char prefix[] = "hang: no progress within the bound in case: ";
    if (write(2, prefix, sizeof prefix - 1) < 0 || write(2, fc_case, strlen(fc_case)) < 0 ||
        write(2, "\n", 1) < 0)
        _exit(3);
    _exit(3);
}

/* Name the case and (re)start its bound: a case that hangs fails the test. */
static inline void fc_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fc_begin(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fc_case, sizeof fc_case, fmt, ap);
    va_end(ap);
    signal(SIGALRM, fc_alarm);
    /* A sanitized build runs several times slower. */
    alarm(getenv("STRATA_SANITIZED") ? 60 : 20);
}

static inline uint16_t fc_pattern(int version, int64_t x, int64_t y, int64_t z)
{
    if (version == 0)
        return 0;
    /* Some chunks uniform, some mixed, so both row kinds are written. */
    if ((x / FC_EDGE + y / FC_EDGE + z / FC_EDGE + version) % 3 == 0)
        return (uint16_t)(version * 7 % 60 + 1);
    return (uint16_t)((x + 3 * y + 5 * z + 11 * version) % 50 + 1);
}

static inline void fc_voxel(size_t i, int64_t p[3])
{
    p[0] = (int64_t)(i % FC_X), p[1] = (int64_t)(i / FC_X % FC_Y),
    p[2] = (int64_t)(i / FC_X / FC_Y);
}

/* Stage and flush this rank's share of `version`. Collective. */
static inline strata_status fc_write(strata_world *w, int version)
{
    size_t first = (size_t)FC_VOXELS * mt_rank / mt_size;
    size_t last = (size_t)FC_VOXELS * (mt_rank + 1) / mt_size;
    strata_update *u = malloc((last - first + 1) * sizeof *u);
    if (!u)
        MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = first; i < last; i++) {
        int64_t p[3];
        fc_voxel(i, p);
        u[i - first] = (strata_update){
            .x = p[0], .y = p[1], .z = p[2], .material = fc_pattern(version, p[0], p[1], p[2])};
    }
    strata_status st = strata_update_batch(w, u, last - first, NULL);
    free(u);
    return st;
}

/* The version w's routed reads see (every voxel agreeing), -1 if mixed or
 * unreadable. Collective. */
static inline int fc_version(strata_world *w, int a, int b)
{
    size_t first = (size_t)FC_VOXELS * mt_rank / mt_size;
    size_t n = (size_t)FC_VOXELS * (mt_rank + 1) / mt_size - first;
    int64_t(*p)[3] = malloc((n + 1) * sizeof *p);
    uint16_t *got = malloc((n + 1) * sizeof *got);
    if (!p || !got)
        MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = 0; i < n; i++)
        fc_voxel(first + i, p[i]);
    strata_status st = strata_query_points(w, (const int64_t(*)[3])p, n, got);
    int is_a = !st, is_b = !st;
    for (size_t i = 0; !st && i < n; i++) {
        is_a &= got[i] == fc_pattern(a, p[i][0], p[i][1], p[i][2]);
        is_b &= got[i] == fc_pattern(b, p[i][0], p[i][1], p[i][2]);
    }
    free(p);
    free(got);
    int mine[2] = {is_a, is_b}, all[2];
    MPI_Allreduce(mine, all, 2, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all[0] ? a : all[1] ? b : -1;
}

/* Every rank returned the same status and message. Collective. */
static inline int fc_agreed(strata_status st, const strata_world *w)
{
    struct {
        int status;
        char message[STRATA_ERROR_MAX];
    } mine, first;
    memset(&mine, 0, sizeof mine);
    mine.status = (int)st;
    if (st)
        snprintf(mine.message, sizeof mine.message, "%s", strata_last_error(w));
    first = mine;
    MPI_Bcast(&first, (int)sizeof first, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = first.status == mine.status && strcmp(first.message, mine.message) == 0, all;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    MT_CHECK(all, "%s: ranks disagree: rank 0 has %d \"%s\", this rank %d \"%s\"", fc_case,
             first.status, first.message, mine.status, mine.message);
    return all;
}

/* fsck's problems, the first few printed with the case. */
static inline void fc_problem(const char *problem, void *ctx)
{
    int *shown = ctx;
    if ((*shown)++ < 4)
        fprintf(stderr, "rank %d: %s: fsck: %s\n", mt_rank, fc_case, problem);
}

/* A fresh reader of path sees version a or b, whole, and fsck is clean.
 * Returns the version seen (-1: neither). Collective. */
static inline int fc_check_world(const char *path, int a, int b)
{
    strata_world *r = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &r);
    MT_CHECK(!st, "%s: reopen: %s", fc_case, strata_last_error(NULL));
    if (st)
        return -1;
    int v = fc_version(r, a, b);
    MT_CHECK(v >= 0, "%s: the world is neither at version %d nor %d", fc_case, a, b);
    uint64_t problems = 1;
    int shown = 0;
    st = strata_fsck(r, fc_problem, &shown, &problems);
    MT_CHECK(!st && problems == 0, "%s: fsck: %s, %llu problems", fc_case,
             st ? strata_last_error(r) : "ok", (unsigned long long)problems);
    strata_world_close(r);
    return v;
}

static inline strata_status fc_create(const char *path, strata_world **w)
{
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = FC_X, cfg.dims[1] = FC_Y, cfg.dims[2] = FC_Z;
    cfg.chunk_edge = FC_EDGE;
    strata_options opt;
    strata_options_init(&opt);
    opt.threads = 1; /* allocations in a fixed order */
    return strata_world_create(MPI_COMM_WORLD, path, &cfg, &opt, STRATA_CREATE_FORCE, w);
}

#endif
