/* simulate_rules.c: the processes of `strata simulate` (see simulate_rules.h).
 *
 * Rules on the old state ("ground" is any material but air and water; a
 * surface voxel is ground with air or water above it):
 * - erosion: a surface voxel of soil, sand or sediment next to a column whose
 *   ground lies 2 to 4 voxels lower erodes with probability 1/4: it takes the
 *   value above it (air or water) and sediment lands on the lowest such
 *   neighbour (ties: +x, -x, +y, -y).
 * - deposition: with probability 1/8 the voxel above a surface voxel becomes
 *   sand (in air) or sediment (under water).
 * - volcanic: seeded vents grow cones whose radius widens with time: the voxel
 *   above a surface voxel inside the cone becomes lava (probability 1/2); lava
 *   covered by new lava cools to basalt.
 */
#include "simulate_rules.h"

#include "alloc.h" /* STRATA_ALLOC_FAIL reaches the landings too */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Materials of the default table (src/terrain.c). */
enum { AIR = 0, WATER = 1, SOIL = 2, SAND = 3, SEDIMENT = 4, BASALT = 9, LAVA = 14 };

static const char *const names[] = {"erosion", "deposition", "volcanic", "none"};

int sim_process_named(const char *name)
{
    for (int p = 0; name && p <= SIM_NONE; p++)
        if (!strcmp(name, names[p]))
            return p;
    return -1;
}

