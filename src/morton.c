/* morton.c: 3-D Morton keys (spread by table, compacted by magic bits), keys in a box. */
#include "morton.h"

#include "const_table.h"

/* morton_spread_table[i]: bit b of i at bit 3b, as constant expressions. */
#define SPREAD(i)                                                                                  \
    ((uint64_t)((i)&1) | (uint64_t)((i)&2) << 2 | (uint64_t)((i)&4) << 4 |                         \
     (uint64_t)((i)&8) << 6 | (uint64_t)((i)&16) << 8 | (uint64_t)((i)&32) << 10 |                 \
     (uint64_t)((i)&64) << 12 | (uint64_t)((i)&128) << 14 | (uint64_t)((i)&256) << 16 |            \
     (uint64_t)((i)&512) << 18 | (uint64_t)((i)&1024) << 20)
const uint64_t morton_spread_table[2048] = {CONST_TABLE1024(SPREAD, 0),
                                            CONST_TABLE1024(SPREAD, 1024)};

#include "strata.h"

#define AXIS_LIMIT ((uint64_t)1 << STRATA_MORTON_BITS)

/* Inverse of spread_by_3: gather bits 0, 3, 6, ... into the low 21 bits. */
static uint32_t compact_by_3(uint64_t v)
{
    v &= 0x1249249249249249ULL;
    v = (v ^ (v >> 2)) & 0x10c30c30c30c30c3ULL;
    v = (v ^ (v >> 4)) & 0x100f00f00f00f00fULL;
    v = (v ^ (v >> 8)) & 0x001f0000ff0000ffULL;
    v = (v ^ (v >> 16)) & 0x001f00000000ffffULL;
    v = (v ^ (v >> 32)) & (AXIS_LIMIT - 1);
    return (uint32_t)v;
}

void morton_decode3(uint64_t key, uint32_t *x, uint32_t *y, uint32_t *z)
{
    *x = compact_by_3(key);
    *y = compact_by_3(key >> 1);
    *z = compact_by_3(key >> 2);
}

static void clip_extent(const uint64_t n[3], uint64_t lim[3])
{
    for (int a = 0; a < 3; a++)
        lim[a] = n[a] < AXIS_LIMIT ? n[a] : AXIS_LIMIT;
}

/* Chunks of the box [0, lim) inside the cube [lo, lo + edge) along one axis. */
static uint64_t clipped_span(uint64_t lo, uint64_t edge, uint64_t lim)
{
    if (lo >= lim)
        return 0;
    return lim - lo < edge ? lim - lo : edge;
}

/* In-box chunks of octant `octant` of the cube at `corner` whose octants have edge `half`. */
static uint64_t octant_volume(const uint64_t corner[3], unsigned octant, uint64_t half,
                              const uint64_t lim[3])
{
    uint64_t volume = 1;
    for (int a = 0; a < 3; a++)
        volume *= clipped_span(corner[a] + ((octant >> a) & 1) * half, half, lim[a]);
    return volume;
}

/*
 * Walk down the octree along the path of `key`: at each level, the octants that
 * precede the key's octant hold only smaller keys (key order is octree order), so
 * their in-box volume counts whole. The key's own cell is not counted (strictly below).
 */
uint64_t morton_count_below(uint64_t key, const uint64_t n[3])
{
    uint64_t lim[3], corner[3] = {0, 0, 0}, count = 0;
    clip_extent(n, lim);
    if (key >> (3 * STRATA_MORTON_BITS))
        return lim[0] * lim[1] * lim[2];
    for (int level = STRATA_MORTON_BITS - 1; level >= 0; level--) {
        unsigned octant = (unsigned)(key >> (3 * level)) & 7;
        uint64_t half = (uint64_t)1 << level;
        for (unsigned o = 0; o < octant; o++)
            count += octant_volume(corner, o, half, lim);
        for (int a = 0; a < 3; a++)
            corner[a] += ((octant >> a) & 1) * half;
        /* Once the path leaves the box, no deeper octant holds in-box chunks. */
        if (corner[0] >= lim[0] || corner[1] >= lim[1] || corner[2] >= lim[2])
            break;
    }
    return count;
}

/* Keys grow with each coordinate, so the far corner holds the largest in-box key. */
uint64_t morton_key_end(const uint64_t n[3])
{
    uint64_t lim[3];
    clip_extent(n, lim);
    if (lim[0] == 0 || lim[1] == 0 || lim[2] == 0)
        return 0;
    return morton_encode3((uint32_t)(lim[0] - 1), (uint32_t)(lim[1] - 1), (uint32_t)(lim[2] - 1)) +
           1;
}
