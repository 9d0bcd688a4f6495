/*
 * mpi_maintenance.c: terrain, fill, compaction, rebalancing and forced create,
 * each checked voxel by voxel against a dense reference.
 *
 * - strata_generate_terrain gives the same world at any rank count: the checksum
 *   of all voxels at the job's rank count equals the one computed by a 1-rank
 *   (and, at 4 ranks, a 2-rank) sub-communicator run in the same test.
 * - strata_fill with a box replaces exactly the box; a failing callback fails
 *   the fill on every rank and changes nothing.
 * - A commit or reindex drops (and unlinks) the segments no live row uses any
 *   more: after a fill of the whole world one segment is left; a segment that
 *   still holds a live row, payload or pyramid stays.
 * - strata_compact leaves one segment and the same content; strata_rebalance by
 *   bytes, commit and reopen leave the content unchanged.
 * - strata_world_create with STRATA_CREATE_FORCE replaces an existing world only
 *   at its first commit; without the flag an existing world is refused.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mpi_common.h"
#include "world_reference.h"

static const int64_t DIMS[3] = {100, 70, 45};
static const int EDGE = 16;
static const uint64_t TERRAIN_SEED = 20240601;

static void config(strata_config *cfg, const int64_t dims[3])
{
    strata_config_init(cfg);
    memcpy(cfg->dims, dims, 3 * sizeof *dims);
    cfg->chunk_edge = EDGE;
}

/* Checksum of all committed voxels, through strata_load_chunk, summed over comm. */
static uint64_t committed_checksum(strata_world *w, MPI_Comm comm, const reference *shape,
                                   uint16_t *dense)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    const int64_t e = EDGE;
    uint16_t *buf = malloc((size_t)(e * e * e) * sizeof *buf);
    uint64_t sum = 0;
    size_t index = 0;
    for (int64_t cz = 0; cz < shape->chunks[2]; cz++)
        for (int64_t cy = 0; cy < shape->chunks[1]; cy++)
            for (int64_t cx = 0; cx < shape->chunks[0]; cx++, index++) {
                if ((int)(index % (size_t)size) != rank)
                    continue;
                strata_status st = strata_load_chunk(w, cx, cy, cz, buf);
                MT_CHECK(st == STRATA_OK, "load_chunk: %s", strata_last_error(w));
                for (int64_t z = 0; z < e && cz * e + z < shape->dims[2]; z++)
                    for (int64_t y = 0; y < e && cy * e + y < shape->dims[1]; y++)
                        for (int64_t x = 0; x < e && cx * e + x < shape->dims[0]; x++) {
                            size_t at = ref_index(shape, cx * e + x, cy * e + y, cz * e + z);
                            sum += ref_checksum_part(&buf[(z * e + y) * e + x], at, 1);
                            if (dense)
                                dense[at] = buf[(z * e + y) * e + x];
                        }
            }
    free(buf);
    uint64_t total = 0;
    MPI_Allreduce(&sum, &total, 1, MPI_UINT64_T, MPI_SUM, comm);
    return total;
}

/* Terrain on `ranks` ranks of MPI_COMM_WORLD (the others wait): returns the checksum on every rank.
 */
static uint64_t terrain_checksum(const char *path, int ranks, uint16_t *dense)
{
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, mt_rank < ranks ? 0 : MPI_UNDEFINED, mt_rank, &sub);
    uint64_t sum = 0;
    if (sub != MPI_COMM_NULL) {
        reference shape;
        ref_init(&shape, DIMS, EDGE);
        strata_config cfg;
        config(&cfg, DIMS);
        strata_world *w = NULL;
        strata_status st = strata_world_create(sub, path, &cfg, NULL, STRATA_CREATE_FORCE, &w);
        MT_CHECK(st == STRATA_OK, "terrain at %d ranks: create: %s", ranks,
                 strata_last_error(NULL));
        if (!st) {
            st = strata_generate_terrain(w, TERRAIN_SEED);
            MT_CHECK(st == STRATA_OK, "terrain at %d ranks: %s", ranks, strata_last_error(w));
            /* Generated but not committed: committed reads still see air. */
            uint16_t v = 1;
            MT_CHECK(strata_read_voxel(w, 0, 0, 0, &v) == STRATA_OK && v == 0,
                     "terrain visible before commit (%u)", v);
            st = strata_commit(w, NULL);
            MT_CHECK(st == STRATA_OK, "terrain at %d ranks: commit: %s", ranks,
                     strata_last_error(w));
            sum = committed_checksum(w, sub, &shape, dense);
            strata_world_close(w);
        }
        ref_free(&shape);
        MPI_Comm_free(&sub);
    }
    MPI_Bcast(&sum, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (dense)
        MPI_Allreduce(MPI_IN_PLACE, dense, (int)(DIMS[0] * DIMS[1] * DIMS[2]), MPI_UINT16_T,
                      MPI_MAX, MPI_COMM_WORLD);
    return sum;
}

