/* mpi_index.c: the LOD index against brute force on a dense reference, at any rank count.
 *
 * Worlds: a random world (partial edge chunks, absent, uniform and mixed chunks,
 * materials drawn from a few ids so that ties happen) and a generated terrain.
 * Checks: every level's mode and homogeneity at random points, region covers,
 * rays against a plain voxel walk, box statistics against counting, the index
 * after deferred updates + incremental reindex equal to a full rebuild, and the
 * index hash equal at this rank count and at 1 (and 2) ranks of the same run.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_common.h"
#include "strata.h"

typedef struct {
    int64_t d[3];
    uint16_t *v; /* [z][y][x] */
} dense;

static uint16_t *at(dense *r, int64_t x, int64_t y, int64_t z)
{
    return &r->v[(z * r->d[1] + y) * r->d[0] + x];
}

/* Random world: 16^3 regions of three kinds (absent, uniform, mixed of 4 ids). */
static uint16_t random_voxel(int64_t x, int64_t y, int64_t z)
{
    uint64_t s = (uint64_t)((x / 16) * 73856093 ^ (y / 16) * 19349663 ^ (z / 16) * 83492791);
    uint64_t kind = mt_random(&s) % 4;
    if (kind == 0)
        return 0;
    if (kind == 1)
        return (uint16_t)(1 + (s % 5));
    uint64_t t = (uint64_t)(x * 1000003 + y * 7919 + z * 104729 + 17);
    return (uint16_t)((mt_random(&t) % 4) * (kind == 2 ? 1 : 3));
}

/* strata_fill callback: every voxel from the voxel function in ctx. */
typedef struct {
    uint16_t (*voxel)(int64_t x, int64_t y, int64_t z);
} voxel_source;

static strata_status fill_from(const int64_t b[6], int edge, uint16_t *v, void *ctx, char *msg)
{
    const voxel_source *src = ctx;
    (void)msg;
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++)
            for (int64_t x = b[0]; x < b[3]; x++)
                v[((z - b[2]) * edge + (y - b[1])) * edge + (x - b[0])] = src->voxel(x, y, z);
    return STRATA_OK;
}

/* Chunks of at most 16 ids, of 17 to 256 (8-bit palettes) and of more (byte
 * shuffle), by chunk. */
static uint16_t many_voxel(int64_t x, int64_t y, int64_t z)
{
    uint64_t s = (uint64_t)((x / 16) * 73856093 ^ (y / 16) * 19349663 ^ (z / 16) * 83492791);
    const uint64_t ids[3] = {12, 200, 1000};
    const uint64_t n = ids[mt_random(&s) % 3];
    uint64_t t = (uint64_t)(x * 1000003 + y * 7919 + z * 104729 + 5);
    return (uint16_t)(mt_random(&t) % n);
}

static void load_reference(strata_world *w, dense *r)
{
    strata_config cfg;
    strata_world_config(w, &cfg);
    memcpy(r->d, cfg.dims, sizeof r->d);
    r->v = malloc((size_t)(r->d[0] * r->d[1] * r->d[2]) * sizeof *r->v);
    int C = cfg.chunk_edge;
    uint16_t *chunk = malloc((size_t)C * C * C * sizeof *chunk);
    for (int64_t cz = 0; cz * C < r->d[2]; cz++)
        for (int64_t cy = 0; cy * C < r->d[1]; cy++)
            for (int64_t cx = 0; cx * C < r->d[0]; cx++) {
                MT_CHECK(strata_load_chunk(w, cx, cy, cz, chunk) == STRATA_OK, "load chunk");
                for (int64_t z = 0; z < C && cz * C + z < r->d[2]; z++)
                    for (int64_t y = 0; y < C && cy * C + y < r->d[1]; y++)
                        for (int64_t x = 0; x < C && cx * C + x < r->d[0]; x++)
                            *at(r, cx * C + x, cy * C + y, cz * C + z) = chunk[(z * C + y) * C + x];
            }
    free(chunk);
}

