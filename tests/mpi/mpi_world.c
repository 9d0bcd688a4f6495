/*
 * mpi_world.c: updates, flushes, commits and reads against a dense reference.
 *
 * A 100 x 70 x 45 world with 16-voxel chunks (partial chunks on every far face)
 * gets several commits of several flushes each. Every rank submits random
 * batches with many repeated voxels and conditional updates; every rank replays
 * all batches on a dense reference in (rank, input order). After each flush the
 * routed reads (strata_query_points) must match the flushed state while the
 * committed reads (strata_read_voxel, strata_load_chunk, strata_chunk_metadata)
 * must still show the last commit. Then: bad input changes nothing, read-only
 * worlds refuse writes, and the world reopens with the same and with another
 * rank count (a sub-communicator) with every voxel intact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>
#include <fcntl.h>

#include "mpi_common.h"
#include "world_reference.h"

#define UPDATES_PER_RANK 3000
#define COMMITS          3
#define FLUSHES          3

static const int64_t DIMS[3] = {100, 70, 45};
static const int EDGE = 16;

/* Points every check reads: world corners, the hot voxels and some random ones. */
static int64_t (*sample_points(const reference *r, uint64_t round, size_t *n))[3]
{
    size_t count = 8 + 48 + 200;
    int64_t(*p)[3] = malloc(count * sizeof *p);
    if (!p)
        MPI_Abort(MPI_COMM_WORLD, 2);
    size_t k = 0;
    for (int c = 0; c < 8; c++, k++)
        for (int i = 0; i < 3; i++)
            p[k][i] = (c >> i) & 1 ? r->dims[i] - 1 : 0;
    uint64_t hot_seed = 0x5eed0000ULL + round, seed = 99 + round * 31 + (uint64_t)mt_rank;
    for (int h = 0; h < 48; h++, k++)
        ref_random_voxel(r, &hot_seed, p[k]);
    for (; k < count; k++)
        ref_random_voxel(r, &seed, p[k]);
    *n = count;
    return p;
}

/* Routed reads of the sample against the flushed state. */
static void check_sample_query(strata_world *w, const reference *r, uint64_t round,
                               const char *what)
{
    size_t n;
    int64_t(*p)[3] = sample_points(r, round, &n);
    uint16_t *out = malloc(n * sizeof *out);
    strata_status st = strata_query_points(w, (const int64_t(*)[3])p, n, out);
    MT_CHECK(st == STRATA_OK, "%s: query_points: %s", what, strata_last_error(w));
    for (size_t i = 0; !st && i < n; i++)
        MT_CHECK(out[i] == r->current[ref_index(r, p[i][0], p[i][1], p[i][2])],
                 "%s: point %zu (%" PRId64 ",%" PRId64 ",%" PRId64 ") = %u, expected %u", what, i,
                 p[i][0], p[i][1], p[i][2], out[i],
                 r->current[ref_index(r, p[i][0], p[i][1], p[i][2])]);
    free(out);
    free(p);
}

static void check_sample_committed(strata_world *w, const reference *r, uint64_t round,
                                   const char *what)
{
    size_t n;
    int64_t(*p)[3] = sample_points(r, round, &n);
    ref_check_read_voxels(w, r, (const int64_t(*)[3])p, n, what);
    free(p);
}

/*
 * One round: every rank of comm submits its batch (through strata_update_batch
 * or through strata_stage / strata_stage_expect + strata_flush), every rank of
 * MPI_COMM_WORLD replays the batches of the `ranks` ranks of comm. Ranks outside
 * comm (w == NULL) only replay.
 */
static void run_round(strata_world *w, int comm_rank, int ranks, reference *r, uint64_t round,
                      int staged)
{
    uint64_t counts[2] = {0, 0};
    strata_update *mine = ref_round(r, round, ranks, w ? comm_rank : -1, UPDATES_PER_RANK, counts);
    if (!w)
        return;
    strata_batch_stats stats;
    memset(&stats, 0, sizeof stats);
    strata_status st = STRATA_OK;
    if (staged) {
        for (size_t i = 0; i < UPDATES_PER_RANK && !st; i++) {
            const strata_update *u = &mine[i];
            st = u->has_expected
                     ? strata_stage_expect(w, u->x, u->y, u->z, u->material, u->expected)
                     : strata_stage(w, u->x, u->y, u->z, u->material);
        }
        MT_CHECK(st == STRATA_OK, "round %" PRIu64 ": stage: %s", round, strata_last_error(w));
        st = strata_flush(w, &stats);
    } else {
        st = strata_update_batch(w, mine, UPDATES_PER_RANK, &stats);
    }
    MT_CHECK(st == STRATA_OK, "round %" PRIu64 ": flush: %s", round, strata_last_error(w));
    MT_CHECK(stats.submitted == (uint64_t)ranks * UPDATES_PER_RANK,
             "round %" PRIu64 ": submitted %" PRIu64, round, stats.submitted);
    MT_CHECK(stats.applied == counts[0] && stats.skipped == counts[1],
             "round %" PRIu64 ": applied %" PRIu64 " skipped %" PRIu64 ", reference %" PRIu64
             " / %" PRIu64,
             round, stats.applied, stats.skipped, counts[0], counts[1]);
    MT_CHECK(counts[1] > 0 && counts[0] > counts[1],
             "round %" PRIu64 ": batch exercises conditions", round);
    free(mine);
}

