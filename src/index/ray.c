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

struct ray_chunk_slot {
    uint64_t key;
    int state;  /* 0: empty slot, 1: filled */
    int single; /* one material inside the world (absent chunks: air) */
    int whole;  /* not cut by the world's edge */
    int empty_bits;
    uint16_t material;
    store_row row;          /* a mixed chunk's row */
    const lod_pyramid *p;   /* its pyramid when last loaded (index_pyramid_held) */
    const uint16_t *p_mode; /* and that pyramid's cells */
};

strata_status ray_caster_init(strata_world *w, int level, const uint16_t *hidden, size_t hidden_n,
                              size_t rays, ray_caster *c)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->level = level;
    /* Many rays: 8192 chunks kept, and at level 0 a mixed chunk's empty-cell
     * flags built. A few (strata_ray): 256 chunks, and pyramids, which the
     * index keeps across calls (building the flags of the chunk a ray ends in
     * took strata_ray from 13 to 72 us). */
    c->slot_bits = rays >= 1024 ? 13 : 8;
    strata_status st = index_get(w, &c->x);
    if (st)
        return st;
    if (level < 0 || level > w->edge_bits)
        return WORLD_FAIL(w, STRATA_ERR_ARG, "rays: level %d must be in [0, %d] (the chunk level)",
                          level, w->edge_bits);
    if (!(c->empty = strata_calloc(65536, 1)) ||
        !(c->slots = strata_calloc((size_t)1 << c->slot_bits, sizeof *c->slots)))
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
    free(c->slots);
    free(c->occ_cells);
    free(c->occ_keys);
    c->empty = NULL;
    c->slots = NULL;
    c->occ_cells = NULL;
    c->occ_keys = NULL;
}

static uint64_t key_of(const uint64_t c[3])
{
    return morton_encode3((uint32_t)c[0], (uint32_t)c[1], (uint32_t)c[2]);
}

/* What chunk (key, ch) is: its row and whether it is one material. */
static strata_status learn_chunk(ray_caster *c, uint64_t key, const uint64_t ch[3],
                                 struct ray_chunk_slot *s)
{
    strata_world *w = c->w;
    s->state = 0;
    s->key = key;
    s->whole = 1;
    for (int a = 0; a < 3; a++)
        if ((int64_t)((ch[a] + 1) << w->edge_bits) > w->committed.dims[a])
            s->whole = 0;
    store_row row;
    const store_row *r;
    if (world_owns(w, key)) {
        r = world_own_row(w, key);
    } else {
        int found = 0;
        strata_status st = store_lookup_row(&w->store, key, &row, &found, &w->error);
        if (st)
            return st;
        r = found ? &row : NULL;
    }
    s->single = 1;
    s->material = 0;
    s->empty_bits = -1;
    s->p = NULL;
    s->p_mode = NULL;
    if (r && !index_row_single(r, &s->material)) {
        s->single = 0;
        s->row = *r;
    }
    s->state = 1;
    return STRATA_OK;
}

/* The empty-cell flags of levels 1..cb of a chunk of 2^cb voxels (value:
 * every voxel's when voxels is NULL). */
static void build_occupancy(const uint8_t *empty, const uint16_t *voxels, uint16_t value, int cb,
                            const size_t *offset, uint8_t *occ)
{
    if (!voxels) {
        memset(occ, empty[value], offset[cb + 1]);
        return;
    }
    const size_t C = (size_t)1 << cb;
    for (int l = 1; l <= cb; l++) {
        const size_t n = C >> l, m = 2 * n; /* cells of level l, of l - 1, per axis */
        uint8_t *out = occ + offset[l];
        const uint8_t *in = occ + offset[l - 1];
        for (size_t z = 0; z < n; z++)
            for (size_t y = 0; y < n; y++)
                for (size_t x = 0; x < n; x++) {
                    const size_t at = (2 * z * m + 2 * y) * m + 2 * x, sy = m, sz = m * m;
                    uint8_t all;
                    if (l == 1) {
                        const uint16_t *v = voxels + at;
                        all = empty[v[0]] & empty[v[1]] & empty[v[sy]] & empty[v[sy + 1]] &
                              empty[v[sz]] & empty[v[sz + 1]] & empty[v[sz + sy]] &
                              empty[v[sz + sy + 1]];
                    } else {
                        const uint8_t *v = in + at;
                        all = v[0] & v[1] & v[sy] & v[sy + 1] & v[sz] & v[sz + 1] & v[sz + sy] &
                              v[sz + sy + 1];
                    }
                    out[(z * n + y) * n + x] = all;
                }
    }
}

