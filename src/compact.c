/* compact.c: strata_compact, the live rows and their payloads rewritten into one
 * segment and published as a commit (steps 4 to 6 of the protocol, commit.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "commit.h"
#include "fault.h"
#include "fsutil.h"
#include "index/octree.h"
#include "world.h"

/* zstd level of payloads and pyramids in a compacted segment: compaction
 * compresses every frame again at this level (the same content, so readers see
 * no difference) and keeps the new frame when it is smaller. Level 9 against
 * the commit's 3 (payloads) and -1 (pyramids): 10-14 % fewer payload bytes and
 * 16-19 % fewer pyramid bytes on the terrain, the Andes import and a raw
 * volume (docs/benchmarks.md, "What a world's bytes are"); levels 15 and 19
 * took 8-30x longer for 2-8 % fewer bytes. */
#define COMPACT_ZSTD_LEVEL 9
/* zstd level of the pyramid packs (docs/index.md, "Pyramid packs"): a pack is
 * small beside the payloads and read whole, so it is compressed harder. */
#define COMPACT_PACK_ZSTD_LEVEL 19

typedef struct {
    uint8_t *data;
    uint64_t length, capacity;
    codec_buffer content, frame; /* chunk_recompress scratch */
} byte_buffer;

static void byte_buffer_free(byte_buffer *b)
{
    free(b->data);
    free(b->content.data);
    free(b->frame.data);
}

/* Copy a payload (or pyramid) into the compacted buffer, compressed again at
 * COMPACT_ZSTD_LEVEL: *offset, *length and *crc describe the new copy. */
static strata_status copy_payload(strata_world *w, byte_buffer *b, uint64_t segment,
                                  uint64_t *offset, uint32_t *length, uint32_t *crc, uint64_t key)
{
    if (b->length + *length > b->capacity) {
        uint64_t capacity = (b->length + *length) * 2 + 4096;
        uint8_t *grown = strata_realloc(b->data, capacity);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " compacted bytes",
                              capacity);
        b->data = grown;
        b->capacity = capacity;
    }
    uint8_t *at = b->data + b->length;
    strata_status st =
        store_read_payload(&w->store, segment, *offset, *length, *crc, key, at, &w->error);
    if (!st)
        st = chunk_recompress(at, length, COMPACT_ZSTD_LEVEL, &b->content, &b->frame, &w->error);
    if (st)
        return st;
    *crc = checksum_update(0, at, *length);
    *offset = b->length;
    b->length += *length;
    return STRATA_OK;
}

/* Fold a row's delta chain: decode its base and chain, encode the chunk whole into
 * b, and make the row say so (its summaries and pyramid already describe these
 * voxels). */
static strata_status fold_chain(strata_world *w, byte_buffer *b, uint64_t epoch, store_row *r,
                                uint16_t *voxels)
{
    strata_status st = world_decode_row(w, r, voxels);
    chunk_encoding enc;
    if (!st)
        st = chunk_encode(voxels, w->edge, COMPACT_ZSTD_LEVEL, w->scratch, w->encode_buffer, &enc,
                          &w->error);
    if (st)
        return world_chunk_failed(w, "compaction (folding deltas)", r->key, st, &w->error);
    r->codec = (uint8_t)enc.codec;
    r->value = enc.uniform_value;
    r->payload_segment = r->payload_offset = 0;
    r->payload_length = r->payload_crc = 0;
    r->delta_segment = r->delta_offset = r->delta_first = 0;
    r->delta_length = r->delta_crc = r->delta_bytes = 0;
    r->delta_depth = 0;
    if (!enc.length)
        return STRATA_OK;
    if (b->length + enc.length > b->capacity) {
        uint64_t capacity = (b->length + enc.length) * 2 + 4096;
        uint8_t *grown = strata_realloc(b->data, capacity);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " compacted bytes",
                              capacity);
        b->data = grown, b->capacity = capacity;
    }
    memcpy(b->data + b->length, w->encode_buffer, enc.length);
    r->payload_segment = epoch;
    r->payload_offset = b->length;
    r->payload_length = (uint32_t)enc.length;
    r->payload_crc = checksum_update(0, w->encode_buffer, enc.length);
    b->length += enc.length;
    return STRATA_OK;
}

