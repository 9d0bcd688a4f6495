/*
 * bench_codec.c: chunk codec measurements on layered terrain.
 *
 * Generates a deterministic terrain world (height field from smooth value
 * noise; air, water below sea level, sand beaches and sea floor, grass and
 * soil, five undulating rock strata, bedrock, ore pockets), cuts it into
 * chunks of edge 16, 32, 64 and 128 and reports, per edge:
 *   - stored bytes of the codec rule vs plain zstd level 3 of the raw uint16 chunk;
 *   - palette vs shuffle sizes by palette index width (1, 2, 4, 8 bits);
 *   - encode and decode speed of chunk_encode / chunk_decode in MB/s of raw
 *     data (1 MB = 10^6 bytes), one thread, at zstd levels 1 and 3.
 * Usage: bench_codec [nx ny nz [seed]]   (default 512 512 256, seed 1)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "codec.h"

enum {
    AIR = 0,
    WATER = 1,
    SOIL = 2,
    SAND = 3,
    GRASS = 4,
    BEDROCK = 7,
    STRATUM_FIRST = 10,
    STRATUM_COUNT = 5,
    ORE_FIRST = 20,
    ORE_COUNT = 4,
};

typedef struct {
    int64_t nx, ny, nz;
    uint16_t *voxels; /* [z][y][x], z up */
} world;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t next_random(uint64_t *state)
{
    return mix64(*state += 0x9e3779b97f4a7c15ull);
}

/* Lattice value in [0, 1) at integer point (i, j) of noise layer `layer`. */
static double lattice(uint64_t seed, int layer, int64_t i, int64_t j)
{
    uint64_t h = mix64(seed ^ mix64((uint64_t)layer * 0x1000193u ^
                                    mix64((uint64_t)i * 73856093u ^ (uint64_t)j * 19349663u)));
    return (double)(h >> 11) / 9007199254740992.0;
}

/* Smooth 2-D value noise in [0, 1) with the given period in voxels. */
static double value_noise(uint64_t seed, int layer, double x, double y, double period)
{
    double fx = x / period, fy = y / period;
    int64_t i = (int64_t)floor(fx), j = (int64_t)floor(fy);
    double u = fx - (double)i, v = fy - (double)j;
    u = u * u * (3 - 2 * u);
    v = v * v * (3 - 2 * v);
    double a = lattice(seed, layer, i, j), b = lattice(seed, layer, i + 1, j);
    double c = lattice(seed, layer, i, j + 1), d = lattice(seed, layer, i + 1, j + 1);
    return (a * (1 - u) + b * u) * (1 - v) + (c * (1 - u) + d * u) * v;
}

/* Fractal noise: octaves of halving period and amplitude, result in [0, 1). */
static double fractal_noise(uint64_t seed, int layer, double x, double y, double period)
{
    double sum = 0, norm = 0, amplitude = 1;
    for (int octave = 0; octave < 4; octave++) {
        sum += amplitude * value_noise(seed, layer * 8 + octave, x, y, period);
        norm += amplitude;
        amplitude *= 0.5;
        period *= 0.5;
    }
    return sum / norm;
}

static void fill_column(world *w, uint64_t seed, int64_t x, int64_t y)
{
    double nz = (double)w->nz, sea = 0.43 * nz;
    int64_t surface =
        (int64_t)(nz * (0.15 + 0.6 * fractal_noise(seed, 1, (double)x, (double)y, 256)));
    int64_t soil_depth = 2 + (int64_t)(4 * value_noise(seed, 2, (double)x, (double)y, 24));
    double warp = 12 * fractal_noise(seed, 3, (double)x, (double)y, 128);
    int beach = surface <= (int64_t)sea + 2;
    for (int64_t z = 0; z < w->nz; z++) {
        uint16_t m;
        if (z > surface)
            m = z <= (int64_t)sea ? WATER : AIR;
        else if (z < 2 + (int64_t)(2 * value_noise(seed, 4, (double)x, (double)y, 8)))
            m = BEDROCK;
        else if (z == surface)
            m = beach ? SAND : GRASS;
        else if (z > surface - soil_depth)
            m = beach ? SAND : SOIL;
        else /* strata: gently folded horizontal layers of varying thickness */
            m = (uint16_t)(STRATUM_FIRST +
                           (int64_t)floor(((double)z + warp) / (0.09 * nz)) % STRATUM_COUNT);
        w->voxels[(z * w->ny + y) * w->nx + x] = m;
    }
}

