/* reindex.c: rebuilding the stored index (summaries and pyramids) from stored chunks.
 *
 * A reindex runs beside the writer (docs/architecture.md, "Reindex beside a
 * writer"): it summarises the chunks stale in its snapshot (the commit it
 * opened), writes them as index-only rows to an index segment idx-<serial>.h5
 * (each row: the chunk's summary and pyramid at the data epoch it was built
 * from), then takes the PUBLISH lock, reads the current MANIFEST, catches up
 * with it, and publishes it with the index segment added. Rows whose chunk a
 * later commit rewrote do not apply (their epoch differs): those chunks stay
 * stale. The manifest replacement is the commit point; a crash before it
 * leaves the old index and an unnamed idx file, removed by the next reindex.
 * Fault points: reindex-summarised, reindex-written, reindex-publish-locked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "codec.h"
#include "commit.h"
#include "delta.h"
#include "fault.h"
#include "index/octree.h"
#include "parallel.h"
#include "world.h"

typedef struct {
    store_row *rows;
    size_t n;
    byte_buffer payload;
} reindex_batch;

/* Rows summarised per round: the main thread reads their payloads (I/O stays
 * on it), then the threads decode and summarise them, then the main thread
 * appends their pyramids in key order. */
#define REINDEX_ROUND_CHUNKS 1024
#define REINDEX_ROUND_BYTES  ((uint64_t)64 << 20)
/* Payloads at most this many bytes apart are read together. */
#define REINDEX_GAP ((uint64_t)4096)
/* reindex_run.read of a row whose payload is not read */
#define NOT_READ UINT64_MAX

/* What one thread summarises with; thread 0 borrows the world's buffers. */
typedef struct {
    void *scratch;
    uint16_t *voxels;
    lod_work *work;
    node_set pending, *keep;
    byte_buffer arena;
    int owned;
} reindex_kit;

typedef struct {
    const strata_world *w;
    uint64_t epoch;
    store_row *rows;           /* the round's fresh rows */
    const uint16_t **resident; /* per row: a resident clean chunk's voxels, or NULL */
    uint64_t *read;            /* per row: offset of its payload in `payloads`, or NOT_READ */
    store_ref *refs;           /* the payloads to read */
    const uint8_t *payloads;
    uint64_t *chain_at;    /* per row with a delta chain: its records' offset in chains */
    uint64_t *chain_bytes; /* and their bytes (0: no chain to apply) */
    byte_buffer chains;    /* the round's delta chains, read on the main thread */
    uint64_t *blob;        /* per row: offset of its pyramid in its thread's arena */
    int *thread;
    reindex_kit *kits;
} reindex_run;

/* Decode (unless resident or uniform) and summarise one row of the round.
 * Worker threads: writes only its row and its thread's kit. */
