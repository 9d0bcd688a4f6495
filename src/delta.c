/* delta.c: delta records: encoding, decoding, and reading a chunk's chain. */
#include "delta.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "alloc.h"
#include "codec.h"

/* Bytes of a voxel index of an edge^3 chunk (2 up to edge 32, 3 above). */
static int index_bytes(int edge)
{
    size_t n = (size_t)edge * edge * edge;
    return n <= ((size_t)1 << 16) ? 2 : 3;
}

/* Bits of a voxel index (3 log2 edge). */
static int voxel_bits(int edge)
{
    int b = 0;
    while ((1 << b) < edge)
        b++;
    return 3 * b;
}

/* Bytes of a version-2 body before any zstd: flags, k, material mode, palette size
 * (varint), the bit stream (docs/format.md, "Delta records"). */
static size_t raw_bound(int edge, size_t count)
{
    const size_t vb = (size_t)voxel_bits(edge);
    size_t bits = vb + (count ? count - 1 : 0) * (1 + vb) + 32 * count;
    return 3 + 5 + (bits + 7) / 8;
}

size_t delta_record_bound(int edge, size_t count)
{
    size_t raw = raw_bound(edge, count);
    return DELTA_HEADER_BYTES + 1 + (raw > ZSTD_COMPRESSBOUND(raw) ? raw : ZSTD_COMPRESSBOUND(raw));
}

/* Bytes before the dense normalization's bitmap in tmp: the materials, 8-aligned. */
static size_t dense_bitmap_at(size_t voxels)
{
    return (voxels * sizeof(uint16_t) + 7) & ~(size_t)7;
}

/* Each voxel's last change by one pass over the log into a material per voxel and a bit
 * per voxel, then the set bits in voxel order: no sort. */
static size_t normalize_dense(uint64_t *log, size_t n, size_t voxels, void *tmp)
{
    uint16_t *material = tmp;
    uint64_t *seen = (uint64_t *)((uint8_t *)tmp + dense_bitmap_at(voxels));
    const size_t words = (voxels + 63) / 64;
    memset(seen, 0, words * sizeof *seen);
    for (size_t i = 0; i < n; i++) {
        /* in the order made: the last change of a voxel is the one left */
        const uint64_t v = log[i] >> 40;
        seen[v >> 6] |= (uint64_t)1 << (v & 63);
        material[v] = (uint16_t)log[i];
    }
    size_t kept = 0;
    for (size_t w = 0; w < words; w++)
        for (uint64_t bits = seen[w]; bits; bits &= bits - 1) {
            const uint64_t v = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits);
            log[kept++] = v << 40 | material[v];
        }
    return kept;
}

size_t delta_normalize_dense_bytes(size_t voxels)
{
    return dense_bitmap_at(voxels) + (voxels + 63) / 64 * sizeof(uint64_t);
}

