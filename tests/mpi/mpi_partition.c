/* mpi_partition.c: rebalancing by weight: contiguous, balanced, agreed splitters;
 * a sparse world written at one rank count and opened at another gives every
 * rank about an even share of its stored chunks; the MPI-IO hints of
 * STRATA_MPIIO_HINTS reach the segment write, a malformed list fails the
 * commit on every rank and changes nothing; the row blocks cached for reads of
 * other ranks' chunks stay within a bound whatever the live segments (issue 20). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "morton.h"
#include "mpi_common.h"
#include "partition.h"
#include "store.h"
#include "strata.h"

static const uint64_t box[3] = {41, 29, 17};

typedef enum { WEIGHT_RANDOM, WEIGHT_ZERO, WEIGHT_RISING, WEIGHT_ONE_HEAVY } weight_kind;

/* Weight of a chunk, a function of its key so every rank can recompute all of them. */
static double weight_of(uint64_t key, weight_kind kind)
{
    uint64_t state = key * 2654435761u + 12345;
    uint64_t r = mt_random(&state);
    switch (kind) {
    case WEIGHT_RANDOM:
        return r % 50 == 0 ? 400.0 : (double)(r % 1000) / 10.0;
    case WEIGHT_ZERO:
        return 0.0;
    case WEIGHT_RISING:
        return (double)(key % 4096) * 0.5;
    case WEIGHT_ONE_HEAVY:
        return key == morton_encode3(20, 14, 8) ? 1e6 : 1.0;
    }
    return 0.0;
}

