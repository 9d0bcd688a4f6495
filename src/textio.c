/*
 * textio.c: parsers for update files (text and binary) and point files, and the
 * byte slicing that lets every rank read its own part of one input file.
 *
 * Text is parsed by hand from (text, length): the buffer is a slice of a file
 * and is not NUL-terminated, so strtol and friends cannot be used on it. Each
 * common line is read in one pass (parse_line_fast); anything unusual goes through
 * the general parser, which also writes the error messages.
 */
#include "textio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"

/** Longest excerpt of an offending line quoted in an error message. */
#define TEXTIO_QUOTE_MAX 60
/** Bytes read per pread while looking for the newline after a slice cut. */
#define TEXTIO_SLICE_WINDOW 4096
/** Records encoded per write() by textio_write_binary. */
#define TEXTIO_WRITE_BATCH 2048
/** Initial capacity of the output arrays (grown by doubling). */
#define TEXTIO_INITIAL_CAPACITY 1024
/** Most fields a line may have (update: x y z material expected). */
#define TEXTIO_MAX_FIELDS 5

static const char *const field_names[TEXTIO_MAX_FIELDS] = {"x", "y", "z", "material", "expected"};

/* ---- quoting ------------------------------------------------------------- */

/*
 * Copy up to TEXTIO_QUOTE_MAX bytes of [p, p + len) into out for an error message,
 * with non-printable bytes replaced by '?' (a fuzzed or binary file must not put
 * control characters or NULs into a message) and "..." when truncated.
 */
static void quote_bytes(const char *p, size_t len, char out[TEXTIO_QUOTE_MAX + 4])
{
    size_t take = len < TEXTIO_QUOTE_MAX ? len : TEXTIO_QUOTE_MAX;
    for (size_t i = 0; i < take; i++) {
        unsigned char c = (unsigned char)p[i];
        out[i] = (c >= 0x20 && c < 0x7f) || c == '\t' ? (char)c : '?';
    }
    if (len > take) {
        memcpy(out + take, "...", 4);
    } else {
        out[take] = '\0';
    }
}

/* ---- one text line -------------------------------------------------------- */

/** Where a line sits, for error messages. */
typedef struct {
    const char *text; /* the line without '\n' (and without a trailing '\r') */
    size_t length;
    uint64_t number; /* 1-based line number in the file */
} text_line;

/** A growable array of fixed-size items, freed on any error. */
typedef struct {
    void *items;
    size_t count;
    size_t capacity;
    size_t item_size;
} growable;

/** What a line of one kind of file holds, and how to store it. */
typedef struct {
    int min_fields;
    int max_fields;
    const char *layout; /* for messages: "x y z material [expected]" */
    void (*store)(const uint64_t *values, int count, void *item);
} line_format;

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

__attribute__((format(printf, 3, 4))) static strata_status
line_error(strata_error *err, const text_line *line, const char *fmt, ...)
{
    char quoted[TEXTIO_QUOTE_MAX + 4];
    quote_bytes(line->text, line->length, quoted);
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return error_set(err, STRATA_ERR_PARSE, "line %llu: %s: \"%s\"",
                     (unsigned long long)line->number, what, quoted);
}

/* The first coordinate of xyz at or past dims (NULL: no bounds), or -1. */
static int outside(const uint64_t xyz[3], const int64_t *dims)
{
    for (int a = 0; dims && a < 3; a++)
        if (xyz[a] >= (uint64_t)dims[a])
            return a;
    return -1;
}

static strata_status outside_error(strata_error *err, const char *where, const uint64_t xyz[3],
                                   const int64_t dims[3], const char *quoted)
{
    return error_set(err, STRATA_ERR_RANGE,
                     "%s: voxel (%llu, %llu, %llu) is outside the world (%lld x %lld x %lld)%s%s%s",
                     where, (unsigned long long)xyz[0], (unsigned long long)xyz[1],
                     (unsigned long long)xyz[2], (long long)dims[0], (long long)dims[1],
                     (long long)dims[2], quoted ? ": \"" : "", quoted ? quoted : "",
                     quoted ? "\"" : "");
}

enum { DECIMAL_OK, DECIMAL_JUNK, DECIMAL_NEGATIVE, DECIMAL_TOO_BIG };

/*
 * Parse the field [p, end) (non-empty) as a decimal integer no larger than limit.
 * Only digits are accepted: no sign, no hex, no fraction. A '-' followed by
 * digits is reported as negative rather than as junk, to say what is wrong.
 */