size_t delta_log_normalize(uint64_t *log, size_t n, size_t voxels, void *tmp, size_t tmp_bytes)
{
    /* Dense when the bitmap's scan (voxels / 64 words) costs less than sorting n
     * entries, and tmp holds a material per voxel and the bitmap. */
    if (n >= voxels / 512 && tmp_bytes >= delta_normalize_dense_bytes(voxels))
        return normalize_dense(log, n, voxels, tmp);
    /* Stable LSD radix sort by voxel (the log is in the order the changes were made,
     * so each voxel's entries stay in that order), 8 bits a pass, then keep each
     * voxel's last entry. */
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++)
        top |= log[i] >> 40;
    uint64_t *from = log, *to = tmp;
    for (int shift = 40; n > 1 && top >> (shift - 40); shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((from[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            to[count[(from[i] >> shift) & 0xff]++] = from[i];
        uint64_t *swap = from;
        from = to, to = swap;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        /* the last entry of a voxel (the change made last) wins */
        if (i + 1 < n && from[i + 1] >> 40 == from[i] >> 40)
            continue;
        log[kept++] = (from[i] >> 40) << 40 | (from[i] & 0xffff);
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

/* A little-endian bit stream: bit i of the stream is bit i % 8 of byte i / 8. */
typedef struct {
    uint8_t *p;
    uint64_t acc;
    int bits;
} bit_writer;

static inline void bits_put(bit_writer *b, uint64_t v, int n) /* n <= 32 */
{
    b->acc |= v << b->bits;
    b->bits += n;
    if (b->bits >= 32) { /* four bytes at a time */
        for (int i = 0; i < 4; i++)
            b->p[i] = (uint8_t)(b->acc >> (8 * i));
        b->p += 4;
        b->acc >>= 32;
        b->bits -= 32;
    }
}

static uint8_t *bits_end(bit_writer *b)
{
    for (; b->bits > 0; b->bits -= 8, b->acc >>= 8)
        *b->p++ = (uint8_t)b->acc;
    b->bits = 0;
    return b->p;
}

typedef struct {
    const uint8_t *p, *end;
    uint64_t acc;
    int bits;
} bit_reader;

/* Fill the reader to at least 57 bits, or to the stream's end: eight bytes at a time
 * (the bytes the word holds past 63 bits are read again next time) where eight remain
 * on a little-endian machine, else byte by byte. */
static inline void bits_refill(bit_reader *b)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (b->end - b->p >= 8) {
        uint64_t word;
        memcpy(&word, b->p, 8);
        b->acc |= word << b->bits;
        b->p += (63 - b->bits) >> 3;
        b->bits |= 56;
        return;
    }
#endif
    while (b->bits <= 56 && b->p != b->end) {
        b->acc |= (uint64_t)*b->p++ << b->bits;
        b->bits += 8;
    }
}

/* n <= 32 bits; 0 when the stream ends first */
static inline int bits_get(bit_reader *b, int n, uint32_t *v)
{
    if (b->bits < n) {
        bits_refill(b);
        if (b->bits < n)
            return 0;
    }
    *v = (uint32_t)(b->acc & (((uint64_t)1 << n) - 1));
    b->acc >>= n;
    b->bits -= n;
    return 1;
}

/* A Rice quotient: the 1 bits before the next 0, consumed with it, counted a word at a
 * time. 1 with *q, 0 when the stream ends first, -1 past `most` ones (as soon as the
 * stream holds them, as a bit-by-bit read would find). */
static inline int bits_unary(bit_reader *b, uint64_t most, uint64_t *q)
{
    uint64_t n = 0;
    for (;;) {
        bits_refill(b);
        if (!b->bits)
            return 0;
        const uint64_t zeros =
            ~b->acc & (b->bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << b->bits) - 1);
        if (zeros) {
            const int t = __builtin_ctzll(zeros);
            n += (uint64_t)t;
            b->acc = t + 1 < 64 ? b->acc >> (t + 1) : 0;
            b->bits -= t + 1;
            *q = n;
            return n > most ? -1 : 1;
        }
        n += (uint64_t)b->bits;
        b->acc = 0;
        b->bits = 0;
        if (n > most)
            return -1;
    }
}

/* The Rice parameter for the gaps (each gap - 1 >= 0 is coded): the cheapest of three
 * around log2 of the mean gap (costs summed in one pass), or vb when none is cheaper
 * than vb bits per gap (what raw_bound assumes); *bits: its cost. */
static int rice_parameter(const uint64_t *changes, size_t n, int vb, uint64_t *bits)
{
    uint64_t span = n > 1 ? (changes[n - 1] >> 40) - (changes[0] >> 40) : 0;
    int k0 = 0;
    while (n > 1 && k0 < vb && ((uint64_t)2 << k0) * (n - 1) <= span)
        k0++;
    int lo = k0 > 0 ? k0 - 1 : 0;
    uint64_t sum[3] = {0, 0, 0};
    for (size_t i = 1; i < n; i++) {
        uint64_t q = ((changes[i] >> 40) - (changes[i - 1] >> 40) - 1) >> lo;
        sum[0] += q, sum[1] += q >> 1, sum[2] += q >> 2;
    }
    int k = vb;
    *bits = (uint64_t)(n ? n - 1 : 0) * (uint64_t)(1 + vb);
    for (int c = 0; c < 3 && lo + c < vb; c++) {
        uint64_t cost = (uint64_t)(n - 1) * (uint64_t)(1 + lo + c) + sum[c];
        if (cost < *bits)
            *bits = cost, k = lo + c;
    }
    return k;
}

size_t delta_size_floor(const uint64_t *changes, size_t n, int edge, int *rice)
{
    uint64_t bits;
    int vb = voxel_bits(edge);
    int k = rice_parameter(changes, n, vb, &bits);
    if (rice)
        *rice = k;
    /* header, flags, k, material mode, the first index and the gaps; materials >= 0 */
    return DELTA_HEADER_BYTES + 3 + (size_t)((bits + (uint64_t)vb + 7) / 8);
}

/* Slot of material m in an open-addressing table of mask + 1 slots: keys[slot] the
 * material, index[slot] its palette index + 1 (0: empty). */
static uint32_t palette_slot(const uint16_t *keys, const uint32_t *index, uint32_t mask, uint16_t m)
{
    uint32_t i = ((uint32_t)m * 0x9E3779B1u) >> 16 & mask;
    while (index[i] && keys[i] != m)
        i = (i + 1) & mask;
    return i;
}

/* The record's fixed header (count: n). */
static void write_header(uint8_t *p, const delta_header *h, size_t n)
{
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
}

/* The voxel indices: the first in vb bits, then each gap - 1 Rice-coded with parameter k. */
static inline __attribute__((always_inline)) void
write_indices(bit_writer *bw, const uint64_t *changes, size_t n, int vb, int k)
{
    bits_put(bw, changes[0] >> 40, vb);
    const uint64_t low = ((uint64_t)1 << k) - 1;
    for (size_t i = 1; i < n; i++) {
        uint64_t g = (changes[i] >> 40) - (changes[i - 1] >> 40) - 1;
        uint64_t quotient = g >> k;
        if (quotient + 1 + (uint64_t)k <= 32) {
            /* the usual gap in one put: quotient ones, the stop bit 0, k low bits */
            bits_put(bw, (((uint64_t)1 << quotient) - 1) | (g & low) << (quotient + 1),
                     (int)quotient + 1 + k);
            continue;
        }
        for (; quotient; quotient -= quotient > 24 ? 24 : quotient)
            bits_put(bw, ((uint64_t)1 << (quotient > 24 ? 24 : quotient)) - 1,
                     quotient > 24 ? 24 : (int)quotient);
        bits_put(bw, 0, 1);
        if (k)
            bits_put(bw, g & low, k);
    }
}

/* Large records may compress further (runs of one material, clustered indices): the
 * body of raw bytes replaced by one zstd frame when that is smaller. *raw: the body's
 * bytes after. */
static strata_status compress_body(uint8_t *out, size_t *raw, size_t n, int edge, int level,
                                   uint8_t *scratch, strata_error *err)
{
    uint8_t *body = out + DELTA_HEADER_BYTES + 1;
    out[DELTA_HEADER_BYTES] = 0; /* the body as is */
    if (n < DELTA_ZSTD_MIN)
        return STRATA_OK;
    size_t frame = 0;
    strata_status st =
        codec_compress_frame(body, *raw, level, scratch, chunk_scratch_size(edge), &frame, err);
    if (st)
        return st;
    if (frame < *raw) {
        memcpy(body, scratch, frame);
        *raw = frame;
        out[DELTA_HEADER_BYTES] = 1; /* one zstd frame of the body */
    }
    return STRATA_OK;
}

strata_status delta_encode(const delta_header *h, const uint64_t *changes, size_t n, int edge,
                           int rice, int level, uint8_t *scratch, uint8_t *out, size_t capacity,
                           size_t *length, strata_error *err)
{
    const int vb = voxel_bits(edge);
    if (capacity < delta_record_bound(edge, n) || n == 0)
        return error_set(err, STRATA_ERR_ARG, "delta encode: %zu bytes cannot hold %zu changes",
                         capacity, n);
    write_header(out, h, n);
    uint64_t best;
    int k = rice >= 0 && rice <= vb ? rice : rice_parameter(changes, n, vb, &best);
    /* Materials: a palette (ids in order of first appearance, then an index per change)
     * or each id as is, in w bits (the widest id's), whichever is smaller.
     * scratch: slot indices (4 bytes), slot keys (2 bytes), the palette (2 bytes each),
     * each change's palette index (2 bytes). */
    uint32_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    uint32_t *index = (uint32_t *)scratch, mask = slots - 1;
    uint16_t *keys = (uint16_t *)(scratch + (size_t)slots * 4);
    uint16_t *ids = (uint16_t *)(scratch + (size_t)slots * 6);
    uint16_t *which = ids + n;
    uint32_t palette = 0;
    uint16_t widest = 0;
    /* ids below 256 (most worlds' every id) by a direct table, the rest hashed (the
     * table cleared at the first such id) */
    uint32_t small[256] = {0};
    int hashed = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t m = (uint16_t)changes[i];
        uint32_t *at;
        if (m < 256) {
            at = &small[m];
        } else {
            if (!hashed)
                memset(index, 0, (size_t)slots * sizeof *index), hashed = 1;
            uint32_t slot = palette_slot(keys, index, mask, m);
            keys[slot] = m;
            at = &index[slot];
        }
        if (!*at) {
            ids[palette] = m;
            *at = ++palette;
        }
        which[i] = (uint16_t)(*at - 1);
        widest |= m;
    }
    int wb = 1, mb = 0;
    while (wb < 16 && (widest >> wb))
        wb++;
    while ((1u << mb) < palette)
        mb++;
    int use_palette =
        (uint64_t)palette * (uint64_t)wb + (uint64_t)n * (uint64_t)mb < (uint64_t)n * (uint64_t)wb;
    uint8_t *body = out + DELTA_HEADER_BYTES + 1, *q = body;
    *q++ = (uint8_t)k;
    *q++ = (uint8_t)(wb | (use_palette ? 0x80 : 0));
    for (uint32_t v = palette; use_palette; v >>= 7) { /* varint */
        *q++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    bit_writer bw = {q, 0, 0};
    write_indices(&bw, changes, n, vb, k);
    if (use_palette) {
        for (uint32_t i = 0; i < palette; i++)
            bits_put(&bw, ids[i], wb);
        for (size_t i = 0; mb && i < n; i++)
            bits_put(&bw, which[i], mb);
    } else {
        for (size_t i = 0; i < n; i++)
            bits_put(&bw, (uint16_t)changes[i], wb);
    }
    size_t raw = (size_t)(bits_end(&bw) - body);
    strata_status st = compress_body(out, &raw, n, edge, level, scratch, err);
    if (st)
        return st;
    *length = DELTA_HEADER_BYTES + 1 + raw;
    return STRATA_OK;
}

strata_status delta_parse(const uint8_t *record, size_t length, int edge, delta_header *h,
                          strata_error *err)
{
    if (length < DELTA_HEADER_BYTES || memcmp(record, DELTA_MAGIC, 4) != 0)
        return error_set(err, STRATA_ERR_CORRUPT, "not a delta record (%zu bytes, no %s header)",
                         length, DELTA_MAGIC);
    if (record[4] != 1 && record[4] != DELTA_VERSION)
        return error_set(err, STRATA_ERR_VERSION, "delta record version %u is not 1 or %d",
                         record[4], DELTA_VERSION);
    h->version = record[4];
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

/* A version-1 body: one zstd frame of index first differences and materials in byte
 * planes. */
static strata_status apply_v1(const uint8_t *record, size_t length, const delta_header *h, int edge,
                              uint8_t *scratch, uint16_t *voxels, strata_error *err)
{
    const int ib = index_bytes(edge);
    const size_t n = h->count, body = n * ((size_t)ib + 2), limit = (size_t)edge * edge * edge;
    size_t got = 0;
    strata_status st = codec_decompress_frame(
        record + DELTA_HEADER_BYTES, length - DELTA_HEADER_BYTES, body, body, scratch, &got, err);
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

/* After the indices at[]: the palette (`palette` ids, 0: none) and the n materials,
 * into voxels (at at[i]) or when voxels is NULL into materials[]; the stream must end
 * there, padded with zero bits. */
static inline __attribute__((always_inline)) strata_status
read_materials(bit_reader *b, const uint8_t *end, size_t n, int wb, uint32_t palette, uint16_t *ids,
               const uint32_t *at, uint16_t *voxels, uint16_t *materials, strata_error *err)
{
    const int use_palette = palette > 0;
    int mb = 0;
    while ((1u << mb) < palette)
        mb++;
    for (uint32_t i = 0; i < palette; i++) {
        uint32_t id;
        if (!bits_get(b, wb, &id))
            return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated in its palette");
        ids[i] = (uint16_t)id;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t m = 0;
        if ((use_palette ? mb : wb) && !bits_get(b, use_palette ? mb : wb, &m))
            return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated at material %zu", i);
        if (use_palette && m >= palette)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "delta record: material %u of a palette of %u", m, palette);
        const uint16_t value = use_palette ? ids[m] : (uint16_t)m;
        if (voxels)
            voxels[at[i]] = value;
        else
            materials[i] = value;
    }
    /* the stream ends at its last byte, padded with zero bits (bits_unary reads ahead:
     * a whole byte left in the reader is a byte after the changes) */
    if (b->p != end || b->bits >= 8 || (b->bits && (b->acc & (((uint64_t)1 << b->bits) - 1))))
        return error_set(err, STRATA_ERR_CORRUPT, "delta record: %zu bytes after its changes",
                         (size_t)(end - b->p) + (size_t)b->bits / 8);
    return STRATA_OK;
}

/* A version-2 record's changes (header h parsed): into voxels, or when voxels is NULL
 * the n new materials into materials[] (the indices are scratch's first 4 n bytes). */
static strata_status decode_v2(const uint8_t *record, size_t length, const delta_header *hp,
                               int edge, uint8_t *scratch, uint16_t *voxels, uint16_t *materials,
                               strata_error *err)
{
    const delta_header h = *hp;
    strata_status st;
    const int vb = voxel_bits(edge);
    const size_t n = h.count, limit = (size_t)edge * edge * edge;
    if (length < DELTA_HEADER_BYTES + 1)
        return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated (%zu bytes)", length);
    const uint8_t *body = record + DELTA_HEADER_BYTES + 1, *end = record + length;
    uint8_t flags = record[DELTA_HEADER_BYTES];
    if (flags > 1)
        return error_set(err, STRATA_ERR_CORRUPT, "delta record: unknown body encoding %u", flags);
    if (flags == 1) { /* one zstd frame of the body; the scratch's upper half receives it */
        size_t got = 0, half = chunk_scratch_size(edge) / 2;
        st = codec_decompress_frame(body, (size_t)(end - body), 1,
                                    raw_bound(edge, n) < half ? raw_bound(edge, n) : half,
                                    scratch + half, &got, err);
        if (st)
            return st;
        body = scratch + half, end = body + got;
    }
    const uint8_t *q = body;
    if (end - q < 2)
        return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated in its body");
    int k = *q++, wb = *q & 0x1f, use_palette = *q & 0x80;
    if (*q++ & 0x60 || wb < 1 || wb > 16 || k > vb)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "delta record: bad body (Rice parameter %d, material byte %u)", k, q[-1]);
    uint32_t palette = 0;
    for (int shift = 0; use_palette; shift += 7) {
        if (q == end || shift > 28)
            return error_set(err, STRATA_ERR_CORRUPT, "delta record: bad palette size");
        palette |= (uint32_t)(*q & 0x7f) << shift;
        if (!(*q++ & 0x80))
            break;
    }
    if (use_palette && (palette == 0 || palette > n || palette > ((uint32_t)1 << wb)))
        return error_set(err, STRATA_ERR_CORRUPT,
                         "delta record: palette of %u materials for %zu changes", palette, n);
    /* The indices first (checked), then the materials. scratch: n indices, then the
     * palette; a zstd body lies in its upper half. */
    uint32_t *at = (uint32_t *)scratch;
    uint16_t *ids = (uint16_t *)(scratch + 4 * n);
    bit_reader br = {q, end, 0, 0};
    uint32_t first = 0;
    if (!bits_get(&br, vb, &first) || first >= limit)
        return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated in its first index");
    uint64_t voxel = first;
    at[0] = first;
    for (size_t i = 1; i < n; i++) {
        uint64_t quotient = 0;
        const int got = bits_unary(&br, limit >> k, &quotient);
        if (got == 0)
            return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated at change %zu", i);
        if (got < 0)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "delta record: voxel index outside the chunk at change %zu", i);
        uint32_t low = 0;
        if (k && !bits_get(&br, k, &low))
            return error_set(err, STRATA_ERR_CORRUPT, "delta record truncated at change %zu", i);
        voxel += (quotient << k | low) + 1;
        if (voxel >= limit)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "delta record: voxel index %" PRIu64 " outside the chunk", voxel);
        at[i] = (uint32_t)voxel;
    }
    return read_materials(&br, end, n, wb, palette, ids, at, voxels, materials, err);
}

