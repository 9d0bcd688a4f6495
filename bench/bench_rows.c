/* bench_rows.c: the rows of bench_rows.h. */
#include "bench_rows.h"
#include "splitmix.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

uint64_t bench_random(uint64_t *state)
{
    return splitmix64(state);
}

bench_row bench_row_start(const bench *b, const char *id, const char *group, const char *unit,
                          int better)
{
    bench_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "%s", id);
    snprintf(row.group, sizeof row.group, "%s", group);
    snprintf(row.unit, sizeof row.unit, "%s", unit);
    snprintf(row.peer, sizeof row.peer, "strata");
    row.ranks = b->size;
    row.better = better;
    return row;
}

double bench_slowest(const bench *b, double seconds)
{
    double slowest = seconds;
    MPI_Allreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, b->comm);
    return slowest;
}

void bench_volume_text(const bench *b, char *out, size_t size)
{
    snprintf(out, size,
             "%" PRId64 " x %" PRId64 " x %" PRId64 " layered terrain (seed %" PRIu64 ", chunk %d)",
             b->dims[0], b->dims[1], b->dims[2], b->seed, b->chunk_edge);
}

strata_status bench_add(bench *b, bench_row *row, const double *samples, int n)
{
    if (n < 1 || n > BENCH_SAMPLES_MAX)
        return error_set(&b->error, STRATA_ERR_ARG, "bench row %s: %d samples", row->id, n);
    row->sample_count = n;
    row->value = samples[0];
    for (int i = 0; i < n; i++) {
        row->samples[i] = samples[i];
        int better = row->better == BENCH_HIGHER_IS_BETTER ? samples[i] > row->value
                                                           : samples[i] < row->value;
        if (better)
            row->value = samples[i];
    }
    if (b->row_count == b->row_capacity) {
        size_t capacity = b->row_capacity ? 2 * b->row_capacity : 64;
        bench_row *grown = realloc(b->rows, capacity * sizeof *grown);
        if (!grown)
            return error_set(&b->error, STRATA_ERR_NOMEM, "bench: %zu rows", capacity);
        b->rows = grown;
        b->row_capacity = capacity;
    }
    b->rows[b->row_count++] = *row;
    if (b->rank == 0 && b->verbose)
        fprintf(stderr, "strata bench: rank 0: %-34s %14.6g %-12s (%d ranks, best of %d)\n",
                row->id, row->value, row->unit, row->ranks, n);
    return STRATA_OK;
}

/* ---- JSON ------------------------------------------------------------------- */

/* Strings in rows are ours, but machine fields come from the system: escape them. */
int bench_wants(const bench *b, const char *group)
{
    if (!b->only[0])
        return 1;
    size_t n = strlen(group);
    for (const char *p = b->only; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, group, n))
            return 1;
        p += len + (end != NULL);
    }
    return 0;
}
