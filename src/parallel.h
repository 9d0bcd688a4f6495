/* parallel.h: a small pthread parallel-for used to encode and summarise chunks.
 *
 * The calling (main) thread takes part as thread 0; MPI, HDF5 and every
 * mutation of the world stay on it: the item function may only read shared
 * state and write memory that belongs to its thread or its item.
 */
#ifndef STRATA_PARALLEL_H
#define STRATA_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/** Bytes that grow by appending: a thread's arena of encoded blobs, a batch's payload. */
typedef struct {
    uint8_t *data;
    uint64_t bytes, capacity;
} byte_buffer;

/** Append n bytes (growing geometrically; src NULL: reserve them, contents undefined); 0
 *  when memory is out (b unchanged). */
int byte_buffer_append(byte_buffer *b, const void *src, size_t n);

/** Most threads a rank uses. */
#define PARALLEL_MAX_THREADS 64

/**
 * Threads for `items` independent items on this rank: `requested` (the world's
 * strata_options.threads) when above 0, else the environment STRATA_THREADS,
 * else the cores of the rank's CPU affinity mask when it is bound to fewer than
 * all online CPUs (mpirun binds each rank to one core by default at two ranks or
 * fewer, and threads sharing a core only slow each other), else online CPUs /
 * ranks_per_node (the ranks sharing this node); at least 1, at most
 * PARALLEL_MAX_THREADS, never more than items. Local.
 */
int parallel_threads(int requested, int ranks_per_node, size_t items);

/**
 * Item function: process item i on thread `thread` (0 = the caller). On
 * failure it returns the status with the message in err (its thread's own).
 */
typedef strata_status (*parallel_fn)(void *ctx, int thread, size_t i, strata_error *err);

/**
 * Run fn for every i in [0, n) on `threads` threads (1: serially on the
 * caller). Items are handed out in ascending order, so each thread sees its
 * items in ascending order. After a failure no new item starts; the failure of
 * the lowest item is copied into err (once) and returned. A thread that cannot
 * be started is not an error: the others do its share. Local.
 */
strata_status parallel_for(int threads, size_t n, parallel_fn fn, void *ctx, strata_error *err);

#endif
