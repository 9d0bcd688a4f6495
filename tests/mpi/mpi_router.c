/* mpi_router.c: routing records to owners (stable, sorted) and replies back to senders. */
#include <stdlib.h>
#include <string.h>

#include "morton.h"
#include "mpi_common.h"
#include "partition.h"
#include "router.h"

static const uint64_t box[3] = {37, 23, 19};

typedef struct {
    uint64_t key;
    int source;
    uint32_t index;
} expected_record;

/* Records rank `source` sends in `round`: every rank can rebuild every rank's input. */
static route_record *make_records(int source, int round, size_t *n)
{
    uint64_t state = 1000 * (uint64_t)round + (uint64_t)source + 1, pool_state = 77;
    uint64_t pool[16], end = morton_key_end(box);
    *n = round == 0 ? 5000 + 37 * (size_t)source : (source % 2 ? 0 : 3000);
    for (int i = 0; i < 16; i++) /* keys shared by every rank, to force repeats */
        pool[i] = mt_random(&pool_state) % end;
    route_record *records = calloc(*n ? *n : 1, sizeof *records);
    for (size_t i = 0; i < *n && records; i++) {
        uint64_t r = mt_random(&state);
        uint32_t x = (uint32_t)(r % box[0]), y = (uint32_t)(r >> 20) % box[1],
                 z = (uint32_t)(r >> 40) % box[2];
        records[i].key = r % 3 == 0 ? pool[(r >> 8) % 16] : morton_encode3(x, y, z);
        if (r % 97 == 0) /* past the box: belongs to the last rank */
            records[i].key = end + (r >> 32);
        records[i].voxel = (uint32_t)source << 16 | (uint32_t)i | (i % 2 ? ROUTE_CONDITIONAL : 0);
        records[i].material = (uint16_t)source;
        records[i].expected = (uint16_t)i;
    }
    return records;
}

static int compare_expected(const void *pa, const void *pb)
{
    const expected_record *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->source != b->source)
        return a->source - b->source;
    return (a->index > b->index) - (a->index < b->index);
}

/* What this rank must receive: its keys from all ranks, by (key, source, send order). */
static expected_record *expected_for(int round, const uint64_t *split, size_t *count)
{
    size_t cap = 0, at = 0;
    for (int s = 0; s < mt_size; s++)
        cap += 5000 + 37 * (size_t)s;
    expected_record *want = malloc(cap * sizeof *want);
    for (int s = 0; s < mt_size && want; s++) {
        size_t n;
        route_record *records = make_records(s, round, &n);
        for (size_t i = 0; i < n; i++)
            if (partition_owner(split, mt_size, records[i].key) == mt_rank)
                want[at++] = (expected_record){records[i].key, s, (uint32_t)i};
        free(records);
    }
    qsort(want, at, sizeof *want, compare_expected);
    *count = at;
    return want;
}

/* With sources (replies wanted) origin holds the sender's index, in place of material
 * and expected; without, those are as sent. */
static void check_received(int round, const uint64_t *split, const route_record *recv,
                           const int *from, size_t recv_n)
{
    size_t want_n;
    expected_record *want = expected_for(round, split, &want_n);
    MT_CHECK(want != NULL, "out of memory");
    MT_CHECK(recv_n == want_n, "round %d: received %zu records, expected %zu", round, recv_n,
             want_n);
    size_t bad = 0, per_source[64] = {0};
    for (size_t j = 0; j < recv_n && j < want_n && want; j++) {
        const route_record *r = &recv[j];
        const expected_record *e = &want[j];
        int ok = r->key == e->key && from[j] == e->source && r->origin == e->index &&
                 r->voxel == ((uint32_t)e->source << 16 | e->index |
                              (e->index % 2 ? ROUTE_CONDITIONAL : 0));
        if (!ok && bad++ < 5)
            MT_CHECK(ok, "round %d: record %zu is key %llu from %d#%u, expected %llu from %d#%u",
                     round, j, (unsigned long long)r->key, from[j], r->origin,
                     (unsigned long long)e->key, e->source, e->index);
        if (from[j] >= 0 && from[j] < 64)
            per_source[from[j]]++;
    }
    MT_CHECK(bad == 0, "round %d: %zu records out of place", round, bad);
    for (int s = 0; round == 0 && s < mt_size && s < 64; s++)
        MT_CHECK(per_source[s] > 0, "nothing received from rank %d", s);
    free(want);
}

static uint16_t reply_value(uint32_t origin, int owner, int sender)
{
    return (uint16_t)(origin * 31u + (uint32_t)owner * 7u + (uint32_t)sender);
}

