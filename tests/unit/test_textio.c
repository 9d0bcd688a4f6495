/* test_textio.c: text and binary update files, point files, and slicing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "textio.h"

/* ---- helpers ---------------------------------------------------------------- */

static char temp_dir[256];

static void make_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(temp_dir, sizeof temp_dir, "%s/strata_textio_XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

static void remove_temp_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void temp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", temp_dir, name);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    uint8_t *data = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* Parse a string as updates; the copy has no NUL after it, so ASan catches overreads. */
static strata_status parse_updates_str(const char *s, uint64_t base, strata_update **u, size_t *n,
                                       strata_error *err)
{
    size_t len = strlen(s);
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    strata_status st = textio_parse_updates(copy, len, base, NULL, u, n, err);
    free(copy);
    return st;
}

static void check_update(const strata_update *u, int64_t x, int64_t y, int64_t z, uint16_t m,
                         int has_expected, uint16_t expected)
{
    ck_assert_int_eq(u->x, x);
    ck_assert_int_eq(u->y, y);
    ck_assert_int_eq(u->z, z);
    ck_assert_uint_eq(u->material, m);
    ck_assert_uint_eq(u->has_expected, (unsigned)has_expected);
    ck_assert_uint_eq(u->expected, expected);
}

/* Expect a parse error whose message contains every one of the given fragments. */
static void expect_update_error(const char *text, uint64_t base, const char *frag1,
                                const char *frag2)
{
    strata_update *u = (strata_update *)1;
    size_t n = 99;
    strata_error err;
    error_clear(&err);
    strata_status st = parse_updates_str(text, base, &u, &n, &err);
    ck_assert_msg(st == STRATA_ERR_PARSE, "status %d for \"%s\"", st, text);
    ck_assert_int_eq(err.status, STRATA_ERR_PARSE);
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err.message, frag1), "\"%s\" lacks \"%s\"", err.message, frag1);
    if (frag2)
        ck_assert_msg(strstr(err.message, frag2), "\"%s\" lacks \"%s\"", err.message, frag2);
}

/* ---- text updates ------------------------------------------------------------ */

START_TEST(test_valid_updates)
{
    const char *text = "# header comment\n"
                       "\n"
                       "1 2 3 4\n"
                       "  5\t6  7 8   # trailing comment\n"
                       "9 10 11 12 13\r\n"
                       "\t\r\n"
                       "   # indented comment\n"
                       "0 0 0 0#tight comment\n"
                       "9223372036854775807 00042 0 65535 65535\n"
                       "1 1 1 7";
    strata_update *u = NULL;
    size_t n = 0;
    strata_error err;
    ck_assert_int_eq(parse_updates_str(text, 0, &u, &n, &err), STRATA_OK);
    ck_assert_uint_eq(n, 6);
    check_update(&u[0], 1, 2, 3, 4, 0, 0);
    check_update(&u[1], 5, 6, 7, 8, 0, 0);
    check_update(&u[2], 9, 10, 11, 12, 1, 13);
    check_update(&u[3], 0, 0, 0, 0, 0, 0);
    check_update(&u[4], INT64_MAX, 42, 0, 65535, 1, 65535);
    check_update(&u[5], 1, 1, 1, 7, 0, 0);
    free(u);
}
END_TEST

START_TEST(test_empty_inputs)
{
    strata_update *u = (strata_update *)1;
    size_t n = 7;
    ck_assert_int_eq(textio_parse_updates(NULL, 0, 0, NULL, &u, &n, NULL), STRATA_OK);
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(parse_updates_str("# only\n\n  \r\n#x", 0, &u, &n, NULL), STRATA_OK);
    ck_assert_uint_eq(n, 0);
    free(u);
}
END_TEST

