/* octree.c: chunk histograms, rank-local nodes, the replicated global part, summaries at commit. */
#include "index/octree.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codec.h"
#include "delta.h"
#include "morton.h"
#include "partition.h"
#include "world.h"

/* What a failed pyramid read names: the index's copy, not the chunk's voxels. */
#define LOD_PYRAMID_DAMAGED "LOD pyramid (index data; the chunk's voxel data is separate)"

/* ---- node sets ----------------------------------------------------------------- */

static int compare_node_keys(const void *a, const void *b)
{
    const uint64_t x = ((const octree_node *)a)->key, y = ((const octree_node *)b)->key;
    return x < y ? -1 : x > y;
}

void node_set_sort(node_set *s)
{
    if (s->count > 1)
        qsort(s->nodes, s->count, sizeof *s->nodes, compare_node_keys);
}

int node_set_append(node_set *s, uint64_t key, const lod_count *hist, size_t n, uint64_t voxels)
{
    if (s->count == s->capacity) {
        size_t capacity = s->capacity ? s->capacity * 2 : 64;
        octree_node *grown = strata_realloc(s->nodes, capacity * sizeof *grown);
        if (!grown)
            return 0;
        s->nodes = grown, s->capacity = capacity;
    }
    if (s->pool_n + n > s->pool_capacity) {
        size_t capacity = (s->pool_n + n) * 2 + 64;
        lod_count *grown = strata_realloc(s->pool, capacity * sizeof *grown);
        if (!grown)
            return 0;
        s->pool = grown, s->pool_capacity = capacity;
    }
    octree_node *node = &s->nodes[s->count++];
    node->key = key;
    node->hist = s->pool_n;
    node->hist_n = (uint32_t)n;
    node->voxels = voxels;
    memcpy(s->pool + s->pool_n, hist, n * sizeof *hist);
    s->pool_n += n;
    uint64_t count = 0;
    node->dominant = 0;
    if (n)
        lod_dominant(hist, n, &node->dominant, &count);
    node->dominant_count = count;
    return 1;
}

const octree_node *node_set_find(const node_set *s, uint64_t key)
{
    return s->count ? bsearch(&key, s->nodes, s->count, sizeof *s->nodes, morton_key_compare)
                    : NULL;
}

void node_set_free(node_set *s)
{
    free(s->nodes);
    free(s->pool);
    memset(s, 0, sizeof *s);
}

/* ---- histogram arithmetic ---------------------------------------------------------- */

/* Sort by material and add up equal materials in place; returns the new length. */
static size_t hist_combine(lod_count *h, size_t n)
{
    if (n < 2)
        return n;
    qsort(h, n, sizeof *h, lod_count_compare);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (h[i].material == h[k].material)
            h[k].count += h[i].count;
        else
            h[++k] = h[i];
    }
    return k + 1;
}

/* Add air for the voxels the histogram misses (absent chunks): ascending order kept. */
static size_t hist_fill_air(lod_count *h, size_t n, uint64_t voxels)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += h[i].count;
    if (sum >= voxels)
        return n;
    if (n && h[0].material == 0) {
        h[0].count += voxels - sum;
        return n;
    }
    memmove(h + 1, h, n * sizeof *h);
    h[0] = (lod_count){0, voxels - sum};
    return n + 1;
}

/* A growable scratch histogram. */
typedef struct {
    lod_count *h;
    size_t n, capacity;
} hist_buffer;

static int hist_reserve(hist_buffer *b, size_t more)
{
    if (b->n + more + 1 <= b->capacity)
        return 1;
    size_t capacity = (b->n + more + 1) * 2;
    lod_count *grown = strata_realloc(b->h, capacity * sizeof *grown);
    if (!grown)
        return 0;
    b->h = grown, b->capacity = capacity;
    return 1;
}

/* ---- geometry ------------------------------------------------------------------- */

static void index_levels(const strata_world *w, lod_index *x)
{
    x->chunk_bits = w->edge_bits;
    int k = 0;
    while (((w->chunks[0] - 1) >> k) || ((w->chunks[1] - 1) >> k) || ((w->chunks[2] - 1) >> k))
        k++;
    x->max_level = k;
    x->top_level = k + 1;
    for (int t = 1; t <= k; t++) {
        uint64_t nodes = 1;
        for (int i = 0; i < 3; i++)
            nodes *= ((w->chunks[i] - 1) >> t) + 1;
        if (nodes <= OCTREE_TOP_NODES) {
            x->top_level = t;
            break;
        }
    }
}

static uint64_t node_voxels(const strata_world *w, int bits, uint64_t key)
{
    uint32_t c[3];
    morton_decode3(key, &c[0], &c[1], &c[2]);
    uint64_t cc[3] = {c[0], c[1], c[2]};
    return lod_block_voxels(w->committed.dims, bits, cc);
}

