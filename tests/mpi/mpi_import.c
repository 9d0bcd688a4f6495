/* mpi_import.c: DEM voxelization against the column rule, units, crops and flips;
 * raw volumes round-tripped voxel for voxel in every type and byte order; bad
 * input failing with clear messages and creating nothing. Run at 1, 2 and 4 ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdf_writer.h"
#include "import.h"
#include "mpi_common.h"
#include "strata.h"

static char dir[1024];

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- the column rule, independently ---------------------------------------------- */

static uint16_t expected_layer(double e, double depth, double sea, double coast)
{
    const strata_layer *l;
    size_t n;
    strata_import_default_layers(&l, &n);
    int zone = e < sea ? STRATA_ZONE_SEA : e < sea + coast ? STRATA_ZONE_COAST : STRATA_ZONE_LAND;
    double bottom = 0;
    uint16_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (l[i].zone != STRATA_ZONE_ANY && l[i].zone != zone)
            continue;
        last = l[i].material;
        if (l[i].thickness == 0 || depth < (bottom += l[i].thickness))
            break;
    }
    return last;
}

typedef struct {
    const float *grid; /* as stored in the file */
    int nx, ny, flip;  /* flip: rows stored north to south */
    int64_t i0, j0;    /* crop origin */
    double scale, zmin, m, sea;
} dem_case;

/* Elevation of world column (x, y) in metres. */
static double column_elevation(const dem_case *c, int64_t x, int64_t y, int64_t dims_y)
{
    int64_t j = c->flip ? c->j0 + (dims_y - 1 - y) : c->j0 + y;
    return (double)c->grid[j * c->nx + c->i0 + x] * c->scale;
}

/* Every voxel of the world against the rule, chunks spread over ranks; and per
 * column the counts of ground, water and air against a closed form. */
static void verify_dem(strata_world *w, const dem_case *c, const char *what)
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    const int e = cfg.chunk_edge;
    int64_t n[3];
    for (int i = 0; i < 3; i++)
        n[i] = (cfg.dims[i] + e - 1) / e;
    uint16_t *v = malloc((size_t)e * e * e * sizeof *v);
    uint64_t *counts = calloc((size_t)(cfg.dims[0] * cfg.dims[1] * 3), sizeof *counts);
    int bad = 0;
    for (int64_t cy = 0; cy < n[1]; cy++)
        for (int64_t cx = 0; cx < n[0]; cx++) {
            if ((cy * n[0] + cx) % mt_size != mt_rank)
                continue; /* whole chunk columns per rank, so column counts are local */
            for (int64_t cz = 0; cz < n[2]; cz++) {
                strata_status st = strata_load_chunk(w, cx, cy, cz, v);
                MT_CHECK(st == STRATA_OK, "%s: load chunk: %s", what, strata_last_error(w));
                for (int64_t z = cz * e; z < (cz + 1) * e && z < cfg.dims[2]; z++)
                    for (int64_t y = cy * e; y < (cy + 1) * e && y < cfg.dims[1]; y++)
                        for (int64_t x = cx * e; x < (cx + 1) * e && x < cfg.dims[0]; x++) {
                            double el = column_elevation(c, x, y, cfg.dims[1]);
                            double centre = c->zmin + (z + 0.5) * c->m,
                                   top = c->zmin + (z + 1) * c->m;
                            uint16_t want =
                                centre < el
                                    ? expected_layer(el, el > top ? el - top : 0, c->sea, 20)
                                : centre < c->sea ? 1
                                                  : 0;
                            uint16_t got = v[((z - cz * e) * e + (y - cy * e)) * e + (x - cx * e)];
                            if (got != want && bad++ < 5)
                                MT_CHECK(got == want,
                                         "%s: voxel %ld,%ld,%ld (elevation %g): got %u want %u",
                                         what, (long)x, (long)y, (long)z, el, got, want);
                            int kind = got == 0 ? 2 : got == 1 ? 1 : 0;
                            counts[(y * cfg.dims[0] + x) * 3 + kind]++;
                        }
            }
            for (int64_t y = cy * e; y < (cy + 1) * e && y < cfg.dims[1]; y++)
                for (int64_t x = cx * e; x < (cx + 1) * e && x < cfg.dims[0]; x++) {
                    double el = column_elevation(c, x, y, cfg.dims[1]), Z = (double)cfg.dims[2];
                    double g = fmin(fmax(ceil((el - c->zmin) / c->m - 0.5), 0), Z);
                    double below_sea = fmin(fmax(ceil((c->sea - c->zmin) / c->m - 0.5), 0), Z);
                    double wtr = fmax(below_sea - g, 0);
                    const uint64_t *k = &counts[(y * cfg.dims[0] + x) * 3];
                    MT_CHECK(k[0] == (uint64_t)g && k[1] == (uint64_t)wtr &&
                                 k[2] == (uint64_t)(Z - g - wtr),
                             "%s: column %ld,%ld (elevation %g): ground/water/air %lu/%lu/%lu, "
                             "want %g/%g/%g",
                             what, (long)x, (long)y, el, (unsigned long)k[0], (unsigned long)k[1],
                             (unsigned long)k[2], g, wtr, Z - g - wtr);
                }
        }
    free(v);
    free(counts);
}