const char *sim_process_name(int process)
{
    return process >= 0 && process <= SIM_NONE ? names[process] : "?";
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The random bits of voxel (x, y, z) at a step: the same on every rank. */
static uint64_t voxel_hash(const simulation *s, uint64_t step, int64_t x, int64_t y, int64_t z)
{
    uint64_t h = mix(s->seed ^ 0x9e3779b97f4a7c15ULL * (step + 1));
    h = mix(h ^ (uint64_t)x * 0xd1b54a32d192ed03ULL);
    h = mix(h ^ (uint64_t)y * 0x8cb92ba72f3d8dd7ULL);
    return mix(h ^ (uint64_t)z * 0x5851f42d4c957f2dULL);
}

static int is_ground(uint16_t m)
{
    return m != AIR && m != WATER;
}

/* Old value at (x, y, z), inside the read box; below the world is ground, above
 * it air. */
static uint16_t old_at(const simulation *s, const sim_region *r, int64_t x, int64_t y, int64_t z)
{
    if (z < 0)
        return BASALT;
    if (z >= s->dims[2])
        return AIR;
    const int64_t *b = r->box, nx = b[3] - b[0], ny = b[4] - b[1];
    return r->in[((z - b[2]) * ny + (y - b[1])) * nx + (x - b[0])];
}

/* The voxels r->out holds: the block, or (scatter) the read box. */
static const int64_t *out_region(const simulation *s, const sim_region *r)
{
    return s->scatter ? r->box : r->block;
}

/* New value m at (x, y, z) if r->out holds it, counted as a change when it
 * differs from the old value (rules may set one voxel twice, to one value).
 * Returns 1 for a first change. */
static int set_new(const simulation *s, sim_region *r, int64_t x, int64_t y, int64_t z, uint16_t m,
                   int count)
{
    const int64_t *b = out_region(s, r);
    if (x < b[0] || y < b[1] || z < b[2] || x >= b[3] || y >= b[4] || z >= b[5])
        return 0;
    const int64_t nx = b[3] - b[0], ny = b[4] - b[1];
    uint16_t *o = r->out + ((z - b[2]) * ny + (y - b[1])) * nx + (x - b[0]);
    const uint16_t old = old_at(s, r, x, y, z);
    if (*o == m)
        return 0;
    int first = 0;
    if (*o == old) { /* a first change */
        const int64_t p[3] = {x, y, z};
        const int any = r->changed || r->landed_n;
        for (int a = 0; a < 3; a++) {
            if (!any || p[a] < r->changed_box[a])
                r->changed_box[a] = p[a];
            if (!any || p[a] + 1 > r->changed_box[a + 3])
                r->changed_box[a + 3] = p[a] + 1;
        }
        r->changed += (uint64_t)count;
        first = 1;
    } else if (m == old) { /* changed back (the box stays: it only bounds) */
        r->changed -= (uint64_t)count;
    }
    *o = m;
    return first;
}

/* Scatter: sediment lands at (x, y, z), in the read box; listed once. */
static void land(const simulation *s, sim_region *r, int64_t x, int64_t y, int64_t z)
{
    if (!set_new(s, r, x, y, z, SEDIMENT, 0))
        return;
    if (r->landed_n == r->landed_cap) {
        size_t cap = r->landed_cap ? 2 * r->landed_cap : 64;
        uint64_t *l = strata_realloc(r->landed, cap * sizeof *l);
        if (!l) {
            r->landed_failed = 1;
            return;
        }
        r->landed = l, r->landed_cap = cap;
    }
    r->landed[r->landed_n++] =
        ((uint64_t)z * (uint64_t)s->dims[1] + (uint64_t)y) * (uint64_t)s->dims[0] + (uint64_t)x;
}

/* Voxels of columns x - across .. x + across from z - below to z may change:
 * flag them (per tile of the block and z). */
static void mark_may_change(sim_region *r, int64_t x, int64_t y, int64_t z, int64_t across,
                            int64_t below)
{
    if (!r->may_change)
        return;
    const int64_t *b = r->block, t = r->tile;
    const int64_t k0 = z - below > b[2] ? z - below : b[2], k1 = z < b[5] - 1 ? z : b[5] - 1;
    if (b[3] - b[0] <= t && b[4] - b[1] <= t) { /* one tile: flags per z */
        for (int64_t k = k0; k <= k1; k++)
            r->may_change[k - b[2]] = 1;
        return;
    }
    const int64_t tx = (b[3] - b[0] + t - 1) / t, ty = (b[4] - b[1] + t - 1) / t;
    const int64_t x0 = x - across > b[0] ? x - across : b[0],
                  x1 = x + across < b[3] - 1 ? x + across : b[3] - 1;
    const int64_t y0 = y - across > b[1] ? y - across : b[1],
                  y1 = y + across < b[4] - 1 ? y + across : b[4] - 1;
    for (int64_t k = k0; k <= k1; k++)
        for (int64_t j = (y0 - b[1]) / t; j <= (y1 - b[1]) / t; j++)
            for (int64_t i = (x0 - b[0]) / t; i <= (x1 - b[0]) / t; i++)
                r->may_change[((k - b[2]) * ty + j) * tx + i] = 1;
}

/* Erosion at p = (x, y, z), if it erodes: the value above it moves in and
 * sediment lands on the lowest neighbour. */
static void erode_source(const simulation *s, sim_region *r, uint64_t step, int64_t x, int64_t y,
                         int64_t z, uint16_t above);

static void erode_at(const simulation *s, sim_region *r, uint64_t step, int64_t x, int64_t y,
                     int64_t z)
{
    uint16_t m = old_at(s, r, x, y, z);
    if ((m != SOIL && m != SAND && m != SEDIMENT) || z + 1 >= s->dims[2])
        return;
    uint16_t above = old_at(s, r, x, y, z + 1);
    if (is_ground(above))
        return;
    /* A candidate: it may erode, and sediment may land one column across, up to
     * SIM_DROP_MAX - 1 voxels below (scatter: computed here, by its owner). */
    if (s->scatter)
        mark_may_change(r, x, y, z, 0, 0);
    else
        mark_may_change(r, x, y, z, 1, SIM_DROP_MAX - 1);
    erode_source(s, r, step, x, y, z, above);
}

/* Candidate p = (x, y, z), already flagged, with `above` above it. */
static void erode_source(const simulation *s, sim_region *r, uint64_t step, int64_t x, int64_t y,
                         int64_t z, uint16_t above)
{
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    if (voxel_hash(s, step, x, y, z) & 3)
        return;
    int64_t to = -1, best = -1;
    for (int d = 0; d < 4; d++) {
        int64_t qx = x + dx[d], qy = y + dy[d];
        if (qx < 0 || qy < 0 || qx >= s->dims[0] || qy >= s->dims[1] ||
            is_ground(old_at(s, r, qx, qy, z)) || is_ground(old_at(s, r, qx, qy, z - 1)))
            continue;
        for (int64_t k = 2; k <= SIM_DROP_MAX; k++)
            if (is_ground(old_at(s, r, qx, qy, z - k))) {
                if (k > best)
                    best = k, to = d;
                break;
            }
    }
    if (to < 0)
        return;
    set_new(s, r, x, y, z, above, 1);
    if (s->scatter)
        land(s, r, x + dx[to], y + dy[to], z - best + 1);
    else
        set_new(s, r, x + dx[to], y + dy[to], z - best + 1, SEDIMENT, 1);
}

/* The voxel above a surface: not ground, ground below. */
static int above_surface(const simulation *s, const sim_region *r, int64_t x, int64_t y, int64_t z)
{
    return !is_ground(old_at(s, r, x, y, z)) && is_ground(old_at(s, r, x, y, z - 1));
}

static int in_cone(const simulation *s, uint64_t step, int64_t x, int64_t y, int64_t z)
{
    for (int v = 0; v < SIM_VENTS; v++) {
        double dx = (double)x - s->vents[v][0], dy = (double)y - s->vents[v][1];
        double d = sqrt(dx * dx + dy * dy);
        if (d < 4.0 + 2.0 * (double)step && (double)z <= (double)s->dims[2] * 0.9 - 0.5 * d)
            return 1;
    }
    return 0;
}

static int lava_site(const simulation *s, const sim_region *r, uint64_t step, int64_t x, int64_t y,
                     int64_t z)
{
    return z < s->dims[2] && above_surface(s, r, x, y, z) && in_cone(s, step, x, y, z) &&
           (voxel_hash(s, step, x, y, z) & 1) == 0;
}

/* Which voxels of a row may change: the rules are looked at only there. */
typedef enum {
    ERODES,     /* soil, sand or sediment with air or water above (up) */
    SURFACE_AT, /* air or water with ground below (below; NULL: the world's floor) */
    LAVA_COOLS  /* lava with air or water above (up; NULL: above the world, never) */
} candidate;

static int scalar_candidate(candidate c, const uint16_t *below, const uint16_t *row,
                            const uint16_t *up, int i)
{
    if (c == ERODES)
        return (uint16_t)(row[i] - SOIL) <= SEDIMENT - SOIL && !is_ground(up[i]);
    if (c == SURFACE_AT)
        return !is_ground(row[i]) && (!below || is_ground(below[i]));
    return row[i] == LAVA && up && !is_ground(up[i]);
}

/* Bit i set where voxel i of row[0..n) (n <= 8) is a candidate. */
static unsigned candidates8(candidate c, const uint16_t *below, const uint16_t *row,
                            const uint16_t *up, int n)
{
#ifdef __SSE2__
    if (n == 8) {
        const __m128i not_one = _mm_set1_epi16((short)0xfffe), zero = _mm_setzero_si128();
        __m128i v = _mm_loadu_si128((const __m128i *)row), m;
#define SIM_AIRY(p)                                                                                \
    _mm_cmpeq_epi16(_mm_and_si128(_mm_loadu_si128((const __m128i *)(p)), not_one), zero)
        if (c == ERODES)
            m = _mm_and_si128(_mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16(v, _mm_set1_epi16(SOIL)),
                                                             _mm_set1_epi16(SEDIMENT - SOIL)),
                                              zero),
                              SIM_AIRY(up));
        else if (c == SURFACE_AT)
            m = below ? _mm_andnot_si128(SIM_AIRY(below), SIM_AIRY(row)) : SIM_AIRY(row);
        else if (up)
            m = _mm_and_si128(_mm_cmpeq_epi16(v, _mm_set1_epi16(LAVA)), SIM_AIRY(up));
        else
            return 0;
#undef SIM_AIRY
        return (unsigned)_mm_movemask_epi8(_mm_packs_epi16(m, zero));
    }