static int parse_decimal(const char *p, const char *end, uint64_t limit, uint64_t *value)
{
    int negative = 0;
    if (*p == '-' && end - p > 1) {
        negative = 1;
        p++;
    }
    uint64_t v = 0;
    int too_big = 0;
    for (; p < end; p++) {
        unsigned digit = (unsigned)(unsigned char)*p - '0';
        if (digit > 9)
            return DECIMAL_JUNK;
        if (v > (limit - digit) / 10)
            too_big = 1; /* keep scanning: junk later in the field is reported first */
        else
            v = v * 10 + digit;
    }
    if (negative)
        return DECIMAL_NEGATIVE;
    if (too_big)
        return DECIMAL_TOO_BIG;
    *value = v;
    return DECIMAL_OK;
}

static strata_status field_error(const text_line *line, int field, int code, const char *token,
                                 strata_error *err)
{
    const char *name = field_names[field];
    if (code == DECIMAL_JUNK)
        return line_error(err, line, "%s \"%s\" is not a decimal integer", name, token);
    if (field >= 3)
        return line_error(err, line, "%s %s is out of range 0..65535", name, token);
    if (code == DECIMAL_NEGATIVE)
        return line_error(err, line, "coordinate %s = %s is negative", name, token);
    return line_error(err, line, "coordinate %s = %s does not fit int64", name, token);
}

/*
 * Split a line into numeric fields. Fields are separated by blanks; '#' starts a
 * comment. Coordinates (fields 0..2) must fit int64 and be >= 0; later fields
 * are materials, 0..65535. *count receives the number of fields (0: nothing on
 * the line but blanks or a comment).
 */
static strata_status parse_fields(const text_line *line, const line_format *format,
                                  uint64_t *values, int *count, strata_error *err)
{
    const char *p = line->text;
    const char *end = p + line->length;
    int n = 0;
    for (;;) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end || *p == '#')
            break;
        const char *start = p;
        while (p < end && !is_blank(*p) && *p != '#')
            p++;
        if (n == format->max_fields)
            return line_error(err, line, "too many fields (expected %s)", format->layout);
        uint64_t limit = n < 3 ? (uint64_t)INT64_MAX : UINT16_MAX;
        int code = parse_decimal(start, p, limit, &values[n]);
        if (code != DECIMAL_OK) {
            char token[TEXTIO_QUOTE_MAX + 4];
            quote_bytes(start, (size_t)(p - start), token);
            return field_error(line, n, code, token, err);
        }
        n++;
    }
    if (n > 0 && n < format->min_fields)
        return line_error(err, line, "too few fields: %d (expected %s)", n, format->layout);
    *count = n;
    return STRATA_OK;
}

/* ---- line iteration -------------------------------------------------------- */

static strata_status grow(growable *g, strata_error *err)
{
    if (g->count < g->capacity)
        return STRATA_OK;
    size_t capacity = g->capacity ? g->capacity * 2 : TEXTIO_INITIAL_CAPACITY;
    if (capacity < g->capacity || capacity > SIZE_MAX / g->item_size)
        return error_set(err, STRATA_ERR_OVERFLOW, "parse: %zu items do not fit in memory",
                         g->capacity);
    void *items = strata_realloc(g->items, capacity * g->item_size);
    if (!items)
        return error_set(err, STRATA_ERR_NOMEM, "parse: cannot allocate %zu items", capacity);
    g->items = items;
    g->capacity = capacity;
    return STRATA_OK;
}

/*
 * The fast path for the common line: blanks, plain digits of at most 18 (so no
 * overflow check is needed), at most one trailing '\r', maybe a comment. Returns
 * the start of the next line with the fields in values and *count, or NULL when
 * the line needs parse_fields (an error, a long number, anything unusual). It
 * accepts a subset of what parse_fields accepts, with the same values.
 */
