/* query.h: LOD queries over the index: point blocks, region covers, rays, box statistics.
 *
 * The public functions (strata_query_lod, strata_query_region, strata_ray,
 * strata_box_stats) are declared in strata.h; this header holds what the
 * reindex and tests share with them.
 */
#ifndef STRATA_QUERY_H
#define STRATA_QUERY_H

#include <stdint.h>

#include "index/octree.h"

struct strata_world;

/** What the index says of one aligned block. */
typedef struct {
    uint16_t material; /**< mode inside the world, ties to the smallest id */
    uint64_t count;    /**< voxels of the mode */
    uint64_t voxels;   /**< voxels inside the world */
    int known;         /**< 0: the block is a node held only by its owner rank */
} block_summary;

/**
 * Summary of the block of 2^level voxels at block coordinates c, from what this
 * rank holds: replicated and own nodes, any chunk's row and pyramid, voxels
 * (level 0). The index must be built when level > log2(C). Local.
 */
strata_status query_block(struct strata_world *w, int level, const uint64_t c[3],
                          block_summary *out);

#endif
