/* bench_volumes.c: what a stored world costs on disk beside plain HDF5, per volume
 * (issue 18; `strata bench --only volumes`).
 *
 * Three volumes, each made by the library, then compacted (strata_compact):
 * the generated terrain (the bench's dims, seed 1), the demo's ETOPO5 Andes
 * import (scripts/demo.sh: --var ROSE --crop 3360,696,3600,888 --vertical-res
 * 25; skipped with a message where /usr/share/ferret-vis/data/etopo5.cdf is not
 * installed) and a raw-imported layered volume that is not the project's
 * generator (bench/raw_layers.py's six wavy layers, 300 ore boxes placed by the
 * bench's own generator). Rows per volume V:
 *   storage_world_total_V      every file of the world's directory
 *   storage_payload_V          the chunk payloads (rank 0 reads the segment's /rows)
 *   storage_index_V            the LOD pyramid frames (a pack counted once)
 *   storage_zstd3_chunks64_V   plain zstd level 3 of the box in 64^3 chunks of raw uint16
 *   storage_hdf5_zstd3_file_V  an HDF5 file written through HDF5 with the zstd filter
 *                              (id 32015, level 3), one uint16 dataset chunked 64^3
 * The .vdb file of the terrain is vdb_peer's vdb_file_bytes (bench/vdb_peer.cpp).
 * Rank 0 prints a table of them with units.
 */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "bench_rows.h"
#include "bench_suite.h"
#include "fsutil.h"
#include "h5zstd.h"
#include "splitmix.h"

#define ZSTD_FILTER 32015
#define ETOPO5      "/usr/share/ferret-vis/data/etopo5.cdf"

enum { BLOCK = 64, VOLUMES = 3 };

typedef struct {
    uint64_t world_total, payload, index, zstd3_64, hdf5_file;
} volume_bytes;

strata_status bench_directory_bytes(bench *b, const char *path, uint64_t *bytes)
{
    DIR *d = opendir(path);
    if (!d)
        return error_set(&b->error, STRATA_ERR_IO, "listing %s: %s", path, strerror(errno));
    strata_status st = STRATA_OK;
    struct dirent *e;
    *bytes = 0;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char file[STRATA_PATH_MAX];
        struct stat sb;
        st = path_join(file, sizeof file, path, e->d_name, &b->error);
        if (!st && stat(file, &sb))
            st = error_set(&b->error, STRATA_ERR_IO, "stat %s: %s", file, strerror(errno));
        if (!st)
            *bytes += (uint64_t)sb.st_size;
    }
    closedir(d);
    return st;
}

/* The fields of a /rows entry this file reads (docs/format.md). */
typedef struct {
    uint64_t lod_segment, lod_offset;
    uint32_t payload_length, lod_length;
} row_sizes;

static int frame_compare(const void *a, const void *b)
{
    const row_sizes *x = a, *y = b;
    if (x->lod_segment != y->lod_segment)
        return x->lod_segment < y->lod_segment ? -1 : 1;
    return x->lod_offset < y->lod_offset ? -1 : x->lod_offset > y->lod_offset;
}

/* Payload and pyramid bytes of every segment's rows (after a compaction, the one
 * segment's rows are the world's live rows): a pyramid frame several rows name
 * (a pack) counted once. Rank 0. */
