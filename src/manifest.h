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

typedef struct {
    uint64_t epoch; /**< the commit that wrote the segment; names the file */
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
/** File name of a segment ("seg-%020llu.h5") into buf. */
void manifest_segment_name(uint64_t epoch, char *buf, size_t size);

#endif
