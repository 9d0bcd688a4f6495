/* test_codec.c: chunk payload round trips, rejection of malformed payloads, checksums. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "codec.h"
#include "splitmix.h"

/* Buffers for one chunk of the largest edge, shared by the tests of one process. */
typedef struct {
    int edge;
    size_t n;
    uint16_t *voxels, *decoded;
    uint8_t *payload;
    void *scratch;
} fixture;

static fixture fx;

static void fixture_open(int edge)
{
    fx.edge = edge;
    fx.n = (size_t)edge * edge * edge;
    fx.voxels = calloc(fx.n, sizeof *fx.voxels);
    fx.decoded = calloc(fx.n, sizeof *fx.decoded);
    fx.payload = malloc(chunk_encode_bound(edge));
    fx.scratch = malloc(chunk_scratch_size(edge));
    ck_assert(fx.voxels && fx.decoded && fx.payload && fx.scratch);
}

static void fixture_close(void)
{
    free(fx.voxels);
    free(fx.decoded);
    free(fx.payload);
    free(fx.scratch);
    chunk_codec_release_thread();
    memset(&fx, 0, sizeof fx);
}

/* Encode fx.voxels, check the codec, decode and compare. Returns the encoding. */
static chunk_encoding round_trip(int expected_codec)
{
    chunk_encoding enc;
    strata_error err = {0};
    ck_assert_int_eq(chunk_encode(fx.voxels, fx.edge, 3, fx.scratch, fx.payload, &enc, &err),
                     STRATA_OK);
    ck_assert_int_eq(enc.codec, expected_codec);
    if (enc.codec == CODEC_UNIFORM) {
        ck_assert_uint_eq(enc.length, 0);
        ck_assert_uint_eq(enc.uniform_value, fx.voxels[0]);
        ck_assert(chunk_is_uniform(fx.voxels, fx.n));
        return enc;
    }
    ck_assert_uint_le(enc.length, chunk_encode_bound(fx.edge));
    unsigned long long content = ZSTD_getFrameContentSize(fx.payload, enc.length);
    if (enc.codec == CODEC_SHUFFLE)
        ck_assert_uint_eq(content, 2 * fx.n);
    else
        ck_assert_uint_le(content, 2 + 2 * CODEC_PALETTE_MAX + fx.n);
    memset(fx.decoded, 0xa5, fx.n * sizeof *fx.decoded);
    strata_status st =
        chunk_decode(fx.payload, enc.length, enc.codec, fx.edge, fx.scratch, fx.decoded, &err);
    ck_assert_msg(st == STRATA_OK, "decode: %s", err.message);
    ck_assert(memcmp(fx.voxels, fx.decoded, fx.n * sizeof *fx.voxels) == 0);
    return enc;
}

static strata_status decode_status(const uint8_t *payload, size_t length, int codec)
{
    strata_error err = {0};
    strata_status st = chunk_decode(payload, length, codec, fx.edge, fx.scratch, fx.decoded, &err);
    ck_assert_int_eq(err.status, st);
    return st;
}

/* Fill with `distinct` values spread over the id range, in runs so zstd has work to do. */
static void fill_distinct(int distinct, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < fx.n; i++)
        fx.voxels[i] =
            (uint16_t)((i < (size_t)distinct ? i : splitmix64(&state) % distinct) * 257 % 65536);
}

START_TEST(test_uniform)
{
    fixture_open(32);
    for (size_t i = 0; i < fx.n; i++)
        fx.voxels[i] = 4242;
    round_trip(CODEC_UNIFORM);
    memset(fx.voxels, 0, fx.n * sizeof *fx.voxels);
    round_trip(CODEC_UNIFORM);
    fixture_close();
}
END_TEST

START_TEST(test_two_materials)
{
    fixture_open(32);
    for (size_t i = 0; i < fx.n; i++)
        fx.voxels[i] = i < fx.n / 2 ? 7 : 1000;
    chunk_encoding enc = round_trip(CODEC_PALETTE);
    ck_assert_uint_lt(enc.length, 200);
    fx.voxels[fx.n - 1] = 7; /* a single odd voxel at the very end */
    fx.voxels[0] = 65535;
    round_trip(CODEC_PALETTE);
    fixture_close();
}
END_TEST

