/* bench_strata.c: the strata rows of `strata bench`: commit, storage, batch updates
 * for four simulation patterns, staging, owner-side apply, point reads hot and
 * cold, routed and LOD queries, extraction. Peers are in bench_hdf5.c and
 * vdb_peer.cpp; the seed's figures are quoted in docs/benchmarks.md only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "bench_rows.h"
#include "fsutil.h"

/* Material ids of the default table (src/terrain.c). */
enum { AIR = 0, WATER = 1, SAND = 3, SEDIMENT = 4, BASALT = 9, LAVA = 14 };

static strata_status world_failed(bench *b, strata_world *w, strata_status st, const char *what)
{
    return error_set(&b->error, st, "%s: %s", what, strata_last_error(w));
}

/* Close w (when open); a failure to close is the outcome unless st already failed. */
static strata_status close_world(bench *b, strata_world *w, strata_status st, const char *what)
{
    strata_status closed = w ? strata_world_close(w) : STRATA_OK;
    return !st && closed ? world_failed(b, NULL, closed, what) : st;
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        st = (call);                                                                               \
        if (st) {                                                                                  \
            world_failed(b, w, st, what);                                                          \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static int edge_bits(int edge)
{
    int bits = 0;
    while ((1 << bits) < edge)
        bits++;
    return bits;
}

/* ---- the terrain world, commit ------------------------------------------------ */

static strata_status create_terrain(bench *b, const char *path, int defer_index,
                                    strata_commit_stats *cs, double *seconds)
{
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, b->dims, sizeof cfg.dims);
    cfg.chunk_edge = b->chunk_edge;
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = defer_index;
    strata_world *w = NULL;
    /* The previous repetition's world is removed first, not replaced by a
     * forced create: that would swap it out and delete it inside the timed
     * first commit, which is then no longer a plain commit. */
    strata_status st = b->rank == 0 ? remove_tree(path, &b->error) : STRATA_OK;
    st = error_agree(b->comm, st, &b->error);
    if (st)
        return st;
    st = strata_world_create(b->comm, path, &cfg, &opt, 0, &w);
    if (st)
        return world_failed(b, NULL, st, "creating the terrain world");
    TRY(strata_generate_terrain(w, b->seed), "generating terrain");
    MPI_Barrier(b->comm);
    double t0 = MPI_Wtime();
    TRY(strata_commit(w, cs), "committing terrain");
    *seconds = bench_slowest(b, MPI_Wtime() - t0);
done:
    st = close_world(b, w, st, "closing the terrain world");
    return st;
}

/* Commit of the whole generated terrain: durable MB/s of raw chunk data per rank. */
static strata_status bench_commit(bench *b, const char *path)
{
    int configs = b->quick ? 1 : 2, reps = b->quick ? 1 : 5;
    strata_status st = STRATA_OK;
    /* The default configuration (index built in the commit) goes last: later rows use its world. */
    for (int c = 0; c < configs && !st; c++) {
        int defer = configs - 1 - c;
        double samples[BENCH_SAMPLES_MAX];
        strata_commit_stats cs = {0};
        for (int rep = 0; rep < reps && !st; rep++) {
            double seconds = 0;
            st = create_terrain(b, path, defer, &cs, &seconds);
            samples[rep] = (double)cs.raw_bytes / 1e6 / seconds / b->size;
        }
        if (st)
            break;
        bench_row row =
            bench_row_start(b, defer ? "commit_terrain_deferred_index" : "commit_terrain", "commit",
                            "MB/s per rank", BENCH_HIGHER_IS_BETTER);
        bench_volume_text(b, row.volume, sizeof row.volume);
        snprintf(row.what, sizeof row.what,
                 "strata_commit of the freshly generated terrain (%" PRIu64 " chunks, %.1f MB raw, "
                 "%.1f MB stored), %s; MB/s = raw chunk bytes / commit seconds / ranks",
                 cs.chunks_written, cs.raw_bytes / 1e6, cs.stored_bytes / 1e6,
                 defer ? "index deferred (defer_index = 1)" : "LOD index built in the commit");
        snprintf(row.pattern, sizeof row.pattern, "every chunk dirty, written once");
        snprintf(row.target, sizeof row.target, ">= 1000 MB/s per rank");
        snprintf(row.limit, sizeof row.limit,
                 "zstd encoding%s on one core per rank, then one collective HDF5 write and fsync",
                 defer
                     ? ""
                     : " plus the LOD pyramid built from the palette indices and its zstd encode");
        row.durable = 1;
        row.count = cs.raw_bytes;
        st = bench_add(b, &row, samples, reps);
    }
    return st;
}

/* ---- storage ----------------------------------------------------------------- */

/* Fill callback: every voxel one material. */
static strata_status fill_constant(const int64_t bounds[6], int edge, uint16_t *voxels, void *ctx,
                                   char *message_out)
{
    (void)bounds, (void)message_out;
    uint16_t value = *(const uint16_t *)ctx;
    for (size_t i = 0; i < (size_t)edge * edge * edge; i++)
        voxels[i] = value;
    return STRATA_OK;
}

static strata_status uniform_world_bytes(bench *b, const char *path, int64_t z, uint64_t *bytes,
                                         uint64_t *uniform)
{
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = 256, cfg.dims[1] = 256, cfg.dims[2] = z;
    cfg.chunk_edge = 16;
    strata_world *w = NULL;
    uint16_t granite = 8;
    strata_info info;
    strata_status st = strata_world_create(b->comm, path, &cfg, NULL, STRATA_CREATE_FORCE, &w);
    if (st)
        return world_failed(b, NULL, st, "creating a uniform world");
    TRY(strata_fill(w, NULL, fill_constant, &granite), "filling a uniform world");
    TRY(strata_commit(w, NULL), "committing a uniform world");
    TRY(strata_world_info(w, &info), "describing a uniform world");
    *bytes = info.stored_bytes;
    *uniform = info.chunks_uniform;
done:
    if (w)
        strata_world_close(w);
    return st;
}

/* Bytes per uniform chunk: the slope of segment bytes between 2048 and 4096 uniform chunks. */
static strata_status bench_uniform_bytes(bench *b)
{
    char path[STRATA_PATH_MAX];
    uint64_t bytes[2], uniform[2];
    strata_status st = path_join(path, sizeof path, b->dir, "uniform", &b->error);
    for (int i = 0; i < 2 && !st; i++)
        st = uniform_world_bytes(b, path, 128 * (i + 1), &bytes[i], &uniform[i]);
    if (st)
        return st;
    double per_row =
        ((double)bytes[1] - (double)bytes[0]) / ((double)uniform[1] - (double)uniform[0]);
    bench_row row = bench_row_start(b, "uniform_chunk_bytes", "storage", "bytes per chunk",
                                    BENCH_LOWER_IS_BETTER);
    snprintf(row.volume, sizeof row.volume,
             "256 x 256 x 128 and 256 x 256 x 256 all granite, chunk 16");
    snprintf(row.what, sizeof row.what,
             "stored bytes of one uniform chunk: (segment bytes of %" PRIu64 " - of %" PRIu64
             " uniform chunks) / difference; %" PRIu64 " and %" PRIu64 " bytes in all",
             uniform[1], uniform[0], bytes[1], bytes[0]);
    snprintf(row.pattern, sizeof row.pattern, "one chunk table row, no payload");
    snprintf(row.target, sizeof row.target, "<= 64 bytes");
    snprintf(row.limit, sizeof row.limit, "the fixed-size chunk table row of the segment format");
    row.durable = 1;
    row.count = uniform[1];
    return bench_add(b, &row, &per_row, 1);
}

typedef struct {
    uint64_t chunks[3]; /* absent, uniform, dense */
    uint64_t strata_payload, zstd3;
    uint64_t zstd3_64; /* plain zstd-3 of 64^3 blocks, all of the world's box (issue 18's peer) */
    uint64_t world_total; /* every file of the world's directory */
} storage_sums;

enum { PLAIN_BLOCK = 64 };

/* Plain zstd level 3 of the world in 64^3 blocks of raw uint16 (edge blocks padded
 * with air, all-air blocks included): what HDF5's zstd filter stores for a dataset
 * chunked 64^3, without HDF5's own structures. Rank 0. */
static strata_status storage_plain64(bench *b, strata_world *w, storage_sums *s)
{
    const int64_t B = PLAIN_BLOCK, C = b->chunk_edge;
    size_t block_voxels = (size_t)(B * B * B), chunk_voxels = (size_t)(C * C * C);
    size_t bound = ZSTD_compressBound(block_voxels * 2);
    uint16_t *block = malloc(block_voxels * 2), *chunk = malloc(chunk_voxels * 2);
    void *frame = malloc(bound);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    strata_status st = block && chunk && frame && cctx
                           ? STRATA_OK
                           : error_set(&b->error, STRATA_ERR_NOMEM, "plain 64^3 walk");
    int64_t step = C < B ? C : B; /* chunks per block side: B / step */
    for (int64_t z0 = 0; z0 < b->dims[2] && !st; z0 += B)
        for (int64_t y0 = 0; y0 < b->dims[1] && !st; y0 += B)
            for (int64_t x0 = 0; x0 < b->dims[0] && !st; x0 += B) {
                memset(block, 0, block_voxels * 2);
                for (int64_t z = z0; z < z0 + B && z < b->dims[2] && !st; z += step)
                    for (int64_t y = y0; y < y0 + B && y < b->dims[1] && !st; y += step)
                        for (int64_t x = x0; x < x0 + B && x < b->dims[0] && !st; x += step) {
                            TRY(strata_load_chunk(w, x / C, y / C, z / C, chunk),
                                "loading a chunk");
                            /* the part of chunk (x/C, y/C, z/C) inside block and world */
                            for (int64_t vz = z; vz < z + step && vz < b->dims[2]; vz++)
                                for (int64_t vy = y; vy < y + step && vy < b->dims[1]; vy++)
                                    for (int64_t vx = x; vx < x + step && vx < b->dims[0]; vx++)
                                        block[((vz - z0) * B + (vy - y0)) * B + (vx - x0)] =
                                            chunk[((vz % C) * C + vy % C) * C + vx % C];
                        }
                size_t n = ZSTD_compressCCtx(cctx, frame, bound, block, block_voxels * 2, 3);
                if (ZSTD_isError(n))
                    st = error_set(&b->error, STRATA_ERR_CORRUPT, "zstd: %s", ZSTD_getErrorName(n));
                else
                    s->zstd3_64 += n;
            }
done:
    free(block);
    free(chunk);
    free(frame);
    ZSTD_freeCCtx(cctx);
    return st;
}

/* Rank 0 walks every chunk: strata's payload bytes and plain zstd-3 of the same chunks. */
static strata_status storage_walk(bench *b, strata_world *w, storage_sums *s)
{
    int64_t n[3];
    for (int a = 0; a < 3; a++)
        n[a] = (b->dims[a] + b->chunk_edge - 1) / b->chunk_edge;
    size_t voxels = (size_t)b->chunk_edge * b->chunk_edge * b->chunk_edge;
    size_t bound = ZSTD_compressBound(voxels * 2);
    uint16_t *chunk = malloc(voxels * 2);
    void *frame = malloc(bound);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    strata_status st =
        chunk && frame && cctx ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "storage walk");
    for (int64_t cz = 0; cz < n[2] && !st; cz++)
        for (int64_t cy = 0; cy < n[1] && !st; cy++)
            for (int64_t cx = 0; cx < n[0] && !st; cx++) {
                strata_chunk_meta meta;
                TRY(strata_chunk_metadata(w, cx, cy, cz, &meta), "chunk metadata");
                s->chunks[meta.kind == STRATA_CHUNK_DENSE ? 2
                                                          : meta.kind == STRATA_CHUNK_UNIFORM]++;
                if (meta.kind == STRATA_CHUNK_ABSENT)
                    continue;
                s->strata_payload += meta.stored_bytes;
                TRY(strata_load_chunk(w, cx, cy, cz, chunk), "loading a chunk");
                size_t z = ZSTD_compressCCtx(cctx, frame, bound, chunk, voxels * 2, 3);
                if (ZSTD_isError(z))
                    st = error_set(&b->error, STRATA_ERR_CORRUPT, "zstd: %s", ZSTD_getErrorName(z));
                else
                    s->zstd3 += z;
            }
done:
    free(chunk);
    free(frame);
    ZSTD_freeCCtx(cctx);
    return st;
}

