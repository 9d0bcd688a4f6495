/*
 * codec.c: chunk payloads: a pre-transform (byte shuffle or palette), then one
 * standard zstd frame that records its content size and a content checksum.
 *
 * Payload contents (before zstd), N = edge^3 voxels:
 *   CODEC_SHUFFLE  N low bytes of the values, then N high bytes (2N bytes).
 *   CODEC_PALETTE  uint16 LE count P (1..256), P uint16 LE ids strictly
 *                  ascending, then N indices bit-packed LSB-first at b bits
 *                  each, b the smallest of 1, 2, 4, 8 with 2^b >= P
 *                  (2 + 2P + N*b/8 bytes; N*b is a multiple of 8).
 *
 * Scratch layout (offsets in bytes):
 *   [0, 64 KiB)          encode: uint8 index of each palette id, by id
 *                        decode: uint16 [256][8] expansion table and a
 *                        256-byte "holds an index >= P" table
 *   [64 KiB, 72 KiB)     bitmap of the values seen in the chunk (encode)
 *   [72 KiB, +2N)        the transformed content
 */
#include "codec.h"

#include "alloc.h"

#include "const_table.h"

#include <string.h>
#include <zlib.h>
#include <zstd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>
#define CODEC_SHUFFLE_LOOKUP 1 /* SSSE3 byte shuffles, chosen at run time */
#endif

enum {
    INDEX_OFFSET = 0,
    SEEN_OFFSET = 65536,
    CONTENT_OFFSET = SEEN_OFFSET + 65536 / 8,
    SEEN_WORDS = 65536 / 64,
    EXPAND_BYTES = 256 * 8 * 2,
};

/*
 * The codec rule, measured by bench/bench_codec.c (512x512x256 layered terrain,
 * seed 1, zstd level 3; bytes of dense chunks): uniform chunks (28-55% of them)
 * cost nothing. A palette was smaller than the shuffle at every edge: palette/
 * shuffle 0.82 (C=16), 0.91 (32), 0.88 (64), 0.88 (128); by index width 0.76-0.82
 * at 1-2 bits, 0.88-0.91 at 4 bits, and on terrain sprinkled with 300 decoration
 * ids (8-bit palettes) 1.007 at C=16 and 0.95 at C=32. The only losses (1-bit
 * chunks at C=32: 32 B vs 28 B; 8-bit at C=16: +0.7%) are a few bytes of
 * palette header. Palette decode is also 1.5-2x faster (zstd sees 2-16x fewer
 * bytes). So: any chunk of at most CODEC_PALETTE_MAX distinct values is a
 * palette, others the shuffle. Rule vs plain zstd-3 of the raw chunk: 0.73-0.77
 * of its bytes on dense terrain chunks, 0.64-0.75 counting uniform chunks.
 */
static int codec_for_distinct(int distinct)
{
    return distinct <= CODEC_PALETTE_MAX ? CODEC_PALETTE : CODEC_SHUFFLE;
}

/*
 * Why thread-local zstd contexts: creating a context allocates its tables
 * (hundreds of KiB at level 3) and costs about as much as encoding a 32^3
 * chunk, and the caller's scratch has no lifetime hook that could own one. So
 * each thread creates one compression and one decompression context on first
 * use and keeps it until chunk_codec_release_thread (or process exit).
 */
static _Thread_local ZSTD_CCtx *thread_cctx;
static _Thread_local ZSTD_DCtx *thread_dctx;

void chunk_zstd_levels(int *low, int *high)
{
    *low = ZSTD_minCLevel();
    *high = ZSTD_maxCLevel();
}

void chunk_codec_release_thread(void)
{
    ZSTD_freeCCtx(thread_cctx);
    ZSTD_freeDCtx(thread_dctx);
    thread_cctx = NULL;
    thread_dctx = NULL;
}

static int edge_is_valid(int edge)
{
    return edge >= STRATA_CHUNK_EDGE_MIN && edge <= STRATA_CHUNK_EDGE_MAX &&
           (edge & (edge - 1)) == 0;
}

static size_t voxel_count(int edge)
{
    return (size_t)edge * (size_t)edge * (size_t)edge;
}

