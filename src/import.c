/* import.c: worlds from real data: a 2-D elevation grid (netCDF) voxelized into
 * layered columns, and raw label volumes stored voxel for voxel.
 *
 * Both imports check their input first (every rank a 1/size slice of it), then
 * create the world, fill it with strata_fill (every rank only its own chunks,
 * reading only the part of the input those chunks cover) and commit. Bad input is
 * found before anything is created; a failure after creation abandons the new
 * directory, so an import either makes the whole world or nothing.
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef STRATA_HAVE_NETCDF
#include <netcdf.h>
#endif

#include "alloc.h"
#include "world.h"

/* Elements (DEM cells or raw values) read per block while checking the input. */
#define IMPORT_SCAN_BLOCK ((size_t)1 << 20)

/* ---- layers ---------------------------------------------------------------------- */

/* Thicknesses suit the 50-100 m voxels a 5' grid calls for; the surface voxel of a
 * column is always the surface layer whatever its thickness (docs/import.md). */
static const strata_layer default_layers[] = {
    {"soil", 200, 2, {105, 80, 45}, STRATA_ZONE_LAND},
    {"sand", 200, 3, {225, 205, 140}, STRATA_ZONE_COAST},
    {"sediment", 400, 4, {140, 125, 100}, STRATA_ZONE_SEA},
    {"sandstone", 800, 5, {200, 155, 105}, STRATA_ZONE_ANY},
    {"limestone", 1200, 6, {195, 190, 165}, STRATA_ZONE_ANY},
    {"shale", 1500, 7, {95, 95, 105}, STRATA_ZONE_ANY},
    {"granite", 3000, 8, {160, 145, 145}, STRATA_ZONE_ANY},
    {"basalt", 4000, 9, {60, 60, 68}, STRATA_ZONE_ANY},
    {"bedrock", 0, 13, {45, 38, 38}, STRATA_ZONE_ANY},
};

void strata_import_default_layers(const strata_layer **layers, size_t *count)
{
    if (layers)
        *layers = default_layers;
    if (count)
        *count = sizeof default_layers / sizeof default_layers[0];
}

void strata_dem_options_init(strata_dem_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->scale = 1.0;
    opt->vertical_res = 100.0;
    opt->coast_height = 20.0;
}

void import_metres_per_degree(double lat_deg, double *lon_m, double *lat_m)
{
    const double rad = M_PI / 180.0, s = sin(lat_deg * rad);
    const double w = 1.0 - IMPORT_WGS84_E2 * s * s;
    *lon_m = rad * IMPORT_WGS84_A * cos(lat_deg * rad) / sqrt(w);
    *lat_m = rad * IMPORT_WGS84_A * (1.0 - IMPORT_WGS84_E2) / (w * sqrt(w));
}

uint16_t import_layer_material(const strata_layer *layers, size_t count, int zone, double depth)
{
    double bottom = 0;
    uint16_t last = 0;
    for (size_t i = 0; i < count; i++) {
        if (layers[i].zone != STRATA_ZONE_ANY && layers[i].zone != zone)
            continue;
        last = layers[i].material;
        if (layers[i].thickness <= 0)
            return last;
        bottom += layers[i].thickness;
        if (depth < bottom)
            return last;
    }
    return last;
}

/* ---- world lifetime shared by both imports --------------------------------------- */

typedef strata_status (*import_fill_step)(strata_world *w, void *ctx);

/* Create, fill by step, commit; on any failure abandon the world. Collective. */
/* What each import starts with: no world yet, no error, and statistics zeroed (in
 * *local when the caller wants none) but for seconds, the start time until import_end.
 * Returns the statistics to fill. */
static strata_import_stats *import_start(strata_import_stats *stats, strata_import_stats *local,
                                         strata_world **out, strata_error *err)
{
    stats = stats ? stats : local;
    memset(stats, 0, sizeof *stats);
    stats->seconds = MPI_Wtime();
    if (out)
        *out = NULL;
    error_clear(err);
    return stats;
}

/* The import's last step: seconds becomes its duration. Returns st. */
static strata_status import_end(strata_import_stats *stats, strata_status st)
{
    stats->seconds = MPI_Wtime() - stats->seconds;
    return st;
}

static strata_status build_world(MPI_Comm comm, const char *path, const strata_config *cfg,
                                 const strata_options *opt, unsigned flags, import_fill_step step,
                                 void *ctx, strata_import_stats *stats, strata_world **out)
{
    strata_world *w;
    strata_status st = strata_world_create(comm, path, cfg, opt, flags, &w);
    if (st)
        return st;
    st = step(w, ctx);
    if (!st)
        st = strata_commit(w, &stats->commit);
    if (st)
        return strata_world_abandon(w, st);
    if (out) {
        *out = w;
        return STRATA_OK;
    }
    return strata_world_close(w);
}

static void stats_world(strata_import_stats *stats, const strata_config *cfg)
{
    for (int i = 0; i < 3; i++) {
        stats->dims[i] = cfg->dims[i];
        stats->voxel_size[i] = cfg->voxel_size[i];
        stats->origin[i] = cfg->origin[i];
    }
}

/* ---- raw volumes ------------------------------------------------------------------ */

typedef struct {
    const strata_raw_options *raw;
    const char *file;
    int fd;
    int bytes;           /* per element */
    uint8_t *row;        /* a chunk's rows of one z plane, or one row */
    size_t row_capacity; /* elements in row */
} raw_import;

