/* codec.h: chunk payloads on disk: a pre-transform, then one standard zstd frame. */
#ifndef STRATA_CODEC_H
#define STRATA_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/** Payload codecs (the `codec` column of a chunk table row). */
enum {
    CODEC_UNIFORM = 0, /**< no payload: every voxel is the row's value */
    CODEC_SHUFFLE = 1, /**< zstd frame of the C^3 values byte-shuffled (all low bytes, then high) */
    CODEC_PALETTE = 2  /**< zstd frame of: uint16 count, count uint16 ids, bit-packed indices */
};

/** Most distinct values a CODEC_PALETTE payload can hold (8-bit indices). */
#define CODEC_PALETTE_MAX 256

/** Result of chunk_encode: codec, and for CODEC_UNIFORM the value. */
typedef struct {
    int codec;
    uint16_t uniform_value;
    size_t length; /**< payload bytes written to the output (0 for uniform) */
} chunk_encoding;

/** Upper bound of the payload size of an edge^3 chunk; 0 if edge is not a valid chunk edge. */
size_t chunk_encode_bound(int edge);
/**
 * Encode edge^3 voxels, choosing the codec (see the rule in codec.c). Uniform
 * chunks produce no payload. Thread-safe: scratch is caller memory; each thread
 * keeps its own zstd context (see chunk_codec_release_thread).
 * @param[in]  voxels     edge^3 values [z][y][x]
 * @param[in]  edge       chunk edge, a power of two in [16, 256]
 * @param[in]  zstd_level zstd compression level (0 = zstd's default, 3)
 * @param[in]  scratch    chunk_scratch_size(edge) bytes, aligned like malloc memory
 * @param[out] out        at least chunk_encode_bound(edge) bytes
 * @param[out] enc        codec, uniform value and payload length
 * @return STRATA_OK, STRATA_ERR_ARG (bad edge, NULL pointer), STRATA_ERR_NOMEM
 *         (no zstd context) or STRATA_ERR_CORRUPT (zstd failed)
 */
strata_status chunk_encode(const uint16_t *voxels, int edge, int zstd_level, void *scratch,
                           uint8_t *out, chunk_encoding *enc, strata_error *err);
/**
 * Encode edge^3 voxels with a given transform, whatever the rule would choose
 * (for benchmarks and tests). Never produces CODEC_UNIFORM.
 * @param[in] codec CODEC_SHUFFLE, or CODEC_PALETTE (STRATA_ERR_ARG if the chunk
 *                  holds more than CODEC_PALETTE_MAX distinct values)
 * Other parameters and results as chunk_encode.
 */
strata_status chunk_encode_as(const uint16_t *voxels, int edge, int zstd_level, int codec,
                              void *scratch, uint8_t *out, chunk_encoding *enc, strata_error *err);
/**
 * A CODEC_PALETTE chunk before its indices are expanded: `count` ascending ids
 * and one index per voxel, packed `bits` (1, 2, 4 or 8) to a byte, LSB first,
 * voxels in [z][y][x] order. `packed` leads into the scratch of the call
 * that filled it and is valid until that scratch is used again.
 */
typedef struct {
    int count, bits;
    uint16_t ids[CODEC_PALETTE_MAX];
    const uint8_t *packed;
} chunk_palette;

/**
 * The palette form chunk_encode just wrote in scratch (only after it returned
 * CODEC_PALETTE for this scratch). Lets the LOD build read 4-bit indices
 * instead of the voxels again.
 */
void chunk_encoded_palette(const void *scratch, int edge, chunk_palette *p);
/**
 * Decompress a CODEC_PALETTE payload into scratch without expanding it. The
 * frame, content size, palette count and order are checked as by
 * chunk_decode; the indices are not (chunk_expand_palette checks them, and
 * so does lod_summarize_palette: an index >= count is STRATA_ERR_CORRUPT).
 */
