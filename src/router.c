/* router.c: route records to the ranks owning their keys, and replies back. */
#include "router.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"
#include "partition.h"

_Static_assert(sizeof(route_record) == 16, "route_record is sent as raw bytes; keep it packed");

/* One answer on its way back to the record's sender. */
typedef struct {
    uint32_t origin;
    uint16_t value;
    uint16_t pad;
} route_reply;

#define HUGE_PAGE ((size_t)2 << 20)

/* Buffers of at least a quarter of a huge page are rounded up to whole huge pages (at
 * most 4x the bytes asked, 2 MiB more at worst). */
#define HUGE_FROM (HUGE_PAGE / 4)

/* The bytes alloc_records gives for `bytes` (all usable). */
static size_t records_capacity(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_FROM)
        return (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
#endif
    return bytes;
}

/*
 * malloc for the big record buffers. Routing touches every byte of freshly
 * allocated memory once, so page faults can cost more than the sort itself;
 * asking for transparent huge pages cuts them 512-fold where the kernel leaves
 * THP to madvise (measured: a first batch of 50,000 updates per rank took some
 * 1,000 page faults on each rank for its 0.8 MB buffers before they were rounded up
 * to a huge page). The advice may be refused: the memory is the same either way.
 * The result is freed with free().
 */
static void *alloc_records(size_t count, size_t elem)
{
    size_t bytes = (count ? count : 1) * elem;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_FROM) {
        void *p = NULL;
        size_t rounded = records_capacity(bytes);
        if (strata_posix_memalign(&p, HUGE_PAGE, rounded) != 0)
            return NULL;
        (void)madvise(p, rounded, MADV_HUGEPAGE);
        return p;
    }
#endif
    return strata_malloc(bytes);
}

void *route_alloc_records(size_t count, size_t elem, size_t *bytes)
{
    void *p = alloc_records(count, elem);
    *bytes = p ? records_capacity((count ? count : 1) * elem) : 0;
    return p;
}

/* The buffers of one route_records call, by role. */
enum { BUF_SLOT, BUF_PACKED, BUF_RECV, BUF_TMP, BUF_FROM, BUF_FROM_TMP };

void route_scratch_free(route_scratch *s)
{
    route_scratch_trim(s, 0);
}

void route_scratch_trim(route_scratch *s, size_t max_bytes)
{
    for (int i = 0; i < 6; i++)
        if (s->cap[i] > max_bytes || (max_bytes == 0 && s->buf[i])) {
            free(s->buf[i]);
            s->buf[i] = NULL;
            s->cap[i] = 0;
        }
}

size_t route_scratch_bytes(const route_scratch *s)
{
    size_t total = 0;
    for (int i = 0; i < 6; i++)
        total += s->cap[i];
    return total;
}

/* Buffer `which` of s with room for count elements (its contents are not kept). */
static void *scratch_get(route_scratch *s, int which, size_t count, size_t elem)
{
    size_t bytes = (count ? count : 1) * elem;
    if (s->cap[which] >= bytes)
        return s->buf[which];
    free(s->buf[which]);
    s->buf[which] = alloc_records(count, elem);
    s->cap[which] = s->buf[which] ? records_capacity(bytes) : 0;
    return s->buf[which];
}

void *route_scratch_get(route_scratch *s, int which, size_t bytes)
{
    return scratch_get(s, which, bytes, 1);
}

/* Swap the roles of two buffers (the sort's result may end in its scratch). */
static void scratch_swap(route_scratch *s, int a, int b)
{
    void *p = s->buf[a];
    size_t c = s->cap[a];
    s->buf[a] = s->buf[b], s->cap[a] = s->cap[b];
    s->buf[b] = p, s->cap[b] = c;
}

/* Counts and MPI_BYTE layouts of one all-to-all exchange. */
typedef struct {
    int size;
    uint64_t *send_counts, *recv_counts; /* elements per peer */
    uint64_t *next;                      /* scratch of the bucket sort */
    int *send_bytes, *send_displs, *recv_bytes, *recv_displs;
    size_t recv_total; /* elements received in all */
} exchange_plan;

static void plan_free(exchange_plan *plan)
{
    free(plan->send_counts);
    free(plan->send_bytes);
    plan->send_counts = NULL;
    plan->send_bytes = NULL;
}