static strata_status add_storage_rows(bench *b, const storage_sums *s, const strata_info *info)
{
    char volume[BENCH_TEXT_MAX];
    bench_volume_text(b, volume, sizeof volume);
    char counts[BENCH_TEXT_MAX];
    snprintf(counts, sizeof counts,
             "%" PRIu64 " dense, %" PRIu64 " uniform, %" PRIu64 " absent (air) chunks",
             s->chunks[2], s->chunks[1], s->chunks[0]);
    struct {
        const char *id, *peer, *what, *limit;
        double value;
    } rows[] = {
        {"storage_strata_payload", "strata",
         "chunk payload bytes (codec: palette or byte shuffle, then zstd)",
         "zstd on the pre-transformed chunk; uniform and air chunks store no payload",
         (double)s->strata_payload},
        {"storage_strata_files", "strata",
         "bytes of the live segment files: payloads, LOD pyramids, chunk tables, HDF5 metadata",
         "the LOD pyramids and chunk tables on top of the payloads", (double)info->stored_bytes},
        {"storage_zstd3_chunks", "zstd",
         "plain zstd level 3 of the same non-air chunks (raw uint16, one frame per chunk)",
         "no pre-transform: zstd sees interleaved low and high bytes", (double)s->zstd3},
        {"storage_world_total", "strata",
         "every file of the world's directory (segments, MANIFEST, LOCK): payloads, LOD pyramids, "
         "chunk tables, HDF5 structures; breakdown: bench/world_bytes.py",
         "the LOD pyramids (about 2x the payloads on terrain) and chunk tables on top of the "
         "payloads",
         (double)s->world_total},
        {"storage_zstd3_chunks64", "zstd",
         "plain zstd level 3 of the whole box in 64^3 chunks (raw uint16, one frame each, "
         "all-air chunks too): what HDF5's zstd filter stores, without HDF5's structures",
         "no pre-transform; all-air chunks cost a small frame each", (double)s->zstd3_64},
    };
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && !st; i++) {
        bench_row row = bench_row_start(b, rows[i].id, "storage", "bytes", BENCH_LOWER_IS_BETTER);
        snprintf(row.peer, sizeof row.peer, "%s", rows[i].peer);
        snprintf(row.volume, sizeof row.volume, "%s", volume);
        snprintf(row.what, sizeof row.what, "%s", rows[i].what);
        snprintf(row.pattern, sizeof row.pattern, "%s", counts);
        snprintf(row.limit, sizeof row.limit, "%s", rows[i].limit);
        if (i == 3) {
            snprintf(row.compare[0], sizeof row.compare[0], "storage_zstd3_chunks64");
            snprintf(row.compare[1], sizeof row.compare[1], "storage_hdf5_zstd3_file");
            snprintf(row.compare[2], sizeof row.compare[2], "vdb_file_bytes");
            snprintf(row.target, sizeof row.target,
                     ">= 1.25x smaller than plain zstd-3 64^3 chunks (issue 18)");
        } else if (i < 2) {
            snprintf(row.compare[0], sizeof row.compare[0], "storage_zstd3_chunks");
            snprintf(row.compare[1], sizeof row.compare[1], "storage_hdf5_zstd3_file");
            snprintf(row.compare[2], sizeof row.compare[2], "vdb_file_bytes");
            snprintf(row.target, sizeof row.target, ">= 1.25x smaller than zstd-3, 5x than .vdb");
        }
        row.durable = 1;
        row.count = s->chunks[1] + s->chunks[2];
        st = bench_add(b, &row, &rows[i].value, 1);
    }
    if (!st && s->chunks[2]) {
        double per_chunk = (double)s->strata_payload / (double)s->chunks[2];
        bench_row row = bench_row_start(b, "dense_chunk_bytes", "storage", "bytes per chunk",
                                        BENCH_LOWER_IS_BETTER);
        snprintf(row.volume, sizeof row.volume, "%s", volume);
        snprintf(row.what, sizeof row.what,
                 "mean payload bytes of a dense terrain chunk (%d^3 uint16 = %d raw bytes)",
                 b->chunk_edge, 2 * b->chunk_edge * b->chunk_edge * b->chunk_edge);
        snprintf(row.pattern, sizeof row.pattern, "%s", counts);
        snprintf(row.limit, sizeof row.limit, "entropy of the layer boundaries and ore pockets");
        row.durable = 1;
        row.count = s->chunks[2];
        st = bench_add(b, &row, &per_chunk, 1);
    }
    return st;
}

