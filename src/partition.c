/* partition.c: splitters of the Morton key space among ranks. */
#include "partition.h"

#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "morton.h"

/* floor(v * num / den) without 128-bit arithmetic; needs num <= den <= INT_MAX. */
static uint64_t mul_div(uint64_t v, uint64_t num, uint64_t den)
{
    return v / den * num + v % den * num / den;
}

/* Smallest key in [lo, hi] with at least `target` in-box chunks below it. */
static uint64_t key_with_count(uint64_t target, const uint64_t n[3], uint64_t lo, uint64_t hi)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (morton_count_below(mid, n) >= target)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/*
 * count_below rises by at most one per key, so the smallest key reaching the
 * target has exactly `target` chunks below it: rank shares differ by at most one.
 */
void partition_balanced(const uint64_t n[3], int ranks, uint64_t *split)
{
    uint64_t total = morton_count_below(UINT64_MAX, n);
    uint64_t end = morton_key_end(n);
    split[0] = 0;
    for (int r = 1; r < ranks; r++)
        split[r] =
            key_with_count(mul_div(total, (uint64_t)r, (uint64_t)ranks), n, split[r - 1], end);
    split[ranks] = UINT64_MAX;
}

int partition_owner(const uint64_t *split, int ranks, uint64_t key)
{
    int lo = 0, hi = ranks - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (split[mid] <= key)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static uint64_t clamped_boundary(const uint64_t *split, int ranks, int i, uint64_t key_end)
{
    if (i == ranks || split[i] > key_end)
        return key_end;
    return split[i];
}

void partition_remap(const uint64_t *old_split, int old_ranks, uint64_t key_end, int new_ranks,
                     uint64_t *new_split)
{
    new_split[0] = 0;
    for (int m = 1; m < new_ranks; m++) {
        /* Fractional old boundary m * old / new = whole + rem / new_ranks. */
        uint64_t scaled = (uint64_t)m * (uint64_t)old_ranks;
        int whole = (int)(scaled / (uint64_t)new_ranks);
        uint64_t rem = scaled % (uint64_t)new_ranks;
        uint64_t lo = clamped_boundary(old_split, old_ranks, whole, key_end);
        uint64_t hi = rem ? clamped_boundary(old_split, old_ranks, whole + 1, key_end) : lo;
        new_split[m] = lo + mul_div(hi - lo, rem, (uint64_t)new_ranks);
    }
    new_split[new_ranks] = UINT64_MAX;
}

static strata_status check_chunks(const uint64_t *keys, const double *weights, size_t n,
                                  strata_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && keys[i] <= keys[i - 1])
            return error_set(err, STRATA_ERR_ARG,
                             "partition by weight: key %llu at %zu not above %llu",
                             (unsigned long long)keys[i], i, (unsigned long long)keys[i - 1]);
        if (!isfinite(weights[i]) || weights[i] < 0)
            return error_set(err, STRATA_ERR_ARG, "partition by weight: chunk %llu has weight %g",
                             (unsigned long long)keys[i], weights[i]);
    }
    return STRATA_OK;
}

/* Global prefix (before this rank) and total of {weight, count}. Collective. */
static strata_status weight_sums(MPI_Comm comm, int rank, const double *weights, size_t n,
                                 double prefix[2], double total[2], strata_error *err)
{
    double local[2] = {0.0, (double)n};
    for (size_t i = 0; i < n; i++)
        local[0] += weights[i];
    int rc = MPI_Exscan(local, prefix, 2, MPI_DOUBLE, MPI_SUM, comm);
    if (rc != MPI_SUCCESS)
        return error_mpi(err, rc, "partition by weight: prefix sum");
    if (rank == 0) /* MPI_Exscan leaves rank 0's result undefined */
        prefix[0] = prefix[1] = 0.0;
    rc = MPI_Allreduce(local, total, 2, MPI_DOUBLE, MPI_SUM, comm);
    return error_mpi(err, rc, "partition by weight: total");
}

/*
 * first[r] = smallest local key whose chunk goes to rank r or later. Owners are
 * forced non-decreasing so rounding in the prefix sums cannot break contiguity.
 */
static void first_keys(const uint64_t *keys, const double *weights, size_t n, int ranks,
                       const double prefix[2], const double total[2], uint64_t *first)
{
    int by_count = !(total[0] > 0.0);
    double sum = by_count ? prefix[1] : prefix[0], whole = by_count ? total[1] : total[0];
    int prev = 0;
    for (size_t i = 0; i < n; i++) {
        double w = by_count ? 1.0 : weights[i];
        double share = floor((sum + w / 2) * ranks / whole);
        int owner = share >= ranks - 1 ? ranks - 1 : (int)share;
        if (owner < prev)
            owner = prev;
        for (int r = prev + 1; r <= owner; r++)
            first[r] = keys[i];
        prev = owner;
        sum += w;
    }
}