static void test_terrain(const char *dir, reference *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/terrain-%d", dir, mt_size);
    memset(r->current, 0, r->voxels * sizeof *r->current);
    uint64_t full = terrain_checksum(path, mt_size, r->current);
    memcpy(r->committed, r->current, r->voxels * sizeof *r->current);
    snprintf(path, sizeof path, "%s/terrain-1", dir);
    uint64_t one = terrain_checksum(path, 1, NULL);
    MT_CHECK(full == one, "terrain checksum at %d ranks %016" PRIx64 " != 1 rank %016" PRIx64,
             mt_size, full, one);
    if (mt_size >= 4) {
        snprintf(path, sizeof path, "%s/terrain-2", dir);
        uint64_t two = terrain_checksum(path, 2, NULL);
        MT_CHECK(full == two, "terrain checksum at 4 ranks != 2 ranks");
    }
    MT_CHECK(full == ref_checksum_part(r->current, 0, r->voxels),
             "checksum of the gathered terrain");
    /* The terrain is not trivial: air on top, several materials, solid ground at the bottom. */
    size_t seen[16] = {0};
    for (size_t i = 0; i < r->voxels; i++)
        seen[r->current[i] < 16 ? r->current[i] : 15]++;
    int kinds = 0;
    for (int m = 0; m < 16; m++)
        kinds += seen[m] > 0;
    MT_CHECK(kinds >= 4 && seen[0] > 0 && r->current[0] != 0, "terrain has %d materials", kinds);
}

/* ---- fill -------------------------------------------------------------------------- */

static uint16_t pattern(int64_t x, int64_t y, int64_t z)
{
    return (uint16_t)(100 + (x + 2 * y + 3 * z) % 11);
}

typedef struct {
    int64_t fail_x0; /* a chunk starting at this x fails (or -1) */
} fill_ctx;

static strata_status fill_pattern(const int64_t b[6], int edge, uint16_t *voxels, void *ctx,
                                  char *message)
{
    const fill_ctx *f = ctx;
    if (b[0] == f->fail_x0 && b[1] == 16 && b[2] == 16) {
        snprintf(message, STRATA_ERROR_MAX, "test refuses chunk at x %lld", (long long)b[0]);
        return STRATA_ERR_ARG;
    }
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++)
            for (int64_t x = b[0]; x < b[3]; x++)
                voxels[((z - b[2]) * edge + (y - b[1])) * edge + (x - b[0])] = pattern(x, y, z);
    return STRATA_OK;
}