static strata_status plan_alloc(MPI_Comm comm, exchange_plan *plan, strata_error *err)
{
    memset(plan, 0, sizeof *plan);
    strata_status st = error_mpi(err, MPI_Comm_size(comm, &plan->size), "route: communicator size");
    if (st != STRATA_OK)
        return st;
    size_t size = (size_t)plan->size;
    plan->send_counts = strata_calloc(3 * size, sizeof *plan->send_counts);
    plan->send_bytes = strata_calloc(4 * size, sizeof *plan->send_bytes);
    if (!plan->send_counts || !plan->send_bytes) {
        plan_free(plan);
        return error_set(err, STRATA_ERR_NOMEM, "route: plan for %d ranks", plan->size);
    }
    plan->recv_counts = plan->send_counts + size;
    plan->next = plan->send_counts + 2 * size;
    plan->send_displs = plan->send_bytes + size;
    plan->recv_bytes = plan->send_bytes + 2 * size;
    plan->recv_displs = plan->send_bytes + 3 * size;
    return STRATA_OK;
}

/* MPI counts and displacements are int: refuse any layout beyond INT_MAX bytes. */
static strata_status byte_layout(const uint64_t *counts, int size, size_t elem, int *bytes,
                                 int *displs, strata_error *err)
{
    uint64_t offset = 0;
    for (int r = 0; r < size; r++) {
        if (counts[r] > (uint64_t)INT_MAX / elem || offset > (uint64_t)INT_MAX)
            return error_set(err, STRATA_ERR_OVERFLOW,
                             "route: %llu records for rank %d exceed MPI's int byte counts",
                             (unsigned long long)counts[r], r);
        bytes[r] = (int)(counts[r] * elem);
        displs[r] = (int)offset;
        offset += counts[r] * elem;
    }
    return STRATA_OK;
}

/* Exchange element counts (collective), then lay out both sides in bytes (local). */
static strata_status plan_exchange_counts(MPI_Comm comm, exchange_plan *plan, size_t elem,
                                          strata_error *err)
{
    int rc =
        MPI_Alltoall(plan->send_counts, 1, MPI_UINT64_T, plan->recv_counts, 1, MPI_UINT64_T, comm);
    strata_status st = error_mpi(err, rc, "route: exchanging counts");
    if (st != STRATA_OK)
        return st;
    plan->recv_total = 0;
    for (int r = 0; r < plan->size; r++)
        plan->recv_total += plan->recv_counts[r];
    st = byte_layout(plan->send_counts, plan->size, elem, plan->send_bytes, plan->send_displs, err);
    if (st == STRATA_OK)
        st = byte_layout(plan->recv_counts, plan->size, elem, plan->recv_bytes, plan->recv_displs,
                         err);
    return st;
}

static strata_status plan_exchange(MPI_Comm comm, const exchange_plan *plan, const void *send,
                                   void *recv, strata_error *err)
{
    int rc = MPI_Alltoallv(send, plan->send_bytes, plan->send_displs, MPI_BYTE, recv,
                           plan->recv_bytes, plan->recv_displs, MPI_BYTE, comm);
    return error_mpi(err, rc, "route: exchanging records");
}

/*
 * Stable counting sort by destination: on return slot[i] is the position of
 * element i in the packed send buffer and plan->send_counts holds the counts.
 */
static void bucket_by_dest(exchange_plan *plan, size_t *slot, size_t n)
{
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++)
        plan->send_counts[slot[i]]++;
    for (int r = 0; r < plan->size; r++) {
        plan->next[r] = offset;
        offset += plan->send_counts[r];
    }
    for (size_t i = 0; i < n; i++)
        slot[i] = (size_t)plan->next[slot[i]]++;
}

/* Byte number `byte` of key (0 = least significant), the digit of one radix pass. */
#define KEY_DIGIT(key, byte) ((size_t)((key) >> (8 * (byte))) & 0xff)

/*
 * The byte positions where keys differ (from the OR and AND of all keys): only
 * those need a pass. Keys confined to a rank's range or a small world skip most
 * of the eight. Returns how many, listed in pass[].
 */