static void check_geometry(strata_world *w, const char *what, double lon_edge, double lat_edge,
                           double centre_lat, double step, double zmin, double m,
                           const int64_t dims[3])
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    double rad = M_PI / 180, s = sin(centre_lat * rad), q = 1 - 0.00669437999014 * s * s;
    double lon_m = rad * 6378137.0 * cos(centre_lat * rad) / sqrt(q);
    double lat_m = rad * 6378137.0 * (1 - 0.00669437999014) / (q * sqrt(q));
    double want_size[3] = {step * lon_m, step * lat_m, m};
    double want_origin[3] = {lon_edge * lon_m, lat_edge * lat_m, zmin};
    for (int i = 0; i < 3; i++) {
        MT_CHECK(cfg.dims[i] == dims[i], "%s: dims[%d] %ld want %ld", what, i, (long)cfg.dims[i],
                 (long)dims[i]);
        MT_CHECK(fabs(cfg.voxel_size[i] - want_size[i]) < 1e-6 * want_size[i],
                 "%s: voxel size %c %f want %f", what, "xyz"[i], cfg.voxel_size[i], want_size[i]);
        MT_CHECK(fabs(cfg.origin[i] - want_origin[i]) < 1e-3, "%s: origin %c %f want %f", what,
                 "xyz"[i], cfg.origin[i], want_origin[i]);
    }
}

/* Elevations: smooth relief plus noise, with a few values exactly on voxel-centre
 * and voxel-face boundaries. Rows south to north. */
static float *make_relief(int nx, int ny)
{
    float *g = malloc((size_t)nx * ny * sizeof *g);
    uint64_t seed = 42;
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            double r = (double)(mt_random(&seed) % 1000) - 500;
            g[j * nx + i] =
                (float)floor(3000 * sin(i * 0.15) * cos(j * 0.11) + 900 * ((double)i / nx) + r);
        }
    g[10 * nx + 10] = -250; /* a voxel centre at zmin = -3700, M = 100 */
    g[11 * nx + 12] = -300; /* a voxel face */
    g[12 * nx + 14] = 0;    /* sea level exactly: coast */
    g[13 * nx + 15] = 19;   /* coast */
    g[14 * nx + 16] = 20;   /* land */
    return g;
}

static strata_status import_dem(const char *world, const char *file, strata_dem_options *d,
                                strata_world **out, strata_import_stats *stats)
{
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.chunk_edge = 16;
    return strata_import_dem(MPI_COMM_WORLD, world, file, d, &cfg, NULL, STRATA_CREATE_FORCE, stats,
                             out);
}

