/* rebalance.c: strata_rebalance, new splitters from per-chunk weights, recorded
 * by the next commit. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "index/octree.h"
#include "partition.h"
#include "world.h"

static int has_dirty(strata_world *w)
{
    return w->owned.dirty_bytes > 0 || w->blind.count > 0 || w->staged_count > 0;
}

strata_status strata_rebalance(strata_world *w, int by, strata_weight_fn fn, void *ctx)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    strata_status st = STRATA_OK;
    if (!w->writable)
        st = WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "%s is open read-only", w->final_dir);
    else if (has_dirty(w))
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "rebalance needs committed state: commit first");
    else if (by == STRATA_WEIGHT_CALLBACK && !fn)
        st = WORLD_FAIL(w, STRATA_ERR_ARG,
                        "strata_rebalance: STRATA_WEIGHT_CALLBACK needs a weight callback "
                        "(fn is NULL)");
    else if (by != STRATA_WEIGHT_COUNT && by != STRATA_WEIGHT_BYTES && by != STRATA_WEIGHT_CALLBACK)
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "rebalance: unknown weight %d", by);
    st = world_agree(w, st);
    if (st)
        return st;
    uint64_t *keys = strata_malloc((w->row_count + 1) * sizeof *keys);
    double *weights = strata_malloc((w->row_count + 1) * sizeof *weights);
    if (!keys || !weights)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate rebalance weights");
    for (size_t i = 0; !st && i < w->row_count; i++) {
        keys[i] = w->rows[i].key;
        weights[i] = by == STRATA_WEIGHT_COUNT   ? 1.0
                     : by == STRATA_WEIGHT_BYTES ? (double)w->rows[i].payload_length +
                                                       w->rows[i].delta_bytes + sizeof(store_row)
                                                 : fn(keys[i], ctx);
    }
    st = world_agree(w, st);
    uint64_t *split = strata_malloc(((size_t)w->size + 1) * sizeof *split);
    if (!st && !split)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate splitters");
    st = world_agree(w, st);
    if (!st)
        st = world_agree(
            w, partition_by_weight(w->comm, keys, weights, w->row_count, split, &w->error));
    free(keys);
    free(weights);
    if (st) {
        free(split);
        return st;
    }
    /* Ownership moved: forget resident chunks and read the new range's rows. */
    chunk_cache_free(&w->owned);
    free(w->split);
    w->split = split;
    free(w->rows);
    w->rows = NULL;
    w->row_count = 0;
    st = store_load_rows(&w->store, w->split[w->rank], w->split[w->rank + 1], &w->rows,
                         &w->row_count, &w->error);
    w->manifest_dirty = 1;
    return world_agree(w, st);
}