START_TEST(test_random_all_values)
{
    fixture_open(32);
    uint64_t state = 1;
    for (size_t i = 0; i < fx.n; i++)
        fx.voxels[i] = (uint16_t)splitmix64(&state);
    round_trip(CODEC_SHUFFLE);
    fixture_close();
}
END_TEST

/* Palette sizes at each bit-width boundary; 257 distinct falls back to the shuffle. */
START_TEST(test_palette_widths)
{
    static const int sizes[] = {2, 3, 4, 5, 16, 17, 256, 257};
    fixture_open(32);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        fill_distinct(sizes[s], (uint64_t)sizes[s]);
        round_trip(sizes[s] <= CODEC_PALETTE_MAX ? CODEC_PALETTE : CODEC_SHUFFLE);
    }
    fixture_close();
}
END_TEST

START_TEST(test_edges)
{
    static const int edges[] = {16, 64, 256};
    for (size_t e = 0; e < sizeof edges / sizeof *edges; e++) {
        fixture_open(edges[e]);
        fill_distinct(5, 9);
        round_trip(CODEC_PALETTE);
        uint64_t state = 3;
        for (size_t i = 0; i < fx.n; i++)
            fx.voxels[i] = (uint16_t)splitmix64(&state);
        round_trip(CODEC_SHUFFLE);
        fixture_close();
    }
}
END_TEST

START_TEST(test_forced_codecs)
{
    fixture_open(16);
    strata_error err = {0};
    chunk_encoding enc;
    fill_distinct(3, 5);
    for (int codec = CODEC_SHUFFLE; codec <= CODEC_PALETTE; codec++) {
        ck_assert_int_eq(
            chunk_encode_as(fx.voxels, 16, 1, codec, fx.scratch, fx.payload, &enc, &err),
            STRATA_OK);
        ck_assert_int_eq(enc.codec, codec);
        ck_assert_int_eq(decode_status(fx.payload, enc.length, codec), STRATA_OK);
        ck_assert(memcmp(fx.voxels, fx.decoded, fx.n * 2) == 0);
    }
    /* A forced palette of a uniform chunk (count 1) is valid. */
    memset(fx.voxels, 0, fx.n * 2);
    ck_assert_int_eq(
        chunk_encode_as(fx.voxels, 16, 1, CODEC_PALETTE, fx.scratch, fx.payload, &enc, &err),
        STRATA_OK);
    ck_assert_int_eq(decode_status(fx.payload, enc.length, CODEC_PALETTE), STRATA_OK);
    fill_distinct(300, 1);
    ck_assert_int_eq(
        chunk_encode_as(fx.voxels, 16, 1, CODEC_PALETTE, fx.scratch, fx.payload, &enc, &err),
        STRATA_ERR_ARG);
    ck_assert_int_eq(
        chunk_encode_as(fx.voxels, 16, 1, CODEC_UNIFORM, fx.scratch, fx.payload, &enc, &err),
        STRATA_ERR_ARG);
    fixture_close();
}
END_TEST

/* Compaction's recompression: a level-1 frame of a chunk with runs becomes a
 * smaller frame of the same content (content size and checksum recorded) that
 * decodes to the same voxels; a frame already at its best is left alone;
 * a cut or damaged frame is STRATA_ERR_CORRUPT and left as it was. */
