/*
 * many_ranks.c: the whole workflow at many oversubscribed ranks, against a dense reference.
 *
 * Run at 8, 16 and 32 ranks (tests/CMakeLists.txt), once at 64 for docs/scaling.md.
 * P is the job's rank count, Q = P / 2 - 1 another one (3, 7, 15, 31: uneven splitters).
 * 1. P ranks create a 90 x 77 x 70 world of 16-voxel chunks (partial chunks on every
 *    far face; the index deferred to reindex), every rank submits routed random
 *    updates (a quarter conditional, half on voxels every rank writes) in rounds,
 *    commit; every voxel is read back through routed point queries and every chunk
 *    through strata_load_chunk and its metadata.
 * 2. Q ranks reopen it for writing: every voxel again, a round of their own
 *    updates, commit, an incremental reindex (the index catches up), LOD point
 *    queries and region covers against a brute-force mode, a region extracted at
 *    level 0 and at LOD 2 compared cell by cell, fsck clean.
 * 3. P ranks reopen it read-only: every voxel, LOD points, a region cover, a LOD 1
 *    extraction, fsck; the index hash equals the one built at Q ranks.
 * Rank 0 prints each phase's wall time: a phase that takes minutes at 32 ranks is a
 * finding (a loop over ranks squared, a file opened per rank), not a timeout to raise.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_common.h"
#include "world_reference.h"

#define UPDATES_PER_RANK 1500
#define ROUNDS           2

static const int64_t DIMS[3] = {90, 77, 70};
static const int EDGE = 16;

/* ---- phases ----------------------------------------------------------------------- */

static double phase_start;

/* End a phase on comm (rank 0 of MPI_COMM_WORLD is in every comm and prints). */
static void phase(MPI_Comm comm, const char *what)
{
    int size;
    MPI_Comm_size(comm, &size);
    MPI_Barrier(comm);
    double now = MPI_Wtime();
    if (mt_rank == 0 && what)
        fprintf(stderr, "many_ranks: %3d ranks: %-36s %7.2f s\n", size, what, now - phase_start);
    phase_start = now;
}

/* ---- brute force ---------------------------------------------------------------- */

/* Mode (ties to the smallest id) and homogeneity of r->committed over the block
 * [lo, hi) clipped to the world. */
static void block_mode(const reference *r, const int64_t lo[3], const int64_t hi[3], uint16_t *mode,
                       double *homogeneity)
{
    static uint32_t hist[65536];
    static uint16_t seen[65536];
    size_t distinct = 0;
    uint64_t total = 0;
    int64_t top[3];
    for (int a = 0; a < 3; a++)
        top[a] = hi[a] < r->dims[a] ? hi[a] : r->dims[a];
    for (int64_t z = lo[2]; z < top[2]; z++)
        for (int64_t y = lo[1]; y < top[1]; y++)
            for (int64_t x = lo[0]; x < top[0]; x++) {
                uint16_t m = r->committed[ref_index(r, x, y, z)];
                if (hist[m]++ == 0)
                    seen[distinct++] = m;
                total++;
            }
    uint32_t best = 0;
    *mode = 0;
    for (size_t i = 0; i < distinct; i++) {
        uint16_t m = seen[i];
        if (hist[m] > best || (hist[m] == best && m < *mode))
            best = hist[m], *mode = m;
        hist[m] = 0;
    }
    *homogeneity = total ? (double)best / (double)total : 1.0;
}

/* The aligned 2^level block holding coordinate p along one axis. */
static void block_of(int64_t p, int level, int64_t *lo, int64_t *hi)
{
    *lo = (p >> level) << level;
    *hi = *lo + ((int64_t)1 << level);
}

/* ---- routed updates --------------------------------------------------------------- */

/*
 * One round: every rank of comm (w != NULL) submits its batch through
 * strata_update_batch; every rank of MPI_COMM_WORLD replays the batches of the
 * `ranks` ranks of comm in (rank, input order).
 */
