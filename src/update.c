/* update.c: staging updates, routing them to owners and applying them.
 *
 * How an update travels: strata_stage appends (key, voxel, material) to this
 * rank's staging array in O(1); strata_flush routes every rank's array with
 * route_records (MPI_Alltoallv), and the owner applies what it receives in key
 * order, each key's records in (source rank, staging order), so the last write
 * in that order wins. Loading and densifying every touched chunk happens before
 * any voxel changes, and is agreed on by all ranks: a failure changes nothing.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "delta.h"
#include "fault.h"
#include "world.h"

static strata_status stage_record(strata_world *w, int64_t x, int64_t y, int64_t z,
                                  uint16_t material, uint16_t expected, uint32_t flags)
{
    if (!world_contains(w, x, y, z)) {
        /* Remember the first bad voxel: the flush fails on every rank, naming it. */
        if (!w->staged_bad) {
            w->staged_bad = 1;
            w->bad_voxel[0] = x, w->bad_voxel[1] = y, w->bad_voxel[2] = z;
        }
        return WORLD_FAIL(w, STRATA_ERR_RANGE,
                          "voxel (%" PRId64 ", %" PRId64 ", %" PRId64
                          ") is outside the world (%" PRId64 " x %" PRId64 " x %" PRId64 ")",
                          x, y, z, w->committed.dims[0], w->committed.dims[1],
                          w->committed.dims[2]);
    }
    if (w->staged_count == w->staged_capacity) {
        size_t capacity = w->staged_capacity ? w->staged_capacity * 2 : 4096;
        route_record *grown = strata_realloc(w->staged, capacity * sizeof *grown);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot stage %zu updates", capacity);
        w->staged = grown;
        w->staged_capacity = capacity;
    }
    const int b = w->edge_bits;
    const uint64_t mask = (uint64_t)w->edge - 1;
    route_record *r = &w->staged[w->staged_count++];
    r->key = world_key(w, (uint64_t)x >> b, (uint64_t)y >> b, (uint64_t)z >> b);
    r->voxel = (uint32_t)(((uint64_t)x & mask) | ((uint64_t)y & mask) << b |
                          ((uint64_t)z & mask) << 2 * b) |
               flags;
    r->material = material;
    r->expected = expected;
    return STRATA_OK;
}

strata_status strata_stage(strata_world *w, int64_t x, int64_t y, int64_t z, uint16_t material)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    if (!w->writable)
        return WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "%s is open read-only", w->final_dir);
    return stage_record(w, x, y, z, material, 0, 0);
}

strata_status strata_stage_expect(strata_world *w, int64_t x, int64_t y, int64_t z,
                                  uint16_t material, uint16_t expected)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    if (!w->writable)
        return WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "%s is open read-only", w->final_dir);
    return stage_record(w, x, y, z, material, expected, ROUTE_CONDITIONAL);
}

static void clear_staged(strata_world *w)
{
    w->staged_count = 0;
    w->staged_bad = 0;
    /* Give back a large staging array after a large batch. */
    if (w->staged_capacity > ((size_t)1 << 22)) {
        free(w->staged);
        w->staged = NULL;
        w->staged_capacity = 0;
    }
}

/* Would applying the run [r, end) to a uniform chunk change any voxel? The run
 * is replayed against a running value only when every record hits the same voxel;
 * otherwise densify whenever any record may write another material. */
static int run_changes_uniform(const chunk *k, const route_record *r, const route_record *end)
{
    for (; r < end; r++)
        if (r->material != k->value)
            return 1;
    return 0;
}

/* Does the run [r, end) hold a conditional update (which must read the voxel)? */
static int run_conditional(const route_record *r, const route_record *end)
{
    for (; r < end; r++)
        if (r->voxel & ROUTE_CONDITIONAL)
            return 1;
    return 0;
}

/* Phase one: every chunk the records touch is resident, dense where needed, or,
 * when it is not resident and its run is unconditional, has room in its blind-write
 * log (world.h: it is not read now; its changes merge when it is next read). */
