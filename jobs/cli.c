/* cli.c: what every job shares (cli.h): option parsing (the world argument, open, box,
 * LOD, units and world-making options), input files (CSV tables, update and point
 * files sliced across ranks), agreement on a job's outcome, errors, usage, progress and
 * summaries. stdout carries results only; everything else goes to stderr. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void job_error(const job *j, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "strata %s: error: rank %d: %s\n", j->name, j->rank, text);
}

int job_fail(const job *j, strata_status st, const strata_world *w)
{
    /* Collective errors are agreed: every rank holds the same message, so rank 0 speaks. */
    if (j->rank == 0)
        fprintf(stderr, "strata %s: error: %s: %s\n", j->name, strata_strerror(st),
                strata_last_error(w));
    return JOB_FAILED;
}

int job_fail_close(const job *j, strata_status st, strata_world *w)
{
    int rc = job_fail(j, st, w);
    strata_world_close(w);
    return rc;
}

int job_usage(const job *j, const char *usage, const char *fmt, ...)
{
    if (j->help) {
        if (j->rank == 0)
            printf("strata %s: %s\nusage: %s\nOptions and formats: README.md and docs/.\n", j->name,
                   j->summary ? j->summary : "", usage);
        return JOB_HELP;
    }
    if (j->rank != 0)
        return JOB_USAGE;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "strata %s: %s\nusage: %s\n", j->name, text, usage);
    return JOB_USAGE;
}

void job_summary(const job *j, const char *fmt, ...)
{
    if (j->rank != 0 || j->quiet)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "strata %s: %s\n", j->name, text);
}

/* ---- progress ------------------------------------------------------------------ */

void progress_start(progress *p, const job *j, const char *what, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->j = j;
    p->what = what;
    p->total = total;
    p->start = p->last = MPI_Wtime();
    p->tty = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
}

static void progress_print(progress *p, double now, int final)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    double eta = rate > 0 && p->total > p->done ? (double)(p->total - p->done) / rate : 0;
    double share = p->total ? (double)p->done / (double)p->total : 1;
    if (p->tty) {
        char bar[31];
        int filled = (int)(share * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %5.1f%% %" PRIu64 "/%" PRIu64 " %s %.3g/s ETA %.0fs%s",
                p->j->name, bar, 100 * share, p->done, p->total, p->what, rate, eta,
                final ? "\n" : "");
    } else {
        fprintf(stderr,
                "strata %s: progress %" PRIu64 "/%" PRIu64 " %s (%.1f%%), %.3g %s/s, ETA %.0f s\n",
                p->j->name, p->done, p->total, p->what, 100 * share, rate, p->what, eta);
    }
}

void progress_update(progress *p, uint64_t done)
{
    p->done = done;
    if (p->j->rank != 0 || p->j->quiet)
        return;
    double now = MPI_Wtime();
    /* A bar redraws often; log lines come every 10 seconds at most. */
    if (now - p->last < (p->tty ? 0.2 : 10.0))
        return;
    p->last = now;
    progress_print(p, now, 0);
}

void progress_finish(progress *p)
{
    if (p->j->rank != 0 || p->j->quiet || !p->tty)
        return;
    p->done = p->total;
    progress_print(p, MPI_Wtime(), 1);
}

/* ---- parsing ------------------------------------------------------------------- */

const char *int64_problem(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end != text && !*end) {
        if (errno)
            return "is out of range";
        *out = v;
        return NULL;
    }
    /* Say why: "1.5" is a number, just not a whole one; "a" is none. */
    (void)strtod(text, &end);
    return end != text && !*end ? "is not an integer" : "is not a number";
}

int parse_int64(const char *text, int64_t *out)
{
    return int64_problem(text, out) ? -1 : 0;
}

int parse_uint64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*text == '-')
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end)
        return -1;
    *out = v;
    return 0;
}

const char *double_problem(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end)
        return "is not a number";
    if (!isfinite(v))
        return "is not finite";
    /* strtod flags ERANGE on underflow too: a subnormal (1e-320) is still the number
     * written, one that rounds to zero (1e-400) is not. */
    if (errno == ERANGE && v == 0)
        return "is too small for a double (it rounds to 0)";
    *out = v;
    return NULL;
}

int parse_double_value(const char *text, double *out)
{
    return double_problem(text, out) ? -1 : 0;
}

