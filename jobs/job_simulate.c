/* job_simulate.c: `strata simulate WORLD --steps N [--process P] [--seed S] [--commit-every K]`.
 *
 * The example a simulation code copies: a domain-decomposed, owner-computes
 * simulation on the box API. Each rank's domain is the chunks its key range
 * covers (strata_domain_boxes). Every step, every rank reads blocks of its
 * domain plus a halo (strata_read_boxes: its own chunks are copied locally, the
 * halo comes from the neighbours' owners), computes the new value of every
 * voxel of each block from the old state alone, and writes what changed back
 * (strata_write_boxes). All reads of a step come before any write, and every
 * voxel is computed and written only by its owner, so a run's result depends on
 * the seed, never on the rank count. Every K steps, and at the end, it commits.
 *
 * Which blocks: the rules act only at candidates (simulate_rules.c), so a
 * voxel far from every candidate keeps its value. Step 0 computes the whole
 * domain in blocks of up to BLOCK_CHUNKS^3 chunks and learns, per tile of T x T
 * columns of each own chunk, the z range where a voxel may change; later steps
 * compute only those ranges (simulate_active.c), each rank widening them by
 * every change of the step, its own and the others' (exchanged as boxes, in
 * proportion to the change). `--all-blocks` computes every block every step:
 * the reference the tests compare with. The result is the same world.
 *
 * The processes (erosion, deposition, volcanic) are in simulate_rules.c, shared
 * with the plain parallel HDF5 version of the same step in the bench
 * (bench/sim_hdf5.c). `--process none` applies no rule and writes every block
 * back unchanged, every step: the box I/O of a whole step alone, against which
 * a real step's time is measured.
 */
#include <inttypes.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "jobs.h"
#include "simulate_active.h"
#include "simulate_rules.h"

static const char usage[] =
    "strata simulate WORLD --steps N [--process erosion|deposition|volcanic|none] [--seed S]\n"
    "                      [--commit-every K] [--all-blocks] [--tile T] [--defer-index]\n"
    "                      [--cache-mb M] [--quiet]\n"
    "  every rank computes the voxels of the chunks it owns that may change this step (the\n"
    "  tiles of T x T columns, default 8, near a candidate of the process; all at step 0),\n"
    "  reading them plus a halo and writing back what changed; the result depends on the\n"
    "  seed S only, not on the number of ranks nor on T; --all-blocks computes every voxel\n"
    "  every step (the reference: the same world); `none` applies no rule and reads and\n"
    "  writes every block back: the box I/O of a step alone";

/* Domain blocks are at most this many chunks along an axis; a round of reads
 * holds at most this many voxels per rank. */
#define BLOCK_CHUNKS 4
#define ROUND_VOXELS ((uint64_t)32 << 20)

/* The domain blocks' edge in chunks: BLOCK_CHUNKS, halved while a block would
 * hold more than a round's voxels (chunks of 128 or 256), since a block is
 * read and computed whole: 4^3 chunks of 256 are 2^30 voxels, 4 GiB in and
 * out per rank. */
static int64_t block_chunks(int64_t edge)
{
    int64_t k = BLOCK_CHUNKS;
    while (k > 1 &&
           (uint64_t)(k * edge) * (uint64_t)(k * edge) * (uint64_t)(k * edge) > ROUND_VOXELS)
        k /= 2;
    return k;
}

/* Measured per rank over the run. */
typedef struct {
    uint64_t read, changed, written; /* voxels: box statistics, totals over the ranks */
    uint64_t read_first;             /* voxels read at step 0 */
    uint64_t tiles, blocks;          /* active runs: tiles and blocks computed, over the steps */
    uint64_t tiles_all;              /* active runs: this rank's tiles */
    double read_s, write_s, route_s, compute_s, commit_s;
    double plan_s; /* active runs: choosing the blocks and exchanging the changes */
} sim_totals;

/* The changed chunks of a computed block, as whole-chunk boxes to write. */
typedef struct {
    int64_t (*boxes)[6];
    uint16_t **data;
    size_t n, cap;
} changes;

