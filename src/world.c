/* world.c: the world object and its lifetime. It owns strata_world (world.h): create,
 * open, close and abandon; the writer (LOCK) and REINDEX locks; the committed rows and
 * the chunks resident on this rank (load, decode, evict); the checks every call makes
 * first (NULL arguments, a read-only world, a pending signal); configuration and
 * partition queries. Every world_* function is defined here. */
#include "world.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "delta.h"
#include "fsutil.h"
#include "morton.h"
#include "partition.h"

#define LOCK_NAME    "LOCK"
#define PUBLISH_NAME "PUBLISH" /* held around every manifest replacement */
#define REINDEX_NAME "REINDEX" /* held by the one reindex running */
#define REINDEX_TMP  MANIFEST_NAME ".reindex.tmp"

void strata_config_init(strata_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->chunk_edge = STRATA_CHUNK_EDGE_DEFAULT;
    for (int i = 0; i < 3; i++)
        cfg->voxel_size[i] = 1.0;
}

void strata_options_init(strata_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->cache_bytes = STRATA_CACHE_BYTES_DEFAULT;
    opt->zstd_level = 3;
}

const char *strata_last_error(const strata_world *w)
{
    if (w)
        return w->error.status == STRATA_OK && !w->error.message[0] ? "no error" : w->error.message;
    return error_thread_message();
}

strata_status world_agree(strata_world *w, strata_status local)
{
    if (local == STRATA_OK)
        w->error.status = STRATA_OK;
    return error_agree(w->comm, local, &w->error);
}

strata_status world_null_argument(const strata_world *w, const char *fn, const char *what)
{
    /* The error slot is the one part of a world that a const call may write. */
    strata_error *err = w ? &((strata_world *)w)->error : NULL;
    return error_set(err, STRATA_ERR_ARG, "%s: NULL %s", fn, what);
}

strata_status world_write_refused(strata_world *w, const char *before)
{
    if (!w->writable)
        return WORLD_FAIL(w, STRATA_ERR_READ_ONLY, "%s is open read-only", w->final_dir);
    if (strata_signal_pending)
        return WORLD_FAIL(w, STRATA_ERR_INTERRUPTED,
                          "stopped by signal %d before %s; the world "
                          "stays at its last commit (epoch %" PRIu64 ")",
                          (int)strata_signal_pending, before, w->committed.epoch);
    return STRATA_OK;
}

/* ---- geometry ------------------------------------------------------------------ */

strata_status world_chunk_failed(const strata_world *w, const char *what, uint64_t key,
                                 strata_status st, strata_error *err)
{
    int64_t b[6];
    world_chunk_bounds(w, key, b);
    char message[STRATA_ERROR_MAX];
    snprintf(message, sizeof message,
             "%s: chunk key %" PRIu64 " (at voxel %" PRId64 ",%" PRId64 ",%" PRId64 "): %s", what,
             key, b[0], b[1], b[2], err->message);
    return error_set(err, st, "%s", message);
}

void world_chunk_bounds(const strata_world *w, uint64_t key, int64_t b[6])
{
    uint32_t c[3];
    morton_decode3(key, &c[0], &c[1], &c[2]);
    const int64_t *dims = w->committed.dims;
    for (int i = 0; i < 3; i++) {
        b[i] = (int64_t)c[i] << w->edge_bits;
        b[i + 3] = b[i] + w->edge < dims[i] ? b[i] + w->edge : dims[i];
    }
}

const store_row *world_own_row(const strata_world *w, uint64_t key)
{
    return w->row_count ? bsearch(&key, w->rows, w->row_count, sizeof *w->rows, morton_key_compare)
                        : NULL;
}

/* ---- the world's chunks ----------------------------------------------------------- */

/* Name the chunk by coordinates too: a user knows those. */
static strata_status decode_failed(strata_world *w, const store_row *row, strata_status st)
{
    int64_t b[6];
    world_chunk_bounds(w, row->key, b);
    char message[STRATA_ERROR_MAX];
    snprintf(message, sizeof message, "%s (chunk at voxel %" PRId64 ",%" PRId64 ",%" PRId64 ")",
             w->error.message, b[0], b[1], b[2]);
    return error_set(&w->error, st, "%s", message);
}

strata_status world_decode_row(strata_world *w, const store_row *row, uint16_t *voxels)
{
    strata_status st = STRATA_OK;
    if (row->codec == CODEC_UNIFORM) {
        for (size_t i = 0; i < w->chunk_voxels; i++)
            voxels[i] = row->value;
    } else {
        /* A size read from a file is checked before it sizes an allocation. */
        if (row->payload_length > chunk_encode_bound(w->edge))
            return WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                              "chunk key %" PRIu64 ": payload length %u exceeds "
                              "the largest possible (%zu)",
                              row->key, row->payload_length, chunk_encode_bound(w->edge));
        uint8_t *payload = strata_malloc(row->payload_length ? row->payload_length : 1);
        if (!payload)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot read chunk key %" PRIu64, row->key);
        st =
            store_read_payload(&w->store, row->payload_segment, row->payload_offset,
                               row->payload_length, row->payload_crc, row->key, payload, &w->error);
        if (!st)
            st = chunk_decode(payload, row->payload_length, row->codec, w->edge, w->scratch, voxels,
                              &w->error);
        free(payload);
    }
    if (!st && row->delta_depth)
        st = world_merge_chain(w, row, voxels);
    return st ? decode_failed(w, row, st) : STRATA_OK;
}

strata_status world_merge_chain(strata_world *w, const store_row *row, uint16_t *voxels)
{
    byte_buffer chain = {0};
    strata_status st = delta_chain_read(&w->store, row, w->edge, &chain, &w->error);
    if (!st)
        st = delta_chain_apply(chain.data, chain.bytes, row->delta_depth, w->edge, w->scratch,
                               voxels, &w->error);
    if (st && st != STRATA_ERR_NOMEM && !strstr(w->error.message, "chunk key"))
        error_set(&w->error, st, "chunk key %" PRIu64 ": delta chain: %s", row->key,
                  w->error.message);
    free(chain.data);
    return st;
}

strata_status world_load_committed(strata_world *w, chunk_cache *c, uint64_t key,
                                   const store_row *row, chunk **out)
{
    uint16_t value = row && store_row_uniform(row) ? row->value : 0;
    strata_status st = chunk_cache_insert(c, key, value, out, &w->error);
    if (st || !row || store_row_uniform(row))
        return st;
    uint16_t *voxels = chunk_buffer_get(c);
    if (!voxels)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate chunk key %" PRIu64, key);
    if (!st)
        st = world_decode_row(w, row, voxels);
    if (st) {
        chunk_buffer_put(c, voxels);
        chunk_cache_remove(c, *out);
        *out = NULL;
        return st;
    }
    chunk_adopt(c, *out, voxels, w->chunk_voxels);
    return STRATA_OK;
}

/* Apply a blind entry's writes, in the order made, to its chunk k just loaded from the
 * store; k takes a copy of the log (the change since the stored image: a delta at
 * commit; the entry's log goes back to the blind entries' pool) and is dirty; the entry
 * is dropped. On failure k is dropped and the entry stays. */