/* Brute-force mode of the block box (clipped), ties to the smallest id. */
static void brute_block(dense *r, const int64_t lo[3], const int64_t hi[3], uint16_t *mode,
                        double *h)
{
    static uint64_t counts[65536];
    static uint16_t touched[65536];
    size_t t = 0;
    uint64_t total = 0;
    for (int64_t z = lo[2]; z < hi[2] && z < r->d[2]; z++)
        for (int64_t y = lo[1]; y < hi[1] && y < r->d[1]; y++)
            for (int64_t x = lo[0]; x < hi[0] && x < r->d[0]; x++) {
                uint16_t m = *at(r, x, y, z);
                if (counts[m]++ == 0)
                    touched[t++] = m;
                total++;
            }
    uint64_t best = 0;
    *mode = 0;
    for (size_t i = 0; i < t; i++) {
        uint16_t m = touched[i];
        if (counts[m] > best || (counts[m] == best && m < *mode))
            best = counts[m], *mode = m;
        counts[m] = 0;
    }
    *h = total ? (double)best / (double)total : 1.0;
}

static void block_of(int64_t p, int level, int64_t *lo, int64_t *hi)
{
    *lo = level >= 62 ? 0 : (p >> level) << level;
    *hi = level >= 62 ? INT64_MAX : *lo + ((int64_t)1 << level);
}

static void check_points(strata_world *w, dense *r, int max_level, uint64_t *seed)
{
    enum { N = 60 };
    int64_t pts[N][3];
    uint16_t out[N];
    double hom[N];
    for (int level = 0; level <= max_level + 1; level++) {
        for (int i = 0; i < N; i++)
            for (int a = 0; a < 3; a++)
                pts[i][a] = (int64_t)(mt_random(seed) % (uint64_t)r->d[a]);
        double threshold = level % 3 == 2 ? 0.7 : -1;
        strata_status st =
            strata_query_lod(w, (const int64_t(*)[3])pts, N, level, threshold, out, hom);
        MT_CHECK(st == STRATA_OK, "query_lod level %d: %s", level, strata_last_error(w));
        for (int i = 0; !st && i < N; i++) {
            int64_t lo[3], hi[3];
            for (int a = 0; a < 3; a++)
                block_of(pts[i][a], level, &lo[a], &hi[a]);
            uint16_t mode;
            double h;
            brute_block(r, lo, hi, &mode, &h);
            if (threshold >= 0 && h < threshold)
                mode = *at(r, pts[i][0], pts[i][1], pts[i][2]);
            MT_CHECK(out[i] == mode && fabs(hom[i] - h) < 1e-12,
                     "level %d point (%" PRId64 ",%" PRId64 ",%" PRId64
                     "): got %u/%.6f, want %u/%.6f",
                     level, pts[i][0], pts[i][1], pts[i][2], out[i], hom[i], mode, h);
        }
    }
}