static strata_status find_straddlers(strata_world *w, lod_index *x)
{
    for (int k = 1; k <= x->max_level; k++) {
        free(x->straddle[k]);
        x->straddle_n[k] = 0;
        x->straddle[k] = strata_malloc((size_t)w->size * sizeof(uint64_t));
        if (!x->straddle[k])
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list straddling nodes");
        uint64_t mask = 3 * k >= 64 ? UINT64_MAX : ((uint64_t)1 << (3 * k)) - 1;
        for (int r = 1; r < w->size; r++) {
            uint64_t s = w->split[r];
            if (s == UINT64_MAX || (s & mask) == 0)
                continue;
            uint64_t key = s >> (3 * k);
            if (!x->straddle_n[k] || x->straddle[k][x->straddle_n[k] - 1] != key)
                x->straddle[k][x->straddle_n[k]++] = key;
        }
    }
    return STRATA_OK;
}

const octree_node *octree_global_find(const lod_index *x, int k, uint64_t key)
{
    if (x->direct[k]) {
        if (key >= x->direct_n[k] || x->direct[k][key] < 0)
            return NULL;
        return &x->global[k].nodes[x->direct[k][key]];
    }
    return node_set_find(&x->global[k], key);
}

/* Top levels have few nodes (<= OCTREE_TOP_NODES): where their Morton key range
 * is small too (at most 8 times that, as in any roughly cubic world), index
 * them by key so that coarse point queries cost one load. A long, thin world's
 * key range is far larger than its node count (4096 x 1 x 1 nodes span 2^34
 * keys): such levels are searched (node_set_find, O(log nodes)). */
static int index_top_levels(strata_world *w, lod_index *x)
{
    for (int k = x->top_level; k <= x->max_level; k++) {
        uint64_t n[3];
        for (int i = 0; i < 3; i++)
            n[i] = ((w->chunks[i] - 1) >> k) + 1;
        uint64_t end = morton_key_end(n);
        if (end > 8 * (uint64_t)OCTREE_TOP_NODES)
            continue;
        int32_t *d = strata_malloc((end ? end : 1) * sizeof *d);
        if (!d)
            return 0;
        for (uint64_t i = 0; i < end; i++)
            d[i] = -1;
        const node_set *s = &x->global[k];
        for (size_t i = 0; i < s->count; i++)
            if (s->nodes[i].key < end)
                d[s->nodes[i].key] = (int32_t)i;
        x->direct[k] = d;
        x->direct_n[k] = end;
    }
    return 1;
}

int octree_is_global(const lod_index *x, int k, uint64_t key)
{
    if (k >= x->top_level)
        return 1;
    const uint64_t *s = x->straddle[k];
    size_t lo = 0, hi = x->straddle_n[k];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->straddle_n[k] && s[lo] == key;
}

/* ---- building levels ---------------------------------------------------------------- */

/* Serialized partial or merged nodes: k, key, n, then n (material, count) pairs. */
typedef struct {
    uint64_t *v;
    size_t n, capacity;
} word_buffer;

static int words_push(word_buffer *b, const uint64_t *words, size_t n)
{
    if (b->n + n > b->capacity) {
        size_t capacity = (b->n + n) * 2 + 64;
        uint64_t *grown = strata_realloc(b->v, capacity * sizeof *grown);
        if (!grown)
            return 0;
        b->v = grown, b->capacity = capacity;
    }
    memcpy(b->v + b->n, words, n * sizeof *words);
    b->n += n;
    return 1;
}

static int words_node(word_buffer *b, int k, uint64_t key, const lod_count *h, size_t n)
{
    uint64_t head[3] = {(uint64_t)k, key, n};
    if (!words_push(b, head, 3))
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t pair[2] = {h[i].material, h[i].count};
        if (!words_push(b, pair, 2))
            return 0;
    }
    return 1;
}

/* One level up: unfilled sums of the children in `from`, grouped by key >> 3. */
static int sum_level(const node_set *from, node_set *to, hist_buffer *tmp)
{
    for (size_t i = 0; i < from->count;) {
        uint64_t parent = from->nodes[i].key >> 3;
        tmp->n = 0;
        for (; i < from->count && from->nodes[i].key >> 3 == parent; i++) {
            const octree_node *c = &from->nodes[i];
            if (!hist_reserve(tmp, c->hist_n))
                return 0;
            memcpy(tmp->h + tmp->n, from->pool + c->hist, c->hist_n * sizeof *tmp->h);
            tmp->n += c->hist_n;
        }
        tmp->n = hist_combine(tmp->h, tmp->n);
        if (!node_set_append(to, parent, tmp->h, tmp->n, 0))
            return 0;
    }
    return 1;
}

