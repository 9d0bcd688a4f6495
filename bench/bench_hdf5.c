/* bench_hdf5.c: plain parallel HDF5 as a simulation would use it without Strata,
 * measured in the same run as the matching strata rows.
 *
 * The peer keeps the same terrain in one chunked 3-D uint16 dataset [z][y][x]
 * with 64^3 chunks and the zstd filter (32015, level 3, registered in-process
 * with h5zstd_register). A simulation step hands in a batch of scattered
 * updates and parallel HDF5 must write each batch collectively (filtered
 * datasets allow no independent writes), so every batch reads, decompresses,
 * modifies, compresses and writes back every chunk it touches. Two ways:
 *   (a) point selections: H5Sselect_elements of the rank's updates, one
 *       collective H5Dwrite per batch;
 *   (b) read-modify-write of the touched chunks: the batch is gathered on every
 *       rank (MPI_Allgatherv, so that one rank owns each chunk and the last
 *       write wins in (rank, order) as in Strata), each rank reads its touched
 *       chunks as a union of chunk hyperslabs (collective), applies, writes back.
 * Both end with H5Fclose and fsync; Strata ends with strata_commit (fsync'ed).
 */
#include <hdf5.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_rows.h"
#include "fsutil.h"
#include "h5zstd.h"

#define PEER_CHUNK  64
#define ZSTD_FILTER 32015

typedef struct {
    bench *b;
    char path[STRATA_PATH_MAX];
    hsize_t dims[3]; /* z, y, x */
    hsize_t chunk[3];
    hid_t file, dset, dxpl;
} peer;

static strata_status h5_failed(bench *b, const char *what, const char *path)
{
    return error_set(&b->error, STRATA_ERR_HDF5, "plain HDF5 peer: %s (%s)", what, path);
}

static hid_t mpio_fapl(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static strata_status peer_open(peer *p, int create)
{
    hid_t fapl = mpio_fapl(p->b->comm), dcpl = -1, space = -1;
    p->file = p->dset = p->dxpl = -1;
    if (fapl < 0)
        return h5_failed(p->b, "MPI-IO file access list", p->path);
    if (create) {
        p->file = H5Fcreate(p->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        unsigned level = 3;
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        space = H5Screate_simple(3, p->dims, NULL);
        if (p->file >= 0 && dcpl >= 0 && space >= 0 && H5Pset_chunk(dcpl, 3, p->chunk) >= 0 &&
            H5Pset_filter(dcpl, ZSTD_FILTER, H5Z_FLAG_MANDATORY, 1, &level) >= 0)
            p->dset = H5Dcreate2(p->file, "material", H5T_NATIVE_UINT16, space, H5P_DEFAULT, dcpl,
                                 H5P_DEFAULT);
    } else {
        p->file = H5Fopen(p->path, H5F_ACC_RDWR, fapl);
        if (p->file >= 0)
            p->dset = H5Dopen2(p->file, "material", H5P_DEFAULT);
    }
    p->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (p->dxpl >= 0 && H5Pset_dxpl_mpio(p->dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
        H5Pclose(p->dxpl);
        p->dxpl = -1;
    }
    H5Pclose(fapl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (p->file < 0 || p->dset < 0 || p->dxpl < 0)
        return h5_failed(p->b, create ? "creating the dataset" : "opening the dataset", p->path);
    return STRATA_OK;
}

/* Close and make durable: the file is closed collectively, then rank 0 fsyncs it. */
static strata_status peer_close(peer *p, int durable)
{
    herr_t rc = 0;
    if (p->dxpl >= 0)
        rc |= H5Pclose(p->dxpl);
    if (p->dset >= 0)
        rc |= H5Dclose(p->dset);
    if (p->file >= 0)
        rc |= H5Fclose(p->file);
    p->file = p->dset = p->dxpl = -1;
    strata_status st = rc < 0 ? h5_failed(p->b, "closing", p->path) : STRATA_OK;
    if (!st && durable && p->b->rank == 0)
        st = fsync_path(p->path, &p->b->error);
    return error_agree(p->b->comm, st, &p->b->error);
}

/* This rank's z range of whole chunk layers [z0, z1). */
static void my_layers(const peer *p, hsize_t *z0, hsize_t *z1)
{
    hsize_t layers = (p->dims[0] + p->chunk[0] - 1) / p->chunk[0];
    hsize_t r = (hsize_t)p->b->rank, n = (hsize_t)p->b->size;
    *z0 = layers * r / n * p->chunk[0];
    *z1 = layers * (r + 1) / n * p->chunk[0];
    *z0 = *z0 < p->dims[0] ? *z0 : p->dims[0];
    *z1 = *z1 < p->dims[0] ? *z1 : p->dims[0];
}

/* Copy box [lo, hi) (x, y, z) of the committed world into out [z][y][x] of that box. */
static strata_status read_world_box(bench *b, strata_world *w, const int64_t lo[3],
                                    const int64_t hi[3], uint16_t *out)
{
    int64_t c = b->chunk_edge, nx = hi[0] - lo[0], ny = hi[1] - lo[1];
    uint16_t *chunk = malloc((size_t)(c * c * c) * sizeof *chunk);
    strata_status st = chunk ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "chunk buffer");
    for (int64_t cz = lo[2] / c; !st && cz * c < hi[2]; cz++)
        for (int64_t cy = lo[1] / c; !st && cy * c < hi[1]; cy++)
            for (int64_t cx = lo[0] / c; !st && cx * c < hi[0]; cx++) {
                st = strata_load_chunk(w, cx, cy, cz, chunk);
                if (st) {
                    error_set(&b->error, st, "loading a chunk: %s", strata_last_error(w));
                    break;
                }
                for (int64_t z = cz * c; z < (cz + 1) * c; z++)
                    for (int64_t y = cy * c; y < (cy + 1) * c; y++) {
                        if (z < lo[2] || z >= hi[2] || y < lo[1] || y >= hi[1])
                            continue;
                        int64_t x0 = cx * c > lo[0] ? cx * c : lo[0];
                        int64_t x1 = (cx + 1) * c < hi[0] ? (cx + 1) * c : hi[0];
                        memcpy(&out[((z - lo[2]) * ny + (y - lo[1])) * nx + (x0 - lo[0])],
                               &chunk[((z - cz * c) * c + (y - cy * c)) * c + (x0 - cx * c)],
                               (size_t)(x1 - x0) * sizeof *out);
                    }
            }
    free(chunk);
    return st;
}

/* Select the box [lo, hi) (z, y, x order) of space, or nothing when it is empty. */
static herr_t select_box(hid_t space, const hsize_t lo[3], const hsize_t hi[3])
{
    hsize_t count[3] = {hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]};
    if (!count[0] || !count[1] || !count[2])
        return H5Sselect_none(space);
    return H5Sselect_hyperslab(space, H5S_SELECT_SET, lo, NULL, count, NULL);
}

/* Collective read or write of box [lo, hi) (z, y, x) to or from buf. */
static strata_status box_io(peer *p, const hsize_t lo[3], const hsize_t hi[3], uint16_t *buf,
                            int write)
{
    hsize_t count[3] = {hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]};
    hsize_t total = count[0] * count[1] * count[2];
    hsize_t one[1] = {total > 0 ? total : 1};
    hid_t fs = H5Dget_space(p->dset), ms = H5Screate_simple(1, one, NULL);
    herr_t rc = fs >= 0 && ms >= 0 ? select_box(fs, lo, hi) : -1;
    if (rc >= 0 && total == 0)
        rc = H5Sselect_none(ms);
    if (rc >= 0)
        rc = write ? H5Dwrite(p->dset, H5T_NATIVE_UINT16, ms, fs, p->dxpl, buf)
                   : H5Dread(p->dset, H5T_NATIVE_UINT16, ms, fs, p->dxpl, buf);
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    return rc < 0 ? h5_failed(p->b, write ? "writing a box" : "reading a box", p->path) : STRATA_OK;
}

/* Write the committed terrain into a new peer file: each rank its chunk layers. Collective. */
static strata_status peer_copy_world(peer *p, const char *world)
{
    bench *b = p->b;
    hsize_t z0, z1;
    my_layers(p, &z0, &z1);
    size_t n = (size_t)((z1 - z0) * p->dims[1] * p->dims[2]);
    uint16_t *buf = malloc((n ? n : 1) * sizeof *buf);
    strata_world *w = NULL;
    strata_status st = buf ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "peer slab");
    st = error_agree(b->comm, st, &b->error);
    if (!st) {
        st = strata_world_open(b->comm, world, STRATA_READ, NULL, &w);
        if (st)
            error_set(&b->error, st, "opening %s: %s", world, strata_last_error(NULL));
    }
    if (!st) {
        int64_t lo[3] = {0, 0, (int64_t)z0}, hi[3] = {b->dims[0], b->dims[1], (int64_t)z1};
        st = n ? read_world_box(b, w, lo, hi, buf) : STRATA_OK;
        st = error_agree(b->comm, st, &b->error);
        strata_world_close(w);
    }
    if (!st)
        st = peer_open(p, 1);
    if (!st) {
        hsize_t lo[3] = {z0, 0, 0}, hi[3] = {z1, p->dims[1], p->dims[2]};
        st = error_agree(b->comm, box_io(p, lo, hi, buf, 1), &b->error);
    }
    strata_status closed = peer_close(p, 1);
    free(buf);
    return st ? st : closed;
}

