/* bench_metadata: the memory every rank holds for a sparse Earth-sized world of
 * 1,000,000 stored chunks (issue 20).
 *
 *   mpirun -n W bench_metadata DIR --create   write the world at W ranks: the Earth at 1 m
 *                                             (40,075,016 x 20,037,508 x 20,000 voxels,
 *                                             chunk 32, 4.9e14 chunk slots) holding 100
 *                                             patches of 100 x 100 x 1 uniform chunks on a
 *                                             10 x 10 grid over the globe, one chunk layer
 *                                             at half height (a surface band's samples)
 *   mpirun -n R bench_metadata DIR [--ranks]  open it at R ranks, use it (routed point
 *                                             queries, the LOD index, reads of other ranks'
 *                                             chunks) and print each rank's footprint:
 *                                             rank 0, then the largest, smallest and mean
 *                                             of the others; --ranks: every rank
 *
 * Footprint, per rank: strata_world_memory (the library's structures by category:
 * rows, segments and fences, cached row blocks, manifest and splitters, chunk caches,
 * routing buffers, the LOD index's own, replicated and cached parts), and for the
 * whole process (HDF5, MPI, zstd included): malloc's bytes in use (mallinfo2: arena
 * plus mmap'ed blocks) and the resident set now and at its peak (VmRSS, VmHWM). The
 * world needs about 5 MB on disk.
 */
#include <inttypes.h>
#include <malloc.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

enum { GRANITE = 7, GRID = 10, PATCH = 100, QUERIES = 20000, LOD_QUERIES = 2000, READS = 2000 };

static const int64_t EARTH[3] = {40075016, 20037508, 20000};
#define EDGE 32

static strata_status granite(const int64_t bounds[6], int edge, uint16_t *voxels, void *ctx,
                             char *message)
{
    (void)bounds, (void)ctx, (void)message;
    size_t n = (size_t)edge * (size_t)edge * (size_t)edge;
    for (size_t i = 0; i < n; i++)
        voxels[i] = GRANITE;
    return STRATA_OK;
}

static int failed(const char *what, strata_status st, const strata_world *w)
{
    fprintf(stderr, "bench_metadata: %s: %s: %s\n", what, strata_strerror(st),
            strata_last_error(w));
    return 1;
}

/* The chunk box of patch p: x0, y0, z0 in chunks. */
static void patch_origin(int p, int64_t c[3])
{
    int64_t n[3];
    for (int i = 0; i < 3; i++)
        n[i] = (EARTH[i] + EDGE - 1) / EDGE;
    c[0] = (p % GRID) * (n[0] / GRID);
    c[1] = (p / GRID) * (n[1] / GRID);
    c[2] = n[2] / 2;
}

/* A voxel inside a random stored chunk (splitmix64 of the index and the rank). */
static void random_point(uint64_t i, int rank, int64_t out[3])
{
    uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ULL + (uint64_t)rank * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    int64_t c[3];
    patch_origin((int)(z % (GRID * GRID)), c);
    out[0] = (c[0] + (int64_t)((z >> 8) % PATCH)) * EDGE + (int64_t)((z >> 20) % EDGE);
    out[1] = (c[1] + (int64_t)((z >> 28) % PATCH)) * EDGE + (int64_t)((z >> 40) % EDGE);
    out[2] = c[2] * EDGE + (int64_t)((z >> 48) % EDGE);
}