static void test_fill(strata_world *w, reference *r, uint64_t *epoch)
{
    /* A pending update inside the box: the fill comes later in input order and wins. */
    if (mt_rank == 0)
        strata_stage(w, 10, 10, 10, 999);
    const int64_t box[6] = {5, 3, 2, 37, 50, 33};
    fill_ctx f = {-1};
    strata_status st = strata_fill(w, box, fill_pattern, &f);
    MT_CHECK(st == STRATA_OK, "fill: %s", strata_last_error(w));
    for (int64_t z = box[2]; z < box[5]; z++)
        for (int64_t y = box[1]; y < box[4]; y++)
            for (int64_t x = box[0]; x < box[3]; x++)
                r->current[ref_index(r, x, y, z)] = pattern(x, y, z);
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after fill");
    ref_check_chunks(w, mt_rank, mt_size, r, *epoch, "after fill, before commit");

    /* A box reaching past the world is clipped. */
    const int64_t edge_box[6] = {90, 60, 40, 1000, 1000, 1000};
    st = strata_fill(w, edge_box, fill_pattern, &f);
    MT_CHECK(st == STRATA_OK, "fill at the far corner: %s", strata_last_error(w));
    for (int64_t z = 40; z < DIMS[2]; z++)
        for (int64_t y = 60; y < DIMS[1]; y++)
            for (int64_t x = 90; x < DIMS[0]; x++)
                r->current[ref_index(r, x, y, z)] = pattern(x, y, z);
    st = strata_commit(w, NULL);
    MT_CHECK(st == STRATA_OK, "commit after fill: %s", strata_last_error(w));
    ref_commit(r, ++*epoch);
    ref_check_chunks(w, mt_rank, mt_size, r, *epoch, "after fill, committed");

    /* An empty box and a failing callback are refused on every rank and change nothing. */
    const int64_t empty[6] = {10, 10, 10, 10, 20, 20};
    MT_CHECK(strata_fill(w, empty, fill_pattern, &f) == STRATA_ERR_RANGE, "empty fill box");
    const int64_t outside[6] = {200, 0, 0, 300, 10, 10};
    MT_CHECK(strata_fill(w, outside, fill_pattern, &f) == STRATA_ERR_RANGE, "fill box outside");
    f.fail_x0 = 32;
    const int64_t big[6] = {0, 0, 0, DIMS[0], DIMS[1], DIMS[2]};
    st = strata_fill(w, big, fill_pattern, &f);
    MT_CHECK(st == STRATA_ERR_ARG, "failing fill returns %d", st);
    MT_CHECK(strstr(strata_last_error(w), "test refuses chunk at x 32") != NULL,
             "failing fill message: %s", strata_last_error(w));
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after a failing fill");
}

/* ---- compaction and rebalancing ------------------------------------------------------- */

static void some_commits(strata_world *w, reference *r, uint64_t *epoch, uint64_t round0, int count,
                         size_t per_rank)
{
    for (int c = 0; c < count; c++) {
        uint64_t counts[2] = {0, 0};
        strata_update *mine =
            ref_round(r, round0 + (uint64_t)c, mt_size, mt_rank, per_rank, counts);
        strata_batch_stats stats;
        MT_CHECK(strata_update_batch(w, mine, per_rank, &stats) == STRATA_OK &&
                     stats.applied == counts[0],
                 "batch: %s", strata_last_error(w));
        free(mine);
        MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
        ref_commit(r, ++*epoch);
    }
}

/* Segment files in the world's directory (rank 0 counts, every rank learns it). */
static uint64_t segment_files(const char *path)
{
    uint64_t n = 0;
    if (mt_rank == 0) {
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));)
            n += strncmp(e->d_name, "seg-", 4) == 0 || strncmp(e->d_name, "idx-", 4) == 0;
        if (d)
            closedir(d);
    }
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    return n;
}

static uint64_t live_segments(strata_world *w)
{
    strata_info info;
    MT_CHECK(strata_world_info(w, &info) == STRATA_OK, "info: %s", strata_last_error(w));
    return info.segments;
}

static void test_retire(const char *path, strata_world *w, reference *r, uint64_t *epoch)
{
    /* Every chunk rewritten: no older segment holds a live row any more. */
    fill_ctx f = {-1};
    const int64_t all[6] = {0, 0, 0, DIMS[0], DIMS[1], DIMS[2]};
    MT_CHECK(strata_fill(w, all, fill_pattern, &f) == STRATA_OK, "fill: %s", strata_last_error(w));
    for (int64_t z = 0; z < DIMS[2]; z++)
        for (int64_t y = 0; y < DIMS[1]; y++)
            for (int64_t x = 0; x < DIMS[0]; x++)
                r->current[ref_index(r, x, y, z)] = pattern(x, y, z);
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    ref_commit(r, ++*epoch);
    uint64_t live = live_segments(w), files = segment_files(path);
    MT_CHECK(live == 1 && files == 1,
             "after rewriting every chunk: %" PRIu64 " live segments, %" PRIu64
             " files (want 1 and 1)",
             live, files);
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after retiring segments");
    ref_check_chunks(w, mt_rank, mt_size, r, *epoch, "after retiring segments");

    /* A few voxels: the older segment still holds the other chunks. */
    some_commits(w, r, epoch, 290, 1, 1);
    live = live_segments(w), files = segment_files(path);
    MT_CHECK(live == 2 && files == 2, "after a small commit: %" PRIu64 " live, %" PRIu64 " files",
             live, files);

    /* A reindex adds an index segment and keeps the data segments; a second
     * one replaces every summary of the first, whose index segment is then
     * retired. */
    strata_reindex_stats rs;
    MT_CHECK(strata_reindex(w, 1, &rs) == STRATA_OK, "reindex: %s", strata_last_error(w));
    live = live_segments(w);
    MT_CHECK(live == 3, "after a reindex: %" PRIu64 " live segments (want 3)", live);
    MT_CHECK(strata_reindex(w, 1, &rs) == STRATA_OK, "reindex: %s", strata_last_error(w));
    live = live_segments(w), files = segment_files(path);
    MT_CHECK(live == 3 && files == 3,
             "after a second reindex: %" PRIu64 " live, %" PRIu64 " files (want 3 and 3)", live,
             files);
    MT_CHECK(rs.epoch == *epoch && rs.snapshot_epoch == *epoch && rs.applied == rs.chunks &&
                 rs.stale_after == 0,
             "a reindex publishes index segments, not commits: epoch %" PRIu64 " (want %" PRIu64
             "), %" PRIu64 " of %" PRIu64 " applied, %" PRIu64 " stale",
             rs.epoch, *epoch, rs.applied, rs.chunks, rs.stale_after);
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after two reindexes");
}

