/* ray.c: rays through the index (strata_ray, strata_cast_rays).
 *
 * A ray walks the cells of one LOD level (voxels at level 0) in Amanatides-Woo
 * order; at each cell it skips the largest aligned block around it that is
 * wholly empty (air, or a hidden material), found from what this rank can see
 * without asking anyone: replicated and own octree nodes, any chunk's row and
 * pyramid (the store's fences), any chunk's voxels (the committed-copy cache).
 * A skip leaves the block at exactly the cell and distance the cell-by-cell walk
 * would reach, so the result does not depend on the skips: the same at any rank
 * count and whichever rank casts the ray.
 */
#include "index/ray.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/query.h"
#include "alloc.h"
#include "world.h"

int ray_unit_direction(const double dir[3], double unit[3])
{
    double largest = 0, sum = 0;
    for (int a = 0; a < 3; a++) {
        if (!isfinite(dir[a]))
            return 0;
        largest = fmax(largest, fabs(dir[a]));
    }
    if (largest == 0)
        return 0;
    if (largest > 0x1p-400 && largest < 0x1p400) {
        /* No square can overflow or underflow: scaling by a power of two would
         * change no bit of the result, so skip it. */
        for (int a = 0; a < 3; a++)
            sum += dir[a] * dir[a];
        double length = sqrt(sum);
        for (int a = 0; a < 3; a++)
            unit[a] = dir[a] / length;
        return 1;
    }
    int exponent;
    frexp(largest, &exponent);
    for (int a = 0; a < 3; a++) {
        unit[a] = ldexp(dir[a], -exponent);
        sum += unit[a] * unit[a];
    }
    double length = sqrt(sum);
    for (int a = 0; a < 3; a++)
        unit[a] /= length;
    return 1;
}

enum { ROW_SLOTS = 8192 };
struct ray_row_slot {
    uint64_t key;
    int state; /* 0: empty slot, 1: row absent, 2: row present */
    store_row row;
};

strata_status ray_caster_init(strata_world *w, int level, const uint16_t *hidden, size_t hidden_n,
                              ray_caster *c)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->level = level;
    strata_status st = index_get(w, &c->x);
    if (st)
        return st;
    if (level < 0 || level > w->edge_bits)
        return WORLD_FAIL(w, STRATA_ERR_ARG, "rays: level %d must be in [0, %d] (the chunk level)",
                          level, w->edge_bits);
    if (!(c->empty = strata_calloc(65536, 1)) ||
        !(c->rows = strata_calloc(ROW_SLOTS, sizeof *c->rows)))
        return WORLD_FAIL(w, STRATA_ERR_NOMEM, "rays: cannot allocate the material flags");
    c->empty[0] = 1;
    for (size_t i = 0; i < hidden_n; i++)
        c->empty[hidden[i]] = 1;
    for (int a = 0; a < 3; a++)
        c->cells[a] = (w->committed.dims[a] + ((int64_t)1 << level) - 1) >> level;
    return STRATA_OK;
}

void ray_caster_free(ray_caster *c)
{
    free(c->empty);
    free(c->rows);
    c->empty = NULL;
    c->rows = NULL;
}

static uint64_t key_of(const uint64_t c[3])
{
    return morton_encode3((uint32_t)c[0], (uint32_t)c[1], (uint32_t)c[2]);
}

/* Make chunk (key, ch) the caster's current chunk. */
static strata_status load_chunk(ray_caster *c, uint64_t key, const uint64_t ch[3])
{
    strata_world *w = c->w;
    c->have = 0;
    c->key = key;
    memcpy(c->chunk, ch, sizeof c->chunk);
    c->p = NULL;
    c->voxels = NULL;
    c->have_voxels = 0;
    c->empty_bits = -1;
    c->whole = 1;
    for (int a = 0; a < 3; a++)
        if ((int64_t)((ch[a] + 1) << w->edge_bits) > w->committed.dims[a])
            c->whole = 0;
    store_row row;
    const store_row *r;
    int found = 0;
    if (world_owns(w, key)) {
        r = world_own_row(w, key);
    } else {
        struct ray_row_slot *slot = &c->rows[(key * 0x9E3779B97F4A7C15ull) >> 51];
        if (!slot->state || slot->key != key) {
            strata_status st = store_lookup_row(&w->store, key, &row, &found, &w->error);
            if (st)
                return st;
            slot->key = key;
            slot->state = found ? 2 : 1;
            if (found)
                slot->row = row;
        }
        r = slot->state == 2 ? &slot->row : NULL;
    }
    c->single = 1;
    c->material = 0;
    if (r && !index_row_single(r, &c->material)) {
        c->single = 0;
        strata_status st = index_row_pyramid(w, r, c->level > 0 ? c->level : 1, &c->p);
        if (st)
            return st;
    }
    c->have = 1;
    return STRATA_OK;
}