START_TEST(test_recompress)
{
    fixture_open(32);
    strata_error err = {0};
    chunk_encoding enc;
    codec_buffer content = {0}, out = {0};
    for (size_t i = 0; i < fx.n; i++) /* layers with a wavy boundary: zstd has runs to find */
        fx.voxels[i] = (uint16_t)(1 + (i / 1024 + (i % 32) / 7 + (i / 32 % 32) / 5) % 9);
    for (int codec = CODEC_SHUFFLE; codec <= CODEC_PALETTE; codec++) {
        ck_assert_int_eq(
            chunk_encode_as(fx.voxels, 32, 1, codec, fx.scratch, fx.payload, &enc, &err),
            STRATA_OK);
        uint32_t length = (uint32_t)enc.length;
        ck_assert_int_eq(chunk_recompress(fx.payload, &length, 19, &content, &out, &err),
                         STRATA_OK);
        ck_assert_uint_lt(length, enc.length);
        ck_assert_uint_eq(ZSTD_getFrameContentSize(fx.payload, length),
                          codec == CODEC_SHUFFLE ? 2 * fx.n : 2 + 2 * 9 + fx.n / 2);
        ck_assert_int_eq(decode_status(fx.payload, length, codec), STRATA_OK);
        ck_assert(memcmp(fx.voxels, fx.decoded, fx.n * 2) == 0);
        /* again at a lower level: not smaller, so unchanged */
        uint32_t again = length;
        uint8_t *before = malloc(length);
        ck_assert(before);
        memcpy(before, fx.payload, length);
        ck_assert_int_eq(chunk_recompress(fx.payload, &again, -5, &content, &out, &err), STRATA_OK);
        ck_assert_uint_eq(again, length);
        ck_assert(memcmp(before, fx.payload, length) == 0);
        /* cut, or a flipped byte in the compressed data (checksum) */
        uint32_t cut = length - 1;
        ck_assert_int_eq(chunk_recompress(fx.payload, &cut, 9, &content, &out, &err),
                         STRATA_ERR_CORRUPT);
        ck_assert_uint_eq(cut, length - 1);
        fx.payload[length / 2] ^= 0x40;
        ck_assert_int_eq(chunk_recompress(fx.payload, &again, 9, &content, &out, &err),
                         STRATA_ERR_CORRUPT);
        ck_assert_uint_eq(again, length);
        free(before);
    }
    free(content.data);
    free(out.data);
    fixture_close();
}
END_TEST

START_TEST(test_bad_arguments)
{
    fixture_open(16);
    strata_error err = {0};
    chunk_encoding enc;
    ck_assert_int_eq(chunk_encode(fx.voxels, 24, 3, fx.scratch, fx.payload, &enc, &err),
                     STRATA_ERR_ARG);
    ck_assert_int_eq(chunk_encode(fx.voxels, 512, 3, fx.scratch, fx.payload, &enc, &err),
                     STRATA_ERR_ARG);
    ck_assert_int_eq(chunk_encode(NULL, 16, 3, fx.scratch, fx.payload, &enc, &err), STRATA_ERR_ARG);
    ck_assert_int_eq(chunk_decode(fx.payload, 10, CODEC_SHUFFLE, 8, fx.scratch, fx.decoded, &err),
                     STRATA_ERR_ARG);
    ck_assert_uint_eq(chunk_encode_bound(8), 0);
    ck_assert_uint_eq(chunk_scratch_size(17), 0);
    fixture_close();
}
END_TEST

/* Encode a palette (4 ids) and a shuffle payload; corrupt them every way. */
START_TEST(test_corrupt_payloads)
{
    fixture_open(16);
    strata_error err = {0};
    chunk_encoding pal, shuf;
    uint8_t *copy = malloc(chunk_encode_bound(16) + 16);
    uint8_t *other = malloc(chunk_encode_bound(16));
    ck_assert(copy && other);
    fill_distinct(4, 2);
    ck_assert_int_eq(chunk_encode(fx.voxels, 16, 3, fx.scratch, fx.payload, &pal, &err), STRATA_OK);
    ck_assert_int_eq(pal.codec, CODEC_PALETTE);
    ck_assert_int_eq(
        chunk_encode_as(fx.voxels, 16, 3, CODEC_SHUFFLE, fx.scratch, other, &shuf, &err),
        STRATA_OK);

    /* Wrong codec either way, unknown codecs, and uniform (no payload). */
    ck_assert_int_eq(decode_status(fx.payload, pal.length, CODEC_SHUFFLE), STRATA_ERR_CORRUPT);
    ck_assert_int_eq(decode_status(other, shuf.length, CODEC_PALETTE), STRATA_ERR_CORRUPT);
    ck_assert_int_eq(decode_status(fx.payload, pal.length, 3), STRATA_ERR_CORRUPT);
    ck_assert_int_eq(decode_status(fx.payload, pal.length, -1), STRATA_ERR_CORRUPT);
    ck_assert_int_eq(decode_status(fx.payload, pal.length, CODEC_UNIFORM), STRATA_ERR_CORRUPT);
    ck_assert_int_eq(decode_status(NULL, 0, CODEC_PALETTE), STRATA_ERR_CORRUPT);

    /* Every truncation, read from an exact-size heap copy so ASan sees overreads. */
    for (size_t len = 0; len < pal.length; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, fx.payload, len);
        ck_assert_int_eq(decode_status(cut, len, CODEC_PALETTE), STRATA_ERR_CORRUPT);
        free(cut);
    }
    /* Trailing bytes, including a second valid frame. */
    memcpy(copy, fx.payload, pal.length);
    copy[pal.length] = 0;
    ck_assert_int_eq(decode_status(copy, pal.length + 1, CODEC_PALETTE), STRATA_ERR_CORRUPT);
    ck_assert_uint_le(2 * pal.length, chunk_encode_bound(16) + 16);
    memcpy(copy + pal.length, fx.payload, pal.length);
    ck_assert_int_eq(decode_status(copy, 2 * pal.length, CODEC_PALETTE), STRATA_ERR_CORRUPT);

    /*
     * Every single flipped bit of both payloads: CORRUPT, or OK with the
     * original voxels when the flip cannot change the content (the frame
     * header's unused bit, which decoders must ignore, or a bit of an entropy
     * table no symbol uses). Such flips are rare; the store's CRC over the
     * payload catches them too.
     */
    const uint8_t *sources[2] = {fx.payload, other};
    size_t lengths[2] = {pal.length, shuf.length};
    int codecs[2] = {CODEC_PALETTE, CODEC_SHUFFLE};
    size_t flips = 0, harmless = 0;
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < lengths[p]; i++)
            for (int bit = 0; bit < 8; bit++) {
                memcpy(copy, sources[p], lengths[p]);
                copy[i] ^= (uint8_t)(1u << bit);
                strata_status st = decode_status(copy, lengths[p], codecs[p]);
                flips++;
                ck_assert_msg(st == STRATA_ERR_CORRUPT || st == STRATA_OK,
                              "payload %d byte %zu bit %d: status %d", p, i, bit, st);
                if (st == STRATA_OK) {
                    harmless++;
                    ck_assert_msg(memcmp(fx.voxels, fx.decoded, fx.n * 2) == 0,
                                  "payload %d byte %zu bit %d: wrong voxels accepted", p, i, bit);
                }
            }
    ck_assert_uint_lt(harmless * 100, flips);
    free(copy);
    free(other);
    fixture_close();
}
END_TEST

