/* test_lod.c: chunk pyramids against brute-force modes (ties, partial edge chunks), payloads. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "index/lod.h"
#include "splitmix.h"

#define QUIET_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* Ids of kinds 4 and 5: the extremes of the id range included. */
static const uint16_t spread[17] = {0,     1,     2,     7,     255,   256,   1000,  4095, 30000,
                                    32767, 32768, 40000, 50000, 65000, 65533, 65535, 12345};

/* Voxels of a chunk: kind 0 uniform blocks of 4^3, 1 two ids (many ties), 2 many ids, 3 uniform,
 * 4 sixteen ids in 2^k blocks with scattered voxels (the dense path of lod.c), 5 the same with a
 * seventeenth id in the last slab only (the dense path gives up late and starts over). */
static void make_chunk(uint16_t *v, int C, int kind, uint64_t seed)
{
    for (int z = 0; z < C; z++)
        for (int y = 0; y < C; y++)
            for (int x = 0; x < C; x++) {
                uint64_t s = seed ^ (uint64_t)((x / 4) + 97 * (y / 4) + 9973 * (z / 4));
                uint64_t r = splitmix64(&seed);
                uint16_t m;
                switch (kind) {
                case 0:
                    m = (uint16_t)(splitmix64(&s) % 3 * 5);
                    break;
                case 1:
                    m = (uint16_t)(r % 2 ? 7 : 3);
                    break;
                case 2:
                    m = (uint16_t)(r % 40000);
                    break;
                case 4:
                case 5: {
                    uint64_t b = seed ^ (uint64_t)((x / 2) + 131 * (y / 8) + 7919 * (z / 4));
                    m = spread[splitmix64(&b) % 16];
                    if (r % 11 == 0)
                        m = spread[r / 11 % 16];
                    if (kind == 5 && z == C - 1 && x == C - 1 && y == C - 1)
                        m = spread[16];
                    break;
                }
                default:
                    m = 9;
                    break;
                }
                v[(z * C + y) * C + x] = m;
            }
}

/* Mode and count of the cell's voxels inside extent, ties to the smallest id. */
static void brute(const uint16_t *v, int C, const int ext[3], int l, int cx, int cy, int cz,
                  uint16_t *mode, uint32_t *count)
{
    static uint32_t counts[65536];
    int n = 1 << l;
    uint32_t best = 0;
    uint16_t bm = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int z = cz * n; z < (cz + 1) * n && z < ext[2]; z++)
            for (int y = cy * n; y < (cy + 1) * n && y < ext[1]; y++)
                for (int x = cx * n; x < (cx + 1) * n && x < ext[0]; x++) {
                    uint16_t m = v[(z * C + y) * C + x];
                    if (pass == 0) {
                        counts[m]++;
                        if (counts[m] > best || (counts[m] == best && m < bm))
                            best = counts[m], bm = m;
                    } else {
                        counts[m] = 0;
                    }
                }
    *mode = bm;
    *count = best;
}

static void check_pyramid(const lod_pyramid *p, const uint16_t *v, int C, const int ext[3])
{
    for (int l = p->lowest; l <= p->levels; l++) {
        int n = C >> l;
        for (int cz = 0; cz < n; cz++)
            for (int cy = 0; cy < n; cy++)
                for (int cx = 0; cx < n; cx++) {
                    uint16_t mode;
                    uint32_t count;
                    brute(v, C, ext, l, cx, cy, cz, &mode, &count);
                    size_t i = lod_cell_index(p, l, (uint32_t)cx, (uint32_t)cy, (uint32_t)cz);
                    QUIET_CHECK(p->mode[i] == mode && p->count[i] == count,
                                "C=%d level %d cell (%d,%d,%d): got %u x%u, want %u x%u", C, l, cx,
                                cy, cz, p->mode[i], p->count[i], mode, count);
                }
    }
}

/* Build with wk; every cell against brute force, and the histogram ascending and
 * counting exactly the voxels inside the extent. Returns its entries (*hist). */
static size_t build_checked(lod_work *wk, const uint16_t *v, int C, const int ext[3],
                            const lod_count **hist)
{
    const lod_pyramid *p;
    size_t n;
    ck_assert_int_eq(lod_build(wk, v, ext, &p, hist, &n, NULL), STRATA_OK);
    check_pyramid(p, v, C, ext);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += (*hist)[i].count;
        QUIET_CHECK(i == 0 || (*hist)[i].material > (*hist)[i - 1].material,
                    "histogram not ascending");
    }
    ck_assert_uint_eq(total, (uint64_t)ext[0] * ext[1] * ext[2]);
    return n;
}

