/* extract.c: collective extraction of a box to a standard HDF5 file plus XDMF.
 *
 * The output /material is cut into z-slabs, one per rank, and written in rounds
 * (a round is a range of output z-layers, sized so that every rank's buffers
 * stay bounded). At level 0 each rank decodes only the chunks it owns that meet
 * the round, cuts each into the pieces that fall in other ranks' slabs and sends
 * them with one MPI_Alltoallv; uniform pieces travel as one value. At level > 0
 * each rank asks strata_query_lod (routed to the owners, which read the stored
 * pyramid) for the cells of its own slab. Then every rank writes its slab with
 * one collective hyperslab write. Nothing reads another rank's chunks. Each rank
 * notes the material ids of its slabs, so that /materials names every id the
 * file holds, not only the world's table.
 *
 * Extraction only reads the world: an output path inside the world's directory is
 * refused before anything is created.
 */
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "extract.h"
#include "fault.h"
#include "fsutil.h"
#include "store.h"
#include "world.h"

#define EXTRACT_ROUND_PER_RANK ((uint64_t)128 << 20)
#define EXTRACT_ROUND_MAX      ((uint64_t)1 << 30)
/* Bytes a level > 0 cell costs while queried (point, answer), for round sizing. */
#define EXTRACT_LOD_CELL_BYTES 32
/* One bit per material id. */
#define EXTRACT_MATERIAL_WORDS (((size_t)UINT16_MAX + 1) / 64)

/* ---- grid and sidecar -------------------------------------------------------- */

strata_status extract_grid_make(const int64_t dims[3], const int64_t box[6], int level,
                                extract_grid *g, strata_error *err)
{
    if (level < 0 || level > EXTRACT_LEVEL_MAX)
        return error_set(err, STRATA_ERR_ARG, "LOD level %d is not in [0, %d]", level,
                         EXTRACT_LEVEL_MAX);
    static const char axis[3] = {'x', 'y', 'z'};
    memset(g, 0, sizeof *g);
    g->level = level;
    for (int a = 0; a < 3; a++) {
        int64_t lo = box[a], hi = box[a + 3];
        if (lo >= hi)
            return error_set(err, STRATA_ERR_RANGE,
                             "box %c range [%" PRId64 ", %" PRId64 ") is empty (%c0 >= %c1)",
                             axis[a], lo, hi, axis[a], axis[a]);
        lo = lo < 0 ? 0 : lo;
        hi = hi > dims[a] ? dims[a] : hi;
        if (lo >= hi)
            return error_set(err, STRATA_ERR_RANGE,
                             "box %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                             ",%" PRId64 " lies outside the world "
                             "(%" PRId64 " x %" PRId64 " x %" PRId64 "): nothing to extract",
                             box[0], box[1], box[2], box[3], box[4], box[5], dims[0], dims[1],
                             dims[2]);
        g->box[a] = lo;
        g->box[a + 3] = hi;
        int64_t step = (int64_t)1 << level;
        g->first[a] = lo >> level;
        g->cells[a] = (hi + step - 1) / step - g->first[a];
    }
    return STRATA_OK;
}

strata_status extract_xdmf_path(const char *h5_path, char *out, size_t size, strata_error *err)
{
    size_t n = strlen(h5_path);
    size_t stem = n;
    if (n > 3 && !strcmp(h5_path + n - 3, ".h5"))
        stem = n - 3;
    else if (n > 5 && !strcmp(h5_path + n - 5, ".hdf5"))
        stem = n - 5;
    if (stem + 5 > size)
        return error_set(err, STRATA_ERR_ARG, "output path too long: %s", h5_path);
    memcpy(out, h5_path, stem);
    memcpy(out + stem, ".xmf", 5);
    return STRATA_OK;
}

strata_status extract_write_xdmf(const char *xmf_path, const char *h5_name, const extract_grid *g,
                                 const double voxel_size[3], const double origin[3],
                                 strata_error *err)
{
    FILE *f = fopen(xmf_path, "wx"); /* a new file: never through a link at that name */
    if (!f)
        return error_set(err, STRATA_ERR_IO, "cannot create %s: %s", xmf_path, strerror(errno));
    double step = (double)((int64_t)1 << g->level), o[3], d[3];
    for (int a = 0; a < 3; a++) {
        o[a] = (double)(g->first[a] << g->level) * voxel_size[a] + origin[a];
        d[a] = step * voxel_size[a];
    }
    /* XDMF lists every triple in z y x order; topology counts points, not cells. */
    fprintf(f,
            "<?xml version=\"1.0\" ?>\n"
            "<Xdmf Version=\"3.0\">\n"
            "  <Domain>\n"
            "    <Grid Name=\"strata_region\" GridType=\"Uniform\">\n"
            "      <Topology TopologyType=\"3DCoRectMesh\" Dimensions=\"%" PRId64 " %" PRId64
            " %" PRId64 "\"/>\n"
            "      <Geometry GeometryType=\"ORIGIN_DXDYDZ\">\n"
            "        <DataItem Name=\"Origin\" Dimensions=\"3\" NumberType=\"Float\" "
            "Precision=\"8\" Format=\"XML\">%.17g %.17g %.17g</DataItem>\n"
            "        <DataItem Name=\"Spacing\" Dimensions=\"3\" NumberType=\"Float\" "
            "Precision=\"8\" Format=\"XML\">%.17g %.17g %.17g</DataItem>\n"
            "      </Geometry>\n"
            "      <Attribute Name=\"material\" AttributeType=\"Scalar\" Center=\"Cell\">\n"
            "        <DataItem Dimensions=\"%" PRId64 " %" PRId64 " %" PRId64 "\" "
            "NumberType=\"UShort\" Precision=\"2\" Format=\"HDF\">%s:/material</DataItem>\n"
            "      </Attribute>\n"
            "    </Grid>\n"
            "  </Domain>\n"
            "</Xdmf>\n",
            g->cells[2] + 1, g->cells[1] + 1, g->cells[0] + 1, o[2], o[1], o[0], d[2], d[1], d[0],
            g->cells[2], g->cells[1], g->cells[0], h5_name);
    int bad = ferror(f);
    if (fclose(f) || bad)
        return error_set(err, STRATA_ERR_IO, "cannot write %s: %s", xmf_path, strerror(errno));
    return STRATA_OK;
}