static void check_regions(strata_world *w, dense *r, uint64_t *seed)
{
    for (int round = 0; round < 4; round++) {
        int64_t box[6];
        for (int a = 0; a < 3; a++) {
            box[a] = (int64_t)(mt_random(seed) % (uint64_t)r->d[a]);
            box[a + 3] = box[a] + 1 + (int64_t)(mt_random(seed) % (uint64_t)r->d[a]);
        }
        /* every rank must pass the same box: take rank 0's */
        MPI_Bcast(box, 6, MPI_INT64_T, 0, MPI_COMM_WORLD);
        int level = round % 3;
        double threshold = round % 2 ? 0.6 : 0.95;
        strata_region *g = NULL;
        size_t n = 0;
        strata_status st = strata_query_region(w, box, level, threshold, &g, &n);
        MT_CHECK(st == STRATA_OK, "region: %s", strata_last_error(w));
        if (st)
            continue;
        int64_t clip[6];
        for (int a = 0; a < 3; a++) {
            clip[a] = box[a];
            clip[a + 3] = box[a + 3] < r->d[a] ? box[a + 3] : r->d[a];
        }
        size_t sx = (size_t)(clip[3] - clip[0]), sy = (size_t)(clip[4] - clip[1]),
               sz = (size_t)(clip[5] - clip[2]);
        uint8_t *cover = calloc(sx * sy * sz, 1);
        for (size_t i = 0; i < n; i++) {
            const strata_region *q = &g[i];
            if (i)
                MT_CHECK(g[i - 1].box[2] < q->box[2] ||
                             (g[i - 1].box[2] == q->box[2] &&
                              (g[i - 1].box[1] < q->box[1] ||
                               (g[i - 1].box[1] == q->box[1] && g[i - 1].box[0] < q->box[0]))),
                         "regions not sorted at %zu", i);
            int64_t lo[3] = {q->box[0], q->box[1], q->box[2]}, hi[3];
            for (int a = 0; a < 3; a++) {
                hi[a] = lo[a] + ((int64_t)1 << q->level);
                MT_CHECK(lo[a] % ((int64_t)1 << q->level) == 0 &&
                             q->box[a + 3] == (hi[a] < r->d[a] ? hi[a] : r->d[a]),
                         "region %zu not an aligned node clipped to the world", i);
            }
            uint16_t mode;
            double h;
            brute_block(r, lo, hi, &mode, &h);
            MT_CHECK(mode == q->material && fabs(h - q->homogeneity) < 1e-12,
                     "region %zu material %u/%.6f, want %u/%.6f", i, q->material, q->homogeneity,
                     mode, h);
            MT_CHECK(q->level >= level && (h >= threshold || q->level == level),
                     "region %zu split rule", i);
            /* coarsest: the parent was below the threshold */
            int64_t plo[3], phi[3];
            for (int a = 0; a < 3; a++)
                block_of(lo[a], q->level + 1, &plo[a], &phi[a]);
            uint16_t pm;
            double ph;
            brute_block(r, plo, phi, &pm, &ph);
            int root = plo[0] == 0 && plo[1] == 0 && plo[2] == 0 && phi[0] >= 2 * r->d[0] &&
                       phi[1] >= 2 * r->d[1] && phi[2] >= 2 * r->d[2];
            MT_CHECK(root || ph < threshold, "region %zu: parent homogeneity %.6f >= threshold", i,
                     ph);
            for (int64_t z = q->box[2] > clip[2] ? q->box[2] : clip[2];
                 z < q->box[5] && z < clip[5]; z++)
                for (int64_t y = q->box[1] > clip[1] ? q->box[1] : clip[1];
                     y < q->box[4] && y < clip[4]; y++)
                    for (int64_t x = q->box[0] > clip[0] ? q->box[0] : clip[0];
                         x < q->box[3] && x < clip[3]; x++)
                        cover[((size_t)(z - clip[2]) * sy + (size_t)(y - clip[1])) * sx +
                              (size_t)(x - clip[0])]++;
        }
        size_t bad = 0;
        for (size_t i = 0; i < sx * sy * sz; i++)
            bad += cover[i] != 1;
        MT_CHECK(bad == 0, "%zu voxels of the box covered other than once (%zu regions)", bad, n);
        free(cover);
        free(g);
    }
}

/* The reference walk: every voxel, same crossing formula and tie order as the library. */
static int plain_ray(dense *r, const double o[3], const double dir[3], double max_dist,
                     int64_t v[3], uint16_t *m, double *dist)
{
    double len = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]), d[3];
    int64_t nb[3];
    int s[3];
    for (int a = 0; a < 3; a++) {
        d[a] = dir[a] / len;
        v[a] = (int64_t)floor(o[a]);
        s[a] = d[a] > 0 ? 1 : d[a] < 0 ? -1 : 0;
        nb[a] = s[a] > 0 ? v[a] + 1 : v[a];
    }
    double t = 0;
    while (t <= max_dist && v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[0] < r->d[0] &&
           v[1] < r->d[1] && v[2] < r->d[2]) {
        if ((*m = *at(r, v[0], v[1], v[2])) != 0) {
            *dist = t;
            return 1;
        }
        int e = -1;
        double best = INFINITY;
        for (int a = 0; a < 3; a++) {
            double c = s[a] ? ((double)nb[a] - o[a]) * (1 / d[a]) : INFINITY;
            if (s[a] && (e < 0 || c < best))
                e = a, best = c;
        }
        v[e] += s[e];
        nb[e] += s[e];
        t = best;
    }
    return 0;
}