static int keep_changed_chunks(const simulation *s, const sim_region *r, changes *c,
                               uint64_t *changed)
{
    const int64_t *b = r->block, e = s->edge;
    const int64_t nx = b[3] - b[0], ny = b[4] - b[1], rnx = r->box[3] - r->box[0],
                  rny = r->box[4] - r->box[1];
    for (int64_t cz = b[2]; cz < b[5]; cz += e)
        for (int64_t cy = b[1]; cy < b[4]; cy += e)
            for (int64_t cx = b[0]; cx < b[3]; cx += e) {
                int64_t k[6] = {cx,
                                cy,
                                cz,
                                cx + e < b[3] ? cx + e : b[3],
                                cy + e < b[4] ? cy + e : b[4],
                                cz + e < b[5] ? cz + e : b[5]};
                uint64_t diff = 0;
                for (int64_t z = k[2]; z < k[5]; z++)
                    for (int64_t y = k[1]; y < k[4]; y++) {
                        const uint16_t *o = r->out + ((z - b[2]) * ny + (y - b[1])) * nx;
                        const uint16_t *i =
                            r->in + ((z - r->box[2]) * rny + (y - r->box[1])) * rnx - r->box[0];
                        if (!memcmp(o + (k[0] - b[0]), i + k[0], (size_t)(k[3] - k[0]) * 2))
                            continue;
                        for (int64_t x = k[0]; x < k[3]; x++)
                            diff += o[x - b[0]] != i[x];
                    }
                if (!diff && s->process != SIM_NONE)
                    continue;
                *changed += diff;
                if (c->n == c->cap) {
                    size_t cap = c->cap ? 2 * c->cap : 64;
                    int64_t(*boxes)[6] = strata_realloc(c->boxes, cap * sizeof *boxes);
                    if (boxes)
                        c->boxes = boxes;
                    uint16_t **data = strata_realloc(c->data, cap * sizeof *data);
                    if (data)
                        c->data = data;
                    if (!boxes || !data)
                        return -1;
                    c->cap = cap;
                }
                size_t v = (size_t)((k[3] - k[0]) * (k[4] - k[1]) * (k[5] - k[2])), at = 0;
                uint16_t *d = strata_malloc(v * sizeof *d);
                if (!d)
                    return -1;
                for (int64_t z = k[2]; z < k[5]; z++)
                    for (int64_t y = k[1]; y < k[4]; y++, at += (size_t)(k[3] - k[0]))
                        memcpy(d + at, r->out + ((z - b[2]) * ny + (y - b[1])) * nx + (k[0] - b[0]),
                               (size_t)(k[3] - k[0]) * 2);
                memcpy(c->boxes[c->n], k, sizeof k);
                c->data[c->n++] = d;
            }
    return 0;
}

static void free_changes(changes *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->data[i]);
    c->n = 0;
}

/* The blocks of a step cut into rounds of reads: [round_start[i], round_start[i + 1]). */
typedef struct {
    int64_t (*blocks)[6];
    size_t n, cap;        /* blocks; room in blocks, boxes, in, out */
    int64_t (*boxes)[6];  /* block + halo */
    uint16_t **in, **out; /* per block, in the arena while its round runs */
    uint16_t *arena;      /* the largest round's arrays, kept for every step */
    uint64_t arena_cap;
    size_t *round_start, round_cap;
    uint64_t mine, rounds; /* this rank's rounds; agreed: the most any rank needs */
} domain;

static uint64_t box_size(const int64_t b[6])
{
    return (uint64_t)((b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2]));
}

/* Room for n blocks (their boxes and arrays) and n + 2 round starts. */
static int domain_grow(domain *d, size_t n)
{
    n = n ? n : 1; /* never NULL arrays: boxes + first stays defined */
    if (n + 2 > d->round_cap) {
        size_t *r = strata_realloc(d->round_start, (n + 2) * sizeof *r);
        if (!r)
            return -1;
        d->round_start = r, d->round_cap = n + 2;
    }
    if (n <= d->cap && d->blocks)
        return 0;
    size_t cap = n > 2 * d->cap ? n : 2 * d->cap;
    int64_t(*blocks)[6] = strata_realloc(d->blocks, cap * sizeof *blocks);
    if (blocks)
        d->blocks = blocks;
    int64_t(*boxes)[6] = strata_realloc(d->boxes, cap * sizeof *boxes);
    if (boxes)
        d->boxes = boxes;
    uint16_t **in = strata_realloc(d->in, cap * sizeof *in);
    if (in)
        d->in = in;
    uint16_t **out = strata_realloc(d->out, cap * sizeof *out);
    if (out)
        d->out = out;
    if (!blocks || !boxes || !in || !out)
        return -1;
    d->cap = cap;
    return 0;
}