/* ---- output paths ------------------------------------------------------------------ */

/* realpath of the directory holding path: the text before its last '/'. */
static strata_status resolve_directory_of(const char *path, char resolved[PATH_MAX],
                                          strata_error *err)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *from = slash ? path : ".";
    size_t n = !slash || slash == path ? 1 : (size_t)(slash - path); /* "x": "."; "/x": "/" */
    if (n >= sizeof dir)
        return error_set(err, STRATA_ERR_ARG, "output path too long: %s", path);
    memcpy(dir, from, n);
    dir[n] = '\0';
    if (!realpath(dir, resolved))
        return error_set(err, STRATA_ERR_IO, "cannot resolve %s, the directory of output %s: %s",
                         dir, path, strerror(errno));
    return STRATA_OK;
}

/* Whether resolved path lies in resolved directory dir or is dir itself. */
static int path_is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/' || dir[n - 1] == '/');
}

strata_status extract_check_output_path(const char *world_dir, const char *path, strata_error *err)
{
    char world[PATH_MAX], parent[PATH_MAX], target[PATH_MAX];
    if (!realpath(world_dir, world))
        return error_set(err, STRATA_ERR_IO, "cannot resolve the world directory %s: %s", world_dir,
                         strerror(errno));
    strata_status st = resolve_directory_of(path, parent, err);
    if (st)
        return st;
    struct stat sb;
    int exists = lstat(path, &sb) == 0;
    if (exists && !realpath(path, target))
        return error_set(err, STRATA_ERR_IO, "cannot resolve output %s: %s", path, strerror(errno));
    if (path_is_under(parent, world) || (exists && path_is_under(target, world)))
        return error_set(err, STRATA_ERR_ARG,
                         "output %s lies inside the world directory %s (%s): extraction only "
                         "reads a world; write the output elsewhere",
                         path, world_dir, world);
    return STRATA_OK;
}

/* ---- one round ------------------------------------------------------------------- */

/* The state of one extraction. Rounds cover output z-cells [round0, round1);
 * this rank writes cells [slab0, slab1) of them. */
typedef struct {
    strata_world *w;
    extract_grid g;
    int64_t round0, round1, slab0, slab1;
    uint16_t *slab;                             /* [slab1 - slab0][ny][nx] */
    uint16_t *scratch;                          /* one decoded chunk */
    uint64_t materials[EXTRACT_MATERIAL_WORDS]; /* a bit per id: in this rank's slabs, then all */
    strata_extract_stats stats;
} extraction;

/* Rank writing output z-cell i of the current round (slabs split rows evenly). */
static int slab_rank(const extraction *e, int64_t i)
{
    int64_t rows = e->round1 - e->round0;
    return (int)(((i - e->round0 + 1) * e->w->size - 1) / rows);
}

static void slab_bounds(const extraction *e, int rank, int64_t *z0, int64_t *z1)
{
    int64_t rows = e->round1 - e->round0;
    *z0 = e->round0 + rows * rank / e->w->size;
    *z1 = e->round0 + rows * (rank + 1) / e->w->size;
}

enum { SOURCE_AIR, SOURCE_UNIFORM, SOURCE_DENSE };

/* Where an own chunk's voxels come from: the resident chunk (which holds flushed
 * updates) if any, else its committed row. Dense rows are decoded only when
 * decode is set. Air needs no message: slabs start zeroed. */
static strata_status chunk_source(extraction *e, uint64_t key, int decode, int *kind,
                                  uint16_t *value, const uint16_t **voxels)
{
    strata_world *w = e->w;
    chunk *k = chunk_cache_find(&w->owned, key);
    *value = 0;
    *voxels = NULL;
    if (!k && world_has_blind(w, key)) {
        /* blind writes pending: load the chunk with them merged */
        strata_status st = world_own_chunk(w, key, &k);
        if (st)
            return st;
    }
    if (k) {
        *kind = k->voxels ? SOURCE_DENSE : k->value ? SOURCE_UNIFORM : SOURCE_AIR;
        *value = k->value;
        *voxels = k->voxels;
        return STRATA_OK;
    }
    const store_row *row = world_own_row(w, key);
    if (!row || (store_row_uniform(row) && row->value == 0)) {
        *kind = SOURCE_AIR;
        return STRATA_OK;
    }
    if (store_row_uniform(row)) {
        *kind = SOURCE_UNIFORM;
        *value = row->value;
        return STRATA_OK;
    }
    *kind = SOURCE_DENSE;
    if (!decode)
        return STRATA_OK;
    e->stats.chunks_read++;
    *voxels = e->scratch;
    return world_decode_row(w, row, e->scratch);
}

/* A piece: the part of one chunk inside one slab, header then (dense) voxels. */
typedef struct {
    int64_t b[6];
    int64_t uniform; /* -1: dense voxels follow, else the uniform material */
} piece_header;

