/* job_simulate.c: `strata simulate WORLD --steps N [--process P] [--seed S] [--commit-every K]`.
 *
 * The example a simulation code copies: a domain-decomposed, owner-computes
 * simulation on the box API. Each rank's domain is the aligned blocks of
 * chunks its key range covers (strata_domain_boxes). Every step, every rank
 * reads each of its blocks plus a halo (strata_read_boxes: its own chunks are
 * copied locally, the halo comes from the neighbours' owners), computes the new
 * value of every voxel of the block from the old state alone, and writes the
 * chunks that changed back whole (strata_write_boxes). All reads of a step come
 * before any write, and every voxel is computed and written only by its owner,
 * so a run's result depends on the seed, never on the rank count. Every K
 * steps, and at the end, it commits.
 *
 * The processes (erosion, deposition, volcanic) are in simulate_rules.c, shared
 * with the plain parallel HDF5 version of the same step in the bench
 * (bench/sim_hdf5.c). `--process none` applies no rule and writes every block
 * back unchanged: the box I/O of a step alone, against which a real step's
 * time is measured.
 */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "simulate_rules.h"

static const char usage[] =
    "strata simulate WORLD --steps N [--process erosion|deposition|volcanic|none] [--seed S]\n"
    "                      [--commit-every K] [--defer-index] [--cache-mb M] [--quiet]\n"
    "  every rank processes every surface voxel of the chunks it owns each step, reading\n"
    "  its blocks plus a halo and writing back the chunks that changed; the result\n"
    "  depends on the seed S only, not on the number of ranks; `none` applies no rule and\n"
    "  writes every block back: the box I/O of a step alone";

/* Domain blocks are at most this many chunks along an axis; a round of reads
 * holds at most this many voxels per rank. */
#define BLOCK_CHUNKS 4
#define ROUND_VOXELS ((uint64_t)32 << 20)

/* Measured per rank over the run. */
typedef struct {
    uint64_t read, changed, written;
    double read_s, write_s, route_s, compute_s, commit_s;
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
                    int64_t(*boxes)[6] = realloc(c->boxes, cap * sizeof *boxes);
                    if (boxes)
                        c->boxes = boxes;
                    uint16_t **data = realloc(c->data, cap * sizeof *data);
                    if (data)
                        c->data = data;
                    if (!boxes || !data)
                        return -1;
                    c->cap = cap;
                }
                size_t v = (size_t)((k[3] - k[0]) * (k[4] - k[1]) * (k[5] - k[2])), at = 0;
                uint16_t *d = malloc(v * sizeof *d);
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

/* The domain cut into rounds of reads: [round_start[i], round_start[i + 1]). */
typedef struct {
    int64_t (*blocks)[6];
    size_t n;
    int64_t (*boxes)[6];  /* block + halo */
    uint16_t **in, **out; /* per block, in the arena while its round runs */
    uint16_t *arena;      /* the largest round's arrays, kept for every step */
    size_t *round_start;
    uint64_t rounds; /* agreed: the most any rank needs */
} domain;

static uint64_t box_size(const int64_t b[6])
{
    return (uint64_t)((b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2]));
}

static int domain_plan(const simulation *s, domain *d)
{
    d->boxes = calloc(d->n ? d->n : 1, sizeof *d->boxes);
    d->in = calloc(d->n ? d->n : 1, sizeof *d->in);
    d->out = calloc(d->n ? d->n : 1, sizeof *d->out);
    d->round_start = calloc(d->n + 2, sizeof *d->round_start);
    if (!d->boxes || !d->in || !d->out || !d->round_start)
        return -1;
    uint64_t held = 0, rounds = 0, arrays = 0, most = 0;
    for (size_t i = 0; i < d->n; i++) {
        sim_halo_box(s, d->blocks[i], d->boxes[i]);
        uint64_t v = box_size(d->boxes[i]);
        if (i == 0 || held + v > ROUND_VOXELS)
            d->round_start[rounds++] = i, held = 0, arrays = 0;
        held += v;
        arrays += v + box_size(d->blocks[i]);
        most = arrays > most ? arrays : most;
    }
    d->rounds = rounds;
    /* Allocated once: fresh memory's page faults would cost every step more than
     * the box reads that fill it. */
    d->arena = malloc((most ? most : 1) * sizeof *d->arena);
    return d->arena ? 0 : -1;
}

/* Every rank runs as many rounds as the rank that needs most (some empty).
 * Collective; nonzero when memory is out (then every rank is told by job_agree). */
