/* lod.c: exact per-chunk pyramids from bottom-up sparse histogram merges.
 *
 * Why sparse histograms and not modes: the mode of a block is not the mode of
 * its children's modes (two children 5:3 sand, two 5:3 clay and four 4:4 ties
 * decide nothing), so every cell keeps its (material, count) list and a parent
 * merges its eight children's lists. A cell whose children are all one material
 * is merged in O(8) (the fast path that makes terrain cheap: most cells of a
 * layered world are uniform); mixed cells go through a counting array indexed
 * by material, reset through the list of ids it touched.
 */
#include "index/lod.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "alloc.h"

#ifdef __SSE2__
/* A cell's counts in the dense path: lanes 0-7 and 8-15, one uint16 per lane. */
enum { DENSE_LANES = 16, NO_LANE = 0xff, DENSE_MAX_EDGE = 32, DENSE_MAX_LEVEL = 5 };
/* Cells of the stored levels of a chunk of edge <= DENSE_MAX_EDGE (8 + 1 at edge 32). */
enum { LANE_CELLS = 16 };
typedef struct {
    __m128i lo, hi;
} dense_counts;
#endif

struct lod_work {
    int edge, levels;
    lod_pyramid pyr;
    /* Per pyramid cell (same indexing as pyr): 0 = homogeneous (count equals the
     * cell's voxels inside the world; the histogram is (mode, count), or empty
     * when the cell is outside), else the number of histogram entries of a mixed
     * cell, stored from hstart[cell] in the pool of the cell's level parity. */
    uint32_t *hlen, *hstart;
    uint32_t *mixed_counts; /* lod_encode: the counts of one level's mixed cells */
    uint16_t *mat[2];
    uint32_t *cnt[2];
    size_t cap[2];
    size_t pool_used;  /* entries of the last level built, in its pool */
    uint32_t *counts;  /* 65536, zero between uses */
    uint16_t *touched; /* 65536 */
    lod_count *hist;
    size_t hist_n;
    int extent[3];
    uint8_t *raw, *out;
    size_t raw_cap, out_cap;
    ZSTD_CCtx *cctx;
    int cctx_level; /* compression level the context is set to (INT_MIN: none yet) */
#ifdef __SSE2__
    /* Dense path (see dense_build): per cell, one uint16 count per lane. */
    dense_counts *dense;
    dense_counts whole[DENSE_MAX_LEVEL][DENSE_LANES]; /* 8^l in one lane, per level l-1 */
    uint8_t *lane_of; /* 65536: lane of a material in this build, or NO_LANE */
    /* Palette path (lod_summarize_palette): lanes are palette indices. */
    uint8_t *lmode, *lmixed;   /* per cell: mode lane, 1 if mixed */
    uint8_t *nibbles;          /* edge^3 / 2: indices of 1 or 2 bits widened to 4 */
    uint64_t nibble_pair[256]; /* a byte of two 4-bit lanes as one count in each lane's field */
    uint16_t widen2[256];      /* four 2-bit indices as four nibbles (little-endian bytes) */
    uint32_t widen1[256];      /* eight 1-bit indices as eight nibbles */
    uint8_t lane_rank[DENSE_LANES];
    int lane_space; /* the last build was by lanes: lod_encode reads lmode and lmixed */
    uint16_t lane_material[DENSE_LANES];
    int lanes;
    /* Change path (lod_lanes_*): per cell of the stored levels, one count per lane
     * (lanes in order of appearance, not by material); nibbles hold the voxels. */
    uint32_t lane_cells[LANE_CELLS][DENSE_LANES];
    int lane_build; /* lod_lanes_begin succeeded and no change failed since */
    /* After a uniform image: the 16-voxel words of nibbles written so far (the others
     * are lane 0, zeroed when a change first reaches them instead of all at begin). */
    uint64_t lane_words[DENSE_MAX_EDGE * DENSE_MAX_EDGE * DENSE_MAX_EDGE / 16 / 64];
    int lane_lazy;
#endif
};

static _Thread_local ZSTD_DCtx *thread_dctx;

static int edge_bits(int edge)
{
    int b = 0;
    while ((1 << b) < edge)
        b++;
    return (1 << b) == edge && b >= 1 && b <= LOD_MAX_LEVELS ? b : -1;
}

static void pyramid_layout(int edge, lod_pyramid *p)
{
    p->edge = edge;
    p->levels = edge_bits(edge);
    p->lowest = 1;
    size_t total = 0;
    p->offset[0] = 0;
    for (int l = 1; l <= p->levels; l++) {
        size_t n = (size_t)edge >> l;
        p->offset[l] = total;
        total += n * n * n;
    }
    p->offset[p->levels + 1] = total;
}

size_t lod_pyramid_bytes(int edge)
{
    lod_pyramid p;
    if (edge_bits(edge) < 0)
        return 0;
    pyramid_layout(edge, &p);
    return p.offset[p.levels + 1] * (sizeof(uint16_t) + sizeof(uint32_t));
}

strata_status lod_pyramid_alloc(int edge, lod_pyramid *p, strata_error *err)
{
    memset(p, 0, sizeof *p);
    if (edge_bits(edge) < 0)
        return error_set(err, STRATA_ERR_ARG, "LOD pyramid: bad chunk edge %d", edge);
    pyramid_layout(edge, p);
    size_t cells = p->offset[p->levels + 1];
    p->mode = strata_calloc(cells, sizeof *p->mode);
    p->count = strata_calloc(cells, sizeof *p->count);
    if (!p->mode || !p->count) {
        lod_pyramid_free(p);
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a LOD pyramid of %zu cells",
                         cells);
    }
    return STRATA_OK;
}

void lod_pyramid_free(lod_pyramid *p)
{
    free(p->mode);
    free(p->count);
    memset(p, 0, sizeof *p); /* holds nothing: freeing it again is harmless */
}

void lod_work_free(lod_work *wk)
{
    if (!wk)
        return;
    lod_pyramid_free(&wk->pyr);
    free(wk->hlen);
    free(wk->hstart);
    free(wk->mixed_counts);
    for (int i = 0; i < 2; i++) {
        free(wk->mat[i]);
        free(wk->cnt[i]);
    }
    free(wk->counts);
    free(wk->touched);
    free(wk->hist);
    free(wk->raw);
    free(wk->out);
    ZSTD_freeCCtx(wk->cctx);
#ifdef __SSE2__
    free(wk->dense);
    free(wk->lane_of);
    free(wk->lmode);
    free(wk->lmixed);
    free(wk->nibbles);
#endif
    free(wk);
}

strata_status lod_work_create(int edge, lod_work **out, strata_error *err)
{
    *out = NULL;
    lod_work *wk = strata_calloc(1, sizeof *wk);
    if (!wk)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate LOD scratch");
    strata_status st = lod_pyramid_alloc(edge, &wk->pyr, err);
    if (st) {
        free(wk);
        return st;
    }
    wk->edge = edge;
    wk->levels = wk->pyr.levels;
    size_t cells = wk->pyr.offset[wk->levels + 1];
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        wk->cap[i] = cells;
        wk->mat[i] = strata_malloc(wk->cap[i] * sizeof(uint16_t));
        wk->cnt[i] = strata_malloc(wk->cap[i] * sizeof(uint32_t));
        ok = ok && wk->mat[i] && wk->cnt[i];
    }
    wk->hlen = strata_malloc(cells * sizeof *wk->hlen);
    wk->hstart = strata_malloc(cells * sizeof *wk->hstart);
    wk->mixed_counts = strata_malloc(cells * sizeof *wk->mixed_counts);
    wk->counts = strata_calloc(65536, sizeof *wk->counts);
    wk->touched = strata_malloc(65536 * sizeof *wk->touched);
    wk->hist = strata_malloc(65536 * sizeof *wk->hist);
    wk->cctx = ZSTD_createCCtx();
    wk->cctx_level = INT_MIN;
    if (wk->cctx) {
        /* parameters that never change, set once: the frame records its content size and checksum
         */
        ok = ok && !ZSTD_isError(ZSTD_CCtx_setParameter(wk->cctx, ZSTD_c_checksumFlag, 1)) &&
             !ZSTD_isError(ZSTD_CCtx_setParameter(wk->cctx, ZSTD_c_contentSizeFlag, 1));
    }
#ifdef __SSE2__
    /* the dense path serves edges up to 32 (a cell's count fits 16 bits) */
    if (edge >= 8 && edge <= DENSE_MAX_EDGE) {
        wk->dense = strata_malloc(cells * sizeof *wk->dense);
        wk->lane_of = strata_malloc(65536);
        wk->lmode = strata_malloc(cells);
        wk->lmixed = strata_malloc(cells);
        wk->nibbles = strata_malloc((size_t)edge * (size_t)edge * (size_t)edge / 2);
        ok = ok && wk->dense && wk->lane_of && wk->lmode && wk->lmixed && wk->nibbles;
        for (unsigned b = 0; b < 256; b++) {
            wk->nibble_pair[b] = ((uint64_t)1 << (4 * (b & 15))) + ((uint64_t)1 << (4 * (b >> 4)));
            uint8_t two[2], four[4];
            for (unsigned k = 0; k < 2; k++)
                two[k] = (uint8_t)((b >> (4 * k) & 3) | (b >> (4 * k + 2) & 3) << 4);
            for (unsigned k = 0; k < 4; k++)
                four[k] = (uint8_t)((b >> (2 * k) & 1) | (b >> (2 * k + 1) & 1) << 4);
            memcpy(&wk->widen2[b], two, 2);
            memcpy(&wk->widen1[b], four, 4);
        }
        if (wk->lane_of)
            memset(wk->lane_of, NO_LANE, 65536);
        for (int l = 0; l < DENSE_LANES; l++)
            for (int k = 0; k < DENSE_MAX_LEVEL; k++) {
                uint16_t lane[DENSE_LANES] = {0};
                lane[l] = (uint16_t)(1u << (3 * (k + 1)));
                wk->whole[k][l] =
                    (dense_counts){_mm_loadu_si128((const __m128i *)(const void *)lane),
                                   _mm_loadu_si128((const __m128i *)(const void *)(lane + 8))};
            }
    }
#endif
    if (!ok || !wk->hlen || !wk->hstart || !wk->mixed_counts || !wk->counts || !wk->touched ||
        !wk->hist || !wk->cctx) {
        lod_work_free(wk);
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate LOD scratch for edge %d", edge);
    }
    *out = wk;
    return STRATA_OK;
}

/* Make room for `more` entries in pool p holding `used`. */
static int pool_reserve(lod_work *wk, int p, size_t used, size_t more)
{
    if (used + more <= wk->cap[p])
        return 1;
    size_t cap = (used + more) * 2;
    uint16_t *m = strata_realloc(wk->mat[p], cap * sizeof *m);
    if (!m)
        return 0;
    wk->mat[p] = m;
    uint32_t *c = strata_realloc(wk->cnt[p], cap * sizeof *c);
    if (!c)
        return 0;
    wk->cnt[p] = c;
    wk->cap[p] = cap;
    return 1;
}

/* Emit the counting array's touched entries as the histogram of a cell (pool p
 * at *used; a single entry makes the cell homogeneous) and set its mode. */
static void flush_counts(lod_work *wk, int p, size_t *used, size_t touched, size_t cell)
{
    uint16_t best = 0;
    uint32_t best_count = 0;
    size_t at = *used;
    for (size_t i = 0; i < touched; i++) {
        uint16_t m = wk->touched[i];
        uint32_t c = wk->counts[m];
        wk->counts[m] = 0;
        wk->mat[p][at + i] = m;
        wk->cnt[p][at + i] = c;
        if (c > best_count || (c == best_count && m < best))
            best = m, best_count = c;
    }
    wk->pyr.mode[cell] = best;
    wk->pyr.count[cell] = best_count;
    if (touched > 1) {
        wk->hstart[cell] = (uint32_t)at;
        wk->hlen[cell] = (uint32_t)touched;
        *used = at + touched;
    } else {
        wk->hlen[cell] = 0;
    }
}

/* Offset of child d = dx + 2 dy + 4 dz from a parent's first child, in a grid of edge n. */
static inline size_t child_step(size_t n, int d)
{
    return (size_t)(d & 1) + (size_t)(d >> 1 & 1) * n + (size_t)(d >> 2) * n * n;
}

#ifdef __SSE2__
/* 16-bit lanes set in a byte movemask (two bits per lane), without POPCNT (not baseline). */
static inline unsigned lanes_set(unsigned m)
{
    unsigned x = m & 0x5555;
    x = (x & 0x3333) + (x >> 2 & 0x3333);
    x = (x + (x >> 4)) & 0x0f0f;
    return (x + (x >> 8)) & 0x1f;
}
#endif

#ifdef __SSE2__
/* Four neighbouring 2x2x2 blocks of a grid, rows r0 (y, z), r1 (y + 1), r2 (z + 1)
 * and r3 (both) from each block's first column: all lanes of a block's pair of
 * 16-bit lanes are set when its eight values are equal (a movemask gives 4 bits
 * per block). The uniform fast path of build_level1 and dense_level. */
static inline __m128i equal_blocks4(const uint16_t *r0, const uint16_t *r1, const uint16_t *r2,
                                    const uint16_t *r3)
{
    const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)r0);
    const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)r1);
    const __m128i c = _mm_loadu_si128((const __m128i *)(const void *)r2);
    const __m128i d = _mm_loadu_si128((const __m128i *)(const void *)r3);
    const __m128i swapped = _mm_shufflehi_epi16(_mm_shufflelo_epi16(a, 0xb1), 0xb1);
    const __m128i eq = _mm_and_si128(_mm_cmpeq_epi16(a, b), _mm_cmpeq_epi16(a, c));
    return _mm_and_si128(eq, _mm_and_si128(_mm_cmpeq_epi16(a, d), _mm_cmpeq_epi16(a, swapped)));
}
#endif

