/* manifest.c: parse, format and atomically replace the world's MANIFEST. */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "fault.h"
#include "fsutil.h"

void manifest_segment_name(uint64_t epoch, char *buf, size_t size)
{
    if (store_is_index_segment(epoch))
        snprintf(buf, size, "idx-%020" PRIu64 ".h5", epoch & ~STORE_INDEX_SEGMENT);
    else
        snprintf(buf, size, "seg-%020" PRIu64 ".h5", epoch);
}

size_t manifest_segment_index(const manifest *m, uint64_t id)
{
    size_t lo = 0, hi = m->segment_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->segments[mid].epoch < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->segment_count && m->segments[lo].epoch == id ? lo : SIZE_MAX;
}

int manifest_has_segment(const manifest *m, uint64_t id)
{
    return manifest_segment_index(m, id) != SIZE_MAX;
}

void manifest_free(manifest *m)
{
    free(m->split);
    free(m->segments);
    free(m->materials);
    memset(m, 0, sizeof *m);
}

/* ---- formatting ---------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t length, capacity;
    int failed;
} text_buffer;

static void text_append(text_buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_append(text_buffer *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->length, b->capacity - b->length, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->length + (size_t)n < b->capacity) {
            b->length += (size_t)n;
            return;
        }
        size_t capacity = (b->capacity + (size_t)n + 1) * 2;
        char *grown = strata_realloc(b->data, capacity);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
}

strata_status manifest_format(const manifest *m, char **text, size_t *length, strata_error *err)
{
    text_buffer b = {strata_malloc(4096), 0, 4096, 0};
    if (!b.data)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate the manifest text");
    text_append(&b, "%s %d\n", MANIFEST_MAGIC, m->format);
    text_append(&b, "epoch %" PRIu64 "\ncommits %" PRIu64 "\nwriter_ranks %d\n", m->epoch,
                m->commits, m->writer_ranks);
    text_append(&b, "dims %" PRId64 " %" PRId64 " %" PRId64 "\nchunk %d\n", m->dims[0], m->dims[1],
                m->dims[2], m->chunk_edge);
    text_append(&b, "voxel_size %.17g %.17g %.17g\n", m->voxel_size[0], m->voxel_size[1],
                m->voxel_size[2]);
    text_append(&b, "origin %.17g %.17g %.17g\n", m->origin[0], m->origin[1], m->origin[2]);
    text_append(&b, "index %" PRIu64 " %" PRIu64 " %" PRIu64 " %.6f\n", m->index_epoch,
                m->stale_chunks, m->rebuild_chunks, m->rebuild_seconds);
    text_append(&b, "splitters %d", m->split_ranks);
    for (int r = 0; r <= m->split_ranks; r++)
        text_append(&b, " %" PRIu64, m->split[r]);
    text_append(&b, "\n");
    /* Format 3: index segments (ids above every data epoch: listed last). */
    if (m->index_serial || m->rebuilt_at > 0)
        text_append(&b, "index_live %" PRIu64 " %.3f\n", m->index_serial, m->rebuilt_at);
    for (size_t i = 0; i < m->segment_count; i++)
        if (store_is_index_segment(m->segments[i].epoch))
            text_append(&b, "index_segment %" PRIu64 "\n",
                        m->segments[i].epoch & ~STORE_INDEX_SEGMENT);
        else
            text_append(&b, "segment %" PRIu64 "\n", m->segments[i].epoch);
    for (size_t i = 0; i < m->material_count; i++) {
        const strata_material *mat = &m->materials[i];
        text_append(&b, "material %u %u %u %u %s\n", mat->id, mat->rgb[0], mat->rgb[1], mat->rgb[2],
                    mat->name);
    }
    if (b.failed) {
        free(b.data);
        return error_set(err, STRATA_ERR_NOMEM, "cannot format the manifest");
    }
    uint32_t crc = checksum_update(0, b.data, b.length);
    text_append(&b, "checksum %08x\n", crc);
    if (b.failed) {
        free(b.data);
        return error_set(err, STRATA_ERR_NOMEM, "cannot format the manifest");
    }
    *text = b.data;
    *length = b.length;
    return STRATA_OK;
}

