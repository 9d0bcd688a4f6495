/* router.h: route records to the ranks owning their chunk keys (MPI_Alltoallv). */
#ifndef STRATA_ROUTER_H
#define STRATA_ROUTER_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/**
 * A routed voxel update: chunk key, voxel index inside the chunk
 * (x + y*C + z*C*C, below 2^24 for chunk edges up to 256) with ROUTE_CONDITIONAL in
 * its top bit (conditional on `expected`), and the new material. A routed read
 * (replies wanted) needs neither material nor expected: origin, the record's index
 * at its sending rank, takes their place. Sent as raw bytes (16, no padding: every
 * byte routed is copied four times, by the staging, the packing, the exchange and
 * the sort), so keep every field fixed-size.
 */
typedef struct {
    uint64_t key;
    uint32_t voxel;
    union {
        struct {
            uint16_t material;
            uint16_t expected;
        };
        uint32_t origin; /**< index of the record at its sending rank (for replies) */
    };
} route_record;

/** The conditional flag in route_record.voxel, and the voxel index under it. */
#define ROUTE_CONDITIONAL ((uint32_t)1 << 31)
#define ROUTE_VOXEL       (ROUTE_CONDITIONAL - 1)

/**
 * Buffers route_records keeps between calls (send slots, packed records, received
 * records and the sort's scratch, sources), grown as batches grow. A caller that
 * routes batch after batch (a world's flushes) keeps one so that each flush reuses
 * memory whose pages are already mapped: first-touch page faults of fresh buffers
 * cost more than routing itself. Zero-initialise; route_scratch_trim() gives back
 * what exceeds a bound; route_scratch_free() gives back everything.
 */
typedef struct {
    void *buf[6];
    size_t cap[6]; /* bytes */
} route_scratch;

/* What a world keeps between batches, per buffer: 64 MiB (4.2 million 16-byte records;
 * at most 384 MiB over the six buffers, about 160 MB for a balanced batch). */
#define ROUTE_KEEP_BYTES ((size_t)64 << 20)

void route_scratch_free(route_scratch *s);
/** Free the buffers larger than max_bytes each (the others stay for the next call). */
void route_scratch_trim(route_scratch *s, size_t max_bytes);
/** Buffer `which` (0..5) of s with room for `bytes` (its contents are not kept),
 *  or NULL when out of memory. For callers other than route_records (box I/O)
 *  that reuse the world's buffers between calls; route_records overwrites them. */
void *route_scratch_get(route_scratch *s, int which, size_t bytes);
/** Bytes held. */
size_t route_scratch_bytes(const route_scratch *s);
/** Room for count elements of elem bytes, on transparent huge pages when it is large
 *  (first-touch page faults of fresh buffers cost more than routing); *bytes: the
 *  usable bytes (at least count * elem). NULL when memory is out. Free with free(),
 *  grow with strata_realloc. */
void *route_alloc_records(size_t count, size_t elem, size_t *bytes);

/**
 * Send every record to partition_owner(split, ranks, rec.key). Collective.
 * Records are bucketed stably by destination; the received array is ordered by
 * (source rank, send order) and then sorted stably by key, so applying it in
 * order gives "last write wins in (rank, input order)".
 * A failure on any rank (the caller's `prior`, memory, or more than INT_MAX bytes
 * to or from one peer: STRATA_ERR_OVERFLOW) is agreed on by all ranks before any
 * exchange, in the agreement the packing needs anyway (at many ranks the number of
 * collectives, not the data, takes the time). A failure of the record exchange
 * itself is returned by the ranks that see it, not agreed: the caller's next
 * agreement (route_replies's, for one) covers it.
 * @param[in]     prior     this rank's status so far (its message in err)
 * @param[in]     split     comm-size + 1 splitters
 * @param[in,out] send      n records of this rank (n must fit in 32 bits); with recv_from
 *                          (replies wanted) origin is filled with the index, in place
 *                          of material and expected
 * @param[in,out] keep      buffers to reuse, or NULL
 * @param[out]    recv      received records, sorted by key (NULL on failure). With
 *                          keep, they live in keep until its next use (do not free);
 *                          without, they are malloc'ed (free them).
 * @param[out]    recv_n    number of received records
 * @param[out]    recv_from if not NULL, the source rank of each received record (owned
 *                          like recv)
 * @param[out]    err       the agreed error (not NULL)
 */
strata_status route_records(MPI_Comm comm, strata_status prior, const uint64_t *split,
                            route_record *send, size_t n, route_scratch *keep, route_record **recv,
                            size_t *recv_n, int **recv_from, strata_error *err);
/**
 * Send replies back: reply[i] answers recv[i], which came from recv_from[i] with
 * recv[i].origin. out[origin] receives it at the sender. Collective. A failure
 * on any rank (`prior` included) is agreed before any exchange; the status
 * returned is agreed.
 * @param[in]  prior   this rank's status so far (its message in err)
 * @param[in]  recv, recv_from, recv_n  as returned by route_records
 * @param[in]  reply   recv_n answers
 * @param[out] out     out_n slots (out_n = the n this rank passed to route_records);
 *                     slots nobody answered are left unchanged
 * @param[out] err     the agreed error (not NULL)
 */
strata_status route_replies(MPI_Comm comm, strata_status prior, const route_record *recv,
                            const int *recv_from, const uint16_t *reply, size_t recv_n,
                            uint16_t *out, size_t out_n, strata_error *err);
/**
 * Stable sort by key (LSD radix on the bytes where keys differ). Local.
 * @return STRATA_OK, or STRATA_ERR_NOMEM for the n-record scratch buffer
 */
strata_status route_sort_by_key(route_record *records, size_t n, strata_error *err);

#endif