START_TEST(test_update_errors)
{
    /* Every class of error names the 1-based line, counted from line_base. */
    expect_update_error("1 2 3 4\n1 2 3\n", 0, "line 2:", "too few");
    expect_update_error("1 2 3 4\n\n1 2 3 4 5 6\n", 0, "line 3:", "too many");
    expect_update_error("1 2 3 4\n1 2 3 4x\n", 10, "line 12:", "\"1 2 3 4x\"");
    expect_update_error("0x10 2 3 4\n", 0, "line 1:", "not a decimal integer");
    expect_update_error("1 2.5 3 4\n", 0, "line 1:", "\"2.5\"");
    expect_update_error("1 2 3 4.0\n", 0, "line 1:", "not a decimal");
    expect_update_error("1 2 3 +4\n", 0, "line 1:", "not a decimal");
    expect_update_error("1 2 3 4 - \n", 0, "line 1:", "not a decimal");
    expect_update_error("1 2 3 4\n1 -2 3 4\n", 0, "line 2:", "negative");
    expect_update_error("-1 2 3 4\n", 5, "line 6:", "x = -1 is negative");
    expect_update_error("1 2 9223372036854775808 4\n", 0, "line 1:", "does not fit int64");
    expect_update_error("1 2 99999999999999999999999 4\n", 0, "line 1:", "int64");
    expect_update_error("1 2 3 65536\n", 0, "line 1:", "material 65536 is out of range");
    expect_update_error("1 2 3 -1\n", 0, "line 1:", "material -1 is out of range");
    expect_update_error("1 2 3 4 70000\n", 0, "line 1:", "expected 70000 is out of range");
    expect_update_error("1 2 3 4 99999999999999999999999999\n", 0, "line 1:", "out of range");
    expect_update_error("1\v2 3 4\n", 0, "line 1:", "not a decimal");
    expect_update_error("1 2 3 4\r\r\n", 0, "line 1:", "not a decimal");
    /* A big line_base (the MPI_Exscan offset of a later rank). */
    expect_update_error("\n\n\nx\n", 1000000000000ULL, "line 1000000000004:", NULL);
    /* Long lines are quoted truncated. */
    char longline[300];
    memset(longline, '7', sizeof longline);
    memcpy(longline + 200, " 1 2 x", 7);
    expect_update_error(longline, 0, "line 1:", "...\"");
}
END_TEST

START_TEST(test_error_quote_sanitized)
{
    const char text[] = {'1', ' ', '2', ' ', '3', ' ', '\0', '\x01', '\xff'};
    strata_update *u = NULL;
    size_t n = 0;
    strata_error err;
    ck_assert_int_eq(textio_parse_updates(text, sizeof text, 0, NULL, &u, &n, &err),
                     STRATA_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.message, "\"1 2 3 ???\""));
}
END_TEST

START_TEST(test_last_error_thread)
{
    ck_assert_int_eq(
        parse_updates_str("1 2 q 4\n", 41, &(strata_update *){NULL}, &(size_t){0}, NULL),
        STRATA_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(error_thread_message(), "line 42:"));
}
END_TEST

/* ---- points -------------------------------------------------------------------- */

START_TEST(test_points)
{
    const char *text = "# points\n1 2 3\r\n\n 4\t5 6 # c\n7 8 9";
    int64_t(*p)[3] = NULL;
    size_t n = 0;
    ck_assert_int_eq(textio_parse_points(text, strlen(text), 0, NULL, &p, &n, NULL), STRATA_OK);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < 3; i++)
        for (int a = 0; a < 3; a++)
            ck_assert_int_eq(p[i][a], (int64_t)(3 * i + (size_t)a + 1));
    free(p);

    struct {
        const char *text;
        const char *frag;
    } bad[] = {
        {"1 2 3\n1 2\n", "line 2: too few"},
        {"1 2 3 4\n", "line 1: too many"},
        {"1 2 -3\n", "line 1: coordinate z = -3"},
        {"1 2 3e2\n", "line 1: z \"3e2\""},
        {"\n\n1 a 3\n", "line 3:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strata_error err;
        p = (int64_t(*)[3])1;
        ck_assert_int_eq(
            textio_parse_points(bad[i].text, strlen(bad[i].text), 0, NULL, &p, &n, &err),
            STRATA_ERR_PARSE);
        ck_assert_ptr_null(p);
        ck_assert_uint_eq(n, 0);
        ck_assert_msg(strstr(err.message, bad[i].frag), "\"%s\" lacks \"%s\"", err.message,
                      bad[i].frag);
    }
}
END_TEST

