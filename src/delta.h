/* delta.h: delta records, the changes a commit makes to a chunk without rewriting it.
 *
 * A dirty chunk whose change since its stored image is small is committed as a
 * delta record in the commit's segment /payload instead of a re-encoded chunk
 * (docs/format.md, "Delta records"): a 72-byte header, then the changed voxels
 * (indices inside the chunk, ascending and unique: the first, then the gaps
 * Rice-coded; the new materials as indices into a palette, bit-packed), the
 * body replaced by one zstd frame of it when that is smaller. Each
 * record names the previous record of its chunk (segment, offset, length,
 * CRC-32) and the chunk's base image, so a chain of records hangs from a row:
 * the chunk's voxels are the base image with the records applied oldest first.
 * The chain is bounded (DELTA_DEPTH_MAX records, delta_chain_budget bytes):
 * past the bound a commit writes the chunk whole.
 */
#ifndef STRATA_DELTA_H
#define STRATA_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "parallel.h"
#include "store.h"

#define DELTA_MAGIC   "SDLT"
#define DELTA_VERSION 2 /* 1: zstd byte planes (still read); 2: Rice-coded gaps, palette */
/** Records of at least this many changes also try zstd on their body (kept if smaller):
 *  below, random changes never gained and the attempt cost a third of a commit's encoding. */
#define DELTA_ZSTD_MIN     1024
#define DELTA_HEADER_BYTES 72
/** Most records in a chain (docs/benchmarks.md, "Delta commits": reads of chunks carrying
 *  the longest chain against the same world compacted). */
#define DELTA_DEPTH_MAX 8

/** A record's header (docs/format.md lists the bytes). */
typedef struct {
    uint8_t version;       /**< 1 or 2 (delta_parse) */
    uint16_t depth;        /**< place in the chain: 1 for the oldest record */
    uint64_t key;          /**< the chunk */
    uint64_t epoch;        /**< the commit that wrote it (its segment) */
    uint64_t base_segment; /**< the base image: the row's payload_segment (0: uniform) */
    uint64_t base_offset;  /**< the row's payload_offset */
    uint32_t base_tag;     /**< the row's payload_crc, or the uniform value (delta_base_tag) */
    uint32_t count;        /**< changed voxels */
    uint64_t prev_segment; /**< the previous record (0 for depth 1) */
    uint64_t prev_offset;
    uint32_t prev_length;
    uint32_t prev_crc;
} delta_header;

/** Changes a chunk logs before it is committed whole instead (1/16 of its voxels). */
static inline size_t delta_log_max(size_t chunk_voxels)
{
    return chunk_voxels / 16;
}
/** Bytes a chain may hold: as many as its base payload, at least DELTA_CHAIN_MIN_BYTES
 *  (docs/benchmarks.md, "Delta commits": the rule and what measures it). */
#define DELTA_CHAIN_MIN_BYTES 4096
static inline uint64_t delta_chain_budget(const store_row *base)
{
    uint64_t bytes = base->payload_length;
    return bytes > DELTA_CHAIN_MIN_BYTES ? bytes : DELTA_CHAIN_MIN_BYTES;
}
/** What a record records of its base: the payload's CRC-32, or a uniform base's value. */
static inline uint32_t delta_base_tag(const store_row *row)
{
    return row->payload_length ? row->payload_crc : row->value;
}
/** A log entry: voxel index, sequence number (the order of the changes), material. */
static inline uint64_t delta_log_entry(uint32_t voxel, uint32_t seq, uint16_t material)
{
    return (uint64_t)voxel << 40 | (uint64_t)(seq & 0xffffff) << 16 | material;
}
/** Largest record for count changes of an edge^3 chunk. */
size_t delta_record_bound(int edge, size_t count);
/**
 * Sort a log (delta_log_entry values of voxels below `voxels`, in the order the changes
 * were made) by voxel and keep each voxel's last change, in place; returns the changes
 * left (sequence numbers cleared). tmp: tmp_bytes, at least 8 n, aligned like malloc
 * memory; with delta_normalize_dense_bytes(voxels) or more and n not tiny, one pass
 * through a bitmap replaces the sort. Thread-safe.
 */
size_t delta_log_normalize(uint64_t *log, size_t n, size_t voxels, void *tmp, size_t tmp_bytes);
/** Bytes of tmp delta_log_normalize needs for its pass without a sort (a material and a
 *  bit per voxel): within chunk_scratch_size(edge) up to edge 64. */