size_t chunk_encode_bound(int edge)
{
    /* The shuffle's 2N bytes are the largest content (the palette's is at most 514 + N). */
    return edge_is_valid(edge) ? ZSTD_compressBound(2 * voxel_count(edge)) : 0;
}

size_t chunk_scratch_size(int edge)
{
    return edge_is_valid(edge) ? CONTENT_OFFSET + 2 * voxel_count(edge) : 0;
}

int chunk_is_uniform(const uint16_t *voxels, size_t count)
{
    for (size_t i = 1; i < count; i++)
        if (voxels[i] != voxels[0])
            return 0;
    return 1;
}

uint32_t checksum_update(uint32_t crc, const void *data, size_t length)
{
    return (uint32_t)crc32_z(crc, (const Bytef *)data, length);
}

/* Bits per palette index: the smallest of 1, 2, 4, 8 with 2^bits >= count. */
static int palette_bits(int count)
{
    return count <= 2 ? 1 : count <= 4 ? 2 : count <= 16 ? 4 : 8;
}

static size_t palette_content_size(int count, size_t n)
{
    return 2 + 2 * (size_t)count + n * (size_t)palette_bits(count) / 8;
}

/* ---- encode ----------------------------------------------------------------- */

/* 1 when the 16 values at v all equal `value` (terrain: most runs along x).
 * With SSE2, `want` is `value` in every lane (set once by the caller's loop). */
#ifdef __SSE2__
static inline int run_of_lanes(const uint16_t *v, __m128i want)
{
    const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)v);
    const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(v + 8));
    return _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi16(a, want), _mm_cmpeq_epi16(b, want))) ==
           0xffff;
}
#endif

static inline int run_of(const uint16_t *v, uint16_t value)
{
#ifdef __SSE2__
    return run_of_lanes(v, _mm_set1_epi16((short)value));
#else
    unsigned differs = 0;
    for (int k = 0; k < 16; k++)
        differs |= (unsigned)(v[k] ^ value);
    return !differs;
#endif
}

/* Mark v in the bitmap; returns 1 if it was not seen before. */
static inline int mark_seen(uint64_t *seen, uint16_t v)
{
    uint64_t bit = (uint64_t)1 << (v & 63);
    if (seen[v >> 6] & bit)
        return 0;
    seen[v >> 6] |= bit;
    return 1;
}

/*
 * Count the distinct values of v (stopping once there are more than
 * CODEC_PALETTE_MAX) and, when there are at most that many, list them
 * ascending in palette. Terrain changes value rarely along x, so blocks of 16
 * voxels equal to the last value seen are skipped with one vectorised test;
 * the bitmap is only touched when the value changes. n is a multiple of 16.
 */
static int find_palette(const uint16_t *v, size_t n, uint64_t *seen, uint16_t *palette)
{
    memset(seen, 0, SEEN_WORDS * sizeof *seen);
    uint16_t previous = v[0];
    mark_seen(seen, previous);
    int count = 1;
#ifdef __SSE2__
    __m128i want = _mm_set1_epi16((short)previous);
#endif
    for (size_t i = 0; i < n; i += 16) {
#ifdef __SSE2__
        if (run_of_lanes(v + i, want))
            continue;
#else
        if (run_of(v + i, previous))
            continue;
#endif
        if (run_of(v + i, v[i])) { /* a run of another value: a new layer */
            previous = v[i];
            count += mark_seen(seen, previous);
        } else {
            for (int k = 0; k < 16; k++) {
                if (v[i + (size_t)k] == previous)
                    continue;
                previous = v[i + (size_t)k];
                count += mark_seen(seen, previous);
            }
        }
#ifdef __SSE2__
        want = _mm_set1_epi16((short)previous);
#endif
        if (count > CODEC_PALETTE_MAX)
            return count;
    }
    int k = 0;
    for (int w = 0; w < SEEN_WORDS; w++)
        for (uint64_t bits = seen[w]; bits; bits &= bits - 1)
            palette[k++] = (uint16_t)(w * 64 + __builtin_ctzll(bits));
    return count;
}

static void shuffle_bytes(const uint16_t *v, size_t n, uint8_t *content)
{
    uint8_t *low = content, *high = content + n;
    for (size_t i = 0; i < n; i++) {
        low[i] = (uint8_t)(v[i] & 0xff);
        high[i] = (uint8_t)(v[i] >> 8);
    }
}