/* ---- parsing ------------------------------------------------------------------- */

typedef struct {
    const char *p, *end; /* the current line, without its '\n' */
    unsigned line;
    strata_error *err;
} line_cursor;

static strata_status parse_fail(line_cursor *c, const char *what)
{
    return error_set(c->err, STRATA_ERR_FORMAT, "MANIFEST line %u: %s", c->line, what);
}

static int skip_blank(line_cursor *c)
{
    if (c->p >= c->end || *c->p != ' ')
        return 0;
    c->p++;
    return 1;
}

static int parse_u64(line_cursor *c, uint64_t *v)
{
    if (!skip_blank(c) || c->p >= c->end || *c->p < '0' || *c->p > '9')
        return 0;
    uint64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

static int parse_int_range(line_cursor *c, int64_t lo, int64_t hi, int64_t *v)
{
    uint64_t x;
    if (!parse_u64(c, &x) || x > (uint64_t)INT64_MAX || (int64_t)x < lo || (int64_t)x > hi)
        return 0;
    *v = (int64_t)x;
    return 1;
}

static int parse_double(line_cursor *c, double *v)
{
    char buf[64];
    if (!skip_blank(c))
        return 0;
    size_t n = 0;
    while (c->p + n < c->end && c->p[n] != ' ' && n < sizeof buf - 1) {
        buf[n] = c->p[n];
        n++;
    }
    if (n == 0 || (c->p + n < c->end && c->p[n] != ' '))
        return 0;
    buf[n] = '\0';
    char *stop;
    errno = 0;
    double x = strtod(buf, &stop);
    if (*stop || errno)
        return 0;
    c->p += n;
    *v = x;
    return 1;
}

static int keyword(line_cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return 0;
    if (c->p + n < c->end && c->p[n] != ' ')
        return 0;
    c->p += n;
    return 1;
}

static strata_status parse_splitters(line_cursor *c, manifest *m)
{
    int64_t ranks;
    if (m->split)
        return parse_fail(c, "splitters given twice");
    if (!parse_int_range(c, 1, MANIFEST_MAX_RANKS, &ranks))
        return parse_fail(c, "bad splitter rank count");
    /* Each splitter takes at least two bytes of text: check before allocating. */
    if ((uint64_t)(c->end - c->p) < 2 * (uint64_t)ranks)
        return parse_fail(c, "splitter list shorter than its count");
    m->split = strata_malloc(((size_t)ranks + 1) * sizeof *m->split);
    if (!m->split)
        return error_set(c->err, STRATA_ERR_NOMEM, "cannot allocate %" PRId64 " splitters", ranks);
    m->split_ranks = (int)ranks;
    for (int64_t r = 0; r <= ranks; r++) {
        if (!parse_u64(c, &m->split[r]))
            return parse_fail(c, "bad splitter");
        if (r > 0 && m->split[r] < m->split[r - 1])
            return parse_fail(c, "splitters not ascending");
    }
    if (m->split[0] != 0 || m->split[ranks] != UINT64_MAX)
        return parse_fail(c, "splitters must span the whole key space");
    return STRATA_OK;
}

static strata_status grow(void **array, size_t count, size_t element, strata_error *err)
{
    /* Grow at powers of two so appends stay amortised O(1). */
    if (count & (count - 1))
        return STRATA_OK;
    size_t capacity = count ? count * 2 : 8;
    void *bigger = strata_realloc(*array, capacity * element);
    if (!bigger)
        return error_set(err, STRATA_ERR_NOMEM, "cannot grow a manifest table");
    *array = bigger;
    return STRATA_OK;
}

static strata_status parse_segment(line_cursor *c, manifest *m, int index)
{
    uint64_t epoch;
    if (!parse_u64(c, &epoch) || epoch == 0 || store_is_index_segment(epoch))
        return parse_fail(c, index ? "bad index segment serial" : "bad segment epoch");
    if (index)
        epoch |= STORE_INDEX_SEGMENT; /* after every data segment, ascending serial */
    if (m->segment_count && epoch <= m->segments[m->segment_count - 1].epoch)
        return parse_fail(c, "segments not in ascending epoch order");
    if (m->segment_count >= MANIFEST_MAX_SEGMENTS)
        return parse_fail(c, "too many segments");
    strata_status st = grow((void **)&m->segments, m->segment_count, sizeof *m->segments, c->err);
    if (st)
        return st;
    m->segments[m->segment_count++].epoch = epoch;
    return STRATA_OK;
}

static strata_status parse_material(line_cursor *c, manifest *m)
{
    int64_t id, r, g, b;
    if (!parse_int_range(c, 0, 65535, &id) || !parse_int_range(c, 0, 255, &r) ||
        !parse_int_range(c, 0, 255, &g) || !parse_int_range(c, 0, 255, &b) || !skip_blank(c))
        return parse_fail(c, "bad material line");
    size_t n = (size_t)(c->end - c->p);
    if (n == 0 || n >= STRATA_MATERIAL_NAME_MAX)
        return parse_fail(c, "material name empty or too long");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c->p[i] < 0x20)
            return parse_fail(c, "control character in a material name");
    if (m->material_count && id <= m->materials[m->material_count - 1].id)
        return parse_fail(c, "materials not in ascending id order");
    strata_status st =
        grow((void **)&m->materials, m->material_count, sizeof *m->materials, c->err);
    if (st)
        return st;
    strata_material *mat = &m->materials[m->material_count++];
    memset(mat, 0, sizeof *mat);
    mat->id = (uint16_t)id;
    mat->rgb[0] = (uint8_t)r, mat->rgb[1] = (uint8_t)g, mat->rgb[2] = (uint8_t)b;
    memcpy(mat->name, c->p, n);
    c->p = c->end;
    return STRATA_OK;
}

