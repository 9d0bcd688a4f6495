/* chunk.c: the chunk cache: a linear-probing hash map plus an LRU of clean chunks. */
#include "chunk.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"
#include "codec.h"

#define slot_of chunk_slot_of

void chunk_cache_init(chunk_cache *c, size_t chunk_bytes, size_t budget)
{
    memset(c, 0, sizeof *c);
    c->chunk_bytes = chunk_bytes;
    c->budget = budget;
}

/* Most recently used now. */
static void stamp(chunk_cache *c, chunk *k)
{
    k->stamp = ++c->clock;
}

static void account(chunk_cache *c, const chunk *k, int sign)
{
    if (!k->voxels)
        return;
    size_t *bytes = k->dirty ? &c->dirty_bytes : &c->clean_bytes;
    *bytes = sign > 0 ? *bytes + c->chunk_bytes : *bytes - c->chunk_bytes;
}

#define SLAB_BYTES ((size_t)2 << 20)

static int pooled(const chunk_cache *c)
{
    return c->chunk_bytes >= sizeof(void *) && c->chunk_bytes <= SLAB_BYTES / 2;
}

void *chunk_slabs_carve(chunk_slabs *s, size_t bytes)
{
    if (s->left < bytes) {
        if (s->count == s->capacity) {
            size_t capacity = s->capacity ? 2 * s->capacity : 16;
            void **grown = strata_realloc(s->slabs, capacity * sizeof *grown);
            if (!grown)
                return NULL;
            s->slabs = grown, s->capacity = capacity;
        }
        void *slab = NULL;
        if (strata_posix_memalign(&slab, SLAB_BYTES, SLAB_BYTES) != 0)
            return NULL;
#ifdef MADV_HUGEPAGE
        (void)madvise(slab, SLAB_BYTES, MADV_HUGEPAGE); /* advice only: may be refused */
#endif
        s->slabs[s->count++] = slab;
        s->bytes += SLAB_BYTES;
        s->carve = slab, s->left = SLAB_BYTES;
    }
    void *b = s->carve;
    s->carve += bytes, s->left -= bytes;
    return b;
}

void chunk_slabs_free(chunk_slabs *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->slabs[i]);
    free(s->slabs);
    memset(s, 0, sizeof *s);
}

uint16_t *chunk_buffer_get(chunk_cache *c)
{
    if (!pooled(c))
        return strata_malloc(c->chunk_bytes ? c->chunk_bytes : 1);
    if (c->free_list) {
        void *p = c->free_list;
        memcpy(&c->free_list, p, sizeof(void *));
        return p;
    }
    return chunk_slabs_carve(&c->slabs, c->chunk_bytes);
}

void chunk_buffer_put(chunk_cache *c, uint16_t *voxels)
{
    if (!voxels)
        return;
    if (!pooled(c)) {
        free(voxels);
        return;
    }
    memcpy(voxels, &c->free_list, sizeof(void *));
    c->free_list = voxels;
}

/* A chunk's log given back: to the cache's pool, or free(). */
static void drop_log(chunk_cache *c, chunk *k)
{
    if (c->logs)
        chunk_log_pool_release(c->logs, k);
    else
        free(k->log);
}

void chunk_cache_free(chunk_cache *c)
{
    for (size_t i = 0; i < c->capacity; i++) {
        if (c->slots[i].chunk) {
            chunk_buffer_put(c, c->slots[i].chunk->voxels);
            drop_log(c, c->slots[i].chunk);
            free(c->slots[i].chunk);
        }
    }
    free(c->slots);
    chunk_slabs_free(&c->slabs);
    size_t chunk_bytes = c->chunk_bytes, budget = c->budget;
    chunk_log_pool *logs = c->logs;
    chunk_cache_init(c, chunk_bytes, budget);
    c->logs = logs;
}

static strata_status grow_table(chunk_cache *c, strata_error *err)
{
    size_t capacity = c->capacity ? c->capacity * 2 : 1024;
    chunk_slot *slots = strata_calloc(capacity, sizeof *slots);
    if (!slots)
        return error_set(err, STRATA_ERR_NOMEM, "cannot grow the chunk cache to %zu slots",
                         capacity);
    chunk_slot *old = c->slots;
    size_t old_capacity = c->capacity;
    c->slots = slots;
    c->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++) {
        if (!old[i].chunk)
            continue;
        size_t j = slot_of(c, old[i].key);
        while (slots[j].chunk)
            j = (j + 1) & (capacity - 1);
        slots[j] = old[i];
    }
    free(old);
    return STRATA_OK;
}

