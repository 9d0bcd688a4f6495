/* box.c: collective dense box reads and writes, and a rank's own domain.
 *
 * A box is cut into pieces, one per chunk it meets (the box clipped to the
 * chunk), visited in (box, z, y, x of the chunk) order. Only a chunk's owner
 * touches its data:
 * - a read sends the owner (key, piece) requests with one MPI_Alltoallv; the
 *   owner answers each with the piece, dense or as one uniform value, in the
 *   order asked, and the reader places the answers by walking its pieces again
 *   in the same order. Pieces of own chunks are copied directly.
 * - a write sends each piece whole (a header, the voxels, and for a
 *   conditional box the expected voxels) to the owner, which applies what it
 *   holds in rank order (the pieces of ranks below it, its own from the
 *   caller's arrays, then those of ranks above), so the last write wins in
 *   (rank, box order). As in a flush, every touched chunk is made resident and
 *   dense first and the ranks agree on that before any voxel changes; a chunk a
 *   non-conditional piece covers whole that is not resident is not read at all:
 *   it starts as a fresh buffer (and is dropped again if the agreement fails).
 *   Phase one also compares each piece with its chunk: a chunk no piece changes
 *   stays clean (not written again), and a changed chunk logs its changes
 *   (phase two) so that a small change is committed as a delta record.
 * Synchronisation is kept to a few collectives per call, as a rank descheduled
 * on a loaded node makes every other rank wait at each one: a status travels
 * with the byte counts of each exchange, and the ranks agree on a message
 * only when one failed.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "delta.h"
#include "morton.h"
#include "partition.h"
#include "router.h"
#include "world.h"

/* ---- pieces ------------------------------------------------------------------- */

/* The part of box `box` inside the chunk with key `key`, world coordinates. */
typedef struct {
    uint64_t key;
    int64_t b[6];
} box_piece;

/* Calls fn for every piece of box, in z, y, x order of the chunks. */
typedef strata_status (*piece_fn)(strata_world *w, size_t box, const box_piece *p, void *ctx);

static strata_status each_piece(strata_world *w, size_t index, const int64_t box[6], piece_fn fn,
                                void *ctx)
{
    const int bits = w->edge_bits;
    const int64_t edge = w->edge;
    box_piece p;
    for (int64_t cz = box[2] >> bits; cz <= (box[5] - 1) >> bits; cz++)
        for (int64_t cy = box[1] >> bits; cy <= (box[4] - 1) >> bits; cy++)
            for (int64_t cx = box[0] >> bits; cx <= (box[3] - 1) >> bits; cx++) {
                const int64_t c[3] = {cx, cy, cz};
                p.key = world_key(w, (uint64_t)cx, (uint64_t)cy, (uint64_t)cz);
                for (int a = 0; a < 3; a++) {
                    int64_t lo = c[a] << bits, hi = lo + edge;
                    p.b[a] = lo > box[a] ? lo : box[a];
                    p.b[a + 3] = hi < box[a + 3] ? hi : box[a + 3];
                }
                strata_status st = fn(w, index, &p, ctx);
                if (st)
                    return st;
            }
    return STRATA_OK;
}

static uint64_t piece_voxels(const int64_t b[6])
{
    return (uint64_t)(b[3] - b[0]) * (uint64_t)(b[4] - b[1]) * (uint64_t)(b[5] - b[2]);
}

/* Copy a row of n bytes. Rows of small boxes (2 to 32 bytes) are the usual
 * case of a simulation's halos: they are copied as two overlapping words
 * instead of through a call to memcpy, whose cost is then most of the row's. */
static inline void copy_row(uint8_t *to, const uint8_t *from, size_t n)
{
    if (n >= 16 && n <= 32) {
        uint64_t w[4];
        memcpy(w, from, 16), memcpy(w + 2, from + n - 16, 16);
        memcpy(to, w, 16), memcpy(to + n - 16, w + 2, 16);
    } else if (n >= 8 && n < 16) {
        uint64_t w[2];
        memcpy(w, from, 8), memcpy(w + 1, from + n - 8, 8);
        memcpy(to, w, 8), memcpy(to + n - 8, w + 1, 8);
    } else if (n >= 4 && n < 8) { /* a halo's 2 or 3 voxels from the next chunk */
        uint32_t w[2];
        memcpy(w, from, 4), memcpy(w + 1, from + n - 4, 4);
        memcpy(to, w, 4), memcpy(to + n - 4, w + 1, 4);
    } else if (n == 2) {
        memcpy(to, from, 2);
    } else {
        memcpy(to, from, n);
    }
}

/* Copy piece b between a chunk's C^3 voxels (chunk corner c0) and a dense array
 * with origin o[3] and row/plane strides sy, sz, in either direction. */
static void copy_piece(const int64_t b[6], int64_t edge, const int64_t c0[3], uint16_t *chunk_v,
                       uint16_t *array, const int64_t o[3], int64_t sy, int64_t sz, int to_array)
{
    const size_t row = (size_t)(b[3] - b[0]) * sizeof *array;
    const int64_t rows = b[4] - b[1];
    for (int64_t z = b[2]; z < b[5]; z++) {
        uint16_t *cv = chunk_v + ((z - c0[2]) * edge + (b[1] - c0[1])) * edge + (b[0] - c0[0]);
        uint16_t *av = array + (z - o[2]) * sz + (b[1] - o[1]) * sy + (b[0] - o[0]);
        for (int64_t y = 0; y < rows; y++, cv += edge, av += sy)
            if (to_array)
                copy_row((uint8_t *)av, (const uint8_t *)cv, row);
            else
                copy_row((uint8_t *)cv, (const uint8_t *)av, row);
    }
}

/* Set piece b of a dense array (origin o, strides sy, sz) to one value: the
 * first row filled, the others copied from it. */
