/* test_lod.c: chunk pyramids against brute-force modes (ties, partial edge chunks), payloads. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lod.h"

#define QUIET_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

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
                uint64_t r = next_random(&seed);
                uint16_t m;
                switch (kind) {
                case 0:
                    m = (uint16_t)(next_random(&s) % 3 * 5);
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
                    m = spread[next_random(&b) % 16];
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
    for (int l = 1; l <= p->levels; l++) {
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
    free(copy);
    lod_work_free(wk);
    free(v);
}

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
            ext[a] = 1 + (int)(next_random(&seed) % (uint64_t)C);
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