strata_status chunk_cache_insert(chunk_cache *c, uint64_t key, uint16_t value, chunk **out,
                                 strata_error *err)
{
    /* Keep the load factor under 1/2 so probes stay short. */
    if (2 * (c->count + 1) > c->capacity) {
        strata_status st = grow_table(c, err);
        if (st)
            return st;
    }
    chunk *k = strata_calloc(1, sizeof *k);
    if (!k)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a chunk");
    k->key = key;
    k->value = value;
    size_t i = slot_of(c, key);
    while (c->slots[i].chunk)
        i = (i + 1) & (c->capacity - 1);
    c->slots[i] = (chunk_slot){key, k};
    c->count++;
    stamp(c, k);
    *out = c->last = k;
    return STRATA_OK;
}

strata_status chunk_make_dense(chunk_cache *c, chunk *k, strata_error *err)
{
    if (k->voxels)
        return STRATA_OK;
    size_t count = c->chunk_bytes / sizeof(uint16_t);
    uint16_t *voxels = chunk_buffer_get(c);
    if (!voxels)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate chunk key %llu",
                         (unsigned long long)k->key);
    if (k->value == 0)
        memset(voxels, 0, c->chunk_bytes);
    else
        for (size_t i = 0; i < count; i++)
            voxels[i] = k->value;
    k->voxels = voxels;
    account(c, k, +1);
    return STRATA_OK;
}

void chunk_set_dirty(chunk_cache *c, chunk *k, int dirty)
{
    if (k->dirty == (uint8_t)dirty)
        return;
    account(c, k, -1);
    k->dirty = (uint8_t)dirty;
    account(c, k, +1);
    if (!dirty)
        stamp(c, k);
}

void chunk_touch(chunk_cache *c, chunk *k)
{
    stamp(c, k);
}

void chunk_cache_remove(chunk_cache *c, chunk *k)
{
    size_t i = slot_of(c, k->key);
    while (c->slots[i].chunk != k)
        i = (i + 1) & (c->capacity - 1);
    /* Backward-shift deletion keeps every probe chain unbroken. */
    for (size_t j = (i + 1) & (c->capacity - 1); c->slots[j].chunk;
         j = (j + 1) & (c->capacity - 1)) {
        size_t home = slot_of(c, c->slots[j].key);
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            c->slots[i] = c->slots[j];
            i = j;
        }
    }
    c->slots[i] = (chunk_slot){0, NULL};
    c->count--;
    account(c, k, -1);
    if (c->last == k)
        c->last = NULL;
    chunk_buffer_put(c, k->voxels);
    drop_log(c, k);
    free(k);
}

/* The pool's class serving a log of capacity entries, or CHUNK_LOG_CLASSES (malloc). */
static int log_class(size_t capacity)
{
    int c = 0;
    while (c < CHUNK_LOG_CLASSES && ((size_t)16 << c) < capacity)
        c++;
    return c;
}

/* A block of class c's size from p: its free list, else carved from a slab. */
static uint64_t *pool_get(chunk_log_pool *p, int c)
{
    const size_t bytes = ((size_t)16 << c) * sizeof(uint64_t);
    if (p->free_list[c]) {
        void *b = p->free_list[c];
        memcpy(&p->free_list[c], b, sizeof(void *));
        return b;
    }
    return chunk_slabs_carve(&p->slabs, bytes);
}

void chunk_log_pool_release(chunk_log_pool *p, chunk *k)
{
    if (k->log) {
        int c = log_class(k->log_capacity);
        if (c < CHUNK_LOG_CLASSES) {
            memcpy(k->log, &p->free_list[c], sizeof(void *));
            p->free_list[c] = k->log;
        } else {
            free(k->log);
        }
    }
    k->log = NULL;
    k->log_count = k->log_capacity = 0;
}