static void set_piece(const int64_t b[6], uint16_t value, uint16_t *array, const int64_t o[3],
                      int64_t sy, int64_t sz)
{
    const int64_t width = b[3] - b[0];
    const uint16_t *first = NULL;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++) {
            uint16_t *av = array + (z - o[2]) * sz + (y - o[1]) * sy + (b[0] - o[0]);
            if (first) {
                memcpy(av, first, (size_t)width * sizeof *av);
                continue;
            }
            for (int64_t i = 0; i < width; i++)
                av[i] = value;
            first = av;
        }
}

/* ---- arguments --------------------------------------------------------------- */

/* Box i must be non-empty and inside the world. Local. */
static strata_status check_boxes(strata_world *w, const char *fn, const int64_t (*boxes)[6],
                                 size_t n)
{
    const int64_t *d = w->committed.dims;
    if (n && !boxes)
        return world_null_argument(w, fn, "boxes");
    for (size_t i = 0; i < n; i++) {
        const int64_t *b = boxes[i];
        int bad = 0;
        for (int a = 0; a < 3; a++)
            bad |= b[a] < 0 || b[a] >= b[a + 3] || b[a + 3] > d[a];
        if (bad)
            return WORLD_FAIL(w, STRATA_ERR_RANGE,
                              "%s: box %zu (%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                              ",%" PRId64 ",%" PRId64 ") on rank %d is empty or not inside "
                              "the world (%" PRId64 " x %" PRId64 " x %" PRId64 ")",
                              fn, i, b[0], b[1], b[2], b[3], b[4], b[5], w->rank, d[0], d[1], d[2]);
    }
    return STRATA_OK;
}

/* ---- byte exchange ----------------------------------------------------------- */

/* The message buffers of a call are the world's routing buffers (w->route), kept
 * between calls as for flushes and point queries: touching fresh memory costs
 * more than copying the voxels into it. By role: */
enum { BOX_SEND, BOX_RECV, BOX_ANSWERS, BOX_REPLIES };

/* Buffer `which` with room for `bytes`, or NULL (a message naming what failed is set). */
static uint8_t *box_buffer(strata_world *w, int which, uint64_t bytes, const char *what)
{
    uint8_t *b = route_scratch_get(&w->route, which, (size_t)bytes);
    if (!b)
        WORLD_FAIL(w, STRATA_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes", what, bytes);
    return b;
}

/* Displacements of per-rank byte counts, refused beyond MPI's int counts. Local. */
static strata_status mpi_counts(strata_world *w, const uint64_t *bytes, int *counts, int *displs,
                                uint64_t *total)
{
    *total = 0;
    for (int r = 0; r < w->size; r++) {
        if (*total + bytes[r] > INT_MAX)
            return WORLD_FAIL(w, STRATA_ERR_OVERFLOW,
                              "box I/O: more than 2 GiB to or from rank %d in one call; "
                              "read or write fewer or smaller boxes per call",
                              w->rank);
        counts[r] = (int)bytes[r];
        displs[r] = (int)*total;
        *total += bytes[r];
    }
    return STRATA_OK;
}

/* Per-call scratch of box I/O, allocated before the call's first agreement
 * (a rank that cannot allocate it says so there, not inside a collective). */
typedef struct {
    uint64_t *bytes; /* 4 per rank: byte counts by role */
    int *ints;       /* 8 per rank: MPI counts and displacements, (count, failed) pairs */
} box_scratch;

static strata_status scratch_alloc(strata_world *w, box_scratch *s)
{
    s->bytes = strata_calloc((size_t)w->size * 4, sizeof *s->bytes);
    s->ints = strata_malloc((size_t)w->size * 8 * sizeof *s->ints);
    if (!s->bytes || !s->ints)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "box I/O: no memory for the counts of %d ranks",
                          w->size);
    return STRATA_OK;
}

static void scratch_free(box_scratch *s)
{
    free(s->bytes), free(s->ints);
}

/* Send send_bytes[r] bytes of send (packed by rank) to every rank r; *recv
 * (the world's buffer `which`) receives recv_bytes[r] from each, in rank order.
 * `local` is this rank's status so far: it travels with the byte counts (one
 * MPI_Alltoall of (count, failed) pairs, so every rank sees every rank's flag)
 * and only when some rank failed do the ranks agree on its message. Returns
 * the agreed status; an MPI error of the data exchange itself is this rank's
 * alone, in *late, for the call's next agreement. Collective. */
static strata_status exchange_bytes(strata_world *w, strata_status local, const uint8_t *send,
                                    const uint64_t *send_bytes, int which, uint8_t **recv,
                                    uint64_t *recv_bytes, int *ints, strata_status *late)
{
    const int P = w->size;
    int *sc = ints, *sd = ints + P, *rc = ints + 2 * P, *rd = ints + 3 * P;
    int *pairs_out = ints + 4 * P, *pairs_in = ints + 6 * P;
    uint64_t total = 0;
    *recv = NULL;
    strata_status st = local;
    if (!st)
        st = mpi_counts(w, send_bytes, sc, sd, &total);
    for (int r = 0; r < P; r++)
        pairs_out[2 * r] = st ? 0 : sc[r], pairs_out[2 * r + 1] = st != STRATA_OK;
    int failed = 0;
    strata_status mpi =
        error_mpi(&w->error, MPI_Alltoall(pairs_out, 2, MPI_INT, pairs_in, 2, MPI_INT, w->comm),
                  "box I/O: MPI_Alltoall");
    if (!st)
        st = mpi;
    for (int r = 0; r < P; r++)
        failed |= pairs_in[2 * r + 1];
    if (failed || st)
        return world_agree(w, st);
    for (int r = 0; r < P; r++)
        recv_bytes[r] = (uint64_t)pairs_in[2 * r];
    st = mpi_counts(w, recv_bytes, rc, rd, &total);
    if (!st && !(*recv = box_buffer(w, which, total, "box I/O")))
        st = STRATA_ERR_NOMEM;
    st = world_agree(w, st);
    *late = STRATA_OK;
    if (!st)
        *late = error_mpi(&w->error,
                          MPI_Alltoallv(send, sc, sd, MPI_BYTE, *recv, rc, rd, MPI_BYTE, w->comm),
                          "box I/O: MPI_Alltoallv");
    if (st || *late)
        *recv = NULL;
    return st;
}

