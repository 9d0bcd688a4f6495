/* bench_batches: the sim_strata_batches rows of `strata bench` taken apart (issue 17):
 * batches of uniform random updates and one durable commit, each batch and the
 * commit's phases timed, with the page faults and CPU seconds they cost.
 *
 *   mpirun -n R bench_batches DIR --create    write the bench's world: 512 x 512 x 256
 *                                             layered terrain, chunk 32, seed 1
 *   mpirun -n R bench_batches DIR [B N] [--index]
 *                                             reopen DIR, generate B batches of N
 *                                             updates in all (default 10 x 100,000;
 *                                             1/R per rank, materials 2-13) before
 *                                             the timer, apply them with
 *                                             strata_update_batch, then strata_commit
 *                                             with the index deferred (--index: built
 *                                             in the commit)
 *
 * The run changes DIR: copy the created world first (cp -a) and run on a fresh copy
 * each time, as the bench reopens its world before each repetition. Load-independent
 * instruction counts of the timed calls alone:
 *   valgrind --tool=callgrind --toggle-collect=strata_update_batch \
 *            --toggle-collect=strata_commit bench_batches COPY
 * Prints rank 0's batches and commit phases, the slowest rank's total, and rank 0's
 * page faults and CPU seconds (getrusage) in the batches and in the commit.
 */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "strata.h"

enum { MAX_BATCHES = 1000 };

static const int64_t DIMS[3] = {512, 512, 256};

static uint64_t next_random(uint64_t *state) /* splitmix64 */
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double seconds_of(struct timeval t)
{
    return (double)t.tv_sec + 1e-6 * (double)t.tv_usec;
}

/* CPU seconds (user + system) and minor page faults between two samples. */
static void usage_between(const struct rusage *a, const struct rusage *b, double *cpu, long *faults)
{
    *cpu = seconds_of(b->ru_utime) - seconds_of(a->ru_utime) + seconds_of(b->ru_stime) -
           seconds_of(a->ru_stime);
    *faults = b->ru_minflt - a->ru_minflt;
}

static int failed(int rank, const char *what, strata_world *w)
{
    if (rank == 0)
        fprintf(stderr, "bench_batches: %s: %s\n", what, strata_last_error(w));
    return 1;
}

static int create_world(const char *dir, int rank)
{
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, DIMS, sizeof cfg.dims);
    cfg.chunk_edge = 32;
    strata_world *w = NULL;
    if (strata_world_create(MPI_COMM_WORLD, dir, &cfg, NULL, STRATA_CREATE_FORCE, &w))
        return failed(rank, "creating the world", NULL);
    int bad = strata_generate_terrain(w, 1) || strata_commit(w, NULL);
    if (bad)
        failed(rank, "generating and committing the terrain", w);
    return strata_world_close(w) || bad;
}

static int run(const char *dir, int batches, uint64_t per_batch, int index, int rank, int size)
{
    size_t n = (size_t)(per_batch / (uint64_t)size + ((uint64_t)rank < per_batch % (uint64_t)size));
    strata_update *u = calloc((size_t)batches * n + 1, sizeof *u);
    int bad = u == NULL, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (any) {
        free(u);
        if (rank == 0)
            fprintf(stderr, "bench_batches: cannot hold the batches\n");
        return 1;
    }
    for (int k = 0; k < batches; k++) {
        uint64_t state = 7777 + (uint64_t)k * 65537 + (uint64_t)rank * 257;
        for (size_t i = 0; i < n; i++) {
            strata_update *x = &u[(size_t)k * n + i];
            x->x = (int64_t)(next_random(&state) % (uint64_t)DIMS[0]);
            x->y = (int64_t)(next_random(&state) % (uint64_t)DIMS[1]);
            x->z = (int64_t)(next_random(&state) % (uint64_t)DIMS[2]);
            x->material = (uint16_t)(2 + next_random(&state) % 12);
        }
    }
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = !index;
    strata_world *w = NULL;
    if (strata_world_open(MPI_COMM_WORLD, dir, STRATA_WRITE, &opt, &w)) {
        free(u);
        return failed(rank, "opening the world", NULL);
    }
    double batch_seconds[MAX_BATCHES];
    struct rusage r0, r1, r2;
    MPI_Barrier(MPI_COMM_WORLD);
    getrusage(RUSAGE_SELF, &r0);
    double t0 = MPI_Wtime(), at = t0;
    for (int k = 0; k < batches && !bad; k++) {
        bad = strata_update_batch(w, u + (size_t)k * n, n, NULL) != STRATA_OK;
        double now = MPI_Wtime();
        batch_seconds[k] = now - at;
        at = now;
    }
    getrusage(RUSAGE_SELF, &r1);
    double t1 = MPI_Wtime();
    strata_commit_stats cs = {0};
    if (!bad)
        bad = strata_commit(w, &cs) != STRATA_OK;
    double t2 = MPI_Wtime(), mine = t2 - t0, slowest = 0;
    getrusage(RUSAGE_SELF, &r2);
    if (bad)
        failed(rank, "a batch or the commit", w);
    MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0 && !bad) {
        double cpu[2];
        long faults[2];
        usage_between(&r0, &r1, &cpu[0], &faults[0]);
        usage_between(&r1, &r2, &cpu[1], &faults[1]);
        printf("%d ranks, %d batches of %" PRIu64 " updates, index %s\n", size, batches, per_batch,
               index ? "built in the commit" : "deferred");
        printf("rank 0: batches %.4f s (", t1 - t0);
        for (int k = 0; k < batches; k++)
            printf("%s%.4f", k ? " " : "", batch_seconds[k]);
        printf(")\nrank 0: commit %.4f s (encode %.4f, write %.4f; %" PRIu64 " chunks, %" PRIu64
               " as delta records)\n",
               t2 - t1, cs.encode_seconds, cs.write_seconds, cs.chunks_written, cs.delta_chunks);
        printf("rank 0: page faults %ld in the batches, %ld in the commit; CPU %.4f s, %.4f s\n",
               faults[0], faults[1], cpu[0], cpu[1]);
        printf("slowest rank: %.4f s, %.3g updates/s\n", slowest,
               (double)batches * (double)per_batch / slowest);
    }
    bad |= strata_world_close(w) != STRATA_OK;
    free(u);
    return bad;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int create = 0, index = 0, numbers = 0, batches = 10;
    uint64_t per_batch = 100000;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--create"))
            create = 1;
        else if (!strcmp(argv[i], "--index"))
            index = 1;
        else if (!dir)
            dir = argv[i];
        else if (numbers++ == 0)
            batches = atoi(argv[i]);
        else
            per_batch = strtoull(argv[i], NULL, 10);
    }
    int rc;
    if (!dir || batches < 1 || batches > MAX_BATCHES || per_batch < 1) {
        if (rank == 0)
            fprintf(stderr,
                    "usage: bench_batches DIR --create | DIR [BATCHES (1-%d) UPDATES] "
                    "[--index]\n",
                    MAX_BATCHES);
        rc = 2;
    } else {
        rc = create ? create_world(dir, rank) : run(dir, batches, per_batch, index, rank, size);
    }
    MPI_Finalize();
    return rc;
}