static strata_status segment_bytes(bench *b, const char *path, volume_bytes *v)
{
    DIR *d = opendir(path);
    if (!d)
        return error_set(&b->error, STRATA_ERR_IO, "listing %s: %s", path, strerror(errno));
    strata_status st = STRATA_OK;
    struct dirent *e;
    hid_t mem = H5Tcreate(H5T_COMPOUND, sizeof(row_sizes));
    if (mem < 0 ||
        H5Tinsert(mem, "lod_segment", HOFFSET(row_sizes, lod_segment), H5T_NATIVE_UINT64) < 0 ||
        H5Tinsert(mem, "lod_offset", HOFFSET(row_sizes, lod_offset), H5T_NATIVE_UINT64) < 0 ||
        H5Tinsert(mem, "payload_length", HOFFSET(row_sizes, payload_length), H5T_NATIVE_UINT32) <
            0 ||
        H5Tinsert(mem, "lod_length", HOFFSET(row_sizes, lod_length), H5T_NATIVE_UINT32) < 0)
        st = error_set(&b->error, STRATA_ERR_IO, "an HDF5 type for /rows");
    while (!st && (e = readdir(d))) {
        if (strncmp(e->d_name, "seg-", 4))
            continue;
        char file[STRATA_PATH_MAX];
        st = path_join(file, sizeof file, path, e->d_name, &b->error);
        if (st)
            break;
        hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t ds = f >= 0 ? H5Dopen2(f, "rows", H5P_DEFAULT) : -1;
        hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        row_sizes *rows = n >= 0 ? malloc(((size_t)n + 1) * sizeof *rows) : NULL;
        if (!rows || H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
            st = error_set(&b->error, STRATA_ERR_IO, "reading the rows of %s", file);
        } else {
            qsort(rows, (size_t)n, sizeof *rows, frame_compare);
            for (hssize_t i = 0; i < n; i++) {
                v->payload += rows[i].payload_length;
                if (rows[i].lod_length && (i == 0 || frame_compare(&rows[i], &rows[i - 1])))
                    v->index += rows[i].lod_length;
            }
        }
        free(rows);
        if (sp >= 0)
            H5Sclose(sp);
        if (ds >= 0)
            H5Dclose(ds);
        if (f >= 0)
            H5Fclose(f);
    }
    if (mem >= 0)
        H5Tclose(mem);
    closedir(d);
    return st;
}

/* Plain zstd-3 of the world's box in 64^3 blocks of raw uint16 (edge blocks padded
 * with air, all-air blocks too), and the same blocks written through HDF5's zstd
 * filter into OUT (its file size). Rank 0. */
/* The BLOCK^3 block at corner (x, y, z) from the world's chunks of edge C
 * (zero past the world's end). */
static strata_status gather_block(bench *b, strata_world *w, const int64_t dims[3], int C,
                                  const int64_t corner[3], uint16_t *chunk, uint16_t *block)
{
    const int64_t x0 = corner[0], y0 = corner[1], z0 = corner[2], step = C < BLOCK ? C : BLOCK;
    memset(block, 0, (size_t)BLOCK * BLOCK * BLOCK * 2);
    for (int64_t z = z0; z < z0 + BLOCK && z < dims[2]; z += step)
        for (int64_t y = y0; y < y0 + BLOCK && y < dims[1]; y += step)
            for (int64_t x = x0; x < x0 + BLOCK && x < dims[0]; x += step) {
                strata_status st = strata_load_chunk(w, x / C, y / C, z / C, chunk);
                if (st)
                    return error_set(&b->error, st, "loading a chunk: %s", strata_last_error(w));
                for (int64_t vz = z; vz < z + step && vz < dims[2]; vz++)
                    for (int64_t vy = y; vy < y + step && vy < dims[1]; vy++)
                        for (int64_t vx = x; vx < x + step && vx < dims[0]; vx++)
                            block[((vz - z0) * BLOCK + (vy - y0)) * BLOCK + (vx - x0)] =
                                chunk[((vz % C) * C + vy % C) * C + vx % C];
            }
    return STRATA_OK;
}

/* The part of the padded block at corner (x, y, z) inside the world, written to
 * dset (file space `space`). 1, or 0 when HDF5 fails. */