static strata_status bench_storage(bench *b, const char *path)
{
    strata_world *w = NULL;
    storage_sums s;
    memset(&s, 0, sizeof s);
    strata_info info;
    strata_status st = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
    if (st)
        return world_failed(b, NULL, st, "opening the terrain world");
    TRY(strata_world_info(w, &info), "describing the terrain world");
    strata_status local = b->rank == 0 ? storage_walk(b, w, &s) : STRATA_OK;
    if (b->rank == 0 && !local)
        local = storage_plain64(b, w, &s);
    if (b->rank == 0 && !local)
        local = bench_directory_bytes(b, path, &s.world_total);
    st = error_agree(b->comm, local, &b->error);
    if (st)
        goto done;
    MPI_Bcast(&s, sizeof s, MPI_BYTE, 0, b->comm);
    st = add_storage_rows(b, &s, &info);
done:
    strata_world_close(w);
    return st;
}

/* ---- update patterns -------------------------------------------------------------- */

enum { PATTERN_UNIFORM, PATTERN_EROSION, PATTERN_VOLCANIC, PATTERN_RIVER, PATTERN_COUNT };
static const char *const pattern_name[PATTERN_COUNT] = {"uniform", "erosion", "volcanic", "river"};
static const char *const pattern_text[PATTERN_COUNT] = {
    "uniform random voxels over the whole volume, random solid materials",
    "sparse surface erosion: random columns, the top 1-3 solid voxels turn to sand, sediment or "
    "air",
    "clustered volcanic: 6 vents at the surface, Gaussian blobs (sigma 8 voxels) of lava and "
    "basalt",
    "a linear river: a meandering line across x, 7 voxels wide, 3 deep below the surface, water",
};

/* Top solid (not air, not water) voxel of each column: rank 0 walks chunk columns
 * top down, then broadcasts. Collective. */
static strata_status surface_heights(bench *b, strata_world *w, int32_t **out)
{
    int64_t nx = b->dims[0], ny = b->dims[1], c = b->chunk_edge;
    int32_t *h = malloc((size_t)(nx * ny) * sizeof *h);
    uint16_t *chunk = malloc((size_t)(c * c * c) * sizeof *chunk);
    strata_status st =
        h && chunk ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "height map");
    for (int64_t i = 0; h && i < nx * ny; i++)
        h[i] = -1;
    for (int64_t cy = 0; b->rank == 0 && !st && cy * c < ny; cy++)
        for (int64_t cx = 0; !st && cx * c < nx; cx++) {
            int64_t missing = 0;
            for (int64_t cz = (b->dims[2] - 1) / c; cz >= 0 && !st; cz--) {
                TRY(strata_load_chunk(w, cx, cy, cz, chunk), "loading a chunk for the height map");
                missing = 0;
                for (int64_t y = 0; y < c && cy * c + y < ny; y++)
                    for (int64_t x = 0; x < c && cx * c + x < nx; x++) {
                        int32_t *top = &h[(cy * c + y) * nx + cx * c + x];
                        for (int64_t z = c - 1; *top < 0 && z >= 0; z--) {
                            uint16_t m = chunk[(z * c + y) * c + x];
                            if (cz * c + z < b->dims[2] && m != AIR && m != WATER)
                                *top = (int32_t)(cz * c + z);
                        }
                        missing += *top < 0;
                    }
                if (!missing)
                    break;
            }
        }
done:
    free(chunk);
    st = error_agree(b->comm, st, &b->error);
    if (!st)
        MPI_Bcast(h, (int)(nx * ny), MPI_INT32_T, 0, b->comm);
    if (st) {
        free(h);
        h = NULL;
    }
    *out = h;
    return st;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Standard normal deviate (Box-Muller) from the generator. */
