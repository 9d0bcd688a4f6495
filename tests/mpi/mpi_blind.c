/*
 * mpi_blind.c: blind writes (issue 17) against a dense reference, property style.
 *
 * An unconditional update to a chunk that is not resident is logged, not read
 * (src/world.h, w->blind), and merged when the chunk is next read. A 72 x 56 x 40
 * world of 16-voxel chunks (partial chunks on the far faces; air, uniform and mixed
 * chunks) is opened with a clean-chunk cache of two chunks, so that nearly every
 * chunk is evicted between batches and most updates arrive blind. Rounds of random
 * batches (unconditional updates, some chunks hit past the log's bound, conditional
 * updates reading the running value) are interleaved with every kind of read:
 * routed point reads, box reads and an extraction (the flushed state), strata_read_voxel and
 * strata_load_chunk (the last commit), and commits with the index built in the
 * commit and deferred (the world reopened between them, its cache empty). Then a
 * full reindex equals the index of a world rebuilt from the same voxels, fsck is
 * clean, and compaction keeps every voxel. Fixed seeds; 1, 2 and 4 ranks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "mpi_common.h"
#include "world_reference.h"

#define ROUNDS     12
#define PER_RANK   600
#define EDGE       16
#define CACHE_SIZE (2 * EDGE * EDGE * EDGE * 2)

static const int64_t DIMS[3] = {72, 56, 40};

/* Initial content: per chunk air, uniform rock or a mix of five ids. */
static uint16_t initial_voxel(int64_t x, int64_t y, int64_t z)
{
    uint64_t c = (uint64_t)(x / EDGE + 7 * (y / EDGE) + 31 * (z / EDGE));
    uint64_t kind = (c * 0x9e3779b97f4a7c15ULL) >> 62;
    if (kind == 0)
        return 0;
    if (kind == 1)
        return 7;
    return (uint16_t)(1 + (x * 7 + y * 3 + z * 5 + (x ^ y) * (z & 3)) % 5);
}

static strata_status fill_initial(const int64_t b[6], int edge, uint16_t *v, void *ctx, char *msg)
{
    (void)ctx, (void)msg;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++)
            for (int64_t x = b[0]; x < b[3]; x++)
                v[((z - b[2]) * edge + (y - b[1])) * edge + (x - b[0])] = initial_voxel(x, y, z);
    return STRATA_OK;
}

/* Rank q's batch of round `round`: most updates unconditional and scattered, a quarter
 * packed into one chunk (past the blind log's bound of 256 changes in some rounds), and
 * some conditional (a chunk with one is read), half of those expecting the voxel's
 * current value. */
static strata_update *make_batch(const reference *r, uint64_t round, int q, size_t n)
{
    strata_update *u = calloc(n, sizeof *u);
    if (!u)
        MPI_Abort(MPI_COMM_WORLD, 2);
    uint64_t seed = 0xb11dULL * (round + 1) + (uint64_t)q * 7919;
    int64_t hot[3];
    ref_random_voxel(r, &seed, hot);
    for (size_t i = 0; i < n; i++) {
        int64_t v[3];
        uint64_t pick = mt_random(&seed);
        int packed = pick % 4 == 0 && round % 3 != 2;
        if (packed) {
            for (int a = 0; a < 3; a++) {
                int64_t lo = hot[a] / EDGE * EDGE,
                        span = r->dims[a] - lo < EDGE ? r->dims[a] - lo : EDGE;
                v[a] = lo + (int64_t)(mt_random(&seed) % (uint64_t)span);
            }
        } else {
            ref_random_voxel(r, &seed, v);
        }
        u[i].x = v[0], u[i].y = v[1], u[i].z = v[2];
        u[i].material = (uint16_t)(mt_random(&seed) % 9);
        /* conditional: a third of the packed chunk's updates in every other commit's cycle
         * (in the others it takes many blind writes), rarely one of the others */
        if (packed ? round % 6 < 3 && pick % 3 == 1 : pick % (uint64_t)(96 * mt_size) == 1) {
            u[i].has_expected = 1;
            u[i].expected = pick & 256 ? r->current[ref_index(r, v[0], v[1], v[2])]
                                       : (uint16_t)(mt_random(&seed) % 9);
        }
    }
    return u;
}