START_TEST(test_count_lines)
{
    ck_assert_uint_eq(textio_count_lines(NULL, 0), 0);
    ck_assert_uint_eq(textio_count_lines("", 0), 0);
    ck_assert_uint_eq(textio_count_lines("abc", 3), 0);
    ck_assert_uint_eq(textio_count_lines("a\nb\n\nc", 6), 3);
    ck_assert_uint_eq(textio_count_lines("\n\n\n", 3), 3);
}
END_TEST

/* ---- binary ---------------------------------------------------------------------- */

static strata_update random_update(unsigned *seed)
{
    strata_update u = {0};
    u.x = (int64_t)rand_r(seed) * 3;
    u.y = rand_r(seed) % 2 ? INT64_MAX - rand_r(seed) % 5 : rand_r(seed) % 1000;
    u.z = rand_r(seed) % 100;
    u.material = (uint16_t)rand_r(seed);
    u.has_expected = (uint8_t)(rand_r(seed) % 2);
    u.expected = u.has_expected ? (uint16_t)rand_r(seed) : 0;
    return u;
}

static void assert_same_updates(const strata_update *a, const strata_update *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_update(&a[i], b[i].x, b[i].y, b[i].z, b[i].material, b[i].has_expected,
                     b[i].expected);
}

START_TEST(test_binary_round_trip)
{
    make_temp_dir();
    char path[512];
    temp_path(path, sizeof path, "round.bin");
    unsigned seed = 12345;
    size_t n = 5000; /* more than one write batch */
    strata_update *in = malloc(n * sizeof *in);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < n; i++)
        in[i] = random_update(&seed);
    strata_error err;
    ck_assert_int_eq(textio_write_binary(path, in, n, &err), STRATA_OK);
    int binary = 0;
    ck_assert_int_eq(textio_is_binary(path, &binary, &err), STRATA_OK);
    ck_assert_int_eq(binary, 1);

    size_t len = 0;
    uint8_t *data = read_file(path, &len);
    ck_assert_uint_eq(len, 16 + 32 * n);
    ck_assert_int_eq(memcmp(data, "STRUPD01", 8), 0);
    ck_assert_uint_eq(data[8], n & 0xff); /* little endian count */
    ck_assert_uint_eq(data[9], n >> 8);
    uint64_t count = 0;
    ck_assert_int_eq(textio_check_binary_header(data, len, &count, &err), STRATA_OK);
    ck_assert_uint_eq(count, n);
    strata_update *out = NULL;
    size_t got = 0;
    ck_assert_int_eq(textio_parse_binary(data + 16, len - 16, 0, NULL, &out, &got, &err),
                     STRATA_OK);
    ck_assert_uint_eq(got, n);
    assert_same_updates(out, in, n);
    free(out);

    /* Empty file of updates. */
    ck_assert_int_eq(textio_write_binary(path, NULL, 0, &err), STRATA_OK);
    free(data);
    data = read_file(path, &len);
    ck_assert_uint_eq(len, 16);
    ck_assert_int_eq(textio_check_binary_header(data, len, &count, &err), STRATA_OK);
    ck_assert_uint_eq(count, 0);

    /* A text file is not binary. */
    temp_path(path, sizeof path, "text.txt");
    write_file(path, "1 2 3 4\n", 8);
    ck_assert_int_eq(textio_is_binary(path, &binary, &err), STRATA_OK);
    ck_assert_int_eq(binary, 0);
    write_file(path, "STRUPD", 6);
    ck_assert_int_eq(textio_is_binary(path, &binary, &err), STRATA_OK);
    ck_assert_int_eq(binary, 0);

    /* Negative coordinates cannot be written. */
    in[3].z = -1;
    temp_path(path, sizeof path, "neg.bin");
    ck_assert_int_eq(textio_write_binary(path, in, n, &err), STRATA_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "update 3"));
    ck_assert_int_ne(access(path, F_OK), 0);
    free(in);
    free(data);
    remove_temp_dir();
}
END_TEST

