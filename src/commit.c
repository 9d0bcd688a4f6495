/* commit.c: the commit protocol. Its one description is the comment above
 * strata_commit, at the end of this file, with each step labelled where it
 * happens; docs/architecture.md and docs/reliability.md point there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "commit.h"
#include "delta.h"
#include "fault.h"
#include "fsutil.h"
#include "index/octree.h"
#include "parallel.h"
#include "world.h"

typedef struct {
    chunk **items;
    size_t count, capacity;
    int failed;
} chunk_list;

/* Lists dirty chunks, and blind-write entries (world.h) that hold changes. */
static void collect_dirty(chunk *k, void *ctx)
{
    chunk_list *l = ctx;
    if (!(k->blind ? k->log_count > 0 : k->dirty) || l->failed)
        return;
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? l->capacity * 2 : 256;
        chunk **grown = strata_realloc(l->items, capacity * sizeof *grown);
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
    uint64_t deltas, delta_bytes; /* chunks written as delta records, and their bytes */
    uint64_t delta_voxels;        /* the changes those records hold */
} encoded_batch;

/* What one thread encodes with: codec scratch and output, LOD scratch, the
 * histograms it keeps, and an arena of its chunks' blobs (payload then pyramid).
 * Thread 0 borrows the world's buffers; the others own theirs. */
typedef struct {
    void *scratch;
    uint8_t *out;
    lod_work *work;
    node_set pending, *keep;
    byte_buffer arena;
    int owned;
} encode_kit;

typedef struct {
    strata_world *w;
    chunk **items;
    uint64_t epoch;
    store_row *rows;
    uint64_t *blob; /* per item: offset of its blob in its thread's arena */
    uint64_t *size; /* per item: bytes of its blob */
    int *thread;    /* per item: the thread that encoded it */
    encode_kit *kits;
    int index;       /* summarise too (the index is not deferred) */
    uint8_t *reload; /* per item: a blind entry that cannot be a delta (it must be decoded) */
    size_t *again;   /* the items of the second pass */
    /* Blind entries over a stored payload or chain, when the index is built: their
     * payload then chain (fetch_sources), read on the main thread for the workers. */
    uint8_t *payloads, *chains; /* the payloads (read with their neighbours), the chains */
    uint64_t payloads_capacity;
    uint64_t *source_at; /* per item: offset of its payload in payloads, UINT64_MAX: none */
    uint64_t *chain_at;  /* per item: offset of its chain (delta_chain_bytes) in chains */
} encode_run;

/* Write chunk k as a delta record chained to its committed row `old` (NULL: never
 * stored, an air base) when its logged change fits the rule (src/delta.h): at
 * most delta_log_max changes (the log's bound), a chain of at most
 * DELTA_DEPTH_MAX records and delta_chain_budget bytes. *done = 0 when the chunk
 * must be written whole. The record goes to the thread's arena at the blob's
 * start; the row keeps the base image and summaries of `old`. */
static strata_status encode_delta(encode_run *r, encode_kit *t, chunk *k, const store_row *old,
                                  store_row *row, int *done, strata_error *err)
{
    const strata_world *w = r->w;
    *done = 0;
    uint16_t depth = old ? old->delta_depth : 0;
    /* a uniform chunk (no voxels, not blind) costs less as a uniform row */
    if (k->whole || !k->log_count || (!k->voxels && !k->blind) || depth >= DELTA_DEPTH_MAX)
        return STRATA_OK;
    size_t n = delta_log_normalize(k->log, k->log_count, w->chunk_voxels, t->scratch,
                                   chunk_scratch_size(w->edge));
    k->log_count = (uint32_t)n; /* normalized: still the same changes */
    store_row base = old ? *old : (store_row){0};
    /* the size check before encoding: a record that cannot fit the chain's bytes is not
     * encoded to be thrown away */
    int rice;
    if ((depth ? (uint64_t)base.delta_bytes : 0) + delta_size_floor(k->log, n, w->edge, &rice) >
        delta_chain_budget(&base))
        return STRATA_OK;
    delta_header h = {.depth = (uint16_t)(depth + 1),
                      .key = k->key,
                      .epoch = r->epoch,
                      .base_segment = base.payload_segment,
                      .base_offset = base.payload_offset,
                      .base_tag = delta_base_tag(&base)};
    if (depth) {
        h.prev_segment = base.delta_segment, h.prev_offset = base.delta_offset;
        h.prev_length = base.delta_length, h.prev_crc = base.delta_crc;
    }
    size_t length = 0;
    strata_status st = delta_encode(&h, k->log, n, w->edge, rice, w->options.zstd_level, t->scratch,
                                    t->out, chunk_encode_bound(w->edge), &length, err);
    if (st)
        return world_chunk_failed(w, "commit (delta)", k->key, st, err);
    uint64_t chain = (depth ? (uint64_t)base.delta_bytes : 0) + length;
    if (chain > delta_chain_budget(&base))
        return STRATA_OK;
    *row = base;
    row->key = k->key;
    row->epoch = r->epoch;
    row->lod_segment = row->lod_offset = 0;
    row->lod_length = row->lod_crc = 0;
    row->delta_segment = r->epoch;
    row->delta_offset = 0; /* the blob's start, rebased with it */
    row->delta_length = (uint32_t)length;
    row->delta_crc = checksum_update(0, t->out, length);
    row->delta_first = depth ? base.delta_first : r->epoch;
    row->delta_bytes = (uint32_t)chain;
    row->delta_depth = h.depth;
    if (!byte_buffer_append(&t->arena, t->out, length))
        return world_chunk_failed(w, "commit", k->key,
                                  error_set(err, STRATA_ERR_NOMEM, "cannot hold its delta"), err);
    *done = 1;
    return STRATA_OK;
}

/* The summary of item i, written as a delta record, from its stored image (uniform,
 * absent, or fetched with its chain by fetch_sources) and its log (index_summarize_changes);
 * *served = 0 when it needs its voxels. */
