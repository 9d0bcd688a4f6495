/* mpi_render.c: strata_render pixel for pixel against a reference drawn here.
 *
 * The world: a plane (z < 4) with a cube and a sphere on it, and a partial edge
 * chunk. The reference walks a dense copy of the geometry (built here from its
 * definition, not read from the world) cell by cell from the camera, with no
 * index and no skipping, and shades each pixel by the formulas of
 * docs/render.md. Checked at levels 0, 1 and 4 (the chunks), with a material hidden, with
 * non-cubic voxels and exaggeration, at 1, 2, 3 and 4 ranks (every rank count
 * must give the reference byte for byte); then bad cameras.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_common.h"
#include "strata.h"

enum { X = 40, Y = 36, Z = 24, PLANE = 1, CUBE = 2, BALL = 3 };
static const strata_material table[] = {
    {0, "air", {0, 0, 0}},
    {PLANE, "plane", {200, 180, 120}},
    {CUBE, "cube", {220, 40, 40}},
    {BALL, "ball", {40, 90, 230}},
};
static const double pi = 3.14159265358979323846;

static uint16_t geometry(int64_t x, int64_t y, int64_t z)
{
    if (z < 4)
        return PLANE;
    if (x >= 6 && x < 16 && y >= 6 && y < 16 && z < 14)
        return CUBE;
    double dx = (double)x + 0.5 - 27, dy = (double)y + 0.5 - 22, dz = (double)z + 0.5 - 11;
    if (dx * dx + dy * dy + dz * dz <= 7.5 * 7.5)
        return BALL;
    return 0;
}

static strata_status fill(const int64_t b[6], int edge, uint16_t *v, void *ctx, char *msg)
{
    (void)ctx, (void)msg;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++)
            for (int64_t x = b[0]; x < b[3]; x++)
                v[((z - b[2]) * edge + (y - b[1])) * edge + (x - b[0])] = geometry(x, y, z);
    return STRATA_OK;
}

/* Cells of level L: the exact mode of each 2^L block inside the world (ties to
 * the smallest id), counted here by brute force. */
typedef struct {
    int64_t n[3];
    uint16_t *mode;
} grid;

static grid level_grid(int L)
{
    grid g;
    int64_t s = (int64_t)1 << L;
    g.n[0] = (X + s - 1) / s, g.n[1] = (Y + s - 1) / s, g.n[2] = (Z + s - 1) / s;
    g.mode = malloc((size_t)(g.n[0] * g.n[1] * g.n[2]) * sizeof *g.mode);
    for (int64_t cz = 0; cz < g.n[2]; cz++)
        for (int64_t cy = 0; cy < g.n[1]; cy++)
            for (int64_t cx = 0; cx < g.n[0]; cx++) {
                int count[4] = {0, 0, 0, 0};
                for (int64_t z = cz * s; z < (cz + 1) * s && z < Z; z++)
                    for (int64_t y = cy * s; y < (cy + 1) * s && y < Y; y++)
                        for (int64_t x = cx * s; x < (cx + 1) * s && x < X; x++)
                            count[geometry(x, y, z)]++;
                int best = 0;
                for (int m = 1; m < 4; m++)
                    if (count[m] > count[best])
                        best = m;
                g.mode[(cz * g.n[1] + cy) * g.n[0] + cx] = (uint16_t)best;
            }
    return g;
}

/* Walk cells from o (cell units) along unit d, from outside the grid too; the
 * first cell not empty. Returns 1 on a hit with the cell, its material, the
 * distance (cell units) and the axis of the step into it (-1: the start cell). */
static int walk(const grid *g, const uint8_t *empty, const double o[3], const double d[3],
                int64_t v[3], uint16_t *m, double *t_out, int *axis)
{
    int64_t nb[3];
    int s[3];
    double inv[3];
    for (int a = 0; a < 3; a++) {
        v[a] = (int64_t)floor(o[a]);
        s[a] = d[a] > 0 ? 1 : d[a] < 0 ? -1 : 0;
        nb[a] = s[a] > 0 ? v[a] + 1 : v[a];
        inv[a] = s[a] ? 1 / d[a] : 0; /* docs/render.md: (b - o) times 1 / d */
    }
    double t = 0;
    *axis = -1;
    for (;;) {
        int in = 1;
        for (int a = 0; a < 3; a++) {
            if (v[a] < 0 || v[a] >= g->n[a]) {
                in = 0;
                if ((v[a] < 0 && s[a] <= 0) || (v[a] >= g->n[a] && s[a] >= 0))
                    return 0; /* outside and moving away */
            }
        }
        if (in && !empty[ *m = g->mode[(v[2] * g->n[1] + v[1]) * g->n[0] + v[0]]]) {
            *t_out = t;
            return 1;
        }
        int e = -1;
        double best = INFINITY;
        for (int a = 0; a < 3; a++) {
            double c = s[a] ? ((double)nb[a] - o[a]) * inv[a] : INFINITY;
            if (s[a] && (e < 0 || c < best))
                e = a, best = c;
        }
        v[e] += s[e];
        nb[e] += s[e];
        t = best;
        *axis = e;
    }
}