static int raw_element_bytes(int type)
{
    return type == STRATA_RAW_UINT8                                ? 1
           : type == STRATA_RAW_UINT16 || type == STRATA_RAW_INT16 ? 2
                                                                   : 0;
}

/* Element i of a buffer as a signed value (int16 may be negative). */
static int32_t raw_value(const raw_import *r, const uint8_t *p, size_t i)
{
    if (r->bytes == 1)
        return p[i];
    const uint8_t *e = p + 2 * i;
    uint16_t u = r->raw->endian == STRATA_ENDIAN_BIG ? (uint16_t)(e[0] << 8 | e[1])
                                                     : (uint16_t)(e[1] << 8 | e[0]);
    return r->raw->type == STRATA_RAW_INT16 ? (int32_t)(int16_t)u : (int32_t)u;
}

/* pread exactly n bytes at offset. */
static strata_status read_at(int fd, const char *file, uint8_t *buf, size_t n, uint64_t offset,
                             char *message)
{
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, buf + done, n - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            snprintf(message, STRATA_ERROR_MAX, "reading %zu bytes of %s at byte %" PRIu64 ": %s",
                     n, file, offset + done, got < 0 ? strerror(errno) : "unexpected end of file");
            return STRATA_ERR_IO;
        }
        done += (size_t)got;
    }
    return STRATA_OK;
}

/* Check this rank's slice of the volume for negative values; the lowest index
 * found wins across ranks because slices are in rank order. */
static strata_status raw_scan(raw_import *r, int rank, int size, strata_error *err)
{
    if (r->raw->type != STRATA_RAW_INT16)
        return STRATA_OK;
    const int64_t *d = r->raw->dims;
    uint64_t n = (uint64_t)d[0] * (uint64_t)d[1] * (uint64_t)d[2];
    uint64_t begin = n / (uint64_t)size * (uint64_t)rank +
                     (n % (uint64_t)size < (uint64_t)rank ? n % (uint64_t)size : (uint64_t)rank);
    uint64_t end = begin + n / (uint64_t)size + ((uint64_t)rank < n % (uint64_t)size);
    uint8_t *buf = strata_malloc(IMPORT_SCAN_BLOCK * 2);
    if (!buf)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a scan buffer");
    strata_status st = STRATA_OK;
    for (uint64_t at = begin; at < end && !st; at += IMPORT_SCAN_BLOCK) {
        size_t count = end - at < IMPORT_SCAN_BLOCK ? (size_t)(end - at) : IMPORT_SCAN_BLOCK;
        char message[STRATA_ERROR_MAX];
        st = read_at(r->fd, r->file, buf, count * 2, at * 2, message);
        if (st) {
            error_set(err, st, "%s", message);
            break;
        }
        for (size_t i = 0; i < count; i++) {
            int32_t v = raw_value(r, buf, i);
            if (v < 0) {
                uint64_t index = at + i, x = index % (uint64_t)d[0];
                uint64_t y = index / (uint64_t)d[0] % (uint64_t)d[1],
                         z = index / ((uint64_t)d[0] * (uint64_t)d[1]);
                st = error_set(err, STRATA_ERR_PARSE,
                               "%s: element %" PRIu64 " (x,y,z = %" PRIu64 ",%" PRIu64 ",%" PRIu64
                               ") is %" PRId32 ": material ids cannot be negative",
                               r->file, index, x, y, z, v);
                break;
            }
        }
    }
    free(buf);
    return st;
}

/* Decode one row of width elements into out, refusing negative values. */
static strata_status raw_decode_row(const raw_import *r, const uint8_t *p, size_t width,
                                    uint64_t index, const int64_t at[3], uint16_t *out,
                                    char *message)
{
    for (size_t x = 0; x < width; x++) {
        int32_t v = raw_value(r, p, x);
        if (v < 0) { /* changed since the scan */
            snprintf(message, STRATA_ERROR_MAX,
                     "%s: element %" PRIu64 " (x,y,z = %" PRId64 ",%" PRId64 ",%" PRId64
                     ") is negative",
                     r->file, index + x, at[0] + (int64_t)x, at[1], at[2]);
            return STRATA_ERR_PARSE; /* a bad record, not a coordinate outside the world */
        }
        out[x] = (uint16_t)v;
    }
    return STRATA_OK;
}

/* strata_fill callback: one chunk, one read per z plane (the chunk's rows and
 * what lies between them), or per row when that span would be too large. */
static strata_status raw_chunk(const int64_t b[6], int edge, uint16_t *voxels, void *ctx,
                               char *message)
{
    raw_import *r = ctx;
    const int64_t *d = r->raw->dims;
    const size_t width = (size_t)(b[3] - b[0]), rows = (size_t)(b[4] - b[1]);
    const size_t span = (rows - 1) * (size_t)d[0] + width;
    const int whole_plane = span <= r->row_capacity;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++) {
            uint64_t index =
                ((uint64_t)z * (uint64_t)d[1] + (uint64_t)y) * (uint64_t)d[0] + (uint64_t)b[0];
            strata_status st = STRATA_OK;
            const uint8_t *p = r->row;
            if (!whole_plane)
                st = read_at(r->fd, r->file, r->row, width * (size_t)r->bytes,
                             index * (uint64_t)r->bytes, message);
            else if (y == b[1])
                st = read_at(r->fd, r->file, r->row, span * (size_t)r->bytes,
                             index * (uint64_t)r->bytes, message);
            if (whole_plane)
                p += (size_t)(y - b[1]) * (size_t)d[0] * (size_t)r->bytes;
            uint16_t *out =
                voxels + ((size_t)(z - b[2]) * (size_t)edge + (size_t)(y - b[1])) * (size_t)edge;
            const int64_t at[3] = {b[0], y, z};
            if (!st)
                st = raw_decode_row(r, p, width, index, at, out, message);
            if (st)
                return st;
        }
    return STRATA_OK;
}

