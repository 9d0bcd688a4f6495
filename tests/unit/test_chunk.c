/* test_chunk.c: the chunk cache: hash map with backward-shift deletion, LRU trimming,
 * dirty pinning and byte accounting, checked against simple references. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "splitmix.h"

#define EDGE        16
#define CHUNK_BYTES ((size_t)EDGE * EDGE * EDGE * sizeof(uint16_t))

/* The cache's own hash, to build keys that collide on purpose. */
static size_t home_slot(uint64_t key, size_t capacity)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (capacity - 1);
}

/* Every chunk in the table is reachable by find, and count matches. */
static void check_table(chunk_cache *c)
{
    size_t seen = 0;
    for (size_t i = 0; i < c->capacity; i++) {
        chunk *k = c->slots[i].chunk;
        if (!k)
            continue;
        ck_assert_uint_eq(c->slots[i].key, k->key);
        seen++;
        c->last = NULL; /* defeat the one-entry shortcut */
        ck_assert_ptr_eq(chunk_cache_find(c, k->key), k);
    }
    ck_assert_uint_eq(seen, c->count);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Recount clean and dirty dense bytes from the chunks themselves. */
static void check_accounting(chunk_cache *c)
{
    size_t clean = 0, dirty = 0;
    for (size_t i = 0; i < c->capacity; i++) {
        chunk *k = c->slots[i].chunk;
        if (k && k->voxels)
            *(k->dirty ? &dirty : &clean) += c->chunk_bytes;
    }
    ck_assert_uint_eq(clean, c->clean_bytes);
    ck_assert_uint_eq(dirty, c->dirty_bytes);
    /* Stamps are distinct and never ahead of the clock. */
    uint64_t *stamps = malloc((c->count + 1) * sizeof *stamps);
    size_t n = 0;
    for (size_t i = 0; i < c->capacity; i++)
        if (c->slots[i].chunk) {
            ck_assert_uint_le(c->slots[i].chunk->stamp, c->clock);
            stamps[n++] = c->slots[i].chunk->stamp;
        }
    qsort(stamps, n, sizeof *stamps, compare_u64);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ne(stamps[i - 1], stamps[i]);
    free(stamps);
}

START_TEST(insert_find_many)
{
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, (size_t)1 << 30);
    strata_error err;
    const size_t n = 5000;
    for (size_t i = 0; i < n; i++) {
        chunk *k;
        /* Morton-like keys: clustered low bits, large gaps. */
        uint64_t key = (uint64_t)i * 8 + (i % 3) * ((uint64_t)1 << 40);
        ck_assert_int_eq(chunk_cache_insert(&c, key, (uint16_t)i, &k, &err), STRATA_OK);
        ck_assert_uint_eq(k->key, key);
        ck_assert_uint_eq(k->value, (uint16_t)i);
        ck_assert(!k->dirty && !k->voxels);
    }
    ck_assert_uint_eq(c.count, n);
    ck_assert_uint_le(2 * c.count, c.capacity); /* load factor kept under 1/2 */
    for (size_t i = 0; i < n; i++) {
        uint64_t key = (uint64_t)i * 8 + (i % 3) * ((uint64_t)1 << 40);
        chunk *k = chunk_cache_find(&c, key);
        ck_assert_ptr_nonnull(k);
        ck_assert_uint_eq(k->value, (uint16_t)i);
    }
    ck_assert_ptr_null(chunk_cache_find(&c, 3));
    ck_assert_ptr_null(chunk_cache_find(&c, UINT64_MAX));
    check_table(&c);
    chunk_cache_free(&c);
    ck_assert_uint_eq(c.count, 0);
    ck_assert_ptr_null(chunk_cache_find(&c, 8));
}
END_TEST

START_TEST(empty_cache)
{
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, 0);
    ck_assert_ptr_null(chunk_cache_find(&c, 0));
    chunk_cache_trim(&c);
    chunk_cache_free(&c);
}
END_TEST