/* Commits with several flushes each, checking both views after every step. */
static void test_commits(strata_world *w, reference *r, uint64_t *epoch)
{
    uint64_t round = 0;
    for (int c = 0; c < COMMITS; c++) {
        for (int f = 0; f < FLUSHES; f++, round++) {
            run_round(w, mt_rank, mt_size, r, round, (int)(round % 2));
            char what[64];
            snprintf(what, sizeof what, "commit %d flush %d", c, f);
            check_sample_query(w, r, round, what);
            /* Flushed but not committed: committed reads still show the last commit. */
            check_sample_committed(w, r, round, what);
            if (f == FLUSHES - 1 || round % 4 == 1)
                ref_check_chunks(w, mt_rank, mt_size, r, *epoch, what);
        }
        strata_commit_stats cs;
        strata_status st = strata_commit(w, &cs);
        MT_CHECK(st == STRATA_OK, "commit %d: %s", c, strata_last_error(w));
        MT_CHECK(cs.epoch == *epoch + 1, "commit %d: epoch %" PRIu64 " after %" PRIu64, c, cs.epoch,
                 *epoch);
        MT_CHECK(cs.chunks_written > 0 && cs.stored_bytes > 0 && cs.stored_bytes < cs.raw_bytes,
                 "commit %d: %" PRIu64 " chunks, %" PRIu64 " of %" PRIu64 " bytes", c,
                 cs.chunks_written, cs.stored_bytes, cs.raw_bytes);
        *epoch = cs.epoch;
        ref_commit(r, *epoch);
        char what[64];
        snprintf(what, sizeof what, "after commit %d", c);
        check_sample_committed(w, r, round - 1, what);
        ref_check_chunks(w, mt_rank, mt_size, r, *epoch, what);
    }
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "all voxels after the commits");
    /* A commit with nothing to write changes nothing. */
    strata_commit_stats cs;
    MT_CHECK(strata_commit(w, &cs) == STRATA_OK && cs.chunks_written == 0,
             "empty commit: %s, %" PRIu64 " chunks", strata_last_error(w), cs.chunks_written);
    *epoch = cs.epoch;
}