/* Bytes sent to other ranks plus bytes received from them. */
static uint64_t remote_bytes(const strata_world *w, const uint64_t *sent, const uint64_t *got)
{
    uint64_t n = 0;
    for (int r = 0; r < w->size; r++)
        n += r == w->rank ? 0 : sent[r] + got[r];
    return n;
}

/* Sum the counters of stats over all ranks, with the number of ranks that
 * failed: when any did (an MPI error of the call's last exchange, or the
 * call's own failure), the ranks agree on its message. Collective. */
static strata_status sum_stats(strata_world *w, strata_status st, strata_box_io_stats *stats,
                               double start)
{
    uint64_t local[8] = {stats->boxes,  stats->voxels,       stats->written,  stats->skipped,
                         stats->pieces, stats->remote_bytes, stats->replaced, st != STRATA_OK};
    uint64_t total[8] = {0};
    strata_status s2 =
        error_mpi(&w->error, MPI_Allreduce(local, total, 8, MPI_UINT64_T, MPI_SUM, w->comm),
                  "box I/O: summing statistics");
    if (!st)
        st = s2;
    if (total[7])
        st = world_agree(w, st);
    stats->boxes = total[0], stats->voxels = total[1], stats->written = total[2];
    stats->skipped = total[3], stats->pieces = total[4], stats->remote_bytes = total[5];
    stats->replaced = total[6];
    stats->seconds = MPI_Wtime() - start;
    return st;
}

/* ---- reads ------------------------------------------------------------------- */

typedef struct {
    const int64_t (*boxes)[6];
    uint16_t *const *out;
    int owner_of_piece;     /* scratch: the owner of the current piece */
    uint64_t *bytes;        /* per rank: request bytes (counting) */
    uint8_t *send;          /* packing: the request buffer */
    uint64_t *cursor;       /* packing / unpacking: per rank */
    const uint8_t *replies; /* unpacking: the answers */
    strata_box_io_stats *stats;
} box_read;

/* The voxels of an own chunk (flushed state): resident, or loaded into the cache. */
static strata_status own_piece_source(strata_world *w, uint64_t key, chunk **out)
{
    strata_status st = world_own_chunk(w, key, out);
    if (st)
        return world_chunk_failed(w, "box read", key, st, &w->error);
    return STRATA_OK;
}

/* Copy piece p of an own chunk into box `index`'s array. */
static strata_status read_own_piece(strata_world *w, box_read *r, size_t index, const box_piece *p)
{
    chunk *k;
    strata_status st = own_piece_source(w, p->key, &k);
    if (st)
        return st;
    const int64_t *box = r->boxes[index];
    const int64_t sy = box[3] - box[0], sz = sy * (box[4] - box[1]);
    if (!k->voxels) {
        set_piece(p->b, k->value, r->out[index], box, sy, sz);
        return STRATA_OK;
    }
    int64_t c0[3];
    for (int a = 0; a < 3; a++)
        c0[a] = p->b[a] & ~((int64_t)w->edge - 1);
    copy_piece(p->b, w->edge, c0, k->voxels, r->out[index], box, sy, sz, 1);
    return STRATA_OK;
}

/* Pass one: copy own pieces, count request bytes per owner. */
static strata_status read_count(strata_world *w, size_t index, const box_piece *p, void *ctx)
{
    box_read *r = ctx;
    int owner = partition_owner(w->split, w->size, p->key);
    r->stats->pieces++;
    if (owner == w->rank)
        return read_own_piece(w, r, index, p);
    r->bytes[owner] += sizeof *p;
    return STRATA_OK;
}

static strata_status read_pack(strata_world *w, size_t index, const box_piece *p, void *ctx)
{
    (void)index;
    box_read *r = ctx;
    int owner = partition_owner(w->split, w->size, p->key);
    if (owner != w->rank) {
        memcpy(r->send + r->cursor[owner], p, sizeof *p);
        r->cursor[owner] += sizeof *p;
    }
    return STRATA_OK;
}

/* An answer: an 8-byte header (the uniform value, or -1: dense voxels follow). */
static strata_status read_unpack(strata_world *w, size_t index, const box_piece *p, void *ctx)
{
    box_read *r = ctx;
    int owner = partition_owner(w->split, w->size, p->key);
    if (owner == w->rank)
        return STRATA_OK;
    const int64_t *box = r->boxes[index];
    const int64_t sy = box[3] - box[0], sz = sy * (box[4] - box[1]);
    int64_t header;
    memcpy(&header, r->replies + r->cursor[owner], sizeof header);
    r->cursor[owner] += sizeof header;
    if (header >= 0) {
        set_piece(p->b, (uint16_t)header, r->out[index], box, sy, sz);
        return STRATA_OK;
    }
    /* The piece itself as a dense array with its own strides. */
    const int64_t py = p->b[3] - p->b[0], pz = py * (p->b[4] - p->b[1]);
    const uint8_t *src = r->replies + r->cursor[owner];
    const size_t row = (size_t)py * sizeof(uint16_t);
    for (int64_t z = p->b[2]; z < p->b[5]; z++)
        for (int64_t y = p->b[1]; y < p->b[4]; y++) {
            uint16_t *av =
                r->out[index] + (z - box[2]) * sz + (y - box[1]) * sy + (p->b[0] - box[0]);
            memcpy(av, src + ((size_t)((z - p->b[2]) * pz + (y - p->b[1]) * py)) * 2, row);
        }
    r->cursor[owner] += (uint64_t)pz * (uint64_t)(p->b[5] - p->b[2]) * 2;
    return STRATA_OK;
}