static uint64_t piece_bytes(const int64_t b[6], int kind)
{
    uint64_t n = sizeof(piece_header);
    if (kind == SOURCE_DENSE)
        n += (uint64_t)(b[3] - b[0]) * (uint64_t)(b[4] - b[1]) * (uint64_t)(b[5] - b[2]) * 2;
    return n;
}

/* Calls fn for every piece of every own chunk meeting the round. */
typedef strata_status (*piece_fn)(extraction *e, int dest, const int64_t b[6], int kind,
                                  uint16_t value, const uint16_t *voxels, const int64_t chunk0[3],
                                  void *ctx);

static strata_status each_piece(extraction *e, int decode, piece_fn fn, void *ctx)
{
    strata_world *w = e->w;
    const int bits = w->edge_bits;
    const int64_t *box = e->g.box;
    int64_t lo[3] = {box[0] >> bits, box[1] >> bits, e->round0 >> bits};
    int64_t hi[3] = {(box[3] - 1) >> bits, (box[4] - 1) >> bits, (e->round1 - 1) >> bits};
    for (int64_t cz = lo[2]; cz <= hi[2]; cz++)
        for (int64_t cy = lo[1]; cy <= hi[1]; cy++)
            for (int64_t cx = lo[0]; cx <= hi[0]; cx++) {
                uint64_t key = world_key(w, (uint64_t)cx, (uint64_t)cy, (uint64_t)cz);
                if (!world_owns(w, key))
                    continue;
                int kind;
                uint16_t value;
                const uint16_t *voxels;
                strata_status st = chunk_source(e, key, decode, &kind, &value, &voxels);
                if (st)
                    return st;
                if (kind == SOURCE_AIR)
                    continue;
                int64_t c0[3] = {cx << bits, cy << bits, cz << bits}, b[6];
                for (int a = 0; a < 2; a++) {
                    b[a] = c0[a] > box[a] ? c0[a] : box[a];
                    int64_t end = c0[a] + w->edge;
                    b[a + 3] = end < box[a + 3] ? end : box[a + 3];
                }
                int64_t z0 = c0[2] > e->round0 ? c0[2] : e->round0;
                int64_t z1 = c0[2] + w->edge < e->round1 ? c0[2] + w->edge : e->round1;
                for (int r = slab_rank(e, z0); r <= slab_rank(e, z1 - 1); r++) {
                    int64_t s0, s1;
                    slab_bounds(e, r, &s0, &s1);
                    b[2] = s0 > z0 ? s0 : z0;
                    b[5] = s1 < z1 ? s1 : z1;
                    if (b[2] < b[5] && (st = fn(e, r, b, kind, value, voxels, c0, ctx)))
                        return st;
                }
            }
    return STRATA_OK;
}

typedef struct {
    uint64_t *bytes;  /* per destination */
    uint8_t *buffer;  /* packing: the send buffer */
    uint64_t *cursor; /* packing: next byte per destination */
} exchange;

static strata_status count_piece(extraction *e, int dest, const int64_t b[6], int kind,
                                 uint16_t value, const uint16_t *voxels, const int64_t c0[3],
                                 void *ctx)
{
    (void)value, (void)voxels, (void)c0;
    exchange *x = ctx;
    if (dest != e->w->rank) /* own pieces go straight into the slab */
        x->bytes[dest] += piece_bytes(b, kind);
    return STRATA_OK;
}

/* A piece of an own chunk that falls in this rank's own slab: copied in place. */
static strata_status place_own_piece(extraction *e, const int64_t b[6], int kind, uint16_t value,
                                     const uint16_t *voxels, const int64_t c0[3])
{
    const int64_t nx = e->g.cells[0], ny = e->g.cells[1], edge = e->w->edge;
    const int64_t *box = e->g.box;
    const size_t width = (size_t)(b[3] - b[0]);
    for (int64_t z = b[2]; z < b[5]; z++)
        for (int64_t y = b[1]; y < b[4]; y++) {
            uint16_t *dst = e->slab + ((z - e->slab0) * ny + (y - box[1])) * nx + (b[0] - box[0]);
            if (kind == SOURCE_DENSE)
                memcpy(dst, voxels + ((z - c0[2]) * edge + (y - c0[1])) * edge + (b[0] - c0[0]),
                       width * sizeof *dst);
            else
                for (size_t i = 0; i < width; i++)
                    dst[i] = value;
        }
    return STRATA_OK;
}

static strata_status pack_piece(extraction *e, int dest, const int64_t b[6], int kind,
                                uint16_t value, const uint16_t *voxels, const int64_t c0[3],
                                void *ctx)
{
    exchange *x = ctx;
    if (dest == e->w->rank)
        return place_own_piece(e, b, kind, value, voxels, c0);
    uint8_t *out = x->buffer + x->cursor[dest];
    piece_header h;
    memcpy(h.b, b, sizeof h.b);
    h.uniform = kind == SOURCE_DENSE ? -1 : value;
    memcpy(out, &h, sizeof h);
    out += sizeof h;
    const int64_t edge = e->w->edge;
    const size_t row = (size_t)(b[3] - b[0]) * sizeof *voxels;
    if (kind == SOURCE_DENSE)
        for (int64_t z = b[2]; z < b[5]; z++)
            for (int64_t y = b[1]; y < b[4]; y++, out += row)
                memcpy(out, voxels + ((z - c0[2]) * edge + (y - c0[1])) * edge + (b[0] - c0[0]),
                       row);
    x->cursor[dest] += piece_bytes(b, kind);
    return STRATA_OK;
}