static double gaussian(uint64_t *state)
{
    double u = ((double)(bench_random(state) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(bench_random(state) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void make_update(const bench *b, int pattern, uint64_t *state, const int32_t *heights,
                        strata_update *u)
{
    const int64_t *d = b->dims;
    memset(u, 0, sizeof *u);
    int64_t x = bench_random_below(state, d[0]), y = bench_random_below(state, d[1]), z = 0;
    uint16_t m = (uint16_t)(2 + bench_random_below(state, 12));
    if (pattern == PATTERN_UNIFORM) {
        z = bench_random_below(state, d[2]);
    } else if (pattern == PATTERN_EROSION) {
        z = heights[y * d[0] + x] - bench_random_below(state, 3);
        static const uint16_t eroded[3] = {SAND, SEDIMENT, AIR};
        m = eroded[bench_random_below(state, 3)];
    } else if (pattern == PATTERN_VOLCANIC) {
        uint64_t vent_state = b->seed * 977 + (uint64_t)bench_random_below(state, 6);
        int64_t vx = bench_random_below(&vent_state, d[0]),
                vy = bench_random_below(&vent_state, d[1]);
        x = clamp64(vx + (int64_t)llround(8 * gaussian(state)), 0, d[0] - 1);
        y = clamp64(vy + (int64_t)llround(8 * gaussian(state)), 0, d[1] - 1);
        z = heights[vy * d[0] + vx] + (int64_t)llround(8 * gaussian(state));
        m = bench_random_below(state, 4) ? LAVA : BASALT;
    } else {
        double phase = 6.283185307179586 * (double)x / (double)(d[0] > 256 ? 256 : d[0]);
        int64_t centre = d[1] / 2 + (int64_t)llround((double)d[1] / 8 * sin(phase));
        y = clamp64(centre + bench_random_below(state, 7) - 3, 0, d[1] - 1);
        z = heights[y * d[0] + x] - bench_random_below(state, 3);
        m = WATER;
    }
    u->x = x, u->y = y, u->z = clamp64(z, 0, d[2] - 1), u->material = m;
}

/* This rank's share of a global count. */
static size_t my_share(const bench *b, uint64_t total)
{
    return (size_t)(total / (uint64_t)b->size + ((uint64_t)b->rank < total % (uint64_t)b->size));
}

static strata_status pattern_row(bench *b, strata_world *w, const int32_t *heights, int pattern,
                                 uint64_t total)
{
    size_t n = my_share(b, total);
    strata_update *u = malloc((n ? n : 1) * sizeof *u);
    strata_status st = error_agree(
        b->comm, u ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu updates", n),
        &b->error);
    if (st) {
        free(u);
        return st;
    }
    uint64_t state =
        b->seed * 1000003 + (uint64_t)pattern * 7919 + (uint64_t)b->rank * 104729 + total;
    for (size_t i = 0; i < n; i++)
        make_update(b, pattern, &state, heights, &u[i]);
    int reps = b->quick ? 3 : total >= 10000000 ? 3 : 5;
    double samples[BENCH_SAMPLES_MAX];
    for (int rep = 0; rep < reps && !st; rep++) {
        MPI_Barrier(b->comm);
        double t0 = MPI_Wtime();
        TRY(strata_update_batch(w, u, n, NULL), "a batch of updates");
        samples[rep] = (double)total / bench_slowest(b, MPI_Wtime() - t0);
    }
    char id[64];
    snprintf(id, sizeof id, "update_%s_%.0e", pattern_name[pattern], (double)total);
    bench_row row = bench_row_start(b, id, "updates", "updates/s", BENCH_HIGHER_IS_BETTER);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(row.what, sizeof row.what,
             "strata_update_batch of %" PRIu64 " updates in all (1/ranks from each rank): staged, "
             "routed with MPI_Alltoallv, applied by the owners; chunks already resident, not "
             "committed",
             total);
    snprintf(row.pattern, sizeof row.pattern, "%s", pattern_text[pattern]);
    snprintf(row.limit, sizeof row.limit,
             "memory bandwidth of staging, the radix sort by chunk key and the Alltoallv; random "
             "patterns touch one cache line per update");
    row.count = total;
    st = bench_add(b, &row, samples, reps);
done:
    free(u);
    return st;
}

/* The 1,000,000-update row of the issue: only the flush (route + apply) is timed. */
static strata_status route_apply_row(bench *b, strata_world *w)
{
    uint64_t total = 1000000;
    size_t n = my_share(b, total);
    uint64_t state = b->seed * 31 + (uint64_t)b->rank * 1299709;
    strata_status st = STRATA_OK;
    int reps = b->quick ? 3 : 5;
    double samples[BENCH_SAMPLES_MAX];
    for (int rep = 0; rep < reps && !st; rep++) {
        for (size_t i = 0; i < n && !st; i++)
            st = strata_stage(w, bench_random_below(&state, b->dims[0]),
                              bench_random_below(&state, b->dims[1]),
                              bench_random_below(&state, b->dims[2]),
                              (uint16_t)(2 + bench_random_below(&state, 12)));
        MPI_Barrier(b->comm);
        double t0 = MPI_Wtime();
        TRY(strata_flush(w, NULL), "flushing 1,000,000 updates");
        samples[rep] = bench_slowest(b, MPI_Wtime() - t0);
    }
    bench_row row =
        bench_row_start(b, "route_apply_1M_uniform", "updates", "s", BENCH_LOWER_IS_BETTER);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(row.what, sizeof row.what,
             "strata_flush of 1,000,000 staged updates in all: route (Alltoall counts, Alltoallv "
             "payloads, counting or radix sort) and apply; staging not timed");
    snprintf(row.pattern, sizeof row.pattern, "%s", pattern_text[PATTERN_UNIFORM]);
    snprintf(row.target, sizeof row.target, "< 0.1 s at 2 ranks");
    snprintf(row.limit, sizeof row.limit,
             "memory traffic: 16-byte records copied by packing, Alltoallv and the sort by key");
    row.count = total;
    st = bench_add(b, &row, samples, reps);
done:
    return st;
}

/* strata_stage of one update, ns; the flush after each repetition is not timed. */
static strata_status stage_row(bench *b, strata_world *w)
{
    size_t n = b->quick ? 200000 : 1000000;
    int64_t(*p)[3] = malloc(n * sizeof *p);
    strata_status st = error_agree(
        b->comm, p ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu points", n),
        &b->error);
    if (st) {
        free(p);
        return st;
    }
    uint64_t state = b->seed * 17 + (uint64_t)b->rank;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 3; a++)
            p[i][a] = bench_random_below(&state, b->dims[a]);
    double samples[BENCH_SAMPLES_MAX];
    int reps = 5;
    for (int rep = 0; rep < reps && !st; rep++) {
        strata_status local = STRATA_OK;
        double t0 = MPI_Wtime();
        for (size_t i = 0; i < n && !local; i++)
            local = strata_stage(w, p[i][0], p[i][1], p[i][2], (uint16_t)(i & 15));
        double t = MPI_Wtime() - t0;
        st = error_agree(b->comm, local ? world_failed(b, w, local, "staging") : STRATA_OK,
                         &b->error);
        if (st)
            break;
        samples[rep] = bench_slowest(b, t) / (double)n * 1e9;
        TRY(strata_flush(w, NULL), "flushing staged updates");
    }
    bench_row row =
        bench_row_start(b, "stage_one", "updates", "ns per update", BENCH_LOWER_IS_BETTER);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(
        row.what, sizeof row.what,
        "strata_stage of one update (bounds check, Morton key, append), %zu per rank in a loop", n);
    snprintf(row.pattern, sizeof row.pattern, "uniform random voxels, coordinates precomputed");
    snprintf(row.target, sizeof row.target, "<= 50 ns");
    snprintf(row.limit, sizeof row.limit,
             "the Morton key computation and the store of a 16-byte record");
    row.count = n;
    st = bench_add(b, &row, samples, reps);
done:
    free(p);
    return st;
}

typedef struct {
    uint64_t key;
    uint32_t voxel;
    int64_t x, y, z;
} keyed_voxel;

static int compare_keyed(const void *a, const void *b)
{
    const keyed_voxel *p = a, *q = b;
    if (p->key != q->key)
        return p->key < q->key ? -1 : 1;
    return p->voxel < q->voxel ? -1 : p->voxel > q->voxel;
}

/* Updates of own chunks only, sorted by (chunk key, voxel): the owner-side apply rate. */
static strata_status apply_sorted_row(bench *b, strata_world *w)
{
    size_t n = b->quick ? 200000 : 1000000;
    keyed_voxel *v = malloc(n * sizeof *v);
    strata_status st = error_agree(
        b->comm, v ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu voxels", n),
        &b->error);
    if (st) {
        free(v);
        return st;
    }
    int bits = edge_bits(b->chunk_edge);
    int64_t mask = b->chunk_edge - 1;
    uint64_t state = b->seed * 101 + (uint64_t)b->rank * 7;
    strata_status local = STRATA_OK;
    for (size_t i = 0; i < n && !local;) {
        int64_t x = bench_random_below(&state, b->dims[0]),
                y = bench_random_below(&state, b->dims[1]);
        int64_t z = bench_random_below(&state, b->dims[2]);
        int owner = -1;
        local = strata_owner(w, x, y, z, &owner);
        if (!local && owner == b->rank) {
            v[i] = (keyed_voxel){
                .voxel = (uint32_t)((x & mask) | (y & mask) << bits | (z & mask) << 2 * bits),
                .x = x,
                .y = y,
                .z = z};
            local = strata_chunk_key(w, x >> bits, y >> bits, z >> bits, &v[i].key);
            i++;
        }
    }
    st = error_agree(b->comm, local ? world_failed(b, w, local, "owner lookup") : STRATA_OK,
                     &b->error);
    if (st)
        goto done;
    qsort(v, n, sizeof *v, compare_keyed);
    int reps = b->quick ? 3 : 5;
    double samples[BENCH_SAMPLES_MAX];
    for (int rep = -1; rep < reps && !st; rep++) { /* rep -1 makes the chunks dense and resident */
        for (size_t i = 0; i < n && !local; i++)
            local = strata_stage(w, v[i].x, v[i].y, v[i].z, (uint16_t)(2 + (i + (size_t)rep) % 12));
        st = error_agree(b->comm, local ? world_failed(b, w, local, "staging") : STRATA_OK,
                         &b->error);
        if (st)
            break;
        MPI_Barrier(b->comm);
        double t0 = MPI_Wtime();
        TRY(strata_flush(w, NULL), "flushing own-range updates");
        double t = bench_slowest(b, MPI_Wtime() - t0);
        if (rep >= 0)
            samples[rep] = (double)n / t;
    }
    bench_row row = bench_row_start(b, "apply_sorted_own", "updates", "updates/s per rank",
                                    BENCH_HIGHER_IS_BETTER);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(row.what, sizeof row.what,
             "strata_flush of %zu updates per rank, all in the rank's own chunks and already in "
             "Morton (chunk key, voxel) order; chunks dense and resident; staging not timed",
             n);
    snprintf(row.pattern, sizeof row.pattern,
             "uniform random voxels of the rank's own key range, sorted");
    snprintf(row.target, sizeof row.target, ">= 50,000,000 updates/s per rank");
    snprintf(row.limit, sizeof row.limit,
             "the flush packs and self-exchanges the records and checks their order (routing "
             "buffers kept in the world, so no page faults), then one store per record");
    row.count = n;
    st = bench_add(b, &row, samples, reps);
done:
    free(v);
    return st;
}

static strata_status bench_updates(bench *b, const char *path)
{
    strata_world *w = NULL;
    int32_t *heights = NULL;
    strata_status st = strata_world_open(b->comm, path, STRATA_WRITE, NULL, &w);
    if (st)
        return world_failed(b, NULL, st, "opening the terrain world");
    st = surface_heights(b, w, &heights);
    static const uint64_t sizes[] = {100000, 1000000, 10000000};
    int size_count = b->quick ? 1 : 3;
    for (int p = 0; p < PATTERN_COUNT && !st; p++)
        for (int s = 0; s < size_count && !st; s++)
            st = pattern_row(b, w, heights, p, sizes[s]);
    if (!st)
        st = route_apply_row(b, w);
    if (!st)
        st = stage_row(b, w);
    if (!st)
        st = apply_sorted_row(b, w);
    free(heights);
    strata_world_close(w); /* the updates are discarded: the world stays the terrain */
    return st;
}

/* ---- point reads ------------------------------------------------------------------ */

/* Drop the world's files from the page cache (they are clean after the commit's fsync). */
static void drop_page_cache(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[STRATA_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    closedir(d);
}

static int64_t (*random_points(const bench *b, size_t n, uint64_t seed))[3]
{
    int64_t(*p)[3] = malloc((n ? n : 1) * sizeof *p);
    uint64_t state = seed;
    for (size_t i = 0; p && i < n; i++)
        for (int a = 0; a < 3; a++)
            p[i][a] = bench_random_below(&state, b->dims[a]);
    return p;
}

static strata_status timed_reads(bench *b, strata_world *w, int64_t (*p)[3], size_t n, double *ns)
{
    uint64_t sum = 0;
    strata_status local = STRATA_OK;
    MPI_Barrier(b->comm);
    double t0 = MPI_Wtime();
    for (size_t i = 0; i < n && !local; i++) {
        uint16_t m;
        local = strata_read_voxel(w, p[i][0], p[i][1], p[i][2], &m);
        sum += m;
    }
    double t = MPI_Wtime() - t0;
    strata_status st = error_agree(
        b->comm, local ? world_failed(b, w, local, "reading a voxel") : STRATA_OK, &b->error);
    *ns = bench_slowest(b, t) / (double)n * 1e9;
    if (sum == UINT64_MAX) /* keeps the loop from being optimised away */
        fprintf(stderr, "unlikely sum\n");
    return st;
}

static void read_row_text(bench *b, bench_row *row, const char *what, const char *limit, size_t n)
{
    bench_volume_text(b, row->volume, sizeof row->volume);
    snprintf(row->what, sizeof row->what, "%s", what);
    snprintf(row->pattern, sizeof row->pattern,
             "%zu uniform random voxels per rank over the whole volume (every chunk)", n);
    snprintf(row->limit, sizeof row->limit, "%s", limit);
    row->count = n;
}

static strata_status hot_reads(bench *b, strata_world *w, const char *prefix)
{
    size_t n = b->quick ? 200000 : 2000000;
    int64_t(*p)[3] = random_points(b, n, b->seed * 3 + (uint64_t)b->rank);
    strata_status st = error_agree(
        b->comm, p ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu points", n),
        &b->error);
    if (st) {
        free(p);
        return st;
    }
    /* Make every chunk resident first: this row is about resident data. */
    double warm;
    int64_t c = b->chunk_edge, corners = 0;
    for (int64_t z = 0; z < b->dims[2]; z += c)
        for (int64_t y = 0; y < b->dims[1]; y += c)
            for (int64_t x = 0; x < b->dims[0]; x += c)
                corners++;
    int64_t(*q)[3] = malloc((size_t)corners * sizeof *q);
    st = error_agree(b->comm, q ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "corners"),
                     &b->error);
    size_t k = 0;
    for (int64_t z = 0; q && z < b->dims[2]; z += c)
        for (int64_t y = 0; y < b->dims[1]; y += c)
            for (int64_t x = 0; x < b->dims[0]; x += c)
                q[k][0] = x, q[k][1] = y, q[k][2] = z, k++;
    if (!st)
        st = timed_reads(b, w, q, k, &warm);
    free(q);
    double samples[BENCH_SAMPLES_MAX];
    int reps = 5;
    for (int rep = 0; rep < reps && !st; rep++)
        st = timed_reads(b, w, p, n, &samples[rep]);
    free(p);
    if (st)
        return st;
    char id[64];
    snprintf(id, sizeof id, "%sread_voxel_hot", prefix);
    bench_row row = bench_row_start(b, id, "reads", "ns per read", BENCH_LOWER_IS_BETTER);
    read_row_text(
        b, &row,
        "strata_read_voxel of the committed state, every chunk resident "
        "(each rank reads any voxel: others' chunks come through its committed-copy cache)",
        "the chunk hash lookup (skipped when the chunk repeats) and one cache miss into "
        "a 64 KiB chunk",
        n);
    snprintf(row.compare[0], sizeof row.compare[0], "vdb_read_hot");
    snprintf(row.target, sizeof row.target, "no slower than OpenVDB's value accessor");
    return bench_add(b, &row, samples, reps);
}

static strata_status cold_reads(bench *b, const char *path, const char *prefix)
{
    size_t n = b->quick ? 300 : 2000;
    int64_t(*p)[3] = random_points(b, n, b->seed * 5 + (uint64_t)b->rank);
    strata_status st = error_agree(
        b->comm, p ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu points", n),
        &b->error);
    double samples[BENCH_SAMPLES_MAX];
    int reps = 3;
    for (int rep = 0; rep < reps && !st; rep++) {
        if (b->rank == 0)
            drop_page_cache(path);
        MPI_Barrier(b->comm);
        strata_world *w = NULL;
        st = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
        if (st) {
            world_failed(b, NULL, st, "reopening the terrain world");
            break;
        }
        st = timed_reads(b, w, p, n, &samples[rep]);
        strata_world_close(w);
    }
    free(p);
    if (st)
        return st;
    char id[64];
    snprintf(id, sizeof id, "%sread_voxel_cold", prefix);
    bench_row row = bench_row_start(b, id, "reads", "ns per read", BENCH_LOWER_IS_BETTER);
    read_row_text(b, &row,
                  "strata_read_voxel right after close and reopen, the world's files "
                  "dropped from the page cache (posix_fadvise DONTNEED): most reads load a chunk",
                  "reading and decoding one chunk (zstd) per first touch; the disk", n);
    return bench_add(b, &row, samples, reps);
}

static strata_status routed_queries(bench *b, strata_world *w)
{
    uint64_t total = b->quick ? 200000 : 1000000;
    size_t n = my_share(b, total);
    int64_t(*p)[3] = random_points(b, n, b->seed * 7 + (uint64_t)b->rank);
    uint16_t *out = malloc((n ? n : 1) * sizeof *out);
    strata_status st = error_agree(
        b->comm, p && out ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu points", n),
        &b->error);
    double samples[BENCH_SAMPLES_MAX];
    int reps = 3;
    for (int rep = 0; rep < reps && !st; rep++) {
        MPI_Barrier(b->comm);
        double t0 = MPI_Wtime();
        TRY(strata_query_points(w, (const int64_t(*)[3])p, n, out), "routed point query");
        samples[rep] = bench_slowest(b, MPI_Wtime() - t0) / (double)total * 1e9;
    }
    if (!st) {
        bench_row row =
            bench_row_start(b, "query_points_L0", "reads", "ns per point", BENCH_LOWER_IS_BETTER);
        read_row_text(b, &row,
                      "strata_query_points, one collective batch routed to the owners "
                      "(sees flushed state); ns = batch seconds / points in all",
                      "two Alltoallv exchanges and a radix sort of the batch", n);
        st = bench_add(b, &row, samples, reps);
    }
    /* Fewer points: LOD queries below the chunk level cost far more per point. */
    uint64_t lod_total = total / 10;
    size_t lod_n = my_share(b, lod_total);
    int levels[2] = {3, edge_bits(b->chunk_edge)};
    for (int l = 0; l < 2 && !st; l++) {
        for (int rep = 0; rep < reps && !st; rep++) {
            MPI_Barrier(b->comm);
            double t0 = MPI_Wtime();
            TRY(strata_query_lod(w, (const int64_t(*)[3])p, lod_n, levels[l], -1.0, out, NULL),
                "LOD point query");
            samples[rep] = bench_slowest(b, MPI_Wtime() - t0) / (double)lod_total * 1e9;
        }
        char id[64];
        snprintf(id, sizeof id, "query_lod_L%d", levels[l]);
        bench_row row = bench_row_start(b, id, "reads", "ns per point", BENCH_LOWER_IS_BETTER);
        char what[BENCH_TEXT_MAX];
        snprintf(what, sizeof what,
                 "strata_query_lod at level %d (blocks of %d^3 voxels), one "
                 "collective batch; ns = batch seconds / points in all",
                 levels[l], 1 << levels[l]);
        read_row_text(b, &row, what, "routing the batch; the pyramid cells read per point", lod_n);
        st = bench_add(b, &row, samples, reps);
    }
done:
    free(p);
    free(out);
    return st;
}

static strata_status bench_reads(bench *b, const char *path)
{
    strata_world *w = NULL;
    strata_status st = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
    if (st)
        return world_failed(b, NULL, st, "opening the terrain world");
    st = hot_reads(b, w, "");
    if (!st)
        st = routed_queries(b, w);
    strata_world_close(w);
    if (!st)
        st = cold_reads(b, path, "");
    return st;
}

/* ---- the LOD index: region queries, rays, reindex ---------------------------------- */

static strata_status index_queries(bench *b, strata_world *w)
{
    int64_t box[6] = {0, 0, 0, b->dims[0], b->dims[1], b->dims[2]};
    int reps = b->quick ? 2 : 5, level = 3;
    double samples[BENCH_SAMPLES_MAX];
    size_t regions = 0;
    strata_status st = STRATA_OK;
    for (int rep = 0; rep < reps && !st; rep++) {
        strata_region *r = NULL;
        MPI_Barrier(b->comm);
        double t0 = MPI_Wtime();
        TRY(strata_query_region(w, box, level, 0.95, &r, &regions), "region query");
        samples[rep] = bench_slowest(b, MPI_Wtime() - t0) * 1e3;
        free(r);
    }
    bench_row row =
        bench_row_start(b, "query_region_whole", "index", "ms per query", BENCH_LOWER_IS_BETTER);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(row.what, sizeof row.what,
             "strata_query_region of the whole world, finest level %d (8^3 blocks), threshold 0.95 "
             "(%zu regions returned to every rank); collective",
             level, regions);
    snprintf(row.pattern, sizeof row.pattern, "one box: the whole volume");
    snprintf(row.limit, sizeof row.limit,
             "the number of regions returned (mixed chunks split to their pyramid cells)");
    row.count = regions;
    TRY(bench_add(b, &row, samples, reps), "adding a row");
    /* Rays from the sky down into the ground at random columns, slanted. */
    int rays = b->quick ? 50 : 200;
    uint64_t state = b->seed * 41, steps = 0, hits = 0;
    for (int rep = 0; rep < 3 && !st; rep++) {
        MPI_Barrier(b->comm);
        double t0 = MPI_Wtime();
        for (int i = 0; i < rays && !st; i++) {
            double from[3] = {(double)bench_random_below(&state, b->dims[0]) + 0.5,
                              (double)bench_random_below(&state, b->dims[1]) + 0.5,
                              (double)b->dims[2] - 0.5};
            double dir[3] = {0.3, -0.2, -1};
            strata_ray_hit hit;
            TRY(strata_ray(w, from, dir, INFINITY, &hit), "ray cast");
            steps += hit.steps;
            hits += (uint64_t)hit.hit;
        }
        samples[rep] = bench_slowest(b, MPI_Wtime() - t0) / rays * 1e3;
    }
    row = bench_row_start(b, "ray_sky_to_ground", "index", "ms per ray", BENCH_LOWER_IS_BETTER);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(row.what, sizeof row.what,
             "strata_ray from the top of the world down (direction 0.3, -0.2, -1) at random "
             "columns, %d rays one after another (collective each); %" PRIu64 " hits, %.1f steps "
             "per ray",
             rays, hits, (double)steps / (3.0 * rays));
    snprintf(row.pattern, sizeof row.pattern,
             "random columns over the whole volume, through air and water to the ground");
    snprintf(row.limit, sizeof row.limit,
             "one collective agreement per ray; the steps through water voxels");
    row.count = (uint64_t)rays;
    st = bench_add(b, &row, samples, 3);
done:
    return st;
}

static strata_status reindex_row(bench *b, strata_world *w, int full, uint64_t updates)
{
    strata_reindex_stats rs, best = {0};
    strata_status st = STRATA_OK;
    double rates[BENCH_SAMPLES_MAX], rebuild[BENCH_SAMPLES_MAX];
    const int reps = b->quick ? 1 : 5;
    for (int rep = 0; rep < reps; rep++) {
        if (!full) { /* make some chunks stale: clustered updates, committed with the index deferred
                      */
            uint64_t state = b->seed * 59 + (uint64_t)b->rank + 1000 * (uint64_t)rep;
            size_t n = my_share(b, updates);
            int64_t cx = b->dims[0] / 3, cy = b->dims[1] / 3, cz = b->dims[2] / 2;
            for (size_t i = 0; i < n && !st; i++)
                st = strata_stage(
                    w, clamp64(cx + (int64_t)llround(20 * gaussian(&state)), 0, b->dims[0] - 1),
                    clamp64(cy + (int64_t)llround(20 * gaussian(&state)), 0, b->dims[1] - 1),
                    clamp64(cz + (int64_t)llround(20 * gaussian(&state)), 0, b->dims[2] - 1), LAVA);
            st =
                error_agree(b->comm, st ? world_failed(b, w, st, "staging") : STRATA_OK, &b->error);
            if (st)
                return st;
            TRY(strata_commit(w, NULL), "committing updates with the index deferred");
        }
        TRY(strata_reindex(w, full, &rs), "reindex");
        /* Per rank: the voxels of all ranks' chunks over the slowest rank's time,
         * / ranks: the whole call (its durable commit included), and the rebuild
         * alone (reading and summarising: "summarised in" of `strata reindex`). */
        rs.seconds = bench_slowest(b, rs.seconds);
        rates[rep] = rs.seconds > 0 ? (double)rs.voxels / rs.seconds / b->size : 0;
        rebuild[rep] =
            rs.summarize_seconds > 0 ? (double)rs.voxels / rs.summarize_seconds / b->size : 0;
        if (rep == 0 || rs.seconds < best.seconds)
            best = rs;
    }
    rs = best;
    /* Full: the rebuild row (the target's figure: the index rebuilt from the
     * stored chunks), then the whole call with its durable commit. Incremental:
     * the whole call. */
    for (int kind = full ? 0 : 1; kind < 2 && !st; kind++) {
        const char *id = !full  ? "reindex_incremental"
                         : kind ? "reindex_full_durable"
                                : "reindex_full";
        bench_row row =
            bench_row_start(b, id, "index", "voxels/s per rank", BENCH_HIGHER_IS_BETTER);
        bench_volume_text(b, row.volume, sizeof row.volume);
        snprintf(row.what, sizeof row.what,
                 "strata_reindex(full = %d), %" PRIu64 " chunks; voxels / %s / ranks; best run "
                 "%.3f s summarising, %.3f s in all",
                 full, rs.chunks,
                 kind ? "seconds of the whole call (index written, fsynced, published)"
                      : "slowest rank's reading and summarising seconds (the rebuild)",
                 rs.summarize_seconds, rs.seconds);
        snprintf(row.pattern, sizeof row.pattern, "%s",
                 full ? "every stored chunk"
                      : "the chunks made stale by a Gaussian cluster of lava updates (sigma 20)");
        snprintf(row.limit, sizeof row.limit, "%s",
                 kind ? "the rebuild, then the segment write and fsync and the manifest's tmp, "
                        "fsync, rename and directory fsync: 6-10 ms on this VM whatever the size"
                      : "per chunk, one core: zstd decode of the payload (palette chunks stay "
                        "4-bit indices), the pyramid's build from them and its zstd encode: "
                        "compute, not memory bandwidth");
        if (full && !kind)
            snprintf(row.target, sizeof row.target, ">= 1e9 voxels/s per rank");
        row.durable = kind;
        row.count = rs.voxels;
        st = bench_add(b, &row, kind ? rates : rebuild, reps);
    }
done:
    return st;
}

static strata_status bench_index(bench *b, const char *path)
{
    strata_status st = STRATA_OK;
    strata_world *w = NULL;
    st = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
    if (st)
        return world_failed(b, NULL, st, "opening the terrain world");
    st = index_queries(b, w);
    strata_world_close(w);
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = 1;
    strata_world *rw = NULL;
    if (!st) {
        st = strata_world_open(b->comm, path, STRATA_WRITE, &opt, &rw);
        if (st)
            return world_failed(b, NULL, st, "opening the terrain world for reindex");
        st = reindex_row(b, rw, 1, 0);
        if (!st)
            st = reindex_row(b, rw, 0, b->quick ? 20000 : 200000);
        strata_world_close(rw);
    }
    return st;
}

/* ---- extraction ------------------------------------------------------------------- */

static strata_status bench_extract(bench *b, const char *path, const char *prefix, int level_count)
{
    strata_world *w = NULL;
    char out[STRATA_PATH_MAX];
    strata_status st = path_join(out, sizeof out, b->dir, "extract.h5", &b->error);
    if (!st)
        st = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
    if (st)
        return world_failed(b, NULL, st, "opening the terrain world");
    int64_t box[6] = {0, 0, 0, b->dims[0], b->dims[1], b->dims[2]};
    int levels[2] = {0, 2}, reps = b->quick ? 1 : 3;
    for (int l = 0; l < level_count && !st; l++) {
        double samples[BENCH_SAMPLES_MAX];
        strata_extract_stats es;
        for (int rep = 0; rep < reps && !st; rep++) {
            MPI_Barrier(b->comm);
            double t0 = MPI_Wtime();
            TRY(strata_extract(w, box, levels[l], out, NULL, &es), "extracting");
            samples[rep] = (double)es.bytes / 1e6 / bench_slowest(b, MPI_Wtime() - t0);
        }
        char id[64];
        snprintf(id, sizeof id, "%sextract_whole_L%d", prefix, levels[l]);
        bench_row row = bench_row_start(b, id, "extract", "MB/s", BENCH_HIGHER_IS_BETTER);
        bench_volume_text(b, row.volume, sizeof row.volume);
        snprintf(row.what, sizeof row.what,
                 "strata_extract of the whole world at level %d to an unfiltered HDF5 file + XDMF "
                 "(%.1f MB of output); MB/s of output; last run: read %.3f s, exchange %.3f s, "
                 "write %.3f s",
                 levels[l], es.bytes / 1e6, es.read_seconds, es.exchange_seconds, es.write_seconds);
        snprintf(row.pattern, sizeof row.pattern, "the whole volume, z-slabs per rank");
        snprintf(row.limit, sizeof row.limit, "%s",
                 levels[l] ? "the LOD query of every output cell"
                           : "decoding chunks and the file write");
        row.count = es.bytes;
        st = bench_add(b, &row, samples, reps);
    }
done:
    strata_world_close(w);
    return st;
}

/* ---- reads of chunks carrying delta chains (issue 17) ------------------------------ */

/* DEPTH commits of a few uniform random updates per chunk (10 on average: 8 records of 10 changes
 * fill most of the 1024-byte budget of a chain over a uniform base), each a delta record of every
 * chunk it touches: the chunks carry chains as long as the rule allows. */
static strata_status chain_commits(bench *b, const char *path, int depth, strata_info *info)
{
    int64_t chunks = 1;
    for (int a = 0; a < 3; a++)
        chunks *= (b->dims[a] + b->chunk_edge - 1) / b->chunk_edge;
    size_t n = my_share(b, (uint64_t)chunks * 10);
    strata_update *u = malloc((n ? n : 1) * sizeof *u);
    strata_world *w = NULL;
    strata_status st = error_agree(
        b->comm, u ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "%zu updates", n),
        &b->error);
    if (!st) {
        strata_options opt;
        strata_options_init(&opt);
        opt.defer_index = 1;
        st = strata_world_open(b->comm, path, STRATA_WRITE, &opt, &w);
        if (st)
            world_failed(b, NULL, st, "opening the chained world");
    }
    uint64_t state = b->seed * 4099 + (uint64_t)b->rank * 131;
    for (int k = 0; k < depth && !st; k++) {
        for (size_t i = 0; i < n; i++)
            u[i] = (strata_update){.x = bench_random_below(&state, b->dims[0]),
                                   .y = bench_random_below(&state, b->dims[1]),
                                   .z = bench_random_below(&state, b->dims[2]),
                                   .material = (uint16_t)(2 + bench_random_below(&state, 12))};
        TRY(strata_update_batch(w, u, n, NULL), "a batch of chain updates");
        strata_commit_stats cs = {0};
        TRY(strata_commit(w, &cs), "a commit of chain updates");
        if (b->rank == 0 && b->verbose)
            fprintf(stderr,
                    "strata bench: chain commit %d: %llu chunks, %llu as deltas (%llu bytes, %llu "
                    "voxels)\n",
                    k, (unsigned long long)cs.chunks_written, (unsigned long long)cs.delta_chunks,
                    (unsigned long long)cs.delta_bytes, (unsigned long long)cs.delta_voxels);
    }
    if (!st)
        TRY(strata_world_info(w, info), "world info");
done:
    free(u);
    st = close_world(b, w, st, "closing the chained world");
    return st;
}

static strata_status compact_world(bench *b, const char *path)
{
    strata_world *w = NULL;
    strata_status st = strata_world_open(b->comm, path, STRATA_WRITE, NULL, &w);
    if (st)
        return world_failed(b, NULL, st, "opening the chained world");
    TRY(strata_compact(w, NULL), "compacting the chained world");
done:
    strata_world_close(w);
    return st;
}

/* Hot and cold random reads and a full extraction of a world whose chunks carry the
 * longest delta chains (rows chain_*), then of the same world compacted (rows
 * chain_compacted_*): the bound is 1.5x. */
static strata_status bench_chains(bench *b)
{
    char path[STRATA_PATH_MAX];
    strata_status st = path_join(path, sizeof path, b->dir, "chains", &b->error);
    st = error_agree(b->comm, st, &b->error);
    strata_commit_stats cs;
    double seconds;
    if (!st)
        st = create_terrain(b, path, 1, &cs, &seconds);
    strata_info info = {0};
    if (!st)
        st = chain_commits(b, path, 8, &info);
    if (!st && b->rank == 0)
        fprintf(stderr,
                "strata bench: chained world: %" PRIu64 " delta records on %" PRIu64
                " chunks, %" PRIu64 " bytes, deepest %d\n",
                info.deltas, info.delta_chunks, info.delta_bytes, info.delta_depth_max);
    const char *prefix[2] = {"chain_", "chain_compacted_"};
    for (int c = 0; c < 2 && !st; c++) {
        if (c)
            st = compact_world(b, path);
        strata_world *w = NULL;
        if (!st)
            st = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
        if (st) {
            world_failed(b, NULL, st, "opening the chained world");
            break;
        }
        st = hot_reads(b, w, prefix[c]);
        strata_world_close(w);
        if (!st)
            st = cold_reads(b, path, prefix[c]);
        if (!st)
            st = bench_extract(b, path, prefix[c], 1);
    }
    return st;
}

strata_status bench_strata(bench *b)
{
    char path[STRATA_PATH_MAX];
    strata_status st = path_join(path, sizeof path, b->dir, "terrain", &b->error);
    if (!st)
        st = bench_commit(b, path);
    if (!st && bench_wants(b, "storage"))
        st = bench_storage(b, path);
    if (!st && bench_wants(b, "storage"))
        st = bench_uniform_bytes(b);
    if (!st && bench_wants(b, "updates"))
        st = bench_updates(b, path);
    if (!st && bench_wants(b, "reads"))
        st = bench_reads(b, path);
    if (!st && bench_wants(b, "index"))
        st = bench_index(b, path);
    if (!st && bench_wants(b, "extract"))
        st = bench_extract(b, path, "", 2);
    if (!st && bench_wants(b, "chains"))
        st = bench_chains(b);
    return st;
}
