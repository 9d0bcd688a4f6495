/*
 * strata.h: the whole public API of libstrata.
 *
 * Strata stores a voxel material world (one uint16 material id per voxel) across
 * the ranks of an MPI job. The world is cut into cubic chunks of edge C; chunk
 * keys are 3-D Morton codes of chunk coordinates and rank r owns the keys in
 * [split[r], split[r+1]). Updates are staged anywhere and routed to owners by
 * collective flushes; a collective commit makes them durable and atomic.
 *
 * Conventions
 * - Every function returns a strata_status. On failure, strata_last_error(w)
 *   (or strata_last_error(NULL) when no world exists yet) names what was wrong.
 *   A NULL world, a NULL output, or a NULL array with a count above zero is
 *   STRATA_ERR_ARG naming the argument (agreed on every rank in collective calls,
 *   except a NULL world, which has no communicator to agree on).
 * - "Collective": every rank of the world's communicator must call the function,
 *   in the same order. An error on one rank is agreed on by all: every rank
 *   returns the same status and message, and nothing hangs.
 * - Voxel coordinates are int64 in [0, dims). Arrays are C order [z][y][x].
 * - Material 0 is air; a voxel never written reads as air.
 * - Threads: calls on one world must not overlap; make them from one thread at
 *   a time (the thread that calls MPI, for collective ones). "Not collective"
 *   means no other rank takes part, not that the call is thread-safe: reads
 *   share the world's chunk cache and scratch. Separate worlds may be used from
 *   separate threads if MPI was initialised with MPI_THREAD_MULTIPLE. The
 *   library runs its own worker threads (strata_options.threads) without MPI.
 * - Writers: one job (one world handle) at a time writes a world; a second
 *   writer, in another job or in the same process, gets STRATA_ERR_LOCKED.
 */
#ifndef STRATA_H
#define STRATA_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
/** On-disk format version written by this library; newer worlds are refused. */
#define STRATA_FORMAT_VERSION 4

#define STRATA_CHUNK_EDGE_MIN 16
#define STRATA_CHUNK_EDGE_MAX 256
/** Default chunk edge, chosen by measurement (docs/benchmarks.md). */
#define STRATA_CHUNK_EDGE_DEFAULT 32
/** Chunk coordinates must fit this many bits per axis (3 x 21 = 63-bit keys). */
#define STRATA_MORTON_BITS       21
#define STRATA_MATERIAL_NAME_MAX 48
#define STRATA_ERROR_MAX         512
/** Default byte budget of the clean-chunk cache, per rank. */
#define STRATA_CACHE_BYTES_DEFAULT ((size_t)1 << 30)

typedef enum {
    STRATA_OK = 0,
    STRATA_ERR_ARG,         /**< invalid argument or option */
    STRATA_ERR_RANGE,       /**< a coordinate outside the world */
    STRATA_ERR_NOMEM,       /**< an allocation failed */
    STRATA_ERR_IO,          /**< a system call on a file failed */
    STRATA_ERR_MPI,         /**< an MPI call failed */
    STRATA_ERR_HDF5,        /**< an HDF5 call failed */
    STRATA_ERR_FORMAT,      /**< not a world, or a malformed file */
    STRATA_ERR_CORRUPT,     /**< a checksum mismatch or inconsistent data */
    STRATA_ERR_VERSION,     /**< a world written by a newer format version */
    STRATA_ERR_EXISTS,      /**< the world exists (use STRATA_CREATE_FORCE) */
    STRATA_ERR_NOT_FOUND,   /**< no such world or file */
    STRATA_ERR_LOCKED,      /**< another job has the world open for writing */
    STRATA_ERR_READ_ONLY,   /**< a write to a world opened read-only */
    STRATA_ERR_PARSE,       /**< malformed input file (line or record named) */
    STRATA_ERR_OVERFLOW,    /**< a size that does not fit (dims, keys, bytes) */
    STRATA_ERR_INTERRUPTED, /**< stopped by a signal at a batch boundary */
    /** Committed, but not known durable: a step after the commit point (the
     *  fsync of the world's directory after the manifest's rename) failed. New
     *  readers see the commit and the handle continues from it; a power loss
     *  may still take the world back to the commit before. */
    STRATA_ERR_UNSYNCED,
    STRATA_ERR_STATUS_COUNT
} strata_status;

typedef struct strata_world strata_world;

typedef struct {
    uint16_t id;
    char name[STRATA_MATERIAL_NAME_MAX];
    uint8_t rgb[3];
} strata_material;

/** World configuration for strata_world_create. Initialise with strata_config_init. */
typedef struct {
    int64_t dims[3];      /**< voxels along x, y, z */
    int32_t chunk_edge;   /**< power of two in [16, 256] */
    double voxel_size[3]; /**< metres per voxel along x, y, z */
    double origin[3];     /**< world position of voxel corner (0,0,0), metres */
    /** Table, may be NULL (the defaults). Material 0 is air: a table without
     *  id 0 gets the default's air entry. Ids missing from it read as "material N". */
    const strata_material *materials;
    size_t material_count;
} strata_config;

/** Open options (strata_world_open / create). Initialise with strata_options_init. */
typedef struct {
    size_t cache_bytes; /**< clean-chunk cache budget per rank */
    int defer_index;    /**< 1: commits leave the index stale until reindex (0 or 1) */
    int zstd_level;     /**< compression level of chunk payloads (zstd's range) */
    int threads;        /**< threads per rank encoding/summarising chunks (0: env
                             STRATA_THREADS, else the cores the rank is bound to, or
                             when unbound online CPUs / ranks on the node) */
} strata_options;

/** Open modes. STRATA_CHECK reads like STRATA_READ but, for strata_fsck, leaves out a
 *  live segment that cannot be opened (missing, unreadable) instead of failing the
 *  open: strata_fsck then lists it among the problems and checks everything else.
 *  STRATA_INDEX: index maintenance beside a writer (strata_reindex only): reads
 *  the last commit like STRATA_READ, takes no writer lock, and publishes rebuilt
 *  index entries under the short publish lock (docs/architecture.md); one
 *  reindex at a time (a second one gets STRATA_ERR_LOCKED). */