#endif
    unsigned bits = 0;
    for (int i = 0; i < n; i++)
        bits |= (unsigned)scalar_candidate(c, below, row, up, i) << i;
    return bits;
}

/* Erosion's sources along a row (x0..x1 at y, z; row and up point at x0): 16
 * voxels per step, the rule looked at only where a voxel is a candidate. */
static void erode_row(const simulation *s, sim_region *r, uint64_t step, const uint16_t *row,
                      const uint16_t *up, int64_t x0, int64_t x1, int64_t y, int64_t z)
{
    int64_t x = x0;
#ifdef __SSE2__
    const __m128i not_one = _mm_set1_epi16((short)0xfffe), zero = _mm_setzero_si128();
    const __m128i soil = _mm_set1_epi16(SOIL), span = _mm_set1_epi16(SEDIMENT - SOIL);
    for (; x + 16 <= x1; x += 16) {
        const __m128i *v = (const __m128i *)(row + (x - x0)), *u = (const __m128i *)(up + (x - x0));
        __m128i m[2];
        for (int h = 0; h < 2; h++)
            m[h] = _mm_and_si128(
                _mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16(_mm_loadu_si128(v + h), soil), span),
                                zero),
                _mm_cmpeq_epi16(_mm_and_si128(_mm_loadu_si128(u + h), not_one), zero));
        for (unsigned bits = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(m[0], m[1])); bits;
             bits &= bits - 1)
            erode_at(s, r, step, x + __builtin_ctz(bits), y, z);
    }