static strata_status summarize_delta(encode_run *r, encode_kit *t, size_t i, store_row *row,
                                     const uint8_t **pyramid, size_t *length, int *served,
                                     strata_error *err)
{
    const strata_world *w = r->w;
    const chunk *k = r->items[i];
    const store_row *old = world_own_row(w, k->key);
    index_change c = {.value = old ? old->value : 0, .log = k->log, .log_count = k->log_count};
    chunk_palette base;
    if (old && !store_row_uniform(old)) {
        if (!k->blind || r->source_at[i] == UINT64_MAX)
            return STRATA_OK; /* its voxels are at hand */
        if (old->codec == CODEC_PALETTE) {
            const uint8_t *source = r->payloads + r->source_at[i];
            strata_status st =
                store_check_payload(w->store.dir, old->payload_segment, old->payload_offset,
                                    old->payload_length, old->payload_crc, k->key, source, err);
            if (!st)
                st = chunk_decode_palette(source, old->payload_length, w->edge, t->scratch, &base,
                                          err);
            if (st)
                return world_chunk_failed(w, "commit (its stored image)", k->key, st, err);
            c.base = &base;
        } else if (old->codec != CODEC_UNIFORM) {
            return STRATA_OK; /* a shuffled payload: decoded */
        }
        c.chain = old->delta_depth ? r->chains + r->chain_at[i] : NULL;
        c.chain_bytes = delta_chain_bytes(old);
        c.depth = old->delta_depth;
        c.scratch = t->scratch; /* the image's indices are copied out before the chain */
    }
    return index_summarize_changes(w, t->work, t->keep, &c, row, pyramid, length, served, err);
}

/* Encode one chunk into a row and its thread's arena, with offsets relative to
 * the chunk's own blob (payload at 0, pyramid after it); unless the index is
 * deferred, its LOD summary and pyramid too. Runs on worker threads: reads the
 * chunk and the world, writes only its row and its thread's kit. */
/* A chunk written whole: its row as a uniform value or its payload encoded into the
 * thread's arena; *indices: the palette form the encoder wrote (into *palette), for the
 * LOD build when the index is built (no second pass over the voxels), else NULL. */
static strata_status encode_image(const encode_run *r, encode_kit *t, const chunk *k,
                                  store_row *row, chunk_palette *palette,
                                  const chunk_palette **indices, strata_error *err)
{
    const strata_world *w = r->w;
    if (!k->voxels) {
        row->codec = CODEC_UNIFORM;
        row->value = k->value;
        return STRATA_OK;
    }
    chunk_encoding enc;
    strata_status st =
        chunk_encode(k->voxels, w->edge, w->options.zstd_level, t->scratch, t->out, &enc, err);
    if (st)
        return world_chunk_failed(w, "commit", k->key, st, err);
    row->codec = (uint8_t)enc.codec;
    row->value = enc.uniform_value;
    if (enc.codec == CODEC_PALETTE && r->index) {
        chunk_encoded_palette(t->scratch, w->edge, palette);
        *indices = palette;
    }
    if (enc.length) {
        row->payload_segment = r->epoch;
        row->payload_length = (uint32_t)enc.length;
        row->payload_crc = checksum_update(0, t->out, enc.length);
        if (!byte_buffer_append(&t->arena, t->out, enc.length))
            return world_chunk_failed(w, "commit", k->key,
                                      error_set(err, STRATA_ERR_NOMEM, "cannot hold its payload"),
                                      err);
    }
    return STRATA_OK;
}

/* Item i's LOD summary and pyramid (after its payload or delta in the thread's arena):
 * from its stored image and log when it was written as a delta (summarize_delta), else
 * from its voxels or palette form `indices`. A blind entry the first cannot serve is
 * left to the second pass (reload). */
static strata_status summarize_item(encode_run *r, encode_kit *t, size_t i, int delta,
                                    const chunk_palette *indices, strata_error *err)
{
    const strata_world *w = r->w;
    const chunk *k = r->items[i];
    store_row *row = &r->rows[i];
    const uint8_t *pyramid;
    size_t length;
    int served = 0;
    strata_status st = STRATA_OK;
    if (delta) /* the summary from the stored image and the log: no voxels */
        st = summarize_delta(r, t, i, row, &pyramid, &length, &served, err);
    if (!st && !served && k->blind) {
        /* not served (a 17th material, a chunk cut by the world's edge): decoded on the
         * main thread and encoded again, like a blind entry that is no delta */
        t->arena.bytes = r->blob[i];
        r->reload[i] = 1;
        r->size[i] = 0;
        return STRATA_OK;
    }
    if (!st && !served)
        st = index_summarize_chunk_in(w, t->work, t->keep, k->voxels, indices, k->value, row,
                                      &pyramid, &length, err);
    if (st)
        return world_chunk_failed(w, "commit", k->key, st, err);
    if (length) {
        row->lod_segment = r->epoch;
        row->lod_offset = t->arena.bytes - r->blob[i]; /* after the payload or delta */
        row->lod_length = (uint32_t)length;
        row->lod_crc = checksum_update(0, pyramid, length);
        if (!byte_buffer_append(&t->arena, pyramid, length))
            return world_chunk_failed(w, "commit", k->key,
                                      error_set(err, STRATA_ERR_NOMEM, "cannot hold its pyramid"),
                                      err);
    }
    r->size[i] = t->arena.bytes - r->blob[i];
    return STRATA_OK;
}

