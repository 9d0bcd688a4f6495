/* test_partition.c: balanced splitters, owners and remapping between rank counts. */
#include <check.h>
#include <stdlib.h>

#include "morton.h"
#include "partition.h"
#include "splitmix.h"

/* ck_assert marks a point (a write to a file) even on success: too slow in loops of 1e5. */
#define QUIET_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static void check_splitters(const uint64_t *split, int ranks)
{
    QUIET_CHECK(split[0] == 0 && split[ranks] == UINT64_MAX, "ends %llu, %llu",
                (unsigned long long)split[0], (unsigned long long)split[ranks]);
    for (int r = 0; r < ranks; r++)
        QUIET_CHECK(split[r] <= split[r + 1], "splitter %d of %d decreases", r + 1, ranks);
}

/* The owner by definition: the last r whose range starts at or below key. */
static int owner_by_scan(const uint64_t *split, int ranks, uint64_t key)
{
    int owner = 0;
    for (int r = 0; r < ranks; r++)
        if (split[r] <= key)
            owner = r;
    return owner;
}

/* Chunks of the box per rank, counted one by one. */
static void count_per_rank(const uint64_t n[3], const uint64_t *split, int ranks, uint64_t *counts)
{
    for (int r = 0; r < ranks; r++)
        counts[r] = 0;
    for (uint32_t z = 0; z < n[2]; z++)
        for (uint32_t y = 0; y < n[1]; y++)
            for (uint32_t x = 0; x < n[0]; x++)
                counts[owner_by_scan(split, ranks, morton_encode3(x, y, z))]++;
}

static void check_balanced(const uint64_t n[3], int ranks)
{
    uint64_t *split = malloc(((size_t)ranks + 1) * sizeof *split);
    uint64_t *counts = malloc((size_t)ranks * sizeof *counts);
    ck_assert(split && counts);
    partition_balanced(n, ranks, split);
    check_splitters(split, ranks);
    count_per_rank(n, split, ranks, counts);
    uint64_t total = n[0] * n[1] * n[2], low = total / (uint64_t)ranks;
    for (int r = 0; r < ranks; r++)
        QUIET_CHECK(counts[r] == low || counts[r] == low + 1,
                    "box %llux%llux%llu, %d ranks: rank %d holds %llu of %llu",
                    (unsigned long long)n[0], (unsigned long long)n[1], (unsigned long long)n[2],
                    ranks, r, (unsigned long long)counts[r], (unsigned long long)total);
    free(split);
    free(counts);
}

START_TEST(balanced_matches_brute_force)
{
    const int rank_counts[] = {1, 2, 3, 4, 5, 7, 16, 33, 100};
    uint64_t state = 21;
    for (int trial = 0; trial < 60; trial++) {
        uint64_t n[3];
        for (int a = 0; a < 3; a++)
            n[a] = 1 + splitmix64(&state) % 23;
        for (size_t i = 0; i < sizeof rank_counts / sizeof rank_counts[0]; i++)
            check_balanced(n, rank_counts[i]);
    }
    const uint64_t flat[3] = {64, 1, 3}, cube[3] = {16, 16, 16}, single[3] = {1, 1, 1};
    check_balanced(flat, 6);
    check_balanced(cube, 8);
    check_balanced(single, 4);
}
END_TEST

/* A cube of 8^k chunks on 8 ranks splits at the octants of its root. */
START_TEST(balanced_cube_splits_at_octants)
{
    const uint64_t n[3] = {32, 32, 32};
    uint64_t split[9];
    partition_balanced(n, 8, split);
    for (int r = 1; r < 8; r++)
        ck_assert_uint_eq(split[r], (uint64_t)r * 32 * 32 * 32 / 8);
}
END_TEST

START_TEST(balanced_huge_box)
{
    /* Too big to enumerate: shares follow from morton_count_below alone. */
    const uint64_t n[3] = {1000003, 777777, 123457};
    uint64_t split[8];
    partition_balanced(n, 7, split);
    check_splitters(split, 7);
    uint64_t total = morton_count_below(UINT64_MAX, n);
    ck_assert_uint_eq(total, n[0] * n[1] * n[2]);
    for (int r = 0; r < 7; r++) {
        uint64_t hi = r == 6 ? UINT64_MAX : split[r + 1];
        uint64_t share = morton_count_below(hi, n) - morton_count_below(split[r], n);
        ck_assert_uint_ge(share, total / 7);
        ck_assert_uint_le(share, total / 7 + 1);
    }
}
END_TEST

START_TEST(owner_matches_scan)
{
    uint64_t state = 5;
    uint64_t split[18];
    for (int trial = 0; trial < 500; trial++) {
        int ranks = 1 + (int)(splitmix64(&state) % 17);
        split[0] = 0;
        split[ranks] = UINT64_MAX;
        /* Small steps so some ranges are empty (repeated splitters). */
        for (int r = 1; r < ranks; r++)
            split[r] = split[r - 1] + splitmix64(&state) % 4;
        for (int i = 0; i < 200; i++) {
            uint64_t key = splitmix64(&state) % (split[ranks - 1] + 3);
            QUIET_CHECK(partition_owner(split, ranks, key) == owner_by_scan(split, ranks, key),
                        "owner of %llu among %d ranks", (unsigned long long)key, ranks);
        }
        ck_assert_int_eq(partition_owner(split, ranks, 0), owner_by_scan(split, ranks, 0));
        ck_assert_int_eq(partition_owner(split, ranks, UINT64_MAX - 1), ranks - 1);
    }
}
END_TEST