enum { STRATA_READ = 0, STRATA_WRITE = 1, STRATA_CHECK = 2, STRATA_INDEX = 3 };
enum { STRATA_CREATE_FORCE = 1 };

/** One voxel update; has_expected makes it conditional on the running value. */
typedef struct {
    int64_t x, y, z;
    uint16_t material;
    uint16_t expected;
    uint8_t has_expected;
} strata_update;

/** Totals over all ranks of one collective batch. */
typedef struct {
    uint64_t submitted; /**< updates handed in */
    uint64_t applied;   /**< updates that changed or set a voxel */
    uint64_t skipped;   /**< conditional updates whose expected material differed */
    double seconds;     /**< wall time of the collective call */
} strata_batch_stats;

typedef struct {
    uint64_t epoch;          /**< the commit's epoch (0 = nothing committed yet) */
    uint64_t chunks_written; /**< chunks stored by this commit, all ranks */
    uint64_t raw_bytes;      /**< their uncompressed size */
    uint64_t stored_bytes;   /**< their stored size */
    double seconds;          /**< wall time of the collective call */
    double flush_seconds;    /**< this rank: routing and applying staged updates */
    double encode_seconds;   /**< this rank: encoding its dirty chunks (and their index) */
    double write_seconds;    /**< this rank: segment write, fsync and manifest */
    uint64_t delta_chunks;   /**< of chunks_written, those written as delta records */
    uint64_t delta_bytes;    /**< bytes of those delta records (in stored_bytes) */
    uint64_t delta_voxels;   /**< changed voxels those records hold */
} strata_commit_stats;

enum { STRATA_CHUNK_ABSENT = 0, STRATA_CHUNK_UNIFORM = 1, STRATA_CHUNK_DENSE = 2 };

/** What the store knows of one chunk (the seed's ChunkMetadata). */
typedef struct {
    uint64_t key;           /**< Morton key */
    int64_t bounds[6];      /**< voxel box x0,y0,z0,x1,y1,z1 clipped to the world */
    int kind;               /**< STRATA_CHUNK_* */
    uint16_t uniform_value; /**< material when kind is UNIFORM (air when ABSENT) */
    uint64_t stored_bytes;  /**< payload bytes on disk (0 for uniform/absent) */
    uint64_t epoch;         /**< commit that last changed it (0 if never) */
    int owner;              /**< rank owning it */
} strata_chunk_meta;

/** Summary of a world for `strata info`. Totals are over all ranks. */
typedef struct {
    int64_t dims[3];
    int32_t chunk_edge;
    double voxel_size[3];
    double origin[3];
    uint64_t epoch;          /**< last commit */
    int writer_ranks;        /**< ranks of the job that made the last commit */
    uint64_t commits;        /**< commits since creation */
    uint64_t segments;       /**< live segment files */
    uint64_t chunks_uniform; /**< stored uniform chunks */
    uint64_t chunks_dense;   /**< stored dense chunks */
    uint64_t stored_bytes;   /**< bytes of live segment files */
    uint64_t payload_bytes;  /**< bytes of live chunk payloads */
    uint64_t chunks_total;   /**< chunks the world's dims cover (absent ones too) */
    uint64_t metadata_bytes; /**< largest per-rank metadata footprint */
    uint64_t cache_bytes;    /**< resident clean chunk bytes, all ranks */
    uint64_t dirty_bytes;    /**< resident dirty chunk bytes and blind-write logs, all ranks */
    uint64_t reserve_bytes;  /**< memory kept for reuse (free chunk buffers in slabs,
                                  routing buffers), all ranks; freed at close */
    int ranks;               /**< ranks of this job */
    uint64_t deltas;         /**< delta records pending (not folded by compaction), all ranks */
    uint64_t delta_bytes;    /**< their bytes */
    uint64_t delta_chunks;   /**< chunks carrying a delta chain */
    int delta_depth_max;     /**< the deepest chain */
    uint64_t blind_chunks;   /**< chunks with blind writes (unconditional updates to chunks
                                  not resident) logged, not yet read or committed, all ranks */
} strata_info;

/** Bytes one rank's world holds, by what they are for (strata_world_memory).
 *  "Replicated" parts are held alike by every rank. */
typedef struct {
    uint64_t rows;             /**< the rank's own chunk-table rows */
    uint64_t segments;         /**< open segments (replicated: every rank opens every live one):
                                    per-segment state and a sample of its fence, 8 bytes per
                                    1024 x 1024 rows, and a few fence blocks cached (64 KB) */
    uint64_t row_blocks;       /**< blocks of other ranks' rows cached for lookups */
    uint64_t manifest;         /**< the committed manifest's tables and the job's splitters
                                    (replicated) */
    uint64_t chunk_cache;      /**< resident chunks: hash slots, chunk records, slab bytes
                                    (own chunks and committed copies) */
    uint64_t routing;          /**< staging array and routing buffers kept between batches */
    uint64_t index_own;        /**< LOD index: own chunks' histograms and local nodes */
    uint64_t index_replicated; /**< LOD index: nodes straddling a splitter and the top levels */
    uint64_t index_cache;      /**< LOD index: decoded pyramids, the last frame, scratch */
    uint64_t fixed;            /**< the world object, codec scratch, encode buffer */
    uint64_t total;            /**< the sum of the above */
} strata_memory;

/* ---- errors ---------------------------------------------------------------- */

/** Name of a status code. Never NULL. */
const char *strata_strerror(strata_status status);
/** Message of the last failure on world w, or of this thread when w is NULL. The
 *  text stays valid until the next failing call on w (or on this thread) and, for
 *  w, until strata_world_close. */
const char *strata_last_error(const strata_world *w);

/* ---- configuration and lifetime ------------------------------------------- */

/** Fill cfg with defaults: dims 0, default chunk edge, 1 m voxels, origin 0. */
void strata_config_init(strata_config *cfg);
/** Fill opt with defaults (1 GiB cache, index kept up to date, zstd level 3). */
void strata_options_init(strata_options *opt);