static void run_case(int C, int kind, const int ext[3], uint64_t seed)
{
    uint16_t *v = malloc((size_t)C * C * C * sizeof *v);
    ck_assert_ptr_nonnull(v);
    make_chunk(v, C, kind, seed);
    lod_work *wk;
    ck_assert_int_eq(lod_work_create(C, &wk, NULL), STRATA_OK);
    const lod_count *hist;
    const size_t n = build_checked(wk, v, C, ext, &hist);
    /* Round trip through the stored payload. */
    const uint8_t *payload;
    size_t length;
    ck_assert_int_eq(lod_encode(wk, 3, &payload, &length, NULL), STRATA_OK);
    uint8_t *copy = malloc(length);
    memcpy(copy, payload, length);
    lod_pyramid back;
    lod_count *h2;
    size_t n2;
    ck_assert_int_eq(lod_decode(copy, length, C, &back, &h2, &n2, NULL), STRATA_OK);
    check_pyramid(&back, v, C, ext);
    ck_assert_uint_eq(n2, n);
    for (size_t i = 0; i < n; i++)
        QUIET_CHECK(h2[i].material == hist[i].material && h2[i].count == hist[i].count,
                    "histogram %zu", i);
    lod_pyramid_free(&back);
    free(h2);
    /* The histogram alone (what the octree reads) is the same, and checked alike. */
    ck_assert_int_eq(lod_decode_histogram(copy, length, C, &h2, &n2, NULL), STRATA_OK);
    ck_assert_uint_eq(n2, n);
    for (size_t i = 0; i < n; i++)
        QUIET_CHECK(h2[i].material == hist[i].material && h2[i].count == hist[i].count,
                    "histogram-only decode %zu", i);
    free(h2);
    ck_assert_int_eq(lod_decode_histogram(copy, length - 1, C, &h2, &n2, NULL), STRATA_ERR_CORRUPT);
    /* Corruption is an error, never a crash. */
    lod_pyramid bad;
    ck_assert_int_eq(lod_decode(copy, length - 1, C, &bad, NULL, NULL, NULL), STRATA_ERR_CORRUPT);
    copy[length / 2] ^= 0x5a;
    strata_status st = lod_decode(copy, length, C, &bad, NULL, NULL, NULL);
    ck_assert(st == STRATA_ERR_CORRUPT || st == STRATA_OK);
    if (st == STRATA_OK)
        lod_pyramid_free(&bad);
    ck_assert_int_eq(lod_decode(copy, length, C * 2, &bad, NULL, NULL, NULL), STRATA_ERR_CORRUPT);
    /* A payload of a later version is refused as such, not as corrupt. */
    {
        copy[length / 2] ^= 0x5a; /* undo the flip above */
        size_t raw_size = (size_t)ZSTD_getFrameContentSize(copy, length);
        uint8_t *raw = malloc(raw_size), *newer = malloc(ZSTD_compressBound(raw_size));
        ck_assert(raw && newer);
        ck_assert_uint_eq(ZSTD_decompress(raw, raw_size, copy, length), raw_size);
        raw[4] = LOD_VERSION + 1;
        size_t n_newer = ZSTD_compress(newer, ZSTD_compressBound(raw_size), raw, raw_size, 1);
        ck_assert(!ZSTD_isError(n_newer));
        ck_assert_int_eq(lod_decode(newer, n_newer, C, &bad, NULL, NULL, NULL), STRATA_ERR_VERSION);
        free(raw);
        free(newer);
    }
    free(copy);
    lod_work_free(wk);
    free(v);
}

/* A version-1 payload (materials as byte planes), written by the encoder before
 * version 2: worlds written then still read. The chunk is make_chunk(kind 0,
 * seed 1000) at C = 16 with every 7th voxel of material 5 set to 300, extent
 * 16 x 13 x 9. */
static const uint8_t version1_payload[] = {
    0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x49, 0x04, 0x1d, 0x0c, 0x00, 0xc2, 0x8f, 0x2b, 0x24, 0xa0, 0x27,
    0xe9, 0xff, 0xff, 0xff, 0xe7, 0x58, 0x55, 0xe3, 0x8e, 0x6b, 0x56, 0xbf, 0x8f, 0xef, 0xab, 0x88,
    0xc3, 0x32, 0x1b, 0x09, 0x21, 0x9b, 0xe8, 0xfa, 0xfd, 0xff, 0x9b, 0x6c, 0x64, 0xcb, 0x94, 0xa4,
    0xdc, 0x29, 0xc6, 0x18, 0x63, 0xcc, 0xdc, 0xd1, 0xe7, 0x3b, 0xe3, 0xd1, 0xcc, 0xec, 0xec, 0x0e,
    0x6d, 0x9f, 0x6f, 0x1f, 0xfe, 0xfc, 0xbb, 0xfd, 0xfb, 0xf9, 0xd0, 0xb7, 0xed, 0x73, 0xc6, 0xf3,
    0x7d, 0x3f, 0x9f, 0xaf, 0xcf, 0x3f, 0x9f, 0xf9, 0xe7, 0x33, 0xff, 0xfe, 0xcd, 0x67, 0xfe, 0x37,
    0x66, 0x87, 0x02, 0x90, 0x52, 0x07, 0x6a, 0x29, 0xa5, 0xd4, 0xb2, 0x3b, 0xe7, 0x0c, 0xcf, 0x79,
    0xc2, 0x38, 0xc7, 0xc0, 0x73, 0x8e, 0x03, 0x13, 0x09, 0x51, 0x60, 0x4a, 0xf0, 0x28, 0xc9, 0x82,
    0xa4, 0x94, 0x8e, 0x82, 0x64, 0x51, 0x8e, 0x74, 0x20, 0x4b, 0xca, 0xe6, 0xb3, 0x7d, 0x66, 0xbe,
    0x08, 0x21, 0xb4, 0xd6, 0x5a, 0x1d, 0x10, 0x40, 0x14, 0x87, 0x87, 0x08, 0x88, 0x66, 0x66, 0x9b,
    0xed, 0xb2, 0x45, 0x6b, 0xda, 0x32, 0xb4, 0xd6, 0xd0, 0x1a, 0x41, 0x6b, 0x0b, 0x63, 0xd0, 0xec,
    0xdb, 0x1a, 0x00, 0xa8, 0xad, 0x5b, 0x1b, 0x04, 0x85, 0x84, 0x85, 0x7b, 0xa8, 0x61, 0xb2, 0x1a,
    0x92, 0x16, 0xf6, 0xd8, 0x0e, 0x60, 0x02, 0x52, 0x56, 0xd6, 0x01, 0x12, 0xe0, 0xb7, 0xa9, 0xd3,
    0x68, 0x94, 0xec, 0xff, 0x5f, 0x9b, 0x01, 0x2c, 0xf3, 0xd4, 0x54, 0xb5, 0x5f, 0x28, 0xd1, 0x0f,
    0x90, 0xf5, 0xa9, 0x0a, 0xab, 0xcd, 0x99, 0x03, 0x33, 0x92, 0x3a, 0x33, 0x56, 0x66, 0x12, 0x24,
    0x43, 0x09, 0x6a, 0x28, 0x01, 0x06, 0x3d, 0x42, 0x88, 0x97, 0xb3, 0x5d, 0x42, 0xed, 0x9b, 0x65,
    0xd1, 0xa2, 0x81, 0xe8, 0x61, 0x33, 0xe5, 0x13, 0xd4, 0x00, 0x39, 0x85, 0xe5, 0x14, 0x15, 0x7b,
    0x2c, 0x2b, 0x5a, 0x4e, 0xef, 0xcc, 0xe4, 0x3f, 0x3d, 0x12, 0xf8, 0xba, 0xeb, 0xed, 0x91, 0xd1,
    0xbf, 0xf4, 0xd1, 0x5d, 0x70, 0x77, 0x8a, 0x4b, 0x10, 0x83, 0x89, 0x35, 0x09, 0xb6, 0x7c, 0x6b,
    0x84, 0x31, 0x3d, 0x02, 0xc5, 0x20, 0x70, 0x72, 0x68, 0x75, 0x05, 0x01, 0x8b, 0xf0, 0xa9, 0x5d,
    0x19, 0xe0, 0x05, 0x28, 0x01, 0xd7, 0x82, 0xa8, 0x18, 0x05, 0xc8, 0x75, 0xb0, 0x1b, 0x55, 0xf2,
    0xdd, 0x55, 0x86, 0x0c, 0x52, 0x4f, 0x93, 0xf4, 0x46, 0x38, 0xa5, 0x1c, 0xb6, 0x66, 0xa4, 0xf7,
    0x07, 0x35, 0xbc, 0x01, 0xce, 0x78, 0xad, 0x8e, 0x82, 0x23, 0xdb, 0xb6, 0xbd, 0xc8, 0xa7, 0x41,
    0xd0, 0xf7, 0xa6, 0xec, 0xa6, 0x20, 0xbb, 0x4f, 0x8a, 0x93, 0xe2, 0xc5, 0xe8, 0xc0, 0x27, 0x58,
    0xc7, 0x51, 0x7b, 0xb4, 0x73, 0xde, 0xf8, 0x7e, 0xcf, 0xff, 0x32, 0xa0, 0x0a, 0x25, 0x28, 0xe1,
    0x4d,
};