static int parse_list(const char *text, void *out, int count, int is_double)
{
    char buf[512];
    if (strlen(text) >= sizeof buf)
        return -1;
    strcpy(buf, text);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (int i = 0; i < count; i++, tok = strtok_r(NULL, ",", &save)) {
        if (!tok)
            return -1;
        int rc = is_double ? parse_double_value(tok, (double *)out + i)
                           : parse_int64(tok, (int64_t *)out + i);
        if (rc)
            return -1;
    }
    return tok ? -1 : 0;
}

int parse_int64_list(const char *text, int64_t *out, int count)
{
    return parse_list(text, out, count, 0);
}

int parse_double_list(const char *text, double *out, int count)
{
    return parse_list(text, out, count, 1);
}

int job_double_triple(const job *j, const char *usage, const char *option,
                      const char *const names[3], const char *value, double out[3])
{
    if (!value)
        return job_usage(j, usage, "%s wants %s,%s,%s", option, names[0], names[1], names[2]);
    const char *field = value;
    for (int i = 0; i < 3; i++) {
        const char *comma = strchr(field, ',');
        size_t length = comma ? (size_t)(comma - field) : strlen(field);
        if ((i < 2) != !!comma)
            return job_usage(j, usage, "%s wants %s,%s,%s (got '%s')", option, names[0], names[1],
                             names[2], value);
        char text[128];
        if (length >= sizeof text)
            return job_usage(j, usage, "%s: %s is longer than %zu characters", option, names[i],
                             sizeof text - 1);
        memcpy(text, field, length);
        text[length] = '\0';
        const char *problem = double_problem(text, &out[i]);
        if (problem)
            return job_usage(j, usage, "%s: %s '%s' %s", option, names[i], text, problem);
        field += length + 1;
    }
    return JOB_OK;
}

int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        *value = NULL;
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

int parse_world_option(const job *j, const char *usage, int argc, char **argv, int *i,
                       world_options *o)
{
    const char *value;
    strata_config *cfg = o->cfg;
    if (option_value(argc, argv, i, "--chunk", &value)) {
        int64_t c;
        if (!value || parse_int64(value, &c) || c <= 0 || c > 4096)
            return job_usage(j, usage, "--chunk wants a power of two in [16, 256]");
        cfg->chunk_edge = (int32_t)c;
    } else if (option_value(argc, argv, i, "--voxel-size", &value)) {
        if (value && parse_double_list(value, cfg->voxel_size, 3) == 0)
            return JOB_OK;
        if (!value || parse_double_value(value, &cfg->voxel_size[0]))
            return job_usage(j, usage, "--voxel-size wants M or DX,DY,DZ");
        cfg->voxel_size[1] = cfg->voxel_size[2] = cfg->voxel_size[0];
    } else if (option_value(argc, argv, i, "--origin", &value)) {
        if (!value || parse_double_list(value, cfg->origin, 3))
            return job_usage(j, usage, "--origin wants X,Y,Z in metres");
    } else if (option_value(argc, argv, i, "--materials", &value)) {
        if (!value)
            return job_usage(j, usage, "--materials wants FILE.csv");
        o->materials = value;
    } else if (!strcmp(argv[*i], "--force")) {
        o->flags |= STRATA_CREATE_FORCE;
    } else if (!strcmp(argv[*i], "--defer-index")) {
    } else if (!strcmp(argv[*i], "--cache-mb")) {
        ++*i; /* read by job_options */
    } else {
        return job_usage(j, usage, "unknown option %s", argv[*i]);
    }
    return JOB_OK;
}

int skip_open_option(int argc, char **argv, int *i)
{
    const char *value;
    return option_value(argc, argv, i, "--cache-mb", &value) ||
           option_value(argc, argv, i, "--units", &value);
}

int parse_lod_option(const job *j, const char *usage, int argc, char **argv, int *i, int64_t *level,
                     double *threshold)
{
    const char *value;
    if (option_value(argc, argv, i, "--lod", &value)) {
        if (!value || parse_int64(value, level) || *level < 0 || *level > 62)
            return job_usage(j, usage, "--lod wants a level in [0, 62]"), -1;
    } else if (option_value(argc, argv, i, "--threshold", &value)) {
        if (!value || parse_double_value(value, threshold) || !(*threshold >= 0 && *threshold <= 1))
            return job_usage(j, usage, "--threshold wants a number in [0, 1]"), -1;
    } else {
        return 0;
    }
    return 1;
}