/* Rank 0: merge every rank's partial global nodes, fill air; the result serialized. */
static int merge_partials(strata_world *w, const uint64_t *v, size_t n, word_buffer *out)
{
    typedef struct {
        uint64_t k, key, at, n;
    } record;
    size_t count = 0, capacity = 64;
    record *r = strata_malloc(capacity * sizeof *r);
    if (!r)
        return 0;
    for (size_t i = 0; i + 3 <= n; i += 3 + 2 * v[i + 2]) {
        if (count == capacity) {
            record *grown = strata_realloc(r, (capacity *= 2) * sizeof *r);
            if (!grown) {
                free(r);
                return 0;
            }
            r = grown;
        }
        r[count++] = (record){v[i], v[i + 1], i + 3, v[i + 2]};
    }
    /* Insertion order is rank order; a stable sort by (k, key) groups partials. */
    for (size_t i = 1; i < count; i++) {
        record t = r[i];
        size_t j = i;
        while (j > 0 && (r[j - 1].k > t.k || (r[j - 1].k == t.k && r[j - 1].key > t.key)))
            r[j] = r[j - 1], j--;
        r[j] = t;
    }
    hist_buffer tmp = {0};
    int ok = 1;
    for (size_t i = 0; ok && i < count;) {
        size_t j = i;
        tmp.n = 0;
        for (; ok && j < count && r[j].k == r[i].k && r[j].key == r[i].key; j++) {
            ok = hist_reserve(&tmp, r[j].n + 1);
            for (uint64_t e = 0; ok && e < r[j].n; e++)
                tmp.h[tmp.n++] = (lod_count){(uint16_t)v[r[j].at + 2 * e], v[r[j].at + 2 * e + 1]};
        }
        if (!ok)
            break;
        tmp.n = hist_combine(tmp.h, tmp.n);
        int k = (int)r[i].k;
        tmp.n = hist_fill_air(tmp.h, tmp.n, node_voxels(w, w->edge_bits + k, r[i].key));
        ok = words_node(out, k, r[i].key, tmp.h, tmp.n);
        i = j;
    }
    free(tmp.h);
    free(r);
    return ok;
}

/* Every rank: load the merged global nodes. */
static int load_global(strata_world *w, lod_index *x, const uint64_t *v, size_t n)
{
    hist_buffer tmp = {0};
    int ok = 1;
    for (size_t i = 0; ok && i + 3 <= n; i += 3 + 2 * v[i + 2]) {
        int k = (int)v[i];
        uint64_t m = v[i + 2];
        tmp.n = 0;
        ok = hist_reserve(&tmp, m) && k >= 1 && k <= x->max_level;
        for (uint64_t e = 0; ok && e < m; e++)
            tmp.h[tmp.n++] = (lod_count){(uint16_t)v[i + 3 + 2 * e], v[i + 4 + 2 * e]};
        if (ok)
            ok = node_set_append(&x->global[k], v[i + 1], tmp.h, tmp.n,
                                 node_voxels(w, w->edge_bits + k, v[i + 1]));
    }
    free(tmp.h);
    return ok;
}