static strata_status merge_blind(strata_world *w, chunk *k, chunk *b)
{
    if (b->log_count) {
        strata_status st = chunk_make_dense(&w->owned, k, &w->error);
        if (!st) {
            chunk_log_clear(k);
            st = chunk_log_reserve(k, b->log_count, delta_log_max(w->chunk_voxels), &w->error);
        }
        if (st) {
            chunk_cache_remove(&w->owned, k);
            return st;
        }
        for (uint32_t i = 0; i < b->log_count; i++)
            k->voxels[b->log[i] >> 40] = (uint16_t)b->log[i];
        chunk_set_dirty(&w->owned, k, 1);
        memcpy(k->log, b->log, b->log_count * sizeof *k->log);
        k->log_count = b->log_count;
    }
    chunk_cache_remove(&w->blind, b);
    return STRATA_OK;
}

strata_status world_own_chunk(strata_world *w, uint64_t key, chunk **out)
{
    chunk *k = chunk_cache_find(&w->owned, key);
    if (k) {
        chunk_touch(&w->owned, k);
        *out = k;
        return STRATA_OK;
    }
    strata_status st = world_load_committed(w, &w->owned, key, world_own_row(w, key), out);
    chunk *b = st || !w->blind.count ? NULL : chunk_cache_find(&w->blind, key);
    if (b && (st = merge_blind(w, *out, b)))
        *out = NULL;
    return st;
}

strata_status world_blind_reserve(strata_world *w, uint64_t key, const route_record *run,
                                  size_t more, chunk **out)
{
    const size_t limit = delta_log_max(w->chunk_voxels);
    chunk *b = w->blind.count ? chunk_cache_find(&w->blind, key) : NULL;
    *out = NULL;
    if ((b ? b->log_count : 0) + more > limit)
        return STRATA_OK; /* too many to log: the chunk is loaded and written whole */
    const store_row *row = b ? NULL : world_own_row(w, key);
    if (!b && (!row || store_row_uniform(row))) {
        /* Uniform (or never stored: air). Loading it costs no decode, but a change makes
         * it dense: a 2 C^3-byte buffer filled, its pages first touched, for a few
         * changes. Logged instead, unless no record changes its value (then it stays
         * clean, as a uniform chunk loaded is). */
        uint16_t value = row ? row->value : 0;
        size_t i = 0;
        while (i < more && run[i].material == value)
            i++;
        if (i == more)
            return STRATA_OK;
    }
    strata_status st = b ? STRATA_OK : chunk_cache_insert(&w->blind, key, 0, &b, &w->error);
    if (st)
        return st;
    b->blind = 1;
    /* an entry left empty by a failed batch is harmless: merges and commits skip it */
    st = chunk_log_pool_reserve(&w->blind_logs, b, more, limit, &w->error);
    if (!st)
        *out = b;
    return st;
}

uint64_t world_blind_bytes(const strata_world *w)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < w->blind.capacity; i++)
        if (w->blind.slots[i].chunk)
            bytes += sizeof(chunk) + w->blind.slots[i].chunk->log_capacity * sizeof(uint64_t);
    return bytes;
}

void world_evict(strata_world *w)
{
    chunk_cache_trim(&w->owned);
    chunk_cache_trim(&w->committed_copies);
}

strata_status world_committed_chunk(strata_world *w, uint64_t key, chunk **out)
{
    int own = world_owns(w, key);
    if (own) {
        chunk *k = chunk_cache_find(&w->owned, key);
        if (k && !k->dirty) {
            *out = k;
            return STRATA_OK;
        }
    }
    chunk *k = chunk_cache_find(&w->committed_copies, key);
    if (k) {
        chunk_touch(&w->committed_copies, k);
        *out = k;
        return STRATA_OK;
    }
    store_row row;
    const store_row *found = NULL;
    if (own) {
        found = world_own_row(w, key);
    } else {
        int hit;
        strata_status st = store_lookup_row(&w->store, key, &row, &hit, &w->error);
        if (st)
            return st;
        found = hit ? &row : NULL;
    }
    strata_status st = world_load_committed(w, &w->committed_copies, key, found, out);
    if (!st)
        chunk_cache_trim(&w->committed_copies);
    return st;
}

/* ---- configuration checks --------------------------------------------------------- */

/* Chunks of edge 2^edge_bits along an axis of `dim` voxels (the last one partial). */
static uint64_t chunks_along(int64_t dim, int edge_bits)
{
    return ((uint64_t)dim + ((uint64_t)1 << edge_bits) - 1) >> edge_bits;
}

static int log2_exact(int64_t v)
{
    int bits = 0;
    while (((int64_t)1 << bits) < v)
        bits++;
    return ((int64_t)1 << bits) == v ? bits : -1;
}

static strata_status check_config(const strata_config *cfg, strata_error *err)
{
    int bits = log2_exact(cfg->chunk_edge);
    if (bits < 0 || cfg->chunk_edge < STRATA_CHUNK_EDGE_MIN ||
        cfg->chunk_edge > STRATA_CHUNK_EDGE_MAX)
        return error_set(err, STRATA_ERR_ARG, "chunk edge %d is not a power of two in [%d, %d]",
                         cfg->chunk_edge, STRATA_CHUNK_EDGE_MIN, STRATA_CHUNK_EDGE_MAX);
    for (int i = 0; i < 3; i++) {
        if (cfg->dims[i] <= 0)
            return error_set(err, STRATA_ERR_ARG, "dimension %c is %" PRId64 ": must be positive",
                             "xyz"[i], cfg -> dims[i]);
        /* Chunk coordinates must fit the 21 bits per axis of a 63-bit Morton key. */
        uint64_t chunks = chunks_along(cfg->dims[i], bits);
        if (chunks > ((uint64_t)1 << STRATA_MORTON_BITS))
            return error_set(err, STRATA_ERR_OVERFLOW,
                             "dimension %c = %" PRId64 " needs %" PRIu64 " chunks of edge %d, more "
                             "than the %d-bit Morton key allows (%llu); use a larger chunk edge",
                             "xyz"[i], cfg -> dims[i], chunks, cfg -> chunk_edge,
                             3 * STRATA_MORTON_BITS, 1ULL << STRATA_MORTON_BITS);
        /* What the manifest can hold and every later job convert: a normal positive
         * size (strtod refuses subnormals when the manifest is read back), an origin
         * that is 0 or normal, and a far corner origin + dims * size that is finite. */
        const double size = cfg->voxel_size[i], origin = cfg->origin[i];
        if (!(size > 0) || !isnormal(size))
            return error_set(err, STRATA_ERR_ARG,
                             "voxel size along %c is %g: must be a positive normal number "
                             "(at least %g, finite)",
                             "xyz"[i], size, DBL_MIN);
        if (!(origin == 0 || isnormal(origin)))
            return error_set(err, STRATA_ERR_ARG,
                             "origin along %c is %g: must be finite, and 0 or at least %g in "
                             "magnitude",
                             "xyz"[i], origin, DBL_MIN);
        if (!isfinite(origin + (double)cfg->dims[i] * size))
            return error_set(err, STRATA_ERR_OVERFLOW,
                             "extent along %c overflows: origin %g + %" PRId64 " voxels of %g m "
                             "is not a finite number of metres",
                             "xyz"[i], origin, cfg -> dims[i], size);
    }
    for (size_t i = 0; cfg->materials && i < cfg->material_count; i++) {
        const strata_material *m = &cfg->materials[i];
        size_t n = strnlen(m->name, STRATA_MATERIAL_NAME_MAX);
        if (n == 0 || n == STRATA_MATERIAL_NAME_MAX)
            return error_set(err, STRATA_ERR_ARG, "material %u: name empty or longer than %d bytes",
                             m->id, STRATA_MATERIAL_NAME_MAX - 1);
        for (size_t j = 0; j < n; j++)
            if ((unsigned char)m->name[j] < 0x20)
                return error_set(err, STRATA_ERR_ARG, "material %u: control character in name",
                                 m->id);
        for (size_t j = 0; j < i; j++)
            if (cfg->materials[j].id == m->id)
                return error_set(err, STRATA_ERR_ARG, "material %u listed twice", m->id);
    }
    return STRATA_OK;
}