static strata_status summarize_item(void *ctx, int thread, size_t i, strata_error *err)
{
    reindex_run *r = ctx;
    const strata_world *w = r->w;
    reindex_kit *t = &r->kits[thread];
    store_row *row = &r->rows[i];
    r->thread[i] = thread;
    r->blob[i] = t->arena.bytes;
    const uint16_t *voxels = NULL;
    chunk_palette palette;
    const chunk_palette *indices = NULL;
    if (r->chain_bytes[i]) {
        /* A chunk with a delta chain: its base decoded to voxels, then the chain. */
        strata_status st = STRATA_OK;
        if (row->codec == CODEC_UNIFORM) {
            for (size_t v = 0; v < w->chunk_voxels; v++)
                t->voxels[v] = row->value;
        } else {
            const uint8_t *payload = r->payloads + r->read[i];
            st = store_check_payload(w->store.dir, row->payload_segment, row->payload_offset,
                                     row->payload_length, row->payload_crc, row->key, payload, err);
            if (!st)
                st = chunk_decode(payload, row->payload_length, row->codec, w->edge, t->scratch,
                                  t->voxels, err);
        }
        if (!st)
            st = delta_chain_apply(r->chains.data + r->chain_at[i], r->chain_bytes[i],
                                   row->delta_depth, w->edge, t->scratch, t->voxels, err);
        if (st)
            return world_chunk_failed(w, "reindex", row->key, st, err);
        voxels = t->voxels;
    } else if (!store_row_uniform(row)) {
        voxels = r->resident[i];
        if (r->read[i] != NOT_READ) {
            const uint8_t *payload = r->payloads + r->read[i];
            strata_status st =
                store_check_payload(w->store.dir, row->payload_segment, row->payload_offset,
                                    row->payload_length, row->payload_crc, row->key, payload, err);
            /* A palette chunk the LOD build reads as indices is not expanded to
             * voxels; one it cannot (more than 16 ids) is built from the
             * resident voxels when there are some. */
            if (!st && row->codec == CODEC_PALETTE) {
                st = chunk_decode_palette(payload, row->payload_length, w->edge, t->scratch,
                                          &palette, err);
                if (!st && index_palette_serves(w, t->work, row->key, palette.count))
                    indices = &palette;
                else if (!st && !voxels)
                    st = chunk_expand_palette(&palette, w->edge, t->scratch, t->voxels, err);
            } else if (!st) {
                st = chunk_decode(payload, row->payload_length, row->codec, w->edge, t->scratch,
                                  t->voxels, err);
            }
            if (st)
                return world_chunk_failed(w, "reindex", row->key, st, err);
            voxels = indices ? NULL : voxels ? voxels : t->voxels;
        }
    }
    const uint8_t *pyramid;
    size_t length = 0;
    strata_status st = index_summarize_chunk_in(w, t->work, t->keep, voxels, indices, row->value,
                                                row, &pyramid, &length, err);
    if (st)
        return world_chunk_failed(w, "reindex", row->key, st, err);
    if (!length)
        return STRATA_OK;
    row->lod_segment = r->epoch;
    row->lod_offset = 0; /* rebased when appended */
    row->lod_length = (uint32_t)length;
    row->lod_crc = checksum_update(0, pyramid, length);
    if (!byte_buffer_append(&t->arena, pyramid, length))
        return world_chunk_failed(w, "reindex", row->key,
                                  error_set(err, STRATA_ERR_NOMEM, "cannot hold its pyramid"), err);
    return STRATA_OK;
}

/* How row i of the round (old, the committed row) is summarised: from resident voxels,
 * a delta chain read now, or its payload (r->read[i] = 0: to be read). */
static strata_status plan_row(strata_world *w, lod_index *x, reindex_run *r, size_t i,
                              const store_row *old)
{
    store_row *row = &r->rows[i];
    *row = *old;
    row->lod_segment = row->lod_offset = 0;
    row->lod_length = row->lod_crc = 0;
    r->resident[i] = NULL;
    r->read[i] = NOT_READ;
    r->chain_bytes[i] = 0;
    if (store_row_uniform(old))
        return STRATA_OK;
    /* A resident clean chunk holds exactly the committed voxels: no decode,
     * except of a palette payload, whose 4-bit indices the LOD build reads
     * faster than the voxels (the palette path of lod.h; measured in
     * docs/benchmarks.md). */
    chunk *k = chunk_cache_find(&w->owned, old->key);
    if (k && !k->dirty && k->voxels && old->delta_depth) {
        r->resident[i] = k->voxels; /* base and chain merged already */
        return STRATA_OK;
    }
    if (old->delta_depth) {
        /* the chain is read here (HDF5 stays on the main thread), applied by a thread */
        r->chain_at[i] = r->chains.bytes;
        strata_status st = delta_chain_read(&w->store, old, w->edge, &r->chains, &w->error);
        if (st)
            return world_chunk_failed(w, "reindex", old->key, st, &w->error);
        r->chain_bytes[i] = r->chains.bytes - r->chain_at[i];
        if (old->codec == CODEC_UNIFORM)
            return STRATA_OK;
    } else if (k && !k->dirty && k->voxels) {
        r->resident[i] = k->voxels;
        /* the palette path takes any count up to 16: 1 tests the rest */
        if (old->codec != CODEC_PALETTE || !index_palette_serves(w, x->work, old->key, 1))
            return STRATA_OK;
    }
    /* A size read from a file is checked before it sizes an allocation. */
    if (old->payload_length > chunk_encode_bound(w->edge))
        return WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                          "chunk key %" PRIu64 ": payload length %u exceeds the "
                          "largest possible (%zu)",
                          old->key, old->payload_length, chunk_encode_bound(w->edge));
    r->read[i] = 0; /* to be read: set to its offset below */
    return STRATA_OK;
}