static strata_status buffer_append(strata_world *w, byte_buffer *b, const uint8_t *data,
                                   size_t length)
{
    if (b->length + length > b->capacity) {
        uint64_t capacity = (b->length + length) * 2 + 4096;
        uint8_t *grown = strata_realloc(b->data, capacity);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " compacted bytes",
                              capacity);
        b->data = grown, b->capacity = capacity;
    }
    memcpy(b->data + b->length, data, length);
    b->length += length;
    return STRATA_OK;
}

/* The pyramids of consecutive rows, cut to the stored levels, waiting to be
 * packed into one frame (docs/index.md, "Pyramid packs"). */
typedef struct {
    uint64_t keys[LOD_PACK_ENTRIES];
    uint8_t *entries[LOD_PACK_ENTRIES];
    size_t sizes[LOD_PACK_ENTRIES];
    size_t rows[LOD_PACK_ENTRIES]; /* index of each entry's row */
    size_t n, bytes;
    /* the last frame read (a pack is read once for all its rows) */
    uint8_t *content;
    size_t content_size;
    uint64_t segment, offset;
} pack_state;

static void pack_clear(pack_state *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->entries[i]);
    p->n = p->bytes = 0;
}

/* Write the pending pyramids as one pack frame and point their rows at it. */
static strata_status pack_flush(strata_world *w, pack_state *p, byte_buffer *b, store_row *rows,
                                uint64_t epoch)
{
    if (!p->n)
        return STRATA_OK;
    uint8_t *frame = NULL;
    size_t length = 0;
    strata_status st = lod_pack(p->keys, (const uint8_t *const *)p->entries, p->sizes, p->n,
                                COMPACT_PACK_ZSTD_LEVEL, &frame, &length, &w->error);
    uint64_t at = b->length;
    if (!st)
        st = buffer_append(w, b, frame, length);
    for (size_t i = 0; !st && i < p->n; i++) {
        store_row *r = &rows[p->rows[i]];
        r->lod_segment = epoch;
        r->lod_offset = at;
        r->lod_length = (uint32_t)length;
        r->lod_crc = checksum_update(0, frame, length);
    }
    free(frame);
    pack_clear(p);
    return st;
}

/* Add a row's pyramid (its entry, cut to the stored levels) to the pending pack. */
static strata_status pack_add(strata_world *w, pack_state *p, byte_buffer *b, store_row *rows,
                              size_t index, uint64_t epoch)
{
    const store_row *r = &rows[index];
    strata_status st = STRATA_OK;
    if (!p->content || p->segment != r->lod_segment || p->offset != r->lod_offset) {
        free(p->content);
        p->content = NULL;
        uint8_t *frame = strata_malloc(r->lod_length);
        st = frame ? store_read_payload(&w->store, r->lod_segment, r->lod_offset, r->lod_length,
                                        r->lod_crc, r->key, frame, &w->error)
                   : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot read a pyramid to pack");
        if (!st)
            st = lod_frame_content(frame, r->lod_length, w->edge, &p->content, &p->content_size,
                                   &w->error);
        free(frame);
        p->segment = r->lod_segment;
        p->offset = r->lod_offset;
    }
    const uint8_t *entry;
    size_t size;
    if (!st)
        st = lod_content_entry(p->content, p->content_size, r->key, &entry, &size, &w->error);
    if (!st)
        st = lod_entry_cut(entry, size, w->edge, lod_stored_lowest(w->edge), &p->entries[p->n],
                           &p->sizes[p->n], &w->error);
    if (st)
        return world_chunk_failed(w, "compaction (packing pyramids)", r->key, st, &w->error);
    p->keys[p->n] = r->key;
    p->rows[p->n] = index;
    p->bytes += p->sizes[p->n++];
    if (p->n == LOD_PACK_ENTRIES || p->bytes >= LOD_PACK_BYTES)
        return pack_flush(w, p, b, rows, epoch);
    return STRATA_OK;
}