/* Well-formed zstd frames with malformed palette contents. */
static strata_status decode_content(const uint8_t *content, size_t size)
{
    size_t cap = ZSTD_compressBound(size);
    uint8_t *frame = malloc(cap);
    size_t len = ZSTD_compress(frame, cap, content, size, 1);
    ck_assert(!ZSTD_isError(len));
    strata_status st = decode_status(frame, len, CODEC_PALETTE);
    free(frame);
    return st;
}

START_TEST(test_corrupt_palette_contents)
{
    fixture_open(16);
    size_t packed = fx.n * 2 / 8; /* 3 ids: 2 bits each */
    size_t size = 2 + 6 + packed;
    uint8_t *content = calloc(1, fx.n * 3);
    uint8_t good[8] = {3, 0, 1, 0, 5, 0, 9, 0};
    memcpy(content, good, sizeof good);
    ck_assert_int_eq(decode_content(content, size), STRATA_OK);
    content[8 + 100] = 0x30; /* index 3 >= count 3 */
    ck_assert_int_eq(decode_content(content, size), STRATA_ERR_CORRUPT);
    content[8 + 100] = 0x20; /* index 2: valid */
    ck_assert_int_eq(decode_content(content, size), STRATA_OK);
    ck_assert_uint_eq(fx.decoded[4 * 100 + 2], 9);
    content[4] = 0; /* ids 1, 0, 9: not ascending */
    ck_assert_int_eq(decode_content(content, size), STRATA_ERR_CORRUPT);
    content[4] = 1; /* duplicate ids */
    ck_assert_int_eq(decode_content(content, size), STRATA_ERR_CORRUPT);
    content[4] = 5;
    ck_assert_int_eq(decode_content(content, size - 1), STRATA_ERR_CORRUPT);
    ck_assert_int_eq(decode_content(content, size + 1), STRATA_ERR_CORRUPT);
    content[0] = 0; /* count 0 */
    ck_assert_int_eq(decode_content(content, size), STRATA_ERR_CORRUPT);
    content[0] = 1; /* count 257: larger than any palette content */
    content[1] = 1;
    ck_assert_int_eq(decode_content(content, 2 + 514 + fx.n), STRATA_ERR_CORRUPT);
    content[0] = 0x2c; /* count 300 in a content of plausible size */
    ck_assert_int_eq(decode_content(content, size), STRATA_ERR_CORRUPT);
    content[0] = 4; /* count 4 with the size of count 3 */
    content[1] = 0;
    ck_assert_int_eq(decode_content(content, size), STRATA_ERR_CORRUPT);

    /* 4-bit indices (count 5): an index of 5 in any nibble is refused. */
    memset(content, 0, fx.n * 3);
    uint8_t five[12] = {5, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0x10, 0x27};
    memcpy(content, five, sizeof five);
    size_t size4 = 2 + 10 + fx.n / 2;
    ck_assert_int_eq(decode_content(content, size4), STRATA_OK);
    content[12 + 333] = 0x4f & 0x43; /* indices 3, 4: valid */
    ck_assert_int_eq(decode_content(content, size4), STRATA_OK);
    ck_assert_uint_eq(fx.decoded[2 * 333], 4);
    ck_assert_uint_eq(fx.decoded[2 * 333 + 1], 0x2710);
    content[12 + 333] = 0x50; /* high nibble 5 >= count 5 */
    ck_assert_int_eq(decode_content(content, size4), STRATA_ERR_CORRUPT);
    content[12 + 333] = 0x05; /* low nibble */
    ck_assert_int_eq(decode_content(content, size4), STRATA_ERR_CORRUPT);

    /* 1-bit indices with a single id: any set bit is an index of 1 >= count 1. */
    memset(content, 0, fx.n * 3);
    uint8_t one[4] = {1, 0, 7, 0};
    memcpy(content, one, sizeof one);
    size_t size1 = 2 + 2 + fx.n / 8;
    ck_assert_int_eq(decode_content(content, size1), STRATA_OK);
    ck_assert_uint_eq(fx.decoded[fx.n - 1], 7);
    content[4 + fx.n / 8 - 1] = 0x80;
    ck_assert_int_eq(decode_content(content, size1), STRATA_ERR_CORRUPT);
    free(content);

    /* A frame without a recorded content size is refused. */
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    uint8_t small[8] = {0}, frame[64];
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    ZSTD_outBuffer out = {frame, sizeof frame, 0};
    ZSTD_inBuffer in = {small, sizeof small, 0};
    ck_assert_uint_eq(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end), 0);
    ck_assert_int_eq(decode_status(frame, out.pos, CODEC_PALETTE), STRATA_ERR_CORRUPT);
    ZSTD_freeCCtx(cctx);
    fixture_close();
}
END_TEST

