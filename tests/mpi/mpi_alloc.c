/*
 * mpi_alloc.c: allocation failures (src/alloc.h), one rank at a time, at every
 * allocation site each operation reaches: open, flush, commit, reindex,
 * compaction, extraction, point / LOD / region queries, box statistics, dense box
 * reads, rays, and raw and DEM import.
 *
 * For each operation a first, unarmed run counts the allocations and lists the
 * sites it reaches on each rank (strata_alloc_fail with n = 0 counts); then the
 * operation runs again once per N = 1, 2, ... up to the most allocations one rank
 * makes, the Nth allocation failing on one rank (rotating over the ranks that
 * make N), as SQLite's malloc tests loop; last, every site that loop did not
 * fail (one reached only by a rank the rotation did not pick at that N) fails
 * at its first allocation on one rank that reaches it. Each case checks (see
 * fault_check.h): every rank returns the same status and message; no hang; the
 * world is at the previous or the new version, whole, and fsck is clean; the
 * handle stays usable. Leaks are caught by the sanitized build's LeakSanitizer.
 * Rank 0 prints, per operation, its sites, its N and the sites added after the loop.
 */
#include "alloc.h"
#include "cdf_writer.h"
#include "fault_check.h"

#include <math.h>
#include <sys/stat.h>

typedef struct {
    char path[4096], extract[4200], import[4200], raw[4200], dem[4200];
    strata_world *w;
    int version;          /* committed, and what the handle's routed reads see */
    uint16_t *lod;        /* unarmed answers of the LOD query */
    size_t regions;       /* unarmed answer of the region query */
    uint64_t stats[2];    /* unarmed answer of the box statistics: materials, weighted sum */
    strata_ray_hit *hits; /* unarmed answers of this rank's rays */
    int64_t (*points)[3]; /* this rank's share of the voxels */
    size_t n;
} world_case;

typedef struct {
    const char *name;
    strata_status (*prepare)(world_case *c);        /* unarmed, may be NULL */
    strata_status (*run)(world_case *c);            /* armed */
    void (*check)(world_case *c, strata_status st); /* unarmed: verify and move on */
} operation;

/* ---- operations ------------------------------------------------------------------ */

static strata_status run_open(world_case *c)
{
    strata_world *r = NULL;
    strata_status st = strata_world_open(MPI_COMM_WORLD, c->path, STRATA_READ, NULL, &r);
    fc_agreed(st, NULL);
    MT_CHECK(st ? r == NULL : r != NULL, "%s: out handle %p with status %d", fc_case, (void *)r,
             st);
    if (r)
        strata_world_close(r);
    return st;
}

static void check_nothing(world_case *c, strata_status st)
{
    (void)c, (void)st;
}

static strata_status run_flush(world_case *c)
{
    return fc_write(c->w, c->version + 1);
}

static void check_flush(world_case *c, strata_status st)
{
    int seen = fc_version(c->w, c->version, c->version + 1);
    MT_CHECK(seen == (st ? c->version : c->version + 1), "%s: flushed state is version %d", fc_case,
             seen);
    strata_status done = st ? STRATA_OK : strata_commit(c->w, NULL);
    MT_CHECK(!done, "%s: commit after: %s", fc_case, strata_last_error(c->w));
    c->version += !st && !done;
}

static strata_status prepare_commit(world_case *c)
{
    return fc_write(c->w, c->version + 1);
}

static strata_status run_commit(world_case *c)
{
    return strata_commit(c->w, NULL);
}

static void check_commit(world_case *c, strata_status st)
{
    int seen = fc_check_world(c->path, c->version, c->version + 1);
    MT_CHECK(seen == (st ? c->version : c->version + 1), "%s: the world is at version %d", fc_case,
             seen);
    if (st) { /* the handle retries and commits */
        strata_status again = strata_commit(c->w, NULL);
        MT_CHECK(!again, "%s: retry: %s", fc_case, strata_last_error(c->w));
        seen = fc_check_world(c->path, c->version, c->version + 1);
        MT_CHECK(seen == c->version + 1, "%s: after the retry the world is at version %d", fc_case,
                 seen);
    }
    c->version++;
}

