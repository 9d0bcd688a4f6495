/* query.c: LOD point queries, region covers, rays and box statistics over the index.
 *
 * Where answers come from: level 0 is the voxel; levels 1..log2(C) are cells
 * of the chunk's stored pyramid (an LRU of decoded pyramids; single-material
 * chunks need none); levels above are octree nodes: the replicated ones on
 * every rank, the others on the rank whose key range covers them, reached by
 * routing (points) or by letting that rank walk them (regions, statistics).
 */
#include "index/query.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codec.h"
#include "morton.h"
#include "partition.h"
#include "world.h"

static uint64_t cell_key(const uint64_t c[3])
{
    return morton_encode3((uint32_t)c[0], (uint32_t)c[1], (uint32_t)c[2]);
}

static strata_status find_row(strata_world *w, uint64_t key, store_row *row, int *found)
{
    if (world_owns(w, key)) {
        const store_row *r = world_own_row(w, key);
        if (r)
            *row = *r;
        *found = r != NULL;
        return STRATA_OK;
    }
    return store_lookup_row(&w->store, key, row, found, &w->error);
}

static void from_node(const octree_node *n, uint64_t voxels, block_summary *out)
{
    out->material = n ? n->dominant : 0;
    out->count = n ? n->dominant_count : voxels;
}

/* Nodes: replicated, own, or (known = 0) someone else's. */
static void node_block(strata_world *w, lod_index *x, int k, uint64_t key, block_summary *out)
{
    const node_set *s;
    if (octree_is_global(x, k, key)) {
        from_node(octree_global_find(x, k, key), out->voxels, out);
        return;
    } else if (partition_owner(w->split, w->size, key << (3 * k)) == w->rank)
        s = &x->local[k];
    else {
        out->known = 0;
        return;
    }
    from_node(node_set_find(s, key), out->voxels, out);
}

strata_status query_block(strata_world *w, int level, const uint64_t c[3], block_summary *out)
{
    lod_index *x;
    strata_status st = index_get(w, &x);
    if (st)
        return st;
    const int cb = w->edge_bits;
    out->known = 1;
    out->voxels = lod_block_voxels(w->committed.dims, level, c);
    if (level == 0) {
        out->count = 1;
        return strata_read_voxel(w, (int64_t)c[0], (int64_t)c[1], (int64_t)c[2], &out->material);
    }
    if (level > cb) {
        node_block(w, x, level - cb, cell_key(c), out);
        return STRATA_OK;
    }
    const int up = cb - level;
    const uint64_t chunk[3] = {c[0] >> up, c[1] >> up, c[2] >> up};
    uint64_t key = cell_key(chunk);
    if (level == cb && x->built && world_owns(w, key)) {
        from_node(node_set_find(&x->chunks, key), out->voxels, out);
        return STRATA_OK;
    }
    store_row row;
    int found;
    uint16_t single;
    st = find_row(w, key, &row, &found);
    if (st)
        return st;
    if (!found || index_row_single(&row, &single)) {
        out->material = found ? single : 0;
        out->count = out->voxels;
        return STRATA_OK;
    }
    if (level == cb && !(row.flags & STORE_ROW_INDEX_STALE)) {
        out->material = row.dominant;
        out->count = row.dominant_count;
        return STRATA_OK;
    }
    const lod_pyramid *p;
    st = index_row_pyramid(w, &row, level, &p);
    if (st)
        return st;
    const uint64_t mask = ((uint64_t)1 << up) - 1;
    size_t i = lod_cell_index(p, level, (uint32_t)(c[0] & mask), (uint32_t)(c[1] & mask),
                              (uint32_t)(c[2] & mask));
    out->material = p->mode[i];
    out->count = p->count[i];
    return STRATA_OK;
}

/* ---- point queries ----------------------------------------------------------------- */

/* Blocks whose summary lives on another rank. A request is (key, sub): above the
 * chunk level the node key and 0; at or below it the chunk key and the block's
 * coordinates inside the chunk (x | y << 8 | z << 16), since the Morton key of
 * the block itself would not fit 63 bits for large worlds. */
