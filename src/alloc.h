/* alloc.h: the library's allocation calls, through one place so that tests can
 * make one of them fail.
 *
 * Every allocation in src/ goes through strata_malloc, strata_calloc,
 * strata_realloc or strata_posix_memalign (free() stays free: the memory is the
 * C library's). Unarmed, each costs one predictable branch over the C call.
 * Armed (strata_alloc_fail, or STRATA_ALLOC_FAIL=N[:RANK[:SITE]] read at the
 * first allocation), the Nth counted allocation on RANK of MPI_COMM_WORLD (any
 * rank when omitted or -1) returns NULL once; SITE, when given, counts only the
 * sites whose "file:line" contains it ("update.c"), or, with a line
 * ("store.c:812"), that one site. Allocations by HDF5, MPI and zstd are
 * not counted: they fail in their own ways.
 */
#ifndef STRATA_ALLOC_H
#define STRATA_ALLOC_H

#include <stddef.h>

#define STRATA_ALLOC_STR2(x) #x
#define STRATA_ALLOC_STR(x)  STRATA_ALLOC_STR2(x)
#define STRATA_ALLOC_SITE    __FILE__ ":" STRATA_ALLOC_STR(__LINE__)

void *strata_malloc_at(size_t size, const char *site);
void *strata_calloc_at(size_t count, size_t size, const char *site);
void *strata_realloc_at(void *p, size_t size, const char *site);
int strata_posix_memalign_at(void **p, size_t alignment, size_t size, const char *site);

#define strata_malloc(size)        strata_malloc_at((size), STRATA_ALLOC_SITE)
#define strata_calloc(count, size) strata_calloc_at((count), (size), STRATA_ALLOC_SITE)
#define strata_realloc(p, size)    strata_realloc_at((p), (size), STRATA_ALLOC_SITE)
#define strata_posix_memalign(p, a, size)                                                          \
    strata_posix_memalign_at((p), (a), (size), STRATA_ALLOC_SITE)

/* ---- for tests ------------------------------------------------------------------ */

/** Arm: the nth allocation counted from now (1 = the next) on `rank` of
 *  MPI_COMM_WORLD (-1: every rank) fails once; site: NULL, or a filter of the
 *  sites counted as for STRATA_ALLOC_FAIL. nth = 0 disarms but keeps counting (to
 *  learn how many allocations an operation makes). Call after MPI_Init. */
void strata_alloc_fail(long nth, int rank, const char *site);
/** Stop counting and failing. */
void strata_alloc_disarm(void);
/** Allocations counted since strata_alloc_fail (on this rank). */
long strata_alloc_count(void);
/** 1 once the armed failure has happened. */
int strata_alloc_failed(void);
/** The "file:line" of the allocation made to fail, or NULL before it happened. */
const char *strata_alloc_failed_site(void);
/** Distinct allocation sites counted since strata_alloc_fail (at most 4096 kept);
 *  sites[i] receives up to max of their "file:line" names. */
size_t strata_alloc_sites(const char **sites, size_t max);

#endif
