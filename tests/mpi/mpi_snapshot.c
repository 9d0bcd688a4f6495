/*
 * mpi_snapshot.c: snapshot isolation across commits and a compaction.
 *
 * A world is opened for reading (R) at commit 2. Then, in the same job, a
 * writer handle (W) on the same directory commits twice (every voxel rewritten
 * each time), compacts (which unlinks every segment R opened) and commits once
 * more. R must still read its snapshot, voxel for voxel, to the end: routed
 * reads (strata_query_points) and local reads (strata_read_voxel). A world
 * opened afterwards reads the last commit. Everything is compared with a dense
 * reference computed here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mpi_common.h"
#include "strata.h"

enum { X = 64, Y = 48, Z = 40, N = X * Y * Z };

static uint16_t pattern(int commit, int64_t x, int64_t y, int64_t z)
{
    switch (commit) {
    case 1:
        return (uint16_t)((x + 3 * y + 7 * z) % 50 + 1);
    case 2:
        return (x >= 10 && x < 40 && z < 20) ? 100 : pattern(1, x, y, z);
    case 3:
        return (uint16_t)(200 + (x + y + z) % 3);
    case 4:
        return (uint16_t)(300 + (x * y + z) % 5);
    default:
        return (y < 24) ? 400 : pattern(4, x, y, z);
    }
}

/* Every rank rewrites its share (by linear index) of the world to `commit`'s pattern. */
static strata_status write_commit(strata_world *w, int commit)
{
    size_t first = (size_t)N * mt_rank / mt_size, last = (size_t)N * (mt_rank + 1) / mt_size;
    strata_update *u = malloc((last - first + 1) * sizeof *u);
    if (!u)
        return STRATA_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = first; i < last; i++) {
        int64_t x = (int64_t)(i % X), y = (int64_t)(i / X % Y), z = (int64_t)(i / X / Y);
        uint16_t m = pattern(commit, x, y, z);
        if (commit == 5 && y >= 24)
            continue; /* commit 5 only touches half the world */
        u[n++] = (strata_update){.x = x, .y = y, .z = z, .material = m};
    }
    strata_status st = strata_update_batch(w, u, n, NULL);
    free(u);
    return st ? st : strata_commit(w, NULL);
}

/* Compare every voxel of w with `commit`'s pattern; returns mismatches summed over ranks. */
static long check_all(strata_world *w, int commit, const char *what)
{
    size_t first = (size_t)N * mt_rank / mt_size, last = (size_t)N * (mt_rank + 1) / mt_size;
    size_t n = last - first;
    int64_t(*points)[3] = malloc((n + 1) * sizeof *points);
    uint16_t *got = malloc((n + 1) * sizeof *got);
    long bad = 0;
    MT_CHECK(points && got, "out of memory");
    for (size_t i = 0; points && got && i < n; i++) {
        size_t k = first + i;
        points[i][0] = (int64_t)(k % X), points[i][1] = (int64_t)(k / X % Y),
        points[i][2] = (int64_t)(k / X / Y);
    }
    strata_status st = strata_query_points(w, (const int64_t(*)[3])points, n, got);
    MT_CHECK(st == STRATA_OK, "%s: query_points: %s", what, strata_last_error(w));
    for (size_t i = 0; !st && i < n; i++) {
        uint16_t want = pattern(commit, points[i][0], points[i][1], points[i][2]);
        if (got[i] != want && bad++ < 3)
            fprintf(stderr, "rank %d: %s: (%lld,%lld,%lld) = %u, snapshot has %u\n", mt_rank, what,
                    (long long)points[i][0], (long long)points[i][1], (long long)points[i][2],
                    got[i], want);
    }
    /* Local (non-collective) reads of a sample, including chunks owned elsewhere. */
    for (size_t i = 0; i < n; i += 97) {
        uint16_t v = 0;
        st = strata_read_voxel(w, points[i][0], points[i][1], points[i][2], &v);
        MT_CHECK(st == STRATA_OK, "%s: read_voxel: %s", what, strata_last_error(w));
        if (!st && v != pattern(commit, points[i][0], points[i][1], points[i][2]))
            bad++;
    }
    free(points);
    free(got);
    long total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return total;
}

static int segment_exists(const char *dir, uint64_t epoch)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/seg-%020llu.h5", dir, (unsigned long long)epoch);
    struct stat s;
    return stat(path, &s) == 0;
}

int main(int argc, char **argv)
{
    const char *work = mt_init(&argc, &argv);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/snapshot", work);
    if (mt_rank == 0) {
        mkdir(work, 0777);
        mt_remove_tree(dir);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = X, cfg.dims[1] = Y, cfg.dims[2] = Z;
    cfg.chunk_edge = 16;
    strata_world *w = NULL, *r = NULL, *after = NULL;
    strata_status st = strata_world_create(MPI_COMM_WORLD, dir, &cfg, NULL, 0, &w);
    MT_CHECK(st == STRATA_OK, "create: %s", strata_last_error(NULL));
    if (st)
        return mt_finish("mpi_snapshot");
    MT_CHECK(write_commit(w, 1) == STRATA_OK, "commit 1: %s", strata_last_error(w));
    MT_CHECK(write_commit(w, 2) == STRATA_OK, "commit 2: %s", strata_last_error(w));
    strata_world_close(w);

    /* The reader's snapshot: commit 2 (segments 1 and 2). */
    st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_READ, NULL, &r);
    MT_CHECK(st == STRATA_OK, "open for reading: %s", strata_last_error(NULL));
    st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_WRITE, NULL, &w);
    MT_CHECK(st == STRATA_OK, "open for writing: %s", strata_last_error(NULL));
    if (!r || !w)
        return mt_finish("mpi_snapshot");
    MT_CHECK(check_all(r, 2, "reader before the writer") == 0, "reader differs from commit 2");
    MT_CHECK(write_commit(w, 3) == STRATA_OK, "commit 3: %s", strata_last_error(w));
    MT_CHECK(check_all(r, 2, "reader after commit 3") == 0, "reader saw commit 3");
    MT_CHECK(write_commit(w, 4) == STRATA_OK, "commit 4: %s", strata_last_error(w));
    strata_commit_stats cs;
    MT_CHECK(strata_compact(w, &cs) == STRATA_OK, "compact: %s", strata_last_error(w));
    if (mt_rank == 0)
        for (uint64_t e = 1; e <= 4; e++)
            MT_CHECK(!segment_exists(dir, e), "segment %llu survived the compaction",
                     (unsigned long long)e);
    MT_CHECK(write_commit(w, 5) == STRATA_OK, "commit 5: %s", strata_last_error(w));
    /* The segments R opened are unlinked now; R still reads commit 2 everywhere. */
    MT_CHECK(check_all(r, 2, "reader after compaction") == 0, "reader lost its snapshot");
    MT_CHECK(check_all(w, 5, "writer") == 0, "writer does not read its last commit");
    st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_READ, NULL, &after);
    MT_CHECK(st == STRATA_OK, "reopen: %s", strata_last_error(NULL));
    if (after) {
        MT_CHECK(check_all(after, 5, "new reader") == 0, "a new reader does not see commit 5");
        strata_world_close(after);
    }
    strata_world_close(w);
    MT_CHECK(check_all(r, 2, "reader after the writer closed") == 0, "reader lost its snapshot");
    strata_world_close(r);
    return mt_finish("mpi_snapshot");
}