START_TEST(test_checksum)
{
    uint8_t blob[1000];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)(i * 31 + 7);
    uint32_t crc = checksum_update(0, blob, sizeof blob);
    ck_assert_uint_eq(checksum_update(checksum_update(0, blob, 400), blob + 400, 600), crc);
    ck_assert_uint_eq(checksum_update(0, "123456789", 9), 0xcbf43926u); /* CRC-32 check value */
    for (size_t i = 0; i < sizeof blob; i += 37) {
        blob[i] ^= 0x10;
        ck_assert_uint_ne(checksum_update(0, blob, sizeof blob), crc);
        blob[i] ^= 0x10;
    }
    ck_assert_uint_eq(checksum_update(0, blob, sizeof blob), crc);
}
END_TEST

/* Random chunks from a fixed seed: boxes of random materials over a random base. */
START_TEST(test_property_random_chunks)
{
    static const int edges[] = {16, 32};
    uint64_t state = 20240601;
    for (size_t e = 0; e < 2; e++) {
        fixture_open(edges[e]);
        for (int round = 0; round < 60; round++) {
            int distinct = 1 + (int)(splitmix64(&state) % (round % 3 == 0 ? 600 : 20));
            uint16_t base = (uint16_t)splitmix64(&state);
            for (size_t i = 0; i < fx.n; i++)
                fx.voxels[i] = base;
            int boxes = (int)(splitmix64(&state) % 40);
            for (int b = 0; b < boxes; b++) {
                int lo[3], hi[3];
                for (int a = 0; a < 3; a++) {
                    lo[a] = (int)(splitmix64(&state) % (uint64_t)fx.edge);
                    hi[a] = lo[a] + 1 + (int)(splitmix64(&state) % (uint64_t)(fx.edge - lo[a]));
                }
                uint16_t m = (uint16_t)(base + splitmix64(&state) % (uint64_t)distinct);
                for (int z = lo[2]; z < hi[2]; z++)
                    for (int y = lo[1]; y < hi[1]; y++)
                        for (int x = lo[0]; x < hi[0]; x++)
                            fx.voxels[((size_t)z * fx.edge + y) * fx.edge + x] = m;
            }
            if (round % 5 == 4) /* sprinkle noise */
                for (int k = 0; k < 500; k++)
                    fx.voxels[splitmix64(&state) % fx.n] = (uint16_t)splitmix64(&state);
            uint16_t seen[65536 / 16] = {0};
            int count = 0;
            for (size_t i = 0; i < fx.n; i++)
                if (!(seen[fx.voxels[i] >> 4] & (1u << (fx.voxels[i] & 15)))) {
                    seen[fx.voxels[i] >> 4] |= (uint16_t)(1u << (fx.voxels[i] & 15));
                    count++;
                }
            round_trip(count == 1                   ? CODEC_UNIFORM
                       : count <= CODEC_PALETTE_MAX ? CODEC_PALETTE
                                                    : CODEC_SHUFFLE);
        }
        fixture_close();
    }
}
END_TEST