typedef struct {
    uint64_t *key;
    uint64_t *sub;
    size_t *index; /* point index */
    size_t n;
} node_requests;

/* The owner of a request at level L. */
static int request_owner(const strata_world *w, int L, uint64_t key)
{
    const int cb = w->edge_bits;
    return partition_owner(w->split, w->size, L > cb ? key << (3 * (L - cb)) : key);
}

/* Answer one request on its owner: the block's mode and the voxels of it. */
static strata_status answer_request(strata_world *w, lod_index *x, int L, uint64_t key,
                                    uint64_t sub, uint64_t reply[2])
{
    const int cb = w->edge_bits;
    uint32_t c[3];
    morton_decode3(key, &c[0], &c[1], &c[2]);
    if (L > cb) {
        const octree_node *n = node_set_find(&x->local[L - cb], key);
        uint64_t cc[3] = {c[0], c[1], c[2]};
        reply[0] = n ? n->dominant : 0;
        reply[1] = n ? n->dominant_count : lod_block_voxels(w->committed.dims, L, cc);
        return STRATA_OK;
    }
    const int up = cb - L;
    const uint64_t b[3] = {(uint64_t)c[0] << up | (sub & 0xff),
                           (uint64_t)c[1] << up | (sub >> 8 & 0xff),
                           (uint64_t)c[2] << up | (sub >> 16 & 0xff)};
    block_summary out;
    strata_status st = query_block(w, L, b, &out);
    reply[0] = out.material;
    reply[1] = out.count;
    return st;
}

/* The exchange of node_requests with their owners: four arrays of P counts and
 * displacements in one block, the requests sent and received, the answers. */
typedef struct {
    int *scount, *rcount, *sdispl, *rdispl;
    uint64_t *send, *recv, *reply, *back;
    size_t *order; /* request index of each sent pair */
    size_t total;  /* uint64 words received: two per request, and two per answer */
} node_route;

static void route_free(node_route *r)
{
    free(r->scount), free(r->send), free(r->recv), free(r->reply), free(r->back), free(r->order);
}

/* Sort the requests by owner. Local. */
static strata_status route_prepare(strata_world *w, int L, const node_requests *q, node_route *r)
{
    const int P = w->size;
    r->scount = strata_calloc((size_t)P * 4, sizeof *r->scount);
    r->send = strata_malloc((q->n ? q->n : 1) * 2 * sizeof *r->send);
    r->order = strata_malloc((q->n ? q->n : 1) * sizeof *r->order);
    int *dest = strata_malloc((q->n ? q->n : 1) * sizeof *dest);
    int *fill = strata_malloc((size_t)P * sizeof *fill);
    if (!r->scount || !r->send || !r->order || !dest || !fill) {
        free(dest), free(fill);
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot route %zu block queries", q->n);
    }
    r->rcount = r->scount + P, r->sdispl = r->scount + 2 * P, r->rdispl = r->scount + 3 * P;
    for (size_t i = 0; i < q->n; i++) {
        dest[i] = request_owner(w, L, q->key[i]);
        r->scount[dest[i]] += 2;
    }
    for (int p = 1; p < P; p++)
        r->sdispl[p] = r->sdispl[p - 1] + r->scount[p - 1];
    memcpy(fill, r->sdispl, (size_t)P * sizeof *fill);
    for (size_t i = 0; i < q->n; i++) {
        size_t at = (size_t)fill[dest[i]];
        fill[dest[i]] += 2;
        r->send[at] = q->key[i];
        r->send[at + 1] = q->sub[i];
        r->order[at / 2] = i;
    }
    free(dest), free(fill);
    return STRATA_OK;
}

/* Once every rank agrees on st: one MPI_Alltoallv of 64-bit words, its failure named by
 * what. Collective. */
static strata_status exchange_words(strata_world *w, strata_status st, const uint64_t *send,
                                    const int *send_counts, const int *send_displs, uint64_t *recv,
                                    const int *recv_counts, const int *recv_displs,
                                    const char *what)
{
    st = world_agree(w, st);
    if (!st)
        st = error_mpi(&w->error,
                       MPI_Alltoallv(send, send_counts, send_displs, MPI_UINT64_T, recv,
                                     recv_counts, recv_displs, MPI_UINT64_T, w->comm),
                       what);
    return st;
}