/* Keys that all hash to the same home slot form one long probe chain; removing
 * from its middle and its head must leave the rest findable. */
START_TEST(collisions_and_backward_shift)
{
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, (size_t)1 << 30);
    strata_error err;
    chunk *k;
    ck_assert_int_eq(chunk_cache_insert(&c, 1, 0, &k, &err), STRATA_OK);
    size_t capacity = c.capacity;
    /* Collect 40 keys whose home slot is the last slot, so the chain wraps around. */
    uint64_t keys[40];
    size_t found = 0;
    for (uint64_t key = 2; found < 40; key++)
        if (home_slot(key, capacity) == capacity - 1)
            keys[found++] = key;
    chunk *chunks[40];
    for (size_t i = 0; i < 40; i++) {
        ck_assert_int_eq(chunk_cache_insert(&c, keys[i], (uint16_t)i, &chunks[i], &err), STRATA_OK);
        ck_assert_uint_eq(c.capacity, capacity); /* no growth: the chain stays */
    }
    check_table(&c);
    /* Remove the chain's head, a middle element and its wrapped tail, one by one. */
    size_t order[] = {0, 20, 39, 1, 10, 38, 2};
    int removed[40] = {0};
    for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
        chunk_cache_remove(&c, chunks[order[r]]);
        removed[order[r]] = 1;
        check_table(&c);
        for (size_t i = 0; i < 40; i++) {
            c.last = NULL;
            chunk *got = chunk_cache_find(&c, keys[i]);
            if (removed[i])
                ck_assert_ptr_null(got);
            else
                ck_assert_ptr_eq(got, chunks[i]);
        }
    }
    c.last = NULL;
    ck_assert_ptr_nonnull(chunk_cache_find(&c, 1));
    chunk_cache_free(&c);
}
END_TEST

/* Random inserts, removals, lookups, dirty flips and densifications against a
 * plain array of (key, value, dirty, dense). */
typedef struct {
    uint64_t key;
    uint16_t value;
    int present, dirty, dense;
} model_entry;

START_TEST(random_ops_against_reference)
{
    enum { KEYS = 3000, OPS = 60000 };
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, (size_t)1 << 40);
    strata_error err;
    model_entry *model = calloc(KEYS, sizeof *model);
    ck_assert_ptr_nonnull(model);
    uint64_t seed = 12345;
    for (size_t i = 0; i < KEYS; i++) {
        /* Small keys plus a few huge ones: many share home slots at small capacities. */
        model[i].key = i < KEYS - 10 ? i * 7 : UINT64_MAX - i;
    }
    size_t present = 0;
    for (size_t op = 0; op < OPS; op++) {
        uint64_t bits = splitmix64(&seed);
        model_entry *m = &model[bits % KEYS];
        int action = (int)((bits >> 32) % 8);
        chunk *k = chunk_cache_find(&c, m->key);
        ck_assert_int_eq(k != NULL, m->present);
        if (k) {
            ck_assert_uint_eq(k->value, m->value);
            ck_assert_int_eq(k->dirty, m->dirty);
            ck_assert_int_eq(k->voxels != NULL, m->dense);
            if (m->dense)
                ck_assert_uint_eq(k->voxels[(bits >> 40) % (EDGE * EDGE * EDGE)], m->value);
        }
        if (!m->present && action < 4) {
            m->value = (uint16_t)(bits >> 48);
            ck_assert_int_eq(chunk_cache_insert(&c, m->key, m->value, &k, &err), STRATA_OK);
            m->present = 1, m->dirty = 0, m->dense = 0;
            present++;
        } else if (m->present && action < 3) {
            chunk_cache_remove(&c, k);
            m->present = 0;
            present--;
        } else if (m->present && action == 4 && present % 4 == 0) {
            ck_assert_int_eq(chunk_make_dense(&c, k, &err), STRATA_OK);
            m->dense = 1;
        } else if (m->present && action == 5) {
            chunk_set_dirty(&c, k, !m->dirty);
            m->dirty = !m->dirty;
        } else if (m->present && action == 6) {
            chunk_touch(&c, k);
        }
        ck_assert_uint_eq(c.count, present);
        if (op % 5000 == 0) {
            check_table(&c);
            check_accounting(&c);
        }
    }
    check_table(&c);
    check_accounting(&c);
    for (size_t i = 0; i < KEYS; i++) {
        c.last = NULL;
        ck_assert_int_eq(chunk_cache_find(&c, model[i].key) != NULL, model[i].present);
    }
    chunk_cache_free(&c);
    free(model);
}
END_TEST

