/* job_import.c: `strata import WORLD --dem FILE ... | --raw FILE ...` (docs/import.md). */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] =
    "strata import WORLD --dem FILE [--var NAME] [--scale S] [--crop i0,j0,i1,j1]\n"
    "                    [--z-range ZMIN,ZMAX] [--vertical-res M] [--sea-level H]\n"
    "                    [--coast-height H] [--layers FILE.csv]\n"
    "                    [--chunk C] [--materials FILE.csv] [--force]\n"
    "strata import WORLD --raw FILE --dims X,Y,Z --type uint8|uint16|int16 [--endian little|big]\n"
    "                    [--voxel-size M|DX,DY,DZ] [--origin X,Y,Z]\n"
    "                    [--chunk C] [--materials FILE.csv] [--force]";

static const char *const zone_names[] = {"any", "land", "coast", "sea"};

/* One layer line: name,thickness,material,r,g,b[,zone]. Returns 0 or -1. */
static int parse_layer(char *line, strata_layer *l)
{
    char *f[7];
    int n = 0;
    char *cursor = line;
    while (cursor && n < 7)
        f[n++] = strsep(&cursor, ",");
    if (n < 6 || cursor)
        return -1;
    for (int i = 0; i < n; i++) { /* trim blanks */
        while (*f[i] == ' ' || *f[i] == '\t')
            f[i]++;
        size_t len = strlen(f[i]);
        while (len && (f[i][len - 1] == ' ' || f[i][len - 1] == '\t'))
            f[i][--len] = '\0';
    }
    int64_t v[4];
    memset(l, 0, sizeof *l);
    if (!*f[0] || strlen(f[0]) >= STRATA_MATERIAL_NAME_MAX ||
        parse_double_value(f[1], &l->thickness) || parse_int64(f[2], &v[0]) ||
        parse_int64(f[3], &v[1]) || parse_int64(f[4], &v[2]) || parse_int64(f[5], &v[3]) ||
        v[0] < 0 || v[0] > 65535)
        return -1;
    for (int i = 1; i < 4; i++)
        if (v[i] < 0 || v[i] > 255)
            return -1;
    strcpy(l->name, f[0]);
    l->material = (uint16_t)v[0];
    l->rgb[0] = (uint8_t)v[1], l->rgb[1] = (uint8_t)v[2], l->rgb[2] = (uint8_t)v[3];
    l->zone = -1;
    for (int z = 0; z < 4; z++)
        if (!strcmp(n == 7 ? f[6] : "any", zone_names[z]))
            l->zone = z;
    return l->zone < 0 ? -1 : 0;
}

/* Layers CSV: header name,thickness,material,r,g,b[,zone]; '#' comments. */
static int read_layers_csv(const char *path, strata_layer **out, size_t *count, char *error,
                           size_t size)
{
    char *text;
    size_t length;
    if (read_file(path, &text, &length, error, size))
        return -1;
    strata_layer *table = NULL;
    size_t n = 0, line_no = 0;
    int rc = 0;
    for (char *cursor = text, *line; !rc && (line = strsep(&cursor, "\n"));) {
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (!len || line[0] == '#' || (n == 0 && !strncmp(line, "name,", 5)))
            continue;
        strata_layer *grown = realloc(table, (n + 1) * sizeof *table);
        if (!grown) {
            snprintf(error, size, "out of memory reading %s", path);
            rc = -1;
        } else if (table = grown, parse_layer(line, &table[n])) {
            snprintf(error, size,
                     "%s line %zu: expected name,thickness_m,material,r,g,b[,zone] with "
                     "material 0..65535, colours 0..255, zone any|land|coast|sea",
                     path, line_no);
            rc = -1;
        } else {
            n++;
        }
    }
    free(text);
    if (!rc && !n) {
        snprintf(error, size, "%s holds no layers", path);
        rc = -1;
    }
    if (rc) {
        free(table);
        return -1;
    }
    *out = table;
    *count = n;
    return 0;
}

