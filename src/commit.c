/* commit.c: the commit protocol.
 *
 * 1. Flush staged updates (every rank).
 * 2. Encode this rank's dirty chunks into one payload buffer and table rows.
 * 3. Write segment seg-<epoch>.h5 collectively (store_write_segment): rows and
 *    payloads placed by MPI_Exscan, flushed with MPI_File_sync, fsync'ed.
 * 4. Rank 0 replaces MANIFEST (tmp, fsync, rename, fsync dir): the commit point.
 *    A crash before it leaves the previous commit (the new segment is an orphan,
 *    removed by the next writer); a crash after it leaves the new commit.
 * 5. Every rank agrees, then merges the new rows into its table and marks its
 *    chunks clean. Only then is the commit acknowledged to the caller.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fault.h"
#include "octree.h"
#include "world.h"

strata_status world_finish_replace(strata_world *w, strata_error *err);

typedef struct {
    chunk **items;
    size_t count, capacity;
    int failed;
} chunk_list;

static void collect_dirty(chunk *k, void *ctx)
{
    chunk_list *l = ctx;
    if (!k->dirty || l->failed)
        return;
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? l->capacity * 2 : 256;
        chunk **grown = realloc(l->items, capacity * sizeof *grown);
        if (!grown) {
            l->failed = 1;
            return;
        }
        l->items = grown;
        l->capacity = capacity;
    }
    l->items[l->count++] = k;
}

static int compare_chunk_keys(const void *a, const void *b)
{
    uint64_t x = (*(chunk *const *)a)->key, y = (*(chunk *const *)b)->key;
    return x < y ? -1 : x > y;
}

typedef struct {
    store_row *rows;
    uint8_t *payload;
    uint64_t payload_bytes, payload_capacity, raw_bytes;
} encoded_batch;

static strata_status append_payload(strata_world *w, encoded_batch *b, const uint8_t *data, size_t n)
{
    if (b->payload_bytes + n > b->payload_capacity) {
        uint64_t capacity = (b->payload_bytes + n) * 2;
        uint8_t *grown = realloc(b->payload, capacity);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " payload bytes", capacity);
        b->payload = grown;
        b->payload_capacity = capacity;
    }
    memcpy(b->payload + b->payload_bytes, data, n);
    b->payload_bytes += n;
    return STRATA_OK;
}

/* Encode one chunk's voxels into a row (and payload bytes when it is not uniform). */
static strata_status encode_chunk_data(strata_world *w, chunk *k, uint64_t epoch, encoded_batch *b,
                                       store_row *row)
{
    memset(row, 0, sizeof *row);
    row->key = k->key;
    row->epoch = epoch;
    b->raw_bytes += w->chunk_voxels * sizeof(uint16_t);
    /* A chunk made uniform by its updates goes back to costing one value. */
    chunk_collapse_uniform(&w->owned, k);
    if (!k->voxels) {
        row->codec = CODEC_UNIFORM;
        row->value = k->value;
        return STRATA_OK;
    }
    chunk_encoding enc;
    strata_status st = chunk_encode(k->voxels, w->edge, w->options.zstd_level, w->scratch,
                                    w->encode_buffer, &enc, &w->error);
    if (st)
        return st;
    row->codec = (uint8_t)enc.codec;
    row->value = enc.uniform_value;
    if (enc.length == 0)
        return STRATA_OK;
    row->payload_segment = epoch;
    row->payload_offset = b->payload_bytes;
    row->payload_length = (uint32_t)enc.length;
    row->payload_crc = checksum_update(0, w->encode_buffer, enc.length);
    return append_payload(w, b, w->encode_buffer, enc.length);
}

/* Encode a chunk and, unless the index is deferred, its LOD summary and pyramid
 * (appended after its payload; lod_offset is rebased like payload_offset). */
static strata_status encode_chunk(strata_world *w, chunk *k, uint64_t epoch, encoded_batch *b,
                                  store_row *row)
{
    strata_status st = encode_chunk_data(w, k, epoch, b, row);
    row->flags = STORE_ROW_INDEX_STALE;
    if (st || w->options.defer_index)
        return st;
    const uint8_t *pyramid;
    size_t length;
    st = index_summarize_chunk(w, k->voxels, k->value, row, &pyramid, &length);
    if (st || !length)
        return st;
    row->lod_segment = epoch;
    row->lod_offset = b->payload_bytes;
    row->lod_length = (uint32_t)length;
    row->lod_crc = checksum_update(0, pyramid, length);
    return append_payload(w, b, pyramid, length);
}

/* Rows flagged stale once the batch's rows replace the rank's. */
static uint64_t stale_after(const strata_world *w, const store_row *fresh, size_t n)
{
    uint64_t stale = index_count_stale(w->rows, w->row_count) + index_count_stale(fresh, n);
    for (size_t i = 0; i < n; i++) {
        const store_row *old = world_own_row(w, fresh[i].key);
        stale -= old && (old->flags & STORE_ROW_INDEX_STALE);
    }
    return stale;
}