size_t delta_normalize_dense_bytes(size_t voxels);
/**
 * Fewest bytes a record of the n normalized changes can take (its header and index
 * stream exactly, nothing for the materials, no zstd gain counted): the size check
 * before encoding. *rice (when not NULL): the index stream's Rice parameter, for
 * delta_encode. Thread-safe.
 */
size_t delta_size_floor(const uint64_t *changes, size_t n, int edge, int *rice);
/**
 * Write a record of the n normalized changes with header h (count is set from n) into
 * out (capacity bytes, at least delta_record_bound). rice: the Rice parameter
 * delta_size_floor gave for these changes, or -1 to compute it. scratch:
 * chunk_scratch_size(edge) bytes. Thread-safe.
 */
strata_status delta_encode(const delta_header *h, const uint64_t *changes, size_t n, int edge,
                           int rice, int level, uint8_t *scratch, uint8_t *out, size_t capacity,
                           size_t *length, strata_error *err);
/** Parse and check a record's header (magic, version, sizes). Thread-safe. */
strata_status delta_parse(const uint8_t *record, size_t length, int edge, delta_header *h,
                          strata_error *err);
/**
 * One record's changes without voxels (version 2; a version-1 record is STRATA_ERR_ARG:
 * apply it to voxels): *n voxel indices (checked, ascending) and their new materials,
 * both in scratch (chunk_scratch_size(edge) bytes) until it is used again. Thread-safe.
 */
strata_status delta_changes(const uint8_t *record, size_t length, int edge, uint8_t *scratch,
                            const uint32_t **voxel, const uint16_t **material, size_t *n,
                            strata_error *err);
/** Receives one record's changes (delta_chain_changes); returns 0 to stop. */
typedef int (*delta_changes_fn)(void *ctx, const uint32_t *voxel, const uint16_t *material,
                                size_t n);
/**
 * Hand each record of a chain read by delta_chain_read to fn, oldest first (as
 * delta_changes gives it); *stopped = 1 when fn returned 0. Thread-safe.
 */
strata_status delta_chain_changes(const uint8_t *chain, uint64_t bytes, int depth, int edge,
                                  uint8_t *scratch, delta_changes_fn fn, void *ctx, int *stopped,
                                  strata_error *err);
/** Apply one record's changes to edge^3 voxels (indices checked). Thread-safe. */
strata_status delta_apply(const uint8_t *record, size_t length, int edge, uint8_t *scratch,
                          uint16_t *voxels, strata_error *err);
/**
 * Read a row's chain, newest record first, into out (appended), checking each record's
 * CRC-32 and that the chain is whole and in order: every record names this chunk and the
 * row's base, depths descend to 1, epochs descend, the lengths add up to delta_bytes, and
 * the oldest lies in delta_first. Errors name the chunk, the record and what is wrong.
 * Local (main thread: HDF5).
 */
strata_status delta_chain_read(store *s, const store_row *row, int edge, byte_buffer *out,
                               strata_error *err);
/**
 * delta_chain_read for many rows at once, with few reads (one store_read_many per
 * depth: the records of chains written by the same commits lie side by side). The chain
 * of rows[i] (NULL or no chain: skipped) goes to out + at[i], which has room for
 * delta_chain_bytes(rows[i]), laid out as delta_chain_read appends it; each record is
 * checked as by delta_chain_read. Local (main thread: HDF5).
 */
strata_status delta_chains_read(store *s, const store_row *const *rows, size_t n, int edge,
                                uint8_t *out, const uint64_t *at, strata_error *err);
/**
 * Check a row's chain sizes, read from disk, before they size anything: at most
 * DELTA_DEPTH_MAX records and no more bytes than that many records can take
 * (STRATA_ERR_CORRUPT naming the chunk key). delta_chain_read and delta_chains_read
 * check it first. Thread-safe.
 */
strata_status delta_chain_check(const store_row *row, int edge, strata_error *err);
/** Bytes delta_chain_read appends for a row's chain (its records and their lengths;
 *  delta_chain_check bounds them). */
static inline uint64_t delta_chain_bytes(const store_row *row)
{
    return (uint64_t)row->delta_bytes + sizeof(uint32_t) * row->delta_depth;
}
/** Apply a chain read by delta_chain_read (bytes from its start) to the base voxels, oldest
 *  record first. Thread-safe. */
strata_status delta_chain_apply(const uint8_t *chain, uint64_t bytes, int depth, int edge,
                                uint8_t *scratch, uint16_t *voxels, strata_error *err);

#endif