static void make_record(uint8_t r[32], uint64_t x, uint16_t m)
{
    memset(r, 0, 32);
    for (int i = 0; i < 8; i++)
        r[i] = (uint8_t)(x >> 8 * i);
    r[24] = (uint8_t)m;
    r[25] = (uint8_t)(m >> 8);
}

static void expect_binary_error(const uint8_t *records, size_t len, uint64_t base, const char *frag)
{
    strata_update *u = (strata_update *)1;
    size_t n = 5;
    strata_error err;
    ck_assert_int_eq(textio_parse_binary(records, len, base, NULL, &u, &n, &err), STRATA_ERR_PARSE);
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err.message, frag), "\"%s\" lacks \"%s\"", err.message, frag);
}

/* With the world's dims, a coordinate at or past them is a range error naming
 * the line (text) or record (binary), quoting the line; inside ones parse. */
START_TEST(test_outside_world)
{
    const int64_t dims[3] = {64, 48, 40};
    strata_update *u = NULL;
    size_t n = 0;
    strata_error err;
    const char ok[] = "0 0 0 1\n63 47 39 2 1\n";
    ck_assert_int_eq(textio_parse_updates(ok, strlen(ok), 0, dims, &u, &n, &err), STRATA_OK);
    ck_assert_uint_eq(n, 2);
    free(u);
    const char *bad[] = {"1 1 1 1\n# c\n\n64 0 0 5\n", "0 48 0 1\n", "0 0 40 1 2\r\n"};
    const char *want[] = {
        "line 4: voxel (64, 0, 0) is outside the world (64 x 48 x 40): \"64 0 0 5\"",
        "line 11: voxel (0, 48, 0) is outside the world",
        "line 1: voxel (0, 0, 40) is outside the world (64 x 48 x 40): \"0 0 40 1 2\""};
    const uint64_t base[] = {0, 10, 0};
    for (int i = 0; i < 3; i++) {
        u = (strata_update *)1;
        ck_assert_int_eq(textio_parse_updates(bad[i], strlen(bad[i]), base[i], dims, &u, &n, &err),
                         STRATA_ERR_RANGE);
        ck_assert_ptr_null(u);
        ck_assert_msg(strstr(err.message, want[i]), "\"%s\" lacks \"%s\"", err.message, want[i]);
    }
    int64_t(*p)[3] = NULL;
    const char pts[] = "1 2 3\n1 2 40\n";
    ck_assert_int_eq(textio_parse_points(pts, strlen(pts), 0, dims, &p, &n, &err),
                     STRATA_ERR_RANGE);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.message, "line 2: voxel (1, 2, 40)"), "%s", err.message);
    ck_assert_int_eq(textio_parse_points(pts, strlen(pts), 0, NULL, &p, &n, &err), STRATA_OK);
    ck_assert_uint_eq(n, 2);
    free(p);
    uint8_t rec[2][32];
    make_record(rec[0], 63, 1);
    make_record(rec[1], 64, 1);
    ck_assert_int_eq(textio_parse_binary(&rec[0][0], sizeof rec, 7, dims, &u, &n, &err),
                     STRATA_ERR_RANGE);
    ck_assert_msg(strstr(err.message, "record 8 (0-based): voxel (64, 0, 0) is outside"), "%s",
                  err.message);
    ck_assert_int_eq(textio_parse_binary(&rec[0][0], 32, 7, dims, &u, &n, &err), STRATA_OK);
    ck_assert_uint_eq(n, 1);
    free(u);
}
END_TEST