static strata_status share_global(strata_world *w, lod_index *x, const word_buffer *partial)
{
    int mine = (int)partial->n, *counts = NULL, *displs = NULL;
    strata_status st = STRATA_OK;
    if (partial->n > INT32_MAX)
        st = WORLD_FAIL(w, STRATA_ERR_OVERFLOW, "too many replicated index nodes");
    if (w->rank == 0) {
        counts = strata_malloc((size_t)w->size * sizeof *counts);
        displs = strata_malloc((size_t)w->size * sizeof *displs);
        if (!counts || !displs)
            st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot gather index nodes");
    }
    st = world_agree(w, st);
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, w->comm),
                                      "gathering index node counts"));
    uint64_t *all = NULL;
    size_t total = 0;
    if (!st && w->rank == 0) {
        for (int r = 0; r < w->size; r++) {
            displs[r] = (int)total;
            total += (size_t)counts[r];
            if (total > INT32_MAX)
                st = WORLD_FAIL(w, STRATA_ERR_OVERFLOW, "too many replicated index nodes");
        }
        if (!st && !(all = strata_malloc((total ? total : 1) * sizeof *all)))
            st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot gather index nodes");
    }
    st = world_agree(w, st);
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Gatherv(partial->v, mine, MPI_UINT64_T, all, counts,
                                                  displs, MPI_UINT64_T, 0, w->comm),
                                      "gathering index nodes"));
    word_buffer merged = {0};
    if (!st && w->rank == 0 && !merge_partials(w, all, total, &merged))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot merge index nodes");
    free(all);
    free(counts);
    free(displs);
    st = world_agree(w, st);
    uint64_t size = merged.n;
    if (!st)
        st = world_agree(w, error_mpi(&w->error, MPI_Bcast(&size, 1, MPI_UINT64_T, 0, w->comm),
                                      "sharing the global index"));
    if (!st && w->rank != 0 && !(merged.v = strata_malloc((size ? size : 1) * sizeof *merged.v)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold the global index");
    st = world_agree(w, st);
    if (!st && size > INT32_MAX)
        st = WORLD_FAIL(w, STRATA_ERR_OVERFLOW, "global index too large");
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Bcast(merged.v, (int)size, MPI_UINT64_T, 0, w->comm),
                                      "sharing the global index"));
    if (!st && (!load_global(w, x, merged.v, size) || !index_top_levels(w, x)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot load the global index");
    free(merged.v);
    return world_agree(w, st);
}

strata_status octree_build(strata_world *w, lod_index *x)
{
    for (int k = 0; k <= OCTREE_MAX_LEVELS; k++) {
        node_set_free(&x->local[k]);
        node_set_free(&x->global[k]);
        free(x->direct[k]);
        x->direct[k] = NULL;
    }
    index_levels(w, x);
    strata_status st = find_straddlers(w, x);
    word_buffer partial = {0};
    hist_buffer tmp = {0};
    node_set below = {0}, level = {0};
    const node_set *from = &x->chunks;
    for (int k = 1; !st && k <= x->max_level; k++) {
        memset(&level, 0, sizeof level);
        if (!sum_level(from, &level, &tmp)) {
            node_set_free(&level); /* what it appended before failing */
            st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot build index level %d", k);
            break;
        }
        for (size_t i = 0; !st && i < level.count; i++) {
            const octree_node *n = &level.nodes[i];
            int ok;
            if (octree_is_global(x, k, n->key)) {
                ok = words_node(&partial, k, n->key, level.pool + n->hist, n->hist_n);
            } else {
                tmp.n = 0;
                ok = hist_reserve(&tmp, n->hist_n + 1);
                if (ok) {
                    memcpy(tmp.h, level.pool + n->hist, n->hist_n * sizeof *tmp.h);
                    uint64_t voxels = node_voxels(w, w->edge_bits + k, n->key);
                    tmp.n = hist_fill_air(tmp.h, n->hist_n, voxels);
                    ok = node_set_append(&x->local[k], n->key, tmp.h, tmp.n, voxels);
                }
            }
            if (!ok)
                st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot build index level %d", k);
        }
        node_set_free(&below);
        below = level;
        from = &below;
    }
    node_set_free(&below);
    free(tmp.h);
    st = world_agree(w, st);
    if (!st)
        st = share_global(w, x, &partial);
    free(partial.v);
    return st;
}

/* ---- hashing (tests: the index must not depend on the rank count) -------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static uint64_t hash_set(const node_set *s, int k)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < s->count; i++) {
        const octree_node *n = &s->nodes[i];
        uint64_t h = mix(mix(0x51ed270b, (uint64_t)k), n->key);
        h = mix(mix(h, n->dominant), n->dominant_count);
        for (uint32_t e = 0; e < n->hist_n; e++)
            h = mix(mix(h, s->pool[n->hist + e].material), s->pool[n->hist + e].count);
        sum += h;
    }
    return sum;
}

strata_status octree_hash(strata_world *w, uint64_t *hash)
{
    strata_status st = index_ensure(w, STRATA_OK, 1);
    if (st)
        return st;
    lod_index *x = w->index;
    uint64_t local = hash_set(&x->chunks, 0), total = 0;
    for (int k = 1; k <= x->max_level; k++)
        local += hash_set(&x->local[k], k);
    st = world_agree(w, error_mpi(&w->error,
                                  MPI_Allreduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, w->comm),
                                  "hashing the index"));
    for (int k = 1; k <= x->max_level; k++)
        total += hash_set(&x->global[k], k);
    *hash = total;
    return st;
}

/* ---- the index object ---------------------------------------------------------------- */

strata_status index_get(strata_world *w, lod_index **out)
{
    if (!w->index) {
        lod_index *x = strata_calloc(1, sizeof *x);
        if (!x)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate the LOD index");
        x->voxels = strata_malloc(w->chunk_voxels * sizeof *x->voxels);
        strata_status st = x->voxels
                               ? lod_work_create(w->edge, &x->work, &w->error)
                               : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate the LOD index");
        if (st) {
            free(x->voxels);
            free(x);
            return st;
        }
        size_t slots = INDEX_PYRAMID_CACHE_BYTES / lod_pyramid_bytes(w->edge);
        x->cache_slots = slots < 16 ? 16 : slots > 4096 ? 4096 : slots;
        if (!(x->cache = strata_calloc(x->cache_slots, sizeof *x->cache))) {
            lod_work_free(x->work);
            free(x->voxels);
            free(x);
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate the pyramid cache");
        }
        index_levels(w, x);
        w->index = x;
        w->index_free = index_free;
    }
    *out = w->index;
    return STRATA_OK;
}

static void free_levels(lod_index *x)
{
    for (int k = 0; k <= OCTREE_MAX_LEVELS; k++) {
        node_set_free(&x->local[k]);
        node_set_free(&x->global[k]);
        free(x->straddle[k]);
        x->straddle[k] = NULL;
        free(x->direct[k]);
        x->direct[k] = NULL;
        x->straddle_n[k] = 0;
    }
    node_set_free(&x->chunks);
    node_set_free(&x->pending);
    x->built = 0;
}

void index_begin_write(strata_world *w)
{
    if (w->index)
        node_set_free(&w->index->pending);
}

void index_invalidate(strata_world *w)
{
    if (w->index)
        free_levels(w->index);
}

static uint64_t node_set_bytes(const node_set *s)
{
    return (uint64_t)s->capacity * sizeof *s->nodes + (uint64_t)s->pool_capacity * sizeof *s->pool;
}

void index_memory(const lod_index *x, uint64_t *own, uint64_t *replicated, uint64_t *cache)
{
    *own = *replicated = *cache = 0;
    if (!x)
        return;
    *own = sizeof *x + node_set_bytes(&x->chunks) + node_set_bytes(&x->pending);
    for (int k = 0; k <= OCTREE_MAX_LEVELS; k++) {
        *own += node_set_bytes(&x->local[k]);
        *replicated += node_set_bytes(&x->global[k]) +
                       (x->direct[k] ? x->direct_n[k] : 0) * sizeof *x->direct[k] +
                       (uint64_t)x->straddle_n[k] * sizeof *x->straddle[k];
    }
    *cache = (uint64_t)x->cache_slots * sizeof *x->cache + x->frame_size;
    for (size_t i = 0; i < x->cache_slots; i++) {
        const lod_pyramid *p = &x->cache[i].pyramid;
        if (p->mode)
            *cache += (uint64_t)p->offset[p->levels + 1] * (sizeof *p->mode + sizeof *p->count);
    }
    if (x->voxels)
        *cache += ((uint64_t)1 << (3 * x->chunk_bits)) * sizeof *x->voxels;
}

void index_free(strata_world *w)
{
    lod_index *x = w->index;
    if (!x)
        return;
    free_levels(x);
    for (size_t i = 0; i < x->cache_slots; i++)
        lod_pyramid_free(&x->cache[i].pyramid);
    free(x->cache);
    free(x->frame);
    lod_work_free(x->work);
    free(x->voxels);
    free(x);
    w->index = NULL;
}

uint64_t index_count_stale(const store_row *rows, size_t n)
{
    uint64_t stale = 0;
    for (size_t i = 0; i < n; i++)
        stale += (rows[i].flags & STORE_ROW_INDEX_STALE) != 0;
    return stale;
}

int index_row_single(const store_row *row, uint16_t *material)
{
    if (store_row_uniform(row)) {
        *material = row->value;
        return 1;
    }
    if (!(row->flags & STORE_ROW_INDEX_STALE) && row->distinct == 1) {
        *material = row->dominant;
        return 1;
    }
    return 0;
}

static void chunk_extent(const strata_world *w, uint64_t key, int extent[3])
{
    int64_t b[6];
    world_chunk_bounds(w, key, b);
    for (int i = 0; i < 3; i++)
        extent[i] = (int)(b[i + 3] - b[i]);
}

static uint64_t chunk_voxels_inside(const strata_world *w, uint64_t key)
{
    int e[3];
    chunk_extent(w, key, e);
    return (uint64_t)e[0] * (uint64_t)e[1] * (uint64_t)e[2];
}

int index_palette_serves(const strata_world *w, const lod_work *wk, uint64_t key, int count)
{
    int extent[3];
    chunk_extent(w, key, extent);
    return lod_can_summarize_palette(wk, count, extent);
}

/* Summarise voxels (or a uniform value) with the scratch wk; from the
 * palette form when there is one that lod_summarize_palette serves (pyr is
 * then NULL: the pyramid is only there to be encoded). */
static strata_status summarize(const strata_world *w, lod_work *wk, uint64_t key,
                               const uint16_t *voxels, const chunk_palette *palette, uint16_t value,
                               const lod_pyramid **pyr, const lod_count **hist, size_t *hist_n,
                               lod_count *single, strata_error *err)
{
    if (palette && index_palette_serves(w, wk, key, palette->count)) {
        /* only the stored levels: the change path with no change (lod_lanes_begin) */
        int extent[3], served = 0;
        chunk_extent(w, key, extent);
        *pyr = NULL;
        strata_status st = lod_lanes_begin(wk, palette->ids, palette->count, palette->bits,
                                           palette->packed, extent, &served, err);
        if (!st && served)
            return lod_lanes_end(wk, hist, hist_n, err);
        if (st)
            return st;
        return lod_summarize_palette(wk, palette->ids, palette->count, palette->bits,
                                     palette->packed, hist, hist_n, err);
    }
    if (palette && !voxels) /* a caller's slip: never read a palette chunk as uniform */
        return error_set(err, STRATA_ERR_ARG,
                         "chunk key %" PRIu64 ": a palette of %d ids needs its voxels", key,
                         palette->count);
    if (!voxels) {
        *single = (lod_count){value, chunk_voxels_inside(w, key)};
        *pyr = NULL;
        *hist = single;
        *hist_n = 1;
        return STRATA_OK;
    }
    int extent[3];
    chunk_extent(w, key, extent);
    return lod_build(wk, voxels, extent, pyr, hist, hist_n, err);
}

/* The row's summary from a chunk's histogram; its pyramid payload from wk's last build
 * (stored levels); the histogram kept in pending. */
static strata_status summary_tail(const strata_world *w, lod_work *wk, node_set *pending,
                                  const lod_count *hist, size_t n, store_row *row,
                                  const uint8_t **pyramid, size_t *length, strata_error *err)
{
    uint64_t count;
    lod_dominant(hist, n, &row->dominant, &count);
    row->dominant_count = (uint32_t)count;
    row->distinct = n > UINT16_MAX ? UINT16_MAX : (uint16_t)n;
    row->flags &= (uint8_t)~STORE_ROW_INDEX_STALE;
    *length = 0;
    if (n > 1) {
        strata_status st =
            lod_encode_levels(wk, LOD_ZSTD_LEVEL, lod_stored_lowest(w->edge), pyramid, length, err);
        if (st)
            return st;
    }
    if (pending && !node_set_append(pending, row->key, hist, n, chunk_voxels_inside(w, row->key)))
        return error_set(err, STRATA_ERR_NOMEM, "cannot keep the histogram of chunk key %" PRIu64,
                         row->key);
    return STRATA_OK;
}

strata_status index_summarize_chunk_in(const strata_world *w, lod_work *wk, node_set *pending,
                                       const uint16_t *voxels, const chunk_palette *palette,
                                       uint16_t value, store_row *row, const uint8_t **pyramid,
                                       size_t *length, strata_error *err)
{
    const lod_pyramid *pyr;
    const lod_count *hist;
    size_t n;
    lod_count single;
    strata_status st =
        summarize(w, wk, row->key, voxels, palette, value, &pyr, &hist, &n, &single, err);
    return st ? st : summary_tail(w, wk, pending, hist, n, row, pyramid, length, err);
}

static int lanes_apply(void *wk, const uint32_t *voxel, const uint16_t *material, size_t n)
{
    return lod_lanes_apply(wk, voxel, material, n);
}

strata_status index_summarize_changes(const strata_world *w, lod_work *wk, node_set *pending,
                                      const index_change *c, store_row *row,
                                      const uint8_t **pyramid, size_t *length, int *served,
                                      strata_error *err)
{
    int extent[3];
    chunk_extent(w, row->key, extent);
    const chunk_palette *b = c->base;
    strata_status st =
        b ? lod_lanes_begin(wk, b->ids, b->count, b->bits, b->packed, extent, served, err)
          : lod_lanes_begin(wk, &c->value, 1, 0, NULL, extent, served, err);
    if (st || !*served)
        return st;
    if (c->depth) {
        int stopped = 0;
        st = delta_chain_changes(c->chain, c->chain_bytes, c->depth, w->edge, c->scratch,
                                 lanes_apply, wk, &stopped, err);
        if (st == STRATA_ERR_ARG || stopped) { /* a version-1 record, a 17th material */
            *served = 0;
            return STRATA_OK;
        }
        if (st)
            return error_set(err, st, "chunk key %" PRIu64 ": delta chain: %s", row->key,
                             err->message);
    }
    if (!lod_lanes_log(wk, c->log, c->log_count)) {
        *served = 0; /* a 17th material: the caller summarises the voxels */
        return STRATA_OK;
    }
    const lod_count *hist;
    size_t n;
    st = lod_lanes_end(wk, &hist, &n, err);
    return st ? st : summary_tail(w, wk, pending, hist, n, row, pyramid, length, err);
}

strata_status index_summarize_chunk(strata_world *w, const uint16_t *voxels, uint16_t value,
                                    store_row *row, const uint8_t **pyramid, size_t *length)
{
    lod_index *x;
    strata_status st = index_get(w, &x);
    if (st)
        return st;
    return index_summarize_chunk_in(w, x->work, x->built ? &x->pending : NULL, voxels, NULL, value,
                                    row, pyramid, length, &w->error);
}

strata_status index_pending_merge(strata_world *w, node_set *sets, int n)
{
    lod_index *x = w->index;
    size_t *at = strata_calloc((size_t)n + 1, sizeof *at);
    int ok = at != NULL;
    for (;;) {
        int best = -1;
        for (int t = 0; ok && t < n; t++)
            if (at[t] < sets[t].count &&
                (best < 0 || sets[t].nodes[at[t]].key < sets[best].nodes[at[best]].key))
                best = t;
        if (!ok || best < 0)
            break;
        const octree_node *node = &sets[best].nodes[at[best]++];
        ok = node_set_append(&x->pending, node->key, node_hist(&sets[best], node), node->hist_n,
                             node->voxels);
    }
    free(at);
    for (int t = 0; t < n; t++)
        node_set_free(&sets[t]);
    return ok ? STRATA_OK
              : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot keep the histograms of the commit");
}

/* Merge pending histograms (ascending keys) into the chunk set. */
static int merge_pending(lod_index *x)
{
    node_set merged = {0};
    const node_set *a = &x->chunks, *b = &x->pending;
    size_t i = 0, j = 0;
    int ok = 1;
    while (ok && (i < a->count || j < b->count)) {
        const node_set *s;
        const octree_node *n;
        if (j == b->count || (i < a->count && a->nodes[i].key < b->nodes[j].key)) {
            s = a, n = &a->nodes[i++];
        } else {
            if (i < a->count && a->nodes[i].key == b->nodes[j].key)
                i++;
            s = b, n = &b->nodes[j++];
        }
        ok = node_set_append(&merged, n->key, s->pool + n->hist, n->hist_n, n->voxels);
    }
    if (!ok) {
        node_set_free(&merged);
        return 0;
    }
    node_set_free(&x->chunks);
    node_set_free(&x->pending);
    x->chunks = merged;
    return 1;
}

void index_after_write(strata_world *w, int stale)
{
    lod_index *x = w->index;
    int built = x && x->built;
    if (!built)
        return;
    strata_status st = STRATA_OK;
    if (stale)
        st = STRATA_ERR_ARG; /* deferred: forget; the next query re-summarises */
    else if (!merge_pending(x))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot update the index");
    strata_error saved = w->error;
    /* Every rank has the index built or none: agree on rebuilding it. */
    int local = st != STRATA_OK, any = 0;
    MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_LOR, w->comm);
    if (!any) {
        double start = MPI_Wtime();
        any = octree_build(w, x) != STRATA_OK;
        x->last_build_seconds = MPI_Wtime() - start;
    }
    if (any)
        free_levels(x);
    w->error = saved;
}