/* The decompressed content of a frame (test helper). */
static uint8_t *frame_content(const uint8_t *frame, size_t length, size_t *size)
{
    *size = (size_t)ZSTD_getFrameContentSize(frame, length);
    uint8_t *raw = malloc(*size);
    ck_assert_ptr_nonnull(raw);
    ck_assert_uint_eq(ZSTD_decompress(raw, *size, frame, length), *size);
    return raw;
}

static size_t compress_into(uint8_t *out, size_t cap, const uint8_t *raw, size_t size)
{
    size_t n = ZSTD_compress(out, cap, raw, size, 1);
    ck_assert(!ZSTD_isError(n));
    return n;
}

/* Version 3: only levels >= lowest stored; a full entry cut to the same bytes;
 * packs of many entries found by key; malformed packs and entries refused. */
START_TEST(coarse_levels_and_packs)
{
    /* 3 materials (4-bit modes), 17 (8-bit), thousands (16-bit) */
    const int C = 32, kinds[3] = {0, 5, 2};
    const int exts[3][3] = {{32, 32, 32}, {32, 32, 32}, {32, 9, 32}};
    uint16_t *v = malloc((size_t)C * C * C * sizeof *v);
    ck_assert_ptr_nonnull(v);
    lod_work *wk;
    ck_assert_int_eq(lod_work_create(C, &wk, NULL), STRATA_OK);
    ck_assert_int_eq(lod_stored_lowest(16), 4);
    ck_assert_int_eq(lod_stored_lowest(32), 4);
    uint8_t *entries[3];
    size_t sizes[3];
    const uint64_t keys[3] = {5, 9, 1000000007};
    for (int k = 0; k < 3; k++) {
        make_chunk(v, C, kinds[k], 40 + (uint64_t)k);
        const lod_pyramid *p;
        const lod_count *hist;
        size_t n;
        ck_assert_int_eq(lod_build(wk, v, exts[k], &p, &hist, &n, NULL), STRATA_OK);
        const uint8_t *out;
        size_t len;
        ck_assert_int_eq(lod_encode_levels(wk, 3, 0, &out, &len, NULL), STRATA_ERR_ARG);
        /* the full pyramid, its content cut to levels 4..5 */
        ck_assert_int_eq(lod_encode(wk, 3, &out, &len, NULL), STRATA_OK);
        size_t full_size;
        uint8_t *full = frame_content(out, len, &full_size);
        uint8_t *cut;
        size_t cut_size;
        ck_assert_int_eq(lod_entry_cut(full, full_size, C, 4, &cut, &cut_size, NULL), STRATA_OK);
        /* the coarse levels encoded directly: the same bytes */
        ck_assert_int_eq(lod_encode_levels(wk, 3, 4, &out, &len, NULL), STRATA_OK);
        uint8_t *coarse = frame_content(out, len, &sizes[k]);
        ck_assert_uint_lt(sizes[k], full_size);
        ck_assert_uint_eq(cut_size, sizes[k]);
        ck_assert(!memcmp(cut, coarse, cut_size));
        lod_pyramid back;
        lod_count *h2;
        size_t n2;
        ck_assert_int_eq(lod_decode(out, len, C, &back, &h2, &n2, NULL), STRATA_OK);
        ck_assert_int_eq(back.lowest, 4);
        check_pyramid(&back, v, C, exts[k]);
        ck_assert_uint_eq(n2, n);
        lod_pyramid_free(&back);
        free(h2);
        /* a lowest level beyond the chunk's, or a version-2 entry naming one: corrupt */
        coarse[6] = 6;
        ck_assert_int_eq(lod_parse(coarse, sizes[k], C, &back, NULL, NULL, NULL),
                         STRATA_ERR_CORRUPT);
        coarse[6] = 4;
        coarse[4] = 2;
        ck_assert_int_eq(lod_parse(coarse, sizes[k], C, &back, NULL, NULL, NULL),
                         STRATA_ERR_CORRUPT);
        coarse[4] = 3;
        entries[k] = coarse;
        free(full);
        free(cut);
    }
    uint8_t *pack;
    size_t pack_len;
    ck_assert_int_eq(
        lod_pack(keys, (const uint8_t *const *)entries, sizes, 3, 19, &pack, &pack_len, NULL),
        STRATA_OK);
    for (int k = 0; k < 3; k++) {
        make_chunk(v, C, kinds[k], 40 + (uint64_t)k);
        lod_pyramid back;
        ck_assert_int_eq(lod_decode_key(pack, pack_len, C, keys[k], &back, NULL, NULL, NULL),
                         STRATA_OK);
        check_pyramid(&back, v, C, exts[k]);
        lod_pyramid_free(&back);
    }
    lod_pyramid bad;
    ck_assert_int_eq(lod_decode_key(pack, pack_len, C, 7, &bad, NULL, NULL, NULL),
                     STRATA_ERR_CORRUPT);
    ck_assert_int_eq(lod_decode(pack, pack_len, C, &bad, NULL, NULL, NULL), STRATA_ERR_CORRUPT);
    /* compaction's packs are compact (SLPC); the SLPK layout is still read */
    size_t size;
    uint8_t *raw = frame_content(pack, pack_len, &size);
    ck_assert_mem_eq(raw, LOD_CPACK_MAGIC, 4);
    size_t slpk_size = 8 + 12 * 3;
    for (int k = 0; k < 3; k++)
        slpk_size += sizes[k];
    uint8_t *slpk = malloc(slpk_size), *re = malloc(ZSTD_compressBound(slpk_size));
    ck_assert(slpk && re);
    uint32_t three = 3, end = 0;
    memcpy(slpk, LOD_PACK_MAGIC, 4);
    memcpy(slpk + 4, &three, 4);
    for (int k = 0; k < 3; k++) {
        memcpy(slpk + 8 + 8 * k, &keys[k], 8);
        memcpy(slpk + 8 + 36 + end, entries[k], sizes[k]);
        end += (uint32_t)sizes[k];
        memcpy(slpk + 8 + 24 + 4 * k, &end, 4);
    }
    size_t n = compress_into(re, ZSTD_compressBound(slpk_size), slpk, slpk_size);
    for (int k = 0; k < 3; k++) {
        make_chunk(v, C, kinds[k], 40 + (uint64_t)k);
        lod_pyramid back;
        ck_assert_int_eq(lod_decode_key(re, n, C, keys[k], &back, NULL, NULL, NULL), STRATA_OK);
        check_pyramid(&back, v, C, exts[k]);
        lod_pyramid_free(&back);
    }
    /* a damaged directory: keys out of order, an end beyond the content */
    for (int damage = 0; damage < 3; damage++) {
        uint8_t *copy = malloc(slpk_size);
        memcpy(copy, slpk, slpk_size);
        if (damage == 0)
            memcpy(copy + 8 + 8, &keys[0], 8); /* key 1 = key 0 */
        else if (damage == 1)
            copy[8 + 24 + 8] ^= 0x40; /* the last end */
        else
            copy[4] = 4; /* four entries claimed */
        n = compress_into(re, ZSTD_compressBound(slpk_size), copy, slpk_size);
        ck_assert_int_eq(lod_decode_key(re, n, C, keys[2], &bad, NULL, NULL, NULL),
                         STRATA_ERR_CORRUPT);
        free(copy);
    }
    /* a damaged compact pack: entries claimed, levels, a stream's length, a cut
     * stream (the whole content shorter), every byte of the header */
    for (int damage = 0; damage < 5 + 52; damage++) {
        uint8_t *copy = malloc(size);
        memcpy(copy, raw, size);
        size_t len = size;
        if (damage == 0)
            copy[4] = 4;
        else if (damage == 1)
            copy[8] = 6; /* levels */
        else if (damage == 2)
            copy[12 + 4 * 4] += 1; /* the histogram stream one byte longer */
        else if (damage == 3)
            copy[12 + 4 * 9] = 1; /* a third count plane where levels 4 have two */
        else if (damage == 4)
            len -= 1;
        else
            copy[damage - 5] ^= 0x5a;
        if (damage == 3)
            len += 1; /* the plane's byte */
        uint8_t *grown = realloc(copy, len + 1);
        ck_assert_ptr_nonnull(grown);
        copy = grown;
        copy[len - (damage == 3)] = 0; /* damage 3's extra byte (or a spare one) */
        n = compress_into(re, ZSTD_compressBound(slpk_size), copy, len);
        strata_status st = lod_decode_key(re, n, C, keys[2], &bad, NULL, NULL, NULL);
        ck_assert_msg(st == STRATA_ERR_CORRUPT, "damage %d: status %d", damage, st);
        free(copy);
    }
    /* entries of other levels (a whole version-3 pyramid beside cut ones): SLPK */
    const uint8_t *whole;
    size_t whole_len;
    make_chunk(v, C, 0, 40);
    {
        const lod_pyramid *p;
        const lod_count *hist;
        size_t hn;
        ck_assert_int_eq(lod_build(wk, v, exts[0], &p, &hist, &hn, NULL), STRATA_OK);
    }
    ck_assert_int_eq(lod_encode_levels(wk, 3, 2, &whole, &whole_len, NULL), STRATA_OK);
    size_t whole_size;
    uint8_t *whole_entry = frame_content(whole, whole_len, &whole_size);
    const uint8_t *mixed_entries[2] = {whole_entry, entries[1]};
    size_t mixed_sizes[2] = {whole_size, sizes[1]};
    uint8_t *mixed_pack;
    size_t mixed_len, mixed_size;
    ck_assert_int_eq(
        lod_pack(keys, mixed_entries, mixed_sizes, 2, 19, &mixed_pack, &mixed_len, NULL),
        STRATA_OK);
    uint8_t *mixed_raw = frame_content(mixed_pack, mixed_len, &mixed_size);
    ck_assert_mem_eq(mixed_raw, LOD_PACK_MAGIC, 4);
    lod_pyramid back;
    ck_assert_int_eq(lod_decode_key(mixed_pack, mixed_len, C, keys[0], &back, NULL, NULL, NULL),
                     STRATA_OK);
    ck_assert_int_eq(back.lowest, 2);
    check_pyramid(&back, v, C, exts[0]);
    lod_pyramid_free(&back);
    free(mixed_raw);
    free(mixed_pack);
    free(whole_entry);
    free(slpk);
    free(re);
    free(raw);
    free(pack);
    for (int k = 0; k < 3; k++)
        free(entries[k]);
    lod_work_free(wk);
    free(v);
}
END_TEST