/* The halo boxes and rounds of d's n blocks, and an arena for the largest round. */
static int domain_plan(const simulation *s, domain *d)
{
    if (domain_grow(d, d->n))
        return -1;
    uint64_t held = 0, rounds = 0, arrays = 0, most = 0;
    for (size_t i = 0; i < d->n; i++) {
        sim_halo_box(s, d->blocks[i], d->boxes[i]);
        uint64_t v = box_size(d->boxes[i]);
        if (i == 0 || held + v > ROUND_VOXELS)
            d->round_start[rounds++] = i, held = 0, arrays = 0;
        held += v;
        arrays += v + (s->scatter ? v : box_size(d->blocks[i]));
        most = arrays > most ? arrays : most;
    }
    d->mine = rounds;
    d->round_start[rounds] = d->n;
    /* Kept from step to step: fresh memory's page faults would cost every step
     * more than the box reads that fill it. */
    if (most > d->arena_cap || !d->arena) {
        free(d->arena);
        d->arena_cap = most ? most : 1;
        if (!(d->arena = strata_malloc(d->arena_cap * sizeof *d->arena)))
            d->arena_cap = 0;
    }
    return d->arena ? 0 : -1;
}

/* Every rank runs as many rounds as the rank that needs most (those past its
 * own read nothing). Collective. */
static void domain_agree_rounds(domain *d)
{
    MPI_Allreduce(&d->mine, &d->rounds, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
}

static void domain_free(domain *d)
{
    free(d->blocks), free(d->boxes), free(d->in), free(d->out), free(d->round_start);
    free(d->arena);
}

/* The changes of an active step, kept from step to step: each computed block's
 * changed box (bounds, exchanged between the ranks), and the runs of changed
 * voxels along x in it as boxes to write (boxes), with their new voxels and
 * the old ones they are written over: each run is written conditionally, as
 * sediment from another block's source may have landed beside it. */
typedef struct {
    int64_t (*bounds)[6];
    size_t bn, bcap;
    int64_t (*boxes)[6];
    size_t *at; /* where box i's new voxels start in pool (its old ones follow) */
    const uint16_t **data, **expected;
    size_t n, cap;
    uint16_t *pool;
    size_t used, pool_cap;
} change_pool;

/* Room for one more box to write of v voxels. 0, or -1 when out of memory. */
static int pool_room(change_pool *c, size_t v)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        int64_t(*boxes)[6] = strata_realloc(c->boxes, cap * sizeof *boxes);
        if (boxes)
            c->boxes = boxes;
        size_t *at = strata_realloc(c->at, cap * sizeof *at);
        if (at)
            c->at = at;
        const uint16_t **data = strata_realloc(c->data, cap * sizeof *data);
        if (data)
            c->data = data;
        const uint16_t **expected = strata_realloc(c->expected, cap * sizeof *expected);
        if (expected)
            c->expected = expected;
        if (!boxes || !at || !data || !expected)
            return -1;
        c->cap = cap;
    }
    if (c->used + 2 * v > c->pool_cap) {
        size_t cap = c->used + 2 * v > 2 * c->pool_cap ? c->used + 2 * v : 2 * c->pool_cap;
        uint16_t *pool = strata_realloc(c->pool, cap * sizeof *pool);
        if (!pool)
            return -1;
        c->pool = pool, c->pool_cap = cap;
    }
    return 0;
}

/* Keep the changes of a computed region (scatter: out is the read box): its
 * changed box, and each run of changed voxels along x with its new and old
 * voxels, copied out of the round's arena. 0, or -1 when out of memory. */
static int pool_keep(change_pool *c, const sim_region *r)
{
    const int64_t *k = r->changed_box, *b = r->box;
    if (c->bn == c->bcap) {
        size_t cap = c->bcap ? 2 * c->bcap : 256;
        int64_t(*bounds)[6] = strata_realloc(c->bounds, cap * sizeof *bounds);
        if (!bounds)
            return -1;
        c->bounds = bounds, c->bcap = cap;
    }
    memcpy(c->bounds[c->bn++], k, sizeof c->bounds[0]);
    const int64_t nx = b[3] - b[0], ny = b[4] - b[1], row = k[3] - k[0];
    for (int64_t z = k[2]; z < k[5]; z++)
        for (int64_t y = k[1]; y < k[4]; y++) {
            const size_t from = (size_t)(((z - b[2]) * ny + (y - b[1])) * nx + (k[0] - b[0]));
            const uint16_t *o = r->out + from, *i = r->in + from;
            if (!memcmp(o, i, (size_t)row * sizeof *o))
                continue;
            for (int64_t x = 0; x < row;) {
                if (o[x] == i[x]) {
                    x++;
                    continue;
                }
                int64_t end = x + 1;
                while (end < row && o[end] != i[end])
                    end++;
                const size_t v = (size_t)(end - x);
                if (pool_room(c, v))
                    return -1;
                const int64_t run[6] = {k[0] + x, y, z, k[0] + end, y + 1, z + 1};
                memcpy(c->boxes[c->n], run, sizeof run);
                memcpy(c->pool + c->used, o + x, v * sizeof *o);
                memcpy(c->pool + c->used + v, i + x, v * sizeof *i);
                c->at[c->n++] = c->used;
                c->used += 2 * v;
                x = end;
            }
        }
    return 0;
}

