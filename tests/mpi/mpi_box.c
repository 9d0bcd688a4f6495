/*
 * mpi_box.c: collective box reads and writes against a dense reference.
 *
 * A 100 x 70 x 45 world with 16-voxel chunks (partial chunks on every far face)
 * gets random routed updates (some committed, some only flushed). Then, with
 * fixed seeds, every rank:
 * - reads random boxes (anywhere, overlapping between ranks, some whole-chunk
 *   aligned) and compares them voxel by voxel with the flushed reference;
 * - writes random boxes (some conditional on what the reference holds, some
 *   covering whole chunks), which every rank replays on the reference in (rank,
 *   box order); the written and skipped counts and a full read must match;
 * - reads at LOD 1 and 2 after a commit, against a brute-force exact mode of
 *   the reference (the value strata_extract --lod writes);
 * - hands in a bad box on the last rank: every rank fails, naming it, and
 *   nothing changes;
 * - lists its own domain: the ranks' boxes tile the world, each chunk owned by
 *   the rank listing it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_common.h"
#include "world_reference.h"

static const int64_t DIMS[3] = {100, 70, 45};
static const int EDGE = 16;
#define BOXES 6

/* A random box of rank `rank` in round `round`: one in three chunk-aligned. */
static void random_box(const reference *r, uint64_t *seed, int64_t b[6])
{
    uint64_t bits = mt_random(seed);
    for (int a = 0; a < 3; a++) {
        int64_t d = r->dims[a];
        if (bits % 3 == 0) {
            int64_t chunks = (d + EDGE - 1) / EDGE;
            int64_t c0 = (int64_t)(mt_random(seed) % (uint64_t)chunks);
            int64_t c1 = c0 + 1 + (int64_t)(mt_random(seed) % 2);
            b[a] = c0 * EDGE;
            b[a + 3] = c1 * EDGE < d ? c1 * EDGE : d;
        } else {
            int64_t len = 1 + (int64_t)(mt_random(seed) % (uint64_t)(d < 40 ? d : 40));
            b[a] = (int64_t)(mt_random(seed) % (uint64_t)(d - len + 1));
            b[a + 3] = b[a] + len;
        }
    }
}

static size_t box_voxels(const int64_t b[6])
{
    return (size_t)((b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2]));
}

static uint16_t *alloc_values(size_t n)
{
    uint16_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        MPI_Abort(MPI_COMM_WORLD, 2);
    return v;
}

/* Compare a box read from the world with the reference array ref. */
static int compare_box(const reference *r, const uint16_t *ref, const int64_t b[6],
                       const uint16_t *got, const char *what)
{
    size_t i = 0;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++)
            for (int64_t x = b[0]; x < b[3]; x++, i++)
                if (got[i] != ref[ref_index(r, x, y, z)]) {
                    MT_CHECK(0, "%s: voxel %lld,%lld,%lld: got %u, want %u", what, (long long)x,
                             (long long)y, (long long)z, got[i], ref[ref_index(r, x, y, z)]);
                    return 1;
                }
    return 0;
}

static void check_reads(strata_world *w, const reference *r, uint64_t round, const char *what)
{
    int64_t boxes[BOXES][6];
    uint16_t *out[BOXES];
    uint64_t seed = 0xb0c5ULL + round * 977 + (uint64_t)mt_rank * 131;
    size_t n = (size_t)(round + mt_rank) % BOXES + 1;
    for (size_t i = 0; i < n; i++) {
        random_box(r, &seed, boxes[i]);
        out[i] = alloc_values(box_voxels(boxes[i]));
    }
    strata_box_io_stats stats;
    strata_status st =
        strata_read_boxes(w, (const int64_t(*)[6])boxes, n, 0, (uint16_t *const *)out, &stats);
    MT_CHECK(st == STRATA_OK, "%s: read_boxes: %s", what, strata_last_error(w));
    for (size_t i = 0; !st && i < n; i++)
        compare_box(r, r->current, boxes[i], out[i], what);
    for (size_t i = 0; i < n; i++)
        free(out[i]);
}

