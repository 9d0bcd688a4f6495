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
#include "lod.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

struct lod_work {
    int edge, levels;
    lod_pyramid pyr;
    /* ping-pong per-cell histograms: cell i holds entries [start[i], start[i+1]) */
    uint32_t *start[2];
    uint16_t *mat[2];
    uint32_t *cnt[2];
    size_t cap[2];
    uint32_t *counts;   /* 65536, zero between uses */
    uint16_t *touched;  /* 65536 */
    lod_count *hist;
    size_t hist_n;
    uint8_t *raw, *out;
    size_t raw_cap, out_cap, raw_length;
    ZSTD_CCtx *cctx;
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
    p->mode = calloc(cells, sizeof *p->mode);
    p->count = calloc(cells, sizeof *p->count);
    if (!p->mode || !p->count) {
        lod_pyramid_free(p);
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a LOD pyramid of %zu cells", cells);
    }
    return STRATA_OK;
}

void lod_pyramid_free(lod_pyramid *p)
{
    free(p->mode);
    free(p->count);
    p->mode = NULL;
    p->count = NULL;
}

void lod_work_free(lod_work *wk)
{
    if (!wk)
        return;
    lod_pyramid_free(&wk->pyr);
    for (int i = 0; i < 2; i++) {
        free(wk->start[i]);
        free(wk->mat[i]);
        free(wk->cnt[i]);
    }
    free(wk->counts);
    free(wk->touched);
    free(wk->hist);
    free(wk->raw);
    free(wk->out);
    ZSTD_freeCCtx(wk->cctx);
    free(wk);
}

strata_status lod_work_create(int edge, lod_work **out, strata_error *err)
{
    *out = NULL;
    lod_work *wk = calloc(1, sizeof *wk);
    if (!wk)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate LOD scratch");
    strata_status st = lod_pyramid_alloc(edge, &wk->pyr, err);
    if (st) {
        free(wk);
        return st;
    }
    wk->edge = edge;
    wk->levels = wk->pyr.levels;
    size_t cells1 = ((size_t)edge / 2) * (edge / 2) * (edge / 2);
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        wk->cap[i] = cells1 * 2;
        wk->start[i] = malloc((cells1 + 1) * sizeof(uint32_t));
        wk->mat[i] = malloc(wk->cap[i] * sizeof(uint16_t));
        wk->cnt[i] = malloc(wk->cap[i] * sizeof(uint32_t));
        ok = ok && wk->start[i] && wk->mat[i] && wk->cnt[i];
    }
    wk->counts = calloc(65536, sizeof *wk->counts);
    wk->touched = malloc(65536 * sizeof *wk->touched);
    wk->hist = malloc(65536 * sizeof *wk->hist);
    wk->cctx = ZSTD_createCCtx();
    if (!ok || !wk->counts || !wk->touched || !wk->hist || !wk->cctx) {
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
    uint16_t *m = realloc(wk->mat[p], cap * sizeof *m);
    if (!m)
        return 0;
    wk->mat[p] = m;
    uint32_t *c = realloc(wk->cnt[p], cap * sizeof *c);
    if (!c)
        return 0;
    wk->cnt[p] = c;
    wk->cap[p] = cap;
    return 1;
}

/* Emit the counting array's touched entries into pool p at *used; returns the mode. */
static void flush_counts(lod_work *wk, int p, size_t *used, size_t touched, uint16_t *mode,
                         uint32_t *mode_count)
{
    uint16_t best = 0;
    uint32_t best_count = 0;
    for (size_t i = 0; i < touched; i++) {
        uint16_t m = wk->touched[i];
        uint32_t c = wk->counts[m];
        wk->counts[m] = 0;
        wk->mat[p][*used] = m;
        wk->cnt[p][*used] = c;
        (*used)++;
        if (c > best_count || (c == best_count && m < best))
            best = m, best_count = c;
    }
    *mode = best;
    *mode_count = best_count;
}

/* Level 1: cells of 2x2x2 voxels, only voxels inside extent counted. */
static int build_level1(lod_work *wk, const uint16_t *v, const int ext[3])
{
    const size_t C = (size_t)wk->edge, n = C / 2;
    const int full = ext[0] == (int)C && ext[1] == (int)C && ext[2] == (int)C;
    uint32_t *start = wk->start[0];
    size_t used = 0, cell = 0;
    uint16_t *mode = wk->pyr.mode + wk->pyr.offset[1];
    uint32_t *mode_count = wk->pyr.count + wk->pyr.offset[1];
    for (size_t cz = 0; cz < n; cz++)
        for (size_t cy = 0; cy < n; cy++)
            for (size_t cx = 0; cx < n; cx++, cell++) {
                start[cell] = (uint32_t)used;
                if (!pool_reserve(wk, 0, used, 8))
                    return 0;
                const uint16_t *p = v + 2 * cx + 2 * cy * C + 2 * cz * C * C;
                uint16_t a = p[0];
                if (full && p[1] == a && p[C] == a && p[C + 1] == a && p[C * C] == a &&
                    p[C * C + 1] == a && p[C * C + C] == a && p[C * C + C + 1] == a) {
                    wk->mat[0][used] = a;
                    wk->cnt[0][used++] = 8;
                    mode[cell] = a;
                    mode_count[cell] = 8;
                    continue;
                }
                size_t t = 0;
                for (size_t dz = 0; dz < 2; dz++)
                    for (size_t dy = 0; dy < 2; dy++)
                        for (size_t dx = 0; dx < 2; dx++) {
                            if ((int)(2 * cx + dx) >= ext[0] || (int)(2 * cy + dy) >= ext[1] ||
                                (int)(2 * cz + dz) >= ext[2])
                                continue;
                            uint16_t m = p[dx + dy * C + dz * C * C];
                            if (wk->counts[m]++ == 0)
                                wk->touched[t++] = m;
                        }
                flush_counts(wk, 0, &used, t, &mode[cell], &mode_count[cell]);
            }
    start[cell] = (uint32_t)used;
    return 1;
}