/* ---- batches of updates ------------------------------------------------------------- */

typedef struct {
    uint32_t x, y, z;
    uint16_t material, pad;
} peer_update;

/* Batch `batch` of this rank: the same voxels for Strata and both HDF5 methods. */
static void make_batch(const bench *b, int batch, size_t n, peer_update *u)
{
    uint64_t state = b->seed * 7777 + (uint64_t)batch * 65537 + (uint64_t)b->rank * 257;
    for (size_t i = 0; i < n; i++) {
        u[i].x = (uint32_t)bench_random_below(&state, b->dims[0]);
        u[i].y = (uint32_t)bench_random_below(&state, b->dims[1]);
        u[i].z = (uint32_t)bench_random_below(&state, b->dims[2]);
        u[i].material = (uint16_t)(2 + bench_random_below(&state, 12));
        u[i].pad = 0;
    }
}

/*
 * A plan of batches, all generated before any timer starts, for every peer alike:
 * generating random voxels is not storage, and inside the timed loops it was a large
 * part of the Strata rows' time (docs/benchmarks.md, "Delta commits").
 * u holds batch k of this rank at u + k * n; su the same batches as strata updates.
 */
typedef struct {
    int batches;
    uint64_t per_batch; /* updates in all ranks */
    size_t n;           /* this rank's share of one batch */
    peer_update *u;     /* batches * n */
    strata_update *su;  /* batches * n */
} batch_plan;

/* The plan's batches first, first + 1, ... of make_batch, in both forms. Collective:
 * every rank fails when one cannot allocate. */
static strata_status plan_batches(bench *b, batch_plan *bp, int first)
{
    size_t n = (size_t)bp->batches * bp->n;
    bp->u = malloc((n ? n : 1) * sizeof *bp->u);
    bp->su = malloc((n ? n : 1) * sizeof *bp->su);
    strata_status st = error_agree(
        b->comm, bp->u && bp->su ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "batches"),
        &b->error);
    for (int k = 0; !st && k < bp->batches; k++)
        make_batch(b, first + k, bp->n, bp->u + (size_t)k * bp->n);
    for (size_t i = 0; !st && i < n; i++)
        bp->su[i] = (strata_update){
            .x = bp->u[i].x, .y = bp->u[i].y, .z = bp->u[i].z, .material = bp->u[i].material};
    return st;
}

static void plan_free(batch_plan *bp)
{
    free(bp->u);
    free(bp->su);
    bp->u = NULL;
    bp->su = NULL;
}

/* This rank's updates of batch k. */
static const peer_update *batch_updates(const batch_plan *bp, int k)
{
    return bp->u + (size_t)k * bp->n;
}

/* The world open for writing. Collective. */
static strata_status updates_start(bench *b, const char *world, int defer_index, strata_world **w)
{
    strata_options opt;
    strata_options_init(&opt);
    opt.defer_index = defer_index;
    *w = NULL;
    strata_status st = strata_world_open(b->comm, world, STRATA_WRITE, &opt, w);
    if (st)
        error_set(&b->error, st, "opening %s: %s", world, strata_last_error(NULL));
    return st;
}