/*
 * Ask the owners of blocks at level L for their summaries. Collective. st is this
 * rank's status so far, agreed here together with the routing's own preparation;
 * the status returned is NOT agreed (the caller's next agreement covers it). At
 * many ranks the collectives, not the data, take the time: each agreement rides
 * with the step before it (4 MPI_Allreduce, 1 MPI_Alltoall, 2 MPI_Alltoallv).
 */
static strata_status route_nodes(strata_world *w, lod_index *x, int L, const node_requests *q,
                                 strata_status st, uint16_t *material, uint64_t *count)
{
    node_route r;
    memset(&r, 0, sizeof r);
    if (!st)
        st = route_prepare(w, L, q, &r);
    st = world_agree(w, st);
    if (!st)
        st = error_mpi(&w->error, MPI_Alltoall(r.scount, 1, MPI_INT, r.rcount, 1, MPI_INT, w->comm),
                       "routing block queries");
    for (int p = 0; !st && p < w->size; p++)
        r.rdispl[p] = (int)r.total, r.total += (size_t)r.rcount[p];
    if (!st) {
        r.recv = strata_malloc((r.total ? r.total : 1) * sizeof *r.recv);
        r.reply = strata_malloc((r.total ? r.total : 1) * sizeof *r.reply);
        r.back = strata_malloc((q->n ? q->n : 1) * 2 * sizeof *r.back);
        if (!r.recv || !r.reply || !r.back)
            st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot answer block queries");
    }
    st = exchange_words(w, st, r.send, r.scount, r.sdispl, r.recv, r.rcount, r.rdispl,
                        "routing block queries");
    for (size_t i = 0; !st && i < r.total; i += 2)
        st = answer_request(w, x, L, r.recv[i], r.recv[i + 1], &r.reply[i]);
    st = exchange_words(w, st, r.reply, r.rcount, r.rdispl, r.back, r.scount, r.sdispl,
                        "answering block queries");
    for (size_t i = 0; !st && i < q->n; i++) {
        material[q->index[r.order[i]]] = (uint16_t)r.back[2 * i];
        count[q->index[r.order[i]]] = r.back[2 * i + 1];
    }
    route_free(&r);
    return st;
}

/*
 * Does a block with count voxels of its dominant material among voxels reach
 * threshold? Decided on integers: the quotient count / voxels in a double rounds
 * (N-1)/N to 1 once N passes 2^53 (a planet's upper nodes), which would call a
 * mixed block homogeneous at threshold 1. threshold = m * 2^(e-53) exactly, so the
 * test is count * 2^(53-e) >= m * voxels, in 128 bits.
 */
static int reaches_threshold(uint64_t count, uint64_t voxels, double threshold)
{
    if (!voxels || threshold <= 0)
        return 1;
    if (threshold >= 1)
        return count >= voxels;
    __extension__ typedef unsigned __int128 u128;
    int e;
    const uint64_t m = (uint64_t)ldexp(frexp(threshold, &e), 53);
    const int shift = 53 - e; /* e <= 0 */
    if (!count)
        return 0;
    const int bits = 64 - __builtin_clzll(count);
    if (bits + shift > 127) /* count * 2^shift >= 2^127 > m * voxels (< 2^117) */
        return 1;
    return ((u128)count << shift) >= (u128)m * voxels;
}

/* Clamp a level to the root's; -1 if invalid. */
static int usable_level(strata_world *w, lod_index *x, int level)
{
    if (level < 0 || level > 62)
        return -1;
    int top = w->edge_bits + x->max_level;
    return level > top ? top : level;
}