/* Owner side: answer the requests of every rank, in the order received. */
static strata_status read_answer(strata_world *w, const uint8_t *requests,
                                 const uint64_t *req_bytes, uint8_t **answers, uint64_t *ans_bytes)
{
    size_t n = 0;
    uint64_t total = 0;
    for (int r = 0; r < w->size; r++)
        n += req_bytes[r] / sizeof(box_piece);
    chunk **found = strata_malloc((n ? n : 1) * sizeof *found);
    *answers = NULL;
    if (!found)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "box read: cannot answer %zu pieces", n);
    strata_status st = STRATA_OK;
    size_t i = 0;
    for (int r = 0; r < w->size && !st; r++) {
        ans_bytes[r] = 0;
        for (uint64_t at = 0; at < req_bytes[r] && !st; at += sizeof(box_piece), i++) {
            box_piece p;
            memcpy(&p, requests + total + at, sizeof p);
            if (!world_owns(w, p.key))
                st = WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                                "box read: rank %d asked rank %d for chunk key %" PRIu64
                                ", which it does not own",
                                r, w->rank, p.key);
            if (!st)
                st = own_piece_source(w, p.key, &found[i]);
            if (!st)
                ans_bytes[r] += 8 + (found[i]->voxels ? piece_voxels(p.b) * 2 : 0);
        }
        total += req_bytes[r];
    }
    uint64_t out_total = 0;
    for (int r = 0; r < w->size && !st; r++)
        out_total += ans_bytes[r];
    if (!st && !(*answers = box_buffer(w, BOX_ANSWERS, out_total, "box read")))
        st = STRATA_ERR_NOMEM;
    uint8_t *o = *answers;
    for (size_t j = 0, at = 0; !st && j < n; j++, at += sizeof(box_piece)) {
        box_piece p;
        memcpy(&p, requests + at, sizeof p);
        const chunk *k = found[j];
        int64_t header = k->voxels ? -1 : (int64_t)k->value;
        memcpy(o, &header, sizeof header);
        o += sizeof header;
        if (!k->voxels)
            continue;
        const int64_t edge = w->edge, width = p.b[3] - p.b[0], height = p.b[4] - p.b[1];
        const size_t row = (size_t)width * 2;
        if (width == edge && height == edge) { /* whole planes of the chunk: one run */
            const size_t bytes = (size_t)(p.b[5] - p.b[2]) * (size_t)(edge * edge) * 2;
            memcpy(o, k->voxels + (p.b[2] & (edge - 1)) * edge * edge, bytes);
            o += bytes;
            continue;
        }
        for (int64_t z = p.b[2]; z < p.b[5]; z++)
            for (int64_t y = p.b[1]; y < p.b[4]; y++, o += row)
                memcpy(o,
                       k->voxels + ((z & (edge - 1)) * edge + (y & (edge - 1))) * edge +
                           (p.b[0] & (edge - 1)),
                       row);
    }
    free(found);
    return st;
}

/* Level 0. The call's first agreement (arguments, scratch) has passed. Collective. */
static strata_status read_voxels(strata_world *w, box_read *r, size_t n, box_scratch *sc)
{
    const int P = w->size;
    uint64_t *counts = sc->bytes;
    uint64_t *req_bytes = counts + P, *ans_bytes = counts + 2 * P, *got_bytes = counts + 3 * P;
    uint8_t *requests = NULL, *answers = NULL, *replies = NULL;
    double t0 = MPI_Wtime(), copy = 0;
    strata_status st = STRATA_OK, late = STRATA_OK;
    r->bytes = counts;
    for (size_t i = 0; !st && i < n; i++)
        st = each_piece(w, i, r->boxes[i], read_count, r);
    copy += MPI_Wtime() - t0;
    uint64_t total = 0;
    for (int q = 0; !st && q < P; q++)
        total += counts[q];
    if (!st && !(r->send = box_buffer(w, BOX_SEND, total, "box read")))
        st = STRATA_ERR_NOMEM;
    if (!st && (r->cursor = strata_malloc((size_t)P * sizeof *r->cursor))) {
        uint64_t at = 0;
        for (int q = 0; q < P; q++)
            r->cursor[q] = at, at += counts[q];
        for (size_t i = 0; !st && i < n; i++)
            st = each_piece(w, i, r->boxes[i], read_pack, r);
    } else if (!st) {
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "box read: no memory for cursors");
    }
    st = exchange_bytes(w, st, r->send, counts, BOX_RECV, &requests, req_bytes, sc->ints, &late);
    double t1 = MPI_Wtime();
    /* The first exchange agreed: a failure there ends the call on every rank alike. */
    if (!st) {
        strata_status local =
            late ? late : read_answer(w, requests, req_bytes, &answers, ans_bytes);
        copy += MPI_Wtime() - t1;
        st = exchange_bytes(w, local, answers, ans_bytes, BOX_REPLIES, &replies, got_bytes,
                            sc->ints, &late);
    }
    double t2 = MPI_Wtime();
    if (!st && !late) {
        r->replies = replies;
        uint64_t at = 0;
        for (int q = 0; q < P; q++)
            r->cursor[q] = at, at += got_bytes[q];
        for (size_t i = 0; !st && i < n; i++)
            st = each_piece(w, i, r->boxes[i], read_unpack, r);
        r->stats->remote_bytes =
            remote_bytes(w, counts, req_bytes) + remote_bytes(w, ans_bytes, got_bytes);
    }
    copy += MPI_Wtime() - t2;
    r->stats->copy_seconds = copy;
    r->stats->route_seconds = MPI_Wtime() - t0 - copy;
    free(r->cursor);
    route_scratch_trim(&w->route, ROUTE_KEEP_BYTES);
    return st ? st : late;
}