static strata_status strata_batches(bench *b, const char *world, const batch_plan *bp,
                                    int defer_index, double *seconds)
{
    strata_world *w;
    strata_status st = updates_start(b, world, defer_index, &w);
    MPI_Barrier(b->comm);
    double t0 = MPI_Wtime();
    for (int k = 0; k < bp->batches && !st; k++)
        st = strata_update_batch(w, bp->su + (size_t)k * bp->n, bp->n, NULL);
    strata_commit_stats cs = {0};
    double t1 = MPI_Wtime();
    if (!st)
        st = strata_commit(w, &cs);
    if (!st && b->rank == 0 && b->verbose)
        fprintf(stderr,
                "strata bench: rank 0: batches %.3f s, commit %.3f s (flush %.3f, encode %.3f, "
                "write %.3f; %" PRIu64 " chunks, %" PRIu64 " as delta records)\n",
                t1 - t0, cs.seconds, cs.flush_seconds, cs.encode_seconds, cs.write_seconds,
                cs.chunks_written, cs.delta_chunks);
    if (st)
        error_set(&b->error, st, "strata batches: %s", strata_last_error(w));
    *seconds = bench_slowest(b, MPI_Wtime() - t0);
    if (w)
        strata_world_close(w);
    return st;
}

/* This rank's batches as HDF5 point selections: coordinates (z, y, x) and values,
 * batch k at coords + 3 k n and values + k n. */
typedef struct {
    hsize_t *coords;
    uint16_t *values;
} point_buffers;

/* bp's batches as point selections, made before the timer like the strata updates
 * (agreed: every rank fails when one cannot allocate), then the peer file opened.
 * Collective. */
static strata_status points_start(peer *p, const batch_plan *bp, point_buffers *pb)
{
    bench *b = p->b;
    size_t n = (size_t)bp->batches * bp->n;
    pb->coords = malloc((n ? n : 1) * 3 * sizeof *pb->coords);
    pb->values = malloc((n ? n : 1) * sizeof *pb->values);
    strata_status st = error_agree(b->comm,
                                   pb->coords && pb->values
                                       ? STRATA_OK
                                       : error_set(&b->error, STRATA_ERR_NOMEM, "point selection"),
                                   &b->error);
    for (size_t i = 0; !st && i < n; i++) {
        pb->coords[3 * i] = bp->u[i].z, pb->coords[3 * i + 1] = bp->u[i].y,
                       pb->coords[3 * i + 2] = bp->u[i].x;
        pb->values[i] = bp->u[i].material;
    }
    return st ? st : peer_open(p, 0);
}

static void points_free(point_buffers *pb)
{
    free(pb->coords);
    free(pb->values);
}

/* Write this rank's bp->n updates of batch k by one collective point-selection write (a
 * rank with none selects nothing), with flush then H5Fflush. Collective; < 0 on failure. */
static herr_t write_points(peer *p, const batch_plan *bp, const point_buffers *pb, int k, int flush)
{
    const hsize_t *coords = pb->coords + (size_t)k * bp->n * 3;
    hsize_t count[1] = {bp->n ? bp->n : 1};
    hid_t fs = H5Dget_space(p->dset), ms = H5Screate_simple(1, count, NULL);
    herr_t rc = fs >= 0 && ms >= 0 ? 0 : -1;
    if (rc >= 0 && bp->n)
        rc = H5Sselect_elements(fs, H5S_SELECT_SET, bp->n, coords);
    else if (rc >= 0)
        rc = H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0 ? -1 : 0;
    if (rc >= 0)
        rc = H5Dwrite(p->dset, H5T_NATIVE_UINT16, ms, fs, p->dxpl, pb->values + (size_t)k * bp->n);
    if (rc >= 0 && flush)
        rc = H5Fflush(p->file, H5F_SCOPE_GLOBAL);
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    return rc;
}

/* (a): one collective point-selection write per batch. */
static strata_status hdf5_points(peer *p, const batch_plan *bp, double *seconds)
{
    bench *b = p->b;
    point_buffers pb;
    strata_status st = points_start(p, bp, &pb);
    MPI_Barrier(b->comm);
    double t0 = MPI_Wtime();
    for (int k = 0; k < bp->batches && !st; k++) {
        herr_t rc = write_points(p, bp, &pb, k, 0);
        st = error_agree(b->comm,
                         rc < 0 ? h5_failed(b, "point-selection write", p->path) : STRATA_OK,
                         &b->error);
    }
    strata_status closed = peer_close(p, 1);
    *seconds = bench_slowest(b, MPI_Wtime() - t0);
    points_free(&pb);
    return st ? st : closed;
}

/* Gather every rank's batch k on every rank, in (rank, order) order. Collective. */
static strata_status gather_batch(bench *b, const batch_plan *bp, int k, peer_update *all,
                                  int *counts, int *displs)
{
    int mine = (int)(bp->n * sizeof(peer_update));
    if (MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, b->comm) != MPI_SUCCESS)
        return error_set(&b->error, STRATA_ERR_MPI, "plain HDF5 peer: gathering counts");
    for (int r = 0, at = 0; r < b->size; r++)
        displs[r] = at, at += counts[r];
    if (MPI_Allgatherv(batch_updates(bp, k), mine, MPI_BYTE, all, counts, displs, MPI_BYTE,
                       b->comm) != MPI_SUCCESS)
        return error_set(&b->error, STRATA_ERR_MPI, "plain HDF5 peer: gathering a batch");
    return STRATA_OK;
}

/* Select the touched chunks this rank owns (contiguous ranges of chunk index), or none. */
static herr_t select_touched(const peer *p, const unsigned char *touched, size_t nchunks,
                             hid_t space, const hsize_t grid[3])
{
    herr_t rc = H5Sselect_none(space);
    size_t first = nchunks * (size_t)p->b->rank / (size_t)p->b->size;
    size_t last = nchunks * (size_t)(p->b->rank + 1) / (size_t)p->b->size;
    for (size_t c = first; c < last && rc >= 0; c++) {
        if (!touched[c])
            continue;
        hsize_t cz = c / (grid[1] * grid[2]), cy = c / grid[2] % grid[1], cx = c % grid[2];
        hsize_t lo[3] = {cz * p->chunk[0], cy * p->chunk[1], cx * p->chunk[2]}, count[3];
        for (int a = 0; a < 3; a++)
            count[a] = lo[a] + p->chunk[a] <= p->dims[a] ? p->chunk[a] : p->dims[a] - lo[a];
        rc = H5Sselect_hyperslab(space, H5S_SELECT_OR, lo, NULL, count, NULL);
    }
    return rc;
}

