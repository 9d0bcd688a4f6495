/* job_simulate.c: `strata simulate WORLD --steps N [--process P] [--seed S] [--commit-every K]`.
 *
 * The example a simulation code copies. Every step, every rank picks random
 * columns anywhere in the world (not only in its own chunks), finds their
 * surfaces with routed reads (strata_query_points), derives updates from a simple
 * geological process, stages them conditionally (strata_stage_expect: an update
 * applies only if the voxel still holds what this rank saw, so two ranks working
 * on the same column do not fight) and flushes. Every K steps, and at the end, it
 * commits.
 *
 * Processes:
 * - erosion: exposed soil, sand or sediment on a slope is washed away (replaced
 *   by the air or water above it) and lands as sediment on the lowest neighbour.
 * - deposition: sand settles on dry surfaces and sediment under water.
 * - volcanic: seeded vents grow cones: lava erupts on the surface within a cone
 *   whose slope is fixed and whose radius widens with time; lava that is
 *   covered by new lava cools to basalt.
 */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] =
    "strata simulate WORLD --steps N [--process erosion|deposition|volcanic] [--seed S]\n"
    "                      [--commit-every K] [--defer-index] [--cache-mb M] [--quiet]\n"
    "  every rank samples its own columns each step (seeded by S and its rank): a run is\n"
    "  reproducible at the same rank count; more ranks make more updates per step";

/* Materials of the default table (src/terrain.c). */
enum { AIR = 0, WATER = 1, SOIL = 2, SAND = 3, SEDIMENT = 4, BASALT = 9, LAVA = 14 };
enum { EROSION, DEPOSITION, VOLCANIC };
enum { NEIGHBOURS = 5, VENTS = 4 };

typedef struct {
    int process;
    uint64_t steps, commit_every, seed;
    int64_t dims[3];
    int64_t columns; /* columns sampled per rank per step */
    double vents[VENTS][2];
} simulation;

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* One sampled column: its centre and the neighbours (x, y) that erosion needs. */
typedef struct {
    int64_t x[NEIGHBOURS], y[NEIGHBOURS];
    int valid[NEIGHBOURS];
} column_set;

/* Ground (highest voxel neither air nor water; -1 if none) and top (highest non-air). */
static void surface_of(const uint16_t *column, int64_t height, int64_t *ground, int64_t *top)
{
    *ground = *top = -1;
    for (int64_t z = height - 1; z >= 0; z--) {
        if (*top < 0 && column[z] != AIR)
            *top = z;
        if (column[z] != AIR && column[z] != WATER) {
            *ground = z;
            return;
        }
    }
}

static strata_status erode(strata_world *w, const simulation *s, const column_set *c,
                           const uint16_t *values)
{
    const int64_t h = s->dims[2];
    int64_t ground, top;
    surface_of(values, h, &ground, &top);
    if (ground < 0 || ground + 1 >= h)
        return STRATA_OK;
    uint16_t m = values[ground];
    if (m != SOIL && m != SAND && m != SEDIMENT)
        return STRATA_OK;
    int lowest = -1;
    int64_t lowest_ground = ground - 1; /* strictly downhill, by at least two voxels */
    for (int n = 1; n < NEIGHBOURS; n++) {
        int64_t g, t;
        if (!c->valid[n])
            continue;
        surface_of(values + n * h, h, &g, &t);
        if (g < lowest_ground && g + 1 < h)
            lowest = n, lowest_ground = g;
    }
    if (lowest < 0)
        return STRATA_OK;
    uint16_t above = values[ground + 1];
    strata_status st = strata_stage_expect(w, c->x[0], c->y[0], ground, above, m);
    if (!st)
        st = strata_stage_expect(w, c->x[lowest], c->y[lowest], lowest_ground + 1, SEDIMENT,
                                 values[lowest * h + lowest_ground + 1]);
    return st;
}

static strata_status deposit(strata_world *w, const simulation *s, const column_set *c,
                             const uint16_t *values)
{
    int64_t ground, top;
    surface_of(values, s->dims[2], &ground, &top);
    if (ground + 1 >= s->dims[2])
        return STRATA_OK;
    uint16_t above = values[ground + 1];
    return strata_stage_expect(w, c->x[0], c->y[0], ground + 1, above == WATER ? SEDIMENT : SAND,
                               above);
}