/* The histogram of the eight voxels of a mixed level-1 cell wholly inside the
 * world, written at the end of pool 1 (room for 8 reserved by the caller). With
 * SSE2 each distinct value is counted by one compare of all eight lanes. */
static void mixed_cell8(lod_work *wk, const uint16_t q[8], size_t *used, size_t cell)
{
    uint16_t *mat = wk->mat[1] + *used;
    uint32_t *cnt = wk->cnt[1] + *used;
    uint16_t best = 0;
    uint32_t best_count = 0;
    size_t t = 0;
#ifdef __SSE2__
    const __m128i all = _mm_loadu_si128((const __m128i *)(const void *)q);
    unsigned seen = 0; /* two bits per lane already counted */
    for (int i = 0; i < 8; i++) {
        if (seen >> (2 * i) & 1)
            continue;
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi16(all, _mm_set1_epi16((short)q[i])));
        seen |= m;
        const uint32_t c = lanes_set(m);
#else
    for (int i = 0; i < 8; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = q[j] == q[i];
        if (dup)
            continue;
        uint32_t c = 1;
        for (int j = i + 1; j < 8; j++)
            c += q[j] == q[i];
#endif
        mat[t] = q[i];
        cnt[t++] = c;
        if (c > best_count || (c == best_count && q[i] < best))
            best = q[i], best_count = c;
    }
    wk->pyr.mode[cell] = best;
    wk->pyr.count[cell] = best_count;
    wk->hstart[cell] = (uint32_t)*used;
    wk->hlen[cell] = (uint32_t)t;
    *used += t;
}

/* Level 1: cells of 2x2x2 voxels, only voxels inside extent counted. Cells
 * wholly inside whose eight voxels are equal (most of any layered world) are
 * found four at a time (SSE2: four 8-lane compares); mixed ones get their
 * eight-voxel histogram; cells cut by the world's edge count through the
 * counting array. */
static int build_level1(lod_work *wk, const uint16_t *v, const int ext[3])
{
    const size_t C = (size_t)wk->edge, n = C / 2;
    const size_t o1 = wk->pyr.offset[1];
    uint16_t *mode = wk->pyr.mode + o1;
    uint32_t *mode_count = wk->pyr.count + o1;
    uint32_t *hlen = wk->hlen + o1;
    /* cells wholly inside the extent along each axis */
    const size_t inx = (size_t)ext[0] / 2, iny = (size_t)ext[1] / 2, inz = (size_t)ext[2] / 2;
    /* a mixed cell lists at most 8 entries: reserve for all at once */
    if (!pool_reserve(wk, 1, 0, 8 * n * n * n))
        return 0;
    size_t used = 0, cell = 0;
    for (size_t cz = 0; cz < n; cz++)
        for (size_t cy = 0; cy < n; cy++) {
            const uint16_t *r0 = v + (2 * cz * C + 2 * cy) * C, *r1 = r0 + C, *r2 = r0 + C * C,
                           *r3 = r2 + C;
            const size_t fast = cz < inz && cy < iny ? inx : 0;
            size_t cx = 0;
#ifdef __SSE2__
            for (; cx + 4 <= fast; cx += 4) {
                const unsigned m = (unsigned)_mm_movemask_epi8(
                    equal_blocks4(r0 + 2 * cx, r1 + 2 * cx, r2 + 2 * cx, r3 + 2 * cx));
                for (size_t j = 0; j < 4; j++, cell++) {
                    const size_t x = cx + j;
                    if ((m >> (4 * j) & 0xf) == 0xf) {
                        mode[cell] = r0[2 * x];
                        mode_count[cell] = 8;
                        hlen[cell] = 0;
                    } else {
                        const uint16_t q[8] = {r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1],
                                               r2[2 * x], r2[2 * x + 1], r3[2 * x], r3[2 * x + 1]};
                        mixed_cell8(wk, q, &used, o1 + cell);
                    }
                }
            }
#endif
            for (; cx < fast; cx++, cell++) {
                const uint16_t q[8] = {r0[2 * cx], r0[2 * cx + 1], r1[2 * cx], r1[2 * cx + 1],
                                       r2[2 * cx], r2[2 * cx + 1], r3[2 * cx], r3[2 * cx + 1]};
                if (q[0] == q[1] && q[0] == q[2] && q[0] == q[3] && q[0] == q[4] && q[0] == q[5] &&
                    q[0] == q[6] && q[0] == q[7]) {
                    mode[cell] = q[0];
                    mode_count[cell] = 8;
                    hlen[cell] = 0;
                } else {
                    mixed_cell8(wk, q, &used, o1 + cell);
                }
            }
            for (; cx < n; cx++, cell++) {
                size_t t = 0;
                for (size_t dz = 0; dz < 2; dz++)
                    for (size_t dy = 0; dy < 2; dy++)
                        for (size_t dx = 0; dx < 2; dx++) {
                            if ((int)(2 * cx + dx) >= ext[0] || (int)(2 * cy + dy) >= ext[1] ||
                                (int)(2 * cz + dz) >= ext[2])
                                continue;
                            uint16_t m = r0[2 * cx + dx + dy * C + dz * C * C];
                            if (wk->counts[m]++ == 0)
                                wk->touched[t++] = m;
                        }
                flush_counts(wk, 1, &used, t, o1 + cell);
            }
        }
    wk->pool_used = used;
    return 1;
}

/* Level l + 1 from level l: a parent whose non-empty children are homogeneous
 * in one material is homogeneous (eight compares); the others merge their
 * children's histograms exactly. */
static int build_level_up(lod_work *wk, int l)
{
    const int from = l & 1, to = (l + 1) & 1;
    const size_t n = (size_t)wk->edge >> l, np = n / 2;
    const size_t fo = wk->pyr.offset[l], po = wk->pyr.offset[l + 1];
    const uint16_t *cm = wk->pyr.mode + fo;
    const uint32_t *cc = wk->pyr.count + fo, *cl = wk->hlen + fo, *cs = wk->hstart + fo;
    const uint16_t *fm = wk->mat[from];
    const uint32_t *fc = wk->cnt[from];
    const int full =
        wk->extent[0] == wk->edge && wk->extent[1] == wk->edge && wk->extent[2] == wk->edge;
    /* A parent lists at most the entries of its children (a homogeneous child
     * counts one): reserve for the whole level at once. */
    if (!pool_reserve(wk, to, 0, wk->pool_used + n * n * n))
        return 0;
    size_t used = 0, cell = po;
    for (size_t pz = 0; pz < np; pz++)
        for (size_t py = 0; py < np; py++)
            for (size_t px = 0; px < np; px++, cell++) {
                size_t base = ((2 * pz) * n + 2 * py) * n + 2 * px;
                const size_t child[8] = {
                    base,         base + 1,         base + n,         base + n + 1,
                    base + n * n, base + n * n + 1, base + n * n + n, base + n * n + n + 1};
                uint32_t mixed = 0, sum = 0;
                int seen = 0, same = 1;
                uint16_t a = 0;
                if (full) {
                    a = cm[base];
                    for (int k = 0; k < 8; k++)
                        mixed |= cl[child[k]] | (uint32_t)(cm[child[k]] != a);
                    sum = 8 * cc[base];
                } else {
                    for (int k = 0; k < 8; k++) {
                        size_t c = child[k];
                        mixed |= cl[c];
                        if (cc[c]) {
                            same &= !seen || cm[c] == a;
                            a = cm[c], seen = 1, sum += cc[c];
                        }
                    }
                }
                if (!mixed && same) {
                    wk->pyr.mode[cell] = a;
                    wk->pyr.count[cell] = sum;
                    wk->hlen[cell] = 0;
                    continue;
                }
                size_t t = 0;
                for (int k = 0; k < 8; k++) {
                    size_t c = child[k];
                    if (!cl[c]) {
                        if (cc[c]) {
                            uint16_t m = cm[c];
                            if (wk->counts[m] == 0)
                                wk->touched[t++] = m;
                            wk->counts[m] += cc[c];
                        }
                        continue;
                    }
                    for (uint32_t e = cs[c]; e < cs[c] + cl[c]; e++) {
                        uint16_t m = fm[e];
                        if (wk->counts[m] == 0)
                            wk->touched[t++] = m;
                        wk->counts[m] += fc[e];
                    }
                }
                flush_counts(wk, to, &used, t, cell);
            }
    wk->pool_used = used;
    return 1;
}

#ifdef __SSE2__
/*
 * The dense path, for whole chunks of edge <= 32 with at most 16 materials
 * (nearly every terrain chunk): each cell keeps one 16-bit count per "lane",
 * a material of this chunk numbered in order of first appearance, in two SSE2
 * registers. A parent's counts are the sum of its eight children's (sixteen
 * vector adds, no per-material merge), and a mixed cell's mode is a horizontal
 * max. The counts are exact, so the result equals the sparse path's cell for
 * cell; a 17th material sends the chunk back to the sparse path.
 */

/* Lane of material m, assigning the next free one; -1 when all are taken. */
static inline int dense_lane(lod_work *wk, uint16_t m)
{
    int lane = wk->lane_of[m];
    if (lane != NO_LANE)
        return lane;
    if (wk->lanes == DENSE_LANES)
        return -1;
    lane = wk->lanes++;
    wk->lane_of[m] = (uint8_t)lane;
    wk->lane_material[lane] = m;
    return lane;
}

static void dense_reset(lod_work *wk)
{
    for (int l = 0; l < wk->lanes; l++)
        wk->lane_of[wk->lane_material[l]] = NO_LANE;
    wk->lanes = 0;
}

/* The lanes of c holding its largest count (bit 2k set for lane k) and that
 * count. Counts are at most 32768, compared as signed after flipping the top bit. */
static inline unsigned max_lanes(dense_counts c, uint32_t *count)
{
    const __m128i flip = _mm_set1_epi16((short)0x8000);
    const __m128i a = _mm_xor_si128(c.lo, flip), b = _mm_xor_si128(c.hi, flip);
    __m128i m = _mm_max_epi16(a, b);
    m = _mm_max_epi16(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_max_epi16(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm_max_epi16(m, _mm_shufflelo_epi16(m, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m128i top = _mm_shuffle_epi32(_mm_shufflelo_epi16(m, 0), 0);
    *count = ((uint32_t)_mm_cvtsi128_si32(m) & 0xffff) ^ 0x8000;
    return ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi16(a, top)) |
            (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi16(b, top)) << 16) &
           0x55555555u;
}

/* Mode (ties to the smallest id) and its count of a cell holding voxels. */
static inline void dense_mode(const lod_work *wk, dense_counts c, uint16_t *mode, uint32_t *count)
{
    unsigned lanes = max_lanes(c, count);
    uint16_t best = wk->lane_material[__builtin_ctz(lanes) / 2];
    for (lanes &= lanes - 1; lanes; lanes &= lanes - 1) {
        const uint16_t other = wk->lane_material[__builtin_ctz(lanes) / 2];
        if (other < best)
            best = other;
    }
    *mode = best;
}

static inline dense_counts dense_add(dense_counts a, dense_counts b)
{
    return (dense_counts){_mm_add_epi16(a.lo, b.lo), _mm_add_epi16(a.hi, b.hi)};
}

/* The counts of a level-1 cell kept in 4-bit fields of one word, one field per
 * lane (a count is at most 8): byte k holds lanes 2k (low nibble) and 2k + 1;
 * the nibbles are interleaved into one byte per lane, then widened to 16 bits. */
static inline dense_counts counts_of_fields(uint64_t fields)
{
    const __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)&fields);
    const __m128i low4 = _mm_set1_epi8(0x0f), zero = _mm_setzero_si128();
    const __m128i bytes =
        _mm_unpacklo_epi8(_mm_and_si128(x, low4), _mm_and_si128(_mm_srli_epi16(x, 4), low4));
    return (dense_counts){_mm_unpacklo_epi8(bytes, zero), _mm_unpackhi_epi8(bytes, zero)};
}

/* A mixed level-1 cell whose first voxel is r0 (rows n voxels apart): its eight
 * voxels counted in 4-bit fields of one word, one field per lane. */
static int dense_mixed8(lod_work *wk, const uint16_t *r0, size_t n, size_t at)
{
    const uint16_t q[8] = {r0[0],     r0[1],         r0[n],         r0[n + 1],
                           r0[n * n], r0[n * n + 1], r0[n * n + n], r0[n * n + n + 1]};
    uint64_t fields = 0;
    for (int i = 0; i < 8; i++) {
        const int lane = dense_lane(wk, q[i]);
        if (lane < 0)
            return 0;
        fields += (uint64_t)1 << (4 * lane);
    }
    const dense_counts s = counts_of_fields(fields);
    wk->dense[at] = s;
    dense_mode(wk, s, &wk->pyr.mode[at], &wk->pyr.count[at]);
    wk->hlen[at] = 1;
    return 1;
}

/* A mixed parent at level l >= 2 whose first child is `first` (children at
 * first + step[k]): the sum of its eight children's counts (a homogeneous
 * child's are its whole count in the lane of its mode), its mode and the count
 * of it. 0 when a 17th material appears. */