/* The boxes, data and expected arrays rank `rank` writes in round `round`;
 * expected (for odd boxes) is the reference with some voxels altered. */
typedef struct {
    size_t n;
    int64_t boxes[BOXES][6];
    uint16_t *data[BOXES], *expected[BOXES];
} write_set;

static void make_writes(const reference *r, uint64_t round, int rank, write_set *s)
{
    uint64_t seed = 0x3717e5ULL + round * 1009 + (uint64_t)rank * 7;
    s->n = (size_t)(round + (uint64_t)rank) % BOXES + 1;
    for (size_t i = 0; i < s->n; i++) {
        random_box(r, &seed, s->boxes[i]);
        size_t v = box_voxels(s->boxes[i]);
        s->data[i] = alloc_values(v);
        s->expected[i] = NULL;
        for (size_t k = 0; k < v; k++)
            s->data[i][k] = (uint16_t)(mt_random(&seed) % 7);
        if (i % 2) {
            s->expected[i] = alloc_values(v);
            const int64_t *b = s->boxes[i];
            size_t k = 0;
            for (int64_t z = b[2]; z < b[5]; z++)
                for (int64_t y = b[1]; y < b[4]; y++)
                    for (int64_t x = b[0]; x < b[3]; x++, k++)
                        s->expected[i][k] = mt_random(&seed) % 4 ? r->current[ref_index(r, x, y, z)]
                                                                 : (uint16_t)999;
        }
    }
}

static void free_writes(write_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]), free(s->expected[i]);
}

/* Replay a write set on the reference; counts[0] written, counts[1] skipped. */
static void replay_writes(reference *r, const write_set *s, uint64_t counts[2])
{
    for (size_t i = 0; i < s->n; i++) {
        const int64_t *b = s->boxes[i];
        size_t k = 0;
        for (int64_t z = b[2]; z < b[5]; z++)
            for (int64_t y = b[1]; y < b[4]; y++)
                for (int64_t x = b[0]; x < b[3]; x++, k++) {
                    size_t at = ref_index(r, x, y, z);
                    if (s->expected[i] && r->current[at] != s->expected[i][k]) {
                        counts[1]++;
                        continue;
                    }
                    r->current[at] = s->data[i][k];
                    counts[0]++;
                }
    }
}

static void check_writes(strata_world *w, reference *r, uint64_t round)
{
    write_set mine;
    make_writes(r, round, mt_rank, &mine);
    uint64_t counts[2] = {0, 0};
    /* Every rank's sets are generated from the reference before any is applied. */
    write_set *all = calloc((size_t)mt_size, sizeof *all);
    for (int q = 0; q < mt_size; q++)
        make_writes(r, round, q, &all[q]);
    for (int q = 0; q < mt_size; q++)
        replay_writes(r, &all[q], counts);
    strata_box_io_stats stats;
    strata_status st = strata_write_boxes(w, (const int64_t(*)[6])mine.boxes, mine.n,
                                          (const uint16_t *const *)mine.data,
                                          (const uint16_t *const *)mine.expected, &stats);
    MT_CHECK(st == STRATA_OK, "write_boxes round %llu: %s", (unsigned long long)round,
             strata_last_error(w));
    MT_CHECK(stats.written == counts[0] && stats.skipped == counts[1],
             "round %llu: written %llu skipped %llu, want %llu %llu", (unsigned long long)round,
             (unsigned long long)stats.written, (unsigned long long)stats.skipped,
             (unsigned long long)counts[0], (unsigned long long)counts[1]);
    for (int q = 0; q < mt_size; q++)
        free_writes(&all[q]);
    free(all);
    free_writes(&mine);
    /* The whole world, read by rank 0 as one box; the others read random boxes. */
    int64_t whole[1][6] = {{0, 0, 0, r->dims[0], r->dims[1], r->dims[2]}};
    uint16_t *out = alloc_values(r->voxels);
    st = strata_read_boxes(w, (const int64_t(*)[6])whole, mt_rank == 0, 0, &out, NULL);
    MT_CHECK(st == STRATA_OK, "read after write: %s", strata_last_error(w));
    if (!st && mt_rank == 0)
        compare_box(r, r->current, whole[0], out, "whole world after box writes");
    free(out);
    check_reads(w, r, round + 100, "random boxes after box writes");
}