static strata_status run_reindex(world_case *c)
{
    return strata_reindex(c->w, 1, NULL);
}

static strata_status run_compact(world_case *c)
{
    return strata_compact(c->w, NULL);
}

/* Reindex and compaction keep the voxels: the world stays at its version. */
static void check_same(world_case *c, strata_status st)
{
    (void)st;
    int seen = fc_check_world(c->path, c->version, c->version);
    MT_CHECK(seen == c->version, "%s: the world is at version %d", fc_case, seen);
    MT_CHECK(fc_version(c->w, c->version, c->version) == c->version,
             "%s: the handle no longer reads version %d", fc_case, c->version);
}

static strata_status run_extract(world_case *c)
{
    const int64_t box[6] = {0, 0, 0, FC_X, FC_Y, FC_Z};
    return strata_extract(c->w, box, 0, c->extract, NULL, NULL);
}

static void check_extract(world_case *c, strata_status st)
{
    struct stat sb;
    int exists = stat(c->extract, &sb) == 0;
    MT_CHECK(exists == !st, "%s: %s %s after status %d", fc_case, c->extract,
             exists ? "exists" : "is missing", st);
    MPI_Barrier(MPI_COMM_WORLD);
    if (mt_rank == 0)
        remove(c->extract);
    MPI_Barrier(MPI_COMM_WORLD);
}

static strata_status run_points(world_case *c)
{
    uint16_t *got = malloc((c->n + 1) * sizeof *got);
    strata_status st = strata_query_points(c->w, (const int64_t(*)[3])c->points, c->n, got);
    for (size_t i = 0; !st && i < c->n; i++)
        if (got[i] != fc_pattern(c->version, c->points[i][0], c->points[i][1], c->points[i][2])) {
            MT_CHECK(0, "%s: voxel %zu reads %u", fc_case, i, got[i]);
            break;
        }
    free(got);
    return st;
}

static strata_status lod_query(world_case *c, uint16_t *out)
{
    return strata_query_lod(c->w, (const int64_t(*)[3])c->points, c->n, 2, -1.0, out, NULL);
}

/* The unarmed answer of the current version. */
static strata_status prepare_lod(world_case *c)
{
    return lod_query(c, c->lod);
}

static strata_status run_lod(world_case *c)
{
    uint16_t *got = malloc((c->n + 1) * sizeof *got);
    strata_status st = lod_query(c, got);
    MT_CHECK(st || memcmp(got, c->lod, c->n * sizeof *got) == 0, "%s: LOD answers differ", fc_case);
    free(got);
    return st;
}

static strata_status region_query(world_case *c, size_t *n)
{
    const int64_t box[6] = {0, 0, 0, FC_X, FC_Y, FC_Z};
    strata_region *regions = NULL;
    strata_status st = strata_query_region(c->w, box, 0, 1.0, &regions, n);
    free(regions);
    return st;
}

static strata_status prepare_region(world_case *c)
{
    return region_query(c, &c->regions);
}

static strata_status run_region(world_case *c)
{
    size_t n = 0;
    strata_status st = region_query(c, &n);
    MT_CHECK(st || n == c->regions, "%s: %zu regions, unarmed %zu", fc_case, n, c->regions);
    return st;
}

/* A box cutting chunks at every side: whole chunks answer from summaries, cut ones
 * from their voxels. */
static const int64_t stats_box[6] = {3, 5, 2, FC_X - 4, FC_Y - 1, FC_Z - 3};

static strata_status stats_query(world_case *c, uint64_t answer[2])
{
    strata_material_count *counts = NULL;
    size_t n = 0;
    strata_status st = strata_box_stats(c->w, stats_box, &counts, &n);
    answer[0] = n, answer[1] = 0;
    for (size_t i = 0; !st && i < n; i++)
        answer[1] += counts[i].count * (counts[i].material + 1u);
    free(counts);
    return st;
}

static strata_status prepare_stats(world_case *c)
{
    return stats_query(c, c->stats);
}

