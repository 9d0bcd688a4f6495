/* job_extract.c: `strata extract WORLD --box ... [--lod L] -o OUT.h5 [--png OUT.png ...]`. */
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "extract.h"
#include "jobs.h"
#include "png.h"

static const char usage[] =
    "strata extract WORLD --box x0,y0,z0,x1,y1,z1 [--lod L] -o OUT.h5 [--units m]\n"
    "                     [--png OUT.png [--axis x|y|z] [--at K]] [--round-bytes B] [--cache-mb "
    "M]\n"
    "                     [--quiet]\n"
    "  Writes OUT.h5 (/material, uint16 [z][y][x]; /materials names every id in it) and\n"
    "  OUT.xmf for ParaView; OUT.h5 and OUT.png must lie outside WORLD. The box is\n"
    "  half-open and clipped to the world (nothing left is an error). The PNG is a slice\n"
    "  across --axis (default z) at voxel coordinate K (default: the middle of the box).\n"
    "  --round-bytes bounds the output bytes one collective round holds over all ranks\n"
    "  (default min(ranks x 128 MiB, 1 GiB)). With --units m the box is in world metres\n"
    "  (the voxels it touches); --at stays a voxel coordinate.";

typedef struct {
    const char *world, *out, *png;
    int64_t box[6];
    double metric_box[6];
    int have_box, level, axis, metres; /* axis 0 x, 1 y, 2 z */
    int64_t at;
    int have_at;
    uint64_t round_bytes;
} extract_args;

static int parse_args(const job *j, int argc, char **argv, extract_args *a)
{
    memset(a, 0, sizeof *a);
    a->axis = 2;
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    a->world = argv[1];
    const char *v;
    int rc = job_units(j, usage, argc, argv, &a->metres);
    if (rc)
        return rc;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--box", &v)) {
            if (!v || (a->metres ? parse_double_list(v, a->metric_box, 6)
                                 : parse_int64_list(v, a->box, 6)))
                return job_usage(j, usage, "--box wants x0,y0,z0,x1,y1,z1 (%s)",
                                 a->metres ? "metres" : "integers");
            a->have_box = 1;
        } else if (skip_open_option(argc, argv, &i)) {
        } else if (option_value(argc, argv, &i, "--lod", &v)) {
            int64_t level;
            if (!v || parse_int64(v, &level) || level < 0 || level > 40)
                return job_usage(j, usage, "--lod wants a level in 0..40");
            a->level = (int)level;
        } else if (option_value(argc, argv, &i, "-o", &v) ||
                   option_value(argc, argv, &i, "--output", &v)) {
            if (!v || !*v)
                return job_usage(j, usage, "-o wants OUT.h5");
            a->out = v;
        } else if (option_value(argc, argv, &i, "--png", &v)) {
            if (!v || !*v)
                return job_usage(j, usage, "--png wants OUT.png");
            a->png = v;
        } else if (option_value(argc, argv, &i, "--axis", &v)) {
            if (!v || strlen(v) != 1 || v[0] < 'x' || v[0] > 'z')
                return job_usage(j, usage, "--axis wants x, y or z");
            a->axis = v[0] - 'x';
        } else if (option_value(argc, argv, &i, "--at", &v)) {
            if (!v || parse_int64(v, &a->at))
                return job_usage(j, usage, "--at wants an integer voxel coordinate");
            a->have_at = 1;
        } else if (option_value(argc, argv, &i, "--round-bytes", &v)) {
            if (!v || parse_uint64(v, &a->round_bytes) || !a->round_bytes)
                return job_usage(j, usage, "--round-bytes wants a positive byte count");
        } else {
            return job_usage(j, usage, "unexpected argument %s", argv[i]);
        }
    }
    if (!a->have_box)
        return job_usage(j, usage, "--box is required");
    if (!a->out)
        return job_usage(j, usage, "-o OUT.h5 is required");
    if (!a->png && (a->have_at || a->axis != 2))
        return job_usage(j, usage, "--axis and --at need --png");
    return JOB_OK;
}

static void report_progress(uint64_t done, uint64_t total, void *ctx)
{
    progress *p = ctx;
    p->total = total;
    progress_update(p, done);
}

/* The slice's index along the axis, in output cells (box clipped, level applied). */
static int slice_index(const job *j, const extract_args *a, const strata_extract_stats *s,
                       int64_t *index)
{
    int axis = a->axis;
    int64_t first = s->box[axis] >> a->level;
    if (!a->have_at) {
        *index = s->cells[axis] / 2;
        return JOB_OK;
    }
    if (a->at < s->box[axis] || a->at >= s->box[axis + 3]) {
        job_error(
            j, "--at %" PRId64 " is outside the extracted box along %c: [%" PRId64 ", %" PRId64 ")",
            a->at, 'x' + axis, s->box[axis], s->box[axis + 3]);
        return JOB_FAILED;
    }
    *index = (a->at >> a->level) - first;
    return JOB_OK;
}

