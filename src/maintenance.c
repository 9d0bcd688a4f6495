/* maintenance.c: fsck, compaction, rebalancing and the SIGTERM boundary. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "commit.h"
#include "fault.h"
#include "fsutil.h"
#include "index/lod.h"
#include "index/octree.h"
#include "partition.h"
#include "world.h"

/* ---- signals ------------------------------------------------------------------- */

volatile sig_atomic_t strata_signal_pending;

static void on_signal(int sig)
{
    strata_signal_pending = sig;
}

strata_status strata_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return error_set(NULL, STRATA_ERR_IO, "cannot install signal handlers");
    return STRATA_OK;
}

/* ---- fsck ---------------------------------------------------------------------- */

typedef struct {
    strata_world *w;
    strata_problem_fn fn;
    void *ctx;
    uint64_t problems;
    int superseded; /* checking a row that a newer row of its chunk replaced */
} fsck_state;

static void report(fsck_state *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(fsck_state *f, const char *fmt, ...)
{
    char text[STRATA_ERROR_MAX + 256];
    /* Damage in a superseded row is noted, not counted: no read uses that
     * row, the world's data is whole, and compaction drops the row. */
    int at = f->superseded ? snprintf(text, sizeof text,
                                      "note: superseded row (no read uses it; `strata compact` "
                                      "drops it): ")
                           : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + at, sizeof text - (size_t)at, fmt, ap);
    va_end(ap);
    f->problems += !f->superseded;
    if (f->fn)
        f->fn(text, f->ctx);
}

/* Compare two decoded pyramids and histograms; 1 when equal. */
static int same_pyramid(const lod_pyramid *a, const lod_count *ha, size_t na, const lod_pyramid *b,
                        const lod_count *hb, size_t nb)
{
    if (a->levels != b->levels || na != nb)
        return 0;
    size_t cells = a->offset[a->levels + 1];
    for (size_t i = 0; i < na; i++)
        if (ha[i].material != hb[i].material || ha[i].count != hb[i].count)
            return 0;
    return !memcmp(a->mode, b->mode, cells * sizeof *a->mode) &&
           !memcmp(a->count, b->count, cells * sizeof *a->count);
}

/* An index summary that disagrees with its chunk's data: recompute the summary
 * and the pyramid from the voxels (NULL: uniform chunk) and compare. */
static void check_index(fsck_state *f, const store_row *row, const uint16_t *voxels)
{
    strata_world *w = f->w;
    if (row->flags & STORE_ROW_INDEX_STALE)
        return; /* reported as stale by `strata info`, not an inconsistency */
    store_row fresh = *row;
    const uint8_t *pyramid = NULL;
    size_t length = 0;
    if (index_summarize_chunk(w, voxels, row->value, &fresh, &pyramid, &length)) {
        report(f, "chunk key %" PRIu64 " index: %s", row->key, w->error.message);
        return;
    }
    if (fresh.dominant != row->dominant || fresh.dominant_count != row->dominant_count ||
        fresh.distinct != row->distinct) {
        report(f,
               "chunk key %" PRIu64
               ": index summary disagrees with the data (stored dominant %u x%u, "
               "%u distinct; data has dominant %u x%u, %u distinct)",
               row->key, row->dominant, row->dominant_count, row->distinct, fresh.dominant,
               fresh.dominant_count, fresh.distinct);
        return;
    }
    if (!length != !row->lod_length) {
        report(f, "chunk key %" PRIu64 ": index pyramid %s, but the chunk %s", row->key,
               row->lod_length ? "stored" : "missing",
               length ? "holds several materials" : "is uniform");
        return;
    }
    if (!length)
        return;
    lod_pyramid want = {0}, got = {0};
    lod_count *want_hist = NULL, *got_hist = NULL;
    size_t want_n = 0, got_n = 0;
    uint8_t *stored = strata_malloc(row->lod_length);
    strata_status st = lod_decode(pyramid, length, w->edge, &want, &want_hist, &want_n, &w->error);
    if (!st)
        st = stored ? store_read_payload(&w->store, row->lod_segment, row->lod_offset,
                                         row->lod_length, row->lod_crc, row->key, stored, &w->error)
                    : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate a pyramid payload");
    if (!st)
        st = lod_decode(stored, row->lod_length, w->edge, &got, &got_hist, &got_n, &w->error);
    if (st)
        report(f, "chunk key %" PRIu64 " LOD: %s", row->key, w->error.message);
    else if (!same_pyramid(&want, want_hist, want_n, &got, got_hist, got_n))
        report(f,
               "chunk key %" PRIu64 ": index pyramid disagrees with the data (segment %" PRIu64
               ", offset %" PRIu64 ")",
               row->key, row->lod_segment, row->lod_offset);
    free(stored);
    free(want_hist);
    free(got_hist);
    lod_pyramid_free(&want);
    lod_pyramid_free(&got);
}