#endif
    for (; x + 8 <= x1; x += 8)
        for (unsigned m = candidates8(ERODES, NULL, row + (x - x0), up + (x - x0), 8); m;
             m &= m - 1)
            erode_at(s, r, step, x + __builtin_ctz(m), y, z);
    if (x < x1 && x1 - x0 >= 8) { /* the tail as the row's last 8, those seen dropped */
        const int64_t last = x1 - 8;
        unsigned m = candidates8(ERODES, NULL, row + (last - x0), up + (last - x0), 8);
        for (m = m >> (x - last) << (x - last); m; m &= m - 1)
            erode_at(s, r, step, last + __builtin_ctz(m), y, z);
        x = x1;
    }
    for (; x < x1; x++)
        if (scalar_candidate(ERODES, NULL, row, up, (int)(x - x0)))
            erode_at(s, r, step, x, y, z);
}

/* The old values into r->out: the read box (scatter), or the block. */
static void copy_old(const simulation *s, sim_region *r)
{
    const int64_t *b = r->block;
    const int64_t nx = b[3] - b[0], ny = b[4] - b[1];
    if (s->scatter) {
        memcpy(
            r->out, r->in,
            (size_t)((r->box[3] - r->box[0]) * (r->box[4] - r->box[1]) * (r->box[5] - r->box[2])) *
                sizeof *r->out);
        return;
    }
    const int64_t bnx = r->box[3] - r->box[0], bplane = bnx * (r->box[4] - r->box[1]);
    const uint16_t *from =
        r->in + (b[2] - r->box[2]) * bplane + (b[1] - r->box[1]) * bnx + (b[0] - r->box[0]);
    uint16_t *to = r->out;
    for (int64_t z = b[2]; z < b[5]; z++, from += bplane)
        for (int64_t y = 0; y < ny; y++, to += nx)
            if (nx == 8) /* a tile's row: one 16-byte copy, not a call */
                memcpy(to, from + y * bnx, 16);
            else
                memcpy(to, from + y * bnx, (size_t)nx * 2);
}

/* Voxel (x, y, z) of r's read box; z inside it. */
#define SIM_ROW(x, y, z) (r->in + ((z)-r->box[2]) * plane + ((y)-r->box[1]) * rnx + ((x)-r->box[0]))

#ifdef __SSE2__
/* Erosion over rows of 8 voxels from lo to hi (a tile's, or a block 6 wide and
 * its columns across): one SSE2 compare per row, inline. */
