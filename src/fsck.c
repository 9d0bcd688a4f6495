/* fsck.c: strata_fsck, every row, payload, pyramid and segment of the last commit
 * checked, and every problem reported (docs/reliability.md). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "fsutil.h"
#include "index/lod.h"
#include "index/octree.h"
#include "world.h"

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

/* Compare two decoded pyramids and histograms on the levels both hold (a
 * stored pyramid keeps the coarse levels only, an older one all); 1 when equal. */
static int same_pyramid(const lod_pyramid *a, const lod_count *ha, size_t na, const lod_pyramid *b,
                        const lod_count *hb, size_t nb)
{
    if (a->levels != b->levels || na != nb)
        return 0;
    const int low = a->lowest > b->lowest ? a->lowest : b->lowest;
    const size_t first = a->offset[low], cells = a->offset[a->levels + 1] - first;
    for (size_t i = 0; i < na; i++)
        if (ha[i].material != hb[i].material || ha[i].count != hb[i].count)
            return 0;
    return !memcmp(a->mode + first, b->mode + first, cells * sizeof *a->mode) &&
           !memcmp(a->count + first, b->count + first, cells * sizeof *a->count);
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
        st = lod_decode_key(stored, row->lod_length, w->edge, row->key, &got, &got_hist, &got_n,
                            &w->error);
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

/* Verify one row's payloads: checksum and a full decode, the delta chain read and
 * applied (each record's checksum, base, order); then its index summary. */
static void check_row(fsck_state *f, const store_row *row, uint8_t *payload, uint16_t *voxels)
{
    strata_world *w = f->w;
    if (store_row_uniform(row)) {
        check_index(f, row, NULL);
        return;
    }
    strata_status st = STRATA_OK;
    if (row->codec == CODEC_UNIFORM) { /* a uniform base under a delta chain */
        for (size_t i = 0; i < w->chunk_voxels; i++)
            voxels[i] = row->value;
    } else {
        /* payload holds chunk_encode_bound bytes: a longer row is damage, not a read size. */
        st = row->payload_length > chunk_encode_bound(w->edge)
                 ? WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                              "payload length %u exceeds the largest possible (%zu)",
                              row->payload_length, chunk_encode_bound(w->edge))
                 : store_read_payload(&w->store, row->payload_segment, row->payload_offset,
                                      row->payload_length, row->payload_crc, row->key, payload,
                                      &w->error);
        if (!st)
            st = chunk_decode(payload, row->payload_length, row->codec, w->edge, w->scratch, voxels,
                              &w->error);
    }
    if (!st && row->delta_depth)
        st = world_merge_chain(w, row, voxels);
    if (st)
        report(f, "chunk key %" PRIu64 ": %s", row->key, w->error.message);
    else
        check_index(f, row, voxels);
}

/* The rows of an index segment in this rank's range. One that serves (its
 * chunk's live row is at the epoch it was built from and took its summary) is
 * checked as the live row: data decoded, summary and pyramid recomputed and
 * compared (the exactness rule). One that does not serve (a later commit
 * rewrote its chunk, or a newer reindex) has its pyramid's checksum verified,
 * noted as superseded. */
static void check_index_segment(fsck_state *f, uint64_t id, uint8_t *payload, uint16_t *voxels)
{
    strata_world *w = f->w;
    char name[64];
    manifest_segment_name(id, name, sizeof name);
    store_row *rows = NULL;
    size_t n = 0;
    if (store_load_index_rows(&w->store, id, w->split[w->rank], w->split[w->rank + 1], &rows, &n,
                              &w->error)) {
        report(f, "%s: %s", name, w->error.message);
        return;
    }
    uint8_t *pyramid = NULL;
    for (size_t j = 0; j < n; j++) {
        const store_row *live = world_own_row(w, rows[j].key);
        int serves = live && live->epoch == rows[j].epoch && live->index_home == id;
        f->superseded = !serves;
        if (serves) {
            check_row(f, live, payload, voxels);
            continue;
        }
        if (!rows[j].lod_length)
            continue;
        uint8_t *grown = strata_realloc(pyramid, rows[j].lod_length);
        if (!grown) {
            report(f, "%s: cannot allocate a pyramid payload", name);
            break;
        }
        pyramid = grown;
        if (store_read_payload(&w->store, rows[j].lod_segment, rows[j].lod_offset,
                               rows[j].lod_length, rows[j].lod_crc, rows[j].key, pyramid,
                               &w->error))
            report(f, "%s: chunk key %" PRIu64 " pyramid: %s", name, rows[j].key, w->error.message);
    }
    f->superseded = 0;
    free(pyramid);
    free(rows);
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
        if (store_is_index_segment(w->store.segments[i].epoch)) {
            check_index_segment(f, w->store.segments[i].epoch, payload, voxels);
            continue;
        }
        store single = w->store;
        single.segments = &w->store.segments[i];
        single.count = 1;
        store_row *rows = NULL;
        size_t n = 0;
        char name[64];
        manifest_segment_name(w->store.segments[i].epoch, name, sizeof name);
        strata_status loaded = store_load_rows(&single, w->split[w->rank], w->split[w->rank + 1],
                                               &rows, &n, &w->error);
        store_view_end(&w->store, &single);
        if (loaded) {
            report(f, "%s: %s", name, w->error.message);
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            const store_row *live = world_own_row(w, rows[j].key);
            f->superseded = !live || live->home != w->store.segments[i].epoch;
            if (!f->superseded && live->index_home) {
                /* The data serves; the summary comes from an index segment
                 * (checked there): this row's own summary is superseded. */
                store_row data = rows[j];
                data.flags |= STORE_ROW_INDEX_STALE;
                check_row(f, &data, payload, voxels);
                f->superseded = 1;
                check_index(f, &rows[j], rows[j].codec == CODEC_UNIFORM ? NULL : voxels);
                continue;
            }
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
    if (w->rank == 0)
        for (const char *line = w->unopened; line && *line;) {
            const char *end = strchr(line, '\n');
            report(&f, "%.*s", (int)(end - line), line);
            line = end + 1;
        }
    check_segments(&f);
    index_begin_write(w); /* forget histograms the checks kept */
    uint64_t total = 0;
    st = error_mpi(&w->error, MPI_Allreduce(&f.problems, &total, 1, MPI_UINT64_T, MPI_SUM, w->comm),
                   "summing fsck problems");
    *problems = total;
    return world_agree(w, st);
}