/* An out-of-range update on one rank fails the batch everywhere; nothing applies. */
static void test_bad_input(strata_world *w, reference *r)
{
    int culprit = mt_size - 1;
    for (int i = 0; i < 50; i++) {
        int64_t v[3];
        uint64_t seed = 4242 + (uint64_t)(mt_rank * 100 + i);
        ref_random_voxel(r, &seed, v);
        MT_CHECK(strata_stage(w, v[0], v[1], v[2], 4000) == STRATA_OK, "staging a good update");
    }
    if (mt_rank == culprit) {
        strata_status st = strata_stage(w, DIMS[0], 3, 4, 7);
        MT_CHECK(st == STRATA_ERR_RANGE, "staging outside the world returns %d", st);
        strata_stage(w, 1, 1, 1, 9); /* after the bad one: must not apply either */
    }
    strata_batch_stats stats;
    strata_status st = strata_flush(w, &stats);
    MT_CHECK(st == STRATA_ERR_RANGE, "flush with a bad update on rank %d returns %d", culprit, st);
    MT_CHECK(strstr(strata_last_error(w), "(100, 3, 4)") != NULL,
             "the message names the coordinate: %s", strata_last_error(w));
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after the refused flush");

    /* The same through strata_update_batch, with a negative z on rank 0 and a conditional. */
    strata_update good[2] = {
        {.x = 5, .y = 5, .z = 5, .material = 77},
        {.x = 6, .y = 5, .z = 5, .material = 78, .expected = 0, .has_expected = 1}};
    strata_update bad = {.x = 2, .y = 2, .z = -1, .material = 3};
    strata_update mix[3] = {good[0], mt_rank == 0 ? bad : good[1], good[1]};
    st = strata_update_batch(w, mix, 3, &stats);
    MT_CHECK(st == STRATA_ERR_RANGE, "update_batch with z = -1 returns %d", st);
    MT_CHECK(strstr(strata_last_error(w), "(2, 2, -1)") != NULL, "message: %s",
             strata_last_error(w));
    /* A conditional out of range too. */
    if (mt_rank == culprit)
        MT_CHECK(strata_stage_expect(w, 0, DIMS[1], 0, 1, 0) == STRATA_ERR_RANGE,
                 "stage_expect range");
    st = strata_commit(w, NULL);
    MT_CHECK(st == STRATA_ERR_RANGE, "commit with a bad staged update returns %d", st);
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after the refused batches");

    /* Staging was cleared by the failure: a good batch goes through afterwards. */
    uint64_t counts[2] = {0, 0};
    for (int q = 0; q < mt_size; q++)
        ref_apply(r, good, 2, counts);
    st = strata_update_batch(w, good, 2, &stats);
    MT_CHECK(st == STRATA_OK && stats.applied == counts[0] && stats.skipped == counts[1],
             "good batch after a bad one: %s (applied %" PRIu64 ", skipped %" PRIu64 ")",
             strata_last_error(w), stats.applied, stats.skipped);
    check_sample_query(w, r, 0, "after the good batch");

    /* Out-of-range reads are refused with the coordinate. */
    uint16_t v;
    MT_CHECK(strata_read_voxel(w, -1, 0, 0, &v) == STRATA_ERR_RANGE, "read_voxel(-1,0,0)");
    uint16_t *buf = malloc((size_t)EDGE * EDGE * EDGE * sizeof *buf);
    MT_CHECK(strata_load_chunk(w, 7, 0, 0, buf) == STRATA_ERR_RANGE, "load_chunk beyond the world");
    free(buf);
    int64_t outside[1][3] = {{0, 0, mt_rank == culprit ? DIMS[2] : 0}};
    uint16_t out;
    st = strata_query_points(w, (const int64_t(*)[3])outside, 1, &out);
    MT_CHECK(st == STRATA_ERR_RANGE, "query_points outside on one rank returns %d", st);
}

/* A world opened read-only refuses every write, on every rank, and reads fine. */
static void test_read_only(const char *path, reference *r, uint64_t epoch)
{
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "open read-only: %s", strata_last_error(NULL));
    if (st)
        return;
    MT_CHECK(strata_stage(w, 1, 2, 3, 4) == STRATA_ERR_READ_ONLY, "stage on a read-only world");
    MT_CHECK(strata_stage_expect(w, 1, 2, 3, 4, 0) == STRATA_ERR_READ_ONLY,
             "stage_expect read-only");
    MT_CHECK(strata_flush(w, NULL) == STRATA_ERR_READ_ONLY, "flush on a read-only world");
    MT_CHECK(strata_commit(w, NULL) == STRATA_ERR_READ_ONLY, "commit on a read-only world");
    strata_update u = {.x = 1, .y = 1, .z = 1, .material = 5};
    MT_CHECK(strata_update_batch(w, &u, 1, NULL) == STRATA_ERR_READ_ONLY, "update_batch read-only");
    MT_CHECK(strata_rebalance(w, STRATA_WEIGHT_COUNT, NULL, NULL) == STRATA_ERR_READ_ONLY,
             "rebalance read-only");
    strata_info info;
    MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.epoch == epoch,
             "read-only epoch %" PRIu64, info.epoch);
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->committed, "read-only world");
    ref_check_chunks(w, mt_rank, mt_size, r, epoch, "read-only world");
    /* The point queries' routing buffers (and any decoded chunks' slabs) stay for reuse. */
    MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.reserve_bytes > 0,
             "reserve bytes after routed queries: %" PRIu64, info.reserve_bytes);
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close read-only");
}

/* A 32^3 world of 16-voxel chunks, for argument tests. */
static void small_config(strata_config *cfg)
{
    strata_config_init(cfg);
    cfg->dims[0] = cfg->dims[1] = cfg->dims[2] = 32;
    cfg->chunk_edge = 16;
}

/*
 * Arguments one rank gets wrong fail on every rank (no rank waits in a
 * collective); ranks passing different configurations fail; a second writer
 * handle in the same process is refused, and closing it leaves the first
 * handle's lock in place.
 */
