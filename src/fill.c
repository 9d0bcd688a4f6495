/* fill.c: bulk filling of chunks by a callback (terrain, imports). Each rank fills
 * only the chunks it owns, so no data crosses the network. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "morton.h"
#include "world.h"

typedef struct {
    strata_world *w;
    const int64_t *box;          /* clipped box, or the world */
    strata_fill_fn fn;
    void *ctx;
    uint16_t *voxels;
} fill_job;

static int covers(const int64_t *box, const int64_t b[6])
{
    return box[0] <= b[0] && box[1] <= b[1] && box[2] <= b[2] && box[3] >= b[3] &&
           box[4] >= b[4] && box[5] >= b[5];
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

static strata_status fill_one(fill_job *f, uint64_t key)
{
    strata_world *w = f->w;
    int64_t b[6];
    world_chunk_bounds(w, key, b);
    if (b[3] <= f->box[0] || b[4] <= f->box[1] || b[5] <= f->box[2] || b[0] >= f->box[3] ||
        b[1] >= f->box[4] || b[2] >= f->box[5])
        return STRATA_OK;
    memset(f->voxels, 0, w->chunk_voxels * sizeof *f->voxels);
    char message[STRATA_ERROR_MAX] = "";
    strata_status st = f->fn(b, w->edge, f->voxels, f->ctx, message);
    if (st)
        return WORLD_FAIL(w, st, "fill of chunk at voxel %" PRId64 ",%" PRId64 ",%" PRId64 ": %s",
                          b[0], b[1], b[2], message[0] ? message : strata_strerror(st));
    clear_outside(w, b, f->voxels);
    int whole = covers(f->box, b);
    chunk *k = chunk_cache_find(&w->owned, key);
    /* A whole chunk of air where nothing is stored needs no chunk at all. */
    if (whole && !k && !world_own_row(w, key) && all_air(f->voxels, w->chunk_voxels))
        return STRATA_OK;
    if (!k)
        st = world_own_chunk(w, key, &k);
    if (!st)
        st = chunk_make_dense(&w->owned, k, &w->error);
    if (st)
        return st;
    if (whole) {
        memcpy(k->voxels, f->voxels, w->chunk_voxels * sizeof *f->voxels);
    } else {
        const int64_t e = w->edge;
        for (int64_t z = b[2]; z < b[5]; z++)
            for (int64_t y = b[1]; y < b[4]; y++)
                for (int64_t x = b[0]; x < b[3]; x++)
                    if (x >= f->box[0] && x < f->box[3] && y >= f->box[1] && y < f->box[4] &&
                        z >= f->box[2] && z < f->box[5]) {
                        size_t i = (size_t)(((z - b[2]) * e + (y - b[1])) * e + (x - b[0]));
                        k->voxels[i] = f->voxels[i];
                    }
    }
    chunk_set_dirty(&w->owned, k, 1);
    chunk_collapse_uniform(&w->owned, k);
    world_evict(w);
    return STRATA_OK;
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
        box_chunks = box_chunks > UINT64_MAX / (hi[i] - lo[i]) ? UINT64_MAX : box_chunks * (hi[i] - lo[i]);
    }
    uint64_t end = morton_key_end(w->chunks);
    uint64_t first = w->split[w->rank], last = w->split[w->rank + 1] < end ? w->split[w->rank + 1] : end;
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
        if (c[0] >= lo[0] && c[0] < hi[0] && c[1] >= lo[1] && c[1] < hi[1] && c[2] >= lo[2] && c[2] < hi[2])
            st = fill_one(f, key);
    }
    return st;
}

strata_status strata_fill(strata_world *w, const int64_t *box, strata_fill_fn fn, void *ctx)
{
    int64_t clipped[6] = {0, 0, 0, w->committed.dims[0], w->committed.dims[1], w->committed.dims[2]};
    strata_status st = STRATA_OK;
    if (!w->writable)
        st = WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "%s is open read-only", w->final_dir);
    else if (!fn)
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "strata_fill: no callback");
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
    fill_job f = {w, clipped, fn, ctx, malloc(w->chunk_voxels * sizeof(uint16_t))};
    st = f.voxels ? fill_all(&f) : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate a fill buffer");
    free(f.voxels);
    return world_agree(w, st);
}