static strata_status raw_fill(strata_world *w, void *ctx)
{
    return strata_fill(w, NULL, raw_chunk, ctx);
}

static strata_status raw_check(const char *file, const strata_raw_options *raw, raw_import *r,
                               strata_error *err)
{
    if (!file || !raw)
        return error_set(err, STRATA_ERR_ARG, "strata_import_raw: NULL argument");
    r->bytes = raw_element_bytes(raw->type);
    if (!r->bytes)
        return error_set(err, STRATA_ERR_ARG, "raw element type %d: want uint8, uint16 or int16",
                         raw->type);
    if (raw->endian != STRATA_ENDIAN_LITTLE && raw->endian != STRATA_ENDIAN_BIG)
        return error_set(err, STRATA_ERR_ARG, "raw byte order %d: want little or big", raw->endian);
    uint64_t n = (uint64_t)r->bytes;
    for (int i = 0; i < 3; i++) {
        if (raw->dims[i] <= 0)
            return error_set(err, STRATA_ERR_ARG,
                             "raw dimension %c is %" PRId64 ": must be positive", "xyz"[i],
                             raw -> dims[i]);
        if (n > UINT64_MAX / (uint64_t)raw->dims[i])
            return error_set(err, STRATA_ERR_OVERFLOW, "raw dims overflow 64 bits");
        n *= (uint64_t)raw->dims[i];
    }
    uint64_t size;
    strata_status st = file_size(file, &size, err);
    if (st)
        return st;
    struct stat info;
    if (stat(file, &info) == 0 && !S_ISREG(info.st_mode))
        return error_set(err, STRATA_ERR_ARG, "%s is not a regular file (a raw volume is one)",
                         file);
    if (size != n)
        return error_set(err, STRATA_ERR_FORMAT,
                         "%s has %" PRIu64 " bytes, but --dims %" PRId64 ",%" PRId64 ",%" PRId64
                         " of %d-byte elements need %" PRIu64,
                         file, size, raw->dims[0], raw->dims[1], raw->dims[2], r->bytes, n);
    r->fd = open(file, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot open %s: %s", file, strerror(errno));
    return STRATA_OK;
}

strata_status strata_import_raw(MPI_Comm comm, const char *path, const char *raw_file,
                                const strata_raw_options *raw, const strata_config *cfg,
                                const strata_options *opt, unsigned flags,
                                strata_import_stats *stats, strata_world **out)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    strata_import_stats local_stats;
    strata_error err;
    stats = import_start(stats, &local_stats, out, &err);
    raw_import r = {raw, raw_file, -1, 0, NULL, 0};
    strata_status st = cfg ? raw_check(raw_file, raw, &r, &err)
                           : error_set(&err, STRATA_ERR_ARG, "strata_import_raw: NULL config");
    if (!st)
        st = raw_scan(&r, rank, size, &err);
    st = error_agree(comm, st, &err);
    strata_config c;
    if (!st) {
        c = *cfg;
        memcpy(c.dims, raw->dims, sizeof c.dims);
        /* A chunk's z plane spans edge rows of the file; cap the buffer at 8 Mi elements. */
        size_t plane = (size_t)cfg->chunk_edge * (size_t)raw->dims[0];
        r.row_capacity = plane <= ((size_t)8 << 20) ? plane : (size_t)raw->dims[0];
        r.row = strata_malloc(r.row_capacity * (size_t)r.bytes);
        if (!r.row)
            st = error_set(&err, STRATA_ERR_NOMEM, "cannot allocate a row of %" PRId64 " elements",
                           raw->dims[0]);
        st = error_agree(comm, st, &err);
    }
    if (!st) {
        stats_world(stats, &c);
        st = build_world(comm, path, &c, opt, flags, raw_fill, &r, stats, out);
    } else {
        error_publish(&err);
    }
    if (r.fd >= 0)
        close(r.fd);
    free(r.row);
    return import_end(stats, st);
}

/* ---- DEM ------------------------------------------------------------------------ */

#ifndef STRATA_HAVE_NETCDF

strata_status strata_import_dem(MPI_Comm comm, const char *path, const char *dem_file,
                                const strata_dem_options *dem, const strata_config *cfg,
                                const strata_options *opt, unsigned flags,
                                strata_import_stats *stats, strata_world **out)
{
    (void)comm, (void)path, (void)dem, (void)cfg, (void)opt, (void)flags;
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (out)
        *out = NULL;
    return error_set(NULL, STRATA_ERR_ARG,
                     "strata was built without netCDF, so it cannot import %s: install "
                     "libnetcdf-dev (Debian) and rebuild",
                     dem_file ? dem_file : "a DEM");
}

#else

/* An open grid: the variable, its crop and how its rows map to world y. */
typedef struct {
    const char *file;
    int ncid, varid;
    char var_name[NC_MAX_NAME + 1];
    size_t n[2];          /* rows (Y), columns (X) */
    int64_t lo[2], hi[2]; /* crop per axis: [0] rows j, [1] columns i */
    int flip[2];          /* 1 when the axis's coordinate decreases */
    int has_coord[2];
    double coord0[2], step[2]; /* linear model of the coordinate: c(k) = coord0 + k * step */
    char units[2][64];
    int has_fill, has_missing;
    float fill, missing;
    double scale_factor, add_offset, scale;
} dem_grid;