static int write_block(hid_t dset, hid_t space, const int64_t dims[3], const int64_t corner[3],
                       const uint16_t *block)
{
    hsize_t start[3] = {(hsize_t)corner[2], (hsize_t)corner[1], (hsize_t)corner[0]}, count[3],
            mdims[3] = {BLOCK, BLOCK, BLOCK}, zero[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        int64_t lo = corner[2 - a], d = dims[2 - a];
        count[a] = (hsize_t)(d - lo < BLOCK ? d - lo : BLOCK);
    }
    hid_t ms = H5Screate_simple(3, mdims, NULL);
    int ok = ms >= 0 && H5Sselect_hyperslab(ms, H5S_SELECT_SET, zero, NULL, count, NULL) >= 0 &&
             H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dwrite(dset, H5T_NATIVE_UINT16, ms, space, H5P_DEFAULT, block) >= 0;
    if (ms >= 0)
        H5Sclose(ms);
    return ok;
}

static strata_status plain_peers(bench *b, strata_world *w, const int64_t dims[3], int C,
                                 const char *out, volume_bytes *v)
{
    const size_t block_voxels = (size_t)BLOCK * BLOCK * BLOCK, chunk_voxels = (size_t)C * C * C;
    const size_t bound = ZSTD_compressBound(block_voxels * 2);
    uint16_t *block = malloc(block_voxels * 2), *chunk = malloc(chunk_voxels * 2);
    void *frame = malloc(bound);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    strata_status st = block && chunk && frame && cctx
                           ? STRATA_OK
                           : error_set(&b->error, STRATA_ERR_NOMEM, "plain 64^3 peers");
    hsize_t hdims[3] = {(hsize_t)dims[2], (hsize_t)dims[1], (hsize_t)dims[0]};
    hsize_t hchunk[3] = {BLOCK, BLOCK, BLOCK};
    for (int a = 0; a < 3; a++)
        if (hchunk[a] > hdims[a])
            hchunk[a] = hdims[a];
    unsigned level = 3;
    hid_t file = -1, space = -1, dcpl = -1, dset = -1;
    if (!st) {
        file = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        space = H5Screate_simple(3, hdims, NULL);
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (file >= 0 && space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 3, hchunk) >= 0 &&
            H5Pset_filter(dcpl, ZSTD_FILTER, H5Z_FLAG_MANDATORY, 1, &level) >= 0)
            dset = H5Dcreate2(file, "material", H5T_NATIVE_UINT16, space, H5P_DEFAULT, dcpl,
                              H5P_DEFAULT);
        if (dset < 0)
            st = error_set(&b->error, STRATA_ERR_IO, "creating %s with the zstd filter", out);
    }
    for (int64_t z0 = 0; z0 < dims[2] && !st; z0 += BLOCK)
        for (int64_t y0 = 0; y0 < dims[1] && !st; y0 += BLOCK)
            for (int64_t x0 = 0; x0 < dims[0] && !st; x0 += BLOCK) {
                const int64_t corner[3] = {x0, y0, z0};
                if ((st = gather_block(b, w, dims, C, corner, chunk, block)) != STRATA_OK)
                    break;
                size_t n = ZSTD_compressCCtx(cctx, frame, bound, block, block_voxels * 2, 3);
                if (ZSTD_isError(n)) {
                    st = error_set(&b->error, STRATA_ERR_CORRUPT, "zstd: %s", ZSTD_getErrorName(n));
                    break;
                }
                v->zstd3_64 += n;
                if (!write_block(dset, space, dims, corner, block))
                    st = error_set(&b->error, STRATA_ERR_IO, "writing %s", out);
            }
    if (dset >= 0 && H5Dclose(dset) < 0 && !st)
        st = error_set(&b->error, STRATA_ERR_IO, "closing %s", out);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (file >= 0 && H5Fclose(file) < 0 && !st)
        st = error_set(&b->error, STRATA_ERR_IO, "closing %s", out);
    struct stat sb;
    if (!st && stat(out, &sb))
        st = error_set(&b->error, STRATA_ERR_IO, "stat %s: %s", out, strerror(errno));
    if (!st)
        v->hdf5_file = (uint64_t)sb.st_size;
    free(block);
    free(chunk);
    free(frame);
    ZSTD_freeCCtx(cctx);
    return st;
}