/* Read a small CSV on every rank; one message if any rank fails. Collective. */
static int load_tables(job *j, const char *materials, const char *layers, strata_config *cfg,
                       strata_material **table, strata_dem_options *dem, strata_layer **layer_table)
{
    char message[512] = "";
    int failed = 0;
    if (materials)
        failed =
            read_materials_csv(materials, table, &cfg->material_count, message, sizeof message);
    if (!failed && layers)
        failed = read_layers_csv(layers, layer_table, &dem->layer_count, message, sizeof message);
    if (job_agree(failed)) {
        if (j->rank == 0)
            job_error(j, "%s", failed ? message : "an input file is unreadable on another rank");
        return JOB_FAILED;
    }
    cfg->materials = *table;
    dem->layers = *layer_table;
    return JOB_OK;
}

static int parse_type(const char *value, int *type)
{
    static const char *const names[] = {"uint8", "uint16", "int16"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(value, names[i])) {
            *type = STRATA_RAW_UINT8 + i;
            return 0;
        }
    return -1;
}

static void summary(const job *j, const char *path, const char *source,
                    const strata_import_stats *s)
{
    double voxels = (double)s->dims[0] * (double)s->dims[1] * (double)s->dims[2];
    job_summary(
        j,
        "imported %s from %s: %" PRId64 " x %" PRId64 " x %" PRId64 " voxels of %.3f x %.3f x "
        "%.3f m, origin %.3f,%.3f,%.3f m, in %.3f s (%.4g voxels/s, %.4g per rank); %" PRIu64
        " chunks stored, %.1f MB raw -> %.2f MB stored",
        path, source, s->dims[0], s->dims[1], s->dims[2], s->voxel_size[0], s->voxel_size[1],
        s->voxel_size[2], s->origin[0], s->origin[1], s->origin[2], s->seconds, voxels / s->seconds,
        voxels / s->seconds / j->size, s->commit.chunks_written, s->commit.raw_bytes / 1e6,
        s->commit.stored_bytes / 1e6);
}

static void dem_log(const job *j, const strata_import_stats *s)
{
    if (s->geographic)
        job_summary(j, "crop's south-west corner %.6f E %.6f N, centre latitude %.6f",
                    s->corner_lon_lat[0], s->corner_lon_lat[1], s->centre_latitude);
    job_summary(j,
                "elevations %.3f .. %.3f m; z range %.3f .. %.3f m; %" PRIu64 " ground, %" PRIu64
                " water, %" PRIu64 " air voxels",
                s->elevation_min, s->elevation_max, s->z_range[0], s->z_range[1], s->ground,
                s->water, s->air);
}