static void test_dem(void)
{
    const int nx = 45, ny = 38;
    float *grid = make_relief(nx, ny);
    char file[1200], flipped_file[1200], world[1200];
    path_of(file, sizeof file, "relief.nc");
    path_of(flipped_file, sizeof flipped_file, "relief_north_first.nc");
    path_of(world, sizeof world, "dem.world");
    float *north_first = malloc((size_t)nx * ny * sizeof *north_first);
    for (int j = 0; j < ny; j++)
        memcpy(north_first + (size_t)(ny - 1 - j) * nx, grid + (size_t)j * nx,
               (size_t)nx * sizeof *grid);
    /* 0.25 degree grid, lon 280 .. 291, lat -40 .. -30.75 (south to north). */
    if (mt_rank == 0) {
        write_cdf(file, nx, ny, 280, 0.25, -40, 0.25, grid);
        write_cdf(flipped_file, nx, ny, 280, 0.25, -40 + 0.25 * (ny - 1), -0.25, north_first);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    float lo = 1e30f, hi = -1e30f;
    for (int j = 3; j < 35; j++)
        for (int i = 5; i < 41; i++) {
            lo = fminf(lo, grid[j * nx + i]);
            hi = fmaxf(hi, grid[j * nx + i]);
        }
    strata_dem_options d;
    strata_dem_options_init(&d);
    int64_t crop[4] = {5, 3, 41, 35};
    memcpy(d.crop, crop, sizeof crop);
    strata_world *w;
    strata_import_stats s;
    strata_status st = import_dem(world, file, &d, &w, &s);
    if (st && strstr(strata_last_error(NULL), "without netCDF")) {
        if (mt_rank == 0)
            printf("skipping DEM tests: %s\n", strata_last_error(NULL));
        free(grid), free(north_first);
        return;
    }
    MT_CHECK(st == STRATA_OK, "import: %s", strata_last_error(NULL));
    if (st == STRATA_OK) {
        double zmin = floor(lo / 100) * 100, zmax = ceil(hi / 100) * 100;
        int64_t dims[3] = {36, 32, (int64_t)((zmax - zmin) / 100)};
        MT_CHECK(s.elevation_min == lo && s.elevation_max == hi, "extremes %g %g want %g %g",
                 s.elevation_min, s.elevation_max, (double)lo, (double)hi);
        check_geometry(w, "default", 280 + 5 * 0.25 - 0.125, -40 + 3 * 0.25 - 0.125,
                       -40 + 0.25 * (3 + 34) / 2.0, 0.25, zmin, 100, dims);
        dem_case c = {grid, nx, ny, 0, 5, 3, 1, zmin, 100, 0};
        verify_dem(w, &c, "default");
        strata_world_close(w);
    }

    /* Units: --scale 0.5 (half-metres), 50 m voxels, explicit z range cutting the
     * deepest and highest columns, sea level 300 m. */
    strata_dem_options_init(&d);
    memcpy(d.crop, crop, sizeof crop);
    d.scale = 0.5, d.vertical_res = 50, d.sea_level = 300, d.has_z_range = 1;
    d.z_range[0] = -1000, d.z_range[1] = 1475; /* not a multiple: rounded up to 1500 */
    st = import_dem(world, file, &d, &w, &s);
    MT_CHECK(st == STRATA_OK, "scaled import: %s", strata_last_error(NULL));
    if (st == STRATA_OK) {
        int64_t dims[3] = {36, 32, 50};
        check_geometry(w, "scaled", 280 + 5 * 0.25 - 0.125, -40 + 3 * 0.25 - 0.125,
                       -40 + 0.25 * 37 / 2.0, 0.25, -1000, 50, dims);
        dem_case c = {grid, nx, ny, 0, 5, 3, 0.5, -1000, 50, 300};
        verify_dem(w, &c, "scaled");
        strata_world_close(w);
    }

    /* Rows stored north to south: y still points north, same world as the first. */
    strata_dem_options_init(&d);
    int64_t flipped_crop[4] = {5, ny - 35, 41, ny - 3};
    memcpy(d.crop, flipped_crop, sizeof flipped_crop);
    st = import_dem(world, flipped_file, &d, &w, &s);
    MT_CHECK(st == STRATA_OK, "flipped import: %s", strata_last_error(NULL));
    if (st == STRATA_OK) {
        double zmin = floor(lo / 100) * 100, zmax = ceil(hi / 100) * 100;
        int64_t dims[3] = {36, 32, (int64_t)((zmax - zmin) / 100)};
        check_geometry(w, "flipped", 280 + 5 * 0.25 - 0.125, -40 + 3 * 0.25 - 0.125,
                       -40 + 0.25 * 37 / 2.0, 0.25, zmin, 100, dims);
        dem_case c = {grid, nx, ny, 0, 5, 3, 1, zmin, 100, 0};
        verify_dem(w, &c, "flipped");
        strata_world_close(w);
    }

    /* Bad DEM input: clear errors, nothing created. */
    char fresh[1200], text[1200], holes[1200];
    path_of(fresh, sizeof fresh, "never.world");
    path_of(text, sizeof text, "not_netcdf.nc");
    path_of(holes, sizeof holes, "holes.nc");
    if (mt_rank == 0) {
        FILE *f = fopen(text, "w");
        fputs("elevation 1 2 3\n", f);
        fclose(f);
        grid[20 * nx + 30] = -1e34f; /* a missing cell at i=30, j=20 */
        write_cdf(holes, nx, ny, 280, 0.25, -40, 0.25, grid);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    strata_config cfg;
    strata_config_init(&cfg);
    struct {
        const char *file, *var, *expect;
        int64_t crop[4];
        strata_status status;
    } cases[] = {
        {text, NULL, "not a netCDF file", {0}, STRATA_ERR_FORMAT},
        {file, "depth", "no variable 'depth'", {0}, STRATA_ERR_NOT_FOUND},
        {file, "lon", "has 1 dimensions", {0}, STRATA_ERR_FORMAT},
        {holes, NULL, "i=30 j=20 is missing", {0}, STRATA_ERR_FORMAT},
        {file, NULL, "does not fit", {0, 0, 46, 10}, STRATA_ERR_RANGE},
        {file, NULL, "does not fit", {10, 0, 10, 10}, STRATA_ERR_RANGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_dem_options_init(&d);
        d.variable = cases[i].var;
        memcpy(d.crop, cases[i].crop, sizeof d.crop);
        st = strata_import_dem(MPI_COMM_WORLD, fresh, cases[i].file, &d, &cfg, NULL, 0, NULL, NULL);
        const char *message = strata_last_error(NULL);
        MT_CHECK(st == cases[i].status && strstr(message, cases[i].expect),
                 "bad DEM case %zu: status %d, message '%s', want '%s'", i, st, message,
                 cases[i].expect);
        MT_CHECK(!exists(fresh), "bad DEM case %zu created %s", i, fresh);
    }
    free(grid);
    free(north_first);
}

/* ---- raw volumes -------------------------------------------------------------- */

static void write_raw(const char *path, const int64_t dims[3], int type, int endian,
                      uint16_t *values, uint64_t seed)
{
    size_t n = (size_t)(dims[0] * dims[1] * dims[2]), bytes = type == STRATA_RAW_UINT8 ? 1 : 2;
    unsigned char *raw = malloc(n * bytes);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = mt_random(&seed);
        /* Runs of equal values too, so some chunks come out uniform. */
        uint16_t v = (r >> 60) < 3              ? 0
                     : type == STRATA_RAW_UINT8 ? (uint16_t)(r & 0xff)
                     : type == STRATA_RAW_INT16 ? (uint16_t)(r & 0x7fff)
                                                : (uint16_t)r;
        if (i >= n / 2 && i < n / 2 + 4096)
            v = 7;
        values[i] = v;
        if (bytes == 1)
            raw[i] = (unsigned char)v;
        else if (endian == STRATA_ENDIAN_BIG)
            raw[2 * i] = (unsigned char)(v >> 8), raw[2 * i + 1] = (unsigned char)v;
        else
            raw[2 * i] = (unsigned char)v, raw[2 * i + 1] = (unsigned char)(v >> 8);
    }
    if (mt_rank == 0) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(raw, bytes, n, f) != n || fclose(f))
            abort();
    }
    free(raw);
    MPI_Barrier(MPI_COMM_WORLD);
}

