/* chunk.h: resident chunks and a byte-bounded LRU cache of them. */
#ifndef STRATA_CHUNK_H
#define STRATA_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/** A chunk in memory: uniform (voxels NULL, all `value`) or dense C^3 uint16. */
typedef struct chunk {
    uint64_t key;
    uint16_t *voxels;
    uint16_t value;
    uint8_t dirty;
    /* A dirty chunk is committed whole (whole = 1: filled, or too many changes to log)
     * or, when its logged change is small, as a delta record (src/delta.h): log holds
     * its changes since its stored image, delta_log_entry values in the order made. */
    uint8_t whole;
    /* 1: an entry of the world's blind-write cache (world.h): no voxels, value
     * meaningless; log holds unconditional changes over the committed image. */
    uint8_t blind;
    uint32_t log_count, log_capacity;
    uint64_t *log;
    uint64_t stamp; /* the cache's clock at its last use: the LRU order of clean chunks */
} chunk;

/**
 * Blocks carved from 2 MiB slabs (huge pages where the kernel allows), for the
 * cache's dense buffers and the log pool's logs: first-touch page faults of many
 * small mallocs cost more than the work they hold. A block is never given back to
 * the slab (its owner keeps free lists); the slabs go with chunk_slabs_free.
 */
typedef struct {
    void **slabs;
    size_t count, capacity;
    uint8_t *carve; /* unused rest of the newest slab */
    size_t left;
    size_t bytes; /* slab bytes held */
} chunk_slabs;

/** A block of `bytes` (at most a slab) from the newest slab, or from a new one (the
 *  old slab's rest stays unused); NULL when out of memory. */
void *chunk_slabs_carve(chunk_slabs *s, size_t bytes);
/** Free every slab (no block of them in use any more) and reset s. */
void chunk_slabs_free(chunk_slabs *s);

/** Log capacities a chunk_log_pool serves: 16 << class entries, classes below this. */
#define CHUNK_LOG_CLASSES 9

/**
 * Change logs from 2 MiB slabs (huge pages where the kernel allows), a free list per
 * capacity (16, 32, ... 4,096 entries; larger logs use malloc). A log grown 16 -> 32
 * -> ... by realloc touched fresh heap pages at each step: about 1,500 page faults a
 * rank over the ten batches of the sim_strata_batches rows, 1.2 us each on this
 * machine. Blocks go back to their free list; slabs are freed with the pool.
 */
typedef struct {
    chunk_slabs slabs;
    void *free_list[CHUNK_LOG_CLASSES];
} chunk_log_pool;

/** A hash slot: the key beside the pointer, so probing never touches a chunk. */
typedef struct {
    uint64_t key;
    chunk *chunk; /* NULL: empty slot */
} chunk_slot;

/**
 * Chunks by key (open addressing, linear probing) with an LRU over clean
 * chunks. Dirty chunks are pinned: they are never evicted, only counted.
 * Recency is a stamp per chunk (one store per use, no list to splice on the
 * read path); eviction sorts the clean dense chunks by stamp.
 */
typedef struct {
    chunk_slot *slots;
    size_t capacity, count;
    uint64_t clock;     /* stamps handed out */
    size_t chunk_bytes; /* bytes of one dense chunk */
    size_t budget;      /* clean dense bytes allowed */
    size_t clean_bytes, dirty_bytes;
    chunk *last; /* last chunk found: repeated reads skip the hash */
    /* Dense buffers come from 2 MiB slabs (huge pages where the kernel allows):
     * first-touch page faults of one 64 KiB malloc per chunk cost more than
     * decoding the chunk on a VM. Released buffers are reused, slabs freed with
     * the cache; chunks larger than half a slab use malloc. */
    chunk_slabs slabs;
    void *free_list; /* released buffers, linked through their first bytes */
    /* Where the chunks' logs come from (chunk_log_pool_reserve) and go back to when a
     * chunk is removed or the cache freed; NULL: malloc (chunk_log_reserve). Kept by
     * chunk_cache_free. */
    chunk_log_pool *logs;
} chunk_cache;

