/* read.c: the library's read calls that need no index: point reads (routed to the
 * owner, or of the committed state by any rank), whole-chunk loads, chunk metadata and
 * strata_world_info. It owns no state: it reads the world through world.h. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codec.h"
#include "delta.h"
#include "fsutil.h"
#include "partition.h"
#include "world.h"

/* ---- routed point reads -------------------------------------------------------- */

strata_status strata_query_points(strata_world *w, const int64_t (*points)[3], size_t n,
                                  uint16_t *out)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    /* A NULL array fails at the agreement below, where the other ranks are. */
    strata_status st = STRATA_OK;
    if (n && (!points || !out))
        st = world_null_argument(w, __func__, points ? "out" : "points");
    route_record *send = strata_malloc((n ? n : 1) * sizeof *send);
    if (!st && !send)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot route %zu points", n);
    const int b = w->edge_bits;
    const uint64_t mask = (uint64_t)w->edge - 1;
    for (size_t i = 0; !st && i < n; i++) {
        int64_t x = points[i][0], y = points[i][1], z = points[i][2];
        if (!world_contains(w, x, y, z)) {
            st =
                WORLD_FAIL(w, STRATA_ERR_RANGE,
                           "point %zu (%" PRId64 ", %" PRId64 ", %" PRId64 ") is outside the world",
                           i, x, y, z);
            break;
        }
        send[i] = (route_record){
            .key = world_key(w, (uint64_t)x >> b, (uint64_t)y >> b, (uint64_t)z >> b),
            .voxel = (uint32_t)(((uint64_t)x & mask) | ((uint64_t)y & mask) << b |
                                ((uint64_t)z & mask) << 2 * b)};
    }
    /* Four agreements in all, each riding with an exchange's own (the collectives,
     * not the data, take the time at many ranks): these checks with the routing's
     * packing, the answers with the replies' packing. */
    route_record *recv = NULL;
    int *from = NULL;
    size_t recv_n = 0;
    st = route_records(w->comm, st, w->split, send, n, &w->route, &recv, &recv_n, &from, &w->error);
    uint16_t *reply = NULL;
    if (!st && !(reply = strata_malloc((recv_n ? recv_n : 1) * sizeof *reply)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot answer %zu points", recv_n);
    for (size_t i = 0; !st && i < recv_n; i++) {
        chunk *k;
        st = world_own_chunk(w, recv[i].key, &k);
        if (!st)
            reply[i] = k->voxels ? k->voxels[recv[i].voxel] : k->value;
    }
    st = route_replies(w->comm, st, recv, from, reply, recv_n, out, n, &w->error);
    world_evict(w);
    route_scratch_trim(&w->route, ROUTE_KEEP_BYTES);
    free(send);
    free(reply);
    return st;
}

/* ---- reads of the committed state (not collective) ----------------------------------- */

/* Everything but an own clean resident chunk: range errors, committed copies,
 * loads. Out of line so that the hot path below stays short. */
static __attribute__((noinline)) strata_status read_voxel_slow(strata_world *w, int64_t x,
                                                               int64_t y, int64_t z, uint16_t *out)
{
    if (!world_contains(w, x, y, z))
        return WORLD_FAIL(w, STRATA_ERR_RANGE,
                          "voxel (%" PRId64 ", %" PRId64 ", %" PRId64 ") is outside the world", x,
                          y, z);
    const int b = w->edge_bits;
    const uint64_t mask = (uint64_t)w->edge - 1;
    uint64_t key = world_key(w, (uint64_t)x >> b, (uint64_t)y >> b, (uint64_t)z >> b);
    chunk *k;
    strata_status st = world_committed_chunk(w, key, &k);
    if (st)
        return st;
    *out = k->voxels ? k->voxels[((uint64_t)x & mask) | ((uint64_t)y & mask) << b |
                                 ((uint64_t)z & mask) << 2 * b]
                     : k->value;
    return STRATA_OK;
}

/* The hot path reads an own clean resident chunk with one probe of the owned
 * cache's table and no stores; anything else takes read_voxel_slow. */
strata_status strata_read_voxel(strata_world *w, int64_t x, int64_t y, int64_t z, uint16_t *out)
{
    if (!w || !out)
        return world_null_argument(w, __func__, w ? "out" : "world");
    const int64_t *d = w->committed.dims;
    const chunk_cache *c = &w->owned;
    if (x >= 0 && y >= 0 && z >= 0 && x < d[0] && y < d[1] && z < d[2] && c->capacity) {
        const int b = w->edge_bits;
        const uint64_t key = world_key(w, (uint64_t)x >> b, (uint64_t)y >> b, (uint64_t)z >> b);
        for (size_t i = chunk_slot_of(c, key);; i = (i + 1) & (c->capacity - 1)) {
            const chunk *k = c->slots[i].chunk;
            if (!k)
                break;
            if (c->slots[i].key == key) {
                if (k->dirty || !world_owns(w, key))
                    break;
                const uint64_t m = (uint64_t)w->edge - 1;
                *out = k->voxels ? k->voxels[((uint64_t)x & m) | ((uint64_t)y & m) << b |
                                             ((uint64_t)z & m) << 2 * b]
                                 : k->value;
                return STRATA_OK;
            }
        }
    }
    return read_voxel_slow(w, x, y, z, out);
}

strata_status strata_load_chunk(strata_world *w, int64_t cx, int64_t cy, int64_t cz, uint16_t *out)
{
    if (!w || !out)
        return world_null_argument(w, __func__, w ? "out" : "world");
    uint64_t key;
    strata_status st = strata_chunk_key(w, cx, cy, cz, &key);
    chunk *k;
    if (!st)
        st = world_committed_chunk(w, key, &k);
    if (st)
        return st;
    if (k->voxels)
        memcpy(out, k->voxels, w->chunk_voxels * sizeof *out);
    else
        for (size_t i = 0; i < w->chunk_voxels; i++)
            out[i] = k->value;
    return STRATA_OK;
}

strata_status strata_chunk_metadata(strata_world *w, int64_t cx, int64_t cy, int64_t cz,
                                    strata_chunk_meta *meta)
{
    if (!w || !meta)
        return world_null_argument(w, __func__, w ? "meta" : "world");
    uint64_t key;
    strata_status st = strata_chunk_key(w, cx, cy, cz, &key);
    if (st)
        return st;
    memset(meta, 0, sizeof *meta);
    meta->key = key;
    world_chunk_bounds(w, key, meta->bounds);
    meta->owner = partition_owner(w->split, w->size, key);
    store_row row;
    int found = 0;
    if (world_owns(w, key)) {
        const store_row *r = world_own_row(w, key);
        if (r)
            row = *r, found = 1;
    } else {
        st = store_lookup_row(&w->store, key, &row, &found, &w->error);
        if (st)
            return st;
    }
    if (!found)
        return STRATA_OK;
    meta->kind = store_row_uniform(&row) ? STRATA_CHUNK_UNIFORM : STRATA_CHUNK_DENSE;
    meta->uniform_value = store_row_uniform(&row) ? row.value : 0;
    meta->stored_bytes = (uint64_t)row.payload_length + row.delta_bytes;
    meta->epoch = row.epoch;
    return STRATA_OK;
}

/* ---- info ---------------------------------------------------------------------- */

static uint64_t metadata_bytes(const strata_world *w)
{
    /* the committed manifest's tables: splitters and segments as recorded, materials */
    const manifest *m = &w->committed;
    uint64_t bytes =
        sizeof *w + w->row_count * sizeof *w->rows + ((uint64_t)w->size + 1) * sizeof *w->split +
        w->owned.capacity * sizeof(chunk_slot) + w->owned.count * sizeof(chunk) +
        m->material_count * sizeof *m->materials +
        ((uint64_t)m->split_ranks + 1) * sizeof *m->split + m->segment_count * sizeof *m->segments;
    bytes += w->store.count * sizeof(store_segment) + store_fence_bytes(&w->store);
    return bytes;
}

/* Slab bytes not holding a resident chunk, plus the routing buffers. */
static uint64_t reserve_bytes(const strata_world *w)
{
    const chunk_cache *c[2] = {&w->owned, &w->committed_copies};
    uint64_t free_bytes = route_scratch_bytes(&w->route);
    for (int i = 0; i < 2; i++) {
        uint64_t used = c[i]->clean_bytes + c[i]->dirty_bytes;
        free_bytes += c[i]->slabs.bytes > used ? c[i]->slabs.bytes - used : 0;
    }
    return free_bytes;
}

strata_status strata_world_info(strata_world *w, strata_info *info)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    /* A NULL info fails at the agreement below, where the other ranks are. */
    strata_status st = info ? STRATA_OK : world_null_argument(w, __func__, "info");
    if (info)
        memset(info, 0, sizeof *info);
    uint64_t local[11] = {0,
                          0,
                          0,
                          w->owned.clean_bytes,
                          w->owned.dirty_bytes + world_blind_bytes(w),
                          metadata_bytes(w),
                          reserve_bytes(w),
                          0,
                          0,
                          0,
                          w->blind.count};
    uint64_t deepest = 0;
    for (size_t i = 0; i < w->row_count; i++) {
        const store_row *r = &w->rows[i];
        if (store_row_uniform(r))
            local[0] += r->value != 0; /* uniform air rows only shadow older data */
        else
            local[1]++;
        local[2] += r->payload_length;
        /* delta chains pending: records, bytes, chunks, the deepest */
        local[7] += r->delta_depth;
        local[8] += r->delta_bytes;
        local[9] += r->delta_depth != 0;
        deepest = r->delta_depth > deepest ? r->delta_depth : deepest;
    }
    uint64_t sum[11] = {0}, max_local[2] = {local[5], deepest}, max[2] = {0, 0};
    int rc = MPI_Allreduce(local, sum, 11, MPI_UINT64_T, MPI_SUM, w->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(max_local, max, 2, MPI_UINT64_T, MPI_MAX, w->comm);
    uint64_t max_meta = max[0];
    st = world_agree(w, st ? st : error_mpi(&w->error, rc, "gathering world info"));
    if (st)
        return st;
    const manifest *m = &w->committed;
    for (int i = 0; i < 3; i++) {
        info->dims[i] = m->dims[i];
        info->voxel_size[i] = m->voxel_size[i];
        info->origin[i] = m->origin[i];
    }
    info->chunk_edge = m->chunk_edge;
    info->epoch = m->epoch;
    info->writer_ranks = m->writer_ranks;
    info->commits = m->commits;
    info->segments = m->segment_count;
    info->chunks_uniform = sum[0];
    info->chunks_dense = sum[1];
    info->payload_bytes = sum[2];
    info->cache_bytes = sum[3];
    info->dirty_bytes = sum[4];
    info->reserve_bytes = sum[6];
    info->metadata_bytes = max_meta;
    info->deltas = sum[7];
    info->delta_bytes = sum[8];
    info->delta_chunks = sum[9];
    info->delta_depth_max = (int)max[1];
    info->blind_chunks = sum[10];
    info->chunks_total = w->chunks[0] * w->chunks[1] * w->chunks[2];
    info->ranks = w->size;
    if (w->rank == 0) {
        for (size_t i = 0; i < m->segment_count; i++) {
            char name[64], path[STRATA_PATH_MAX];
            uint64_t size = 0;
            manifest_segment_name(m->segments[i].epoch, name, sizeof name);
            if (path_join(path, sizeof path, w->dir, name, NULL) == STRATA_OK &&
                file_size(path, &size, NULL) == STRATA_OK)
                info->stored_bytes += size;
        }
    }
    return error_mpi(&w->error, MPI_Bcast(&info->stored_bytes, 1, MPI_UINT64_T, 0, w->comm),
                     "sharing the stored size");
}
