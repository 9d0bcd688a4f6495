/* simulate_active.c: the tiles where `strata simulate` must compute (see
 * simulate_active.h). */
#include "simulate_active.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static uint64_t column_key(const sim_activity *a, int64_t cx, int64_t cy, int64_t cz)
{
    return ((uint64_t)cy * (uint64_t)a->chunks[0] + (uint64_t)cx) * (uint64_t)a->chunks[2] +
           (uint64_t)cz;
}

static void key_chunk(const sim_activity *a, uint64_t key, int64_t c[3])
{
    c[2] = (int64_t)(key % (uint64_t)a->chunks[2]);
    key /= (uint64_t)a->chunks[2];
    c[0] = (int64_t)(key % (uint64_t)a->chunks[0]);
    c[1] = (int64_t)(key / (uint64_t)a->chunks[0]);
}

static int compare_keys(const void *x, const void *y)
{
    uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;
    return (p > q) - (p < q);
}

/* The own chunk's index, or -1. */
static ptrdiff_t own_index(const sim_activity *a, uint64_t key)
{
    const uint64_t *k = bsearch(&key, a->keys, a->n, sizeof key, compare_keys);
    return k ? k - a->keys : -1;
}

static int64_t min64(int64_t p, int64_t q)
{
    return p < q ? p : q;
}

static int64_t max64(int64_t p, int64_t q)
{
    return p > q ? p : q;
}

/* Voxels of chunk c along z inside the world. */
static int64_t chunk_height(const sim_activity *a, int64_t cz)
{
    return min64(a->edge, a->dims[2] - cz * a->edge);
}

int sim_activity_init(sim_activity *a, const simulation *s, int64_t tile,
                      const int64_t (*chunks)[6], size_t n)
{
    memset(a, 0, sizeof *a);
    a->edge = s->edge;
    a->tile = s->edge < tile ? s->edge : tile;
    a->tiles = a->edge / a->tile;
    for (int i = 0; i < 3; i++) {
        a->dims[i] = s->dims[i];
        a->chunks[i] = (s->dims[i] + a->edge - 1) / a->edge;
    }
    sim_candidate_reach(s, a->reach);
    const size_t per = (size_t)(a->tiles * a->tiles);
    a->keys = strata_malloc((n ? n : 1) * sizeof *a->keys);
    a->range = strata_malloc((n ? n * per : 1) * sizeof *a->range);
    if (!a->keys || !a->range)
        return -1;
    for (size_t i = 0; i < n; i++)
        a->keys[i] =
            column_key(a, chunks[i][0] / a->edge, chunks[i][1] / a->edge, chunks[i][2] / a->edge);
    qsort(a->keys, n, sizeof *a->keys, compare_keys);
    a->n = n;
    for (size_t i = 0; i < n; i++) {
        int64_t c[3];
        key_chunk(a, a->keys[i], c);
        for (size_t t = 0; t < per; t++) {
            /* Tiles of a chunk at the world's end may lie outside it: none. */
            const int64_t x = c[0] * a->edge + (int64_t)t % a->tiles * a->tile,
                          y = c[1] * a->edge + (int64_t)t / a->tiles * a->tile;
            const int inside = x < a->dims[0] && y < a->dims[1];
            a->range[i * per + t][0] = 0;
            a->range[i * per + t][1] = inside ? (int32_t)chunk_height(a, c[2]) : 0;
        }
    }
    return 0;
}

void sim_activity_free(sim_activity *a)
{
    free(a->keys), free(a->range);
    memset(a, 0, sizeof *a);
}

static int range_empty(const int32_t r[2])
{
    return r[0] >= r[1];
}

/* Own chunk i + 1 is the chunk above own chunk i. */
static int above_is_next(const sim_activity *a, size_t i)
{
    return i + 1 < a->n && a->keys[i + 1] == a->keys[i] + 1 &&
           a->keys[i] % (uint64_t)a->chunks[2] != (uint64_t)a->chunks[2] - 1;
}

/* Append block b to *blocks. 0, or -1 when out of memory (all freed). */
static int push_block(int64_t (**blocks)[6], size_t *n, size_t *cap, const int64_t b[6])
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        int64_t(*grown)[6] = strata_realloc(*blocks, *cap * sizeof *grown);
        if (!grown) {
            free(*blocks);
            *blocks = NULL, *n = 0;
            return -1;
        }
        *blocks = grown;
    }
    memcpy((*blocks)[(*n)++], b, sizeof(*blocks)[0]);
    return 0;
}

/* Own chunk i's range of tile t joins the range below it (the chunk below
 * holds it up to its top, and it starts at its bottom). */
static int joins_below(const sim_activity *a, size_t i, size_t t)
{
    const size_t per = (size_t)(a->tiles * a->tiles);
    if (i == 0 || i >= a->n || !above_is_next(a, i - 1))
        return 0;
    const int32_t *r = a->range[i * per + t];
    if (range_empty(r) || r[0] != 0)
        return 0;
    const int32_t *below = a->range[(i - 1) * per + t];
    int64_t c[3];
    key_chunk(a, a->keys[i - 1], c);
    return !range_empty(below) && below[1] == chunk_height(a, c[2]);
}