/*
 * The state of cell v (of the caster's level): *bits = -1 when the cell is not
 * empty (*material its LOD value), else the relative level (0 = the cell) of the
 * largest aligned wholly-empty block this rank can see around it.
 */
static strata_status cell_state(ray_caster *c, const int64_t v[3], int *bits, uint16_t *material)
{
    strata_world *w = c->w;
    const int cb = w->edge_bits, L = c->level, up = cb - L;
    const uint64_t ch[3] = {(uint64_t)v[0] >> up, (uint64_t)v[1] >> up, (uint64_t)v[2] >> up};
    const uint64_t key = key_of(ch);
    strata_status st;
    if (!c->have || key != c->key) {
        if ((st = load_chunk(c, key, ch)))
            return st;
    }
    if (c->single) {
        if (!c->empty[c->material]) {
            *bits = -1;
            *material = c->material;
            return STRATA_OK;
        }
        /* A wholly empty chunk: up through the nodes while they are wholly empty
         * (nodes held only by another rank are passed over). */
        if (c->empty_bits >= 0) {
            *bits = c->empty_bits;
            return STRATA_OK;
        }
        int best = up;
        for (int k = 1; k <= c->x->max_level; k++) {
            const uint64_t nc[3] = {ch[0] >> k, ch[1] >> k, ch[2] >> k};
            block_summary b;
            if ((st = query_block(w, cb + k, nc, &b)))
                return st;
            if (!b.known)
                continue;
            if (b.count != b.voxels || !c->empty[b.material])
                break;
            best = up + k;
        }
        *bits = c->empty_bits = best;
        return STRATA_OK;
    }
    /* A mixed chunk: down its pyramid to the first homogeneous cell, or to the
     * level's own cell. */
    const lod_pyramid *p = c->p;
    const int lowest = L > 0 ? L : 1;
    for (int l = cb; l >= lowest; l--) {
        const int shift = l - L;
        const uint64_t mask = ((uint64_t)1 << (cb - l)) - 1;
        const uint64_t cc[3] = {(uint64_t)v[0] >> shift, (uint64_t)v[1] >> shift,
                                (uint64_t)v[2] >> shift};
        size_t i = lod_cell_index(p, l, (uint32_t)(cc[0] & mask), (uint32_t)(cc[1] & mask),
                                  (uint32_t)(cc[2] & mask));
        uint64_t in_world =
            c->whole ? (uint64_t)1 << (3 * l) : lod_block_voxels(w->committed.dims, l, cc);
        if (p->count[i] == in_world || l == L) {
            /* homogeneous, or the level's own cell: its mode decides */
            *bits = c->empty[p->mode[i]] ? shift : -1;
            *material = p->mode[i];
            return STRATA_OK;
        }
    }
    /* Level 0 under a mixed level-1 cell: the voxel. */
    if (!c->have_voxels) {
        chunk *k;
        if ((st = world_committed_chunk(w, c->key, &k)))
            return st;
        c->voxels = k->voxels;
        c->material = k->value;
        c->have_voxels = 1;
    }
    const uint64_t m = (uint64_t)w->edge - 1;
    uint16_t value = c->voxels ? c->voxels[((uint64_t)v[0] & m) | ((uint64_t)v[1] & m) << cb |
                                           ((uint64_t)v[2] & m) << 2 * cb]
                               : c->material;
    if (c->empty[value]) {
        *bits = 0;
        return STRATA_OK;
    }
    *bits = -1;
    *material = value;
    return STRATA_OK;
}

/* The walk: origin and unit direction in cells of the caster's level. */
typedef struct {
    double o[3], d[3];
    int64_t v[3], nb[3];
    int s[3];
} walk_state;

static double crossing(const walk_state *r, int a, int64_t b)
{
    return ((double)b - r->o[a]) / r->d[a];
}

/* Leave the aligned block of 2^bits cells around v exactly where the cell walk
 * would; returns the axis crossed last. */