/* Ore pockets: small ellipsoids inside rock, about one per 16^3 voxels of world. */
static void add_ore(world *w, uint64_t seed)
{
    uint64_t state = seed * 7 + 11;
    int64_t pockets = w->nx * w->ny * w->nz / 4096;
    for (int64_t p = 0; p < pockets; p++) {
        int64_t cx = (int64_t)(next_random(&state) % (uint64_t)w->nx);
        int64_t cy = (int64_t)(next_random(&state) % (uint64_t)w->ny);
        int64_t cz = (int64_t)(next_random(&state) % (uint64_t)w->nz);
        double r[3];
        for (int a = 0; a < 3; a++)
            r[a] = 1.0 + (double)(next_random(&state) % 300) / 100.0;
        uint16_t ore = (uint16_t)(ORE_FIRST + next_random(&state) % ORE_COUNT);
        for (int64_t z = cz - 4; z <= cz + 4; z++)
            for (int64_t y = cy - 4; y <= cy + 4; y++)
                for (int64_t x = cx - 4; x <= cx + 4; x++) {
                    if (x < 0 || y < 0 || z < 0 || x >= w->nx || y >= w->ny || z >= w->nz)
                        continue;
                    double dx = (double)(x - cx) / r[0], dy = (double)(y - cy) / r[1];
                    double dz = (double)(z - cz) / r[2];
                    uint16_t *v = &w->voxels[(z * w->ny + y) * w->nx + x];
                    if (dx * dx + dy * dy + dz * dz <= 1 && *v >= STRATUM_FIRST &&
                        *v < STRATUM_FIRST + STRATUM_COUNT)
                        *v = ore;
                }
    }
}

/*
 * The "rich" variant: scatter `per_mille` / 1000 of the voxels with random ids
 * from DECORATION_FIRST .. +DECORATION_COUNT (items, plants, machines), so that
 * chunks hold 17 to 256 distinct values, and some more than 256.
 */
enum { DECORATION_FIRST = 100, DECORATION_COUNT = 300 };

static void add_decorations(world *w, uint64_t seed, int per_mille)
{
    uint64_t state = seed * 13 + 5;
    size_t total = (size_t)(w->nx * w->ny * w->nz);
    size_t count = total / 1000 * (size_t)per_mille;
    for (size_t k = 0; k < count; k++) {
        size_t i = (size_t)(next_random(&state) % total);
        w->voxels[i] = (uint16_t)(DECORATION_FIRST + next_random(&state) % DECORATION_COUNT);
    }
}

static int make_world(world *w, uint64_t seed)
{
    w->voxels = malloc((size_t)(w->nx * w->ny * w->nz) * sizeof *w->voxels);
    if (!w->voxels)
        return -1;
    for (int64_t y = 0; y < w->ny; y++)
        for (int64_t x = 0; x < w->nx; x++)
            fill_column(w, seed, x, y);
    add_ore(w, seed);
    return 0;
}

/* ---- chunks ------------------------------------------------------------------- */

typedef struct {
    int edge;
    size_t count, n;  /* chunks, voxels per chunk */
    uint16_t *voxels; /* count * n, chunk after chunk */
} chunk_set;