START_TEST(test_binary_errors)
{
    uint8_t header[16] = "STRUPD01";
    header[8] = 2;
    uint64_t count = 9;
    strata_error err;
    ck_assert_int_eq(textio_check_binary_header(header, 16 + 64, &count, &err), STRATA_OK);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(textio_check_binary_header(header, 16 + 63, &count, &err), STRATA_ERR_FORMAT);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(textio_check_binary_header(header, 16 + 96, &count, &err), STRATA_ERR_FORMAT);
    ck_assert_int_eq(textio_check_binary_header(header, 15, &count, &err), STRATA_ERR_FORMAT);
    /* A count whose size overflows 64 bits but wraps to the file size. */
    memset(header + 8, 0, 8);
    header[15] = 0x08; /* count = 2^59: 16 + 32 * 2^59 wraps to 16 */
    ck_assert_int_eq(textio_check_binary_header(header, 16, &count, &err), STRATA_ERR_FORMAT);
    memset(header + 8, 0xff, 8);
    ck_assert_int_eq(textio_check_binary_header(header, UINT64_MAX, &count, &err),
                     STRATA_ERR_FORMAT);
    memcpy(header, "STRUPD02", 8);
    memset(header + 8, 0, 8);
    ck_assert_int_eq(textio_check_binary_header(header, 16, &count, &err), STRATA_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "magic"));

    uint8_t rec[3][32];
    for (int i = 0; i < 3; i++)
        make_record(rec[i], (uint64_t)i, 7);
    strata_update *u = NULL;
    size_t n = 0;
    ck_assert_int_eq(textio_parse_binary(&rec[0][0], sizeof rec, 0, NULL, &u, &n, &err), STRATA_OK);
    ck_assert_uint_eq(n, 3);
    check_update(&u[2], 2, 0, 0, 7, 0, 0);
    free(u);

    rec[1][28] = 2;
    expect_binary_error(&rec[0][0], sizeof rec, 16, "record 17 (0-based): has_expected is 2");
    rec[1][28] = 1;
    rec[1][30] = 1;
    expect_binary_error(&rec[0][0], sizeof rec, 0, "record 1 (0-based): padding");
    rec[1][30] = 0;
    rec[2][15] = 0x80; /* y < 0 */
    expect_binary_error(&rec[0][0], sizeof rec, 0, "record 2 (0-based): coordinate y is negative");
    rec[2][15] = 0;
    expect_binary_error(&rec[0][0], sizeof rec - 1, 4, "not a multiple");
}
END_TEST

START_TEST(test_missing_files)
{
    strata_error err;
    uint64_t b = 1, e = 1;
    const char *path = "/nonexistent-strata-dir/updates.txt";
    ck_assert_int_eq(textio_slice(path, 0, 1, 0, &b, &e, &err), STRATA_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, "No such file"));
    int binary = 1;
    ck_assert_int_eq(textio_is_binary(path, &binary, &err), STRATA_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_int_eq(textio_write_binary(path, NULL, 0, &err), STRATA_ERR_NOT_FOUND);
    ck_assert_int_eq(textio_slice("/", 0, 1, 0, &b, &e, &err), STRATA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "not a regular file"));
    ck_assert_int_eq(textio_slice(path, 2, 2, 0, &b, &e, &err), STRATA_ERR_ARG);
    ck_assert_int_eq(textio_slice(path, 0, 0, 0, &b, &e, &err), STRATA_ERR_ARG);
}
END_TEST

/* ---- slicing ---------------------------------------------------------------------- */

/* A random update file: comments, blank lines, CRLF, long lines, maybe no final '\n'. */
static char *random_text(unsigned *seed, size_t *len)
{
    size_t cap = 4u << 20, used = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    int lines = rand_r(seed) % 400;
    for (int i = 0; i < lines; i++) {
        ck_assert_uint_lt(used, cap - 16384);
        int kind = rand_r(seed) % 10;
        if (kind == 0) {
            used += (size_t)sprintf(text + used, "# comment %d\n", i);
        } else if (kind == 1) {
            text[used++] = '\n';
        } else if (kind == 2) { /* a line longer than the slice window */
            used += (size_t)sprintf(text + used, "%d 1 2 3 #", i);
            size_t pad = 4000 + (size_t)(rand_r(seed) % 6000);
            memset(text + used, 'c', pad);
            used += pad;
            text[used++] = '\n';
        } else {
            used += (size_t)sprintf(text + used, "%d %d %d %d", i, rand_r(seed) % 100,
                                    rand_r(seed) % 100, rand_r(seed) % 65536);
            if (kind == 3)
                used += (size_t)sprintf(text + used, " %d", rand_r(seed) % 65536);
            used += (size_t)sprintf(text + used, kind == 4 ? "\r\n" : "\n");
        }
    }
    if (used > 0 && rand_r(seed) % 3 == 0)
        used--; /* drop the final '\n' */
    *len = used;
    return text;
}