/* The payloads plan_row asked for, into *payloads; r->read[i] becomes each one's offset.
 * A commit writes a rank's payloads back to back: a full reindex reads a few spans per
 * segment instead of making one HDF5 call per chunk. */
static strata_status read_payloads(strata_world *w, reindex_run *r, const size_t *sel, size_t n,
                                   uint8_t **payloads, uint64_t *payload_capacity)
{
    size_t wanted = 0;
    for (size_t i = 0; i < n; i++) {
        const store_row *old = &w->rows[sel[i]];
        if (r->read[i] != NOT_READ)
            r->refs[wanted++] = (store_ref){
                old->payload_segment, old->payload_offset, old->payload_length, old->key, i, 0};
    }
    size_t failed;
    strata_status st = store_read_many(&w->store, r->refs, wanted, REINDEX_GAP, payloads,
                                       payload_capacity, &failed, &w->error);
    if (st)
        return failed < wanted
                   ? world_chunk_failed(w, "reindex", r->refs[failed].key, st, &w->error)
                   : st;
    for (size_t k = 0; k < wanted; k++)
        r->read[r->refs[k].item] = r->refs[k].at;
    r->payloads = *payloads;
    return STRATA_OK;
}

/* One round: rows sel[0, n) of w->rows into b->rows[b->n ...]. */
static strata_status summarize_round(strata_world *w, lod_index *x, reindex_run *r, int threads,
                                     const size_t *sel, size_t n, reindex_batch *b,
                                     uint8_t **payloads, uint64_t *payload_capacity)
{
    r->rows = b->rows + b->n;
    r->chains.bytes = 0;
    strata_status st = STRATA_OK;
    for (size_t i = 0; !st && i < n; i++)
        st = plan_row(w, x, r, i, &w->rows[sel[i]]);
    if (!st)
        st = read_payloads(w, r, sel, n, payloads, payload_capacity);
    if (st)
        return st;
    for (int t = 0; t < threads; t++)
        r->kits[t].arena.bytes = 0;
    st = parallel_for(threads, n, summarize_item, r, &w->error);
    if (!st && x->built && threads > 1) {
        node_set sets[PARALLEL_MAX_THREADS];
        for (int t = 0; t < threads; t++) {
            sets[t] = r->kits[t].pending;
            r->kits[t].pending = (node_set){0};
        }
        st = index_pending_merge(w, sets, threads);
    }
    for (size_t i = 0; !st && i < n; i++) {
        store_row *row = &r->rows[i];
        if (row->lod_length) {
            row->lod_offset = b->payload.bytes;
            if (!byte_buffer_append(&b->payload, r->kits[r->thread[i]].arena.data + r->blob[i],
                                    row->lod_length))
                st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " pyramid bytes",
                                b->payload.bytes + row->lod_length);
        }
    }
    if (!st)
        b->n += n;
    return st;
}