/* Verify one row's payloads: checksum and a full decode; then its index summary. */
static void check_row(fsck_state *f, const store_row *row, uint8_t *payload, uint16_t *voxels)
{
    strata_world *w = f->w;
    if (row->codec == CODEC_UNIFORM) {
        check_index(f, row, NULL);
        return;
    }
    /* payload holds chunk_encode_bound bytes: a longer row is damage, not a read size. */
    strata_status st = row->payload_length > chunk_encode_bound(w->edge)
                           ? WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                                        "payload length %u exceeds the largest possible (%zu)",
                                        row->payload_length, chunk_encode_bound(w->edge))
                           : store_read_payload(&w->store, row->payload_segment,
                                                row->payload_offset, row->payload_length,
                                                row->payload_crc, row->key, payload, &w->error);
    if (!st)
        st = chunk_decode(payload, row->payload_length, row->codec, w->edge, w->scratch, voxels,
                          &w->error);
    if (st)
        report(f, "chunk key %" PRIu64 ": %s", row->key, w->error.message);
    else
        check_index(f, row, voxels);
}

/* Every row of every live segment in this rank's range, superseded ones too
 * (their damage is noted: the disk lost bytes, but no read uses them). */
static void check_segments(fsck_state *f)
{
    strata_world *w = f->w;
    uint8_t *payload = strata_malloc(chunk_encode_bound(w->edge));
    uint16_t *voxels = strata_malloc(w->chunk_voxels * sizeof *voxels);
    if (!payload || !voxels) {
        report(f, "cannot allocate fsck buffers");
        free(payload), free(voxels);
        return;
    }
    for (size_t i = 0; i < w->store.count; i++) {
        store single = w->store;
        single.segments = &w->store.segments[i];
        single.count = 1;
        store_row *rows = NULL;
        size_t n = 0;
        char name[64];
        manifest_segment_name(w->store.segments[i].epoch, name, sizeof name);
        if (store_load_rows(&single, w->split[w->rank], w->split[w->rank + 1], &rows, &n,
                            &w->error)) {
            report(f, "%s: %s", name, w->error.message);
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            const store_row *live = world_own_row(w, rows[j].key);
            f->superseded = !live || live->home != w->store.segments[i].epoch;
            check_row(f, &rows[j], payload, voxels);
        }
        f->superseded = 0;
        free(rows);
    }
    free(payload);
    free(voxels);
}

static void check_manifest_on_disk(fsck_state *f)
{
    strata_world *w = f->w;
    manifest m;
    if (manifest_read(w->dir, &m, &w->error)) {
        report(f, "%s", w->error.message);
        return;
    }
    if (m.epoch != w->committed.epoch)
        report(f, "MANIFEST changed during fsck (epoch %" PRIu64 " -> %" PRIu64 ")",
               w->committed.epoch, m.epoch);
    for (size_t i = 0; i < m.segment_count; i++) {
        char name[64], path[STRATA_PATH_MAX];
        uint64_t size;
        manifest_segment_name(m.segments[i].epoch, name, sizeof name);
        if (path_join(path, sizeof path, w->dir, name, &w->error) ||
            file_size(path, &size, &w->error))
            report(f, "%s", w->error.message);
    }
    manifest_free(&m);
}

strata_status strata_fsck(strata_world *w, strata_problem_fn fn, void *ctx, uint64_t *problems)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    /* Agreed before the checks: a NULL out on one rank fails every rank. */
    strata_status st =
        world_agree(w, problems ? STRATA_OK : world_null_argument(w, __func__, "problems"));
    if (st)
        return st;
    fsck_state f = {w, fn, ctx, 0, 0};
    if (w->rank == 0)
        check_manifest_on_disk(&f);
    check_segments(&f);
    index_begin_write(w); /* forget histograms the checks kept */
    uint64_t total = 0;
    st = error_mpi(&w->error, MPI_Allreduce(&f.problems, &total, 1, MPI_UINT64_T, MPI_SUM, w->comm),
                   "summing fsck problems");
    *problems = total;
    return world_agree(w, st);
}