static void test_open_arguments(const char *dir, const char *path)
{
    strata_world *w = NULL;
    int bad = mt_size - 1; /* the last rank only */
    strata_status st =
        strata_world_open(MPI_COMM_WORLD, path, mt_rank == bad ? 7 : STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_ERR_ARG && w == NULL, "open with a bad mode on rank %d: %d", bad, st);
    MT_CHECK(strstr(strata_last_error(NULL), "mode 7") != NULL, "message: %s",
             strata_last_error(NULL));
    strata_config cfg;
    small_config(&cfg);
    char other[4200];
    snprintf(other, sizeof other, "%s/args-world", dir);
    st = strata_world_create(MPI_COMM_WORLD, mt_rank == bad ? NULL : other, &cfg, NULL, 0, &w);
    MT_CHECK(st == STRATA_ERR_ARG && w == NULL, "create with a NULL path on rank %d: %d", bad, st);
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, NULL) == STRATA_ERR_ARG,
             "open with a NULL out");
    if (mt_size > 1) {
        cfg.dims[0] = mt_rank == bad ? 64 : 32;
        st = strata_world_create(MPI_COMM_WORLD, other, &cfg, NULL, 0, &w);
        MT_CHECK(st == STRATA_ERR_ARG && w == NULL, "ranks with different dims: %d", st);
        MT_CHECK(strstr(strata_last_error(NULL), "different configurations") != NULL, "message: %s",
                 strata_last_error(NULL));
        cfg.dims[0] = 32;
        /* A configuration invalid on the last rank alone fails everywhere
         * before rank 0 writes anything: nothing is left at the path. */
        cfg.chunk_edge = mt_rank == bad ? 17 : 16;
        st = strata_world_create(MPI_COMM_WORLD, other, &cfg, NULL, 0, &w);
        MT_CHECK(st == STRATA_ERR_ARG && w == NULL, "chunk edge 17 on rank %d: %d", bad, st);
        struct stat sb;
        MT_CHECK(stat(other, &sb) != 0, "a create refused on one rank left %s", other);
        cfg.chunk_edge = 16;
    }
    cfg.materials = NULL;
    cfg.material_count = 3; /* ignored: NULL means the default table */
    st = strata_world_create(MPI_COMM_WORLD, other, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    MT_CHECK(st == STRATA_OK, "create with materials NULL: %s", strata_last_error(NULL));
    if (w)
        strata_world_close(w);
    /* Before its first commit a forced create has not replaced the world yet:
     * an extraction into the old world's directory is refused too. */
    st = strata_world_create(MPI_COMM_WORLD, other, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    MT_CHECK(st == STRATA_OK, "forced create: %s", strata_last_error(NULL));
    if (w) {
        char inside[4300];
        snprintf(inside, sizeof inside, "%s/x.h5", other);
        const int64_t box[6] = {0, 0, 0, 8, 8, 8};
        st = strata_extract(w, box, 0, inside, NULL, NULL);
        MT_CHECK(st == STRATA_ERR_ARG && strstr(strata_last_error(w), "inside the world"),
                 "extract into the world a forced create replaces: %d, %s", st,
                 strata_last_error(w));
        strata_world_close(w);
    }
    /* One writer per world, in this process too. */
    strata_world *first = NULL, *second = NULL;
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &first);
    MT_CHECK(st == STRATA_OK, "open for writing: %s", strata_last_error(NULL));
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &second);
    MT_CHECK(st == STRATA_ERR_LOCKED && second == NULL, "second writer in one process: %d", st);
    st = strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &second);
    MT_CHECK(st == STRATA_ERR_LOCKED && second == NULL, "forced create over it: %d", st);
    /* The refused handles must not have released the first one's lock. */
    if (mt_rank == 0) {
        char lock[4200];
        snprintf(lock, sizeof lock, "%s/LOCK", path);
        pid_t child = fork();
        if (child == 0) {
            int fd = open(lock, O_RDWR);
            struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            _exit(fd >= 0 && fcntl(fd, F_SETLK, &l) == 0 ? 1 : 0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        MT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "another process could take the lock of a world open for writing");
    }
    if (first)
        strata_world_close(first);
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &second);
    MT_CHECK(st == STRATA_OK, "open for writing after the first closed: %s",
             strata_last_error(NULL));
    if (second)
        strata_world_close(second);
}

/* A call refused for a NULL pointer: STRATA_ERR_ARG, and the message (of w, or of
 * the thread when w is NULL) names the function and the argument. */