/* Level > 0: one strata_query_lod point per cell (the corner of its block). */
static strata_status read_lod(strata_world *w, box_read *r, size_t n, int level)
{
    uint64_t cells = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t *b = r->boxes[i];
        uint64_t c = 1;
        for (int a = 0; a < 3; a++)
            c *= (uint64_t)(((b[a + 3] - 1) >> level) - (b[a] >> level) + 1);
        cells += c;
    }
    int64_t(*points)[3] = strata_malloc((cells ? cells : 1) * sizeof *points);
    uint16_t *values = strata_malloc((cells ? cells : 1) * sizeof *values);
    strata_status st = points && values
                           ? STRATA_OK
                           : WORLD_FAIL(w, STRATA_ERR_NOMEM,
                                        "box read: cannot query %" PRIu64 " LOD cells", cells);
    size_t at = 0;
    for (size_t i = 0; !st && i < n; i++) {
        const int64_t *b = r->boxes[i];
        for (int64_t z = b[2] >> level; z <= (b[5] - 1) >> level; z++)
            for (int64_t y = b[1] >> level; y <= (b[4] - 1) >> level; y++)
                for (int64_t x = b[0] >> level; x <= (b[3] - 1) >> level; x++, at++) {
                    points[at][0] = x << level;
                    points[at][1] = y << level;
                    points[at][2] = z << level;
                }
    }
    st = world_agree(w, st);
    double t0 = MPI_Wtime();
    if (!st)
        st = strata_query_lod(w, (const int64_t(*)[3])points, cells, level, -1.0, values, NULL);
    r->stats->route_seconds = MPI_Wtime() - t0;
    at = 0;
    for (size_t i = 0; !st && i < n; i++) {
        const int64_t *b = r->boxes[i];
        uint64_t c = 1;
        for (int a = 0; a < 3; a++)
            c *= (uint64_t)(((b[a + 3] - 1) >> level) - (b[a] >> level) + 1);
        memcpy(r->out[i], values + at, c * sizeof *values);
        at += c;
    }
    r->stats->voxels = cells;
    free(points);
    free(values);
    return st;
}

strata_status strata_read_boxes(strata_world *w, const int64_t (*boxes)[6], size_t n, int level,
                                uint16_t *const *out, strata_box_io_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double start = MPI_Wtime();
    strata_box_io_stats local = {.boxes = n};
    strata_status st = check_boxes(w, __func__, boxes, n);
    if (!st && n && !out)
        st = world_null_argument(w, __func__, "out");
    for (size_t i = 0; !st && i < n; i++)
        if (!out[i])
            st = WORLD_FAIL(w, STRATA_ERR_ARG, "%s: out[%zu] is NULL on rank %d", __func__, i,
                            w->rank);
    if (!st && (level < 0 || level > 62))
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "%s: LOD level %d is not in [0, 62]", __func__, level);
    box_scratch sc = {0};
    if (!st && level == 0)
        st = scratch_alloc(w, &sc);
    st = world_agree(w, st);
    box_read r = {.boxes = boxes, .out = out, .stats = &local};
    if (!st && level > 0) {
        st = read_lod(w, &r, n, level);
    } else if (!st) {
        for (size_t i = 0; i < n; i++)
            local.voxels += piece_voxels(boxes[i]);
        st = read_voxels(w, &r, n, &sc);
        world_evict(w);
    }
    scratch_free(&sc);
    st = sum_stats(w, st, &local, start);
    if (stats)
        *stats = local;
    return st;
}

/* ---- writes ------------------------------------------------------------------ */

enum { PIECE_CONDITIONAL = 1 };

/* A piece on the wire: header, then its voxels [z][y][x], then (conditional) the
 * expected voxels. 64 bytes, so the voxels after it stay aligned. */
typedef struct {
    box_piece p;
    uint64_t flags;
} write_header;

/* A piece to apply: its data as a strided array (the caller's box, or packed). */
typedef struct {
    box_piece p;
    const uint16_t *data, *expected; /* expected NULL: unconditional */
    int64_t origin[3], sy, sz;
} write_piece;

typedef struct {
    const int64_t (*boxes)[6];
    const uint16_t *const *data, *const *expected;
    uint64_t *bytes;  /* per rank: bytes to send */
    uint8_t *send;    /* packing */
    uint64_t *cursor; /* packing: per rank */
    /* Applying: */
    uint64_t *fresh; /* keys of chunks inserted unread (dropped if phase one fails) */
    size_t fresh_n, fresh_cap;
    uint64_t *touched; /* keys of chunks the call changes (sorted after phase one) */
    size_t touched_n, touched_cap;
    uint64_t *would; /* per piece in apply order: voxels it writes on the content it found */
    size_t piece, pieces_cap;
    int phase; /* 1: make resident, 2: apply */
    strata_box_io_stats *stats;
} box_write;

static const uint16_t *box_expected(const box_write *x, size_t i)
{
    return x->expected ? x->expected[i] : NULL;
}

static strata_status write_count(strata_world *w, size_t index, const box_piece *p, void *ctx)
{
    box_write *x = ctx;
    int owner = partition_owner(w->split, w->size, p->key);
    x->stats->pieces++;
    if (owner != w->rank)
        x->bytes[owner] +=
            sizeof(write_header) + piece_voxels(p->b) * 2 * (box_expected(x, index) ? 2 : 1);
    return STRATA_OK;
}

/* Copy piece b of a box array (origin o, strides sy, sz) to out, densely. */
static uint8_t *pack_rows(const int64_t b[6], const uint16_t *array, const int64_t o[3], int64_t sy,
                          int64_t sz, uint8_t *out)
{
    const size_t row = (size_t)(b[3] - b[0]) * 2;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++, out += row)
            memcpy(out, array + (z - o[2]) * sz + (y - o[1]) * sy + (b[0] - o[0]), row);
    return out;
}