/* Exact mode of the block of 2^level voxels at cell c (inside the world), ties
 * to the smallest id. */
static uint16_t brute_mode(const reference *r, const uint16_t *v, int level, const int64_t c[3])
{
    static uint32_t hist[65536];
    int64_t lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
        lo[a] = c[a] << level;
        hi[a] = lo[a] + ((int64_t)1 << level);
        hi[a] = hi[a] < r->dims[a] ? hi[a] : r->dims[a];
    }
    for (int64_t z = lo[2]; z < hi[2]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++)
            for (int64_t x = lo[0]; x < hi[0]; x++)
                hist[v[ref_index(r, x, y, z)]]++;
    uint16_t best = 0;
    uint32_t count = 0;
    for (int64_t z = lo[2]; z < hi[2]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++)
            for (int64_t x = lo[0]; x < hi[0]; x++) {
                uint16_t m = v[ref_index(r, x, y, z)];
                if (hist[m] > count || (hist[m] == count && m < best))
                    best = m, count = hist[m];
            }
    for (int64_t z = lo[2]; z < hi[2]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++)
            for (int64_t x = lo[0]; x < hi[0]; x++)
                hist[v[ref_index(r, x, y, z)]] = 0;
    return best;
}

static void check_lod_reads(strata_world *w, const reference *r)
{
    for (int level = 1; level <= 2; level++) {
        int64_t boxes[BOXES][6];
        uint16_t *out[BOXES];
        uint64_t seed = 0x10dULL + (uint64_t)level * 17 + (uint64_t)mt_rank;
        size_t n = 3;
        for (size_t i = 0; i < n; i++) {
            random_box(r, &seed, boxes[i]);
            out[i] = alloc_values(box_voxels(boxes[i]));
        }
        strata_status st = strata_read_boxes(w, (const int64_t(*)[6])boxes, n, level,
                                             (uint16_t *const *)out, NULL);
        MT_CHECK(st == STRATA_OK, "LOD %d read: %s", level, strata_last_error(w));
        for (size_t i = 0; !st && i < n; i++) {
            const int64_t *b = boxes[i];
            size_t k = 0;
            int bad = 0;
            for (int64_t z = b[2] >> level; !bad && z <= (b[5] - 1) >> level; z++)
                for (int64_t y = b[1] >> level; !bad && y <= (b[4] - 1) >> level; y++)
                    for (int64_t x = b[0] >> level; !bad && x <= (b[3] - 1) >> level; x++, k++) {
                        const int64_t c[3] = {x, y, z};
                        uint16_t want = brute_mode(r, r->committed, level, c);
                        if (out[i][k] != want) {
                            MT_CHECK(0, "LOD %d cell %lld,%lld,%lld: got %u, want %u", level,
                                     (long long)x, (long long)y, (long long)z, out[i][k], want);
                            bad = 1;
                        }
                    }
        }
        for (size_t i = 0; i < n; i++)
            free(out[i]);
    }
}