static void unit(const double d[3], double u[3])
{
    double len = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int a = 0; a < 3; a++)
        u[a] = d[a] / len;
}

static void cross(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

/* The default camera (stats of a render without one) frames the box of the
 * world: every corner projects inside the picture, at most frame_fill of the
 * half width and height from its centre, and the corners reach at least 0.9 of
 * it along one axis (docs/render.md), the box's picture centred within 2 %. */
static void check_framing(const strata_render_options *o, const strata_render_stats *st,
                          const double vs[3], const char *what)
{
    const int64_t dims[3] = {X, Y, Z};
    double scale[3], fd[3], f[3], r[3], u[3];
    for (int a = 0; a < 3; a++) {
        scale[a] = vs[a] * (a == 2 ? st->exaggeration : 1);
        fd[a] = (st->look_at[a] - st->from[a]) * scale[a];
    }
    unit(fd, f);
    cross(f, st->up, r);
    unit(r, r);
    cross(r, f, u);
    const double ty = tan(st->fov * pi / 360), tx = ty * o->width / o->height;
    double lo[2] = {1e9, 1e9}, hi[2] = {-1e9, -1e9};
    for (int k = 0; k < 8; k++) {
        double c[3], s[3] = {0, 0, 0};
        for (int a = 0; a < 3; a++)
            c[a] = ((k >> a & 1) * (double)dims[a] - st->from[a]) * scale[a];
        for (int a = 0; a < 3; a++)
            s[0] += c[a] * r[a], s[1] += c[a] * u[a], s[2] += c[a] * f[a];
        MT_CHECK(s[2] > 0, "%s: corner %d behind the camera", what, k);
        const double p[2] = {s[0] / s[2] / tx, s[1] / s[2] / ty};
        for (int q = 0; q < 2; q++) {
            lo[q] = fmin(lo[q], p[q]), hi[q] = fmax(hi[q], p[q]);
            MT_CHECK(fabs(p[q]) <= 0.94 + 1e-9, "%s: corner %d drawn at %g of the half %s", what, k,
                     p[q], q ? "height" : "width");
        }
    }
    MT_CHECK(fmax(hi[0] - lo[0], hi[1] - lo[1]) >= 2 * 0.9,
             "%s: the box fills only %g x %g of the picture", what, (hi[0] - lo[0]) / 2,
             (hi[1] - lo[1]) / 2);
    for (int q = 0; q < 2; q++)
        MT_CHECK(fabs(lo[q] + hi[q]) < 0.04, "%s: the box's picture is off centre (%g .. %g)", what,
                 lo[q], hi[q]);
}

/* The reference image, drawn by docs/render.md's formulas. */
static void reference(const strata_render_options *o, const double vs[3], uint8_t *rgb,
                      uint16_t *ids)
{
    const int L = o->level;
    grid g = level_grid(L);
    uint8_t empty[4] = {1, 0, 0, 0};
    for (size_t i = 0; i < o->hidden_count; i++)
        empty[o->hidden[i]] = 1;
    double scale[3], f[3], r[3], u[3], fd[3];
    for (int a = 0; a < 3; a++) {
        scale[a] = vs[a] * (a == 2 ? o->exaggeration : 1);
        fd[a] = (o->look_at[a] - o->from[a]) * scale[a];
    }
    unit(fd, f);
    cross(f, o->up, r);
    double rl = sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    for (int a = 0; a < 3; a++)
        r[a] /= rl;
    cross(r, f, u);
    double tan_half = tan(o->fov * pi / 360), aspect = (double)o->width / (double)o->height;
    double az = o->sun_azimuth * pi / 180, el = o->sun_elevation * pi / 180;
    double sun[3] = {sin(az) * cos(el), cos(az) * cos(el), sin(el)}, sv[3], su[3];
    for (int a = 0; a < 3; a++)
        sv[a] = sun[a] / scale[a];
    unit(sv, su);
    double cell = ldexp(1, L), oc[3];
    for (int a = 0; a < 3; a++)
        oc[a] = ldexp(o->from[a], -L);
    for (int j = 0; j < o->height; j++)
        for (int i = 0; i < o->width; i++) {
            uint8_t *px = rgb + 3 * ((size_t)j * o->width + i);
            double sx = (2 * (i + 0.5) / o->width - 1) * tan_half * aspect;
            double sy = (1 - 2 * (j + 0.5) / o->height) * tan_half, d[3], du[3];
            for (int a = 0; a < 3; a++)
                d[a] = (f[a] + sx * r[a] + sy * u[a]) / scale[a];
            unit(d, du);
            int64_t v[3];
            uint16_t m;
            double t;
            int axis;
            ids[(size_t)j * o->width + i] = 0;
            if (!walk(&g, empty, oc, du, v, &m, &t, &axis)) {
                memset(px, 255, 3);
                continue;
            }
            ids[(size_t)j * o->width + i] = m;
            int n[3] = {0, 0, 0};
            if (axis >= 0)
                n[axis] = du[axis] > 0 ? -1 : 1;
            double lambert = 1;
            if (axis >= 0) {
                lambert = n[0] * sun[0] + n[1] * sun[1] + n[2] * sun[2];
                lambert = lambert > 0 ? lambert : 0;
                if (lambert > 0 && o->shadows) {
                    double p[3], pc[3];
                    for (int a = 0; a < 3; a++) {
                        double lo = (double)v[a] * cell, hi = lo + cell;
                        if (n[a] > 0)
                            p[a] = hi;
                        else if (n[a] < 0)
                            p[a] = nextafter(lo, -INFINITY);
                        else {
                            double q = o->from[a] + ldexp(t, L) * du[a];
                            double top = nextafter(hi, -INFINITY);
                            p[a] = q < lo ? lo : q > top ? top : q;
                        }
                        pc[a] = ldexp(p[a], -L);
                    }
                    int64_t sv2[3];
                    uint16_t sm;
                    double st;
                    int sa;
                    if (walk(&g, empty, pc, su, sv2, &sm, &st, &sa))
                        lambert = 0;
                }
            }
            double light = 0.35 + 0.65 * lambert;
            for (int a = 0; a < 3; a++) {
                double c = table[m].rgb[a] * light + 0.5;
                px[a] = (uint8_t)(c > 255 ? 255 : c);
            }
        }
    free(g.mode);
}

static void check_image(strata_world *w, const strata_render_options *o, const double vs[3],
                        const char *what, size_t min_shown)
{
    size_t n = (size_t)o->width * o->height;
    uint8_t *got = malloc(n * 3), *want = malloc(n * 3);
    uint16_t *ids = malloc(n * sizeof *ids), *want_ids = malloc(n * sizeof *ids);
    strata_render_stats stats;
    strata_status st =
        strata_render(w, o, mt_rank == 0 ? got : NULL, mt_rank == 0 ? ids : NULL, &stats);
    MT_CHECK(st == STRATA_OK, "%s: render: %s", what, strata_last_error(w));
    if (mt_rank == 0 && !st) {
        reference(o, vs, want, want_ids);
        size_t bad = 0, first = n, shown = 0;
        for (size_t i = 0; i < n; i++) {
            shown += want_ids[i] != 0;
            if (memcmp(got + 3 * i, want + 3 * i, 3) || ids[i] != want_ids[i]) {
                bad++;
                first = first < n ? first : i;
            }
        }
        MT_CHECK(bad == 0,
                 "%s: %zu of %zu pixels differ from the reference; first (%zu, %zu): got "
                 "%u,%u,%u id %u, want %u,%u,%u id %u",
                 what, bad, n, first % (size_t)o->width, first / (size_t)o->width, got[3 * first],
                 got[3 * first + 1], got[3 * first + 2], ids[first], want[3 * first],
                 want[3 * first + 1], want[3 * first + 2], want_ids[first]);
        MT_CHECK(shown >= min_shown && shown == stats.hits, "%s: %zu pixels show the world (%llu)",
                 what, shown, (unsigned long long)stats.hits);
    }
    free(got), free(want), free(ids), free(want_ids);
}

static strata_world *make_world(const char *dir, const char *name, const double vs[3])
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = X, cfg.dims[1] = Y, cfg.dims[2] = Z;
    cfg.chunk_edge = 16;
    memcpy(cfg.voxel_size, vs, sizeof cfg.voxel_size);
    cfg.materials = table;
    cfg.material_count = sizeof table / sizeof table[0];
    strata_world *w = NULL;
    MT_CHECK(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w) ==
                 STRATA_OK,
             "create %s", path);
    MT_CHECK(strata_fill(w, NULL, fill, NULL) == STRATA_OK, "fill: %s", strata_last_error(w));
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    return w;
}