START_TEST(version1_payload_still_reads)
{
    const int C = 16, ext[3] = {16, 13, 9};
    uint16_t *v = malloc((size_t)C * C * C * sizeof *v);
    ck_assert_ptr_nonnull(v);
    make_chunk(v, C, 0, 1000);
    for (int i = 0; i < C * C * C; i += 7)
        if (v[i] == 5)
            v[i] = 300;
    lod_pyramid back;
    lod_count *h;
    size_t n;
    ck_assert_int_eq(lod_decode(version1_payload, sizeof version1_payload, C, &back, &h, &n, NULL),
                     STRATA_OK);
    check_pyramid(&back, v, C, ext);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(h[3].material, 300);
    lod_pyramid_free(&back);
    free(h);
    free(v);
}
END_TEST

/* Pack the voxels of a whole chunk as the codec's palette form: ascending ids,
 * one index per voxel at `bits` bits, LSB first. Returns the id count. */
static int pack_palette(const uint16_t *v, size_t n, int bits, uint16_t ids[16], uint8_t *packed)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        int at = 0;
        while (at < count && ids[at] < v[i])
            at++;
        if (at < count && ids[at] == v[i])
            continue;
        ck_assert_int_lt(count, 16);
        memmove(ids + at + 1, ids + at, (size_t)(count - at) * sizeof *ids);
        ids[at] = v[i];
        count++;
    }
    memset(packed, 0, n * (size_t)bits / 8);
    for (size_t i = 0; i < n; i++) {
        int index = 0;
        while (ids[index] != v[i])
            index++;
        packed[i * (size_t)bits / 8] |= (uint8_t)(index << (i * (size_t)bits % 8));
    }
    return count;
}