static int dense_mixed(lod_work *wk, int l, const uint16_t *cm, const uint32_t *cl,
                       const dense_counts *cd, size_t first, const size_t step[8], size_t at)
{
    const dense_counts *whole = wk->whole[l - 2]; /* children at level l - 1 */
    dense_counts s = {_mm_setzero_si128(), _mm_setzero_si128()};
    for (int k = 0; k < 8; k++) {
        const size_t c = first + step[k];
        if (cl[c]) {
            s = dense_add(s, cd[c]);
            continue;
        }
        const int lane = dense_lane(wk, cm[c]);
        if (lane < 0)
            return 0;
        s = dense_add(s, whole[lane]);
    }
    wk->dense[at] = s;
    dense_mode(wk, s, &wk->pyr.mode[at], &wk->pyr.count[at]);
    wk->hlen[at] = 1;
    return 1;
}

/* The mixed cell `cell` of level l whose first child is `first` in the grid below. */
static inline int dense_mixed_at(lod_work *wk, int l, const uint16_t *cm, const uint32_t *cl,
                                 const dense_counts *cd, size_t first, size_t n,
                                 const size_t step[8], size_t cell)
{
    const size_t at = wk->pyr.offset[l] + cell;
    return l > 1 ? dense_mixed(wk, l, cm, cl, cd, first, step, at)
                 : dense_mixed8(wk, cm + first, n, at);
}

/*
 * Level l from the grid below it (edge n): cm are the children's modes (the
 * voxels at level 1), cl their mixed flags (NULL at level 1), cd the counts of
 * the mixed ones. Homogeneous parents (eight equal homogeneous children) are
 * found four at a time with the compares of build_level1 and store no counts;
 * only mixed parents sum counts. 0 when a 17th material appears.
 */
static int dense_level(lod_work *wk, int l, const uint16_t *cm, const uint32_t *cl)
{
    const size_t n = (size_t)wk->edge >> (l - 1), np = n / 2;
    const size_t po = wk->pyr.offset[l];
    uint16_t *mode = wk->pyr.mode + po;
    uint32_t *count = wk->pyr.count + po, *hlen = wk->hlen + po;
    const dense_counts *cd = l > 1 ? wk->dense + wk->pyr.offset[l - 1] : NULL;
    const uint32_t whole = (uint32_t)1 << (3 * l);
    const __m128i whole4 = _mm_set1_epi32((int)whole), zero = _mm_setzero_si128();
    size_t step[8];
    for (int d = 0; d < 8; d++)
        step[d] = child_step(n, d);
    size_t cell = 0;
    for (size_t pz = 0; pz < np; pz++)
        for (size_t py = 0; py < np; py++) {
            const size_t row = (2 * pz * n + 2 * py) * n;
            const uint16_t *r0 = cm + row, *r1 = r0 + n, *r2 = r0 + n * n, *r3 = r2 + n;
            size_t px = 0;
            for (; px + 4 <= np; px += 4, cell += 4) {
                const size_t x = 2 * px;
                __m128i eq = equal_blocks4(r0 + x, r1 + x, r2 + x, r3 + x);
                if (cl) {
                    /* children's flags are 0 or 1: OR the four rows, pack to 16-bit lanes */
                    __m128i lo = zero, hi = zero;
                    const uint32_t *f[4] = {cl + row + x, cl + row + x + n, cl + row + x + n * n,
                                            cl + row + x + n * n + n};
                    for (int k = 0; k < 4; k++) {
                        lo = _mm_or_si128(lo, _mm_loadu_si128((const __m128i *)(const void *)f[k]));
                        hi = _mm_or_si128(
                            hi, _mm_loadu_si128((const __m128i *)(const void *)(f[k] + 4)));
                    }
                    eq = _mm_and_si128(eq, _mm_cmpeq_epi16(_mm_packs_epi32(lo, hi), zero));
                }
                const unsigned m = (unsigned)_mm_movemask_epi8(eq); /* 4 bits per parent */
                if (m == 0xffff) {
                    /* the even lanes of the first row are the four modes */
                    const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(r0 + x));
                    const __m128i even = _mm_srai_epi32(_mm_slli_epi32(a, 16), 16);
                    _mm_storel_epi64((__m128i *)(void *)(mode + cell), _mm_packs_epi32(even, even));
                    _mm_storeu_si128((__m128i *)(void *)(count + cell), whole4);
                    _mm_storeu_si128((__m128i *)(void *)(hlen + cell), zero);
                    continue;
                }
                for (size_t j = 0; j < 4; j++) {
                    if ((m >> (4 * j) & 0xf) == 0xf) {
                        mode[cell + j] = r0[x + 2 * j];
                        count[cell + j] = whole;
                        hlen[cell + j] = 0;
                    } else if (!dense_mixed_at(wk, l, cm, cl, cd, row + x + 2 * j, n, step,
                                               cell + j)) {
                        return 0;
                    }
                }
            }
            for (; px < np; px++, cell++) {
                const size_t first = row + 2 * px;
                uint32_t mixed = 0;
                for (int k = 0; k < 8; k++) {
                    const size_t c = first + step[k];
                    mixed |= (cl ? cl[c] : 0) | (uint32_t)(cm[c] != cm[first]);
                }
                if (!mixed) {
                    mode[cell] = cm[first];
                    count[cell] = whole;
                    hlen[cell] = 0;
                } else if (!dense_mixed_at(wk, l, cm, cl, cd, first, n, step, cell)) {
                    return 0;
                }
            }
        }
    return 1;
}

/* The whole pyramid and the chunk histogram by the dense path; 0 when the chunk
 * has more than 16 materials (nothing usable is left; the caller starts over). */
static int dense_build(lod_work *wk, const uint16_t *voxels)
{
    dense_reset(wk); /* an abandoned lane build (lod_lanes_*) may have left lanes */
    int ok = dense_level(wk, 1, voxels, NULL);
    for (int l = 2; ok && l <= wk->levels; l++)
        ok = dense_level(wk, l, wk->pyr.mode + wk->pyr.offset[l - 1],
                         wk->hlen + wk->pyr.offset[l - 1]);
    const size_t top = wk->pyr.offset[wk->levels];
    if (ok && !wk->hlen[top]) {
        wk->hist[0] = (lod_count){wk->pyr.mode[top], wk->pyr.count[top]};
        wk->hist_n = 1;
    } else if (ok) {
        uint16_t counts[DENSE_LANES];
        _mm_storeu_si128((__m128i *)(void *)counts, wk->dense[top].lo);
        _mm_storeu_si128((__m128i *)(void *)(counts + 8), wk->dense[top].hi);
        size_t n = 0;
        for (int l = 0; l < wk->lanes; l++) {
            /* insertion by material: at most 16 entries */
            lod_count e = {wk->lane_material[l], counts[l]};
            size_t at = n++;
            for (; at > 0 && wk->hist[at - 1].material > e.material; at--)
                wk->hist[at] = wk->hist[at - 1];
            wk->hist[at] = e;
        }
        wk->hist_n = n;
    }
    dense_reset(wk);
    return ok;
}
#endif

#ifdef __SSE2__
/*
 * The palette path (lod_summarize_palette): a whole chunk of at most 16
 * materials given as its palette indices, 4 bits per voxel (chunk_encode has
 * just written them; a reindex decompresses them without expanding). A byte
 * holds the two voxels of one row of a 2x2x2 cell, so 16 bytes of each of the
 * four rows a cell spans are 16 cells: homogeneous when the four bytes agree
 * and both nibbles of a byte are equal. A mixed cell's counts are four table
 * lookups (one per byte: two lanes' fields of 4 bits). The lanes are the
 * palette's indices, ascending by material, so a tie goes to the lowest lane.
 * Modes stay lanes (lmode): this path only feeds lod_encode.
 */

/* Mode lane (ties to the lowest lane) and its count of mixed counts c. */
static inline void lane_mode(dense_counts c, uint8_t *mode, uint32_t *count)
{
    *mode = (uint8_t)(__builtin_ctz(max_lanes(c, count)) / 2);
}

/* Cell `at` is mixed with counts s. */
static inline void lane_set_mixed(lod_work *wk, size_t at, dense_counts s)
{
    wk->dense[at] = s;
    lane_mode(s, &wk->lmode[at], &wk->pyr.count[at]);
    wk->lmixed[at] = 1;
}

/* Level 1 from 4-bit lanes (edge C: C / 2 bytes per row). */
static void lane_level1(lod_work *wk, const uint8_t *nib)
{
    /* a row of C voxels is C / 2 bytes, and C / 2 cells along each axis */
    const size_t C = (size_t)wk->edge, row = C / 2, n = C / 2, o1 = wk->pyr.offset[1];
    const size_t group = row < 16 ? row : 16; /* cells per compare */
    const unsigned all = (1u << group) - 1;
    const __m128i low4 = _mm_set1_epi8(0x0f), one = _mm_set1_epi8(1);
    uint8_t *lmode = wk->lmode + o1, *lmixed = wk->lmixed + o1;
    size_t cell = 0;
    for (size_t cz = 0; cz < n; cz++)
        for (size_t cy = 0; cy < n; cy++) {
            const uint8_t *r0 = nib + (2 * cz * C + 2 * cy) * row, *r1 = r0 + row,
                          *r2 = r0 + C * row, *r3 = r2 + row;
            for (size_t x = 0; x < row; x += group, cell += group) {
                __m128i a, b, c, d;
                if (group == 16) {
                    a = _mm_loadu_si128((const __m128i *)(const void *)(r0 + x));
                    b = _mm_loadu_si128((const __m128i *)(const void *)(r1 + x));
                    c = _mm_loadu_si128((const __m128i *)(const void *)(r2 + x));
                    d = _mm_loadu_si128((const __m128i *)(const void *)(r3 + x));
                } else {
                    a = _mm_loadl_epi64((const __m128i *)(const void *)(r0 + x));
                    b = _mm_loadl_epi64((const __m128i *)(const void *)(r1 + x));
                    c = _mm_loadl_epi64((const __m128i *)(const void *)(r2 + x));
                    d = _mm_loadl_epi64((const __m128i *)(const void *)(r3 + x));
                }
                const __m128i lo = _mm_and_si128(a, low4);
                const __m128i hi = _mm_and_si128(_mm_srli_epi16(a, 4), low4);
                const __m128i eq =
                    _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(a, b), _mm_cmpeq_epi8(a, c)),
                                  _mm_and_si128(_mm_cmpeq_epi8(a, d), _mm_cmpeq_epi8(lo, hi)));
                if (group == 16) {
                    _mm_storeu_si128((__m128i *)(void *)(lmode + cell), lo);
                    _mm_storeu_si128((__m128i *)(void *)(lmixed + cell), _mm_andnot_si128(eq, one));
                } else {
                    _mm_storel_epi64((__m128i *)(void *)(lmode + cell), lo);
                    _mm_storel_epi64((__m128i *)(void *)(lmixed + cell), _mm_andnot_si128(eq, one));
                }
                unsigned m = ~(unsigned)_mm_movemask_epi8(eq) & all; /* mixed cells */
                for (; m; m &= m - 1) {
                    const size_t j = (size_t)__builtin_ctz(m);
                    const uint64_t fields = wk->nibble_pair[r0[x + j]] +
                                            wk->nibble_pair[r1[x + j]] +
                                            wk->nibble_pair[r2[x + j]] + wk->nibble_pair[r3[x + j]];
                    lane_set_mixed(wk, o1 + cell + j, counts_of_fields(fields));
                }
            }
        }
}

/* Level l >= 2 from level l - 1: a parent whose eight children are homogeneous
 * in one lane is homogeneous (two-byte compares of the children's lanes and
 * mixed flags); the others sum their children's counts. */
static void lane_level_up(lod_work *wk, int l)
{
    const size_t n = (size_t)wk->edge >> (l - 1), np = n / 2;
    const size_t co = wk->pyr.offset[l - 1];
    const uint8_t *cm = wk->lmode + co, *cx = wk->lmixed + co;
    const dense_counts *cd = wk->dense + co, *whole = wk->whole[l - 2];
    size_t step[8];
    for (int d = 0; d < 8; d++)
        step[d] = child_step(n, d);
    size_t at = wk->pyr.offset[l];
    for (size_t pz = 0; pz < np; pz++)
        for (size_t py = 0; py < np; py++)
            for (size_t px = 0; px < np; px++, at++) {
                const size_t first = (2 * pz * n + 2 * py) * n + 2 * px;
                uint16_t pair[4], flags[4];
                for (int r = 0; r < 4; r++) {
                    memcpy(&pair[r], cm + first + step[2 * r], 2);
                    memcpy(&flags[r], cx + first + step[2 * r], 2);
                }
                const uint16_t same = (uint16_t)(cm[first] * 0x0101u);
                if (!(flags[0] | flags[1] | flags[2] | flags[3]) && pair[0] == same &&
                    pair[1] == same && pair[2] == same && pair[3] == same) {
                    wk->lmode[at] = cm[first];
                    wk->lmixed[at] = 0;
                    continue;
                }
                dense_counts s = {_mm_setzero_si128(), _mm_setzero_si128()};
                for (int k = 0; k < 8; k++) {
                    const size_t c = first + step[k];
                    s = dense_add(s, cx[c] ? cd[c] : whole[cm[c]]);
                }
                lane_set_mixed(wk, at, s);
            }
}

/* The 1- or 2-bit indices of a palette widened to 4 bits (lane_level1's input):
 * one table lookup per packed byte. */
