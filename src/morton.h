/* morton.h: 3-D Morton keys of chunk coordinates (x bit lowest in each triple). */
#ifndef STRATA_MORTON_H
#define STRATA_MORTON_H

#include <stdint.h>

/* Bit i of an 11-bit value moved to bit 3i (morton.c). */
extern const uint64_t morton_spread_table[2048];

/** Bit i of the low 21 bits of v moved to bit 3i. Local, constant time. */
static inline uint64_t morton_spread_by_3(uint64_t v)
{
    /* Two lookups of an L1-resident table instead of five shift-and-mask rounds:
     * a voxel read computes three of these before its one cache miss. */
    return morton_spread_table[v & 2047] | morton_spread_table[v >> 11 & 1023] << 33;
}

/**
 * Interleave three 21-bit coordinates: bit i of x goes to bit 3i, y to 3i+1, z to 3i+2.
 * Local, constant time; inline: it is on every staged update and every voxel read.
 * @param[in] x, y, z chunk coordinates; bits above the 21st are ignored
 * @return the 63-bit key (bit 63 is always 0)
 */
static inline uint64_t morton_encode3(uint32_t x, uint32_t y, uint32_t z)
{
    return morton_spread_by_3(x) | morton_spread_by_3(y) << 1 | morton_spread_by_3(z) << 2;
}
/**
 * Inverse of morton_encode3. Bit 63 of key is ignored.
 * @param[out] x, y, z chunk coordinates, each < 2^21
 */
void morton_decode3(uint64_t key, uint32_t *x, uint32_t *y, uint32_t *z);
/**
 * Number of chunk coordinates (cx < n[0], cy < n[1], cz < n[2]) whose key is
 * strictly below `key`. O(21 * 8). Used to balance splitters without enumerating.
 * @param[in] key any value; keys >= 2^63 count the whole box
 * @param[in] n   box extent in chunks per axis; extents above 2^21 are clipped to 2^21
 */
uint64_t morton_count_below(uint64_t key, const uint64_t n[3]);
/**
 * Smallest key strictly greater than every key of an in-box chunk, that is the
 * key of the far corner (n - 1) plus one. Returns 0 when the box is empty
 * (some n[i] == 0). Extents above 2^21 are clipped to 2^21.
 */
uint64_t morton_key_end(const uint64_t n[3]);

/** bsearch comparator: a uint64_t key against an element whose first member is its
 *  uint64_t key (store rows, octree nodes, ... sorted by key). */
static inline int morton_key_compare(const void *key, const void *element)
{
    uint64_t a = *(const uint64_t *)key, b = *(const uint64_t *)element;
    return (a > b) - (a < b);
}

#endif