#define CHECK_NULL(call, w, fn, arg)                                                               \
    do {                                                                                           \
        strata_status st_ = (call);                                                                \
        const char *m_ = strata_last_error(w);                                                     \
        MT_CHECK(st_ == STRATA_ERR_ARG && strstr(m_, fn) && strstr(m_, "NULL " arg),               \
                 "%s: status %d, message '%s'", #call, (int)st_, m_);                              \
    } while (0)

static strata_status fill_nothing(const int64_t bounds[6], int edge, uint16_t *voxels, void *ctx,
                                  char *message_out)
{
    (void)bounds, (void)edge, (void)voxels, (void)ctx, (void)message_out;
    return STRATA_OK;
}

/* Every public call taking a world refuses a NULL world, locally. */
static void test_null_world(void)
{
    strata_world *n = NULL;
    strata_config cfg;
    strata_material mat;
    strata_info info;
    strata_chunk_meta meta;
    strata_ray_hit hit;
    strata_index_info index;
    strata_region *regions;
    strata_material_count *counts;
    int rank, size;
    uint64_t a, b;
    uint16_t v, chunk[16];
    size_t count;
    const int64_t box[6] = {0, 0, 0, 8, 8, 8}, point[1][3] = {{1, 1, 1}};
    const double from[3] = {1, 1, 1}, dir[3] = {1, 0, 0};
    CHECK_NULL(strata_world_config(n, &cfg), NULL, "strata_world_config", "world");
    CHECK_NULL(strata_material_get(n, 1, &mat), NULL, "strata_material_get", "world");
    CHECK_NULL(strata_world_info(n, &info), NULL, "strata_world_info", "world");
    CHECK_NULL(strata_world_rank(n, &rank, &size), NULL, "strata_world_rank", "world");
    CHECK_NULL(strata_chunk_key(n, 0, 0, 0, &a), NULL, "strata_chunk_key", "world");
    CHECK_NULL(strata_owner(n, 0, 0, 0, &rank), NULL, "strata_owner", "world");
    CHECK_NULL(strata_key_range(n, &a, &b), NULL, "strata_key_range", "world");
    CHECK_NULL(strata_rebalance(n, STRATA_WEIGHT_COUNT, NULL, NULL), NULL, "strata_rebalance",
               "world");
    CHECK_NULL(strata_stage(n, 0, 0, 0, 1), NULL, "strata_stage", "world");
    CHECK_NULL(strata_stage_expect(n, 0, 0, 0, 1, 0), NULL, "strata_stage_expect", "world");
    CHECK_NULL(strata_flush(n, NULL), NULL, "strata_flush", "world");
    CHECK_NULL(strata_update_batch(n, NULL, 0, NULL), NULL, "strata_update_batch", "world");
    CHECK_NULL(strata_commit(n, NULL), NULL, "strata_commit", "world");
    CHECK_NULL(strata_query_points(n, point, 1, &v), NULL, "strata_query_points", "world");
    CHECK_NULL(strata_read_voxel(n, 0, 0, 0, &v), NULL, "strata_read_voxel", "world");
    CHECK_NULL(strata_load_chunk(n, 0, 0, 0, chunk), NULL, "strata_load_chunk", "world");
    CHECK_NULL(strata_chunk_metadata(n, 0, 0, 0, &meta), NULL, "strata_chunk_metadata", "world");
    CHECK_NULL(strata_fill(n, NULL, fill_nothing, NULL), NULL, "strata_fill", "world");
    CHECK_NULL(strata_generate_terrain(n, 1), NULL, "strata_generate_terrain", "world");
    CHECK_NULL(strata_query_lod(n, point, 1, 0, 0, &v, NULL), NULL, "strata_query_lod", "world");
    CHECK_NULL(strata_query_region(n, box, 0, 1, &regions, &count), NULL, "strata_query_region",
               "world");
    CHECK_NULL(strata_ray(n, from, dir, 10, &hit), NULL, "strata_ray", "world");
    CHECK_NULL(strata_box_stats(n, box, &counts, &count), NULL, "strata_box_stats", "world");
    CHECK_NULL(strata_reindex(n, 0, NULL), NULL, "strata_reindex", "world");
    CHECK_NULL(strata_index_status(n, 0, &index), NULL, "strata_index_status", "world");
    CHECK_NULL(strata_extract(n, box, 0, "null.h5", NULL, NULL), NULL, "strata_extract", "world");
    CHECK_NULL(strata_fsck(n, NULL, NULL, &a), NULL, "strata_fsck", "world");
    CHECK_NULL(strata_compact(n, NULL), NULL, "strata_compact", "world");
    MT_CHECK(strata_world_close(n) == STRATA_OK, "close of NULL");
}

/*
 * NULL outputs and arrays on an open world: every call fails with the message in
 * the world's slot, and a collective call with a NULL pointer on the last rank
 * only fails on every rank without hanging. n == 0 with NULL arrays stays valid.
 * Nothing changes the world.
 */
static void test_null_arguments(const char *path)
{
    test_null_world();
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w);
    MT_CHECK(st == STRATA_OK, "open: %s", strata_last_error(NULL));
    if (st)
        return;
    int rank, size;
    uint64_t a;
    uint16_t v[1];
    size_t count;
    const int64_t box[6] = {0, 0, 0, 8, 8, 8}, point[1][3] = {{1, 2, 3}};
    const double from[3] = {1, 1, 1}, dir[3] = {1, 0, 0};
    strata_ray_hit hit;
    strata_region *regions;
    strata_material_count *counts;
    /* Local calls. A message from an earlier failure must not stand for the new one. */
    st = strata_read_voxel(w, -1, 0, 0, v);
    MT_CHECK(st == STRATA_ERR_RANGE, "read outside the world: %d", st);
    CHECK_NULL(strata_world_config(w, NULL), w, "strata_world_config", "cfg");
    CHECK_NULL(strata_material_get(w, 1, NULL), w, "strata_material_get", "out");
    CHECK_NULL(strata_world_rank(w, NULL, &size), w, "strata_world_rank", "rank");
    CHECK_NULL(strata_world_rank(w, &rank, NULL), w, "strata_world_rank", "size");
    CHECK_NULL(strata_chunk_key(w, 0, 0, 0, NULL), w, "strata_chunk_key", "key");
    CHECK_NULL(strata_owner(w, 0, 0, 0, NULL), w, "strata_owner", "rank");
    CHECK_NULL(strata_key_range(w, NULL, &a), w, "strata_key_range", "first");
    CHECK_NULL(strata_key_range(w, &a, NULL), w, "strata_key_range", "last");
    CHECK_NULL(strata_read_voxel(w, 0, 0, 0, NULL), w, "strata_read_voxel", "out");
    CHECK_NULL(strata_load_chunk(w, 0, 0, 0, NULL), w, "strata_load_chunk", "out");
    CHECK_NULL(strata_chunk_metadata(w, 0, 0, 0, NULL), w, "strata_chunk_metadata", "meta");
    /* Collective calls, the same NULL on every rank. */
    CHECK_NULL(strata_world_info(w, NULL), w, "strata_world_info", "info");
    CHECK_NULL(strata_query_points(w, NULL, 1, v), w, "strata_query_points", "points");
    CHECK_NULL(strata_query_points(w, point, 1, NULL), w, "strata_query_points", "out");
    CHECK_NULL(strata_update_batch(w, NULL, 1, NULL), w, "strata_update_batch", "updates");
    CHECK_NULL(strata_query_lod(w, point, 1, 0, 0, NULL, NULL), w, "strata_query_lod", "out");
    CHECK_NULL(strata_query_region(w, NULL, 0, 1, &regions, &count), w, "strata_query_region",
               "box");
    CHECK_NULL(strata_query_region(w, box, 0, 1, NULL, &count), w, "strata_query_region",
               "regions");
    CHECK_NULL(strata_query_region(w, box, 0, 1, &regions, NULL), w, "strata_query_region", "n");
    CHECK_NULL(strata_box_stats(w, box, NULL, &count), w, "strata_box_stats", "counts");
    CHECK_NULL(strata_ray(w, NULL, dir, 10, &hit), w, "strata_ray", "from");
    CHECK_NULL(strata_ray(w, from, NULL, 10, &hit), w, "strata_ray", "dir");
    CHECK_NULL(strata_ray(w, from, dir, 10, NULL), w, "strata_ray", "hit");
    CHECK_NULL(strata_index_status(w, 1, NULL), w, "strata_index_status", "info");
    CHECK_NULL(strata_fsck(w, NULL, NULL, NULL), w, "strata_fsck", "problems");
    CHECK_NULL(strata_fill(w, NULL, NULL, NULL), w, "strata_fill", "fn");
    st = strata_rebalance(w, STRATA_WEIGHT_CALLBACK, NULL, NULL);
    MT_CHECK(st == STRATA_ERR_ARG && strstr(strata_last_error(w), "callback"),
             "rebalance without a callback: %d, %s", st, strata_last_error(w));
    /* n == 0 with NULL arrays is an empty call. */
    st = strata_query_points(w, NULL, 0, NULL);
    MT_CHECK(st == STRATA_OK, "query of no points: %s", strata_last_error(w));
    st = strata_update_batch(w, NULL, 0, NULL);
    MT_CHECK(st == STRATA_OK, "batch of no updates: %s", strata_last_error(w));
    /* The last rank alone passes NULL: every rank fails, none hangs. */
    int bad = mt_rank == mt_size - 1;
    strata_info info;
    uint64_t problems;
    strata_update u = {1, 2, 3, 7, 0, 0};
    CHECK_NULL(strata_query_points(w, bad ? NULL : point, 1, v), w, "strata_query_points",
               "points");
    CHECK_NULL(strata_update_batch(w, bad ? NULL : &u, 1, NULL), w, "strata_update_batch",
               "updates");
    CHECK_NULL(strata_world_info(w, bad ? NULL : &info), w, "strata_world_info", "info");
    CHECK_NULL(strata_ray(w, from, dir, 10, bad ? NULL : &hit), w, "strata_ray", "hit");
    CHECK_NULL(strata_box_stats(w, box, &counts, bad ? NULL : &count), w, "strata_box_stats", "n");
    CHECK_NULL(strata_index_status(w, 0, bad ? NULL : &(strata_index_info){0}), w,
               "strata_index_status", "info");
    CHECK_NULL(strata_fsck(w, NULL, NULL, bad ? NULL : &problems), w, "strata_fsck", "problems");
    /* The failed batch staged nothing anywhere: a commit writes no chunk. */
    strata_commit_stats cs;
    st = strata_commit(w, &cs);
    MT_CHECK(st == STRATA_OK && cs.chunks_written == 0, "commit after refused calls: %s, %" PRIu64,
             strata_last_error(w), cs.chunks_written);
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close: %s", strata_last_error(NULL));
}