static strata_status nc_fail(strata_error *err, int rc, const char *file, const char *what)
{
    return error_set(err, rc == NC_ENOTNC ? STRATA_ERR_FORMAT : STRATA_ERR_IO, "%s: %s: %s", file,
                     what, nc_strerror(rc));
}

static int numeric_type(nc_type t)
{
    return t == NC_FLOAT || t == NC_DOUBLE || t == NC_BYTE || t == NC_SHORT || t == NC_INT ||
           t == NC_UBYTE || t == NC_USHORT || t == NC_UINT || t == NC_INT64 || t == NC_UINT64;
}

/* The named variable, or the first 2-D float or double one that is not a coordinate. */
static strata_status dem_find_variable(dem_grid *g, const char *name, strata_error *err)
{
    int rc;
    if (name) {
        rc = nc_inq_varid(g->ncid, name, &g->varid);
        if (rc == NC_ENOTVAR)
            return error_set(err, STRATA_ERR_NOT_FOUND, "%s has no variable '%s'", g->file, name);
        if (rc)
            return nc_fail(err, rc, g->file, "looking up the variable");
    } else {
        int count;
        if ((rc = nc_inq_nvars(g->ncid, &count)))
            return nc_fail(err, rc, g->file, "counting variables");
        g->varid = -1;
        for (int v = 0; v < count && g->varid < 0; v++) {
            nc_type t;
            int nd;
            if ((rc = nc_inq_var(g->ncid, v, NULL, &t, &nd, NULL, NULL)))
                return nc_fail(err, rc, g->file, "reading a variable");
            if (nd == 2 && (t == NC_FLOAT || t == NC_DOUBLE))
                g->varid = v;
        }
        if (g->varid < 0)
            return error_set(err, STRATA_ERR_NOT_FOUND,
                             "%s has no 2-D float variable (name one with --var)", g->file);
    }
    nc_type t;
    int nd, dims[NC_MAX_VAR_DIMS];
    if ((rc = nc_inq_var(g->ncid, g->varid, g->var_name, &t, &nd, dims, NULL)))
        return nc_fail(err, rc, g->file, "reading the variable");
    if (nd != 2)
        return error_set(err, STRATA_ERR_FORMAT,
                         "%s: variable '%s' has %d dimensions; an elevation grid has 2 (Y, X)",
                         g->file, g->var_name, nd);
    if (!numeric_type(t))
        return error_set(err, STRATA_ERR_FORMAT, "%s: variable '%s' is not numeric", g->file,
                         g->var_name);
    for (int a = 0; a < 2; a++)
        if ((rc = nc_inq_dimlen(g->ncid, dims[a], &g->n[a])))
            return nc_fail(err, rc, g->file, "reading a dimension");
    if (g->n[0] == 0 || g->n[1] == 0)
        return error_set(err, STRATA_ERR_FORMAT, "%s: variable '%s' is empty", g->file,
                         g->var_name);
    return STRATA_OK;
}

static int get_attribute_double(int ncid, int varid, const char *name, double *out)
{
    nc_type t;
    size_t len;
    if (nc_inq_att(ncid, varid, name, &t, &len) || len != 1 || !numeric_type(t))
        return 0;
    return nc_get_att_double(ncid, varid, name, out) == NC_NOERR;
}

static int get_attribute_float(int ncid, int varid, const char *name, float *out)
{
    nc_type t;
    size_t len;
    if (nc_inq_att(ncid, varid, name, &t, &len) || len != 1 || !numeric_type(t))
        return 0;
    return nc_get_att_float(ncid, varid, name, out) == NC_NOERR;
}

/* Coordinate variable of each axis (a 1-D variable named like the dimension):
 * first value, mean step and units. */
static strata_status dem_coordinates(dem_grid *g, strata_error *err)
{
    int dims[2], rc;
    if ((rc = nc_inq_vardimid(g->ncid, g->varid, dims)))
        return nc_fail(err, rc, g->file, "reading dimensions");
    for (int a = 0; a < 2; a++) {
        char name[NC_MAX_NAME + 1];
        int cv, nd, cd;
        if ((rc = nc_inq_dimname(g->ncid, dims[a], name)))
            return nc_fail(err, rc, g->file, "reading a dimension name");
        if (nc_inq_varid(g->ncid, name, &cv) || nc_inq_varndims(g->ncid, cv, &nd) || nd != 1 ||
            nc_inq_vardimid(g->ncid, cv, &cd) || cd != dims[a])
            continue;
        double first, last;
        size_t i0 = 0, i1 = g->n[a] - 1;
        if (nc_get_var1_double(g->ncid, cv, &i0, &first) ||
            nc_get_var1_double(g->ncid, cv, &i1, &last))
            return error_set(err, STRATA_ERR_FORMAT, "%s: cannot read coordinate variable '%s'",
                             g->file, name);
        nc_type t;
        size_t len;
        g->units[a][0] = '\0';
        if (!nc_inq_att(g->ncid, cv, "units", &t, &len) && t == NC_CHAR &&
            len < sizeof g->units[a]) {
            nc_get_att_text(g->ncid, cv, "units", g->units[a]);
            g->units[a][len] = '\0';
        }
        g->has_coord[a] = 1;
        g->coord0[a] = first;
        g->step[a] = g->n[a] > 1 ? (last - first) / (double)(g->n[a] - 1) : 0;
        g->flip[a] = g->step[a] < 0;
    }
    return STRATA_OK;
}

