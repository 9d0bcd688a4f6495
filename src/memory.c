/* memory.c: strata_world_memory, the bytes a rank's world holds by category
 * (issue 20: every part of a rank's footprint, measured). */
#include <string.h>

#include "index/octree.h"
#include "world.h"

static uint64_t slabs_bytes(const chunk_slabs *s)
{
    return s->capacity * sizeof *s->slabs + s->bytes;
}

static uint64_t cache_bytes(const chunk_cache *c)
{
    return (uint64_t)c->capacity * sizeof *c->slots + (uint64_t)c->count * sizeof(chunk) +
           slabs_bytes(&c->slabs);
}

strata_status strata_world_memory(strata_world *w, strata_memory *out)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    if (!out)
        return world_null_argument(w, __func__, "out");
    memset(out, 0, sizeof *out);
    out->rows = (uint64_t)w->row_count * sizeof *w->rows;
    const store *s = &w->store;
    out->segments = (uint64_t)s->count * sizeof *s->segments + store_fence_bytes(s);
    for (size_t i = 0; i < s->count; i++) {
        const store_segment *g = &s->segments[i];
        for (int b = 0; b < STORE_CACHED_BLOCKS; b++)
            if (g->blocks[b].rows) /* each buffer holds a whole block */
                out->row_blocks += (uint64_t)STORE_FENCE_ROWS * sizeof(store_row);
    }
    const manifest *m = &w->committed;
    out->manifest = ((uint64_t)w->size + 1) * sizeof *w->split +
                    ((uint64_t)m->split_ranks + 1) * sizeof *m->split +
                    m->segment_count * sizeof *m->segments +
                    m->material_count * sizeof *m->materials;
    out->chunk_cache = cache_bytes(&w->owned) + cache_bytes(&w->committed_copies) +
                       cache_bytes(&w->blind) + slabs_bytes(&w->blind_logs.slabs);
    out->routing = route_scratch_bytes(&w->route) + w->staged_capacity * sizeof *w->staged;
    index_memory(w->index, &out->index_own, &out->index_replicated, &out->index_cache);
    out->fixed = sizeof *w + chunk_scratch_size(w->edge) + chunk_encode_bound(w->edge);
    out->total = out->rows + out->segments + out->row_blocks + out->manifest + out->chunk_cache +
                 out->routing + out->index_own + out->index_replicated + out->index_cache +
                 out->fixed;
    return STRATA_OK;
}