/* The palette path builds the pyramid from 1, 2 and 4-bit indices: the payload
 * equals the one built from the voxels, byte for byte; an index >= the count
 * is corrupt. */
START_TEST(palette_indices_give_the_same_payload)
{
    const int edges[] = {16, 32};
    uint64_t seed = 99;
    for (int e = 0; e < 2; e++)
        for (int materials = 1; materials <= 16; materials++) {
            const int C = edges[e];
            const size_t n = (size_t)C * C * C;
            const int ext[3] = {C, C, C};
            uint16_t *v = malloc(n * sizeof *v), ids[16];
            uint8_t *packed = malloc(n / 2);
            ck_assert(v && packed);
            /* blocks of 2^k voxels of `materials` ids spread over the id range, a few voxels
             * scattered: uniform, mixed and tied cells at every level */
            const int k = 1 + (int)(splitmix64(&seed) % 3);
            for (size_t i = 0; i < n; i++) {
                const size_t x = i % (size_t)C, y = i / (size_t)C % (size_t)C,
                             z = i / ((size_t)C * C);
                uint64_t b = seed ^ ((x >> k) + 131 * (y >> k) + 7919 * (z >> k));
                uint64_t r = splitmix64(&b);
                v[i] = spread[r % (uint64_t)materials];
                if (splitmix64(&seed) % 13 == 0)
                    v[i] = spread[splitmix64(&seed) % (uint64_t)materials];
            }
            lod_work *wk;
            ck_assert_int_eq(lod_work_create(C, &wk, NULL), STRATA_OK);
            const lod_pyramid *p;
            const lod_count *h1, *h2;
            size_t n1, n2, len1, len2;
            const uint8_t *out;
            ck_assert_int_eq(lod_build(wk, v, ext, &p, &h1, &n1, NULL), STRATA_OK);
            if (n1 < 2) { /* one material: no pyramid payload to compare */
                lod_work_free(wk);
                free(v);
                free(packed);
                continue;
            }
            ck_assert_int_eq(lod_encode(wk, 3, &out, &len1, NULL), STRATA_OK);
            uint8_t *first = malloc(len1);
            memcpy(first, out, len1);
            /* the palette is the histogram's ids (a whole chunk) */
            int c = 0;
            for (size_t i = 0; i < n1; i++)
                ids[c++] = h1[i].material;
            const int bits = c <= 2 ? 1 : c <= 4 ? 2 : 4;
            ck_assert_int_eq(pack_palette(v, n, bits, ids, packed), c);
            ck_assert(lod_can_summarize_palette(wk, c, ext));
            ck_assert_int_eq(lod_summarize_palette(wk, ids, c, bits, packed, &h2, &n2, NULL),
                             STRATA_OK);
            ck_assert_uint_eq(n2, n1);
            ck_assert_int_eq(lod_encode(wk, 3, &out, &len2, NULL), STRATA_OK);
            ck_assert_uint_eq(len2, len1);
            QUIET_CHECK(memcmp(out, first, len1) == 0, "C=%d %d ids: payloads differ", C, c);
            /* an index past the palette: corrupt (when the packing leaves room for one) */
            if (c < 1 << bits) {
                packed[n * (size_t)bits / 8 / 3] |= (uint8_t)((1u << bits) - 1);
                ck_assert_int_eq(lod_summarize_palette(wk, ids, c, bits, packed, &h2, &n2, NULL),
                                 STRATA_ERR_CORRUPT);
            }
            free(first);
            lod_work_free(wk);
            free(v);
            free(packed);
        }
}
END_TEST