static strata_status encode_item(void *ctx, int thread, size_t i, strata_error *err)
{
    encode_run *r = ctx;
    const strata_world *w = r->w;
    encode_kit *t = &r->kits[thread];
    chunk *k = r->items[i];
    store_row *row = &r->rows[i];
    memset(row, 0, sizeof *row);
    row->key = k->key;
    row->epoch = r->epoch;
    r->thread[i] = thread;
    r->blob[i] = t->arena.bytes;
    chunk_palette palette;
    const chunk_palette *indices = NULL;
    int delta = 0;
    strata_status st = encode_delta(r, t, k, world_own_row(w, k->key), row, &delta, err);
    if (st)
        return st;
    if (!delta && k->blind) {
        r->reload[i] = 1; /* its voxels are needed: decoded on the main thread, encoded again */
        r->size[i] = 0;
        return STRATA_OK;
    }
    /* a delta row keeps its base image; its summary is rebuilt from image and log */
    if (!delta && (st = encode_image(r, t, k, row, &palette, &indices, err)))
        return st;
    row->flags = STORE_ROW_INDEX_STALE;
    if (!r->index) {
        r->size[i] = t->arena.bytes - r->blob[i];
        return STRATA_OK;
    }
    return summarize_item(r, t, i, delta, indices, err);
}

/* The second pass over the blind entries the first could not write as deltas. */
static strata_status encode_again(void *ctx, int thread, size_t j, strata_error *err)
{
    encode_run *r = ctx;
    return encode_item(ctx, thread, r->again[j], err);
}

/* Replace the blind entry at items[i] by its chunk, loaded and merged (world_own_chunk). */
static strata_status load_blind(strata_world *w, chunk **item)
{
    strata_status st = world_own_chunk(w, (*item)->key, item);
    if (!st)
        chunk_collapse_uniform(&w->owned, *item);
    return st;
}

static void free_kits(encode_kit *kits, int n)
{
    for (int i = 0; kits && i < n; i++) {
        if (kits[i].owned) {
            free(kits[i].scratch);
            free(kits[i].out);
            lod_work_free(kits[i].work);
        }
        node_set_free(&kits[i].pending);
        free(kits[i].arena.data);
    }
    free(kits);
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

/* Before encoding: blind-write entries (world.h) are written as delta records from
 * their logs, not decoded, unless the commit needs their voxels: for their LOD pyramid
 * when the index is built here, or when their chain is full (then written whole). The
 * rest that cannot be deltas (over the chain's bytes) are decoded after the first pass.
 * A chunk made uniform by its updates goes back to costing one value. */
static strata_status prepare_dirty(strata_world *w, const chunk_list *dirty, int index)
{
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < dirty->count && !st; i++) {
        chunk *k = dirty->items[i];
        const store_row *old = k->blind ? world_own_row(w, k->key) : NULL;
        /* the index needs no voxels of an image that is uniform, absent or a palette
         * (index_summarize_changes; fetch_sources reads a palette and a chain) */
        if (k->blind &&
            ((index && old && old->codec != CODEC_UNIFORM && old->codec != CODEC_PALETTE) ||
             (old && old->delta_depth >= DELTA_DEPTH_MAX)))
            st = load_blind(w, &dirty->items[i]);
        else
            chunk_collapse_uniform(&w->owned, k);
    }
    return st;
}

/* The encoding state of n chunks on `threads` threads: per chunk its blob, size and
 * thread, per thread its buffers (thread 0 the world's own). Local. */
static strata_status encode_run_start(strata_world *w, lod_index *x, size_t n, int threads,
                                      encode_run *r)
{
    r->blob = strata_malloc((n + 1) * sizeof *r->blob);
    r->size = strata_malloc((n + 1) * sizeof *r->size);
    r->thread = strata_malloc((n + 1) * sizeof *r->thread);
    r->kits = strata_calloc((size_t)threads, sizeof *r->kits);
    r->reload = strata_calloc(n + 1, 1);
    r->again = strata_malloc((n + 1) * sizeof *r->again);
    r->source_at = strata_malloc((n + 1) * sizeof *r->source_at);
    r->chain_at = strata_malloc((n + 1) * sizeof *r->chain_at);
    if (!r->blob || !r->size || !r->thread || !r->kits || !r->reload || !r->again ||
        !r->source_at || !r->chain_at)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate the encoding state of %zu chunks",
                          n);
    strata_status st = STRATA_OK;
    for (int t = 0; !st && t < threads; t++) {
        encode_kit *kit = &r->kits[t];
        if (t == 0) {
            kit->scratch = w->scratch, kit->out = w->encode_buffer,
            kit->work = r->index ? x->work : NULL;
        } else {
            kit->owned = 1;
            kit->scratch = strata_malloc(chunk_scratch_size(w->edge));
            kit->out = strata_malloc(chunk_encode_bound(w->edge));
            if (!kit->scratch || !kit->out)
                st = WORLD_FAIL(w, STRATA_ERR_NOMEM,
                                "cannot allocate encoding buffers for thread %d", t);
            else if (r->index)
                st = lod_work_create(w->edge, &kit->work, &w->error);
        }
        /* One thread keeps histograms straight in the index; several merge theirs after. */
        if (r->index && x->built)
            kit->keep = threads == 1 ? &x->pending : &kit->pending;
    }
    return st;
}

/* Reads of stored payloads closer than this are one read (as the index build's). */
#define SOURCE_READ_GAP ((uint64_t)4096)

/* The stored payload and chain of every blind entry the index summarises from them
 * (summarize_delta), read here on the main thread (the store is not thread-safe), the
 * payloads with one read per run of neighbours (their checksums are the encoding
 * threads'), the chains one round per depth (delta_chains_read). */