/* Fields that must appear exactly once. */
enum {
    SEEN_EPOCH = 1,
    SEEN_COMMITS = 2,
    SEEN_WRITERS = 4,
    SEEN_DIMS = 8,
    SEEN_CHUNK = 16,
    SEEN_VOXEL = 32,
    SEEN_ORIGIN = 64,
    SEEN_INDEX = 128,
    SEEN_ALL = 255,
    SEEN_INDEX_LIVE = 256 /* optional */
};

static strata_status parse_line(line_cursor *c, manifest *m, unsigned *seen)
{
    int64_t v = 0;
    unsigned field = 0;
    int ok = 1;
    if (keyword(c, "epoch"))
        field = SEEN_EPOCH, ok = parse_u64(c, &m->epoch);
    else if (keyword(c, "commits"))
        field = SEEN_COMMITS, ok = parse_u64(c, &m->commits);
    else if (keyword(c, "writer_ranks"))
        field = SEEN_WRITERS, ok = parse_int_range(c, 1, MANIFEST_MAX_RANKS, &v),
        m->writer_ranks = (int)v;
    else if (keyword(c, "dims")) {
        field = SEEN_DIMS;
        for (int i = 0; i < 3 && ok; i++)
            ok = parse_int_range(c, 1, INT64_MAX, &m->dims[i]);
    } else if (keyword(c, "chunk"))
        field = SEEN_CHUNK,
        ok = parse_int_range(c, STRATA_CHUNK_EDGE_MIN, STRATA_CHUNK_EDGE_MAX, &v),
        m->chunk_edge = (int32_t)v;
    else if (keyword(c, "voxel_size")) {
        field = SEEN_VOXEL;
        for (int i = 0; i < 3 && ok; i++)
            ok = parse_double(c, &m->voxel_size[i]) && m->voxel_size[i] > 0;
    } else if (keyword(c, "origin")) {
        field = SEEN_ORIGIN;
        for (int i = 0; i < 3 && ok; i++)
            ok = parse_double(c, &m->origin[i]);
    } else if (keyword(c, "index")) {
        field = SEEN_INDEX;
        ok = parse_u64(c, &m->index_epoch) && parse_u64(c, &m->stale_chunks) &&
             parse_u64(c, &m->rebuild_chunks) && parse_double(c, &m->rebuild_seconds);
    } else if (keyword(c, "index_live")) {
        field = SEEN_INDEX_LIVE;
        ok = parse_u64(c, &m->index_serial) && parse_double(c, &m->rebuilt_at) &&
             m->rebuilt_at >= 0 && !store_is_index_segment(m->index_serial);
    } else if (keyword(c, "splitters")) {
        strata_status st = parse_splitters(c, m);
        return st ? st : (c->p == c->end ? STRATA_OK : parse_fail(c, "junk after splitters"));
    } else if (keyword(c, "index_segment")) {
        strata_status st = parse_segment(c, m, 1);
        return st ? st : (c->p == c->end ? STRATA_OK : parse_fail(c, "junk after index_segment"));
    } else if (keyword(c, "segment")) {
        strata_status st = parse_segment(c, m, 0);
        return st ? st : (c->p == c->end ? STRATA_OK : parse_fail(c, "junk after segment"));
    } else if (keyword(c, "material"))
        return parse_material(c, m);
    else
        return parse_fail(c, "unknown field");
    if (!ok || c->p != c->end)
        return parse_fail(c, "bad value");
    if (*seen & field)
        return parse_fail(c, "field given twice");
    *seen |= field;
    return STRATA_OK;
}