static int domain_agree_rounds(domain *d)
{
    uint64_t mine = d->rounds;
    MPI_Allreduce(&mine, &d->rounds, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    size_t *grown = realloc(d->round_start, (d->rounds + 1) * sizeof *grown);
    int ok = grown != NULL;
    if (grown)
        d->round_start = grown;
    for (uint64_t r = mine; ok && r <= d->rounds; r++)
        d->round_start[r] = d->n;
    return job_agree(ok ? JOB_OK : JOB_FAILED);
}

static void domain_free(domain *d)
{
    free(d->blocks), free(d->boxes), free(d->in), free(d->out), free(d->round_start);
    free(d->arena);
}

/* One step: every round reads its blocks with halos and computes them; then the
 * changed chunks of the whole step are written at once. Collective. */
static strata_status step_once(strata_world *w, const simulation *s, domain *d, uint64_t step,
                               sim_totals *t)
{
    changes c = {0};
    strata_status st = STRATA_OK;
    int failed = 0;
    for (uint64_t round = 0; round < d->rounds && !st; round++) {
        size_t first = d->round_start[round], n = d->round_start[round + 1] - first;
        uint16_t *at = d->arena;
        for (size_t i = first; i < first + n; i++) {
            d->in[i] = at;
            at += box_size(d->boxes[i]);
            d->out[i] = at;
            at += box_size(d->blocks[i]);
        }
        strata_box_io_stats rs;
        /* A rank out of memory reads nothing; the write's agreement stops all. */
        st = strata_read_boxes(w, (const int64_t(*)[6])d->boxes + first, failed ? 0 : n, 0,
                               d->in + first, &rs);
        t->read_s += rs.seconds;
        t->route_s += rs.route_seconds;
        t->read += rs.voxels;
        double t0 = MPI_Wtime();
        for (size_t i = first; !st && !failed && i < first + n; i++) {
            sim_region r = {.in = d->in[i], .out = d->out[i]};
            memcpy(r.block, d->blocks[i], sizeof r.block);
            memcpy(r.box, d->boxes[i], sizeof r.box);
            sim_compute_block(s, &r, step);
            failed = keep_changed_chunks(s, &r, &c, &t->changed) != 0;
        }
        t->compute_s += MPI_Wtime() - t0;
    }
    if (!st) {
        /* NULL data for a rank out of memory: every rank then fails naming it. */
        strata_box_io_stats ws;
        uint16_t *none[1] = {NULL};
        st = strata_write_boxes(w, (const int64_t(*)[6])c.boxes, failed ? 1 : c.n,
                                (const uint16_t *const *)(failed ? none : c.data), NULL, &ws);
        t->write_s += ws.seconds;
        t->route_s += ws.route_seconds;
        t->written += ws.voxels;
    }
    free_changes(&c);
    free(c.boxes), free(c.data);
    return st;
}

static int parse_args(const job *j, int argc, char **argv, simulation *s)
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
                          uint64_t commits, uint64_t epoch)
{
    uint64_t sums[3] = {t->read, t->changed, t->written};
    MPI_Allreduce(MPI_IN_PLACE, sums + 1, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    double read_s = slowest(t->read_s), write_s = slowest(t->write_s),
           route_s = slowest(t->route_s), compute_s = slowest(t->compute_s),
           commit_s = slowest(t->commit_s);
    double seconds = MPI_Wtime() - j->start, per_rank = (double)sums[0] / (double)j->size;
    double steps = (double)s->steps;
    job_summary(j,
                "%s: %s, %" PRIu64 " steps on %d ranks, %" PRIu64 " commits, epoch %" PRIu64
                ": %.3g voxels read, %" PRIu64 " changed; per step %.3f s: box read %.3f s "
                "(%.3g voxels/s per rank), compute %.3f s (%.3g voxels/s per rank), box write "
                "%.3f s (%.3g changed voxels/s), routing %.3f s of the box I/O, commit %.3f s; "
                "%.3f s in all",
                world, sim_process_name(s->process), s->steps, j->size, commits, epoch,
                (double)sums[0], sums[1], (read_s + compute_s + write_s + commit_s) / steps,
                read_s / steps, read_s > 0 ? per_rank / read_s : 0.0, compute_s / steps,
                compute_s > 0 ? per_rank / compute_s : 0.0, write_s / steps,
                write_s > 0 ? (double)sums[1] / write_s : 0.0, route_s / steps, commit_s / steps,
                seconds);
}

int job_simulate(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    simulation s;
    int rc = parse_args(j, argc, argv, &s);
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
    st = strata_domain_boxes(w, BLOCK_CHUNKS, &d.blocks, &d.n);
    int planned = !st && !domain_plan(&s, &d);
    if (!planned) /* only this rank knows why: it speaks, whatever its rank */
        job_error(j, "cannot plan this rank's domain: %s",
                  st ? strata_last_error(w) : "out of memory");
    rc = job_agree(planned ? JOB_OK : JOB_FAILED);
    if (!rc)
        rc = domain_agree_rounds(&d);
    /* Commits are counted by the epochs they made: a step that changed nothing
     * commits nothing. */
    strata_info info;
    if (!rc && (st = strata_world_info(w, &info)) != STRATA_OK)
        rc = job_fail(j, st, w);
    progress p;
    progress_start(&p, j, "steps", s.steps);
    sim_totals t = {0};
    strata_commit_stats cs = {.epoch = rc ? 0 : info.epoch};
    uint64_t commits = 0, step = 0;
    for (; !rc && step < s.steps; step++) {
        st = step_once(w, &s, &d, step, &t);
        if (!st && ((step + 1) % s.commit_every == 0 || step + 1 == s.steps)) {
            uint64_t before = cs.epoch;
            double t0 = MPI_Wtime();
            st = strata_commit(w, &cs);
            t.commit_s += MPI_Wtime() - t0;
            commits += !st && cs.epoch != before;
        }
        if (st) {
            /* Box I/O and commits agree on errors: every rank stops here together. */
            rc = job_fail(j, st, w);
            job_error(j, "stopped at step %" PRIu64 "; the world is at its last commit (%s)", step,
                      commits ? "made by this run" : "before this run");
            break;
        }
        progress_update(&p, step + 1);
    }
    if (!rc)
        progress_finish(&p);
    domain_free(&d);
    strata_world_close(w);
    if (!rc)
        print_summary(j, argv[1], &s, &t, commits, cs.epoch);
    return rc;
}