static strata_status prepare_chunks(strata_world *w, const route_record *recv, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && recv[j].key == recv[i].key)
            j++;
        chunk *k = chunk_cache_find(&w->owned, recv[i].key);
        strata_status st = STRATA_OK;
        if (!k && !run_conditional(recv + i, recv + j)) {
            chunk *b;
            st = world_blind_reserve(w, recv[i].key, recv + i, j - i, &b);
            if (st)
                return st;
            if (b) {
                i = j;
                continue;
            }
        }
        if (k)
            chunk_touch(&w->owned, k);
        else
            st = world_own_chunk(w, recv[i].key, &k);
        if (!st && !k->voxels && run_changes_uniform(k, recv + i, recv + j))
            st = chunk_make_dense(&w->owned, k, &w->error);
        if (st)
            return st;
        /* Room to log the run's changes (a delta record at commit), or whole. */
        if (k->voxels)
            st = chunk_log_reserve(k, j - i, delta_log_max(w->chunk_voxels), &w->error);
        if (st)
            return st;
        /* Pin it now so that eviction cannot drop it between the phases. */
        if (k->voxels)
            chunk_set_dirty(&w->owned, k, 1);
        i = j;
    }
    return STRATA_OK;
}

/* Phase two: apply in order. Cannot fail. Counts applied and skipped updates. */
static void apply_records(strata_world *w, const route_record *recv, size_t n, uint64_t counts[2])
{
    uint64_t applied = 0, skipped = 0;
    for (size_t i = 0; i < n;) {
        chunk *k = chunk_cache_find(&w->owned, recv[i].key);
        size_t j = i;
        if (!k) {
            /* blind: unconditional, logged over the committed image */
            chunk *b = chunk_cache_find(&w->blind, recv[i].key);
            for (; j < n && recv[j].key == recv[i].key; j++)
                chunk_log(b, recv[j].voxel, recv[j].material); /* unconditional: no flag */
            applied += j - i;
        } else if (!k->voxels) {
            /* Uniform and unchanged by this run: only conditions can skip. */
            for (; j < n && recv[j].key == recv[i].key; j++) {
                int skip = (recv[j].voxel & ROUTE_CONDITIONAL) && recv[j].expected != k->value;
                skipped += (uint64_t)skip;
                applied += (uint64_t)!skip;
            }
        } else {
            uint16_t *v = k->voxels;
            for (; j < n && recv[j].key == recv[i].key; j++) {
                const route_record *r = &recv[j];
                const uint32_t at = r->voxel & ROUTE_VOXEL;
                if ((r->voxel & ROUTE_CONDITIONAL) && v[at] != r->expected) {
                    skipped++;
                    continue;
                }
                v[at] = r->material;
                chunk_log(k, at, r->material);
                applied++;
            }
        }
        i = j;
    }
    counts[0] += applied;
    counts[1] += skipped;
}

/* Why this rank cannot flush (read-only, a pending signal, an out-of-range
 * staged voxel), or STRATA_OK. Local: the caller agrees on it once. */
static strata_status flush_refused(strata_world *w)
{
    strata_status st = world_write_refused(w, "a batch");
    if (st)
        return st;
    if (w->staged_bad)
        return WORLD_FAIL(w, STRATA_ERR_RANGE,
                          "update of voxel (%" PRId64 ", %" PRId64 ", %" PRId64
                          ") is outside the world (%" PRId64 " x %" PRId64 " x %" PRId64
                          "); the batch was not applied",
                          w->bad_voxel[0], w->bad_voxel[1], w->bad_voxel[2], w->committed.dims[0],
                          w->committed.dims[1], w->committed.dims[2]);
    return STRATA_OK;
}