/* Level l + 1 from level l: merge each parent's eight children. */
static int build_level_up(lod_work *wk, int l, int from)
{
    const int to = 1 - from;
    const size_t n = (size_t)wk->edge >> l, np = n / 2;
    const uint32_t *fs = wk->start[from];
    const uint16_t *fm = wk->mat[from];
    const uint32_t *fc = wk->cnt[from];
    uint16_t *mode = wk->pyr.mode + wk->pyr.offset[l + 1];
    uint32_t *mode_count = wk->pyr.count + wk->pyr.offset[l + 1];
    size_t used = 0, cell = 0;
    if (!pool_reserve(wk, to, 0, fs[n * n * n]))
        return 0;
    for (size_t pz = 0; pz < np; pz++)
        for (size_t py = 0; py < np; py++)
            for (size_t px = 0; px < np; px++, cell++) {
                wk->start[to][cell] = (uint32_t)used;
                size_t child[8], k = 0;
                for (size_t dz = 0; dz < 2; dz++)
                    for (size_t dy = 0; dy < 2; dy++)
                        for (size_t dx = 0; dx < 2; dx++)
                            child[k++] = ((2 * pz + dz) * n + 2 * py + dy) * n + 2 * px + dx;
                /* Fast path: every non-empty child is uniform in one material. */
                int uniform = 1, seen = 0;
                uint16_t a = 0;
                uint32_t sum = 0;
                for (k = 0; k < 8 && uniform; k++) {
                    uint32_t b = fs[child[k]], e = fs[child[k] + 1];
                    if (e == b)
                        continue;
                    if (e - b != 1 || (seen && fm[b] != a))
                        uniform = 0;
                    a = fm[b], seen = 1, sum += fc[b];
                }
                if (uniform) {
                    if (seen) {
                        wk->mat[to][used] = a;
                        wk->cnt[to][used++] = sum;
                    }
                    mode[cell] = a;
                    mode_count[cell] = seen ? sum : 0;
                    continue;
                }
                size_t t = 0;
                for (k = 0; k < 8; k++)
                    for (uint32_t e = fs[child[k]]; e < fs[child[k] + 1]; e++) {
                        uint16_t m = fm[e];
                        if (wk->counts[m] == 0)
                            wk->touched[t++] = m;
                        wk->counts[m] += fc[e];
                    }
                flush_counts(wk, to, &used, t, &mode[cell], &mode_count[cell]);
            }
    wk->start[to][cell] = (uint32_t)used;
    return 1;
}

static int compare_counts(const void *a, const void *b)
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
    if (!build_level1(wk, voxels, extent))
        return error_set(err, STRATA_ERR_NOMEM, "cannot grow LOD scratch");
    int from = 0;
    for (int l = 1; l < wk->levels; l++, from = 1 - from)
        if (!build_level_up(wk, l, from))
            return error_set(err, STRATA_ERR_NOMEM, "cannot grow LOD scratch");
    /* The single top cell's histogram is the chunk's. */
    size_t n = wk->start[from][1];
    for (size_t i = 0; i < n; i++)
        wk->hist[i] = (lod_count){wk->mat[from][i], wk->cnt[from][i]};
    qsort(wk->hist, n, sizeof *wk->hist, compare_counts);
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

enum { HEADER_BYTES = 12 };

static size_t raw_size(size_t hist_n, size_t cells)
{
    return HEADER_BYTES + hist_n * 6 + cells * 6;
}