static void check_replies(const uint64_t *split, const route_record *send, size_t n,
                          const route_record *recv, const int *from, size_t recv_n)
{
    uint16_t *reply = malloc((recv_n ? recv_n : 1) * sizeof *reply);
    uint16_t *out = malloc((n ? n : 1) * sizeof *out);
    strata_error err;
    error_clear(&err);
    for (size_t j = 0; j < recv_n; j++)
        reply[j] = reply_value(recv[j].origin, mt_rank, from[j]);
    strata_status st =
        route_replies(MPI_COMM_WORLD, STRATA_OK, recv, from, reply, recv_n, out, n, &err);
    MT_CHECK(st == STRATA_OK, "route_replies: %s", err.message);
    size_t bad = 0;
    for (size_t i = 0; i < n && st == STRATA_OK; i++)
        bad += out[i] !=
               reply_value((uint32_t)i, partition_owner(split, mt_size, send[i].key), mt_rank);
    MT_CHECK(bad == 0, "%zu replies wrong", bad);
    free(reply);
    free(out);
}

static void test_round(int round, const uint64_t *split)
{
    size_t n, recv_n = 0;
    route_record *send = make_records(mt_rank, round, &n), *recv = NULL;
    int *from = NULL;
    strata_error err;
    error_clear(&err);
    /* Without sources the records arrive as sent, material and expected included.
     * Ranks with nothing to send pass NULL: allowed when n is 0. */
    strata_status st = route_records(MPI_COMM_WORLD, STRATA_OK, split, n ? send : NULL, n, NULL,
                                     &recv, &recv_n, NULL, &err);
    MT_CHECK(st == STRATA_OK, "route_records without sources: %s", err.message);
    if (st != STRATA_OK)
        return;
    size_t want_n, bad = 0;
    expected_record *want = expected_for(round, split, &want_n);
    MT_CHECK(want && recv_n == want_n, "round %d: %zu records without sources", round, recv_n);
    for (size_t j = 0; want && j < recv_n && j < want_n; j++)
        bad += recv[j].key != want[j].key || recv[j].material != (uint16_t)want[j].source ||
               recv[j].expected != (uint16_t)want[j].index ||
               recv[j].voxel != ((uint32_t)want[j].source << 16 | want[j].index |
                                 (want[j].index % 2 ? ROUTE_CONDITIONAL : 0));
    MT_CHECK(bad == 0, "round %d: %zu records changed on the way", round, bad);
    free(want);
    free(recv);
    recv = NULL;
    /* With sources (replies wanted) origin is filled in. */
    st = route_records(MPI_COMM_WORLD, STRATA_OK, split, n ? send : NULL, n, NULL, &recv, &recv_n,
                       &from, &err);
    MT_CHECK(st == STRATA_OK, "route_records: %s", err.message);
    if (st != STRATA_OK)
        return;
    for (size_t i = 0; i < n; i++)
        MT_CHECK(send[i].origin == i, "origin of %zu is %u", i, send[i].origin);
    check_received(round, split, recv, from, recv_n);
    check_replies(split, send, n, recv, from, recv_n);
    free(send);
    free(recv);
    free(from);
}

/* Without recv_from the records are the same; routing again through kept buffers
 * gives the same; with a short out array every rank fails. */
static void test_without_sources_and_bad_reply(const uint64_t *split)
{
    size_t n, recv_n = 0, recv2_n = 0;
    route_record *send = make_records(mt_rank, 0, &n), *recv = NULL, *recv2 = NULL;
    int *from = NULL;
    route_scratch kept = {0};
    strata_error err;
    error_clear(&err);
    for (int again = 0; again < 2; again++) { /* the second call reuses the grown buffers */
        route_record *r = NULL;
        size_t r_n = 0;
        strata_status st =
            route_records(MPI_COMM_WORLD, STRATA_OK, split, send, n, &kept, &r, &r_n, NULL, &err);
        MT_CHECK(st == STRATA_OK && r && route_scratch_bytes(&kept) > 0, "kept route %d: %s", again,
                 err.message);
    }
    strata_status st =
        route_records(MPI_COMM_WORLD, STRATA_OK, split, send, n, NULL, &recv, &recv_n, NULL, &err);
    MT_CHECK(st == STRATA_OK, "route_records without sources: %s", err.message);
    st = route_records(MPI_COMM_WORLD, STRATA_OK, split, send, n, &kept, &recv2, &recv2_n, &from,
                       &err);
    MT_CHECK(st == STRATA_OK && recv_n == recv2_n, "second route: %s", err.message);
    /* the same records, but for origin (filled with sources), in place of material+expected */
    size_t differ = 0;
    for (size_t j = 0; recv && recv2 && j < recv_n; j++)
        differ += recv[j].key != recv2[j].key || recv[j].voxel != recv2[j].voxel;
    MT_CHECK(recv && recv2 && differ == 0, "routes differ");
    uint16_t *reply = calloc(recv2_n ? recv2_n : 1, sizeof *reply), *out = calloc(n, sizeof *out);
    /* Rank 0 claims it sent nothing: its replies have nowhere to go. */
    st = route_replies(MPI_COMM_WORLD, STRATA_OK, recv2, from, reply, recv2_n, out,
                       mt_rank == 0 ? 0 : n, &err);
    MT_CHECK(st == STRATA_ERR_ARG, "short reply array: status %d (%s)", st, err.message);
    free(reply);
    free(out);
    free(send);
    free(recv);
    route_scratch_free(&kept); /* recv2 and from lived in it */
    MT_CHECK(route_scratch_bytes(&kept) == 0, "scratch not freed");
}