/* Place received pieces into this rank's slab. */
static strata_status unpack_pieces(extraction *e, const uint8_t *data, uint64_t n)
{
    const int64_t nx = e->g.cells[0], ny = e->g.cells[1];
    const int64_t *box = e->g.box;
    uint64_t at = 0;
    while (at < n) {
        piece_header h;
        if (n - at < sizeof h)
            return WORLD_FAIL(e->w, STRATA_ERR_CORRUPT, "extraction: truncated piece from a peer");
        memcpy(&h, data + at, sizeof h);
        at += sizeof h;
        const int64_t *b = h.b;
        if (b[2] < e->slab0 || b[5] > e->slab1 || b[0] < box[0] || b[3] > box[3] || b[1] < box[1] ||
            b[4] > box[4])
            return WORLD_FAIL(e->w, STRATA_ERR_CORRUPT, "extraction: piece outside this slab");
        const size_t width = (size_t)(b[3] - b[0]);
        for (int64_t z = b[2]; z < b[5]; z++)
            for (int64_t y = b[1]; y < b[4]; y++) {
                uint16_t *dst =
                    e->slab + ((z - e->slab0) * ny + (y - box[1])) * nx + (b[0] - box[0]);
                if (h.uniform >= 0) {
                    for (size_t i = 0; i < width; i++)
                        dst[i] = (uint16_t)h.uniform;
                } else {
                    memcpy(dst, data + at, width * sizeof *dst);
                    at += width * sizeof *dst;
                }
            }
    }
    return STRATA_OK;
}

/* Displacements of per-rank byte counts, refused beyond MPI's int counts. */
static strata_status to_mpi_counts(extraction *e, const uint64_t *bytes, int *counts, int *displs,
                                   uint64_t *total)
{
    *total = 0;
    for (int r = 0; r < e->w->size; r++) {
        if (*total + bytes[r] > INT_MAX)
            return WORLD_FAIL(e->w, STRATA_ERR_OVERFLOW,
                              "extraction: one round exchanges more "
                              "than 2 GiB on rank %d; use a smaller round_bytes",
                              e->w->rank);
        counts[r] = (int)bytes[r];
        displs[r] = (int)*total;
        *total += bytes[r];
    }
    return STRATA_OK;
}

/* Fill this rank's slab of the round from the owners' chunks (level 0). Collective. */
static strata_status fill_slab_voxels(extraction *e)
{
    strata_world *w = e->w;
    const int size = w->size;
    uint64_t *bytes = strata_calloc((size_t)size * 3, sizeof *bytes);
    int *ints = strata_calloc((size_t)size * 4, sizeof *ints);
    uint8_t *recv = NULL;
    exchange x = {bytes, NULL, bytes + size};
    uint64_t send_total = 0, recv_total = 0;
    double t0 = MPI_Wtime(), decode_start = 0, decode_seconds = 0;
    strata_status st =
        bytes && ints ? STRATA_OK : WORLD_FAIL(w, STRATA_ERR_NOMEM, "extraction: no memory");
    if (!st)
        st = each_piece(e, 0, count_piece, &x);
    if (!st)
        st = to_mpi_counts(e, bytes, ints, ints + size, &send_total);
    if (!st && !(x.buffer = strata_malloc(send_total ? send_total : 1)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "extraction: cannot allocate %" PRIu64 " bytes",
                        send_total);
    if (!st) {
        for (int r = 0; r < size; r++)
            x.cursor[r] = (uint64_t)ints[size + r];
        decode_start = MPI_Wtime();
        st = each_piece(e, 1, pack_piece, &x);
        decode_seconds = MPI_Wtime() - decode_start;
    }
    st = world_agree(w, st);
    if (!st)
        st = world_agree(
            w, error_mpi(&w->error,
                         MPI_Alltoall(ints, 1, MPI_INT, ints + 2 * size, 1, MPI_INT, w->comm),
                         "MPI_Alltoall"));
    uint64_t *recv_bytes = bytes + 2 * size;
    if (!st) {
        for (int r = 0; r < size; r++)
            recv_bytes[r] = (uint64_t)ints[2 * size + r];
        st = to_mpi_counts(e, recv_bytes, ints + 2 * size, ints + 3 * size, &recv_total);
        if (!st && !(recv = strata_malloc(recv_total ? recv_total : 1)))
            st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "extraction: cannot allocate %" PRIu64 " bytes",
                            recv_total);
        st = world_agree(w, st);
    }
    if (!st)
        st = world_agree(
            w, error_mpi(&w->error,
                         MPI_Alltoallv(x.buffer, ints, ints + size, MPI_BYTE, recv, ints + 2 * size,
                                       ints + 3 * size, MPI_BYTE, w->comm),
                         "MPI_Alltoallv"));
    if (!st)
        st = world_agree(w, unpack_pieces(e, recv, recv_total));
    e->stats.read_seconds += decode_seconds;
    e->stats.exchange_seconds += MPI_Wtime() - t0 - decode_seconds;
    free(x.buffer);
    free(recv);
    free(bytes);
    free(ints);
    return st;
}

