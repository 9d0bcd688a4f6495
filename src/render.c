/* render.c: perspective images of a world through the index's rays.
 *
 * Every rank casts the rays of its band of columns (column_bands: about equal
 * estimated work) with its own caster (src/index/ray.h): no communication until
 * the rows are gathered on rank 0. A pixel depends only on its ray, so the image is the same at any
 * rank count. The formulas are in docs/render.md (tests/mpi/mpi_render.c
 * recomputes them with a plain voxel walk).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/octree.h"
#include "index/ray.h"
#include "alloc.h"
#include "world.h"

enum { RENDER_SIDE_MAX = 8192 };
static const double pi = 3.14159265358979323846;
/* The default camera: from the south-south-west, 35 degrees above the horizon,
 * the world's box filling 94 % of the picture's height or width. The default
 * sun shines from behind the camera's left (40 degrees to its left, 40 degrees
 * high): the faces the camera sees are lit (the box's south face, whose layers
 * a sun from the north-west left in shade) and slopes still shade apart. */
static const double frame_azimuth = 200, frame_elevation = 35, frame_fov = 40, frame_fill = 0.94;
static const double sun_azimuth = 240, sun_elevation = 40;
static const double ambient = 0.35, diffuse = 0.65;
static const uint8_t sky[3] = {255, 255, 255};

void strata_render_options_init(strata_render_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->width = 1024;
    opt->height = 768;
    opt->fov = frame_fov;
    opt->up[2] = 1;
    opt->sun_azimuth = sun_azimuth;
    opt->sun_elevation = sun_elevation;
    opt->shadows = 1;
}

/* Round to two significant digits. */
static double two_digits(double x)
{
    double p = pow(10, floor(log10(x)) - 1);
    return round(x / p) * p;
}

/* docs/render.md: 1 for cubic voxels; else the box's height drawn a quarter of
 * its longer horizontal side, at least 1, at most what makes voxels cubes. */
static double auto_exaggeration(const int64_t dims[3], const double vs[3])
{
    if (vs[0] == vs[2] && vs[1] == vs[2])
        return 1;
    double h = fmax((double)dims[0] * vs[0], (double)dims[1] * vs[1]);
    double v = (double)dims[2] * vs[2];
    double e = two_digits(h / (4 * v)), cubes = fmax(vs[0], vs[1]) / vs[2];
    if (cubes >= 1 && e > cubes)
        e = cubes;
    return e < 1 ? 1 : e;
}