/* The current (mixed) chunk's empty-cell flags, kept or built from its voxels. */
static strata_status load_occupancy(ray_caster *c, uint64_t key)
{
    strata_world *w = c->w;
    const int cb = w->edge_bits;
    if (!c->occ_keys) {
        c->occ_offset[1] = 0;
        for (int l = 1; l <= cb; l++)
            c->occ_offset[l + 1] = c->occ_offset[l] + ((size_t)1 << 3 * (cb - l));
        c->occ_size = c->occ_offset[cb + 1];
        c->occ_n = RAY_OCCUPANCY_BYTES / c->occ_size;
        c->occ_n = c->occ_n ? c->occ_n : 1;
        free(c->occ_cells);
        if (!(c->occ_cells = strata_malloc(c->occ_n * c->occ_size)) ||
            !(c->occ_keys = strata_calloc(c->occ_n, sizeof *c->occ_keys))) {
            free(c->occ_cells);
            c->occ_cells = NULL;
            return WORLD_FAIL(w, STRATA_ERR_NOMEM,
                              "rays: cannot allocate the empty-cell flags of %zu chunks on rank %d",
                              c->occ_n, w->rank);
        }
    }
    const size_t e = (size_t)(key % c->occ_n);
    uint8_t *occ = c->occ_cells + e * c->occ_size;
    if (c->occ_keys[e] != key + 1) {
        chunk *k;
        strata_status st = world_committed_chunk(w, key, &k);
        if (st)
            return st;
        c->voxels = k->voxels;
        c->material = k->value;
        c->have_voxels = 1;
        c->occ_keys[e] = 0;
        build_occupancy(c->empty, k->voxels, k->value, cb, c->occ_offset, occ);
        c->occ_keys[e] = key + 1;
    }
    c->occ = occ;
    return STRATA_OK;
}

/* Make chunk (key, ch) the caster's current chunk. */
static strata_status load_chunk(ray_caster *c, uint64_t key, const uint64_t ch[3])
{
    c->have = 0;
    c->key = key;
    memcpy(c->chunk, ch, sizeof c->chunk);
    c->p = NULL;
    c->voxels = NULL;
    c->have_voxels = 0;
    c->occ = NULL;
    c->mixed_level = c->w->edge_bits + 1;
    struct ray_chunk_slot *s = &c->slots[(key * 0x9E3779B97F4A7C15ull) >> (64 - c->slot_bits)];
    strata_status st;
    if ((!s->state || s->key != key) && (st = learn_chunk(c, key, ch, s)))
        return st;
    c->slot = s;
    c->single = s->single;
    c->material = s->material;
    c->whole = s->whole;
    c->empty_bits = s->empty_bits;
    /* A mixed chunk's pyramid, unless the cells are chunks: the row's dominant
     * material is then the cell's mode (when the row's summary is current). */
    if (!s->single && c->level == 0 && c->slot_bits == 13) {
        if ((st = load_occupancy(c, key)))
            return st;
    } else if (!s->single &&
               (c->level < c->w->edge_bits || (s->row.flags & STORE_ROW_INDEX_STALE))) {
        const int need = c->level > 0 ? c->level : 1;
        if (s->p && index_pyramid_held(s->p, s->p_mode, key, need)) {
            c->p = s->p;
        } else {
            if ((st = index_row_pyramid(c->w, &s->row, need, &c->p)))
                return st;
            s->p = c->p;
            s->p_mode = c->p->mode;
        }
    }
    c->have = 1;
    return STRATA_OK;
}