/* Fill this rank's slab of the round with LOD values (level > 0). Collective. */
static strata_status fill_slab_lod(extraction *e)
{
    strata_world *w = e->w;
    const int64_t nx = e->g.cells[0], ny = e->g.cells[1];
    const size_t n = (size_t)((e->slab1 - e->slab0) * ny * nx);
    const int level = e->g.level;
    int64_t(*points)[3] = strata_malloc((n ? n : 1) * sizeof *points);
    strata_status st = points ? STRATA_OK
                              : WORLD_FAIL(w, STRATA_ERR_NOMEM,
                                           "extraction: cannot allocate "
                                           "%zu LOD points",
                                           n);
    double t0 = MPI_Wtime();
    /* A block's corner lies inside the world whenever the block meets the box. */
    size_t i = 0;
    for (int64_t z = e->slab0; !st && z < e->slab1; z++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++, i++) {
                points[i][0] = (e->g.first[0] + x) << level;
                points[i][1] = (e->g.first[1] + y) << level;
                points[i][2] = z << level;
            }
    st = world_agree(w, st);
    if (!st)
        st = strata_query_lod(w, (const int64_t(*)[3])points, n, level, -1.0, e->slab, NULL);
    e->stats.read_seconds += MPI_Wtime() - t0;
    free(points);
    return st;
}

/* ---- the HDF5 file ------------------------------------------------------------------ */

typedef struct {
    hid_t file, dataset, dxpl;
} output;

static strata_status hdf5_fail(strata_world *w, const char *what, const char *path)
{
    return store_hdf5_error(&w->error, what, path);
}

static strata_status output_create(strata_world *w, const char *path, const extract_grid *g,
                                   output *o)
{
    o->file = o->dataset = o->dxpl = -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dcpl = -1, space = -1;
    MPI_Info hints = MPI_INFO_NULL;
    /* Agreed before H5Fcreate, which is collective. */
    strata_status st = world_agree(w, store_mpiio_hints(&hints, &w->error));
    if (!st && (fapl < 0 || H5Pset_fapl_mpio(fapl, w->comm, hints) < 0 ||
                (o->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl)) < 0))
        st = hdf5_fail(w, "cannot create", path);
    if (hints != MPI_INFO_NULL)
        MPI_Info_free(&hints);
    hsize_t dims[3] = {(hsize_t)g->cells[2], (hsize_t)g->cells[1], (hsize_t)g->cells[0]};
    if (!st &&
        ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0 ||
         H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
         (space = H5Screate_simple(3, dims, NULL)) < 0 ||
         (o->dataset = H5Dcreate2(o->file, "material", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl,
                                  H5P_DEFAULT)) < 0))
        st = hdf5_fail(w, "cannot create /material in", path);
    if (!st && ((o->dxpl = H5Pcreate(H5P_DATASET_XFER)) < 0 ||
                H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE) < 0))
        st = hdf5_fail(w, "cannot set collective transfers for", path);
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    return st;
}

static void output_close(output *o)
{
    if (o->dxpl >= 0)
        H5Pclose(o->dxpl);
    if (o->dataset >= 0)
        H5Dclose(o->dataset);
    if (o->file >= 0)
        H5Fclose(o->file);
    o->file = o->dataset = o->dxpl = -1;
}

/* Write this rank's slab (possibly empty) with one collective hyperslab write. */
static strata_status write_slab(extraction *e, output *o, const char *path)
{
    const extract_grid *g = &e->g;
    hsize_t all[3] = {(hsize_t)g->cells[2], (hsize_t)g->cells[1], (hsize_t)g->cells[0]};
    hsize_t start[3] = {(hsize_t)(e->slab0 - g->first[2]), 0, 0};
    hsize_t count[3] = {(hsize_t)(e->slab1 - e->slab0), all[1], all[2]};
    hid_t file_space = H5Screate_simple(3, all, NULL);
    hid_t memory_space = H5Screate_simple(3, count[0] ? count : all, NULL);
    strata_status st = STRATA_OK;
    herr_t rc = file_space < 0 || memory_space < 0 ? -1 : 0;
    if (!rc && count[0])
        rc = H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    else if (!rc)
        rc = H5Sselect_none(file_space) < 0 || H5Sselect_none(memory_space) < 0 ? -1 : 0;
    if (rc < 0)
        st = hdf5_fail(e->w, "cannot select the slab of", path);
    /* Every rank reaches the collective write, even with a local failure. */
    double t0 = MPI_Wtime();
    if (H5Dwrite(o->dataset, H5T_NATIVE_UINT16, memory_space, file_space, o->dxpl, e->slab) < 0 &&
        !st)
        st = hdf5_fail(e->w, "cannot write /material of", path);
    e->stats.write_seconds += MPI_Wtime() - t0;
    if (file_space >= 0)
        H5Sclose(file_space);
    if (memory_space >= 0)
        H5Sclose(memory_space);
    return st;
}

static strata_status write_attribute(strata_world *w, hid_t on, const char *name, hid_t file_type,
                                     hid_t memory_type, hsize_t n, const void *data,
                                     const char *path)
{
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t a = space < 0 ? -1 : H5Acreate2(on, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, memory_type, data);
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
    return rc < 0 ? hdf5_fail(w, "cannot write an attribute of /material in", path) : STRATA_OK;
}

typedef struct {
    uint16_t id;
    char name[STRATA_MATERIAL_NAME_MAX];
    uint8_t r, g, b;
} material_record;

static void material_mark(uint64_t *ids, uint16_t id)
{
    ids[id >> 6] |= (uint64_t)1 << (id & 63);
}

static int material_marked(const uint64_t *ids, uint32_t id)
{
    return (int)(ids[id >> 6] >> (id & 63) & 1);
}

/* Mark the ids in this rank's slab of n cells. A run of one id costs a compare. */
static void note_slab_materials(extraction *e, size_t n)
{
    uint32_t last = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        if (e->slab[i] != last) {
            last = e->slab[i];
            material_mark(e->materials, e->slab[i]);
        }
}

/* The ids /materials lists, on every rank: the world's table and every id in any
 * rank's slabs (an id written by an update need not be in the table). Collective. */