/* Pack indices `per_byte` to a byte, LSB first, 16 voxels at a time: a run of
 * one value (most of terrain) is its index's byte pattern repeated, written as
 * one store; inlined once per width so the inner loops have constant bounds. */
static inline __attribute__((always_inline)) void
pack_indices(const uint16_t *v, size_t n, const uint8_t *index_of, int per_byte, uint8_t *out)
{
    const int bits = 8 / per_byte, bytes = 16 / per_byte;
    /* the byte whose every field holds index 1, times an index: its run pattern */
    const unsigned ones = per_byte == 8 ? 0xff : per_byte == 4 ? 0x55 : per_byte == 2 ? 0x11 : 1;
    for (size_t i = 0; i < n; i += 16, out += bytes) {
        if (run_of(v + i, v[i])) {
            const uint64_t pattern = (uint64_t)(index_of[v[i]] * ones) * 0x0101010101010101u;
            memcpy(out, &pattern, (size_t)(bytes < 8 ? bytes : 8));
            if (bytes == 16)
                memcpy(out + 8, &pattern, 8);
            continue;
        }
        for (int j = 0; j < bytes; j++) {
            unsigned byte = 0;
            for (int k = 0; k < per_byte; k++)
                byte |= (unsigned)index_of[v[i + (size_t)(j * per_byte + k)]] << (k * bits);
            out[j] = (uint8_t)byte;
        }
    }
}

/* Write the palette content; returns its size. */
static size_t palette_content(const uint16_t *v, size_t n, const uint16_t *palette, int count,
                              uint8_t *index_of, uint8_t *content)
{
    content[0] = (uint8_t)(count & 0xff);
    content[1] = (uint8_t)(count >> 8);
    for (int i = 0; i < count; i++) {
        index_of[palette[i]] = (uint8_t)i;
        content[2 + 2 * i] = (uint8_t)(palette[i] & 0xff);
        content[3 + 2 * i] = (uint8_t)(palette[i] >> 8);
    }
    uint8_t *packed = content + 2 + 2 * count;
    switch (palette_bits(count)) {
    case 1:
        pack_indices(v, n, index_of, 8, packed);
        break;
    case 2:
        pack_indices(v, n, index_of, 4, packed);
        break;
    case 4:
        pack_indices(v, n, index_of, 2, packed);
        break;
    default:
        pack_indices(v, n, index_of, 1, packed);
        break;
    }
    return palette_content_size(count, n);
}

strata_status codec_compress_frame(const uint8_t *content, size_t size, int level, uint8_t *out,
                                   size_t capacity, size_t *length, strata_error *err)
{
    if (!thread_cctx && !(thread_cctx = ZSTD_createCCtx()))
        return error_set(err, STRATA_ERR_NOMEM, "chunk encode: cannot create a zstd context");
    /* Single-shot compression knows the size, so the frame records it. */
    size_t rc = ZSTD_CCtx_setParameter(thread_cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(rc))
        rc = ZSTD_CCtx_setParameter(thread_cctx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(rc))
        rc = ZSTD_CCtx_setParameter(thread_cctx, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(rc))
        rc = ZSTD_compress2(thread_cctx, out, capacity, content, size);
    if (ZSTD_isError(rc)) {
        ZSTD_CCtx_reset(thread_cctx, ZSTD_reset_session_and_parameters);
        return error_set(err, STRATA_ERR_CORRUPT, "chunk encode: zstd level %d: %s", level,
                         ZSTD_getErrorName(rc));
    }
    *length = rc;
    return STRATA_OK;
}

static strata_status buffer_reserve(codec_buffer *b, size_t size, strata_error *err)
{
    if (b->capacity >= size)
        return STRATA_OK;
    uint8_t *grown = strata_realloc(b->data, size);
    if (!grown)
        return error_set(err, STRATA_ERR_NOMEM, "recompress: cannot hold %zu bytes", size);
    b->data = grown;
    b->capacity = size;
    return STRATA_OK;
}