static void cross(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static double norm(const double a[3])
{
    return sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
}

/*
 * The default camera (docs/render.md): looks from azimuth frame_azimuth,
 * frame_elevation above the horizon, at the world's box (drawn space), panned
 * across the view and as near as lets every corner of the box project inside
 * frame_fill of the picture's half width and half height, the box's picture
 * centred. With the pan (a, b) along r and u and the distance D, corner c
 * (relative to the box's centre) is drawn at ((c.r - a) / (c.f + D),
 * (c.u - b) / (c.f + D)) in units of tan; D is the least that keeps every
 * corner inside, and the pan is moved, four times, to the middle of the
 * corners' extent (D recomputed after each move, so that the corners stay
 * inside).
 */
static void frame_world(const int64_t dims[3], const double scale[3], double aspect,
                        strata_render_stats *used)
{
    const double az = frame_azimuth * pi / 180, el = frame_elevation * pi / 180;
    const double f[3] = {-sin(az) * cos(el), -cos(az) * cos(el), -sin(el)};
    const double tan_y = tan(frame_fov * pi / 360), tan_x = tan_y * aspect;
    double r[3], u[3], z[3] = {0, 0, 1}, centre[3], corner[8][3];
    cross(f, z, r);
    const double rn = norm(r);
    for (int a = 0; a < 3; a++)
        r[a] /= rn;
    cross(r, f, u);
    for (int a = 0; a < 3; a++)
        centre[a] = (double)dims[a] / 2;
    for (int k = 0; k < 8; k++)
        for (int a = 0; a < 3; a++)
            corner[k][a] = (k >> a & 1 ? 1 : -1) * centre[a] * scale[a];
    double pan_r = 0, pan_u = 0, dist = 0;
    for (int round = 0; round <= 4; round++) {
        dist = 0;
        for (int k = 0; k < 8; k++) {
            const double cf = dot(corner[k], f);
            dist = fmax(dist, fabs(dot(corner[k], r) - pan_r) / (frame_fill * tan_x) - cf);
            dist = fmax(dist, fabs(dot(corner[k], u) - pan_u) / (frame_fill * tan_y) - cf);
        }
        if (round == 4)
            break;
        double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
        for (int k = 0; k < 8; k++) {
            const double depth = dot(corner[k], f) + dist;
            const double s[2] = {(dot(corner[k], r) - pan_r) / depth,
                                 (dot(corner[k], u) - pan_u) / depth};
            for (int q = 0; q < 2; q++)
                lo[q] = fmin(lo[q], s[q]), hi[q] = fmax(hi[q], s[q]);
        }
        pan_r += (lo[0] + hi[0]) / 2 * dist;
        pan_u += (lo[1] + hi[1]) / 2 * dist;
    }
    for (int a = 0; a < 3; a++) {
        const double target = pan_r * r[a] + pan_u * u[a];
        used->look_at[a] = centre[a] + target / scale[a];
        used->from[a] = centre[a] + (target - dist * f[a]) / scale[a];
        used->up[a] = a == 2;
    }
    used->fov = frame_fov;
}

/* The camera in drawn space (metres, z exaggerated): position, and the view,
 * right and up unit vectors. */
typedef struct {
    double scale[3]; /* drawn units per voxel along each axis */
    double from[3];  /* voxel coordinates */
    double f[3], r[3], u[3];
    double tan_half, aspect;
    double sun[3];       /* unit vector toward the sun, drawn space */
    double sun_voxel[3]; /* the same direction in voxel space */
} camera;

static strata_status setup_camera(strata_world *w, const strata_render_options *o,
                                  strata_render_stats *used, camera *cam)
{
    const int64_t *dims = w->committed.dims;
    const double *vs = w->committed.voxel_size;
    double e = o->exaggeration > 0 ? o->exaggeration : auto_exaggeration(dims, vs);
    used->exaggeration = e;
    for (int a = 0; a < 3; a++)
        cam->scale[a] = vs[a] * (a == 2 ? e : 1);
    cam->aspect = (double)o->width / (double)o->height;
    if (o->has_camera) {
        memcpy(used->from, o->from, sizeof used->from);
        memcpy(used->look_at, o->look_at, sizeof used->look_at);
        memcpy(used->up, o->up, sizeof used->up);
        used->fov = o->fov;
    } else {
        frame_world(dims, cam->scale, cam->aspect, used);
    }
    double fd[3];
    for (int a = 0; a < 3; a++) {
        cam->from[a] = used->from[a];
        fd[a] = (used->look_at[a] - used->from[a]) * cam->scale[a];
        if (!isfinite(used->from[a]) || !isfinite(used->look_at[a]) || !isfinite(used->up[a]))
            return WORLD_FAIL(w, STRATA_ERR_ARG,
                              "render: the camera's from, look-at and up must "
                              "be finite");
    }
    double length = norm(fd);
    if (!(length > 0))
        return WORLD_FAIL(w, STRATA_ERR_ARG,
                          "render: the camera at (%g, %g, %g) looks at itself: from and look-at "
                          "must differ",
                          used->from[0], used->from[1], used->from[2]);
    for (int a = 0; a < 3; a++)
        cam->f[a] = fd[a] / length;
    cross(cam->f, used->up, cam->r);
    length = norm(cam->r);
    if (!(length > 0))
        return WORLD_FAIL(w, STRATA_ERR_ARG,
                          "render: the up vector (%g, %g, %g) is %s: it must be non-zero and not "
                          "along the view direction",
                          used->up[0], used->up[1], used->up[2],
                          norm(used->up) > 0 ? "along the view direction" : "zero");
    for (int a = 0; a < 3; a++)
        cam->r[a] /= length;
    cross(cam->r, cam->f, cam->u);
    if (!(used->fov > 0 && used->fov < 180))
        return WORLD_FAIL(w, STRATA_ERR_ARG,
                          "render: field of view %g degrees is out of range: it must lie in "
                          "(0, 180)",
                          used->fov);
    cam->tan_half = tan(used->fov * pi / 360);
    double az = o->sun_azimuth * pi / 180, el = o->sun_elevation * pi / 180;
    cam->sun[0] = sin(az) * cos(el);
    cam->sun[1] = cos(az) * cos(el);
    cam->sun[2] = sin(el);
    for (int a = 0; a < 3; a++)
        cam->sun_voxel[a] = cam->sun[a] / cam->scale[a];
    return STRATA_OK;
}

/* The direction (voxel space) of pixel (i, j)'s ray. */
static void pixel_direction(const camera *cam, int i, int j, int width, int height, double d[3])
{
    double sx = (2 * (i + 0.5) / width - 1) * cam->tan_half * cam->aspect;
    double sy = (1 - 2 * (j + 0.5) / height) * cam->tan_half;
    for (int a = 0; a < 3; a++)
        d[a] = (cam->f[a] + sx * cam->r[a] + sy * cam->u[a]) / cam->scale[a];
}

/* A material's colour (cached per id). */
typedef struct {
    const strata_world *w;
    uint8_t (*rgb)[4]; /* [3] = 1 once looked up */
} palette;

static const uint8_t *colour_of(palette *p, uint16_t id)
{
    if (!p->rgb[id][3]) {
        strata_material m;
        if (strata_material_get(p->w, id, &m))
            memset(m.rgb, 128, 3);
        memcpy(p->rgb[id], m.rgb, 3);
        p->rgb[id][3] = 1;
    }
    return p->rgb[id];
}

/* Where the shadow ray of a hit starts: on the face the ray entered through,
 * just outside the cell (docs/render.md). */
static void shadow_origin(const camera *cam, const double unit[3], const strata_ray_hit *hit,
                          int level, double p[3])
{
    for (int a = 0; a < 3; a++) {
        double lo = (double)hit->voxel[a], hi = lo + (double)((int64_t)1 << level);
        if (hit->normal[a] > 0) {
            p[a] = hi;
        } else if (hit->normal[a] < 0) {
            p[a] = nextafter(lo, -INFINITY);
        } else {
            double q = cam->from[a] + hit->distance * unit[a], top = nextafter(hi, -INFINITY);
            p[a] = q < lo ? lo : q > top ? top : q;
        }
    }
}

/*
 * Columns of each rank: rank r draws columns [first[r], first[r + 1]) of every
 * row, in bands of about equal work, so that each rank's rays cross about
 * 1/size of the chunks (interleaved rows made every rank read and decode nearly
 * every chunk; bands of rows are unequal, the far rows crossing more chunks
 * each). The work of each group of PROBE_COLUMNS columns is estimated from one
 * ray in every PROBE_ROWS-th row, and its shadow ray, cast at the chunk level
 * (chunks' rows only: no pyramid or voxel is read): 1 + its steps. Bands of
 * equal columns that meet the world (the first version) left rank 0 1.5 times
 * rank 1's steps with the default camera. Computed alike on every rank; the
 * index must be ensured.
 */
enum { PROBE_COLUMNS = 4, PROBE_ROWS = 16 };
static strata_status column_bands(strata_world *w, const camera *cam,
                                  const strata_render_options *o, int *first)
{
    const int P = w->size, groups = (o->width + PROBE_COLUMNS - 1) / PROBE_COLUMNS;
    uint64_t *work = strata_calloc((size_t)groups, sizeof *work);
    if (!work)
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "render: cannot estimate the work of %d columns",
                          o->width);
    ray_caster c;
    strata_status st = ray_caster_init(w, w->edge_bits, o->hidden, o->hidden_count,
                                       (size_t)groups * (size_t)o->height / PROBE_ROWS, &c);
    double sun_unit[3];
    ray_unit_direction(cam->sun_voxel, sun_unit);
    uint64_t total = 0;
    for (int g = 0; !st && g < groups; g++) {
        int i = g * PROBE_COLUMNS + PROBE_COLUMNS / 2;
        i = i < o->width ? i : o->width - 1;
        for (int j = PROBE_ROWS / 2 < o->height ? PROBE_ROWS / 2 : 0; !st && j < o->height;
             j += PROBE_ROWS) {
            double d[3], unit[3];
            strata_ray_hit hit, shade;
            work[g]++;
            pixel_direction(cam, i, j, o->width, o->height, d);
            if (!ray_unit_direction(d, unit) ||
                (st = ray_cast(&c, cam->from, unit, INFINITY, &hit)))
                continue;
            work[g] += hit.steps;
            double lambert = 0;
            for (int a = 0; a < 3; a++)
                lambert += hit.normal[a] * cam->sun[a];
            if (hit.hit && lambert > 0 && o->shadows) {
                double p[3];
                shadow_origin(cam, unit, &hit, w->edge_bits, p);
                if (!(st = ray_cast(&c, p, sun_unit, INFINITY, &shade)))
                    work[g] += 1 + shade.steps;
            }
        }
        total += work[g];
    }
    ray_caster_free(&c);
    /* rank r starts at the first group before which r / P of the work lies */
    uint64_t before = 0;
    int r = 1;
    first[0] = 0;
    for (int g = 0; g < groups && r < P; g++) {
        while (r < P && before * (uint64_t)P >= total * (uint64_t)r)
            first[r++] = g * PROBE_COLUMNS;
        before += work[g];
    }
    while (r < P)
        first[r++] = groups * PROBE_COLUMNS < o->width ? groups * PROBE_COLUMNS : o->width;
    first[P] = o->width;
    free(work);
    return st;
}