static void pool_free(change_pool *c)
{
    free(c->bounds), free(c->boxes), free(c->at), free(c->data), free(c->expected), free(c->pool);
}

/* Where a step computes: every block of the domain (a), or the active tiles. */
typedef struct {
    sim_activity *activity; /* NULL: every block */
    int64_t (*domain)[6];   /* the domain's blocks (step 0 computes them all) */
    size_t domain_n;
    uint8_t *may_change; /* sim_region.may_change of the step's largest block */
    size_t may_change_cap;
    change_pool changes;
    int *
        counts; /* per rank (6 x ranks): the exchange of changed boxes (int64 words) and landings */
    int64_t *all; /* every rank's changed boxes */
    uint64_t all_cap;
    uint64_t *landed_all;    /* rank 0: every rank's landings of the step */
    uint64_t landed_all_cap; /* followed by every rank */
    /* Scatter: the voxels sediment landed on this step (sim_region.landed of
     * each block, then of every rank at rank 0, which counts them once). */
    uint64_t *landed, *block_landed;
    size_t landed_n, landed_cap, block_landed_cap;
} step_plan;

/* Read round `round`'s blocks with their halos. Collective. */
static strata_status read_round(strata_world *w, const simulation *s, domain *d, uint64_t round,
                                uint64_t step, int failed, sim_totals *t)
{
    size_t first = round < d->mine ? d->round_start[round] : d->n;
    size_t n = round < d->mine ? d->round_start[round + 1] - first : 0;
    uint16_t *at = d->arena;
    for (size_t i = first; i < first + n; i++) {
        d->in[i] = at;
        at += box_size(d->boxes[i]);
        d->out[i] = at;
        at += box_size(s->scatter ? d->boxes[i] : d->blocks[i]); /* scatter: out is the box */
    }
    strata_box_io_stats rs;
    /* A rank out of memory reads nothing; the write's agreement stops all. */
    strata_status st = strata_read_boxes(w, (const int64_t(*)[6])d->boxes + first, failed ? 0 : n,
                                         0, d->in + first, &rs);
    t->read_s += rs.seconds;
    t->route_s += rs.route_seconds;
    t->read += rs.voxels;
    if (step == 0)
        t->read_first += rs.voxels;
    return st;
}

/* Compute block i of the step and keep what changed. 0, or -1 when out of memory. */
static int compute_block(const simulation *s, domain *d, size_t i, uint64_t step, step_plan *p,
                         changes *c, sim_totals *t)
{
    sim_region r = {.in = d->in[i], .out = d->out[i]};
    memcpy(r.block, d->blocks[i], sizeof r.block);
    memcpy(r.box, d->boxes[i], sizeof r.box);
    if (!p->activity) {
        sim_compute_block(s, &r, step);
        return keep_changed_chunks(s, &r, c, &t->changed);
    }
    r.may_change = p->may_change;
    r.tile = p->activity->tile;
    r.landed = p->block_landed, r.landed_cap = p->block_landed_cap;
    sim_compute_block(s, &r, step);
    p->block_landed = r.landed, p->block_landed_cap = r.landed_cap;
    if (r.landed_failed)
        return -1;
    sim_activity_tighten(p->activity, r.block, r.may_change);
    t->changed += r.changed;
    if (r.landed_n) {
        if (p->landed_n + r.landed_n > p->landed_cap) {
            size_t cap = 2 * (p->landed_n + r.landed_n);
            uint64_t *l = strata_realloc(p->landed, cap * sizeof *l);
            if (!l)
                return -1;
            p->landed = l, p->landed_cap = cap;
        }
        memcpy(p->landed + p->landed_n, r.landed, r.landed_n * sizeof *r.landed);
        p->landed_n += r.landed_n;
    }
    return r.changed || r.landed_n ? pool_keep(&p->changes, &r) : 0;
}

/* One step: every round reads its blocks with halos and computes them; then the
 * changes of the whole step are written at once (all reads of a step see the
 * old state). *failed: this rank is out of memory (set when computing a block
 * fails); it then writes NULL data, so that the write fails on every rank.
 * Collective. */