strata_status strata_query_lod(strata_world *w, const int64_t (*points)[3], size_t n, int level,
                               double threshold, uint16_t *out, double *homogeneity)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    lod_index *x = NULL;
    strata_status st = index_get(w, &x);
    int L = st ? 0 : usable_level(w, x, level);
    if (!st && n && (!points || !out))
        st = world_null_argument(w, __func__, points ? "out" : "points");
    else if (!st && (L < 0 || threshold > 1 || threshold != threshold))
        st = WORLD_FAIL(w, STRATA_ERR_ARG,
                        "LOD query: level %d must be in [0, 62] and threshold "
                        "at most 1 (%g)",
                        level, threshold);
    for (size_t i = 0; !st && i < n; i++)
        if (!world_contains(w, points[i][0], points[i][1], points[i][2]))
            st =
                WORLD_FAIL(w, STRATA_ERR_RANGE,
                           "point %zu (%" PRId64 ", %" PRId64 ", %" PRId64 ") is outside the world",
                           i, points[i][0], points[i][1], points[i][2]);
    st = index_ensure(w, st, L > w->edge_bits);
    if (st)
        return st;
    node_requests q = {strata_malloc((n ? n : 1) * sizeof *q.key),
                       strata_malloc((n ? n : 1) * sizeof *q.sub),
                       strata_malloc((n ? n : 1) * sizeof *q.index), 0};
    uint64_t *count = strata_malloc((n ? n : 1) * sizeof *count),
             *voxels = strata_malloc((n ? n : 1) * sizeof *voxels);
    if (!q.key || !q.sub || !q.index || !count || !voxels)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot query %zu points", n);
    const int cb = w->edge_bits;
    for (size_t i = 0; !st && i < n; i++) {
        uint64_t c[3] = {(uint64_t)points[i][0] >> L, (uint64_t)points[i][1] >> L,
                         (uint64_t)points[i][2] >> L};
        voxels[i] = lod_block_voxels(w->committed.dims, L, c);
        if (L <= cb) {
            /* Blocks of chunks owned elsewhere are answered by their owner, which
             * holds the rows and caches the pyramids: no rank reads another's. */
            const int up = cb - L;
            const uint64_t chunk[3] = {c[0] >> up, c[1] >> up, c[2] >> up};
            const uint64_t key = cell_key(chunk);
            if (!world_owns(w, key)) {
                const uint64_t m = ((uint64_t)1 << up) - 1;
                q.key[q.n] = key;
                q.sub[q.n] = (c[0] & m) | (c[1] & m) << 8 | (c[2] & m) << 16;
                q.index[q.n++] = i;
                continue;
            }
        }
        block_summary b;
        st = query_block(w, L, c, &b);
        if (!st && b.known) {
            out[i] = b.material;
            count[i] = b.count;
        } else if (!st) {
            q.key[q.n] = cell_key(c);
            q.sub[q.n] = 0;
            q.index[q.n++] = i;
        }
    }
    st = route_nodes(w, x, L, &q, st, out, count);
    for (size_t i = 0; !st && i < n; i++) {
        double h = voxels[i] ? (double)count[i] / (double)voxels[i] : 1.0;
        if (homogeneity)
            homogeneity[i] = h;
        if (threshold >= 0 && !reaches_threshold(count[i], voxels[i], threshold))
            st = strata_read_voxel(w, points[i][0], points[i][1], points[i][2], &out[i]);
    }
    free(q.key), free(q.sub), free(q.index), free(count), free(voxels);
    return world_agree(w, st);
}

/* ---- walks over the tree (regions, statistics) ------------------------------------------- */

