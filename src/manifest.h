/* manifest.h: the world's commit point, a small text file replaced atomically.
 *
 * A world directory holds immutable segment files (seg-<epoch>.h5) and the file
 * MANIFEST naming the live ones. A commit writes its segment, makes it durable,
 * then replaces MANIFEST (write MANIFEST.tmp, fsync, rename, fsync the directory):
 * the rename is the commit point. The format is line-oriented text, ending with
 * a CRC-32 of everything before the checksum line (docs/format.md).
 */
#ifndef STRATA_MANIFEST_H
#define STRATA_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MANIFEST_NAME  "MANIFEST"
#define MANIFEST_MAGIC "strata-manifest"
/** Largest manifest accepted by the reader (checked before allocating). */
#define MANIFEST_MAX_BYTES    (64u << 20)
#define MANIFEST_MAX_RANKS    (1 << 24)
#define MANIFEST_MAX_SEGMENTS (1 << 20)

/* Index segments share the 64-bit segment id space of data segments (row
 * fields payload_segment, lod_segment, home), with the top bit set: id =
 * STORE_INDEX_SEGMENT | serial. Data segment ids are commit epochs (< 2^63). */
#define STORE_INDEX_SEGMENT ((uint64_t)1 << 63)
static inline int store_is_index_segment(uint64_t id)
{
    return (id & STORE_INDEX_SEGMENT) != 0;
}

typedef struct {
    uint64_t epoch; /**< the commit that wrote the segment; names the file. With
                         STORE_INDEX_SEGMENT (bit 63) set: an index segment, named
                         by its serial (manifest line `index_segment SERIAL`) */
} manifest_segment;

typedef struct {
    int format;
    uint64_t epoch; /**< last commit (0: created, nothing committed) */
    uint64_t commits;
    int writer_ranks;
    int64_t dims[3];
    int32_t chunk_edge;
    double voxel_size[3];
    double origin[3];
    int split_ranks; /**< splitters: split_ranks + 1 keys */
    uint64_t *split;
    size_t segment_count;
    manifest_segment *segments; /**< ascending epoch */
    size_t material_count;
    strata_material *materials; /**< ascending id */
    /* index state (the LOD index) */
    uint64_t index_epoch;    /**< data epoch the index last caught up with */
    uint64_t stale_chunks;   /**< chunks whose summary is older than their data */
    uint64_t rebuild_chunks; /**< last rebuild: chunks summarised */
    double rebuild_seconds;  /**< last rebuild: wall time */
    /* format 3, line `index_live SERIAL TIME` (absent: 0 0): index segments */
    uint64_t index_serial; /**< serial of the last index segment a reindex wrote */
    double rebuilt_at;     /**< when the last reindex published (Unix seconds; 0: never) */
} manifest;

/** Parse a manifest held in memory (not NUL-terminated). Strict: any defect is an error. */
strata_status manifest_parse(const char *text, size_t length, manifest *m, strata_error *err);
/** Serialize; *text is malloc'ed. */
strata_status manifest_format(const manifest *m, char **text, size_t *length, strata_error *err);
/** Free the arrays of m (not m itself) and zero it. */
void manifest_free(manifest *m);
/** Deep copy. */
strata_status manifest_copy(const manifest *src, manifest *dst, strata_error *err);
/** Read dir/MANIFEST (sizes checked before allocation). */
strata_status manifest_read(const char *dir, manifest *m, strata_error *err);
/** Atomically replace dir/MANIFEST: tmp file, fsync, rename, fsync dir. A
 *  failure after the rename (the commit point) is STRATA_ERR_UNSYNCED. */
strata_status manifest_write(const char *dir, const manifest *m, strata_error *err);
/** manifest_write through the temporary file dir/tmp_name (a reindex uses its
 *  own, MANIFEST.reindex.tmp, which a writer's clean-up never removes). */
strata_status manifest_write_through(const char *dir, const manifest *m, const char *tmp_name,
                                     strata_error *err);
/** 1 when m names segment id (data epoch or index segment id). */
/* Position of segment `id` in m->segments (sorted by id), or SIZE_MAX. */
size_t manifest_segment_index(const manifest *m, uint64_t id);
int manifest_has_segment(const manifest *m, uint64_t id);
/** File name of a segment ("seg-%020llu.h5"; an index segment id:
 *  "idx-%020llu.h5" of its serial) into buf. */
void manifest_segment_name(uint64_t epoch, char *buf, size_t size);

#endif