static int create(const char *dir, int rank, int size)
{
    strata_config cfg;
    strata_config_init(&cfg);
    for (int i = 0; i < 3; i++)
        cfg.dims[i] = EARTH[i];
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    double t0 = MPI_Wtime();
    strata_status st =
        strata_world_create(MPI_COMM_WORLD, dir, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    for (int p = 0; !st && p < GRID * GRID; p++) {
        int64_t c[3], box[6];
        patch_origin(p, c);
        for (int i = 0; i < 3; i++) {
            box[i] = c[i] * EDGE;
            box[i + 3] = (c[i] + (i < 2 ? PATCH : 1)) * EDGE;
        }
        st = strata_fill(w, box, granite, NULL);
    }
    if (!st)
        st = strata_commit(w, NULL);
    int rc = st ? failed("writing the world", st, w) : 0;
    if (!rc && rank == 0)
        printf("wrote %s: the Earth at 1 m, chunk 32, %d patches of %d x %d x 1 uniform chunks "
               "(%d stored chunks), %d ranks, %.1f s\n",
               dir, GRID * GRID, PATCH, PATCH, GRID * GRID * PATCH * PATCH, size, MPI_Wtime() - t0);
    if (w)
        strata_world_close(w);
    return rc;
}

/* Every figure of one rank's footprint, in the order printed. */
enum {
    F_ROWS,
    F_SEGMENTS,
    F_BLOCKS,
    F_MANIFEST,
    F_CACHE,
    F_ROUTING,
    F_INDEX_OWN,
    F_INDEX_REPL,
    F_INDEX_CACHE,
    F_FIXED,
    F_TOTAL,
    F_HEAP,
    F_RSS,
    F_HWM,
    F_COUNT
};
static const char *const NAMES[F_COUNT] = {"rows",          "segments+fences",
                                           "row blocks",    "manifest+splitters",
                                           "chunk caches",  "routing",
                                           "index own",     "index replicated",
                                           "index cache",   "fixed",
                                           "library total", "heap in use (all)",
                                           "VmRSS",         "VmHWM"};

/* VmRSS or VmHWM of this process in bytes (0 when unreadable). */
static uint64_t status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtoull(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb * 1024;
}

static void footprint(strata_world *w, uint64_t f[F_COUNT])
{
    strata_memory m;
    strata_world_memory(w, &m);
    const uint64_t lib[] = {m.rows,        m.segments, m.row_blocks, m.manifest,
                            m.chunk_cache, m.routing,  m.index_own,  m.index_replicated,
                            m.index_cache, m.fixed,    m.total};
    memcpy(f, lib, sizeof lib);
    struct mallinfo2 mi = mallinfo2();
    f[F_HEAP] = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    f[F_RSS] = status_bytes("VmRSS");
    f[F_HWM] = status_bytes("VmHWM");
}

static int measure(const char *dir, int rank, int size, int every_rank)
{
    strata_world *w = NULL;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    strata_status st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_READ, NULL, &w);
    double open_seconds = MPI_Wtime() - t0;
    int64_t(*points)[3] = malloc(QUERIES * sizeof *points);
    uint16_t *out = malloc(QUERIES * sizeof *out);
    if (!st && (!points || !out))
        st = STRATA_ERR_NOMEM;
    for (uint64_t i = 0; !st && i < QUERIES; i++)
        random_point(i, rank, points[i]);
    /* Routed point queries: the routing buffers. */
    if (!st)
        st = strata_query_points(w, (const int64_t(*)[3])points, QUERIES, out);
    for (size_t i = 0; !st && i < QUERIES; i++)
        if (out[i] != GRANITE) {
            fprintf(stderr, "bench_metadata: rank %d: point %zu reads %u, not granite\n", rank, i,
                    out[i]);
            st = STRATA_ERR_CORRUPT;
        }
    /* The LOD index: built collectively by the first query. */
    if (!st)
        st = strata_query_lod(w, (const int64_t(*)[3])points, LOD_QUERIES, 10, -1.0, out, NULL);
    /* Reads of committed voxels anywhere: row blocks of other ranks and committed copies. */
    for (size_t i = 0; !st && i < READS; i++)
        st = strata_read_voxel(w, points[i][0], points[i][1], points[i][2], &out[i]);
    int rc = st ? failed("opening and using the world", st, w) : 0;
    int any = 0;
    MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    strata_info info;
    if (!any && strata_world_info(w, &info) != STRATA_OK)
        any = 1;
    double slowest = 0.0;
    MPI_Reduce(&open_seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    uint64_t mine[F_COUNT] = {0}, *all = rank == 0 ? calloc((size_t)size * F_COUNT, 8) : NULL;
    if (!any)
        footprint(w, mine);
    MPI_Gather(mine, F_COUNT, MPI_UINT64_T, all, F_COUNT, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (!any && rank == 0 && all) {
        uint64_t stored = info.chunks_uniform + info.chunks_dense;
        double even = 0.0; /* an even share of the rows */
        for (int r = 0; r < size; r++)
            even += (double)all[(size_t)r * F_COUNT + F_ROWS] / size;
        printf("opened at %d ranks in %.3f s (slowest rank); %" PRIu64 " stored chunks, %" PRIu64
               " segments, %" PRIu64 " segment bytes\n",
               size, slowest, stored, info.segments, info.stored_bytes);
        printf("%-20s %14s %14s %14s %14s\n", "bytes", "rank 0", "others max", "others min",
               "others mean");
        for (int f = 0; f < F_COUNT; f++) {
            uint64_t hi = 0, lo = UINT64_MAX;
            double sum = 0.0;
            for (int r = 1; r < size; r++) {
                uint64_t v = all[(size_t)r * F_COUNT + f];
                hi = v > hi ? v : hi;
                lo = v < lo ? v : lo;
                sum += (double)v;
            }
            if (size == 1)
                printf("%-20s %14" PRIu64 "\n", NAMES[f], all[f]);
            else
                printf("%-20s %14" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14.0f\n", NAMES[f], all[f],
                       hi, lo, sum / (size - 1));
        }
        uint64_t most = 0;
        for (int r = 0; r < size; r++)
            most =
                all[(size_t)r * F_COUNT + F_ROWS] > most ? all[(size_t)r * F_COUNT + F_ROWS] : most;
        printf("largest rank's rows: %.2fx an even share (%.0f bytes)\n", most / even, even);
        for (int r = 0; every_rank && r < size; r++) {
            printf("rank %d:", r);
            for (int f = 0; f < F_COUNT; f++)
                printf(" %s=%" PRIu64, NAMES[f], all[(size_t)r * F_COUNT + f]);
            printf("\n");
        }
    }
    free(all);
    free(points);
    free(out);
    if (w)
        strata_world_close(w);
    return any;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int creating = argc == 3 && strcmp(argv[2], "--create") == 0;
    int every_rank = argc == 3 && strcmp(argv[2], "--ranks") == 0;
    if (argc < 2 || (argc > 2 && !creating && !every_rank) || argc > 3) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_metadata DIR [--create | --ranks]\n");
        MPI_Finalize();
        return 2;
    }
    int rc = creating ? create(argv[1], rank, size) : measure(argv[1], rank, size, every_rank);
    MPI_Finalize();
    return rc;
}