static void check_rays(strata_world *w, dense *r, uint64_t *seed)
{
    for (int i = 0; i < 40; i++) {
        double o[3], d[3], max_dist = i % 4 == 3 ? 20.0 : INFINITY;
        for (int a = 0; a < 3; a++) {
            o[a] = (double)(mt_random(seed) % (uint64_t)(r->d[a] * 8)) / 8.0;
            d[a] = (double)((int64_t)(mt_random(seed) % 2001) - 1000) / 1000.0;
        }
        if (i % 5 == 0) /* axis-aligned and diagonal rays hit the tie rules */
            d[0] = 1, d[1] = i % 10 ? 1 : 0, d[2] = -1, o[0] = floor(o[0]), o[1] = floor(o[1]);
        if (i % 7 == 0) /* from high up in the air, downwards */
            o[2] = (double)r->d[2] - 0.5, d[2] = -fabs(d[2]) - 0.1;
        MPI_Bcast(o, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        MPI_Bcast(d, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        if (d[0] == 0 && d[1] == 0 && d[2] == 0)
            continue;
        strata_ray_hit hit;
        strata_status st = strata_ray(w, o, d, max_dist, &hit);
        MT_CHECK(st == STRATA_OK, "ray: %s", strata_last_error(w));
        int64_t v[3];
        uint16_t m = 0;
        double dist = 0;
        int want = plain_ray(r, o, d, max_dist, v, &m, &dist);
        MT_CHECK(!st && hit.hit == want &&
                     (!want || (hit.voxel[0] == v[0] && hit.voxel[1] == v[1] &&
                                hit.voxel[2] == v[2] && hit.material == m && hit.distance == dist)),
                 "ray %d from (%.3f,%.3f,%.3f) dir (%.3f,%.3f,%.3f): got %d (%" PRId64 ",%" PRId64
                 ",%" PRId64 ") %u %.6f, want %d (%" PRId64 ",%" PRId64 ",%" PRId64 ") %u %.6f",
                 i, o[0], o[1], o[2], d[0], d[1], d[2], hit.hit, hit.voxel[0], hit.voxel[1],
                 hit.voxel[2], hit.material, hit.distance, want, v[0], v[1], v[2], m, dist);
    }
    double o[3] = {-1, 0, 0}, d[3] = {1, 0, 0};
    strata_ray_hit hit;
    MT_CHECK(strata_ray(w, o, d, INFINITY, &hit) == STRATA_ERR_RANGE, "ray from outside must fail");
}

static void check_stats(strata_world *w, dense *r, uint64_t *seed)
{
    for (int round = 0; round < 4; round++) {
        int64_t box[6];
        for (int a = 0; a < 3; a++) {
            box[a] = round == 0 ? 0 : (int64_t)(mt_random(seed) % (uint64_t)r->d[a]);
            box[a + 3] = round == 0 ? r->d[a] + 5
                                    : box[a] + 1 + (int64_t)(mt_random(seed) % (uint64_t)r->d[a]);
        }
        MPI_Bcast(box, 6, MPI_INT64_T, 0, MPI_COMM_WORLD);
        strata_material_count *c = NULL;
        size_t n = 0;
        strata_status st = strata_box_stats(w, box, &c, &n);
        MT_CHECK(st == STRATA_OK, "stats: %s", strata_last_error(w));
        static uint64_t want[65536];
        memset(want, 0, sizeof want);
        for (int64_t z = box[2]; z < box[5] && z < r->d[2]; z++)
            for (int64_t y = box[1]; y < box[4] && y < r->d[1]; y++)
                for (int64_t x = box[0]; x < box[3] && x < r->d[0]; x++)
                    want[*at(r, x, y, z)]++;
        size_t k = 0;
        for (int m = 0; !st && m < 65536; m++)
            if (want[m]) {
                MT_CHECK(k < n && c[k].material == m && c[k].count == want[m],
                         "stats material %d: want %" PRIu64, m, want[m]);
                k++;
            }
        MT_CHECK(st || k == n, "stats: %zu materials, want %zu", n, k);
        free(c);
    }
}

static uint64_t index_hash(MPI_Comm comm, const char *path)
{
    strata_world *w;
    strata_index_info info = {0};
    MT_CHECK(strata_world_open(comm, path, STRATA_READ, NULL, &w) == STRATA_OK, "open %s", path);
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK, "index status: %s",
             strata_last_error(w));
    strata_world_close(w);
    return info.hash;
}

/* The hash at this rank count equals the hash by rank 0 alone (and by ranks 0-1). */
static void check_hash_across_ranks(const char *path)
{
    uint64_t all = index_hash(MPI_COMM_WORLD, path);
    for (int part = 1; part <= 2 && part < mt_size; part++) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, mt_rank < part ? 0 : MPI_UNDEFINED, mt_rank, &sub);
        uint64_t h = 0;
        if (sub != MPI_COMM_NULL) {
            h = index_hash(sub, path);
            MPI_Comm_free(&sub);
        }
        MPI_Bcast(&h, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        MT_CHECK(h == all, "index hash at %d ranks %016" PRIx64 " != at %d ranks %016" PRIx64, part,
                 h, mt_size, all);
    }
}

