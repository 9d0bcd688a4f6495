/* fill.c: bulk filling of chunks by a callback (terrain, imports). Each rank fills
 * only the chunks it owns, so no data crosses the network. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "morton.h"
#include "world.h"

/* A chunk's new content, computed in phase one and installed in phase two. */
typedef struct {
    uint64_t key;
    uint16_t *voxels; /* NULL: uniform `value` */
    uint16_t value;
} filled_chunk;

typedef struct {
    strata_world *w;
    const int64_t *box; /* clipped box, or the world */
    strata_fill_fn fn;
    void *ctx;
    filled_chunk *done; /* phase one's results, not yet visible */
    size_t count, capacity;
} fill_job;

static int covers(const int64_t *box, const int64_t b[6])
{
    return box[0] <= b[0] && box[1] <= b[1] && box[2] <= b[2] && box[3] >= b[3] && box[4] >= b[4] &&
           box[5] >= b[5];
}

/* Zero the cells of a chunk buffer beyond the world's edge. */
static void clear_outside(const strata_world *w, const int64_t b[6], uint16_t *v)
{
    const int64_t e = w->edge;
    if (b[3] - b[0] == e && b[4] - b[1] == e && b[5] - b[2] == e)
        return;
    for (int64_t z = 0; z < e; z++)
        for (int64_t y = 0; y < e; y++)
            for (int64_t x = 0; x < e; x++)
                if (x >= b[3] - b[0] || y >= b[4] - b[1] || z >= b[5] - b[2])
                    v[(z * e + y) * e + x] = 0;
}

static int all_air(const uint16_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i])
            return 0;
    return 1;
}

static int all_equal(const uint16_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[0])
            return 0;
    return 1;
}

/* Keep the old values of the chunk's cells outside the box. */
static void keep_outside_box(const fill_job *f, const int64_t b[6], const chunk *old, uint16_t *v)
{
    const int64_t e = f->w->edge;
    for (int64_t z = 0; z < e; z++)
        for (int64_t y = 0; y < e; y++)
            for (int64_t x = 0; x < e; x++) {
                int64_t gx = b[0] + x, gy = b[1] + y, gz = b[2] + z;
                if (gx >= f->box[0] && gx < f->box[3] && gy >= f->box[1] && gy < f->box[4] &&
                    gz >= f->box[2] && gz < f->box[5])
                    continue;
                size_t i = (size_t)((z * e + y) * e + x);
                v[i] = old->voxels ? old->voxels[i] : old->value;
            }
}

/* Phase one for one chunk: compute its new content aside; the world is unchanged. */
static strata_status fill_one(fill_job *f, uint64_t key)
{
    strata_world *w = f->w;
    int64_t b[6];
    world_chunk_bounds(w, key, b);
    if (b[3] <= f->box[0] || b[4] <= f->box[1] || b[5] <= f->box[2] || b[0] >= f->box[3] ||
        b[1] >= f->box[4] || b[2] >= f->box[5])
        return STRATA_OK;
    if (f->count == f->capacity) {
        size_t capacity = f->capacity ? 2 * f->capacity : 64;
        filled_chunk *grown = strata_realloc(f->done, capacity * sizeof *grown);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %zu filled chunks", capacity);
        f->done = grown;
        f->capacity = capacity;
    }
    uint16_t *voxels = chunk_buffer_get(&w->owned);
    if (!voxels)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate a fill buffer");
    memset(voxels, 0, w->chunk_voxels * sizeof *voxels);
    char message[STRATA_ERROR_MAX] = "";
    strata_status st = f->fn(b, w->edge, voxels, f->ctx, message);
    if (st) {
        chunk_buffer_put(&w->owned, voxels);
        return WORLD_FAIL(w, st, "fill of chunk at voxel %" PRId64 ",%" PRId64 ",%" PRId64 ": %s",
                          b[0], b[1], b[2], message[0] ? message : strata_strerror(st));
    }
    clear_outside(w, b, voxels);
    chunk *k = chunk_cache_find(&w->owned, key);
    if (covers(f->box, b)) {
        /* A whole chunk of air where nothing is stored needs no chunk at all. */
        if (!k && !world_own_row(w, key) && !world_has_blind(w, key) &&
            all_air(voxels, w->chunk_voxels)) {
            chunk_buffer_put(&w->owned, voxels);
            return STRATA_OK;
        }
    } else {
        if (!k)
            st = world_own_chunk(w, key, &k);
        if (st) {
            chunk_buffer_put(&w->owned, voxels);
            return st;
        }
        keep_outside_box(f, b, k, voxels);
    }
    filled_chunk *d = &f->done[f->count++];
    d->key = key;
    d->value = voxels[0];
    d->voxels = voxels;
    /* Uniform results (all ocean, all rock) keep one value, not a dense copy. */
    if (all_equal(voxels, w->chunk_voxels)) {
        chunk_buffer_put(&w->owned, voxels);
        d->voxels = NULL;
    }
    return STRATA_OK;
}

