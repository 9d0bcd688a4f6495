/* test_morton.c: Morton encode/decode, octree order, counting keys in a box. */
#include <check.h>
#include <stdlib.h>

#include "morton.h"
#include "strata.h"
#include "splitmix.h"

#define AXIS_MAX ((1u << STRATA_MORTON_BITS) - 1)

/* ck_assert marks a point (a write to a file) even on success: too slow in loops of 1e5. */
#define QUIET_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* The definition, one bit at a time, to check the table version against. */
static uint64_t encode_by_bits(uint32_t x, uint32_t y, uint32_t z)
{
    uint64_t key = 0;
    for (int i = 0; i < STRATA_MORTON_BITS; i++) {
        key |= (uint64_t)((x >> i) & 1) << (3 * i);
        key |= (uint64_t)((y >> i) & 1) << (3 * i + 1);
        key |= (uint64_t)((z >> i) & 1) << (3 * i + 2);
    }
    return key;
}

static void check_round_trip(uint32_t x, uint32_t y, uint32_t z)
{
    uint64_t key = morton_encode3(x, y, z);
    uint32_t dx, dy, dz;
    QUIET_CHECK(key == encode_by_bits(x, y, z), "key of (%u, %u, %u) is %llx, bit by bit %llx", x,
                y, z, (unsigned long long)key, (unsigned long long)encode_by_bits(x, y, z));
    morton_decode3(key, &dx, &dy, &dz);
    QUIET_CHECK(dx == x && dy == y && dz == z, "(%u, %u, %u) decodes to (%u, %u, %u)", x, y, z, dx,
                dy, dz);
}

START_TEST(round_trip_random)
{
    uint64_t state = 42;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = splitmix64(&state);
        check_round_trip((uint32_t)r & AXIS_MAX, (uint32_t)(r >> 21) & AXIS_MAX,
                         (uint32_t)(r >> 42) & AXIS_MAX);
    }
}
END_TEST

START_TEST(round_trip_edges)
{
    const uint32_t edges[] = {
        0, 1, 2, 3, 0x155555, 0x0aaaaa, 1u << 20, (1u << 20) - 1, AXIS_MAX - 1, AXIS_MAX};
    size_t count = sizeof edges / sizeof edges[0];
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < count; j++)
            for (size_t k = 0; k < count; k++)
                check_round_trip(edges[i], edges[j], edges[k]);
    ck_assert_uint_eq(morton_encode3(AXIS_MAX, AXIS_MAX, AXIS_MAX), (UINT64_C(1) << 63) - 1);
    ck_assert_uint_eq(morton_encode3(1, 0, 0), 1);
    ck_assert_uint_eq(morton_encode3(0, 1, 0), 2);
    ck_assert_uint_eq(morton_encode3(0, 0, 1), 4);
    ck_assert_uint_eq(morton_encode3(0, 0, 1u << 20), UINT64_C(1) << 62);
    /* Bits above the 21st are ignored, not smeared into neighbouring axes. */
    ck_assert_uint_eq(morton_encode3(1u << 21 | 5, 0xffffffffu, 0), morton_encode3(5, AXIS_MAX, 0));
}
END_TEST

/* Every aligned 2^k cube covers exactly the keys [key(corner), key(corner) + 8^k). */
START_TEST(aligned_cubes_are_contiguous)
{
    uint64_t state = 7;
    for (int trial = 0; trial < 200; trial++) {
        int k = (int)(splitmix64(&state) % 5);
        uint32_t mask = ~((1u << k) - 1) & AXIS_MAX;
        uint32_t cx = (uint32_t)splitmix64(&state) & mask, cy = (uint32_t)splitmix64(&state) & mask,
                 cz = (uint32_t)splitmix64(&state) & mask;
        uint64_t first = morton_encode3(cx, cy, cz), volume = UINT64_C(1) << (3 * k);
        unsigned char *seen = calloc(volume, 1);
        ck_assert_ptr_nonnull(seen);
        uint32_t edge = 1u << k;
        for (uint32_t z = 0; z < edge; z++)
            for (uint32_t y = 0; y < edge; y++)
                for (uint32_t x = 0; x < edge; x++) {
                    uint64_t key = morton_encode3(cx + x, cy + y, cz + z);
                    QUIET_CHECK(key >= first && key - first < volume && !seen[key - first],
                                "cube of edge %u at (%u, %u, %u): key %llu outside [%llu, +%llu)",
                                edge, cx, cy, cz, (unsigned long long)key,
                                (unsigned long long)first, (unsigned long long)volume);
                    seen[key - first] = 1;
                }
        free(seen);
    }
}
END_TEST

START_TEST(keys_grow_with_each_coordinate)
{
    uint64_t state = 9;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = splitmix64(&state);
        uint32_t c[3] = {(uint32_t)r & (AXIS_MAX - 1), (uint32_t)(r >> 21) & (AXIS_MAX - 1),
                         (uint32_t)(r >> 42) & (AXIS_MAX - 1)};
        int axis = (int)(splitmix64(&state) % 3);
        uint64_t before = morton_encode3(c[0], c[1], c[2]);
        c[axis]++;
        QUIET_CHECK(morton_encode3(c[0], c[1], c[2]) > before, "axis %d at (%u, %u, %u)", axis,
                    c[0], c[1], c[2]);
    }
}
END_TEST

