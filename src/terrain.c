/* terrain.c: the default material table and a seeded, deterministic layered terrain.
 *
 * The terrain gives measurements realistic chunks: a fractal height field (value
 * noise, four octaves), water below sea level, soil or sand at the surface,
 * sediment on the sea floor, warped rock strata, ore pockets and bedrock. Every
 * voxel is a pure function of (seed, x, y, z), so any rank count builds the same
 * world, each rank filling only the chunks it owns.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"

enum {
    MAT_AIR,
    MAT_WATER,
    MAT_SOIL,
    MAT_SAND,
    MAT_SEDIMENT,
    MAT_SANDSTONE,
    MAT_LIMESTONE,
    MAT_SHALE,
    MAT_GRANITE,
    MAT_BASALT,
    MAT_IRON,
    MAT_GOLD,
    MAT_COAL,
    MAT_BEDROCK,
    MAT_LAVA,
    MAT_ICE
};

const strata_material strata_default_materials[] = {
    {MAT_AIR, "air", {220, 235, 255}},
    {MAT_WATER, "water", {40, 90, 200}},
    {MAT_SOIL, "soil", {105, 80, 45}},
    {MAT_SAND, "sand", {225, 205, 140}},
    {MAT_SEDIMENT, "sediment", {140, 125, 100}},
    {MAT_SANDSTONE, "sandstone", {200, 155, 105}},
    {MAT_LIMESTONE, "limestone", {195, 190, 165}},
    {MAT_SHALE, "shale", {95, 95, 105}},
    {MAT_GRANITE, "granite", {160, 145, 145}},
    {MAT_BASALT, "basalt", {60, 60, 68}},
    {MAT_IRON, "iron ore", {165, 85, 50}},
    {MAT_GOLD, "gold ore", {235, 190, 40}},
    {MAT_COAL, "coal", {30, 30, 30}},
    {MAT_BEDROCK, "bedrock", {45, 38, 38}},
    {MAT_LAVA, "lava", {255, 85, 0}},
    {MAT_ICE, "ice", {225, 240, 255}},
};
const size_t strata_default_material_count =
    sizeof strata_default_materials / sizeof strata_default_materials[0];

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double lattice(uint64_t seed, int64_t i, int64_t j)
{
    uint64_t h = mix64(seed ^ mix64((uint64_t)i * 0x9e3779b97f4a7c15ULL + (uint64_t)j));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* Smooth value noise in [0, 1) at (x / scale, y / scale). */
static double value_noise(uint64_t seed, double x, double y, double scale)
{
    double fx = x / scale, fy = y / scale;
    double ix = floor(fx), iy = floor(fy);
    double tx = fx - ix, ty = fy - iy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    int64_t i = (int64_t)ix, j = (int64_t)iy;
    double a = lattice(seed, i, j), b = lattice(seed, i + 1, j);
    double c = lattice(seed, i, j + 1), d = lattice(seed, i + 1, j + 1);
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

typedef struct {
    uint64_t seed;
    int64_t dims[3];
    double sea; /* sea level, voxels */
} terrain;

static double surface_height(const terrain *t, int64_t x, int64_t y)
{
    double span = (double)(t->dims[0] > t->dims[1] ? t->dims[0] : t->dims[1]);
    double scale = span / 2 > 64 ? span / 2 : 64;
    double n = 0.55 * value_noise(t->seed, (double)x, (double)y, scale) +
               0.25 * value_noise(t->seed + 1, (double)x, (double)y, scale / 4) +
               0.13 * value_noise(t->seed + 2, (double)x, (double)y, scale / 16) +
               0.07 * value_noise(t->seed + 3, (double)x, (double)y, scale / 64);
    double z = (double)t->dims[2];
    double h = z * (0.2 + 0.6 * n);
    return h < 1 ? 1 : h > z - 1 ? z - 1 : h;
}

static uint16_t rock_at(const terrain *t, int64_t x, int64_t y, int64_t z, int64_t depth,
                        double warp)
{
    if (z < 2)
        return MAT_BEDROCK;
    uint64_t pocket = mix64(t->seed * 31 + mix64(((uint64_t)(x >> 2) << 42) ^
                                                 ((uint64_t)(y >> 2) << 21) ^ (uint64_t)(z >> 2)));
    if (depth > 6 && (pocket & 1023) < 6)
        return (pocket >> 10) % 4 == 0 ? MAT_GOLD : (pocket >> 10) % 4 == 1 ? MAT_COAL : MAT_IRON;
    if ((double)z < (double)t->dims[2] * 0.12)
        return MAT_GRANITE;
    /* Strata are horizontal bands bent by a gentle warp. */
    static const uint16_t bands[] = {MAT_SANDSTONE, MAT_LIMESTONE, MAT_SHALE,
                                     MAT_LIMESTONE, MAT_GRANITE,   MAT_BASALT};
    return bands[(int64_t)(((double)z + warp) / 9.0) % 6];
}

static uint16_t material_at(const terrain *t, int64_t x, int64_t y, int64_t z, double height,
                            double warp)
{
    int64_t h = (int64_t)height;
    if (z >= h)
        return (double)z < t->sea ? MAT_WATER : MAT_AIR;
    int64_t depth = h - 1 - z;
    int under_sea = (double)h <= t->sea;
    int beach = (double)h <= t->sea + 2;
    if (depth < 2)
        return under_sea ? MAT_SEDIMENT : beach ? MAT_SAND : MAT_SOIL;
    if (depth < 4 && (under_sea || beach))
        return MAT_SAND;
    return rock_at(t, x, y, z, depth, warp);
}

/* strata_fill callback: one chunk of terrain, column by column. */
static strata_status terrain_chunk(const int64_t b[6], int edge, uint16_t *voxels, void *ctx,
                                   char *message)
{
    (void)message;
    const terrain *t = ctx;
    for (int64_t y = b[1]; y < b[4]; y++)
        for (int64_t x = b[0]; x < b[3]; x++) {
            double h = surface_height(t, x, y);
            if ((double)b[2] >= h && (double)b[2] >= t->sea)
                continue; /* the column is air in this chunk */
            double warp = 6.0 * value_noise(t->seed + 7, (double)x, (double)y, 48.0);
            uint16_t *column = voxels + (y - b[1]) * edge + (x - b[0]);
            for (int64_t z = b[2]; z < b[5]; z++)
                column[(size_t)(z - b[2]) * (size_t)edge * (size_t)edge] =
                    material_at(t, x, y, z, h, warp);
        }
    return STRATA_OK;
}

strata_status strata_generate_terrain(strata_world *w, uint64_t seed)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    terrain t = {seed,
                 {w->committed.dims[0], w->committed.dims[1], w->committed.dims[2]},
                 (double)w->committed.dims[2] * 0.45};
    return strata_fill(w, NULL, terrain_chunk, &t);
}
