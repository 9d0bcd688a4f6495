/* ray.h: rays through the index, walked by one rank without communication.
 *
 * The public functions (strata_ray, strata_cast_rays) are declared in strata.h;
 * the renderer (src/render.c) casts through a caster directly, one pixel row at
 * a time, and agrees once at the end.
 */
#ifndef STRATA_RAY_H
#define STRATA_RAY_H

#include <stdint.h>

#include "index/octree.h"
#include "strata.h"

struct ray_chunk_slot;

/** Bytes of a caster's empty-cell flags of mixed chunks (level 0, many rays). */
#define RAY_OCCUPANCY_BYTES ((size_t)16 << 20)

/** One rank's ray walker: the level, the empty materials and the chunk last crossed. */
typedef struct {
    struct strata_world *w;
    lod_index *x;
    int level;        /* LOD level of the cells rays stop at, 0..log2(C) */
    int64_t cells[3]; /* cells of that level per axis: ceil(dims / 2^level) */
    uint8_t *empty;   /* 65536 flags: 1 for air and the hidden materials */
    /* the chunk of the last cell looked at */
    int have;
    uint64_t key, chunk[3];
    int single;             /* one material inside the world: `material` */
    uint16_t material;      /* (absent chunks: air) */
    int whole;              /* not cut by the world's edge */
    int empty_bits;         /* wholly empty chunk: the skip found above it (-1: not yet) */
    const lod_pyramid *p;   /* mixed chunk: its pyramid (NULL at the chunk level: the row) */
    const uint16_t *voxels; /* mixed chunk at level 0: its voxels, once read */
    int have_voxels;
    /* Mixed chunk: the cells of levels mixed_level..log2(C) around cell
     * mixed_v (of the caster's level) are not homogeneous (found by the last
     * descent of its pyramid; log2(C) + 1: none known). A neighbouring cell
     * shares them, and its descent starts below. */
    int mixed_level;
    int64_t mixed_v[3];
    /* Level 0, many rays, mixed chunk: one flag per cell of levels 1..log2(C), 1 when
     * every voxel of it is empty (air or hidden; occ_offset[l] the first of
     * level l), built from its voxels; no pyramid is read. The flags of the
     * last occ_n such chunks crossed are kept (direct-mapped by key, occ_n x
     * occ_size bytes at most RAY_OCCUPANCY_BYTES, allocated at first use;
     * at least one chunk). */
    const uint8_t *occ;
    uint8_t *occ_cells;
    uint64_t *occ_keys; /* key + 1 of each entry, 0: none */
    size_t occ_n, occ_size, occ_offset[LOD_MAX_LEVELS + 2];
    /* What was learnt of each chunk crossed (direct-mapped by key): its row,
     * whether it is one material, the skip above an empty one and its
     * pyramid while the index's cache holds it. Rays cross the same chunks
     * again and again; the store keeps a few blocks of rows per segment, and
     * the own rows are a binary search away. */
    struct ray_chunk_slot *slots;
    int slot_bits;               /* 2^slot_bits slots */
    struct ray_chunk_slot *slot; /* the current chunk's */
} ray_caster;

/**
 * A caster of cells of `level` (0..log2(C)), passing through air and the
 * `hidden_n` materials of `hidden`. The index must have been ensured
 * (index_ensure, collective) before casting. `rays`: about how many rays it
 * will cast (sizes what it keeps). Local.
 */
strata_status ray_caster_init(struct strata_world *w, int level, const uint16_t *hidden,
                              size_t hidden_n, size_t rays, ray_caster *c);
void ray_caster_free(ray_caster *c);
/**
 * Cast one ray (strata_cast_rays' rules: a start outside the world enters it
 * where the ray meets its box). Reads chunks, rows and pyramids of any rank;
 * sends nothing. Local.
 * @param[in] unit direction of length 1 (ray_unit_direction)
 */
strata_status ray_cast(ray_caster *c, const double from[3], const double unit[3], double max_dist,
                       strata_ray_hit *hit);
/**
 * dir / |dir| into unit; 0 when dir is zero or not finite. dir is first scaled
 * by a power of two (exact) so that its largest component lies in [0.5, 1):
 * the sum of squares can then neither overflow nor underflow, and directions a
 * power of two apart give the same unit vector bit for bit; then each component
 * is divided by sqrt(x^2 + y^2 + z^2) of the scaled components.
 */
int ray_unit_direction(const double dir[3], double unit[3]);

#endif