static void check_text_slices(const char *path, const char *text, size_t len)
{
    strata_update *whole = NULL;
    size_t whole_n = 0;
    strata_error err;
    ck_assert_int_eq(textio_parse_updates(text, len, 0, NULL, &whole, &whole_n, &err), STRATA_OK);
    for (int ranks = 1; ranks <= 7; ranks++) {
        uint64_t expect_begin = 0, lines_before = 0;
        size_t seen = 0;
        for (int r = 0; r < ranks; r++) {
            uint64_t b = 0, e = 0;
            ck_assert_int_eq(textio_slice(path, r, ranks, 0, &b, &e, &err), STRATA_OK);
            ck_assert_uint_eq(b, expect_begin); /* contiguous, in order */
            ck_assert_uint_le(b, e);
            ck_assert_uint_le(e, len);
            /* Each cut at a line start (or at the end of a file without a final '\n'). */
            ck_assert_msg(b == 0 || b == len || text[b - 1] == '\n', "rank %d of %d: begin %llu", r,
                          ranks, (unsigned long long)b);
            strata_update *part = NULL;
            size_t part_n = 0;
            ck_assert_int_eq(textio_parse_updates(text + b, (size_t)(e - b), lines_before, NULL,
                                                  &part, &part_n, &err),
                             STRATA_OK);
            ck_assert_uint_le(seen + part_n, whole_n);
            if (part_n > 0) /* whole is NULL when the file has no updates */
                assert_same_updates(part, whole + seen, part_n);
            seen += part_n;
            free(part);
            lines_before += textio_count_lines(text + b, (size_t)(e - b));
            expect_begin = e;
        }
        ck_assert_uint_eq(expect_begin, len); /* every byte covered */
        ck_assert_uint_eq(seen, whole_n);
    }
    free(whole);
}

START_TEST(test_slice_text_property)
{
    make_temp_dir();
    char path[512];
    temp_path(path, sizeof path, "slice.txt");
    unsigned seed = 20240601;
    for (int trial = 0; trial < 60; trial++) {
        size_t len = 0;
        char *text = random_text(&seed, &len);
        write_file(path, text, len);
        check_text_slices(path, text, len);
        free(text);
    }
    /* Tiny files: empty, one byte, newlines only. */
    const char *tiny[] = {"", "\n", "1 2 3 4", "\n\n\n\n\n\n\n\n", "1 1 1 1\n2 2 2 2\n"};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
        write_file(path, tiny[i], strlen(tiny[i]));
        check_text_slices(path, tiny[i], strlen(tiny[i]));
    }
    remove_temp_dir();
}
END_TEST

START_TEST(test_slice_text_error_line_numbers)
{
    /* A bad line found by a later rank is reported with its whole-file line number. */
    make_temp_dir();
    char path[512];
    temp_path(path, sizeof path, "bad.txt");
    char text[4096] = "";
    for (int i = 0; i < 100; i++)
        strcat(text, i == 77 ? "1 2 oops 4\n" : "1 2 3 4\n");
    size_t len = strlen(text);
    write_file(path, text, len);
    uint64_t lines_before = 0;
    int failures = 0;
    for (int r = 0; r < 4; r++) {
        uint64_t b, e;
        strata_error err;
        ck_assert_int_eq(textio_slice(path, r, 4, 0, &b, &e, &err), STRATA_OK);
        strata_update *u = NULL;
        size_t n = 0;
        if (textio_parse_updates(text + b, (size_t)(e - b), lines_before, NULL, &u, &n, &err) !=
            0) {
            ck_assert_ptr_nonnull(strstr(err.message, "line 78:"));
            failures++;
        }
        free(u);
        lines_before += textio_count_lines(text + b, (size_t)(e - b));
    }
    ck_assert_int_eq(failures, 1);
    remove_temp_dir();
}
END_TEST