static void check_world(strata_world *w, int max_level, uint64_t seed)
{
    dense r;
    load_reference(w, &r);
    check_points(w, &r, max_level, &seed);
    check_regions(w, &r, &seed);
    check_rays(w, &r, &seed);
    check_stats(w, &r, &seed);
    free(r.v);
}

/* Deferred random updates, incremental reindex == full rebuild; commits keep the index current. */
static void check_reindex(const char *path, uint64_t seed)
{
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = 1;
    strata_world *w;
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, &opt, &w) == STRATA_OK, "open");
    strata_config cfg;
    strata_world_config(w, &cfg);
    for (int i = 0; i < 300; i++) {
        int64_t p[3];
        for (int a = 0; a < 3; a++)
            p[a] = (int64_t)(mt_random(&seed) % (uint64_t)cfg.dims[a]);
        strata_stage(w, p[0], p[1], p[2], (uint16_t)(mt_random(&seed) % 7));
    }
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    strata_index_info info;
    MT_CHECK(strata_index_status(w, 0, &info) == STRATA_OK && info.stale_chunks > 0 &&
                 info.index_epoch < info.data_epoch,
             "deferred commit must leave stale chunks");
    check_world(w, 9, seed + 1); /* stale chunks are summarised from data in memory */
    strata_reindex_stats rs;
    MT_CHECK(strata_reindex(w, 0, &rs) == STRATA_OK && rs.chunks == info.stale_chunks,
             "incremental reindex: %s", strata_last_error(w));
    uint64_t incremental = 0, full = 0;
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK && info.stale_chunks == 0 &&
                 info.index_epoch == info.data_epoch,
             "reindex must catch up");
    incremental = info.hash;
    MT_CHECK(strata_reindex(w, 1, &rs) == STRATA_OK, "full reindex: %s", strata_last_error(w));
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK, "status");
    full = info.hash;
    MT_CHECK(incremental == full, "incremental %016" PRIx64 " != full %016" PRIx64, incremental,
             full);
    strata_world_close(w);
    /* Without deferral a commit updates the built index in place: equal to a rebuild from storage.
     */
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w) == STRATA_OK, "open");
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK, "status");
    for (int i = 0; i < 200; i++) {
        int64_t p[3];
        for (int a = 0; a < 3; a++)
            p[a] = (int64_t)(mt_random(&seed) % (uint64_t)cfg.dims[a]);
        strata_stage(w, p[0], p[1], p[2], (uint16_t)(mt_random(&seed) % 7));
    }
    strata_commit_stats cs = {0};
    MT_CHECK(strata_commit(w, &cs) == STRATA_OK, "commit: %s", strata_last_error(w));
    /* 200 voxels over the world's chunks: small changes, committed as delta records */
    MT_CHECK(cs.delta_chunks > 0 && cs.delta_voxels > 0, "%" PRIu64 " delta records of %" PRIu64,
             cs.delta_chunks, cs.chunks_written);
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK && info.stale_chunks == 0, "status");
    uint64_t live = info.hash;
    check_world(w, 9, seed + 2);
    /* the same data without deltas: compaction folds every chain into a whole chunk */
    MT_CHECK(strata_compact(w, NULL) == STRATA_OK, "compact: %s", strata_last_error(w));
    strata_info wi;
    MT_CHECK(strata_world_info(w, &wi) == STRATA_OK && wi.deltas == 0 && wi.delta_chunks == 0,
             "chains left after compaction: %" PRIu64, wi.deltas);
    strata_world_close(w);
    MT_CHECK(index_hash(MPI_COMM_WORLD, path) == live,
             "index kept at delta commits != index rebuilt at open from the folded chunks");
    check_hash_across_ranks(path);
}