static strata_status gather_materials(extraction *e)
{
    strata_world *w = e->w;
    strata_config cfg;
    strata_world_config(w, &cfg);
    for (size_t i = 0; i < cfg.material_count; i++)
        material_mark(e->materials, cfg.materials[i].id);
    return error_mpi(&w->error,
                     MPI_Allreduce(MPI_IN_PLACE, e->materials, (int)EXTRACT_MATERIAL_WORDS,
                                   MPI_UINT64_T, MPI_BOR, w->comm),
                     "MPI_Allreduce of the material ids");
}

/* /materials: one row per marked id in id order, named and coloured as
 * strata_material_get (and so the PNG legend) has it: the table's entry, else a
 * generated "material N". Rank 0 writes the rows. Collective. */
static strata_status write_materials(strata_world *w, const uint64_t *ids, output *o,
                                     const char *path)
{
    hsize_t n = 0;
    for (uint32_t id = 0; id <= UINT16_MAX; id++)
        n += (hsize_t)material_marked(ids, id);
    material_record *rows = strata_calloc(n ? n : 1, sizeof *rows);
    /* Agreed before the collective dataset creation, which every rank enters or none. */
    strata_status st = world_agree(
        w, rows ? STRATA_OK
                : WORLD_FAIL(w, STRATA_ERR_NOMEM, "extraction: no memory for the material table"));
    if (st) {
        free(rows);
        return st;
    }
    material_record *row = rows;
    for (uint32_t id = 0; id <= UINT16_MAX; id++) {
        strata_material m;
        if (!material_marked(ids, id))
            continue;
        strata_material_get(w, (uint16_t)id, &m); /* never fails: unknown ids are generated */
        row->id = m.id;
        memcpy(row->name, m.name, sizeof row->name);
        row->name[sizeof row->name - 1] = '\0';
        row->r = m.rgb[0];
        row->g = m.rgb[1];
        row->b = m.rgb[2];
        row++;
    }
    hid_t name = H5Tcopy(H5T_C_S1), type = H5Tcreate(H5T_COMPOUND, sizeof *rows);
    herr_t rc =
        name < 0 || type < 0 || H5Tset_size(name, STRATA_MATERIAL_NAME_MAX) < 0 ||
                H5Tset_strpad(name, H5T_STR_NULLTERM) < 0 ||
                H5Tinsert(type, "id", offsetof(material_record, id), H5T_NATIVE_UINT16) < 0 ||
                H5Tinsert(type, "name", offsetof(material_record, name), name) < 0 ||
                H5Tinsert(type, "r", offsetof(material_record, r), H5T_NATIVE_UINT8) < 0 ||
                H5Tinsert(type, "g", offsetof(material_record, g), H5T_NATIVE_UINT8) < 0 ||
                H5Tinsert(type, "b", offsetof(material_record, b), H5T_NATIVE_UINT8) < 0
            ? -1
            : 0;
    hid_t space = rc < 0 ? -1 : H5Screate_simple(1, &n, NULL);
    hid_t memory = space < 0 ? -1 : H5Screate_simple(1, &n, NULL);
    hid_t d = memory < 0 ? -1
                         : H5Dcreate2(o->file, "materials", type, space, H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT);
    rc = d < 0 ? -1 : 0;
    if (!rc && w->rank != 0)
        rc = H5Sselect_none(space) < 0 || H5Sselect_none(memory) < 0 ? -1 : 0;
    if (d >= 0 && H5Dwrite(d, type, memory, space, o->dxpl, rows) < 0)
        rc = -1;
    if (d >= 0)
        H5Dclose(d);
    if (memory >= 0)
        H5Sclose(memory);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (name >= 0)
        H5Tclose(name);
    free(rows);
    return rc < 0 ? hdf5_fail(w, "cannot write /materials in", path) : STRATA_OK;
}

/* Attributes of /material and the material table. Collective (HDF5 metadata). */
static strata_status write_metadata(const extraction *e, output *o, const char *path)
{
    strata_world *w = e->w;
    const extract_grid *g = &e->g;
    strata_config cfg;
    strata_world_config(w, &cfg);
    int32_t level = g->level;
    double origin[3];
    for (int a = 0; a < 3; a++)
        origin[a] = (double)(g->first[a] << g->level) * cfg.voxel_size[a] + cfg.origin[a];
    strata_status st =
        write_attribute(w, o->dataset, "box", H5T_STD_I64LE, H5T_NATIVE_INT64, 6, g->box, path);
    if (!st)
        st =
            write_attribute(w, o->dataset, "lod", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &level, path);
    if (!st)
        st = write_attribute(w, o->dataset, "voxel_size", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3,
                             cfg.voxel_size, path);
    if (!st)
        st = write_attribute(w, o->dataset, "origin", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, origin,
                             path);
    if (!st)
        st = write_attribute(w, o->dataset, "world_origin", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3,
                             cfg.origin, path);
    if (!st)
        st = write_materials(w, e->materials, o, path);
    return st;
}

/* ---- the rounds ------------------------------------------------------------------------ */

/* End of the round starting at z-cell `from`: as many layers as the budget allows,
 * ending on a chunk boundary at level 0 so that no chunk is decoded twice. */