static size_t chunk_index(const peer *p, const hsize_t grid[3], const peer_update *u)
{
    return ((size_t)(u->z / p->chunk[0]) * grid[1] + u->y / p->chunk[1]) * grid[2] +
           u->x / p->chunk[2];
}

/* Batch k of (b): gather, mark touched own chunks, read, apply, write. */
static strata_status rmw_batch(peer *p, const batch_plan *bp, int k, peer_update *all, int *counts,
                               int *displs, unsigned char *touched, uint16_t *full)
{
    bench *b = p->b;
    hsize_t grid[3];
    for (int a = 0; a < 3; a++)
        grid[a] = (p->dims[a] + p->chunk[a] - 1) / p->chunk[a];
    size_t nchunks = (size_t)(grid[0] * grid[1] * grid[2]);
    size_t first = nchunks * (size_t)b->rank / (size_t)b->size;
    size_t last = nchunks * (size_t)(b->rank + 1) / (size_t)b->size;
    strata_status st = gather_batch(b, bp, k, all, counts, displs);
    if (st)
        return st;
    size_t total = (size_t)(displs[b->size - 1] + counts[b->size - 1]) / sizeof(peer_update);
    memset(touched, 0, nchunks);
    for (size_t i = 0; i < total; i++)
        touched[chunk_index(p, grid, &all[i])] = 1;
    hid_t fs = H5Dget_space(p->dset), ms = H5Screate_simple(3, p->dims, NULL);
    herr_t rc = fs >= 0 && ms >= 0 ? select_touched(p, touched, nchunks, fs, grid) : -1;
    if (rc >= 0)
        rc = select_touched(p, touched, nchunks, ms, grid);
    if (rc >= 0)
        rc = H5Dread(p->dset, H5T_NATIVE_UINT16, ms, fs, p->dxpl, full);
    for (size_t i = 0; rc >= 0 && i < total; i++) {
        size_t c = chunk_index(p, grid, &all[i]);
        if (c >= first && c < last)
            full[((size_t)all[i].z * p->dims[1] + all[i].y) * p->dims[2] + all[i].x] =
                all[i].material;
    }
    if (rc >= 0)
        rc = H5Dwrite(p->dset, H5T_NATIVE_UINT16, ms, fs, p->dxpl, full);
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    return rc < 0 ? h5_failed(b, "read-modify-write of touched chunks", p->path) : STRATA_OK;
}

static strata_status hdf5_rmw(peer *p, const batch_plan *bp, double *seconds)
{
    bench *b = p->b;
    size_t voxels = (size_t)(p->dims[0] * p->dims[1] * p->dims[2]);
    size_t nchunks = 1;
    for (int a = 0; a < 3; a++)
        nchunks *= (size_t)((p->dims[a] + p->chunk[a] - 1) / p->chunk[a]);
    peer_update *all = malloc((size_t)bp->per_batch * sizeof *all + 1);
    int *counts = malloc(2 * (size_t)b->size * sizeof *counts);
    unsigned char *touched = malloc(nchunks);
    uint16_t *full = malloc(voxels * sizeof *full);
    strata_status st =
        error_agree(b->comm,
                    all && counts && touched && full
                        ? STRATA_OK
                        : error_set(&b->error, STRATA_ERR_NOMEM, "read-modify-write"),
                    &b->error);
    if (!st)
        st = peer_open(p, 0);
    MPI_Barrier(b->comm);
    double t0 = MPI_Wtime();
    for (int k = 0; k < bp->batches && !st; k++)
        st = error_agree(b->comm, rmw_batch(p, bp, k, all, counts, counts + b->size, touched, full),
                         &b->error);
    strata_status closed = peer_close(p, 1);
    *seconds = bench_slowest(b, MPI_Wtime() - t0);
    free(all);
    free(counts);
    free(touched);
    free(full);
    return st ? st : closed;
}

enum { SIM_ROWS = 4 };

static strata_status add_batch_rows(bench *b, const batch_plan *bp, double seconds[][SIM_ROWS],
                                    int reps)
{
    static const char *const ids[SIM_ROWS] = {"sim_strata_batches_commit",
                                              "sim_strata_batches_commit_deferred_index",
                                              "sim_hdf5_points", "sim_hdf5_chunk_rmw"};
    static const char *const peers[SIM_ROWS] = {"strata", "strata", "hdf5", "hdf5"};
    static const char *const whats[SIM_ROWS] = {
        "strata_update_batch per batch (its strata_update array made before the timer), then "
        "one strata_commit (fsync'ed) that also brings the "
        "LOD index up to date; world reopened first, so touched chunks are read and decoded "
        "from disk",
        "the same with the index deferred (strata_options.defer_index, the jobs' "
        "--defer-index): the commit encodes and writes the chunks and marks their summaries "
        "stale for a later strata reindex, as plain HDF5 keeps no index at all",
        "one collective H5Dwrite of an H5Sselect_elements selection per batch (its coordinates "
        "made before the timer); H5Fclose + fsync at the end",
        "per batch: MPI_Allgatherv of the batch, collective read of the touched chunks this rank "
        "owns (union of chunk hyperslabs), apply, collective write back; H5Fclose + fsync at the "
        "end",
    };
    static const char *const limits[SIM_ROWS] = {
        "the commit: every touched chunk is encoded, summarised (LOD pyramid) and written once",
        "the commit's segment write (HDF5 through MPI-IO: create, collective writes, close, "
        "fsync; a fixed ~5-7 ms), encoding a delta record per touched chunk, and the 10 "
        "batches' memory traffic (16 bytes an update, copied by staging, packing, the "
        "exchange and the sort)",
        "HDF5 decompresses and recompresses every touched 64^3 chunk at each collective write",
        "every batch touches nearly every 64^3 chunk: the whole dataset is read, "
        "decompressed, recompressed and written per batch",
    };
    strata_status st = STRATA_OK;
    for (int i = 0; i < SIM_ROWS && !st; i++) {
        bench_row row =
            bench_row_start(b, ids[i], "simulation", "updates/s", BENCH_HIGHER_IS_BETTER);
        snprintf(row.peer, sizeof row.peer, "%s", peers[i]);
        bench_volume_text(b, row.volume, sizeof row.volume);
        if (i > 1)
            snprintf(row.volume + strlen(row.volume), sizeof row.volume - strlen(row.volume),
                     "; HDF5: one uint16 dataset, 64^3 chunks, zstd level 3 (filter 32015)");
        snprintf(row.what, sizeof row.what, "%s", whats[i]);
        snprintf(row.pattern, sizeof row.pattern,
                 "%d batches of %" PRIu64 " uniform random updates in all (1/ranks per rank), "
                 "the same voxels on both sides, all generated before the timer starts",
                 bp->batches, bp->per_batch);
        snprintf(row.limit, sizeof row.limit, "%s", limits[i]);
        if (i < 2) {
            snprintf(row.compare[0], sizeof row.compare[0], "sim_hdf5_chunk_rmw");
            snprintf(row.compare[1], sizeof row.compare[1], "sim_hdf5_points");
            snprintf(row.target, sizeof row.target, "%s",
                     i ? ">= 50x chunk read-modify-write, >= 100x points (issue 17)"
                       : ">= 30x points (issue 17)");
        }
        row.durable = 1;
        row.count = (uint64_t)bp->batches * bp->per_batch;
        double rate[BENCH_SAMPLES_MAX];
        for (int r = 0; r < reps; r++)
            rate[r] = (double)row.count / seconds[r][i];
        st = bench_add(b, &row, rate, reps);
    }
    return st;
}