/* Every rank submits its batch; every rank replays all of them on the reference. */
static void run_round(strata_world *w, reference *r, uint64_t round)
{
    uint64_t counts[2] = {0, 0};
    strata_update *mine = ref_round_of(make_batch, r, round, mt_size, mt_rank, PER_RANK, counts);
    strata_batch_stats stats = {0};
    strata_status st = strata_update_batch(w, mine, PER_RANK, &stats);
    MT_CHECK(st == STRATA_OK, "round %" PRIu64 ": batch: %s", round, strata_last_error(w));
    MT_CHECK(stats.applied == counts[0] && stats.skipped == counts[1],
             "round %" PRIu64 ": applied %" PRIu64 " skipped %" PRIu64 ", reference %" PRIu64
             " / %" PRIu64,
             round, stats.applied, stats.skipped, counts[0], counts[1]);
    free(mine);
}

/* A random box per rank through strata_read_boxes against the flushed state. */
static void check_box(strata_world *w, const reference *r, uint64_t round)
{
    uint64_t seed = 0xb0c5ULL + round * 101 + (uint64_t)mt_rank;
    int64_t box[1][6];
    /* large boxes in every other commit's cycle, small (fewer chunks read) in the others */
    int64_t span = round % 6 < 3 ? r->dims[0] : 6;
    for (int a = 0; a < 3; a++) {
        int64_t p = (int64_t)(mt_random(&seed) % (uint64_t)r->dims[a]);
        int64_t q = p + (int64_t)(mt_random(&seed) % (uint64_t)span);
        q = q < r->dims[a] ? q : r->dims[a] - 1;
        box[0][a] = p < q ? p : q;
        box[0][a + 3] = (p < q ? q : p) + 1;
    }
    size_t n =
        (size_t)((box[0][3] - box[0][0]) * (box[0][4] - box[0][1]) * (box[0][5] - box[0][2]));
    uint16_t *out = malloc(n * sizeof *out);
    if (!out)
        MPI_Abort(MPI_COMM_WORLD, 2);
    uint16_t *const outs[1] = {out};
    strata_status st = strata_read_boxes(w, (const int64_t(*)[6])box, 1, 0, outs, NULL);
    MT_CHECK(st == STRATA_OK, "round %" PRIu64 ": read_boxes: %s", round, strata_last_error(w));
    int bad = 0;
    size_t i = 0;
    for (int64_t z = box[0][2]; !st && z < box[0][5]; z++)
        for (int64_t y = box[0][1]; y < box[0][4]; y++)
            for (int64_t x = box[0][0]; x < box[0][3]; x++, i++)
                if (out[i] != r->current[ref_index(r, x, y, z)] && bad++ == 0)
                    MT_CHECK(0,
                             "round %" PRIu64 ": box voxel (%" PRId64 ",%" PRId64 ",%" PRId64
                             ") reads %u, expected %u",
                             round, x, y, z, out[i], r->current[ref_index(r, x, y, z)]);
    free(out);
}

/* strata_read_voxel of random points against the last commit. */
static void check_committed_points(strata_world *w, const reference *r, uint64_t round)
{
    int64_t pts[64][3];
    uint64_t seed = 0x5eadULL + round * 13 + (uint64_t)mt_rank;
    for (int i = 0; i < 64; i++)
        ref_random_voxel(r, &seed, pts[i]);
    ref_check_read_voxels(w, r, (const int64_t(*)[3])pts, 64, "committed points");
}

/* strata_extract of the whole world (the flushed state, blind writes merged as chunks
 * are read) against the reference, read back by rank 0. */
static void check_extract(strata_world *w, const reference *r, const char *dir)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/blind-extract.h5", dir);
    const int64_t box[6] = {0, 0, 0, r->dims[0], r->dims[1], r->dims[2]};
    strata_status st = strata_extract(w, box, 0, out, NULL, NULL);
    MT_CHECK(st == STRATA_OK, "extract: %s", strata_last_error(w));
    if (st || mt_rank != 0)
        return;
    uint16_t *v = malloc(r->voxels * sizeof *v);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, "material", H5P_DEFAULT);
    herr_t rc = d < 0 || !v ? -1 : H5Dread(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    MT_CHECK(rc >= 0, "reading %s", out);
    size_t bad = 0;
    for (size_t i = 0; rc >= 0 && i < r->voxels; i++)
        bad += v[i] != r->current[i];
    MT_CHECK(bad == 0, "extraction: %zu voxels differ from the flushed state", bad);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    free(v);
}

static strata_world *open_world(const char *path, int defer_index)
{
    strata_options opt;
    strata_options_init(&opt);
    opt.cache_bytes = CACHE_SIZE;
    opt.defer_index = defer_index;
    strata_world *w = NULL;
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, &opt, &w) == STRATA_OK,
             "open: %s", strata_last_error(NULL));
    if (!w)
        MPI_Abort(MPI_COMM_WORLD, 2);
    return w;
}

