/* test_manifest.c: the MANIFEST format: round trips, and every kind of damage refused
 * with a clear message (checksum, truncation, missing or repeated fields, newer
 * format, splitters, segment order); reading and writing it on disk. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "manifest.h"
#include "store.h"

/* ---- helpers ---------------------------------------------------------------- */

static manifest sample_manifest(void)
{
    manifest m;
    memset(&m, 0, sizeof m);
    m.format = STRATA_FORMAT_VERSION;
    m.epoch = 7;
    m.commits = 9;
    m.writer_ranks = 3;
    m.dims[0] = 100, m.dims[1] = 70, m.dims[2] = 45;
    m.chunk_edge = 16;
    m.voxel_size[0] = 0.5, m.voxel_size[1] = 1.0 / 3.0, m.voxel_size[2] = 1e-3;
    m.origin[0] = -1234.5678901234567, m.origin[1] = 0, m.origin[2] = 6.02e23;
    m.index_epoch = 5, m.stale_chunks = 12, m.rebuild_chunks = 88, m.rebuild_seconds = 1.25;
    m.split_ranks = 3;
    m.split = malloc(4 * sizeof *m.split);
    m.split[0] = 0, m.split[1] = 40, m.split[2] = 40, m.split[3] = UINT64_MAX;
    m.segment_count = 3;
    m.segments = malloc(3 * sizeof *m.segments);
    m.segments[0].epoch = 2, m.segments[1].epoch = 5, m.segments[2].epoch = 7;
    m.material_count = 3;
    m.materials = calloc(3, sizeof *m.materials);
    m.materials[0] = (strata_material){0, "air", {1, 2, 3}};
    m.materials[1] = (strata_material){8, "granite with spaces", {160, 145, 145}};
    m.materials[2] = (strata_material){65535, "last id", {255, 0, 255}};
    return m;
}

/* Formatted sample as a NUL-terminated string (the parser is given its length only). */
static char *sample_text(size_t *length)
{
    manifest m = sample_manifest();
    strata_error err;
    char *text;
    ck_assert_int_eq(manifest_format(&m, &text, length, &err), STRATA_OK);
    manifest_free(&m);
    char *copy = malloc(*length + 1);
    memcpy(copy, text, *length);
    copy[*length] = '\0';
    free(text);
    return copy;
}

/* Replace the checksum line so that a deliberate edit is checked by the parser itself. */
static char *reseal(const char *body)
{
    size_t n = strlen(body);
    char *out = malloc(n + 32);
    memcpy(out, body, n);
    snprintf(out + n, 32, "checksum %08x\n", checksum_update(0, body, n));
    return out;
}

/* The sample's body (without the checksum line) with one line edited:
 * the line starting with `prefix` becomes `replacement` (NULL: removed). */
static char *edited(const char *prefix, const char *replacement)
{
    size_t length;
    char *text = sample_text(&length);
    char *check = strstr(text, "checksum ");
    *check = '\0';
    char *body = malloc(length + 512);
    body[0] = '\0';
    int done = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = (size_t)(nl - line) + 1;
        if (!done && !strncmp(line, prefix, strlen(prefix))) {
            done = 1;
            if (replacement)
                strcat(body, replacement);
        } else {
            strncat(body, line, n);
        }
        line += n;
    }
    ck_assert_msg(done, "no line starts with '%s'", prefix);
    char *sealed = reseal(body);
    free(body);
    free(text);
    return sealed;
}

/* Parse a heap copy of exactly the text's bytes (no NUL after it). */
static strata_status parse(const char *text, size_t length, manifest *m, strata_error *err)
{
    char *copy = malloc(length ? length : 1);
    memcpy(copy, text, length);
    strata_status st = manifest_parse(copy, length, m, err);
    free(copy);
    return st;
}

static void expect_refused(const char *text, strata_status status, const char *words)
{
    manifest m;
    strata_error err;
    memset(&err, 0, sizeof err);
    strata_status st = parse(text, strlen(text), &m, &err);
    ck_assert_msg(st == status, "status %d (want %d) for:\n%s\nmessage: %s", st, status, text,
                  err.message);
    ck_assert_msg(strstr(err.message, words) != NULL, "message '%s' lacks '%s'", err.message,
                  words);
    ck_assert_ptr_null(m.split); /* nothing half-parsed is left allocated */
    ck_assert_ptr_null(m.segments);
    ck_assert_ptr_null(m.materials);
}