strata_status chunk_recompress(uint8_t *frame, uint32_t *length, int level, codec_buffer *content,
                               codec_buffer *out, strata_error *err)
{
    unsigned long long size = ZSTD_getFrameContentSize(frame, *length);
    /* The largest content is a shuffled 256^3 chunk (32 MiB); a pyramid is smaller. */
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > ((unsigned long long)1 << 26))
        return error_set(err, STRATA_ERR_CORRUPT, "recompress: not a zstd frame of known size");
    strata_status st = buffer_reserve(content, size ? (size_t)size : 1, err);
    if (!st)
        st = buffer_reserve(out, ZSTD_compressBound((size_t)size), err);
    if (st)
        return st;
    size_t got = ZSTD_decompress(content->data, (size_t)size, frame, *length);
    if (ZSTD_isError(got) || got != size)
        return error_set(err, STRATA_ERR_CORRUPT, "recompress: %s",
                         ZSTD_isError(got) ? ZSTD_getErrorName(got) : "content size differs");
    size_t n = 0;
    st =
        codec_compress_frame(content->data, (size_t)size, level, out->data, out->capacity, &n, err);
    if (!st && n < *length) {
        memcpy(frame, out->data, n);
        *length = (uint32_t)n;
    }
    return st;
}

static strata_status check_encode_args(const uint16_t *voxels, int edge, void *scratch,
                                       uint8_t *out, chunk_encoding *enc, strata_error *err)
{
    if (!edge_is_valid(edge))
        return error_set(err, STRATA_ERR_ARG,
                         "chunk encode: edge %d is not a power of two "
                         "in [16, 256]",
                         edge);
    if (!voxels || !scratch || !out || !enc)
        return error_set(err, STRATA_ERR_ARG, "chunk encode: NULL argument");
    return STRATA_OK;
}

/* Transform with `codec` (palette already found when codec is CODEC_PALETTE) and compress. */
static strata_status encode_content(const uint16_t *voxels, int edge, int level, int codec,
                                    const uint16_t *palette, int count, uint8_t *scratch,
                                    uint8_t *out, chunk_encoding *enc, strata_error *err)
{
    size_t n = voxel_count(edge), size;
    uint8_t *content = scratch + CONTENT_OFFSET;
    if (codec == CODEC_PALETTE) {
        size = palette_content(voxels, n, palette, count, scratch + INDEX_OFFSET, content);
    } else {
        shuffle_bytes(voxels, n, content);
        size = 2 * n;
    }
    enc->codec = codec;
    enc->uniform_value = 0;
    enc->length = 0;
    return codec_compress_frame(content, size, level, out, chunk_encode_bound(edge), &enc->length,
                                err);
}

strata_status chunk_encode(const uint16_t *voxels, int edge, int zstd_level, void *scratch,
                           uint8_t *out, chunk_encoding *enc, strata_error *err)
{
    strata_status st = check_encode_args(voxels, edge, scratch, out, enc, err);
    if (st != STRATA_OK)
        return st;
    uint16_t palette[CODEC_PALETTE_MAX];
    int count = find_palette(voxels, voxel_count(edge),
                             (uint64_t *)((uint8_t *)scratch + SEEN_OFFSET), palette);
    if (count == 1) {
        *enc = (chunk_encoding){.codec = CODEC_UNIFORM, .uniform_value = voxels[0], .length = 0};
        return STRATA_OK;
    }
    return encode_content(voxels, edge, zstd_level, codec_for_distinct(count), palette, count,
                          scratch, out, enc, err);
}

strata_status chunk_encode_as(const uint16_t *voxels, int edge, int zstd_level, int codec,
                              void *scratch, uint8_t *out, chunk_encoding *enc, strata_error *err)
{
    strata_status st = check_encode_args(voxels, edge, scratch, out, enc, err);
    if (st != STRATA_OK)
        return st;
    if (codec != CODEC_SHUFFLE && codec != CODEC_PALETTE)
        return error_set(err, STRATA_ERR_ARG, "chunk encode: codec %d is not a transform", codec);
    uint16_t palette[CODEC_PALETTE_MAX];
    int count = 0;
    if (codec == CODEC_PALETTE) {
        count = find_palette(voxels, voxel_count(edge),
                             (uint64_t *)((uint8_t *)scratch + SEEN_OFFSET), palette);
        if (count > CODEC_PALETTE_MAX)
            return error_set(err, STRATA_ERR_ARG,
                             "chunk encode: more than %d distinct values "
                             "for a palette",
                             CODEC_PALETTE_MAX);
    }
    return encode_content(voxels, edge, zstd_level, codec, palette, count, scratch, out, enc, err);
}