int job_import(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    const char *path = argv[1], *dem_file = NULL, *raw_file = NULL, *layers = NULL;
    const char *value;
    strata_config cfg;
    strata_config_init(&cfg);
    strata_dem_options dem;
    strata_dem_options_init(&dem);
    strata_raw_options raw = {{0, 0, 0}, 0, STRATA_ENDIAN_LITTLE};
    world_options world = {&cfg, NULL, 0};
    int have_dims = 0;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--dem", &value)) {
            if (!value)
                return job_usage(j, usage, "--dem wants a netCDF FILE");
            if (dem_file)
                return job_usage(j, usage, "--dem given twice");
            dem_file = value;
        } else if (option_value(argc, argv, &i, "--raw", &value)) {
            if (!value)
                return job_usage(j, usage, "--raw wants FILE");
            if (raw_file)
                return job_usage(j, usage, "--raw given twice");
            raw_file = value;
        } else if (option_value(argc, argv, &i, "--var", &value)) {
            if (!value)
                return job_usage(j, usage, "--var wants a variable NAME");
            dem.variable = value;
        } else if (option_value(argc, argv, &i, "--scale", &value)) {
            if (!value || parse_double_value(value, &dem.scale))
                return job_usage(j, usage, "--scale wants a number (units to metres)");
        } else if (option_value(argc, argv, &i, "--crop", &value)) {
            if (!value || parse_int64_list(value, dem.crop, 4))
                return job_usage(j, usage, "--crop wants i0,j0,i1,j1");
        } else if (option_value(argc, argv, &i, "--z-range", &value)) {
            if (!value || parse_double_list(value, dem.z_range, 2))
                return job_usage(j, usage, "--z-range wants ZMIN,ZMAX in metres");
            dem.has_z_range = 1;
        } else if (option_value(argc, argv, &i, "--vertical-res", &value)) {
            if (!value || parse_double_value(value, &dem.vertical_res))
                return job_usage(j, usage, "--vertical-res wants metres");
        } else if (option_value(argc, argv, &i, "--sea-level", &value)) {
            if (!value || parse_double_value(value, &dem.sea_level))
                return job_usage(j, usage, "--sea-level wants metres");
        } else if (option_value(argc, argv, &i, "--coast-height", &value)) {
            if (!value || parse_double_value(value, &dem.coast_height))
                return job_usage(j, usage, "--coast-height wants metres");
        } else if (option_value(argc, argv, &i, "--layers", &value)) {
            if (!value)
                return job_usage(j, usage, "--layers wants FILE.csv");
            layers = value;
        } else if (option_value(argc, argv, &i, "--dims", &value)) {
            if (!value || parse_int64_list(value, raw.dims, 3))
                return job_usage(j, usage, "--dims wants X,Y,Z");
            have_dims = 1;
        } else if (option_value(argc, argv, &i, "--type", &value)) {
            if (!value || parse_type(value, &raw.type))
                return job_usage(j, usage, "--type wants uint8, uint16 or int16");
        } else if (option_value(argc, argv, &i, "--endian", &value)) {
            if (!value || (strcmp(value, "little") && strcmp(value, "big")))
                return job_usage(j, usage, "--endian wants little or big");
            raw.endian = strcmp(value, "big") ? STRATA_ENDIAN_LITTLE : STRATA_ENDIAN_BIG;
        } else {
            int used = parse_world_option(j, usage, argc, argv, &i, &world);
            if (used < 0)
                return JOB_USAGE;
            if (!used)
                return job_usage(j, usage, "unknown option %s", argv[i]);
        }
    }
    if (!dem_file == !raw_file)
        return job_usage(j, usage, "give exactly one of --dem FILE and --raw FILE");
    if (raw_file && (!have_dims || !raw.type))
        return job_usage(j, usage, "--raw needs --dims X,Y,Z and --type");
    strata_material *table = NULL;
    strata_layer *layer_table = NULL;
    int rc = load_tables(j, world.materials, layers, &cfg, &table, &dem, &layer_table);
    if (rc) {
        free(table);
        free(layer_table);
        return rc;
    }
    strata_options opt;
    int options_rc = job_options(j, usage, argc, argv, &opt);
    if (options_rc)
        return options_rc;
    strata_import_stats stats;
    strata_status st;
    if (dem_file) {
        job_summary(j, "importing %s into %s on %d ranks", dem_file, path, j->size);
        st = strata_import_dem(MPI_COMM_WORLD, path, dem_file, &dem, &cfg, &opt, world.flags,
                               &stats, NULL);
    } else {
        job_summary(j, "importing %s into %s on %d ranks", raw_file, path, j->size);
        st = strata_import_raw(MPI_COMM_WORLD, path, raw_file, &raw, &cfg, &opt, world.flags,
                               &stats, NULL);
    }
    free(table);
    free(layer_table);
    if (st)
        return job_fail(j, st, NULL);
    if (dem_file)
        dem_log(j, &stats);
    summary(j, path, dem_file ? dem_file : raw_file, &stats);
    return JOB_OK;
}