static strata_status write_pack(strata_world *w, size_t index, const box_piece *p, void *ctx)
{
    box_write *x = ctx;
    int owner = partition_owner(w->split, w->size, p->key);
    if (owner == w->rank)
        return STRATA_OK;
    const int64_t *box = x->boxes[index];
    const int64_t sy = box[3] - box[0], sz = sy * (box[4] - box[1]);
    const uint16_t *expected = box_expected(x, index);
    write_header h = {*p, expected ? PIECE_CONDITIONAL : 0};
    uint8_t *o = x->send + x->cursor[owner];
    memcpy(o, &h, sizeof h);
    o = pack_rows(p->b, x->data[index], box, sy, sz, o + sizeof h);
    if (expected)
        o = pack_rows(p->b, expected, box, sy, sz, o);
    x->cursor[owner] = (uint64_t)(o - x->send);
    return STRATA_OK;
}

static int covers_chunk(const strata_world *w, const box_piece *p)
{
    int64_t b[6];
    world_chunk_bounds(w, p->key, b);
    return !memcmp(b, p->b, sizeof b);
}

/* Append v to a growing array of keys or counts. */
static strata_status push_u64(strata_world *w, uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 64;
        uint64_t *grown = strata_realloc(*a, grown_cap * sizeof *grown);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "box write: cannot track %zu pieces", grown_cap);
        *a = grown, *cap = grown_cap;
    }
    (*a)[(*n)++] = v;
    return STRATA_OK;
}

/* Chunk k's voxel under (x, y, z) of piece row pointer arithmetic. */
static uint16_t *chunk_row(const strata_world *w, const chunk *k, int64_t x, int64_t y, int64_t z)
{
    const int64_t edge = w->edge, m = edge - 1;
    return k->voxels + ((z & m) * edge + (y & m)) * edge + (x & m);
}

static const uint16_t *piece_row(const write_piece *q, const uint16_t *a, int64_t y, int64_t z)
{
    return a + (z - q->origin[2]) * q->sz + (y - q->origin[1]) * q->sy + (q->p.b[0] - q->origin[0]);
}

/* On chunk k's content (dense or uniform): how many voxels piece q would write
 * (all, or where the expected value holds) and how many of those it would change. */
static uint64_t piece_changes(const strata_world *w, const chunk *k, const write_piece *q,
                              uint64_t *writes)
{
    const int64_t *b = q->p.b, width = b[3] - b[0];
    uint64_t changes = 0, n = 0;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++) {
            const uint16_t *src = piece_row(q, q->data, y, z);
            const uint16_t *e = q->expected ? piece_row(q, q->expected, y, z) : NULL;
            const uint16_t *cv = k->voxels ? chunk_row(w, k, b[0], y, z) : NULL;
            /* A row equal to the chunk's (unconditional), or a conditional row that
             * writes back what it expects, where the chunk holds it: all match,
             * nothing changes. */
            if (cv && !memcmp(cv, src, (size_t)width * 2) &&
                (!e || !memcmp(e, src, (size_t)width * 2))) {
                n += (uint64_t)width;
                continue;
            }
            for (int64_t i = 0; i < width; i++) {
                uint16_t old = cv ? cv[i] : k->value;
                int match = !e || e[i] == old;
                n += (uint64_t)match;
                changes += (uint64_t)(match && src[i] != old);
            }
        }
    *writes = n;
    return changes;
}

/* Phase one for a piece: a piece that changes its chunk makes it resident, dense,
 * pinned and ready to log the changes (a delta record at commit when they are
 * few); a chunk covered whole by a non-conditional piece and not resident starts
 * fresh, unread, and is written whole. A piece that changes nothing leaves its
 * chunk alone: unchanged chunks are not written again at the next commit. */
static strata_status prepare_piece(strata_world *w, box_write *x, const write_piece *q)
{
    chunk *k = chunk_cache_find(&w->owned, q->p.key);
    strata_status st = STRATA_OK;
    uint64_t writes = piece_voxels(q->p.b), changes = 0;
    int fresh = !k && !q->expected && covers_chunk(w, &q->p) && !world_has_blind(w, q->p.key);
    if (fresh) {
        st = chunk_cache_insert(&w->owned, q->p.key, 0, &k, &w->error);
        if (!st && (st = push_u64(w, &x->fresh, &x->fresh_n, &x->fresh_cap, q->p.key)))
            chunk_cache_remove(&w->owned, k);
        x->stats->replaced += !st;
    } else if (!k) {
        st = world_own_chunk(w, q->p.key, &k);
    }
    if (!st && !fresh)
        changes = piece_changes(w, k, q, &writes);
    if (!st)
        st = push_u64(w, &x->would, &x->piece, &x->pieces_cap, writes);
    if (st || (!fresh && !changes))
        return st ? world_chunk_failed(w, "box write", q->p.key, st, &w->error) : STRATA_OK;
    st = chunk_make_dense(&w->owned, k, &w->error);
    if (!st && !fresh)
        st = chunk_log_reserve(k, changes, delta_log_max(w->chunk_voxels), &w->error);
    if (!st)
        st = push_u64(w, &x->touched, &x->touched_n, &x->touched_cap, q->p.key);
    if (st)
        return world_chunk_failed(w, "box write", q->p.key, st, &w->error);
    chunk_set_dirty(&w->owned, k, 1);
    if (fresh)
        chunk_set_whole(k); /* nothing of it was read: committed whole */
    return STRATA_OK;
}

/* Log a change of chunk k (whole past the room phase one reserved). */
static void log_change(chunk *k, uint32_t voxel, uint16_t material)
{
    if (!k->whole && k->log_count == k->log_capacity)
        chunk_set_whole(k);
    chunk_log(k, voxel, material);
}

/* Phase two for a piece: write its voxels (where expected matches) into a chunk
 * the call changes, logging each change; on a chunk it does not change, only
 * count. Cannot fail. */