strata_status partition_by_weight(MPI_Comm comm, const uint64_t *keys, const double *weights,
                                  size_t n, uint64_t *split, strata_error *err)
{
    int rank, ranks;
    uint64_t *first = NULL;
    double prefix[2], total[2];
    strata_status st = error_mpi(err, MPI_Comm_rank(comm, &rank), "partition by weight: rank");
    if (st == STRATA_OK)
        st = error_mpi(err, MPI_Comm_size(comm, &ranks), "partition by weight: size");
    if (st != STRATA_OK)
        return st;
    first = strata_malloc(((size_t)ranks + 1) * sizeof *first);
    st = first ? check_chunks(keys, weights, n, err)
               : error_set(err, STRATA_ERR_NOMEM, "partition by weight: %d splitters", ranks);
    st = error_agree(comm, st, err);
    if (st != STRATA_OK)
        goto cleanup;
    st = weight_sums(comm, rank, weights, n, prefix, total, err);
    if (st != STRATA_OK)
        goto cleanup;
    for (int r = 0; r <= ranks; r++)
        first[r] = UINT64_MAX;
    first_keys(keys, weights, n, ranks, prefix, total, first);
    /* The smallest first key over all ranks starts each rank's range. */
    st = error_mpi(err, MPI_Allreduce(first, split, ranks + 1, MPI_UINT64_T, MPI_MIN, comm),
                   "partition by weight: splitters");
    split[0] = 0;
    split[ranks] = UINT64_MAX;
cleanup:
    free(first);
    return st;
}

/* A change of row density (rows per key) at a key. */
typedef struct {
    uint64_t key;
    double density;
} density_step;

static int compare_steps(const void *a, const void *b)
{
    const density_step *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

/* The steps of one run: each block of rows spread evenly over its key span. */
static size_t run_steps(const partition_sample *r, uint64_t block_rows, density_step *out)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        uint64_t rows = i + 1 < r->n ? block_rows : r->rows - (uint64_t)i * block_rows;
        uint64_t begin = r->keys[i], end;
        if (i + 1 < r->n)
            end = r->keys[i + 1];
        else if (i > 0) /* the last block: the previous block's span, scaled by its rows */
            end = begin +
                  (uint64_t)((double)(r->keys[i] - r->keys[i - 1]) * (double)rows /
                             (double)block_rows) +
                  1;
        else
            end = begin + 1;
        if (end <= begin) /* past the end of the key space */
            end = UINT64_MAX;
        double density = (double)rows / (double)(end - begin);
        out[k++] = (density_step){begin, density};
        out[k++] = (density_step){end, -density};
    }
    return k;
}

strata_status partition_by_samples(const partition_sample *runs, size_t count, uint64_t block_rows,
                                   int ranks, uint64_t *split, int *used, strata_error *err)
{
    *used = 0;
    uint64_t total = 0;
    size_t blocks = 0;
    for (size_t i = 0; i < count; i++)
        if (runs[i].n && runs[i].rows) {
            total += runs[i].rows;
            blocks += runs[i].n;
        }
    if (ranks < 2 || total / (uint64_t)ranks < 2 * block_rows)
        return STRATA_OK;
    density_step *steps = strata_malloc(2 * blocks * sizeof *steps);
    if (!steps)
        return error_set(err, STRATA_ERR_NOMEM, "splitters from %zu fence blocks", blocks);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (runs[i].n && runs[i].rows)
            n += run_steps(&runs[i], block_rows, steps + n);
    qsort(steps, n, sizeof *steps, compare_steps);
    /* Sweep: below steps[j].key lie `below` rows; the density up to the next step is slope. */
    double below = 0.0, slope = 0.0;
    uint64_t at = steps[0].key;
    size_t j = 0;
    split[0] = 0;
    for (int m = 1; m < ranks; m++) {
        double target = (double)total * m / ranks;
        uint64_t key = UINT64_MAX;
        for (; j < n; j++) {
            double gain = slope * (double)(steps[j].key - at);
            if (slope > 0.0 && below + gain >= target) {
                double step = ceil((target - below) / slope);
                key =
                    at + (step < (double)(steps[j].key - at) ? (uint64_t)step : steps[j].key - at);
                break;
            }
            below += gain;
            at = steps[j].key;
            slope += steps[j].density;
        }
        if (key < split[m - 1])
            key = split[m - 1];
        split[m] = key;
    }
    split[ranks] = UINT64_MAX;
    free(steps);
    *used = 1;
    return STRATA_OK;
}