/* Options out of range on one rank fail create and open on every rank; a path
 * that is a regular file is not a world. */
static void test_bad_options(const char *dir, const char *path)
{
    int bad = mt_rank == mt_size - 1;
    strata_config cfg;
    small_config(&cfg);
    char other[4200];
    snprintf(other, sizeof other, "%s/options-world", dir);
    struct {
        const char *field;
        int zstd_level, threads, defer_index;
    } cases[] = {{"zstd_level", 1000, 0, 0},
                 {"zstd_level", -1000000, 0, 0},
                 {"threads", 3, -1, 0},
                 {"defer_index", 3, 0, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_options opt;
        strata_options_init(&opt);
        if (bad) {
            opt.zstd_level = cases[i].zstd_level;
            opt.threads = cases[i].threads;
            opt.defer_index = cases[i].defer_index;
        }
        strata_world *w = NULL;
        strata_status st = strata_world_create(MPI_COMM_WORLD, other, &cfg, &opt, 0, &w);
        MT_CHECK(st == STRATA_ERR_ARG && !w && strstr(strata_last_error(NULL), cases[i].field),
                 "create with a bad %s on the last rank: %d, %s", cases[i].field, st,
                 strata_last_error(NULL));
        st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, &opt, &w);
        MT_CHECK(st == STRATA_ERR_ARG && !w && strstr(strata_last_error(NULL), cases[i].field),
                 "open with a bad %s on the last rank: %d, %s", cases[i].field, st,
                 strata_last_error(NULL));
    }
    strata_options opt;
    strata_options_init(&opt);
    opt.zstd_level = -5; /* zstd's fast levels are valid */
    opt.threads = 2;
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, &opt, &w);
    MT_CHECK(st == STRATA_OK, "open with valid options: %s", strata_last_error(NULL));
    if (w)
        strata_world_close(w);
    /* A regular file is not a world. */
    char file[4200];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    if (mt_rank == 0) {
        FILE *f = fopen(file, "w");
        MT_CHECK(f != NULL, "cannot create %s", file);
        if (f)
            fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    st = strata_world_open(MPI_COMM_WORLD, file, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_ERR_FORMAT && strstr(strata_last_error(NULL), "not a directory"),
             "open of a regular file: %d, %s", st, strata_last_error(NULL));
}