static int passes_needed(const route_record *records, size_t n, int pass[8])
{
    uint64_t any = 0, all = ~(uint64_t)0;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        any |= records[i].key;
        all &= records[i].key;
    }
    for (int byte = 0; byte < 8; byte++)
        if (KEY_DIGIT(any ^ all, byte) != 0)
            pass[count++] = byte;
    return count;
}

/* One read of the keys gives the digit histograms of every pass needed. */
static void key_histograms(const route_record *records, size_t n, const int *pass, int passes,
                           size_t hist[8][256])
{
    memset(hist, 0, 8 * sizeof hist[0]);
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < passes; p++)
            hist[p][KEY_DIGIT(records[i].key, pass[p])]++;
}

/* One stable scatter pass of an LSD radix sort; from/from_out may be NULL. */
static void radix_pass(const route_record *in, route_record *out, const int *from, int *from_out,
                       size_t n, int byte, const size_t count[256])
{
    size_t start[256], next = 0;
    for (int d = 0; d < 256; d++) {
        start[d] = next;
        next += count[d];
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = start[KEY_DIGIT(in[i].key, byte)]++;
        out[at] = in[i];
        if (from)
            from_out[at] = from[i];
    }
}

/*
 * Stable LSD radix sort by key, carrying `from` along when it is not NULL.
 * Passes alternate between the two buffers; returns 1 when the result ended in
 * tmp (and from_tmp).
 */
/* Simulations often hand in batches already in key order (one rank's sweep over
 * its chunks): one read-only pass spares them the sort's passes. */
static int sorted_by_key(const route_record *records, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (records[i].key < records[i - 1].key)
            return 0;
    return 1;
}

/* Keys spanning fewer values than this, and than the records, are sorted by one
 * counting pass (an owner's keys in a world of up to some 10^4 chunks per rank: 2 to 3
 * radix passes fewer), not by radix. */
#define COUNTING_SPAN_MAX ((uint64_t)1 << 15)

/*
 * Stable counting sort of records whose keys lie in [lo, lo + span): one pass counts,
 * one scatters into out (with from into from_out when not NULL). Returns 0 when the
 * counts cannot be allocated (the caller sorts by radix instead).
 */
static int counting_sort(const route_record *in, route_record *out, const int *from, int *from_out,
                         size_t n, uint64_t lo, uint64_t span)
{
    uint32_t *next = strata_calloc(span, sizeof *next);
    if (!next)
        return 0;
    for (size_t i = 0; i < n; i++)
        next[in[i].key - lo]++;
    uint32_t at = 0;
    for (uint64_t k = 0; k < span; k++) {
        uint32_t c = next[k];
        next[k] = at;
        at += c;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t to = next[in[i].key - lo]++;
        out[to] = in[i];
        if (from)
            from_out[to] = from[i];
    }
    free(next);
    return 1;
}

static int radix_sort(route_record *records, route_record *tmp, int *from, int *from_tmp, size_t n)
{
    size_t hist[8][256];
    int pass[8], in_tmp = 0;
    if (sorted_by_key(records, n))
        return 0;
    /* n fits in 32 bits (route_records refuses more), so do the counting sort's counts */
    uint64_t lo = records[0].key, hi = records[0].key;
    for (size_t i = 1; i < n; i++) {
        lo = records[i].key < lo ? records[i].key : lo;
        hi = records[i].key > hi ? records[i].key : hi;
    }
    if (hi - lo < COUNTING_SPAN_MAX && hi - lo < n && n <= UINT32_MAX &&
        counting_sort(records, tmp, from, from_tmp, n, lo, hi - lo + 1))
        return 1;
    int passes = n < 2 ? 0 : passes_needed(records, n, pass);
    key_histograms(records, n, pass, passes, hist);
    for (int p = 0; p < passes; p++) {
        if (in_tmp)
            radix_pass(tmp, records, from_tmp, from, n, pass[p], hist[p]);
        else
            radix_pass(records, tmp, from, from_tmp, n, pass[p], hist[p]);
        in_tmp = !in_tmp;
    }
    return in_tmp;
}

strata_status route_sort_by_key(route_record *records, size_t n, strata_error *err)
{
    if (n < 2)
        return STRATA_OK;
    route_record *tmp = alloc_records(n, sizeof *tmp);
    if (!tmp)
        return error_set(err, STRATA_ERR_NOMEM, "route: sort buffer for %zu records", n);
    if (radix_sort(records, tmp, NULL, NULL, n))
        memcpy(records, tmp, n * sizeof *records);
    free(tmp);
    return STRATA_OK;
}