static strata_status parse_header(line_cursor *c, manifest *m)
{
    int64_t format;
    if (!keyword(c, MANIFEST_MAGIC))
        return parse_fail(c, "not a Strata manifest");
    if (!parse_int_range(c, 1, INT32_MAX, &format) || c->p != c->end)
        return parse_fail(c, "bad format version");
    if (format > STRATA_FORMAT_VERSION)
        return error_set(c->err, STRATA_ERR_VERSION,
                         "MANIFEST: format version %" PRId64 " is newer than this library's %d",
                         format, STRATA_FORMAT_VERSION);
    m->format = (int)format;
    return STRATA_OK;
}

static strata_status check_checksum(const char *text, size_t length, size_t *body,
                                    strata_error *err)
{
    /* The last line is "checksum XXXXXXXX\n" and covers every byte before it. */
    static const char tag[] = "checksum ";
    const size_t line = sizeof tag - 1 + 8 + 1;
    if (length < line || text[length - 1] != '\n' ||
        memcmp(text + length - line, tag, sizeof tag - 1))
        return error_set(err, STRATA_ERR_FORMAT, "MANIFEST: missing checksum line (truncated?)");
    if (length > line && text[length - line - 1] != '\n')
        return error_set(err, STRATA_ERR_FORMAT, "MANIFEST: checksum line not at a line start");
    uint32_t stored = 0;
    for (size_t i = length - 9; i < length - 1; i++) {
        char h = text[i];
        unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                     : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                                            : 16;
        if (d == 16)
            return error_set(err, STRATA_ERR_FORMAT, "MANIFEST: bad checksum digits");
        stored = stored << 4 | d;
    }
    *body = length - line;
    uint32_t actual = checksum_update(0, text, *body);
    if (actual != stored)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "MANIFEST: checksum mismatch (stored %08x, computed %08x)", stored,
                         actual);
    return STRATA_OK;
}