/* bench/raw_layers.py's volume (X fastest, uint8): six layers under wavy surfaces
 * s_k = 30 + 30k + 12 sin(x/(40+7k) + k) cos(y/(55+5k)) + 5 sin((x+y)/17 + k),
 * material k + 1 between s_{k-1} and s_k, air above; 300 ore boxes (id 9, 2-9
 * voxels a side, placed by splitmix64 from seed 1) below the top surface. Scaled
 * to the bench's dims. Rank 0. */
static strata_status write_layers(bench *b, const char *path, const int64_t d[3])
{
    size_t n = (size_t)(d[0] * d[1] * d[2]);
    uint8_t *v = calloc(n ? n : 1, 1);
    if (!v)
        return error_set(&b->error, STRATA_ERR_NOMEM, "a raw volume of %zu bytes", n);
    for (int64_t y = 0; y < d[1]; y++)
        for (int64_t x = 0; x < d[0]; x++) {
            int64_t below = 0;
            for (int k = 0; k < 6; k++) {
                double s = 30 + 30 * k +
                           12 * sin(x / (40.0 + 7 * k) + k) * cos(y / (55.0 + 5 * k)) +
                           5 * sin((double)(x + y) / 17 + k);
                for (int64_t z = below; z < d[2] && z < s; z++)
                    v[(size_t)((z * d[1] + y) * d[0] + x)] = (uint8_t)(k + 1);
                if (s > below)
                    below = (int64_t)ceil(s);
            }
        }
    uint64_t seed = 1;
    for (int i = 0; i < 300; i++) {
        int64_t s[3], o[3];
        for (int a = 0; a < 3; a++)
            s[a] = 2 + (int64_t)(splitmix64(&seed) % 8);
        for (int a = 0; a < 3; a++) {
            int64_t room = a < 2 ? d[a] - s[a] : (d[2] < 200 ? d[2] : 200);
            o[a] = room > 0 ? (int64_t)(splitmix64(&seed) % (uint64_t)room) : 0;
        }
        for (int64_t z = o[2]; z < o[2] + s[2] && z < d[2]; z++)
            for (int64_t y = o[1]; y < o[1] + s[1] && y < d[1]; y++)
                for (int64_t x = o[0]; x < o[0] + s[0] && x < d[0]; x++) {
                    uint8_t *p = &v[(size_t)((z * d[1] + y) * d[0] + x)];
                    if (*p)
                        *p = 9;
                }
    }
    FILE *f = fopen(path, "wb");
    strata_status st = STRATA_OK;
    if (!f || fwrite(v, 1, n, f) != n)
        st = error_set(&b->error, STRATA_ERR_IO, "writing %s: %s", path, strerror(errno));
    if (f && fclose(f) && !st)
        st = error_set(&b->error, STRATA_ERR_IO, "closing %s: %s", path, strerror(errno));
    free(v);
    return st;
}

static const char *const volume_name[VOLUMES] = {"terrain", "andes", "raw"};

