/* delta.c: delta records: encoding, decoding, and reading a chunk's chain. */
#include "delta.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "codec.h"

/* Bytes of a voxel index of an edge^3 chunk (2 up to edge 32, 3 above). */
static int index_bytes(int edge)
{
    size_t n = (size_t)edge * edge * edge;
    return n <= ((size_t)1 << 16) ? 2 : 3;
}

size_t delta_record_bound(int edge, size_t count)
{
    size_t body = count * (size_t)(index_bytes(edge) + 2);
    return DELTA_HEADER_BYTES + ZSTD_COMPRESSBOUND(body);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

size_t delta_log_normalize(uint64_t *log, size_t n)
{
    if (n > 1)
        qsort(log, n, sizeof *log, compare_u64);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        /* the last entry of a voxel (highest sequence number) wins */
        if (i + 1 < n && log[i + 1] >> 40 == log[i] >> 40)
            continue;
        log[kept++] = (log[i] >> 40) << 40 | (log[i] & 0xffff);
    }
    return kept;
}

static void put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

strata_status delta_encode(const delta_header *h, const uint64_t *changes, size_t n, int edge,
                           int level, uint8_t *scratch, uint8_t *out, size_t capacity,
                           size_t *length, strata_error *err)
{
    const int ib = index_bytes(edge);
    const size_t width = (size_t)ib + 2;
    if (capacity < delta_record_bound(edge, n))
        return error_set(err, STRATA_ERR_ARG, "delta encode: %zu bytes cannot hold %zu changes",
                         capacity, n);
    /* Body: index first differences as ib byte planes, then materials as 2 planes. */
    uint32_t last = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t voxel = (uint32_t)(changes[i] >> 40);
        uint32_t gap = i ? voxel - last : voxel;
        last = voxel;
        for (int b = 0; b < ib; b++)
            scratch[(size_t)b * n + i] = (uint8_t)(gap >> (8 * b));
        uint16_t m = (uint16_t)changes[i];
        scratch[(size_t)ib * n + i] = (uint8_t)m;
        scratch[(size_t)(ib + 1) * n + i] = (uint8_t)(m >> 8);
    }
    uint8_t *p = out;
    memcpy(p, DELTA_MAGIC, 4);
    p[4] = DELTA_VERSION;
    p[5] = 0;
    put(p + 6, h->depth, 2);
    put(p + 8, h->key, 8);
    put(p + 16, h->epoch, 8);
    put(p + 24, h->base_segment, 8);
    put(p + 32, h->base_offset, 8);
    put(p + 40, h->base_tag, 4);
    put(p + 44, n, 4);
    put(p + 48, h->prev_segment, 8);
    put(p + 56, h->prev_offset, 8);
    put(p + 64, h->prev_length, 4);
    put(p + 68, h->prev_crc, 4);
    size_t frame = 0;
    strata_status st = codec_compress_frame(scratch, n * width, level, out + DELTA_HEADER_BYTES,
                                            capacity - DELTA_HEADER_BYTES, &frame, err);
    if (st)
        return st;
    *length = DELTA_HEADER_BYTES + frame;
    return STRATA_OK;
}

strata_status delta_parse(const uint8_t *record, size_t length, int edge, delta_header *h,
                          strata_error *err)
{
    if (length < DELTA_HEADER_BYTES || memcmp(record, DELTA_MAGIC, 4) != 0)
        return error_set(err, STRATA_ERR_CORRUPT, "not a delta record (%zu bytes, no %s header)",
                         length, DELTA_MAGIC);
    if (record[4] != DELTA_VERSION)
        return error_set(err, STRATA_ERR_VERSION, "delta record version %u is not %d", record[4],
                         DELTA_VERSION);
    h->depth = (uint16_t)get(record + 6, 2);
    h->key = get(record + 8, 8);
    h->epoch = get(record + 16, 8);
    h->base_segment = get(record + 24, 8);
    h->base_offset = get(record + 32, 8);
    h->base_tag = (uint32_t)get(record + 40, 4);
    h->count = (uint32_t)get(record + 44, 4);
    h->prev_segment = get(record + 48, 8);
    h->prev_offset = get(record + 56, 8);
    h->prev_length = (uint32_t)get(record + 64, 4);
    h->prev_crc = (uint32_t)get(record + 68, 4);
    size_t voxels = (size_t)edge * edge * edge;
    /* a reader takes twice what a writer logs: the bound of what it decodes */
    if (h->count == 0 || h->count > 2 * delta_log_max(voxels))
        return error_set(err, STRATA_ERR_CORRUPT, "delta record of %u changes (at most %zu)",
                         h->count, 2 * delta_log_max(voxels));
    if (h->depth == 0 || h->depth > DELTA_DEPTH_MAX)
        return error_set(err, STRATA_ERR_CORRUPT, "delta record at depth %u (1 to %d)", h->depth,
                         DELTA_DEPTH_MAX);
    return STRATA_OK;
}