static int64_t round_end(const extraction *e, int64_t from, uint64_t budget)
{
    const extract_grid *g = &e->g;
    uint64_t cell = g->level ? EXTRACT_LOD_CELL_BYTES : sizeof(uint16_t);
    uint64_t layer = (uint64_t)g->cells[0] * (uint64_t)g->cells[1] * cell;
    int64_t layers = (int64_t)(budget / layer);
    int64_t end_all = g->first[2] + g->cells[2];
    if (layers < 1)
        layers = 1;
    int64_t edge = e->w->edge;
    int64_t end = from + layers;
    if (!g->level && layers >= edge)
        end = (from / edge) * edge + (layers / edge) * edge;
    return end < end_all ? end : end_all;
}

static strata_status run_rounds(extraction *e, output *o, const strata_extract_options *opt,
                                const char *path)
{
    strata_world *w = e->w;
    const extract_grid *g = &e->g;
    uint64_t budget = opt->round_bytes;
    if (!budget) {
        budget = (uint64_t)w->size * EXTRACT_ROUND_PER_RANK;
        budget = budget < EXTRACT_ROUND_MAX ? budget : EXTRACT_ROUND_MAX;
    }
    const uint64_t total = (uint64_t)g->cells[0] * (uint64_t)g->cells[1] * (uint64_t)g->cells[2];
    const uint64_t layer = (uint64_t)g->cells[0] * (uint64_t)g->cells[1];
    strata_status st = STRATA_OK;
    for (int64_t from = g->first[2]; !st && from < g->first[2] + g->cells[2];) {
        st = world_agree(w, strata_signal_pending ? WORLD_FAIL(w, STRATA_ERR_INTERRUPTED,
                                                               "extraction interrupted by a signal")
                                                  : STRATA_OK);
        if (st)
            break;
        e->round0 = from;
        e->round1 = round_end(e, from, budget);
        slab_bounds(e, w->rank, &e->slab0, &e->slab1);
        size_t n = (size_t)((uint64_t)(e->slab1 - e->slab0) * layer);
        free(e->slab);
        e->slab = strata_calloc(n ? n : 1, sizeof *e->slab);
        st = world_agree(w, e->slab ? STRATA_OK
                                    : WORLD_FAIL(w, STRATA_ERR_NOMEM,
                                                 "extraction: cannot "
                                                 "allocate a slab of %zu cells",
                                                 n));
        if (!st)
            st = g->level ? fill_slab_lod(e) : fill_slab_voxels(e);
        if (!st)
            note_slab_materials(e, n);
        if (!st)
            st = world_agree(w, write_slab(e, o, path));
        world_evict(w);
        e->stats.rounds++;
        from = e->round1;
        if (!st && opt->progress && w->rank == 0)
            opt->progress((uint64_t)(from - g->first[2]) * layer, total, opt->progress_ctx);
    }
    return st;
}

/* ---- the public call --------------------------------------------------------------------- */

void strata_extract_options_init(strata_extract_options *opt)
{
    if (opt)
        memset(opt, 0, sizeof *opt);
}

/* Times and counts are summed or maxed over ranks for the caller. */
static strata_status reduce_stats(extraction *e, strata_extract_stats *out)
{
    strata_world *w = e->w;
    double t[4] = {e->stats.read_seconds, e->stats.exchange_seconds, e->stats.write_seconds,
                   e->stats.seconds};
    double tmax[4];
    uint64_t chunks = e->stats.chunks_read, chunks_all = 0;
    strata_status st = error_mpi(&w->error, MPI_Allreduce(t, tmax, 4, MPI_DOUBLE, MPI_MAX, w->comm),
                                 "MPI_Allreduce");
    if (!st)
        st = error_mpi(&w->error,
                       MPI_Allreduce(&chunks, &chunks_all, 1, MPI_UINT64_T, MPI_SUM, w->comm),
                       "MPI_Allreduce");
    if (st || !out)
        return st;
    *out = e->stats;
    memcpy(out->box, e->g.box, sizeof out->box);
    memcpy(out->cells, e->g.cells, sizeof out->cells);
    out->bytes = (uint64_t)e->g.cells[0] * (uint64_t)e->g.cells[1] * (uint64_t)e->g.cells[2] * 2;
    out->chunks_read = chunks_all;
    out->read_seconds = tmax[0];
    out->exchange_seconds = tmax[1];
    out->write_seconds = tmax[2];
    out->seconds = tmax[3];
    return STRATA_OK;
}

/* Rank 0 moves the finished file into place and writes the sidecar beside it. */
static strata_status publish(strata_world *w, const extract_grid *g, const char *partial,
                             const char *path)
{
    strata_status st = STRATA_OK;
    if (w->rank == 0) {
        char xmf[STRATA_PATH_MAX], xmf_partial[STRATA_PATH_MAX + 16];
        strata_config cfg;
        strata_world_config(w, &cfg);
        const char *slash = strrchr(path, '/');
        st = extract_xdmf_path(path, xmf, sizeof xmf, &w->error);
        if (!st) {
            snprintf(xmf_partial, sizeof xmf_partial, "%s.partial", xmf);
            if (unlink(xmf_partial) != 0 && errno != ENOENT)
                st = WORLD_FAIL(w, STRATA_ERR_IO, "cannot remove the leftover %s: %s", xmf_partial,
                                strerror(errno));
        }
        if (!st) {
            st = extract_write_xdmf(xmf_partial, slash ? slash + 1 : path, g, cfg.voxel_size,
                                    cfg.origin, &w->error);
        }
        if (!st && rename(partial, path))
            st = WORLD_FAIL(w, STRATA_ERR_IO, "cannot rename %s to %s: %s", partial, path,
                            strerror(errno));
        if (!st && rename(xmf_partial, xmf))
            st = WORLD_FAIL(w, STRATA_ERR_IO, "cannot rename %s to %s: %s", xmf_partial, xmf,
                            strerror(errno));
        if (st)
            remove(xmf_partial);
    }
    return world_agree(w, st);
}