static void test_compact(strata_world *w, reference *r, uint64_t *epoch)
{
    some_commits(w, r, epoch, 300, 3, 800);
    some_commits(w, r, epoch, 310, 1, 1); /* leaves the older segments live */
    strata_info info;
    MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.segments >= 2,
             "segments before compaction");
    strata_commit_stats cs;
    strata_status st = strata_compact(w, &cs);
    MT_CHECK(st == STRATA_OK, "compact: %s", strata_last_error(w));
    MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.segments == 1 &&
                 info.epoch == cs.epoch,
             "after compaction: %" PRIu64 " segments, epoch %" PRIu64, info.segments, info.epoch);
    MT_CHECK(cs.epoch == *epoch + 1, "compaction is a commit (epoch %" PRIu64 ")", cs.epoch);
    *epoch = cs.epoch;
    /* Compaction changes no content: the chunk epochs keep their last change. */
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after compaction");
    ref_check_chunks(w, mt_rank, mt_size, r, *epoch, "after compaction");
}

static void test_rebalance(const char *path, strata_world **wp, reference *r, uint64_t *epoch)
{
    strata_world *w = *wp;
    /* Staged updates must be committed first. */
    strata_stage(w, 1, 1, 1, 1);
    MT_CHECK(strata_rebalance(w, STRATA_WEIGHT_BYTES, NULL, NULL) == STRATA_ERR_ARG,
             "rebalance with pending updates is refused");
    MT_CHECK(strata_rebalance(w, 77, NULL, NULL) != STRATA_OK, "unknown weight refused");
    uint64_t counts[2] = {0, 0};
    strata_update one = {.x = 1, .y = 1, .z = 1, .material = 1};
    ref_apply(r, &one, 1, counts);
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    ref_commit(r, ++*epoch);

    uint64_t before[2], after[2];
    strata_key_range(w, &before[0], &before[1]);
    strata_status st = strata_rebalance(w, STRATA_WEIGHT_BYTES, NULL, NULL);
    MT_CHECK(st == STRATA_OK, "rebalance: %s", strata_last_error(w));
    strata_key_range(w, &after[0], &after[1]);
    uint64_t *all = malloc(2 * (size_t)mt_size * sizeof *all);
    MPI_Allgather(after, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, MPI_COMM_WORLD);
    MT_CHECK(all[0] == 0 && all[2 * mt_size - 1] == UINT64_MAX, "rebalanced ranges span the keys");
    for (int q = 1; q < mt_size; q++)
        MT_CHECK(all[2 * q] == all[2 * q - 1], "rebalanced ranges of %d and %d touch", q - 1, q);
    ref_check_query_all(w, MPI_COMM_WORLD, r, r->current, "after rebalance");
    /* Updates after a rebalance go to the new owners. */
    some_commits(w, r, epoch, 400, 1, 800);
    ref_check_chunks(w, mt_rank, mt_size, r, *epoch, "after rebalance and commit");
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close");
    *wp = NULL;
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, wp);
    MT_CHECK(st == STRATA_OK, "reopen after rebalance: %s", strata_last_error(NULL));
    if (st)
        return;
    uint64_t reopened[2];
    strata_key_range(*wp, &reopened[0], &reopened[1]);
    MT_CHECK(reopened[0] == after[0] && reopened[1] == after[1], "the splitters were recorded");
    ref_check_query_all(*wp, MPI_COMM_WORLD, r, r->committed, "reopened after rebalance");
    ref_check_chunks(*wp, mt_rank, mt_size, r, *epoch, "reopened after rebalance");
    free(all);
}