/**
 * Create a world directory at path. Collective over comm.
 * @param[in] comm  communicator (duplicated internally)
 * @param[in] path  directory to create; refused if it exists unless flags has
 *                  STRATA_CREATE_FORCE, which replaces it atomically at the first commit
 *                  (or at close); only a world or an empty directory is replaced
 *                  (anything else: STRATA_ERR_EXISTS), and not while another job
 *                  writes it (STRATA_ERR_LOCKED: its writer lock is held until the swap)
 * @param[in] cfg   dims, chunk edge, voxel size, origin, materials
 * @param[in] opt   options, or NULL for defaults
 * @param[in] flags 0 or STRATA_CREATE_FORCE
 * @param[out] out  the world, opened for writing; NULL on failure
 */
strata_status strata_world_create(MPI_Comm comm, const char *path, const strata_config *cfg,
                                  const strata_options *opt, unsigned flags, strata_world **out);

/**
 * Open an existing world at its last commit. Collective over comm; a world
 * written by N ranks opens with any number of ranks.
 * @param[in] mode STRATA_READ, STRATA_WRITE (one writer job at a time: a second
 *                 writer gets STRATA_ERR_LOCKED), STRATA_CHECK (for strata_fsck) or
 *                 STRATA_INDEX (a reindex, which may run beside the writer; one at a time)
 */
strata_status strata_world_open(MPI_Comm comm, const char *path, int mode,
                                const strata_options *opt, strata_world **out);

/** Close and free. Collective. Staged or flushed updates not committed are discarded. */
strata_status strata_world_close(strata_world *w);

/** Close, free and remove a world this job created (strata_world_create) whose first
 *  commit failed, so that nothing of it stays visible: a --force create's staging
 *  directory goes and the world it would have replaced stays. Collective. Returns st. */
strata_status strata_world_abandon(strata_world *w, strata_status st);

/** The world's configuration (materials point into the world). Local. */
strata_status strata_world_config(const strata_world *w, strata_config *cfg);
/** Look up a material's name and colour (generated for ids not in the table). Local. */
strata_status strata_material_get(const strata_world *w, uint16_t id, strata_material *out);
/** Gather a summary of the world. Collective. */
strata_status strata_world_info(strata_world *w, strata_info *info);
/** The bytes this rank's world holds, by category (allocations of the library
 *  only: HDF5's, MPI's and zstd's own are not counted). Local. */
strata_status strata_world_memory(strata_world *w, strata_memory *out);
/** This rank and the communicator size. Local. */
strata_status strata_world_rank(const strata_world *w, int *rank, int *size);

/* ---- partition ------------------------------------------------------------- */

/** Morton key of chunk coordinates (each < 2^21). Local. */
strata_status strata_chunk_key(const strata_world *w, int64_t cx, int64_t cy, int64_t cz,
                               uint64_t *key);
/** Rank owning the chunk that contains voxel (x, y, z). Local. */
strata_status strata_owner(const strata_world *w, int64_t x, int64_t y, int64_t z, int *rank);
/** This rank's key range [*first, *last). Local. */
strata_status strata_key_range(const strata_world *w, uint64_t *first, uint64_t *last);

enum { STRATA_WEIGHT_COUNT = 0, STRATA_WEIGHT_BYTES = 1, STRATA_WEIGHT_CALLBACK = 2 };
/** Weight of a chunk for rebalancing (for instance its update load). */
typedef double (*strata_weight_fn)(uint64_t key, void *ctx);

/**
 * Compute new splitters so that every rank holds an equal share of the weight,
 * move chunk ownership accordingly and record the splitters at the next commit.
 * Collective; staged updates must be flushed and committed first.
 * @param[in] by  STRATA_WEIGHT_COUNT (stored chunks), _BYTES (stored bytes) or _CALLBACK
 */
strata_status strata_rebalance(strata_world *w, int by, strata_weight_fn fn, void *ctx);

/* ---- updates --------------------------------------------------------------- */

/** Stage one update locally in O(1); routed by the next flush or commit. Local. */
strata_status strata_stage(strata_world *w, int64_t x, int64_t y, int64_t z, uint16_t material);
/** Stage a conditional update: applies only where the voxel holds `expected`. Local. */
strata_status strata_stage_expect(strata_world *w, int64_t x, int64_t y, int64_t z,
                                  uint16_t material, uint16_t expected);
/**
 * Route every rank's staged updates to their owners and apply them. Collective.
 * Last write wins in (rank, staging order). If any staged update lies outside the
 * world, the whole batch fails on every rank, naming the coordinate, and nothing
 * is applied. stats may be NULL.
 * Errors: STRATA_ERR_RANGE (above), _READ_ONLY, _INTERRUPTED, _NOMEM, _MPI, and
 * a failure reading a touched chunk (_IO, _HDF5, _CORRUPT): on any of them no
 * update of the batch is applied on any rank, and the staged updates are dropped.
 */
strata_status strata_flush(strata_world *w, strata_batch_stats *stats);
/** Stage n updates and flush them. Collective (n may be 0 on some ranks). */
strata_status strata_update_batch(strata_world *w, const strata_update *updates, size_t n,
                                  strata_batch_stats *stats);
/**
 * Flush, then make every applied update durable and visible to new readers,
 * atomically. Collective. On return with STRATA_OK the commit is acknowledged:
 * no crash can lose it. stats may be NULL.
 * Errors: any status but STRATA_ERR_UNSYNCED means the commit did not happen:
 * the world on disk and the handle's last commit are the previous commit (the
 * failing flush's errors as strata_flush; STRATA_ERR_NOMEM, _IO, _HDF5, _MPI
 * while encoding, writing the segment or the manifest). STRATA_ERR_UNSYNCED:
 * the commit happened (readers and this handle see it) but its durability is
 * unknown; a later successful commit makes both durable.
 */
strata_status strata_commit(strata_world *w, strata_commit_stats *stats);