/* A cone of fixed slope around each vent whose radius grows with time. */
static strata_status erupt(strata_world *w, const simulation *s, const column_set *c,
                           const uint16_t *values, uint64_t step)
{
    int64_t ground, top;
    surface_of(values, s->dims[2], &ground, &top);
    if (ground + 1 >= s->dims[2])
        return STRATA_OK;
    double best = -1;
    for (int v = 0; v < VENTS; v++) {
        double dx = (double)c->x[0] - s->vents[v][0], dy = (double)c->y[0] - s->vents[v][1];
        double radius = 4.0 + 2.0 * (double)step;
        double d = sqrt(dx * dx + dy * dy);
        if (d < radius) {
            double height = (double)s->dims[2] * 0.9 - 0.5 * d;
            best = height > best ? height : best;
        }
    }
    if ((double)(ground + 1) > best)
        return STRATA_OK;
    strata_status st =
        strata_stage_expect(w, c->x[0], c->y[0], ground + 1, LAVA, values[ground + 1]);
    if (!st && values[ground] == LAVA)
        st = strata_stage_expect(w, c->x[0], c->y[0], ground, BASALT, LAVA);
    return st;
}

/* Columns for this rank and step: anywhere at random, or near a vent for volcanism. */
static void pick_columns(const simulation *s, uint64_t *rng, column_set *sets)
{
    static const int dx[NEIGHBOURS] = {0, 1, -1, 0, 0}, dy[NEIGHBOURS] = {0, 0, 0, 1, -1};
    for (int64_t i = 0; i < s->columns; i++) {
        int64_t x, y;
        if (s->process == VOLCANIC) {
            const double *v = s->vents[next_random(rng) % VENTS];
            double angle =
                (double)(next_random(rng) >> 11) * (6.283185307179586 / 9007199254740992.0);
            double r = (double)(next_random(rng) % 64);
            x = (int64_t)(v[0] + r * cos(angle));
            y = (int64_t)(v[1] + r * sin(angle));
            x = x < 0 ? 0 : x >= s->dims[0] ? s->dims[0] - 1 : x;
            y = y < 0 ? 0 : y >= s->dims[1] ? s->dims[1] - 1 : y;
        } else {
            x = (int64_t)(next_random(rng) % (uint64_t)s->dims[0]);
            y = (int64_t)(next_random(rng) % (uint64_t)s->dims[1]);
        }
        for (int n = 0; n < NEIGHBOURS; n++) {
            sets[i].x[n] = x + dx[n];
            sets[i].y[n] = y + dy[n];
            sets[i].valid[n] = sets[i].x[n] >= 0 && sets[i].x[n] < s->dims[0] &&
                               sets[i].y[n] >= 0 && sets[i].y[n] < s->dims[1];
            if (!sets[i].valid[n])
                sets[i].x[n] = x, sets[i].y[n] = y; /* read something harmless */
        }
    }
}

/* One step: sample, read the columns (routed), stage, flush. Collective.
 * *staging_failed: the failure is this rank's staging, not agreed by the others. */
static strata_status step_once(strata_world *w, const simulation *s, uint64_t step, int rank,
                               column_set *sets, int64_t (*points)[3], uint16_t *values,
                               strata_batch_stats *stats, int *staging_failed)
{
    uint64_t rng = s->seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(rank + 1)) ^
                   (0x8cb92ba72f3d8dd7ULL * (step + 1));
    pick_columns(s, &rng, sets);
    const int64_t h = s->dims[2];
    size_t n = 0;
    for (int64_t i = 0; i < s->columns; i++)
        for (int c = 0; c < NEIGHBOURS; c++)
            for (int64_t z = 0; z < h; z++, n++) {
                points[n][0] = sets[i].x[c];
                points[n][1] = sets[i].y[c];
                points[n][2] = z;
            }
    strata_status st = strata_query_points(w, (const int64_t(*)[3])points, n, values);
    *staging_failed = 0;
    for (int64_t i = 0; !st && i < s->columns; i++) {
        const uint16_t *v = values + (size_t)i * NEIGHBOURS * (size_t)h;
        st = s->process == EROSION      ? erode(w, s, &sets[i], v)
             : s->process == DEPOSITION ? deposit(w, s, &sets[i], v)
                                        : erupt(w, s, &sets[i], v, step);
        *staging_failed = st != STRATA_OK;
    }
    /* A staging failure on one rank still takes part in the flush, which agrees. */
    strata_status flushed = strata_flush(w, stats);
    *staging_failed = *staging_failed && !flushed;
    return st ? st : flushed;
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
            if (v && !strcmp(v, "erosion"))
                s->process = EROSION;
            else if (v && !strcmp(v, "deposition"))
                s->process = DEPOSITION;
            else if (v && !strcmp(v, "volcanic"))
                s->process = VOLCANIC;
            else
                return job_usage(j, usage, "--process wants erosion, deposition or volcanic");
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q") ||
                   !strcmp(argv[i], "--defer-index")) {
        } else if (option_value(argc, argv, &i, "--cache-mb", &v)) {
        } else {
            return job_usage(j, usage, "unexpected argument %s", argv[i]);
        }
    }
    if (!have_steps)
        return job_usage(j, usage, "--steps N is required");
    return JOB_OK;
}