static void check_bad_box(strata_world *w, const reference *r)
{
    int64_t boxes[2][6] = {{0, 0, 0, 8, 8, 8}, {0, 0, 0, 8, 8, 8}};
    if (mt_rank == mt_size - 1)
        boxes[1][3] = r->dims[0] + 1; /* one voxel past the world */
    uint16_t *data[2] = {alloc_values(512), alloc_values(512)};
    for (int i = 0; i < 512; i++)
        data[0][i] = data[1][i] = 5;
    strata_status st = strata_write_boxes(w, (const int64_t(*)[6])boxes, 2,
                                          (const uint16_t *const *)data, NULL, NULL);
    MT_CHECK(st == STRATA_ERR_RANGE, "bad box accepted: %d", (int)st);
    MT_CHECK(strstr(strata_last_error(w), "box 1") != NULL, "message does not name box 1: %s",
             strata_last_error(w));
    st = strata_read_boxes(w, (const int64_t(*)[6])boxes, 2, 0, data, NULL);
    MT_CHECK(st == STRATA_ERR_RANGE, "bad box read accepted: %d", (int)st);
    free(data[0]), free(data[1]);
    check_reads(w, r, 4242, "after refused box writes");
}

static void check_domain(strata_world *w, const reference *r)
{
    for (int64_t cap = 0; cap <= 2; cap += 2) {
        int64_t(*boxes)[6] = NULL;
        size_t n = 0;
        strata_status st = strata_domain_boxes(w, cap, &boxes, &n);
        MT_CHECK(st == STRATA_OK, "domain boxes: %s", strata_last_error(w));
        uint8_t *cover = calloc(r->voxels, 1);
        for (size_t i = 0; cover && i < n; i++) {
            const int64_t *b = boxes[i];
            if (cap)
                for (int a = 0; a < 3; a++)
                    MT_CHECK(b[a + 3] - b[a] <= cap * EDGE, "box %zu wider than %lld chunks", i,
                             (long long)cap);
            for (int64_t z = b[2]; z < b[5]; z++)
                for (int64_t y = b[1]; y < b[4]; y++)
                    for (int64_t x = b[0]; x < b[3]; x++)
                        cover[ref_index(r, x, y, z)]++;
            int owner = -1;
            strata_owner(w, b[0], b[1], b[2], &owner);
            MT_CHECK(owner == mt_rank, "domain box %zu at %lld,%lld,%lld is rank %d's", i,
                     (long long)b[0], (long long)b[1], (long long)b[2], owner);
        }
        MPI_Allreduce(MPI_IN_PLACE, cover, (int)r->voxels, MPI_UINT8_T, MPI_SUM, MPI_COMM_WORLD);
        size_t wrong = 0;
        for (size_t v = 0; cover && v < r->voxels; v++)
            wrong += cover[v] != 1;
        MT_CHECK(cover && wrong == 0, "%zu voxels covered other than once (cap %lld)", wrong,
                 (long long)cap);
        free(cover);
        free(boxes);
    }
}

/* A box written back unchanged stores nothing at the next commit; one that
 * changes few voxels of a chunk is committed as delta records (its changes
 * logged); a reopened world reads both (checked by the caller's reopen). */