/* ---- chunk rows: histograms and pyramids ------------------------------------------- */

static strata_status row_voxels(strata_world *w, lod_index *x, const store_row *row)
{
    return world_decode_row(w, row, x->voxels);
}

/* A row whose histogram is read from its stored pyramid (not one material, not stale). */
static int row_has_pyramid(const store_row *row)
{
    uint16_t material;
    return !index_row_single(row, &material) && !(row->flags & STORE_ROW_INDEX_STALE) &&
           row->lod_length;
}

/* The decompressed content of the pyramid frame a row's lod_* fields name,
 * checked (CRC-32, zstd, a pack's directory), through the one-frame cache. */
static strata_status row_frame(strata_world *w, lod_index *x, const store_row *row,
                               const uint8_t *bytes, const uint8_t **content, size_t *size)
{
    if (x->frame && x->frame_segment == row->lod_segment && x->frame_offset == row->lod_offset &&
        x->frame_length == row->lod_length && x->frame_crc == row->lod_crc) {
        *content = x->frame;
        *size = x->frame_size;
        return STRATA_OK;
    }
    free(x->frame);
    x->frame = NULL;
    uint8_t *read = NULL;
    strata_status st;
    if (bytes) {
        st = store_check_payload(w->store.dir, row->lod_segment, row->lod_offset, row->lod_length,
                                 row->lod_crc, row->key, bytes, &w->error);
    } else if (!(read = strata_malloc(row->lod_length))) {
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot read the pyramid of chunk key %" PRIu64,
                        row->key);
    } else {
        st = store_read_payload(&w->store, row->lod_segment, row->lod_offset, row->lod_length,
                                row->lod_crc, row->key, read, &w->error);
        bytes = read;
    }
    if (!st)
        st = lod_frame_content(bytes, row->lod_length, w->edge, &x->frame, &x->frame_size,
                               &w->error);
    free(read);
    if (st)
        return st;
    x->frame_reads++;
    x->frame_segment = row->lod_segment;
    x->frame_offset = row->lod_offset;
    x->frame_length = row->lod_length;
    x->frame_crc = row->lod_crc;
    *content = x->frame;
    *size = x->frame_size;
    return STRATA_OK;
}