/* The palette form: what chunk_encode wrote (chunk_encoded_palette) equals what
 * chunk_decode_palette reads back from the payload, and chunk_expand_palette
 * gives the voxels; a shuffle payload is not a palette. */
START_TEST(test_palette_form)
{
    static const int distincts[] = {2, 3, 4, 5, 16, 17, 256};
    fixture_open(32);
    uint8_t *saved = malloc(fx.n); /* the packed indices, 8 bits at most */
    ck_assert_ptr_nonnull(saved);
    for (size_t d = 0; d < sizeof distincts / sizeof *distincts; d++) {
        fill_distinct(distincts[d], 900 + d);
        chunk_encoding enc;
        ck_assert_int_eq(chunk_encode(fx.voxels, fx.edge, 3, fx.scratch, fx.payload, &enc, NULL),
                         STRATA_OK);
        ck_assert_int_eq(enc.codec, CODEC_PALETTE);
        chunk_palette wrote, read;
        chunk_encoded_palette(fx.scratch, fx.edge, &wrote);
        ck_assert_int_eq(wrote.count, distincts[d]);
        const int bits = wrote.count <= 2 ? 1 : wrote.count <= 4 ? 2 : wrote.count <= 16 ? 4 : 8;
        ck_assert_int_eq(wrote.bits, bits);
        const size_t packed = fx.n * (size_t)bits / 8;
        memcpy(saved, wrote.packed, packed);
        ck_assert_int_eq(
            chunk_decode_palette(fx.payload, enc.length, fx.edge, fx.scratch, &read, NULL),
            STRATA_OK);
        ck_assert_int_eq(read.count, wrote.count);
        ck_assert_int_eq(read.bits, wrote.bits); /* with the count: the same content size */
        ck_assert(memcmp(read.ids, wrote.ids, (size_t)read.count * sizeof *read.ids) == 0);
        ck_assert(memcmp(read.packed, saved, packed) == 0);
        memset(fx.decoded, 0, fx.n * sizeof *fx.decoded);
        ck_assert_int_eq(chunk_expand_palette(&read, fx.edge, fx.scratch, fx.decoded, NULL),
                         STRATA_OK);
        ck_assert(memcmp(fx.voxels, fx.decoded, fx.n * sizeof *fx.voxels) == 0);
    }
    fill_distinct(600, 5);
    chunk_encoding enc;
    chunk_palette p;
    ck_assert_int_eq(chunk_encode(fx.voxels, fx.edge, 3, fx.scratch, fx.payload, &enc, NULL),
                     STRATA_OK);
    ck_assert_int_eq(enc.codec, CODEC_SHUFFLE);
    ck_assert_int_eq(chunk_decode_palette(fx.payload, enc.length, fx.edge, fx.scratch, &p, NULL),
                     STRATA_ERR_CORRUPT);
    free(saved);
    fixture_close();
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_uniform);
    tcase_add_test(tc, test_two_materials);
    tcase_add_test(tc, test_random_all_values);
    tcase_add_test(tc, test_palette_widths);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_forced_codecs);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_corrupt_payloads);
    tcase_add_test(tc, test_corrupt_palette_contents);
    tcase_add_test(tc, test_checksum);
    tcase_add_test(tc, test_property_random_chunks);
    tcase_add_test(tc, test_palette_form);
    tcase_add_test(tc, test_recompress);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