static void erode_rows8(const simulation *s, sim_region *r, uint64_t step, const int64_t lo[3],
                        const int64_t hi[3])
{
    const int64_t *b = r->block, rnx = r->box[3] - r->box[0], plane = rnx * (r->box[4] - r->box[1]);
    const __m128i not_one = _mm_set1_epi16((short)0xfffe), zero = _mm_setzero_si128();
    const __m128i soil = _mm_set1_epi16(SOIL), span = _mm_set1_epi16(SEDIMENT - SOIL);
    const int one_tile =
        s->scatter && r->may_change && b[3] - b[0] <= r->tile && b[4] - b[1] <= r->tile;
    for (int64_t z = lo[2]; z < hi[2] && z + 1 < s->dims[2]; z++) {
        const uint16_t *row = SIM_ROW(lo[0], lo[1], z);
        for (int64_t y = lo[1]; y < hi[1]; y++, row += rnx) {
            const __m128i v = _mm_loadu_si128((const __m128i *)row),
                          u = _mm_loadu_si128((const __m128i *)(row + plane));
            const __m128i m =
                _mm_and_si128(_mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16(v, soil), span), zero),
                              _mm_cmpeq_epi16(_mm_and_si128(u, not_one), zero));
            unsigned bits = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(m, zero));
            if (!bits)
                continue;
            if (!one_tile) {
                for (; bits; bits &= bits - 1)
                    erode_at(s, r, step, lo[0] + __builtin_ctz(bits), y, z);
                continue;
            }
            /* One tile: its flags are one per z, for every candidate of the row. */
            r->may_change[z - b[2]] = 1;
            for (; bits; bits &= bits - 1) {
                const int i = __builtin_ctz(bits);
                erode_source(s, r, step, lo[0] + i, y, z, row[plane + i]);
            }
        }
    }
}
#endif

/* Erosion: the sources of the block and, unless scatter, those one column
 * across and up to SIM_DROP_MAX - 1 voxels above whose sediment may land in it. */
static void erode_block(const simulation *s, sim_region *r, uint64_t step)
{
    const int64_t *b = r->block, rnx = r->box[3] - r->box[0], plane = rnx * (r->box[4] - r->box[1]);
    const int64_t wide = s->scatter ? 0 : 1, up = s->scatter ? 0 : SIM_DROP_MAX - 1;
    int64_t lo[3], hi[3];
    for (int a = 0; a < 2; a++) {
        lo[a] = b[a] - wide > 0 ? b[a] - wide : 0;
        hi[a] = b[a + 3] + wide < s->dims[a] ? b[a + 3] + wide : s->dims[a];
    }
    lo[2] = b[2];
    hi[2] = b[5] + up < s->dims[2] ? b[5] + up : s->dims[2];
    /* Both rows (z and z + 1) lie inside the read box. */
#ifdef __SSE2__
    if (hi[0] - lo[0] == 8) {
        erode_rows8(s, r, step, lo, hi);
        return;
    }
#endif
    for (int64_t z = lo[2]; z < hi[2] && z + 1 < s->dims[2]; z++) {
        const uint16_t *row = SIM_ROW(lo[0], lo[1], z);
        for (int64_t y = lo[1]; y < hi[1]; y++, row += rnx)
            erode_row(s, r, step, row, row + plane, lo[0], hi[0], y, z);
    }
}

/* Deposition and volcanic: the rules at the block's candidates (surfaces, and
 * lava under air or water), 8 voxels of a row at a time. */
static void surface_block(const simulation *s, sim_region *r, uint64_t step)
{
    const int64_t *b = r->block, rnx = r->box[3] - r->box[0], plane = rnx * (r->box[4] - r->box[1]);
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++) {
            const uint16_t *row = SIM_ROW(b[0], y, z);
            const uint16_t *below = z > 0 ? row - plane : NULL;
            const uint16_t *up = z + 1 < s->dims[2] ? row + plane : NULL;
            for (int64_t x0 = b[0]; x0 < b[3]; x0 += 8) {
                int n = b[3] - x0 < 8 ? (int)(b[3] - x0) : 8;
                const int64_t o = x0 - b[0];
                unsigned m = candidates8(SURFACE_AT, below ? below + o : NULL, row + o, NULL, n);
                if (s->process == SIM_VOLCANIC)
                    m |= candidates8(LAVA_COOLS, NULL, row + o, up ? up + o : NULL, n);
                for (; m; m &= m - 1) {
                    const int64_t x = x0 + __builtin_ctz(m);
                    mark_may_change(r, x, y, z, 0, 0);
                    if (s->process == SIM_DEPOSITION) {
                        if (above_surface(s, r, x, y, z) && (voxel_hash(s, step, x, y, z) & 7) == 0)
                            set_new(s, r, x, y, z, old_at(s, r, x, y, z) == WATER ? SEDIMENT : SAND,
                                    1);
                    } else if (lava_site(s, r, step, x, y, z)) {
                        set_new(s, r, x, y, z, LAVA, 1);
                    } else if (old_at(s, r, x, y, z) == LAVA &&
                               lava_site(s, r, step, x, y, z + 1)) {
                        set_new(s, r, x, y, z, BASALT, 1);
                    }
                }
            }
        }
}
#undef SIM_ROW