int job_parse(const job *j, const char *usage, int argc, char **argv, job_parser parse, void *args,
              strata_options *opt)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    int rc = parse(j, argc, argv, args);
    return rc ? rc : job_options(j, usage, argc, argv, opt);
}

int job_parse_open(const job *j, const char *usage, int argc, char **argv, job_parser parse,
                   void *args, int mode, strata_world **w)
{
    strata_options opt;
    int rc = job_parse(j, usage, argc, argv, parse, args, &opt);
    if (rc)
        return rc;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], mode, &opt, w);
    return st ? job_fail(j, st, NULL) : JOB_OK;
}

int job_open(const job *j, const char *usage, int argc, char **argv, const char *path, int mode,
             strata_world **w)
{
    strata_options opt;
    int rc = job_options(j, usage, argc, argv, &opt);
    if (rc)
        return rc;
    strata_status st = strata_world_open(MPI_COMM_WORLD, path, mode, &opt, w);
    return st ? job_fail(j, st, NULL) : JOB_OK;
}

int job_options(const job *j, const char *usage, int argc, char **argv, strata_options *opt)
{
    strata_options_init(opt);
    for (int i = 0; i < argc; i++) {
        uint64_t mb;
        const char *value;
        if (!strcmp(argv[i], "--defer-index")) {
            opt->defer_index = 1;
        } else if (option_value(argc, argv, &i, "--cache-mb", &value)) {
            /* (SIZE_MAX >> 20): the budget in bytes must fit a size_t */
            if (!value || parse_uint64(value, &mb) || mb == 0 || mb > (SIZE_MAX >> 20))
                return job_usage(j, usage, "--cache-mb wants a whole number of MiB >= 1");
            opt->cache_bytes = (size_t)mb << 20;
        }
    }
    return JOB_OK;
}

/* ---- files --------------------------------------------------------------------- */

