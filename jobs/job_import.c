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

/* The layers read so far. */
typedef struct {
    strata_layer *table;
    size_t n;
} layer_list;

/* One layers line: name,thickness,material,r,g,b[,zone] (a header starting "name" on
 * the first line is skipped). */
static int layer_row(void *context, const csv_row *r, char *error, size_t error_size)
{
    layer_list *list = context;
    const char(*f)[CSV_FIELD_SIZE] = r->field;
    if (r->first && !strcmp(f[0], "name"))
        return 0;
    strata_layer l;
    memset(&l, 0, sizeof l);
    int64_t v[4];
    int ok = (r->count == 6 || r->count == 7) && *f[0] && strlen(f[0]) < STRATA_MATERIAL_NAME_MAX &&
             !parse_double_value(f[1], &l.thickness);
    for (int i = 0; ok && i < 4; i++)
        ok = !parse_int64(f[2 + i], &v[i]) && v[i] >= 0 && v[i] <= (i ? 255 : 65535);
    l.zone = -1;
    for (int z = 0; ok && z < 4; z++)
        if (!strcmp(r->count == 7 ? f[6] : "any", zone_names[z]))
            l.zone = z;
    if (!ok || l.zone < 0) {
        snprintf(error, error_size,
                 "%s line %zu: expected name,thickness_m,material,r,g,b[,zone] with "
                 "material 0..65535, colours 0..255, zone any|land|coast|sea",
                 r->path, r->line);
        return -1;
    }
    strcpy(l.name, f[0]);
    l.material = (uint16_t)v[0];
    l.rgb[0] = (uint8_t)v[1], l.rgb[1] = (uint8_t)v[2], l.rgb[2] = (uint8_t)v[3];
    strata_layer *grown = realloc(list->table, (list->n + 1) * sizeof *list->table);
    if (!grown) {
        snprintf(error, error_size, "out of memory reading %s", r->path);
        return -1;
    }
    list->table = grown;
    list->table[list->n++] = l;
    return 0;
}

/* Layers CSV: header name,thickness,material,r,g,b[,zone]; '#' comments. */
static int read_layers_csv(const char *path, strata_layer **out, size_t *count, char *error,
                           size_t size)
{
    layer_list list = {NULL, 0};
    int rc = csv_read(path, layer_row, &list, error, size);
    if (!rc && !list.n) {
        snprintf(error, size, "%s holds no layers", path);
        rc = -1;
    }
    if (rc) {
        free(list.table);
        return -1;
    }
    *out = list.table;
    *count = list.n;
    return 0;
}

/* What the command line asks for. */
typedef struct {
    const char *dem_file, *raw_file, *layers;
    strata_config cfg;
    strata_dem_options dem;
    strata_raw_options raw;
    world_options world;
    int have_dims;
} import_args;

/* The materials and layers files (when given) on every rank into a; one message when any
 * rank fails. Collective. */