START_TEST(test_slice_binary_property)
{
    make_temp_dir();
    char path[512];
    temp_path(path, sizeof path, "slice.bin");
    unsigned seed = 777;
    size_t sizes[] = {0, 1, 2, 6, 7, 8, 100, 1001};
    strata_error err;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        strata_update *in = malloc((n ? n : 1) * sizeof *in);
        ck_assert_ptr_nonnull(in);
        for (size_t i = 0; i < n; i++)
            in[i] = random_update(&seed);
        ck_assert_int_eq(textio_write_binary(path, in, n, &err), STRATA_OK);
        size_t len = 0;
        uint8_t *data = read_file(path, &len);
        for (int ranks = 1; ranks <= 7; ranks++) {
            uint64_t expect_begin = 16;
            size_t seen = 0;
            for (int r = 0; r < ranks; r++) {
                uint64_t b = 0, e = 0;
                ck_assert_int_eq(textio_slice(path, r, ranks, 1, &b, &e, &err), STRATA_OK);
                ck_assert_uint_eq(b, expect_begin);
                ck_assert_uint_le(b, e);
                ck_assert_uint_eq((b - 16) % 32, 0);
                ck_assert_uint_eq((e - 16) % 32, 0);
                strata_update *part = NULL;
                size_t part_n = 0;
                ck_assert_int_eq(textio_parse_binary(data + b, (size_t)(e - b), (b - 16) / 32, NULL,
                                                     &part, &part_n, &err),
                                 STRATA_OK);
                assert_same_updates(part, in + seen, part_n);
                seen += part_n;
                free(part);
                expect_begin = e;
            }
            ck_assert_uint_eq(expect_begin, len);
            ck_assert_uint_eq(seen, n);
        }
        free(data);
        free(in);
    }
    write_file(path, "STRUPD01\0\0\0\0\0\0\0\0xyz", 19); /* not header + whole records */
    uint64_t b, e;
    ck_assert_int_eq(textio_slice(path, 0, 2, 1, &b, &e, &err), STRATA_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    remove_temp_dir();
}
END_TEST

/* ---- speed --------------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

START_TEST(test_parse_speed)
{
    /* Reported, not asserted: sanitizer and debug builds are slower. */
    size_t cap = 32u << 20, used = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    unsigned seed = 99;
    while (used < cap - 64)
        used += (size_t)snprintf(text + used, cap - used, "%d %d %d %d\n", rand_r(&seed) % 100000,
                                 rand_r(&seed) % 100000, rand_r(&seed) % 4096, rand_r(&seed) % 256);
    strata_update *u = NULL;
    size_t n = 0;
    double t0 = now_seconds();
    ck_assert_int_eq(textio_parse_updates(text, used, 0, NULL, &u, &n, NULL), STRATA_OK);
    double t1 = now_seconds();
    fprintf(stderr, "textio: parsed %zu updates, %.1f MB in %.3f s: %.0f MB/s\n", n,
            (double)used / 1e6, t1 - t0, (double)used / 1e6 / (t1 - t0));
    ck_assert_uint_eq(n, textio_count_lines(text, used));
    free(u);
    free(text);
}
END_TEST

static Suite *textio_suite(void)
{
    Suite *s = suite_create("textio");
    TCase *tc = tcase_create("text");
    tcase_add_test(tc, test_valid_updates);
    tcase_add_test(tc, test_empty_inputs);
    tcase_add_test(tc, test_update_errors);
    tcase_add_test(tc, test_error_quote_sanitized);
    tcase_add_test(tc, test_last_error_thread);
    tcase_add_test(tc, test_points);
    tcase_add_test(tc, test_count_lines);
    suite_add_tcase(s, tc);
    tc = tcase_create("binary");
    tcase_add_test(tc, test_binary_round_trip);
    tcase_add_test(tc, test_binary_errors);
    tcase_add_test(tc, test_outside_world);
    tcase_add_test(tc, test_missing_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("slice");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_slice_text_property);
    tcase_add_test(tc, test_slice_text_error_line_numbers);
    tcase_add_test(tc, test_slice_binary_property);
    tcase_add_test(tc, test_parse_speed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(textio_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
