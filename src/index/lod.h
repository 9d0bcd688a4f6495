/* lod.h: per-chunk LOD: the histogram summary and the pyramid of blocks below the chunk.
 *
 * Level l (1 <= l <= log2(C)) cuts a chunk into (C >> l)^3 cells of 2^l voxels per
 * axis, aligned to the chunk (so to the world's 2^l grid, since C is a power of
 * two). Each cell keeps the exact mode of its voxels inside the world (ties to
 * the smallest id) and that mode's count. They are computed bottom-up from
 * sparse per-cell histograms (exact merges, never a mode of modes), with a fast
 * path for uniform sub-blocks.
 *
 * Pyramid payload (stored after the chunk payload in a segment's /payload; the
 * row's lod_* fields point at it): one standard zstd frame (content size and
 * checksum recorded) of a 16-byte header ("SLOD", version 2, levels, 0, H,
 * extent - 1 per axis, 0), the chunk histogram (uint16 material[H], uint32
 * count[H]) and the levels top-down, each listing only the children of the
 * mixed cells above it: a mixed bitmap, modes as histogram indices (4, 8 or 16
 * bits by H; version 1, still read, stored materials as byte planes), and the
 * mixed cells' counts in ceil(3l/8) byte planes. Cells under a homogeneous
 * parent are derived. docs/index.md has the exact layout and a Python reader.
 * Chunks with a single material inside the world have no pyramid payload
 * (lod_length 0): every cell is that material.
 */
#ifndef STRATA_LOD_H
#define STRATA_LOD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LOD_MAGIC   "SLOD"
#define LOD_VERSION 3 /* 1 and 2 are still read */
/** A pyramid frame's content holding the pyramids of many chunks (format 3). */
#define LOD_PACK_MAGIC "SLPK"
/** The same pack written column by column (format 3, issue 18): what compaction
 * writes; read by expanding it to the SLPK layout (docs/index.md). */
#define LOD_CPACK_MAGIC "SLPC"
/** Lowest pyramid level a version-3 payload stores (cells of 2^4 = 16 voxels per
 * axis, or the chunk when it is smaller): the finer levels are derived from the
 * chunk's payload when a query needs them (docs/index.md, issue 18). */
#define LOD_STORED_LOWEST 4
/** Pyramid entries a compaction packs into one frame, and the content bytes it
 * aims at (docs/index.md, "Pyramid packs"). */
#define LOD_PACK_ENTRIES 4096
#define LOD_PACK_BYTES   ((size_t)256 << 10)
#define LOD_MAX_LEVELS   8
/** zstd level of pyramid payloads (docs/index.md: against level 1, a pyramid's
 * encode takes about a third fewer instructions for about 17% more bytes). */
#define LOD_ZSTD_LEVEL -1

/** One entry of a sparse histogram (histograms ascend by material). */
typedef struct {
    uint16_t material;
    uint64_t count;
} lod_count;

/** qsort order of lod_count by material (histograms ascend by material). */
int lod_count_compare(const void *a, const void *b);

/** Decoded pyramid of one chunk: levels 1..levels, cells [z][y][x] per level. */
typedef struct {
    int edge, levels;
    int lowest; /**< levels lowest..levels hold cells; finer levels are not filled (a stored
                     version-3 payload keeps levels >= lod_stored_lowest(edge) only) */
    size_t offset[LOD_MAX_LEVELS + 2]; /**< first cell of level l; offset[levels+1] = total */
    uint16_t *mode;
    uint32_t *count;
} lod_pyramid;

/** Scratch for building pyramids: one per thread. Opaque. */
typedef struct lod_work lod_work;

/** Allocate scratch for chunks of this edge. Local. */
strata_status lod_work_create(int edge, lod_work **out, strata_error *err);
void lod_work_free(lod_work *wk);

/**
 * Build the pyramid and histogram of a chunk. Local.
 * @param[in]  voxels  edge^3 values [z][y][x]
 * @param[in]  extent  voxels of the chunk inside the world along x, y, z (1..edge)
 * @param[out] pyr     pyramid held by wk (valid until the next build)
 * @param[out] hist    histogram held by wk, ascending material; *hist_n entries
 */