/* Decode the stored pyramid of a row (bytes: its frame, read by the caller, or
 * NULL to read it); pyr NULL: the histogram only. */
static strata_status row_stored(strata_world *w, lod_index *x, const store_row *row,
                                const uint8_t *bytes, lod_pyramid *pyr, lod_count **hist, size_t *n)
{
    const uint8_t *content, *entry;
    size_t size, entry_size;
    strata_status st = row_frame(w, x, row, bytes, &content, &size);
    if (!st)
        st = lod_content_entry(content, size, row->key, &entry, &entry_size, &w->error);
    if (!st)
        st = lod_parse(entry, entry_size, w->edge, pyr, hist, n, &w->error);
    return st;
}

/* The histogram of an own row: a one-material row's from the row; a stored
 * pyramid's (payload: its frame's bytes, read by the caller) checked and decoded;
 * a stale row's summarised from its data. *hist is malloc'ed. */
static strata_status row_histogram(strata_world *w, lod_index *x, const store_row *row,
                                   const uint8_t *payload, lod_count **hist, size_t *n)
{
    uint16_t material;
    *hist = NULL;
    if (index_row_single(row, &material)) {
        if (!(*hist = strata_malloc(sizeof **hist)))
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate a histogram");
        **hist = (lod_count){material, chunk_voxels_inside(w, row->key)};
        *n = 1;
        return STRATA_OK;
    }
    strata_status st;
    if (payload) {
        st = row_stored(w, x, row, payload, NULL, hist, n);
        return st ? world_chunk_failed(w, LOD_PYRAMID_DAMAGED, row->key, st, &w->error) : STRATA_OK;
    }
    /* Stale (or summary-less) row: summarise its data in memory. */
    st = row_voxels(w, x, row);
    const lod_pyramid *pyr;
    const lod_count *h;
    lod_count single;
    if (!st)
        st = summarize(w, x->work, row->key, x->voxels, NULL, 0, &pyr, &h, n, &single, &w->error);
    if (st)
        return st;
    if (!(*hist = strata_malloc(*n * sizeof **hist)))
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate a histogram");
    memcpy(*hist, h, *n * sizeof **hist);
    return STRATA_OK;
}