static void run_round(strata_world *w, int comm_rank, int ranks, reference *r, uint64_t round)
{
    uint64_t counts[2] = {0, 0};
    strata_update *mine = NULL;
    for (int q = 0; q < ranks; q++) {
        strata_update *u = ref_batch(r, round, q, UPDATES_PER_RANK);
        ref_apply(r, u, UPDATES_PER_RANK, counts);
        if (w && q == comm_rank)
            mine = u;
        else
            free(u);
    }
    if (!w)
        return;
    strata_batch_stats stats;
    memset(&stats, 0, sizeof stats);
    strata_status st = strata_update_batch(w, mine, UPDATES_PER_RANK, &stats);
    MT_CHECK(st == STRATA_OK, "round %" PRIu64 ": update_batch: %s", round, strata_last_error(w));
    MT_CHECK(stats.submitted == (uint64_t)ranks * UPDATES_PER_RANK && stats.applied == counts[0] &&
                 stats.skipped == counts[1],
             "round %" PRIu64 " at %d ranks: submitted %" PRIu64 " applied %" PRIu64
             " skipped %" PRIu64 ", reference %" PRIu64 " / %" PRIu64,
             round, ranks, stats.submitted, stats.applied, stats.skipped, counts[0], counts[1]);
    free(mine);
}

static void commit_reference(reference *r, uint64_t *epoch)
{
    *epoch += 1;
    ref_commit(r, *epoch);
}

static void commit(strata_world *w, reference *r, uint64_t *epoch, const char *what)
{
    strata_commit_stats cs;
    strata_status st = strata_commit(w, &cs);
    MT_CHECK(st == STRATA_OK && cs.epoch == *epoch + 1 && cs.chunks_written > 0,
             "%s: commit: %s (epoch %" PRIu64 " after %" PRIu64 ", %" PRIu64 " chunks)", what,
             strata_last_error(w), cs.epoch, *epoch, cs.chunks_written);
    commit_reference(r, epoch);
}

/* ---- LOD ------------------------------------------------------------------------- */

/* strata_query_lod at every level up to the root's, at points differing per rank. */
static void check_lod_points(strata_world *w, const reference *r, uint64_t seed, const char *what)
{
    enum { N = 40 };
    int64_t pts[N][3];
    uint16_t out[N];
    double hom[N];
    for (int level = 0; level <= 8; level++) {
        /* fewer points where a block holds 2^15 voxels or more (up to the whole world) */
        const size_t n = level < 5 ? N : 4;
        for (size_t i = 0; i < n; i++)
            ref_random_voxel(r, &seed, pts[i]);
        double threshold = level % 3 == 2 ? 0.6 : -1;
        strata_status st =
            strata_query_lod(w, (const int64_t(*)[3])pts, n, level, threshold, out, hom);
        MT_CHECK(st == STRATA_OK, "%s: query_lod level %d: %s", what, level, strata_last_error(w));
        int bad = 0;
        for (size_t i = 0; !st && i < n; i++) {
            int64_t lo[3], hi[3];
            for (int a = 0; a < 3; a++)
                block_of(pts[i][a], level, &lo[a], &hi[a]);
            uint16_t mode;
            double h;
            block_mode(r, lo, hi, &mode, &h);
            if (threshold >= 0 && h < threshold)
                mode = r->committed[ref_index(r, pts[i][0], pts[i][1], pts[i][2])];
            if ((out[i] != mode || fabs(hom[i] - h) > 1e-12) && bad++ < 3)
                MT_CHECK(0,
                         "%s: LOD %d at (%" PRId64 ",%" PRId64 ",%" PRId64
                         "): %u / %.6f, brute force %u / %.6f",
                         what, level, pts[i][0], pts[i][1], pts[i][2], out[i], hom[i], mode, h);
        }
    }
}

/* strata_query_region: aligned nodes clipped to the world, sorted, covering the box
 * once, each the brute-force mode, split only while below the threshold. */