static const char *parse_line_fast(const char *p, const char *end, const line_format *format,
                                   uint64_t *values, int *count)
{
    int n = 0;
    for (;;) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            break;
        char c = *p;
        if (c == '\n') {
            p++;
            break;
        }
        if (c == '#' || (c == '\r' && (p + 1 == end || p[1] == '\n'))) {
            const char *newline = memchr(p, '\n', (size_t)(end - p));
            p = newline ? newline + 1 : end;
            break;
        }
        unsigned digit = (unsigned)(unsigned char)c - '0';
        if (digit > 9 || n == format->max_fields)
            return NULL;
        const char *start = p;
        uint64_t v = 0;
        do {
            v = v * 10 + digit;
            p++;
        } while (p < end && (digit = (unsigned)(unsigned char)*p - '0') <= 9);
        if (p - start > 18 || (n >= 3 && v > UINT16_MAX))
            return NULL;
        if (p < end && !is_blank(*p) && *p != '\n' && *p != '#' && *p != '\r')
            return NULL;
        values[n++] = v;
    }
    if (n > 0 && n < format->min_fields)
        return NULL;
    *count = n;
    return p;
}

/* The line starting at p: up to its '\n' (or end), one trailing '\r' dropped. */
static text_line line_at(const char *p, const char *end, uint64_t number)
{
    const char *newline = memchr(p, '\n', (size_t)(end - p));
    text_line line = {p, (size_t)((newline ? newline : end) - p), number};
    if (line.length > 0 && p[line.length - 1] == '\r')
        line.length--;
    return line;
}

/* The general path: parse the line's fields; returns the next line's start. */
static const char *parse_line_slow(const char *p, const char *end, uint64_t number,
                                   const line_format *format, uint64_t *values, int *count,
                                   strata_status *st, strata_error *err)
{
    const text_line line = line_at(p, end, number);
    *st = parse_fields(&line, format, values, count, err);
    const char *newline = memchr(p + line.length, '\n', (size_t)(end - p - line.length));
    return newline ? newline + 1 : end;
}

/* Parse every line of [text, text + length) into g. The last line may lack a '\n'.
 * With dims, a coordinate at or past them is STRATA_ERR_RANGE naming the line. */
static strata_status parse_lines(const char *text, size_t length, uint64_t line_base,
                                 const int64_t *dims, const line_format *format, growable *g,
                                 strata_error *err)
{
    const char *p = text;
    const char *end = text + length;
    uint64_t number = line_base;
    while (p < end) {
        uint64_t values[TEXTIO_MAX_FIELDS];
        int count = 0;
        strata_status st = STRATA_OK;
        number++;
        const char *next = parse_line_fast(p, end, format, values, &count);
        if (!next)
            next = parse_line_slow(p, end, number, format, values, &count, &st, err);
        if (st == STRATA_OK && count > 0 && outside(values, dims) >= 0) {
            const text_line line = line_at(p, end, number);
            char quoted[TEXTIO_QUOTE_MAX + 4], where[48];
            quote_bytes(line.text, line.length, quoted);
            snprintf(where, sizeof where, "line %llu", (unsigned long long)number);
            st = outside_error(err, where, values, dims, quoted);
        }
        if (st == STRATA_OK && count > 0) {
            st = grow(g, err);
            if (st == STRATA_OK)
                format->store(values, count, (char *)g->items + g->count++ * g->item_size);
        }
        if (st != STRATA_OK)
            return st;
        p = next;
    }
    return STRATA_OK;
}

static void store_update(const uint64_t *values, int count, void *item)
{
    strata_update *u = item;
    u->x = (int64_t)values[0]; /* parse_fields checked each fits int64 */
    u->y = (int64_t)values[1];
    u->z = (int64_t)values[2];
    u->material = (uint16_t)values[3];
    u->expected = count == 5 ? (uint16_t)values[4] : 0;
    u->has_expected = count == 5;
}

static void store_point(const uint64_t *values, int count, void *item)
{
    (void)count;
    int64_t *point = item;
    for (int i = 0; i < 3; i++)
        point[i] = (int64_t)values[i];
}

static const line_format update_format = {4, 5, "x y z material [expected]", store_update};
static const line_format point_format = {3, 3, "x y z", store_point};

/* Run parse_lines into a fresh array; on failure *items is NULL and *n is 0. */
static strata_status parse_text(const char *text, size_t length, uint64_t line_base,
                                const int64_t *dims, const line_format *format, size_t item_size,
                                void **items, size_t *n, strata_error *err)
{
    growable g = {NULL, 0, 0, item_size};
    *items = NULL;
    *n = 0;
    if (length == 0)
        return STRATA_OK; /* text may be NULL: do no arithmetic on it */
    if (!text)
        return error_set(err, STRATA_ERR_ARG, "parse: NULL text of %zu bytes", length);
    strata_status st = parse_lines(text, length, line_base, dims, format, &g, err);
    if (st != STRATA_OK) {
        free(g.items);
        return st;
    }
    *items = g.items;
    *n = g.count;
    return STRATA_OK;
}