static strata_status clip_box(strata_world *w, const int64_t in[6], int64_t out[6])
{
    for (int i = 0; i < 3; i++) {
        out[i] = in[i] < 0 ? 0 : in[i];
        out[i + 3] = in[i + 3] > w->committed.dims[i] ? w->committed.dims[i] : in[i + 3];
        if (out[i] >= out[i + 3])
            return WORLD_FAIL(w, STRATA_ERR_ARG,
                              "box %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                              ",%" PRId64 " is empty inside the world (%" PRId64 "x%" PRId64
                              "x%" PRId64 ")",
                              in[0], in[1], in[2], in[3], in[4], in[5], w->committed.dims[0],
                              w->committed.dims[1], w->committed.dims[2]);
    }
    return STRATA_OK;
}

/*
 * The arguments of a box query (strata_query_region, strata_box_stats): zeroes
 * *n, checks for NULL pointers (list is the caller's result pointer, named
 * list_name) and clips box into clipped. Local: the caller agrees on the status.
 */
static strata_status box_arguments(strata_world *w, const char *fn, const int64_t box[6],
                                   const void *list, const char *list_name, size_t *n,
                                   int64_t clipped[6])
{
    if (n)
        *n = 0;
    if (!box || !list || !n)
        return world_null_argument(w, fn, !box ? "box" : !list ? list_name : "n");
    return clip_box(w, box, clipped);
}

/* How a cell relates to the box: 0 outside, 1 partly inside, 2 inside. */
static int cell_in_box(const int64_t box[6], int bits, const uint64_t c[3], const int64_t *dims)
{
    int inside = 1;
    for (int i = 0; i < 3; i++) {
        int64_t lo = (int64_t)(c[i] << bits), hi = lo + ((int64_t)1 << bits);
        if (hi > dims[i])
            hi = dims[i];
        if (hi <= box[i] || lo >= box[i + 3])
            return 0;
        if (lo < box[i] || hi > box[i + 3])
            inside = 0;
    }
    return inside ? 2 : 1;
}

/* Does this rank walk the cell? Replicated nodes: every rank; others: their owner. */
static int walks(strata_world *w, lod_index *x, int bits, const uint64_t c[3], int *replicated)
{
    const int cb = w->edge_bits;
    *replicated = 0;
    if (bits > cb) {
        int k = bits - cb;
        uint64_t key = cell_key(c);
        if (octree_is_global(x, k, key))
            return *replicated = 1;
        return partition_owner(w->split, w->size, key << (3 * k)) == w->rank;
    }
    const int up = cb - bits;
    const uint64_t chunk[3] = {c[0] >> up, c[1] >> up, c[2] >> up};
    return world_owns(w, cell_key(chunk));
}

typedef struct {
    strata_world *w;
    lod_index *x;
    int64_t box[6];
    int level;
    double threshold;
    strata_region *out;
    size_t n, capacity;
    uint64_t *counts; /* statistics: voxels per material */
    strata_status st;
} walk;

static void emit_region(walk *r, int bits, const uint64_t c[3], const block_summary *b)
{
    if (r->n == r->capacity) {
        size_t capacity = r->capacity ? r->capacity * 2 : 256;
        strata_region *grown = strata_realloc(r->out, capacity * sizeof *grown);
        if (!grown) {
            r->st = WORLD_FAIL(r->w, STRATA_ERR_NOMEM, "cannot hold %zu regions", capacity);
            return;
        }
        r->out = grown, r->capacity = capacity;
    }
    strata_region *g = &r->out[r->n++];
    for (int i = 0; i < 3; i++) {
        g->box[i] = (int64_t)(c[i] << bits);
        int64_t hi = g->box[i] + ((int64_t)1 << bits);
        g->box[i + 3] = hi < r->w->committed.dims[i] ? hi : r->w->committed.dims[i];
    }
    g->level = bits;
    g->material = b->material;
    g->homogeneity = b->voxels ? (double)b->count / (double)b->voxels : 1.0;
}

static void visit_region(walk *r, int bits, const uint64_t c[3], int replicated)
{
    block_summary b;
    r->st = query_block(r->w, bits, c, &b);
    if (r->st)
        return;
    if (reaches_threshold(b.count, b.voxels, r->threshold) || bits <= r->level) {
        if (!replicated || r->w->rank == 0)
            emit_region(r, bits, c, &b);
        return;
    }
    for (int d = 0; d < 8 && !r->st; d++) {
        uint64_t cc[3] = {2 * c[0] + (d & 1), 2 * c[1] + (d >> 1 & 1), 2 * c[2] + (d >> 2)};
        int child_replicated;
        if (cell_in_box(r->box, bits - 1, cc, r->w->committed.dims) &&
            walks(r->w, r->x, bits - 1, cc, &child_replicated))
            visit_region(r, bits - 1, cc, child_replicated);
    }
}

static int compare_regions(const void *a, const void *b)
{
    const strata_region *x = a, *y = b;
    for (int i = 2; i >= 0; i--)
        if (x->box[i] != y->box[i])
            return x->box[i] < y->box[i] ? -1 : 1;
    return 0;
}

/* Walk from the root (every rank starts, walks() filters). */
static void walk_root(walk *r, void (*visit)(walk *, int, const uint64_t *, int))
{
    const uint64_t root[3] = {0, 0, 0};
    int replicated;
    int bits = r->w->edge_bits + r->x->max_level;
    if (walks(r->w, r->x, bits, root, &replicated))
        visit(r, bits, root, replicated);
}

/* Every rank gets all ranks' regions. Collective. */
static strata_status gather_regions(walk *r, strata_region **regions, size_t *n)
{
    strata_world *w = r->w;
    uint64_t mine = r->n * sizeof *r->out;
    int *counts = strata_malloc((size_t)w->size * 2 * sizeof *counts);
    strata_status st =
        counts ? STRATA_OK : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot gather regions");
    if (mine > INT32_MAX)
        st = WORLD_FAIL(w, STRATA_ERR_OVERFLOW, "too many regions on rank %d", w->rank);
    st = world_agree(w, st);
    int m = (int)mine;
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Allgather(&m, 1, MPI_INT, counts, 1, MPI_INT, w->comm),
                                      "gathering regions"));
    uint64_t total = 0;
    for (int i = 0; !st && i < w->size; i++)
        counts[w->size + i] = (int)total, total += (uint64_t)counts[i];
    if (!st && total > INT32_MAX)
        st = WORLD_FAIL(w, STRATA_ERR_OVERFLOW, "region result too large (%" PRIu64 " bytes)",
                        total);
    strata_region *all = st ? NULL : strata_malloc(total ? total : 1);
    if (!st && !all)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold the regions");
    st = world_agree(w, st);
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Allgatherv(r->out, m, MPI_BYTE, all, counts,
                                                     counts + w->size, MPI_BYTE, w->comm),
                                      "gathering regions"));
    free(counts);
    if (st) {
        free(all);
        return st;
    }
    *n = total / sizeof *all;
    qsort(all, *n, sizeof *all, compare_regions);
    *regions = all;
    return STRATA_OK;
}