strata_status delta_apply(const uint8_t *record, size_t length, int edge, uint8_t *scratch,
                          uint16_t *voxels, strata_error *err)
{
    delta_header h;
    strata_status st = delta_parse(record, length, edge, &h, err);
    if (st)
        return st;
    if (h.version == 1)
        return apply_v1(record, length, &h, edge, scratch, voxels, err);
    return decode_v2(record, length, &h, edge, scratch, voxels, NULL, err);
}

strata_status delta_changes(const uint8_t *record, size_t length, int edge, uint8_t *scratch,
                            const uint32_t **voxel, const uint16_t **material, size_t *n,
                            strata_error *err)
{
    delta_header h;
    strata_status st = delta_parse(record, length, edge, &h, err);
    if (st)
        return st;
    if (h.version == 1)
        return error_set(err, STRATA_ERR_ARG, "delta record of version 1: apply it to voxels");
    /* scratch: indices (4 n bytes), the record's palette (at most 2 n), then the materials */
    uint16_t *materials = (uint16_t *)(void *)(scratch + 6 * (size_t)h.count);
    st = decode_v2(record, length, &h, edge, scratch, NULL, materials, err);
    if (st)
        return st;
    *voxel = (const uint32_t *)(const void *)scratch;
    *material = materials;
    *n = h.count;
    return STRATA_OK;
}