static void widen_to_nibbles(const lod_work *wk, const uint8_t *packed, size_t n, int bits,
                             uint8_t *out)
{
    if (bits == 2) {
        for (size_t i = 0; i < n / 4; i++)
            memcpy(out + 2 * i, &wk->widen2[packed[i]], 2);
    } else {
        for (size_t i = 0; i < n / 8; i++)
            memcpy(out + 4 * i, &wk->widen1[packed[i]], 4);
    }
}
#endif

int lod_can_summarize_palette(const lod_work *wk, int count, const int extent[3])
{
#ifdef __SSE2__
    /* edges 16 and 32: level 1 reads 8 or 16 bytes of indices per row */
    return wk->dense && wk->edge >= 16 && count >= 1 && count <= DENSE_LANES &&
           extent[0] == wk->edge && extent[1] == wk->edge && extent[2] == wk->edge;
#else
    (void)wk, (void)count, (void)extent;
    return 0;
#endif
}

strata_status lod_summarize_palette(lod_work *wk, const uint16_t *ids, int count, int bits,
                                    const uint8_t *packed, const lod_count **hist, size_t *hist_n,
                                    strata_error *err)
{
    const int full[3] = {wk->edge, wk->edge, wk->edge};
    if (!lod_can_summarize_palette(wk, count, full) || (bits != 1 && bits != 2 && bits != 4) ||
        (1 << bits) < count)
        return error_set(err, STRATA_ERR_ARG, "LOD build: palette of %d ids at %d bits", count,
                         bits);
#ifdef __SSE2__
    const size_t n = (size_t)wk->edge * (size_t)wk->edge * (size_t)wk->edge;
    const uint8_t *nib = packed;
    if (bits < 4) {
        widen_to_nibbles(wk, packed, n, bits, wk->nibbles);
        nib = wk->nibbles;
    }
    memcpy(wk->extent, full, sizeof wk->extent);
    lane_level1(wk, nib);
    for (int l = 2; l <= wk->levels; l++)
        lane_level_up(wk, l);
    /* The top cell's counts are the chunk's histogram, lanes ascending by
     * material; a lane at or past the palette's count is a corrupt index. */
    const size_t top = wk->pyr.offset[wk->levels];
    uint16_t counts[DENSE_LANES] = {0};
    if (wk->lmixed[top]) {
        _mm_storeu_si128((__m128i *)(void *)counts, wk->dense[top].lo);
        _mm_storeu_si128((__m128i *)(void *)(counts + 8), wk->dense[top].hi);
    }
    size_t h = 0;
    for (int lane = 0; lane < DENSE_LANES; lane++) {
        const uint32_t c = wk->lmixed[top]          ? counts[lane]
                           : lane == wk->lmode[top] ? (uint32_t)n
                                                    : 0;
        if (!c)
            continue;
        if (lane >= count)
            return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette index >= count %d",
                             count);
        wk->lane_rank[lane] = (uint8_t)h;
        wk->hist[h++] = (lod_count){ids[lane], c};
    }
    wk->hist_n = h;
    wk->lane_space = 1;
    *hist = wk->hist;
    *hist_n = h;
    return STRATA_OK;
#else
    (void)packed, (void)ids, (void)hist, (void)hist_n;
    return STRATA_ERR_ARG;
#endif
}

#ifdef __SSE2__
/*
 * The change path (lod_lanes_*): a whole chunk of edge 16 or 32 as one 4-bit lane
 * per voxel (wk->nibbles, lanes numbered in order of appearance: the stored image's
 * palette first, then the materials the changes bring), and the counts per lane of
 * each cell of the lowest stored level (16^3 voxels). The stored image is counted
 * once, 16 voxels (one 8-byte word, inside one cell) at a time: a word of one lane
 * is one add, a mixed word's fields come from nibble_pair; each change then moves
 * one voxel between two lanes of its cell. Levels below the stored ones are never
 * built: nothing reads them after a commit (docs/index.md).
 */

/* The cell of the lowest stored level (lowest = 4: edge 16 or 32) holding voxel v: at
 * edge 32 bit 4 of x, y and z (voxel bits 4, 9 and 14), at edge 16 the chunk's one cell. */
static inline size_t lane_cell_of(const lod_work *wk, uint32_t v)
{
    return wk->edge == 32 ? (v >> 4 & 1) | (v >> 8 & 2) | (v >> 12 & 4) : 0;
}

/* Add the 8-bit fields of even and odd lanes into a cell's counts. */
static inline void lane_flush(uint32_t *c, uint64_t *even, uint64_t *odd)
{
    for (int k = 0; k < 8; k++) {
        c[2 * k] += (uint32_t)(*even >> (8 * k) & 0xff);
        c[2 * k + 1] += (uint32_t)(*odd >> (8 * k) & 0xff);
    }
    *even = *odd = 0;
}

/* Copy 4-bit lanes `src` to wk->nibbles, counting them into the cells of the lowest
 * stored level (edge C of 16 or 32, a constant where inlined): a row of the chunk is
 * C / 16 words, word w in cell column w. A word of one lane (its nibbles equal to the
 * word rotated by one nibble) adds 16; a mixed word adds at most 15 to a lane, kept in
 * 8-bit fields (even and odd lanes) flushed every 16 rows (at most 240). */
static inline __attribute__((always_inline)) void lane_count_edge(lod_work *wk, const uint8_t *src,
                                                                  const size_t C)
{
    const size_t words = C / 16, nb = C / 16 - 1, row = C / 2;
    const uint64_t low = 0x0f0f0f0f0f0f0f0fu;
    uint8_t *dst = wk->nibbles;
    memset(wk->lane_cells, 0, sizeof wk->lane_cells);
    for (size_t z = 0; z < C; z++)
        for (size_t yc = 0; yc < C / 16; yc++) {
            uint32_t *cell[2];
            for (size_t w = 0; w < words; w++)
                cell[w] = wk->lane_cells[(z >> 4) << (2 * nb) | yc << nb | w];
            /* 16 rows of one lane (most groups of layered terrain): one add per cell */
            const __m128i first = _mm_set1_epi8((char)src[0]);
            __m128i same = _mm_set1_epi8(-1);
            for (size_t y = 0; y < 16; y++) {
                const __m128i r =
                    C == 32 ? _mm_loadu_si128((const __m128i *)(const void *)(src + y * row))
                            : _mm_loadl_epi64((const __m128i *)(const void *)(src + y * row));
                same = _mm_and_si128(same, _mm_cmpeq_epi8(r, first));
            }
            if (_mm_movemask_epi8(same) == 0xffff && (src[0] >> 4) == (src[0] & 15)) {
                for (size_t w = 0; w < words; w++)
                    cell[w][src[0] & 15] += 256;
                if (dst != src)
                    memcpy(dst, src, 16 * row);
                src += 16 * row, dst += 16 * row;
                continue;
            }
            uint64_t even[2] = {0, 0}, odd[2] = {0, 0};
            for (size_t y = 0; y < 16; y++, src += row, dst += row)
                for (size_t w = 0; w < words; w++) {
                    uint64_t word;
                    memcpy(&word, src + 8 * w, 8);
                    memcpy(dst + 8 * w, &word, 8);
                    if (word == (word >> 4 | word << 60)) {
                        cell[w][word & 15] += 16;
                        continue;
                    }
                    uint64_t f = 0;
                    for (int b = 0; b < 8; b++)
                        f += wk->nibble_pair[word >> (8 * b) & 0xff];
                    even[w] += f & low;
                    odd[w] += f >> 4 & low;
                }
            for (size_t w = 0; w < words; w++)
                lane_flush(cell[w], &even[w], &odd[w]);
        }
}

static void lane_count(lod_work *wk, const uint8_t *src)
{
    if (wk->edge == 32)
        lane_count_edge(wk, src, 32);
    else
        lane_count_edge(wk, src, 16);
}

strata_status lod_lanes_begin(lod_work *wk, const uint16_t *ids, int count, int bits,
                              const uint8_t *packed, const int extent[3], int *served,
                              strata_error *err)
{
    *served = 0;
    wk->lane_build = 0;
    if (!lod_can_summarize_palette(wk, count, extent) ||
        (packed && bits != 1 && bits != 2 && bits != 4) || (packed && (1 << bits) < count) ||
        (!packed && count != 1))
        return STRATA_OK;
    dense_reset(wk);
    for (int i = 0; i < count; i++)
        if (dense_lane(wk, ids[i]) != i) { /* not ascending: a caller's slip */
            dense_reset(wk);
            return error_set(err, STRATA_ERR_ARG, "LOD build: palette ids repeat");
        }
    const size_t n = (size_t)wk->edge * (size_t)wk->edge * (size_t)wk->edge;
    const size_t cells = (size_t)1 << (3 * (wk->levels - LOD_STORED_LOWEST));
    if (!packed) { /* one id: every cell whole in lane 0 */
        memset(wk->lane_words, 0, (n / 16 + 63) / 64 * sizeof(uint64_t));
        wk->lane_lazy = 1;
        memset(wk->lane_cells, 0, sizeof wk->lane_cells);
        for (size_t c = 0; c < cells; c++)
            wk->lane_cells[c][0] = (uint32_t)1 << (3 * LOD_STORED_LOWEST);
        wk->lane_build = 1;
        *served = 1;
        return STRATA_OK;
    }
    wk->lane_lazy = 0;
    if (bits < 4) { /* widened in place: counted from there */
        widen_to_nibbles(wk, packed, n, bits, wk->nibbles);
        packed = wk->nibbles;
    }
    lane_count(wk, packed);
    for (size_t c = 0; c < cells; c++)
        for (int lane = count; lane < DENSE_LANES; lane++)
            if (wk->lane_cells[c][lane]) {
                dense_reset(wk);
                return error_set(err, STRATA_ERR_CORRUPT, "chunk decode: palette index >= count %d",
                                 count);
            }
    wk->lane_build = 1;
    *served = 1;
    return STRATA_OK;
}

/* Voxel v becomes material m; 0 (the build abandoned) on a 17th material or a voxel
 * outside the chunk. */
static inline int lane_change(lod_work *wk, uint64_t v, uint16_t m, uint64_t voxels)
{
    const int lane = dense_lane(wk, m);
    if (lane < 0 || v >= voxels)
        return 0;
    if (wk->lane_lazy && !(wk->lane_words[v / 1024] >> (v / 16 % 64) & 1)) {
        const uint64_t zero = 0; /* lane 0, the image's */
        memcpy(wk->nibbles + v / 16 * 8, &zero, 8);
        wk->lane_words[v / 1024] |= (uint64_t)1 << (v / 16 % 64);
    }
    uint8_t *p = wk->nibbles + v / 2;
    const unsigned shift = (unsigned)(v & 1) * 4, old = *p >> shift & 15;
    if (old == (unsigned)lane)
        return 1;
    uint32_t *c = wk->lane_cells[lane_cell_of(wk, (uint32_t)v)];
    c[old]--;
    c[lane]++;
    *p = (uint8_t)((*p & ~(15u << shift)) | (unsigned)lane << shift);
    return 1;
}

int lod_lanes_apply(lod_work *wk, const uint32_t *voxel, const uint16_t *material, size_t n)
{
    const uint64_t voxels = (uint64_t)wk->edge * (uint64_t)wk->edge * (uint64_t)wk->edge;
    for (size_t i = 0; wk->lane_build && i < n; i++)
        if (!lane_change(wk, voxel[i], material[i], voxels)) {
            dense_reset(wk);
            wk->lane_build = 0;
        }
    return wk->lane_build;
}

int lod_lanes_log(lod_work *wk, const uint64_t *log, size_t n)
{
    const uint64_t voxels = (uint64_t)wk->edge * (uint64_t)wk->edge * (uint64_t)wk->edge;
    for (size_t i = 0; wk->lane_build && i < n; i++)
        if (!lane_change(wk, log[i] >> 40, (uint16_t)log[i], voxels)) {
            dense_reset(wk);
            wk->lane_build = 0;
        }
    return wk->lane_build;
}

/* Mode lane of counts c (ties to the smallest material) and its count. */
static inline int lane_cell_mode(const lod_work *wk, const uint32_t *c, uint32_t *count)
{
    int best = -1;
    uint32_t most = 0;
    for (int lane = 0; lane < wk->lanes; lane++)
        if (c[lane] > most ||
            (c[lane] && c[lane] == most && wk->lane_material[lane] < wk->lane_material[best]))
            best = lane, most = c[lane];
    *count = most;
    return best;
}