static strata_status encode_dirty(strata_world *w, const chunk_list *dirty, uint64_t epoch,
                                  encoded_batch *b)
{
    b->rows = malloc((dirty->count + 1) * sizeof *b->rows);
    if (!b->rows)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate %zu rows", dirty->count);
    for (size_t i = 0; i < dirty->count; i++) {
        strata_status st = encode_chunk(w, dirty->items[i], epoch, b, &b->rows[i]);
        if (st)
            return st;
    }
    return STRATA_OK;
}

/* Merge the rows a commit wrote into the rank's sorted table. */
static strata_status merge_rows(strata_world *w, const store_row *fresh, size_t n)
{
    store_row *merged = malloc((w->row_count + n + 1) * sizeof *merged);
    if (!merged)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot grow the chunk table");
    size_t i = 0, j = 0, k = 0;
    while (i < w->row_count || j < n) {
        if (j == n || (i < w->row_count && w->rows[i].key < fresh[j].key))
            merged[k++] = w->rows[i++];
        else {
            if (i < w->row_count && w->rows[i].key == fresh[j].key)
                i++;
            merged[k++] = fresh[j++];
        }
    }
    free(w->rows);
    w->rows = merged;
    w->row_count = k;
    return STRATA_OK;
}

/* Rank 0: the next manifest, with the new segment appended. */
strata_status world_next_manifest(strata_world *w, uint64_t epoch, int wrote_segment, manifest *next)
{
    strata_status st = manifest_copy(&w->committed, next, &w->error);
    if (st)
        return st;
    next->epoch = epoch;
    next->commits++;
    next->writer_ranks = w->size;
    if (wrote_segment)
        next->segments[next->segment_count++].epoch = epoch;
    if (next->split_ranks != w->size) {
        uint64_t *split = malloc(((size_t)w->size + 1) * sizeof *split);
        if (!split) {
            manifest_free(next);
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate splitters");
        }
        free(next->split);
        next->split = split;
        next->split_ranks = w->size;
    }
    memcpy(next->split, w->split, ((size_t)w->size + 1) * sizeof *w->split);
    return STRATA_OK;
}

strata_status world_publish(strata_world *w, manifest *next)
{
    strata_status st = STRATA_OK;
    if (w->rank == 0) {
        st = manifest_write(w->dir, next, &w->error);
        if (!st && w->replace_pending)
            st = world_finish_replace(w, &w->error);
    }
    st = world_agree(w, st);
    if (!st && w->replace_pending) {
        strcpy(w->dir, w->final_dir);
        strcpy(w->store.dir, w->final_dir);
        w->replace_pending = 0;
    }
    return st;
}

strata_status strata_commit(strata_world *w, strata_commit_stats *stats)
{
    double start = MPI_Wtime();
    strata_status st = strata_flush(w, NULL);
    if (st)
        return st;
    chunk_list dirty = {0};
    chunk_cache_each(&w->owned, collect_dirty, &dirty);
    if (dirty.failed)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list dirty chunks");
    else if (dirty.count) /* qsort(NULL, 0, ...) is undefined */
        qsort(dirty.items, dirty.count, sizeof *dirty.items, compare_chunk_keys);
    uint64_t epoch = w->committed.epoch + 1;
    encoded_batch batch = {0};
    index_begin_write(w);
    if (!st)
        st = encode_dirty(w, &dirty, epoch, &batch);
    st = world_agree(w, st);
    uint64_t local[4] = {dirty.count, batch.raw_bytes, batch.payload_bytes,
                         st ? 0 : stale_after(w, batch.rows, dirty.count)}, total[4] = {0};
    if (!st)
        st = error_mpi(&w->error, MPI_Allreduce(local, total, 4, MPI_UINT64_T, MPI_SUM, w->comm),
                       "summing commit sizes");
    int wrote = total[0] > 0;
    if (!st && wrote)
        st = store_write_segment(&w->store, epoch, w->size, batch.rows, dirty.count, batch.payload,
                                 batch.payload_bytes, &w->error);
    manifest next = {0};
    if (!st && (wrote || w->manifest_dirty || w->replace_pending)) {
        /* Every rank builds the same next manifest; rank 0 writes it. */
        st = world_agree(w, world_next_manifest(w, epoch, wrote, &next));
        if (!st) {
            next.stale_chunks = total[3];
            if (total[3] == 0)
                next.index_epoch = epoch;
            st = world_publish(w, &next);
        }
        if (!st) {
            manifest_free(&w->committed);
            w->committed = next;
            w->manifest_dirty = 0;
        } else {
            manifest_free(&next);
        }
    }
    if (!st && wrote)
        st = world_agree(w, merge_rows(w, batch.rows, dirty.count));
    if (!st && wrote)
        index_after_write(w, w->options.defer_index);
    if (!st) {
        for (size_t i = 0; i < dirty.count; i++)
            chunk_set_dirty(&w->owned, dirty.items[i], 0);
        /* Copies of the previous commit would now read stale: drop them. */
        if (wrote)
            chunk_cache_free(&w->committed_copies);
        world_evict(w);
    }
    free(dirty.items);
    free(batch.rows);
    free(batch.payload);
    if (stats) {
        stats->epoch = w->committed.epoch;
        stats->chunks_written = total[0];
        stats->raw_bytes = total[1];
        stats->stored_bytes = total[2];
        stats->seconds = MPI_Wtime() - start;
    }
    return st;
}