static int load_tables(const job *j, import_args *a, strata_material **table,
                       strata_layer **layer_table)
{
    *layer_table = NULL;
    int rc = job_read_materials(j, a->world.materials, &a->cfg, table);
    if (rc || !a->layers)
        return rc;
    char message[512] = "";
    int failed =
        read_layers_csv(a->layers, layer_table, &a->dem.layer_count, message, sizeof message);
    rc = job_agree_read(j, failed, message, a->layers);
    if (rc) {
        free(*layer_table);
        *layer_table = NULL;
    }
    a->dem.layers = *layer_table;
    return rc;
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

/* Consume argv[*i] when it is an option of a DEM import: 1 consumed, 0 not one of
 * these, -1 bad value (usage printed on rank 0). */
static int dem_option(const job *j, int argc, char **argv, int *i, import_args *a)
{
    const char *value;
    strata_dem_options *dem = &a->dem;
    if (option_value(argc, argv, i, "--dem", &value)) {
        if (!value)
            return job_usage(j, usage, "--dem wants a netCDF FILE"), -1;
        if (a->dem_file)
            return job_usage(j, usage, "--dem given twice"), -1;
        a->dem_file = value;
    } else if (option_value(argc, argv, i, "--var", &value)) {
        if (!value)
            return job_usage(j, usage, "--var wants a variable NAME"), -1;
        dem->variable = value;
    } else if (option_value(argc, argv, i, "--scale", &value)) {
        if (!value || parse_double_value(value, &dem->scale))
            return job_usage(j, usage, "--scale wants a number (units to metres)"), -1;
    } else if (option_value(argc, argv, i, "--crop", &value)) {
        if (!value || parse_int64_list(value, dem->crop, 4))
            return job_usage(j, usage, "--crop wants i0,j0,i1,j1"), -1;
    } else if (option_value(argc, argv, i, "--z-range", &value)) {
        if (!value || parse_double_list(value, dem->z_range, 2))
            return job_usage(j, usage, "--z-range wants ZMIN,ZMAX in metres"), -1;
        dem->has_z_range = 1;
    } else if (option_value(argc, argv, i, "--vertical-res", &value)) {
        if (!value || parse_double_value(value, &dem->vertical_res))
            return job_usage(j, usage, "--vertical-res wants metres"), -1;
    } else if (option_value(argc, argv, i, "--sea-level", &value)) {
        if (!value || parse_double_value(value, &dem->sea_level))
            return job_usage(j, usage, "--sea-level wants metres"), -1;
    } else if (option_value(argc, argv, i, "--coast-height", &value)) {
        if (!value || parse_double_value(value, &dem->coast_height))
            return job_usage(j, usage, "--coast-height wants metres"), -1;
    } else if (option_value(argc, argv, i, "--layers", &value)) {
        if (!value)
            return job_usage(j, usage, "--layers wants FILE.csv"), -1;
        a->layers = value;
    } else {
        return 0;
    }
    return 1;
}

/* The same for the options of a raw volume's import. */
static int raw_option(const job *j, int argc, char **argv, int *i, import_args *a)
{
    const char *value;
    strata_raw_options *raw = &a->raw;
    if (option_value(argc, argv, i, "--raw", &value)) {
        if (!value)
            return job_usage(j, usage, "--raw wants FILE"), -1;
        if (a->raw_file)
            return job_usage(j, usage, "--raw given twice"), -1;
        a->raw_file = value;
    } else if (option_value(argc, argv, i, "--dims", &value)) {
        if (!value || parse_int64_list(value, raw->dims, 3))
            return job_usage(j, usage, "--dims wants X,Y,Z"), -1;
        a->have_dims = 1;
    } else if (option_value(argc, argv, i, "--type", &value)) {
        if (!value || parse_type(value, &raw->type))
            return job_usage(j, usage, "--type wants uint8, uint16 or int16"), -1;
    } else if (option_value(argc, argv, i, "--endian", &value)) {
        if (!value || (strcmp(value, "little") && strcmp(value, "big")))
            return job_usage(j, usage, "--endian wants little or big"), -1;
        raw->endian = strcmp(value, "big") ? STRATA_ENDIAN_LITTLE : STRATA_ENDIAN_BIG;
    } else {
        return 0;
    }
    return 1;
}

/* The whole command line into a (a->world.cfg points at a->cfg); JOB_OK or the usage
 * error printed. */
static int parse_import_args(const job *j, int argc, char **argv, void *args)
{
    import_args *a = args;
    memset(a, 0, sizeof *a);
    strata_config_init(&a->cfg);
    strata_dem_options_init(&a->dem);
    a->raw = (strata_raw_options){{0, 0, 0}, 0, STRATA_ENDIAN_LITTLE};
    a->world = (world_options){&a->cfg, NULL, 0};
    for (int i = 2; i < argc; i++) {
        int used = dem_option(j, argc, argv, &i, a);
        if (!used)
            used = raw_option(j, argc, argv, &i, a);
        if (used < 0)
            return JOB_USAGE;
        int rc = used ? JOB_OK : parse_world_option(j, usage, argc, argv, &i, &a->world);
        if (rc)
            return rc;
    }
    if (!a->dem_file == !a->raw_file)
        return job_usage(j, usage, "give exactly one of --dem FILE and --raw FILE");
    if (a->raw_file && (!a->have_dims || !a->raw.type))
        return job_usage(j, usage, "--raw needs --dims X,Y,Z and --type");
    return JOB_OK;
}

int job_import(job *j, int argc, char **argv)
{
    import_args a;
    strata_options opt;
    int rc = job_parse(j, usage, argc, argv, parse_import_args, &a, &opt);
    if (rc)
        return rc;
    const char *path = argv[1];
    strata_material *table = NULL;
    strata_layer *layer_table = NULL;
    rc = load_tables(j, &a, &table, &layer_table);
    strata_import_stats stats;
    strata_status st = STRATA_OK;
    const char *source = a.dem_file ? a.dem_file : a.raw_file;
    if (!rc) {
        job_summary(j, "importing %s into %s on %d ranks", source, path, j->size);
        st = a.dem_file ? strata_import_dem(MPI_COMM_WORLD, path, a.dem_file, &a.dem, &a.cfg, &opt,
                                            a.world.flags, &stats, NULL)
                        : strata_import_raw(MPI_COMM_WORLD, path, a.raw_file, &a.raw, &a.cfg, &opt,
                                            a.world.flags, &stats, NULL);
    }
    free(table);
    free(layer_table);
    if (rc || st)
        return rc ? rc : job_fail(j, st, NULL);
    if (a.dem_file)
        dem_log(j, &stats);
    summary(j, path, source, &stats);
    return JOB_OK;
}
