/* cli.h: what every job shares: option parsing, errors, progress and summaries. */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "strata.h"

/** What a job knows about its run. */
typedef struct {
    const char *name; /* subcommand, for messages */
    int rank, size;
    int quiet;
    int help;            /* `strata NAME --help`: job_usage prints the usage on stdout */
    const char *summary; /* one line on what the command does */
    double start;        /* MPI_Wtime at job start */
} job;

typedef int (*job_main)(job *j, int argc, char **argv);

/* Exit codes: 0 ok, 1 failure, 2 usage. */
enum { JOB_OK = 0, JOB_FAILED = 1, JOB_USAGE = 2, JOB_HELP = 3 /* exits 0 */ };

/** Print "strata NAME: rank R: message" on stderr (every rank that fails says it once). */
void job_error(const job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Report a library failure (status and last error of w or of the thread); returns JOB_FAILED. */
int job_fail(const job *j, strata_status st, const strata_world *w);
/** job_fail, then strata_world_close(w): a job's last words after a failed call. */
int job_fail_close(const job *j, strata_status st, strata_world *w);
/** Usage error on rank 0; returns JOB_USAGE (with j->help: the usage on stdout, JOB_HELP). */
int job_usage(const job *j, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Rank 0 prints "strata NAME: message" on stderr (unless quiet): the job's summary
 *  line, and what it is about to do before a long step. */
void job_summary(const job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Progress on rank 0: a bar with rate and ETA on a terminal, log lines otherwise. */
typedef struct {
    const job *j;
    const char *what; /* unit, e.g. "chunks" */
    uint64_t total, done;
    double start, last;
    int tty;
} progress;
void progress_start(progress *p, const job *j, const char *what, uint64_t total);
void progress_update(progress *p, uint64_t done);
void progress_finish(progress *p);

/* Option parsing. Each returns 0 on success, -1 with a message on rank 0. */
/** Why text is not a decimal int64 ("is not an integer" for 1.5, "is not a number",
 *  "is out of range"), or NULL with *out set. Local. */
const char *int64_problem(const char *text, int64_t *out);
/** Why text is not a finite double ("is not a number", "is not finite", "is too small
 *  ..." when it rounds to 0; a subnormal such as 1e-320 is accepted), or NULL with *out
 *  set. Local. */
const char *double_problem(const char *text, double *out);
int parse_int64(const char *text, int64_t *out);
int parse_uint64(const char *text, uint64_t *out);
int parse_double_value(const char *text, double *out);
/** "a,b,c" of int64. */
int parse_int64_list(const char *text, int64_t *out, int count);
/** Parse a --box value x0,y0,z0,x1,y1,z1 (half-open, not empty along any axis);
 *  JOB_OK, or the usage error job_usage printed. */
int job_box(const job *j, const char *usage, const char *value, int64_t box[6]);
/** "a,b,c" of doubles. */
int parse_double_list(const char *text, double *out, int count);
/** An option's "a,b,c" of finite doubles (names: the components, e.g. dx, dy, dz); a usage
 *  error names the option, the bad component and its text. Local.
 *  @return JOB_OK, or the usage error job_usage printed */
int job_double_triple(const job *j, const char *usage, const char *option,
                      const char *const names[3], const char *value, double out[3]);
/** Option matching: "--name" with value in the next argument or "--name=value". */
int option_value(int argc, char **argv, int *i, const char *name, const char **value);

/** What create and import share: the new world's layout and how to make it. */
typedef struct {
    strata_config *cfg;
    const char *materials; /* --materials FILE.csv, or NULL */
    unsigned flags;        /* STRATA_CREATE_FORCE with --force */
} world_options;
/**
 * Consume argv[*i] (and its value) when it is one of the options every job
 * that makes a world takes: --chunk, --voxel-size, --origin, --materials,
 * --force, and the common --defer-index, --cache-mb (main.c takes --quiet out of argv).
 * @return JOB_OK consumed, else the usage error job_usage printed (a bad value, or an
 *         option that is not one of these)
 */
int parse_world_option(const job *j, const char *usage, int argc, char **argv, int *i,
                       world_options *o);

/** Step past argv[*i] and its value when it is --cache-mb or --units, the options
 *  job_options and job_units read from the whole argv. Local.
 *  @return 1 stepped past, 0 not one of these */
int skip_open_option(int argc, char **argv, int *i);
/**
 * Consume argv[*i] (and its value) when it is one of the LOD query options: --lod L
 * (0..62) or --threshold T (0..1). Local.
 * @return 1 consumed, 0 not one of these, -1 bad value (usage printed on rank 0)
 */
int parse_lod_option(const job *j, const char *usage, int argc, char **argv, int *i, int64_t *level,
                     double *threshold);

/** Parses a job's own options into args: JOB_OK or the usage error job_usage printed. */
typedef int (*job_parser)(const job *j, int argc, char **argv, void *args);
/**
 * A job's command line: argv[1] is the world's path (else the usage error "missing
 * WORLD"), parse reads the job's options into args, job_options the open options into
 * opt. Local.
 * @return JOB_OK, or the usage error printed
 */
int job_parse(const job *j, const char *usage, int argc, char **argv, job_parser parse, void *args,
              strata_options *opt);
/** job_parse, then the world argv[1] opened with mode. Collective.
 *  @return JOB_OK with *w open, else the job's exit code (nothing open) */
int job_parse_open(const job *j, const char *usage, int argc, char **argv, job_parser parse,
                   void *args, int mode, strata_world **w);

/** Open options from common flags (--cache-mb, --defer-index). Removes nothing. Local;
 *  a usage error (printed on rank 0) when --cache-mb is not a whole number of MiB >= 1. */
int job_options(const job *j, const char *usage, int argc, char **argv, strata_options *opt);
/** Open the world at path with the options of argv (job_options), reporting a usage
 *  error or the library's failure. Collective.
 *  @return JOB_OK with *w open, else the job's exit code (nothing open) */
int job_open(const job *j, const char *usage, int argc, char **argv, const char *path, int mode,
             strata_world **w);

/** Read a whole file into memory on the calling rank (malloc'ed). */
int read_file(const char *path, char **data, size_t *length, char *error, size_t error_size);
/** Read this rank's slice [begin, end) of a file. */
int read_file_range(const char *path, uint64_t begin, uint64_t end, char **data, char *error,
                    size_t error_size);

/** A small CSV file's limits: fields a line, and bytes a field (a material's name). */
enum { CSV_FIELDS_MAX = 7, CSV_FIELD_SIZE = STRATA_MATERIAL_NAME_MAX + 1 };
/** One line of a CSV file, as csv_read passes it. */
typedef struct {
    const char *path;
    size_t line; /* numbered from 1 */
    int first;   /* the first line with content: a header, if the file has one */
    int count;   /* fields; CSV_FIELDS_MAX + 1 when the line has more */
    char field[CSV_FIELDS_MAX][CSV_FIELD_SIZE];
} csv_row;
/** What csv_read calls for each line: 0, or -1 having written error (stops the read). */
typedef int (*csv_row_reader)(void *context, const csv_row *row, char *error, size_t error_size);
/**
 * Read a small CSV file on the calling rank: a UTF-8 byte order mark, blank lines and
 * '#' comment lines are skipped, fields are trimmed and may be quoted ("a, b"; "" for
 * a quote); row is called for every other line in order. Local.
 * @return 0, or -1 with error set ("PATH line N: ..." for a malformed line)
 */
int csv_read(const char *path, csv_row_reader row, void *context, char *error, size_t error_size);
/** Parse a materials CSV (id,name,r,g,b). *out malloc'ed. */
int read_materials_csv(const char *path, strata_material **out, size_t *count, char *error,
                       size_t error_size);
/** Agree on a file every rank read (failed: this rank's read failed, with message):
 *  JOB_OK, or JOB_FAILED with one message on rank 0 (its own, or "PATH is unreadable on
 *  another rank"). Collective. */
int job_agree_read(const job *j, int failed, const char *message, const char *path);
/** read_materials_csv of path (nothing when NULL) on every rank into cfg (cfg->materials
 *  is *table, which the caller frees after the call that uses cfg); one message when any
 *  rank fails. Collective.
 *  @return JOB_OK, or JOB_FAILED (*table NULL) */
int job_read_materials(const job *j, const char *path, strata_config *cfg, strata_material **table);

/** Agree on a job-level outcome: the worst rc of all ranks. Collective. */
int job_agree(int rc);
/** Agree on a local failure (failed: this rank's, with message): JOB_OK when no rank
 *  failed, else JOB_FAILED with the lowest failing rank's message printed once by rank 0.
 *  Collective. */
int job_agree_message(const job *j, int failed, const char *message);
/**
 * Read this rank's contiguous slice of an update file (text or binary, detected
 * by its magic) so that (rank, order) is file order. Collective: parse errors on
 * any rank fail every rank; the message (with line or record) is printed once.
 * dims (the world's) make a coordinate outside the world such an error too.
 */
int load_update_slice(const job *j, const char *path, const int64_t dims[3], strata_update **out,
                      size_t *n);
/** Same for a point file ("x y z" per line). Collective. */
int load_point_slice(const job *j, const char *path, const int64_t dims[3], int64_t (**out)[3],
                     size_t *n);
/** `--units m|voxel` anywhere in argv: *metres 1 for world metres (through the voxel size
 *  and origin). Local; usage error on a bad value. */
int job_units(const job *j, const char *usage, int argc, char **argv, int *metres);
/** World metres to continuous voxel coordinates. Local. */
void job_metres_to_voxels(const strata_world *w, const double m[3], double v[3]);
/** A position in metres to the voxel holding it (floor). Local. */
int job_metres_point(const job *j, const strata_world *w, const double m[3], int64_t out[3]);
/** A box in metres (x0,y0,z0,x1,y1,z1) to the voxel box it touches: [floor, ceil). Local. */
int job_box_metres(const job *j, const char *usage, const strata_world *w, const double m[6],
                   int64_t box[6]);
/** A --box option: voxel coordinates, or metres (`metres`, set by job_units) converted
 *  once the world is open. */
typedef struct {
    int64_t box[6];
    double metric[6];
    int metres, given;
} box_arg;
/** Parse a --box value into b (integers, or numbers in metres). Local. */
int box_arg_parse(const job *j, const char *usage, const char *value, box_arg *b);
/** The voxel box of b (converting metres through the world's voxel size and origin). Local. */
int box_arg_resolve(const job *j, const char *usage, const strata_world *w, box_arg *b);
/**
 * A box query's arguments and world: WORLD --box ... (required), with level non-NULL
 * also --lod L (required) and --threshold T (parse_lod_option), and the open options
 * (skip_open_option); then job_open of WORLD for reading and box_arg_resolve.
 * Collective.
 * @return JOB_OK with *w open, else the job's exit code (nothing open, *w NULL)
 */
int job_box_query(const job *j, const char *usage, int argc, char **argv, box_arg *box,
                  int64_t *level, double *threshold, strata_world **w);
/** load_point_slice for a file of x y z positions in metres (floating point). Collective. */
int load_position_slice(const job *j, const char *path, const strata_world *w, int64_t (**out)[3],
                        size_t *n);
/** Every rank's points inside the world, else the first outside one (numbered from 1
 *  in the file `path`, not in the rank's slice; path NULL: a point given on the
 *  command line) is reported once. Collective. */
int check_points_inside(const job *j, const strata_world *w, const char *path,
                        const int64_t (*points)[3], size_t n);

#endif