/* Make volume i at path (collective); *skipped when its data is not installed. */
static strata_status make_volume(bench *b, int i, const char *path, int64_t dims[3], int *skipped)
{
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.chunk_edge = b->chunk_edge;
    strata_world *w = NULL;
    strata_status st = STRATA_OK;
    *skipped = 0;
    if (i == 0) {
        memcpy(cfg.dims, b->dims, sizeof cfg.dims);
        st = strata_world_create(b->comm, path, &cfg, NULL, STRATA_CREATE_FORCE, &w);
        if (!st)
            st = strata_generate_terrain(w, 1);
        if (!st)
            st = strata_commit(w, NULL);
    } else if (i == 1) {
        struct stat sb;
        int have = !b->quick && stat(ETOPO5, &sb) == 0;
        MPI_Bcast(&have, 1, MPI_INT, 0, b->comm);
        if (!have) {
            *skipped = 1;
            return STRATA_OK;
        }
        strata_dem_options dem;
        strata_dem_options_init(&dem);
        dem.variable = "ROSE";
        const int64_t crop[4] = {3360, 696, 3600, 888};
        memcpy(dem.crop, crop, sizeof crop);
        dem.vertical_res = 25;
        strata_import_stats stats;
        st = strata_import_dem(b->comm, path, ETOPO5, &dem, &cfg, NULL, STRATA_CREATE_FORCE, &stats,
                               &w);
    } else {
        char raw[STRATA_PATH_MAX];
        int64_t d[3] = {b->dims[0], b->dims[1], b->dims[2]};
        st = path_join(raw, sizeof raw, b->dir, "layers.raw", &b->error);
        if (!st && b->rank == 0)
            st = write_layers(b, raw, d);
        st = error_agree(b->comm, st, &b->error);
        if (st)
            return st;
        strata_raw_options ro = {{d[0], d[1], d[2]}, STRATA_RAW_UINT8, STRATA_ENDIAN_LITTLE};
        strata_import_stats stats;
        st =
            strata_import_raw(b->comm, path, raw, &ro, &cfg, NULL, STRATA_CREATE_FORCE, &stats, &w);
        if (b->rank == 0)
            remove(raw);
    }
    if (!st)
        st = strata_compact(w, NULL);
    if (st)
        error_set(&b->error, st, "volume %s: %s", volume_name[i], strata_last_error(w));
    if (!st) {
        strata_info info;
        st = strata_world_info(w, &info);
        if (!st)
            memcpy(dims, info.dims, 3 * sizeof *dims);
    }
    if (w) {
        strata_status closed = strata_world_close(w);
        st = st ? st : closed;
    }
    return st;
}

static strata_status add_volume_rows(bench *b, int i, const int64_t dims[3], const volume_bytes *v)
{
    char volume[BENCH_TEXT_MAX];
    snprintf(volume, sizeof volume,
             "%s: %" PRId64 " x %" PRId64 " x %" PRId64 ", chunk %d, compacted",
             i == 0   ? "generated terrain (seed 1)"
             : i == 1 ? "the demo's ETOPO5 Andes import (crop 3360,696,3600,888, 25 m)"
                      : "raw-imported layered volume (uint8, bench/raw_layers.py's layers)",
             dims[0], dims[1], dims[2], b->chunk_edge);
    struct {
        const char *id, *peer, *what;
        double value;
    } rows[] = {
        {"storage_world_total", "strata",
         "every file of the world's directory after strata_compact (segments, MANIFEST, LOCK)",
         (double)v->world_total},
        {"storage_payload", "strata", "chunk payload bytes (the live rows' payload_length)",
         (double)v->payload},
        {"storage_index", "strata", "LOD pyramid frames the live rows name (a pack counted once)",
         (double)v->index},
        {"storage_zstd3_chunks64", "zstd",
         "plain zstd level 3 of the box in 64^3 chunks (raw uint16, one frame each, all-air "
         "chunks too): what HDF5's zstd filter stores, without HDF5's structures",
         (double)v->zstd3_64},
        {"storage_hdf5_zstd3_file", "hdf5",
         "an HDF5 file of the box written through HDF5 with the zstd filter (32015, level 3), "
         "one uint16 dataset chunked 64^3 (file size)",
         (double)v->hdf5_file},
    };
    strata_status st = STRATA_OK;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0] && !st; r++) {
        char id[64];
        snprintf(id, sizeof id, "%s_%s", rows[r].id, volume_name[i]);
        bench_row row = bench_row_start(b, id, "volumes", "bytes", BENCH_LOWER_IS_BETTER);
        snprintf(row.peer, sizeof row.peer, "%s", rows[r].peer);
        snprintf(row.volume, sizeof row.volume, "%s", volume);
        snprintf(row.what, sizeof row.what, "%s", rows[r].what);
        snprintf(row.pattern, sizeof row.pattern, "written once, compacted");
        if (r == 0) {
            snprintf(row.compare[0], sizeof row.compare[0], "storage_zstd3_chunks64_%s",
                     volume_name[i]);
            snprintf(row.compare[1], sizeof row.compare[1], "storage_hdf5_zstd3_file_%s",
                     volume_name[i]);
            if (i == 0)
                snprintf(row.compare[2], sizeof row.compare[2], "vdb_file_bytes");
            snprintf(row.target, sizeof row.target, ">= 1.25x smaller than plain zstd-3 64^3");
            snprintf(row.limit, sizeof row.limit, "the chunk payloads (see storage_payload_%s)",
                     volume_name[i]);
        } else if (r == 2) {
            snprintf(row.target, sizeof row.target, "<= 10 %% of the payloads");
            snprintf(row.limit, sizeof row.limit,
                     "histograms and mixed-cell counts of levels >= 4 (docs/index.md)");
        }
        row.durable = 1;
        st = bench_add(b, &row, &rows[r].value, 1);
    }
    return st;
}