static strata_status fetch_sources(strata_world *w, const chunk_list *dirty, encode_run *r)
{
    const size_t n = dirty->count;
    const store_row **rows = strata_calloc(n + 1, sizeof *rows);
    store_ref *refs = strata_malloc((n + 1) * sizeof *refs);
    if (!rows || !refs) {
        free(rows);
        free(refs);
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot plan the reads of %zu chunks", n);
    }
    size_t m = 0;
    uint64_t chains = 0;
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const chunk *k = dirty->items[i];
        const store_row *old = k->blind && r->index ? world_own_row(w, k->key) : NULL;
        r->source_at[i] = UINT64_MAX;
        r->chain_at[i] = 0;
        if (!old || store_row_uniform(old) || old->delta_depth >= DELTA_DEPTH_MAX)
            continue;
        /* a size read from a file is checked before it sizes an allocation */
        if (old->payload_length > chunk_encode_bound(w->edge))
            st = WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                            "chunk key %" PRIu64 ": payload length %u exceeds the largest "
                            "possible (%zu)",
                            k->key, old->payload_length, chunk_encode_bound(w->edge));
        if (!st) /* and the chain's sizes, before they size the chains' buffer */
            st = delta_chain_check(old, w->edge, &w->error);
        r->source_at[i] = 0;
        if (old->payload_length)
            refs[m++] = (store_ref){.segment = old->payload_segment,
                                    .offset = old->payload_offset,
                                    .length = old->payload_length,
                                    .key = k->key,
                                    .item = i};
        if (old->delta_depth) {
            rows[i] = old;
            r->chain_at[i] = chains;
            chains += delta_chain_bytes(old);
        }
    }
    size_t failed = m;
    if (!st && m)
        st = store_read_many(&w->store, refs, m, SOURCE_READ_GAP, &r->payloads,
                             &r->payloads_capacity, &failed, &w->error);
    for (size_t k = 0; !st && k < m; k++)
        r->source_at[refs[k].item] = refs[k].at;
    if (!st && chains && !(r->chains = strata_malloc(chains)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " bytes of delta chains",
                        chains);
    if (!st && chains)
        st = delta_chains_read(&w->store, rows, n, w->edge, r->chains, r->chain_at, &w->error);
    free(rows);
    free(refs);
    return st;
}

/* 1 when every blob lies in thread 0's arena, in key order, one after the other: the
 * arena is then the payload as it is (one thread, no second pass). */
static int blobs_in_order(const encode_run *r, size_t n)
{
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (r->size[i] && (r->thread[i] != 0 || r->blob[i] != at))
            return 0;
        at += r->size[i];
    }
    return at > 0;
}

/* Phase 2: the threads' blobs concatenated in key order into b->payload (thread 0's
 * arena taken as it is when it holds them in order: no copy of a fresh buffer, whose
 * first-touch page faults cost more than the copy), and the rows' offsets into this
 * commit's segment rebased. Local. */
static strata_status concat_payloads(strata_world *w, encode_run *r, size_t n, uint64_t epoch,
                                     encoded_batch *b)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += r->size[i];
    const int in_order = blobs_in_order(r, n);
    if (in_order) {
        byte_buffer *arena = &r->kits[0].arena;
        b->payload = arena->data, b->payload_capacity = arena->capacity;
        arena->data = NULL, arena->bytes = arena->capacity = 0;
    } else if (!(b->payload = strata_malloc(total + 1))) {
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " payload bytes", total);
    } else {
        b->payload_capacity = total + 1;
    }
    for (size_t i = 0; i < n; i++) {
        store_row *row = &b->rows[i];
        uint64_t base = b->payload_bytes, length = r->size[i];
        if (length && !in_order)
            memcpy(b->payload + base, r->kits[r->thread[i]].arena.data + r->blob[i], length);
        /* only what this commit wrote moves: a delta row's base lies in an older segment */
        if (row->payload_length && row->payload_segment == epoch)
            row->payload_offset += base;
        if (row->lod_length && row->lod_segment == epoch)
            row->lod_offset += base;
        if (row->delta_depth && row->delta_segment == epoch) {
            row->delta_offset += base;
            b->deltas++;
            b->delta_bytes += row->delta_length;
            delta_header h;
            if (delta_parse(b->payload + row->delta_offset, row->delta_length, w->edge, &h,
                            &w->error) == STRATA_OK) /* it was just encoded: it parses */
                b->delta_voxels += h.count;
        }
        b->payload_bytes += length;
    }
    return STRATA_OK;
}

/* Phase 1 (threads): encode every dirty chunk into its thread's arena.
 * Phase 2 (main thread, key order): concatenate the blobs into the batch
 * payload and rebase the offsets, so the segment is byte-identical to a
 * serial encode. Chunk cache mutations happen before phase 1. */
static strata_status encode_dirty(strata_world *w, const chunk_list *dirty, uint64_t epoch,
                                  encoded_batch *b)
{
    size_t n = dirty->count;
    b->rows = strata_malloc((n + 1) * sizeof *b->rows);
    if (!b->rows)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate %zu rows", n);
    b->raw_bytes = (uint64_t)n * w->chunk_voxels * sizeof(uint16_t);
    int index = !w->options.defer_index;
    lod_index *x = NULL;
    strata_status st = prepare_dirty(w, dirty, index);
    if (!st && index)
        st = index_get(w, &x);
    if (st)
        return st;
    int threads = parallel_threads(w->options.threads, w->ranks_per_node, n);
    encode_run r = {.w = w, .items = dirty->items, .epoch = epoch, .rows = b->rows, .index = index};
    st = encode_run_start(w, x, n, threads, &r);
    if (!st)
        st = fetch_sources(w, dirty, &r);
    if (!st)
        st = parallel_for(threads, n, encode_item, &r, &w->error);
    size_t again = 0;
    for (size_t i = 0; !st && i < n; i++)
        if (r.reload[i] && !(st = load_blind(w, &dirty->items[i])))
            r.again[again++] = i;
    if (!st && again)
        st = parallel_for(threads < (int)again ? threads : (int)again, again, encode_again, &r,
                          &w->error);
    /* the second pass kept its histograms after the first's: back in key order */
    for (int t = 0; !st && again && index && x->built && t < threads; t++)
        node_set_sort(r.kits[t].keep);
    if (!st && index && x->built && threads > 1) {
        node_set sets[PARALLEL_MAX_THREADS];
        for (int t = 0; t < threads; t++) {
            sets[t] = r.kits[t].pending;
            r.kits[t].pending = (node_set){0};
        }
        st = index_pending_merge(w, sets, threads);
    }
    if (!st)
        st = concat_payloads(w, &r, n, epoch, b);
    free(r.blob);
    free(r.size);
    free(r.thread);
    free(r.reload);
    free(r.again);
    free(r.source_at);
    free(r.chain_at);
    free(r.payloads);
    free(r.chains);
    free_kits(r.kits, threads);
    return st;
}