/* ---- decode ----------------------------------------------------------------- */

/*
 * Expand packed indices through a table of each byte's `per_byte` values; a
 * byte holding an index >= P is flagged in `bad` and the flags are OR-ed, so
 * the loop has no branch. Returns nonzero if any index was out of range.
 */
static inline __attribute__((always_inline)) unsigned
expand_indices(const uint8_t *packed, size_t n, const uint16_t (*table)[8], const uint8_t *bad,
               int per_byte, uint16_t *voxels)
{
    unsigned any_bad = 0;
    for (size_t i = 0, j = 0; i < n; i += (size_t)per_byte, j++) {
        memcpy(voxels + i, table[packed[j]], (size_t)per_byte * sizeof *voxels);
        any_bad |= bad[packed[j]];
    }
    return any_bad;
}

/* Fill the expansion tables for `count` ids packed at `bits` bits. */
static void build_expand_table(const uint16_t *ids, int count, int bits, uint16_t (*table)[8],
                               uint8_t *bad)
{
    const int per_byte = 8 / bits;
    const unsigned mask = (1u << bits) - 1;
    for (unsigned byte = 0; byte < 256; byte++) {
        bad[byte] = 0;
        for (int k = 0; k < per_byte; k++) {
            unsigned index = (byte >> (k * bits)) & mask;
            bad[byte] |= index >= (unsigned)count;
            table[byte][k] = index < (unsigned)count ? ids[index] : 0;
        }
    }
}

#ifdef CODEC_SHUFFLE_LOOKUP
/* Indices of 1 and 2 bits spread one to a byte (byte b of entry v: index b of v), as
 * constant expressions. */
#define BITS1(v)                                                                                   \
    ((uint64_t)((v)&1) | (uint64_t)((v) >> 1 & 1) << 8 | (uint64_t)((v) >> 2 & 1) << 16 |          \
     (uint64_t)((v) >> 3 & 1) << 24 | (uint64_t)((v) >> 4 & 1) << 32 |                             \
     (uint64_t)((v) >> 5 & 1) << 40 | (uint64_t)((v) >> 6 & 1) << 48 | (uint64_t)((v) >> 7) << 56)
#define BITS2(v)                                                                                   \
    ((uint32_t)((v)&3) | (uint32_t)((v) >> 2 & 3) << 8 | (uint32_t)((v) >> 4 & 3) << 16 |          \
     (uint32_t)((v) >> 6) << 24)
static const uint64_t spread_bits1[256] = {CONST_TABLE256(BITS1, 0)};
static const uint32_t spread_bits2[256] = {CONST_TABLE256(BITS2, 0)};

/*
 * Palettes of at most 16 ids (1, 2 and 4-bit indices, nearly every terrain
 * chunk): sixteen indices become sixteen voxels with two byte shuffles (the
 * ids' low and high bytes are each a 16-entry table), about five times fewer
 * instructions than a table lookup per packed byte. Returns nonzero if an
 * index is >= count.
 */
