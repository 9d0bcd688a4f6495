/* octree.h: the LOD index above chunks and the world's index state.
 *
 * Levels: a node k levels above the chunks (LOD level log2(C) + k) covers 2^k
 * chunks per axis; its key is the Morton key of its chunk coordinates >> k,
 * which is the chunk key >> 3k, so a node covers the contiguous chunk keys
 * [key << 3k, (key + 1) << 3k). Every node keeps an exact sparse histogram of
 * its voxels inside the world, so merges stay exact.
 *
 * Who holds what:
 * - Each rank holds its own chunks' histograms and the nodes its key range
 *   covers whole below the top levels ("local" nodes).
 * - The "global" (replicated) nodes are the nodes that straddle a splitter (at
 *   most ranks - 1 per level) and every node of the top levels (from the lowest
 *   level with at most OCTREE_TOP_NODES nodes up to the single root). Each rank
 *   sends its partial sums of them to rank 0 (MPI_Gatherv), rank 0 merges and
 *   fills the absent chunks as air, and broadcasts the result (MPI_Bcast).
 *   So every rank holds at most (ranks - 1) x levels + 8/7 x OCTREE_TOP_NODES
 *   replicated nodes, whatever the size of the world.
 * Absent nodes (no stored chunk below them) are all air.
 */
#ifndef STRATA_OCTREE_H
#define STRATA_OCTREE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "index/lod.h"
#include "store.h"

struct strata_world;

/** Replicated top levels: the lowest level with at most this many nodes and all above. */
#define OCTREE_TOP_NODES 4096
/** Node levels above chunks: chunk coordinates have 21 bits per axis. */
#define OCTREE_MAX_LEVELS 22
/** Bytes of decoded pyramids kept per rank (a two-way set-associative cache by chunk key). */
#define INDEX_PYRAMID_CACHE_BYTES ((size_t)64 << 20)

typedef struct {
    uint64_t key;
    uint64_t hist; /**< first histogram entry in the set's pool */
    uint64_t dominant_count;
    uint64_t voxels; /**< voxels inside the world */
    uint32_t hist_n;
    uint16_t dominant;
} octree_node;

/** Nodes of one level, ascending key, with their histograms in one pool. */
typedef struct {
    octree_node *nodes;
    size_t count, capacity;
    lod_count *pool;
    size_t pool_n, pool_capacity;
} node_set;

typedef struct {
    uint64_t key, epoch, lod_segment, lod_offset; /* identity of the row it came from */
    uint8_t stale;
    uint64_t used;
    lod_pyramid pyramid;
} pyramid_entry;

/** The world's LOD index state (w->index). */
typedef struct lod_index {
    int built; /**< nodes are built and current */
    int chunk_bits, max_level, top_level;
    node_set chunks; /**< own rows' histograms (level 0) */
    node_set local[OCTREE_MAX_LEVELS + 1];
    node_set global[OCTREE_MAX_LEVELS + 1];
    int32_t *direct[OCTREE_MAX_LEVELS + 1]; /**< top levels: node index by key (-1: absent) */
    uint64_t direct_n[OCTREE_MAX_LEVELS + 1];
    uint64_t *straddle[OCTREE_MAX_LEVELS + 1];
    size_t straddle_n[OCTREE_MAX_LEVELS + 1];
    node_set pending; /**< histograms summarised by the commit in flight */
    lod_work *work;
    uint16_t *voxels;     /**< C^3 scratch for decoding chunks */
    pyramid_entry *cache; /**< cache_slots entries, slot = hash(key) */
    size_t cache_slots;
    uint64_t clock;
    double last_build_seconds;
    /* The last pyramid frame read, decompressed: a pack holds the pyramids of
     * many Morton-adjacent chunks, which a walk or a batch visits in a row. */
    uint8_t *frame;
    size_t frame_size;
    uint64_t frame_segment, frame_offset;
    uint32_t frame_length, frame_crc;
    uint64_t frame_reads; /**< frames read and decompressed (bench_index reports it) */
    uint64_t derived;     /**< pyramids summarised from chunk data for a finer level */
} lod_index;

/* ---- node sets ----------------------------------------------------------------- */

/** Append a node (keys must ascend) with its histogram; fills the summary. */
int node_set_append(node_set *s, uint64_t key, const lod_count *hist, size_t n, uint64_t voxels);
/** Sort a set's nodes by key (unique keys: appended out of order). */
void node_set_sort(node_set *s);
/** The node with key, or NULL. */
const octree_node *node_set_find(const node_set *s, uint64_t key);
void node_set_free(node_set *s);
static inline const lod_count *node_hist(const node_set *s, const octree_node *n)
{
    return s->pool + n->hist;
}

/* ---- the index ------------------------------------------------------------------- */

/** The world's index object, allocated (not built) on first use. Local. */
strata_status index_get(struct strata_world *w, lod_index **out);
/** Forget histograms kept by an unfinished write (call before summarising). Local. */
void index_begin_write(struct strata_world *w);
/** Bytes x holds: own (chunk histograms, local nodes, the pending set),
 *  replicated (global nodes, direct tables, straddle lists) and cache (decoded
 *  pyramids, the last frame, the voxel scratch). Local. */
void index_memory(const lod_index *x, uint64_t *own, uint64_t *replicated, uint64_t *cache);
/** Free w->index. */
void index_free(struct strata_world *w);
/** Agree on st (this rank's status so far) and, if any rank needs the index (need)
 *  and it is not current on all, build it (chunk histograms and nodes) on all: one
 *  MPI_Allreduce when nothing is to be built, instead of an agreement and a check
 *  (collectives dominate at many ranks). Every rank takes the same path whatever
 *  its st and need. Collective; returns the agreed status. */