/* Phase two, after every rank's phase one succeeded: install the new contents. */
static strata_status install_filled(fill_job *f)
{
    strata_world *w = f->w;
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < f->count && !st; i++) {
        filled_chunk *d = &f->done[i];
        chunk *b = w->blind.count ? chunk_cache_find(&w->blind, d->key) : NULL;
        if (b) /* blind writes before the fill: it replaces the chunk */
            chunk_cache_remove(&w->blind, b);
        chunk *k = chunk_cache_find(&w->owned, d->key);
        if (!k)
            st = chunk_cache_insert(&w->owned, d->key, d->value, &k, &w->error);
        if (st)
            break;
        chunk_set_dirty(&w->owned, k, 1);
        chunk_set_whole(k); /* a bulk write: committed whole, never as a delta */
        if (d->voxels) {
            chunk_adopt(&w->owned, k, d->voxels, w->chunk_voxels);
            d->voxels = NULL;
        } else {
            if (k->voxels)
                for (size_t v = 0; v < w->chunk_voxels; v++)
                    k->voxels[v] = d->value;
            k->value = d->value;
            chunk_collapse_uniform(&w->owned, k);
        }
    }
    world_evict(w);
    return st;
}

static void free_filled(fill_job *f)
{
    for (size_t i = 0; i < f->count; i++)
        chunk_buffer_put(&f->w->owned, f->done[i].voxels);
    free(f->done);
    f->done = NULL;
    f->count = f->capacity = 0;
}

/* Visit own chunks meeting the box: by chunk coordinates when the box is small,
 * by walking the own key range otherwise. */
static strata_status fill_all(fill_job *f)
{
    strata_world *w = f->w;
    uint64_t lo[3], hi[3], box_chunks = 1;
    for (int i = 0; i < 3; i++) {
        lo[i] = (uint64_t)f->box[i] >> w->edge_bits;
        hi[i] = ((uint64_t)f->box[i + 3] + (uint64_t)w->edge - 1) >> w->edge_bits;
        box_chunks =
            box_chunks > UINT64_MAX / (hi[i] - lo[i]) ? UINT64_MAX : box_chunks * (hi[i] - lo[i]);
    }
    uint64_t end = morton_key_end(w->chunks);
    uint64_t first = w->split[w->rank],
             last = w->split[w->rank + 1] < end ? w->split[w->rank + 1] : end;
    strata_status st = STRATA_OK;
    if (first < last && box_chunks <= last - first) {
        for (uint64_t z = lo[2]; z < hi[2] && !st; z++)
            for (uint64_t y = lo[1]; y < hi[1] && !st; y++)
                for (uint64_t x = lo[0]; x < hi[0] && !st; x++) {
                    uint64_t key = world_key(w, x, y, z);
                    if (world_owns(w, key))
                        st = fill_one(f, key);
                }
        return st;
    }
    for (uint64_t key = first; key < last && !st; key++) {
        uint32_t c[3];
        morton_decode3(key, &c[0], &c[1], &c[2]);
        if (c[0] >= lo[0] && c[0] < hi[0] && c[1] >= lo[1] && c[1] < hi[1] && c[2] >= lo[2] &&
            c[2] < hi[2])
            st = fill_one(f, key);
    }
    return st;
}

strata_status strata_fill(strata_world *w, const int64_t *box, strata_fill_fn fn, void *ctx)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    int64_t clipped[6] = {
        0, 0, 0, w->committed.dims[0], w->committed.dims[1], w->committed.dims[2]};
    strata_status st = STRATA_OK;
    if (!w->writable)
        st = WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "%s is open read-only", w->final_dir);
    else if (!fn)
        st = world_null_argument(w, __func__, "fn");
    for (int i = 0; box && !st && i < 3; i++) {
        clipped[i] = box[i] > 0 ? box[i] : 0;
        clipped[i + 3] = box[i + 3] < clipped[i + 3] ? box[i + 3] : clipped[i + 3];
        if (clipped[i] >= clipped[i + 3])
            st = WORLD_FAIL(w, STRATA_ERR_RANGE, "fill box is empty after clipping to the world");
    }
    /* Pending updates first: a fill replaces voxels, later in input order. */
    if (!st)
        st = strata_flush(w, NULL);
    else
        st = world_agree(w, st);
    if (st)
        return st;
    /* Two phases, so that a callback failing on any rank changes nothing anywhere. */
    fill_job f = {w, clipped, fn, ctx, NULL, 0, 0};
    st = world_agree(w, fill_all(&f));
    if (!st)
        st = world_agree(w, install_filled(&f));
    free_filled(&f);
    world_evict(w);
    return st;
}