/* Summarise the selected rows (stale ones, or all when full) on the rank's threads. */
static strata_status summarize_rows(strata_world *w, lod_index *x, int full, uint64_t epoch,
                                    reindex_batch *b)
{
    size_t n = 0;
    size_t *sel = strata_malloc((w->row_count + 1) * sizeof *sel);
    if (!sel)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list %zu rows", w->row_count);
    for (size_t i = 0; i < w->row_count; i++)
        if (full || (w->rows[i].flags & STORE_ROW_INDEX_STALE))
            sel[n++] = i;
    int threads = parallel_threads(w->options.threads, w->ranks_per_node, n);
    size_t round = n < REINDEX_ROUND_CHUNKS ? n : REINDEX_ROUND_CHUNKS;
    reindex_run r = {.w = w, .epoch = epoch};
    r.resident = strata_malloc((round + 1) * sizeof *r.resident);
    r.read = strata_malloc((round + 1) * sizeof *r.read);
    r.refs = strata_malloc((round + 1) * sizeof *r.refs);
    r.blob = strata_malloc((round + 1) * sizeof *r.blob);
    r.thread = strata_malloc((round + 1) * sizeof *r.thread);
    r.chain_at = strata_malloc((round + 1) * sizeof *r.chain_at);
    r.chain_bytes = strata_malloc((round + 1) * sizeof *r.chain_bytes);
    r.kits = strata_calloc((size_t)threads, sizeof *r.kits);
    strata_status st = r.resident && r.read && r.refs && r.blob && r.thread && r.kits &&
                               r.chain_at && r.chain_bytes
                           ? STRATA_OK
                           : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate the reindex state");
    for (int t = 0; !st && t < threads; t++) {
        reindex_kit *kit = &r.kits[t];
        if (t == 0) {
            kit->scratch = w->scratch, kit->voxels = x->voxels, kit->work = x->work;
        } else {
            kit->owned = 1;
            kit->scratch = strata_malloc(chunk_scratch_size(w->edge));
            kit->voxels = strata_malloc(w->chunk_voxels * sizeof *kit->voxels);
            st = kit->scratch && kit->voxels
                     ? lod_work_create(w->edge, &kit->work, &w->error)
                     : WORLD_FAIL(w, STRATA_ERR_NOMEM,
                                  "cannot allocate reindex buffers for thread %d", t);
        }
        /* One thread keeps histograms straight in the index; several merge theirs per round. */
        if (x->built)
            kit->keep = threads == 1 ? &x->pending : &kit->pending;
    }
    uint8_t *payloads = NULL;
    uint64_t payload_capacity = 0;
    for (size_t first = 0; !st && first < n;) {
        /* A round ends at REINDEX_ROUND_CHUNKS rows or REINDEX_ROUND_BYTES of payloads. */
        size_t count = 0;
        uint64_t bytes = 0;
        while (first + count < n && count < round && (count == 0 || bytes < REINDEX_ROUND_BYTES))
            bytes += w->rows[sel[first + count++]].payload_length;
        st =
            summarize_round(w, x, &r, threads, sel + first, count, b, &payloads, &payload_capacity);
        first += count;
    }
    free(payloads);
    for (int t = 0; r.kits && t < threads; t++) {
        if (r.kits[t].owned) {
            free(r.kits[t].scratch);
            free(r.kits[t].voxels);
            lod_work_free(r.kits[t].work);
        }
        node_set_free(&r.kits[t].pending);
        free(r.kits[t].arena.data);
    }
    free(r.kits);
    free(r.resident);
    free(r.read);
    free(r.refs);
    free(r.blob);
    free(r.thread);
    free(r.chain_at);
    free(r.chain_bytes);
    free(r.chains.data);
    free(sel);
    return st;
}

/* The summarised copies become index-only rows: the index fields, the key and
 * the data epoch they were built from; no payload, codec or value. */
static void make_index_only(reindex_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        store_row *row = &b->rows[i];
        row->payload_segment = row->payload_offset = 0;
        row->payload_length = row->payload_crc = 0;
        row->delta_segment = row->delta_offset = row->delta_first = 0;
        row->delta_length = row->delta_crc = row->delta_bytes = 0;
        row->delta_depth = 0;
        row->codec = 0;
        row->value = 0;
        row->flags = STORE_ROW_INDEX_ONLY;
    }
}

/* Under the PUBLISH lock, caught up: apply the rows (those whose chunk is at
 * the epoch they were built from), count what stays stale, and publish the
 * current manifest with the index segment added. Collective. */