static void verify_raw(strata_world *w, const int64_t dims[3], const uint16_t *values,
                       const char *what)
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    const int e = cfg.chunk_edge;
    uint16_t *v = malloc((size_t)e * e * e * sizeof *v);
    int64_t n[3], index = 0, bad = 0;
    for (int i = 0; i < 3; i++)
        n[i] = (dims[i] + e - 1) / e;
    for (int64_t cz = 0; cz < n[2]; cz++)
        for (int64_t cy = 0; cy < n[1]; cy++)
            for (int64_t cx = 0; cx < n[0]; cx++) {
                if (index++ % mt_size != mt_rank)
                    continue;
                MT_CHECK(strata_load_chunk(w, cx, cy, cz, v) == STRATA_OK, "%s: %s", what,
                         strata_last_error(w));
                for (int64_t z = cz * e; z < (cz + 1) * e && z < dims[2]; z++)
                    for (int64_t y = cy * e; y < (cy + 1) * e && y < dims[1]; y++)
                        for (int64_t x = cx * e; x < (cx + 1) * e && x < dims[0]; x++) {
                            uint16_t got = v[((z - cz * e) * e + (y - cy * e)) * e + (x - cx * e)];
                            uint16_t want = values[(z * dims[1] + y) * dims[0] + x];
                            if (got != want && bad++ < 5)
                                MT_CHECK(got == want, "%s: voxel %ld,%ld,%ld got %u want %u", what,
                                         (long)x, (long)y, (long)z, got, want);
                        }
            }
    /* Spot checks through the point read as well. */
    uint16_t got;
    MT_CHECK(strata_read_voxel(w, dims[0] - 1, dims[1] - 1, dims[2] - 1, &got) == STRATA_OK &&
                 got == values[dims[0] * dims[1] * dims[2] - 1],
             "%s: last voxel", what);
    free(v);
}