strata_status textio_parse_updates(const char *text, size_t length, uint64_t line_base,
                                   const int64_t *dims, strata_update **out, size_t *n,
                                   strata_error *err)
{
    void *items;
    strata_status st = parse_text(text, length, line_base, dims, &update_format,
                                  sizeof(strata_update), &items, n, err);
    *out = items;
    return st;
}

strata_status textio_parse_points(const char *text, size_t length, uint64_t line_base,
                                  const int64_t *dims, int64_t (**out)[3], size_t *n,
                                  strata_error *err)
{
    void *items;
    strata_status st = parse_text(text, length, line_base, dims, &point_format, 3 * sizeof(int64_t),
                                  &items, n, err);
    *out = items;
    return st;
}

uint64_t textio_count_lines(const char *text, size_t length)
{
    uint64_t lines = 0;
    if (length == 0)
        return 0;
    const char *p = text;
    const char *end = text + length;
    while (p < end) {
        const char *newline = memchr(p, '\n', (size_t)(end - p));
        if (!newline)
            break;
        lines++;
        p = newline + 1;
    }
    return lines;
}

/* ---- binary ---------------------------------------------------------------- */

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint16_t load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}

static void store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

strata_status textio_check_binary_header(const uint8_t *header, uint64_t file_size, uint64_t *count,
                                         strata_error *err)
{
    *count = 0;
    if (file_size < TEXTIO_BINARY_HEADER)
        return error_set(err, STRATA_ERR_FORMAT,
                         "binary update file of %llu bytes is shorter than its %d-byte header",
                         (unsigned long long)file_size, TEXTIO_BINARY_HEADER);
    if (memcmp(header, TEXTIO_BINARY_MAGIC, 8) != 0)
        return error_set(err, STRATA_ERR_FORMAT, "binary update file: bad magic (expected \"%s\")",
                         TEXTIO_BINARY_MAGIC);
    uint64_t records = load_le64(header + 8);
    uint64_t max_records = (UINT64_MAX - TEXTIO_BINARY_HEADER) / TEXTIO_BINARY_RECORD;
    if (records > max_records || file_size != TEXTIO_BINARY_HEADER + records * TEXTIO_BINARY_RECORD)
        return error_set(err, STRATA_ERR_FORMAT,
                         "binary update file: header says %llu records but the file has %llu "
                         "bytes (expected 16 + 32 * count)",
                         (unsigned long long)records, (unsigned long long)file_size);
    *count = records;
    return STRATA_OK;
}

/* Decode one 32-byte record; number is its 0-based index in the file. */
static strata_status decode_record(const uint8_t *r, uint64_t number, const int64_t *dims,
                                   strata_update *u, strata_error *err)
{
    int64_t xyz[3];
    uint64_t raw[3];
    for (int axis = 0; axis < 3; axis++) {
        uint64_t v = load_le64(r + 8 * axis);
        if (v > (uint64_t)INT64_MAX)
            return error_set(err, STRATA_ERR_PARSE,
                             "record %llu (0-based): coordinate %s is negative",
                             (unsigned long long)number, field_names[axis]);
        xyz[axis] = (int64_t)v;
        raw[axis] = v;
    }
    if (outside(raw, dims) >= 0) {
        char where[48];
        snprintf(where, sizeof where, "record %llu (0-based)", (unsigned long long)number);
        return outside_error(err, where, raw, dims, NULL);
    }
    uint8_t flag = r[28];
    if (flag > 1)
        return error_set(err, STRATA_ERR_PARSE,
                         "record %llu (0-based): has_expected is %u (must be 0 or 1)",
                         (unsigned long long)number, (unsigned)flag);
    if (r[29] | r[30] | r[31])
        return error_set(err, STRATA_ERR_PARSE,
                         "record %llu (0-based): padding bytes 29..31 are not zero",
                         (unsigned long long)number);
    u->x = xyz[0];
    u->y = xyz[1];
    u->z = xyz[2];
    u->material = load_le16(r + 24);
    u->expected = load_le16(r + 26);
    u->has_expected = flag;
    return STRATA_OK;
}