/* Where a chain's read stands: the next (older) record, and what the newer ones said. */
typedef struct {
    uint64_t segment, offset, total, newer_epoch;
    uint32_t length, crc;
    int depth; /* of the next record; 0: the chain is read */
} chain_cursor;

/* The longest record a reader takes for an edge^3 chunk (twice what a writer logs). */
static size_t record_max(int edge)
{
    return delta_record_bound(edge, 2 * delta_log_max((size_t)edge * edge * edge));
}

strata_status delta_chain_check(const store_row *row, int edge, strata_error *err)
{
    if (row->delta_depth > DELTA_DEPTH_MAX)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": delta chain of %u records (at most %d)", row->key,
                         row->delta_depth, DELTA_DEPTH_MAX);
    if (row->delta_bytes > (uint64_t)row->delta_depth * record_max(edge))
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64
                         ": delta chain of %u bytes in %u records (at most %zu "
                         "bytes a record)",
                         row->key, row->delta_bytes, row->delta_depth, record_max(edge));
    return STRATA_OK;
}

static strata_status chain_start(const store_row *row, int edge, chain_cursor *c, strata_error *err)
{
    *c = (chain_cursor){.segment = row->delta_segment,
                        .offset = row->delta_offset,
                        .newer_epoch = UINT64_MAX,
                        .length = row->delta_length,
                        .crc = row->delta_crc,
                        .depth = row->delta_depth};
    return delta_chain_check(row, edge, err);
}

