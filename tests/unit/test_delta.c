/* test_delta.c: delta records (src/delta.h): normalizing a log, encoding and applying
 * records of every shape against a dense reference, and refusing damaged ones. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "delta.h"
#include "splitmix.h"

typedef struct {
    int edge;
    size_t voxels;
    uint8_t *scratch, *record;
    uint16_t *got, *want;
    uint64_t *log, *tmp;
} fixture;

static fixture open_fixture(int edge)
{
    fixture f = {.edge = edge, .voxels = (size_t)edge * edge * edge};
    f.scratch = malloc(chunk_scratch_size(edge));
    f.record = malloc(chunk_encode_bound(edge));
    f.got = malloc(f.voxels * sizeof *f.got);
    f.want = malloc(f.voxels * sizeof *f.want);
    f.log = malloc(f.voxels * sizeof *f.log);
    f.tmp = malloc(f.voxels * sizeof *f.tmp);
    ck_assert(f.scratch && f.record && f.got && f.want && f.log && f.tmp);
    return f;
}

static void close_fixture(fixture *f)
{
    free(f->scratch);
    free(f->record);
    free(f->got);
    free(f->want);
    free(f->log);
    free(f->tmp);
}

/* Log n changes in order (voxel picked by `pick`), apply them to want, normalize, encode,
 * apply the record to got (same base) and compare. Returns the record's length. */
static size_t round_trip(fixture *f, size_t n, uint64_t seed, int shape)
{
    uint64_t s = seed;
    for (size_t v = 0; v < f->voxels; v++)
        f->want[v] = f->got[v] = (uint16_t)(v % 7);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&s);
        uint32_t voxel = shape == 0   ? (uint32_t)(r % f->voxels)          /* scattered */
                         : shape == 1 ? (uint32_t)(r % 64)                 /* clustered */
                         : shape == 2 ? (uint32_t)(3 * i % f->voxels)      /* regular */
                                      : (uint32_t)(f->voxels - 1 - r % 8); /* the last ones */
        uint16_t material = shape == 2   ? (uint16_t)(1 + i % 3)
                            : shape == 3 ? (uint16_t)(r >> 32) /* any of 65536 ids */
                                         : (uint16_t)(2 + (r >> 40) % 12);
        f->want[voxel] = material;
        f->log[i] = delta_log_entry(voxel, (uint32_t)i, material);
    }
    size_t kept = delta_log_normalize(f->log, n, f->voxels, f->tmp, f->voxels * sizeof *f->tmp);
    ck_assert_uint_le(kept, n);
    for (size_t i = 1; i < kept; i++)
        ck_assert_uint_lt(f->log[i - 1] >> 40, f->log[i] >> 40);
    delta_header h = {.depth = 1, .key = 99, .epoch = 5};
    size_t length = 0;
    int rice = -1;
    size_t floor = delta_size_floor(f->log, kept, f->edge, seed % 2 ? &rice : NULL);
    ck_assert_int_eq(delta_encode(&h, f->log, kept, f->edge, rice, 3, f->scratch, f->record,
                                  chunk_encode_bound(f->edge), &length, NULL),
                     STRATA_OK);
    ck_assert_uint_le(length, delta_record_bound(f->edge, kept));
    if (f->record[DELTA_HEADER_BYTES] == 0) /* the floor counts no zstd gain */
        ck_assert_uint_ge(length, floor);
    delta_header parsed;
    ck_assert_int_eq(delta_parse(f->record, length, f->edge, &parsed, NULL), STRATA_OK);
    ck_assert_uint_eq(parsed.count, kept);
    ck_assert_uint_eq(parsed.version, DELTA_VERSION);
    ck_assert_int_eq(delta_apply(f->record, length, f->edge, f->scratch, f->got, NULL), STRATA_OK);
    ck_assert_int_eq(memcmp(f->got, f->want, f->voxels * sizeof *f->got), 0);
    /* the same changes without voxels (delta_changes: the index's change path) */
    const uint32_t *voxel;
    const uint16_t *material;
    size_t count = 0;
    for (size_t v = 0; v < f->voxels; v++)
        f->got[v] = (uint16_t)(v % 7);
    ck_assert_int_eq(
        delta_changes(f->record, length, f->edge, f->scratch, &voxel, &material, &count, NULL),
        STRATA_OK);
    ck_assert_uint_eq(count, kept);
    for (size_t i = 0; i < count; i++) {
        ck_assert(i == 0 || voxel[i - 1] < voxel[i]);
        f->got[voxel[i]] = material[i];
    }
    ck_assert_int_eq(memcmp(f->got, f->want, f->voxels * sizeof *f->got), 0);
    return length;
}