strata_status index_row_pyramid(strata_world *w, const store_row *row, int need,
                                const lod_pyramid **out)
{
    lod_index *x;
    strata_status st = index_get(w, &x);
    if (st)
        return st;
    uint8_t stale = (row->flags & STORE_ROW_INDEX_STALE) || !row->lod_length;
    /* Two-way set associative by key: consecutive (Morton-adjacent) keys land in
     * different sets, so a walk over a region keeps its chunks; the older entry
     * of a set is replaced. An entry serves levels from its pyramid's lowest up. */
    pyramid_entry *set = &x->cache[(row->key % (x->cache_slots / 2)) * 2], *victim = set;
    for (int way = 0; way < 2; way++) {
        pyramid_entry *e = &set[way];
        if (e->pyramid.mode && e->key == row->key && e->epoch == row->epoch &&
            e->lod_segment == row->lod_segment && e->lod_offset == row->lod_offset &&
            e->stale == stale && e->pyramid.lowest <= need) {
            e->used = ++x->clock;
            *out = &e->pyramid;
            return STRATA_OK;
        }
        if (e->pyramid.mode && e->key == row->key)
            victim = e; /* the same chunk, too coarse or outdated: replace it */
    }
    if (victim == set && set[1].used < set[0].used &&
        !(set[0].pyramid.mode && set[0].key == row->key))
        victim = &set[1];
    lod_pyramid_free(&victim->pyramid);
    int derive = stale;
    if (!stale) {
        st = row_stored(w, x, row, NULL, &victim->pyramid, NULL, NULL);
        if (st)
            st = world_chunk_failed(w, LOD_PYRAMID_DAMAGED, row->key, st, &w->error);
        else if (victim->pyramid.lowest > need) {
            lod_pyramid_free(&victim->pyramid);
            derive = 1; /* a finer level than stored: from the chunk's data */
        }
    }
    if (!st && derive) {
        const lod_pyramid *pyr;
        const lod_count *h;
        size_t n;
        lod_count single;
        x->derived += !stale;
        st = row_voxels(w, x, row);
        if (!st)
            st = summarize(w, x->work, row->key, x->voxels, NULL, 0, &pyr, &h, &n, &single,
                           &w->error);
        if (!st)
            st = lod_pyramid_alloc(w->edge, &victim->pyramid, &w->error);
        if (!st) {
            size_t cells = pyr->offset[pyr->levels + 1];
            memcpy(victim->pyramid.mode, pyr->mode, cells * sizeof *pyr->mode);
            memcpy(victim->pyramid.count, pyr->count, cells * sizeof *pyr->count);
        }
    }
    if (st) {
        lod_pyramid_free(&victim->pyramid);
        return st;
    }
    victim->key = row->key;
    victim->epoch = row->epoch;
    victim->lod_segment = row->lod_segment;
    victim->lod_offset = row->lod_offset;
    victim->stale = stale;
    victim->used = ++x->clock;
    *out = &victim->pyramid;
    return STRATA_OK;
}