/* ---- region reads ---------------------------------------------------------------- */

static strata_status region_reads(peer *p, const char *world)
{
    bench *b = p->b;
    int64_t edge = b->quick ? 64 : 128, lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
        int64_t e = edge < b->dims[a] ? edge : b->dims[a];
        lo[a] = (b->dims[a] - e) / 2 + 7 % (b->dims[a] - e + 1); /* not chunk-aligned */
        hi[a] = lo[a] + e;
    }
    /* Each rank reads a z-slab of the box. */
    int64_t zl = lo[2] + (hi[2] - lo[2]) * b->rank / b->size;
    int64_t zh = lo[2] + (hi[2] - lo[2]) * (b->rank + 1) / b->size;
    size_t n = (size_t)((zh - zl) * (hi[1] - lo[1]) * (hi[0] - lo[0]));
    uint16_t *a = malloc((n ? n : 1) * sizeof *a), *s = malloc((n ? n : 1) * sizeof *s);
    strata_status st = error_agree(
        b->comm, a && s ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "region buffers"),
        &b->error);
    double th[BENCH_SAMPLES_MAX], ts[BENCH_SAMPLES_MAX];
    int reps = 3;
    for (int rep = 0; rep < reps && !st; rep++) {
        st = peer_open(p, 0);
        if (!st) {
            MPI_Barrier(b->comm);
            double t0 = MPI_Wtime();
            hsize_t hl[3] = {(hsize_t)zl, (hsize_t)lo[1], (hsize_t)lo[0]};
            hsize_t hh[3] = {(hsize_t)zh, (hsize_t)hi[1], (hsize_t)hi[0]};
            st = error_agree(b->comm, box_io(p, hl, hh, a, 0), &b->error);
            th[rep] = (double)(edge * edge * edge * 2) / 1e6 / bench_slowest(b, MPI_Wtime() - t0);
        }
        strata_status closed = peer_close(p, 0);
        st = st ? st : closed;
        strata_world *w = NULL;
        if (!st) {
            st = strata_world_open(b->comm, world, STRATA_READ, NULL, &w);
            if (st)
                error_set(&b->error, st, "opening %s: %s", world, strata_last_error(NULL));
        }
        if (!st) {
            MPI_Barrier(b->comm);
            double t0 = MPI_Wtime();
            int64_t sl[3] = {lo[0], lo[1], zl}, sh[3] = {hi[0], hi[1], zh};
            st = n ? read_world_box(b, w, sl, sh, s) : STRATA_OK;
            st = error_agree(b->comm, st, &b->error);
            ts[rep] = (double)(edge * edge * edge * 2) / 1e6 / bench_slowest(b, MPI_Wtime() - t0);
            strata_world_close(w);
        }
        /* Same voxels or the comparison means nothing (the peer file is a copy of the world). */
        if (!st && n && memcmp(a, s, n * sizeof *a) != 0)
            st = error_set(&b->error, STRATA_ERR_CORRUPT,
                           "plain HDF5 peer: region read differs from the strata world");
        st = error_agree(b->comm, st, &b->error);
    }
    free(a);
    free(s);
    if (st)
        return st;
    for (int i = 0; i < 2 && !st; i++) {
        bench_row row = bench_row_start(b, i ? "region_strata_load_chunk" : "region_hdf5_hyperslab",
                                        "regions", "MB/s", BENCH_HIGHER_IS_BETTER);
        snprintf(row.peer, sizeof row.peer, "%s", i ? "strata" : "hdf5");
        bench_volume_text(b, row.volume, sizeof row.volume);
        snprintf(
            row.what, sizeof row.what, "%s",
            i ? "strata_load_chunk of every chunk meeting the rank's slab, copied into a dense "
                "box buffer; world just reopened (no chunk resident)"
              : "collective H5Dread of a hyperslab into a dense buffer; file just reopened "
                "(HDF5 chunk cache empty)");
        snprintf(row.pattern, sizeof row.pattern,
                 "a %" PRId64
                 "^3 box not aligned to chunks, a z-slab of it per rank; the page cache "
                 "holds both files",
                 edge);
        snprintf(row.limit, sizeof row.limit, "%s",
                 i ? "one zstd decode per chunk (32^3) on one core per rank"
                   : "one zstd decode per 64^3 chunk; chunks on slab edges decoded by two ranks");
        if (i)
            snprintf(row.compare[0], sizeof row.compare[0], "region_hdf5_hyperslab");
        row.count = (uint64_t)(edge * edge * edge * 2);
        st = bench_add(b, &row, i ? ts : th, reps);
    }
    return st;
}

/* ---- box I/O: strata_read_boxes / strata_write_boxes against hyperslabs ------------- */

/* One repetition of the four box rows on this rank's slab; MB/s per rank in mbs[0..3]:
 * strata read, HDF5 read, strata write + commit, HDF5 write + fsync. */
