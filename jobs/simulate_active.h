/* simulate_active.h: where `strata simulate` must compute, kept from step to
 * step (used by job_simulate.c).
 *
 * The rules act only at candidates (simulate_rules.c), and whether a voxel is
 * or borders one never depends on the step. So each rank keeps, for every tile
 * (TILE x TILE columns of one of its chunks), the z range of the voxels that
 * may change at the next step, a superset of the true set:
 * - at the start every tile is whole;
 * - a tile computed at a step is tightened to what its computation found
 *   (sim_region.may_change: exact for the state the step read);
 * - every change of the step, on any rank, widens the ranges its
 *   sim_candidate_reach covers (the only voxels whose candidacy it can alter).
 * A tile whose range is empty holds no voxel that can change: its new state is
 * its old, and it is neither read nor computed nor written. Everything is
 * local; the changes of all ranks come in as bounding boxes (job_simulate.c's
 * exchange).
 */
#ifndef STRATA_SIMULATE_ACTIVE_H
#define STRATA_SIMULATE_ACTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "simulate_rules.h"

/* Columns along x and y of a tile by default (less when chunks are smaller). */
#define SIM_TILE 8

typedef struct {
    int64_t dims[3], chunks[3]; /* voxels; chunks along each axis */
    int64_t edge, tile, tiles;  /* chunk edge, tile edge, tiles per chunk along x and y */
    int64_t reach[3];           /* sim_candidate_reach of the process */
    uint64_t *keys;             /* own chunks, ascending (column-major: x, y, then z) */
    size_t n;
    int32_t (*range)[2]; /* per own chunk and tile: [lo, hi) z in the chunk; lo >= hi: none */
} sim_activity;

/* Start: own chunks from their boxes (strata_domain_boxes with max_chunks 1),
 * tiles of `tile` columns (a power of two; at most the chunk edge), every tile
 * whole. 0, or -1 when out of memory. */
int sim_activity_init(sim_activity *a, const simulation *s, int64_t tile,
                      const int64_t (*chunks)[6], size_t n);
void sim_activity_free(sim_activity *a);

/* The blocks to compute this step (malloc'ed, *n of them; *tiles: the tiles
 * they cover): each the range of one tile, over one chunk or a column of
 * vertically adjacent own chunks whose ranges join. 0, or -1 when out of memory. */
int sim_activity_targets(const sim_activity *a, int64_t (**blocks)[6], size_t *n, uint64_t *tiles);

/* After computing block (own chunks, its corner on the tile grid, every tile
 * of it computed): its tiles' ranges become what sim_compute_block flagged in
 * may_change (sim_region.may_change with this activity's tile). */
void sim_activity_tighten(sim_activity *a, const int64_t block[6], const uint8_t *may_change);

/* A change somewhere in box (any rank's): widen the ranges it can reach. */
void sim_activity_changed(sim_activity *a, const int64_t box[6]);

#endif