/* Merge the rows a commit wrote into the rank's sorted table, in `merged`
 * (room for w->row_count + n rows, allocated before the commit point, so that
 * nothing after it can fail). */
static void merge_rows(strata_world *w, store_row *merged, const store_row *fresh, size_t n)
{
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
}

strata_status world_merge_rows(strata_world *w, const store_row *fresh, size_t n)
{
    store_row *merged = strata_malloc((w->row_count + n + 1) * sizeof *merged);
    if (!merged)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot grow the chunk table");
    merge_rows(w, merged, fresh, n);
    return STRATA_OK;
}

static void mark_row(const manifest *m, const store_row *row, uint8_t *keep)
{
    /* index_home: the index segment whose row gave this one its summary */
    const uint64_t used[4] = {row->home, row->payload_segment, row->lod_segment, row->index_home};
    for (int k = 0; k < 4; k++) {
        if (k && (used[k] == used[0] || used[k] == used[k - 1]))
            continue; /* mostly all three are the one segment the row came from */
        size_t i = manifest_segment_index(m, used[k]);
        if (i != SIZE_MAX)
            keep[i] = 1;
    }
    if (!row->delta_depth)
        return;
    /* A chain's records lie in segments between its oldest and newest: keep them all
     * (the row names only the newest; reading the chain to find the others would cost
     * a read per record). */
    size_t lo = 0, hi = m->segment_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->segments[mid].epoch < row->delta_first)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < m->segment_count && m->segments[i].epoch <= row->delta_segment; i++)
        keep[i] = 1;
}

/* keep[i] = 1 when a live row, once `fresh` (n rows sorted by key, bound for the
 * new segment) replaces the rank's rows of the same keys, still uses committed
 * segment i: it holds the row, its payload or its pyramid. Collective (one
 * MPI_Allreduce). */
static strata_status segments_in_use(strata_world *w, const store_row *fresh, size_t n,
                                     uint8_t *keep)
{
    const manifest *m = &w->committed;
    memset(keep, 0, m->segment_count);
    size_t j = 0;
    for (size_t i = 0; i < w->row_count; i++) {
        while (j < n && fresh[j].key < w->rows[i].key)
            j++;
        if (j == n || fresh[j].key != w->rows[i].key)
            mark_row(m, &w->rows[i], keep);
    }
    for (size_t i = 0; i < n; i++)
        mark_row(m, &fresh[i], keep);
    if (!m->segment_count)
        return STRATA_OK;
    return error_mpi(
        &w->error,
        MPI_Allreduce(MPI_IN_PLACE, keep, (int)m->segment_count, MPI_UINT8_T, MPI_BOR, w->comm),
        "agreeing on the segments in use");
}

/* Close the segments `before` named that w->committed no longer does, and
 * (rank 0, when the commit is durable) unlink them; readers that opened them
 * read on until they close. After an unsynced commit they stay on disk, since a
 * power loss may bring back the manifest naming them; the next writer's open
 * removes them once they are named by no manifest. */
static void retire_segments(strata_world *w, const manifest *before, int durable)
{
    const manifest *m = &w->committed;
    uint64_t *live = strata_malloc((m->segment_count + 1) * sizeof *live);
    if (!live)
        return; /* the segments stay open and on disk: the next commit retires them */
    for (size_t i = 0; i < m->segment_count; i++)
        live[i] = m->segments[i].epoch;
    store_retain(&w->store, live, m->segment_count);
    free(live);
    for (size_t i = 0; durable && w->rank == 0 && i < before->segment_count; i++) {
        if (manifest_segment_index(m, before->segments[i].epoch) != SIZE_MAX)
            continue;
        char name[64], path[STRATA_PATH_MAX];
        manifest_segment_name(before->segments[i].epoch, name, sizeof name);
        if (path_join(path, sizeof path, w->dir, name, NULL) == STRATA_OK)
            unlink(path);
    }
}