static void test_raw(void)
{
    const int64_t dims[3] = {37, 29, 21};
    size_t n = (size_t)(dims[0] * dims[1] * dims[2]);
    uint16_t *values = malloc(n * sizeof *values);
    char file[1200], world[1200];
    path_of(file, sizeof file, "volume.raw");
    path_of(world, sizeof world, "raw.world");
    static const char *const type_names[] = {"", "uint8", "uint16", "int16"};
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.chunk_edge = 16;
    cfg.voxel_size[0] = 0.5;
    for (int type = STRATA_RAW_UINT8; type <= STRATA_RAW_INT16; type++)
        for (int endian = 0; endian < 2; endian++) {
            char what[64];
            snprintf(what, sizeof what, "raw %s %s", type_names[type], endian ? "big" : "little");
            write_raw(file, dims, type, endian, values, 1000 + (uint64_t)(type * 2 + endian));
            strata_raw_options r = {{dims[0], dims[1], dims[2]}, type, endian};
            strata_world *w;
            strata_import_stats s;
            strata_status st = strata_import_raw(MPI_COMM_WORLD, world, file, &r, &cfg, NULL,
                                                 STRATA_CREATE_FORCE, &s, &w);
            MT_CHECK(st == STRATA_OK, "%s: %s", what, strata_last_error(NULL));
            if (st)
                continue;
            strata_config got;
            strata_world_config(w, &got);
            MT_CHECK(got.dims[0] == dims[0] && got.dims[1] == dims[1] && got.dims[2] == dims[2] &&
                         got.voxel_size[0] == 0.5,
                     "%s: world geometry", what);
            verify_raw(w, dims, values, what);
            strata_world_close(w);
        }

    /* A negative int16 is an error naming its index and position; the old world
     * under --force stays as it was, and a fresh path is not created. */
    write_raw(file, dims, STRATA_RAW_INT16, STRATA_ENDIAN_BIG, values, 77);
    strata_raw_options good = {{dims[0], dims[1], dims[2]}, STRATA_RAW_INT16, STRATA_ENDIAN_BIG};
    strata_status st = strata_import_raw(MPI_COMM_WORLD, world, file, &good, &cfg, NULL,
                                         STRATA_CREATE_FORCE, NULL, NULL);
    MT_CHECK(st == STRATA_OK, "import before the bad one: %s", strata_last_error(NULL));
    char bad_file[1200], fresh[1200], staging[1300];
    path_of(bad_file, sizeof bad_file, "negative.raw");
    path_of(fresh, sizeof fresh, "never_raw.world");
    snprintf(staging, sizeof staging, "%s.strata-new", world);
    if (mt_rank == 0) {
        size_t at = (size_t)((3 * dims[1] + 7) * dims[0] + 5), later = n - 2;
        unsigned char *raw = calloc(n, 2);
        raw[2 * at] = 0xff, raw[2 * at + 1] = 0x85; /* big-endian 0xff85 = -123 */
        raw[2 * later] = 0x80;                      /* -32768, later in the file */
        FILE *f = fopen(bad_file, "wb");
        if (!f || fwrite(raw, 2, n, f) != n || fclose(f))
            abort();
        free(raw);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    char expect[128];
    snprintf(expect, sizeof expect, "element %ld (x,y,z = 5,7,3) is -123",
             (long)((3 * dims[1] + 7) * dims[0] + 5));
    const char *targets[2] = {world, fresh};
    for (int t = 0; t < 2; t++) {
        st = strata_import_raw(MPI_COMM_WORLD, targets[t], bad_file, &good, &cfg, NULL,
                               STRATA_CREATE_FORCE, NULL, NULL);
        MT_CHECK(st == STRATA_ERR_PARSE && strstr(strata_last_error(NULL), expect),
                 "negative: %d '%s'", st, strata_last_error(NULL));
    }
    MT_CHECK(!exists(fresh), "a failed raw import created %s", fresh);
    MT_CHECK(!exists(staging), "a failed --force import left %s", staging);
    strata_world *w;
    st = strata_world_open(MPI_COMM_WORLD, world, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "old world after a failed --force import: %s",
             strata_last_error(NULL));
    if (!st) {
        verify_raw(w, dims, values, "old world kept");
        strata_world_close(w);
    }

    /* --dims that do not match the file size. */
    strata_raw_options wrong = {
        {dims[0], dims[1], dims[2] + 1}, STRATA_RAW_INT16, STRATA_ENDIAN_BIG};
    st = strata_import_raw(MPI_COMM_WORLD, fresh, file, &wrong, &cfg, NULL, 0, NULL, NULL);
    MT_CHECK(st == STRATA_ERR_FORMAT && strstr(strata_last_error(NULL), "need"),
             "wrong dims: %d '%s'", st, strata_last_error(NULL));
    strata_raw_options wrong_type = {
        {dims[0], dims[1], dims[2]}, STRATA_RAW_UINT8, STRATA_ENDIAN_BIG};
    st = strata_import_raw(MPI_COMM_WORLD, fresh, file, &wrong_type, &cfg, NULL, 0, NULL, NULL);
    MT_CHECK(st == STRATA_ERR_FORMAT, "uint8 over an int16 file: %d '%s'", st,
             strata_last_error(NULL));
    MT_CHECK(!exists(fresh), "a failed raw import created %s", fresh);
    free(values);
}

int main(int argc, char **argv)
{
    const char *work = mt_init(&argc, &argv);
    snprintf(dir, sizeof dir, "%s", work);
    test_dem();
    test_raw();
    return mt_finish("mpi_import");
}