/* An extraction's arguments checked and its grid made; partial and reserve receive the
 * names of the output being written and of the reserve beside it, and a leftover
 * partial output (a killed extraction's, or a link planted at that name) is removed,
 * not written through (the file is then created exclusively). Collective. */
static strata_status extract_start(extraction *e, const int64_t box[6], int level, const char *path,
                                   char *partial, char *reserve)
{
    strata_world *w = e->w;
    strata_config cfg;
    strata_world_config(w, &cfg);
    strata_status st = STRATA_OK;
    if (!box || !path || !*path)
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "extraction needs a box and an output path");
    else if ((size_t)snprintf(partial, STRATA_PATH_MAX, "%s.partial", path) >= STRATA_PATH_MAX)
        st = WORLD_FAIL(w, STRATA_ERR_ARG, "output path too long: %s", path);
    else
        st = extract_check_output_path(w->dir, path, &w->error);
    /* A forced create not yet committed still has the world it replaces there. */
    if (!st && w->replace_pending)
        st = extract_check_output_path(w->final_dir, path, &w->error);
    if (!st)
        st = extract_grid_make(cfg.dims, box, level, &e->g, &w->error);
    if (!st && !level && !(e->scratch = strata_malloc(w->chunk_voxels * sizeof *e->scratch)))
        st = WORLD_FAIL(w, STRATA_ERR_NOMEM, "extraction: cannot allocate a chunk buffer");
    snprintf(reserve, STRATA_PATH_MAX + 24, "%s.reserve", partial);
    if (!st && w->rank == 0 && unlink(partial) != 0 && errno != ENOENT)
        st = WORLD_FAIL(w, STRATA_ERR_IO, "cannot remove the leftover %s: %s", partial,
                        strerror(errno));
    if (!st && w->rank == 0)
        unlink(reserve);
    return world_agree(w, st);
}

/* The output created with room for it: rank 0 checks that it fits, holds a reserve for
 * its close beside it, and reserves its space once created (store_write_segment says
 * why; reliability.md). *created: the file exists. Collective. */
static strata_status extract_create(extraction *e, const char *partial, const char *reserve,
                                    output *o, int *created)
{
    strata_world *w = e->w;
    const uint64_t metadata = 1u << 16,
                   bytes = (uint64_t)e->g.cells[0] * e->g.cells[1] * e->g.cells[2] * 2 + metadata;
    strata_status st = STRATA_OK;
    if (w->rank == 0) {
        st = check_room(partial, bytes + metadata, &w->error);
        unlink(partial);
        if (!st)
            st = hold_room(reserve, metadata, &w->error);
    }
    st = world_agree(w, st);
    if (!st) {
        store_quiet_hdf5();
        st = world_agree(w, output_create(w, partial, &e->g, o));
        *created = 1;
    }
    if (!st && strata_fault_point("extract-created"))
        st = WORLD_FAIL(w, STRATA_ERR_IO, "fault injected after creating %s", partial);
    if (!st && w->rank == 0)
        st = reserve_room(partial, bytes, &w->error);
    return world_agree(w, st);
}

/* The output closed: after a failure (st) emptied first and the reserve freed, so that
 * the close finds room for HDF5's metadata; after success what the reservation held
 * past its end, and the reserve, go. Collective. */
static strata_status extract_close(strata_world *w, strata_status st, output *o,
                                   const char *partial, const char *reserve)
{
    if (st) {
        if (w->rank == 0 && truncate(partial, 0) != 0) {
            /* nothing to free: the close reports nothing either way */
        }
        if (w->rank == 0)
            unlink(reserve);
        MPI_Barrier(w->comm);
    }
    output_close(o);
    if (w->rank == 0) {
        uint64_t size = 0;
        if (!st)
            st = file_size(partial, &size, &w->error);
        if (!st && truncate(partial, (off_t)size) != 0)
            st = WORLD_FAIL(w, STRATA_ERR_IO, "cannot truncate %s: %s", partial,
                            error_errno_text(errno));
        unlink(reserve);
    }
    return world_agree(w, st);
}

strata_status strata_extract(strata_world *w, const int64_t box[6], int level, const char *path,
                             const strata_extract_options *opt, strata_extract_stats *stats)
{
    if (!w)
        return world_null_argument(NULL, __func__, "world");
    double t0 = MPI_Wtime();
    strata_extract_options defaults;
    strata_extract_options_init(&defaults);
    if (!opt)
        opt = &defaults;
    extraction e = {.w = w};
    char partial[STRATA_PATH_MAX], reserve[STRATA_PATH_MAX + 24];
    output o = {-1, -1, -1};
    int created = 0;
    strata_status st = extract_start(&e, box, level, path, partial, reserve);
    if (!st)
        st = extract_create(&e, partial, reserve, &o, &created);
    if (!st)
        st = run_rounds(&e, &o, opt, partial);
    if (!st)
        st = world_agree(w, gather_materials(&e));
    if (!st)
        st = world_agree(w, write_metadata(&e, &o, partial));
    if (created)
        st = extract_close(w, st, &o, partial, reserve);
    if (!st)
        st = publish(w, &e.g, partial, path);
    if (st && created) {
        /* A failure after the file was created leaves no partial output behind. */
        MPI_Barrier(w->comm);
        if (w->rank == 0)
            remove(partial);
    }
    e.stats.seconds = MPI_Wtime() - t0;
    free(e.slab);
    free(e.scratch);
    if (!st)
        st = world_agree(w, reduce_stats(&e, stats));
    return st;
}