/* ---- forced create ------------------------------------------------------------------- */

static void test_force(const char *path, const reference *old, uint64_t old_epoch)
{
    strata_config cfg;
    const int64_t small[3] = {40, 33, 20};
    config(&cfg, small);
    strata_world *w = NULL;
    strata_status st = strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, 0, &w);
    MT_CHECK(st == STRATA_ERR_EXISTS && w == NULL, "create over an existing world returns %d", st);
    MT_CHECK(strstr(strata_last_error(NULL), path) != NULL, "message names the path: %s",
             strata_last_error(NULL));
    st = strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    MT_CHECK(st == STRATA_OK, "forced create: %s", strata_last_error(NULL));
    if (st)
        return;
    reference fresh;
    ref_init(&fresh, small, EDGE);
    uint64_t counts[2] = {0, 0};
    strata_update *u = NULL;
    for (int q = 0; q < mt_size; q++) {
        /* Generated in rank order: conditions depend on the earlier ranks' batches. */
        strata_update *b = ref_batch(&fresh, 500, q, 500);
        ref_apply(&fresh, b, 500, counts);
        if (q == mt_rank)
            u = b;
        else
            free(b);
    }
    MT_CHECK(strata_update_batch(w, u, 500, NULL) == STRATA_OK, "batch: %s", strata_last_error(w));
    free(u);
    /* Until the first commit the old world is what readers open. */
    strata_world *reader = NULL;
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &reader);
    MT_CHECK(st == STRATA_OK, "open the old world: %s", strata_last_error(NULL));
    if (!st) {
        strata_info info;
        MT_CHECK(strata_world_info(reader, &info) == STRATA_OK && info.dims[0] == DIMS[0] &&
                     info.epoch == old_epoch,
                 "old world before the commit: dims %" PRId64 ", epoch %" PRIu64, info.dims[0],
                 info.epoch);
        ref_check_query_all(reader, MPI_COMM_WORLD, old, old->committed,
                            "old world before the forced commit");
    }
    st = strata_commit(w, NULL);
    MT_CHECK(st == STRATA_OK, "first commit of the forced world: %s", strata_last_error(w));
    ref_commit(&fresh, 1);
    /* A reader of the old world keeps its snapshot. */
    if (reader) {
        ref_check_query_all(reader, MPI_COMM_WORLD, old, old->committed,
                            "old snapshot after the swap");
        strata_world_close(reader);
    }
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close");
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "open the new world: %s", strata_last_error(NULL));
    if (!st) {
        strata_info info;
        MT_CHECK(strata_world_info(w, &info) == STRATA_OK && info.dims[0] == small[0] &&
                     info.epoch == 1,
                 "new world: dims %" PRId64 ", epoch %" PRIu64, info.dims[0], info.epoch);
        ref_check_query_all(w, MPI_COMM_WORLD, &fresh, fresh.committed, "forced world");
        ref_check_chunks(w, mt_rank, mt_size, &fresh, 1, "forced world");
        strata_world_close(w);
    }
    if (mt_rank == 0) {
        char side[4200];
        struct stat sb;
        snprintf(side, sizeof side, "%s.strata-new", path);
        MT_CHECK(stat(side, &sb) != 0, "%s left behind", side);
        snprintf(side, sizeof side, "%s.strata-old", path);
        MT_CHECK(stat(side, &sb) != 0, "%s left behind", side);
    }
    ref_free(&fresh);
}

/* ---- reindex beside a writer (issue 23) ------------------------------------------------ */

/* Rank 0 stages one voxel at each chunk's origin (chunks (cx, cy, 0) listed),
 * value v; then a collective commit. */
static void touch_chunks(strata_world *w, const int (*chunks)[2], int n, uint16_t v)
{
    for (int i = 0; mt_rank == 0 && i < n; i++)
        MT_CHECK(strata_stage(w, chunks[i][0] * EDGE + 1, chunks[i][1] * EDGE + 2, 3, v) ==
                     STRATA_OK,
                 "stage: %s", strata_last_error(w));
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
}