strata_status textio_parse_binary(const uint8_t *data, size_t length, uint64_t record_base,
                                  const int64_t *dims, strata_update **out, size_t *n,
                                  strata_error *err)
{
    *out = NULL;
    *n = 0;
    if (length % TEXTIO_BINARY_RECORD != 0)
        return error_set(err, STRATA_ERR_PARSE,
                         "binary records: %zu bytes is not a multiple of the %d-byte record "
                         "(record %llu onwards)",
                         length, TEXTIO_BINARY_RECORD, (unsigned long long)record_base);
    size_t count = length / TEXTIO_BINARY_RECORD;
    if (count == 0)
        return STRATA_OK;
    strata_update *u = strata_malloc(count * sizeof *u);
    if (!u)
        return error_set(err, STRATA_ERR_NOMEM, "binary records: cannot allocate %zu updates",
                         count);
    for (size_t i = 0; i < count; i++) {
        strata_status st =
            decode_record(data + i * TEXTIO_BINARY_RECORD, record_base + i, dims, &u[i], err);
        if (st != STRATA_OK) {
            free(u);
            return st;
        }
    }
    *out = u;
    *n = count;
    return STRATA_OK;
}

/* ---- files ----------------------------------------------------------------- */

static strata_status open_error(const char *path, strata_error *err)
{
    int e = errno;
    return error_set(err, e == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO, "open %s: %s", path,
                     strerror(e));
}

/* pread until len bytes or end of file; *got receives the bytes read. */
static strata_status pread_full(int fd, const char *path, void *buf, size_t len, uint64_t offset,
                                size_t *got, strata_error *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return error_set(err, STRATA_ERR_IO, "read %s at byte %llu: %s", path,
                             (unsigned long long)(offset + done), strerror(errno));
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return STRATA_OK;
}

strata_status textio_is_binary(const char *path, int *binary, strata_error *err)
{
    *binary = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return open_error(path, err);
    char magic[8];
    size_t got = 0;
    strata_status st = pread_full(fd, path, magic, sizeof magic, 0, &got, err);
    close(fd);
    if (st == STRATA_OK)
        *binary = got == sizeof magic && memcmp(magic, TEXTIO_BINARY_MAGIC, 8) == 0;
    return st;
}

/* size * part / parts without overflowing 64 bits (part <= parts <= INT_MAX). */
static uint64_t proportional(uint64_t size, int part, int parts)
{
    uint64_t p = (uint64_t)part, q = (uint64_t)parts;
    return size / q * p + size % q * p / q;
}

/*
 * The first line start at or after byte `nominal`: nominal itself when the byte
 * before it is '\n', else just past the next '\n' (or the end of the file).
 * Reads windows from nominal - 1 on, never the whole file.
 */
static strata_status line_start_at_or_after(int fd, const char *path, uint64_t size,
                                            uint64_t nominal, uint64_t *cut, strata_error *err)
{
    char window[TEXTIO_SLICE_WINDOW];
    uint64_t offset = nominal - 1; /* nominal is in (0, size) */
    while (offset < size) {
        size_t want = size - offset < sizeof window ? (size_t)(size - offset) : sizeof window;
        size_t got = 0;
        strata_status st = pread_full(fd, path, window, want, offset, &got, err);
        if (st != STRATA_OK)
            return st;
        if (got == 0)
            break; /* the file shrank under us: the cut is its end */
        const char *newline = memchr(window, '\n', got);
        if (newline) {
            *cut = offset + (uint64_t)(newline - window) + 1;
            return STRATA_OK;
        }
        offset += got;
    }
    *cut = size;
    return STRATA_OK;
}

static strata_status text_cut(int fd, const char *path, uint64_t size, int part, int parts,
                              uint64_t *cut, strata_error *err)
{
    if (part == 0 || part == parts || size == 0) {
        *cut = part == 0 ? 0 : size;
        return STRATA_OK;
    }
    uint64_t nominal = proportional(size, part, parts);
    if (nominal == 0) {
        *cut = 0;
        return STRATA_OK;
    }
    return line_start_at_or_after(fd, path, size, nominal, cut, err);
}

static strata_status binary_slice(const char *path, uint64_t size, int rank, int ranks,
                                  uint64_t *begin, uint64_t *end, strata_error *err)
{
    if (size < TEXTIO_BINARY_HEADER || (size - TEXTIO_BINARY_HEADER) % TEXTIO_BINARY_RECORD)
        return error_set(err, STRATA_ERR_FORMAT,
                         "%s: %llu bytes is not a %d-byte header plus %d-byte records", path,
                         (unsigned long long)size, TEXTIO_BINARY_HEADER, TEXTIO_BINARY_RECORD);
    uint64_t records = (size - TEXTIO_BINARY_HEADER) / TEXTIO_BINARY_RECORD;
    *begin = TEXTIO_BINARY_HEADER + proportional(records, rank, ranks) * TEXTIO_BINARY_RECORD;
    *end = TEXTIO_BINARY_HEADER + proportional(records, rank + 1, ranks) * TEXTIO_BINARY_RECORD;
    return STRATA_OK;
}

