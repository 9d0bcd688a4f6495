/* mpi_partition.c: rebalancing by weight: contiguous, balanced, agreed splitters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "morton.h"
#include "mpi_common.h"
#include "partition.h"

static const uint64_t box[3] = {41, 29, 17};

typedef enum { WEIGHT_RANDOM, WEIGHT_ZERO, WEIGHT_RISING, WEIGHT_ONE_HEAVY } weight_kind;

/* Weight of a chunk, a function of its key so every rank can recompute all of them. */
static double weight_of(uint64_t key, weight_kind kind)
{
    uint64_t state = key * 2654435761u + 12345;
    uint64_t r = mt_random(&state);
    switch (kind) {
    case WEIGHT_RANDOM:
        return r % 50 == 0 ? 400.0 : (double)(r % 1000) / 10.0;
    case WEIGHT_ZERO:
        return 0.0;
    case WEIGHT_RISING:
        return (double)(key % 4096) * 0.5;
    case WEIGHT_ONE_HEAVY:
        return key == morton_encode3(20, 14, 8) ? 1e6 : 1.0;
    }
    return 0.0;
}

static int compare_keys(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* All keys of the box, ascending. */
static uint64_t *all_keys(size_t *count)
{
    *count = (size_t)(box[0] * box[1] * box[2]);
    uint64_t *keys = malloc(*count * sizeof *keys);
    size_t at = 0;
    for (uint32_t z = 0; z < box[2]; z++)
        for (uint32_t y = 0; y < box[1]; y++)
            for (uint32_t x = 0; x < box[0]; x++)
                keys[at++] = morton_encode3(x, y, z);
    qsort(keys, *count, sizeof *keys, compare_keys);
    return keys;
}

static void check_agreed(const uint64_t *split)
{
    uint64_t *root = malloc(((size_t)mt_size + 1) * sizeof *root);
    memcpy(root, split, ((size_t)mt_size + 1) * sizeof *root);
    MPI_Bcast(root, mt_size + 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MT_CHECK(memcmp(root, split, ((size_t)mt_size + 1) * sizeof *root) == 0,
             "splitters differ from rank 0's");
    free(root);
}

/* Contiguous ranges in key order, and each rank's weight within the largest weight of the mean. */
static void check_balance(const uint64_t *keys, size_t count, const uint64_t *split,
                          weight_kind kind, const char *what)
{
    MT_CHECK(split[0] == 0 && split[mt_size] == UINT64_MAX, "%s: ends", what);
    for (int r = 0; r < mt_size; r++)
        MT_CHECK(split[r] <= split[r + 1], "%s: splitter %d decreases", what, r);
    double *share = calloc((size_t)mt_size, sizeof *share), total = 0, heaviest = 0;
    int by_count = 1;
    for (size_t i = 0; i < count; i++)
        by_count &= weight_of(keys[i], kind) == 0.0;
    for (size_t i = 0; i < count; i++) {
        double w = by_count ? 1.0 : weight_of(keys[i], kind);
        share[partition_owner(split, mt_size, keys[i])] += w;
        total += w;
        heaviest = w > heaviest ? w : heaviest;
    }
    for (int r = 0; r < mt_size; r++)
        MT_CHECK(fabs(share[r] - total / mt_size) <= heaviest * (1 + 1e-9) + 1e-6,
                 "%s: rank %d holds %g of %g (largest chunk %g)", what, r, share[r], total,
                 heaviest);
    free(share);
}

/* Rebalance from `current` splitters: each rank passes the chunks it owns now. */
static void run_case(const uint64_t *keys, size_t count, const uint64_t *current, weight_kind kind,
                     const char *what)
{
    uint64_t *mine = malloc((count ? count : 1) * sizeof *mine);
    double *weights = malloc((count ? count : 1) * sizeof *weights);
    uint64_t *split = malloc(((size_t)mt_size + 1) * sizeof *split);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (partition_owner(current, mt_size, keys[i]) == mt_rank) {
            mine[n] = keys[i];
            weights[n++] = weight_of(keys[i], kind);
        }
    strata_error err;
    error_clear(&err);
    strata_status st = partition_by_weight(MPI_COMM_WORLD, mine, weights, n, split, &err);
    MT_CHECK(st == STRATA_OK, "%s: %s", what, err.message);
    if (st == STRATA_OK) {
        check_agreed(split);
        check_balance(keys, count, split, kind, what);
    }
    free(mine);
    free(weights);
    free(split);
}

/* A bad weight on the last rank fails every rank with the same status and message. */
static void test_bad_weight(const uint64_t *keys, size_t count)
{
    uint64_t *split = malloc(((size_t)mt_size + 1) * sizeof *split);
    double weights[2] = {1.0, mt_rank == mt_size - 1 ? -1.0 : 2.0};
    uint64_t mine[2] = {keys[2 * (size_t)mt_rank % count], keys[2 * (size_t)mt_rank % count] + 1};
    strata_error err;
    error_clear(&err);
    strata_status st = partition_by_weight(MPI_COMM_WORLD, mine, weights, 2, split, &err);
    MT_CHECK(st == STRATA_ERR_ARG, "negative weight: status %d", st);
    char root[STRATA_ERROR_MAX];
    memcpy(root, err.message, sizeof root);
    MPI_Bcast(root, (int)sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
    MT_CHECK(strcmp(root, err.message) == 0, "messages differ: %s / %s", root, err.message);
    /* Unsorted keys on one rank. */
    uint64_t unsorted[2] = {10, mt_rank == 0 ? 5 : 11};
    st =
        partition_by_weight(MPI_COMM_WORLD, unsorted, weights + 0, 1 + (mt_rank == 0), split, &err);
    MT_CHECK(st == STRATA_ERR_ARG, "unsorted keys: status %d", st);
    free(split);
}

int main(int argc, char **argv)
{
    mt_init(&argc, &argv);
    size_t count;
    uint64_t *keys = all_keys(&count);
    uint64_t *balanced = malloc(((size_t)mt_size + 1) * sizeof *balanced);
    uint64_t *on_rank0 = malloc(((size_t)mt_size + 1) * sizeof *on_rank0);
    partition_balanced(box, mt_size, balanced);
    on_rank0[0] = 0;
    for (int r = 1; r <= mt_size; r++) /* rank 0 owns everything, the others nothing */
        on_rank0[r] = UINT64_MAX;
    run_case(keys, count, balanced, WEIGHT_RANDOM, "random weights");
    run_case(keys, count, balanced, WEIGHT_ZERO, "zero weights");
    run_case(keys, count, balanced, WEIGHT_RISING, "rising weights");
    run_case(keys, count, balanced, WEIGHT_ONE_HEAVY, "one heavy chunk");
    run_case(keys, count, on_rank0, WEIGHT_RANDOM, "all on rank 0");
    run_case(keys, 0, on_rank0, WEIGHT_RANDOM, "no chunks");
    test_bad_weight(keys, count);
    free(keys);
    free(balanced);
    free(on_rank0);
    return mt_finish("mpi_partition");
}