/* Render one row into out (3 bytes per pixel) and ids. */
static strata_status render_row(ray_caster *c, const camera *cam, const strata_render_options *o,
                                palette *pal, int j, int i0, int i1, uint8_t *out, uint16_t *ids,
                                uint64_t counts[4])
{
    double sun_unit[3];
    ray_unit_direction(cam->sun_voxel, sun_unit);
    out -= 3 * (size_t)i0;
    ids -= i0;
    for (int i = i0; i < i1; i++) {
        double d[3], unit[3];
        pixel_direction(cam, i, j, o->width, o->height, d);
        strata_ray_hit hit;
        strata_status st = STRATA_OK;
        if (ray_unit_direction(d, unit))
            st = ray_cast(c, cam->from, unit, INFINITY, &hit);
        else
            memset(&hit, 0, sizeof hit);
        if (st)
            return st;
        counts[0]++;
        counts[1] += hit.steps;
        counts[3] += hit.steps > 0; /* the ray met the world */
        ids[i] = hit.hit ? hit.material : 0;
        if (!hit.hit) {
            memcpy(out + 3 * i, sky, 3);
            continue;
        }
        counts[2]++;
        double lambert = 1;
        if (hit.normal[0] || hit.normal[1] || hit.normal[2]) {
            lambert = 0;
            for (int a = 0; a < 3; a++)
                lambert += hit.normal[a] * cam->sun[a];
            lambert = lambert > 0 ? lambert : 0;
            if (lambert > 0 && o->shadows) {
                double p[3];
                strata_ray_hit shade;
                shadow_origin(cam, unit, &hit, o->level, p);
                if ((st = ray_cast(c, p, sun_unit, INFINITY, &shade)))
                    return st;
                counts[0]++;
                counts[1] += shade.steps;
                if (shade.hit)
                    lambert = 0;
            }
        }
        double light = ambient + diffuse * lambert;
        const uint8_t *rgb = colour_of(pal, hit.material);
        for (int a = 0; a < 3; a++) {
            double v = rgb[a] * light + 0.5;
            out[3 * i + a] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    return STRATA_OK;
}

/* Why opt cannot be drawn (a NULL argument, a size, exaggeration or sun out of range),
 * or STRATA_OK. Local: the caller agrees. */
static strata_status render_refused(strata_world *w, const strata_render_options *opt,
                                    const uint8_t *rgb)
{
    if (!opt)
        return world_null_argument(w, "strata_render", "options");
    if (w->rank == 0 && !rgb)
        return world_null_argument(w, "strata_render", "rgb");
    if (opt->hidden_count && !opt->hidden)
        return world_null_argument(w, "strata_render", "options.hidden");
    if (opt->width < 1 || opt->height < 1 || opt->width > RENDER_SIDE_MAX ||
        opt->height > RENDER_SIDE_MAX)
        return WORLD_FAIL(w, STRATA_ERR_ARG, "render: image size %d x %d: each side must be 1..%d",
                          opt->width, opt->height, RENDER_SIDE_MAX);
    if (!(opt->exaggeration >= 0) || !isfinite(opt->exaggeration))
        return WORLD_FAIL(w, STRATA_ERR_ARG,
                          "render: exaggeration %g must be a finite number > 0 (0: automatic)",
                          opt->exaggeration);
    if (!(opt->sun_elevation >= -90 && opt->sun_elevation <= 90) || !isfinite(opt->sun_azimuth))
        return WORLD_FAIL(w, STRATA_ERR_ARG,
                          "render: sun azimuth %g must be finite and elevation %g in [-90, 90]",
                          opt->sun_azimuth, opt->sun_elevation);
    return STRATA_OK;
}

/* This rank's columns [band[rank], band[rank + 1]) of every row into *local (malloc'ed):
 * per row the columns' RGB, then their material ids (5 bytes a column). ids: room for a
 * row of ids; counts as render_row adds them. Local. */
static strata_status render_columns(ray_caster *c, const camera *cam,
                                    const strata_render_options *opt, palette *pal, const int *band,
                                    uint16_t *ids, uint8_t **local, uint64_t counts[4])
{
    strata_world *w = c->w;
    const int columns = band[w->rank + 1] - band[w->rank];
    const size_t row_bytes = (size_t)columns * 5;
    if (!(*local = strata_malloc(row_bytes ? (size_t)opt->height * row_bytes : 1)))
        return WORLD_FAIL(w, STRATA_ERR_NOMEM,
                          "render: cannot hold %d rows of %d pixels on rank %d", opt->height,
                          columns, w->rank);
    strata_status st = STRATA_OK;
    for (int k = 0; !st && k < opt->height; k++) {
        uint8_t *row = *local + (size_t)k * row_bytes;
        st = render_row(c, cam, opt, pal, k, band[w->rank], band[w->rank + 1], row, ids, counts);
        memcpy(row + (size_t)columns * 3, ids, (size_t)columns * sizeof *ids);
    }
    return st;
}

/* The rays of every rank summed into total (shadow rays, their steps, hits, pixels that
 * see the world); a camera that sees none of the world is an error. Collective. */
static strata_status sum_rays(strata_world *w, const strata_render_stats *used,
                              const uint64_t counts[4], uint64_t total[4])
{
    strata_status st = world_agree(
        w, error_mpi(&w->error, MPI_Allreduce(counts, total, 4, MPI_UINT64_T, MPI_SUM, w->comm),
                     "render: summing ray counts"));
    if (!st && total[3] == 0)
        st = WORLD_FAIL(w, STRATA_ERR_ARG,
                        "render: the camera at (%g, %g, %g) looking at (%g, %g, %g) with a fov "
                        "of %g degrees sees none of the world (no pixel's ray meets its box "
                        "0..%" PRId64 " x 0..%" PRId64 " x 0..%" PRId64 ")",
                        used->from[0], used->from[1], used->from[2], used->look_at[0],
                        used->look_at[1], used->look_at[2], used->fov, w->committed.dims[0],
                        w->committed.dims[1], w->committed.dims[2]);
    return st;
}

/* Every rank's columns (render_columns' local) gathered on rank 0 into rgb and, when
 * not NULL, materials: rank r's rows of its columns, one after another. Collective. */
static strata_status gather_picture(strata_world *w, const strata_render_options *opt,
                                    const int *band, const uint8_t *local, uint8_t *rgb,
                                    uint16_t *materials)
{
    const int P = w->size;
    int *counts = NULL, *displs = NULL;
    uint8_t *all = NULL;
    strata_status st = STRATA_OK;
    if (w->rank == 0) {
        counts = strata_malloc((size_t)P * 2 * sizeof *counts);
        all = strata_malloc((size_t)opt->height * (size_t)opt->width * 5);
        if (!counts || !all)
            st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "render: cannot hold the %d x %d image",
                            opt->width, opt->height);
        for (int r = 0; !st && r < P; r++) {
            counts[r] = (int)((size_t)opt->height * (size_t)(band[r + 1] - band[r]) * 5);
            displs = counts + P;
            displs[r] = r ? displs[r - 1] + counts[r - 1] : 0;
        }
    }
    st = world_agree(w, st);
    const int mine = (int)((size_t)opt->height * (size_t)(band[w->rank + 1] - band[w->rank]) * 5);
    if (!st)
        st = world_agree(w, error_mpi(&w->error,
                                      MPI_Gatherv(local, mine, MPI_BYTE, all, counts, displs,
                                                  MPI_BYTE, 0, w->comm),
                                      "render: gathering the image"));
    if (!st && w->rank == 0) {
        const uint8_t *src = all;
        for (int r = 0; r < P; r++) {
            const size_t n = (size_t)(band[r + 1] - band[r]);
            for (int j = 0; j < opt->height; j++, src += n * 5) {
                const size_t at = (size_t)j * opt->width + (size_t)band[r];
                memcpy(rgb + 3 * at, src, n * 3);
                if (materials)
                    memcpy(materials + at, src + n * 3, n * sizeof *materials);
            }
        }
    }
    free(all);
    free(counts);
    return st;
}

strata_status strata_render(strata_world *w, const strata_render_options *opt, uint8_t *rgb,
                            uint16_t *materials, strata_render_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double start = MPI_Wtime();
    strata_render_stats used;
    memset(&used, 0, sizeof used);
    strata_status st = render_refused(w, opt, rgb);
    camera cam;
    if (!st)
        st = setup_camera(w, opt, &used, &cam);
    ray_caster c = {0};
    if (!st)
        st = ray_caster_init(w, opt->level, opt->hidden, opt->hidden_count,
                             (size_t)opt->width * (size_t)opt->height, &c);
    int *band = strata_malloc(((size_t)w->size + 1) * sizeof *band);
    palette pal = {w, NULL};
    uint16_t *ids = NULL;
    if (!st && (!band || !(pal.rgb = strata_calloc(65536, sizeof *pal.rgb)) ||
                !(ids = strata_malloc((size_t)opt->width * sizeof *ids))))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "render: cannot hold a row of %d pixels on rank %d",
                        opt->width, w->rank);
    st = index_ensure(w, st, 1);
    if (!st)
        st = world_agree(w, column_bands(w, &cam, opt, band));
    uint8_t *local = NULL;
    uint64_t counts[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0};
    if (!st)
        st = render_columns(&c, &cam, opt, &pal, band, ids, &local, counts);
    free(ids);
    free(pal.rgb);
    ray_caster_free(&c);
    st = world_agree(w, st);
    if (!st)
        st = sum_rays(w, &used, counts, total);
    if (!st)
        st = gather_picture(w, opt, band, local, rgb, materials);
    free(local);
    free(band);
    if (!st && stats) {
        used.rays = total[0];
        used.steps = total[1];
        used.hits = total[2];
        used.seconds = MPI_Wtime() - start;
        *stats = used;
    }
    return st;
}