/* ---- reads ----------------------------------------------------------------- */

/**
 * Read n points routed to their owners; sees flushed but uncommitted updates.
 * Collective (n may differ per rank). out[i] receives the material of points[i].
 */
strata_status strata_query_points(strata_world *w, const int64_t (*points)[3], size_t n,
                                  uint16_t *out);
/** Read one voxel of the last commit this world opened or made. Not collective. */
strata_status strata_read_voxel(strata_world *w, int64_t x, int64_t y, int64_t z, uint16_t *out);
/**
 * Load chunk (cx, cy, cz) of the last commit as a dense C^3 array (the seed's
 * LoadChunkAsync). Cells beyond the world's edge read as air. Not collective.
 * @param[out] out C*C*C values, [z][y][x]
 */
strata_status strata_load_chunk(strata_world *w, int64_t cx, int64_t cy, int64_t cz, uint16_t *out);
/** Metadata of chunk (cx, cy, cz) in the last commit (GetChunkMetadataAsync). Not collective. */
strata_status strata_chunk_metadata(strata_world *w, int64_t cx, int64_t cy, int64_t cz,
                                    strata_chunk_meta *meta);

/* ---- box I/O (simulation codes) ------------------------------------------------ */

/** What one collective box read or write did. Totals are over all ranks; times are
 *  this rank's. */
typedef struct {
    uint64_t boxes;        /**< boxes handed in */
    uint64_t voxels;       /**< cells read, or voxels handed in for writing */
    uint64_t written;      /**< write: voxels stored (conditional ones that matched) */
    uint64_t skipped;      /**< write: conditional voxels whose expected value differed */
    uint64_t pieces;       /**< box-chunk pieces moved (one per chunk a box meets) */
    uint64_t remote_bytes; /**< bytes exchanged between different ranks */
    uint64_t replaced;     /**< write: chunks covered whole and replaced unread */
    double seconds;        /**< wall time of the collective call */
    double route_seconds;  /**< this rank: packing and MPI exchanges */
    double copy_seconds;   /**< this rank: finding, decoding and copying chunk data */
} strata_box_io_stats;

/**
 * Read n boxes into dense arrays. Collective (n may differ per rank, 0 too);
 * boxes may lie anywhere in the world and overlap, on one rank or between ranks.
 * At level 0 the values are the flushed state, as strata_query_points sees it
 * (committed plus flushed updates, not updates only staged): each box is cut
 * into one piece per chunk it meets, the chunk's owner copies the piece (from
 * its resident chunk, or decoding the stored one into its chunk cache, so a
 * second read of the same region is served from memory) and sends it back as a
 * dense piece, or as one value when the chunk is uniform; pieces of chunks this
 * rank owns are copied without any message. At level L > 0 there is one cell
 * per aligned 2^L block meeting the box, holding the block's exact LOD value
 * (its mode inside the world, ties to the smallest id) as strata_query_lod
 * with a negative threshold and strata_extract --lod give it: from the index
 * (stored pyramids and octree nodes, so of the last commit), never from voxels.
 * A bad box on any rank (empty, or not inside the world) fails on every rank
 * with STRATA_ERR_RANGE naming the box's index, coordinates and rank; no
 * output array is written then.
 * @param[in]  boxes n boxes x0,y0,z0,x1,y1,z1, half-open, 0 <= x0 < x1 <= dims[0]
 *                   (same for y and z)
 * @param[in]  level LOD level in [0, 62]
 * @param[out] out   n arrays; out[i] receives box i's cells [z][y][x]: at level 0
 *                   (x1-x0)*(y1-y0)*(z1-z0) voxels, at level L
 *                   (ceil(x1/2^L) - floor(x0/2^L)) cells along x (y, z alike)
 * @param[out] stats may be NULL
 */
strata_status strata_read_boxes(strata_world *w, const int64_t (*boxes)[6], size_t n, int level,
                                uint16_t *const *out, strata_box_io_stats *stats);

/**
 * Write n dense boxes. Collective (n may differ per rank); boxes may lie anywhere
 * and overlap: where they do, the last write wins in (rank, box order), as for
 * staged updates. Updates staged before the call are flushed first. Each box is
 * cut into one piece per chunk it meets and the piece travels to the chunk's
 * owner whole (a header and the piece's voxels, never one record per voxel); a
 * chunk a piece covers whole (up to the world's edge) is replaced without
 * reading its old content. With expected[i] not NULL box i is conditional: a
 * voxel is written only where it still holds expected[i]'s value (the running
 * value, after the pieces before it in that order), so codes that race on
 * shared borders keep the other rank's change. The result is flushed, not
 * committed (strata_commit makes it durable). Only changes are stored: a piece
 * that changes no voxel of its chunk leaves the chunk as it was (the next
 * commit does not write it), and a chunk whose changes are few (at most 1/16
 * of its voxels since its stored image) is committed as a delta record, like
 * staged updates; a chunk replaced unread is committed whole. A bad box on any rank (empty, not
 * inside the world, NULL data) fails on every rank naming the box and rank,
 * and a failure (memory, reading a chunk) on any rank changes nothing anywhere.
 * @param[in]  boxes    n boxes as for strata_read_boxes (level 0)
 * @param[in]  data     n arrays of the boxes' new voxels, [z][y][x]
 * @param[in]  expected NULL (no box conditional), or n arrays, each NULL
 *                      (unconditional) or box i's expected voxels, [z][y][x]
 * @param[out] stats    may be NULL
 */
strata_status strata_write_boxes(strata_world *w, const int64_t (*boxes)[6], size_t n,
                                 const uint16_t *const *data, const uint16_t *const *expected,
                                 strata_box_io_stats *stats);