strata_status chunk_decode_palette(const uint8_t *payload, size_t length, int edge, void *scratch,
                                   chunk_palette *p, strata_error *err);
/** Expand a palette from chunk_decode_palette into edge^3 voxels (as chunk_decode). */
strata_status chunk_expand_palette(const chunk_palette *p, int edge, void *scratch,
                                   uint16_t *voxels, strata_error *err);
/** Scratch bytes chunk_encode and chunk_decode need for an edge^3 chunk (0 for a bad edge). */
size_t chunk_scratch_size(int edge);
/**
 * Decode a payload into edge^3 voxels; every malformed input (bad frame, wrong
 * content size, trailing bytes, palette count or order, palette index out of
 * range, unknown codec, CODEC_UNIFORM which has no payload) is
 * STRATA_ERR_CORRUPT, never a crash: nothing outside payload[0, length),
 * scratch and voxels is read or written.
 * @param[in]  payload  length bytes (may be NULL when length is 0)
 * @param[in]  codec    the row's codec
 * @param[in]  edge     chunk edge, a power of two in [16, 256]
 * @param[in]  scratch  chunk_scratch_size(edge) bytes, aligned like malloc memory
 * @param[out] voxels   edge^3 values [z][y][x] (contents unspecified on failure)
 * @return STRATA_OK, STRATA_ERR_CORRUPT, STRATA_ERR_ARG (bad edge, NULL pointer)
 *         or STRATA_ERR_NOMEM (no zstd context)
 */
strata_status chunk_decode(const uint8_t *payload, size_t length, int codec, int edge,
                           void *scratch, uint16_t *voxels, strata_error *err);
/** A reusable byte buffer for chunk_recompress (free data with free()). */
typedef struct {
    uint8_t *data;
    size_t capacity;
} codec_buffer;

/**
 * Compress a payload's content again at zstd `level` (compaction: the same
 * content, denser frame; docs/benchmarks.md, "What a world's bytes are"). The
 * frame must record its content size (every chunk and pyramid payload does); its
 * checksum is verified. The new frame (content size and checksum recorded, like
 * every payload) is written to frame[] over the old one when it is smaller;
 * otherwise frame[] is left as it was. Local; thread-safe.
 * @param[in,out] frame   *length bytes of one zstd frame
 * @param[in,out] length  its bytes, the new frame's on return
 * @param[in,out] content, out scratch buffers, grown as needed
 * @return STRATA_OK, STRATA_ERR_CORRUPT (not a whole frame of known size) or STRATA_ERR_NOMEM
 */
strata_status chunk_recompress(uint8_t *frame, uint32_t *length, int level, codec_buffer *content,
                               codec_buffer *out, strata_error *err);
/** The compression levels zstd accepts: [*low, *high] (negative levels are fast modes). */
void chunk_zstd_levels(int *low, int *high);
/** Free the calling thread's zstd contexts (they are recreated on next use). */
void chunk_codec_release_thread(void);
/** True when all count voxels equal voxels[0] (count 0 is uniform). */
int chunk_is_uniform(const uint16_t *voxels, size_t count);
/** One zstd frame (content size and checksum recorded) of content into out. Thread-safe
 *  (the calling thread's context). */
strata_status codec_compress_frame(const uint8_t *content, size_t size, int level, uint8_t *out,
                                   size_t capacity, size_t *length, strata_error *err);
/** Decompress exactly one frame filling payload[0, length) whose recorded content size lies
 *  in [min_size, max_size] into content; *size gets it. STRATA_ERR_CORRUPT otherwise. */
strata_status codec_decompress_frame(const uint8_t *payload, size_t length, size_t min_size,
                                     size_t max_size, uint8_t *content, size_t *size,
                                     strata_error *err);
/** CRC-32 (zlib's) continuing from crc (start with 0). */
uint32_t checksum_update(uint32_t crc, const void *data, size_t length);

#endif