static strata_status step_once(strata_world *w, const simulation *s, domain *d, uint64_t step,
                               step_plan *p, int *out_of_memory, sim_totals *t)
{
    int failed = *out_of_memory;
    changes c = {0};
    strata_status st = STRATA_OK;
    p->changes.n = p->changes.bn = p->changes.used = 0;
    p->landed_n = 0;
    for (uint64_t round = 0; round < d->rounds && !st; round++) {
        st = read_round(w, s, d, round, step, failed, t);
        double t0 = MPI_Wtime();
        const size_t first = round < d->mine ? d->round_start[round] : d->n;
        const size_t end = round < d->mine ? d->round_start[round + 1] : d->n;
        for (size_t i = first; !st && !failed && i < end; i++)
            failed = compute_block(s, d, i, step, p, &c, t) != 0;
        t->compute_s += MPI_Wtime() - t0;
    }
    if (!st) {
        const change_pool *q = &p->changes;
        for (size_t i = 0; p->activity && i < q->n; i++) {
            q->data[i] = q->pool + q->at[i];
            q->expected[i] = q->data[i] + box_size(q->boxes[i]);
        }
        const int64_t(*boxes)[6] = (const int64_t(*)[6])(p->activity ? q->boxes : c.boxes);
        const uint16_t *const *data =
            p->activity ? (const uint16_t *const *)q->data : (const uint16_t *const *)c.data;
        size_t n = p->activity ? q->n : c.n;
        /* NULL data for a rank out of memory: every rank then fails naming it. */
        strata_box_io_stats ws;
        const uint16_t *none[1] = {NULL};
        const int64_t voxel[1][6] = {{0, 0, 0, 1, 1, 1}};
        const uint16_t *const *expected =
            p->activity && !failed ? (const uint16_t *const *)q->expected : NULL;
        st = strata_write_boxes(w, failed ? voxel : boxes, failed ? 1 : n, failed ? none : data,
                                expected, &ws);
        t->write_s += ws.seconds;
        t->route_s += ws.route_seconds;
        t->written += ws.voxels;
    }
    free_changes(&c);
    free(c.boxes), free(c.data);
    *out_of_memory = failed;
    return st;
}

static int parse_args(const job *j, int argc, char **argv, simulation *s, int *all_blocks,
                      uint64_t *tile)
{
    memset(s, 0, sizeof *s);
    s->commit_every = 1;
    s->seed = 1;
    int have_steps = 0;
    const char *v;
    for (int i = 2; i < argc; i++) {
        if (option_value(argc, argv, &i, "--steps", &v)) {
            if (!v || parse_uint64(v, &s->steps) || !s->steps)
                return job_usage(j, usage, "--steps wants a positive integer");
            have_steps = 1;
        } else if (option_value(argc, argv, &i, "--commit-every", &v)) {
            if (!v || parse_uint64(v, &s->commit_every) || !s->commit_every)
                return job_usage(j, usage, "--commit-every wants a positive integer");
        } else if (option_value(argc, argv, &i, "--seed", &v)) {
            if (!v || parse_uint64(v, &s->seed))
                return job_usage(j, usage, "--seed wants a non-negative integer");
        } else if (option_value(argc, argv, &i, "--process", &v)) {
            if ((s->process = sim_process_named(v)) < 0)
                return job_usage(j, usage, "--process wants erosion, deposition, volcanic or none");
        } else if (!strcmp(argv[i], "--all-blocks")) {
            *all_blocks = 1;
        } else if (option_value(argc, argv, &i, "--tile", &v)) {
            if (!v || parse_uint64(v, tile) || !*tile || (*tile & (*tile - 1)) || *tile > 1024)
                return job_usage(j, usage, "--tile wants a power of two from 1 to 1024");
        } else if (!strcmp(argv[i], "--defer-index")) {
        } else if (option_value(argc, argv, &i, "--cache-mb", &v)) {
        } else {
            return job_usage(j, usage, "unexpected argument %s", argv[i]);
        }
    }
    if (!have_steps)
        return job_usage(j, usage, "--steps N is required");
    return JOB_OK;
}