static void place_vents(simulation *s)
{
    uint64_t rng = s->seed ^ 0x5851f42d4c957f2dULL;
    for (int v = 0; v < VENTS; v++) {
        s->vents[v][0] = (double)(next_random(&rng) % (uint64_t)s->dims[0]);
        s->vents[v][1] = (double)(next_random(&rng) % (uint64_t)s->dims[1]);
    }
}

int job_simulate(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    simulation s;
    int rc = parse_args(j, argc, argv, &s);
    if (rc)
        return rc;
    strata_options opt;
    int options_rc = job_options(j, usage, argc, argv, &opt);
    if (options_rc)
        return options_rc;
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_WRITE, &opt, &w);
    if (st)
        return job_fail(j, st, NULL);
    strata_config cfg;
    strata_world_config(w, &cfg);
    memcpy(s.dims, cfg.dims, sizeof s.dims);
    place_vents(&s);
    /* About 256 K points read per rank and step, whatever the world's height. */
    s.columns = (int64_t)262144 / (NEIGHBOURS * s.dims[2]);
    s.columns = s.columns < 1 ? 1 : s.columns > 1024 ? 1024 : s.columns;
    size_t n = (size_t)s.columns * NEIGHBOURS * (size_t)s.dims[2];
    column_set *sets = malloc((size_t)s.columns * sizeof *sets);
    int64_t(*points)[3] = malloc(n * sizeof *points);
    uint16_t *values = malloc(n * sizeof *values);
    rc = job_agree(sets && points && values ? JOB_OK : JOB_FAILED);
    if (rc)
        job_error(j, "cannot allocate %zu column points", n);
    /* Commits are counted by the epochs they made: a step that changed nothing
     * commits nothing. */
    strata_info info;
    if (!rc && (st = strata_world_info(w, &info)) != STRATA_OK)
        rc = job_fail(j, st, w);
    progress p;
    progress_start(&p, j, "steps", s.steps);
    strata_batch_stats total = {0}, b;
    strata_commit_stats cs = {.epoch = rc ? 0 : info.epoch};
    uint64_t commits = 0, step = 0;
    for (; !rc && step < s.steps; step++) {
        int staging_failed;
        st = step_once(w, &s, step, j->rank, sets, points, values, &b, &staging_failed);
        /* Every rank leaves the loop together: a failure on one rank stops all. */
        int worst = (int)st;
        MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (staging_failed) {
            /* Only this rank knows why: it speaks, whatever its rank. */
            job_error(j, "staging step %" PRIu64 ": %s: %s", step, strata_strerror(st),
                      strata_last_error(w));
            rc = JOB_FAILED;
            break;
        }
        if (worst && !st) {
            job_error(j, "stopping: another rank failed at step %" PRIu64, step);
            rc = JOB_FAILED;
            break;
        }
        if (!st && ((step + 1) % s.commit_every == 0 || step + 1 == s.steps)) {
            uint64_t before = cs.epoch;
            st = strata_commit(w, &cs);
            commits += !st && cs.epoch != before;
        }
        if (st) {
            rc = job_fail(j, st, w);
            if (st == STRATA_ERR_INTERRUPTED)
                job_error(j,
                          "stopped at step %" PRIu64 "; the world is at its last commit "
                          "(%s)",
                          step, commits ? "made by this run" : "before this run");
            break;
        }
        total.submitted += b.submitted;
        total.applied += b.applied;
        total.skipped += b.skipped;
        progress_update(&p, step + 1);
    }
    if (!rc)
        progress_finish(&p);
    free(sets);
    free(points);
    free(values);
    strata_world_close(w);
    if (rc)
        return rc;
    static const char *names[] = {"erosion", "deposition", "volcanic"};
    double seconds = MPI_Wtime() - j->start;
    job_summary(j,
                "%s: %s, %" PRIu64 " steps on %d ranks, %" PRIu64 " updates (%" PRIu64
                " applied, %" PRIu64 " skipped), %" PRIu64 " commits, epoch %" PRIu64
                " in %.3f s (%.3g updates/s)",
                argv[1], names[s.process], s.steps, j->size, total.submitted, total.applied,
                total.skipped, commits, cs.epoch, seconds, (double)total.submitted / seconds);
    return JOB_OK;
}