static strata_status publish(strata_world *w, const reindex_batch *b, uint64_t id,
                             uint64_t snapshot, uint64_t chunks, double slowest,
                             strata_reindex_stats *out)
{
    uint64_t local[2] = {store_apply_index(w->rows, w->row_count, b->rows, b->n, id), 0}, total[2];
    local[1] = index_count_stale(w->rows, w->row_count);
    strata_status st = world_agree(
        w, error_mpi(&w->error, MPI_Allreduce(local, total, 2, MPI_UINT64_T, MPI_SUM, w->comm),
                     "counting applied index rows"));
    double now = (double)time(NULL); /* rank 0's, shared: every rank builds the same manifest */
    if (!st)
        st = world_agree(w, error_mpi(&w->error, MPI_Bcast(&now, 1, MPI_DOUBLE, 0, w->comm),
                                      "sharing the time"));
    manifest next = {0};
    if (!st)
        st = world_agree(w, manifest_copy(&w->committed, &next, &w->error));
    if (st) {
        manifest_free(&next); /* copied here, but another rank failed (zeroed if not) */
        return st;
    }
    next.segments[next.segment_count++].epoch = id; /* the largest id: stays sorted */
    /* Index segments this one superseded whole retire with the publication. */
    st = world_drop_unused_index(w, &next, id);
    if (st) {
        manifest_free(&next);
        return st;
    }
    next.index_serial = id & ~STORE_INDEX_SEGMENT;
    next.rebuilt_at = now;
    next.stale_chunks = total[1];
    /* Every chunk whose data is from the snapshot or before is current now
     * (it was current then, or this reindex rebuilt it). */
    if (total[1] == 0)
        next.index_epoch = next.epoch;
    else if (snapshot > next.index_epoch)
        next.index_epoch = snapshot;
    next.rebuild_chunks = chunks;
    next.rebuild_seconds = slowest;
    out->applied = total[0];
    out->stale_after = total[1];
    return commit_publish(w, &next);
}

/* What a reindex needs before it summarises: a world it may index, its index, room
 * for its rows in b, and (rank 0 holding REINDEX) the serial of its index segment.
 * Collective; on failure nothing is held. */