strata_status strata_query_region(strata_world *w, const int64_t box[6], int level,
                                  double threshold, strata_region **regions, size_t *n)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    walk r = {.w = w, .threshold = threshold};
    if (regions)
        *regions = NULL;
    strata_status st = box_arguments(w, __func__, box, regions, "regions", n, r.box);
    if (!st)
        st = index_get(w, &r.x);
    r.level = st ? 0 : usable_level(w, r.x, level);
    if (!st && (r.level < 0 || !(threshold >= 0 && threshold <= 1)))
        st = WORLD_FAIL(w, STRATA_ERR_ARG,
                        "region query: level %d must be in [0, 62] and threshold "
                        "in [0, 1] (%g)",
                        level, threshold);
    st = index_ensure(w, st, 1);
    if (st)
        return st;
    walk_root(&r, visit_region);
    st = world_agree(w, r.st);
    if (!st)
        st = gather_regions(&r, regions, n);
    free(r.out);
    return st;
}

/* ---- statistics ------------------------------------------------------------------------ */

static void add_hist(walk *r, const node_set *s, const octree_node *n, uint64_t voxels)
{
    if (!n) {
        r->counts[0] += voxels;
        return;
    }
    for (uint32_t i = 0; i < n->hist_n; i++)
        r->counts[s->pool[n->hist + i].material] += s->pool[n->hist + i].count;
}