/* ---- compaction ----------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    uint64_t length, capacity;
} byte_buffer;

static strata_status copy_payload(strata_world *w, byte_buffer *b, uint64_t segment,
                                  uint64_t *offset, uint32_t length, uint32_t crc, uint64_t key)
{
    if (b->length + length > b->capacity) {
        uint64_t capacity = (b->length + length) * 2 + 4096;
        uint8_t *grown = strata_realloc(b->data, capacity);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " compacted bytes",
                              capacity);
        b->data = grown;
        b->capacity = capacity;
    }
    strata_status st = store_read_payload(&w->store, segment, *offset, length, crc, key,
                                          b->data + b->length, &w->error);
    if (st)
        return st;
    *offset = b->length;
    b->length += length;
    return STRATA_OK;
}

/* This rank's live rows, re-pointed at a fresh payload buffer; air rows dropped
 * (with no older segment left, they shadow nothing). */
static strata_status gather_live(strata_world *w, uint64_t epoch, store_row **out, size_t *n,
                                 byte_buffer *b)
{
    store_row *rows = strata_malloc((w->row_count + 1) * sizeof *rows);
    if (!rows)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate compacted rows");
    size_t kept = 0;
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < w->row_count && !st; i++) {
        store_row r = w->rows[i];
        if (r.codec == CODEC_UNIFORM && r.value == 0 && !r.lod_length)
            continue;
        if (r.payload_length) {
            st = copy_payload(w, b, r.payload_segment, &r.payload_offset, r.payload_length,
                              r.payload_crc, r.key);
            r.payload_segment = epoch;
        }
        if (!st && r.lod_length) {
            st = copy_payload(w, b, r.lod_segment, &r.lod_offset, r.lod_length, r.lod_crc, r.key);
            r.lod_segment = epoch;
        }
        rows[kept++] = r;
    }
    if (st) {
        free(rows);
        return st;
    }
    *out = rows;
    *n = kept;
    return STRATA_OK;
}

/* The compacted segment alone; publishing retires every other one. */
static strata_status publish_compaction(strata_world *w, uint64_t epoch)
{
    manifest next;
    /* Agreed: a rank that cannot copy must not leave the others in the publish. */
    strata_status st = manifest_copy(&w->committed, &next, &w->error);
    if (!st)
        st = commit_next_writers(w, &next);
    st = world_agree(w, st);
    if (st) {
        manifest_free(&next); /* copied on this rank, or zeroed by the failed copy */
        return st;
    }
    /* The contents do not change: an index that was current stays current. */
    if (next.index_epoch == next.epoch)
        next.index_epoch = epoch;
    next.epoch = epoch;
    next.commits++;
    next.segments[0].epoch = epoch;
    next.segment_count = 1;
    return commit_publish(w, &next);
}

strata_status strata_compact(strata_world *w, strata_commit_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double start = MPI_Wtime();
    strata_status st = strata_commit(w, NULL);
    if (st)
        return st;
    uint64_t epoch = w->committed.epoch + 1;
    store_row *rows = NULL;
    size_t n = 0;
    byte_buffer b = {0};
    st = world_agree(w, gather_live(w, epoch, &rows, &n, &b));
    if (!st)
        st = store_write_segment(&w->store, epoch, w->size, rows, n, b.data, b.length, &w->error);
    if (!st && strata_fault_point("compact-written"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected after writing the compacted segment");
    st = world_agree(w, st);
    if (!st)
        st = publish_compaction(w, epoch);
    if (!st || st == STRATA_ERR_UNSYNCED) { /* published */
        free(w->rows);
        w->rows = rows;
        w->row_count = n;
        rows = NULL;
    }
    uint64_t local[2] = {n, b.length}, total[2] = {0, 0};
    strata_status summed =
        error_mpi(&w->error, MPI_Allreduce(local, total, 2, MPI_UINT64_T, MPI_SUM, w->comm),
                  "summing the compaction's sizes");
    st = st ? st : summed;
    free(rows);
    free(b.data);
    if (stats) {
        stats->epoch = w->committed.epoch;
        stats->chunks_written = total[0];
        stats->stored_bytes = total[1];
        stats->raw_bytes = total[0] * w->chunk_voxels * sizeof(uint16_t);
        stats->seconds = MPI_Wtime() - start;
    }
    return st;
}

/* ---- rebalancing ---------------------------------------------------------------- */

static int has_dirty(strata_world *w)
{
    return w->owned.dirty_bytes > 0 || w->staged_count > 0;
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
        weights[i] = by == STRATA_WEIGHT_COUNT ? 1.0
                     : by == STRATA_WEIGHT_BYTES
                         ? (double)w->rows[i].payload_length + sizeof(store_row)
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