/* The change path (lod_lanes_*): a stored image (palette form at 1, 2 or 4 bits, or
 * uniform) and random changes in order (some voxels changed twice, new materials, ties
 * made on purpose) give the payload and histogram of lod_build of the changed voxels
 * encoded at the lowest stored level, byte for byte; a 17th material abandons the
 * build, and the same scratch then builds from voxels as a fresh one. Fixed seeds. */
START_TEST(changes_give_the_payload_of_a_rebuild)
{
    const int edges[] = {16, 32};
    uint64_t seed = 1717;
    for (int e = 0; e < 2; e++) {
        const int C = edges[e], lowest = lod_stored_lowest(C);
        const size_t n = (size_t)C * C * C;
        const int ext[3] = {C, C, C};
        uint16_t *v = malloc(n * sizeof *v), ids[16];
        uint8_t *packed = malloc(n / 2), *first = NULL;
        uint32_t *at = malloc(4000 * sizeof *at);
        uint16_t *to = malloc(4000 * sizeof *to);
        uint64_t *log = malloc(4000 * sizeof *log);
        ck_assert(v && packed && at && to && log);
        lod_work *wk, *fresh;
        ck_assert_int_eq(lod_work_create(C, &wk, NULL), STRATA_OK);
        ck_assert_int_eq(lod_work_create(C, &fresh, NULL), STRATA_OK);
        for (int trial = 0; trial < 48; trial++) {
            const int kind = trial % 4, materials = 1 + (int)(splitmix64(&seed) % 12);
            const int k = 1 + (int)(splitmix64(&seed) % 3);
            for (size_t i = 0; i < n; i++) {
                const size_t x = i % (size_t)C, y = i / (size_t)C % (size_t)C,
                             z = i / ((size_t)C * C);
                uint64_t b = seed ^ ((x >> k) + 131 * (y >> k) + 7919 * (z >> k));
                v[i] = kind == 0   ? spread[3]                                     /* uniform */
                       : kind == 1 ? spread[(x + y + z) & 1]                       /* ties */
                                   : spread[splitmix64(&b) % (uint64_t)materials]; /* blocks */
            }
            int count = kind == 0 ? 1 : pack_palette(v, n, 4, ids, packed);
            if (kind == 0)
                ids[0] = v[0];
            const int bits = count <= 2 ? 1 : count <= 4 ? 2 : 4;
            if (kind)
                pack_palette(v, n, bits, ids, packed);
            /* changes: half as arrays, half as a log; in ties chunks swap pairs (exact ties) */
            const size_t changes = (size_t)(splitmix64(&seed) % 4000), half = changes / 2;
            const int extra = (int)(splitmix64(&seed) % 6); /* new materials past the palette */
            for (size_t i = 0; i < changes; i++) {
                const uint32_t voxel =
                    (uint32_t)(i && i % 7 == 0 ? (i < half ? at[i - 1] : log[i - 1] >> 40)
                                               : splitmix64(&seed) % n);
                uint16_t m = spread[splitmix64(&seed) % (uint64_t)(materials + extra)];
                if (kind == 1)
                    m = spread[splitmix64(&seed) % 2];
                if (i < half)
                    at[i] = voxel, to[i] = m;
                else
                    log[i] = (uint64_t)voxel << 40 | (uint64_t)(i & 0xffffff) << 16 | m;
                v[voxel] = m;
            }
            /* expected: a fresh scratch's build of the changed voxels */
            const lod_pyramid *p;
            const lod_count *h1, *h2;
            size_t n1, n2, len1, len2;
            const uint8_t *out;
            ck_assert_int_eq(lod_build(fresh, v, ext, &p, &h1, &n1, NULL), STRATA_OK);
            ck_assert_int_eq(lod_encode_levels(fresh, 3, lowest, &out, &len1, NULL), STRATA_OK);
            free(first);
            first = malloc(len1);
            memcpy(first, out, len1);
            int served = 0;
            ck_assert_int_eq(
                lod_lanes_begin(wk, ids, count, bits, kind ? packed : NULL, ext, &served, NULL),
                STRATA_OK);
            ck_assert(served);
            int ok =
                lod_lanes_apply(wk, at, to, half) && lod_lanes_log(wk, log + half, changes - half);
            if (!ok) { /* more than 16 materials: the voxels then build as from fresh scratch */
                ck_assert_uint_gt(n1, 16);
                ck_assert_int_eq(lod_build(wk, v, ext, &p, &h2, &n2, NULL), STRATA_OK);
            } else {
                ck_assert_int_eq(lod_lanes_end(wk, &h2, &n2, NULL), STRATA_OK);
            }
            ck_assert_uint_eq(n2, n1);
            for (size_t i = 0; i < n1; i++) {
                ck_assert_uint_eq(h2[i].material, h1[i].material);
                ck_assert_uint_eq(h2[i].count, h1[i].count);
            }
            ck_assert_int_eq(lod_encode_levels(wk, 3, lowest, &out, &len2, NULL), STRATA_OK);
            ck_assert_uint_eq(len2, len1);
            QUIET_CHECK(memcmp(out, first, len1) == 0, "C=%d trial %d: payloads differ", C, trial);
            /* the scratch builds from voxels after a lane build as a fresh one does */
            if (trial % 5 == 0) {
                ck_assert_int_eq(lod_build(wk, v, ext, &p, &h2, &n2, NULL), STRATA_OK);
                ck_assert_int_eq(lod_encode_levels(wk, 3, lowest, &out, &len2, NULL), STRATA_OK);
                ck_assert(len2 == len1 && memcmp(out, first, len1) == 0);
            }
        }
        /* an index past the palette is corrupt; a cut chunk or edge 8 is not served */
        for (size_t i = 0; i < n; i++)
            v[i] = spread[i % 3];
        int count = pack_palette(v, n, 2, ids, packed), served = 1;
        packed[n / 4 / 3] |= 0x3;
        ck_assert_int_eq(lod_lanes_begin(wk, ids, count, 2, packed, ext, &served, NULL),
                         STRATA_ERR_CORRUPT);
        const int cut[3] = {C, C - 1, C};
        ck_assert_int_eq(lod_lanes_begin(wk, ids, count, 2, packed, cut, &served, NULL), STRATA_OK);
        ck_assert(!served);
        {
            const lod_count *h_unused;
            size_t n_unused;
            ck_assert_int_eq(lod_lanes_end(wk, &h_unused, &n_unused, NULL), STRATA_ERR_ARG);
        }
        free(first);
        first = NULL;
        lod_work_free(wk);
        lod_work_free(fresh);
        free(v);
        free(packed);
        free(at);
        free(to);
        free(log);
    }
}
END_TEST

