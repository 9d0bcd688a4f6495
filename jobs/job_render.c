/* job_render.c: `strata render WORLD -o OUT.png`: a perspective picture of the world. */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobs.h"
#include "png.h"

static const char usage[] =
    "strata render WORLD -o OUT.png [--size W,H] [--camera FROM|LOOK-AT|UP|FOV]\n"
    "    [--sun AZIMUTH,ELEVATION] [--lod L] [--units m] [--hide MATERIALS]\n"
    "    [--exaggeration X] [--no-shadows]\n"
    "  FROM, LOOK-AT: x,y,z (voxels, or metres with --units m); UP: dx,dy,dz; FOV: vertical\n"
    "  degrees. Default: the whole world from above at an angle. MATERIALS: ids or names,\n"
    "  comma-separated, drawn transparent like air (e.g. --hide water).";

static const char *const axes[3] = {"x", "y", "z"}, *const components[3] = {"dx", "dy", "dz"};

/* --camera "x,y,z|x,y,z|dx,dy,dz|fov" */
static int parse_camera(const job *j, const char *value, strata_render_options *o, double from[3],
                        double at[3])
{
    char text[512];
    if (!value || strlen(value) >= sizeof text)
        return job_usage(j, usage, "--camera wants FROM|LOOK-AT|UP|FOV");
    strcpy(text, value);
    char *part[4], *save = NULL, *p = text;
    int n = 0;
    for (char *tok = strtok_r(p, "|", &save); tok && n < 5; tok = strtok_r(NULL, "|", &save))
        part[n < 4 ? n : 3] = tok, n++;
    if (n != 4)
        return job_usage(
            j, usage, "--camera wants four parts FROM|LOOK-AT|UP|FOV separated by '|' (got %d)", n);
    int rc;
    if ((rc = job_double_triple(j, usage, "--camera FROM", axes, part[0], from)) ||
        (rc = job_double_triple(j, usage, "--camera LOOK-AT", axes, part[1], at)) ||
        (rc = job_double_triple(j, usage, "--camera UP", components, part[2], o->up)))
        return rc;
    if (parse_double_value(part[3], &o->fov))
        return job_usage(j, usage, "--camera FOV '%s' is not a number", part[3]);
    o->has_camera = 1;
    return JOB_OK;
}

/* --hide a,b,c: ids or material names of the world's table. */
static int parse_hidden(const job *j, const strata_world *w, const char *value, uint16_t **out,
                        size_t *n)
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    size_t cap = strlen(value) / 2 + 2;
    uint16_t *ids = malloc(cap * sizeof *ids);
    char *text = strdup(value);
    if (!ids || !text) {
        free(ids), free(text);
        job_error(j, "out of memory");
        return JOB_FAILED;
    }
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int64_t id;
        int found = 0;
        if (!parse_int64(tok, &id) && id >= 0 && id <= 65535) {
            ids[(*n)++] = (uint16_t)id;
            continue;
        }
        for (size_t i = 0; i < cfg.material_count && !found; i++)
            if (!strcasecmp(cfg.materials[i].name, tok)) {
                ids[(*n)++] = cfg.materials[i].id;
                found = 1;
            }
        if (!found) {
            int rc = job_usage(j, usage,
                               "--hide: '%s' is neither a material id nor a name in "
                               "the world's material table",
                               tok);
            free(ids), free(text);
            return rc;
        }
    }
    free(text);
    *out = ids;
    return JOB_OK;
}

/* What the command line asks for. */
typedef struct {
    strata_render_options o;
    const char *out, *hide;
    double from[3], at[3]; /* --camera's FROM and LOOK-AT as given (metres with metres) */
    int metres;
} render_args;

/* The options of the picture itself: --size, --sun, --lod, --exaggeration,
 * --no-shadows. 1 consumed, 0 not one of these, -1 bad value (usage printed). */
static int picture_option(const job *j, int argc, char **argv, int *i, strata_render_options *o)
{
    const char *value;
    if (option_value(argc, argv, i, "--size", &value)) {
        int64_t s[2];
        if (!value || parse_int64_list(value, s, 2) || s[0] < 1 || s[1] < 1 || s[0] > 8192 ||
            s[1] > 8192)
            return job_usage(j, usage, "--size wants W,H, each 1..8192"), -1;
        o->width = (int)s[0], o->height = (int)s[1];
    } else if (option_value(argc, argv, i, "--sun", &value)) {
        double s[2];
        if (!value || parse_double_list(value, s, 2) || !(s[1] >= -90 && s[1] <= 90))
            return job_usage(j, usage,
                             "--sun wants AZIMUTH,ELEVATION in degrees (elevation -90..90)"),
                   -1;
        o->sun_azimuth = s[0], o->sun_elevation = s[1];
    } else if (option_value(argc, argv, i, "--lod", &value)) {
        int64_t l;
        if (!value || parse_int64(value, &l) || l < 0 || l > 8)
            return job_usage(j, usage, "--lod wants a level 0..log2(chunk edge)"), -1;
        o->level = (int)l;
    } else if (option_value(argc, argv, i, "--exaggeration", &value)) {
        if (!value || parse_double_value(value, &o->exaggeration) || !(o->exaggeration > 0))
            return job_usage(j, usage, "--exaggeration wants a number > 0"), -1;
    } else if (!strcmp(argv[*i], "--no-shadows")) {
        o->shadows = 0;
    } else {
        return 0;
    }
    return 1;
}