/* Rank 0 reads the slice back from the finished file and draws it. */
static int write_png(const job *j, const extract_args *a, const strata_extract_stats *s,
                     const strata_world *w)
{
    int64_t index;
    if (slice_index(j, a, s, &index))
        return JOB_FAILED;
    /* Image axes: z-slices show x right, y up; x- and y-slices show z up. */
    int axis = a->axis;
    int64_t width = axis == 0 ? s->cells[1] : s->cells[0];
    int64_t height = axis == 2 ? s->cells[1] : s->cells[2];
    hsize_t start[3] = {0, 0, 0},
            count[3] = {(hsize_t)s->cells[2], (hsize_t)s->cells[1], (hsize_t)s->cells[0]};
    start[2 - axis] = (hsize_t)index;
    count[2 - axis] = 1;
    uint16_t *cells = malloc((size_t)(width * height) * sizeof *cells);
    hid_t file = cells ? H5Fopen(a->out, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    hid_t dataset = file < 0 ? -1 : H5Dopen2(file, "material", H5P_DEFAULT);
    hid_t space = dataset < 0 ? -1 : H5Dget_space(dataset);
    hid_t memory = space < 0 ? -1 : H5Screate_simple(3, count, NULL);
    int rc = memory < 0 ||
                     H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                     H5Dread(dataset, H5T_NATIVE_UINT16, memory, space, H5P_DEFAULT, cells) < 0
                 ? JOB_FAILED
                 : JOB_OK;
    if (rc)
        job_error(j, "cannot read the slice back from %s", a->out);
    if (memory >= 0)
        H5Sclose(memory);
    if (space >= 0)
        H5Sclose(space);
    if (dataset >= 0)
        H5Dclose(dataset);
    if (file >= 0)
        H5Fclose(file);
    /* The frame: title and metres along the image's axes. */
    strata_config cfg;
    strata_world_config(w, &cfg);
    const int right = axis == 0 ? 1 : 0, up = axis == 2 ? 1 : 2;
    const double cell = (double)((int64_t)1 << a->level);
    const int64_t voxel = ((s->box[axis] >> a->level) + index) << a->level;
    const char *name = strrchr(a->world, '/');
    name = name && name[1] ? name + 1 : a->world;
    char title[256];
    double metres = cfg.origin[axis] + (double)voxel * cfg.voxel_size[axis];
    snprintf(title, sizeof title, "%s: %c = %" PRId64 " voxels (%.*f %s), LOD %d", name, 'x' + axis,
             voxel, fabs(metres) >= 10000 ? 1 : 0, fabs(metres) >= 10000 ? metres / 1000 : metres,
             fabs(metres) >= 10000 ? "km" : "m", a->level);
    png_frame frame = {title,
                       cfg.origin[right] + (double)((s->box[right] >> a->level) << a->level) *
                                               cfg.voxel_size[right],
                       cfg.voxel_size[right] * cell,
                       cfg.origin[up] +
                           (double)((s->box[up] >> a->level) << a->level) * cfg.voxel_size[up],
                       cfg.voxel_size[up] * cell,
                       (char)('x' + right),
                       (char)('x' + up)};
    char error[STRATA_ERROR_MAX];
    if (!rc && png_write_slice(a->png, cells, width, height, &frame, w, error, sizeof error)) {
        job_error(j, "%s", error);
        rc = JOB_FAILED;
    }
    free(cells);
    return rc;
}

/* strata_extract refuses an OUT.h5 inside the world; the PNG is this job's own
 * output, refused the same way before anything is written. Collective. */
static int check_png_path(const job *j, const extract_args *a)
{
    if (!a->png)
        return JOB_OK;
    strata_error err;
    error_clear(&err);
    strata_status st = extract_check_output_path(a->world, a->png, &err);
    st = error_agree(MPI_COMM_WORLD, st, &err);
    return st ? job_fail(j, st, NULL) : JOB_OK;
}

int job_extract(job *j, int argc, char **argv)
{
    extract_args a;
    int rc = parse_args(j, argc, argv, &a);
    if (rc)
        return rc;
    strata_world *w;
    int open_rc = job_open(j, usage, argc, argv, a.world, STRATA_READ, &w);
    if (open_rc)
        return open_rc;
    strata_status st = STRATA_OK;
    if (a.metres)
        rc = job_box_metres(j, usage, w, a.metric_box, a.box);
    if (!rc)
        rc = check_png_path(j, &a);
    if (rc) {
        strata_world_close(w);
        return rc;
    }
    progress p;
    progress_start(&p, j, "cells", 0);
    strata_extract_options eo;
    strata_extract_options_init(&eo);
    eo.progress = report_progress;
    eo.progress_ctx = &p;
    eo.round_bytes = a.round_bytes;
    strata_extract_stats s;
    st = strata_extract(w, a.box, a.level, a.out, &eo, &s);
    if (st) {
        rc = job_fail(j, st, w);
    } else {
        progress_finish(&p);
        if (a.png && j->rank == 0)
            rc = write_png(j, &a, &s, w);
        rc = job_agree(rc);
    }
    strata_world_close(w);
    if (rc)
        return rc;
    double mb = (double)s.bytes / 1e6;
    job_summary(
        j,
        "%s: box %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
        " at LOD %d -> %s (%" PRId64 " x %" PRId64 " x %" PRId64 " cells, %.3f MB) in %.3f s: "
        "%.1f MB/s, %.1f MB/s per rank; %" PRIu64 " chunks decoded, %" PRIu64 " rounds; "
        "read %.3f s, exchange %.3f s, write %.3f s",
        a.world, s.box[0], s.box[1], s.box[2], s.box[3], s.box[4], s.box[5], a.level, a.out,
        s.cells[0], s.cells[1], s.cells[2], mb, s.seconds, mb / s.seconds, mb / s.seconds / j->size,
        s.chunks_read, s.rounds, s.read_seconds, s.exchange_seconds, s.write_seconds);
    return JOB_OK;
}