strata_status index_ensure(struct strata_world *w, strata_status st, int need);
/** Forget the nodes (rebuilt by the next index_ensure). Local, but call it on every rank. */
void index_invalidate(struct strata_world *w);
/** Rebuild the node levels from the chunk histograms (local + global merge). Collective. */
strata_status octree_build(struct strata_world *w, lod_index *x);
/** A replicated node (O(1) on the top levels), or NULL when absent (all air). */
const octree_node *octree_global_find(const lod_index *x, int k, uint64_t key);
/** 1 when the node (level k >= 1, key) is replicated on every rank. */
int octree_is_global(const lod_index *x, int k, uint64_t key);
/**
 * Order-independent hash of every node and chunk histogram of the index, the
 * same whatever the rank count. Collective.
 */
strata_status octree_hash(struct strata_world *w, uint64_t *hash);

/**
 * Summarise one chunk at commit or reindex: fills row->dominant,
 * dominant_count, distinct and clears STORE_ROW_INDEX_STALE; when the chunk has
 * more than one material inside the world, *pyramid and *length are its pyramid
 * payload (held by the index until the next call), else *length is 0. When the
 * index is built, the histogram is kept for index_after_write. Local.
 * @param[in] voxels C^3 values, or NULL for a uniform chunk of `value`
 */
strata_status index_summarize_chunk(struct strata_world *w, const uint16_t *voxels, uint16_t value,
                                    store_row *row, const uint8_t **pyramid, size_t *length);
/**
 * index_summarize_chunk for a worker thread: scratch wk and histogram set
 * `pending` (NULL: not kept) belong to the calling thread, failures go to err;
 * w is only read. Call index_get first. The histogram is appended to pending.
 * @param[in] palette the chunk's palette form (codec.h), or NULL; when
 *            index_palette_serves it, the pyramid is built from it (voxels may
 *            then be NULL), else from the voxels
 */
strata_status index_summarize_chunk_in(const struct strata_world *w, lod_work *wk,
                                       node_set *pending, const uint16_t *voxels,
                                       const chunk_palette *palette, uint16_t value, store_row *row,
                                       const uint8_t **pyramid, size_t *length, strata_error *err);
/** A chunk given as its stored image and the changes made since (index_summarize_changes). */
typedef struct {
    const chunk_palette *base; /**< the stored image's palette form, or NULL: uniform `value` */
    uint16_t value;
    const uint8_t *chain; /**< the image's delta chain as delta_chain_read gives it, or NULL */
    uint64_t chain_bytes;
    int depth;           /**< its records */
    uint8_t *scratch;    /**< chunk_scratch_size bytes, for the chain's records */
    const uint64_t *log; /**< the changes since, in order (delta_log_entry values) */
    size_t log_count;
} index_change;
/**
 * index_summarize_chunk_in for a chunk given as its stored image and changes (a
 * delta commit: no voxels decoded; lod_lanes_begin): the image, its chain's records
 * oldest first, then the log. *served = 0 when that path cannot serve the chunk (more
 * than 16 materials, a chunk cut by the world's edge, edge 64 and up, a version-1
 * record): nothing is written, the caller summarises the voxels.
 * Thread-safe as index_summarize_chunk_in.
 */
strata_status index_summarize_changes(const struct strata_world *w, lod_work *wk, node_set *pending,
                                      const index_change *c, store_row *row,
                                      const uint8_t **pyramid, size_t *length, int *served,
                                      strata_error *err);
/** Whether the pyramid of chunk `key` with a palette of `count` ids is built
 *  from its palette form (a whole chunk of at most 16 ids:
 *  lod_can_summarize_palette) rather than from voxels. Local. */
int index_palette_serves(const struct strata_world *w, const lod_work *wk, uint64_t key, int count);
/**
 * Merge per-thread histogram sets (each ascending) into the index's pending
 * set in key order, then free them. Main thread. Local.
 */
strata_status index_pending_merge(struct strata_world *w, node_set *sets, int n);
/**
 * After rows were written (commit or reindex): bring the built index up to date
 * with the kept histograms, or forget it when `stale` (deferred commits).
 * Failures only forget the index (it is rebuilt on next use). Collective.
 */
void index_after_write(struct strata_world *w, int stale);
/** Rows flagged STORE_ROW_INDEX_STALE among n rows. */
uint64_t index_count_stale(const store_row *rows, size_t n);

/**
 * The decoded pyramid of a committed chunk row with more than one material,
 * holding at least levels need..log2(C) (through the cache). The stored
 * pyramid serves when it keeps level `need` (it reads no voxel data); finer
 * levels, and stale rows, are summarised from the chunk's data. Local.
 * @param[out] out valid until the next call
 */
strata_status index_row_pyramid(struct strata_world *w, const store_row *row, int need,
                                const lod_pyramid **out);
/**
 * 1 when p, returned by index_row_pyramid for chunk `key` with cells `mode`,
 * is still held by the cache with at least levels need..log2(C) (no call
 * since has evicted it). Local.
 */
static inline int index_pyramid_held(const lod_pyramid *p, const uint16_t *mode, uint64_t key,
                                     int need)
{
    const pyramid_entry *e =
        (const pyramid_entry *)(const void *)((const char *)p - offsetof(pyramid_entry, pyramid));
    return e->pyramid.mode == mode && e->key == key && e->pyramid.lowest <= need;
}
/** 1 when the row holds a single material inside the world (*material): no pyramid. */
int index_row_single(const store_row *row, uint16_t *material);

#endif
