/* store.h: immutable HDF5 segment files holding chunk payloads and chunk tables.
 *
 * A segment seg-<epoch>.h5 is written collectively by all ranks in one commit:
 *   /rows     compound table, one row per chunk the commit wrote, ascending key
 *   /payload  uint8, the encoded chunk and LOD payloads, each rank's bytes placed
 *             after the previous ranks' (MPI_Exscan of sizes)
 *   /fence    uint64, the key of every STORE_FENCE_ROWS-th row, so that a rank
 *             finds its key range without reading the whole table. A rank holds
 *             only every STORE_FENCE_SAMPLE-th entry of it (store_segment.sample)
 *             and reads the block of the fence it needs on demand, a few blocks
 *             cached per store (store.fences)
 * Rows of newer segments supersede rows of older ones with the same key. A row
 * may point at a payload in an older segment (a reindex only rewrites summaries).
 */
#ifndef STRATA_STORE_H
#define STRATA_STORE_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"

#define STORE_FENCE_ROWS 1024
/* Blocks of rows a segment keeps for lookups (store_segment.blocks), and the
 * blocks all segments of a store keep together: many live segments do not
 * multiply them (16 blocks of 1,024 rows: 2.2 MB per rank). */
#define STORE_CACHED_BLOCKS     8
#define STORE_CACHED_BLOCKS_ALL 16
/* A segment keeps in memory every STORE_FENCE_SAMPLE-th /fence entry (8 bytes
 * per 1,048,576 rows); the store caches STORE_CACHED_FENCES blocks of
 * STORE_FENCE_SAMPLE entries read on demand (8 KB each), whatever the segments. */
#define STORE_FENCE_SAMPLE  1024
#define STORE_CACHED_FENCES 8

/* Row flags. STORE_ROW_INDEX_ONLY (format 3) marks a row of an index segment
 * (idx-<serial>.h5, written by a reindex beside the writer): it carries only
 * the index fields (summary and LOD pyramid) of chunk `key` as built from the
 * chunk's data of epoch `epoch`; its payload fields, codec and value are 0. It
 * serves only while the chunk's data row has that same epoch (the exactness
 * rule of docs/format.md): store_apply_index. */
enum { STORE_ROW_INDEX_STALE = 1, STORE_ROW_INDEX_ONLY = 2 };

/* Index segment ids (STORE_INDEX_SEGMENT | serial, store_is_index_segment):
 * manifest.h, which names segment files. */

/** One chunk table row (docs/format.md lists the on-disk fields in this order). */
typedef struct {
    uint64_t key;             /**< Morton key of the chunk */
    uint64_t epoch;           /**< commit that last changed the chunk's voxels */
    uint64_t payload_segment; /**< epoch of the segment holding the payload; 0: none */
    uint64_t payload_offset;  /**< byte offset in that segment's /payload */
    uint64_t lod_segment;     /**< segment holding the LOD pyramid payload; 0: none */
    uint64_t lod_offset;
    uint32_t payload_length;
    uint32_t payload_crc; /**< CRC-32 of the payload bytes */
    uint32_t lod_length;
    uint32_t lod_crc;
    uint32_t dominant_count; /**< voxels (inside the world) of the dominant material */
    uint32_t row_crc;        /**< CRC-32 of the other fields (store_row_checksum) */
    uint16_t value;          /**< the material of a uniform chunk */
    uint16_t dominant;       /**< most frequent material inside the world, ties to smallest id */
    uint16_t distinct;       /**< distinct materials inside the world */
    uint8_t codec;           /**< CODEC_* of codec.h */
    uint8_t flags;           /**< STORE_ROW_* */
    /* Format 3: the delta chain (src/delta.h). The fields above payload_* and
     * codec/value describe the chunk's base image (the last whole write); the
     * chunk's voxels are that image with the chain's records applied oldest
     * first. Summary and LOD fields describe the voxels with the chain applied.
     * Rows of format-2 segments read these as 0 (no chain). */
    uint64_t delta_segment; /**< segment holding the newest delta record; 0: no chain */
    uint64_t delta_offset;  /**< its byte offset in that segment's /payload */
    uint64_t delta_first;   /**< segment holding the oldest record of the chain (every record
                                 lies in a segment of epoch in [delta_first, delta_segment]) */
    uint32_t delta_length;  /**< bytes of the newest record */
    uint32_t delta_crc;     /**< CRC-32 of the newest record */
    uint32_t delta_bytes;   /**< bytes of all the chain's records */
    uint16_t delta_depth;   /**< records in the chain (0: none) */
    uint64_t home;          /**< in memory only (not stored, not checksummed): epoch of the segment
                                 holding this row, so that a commit knows which segments rows use */
    uint64_t index_home;    /**< in memory only: the index segment whose index-only row this row's
                                 summary came from (store_apply_index), 0: none; kept live by it */
} store_row;

/** A row whose chunk is one value: uniform base and no delta chain. */
static inline int store_row_uniform(const store_row *row)
{
    return row->codec == 0 /* CODEC_UNIFORM */ && row->delta_depth == 0;
}

