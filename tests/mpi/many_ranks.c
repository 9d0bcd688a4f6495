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

/* A phase's time is that of its library calls only (not of the brute-force checks):
 * each call runs between two barriers of its communicator, and rank 0 of
 * MPI_COMM_WORLD, which is in every communicator, adds up and prints. The
 * MPI_Pcontrol calls mark the same spans for bench/mpi_calls.so, which counts the
 * library's collectives when preloaded (and is a no-op otherwise). */
static double call_start, phase_seconds;

static void call_begin(MPI_Comm comm)
{
    MPI_Barrier(comm);
    call_start = MPI_Wtime();
    MPI_Pcontrol(2);
}

static void call_end(MPI_Comm comm)
{
    MPI_Pcontrol(0);
    MPI_Barrier(comm);
    phase_seconds += MPI_Wtime() - call_start;
}

static void phase(MPI_Comm comm, const char *what, const char *detail)
{
    int size;
    MPI_Comm_size(comm, &size);
    if (mt_rank == 0)
        fprintf(stderr, "many_ranks: %3d ranks: %-28s %7.3f s%s%s\n", size, what, phase_seconds,
                detail ? "  " : "", detail ? detail : "");
    MPI_Pcontrol(1, what);
    phase_seconds = 0;
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
static void run_round(strata_world *w, MPI_Comm comm, int comm_rank, int ranks, reference *r,
                      uint64_t round)
{
    uint64_t counts[2] = {0, 0};
    strata_update *mine = ref_round(r, round, ranks, w ? comm_rank : -1, UPDATES_PER_RANK, counts);
    if (!w)
        return;
    strata_batch_stats stats;
    memset(&stats, 0, sizeof stats);
    call_begin(comm);
    strata_status st = strata_update_batch(w, mine, UPDATES_PER_RANK, &stats);
    call_end(comm);
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

/* Commit on comm and print its time with the slowest rank's flush, encode and write. */
static void commit(strata_world *w, MPI_Comm comm, reference *r, uint64_t *epoch, const char *what)
{
    strata_commit_stats cs;
    memset(&cs, 0, sizeof cs);
    call_begin(comm);
    strata_status st = strata_commit(w, &cs);
    call_end(comm);
    MT_CHECK(st == STRATA_OK && cs.epoch == *epoch + 1 && cs.chunks_written > 0,
             "%s: commit: %s (epoch %" PRIu64 " after %" PRIu64 ", %" PRIu64 " chunks)", what,
             strata_last_error(w), cs.epoch, *epoch, cs.chunks_written);
    commit_reference(r, epoch);
    double part[3] = {cs.flush_seconds, cs.encode_seconds, cs.write_seconds}, slowest[3];
    MPI_Reduce(part, slowest, 3, MPI_DOUBLE, MPI_MAX, 0, comm);
    char detail[160];
    snprintf(detail, sizeof detail,
             "(%" PRIu64 " chunks; slowest rank: flush %.3f, encode %.3f, write %.3f s)",
             cs.chunks_written, slowest[0], slowest[1], slowest[2]);
    phase(comm, "commit", detail);
}

/* ---- LOD ------------------------------------------------------------------------- */

/* strata_query_lod at every level up to the root's, at points differing per rank. */
static void check_lod_points(strata_world *w, MPI_Comm comm, const reference *r, uint64_t seed,
                             const char *what)
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
        call_begin(comm);
        strata_status st =
            strata_query_lod(w, (const int64_t(*)[3])pts, n, level, threshold, out, hom);
        call_end(comm);
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
static void check_region(strata_world *w, MPI_Comm comm, const reference *r, const int64_t box[6],
                         int level, double threshold, const char *what)
{
    strata_region *g = NULL;
    size_t n = 0;
    call_begin(comm);
    strata_status st = strata_query_region(w, box, level, threshold, &g, &n);
    call_end(comm);
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
    call_begin(comm);
    strata_status st = strata_extract(w, box, level, path, NULL, &es);
    call_end(comm);
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

static void check_fsck(strata_world *w, MPI_Comm comm, const char *what)
{
    uint64_t problems = 1;
    call_begin(comm);
    strata_status st = strata_fsck(w, report_problem, (void *)what, &problems);
    call_end(comm);
    MT_CHECK(st == STRATA_OK && problems == 0, "%s: fsck: %s, %" PRIu64 " problems", what,
             strata_last_error(w), problems);
}

static uint64_t index_hash(strata_world *w, MPI_Comm comm, const char *what)
{
    strata_index_info info;
    memset(&info, 0, sizeof info);
    call_begin(comm);
    strata_status st = strata_index_status(w, 1, &info);
    call_end(comm);
    MT_CHECK(st == STRATA_OK && info.stale_chunks == 0 && info.index_epoch == info.data_epoch,
             "%s: index status: %s, %" PRIu64 " stale, index at %" PRIu64 " of %" PRIu64, what,
             strata_last_error(w), info.stale_chunks, info.index_epoch, info.data_epoch);
    return info.hash;
}

/* ---- the workflow ----------------------------------------------------------------- */

/* Every voxel through routed point queries (each rank asks a slice), timed. */
static void check_every_voxel(strata_world *w, MPI_Comm comm, const reference *r, const char *what)
{
    call_begin(comm);
    ref_check_query_all(w, comm, r, r->committed, what);
    call_end(comm);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    MPI_Pcontrol(0);
    double started = MPI_Wtime();
    char path[4096];
    snprintf(path, sizeof path, "%s/world", dir);
    if (mt_rank == 0)
        mt_remove_tree(path);
    const int P = mt_size, Q = mt_size / 2 - 1 > 0 ? mt_size / 2 - 1 : 1;
    const MPI_Comm all = MPI_COMM_WORLD;
    reference r;
    ref_init(&r, DIMS, EDGE);
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = 1;

    /* 1. P ranks: create, routed updates, commit, every voxel. */
    strata_config cfg;
    strata_config_init(&cfg);
    memcpy(cfg.dims, DIMS, sizeof DIMS);
    cfg.chunk_edge = EDGE;
    strata_world *w = NULL;
    call_begin(all);
    strata_status st = strata_world_create(all, path, &cfg, &opt, 0, &w);
    call_end(all);
    MT_CHECK(st == STRATA_OK, "create at %d ranks: %s", P, strata_last_error(NULL));
    if (st)
        return mt_finish("many_ranks");
    phase(all, "create", NULL);
    uint64_t epoch = 0;
    for (uint64_t round = 0; round < ROUNDS; round++)
        run_round(w, all, mt_rank, P, &r, round);
    phase(all, "routed updates", "(2 batches of 1,500 a rank)");
    commit(w, all, &r, &epoch, "first commit");
    check_every_voxel(w, all, &r, "every voxel after the first commit");
    phase(all, "query every voxel", NULL);
    ref_check_chunks(w, mt_rank, P, &r, epoch, "every chunk after the first commit");
    call_begin(all);
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close: %s", strata_last_error(NULL));
    call_end(all);
    phase(all, "close", NULL);

    /* 2. Q ranks: reopen for writing, update, commit, reindex, LOD, extract, fsck. */
    MPI_Comm sub;
    MPI_Comm_split(all, mt_rank < Q ? 0 : MPI_UNDEFINED, mt_rank, &sub);
    uint64_t hash = 0;
    w = NULL;
    if (sub != MPI_COMM_NULL) {
        call_begin(sub);
        st = strata_world_open(sub, path, STRATA_WRITE, &opt, &w);
        call_end(sub);
        MT_CHECK(st == STRATA_OK, "open at %d ranks: %s", Q, strata_last_error(NULL));
        if (st)
            w = NULL;
        phase(sub, "open for writing", NULL);
    }
    if (w) {
        check_every_voxel(w, sub, &r, "every voxel reopened at another count");
        phase(sub, "query every voxel", NULL);
    }
    run_round(w, sub, mt_rank, Q, &r, 100);
    if (w) {
        phase(sub, "routed updates", "(1 batch of 1,500 a rank)");
        commit(w, sub, &r, &epoch, "commit at another count");
        strata_index_info before;
        strata_reindex_stats rs;
        memset(&rs, 0, sizeof rs);
        MT_CHECK(strata_index_status(w, 0, &before) == STRATA_OK && before.stale_chunks > 0,
                 "deferred commits left no stale chunk: %s", strata_last_error(w));
        call_begin(sub);
        st = strata_reindex(w, 0, &rs);
        call_end(sub);
        MT_CHECK(st == STRATA_OK && rs.chunks == before.stale_chunks && rs.stale_after == 0,
                 "reindex: %s (%" PRIu64 " chunks of %" PRIu64 " stale, %" PRIu64 " after)",
                 strata_last_error(w), rs.chunks, before.stale_chunks, rs.stale_after);
        phase(sub, "reindex", NULL);
        hash = index_hash(w, sub, "after reindex");
        phase(sub, "build the index", NULL);
        check_lod_points(w, sub, &r, 0x10d0ULL + (uint64_t)mt_rank, "after reindex");
        phase(sub, "LOD points", "(9 levels)");
        const int64_t cover_box[6] = {3, 0, 17, 90, 61, 70};
        check_region(w, sub, &r, cover_box, 1, 0.9, "after reindex");
        phase(sub, "region cover", NULL);
        const int64_t box0[6] = {5, 3, 9, 83, 70, 61}, box2[6] = {1, 7, 0, 90, 77, 66};
        check_extract(w, sub, &r, dir, box0, 0, "at another count");
        phase(sub, "extract level 0", NULL);
        check_extract(w, sub, &r, dir, box2, 2, "at another count");
        phase(sub, "extract LOD 2", NULL);
        check_fsck(w, sub, "at another count");
        phase(sub, "fsck", NULL);
        call_begin(sub);
        MT_CHECK(strata_world_close(w) == STRATA_OK, "close at %d ranks: %s", Q,
                 strata_last_error(NULL));
        call_end(sub);
        phase(sub, "close", NULL);
    } else if (sub == MPI_COMM_NULL) {
        /* the ranks outside sub replayed the round (run_round): commit it too */
        commit_reference(&r, &epoch);
    }
    if (sub != MPI_COMM_NULL)
        MPI_Comm_free(&sub);
    MPI_Bcast(&hash, 1, MPI_UINT64_T, 0, all);

    /* 3. P ranks: reopen read-only, every voxel, LOD, region, extract, fsck, hash. */
    call_begin(all);
    st = strata_world_open(all, path, STRATA_READ, NULL, &w);
    call_end(all);
    MT_CHECK(st == STRATA_OK, "reopen at %d ranks: %s", P, strata_last_error(NULL));
    if (st)
        return mt_finish("many_ranks");
    phase(all, "open read-only", NULL);
    check_every_voxel(w, all, &r, "every voxel back at all ranks");
    phase(all, "query every voxel", NULL);
    ref_check_chunks(w, mt_rank, P, &r, epoch, "every chunk back at all ranks");
    uint64_t h = index_hash(w, all, "back at all ranks");
    MT_CHECK(h == hash, "index hash at %d ranks %016" PRIx64 " != at %d ranks %016" PRIx64, P, h, Q,
             hash);
    phase(all, "build the index", NULL);
    check_lod_points(w, all, &r, 0x20d0ULL + (uint64_t)mt_rank, "back at all ranks");
    phase(all, "LOD points", "(9 levels)");
    const int64_t cover_box[6] = {0, 11, 0, 64, 77, 45};
    check_region(w, all, &r, cover_box, 0, 0.75, "back at all ranks");
    phase(all, "region cover", NULL);
    const int64_t box1[6] = {0, 0, 0, 90, 77, 70};
    check_extract(w, all, &r, dir, box1, 1, "back at all ranks");
    phase(all, "extract LOD 1", NULL);
    check_fsck(w, all, "back at all ranks");
    phase(all, "fsck", NULL);
    call_begin(all);
    MT_CHECK(strata_world_close(w) == STRATA_OK, "close: %s", strata_last_error(NULL));
    call_end(all);
    phase(all, "close", NULL);
    ref_free(&r);
    if (mt_rank == 0) {
        mt_remove_tree(path);
        fprintf(stderr, "many_ranks: %3d ranks: the whole test (checks included) %.1f s\n", P,
                MPI_Wtime() - started);
    }
    return mt_finish("many_ranks");
}