strata_status lod_build(lod_work *wk, const uint16_t *voxels, const int extent[3],
                        const lod_pyramid **pyr, const lod_count **hist, size_t *hist_n,
                        strata_error *err);
/**
 * Whether lod_summarize_palette serves a chunk of `count` palette ids with this
 * extent (whole chunks of edge 16 or 32, at most 16 ids, SSE2).
 */
int lod_can_summarize_palette(const lod_work *wk, int count, const int extent[3]);
/**
 * The histogram of a whole chunk given as its palette (count ascending ids) and
 * one index per voxel packed `bits` (1, 2 or 4) to a byte, LSB first, [z][y][x]
 * (the codec's palette form), without the voxels; the pyramid is kept in wk for
 * lod_encode only, which then writes the same payload as after lod_build. An
 * index >= count is STRATA_ERR_CORRUPT. Local.
 * @param[out] hist held by wk, ascending material; *hist_n entries
 */
strata_status lod_summarize_palette(lod_work *wk, const uint16_t *ids, int count, int bits,
                                    const uint8_t *packed, const lod_count **hist, size_t *hist_n,
                                    strata_error *err);
/**
 * The change path: the summary of a whole chunk given as its stored image (a
 * palette form as lod_summarize_palette takes, or with packed NULL the single id
 * ids[0]) and changes applied to it in order, without its voxels (a commit's delta
 * record, issue 17). Only the stored levels (>= lod_stored_lowest) are built: for
 * lod_encode_levels at that lowest level, which then writes the same payload as
 * after lod_build of the changed voxels. Serves what lod_can_summarize_palette
 * serves (and 1, 2 or 4-bit indices). Local.
 * lod_lanes_begin: *served = 0 when not served (nothing to finish); an index >=
 * count is STRATA_ERR_CORRUPT.
 * lod_lanes_apply and lod_lanes_log (entries as delta_log_entry: voxel << 40,
 * material in the low 16 bits): voxel i becomes material i, in order; 0 when
 * the build is abandoned (a 17th material, a voxel outside the chunk): the
 * caller summarises the voxels instead.
 * lod_lanes_end: the histogram (held by wk, ascending material).
 */
strata_status lod_lanes_begin(lod_work *wk, const uint16_t *ids, int count, int bits,
                              const uint8_t *packed, const int extent[3], int *served,
                              strata_error *err);
int lod_lanes_apply(lod_work *wk, const uint32_t *voxel, const uint16_t *material, size_t n);
int lod_lanes_log(lod_work *wk, const uint64_t *log, size_t n);
strata_status lod_lanes_end(lod_work *wk, const lod_count **hist, size_t *hist_n,
                            strata_error *err);
/**
 * Encode the last build of wk as a pyramid payload (zstd level `level`). Local.
 * @param[out] payload held by wk; *length bytes
 */
strata_status lod_encode(lod_work *wk, int level, const uint8_t **payload, size_t *length,
                         strata_error *err);
/** The lowest level a stored pyramid of this edge keeps. */
static inline int lod_stored_lowest(int edge)
{
    int l = 0;
    while ((1 << l) < edge)
        l++;
    return l < LOD_STORED_LOWEST ? l : LOD_STORED_LOWEST;
}
/**
 * Encode the last build of wk keeping levels lowest..log2(edge) only (version 3).
 * lod_encode keeps every level. Local.
 */
strata_status lod_encode_levels(lod_work *wk, int level, int lowest, const uint8_t **payload,
                                size_t *length, strata_error *err);
/**
 * Decode a pyramid payload; every malformed input is STRATA_ERR_CORRUPT. Local.
 * @param[out] pyr  allocated (free with lod_pyramid_free)
 * @param[out] hist malloc'ed histogram (may be NULL if not wanted)
 */