/* Trimming: least recently used clean dense chunks go first, within the budget;
 * dirty chunks are never evicted; uniform chunks cost nothing and stay. */
START_TEST(lru_trim_budget_and_pinning)
{
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, 4 * CHUNK_BYTES);
    strata_error err;
    chunk *k[12];
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(chunk_cache_insert(&c, (uint64_t)i, (uint16_t)i, &k[i], &err), STRATA_OK);
        if (i < 10)
            ck_assert_int_eq(chunk_make_dense(&c, k[i], &err), STRATA_OK);
    }
    /* Chunks 10 and 11 stay uniform. Pin 0, 1 and 2 (the oldest) as dirty. */
    for (int i = 0; i < 3; i++)
        chunk_set_dirty(&c, k[i], 1);
    ck_assert_uint_eq(c.dirty_bytes, 3 * CHUNK_BYTES);
    ck_assert_uint_eq(c.clean_bytes, 7 * CHUNK_BYTES);
    /* Use 3 and 4 recently: the LRU order of clean dense chunks is now 5,6,7,8,9,3,4. */
    chunk_touch(&c, k[3]);
    chunk_touch(&c, k[4]);
    chunk_cache_trim(&c);
    ck_assert_uint_le(c.clean_bytes, c.budget);
    ck_assert_uint_eq(c.clean_bytes, 4 * CHUNK_BYTES);
    ck_assert_uint_eq(c.dirty_bytes, 3 * CHUNK_BYTES);
    for (int i = 0; i < 12; i++) {
        c.last = NULL;
        int expect = i <= 4 || i >= 8; /* 5, 6 and 7 were the least recently used */
        ck_assert_msg((chunk_cache_find(&c, (uint64_t)i) != NULL) == expect, "chunk %d", i);
    }
    check_accounting(&c);
    /* A budget of zero evicts every clean dense chunk, never a dirty or uniform one. */
    c.budget = 0;
    chunk_cache_trim(&c);
    ck_assert_uint_eq(c.clean_bytes, 0);
    ck_assert_uint_eq(c.dirty_bytes, 3 * CHUNK_BYTES);
    for (int i = 0; i < 12; i++) {
        c.last = NULL;
        int expect = i < 3 || i >= 10;
        ck_assert_msg((chunk_cache_find(&c, (uint64_t)i) != NULL) == expect, "chunk %d", i);
    }
    /* Cleaning a chunk makes it evictable again. */
    chunk_set_dirty(&c, k[1], 0);
    ck_assert_uint_eq(c.clean_bytes, CHUNK_BYTES);
    ck_assert_uint_eq(c.dirty_bytes, 2 * CHUNK_BYTES);
    chunk_cache_trim(&c);
    c.last = NULL;
    ck_assert_ptr_null(chunk_cache_find(&c, 1));
    check_table(&c);
    check_accounting(&c);
    chunk_cache_free(&c);
}
END_TEST