void chunk_cache_init(chunk_cache *c, size_t chunk_bytes, size_t budget);
void chunk_cache_free(chunk_cache *c);
/** Home slot of a key: Fibonacci hashing spreads Morton keys, whose low bits cluster. */
static inline size_t chunk_slot_of(const chunk_cache *c, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (c->capacity - 1);
}

/** The chunk with key, or NULL. Inline: it is on every voxel read. */
static inline chunk *chunk_cache_find(chunk_cache *c, uint64_t key)
{
    if (c->last && c->last->key == key)
        return c->last;
    if (!c->capacity)
        return NULL;
    for (size_t i = chunk_slot_of(c, key);; i = (i + 1) & (c->capacity - 1)) {
        if (!c->slots[i].chunk)
            return NULL;
        if (c->slots[i].key == key)
            return c->last = c->slots[i].chunk;
    }
}
/** Insert a new uniform clean chunk; *out is the new chunk. */
strata_status chunk_cache_insert(chunk_cache *c, uint64_t key, uint16_t value, chunk **out,
                                 strata_error *err);
/** Give a chunk dense storage (filled with its uniform value). */
strata_status chunk_make_dense(chunk_cache *c, chunk *k, strata_error *err);
/** Mark a chunk dirty (pinned) or clean (evictable). */
void chunk_set_dirty(chunk_cache *c, chunk *k, int dirty);
/** Mark a clean chunk most recently used. */
void chunk_touch(chunk_cache *c, chunk *k);
/** Remove and free a chunk. */
void chunk_cache_remove(chunk_cache *c, chunk *k);
/** Evict least recently used clean chunks until clean bytes fit the budget. */
void chunk_cache_trim(chunk_cache *c);
/** A dense buffer of chunk_bytes (contents undefined), or NULL when memory is out. */
uint16_t *chunk_buffer_get(chunk_cache *c);
/** Give a buffer from chunk_buffer_get back (NULL is ignored). */
void chunk_buffer_put(chunk_cache *c, uint16_t *voxels);
/** Store voxels into a chunk, collapsing to uniform when they are. Takes ownership of voxels,
 *  which must come from chunk_buffer_get(c). */
void chunk_adopt(chunk_cache *c, chunk *k, uint16_t *voxels, size_t count);
/** Drop the dense storage of a chunk whose voxels are all equal. */
void chunk_collapse_uniform(chunk_cache *c, chunk *k);
/**
 * Make room in k's change log for `more` changes; past `limit` changes the chunk is
 * marked whole and its log dropped (not an error). STRATA_ERR_NOMEM when memory is out.
 */
strata_status chunk_log_reserve(chunk *k, size_t more, size_t limit, strata_error *err);
/** Log one change (room reserved by chunk_log_reserve; nothing when the chunk is whole). */
static inline void chunk_log(chunk *k, uint32_t voxel, uint16_t material)
{
    if (!k->whole)
        k->log[k->log_count] =
            (uint64_t)voxel << 40 | (uint64_t)(k->log_count & 0xffffff) << 16 | material,
        k->log_count++;
}
/** Forget k's changes (committed): no log, not whole. */
void chunk_log_clear(chunk *k);
/** chunk_log_reserve for a chunk whose log comes from pool p (its cache's `logs`; NULL:
 *  malloc, as chunk_log_reserve). A blind entry (no voxels) past `limit` is refused
 *  with STRATA_ERR_ARG, never marked whole: its changes would be lost. */
strata_status chunk_log_pool_reserve(chunk_log_pool *p, chunk *k, size_t more, size_t limit,
                                     strata_error *err);
/** Give k's log back to pool p: no log. */
void chunk_log_pool_release(chunk_log_pool *p, chunk *k);
/** Free the pool's slabs (every log from it given back or no longer used). */
void chunk_log_pool_free(chunk_log_pool *p);
/** Mark k to be written whole (its log dropped). */
void chunk_set_whole(chunk *k);
/** Calls fn for every chunk (any order). */
void chunk_cache_each(chunk_cache *c, void (*fn)(chunk *k, void *ctx), void *ctx);

#endif