static void check_small_writes(strata_world *w, reference *r)
{
    write_set all[2][8];
    int sets = mt_size < 8 ? mt_size : 8;
    for (int pass = 0; pass < 2; pass++) {
        /* Every rank's boxes are made from the reference before any is replayed. */
        for (int q = 0; q < sets; q++) {
            write_set *s = &all[pass][q];
            uint64_t seed = 0x5a11ULL + (uint64_t)q * 31 + (uint64_t)pass * 7;
            s->n = 1;
            random_box(r, &seed, s->boxes[0]);
            const int64_t *b = s->boxes[0];
            s->data[0] = alloc_values(box_voxels(b));
            s->expected[0] = NULL;
            size_t k = 0;
            for (int64_t z = b[2]; z < b[5]; z++)
                for (int64_t y = b[1]; y < b[4]; y++)
                    for (int64_t x = b[0]; x < b[3]; x++, k++) {
                        uint16_t v = r->current[ref_index(r, x, y, z)];
                        s->data[0][k] = pass && mt_random(&seed) % 97 == 0 ? (uint16_t)(v + 1) : v;
                    }
        }
        uint64_t counts[2] = {0, 0};
        for (int q = 0; q < sets; q++)
            replay_writes(r, &all[pass][q], counts);
        write_set *mine = mt_rank < sets ? &all[pass][mt_rank] : NULL;
        strata_box_io_stats stats;
        strata_status st =
            strata_write_boxes(w, (const int64_t(*)[6])(mine ? mine->boxes : NULL), mine ? 1 : 0,
                               (const uint16_t *const *)(mine ? mine->data : NULL), NULL, &stats);
        MT_CHECK(st == STRATA_OK, "small writes, pass %d: %s", pass, strata_last_error(w));
        MT_CHECK(stats.written == counts[0], "small writes: written %llu, want %llu",
                 (unsigned long long)stats.written, (unsigned long long)counts[0]);
        strata_commit_stats cs = {0};
        st = strata_commit(w, &cs);
        MT_CHECK(st == STRATA_OK, "commit after small writes: %s", strata_last_error(w));
        if (pass == 0)
            MT_CHECK(cs.chunks_written == 0, "boxes written back unchanged stored %llu chunks",
                     (unsigned long long)cs.chunks_written);
        else
            MT_CHECK(cs.chunks_written > 0 && cs.delta_chunks > 0,
                     "small box writes: %llu chunks stored, %llu as deltas",
                     (unsigned long long)cs.chunks_written, (unsigned long long)cs.delta_chunks);
        if (cs.epoch)
            ref_commit(r, cs.epoch);
        for (int q = 0; q < sets; q++)
            free_writes(&all[pass][q]);
        check_reads(w, r, 200 + (uint64_t)pass, "random boxes after small box writes");
    }
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[512];
    mt_fresh_path(dir, "box_world", path, sizeof path);
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, DIMS, sizeof cfg.dims);
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    strata_status st = strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, 0, &w);
    MT_CHECK(st == STRATA_OK, "create: %s", strata_last_error(w));
    if (st)
        return mt_finish("mpi_box");
    reference r;
    ref_init(&r, DIMS, EDGE);
    uint64_t counts[2] = {0, 0};
    for (uint64_t round = 0; round < 3; round++) {
        /* Every rank's batch is made from the reference before any is replayed. */
        strata_update **all = calloc((size_t)mt_size, sizeof *all);
        for (int q = 0; q < mt_size; q++)
            all[q] = ref_batch(&r, round, q, 4000);
        for (int q = 0; q < mt_size; q++)
            ref_apply(&r, all[q], 4000, counts);
        st = strata_update_batch(w, all[mt_rank], 4000, NULL);
        MT_CHECK(st == STRATA_OK, "batch: %s", strata_last_error(w));
        for (int q = 0; q < mt_size; q++)
            free(all[q]);
        free(all);
        if (round == 1) {
            strata_commit_stats cs;
            st = strata_commit(w, &cs);
            MT_CHECK(st == STRATA_OK, "commit: %s", strata_last_error(w));
            ref_commit(&r, cs.epoch);
        }
        check_reads(w, &r, round, "random boxes, flushed state");
    }
    for (uint64_t round = 0; round < 4; round++)
        check_writes(w, &r, round);
    check_bad_box(w, &r);
    strata_commit_stats cs;
    st = strata_commit(w, &cs);
    MT_CHECK(st == STRATA_OK, "commit: %s", strata_last_error(w));
    ref_commit(&r, cs.epoch);
    check_lod_reads(w, &r);
    check_domain(w, &r);
    check_small_writes(w, &r);
    /* A reopened world reads the same boxes from the store, at another rank count too. */
    st = strata_world_close(w);
    MT_CHECK(st == STRATA_OK, "close: %s", strata_last_error(NULL));
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "reopen: %s", strata_last_error(NULL));
    if (!st) {
        check_reads(w, &r, 77, "reopened");
        strata_world_close(w);
    }
    ref_free(&r);
    return mt_finish("mpi_box");
}