static strata_status validate(const manifest *m, strata_error *err)
{
    if (!m->split)
        return error_set(err, STRATA_ERR_FORMAT, "MANIFEST: no splitters");
    if (m->chunk_edge & (m->chunk_edge - 1))
        return error_set(err, STRATA_ERR_FORMAT, "MANIFEST: chunk edge %d is not a power of two",
                         m->chunk_edge);
    for (size_t i = m->segment_count; i-- > 0;) {
        uint64_t id = m->segments[i].epoch;
        if (store_is_index_segment(id) && (id & ~STORE_INDEX_SEGMENT) > m->index_serial)
            return error_set(err, STRATA_ERR_FORMAT,
                             "MANIFEST: index segment %" PRIu64
                             " is newer than index_live %" PRIu64,
                             id & ~STORE_INDEX_SEGMENT, m->index_serial);
        if (!store_is_index_segment(id)) {
            if (id > m->epoch)
                return error_set(err, STRATA_ERR_FORMAT,
                                 "MANIFEST: a segment is newer than the epoch");
            break; /* data segments ascend: the last one is the newest */
        }
    }
    return STRATA_OK;
}

strata_status manifest_parse(const char *text, size_t length, manifest *m, strata_error *err)
{
    memset(m, 0, sizeof *m);
    size_t body = 0;
    strata_status st = check_checksum(text, length, &body, err);
    if (st)
        return st;
    line_cursor c = {text, text, 0, err};
    unsigned seen = 0;
    const char *end = text + body;
    while (c.p < end && !st) {
        const char *nl = memchr(c.p, '\n', (size_t)(end - c.p));
        if (!nl)
            return manifest_free(m), parse_fail(&c, "unterminated line");
        c.end = nl;
        c.line++;
        st = c.line == 1 ? parse_header(&c, m) : parse_line(&c, m, &seen);
        c.p = nl + 1;
    }
    if (!st && c.line == 0)
        st = error_set(err, STRATA_ERR_FORMAT, "MANIFEST: empty");
    if (!st && (seen & SEEN_ALL) != SEEN_ALL) {
        static const char *const names[] = {"epoch", "commits",    "writer_ranks", "dims",
                                            "chunk", "voxel_size", "origin",       "index"};
        int missing = __builtin_ctz(~seen & SEEN_ALL);
        st = error_set(err, STRATA_ERR_FORMAT, "MANIFEST: required field \"%s\" missing",
                       names[missing]);
    }
    if (!st)
        st = validate(m, err);
    if (st)
        manifest_free(m);
    return st;
}

strata_status manifest_copy(const manifest *src, manifest *dst, strata_error *err)
{
    *dst = *src;
    dst->split = NULL, dst->segments = NULL, dst->materials = NULL;
    size_t ns = ((size_t)src->split_ranks + 1) * sizeof *src->split;
    dst->split = strata_malloc(ns);
    dst->segments = strata_malloc((src->segment_count + 1) * sizeof *src->segments);
    dst->materials = strata_malloc((src->material_count + 1) * sizeof *src->materials);
    if (!dst->split || !dst->segments || !dst->materials) {
        manifest_free(dst);
        return error_set(err, STRATA_ERR_NOMEM, "cannot copy the manifest");
    }
    memcpy(dst->split, src->split, ns);
    /* A manifest with no segments (or materials) may hold NULL arrays. */
    if (src->segment_count)
        memcpy(dst->segments, src->segments, src->segment_count * sizeof *src->segments);
    if (src->material_count)
        memcpy(dst->materials, src->materials, src->material_count * sizeof *src->materials);
    return STRATA_OK;
}

/* ---- files --------------------------------------------------------------------- */