static strata_status reindex_start(strata_world *w, lod_index **x, reindex_batch *b,
                                   uint64_t *serial)
{
    strata_status st = w->writable || w->index_mode
                           ? STRATA_OK
                           : WORLD_FAIL(w, STRATA_ERR_READ_ONLY,
                                        "reindex: %s is open read-only (open it with "
                                        "STRATA_INDEX to reindex beside a writer)",
                                        w->dir);
    if (!st)
        st = index_get(w, x);
    if (!st && !(b->rows = strata_malloc((w->row_count + 1) * sizeof *b->rows)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate %zu rows", w->row_count);
    /* One reindex at a time (rank 0 holds REINDEX: a STRATA_INDEX world since
     * its open, a writer for this call); its serial comes from the MANIFEST read
     * under that lock, which no other reindex can change meanwhile. */
    if (!st && w->rank == 0) {
        manifest disk;
        st = world_reindex_claim(w, &disk);
        *serial = disk.index_serial + 1;
        manifest_free(&disk);
    }
    st = world_agree(w, st);
    if (!st)
        st = world_agree(w, error_mpi(&w->error, MPI_Bcast(serial, 1, MPI_UINT64_T, 0, w->comm),
                                      "sharing the index serial"));
    if (st) {
        free(b->rows);
        b->rows = NULL;
        if (w->writable)
            world_reindex_release(w);
    }
    return st;
}

strata_status strata_reindex(strata_world *w, int full, strata_reindex_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double start = MPI_Wtime();
    reindex_batch b = {0};
    lod_index *x = NULL;
    uint64_t serial = 0;
    strata_status st = reindex_start(w, &x, &b, &serial);
    if (st)
        return st;
    const uint64_t id = STORE_INDEX_SEGMENT | serial, snapshot = w->committed.epoch;
    index_begin_write(w);
    double summarize_start = MPI_Wtime();
    st = summarize_rows(w, x, full, id, &b);
    double summarize = MPI_Wtime() - summarize_start, slowest = summarize;
    st = world_agree(w, st);
    uint64_t mine = b.n, total = 0;
    if (!st) {
        int rc = MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, w->comm);
        if (rc == MPI_SUCCESS)
            rc = MPI_Allreduce(&summarize, &slowest, 1, MPI_DOUBLE, MPI_MAX, w->comm);
        st = world_agree(w, error_mpi(&w->error, rc, "counting reindexed chunks"));
    }
    strata_reindex_stats rs = {0};
    if (!st && total && strata_fault_point("reindex-summarised"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected after summarising");
    st = world_agree(w, st);
    make_index_only(&b);
    int segment_written = 0;
    if (!st && total) {
        st = store_write_segment(&w->store, id, w->size, b.rows, b.n, b.payload.data,
                                 b.payload.bytes, &w->error);
        segment_written = !st;
    }
    if (!st && total && strata_fault_point("reindex-written"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected after writing the index segment");
    st = world_agree(w, st);
    int changed = 0;
    if (!st && total)
        st = world_publish_begin(w, &changed);
    if (!st && total && strata_fault_point("reindex-publish-locked"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected while holding the publish lock");
    st = world_agree(w, st);
    if (!st && total)
        st = publish(w, &b, id, snapshot, total, slowest, &rs);
    world_publish_end(w);
    int published = !st || st == STRATA_ERR_UNSYNCED;
    /* Not published (its manifest's write failed: a full disk): the index segment
     * goes now, under the REINDEX lock, instead of at the next reindex. */
    if (!published && segment_written)
        store_remove_unpublished(&w->store, id);
    if (published && total) {
        /* The histograms kept while summarising describe the rows only when
         * nothing changed under this reindex; otherwise the nodes are rebuilt
         * on next use. */
        if (changed || rs.applied != total)
            index_invalidate(w);
        else
            index_after_write(w, 0);
    } else if (total) {
        index_invalidate(w); /* histograms were kept for rows that did not publish */
    }
    if (w->writable)
        world_reindex_release(w);
    free(b.rows);
    free(b.payload.data);
    if (stats && published) {
        *stats = rs;
        stats->chunks = total;
        stats->voxels = total * w->chunk_voxels;
        stats->seconds = MPI_Wtime() - start;
        stats->summarize_seconds = slowest;
        stats->epoch = total ? w->committed.epoch : 0;
        stats->snapshot_epoch = snapshot;
    }
    return st;
}

strata_status strata_index_status(strata_world *w, int build, strata_index_info *info)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    if (!info) /* fails at the agreement below, where the other ranks are */
        return index_ensure(w, world_null_argument(w, __func__, "info"), build);
    memset(info, 0, sizeof *info);
    lod_index *x = NULL;
    strata_status st = index_get(w, &x);
    st = index_ensure(w, st, build);
    if (st)
        return st;
    const manifest *m = &w->committed;
    *info = (strata_index_info){
        .data_epoch = m->epoch,
        .index_epoch = m->index_epoch,
        .stale_chunks = m->stale_chunks,
        .rebuild_chunks = m->rebuild_chunks,
        .rebuild_seconds = m->rebuild_seconds,
        .rebuilt_at = m->rebuilt_at,
        .chunk_level = w->edge_bits,
        .max_level = w->edge_bits + x->max_level,
        .replicated_level =
            w->edge_bits + (x->top_level <= x->max_level ? x->top_level : x->max_level + 1),
    };
    for (size_t i = 0; i < m->segment_count; i++)
        info->index_segments += store_is_index_segment(m->segments[i].epoch);
    if (!build)
        return STRATA_OK;
    uint64_t local = 0, most = 0;
    for (int k = 1; k <= x->max_level; k++) {
        info->replicated_nodes += x->global[k].count;
        local += x->local[k].count;
    }
    st = world_agree(w, error_mpi(&w->error,
                                  MPI_Allreduce(&local, &most, 1, MPI_UINT64_T, MPI_MAX, w->comm),
                                  "counting index nodes"));
    info->local_nodes = most;
    if (!st)
        st = octree_hash(w, &info->hash);
    return st;
}