/* The slowest rank's figure. */
static double slowest(double v)
{
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

static void print_summary(const job *j, const char *world, const simulation *s, sim_totals *t,
                          uint64_t commits, uint64_t epoch, int64_t tile)
{
    /* The box statistics are totals already; the rest are this rank's. */
    uint64_t sums[5] = {t->read, t->changed, t->tiles, t->blocks, t->tiles_all};
    MPI_Allreduce(MPI_IN_PLACE, sums + 1, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    double read_s = slowest(t->read_s), write_s = slowest(t->write_s),
           route_s = slowest(t->route_s), compute_s = slowest(t->compute_s),
           commit_s = slowest(t->commit_s), plan_s = slowest(t->plan_s);
    double seconds = MPI_Wtime() - j->start, per_rank = (double)sums[0] / (double)j->size;
    double steps = (double)s->steps;
    char where[384] = "; every block of the domain, every step";
    if (tile)
        snprintf(where, sizeof where,
                 "; active tiles %.1f of %" PRIu64 " per step (%" PRId64 "x%" PRId64
                 " columns of a chunk), in %.1f blocks; voxels read at step 0 %.3g, then "
                 "%.3g per step; choosing the tiles and exchanging the changes %.3f s",
                 (double)sums[2] / steps, sums[4], tile, tile, (double)sums[3] / steps,
                 (double)t->read_first,
                 steps > 1 ? (double)(sums[0] - t->read_first) / (steps - 1) : 0.0, plan_s / steps);
    job_summary(j,
                "%s: %s, %" PRIu64 " steps on %d ranks, %" PRIu64 " commits, epoch %" PRIu64
                ": %.3g voxels read, %" PRIu64 " changed; per step %.3f s: box read %.3f s "
                "(%.3g voxels/s per rank), compute %.3f s (%.3g voxels/s per rank), box write "
                "%.3f s (%.3g changed voxels/s), routing %.3f s of the box I/O, commit %.3f s%s; "
                "%.3f s in all",
                world, sim_process_name(s->process), s->steps, j->size, commits, epoch,
                (double)sums[0], sums[1],
                (read_s + compute_s + write_s + commit_s + plan_s) / steps, read_s / steps,
                read_s > 0 ? per_rank / read_s : 0.0, compute_s / steps,
                compute_s > 0 ? per_rank / compute_s : 0.0, write_s / steps,
                write_s > 0 ? (double)sums[1] / write_s : 0.0, route_s / steps, commit_s / steps,
                where, seconds);
}

/* This step's blocks: at step 0 the whole domain (every tile is active, and
 * the domain's large blocks read fewer halo voxels), then the active tiles'.
 * 0, or -1 when out of memory (then this rank has no blocks). */
static int plan_active_step(const simulation *s, domain *d, step_plan *p, uint64_t step,
                            sim_totals *t)
{
    int64_t(*blocks)[6] = NULL;
    size_t n = p->domain_n;
    uint64_t tiles = t->tiles_all;
    int failed = step > 0 && sim_activity_targets(p->activity, &blocks, &n, &tiles);
    failed = failed || domain_grow(d, n);
    size_t most = 1;
    for (size_t i = 0; !failed && i < n; i++) {
        memcpy(d->blocks[i], step ? blocks[i] : p->domain[i], sizeof d->blocks[i]);
        sim_region r = {.tile = p->activity->tile};
        memcpy(r.block, d->blocks[i], sizeof r.block);
        size_t flags = sim_may_change_size(&r);
        most = flags > most ? flags : most;
    }
    free(blocks);
    if (!failed && most > p->may_change_cap) {
        free(p->may_change);
        p->may_change_cap = (p->may_change = strata_malloc(most)) ? most : 0;
        failed = !p->may_change;
    }
    d->n = failed ? 0 : n;
    failed = failed || domain_plan(s, d);
    if (failed)
        d->n = d->mine = 0;
    t->tiles += tiles;
    t->blocks += d->n;
    return failed ? -1 : 0;
}

static int compare_u64(const void *x, const void *y)
{
    uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;
    return (p > q) - (p < q);
}

/* Every rank learns the boxes every rank changed this step and widens its
 * activity by them: one MPI_Allgather of counts and one MPI_Allgatherv of the
 * boxes (48 bytes per changed block, in proportion to the change, not to the
 * world). Scatter: rank 0 also gathers every voxel sediment landed on this
 * step (MPI_Gatherv, 8 bytes each) and counts each once into *changed (two
 * sources, of two blocks or ranks, may land on one voxel). Collective; JOB_OK,
 * or JOB_FAILED (agreed, one message). */
static int exchange_changes(const job *j, step_plan *p, uint64_t *changed)
{
    const change_pool *c = &p->changes;
    int *counts = p->counts, *displs = counts + j->size, *lcounts = displs + j->size,
        *ldispls = lcounts + j->size, *pairs = ldispls + j->size;
    int mine[2] = {c->bn > (size_t)(INT_MAX / 6) ? -1 : (int)c->bn * 6,
                   p->landed_n > (size_t)INT_MAX ? -1 : (int)p->landed_n};
    MPI_Allgather(mine, 2, MPI_INT, pairs, 2, MPI_INT, MPI_COMM_WORLD);
    uint64_t total = 0, landed = 0;
    int failed = 0;
    char message[256] = "";
    for (int r = 0; r < j->size; r++) {
        counts[r] = pairs[2 * r], lcounts[r] = pairs[2 * r + 1];
        failed |= counts[r] < 0 || total + (uint64_t)counts[r] > INT_MAX;
        failed |= lcounts[r] < 0 || landed + (uint64_t)lcounts[r] > INT_MAX;
        displs[r] = (int)total, ldispls[r] = (int)landed;
        total += counts[r] < 0 ? 0 : (uint64_t)counts[r];
        landed += lcounts[r] < 0 ? 0 : (uint64_t)lcounts[r];
    }
    /* Every rank saw the same counts, and the room grows alike on every rank
     * (rank 0's landings' room is followed by all): they agree only when it
     * grows (the one local failure), not every step. */
    const int grows = !failed && (total > p->all_cap || landed > p->landed_all_cap);
    if (failed) {
        snprintf(message, sizeof message,
                 "more changed blocks or landings in one step than one exchange holds");
    } else if (grows) {
        if (total > p->all_cap) {
            int64_t *all = strata_realloc(p->all, 2 * total * sizeof *all);
            if (all)
                p->all = all, p->all_cap = 2 * total;
            else
                failed = 1;
        }
        if (!failed && landed > p->landed_all_cap) {
            uint64_t *all =
                j->rank ? NULL : strata_realloc(p->landed_all, 2 * landed * sizeof *all);
            if (all)
                p->landed_all = all;
            failed = !j->rank && !all;
            p->landed_all_cap = 2 * landed;
        }
        if (failed)
            snprintf(message, sizeof message,
                     "rank %d: out of memory for the %" PRIu64 " changed blocks and %" PRIu64
                     " landings of a step",
                     j->rank, total / 6, landed);
    }
    if ((failed || grows) && job_agree_message(j, failed, message))
        return JOB_FAILED;
    MPI_Allgatherv(c->bounds, mine[0], MPI_INT64_T, p->all, counts, displs, MPI_INT64_T,
                   MPI_COMM_WORLD);
    for (uint64_t i = 0; i < total; i += 6)
        sim_activity_changed(p->activity, p->all + i);
    if (landed) {
        MPI_Gatherv(p->landed, mine[1], MPI_UINT64_T, p->landed_all, lcounts, ldispls, MPI_UINT64_T,
                    0, MPI_COMM_WORLD);
        if (!j->rank) {
            qsort(p->landed_all, landed, sizeof *p->landed_all, compare_u64);
            for (uint64_t i = 0; i < landed; i++)
                *changed += !i || p->landed_all[i] != p->landed_all[i - 1];
        }
    }
    return JOB_OK;
}

/* The run's plan: every block of the domain (all_blocks, or no process: the
 * box I/O floor), or the activity of every own chunk. 0, or -1 (message in why). */
static int plan_run(strata_world *w, const job *j, const simulation *s, int all_blocks,
                    int64_t tile, domain *d, step_plan *p, sim_activity *a, uint64_t *tiles_all,
                    const char **why)
{
    strata_status st;
    *why = "out of memory";
    if (all_blocks || s->process == SIM_NONE) {
        st = strata_domain_boxes(w, block_chunks(s->edge), &d->blocks, &d->n);
        if (st)
            *why = strata_last_error(w);
        return st || domain_plan(s, d) ? -1 : 0;
    }
    int64_t(*chunks)[6] = NULL;
    size_t n = 0;
    if ((st = strata_domain_boxes(w, 1, &chunks, &n)) != STRATA_OK ||
        (st = strata_domain_boxes(w, block_chunks(s->edge), &p->domain, &p->domain_n)) !=
            STRATA_OK) {
        free(chunks);
        *why = strata_last_error(w);
        return -1;
    }
    p->activity = a;
    int failed = sim_activity_init(a, s, tile, (const int64_t(*)[6])chunks, n);
    free(chunks);
    int64_t(*blocks)[6] = NULL;
    failed = failed || sim_activity_targets(a, &blocks, &n, tiles_all); /* every tile, at first */
    free(blocks);
    p->counts = strata_malloc(6 * (size_t)j->size * sizeof *p->counts);
    return failed || !p->counts ? -1 : 0;
}

static void plan_free(step_plan *p, domain *d)
{
    if (p->activity)
        sim_activity_free(p->activity);
    free(p->domain), free(p->may_change), free(p->counts), free(p->all);
    free(p->landed), free(p->block_landed), free(p->landed_all);
    pool_free(&p->changes);
    domain_free(d);
}

/* Step `step`: choose its blocks (active runs), read, compute and write them,
 * exchange the changes (active runs), and commit when due (*commits counts the
 * commits that made an epoch). Collective: box I/O, commits and the exchange
 * agree on errors, so every rank fails here together. JOB_OK, or JOB_FAILED
 * with the message printed. */
static int run_step(const job *j, strata_world *w, const simulation *s, domain *d, step_plan *plan,
                    uint64_t step, sim_totals *t, strata_commit_stats *cs, uint64_t *commits)
{
    int failed = 0, rc = JOB_OK;
    if (plan->activity) {
        double t0 = MPI_Wtime();
        failed = plan_active_step(s, d, plan, step, t);
        domain_agree_rounds(d);
        t->plan_s += MPI_Wtime() - t0;
    }
    strata_status st = step_once(w, s, d, step, plan, &failed, t);
    if (failed) /* only this rank knows why the write failed */
        job_error(j, "out of memory at step %" PRIu64 " (choosing or computing its blocks)", step);
    if (!st && plan->activity) {
        double t0 = MPI_Wtime();
        rc = exchange_changes(j, plan, &t->changed);
        t->plan_s += MPI_Wtime() - t0;
    }
    if (!st && !rc && ((step + 1) % s->commit_every == 0 || step + 1 == s->steps)) {
        uint64_t before = cs->epoch;
        double t0 = MPI_Wtime();
        st = strata_commit(w, cs);
        t->commit_s += MPI_Wtime() - t0;
        *commits += !st && cs->epoch != before;
    }
    return st ? job_fail(j, st, w) : rc;
}

int job_simulate(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    simulation s;
    int all_blocks = 0;
    uint64_t tile = SIM_TILE;
    int rc = parse_args(j, argc, argv, &s, &all_blocks, &tile);
    if (rc)
        return rc;
    strata_world *w;
    int open_rc = job_open(j, usage, argc, argv, argv[1], STRATA_WRITE, &w);
    if (open_rc)
        return open_rc;
    strata_status st = STRATA_OK;
    strata_config cfg;
    strata_world_config(w, &cfg);
    memcpy(s.dims, cfg.dims, sizeof s.dims);
    s.edge = cfg.chunk_edge;
    sim_place_vents(&s);
    domain d = {0};
    step_plan plan = {0};
    sim_activity activity;
    const char *why;
    sim_totals t = {0};
    /* Active tiles: each block computes its own sources only (simulation.scatter). */
    s.scatter = !all_blocks && s.process != SIM_NONE;
    int planned =
        !plan_run(w, j, &s, all_blocks, (int64_t)tile, &d, &plan, &activity, &t.tiles_all, &why);
    if (!planned) /* only this rank knows why: it speaks, whatever its rank */
        job_error(j, "cannot plan this rank's domain: %s", why);
    rc = job_agree(planned ? JOB_OK : JOB_FAILED);
    if (!rc && !plan.activity)
        domain_agree_rounds(&d);
    /* Commits are counted by the epochs they made: a step that changed nothing
     * commits nothing. */
    strata_info info;
    if (!rc && (st = strata_world_info(w, &info)) != STRATA_OK)
        rc = job_fail(j, st, w);
    progress p;
    progress_start(&p, j, "steps", s.steps);
    strata_commit_stats cs = {.epoch = rc ? 0 : info.epoch};
    uint64_t commits = 0;
    for (uint64_t step = 0; !rc && step < s.steps; step++) {
        if ((rc = run_step(j, w, &s, &d, &plan, step, &t, &cs, &commits)) != JOB_OK) {
            job_error(j, "stopped at step %" PRIu64 "; the world is at its last commit (%s)", step,
                      commits ? "made by this run" : "before this run");
            break;
        }
        progress_update(&p, step + 1);
    }
    if (!rc)
        progress_finish(&p);
    const int64_t tile_used = plan.activity ? plan.activity->tile : 0;
    plan_free(&plan, &d);
    strata_world_close(w);
    if (!rc)
        print_summary(j, argv[1], &s, &t, commits, cs.epoch, tile_used);
    return rc;
}