START_TEST(dense_uniform_and_accounting)
{
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, (size_t)1 << 30);
    strata_error err;
    chunk *k;
    const size_t n = CHUNK_BYTES / sizeof(uint16_t);
    ck_assert_int_eq(chunk_cache_insert(&c, 42, 7, &k, &err), STRATA_OK);
    ck_assert_uint_eq(c.clean_bytes + c.dirty_bytes, 0); /* uniform costs no dense bytes */
    ck_assert_int_eq(chunk_make_dense(&c, k, &err), STRATA_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(k->voxels[i], 7);
    ck_assert_uint_eq(c.clean_bytes, CHUNK_BYTES);
    ck_assert_int_eq(chunk_make_dense(&c, k, &err), STRATA_OK); /* idempotent */
    ck_assert_uint_eq(c.clean_bytes, CHUNK_BYTES);
    chunk_set_dirty(&c, k, 1);
    chunk_set_dirty(&c, k, 1);
    ck_assert_uint_eq(c.clean_bytes, 0);
    ck_assert_uint_eq(c.dirty_bytes, CHUNK_BYTES);
    /* Not uniform: collapse keeps it dense. */
    k->voxels[5] = 9;
    chunk_collapse_uniform(&c, k);
    ck_assert_ptr_nonnull(k->voxels);
    /* Uniform again: collapse drops the dense storage and its bytes. */
    k->voxels[5] = 3;
    for (size_t i = 0; i < n; i++)
        k->voxels[i] = 3;
    chunk_collapse_uniform(&c, k);
    ck_assert_ptr_null(k->voxels);
    ck_assert_uint_eq(k->value, 3);
    ck_assert_uint_eq(c.dirty_bytes, 0);
    /* Adopt a dense array, then a uniform one. */
    uint16_t *v = chunk_buffer_get(&c); /* adopted buffers come from the cache */
    for (size_t i = 0; i < n; i++)
        v[i] = (uint16_t)(i % 5);
    chunk_adopt(&c, k, v, n);
    ck_assert_ptr_eq(k->voxels, v);
    ck_assert_uint_eq(c.dirty_bytes, CHUNK_BYTES);
    uint16_t *u = chunk_buffer_get(&c);
    for (size_t i = 0; i < n; i++)
        u[i] = 11;
    chunk_adopt(&c, k, u, n);
    ck_assert_ptr_null(k->voxels);
    ck_assert_uint_eq(k->value, 11);
    ck_assert_uint_eq(c.dirty_bytes, 0);
    /* Adopting its own array again is allowed. */
    ck_assert_int_eq(chunk_make_dense(&c, k, &err), STRATA_OK);
    k->voxels[0] = 1;
    chunk_adopt(&c, k, k->voxels, n);
    ck_assert_ptr_nonnull(k->voxels);
    ck_assert_uint_eq(k->voxels[0], 1);
    ck_assert_uint_eq(c.dirty_bytes, CHUNK_BYTES);
    /* Removal gives the bytes back. */
    chunk_cache_remove(&c, k);
    ck_assert_uint_eq(c.dirty_bytes + c.clean_bytes, 0);
    ck_assert_uint_eq(c.count, 0);
    chunk_cache_free(&c);
}
END_TEST

static void count_chunk(chunk *k, void *ctx)
{
    (void)k;
    (*(size_t *)ctx)++;
}

/* Dense buffers: distinct while held, reused after release, carved from slabs for
 * chunk sizes up to half a slab, plain malloc above; all freed with the cache (ASan). */
START_TEST(buffer_pool_reuse)
{
    const size_t sizes[] = {2 * 16 * 16 * 16, 2 * 32 * 32 * 32, 2 * 128 * 128 * 128};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        chunk_cache c;
        chunk_cache_init(&c, sizes[s], 0);
        enum { N = 80 }; /* more than one 2 MiB slab of 64 KiB buffers */
        uint16_t *held[N];
        for (int i = 0; i < N; i++) {
            held[i] = chunk_buffer_get(&c);
            ck_assert_ptr_nonnull(held[i]);
            memset(held[i], i, sizes[s]); /* every byte writable (ASan) */
            for (int j = 0; j < i; j++)
                ck_assert_ptr_ne(held[i], held[j]);
        }
        if (sizes[s] <= ((size_t)1 << 20))
            ck_assert_uint_ge(c.slabs.bytes, N * sizes[s]);
        else
            ck_assert_uint_eq(c.slabs.bytes, 0);
        uint16_t *released = held[7];
        chunk_buffer_put(&c, released);
        uint16_t *again = chunk_buffer_get(&c);
        if (sizes[s] <= ((size_t)1 << 20))
            ck_assert_ptr_eq(again, released);
        held[7] = again;
        for (int i = 0; i < N; i++)
            chunk_buffer_put(&c, held[i]);
        chunk_buffer_put(&c, NULL);
        chunk_cache_free(&c);
        ck_assert_uint_eq(c.slabs.bytes, 0);
    }
}
END_TEST