/* Up to this many ranks, an owner is found by scanning the splitters, not searching. */
#define PACK_SCAN_RANKS 8

/* Fill origins (when replies are wanted), bucket the records by owner and pack them in
 * send order. Local. */
static strata_status pack_records(const uint64_t *split, exchange_plan *plan, route_record *send,
                                  size_t n, int origins, route_scratch *s, route_record **packed,
                                  strata_error *err)
{
    if (n > UINT32_MAX)
        return error_set(err, STRATA_ERR_OVERFLOW, "route: %zu records exceed 32-bit origins", n);
    uint32_t *slot = scratch_get(s, BUF_SLOT, n, sizeof *slot);
    *packed = scratch_get(s, BUF_PACKED, n, sizeof **packed);
    if (!slot || !*packed)
        return error_set(err, STRATA_ERR_NOMEM, "route: send buffer for %zu records", n);
    for (size_t i = 0; origins && i < n; i++)
        send[i].origin = (uint32_t)i;
    /* Each record's owner and the counts (a stable counting sort by destination): a few
     * ranks' splitters are scanned (most jobs of a node), more are searched. */
    const int size = plan->size;
    uint64_t *count = plan->send_counts;
    if (size <= PACK_SCAN_RANKS) {
        for (size_t i = 0; i < n; i++) {
            const uint64_t key = send[i].key;
            int o = 0;
            while (o + 1 < size && split[o + 1] <= key)
                o++;
            slot[i] = (uint32_t)o;
            count[o]++;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            int o = partition_owner(split, size, send[i].key);
            slot[i] = (uint32_t)o;
            count[o]++;
        }
    }
    uint64_t offset = 0;
    for (int r = 0; r < size; r++) {
        plan->next[r] = offset;
        offset += count[r];
    }
    route_record *out = *packed;
    for (size_t i = 0; i < n; i++)
        out[plan->next[slot[i]]++] = send[i];
    return STRATA_OK;
}

/* Buffers for the received records, their sources, and the sort's scratch. Local. */
static strata_status alloc_receive(route_scratch *s, size_t n, int want_from, strata_error *err)
{
    int ok = scratch_get(s, BUF_RECV, n, sizeof(route_record)) &&
             scratch_get(s, BUF_TMP, n, sizeof(route_record));
    if (ok && want_from)
        ok = scratch_get(s, BUF_FROM, n, sizeof(int)) &&
             scratch_get(s, BUF_FROM_TMP, n, sizeof(int));
    return ok ? STRATA_OK
              : error_set(err, STRATA_ERR_NOMEM, "route: receive buffer for %zu records", n);
}

/* Received blocks arrive in source-rank order; tag each record with its source. */
static void fill_sources(const exchange_plan *plan, int *from)
{
    size_t at = 0;
    for (int r = 0; r < plan->size; r++)
        for (uint64_t k = 0; k < plan->recv_counts[r]; k++)
            from[at++] = r;
}

/*
 * Pack, agree, exchange counts, allocate, agree, exchange records, sort. Every
 * rank agrees before each exchange, so a local failure (memory, overflow) on any
 * rank stops all of them before an exchange some rank would not join.
 */
