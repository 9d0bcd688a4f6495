/* alloc.c: allocation calls that a test can make fail (alloc.h). */
#include "alloc.h"

#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { SITES_MAX = 4096 };

/* 0: STRATA_ALLOC_FAIL not read yet; 1: unarmed; 2: counting (and maybe failing). */
static atomic_int state;
static atomic_long counted;
static long fail_at;      /* 0: count only */
static int rank_matches;  /* this rank is the one armed */
static atomic_int failed; /* the armed failure happened */
static _Atomic(const char *) failed_site;
static char site_filter[128];
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *sites[SITES_MAX];
static size_t site_count;

static int world_rank(void)
{
    int initialized = 0, rank = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

static void arm(long nth, int rank, const char *site)
{
    atomic_store(&state, 1);
    fail_at = nth;
    rank_matches = rank < 0 || rank == world_rank();
    site_filter[0] = '\0';
    if (site && strlen(site) < sizeof site_filter)
        strcpy(site_filter, site);
    atomic_store(&counted, 0);
    atomic_store(&failed, 0);
    atomic_store(&failed_site, NULL);
    pthread_mutex_lock(&sites_lock);
    site_count = 0;
    pthread_mutex_unlock(&sites_lock);
    atomic_store(&state, 2);
}

static void read_environment(void)
{
    const char *spec = getenv("STRATA_ALLOC_FAIL");
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!spec || !*spec || !initialized) {
        atomic_store(&state, 1);
        return;
    }
    char *stop;
    long nth = strtol(spec, &stop, 10);
    int rank = -1;
    const char *site = NULL;
    if (*stop == ':') {
        char *after;
        rank = (int)strtol(stop + 1, &after, 10);
        if (after == stop + 1)
            rank = -1;
        if (*after == ':')
            site = after + 1;
    }
    arm(nth, rank, site);
}

static void remember_site(const char *site)
{
    pthread_mutex_lock(&sites_lock);
    size_t i = 0;
    while (i < site_count && strcmp(sites[i], site) != 0)
        i++;
    if (i == site_count && site_count < SITES_MAX)
        sites[site_count++] = site;
    pthread_mutex_unlock(&sites_lock);
}

/* A filter with a line ("store.c:812") names one site: the site's name ends
 * with it; without one, any site whose name contains it. */
static int site_matches(const char *site)
{
    if (!strchr(site_filter, ':'))
        return strstr(site, site_filter) != NULL;
    size_t n = strlen(site), f = strlen(site_filter);
    return n >= f && strcmp(site + n - f, site_filter) == 0 && (n == f || site[n - f - 1] == '/');
}

/* 1 when this allocation must fail. */
static int fail_now(const char *site)
{
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s == 1)
        return 0;
    if (s == 0) {
        read_environment();
        if (atomic_load(&state) != 2)
            return 0;
    }
    if (!rank_matches || (site_filter[0] && !site_matches(site)))
        return 0;
    remember_site(site);
    long n = atomic_fetch_add(&counted, 1) + 1;
    if (fail_at <= 0 || n != fail_at)
        return 0;
    atomic_store(&failed_site, site);
    atomic_store(&failed, 1);
    return 1;
}

void *strata_malloc_at(size_t size, const char *site)
{
    return fail_now(site) ? NULL : malloc(size);
}

void *strata_calloc_at(size_t count, size_t size, const char *site)
{
    return fail_now(site) ? NULL : calloc(count, size);
}

void *strata_realloc_at(void *p, size_t size, const char *site)
{
    return fail_now(site) ? NULL : realloc(p, size);
}

int strata_posix_memalign_at(void **p, size_t alignment, size_t size, const char *site)
{
    return fail_now(site) ? ENOMEM : posix_memalign(p, alignment, size);
}

void strata_alloc_fail(long nth, int rank, const char *site)
{
    arm(nth, rank, site);
}

void strata_alloc_disarm(void)
{
    atomic_store(&state, 1);
}

long strata_alloc_count(void)
{
    return atomic_load(&counted);
}

int strata_alloc_failed(void)
{
    return atomic_load(&failed);
}

const char *strata_alloc_failed_site(void)
{
    return atomic_load(&failed_site);
}

size_t strata_alloc_sites(const char **out, size_t max)
{
    pthread_mutex_lock(&sites_lock);
    size_t n = site_count;
    for (size_t i = 0; out && i < n && i < max; i++)
        out[i] = sites[i];
    pthread_mutex_unlock(&sites_lock);
    return n;
}
