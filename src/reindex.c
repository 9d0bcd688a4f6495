/* reindex.c: rebuilding the stored index (summaries and pyramids) from stored chunks.
 *
 * A reindex is a commit of its own: one segment whose rows are copies of the
 * rank's rows with fresh summaries and pyramid payloads (appended to the new
 * segment's /payload) while their data payload pointers keep naming the older
 * segments that hold the voxels. The manifest replacement is the commit point,
 * exactly as for strata_commit; a crash before it leaves the old index.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "octree.h"
#include "world.h"

typedef struct {
    store_row *rows;
    size_t n;
    uint8_t *payload;
    uint64_t bytes, capacity;
} reindex_batch;

static strata_status append(strata_world *w, reindex_batch *b, const uint8_t *data, size_t n)
{
    if (b->bytes + n > b->capacity) {
        uint64_t capacity = (b->bytes + n) * 2;
        uint8_t *grown = realloc(b->payload, capacity);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " pyramid bytes", capacity);
        b->payload = grown, b->capacity = capacity;
    }
    memcpy(b->payload + b->bytes, data, n);
    b->bytes += n;
    return STRATA_OK;
}

/* Summarise one stored chunk into a fresh row pointing at its old data payload. */
static strata_status summarize_row(strata_world *w, const store_row *old, uint64_t epoch,
                                   reindex_batch *b)
{
    store_row *row = &b->rows[b->n];
    *row = *old;
    row->lod_segment = row->lod_offset = 0;
    row->lod_length = row->lod_crc = 0;
    const uint16_t *voxels = NULL;
    strata_status st = STRATA_OK;
    if (old->codec != CODEC_UNIFORM) {
        /* A resident clean chunk holds exactly the committed voxels: no decode. */
        chunk *k = chunk_cache_find(&w->owned, old->key);
        if (k && !k->dirty && k->voxels) {
            voxels = k->voxels;
        } else {
            st = world_decode_row(w, old, w->index->voxels);
            voxels = w->index->voxels;
        }
    }
    const uint8_t *pyramid;
    size_t length = 0;
    if (!st)
        st = index_summarize_chunk(w, voxels, old->value, row, &pyramid, &length);
    if (!st && length) {
        row->lod_segment = epoch;
        row->lod_offset = b->bytes;
        row->lod_length = (uint32_t)length;
        row->lod_crc = checksum_update(0, pyramid, length);
        st = append(w, b, pyramid, length);
    }
    if (!st)
        b->n++;
    return st;
}

/* Replace own rows by their reindexed copies (same keys, so in place). */
static void replace_rows(strata_world *w, const reindex_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        store_row *row = (store_row *)world_own_row(w, b->rows[i].key);
        if (row)
            *row = b->rows[i];
    }
}

static strata_status publish(strata_world *w, uint64_t epoch, uint64_t chunks, double start)
{
    manifest next = {0};
    strata_status st = world_agree(w, world_next_manifest(w, epoch, 1, &next));
    if (st)
        return st;
    double elapsed = MPI_Wtime() - start, slowest = elapsed;
    MPI_Allreduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, w->comm);
    next.index_epoch = epoch;
    next.stale_chunks = 0;
    next.rebuild_chunks = chunks;
    next.rebuild_seconds = slowest;
    st = world_publish(w, &next);
    if (st) {
        manifest_free(&next);
        return st;
    }
    manifest_free(&w->committed);
    w->committed = next;
    w->manifest_dirty = 0;
    return STRATA_OK;
}

strata_status strata_reindex(strata_world *w, int full, strata_reindex_stats *stats)
{
    double start = MPI_Wtime();
    reindex_batch b = {0};
    lod_index *x = NULL;
    strata_status st = w->writable ? STRATA_OK
                                   : WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "reindex: %s is open read-only", w->dir);
    if (!st)
        st = index_get(w, &x);
    if (!st && !(b.rows = malloc((w->row_count + 1) * sizeof *b.rows)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate %zu rows", w->row_count);
    st = world_agree(w, st);
    if (st) {
        free(b.rows);
        return st;
    }
    uint64_t epoch = w->committed.epoch + 1;
    index_begin_write(w);
    double summarize_start = MPI_Wtime();
    for (size_t i = 0; !st && i < w->row_count; i++)
        if (full || (w->rows[i].flags & STORE_ROW_INDEX_STALE))
            st = summarize_row(w, &w->rows[i], epoch, &b);
    double summarize = MPI_Wtime() - summarize_start, slowest = summarize;
    st = world_agree(w, st);
    uint64_t mine = b.n, total = 0;
    if (!st) {
        int rc = MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, w->comm);
        if (rc == MPI_SUCCESS)
            rc = MPI_Allreduce(&summarize, &slowest, 1, MPI_DOUBLE, MPI_MAX, w->comm);
        st = world_agree(w, error_mpi(&w->error, rc, "counting reindexed chunks"));
    }
    if (!st && total)
        st = store_write_segment(&w->store, epoch, w->size, b.rows, b.n, b.payload, b.bytes, &w->error);
    if (!st && total)
        st = publish(w, epoch, total, start);
    if (!st && total) {
        replace_rows(w, &b);
        index_after_write(w, 0);
    }
    free(b.rows);
    free(b.payload);
    if (stats && !st) {
        stats->chunks = total;
        stats->voxels = total * w->chunk_voxels;
        stats->seconds = MPI_Wtime() - start;
        stats->summarize_seconds = slowest;
        stats->epoch = total ? epoch : 0;
    }
    return st;
}

strata_status strata_index_status(strata_world *w, int build, strata_index_info *info)
{
    memset(info, 0, sizeof *info);
    lod_index *x = NULL;
    strata_status st = world_agree(w, index_get(w, &x));
    if (!st && build)
        st = index_ensure(w);
    if (st)
        return st;
    const manifest *m = &w->committed;
    info->data_epoch = m->epoch;
    info->index_epoch = m->index_epoch;
    info->stale_chunks = m->stale_chunks;
    info->rebuild_chunks = m->rebuild_chunks;
    info->rebuild_seconds = m->rebuild_seconds;
    info->chunk_level = w->edge_bits;
    info->max_level = w->edge_bits + x->max_level;
    info->replicated_level = w->edge_bits + (x->top_level <= x->max_level ? x->top_level : x->max_level + 1);
    if (!build)
        return STRATA_OK;
    uint64_t local = 0, most = 0;
    for (int k = 1; k <= x->max_level; k++) {
        info->replicated_nodes += x->global[k].count;
        local += x->local[k].count;
    }
    st = world_agree(w, error_mpi(&w->error, MPI_Allreduce(&local, &most, 1, MPI_UINT64_T, MPI_MAX, w->comm),
                                  "counting index nodes"));
    info->local_nodes = most;
    if (!st)
        st = octree_hash(w, &info->hash);
    return st;
}