strata_status bench_volumes(bench *b)
{
    strata_status st = h5zstd_register(&b->error);
    st = error_agree(b->comm, st, &b->error);
    volume_bytes all[VOLUMES];
    int done[VOLUMES] = {0};
    for (int i = 0; i < VOLUMES && !st; i++) {
        char path[STRATA_PATH_MAX], h5[STRATA_PATH_MAX + 16];
        int64_t dims[3] = {0, 0, 0};
        int skipped = 0;
        char leaf[64];
        snprintf(leaf, sizeof leaf, "volume-%s", volume_name[i]); /* not the bench's terrain */
        st = path_join(path, sizeof path, b->dir, leaf, &b->error);
        if (!st)
            st = make_volume(b, i, path, dims, &skipped);
        st = error_agree(b->comm, st, &b->error);
        if (st)
            break;
        if (skipped) {
            if (b->rank == 0)
                fprintf(stderr, "strata bench: volume %s skipped: %s\n", volume_name[i],
                        b->quick ? "--quick" : ETOPO5 " not installed");
            continue;
        }
        volume_bytes v = {0};
        strata_status local = STRATA_OK;
        if (b->rank == 0) {
            snprintf(h5, sizeof h5, "%s.zstd.h5", path);
            local = bench_directory_bytes(b, path, &v.world_total);
            if (!local)
                local = segment_bytes(b, path, &v);
        }
        /* the world opened by every rank; rank 0 reads every chunk */
        strata_world *w = NULL;
        strata_status opened = strata_world_open(b->comm, path, STRATA_READ, NULL, &w);
        if (opened)
            local = error_set(&b->error, opened, "opening %s: %s", path, strata_last_error(NULL));
        if (b->rank == 0 && !local) {
            local = plain_peers(b, w, dims, b->chunk_edge, h5, &v);
            remove(h5);
        }
        if (w)
            strata_world_close(w);
        st = error_agree(b->comm, local, &b->error);
        if (st)
            break;
        MPI_Bcast(&v, sizeof v, MPI_BYTE, 0, b->comm);
        all[i] = v;
        done[i] = 1;
        st = add_volume_rows(b, i, dims, &v);
    }
    if (!st && b->rank == 0) {
        printf("%-8s %14s %12s %12s %8s %16s %16s %10s\n", "volume", "world (bytes)", "payloads",
               "index", "index %", "zstd-3 64^3", "HDF5+zstd file", "smaller by");
        for (int i = 0; i < VOLUMES; i++)
            if (done[i])
                printf("%-8s %14" PRIu64 " %12" PRIu64 " %12" PRIu64 " %7.1f%% %16" PRIu64
                       " %16" PRIu64 " %9.2fx\n",
                       volume_name[i], all[i].world_total, all[i].payload, all[i].index,
                       100.0 * (double)all[i].index / (double)(all[i].payload ? all[i].payload : 1),
                       all[i].zstd3_64, all[i].hdf5_file,
                       (double)all[i].zstd3_64 / (double)all[i].world_total);
        fflush(stdout);
    }
    return st;
}