static int cut_chunks(const world *w, int edge, chunk_set *set)
{
    int64_t ncx = w->nx / edge, ncy = w->ny / edge, ncz = w->nz / edge;
    set->edge = edge;
    set->n = (size_t)edge * edge * edge;
    set->count = (size_t)(ncx * ncy * ncz);
    set->voxels = malloc(set->count * set->n * sizeof *set->voxels);
    if (!set->voxels)
        return -1;
    uint16_t *out = set->voxels;
    for (int64_t cz = 0; cz < ncz; cz++)
        for (int64_t cy = 0; cy < ncy; cy++)
            for (int64_t cx = 0; cx < ncx; cx++)
                for (int64_t z = cz * edge; z < (cz + 1) * edge; z++)
                    for (int64_t y = cy * edge; y < (cy + 1) * edge; y++, out += edge)
                        memcpy(out, &w->voxels[(z * w->ny + y) * w->nx + cx * edge],
                               (size_t)edge * sizeof *out);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int distinct_values(const uint16_t *v, size_t n)
{
    static uint8_t seen[65536];
    memset(seen, 0, sizeof seen);
    int count = 0;
    for (size_t i = 0; i < n; i++)
        if (!seen[v[i]]) {
            seen[v[i]] = 1;
            count++;
        }
    return count;
}

static int width_class(int distinct)
{
    return distinct <= 2 ? 0 : distinct <= 4 ? 1 : distinct <= 16 ? 2 : 3;
}

typedef struct {
    size_t chunks, uniform, dense, over_palette;
    double plain3_all, plain3_dense, rule, shuffle, palette;
    size_t class_chunks[4];
    double class_shuffle[4], class_palette[4];
} size_report;

static void measure_sizes(const chunk_set *set, void *scratch, uint8_t *out, size_report *r)
{
    strata_error err;
    chunk_encoding enc;
    size_t bound = ZSTD_compressBound(set->n * 2);
    memset(r, 0, sizeof *r);
    r->chunks = set->count;
    for (size_t c = 0; c < set->count; c++) {
        const uint16_t *v = set->voxels + c * set->n;
        double plain = (double)ZSTD_compress(out, bound, v, set->n * 2, 3);
        r->plain3_all += plain;
        if (chunk_encode(v, set->edge, 3, scratch, out, &enc, &err) != STRATA_OK) {
            fprintf(stderr, "encode: %s\n", err.message);
            exit(1);
        }
        if (enc.codec == CODEC_UNIFORM) {
            r->uniform++;
            continue;
        }
        r->dense++;
        r->plain3_dense += plain;
        r->rule += (double)enc.length;
        chunk_encode_as(v, set->edge, 3, CODEC_SHUFFLE, scratch, out, &enc, &err);
        double shuffle = (double)enc.length;
        r->shuffle += shuffle;
        int distinct = distinct_values(v, set->n);
        if (distinct > CODEC_PALETTE_MAX) {
            r->over_palette++;
            r->palette += shuffle;
            continue;
        }
        chunk_encode_as(v, set->edge, 3, CODEC_PALETTE, scratch, out, &enc, &err);
        int k = width_class(distinct);
        r->palette += (double)enc.length;
        r->class_chunks[k]++;
        r->class_shuffle[k] += shuffle;
        r->class_palette[k] += (double)enc.length;
    }
}

static void print_sizes(const chunk_set *set, const size_report *r)
{
    static const char *const widths[4] = {"1-bit (2)", "2-bit (3-4)", "4-bit (5-16)",
                                          "8-bit (17-256)"};
    double raw_dense = (double)r->dense * (double)set->n * 2;
    printf("edge %d: %zu chunks, %zu uniform (%.1f%%), %zu dense, %zu with > %d values\n",
           set->edge, r->chunks, r->uniform, 100.0 * (double)r->uniform / (double)r->chunks,
           r->dense, r->over_palette, CODEC_PALETTE_MAX);
    printf("  all chunks:   raw %.1f MB, plain zstd-3 %.3f MB, rule %.3f MB (uniform = 0 B): "
           "rule/plain = %.3f\n",
           (double)r->chunks * (double)set->n * 2 / 1e6, r->plain3_all / 1e6, r->rule / 1e6,
           r->rule / r->plain3_all);
    if (r->dense == 0)
        return;
    printf("  dense chunks: raw %.1f MB; bytes per dense chunk: plain zstd-3 %.0f B, shuffle "
           "%.0f B, palette %.0f B, rule %.0f B\n",
           raw_dense / 1e6, r->plain3_dense / (double)r->dense, r->shuffle / (double)r->dense,
           r->palette / (double)r->dense, r->rule / (double)r->dense);
    printf("  dense ratios: raw/rule %.1fx; rule/plain-3 %.3f, shuffle/plain-3 %.3f, "
           "palette/shuffle %.3f\n",
           raw_dense / r->rule, r->rule / r->plain3_dense, r->shuffle / r->plain3_dense,
           r->palette / r->shuffle);
    for (int k = 0; k < 4; k++)
        if (r->class_chunks[k])
            printf("    palette %-15s %6zu chunks: palette %8.0f B/chunk, shuffle %8.0f B/chunk, "
                   "palette/shuffle %.3f\n",
                   widths[k], r->class_chunks[k], r->class_palette[k] / (double)r->class_chunks[k],
                   r->class_shuffle[k] / (double)r->class_chunks[k],
                   r->class_palette[k] / r->class_shuffle[k]);
}

/* Encode the chunks once with `codec` (-1: the rule); skip uniform ones unless `all`. Returns
 * the raw bytes encoded. Chunks the codec cannot encode are marked uniform (skipped). */
static double encode_pass(const chunk_set *set, int level, int codec, int all, void *scratch,
                          uint8_t *payloads, size_t bound, chunk_encoding *encs)
{
    strata_error err;
    size_t used = 0;
    for (size_t c = 0; c < set->count; c++) {
        const uint16_t *v = set->voxels + c * set->n;
        strata_status st = STRATA_OK;
        if (!all && chunk_is_uniform(v, set->n))
            encs[c].codec = CODEC_UNIFORM;
        else if (codec < 0)
            st = chunk_encode(v, set->edge, level, scratch, payloads + c * bound, &encs[c], &err);
        else
            st = chunk_encode_as(v, set->edge, level, codec, scratch, payloads + c * bound,
                                 &encs[c], &err);
        if (st != STRATA_OK)
            encs[c].codec = CODEC_UNIFORM;
        else if (all || encs[c].codec != CODEC_UNIFORM)
            used++;
    }
    return (double)used * (double)set->n * 2;
}

static void decode_pass(const chunk_set *set, void *scratch, const uint8_t *payloads, size_t bound,
                        const chunk_encoding *encs, uint16_t *decoded)
{
    strata_error err;
    for (size_t c = 0; c < set->count; c++) {
        if (encs[c].codec == CODEC_UNIFORM)
            continue;
        if (chunk_decode(payloads + c * bound, encs[c].length, encs[c].codec, set->edge, scratch,
                         decoded, &err) != STRATA_OK) {
            fprintf(stderr, "decode: %s\n", err.message);
            exit(1);
        }
    }
}

/* Best (shortest) of at least 5 timed runs of fn lasting 0.3 s in all; the machine is
 * shared, so the best run is the least disturbed one. */
#define BEST_TIME(best, statement)                                                                 \
    do {                                                                                           \
        double start_ = now();                                                                     \
        best = 1e30;                                                                               \
        for (int run_ = 0; run_ < 5 || now() - start_ < 0.3; run_++) {                             \
            double t0_ = now();                                                                    \
            statement;                                                                             \
            double t_ = now() - t0_;                                                               \
            best = t_ < best ? t_ : best;                                                          \
        }                                                                                          \
    } while (0)

/* Time encode, then decode of the payloads. Prints MB/s of raw data (10^6 bytes of
 * uint16 voxels per second) of the best run. */
static void measure_speed(const chunk_set *set, int level, int codec, int all, void *scratch,
                          uint8_t *payloads, size_t bound, uint16_t *decoded)
{
    chunk_encoding *encs = malloc(set->count * sizeof *encs);
    double raw = 0, t_encode, t_decode;
    BEST_TIME(t_encode, raw = encode_pass(set, level, codec, all, scratch, payloads, bound, encs));
    BEST_TIME(t_decode, decode_pass(set, scratch, payloads, bound, encs, decoded));
    free(encs);
    printf("    level %d %-7s on %-5s chunks: encode %6.0f MB/s, decode %6.0f MB/s\n", level,
           codec < 0                ? "rule"
           : codec == CODEC_PALETTE ? "palette"
                                    : "shuffle",
           all ? "all" : "dense", raw / t_encode / 1e6, raw / t_decode / 1e6);
}

static double plain_pass(const chunk_set *set, int level, ZSTD_CCtx *cctx, uint8_t *out,
                         size_t bound)
{
    double raw = 0;
    for (size_t c = 0; c < set->count; c++) {
        const uint16_t *v = set->voxels + c * set->n;
        if (chunk_is_uniform(v, set->n))
            continue;
        ZSTD_compressCCtx(cctx, out, bound, v, set->n * 2, level);
        raw += (double)set->n * 2;
    }
    return raw;
}

/* Plain zstd of the raw chunk, for reference speed. */
static void measure_plain_speed(const chunk_set *set, int level, uint8_t *out)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t bound = ZSTD_compressBound(set->n * 2);
    double raw = 0, elapsed;
    BEST_TIME(elapsed, raw = plain_pass(set, level, cctx, out, bound));
    ZSTD_freeCCtx(cctx);
    printf("    level %d plain   on dense chunks: encode %6.0f MB/s (raw uint16, no transform)\n",
           level, raw / elapsed / 1e6);
}