static void expect_equal(const manifest *a, const manifest *b)
{
    ck_assert_int_eq(a->format, b->format);
    ck_assert_uint_eq(a->epoch, b->epoch);
    ck_assert_uint_eq(a->commits, b->commits);
    ck_assert_int_eq(a->writer_ranks, b->writer_ranks);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(a->dims[i], b->dims[i]);
        ck_assert(a->voxel_size[i] == b->voxel_size[i]); /* %.17g round-trips exactly */
        ck_assert(a->origin[i] == b->origin[i]);
    }
    ck_assert_int_eq(a->chunk_edge, b->chunk_edge);
    ck_assert_uint_eq(a->index_epoch, b->index_epoch);
    ck_assert_uint_eq(a->stale_chunks, b->stale_chunks);
    ck_assert_uint_eq(a->rebuild_chunks, b->rebuild_chunks);
    ck_assert(a->rebuild_seconds == b->rebuild_seconds);
    ck_assert_int_eq(a->split_ranks, b->split_ranks);
    for (int r = 0; r <= a->split_ranks; r++)
        ck_assert_uint_eq(a->split[r], b->split[r]);
    ck_assert_uint_eq(a->segment_count, b->segment_count);
    for (size_t i = 0; i < a->segment_count; i++)
        ck_assert_uint_eq(a->segments[i].epoch, b->segments[i].epoch);
    ck_assert_uint_eq(a->material_count, b->material_count);
    for (size_t i = 0; i < a->material_count; i++) {
        ck_assert_uint_eq(a->materials[i].id, b->materials[i].id);
        ck_assert_str_eq(a->materials[i].name, b->materials[i].name);
        ck_assert_mem_eq(a->materials[i].rgb, b->materials[i].rgb, 3);
    }
}

/* ---- round trips ------------------------------------------------------------- */

START_TEST(round_trip)
{
    manifest m = sample_manifest(), back, copy;
    strata_error err;
    char *text, *again;
    size_t length, length2;
    ck_assert_int_eq(manifest_format(&m, &text, &length, &err), STRATA_OK);
    ck_assert_int_eq(parse(text, length, &back, &err), STRATA_OK);
    expect_equal(&m, &back);
    /* Formatting the parsed manifest gives the same bytes. */
    ck_assert_int_eq(manifest_format(&back, &again, &length2, &err), STRATA_OK);
    ck_assert_uint_eq(length, length2);
    ck_assert_mem_eq(text, again, length);
    ck_assert_int_eq(manifest_copy(&back, &copy, &err), STRATA_OK);
    expect_equal(&m, &copy);
    ck_assert_ptr_ne(copy.split, back.split);
    manifest_free(&copy);
    manifest_free(&back);
    ck_assert_ptr_null(back.split);
    manifest_free(&m);
    free(text);
    free(again);
}
END_TEST

START_TEST(round_trip_minimal)
{
    /* A fresh world: epoch 0, no segments, no materials, one rank. */
    manifest m = sample_manifest(), back;
    m.epoch = 0, m.commits = 0;
    m.segment_count = 0;
    m.material_count = 0;
    m.split_ranks = 1;
    m.split[1] = UINT64_MAX;
    strata_error err;
    char *text;
    size_t length;
    ck_assert_int_eq(manifest_format(&m, &text, &length, &err), STRATA_OK);
    ck_assert_int_eq(parse(text, length, &back, &err), STRATA_OK);
    expect_equal(&m, &back);
    manifest_free(&back);
    manifest_free(&m);
    free(text);
}
END_TEST

/* ---- damage --------------------------------------------------------------------- */