/** Rows [index * STORE_FENCE_ROWS, + count) of a segment, read once (store_lookup_row). */
typedef struct {
    store_row *rows; /**< NULL: slot unused */
    size_t index, count;
    uint64_t used; /**< the store's block_clock at the last lookup */
} store_row_block;

/** Entries [index * store.fence_stride, + count) of the /fence of segment
 *  `epoch`, read on demand (fence_block in store.c). */
typedef struct {
    uint64_t *keys; /**< NULL: slot unused */
    uint64_t epoch;
    size_t index, count; /**< index SIZE_MAX: holds nothing valid */
    uint64_t used;       /**< the store's block_clock at the last lookup */
} store_fence_block;

typedef struct {
    uint64_t epoch;
    int format; /**< the segment's strata_format attribute (rows of format 2 lack the chain) */
    hid_t file, rows, payload;
    uint64_t payload_size; /**< bytes of /payload */
    /* /payload is contiguous and unfiltered: a payload is payload_address + its offset in
     * the file, read by one pread of fd (HDF5's POSIX driver's descriptor, valid while the
     * file is open) instead of a hyperslab H5Dread, whose few microseconds of set-up were
     * most of a cold read of a chunk carrying a delta chain (docs/benchmarks.md).
     * fd < 0: read through HDF5. */
    int fd;
    uint64_t payload_address;
    uint64_t row_count;
    hid_t fence;          /**< /fence, read a block at a time */
    uint64_t fence_count; /**< entries of /fence: one per STORE_FENCE_ROWS rows */
    uint64_t *sample;     /**< /fence entries 0, stride, 2 x stride... (store.fence_stride) */
    size_t sample_count;
    /* Cached blocks of rows for lookups outside the rank's range, the least
     * recently used replaced: lookups that alternate among a few blocks (rays
     * crossing other ranks' chunks) read each once instead of again and again. */
    store_row_block blocks[STORE_CACHED_BLOCKS];
} store_segment;

typedef struct {
    MPI_Comm comm;
    char dir[4096];
    size_t count;
    store_segment *segments; /**< ascending epoch */
    hid_t row_memory_type, row_file_type;
    hid_t row_memory_type_v2; /**< the fields a format-2 segment's rows hold */
    uint64_t block_clock;     /**< lookups made: the recency of cached row and fence blocks */
    size_t fence_stride;      /**< /fence entries per sample entry (STORE_FENCE_SAMPLE) */
    store_fence_block fences[STORE_CACHED_FENCES];
    /* The ranks of comm on this node (MPI_COMM_TYPE_SHARED), when has_node: one
     * of them fsyncs a written segment for all (store_write_segment). */
    MPI_Comm node;
    int has_node;
} store;

/** End a view of s (a copy of s naming some of its segments, for store_load_rows):
 *  s takes back the store-wide fence blocks the view cached (and their recency), which
 *  it then frees at store_close. Local. */
void store_view_end(store *s, const store *view);

/** Tests only: the fence stride of stores initialized from now on (0: STORE_FENCE_SAMPLE),
 *  so that a small world takes the on-demand path. Local, not thread-safe. */
void store_set_fence_stride(size_t stride);
/** Bytes of s's fences in memory: the segments' samples and the cached blocks. Local. */
uint64_t store_fence_bytes(const store *s);
/** The whole /fence of s->segments[i] (ascending checked), which the caller frees: rank 0
 *  choosing splitters from stored keys, transiently. Local. */
strata_status store_read_fence(store *s, size_t i, uint64_t **keys, strata_error *err);

/** CRC-32 of a row's fields other than row_crc, serialized little-endian (format 3). */
uint32_t store_row_checksum(const store_row *row);
/** The same for a row of a segment of the given format (2: without the chain fields). */
uint32_t store_row_checksum_format(const store_row *row, int format);

/** Prepare an empty store for dir. Local. */
strata_status store_init(store *s, MPI_Comm comm, const char *dir, strata_error *err);
/** Open the segments of the given ids (data epochs or index segment ids), kept
 *  sorted by id in the store, read-only with HDF5's POSIX driver. Local: every
 *  rank opens every segment; the caller agrees on the outcome. */
strata_status store_open_segments(store *s, const uint64_t *epochs, size_t n, strata_error *err);
/** Keep node (the ranks of the store's comm on this node, from
 *  MPI_Comm_split_type): one rank of each node fsyncs a written segment.
 *  store_close frees it. Local. */
void store_set_node(store *s, MPI_Comm node);
/** Close every segment and free. Local: published segments are open with the POSIX
 *  driver (only store_write_segment uses MPI-IO, and it closes its file itself). */
void store_close(store *s);
/** Close the segments not listed in epochs (retired by a commit or compaction). Local. */
void store_retain(store *s, const uint64_t *epochs, size_t n);

/**
 * Rows with keys in [first, last), newest data segment winning, ascending key,
 * then the store's index segments applied in id order (store_apply_index).
 * Local (independent reads). *rows is malloc'ed.
 */