static strata_status box_round(peer *p, strata_world *w, const hsize_t lo[3], const hsize_t hi[3],
                               uint16_t *s, uint16_t *h, size_t n, double mbs[4])
{
    bench *b = p->b;
    const int64_t box[1][6] = {{(int64_t)lo[2], (int64_t)lo[1], (int64_t)lo[0], (int64_t)hi[2],
                                (int64_t)hi[1], (int64_t)hi[0]}};
    const double mb = (double)n * 2 / 1e6;
    size_t count = n ? 1 : 0;
    MPI_Barrier(b->comm);
    double t0 = MPI_Wtime();
    strata_status st = strata_read_boxes(w, box, count, 0, &s, NULL);
    mbs[0] = mb / bench_slowest(b, MPI_Wtime() - t0);
    if (st)
        return error_set(&b->error, st, "box read: %s", strata_last_error(w));
    st = peer_open(p, 0);
    if (!st) {
        MPI_Barrier(b->comm);
        t0 = MPI_Wtime();
        st = error_agree(b->comm, box_io(p, lo, hi, h, 0), &b->error);
        mbs[1] = mb / bench_slowest(b, MPI_Wtime() - t0);
    }
    /* Same voxels or the comparison means nothing (the peer file is a copy of the world). */
    if (!st && n && memcmp(s, h, n * sizeof *s) != 0)
        st = error_set(&b->error, STRATA_ERR_CORRUPT, "box read differs from the HDF5 hyperslab");
    st = error_agree(b->comm, st, &b->error);
    /* Both sides write the same new values, every voxel changed (a box write
     * stores only what changes): the values read with the lowest bit flipped. */
    for (size_t i = 0; i < n; i++)
        s[i] ^= 1;
    if (!st) {
        MPI_Barrier(b->comm);
        t0 = MPI_Wtime();
        st = error_agree(b->comm, box_io(p, lo, hi, s, 1), &b->error);
        strata_status closed = peer_close(p, 1);
        mbs[3] = mb / bench_slowest(b, MPI_Wtime() - t0);
        st = st ? st : closed;
    } else {
        peer_close(p, 0);
    }
    if (st)
        return st;
    MPI_Barrier(b->comm);
    t0 = MPI_Wtime();
    const uint16_t *data = s;
    st = strata_write_boxes(w, box, count, &data, NULL, NULL);
    if (!st)
        st = strata_commit(w, NULL);
    mbs[2] = mb / bench_slowest(b, MPI_Wtime() - t0);
    if (st)
        error_set(&b->error, st, "box write: %s", strata_last_error(w));
    return st;
}

static strata_status add_box_rows(bench *b, double mbs[][4], int reps, uint64_t bytes)
{
    static const char *const ids[4] = {"box_read_strata", "box_read_hdf5_hyperslab",
                                       "box_write_commit_strata", "box_write_fsync_hdf5_hyperslab"};
    static const char *const whats[4] = {
        "strata_read_boxes of the rank's box into a dense [z][y][x] array; world open, its "
        "chunks resident from the previous repetition (the first one decodes them)",
        "one collective H5Dread of the rank's hyperslab into a dense array; file just reopened",
        "strata_write_boxes of the rank's box (the values read with the lowest bit flipped: "
        "every voxel changes), then strata_commit (encode, index, segment write, fsync, "
        "manifest)",
        "one collective H5Dwrite of the rank's hyperslab (the same new values), H5Fclose, fsync",
    };
    static const char *const limits[4] = {
        "memcpy of chunk rows (own chunks); pieces of other ranks' chunks through MPI_Alltoallv",
        "one zstd decode per 64^3 chunk",
        "the commit: every chunk of the box is encoded and summarised (LOD) again",
        "one zstd encode per 64^3 chunk",
    };
    strata_status st = STRATA_OK;
    for (int i = 0; i < 4 && !st; i++) {
        bench_row row = bench_row_start(b, ids[i], "box", "MB/s per rank", BENCH_HIGHER_IS_BETTER);
        snprintf(row.peer, sizeof row.peer, "%s", i % 2 ? "hdf5" : "strata");
        bench_volume_text(b, row.volume, sizeof row.volume);
        if (i % 2)
            snprintf(row.volume + strlen(row.volume), sizeof row.volume - strlen(row.volume),
                     "; HDF5: one uint16 dataset, 64^3 chunks, zstd level 3");
        snprintf(row.what, sizeof row.what, "%s", whats[i]);
        snprintf(row.pattern, sizeof row.pattern,
                 "each rank its own box: a z-slab of whole 64-voxel layers, the same boxes on "
                 "both sides");
        snprintf(row.limit, sizeof row.limit, "%s", limits[i]);
        if (i % 2 == 0) {
            snprintf(row.compare[0], sizeof row.compare[0], "%s", ids[i + 1]);
            snprintf(row.target, sizeof row.target, "%s",
                     i ? ">= 2x HDF5 write + fsync" : ">= 1 GB/s per rank, >= 3x HDF5");
        }
        row.durable = i >= 2;
        row.count = bytes;
        double v[BENCH_SAMPLES_MAX];
        for (int r = 0; r < reps; r++)
            v[r] = mbs[r][i];
        st = bench_add(b, &row, v, reps);
    }
    return st;
}