/**
 * This rank's own domain for owner-computes: the voxel boxes of the aligned
 * blocks of chunks (2^k chunks along each axis) that its Morton key range covers,
 * each clipped to the world, blocks wholly outside the world left out. Together
 * they hold exactly the voxels of the chunks this rank owns, each once; the
 * ranks' domains tile the world. A code iterates over them, reads each with a
 * halo (strata_read_boxes), computes and writes back only voxels inside it, so
 * no two ranks write one voxel. Local.
 * @param[in]  max_chunks largest block edge in chunks (a power of two; 0: no
 *                        limit): larger blocks are split into blocks of this edge
 * @param[out] boxes      malloc'ed array of *n boxes x0,y0,z0,x1,y1,z1 (free() it);
 *                        NULL when *n is 0
 */
strata_status strata_domain_boxes(strata_world *w, int64_t max_chunks, int64_t (**boxes)[6],
                                  size_t *n);

/* ---- bulk fill and terrain ---------------------------------------------------- */

/**
 * Fill callback: write the voxels of one chunk. bounds is the chunk's voxel box
 * x0,y0,z0,x1,y1,z1 clipped to the world; voxels is edge^3 values [z][y][x]
 * relative to (x0,y0,z0), zeroed before the call; cells beyond the world's edge
 * are ignored. Return STRATA_OK, or an error (with a message in *message_out,
 * at most STRATA_ERROR_MAX bytes) to fail the whole fill.
 */
typedef strata_status (*strata_fill_fn)(const int64_t bounds[6], int edge, uint16_t *voxels,
                                        void *ctx, char *message_out);
/**
 * Replace the voxels of every chunk meeting box (x0,y0,z0,x1,y1,z1, half-open,
 * NULL = whole world) by calling fn once for each such chunk this rank owns.
 * Voxels of those chunks outside box keep their values (fn sees them as zero, the
 * library keeps the old values there). Collective; the result is flushed (not
 * committed). Chunks that come out all air cost nothing.
 */
strata_status strata_fill(strata_world *w, const int64_t *box, strata_fill_fn fn, void *ctx);
/** Fill the world with seeded, deterministic layered terrain (flushed, not committed). Collective.
 */
strata_status strata_generate_terrain(strata_world *w, uint64_t seed);

/* ---- LOD queries (the octree index) ------------------------------------------------ */

/**
 * The LOD value of the 2^level block containing each point: the exact mode of
 * the block's voxels inside the world (ties to the smallest id). With
 * threshold >= 0 it is the seed's rule: the mode when the block's homogeneity
 * (dominant count / voxels inside the world) is at least threshold, else the
 * voxel itself. level 0 is the voxel. Collective (n may differ per rank).
 * @param[out] out          n materials
 * @param[out] homogeneity  n homogeneities, or NULL
 */
strata_status strata_query_lod(strata_world *w, const int64_t (*points)[3], size_t n, int level,
                               double threshold, uint16_t *out, double *homogeneity);

/* ---- LOD index: regions, rays, statistics, reindex ---------------------------------- */

/** One region of strata_query_region: a whole aligned node of the 2^level grid. */
typedef struct {
    int64_t box[6];     /**< x0,y0,z0,x1,y1,z1 of the node clipped to the world */
    int level;          /**< LOD level of the node: its edge is 2^level voxels */
    uint16_t material;  /**< most frequent material inside the world, ties to the smallest id */
    double homogeneity; /**< that material's share of the node's voxels inside the world */
} strata_region;

/**
 * The coarsest cover of a box by homogeneous aligned nodes (the seed's
 * QueryRegionAsync): a node is split only while its homogeneity is below
 * threshold and its level is above `level`. The regions are disjoint, cover
 * the box clipped to the world exactly once, may reach beyond the box but never
 * beyond the world, and come sorted by (z0, y0, x0). Answered from the index and
 * the stored pyramids, never from full-resolution data. Collective: every rank
 * passes the same arguments and receives the whole result.
 * @param[in]  box       x0,y0,z0,x1,y1,z1, half-open, clipped to the world
 *                       (STRATA_ERR_ARG if empty after clipping)
 * @param[in]  level     finest level to split to, >= 0 (clamped to the root's level)
 * @param[in]  threshold homogeneity in [0, 1] at which a node counts as homogeneous
 * @param[out] regions   malloc'ed array (free() it); *n regions
 */
strata_status strata_query_region(strata_world *w, const int64_t box[6], int level,
                                  double threshold, strata_region **regions, size_t *n);

/** Result of strata_ray. */
typedef struct {
    int hit;          /**< 1: a non-air voxel was hit within max_dist */
    int64_t voxel[3]; /**< the voxel hit */
    uint16_t material;
    double distance; /**< where the ray enters that voxel, along the normalised direction */
    uint64_t steps;  /**< voxel steps plus skips taken (work done) */
    int normal[3];   /**< outward normal of the face the ray entered the voxel (or cell)
                          through: one axis +-1; all 0 when the ray starts inside it */
} strata_ray_hit;

/**
 * Walk the voxels a ray crosses (Amanatides-Woo, start voxel first, ties at
 * edges and corners stepping x, then y, then z) to the first non-air voxel,
 * skipping all-air nodes and pyramid cells whole. A ray that leaves the world
 * first, or whose next voxel starts beyond max_dist, misses. Reads the last
 * commit. Collective: every rank passes the same ray and gets the same result.
 * @param[in] from     start point in voxel units (inside the world, else STRATA_ERR_RANGE)
 * @param[in] dir      direction, not zero
 * @param[in] max_dist largest distance, >= 0 (INFINITY: no limit)
 */
strata_status strata_ray(strata_world *w, const double from[3], const double dir[3],
                         double max_dist, strata_ray_hit *hit);

/** Options of strata_cast_rays. Initialise with strata_cast_options_init. */
typedef struct {
    int level;              /**< LOD level whose cells rays stop at: 0 (voxels) .. log2(C) */
    const uint16_t *hidden; /**< materials rays pass through like air (may be NULL) */
    size_t hidden_count;
    double max_dist; /**< largest distance, voxel units (INFINITY: no limit) */
} strata_cast_options;

/** Defaults: level 0, nothing hidden, no distance limit. */
void strata_cast_options_init(strata_cast_options *opt);