/* A uniform chunk: its material, or, wholly empty, up through the nodes while
 * they are wholly empty (nodes held only by another rank are passed over). */
static strata_status uniform_chunk_state(ray_caster *c, const uint64_t ch[3], int *bits,
                                         uint16_t *material)
{
    strata_world *w = c->w;
    const int cb = w->edge_bits, up = cb - c->level;
    if (!c->empty[c->material]) {
        *bits = -1;
        *material = c->material;
        return STRATA_OK;
    }
    if (c->empty_bits >= 0) {
        *bits = c->empty_bits;
        return STRATA_OK;
    }
    int best = up;
    for (int k = 1; k <= c->x->max_level; k++) {
        const uint64_t nc[3] = {ch[0] >> k, ch[1] >> k, ch[2] >> k};
        block_summary b;
        strata_status st = query_block(w, cb + k, nc, &b);
        if (st)
            return st;
        if (!b.known)
            continue;
        if (b.count != b.voxels || !c->empty[b.material])
            break;
        best = up + k;
    }
    *bits = c->empty_bits = c->slot->empty_bits = best;
    return STRATA_OK;
}

/* Level 0 under a mixed level-1 cell: the voxel v itself. */
static strata_status voxel_state(ray_caster *c, const int64_t v[3], int *bits, uint16_t *material)
{
    strata_world *w = c->w;
    const int cb = w->edge_bits;
    if (!c->have_voxels) {
        chunk *k;
        strata_status st = world_committed_chunk(w, c->key, &k);
        if (st)
            return st;
        c->voxels = k->voxels;
        c->material = k->value;
        c->have_voxels = 1;
    }
    const uint64_t m = (uint64_t)w->edge - 1;
    uint16_t value = c->voxels ? c->voxels[((uint64_t)v[0] & m) | ((uint64_t)v[1] & m) << cb |
                                           ((uint64_t)v[2] & m) << 2 * cb]
                               : c->material;
    *bits = c->empty[value] ? 0 : -1;
    if (*bits)
        *material = value;
    return STRATA_OK;
}

/* The first homogeneous pyramid cell above v at levels top..lowest, or the
 * level's own cell: 1 with *bits and *material set, 0 when every level down to
 * lowest is mixed. lv is v within the chunk. */
static int pyramid_state(ray_caster *c, const int64_t v[3], const uint64_t lv[3], int top,
                         int lowest, int *bits, uint16_t *material)
{
    const lod_pyramid *p = c->p;
    const int cb = c->w->edge_bits, L = c->level;
    for (int l = top; l >= lowest; l--) {
        const int shift = l - L, n_bits = cb - l;
        const size_t i =
            p->offset[l] + (size_t)((((lv[2] >> shift) << n_bits | (lv[1] >> shift)) << n_bits) |
                                    (lv[0] >> shift));
        uint64_t in_world;
        if (c->whole) {
            in_world = (uint64_t)1 << (3 * l);
        } else {
            const uint64_t cc[3] = {(uint64_t)v[0] >> shift, (uint64_t)v[1] >> shift,
                                    (uint64_t)v[2] >> shift};
            in_world = lod_block_voxels(c->w->committed.dims, l, cc);
        }
        if (p->count[i] == in_world || l == L) {
            /* homogeneous, or the level's own cell: its mode decides */
            c->mixed_level = l + 1;
            *bits = c->empty[p->mode[i]] ? shift : -1;
            *material = p->mode[i];
            return 1;
        }
    }
    return 0;
}

/*
 * The state of cell v (of the caster's level): *bits = -1 when the cell is not
 * empty (*material its LOD value), else the relative level (0 = the cell) of the
 * largest aligned wholly-empty block this rank can see around it.
 */