static strata_status run_stats(world_case *c)
{
    uint64_t got[2];
    strata_status st = stats_query(c, got);
    MT_CHECK(st || (got[0] == c->stats[0] && got[1] == c->stats[1]), "%s: box statistics differ",
             fc_case);
    return st;
}

/* One box per rank (a different one on each), read dense and compared voxel by voxel. */
static strata_status run_read_boxes(world_case *c)
{
    const int64_t box[1][6] = {{mt_rank % 3, 1, 2, FC_X - 1, FC_Y - mt_rank % 4, FC_Z - 1}};
    const int64_t *b = box[0], nx = b[3] - b[0], ny = b[4] - b[1];
    uint16_t *got = malloc((size_t)(nx * ny * (b[5] - b[2])) * sizeof *got);
    uint16_t *const out[1] = {got};
    strata_status st = strata_read_boxes(c->w, box, 1, 0, out, NULL);
    for (int64_t z = b[2]; !st && z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++)
            for (int64_t x = b[0]; x < b[3]; x++)
                if (got[((z - b[2]) * ny + (y - b[1])) * nx + (x - b[0])] !=
                    fc_pattern(c->version, x, y, z)) {
                    MT_CHECK(0, "%s: box voxel (%ld, %ld, %ld) differs", fc_case, (long)x, (long)y,
                             (long)z);
                    free(got);
                    return st;
                }
    free(got);
    return st;
}

/* Rays straight down from above this rank's columns (every 5th x, 3rd y), and one
 * slanted: different rays on different ranks, each walked by its own rank. */
enum { RAYS_MAX = (FC_X / 5 + 1) * (FC_Y / 3 + 1) + 1 };

static size_t ray_set(double (*from)[3], double (*dir)[3])
{
    size_t n = 0;
    for (int y = mt_rank; y < FC_Y; y += 3 * mt_size)
        for (int x = 0; x < FC_X; x += 5, n++) {
            from[n][0] = x + 0.5, from[n][1] = y + 0.5, from[n][2] = FC_Z + 4.0;
            dir[n][0] = 0, dir[n][1] = 0, dir[n][2] = -1;
        }
    from[n][0] = -3.0, from[n][1] = 2.5 + mt_rank, from[n][2] = FC_Z - 1.5;
    dir[n][0] = 1, dir[n][1] = 0.3, dir[n][2] = -0.2;
    return n + 1;
}

static strata_status cast(world_case *c, strata_ray_hit *hits)
{
    double from[RAYS_MAX][3], dir[RAYS_MAX][3];
    size_t n = ray_set(from, dir);
    return strata_cast_rays(c->w, (const double(*)[3])from, (const double(*)[3])dir, n, NULL, hits);
}

static strata_status prepare_rays(world_case *c)
{
    return cast(c, c->hits);
}

static strata_status run_rays(world_case *c)
{
    strata_ray_hit got[RAYS_MAX];
    double from[RAYS_MAX][3], dir[RAYS_MAX][3];
    size_t n = ray_set(from, dir);
    strata_status st = cast(c, got);
    for (size_t i = 0; !st && i < n; i++)
        if (got[i].hit != c->hits[i].hit ||
            (got[i].hit && memcmp(got[i].voxel, c->hits[i].voxel, sizeof got[i].voxel))) {
            MT_CHECK(0, "%s: ray %zu differs", fc_case, i);
            break;
        }
    return st;
}

/* The configuration and options of both imports: the test's chunk edge, one thread. */
static void import_setup(strata_config *cfg, strata_options *opt)
{
    strata_config_init(cfg);
    cfg->chunk_edge = FC_EDGE;
    strata_options_init(opt);
    opt->threads = 1;
}

/* An import's end: its status agreed on every rank, the new world (if any) closed. */
static strata_status import_end(strata_status st, strata_world *r)
{
    fc_agreed(st, NULL);
    if (r)
        strata_world_close(r);
    return st;
}