strata_status world_drop_unused_index(strata_world *w, manifest *next, uint64_t own)
{
    uint8_t *keep = strata_malloc(w->committed.segment_count + 1);
    strata_status st =
        world_agree(w, keep ? STRATA_OK : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list segments"));
    if (!st)
        st = world_agree(w, segments_in_use(w, NULL, 0, keep));
    if (!st) {
        /* next is w->committed plus own, in the same order */
        size_t kept = 0;
        for (size_t i = 0; i < next->segment_count; i++) {
            uint64_t id = next->segments[i].epoch;
            if (!store_is_index_segment(id) || id == own || keep[i])
                next->segments[kept++] = next->segments[i];
        }
        next->segment_count = kept;
    }
    free(keep);
    return st;
}

/* The next manifest from the committed one, keeping the segments marked in keep. Local. */
static strata_status copy_next(strata_world *w, uint64_t epoch, int wrote_segment,
                               const uint8_t *keep, manifest *next)
{
    strata_status st = manifest_copy(&w->committed, next, &w->error);
    if (st)
        return st;
    next->epoch = epoch;
    next->commits++;
    size_t kept = 0;
    for (size_t i = 0; i < next->segment_count; i++)
        if (keep[i])
            next->segments[kept++] = next->segments[i];
    next->segment_count = kept;
    if (wrote_segment) {
        /* Ids stay ascending: the new data segment goes before the index
         * segments (their ids have bit 63 set). */
        size_t at = next->segment_count;
        while (at > 0 && store_is_index_segment(next->segments[at - 1].epoch))
            at--;
        memmove(next->segments + at + 1, next->segments + at,
                (next->segment_count - at) * sizeof *next->segments);
        next->segments[at].epoch = epoch;
        next->segment_count++;
    }
    return commit_next_writers(w, next);
}

strata_status commit_next_writers(strata_world *w, manifest *next)
{
    next->writer_ranks = w->size;
    if (next->split_ranks != w->size) {
        uint64_t *split = strata_malloc(((size_t)w->size + 1) * sizeof *split);
        if (!split)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate splitters");
        free(next->split);
        next->split = split;
        next->split_ranks = w->size;
    }
    memcpy(next->split, w->split, ((size_t)w->size + 1) * sizeof *w->split);
    return STRATA_OK;
}

strata_status commit_next_manifest(strata_world *w, uint64_t epoch, int wrote_segment,
                                   const store_row *fresh, size_t n, manifest *next)
{
    memset(next, 0, sizeof *next);
    uint8_t *keep = strata_malloc(w->committed.segment_count + 1);
    strata_status st =
        world_agree(w, keep ? STRATA_OK : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list segments"));
    if (!st)
        st = world_agree(w, segments_in_use(w, fresh, n, keep));
    if (!st)
        st = world_agree(w, copy_next(w, epoch, wrote_segment, keep, next));
    free(keep);
    if (st)
        manifest_free(next);
    return st;
}

/* The rows of the data segments latest adds (ids in new_ids), newest winning,
 * with every index segment of the store applied; merged into the rank's rows. */
static strata_status catch_up_data(strata_world *w, const uint64_t *new_ids, size_t n)
{
    store view = w->store; /* the new data segments only (sorted, like the store) */
    view.segments = strata_malloc((n + 1) * sizeof *view.segments);
    if (!view.segments)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list %zu segments", n);
    view.count = 0;
    for (size_t i = 0; i < w->store.count; i++)
        for (size_t j = 0; j < n; j++)
            if (w->store.segments[i].epoch == new_ids[j])
                view.segments[view.count++] = w->store.segments[i];
    store_row *rows = NULL;
    size_t count = 0;
    strata_status st =
        store_load_rows(&view, w->split[w->rank], w->split[w->rank + 1], &rows, &count, &w->error);
    store_view_end(&w->store, &view);
    free(view.segments); /* shared handles: the store keeps and closes them */
    for (size_t i = 0; !st && i < w->store.count; i++) {
        uint64_t id = w->store.segments[i].epoch;
        if (!store_is_index_segment(id))
            continue;
        store_row *x = NULL;
        size_t nx = 0;
        st = store_load_index_rows(&w->store, id, w->split[w->rank], w->split[w->rank + 1], &x, &nx,
                                   &w->error);
        if (!st)
            store_apply_index(rows, count, x, nx, id);
        free(x);
    }
    if (!st)
        st = world_merge_rows(w, rows, count);
    free(rows);
    return st;
}

strata_status world_catch_up(strata_world *w, manifest *latest, int *changed)
{
    const manifest *m = &w->committed;
    uint64_t *added = strata_malloc((latest->segment_count + 1) * sizeof *added);
    size_t n_added = 0, n_data = 0;
    strata_status st = added ? STRATA_OK : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list segments");
    for (size_t i = 0; !st && i < latest->segment_count; i++) {
        uint64_t id = latest->segments[i].epoch;
        if (!manifest_has_segment(m, id)) {
            added[n_added++] = id;
            n_data += !store_is_index_segment(id);
        }
    }
    st = world_agree(w, st);
    if (!st && n_added)
        st = world_agree(w, store_open_segments(&w->store, added, n_added, &w->error));
    int mine = 0;
    if (!st && n_data) {
        /* Only a reindex (no writer lock) sees new data: the writer's commits. */
        st = catch_up_data(w, added, n_added);
        mine = 1;
    }
    for (size_t i = 0; !st && i < n_added; i++) {
        if (!store_is_index_segment(added[i]))
            continue;
        store_row *x = NULL;
        size_t nx = 0;
        st = store_load_index_rows(&w->store, added[i], w->split[w->rank], w->split[w->rank + 1],
                                   &x, &nx, &w->error);
        if (!st)
            mine |= store_apply_index(w->rows, w->row_count, x, nx, added[i]) > 0;
        free(x);
    }
    st = world_agree(w, st);
    int any = 0;
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_LOR, w->comm),
                                      "agreeing on a catch-up"));
    if (!st) {
        /* Segments a commit retired since are closed (their files may be
         * gone); a segment this job wrote and has yet to publish stays open. */
        size_t kept = 0;
        uint64_t *open = strata_malloc((w->store.count + 1) * sizeof *open);
        for (size_t i = 0; open && i < w->store.count; i++) {
            uint64_t id = w->store.segments[i].epoch;
            if (!manifest_has_segment(m, id) || manifest_has_segment(latest, id))
                open[kept++] = id;
        }
        if (open) /* else the retired ones stay open until close: harmless */
            store_retain(&w->store, open, kept);
        free(open);
        manifest_free(&w->committed);
        w->committed = *latest;
        memset(latest, 0, sizeof *latest);
        if (any) {
            /* The node sets and the copies of chunks describe the old rows. */
            index_invalidate(w);
            chunk_cache_free(&w->committed_copies);
            if (n_data && !w->writable)
                chunk_cache_free(&w->owned); /* a reindex holds no dirty chunk */
        }
    }
    if (changed)
        *changed = any;
    free(added);
    return st;
}

/* Steps 5 and 6 of the commit protocol (above strata_commit): rank 0 replaces
 * MANIFEST (the commit point), the ranks agree, and each takes `next` as committed. */
strata_status commit_publish(strata_world *w, manifest *next)
{
    /* The writer labels what it writes: a format-1 world (version-1 pyramid
     * payloads, still read) becomes format 2 at its first change by this library. */
    next->format = STRATA_FORMAT_VERSION;
    strata_status st = STRATA_OK;
    if (w->rank == 0) {
        /* A reindex writes through its own temporary file: a writer opening
         * the world removes MANIFEST.tmp as a dead commit's. */
        st = w->writable
                 ? manifest_write(w->dir, next, &w->error)
                 : manifest_write_through(w->dir, next, MANIFEST_NAME ".reindex.tmp", &w->error);
        if ((!st || st == STRATA_ERR_UNSYNCED) && w->replace_pending) {
            strata_status replaced = world_finish_replace(w, &w->error);
            st = replaced ? replaced : st;
        }
    }
    world_publish_end(w);
    /* Only rank 0 can fail here: every rank returns its status. */
    st = world_agree(w, st);
    if (st && st != STRATA_ERR_UNSYNCED) {
        manifest_free(next);
        return st;
    }
    if (w->replace_pending) {
        strcpy(w->dir, w->final_dir);
        strcpy(w->store.dir, w->final_dir);
        w->replace_pending = 0;
    }
    manifest before = w->committed;
    w->committed = *next;
    w->manifest_dirty = 0;
    retire_segments(w, &before, st == STRATA_OK);
    manifest_free(&before);
    return st;
}