START_TEST(test_shapes)
{
    static const int edges[] = {16, 32, 64};
    for (int e = 0; e < 3; e++) {
        fixture f = open_fixture(edges[e]);
        size_t most = delta_log_max(f.voxels);
        static const size_t counts[] = {1, 2, 5, 100, 1023, 1024, 2000};
        for (int shape = 0; shape < 4; shape++) {
            for (int c = 0; c < 7; c++)
                round_trip(&f, counts[c] < most ? counts[c] : most, 11 + (uint64_t)c, shape);
            round_trip(&f, most, 77, shape);
        }
        close_fixture(&f);
    }
}
END_TEST

/* The sizes the encoding is for: ~1.5 bytes per change at 490 random changes in a 32^3
 * chunk (12 materials), under 4 at 5 changes. */
START_TEST(test_sizes)
{
    fixture f = open_fixture(32);
    size_t big = round_trip(&f, 490, 3, 0), small = round_trip(&f, 5, 4, 0);
    ck_assert_uint_lt(big - DELTA_HEADER_BYTES, 490 * 17 / 10);
    ck_assert_uint_lt(small - DELTA_HEADER_BYTES, 5 * 4 + 8);
    /* a regular pattern compresses: the body became a zstd frame */
    size_t regular = round_trip(&f, 2000, 5, 2);
    ck_assert_uint_eq(f.record[DELTA_HEADER_BYTES], 1);
    ck_assert_uint_lt(regular, 400);
    close_fixture(&f);
}
END_TEST

/* Normalizing keeps each voxel's last change, whatever the order of the voxels. */
START_TEST(test_normalize_last_wins)
{
    fixture f = open_fixture(16);
    uint64_t s = 5;
    size_t n = 3000;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&s);
        f.log[i] = delta_log_entry((uint32_t)(r % 40), (uint32_t)i, (uint16_t)(r >> 48));
        f.want[r % 40] = (uint16_t)(r >> 48);
    }
    size_t kept = delta_log_normalize(f.log, n, f.voxels, f.tmp, f.voxels * sizeof *f.tmp);
    ck_assert_uint_eq(kept, 40);
    for (size_t i = 0; i < kept; i++) {
        ck_assert_uint_eq(f.log[i] >> 40, i);
        ck_assert_uint_eq((uint16_t)f.log[i], f.want[i]);
    }
    close_fixture(&f);
}
END_TEST

/* The pass through a bitmap (tmp large enough) and the radix sort (tmp of n entries only)
 * give the same changes, for logs from one change to past the log's bound. */
START_TEST(test_normalize_paths_agree)
{
    fixture f = open_fixture(32);
    uint64_t *copy = malloc(f.voxels * sizeof *copy);
    ck_assert(copy);
    uint64_t s = 17;
    const size_t sizes[] = {1, 2, 63, 64, 65, 490, 2048, 5000};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        size_t n = sizes[t];
        for (size_t i = 0; i < n; i++) {
            uint64_t r = splitmix64(&s);
            uint32_t voxel = (uint32_t)(t % 2 ? r % f.voxels : r % 300);
            copy[i] = f.log[i] = delta_log_entry(voxel, (uint32_t)i, (uint16_t)(r >> 48));
        }
        size_t dense = delta_log_normalize(f.log, n, f.voxels, f.tmp, f.voxels * sizeof *f.tmp);
        size_t sorted = delta_log_normalize(copy, n, f.voxels, f.tmp, n * sizeof *f.tmp);
        ck_assert_uint_eq(dense, sorted);
        ck_assert_int_eq(memcmp(f.log, copy, dense * sizeof *copy), 0);
    }
    free(copy);
    close_fixture(&f);
}
END_TEST