/* The open options (NULL: the defaults, always valid). */
static strata_status check_options(const strata_options *opt, strata_error *err)
{
    if (!opt)
        return STRATA_OK;
    int low, high;
    chunk_zstd_levels(&low, &high);
    if (opt->zstd_level < low || opt->zstd_level > high)
        return error_set(err, STRATA_ERR_ARG,
                         "strata_options.zstd_level %d is outside zstd's range [%d, %d]",
                         opt->zstd_level, low, high);
    if (opt->threads < 0)
        return error_set(err, STRATA_ERR_ARG,
                         "strata_options.threads %d is negative (0: choose automatically)",
                         opt->threads);
    if (opt->defer_index != 0 && opt->defer_index != 1)
        return error_set(err, STRATA_ERR_ARG, "strata_options.defer_index %d is neither 0 nor 1",
                         opt->defer_index);
    return STRATA_OK;
}

/* A digest of what strata_world_create keeps of a configuration. */
static uint32_t config_digest(const manifest *m)
{
    uint32_t crc = checksum_update(0, m->dims, sizeof m->dims);
    crc = checksum_update(crc, &m->chunk_edge, sizeof m->chunk_edge);
    crc = checksum_update(crc, m->voxel_size, sizeof m->voxel_size);
    crc = checksum_update(crc, m->origin, sizeof m->origin);
    for (size_t i = 0; i < m->material_count; i++) {
        const strata_material *t = &m->materials[i];
        crc = checksum_update(crc, &t->id, sizeof t->id);
        crc = checksum_update(crc, t->name, strnlen(t->name, sizeof t->name) + 1);
        crc = checksum_update(crc, t->rgb, sizeof t->rgb);
    }
    return crc;
}

/* Collective, whatever st: every rank must pass the same configuration (rank 0
 * writes the manifest; a rank holding other dims or materials would disagree
 * with it). A rank that failed already (st) takes no part in the comparison. */
static strata_status check_same_config(strata_world *w, strata_status st)
{
    uint32_t digest = st ? 0 : config_digest(&w->committed);
    uint32_t local[2] = {st ? UINT32_MAX : digest, st ? UINT32_MAX : ~digest}, least[2];
    int rc = MPI_Allreduce(local, least, 2, MPI_UINT32_T, MPI_MIN, w->comm);
    if (st)
        return st;
    if (rc != MPI_SUCCESS)
        return error_mpi(&w->error, rc, "comparing the ranks' configurations");
    if (least[0] != digest || least[1] != local[1])
        return error_set(&w->error, STRATA_ERR_ARG,
                         "the ranks passed different configurations to strata_world_create "
                         "(dims, chunk edge, voxel size, origin or materials)");
    return STRATA_OK;
}

static int compare_materials(const void *a, const void *b)
{
    const strata_material *x = a, *y = b;
    return (int)x->id - (int)y->id;
}

static strata_status initial_manifest(const strata_config *cfg, int ranks, manifest *m,
                                      strata_error *err)
{
    memset(m, 0, sizeof *m);
    m->format = STRATA_FORMAT_VERSION;
    m->writer_ranks = ranks;
    m->chunk_edge = cfg->chunk_edge;
    for (int i = 0; i < 3; i++) {
        m->dims[i] = cfg->dims[i];
        m->voxel_size[i] = cfg->voxel_size[i];
        m->origin[i] = cfg->origin[i];
    }
    const strata_material *table = cfg->materials ? cfg->materials : strata_default_materials;
    size_t count = cfg->materials ? cfg->material_count : strata_default_material_count;
    m->split = strata_malloc(((size_t)ranks + 1) * sizeof *m->split);
    m->materials = strata_malloc((count + 1) * sizeof *m->materials);
    m->segments = strata_malloc(sizeof *m->segments);
    if (!m->split || !m->materials || !m->segments) {
        manifest_free(m);
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate the manifest");
    }
    memcpy(m->materials, table, count * sizeof *table);
    m->material_count = count;
    qsort(m->materials, count, sizeof *m->materials, compare_materials);
    /* Material 0 is air: a table that does not name it gets the default's entry. */
    if (!count || m->materials[0].id != 0) {
        memmove(m->materials + 1, m->materials, count * sizeof *m->materials);
        m->materials[0] = strata_default_materials[0];
        m->material_count++;
    }
    uint64_t n[3];
    int bits = log2_exact(cfg->chunk_edge);
    for (int i = 0; i < 3; i++)
        n[i] = chunks_along(cfg->dims[i], bits);
    m->split_ranks = ranks;
    partition_balanced(n, ranks, m->split);
    return STRATA_OK;
}

/* ---- lifetime ------------------------------------------------------------------ */

/* Collective: every rank checks its options and path, then they agree, so that
 * one rank's bad option fails every rank before the communicator is duplicated. */
static strata_status world_alloc(MPI_Comm comm, const char *path, const strata_options *opt,
                                 strata_world **out, strata_error *err)
{
    strata_world *w = strata_calloc(1, sizeof *w);
    strata_status st =
        w ? check_options(opt, err) : error_set(err, STRATA_ERR_NOMEM, "cannot allocate a world");
    if (!st && strlen(path) >= sizeof w->dir)
        st = error_set(err, STRATA_ERR_ARG, "path too long: %s", path);
    st = error_agree(comm, st, err);
    if (st) {
        free(w);
        return st;
    }
    w->lock_fd = w->replaced_lock_fd = w->reindex_fd = w->publish_fd = -1;
    w->comm = MPI_COMM_NULL;
    if (opt)
        w->options = *opt;
    else
        strata_options_init(&w->options);
    strcpy(w->dir, path);
    /* "W/" names W: the sibling paths of a --force create are built from it. */
    for (size_t n = strlen(w->dir); n > 1 && w->dir[n - 1] == '/'; n--)
        w->dir[n - 1] = '\0';
    strcpy(w->final_dir, w->dir);
    int rc = MPI_Comm_dup(comm, &w->comm);
    if (rc != MPI_SUCCESS) {
        free(w);
        return error_mpi(err, rc, "duplicating the world's communicator");
    }
    MPI_Comm_rank(w->comm, &w->rank);
    MPI_Comm_size(w->comm, &w->size);
    *out = w;
    return STRATA_OK;
}