__attribute__((target("ssse3"))) static unsigned expand_small(const uint8_t *packed, size_t n,
                                                              int bits, const uint16_t *ids,
                                                              int count, uint16_t *voxels)
{
    uint8_t low[16] = {0}, high[16] = {0};
    for (int i = 0; i < count; i++)
        low[i] = (uint8_t)(ids[i] & 0xff), high[i] = (uint8_t)(ids[i] >> 8);
    const __m128i lo_table = _mm_loadu_si128((const __m128i *)(const void *)low);
    const __m128i hi_table = _mm_loadu_si128((const __m128i *)(const void *)high);
    const __m128i nibble = _mm_set1_epi8(0x0f);
    __m128i largest = _mm_setzero_si128();
    for (size_t i = 0; i < n; i += 16) {
        __m128i index;
        if (bits == 4) {
            /* 8 packed bytes: low nibble first */
            const __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(packed + i / 2));
            index = _mm_unpacklo_epi8(_mm_and_si128(b, nibble),
                                      _mm_and_si128(_mm_srli_epi16(b, 4), nibble));
        } else if (bits == 2) {
            const uint8_t *p = packed + i / 4;
            index = _mm_setr_epi32((int)spread_bits2[p[0]], (int)spread_bits2[p[1]],
                                   (int)spread_bits2[p[2]], (int)spread_bits2[p[3]]);
        } else {
            const uint8_t *p = packed + i / 8;
            index = _mm_set_epi64x((long long)spread_bits1[p[1]], (long long)spread_bits1[p[0]]);
        }
        largest = _mm_max_epu8(largest, index);
        const __m128i lo = _mm_shuffle_epi8(lo_table, index),
                      hi = _mm_shuffle_epi8(hi_table, index);
        _mm_storeu_si128((__m128i *)(void *)(voxels + i), _mm_unpacklo_epi8(lo, hi));
        _mm_storeu_si128((__m128i *)(void *)(voxels + i + 8), _mm_unpackhi_epi8(lo, hi));
    }
    uint8_t most[16];
    _mm_storeu_si128((__m128i *)(void *)most, largest);
    unsigned bad = 0;
    for (int k = 0; k < 16; k++)
        bad |= most[k] >= count;
    return bad;
}
#endif

/* The palette header of decompressed content (size bytes): count, ascending ids. */
static strata_status parse_palette(const uint8_t *content, size_t size, size_t n, chunk_palette *p,
                                   strata_error *err)
{
    int count = content[0] | content[1] << 8;
    if (count < 1 || count > CODEC_PALETTE_MAX)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette count %d", count);
    if (size != palette_content_size(count, n))
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette of %d ids in %zu bytes",
                         count, size);
    for (int i = 0; i < count; i++) {
        p->ids[i] = (uint16_t)(content[2 + 2 * i] | content[3 + 2 * i] << 8);
        if (i > 0 && p->ids[i] <= p->ids[i - 1])
            return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette not ascending");
    }
    p->count = count;
    p->bits = palette_bits(count);
    p->packed = content + 2 + 2 * count;
    return STRATA_OK;
}

/* Expand the indices of p into voxels, checking each against the count. */
static strata_status expand_palette(const chunk_palette *p, size_t n, uint8_t *scratch,
                                    uint16_t *voxels, strata_error *err)
{
    const int count = p->count, bits = p->bits;
    const uint8_t *packed = p->packed;
#ifdef CODEC_SHUFFLE_LOOKUP
    if (bits <= 4 && __builtin_cpu_supports("ssse3")) {
        if (expand_small(packed, n, bits, p->ids, count, voxels))
            return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette index >= count %d",
                             count);
        return STRATA_OK;
    }
#endif
    uint16_t(*table)[8] = (uint16_t(*)[8])(scratch + INDEX_OFFSET);
    uint8_t *bad = scratch + INDEX_OFFSET + EXPAND_BYTES;
    build_expand_table(p->ids, count, bits, table, bad);
    unsigned any_bad;
    switch (bits) {
    case 1:
        any_bad = expand_indices(packed, n, table, bad, 8, voxels);
        break;
    case 2:
        any_bad = expand_indices(packed, n, table, bad, 4, voxels);
        break;
    case 4:
        any_bad = expand_indices(packed, n, table, bad, 2, voxels);
        break;
    default:
        any_bad = expand_indices(packed, n, table, bad, 1, voxels);
        break;
    }
    if (any_bad)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette index >= count %d", count);
    return STRATA_OK;
}

static strata_status unpalette(const uint8_t *content, size_t size, size_t n, uint8_t *scratch,
                               uint16_t *voxels, strata_error *err)
{
    chunk_palette p;
    strata_status st = parse_palette(content, size, n, &p, err);
    return st ? st : expand_palette(&p, n, scratch, voxels, err);
}

static void unshuffle(const uint8_t *content, size_t n, uint16_t *voxels)
{
    const uint8_t *low = content, *high = content + n;
    for (size_t i = 0; i < n; i++)
        voxels[i] = (uint16_t)(low[i] | high[i] << 8);
}

/*
 * Decompress exactly one frame filling payload[0, length) whose recorded
 * content size lies in [min_size, max_size] into content; *size gets it.
 */