/* New values of the block's voxels from the old state. Local. Rows are scanned
 * 8 voxels at a time for the only voxels a rule can change (see candidate). */
void sim_compute_block(const simulation *s, sim_region *r, uint64_t step)
{
    copy_old(s, r);
    r->changed = 0;
    r->landed_n = 0;
    if (r->may_change)
        memset(r->may_change, 0, sim_may_change_size(r));
    if (s->process == SIM_EROSION)
        erode_block(s, r, step);
    else if (s->process != SIM_NONE)
        surface_block(s, r, step);
}

void sim_place_vents(simulation *s)
{
    uint64_t rng = s->seed ^ 0x5851f42d4c957f2dULL;
    for (int v = 0; v < SIM_VENTS; v++) {
        rng += 0x9e3779b97f4a7c15ULL;
        s->vents[v][0] = (double)(mix(rng) % (uint64_t)s->dims[0]);
        rng += 0x9e3779b97f4a7c15ULL;
        s->vents[v][1] = (double)(mix(rng) % (uint64_t)s->dims[1]);
    }
}

void sim_halo_box(const simulation *s, const int64_t block[6], int64_t box[6])
{
    /* Deposition and volcanic look at a voxel's own column only, one voxel down
     * (the surface) and up (lava cooling); `none` reads erosion's halo (the box
     * I/O of the bench's step, measured alone). Erosion, scatter: the block's
     * sources' neighbour columns down to the drop search, and the voxel above. */
    const int wide = s->process == SIM_EROSION || s->process == SIM_NONE;
    const int scatter = wide && s->scatter;
    const int64_t across = scatter ? 1 : wide ? SIM_HALO_XY : 0;
    const int64_t lo[3] = {across, across, wide ? SIM_HALO_Z : 1}, hi[3] = {across, across,
                                                                            scatter ? 1
                                                                            : wide  ? SIM_HALO_Z
                                                                                    : 1};
    for (int a = 0; a < 3; a++) {
        box[a] = block[a] - lo[a] > 0 ? block[a] - lo[a] : 0;
        int64_t top = block[a + 3] + hi[a];
        box[a + 3] = top < s->dims[a] ? top : s->dims[a];
    }
}

size_t sim_may_change_size(const sim_region *r)
{
    const int64_t *b = r->block, t = r->tile;
    return (size_t)((b[3] - b[0] + t - 1) / t * ((b[4] - b[1] + t - 1) / t) * (b[5] - b[2]));
}

void sim_candidate_reach(const simulation *s, int64_t reach[3])
{
    /* Erosion: q may change when q erodes (q and the voxel above) or sediment
     * from a candidate one column across and 1 to SIM_DROP_MAX - 1 voxels up
     * lands on it (that candidate and the voxel above it); scatter: only
     * candidates are computed (their owner lands their sediment), q and the
     * voxel above. Deposition: q and the voxel below. Volcanic: q, below
     * (surface) and above (lava cooling). */
    const int process = s->process, erosion = process == SIM_EROSION;
    reach[0] = erosion && !s->scatter ? 1 : 0;
    reach[1] = erosion ? (s->scatter ? 1 : SIM_DROP_MAX) : process == SIM_VOLCANIC ? 1 : 0;
    reach[2] = erosion ? 0 : 1;
}