/*
 * THE COMMIT PROTOCOL. A world is MANIFEST plus the immutable segments it
 * names; a commit adds one segment and replaces MANIFEST. The steps below are
 * labelled "Step N" in the code; [name] is the STRATA_FAULT point at that step
 * (src/fault.h: it kills the rank there, or with :error fails the step).
 * Reindex (src/index/reindex.c) and compaction (src/compact.c) write their
 * segment and then publish through the same steps 4 to 6.
 *
 * Step 1. Flush (strata_flush): route and apply the staged updates in memory
 *         [update-batch]. A failure or crash leaves the previous commit.
 * Step 2. Encode this rank's dirty chunks, in key order, into table rows and one
 *         payload buffer (encode_dirty), with their LOD summaries unless the
 *         index is deferred. Memory only; the ranks agree on the outcome.
 * Step 3. Write seg-<E>.h5, E = MANIFEST's epoch + 1 (store_write_segment):
 *         collectively through MPI-IO, each rank's rows and payloads placed by
 *         MPI_Exscan; H5Fclose (which writes the superblock last); then, once
 *         the ranks of each node have closed it, one rank per node fsyncs the
 *         file: a node's ranks share its page cache, and an fsync writes back
 *         the file's dirty pages whoever wrote them, on a parallel file system's
 *         client as on a local one [segment-written]. A crash up to here leaves
 *         the previous commit plus an orphan segment (epoch above MANIFEST's):
 *         readers never open it, the next writer's open removes it
 *         (remove_leftovers, src/world.c).
 * Step 3b. Rank 0 takes the PUBLISH lock (an fcntl lock on PUBLISH, held until
 *         step 5 ends, also by a reindex publishing beside the writer) and the
 *         ranks read MANIFEST: index segments a reindex added since the last
 *         commit are applied to the rows (world_catch_up), so step 4 keeps
 *         them. Reading only; a crash releases the lock.
 * Step 4. Every rank builds the same next manifest (commit_next_manifest):
 *         epoch E, the new segment, the segments some live row still uses
 *         (one MPI_Allreduce with MPI_BOR), this job's splitters. Memory only.
 * Step 5. Rank 0 replaces MANIFEST (manifest_write): writes MANIFEST.tmp and
 *         fsyncs it [manifest-before-rename], renames it over MANIFEST and
 *         fsyncs the directory [manifest-after-rename]. The fsync before the
 *         rename guards against a crash publishing a renamed but empty file;
 *         the one after it makes the rename itself survive a power loss.
 *
 *         ==== COMMIT POINT: the rename of MANIFEST.tmp over MANIFEST. ====
 *         Before it a crash leaves the previous commit (plus the orphan segment
 *         and MANIFEST.tmp, removed by the next writer); after it, the new one.
 *         A pending create --force swaps the worlds here (world_finish_replace).
 *
 * Step 6. The ranks agree on step 5 (commit_publish); then every rank takes the
 *         new manifest as committed and closes the segments it no longer
 *         names, which rank 0 unlinks (after the rename, so never one that a
 *         durable MANIFEST still names).
 * Step 7. Every rank merges the new rows into its table, marks its chunks
 *         clean (evictable) and drops its copies of the previous commit; then
 *         the call returns STRATA_OK: the commit is ACKNOWLEDGED. A crash
 *         between the commit point and here leaves the commit in flight, which
 *         the promise allows. Nothing after the commit point can fail: the
 *         merged table is allocated before it (after step 3). A failure of the
 *         directory fsync in step 5 is after the commit point too: it returns
 *         STRATA_ERR_UNSYNCED, steps 6 and 7 run (the handle continues from
 *         the new commit) but rank 0 keeps the retired segments on disk, since
 *         a power loss may bring the manifest naming them back.
 *
 * Why it holds: a segment is live only once a durable MANIFEST names it, and
 * it is on disk and fsync'ed before; MANIFEST only ever changes by an atomic
 * rename of an fsync'ed file, and readers read it once, so they see one commit;
 * the acknowledgement comes after the commit point; one writer at a time (the
 * fcntl lock on LOCK) is the only one creating segments.
 */
/* Step 2: this rank's dirty chunks (and blind entries holding changes) listed in key
 * order into *dirty and encoded into *batch. Local; the caller agrees. */
static strata_status encode_step(strata_world *w, uint64_t epoch, chunk_list *dirty,
                                 encoded_batch *batch)
{
    strata_status st = STRATA_OK;
    chunk_cache_each(&w->owned, collect_dirty, dirty);
    chunk_cache_each(&w->blind, collect_dirty, dirty);
    if (dirty->failed)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list dirty chunks");
    else if (dirty->count) /* qsort(NULL, 0, ...) is undefined */
        qsort(dirty->items, dirty->count, sizeof *dirty->items, compare_chunk_keys);
    index_begin_write(w);
    if (!st)
        st = encode_dirty(w, dirty, epoch, batch);
    return st;
}

/* Steps 3b to 6: the next manifest built and published (the COMMIT POINT is in
 * commit_publish). *stale_local and *stale_total: this rank's and all ranks' chunks
 * whose summary is stale after the commit. Collective. */