/* Sizes and speeds of one chunk edge. */
static int run_edge(const world *w, int edge)
{
    chunk_set set;
    size_t bound = chunk_encode_bound(edge);
    void *scratch = malloc(chunk_scratch_size(edge));
    uint16_t *decoded = malloc((size_t)edge * edge * edge * sizeof *decoded);
    uint8_t *payloads = NULL;
    if (cut_chunks(w, edge, &set) != 0 || !scratch || !decoded ||
        !(payloads = malloc(set.count * bound)))
        return -1;
    size_report report;
    measure_sizes(&set, scratch, payloads, &report);
    print_sizes(&set, &report);
    printf("  speed, one thread, best of >= 5 runs:\n");
    for (int level = 1; level <= 3; level += 2) {
        measure_speed(&set, level, -1, 1, scratch, payloads, bound, decoded);
        measure_speed(&set, level, -1, 0, scratch, payloads, bound, decoded);
        if (report.dense > report.over_palette)
            measure_speed(&set, level, CODEC_PALETTE, 0, scratch, payloads, bound, decoded);
        measure_speed(&set, level, CODEC_SHUFFLE, 0, scratch, payloads, bound, decoded);
        measure_plain_speed(&set, level, payloads);
    }
    free(payloads);
    free(set.voxels);
    free(scratch);
    free(decoded);
    return 0;
}