static strata_status dem_open(dem_grid *g, const char *file, const strata_dem_options *dem,
                              strata_error *err)
{
    g->file = file;
    g->ncid = -1;
    int rc = nc_open(file, NC_NOWRITE, &g->ncid);
    if (rc) {
        g->ncid = -1;
        if (rc == NC_ENOTNC)
            return error_set(err, STRATA_ERR_FORMAT, "%s is not a netCDF file (%s)", file,
                             nc_strerror(rc));
        return error_set(err, rc == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO,
                         "cannot open %s: %s", file, nc_strerror(rc));
    }
    strata_status st = dem_find_variable(g, dem->variable, err);
    if (!st)
        st = dem_coordinates(g, err);
    if (st)
        return st;
    g->has_fill = get_attribute_float(g->ncid, g->varid, "_FillValue", &g->fill);
    g->has_missing = get_attribute_float(g->ncid, g->varid, "missing_value", &g->missing);
    g->scale_factor = 1.0;
    g->add_offset = 0.0;
    get_attribute_double(g->ncid, g->varid, "scale_factor", &g->scale_factor);
    get_attribute_double(g->ncid, g->varid, "add_offset", &g->add_offset);
    g->scale = dem->scale;
    const int64_t *c = dem->crop;
    int whole = !c[0] && !c[1] && !c[2] && !c[3];
    g->lo[1] = whole ? 0 : c[0];
    g->lo[0] = whole ? 0 : c[1];
    g->hi[1] = whole ? (int64_t)g->n[1] : c[2];
    g->hi[0] = whole ? (int64_t)g->n[0] : c[3];
    for (int a = 0; a < 2; a++)
        if (g->lo[a] < 0 || g->lo[a] >= g->hi[a] || g->hi[a] > (int64_t)g->n[a])
            return error_set(
                err, STRATA_ERR_RANGE,
                "crop %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 " does not fit "
                "%s's %zu x %zu grid (i0,j0,i1,j1 half-open, i0 < i1 <= %zu, j0 < j1 <= %zu)",
                c[0], c[1], c[2], c[3], g->var_name, g->n[1], g->n[0], g->n[1], g->n[0]);
    return STRATA_OK;
}

/* Read rows [j, j+nj) x columns [i, i+ni) of the grid as metres, refusing
 * missing and non-finite values. raw is scratch of nj*ni floats. */
static strata_status dem_read_window(const dem_grid *g, int64_t j, int64_t nj, int64_t i,
                                     int64_t ni, float *raw, double *out, char *message)
{
    size_t start[2] = {(size_t)j, (size_t)i}, count[2] = {(size_t)nj, (size_t)ni};
    int rc = nc_get_vara_float(g->ncid, g->varid, start, count, raw);
    if (rc) {
        snprintf(message, STRATA_ERROR_MAX, "%s: reading %s rows %" PRId64 "..%" PRId64 ": %s",
                 g->file, g->var_name, j, j + nj, nc_strerror(rc));
        return STRATA_ERR_IO;
    }
    for (int64_t r = 0; r < nj; r++)
        for (int64_t c = 0; c < ni; c++) {
            float v = raw[r * ni + c];
            if (!isfinite(v) || (g->has_fill && v == g->fill) ||
                (g->has_missing && v == g->missing) || (!g->has_fill && v == NC_FILL_FLOAT)) {
                snprintf(message, STRATA_ERROR_MAX,
                         "%s: %s at grid cell i=%" PRId64 " j=%" PRId64
                         " is missing (%g): every cell of the crop needs an elevation",
                         g->file, g->var_name, i + c, j + r, (double)v);
                return STRATA_ERR_FORMAT;
            }
            out[r * ni + c] = ((double)v * g->scale_factor + g->add_offset) * g->scale;
        }
    return STRATA_OK;
}

/* Rank's share of the crop's rows: check every value and find the extremes. */
static strata_status dem_scan(const dem_grid *g, int rank, int size, double *lo, double *hi,
                              strata_error *err)
{
    int64_t rows = g->hi[0] - g->lo[0], cols = g->hi[1] - g->lo[1];
    int64_t begin = g->lo[0] + rows * rank / size, end = g->lo[0] + rows * (rank + 1) / size;
    int64_t block = (int64_t)IMPORT_SCAN_BLOCK / cols > 0 ? (int64_t)IMPORT_SCAN_BLOCK / cols : 1;
    *lo = INFINITY;
    *hi = -INFINITY;
    size_t cells = (size_t)(block < end - begin ? block : end - begin) * (size_t)cols;
    float *raw = strata_malloc(cells * sizeof *raw + 1);
    double *metres = strata_malloc(cells * sizeof *metres + 1);
    strata_status st = raw && metres
                           ? STRATA_OK
                           : error_set(err, STRATA_ERR_NOMEM, "cannot allocate a scan buffer");
    for (int64_t j = begin; j < end && !st; j += block) {
        int64_t nj = end - j < block ? end - j : block;
        char message[STRATA_ERROR_MAX];
        st = dem_read_window(g, j, nj, g->lo[1], cols, raw, metres, message);
        if (st) {
            error_set(err, st, "%s", message);
            break;
        }
        for (int64_t k = 0; k < nj * cols; k++) {
            *lo = metres[k] < *lo ? metres[k] : *lo;
            *hi = metres[k] > *hi ? metres[k] : *hi;
        }
    }
    free(raw);
    free(metres);
    return st;
}