/* The whole command line into a; JOB_OK or the usage error printed. */
static int parse_render_args(const job *j, int argc, char **argv, void *args)
{
    render_args *a = args;
    memset(a, 0, sizeof *a);
    strata_render_options_init(&a->o);
    int rc = job_units(j, usage, argc, argv, &a->metres);
    for (int i = 2; i < argc && !rc; i++) {
        const char *value;
        int used = picture_option(j, argc, argv, &i, &a->o);
        if (used < 0)
            rc = JOB_USAGE;
        else if (used || skip_open_option(argc, argv, &i))
            continue;
        else if (option_value(argc, argv, &i, "-o", &value) ||
                 option_value(argc, argv, &i, "--out", &value))
            rc = (a->out = value) ? JOB_OK : job_usage(j, usage, "-o wants a file name");
        else if (option_value(argc, argv, &i, "--camera", &value))
            rc = parse_camera(j, value, &a->o, a->from, a->at);
        else if (option_value(argc, argv, &i, "--hide", &value))
            rc = (a->hide = value) ? JOB_OK
                                   : job_usage(j, usage, "--hide wants material ids or names");
        else
            rc = job_usage(j, usage, "unknown option %s", argv[i]);
    }
    if (!rc && !a->out)
        rc = job_usage(j, usage, "-o OUT.png is required");
    return rc;
}

/* The options that need the open world: hidden materials by name, the camera in voxels.
 * *hidden: the ids (malloc'ed). Local; JOB_OK or the usage error printed. */
static int resolve_render_args(const job *j, const strata_world *w, render_args *a,
                               uint16_t **hidden)
{
    *hidden = NULL;
    int rc = a->hide ? parse_hidden(j, w, a->hide, hidden, &a->o.hidden_count) : JOB_OK;
    if (rc)
        return rc;
    a->o.hidden = *hidden;
    if (a->o.has_camera && a->metres) {
        job_metres_to_voxels(w, a->from, a->o.from);
        job_metres_to_voxels(w, a->at, a->o.look_at);
    } else if (a->o.has_camera) {
        memcpy(a->o.from, a->from, sizeof a->from);
        memcpy(a->o.look_at, a->at, sizeof a->at);
    }
    return JOB_OK;
}

/* Draw the picture and write it on rank 0. Collective; JOB_OK or JOB_FAILED everywhere. */
static int draw(const job *j, strata_world *w, const render_args *a, strata_render_stats *stats)
{
    size_t pixels = (size_t)a->o.width * (size_t)a->o.height;
    uint8_t *rgb = j->rank == 0 ? malloc(pixels * 3) : NULL;
    uint16_t *ids = j->rank == 0 ? malloc(pixels * sizeof *ids) : NULL;
    if (j->rank == 0 && (!rgb || !ids)) {
        free(rgb), free(ids);
        rgb = NULL, ids = NULL; /* strata_render reports the NULL image on every rank */
    }
    strata_status st = strata_render(w, &a->o, rgb, ids, stats);
    int rc;
    if (st) {
        rc = job_fail(j, st, w);
    } else {
        char error[1024];
        int wrote = 0;
        if (j->rank == 0)
            wrote = png_write_picture(a->out, rgb, ids, a->o.width, a->o.height, w, error,
                                      sizeof error);
        if (wrote)
            job_error(j, "%s", error);
        rc = job_agree(wrote ? JOB_FAILED : JOB_OK);
    }
    free(rgb), free(ids);
    return rc;
}

int job_render(job *j, int argc, char **argv)
{
    uint16_t *hidden = NULL; /* --hide's ids */
    render_args a;
    strata_world *w;
    int rc = job_parse_open(j, usage, argc, argv, parse_render_args, &a, STRATA_READ, &w);
    if (rc)
        return rc;
    strata_render_stats stats;
    rc = resolve_render_args(j, w, &a, &hidden);
    if (!rc)
        rc = draw(j, w, &a, &stats);
    const strata_render_options *o = &a.o;
    if (!rc)
        job_summary(j,
                    "render: %s, %d x %d at LOD %d, vertical exaggeration %gx (%s), camera from "
                    "(%.1f, %.1f, %.1f) at (%.1f, %.1f, %.1f) up (%g, %g, %g) fov %g (voxels): "
                    "%" PRIu64 " rays (%" PRIu64 " steps), %" PRIu64
                    " pixels show the world, %.3f s render, %.3f s total",
                    a.out, o->width, o->height, o->level, stats.exaggeration,
                    o->exaggeration > 0 ? "--exaggeration" : "automatic", stats.from[0],
                    stats.from[1], stats.from[2], stats.look_at[0], stats.look_at[1],
                    stats.look_at[2], stats.up[0], stats.up[1], stats.up[2], stats.fov, stats.rays,
                    stats.steps, stats.hits, stats.seconds, MPI_Wtime() - j->start);
    free(hidden);
    strata_world_close(w);
    return rc;
}
