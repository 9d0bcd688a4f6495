/*
 * fuzz_textio.c: libFuzzer harness for the update and point file parsers.
 *
 * Every input is fed to the text parsers as a whole file and, when it is at
 * least a header long, to the binary header check and record parser. The
 * parsers must never read outside (data, size), never leak, and on failure
 * return NULL with a count of 0 and a message naming the line or record.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *         fuzz/fuzz_textio.c src/textio.c src/error.c -o fuzz_textio -lmpi
 *   ./fuzz_textio fuzz/corpus/textio
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textio.h"

/* Stop the fuzzer with a crash when an invariant of the API does not hold. */
static void require(int condition)
{
    if (!condition)
        abort();
}

static void check_failure(strata_status st, const void *out, size_t n, const strata_error *err,
                          const char *word)
{
    if (st == STRATA_OK)
        return;
    require(out == NULL && n == 0);
    require(err->status == st);
    require(st == STRATA_ERR_NOMEM || strstr(err->message, word) != NULL);
}

/*
 * A slow, obviously correct reference for one line of an update file: the oracle
 * the library's fast path is checked against. Returns the number of fields (0 for
 * a blank or comment line) or -1 when the line must be refused.
 */
static int reference_line(const char *p, size_t len, uint64_t values[5])
{
    if (len > 0 && p[len - 1] == '\r')
        len--;
    const char *hash = memchr(p, '#', len);
    if (hash)
        len = (size_t)(hash - p);
    int n = 0;
    size_t i = 0;
    while (i < len) {
        if (p[i] == ' ' || p[i] == '\t') {
            i++;
            continue;
        }
        if (n == 5)
            return -1;
        uint64_t limit = n < 3 ? (uint64_t)INT64_MAX : 65535;
        uint64_t v = 0;
        size_t start = i;
        for (; i < len && p[i] != ' ' && p[i] != '\t'; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            unsigned digit = (unsigned)(p[i] - '0');
            if (v > (limit - digit) / 10)
                return -1;
            v = v * 10 + digit;
        }
        require(i > start);
        values[n++] = v;
    }
    return n == 0 || n >= 4 ? n : -1;
}

/* Compare the library's result on the whole text with the reference, line by line. */
static void check_against_reference(const char *text, size_t size, strata_status st,
                                    const strata_update *u, size_t n, const strata_error *err)
{
    size_t next = 0;
    uint64_t line = 0;
    for (size_t at = 0; at < size;) {
        const char *newline = memchr(text + at, '\n', size - at);
        size_t len = newline ? (size_t)(newline - (text + at)) : size - at;
        uint64_t values[5];
        int fields = reference_line(text + at, len, values);
        line++;
        if (fields < 0) {
            char expect[40];
            snprintf(expect, sizeof expect, "line %llu:", (unsigned long long)line);
            require(st == STRATA_ERR_PARSE && strncmp(err->message, expect, strlen(expect)) == 0);
            return;
        }
        if (fields > 0 && st == STRATA_OK) { /* on failure, check only the line named */
            require(next < n);
            const strata_update *x = &u[next++];
            require((uint64_t)x->x == values[0] && (uint64_t)x->y == values[1] &&
                    (uint64_t)x->z == values[2] && x->material == values[3]);
            require(x->has_expected == (fields == 5));
            require(x->expected == (fields == 5 ? values[4] : 0));
        }
        at += len + 1;
    }
    require(st == STRATA_OK && next == n);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    strata_error err;
    strata_update *u = NULL;
    size_t n = 0;
    strata_status st = textio_parse_updates(text, size, 0, NULL, &u, &n, &err);
    check_failure(st, u, n, &err, "line ");
    check_against_reference(text, size, st, u, n, &err);
    free(u);

    int64_t(*points)[3] = NULL;
    st = textio_parse_points(text, size, 1000, NULL, &points, &n, &err);
    check_failure(st, points, n, &err, "line ");
    free(points);
}

static void fuzz_binary(const uint8_t *data, size_t size)
{
    if (size < TEXTIO_BINARY_HEADER)
        return;
    strata_error err;
    uint64_t count = 0;
    /* Also check the header against the size the data would have if it were valid. */
    (void)textio_check_binary_header(data, size * 3, &count, &err);
    if (textio_check_binary_header(data, size, &count, &err) != STRATA_OK)
        count = (size - TEXTIO_BINARY_HEADER) / TEXTIO_BINARY_RECORD; /* parse anyway */
    size_t length = (size_t)count * TEXTIO_BINARY_RECORD;
    strata_update *u = NULL;
    size_t n = 0;
    strata_status st =
        textio_parse_binary(data + TEXTIO_BINARY_HEADER, length, 0, NULL, &u, &n, &err);
    check_failure(st, u, n, &err, "record ");
    require(st != STRATA_OK || n == count);
    free(u);
    /* Odd lengths must be refused, not read past. */
    st = textio_parse_binary(data + TEXTIO_BINARY_HEADER, size - TEXTIO_BINARY_HEADER, 7, NULL, &u,
                             &n, &err);
    check_failure(st, u, n, &err, "record ");
    free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_text(data, size);
    fuzz_binary(data, size);
    return 0;
}