static int skip_block(walk_state *r, int bits, double *t)
{
    double T[3];
    int64_t eb[3];
    for (int a = 0; a < 3; a++) {
        int64_t lo = (r->v[a] >> bits) << bits;
        eb[a] = r->s[a] > 0 ? lo + ((int64_t)1 << bits) : lo;
        T[a] = r->s[a] ? crossing(r, a, eb[a]) : INFINITY;
    }
    int e = 0;
    for (int a = 1; a < 3; a++)
        if (T[a] < T[e])
            e = a;
    for (int a = 0; a < 3; a++) {
        if (a == e || !r->s[a])
            continue;
            /* Boundaries of axis a the walk crosses before (ties: x, y, z order) leaving through e.
             */
#define CROSSES(b) (crossing(r, a, (b)) < T[e] || (crossing(r, a, (b)) == T[e] && a < e))
        int64_t guess = (int64_t)(r->s[a] > 0 ? floor(r->o[a] + T[e] * r->d[a])
                                              : ceil(r->o[a] + T[e] * r->d[a]));
        int64_t last = r->nb[a] - r->s[a]; /* nothing crossed yet */
        if ((r->s[a] > 0 && guess > last) || (r->s[a] < 0 && guess < last))
            last = guess;
        while (last != r->nb[a] - r->s[a] && !CROSSES(last))
            last -= r->s[a];
        while (CROSSES(last + r->s[a]))
            last += r->s[a];
#undef CROSSES
        r->nb[a] = last + r->s[a];
        r->v[a] = r->s[a] > 0 ? last : last - 1;
    }
    r->v[e] = r->s[e] > 0 ? eb[e] : eb[e] - 1;
    r->nb[e] = r->s[e] > 0 ? r->v[e] + 1 : r->v[e];
    *t = T[e];
    return e;
}

static int step_cell(walk_state *r, double *t)
{
    int e = -1;
    double best = INFINITY;
    for (int a = 0; a < 3; a++)
        if (r->s[a] && (e < 0 || crossing(r, a, r->nb[a]) < best))
            e = a, best = crossing(r, a, r->nb[a]);
    r->v[e] += r->s[e];
    r->nb[e] += r->s[e];
    *t = best;
    return e;
}

static int inside(const ray_caster *c, const int64_t v[3])
{
    return v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[0] < c->cells[0] && v[1] < c->cells[1] &&
           v[2] < c->cells[2];
}

/*
 * Where the walk starts: the cell holding the origin, or, from outside, the
 * cell where the ray enters the box of cells (*axis the axis of the face it
 * enters through, *t the distance there). 0 when the ray never meets the box.
 */
static int enter(const ray_caster *c, walk_state *r, double *t, int *axis)
{
    *t = 0;
    *axis = -1;
    for (int a = 0; a < 3; a++)
        r->v[a] = (int64_t)floor(r->o[a]);
    if (inside(c, r->v))
        return 1;
    double near = -INFINITY, far = INFINITY;
    for (int a = 0; a < 3; a++) {
        if (!r->s[a]) {
            if (r->v[a] < 0 || r->v[a] >= c->cells[a])
                return 0;
            continue;
        }
        double t0 = crossing(r, a, 0), t1 = crossing(r, a, c->cells[a]);
        if (t0 > t1) {
            double swap = t0;
            t0 = t1, t1 = swap;
        }
        if (t0 > near)
            near = t0, *axis = a;
        if (t1 < far)
            far = t1;
    }
    if (!(near <= far) || far <= 0 || *axis < 0)
        return 0;
    for (int a = 0; a < 3; a++) {
        if (a == *axis) {
            r->v[a] = r->s[a] > 0 ? 0 : c->cells[a] - 1;
        } else if (r->s[a]) {
            int64_t x = (int64_t)floor(r->o[a] + near * r->d[a]);
            r->v[a] = x < 0 ? 0 : x >= c->cells[a] ? c->cells[a] - 1 : x;
        }
    }
    *t = near > 0 ? near : 0;
    return 1;
}