static int compare_keys(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* All keys of the box, ascending. */
static uint64_t *all_keys(size_t *count)
{
    *count = (size_t)(box[0] * box[1] * box[2]);
    uint64_t *keys = malloc(*count * sizeof *keys);
    size_t at = 0;
    for (uint32_t z = 0; z < box[2]; z++)
        for (uint32_t y = 0; y < box[1]; y++)
            for (uint32_t x = 0; x < box[0]; x++)
                keys[at++] = morton_encode3(x, y, z);
    qsort(keys, *count, sizeof *keys, compare_keys);
    return keys;
}

static void check_agreed(const uint64_t *split)
{
    uint64_t *root = malloc(((size_t)mt_size + 1) * sizeof *root);
    memcpy(root, split, ((size_t)mt_size + 1) * sizeof *root);
    MPI_Bcast(root, mt_size + 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MT_CHECK(memcmp(root, split, ((size_t)mt_size + 1) * sizeof *root) == 0,
             "splitters differ from rank 0's");
    free(root);
}

/* Contiguous ranges in key order, and each rank's weight within the largest weight of the mean. */
static void check_balance(const uint64_t *keys, size_t count, const uint64_t *split,
                          weight_kind kind, const char *what)
{
    MT_CHECK(split[0] == 0 && split[mt_size] == UINT64_MAX, "%s: ends", what);
    for (int r = 0; r < mt_size; r++)
        MT_CHECK(split[r] <= split[r + 1], "%s: splitter %d decreases", what, r);
    double *share = calloc((size_t)mt_size, sizeof *share), total = 0, heaviest = 0;
    int by_count = 1;
    for (size_t i = 0; i < count; i++)
        by_count &= weight_of(keys[i], kind) == 0.0;
    for (size_t i = 0; i < count; i++) {
        double w = by_count ? 1.0 : weight_of(keys[i], kind);
        share[partition_owner(split, mt_size, keys[i])] += w;
        total += w;
        heaviest = w > heaviest ? w : heaviest;
    }
    for (int r = 0; r < mt_size; r++)
        MT_CHECK(fabs(share[r] - total / mt_size) <= heaviest * (1 + 1e-9) + 1e-6,
                 "%s: rank %d holds %g of %g (largest chunk %g)", what, r, share[r], total,
                 heaviest);
    free(share);
}

/* Rebalance from `current` splitters: each rank passes the chunks it owns now. */
static void run_case(const uint64_t *keys, size_t count, const uint64_t *current, weight_kind kind,
                     const char *what)
{
    uint64_t *mine = malloc((count ? count : 1) * sizeof *mine);
    double *weights = malloc((count ? count : 1) * sizeof *weights);
    uint64_t *split = malloc(((size_t)mt_size + 1) * sizeof *split);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (partition_owner(current, mt_size, keys[i]) == mt_rank) {
            mine[n] = keys[i];
            weights[n++] = weight_of(keys[i], kind);
        }
    strata_error err;
    error_clear(&err);
    strata_status st = partition_by_weight(MPI_COMM_WORLD, mine, weights, n, split, &err);
    MT_CHECK(st == STRATA_OK, "%s: %s", what, err.message);
    if (st == STRATA_OK) {
        check_agreed(split);
        check_balance(keys, count, split, kind, what);
    }
    free(mine);
    free(weights);
    free(split);
}

/* A bad weight on the last rank fails every rank with the same status and message. */
static void test_bad_weight(const uint64_t *keys, size_t count)
{
    uint64_t *split = malloc(((size_t)mt_size + 1) * sizeof *split);
    double weights[2] = {1.0, mt_rank == mt_size - 1 ? -1.0 : 2.0};
    uint64_t mine[2] = {keys[2 * (size_t)mt_rank % count], keys[2 * (size_t)mt_rank % count] + 1};
    strata_error err;
    error_clear(&err);
    strata_status st = partition_by_weight(MPI_COMM_WORLD, mine, weights, 2, split, &err);
    MT_CHECK(st == STRATA_ERR_ARG, "negative weight: status %d", st);
    char root[STRATA_ERROR_MAX];
    memcpy(root, err.message, sizeof root);
    MPI_Bcast(root, (int)sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
    MT_CHECK(strcmp(root, err.message) == 0, "messages differ: %s / %s", root, err.message);
    /* Unsorted keys on one rank. */
    uint64_t unsorted[2] = {10, mt_rank == 0 ? 5 : 11};
    st =
        partition_by_weight(MPI_COMM_WORLD, unsorted, weights + 0, 1 + (mt_rank == 0), split, &err);
    MT_CHECK(st == STRATA_ERR_ARG, "unsorted keys: status %d", st);
    free(split);
}

/* ---- opening at another rank count ------------------------------------------- */

/* A sparse world: 4096^3 voxels of chunk 16 (2^24 chunk slots) with chunks
 * stored only in a 32 x 16 x 16-chunk slab at one corner and a 16 x 16 x 8 block
 * at the far corner: 8192 + 2048 chunks (enough for the fences to balance 4
 * ranks: 2 x 1,024 rows each), uniform, material 1 + (cx + cy + cz) % 5. */
enum { SPARSE_EDGE = 16, SPARSE_SIDE = 4096 };
static const int64_t SLABS[2][6] = {{0, 0, 0, 32, 16, 16}, {240, 240, 248, 256, 256, 256}};

static uint16_t sparse_material(int64_t cx, int64_t cy, int64_t cz)
{
    return (uint16_t)(1 + (cx + cy + cz) % 5);
}

static strata_status fill_sparse(const int64_t b[6], int edge, uint16_t *voxels, void *ctx,
                                 char *message)
{
    (void)ctx, (void)message;
    uint16_t v = sparse_material(b[0] / edge, b[1] / edge, b[2] / edge);
    for (size_t i = 0; i < (size_t)edge * edge * edge; i++)
        voxels[i] = v;
    return STRATA_OK;
}

static void write_sparse(const char *path, MPI_Comm comm)
{
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = cfg.dims[1] = cfg.dims[2] = SPARSE_SIDE;
    cfg.chunk_edge = SPARSE_EDGE;
    strata_world *w = NULL;
    strata_status st = strata_world_create(comm, path, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    for (int i = 0; i < 2 && !st; i++) {
        int64_t box[6];
        for (int a = 0; a < 6; a++)
            box[a] = SLABS[i][a] * SPARSE_EDGE;
        st = strata_fill(w, box, fill_sparse, NULL);
        if (!st) /* two commits: two segments, so the samples are two runs */
            st = strata_commit(w, NULL);
    }
    MT_CHECK(st == STRATA_OK, "writing the sparse world: %s", strata_last_error(w));
    if (w)
        strata_world_close(w);
}

/* Open at every rank: each rank's range holds at most twice an even share of the
 * stored chunks (remapping the writer's splitters over key space gave the
 * corner slab to the first ranks alone), and every stored chunk reads back. */
static void check_sparse_open(const char *path, const char *what)
{
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "%s: open: %s", what, strata_last_error(NULL));
    if (st)
        return;
    uint64_t first, last, mine = 0, total = 0;
    strata_key_range(w, &first, &last);
    int64_t(*points)[3] = malloc(64 * sizeof *points);
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        for (int64_t z = SLABS[i][2]; z < SLABS[i][5]; z++)
            for (int64_t y = SLABS[i][1]; y < SLABS[i][4]; y++)
                for (int64_t x = SLABS[i][0]; x < SLABS[i][3]; x++) {
                    uint64_t key;
                    strata_chunk_key(w, x, y, z, &key);
                    mine += key >= first && key < last;
                    total++;
                    if (total % 331 == (uint64_t)mt_rank && n < 64) {
                        points[n][0] = x * SPARSE_EDGE + 3, points[n][1] = y * SPARSE_EDGE + 5;
                        points[n][2] = z * SPARSE_EDGE + 7;
                        n++;
                    }
                }
    uint64_t most = 0;
    MPI_Allreduce(&mine, &most, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    MT_CHECK((double)most <= 2.0 * (double)total / mt_size,
             "%s: the largest rank holds %llu of %llu stored chunks at %d ranks", what,
             (unsigned long long)most, (unsigned long long)total, mt_size);
    if (mt_size > 1 && mt_rank == 0)
        printf("%s: the largest rank holds %llu of %llu stored chunks at %d ranks (%.2fx even)\n",
               what, (unsigned long long)most, (unsigned long long)total, mt_size,
               (double)most * mt_size / (double)total);
    uint16_t got[64];
    st = strata_query_points(w, (const int64_t(*)[3])points, n, got);
    MT_CHECK(st == STRATA_OK, "%s: query: %s", what, strata_last_error(w));
    for (size_t i = 0; !st && i < n; i++)
        MT_CHECK(got[i] == sparse_material(points[i][0] / SPARSE_EDGE, points[i][1] / SPARSE_EDGE,
                                           points[i][2] / SPARSE_EDGE),
                 "%s: voxel %lld,%lld,%lld reads %u", what, (long long)points[i][0],
                 (long long)points[i][1], (long long)points[i][2], got[i]);
    free(points);
    strata_world_close(w);
}

/* The sparse world at dir/name, fresh, written by rank 0 alone. Collective. */
static void write_sparse_alone(const char *dir, const char *name, char *path, size_t size)
{
    mt_fresh_path(dir, name, path, size);
    MPI_Comm one;
    MPI_Comm_split(MPI_COMM_WORLD, mt_rank == 0 ? 0 : MPI_UNDEFINED, 0, &one);
    if (one != MPI_COMM_NULL) {
        write_sparse(path, one);
        MPI_Comm_free(&one);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void test_sparse_reopen(const char *dir)
{
    char path[4096];
    /* Written by rank 0 alone, opened by all. */
    write_sparse_alone(dir, "sparse", path, sizeof path);
    check_sparse_open(path, "written at 1 rank");
    /* Written by all, opened by all but the last rank (1 rank: again by all). */
    write_sparse(path, MPI_COMM_WORLD);
    MPI_Comm fewer;
    MPI_Comm_split(MPI_COMM_WORLD, mt_rank < mt_size - 1 || mt_size == 1 ? 0 : MPI_UNDEFINED, 0,
                   &fewer);
    if (fewer != MPI_COMM_NULL) {
        strata_world *w = NULL;
        strata_status st = strata_world_open(fewer, path, STRATA_READ, NULL, &w);
        MT_CHECK(st == STRATA_OK, "open with fewer ranks: %s", strata_last_error(NULL));
        uint64_t first, last, mine = 0, most = 0, total = 0;
        int ranks = 1;
        MPI_Comm_size(fewer, &ranks);
        if (!st)
            strata_key_range(w, &first, &last);
        for (int i = 0; !st && i < 2; i++)
            for (int64_t z = SLABS[i][2]; z < SLABS[i][5]; z++)
                for (int64_t y = SLABS[i][1]; y < SLABS[i][4]; y++)
                    for (int64_t x = SLABS[i][0]; x < SLABS[i][3]; x++) {
                        uint64_t key;
                        strata_chunk_key(w, x, y, z, &key);
                        mine += key >= first && key < last;
                        total++;
                    }
        MPI_Allreduce(&mine, &most, 1, MPI_UINT64_T, MPI_MAX, fewer);
        MT_CHECK(st || (double)most <= 2.0 * (double)total / ranks,
                 "written at %d, opened at %d: the largest rank holds %llu of %llu", mt_size, ranks,
                 (unsigned long long)most, (unsigned long long)total);
        if (w)
            strata_world_close(w);
        MPI_Comm_free(&fewer);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A commit under STRATA_MPIIO_HINTS: malformed, it fails everywhere naming the
 * variable and the world keeps its epoch and voxel; well formed, it commits. */
static void test_mpiio_hints(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sparse", dir);
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w);
    MT_CHECK(st == STRATA_OK, "open for hints: %s", strata_last_error(NULL));
    if (st)
        return;
    strata_info before;
    strata_world_info(w, &before);
    const int64_t at[3] = {3, 5, 7}; /* chunk 0,0,0: material 1 */
    st = strata_stage(w, at[0], at[1], at[2], 9);
    if (!st)
        st = strata_flush(w, NULL);
    setenv("STRATA_MPIIO_HINTS", "romio_cb_write=enable,cb_nodes", 1);
    if (!st)
        st = strata_commit(w, NULL);
    MT_CHECK(st == STRATA_ERR_ARG && strstr(strata_last_error(w), "STRATA_MPIIO_HINTS") &&
                 strstr(strata_last_error(w), "cb_nodes"),
             "malformed hints: status %d: %s", st, strata_last_error(w));
    strata_world_close(w);
    w = NULL;
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w);
    strata_info after;
    uint16_t v = 0;
    if (!st)
        st = strata_world_info(w, &after);
    if (!st)
        st = strata_read_voxel(w, at[0], at[1], at[2], &v);
    MT_CHECK(st == STRATA_OK && after.epoch == before.epoch && v == 1,
             "after the refused commit: status %d, epoch %llu (was %llu), voxel %u", st,
             (unsigned long long)after.epoch, (unsigned long long)before.epoch, v);
    setenv("STRATA_MPIIO_HINTS", "romio_cb_write=enable,cb_buffer_size=1048576,cb_nodes=1", 1);
    if (!st)
        st = strata_stage(w, at[0], at[1], at[2], 9);
    if (!st)
        st = strata_flush(w, NULL);
    if (!st)
        st = strata_commit(w, NULL);
    MT_CHECK(st == STRATA_OK, "commit with hints: %s", strata_last_error(w));
    unsetenv("STRATA_MPIIO_HINTS");
    if (w)
        strata_world_close(w);
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    v = 0;
    if (!st)
        st = strata_world_info(w, &after);
    if (!st)
        st = strata_read_voxel(w, at[0], at[1], at[2], &v);
    MT_CHECK(st == STRATA_OK && after.epoch == before.epoch + 1 && v == 9,
             "after the commit with hints: status %d, epoch %llu, voxel %u", st,
             (unsigned long long)after.epoch, v);
    if (w)
        strata_world_close(w);
}

/* 20 commits, each changing one voxel of a chunk the last rank owns (each a
 * live segment): every rank reads all 20 voxels (other ranks' chunks through
 * the segments' row blocks), and holds at most STORE_CACHED_BLOCKS_ALL blocks. */
static void test_row_blocks_bounded(const char *dir)
{
    enum { COMMITS = 20, SIDE = 256, EDGE = 16 };
    const uint64_t bound = (uint64_t)STORE_CACHED_BLOCKS_ALL * STORE_FENCE_ROWS * sizeof(store_row);
    char path[4096];
    snprintf(path, sizeof path, "%s/blocks", dir);
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = cfg.dims[1] = cfg.dims[2] = SIDE;
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    strata_status st =
        strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    int64_t at[COMMITS][3];
    int n = 0;
    /* The last rank's chunks, every 7th along the grid, so that 20 exist at 4 ranks. */
    for (int64_t c = 0; !st && n < COMMITS && c < (SIDE / EDGE) * (SIDE / EDGE) * (SIDE / EDGE);
         c += 7) {
        int64_t x = c % (SIDE / EDGE) * EDGE + 1, y = c / (SIDE / EDGE) % (SIDE / EDGE) * EDGE + 2,
                z = c / ((SIDE / EDGE) * (SIDE / EDGE)) * EDGE + 3;
        int owner = -1;
        strata_owner(w, x, y, z, &owner);
        if (owner == mt_size - 1)
            at[n][0] = x, at[n][1] = y, at[n][2] = z, n++;
    }
    for (int i = 0; !st && i < n; i++) {
        st = strata_stage(w, at[i][0], at[i][1], at[i][2], (uint16_t)(10 + i));
        if (!st)
            st = strata_flush(w, NULL);
        if (!st)
            st = strata_commit(w, NULL);
    }
    MT_CHECK(st == STRATA_OK && n == COMMITS, "writing %d commits: %s", n, strata_last_error(w));
    if (w)
        strata_world_close(w);
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "reopening: %s", strata_last_error(NULL));
    strata_info info;
    if (!st)
        st = strata_world_info(w, &info);
    MT_CHECK(st || info.segments >= COMMITS, "%llu live segments, expected at least %d",
             (unsigned long long)info.segments, COMMITS);
    for (int round = 0; !st && round < 2; round++)
        for (int i = 0; !st && i < n; i++) {
            uint16_t v = 0;
            st = strata_read_voxel(w, at[i][0], at[i][1], at[i][2], &v);
            MT_CHECK(st == STRATA_OK && v == 10 + i, "voxel %d reads %u: %s", i, v,
                     strata_last_error(w));
        }
    strata_memory m;
    if (!st && strata_world_memory(w, &m) == STRATA_OK)
        MT_CHECK(m.row_blocks <= bound && (mt_rank == mt_size - 1 || m.row_blocks == bound),
                 "%llu bytes of row blocks with %llu segments", (unsigned long long)m.row_blocks,
                 (unsigned long long)info.segments);
    if (w)
        strata_world_close(w);
}

/* Rank 0 lowers entry 4 of the 8-entry /fence below entry 3: with stride 3 the sample
 * (entries 0, 3, 6) stays ascending, the block of entries 3-5 does not. Opening at 2
 * or more ranks must refuse the world on every rank (each loads its own rows, and the
 * rank whose range meets that block reads it), naming the segment file. */
static void test_fence_corrupt(const char *path)
{
    char name[300] = "";
    if (mt_rank == 0) {
        DIR *d = opendir(path);
        struct dirent *e;
        int done = 0;
        while (d && !done && (e = readdir(d))) {
            if (strncmp(e->d_name, "seg-", 4) != 0)
                continue;
            char file[4400];
            snprintf(file, sizeof file, "%s/%s", path, e->d_name);
            hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
            hid_t dset = f < 0 ? -1 : H5Dopen2(f, "fence", H5P_DEFAULT);
            hid_t space = dset < 0 ? -1 : H5Dget_space(dset);
            uint64_t keys[8];
            if (space >= 0 && H5Sget_simple_extent_npoints(space) == 8 &&
                H5Dread(dset, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, keys) >= 0) {
                keys[4] = keys[2];
                done = H5Dwrite(dset, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, keys) >= 0;
                snprintf(name, sizeof name, "%s", e->d_name);
            }
            if (space >= 0)
                H5Sclose(space);
            if (dset >= 0)
                H5Dclose(dset);
            if (f >= 0)
                H5Fclose(f);
        }
        if (d)
            closedir(d);
        MT_CHECK(done, "no segment with an 8-entry /fence in %s", path);
    }
    MPI_Bcast(name, (int)sizeof name, MPI_CHAR, 0, MPI_COMM_WORLD);
    store_set_fence_stride(3);
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    const char *message = strata_last_error(NULL);
    if (mt_size > 1)
        MT_CHECK(st == STRATA_ERR_CORRUPT && strstr(message, name) && strstr(message, "/fence"),
                 "a non-ascending fence block: status %d, %s", st, message);
    else /* one rank loads all rows: only the first and last blocks are read (and rows are
            checked ascending as read) */
        MT_CHECK(st == STRATA_OK, "one rank, a fence block not read: status %d, %s", st, message);
    if (w)
        strata_world_close(w);
}

/* The fence read on demand: with the sample stride lowered (stride 3 leaves a
 * partial last block; stride 1 gives 10 blocks, more than the store caches, so
 * blocks are evicted and read again), the sparse world written at 1 rank opens
 * balanced (check_sparse_open), every rank reads one voxel of every stored chunk
 * (point lookups of other ranks' chunks: the sample, a fence block, a row block)
 * and of the empty chunk beside it (the dense reference: materials or 0), and the
 * fences held stay within the sample and STORE_CACHED_FENCES blocks. */
static void test_fence_on_demand(const char *dir)
{
    char path[4096];
    write_sparse_alone(dir, "sampled", path, sizeof path);
    const size_t strides[2] = {3, 1};
    for (int t = 0; t < 2; t++) {
        char what[64];
        snprintf(what, sizeof what, "fence sample stride %zu", strides[t]);
        store_set_fence_stride(strides[t]);
        check_sparse_open(path, what);
        strata_world *w = NULL;
        strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
        MT_CHECK(st == STRATA_OK, "%s: open: %s", what, strata_last_error(NULL));
        size_t wrong = 0, read = 0;
        for (int i = 0; !st && i < 2; i++)
            for (int64_t z = SLABS[i][2]; !st && z < SLABS[i][5]; z++)
                for (int64_t y = SLABS[i][1]; !st && y < SLABS[i][4]; y++)
                    for (int64_t x = SLABS[i][0]; !st && x < SLABS[i][3]; x++) {
                        /* the stored chunk, then the chunk beyond the slab's x edge */
                        int64_t xs[2] = {x, SLABS[i][3] - 1 == x ? x + 1 : -1};
                        for (int j = 0; j < 2 && !st; j++) {
                            if (xs[j] < 0 || xs[j] >= SPARSE_SIDE / SPARSE_EDGE)
                                continue;
                            uint16_t v = 0xffff;
                            st = strata_read_voxel(w, xs[j] * SPARSE_EDGE + 3, y * SPARSE_EDGE + 5,
                                                   z * SPARSE_EDGE + 7, &v);
                            wrong += v != (j ? 0 : sparse_material(xs[j], y, z));
                            read++;
                        }
                    }
        MT_CHECK(st == STRATA_OK && wrong == 0 && read > 10240,
                 "%s: %zu of %zu voxels wrong (status %d: %s)", what, wrong, read, st,
                 w ? strata_last_error(w) : "");
        strata_memory mem;
        if (w && strata_world_memory(w, &mem) == STRATA_OK) {
            /* two segments of 8 and 2 fence entries */
            uint64_t bound = 2 * sizeof(store_segment) + (8 + 2) * sizeof(uint64_t) +
                             STORE_CACHED_FENCES * strides[t] * sizeof(uint64_t);
            MT_CHECK(mem.segments <= bound, "%s: segments + fence %llu bytes, bound %llu", what,
                     (unsigned long long)mem.segments, (unsigned long long)bound);
        } else
            MT_CHECK(0, "%s: no memory figures", what);
        if (w)
            strata_world_close(w);
    }
    test_fence_corrupt(path);
    store_set_fence_stride(0);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    size_t count;
    uint64_t *keys = all_keys(&count);
    uint64_t *balanced = malloc(((size_t)mt_size + 1) * sizeof *balanced);
    uint64_t *on_rank0 = malloc(((size_t)mt_size + 1) * sizeof *on_rank0);
    partition_balanced(box, mt_size, balanced);
    on_rank0[0] = 0;
    for (int r = 1; r <= mt_size; r++) /* rank 0 owns everything, the others nothing */
        on_rank0[r] = UINT64_MAX;
    run_case(keys, count, balanced, WEIGHT_RANDOM, "random weights");
    run_case(keys, count, balanced, WEIGHT_ZERO, "zero weights");
    run_case(keys, count, balanced, WEIGHT_RISING, "rising weights");
    run_case(keys, count, balanced, WEIGHT_ONE_HEAVY, "one heavy chunk");
    run_case(keys, count, on_rank0, WEIGHT_RANDOM, "all on rank 0");
    run_case(keys, 0, on_rank0, WEIGHT_RANDOM, "no chunks");
    test_bad_weight(keys, count);
    test_sparse_reopen(dir);
    test_mpiio_hints(dir);
    test_row_blocks_bounded(dir);
    test_fence_on_demand(dir);
    free(keys);
    free(balanced);
    free(on_rank0);
    return mt_finish("mpi_partition");
}
