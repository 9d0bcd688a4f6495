/* bench_scaling: the per-rank costs docs/scaling.md models (issue 20), at the
 * job's rank count.
 *
 *   mpirun -n P bench_scaling DIR [SEGMENTS]
 *
 * 1. Routing's fixed costs: MPI_Alltoall of one count per pair (what
 *    route_records exchanges before the records), and MPI_Alltoallv where each
 *    rank sends 1 KB to its two neighbours and nothing to the others (a
 *    simulation's halo: most pairs exchange nothing), mean of 200 calls each.
 * 2. Commit: a world of 256^3 voxels (chunk 32, 512 chunks, uniform) at DIR;
 *    SEGMENTS (default 16) commits, each changing one voxel in a different
 *    chunk of every rank (each a new live segment): mean seconds per commit,
 *    slowest rank.
 * 3. Open: the world with SEGMENTS live segments reopened (every rank opens
 *    every segment): seconds, slowest rank, best of 3; and with one segment
 *    (after strata_compact) for the difference per segment.
 * 4. The index: the first LOD query after opening builds the octree (chunk
 *    histograms, local nodes, the merge of replicated nodes on rank 0 and its
 *    broadcast): seconds, slowest rank.
 * Timings are noisy on an oversubscribed machine: say so beside them.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

enum { CALLS = 200, HALO = 1024, SIDE = 256, EDGE = 32 };

static double slowest(double t)
{
    double max = 0.0;
    MPI_Allreduce(&t, &max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return max;
}

static strata_status stone(const int64_t bounds[6], int edge, uint16_t *voxels, void *ctx,
                           char *message)
{
    (void)bounds, (void)ctx, (void)message;
    for (size_t i = 0; i < (size_t)edge * edge * edge; i++)
        voxels[i] = 3;
    return STRATA_OK;
}

static void routing(int rank, int size)
{
    int *counts = calloc((size_t)size * 4, sizeof *counts);
    int *recv = counts + size, *sdispl = counts + 2 * size, *rdispl = counts + 3 * size;
    char *sbuf = calloc(2 * HALO, 1), *rbuf = calloc(2 * HALO, 1);
    for (int i = 0; i < size; i++)
        counts[i] = i;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int c = 0; c < CALLS; c++)
        MPI_Alltoall(counts, 1, MPI_INT, recv, 1, MPI_INT, MPI_COMM_WORLD);
    double all = slowest(MPI_Wtime() - t0) / CALLS;
    memset(counts, 0, (size_t)size * 4 * sizeof *counts);
    int left = (rank + size - 1) % size, right = (rank + 1) % size;
    counts[left] += HALO, counts[right] += HALO;
    recv[left] += HALO, recv[right] += HALO;
    for (int i = 1; i < size; i++) {
        sdispl[i] = sdispl[i - 1] + counts[i - 1];
        rdispl[i] = rdispl[i - 1] + recv[i - 1];
    }
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    for (int c = 0; size > 1 && c < CALLS; c++)
        MPI_Alltoallv(sbuf, counts, sdispl, MPI_CHAR, rbuf, recv, rdispl, MPI_CHAR, MPI_COMM_WORLD);
    double allv = slowest(MPI_Wtime() - t0) / CALLS;
    if (rank == 0)
        printf("routing at %d ranks: MPI_Alltoall of counts %.1f us, MPI_Alltoallv to 2 "
               "neighbours %.1f us (mean of %d, slowest rank)\n",
               size, all * 1e6, allv * 1e6, CALLS);
    free(counts);
    free(sbuf);
    free(rbuf);
}

static int fail(const char *what, strata_status st, const strata_world *w)
{
    fprintf(stderr, "bench_scaling: %s: %s: %s\n", what, strata_strerror(st), strata_last_error(w));
    return 1;
}

/* Open DIR, time it, and time the first LOD query (the octree build). */
static strata_status open_and_index(const char *dir, int rank, double *open_s, double *index_s)
{
    strata_world *w = NULL;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    strata_status st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_READ, NULL, &w);
    *open_s = slowest(MPI_Wtime() - t0);
    if (st) {
        fail("open", st, NULL);
        return st;
    }
    int64_t point[1][3] = {{rank % SIDE, 7, 9}};
    uint16_t out;
    t0 = MPI_Wtime();
    st = strata_query_lod(w, (const int64_t(*)[3])point, 1, 8, -1.0, &out, NULL);
    *index_s = slowest(MPI_Wtime() - t0);
    if (st)
        fail("LOD query", st, w);
    strata_world_close(w);
    return st;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_scaling DIR [SEGMENTS]\n");
        MPI_Finalize();
        return 2;
    }
    const char *dir = argv[1];
    int segments = argc > 2 ? atoi(argv[2]) : 16;
    routing(rank, size);
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = cfg.dims[1] = cfg.dims[2] = SIDE;
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    strata_status st =
        strata_world_create(MPI_COMM_WORLD, dir, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    if (!st)
        st = strata_fill(w, NULL, stone, NULL);
    if (!st)
        st = strata_commit(w, NULL);
    uint64_t first = 0, last = 0;
    if (!st)
        st = strata_key_range(w, &first, &last);
    /* Each commit changes one voxel of one own chunk, a different one each time. */
    double commits = 0.0;
    for (int c = 0; !st && c < segments - 1; c++) {
        int64_t chunk =
            (int64_t)(rank * 97 + c * 13) % ((SIDE / EDGE) * (SIDE / EDGE) * (SIDE / EDGE));
        int64_t x = chunk % (SIDE / EDGE) * EDGE, y = chunk / (SIDE / EDGE) % (SIDE / EDGE) * EDGE,
                z = chunk / ((SIDE / EDGE) * (SIDE / EDGE)) * EDGE;
        st = strata_stage(w, x + c % EDGE, y + 1, z + 2, (uint16_t)(4 + c % 5));
        if (!st)
            st = strata_flush(w, NULL);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (!st)
            st = strata_commit(w, NULL);
        commits += slowest(MPI_Wtime() - t0);
    }
    strata_info info;
    if (!st)
        st = strata_world_info(w, &info);
    int rc = st ? fail("writing the world", st, w) : 0;
    if (w)
        strata_world_close(w);
    (void)first, (void)last;
    double open_s = 1e9, index_s = 1e9;
    for (int i = 0; !rc && i < 3; i++) {
        double o, x;
        rc = open_and_index(dir, rank, &o, &x) != STRATA_OK;
        open_s = o < open_s ? o : open_s;
        index_s = x < index_s ? x : index_s;
    }
    if (!rc && rank == 0)
        printf("commit at %d ranks: %.4f s per commit of one voxel per rank (mean of %d, slowest "
               "rank); open with %llu live segments: %.4f s (best of 3); first LOD query (index "
               "build): %.4f s\n",
               size, segments > 1 ? commits / (segments - 1) : 0.0, segments - 1,
               (unsigned long long)info.segments, open_s, index_s);
    /* One segment: compact, then open again. */
    if (!rc) {
        st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_WRITE, NULL, &w);
        if (!st)
            st = strata_compact(w, NULL);
        if (w)
            strata_world_close(w);
        rc = st ? fail("compacting", st, NULL) : 0;
    }
    double open1 = 1e9, index1 = 1e9;
    for (int i = 0; !rc && i < 3; i++) {
        double o, x;
        rc = open_and_index(dir, rank, &o, &x) != STRATA_OK;
        open1 = o < open1 ? o : open1;
        index1 = x < index1 ? x : index1;
    }
    if (!rc && rank == 0)
        printf("open at %d ranks with 1 segment: %.4f s (best of 3): %.2f ms per extra segment "
               "per open\n",
               size, open1, (open_s - open1) * 1e3 / (info.segments > 1 ? info.segments - 1 : 1));
    MPI_Finalize();
    return rc;
}