strata_status lod_lanes_end(lod_work *wk, const lod_count **hist, size_t *hist_n, strata_error *err)
{
    if (!wk->lane_build)
        return error_set(err, STRATA_ERR_ARG, "LOD build: no lane build to finish");
    /* the stored levels, cells of level l at lane_cells[first[l]...] */
    size_t first = 0;
    for (int l = LOD_STORED_LOWEST; l <= wk->levels; l++) {
        const size_t n = (size_t)wk->edge >> l, cells = n * n * n;
        if (l > LOD_STORED_LOWEST) {
            const size_t below = first - 8 * cells, m = 2 * n; /* children's level, edge m */
            for (size_t q = 0; q < cells; q++) {
                const size_t x = q % n, y = q / n % n, z = q / n / n;
                uint32_t *c = wk->lane_cells[first + q];
                memset(c, 0, DENSE_LANES * sizeof *c);
                for (int d = 0; d < 8; d++) {
                    const size_t k =
                        below +
                        ((2 * z + (size_t)(d >> 2)) * m + 2 * y + (size_t)(d >> 1 & 1)) * m +
                        2 * x + (size_t)(d & 1);
                    for (int lane = 0; lane < DENSE_LANES; lane++)
                        c[lane] += wk->lane_cells[k][lane];
                }
            }
        }
        const uint32_t whole = (uint32_t)1 << (3 * l);
        for (size_t q = 0; q < cells; q++) {
            const size_t at = wk->pyr.offset[l] + q;
            const int mode = lane_cell_mode(wk, wk->lane_cells[first + q], &wk->pyr.count[at]);
            wk->lmode[at] = (uint8_t)mode;
            wk->lmixed[at] = wk->pyr.count[at] != whole;
        }
        first += cells;
    }
    /* the top cell's counts are the chunk's histogram: ascending by material */
    const uint32_t *top = wk->lane_cells[first - 1];
    size_t h = 0;
    uint8_t lane_of_entry[DENSE_LANES];
    for (int lane = 0; lane < wk->lanes; lane++) {
        if (!top[lane])
            continue;
        const lod_count e = {wk->lane_material[lane], top[lane]};
        size_t at = h++;
        for (; at > 0 && wk->hist[at - 1].material > e.material; at--) {
            wk->hist[at] = wk->hist[at - 1];
            lane_of_entry[at] = lane_of_entry[at - 1];
        }
        wk->hist[at] = e;
        lane_of_entry[at] = (uint8_t)lane;
    }
    for (size_t i = 0; i < h; i++)
        wk->lane_rank[lane_of_entry[i]] = (uint8_t)i;
    wk->hist_n = h;
    for (int i = 0; i < 3; i++)
        wk->extent[i] = wk->edge;
    wk->lane_space = 1;
    wk->lane_build = 0;
    dense_reset(wk);
    *hist = wk->hist;
    *hist_n = h;
    return STRATA_OK;
}
#else
strata_status lod_lanes_begin(lod_work *wk, const uint16_t *ids, int count, int bits,
                              const uint8_t *packed, const int extent[3], int *served,
                              strata_error *err)
{
    (void)wk, (void)ids, (void)count, (void)bits, (void)packed, (void)extent, (void)err;
    *served = 0;
    return STRATA_OK;
}
int lod_lanes_apply(lod_work *wk, const uint32_t *voxel, const uint16_t *material, size_t n)
{
    (void)wk, (void)voxel, (void)material, (void)n;
    return 0;
}
int lod_lanes_log(lod_work *wk, const uint64_t *log, size_t n)
{
    (void)wk, (void)log, (void)n;
    return 0;
}
strata_status lod_lanes_end(lod_work *wk, const lod_count **hist, size_t *hist_n, strata_error *err)
{
    (void)wk, (void)hist, (void)hist_n;
    return error_set(err, STRATA_ERR_ARG, "LOD build: no lane build to finish");
}
#endif

int lod_count_compare(const void *a, const void *b)
{
    const lod_count *x = a, *y = b;
    return (int)x->material - (int)y->material;
}

strata_status lod_build(lod_work *wk, const uint16_t *voxels, const int extent[3],
                        const lod_pyramid **pyr, const lod_count **hist, size_t *hist_n,
                        strata_error *err)
{
    for (int i = 0; i < 3; i++)
        if (extent[i] < 1 || extent[i] > wk->edge)
            return error_set(err, STRATA_ERR_ARG, "LOD build: extent %d outside [1, %d]", extent[i],
                             wk->edge);
    memcpy(wk->extent, extent, sizeof wk->extent);
#ifdef __SSE2__
    wk->lane_space = 0;
    if (wk->dense && extent[0] == wk->edge && extent[1] == wk->edge && extent[2] == wk->edge &&
        dense_build(wk, voxels)) {
        *pyr = &wk->pyr;
        *hist = wk->hist;
        *hist_n = wk->hist_n;
        return STRATA_OK;
    }
#endif
    if (!build_level1(wk, voxels, extent))
        return error_set(err, STRATA_ERR_NOMEM, "cannot grow LOD scratch");
    for (int l = 1; l < wk->levels; l++)
        if (!build_level_up(wk, l))
            return error_set(err, STRATA_ERR_NOMEM, "cannot grow LOD scratch");
    /* The single top cell's histogram is the chunk's. */
    size_t top = wk->pyr.offset[wk->levels], n = wk->hlen[top];
    if (n == 0) {
        wk->hist[0] = (lod_count){wk->pyr.mode[top], wk->pyr.count[top]};
        n = 1;
    } else {
        const int p = wk->levels & 1;
        for (size_t i = 0; i < n; i++)
            wk->hist[i] =
                (lod_count){wk->mat[p][wk->hstart[top] + i], wk->cnt[p][wk->hstart[top] + i]};
        qsort(wk->hist, n, sizeof *wk->hist, lod_count_compare);
    }
    wk->hist_n = n;
    *pyr = &wk->pyr;
    *hist = wk->hist;
    *hist_n = n;
    return STRATA_OK;
}

void lod_dominant(const lod_count *hist, size_t n, uint16_t *material, uint64_t *count)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (hist[i].count > hist[best].count ||
            (hist[i].count == hist[best].count && hist[i].material < hist[best].material))
            best = i;
    *material = hist[best].material;
    *count = hist[best].count;
}

uint64_t lod_block_voxels(const int64_t dims[3], int bits, const uint64_t c[3])
{
    /* bits <= 8 + 21 and c < 2^(63 - bits) for every block of a world. */
    uint64_t v = 1;
    for (int i = 0; i < 3; i++) {
        if (c[i] >= ((uint64_t)1 << (63 - bits)))
            return 0;
        uint64_t lo = c[i] << bits, hi = lo + ((uint64_t)1 << bits);
        if (lo >= (uint64_t)dims[i])
            return 0;
        if (hi > (uint64_t)dims[i])
            hi = (uint64_t)dims[i];
        v *= hi - lo;
    }
    return v;
}

/* ---- payload ------------------------------------------------------------------- */

/*
 * Decompressed layout (docs/index.md): a 16-byte header, the chunk histogram,
 * then the levels top-down. A level lists only the cells whose parent is mixed
 * (all of the top level's single cell): the cells under a homogeneous parent
 * are derived (its mode, or air outside the world; count = voxels inside). Per
 * level: a bitmap of the listed cells that are mixed, the listed modes, and the
 * counts of the mixed cells in W_l = ceil(3l/8) byte planes (a mixed level-l
 * cell has fewer than 8^l voxels of its mode); homogeneous listed cells store no
 * count (it is their voxels inside the world).
 *
 * Version 2 stores a listed mode as its index in the chunk histogram (which
 * ascends by material), packed two to a byte when the chunk has at most 16
 * materials, one byte when at most 256, else as low then high byte planes of the
 * index (a listed cell wholly outside the world stores 0 and reads as air).
 * Version 1 (still read) stored the materials themselves as byte planes.
 * The smaller raw form matters because zstd's cost on these few-kilobyte frames
 * is mostly per byte of input plus a fixed cost per frame (docs/benchmarks.md).
 */
enum { HEADER_BYTES = 16 };

static int count_width(int l)
{
    return (3 * l + 7) / 8;
}

/* Bits of a listed mode in a version-2 payload of a chunk with H materials. */
static int mode_bits(uint32_t H)
{
    return H <= 16 ? 4 : H <= 256 ? 8 : 16;
}

/* Bytes of m listed modes of `bits` bits (version 2). */
static size_t mode_bytes(size_t m, int bits)
{
    return bits == 4 ? (m + 1) / 2 : m * (size_t)(bits / 8);
}

/* Voxels inside the extent of cell c (level l) along one axis. */
static inline uint32_t inside_1d(int ext, int l, uint32_t c)
{
    int64_t lo = (int64_t)c << l, hi = lo + ((int64_t)1 << l);
    if (hi > ext)
        hi = ext;
    return hi > lo ? (uint32_t)(hi - lo) : 0;
}

/* Index (within its level of edge n cells) of the first child of parent q (parent level
 * of edge n / 2); child d is child_step(n, d) from it. */
static inline size_t child_base(size_t n, size_t q)
{
    size_t np = n / 2, x = q % np, y = q / np % np, z = q / np / np;
    return (2 * z * n + 2 * y) * n + 2 * x;
}

/* Voxels inside the extent of cell i (index within its level of edge n, level l). */
static inline uint32_t cell_inside(const int ext[3], int l, size_t n, size_t i)
{
    if (ext[0] == (int)n << l && ext[1] == (int)n << l && ext[2] == (int)n << l)
        return (uint32_t)1 << (3 * l);
    return inside_1d(ext[0], l, (uint32_t)(i % n)) * inside_1d(ext[1], l, (uint32_t)(i / n % n)) *
           inside_1d(ext[2], l, (uint32_t)(i / n / n));
}

static size_t raw_bound(size_t hist_n, size_t cells, int levels)
{
    return HEADER_BYTES + hist_n * 6 + cells * 7 + (size_t)levels;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 1;
    uint8_t *b = strata_realloc(*buf, need);
    if (!b)
        return 0;
    *buf = b, *cap = need;
    return 1;
}

/* Where lod_encode writes the listed cells of one level. */
typedef struct {
    uint8_t *bits, *modes; /* mixed bitmap; modes (mode_bits each, planes for 16) */
    size_t listed;         /* listed cells of the level (the plane stride for 16 bits) */
    int mode_bits;
    uint32_t *counts; /* the mixed cells' counts, until their number is known */
    size_t i, mixed;
} level_list;

/* Cell c's mode as an index into the histogram: by its lane after a palette
 * build, else through wk->counts (material -> index, set by lod_encode). */
static inline __attribute__((always_inline)) uint32_t cell_index(const lod_work *wk, size_t c,
                                                                 int lanes)
{
#ifdef __SSE2__
    if (lanes)
        return wk->lane_rank[wk->lmode[c]];
#endif
    (void)lanes;
    return wk->counts[wk->pyr.mode[c]];
}

static inline __attribute__((always_inline)) int cell_mixed(const lod_work *wk, size_t c, int lanes)
{
#ifdef __SSE2__
    if (lanes)
        return wk->lmixed[c];
#endif
    (void)lanes;
    return wk->hlen[c] != 0;
}

/* Append cell c to the level's list. */
static inline void list_cell(const lod_work *wk, size_t c, level_list *out, int lanes)
{
    const uint32_t index = cell_index(wk, c, lanes);
    const size_t i = out->i++;
    if (out->mode_bits == 4)
        out->modes[i / 2] |= (uint8_t)(index << (4 * (i & 1)));
    else if (out->mode_bits == 8)
        out->modes[i] = (uint8_t)index;
    else
        out->modes[i] = (uint8_t)index, out->modes[out->listed + i] = (uint8_t)(index >> 8);
    if (cell_mixed(wk, c, lanes)) {
        out->bits[i / 8] |= (uint8_t)(1u << (i % 8));
        out->counts[out->mixed++] = wk->pyr.count[c];
    }
}

/* Append the eight children of a mixed parent, the first at `first`, child d at
 * first + step[d]. Below the top level the listed cells come eight at a time,
 * so they fill whole bytes of the bitmap and of the modes: no read-modify-write.
 * `bits` is a constant where this is inlined. */
static inline __attribute__((always_inline)) void list_children(const lod_work *wk, size_t first,
                                                                const size_t step[8],
                                                                level_list *out, int bits,
                                                                int lanes)
{
    const size_t i = out->i;
    uint32_t index[8];
    unsigned mixed = 0;
    for (int d = 0; d < 8; d++) {
        const size_t c = first + step[d];
        index[d] = cell_index(wk, c, lanes);
        if (cell_mixed(wk, c, lanes)) {
            mixed |= 1u << d;
            out->counts[out->mixed++] = wk->pyr.count[c];
        }
    }
    out->bits[i / 8] = (uint8_t)mixed;
    if (bits == 4) {
        for (int k = 0; k < 4; k++)
            out->modes[i / 2 + (size_t)k] = (uint8_t)(index[2 * k] | index[2 * k + 1] << 4);
    } else {
        for (int d = 0; d < 8; d++)
            out->modes[i + (size_t)d] = (uint8_t)index[d];
        if (bits == 16)
            for (int d = 0; d < 8; d++)
                out->modes[out->listed + i + (size_t)d] = (uint8_t)(index[d] >> 8);
    }
    out->i = i + 8;
}

/* The listed cells of level l < L: the children of its parents marked mixed. */
static inline __attribute__((always_inline)) void list_level(const lod_work *wk, int l,
                                                             level_list *out, int bits, int lanes)
{
    const lod_pyramid *p = &wk->pyr;
    const size_t n = (size_t)wk->edge >> l, np = n / 2, no = p->offset[l], po = p->offset[l + 1];
    size_t step[8];
    for (int d = 0; d < 8; d++)
        step[d] = child_step(n, d);
    for (size_t z = 0, q = 0; z < np; z++)
        for (size_t y = 0; y < np; y++)
            for (size_t x = 0; x < np; x++, q++)
                if (cell_mixed(wk, po + q, lanes))
                    list_children(wk, no + (2 * z * n + 2 * y) * n + 2 * x, step, out, bits, lanes);
}

strata_status lod_encode(lod_work *wk, int level, const uint8_t **payload, size_t *length,
                         strata_error *err)
{
    return lod_encode_levels(wk, level, 1, payload, length, err);
}

/* The payload's header and histogram (materials, then counts) at b; returns the byte
 * after them. */