START_TEST(owner_of_range_edges)
{
    const uint64_t split[5] = {0, 10, 10, 20, UINT64_MAX};
    ck_assert_int_eq(partition_owner(split, 4, 0), 0);
    ck_assert_int_eq(partition_owner(split, 4, 9), 0);
    ck_assert_int_eq(partition_owner(split, 4, 10), 2); /* rank 1's range is empty */
    ck_assert_int_eq(partition_owner(split, 4, 19), 2);
    ck_assert_int_eq(partition_owner(split, 4, 20), 3);
    ck_assert_int_eq(partition_owner(split, 1, 12345), 0);
}
END_TEST

START_TEST(remap_keeps_splitters_monotonic)
{
    const uint64_t n[3] = {300, 200, 100};
    uint64_t key_end = morton_key_end(n);
    for (int old_ranks = 1; old_ranks <= 12; old_ranks++) {
        uint64_t old_split[13], new_split[40];
        partition_balanced(n, old_ranks, old_split);
        for (int new_ranks = 1; new_ranks <= 39; new_ranks++) {
            partition_remap(old_split, old_ranks, key_end, new_ranks, new_split);
            check_splitters(new_split, new_ranks);
            for (int m = 1; m < new_ranks; m++)
                QUIET_CHECK(new_split[m] <= key_end, "%d -> %d: splitter %d past the keys",
                            old_ranks, new_ranks, m);
            /* Boundaries that coincide with old ones stay where they were. */
            for (int m = 0; m < new_ranks; m++)
                if ((uint64_t)m * (uint64_t)old_ranks % (uint64_t)new_ranks == 0)
                    QUIET_CHECK(new_split[m] == old_split[m * old_ranks / new_ranks],
                                "%d -> %d: splitter %d moved", old_ranks, new_ranks, m);
        }
    }
}
END_TEST

START_TEST(remap_random_splitters)
{
    uint64_t state = 99;
    for (int trial = 0; trial < 500; trial++) {
        int old_ranks = 1 + (int)(splitmix64(&state) % 20);
        int new_ranks = 1 + (int)(splitmix64(&state) % 50);
        uint64_t key_end = splitmix64(&state) >> 1, old_split[21], new_split[51];
        old_split[0] = 0;
        old_split[old_ranks] = UINT64_MAX;
        for (int r = 1; r < old_ranks; r++)
            old_split[r] = splitmix64(&state) >> 1; /* some beyond key_end: clamped */
        for (int r = 1; r < old_ranks; r++)
            for (int q = r + 1; q < old_ranks; q++)
                if (old_split[q] < old_split[r]) {
                    uint64_t t = old_split[q];
                    old_split[q] = old_split[r];
                    old_split[r] = t;
                }
        partition_remap(old_split, old_ranks, key_end, new_ranks, new_split);
        check_splitters(new_split, new_ranks);
    }
}
END_TEST

START_TEST(remap_interpolates)
{
    /* One rank to four over keys [0, 1000): quarters of the used key space. */
    const uint64_t one[2] = {0, UINT64_MAX};
    uint64_t split[5];
    partition_remap(one, 1, 1000, 4, split);
    ck_assert_uint_eq(split[1], 250);
    ck_assert_uint_eq(split[2], 500);
    ck_assert_uint_eq(split[3], 750);
    ck_assert_uint_eq(split[4], UINT64_MAX);
    /* Two uneven ranges to four: each old range halves. */
    const uint64_t two[3] = {0, 100, UINT64_MAX};
    partition_remap(two, 2, 1000, 4, split);
    ck_assert_uint_eq(split[1], 50);
    ck_assert_uint_eq(split[2], 100);
    ck_assert_uint_eq(split[3], 550);
    /* Four to two keeps every other boundary. */
    const uint64_t four[5] = {0, 10, 20, 900, UINT64_MAX};
    uint64_t back[3];
    partition_remap(four, 4, 1000, 2, back);
    ck_assert_uint_eq(back[0], 0);
    ck_assert_uint_eq(back[1], 20);
    ck_assert_uint_eq(back[2], UINT64_MAX);
    /* Whole 63-bit key space: no overflow in the interpolation. */
    partition_remap(one, 1, UINT64_C(1) << 63, 3, split);
    ck_assert_uint_eq(split[1], (UINT64_C(1) << 63) / 3);
    ck_assert_uint_eq(split[2], (UINT64_C(1) << 63) / 3 * 2 + 1); /* floor(2^64 / 3) */
}
END_TEST

/* Runs of clustered keys (a sparse world's segments): a few dense clusters far
 * apart in key space, different in each run, some keys in several runs. */