strata_status store_load_rows(store *s, uint64_t first, uint64_t last, store_row **rows, size_t *n,
                              strata_error *err);
/**
 * Rows of one index segment (id with STORE_INDEX_SEGMENT) with keys in
 * [first, last), as stored (index-only rows). Local. *rows is malloc'ed.
 */
strata_status store_load_index_rows(store *s, uint64_t id, uint64_t first, uint64_t last,
                                    store_row **rows, size_t *n, strata_error *err);
/**
 * Apply index-only rows x (n, ascending key) to data rows (count, ascending
 * key): a data row of the same key AND the same epoch takes x's summary,
 * pyramid and index_home = segment, and loses STORE_ROW_INDEX_STALE; any other
 * index row is dropped (built from data a later commit replaced). Returns the
 * rows changed. Local.
 */
size_t store_apply_index(store_row *rows, size_t count, const store_row *x, size_t n,
                         uint64_t segment);
/** Find the newest row of key anywhere (for reads outside the rank's range),
 *  with the index segments applied. Local. */
strata_status store_lookup_row(store *s, uint64_t key, store_row *row, int *found,
                               strata_error *err);
/** Read and verify (CRC-32) a payload. Local. */
strata_status store_read_payload(store *s, uint64_t segment, uint64_t offset, uint32_t length,
                                 uint32_t crc, uint64_t key, uint8_t *out, strata_error *err);
/**
 * Read bytes [offset, offset + length) of a segment's /payload, the payloads
 * of several rows at once (one read instead of one per row); each is then
 * checked with store_check_payload. key names the first row in errors. Local.
 */
strata_status store_read_span(store *s, uint64_t segment, uint64_t offset, uint64_t length,
                              uint64_t key, uint8_t *out, strata_error *err);
/** One payload of a batch read by store_read_many. */
typedef struct {
    uint64_t segment, offset; /**< where it is */
    uint32_t length;
    uint64_t key; /**< names it in errors */
    size_t item;  /**< the caller's index */
    uint64_t at;  /**< out: offset of its bytes in the buffer */
} store_ref;

/**
 * Read many payloads with few HDF5 calls: refs are sorted (in place) by segment
 * and offset, and neighbours at most `gap` bytes apart are read by one call
 * into *buffer (grown as needed; *capacity bytes). A span that cannot be read
 * is read ref by ref, so that an error names the chunk at fault. Checksums are
 * the caller's (store_check_payload). Local.
 * @param[out] failed on error, the ref at fault (after sorting), or n if none is
 */
strata_status store_read_many(store *s, store_ref *refs, size_t n, uint64_t gap, uint8_t **buffer,
                              uint64_t *capacity, size_t *failed, strata_error *err);
/** Verify the CRC-32 of a payload read by store_read_span. Thread-safe. */
strata_status store_check_payload(const char *dir, uint64_t segment, uint64_t offset,
                                  uint32_t length, uint32_t crc, uint64_t key, const uint8_t *data,
                                  strata_error *err);

/**
 * Write segment seg-<epoch>.h5 (or idx-<serial>.h5 when epoch is an index
 * segment id) with this rank's rows (ascending key, inside its
 * range) and payload bytes. Row offsets are relative to this rank's payload; the
 * function rebases them and sets payload/lod segment fields that equal
 * `epoch` accordingly, fills row_crc, writes, flushes and fsyncs (one rank per
 * node when store_set_node gave the node's ranks, else every rank), and opens
 * the new segment into the store. Collective.
 * @param[in,out] rows rows to write; on return their offsets are global
 */
strata_status store_write_segment(store *s, uint64_t epoch, int ranks_writing, store_row *rows,
                                  size_t n, const uint8_t *payload, uint64_t payload_bytes,
                                  strata_error *err);
/** A segment store_write_segment wrote whose publication then failed (before the
 *  commit point): no manifest names it, so rank 0 removes it now instead of leaving
 *  it to the next writer's open (on a full file system its space is what the next
 *  job needs). The store keeps it open until the next write of that epoch or
 *  store_close. Call on every rank; not collective. */
void store_remove_unpublished(const store *s, uint64_t epoch);
/**
 * MPI-IO hints for the files written collectively (segments, extraction
 * outputs): the environment variable STRATA_MPIIO_HINTS, "key=value" pairs
 * separated by commas ("romio_cb_write=enable,cb_nodes=8,striping_factor=16"),
 * read at each such write; *info is MPI_INFO_NULL when it is unset or empty
 * (MPI's defaults). A malformed pair is STRATA_ERR_ARG naming it. Free a
 * non-null *info with MPI_Info_free. Local.
 */
strata_status store_mpiio_hints(MPI_Info *info, strata_error *err);
/** Report an HDF5 failure with the innermost message of HDF5's error stack. */
strata_status store_hdf5_error(strata_error *err, const char *what, const char *path);
/** Silence HDF5's automatic error printing (errors come back as statuses). */
void store_quiet_hdf5(void);

#endif