static strata_status cell_state(ray_caster *c, const int64_t v[3], int *bits, uint16_t *material)
{
    const int cb = c->w->edge_bits, L = c->level, up = cb - L;
    const uint64_t ch[3] = {(uint64_t)v[0] >> up, (uint64_t)v[1] >> up, (uint64_t)v[2] >> up};
    if (!c->have || ch[0] != c->chunk[0] || ch[1] != c->chunk[1] || ch[2] != c->chunk[2]) {
        strata_status st = load_chunk(c, key_of(ch), ch);
        if (st)
            return st;
    }
    if (c->single)
        return uniform_chunk_state(c, ch, bits, material);
    /* A mixed chunk: down its pyramid to the first homogeneous cell, or to the
     * level's own cell (at level 0: down its empty-cell flags to the first
     * wholly empty cell, or to the voxel); below the levels known not
     * homogeneous (not empty) around v. */
    if (!c->p && !c->occ) {
        *material = c->slot->row.dominant;
        *bits = c->empty[*material] ? 0 : -1;
        return STRATA_OK;
    }
    const int lowest = L > 0 ? L : 1;
    int top = cb;
    if (c->mixed_level <= cb) {
        /* v shares its cells of levels >= shared with mixed_v (same chunk: shared <= cb) */
        const uint64_t diff =
            (uint64_t)((v[0] ^ c->mixed_v[0]) | (v[1] ^ c->mixed_v[1]) | (v[2] ^ c->mixed_v[2]));
        const int shared = L + (diff ? 64 - __builtin_clzll(diff) : 0);
        top = (shared > c->mixed_level ? shared : c->mixed_level) - 1;
    }
    const uint64_t lm = ((uint64_t)1 << up) - 1; /* v within the chunk */
    const uint64_t lv[3] = {(uint64_t)v[0] & lm, (uint64_t)v[1] & lm, (uint64_t)v[2] & lm};
    memcpy(c->mixed_v, v, sizeof c->mixed_v);
    if (c->occ) {
        for (int l = top; l >= 1; l--) {
            const int n_bits = cb - l;
            if (c->occ[c->occ_offset[l] +
                       (size_t)((((lv[2] >> l) << n_bits | (lv[1] >> l)) << n_bits) |
                                (lv[0] >> l))]) {
                c->mixed_level = l + 1;
                *bits = l;
                return STRATA_OK;
            }
        }
        top = 0; /* the voxel */
    }
    if (pyramid_state(c, v, lv, top, lowest, bits, material))
        return STRATA_OK;
    c->mixed_level = lowest;
    return voxel_state(c, v, bits, material);
}

/* The walk: origin and direction in cells of the caster's level, the
 * reciprocal of the direction, and the distance to the next boundary of each
 * axis (tn[a] = crossing(nb[a]); infinite along an axis the ray does not move). */
typedef struct {
    double o[3], d[3], inv[3], tn[3];
    int64_t v[3], nb[3];
    int s[3];
    int n, ax[3]; /* the axes the ray moves along, in x, y, z order */
} walk_state;

/* Distance (cells) to the boundary b of axis a: (b - o) times the reciprocal
 * of the direction (docs/render.md; one multiplication, no division). */
static double crossing(const walk_state *r, int a, int64_t b)
{
    return ((double)b - r->o[a]) * r->inv[a];
}

/* Leave the aligned block of 2^bits cells around v exactly where the cell walk
 * would; returns the axis crossed last. */
