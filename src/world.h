/* world.h: the world object shared by the library's modules (not public). */
#ifndef STRATA_WORLD_H
#define STRATA_WORLD_H

#include <stdint.h>

#include "chunk.h"
#include "error.h"
#include "fsutil.h"
#include "manifest.h"
#include "morton.h"
#include "router.h"
#include "store.h"
#include "strata.h"

struct strata_world {
    MPI_Comm comm;
    int rank, size;
    int ranks_per_node;              /* ranks sharing this node (MPI_COMM_TYPE_SHARED) */
    char dir[STRATA_PATH_MAX];       /* where the files are now */
    char final_dir[STRATA_PATH_MAX]; /* where a --force create lands at first commit */
    int replace_pending;
    int writable;
    int checking;       /* opened with STRATA_CHECK: unopenable segments are left out */
    char *unopened;     /* STRATA_CHECK: one line per segment left out, for strata_fsck */
    int index_mode;     /* opened with STRATA_INDEX: a reindex beside the writer */
    int reindex_fd;     /* rank 0: the REINDEX lock (one reindex at a time), or -1 */
    int publish_fd;     /* rank 0: the PUBLISH lock while publishing, or -1 */
    uint64_t dir_id[2]; /* rank 0: device and inode of the world directory at open */
    int lock_fd;
    int replaced_lock_fd; /* a --force create: the writer lock of the world it replaces */
    strata_options options;
    manifest committed; /* the manifest of the last commit */
    int manifest_dirty; /* splitters or index state changed since */
    int edge, edge_bits;
    size_t chunk_voxels;
    uint64_t chunks[3]; /* chunks per axis */
    uint64_t *split;    /* size + 1 splitters */
    store store;
    store_row *rows; /* own range, committed, ascending key */
    size_t row_count;
    chunk_cache owned; /* own chunks: dirty ones pinned, clean ones LRU */
    /* Blind writes: own chunks changed only by unconditional updates while not resident.
     * Each entry (chunk.blind = 1, no voxels) holds in its log the changes made over
     * the chunk's committed image, in order; the chunk is decoded only when something
     * reads it (world_own_chunk merges the log) or a commit needs its voxels. A key is
     * never in both caches. */
    chunk_cache blind;
    chunk_log_pool blind_logs;    /* the blind entries' logs (kept between commits) */
    chunk_cache committed_copies; /* committed chunks read by strata_read_voxel */
    route_record *staged;
    route_scratch route; /* routing buffers kept between batches */
    size_t staged_count, staged_capacity;
    int staged_bad;
    int64_t bad_voxel[3];
    void *scratch; /* codec scratch */
    uint8_t *encode_buffer;
    struct lod_index *index; /* the LOD index (index/octree.h), built on first use */
    /* Frees w->index: set by the index when it allocates itself, so that the world,
     * which the index reads, never calls into the index (docs/architecture.md). */
    void (*index_free)(struct strata_world *w);
    strata_error error;
};

/* The three below are inline: they run on every staged update and voxel read. */

/** The key of chunk coordinates. */
static inline uint64_t world_key(const strata_world *w, uint64_t cx, uint64_t cy, uint64_t cz)
{
    (void)w;
    return morton_encode3((uint32_t)cx, (uint32_t)cy, (uint32_t)cz);
}
/** 1 when the voxel lies inside the world. */
static inline int world_contains(const strata_world *w, int64_t x, int64_t y, int64_t z)
{
    const int64_t *d = w->committed.dims;
    return x >= 0 && y >= 0 && z >= 0 && x < d[0] && y < d[1] && z < d[2];
}
/** 1 when this rank owns key. */
static inline int world_owns(const strata_world *w, uint64_t key)
{
    return key >= w->split[w->rank] && key < w->split[w->rank + 1];
}
/** Prefix err's message with "what: chunk key K (at voxel x,y,z): " and return st.
 *  Safe on worker threads (writes only err). */
strata_status world_chunk_failed(const strata_world *w, const char *what, uint64_t key,
                                 strata_status st, strata_error *err);
/** Voxel box of the chunk with this key, clipped to the world. */
void world_chunk_bounds(const strata_world *w, uint64_t key, int64_t bounds[6]);
/** Committed row of an own key (NULL when the chunk was never stored). */
const store_row *world_own_row(const strata_world *w, uint64_t key);
/**
 * Own chunk for key, loading it from the store (or as air) if not resident, with
 * its blind writes merged (it is then dirty). Local. The chunk stays resident
 * until strata_world_evict runs.
 */
strata_status world_own_chunk(strata_world *w, uint64_t key, chunk **out);
/**
 * Room for the `more` unconditional records `run` (all of key) as blind writes to an
 * own chunk that is not resident: *out is its entry in w->blind (created if needed),
 * or NULL when its log would pass delta_log_max or the chunk is stored uniform (or
 * never was: air) and no record of the run changes its value: the caller then loads
 * the chunk with world_own_chunk. Log the writes with chunk_log. Local.
 */
