/* partition.h: splitters that give each rank a contiguous Morton key range. */
#ifndef STRATA_PARTITION_H
#define STRATA_PARTITION_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Splitters for `ranks` ranks: split[0] = 0, split[ranks] = UINT64_MAX and rank r
 * owns keys in [split[r], split[r+1]). split has ranks + 1 entries, is
 * non-decreasing, and may repeat a value (a rank with an empty range).
 */

/**
 * Balance by chunk count over the box of n[0] x n[1] x n[2] chunks, without
 * enumerating it: every rank owns floor or ceil of total/ranks in-box chunks.
 * Keys past the box belong to the last rank. Local.
 * @param[in]  n     box extent in chunks per axis (an empty box gives rank ranks-1 everything)
 * @param[in]  ranks number of ranks, >= 1
 * @param[out] split ranks + 1 splitters
 */
void partition_balanced(const uint64_t n[3], int ranks, uint64_t *split);
/**
 * Owner of key: the largest r with split[r] <= key (so the r with
 * split[r] <= key < split[r+1]), by binary search. Local.
 * @return a rank in [0, ranks); UINT64_MAX itself maps to the last non-empty range
 */
int partition_owner(const uint64_t *split, int ranks, uint64_t key);
/**
 * Map splitters of old_ranks ranks to new_ranks ranks, keeping the old balance:
 * new boundary m falls at fractional old boundary m * old_ranks / new_ranks,
 * interpolated linearly in key space between old splitters. Local.
 *
 * The last old range ends at UINT64_MAX, which says nothing about where the keys
 * end; interpolating up to it would leave most new ranks of the last range empty.
 * So key_end (morton_key_end of the world's chunk box) stands in for the end of
 * the key space, and old splitters above it are clamped to it.
 * @param[in]  old_split old_ranks + 1 splitters
 * @param[in]  key_end   one past the largest key in use
 * @param[out] new_split new_ranks + 1 splitters (split[0] = 0, split[new_ranks] = UINT64_MAX)
 */
void partition_remap(const uint64_t *old_split, int old_ranks, uint64_t key_end, int new_ranks,
                     uint64_t *new_split);
/** One sorted run of stored keys known by a sample: keys[i] is the key of row
 *  i * block_rows of `rows` rows in ascending key order (a segment's fence). */
typedef struct {
    const uint64_t *keys;
    size_t n;
    uint64_t rows;
} partition_sample;

/**
 * Splitters that give each of `ranks` ranks about 1/ranks of the rows the
 * samples describe, without reading them: rows are taken as spread evenly
 * between consecutive sample keys (the last block of a run over the previous
 * block's key span scaled by its rows, or on its first key alone when it is
 * the only block), and rank m's range starts where m/ranks of all rows lie
 * below. A boundary is off by at most block_rows rows per run (and rows that
 * several runs hold count once per run). When the share of a rank is below
 * 2 x block_rows rows (the samples too coarse to balance), nothing is written
 * and *used = 0. Local.
 * @param[out] split ranks + 1 splitters (split[0] = 0, split[ranks] = UINT64_MAX)
 * @return STRATA_ERR_NOMEM (err set) or STRATA_OK
 */
strata_status partition_by_samples(const partition_sample *runs, size_t count, uint64_t block_rows,
                                   int ranks, uint64_t *split, int *used, strata_error *err);
/**
 * Rebalance by weight, p4est-style. Collective over comm. Each rank passes its
 * own chunks' keys (ascending, all inside its current range, so keys ascend with
 * rank) and weights; the result gives every rank a contiguous range holding
 * total/ranks weight within one largest chunk weight. A chunk goes to the rank
 * whose share holds the midpoint of its weight in the global prefix sum. If every
 * weight is 0, chunks are balanced by count. Every rank receives the same splitters.
 * @param[in]  keys    n ascending keys
 * @param[in]  weights n finite, non-negative weights
 * @param[out] split   comm-size + 1 splitters, split[0] = 0, split[ranks] = UINT64_MAX
 * @param[out] err     the agreed error (STRATA_ERR_ARG for unsorted keys or bad weights)
 */
strata_status partition_by_weight(MPI_Comm comm, const uint64_t *keys, const double *weights,
                                  size_t n, uint64_t *split, strata_error *err);

#endif