/* The next record can be read: it is named, not longer than a record can be, and within
 * the bytes the row gives the chain (which sizes the reader's room). */
static strata_status chain_where(const store_row *row, int edge, const chain_cursor *c,
                                 strata_error *err)
{
    if (c->segment == 0 || c->length > record_max(edge))
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": delta record %d of %u is missing "
                         "(segment %" PRIu64 ", %u bytes)",
                         row->key, c->depth, row->delta_depth, c->segment, c->length);
    if (c->total + c->length > row->delta_bytes)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": delta chain of more than %" PRIu64
                         " bytes, the row says %u",
                         row->key, c->total, row->delta_bytes);
    return STRATA_OK;
}

/* Check the record just read at the cursor (checksum, header, place in the chain) and
 * move to the one before it. */
static strata_status chain_took(const store *s, const store_row *row, int edge, chain_cursor *c,
                                const uint8_t *record, strata_error *err)
{
    const int depth = c->depth;
    const uint64_t segment = c->segment, offset = c->offset;
    strata_status st =
        store_check_payload(s->dir, segment, offset, c->length, c->crc, row->key, record, err);
    if (st)
        return error_set(err, st, "delta record %d of %u: %s", depth, row->delta_depth,
                         err->message);
    delta_header h;
    st = delta_parse(record, c->length, edge, &h, err);
    if (st)
        return error_set(err, st,
                         "chunk key %" PRIu64 ": delta record %d (segment %" PRIu64
                         ", offset %" PRIu64 "): %s",
                         row->key, depth, segment, offset, err->message);
    const char *wrong = h.key != row->key           ? "names another chunk"
                        : h.depth != depth          ? "is out of order (its depth differs)"
                        : h.epoch != segment        ? "is not in the segment of its commit"
                        : h.epoch >= c->newer_epoch ? "is out of order (not older than the "
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
    c->total += c->length;
    c->newer_epoch = h.epoch;
    if (depth == 1 && segment != row->delta_first)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": oldest delta record in segment %" PRIu64
                         ", the row says %" PRIu64,
                         row->key, segment, row->delta_first);
    c->segment = h.prev_segment, c->offset = h.prev_offset;
    c->length = h.prev_length, c->crc = h.prev_crc;
    c->depth--;
    if (!c->depth && c->total != row->delta_bytes)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk key %" PRIu64 ": delta chain of %" PRIu64 " bytes, the row says %u",
                         row->key, c->total, row->delta_bytes);
    return STRATA_OK;
}