/**
 * Cast this rank's n rays (n may differ per rank) to the first cell of the
 * option's level whose LOD value (the voxel at level 0, the cell's exact mode
 * above) is neither air nor hidden. The walk is strata_ray's (Amanatides-Woo
 * over the level's cells of 2^level voxels, ties stepping x, then y, then z,
 * skipping wholly empty nodes, chunks and pyramid cells), with two differences:
 * a ray may start outside the world, and then enters it where it first meets
 * the box of the level's cells (hit.normal then names that face if the first
 * cell is not empty); and each rank walks its own rays without communication,
 * reading whatever rows, pyramids and chunks they cross. A ray's result is the
 * same whichever rank casts it. hits[i].voxel is the hit cell's first voxel
 * (cell coordinates x 2^level); distances are voxel units along dir[i] / |dir[i]|
 * from from[i]. Reads the last commit. Collective (the index is built on first
 * use; any rank's error is every rank's).
 * @param[in] from starting points, voxel units, finite (may lie outside the world)
 * @param[in] dir  directions, non-zero and finite
 * @param[in] opt  options, or NULL for the defaults
 */
strata_status strata_cast_rays(strata_world *w, const double (*from)[3], const double (*dir)[3],
                               size_t n, const strata_cast_options *opt, strata_ray_hit *hits);

/* ---- rendering --------------------------------------------------------------- */

/** Options of strata_render. Initialise with strata_render_options_init. */
typedef struct {
    int width, height; /**< pixels, 1..8192 each */
    /** 0: frame the whole world from above at an angle (from, look_at, up and fov
     *  are then chosen; strata_render_stats reports them); 1: use the four below */
    int has_camera;
    double from[3], look_at[3]; /**< camera position and target, voxel coordinates */
    double up[3];               /**< up direction (not zero, not along the view) */
    double fov;                 /**< vertical field of view, degrees, in (0, 180) */
    double sun_azimuth;         /**< direction of the sun, degrees clockwise from north (+y) */
    double sun_elevation;       /**< degrees above the horizontal plane, in [-90, 90] */
    int shadows;                /**< 1: a second ray toward the sun darkens what it hits */
    int level;                  /**< LOD level of the cells drawn: 0 (voxels) .. log2(C) */
    const uint16_t *hidden;     /**< materials drawn transparent like air (may be NULL) */
    size_t hidden_count;
    /** Vertical exaggeration: z is drawn this many times its true scale. 0:
     *  automatic (1 for cubic voxels, else docs/render.md's rule). */
    double exaggeration;
} strata_render_options;

/** What strata_render drew. Totals are over all ranks. */
typedef struct {
    double exaggeration;        /**< the vertical exaggeration used */
    double from[3], look_at[3]; /**< the camera used (voxel coordinates) */
    double up[3], fov;
    uint64_t rays;  /**< primary and shadow rays cast */
    uint64_t steps; /**< their cell steps plus skips */
    uint64_t hits;  /**< pixels showing the world */
    double seconds; /**< wall time of the call */
} strata_render_stats;

/** Defaults: 1024 x 768, framed camera (fov 40, from azimuth 200, the world's box
 *  filling the picture), sun at azimuth 240, elevation 40 (behind the camera's
 *  left), shadows on, level 0, nothing hidden, automatic exaggeration. */
void strata_render_options_init(strata_render_options *opt);

/**
 * Draw a perspective image of the world's last commit: each pixel's ray (through
 * the pixel's centre) is cast as by strata_cast_rays to the first cell that is
 * neither air nor hidden, coloured by the material table and shaded by the
 * face it entered through and the sun, with a shadow ray toward the sun
 * (docs/render.md gives every formula). Geometry is drawn in metres (the voxel
 * size) with z times the exaggeration. The image's columns are split among
 * the ranks (equal bands of the columns that see the world) and gathered on
 * rank 0; the image is the
 * same, byte for byte, at any rank count. A camera whose rays all miss the
 * world, a zero or parallel up vector, a camera at its target or a fov outside
 * (0, 180) is STRATA_ERR_ARG naming it. Collective.
 * @param[out] rgb       rank 0: width x height x 3 bytes, rows top to bottom (NULL elsewhere)
 * @param[out] materials rank 0: width x height materials hit (0: nothing), or NULL
 * @param[out] stats     may be NULL
 */
strata_status strata_render(strata_world *w, const strata_render_options *opt, uint8_t *rgb,
                            uint16_t *materials, strata_render_stats *stats);

typedef struct {
    uint16_t material;
    uint64_t count;
} strata_material_count;

/**
 * Voxel counts per material in a box (clipped to the world) of the last
 * commit, from node and chunk summaries where they lie inside the box and from
 * chunk data only where a mixed chunk is cut by the box. Collective: same box on
 * every rank, whole result on every rank.
 * @param[out] counts malloc'ed, ascending material, only materials present (free() it)
 */
strata_status strata_box_stats(strata_world *w, const int64_t box[6],
                               strata_material_count **counts, size_t *n);

typedef struct {
    uint64_t chunks;          /**< chunks summarised, all ranks */
    uint64_t voxels;          /**< their voxels (chunks x C^3) */
    double seconds;           /**< wall time of the whole reindex (commit included) */
    double summarize_seconds; /**< slowest rank's time reading and summarising */
    uint64_t epoch;           /**< the data epoch current when the summaries were published
                                   (0: nothing to do) */
    uint64_t snapshot_epoch;  /**< the commit the summaries were built from */
    uint64_t applied;         /**< chunks whose new summary serves (the others were rewritten
                                   by a commit after the snapshot: they stay stale) */
    uint64_t stale_after;     /**< stale chunks once published (all ranks) */
} strata_reindex_stats;

/**
 * Rebuild the index from what is stored: the stale chunks only (full = 0) or
 * every chunk (full = 1) of the commit the world was opened at (or last
 * committed). Writes one index segment of index-only rows (each the summary and
 * pyramid of a chunk at the data epoch it was built from), then, under the
 * publish lock, reads the current MANIFEST and publishes it with that segment
 * added: entries whose chunk a later commit rewrote never serve (they stay
 * stale). Runs beside a writer job when the world is open with STRATA_INDEX;
 * also allowed on a world open for writing. Collective. stats may be NULL.
 * Errors: as strata_commit (STRATA_ERR_UNSYNCED: the new summaries are published
 * but not known durable; any other status: the world is as before the call).
 */