static uint64_t *clustered_run(uint64_t *state, size_t rows)
{
    uint64_t *keys = malloc(rows * sizeof *keys);
    uint64_t key = splitmix64(state) >> 8;
    for (size_t i = 0; i < rows; i++) {
        uint64_t r = splitmix64(state);
        key += r % 64 == 0 ? (r >> 20) % (UINT64_C(1) << 40) + 1 : r % 3 + 1;
        keys[i] = key;
    }
    return keys;
}

START_TEST(samples_balance_stored_rows)
{
    enum { RUNS_MAX = 5, BLOCK = 1024 };
    uint64_t state = 20261206;
    for (int trial = 0; trial < 40; trial++) {
        size_t runs_n = 1 + trial % RUNS_MAX;
        int ranks = 2 + (int)(splitmix64(&state) % 63);
        uint64_t *keys[RUNS_MAX], *fences[RUNS_MAX];
        partition_sample runs[RUNS_MAX];
        uint64_t total = 0;
        for (size_t i = 0; i < runs_n; i++) {
            size_t rows = 2 * BLOCK * (size_t)ranks / runs_n + splitmix64(&state) % 50000;
            keys[i] = clustered_run(&state, rows);
            size_t n = (rows + BLOCK - 1) / BLOCK;
            fences[i] = malloc(n * sizeof *fences[i]);
            for (size_t b = 0; b < n; b++)
                fences[i][b] = keys[i][b * BLOCK];
            runs[i] = (partition_sample){fences[i], n, rows};
            total += rows;
        }
        uint64_t split[66];
        int used = 0;
        strata_error err;
        ck_assert_int_eq(partition_by_samples(runs, runs_n, BLOCK, ranks, split, &used, &err),
                         STRATA_OK);
        ck_assert_int_eq(used, 1);
        check_splitters(split, ranks);
        /* Every row counted where it falls (a key in two runs counts twice, as the
         * samples do): no rank above its share plus one block per run and boundary. */
        uint64_t counts[65] = {0};
        for (size_t i = 0; i < runs_n; i++)
            for (size_t j = 0; j < runs[i].rows; j++)
                counts[partition_owner(split, ranks, keys[i][j])]++;
        double share = (double)total / ranks;
        for (int r = 0; r < ranks; r++) {
            QUIET_CHECK((double)counts[r] <= share + (2.0 * BLOCK + 2) * (double)runs_n,
                        "trial %d: rank %d of %d holds %llu rows, share %.0f, %zu runs", trial, r,
                        ranks, (unsigned long long)counts[r], share, runs_n);
            QUIET_CHECK(runs_n > 1 || (double)counts[r] <= 2.0 * share,
                        "trial %d: rank %d holds %llu rows, over twice the share %.0f", trial, r,
                        (unsigned long long)counts[r], share);
        }
        for (size_t i = 0; i < runs_n; i++) {
            free(keys[i]);
            free(fences[i]);
        }
    }
}
END_TEST

START_TEST(samples_too_coarse_leave_splitters)
{
    /* 4 ranks, 8191 rows: a share under two blocks; the splitters stay as given. */
    uint64_t fence[8] = {10, 20, 30, 40, 50, 60, 70, 80};
    partition_sample run = {fence, 8, 8191};
    uint64_t split[5] = {0, 1, 2, 3, UINT64_MAX};
    int used = 1;
    strata_error err;
    ck_assert_int_eq(partition_by_samples(&run, 1, 1024, 4, split, &used, &err), STRATA_OK);
    ck_assert_int_eq(used, 0);
    ck_assert_uint_eq(split[1], 1);
    ck_assert_uint_eq(split[3], 3);
    /* One more row: balanced, each boundary at a quarter of the rows. */
    run.rows = 8192;
    ck_assert_int_eq(partition_by_samples(&run, 1, 1024, 4, split, &used, &err), STRATA_OK);
    ck_assert_int_eq(used, 1);
    ck_assert_uint_eq(split[0], 0);
    ck_assert_uint_eq(split[1], 30);
    ck_assert_uint_eq(split[2], 50);
    ck_assert_uint_eq(split[3], 70);
    ck_assert_uint_eq(split[4], UINT64_MAX);
}
END_TEST

static Suite *partition_suite(void)
{
    Suite *s = suite_create("partition");
    TCase *balanced = tcase_create("balanced");
    tcase_add_test(balanced, balanced_matches_brute_force);
    tcase_add_test(balanced, balanced_cube_splits_at_octants);
    tcase_add_test(balanced, balanced_huge_box);
    suite_add_tcase(s, balanced);
    TCase *owner = tcase_create("owner");
    tcase_add_test(owner, owner_matches_scan);
    tcase_add_test(owner, owner_of_range_edges);
    suite_add_tcase(s, owner);
    TCase *remap = tcase_create("remap");
    tcase_add_test(remap, remap_keeps_splitters_monotonic);
    tcase_add_test(remap, remap_random_splitters);
    tcase_add_test(remap, remap_interpolates);
    suite_add_tcase(s, remap);
    TCase *samples = tcase_create("samples");
    tcase_add_test(samples, samples_balance_stored_rows);
    tcase_add_test(samples, samples_too_coarse_leave_splitters);
    suite_add_tcase(s, samples);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(partition_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