/* A palette may list an id no voxel uses (the histogram then skips it), and a
 * scratch that built from a palette then builds from voxels (sparse path) and
 * again from a palette gives the payloads of fresh scratches; edge 8 is not
 * served by the palette path. */
START_TEST(palette_unused_id_and_scratch_reuse)
{
    const int C = 32;
    const size_t n = (size_t)C * C * C;
    const int full[3] = {C, C, C}, part[3] = {C, 17, 5};
    uint16_t *v = malloc(n * sizeof *v);
    uint8_t *packed = malloc(n / 2);
    ck_assert(v && packed);
    make_chunk(v, C, 0, 4242); /* ids 0, 5, 10 in 4^3 blocks */
    /* palette 0, 5, 7 (unused), 10, 12 (unused): 4-bit indices 0, 1, 3 */
    const uint16_t ids[5] = {0, 5, 7, 10, 12};
    memset(packed, 0, n / 2);
    for (size_t i = 0; i < n; i++) {
        const unsigned index = v[i] == 0 ? 0 : v[i] == 5 ? 1 : 3;
        packed[i / 2] |= (uint8_t)(index << (4 * (i & 1)));
    }
    lod_work *fresh, *reused;
    ck_assert_int_eq(lod_work_create(C, &fresh, NULL), STRATA_OK);
    ck_assert_int_eq(lod_work_create(C, &reused, NULL), STRATA_OK);
    const lod_pyramid *p;
    const lod_count *h;
    size_t hn, len_voxels, len_palette, len_part, len;
    const uint8_t *out;
    /* reference payloads from fresh scratches */
    ck_assert_int_eq(lod_build(fresh, v, full, &p, &h, &hn, NULL), STRATA_OK);
    ck_assert_uint_eq(hn, 3);
    ck_assert_int_eq(lod_encode(fresh, 3, &out, &len_voxels, NULL), STRATA_OK);
    uint8_t *want_full = malloc(len_voxels);
    memcpy(want_full, out, len_voxels);
    ck_assert_int_eq(lod_build(fresh, v, part, &p, &h, &hn, NULL), STRATA_OK);
    ck_assert_int_eq(lod_encode(fresh, 3, &out, &len_part, NULL), STRATA_OK);
    uint8_t *want_part = malloc(len_part);
    memcpy(want_part, out, len_part);
    /* the reused scratch: palette, partial (sparse path), palette again */
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(lod_summarize_palette(reused, ids, 5, 4, packed, &h, &hn, NULL),
                         STRATA_OK);
        ck_assert_uint_eq(hn, 3);
        ck_assert_uint_eq(h[2].material, 10);
        ck_assert_int_eq(lod_encode(reused, 3, &out, &len_palette, NULL), STRATA_OK);
        ck_assert_uint_eq(len_palette, len_voxels);
        ck_assert(memcmp(out, want_full, len_voxels) == 0);
        ck_assert_int_eq(lod_build(reused, v, part, &p, &h, &hn, NULL), STRATA_OK);
        check_pyramid(p, v, C, part);
        ck_assert_int_eq(lod_encode(reused, 3, &out, &len, NULL), STRATA_OK);
        ck_assert_uint_eq(len, len_part);
        ck_assert(memcmp(out, want_part, len_part) == 0);
    }
    lod_work *small;
    ck_assert_int_eq(lod_work_create(8, &small, NULL), STRATA_OK);
    const int eight[3] = {8, 8, 8};
    ck_assert(!lod_can_summarize_palette(small, 3, eight));
    ck_assert_int_eq(lod_summarize_palette(small, ids, 3, 2, packed, &h, &hn, NULL),
                     STRATA_ERR_ARG);
    lod_work_free(small);
    free(want_full);
    free(want_part);
    lod_work_free(fresh);
    lod_work_free(reused);
    free(v);
    free(packed);
}
END_TEST

