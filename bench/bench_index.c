/* bench_index: figures of the LOD index (issue 4): reindex throughput and its
 * parts, pyramid payload sizes, coarse point queries, region covers and rays.
 *
 *   mpirun -n R bench_index WORKDIR [--size X,Y,Z] [--reps N] [--andes WORLD]
 *
 * Builds a terrain world (default 512x512x256, C = 32) and a ray world
 * (16384x64x64, mostly air, a few solid chunks) under WORKDIR. Times are the
 * best of N repetitions (wall clock, MPI_Wtime); per-rank rates divide by the
 * slowest rank's time.
 */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "codec.h"
#include "index/lod.h"
#include "index/octree.h"
#include "index/query.h"
#include "strata.h"
#include "world.h"

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        strata_status st_ = (call);                                                                \
        if (st_ != STRATA_OK) {                                                                    \
            fprintf(stderr, "bench_index: %s: %s: %s\n", what, strata_strerror(st_),               \
                    strata_last_error(NULL));                                                      \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

static int rank;

static double slowest(double t)
{
    double m = t;
    MPI_Allreduce(&t, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

/* Pyramid and chunk payload bytes of the rows this rank holds, summed over ranks. */
static void payload_sizes(strata_world *w, const char *name)
{
    uint64_t v[4] = {0, 0, 0, 0}, s[4];
    for (size_t i = 0; i < w->row_count; i++) {
        const store_row *r = &w->rows[i], *prev = i ? &w->rows[i - 1] : NULL;
        v[0] += r->payload_length;
        /* a pack serves consecutive rows: its bytes count once */
        if (!prev || prev->lod_segment != r->lod_segment || prev->lod_offset != r->lod_offset)
            v[1] += r->lod_length;
        v[2] += r->lod_length != 0;
        v[3] += w->rows[i].codec != CODEC_UNIFORM;
    }
    MPI_Allreduce(v, s, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s: chunk payloads %" PRIu64 " bytes (%" PRIu64
               " dense chunks), pyramid payloads %" PRIu64 " bytes (%" PRIu64
               " pyramids, %.1f bytes each)\n",
               name, s[0], s[3], s[1], s[2], s[2] ? (double)s[1] / (double)s[2] : 0.0);
}

/* The summarising kernel alone on the rank's dense rows: decode, build, encode. */
static void kernel(strata_world *w, int reps)
{
    lod_index *x;
    TRY(index_get(w, &x), "index");
    uint16_t *v = malloc(w->chunk_voxels * sizeof *v);
    size_t dense = 0;
    /* encode at LOD_ZSTD_LEVEL, and at level 1 (the setting before version 2) for
     * comparison, each by its own scratch so that neither zstd context changes level */
    lod_work *at1;
    TRY(lod_work_create(w->edge, &at1, NULL), "LOD scratch");
    double best[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    uint64_t bytes = 0, bytes1 = 0, raw = 0;
    for (int r = 0; r < reps; r++) {
        double t[4] = {0, 0, 0, 0};
        dense = 0;
        bytes = bytes1 = raw = 0;
        for (size_t i = 0; i < w->row_count; i++) {
            const store_row *row = &w->rows[i];
            if (row->codec == CODEC_UNIFORM)
                continue;
            double t0 = MPI_Wtime();
            TRY(world_decode_row(w, row, v), "decode");
            double t1 = MPI_Wtime();
            int64_t b[6];
            world_chunk_bounds(w, row->key, b);
            int ext[3] = {(int)(b[3] - b[0]), (int)(b[4] - b[1]), (int)(b[5] - b[2])};
            const lod_pyramid *p;
            const lod_count *h;
            size_t n;
            TRY(lod_build(x->work, v, ext, &p, &h, &n, NULL), "build");
            double t2 = MPI_Wtime();
            const uint8_t *out;
            size_t len;
            if (n > 1) {
                TRY(lod_encode(x->work, LOD_ZSTD_LEVEL, &out, &len, NULL), "encode");
                bytes += len;
                raw += ZSTD_getFrameContentSize(out, len); /* the payload before zstd */
            }
            double t3 = MPI_Wtime();
            TRY(lod_build(at1, v, ext, &p, &h, &n, NULL), "build");
            const double t4 = MPI_Wtime();
            if (n > 1) {
                TRY(lod_encode(at1, 1, &out, &len, NULL), "encode at level 1");
                bytes1 += len;
            }
            const double t5 = MPI_Wtime();
            t[0] += t1 - t0, t[1] += t2 - t1, t[2] += t3 - t2, t[3] += t5 - t4;
            dense++;
        }
        for (int k = 0; k < 4; k++)
            if (t[k] < best[k])
                best[k] = t[k];
    }
    free(v);
    lod_work_free(at1);
    double vox = (double)dense * (double)w->chunk_voxels;
    if (rank == 0)
        printf("kernel (rank 0, %zu dense chunks, best of %d): decode %.3g voxels/s, build %.3g "
               "voxels/s, "
               "encode %.3g voxels/s, build+encode %.3g voxels/s, %.1f pyramid bytes/chunk "
               "(%.1f before zstd level %d; at level 1: encode %.3g voxels/s, %.1f bytes/chunk)\n",
               dense, reps, vox / best[0], vox / best[1], vox / best[2], vox / (best[1] + best[2]),
               dense ? (double)bytes / (double)dense : 0.0,
               dense ? (double)raw / (double)dense : 0.0, LOD_ZSTD_LEVEL, vox / best[3],
               dense ? (double)bytes1 / (double)dense : 0.0);
}

static strata_status solid_chunks(const int64_t bounds[6], int edge, uint16_t *voxels, void *ctx,
                                  char *message)
{
    (void)ctx, (void)message;
    size_t n = (size_t)edge * edge * edge;
    /* every 32nd chunk along x solid rock below z = 8 (off the ray's path), and
     * the chunks at x 9984..10015 solid: the ray crosses ~10,000 voxels of air */
    int64_t cx = bounds[0] / edge;
    for (size_t i = 0; i < n; i++) {
        int64_t z = bounds[2] + (int64_t)(i / ((size_t)edge * edge));
        voxels[i] = (cx == 312 || (cx % 32 == 31 && z < 8)) ? 3 : 0;
    }
    return STRATA_OK;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        if (rank == 0)
            fprintf(stderr,
                    "usage: bench_index WORKDIR [--size X,Y,Z] [--reps N] [--andes WORLD]\n");
        MPI_Finalize();
        return 2;
    }
    int64_t dims[3] = {512, 512, 256};
    int reps = 5;
    const char *andes = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size"))
            sscanf(argv[i + 1], "%" SCNd64 ",%" SCNd64 ",%" SCNd64, &dims[0], &dims[1], &dims[2]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--andes"))
            andes = argv[i + 1];
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/terrain", argv[1]);
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, dims, sizeof dims);
    cfg.chunk_edge = 32;
    strata_world *w;
    TRY(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w), "create");
    TRY(strata_generate_terrain(w, 42), "terrain");
    strata_commit_stats cs;
    double t0 = MPI_Wtime();
    TRY(strata_commit(w, &cs), "commit");
    double commit = slowest(MPI_Wtime() - t0);
    if (rank == 0)
        printf("terrain %" PRId64 "x%" PRId64 "x%" PRId64
               " C=32, %d ranks: commit (with index) %.3f s, %" PRIu64 " chunks written\n",
               dims[0], dims[1], dims[2], size, commit, cs.chunks_written);
    payload_sizes(w, "terrain");
    kernel(w, reps);

    /* Full reindex: the library call, per rank. */
    double best = INFINITY, best_sum = INFINITY;
    strata_reindex_stats rs = {0};
    for (int r = 0; r < reps; r++) {
        TRY(strata_reindex(w, 1, &rs), "reindex");
        if (rs.seconds < best)
            best = rs.seconds;
        if (rs.summarize_seconds < best_sum)
            best_sum = rs.summarize_seconds;
    }
    if (rank == 0)
        printf("full reindex (best of %d): %" PRIu64
               " chunks, summarise %.4f s = %.3g voxels/s per rank, "
               "whole call %.4f s = %.3g voxels/s per rank\n",
               reps, rs.chunks, best_sum, (double)rs.voxels / size / best_sum, best,
               (double)rs.voxels / size / best);
    payload_sizes(w, "terrain after reindex");

    /* Compacted, as a stored world is measured (issue 18: pyramids in packs);
     * then the first batch after opening (cold caches) at and below the chunk
     * level: the levels the index stores read pyramids, finer ones decode payloads. */
    TRY(strata_compact(w, NULL), "compact");
    payload_sizes(w, "terrain after compaction");
    for (int L = 3; L <= 5; L++) {
        TRY(strata_world_close(w), "close");
        TRY(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w), "open");
        enum { COLD = 100000 };
        int64_t(*cold)[3] = malloc(COLD * sizeof *cold);
        uint16_t *values = malloc(COLD * sizeof *values);
        uint64_t state = 777;
        for (int i = 0; i < COLD; i++)
            for (int a = 0; a < 3; a++) {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                cold[i][a] = (int64_t)((state >> 33) % (uint64_t)dims[a]);
            }
        MPI_Barrier(MPI_COMM_WORLD);
        double s = MPI_Wtime();
        TRY(strata_query_lod(w, (const int64_t(*)[3])cold, COLD, L, -1, values, NULL), "query_lod");
        double e = slowest(MPI_Wtime() - s);
        if (rank == 0)
            printf("point query level %d, first batch after opening: %.1f ns/point (%d points per "
                   "rank, %.3f s)\n",
                   L, e * 1e9 / COLD, COLD, e);
        free(cold);
        free(values);
    }

    /* Coarse point queries at every level from the chunk level up. */
    TRY(strata_index_status(w, 1, &(strata_index_info){0}), "index");
    strata_index_info info;
    TRY(strata_index_status(w, 1, &info), "index");
    if (rank == 0)
        printf("index: chunk level %d, root level %d, replicated from level %d (%" PRIu64
               " nodes)\n",
               info.chunk_level, info.max_level, info.replicated_level, info.replicated_nodes);
    enum { NP = 200000 };
    int64_t(*pts)[3] = malloc(NP * sizeof *pts);
    uint16_t *out = malloc(NP * sizeof *out);
    uint64_t seed = 12345;
    for (int i = 0; i < NP; i++)
        for (int a = 0; a < 3; a++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            pts[i][a] = (int64_t)((seed >> 33) % (uint64_t)dims[a]);
        }
    for (int L = info.chunk_level - 2; L <= info.max_level; L++) {
        double b = INFINITY;
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double s = MPI_Wtime();
            TRY(strata_query_lod(w, (const int64_t(*)[3])pts, NP, L, -1, out, NULL), "query_lod");
            double e = slowest(MPI_Wtime() - s);
            if (e < b)
                b = e;
        }
        if (rank == 0)
            printf("point query level %d%s: %.1f ns/point (%d points per rank, best of %d)\n", L,
                   L >= info.replicated_level ? " (replicated)" : "", b * 1e9 / NP, NP, reps);
    }
    /* One block summary (the per-point work without the call's setup). */
    if (size == 1) {
        for (int L = info.replicated_level; L <= info.max_level; L++) {
            double b = INFINITY;
            for (int r = 0; r < reps; r++) {
                double s = MPI_Wtime();
                uint64_t acc = 0;
                for (int i = 0; i < NP; i++) {
                    uint64_t c[3] = {(uint64_t)pts[i][0] >> L, (uint64_t)pts[i][1] >> L,
                                     (uint64_t)pts[i][2] >> L};
                    block_summary bs;
                    TRY(query_block(w, L, c, &bs), "query_block");
                    acc += bs.material;
                }
                double e = MPI_Wtime() - s;
                if (e < b)
                    b = e;
                if (acc == 1)
                    printf(" ");
            }
            if (rank == 0)
                printf("query_block level %d: %.1f ns/block\n", L, b * 1e9 / NP);
        }
    }
    free(pts);
    free(out);

    /* Region cover of a 1024^3 box (clipped to the world) at L = 4. */
    const int64_t box[6] = {0, 0, 0, 1024, 1024, 1024};
    double rb = INFINITY;
    size_t nreg = 0;
    for (int r = 0; r < reps; r++) {
        strata_region *regs;
        MPI_Barrier(MPI_COMM_WORLD);
        double s = MPI_Wtime();
        TRY(strata_query_region(w, box, 4, 0.95, &regs, &nreg), "region");
        double e = slowest(MPI_Wtime() - s);
        free(regs);
        if (e < rb)
            rb = e;
    }
    if (rank == 0)
        printf("region query box 0,0,0,1024,1024,1024 (clipped) L=4 T=0.95: %zu regions in %.3f ms "
               "(best of %d)\n",
               nreg, rb * 1e3, reps);
    TRY(strata_world_close(w), "close");

    /* Ray world: 16384x64x64, air with a few solid chunks (z < 8). */
    snprintf(path, sizeof path, "%s/raylong", argv[1]);
    strata_config_init(&cfg);
    cfg.dims[0] = 16384, cfg.dims[1] = 64, cfg.dims[2] = 64;
    cfg.chunk_edge = 32;
    TRY(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w),
        "create ray world");
    TRY(strata_fill(w, NULL, solid_chunks, NULL), "fill ray world");
    TRY(strata_commit(w, &cs), "commit ray world");
    const double from[3] = {0.5, 40.25, 20.5}, dir[3] = {1.0, 0.0011, 0.0007};
    strata_ray_hit hit;
    TRY(strata_ray(w, from, dir, INFINITY, &hit), "ray (warm)");
    double rayb = INFINITY;
    for (int r = 0; r < reps * 4; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double s = MPI_Wtime();
        TRY(strata_ray(w, from, dir, INFINITY, &hit), "ray");
        double e = slowest(MPI_Wtime() - s);
        if (e < rayb)
            rayb = e;
    }
    if (rank == 0)
        printf("ray across %s %.0f voxels of air (16384x64x64): %s, %" PRIu64
               " steps, %.1f us (best of %d)\n",
               hit.hit ? "to a hit after" : "a miss over", hit.hit ? hit.distance : 16384.0,
               hit.hit ? "hit" : "miss", hit.steps, rayb * 1e6, reps * 4);
    TRY(strata_world_close(w), "close ray world");

    if (andes) {
        TRY(strata_world_open(MPI_COMM_WORLD, andes, STRATA_READ, NULL, &w), "open andes");
        payload_sizes(w, "andes as stored");
        TRY(strata_world_close(w), "close andes");
    }
    MPI_Finalize();
    return 0;
}