static strata_status run_import(world_case *c)
{
    strata_raw_options raw = {.dims = {FC_X, FC_Y, FC_Z}, .type = STRATA_RAW_UINT8};
    strata_config cfg;
    strata_options opt;
    import_setup(&cfg, &opt);
    strata_world *r = NULL;
    strata_status st =
        strata_import_raw(MPI_COMM_WORLD, c->import, c->raw, &raw, &cfg, &opt, 0, NULL, &r);
    return import_end(st, r);
}

/* A DEM of 24 x 18 cells (netCDF, rows south to north) with sea, coast and land. */
enum { DEM_X = 24, DEM_Y = 18 };

static void write_dem(const char *path)
{
    float elevation[DEM_X * DEM_Y];
    for (int j = 0; j < DEM_Y; j++)
        for (int i = 0; i < DEM_X; i++)
            elevation[j * DEM_X + i] = (float)(1500 * sin(i * 0.3) * cos(j * 0.2) + 40 * i - 400);
    write_cdf(path, DEM_X, DEM_Y, 280, 0.25, -40, 0.25, elevation);
}

/* DEM options: 200 m voxels vertically (the relief spans about 4 km). */
static const strata_dem_options *dem_options(strata_dem_options *d)
{
    strata_dem_options_init(d);
    d->vertical_res = 200;
    return d;
}

static strata_status run_import_dem(world_case *c)
{
    strata_config cfg;
    strata_options opt;
    import_setup(&cfg, &opt);
    strata_dem_options d;
    strata_world *r = NULL;
    strata_status st = strata_import_dem(MPI_COMM_WORLD, c->import, c->dem, dem_options(&d), &cfg,
                                         &opt, 0, NULL, &r);
    return import_end(st, r);
}

/* 0 when strata was built without netCDF (its DEM import then always refuses). */
static int dem_supported(void)
{
    strata_config cfg;
    strata_config_init(&cfg);
    strata_status st = strata_import_dem(MPI_COMM_WORLD, "/nonexistent/w", "/nonexistent.nc", NULL,
                                         &cfg, NULL, 0, NULL, NULL);
    return !(st && strstr(strata_last_error(NULL), "without netCDF"));
}