strata_status lod_encode(lod_work *wk, int level, const uint8_t **payload, size_t *length,
                         strata_error *err)
{
    const lod_pyramid *p = &wk->pyr;
    size_t cells = p->offset[p->levels + 1];
    size_t size = raw_size(wk->hist_n, cells);
    size_t bound = ZSTD_compressBound(size);
    if (size > wk->raw_cap) {
        uint8_t *raw = realloc(wk->raw, size);
        if (!raw)
            return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %zu LOD bytes", size);
        wk->raw = raw, wk->raw_cap = size;
    }
    if (bound > wk->out_cap) {
        uint8_t *out = realloc(wk->out, bound);
        if (!out)
            return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %zu LOD bytes", bound);
        wk->out = out, wk->out_cap = bound;
    }
    uint8_t *b = wk->raw;
    memcpy(b, LOD_MAGIC, 4);
    b[4] = LOD_VERSION;
    b[5] = (uint8_t)p->levels;
    b[6] = b[7] = 0;
    uint32_t h = (uint32_t)wk->hist_n;
    memcpy(b + 8, &h, 4);
    b += HEADER_BYTES;
    for (size_t i = 0; i < wk->hist_n; i++, b += 2)
        memcpy(b, &wk->hist[i].material, 2);
    for (size_t i = 0; i < wk->hist_n; i++, b += 4) {
        uint32_t c = (uint32_t)wk->hist[i].count;
        memcpy(b, &c, 4);
    }
    memcpy(b, p->mode, cells * 2);
    memcpy(b + cells * 2, p->count, cells * 4);
    size_t rc = ZSTD_CCtx_setParameter(wk->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(rc))
        rc = ZSTD_CCtx_setParameter(wk->cctx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(rc))
        rc = ZSTD_CCtx_setParameter(wk->cctx, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(rc))
        rc = ZSTD_compress2(wk->cctx, wk->out, wk->out_cap, wk->raw, size);
    if (ZSTD_isError(rc)) {
        ZSTD_CCtx_reset(wk->cctx, ZSTD_reset_session_and_parameters);
        return error_set(err, STRATA_ERR_CORRUPT, "LOD encode: %s", ZSTD_getErrorName(rc));
    }
    *payload = wk->out;
    *length = rc;
    return STRATA_OK;
}

static strata_status parse_raw(const uint8_t *b, size_t size, int edge, lod_pyramid *pyr,
                               lod_count **hist, size_t *hist_n, strata_error *err)
{
    lod_pyramid layout;
    pyramid_layout(edge, &layout);
    size_t cells = layout.offset[layout.levels + 1];
    uint32_t h;
    memcpy(&h, b + 8, 4);
    if (memcmp(b, LOD_MAGIC, 4) || b[4] != LOD_VERSION || b[5] != layout.levels || h == 0 ||
        h > 65536 || size != raw_size(h, cells))
        return error_set(err, STRATA_ERR_CORRUPT, "LOD payload: bad header or size (%zu bytes)", size);
    lod_count *list = malloc(h * sizeof *list);
    if (!list)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a LOD histogram");
    const uint8_t *m = b + HEADER_BYTES, *c = m + (size_t)h * 2;
    for (uint32_t i = 0; i < h; i++) {
        uint16_t id;
        uint32_t n;
        memcpy(&id, m + 2 * (size_t)i, 2);
        memcpy(&n, c + 4 * (size_t)i, 4);
        list[i] = (lod_count){id, n};
        if (n == 0 || (i && id <= list[i - 1].material)) {
            free(list);
            return error_set(err, STRATA_ERR_CORRUPT, "LOD payload: histogram not ascending");
        }
    }
    strata_status st = lod_pyramid_alloc(edge, pyr, err);
    if (st) {
        free(list);
        return st;
    }
    const uint8_t *cellp = c + (size_t)h * 4;
    memcpy(pyr->mode, cellp, cells * 2);
    memcpy(pyr->count, cellp + cells * 2, cells * 4);
    if (hist) {
        *hist = list;
        *hist_n = h;
    } else {
        free(list);
    }
    return STRATA_OK;
}

strata_status lod_decode(const uint8_t *payload, size_t length, int edge, lod_pyramid *pyr,
                         lod_count **hist, size_t *hist_n, strata_error *err)
{
    memset(pyr, 0, sizeof *pyr);
    if (edge_bits(edge) < 0)
        return error_set(err, STRATA_ERR_ARG, "LOD decode: bad chunk edge %d", edge);
    lod_pyramid layout;
    pyramid_layout(edge, &layout);
    size_t most = raw_size(65536, layout.offset[layout.levels + 1]);
    unsigned long long size = ZSTD_getFrameContentSize(payload, length);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size < HEADER_BYTES ||
        size > most)
        return error_set(err, STRATA_ERR_CORRUPT, "LOD payload: bad zstd frame or content size");
    if (ZSTD_findFrameCompressedSize(payload, length) != length)
        return error_set(err, STRATA_ERR_CORRUPT, "LOD payload: trailing bytes after the frame");
    if (!thread_dctx && !(thread_dctx = ZSTD_createDCtx()))
        return error_set(err, STRATA_ERR_NOMEM, "cannot create a zstd context");
    uint8_t *raw = malloc((size_t)size);
    if (!raw)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %llu LOD bytes", size);
    size_t rc = ZSTD_decompressDCtx(thread_dctx, raw, (size_t)size, payload, length);
    strata_status st;
    if (ZSTD_isError(rc) || rc != size)
        st = error_set(err, STRATA_ERR_CORRUPT, "LOD payload: %s",
                       ZSTD_isError(rc) ? ZSTD_getErrorName(rc) : "short frame");
    else
        st = parse_raw(raw, (size_t)size, edge, pyr, hist, hist_n, err);
    free(raw);
    return st;
}