START_TEST(every_flipped_byte_is_refused)
{
    size_t length;
    char *text = sample_text(&length);
    char *copy = malloc(length);
    for (size_t i = 0; i < length; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, text, length);
            copy[i] ^= (char)(1 << bit);
            manifest m;
            strata_error err;
            strata_status st = manifest_parse(copy, length, &m, &err);
            ck_assert_msg(st != STRATA_OK, "flipping bit %d of byte %zu was not noticed", bit, i);
            ck_assert_ptr_null(m.split);
            /* Any flip in the body is a checksum mismatch. */
            if (i < length - 19) /* before the newline ending the body */
                ck_assert_msg(st == STRATA_ERR_CORRUPT && strstr(err.message, "checksum mismatch"),
                              "byte %zu: %d %s", i, st, err.message);
        }
    free(copy);
    free(text);
}
END_TEST

START_TEST(every_truncation_is_refused)
{
    size_t length;
    char *text = sample_text(&length);
    for (size_t n = 0; n < length; n++) {
        manifest m;
        strata_error err;
        strata_status st = parse(text, n, &m, &err);
        ck_assert_msg(st == STRATA_ERR_FORMAT || st == STRATA_ERR_CORRUPT,
                      "truncation to %zu bytes gives %d", n, st);
        ck_assert(strstr(err.message, "MANIFEST") != NULL);
    }
    expect_refused("", STRATA_ERR_FORMAT, "missing checksum line");
    /* A checksum line alone over an empty body. */
    char *empty = reseal("");
    expect_refused(empty, STRATA_ERR_FORMAT, "empty");
    free(empty);
    free(text);
}
END_TEST

START_TEST(checksum_line_damage)
{
    size_t length;
    char *text = sample_text(&length);
    text[length - 3] = 'G'; /* not a hex digit */
    expect_refused(text, STRATA_ERR_FORMAT, "checksum digits");
    free(text);
    text = sample_text(&length);
    text[length - 1] = ' '; /* no final newline */
    expect_refused(text, STRATA_ERR_FORMAT, "checksum");
    free(text);
    text = sample_text(&length);
    text[length - 19] = ' '; /* the checksum line no longer starts a line */
    expect_refused(text, STRATA_ERR_FORMAT, "line start");
    free(text);
}
END_TEST

START_TEST(missing_fields)
{
    const char *fields[] = {"epoch ", "commits ",    "writer_ranks ", "dims ",
                            "chunk ", "voxel_size ", "origin ",       "index "};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char *t = edited(fields[i], NULL);
        char words[64];
        snprintf(words, sizeof words, "required field \"%.*s\" missing", (int)strlen(fields[i]) - 1,
                 fields[i]);
        expect_refused(t, STRATA_ERR_FORMAT, words);
        free(t);
    }
    char *t = edited("splitters ", NULL);
    expect_refused(t, STRATA_ERR_FORMAT, "no splitters");
    free(t);
    t = edited("strata-manifest", NULL);
    expect_refused(t, STRATA_ERR_FORMAT, "not a Strata manifest");
    free(t);
}
END_TEST

START_TEST(newer_format)
{
    char newer[64];
    snprintf(newer, sizeof newer, "strata-manifest %d\n", STRATA_FORMAT_VERSION + 1);
    char *t = edited("strata-manifest", newer);
    expect_refused(t, STRATA_ERR_VERSION, "newer");
    free(t);
    t = edited("strata-manifest", "strata-manifest 0\n");
    expect_refused(t, STRATA_ERR_FORMAT, "format version");
    free(t);
    t = edited("strata-manifest", "strata-manifest 99999999999999999999999\n");
    expect_refused(t, STRATA_ERR_FORMAT, "format version");
    free(t);
}
END_TEST