/* World geometry: dims, voxel size and origin from the crop and the coordinates. */
static strata_status dem_geometry(const dem_grid *g, const strata_dem_options *dem, double lo,
                                  double hi, strata_config *c, strata_import_stats *stats,
                                  strata_error *err)
{
    const double m = dem->vertical_res;
    double zmin, zmax;
    if (dem->has_z_range) {
        zmin = dem->z_range[0];
        zmax = dem->z_range[1];
    } else {
        double top = hi > dem->sea_level ? hi : dem->sea_level;
        zmin = floor(lo / m) * m;
        zmax = ceil(top / m) * m;
        if (zmax <= zmin)
            zmax = zmin + m;
    }
    if (!(zmax > zmin) || !isfinite(zmin) || !isfinite(zmax))
        return error_set(err, STRATA_ERR_ARG, "z range %g..%g m is empty", zmin, zmax);
    double layers = ceil((zmax - zmin) / m - 1e-9);
    if (layers > (double)INT32_MAX)
        return error_set(err, STRATA_ERR_OVERFLOW, "z range %g..%g m at %g m is too many voxels",
                         zmin, zmax, m);
    c->dims[0] = g->hi[1] - g->lo[1];
    c->dims[1] = g->hi[0] - g->lo[0];
    c->dims[2] = (int64_t)layers;
    c->voxel_size[2] = m;
    c->origin[2] = zmin;
    stats->z_range[0] = zmin;
    stats->z_range[1] = zmin + layers * m;
    stats->elevation_min = lo;
    stats->elevation_max = hi;
    /* Edge (west or south) of the crop along each axis, in coordinate units. */
    double edge[2], spacing[2];
    for (int a = 0; a < 2; a++) {
        int64_t first = g->flip[a] ? g->hi[a] - 1 : g->lo[a];
        spacing[a] = fabs(g->step[a]);
        edge[a] = g->coord0[a] + g->step[a] * (double)first - spacing[a] / 2;
    }
    int geographic = g->has_coord[0] && g->has_coord[1] && !strncasecmp(g->units[0], "degree", 6) &&
                     !strncasecmp(g->units[1], "degree", 6);
    int metric = g->has_coord[0] && g->has_coord[1];
    for (int a = 0; a < 2 && metric; a++)
        metric = !strcmp(g->units[a], "m") || !strncasecmp(g->units[a], "metre", 5) ||
                 !strncasecmp(g->units[a], "meter", 5);
    if ((geographic || metric) && (spacing[0] == 0 || spacing[1] == 0))
        return error_set(err, STRATA_ERR_FORMAT,
                         "%s: a coordinate axis of %s has a single value: "
                         "cannot derive the grid spacing",
                         g->file, g->var_name);
    if (geographic) {
        double centre = g->coord0[0] + g->step[0] * (double)(g->lo[0] + g->hi[0] - 1) / 2;
        double lon_m, lat_m;
        import_metres_per_degree(centre, &lon_m, &lat_m);
        c->voxel_size[0] = spacing[1] * lon_m;
        c->voxel_size[1] = spacing[0] * lat_m;
        c->origin[0] = edge[1] * lon_m;
        c->origin[1] = edge[0] * lat_m;
        stats->geographic = 1;
        stats->centre_latitude = centre;
        stats->corner_lon_lat[0] = edge[1];
        stats->corner_lon_lat[1] = edge[0];
    } else if (metric) {
        c->voxel_size[0] = spacing[1];
        c->voxel_size[1] = spacing[0];
        c->origin[0] = edge[1];
        c->origin[1] = edge[0];
    } else {
        c->voxel_size[0] = c->voxel_size[1] = 1.0;
        c->origin[0] = c->origin[1] = 0.0;
    }
    return STRATA_OK;
}

static int find_material(const strata_material *t, size_t n, uint16_t id)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].id == id)
            return 1;
    return 0;
}

/* The world's table: the caller's (or the default) plus every layer material it
 * lacks, with the layer's name and colour. *table is malloc'ed. */
static strata_status dem_materials(const strata_config *cfg, const strata_layer *layers,
                                   size_t count, strata_material **table, size_t *n,
                                   strata_error *err)
{
    const strata_material *base = cfg->materials ? cfg->materials : strata_default_materials;
    size_t base_n = cfg->materials ? cfg->material_count : strata_default_material_count;
    *table = strata_malloc((base_n + count) * sizeof **table);
    if (!*table)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate the material table");
    memcpy(*table, base, base_n * sizeof *base);
    *n = base_n;
    for (size_t i = 0; i < count; i++)
        if (!find_material(*table, *n, layers[i].material)) {
            strata_material *m = &(*table)[(*n)++];
            memset(m, 0, sizeof *m);
            m->id = layers[i].material;
            snprintf(m->name, sizeof m->name, "%s", layers[i].name);
            memcpy(m->rgb, layers[i].rgb, 3);
        }
    return STRATA_OK;
}