/* A caller's failure on the last rank alone (prior) fails both routings on every
 * rank with its message, before any exchange: nothing is received. */
static void test_prior_failure(const uint64_t *split)
{
    size_t n, recv_n = 7;
    route_record *send = make_records(mt_rank, 2, &n), *recv = NULL;
    int *from = NULL;
    const int last = mt_rank == mt_size - 1;
    strata_error err;
    error_clear(&err);
    strata_status prior =
        last ? error_set(&err, STRATA_ERR_RANGE, "voxel (1, 2, 3) is outside") : STRATA_OK;
    strata_status st =
        route_records(MPI_COMM_WORLD, prior, split, send, n, NULL, &recv, &recv_n, &from, &err);
    MT_CHECK(
        st == STRATA_ERR_RANGE && strstr(err.message, "(1, 2, 3)") && !recv && recv_n == 0 && !from,
        "route_records after a failure on rank %d: status %d (%s)", mt_size - 1, st, err.message);
    uint16_t reply[1] = {0}, out[1] = {0};
    error_clear(&err);
    prior = last ? error_set(&err, STRATA_ERR_NOMEM, "no room for answers") : STRATA_OK;
    st = route_replies(MPI_COMM_WORLD, prior, NULL, NULL, reply, 0, out, 0, &err);
    MT_CHECK(st == STRATA_ERR_NOMEM && strstr(err.message, "no room for answers"),
             "route_replies after a failure on rank %d: status %d (%s)", mt_size - 1, st,
             err.message);
    free(send);
}

static int compare_by_key_then_origin(const void *pa, const void *pb)
{
    const route_record *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->origin > b->origin) - (a->origin < b->origin);
}

/* route_sort_by_key against qsort with the original index as tie-break (stable). */
static void check_sort(size_t n, uint64_t key_mask, uint64_t seed)
{
    route_record *a = calloc(n ? n : 1, sizeof *a), *b = calloc(n ? n : 1, sizeof *b);
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) {
        a[i].key = mt_random(&state) & key_mask;
        a[i].origin = (uint32_t)i;
        a[i].voxel = (uint32_t)(i * 3);
    }
    memcpy(b, a, n * sizeof *a);
    qsort(b, n, sizeof *b, compare_by_key_then_origin);
    strata_error err;
    error_clear(&err);
    MT_CHECK(route_sort_by_key(a, n, &err) == STRATA_OK, "sort: %s", err.message);
    MT_CHECK(memcmp(a, b, n * sizeof *a) == 0, "sort of %zu keys (mask %llx) not stable", n,
             (unsigned long long)key_mask);
    free(a);
    free(b);
}

static void test_sort(void)
{
    check_sort(0, UINT64_MAX, 1);
    check_sort(1, UINT64_MAX, 2);
    check_sort(100000, UINT64_MAX, 3);           /* all eight bytes differ */
    check_sort(50000, 0xff00000000000000ULL, 4); /* only the top byte */
    check_sort(50000, 0x0000000000000f0fULL, 5); /* many repeats */
    check_sort(20000, 0, 6);                     /* all equal: no pass at all */
    check_sort(70000, 0x00ff00ff00ff00ffULL, 7); /* alternating bytes */
}

int main(int argc, char **argv)
{
    mt_init(&argc, &argv);
    uint64_t *split = malloc(((size_t)mt_size + 1) * sizeof *split);
    partition_balanced(box, mt_size, split);
    test_round(0, split);
    test_round(1, split);
    test_without_sources_and_bad_reply(split);
    test_prior_failure(split);
    test_sort();
    free(split);
    return mt_finish("mpi_router");
}