static strata_index_info index_info(strata_world *w, int build)
{
    strata_index_info ix;
    MT_CHECK(strata_index_status(w, build, &ix) == STRATA_OK, "index status: %s",
             strata_last_error(w));
    return ix;
}

static uint64_t fsck_problems(strata_world *w)
{
    uint64_t problems = 0;
    MT_CHECK(strata_fsck(w, NULL, NULL, &problems) == STRATA_OK, "fsck: %s", strata_last_error(w));
    return problems;
}

/*
 * The interleaving forced in-process (one call at a time, so deterministic):
 * writer commits (index deferred) -> reindex opens its snapshot -> writer
 * rewrites two of the stale chunks -> reindex publishes -> writer commits
 * again. The two rewritten chunks stay stale (their entries never serve), the
 * others are current, the writer's commits are all kept and its next commit
 * keeps the index segment; fsck checks every serving entry against the data,
 * and a full reindex afterwards finds the same index.
 */
static void test_live_reindex(const char *dir)
{
    char path[4096], terrain[4096];
    snprintf(path, sizeof path, "%s/live-world", dir);
    snprintf(terrain, sizeof terrain, "%s/terrain-%d", dir, mt_size);
    if (mt_rank == 0) {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", path, terrain, path);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot copy %s\n", terrain);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = 1;
    strata_world *w = NULL, *r = NULL, *other = NULL;
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, &opt, &w) == STRATA_OK,
             "open the writer: %s", strata_last_error(NULL));
    if (!w)
        return;
    const int first[7][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}, {6, 0}};
    touch_chunks(w, first, 7, 9);
    const uint64_t snapshot = w ? index_info(w, 0).data_epoch : 0;
    const uint64_t stale0 = index_info(w, 0).stale_chunks;
    MT_CHECK(stale0 >= 7, "deferred commit: %" PRIu64 " stale chunks (want >= 7)", stale0);

    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_INDEX, NULL, &r) == STRATA_OK,
             "open beside the writer for reindexing: %s", strata_last_error(NULL));
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_INDEX, NULL, &other) ==
                     STRATA_ERR_LOCKED &&
                 other == NULL,
             "a second reindex is refused with STRATA_ERR_LOCKED");
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &other) ==
                     STRATA_ERR_LOCKED &&
                 other == NULL,
             "a second writer is still refused with STRATA_ERR_LOCKED");
    if (!r) {
        strata_world_close(w);
        return;
    }
    /* The writer rewrites two of the chunks stale in the reindex's snapshot. */
    const int again[2][2] = {{0, 0}, {2, 0}};
    touch_chunks(w, again, 2, 11);
    strata_reindex_stats rs;
    MT_CHECK(strata_reindex(r, 0, &rs) == STRATA_OK, "reindex beside the writer: %s",
             strata_last_error(r));
    MT_CHECK(rs.snapshot_epoch == snapshot && rs.epoch == snapshot + 1 && rs.chunks == stale0 &&
                 rs.applied == stale0 - 2 && rs.stale_after == 2,
             "reindex of snapshot %" PRIu64 " published at %" PRIu64 ": %" PRIu64
             " summarised, %" PRIu64 " serve, %" PRIu64 " stale (want %" PRIu64 ", %" PRIu64
             ", %" PRIu64 ", %" PRIu64 ", 2)",
             rs.snapshot_epoch, rs.epoch, rs.chunks, rs.applied, rs.stale_after, snapshot,
             snapshot + 1, stale0, stale0 - 2);
    strata_index_info ix = index_info(r, 0);
    MT_CHECK(ix.index_epoch == snapshot && ix.stale_chunks == 2 && ix.index_segments == 1 &&
                 ix.rebuilt_at > 0,
             "after the reindex: index epoch %" PRIu64 ", %" PRIu64 " stale, %" PRIu64
             " index segments, rebuilt at %.0f",
             ix.index_epoch, ix.stale_chunks, ix.index_segments, ix.rebuilt_at);
    MT_CHECK(fsck_problems(r) == 0, "fsck after the reindex");
    /* The writer's next commit keeps what the reindex published. */
    const int third[1][2] = {{0, 1}};
    touch_chunks(w, third, 1, 12);
    ix = index_info(w, 0);
    MT_CHECK(ix.data_epoch == snapshot + 2 && ix.stale_chunks == 3 && ix.index_segments == 1,
             "the writer's next commit: epoch %" PRIu64 ", %" PRIu64 " stale (want 3), %" PRIu64
             " index segments (want 1)",
             ix.data_epoch, ix.stale_chunks, ix.index_segments);
    MT_CHECK(fsck_problems(w) == 0, "fsck after the writer's next commit");
    uint64_t hash = index_info(w, 1).hash;
    strata_world_close(r);
    r = NULL;
    /* A reader opening now sees every commit and the exact index. */
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &other) == STRATA_OK,
             "open a reader: %s", strata_last_error(NULL));
    if (other) {
        uint16_t v[3] = {0, 0, 0};
        strata_read_voxel(other, 0 * EDGE + 1, 2, 3, &v[0]);
        strata_read_voxel(other, 1 * EDGE + 1, 2, 3, &v[1]);
        strata_read_voxel(other, 0 * EDGE + 1, EDGE + 2, 3, &v[2]);
        MT_CHECK(v[0] == 11 && v[1] == 9 && v[2] == 12, "voxels %u %u %u (want 11 9 12)", v[0],
                 v[1], v[2]);
        ix = index_info(other, 1);
        MT_CHECK(ix.stale_chunks == 3 && ix.hash == hash,
                 "reader: %" PRIu64 " stale, index hash %016" PRIx64 " vs the writer's %016" PRIx64,
                 ix.stale_chunks, ix.hash, hash);
        strata_world_close(other);
    }
    /* A full reindex (the writer still open) finds the same index: exact. */
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_INDEX, NULL, &r) == STRATA_OK,
             "reopen for reindexing: %s", strata_last_error(NULL));
    if (r) {
        MT_CHECK(strata_reindex(r, 1, &rs) == STRATA_OK && rs.stale_after == 0, "full reindex: %s",
                 strata_last_error(r));
        ix = index_info(r, 1);
        MT_CHECK(ix.stale_chunks == 0 && ix.hash == hash && ix.index_epoch == ix.data_epoch,
                 "after a full reindex: %" PRIu64 " stale, hash %016" PRIx64 " (want %016" PRIx64
                 ")",
                 ix.stale_chunks, ix.hash, hash);
        MT_CHECK(fsck_problems(r) == 0, "fsck after the full reindex");
        strata_world_close(r);
    }
    touch_chunks(w, third, 1, 13);
    ix = index_info(w, 1);
    MT_CHECK(ix.stale_chunks == 1 && ix.index_segments == 1 && fsck_problems(w) == 0,
             "writer after the full reindex: %" PRIu64 " stale (want 1), %" PRIu64
             " index segments (want 1: the earlier one retired)",
             ix.stale_chunks, ix.index_segments);
    strata_world_close(w);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/world", dir);
    if (mt_rank == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/world* '%s'/terrain-*", dir, dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot clean %s\n", dir);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    reference r;
    ref_init(&r, DIMS, EDGE);
    test_terrain(dir, &r);

    /* Continue on the terrain world made at the full rank count. */
    char terrain[4096];
    snprintf(terrain, sizeof terrain, "%s/terrain-%d", dir, mt_size);
    snprintf(path, sizeof path, "%s/world", dir);
    if (mt_rank == 0) {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", terrain, path);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot copy %s\n", terrain);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    strata_options opt;
    strata_options_init(&opt);
    opt.cache_bytes = 16 * (size_t)EDGE * EDGE * EDGE * sizeof(uint16_t);
    strata_world *w = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, &opt, &w);
    MT_CHECK(st == STRATA_OK, "open: %s", strata_last_error(NULL));
    if (st)
        return mt_finish("mpi_maintenance");
    uint64_t epoch = 1;
    for (size_t i = 0; i < (size_t)(r.chunks[0] * r.chunks[1] * r.chunks[2]); i++)
        r.changed_epoch[i] = 0; /* unknown per chunk before the first tracked commit */
    test_fill(w, &r, &epoch);
    test_retire(path, w, &r, &epoch);
    test_compact(w, &r, &epoch);
    test_rebalance(path, &w, &r, &epoch);
    if (w)
        strata_world_close(w);
    test_force(path, &r, epoch);
    test_live_reindex(dir);
    ref_free(&r);
    return mt_finish("mpi_maintenance");
}