strata_status strata_reindex(strata_world *w, int full, strata_reindex_stats *stats);

/** State of the LOD index (strata_index_status). */
typedef struct {
    uint64_t data_epoch;       /**< last commit */
    uint64_t index_epoch;      /**< commit the index last caught up with */
    uint64_t stale_chunks;     /**< chunks whose summary is older than their data, all ranks */
    uint64_t rebuild_chunks;   /**< last reindex: chunks summarised */
    double rebuild_seconds;    /**< last reindex: the slowest rank's reading and summarising
                                    time (the rebuild; its durable commit not included) */
    double rebuilt_at;         /**< when the last reindex published (Unix seconds; 0: none) */
    uint64_t index_segments;   /**< live index segments (reindexes not yet folded in) */
    int chunk_level;           /**< log2(C): the LOD level of one chunk */
    int max_level;             /**< LOD level of the root node */
    int replicated_level;      /**< lowest LOD level replicated whole on every rank */
    uint64_t replicated_nodes; /**< nodes every rank holds (top levels + straddlers) */
    uint64_t local_nodes;      /**< largest count of rank-local nodes */
    uint64_t hash; /**< order-independent hash of every summary (same at any rank count) */
} strata_index_info;

/**
 * Report the index state; with build = 1 also build the index (if needed) and
 * fill the node counts and hash. Collective.
 */
strata_status strata_index_status(strata_world *w, int build, strata_index_info *info);

/* ---- extraction ------------------------------------------------------------ */