/* Logs from a chunk_log_pool: growing keeps every entry, a log given back is handed out
 * again, past the limit the chunk is whole, logs past the pool's classes use malloc, and
 * a cache with the pool gives its chunks' logs back when they go. */
START_TEST(log_pool_grow_release_reuse)
{
    chunk_log_pool pool = {0};
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, 0);
    c.logs = &pool;
    chunk *a, *b;
    ck_assert_int_eq(chunk_cache_insert(&c, 1, 0, &a, NULL), STRATA_OK);
    ck_assert_int_eq(chunk_cache_insert(&c, 2, 0, &b, NULL), STRATA_OK);
    const size_t limit = 20000;
    for (uint32_t i = 0; i < 10000; i += 50) { /* grows 16 -> ... -> 16384 (malloc) */
        ck_assert_int_eq(chunk_log_pool_reserve(&pool, a, 50, limit, NULL), STRATA_OK);
        for (uint32_t j = i; j < i + 50; j++)
            chunk_log(a, j, (uint16_t)(j * 7));
    }
    ck_assert_uint_eq(a->log_count, 10000);
    ck_assert_uint_ge(a->log_capacity, 10000);
    for (uint32_t j = 0; j < 10000; j++)
        ck_assert_uint_eq(a->log[j], (uint64_t)j << 40 | (uint64_t)j << 16 | (uint16_t)(j * 7));
    ck_assert_uint_gt(pool.slabs.bytes, 0);
    /* a small log given back is the next of its size */
    ck_assert_int_eq(chunk_log_pool_reserve(&pool, b, 10, limit, NULL), STRATA_OK);
    uint64_t *first = b->log;
    chunk_log_pool_release(&pool, b);
    ck_assert_ptr_null(b->log);
    ck_assert_int_eq(chunk_log_pool_reserve(&pool, b, 10, limit, NULL), STRATA_OK);
    ck_assert_ptr_eq(b->log, first);
    /* past the limit: whole, no log */
    ck_assert_int_eq(chunk_log_pool_reserve(&pool, b, limit + 1, limit, NULL), STRATA_OK);
    ck_assert(b->whole && !b->log && !b->log_count);
    chunk_cache_remove(&c, a); /* its malloc'ed log freed (ASan: no leak, no bad free) */
    chunk_cache_free(&c);
    ck_assert_ptr_eq(c.logs, &pool);
    chunk_log_pool_free(&pool);
    ck_assert_uint_eq(pool.slabs.bytes, 0);
}
END_TEST

START_TEST(each_visits_all)
{
    chunk_cache c;
    chunk_cache_init(&c, CHUNK_BYTES, 0);
    strata_error err;
    chunk *k;
    for (uint64_t i = 0; i < 777; i++)
        ck_assert_int_eq(chunk_cache_insert(&c, i * 1000003, 0, &k, &err), STRATA_OK);
    size_t n = 0;
    chunk_cache_each(&c, count_chunk, &n);
    ck_assert_uint_eq(n, 777);
    chunk_cache_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, insert_find_many);
    tcase_add_test(tc, empty_cache);
    tcase_add_test(tc, collisions_and_backward_shift);
    tcase_add_test(tc, random_ops_against_reference);
    tcase_add_test(tc, lru_trim_budget_and_pinning);
    tcase_add_test(tc, dense_uniform_and_accounting);
    tcase_add_test(tc, each_visits_all);
    tcase_add_test(tc, buffer_pool_reuse);
    tcase_add_test(tc, log_pool_grow_release_reuse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