static int skip_block(walk_state *r, int bits, double *t)
{
    const int64_t size = (int64_t)1 << bits;
    int64_t eb[3];
    int e = r->ax[0];
    double te = INFINITY;
    for (int k = 0; k < r->n; k++) {
        const int a = r->ax[k];
        const int64_t lo = r->v[a] & -size; /* v >= 0 inside the world */
        eb[a] = r->s[a] > 0 ? lo + size : lo;
        const double T = crossing(r, a, eb[a]);
        if (k == 0 || T < te)
            e = a, te = T;
    }
#define CROSSES(x) ((x) < te || (tie && (x) == te))
    for (int k = 0; k < r->n; k++) {
        const int a = r->ax[k], sa = r->s[a], tie = a < e;
        if (a == e)
            continue;
        /* Boundaries of axis a the walk crosses before leaving through e (ties: x,
         * y, z order): a boundary at te is crossed first when a < e. */
        if (!CROSSES(r->tn[a]))
            continue; /* not even the next one: v[a], nb[a] and tn[a] stay */
        /* where the ray leaves, rounded toward the start: a first guess (at >= 0
         * inside the world; the loops below correct it) */
        const double at = r->o[a] + te * r->d[a];
        int64_t guess = (int64_t)at;
        guess += sa < 0 && (double)guess < at;
        const int64_t none = r->nb[a] - sa; /* nothing crossed yet */
        int64_t last = (sa > 0 && guess > none) || (sa < 0 && guess < none) ? guess : none;
        /* back to the last boundary crossed (nb[a], whose crossing tn[a] is, at
         * least) */
        while (last != none && last != r->nb[a] && !CROSSES(crossing(r, a, last)))
            last -= sa;
        double next;
        while (CROSSES(next = crossing(r, a, last + sa)))
            last += sa;
        r->nb[a] = last + sa;
        r->tn[a] = next;
        r->v[a] = sa > 0 ? last : last - 1;
    }
#undef CROSSES
    r->v[e] = r->s[e] > 0 ? eb[e] : eb[e] - 1;
    r->nb[e] = r->s[e] > 0 ? r->v[e] + 1 : r->v[e];
    r->tn[e] = crossing(r, e, r->nb[e]);
    *t = te;
    return e;
}

/* One cell along the axis whose boundary comes first (ties: x, y, z order). */
static int step_cell(walk_state *r, double *t)
{
    int e = r->ax[0];
    for (int k = 1; k < r->n; k++)
        if (r->tn[r->ax[k]] < r->tn[e])
            e = r->ax[k];
    *t = r->tn[e];
    r->v[e] += r->s[e];
    r->nb[e] += r->s[e];
    r->tn[e] = crossing(r, e, r->nb[e]);
    return e;
}

static int inside(const ray_caster *c, const int64_t v[3])
{
    return ((uint64_t)v[0] < (uint64_t)c->cells[0]) & ((uint64_t)v[1] < (uint64_t)c->cells[1]) &
           ((uint64_t)v[2] < (uint64_t)c->cells[2]);
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
    r.n = 0;
    for (int a = 0; a < 3; a++) {
        r.o[a] = L ? ldexp(from[a], -L) : from[a]; /* exact: cells of 2^L voxels */
        /* A component below 2^-600 counts as 0: its boundaries lie more than
         * 2^600 cells away (unless the ray starts on one), and 1 / d is finite. */
        r.d[a] = fabs(unit[a]) >= 0x1p-600 ? unit[a] : 0;
        r.s[a] = r.d[a] > 0 ? 1 : r.d[a] < 0 ? -1 : 0;
        r.inv[a] = r.s[a] ? 1 / r.d[a] : 0;
        if (r.s[a])
            r.ax[r.n++] = a;
    }
    double t;
    int axis;
    if (!r.n || !enter(c, &r, &t, &axis))
        return STRATA_OK;
    for (int a = 0; a < 3; a++) {
        r.nb[a] = r.s[a] > 0 ? r.v[a] + 1 : r.v[a];
        r.tn[a] = r.s[a] ? crossing(&r, a, r.nb[a]) : INFINITY;
    }
    strata_status st = STRATA_OK;
    /* exact: t <= limit iff t 2^L <= max_dist */
    const double limit = L ? ldexp(max_dist, -L) : max_dist;
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
            hit->distance = L ? ldexp(t, L) : t;
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
        st = ray_caster_init(w, 0, NULL, 0, 1, &c);
    st = index_ensure(w, st, 1);
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
        st = ray_caster_init(w, opt->level, opt->hidden, opt->hidden_count, n, &c);
    st = index_ensure(w, st, 1);
    for (size_t i = 0; !st && i < n; i++) {
        double unit[3];
        ray_unit_direction(dir[i], unit);
        st = ray_cast(&c, from[i], unit, opt->max_dist, &hits[i]);
    }
    ray_caster_free(&c);
    return world_agree(w, st);
}