int read_file_range(const char *path, uint64_t begin, uint64_t end, char **data, char *error,
                    size_t error_size)
{
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(error, error_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t length = end - begin;
    char *buf = malloc(length + 1);
    if (!buf) {
        close(fd);
        snprintf(error, error_size, "cannot allocate %" PRIu64 " bytes for %s", length, path);
        return -1;
    }
    uint64_t got = 0;
    while (got < length) {
        ssize_t n = pread(fd, buf + got, length - got, (off_t)(begin + got));
        if (n <= 0) {
            snprintf(error, error_size, "cannot read %s: %s", path,
                     n ? strerror(errno) : "file shrank");
            free(buf);
            close(fd);
            return -1;
        }
        got += (uint64_t)n;
    }
    close(fd);
    buf[length] = '\0';
    *data = buf;
    return 0;
}

int read_file(const char *path, char **data, size_t *length, char *error, size_t error_size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(error, error_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(error, error_size, "%s is not a regular file", path);
        return -1;
    }
    *length = (size_t)st.st_size;
    return read_file_range(path, 0, (uint64_t)st.st_size, data, error, error_size);
}

/* One CSV field of the line at *p (ending at end): RFC 4180 quoting ("a, b",
 * "" for a quote), blanks around an unquoted field or around the quotes
 * dropped. Writes the field NUL-terminated to out (room for size bytes);
 * returns 1 when the line continues with another field, 0 at its end, -1 for
 * a malformed quote, -2 for a field too long for out. */
static int csv_field(const char **p, const char *end, char *out, size_t size)
{
    const char *c = *p;
    size_t n = 0;
    while (c < end && (*c == ' ' || *c == '\t'))
        c++;
    if (c < end && *c == '"') {
        for (c++;; c++) {
            if (c == end)
                return -1; /* unterminated */
            if (*c == '"') {
                if (c + 1 < end && c[1] == '"')
                    c++;
                else
                    break;
            }
            if (n + 1 >= size)
                return -2;
            out[n++] = *c;
        }
        for (c++; c < end && (*c == ' ' || *c == '\t'); c++)
            ;
        if (c < end && *c != ',')
            return -1; /* text after the closing quote */
    } else {
        const char *start = c;
        while (c < end && *c != ',')
            c++;
        const char *stop = c;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        for (const char *q = start; q < stop; q++) {
            if (*q == '"')
                return -1; /* a quote inside an unquoted field */
            if (n + 1 >= size)
                return -2;
            out[n++] = *q;
        }
    }
    out[n] = '\0';
    *p = c < end ? c + 1 : end;
    return c < end;
}

/* An integer field in [0, max]; 0 on success. */
static int csv_number(const char *field, int64_t max, int64_t *out)
{
    return parse_int64(field, out) || *out < 0 || *out > max ? -1 : 0;
}

/* "PATH line N: " and the message, in error. */
static void csv_fail(const csv_row *r, char *error, size_t error_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void csv_fail(const csv_row *r, char *error, size_t error_size, const char *fmt, ...)
{
    int at = snprintf(error, error_size, "%s line %zu: ", r->path, r->line);
    size_t used = at < 0 ? 0 : (size_t)at < error_size ? (size_t)at : error_size - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error + used, error_size - used, fmt, ap);
    va_end(ap);
}

/* Split one line [p, end) into r's fields; -1 with error set when a field is malformed. */
static int csv_split(const char *p, const char *end, csv_row *r, char *error, size_t error_size)
{
    int more = 1;
    for (r->count = 0; more; r->count++) {
        if (r->count == CSV_FIELDS_MAX) {
            r->count++; /* more than CSV_FIELDS_MAX */
            break;
        }
        more = csv_field(&p, end, r->field[r->count], sizeof r->field[r->count]);
        if (more == -1)
            return csv_fail(r, error, error_size,
                            "field %d: malformed quotes (quote a name holding commas as \"a, b\", "
                            "a quote inside it as \"\")",
                            r->count + 1),
                   -1;
        if (more == -2)
            return csv_fail(r, error, error_size, "field %d is longer than %d bytes", r->count + 1,
                            CSV_FIELD_SIZE - 2),
                   -1;
    }
    return 0;
}

int csv_read(const char *path, csv_row_reader row, void *context, char *error, size_t error_size)
{
    char *text;
    size_t length;
    if (read_file(path, &text, &length, error, error_size))
        return -1;
    csv_row *r = malloc(sizeof *r);
    if (!r) {
        snprintf(error, error_size, "out of memory reading %s", path);
        free(text);
        return -1;
    }
    r->path = path;
    r->line = 0;
    r->first = 1;
    int rc = 0;
    const char *p = text, *stop = text + length;
    if (length >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
        p += 3; /* a UTF-8 byte order mark */
    for (const char *next; p < stop && !rc; p = next) {
        const char *newline = memchr(p, '\n', (size_t)(stop - p));
        const char *end = newline ? newline : stop;
        next = newline ? newline + 1 : stop;
        r->line++;
        if (end > p && end[-1] == '\r')
            end--;
        const char *first = p;
        while (first < end && (*first == ' ' || *first == '\t'))
            first++;
        if (first == end || *first == '#')
            continue;
        rc = csv_split(p, end, r, error, error_size) || row(context, r, error, error_size) ? -1 : 0;
        r->first = 0;
    }
    free(r);
    free(text);
    return rc;
}

/* The materials read so far, and the line of each (for a duplicate id). */
typedef struct {
    strata_material *table;
    size_t *lines;
    size_t n;
} material_list;

/* One materials line: id,name,r,g,b (the header id,name,r,g,b in any case on the first). */
static int material_row(void *context, const csv_row *r, char *error, size_t error_size)
{
    material_list *m = context;
    const char(*f)[CSV_FIELD_SIZE] = r->field;
    if (r->first && r->count == 5 && !strcasecmp(f[0], "id") && !strcasecmp(f[1], "name") &&
        !strcasecmp(f[2], "r") && !strcasecmp(f[3], "g") && !strcasecmp(f[4], "b"))
        return 0;
#define ROW_FAIL(...) return csv_fail(r, error, error_size, __VA_ARGS__), -1
    if (r->count > CSV_FIELDS_MAX)
        ROW_FAIL("more than %d fields, expected 5: id,name,r,g,b", CSV_FIELDS_MAX);
    if (r->count != 5)
        ROW_FAIL("%d fields, expected 5: id,name,r,g,b", r->count);
    int64_t v[4];
    static const char *const colour[3] = {"r", "g", "b"};
    if (csv_number(f[0], 65535, &v[0]))
        ROW_FAIL("id \"%s\" is not an integer in 0..65535", f[0]);
    for (int k = 0; k < 3; k++)
        if (csv_number(f[2 + k], 255, &v[1 + k]))
            ROW_FAIL("colour %s \"%s\" is not an integer in 0..255", colour[k], f[2 + k]);
    size_t name_length = strlen(f[1]);
    if (!name_length)
        ROW_FAIL("material %" PRId64 ": the name is empty", v[0]);
    if (name_length >= STRATA_MATERIAL_NAME_MAX)
        ROW_FAIL("material %" PRId64 ": the name is longer than %d bytes", v[0],
                 STRATA_MATERIAL_NAME_MAX - 1);
    for (size_t k = 0; k < name_length; k++)
        if ((unsigned char)f[1][k] < 0x20)
            ROW_FAIL("material %" PRId64 ": a control character in the name", v[0]);
    for (size_t k = 0; k < m->n; k++)
        if (m->table[k].id == v[0])
            ROW_FAIL("material %" PRId64 " listed twice (first on line %zu)", v[0], m->lines[k]);
#undef ROW_FAIL
    strata_material *grown = realloc(m->table, (m->n + 1) * sizeof *m->table);
    if (grown)
        m->table = grown;
    size_t *grown_lines = grown ? realloc(m->lines, (m->n + 1) * sizeof *m->lines) : NULL;
    if (!grown || !grown_lines) {
        snprintf(error, error_size, "out of memory reading %s", r->path);
        return -1;
    }
    m->lines = grown_lines;
    strata_material *t = &m->table[m->n];
    memset(t, 0, sizeof *t);
    t->id = (uint16_t)v[0];
    memcpy(t->name, f[1], name_length + 1);
    t->rgb[0] = (uint8_t)v[1], t->rgb[1] = (uint8_t)v[2], t->rgb[2] = (uint8_t)v[3];
    m->lines[m->n++] = r->line;
    return 0;
}

int read_materials_csv(const char *path, strata_material **out, size_t *count, char *error,
                       size_t error_size)
{
    material_list m = {NULL, NULL, 0};
    int rc = csv_read(path, material_row, &m, error, error_size);
    free(m.lines);
    if (!rc && !m.n) {
        snprintf(error, error_size, "%s holds no materials", path);
        rc = -1;
    }
    if (rc) {
        free(m.table);
        return -1;
    }
    *out = m.table;
    *count = m.n;
    return 0;
}

int job_agree_read(const job *j, int failed, const char *message, const char *path)
{
    if (!job_agree(failed))
        return JOB_OK;
    if (j->rank == 0) {
        if (failed)
            job_error(j, "%s", message);
        else
            job_error(j, "%s is unreadable on another rank", path);
    }
    return JOB_FAILED;
}

int job_read_materials(const job *j, const char *path, strata_config *cfg, strata_material **table)
{
    *table = NULL;
    if (!path)
        return JOB_OK;
    char message[512] = "";
    int failed = read_materials_csv(path, table, &cfg->material_count, message, sizeof message);
    int rc = job_agree_read(j, failed, message, path);
    if (rc) {
        free(*table);
        *table = NULL;
    }
    cfg->materials = *table;
    return rc;
}

/* ---- collective input ------------------------------------------------------------- */

#include "textio.h"

int job_agree(int rc)
{
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

/* Share the first failing rank's message so that exactly one copy is printed. */
int job_agree_message(const job *j, int failed, const char *message)
{
    int first = failed ? j->rank : j->size, lowest = j->size;
    MPI_Allreduce(&first, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (lowest == j->size)
        return JOB_OK;
    char shared[STRATA_ERROR_MAX];
    if (j->rank == lowest)
        snprintf(shared, sizeof shared, "%s", message);
    MPI_Bcast(shared, sizeof shared, MPI_CHAR, lowest, MPI_COMM_WORLD);
    if (j->rank == 0)
        fprintf(stderr, "strata %s: error: %s\n", j->name, shared);
    return JOB_FAILED;
}

/* Agree on an input's outcome, the message of a failed parse (every failure but an
 * I/O one, whose message already names the file) prefixed with the file's path. */
static int agree_file_input(const job *j, int failed, const char *path, strata_error *err)
{
    if (failed && err->status != STRATA_ERR_IO) {
        char message[STRATA_ERROR_MAX];
        snprintf(message, sizeof message, "%s: %s", path, err->message);
        snprintf(err->message, sizeof err->message, "%s", message);
    }
    return job_agree_message(j, failed, err->message);
}

static int read_slice(const job *j, const char *path, int binary, char **data, uint64_t *length,
                      uint64_t *base, strata_error *err)
{
    uint64_t begin = 0, end = 0;
    strata_status st = textio_slice(path, j->rank, j->size, binary, &begin, &end, err);
    if (st)
        return -1;
    char message[STRATA_ERROR_MAX];
    if (read_file_range(path, begin, end, data, message, sizeof message)) {
        error_set(err, STRATA_ERR_IO, "%s", message);
        return -1;
    }
    *length = end - begin;
    /* Line (or record) numbers continue across ranks: an exclusive scan of counts. */
    uint64_t mine = binary ? *length / TEXTIO_BINARY_RECORD : textio_count_lines(*data, *length);
    uint64_t before = 0;
    MPI_Exscan(&mine, &before, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    *base = j->rank == 0 ? 0 : before;
    return 0;
}

int load_update_slice(const job *j, const char *path, const int64_t dims[3], strata_update **out,
                      size_t *n)
{
    strata_error err;
    error_clear(&err);
    *out = NULL;
    *n = 0;
    int binary = 0, failed = textio_is_binary(path, &binary, &err) != STRATA_OK;
    if (job_agree(failed))
        return job_agree_message(j, failed, err.message);
    char *data = NULL;
    uint64_t length = 0, base = 0;
    if (binary) {
        struct stat info;
        uint64_t count;
        char message[STRATA_ERROR_MAX];
        failed = stat(path, &info) != 0 ||
                 read_file_range(path, 0, TEXTIO_BINARY_HEADER, &data, message, sizeof message);
        if (failed)
            error_set(&err, STRATA_ERR_IO, "cannot read the header of %s", path);
        else
            failed = textio_check_binary_header((const uint8_t *)data, (uint64_t)info.st_size,
                                                &count, &err) != STRATA_OK;
        free(data);
        data = NULL;
        if (job_agree(failed))
            return agree_file_input(j, failed, path, &err);
    }
    failed = read_slice(j, path, binary, &data, &length, &base, &err);
    if (!failed && binary) {
        /* Records are numbered from 0 in the file; data holds whole records. */
        failed = textio_parse_binary((const uint8_t *)data, length, base, dims, out, n, &err) !=
                 STRATA_OK;
    } else if (!failed) {
        failed = textio_parse_updates(data, length, base, dims, out, n, &err) != STRATA_OK;
    }
    free(data);
    return agree_file_input(j, failed, path, &err);
}

/* What loading a point file starts with: no points yet, this rank's slice of the text
 * read (0), or -1 with err set. Collective (read_slice). */
static int read_point_slice(const job *j, const char *path, int64_t (**out)[3], size_t *n,
                            char **data, uint64_t *length, uint64_t *base, strata_error *err)
{
    error_clear(err);
    *out = NULL;
    *n = 0;
    *data = NULL;
    *length = *base = 0;
    return read_slice(j, path, 0, data, length, base, err);
}

int load_point_slice(const job *j, const char *path, const int64_t dims[3], int64_t (**out)[3],
                     size_t *n)
{
    strata_error err;
    char *data;
    uint64_t length, base;
    int failed = read_point_slice(j, path, out, n, &data, &length, &base, &err);
    if (!failed)
        failed = textio_parse_points(data, length, base, dims, out, n, &err) != STRATA_OK;
    free(data);
    return agree_file_input(j, failed, path, &err);
}

int check_points_inside(const job *j, const strata_world *w, const char *path,
                        const int64_t (*points)[3], size_t n)
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    /* points before this rank's slice, so the number is the point's in the file */
    uint64_t mine = n, before = 0;
    MPI_Exscan(&mine, &before, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (j->rank == 0)
        before = 0;
    char message[STRATA_ERROR_MAX] = "";
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        const int64_t *p = points[i];
        if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[0] >= cfg.dims[0] || p[1] >= cfg.dims[1] ||
            p[2] >= cfg.dims[2]) {
            failed = 1;
            int at = path ? snprintf(message, sizeof message, "%s: point %" PRIu64 " ", path,
                                     before + i + 1)
                          : snprintf(message, sizeof message, "point ");
            snprintf(message + at, sizeof message - (size_t)at,
                     "(%" PRId64 ", %" PRId64 ", %" PRId64 ") is outside the world (%" PRId64
                     " x %" PRId64 " x %" PRId64 ")",
                     p[0], p[1], p[2], cfg.dims[0], cfg.dims[1], cfg.dims[2]);
        }
    }
    return job_agree_message(j, failed, message);
}

int job_units(const job *j, const char *usage, int argc, char **argv, int *metres)
{
    *metres = 0;
    for (int i = 1; i < argc; i++) {
        const char *value;
        if (!option_value(argc, argv, &i, "--units", &value))
            continue;
        if (!value || (strcmp(value, "m") && strcmp(value, "voxel")))
            return job_usage(j, usage, "--units wants m (world metres) or voxel");
        *metres = !strcmp(value, "m");
    }
    return JOB_OK;
}

/*
 * Metres p along an axis with origin o and voxel size s to a continuous voxel
 * coordinate whose floor is the voxel holding p by the README's rule: voxel i spans
 * [o + i*s, o + (i+1)*s) as computed in doubles. floor((p - o) / s) alone rounds:
 * with o = 3, s = 0.1, 3 + 13 * 0.1 == 4.3 but (4.3 - 3) / 0.1 is 12.999..., so the
 * index is corrected against o + i*s after the floor, and the fraction measured
 * from that voxel's corner.
 */
static double metres_to_voxel(double p, double o, double s)
{
    double v = (p - o) / s, i = floor(v);
    if (!(fabs(i) < 0x1p52)) /* beyond every world, or not a number: refused later */
        return v;
    if (o + (i + 1) * s <= p)
        i += 1;
    else if (o + i * s > p)
        i -= 1;
    double r = i + (p - (o + i * s)) / s;
    return floor(r) == i ? r : i; /* a fraction a hair below 1 may round up */
}

void job_metres_to_voxels(const strata_world *w, const double m[3], double v[3])
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    for (int i = 0; i < 3; i++)
        v[i] = metres_to_voxel(m[i], cfg.origin[i], cfg.voxel_size[i]);
}

/* floor of a voxel coordinate, refused (0) when it cannot be an int64. */
static int voxel_index(double v, int64_t *out)
{
    double f = floor(v);
    if (!(f >= -9.2e18 && f <= 9.2e18))
        return 0;
    *out = (int64_t)f;
    return 1;
}

int job_metres_point(const job *j, const strata_world *w, const double m[3], int64_t out[3])
{
    double v[3];
    job_metres_to_voxels(w, m, v);
    for (int i = 0; i < 3; i++)
        if (!voxel_index(v[i], &out[i])) {
            if (j->rank == 0)
                fprintf(stderr, "strata %s: error: position %g m along %c is out of range\n",
                        j->name, m[i], "xyz"[i]);
            return JOB_USAGE;
        }
    return JOB_OK;
}

int job_box_metres(const job *j, const char *usage, const strata_world *w, const double m[6],
                   int64_t box[6])
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    double lo[3], hi[3];
    job_metres_to_voxels(w, m, lo);
    job_metres_to_voxels(w, m + 3, hi);
    for (int i = 0; i < 3; i++) {
        /* the voxels the metric box touches: from the voxel holding its low corner to
         * the first voxel starting at or after its high corner */
        if (!voxel_index(lo[i], &box[i]) || !voxel_index(hi[i], &box[i + 3]) ||
            box[i + 3] == INT64_MAX)
            return job_usage(j, usage, "--box in metres is out of range along %c", "xyz"[i]);
        if (cfg.origin[i] + (double)box[i + 3] * cfg.voxel_size[i] < m[i + 3])
            box[i + 3]++;
        if (box[i] >= box[i + 3])
            return job_usage(j, usage, "box is empty along %c (%g m >= %g m)", "xyz"[i], m[i],
                             m[i + 3]);
    }
    return JOB_OK;
}

int box_arg_parse(const job *j, const char *usage, const char *value, box_arg *b)
{
    b->given = 1;
    if (!b->metres)
        return job_box(j, usage, value, b->box);
    if (!value || parse_double_list(value, b->metric, 6))
        return job_usage(j, usage, "--box wants x0,y0,z0,x1,y1,z1 (metres)");
    return JOB_OK;
}

int box_arg_resolve(const job *j, const char *usage, const strata_world *w, box_arg *b)
{
    return b->metres ? job_box_metres(j, usage, w, b->metric, b->box) : JOB_OK;
}

/* The arguments of a box query (job_box_query's list); JOB_OK or the usage error. */
static int parse_box_query(const job *j, const char *usage, int argc, char **argv, box_arg *box,
                           int64_t *level, double *threshold)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    memset(box, 0, sizeof *box);
    int rc = job_units(j, usage, argc, argv, &box->metres);
    for (int i = 2; i < argc && !rc; i++) {
        const char *value;
        int used = level ? parse_lod_option(j, usage, argc, argv, &i, level, threshold) : 0;
        if (used < 0)
            rc = JOB_USAGE;
        else if (!used && option_value(argc, argv, &i, "--box", &value))
            rc = box_arg_parse(j, usage, value, box);
        else if (!used && !skip_open_option(argc, argv, &i))
            rc = job_usage(j, usage, "unknown option %s", argv[i]);
    }
    if (!rc && (!box->given || (level && *level < 0)))
        rc = job_usage(j, usage, level ? "--box and --lod are required" : "--box is required");
    return rc;
}