START_TEST(bad_splitters)
{
    static const struct {
        const char *line, *words;
    } cases[] = {
        {"splitters 3 1 40 40 18446744073709551615\n", "span"},
        {"splitters 3 0 40 40 18446744073709551614\n", "span"},
        {"splitters 3 0 41 40 18446744073709551615\n", "not ascending"},
        {"splitters 3 0 40 18446744073709551615\n", "splitter"},
        {"splitters 3 0 40 40 18446744073709551615 7\n", "junk after splitters"},
        {"splitters 0 0\n", "rank count"},
        {"splitters 16777217 0 18446744073709551615\n", "rank count"},
        {"splitters 2 0 18446744073709551616 18446744073709551615\n", "bad splitter"},
        {"splitters 1 0 -1\n", "bad splitter"},
        {"splitters 3 0 40 40 18446744073709551615 \n", "splitter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = edited("splitters ", cases[i].line);
        expect_refused(t, STRATA_ERR_FORMAT, cases[i].words);
        free(t);
    }
    /* Given twice. */
    char *t = edited("splitters ",
                     "splitters 1 0 18446744073709551615\nsplitters 1 0 18446744073709551615\n");
    expect_refused(t, STRATA_ERR_FORMAT, "twice");
    free(t);
}
END_TEST

START_TEST(bad_segments)
{
    char *t = edited("segment 5", "segment 1\n"); /* 2, 1, 7 */
    expect_refused(t, STRATA_ERR_FORMAT, "ascending epoch order");
    free(t);
    t = edited("segment 5", "segment 2\n"); /* repeated */
    expect_refused(t, STRATA_ERR_FORMAT, "ascending epoch order");
    free(t);
    t = edited("segment 7", "segment 8\n"); /* newer than the epoch */
    expect_refused(t, STRATA_ERR_FORMAT, "newer than the epoch");
    free(t);
    t = edited("segment 2", "segment 0\n");
    expect_refused(t, STRATA_ERR_FORMAT, "segment epoch");
    free(t);
    t = edited("segment 2", "segment 2 3\n");
    expect_refused(t, STRATA_ERR_FORMAT, "junk after segment");
    free(t);
}
END_TEST

START_TEST(bad_values)
{
    static const struct {
        const char *prefix, *line, *words;
    } cases[] = {
        {"epoch ", "epoch x\n", "bad value"},
        {"epoch ", "epoch 7 8\n", "bad value"},
        {"epoch ", "epoch  7\n", "bad value"},
        {"epoch ", "epoch 99999999999999999999\n", "bad value"},
        {"commits ", "commits 9\ncommits 9\n", "twice"},
        {"writer_ranks ", "writer_ranks 0\n", "bad value"},
        {"dims ", "dims 100 70\n", "bad value"},
        {"dims ", "dims 100 0 45\n", "bad value"},
        {"dims ", "dims 100 -70 45\n", "bad value"},
        {"chunk ", "chunk 8\n", "bad value"},
        {"chunk ", "chunk 512\n", "bad value"},
        {"chunk ", "chunk 48\n", "power of two"},
        {"voxel_size ", "voxel_size 1 0 1\n", "bad value"},
        {"voxel_size ", "voxel_size 1 nan 1\n", "bad value"},
        {"voxel_size ", "voxel_size 1 1x 1\n", "bad value"},
        {"origin ", "origin 1 2\n", "bad value"},
        {"origin ", "origin 1e999 0 0\n", "bad value"},
        {"index ", "index 1 2 3\n", "bad value"},
        {"epoch ", "colour 7\n", "unknown field"},
        {"epoch ", "\n", "unknown field"},
        {"material 8", "material 8 1 2 256 granite\n", "bad material"},
        {"material 8", "material 8 1 2 3\n", "bad material"},
        {"material 8", "material 8 1 2 3 \n", "name empty"},
        {"material 8", "material 8 1 2 3 a\tb\n", "control character"},
        {"material 8", "material 0 1 2 3 again\n", "ascending id"},
        {"material 8", "material 65536 1 2 3 big\n", "bad material"},
        {"material 8", "material 8 1 2 3 a name that is far too long for the material name field\n",
         "too long"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = edited(cases[i].prefix, cases[i].line);
        expect_refused(t, STRATA_ERR_FORMAT, cases[i].words);
        /* The message names the line. */
        manifest m;
        strata_error err;
        parse(t, strlen(t), &m, &err);
        ck_assert_msg(strstr(err.message, "MANIFEST") != NULL, "%s", err.message);
        free(t);
    }
}
END_TEST

START_TEST(message_names_the_line)
{
    char *t = edited("chunk ", "chunk 8\n");
    manifest m;
    strata_error err;
    ck_assert_int_eq(parse(t, strlen(t), &m, &err), STRATA_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "MANIFEST line 6:") != NULL, "%s", err.message);
    free(t);
}
END_TEST

/* ---- files ------------------------------------------------------------------------ */

static char temp_dir[256];

static void make_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(temp_dir, sizeof temp_dir, "%s/strata_manifest_XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

static void remove_temp_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(write_and_read_on_disk)
{
    make_temp_dir();
    manifest m = sample_manifest(), back;
    strata_error err;
    ck_assert_int_eq(manifest_write(temp_dir, &m, &err), STRATA_OK);
    ck_assert_int_eq(manifest_read(temp_dir, &back, &err), STRATA_OK);
    expect_equal(&m, &back);
    manifest_free(&back);
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/MANIFEST.tmp", temp_dir);
    ck_assert_int_ne(stat(path, &sb), 0); /* renamed away */
    /* Replacing it keeps one file with the new content. */
    m.epoch = 8;
    m.segments[2].epoch = 8;
    ck_assert_int_eq(manifest_write(temp_dir, &m, &err), STRATA_OK);
    ck_assert_int_eq(manifest_read(temp_dir, &back, &err), STRATA_OK);
    ck_assert_uint_eq(back.epoch, 8);
    manifest_free(&back);

    /* A damaged file on disk: refused, the message names the directory. */
    snprintf(path, sizeof path, "%s/MANIFEST", temp_dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 30, SEEK_SET), 0);
    int c = fgetc(f);
    ck_assert_int_eq(fseek(f, 30, SEEK_SET), 0);
    fputc(c ^ 0x04, f);
    fclose(f);
    ck_assert_int_eq(manifest_read(temp_dir, &back, &err), STRATA_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, temp_dir) && strstr(err.message, "checksum mismatch"), "%s",
                  err.message);
    ck_assert_ptr_null(back.split);

    /* Truncated on disk. */
    ck_assert_int_eq(truncate(path, 50), 0);
    ck_assert_int_eq(manifest_read(temp_dir, &back, &err), STRATA_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "truncated") != NULL, "%s", err.message);

    /* No manifest in an existing directory: not a world. */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(manifest_read(temp_dir, &back, &err), STRATA_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "not a Strata world") != NULL, "%s", err.message);
    /* A directory called MANIFEST is not a manifest. */
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(manifest_read(temp_dir, &back, &err), STRATA_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "not a manifest") != NULL, "%s", err.message);
    ck_assert_int_eq(rmdir(path), 0);
    /* A missing directory. */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nowhere", temp_dir);
    ck_assert_int_eq(manifest_read(missing, &back, &err), STRATA_ERR_NOT_FOUND);
    ck_assert_msg(strstr(err.message, missing) != NULL, "%s", err.message);
    /* Writing into a missing directory fails with the path. */
    ck_assert_int_eq(manifest_write(missing, &m, &err), STRATA_ERR_IO);
    ck_assert_msg(strstr(err.message, missing) != NULL, "%s", err.message);
    manifest_free(&m);
    remove_temp_dir();
}
END_TEST

START_TEST(segment_names)
{
    char name[64];
    manifest_segment_name(42, name, sizeof name);
    ck_assert_str_eq(name, "seg-00000000000000000042.h5");
    manifest_segment_name(UINT64_MAX >> 1, name, sizeof name);
    ck_assert_str_eq(name, "seg-09223372036854775807.h5");
    /* format 3: an index segment id (bit 63) is named by its serial */
    manifest_segment_name(STORE_INDEX_SEGMENT | 7, name, sizeof name);
    ck_assert_str_eq(name, "idx-00000000000000000007.h5");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, round_trip_minimal);
    tcase_add_test(tc, every_flipped_byte_is_refused);
    tcase_add_test(tc, every_truncation_is_refused);
    tcase_add_test(tc, checksum_line_damage);
    tcase_add_test(tc, missing_fields);
    tcase_add_test(tc, newer_format);
    tcase_add_test(tc, bad_splitters);
    tcase_add_test(tc, bad_segments);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, message_names_the_line);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_test(files, write_and_read_on_disk);
    tcase_add_test(files, segment_names);
    suite_add_tcase(s, files);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