/* ---- building the whole index ------------------------------------------------------------ */

/* Rows whose stored pyramids are read together: a round's payloads are read in
 * spans (one HDF5 call per run of neighbouring payloads) and only their
 * histograms decoded. */
#define INDEX_ROUND_ROWS 4096
#define INDEX_READ_GAP   ((uint64_t)4096)

/* Every own row's histogram into x->chunks, ascending key: one-material rows
 * from the row, stored pyramids read a round at a time, stale rows summarised
 * from their data. */
static strata_status load_histograms(strata_world *w, lod_index *x)
{
    const size_t round = w->row_count < INDEX_ROUND_ROWS ? w->row_count : INDEX_ROUND_ROWS;
    store_ref *refs = strata_malloc((round + 1) * sizeof *refs);
    uint64_t *at = strata_malloc((round + 1) * sizeof *at);
    uint8_t *buffer = NULL;
    uint64_t capacity = 0;
    strata_status st =
        refs && at ? STRATA_OK : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot plan the index reads");
    for (size_t first = 0; !st && first < w->row_count; first += round) {
        const size_t count = w->row_count - first < round ? w->row_count - first : round;
        size_t wanted = 0;
        for (size_t i = 0; i < count; i++) {
            const store_row *row = &w->rows[first + i];
            at[i] = UINT64_MAX;
            if (row_has_pyramid(row))
                refs[wanted++] =
                    (store_ref){row->lod_segment, row->lod_offset, row->lod_length, row->key, i, 0};
        }
        size_t failed;
        st = store_read_many(&w->store, refs, wanted, INDEX_READ_GAP, &buffer, &capacity, &failed,
                             &w->error);
        if (st && failed < wanted)
            st = world_chunk_failed(w, "index", refs[failed].key, st, &w->error);
        for (size_t k = 0; !st && k < wanted; k++)
            at[refs[k].item] = refs[k].at;
        for (size_t i = 0; !st && i < count; i++) {
            const store_row *row = &w->rows[first + i];
            lod_count *h = NULL;
            size_t n = 0;
            st = row_histogram(w, x, row, at[i] == UINT64_MAX ? NULL : buffer + at[i], &h, &n);
            if (!st &&
                !node_set_append(&x->chunks, row->key, h, n, chunk_voxels_inside(w, row->key)))
                st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold chunk histograms");
            free(h);
        }
    }
    free(buffer);
    free(at);
    free(refs);
    return st;
}

strata_status index_ensure(strata_world *w, strata_status st, int need)
{
    lod_index *x = NULL;
    if (!st)
        st = index_get(w, &x);
    /* One reduction: the lowest failing rank (as error_agree), and whether no rank
     * needs a build (each either does not need the index or has it built). */
    int mine[2] = {st ? w->rank : w->size, !need || (!st && x->built)}, all[2] = {w->size, 0};
    int rc = MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MIN, w->comm);
    if (rc != MPI_SUCCESS)
        return error_mpi(&w->error, rc, "agreeing on a collective status");
    if (all[0] < w->size) /* some rank failed: every rank shares its message */
        return world_agree(w, st);
    w->error.status = STRATA_OK;
    if (all[1])
        return STRATA_OK;
    double start = MPI_Wtime();
    free_levels(x);
    st = load_histograms(w, x);
    st = world_agree(w, st);
    if (!st)
        st = octree_build(w, x);
    if (st) {
        free_levels(x);
        return st;
    }
    x->built = 1;
    x->last_build_seconds = MPI_Wtime() - start;
    return STRATA_OK;
}