int sim_activity_targets(const sim_activity *a, int64_t (**blocks)[6], size_t *n, uint64_t *tiles)
{
    const size_t per = (size_t)(a->tiles * a->tiles);
    size_t cap = 0;
    *blocks = NULL, *n = 0, *tiles = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t t = 0; t < per; t++) {
            const int32_t *r = a->range[i * per + t];
            if (range_empty(r))
                continue;
            (*tiles)++;
            if (joins_below(a, i, t)) /* the chunk below's block holds it */
                continue;
            size_t count = 1;
            while (joins_below(a, i + count, t))
                count++;
            int64_t c[3], top[3], b[6];
            key_chunk(a, a->keys[i], c);
            key_chunk(a, a->keys[i + count - 1], top);
            b[0] = c[0] * a->edge + (int64_t)t % a->tiles * a->tile;
            b[1] = c[1] * a->edge + (int64_t)t / a->tiles * a->tile;
            b[2] = c[2] * a->edge + r[0];
            b[3] = min64(b[0] + a->tile, a->dims[0]);
            b[4] = min64(b[1] + a->tile, a->dims[1]);
            b[5] = top[2] * a->edge + a->range[(i + count - 1) * per + t][1];
            if (push_block(blocks, n, &cap, b))
                return -1;
        }
    return 0;
}

void sim_activity_tighten(sim_activity *a, const int64_t block[6], const uint8_t *may_change)
{
    const size_t per = (size_t)(a->tiles * a->tiles);
    const int64_t *b = block, t = a->tile, e = a->edge;
    const int64_t tx = (b[3] - b[0] + t - 1) / t, ty = (b[4] - b[1] + t - 1) / t;
    for (int64_t cz = b[2] / e; cz <= (b[5] - 1) / e; cz++)
        for (int64_t cy = b[1] / e; cy <= (b[4] - 1) / e; cy++)
            for (int64_t cx = b[0] / e; cx <= (b[3] - 1) / e; cx++) {
                ptrdiff_t i = own_index(a, column_key(a, cx, cy, cz));
                if (i < 0)
                    continue; /* not a block of own chunks: never asked */
                const int64_t z0 = max64(cz * e, b[2]), z1 = min64((cz + 1) * e, b[5]);
                for (int64_t y = max64(cy * e, b[1]); y < min64((cy + 1) * e, b[4]); y += t)
                    for (int64_t x = max64(cx * e, b[0]); x < min64((cx + 1) * e, b[3]); x += t) {
                        const int64_t j = (y - b[1]) / t, k = (x - b[0]) / t;
                        int64_t lo = z1, hi = z0;
                        for (int64_t z = z0; z < z1; z++)
                            if (may_change[((z - b[2]) * ty + j) * tx + k]) {
                                lo = lo < z ? lo : z;
                                hi = z + 1;
                            }
                        int32_t *r =
                            a->range[(size_t)i * per +
                                     (size_t)((y - cy * e) / t * a->tiles + (x - cx * e) / t)];
                        r[0] = lo < hi ? (int32_t)(lo - cz * e) : 0;
                        r[1] = lo < hi ? (int32_t)(hi - cz * e) : 0;
                    }
            }
}

void sim_activity_changed(sim_activity *a, const int64_t box[6])
{
    const size_t per = (size_t)(a->tiles * a->tiles);
    const int64_t e[6] = {
        max64(box[0] - a->reach[0], 0),          max64(box[1] - a->reach[0], 0),
        max64(box[2] - a->reach[1], 0),          min64(box[3] + a->reach[0], a->dims[0]),
        min64(box[4] + a->reach[0], a->dims[1]), min64(box[5] + a->reach[2], a->dims[2])};
    for (int64_t cz = e[2] / a->edge; cz <= (e[5] - 1) / a->edge; cz++)
        for (int64_t cy = e[1] / a->edge; cy <= (e[4] - 1) / a->edge; cy++)
            for (int64_t cx = e[0] / a->edge; cx <= (e[3] - 1) / a->edge; cx++) {
                ptrdiff_t i = own_index(a, column_key(a, cx, cy, cz));
                if (i < 0)
                    continue;
                const int64_t x0 = cx * a->edge, y0 = cy * a->edge, z0 = cz * a->edge;
                const int32_t lo = (int32_t)(max64(e[2], z0) - z0),
                              hi = (int32_t)(min64(e[5], z0 + a->edge) - z0);
                for (int64_t ty = (max64(e[1], y0) - y0) / a->tile;
                     ty <= (min64(e[4], y0 + a->edge) - 1 - y0) / a->tile; ty++)
                    for (int64_t tx = (max64(e[0], x0) - x0) / a->tile;
                         tx <= (min64(e[3], x0 + a->edge) - 1 - x0) / a->tile; tx++) {
                        int32_t *r = a->range[(size_t)i * per + (size_t)(ty * a->tiles + tx)];
                        if (range_empty(r))
                            r[0] = lo, r[1] = hi;
                        else
                            r[0] = r[0] < lo ? r[0] : lo, r[1] = r[1] > hi ? r[1] : hi;
                    }
            }
}