strata_status delta_apply(const uint8_t *record, size_t length, int edge, uint8_t *scratch,
                          uint16_t *voxels, strata_error *err)
{
    delta_header h;
    strata_status st = delta_parse(record, length, edge, &h, err);
    if (st)
        return st;
    const int ib = index_bytes(edge);
    const size_t n = h.count, body = n * ((size_t)ib + 2), limit = (size_t)edge * edge * edge;
    size_t got = 0;
    st = codec_decompress_frame(record + DELTA_HEADER_BYTES, length - DELTA_HEADER_BYTES, body,
                                body, scratch, &got, err);
    if (st)
        return st;
    uint64_t voxel = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t gap = 0;
        for (int b = 0; b < ib; b++)
            gap |= (uint64_t)scratch[(size_t)b * n + i] << (8 * b);
        if (i && gap == 0)
            return error_set(err, STRATA_ERR_CORRUPT, "delta record: voxel %" PRIu64 " twice",
                             voxel);
        voxel += gap;
        if (voxel >= limit)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "delta record: voxel index %" PRIu64 " outside the chunk", voxel);
        voxels[voxel] = (uint16_t)(scratch[(size_t)ib * n + i] |
                                   (uint16_t)scratch[(size_t)(ib + 1) * n + i] << 8);
    }
    return STRATA_OK;
}

strata_status delta_chain_read(store *s, const store_row *row, int edge, byte_buffer *out,
                               strata_error *err)
{
    uint64_t segment = row->delta_segment, offset = row->delta_offset, total = 0;
    uint32_t length = row->delta_length, crc = row->delta_crc;
    uint64_t newer_epoch = UINT64_MAX;
    if (row->delta_depth > DELTA_DEPTH_MAX)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": delta chain of %u records (at most %d)", row->key,
                         row->delta_depth, DELTA_DEPTH_MAX);
    for (int depth = row->delta_depth; depth >= 1; depth--) {
        const size_t voxels = (size_t)edge * edge * edge;
        if (segment == 0 || length > delta_record_bound(edge, 2 * delta_log_max(voxels)))
            return error_set(err, STRATA_ERR_CORRUPT,
                             "chunk key %" PRIu64 ": delta record %d of %u is missing "
                             "(segment %" PRIu64 ", %u bytes)",
                             row->key, depth, row->delta_depth, segment, length);
        uint64_t at = out->bytes;
        if (!byte_buffer_append(out, NULL, length))
            return error_set(err, STRATA_ERR_NOMEM, "cannot hold a delta chain");
        strata_status st =
            store_read_payload(s, segment, offset, length, crc, row->key, out->data + at, err);
        if (st)
            return error_set(err, st, "delta record %d of %u: %s", depth, row->delta_depth,
                             err->message);
        delta_header h;
        st = delta_parse(out->data + at, length, edge, &h, err);
        if (st)
            return error_set(err, st,
                             "chunk key %" PRIu64 ": delta record %d (segment %" PRIu64
                             ", offset %" PRIu64 "): %s",
                             row->key, depth, segment, offset, err->message);
        const char *wrong = h.key != row->key        ? "names another chunk"
                            : h.depth != depth       ? "is out of order (its depth differs)"
                            : h.epoch != segment     ? "is not in the segment of its commit"
                            : h.epoch >= newer_epoch ? "is out of order (not older than the "
                                                       "record after it)"
                            : h.base_segment != row->payload_segment ||
                                    h.base_offset != row->payload_offset ||
                                    h.base_tag != delta_base_tag(row)
                                ? "has a base that is missing (it names another base image)"
                            : (depth == 1) != (h.prev_segment == 0)
                                ? "is out of order (its link to the previous record is wrong)"
                                : NULL;
        if (wrong)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "chunk key %" PRIu64 ": delta record %d of %u (segment %" PRIu64
                             ", offset %" PRIu64 ") %s",
                             row->key, depth, row->delta_depth, segment, offset, wrong);
        total += length;
        newer_epoch = h.epoch;
        if (depth == 1 && segment != row->delta_first)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "chunk key %" PRIu64 ": oldest delta record in segment %" PRIu64
                             ", the row says %" PRIu64,
                             row->key, segment, row->delta_first);
        segment = h.prev_segment, offset = h.prev_offset;
        length = h.prev_length, crc = h.prev_crc;
    }
    if (total != row->delta_bytes)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": delta chain of %" PRIu64 " bytes, the row says %u",
                         row->key, total, row->delta_bytes);
    return STRATA_OK;
}

strata_status delta_chain_apply(const uint8_t *chain, uint64_t bytes, int depth, int edge,
                                uint8_t *scratch, uint16_t *voxels, strata_error *err)
{
    /* Records are newest first: find their bounds, then apply from the last. */
    uint64_t start[DELTA_DEPTH_MAX + 1];
    uint64_t at = 0;
    if (depth > DELTA_DEPTH_MAX)
        return error_set(err, STRATA_ERR_CORRUPT, "delta chain of %d records", depth);
    for (int i = 0; i < depth; i++) {
        if (bytes - at < DELTA_HEADER_BYTES)
            return error_set(err, STRATA_ERR_CORRUPT, "delta chain truncated at record %d of %d",
                             depth - i, depth); /* records are numbered by depth, oldest 1 */
        start[i] = at;
        size_t frame = ZSTD_findFrameCompressedSize(chain + at + DELTA_HEADER_BYTES,
                                                    bytes - at - DELTA_HEADER_BYTES);
        if (ZSTD_isError(frame))
            return error_set(err, STRATA_ERR_CORRUPT, "delta record %d of %d: no zstd frame",
                             depth - i, depth);
        at += DELTA_HEADER_BYTES + frame;
    }
    start[depth] = at;
    for (int i = depth; i-- > 0;) {
        strata_status st =
            delta_apply(chain + start[i], start[i + 1] - start[i], edge, scratch, voxels, err);
        if (st)
            return st;
    }
    return STRATA_OK;
}