START_TEST(full_chunks_all_kinds)
{
    const int edges[] = {16, 32};
    for (int e = 0; e < 2; e++)
        for (int kind = 0; kind < 6; kind++) {
            int ext[3] = {edges[e], edges[e], edges[e]};
            run_case(edges[e], kind, ext, 1000 + (uint64_t)kind);
        }
}
END_TEST

/* One scratch serves chunks of every kind in turn: nothing of a build (the dense
 * path's material lanes, a build it gave up) leaks into the next. */
START_TEST(scratch_reused_across_kinds)
{
    const int C = 32, kinds[] = {5, 4, 2, 4, 1, 5, 0, 3, 4};
    const int ext[3] = {C, C, C};
    uint16_t *v = malloc((size_t)C * C * C * sizeof *v);
    ck_assert_ptr_nonnull(v);
    lod_work *wk;
    ck_assert_int_eq(lod_work_create(C, &wk, NULL), STRATA_OK);
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        make_chunk(v, C, kinds[i], 50 + (uint64_t)i);
        const lod_count *hist;
        const size_t n = build_checked(wk, v, C, ext, &hist);
        if (kinds[i] >= 4) /* sixteen ids, and the seventeenth of kind 5 */
            ck_assert_uint_eq(n, kinds[i] == 5 ? 17 : 16);
    }
    lod_work_free(wk);
    free(v);
}
END_TEST

START_TEST(partial_edge_chunks)
{
    uint64_t seed = 7;
    for (int round = 0; round < 12; round++) {
        int C = round % 2 ? 16 : 32;
        int ext[3];
        for (int a = 0; a < 3; a++)
            ext[a] = 1 + (int)(splitmix64(&seed) % (uint64_t)C);
        run_case(C, round % 6, ext, seed);
    }
}
END_TEST

START_TEST(ties_go_to_the_smallest_id)
{
    /* A 2x2x2 cell of four 5s and four 3s, and a level-2 cell made of children
     * whose modes are all 5 while 3 wins overall. */
    const int C = 16;
    uint16_t *v = calloc((size_t)C * C * C, sizeof *v);
    for (int i = 0; i < 8; i++)
        v[(i >> 2) * C * C + ((i >> 1) & 1) * C + (i & 1)] = i % 2 ? 5 : 3;
    /* Level-2 cell at x 4..7: child k holds 3 x (100 + k), 2 x 3 and three unique
     * ids, so every child's mode is 100 + k while 3 (16 voxels) is the cell's mode. */
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 8; i++) {
            int x = 4 + 2 * (k & 1) + (i & 1), y = 2 * ((k >> 1) & 1) + ((i >> 1) & 1),
                z = 2 * (k >> 2) + (i >> 2);
            v[(z * C + y) * C + x] = (uint16_t)(i < 3 ? 100 + k : i < 5 ? 3 : 1000 + 8 * k + i);
        }
    int ext[3] = {C, C, C};
    lod_work *wk;
    ck_assert_int_eq(lod_work_create(C, &wk, NULL), STRATA_OK);
    const lod_pyramid *p;
    const lod_count *hist;
    size_t n;
    ck_assert_int_eq(lod_build(wk, v, ext, &p, &hist, &n, NULL), STRATA_OK);
    size_t i = lod_cell_index(p, 1, 0, 0, 0);
    ck_assert_uint_eq(p->mode[i], 3);
    ck_assert_uint_eq(p->count[i], 4);
    i = lod_cell_index(p, 2, 1, 0, 0);
    ck_assert_uint_eq(p->mode[i], 3);
    ck_assert_uint_eq(p->count[i], 16);
    check_pyramid(p, v, C, ext);
    lod_work_free(wk);
    free(v);
}
END_TEST

START_TEST(block_voxels_clip_to_the_world)
{
    const int64_t dims[3] = {70, 53, 41};
    uint64_t c[3] = {4, 3, 2};
    ck_assert_uint_eq(lod_block_voxels(dims, 4, c), 6u * 5u * 9u);
    uint64_t far[3] = {5, 0, 0};
    ck_assert_uint_eq(lod_block_voxels(dims, 4, far), 0);
    uint64_t root[3] = {0, 0, 0};
    ck_assert_uint_eq(lod_block_voxels(dims, 10, root), 70u * 53u * 41u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lod");
    TCase *t = tcase_create("pyramid");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, full_chunks_all_kinds);
    tcase_add_test(t, palette_indices_give_the_same_payload);
    tcase_add_test(t, palette_unused_id_and_scratch_reuse);
    tcase_add_test(t, changes_give_the_payload_of_a_rebuild);
    tcase_add_test(t, version1_payload_still_reads);
    tcase_add_test(t, coarse_levels_and_packs);
    tcase_add_test(t, partial_edge_chunks);
    tcase_add_test(t, scratch_reused_across_kinds);
    tcase_add_test(t, ties_go_to_the_smallest_id);
    tcase_add_test(t, block_voxels_clip_to_the_world);
    suite_add_tcase(s, t);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