strata_status route_records(MPI_Comm comm, strata_status prior, const uint64_t *split,
                            route_record *send, size_t n, route_scratch *keep, route_record **recv,
                            size_t *recv_n, int **recv_from, strata_error *err)
{
    exchange_plan plan;
    memset(&plan, 0, sizeof plan);
    route_scratch own = {0}, *s = keep ? keep : &own;
    route_record *packed = NULL;
    *recv = NULL;
    *recv_n = 0;
    if (recv_from)
        *recv_from = NULL;
    strata_status st = prior;
    if (st == STRATA_OK)
        st = plan_alloc(comm, &plan, err);
    if (st == STRATA_OK)
        st = pack_records(split, &plan, send, n, recv_from != NULL, s, &packed, err);
    st = error_agree(comm, st, err);
    if (st != STRATA_OK)
        goto cleanup;
    st = plan_exchange_counts(comm, &plan, sizeof *packed, err);
    if (st == STRATA_OK)
        st = alloc_receive(s, plan.recv_total, recv_from != NULL, err);
    st = error_agree(comm, st, err);
    if (st != STRATA_OK)
        goto cleanup;
    st = plan_exchange(comm, &plan, packed, s->buf[BUF_RECV], err);
    if (st != STRATA_OK)
        goto cleanup;
    int *from = recv_from ? s->buf[BUF_FROM] : NULL;
    if (from)
        fill_sources(&plan, from);
    if (radix_sort(s->buf[BUF_RECV], s->buf[BUF_TMP], from, recv_from ? s->buf[BUF_FROM_TMP] : NULL,
                   plan.recv_total)) {
        scratch_swap(s, BUF_RECV, BUF_TMP);
        scratch_swap(s, BUF_FROM, BUF_FROM_TMP);
    }
    *recv = s->buf[BUF_RECV];
    *recv_n = plan.recv_total;
    if (recv_from)
        *recv_from = s->buf[BUF_FROM];
    if (!keep) { /* the caller owns the results */
        own.buf[BUF_RECV] = NULL, own.cap[BUF_RECV] = 0;
        own.buf[BUF_FROM] = NULL, own.cap[BUF_FROM] = 0;
    }
cleanup:
    plan_free(&plan);
    if (!keep)
        route_scratch_free(&own);
    return st;
}

/* Bucket replies by the rank each record came from. Local. */
static strata_status pack_replies(exchange_plan *plan, const route_record *recv,
                                  const int *recv_from, const uint16_t *reply, size_t recv_n,
                                  route_reply **packed, strata_error *err)
{
    size_t *slot = alloc_records(recv_n, sizeof *slot);
    *packed = alloc_records(recv_n, sizeof **packed);
    if (!slot || !*packed) {
        free(slot);
        return error_set(err, STRATA_ERR_NOMEM, "route: %zu replies", recv_n);
    }
    for (size_t i = 0; i < recv_n; i++) {
        if (recv_from[i] < 0 || recv_from[i] >= plan->size) {
            free(slot);
            return error_set(err, STRATA_ERR_ARG, "route: reply %zu to rank %d of %d", i,
                             recv_from[i], plan->size);
        }
        slot[i] = (size_t)recv_from[i];
    }
    bucket_by_dest(plan, slot, recv_n);
    for (size_t i = 0; i < recv_n; i++)
        (*packed)[slot[i]] = (route_reply){.origin = recv[i].origin, .value = reply[i]};
    free(slot);
    return STRATA_OK;
}

static strata_status scatter_replies(const route_reply *got, size_t n, uint16_t *out, size_t out_n,
                                     strata_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i].origin >= out_n)
            return error_set(err, STRATA_ERR_ARG, "route: reply for record %u of %zu",
                             (unsigned)got[i].origin, out_n);
        out[got[i].origin] = got[i].value;
    }
    return STRATA_OK;
}

strata_status route_replies(MPI_Comm comm, strata_status prior, const route_record *recv,
                            const int *recv_from, const uint16_t *reply, size_t recv_n,
                            uint16_t *out, size_t out_n, strata_error *err)
{
    exchange_plan plan;
    memset(&plan, 0, sizeof plan);
    route_reply *packed = NULL, *got = NULL;
    strata_status st = prior;
    if (st == STRATA_OK)
        st = plan_alloc(comm, &plan, err);
    if (st == STRATA_OK)
        st = pack_replies(&plan, recv, recv_from, reply, recv_n, &packed, err);
    st = error_agree(comm, st, err);
    if (st != STRATA_OK)
        goto cleanup;
    st = plan_exchange_counts(comm, &plan, sizeof *packed, err);
    if (st == STRATA_OK) {
        got = alloc_records(plan.recv_total, sizeof *got);
        if (!got)
            st = error_set(err, STRATA_ERR_NOMEM, "route: %zu replies", plan.recv_total);
    }
    st = error_agree(comm, st, err);
    if (st != STRATA_OK)
        goto cleanup;
    st = plan_exchange(comm, &plan, packed, got, err);
    if (st == STRATA_OK)
        st = scatter_replies(got, plan.recv_total, out, out_n, err);
    st = error_agree(comm, st, err);
cleanup:
    plan_free(&plan);
    free(packed);
    free(got);
    return st;
}