static void apply_piece(strata_world *w, box_write *x, const write_piece *q)
{
    const uint64_t would = x->would[x->piece++];
    const int64_t edge = w->edge, m = edge - 1, *b = q->p.b, width = b[3] - b[0];
    if (!x->touched_n ||
        !bsearch(&q->p.key, x->touched, x->touched_n, sizeof *x->touched, morton_key_compare)) {
        x->stats->written += would;
        x->stats->skipped += q->expected ? piece_voxels(b) - would : 0;
        return;
    }
    chunk *k = chunk_cache_find(&w->owned, q->p.key);
    uint64_t written = 0, skipped = 0;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++) {
            uint16_t *cv = chunk_row(w, k, b[0], y, z);
            const uint32_t at = (uint32_t)((((z & m) * edge + (y & m)) * edge) + (b[0] & m));
            const uint16_t *src = piece_row(q, q->data, y, z);
            const uint16_t *e = q->expected ? piece_row(q, q->expected, y, z) : NULL;
            if (!memcmp(cv, src, (size_t)width * 2) && (!e || !memcmp(e, src, (size_t)width * 2))) {
                written += (uint64_t)width; /* all match, nothing changes (piece_changes) */
                skipped += e ? (uint64_t)width : 0;
                continue;
            }
            for (int64_t i = 0; i < width; i++) {
                int match = !e || cv[i] == e[i];
                written += (uint64_t)match;
                if (match && cv[i] != src[i]) {
                    log_change(k, at + (uint32_t)i, src[i]);
                    cv[i] = src[i];
                }
            }
            skipped += e ? (uint64_t)width : 0;
        }
    x->stats->written += written;
    x->stats->skipped += q->expected ? skipped - written : 0;
}

static strata_status write_one(strata_world *w, box_write *x, const write_piece *q)
{
    if (x->phase == 1)
        return prepare_piece(w, x, q);
    apply_piece(w, x, q);
    return STRATA_OK;
}

/* This rank's own pieces, straight from the caller's arrays. */
static strata_status write_own(strata_world *w, size_t index, const box_piece *p, void *ctx)
{
    box_write *x = ctx;
    if (partition_owner(w->split, w->size, p->key) != w->rank)
        return STRATA_OK;
    const int64_t *box = x->boxes[index];
    write_piece q = {*p,
                     x->data[index],
                     box_expected(x, index),
                     {box[0], box[1], box[2]},
                     box[3] - box[0],
                     (box[3] - box[0]) * (box[4] - box[1])};
    return write_one(w, x, &q);
}

/* Every piece this rank owns, in (source rank, box order). */
static strata_status write_all(strata_world *w, box_write *x, size_t n, const uint8_t *recv,
                               const uint64_t *recv_bytes)
{
    uint64_t at = 0;
    strata_status st = STRATA_OK;
    for (int r = 0; r < w->size && !st; r++) {
        if (r == w->rank)
            for (size_t i = 0; i < n && !st; i++)
                st = each_piece(w, i, x->boxes[i], write_own, x);
        uint64_t end = at + recv_bytes[r];
        while (at < end && !st) {
            write_header h;
            memcpy(&h, recv + at, sizeof h);
            at += sizeof h;
            const int64_t *b = h.p.b;
            uint64_t v = piece_voxels(b);
            if (!world_owns(w, h.p.key)) {
                st = WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                                "box write: rank %d sent rank %d chunk key %" PRIu64
                                ", which it does not own",
                                r, w->rank, h.p.key);
                break;
            }
            write_piece q = {h.p,         (const uint16_t *)(recv + at), NULL, {b[0], b[1], b[2]},
                             b[3] - b[0], (b[3] - b[0]) * (b[4] - b[1])};
            at += v * 2;
            if (h.flags & PIECE_CONDITIONAL) {
                q.expected = (const uint16_t *)(recv + at);
                at += v * 2;
            }
            st = write_one(w, x, &q);
        }
    }
    return st;
}

/* Drop the chunks phase one inserted unread: the world is as before. */
static void drop_fresh(strata_world *w, box_write *x)
{
    for (size_t i = 0; i < x->fresh_n; i++) {
        chunk *k = chunk_cache_find(&w->owned, x->fresh[i]);
        if (k)
            chunk_cache_remove(&w->owned, k);
    }
    x->fresh_n = 0;
}

/* The call's first agreement (arguments, scratch, flush) has passed. Collective. */
static strata_status write_voxels(strata_world *w, box_write *x, size_t n, box_scratch *sc)
{
    const int P = w->size;
    uint64_t *counts = sc->bytes, *recv_bytes = counts + P;
    uint8_t *recv = NULL;
    double t0 = MPI_Wtime();
    strata_status st = STRATA_OK, late = STRATA_OK;
    x->bytes = counts;
    x->cursor = counts + 2 * P;
    for (size_t i = 0; !st && i < n; i++)
        st = each_piece(w, i, x->boxes[i], write_count, x);
    uint64_t total = 0;
    for (int q = 0; !st && q < P; q++)
        x->cursor[q] = total, total += counts[q];
    if (!st && !(x->send = box_buffer(w, BOX_SEND, total, "box write")))
        st = STRATA_ERR_NOMEM;
    for (size_t i = 0; !st && i < n; i++)
        st = each_piece(w, i, x->boxes[i], write_pack, x);
    st = exchange_bytes(w, st, x->send, counts, BOX_RECV, &recv, recv_bytes, sc->ints, &late);
    double t1 = MPI_Wtime();
    x->phase = 1;
    if (!st)
        st = world_agree(w, late ? late : write_all(w, x, n, recv, recv_bytes));
    if (st) {
        drop_fresh(w, x);
    } else {
        if (x->touched_n) /* the C library wants a base even for no element */
            qsort(x->touched, x->touched_n, sizeof *x->touched, morton_key_compare);
        x->phase = 2;
        x->piece = 0;
        write_all(w, x, n, recv, recv_bytes);
        x->stats->remote_bytes = remote_bytes(w, counts, recv_bytes);
    }
    x->stats->copy_seconds = MPI_Wtime() - t1;
    x->stats->route_seconds = t1 - t0;
    free(x->fresh), free(x->touched), free(x->would);
    route_scratch_trim(&w->route, ROUTE_KEEP_BYTES);
    return st;
}