static void unlock_directory(int *fd);

static void world_free(strata_world *w)
{
    if (!w)
        return;
    if (w->index_free)
        w->index_free(w);
    store_close(&w->store);
    chunk_cache_free(&w->owned);
    chunk_cache_free(&w->blind);
    chunk_log_pool_free(&w->blind_logs);
    chunk_cache_free(&w->committed_copies);
    manifest_free(&w->committed);
    free(w->unopened);
    free(w->split);
    free(w->rows);
    free(w->staged);
    route_scratch_free(&w->route);
    free(w->scratch);
    free(w->encode_buffer);
    unlock_directory(&w->lock_fd);
    unlock_directory(&w->replaced_lock_fd);
    world_publish_end(w);
    world_reindex_release(w);
    if (w->comm != MPI_COMM_NULL)
        MPI_Comm_free(&w->comm);
    free(w);
}

/* fcntl locks belong to the process: a second lock of the same file in this
 * process would succeed, and closing any descriptor of that file, even one
 * opened only to look, would release the lock. So the process also remembers
 * which LOCK files it holds (device and inode), and a second writer handle in
 * the same process is refused by path, without opening the file. */
enum { HELD_LOCKS_MAX = 256 };
typedef struct {
    int fd;
    dev_t dev;
    ino_t ino;
} held_lock;
static held_lock held_locks[HELD_LOCKS_MAX];
static size_t held_count;
static pthread_mutex_t held_mutex = PTHREAD_MUTEX_INITIALIZER;

static int held_by_process(const struct stat *sb)
{
    for (size_t i = 0; i < held_count; i++)
        if (held_locks[i].dev == sb->st_dev && held_locks[i].ino == sb->st_ino)
            return 1;
    return 0;
}

/* Release a writer lock taken by lock_directory (the descriptor is closed). */
static void unlock_directory(int *fd)
{
    if (*fd < 0)
        return;
    pthread_mutex_lock(&held_mutex);
    for (size_t i = 0; i < held_count; i++)
        if (held_locks[i].fd == *fd) {
            held_locks[i] = held_locks[--held_count];
            break;
        }
    close(*fd);
    pthread_mutex_unlock(&held_mutex);
    *fd = -1;
}

/* Rank 0: take the writer lock of the world in dir into *out. fcntl locks
 * vanish with the process, so a killed job never leaves the world locked. */
static strata_status lock_file(const char *dir, const char *path, int *out, strata_error *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && held_by_process(&sb))
        return error_set(err, STRATA_ERR_LOCKED,
                         "%s is open for writing already (by another handle in this process)", dir);
    if (held_count == HELD_LOCKS_MAX)
        return error_set(err, STRATA_ERR_ARG, "more than %d worlds open for writing at once",
                         HELD_LOCKS_MAX);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lock) != 0 || fstat(fd, &sb) != 0) {
        int saved = errno;
        char holder[64] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        close(fd);
        if (saved == EACCES || saved == EAGAIN)
            return error_set(err, STRATA_ERR_LOCKED, "%s: writer lock held by %s", dir,
                             holder[0] ? strtok(holder, "\n") : "unknown");
        return error_set(err, STRATA_ERR_IO, "cannot lock %s: %s", path, strerror(saved));
    }
    held_locks[held_count++] = (held_lock){fd, sb.st_dev, sb.st_ino};
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    char text[128];
    int n = snprintf(text, sizeof text, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        /* The lock holds without the note; the note only improves messages. */
    }
    *out = fd;
    return STRATA_OK;
}

static strata_status lock_directory(const char *dir, int *out, strata_error *err)
{
    char path[STRATA_PATH_MAX];
    strata_status st = path_join(path, sizeof path, dir, LOCK_NAME, err);
    if (st)
        return st;
    pthread_mutex_lock(&held_mutex);
    st = lock_file(dir, path, out, err);
    pthread_mutex_unlock(&held_mutex);
    return st;
}

/*
 * The PUBLISH and REINDEX locks are open file description locks (F_OFD_SETLK):
 * unlike the process-wide locks of LOCK they conflict between two handles of
 * one process too, and closing another descriptor of the file keeps them.
 * The kernel drops them with the process, so a killed job never leaves them.
 * wait: block until free (PUBLISH: every holder holds it for one manifest
 * write) or fail with STRATA_ERR_LOCKED at once (REINDEX).
 */
static strata_status ofd_lock(const char *dir, const char *name, int wait, int *out,
                              strata_error *err)
{
    char path[STRATA_PATH_MAX];
    strata_status st = path_join(path, sizeof path, dir, name, err);
    if (st)
        return st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc;
    do
        rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock);
    while (rc != 0 && errno == EINTR && wait);
    if (rc != 0) {
        int saved = errno;
        close(fd);
        if (saved == EACCES || saved == EAGAIN)
            return error_set(err, STRATA_ERR_LOCKED,
                             "%s: a reindex is running already (its lock %s is held)", dir, path);
        return error_set(err, STRATA_ERR_IO, "cannot lock %s: %s", path, strerror(saved));
    }
    *out = fd;
    return STRATA_OK;
}

static void ofd_unlock(int *fd)
{
    if (*fd >= 0)
        close(*fd); /* the lock goes with its open file description */
    *fd = -1;
}

void world_publish_end(strata_world *w)
{
    ofd_unlock(&w->publish_fd);
}

void world_reindex_release(strata_world *w)
{
    ofd_unlock(&w->reindex_fd);
}

/* Rank 0 of a reindex: the directory's identity, to notice a world replaced
 * (create --force) between the snapshot and the publication. */
static strata_status directory_id(const char *dir, uint64_t id[2], strata_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return error_set(err, STRATA_ERR_IO, "cannot stat %s: %s", dir, strerror(errno));
    id[0] = (uint64_t)sb.st_dev, id[1] = (uint64_t)sb.st_ino;
    return STRATA_OK;
}

strata_status world_reindex_claim(strata_world *w, manifest *disk)
{
    memset(disk, 0, sizeof *disk);
    strata_status st = w->reindex_fd >= 0
                           ? STRATA_OK
                           : ofd_lock(w->dir, REINDEX_NAME, 0, &w->reindex_fd, &w->error);
    if (!st)
        st = manifest_read(w->dir, disk, &w->error);
    if (st)
        return st;
    /* No other reindex runs (this one holds REINDEX) and only reindexes add
     * index segments: one the manifest does not name is a dead reindex's. */
    DIR *d = opendir(w->dir);
    if (!d)
        return STRATA_OK; /* leftovers only cost space; the publication names its own file */
    for (struct dirent *e; (e = readdir(d));) {
        unsigned long long serial;
        int at = 0;
        int leftover = strcmp(e->d_name, REINDEX_TMP) == 0;
        if (sscanf(e->d_name, "idx-%20llu.h5%n", &serial, &at) == 1 && at > 0 &&
            (!e->d_name[at] || e->d_name[at] == '.'))
            leftover = e->d_name[at] == '.' ||
                       !manifest_has_segment(disk, STORE_INDEX_SEGMENT | (uint64_t)serial);
        char path[STRATA_PATH_MAX];
        if (leftover && path_join(path, sizeof path, w->dir, e->d_name, NULL) == STRATA_OK)
            unlink(path);
    }
    closedir(d);
    return STRATA_OK;
}