strata_status lod_decode(const uint8_t *payload, size_t length, int edge, lod_pyramid *pyr,
                         lod_count **hist, size_t *hist_n, strata_error *err);
/**
 * The chunk histogram of a pyramid payload, without building the pyramid (the
 * octree needs only this): the frame, header and histogram are checked as by
 * lod_decode. Local.
 * @param[out] hist malloc'ed, ascending material; *hist_n entries
 */
strata_status lod_decode_histogram(const uint8_t *payload, size_t length, int edge,
                                   lod_count **hist, size_t *hist_n, strata_error *err);
/**
 * The content of a pyramid frame (one zstd frame recording its content size),
 * checked: either one pyramid ("SLOD") or a pack of many ("SLPK": u32 n, u64
 * key[n] strictly ascending, u32 end[n] ascending, then the entries, entry i
 * being bytes [end[i-1], end[i]) after the directory). Every malformed frame is
 * STRATA_ERR_CORRUPT. Local.
 * @param[out] content malloc'ed; *size bytes
 */
strata_status lod_frame_content(const uint8_t *frame, size_t length, int edge, uint8_t **content,
                                size_t *size, strata_error *err);
/**
 * The pyramid of chunk `key` in a frame's content (checked by lod_frame_content):
 * the whole content of a one-pyramid frame, the key's entry of a pack (a pack
 * without it is STRATA_ERR_CORRUPT). Local.
 */
strata_status lod_content_entry(const uint8_t *content, size_t size, uint64_t key,
                                const uint8_t **entry, size_t *entry_size, strata_error *err);
/**
 * Decode one pyramid (an entry, not compressed): as lod_decode. Local.
 * @param[out] pyr may be NULL (histogram only)
 */
strata_status lod_parse(const uint8_t *entry, size_t size, int edge, lod_pyramid *pyr,
                        lod_count **hist, size_t *hist_n, strata_error *err);
/**
 * Decode the pyramid of chunk `key` from a frame (one pyramid or a pack). Local.
 * @param[out] pyr may be NULL (histogram only)
 */
strata_status lod_decode_key(const uint8_t *frame, size_t length, int edge, uint64_t key,
                             lod_pyramid *pyr, lod_count **hist, size_t *hist_n, strata_error *err);
/**
 * An entry cut to levels >= lowest (version 3), for a pack: a version-2 or -3
 * entry keeping finer levels is cut to its prefix; any other is copied whole.
 * The entry is checked (lod_parse). Local.
 * @param[out] out malloc'ed; *out_size bytes
 */
strata_status lod_entry_cut(const uint8_t *entry, size_t size, int edge, int lowest, uint8_t **out,
                            size_t *out_size, strata_error *err);
/**
 * Pack n entries of ascending keys into one frame (zstd level `level`). Local.
 * @param[out] frame malloc'ed; *length bytes
 */
strata_status lod_pack(const uint64_t *keys, const uint8_t *const *entries, const size_t *sizes,
                       size_t n, int level, uint8_t **frame, size_t *length, strata_error *err);
/** Allocate an empty pyramid for edge (cells zero). */
strata_status lod_pyramid_alloc(int edge, lod_pyramid *pyr, strata_error *err);
void lod_pyramid_free(lod_pyramid *pyr);
/** Bytes of a decoded pyramid of this edge. */
size_t lod_pyramid_bytes(int edge);
/** Index of cell (cx, cy, cz) of level l (1..levels). */
static inline size_t lod_cell_index(const lod_pyramid *p, int l, uint32_t cx, uint32_t cy,
                                    uint32_t cz)
{
    size_t n = (size_t)p->edge >> l;
    return p->offset[l] + ((size_t)cz * n + cy) * n + cx;
}

/** Dominant (most frequent, ties to smallest id) entry of a histogram; n > 0. */
void lod_dominant(const lod_count *hist, size_t n, uint16_t *material, uint64_t *count);

/** Voxels inside the world of the aligned block of 2^bits voxels at block coordinates c. */
uint64_t lod_block_voxels(const int64_t dims[3], int bits, const uint64_t c[3]);

#endif