strata_status world_blind_reserve(strata_world *w, uint64_t key, const route_record *run,
                                  size_t more, chunk **out);
/** 1 when an own key has blind writes pending. */
static inline int world_has_blind(strata_world *w, uint64_t key)
{
    return w->blind.count && chunk_cache_find(&w->blind, key) != NULL;
}
/** Bytes the blind writes' logs hold. */
uint64_t world_blind_bytes(const strata_world *w);
/**
 * The committed chunk of key (any rank's): an own clean resident chunk directly,
 * others through the committed-copy cache, decoded from the newest row in the
 * store. Local. *out stays valid until the next call that loads a chunk.
 */
strata_status world_committed_chunk(strata_world *w, uint64_t key, chunk **out);
/** A chunk of the committed state into cache c, decoded from its row (NULL: never
 *  stored, air). Local. */
strata_status world_load_committed(strata_world *w, chunk_cache *c, uint64_t key,
                                   const store_row *row, chunk **out);
/** Decode a committed chunk described by row into voxels (C^3): its base image, then its
 *  delta chain applied oldest record first. Local. */
strata_status world_decode_row(strata_world *w, const store_row *row, uint16_t *voxels);
/** Apply a row's delta chain (read and checked) to its decoded base image. Local. */
strata_status world_merge_chain(strata_world *w, const store_row *row, uint16_t *voxels);
/** Trim the clean-chunk caches to their budgets. Local. */
void world_evict(strata_world *w);
/** Rank 0, at the first commit of a --force create (or at close when it never
 *  committed): swap the new world in for the one it replaces (renameat2 exchange)
 *  and remove the old one. Local. */
strata_status world_finish_replace(strata_world *w, strata_error *err);
/** Agree on a collective status and keep the message in w->error. */
strata_status world_agree(strata_world *w, strata_status local);
/** Fail with a message in w->error. */
#define WORLD_FAIL(w, status, ...) error_set(&(w)->error, (status), __VA_ARGS__)
/**
 * A NULL pointer argument of the public call fn: STRATA_ERR_ARG with the message
 * "fn: NULL what", in w's slot and the thread's (only the thread's when w is NULL:
 * there is no world). Local: a collective caller passes the status on to its first
 * agreement, where the other ranks are, and returns at once only for a NULL
 * world (no communicator to agree over).
 */
strata_status world_null_argument(const strata_world *w, const char *fn, const char *what);
/** Why w takes no write now: STRATA_ERR_READ_ONLY (not open for writing) or
 *  STRATA_ERR_INTERRUPTED (a signal is pending; the message says it stopped "before"
 *  the step named, e.g. "a batch"), else STRATA_OK. Local: the caller agrees on it. */
strata_status world_write_refused(strata_world *w, const char *before);

/** A reindex's next manifest (w->committed plus its index segment `own`, last):
 *  leave out the index segments no live row takes its summary from any more
 *  (a later reindex or commit superseded every row). Collective. */
strata_status world_drop_unused_index(strata_world *w, manifest *next, uint64_t own);
/**
 * Start a publication: rank 0 takes the PUBLISH lock (blocking: every holder
 * holds it for one manifest write), every rank learns the current MANIFEST, and
 * the world catches up with it (world_catch_up). A writer refuses a manifest
 * whose data epoch is not its own. On failure the lock is released.
 * Collective. `changed` (may be NULL): 1 when the caught-up state differs.
 */
strata_status world_publish_begin(strata_world *w, int *changed);
/** Release the PUBLISH lock if held (rank 0; any rank may call). Local. */
void world_publish_end(strata_world *w);
/**
 * Bring w up to `latest` (a later manifest of the same world): open the
 * segments it adds, merge the rows of new data segments into the rank's rows,
 * apply new index segments (store_apply_index), close the segments it no
 * longer names and make it w->committed (latest is taken over). Collective.
 * *changed: 1 on every rank when any rank's rows changed.
 */
strata_status world_catch_up(strata_world *w, manifest *latest, int *changed);
/** Rank 0: take the REINDEX lock (unless held) and read the MANIFEST into
 *  *disk; remove what a dead reindex left (idx segments `disk` does not name,
 *  MANIFEST.reindex.tmp). Local. */
strata_status world_reindex_claim(strata_world *w, manifest *disk);
/** Release the REINDEX lock taken by a reindex of a world open for writing. */
void world_reindex_release(strata_world *w);
/** Merge rows (n, ascending key) into the rank's sorted table, replacing equal keys. */
strata_status world_merge_rows(strata_world *w, const store_row *fresh, size_t n);
#include <signal.h>
/** Set by the SIGTERM/SIGINT handler; collective calls then stop at their start. */
extern volatile sig_atomic_t strata_signal_pending;
/** Default material table. */
extern const strata_material strata_default_materials[];
extern const size_t strata_default_material_count;

#endif
