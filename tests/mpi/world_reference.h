/*
 * world_reference.h: a brute-force dense reference of a world for the MPI tests.
 *
 * Every rank keeps the whole world as a flat uint16 array [z][y][x] and replays
 * every rank's updates in (rank, input order), honouring conditional updates
 * against the running value. Two copies are kept: `current` (what flushes have
 * applied, seen by strata_query_points) and `committed` (what the last commit
 * made durable, seen by strata_read_voxel / strata_load_chunk / metadata).
 * The checks compare the library with these arrays, voxel by voxel.
 */
#ifndef STRATA_WORLD_REFERENCE_H
#define STRATA_WORLD_REFERENCE_H

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_common.h"
#include "strata.h"

typedef struct {
    int64_t dims[3];
    int edge;
    int64_t chunks[3];
    size_t voxels;
    uint16_t *current, *committed;
    uint64_t *changed_epoch; /* per chunk: the commit that last changed its content */
} reference;

static inline size_t ref_index(const reference *r, int64_t x, int64_t y, int64_t z)
{
    return (size_t)((z * r->dims[1] + y) * r->dims[0] + x);
}

static inline void ref_init(reference *r, const int64_t dims[3], int edge)
{
    memset(r, 0, sizeof *r);
    r->voxels = 1;
    for (int i = 0; i < 3; i++) {
        r->dims[i] = dims[i];
        r->chunks[i] = (dims[i] + edge - 1) / edge;
        r->voxels *= (size_t)dims[i];
    }
    r->edge = edge;
    r->current = calloc(r->voxels, sizeof *r->current);
    r->committed = calloc(r->voxels, sizeof *r->committed);
    r->changed_epoch =
        calloc((size_t)(r->chunks[0] * r->chunks[1] * r->chunks[2]), sizeof(uint64_t));
    if (!r->current || !r->committed || !r->changed_epoch) {
        fprintf(stderr, "rank %d: cannot allocate the reference\n", mt_rank);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

static inline void ref_free(reference *r)
{
    free(r->current);
    free(r->committed);
    free(r->changed_epoch);
    memset(r, 0, sizeof *r);
}

static inline size_t ref_chunk_index(const reference *r, int64_t cx, int64_t cy, int64_t cz)
{
    return (size_t)((cz * r->chunks[1] + cy) * r->chunks[0] + cx);
}

/** Replay one batch on `current`; adds to counts[0] applied, counts[1] skipped. */
static inline void ref_apply(reference *r, const strata_update *u, size_t n, uint64_t counts[2])
{
    for (size_t i = 0; i < n; i++) {
        size_t at = ref_index(r, u[i].x, u[i].y, u[i].z);
        if (u[i].has_expected && r->current[at] != u[i].expected) {
            counts[1]++;
            continue;
        }
        r->current[at] = u[i].material;
        counts[0]++;
    }
}

/** A commit at epoch: record which chunks changed, then committed = current. */
static inline void ref_commit(reference *r, uint64_t epoch)
{
    const int64_t e = r->edge;
    for (int64_t z = 0; z < r->dims[2]; z++)
        for (int64_t y = 0; y < r->dims[1]; y++)
            for (int64_t x = 0; x < r->dims[0]; x++) {
                size_t at = ref_index(r, x, y, z);
                if (r->current[at] != r->committed[at])
                    r->changed_epoch[ref_chunk_index(r, x / e, y / e, z / e)] = epoch;
            }
    memcpy(r->committed, r->current, r->voxels * sizeof *r->current);
}

/** Forget uncommitted changes (a close without commit, a failed commit). */
static inline void ref_rollback(reference *r)
{
    memcpy(r->current, r->committed, r->voxels * sizeof *r->current);
}

/** A random voxel; one in four lies on a face, edge or corner of the world. */
static inline void ref_random_voxel(const reference *r, uint64_t *seed, int64_t v[3])
{
    uint64_t bits = mt_random(seed);
    for (int i = 0; i < 3; i++) {
        v[i] = (int64_t)(mt_random(seed) % (uint64_t)r->dims[i]);
        if ((bits & 3) == 0) {
            int side = (int)((bits >> (2 + 2 * i)) & 3);
            if (side == 0)
                v[i] = 0;
            else if (side == 1)
                v[i] = r->dims[i] - 1;
        }
    }
}

/**
 * The batch rank `rank` submits in round `round`: n updates, about half of them
 * on a small set of hot voxels shared by all ranks (so later ranks overwrite
 * earlier ones), a quarter conditional with `expected` taken from `current` as
 * it is at generation time (so some apply and some are skipped).
 */
static inline strata_update *ref_batch(const reference *r, uint64_t round, int rank, size_t n)
{
    strata_update *u = calloc(n ? n : 1, sizeof *u);
    if (!u)
        MPI_Abort(MPI_COMM_WORLD, 2);
    uint64_t hot_seed = 0x5eed0000ULL + round,
             seed = round * 1000003ULL + (uint64_t)rank * 7919ULL + 17;
    int64_t hot[48][3];
    for (int h = 0; h < 48; h++)
        ref_random_voxel(r, &hot_seed, hot[h]);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = mt_random(&seed);
        int64_t v[3];
        if (bits & 1) {
            const int64_t *h = hot[(bits >> 8) % 48];
            v[0] = h[0], v[1] = h[1], v[2] = h[2];
        } else {
            ref_random_voxel(r, &seed, v);
        }
        u[i].x = v[0], u[i].y = v[1], u[i].z = v[2];
        /* Mostly few materials (so chunks repeat values), sometimes any id. */
        u[i].material =
            (bits >> 16) % 16 == 0 ? (uint16_t)(bits >> 32) : (uint16_t)((bits >> 20) % 6);
        if ((bits >> 24) % 4 == 0) {
            u[i].has_expected = 1;
            uint16_t now = r->current[ref_index(r, v[0], v[1], v[2])];
            u[i].expected = (bits >> 28) % 2 ? now : (uint16_t)((now + 1) % 6);
        }
    }
    return u;
}

/** A test's batch of n updates for rank `rank` in round `round` (as ref_batch). */
typedef strata_update *(*ref_batch_fn)(const reference *r, uint64_t round, int rank, size_t n);

/**
 * One round of `ranks` ranks: each rank's batch of n updates (made by `make`),
 * replayed into r in (rank, input order) with their counts added to counts[2].
 * Returns rank `mine`'s batch (free() it), or NULL when mine < 0 (a rank that only
 * replays).
 */
static inline strata_update *ref_round_of(ref_batch_fn make, reference *r, uint64_t round,
                                          int ranks, int mine, size_t n, uint64_t counts[2])
{
    strata_update *kept = NULL;
    for (int q = 0; q < ranks; q++) {
        strata_update *u = make(r, round, q, n);
        ref_apply(r, u, n, counts);
        if (q == mine)
            kept = u;
        else
            free(u);
    }
    return kept;
}

/** ref_round_of with ref_batch's batches. */
static inline strata_update *ref_round(reference *r, uint64_t round, int ranks, int mine, size_t n,
                                       uint64_t counts[2])
{
    return ref_round_of(ref_batch, r, round, ranks, mine, n, counts);
}

/** Position-weighted checksum of voxels [first, first + n) of the flat array. */
static inline uint64_t ref_checksum_part(const uint16_t *v, size_t first, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = ((uint64_t)(first + i) << 16 | v[i]) + 0x9e3779b97f4a7c15ULL;
        sum += mt_random(&s);
    }
    return sum;
}