/* A 70 x 53 x 41 world of chunk 16 (partial edge chunks) filled from `voxel`
 * and committed with its index; open for writing. */
static strata_world *filled_world(const char *path, uint16_t (*voxel)(int64_t, int64_t, int64_t))
{
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = 70, cfg.dims[1] = 53, cfg.dims[2] = 41;
    cfg.chunk_edge = 16;
    strata_world *w;
    MT_CHECK(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w) ==
                 STRATA_OK,
             "create");
    voxel_source source = {voxel};
    MT_CHECK(strata_fill(w, NULL, fill_from, &source) == STRATA_OK, "fill: %s",
             strata_last_error(w));
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    return w;
}

/* A full reindex right after the commit, its chunks resident: palette payloads
 * are read as indices, the others summarised from the resident voxels (edge
 * chunks, more than 16 ids). The rebuilt index equals the commit's, and what it
 * stored answers as the dense reference does. */
static void check_resident_reindex(const char *path)
{
    strata_world *w = filled_world(path, many_voxel);
    strata_index_info info;
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK, "status");
    const uint64_t committed = info.hash;
    strata_reindex_stats rs;
    MT_CHECK(strata_reindex(w, 1, &rs) == STRATA_OK, "full reindex: %s", strata_last_error(w));
    MT_CHECK(strata_index_status(w, 1, &info) == STRATA_OK && info.hash == committed,
             "reindex of resident chunks %016" PRIx64 " != the commit's index %016" PRIx64,
             info.hash, committed);
    strata_world_close(w);
    MT_CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w) == STRATA_OK, "open");
    check_world(w, 4 + 3, 13);
    strata_world_close(w);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[4096];
    strata_config cfg;
    /* Random world with partial edge chunks. */
    mt_fresh_path(dir, "random", path, sizeof path);
    strata_world *w = filled_world(path, random_voxel);
    check_world(w, 4 + 3, 11);
    strata_world_close(w);
    check_hash_across_ranks(path);
    check_reindex(path, 99);
    /* Terrain. */
    mt_fresh_path(dir, "terrain", path, sizeof path);
    strata_config_init(&cfg);
    cfg.dims[0] = 96, cfg.dims[1] = 80, cfg.dims[2] = 64;
    cfg.chunk_edge = 16;
    MT_CHECK(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, STRATA_CREATE_FORCE, &w) ==
                 STRATA_OK,
             "create");
    MT_CHECK(strata_generate_terrain(w, 5) == STRATA_OK, "terrain: %s", strata_last_error(w));
    MT_CHECK(strata_commit(w, NULL) == STRATA_OK, "commit: %s", strata_last_error(w));
    check_world(w, 4 + 3, 12);
    strata_world_close(w);
    check_hash_across_ranks(path);
    /* Chunks of many materials, reindexed while resident. */
    mt_fresh_path(dir, "many", path, sizeof path);
    check_resident_reindex(path);
    return mt_finish("mpi_index");
}