static uint8_t *write_head(const lod_work *wk, uint8_t *b, int L, int lowest)
{
    memcpy(b, LOD_MAGIC, 4);
    b[4] = LOD_VERSION;
    b[5] = (uint8_t)L;
    b[6] = (uint8_t)lowest; /* version 3: the lowest level stored */
    b[7] = 0;
    uint32_t h = (uint32_t)wk->hist_n;
    memcpy(b + 8, &h, 4);
    for (int i = 0; i < 3; i++)
        b[12 + i] = (uint8_t)(wk->extent[i] - 1);
    b[15] = 0;
    b += HEADER_BYTES;
    for (size_t i = 0; i < wk->hist_n; i++, b += 2)
        memcpy(b, &wk->hist[i].material, 2);
    for (size_t i = 0; i < wk->hist_n; i++, b += 4) {
        uint32_t c = (uint32_t)wk->hist[i].count;
        memcpy(b, &c, 4);
    }
    return b;
}

/* Levels L down to lowest at b, one pass per level: the listed cells are the top cell,
 * or the 8 children (octant order) of each mixed parent in the parent level's
 * [z][y][x] order, so their number is 8 x the mixed cells listed a level up. Modes go
 * straight to their place; mixed counts wait in `mixed_counts` until their number is
 * known. lanes: a palette build (modes are lanes). Returns the byte after them. */
static uint8_t *write_levels(lod_work *wk, uint8_t *b, int L, int lowest, int lanes)
{
    const lod_pyramid *p = &wk->pyr;
    const int bits = mode_bits((uint32_t)wk->hist_n);
    size_t m = 1;
    for (int l = L; l >= lowest; l--) {
        level_list out = {.bits = b,
                          .modes = b + (m + 7) / 8,
                          .listed = m,
                          .mode_bits = bits,
                          .counts = wk->mixed_counts};
        if (l == L) {
            memset(b, 0, 1 + mode_bytes(1, bits));
            list_cell(wk, p->offset[L], &out, lanes);
        } else if (lanes) { /* a palette build: at most 16 materials */
            list_level(wk, l, &out, 4, 1);
        } else if (bits == 4) {
            list_level(wk, l, &out, 4, 0);
        } else if (bits == 8) {
            list_level(wk, l, &out, 8, 0);
        } else {
            list_level(wk, l, &out, 16, 0);
        }
        const int W = count_width(l);
        uint8_t *cnt = out.modes + mode_bytes(m, bits);
        for (int k = 0; k < W; k++)
            for (size_t j = 0; j < out.mixed; j++)
                cnt[k * out.mixed + j] = (uint8_t)(out.counts[j] >> (8 * k));
        b = cnt + (size_t)W * out.mixed;
        m = 8 * out.mixed;
    }
    return b;
}

/* wk->raw's first size bytes as one zstd frame at `level` into wk->out. */
static strata_status compress_raw(lod_work *wk, int level, size_t size, const uint8_t **payload,
                                  size_t *length, strata_error *err)
{
    size_t out_bound = ZSTD_compressBound(size);
    if (!grow(&wk->out, &wk->out_cap, out_bound))
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %zu LOD bytes", out_bound);
    size_t rc = 0;
    if (level != wk->cctx_level) {
        rc = ZSTD_CCtx_setParameter(wk->cctx, ZSTD_c_compressionLevel, level);
        wk->cctx_level = ZSTD_isError(rc) ? INT_MIN : level;
    }
    if (!ZSTD_isError(rc))
        rc = ZSTD_compress2(wk->cctx, wk->out, wk->out_cap, wk->raw, size);
    if (ZSTD_isError(rc)) {
        ZSTD_CCtx_reset(wk->cctx, ZSTD_reset_session_only);
        return error_set(err, STRATA_ERR_CORRUPT, "LOD encode: %s", ZSTD_getErrorName(rc));
    }
    *payload = wk->out;
    *length = rc;
    return STRATA_OK;
}

strata_status lod_encode_levels(lod_work *wk, int level, int lowest, const uint8_t **payload,
                                size_t *length, strata_error *err)
{
    const int L = wk->pyr.levels;
    if (lowest < 1 || lowest > L)
        return error_set(err, STRATA_ERR_ARG, "LOD encode: lowest level %d outside 1..%d", lowest,
                         L);
    size_t cells = wk->pyr.offset[L + 1];
    size_t bound = raw_bound(wk->hist_n, cells, L);
    if (!grow(&wk->raw, &wk->raw_cap, bound))
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %zu LOD bytes", bound);
    uint8_t *b = write_head(wk, wk->raw, L, lowest);
#ifdef __SSE2__
    const int lanes = wk->lane_space;
#else
    const int lanes = 0;
#endif
    /* A build whose modes are materials lists them through the counting array
     * (zero between uses) mapping each material to its index in the histogram;
     * reset below. A palette build's modes are lanes already (cell_index). */
    for (size_t i = 0; !lanes && i < wk->hist_n; i++)
        wk->counts[wk->hist[i].material] = (uint32_t)i;
    b = write_levels(wk, b, L, lowest, lanes);
    for (size_t i = 0; !lanes && i < wk->hist_n; i++)
        wk->counts[wk->hist[i].material] = 0;
    return compress_raw(wk, level, (size_t)(b - wk->raw), payload, length, err);
}

#define CORRUPT(...) error_set(err, STRATA_ERR_CORRUPT, __VA_ARGS__)

/* Fields of payloads and packs: unaligned, in the machine's byte order (docs/index.md). */
static uint16_t load_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A pyramid entry's header: h materials in its histogram, its payload version, the
 * lowest level it stores and the chunk's extents inside the world. */
typedef struct {
    uint32_t h;
    int version, low, ext[3];
} raw_header;

static strata_status parse_header(const uint8_t *b, size_t size, int edge, int L, raw_header *r,
                                  strata_error *err)
{
    /* a shorter entry is refused below, its header unread */
    r->h = size >= HEADER_BYTES ? load_u32(b + 8) : 0;
    r->version = size >= HEADER_BYTES ? b[4] : 0;
    if (size >= HEADER_BYTES && !memcmp(b, LOD_MAGIC, 4) && r->version > LOD_VERSION)
        return error_set(err, STRATA_ERR_VERSION,
                         "LOD payload version %d is newer than this library reads (%d)", r->version,
                         LOD_VERSION);
    /* version 3 names the lowest level it stores (byte 6); earlier ones store all */
    r->low = size >= HEADER_BYTES && r->version >= 3 ? b[6] : 1;
    if (size < HEADER_BYTES || memcmp(b, LOD_MAGIC, 4) || r->version < 1 || b[5] != L ||
        (r->version < 3 && b[6]) || r->low < 1 || r->low > L || b[7] || b[15] || r->h == 0 ||
        r->h > 65536 || size < HEADER_BYTES + (size_t)r->h * 6)
        return CORRUPT("LOD payload: bad header or size (%zu bytes)", size);
    for (int i = 0; i < 3; i++) {
        r->ext[i] = b[12 + i] + 1;
        if (r->ext[i] > edge)
            return CORRUPT("LOD payload: extent %d beyond the chunk edge %d", r->ext[i], edge);
    }
    return STRATA_OK;
}

/* The entry's histogram into *out (malloc'ed): h (material, count) pairs, materials
 * ascending, counts summing to the voxels inside the world. */
static strata_status parse_histogram(const uint8_t *b, const raw_header *r, lod_count **out,
                                     strata_error *err)
{
    lod_count *list = strata_malloc(r->h * sizeof *list);
    if (!list)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a LOD histogram");
    const uint8_t *m = b + HEADER_BYTES, *c = m + (size_t)r->h * 2;
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->h; i++) {
        uint16_t id = load_u16(m + 2 * (size_t)i);
        uint32_t n = load_u32(c + 4 * (size_t)i);
        list[i] = (lod_count){id, n};
        total += n;
        if (n == 0 || (i && id <= list[i - 1].material)) {
            free(list);
            return CORRUPT("LOD payload: histogram not ascending");
        }
    }
    if (total != (uint64_t)r->ext[0] * (uint64_t)r->ext[1] * (uint64_t)r->ext[2]) {
        free(list);
        return CORRUPT("LOD payload: histogram counts %llu voxels, not the chunk's",
                       (unsigned long long)total);
    }
    *out = list;
    return STRATA_OK;
}

/* Level l of the entry, read from *at (moved past it, not beyond end) into pyr, whose
 * level l + 1 is decoded: the listed cells (the top cell, or the 8 children of each
 * mixed parent) take a mode and, when mixed, a count; the others follow their parent. */
static strata_status parse_level(const uint8_t **at, const uint8_t *end, int l,
                                 const lod_pyramid *layout, int edge, const raw_header *r,
                                 const lod_count *list, lod_pyramid *pyr, strata_error *err)
{
    const int L = layout->levels;
    const size_t n = (size_t)edge >> l, no = layout->offset[l];
    const size_t np = n / 2, po = l < L ? layout->offset[l + 1] : 0;
    const size_t parents = l == L ? 1 : np * np * np;
    size_t listed = 0;
    for (size_t q = 0; q < parents; q++)
        listed += l == L ? 1 : pyr->count[po + q] != cell_inside(r->ext, l + 1, np, q) ? 8 : 0;
    const size_t bitmap = (listed + 7) / 8;
    /* version 1: materials as low and high byte planes; 2: histogram indices */
    const int bits_per_mode = r->version == 1 ? 16 : mode_bits(r->h);
    const size_t modes = mode_bytes(listed, bits_per_mode);
    if ((size_t)(end - *at) < bitmap + modes)
        return CORRUPT("LOD payload: level %d truncated", l);
    const uint8_t *bits = *at, *md = bits + bitmap;
    size_t mixed = 0;
    for (size_t i = 0; i < listed; i++)
        mixed += bits[i / 8] >> (i % 8) & 1;
    const int W = count_width(l);
    const uint8_t *cnt = md + modes;
    if ((size_t)(end - cnt) < (size_t)W * mixed)
        return CORRUPT("LOD payload: level %d truncated", l);
    size_t i = 0, j = 0;
    for (size_t q = 0; q < parents; q++) {
        const size_t first = l == L ? no : no + child_base(n, q);
        const int kids = l == L ? 1 : 8;
        const int is_listed = l == L || pyr->count[po + q] != cell_inside(r->ext, l + 1, np, q);
        for (int d = 0; d < kids; d++) {
            size_t cell = first + child_step(n, d);
            uint32_t in = cell_inside(r->ext, l, n, cell - no);
            if (!is_listed) {
                pyr->mode[cell] = in ? pyr->mode[po + q] : 0;
                pyr->count[cell] = in;
                continue;
            }
            uint32_t mode = bits_per_mode == 4   ? (uint32_t)md[i / 2] >> (4 * (i & 1)) & 15
                            : bits_per_mode == 8 ? md[i]
                                                 : (uint32_t)md[i] | (uint32_t)md[listed + i] << 8;
            if (r->version > 1) {
                if (mode >= r->h)
                    return CORRUPT("LOD payload: level %d mode index %u of %u materials", l, mode,
                                   r->h);
                /* a cell outside the world is air (index 0 written) */
                mode = in ? list[mode].material : 0;
            }
            pyr->mode[cell] = (uint16_t)mode;
            pyr->count[cell] = in;
            if (bits[i / 8] >> (i % 8) & 1) {
                uint32_t v = 0;
                for (int k = 0; k < W; k++)
                    v |= (uint32_t)cnt[k * mixed + j] << (8 * k);
                j++;
                if (v == 0 || v >= in)
                    return CORRUPT("LOD payload: level %d cell count %u outside (0, %u)", l, v, in);
                pyr->count[cell] = v;
            }
            i++;
        }
    }
    *at = cnt + (size_t)W * mixed;
    return STRATA_OK;
}

/* Decode one pyramid entry; ends[l] (when given) receives the byte after level l. */
static strata_status parse_raw(const uint8_t *b, size_t size, int edge, lod_pyramid *pyr,
                               lod_count **hist, size_t *hist_n, size_t *ends, strata_error *err)
{
    lod_pyramid layout;
    pyramid_layout(edge, &layout);
    const int L = layout.levels;
    raw_header r = {0};
    lod_count *list = NULL;
    strata_status st = parse_header(b, size, edge, L, &r, err);
    if (!st)
        st = parse_histogram(b, &r, &list, err);
    if (st)
        return st;
    if (!pyr) { /* the histogram only (lod_decode_histogram) */
        *hist = list;
        *hist_n = r.h;
        return STRATA_OK;
    }
    st = lod_pyramid_alloc(edge, pyr, err);
    if (st) {
        free(list);
        return st;
    }
    pyr->lowest = r.low;
    const uint8_t *at = b + HEADER_BYTES + (size_t)r.h * 6, *end = b + size;
    for (int l = L; l >= r.low && !st; l--) {
        st = parse_level(&at, end, l, &layout, edge, &r, list, pyr, err);
        if (ends)
            ends[l] = (size_t)(at - b);
    }
    if (!st && at != end)
        st = CORRUPT("LOD payload: %zu bytes after the last level", (size_t)(end - at));
    if (!st) {
        uint16_t dm;
        uint64_t dc;
        lod_dominant(list, r.h, &dm, &dc);
        size_t top = layout.offset[L];
        if (pyr->mode[top] != dm || pyr->count[top] != dc)
            st = CORRUPT("LOD payload: top cell disagrees with the histogram");
    }
    if (st) {
        lod_pyramid_free(pyr);
        free(list);
        return st;
    }
    if (hist) {
        *hist = list;
        *hist_n = r.h;
    } else {
        free(list);
    }
    return STRATA_OK;
}