static strata_status dem_check_layers(const strata_layer *layers, size_t count, int water,
                                      uint16_t water_id, strata_error *err)
{
    if (!layers || count == 0)
        return error_set(err, STRATA_ERR_ARG, "the layer table is empty");
    for (size_t i = 0; i < count; i++) {
        const strata_layer *l = &layers[i];
        if (!isfinite(l->thickness) || l->thickness < 0)
            return error_set(err, STRATA_ERR_ARG,
                             "layer %zu (%s): thickness %g m must be >= 0 (0 = to the bottom)",
                             i + 1, l->name, l->thickness);
        if (l->material == 0 || (water && l->material == water_id))
            return error_set(err, STRATA_ERR_ARG, "layer %zu (%s): material %u is %s, not ground",
                             i + 1, l->name, l->material, l->material ? "water" : "air");
        if (l->zone < STRATA_ZONE_ANY || l->zone > STRATA_ZONE_SEA)
            return error_set(err, STRATA_ERR_ARG,
                             "layer %zu (%s): zone %d is not any, land, coast or sea", i + 1,
                             l->name, l->zone);
    }
    static const char *const zones[] = {"", "land", "coast", "sea"};
    for (int z = STRATA_ZONE_LAND; z <= STRATA_ZONE_SEA; z++)
        if (!import_layer_material(layers, count, z, 0))
            return error_set(err, STRATA_ERR_ARG, "the layer table has no layer for %s columns",
                             zones[z]);
    return STRATA_OK;
}

static strata_status dem_check_options(const strata_dem_options *d, strata_error *err)
{
    if (!(d->vertical_res > 0) || !isfinite(d->vertical_res))
        return error_set(err, STRATA_ERR_ARG, "vertical resolution %g m must be positive",
                         d->vertical_res);
    if (!isfinite(d->scale) || d->scale == 0)
        return error_set(err, STRATA_ERR_ARG, "scale %g must be finite and non-zero", d->scale);
    if (!isfinite(d->sea_level) || !isfinite(d->coast_height) || d->coast_height < 0)
        return error_set(err, STRATA_ERR_ARG,
                         "sea level and coast height must be finite (coast >= 0)");
    if (d->has_z_range && !(d->z_range[1] > d->z_range[0]))
        return error_set(err, STRATA_ERR_ARG, "z range %g,%g: want ZMIN < ZMAX", d->z_range[0],
                         d->z_range[1]);
    return STRATA_OK;
}

/* Fill state: elevation tiles of the chunk columns this rank has met. */
typedef struct {
    dem_grid *g;
    const strata_dem_options *dem;
    const strata_layer *layers;
    size_t layer_count;
    uint16_t water;
    int64_t tiles_x, tiles_y;
    double **tiles; /* [ty][tx], edge*edge metres each, NULL until needed */
    float *raw;
    double *window;
    uint64_t ground, water_voxels;
} dem_fill;

/* Elevations of the chunk column at bounds b, read once per rank. */
static strata_status dem_tile(dem_fill *f, const int64_t b[6], int edge, double **out,
                              char *message)
{
    int64_t tx = b[0] / edge, ty = b[1] / edge;
    double **slot = &f->tiles[ty * f->tiles_x + tx];
    if (*slot) {
        *out = *slot;
        return STRATA_OK;
    }
    const dem_grid *g = f->g;
    int64_t nx = b[3] - b[0], ny = b[4] - b[1];
    /* Grid window covering world x [b0,b3), y [b1,b4); flipped axes count from hi. */
    int64_t i0 = g->flip[1] ? g->hi[1] - b[3] : g->lo[1] + b[0];
    int64_t j0 = g->flip[0] ? g->hi[0] - b[4] : g->lo[0] + b[1];
    strata_status st = dem_read_window(g, j0, ny, i0, nx, f->raw, f->window, message);
    if (st)
        return st;
    double *tile = strata_malloc((size_t)edge * (size_t)edge * sizeof *tile);
    if (!tile) {
        snprintf(message, STRATA_ERROR_MAX, "cannot allocate an elevation tile");
        return STRATA_ERR_NOMEM;
    }
    for (int64_t y = 0; y < ny; y++)
        for (int64_t x = 0; x < nx; x++) {
            int64_t r = g->flip[0] ? ny - 1 - y : y, c = g->flip[1] ? nx - 1 - x : x;
            tile[y * edge + x] = f->window[r * nx + c];
        }
    *slot = *out = tile;
    return STRATA_OK;
}

static int dem_zone(const strata_dem_options *d, double e)
{
    return e < d->sea_level                     ? STRATA_ZONE_SEA
           : e < d->sea_level + d->coast_height ? STRATA_ZONE_COAST
                                                : STRATA_ZONE_LAND;
}

/* strata_fill callback: the columns of one chunk by the rule of docs/import.md. */
static strata_status dem_chunk(const int64_t b[6], int edge, uint16_t *voxels, void *ctx,
                               char *message)
{
    dem_fill *f = ctx;
    double *tile;
    strata_status st = dem_tile(f, b, edge, &tile, message);
    if (st)
        return st;
    const double zmin = f->dem->z_range[0], m = f->dem->vertical_res, sea = f->dem->sea_level;
    const size_t plane = (size_t)edge * (size_t)edge;
    for (int64_t y = b[1]; y < b[4]; y++)
        for (int64_t x = b[0]; x < b[3]; x++) {
            double e = tile[(y - b[1]) * edge + (x - b[0])];
            int zone = dem_zone(f->dem, e);
            uint16_t *column = voxels + (size_t)(y - b[1]) * (size_t)edge + (size_t)(x - b[0]);
            for (int64_t z = b[2]; z < b[5]; z++) {
                double centre = zmin + ((double)z + 0.5) * m;
                uint16_t *v = column + (size_t)(z - b[2]) * plane;
                if (centre < e) {
                    double top = zmin + (double)(z + 1) * m;
                    *v = import_layer_material(f->layers, f->layer_count, zone,
                                               e > top ? e - top : 0);
                    f->ground++;
                } else if (centre < sea) {
                    *v = f->water;
                    f->water_voxels++;
                } else {
                    break; /* air from here up */
                }
            }
        }
    return STRATA_OK;
}