static strata_status box_rows(peer *p, const char *world)
{
    bench *b = p->b;
    hsize_t lo[3] = {0, 0, 0}, hi[3] = {0, p->dims[1], p->dims[2]};
    my_layers(p, &lo[0], &hi[0]);
    size_t n = (size_t)((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
    uint16_t *s = malloc((n ? n : 1) * sizeof *s), *h = malloc((n ? n : 1) * sizeof *h);
    strata_world *w = NULL;
    strata_status st = error_agree(
        b->comm, s && h ? STRATA_OK : error_set(&b->error, STRATA_ERR_NOMEM, "box buffers"),
        &b->error);
    if (!st) {
        st = strata_world_open(b->comm, world, STRATA_WRITE, NULL, &w);
        if (st)
            error_set(&b->error, st, "opening %s: %s", world, strata_last_error(NULL));
    }
    int reps = b->quick ? 2 : 4;
    double mbs[BENCH_SAMPLES_MAX][4];
    for (int r = 0; r < reps && !st; r++)
        st = box_round(p, w, lo, hi, s, h, n, mbs[r]);
    if (w)
        strata_world_close(w);
    free(s);
    free(h);
    /* The first repetition decodes the chunks: the rows keep the resident ones. */
    if (!st)
        st = add_box_rows(b, mbs + 1, reps - 1, (uint64_t)n * 2);
    return st;
}

static strata_status add_file_row(bench *b, const peer *p)
{
    struct stat sb;
    double bytes = 0;
    if (b->rank == 0 && stat(p->path, &sb) == 0)
        bytes = (double)sb.st_size;
    MPI_Bcast(&bytes, 1, MPI_DOUBLE, 0, b->comm);
    bench_row row =
        bench_row_start(b, "storage_hdf5_zstd3_file", "storage", "bytes", BENCH_LOWER_IS_BETTER);
    snprintf(row.peer, sizeof row.peer, "hdf5");
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(
        row.what, sizeof row.what,
        "the plain HDF5 file of the same terrain: one uint16 dataset, 64^3 chunks, zstd level 3");
    snprintf(row.pattern, sizeof row.pattern, "every chunk allocated (air chunks too)");
    snprintf(row.limit, sizeof row.limit, "zstd on raw uint16 chunks; all-air chunks stored too");
    row.durable = 1;
    return bench_add(b, &row, &bytes, 1);
}

/* ---- checkpointing: many small durable commits (issue 17) ------------------------------ */

/* Bytes this process has handed to write(2) and its kin so far (/proc/self/io wchar):
 * what it wrote to the file system, whatever the file system does with it. */
static uint64_t bytes_written(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    unsigned long long v = 0;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %llu", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Bytes written by all ranks since `since` (this rank's count then). Collective. */
static double bytes_written_since(const bench *b, uint64_t since)
{
    double mine = (double)(bytes_written() - since), all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_SUM, b->comm);
    return all;
}

typedef struct {
    double seconds, bytes;   /* wall time, bytes written by all ranks */
    double delta_bytes;      /* Strata: bytes of delta records in all */
    uint64_t chunks, deltas; /* Strata: chunks stored, of them as delta records */
    uint64_t delta_voxels;   /* Strata: changed voxels the delta records hold */
} checkpoint_result;

/* c commits of bp->per_batch scattered updates each (the plan's batches, 1000 + k of
 * make_batch), each made durable: a strata_commit with the index deferred. */
static strata_status strata_checkpoints(bench *b, const char *world, const batch_plan *bp, int c,
                                        checkpoint_result *res)
{
    strata_world *w;
    strata_status st = updates_start(b, world, 1, &w);
    memset(res, 0, sizeof *res);
    MPI_Barrier(b->comm);
    uint64_t wrote = bytes_written();
    double t0 = MPI_Wtime();
    for (int k = 0; k < c && !st; k++) {
        strata_commit_stats cs = {0};
        st = strata_update_batch(w, bp->su + (size_t)k * bp->n, bp->n, NULL);
        if (!st)
            st = strata_commit(w, &cs);
        res->chunks += cs.chunks_written, res->deltas += cs.delta_chunks;
        res->delta_voxels += cs.delta_voxels;
        res->delta_bytes += (double)cs.delta_bytes;
    }
    if (st)
        error_set(&b->error, st, "strata checkpoints: %s", strata_last_error(w));
    res->seconds = bench_slowest(b, MPI_Wtime() - t0);
    res->bytes = bytes_written_since(b, wrote);
    if (w)
        strata_world_close(w);
    return st;
}

/* The same commits as point-selection writes of the plain HDF5 file, each followed by
 * H5Fflush and an fsync of the file (rank 0). */
static strata_status hdf5_checkpoints(peer *p, const batch_plan *bp, int c, checkpoint_result *res)
{
    bench *b = p->b;
    point_buffers pb;
    strata_status st = points_start(p, bp, &pb);
    memset(res, 0, sizeof *res);
    MPI_Barrier(b->comm);
    uint64_t wrote = bytes_written();
    double t0 = MPI_Wtime();
    for (int k = 0; k < c && !st; k++) {
        herr_t rc = write_points(p, bp, &pb, k, 1);
        st = rc < 0 ? h5_failed(b, "point-selection write and flush", p->path) : STRATA_OK;
        if (!st && b->rank == 0)
            st = fsync_path(p->path, &b->error);
        st = error_agree(b->comm, st, &b->error);
    }
    strata_status closed = peer_close(p, 1);
    res->seconds = bench_slowest(b, MPI_Wtime() - t0);
    res->bytes = bytes_written_since(b, wrote);
    points_free(&pb);
    return st ? st : closed;
}

static strata_status add_checkpoint_row(bench *b, const char *id, const char *peer_name,
                                        const char *unit, int better, const char *what,
                                        const char *limit, const char *compare, const char *target,
                                        const double *samples, int reps, const char *pattern)
{
    bench_row row = bench_row_start(b, id, "checkpoint", unit, better);
    snprintf(row.peer, sizeof row.peer, "%s", peer_name);
    bench_volume_text(b, row.volume, sizeof row.volume);
    snprintf(row.what, sizeof row.what, "%s", what);
    snprintf(row.pattern, sizeof row.pattern, "%s", pattern);
    snprintf(row.limit, sizeof row.limit, "%s", limit);
    if (compare)
        snprintf(row.compare[0], sizeof row.compare[0], "%s", compare);
    if (target)
        snprintf(row.target, sizeof row.target, "%s", target);
    row.durable = 1;
    return bench_add(b, &row, samples, reps);
}

/* A checkpointing simulation: many commits of a few scattered updates, each durable,
 * on Strata (delta records) and on plain HDF5 (point selections, flush + fsync). */
static strata_status checkpoint_rows(peer *p, const char *world)
{
    bench *b = p->b;
    const int commits = b->quick ? 10 : 100, hdf5_commits = b->quick ? 5 : 20;
    batch_plan bp = {.batches = commits, .per_batch = b->quick ? 1000 : 10000};
    bp.n = (size_t)(bp.per_batch / (uint64_t)b->size +
                    ((uint64_t)b->rank < bp.per_batch % (uint64_t)b->size));
    strata_status st = plan_batches(b, &bp, 1000);
    checkpoint_result s = {0}, h = {0};
    if (!st)
        st = hdf5_checkpoints(p, &bp, hdf5_commits, &h);
    if (!st)
        st = strata_checkpoints(b, world, &bp, commits, &s);
    plan_free(&bp);
    if (st)
        return st;
    char pattern[BENCH_TEXT_MAX], what[BENCH_TEXT_MAX];
    snprintf(pattern, sizeof pattern,
             "%d commits (HDF5: %d) of %" PRIu64 " uniform random updates in all each, the same "
             "voxels on both sides, all generated before the timer starts",
             commits, hdf5_commits, bp.per_batch);
    double v[1];
    v[0] = commits / s.seconds;
    snprintf(what, sizeof what,
             "strata_update_batch + strata_commit (fsync'ed, index deferred) per commit; "
             "%" PRIu64 " chunks stored, %" PRIu64 " of them as delta records",
             s.chunks, s.deltas);
    st = add_checkpoint_row(b, "checkpoint_strata_commits", "strata", "commits/s",
                            BENCH_HIGHER_IS_BETTER, what,
                            "a commit touches about every chunk: a row per chunk and a delta "
                            "record per chunk; every 9th commit of a chunk rewrites it whole",
                            "checkpoint_hdf5_commits", NULL, v, 1, pattern);
    v[0] = hdf5_commits / h.seconds;
    if (!st)
        st = add_checkpoint_row(b, "checkpoint_hdf5_commits", "hdf5", "commits/s",
                                BENCH_HIGHER_IS_BETTER,
                                "one collective H5Dwrite of a point selection, H5Fflush and an "
                                "fsync per commit",
                                "every touched 64^3 chunk is decompressed, recompressed and "
                                "written again",
                                NULL, NULL, v, 1, pattern);
    v[0] = s.bytes / commits;
    if (!st)
        st = add_checkpoint_row(b, "checkpoint_strata_bytes_per_commit", "strata", "bytes",
                                BENCH_LOWER_IS_BETTER,
                                "bytes handed to write(2) by all ranks per commit (/proc/self/io "
                                "wchar): segment (delta records, chunks rewritten whole, rows, "
                                "HDF5 metadata) and manifest",
                                "the rows of the touched chunks and the whole rewrites at the "
                                "chain bound",
                                "checkpoint_hdf5_bytes_per_commit", NULL, v, 1, pattern);
    v[0] = h.bytes / hdf5_commits;
    if (!st)
        st = add_checkpoint_row(
            b, "checkpoint_hdf5_bytes_per_commit", "hdf5", "bytes", BENCH_LOWER_IS_BETTER,
            "bytes handed to write(2) by all ranks per commit (/proc/self/io "
            "wchar)",
            "every touched chunk is written again, compressed", NULL, NULL, v, 1, pattern);
    /* a delta record is a 72-byte header (docs/format.md) and the changes' zstd frame */
    double headers = 72.0 * (double)s.deltas;
    v[0] = (s.delta_bytes - headers) / (double)(s.delta_voxels ? s.delta_voxels : 1);
    if (!st)
        st = add_checkpoint_row(
            b, "checkpoint_strata_delta_bytes_per_voxel", "strata", "bytes per changed voxel",
            BENCH_LOWER_IS_BETTER,
            "bytes of the delta records' compressed changes per changed voxel they hold; their "
            "72-byte headers (one per chunk and commit) are the row headers_per_commit",
            "zstd of the index gaps and materials of a few changes per chunk", NULL,
            "<= 4 bytes per changed voxel", v, 1, pattern);
    v[0] = headers / commits;
    if (!st)
        st = add_checkpoint_row(b, "checkpoint_strata_delta_headers_per_commit", "strata", "bytes",
                                BENCH_LOWER_IS_BETTER,
                                "bytes of delta record headers per commit (72 per chunk written "
                                "as a delta record)",
                                "one header per touched chunk", NULL, NULL, v, 1, pattern);
    return st;
}

strata_status bench_hdf5_peer(bench *b, const char *world)
{
    peer p = {.b = b, .file = -1, .dset = -1, .dxpl = -1};
    strata_status st = path_join(p.path, sizeof p.path, b->dir, "peer.h5", &b->error);
    if (!st)
        st = h5zstd_register(&b->error);
    st = error_agree(b->comm, st, &b->error);
    if (st)
        return st;
    for (int a = 0; a < 3; a++) {
        p.dims[a] = (hsize_t)b->dims[2 - a];
        p.chunk[a] = p.dims[a] < PEER_CHUNK ? p.dims[a] : PEER_CHUNK;
    }
    st = peer_copy_world(&p, world);
    if (!st && bench_wants(b, "box"))
        st = box_rows(&p, world);
    if (st || !bench_wants(b, "hdf5"))
        return st || !bench_wants(b, "checkpoint") ? st : checkpoint_rows(&p, world);
    if (!st)
        st = add_file_row(b, &p);
    if (!st)
        st = region_reads(&p, world);
    batch_plan bp = {.batches = 10, .per_batch = b->quick ? 10000 : 100000};
    bp.n = (size_t)(bp.per_batch / (uint64_t)b->size +
                    ((uint64_t)b->rank < bp.per_batch % (uint64_t)b->size));
    if (!st)
        st = plan_batches(b, &bp, 0);
    /* Each repetition runs all four on the same batches, alternating, so that a
     * noisy moment of the shared machine hits every side alike; each Strata run
     * follows an HDF5 run and each HDF5 run a Strata run (measured: whichever
     * Strata run came right after the HDF5 runs took 2-3x longer in its batches,
     * whatever its configuration, so a fixed order would favour one row). */
    int reps = b->quick ? 1 : 3;
    double seconds[3][SIM_ROWS];
    for (int r = 0; r < reps && !st; r++) {
        st = hdf5_points(&p, &bp, &seconds[r][2]);
        if (!st)
            st = strata_batches(b, world, &bp, 0, &seconds[r][0]);
        if (!st)
            st = hdf5_rmw(&p, &bp, &seconds[r][3]);
        if (!st)
            st = strata_batches(b, world, &bp, 1, &seconds[r][1]);
    }
    if (!st)
        st = add_batch_rows(b, &bp, seconds, reps);
    plan_free(&bp);
    /* after the rows above, which measure the world as the terrain left it */
    if (!st && bench_wants(b, "checkpoint"))
        st = checkpoint_rows(&p, world);
    return st;
}
