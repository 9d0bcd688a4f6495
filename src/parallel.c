/* parallel.c: the parallel-for of parallel.h (pthreads, dynamic item counter). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "parallel.h"

int parallel_threads(int requested, int ranks_per_node, size_t items)
{
    long threads = requested;
    if (threads <= 0) {
        const char *env = getenv("STRATA_THREADS");
        char *end = NULL;
        long v = env && *env ? strtol(env, &end, 10) : 0;
        if (env && *env && end && *end == '\0' && v > 0)
            threads = v;
    }
    if (threads <= 0) {
        /* A rank bound to some cores (mpirun binds to one core per rank by
         * default at 2 ranks or fewer) gets one thread per core of its mask;
         * an unbound rank shares the node's CPUs with the node's other ranks. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int per_node = ranks_per_node > 0 ? ranks_per_node : 1;
        cpu_set_t mask;
        long bound = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : 0;
        if (bound > 0 && bound < cpus)
            threads = bound;
        else
            threads = cpus > 0 ? cpus / per_node : 1;
    }
    if (threads > PARALLEL_MAX_THREADS)
        threads = PARALLEL_MAX_THREADS;
    if ((size_t)threads > items)
        threads = (long)items;
    return threads < 1 ? 1 : (int)threads;
}

typedef struct {
    parallel_fn fn;
    void *ctx;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
} shared_run;

typedef struct {
    shared_run *run;
    int thread;
    size_t failed_item; /* lowest failing item of this thread (n: none) */
    strata_error error;
    strata_status status;
} thread_run;

static void run_items(thread_run *t)
{
    shared_run *r = t->run;
    t->failed_item = r->n;
    t->status = STRATA_OK;
    while (!atomic_load_explicit(&r->failed, memory_order_relaxed)) {
        size_t i = atomic_fetch_add_explicit(&r->next, 1, memory_order_relaxed);
        if (i >= r->n)
            break;
        strata_status st = r->fn(r->ctx, t->thread, i, &t->error);
        if (st) {
            t->status = st;
            t->failed_item = i;
            atomic_store_explicit(&r->failed, 1, memory_order_relaxed);
            break;
        }
    }
}

static void *worker(void *arg)
{
    run_items(arg);
    chunk_codec_release_thread(); /* the thread's zstd contexts die with it */
    return NULL;
}

strata_status parallel_for(int threads, size_t n, parallel_fn fn, void *ctx, strata_error *err)
{
    if (threads <= 1 || n <= 1) {
        for (size_t i = 0; i < n; i++) {
            strata_status st = fn(ctx, 0, i, err);
            if (st)
                return st;
        }
        return STRATA_OK;
    }
    if (threads > PARALLEL_MAX_THREADS)
        threads = PARALLEL_MAX_THREADS;
    shared_run run = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&run.next, 0);
    atomic_init(&run.failed, 0);
    thread_run *t = strata_calloc((size_t)threads, sizeof *t);
    pthread_t *ids = strata_calloc((size_t)threads, sizeof *ids);
    int *started = strata_calloc((size_t)threads, sizeof *started);
    if (!t || !ids || !started) {
        free(t), free(ids), free(started);
        return parallel_for(1, n, fn, ctx, err); /* no memory for threads: run serially */
    }
    for (int i = 0; i < threads; i++)
        t[i].run = &run, t[i].thread = i;
    for (int i = 1; i < threads; i++)
        started[i] = pthread_create(&ids[i], NULL, worker, &t[i]) == 0;
    run_items(&t[0]);
    int worst = -1;
    for (int i = 0; i < threads; i++) {
        if (i > 0 && started[i])
            pthread_join(ids[i], NULL);
        if ((i == 0 || started[i]) && t[i].status &&
            (worst < 0 || t[i].failed_item < t[worst].failed_item))
            worst = i;
    }
    strata_status st = STRATA_OK;
    if (worst >= 0) {
        st = t[worst].status;
        error_set(err, st, "%s", t[worst].error.message);
    }
    free(t), free(ids), free(started);
    return st;
}

int byte_buffer_append(byte_buffer *b, const void *src, size_t n)
{
    if (b->bytes + n > b->capacity) {
        uint64_t capacity = (b->bytes + n) * 2;
        uint8_t *grown = strata_realloc(b->data, capacity);
        if (!grown)
            return 0;
        b->data = grown, b->capacity = capacity;
    }
    if (n && src)
        memcpy(b->data + b->bytes, src, n);
    b->bytes += n;
    return 1;
}