/* Compact packs ("SLPC", format 3, issue 18). A pack's content is written
 * column by column instead of entry by entry, so that zstd sees like with
 * like: the keys as LEB128 deltas, each entry's H, its extent, its materials as
 * deltas, its histogram counts without the last (the chunk's voxels inside the
 * world minus the others), then the levels below the top one as three kinds of
 * bytes (mixed bitmaps, modes, each byte plane of the mixed counts). The top
 * level is not stored: its single cell is the histogram's dominant material,
 * mixed when H > 1. It is the SLPK content of the same entries, rearranged: a
 * reader expands it back to SLPK (cpack_expand) and reads that, and the writer
 * keeps a compact pack only when it expands to exactly the SLPK it replaces.
 * Each direction makes one allocation (its size found first). docs/index.md
 * has the layout. */
enum { CPACK_STREAMS = 10, CPACK_HEADER = 12 + 4 * CPACK_STREAMS, CPACK_PLANES = 3 };
enum { CS_KEY, CS_H, CS_EXT, CS_MAT, CS_HIST, CS_BITS, CS_MODES, CS_C0 };

/* A write cursor; with b NULL it only counts. */
typedef struct {
    uint8_t *b;
    size_t n, cap;
} cpack_out;

static int cout_put(cpack_out *s, const void *p, size_t n)
{
    if (s->b) {
        if (n > s->cap - s->n)
            return 0;
        if (n)
            memcpy(s->b + s->n, p, n);
    }
    s->n += n;
    return 1;
}

static int cout_varint(cpack_out *s, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = (uint8_t)(v & 127);
        v >>= 7;
        t[n] |= v ? 128 : 0;
        n++;
    } while (v);
    return cout_put(s, t, n);
}

/* A read cursor over one stream. */
typedef struct {
    const uint8_t *p, *end;
} cpack_in;

static int cin_varint(cpack_in *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (s->p == s->end)
            return 0;
        uint8_t c = *s->p++;
        x |= (uint64_t)(c & 127) << shift;
        if (!(c & 128)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static int cin_take(cpack_in *s, size_t n, const uint8_t **p)
{
    if ((size_t)(s->end - s->p) < n)
        return 0;
    *p = s->p;
    s->p += n;
    return 1;
}

/* Mixed cells listed in a bitmap of m cells. */
static size_t bitmap_mixed(const uint8_t *bits, size_t m)
{
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        k += bits[i / 8] >> (i % 8) & 1;
    return k;
}

/* The bytes lod_encode writes for the single top cell (level L) of an entry of
 * H materials whose dominant is histogram index `best` with `count` voxels. */
static size_t top_level(uint8_t *t, uint32_t H, uint32_t best, uint32_t count, int L)
{
    const int bits = mode_bits(H);
    size_t n = 1 + mode_bytes(1, bits);
    memset(t, 0, n);
    t[0] = H > 1;
    t[1] = (uint8_t)best;
    if (bits == 16)
        t[2] = (uint8_t)(best >> 8);
    if (H > 1)
        for (int k = 0; k < count_width(L); k++)
            t[n++] = (uint8_t)(count >> (8 * k));
    return n;
}

/* Write (or, with s[k].b NULL, count) the streams of an SLPK content of n
 * entries; 0 when it cannot be written compactly (an entry of version 1 or 2,
 * of other levels than the first entry's, or whose top level is not the derived
 * one), or a stream is full. */
static int cpack_columns(const uint8_t *c, uint32_t n, cpack_out *s)
{
    const uint8_t *keys = c + 8, *ends = keys + 8 * (size_t)n, *area = ends + 4 * (size_t)n;
    int L = 0, low = 0;
    uint64_t prev_key = 0;
    uint32_t start = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t key = load_u64(keys + 8 * (size_t)i);
        uint32_t end = load_u32(ends + 4 * (size_t)i);
        const uint8_t *e = area + start, *e_end = area + end;
        start = end;
        if ((size_t)(e_end - e) < HEADER_BYTES)
            return 0;
        uint32_t H = load_u32(e + 8);
        if (i == 0)
            L = e[5], low = e[6];
        if (e[4] != 3 || e[5] != L || e[6] != low || L > LOD_MAX_LEVELS ||
            (size_t)(e_end - e) < HEADER_BYTES + 6 * (size_t)H)
            return 0;
        if (!cout_varint(&s[CS_KEY], key - prev_key) || !cout_varint(&s[CS_H], H) ||
            !cout_put(&s[CS_EXT], e + 12, 3))
            return 0;
        prev_key = key;
        uint16_t prev_m = 0;
        uint32_t best = 0, best_count = 0;
        for (uint32_t j = 0; j < H; j++) {
            uint16_t m = load_u16(e + HEADER_BYTES + 2 * (size_t)j);
            uint32_t count = load_u32(e + HEADER_BYTES + 2 * (size_t)H + 4 * (size_t)j);
            if (!cout_varint(&s[CS_MAT], (uint16_t)(m - prev_m)) ||
                (j + 1 < H && !cout_varint(&s[CS_HIST], count)))
                return 0;
            if (count > best_count)
                best = j, best_count = count;
            prev_m = m;
        }
        const uint8_t *at = e + HEADER_BYTES + 6 * (size_t)H;
        uint8_t top[8];
        size_t top_n = top_level(top, H, best, best_count, L);
        if ((size_t)(e_end - at) < top_n || memcmp(at, top, top_n))
            return 0;
        at += top_n;
        size_t m = H > 1 ? 8 : 0;
        const int bits = mode_bits(H);
        for (int l = L - 1; l >= low; l--) {
            const size_t bm = (m + 7) / 8, md = mode_bytes(m, bits);
            const int W = count_width(l);
            if ((size_t)(e_end - at) < bm + md || W > CPACK_PLANES)
                return 0;
            const size_t mixed = bitmap_mixed(at, m);
            if ((size_t)(e_end - at) < bm + md + (size_t)W * mixed)
                return 0;
            if (!cout_put(&s[CS_BITS], at, bm) || !cout_put(&s[CS_MODES], at + bm, md))
                return 0;
            at += bm + md;
            for (int k = 0; k < W; k++, at += mixed)
                if (!cout_put(&s[CS_C0 + k], at, mixed))
                    return 0;
            m = 8 * mixed;
        }
        if (at != e_end)
            return 0;
    }
    return 1;
}

/* SLPK content -> SLPC content (*out NULL, STRATA_OK: not expressible, keep SLPK). */
static strata_status cpack_compact(const uint8_t *c, uint8_t **out, size_t *out_size,
                                   strata_error *err)
{
    *out = NULL;
    uint32_t n = load_u32(c + 4);
    const uint8_t *area = c + 8 + 12 * (size_t)n;
    cpack_out s[CPACK_STREAMS] = {{0}};
    if (!cpack_columns(c, n, s))
        return STRATA_OK;
    size_t total = CPACK_HEADER;
    for (int k = 0; k < CPACK_STREAMS; k++)
        total += s[k].n;
    uint8_t *b = strata_malloc(total);
    if (!b)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a compact LOD pack");
    memcpy(b, LOD_CPACK_MAGIC, 4);
    memcpy(b + 4, &n, 4);
    b[8] = area[5], b[9] = area[6], b[10] = b[11] = 0; /* the first entry's L and low */
    size_t at = CPACK_HEADER;
    for (int k = 0; k < CPACK_STREAMS; k++) {
        uint32_t len = (uint32_t)s[k].n;
        memcpy(b + 12 + 4 * k, &len, 4);
        s[k] = (cpack_out){b + at, 0, len};
        at += len;
    }
    if (!cpack_columns(c, n, s)) { /* the same walk as above: cannot happen */
        free(b);
        return STRATA_OK;
    }
    *out = b;
    *out_size = total;
    return STRATA_OK;
}

/* SLPC content -> the SLPK content it rearranges, every length checked (the
 * entries themselves are checked when parsed); at most `most` bytes. */
/* A compact pack's header (n entries, levels low..L) and its streams into in[] (each
 * within the content, none after the last); *copied: the bytes of the streams copied
 * as they are (the level streams). */
static strata_status cpack_open(const uint8_t *c, size_t size, uint32_t *n, int *L, int *low,
                                cpack_in in[CPACK_STREAMS], uint32_t len[CPACK_STREAMS],
                                size_t *copied, strata_error *err)
{
    if (size < CPACK_HEADER)
        return CORRUPT("LOD compact pack: %zu bytes, no header", size);
    *n = load_u32(c + 4);
    *L = c[8], *low = c[9];
    if (*n == 0 || *n > LOD_PACK_ENTRIES || *L < 1 || *L > LOD_MAX_LEVELS || *low < 1 ||
        *low > *L || c[10] || c[11])
        return CORRUPT("LOD compact pack: bad header (%u entries, levels %d..%d)", *n, *low, *L);
    size_t at = CPACK_HEADER;
    *copied = 0;
    for (int k = 0; k < CPACK_STREAMS; k++) {
        len[k] = load_u32(c + 12 + 4 * k);
        if (len[k] > size - at)
            return CORRUPT("LOD compact pack: stream %d of %u bytes beyond the content", k, len[k]);
        in[k] = (cpack_in){c + at, c + at + len[k]};
        at += len[k];
        *copied += k >= CS_BITS ? len[k] : 0;
    }
    if (at != size)
        return CORRUPT("LOD compact pack: %zu bytes after the last stream", size - at);
    return STRATA_OK;
}

/* Put n bytes to the expanded pack, or fail: more than `most` bytes. */
#define PUT(p, k)                                                                                  \
    if (!cout_put(body, p, k))                                                                     \
        return CORRUPT("LOD compact pack: more than %zu bytes of pyramids", most);

/* Entry i's histogram of H materials (the last count derived from the `inside` voxels)
 * and its top level, expanded into body. */
static strata_status cpack_histogram(cpack_in *in, cpack_out *body, uint32_t i, uint32_t H,
                                     uint64_t inside, int L, size_t most, strata_error *err)
{
    uint64_t mat = 0, v;
    for (uint32_t j = 0; j < H; j++) {
        if (!cin_varint(&in[CS_MAT], &v) || v > UINT16_MAX || (mat += v) > UINT16_MAX)
            return CORRUPT("LOD compact pack: entry %u's materials unreadable", i);
        uint16_t m = (uint16_t)mat;
        PUT(&m, 2);
    }
    uint64_t sum = 0;
    uint32_t best = 0, best_count = 0;
    for (uint32_t j = 0; j < H; j++) {
        if (j + 1 < H && (!cin_varint(&in[CS_HIST], &v) || v > UINT32_MAX || (sum += v) >= inside))
            return CORRUPT("LOD compact pack: entry %u's histogram unreadable", i);
        uint32_t count = (uint32_t)(j + 1 < H ? v : inside - sum);
        if (count > best_count)
            best = j, best_count = count;
        PUT(&count, 4);
    }
    uint8_t top[8];
    PUT(top, top_level(top, H, best, best_count, L));
    return STRATA_OK;
}

/* Entry i's levels L - 1 down to low (H materials) expanded into body: each level's
 * bitmap and modes, then its count planes, from the level streams. */
static strata_status cpack_levels(cpack_in *in, cpack_out *body, uint32_t i, uint32_t H, int L,
                                  int low, size_t most, strata_error *err)
{
    size_t m = H > 1 ? 8 : 0;
    const int bits = mode_bits(H);
    for (int l = L - 1; l >= low; l--) {
        const uint8_t *bm, *md, *plane;
        const int W = count_width(l);
        if (W > CPACK_PLANES || !cin_take(&in[CS_BITS], (m + 7) / 8, &bm) ||
            !cin_take(&in[CS_MODES], mode_bytes(m, bits), &md))
            return CORRUPT("LOD compact pack: entry %u's level %d truncated", i, l);
        const size_t mixed = bitmap_mixed(bm, m);
        PUT(bm, (m + 7) / 8);
        PUT(md, mode_bytes(m, bits));
        for (int k = 0; k < W; k++) {
            if (!cin_take(&in[CS_C0 + k], mixed, &plane))
                return CORRUPT("LOD compact pack: entry %u's level %d truncated", i, l);
            PUT(plane, mixed);
        }
        m = 8 * mixed;
    }
    return STRATA_OK;
}

/* Entry i (levels low..L) expanded into body; *key advanced to its key. */
static strata_status cpack_entry(cpack_in *in, cpack_out *body, uint32_t i, int L, int low,
                                 size_t most, uint64_t *key, strata_error *err)
{
    uint64_t dk, H64;
    const uint8_t *ext;
    if (!cin_varint(&in[CS_KEY], &dk) || !cin_varint(&in[CS_H], &H64) || H64 == 0 || H64 > 65536 ||
        !cin_take(&in[CS_EXT], 3, &ext))
        return CORRUPT("LOD compact pack: entry %u's key, H or extent unreadable", i);
    *key += dk;
    const uint32_t H = (uint32_t)H64;
    const uint64_t inside = (uint64_t)(ext[0] + 1) * (ext[1] + 1) * (ext[2] + 1);
    uint8_t head[HEADER_BYTES] = {'S', 'L', 'O', 'D', 3, (uint8_t)L, (uint8_t)low, 0};
    memcpy(head + 8, &H, 4);
    memcpy(head + 12, ext, 3);
    PUT(head, HEADER_BYTES);
    strata_status st = cpack_histogram(in, body, i, H, inside, L, most, err);
    return st ? st : cpack_levels(in, body, i, H, L, low, most, err);
}
#undef PUT

static strata_status cpack_expand(const uint8_t *c, size_t size, size_t most, uint8_t **out,
                                  size_t *out_size, strata_error *err)
{
    *out = NULL;
    uint32_t n = 0, len[CPACK_STREAMS];
    int L = 0, low = 0;
    cpack_in in[CPACK_STREAMS];
    size_t copied = 0;
    strata_status st = cpack_open(c, size, &n, &L, &low, in, len, &copied, err);
    if (st)
        return st;
    /* At most: per entry a header, a top level (<= 6 bytes) and one derived
     * count; 2 bytes per material and 4 per count, each at least a byte here;
     * the level streams as they are. */
    const size_t dir = 8 + 12 * (size_t)n;
    size_t cap = dir + (size_t)n * (HEADER_BYTES + 6 + 4) + 2 * (size_t)len[CS_MAT] +
                 4 * (size_t)len[CS_HIST] + copied;
    if (cap > most)
        cap = most;
    if (cap < dir)
        return CORRUPT("LOD compact pack: %u entries, more than %zu bytes", n, most);
    uint8_t *b = strata_malloc(cap);
    if (!b)
        return error_set(err, STRATA_ERR_NOMEM, "cannot expand a compact LOD pack");
    memcpy(b, LOD_PACK_MAGIC, 4);
    memcpy(b + 4, &n, 4);
    cpack_out body = {b + dir, 0, cap - dir};
    uint64_t key = 0;
    for (uint32_t i = 0; i < n && !st; i++) {
        if ((st = cpack_entry(in, &body, i, L, low, most, &key, err)))
            break;
        memcpy(b + 8 + 8 * (size_t)i, &key, 8);
        const uint32_t end = (uint32_t)body.n;
        memcpy(b + 8 + 8 * (size_t)n + 4 * (size_t)i, &end, 4);
    }
    for (int k = 0; !st && k < CPACK_STREAMS; k++)
        if (in[k].p != in[k].end)
            st = CORRUPT("LOD compact pack: %zu bytes left in stream %d",
                         (size_t)(in[k].end - in[k].p), k);
    if (st) {
        free(b);
        return st;
    }
    *out = b;
    *out_size = dir + body.n;
    return STRATA_OK;
}

/* Largest content of a pyramid frame this library accepts: one pyramid of the
 * edge, or a pack (LOD_PACK_BYTES of content aimed at, one entry more at most). */
static size_t content_most(int edge)
{
    lod_pyramid layout;
    pyramid_layout(edge, &layout);
    size_t one = raw_bound(65536, layout.offset[layout.levels + 1], layout.levels);
    return 2 * one + 4 * LOD_PACK_BYTES + 12 * (size_t)LOD_PACK_ENTRIES + 8;
}

/* Check a pack's directory: n entries, keys strictly ascending, ends ascending
 * within the content. */
static strata_status check_pack(const uint8_t *c, size_t size, strata_error *err)
{
    uint32_t n;
    if (size < 8)
        return CORRUPT("LOD pack: %zu bytes, no directory", size);
    n = load_u32(c + 4);
    if (n == 0 || n > LOD_PACK_ENTRIES || (size - 8) / 12 < n)
        return CORRUPT("LOD pack: %u entries in %zu bytes", n, size);
    const uint8_t *keys = c + 8, *ends = keys + 8 * (size_t)n;
    const size_t area = size - 8 - 12 * (size_t)n;
    uint64_t prev_key = 0;
    uint32_t prev_end = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t k = load_u64(keys + 8 * (size_t)i);
        uint32_t e = load_u32(ends + 4 * (size_t)i);
        if ((i && k <= prev_key) || e <= prev_end || e > area)
            return CORRUPT("LOD pack: directory entry %u (key %" PRIu64 ", end %u) out of order", i,
                           k, e);
        prev_key = k, prev_end = e;
    }
    if (prev_end != area)
        return CORRUPT("LOD pack: %zu bytes after the last entry", area - prev_end);
    return STRATA_OK;
}