static void check_bad_cameras(strata_world *w, strata_render_options o)
{
    uint8_t *rgb = malloc((size_t)o.width * o.height * 3);
    struct {
        const char *what;
        double from[3], at[3], up[3], fov;
    } bad[] = {
        {"looking at nothing", {20, 18, 60}, {20, 18, 100}, {0, 1, 0}, 40},
        {"looking away", {-50, -50, 30}, {-100, -100, 30}, {0, 0, 1}, 40},
        {"zero up vector", {-30, -30, 50}, {20, 18, 5}, {0, 0, 0}, 40},
        {"up along the view", {20, 18, 60}, {20, 18, 0}, {0, 0, 1}, 40},
        {"fov 0", {-30, -30, 50}, {20, 18, 5}, {0, 0, 1}, 0},
        {"fov 180", {-30, -30, 50}, {20, 18, 5}, {0, 0, 1}, 180},
        {"from at look-at", {20, 18, 5}, {20, 18, 5}, {0, 0, 1}, 40},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memcpy(o.from, bad[k].from, sizeof o.from);
        memcpy(o.look_at, bad[k].at, sizeof o.look_at);
        memcpy(o.up, bad[k].up, sizeof o.up);
        o.fov = bad[k].fov;
        o.has_camera = 1;
        strata_status st = strata_render(w, &o, rgb, NULL, NULL);
        MT_CHECK(st == STRATA_ERR_ARG, "%s: want STRATA_ERR_ARG, got %s", bad[k].what,
                 strata_strerror(st));
        const char *msg = strata_last_error(w);
        const char *expect = k < 2   ? "sees none of the world"
                             : k < 4 ? "up vector"
                             : k < 6 ? "field of view"
                                     : "looks at itself";
        MT_CHECK(strstr(msg, expect) != NULL, "%s: message '%s' lacks '%s'", bad[k].what, msg,
                 expect);
    }
    o.has_camera = 0;
    o.level = 5;
    MT_CHECK(strata_render(w, &o, rgb, NULL, NULL) == STRATA_ERR_ARG, "level 5 > chunk level 4");
    free(rgb);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    const double cubic[3] = {1, 1, 1}, flat[3] = {4, 4, 1};
    strata_world *w = make_world(dir, "shapes", cubic);
    strata_render_options o;
    strata_render_options_init(&o);
    o.width = 96, o.height = 72;
    const size_t big = (size_t)o.width * o.height / 4 + 1; /* pixels that show the world */
    o.has_camera = 1;
    const double from[3] = {-8, -14, 32}, at[3] = {20, 18, 6}, up[3] = {0, 0, 1};
    memcpy(o.from, from, sizeof from);
    memcpy(o.look_at, at, sizeof at);
    memcpy(o.up, up, sizeof up);
    o.fov = 45;
    o.exaggeration = 1;
    check_image(w, &o, cubic, "level 0", big);
    o.level = 1;
    check_image(w, &o, cubic, "level 1", big);
    /* The chunk level: cells are the chunks' rows (their dominant material); air
     * dominates every chunk, so the picture is all sky, as the reference's. */
    o.level = 4;
    check_image(w, &o, cubic, "level 4", 0);
    o.level = 0;
    uint16_t hide[1] = {CUBE};
    o.hidden = hide, o.hidden_count = 1;
    o.sun_azimuth = 120, o.sun_elevation = 30;
    check_image(w, &o, cubic, "cube hidden, low sun", big);
    o.hidden = NULL, o.hidden_count = 0;
    o.shadows = 0;
    check_image(w, &o, cubic, "no shadows", big);
    o.shadows = 1;
    /* The default camera frames the world: every corner of the box is drawn inside
     * the picture, which it fills, so the image shows the world. */
    o.has_camera = 0;
    strata_render_stats stats;
    uint8_t *rgb = malloc((size_t)o.width * o.height * 3);
    MT_CHECK(strata_render(w, &o, rgb, NULL, &stats) == STRATA_OK, "default camera: %s",
             strata_last_error(w));
    MT_CHECK(stats.exaggeration == 1 && stats.hits > 0,
             "default camera: exaggeration %g, %llu hits", stats.exaggeration,
             (unsigned long long)stats.hits);
    check_framing(&o, &stats, cubic, "default camera");
    free(rgb);
    check_bad_cameras(w, o);
    strata_world_close(w);

    /* Non-cubic voxels: 4 x 4 x 1 m, drawn with z exaggerated 3 times. */
    w = make_world(dir, "flat", flat);
    o.has_camera = 1;
    o.exaggeration = 3;
    check_image(w, &o, flat, "non-cubic voxels, exaggeration 3", big);
    o.exaggeration = 0;
    o.has_camera = 0;
    rgb = malloc((size_t)o.width * o.height * 3);
    MT_CHECK(strata_render(w, &o, rgb, NULL, &stats) == STRATA_OK, "auto: %s",
             strata_last_error(w));
    /* docs/render.md: longer side 160 m, height 24 m: 160 / 96 = 1.666.. -> 1.7 */
    MT_CHECK(fabs(stats.exaggeration - 1.7) < 1e-9, "automatic exaggeration %g, want 1.7",
             stats.exaggeration);
    check_framing(&o, &stats, flat, "default camera, non-cubic voxels");
    free(rgb);
    strata_world_close(w);
    return mt_finish("mpi_render");
}