strata_status chunk_log_pool_reserve(chunk_log_pool *p, chunk *k, size_t more, size_t limit,
                                     strata_error *err)
{
    if (k->whole)
        return STRATA_OK;
    if (k->log_count + more > limit) {
        /* A blind entry has no voxels to be written whole: its callers load the chunk
         * instead (world_blind_reserve), so reaching here is a caller's bug, refused
         * rather than dropping the changes logged. */
        if (k->blind)
            return error_set(err, STRATA_ERR_ARG,
                             "cannot log %zu more changes of blind chunk key %llu (%u logged)",
                             more, (unsigned long long)k->key, k->log_count);
        if (p)
            chunk_log_pool_release(p, k);
        chunk_set_whole(k);
        return STRATA_OK;
    }
    if (k->log_count + more <= k->log_capacity)
        return STRATA_OK;
    size_t capacity = k->log_capacity ? 2 * (size_t)k->log_capacity : 16;
    while (capacity < k->log_count + more)
        capacity *= 2;
    if (capacity > limit)
        capacity = limit;
    int c = p ? log_class(capacity) : CHUNK_LOG_CLASSES;
    uint64_t *grown = c < CHUNK_LOG_CLASSES ? pool_get(p, c)
                      : p                   ? strata_malloc(capacity * sizeof *grown)
                                            : strata_realloc(k->log, capacity * sizeof *grown);
    if (!grown)
        return error_set(err, STRATA_ERR_NOMEM, "cannot log %zu changes of chunk key %llu",
                         capacity, (unsigned long long)k->key);
    if (p) {
        uint32_t count = k->log_count;
        if (count)
            memcpy(grown, k->log, count * sizeof *grown);
        chunk_log_pool_release(p, k);
        k->log_count = count;
    }
    k->log = grown;
    k->log_capacity = (uint32_t)(c < CHUNK_LOG_CLASSES ? (size_t)16 << c : capacity);
    return STRATA_OK;
}

strata_status chunk_log_reserve(chunk *k, size_t more, size_t limit, strata_error *err)
{
    return chunk_log_pool_reserve(NULL, k, more, limit, err);
}

void chunk_log_pool_free(chunk_log_pool *p)
{
    chunk_slabs_free(&p->slabs);
    memset(p, 0, sizeof *p);
}

void chunk_log_clear(chunk *k)
{
    free(k->log);
    k->log = NULL;
    k->log_count = k->log_capacity = 0;
    k->whole = 0;
}

void chunk_set_whole(chunk *k)
{
    chunk_log_clear(k);
    k->whole = 1;
}

static int older_first(const void *a, const void *b)
{
    const chunk *x = *(chunk *const *)a, *y = *(chunk *const *)b;
    return (x->stamp > y->stamp) - (x->stamp < y->stamp);
}

void chunk_cache_trim(chunk_cache *c)
{
    if (c->clean_bytes <= c->budget)
        return;
    size_t n = 0, at = 0;
    for (size_t i = 0; i < c->capacity; i++)
        n += c->slots[i].chunk && c->slots[i].chunk->voxels && !c->slots[i].chunk->dirty;
    chunk **clean = strata_malloc((n ? n : 1) * sizeof *clean);
    if (!clean) { /* no memory to sort: evict in table order, still down to the budget */
        for (size_t i = 0; i < c->capacity && c->clean_bytes > c->budget;) {
            chunk *k = c->slots[i].chunk;
            if (k && k->voxels && !k->dirty)
                chunk_cache_remove(c, k); /* the slot may now hold another chunk */
            else
                i++;
        }
        return;
    }
    for (size_t i = 0; i < c->capacity; i++) {
        chunk *k = c->slots[i].chunk;
        if (k && k->voxels && !k->dirty)
            clean[at++] = k;
    }
    qsort(clean, n, sizeof *clean, older_first);
    /* Least recently used first, down to the budget; at least 1/16 of the clean
     * chunks once over it, so that a cache kept full by streaming loads sorts once
     * per n/16 loads rather than at each. */
    for (size_t i = 0; i < n && (c->clean_bytes > c->budget || i < n / 16); i++)
        chunk_cache_remove(c, clean[i]);
    free(clean);
}

void chunk_collapse_uniform(chunk_cache *c, chunk *k)
{
    size_t count = c->chunk_bytes / sizeof(uint16_t);
    if (!k->voxels || !chunk_is_uniform(k->voxels, count))
        return;
    account(c, k, -1);
    k->value = k->voxels[0];
    chunk_buffer_put(c, k->voxels);
    k->voxels = NULL;
}

void chunk_adopt(chunk_cache *c, chunk *k, uint16_t *voxels, size_t count)
{
    account(c, k, -1);
    if (k->voxels != voxels)
        chunk_buffer_put(c, k->voxels);
    k->voxels = NULL;
    if (chunk_is_uniform(voxels, count)) {
        k->value = voxels[0];
        chunk_buffer_put(c, voxels);
    } else {
        k->voxels = voxels;
    }
    account(c, k, +1);
}

void chunk_cache_each(chunk_cache *c, void (*fn)(chunk *k, void *ctx), void *ctx)
{
    for (size_t i = 0; i < c->capacity; i++)
        if (c->slots[i].chunk)
            fn(c->slots[i].chunk, ctx);
}