/* ---- checks against the library ----------------------------------------------- */

/**
 * Every voxel through strata_query_points (collective over the world's
 * communicator comm): each rank asks a contiguous slice, in x-fastest order,
 * and compares with `expect`. Returns the number of mismatches on this rank.
 */
static inline int ref_check_query_all(strata_world *w, MPI_Comm comm, const reference *r,
                                      const uint16_t *expect, const char *what)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    size_t first = r->voxels * (size_t)rank / (size_t)size;
    size_t last = r->voxels * (size_t)(rank + 1) / (size_t)size;
    size_t n = last - first;
    int64_t(*pts)[3] = malloc((n ? n : 1) * sizeof *pts);
    uint16_t *out = malloc((n ? n : 1) * sizeof *out);
    if (!pts || !out)
        MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = 0; i < n; i++) {
        size_t at = first + i;
        pts[i][0] = (int64_t)(at % (size_t)r->dims[0]);
        pts[i][1] = (int64_t)(at / (size_t)r->dims[0] % (size_t)r->dims[1]);
        pts[i][2] = (int64_t)(at / ((size_t)r->dims[0] * (size_t)r->dims[1]));
    }
    int bad = 0;
    strata_status st = strata_query_points(w, (const int64_t(*)[3])pts, n, out);
    MT_CHECK(st == STRATA_OK, "%s: query_points: %s", what, strata_last_error(w));
    for (size_t i = 0; st == STRATA_OK && i < n; i++) {
        if (out[i] != expect[first + i]) {
            if (bad < 5)
                MT_CHECK(out[i] == expect[first + i],
                         "%s: voxel (%" PRId64 ",%" PRId64 ",%" PRId64 ") reads %u, expected %u",
                         what, pts[i][0], pts[i][1], pts[i][2], out[i], expect[first + i]);
            bad++;
        }
    }
    if (bad > 5)
        MT_CHECK(bad == 0, "%s: %d voxels differ", what, bad);
    free(pts);
    free(out);
    return bad;
}

/**
 * The committed state through strata_load_chunk and strata_chunk_metadata (not
 * collective): rank `rank` of `size` checks every size-th chunk against
 * r->committed. Cells beyond the world's edge must read as air.
 */