static strata_status dem_fill_step(strata_world *w, void *ctx)
{
    return strata_fill(w, NULL, dem_chunk, ctx);
}

/* Validation and geometry: everything that can be wrong before the world exists.
 * Collective; every rank ends with the same status and message. */
static strata_status dem_prepare(MPI_Comm comm, const char *dem_file, const strata_dem_options *dem,
                                 const strata_config *cfg, dem_grid *g, strata_config *c,
                                 strata_material **table, dem_fill *f, strata_import_stats *stats,
                                 strata_error *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    strata_status st = dem_check_options(dem, err);
    if (!st)
        st = dem_open(g, dem_file, dem, err);
    double lo = INFINITY, hi = -INFINITY;
    if (!st)
        st = dem_scan(g, rank, size, &lo, &hi, err);
    if ((st = error_agree(comm, st, err)))
        return st;
    double ext[2] = {lo, -hi};
    int rc = MPI_Allreduce(MPI_IN_PLACE, ext, 2, MPI_DOUBLE, MPI_MIN, comm);
    if ((st = error_agree(comm, error_mpi(err, rc, "reducing elevation extremes"), err)))
        return st;
    *c = *cfg;
    st = dem_geometry(g, dem, ext[0], -ext[1], c, stats, err);
    size_t n = 0;
    if (!st)
        st = dem_materials(cfg, f->layers, f->layer_count, table, &n, err);
    int has_water = 0;
    for (size_t i = 0; !st && i < n; i++)
        if (!strcmp((*table)[i].name, "water")) {
            has_water = 1;
            f->water = (*table)[i].id;
            break;
        }
    if (!st)
        st = dem_check_layers(f->layers, f->layer_count, has_water, f->water, err);
    if (!st && !has_water && dem->sea_level > stats->z_range[0])
        st = error_set(err, STRATA_ERR_ARG,
                       "the material table has no material named 'water', "
                       "but sea level %g m lies above the world's bottom (%g m)",
                       dem->sea_level, stats->z_range[0]);
    if (!st) {
        c->materials = *table;
        c->material_count = n;
        stats_world(stats, c);
    }
    return error_agree(comm, st, err);
}

strata_status strata_import_dem(MPI_Comm comm, const char *path, const char *dem_file,
                                const strata_dem_options *dem, const strata_config *cfg,
                                const strata_options *opt, unsigned flags,
                                strata_import_stats *stats, strata_world **out)
{
    strata_import_stats local_stats;
    strata_error err;
    stats = import_start(stats, &local_stats, out, &err);
    if (!path || !dem_file || !cfg) {
        /* Fail at dem_prepare's first agreement, where the other ranks are. */
        error_set(&err, STRATA_ERR_ARG, "strata_import_dem: NULL %s",
                  !path       ? "path"
                  : !dem_file ? "dem_file"
                              : "cfg");
        return import_end(stats, error_agree(comm, STRATA_ERR_ARG, &err));
    }
    strata_dem_options d;
    if (dem)
        d = *dem;
    else
        strata_dem_options_init(&d);
    dem_grid g;
    memset(&g, 0, sizeof g);
    strata_material *table = NULL;
    strata_config c;
    dem_fill f = {.g = &g,
                  .dem = &d,
                  .layers = d.layers ? d.layers : default_layers,
                  .layer_count =
                      d.layers ? d.layer_count : sizeof default_layers / sizeof default_layers[0]};
    strata_status st = dem_prepare(comm, dem_file, &d, cfg, &g, &c, &table, &f, stats, &err);
    if (!st) {
        d.z_range[0] = stats->z_range[0];
        f.tiles_x = (c.dims[0] + c.chunk_edge - 1) / c.chunk_edge;
        f.tiles_y = (c.dims[1] + c.chunk_edge - 1) / c.chunk_edge;
        size_t cells = (size_t)c.chunk_edge * (size_t)c.chunk_edge;
        f.tiles = strata_calloc((size_t)(f.tiles_x * f.tiles_y), sizeof *f.tiles);
        f.raw = strata_malloc(cells * sizeof *f.raw);
        f.window = strata_malloc(cells * sizeof *f.window);
        if (!f.tiles || !f.raw || !f.window)
            st = error_set(&err, STRATA_ERR_NOMEM, "cannot allocate the elevation tile table");
        st = error_agree(comm, st, &err);
    }
    if (!st) {
        st = build_world(comm, path, &c, opt, flags, dem_fill_step, &f, stats, out);
    } else {
        error_publish(&err);
    }
    if (!st) {
        uint64_t counts[2] = {f.ground, f.water_voxels};
        MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_UINT64_T, MPI_SUM, comm);
        stats->ground = counts[0];
        stats->water = counts[1];
        stats->air =
            (uint64_t)c.dims[0] * (uint64_t)c.dims[1] * (uint64_t)c.dims[2] - counts[0] - counts[1];
    }
    for (int64_t i = 0; f.tiles && i < f.tiles_x * f.tiles_y; i++)
        free(f.tiles[i]);
    free(f.tiles);
    free(f.raw);
    free(f.window);
    free(table);
    if (g.ncid >= 0 && g.file)
        nc_close(g.ncid);
    return import_end(stats, st);
}

#endif