static void check_region(strata_world *w, const reference *r, const int64_t box[6], int level,
                         double threshold, const char *what)
{
    strata_region *g = NULL;
    size_t n = 0;
    strata_status st = strata_query_region(w, box, level, threshold, &g, &n);
    MT_CHECK(st == STRATA_OK, "%s: query_region: %s", what, strata_last_error(w));
    if (st)
        return;
    int64_t clip[6];
    for (int a = 0; a < 3; a++) {
        clip[a] = box[a];
        clip[a + 3] = box[a + 3] < r->dims[a] ? box[a + 3] : r->dims[a];
    }
    size_t sx = (size_t)(clip[3] - clip[0]), sy = (size_t)(clip[4] - clip[1]),
           sz = (size_t)(clip[5] - clip[2]);
    uint8_t *cover = calloc(sx * sy * sz, 1);
    if (!cover)
        MPI_Abort(MPI_COMM_WORLD, 2);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const strata_region *q = &g[i];
        int64_t lo[3] = {q->box[0], q->box[1], q->box[2]}, hi[3];
        int ok = q->level >= level;
        if (i)
            ok = ok && (g[i - 1].box[2] < lo[2] ||
                        (g[i - 1].box[2] == lo[2] &&
                         (g[i - 1].box[1] < lo[1] ||
                          (g[i - 1].box[1] == lo[1] && g[i - 1].box[0] < lo[0]))));
        for (int a = 0; a < 3; a++) {
            hi[a] = lo[a] + ((int64_t)1 << q->level);
            ok = ok && lo[a] % ((int64_t)1 << q->level) == 0 &&
                 q->box[a + 3] == (hi[a] < r->dims[a] ? hi[a] : r->dims[a]);
        }
        uint16_t mode;
        double h;
        block_mode(r, lo, hi, &mode, &h);
        ok = ok && mode == q->material && fabs(h - q->homogeneity) < 1e-12 &&
             (h >= threshold || q->level == level);
        if (!ok && bad++ < 3)
            MT_CHECK(0,
                     "%s: region %zu (%" PRId64 ",%" PRId64 ",%" PRId64 ") level %d: %u / %.6f, "
                     "brute force %u / %.6f",
                     what, i, lo[0], lo[1], lo[2], q->level, q->material, q->homogeneity, mode, h);
        for (int64_t z = lo[2] > clip[2] ? lo[2] : clip[2]; z < q->box[5] && z < clip[5]; z++)
            for (int64_t y = lo[1] > clip[1] ? lo[1] : clip[1]; y < q->box[4] && y < clip[4]; y++)
                for (int64_t x = lo[0] > clip[0] ? lo[0] : clip[0]; x < q->box[3] && x < clip[3];
                     x++)
                    cover[((size_t)(z - clip[2]) * sy + (size_t)(y - clip[1])) * sx +
                          (size_t)(x - clip[0])]++;
    }
    size_t twice = 0;
    for (size_t i = 0; i < sx * sy * sz; i++)
        twice += cover[i] != 1;
    MT_CHECK(twice == 0, "%s: %zu voxels of the box covered other than once by %zu regions", what,
             twice, n);
    free(cover);
    free(g);
}

/* ---- extraction ------------------------------------------------------------------- */

/*
 * strata_extract of box at level on comm, then rank 0 of comm reads /material
 * back and compares every cell: the voxel at level 0, else the brute-force mode of
 * the aligned 2^level block (clipped to the world).
 */
static void check_extract(strata_world *w, MPI_Comm comm, const reference *r, const char *dir,
                          const int64_t box[6], int level, const char *what)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    char path[4200];
    snprintf(path, sizeof path, "%s/extract-%d.h5", dir, level);
    strata_extract_stats es;
    strata_status st = strata_extract(w, box, level, path, NULL, &es);
    MT_CHECK(st == STRATA_OK, "%s: extract level %d: %s", what, level, strata_last_error(w));
    if (st || rank != 0)
        return;
    int64_t cells[3];
    for (int a = 0; a < 3; a++) {
        int64_t x1 = box[a + 3] < r->dims[a] ? box[a + 3] : r->dims[a];
        cells[a] = ((x1 + ((int64_t)1 << level) - 1) >> level) - (box[a] >> level);
    }
    MT_CHECK(!memcmp(cells, es.cells, sizeof cells), "%s: extract level %d: %" PRId64 " cells",
             what, level, es.cells[0]);
    size_t n = (size_t)(cells[0] * cells[1] * cells[2]);
    uint16_t *v = malloc(n * sizeof *v);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, "/material", H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[3] = {0, 0, 0};
    int ok = v && s >= 0 && H5Sget_simple_extent_ndims(s) == 3 &&
             H5Sget_simple_extent_dims(s, dims, NULL) == 3 && dims[0] == (hsize_t)cells[2] &&
             dims[1] == (hsize_t)cells[1] && dims[2] == (hsize_t)cells[0] &&
             H5Dread(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    MT_CHECK(ok, "%s: cannot read /material of %s (dims %llu %llu %llu)", what, path,
             (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2]);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    size_t k = 0, bad = 0;
    for (int64_t z = 0; ok && z < cells[2]; z++)
        for (int64_t y = 0; y < cells[1]; y++)
            for (int64_t x = 0; x < cells[0]; x++, k++) {
                int64_t c[3] = {(box[0] >> level) + x, (box[1] >> level) + y,
                                (box[2] >> level) + z};
                uint16_t want;
                if (level == 0) {
                    want = r->committed[ref_index(r, c[0], c[1], c[2])];
                } else {
                    int64_t lo[3], hi[3];
                    double h;
                    for (int a = 0; a < 3; a++)
                        block_of(c[a] << level, level, &lo[a], &hi[a]);
                    block_mode(r, lo, hi, &want, &h);
                }
                if (v[k] != want && bad++ < 3)
                    MT_CHECK(0,
                             "%s: extract level %d cell (%" PRId64 ",%" PRId64 ",%" PRId64
                             "): %u, reference %u",
                             what, level, c[0], c[1], c[2], v[k], want);
            }
    MT_CHECK(bad == 0, "%s: extract level %d: %zu of %zu cells differ", what, level, bad, n);
    free(v);
    remove(path);
}