/** Progress of strata_extract (rank 0 gets calls): output cells written of total. */
typedef void (*strata_extract_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/** Options of strata_extract. Initialise with strata_extract_options_init. */
typedef struct {
    /** Output bytes one collective round may hold over all ranks (0: default,
     *  min(ranks x 128 MiB, 1 GiB)). Bounds per-rank memory; smaller means more rounds. */
    uint64_t round_bytes;
    strata_extract_progress_fn progress; /**< may be NULL */
    void *progress_ctx;
} strata_extract_options;

/** What strata_extract did. Times are the slowest rank's. */
typedef struct {
    int64_t box[6];          /**< the box after clipping to the world */
    int64_t cells[3];        /**< output cells along x, y, z */
    uint64_t bytes;          /**< bytes of /material */
    uint64_t chunks_read;    /**< chunks decoded (stored dense), all ranks */
    uint64_t rounds;         /**< collective rounds */
    double read_seconds;     /**< decoding chunks (L = 0) or LOD queries (L > 0) */
    double exchange_seconds; /**< packing and MPI_Alltoallv to the z-slab writers */
    double write_seconds;    /**< collective HDF5 writes */
    double seconds;          /**< whole call */
} strata_extract_stats;

/** Defaults: automatic round size, no progress callback. */
void strata_extract_options_init(strata_extract_options *opt);

/**
 * Extract a box of the world (flushed state, as strata_query_points sees it) to a
 * standard HDF5 file plus an XDMF sidecar. Collective.
 *
 * The file holds /material, uint16 [z][y][x], contiguous and unfiltered (ParaView
 * reads it without plugins), with attributes box (6 int64, clipped), lod (int32),
 * voxel_size (3 doubles, metres, x y z), origin (3 doubles: world position of the
 * first cell's corner, x y z) and a compound dataset /materials (id, name, r, g, b)
 * holding the world's material table plus every id present in /material that the
 * table lacks (named and coloured as strata_material_get does), sorted by id. An
 * output path inside the world's directory is refused (STRATA_ERR_ARG): extraction
 * only reads the world. At level L > 0 there is one cell per aligned
 * 2^L block that meets the box, holding the block's LOD value (its exact mode,
 * from strata_query_lod): ceil(x1 / 2^L) - floor(x0 / 2^L) cells along x.
 * Every rank reads only chunks it owns; the pieces are routed (MPI_Alltoallv) so
 * that each rank writes one contiguous z-slab with collective MPI-IO.
 * The XDMF file (path with its .h5 extension replaced by .xmf) describes a
 * 3DCoRectMesh grid with the material as a cell field, naming the HDF5 file by its
 * basename. Both files appear only when complete (written aside, then renamed).
 * @param[in]  box   x0,y0,z0,x1,y1,z1, half-open; clipped to the world. x0 >= x1
 *                   (any axis) or a box empty after clipping is STRATA_ERR_RANGE
 *                   and writes nothing.
 * @param[in]  level LOD level, 0 = full resolution
 * @param[in]  path  output HDF5 file (replaced if it exists)
 * @param[in]  opt   options, or NULL for defaults
 * @param[out] stats may be NULL
 */
strata_status strata_extract(strata_world *w, const int64_t box[6], int level, const char *path,
                             const strata_extract_options *opt, strata_extract_stats *stats);

/* ---- maintenance ----------------------------------------------------------- */

/** Problem callback of strata_fsck: one call per problem found. */
typedef void (*strata_problem_fn)(const char *problem, void *ctx);
/**
 * Verify the manifest, every segment and every chunk checksum. Collective. A world
 * opened with STRATA_CHECK is checked past segments that could not be opened: each
 * is one problem, and the rows pointing into it are problems too.
 * @param[out] problems total problems found on all ranks (0 = clean)
 */
strata_status strata_fsck(strata_world *w, strata_problem_fn fn, void *ctx, uint64_t *problems);
/** Commit, then merge all live segments into one, atomically; old files removed.
 *  Collective. Errors: as strata_commit. STRATA_ERR_UNSYNCED: the commit (and
 *  the compaction, unless the commit itself was unsynced) happened but is not
 *  known durable; the old files stay until the next writer opens the world. Any
 *  other status: no compaction happened (the commit made first may have). */
strata_status strata_compact(strata_world *w, strata_commit_stats *stats);

/* ---- import ---------------------------------------------------------------- */

/** Which columns a layer applies to (by the column's elevation e and sea level s). */
enum {
    STRATA_ZONE_ANY = 0,   /**< every column */
    STRATA_ZONE_LAND = 1,  /**< e >= s + coast_height */
    STRATA_ZONE_COAST = 2, /**< s <= e < s + coast_height */
    STRATA_ZONE_SEA = 3    /**< e < s */
};

/** One layer of the ground, from the surface down (docs/import.md). */
typedef struct {
    char name[STRATA_MATERIAL_NAME_MAX]; /**< added to the table when material is not in it */
    double thickness;                    /**< metres; 0 = down to the bottom of the world */
    uint16_t material;                   /**< not air (0), not water */
    uint8_t rgb[3]; /**< colour, used with name when material is not in the table */
    int zone;       /**< STRATA_ZONE_*: columns the layer applies to */
} strata_layer;

/** DEM import options. Initialise with strata_dem_options_init. */
typedef struct {
    const char *variable; /**< 2-D variable; NULL = the first 2-D float or double one */
    double scale;         /**< multiplies values (after scale_factor/add_offset) into metres; 1 */
    int64_t crop[4];      /**< i0,j0,i1,j1 half-open grid indices; all 0 = whole grid */
    int has_z_range;      /**< 0: z range from the crop's elevations (rounded out to M) */
    double z_range[2];    /**< ZMIN, ZMAX in metres when has_z_range */
    double vertical_res;  /**< M, metres per voxel vertically; 100 */
    double sea_level;     /**< metres; 0 */
    double coast_height;  /**< land below sea_level + this is "coast"; 20 m */
    const strata_layer *layers; /**< ground layers top down; NULL = the default table */
    size_t layer_count;
} strata_dem_options;

/** Raw volume element types and byte orders. */
enum { STRATA_RAW_UINT8 = 1, STRATA_RAW_UINT16 = 2, STRATA_RAW_INT16 = 3 };
enum { STRATA_ENDIAN_LITTLE = 0, STRATA_ENDIAN_BIG = 1 };

/** Raw volume import options: a headerless C-order [z][y][x] array. */
typedef struct {
    int64_t dims[3]; /**< X, Y, Z; the file holds exactly X*Y*Z elements */
    int type;        /**< STRATA_RAW_* */
    int endian;      /**< STRATA_ENDIAN_* */
} strata_raw_options;

/** What an import made. Totals are over all ranks. */
typedef struct {
    int64_t dims[3];
    double voxel_size[3];
    double origin[3];
    double elevation_min, elevation_max; /**< DEM: crop's extremes in metres */
    double z_range[2];                   /**< DEM: ZMIN, ZMAX used */
    int geographic;                      /**< DEM: 1 when lon/lat coordinates were found */
    double centre_latitude;              /**< DEM: degrees, when geographic */
    double corner_lon_lat[2];            /**< DEM: west/south edge of the crop, degrees */
    uint64_t ground, water, air;         /**< voxels of each kind (DEM) */
    double seconds;                      /**< wall time of the whole import */
    strata_commit_stats commit;
} strata_import_stats;

/** Defaults: variable NULL, scale 1, whole grid, M = 100 m, sea level 0, coast 20 m. */
void strata_dem_options_init(strata_dem_options *opt);
/** The default layer table (docs/import.md). Local. */
void strata_import_default_layers(const strata_layer **layers, size_t *count);

/**
 * Create the world at path from a 2-D elevation grid in a netCDF file and commit
 * it. Collective over comm. Grid column i becomes x and row j becomes y (rows are
 * flipped when the row coordinate decreases, so y always points north); voxel k
 * of a column has centre ZMIN + (k + 0.5) * M and is ground (layered) below the
 * column's elevation, water below sea level, air otherwise. Every rank reads only
 * the grid windows of the chunks it owns (plus 1/size of the crop to check it).
 * Bad input (not netCDF, no such variable, not 2-D, a missing or non-finite
 * value in the crop, a bad crop or layer table) fails on every rank and creates
 * nothing (a --force target keeps its old world). Without netCDF at build time
 * this fails with STRATA_ERR_ARG saying so.
 * @param[in]  comm     communicator
 * @param[in]  path     world directory to create
 * @param[in]  dem_file netCDF file
 * @param[in]  dem      options (NULL = defaults)
 * @param[in]  cfg      chunk edge and material table (dims, voxel size, origin ignored)
 * @param[in]  opt      open options or NULL
 * @param[in]  flags    0 or STRATA_CREATE_FORCE
 * @param[out] stats    what was made, or NULL
 * @param[out] out      the world, committed and open for writing; NULL = close it
 */
strata_status strata_import_dem(MPI_Comm comm, const char *path, const char *dem_file,
                                const strata_dem_options *dem, const strata_config *cfg,
                                const strata_options *opt, unsigned flags,
                                strata_import_stats *stats, strata_world **out);

/**
 * Create the world at path from a raw label volume and commit it, voxel for
 * voxel. Collective over comm. The file must hold exactly X*Y*Z elements; a
 * negative value (int16) fails (STRATA_ERR_PARSE) naming its element index and x,y,z. Bad input
 * creates nothing (a --force target keeps its old world).
 * @param[in]  raw   dims, element type and byte order
 * @param[in]  cfg   chunk edge, voxel size, origin and materials (dims ignored)
 * Other parameters as for strata_import_dem.
 */
strata_status strata_import_raw(MPI_Comm comm, const char *path, const char *raw_file,
                                const strata_raw_options *raw, const strata_config *cfg,
                                const strata_options *opt, unsigned flags,
                                strata_import_stats *stats, strata_world **out);

/* ---- signals --------------------------------------------------------------- */

/** Make collective calls stop with STRATA_ERR_INTERRUPTED after SIGTERM/SIGINT. */
strata_status strata_install_signal_handlers(void);

#ifdef __cplusplus
}
#endif
#endif