int job_box_query(const job *j, const char *usage, int argc, char **argv, box_arg *box,
                  int64_t *level, double *threshold, strata_world **w)
{
    *w = NULL;
    int rc = parse_box_query(j, usage, argc, argv, box, level, threshold);
    if (!rc)
        rc = job_open(j, usage, argc, argv, argv[1], STRATA_READ, w);
    if (!rc && (rc = box_arg_resolve(j, usage, *w, box))) {
        strata_world_close(*w);
        *w = NULL;
    }
    return rc;
}

/* One line [p, p + length) of a positions file: 1 with m set, 0 blank or a comment,
 * -1 not three finite numbers, -2 longer than POSITION_LINE_MAX bytes. */
enum { POSITION_LINE_MAX = 511 };
static int position_line(const char *p, size_t length, double m[3])
{
    char text[POSITION_LINE_MAX + 1];
    if (length > POSITION_LINE_MAX)
        return -2;
    memcpy(text, p, length);
    text[length] = 0;
    char *hash = strchr(text, '#'), *cursor = text;
    if (hash)
        *hash = 0;
    int fields = 0;
    for (; fields < 3; fields++) {
        char *next;
        m[fields] = strtod(cursor, &next);
        if (next == cursor)
            break;
        cursor = next;
    }
    while (*cursor == ' ' || *cursor == '\t' || *cursor == '\r')
        cursor++;
    if (fields == 0 && !*cursor)
        return 0;
    return fields == 3 && !*cursor && isfinite(m[0]) && isfinite(m[1]) && isfinite(m[2]) ? 1 : -1;
}