/* This rank's live rows, re-pointed at a fresh payload buffer; air rows dropped
 * (with no older segment left, they shadow nothing); the pyramids of
 * consecutive rows packed together. */
static strata_status gather_live(strata_world *w, uint64_t epoch, store_row **out, size_t *n,
                                 byte_buffer *b)
{
    store_row *rows = strata_malloc((w->row_count + 1) * sizeof *rows);
    if (!rows)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate compacted rows");
    pack_state *pack = strata_calloc(1, sizeof *pack);
    if (!pack) {
        free(rows);
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate compacted rows");
    }
    size_t kept = 0;
    strata_status st = STRATA_OK;
    uint16_t *voxels = NULL;
    for (size_t i = 0; i < w->row_count && !st; i++) {
        store_row r = w->rows[i];
        if (r.delta_depth) { /* folded: the chunk whole, the chain gone */
            if (!voxels && !(voxels = strata_malloc(w->chunk_voxels * sizeof *voxels)))
                st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate a chunk to fold");
            else
                st = fold_chain(w, b, epoch, &r, voxels);
        } else if (r.payload_length) {
            st = copy_payload(w, b, r.payload_segment, &r.payload_offset, &r.payload_length,
                              &r.payload_crc, r.key);
            r.payload_segment = epoch;
        }
        if (st || (store_row_uniform(&r) && r.value == 0 && !r.lod_length))
            continue;
        rows[kept++] = r;
        if (r.lod_length)
            st = pack_add(w, pack, b, rows, kept - 1, epoch);
    }
    if (!st)
        st = pack_flush(w, pack, b, rows, epoch);
    pack_clear(pack);
    free(pack->content);
    free(pack);
    free(voxels);
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
    double start = MPI_Wtime();
    /* Pending updates first: the compacted segment holds the world as committed. */
    strata_status st = w ? strata_commit(w, NULL) : world_null_argument(NULL, __func__, "world");
    if (st)
        return st;
    uint64_t epoch = w->committed.epoch + 1;
    store_row *rows = NULL;
    size_t n = 0;
    byte_buffer b = {0};
    /* The PUBLISH lock for the whole compaction: the summaries a reindex
     * published are copied in (its index segments then retire with the
     * others), and no reindex publishes between the copy and the rename. A
     * reindex beside it waits for the compaction to end. Compaction beside a
     * writer stays refused: both need the writer lock. */
    st = world_publish_begin(w, NULL);
    if (!st)
        st = world_agree(w, gather_live(w, epoch, &rows, &n, &b));
    int segment_written = 0;
    if (!st) {
        st = store_write_segment(&w->store, epoch, w->size, rows, n, b.data, b.length, &w->error);
        segment_written = !st;
    }
    if (!st && strata_fault_point("compact-written"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected after writing the compacted segment");
    st = world_agree(w, st);
    if (!st)
        st = publish_compaction(w, epoch);
    world_publish_end(w);
    if (st && st != STRATA_ERR_UNSYNCED && segment_written)
        store_remove_unpublished(&w->store, epoch); /* not published: no orphan */
    if (!st || st == STRATA_ERR_UNSYNCED) {         /* published */
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
    byte_buffer_free(&b);
    if (stats) {
        stats->epoch = w->committed.epoch;
        stats->chunks_written = total[0];
        stats->stored_bytes = total[1];
        stats->raw_bytes = total[0] * w->chunk_voxels * sizeof(uint16_t);
        stats->seconds = MPI_Wtime() - start;
    }
    return st;
}