strata_status lod_frame_content(const uint8_t *frame, size_t length, int edge, uint8_t **content,
                                size_t *size_out, strata_error *err)
{
    *content = NULL;
    *size_out = 0;
    if (edge_bits(edge) < 0)
        return error_set(err, STRATA_ERR_ARG, "LOD decode: bad chunk edge %d", edge);
    unsigned long long size = ZSTD_getFrameContentSize(frame, length);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size < 8 ||
        size > content_most(edge))
        return CORRUPT("LOD payload: bad zstd frame or content size");
    if (ZSTD_findFrameCompressedSize(frame, length) != length)
        return CORRUPT("LOD payload: trailing bytes after the frame");
    if (!thread_dctx && !(thread_dctx = ZSTD_createDCtx()))
        return error_set(err, STRATA_ERR_NOMEM, "cannot create a zstd context");
    uint8_t *raw = strata_malloc((size_t)size);
    if (!raw)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %llu LOD bytes", size);
    size_t rc = ZSTD_decompressDCtx(thread_dctx, raw, (size_t)size, frame, length);
    strata_status st = STRATA_OK;
    if (ZSTD_isError(rc) || rc != size)
        st = CORRUPT("LOD payload: %s", ZSTD_isError(rc) ? ZSTD_getErrorName(rc) : "short frame");
    if (!st && !memcmp(raw, LOD_CPACK_MAGIC, 4)) {
        uint8_t *expanded;
        size_t expanded_size;
        st = cpack_expand(raw, (size_t)size, content_most(edge), &expanded, &expanded_size, err);
        if (!st) {
            free(raw);
            raw = expanded;
            size = expanded_size;
        }
    }
    if (!st && !memcmp(raw, LOD_PACK_MAGIC, 4))
        st = check_pack(raw, (size_t)size, err);
    if (st) {
        free(raw);
        return st;
    }
    *content = raw;
    *size_out = (size_t)size;
    return STRATA_OK;
}

/* bsearch's order for a pack's directory: a chunk key against a stored 8-byte key. */
static int compare_packed_key(const void *key, const void *stored)
{
    uint64_t a = *(const uint64_t *)key, b = load_u64(stored);
    return a < b ? -1 : a > b;
}

strata_status lod_content_entry(const uint8_t *content, size_t size, uint64_t key,
                                const uint8_t **entry, size_t *entry_size, strata_error *err)
{
    if (size < 4 || memcmp(content, LOD_PACK_MAGIC, 4)) {
        *entry = content;
        *entry_size = size;
        return STRATA_OK;
    }
    uint32_t n = load_u32(content + 4);
    const uint8_t *keys = content + 8, *ends = keys + 8 * (size_t)n, *area = ends + 4 * (size_t)n;
    const uint8_t *found = n ? bsearch(&key, keys, n, 8, compare_packed_key) : NULL;
    if (!found)
        return CORRUPT("LOD pack of %u pyramids holds none of chunk key %" PRIu64, n, key);
    size_t i = (size_t)(found - keys) / 8;
    uint32_t first = i ? load_u32(ends + 4 * (i - 1)) : 0, last = load_u32(ends + 4 * i);
    *entry = area + first;
    *entry_size = last - first;
    return STRATA_OK;
}

strata_status lod_parse(const uint8_t *entry, size_t size, int edge, lod_pyramid *pyr,
                        lod_count **hist, size_t *hist_n, strata_error *err)
{
    if (pyr)
        memset(pyr, 0, sizeof *pyr);
    if (edge_bits(edge) < 0)
        return error_set(err, STRATA_ERR_ARG, "LOD decode: bad chunk edge %d", edge);
    lod_pyramid layout;
    pyramid_layout(edge, &layout);
    if (size > raw_bound(65536, layout.offset[layout.levels + 1], layout.levels))
        return CORRUPT("LOD payload: %zu bytes, more than a pyramid holds", size);
    return parse_raw(entry, size, edge, pyr, hist, hist_n, NULL, err);
}

strata_status lod_decode_key(const uint8_t *frame, size_t length, int edge, uint64_t key,
                             lod_pyramid *pyr, lod_count **hist, size_t *hist_n, strata_error *err)
{
    if (pyr)
        memset(pyr, 0, sizeof *pyr);
    uint8_t *content;
    size_t size, entry_size;
    const uint8_t *entry;
    strata_status st = lod_frame_content(frame, length, edge, &content, &size, err);
    if (st)
        return st;
    st = lod_content_entry(content, size, key, &entry, &entry_size, err);
    if (!st)
        st = lod_parse(entry, entry_size, edge, pyr, hist, hist_n, err);
    free(content);
    return st;
}

strata_status lod_decode(const uint8_t *payload, size_t length, int edge, lod_pyramid *pyr,
                         lod_count **hist, size_t *hist_n, strata_error *err)
{
    if (pyr)
        memset(pyr, 0, sizeof *pyr);
    uint8_t *content;
    size_t size;
    strata_status st = lod_frame_content(payload, length, edge, &content, &size, err);
    if (st)
        return st;
    if (!memcmp(content, LOD_PACK_MAGIC, 4))
        st = CORRUPT("LOD payload: a pack where one pyramid was expected");
    else
        st = lod_parse(content, size, edge, pyr, hist, hist_n, err);
    free(content);
    return st;
}

strata_status lod_decode_histogram(const uint8_t *payload, size_t length, int edge,
                                   lod_count **hist, size_t *hist_n, strata_error *err)
{
    return lod_decode(payload, length, edge, NULL, hist, hist_n, err);
}

strata_status lod_entry_cut(const uint8_t *entry, size_t size, int edge, int lowest, uint8_t **out,
                            size_t *out_size, strata_error *err)
{
    *out = NULL;
    lod_pyramid pyr;
    size_t ends[LOD_MAX_LEVELS + 2] = {0};
    lod_pyramid layout;
    if (edge_bits(edge) < 0)
        return error_set(err, STRATA_ERR_ARG, "LOD decode: bad chunk edge %d", edge);
    pyramid_layout(edge, &layout);
    if (size > raw_bound(65536, layout.offset[layout.levels + 1], layout.levels))
        return CORRUPT("LOD payload: %zu bytes, more than a pyramid holds", size);
    strata_status st = parse_raw(entry, size, edge, &pyr, NULL, NULL, ends, err);
    if (st)
        return st;
    /* version 1 stores modes as materials, not indices: it is kept whole */
    int cut = entry[4] >= 2 && pyr.lowest < lowest && lowest <= pyr.levels;
    lod_pyramid_free(&pyr);
    size_t n = cut ? ends[lowest] : size;
    if (!(*out = strata_malloc(n)))
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %zu LOD bytes", n);
    memcpy(*out, entry, n);
    if (cut) {
        (*out)[4] = 3;
        (*out)[6] = (uint8_t)lowest;
    }
    *out_size = n;
    return STRATA_OK;
}

strata_status lod_pack(const uint64_t *keys, const uint8_t *const *entries, const size_t *sizes,
                       size_t n, int level, uint8_t **frame, size_t *length, strata_error *err)
{
    *frame = NULL;
    if (n == 0 || n > LOD_PACK_ENTRIES)
        return error_set(err, STRATA_ERR_ARG, "LOD pack of %zu entries (1..%d)", n,
                         LOD_PACK_ENTRIES);
    size_t size = 8 + 12 * n;
    for (size_t i = 0; i < n; i++)
        size += sizes[i];
    if (size - 8 - 12 * n > UINT32_MAX)
        return error_set(err, STRATA_ERR_ARG, "LOD pack of %zu bytes", size);
    uint8_t *raw = strata_malloc(size);
    size_t bound = ZSTD_compressBound(size);
    uint8_t *out = strata_malloc(bound);
    if (!raw || !out) {
        free(raw);
        free(out);
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a LOD pack of %zu bytes", size);
    }
    memcpy(raw, LOD_PACK_MAGIC, 4);
    uint32_t count = (uint32_t)n, end = 0;
    memcpy(raw + 4, &count, 4);
    uint8_t *area = raw + 8 + 12 * n;
    for (size_t i = 0; i < n; i++) {
        memcpy(raw + 8 + 8 * i, &keys[i], 8);
        memcpy(area + end, entries[i], sizes[i]);
        end += (uint32_t)sizes[i];
        memcpy(raw + 8 + 8 * n + 4 * i, &end, 4);
    }
    /* the compact layout when the entries allow it and it reads back as exactly
     * this pack (checked here, so a reader's expansion is the pack written) */
    uint8_t *compact = NULL, *back = NULL;
    size_t compact_size = 0, back_size = 0;
    strata_status st = cpack_compact(raw, &compact, &compact_size, err);
    if (!st && compact)
        st = cpack_expand(compact, compact_size, SIZE_MAX, &back, &back_size, err);
    if (st) {
        free(compact);
        free(raw);
        free(out);
        return st;
    }
    if (compact && back_size == size && !memcmp(back, raw, size)) {
        free(raw);
        raw = compact;
        size = compact_size;
    } else {
        free(compact);
    }
    free(back);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t rc = cctx ? ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level) : 0;
    if (cctx && !ZSTD_isError(rc))
        rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    if (cctx && !ZSTD_isError(rc))
        rc = ZSTD_compress2(cctx, out, bound, raw, size);
    ZSTD_freeCCtx(cctx);
    free(raw);
    if (!cctx || ZSTD_isError(rc)) {
        free(out);
        return error_set(err, cctx ? STRATA_ERR_CORRUPT : STRATA_ERR_NOMEM, "LOD pack: %s",
                         cctx ? ZSTD_getErrorName(rc) : "cannot create a zstd context");
    }
    *frame = out;
    *length = rc;
    return STRATA_OK;
}