strata_status codec_decompress_frame(const uint8_t *payload, size_t length, size_t min_size,
                                     size_t max_size, uint8_t *content, size_t *size,
                                     strata_error *err)
{
    size_t frame = ZSTD_findFrameCompressedSize(payload, length);
    if (ZSTD_isError(frame))
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: %s", ZSTD_getErrorName(frame));
    if (frame != length)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: %zu bytes after the frame",
                         length - frame);
    unsigned long long recorded = ZSTD_getFrameContentSize(payload, length);
    if (recorded == ZSTD_CONTENTSIZE_ERROR || recorded == ZSTD_CONTENTSIZE_UNKNOWN ||
        recorded < min_size || recorded > max_size)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "chunk decode: frame content size %llu not "
                         "in [%zu, %zu]",
                         recorded, min_size, max_size);
    if (!thread_dctx && !(thread_dctx = ZSTD_createDCtx()))
        return error_set(err, STRATA_ERR_NOMEM, "chunk decode: cannot create a zstd context");
    size_t got = ZSTD_decompressDCtx(thread_dctx, content, (size_t)recorded, payload, length);
    if (ZSTD_isError(got))
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: %s", ZSTD_getErrorName(got));
    if (got != recorded)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: %zu bytes, frame says %llu", got,
                         recorded);
    *size = got;
    return STRATA_OK;
}

strata_status chunk_decode(const uint8_t *payload, size_t length, int codec, int edge,
                           void *scratch, uint16_t *voxels, strata_error *err)
{
    if (!edge_is_valid(edge))
        return error_set(err, STRATA_ERR_ARG,
                         "chunk decode: edge %d is not a power of two "
                         "in [16, 256]",
                         edge);
    if (!scratch || !voxels || (!payload && length > 0))
        return error_set(err, STRATA_ERR_ARG, "chunk decode: NULL argument");
    if (codec != CODEC_SHUFFLE && codec != CODEC_PALETTE)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: codec %d has no payload", codec);
    if (length == 0)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: empty payload");
    size_t n = voxel_count(edge), size = 0;
    uint8_t *content = (uint8_t *)scratch + CONTENT_OFFSET;
    if (codec == CODEC_SHUFFLE) {
        strata_status st =
            codec_decompress_frame(payload, length, 2 * n, 2 * n, content, &size, err);
        if (st == STRATA_OK)
            unshuffle(content, n, voxels);
        return st;
    }
    strata_status st =
        codec_decompress_frame(payload, length, palette_content_size(1, n),
                               palette_content_size(CODEC_PALETTE_MAX, n), content, &size, err);
    return st == STRATA_OK ? unpalette(content, size, n, scratch, voxels, err) : st;
}

void chunk_encoded_palette(const void *scratch, int edge, chunk_palette *p)
{
    const uint8_t *content = (const uint8_t *)scratch + CONTENT_OFFSET;
    const size_t n = voxel_count(edge);
    const int count = content[0] | content[1] << 8;
    /* written by palette_content: consistent by construction */
    (void)parse_palette(content, palette_content_size(count, n), n, p, NULL);
}

strata_status chunk_decode_palette(const uint8_t *payload, size_t length, int edge, void *scratch,
                                   chunk_palette *p, strata_error *err)
{
    if (!edge_is_valid(edge))
        return error_set(err, STRATA_ERR_ARG,
                         "chunk decode: edge %d is not a power of two in [16, 256]", edge);
    if (!scratch || !p || !payload || length == 0)
        return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: empty payload");
    const size_t n = voxel_count(edge);
    size_t size = 0;
    uint8_t *content = (uint8_t *)scratch + CONTENT_OFFSET;
    strata_status st =
        codec_decompress_frame(payload, length, palette_content_size(1, n),
                               palette_content_size(CODEC_PALETTE_MAX, n), content, &size, err);
    return st ? st : parse_palette(content, size, n, p, err);
}

strata_status chunk_expand_palette(const chunk_palette *p, int edge, void *scratch,
                                   uint16_t *voxels, strata_error *err)
{
    if (!edge_is_valid(edge) || !p || !scratch || !voxels)
        return error_set(err, STRATA_ERR_ARG, "chunk expand: bad argument");
    return expand_palette(p, voxel_count(edge), scratch, voxels, err);
}