strata_status delta_chain_read(store *s, const store_row *row, int edge, byte_buffer *out,
                               strata_error *err)
{
    chain_cursor c;
    strata_status st = chain_start(row, edge, &c, err);
    while (!st && c.depth) {
        if ((st = chain_where(row, edge, &c, err)))
            break;
        /* each record goes to out after its length (u32): delta_chain_apply finds it */
        const uint32_t length = c.length;
        if (!byte_buffer_append(out, &length, sizeof length))
            return error_set(err, STRATA_ERR_NOMEM, "cannot hold a delta chain");
        uint64_t at = out->bytes;
        if (!byte_buffer_append(out, NULL, length))
            return error_set(err, STRATA_ERR_NOMEM, "cannot hold a delta chain");
        st = store_read_span(s, c.segment, c.offset, length, row->key, out->data + at, err);
        if (st)
            return error_set(err, st, "delta record %d of %u: %s", c.depth, row->delta_depth,
                             err->message);
        st = chain_took(s, row, edge, &c, out->data + at, err);
    }
    return st;
}

/* Reads of chain records closer than this are one read (as the index build's). */
#define CHAIN_READ_GAP ((uint64_t)4096)

strata_status delta_chains_read(store *s, const store_row *const *rows, size_t n, int edge,
                                uint8_t *out, const uint64_t *at, strata_error *err)
{
    chain_cursor *c = strata_malloc((n + 1) * sizeof *c);
    uint64_t *written = strata_calloc(n + 1, sizeof *written);
    store_ref *refs = strata_malloc((n + 1) * sizeof *refs);
    uint8_t *buffer = NULL;
    uint64_t capacity = 0;
    strata_status st = c && written && refs ? STRATA_OK
                                            : error_set(err, STRATA_ERR_NOMEM,
                                                        "cannot read the delta chains of %zu "
                                                        "chunks",
                                                        n);
    for (size_t i = 0; !st && i < n; i++) {
        c[i].depth = 0;
        if (rows[i] && rows[i]->delta_depth)
            st = chain_start(rows[i], edge, &c[i], err);
    }
    /* one round per depth: every chain's next record, read together */
    for (size_t m = 1; !st && m;) {
        m = 0;
        for (size_t i = 0; !st && i < n; i++)
            if (c[i].depth && !(st = chain_where(rows[i], edge, &c[i], err)))
                refs[m++] = (store_ref){.segment = c[i].segment,
                                        .offset = c[i].offset,
                                        .length = c[i].length,
                                        .key = rows[i]->key,
                                        .item = i};
        size_t failed = m;
        if (!st && m)
            st = store_read_many(s, refs, m, CHAIN_READ_GAP, &buffer, &capacity, &failed, err);
        if (st && failed < m)
            error_set(err, st, "delta record %d of %u: %s", c[refs[failed].item].depth,
                      rows[refs[failed].item]->delta_depth, err->message);
        for (size_t k = 0; !st && k < m; k++) {
            const size_t i = refs[k].item;
            const uint32_t length = c[i].length;
            uint8_t *to = out + at[i] + written[i];
            memcpy(to, &length, sizeof length);
            memcpy(to + sizeof length, buffer + refs[k].at, length);
            written[i] += sizeof length + length;
            st = chain_took(s, rows[i], edge, &c[i], to + sizeof length, err);
        }
    }
    free(buffer);
    free(refs);
    free(written);
    free(c);
    return st;
}