/* ---- fsck, index ------------------------------------------------------------------ */

static void report_problem(const char *problem, void *ctx)
{
    fprintf(stderr, "rank %d: fsck (%s): %s\n", mt_rank, (const char *)ctx, problem);
}

static void check_fsck(strata_world *w, const char *what)
{
    uint64_t problems = 1;
    strata_status st = strata_fsck(w, report_problem, (void *)what, &problems);
    MT_CHECK(st == STRATA_OK && problems == 0, "%s: fsck: %s, %" PRIu64 " problems", what,
             strata_last_error(w), problems);
}

static uint64_t index_hash(strata_world *w, const char *what)
{
    strata_index_info info;
    memset(&info, 0, sizeof info);
    strata_status st = strata_index_status(w, 1, &info);
    MT_CHECK(st == STRATA_OK && info.stale_chunks == 0 && info.index_epoch == info.data_epoch,
             "%s: index status: %s, %" PRIu64 " stale, index at %" PRIu64 " of %" PRIu64, what,
             strata_last_error(w), info.stale_chunks, info.index_epoch, info.data_epoch);
    return info.hash;
}

/* ---- the workflow ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/world", dir);
    if (mt_rank == 0)
        mt_remove_tree(path);
    const int P = mt_size, Q = mt_size / 2 - 1 > 0 ? mt_size / 2 - 1 : 1;
    reference r;
    ref_init(&r, DIMS, EDGE);
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = 1;
    phase(MPI_COMM_WORLD, NULL);

    /* 1. P ranks: create, routed updates, commit, every voxel. */
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, DIMS, sizeof DIMS);
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    strata_status st = strata_world_create(MPI_COMM_WORLD, path, &cfg, &opt, 0, &w);
    MT_CHECK(st == STRATA_OK, "create at %d ranks: %s", P, strata_last_error(NULL));
    if (st)
        return mt_finish("many_ranks");
    phase(MPI_COMM_WORLD, "create");
    uint64_t epoch = 0;
    for (uint64_t round = 0; round < ROUNDS; round++)
        run_round(w, mt_rank, P, &r, round);
    phase(MPI_COMM_WORLD, "routed updates");
    commit(w, &r, &epoch, "first commit");
    phase(MPI_COMM_WORLD, "commit");
    ref_check_query_all(w, MPI_COMM_WORLD, &r, r.committed, "every voxel after the first commit");
    ref_check_chunks(w, mt_rank, P, &r, epoch, "every chunk after the first commit");
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close: %s", strata_last_error(NULL));
    phase(MPI_COMM_WORLD, "check every voxel, close");

    /* 2. Q ranks: reopen for writing, update, commit, reindex, LOD, extract, fsck. */
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, mt_rank < Q ? 0 : MPI_UNDEFINED, mt_rank, &sub);
    uint64_t hash = 0;
    w = NULL;
    if (sub != MPI_COMM_NULL) {
        st = strata_world_open(sub, path, STRATA_WRITE, &opt, &w);
        MT_CHECK(st == STRATA_OK, "open at %d ranks: %s", Q, strata_last_error(NULL));
        if (st)
            w = NULL;
        phase(sub, "reopen at another count");
    }
    if (w) {
        ref_check_query_all(w, sub, &r, r.committed, "every voxel reopened at another count");
        phase(sub, "check every voxel");
    }
    run_round(w, mt_rank, Q, &r, 100);
    if (w) {
        phase(sub, "routed updates");
        commit(w, &r, &epoch, "commit at another count");
        phase(sub, "commit");
        strata_index_info before;
        strata_reindex_stats rs;
        memset(&rs, 0, sizeof rs);
        MT_CHECK(strata_index_status(w, 0, &before) == STRATA_OK && before.stale_chunks > 0,
                 "deferred commits left no stale chunk: %s", strata_last_error(w));
        st = strata_reindex(w, 0, &rs);
        MT_CHECK(st == STRATA_OK && rs.chunks == before.stale_chunks && rs.stale_after == 0,
                 "reindex: %s (%" PRIu64 " chunks of %" PRIu64 " stale, %" PRIu64 " after)",
                 strata_last_error(w), rs.chunks, before.stale_chunks, rs.stale_after);
        hash = index_hash(w, "after reindex");
        phase(sub, "reindex");
        check_lod_points(w, &r, 0x10d0ULL + (uint64_t)mt_rank, "after reindex");
        const int64_t cover_box[6] = {3, 0, 17, 90, 61, 70};
        check_region(w, &r, cover_box, 1, 0.9, "after reindex");
        phase(sub, "LOD points and region");
        const int64_t box0[6] = {5, 3, 9, 83, 70, 61}, box2[6] = {1, 7, 0, 90, 77, 66};
        check_extract(w, sub, &r, dir, box0, 0, "at another count");
        phase(sub, "extract level 0");
        check_extract(w, sub, &r, dir, box2, 2, "at another count");
        phase(sub, "extract LOD 2");
        check_fsck(w, "at another count");
        phase(sub, "fsck");
        MT_CHECK(strata_world_close(w) == STRATA_OK, "close at %d ranks: %s", Q,
                 strata_last_error(NULL));
    } else if (sub == MPI_COMM_NULL) {
        /* the ranks outside sub replayed the round (run_round): commit it too */
        commit_reference(&r, &epoch);
    }
    if (sub != MPI_COMM_NULL)
        MPI_Comm_free(&sub);
    MPI_Bcast(&hash, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    phase(MPI_COMM_WORLD, NULL);

    /* 3. P ranks: reopen read-only, every voxel, LOD, region, extract, fsck, hash. */
    st = strata_world_open(MPI_COMM_WORLD, path, STRATA_READ, NULL, &w);
    MT_CHECK(st == STRATA_OK, "reopen at %d ranks: %s", P, strata_last_error(NULL));
    if (st)
        return mt_finish("many_ranks");
    phase(MPI_COMM_WORLD, "reopen read-only");
    ref_check_query_all(w, MPI_COMM_WORLD, &r, r.committed, "every voxel back at all ranks");
    ref_check_chunks(w, mt_rank, P, &r, epoch, "every chunk back at all ranks");
    phase(MPI_COMM_WORLD, "check every voxel and chunk");
    check_lod_points(w, &r, 0x20d0ULL + (uint64_t)mt_rank, "back at all ranks");
    const int64_t cover_box[6] = {0, 11, 0, 64, 77, 45};
    check_region(w, &r, cover_box, 0, 0.75, "back at all ranks");
    uint64_t h = index_hash(w, "back at all ranks");
    MT_CHECK(h == hash, "index hash at %d ranks %016" PRIx64 " != at %d ranks %016" PRIx64, P, h, Q,
             hash);
    phase(MPI_COMM_WORLD, "LOD points, region, index hash");
    const int64_t box1[6] = {0, 0, 0, 90, 77, 70};
    check_extract(w, MPI_COMM_WORLD, &r, dir, box1, 1, "back at all ranks");
    phase(MPI_COMM_WORLD, "extract LOD 1");
    check_fsck(w, "back at all ranks");
    phase(MPI_COMM_WORLD, "fsck");
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close: %s", strata_last_error(NULL));
    ref_free(&r);
    if (mt_rank == 0)
        mt_remove_tree(path);
    return mt_finish("many_ranks");
}