/* The index's hash, after a reindex (full: 1, of the stale chunks: 0) unless reindex < 0. */
static uint64_t index_hash(strata_world *w, int reindex)
{
    strata_index_info info;
    if (reindex >= 0)
        MT_CHECK(strata_reindex(w, reindex, NULL) == STRATA_OK, "reindex: %s",
                 strata_last_error(w));
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK && info.stale_chunks == 0,
             "index status: %s", strata_last_error(w));
    return info.hash;
}

static void count_problem(const char *problem, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "rank %d: fsck: %s\n", mt_rank, problem);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[4096];
    mt_fresh_path(dir, "blind", path, sizeof path);

    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, DIMS, sizeof cfg.dims);
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    MT_CHECK(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w) ==
                 STRATA_OK,
             "create: %s", strata_last_error(NULL));
    if (!w)
        return mt_finish("mpi_blind");
    MT_CHECK(strata_fill(w, NULL, fill_initial, NULL) == STRATA_OK, "fill: %s",
             strata_last_error(w));
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    strata_world_close(w);

    reference r;
    ref_init(&r, DIMS, EDGE);
    for (int64_t z = 0; z < DIMS[2]; z++)
        for (int64_t y = 0; y < DIMS[1]; y++)
            for (int64_t x = 0; x < DIMS[0]; x++)
                r.current[ref_index(&r, x, y, z)] = initial_voxel(x, y, z);
    memcpy(r.committed, r.current, r.voxels * sizeof *r.current);

    /* Commits every third round; the index deferred at every other open. */
    int defer = 0;
    w = open_world(path, defer);
    uint64_t epoch = 0, blind_seen = 0;
    for (uint64_t round = 0; round < ROUNDS; round++) {
        run_round(w, &r, round);
        strata_info info;
        MT_CHECK(strata_world_info(w, &info) == STRATA_OK, "info: %s", strata_last_error(w));
        blind_seen += info.blind_chunks;
        /* every voxel read (merging every blind write) in every other commit's cycle only,
         * so that the others commit blind entries: with the index built (rounds 3-5, they
         * are decoded for their pyramid) and deferred (rounds 9-11: delta records straight
         * from their logs) */
        if (round % 6 == 1)
            ref_check_query_all(w, MPI_COMM_WORLD, &r, r.current, "routed reads of all voxels");
        if (round == 9) /* blind writes pending on most chunks: extraction merges them */
            check_extract(w, &r, dir);
        check_box(w, &r, round);
        check_committed_points(w, &r, round);
        if (round % 3 != 2)
            continue;
        strata_commit_stats cs = {0};
        MT_CHECK(strata_commit(w, &cs) == STRATA_OK, "round %" PRIu64 ": commit: %s", round,
                 strata_last_error(w));
        epoch = cs.epoch;
        ref_commit(&r, epoch);
        MT_CHECK(cs.delta_chunks > 0, "round %" PRIu64 ": no delta record among %" PRIu64 " chunks",
                 round, cs.chunks_written);
        ref_check_chunks(w, mt_rank, mt_size, &r, epoch, "committed chunks");
        check_committed_points(w, &r, round + 1000);
        if (round % 6 == 5) {
            strata_world_close(w);
            defer = !defer;
            w = open_world(path, defer);
        }
    }
    MT_CHECK(blind_seen > 0, "no blind write was ever logged");
    /* Uncommitted blind writes, then a close: they are dropped. */
    run_round(w, &r, ROUNDS);
    ref_rollback(&r);
    strata_world_close(w);
    w = open_world(path, 0);
    ref_check_query_all(w, MPI_COMM_WORLD, &r, r.committed, "after a close without commit");

    /* The index kept by commits (built in them, or deferred and caught up by a reindex)
     * equals a full reindex. */
    uint64_t kept = index_hash(w, 0), rebuilt = index_hash(w, 1);
    MT_CHECK(kept == rebuilt, "index %016" PRIx64 " != full reindex %016" PRIx64, kept, rebuilt);
    uint64_t problems = 1;
    MT_CHECK(strata_fsck(w, count_problem, NULL, &problems) == STRATA_OK && problems == 0,
             "fsck: %" PRIu64 " problems: %s", problems, strata_last_error(w));
    MT_CHECK(strata_compact(w, NULL) == STRATA_OK, "compact: %s", strata_last_error(w));
    ref_check_chunks(w, mt_rank, mt_size, &r, epoch + 2, "after compaction");
    MT_CHECK(index_hash(w, -1) == rebuilt, "index after compaction differs");
    strata_world_close(w);
    ref_free(&r);
    return mt_finish("mpi_blind");
}
