/* bench_suite.c: the run of the suite, the machine description and the JSON results of `strata
 * bench`. */
#include "bench_suite.h"

#include <hdf5.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zstd.h>

#include "fsutil.h"

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_field(FILE *f, const char *name, const char *value, int last)
{
    fprintf(f, "\"%s\": ", name);
    json_string(f, value);
    fputs(last ? "" : ", ", f);
}

/* A finite number, or null (JSON has no inf/nan). */
static void json_number(FILE *f, double v)
{
    if (v != v || v > 1e300 || v < -1e300)
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

static void write_row(FILE *f, const bench_row *r, const char *command)
{
    fputs("    {", f);
    json_field(f, "id", r->id, 0);
    json_field(f, "group", r->group, 0);
    json_field(f, "peer", r->peer, 0);
    json_field(f, "what", r->what, 0);
    json_field(f, "volume", r->volume, 0);
    json_field(f, "pattern", r->pattern, 0);
    fprintf(f, "\"ranks\": %d, \"durable\": %s, ", r->ranks, r->durable ? "true" : "false");
    fputs("\"value\": ", f);
    json_number(f, r->value);
    fputs(", ", f);
    json_field(f, "unit", r->unit, 0);
    fprintf(f, "\"better\": \"%s\", ", r->better == BENCH_HIGHER_IS_BETTER ? "higher" : "lower");
    fprintf(f, "\"count\": %" PRIu64 ", \"best_of\": %d, \"samples\": [", r->count,
            r->sample_count);
    for (int i = 0; i < r->sample_count; i++) {
        json_number(f, r->samples[i]);
        fputs(i + 1 < r->sample_count ? ", " : "", f);
    }
    fputs("], \"compare\": [", f);
    int first = 1;
    for (int i = 0; i < 3; i++)
        if (r->compare[i][0]) {
            fputs(first ? "" : ", ", f);
            json_string(f, r->compare[i]);
            first = 0;
        }
    fputs("], ", f);
    json_field(f, "target", r->target, 0);
    json_field(f, "limit", r->limit, 0);
    json_field(f, "command", command, 1);
    fputs("}", f);
}

/* First line of a file that starts with key (e.g. "model name"), value after ':'. */
static void proc_value(const char *path, const char *key, char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) != 0)
            continue;
        const char *v = strchr(line, ':');
        v = v ? v + 1 : line + strlen(key);
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(out, size, "%s", v);
        out[strcspn(out, "\n")] = 0;
        break;
    }
    fclose(f);
}

static void write_machine(FILE *f, const bench *b)
{
    char cpu[256], memory[64], load[128], mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    proc_value("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    proc_value("/proc/meminfo", "MemTotal", memory, sizeof memory);
    FILE *lf = fopen("/proc/loadavg", "r");
    snprintf(load, sizeof load, "unknown");
    if (lf) {
        if (fgets(load, sizeof load, lf))
            load[strcspn(load, "\n")] = 0;
        fclose(lf);
    }
    int mpi_length = 0;
    MPI_Get_library_version(mpi, &mpi_length);
    mpi[strcspn(mpi, "\n,")] = 0;
    struct utsname u;
    char kernel[512] = "unknown", hdf5[64], host_compiler[128];
    if (uname(&u) == 0)
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(hdf5, sizeof hdf5, "%u.%u.%u", maj, min, rel);
#ifdef __VERSION__
    snprintf(host_compiler, sizeof host_compiler, "gcc %s", __VERSION__);
#else
    snprintf(host_compiler, sizeof host_compiler, "unknown");
#endif
    char strata_version[32];
    snprintf(strata_version, sizeof strata_version, "%d.%d (format %d)", STRATA_VERSION_MAJOR,
             STRATA_VERSION_MINOR, STRATA_FORMAT_VERSION);
    fputs("  \"machine\": {", f);
    json_field(f, "cpu", cpu, 0);
    fprintf(f, "\"cores\": %ld, ", sysconf(_SC_NPROCESSORS_ONLN));
    json_field(f, "memory", memory, 0);
    json_field(f, "kernel", kernel, 0);
    json_field(f, "compiler", host_compiler, 0);
    json_field(f, "mpi", mpi, 0);
    json_field(f, "hdf5", hdf5, 0);
    json_field(f, "zstd", ZSTD_versionString(), 0);
    json_field(f, "strata", strata_version, 0);
    json_field(f, "load_average_at_start", load, 1);
    fprintf(f, "},\n");
    (void)b;
}

static strata_status write_results(const bench *b, const char *path, strata_error *err)
{
    char tmp[STRATA_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return error_set(err, STRATA_ERR_IO, "cannot write %s", tmp);
    fputs("{\n  \"suite\": \"strata bench\",\n", f);
    fprintf(f, "  \"quick\": %s,\n  \"ranks\": %d,\n", b->quick ? "true" : "false", b->size);
    fputs("  \"command\": ", f);
    json_string(f, b->command);
    fputs(",\n", f);
    write_machine(f, b);
    fputs("  \"rows\": [\n", f);
    for (size_t i = 0; i < b->row_count; i++) {
        write_row(f, &b->rows[i], b->command);
        fputs(i + 1 < b->row_count ? ",\n" : "\n", f);
    }
    fputs("  ]\n}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return error_set(err, STRATA_ERR_IO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return error_set(err, STRATA_ERR_IO, "cannot rename %s to %s", tmp, path);
    }
    return STRATA_OK;
}

strata_status bench_run(bench *b, const char *out_path)
{
    char world[STRATA_PATH_MAX];
    strata_status st = path_join(world, sizeof world, b->dir, "terrain", &b->error);
    st = error_agree(b->comm, st, &b->error);
    if (!st)
        st = bench_strata(b);
    if (!st && (bench_wants(b, "hdf5") || bench_wants(b, "box") || bench_wants(b, "checkpoint")))
        st = bench_hdf5_peer(b, world);
    if (!st && bench_wants(b, "volumes"))
        st = bench_volumes(b);
    st = error_agree(b->comm, st, &b->error);
    if (!st) {
        strata_status local = STRATA_OK;
        if (b->rank == 0 && out_path)
            local = write_results(b, out_path, &b->error);
        st = error_agree(b->comm, local, &b->error);
    }
    return st;
}