strata_status manifest_read(const char *dir, manifest *m, strata_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_NAME);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno; /* stat below may change errno */
        struct stat st;
        int exists = stat(dir, &st) == 0;
        if (saved == ENOENT && exists)
            return error_set(err, STRATA_ERR_FORMAT, "%s is not a Strata world (no %s)", dir,
                             MANIFEST_NAME);
        if (saved == ENOTDIR && exists && !S_ISDIR(st.st_mode))
            return error_set(err, STRATA_ERR_FORMAT, "%s is not a world (not a directory)", dir);
        return error_set(err, saved == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO,
                         "cannot open %s: %s", path, strerror(saved));
    }
    struct stat st;
    strata_status status = STRATA_OK;
    char *text = NULL;
    if (fstat(fd, &st) != 0) {
        status = error_set(err, STRATA_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)MANIFEST_MAX_BYTES) {
        status = error_set(err, STRATA_ERR_FORMAT, "%s is not a manifest (size %lld)", path,
                           (long long)st.st_size);
        goto done;
    }
    text = strata_malloc((size_t)st.st_size + 1);
    if (!text) {
        status = error_set(err, STRATA_ERR_NOMEM, "cannot read %s", path);
        goto done;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n <= 0) {
            status = error_set(err, STRATA_ERR_IO, "cannot read %s: %s", path,
                               n ? strerror(errno) : "short read");
            goto done;
        }
        got += (size_t)n;
    }
    status = manifest_parse(text, got, m, err);
    if (status) {
        /* Name the file: the parser only knows line numbers. */
        char message[STRATA_ERROR_MAX];
        snprintf(message, sizeof message, "%s: %s", dir, err->message);
        error_set(err, status, "%s", message);
    }
done:
    free(text);
    close(fd);
    return status;
}

static strata_status write_all(int fd, const char *data, size_t length, const char *path,
                               strata_error *err)
{
    while (length) {
        ssize_t n = write(fd, data, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return error_set(err, STRATA_ERR_IO, "cannot write %s: %s", path,
                             n < 0 ? error_errno_text(errno) : "nothing written");
        data += n;
        length -= (size_t)n;
    }
    return STRATA_OK;
}

strata_status manifest_write(const char *dir, const manifest *m, strata_error *err)
{
    return manifest_write_through(dir, m, MANIFEST_NAME ".tmp", err);
}

strata_status manifest_write_through(const char *dir, const manifest *m, const char *tmp_name,
                                     strata_error *err)
{
    char *text;
    size_t length;
    strata_status st = manifest_format(m, &text, &length, err);
    if (st)
        return st;
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/%s", dir, tmp_name);
    snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_NAME);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        free(text);
        return error_set(err, STRATA_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    }
    st = write_all(fd, text, length, tmp, err);
    free(text);
    /* The new manifest must be on disk before the rename publishes it: otherwise
     * a crash could leave a renamed but empty MANIFEST (the commit point). */
    if (!st && fsync(fd) != 0)
        st = error_set(err, STRATA_ERR_IO, "cannot fsync %s: %s", tmp, error_errno_text(errno));
    if (close(fd) != 0 && !st)
        st = error_set(err, STRATA_ERR_IO, "cannot close %s: %s", tmp, error_errno_text(errno));
    if (!st && strata_fault_point("manifest-before-rename"))
        st = error_set(err, STRATA_ERR_IO, "fault injected before the manifest rename");
    if (!st && rename(tmp, path) != 0)
        st = error_set(err, STRATA_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       error_errno_text(errno));
    /* Not published: MANIFEST is untouched and the half-written copy goes (a full
     * file system would otherwise keep it until the next writer's open). */
    if (st)
        unlink(tmp);
    /* The rename is the commit point (strata_commit, step 5); fsync the directory
     * so it survives a crash. A failure from here on is after it: UNSYNCED. */
    if (!st && fsync_directory(dir, err) != STRATA_OK)
        st = error_set(err, STRATA_ERR_UNSYNCED, "%s is published but not known durable: %s", path,
                       err->message);
    if (!st && strata_fault_point("manifest-after-rename"))
        st = error_set(err, STRATA_ERR_UNSYNCED,
                       "%s is published but not known durable: fault injected after the rename",
                       path);
    return st;
}