strata_status ray_cast(ray_caster *c, const double from[3], const double unit[3], double max_dist,
                       strata_ray_hit *hit)
{
    memset(hit, 0, sizeof *hit);
    walk_state r;
    const int L = c->level;
    for (int a = 0; a < 3; a++) {
        r.o[a] = L ? ldexp(from[a], -L) : from[a]; /* exact: cells of 2^L voxels */
        r.d[a] = unit[a];
        r.s[a] = r.d[a] > 0 ? 1 : r.d[a] < 0 ? -1 : 0;
    }
    double t;
    int axis;
    if (!enter(c, &r, &t, &axis))
        return STRATA_OK;
    for (int a = 0; a < 3; a++)
        r.nb[a] = r.s[a] > 0 ? r.v[a] + 1 : r.v[a];
    strata_status st = STRATA_OK;
    const double limit = ldexp(max_dist, -L); /* exact: t <= limit iff t 2^L <= max_dist */
    while (t <= limit && inside(c, r.v)) {
        int bits;
        uint16_t material = 0;
        hit->steps++;
        if ((st = cell_state(c, r.v, &bits, &material)))
            break;
        if (bits < 0) {
            hit->hit = 1;
            for (int a = 0; a < 3; a++) {
                hit->voxel[a] = r.v[a] << L;
                hit->normal[a] = a == axis ? -r.s[a] : 0;
            }
            hit->material = material;
            hit->distance = ldexp(t, L);
            break;
        }
        axis = bits == 0 ? step_cell(&r, &t) : skip_block(&r, bits, &t);
    }
    return st;
}

strata_status strata_ray(strata_world *w, const double from[3], const double dir[3],
                         double max_dist, strata_ray_hit *hit)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    /* A NULL pointer fails at the agreement below, where the other ranks are. */
    strata_status st = STRATA_OK;
    if (!from || !dir || !hit)
        st = world_null_argument(w, __func__, !from ? "from" : !dir ? "dir" : "hit");
    if (hit)
        memset(hit, 0, sizeof *hit);
    double unit[3];
    if (!st && (!ray_unit_direction(dir, unit) || !(max_dist >= 0)))
        st = WORLD_FAIL(w, STRATA_ERR_ARG,
                        "ray: direction (%g, %g, %g) must be non-zero and finite, max distance "
                        "(%g) >= 0",
                        dir[0], dir[1], dir[2], max_dist);
    for (int a = 0; !st && a < 3; a++) {
        if (!(from[a] >= 0 && from[a] < (double)w->committed.dims[a]))
            st =
                WORLD_FAIL(w, STRATA_ERR_RANGE, "ray start (%.6f, %.6f, %.6f) is outside the world",
                           from[0], from[1], from[2]);
    }
    ray_caster c = {0};
    if (!st)
        st = ray_caster_init(w, 0, NULL, 0, &c);
    st = world_agree(w, st);
    if (!st)
        st = index_ensure(w);
    if (!st)
        st = world_agree(w, ray_cast(&c, from, unit, max_dist, hit));
    ray_caster_free(&c);
    return st;
}

void strata_cast_options_init(strata_cast_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_dist = INFINITY;
}

strata_status strata_cast_rays(strata_world *w, const double (*from)[3], const double (*dir)[3],
                               size_t n, const strata_cast_options *opt, strata_ray_hit *hits)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    strata_status st = STRATA_OK;
    strata_cast_options defaults;
    strata_cast_options_init(&defaults);
    if (!opt)
        opt = &defaults;
    if (n && (!from || !dir || !hits))
        st = world_null_argument(w, __func__, !from ? "from" : !dir ? "dir" : "hits");
    else if (opt->hidden_count && !opt->hidden)
        st = world_null_argument(w, __func__, "options.hidden");
    else if (!(opt->max_dist >= 0))
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "cast rays: max distance (%g) must be >= 0",
                        opt->max_dist);
    for (size_t i = 0; !st && i < n; i++) {
        double unit[3];
        if (!ray_unit_direction(dir[i], unit))
            st = WORLD_FAIL(w, STRATA_ERR_ARG,
                            "cast rays: ray %zu on rank %d: direction (%g, %g, %g) must be "
                            "non-zero and finite",
                            i, w->rank, dir[i][0], dir[i][1], dir[i][2]);
        for (int a = 0; !st && a < 3; a++)
            if (!isfinite(from[i][a]))
                st = WORLD_FAIL(w, STRATA_ERR_ARG,
                                "cast rays: ray %zu on rank %d: start (%g, %g, %g) must be finite",
                                i, w->rank, from[i][0], from[i][1], from[i][2]);
    }
    ray_caster c = {0};
    if (!st)
        st = ray_caster_init(w, opt->level, opt->hidden, opt->hidden_count, &c);
    st = world_agree(w, st);
    if (!st)
        st = index_ensure(w);
    for (size_t i = 0; !st && i < n; i++) {
        double unit[3];
        ray_unit_direction(dir[i], unit);
        st = ray_cast(&c, from[i], unit, opt->max_dist, &hits[i]);
    }
    ray_caster_free(&c);
    return world_agree(w, st);
}