/* The flush, failing on every rank when prior (this rank's status) failed on any. */
static strata_status flush_batch(strata_world *w, strata_status prior, strata_batch_stats *stats)
{
    double start = MPI_Wtime();
    /* A refusal is agreed with the routing's packing (one agreement fewer). */
    route_record *recv = NULL;
    size_t recv_n = 0;
    uint64_t local[3] = {w->staged_count, 0, 0}, total[3] = {0, 0, 0};
    strata_status st = route_records(w->comm, prior ? prior : flush_refused(w), w->split, w->staged,
                                     w->staged_count, &w->route, &recv, &recv_n, NULL, &w->error);
    clear_staged(w);
    /* Phase one's outcome (the exchange, preparing the chunks, an injected fault)
     * is agreed before any rank applies: every rank applies the batch or none does. */
    if (!st)
        st = prepare_chunks(w, recv, recv_n);
    if (!st && strata_fault_point("update-batch"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected in a batch");
    st = world_agree(w, st);
    if (!st) {
        apply_records(w, recv, recv_n, &local[1]);
        world_evict(w);
    }
    /* The routing buffers stay for the next batch, up to a bound (docs/architecture.md). */
    route_scratch_trim(&w->route, ROUTE_KEEP_BYTES);
    if (!st)
        st = error_mpi(&w->error, MPI_Allreduce(local, total, 3, MPI_UINT64_T, MPI_SUM, w->comm),
                       "summing batch statistics");
    if (stats) {
        stats->submitted = total[0];
        stats->applied = total[1];
        stats->skipped = total[2];
        stats->seconds = MPI_Wtime() - start;
    }
    return st;
}

strata_status strata_flush(strata_world *w, strata_batch_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    return flush_batch(w, STRATA_OK, stats);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define STAGE_BMI2 1 /* Morton keys by parallel bit deposits, chosen at run time */
/* morton_encode3 by three bit deposits (BMI2): 5 instructions, not the ~27 of the
 * table lookups, a fifth of staging's. */
__attribute__((target("bmi2"))) static inline uint64_t key_bmi2(uint64_t cx, uint64_t cy,
                                                                uint64_t cz)
{
    const uint64_t m = 0x1249249249249249ULL; /* bits 3i, i < 21 */
    return _pdep_u64(cx, m) | _pdep_u64(cy, m << 1) | _pdep_u64(cz, m << 2);
}
#endif

/* The staging loop over n updates (room made), the world's box and key layout in
 * registers; bmi2: keys by key_bmi2. An out-of-range voxel goes through stage_record,
 * which remembers it (the flush fails on every rank, naming it). */
static inline __attribute__((always_inline)) void
stage_loop(strata_world *w, const strata_update *updates, size_t n, int bmi2)
{
    const uint64_t d0 = (uint64_t)w->committed.dims[0], d1 = (uint64_t)w->committed.dims[1],
                   d2 = (uint64_t)w->committed.dims[2];
    const int b = w->edge_bits;
    const uint64_t mask = (uint64_t)w->edge - 1;
    route_record *out = w->staged + w->staged_count;
    for (size_t i = 0; i < n; i++) {
        const strata_update *u = &updates[i];
        /* negative coordinates wrap to huge unsigned values: one compare per axis */
        const uint64_t x = (uint64_t)u->x, y = (uint64_t)u->y, z = (uint64_t)u->z;
        if ((x >= d0) | (y >= d1) | (z >= d2)) {
            w->staged_count = (size_t)(out - w->staged);
            (void)stage_record(w, u->x, u->y, u->z, u->material, u->expected, 0);
            continue;
        }
#ifdef STAGE_BMI2
        out->key = bmi2 ? key_bmi2(x >> b, y >> b, z >> b) : world_key(w, x >> b, y >> b, z >> b);
#else
        (void)bmi2;
        out->key = world_key(w, x >> b, y >> b, z >> b);
#endif
        out->voxel = (uint32_t)((x & mask) | (y & mask) << b | (z & mask) << 2 * b) |
                     (u->has_expected ? ROUTE_CONDITIONAL : 0);
        out->material = u->material;
        out->expected = u->expected;
        out++;
    }
    w->staged_count = (size_t)(out - w->staged);
}

static void stage_loop_plain(strata_world *w, const strata_update *updates, size_t n)
{
    stage_loop(w, updates, n, 0);
}

#ifdef STAGE_BMI2
__attribute__((target("bmi2"))) static void stage_loop_bmi2(strata_world *w,
                                                            const strata_update *updates, size_t n)
{
    stage_loop(w, updates, n, 1);
}
#endif

/* Stage n updates: stage_record's work for a whole array, with the room made once. */
static strata_status stage_updates(strata_world *w, const strata_update *updates, size_t n)
{
    if (n > w->staged_capacity - w->staged_count) {
        size_t capacity = w->staged_capacity * 2 > w->staged_count + n ? w->staged_capacity * 2
                                                                       : w->staged_count + n;
        size_t bytes;
        /* a new array (on huge pages when large), what is staged already copied in */
        route_record *grown = route_alloc_records(capacity, sizeof *grown, &bytes);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot stage %zu updates", capacity);
        if (w->staged_count)
            memcpy(grown, w->staged, w->staged_count * sizeof *grown);
        free(w->staged);
        w->staged = grown;
        w->staged_capacity = bytes / sizeof *grown;
    }
#ifdef STAGE_BMI2
    if (__builtin_cpu_supports("bmi2")) {
        stage_loop_bmi2(w, updates, n);
        return STRATA_OK;
    }
#endif
    stage_loop_plain(w, updates, n);
    return STRATA_OK;
}

strata_status strata_update_batch(strata_world *w, const strata_update *updates, size_t n,
                                  strata_batch_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    strata_status st = n && !updates ? world_null_argument(w, __func__, "updates") : STRATA_OK;
    /* Out-of-range records are remembered and fail the flush on every rank. */
    if (!st)
        st = stage_updates(w, updates, n);
    if (st) /* fail in the flush, where the other ranks are; like them, drop what was staged */
        clear_staged(w);
    return flush_batch(w, st, stats);
}