/* Why this rank cannot write: read-only, a pending signal, bad arguments. Local. */
static strata_status write_refused(strata_world *w, const int64_t (*boxes)[6], size_t n,
                                   const uint16_t *const *data)
{
    strata_status st = world_write_refused(w, "a box write");
    if (!st)
        st = check_boxes(w, "strata_write_boxes", boxes, n);
    if (!st && n && !data)
        st = world_null_argument(w, "strata_write_boxes", "data");
    for (size_t i = 0; !st && i < n; i++)
        if (!data[i])
            st = WORLD_FAIL(w, STRATA_ERR_ARG, "strata_write_boxes: data[%zu] is NULL on rank %d",
                            i, w->rank);
    return st;
}

strata_status strata_write_boxes(strata_world *w, const int64_t (*boxes)[6], size_t n,
                                 const uint16_t *const *data, const uint16_t *const *expected,
                                 strata_box_io_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double start = MPI_Wtime();
    strata_box_io_stats local = {.boxes = n};
    box_scratch sc = {0};
    strata_status st = write_refused(w, boxes, n, data);
    if (!st)
        st = scratch_alloc(w, &sc);
    /* Staged updates first, they were made before this write: one agreement
     * says whether any rank has any (or a refused one, which the flush names). */
    int pending[2] = {st ? w->rank : w->size, -(w->staged_count > 0 || w->staged_bad)};
    int first[2] = {w->size, 0};
    strata_status mpi =
        error_mpi(&w->error, MPI_Allreduce(pending, first, 2, MPI_INT, MPI_MIN, w->comm),
                  "box write: agreeing on the staged updates");
    if (mpi || first[0] < w->size)
        st = world_agree(w, st ? st : mpi);
    else
        w->error.status = STRATA_OK;
    if (!st && first[1] < 0)
        st = strata_flush(w, NULL);
    if (!st) {
        for (size_t i = 0; i < n; i++)
            local.voxels += piece_voxels(boxes[i]);
        box_write x = {.boxes = boxes, .data = data, .expected = expected, .stats = &local};
        st = write_voxels(w, &x, n, &sc);
        world_evict(w);
    }
    scratch_free(&sc);
    st = sum_stats(w, st, &local, start);
    if (stats)
        *stats = local;
    return st;
}

/* ---- the own domain ------------------------------------------------------------ */

typedef struct {
    int64_t (*boxes)[6];
    size_t n, cap;
} box_list;

static strata_status push_box(strata_world *w, box_list *l, const int64_t b[6])
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int64_t(*grown)[6] = strata_realloc(l->boxes, cap * sizeof *grown);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list %zu domain boxes", cap);
        l->boxes = grown, l->cap = cap;
    }
    memcpy(l->boxes[l->n++], b, 6 * sizeof *b);
    return STRATA_OK;
}

/* The aligned block of 2^level chunks at `key`, clipped to the world, split into
 * blocks of at most 2^cap chunks along each axis (z, y, x order). */
static strata_status push_block(strata_world *w, box_list *l, uint64_t key, int level, int cap)
{
    uint32_t c[3];
    morton_decode3(key, &c[0], &c[1], &c[2]);
    const int step = level < cap ? level : cap;
    int64_t lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
        lo[a] = (int64_t)c[a];
        hi[a] = lo[a] + ((int64_t)1 << level);
        hi[a] = hi[a] < (int64_t)w->chunks[a] ? hi[a] : (int64_t)w->chunks[a];
        if (lo[a] >= hi[a])
            return STRATA_OK; /* wholly outside the world */
    }
    const int64_t s = (int64_t)1 << step, bits = w->edge_bits, *d = w->committed.dims;
    strata_status st = STRATA_OK;
    for (int64_t z = lo[2]; z < hi[2] && !st; z += s)
        for (int64_t y = lo[1]; y < hi[1] && !st; y += s)
            for (int64_t x = lo[0]; x < hi[0] && !st; x += s) {
                const int64_t at[3] = {x, y, z};
                int64_t b[6];
                for (int a = 0; a < 3; a++) {
                    b[a] = at[a] << bits;
                    int64_t end = (at[a] + s) << bits;
                    b[a + 3] = end < d[a] ? end : d[a];
                }
                st = push_box(w, l, b);
            }
    return st;
}

strata_status strata_domain_boxes(strata_world *w, int64_t max_chunks, int64_t (**boxes)[6],
                                  size_t *n)
{
    if (!w || !boxes || !n)
        return world_null_argument(w, __func__, !w ? "world" : !boxes ? "boxes" : "n");
    *boxes = NULL;
    *n = 0;
    if (max_chunks < 0 || (max_chunks & (max_chunks - 1)))
        return WORLD_FAIL(w, STRATA_ERR_ARG,
                          "%s: max_chunks %" PRId64 " is not 0 or a power of two", __func__,
                          max_chunks);
    int cap = STRATA_MORTON_BITS;
    while (max_chunks && ((int64_t)1 << cap) > max_chunks)
        cap--;
    uint64_t end = morton_key_end(w->chunks);
    uint64_t key = w->split[w->rank];
    uint64_t last = w->split[w->rank + 1] < end ? w->split[w->rank + 1] : end;
    box_list l = {0};
    strata_status st = STRATA_OK;
    /* The range as maximal aligned octree blocks: a block of 8^k keys starts at a
     * multiple of 8^k; take the largest that fits before `last`. */
    while (key < last && !st) {
        int level = 0;
        while (level < STRATA_MORTON_BITS && key % ((uint64_t)8 << (3 * level)) == 0 &&
               last - key >= ((uint64_t)8 << (3 * level)))
            level++;
        st = push_block(w, &l, key, level, cap);
        key += (uint64_t)1 << (3 * level);
    }
    if (st) {
        free(l.boxes);
        return st;
    }
    *boxes = l.boxes;
    *n = l.n;
    return STRATA_OK;
}