static inline int ref_check_chunks(strata_world *w, int rank, int size, const reference *r,
                                   uint64_t epoch, const char *what)
{
    const int64_t e = r->edge;
    uint16_t *buf = malloc((size_t)(e * e * e) * sizeof *buf);
    if (!buf)
        MPI_Abort(MPI_COMM_WORLD, 2);
    int bad = 0;
    size_t index = 0;
    for (int64_t cz = 0; cz < r->chunks[2]; cz++)
        for (int64_t cy = 0; cy < r->chunks[1]; cy++)
            for (int64_t cx = 0; cx < r->chunks[0]; cx++, index++) {
                if ((int)(index % (size_t)size) != rank)
                    continue;
                strata_status st = strata_load_chunk(w, cx, cy, cz, buf);
                MT_CHECK(st == STRATA_OK, "%s: load_chunk(%" PRId64 ",%" PRId64 ",%" PRId64 "): %s",
                         what, cx, cy, cz, strata_last_error(w));
                if (st) {
                    bad++;
                    continue;
                }
                int mismatches = 0, uniform = 1, any_set = 0;
                uint16_t first = r->committed[ref_index(r, cx * e, cy * e, cz * e)];
                for (int64_t z = 0; z < e; z++)
                    for (int64_t y = 0; y < e; y++)
                        for (int64_t x = 0; x < e; x++) {
                            int64_t gx = cx * e + x, gy = cy * e + y, gz = cz * e + z;
                            int inside = gx < r->dims[0] && gy < r->dims[1] && gz < r->dims[2];
                            uint16_t want = inside ? r->committed[ref_index(r, gx, gy, gz)] : 0;
                            uint16_t got = buf[(z * e + y) * e + x];
                            if (got != want && mismatches++ == 0)
                                MT_CHECK(got == want,
                                         "%s: load_chunk voxel (%" PRId64 ",%" PRId64 ",%" PRId64
                                         ") is %u, expected %u",
                                         what, gx, gy, gz, got, want);
                            if (inside && want != first)
                                uniform = 0;
                            if (inside && want)
                                any_set = 1;
                        }
                bad += mismatches;
                strata_chunk_meta meta;
                st = strata_chunk_metadata(w, cx, cy, cz, &meta);
                MT_CHECK(st == STRATA_OK, "%s: chunk_metadata: %s", what, strata_last_error(w));
                if (st) {
                    bad++;
                    continue;
                }
                uint64_t key;
                int owner = -1;
                strata_chunk_key(w, cx, cy, cz, &key);
                strata_owner(w, cx * e, cy * e, cz * e, &owner);
                int64_t want_bounds[6] = {cx * e,
                                          cy * e,
                                          cz * e,
                                          cx * e + e < r->dims[0] ? cx * e + e : r->dims[0],
                                          cy * e + e < r->dims[1] ? cy * e + e : r->dims[1],
                                          cz * e + e < r->dims[2] ? cz * e + e : r->dims[2]};
                int ok = meta.key == key && meta.owner == owner &&
                         !memcmp(meta.bounds, want_bounds, sizeof want_bounds);
                uint64_t changed = r->changed_epoch[ref_chunk_index(r, cx, cy, cz)];
                ok = ok && meta.epoch >= changed && meta.epoch <= epoch;
                if (meta.kind == STRATA_CHUNK_ABSENT)
                    ok = ok && !any_set && meta.epoch == 0 && meta.stored_bytes == 0;
                else if (meta.kind == STRATA_CHUNK_UNIFORM)
                    ok = ok && uniform && first == meta.uniform_value && meta.stored_bytes == 0;
                else
                    ok = ok && meta.kind == STRATA_CHUNK_DENSE && meta.stored_bytes > 0;
                MT_CHECK(ok,
                         "%s: metadata of chunk (%" PRId64 ",%" PRId64 ",%" PRId64 "): kind %d "
                         "value %u bytes %" PRIu64 " epoch %" PRIu64 " (changed at %" PRIu64
                         ", now %" PRIu64 ") owner %d/%d key %" PRIu64 "/%" PRIu64,
                         what, cx, cy, cz, meta.kind, meta.uniform_value, meta.stored_bytes,
                         meta.epoch, changed, epoch, meta.owner, owner, meta.key, key);
                bad += !ok;
            }
    free(buf);
    return bad;
}

/** strata_read_voxel on n points against r->committed (not collective). */
static inline int ref_check_read_voxels(strata_world *w, const reference *r,
                                        const int64_t (*pts)[3], size_t n, const char *what)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t got = 0xffff;
        strata_status st = strata_read_voxel(w, pts[i][0], pts[i][1], pts[i][2], &got);
        uint16_t want = r->committed[ref_index(r, pts[i][0], pts[i][1], pts[i][2])];
        if ((st || got != want) && bad++ < 5)
            MT_CHECK(st == STRATA_OK && got == want,
                     "%s: read_voxel (%" PRId64 ",%" PRId64 ",%" PRId64
                     ") = %u (status %d: %s), committed value %u",
                     what, pts[i][0], pts[i][1], pts[i][2], got, st, st ? strata_last_error(w) : "",
                     want);
    }
    return bad;
}

#endif