strata_status textio_slice(const char *path, int rank, int ranks, int binary, uint64_t *begin,
                           uint64_t *end, strata_error *err)
{
    *begin = *end = 0;
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return error_set(err, STRATA_ERR_ARG, "slice %s: rank %d of %d ranks", path, rank, ranks);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return open_error(path, err);
    struct stat sb;
    strata_status st = STRATA_OK;
    if (fstat(fd, &sb) != 0) {
        st = error_set(err, STRATA_ERR_IO, "stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = error_set(err, STRATA_ERR_IO, "slice %s: not a regular file", path);
        goto done;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (binary) {
        st = binary_slice(path, size, rank, ranks, begin, end, err);
        goto done;
    }
    st = text_cut(fd, path, size, rank, ranks, begin, err);
    if (st == STRATA_OK)
        st = text_cut(fd, path, size, rank + 1, ranks, end, err);
done:
    close(fd);
    if (st != STRATA_OK)
        *begin = *end = 0;
    return st;
}

/* ---- writing ---------------------------------------------------------------- */

static strata_status write_full(int fd, const char *path, const uint8_t *buf, size_t len,
                                strata_error *err)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return error_set(err, STRATA_ERR_IO, "write %s: %s", path, strerror(errno));
        buf += w;
        len -= (size_t)w;
    }
    return STRATA_OK;
}

static strata_status encode_record(const strata_update *u, size_t index, uint8_t *r,
                                   strata_error *err)
{
    if (u->x < 0 || u->y < 0 || u->z < 0)
        return error_set(err, STRATA_ERR_ARG,
                         "write binary: update %zu has a negative coordinate (%lld,%lld,%lld)",
                         index, (long long)u->x, (long long)u->y, (long long)u->z);
    store_le64(r, (uint64_t)u->x);
    store_le64(r + 8, (uint64_t)u->y);
    store_le64(r + 16, (uint64_t)u->z);
    store_le16(r + 24, u->material);
    store_le16(r + 26, u->has_expected ? u->expected : 0);
    r[28] = u->has_expected ? 1 : 0;
    r[29] = r[30] = r[31] = 0;
    return STRATA_OK;
}

static strata_status write_records(int fd, const char *path, const strata_update *u, size_t n,
                                   strata_error *err)
{
    uint8_t header[TEXTIO_BINARY_HEADER];
    memcpy(header, TEXTIO_BINARY_MAGIC, 8);
    store_le64(header + 8, (uint64_t)n);
    strata_status st = write_full(fd, path, header, sizeof header, err);
    uint8_t *batch = strata_malloc(TEXTIO_WRITE_BATCH * TEXTIO_BINARY_RECORD);
    if (!batch && st == STRATA_OK)
        st = error_set(err, STRATA_ERR_NOMEM, "write binary %s: cannot allocate a buffer", path);
    for (size_t i = 0; i < n && st == STRATA_OK; i += TEXTIO_WRITE_BATCH) {
        size_t take = n - i < TEXTIO_WRITE_BATCH ? n - i : TEXTIO_WRITE_BATCH;
        for (size_t j = 0; j < take && st == STRATA_OK; j++)
            st = encode_record(&u[i + j], i + j, batch + j * TEXTIO_BINARY_RECORD, err);
        if (st == STRATA_OK)
            st = write_full(fd, path, batch, take * TEXTIO_BINARY_RECORD, err);
    }
    free(batch);
    return st;
}

strata_status textio_write_binary(const char *path, const strata_update *u, size_t n,
                                  strata_error *err)
{
    if (!u && n > 0)
        return error_set(err, STRATA_ERR_ARG, "write binary %s: NULL updates", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return open_error(path, err);
    strata_status st = write_records(fd, path, u, n, err);
    if (close(fd) != 0 && st == STRATA_OK)
        st = error_set(err, STRATA_ERR_IO, "close %s: %s", path, strerror(errno));
    if (st != STRATA_OK)
        unlink(path); /* never leave a truncated file that looks like a valid header */
    return st;
}