/* The records of a chain read by delta_chain_read: newest first, each after its length. */
static strata_status chain_records(const uint8_t *chain, uint64_t bytes, int depth,
                                   uint64_t start[], uint32_t length[], strata_error *err)
{
    uint64_t at = 0;
    if (depth > DELTA_DEPTH_MAX)
        return error_set(err, STRATA_ERR_CORRUPT, "delta chain of %d records", depth);
    for (int i = 0; i < depth; i++) {
        if (bytes - at < sizeof length[i])
            return error_set(err, STRATA_ERR_CORRUPT, "delta chain truncated at record %d of %d",
                             depth - i, depth); /* records are numbered by depth, oldest 1 */
        memcpy(&length[i], chain + at, sizeof length[i]);
        at += sizeof length[i];
        if (bytes - at < length[i])
            return error_set(err, STRATA_ERR_CORRUPT, "delta chain truncated at record %d of %d",
                             depth - i, depth);
        start[i] = at;
        at += length[i];
    }
    return STRATA_OK;
}

strata_status delta_chain_apply(const uint8_t *chain, uint64_t bytes, int depth, int edge,
                                uint8_t *scratch, uint16_t *voxels, strata_error *err)
{
    uint64_t start[DELTA_DEPTH_MAX + 1];
    uint32_t length[DELTA_DEPTH_MAX + 1];
    strata_status st = chain_records(chain, bytes, depth, start, length, err);
    for (int i = depth; !st && i-- > 0;)
        st = delta_apply(chain + start[i], length[i], edge, scratch, voxels, err);
    return st;
}

strata_status delta_chain_changes(const uint8_t *chain, uint64_t bytes, int depth, int edge,
                                  uint8_t *scratch, delta_changes_fn fn, void *ctx, int *stopped,
                                  strata_error *err)
{
    uint64_t start[DELTA_DEPTH_MAX + 1];
    uint32_t length[DELTA_DEPTH_MAX + 1];
    *stopped = 0;
    strata_status st = chain_records(chain, bytes, depth, start, length, err);
    for (int i = depth; !st && !*stopped && i-- > 0;) {
        const uint32_t *voxel;
        const uint16_t *material;
        size_t n;
        st = delta_changes(chain + start[i], length[i], edge, scratch, &voxel, &material, &n, err);
        if (!st)
            *stopped = !fn(ctx, voxel, material, n);
    }
    return st;
}