int load_position_slice(const job *j, const char *path, const strata_world *w, int64_t (**out)[3],
                        size_t *n)
{
    strata_error err;
    char *data;
    uint64_t length, base;
    int failed = read_point_slice(j, path, out, n, &data, &length, &base, &err);
    size_t cap = 0;
    const char *p = data, *end = data ? data + length : NULL;
    for (uint64_t line = base + 1; !failed && p && p < end; line++) {
        const char *stop = memchr(p, '\n', (size_t)(end - p));
        if (!stop)
            stop = end;
        double m[3], v[3];
        int got = position_line(p, (size_t)(stop - p), m);
        p = stop + (stop < end);
        if (got == 0)
            continue; /* blank or comment */
        if (got == 1 && *n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t(*grown)[3] = realloc(*out, cap * sizeof **out);
            if (!grown) {
                error_set(&err, STRATA_ERR_NOMEM, "cannot hold %zu points", cap);
                failed = 1;
                break;
            }
            *out = grown;
        }
        int ok = got == 1;
        if (ok)
            job_metres_to_voxels(w, m, v);
        for (int i = 0; ok && i < 3; i++)
            ok = voxel_index(v[i], &(*out)[*n][i]);
        if (got == -2)
            error_set(&err, STRATA_ERR_PARSE, "%s: line %" PRIu64 ": longer than %d bytes", path,
                      line, POSITION_LINE_MAX);
        else if (!ok)
            error_set(&err, STRATA_ERR_PARSE, "%s: line %" PRIu64 ": want x y z in metres", path,
                      line);
        failed = !ok;
        *n += ok;
    }
    free(data);
    if (failed) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return job_agree_message(j, failed, err.message);
}

int job_box(const job *j, const char *usage, const char *value, int64_t box[6])
{
    if (!value || parse_int64_list(value, box, 6))
        return job_usage(j, usage, "--box wants x0,y0,z0,x1,y1,z1");
    for (int i = 0; i < 3; i++)
        if (box[i] >= box[i + 3])
            return job_usage(j, usage, "box is empty along %c (%" PRId64 " >= %" PRId64 ")",
                             "xyz"[i], box[i], box[i + 3]);
    return JOB_OK;
}