/*
 * Reopen with another rank count: the first size-1 ranks (or all, at one rank)
 * open the world for writing, compare every voxel, commit a round of their own,
 * and close; then all ranks reopen and compare again.
 */
static void test_reopen(const char *path, reference *r, uint64_t *epoch)
{
    int sub_size = mt_size > 1 ? mt_size - 1 : 1;
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, mt_rank < sub_size ? 0 : MPI_UNDEFINED, mt_rank, &sub);
    strata_world *w = NULL;
    if (sub != MPI_COMM_NULL) {
        strata_status st = strata_world_open(sub, path, STRATA_WRITE, NULL, &w);
        MT_CHECK(st == STRATA_OK, "open with %d ranks: %s", sub_size, strata_last_error(NULL));
        if (st)
            w = NULL;
    }
    if (w) {
        int rank, size;
        strata_world_rank(w, &rank, &size);
        MT_CHECK(size == sub_size, "sub-communicator size %d", size);
        ref_check_query_all(w, sub, r, r->committed, "reopened at another rank count");
        ref_check_chunks(w, rank, size, r, *epoch, "reopened at another rank count");
        /* Key ranges of the remapped splitters tile the key space. */
        uint64_t range[2], *all = malloc(2 * (size_t)size * sizeof *all);
        strata_key_range(w, &range[0], &range[1]);
        MPI_Allgather(range, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, sub);
        MT_CHECK(all[0] == 0 && all[2 * size - 1] == UINT64_MAX, "ranges span the key space");
        for (int q = 1; q < size; q++)
            MT_CHECK(all[2 * q] == all[2 * q - 1], "ranges of ranks %d and %d touch", q - 1, q);
        free(all);
    }
    run_round(w, mt_rank, sub_size, r, 1000, 0);
    if (w) {
        strata_commit_stats cs;
        strata_status st = strata_commit(w, &cs);
        MT_CHECK(st == STRATA_OK && cs.epoch == *epoch + 1, "commit at %d ranks: %s", sub_size,
                 strata_last_error(w));
        strata_info info;
        MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.writer_ranks == sub_size,
                 "writer ranks %d", info.writer_ranks);
        MT_CHECK(strata_world_close(w) == STRATA_OK, "close at %d ranks", sub_size);
        MPI_Comm_free(&sub);
    }
    *epoch += 1;
    ref_commit(r, *epoch);

    /* Back at the full rank count. */
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w);
    MT_CHECK(st == STRATA_OK, "reopen at %d ranks: %s", mt_size, strata_last_error(NULL));
    if (st)
        return;
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->committed, "reopened at the full rank count");
    ref_check_chunks(w, mt_rank, mt_size, r, *epoch, "reopened at the full rank count");
    /* Flushed but never committed updates vanish at close. */
    run_round(w, mt_rank, mt_size, r, 2000, 1);
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close");
    ref_rollback(r);
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "reopen read-only: %s", strata_last_error(NULL));
    if (!st) {
        ref_check_query_all(w, MPI_COMM_WORLD, r, r->committed, "uncommitted updates discarded");
        strata_world_close(w);
    }
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/world", dir);
    /* Every world this test makes starts absent (a rerun in the same directory
     * would otherwise find the last run's worlds). */
    if (mt_rank == 0) {
        const char *worlds[] = {"world", "args-world", "options-world", "plain-file"};
        for (size_t i = 0; i < sizeof worlds / sizeof *worlds; i++) {
            char old[4200];
            snprintf(old, sizeof old, "%s/%s", dir, worlds[i]);
            mt_remove_tree(old);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);

    reference r;
    ref_init(&r, DIMS, EDGE);
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, DIMS, sizeof DIMS);
    cfg.chunk_edge = EDGE;
    strata_options opt;
    strata_options_init(&opt);
    /* A small cache (24 dense chunks per rank) so eviction happens during the test. */
    opt.cache_bytes = 24 * (size_t)EDGE * EDGE * EDGE * sizeof(uint16_t);
    strata_world *w = NULL;
    strata_status st = strata_world_create(MPI_COMM_WORLD, path, &cfg, &opt, 0, &w);
    MT_CHECK(st == STRATA_OK, "create: %s", strata_last_error(NULL));
    if (st)
        return mt_finish("mpi_world");
    uint64_t epoch = 0;
    /* A fresh world reads as air everywhere, and every chunk is absent. */
    ref_check_query_all(w, MPI_COMM_WORLD, &r, r.current, "fresh world");
    ref_check_chunks(w, mt_rank, mt_size, &r, 0, "fresh world");

    test_commits(w, &r, &epoch);
    test_bad_input(w, &r);
    st = strata_commit(w, NULL);
    MT_CHECK(st == STRATA_OK, "commit after bad input: %s", strata_last_error(w));
    ref_commit(&r, ++epoch);
    strata_info info;
    MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.epoch == epoch &&
                 info.writer_ranks == mt_size && info.chunks_total == 7 * 5 * 3,
             "info: epoch %" PRIu64 " (want %" PRIu64 "), writers %d, chunks %" PRIu64, info.epoch,
             epoch, info.writer_ranks, info.chunks_total);
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close: %s", strata_last_error(NULL));

    test_read_only(path, &r, epoch);
    test_open_arguments(dir, path);
    test_null_arguments(path);
    test_bad_options(dir, path);
    test_reopen(path, &r, &epoch);
    ref_free(&r);
    return mt_finish("mpi_world");
}