static strata_status publish_step(strata_world *w, uint64_t epoch, int wrote,
                                  const encoded_batch *batch, size_t count, uint64_t *stale_local,
                                  uint64_t *stale_total)
{
    manifest next = {0};
    /* Step 4: every rank builds the same next manifest. Segments no live
     * row uses any more (every chunk they held was rewritten since) leave
     * it, so a world rewritten commit after commit stays small.
     * Steps 5 and 6 (commit_publish): rank 0 replaces MANIFEST, the COMMIT
     * POINT; the ranks agree and retire the unused segments. */
    /* Step 3b (world_publish_begin): rank 0 takes the PUBLISH lock and
     * every rank reads MANIFEST: the index segments a reindex published
     * since the last commit are applied to the rows and stay named, so
     * this commit keeps what the reindex published. */
    strata_status st = world_publish_begin(w, NULL);
    if (!st && strata_fault_point("commit-publish-locked"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected while holding the publish lock");
    st = world_agree(w, st);
    *stale_local = st ? 0 : stale_after(w, batch->rows, count);
    if (!st)
        st = world_agree(
            w, error_mpi(&w->error,
                         MPI_Allreduce(stale_local, stale_total, 1, MPI_UINT64_T, MPI_SUM, w->comm),
                         "counting stale chunks"));
    if (!st)
        st = commit_next_manifest(w, epoch, wrote, batch->rows, wrote ? count : 0, &next);
    if (!st) {
        next.stale_chunks = *stale_total;
        if (*stale_total == 0)
            next.index_epoch = epoch;
        st = commit_publish(w, &next); /* releases the PUBLISH lock */
    }
    world_publish_end(w);
    return st;
}

/* Step 7 on a commit that happened: the new rows merged (taking `merged`), the
 * chunks marked clean, the blind entries and copies of the previous commit dropped.
 * Cannot fail. */
static void acknowledge_step(strata_world *w, int wrote, store_row *merged,
                             const encoded_batch *batch, const chunk_list *dirty)
{
    if (wrote) {
        merge_rows(w, merged, batch->rows, dirty->count);
        index_after_write(w, w->options.defer_index);
    } else {
        free(merged);
    }
    for (size_t i = 0; i < dirty->count; i++) {
        if (dirty->items[i]->blind)
            continue; /* dropped below */
        chunk_set_dirty(&w->owned, dirty->items[i], 0);
        chunk_log_clear(dirty->items[i]); /* its changes are stored now */
    }
    /* blind writes are stored now too (and empty entries a failed batch left); their
     * logs' slabs go back to the system, so one large batch does not pin its peak */
    chunk_cache_free(&w->blind);
    chunk_log_pool_free(&w->blind_logs);
    /* Copies of the previous commit would now read stale: drop them. */
    if (wrote)
        chunk_cache_free(&w->committed_copies);
    world_evict(w);
}

/* The commit's figures: total[] as strata_commit sums it, the steps' clock readings. */
static void fill_stats(const strata_world *w, const uint64_t total[7], const double at[4],
                       strata_commit_stats *stats)
{
    stats->epoch = w->committed.epoch;
    stats->chunks_written = total[0];
    stats->raw_bytes = total[1];
    stats->stored_bytes = total[2];
    stats->seconds = MPI_Wtime() - at[0];
    stats->flush_seconds = at[1] - at[0];
    stats->encode_seconds = at[2] - at[1];
    stats->write_seconds = at[3] - at[2];
    stats->delta_chunks = total[4];
    stats->delta_bytes = total[5];
    stats->delta_voxels = total[6];
}

strata_status strata_commit(strata_world *w, strata_commit_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double at[4] = {MPI_Wtime(), 0, 0, 0}; /* start, flushed, encoded, written */
    /* Step 1: flush. */
    strata_status st = strata_flush(w, NULL);
    if (st)
        return st;
    at[1] = MPI_Wtime();
    /* Step 2: encode the dirty chunks. */
    chunk_list dirty = {0};
    uint64_t epoch = w->committed.epoch + 1;
    encoded_batch batch = {0};
    st = encode_step(w, epoch, &dirty, &batch);
    at[2] = MPI_Wtime();
    st = world_agree(w, st);
    /* total[3] (stale chunks) is counted under the PUBLISH lock (step 3b). */
    uint64_t local[7] = {dirty.count,  batch.raw_bytes,   batch.payload_bytes, 0,
                         batch.deltas, batch.delta_bytes, batch.delta_voxels},
             total[7] = {0};
    if (!st)
        st = error_mpi(&w->error, MPI_Allreduce(local, total, 7, MPI_UINT64_T, MPI_SUM, w->comm),
                       "summing commit sizes");
    int wrote = total[0] > 0;
    /* Step 3: write and fsync the segment. */
    int segment_written = 0;
    if (!st && wrote) {
        st = store_write_segment(&w->store, epoch, w->size, batch.rows, dirty.count, batch.payload,
                                 batch.payload_bytes, &w->error);
        segment_written = !st;
    }
    /* The merged table is allocated before the commit point: after it nothing fails. */
    store_row *merged = NULL;
    if (!st && wrote &&
        !(merged = strata_malloc((w->row_count + dirty.count + 1) * sizeof *merged)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot grow the chunk table");
    st = world_agree(w, st);
    if (!st && (wrote || w->manifest_dirty || w->replace_pending))
        st = publish_step(w, epoch, wrote, &batch, dirty.count, &local[3], &total[3]);
    at[3] = MPI_Wtime();
    /* Step 7: after the commit point (STRATA_OK, or STRATA_ERR_UNSYNCED: the
     * commit happened); then the commit is acknowledged. Nothing here fails. */
    int committed = !st || st == STRATA_ERR_UNSYNCED;
    /* Not published (the manifest's write failed: a full disk): the segment goes
     * too. A pending create --force leaves its whole new world to the caller. */
    if (!committed && segment_written && !w->replace_pending)
        store_remove_unpublished(&w->store, epoch);
    if (committed)
        acknowledge_step(w, wrote, merged, &batch, &dirty);
    else
        free(merged);
    free(dirty.items);
    free(batch.rows);
    free(batch.payload);
    if (stats)
        fill_stats(w, total, at, stats);
    return st;
}