static strata_status take_lock(strata_world *w, strata_error *err)
{
    return lock_directory(w->dir, &w->lock_fd, err);
}

/* Rank 0 of a --force create: what exists at the path may be replaced only if
 * it is a world (or an empty directory), and only while no job writes it: its
 * writer lock is held until the swap. Anything else is refused untouched. */
static strata_status claim_replaced(strata_world *w, strata_error *err)
{
    struct stat sb;
    if (stat(w->final_dir, &sb) != 0)
        return error_set(err, STRATA_ERR_IO, "cannot stat %s: %s", w->final_dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return error_set(err, STRATA_ERR_EXISTS,
                         "%s exists and is not a directory: not replacing it", w->final_dir);
    char manifest_path[STRATA_PATH_MAX];
    strata_status st =
        path_join(manifest_path, sizeof manifest_path, w->final_dir, MANIFEST_NAME, err);
    if (st)
        return st;
    if (access(manifest_path, F_OK) != 0) {
        DIR *d = opendir(w->final_dir);
        if (!d)
            return error_set(err, STRATA_ERR_IO, "cannot read %s: %s", w->final_dir,
                             strerror(errno));
        int empty = 1;
        for (struct dirent *e; empty && (e = readdir(d));)
            empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        closedir(d);
        if (!empty)
            return error_set(err, STRATA_ERR_EXISTS,
                             "%s exists and is not a Strata world (no %s): not replacing it",
                             w->final_dir, MANIFEST_NAME);
    }
    return lock_directory(w->final_dir, &w->replaced_lock_fd, err);
}

/* Rank 0 of a writer: remove what dead commits left behind: segments the manifest
 * does not name (never published, or dropped by a compaction that died before
 * unlinking them) and MANIFEST.tmp, which never became the manifest. */
static void remove_leftovers(strata_world *w)
{
    DIR *d = opendir(w->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long epoch;
        char tail[8];
        int leftover = strcmp(e->d_name, MANIFEST_NAME ".tmp") == 0, at = 0;
        /* MPI-IO's files beside a segment (seg-N.h5.locktest.0, .data.R,
         * .metadata.R of Open MPI's shared-file-pointer components), which a
         * job killed while it had the segment open leaves: no writer is
         * running (this one holds the lock) and readers never make them. */
        if (sscanf(e->d_name, "seg-%20llu.h5.%n", &epoch, &at) == 1 && at > 0 && e->d_name[at])
            leftover = 1;
        else if (sscanf(e->d_name, "seg-%20llu.h%7s", &epoch, tail) == 2 &&
                 strcmp(tail, "5") == 0) {
            /* Above the epoch: a commit that died before its rename. Below it and
             * not named: a compaction that died between its rename and unlinks. */
            leftover = 1;
            for (size_t i = 0; i < w->committed.segment_count && leftover; i++)
                leftover = w->committed.segments[i].epoch != epoch;
        }
        if (leftover) {
            char path[STRATA_PATH_MAX];
            if (path_join(path, sizeof path, w->dir, e->d_name, NULL) == STRATA_OK)
                unlink(path);
        }
    }
    closedir(d);
}

/* The job's key ranges: the committed ones, remapped when the rank count differs. */
static void set_splitters(strata_world *w)
{
    const manifest *m = &w->committed;
    if (m->split_ranks == w->size)
        memcpy(w->split, m->split, ((size_t)w->size + 1) * sizeof *w->split);
    else
        partition_remap(m->split, m->split_ranks, morton_key_end(w->chunks), w->size, w->split);
}

static strata_status setup_geometry(strata_world *w, strata_error *err)
{
    const manifest *m = &w->committed;
    w->edge = m->chunk_edge;
    w->edge_bits = log2_exact(m->chunk_edge);
    w->chunk_voxels = (size_t)w->edge * (size_t)w->edge * (size_t)w->edge;
    for (int i = 0; i < 3; i++)
        w->chunks[i] = chunks_along(m->dims[i], w->edge_bits);
    w->split = strata_malloc(((size_t)w->size + 1) * sizeof *w->split);
    w->scratch = strata_malloc(chunk_scratch_size(w->edge));
    w->encode_buffer = strata_malloc(chunk_encode_bound(w->edge));
    if (!w->split || !w->scratch || !w->encode_buffer)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate world buffers");
    set_splitters(w);
    size_t chunk_bytes = w->chunk_voxels * sizeof(uint16_t);
    chunk_cache_init(&w->owned, chunk_bytes, w->options.cache_bytes);
    chunk_cache_init(&w->blind, chunk_bytes, 0); /* entries hold no voxels */
    w->blind.logs = &w->blind_logs;
    chunk_cache_init(&w->committed_copies, chunk_bytes, w->options.cache_bytes / 8 + chunk_bytes);
    return STRATA_OK;
}

static strata_status open_segments(strata_world *w);
static strata_status share_manifest(strata_world *w);

/* Times a reader starts over when commits keep retiring the segments it was
 * about to open (each retry follows a newer commit). */
#define OPEN_ATTEMPTS 8

/*
 * A reader read the manifest, then a writer's commit or compaction retired a
 * segment it named before the reader opened it. When the manifest has moved on,
 * forget the old one (1: open again; the new commit's segments were all in place
 * before its manifest). Otherwise the failure stands, with its message (0).
 * Collective.
 */
static int manifest_moved(strata_world *w)
{
    const strata_error failure = w->error;
    manifest old = w->committed;
    memset(&w->committed, 0, sizeof w->committed);
    /* A world replaced meanwhile (create --force) is another world: no retry. */
    if (share_manifest(w) != STRATA_OK || w->committed.epoch == old.epoch ||
        w->committed.chunk_edge != old.chunk_edge ||
        memcmp(w->committed.dims, old.dims, sizeof old.dims) != 0) {
        manifest_free(&w->committed);
        w->committed = old;
        w->error = failure;
        return 0;
    }
    manifest_free(&old);
    store_retain(&w->store, NULL, 0);
    free(w->rows);
    w->rows = NULL;
    w->row_count = 0;
    set_splitters(w);
    error_clear(&w->error);
    return 1;
}

/* Everything after the manifest is known: geometry, segments, own rows. Collective. */
static strata_status attach(strata_world *w)
{
    strata_status st = setup_geometry(w, &w->error);
    /* Collective on every rank, whatever st: the ranks of this node, for the
     * number of threads and for the store's one fsync per node. */
    MPI_Comm node = MPI_COMM_NULL;
    if (MPI_Comm_split_type(w->comm, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        node = MPI_COMM_NULL;
    if (node != MPI_COMM_NULL && MPI_Comm_size(node, &w->ranks_per_node) != MPI_SUCCESS)
        w->ranks_per_node = 1;
    if (!st)
        st = store_init(&w->store, w->comm, w->dir, &w->error);
    if (!st && node != MPI_COMM_NULL)
        store_set_node(&w->store, node);
    else if (node != MPI_COMM_NULL)
        MPI_Comm_free(&node);
    st = world_agree(w, st);
    if (st)
        return st;
    st = open_segments(w);
    for (int attempt = 1; st && !w->writable && attempt < OPEN_ATTEMPTS && manifest_moved(w);
         attempt++)
        st = open_segments(w);
    return st;
}

/* STRATA_CHECK: open the segments one by one, noting each that fails in w->unopened
 * (for strata_fsck) instead of failing. Local; fails only when out of memory. */
static strata_status open_segments_checking(strata_world *w, const uint64_t *epochs)
{
    size_t length = 0;
    for (size_t i = 0; i < w->committed.segment_count; i++) {
        strata_status st = store_open_segments(&w->store, &epochs[i], 1, &w->error);
        if (!st)
            continue;
        if (st == STRATA_ERR_NOMEM)
            return st;
        size_t n = strlen(w->error.message);
        char *grown = strata_realloc(w->unopened, length + n + 2);
        if (!grown)
            return WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list unopened segments");
        memcpy(grown + length, w->error.message, n);
        grown[length + n] = '\n';
        grown[length + n + 1] = '\0';
        w->unopened = grown, length += n + 1;
    }
    error_clear(&w->error);
    return STRATA_OK;
}

/* Rank 0: splitters from the data segments' fence samples when they are fine enough
 * (each rank's share at least 2 sample blocks per segment: a boundary is off by at most
 * one block per segment, so the largest rank holds at most 1.5x an even share), else from their
 * whole fences, read for this and freed. */
static strata_status splitters_from_fences(strata_world *w)
{
    store *s = &w->store;
    partition_sample *runs = strata_malloc((s->count + 1) * sizeof *runs);
    uint64_t **whole = strata_calloc(s->count + 1, sizeof *whole);
    size_t n = 0;
    uint64_t rows = 0, block_rows = (uint64_t)STORE_FENCE_ROWS * s->fence_stride;
    strata_status st =
        runs && whole ? STRATA_OK
                      : WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list segments for the splitters");
    for (size_t i = 0; !st && i < s->count; i++)
        if (!store_is_index_segment(s->segments[i].epoch))
            runs[n++] = (partition_sample){s->segments[i].sample, s->segments[i].sample_count,
                                           s->segments[i].row_count},
            rows += s->segments[i].row_count;
    if (!st && rows / (uint64_t)w->size < 2 * block_rows * n) {
        block_rows = STORE_FENCE_ROWS;
        for (size_t i = 0, r = 0; !st && i < s->count; i++)
            if (!store_is_index_segment(s->segments[i].epoch)) {
                st = store_read_fence(s, i, &whole[i], &w->error);
                if (!st)
                    runs[r].keys = whole[i], runs[r].n = (size_t)s->segments[i].fence_count;
                r++;
            }
    }
    int used = 0;
    if (!st)
        st = partition_by_samples(runs, n, block_rows, w->size, w->split, &used, &w->error);
    for (size_t i = 0; whole && i < s->count; i++)
        free(whole[i]);
    free(whole);
    free(runs);
    return st;
}

/*
 * A world written at another rank count: splitters from the stored chunks
 * (the data segments' fences, read by rank 0), so that each rank
 * loads about 1/P of the rows. Remapping the writer's splitters keeps their
 * balance only where it was by chunks over key space: a sparse world (a
 * surface band of the Earth) left a few ranks most rows. Too few rows to
 * balance (partition_by_samples): the remapped splitters stay. Rank 0's are
 * broadcast, so all ranks agree even if a STRATA_CHECK open left a segment
 * out on some. Collective.
 */
static strata_status balance_splitters(strata_world *w)
{
    if (w->committed.split_ranks == w->size)
        return STRATA_OK;
    strata_status st = STRATA_OK;
    if (w->rank == 0)
        st = splitters_from_fences(w);
    st = world_agree(w, st);
    if (!st)
        st = error_mpi(&w->error, MPI_Bcast(w->split, w->size + 1, MPI_UINT64_T, 0, w->comm),
                       "sharing the splitters");
    return world_agree(w, st);
}

/* Open the committed manifest's segments and load the rank's rows. Collective. */
static strata_status open_segments(strata_world *w)
{
    strata_status st = STRATA_OK;
    uint64_t *epochs = strata_malloc((w->committed.segment_count + 1) * sizeof *epochs);
    if (!epochs)
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot list segments");
    st = world_agree(w, st);
    if (st) {
        free(epochs); /* allocated here when another rank failed */
        return st;
    }
    for (size_t i = 0; i < w->committed.segment_count; i++)
        epochs[i] = w->committed.segments[i].epoch;
    if (w->checking)
        st = open_segments_checking(w, epochs);
    else
        st = store_open_segments(&w->store, epochs, w->committed.segment_count, &w->error);
    free(epochs);
    st = world_agree(w, st);
    if (!st)
        st = balance_splitters(w);
    if (!st)
        st = store_load_rows(&w->store, w->split[w->rank], w->split[w->rank + 1], &w->rows,
                             &w->row_count, &w->error);
    return world_agree(w, st);
}

static strata_status read_shared_manifest(strata_world *w, manifest *out);

/* Rank 0 reads the manifest and broadcasts its text; every rank parses it. */
static strata_status share_manifest(strata_world *w)
{
    return read_shared_manifest(w, &w->committed);
}

static strata_status read_shared_manifest(strata_world *w, manifest *out)
{
    char *text = NULL;
    size_t length = 0;
    strata_status st = STRATA_OK;
    if (w->rank == 0) {
        manifest m;
        st = manifest_read(w->dir, &m, &w->error);
        if (!st) {
            st = manifest_format(&m, &text, &length, &w->error);
            manifest_free(&m);
        }
    }
    st = world_agree(w, st);
    uint64_t size = length;
    if (!st)
        st = error_mpi(&w->error, MPI_Bcast(&size, 1, MPI_UINT64_T, 0, w->comm),
                       "sharing the manifest");
    if (!st && w->rank != 0 && !(text = strata_malloc(size ? size : 1)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "cannot allocate the manifest");
    st = world_agree(w, st);
    if (!st)
        st = error_mpi(&w->error, MPI_Bcast(text, (int)size, MPI_CHAR, 0, w->comm),
                       "sharing the manifest");
    if (!st)
        st = manifest_parse(text, size, out, &w->error);
    free(text);
    return world_agree(w, st);
}

strata_status world_publish_begin(strata_world *w, int *changed)
{
    if (changed)
        *changed = 0;
    strata_status st = STRATA_OK;
    uint64_t id[2];
    if (w->rank == 0) {
        st = ofd_lock(w->dir, PUBLISH_NAME, 1, &w->publish_fd, &w->error);
        if (!st && w->index_mode && !directory_id(w->dir, id, &w->error) &&
            (id[0] != w->dir_id[0] || id[1] != w->dir_id[1]))
            st = WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                            "%s was replaced (create --force) since this reindex opened it: "
                            "nothing published",
                            w->dir);
    }
    st = world_agree(w, st);
    manifest latest = {0};
    if (!st)
        st = read_shared_manifest(w, &latest);
    const manifest *m = &w->committed;
    if (!st &&
        (latest.chunk_edge != m->chunk_edge || memcmp(latest.dims, m->dims, sizeof m->dims) != 0 ||
         latest.epoch < m->epoch || (w->writable && latest.epoch != m->epoch)))
        st = WORLD_FAIL(w, STRATA_ERR_CORRUPT,
                        "%s: MANIFEST is at epoch %" PRIu64 " where this job expected %s%" PRIu64
                        ": another job changed the world's data",
                        w->dir, latest.epoch, w->writable ? "" : "at least ", m->epoch);
    st = world_agree(w, st);
    if (!st)
        st = world_catch_up(w, &latest, changed);
    manifest_free(&latest);
    if (st)
        world_publish_end(w);
    return st;
}

/* What open and create start with, after checking their arguments (st): the check
 * agreed (a bad argument on one rank must not leave the others waiting), then the
 * world's memory. Collective. */
static strata_status world_start(MPI_Comm comm, const char *path, const strata_options *opt,
                                 strata_status st, strata_error *err, strata_world **w)
{
    st = error_agree(comm, st, err);
    if (!st)
        st = world_alloc(comm, path, opt, w, err);
    if (!st)
        store_quiet_hdf5();
    return st;
}

strata_status strata_world_open(MPI_Comm comm, const char *path, int mode,
                                const strata_options *opt, strata_world **out)
{
    strata_error err;
    error_clear(&err);
    if (out)
        *out = NULL;
    strata_status st = STRATA_OK;
    if (!path || !out)
        st = error_set(&err, STRATA_ERR_ARG, "strata_world_open: NULL %s", path ? "out" : "path");
    else if (mode != STRATA_READ && mode != STRATA_WRITE && mode != STRATA_CHECK &&
             mode != STRATA_INDEX)
        st = error_set(&err, STRATA_ERR_ARG,
                       "strata_world_open: mode %d is not STRATA_READ, STRATA_WRITE, "
                       "STRATA_CHECK or STRATA_INDEX",
                       mode);
    strata_world *w;
    st = world_start(comm, path, opt, st, &err, &w);
    if (st)
        return st;
    w->writable = mode == STRATA_WRITE;
    w->checking = mode == STRATA_CHECK;
    w->index_mode = mode == STRATA_INDEX;
    if (w->index_mode) {
        /* The REINDEX lock before the snapshot: a reindex that published
         * just before is in it, and leftovers are told from live files. */
        manifest disk;
        if (w->rank == 0) {
            st = world_reindex_claim(w, &disk);
            manifest_free(&disk);
            if (!st)
                st = directory_id(w->dir, w->dir_id, &w->error);
        }
        st = world_agree(w, st);
    }
    if (!st)
        st = share_manifest(w);
    if (!st && w->writable && w->rank == 0) {
        st = take_lock(w, &w->error);
        if (!st)
            remove_leftovers(w);
    }
    st = world_agree(w, st);
    if (!st)
        st = attach(w);
    if (st) {
        error_publish(&w->error);
        world_free(w);
        return st;
    }
    *out = w;
    return STRATA_OK;
}

/* Rank 0: make the directory a world (or a staging directory for --force). */
static strata_status make_directory(strata_world *w, unsigned flags, strata_error *err)
{
    if (mkdir(w->final_dir, 0777) == 0)
        return STRATA_OK;
    if (errno != EEXIST)
        return error_set(err, STRATA_ERR_IO, "cannot create %s: %s", w->final_dir, strerror(errno));
    if (!(flags & STRATA_CREATE_FORCE))
        return error_set(err, STRATA_ERR_EXISTS, "%s exists (use --force to replace it)",
                         w->final_dir);
    strata_status st = claim_replaced(w, err);
    if (st)
        return st;
    /* Build beside it and swap at the first commit: the old world stays whole until then. */
    int n = snprintf(w->dir, sizeof w->dir, "%s.strata-new", w->final_dir);
    if (n < 0 || (size_t)n >= sizeof w->dir)
        return error_set(err, STRATA_ERR_ARG, "path too long: %s", w->final_dir);
    st = remove_tree(w->dir, err);
    if (st)
        return st;
    if (mkdir(w->dir, 0777) != 0)
        return error_set(err, STRATA_ERR_IO, "cannot create %s: %s", w->dir, strerror(errno));
    w->replace_pending = 1;
    return STRATA_OK;
}

strata_status strata_world_create(MPI_Comm comm, const char *path, const strata_config *cfg,
                                  const strata_options *opt, unsigned flags, strata_world **out)
{
    strata_error err;
    error_clear(&err);
    if (out)
        *out = NULL;
    strata_status st = STRATA_OK;
    if (!path || !cfg || !out)
        st = error_set(&err, STRATA_ERR_ARG, "strata_world_create: NULL %s",
                       !path  ? "path"
                       : !cfg ? "configuration"
                              : "out");
    strata_world *w;
    st = world_start(comm, path, opt, st, &err, &w);
    if (st)
        return st;
    w->writable = 1;
    st = check_config(cfg, &w->error);
    if (!st)
        st = initial_manifest(cfg, w->size, &w->committed, &w->error);
    /* Agreed before rank 0 touches the disk: a configuration one rank refused
     * must leave nothing behind. */
    st = world_agree(w, check_same_config(w, st));
    int made = 0; /* rank 0 made w->dir: the new world, or its staging directory */
    if (!st && w->rank == 0) {
        st = make_directory(w, flags, &w->error);
        made = !st;
        if (!st)
            st = take_lock(w, &w->error);
        if (!st)
            st = manifest_write(w->dir, &w->committed, &w->error);
    }
    st = world_agree(w, st);
    /* Every rank learns where rank 0 put the files. */
    int pending = w->replace_pending;
    if (!st)
        st = error_mpi(&w->error, MPI_Bcast(w->dir, sizeof w->dir, MPI_CHAR, 0, w->comm),
                       "sharing the path");
    if (!st)
        st = error_mpi(&w->error, MPI_Bcast(&pending, 1, MPI_INT, 0, w->comm),
                       "sharing whether the world replaces another");
    if (!st) {
        w->replace_pending = pending;
        st = attach(w);
    }
    if (st) {
        /* A failed create leaves nothing: rank 0 removes what it made. */
        strata_error saved = w->error;
        char dir[STRATA_PATH_MAX];
        memcpy(dir, w->dir, sizeof dir);
        world_free(w);
        if (made)
            remove_tree(dir, NULL);
        MPI_Barrier(comm);
        error_publish(&saved);
        return st;
    }
    *out = w;
    return STRATA_OK;
}

strata_status world_finish_replace(strata_world *w, strata_error *err)
{
    char old[STRATA_PATH_MAX];
    int n = snprintf(old, sizeof old, "%s.strata-old", w->final_dir);
    if (n < 0 || (size_t)n >= sizeof old)
        return error_set(err, STRATA_ERR_ARG, "path too long: %s", w->final_dir);
    /* The replaced world's PUBLISH lock around the swap: a reindex of it
     * publishing now sees either the old world whole or the swap done (then
     * its check of the directory's identity refuses to publish). */
    int publish = -1;
    if (ofd_lock(w->final_dir, PUBLISH_NAME, 1, &publish, err) != STRATA_OK)
        publish = -1; /* an empty directory being replaced may refuse; nothing publishes there */
    /* renameat2(RENAME_EXCHANGE) swaps both names in one atomic step. */
    if (syscall(SYS_renameat2, AT_FDCWD, w->dir, AT_FDCWD, w->final_dir, 2 /* RENAME_EXCHANGE */) ==
        0) {
        ofd_unlock(&publish);
        strata_status st = remove_tree(w->dir, err); /* now holds the old world */
        if (st)
            return st;
    } else {
        ofd_unlock(&publish);
        strata_status st = remove_tree(old, err);
        if (st)
            return st;
        if (rename(w->final_dir, old) != 0 || rename(w->dir, w->final_dir) != 0)
            return error_set(err, STRATA_ERR_IO, "cannot replace %s: %s", w->final_dir,
                             strerror(errno));
        remove_tree(old, err);
    }
    /* The replaced world is gone: its lock has nothing left to guard. */
    unlock_directory(&w->replaced_lock_fd);
    char parent[STRATA_PATH_MAX];
    strcpy(parent, w->final_dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        strcpy(parent, slash ? "/" : ".");
    return fsync_directory(parent, err);
}

/* A --force create builds beside the old world, so removing its staging directory
 * keeps the old world; otherwise the directory is ours alone. */
strata_status strata_world_abandon(strata_world *w, strata_status st)
{
    strata_error saved = w->error;
    char dir[STRATA_PATH_MAX];
    memcpy(dir, w->dir, sizeof dir);
    int rank = w->rank;
    MPI_Comm comm = w->comm;
    w->replace_pending = 0; /* close must not publish it */
    if (MPI_Comm_dup(w->comm, &comm) != MPI_SUCCESS)
        comm = MPI_COMM_NULL;
    strata_world_close(w);
    if (rank == 0) {
        strata_error ignored;
        remove_tree(dir, &ignored);
    }
    if (comm != MPI_COMM_NULL) {
        MPI_Barrier(comm);
        MPI_Comm_free(&comm);
    }
    error_publish(&saved);
    return st;
}

strata_status strata_world_close(strata_world *w)
{
    if (!w)
        return STRATA_OK;
    strata_status st = STRATA_OK;
    if (w->replace_pending) {
        /* A forced create never committed: publish the empty world now. */
        if (w->rank == 0)
            st = world_finish_replace(w, &w->error);
        st = world_agree(w, st);
    }
    if (st)
        error_publish(&w->error);
    world_free(w);
    return st;
}

/* ---- configuration and partition queries -------------------------------------- */

strata_status strata_world_config(const strata_world *w, strata_config *cfg)
{
    if (!w || !cfg)
        return world_null_argument(w, __func__, w ? "cfg" : "world");
    strata_config_init(cfg);
    for (int i = 0; i < 3; i++) {
        cfg->dims[i] = w->committed.dims[i];
        cfg->voxel_size[i] = w->committed.voxel_size[i];
        cfg->origin[i] = w->committed.origin[i];
    }
    cfg->chunk_edge = w->committed.chunk_edge;
    cfg->materials = w->committed.materials;
    cfg->material_count = w->committed.material_count;
    return STRATA_OK;
}

strata_status strata_material_get(const strata_world *w, uint16_t id, strata_material *out)
{
    if (!w || !out)
        return world_null_argument(w, __func__, w ? "out" : "world");
    const manifest *m = &w->committed;
    strata_material key = {.id = id};
    const strata_material *found = m->material_count
                                       ? bsearch(&key, m->materials, m->material_count,
                                                 sizeof *m->materials, compare_materials)
                                       : NULL;
    if (found) {
        *out = *found;
        return STRATA_OK;
    }
    memset(out, 0, sizeof *out);
    out->id = id;
    snprintf(out->name, sizeof out->name, "material %u", id);
    /* A stable, well-spread colour from the id (golden-ratio hue walk). */
    uint32_t h = (uint32_t)id * 2654435761u;
    out->rgb[0] = (uint8_t)(64 + (h >> 8) % 192);
    out->rgb[1] = (uint8_t)(64 + (h >> 16) % 192);
    out->rgb[2] = (uint8_t)(64 + (h >> 24) % 192);
    return STRATA_OK;
}

strata_status strata_world_rank(const strata_world *w, int *rank, int *size)
{
    if (!w || !rank || !size)
        return world_null_argument(w, __func__, !w ? "world" : !rank ? "rank" : "size");
    *rank = w->rank;
    *size = w->size;
    return STRATA_OK;
}

strata_status strata_chunk_key(const strata_world *w, int64_t cx, int64_t cy, int64_t cz,
                               uint64_t *key)
{
    if (!w || !key)
        return world_null_argument(w, __func__, w ? "key" : "world");
    if (cx < 0 || cy < 0 || cz < 0 || (uint64_t)cx >= w->chunks[0] ||
        (uint64_t)cy >= w->chunks[1] || (uint64_t)cz >= w->chunks[2])
        return WORLD_FAIL((strata_world *)w, STRATA_ERR_RANGE,
                          "chunk (%" PRId64 ", %" PRId64 ", %" PRId64 ") is outside the world", cx,
                          cy, cz);
    *key = world_key(w, (uint64_t)cx, (uint64_t)cy, (uint64_t)cz);
    return STRATA_OK;
}

strata_status strata_owner(const strata_world *w, int64_t x, int64_t y, int64_t z, int *rank)
{
    if (!w || !rank)
        return world_null_argument(w, __func__, w ? "rank" : "world");
    if (!world_contains(w, x, y, z))
        return WORLD_FAIL((strata_world *)w, STRATA_ERR_RANGE,
                          "voxel (%" PRId64 ", %" PRId64 ", %" PRId64 ") is outside the world", x,
                          y, z);
    uint64_t key = world_key(w, (uint64_t)x >> w->edge_bits, (uint64_t)y >> w->edge_bits,
                             (uint64_t)z >> w->edge_bits);
    *rank = partition_owner(w->split, w->size, key);
    return STRATA_OK;
}

strata_status strata_key_range(const strata_world *w, uint64_t *first, uint64_t *last)
{
    if (!w || !first || !last)
        return world_null_argument(w, __func__, !w ? "world" : !first ? "first" : "last");
    *first = w->split[w->rank];
    *last = w->split[w->rank + 1];
    return STRATA_OK;
}