int main(int argc, char **argv)
{
    world w = {512, 512, 256, NULL};
    uint64_t seed = 1;
    if (argc >= 4) {
        w.nx = atoll(argv[1]);
        w.ny = atoll(argv[2]);
        w.nz = atoll(argv[3]);
    }
    if (argc >= 5)
        seed = strtoull(argv[4], NULL, 10);
    if (w.nx < 128 || w.ny < 128 || w.nz < 128 || w.nx % 128 || w.ny % 128 || w.nz % 128) {
        fprintf(stderr, "usage: bench_codec [nx ny nz [seed]] (multiples of 128)\n");
        return 2;
    }
    double t0 = now();
    if (make_world(&w, seed) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    printf("terrain %lld x %lld x %lld voxels (%.0f MB raw), seed %llu, generated in %.2f s\n",
           (long long)w.nx, (long long)w.ny, (long long)w.nz,
           (double)(w.nx * w.ny * w.nz) * 2 / 1e6, (unsigned long long)seed, now() - t0);
    static const int edges[] = {16, 32, 64, 128};
    for (int rich = 0; rich < 2; rich++) {
        if (rich) {
            add_decorations(&w, seed, 5);
            printf("\n== rich terrain: 0.5%% of voxels replaced by %d decoration ids ==\n",
                   DECORATION_COUNT);
        } else {
            printf("\n== layered terrain ==\n");
        }
        for (size_t e = 0; e < sizeof edges / sizeof *edges; e++)
            if (run_edge(&w, edges[e]) != 0) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
    }
    chunk_codec_release_thread();
    free(w.voxels);
    return 0;
}