/* A chunk cut by the box: count its voxels there. */
static void count_partial_chunk(walk *r, const uint64_t c[3])
{
    strata_world *w = r->w;
    uint64_t key = cell_key(c);
    const store_row *row = world_own_row(w, key);
    int64_t lo[3], hi[3];
    uint64_t volume = 1;
    for (int i = 0; i < 3; i++) {
        lo[i] = (int64_t)(c[i] << w->edge_bits);
        hi[i] = lo[i] + w->edge;
        lo[i] = lo[i] > r->box[i] ? lo[i] : r->box[i];
        hi[i] = hi[i] < r->box[i + 3] ? hi[i] : r->box[i + 3];
        volume *= (uint64_t)(hi[i] - lo[i]);
    }
    uint16_t single;
    if (!row || index_row_single(row, &single)) {
        r->counts[row ? single : 0] += volume;
        return;
    }
    r->st = world_decode_row(w, row, r->x->voxels);
    if (r->st)
        return;
    const int64_t C = w->edge;
    const int64_t ox = (int64_t)(c[0] << w->edge_bits), oy = (int64_t)(c[1] << w->edge_bits),
                  oz = (int64_t)(c[2] << w->edge_bits);
    for (int64_t z = lo[2]; z < hi[2]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++) {
            const uint16_t *v = r->x->voxels + ((z - oz) * C + (y - oy)) * C - ox;
            for (int64_t xx = lo[0]; xx < hi[0]; xx++)
                r->counts[v[xx]]++;
        }
}

static void visit_stats(walk *r, int bits, const uint64_t c[3], int replicated)
{
    strata_world *w = r->w;
    const int cb = w->edge_bits;
    int where = cell_in_box(r->box, bits, c, w->committed.dims);
    if (where == 2 || bits == cb) {
        if (bits == cb && where == 1) {
            count_partial_chunk(r, c);
        } else if (bits == cb) {
            add_hist(r, &r->x->chunks, node_set_find(&r->x->chunks, cell_key(c)),
                     lod_block_voxels(w->committed.dims, bits, c));
        } else if (!replicated || w->rank == 0) {
            int k = bits - cb;
            const node_set *s = replicated ? &r->x->global[k] : &r->x->local[k];
            const octree_node *node = replicated ? octree_global_find(r->x, k, cell_key(c))
                                                 : node_set_find(s, cell_key(c));
            add_hist(r, s, node, lod_block_voxels(w->committed.dims, bits, c));
        }
        return;
    }
    for (int d = 0; d < 8 && !r->st; d++) {
        uint64_t cc[3] = {2 * c[0] + (d & 1), 2 * c[1] + (d >> 1 & 1), 2 * c[2] + (d >> 2)};
        int child_replicated;
        if (cell_in_box(r->box, bits - 1, cc, w->committed.dims) &&
            walks(w, r->x, bits - 1, cc, &child_replicated))
            visit_stats(r, bits - 1, cc, child_replicated);
    }
}

strata_status strata_box_stats(strata_world *w, const int64_t box[6],
                               strata_material_count **counts, size_t *n)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    walk r = {.w = w};
    if (counts)
        *counts = NULL;
    strata_status st = box_arguments(w, __func__, box, counts, "counts", n, r.box);
    if (!st)
        st = index_get(w, &r.x);
    uint64_t *sum = NULL;
    if (!st && (!(r.counts = strata_calloc(65536, sizeof *r.counts)) ||
                !(sum = strata_malloc(65536 * sizeof *sum))))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot count materials");
    st = index_ensure(w, st, 1);
    if (!st) {
        walk_root(&r, visit_stats);
        st = world_agree(w, r.st);
    }
    if (!st)
        st = world_agree(
            w, error_mpi(&w->error,
                         MPI_Allreduce(r.counts, sum, 65536, MPI_UINT64_T, MPI_SUM, w->comm),
                         "summing material counts"));
    size_t present = 0;
    for (size_t m = 0; !st && m < 65536; m++)
        present += sum[m] != 0;
    if (!st && !(*counts = strata_malloc((present ? present : 1) * sizeof **counts)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list material counts");
    for (size_t m = 0; !st && m < 65536; m++)
        if (sum[m])
            (*counts)[(*n)++] = (strata_material_count){(uint16_t)m, sum[m]};
    free(r.counts);
    free(sum);
    return world_agree(w, st);
}
