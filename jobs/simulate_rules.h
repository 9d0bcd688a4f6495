/* simulate_rules.h: the rules of `strata simulate`, shared by the job
 * (job_simulate.c) and its plain parallel HDF5 peer in the bench
 * (bench/sim_hdf5.c), so that both compute the same step from the same state.
 *
 * A step computes the new value of every voxel of a block from the old state
 * of the block plus a halo alone (every random choice is a hash of seed, step
 * and voxel), so the result never depends on how the world is cut into blocks.
 */
#ifndef STRATA_SIMULATE_RULES_H
#define STRATA_SIMULATE_RULES_H

#include <stddef.h>
#include <stdint.h>

/* SIM_NONE: no rule; every block is read and written back unchanged (the box
 * I/O a step needs, measured alone). */
enum { SIM_EROSION, SIM_DEPOSITION, SIM_VOLCANIC, SIM_NONE };
enum { SIM_VENTS = 4 };
/* Erosion looks this far down a neighbour column for its ground. */
#define SIM_DROP_MAX 4
/* Erosion's halo around a block: neighbours' neighbours across; down, the drop search
 * (SIM_DROP_MAX below a source in the block); up, the voxel above the highest
 * source whose sediment can land in the block (SIM_DROP_MAX - 1 above it). */
#define SIM_HALO_XY 2
#define SIM_HALO_Z  SIM_DROP_MAX

typedef struct {
    int process;
    /* 0: a block computes every voxel of its own from the old state, its own
     * sources' and those of sources around it whose sediment lands in it (the
     * halo above). 1 (owner of the source computes): a block computes only the
     * sources in it, and writes their sediment wherever it lands, in the block
     * or one column across (sim_region.out then covers the read box); its halo
     * is 1 column across, SIM_DROP_MAX down and 1 up. Both give the same new
     * state: a landing is air or water turned to sediment, a source is ground,
     * so no change ever conflicts with another, and two sources landing on one
     * voxel write the same value. */
    int scatter;
    uint64_t steps, commit_every, seed;
    int64_t dims[3];
    int edge;
    double vents[SIM_VENTS][2];
} simulation;

/* A block and the voxels read around it (boxes x0, y0, z0, x1, y1, z1). */
typedef struct {
    int64_t block[6], box[6]; /* the block; block + halo clipped to the world */
    uint16_t *in;             /* old values of box, [z][y][x] */
    uint16_t *out;            /* new values of block (scatter: of box), [z][y][x] */
    /* Optional (NULL: not kept): flags [z][ty][tx] per z and tile (tile x tile
     * columns from the block's corner) of the block, sim_may_change_size of
     * them, set by sim_compute_block where some voxel may change at this step
     * (near a candidate; whether it changes depends on the step's random bits). */
    uint8_t *may_change;
    int64_t tile;
    /* Set by sim_compute_block: voxels of the block whose new value differs from
     * the old, and their bounding box (valid when changed > 0). */
    uint64_t changed;
    int64_t changed_box[6];
    /* Scatter: the voxels sediment landed on (changes not counted in `changed`:
     * sources of other blocks may land on them too), as keys (z * dims[1] + y)
     * * dims[0] + x, each once per block, appended (realloc'ed; the caller frees);
     * landed_failed set when out of memory. */
    uint64_t *landed;
    size_t landed_n, landed_cap;
    int landed_failed;
} sim_region;

/* The process called `name` (erosion, deposition, volcanic, none), or -1. */
int sim_process_named(const char *name);
const char *sim_process_name(int process);

/* The volcanic vents of s->seed inside s->dims. */
void sim_place_vents(simulation *s);

/* The block + halo box of a block for s's process (and s->scatter): the halo
 * clipped to the world. */
void sim_halo_box(const simulation *s, const int64_t block[6], int64_t box[6]);

/* New values of r's block at `step` from the old state r->in (scatter: also the
 * sediment its sources drop one column across); r->changed and r->changed_box
 * count them (scatter: the landings are listed in r->landed instead);
 * r->may_change, when not NULL, marks where a voxel may change (scatter: where
 * the block must compute, its candidates). */
void sim_compute_block(const simulation *s, sim_region *r, uint64_t step);

/* Whether voxel q may change at some step (scatter: whether its block must
 * compute it, a candidate's sediment landing where its owner puts it) depends
 * on the old values of voxels q + d for d in a fixed stencil D (independent of
 * the step: the rules act only at candidates, whose definition never names the
 * step). So a change at c can
 * alter that for q = c - d only: q in columns c.x - reach[0] .. c.x + reach[0],
 * c.y - reach[0] .. c.y + reach[0], and z in c.z - reach[1] .. c.z + reach[2]. */
void sim_candidate_reach(const simulation *s, int64_t reach[3]);

/* Flags r->may_change holds for r's block and tile. */
size_t sim_may_change_size(const sim_region *r);

#endif