/* Imported (and then a world fsck finds clean) or not there at all. */
static void check_import_dem(world_case *c, strata_status st)
{
    struct stat sb;
    int exists = stat(c->import, &sb) == 0;
    MT_CHECK(exists == !st, "%s: %s %s after status %d", fc_case, c->import,
             exists ? "exists" : "is missing", st);
    strata_world *r = NULL;
    if (!st && !strata_world_open(MPI_COMM_WORLD, c->import, STRATA_READ, NULL, &r)) {
        uint64_t problems = 1;
        int shown = 0;
        strata_status checked = strata_fsck(r, fc_problem, &shown, &problems);
        MT_CHECK(!checked && problems == 0, "%s: fsck of the imported world: %s", fc_case,
                 checked ? strata_last_error(r) : "problems");
        strata_world_close(r);
    } else if (!st) {
        MT_CHECK(0, "%s: reopening the imported world: %s", fc_case, strata_last_error(NULL));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (mt_rank == 0)
        mt_remove_tree(c->import);
    MPI_Barrier(MPI_COMM_WORLD);
}

static void check_import(world_case *c, strata_status st)
{
    struct stat sb;
    int exists = stat(c->import, &sb) == 0;
    MT_CHECK(exists == !st, "%s: %s %s after status %d", fc_case, c->import,
             exists ? "exists" : "is missing", st);
    if (!st)
        MT_CHECK(fc_check_world(c->import, 1, 1) == 1, "%s: imported world differs", fc_case);
    MPI_Barrier(MPI_COMM_WORLD);
    if (mt_rank == 0)
        mt_remove_tree(c->import);
    MPI_Barrier(MPI_COMM_WORLD);
}

static const operation operations[] = {
    {"open", NULL, run_open, check_nothing},
    {"flush", NULL, run_flush, check_flush},
    {"commit", prepare_commit, run_commit, check_commit},
    {"reindex", NULL, run_reindex, check_same},
    {"compact", NULL, run_compact, check_same},
    {"extract", NULL, run_extract, check_extract},
    {"query_points", NULL, run_points, check_nothing},
    {"query_lod", prepare_lod, run_lod, check_nothing},
    {"query_region", prepare_region, run_region, check_nothing},
    {"box_stats", prepare_stats, run_stats, check_nothing},
    {"read_boxes", NULL, run_read_boxes, check_nothing},
    {"cast_rays", prepare_rays, run_rays, check_nothing},
    {"import", NULL, run_import, check_import},
    {"import (DEM)", NULL, run_import_dem, check_import_dem},
    /* Again, now that the queries built the index: commits and compaction update it. */
    {"commit (index built)", prepare_commit, run_commit, check_commit},
    {"compact (index built)", NULL, run_compact, check_same},
};

/* ---- sites --------------------------------------------------------------------- */

/* "dir/src/commit.c:123" -> "commit.c:123" (index/lod.c:55 keeps its folder). */
static const char *short_site(const char *site)
{
    const char *s = strstr(site, "/src/");
    return s ? s + 5 : site;
}

/* Every rank's sites, "site\n" each, gathered on every rank; *owner: per site in
 * the result, a bit mask of the ranks that reached it (up to 64 ranks). */
static char *gather_sites(size_t *count, uint64_t **owners)
{
    const char *mine[4096];
    size_t n = strata_alloc_sites(mine, 4096);
    size_t length = 0;
    for (size_t i = 0; i < n && i < 4096; i++)
        length += strlen(short_site(mine[i])) + 1;
    char *text = malloc(length + 1), *at = text;
    for (size_t i = 0; i < n && i < 4096; i++)
        at += sprintf(at, "%s\n", short_site(mine[i]));
    int len = (int)length, *lengths = malloc(sizeof(int) * (size_t)mt_size),
        *offsets = malloc(sizeof(int) * (size_t)mt_size);
    MPI_Allgather(&len, 1, MPI_INT, lengths, 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < mt_size; r++)
        offsets[r] = total, total += lengths[r];
    char *all = malloc((size_t)total + 1);
    MPI_Allgatherv(text, len, MPI_CHAR, all, lengths, offsets, MPI_CHAR, MPI_COMM_WORLD);
    all[total] = '\0';
    /* Unique sites in first-seen order, each with its ranks. */
    char *unique = malloc((size_t)total + 1);
    size_t used = 0, k = 0;
    uint64_t *mask = calloc((size_t)total + 1, sizeof *mask);
    unique[0] = '\0';
    for (int r = 0; r < mt_size; r++) {
        for (char *s = all + offsets[r]; s < all + offsets[r] + lengths[r];) {
            char *end = strchr(s, '\n');
            *end = '\0';
            size_t j = 0;
            const char *u = unique;
            while (j < k && strcmp(u, s) != 0)
                u += strlen(u) + 1, j++;
            if (j == k) {
                strcpy(unique + used, s);
                used += strlen(s) + 1;
                k++;
            }
            mask[j] |= (uint64_t)1 << (r % 64);
            s = end + 1;
        }
    }
    free(text), free(lengths), free(offsets), free(all);
    *count = k;
    *owners = mask;
    return unique;
}

static size_t cases_total;
static const char *failed_sites[4096]; /* this rank's, in the operation's loop over N */
static size_t failed_count;
static char *distinct[1024]; /* every site reached by some operation */
static size_t distinct_count;

static void note_distinct(const char *site)
{
    for (size_t i = 0; i < distinct_count; i++)
        if (!strcmp(distinct[i], site))
            return;
    if (distinct_count < 1024)
        distinct[distinct_count++] = strdup(site);
}

/* One armed run: the nth allocation counted on `rank` (of those at `site`, or
 * of all when site is NULL) fails. Checks the agreed status, then op->check. */
static void run_case(world_case *c, const operation *op, long nth, int rank, const char *site)
{
    strata_status st = op->prepare ? op->prepare(c) : STRATA_OK;
    MT_CHECK(!st, "%s: prepare: %s", fc_case, strata_last_error(c->w));
    strata_alloc_fail(nth, rank, site);
    st = op->run(c);
    int failed = strata_alloc_failed();
    const char *where = strata_alloc_failed_site();
    strata_alloc_disarm();
    if (where && !site && failed_count < 4096)
        failed_sites[failed_count++] = where;
    int imports = op->run == run_import || op->run == run_import_dem;
    if (op->run != run_open && !imports)
        fc_agreed(st, c->w);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    /* A failed allocation that an operation absorbs (a cache it does without)
     * may still succeed; one that it reports must be NOMEM. */
    MT_CHECK(!st || st == STRATA_ERR_NOMEM, "%s: status %s: %s", fc_case, strata_strerror(st),
             strata_last_error(op->run == run_open || imports ? NULL : c->w));
    MT_CHECK(any || !st, "%s: failed (%s) with no allocation failing", fc_case,
             strata_strerror(st));
    op->check(c, st);
}

/* 1 when some rank's loop over N already failed an allocation at `site`. */
static int site_covered(const char *site)
{
    int mine = 0, any = 0;
    for (size_t i = 0; i < failed_count && !mine; i++)
        mine = !strcmp(short_site(failed_sites[i]), site);
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return any;
}

/*
 * The operation's cases: first, for N = 1, 2, ... up to the most allocations a
 * rank makes, the Nth allocation fails on one rank (rotating over the ranks that
 * make that many); then, for every site that loop did not fail on any rank, the
 * first allocation at that site fails on one rank that reaches it.
 */
static void run_operation(world_case *c, const operation *op)
{
    /* Unarmed: how many allocations, at which sites? */
    fc_begin("%s: listing its allocations at %d ranks", op->name, mt_size);
    strata_status st = op->prepare ? op->prepare(c) : STRATA_OK;
    MT_CHECK(!st, "%s: prepare: %s", fc_case, strata_last_error(c->w));
    strata_alloc_fail(0, -1, NULL);
    st = op->run(c);
    long made = strata_alloc_count(), *counts = malloc(sizeof(long) * (size_t)mt_size), most = 0;
    strata_alloc_disarm();
    MT_CHECK(!st, "%s: unarmed: %s", fc_case, strata_last_error(c->w));
    MPI_Allgather(&made, 1, MPI_LONG, counts, 1, MPI_LONG, MPI_COMM_WORLD);
    for (int r = 0; r < mt_size; r++)
        most = counts[r] > most ? counts[r] : most;
    size_t count;
    uint64_t *owners;
    char *sites = gather_sites(&count, &owners);
    op->check(c, st);

    failed_count = 0;
    /* The sanitized build (several times slower) fails every third N; the sites
     * that skips are then failed at their first allocation below. */
    long step = getenv("STRATA_SANITIZED") ? 3 : 1;
    for (long n = 1; n <= most; n += step) {
        int rank = -1;
        for (int t = 0; t < mt_size && rank < 0; t++) {
            int r = (int)((n - 1 + t) % mt_size);
            if (counts[r] >= n)
                rank = r;
        }
        fc_begin("%s: allocation %ld fails on rank %d of %d", op->name, n, rank, mt_size);
        run_case(c, op, n, rank, NULL);
    }
    size_t extra = 0;
    const char *site = sites;
    for (size_t i = 0; i < count; i++, site += strlen(site) + 1) {
        note_distinct(site);
        if (site_covered(site))
            continue;
        /* One rank that reaches the site, rotating. */
        int rank = -1;
        for (int t = 0; t < mt_size && rank < 0; t++) {
            int r = (int)((i + (size_t)t) % (size_t)mt_size);
            if (owners[i] & ((uint64_t)1 << (r % 64)))
                rank = r;
        }
        fc_begin("%s: first allocation at %s fails on rank %d of %d", op->name, site, rank,
                 mt_size);
        run_case(c, op, 1, rank, site);
        extra++;
    }
    cases_total += (size_t)((most + step - 1) / step) + extra;
    if (mt_rank == 0)
        fprintf(stderr,
                "mpi_alloc: %s reaches %zu allocation sites at %d ranks: allocation N = 1..%ld "
                "(step %ld) failed, then the first at %zu sites that loop missed\n",
                op->name, count, mt_size, most, step, extra);
    free(sites);
    free(owners);
    free(counts);
    alarm(0);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    world_case c = {0};
    snprintf(c.path, sizeof c.path, "%s/world", dir);
    snprintf(c.extract, sizeof c.extract, "%s/out.h5", dir);
    snprintf(c.import, sizeof c.import, "%s/imported", dir);
    snprintf(c.raw, sizeof c.raw, "%s/volume.raw", dir);
    snprintf(c.dem, sizeof c.dem, "%s/relief.nc", dir);
    if (mt_rank == 0) {
        mt_remove_tree(c.import);
        remove(c.extract);
        /* The raw volume is version 1's pattern (all ids fit a byte). */
        FILE *f = fopen(c.raw, "wb");
        for (size_t i = 0; f && i < FC_VOXELS; i++) {
            int64_t p[3];
            fc_voxel(i, p);
            fputc(fc_pattern(1, p[0], p[1], p[2]), f);
        }
        if (!f || fclose(f) != 0)
            MT_CHECK(0, "cannot write %s", c.raw);
        write_dem(c.dem);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    fc_begin("create at %d ranks", mt_size);
    strata_status st = fc_create(c.path, &c.w);
    if (!st)
        st = fc_write(c.w, 1);
    if (!st)
        st = strata_commit(c.w, NULL);
    MT_CHECK(!st, "first commit: %s", strata_last_error(c.w ? c.w : NULL));
    if (st)
        return mt_finish("mpi_alloc");
    c.version = 1;
    size_t first = (size_t)FC_VOXELS * mt_rank / mt_size;
    c.n = (size_t)FC_VOXELS * (mt_rank + 1) / mt_size - first;
    c.points = malloc((c.n + 1) * sizeof *c.points);
    c.lod = malloc((c.n + 1) * sizeof *c.lod);
    c.hits = malloc(RAYS_MAX * sizeof *c.hits);
    for (size_t i = 0; i < c.n; i++)
        fc_voxel(first + i, c.points[i]);
    /* STRATA_ALLOC_PART=K/M runs the K-th of M contiguous shares of the operations
     * (tests/CMakeLists.txt registers the shares as separate tests, so that they run
     * side by side); unset, every operation. */
    const size_t ops = sizeof operations / sizeof operations[0];
    size_t from = 0, to = ops;
    const char *part = getenv("STRATA_ALLOC_PART");
    unsigned k = 0, m = 1;
    if (part && (sscanf(part, "%u/%u", &k, &m) != 2 || m == 0 || k >= m)) {
        MT_CHECK(0, "STRATA_ALLOC_PART=%s: expected K/M with K < M", part);
        return mt_finish("mpi_alloc");
    }
    from = ops * k / m;
    to = ops * (k + 1) / m;
    for (size_t i = from; !st && i < to; i++) {
        if (operations[i].run == run_import_dem && !dem_supported()) {
            if (mt_rank == 0)
                fprintf(stderr, "mpi_alloc: import (DEM) skipped: strata built without netCDF\n");
            continue;
        }
        run_operation(&c, &operations[i]);
    }
    if (mt_rank == 0)
        fprintf(stderr, "mpi_alloc: %zu failure cases at %d ranks, %zu distinct sites reached\n",
                cases_total, mt_size, distinct_count);
    /* The sites reached, one a line, for scripts/alloc-sites-missed.sh. */
    char list[4200];
    snprintf(list, sizeof list, "%s/sites_reached.txt", dir);
    FILE *f = mt_rank == 0 ? fopen(list, "w") : NULL;
    for (size_t i = 0; f && i < distinct_count; i++)
        fprintf(f, "%s\n", distinct[i]);
    if (f)
        fclose(f);
    for (size_t i = 0; i < distinct_count; i++)
        free(distinct[i]);
    strata_world_close(c.w);
    free(c.points);
    free(c.lod);
    free(c.hits);
    alarm(0);
    return mt_finish("mpi_alloc");
}