static int compare_keys(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* All keys of the box, sorted. */
static uint64_t *box_keys(const uint64_t n[3], size_t *count)
{
    *count = (size_t)(n[0] * n[1] * n[2]);
    uint64_t *keys = malloc((*count ? *count : 1) * sizeof *keys);
    ck_assert_ptr_nonnull(keys);
    size_t at = 0;
    for (uint32_t z = 0; z < n[2]; z++)
        for (uint32_t y = 0; y < n[1]; y++)
            for (uint32_t x = 0; x < n[0]; x++)
                keys[at++] = morton_encode3(x, y, z);
    qsort(keys, *count, sizeof *keys, compare_keys);
    return keys;
}

/* Keys of the enumerated box below key (binary search in the sorted list). */
static uint64_t brute_count_below(const uint64_t *keys, size_t count, uint64_t key)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void check_count_at(const uint64_t n[3], const uint64_t *keys, size_t count, uint64_t key)
{
    QUIET_CHECK(morton_count_below(key, n) == brute_count_below(keys, count, key),
                "box %llux%llux%llu key %llu: %llu, brute force %llu", (unsigned long long)n[0],
                (unsigned long long)n[1], (unsigned long long)n[2], (unsigned long long)key,
                (unsigned long long)morton_count_below(key, n),
                (unsigned long long)brute_count_below(keys, count, key));
}

START_TEST(count_below_matches_brute_force)
{
    uint64_t state = 11;
    for (int trial = 0; trial < 300; trial++) {
        uint64_t n[3];
        for (int a = 0; a < 3; a++)
            n[a] = 1 + splitmix64(&state) % (trial < 100 ? 8 : 37);
        size_t count;
        uint64_t *keys = box_keys(n, &count);
        const uint64_t fixed[] = {0,
                                  1,
                                  keys[count - 1],
                                  keys[count - 1] + 1,
                                  UINT64_C(1) << 62,
                                  UINT64_C(1) << 63,
                                  UINT64_MAX};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            check_count_at(n, keys, count, fixed[i]);
        for (int i = 0; i < 40; i++) {
            uint64_t in_box = keys[splitmix64(&state) % count];
            check_count_at(n, keys, count, in_box);
            check_count_at(n, keys, count, in_box + 1);
            check_count_at(n, keys, count, splitmix64(&state) % (keys[count - 1] + 2));
        }
        free(keys);
    }
}
END_TEST

START_TEST(count_below_large_boxes)
{
    const uint64_t whole[3] = {UINT64_C(1) << 21, UINT64_C(1) << 21, UINT64_C(1) << 21};
    const uint64_t beyond[3] = {(UINT64_C(1) << 21) + 5, 3, UINT64_C(1) << 40};
    const uint64_t empty[3] = {0, 4, 4};
    ck_assert_uint_eq(morton_count_below(UINT64_MAX, whole), UINT64_C(1) << 63);
    ck_assert_uint_eq(morton_count_below(12345, whole), 12345);
    ck_assert_uint_eq(morton_count_below((UINT64_C(1) << 63) - 1, whole), (UINT64_C(1) << 63) - 1);
    ck_assert_uint_eq(morton_count_below(UINT64_MAX, beyond), (UINT64_C(3) << 42));
    ck_assert_uint_eq(morton_count_below(UINT64_MAX, empty), 0);
    ck_assert_uint_eq(morton_count_below(100, empty), 0);
    /* One row along x: keys below key(x, 0, 0) are exactly x cells of the row. */
    const uint64_t row[3] = {UINT64_C(1) << 21, 1, 1};
    ck_assert_uint_eq(morton_count_below(morton_encode3(AXIS_MAX, 0, 0), row), AXIS_MAX);
}
END_TEST

START_TEST(key_end_is_one_past_the_largest_key)
{
    uint64_t state = 13;
    for (int trial = 0; trial < 200; trial++) {
        uint64_t n[3];
        for (int a = 0; a < 3; a++)
            n[a] = 1 + splitmix64(&state) % 29;
        size_t count;
        uint64_t *keys = box_keys(n, &count);
        ck_assert_uint_eq(morton_key_end(n), keys[count - 1] + 1);
        ck_assert_uint_eq(morton_count_below(morton_key_end(n), n), count);
        free(keys);
    }
    const uint64_t whole[3] = {UINT64_C(1) << 21, UINT64_C(1) << 21, UINT64_C(1) << 21};
    const uint64_t beyond[3] = {UINT64_C(1) << 30, UINT64_C(1) << 30, UINT64_C(1) << 30};
    const uint64_t one[3] = {1, 1, 1}, empty[3] = {5, 0, 5};
    ck_assert_uint_eq(morton_key_end(whole), UINT64_C(1) << 63);
    ck_assert_uint_eq(morton_key_end(beyond), UINT64_C(1) << 63);
    ck_assert_uint_eq(morton_key_end(one), 1);
    ck_assert_uint_eq(morton_key_end(empty), 0);
}
END_TEST

static Suite *morton_suite(void)
{
    Suite *s = suite_create("morton");
    TCase *codec = tcase_create("encode");
    tcase_add_test(codec, round_trip_random);
    tcase_add_test(codec, round_trip_edges);
    tcase_add_test(codec, aligned_cubes_are_contiguous);
    tcase_add_test(codec, keys_grow_with_each_coordinate);
    suite_add_tcase(s, codec);
    TCase *count = tcase_create("count");
    tcase_add_test(count, count_below_matches_brute_force);
    tcase_add_test(count, count_below_large_boxes);
    tcase_add_test(count, key_end_is_one_past_the_largest_key);
    suite_add_tcase(s, count);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(morton_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
