/* splitmix.h: splitmix64 (Steele, Lea and Flood, 2014), the deterministic 64-bit
 * generator of the tests and benchmarks with fixed seeds: one place for it. */
#ifndef STRATA_SPLITMIX_H
#define STRATA_SPLITMIX_H

#include <stdint.h>

/** The next value of the sequence whose state is *state (advanced). */
static inline uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