/* Every cut of a record and a flip of each body byte is refused or decodes within the
 * chunk; no read past the record (ASan checks that in the sanitized build). */
/* The fixture's record of `length` bytes with a zero byte after it is refused. */
static void refuses_a_byte_more(fixture *f, size_t length)
{
    uint8_t *longer = malloc(length + 1);
    ck_assert(longer);
    memcpy(longer, f->record, length);
    longer[length] = 0;
    ck_assert_int_eq(delta_apply(longer, length + 1, f->edge, f->scratch, f->got, NULL),
                     STRATA_ERR_CORRUPT);
    free(longer);
}

START_TEST(test_damaged_records)
{
    fixture f = open_fixture(32);
    size_t length = round_trip(&f, 300, 9, 0);
    uint8_t *copy = malloc(length);
    for (size_t cut = DELTA_HEADER_BYTES; cut < length; cut++) {
        memcpy(copy, f.record, cut);
        ck_assert_int_eq(delta_apply(copy, cut, 32, f.scratch, f.got, NULL), STRATA_ERR_CORRUPT);
    }
    for (size_t at = DELTA_HEADER_BYTES; at < length; at++) {
        memcpy(copy, f.record, length);
        copy[at] ^= 0x5A;
        strata_status st = delta_apply(copy, length, 32, f.scratch, f.got, NULL);
        ck_assert(st == STRATA_OK || st == STRATA_ERR_CORRUPT);
    }
    /* trailing bytes are refused */
    refuses_a_byte_more(&f, length);
    free(copy);
    /* also when the last gaps lie in the last bytes (a reader that reads ahead must not
     * take a zero byte after them for padding) */
    for (int shape = 0; shape < 4; shape++)
        for (size_t n = 1; n <= 9; n += 4)
            refuses_a_byte_more(&f, round_trip(&f, n, 40 + n, shape));
    close_fixture(&f);
}
END_TEST

/* Random bodies under valid headers (both body encodings, any count): refused or applied
 * within the chunk, never a read or write outside the buffers (ASan in the sanitized
 * build). */
START_TEST(test_random_bodies)
{
    fixture f = open_fixture(16);
    uint64_t s = 21;
    delta_header h = {.depth = 1, .key = 3, .epoch = 2};
    for (int trial = 0; trial < 4000; trial++) {
        size_t n = 1 + splitmix64(&s) % 300, length = 0;
        for (size_t i = 0; i < n; i++)
            f.log[i] = delta_log_entry((uint32_t)i, 0, 1);
        ck_assert_int_eq(delta_encode(&h, f.log, n, 16, -1, 1, f.scratch, f.record,
                                      chunk_encode_bound(16), &length, NULL),
                         STRATA_OK);
        size_t body = splitmix64(&s) % 64;
        for (size_t i = 0; i < body; i++)
            f.record[DELTA_HEADER_BYTES + i] = (uint8_t)splitmix64(&s);
        if (body)
            f.record[DELTA_HEADER_BYTES] &= 1; /* flags 0 or 1: past the flags check */
        if (body > 1)
            f.record[DELTA_HEADER_BYTES + 1] %= 13; /* a Rice parameter within 3 log2 16 */
        strata_status st =
            delta_apply(f.record, DELTA_HEADER_BYTES + body, 16, f.scratch, f.got, NULL);
        ck_assert(st == STRATA_OK || st == STRATA_ERR_CORRUPT);
    }
    close_fixture(&f);
}
END_TEST

static Suite *delta_suite(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("delta");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_normalize_last_wins);
    tcase_add_test(tc, test_normalize_paths_agree);
    tcase_add_test(tc, test_damaged_records);
    tcase_add_test(tc, test_random_bodies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(delta_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
