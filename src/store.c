/* store.c: segment files in parallel HDF5: write collectively, read by key range. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "codec.h"
#include "fault.h"
#include "fsutil.h"
#include "manifest.h"
#include "morton.h"

/* Collective writes are cut into rounds of at most this many bytes per rank,
 * keeping every MPI-IO count below INT_MAX. */
#define STORE_WRITE_ROUND ((uint64_t)1 << 30)

/* ---- HDF5 errors ------------------------------------------------------------- */

/* HDF5 clears its error stack at the start of every API call, so the detail of
 * a failure is captured the moment it happens, by HDF5's automatic error
 * handler (which would otherwise print the stack on stderr). */
static _Thread_local char hdf5_detail[256];

/* Walked upward: the first entry is the innermost cause (say, "inflate() failed"). */
static herr_t innermost_message(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    char *text = data;
    if (!text[0] && e->desc && *e->desc)
        snprintf(text, 256, "%s (%s)", e->desc, e->func_name ? e->func_name : "?");
    return 0;
}

static herr_t capture_hdf5_error(hid_t stack, void *client)
{
    (void)client;
    hdf5_detail[0] = '\0';
    H5Ewalk2(stack, H5E_WALK_UPWARD, innermost_message, hdf5_detail);
    return 0;
}

strata_status store_hdf5_error(strata_error *err, const char *what, const char *path)
{
    char detail[256];
    snprintf(detail, sizeof detail, "%s", hdf5_detail[0] ? hdf5_detail : "no detail from HDF5");
    hdf5_detail[0] = '\0';
    return error_set(err, STRATA_ERR_HDF5, "%s %s: %s", what, path, detail);
}

void store_quiet_hdf5(void)
{
    H5Eset_auto2(H5E_DEFAULT, capture_hdf5_error, NULL);
}

/* ---- the row type -------------------------------------------------------------- */

/* The row's fields in their on-disk order (docs/format.md). */
// clang-format off
#define ROW_FIELDS_V2(X)                                                                   \
    X(key, U64) X(epoch, U64) X(payload_segment, U64) X(payload_offset, U64)               \
    X(lod_segment, U64) X(lod_offset, U64) X(payload_length, U32) X(payload_crc, U32)      \
    X(lod_length, U32) X(lod_crc, U32) X(dominant_count, U32) X(row_crc, U32)              \
    X(value, U16) X(dominant, U16) X(distinct, U16) X(codec, U8) X(flags, U8)
/* Format 3 appends the delta chain (so that row_crc keeps its place). */
#define ROW_FIELDS_CHAIN(X)                                                                \
    X(delta_segment, U64) X(delta_offset, U64) X(delta_first, U64) X(delta_length, U32)    \
    X(delta_crc, U32) X(delta_bytes, U32) X(delta_depth, U16)
#define ROW_FIELDS(X) ROW_FIELDS_V2(X) ROW_FIELDS_CHAIN(X)
// clang-format on

static strata_status make_row_types(store *s, strata_error *err)
{
    s->row_memory_type = H5Tcreate(H5T_COMPOUND, sizeof(store_row));
    s->row_memory_type_v2 = H5Tcreate(H5T_COMPOUND, sizeof(store_row));
    size_t file_size = 0;
#define SIZE_OF(name, T) file_size += sizeof(((store_row *)0)->name);
    ROW_FIELDS(SIZE_OF)
#undef SIZE_OF
    s->row_file_type = H5Tcreate(H5T_COMPOUND, file_size);
    if (s->row_memory_type < 0 || s->row_file_type < 0 || s->row_memory_type_v2 < 0)
        return store_hdf5_error(err, "cannot create the row type for", s->dir);
    size_t file_offset = 0;
    herr_t rc = 0;
#define NATIVE_U64 H5T_NATIVE_UINT64
#define NATIVE_U32 H5T_NATIVE_UINT32
#define NATIVE_U16 H5T_NATIVE_UINT16
#define NATIVE_U8  H5T_NATIVE_UINT8
#define FILE_U64   H5T_STD_U64LE
#define FILE_U32   H5T_STD_U32LE
#define FILE_U16   H5T_STD_U16LE
#define FILE_U8    H5T_STD_U8LE
#define INSERT(name, T)                                                                            \
    rc |= H5Tinsert(s->row_memory_type, #name, offsetof(store_row, name), NATIVE_##T);             \
    rc |= H5Tinsert(s->row_file_type, #name, file_offset, FILE_##T);                               \
    file_offset += sizeof(((store_row *)0)->name);
    ROW_FIELDS(INSERT)
#undef INSERT
#define INSERT_V2(name, T)                                                                         \
    rc |= H5Tinsert(s->row_memory_type_v2, #name, offsetof(store_row, name), NATIVE_##T);
    ROW_FIELDS_V2(INSERT_V2)
#undef INSERT_V2
    if (rc < 0)
        return store_hdf5_error(err, "cannot build the row type for", s->dir);
    return STRATA_OK;
}

/* The row as stored: its fields little-endian in ROW_FIELDS order (the file
 * type's layout, 80 bytes in format 2, 118 in format 3); returns the bytes written. */
#define PACK(name, T)                                                                              \
    for (size_t i = 0; i < sizeof(row->name); i++)                                                 \
        bytes[n++] = (uint8_t)((uint64_t)row->name >> (8 * i));
static size_t pack_row(const store_row *row, uint8_t *bytes)
{
    size_t n = 0;
    ROW_FIELDS(PACK)
    return n;
}

static size_t pack_row_v2(const store_row *row, uint8_t *bytes)
{
    size_t n = 0;
    ROW_FIELDS_V2(PACK)
    return n;
}
#undef PACK

uint32_t store_row_checksum(const store_row *row)
{
    return store_row_checksum_format(row, STRATA_FORMAT_VERSION);
}

uint32_t store_row_checksum_format(const store_row *row, int format)
{
    uint8_t bytes[128];
    size_t n = format < 3 ? pack_row_v2(row, bytes) : pack_row(row, bytes);
    /* row_crc itself was packed as four bytes at a fixed place: zero them. */
    size_t at = 6 * 8 + 5 * 4;
    memset(bytes + at, 0, 4);
    return checksum_update(0, bytes, n);
}

/* ---- opening ------------------------------------------------------------------- */

static size_t fence_stride = STORE_FENCE_SAMPLE;

void store_set_fence_stride(size_t stride)
{
    fence_stride = stride ? stride : STORE_FENCE_SAMPLE;
}

strata_status store_init(store *s, MPI_Comm comm, const char *dir, strata_error *err)
{
    memset(s, 0, sizeof *s);
    s->comm = comm;
    s->row_memory_type = s->row_file_type = s->row_memory_type_v2 = -1;
    if (strlen(dir) >= sizeof s->dir)
        return error_set(err, STRATA_ERR_ARG, "path too long: %s", dir);
    strcpy(s->dir, dir);
    s->fence_stride = fence_stride;
    return make_row_types(s, err);
}

strata_status store_mpiio_hints(MPI_Info *info, strata_error *err)
{
    *info = MPI_INFO_NULL;
    const char *spec = getenv("STRATA_MPIIO_HINTS");
    if (!spec || !*spec)
        return STRATA_OK;
    char copy[4096];
    if (strlen(spec) >= sizeof copy)
        return error_set(err, STRATA_ERR_ARG, "STRATA_MPIIO_HINTS: longer than %zu bytes",
                         sizeof copy - 1);
    strcpy(copy, spec);
    if (MPI_Info_create(info) != MPI_SUCCESS) {
        *info = MPI_INFO_NULL;
        return error_set(err, STRATA_ERR_MPI, "STRATA_MPIIO_HINTS: MPI_Info_create failed");
    }
    strata_status st = STRATA_OK;
    char *save = NULL;
    for (char *pair = strtok_r(copy, ",", &save); pair && !st; pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq || eq == pair || !eq[1] || eq - pair >= MPI_MAX_INFO_KEY ||
            strlen(eq + 1) >= MPI_MAX_INFO_VAL)
            st = error_set(err, STRATA_ERR_ARG,
                           "STRATA_MPIIO_HINTS: \"%s\" is not key=value (pairs separated by "
                           "commas, as in romio_cb_write=enable,cb_nodes=8)",
                           pair);
        else {
            *eq = '\0';
            if (MPI_Info_set(*info, pair, eq + 1) != MPI_SUCCESS)
                st = error_set(err, STRATA_ERR_MPI, "STRATA_MPIIO_HINTS: cannot set %s", pair);
        }
    }
    if (st)
        MPI_Info_free(info);
    return st;
}

/* The segment being written: MPI-IO with the user's hints, and HDF5's
 * metadata written collectively at the file's flush (one collective write of
 * the metadata cache instead of rank 0's many small independent ones; HDF5's
 * own advice for parallel file systems). */
static hid_t parallel_access(MPI_Comm comm, MPI_Info hints)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 &&
        (H5Pset_fapl_mpio(fapl, comm, hints) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0)) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* Published segments are immutable and every read of one is independent, so
 * they are read through HDF5's POSIX driver, not MPI-IO: an open then costs no
 * Open MPI file set-up (about a millisecond per segment, paid again by every
 * commit that opened its new segment). File locking is off: nothing writes a
 * published segment, and flock is missing on some parallel file systems. */
static hid_t reading_access(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    herr_t rc = fapl < 0 ? -1 : H5Pset_fapl_sec2(fapl);
#if H5_VERSION_GE(1, 10, 7)
    if (rc >= 0)
        rc = H5Pset_file_locking(fapl, 0, 1);
#endif
    if (rc < 0 && fapl >= 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static void segment_close(store_segment *g)
{
    if (g->rows > 0)
        H5Dclose(g->rows);
    if (g->payload > 0)
        H5Dclose(g->payload);
    if (g->fence > 0)
        H5Dclose(g->fence);
    if (g->file > 0)
        H5Fclose(g->file);
    free(g->sample);
    for (int b = 0; b < STORE_CACHED_BLOCKS; b++)
        free(g->blocks[b].rows);
    memset(g, 0, sizeof *g);
}

static strata_status dataset_length(hid_t dset, uint64_t *length, const char *path,
                                    strata_error *err)
{
    hid_t space = H5Dget_space(dset);
    hsize_t dims[1];
    int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    if (rank != 1 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        if (space >= 0)
            H5Sclose(space);
        return error_set(err, STRATA_ERR_FORMAT, "%s: a dataset is not one-dimensional", path);
    }
    H5Sclose(space);
    *length = dims[0];
    return STRATA_OK;
}

/* Open /fence and read its sample: every stride-th entry (a strided hyperslab), ascending. */
static strata_status read_fence(store_segment *g, size_t stride, const char *path,
                                strata_error *err)
{
    g->fence = H5Dopen2(g->file, "fence", H5P_DEFAULT);
    if (g->fence < 0)
        return store_hdf5_error(err, "no /fence in", path);
    uint64_t n = 0;
    strata_status st = dataset_length(g->fence, &n, path, err);
    if (!st && n != (g->row_count + STORE_FENCE_ROWS - 1) / STORE_FENCE_ROWS)
        st = error_set(err, STRATA_ERR_CORRUPT,
                       "%s: /fence has %" PRIu64 " entries for %" PRIu64 " rows", path, n,
                       g->row_count);
    if (st)
        return st;
    g->fence_count = n;
    g->sample_count = (size_t)((n + stride - 1) / stride);
    g->sample = strata_malloc((g->sample_count ? g->sample_count : 1) * sizeof *g->sample);
    if (!g->sample)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate the fence sample of %s", path);
    if (!n)
        return STRATA_OK;
    hsize_t start = 0, step = stride, count = g->sample_count;
    hid_t file_space = H5Dget_space(g->fence);
    hid_t memory_space = H5Screate_simple(1, &count, NULL);
    herr_t rc = file_space < 0 || memory_space < 0
                    ? -1
                    : H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &start, &step, &count, NULL);
    if (rc >= 0)
        rc = H5Dread(g->fence, H5T_NATIVE_UINT64, memory_space, file_space, H5P_DEFAULT, g->sample);
    if (file_space >= 0)
        H5Sclose(file_space);
    if (memory_space >= 0)
        H5Sclose(memory_space);
    if (rc < 0)
        return store_hdf5_error(err, "cannot read /fence of", path);
    for (size_t i = 1; i < g->sample_count; i++)
        if (g->sample[i] <= g->sample[i - 1])
            return error_set(err, STRATA_ERR_CORRUPT, "%s: /fence is not ascending", path);
    return STRATA_OK;
}

/* A data segment holds attribute epoch = its id; an index segment attribute
 * index_serial = its serial (and epoch = 0: it belongs to no commit). */
static strata_status check_segment_attributes(hid_t file, uint64_t id, int *format,
                                              const char *path, strata_error *err)
{
    uint64_t values[2] = {0, 0};
    const int index = store_is_index_segment(id);
    const uint64_t epoch = id & ~STORE_INDEX_SEGMENT;
    const char *names[2] = {"strata_format", index ? "index_serial" : "epoch"};
    for (int i = 0; i < 2; i++) {
        hid_t attr = H5Aopen(file, names[i], H5P_DEFAULT);
        herr_t rc = attr < 0 ? -1 : H5Aread(attr, H5T_NATIVE_UINT64, &values[i]);
        if (attr >= 0)
            H5Aclose(attr);
        if (rc < 0)
            return store_hdf5_error(err, "not a Strata segment (attribute missing):", path);
    }
    if (values[0] > STRATA_FORMAT_VERSION)
        return error_set(err, STRATA_ERR_VERSION, "%s: format %" PRIu64 " is newer than %d", path,
                         values[0], STRATA_FORMAT_VERSION);
    if (values[1] != epoch)
        return error_set(err, STRATA_ERR_CORRUPT, "%s: holds %s %" PRIu64 ", expected %" PRIu64,
                         path, names[1], values[1], epoch);
    *format = (int)values[0];
    return STRATA_OK;
}

static strata_status segment_open(store *s, store_segment *g, uint64_t epoch, strata_error *err)
{
    char name[64], path[STRATA_PATH_MAX];
    manifest_segment_name(epoch, name, sizeof name);
    strata_status st = path_join(path, sizeof path, s->dir, name, err);
    if (st)
        return st;
    memset(g, 0, sizeof *g);
    g->epoch = epoch;
    g->file = g->rows = g->payload = g->fence = -1;
    /* A segment of this id opened again (rewritten after a failed commit): forget its blocks. */
    for (int b = 0; b < STORE_CACHED_FENCES; b++)
        if (s->fences[b].epoch == epoch)
            s->fences[b].index = SIZE_MAX;
    g->fd = -1;
    hid_t fapl = reading_access();
    if (fapl < 0)
        return store_hdf5_error(err, "cannot set file access for", path);
    g->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (g->file < 0)
        return store_hdf5_error(err, "cannot open segment", path);
    st = check_segment_attributes(g->file, epoch, &g->format, path, err);
    if (st)
        return st;
    g->rows = H5Dopen2(g->file, "rows", H5P_DEFAULT);
    g->payload = H5Dopen2(g->file, "payload", H5P_DEFAULT);
    if (g->rows < 0 || g->payload < 0)
        return store_hdf5_error(err, "missing /rows or /payload in", path);
    st = dataset_length(g->rows, &g->row_count, path, err);
    if (!st)
        st = dataset_length(g->payload, &g->payload_size, path, err);
    if (st)
        return st;
    /* The direct path (see store_segment), when HDF5 says where the bytes are: an empty or
     * chunked /payload has no address, and then reads go through HDF5. */
    haddr_t address = g->payload_size ? H5Dget_offset(g->payload) : HADDR_UNDEF;
    int *handle = NULL;
    if (address != HADDR_UNDEF && H5Fget_vfd_handle(g->file, H5P_DEFAULT, (void **)&handle) >= 0 &&
        handle && *handle >= 0)
        g->fd = *handle, g->payload_address = (uint64_t)address;
    return read_fence(g, s->fence_stride, path, err);
}

static int compare_segments(const void *a, const void *b)
{
    uint64_t x = ((const store_segment *)a)->epoch, y = ((const store_segment *)b)->epoch;
    return x < y ? -1 : x > y;
}

strata_status store_open_segments(store *s, const uint64_t *epochs, size_t n, strata_error *err)
{
    store_segment *grown = strata_realloc(s->segments, (s->count + n + 1) * sizeof *grown);
    if (!grown)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate %zu segments", n);
    s->segments = grown;
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < n && !st; i++) {
        /* Every rank opens every segment (reading_access: not collective);
         * the caller agrees on the outcome. */
        st = segment_open(s, &s->segments[s->count], epochs[i], err);
        if (st)
            segment_close(&s->segments[s->count]);
        else
            s->count++;
    }
    /* Kept sorted by id (binary searches): segments opened by a later commit,
     * or by a reindex catching up, go before the index segments. */
    qsort(s->segments, s->count, sizeof *s->segments, compare_segments);
    return st;
}

void store_set_node(store *s, MPI_Comm node)
{
    s->node = node;
    s->has_node = 1;
}

void store_view_end(store *s, const store *view)
{
    memcpy(s->fences, view->fences, sizeof s->fences);
    s->block_clock = view->block_clock;
}

void store_close(store *s)
{
    if (s->has_node)
        MPI_Comm_free(&s->node);
    s->has_node = 0;
    for (size_t i = 0; i < s->count; i++)
        segment_close(&s->segments[i]);
    free(s->segments);
    s->segments = NULL;
    s->count = 0;
    for (int b = 0; b < STORE_CACHED_FENCES; b++)
        free(s->fences[b].keys);
    memset(s->fences, 0, sizeof s->fences);
    if (s->row_memory_type >= 0)
        H5Tclose(s->row_memory_type);
    if (s->row_file_type >= 0)
        H5Tclose(s->row_file_type);
    if (s->row_memory_type_v2 >= 0)
        H5Tclose(s->row_memory_type_v2);
    s->row_memory_type = s->row_file_type = s->row_memory_type_v2 = -1;
}

void store_retain(store *s, const uint64_t *epochs, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->count; i++) {
        int live = 0;
        for (size_t j = 0; j < n && !live; j++)
            live = epochs[j] == s->segments[i].epoch;
        if (live)
            s->segments[kept++] = s->segments[i];
        else
            segment_close(&s->segments[i]);
    }
    s->count = kept;
}

/* ---- reading ------------------------------------------------------------------- */

/* Read elements [first, first + count) of the 1-D dataset into out (of memory_type). */
static herr_t read_range(hid_t dataset, hid_t memory_type, uint64_t first, uint64_t count,
                         void *out)
{
    hsize_t start = first, n = count;
    hid_t file_space = H5Dget_space(dataset);
    hid_t memory_space = H5Screate_simple(1, &n, NULL);
    herr_t rc = file_space < 0 || memory_space < 0
                    ? -1
                    : H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &start, NULL, &n, NULL);
    if (rc >= 0)
        rc = H5Dread(dataset, memory_type, memory_space, file_space, H5P_DEFAULT, out);
    if (file_space >= 0)
        H5Sclose(file_space);
    if (memory_space >= 0)
        H5Sclose(memory_space);
    return rc;
}

static strata_status read_rows(store *s, store_segment *g, uint64_t first, uint64_t count,
                               store_row *out, strata_error *err)
{
    if (count == 0)
        return STRATA_OK;
    /* A format-2 segment's rows have no chain: those fields read as 0. */
    if (g->format < 3)
        memset(out, 0, (size_t)count * sizeof *out);
    herr_t rc = read_range(g->rows, g->format < 3 ? s->row_memory_type_v2 : s->row_memory_type,
                           first, count, out);
    char name[64];
    manifest_segment_name(g->epoch, name, sizeof name);
    if (rc < 0)
        return store_hdf5_error(err, "cannot read rows of", name);
    for (uint64_t i = 0; i < count; i++) {
        if (store_row_checksum_format(&out[i], g->format) != out[i].row_crc)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "%s/%s: row %" PRIu64 " (chunk key %" PRIu64 ") fails its checksum",
                             s->dir, name, first + i, out[i].key);
        if (i > 0 && out[i].key <= out[i - 1].key)
            return error_set(err, STRATA_ERR_CORRUPT, "%s/%s: rows not ascending at row %" PRIu64,
                             s->dir, name, first + i);
    }
    return STRATA_OK;
}

static void segment_path(const store *s, const store_segment *g, char *path, size_t size)
{
    char name[64];
    manifest_segment_name(g->epoch, name, sizeof name);
    snprintf(path, size, "%s/%s", s->dir, name);
}

/* Block `index` of g's fence (entries [index * stride, + stride)): a cached one, else read
 * into the store's slot unused or least recently used, checked against the sample. */
static strata_status fence_block(store *s, store_segment *g, size_t index,
                                 const store_fence_block **out, strata_error *err)
{
    const size_t stride = s->fence_stride;
    store_fence_block *slot = &s->fences[0];
    s->block_clock++;
    for (int b = 0; b < STORE_CACHED_FENCES; b++) {
        store_fence_block *k = &s->fences[b];
        if (k->keys && k->index == index && k->epoch == g->epoch) {
            k->used = s->block_clock;
            *out = k;
            return STRATA_OK;
        }
        if (!k->keys ? slot->keys != NULL : slot->keys && k->used < slot->used)
            slot = k;
    }
    if (!slot->keys && !(slot->keys = strata_malloc(stride * sizeof *slot->keys)))
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a fence block");
    uint64_t first = (uint64_t)index * stride;
    size_t count = (size_t)(g->fence_count - first < stride ? g->fence_count - first : stride);
    char path[STRATA_PATH_MAX + 64];
    segment_path(s, g, path, sizeof path);
    slot->index = SIZE_MAX;
    if (read_range(g->fence, H5T_NATIVE_UINT64, first, count, slot->keys) < 0)
        return store_hdf5_error(err, "cannot read /fence of", path);
    int ascending = slot->keys[0] == g->sample[index] &&
                    (index + 1 >= g->sample_count || slot->keys[count - 1] < g->sample[index + 1]);
    for (size_t i = 1; ascending && i < count; i++)
        ascending = slot->keys[i] > slot->keys[i - 1];
    if (!ascending)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "%s: /fence is not ascending (entries %" PRIu64 " to %" PRIu64 ")", path,
                         first, first + count - 1);
    slot->epoch = g->epoch;
    slot->index = index;
    slot->count = count;
    slot->used = s->block_clock;
    *out = slot;
    return STRATA_OK;
}

/* How many of g's fence keys are <= key (strict: < key), from the sample and one block. */
static strata_status fence_count(store *s, store_segment *g, uint64_t key, int strict, size_t *out,
                                 strata_error *err)
{
    size_t lo = 0, hi = g->sample_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strict ? g->sample[mid] < key : g->sample[mid] <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *out = 0;
    if (lo == 0)
        return STRATA_OK;
    const store_fence_block *k;
    strata_status st = fence_block(s, g, lo - 1, &k, err);
    if (st)
        return st;
    size_t in = 1, top = k->count; /* keys[0] (the sample entry) counts already */
    while (in < top) {
        size_t mid = (in + top) / 2;
        if (strict ? k->keys[mid] < key : k->keys[mid] <= key)
            in = mid + 1;
        else
            top = mid;
    }
    *out = (lo - 1) * s->fence_stride + in;
    return STRATA_OK;
}

/* Row range [*begin, *end) of segment g that can hold keys in [first, last). */
static strata_status fence_range(store *s, store_segment *g, uint64_t first, uint64_t last,
                                 uint64_t *begin, uint64_t *end, strata_error *err)
{
    size_t after = 0, below = 0; /* blocks with fence key <= first; with fence key < last */
    strata_status st = fence_count(s, g, first, 0, &after, err);
    if (!st)
        st = fence_count(s, g, last, 1, &below, err);
    if (st)
        return st;
    *begin = (uint64_t)(after ? after - 1 : 0) * STORE_FENCE_ROWS;
    *end = (uint64_t)below * STORE_FENCE_ROWS;
    if (*end > g->row_count)
        *end = g->row_count;
    if (*begin > *end)
        *begin = *end;
    return STRATA_OK;
}

uint64_t store_fence_bytes(const store *s)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < s->count; i++)
        bytes += (uint64_t)s->segments[i].sample_count * sizeof(uint64_t);
    for (int b = 0; b < STORE_CACHED_FENCES; b++)
        if (s->fences[b].keys)
            bytes += (uint64_t)s->fence_stride * sizeof(uint64_t);
    return bytes;
}

strata_status store_read_fence(store *s, size_t i, uint64_t **keys, strata_error *err)
{
    store_segment *g = &s->segments[i];
    char path[STRATA_PATH_MAX + 64];
    segment_path(s, g, path, sizeof path);
    *keys = strata_malloc((size_t)(g->fence_count ? g->fence_count : 1) * sizeof **keys);
    if (!*keys)
        return error_set(err, STRATA_ERR_NOMEM, "cannot allocate the fence of %s", path);
    strata_status st = STRATA_OK;
    if (g->fence_count && read_range(g->fence, H5T_NATIVE_UINT64, 0, g->fence_count, *keys) < 0)
        st = store_hdf5_error(err, "cannot read /fence of", path);
    for (uint64_t j = 1; !st && j < g->fence_count; j++)
        if ((*keys)[j] <= (*keys)[j - 1])
            st = error_set(err, STRATA_ERR_CORRUPT, "%s: /fence is not ascending", path);
    if (st) {
        free(*keys);
        *keys = NULL;
    }
    return st;
}

static int compare_rows(const void *a, const void *b)
{
    const store_row *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    /* Equal keys: the newer segment's row sorts last and wins. */
    return x->payload_segment < y->payload_segment ? -1 : x->payload_segment > y->payload_segment;
}

/* The rows of every data segment with keys in [first, last), oldest segment first, in
 * *all (one buffer sized by the fences: *capacity rows; *total kept), each with its
 * home segment. */
static strata_status read_candidates(store *s, uint64_t first, uint64_t last, store_row **all,
                                     size_t *total, size_t *capacity, strata_error *err)
{
    *all = NULL;
    *total = *capacity = 0;
    if (first >= last || !s->count)
        return STRATA_OK;
    /* Each segment's row range, found once: a second search would read its fence
     * blocks again, and the cache of STORE_CACHED_FENCES blocks cannot hold them all. */
    uint64_t *range = strata_calloc(2 * s->count, sizeof *range);
    if (!range)
        return error_set(err, STRATA_ERR_NOMEM, "cannot hold the row ranges of %zu segments",
                         s->count);
    strata_status st = STRATA_OK;
    for (size_t i = 0; i < s->count && !st; i++) {
        if (store_is_index_segment(s->segments[i].epoch))
            continue; /* applied below, once the data rows are known */
        st = fence_range(s, &s->segments[i], first, last, &range[2 * i], &range[2 * i + 1], err);
        *capacity += range[2 * i + 1] - range[2 * i];
    }
    if (!st && *capacity && !(*all = strata_malloc(*capacity * sizeof **all)))
        st = error_set(err, STRATA_ERR_NOMEM, "cannot hold %zu chunk rows", *capacity);
    for (size_t i = 0; i < s->count && !st; i++) {
        uint64_t begin = range[2 * i], count = range[2 * i + 1] - begin;
        store_row *got = *all + *total;
        if (count) /* index segments and segments without rows in range: none */
            st = read_rows(s, &s->segments[i], begin, count, got, err);
        /* Keep the rows inside [first, last), compacting in place. */
        for (uint64_t j = 0; !st && j < count; j++)
            if (got[j].key >= first && got[j].key < last) {
                got[j].home = s->segments[i].epoch;
                got[j].index_home = 0;
                (*all)[(*total)++] = got[j];
            }
    }
    free(range);
    return st;
}

/* Rows appended oldest segment first, sorted by key keeping the last of equal keys (a
 * stable merge: the append position is the tie-break); *kept rows remain. */
static strata_status keep_newest(store_row *all, size_t total, size_t *kept, strata_error *err)
{
    *kept = 0;
    if (!total)
        return STRATA_OK;
    uint64_t *order = strata_malloc(total * sizeof *order);
    if (!order)
        return error_set(err, STRATA_ERR_NOMEM, "cannot merge %zu rows", total);
    /* Sort by (key, append position) using the order array as a tag. */
    for (size_t i = 0; i < total; i++)
        order[i] = all[i].payload_segment, all[i].payload_segment = i;
    qsort(all, total, sizeof *all, compare_rows);
    for (size_t i = 0; i < total; i++) {
        all[i].payload_segment = order[all[i].payload_segment];
        if (*kept && all[*kept - 1].key == all[i].key)
            all[*kept - 1] = all[i];
        else
            all[(*kept)++] = all[i];
    }
    free(order);
    return STRATA_OK;
}

/* The index segments' rows applied to the data rows (an index-only row in a data
 * segment is damage). */
static strata_status apply_index_segments(store *s, uint64_t first, uint64_t last, store_row *all,
                                          size_t kept, strata_error *err)
{
    for (size_t i = 0; i < kept; i++)
        if (all[i].flags & STORE_ROW_INDEX_ONLY)
            return error_set(err, STRATA_ERR_CORRUPT,
                             "%s: chunk key %" PRIu64
                             ": an index-only row in data segment %" PRIu64,
                             s->dir, all[i].key, all[i].home);
    for (size_t i = 0; i < s->count && kept; i++) {
        if (!store_is_index_segment(s->segments[i].epoch))
            continue;
        store_row *x = NULL;
        size_t nx = 0;
        strata_status st =
            store_load_index_rows(s, s->segments[i].epoch, first, last, &x, &nx, err);
        if (st)
            return st;
        store_apply_index(all, kept, x, nx, s->segments[i].epoch);
        free(x);
    }
    return STRATA_OK;
}

strata_status store_load_rows(store *s, uint64_t first, uint64_t last, store_row **rows, size_t *n,
                              strata_error *err)
{
    *rows = NULL;
    *n = 0;
    /* One buffer for the candidate rows of every data segment, shrunk to the
     * rows kept at the end (it was doubled as it grew and kept so: twice the
     * rows' bytes held for the life of the world). */
    store_row *all;
    size_t total, capacity, kept = 0;
    strata_status st = read_candidates(s, first, last, &all, &total, &capacity, err);
    if (!st)
        st = keep_newest(all, total, &kept, err);
    if (!st)
        st = apply_index_segments(s, first, last, all, kept, err);
    if (st || !kept) {
        free(all);
        return st;
    }
    if (kept < capacity) { /* a failed shrink keeps the larger buffer */
        store_row *fitted = strata_realloc(all, kept * sizeof *all);
        all = fitted ? fitted : all;
    }
    *rows = all;
    *n = kept;
    return STRATA_OK;
}

strata_status store_load_index_rows(store *s, uint64_t id, uint64_t first, uint64_t last,
                                    store_row **rows, size_t *n, strata_error *err)
{
    *rows = NULL;
    *n = 0;
    store_segment *g = NULL;
    for (size_t i = 0; i < s->count && !g; i++)
        if (s->segments[i].epoch == id)
            g = &s->segments[i];
    char name[64];
    manifest_segment_name(id, name, sizeof name);
    if (!g)
        return error_set(err, STRATA_ERR_CORRUPT, "%s: index segment %s is not open", s->dir, name);
    uint64_t begin, end;
    strata_status st = fence_range(s, g, first, last, &begin, &end, err);
    if (st)
        return st;
    store_row *all = strata_malloc((size_t)(end - begin + 1) * sizeof *all);
    if (!all)
        return error_set(err, STRATA_ERR_NOMEM, "cannot hold %" PRIu64 " index rows", end - begin);
    st = read_rows(s, g, begin, end - begin, all, err);
    size_t kept = 0;
    for (uint64_t j = 0; !st && j < end - begin; j++) {
        if (!(all[j].flags & STORE_ROW_INDEX_ONLY))
            st = error_set(err, STRATA_ERR_CORRUPT,
                           "%s/%s: chunk key %" PRIu64 ": a row without STORE_ROW_INDEX_ONLY in an "
                           "index segment",
                           s->dir, name, all[j].key);
        else if (all[j].key >= first && all[j].key < last) {
            all[j].home = id;
            all[kept++] = all[j];
        }
    }
    if (st) {
        free(all);
        return st;
    }
    *rows = all;
    *n = kept;
    return STRATA_OK;
}

/* A data row takes an index-only row's fields (same key and data epoch). */
static void apply_one(store_row *row, const store_row *x, uint64_t segment)
{
    row->lod_segment = x->lod_segment;
    row->lod_offset = x->lod_offset;
    row->lod_length = x->lod_length;
    row->lod_crc = x->lod_crc;
    row->dominant = x->dominant;
    row->dominant_count = x->dominant_count;
    row->distinct = x->distinct;
    row->flags &= (uint8_t)~STORE_ROW_INDEX_STALE;
    row->index_home = segment;
}

size_t store_apply_index(store_row *rows, size_t count, const store_row *x, size_t n,
                         uint64_t segment)
{
    size_t applied = 0, i = 0;
    for (size_t j = 0; j < n; j++) {
        while (i < count && rows[i].key < x[j].key)
            i++;
        if (i == count)
            break;
        /* Exactness: only a summary built from the chunk's current data serves. */
        if (rows[i].key == x[j].key && rows[i].epoch == x[j].epoch) {
            apply_one(&rows[i], &x[j], segment);
            applied++;
        }
    }
    return applied;
}

/* Block `block` of segment g's rows: a cached one, else read into the slot
 * unused or least recently used. */
static strata_status load_block(store *s, store_segment *g, size_t block,
                                const store_row_block **out, strata_error *err)
{
    store_row_block *slot = &g->blocks[0];
    s->block_clock++;
    for (int b = 0; b < STORE_CACHED_BLOCKS; b++) {
        store_row_block *k = &g->blocks[b];
        if (k->rows && k->index == block) {
            k->used = s->block_clock;
            *out = k;
            return STRATA_OK;
        }
        if (!k->rows ? slot->rows != NULL : slot->rows && k->used < slot->used)
            slot = k;
    }
    if (!slot->rows) {
        /* A free slot of g: take the buffer of the store's least recently used
         * block instead of a new one when the store holds its bound already. */
        size_t held = 0;
        store_row_block *oldest = NULL;
        for (size_t i = 0; i < s->count; i++)
            for (int b = 0; b < STORE_CACHED_BLOCKS; b++) {
                store_row_block *k = &s->segments[i].blocks[b];
                if (!k->rows)
                    continue;
                held++;
                if (!oldest || k->used < oldest->used)
                    oldest = k;
            }
        if (held >= STORE_CACHED_BLOCKS_ALL && oldest) {
            slot->rows = oldest->rows;
            oldest->rows = NULL;
        }
    }
    if (!slot->rows) {
        slot->rows = strata_malloc(STORE_FENCE_ROWS * sizeof *slot->rows);
        if (!slot->rows)
            return error_set(err, STRATA_ERR_NOMEM, "cannot allocate a row block");
    }
    uint64_t begin = (uint64_t)block * STORE_FENCE_ROWS;
    uint64_t count =
        g->row_count - begin < STORE_FENCE_ROWS ? g->row_count - begin : STORE_FENCE_ROWS;
    slot->index = (size_t)-1;
    strata_status st = read_rows(s, g, begin, count, slot->rows, err);
    if (st)
        return st;
    slot->index = block;
    slot->count = (size_t)count;
    slot->used = s->block_clock;
    *out = slot;
    return STRATA_OK;
}

/* The block of g's rows that may hold key, in *k; NULL when g is not of the kind
 * asked for (index segments or data segments) or holds no key that low. */
static strata_status key_block(store *s, store_segment *g, uint64_t key, int index_segment,
                               const store_row_block **k, strata_error *err)
{
    *k = NULL;
    if (!store_is_index_segment(g->epoch) != !index_segment || !g->sample_count ||
        key < g->sample[0])
        return STRATA_OK;
    size_t after = 0;
    strata_status st = fence_count(s, g, key, 0, &after, err);
    return st ? st : load_block(s, g, after - 1, k, err);
}

strata_status store_lookup_row(store *s, uint64_t key, store_row *row, int *found,
                               strata_error *err)
{
    *found = 0;
    /* The newest data row, then every index segment (ascending id) applied to it. */
    for (size_t i = s->count; i-- > 0;) {
        store_segment *g = &s->segments[i];
        const store_row_block *k;
        strata_status st = key_block(s, g, key, 0, &k, err);
        if (st)
            return st;
        if (!k)
            continue;
        const store_row *hit =
            k->count ? bsearch(&key, k->rows, k->count, sizeof *k->rows, morton_key_compare) : NULL;
        if (hit) {
            *row = *hit;
            row->home = g->epoch;
            row->index_home = 0;
            *found = 1;
            break;
        }
    }
    for (size_t i = 0; *found && i < s->count; i++) {
        store_segment *g = &s->segments[i];
        const store_row_block *k;
        strata_status st = key_block(s, g, key, 1, &k, err);
        if (st)
            return st;
        if (k)
            store_apply_index(row, 1, k->rows, k->count, g->epoch);
    }
    return STRATA_OK;
}

static int compare_segment_epoch(const void *epoch, const void *segment)
{
    uint64_t a = *(const uint64_t *)epoch, b = ((const store_segment *)segment)->epoch;
    return a < b ? -1 : a > b;
}

/* The open segment of that epoch (s->segments ascends by epoch), or NULL. */
static store_segment *find_segment(store *s, uint64_t epoch)
{
    return s->count
               ? bsearch(&epoch, s->segments, s->count, sizeof *s->segments, compare_segment_epoch)
               : NULL;
}

strata_status store_read_span(store *s, uint64_t segment, uint64_t offset, uint64_t length,
                              uint64_t key, uint8_t *out, strata_error *err)
{
    store_segment *g = find_segment(s, segment);
    if (!g)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "%s: chunk key %" PRIu64 " points at segment %" PRIu64
                         ", which is not live",
                         s->dir, key, segment);
    uint64_t size = g->payload_size;
    if (offset > size || length > size - offset)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "%s: chunk key %" PRIu64 ": payload [%" PRIu64 ", +%" PRIu64
                         ") beyond the %" PRIu64 "-byte /payload of segment %" PRIu64,
                         s->dir, key, offset, length, size, segment);
    if (length == 0)
        return STRATA_OK;
    if (g->fd >= 0) {
        for (uint64_t done = 0; done < length;) {
            ssize_t got = pread(g->fd, out + done, (size_t)(length - done),
                                (off_t)(g->payload_address + offset + done));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return error_set(err, STRATA_ERR_IO,
                                 "%s: cannot read chunk key %" PRIu64 "'s %" PRIu64
                                 " bytes at offset %" PRIu64 " of segment %" PRIu64 ": %s",
                                 s->dir, key, length, offset, segment,
                                 got < 0 ? strerror(errno) : "the file ends first");
            done += (uint64_t)got;
        }
        return STRATA_OK;
    }
    herr_t rc = read_range(g->payload, H5T_NATIVE_UINT8, offset, length, out);
    return rc < 0 ? store_hdf5_error(err, "cannot read a payload of", s->dir) : STRATA_OK;
}

static int compare_refs(const void *a, const void *b)
{
    const store_ref *x = a, *y = b;
    if (x->segment != y->segment)
        return x->segment < y->segment ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The span starting at sorted ref a: refs [a, *b) are read as [refs[a].offset, end). */
static uint64_t span_end(const store_ref *refs, size_t n, size_t a, uint64_t gap, size_t *b)
{
    uint64_t end = refs[a].offset + refs[a].length;
    size_t k = a + 1;
    for (; k < n && refs[k].segment == refs[a].segment && refs[k].offset <= end + gap; k++)
        if (refs[k].offset + refs[k].length > end)
            end = refs[k].offset + refs[k].length;
    *b = k;
    return end;
}

strata_status store_read_many(store *s, store_ref *refs, size_t n, uint64_t gap, uint8_t **buffer,
                              uint64_t *capacity, size_t *failed, strata_error *err)
{
    *failed = n;
    qsort(refs, n, sizeof *refs, compare_refs);
    uint64_t need = 0;
    for (size_t a = 0, b; a < n; a = b) {
        uint64_t end = span_end(refs, n, a, gap, &b);
        for (size_t k = a; k < b; k++)
            refs[k].at = need + (refs[k].offset - refs[a].offset);
        need += end - refs[a].offset;
    }
    if (need + 1 > *capacity) {
        uint8_t *grown = strata_realloc(*buffer, need + 1);
        if (!grown)
            return error_set(err, STRATA_ERR_NOMEM, "%s: cannot hold %" PRIu64 " payload bytes",
                             s->dir, need);
        *buffer = grown, *capacity = need + 1;
    }
    for (size_t a = 0, b; a < n; a = b) {
        uint64_t end = span_end(refs, n, a, gap, &b);
        strata_status st = store_read_span(s, refs[a].segment, refs[a].offset, end - refs[a].offset,
                                           refs[a].key, *buffer + refs[a].at, err);
        /* a span that cannot be read is read ref by ref, to name the one at fault */
        for (size_t k = a; st != STRATA_OK && k < b; k++) {
            strata_status one = store_read_span(s, refs[k].segment, refs[k].offset, refs[k].length,
                                                refs[k].key, *buffer + refs[k].at, err);
            if (one) {
                *failed = k;
                return one;
            }
        }
    }
    return STRATA_OK;
}

strata_status store_check_payload(const char *dir, uint64_t segment, uint64_t offset,
                                  uint32_t length, uint32_t crc, uint64_t key, const uint8_t *data,
                                  strata_error *err)
{
    uint32_t actual = checksum_update(0, data, length);
    if (actual != crc)
        return error_set(err, STRATA_ERR_CORRUPT,
                         "%s: chunk key %" PRIu64 " (segment %" PRIu64 ", offset %" PRIu64
                         "): checksum mismatch (stored %08x, read %08x)",
                         dir, key, segment, offset, crc, actual);
    return STRATA_OK;
}

strata_status store_read_payload(store *s, uint64_t segment, uint64_t offset, uint32_t length,
                                 uint32_t crc, uint64_t key, uint8_t *out, strata_error *err)
{
    strata_status st = store_read_span(s, segment, offset, length, key, out, err);
    return st ? st : store_check_payload(s->dir, segment, offset, length, crc, key, out, err);
}

/* ---- writing ------------------------------------------------------------------- */

static strata_status write_attribute(hid_t file, const char *name, uint64_t value,
                                     strata_error *err)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr =
        space < 0 ? -1 : H5Acreate2(file, name, H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_UINT64, &value);
    if (attr >= 0)
        H5Aclose(attr);
    if (space >= 0)
        H5Sclose(space);
    return rc < 0 ? store_hdf5_error(err, "cannot write attribute", name) : STRATA_OK;
}

/* rows_per_chunk > 0: chunked, byte-shuffled and deflated (HDF5's built-in
 * filters, which h5py reads without plugins). The chunk table of mostly uniform
 * chunks is very repetitive: this is what makes a uniform chunk cost a few bytes
 * instead of a whole row. One HDF5 chunk per fence block: a lookup reads one. */
static hid_t create_dataset(hid_t file, const char *name, hid_t type, uint64_t length,
                            uint64_t rows_per_chunk)
{
    hsize_t dims = length;
    hid_t space = H5Screate_simple(1, &dims, NULL);
    if (space < 0)
        return -1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* Never write fill values: every byte is written by some rank. */
    if (dcpl >= 0)
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (dcpl >= 0 && rows_per_chunk && length) {
        hsize_t chunk = length < rows_per_chunk ? length : rows_per_chunk;
        if (H5Pset_chunk(dcpl, 1, &chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            H5Pset_deflate(dcpl, 1) < 0) {
            H5Pclose(dcpl);
            dcpl = -1;
        }
    }
    hid_t dset =
        dcpl < 0 ? -1 : H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Sclose(space);
    return dset;
}

/* Collectively write this rank's [offset, offset + count) elements of dset, in
 * rounds so that no single MPI-IO call exceeds STORE_WRITE_ROUND bytes. */
static strata_status write_part(MPI_Comm comm, hid_t dset, hid_t type, size_t element,
                                uint64_t offset, uint64_t count, const void *data, const char *path,
                                strata_error *err)
{
    uint64_t per_round = STORE_WRITE_ROUND / element;
    uint64_t rounds = (count + per_round - 1) / per_round, max_rounds = 0;
    int rc = MPI_Allreduce(&rounds, &max_rounds, 1, MPI_UINT64_T, MPI_MAX, comm);
    if (rc != MPI_SUCCESS)
        return error_mpi(err, rc, "agreeing on write rounds");
    if (max_rounds == 0)
        max_rounds = 1;
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    strata_status st = STRATA_OK;
    if (dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0)
        st = store_hdf5_error(err, "cannot set collective transfer for", path);
    else if (strata_fault_point("segment-part"))
        st = error_set(err, STRATA_ERR_HDF5, "fault injected before writing %s", path);
    /* Agreed before each round's write, which every rank enters or none. */
    for (uint64_t r = 0; !(st = error_agree(comm, st, err)) && r < max_rounds; r++) {
        uint64_t begin = r * per_round < count ? r * per_round : count;
        uint64_t n = count - begin < per_round ? count - begin : per_round;
        hsize_t start = offset + begin, length = n, mem_length = n ? n : 1;
        hid_t file_space = H5Dget_space(dset);
        hid_t memory_space = H5Screate_simple(1, &mem_length, NULL);
        herr_t hr = file_space < 0 || memory_space < 0 ? -1 : 0;
        if (hr >= 0 && n)
            hr = H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &start, NULL, &length, NULL);
        else if (hr >= 0) {
            hr = H5Sselect_none(file_space);
            if (hr >= 0)
                hr = H5Sselect_none(memory_space);
        }
        if (hr < 0)
            st = store_hdf5_error(err, "cannot select the part to write of", path);
        /* Every rank takes part in every round, even with nothing to write. */
        if (!(st = error_agree(comm, st, err))) {
            hr = H5Dwrite(dset, type, memory_space, file_space, dxpl,
                          (const char *)data + begin * element);
            /* Read HDF5's error stack now: the next API call clears it. */
            if (hr < 0 && errno == ENOSPC) /* as MPI-IO left it; HDF5 says only "write failed" */
                st = error_set(err, STRATA_ERR_IO,
                               "cannot write %s: no space left on device (ENOSPC)", path);
            else if (hr < 0)
                st = store_hdf5_error(err, "cannot write", path);
        }
        if (file_space >= 0)
            H5Sclose(file_space);
        if (memory_space >= 0)
            H5Sclose(memory_space);
    }
    if (dxpl >= 0)
        H5Pclose(dxpl);
    /* The loop ends on an agreed status: a round that failed on one rank fails
     * the write on all, since the caller's next collective step depends on it. */
    return st;
}

typedef struct {
    uint64_t row_first, rows_total, payload_first, payload_total, payload_mine;
} segment_layout;

static strata_status plan_layout(MPI_Comm comm, uint64_t rows, uint64_t bytes, segment_layout *l,
                                 strata_error *err)
{
    uint64_t mine[2] = {rows, bytes}, before[2] = {0, 0}, total[2] = {0, 0};
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = MPI_Exscan(mine, before, 2, MPI_UINT64_T, MPI_SUM, comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(mine, total, 2, MPI_UINT64_T, MPI_SUM, comm);
    if (rc != MPI_SUCCESS)
        return error_mpi(err, rc, "placing segment rows and payloads");
    if (rank == 0) /* MPI_Exscan leaves rank 0's result undefined */
        before[0] = before[1] = 0;
    *l = (segment_layout){before[0], total[0], before[1], total[1], bytes};
    return STRATA_OK;
}

static void rebase_rows(store_row *rows, size_t n, uint64_t epoch, uint64_t payload_first)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].payload_segment == epoch)
            rows[i].payload_offset += payload_first;
        if (rows[i].lod_segment == epoch)
            rows[i].lod_offset += payload_first;
        if (rows[i].delta_depth && rows[i].delta_segment == epoch)
            rows[i].delta_offset += payload_first;
        rows[i].home = epoch;
        rows[i].index_home = 0; /* a written row carries its own summary */
        rows[i].row_crc = store_row_checksum(&rows[i]);
    }
}

static strata_status write_fence(MPI_Comm comm, hid_t file, const store_row *rows, size_t n,
                                 const segment_layout *l, const char *path, strata_error *err)
{
    uint64_t fences = (l->rows_total + STORE_FENCE_ROWS - 1) / STORE_FENCE_ROWS;
    hid_t dset = create_dataset(file, "fence", H5T_STD_U64LE, fences, 0);
    if (dset < 0)
        return store_hdf5_error(err, "cannot create /fence in", path);
    /* This rank holds the fence entries whose row falls in its row range. */
    uint64_t first = (l->row_first + STORE_FENCE_ROWS - 1) / STORE_FENCE_ROWS;
    uint64_t end = (l->row_first + n + STORE_FENCE_ROWS - 1) / STORE_FENCE_ROWS;
    uint64_t *keys = strata_malloc((size_t)(end - first + 1) * sizeof *keys);
    strata_status st = STRATA_OK;
    if (!keys)
        st = error_set(err, STRATA_ERR_NOMEM, "cannot allocate fence keys");
    for (uint64_t f = first; !st && f < end; f++)
        keys[f - first] = rows[f * STORE_FENCE_ROWS - l->row_first].key;
    /* Even after a local failure the collective write must be joined (by all
     * ranks or, for a segment without rows, by none: fences is global). */
    strata_status wst =
        fences ? write_part(comm, dset, H5T_NATIVE_UINT64, sizeof *keys, first,
                            st ? 0 : end - first, keys ? (void *)keys : (void *)rows, path, err)
               : STRATA_OK;
    free(keys);
    H5Dclose(dset);
    return st ? st : wst;
}

static strata_status write_segment_file(store *s, hid_t file, uint64_t epoch, int writers,
                                        store_row *rows, size_t n, const uint8_t *payload,
                                        const segment_layout *l, const char *path,
                                        strata_error *err)
{
    strata_status st = write_attribute(file, "strata_format", STRATA_FORMAT_VERSION, err);
    /* an index segment belongs to no commit: epoch 0, and its serial */
    if (!st)
        st = write_attribute(file, "epoch", store_is_index_segment(epoch) ? 0 : epoch, err);
    if (!st && store_is_index_segment(epoch))
        st = write_attribute(file, "index_serial", epoch & ~STORE_INDEX_SEGMENT, err);
    if (!st)
        st = write_attribute(file, "ranks", (uint64_t)writers, err);
    st = error_agree(s->comm, st, err);
    if (st)
        return st;
    hid_t rows_dset =
        create_dataset(file, "rows", s->row_file_type, l->rows_total, STORE_FENCE_ROWS);
    hid_t payload_dset = create_dataset(file, "payload", H5T_STD_U8LE, l->payload_total, 0);
    if (rows_dset < 0 || payload_dset < 0)
        st = store_hdf5_error(err, "cannot create datasets in", path);
    /* Rows go out already in the file's layout: parallel HDF5 writes filtered
     * datasets only collectively, and a type conversion would make it write
     * independently (store_row carries in-memory fields the file has not). */
    const size_t packed_size = H5Tget_size(s->row_file_type);
    uint8_t *packed = strata_malloc(n * packed_size + 1);
    if (!st && !packed)
        st = error_set(err, STRATA_ERR_NOMEM, "cannot pack %zu rows", n);
    for (size_t i = 0; packed && i < n; i++)
        pack_row(&rows[i], packed + i * packed_size);
    st = error_agree(s->comm, st, err);
    /* An empty dataset takes no write (HDF5 refuses I/O on zero-sized extents):
     * a compaction of a world that is all air has no rows. */
    if (!st && l->rows_total)
        st = write_part(s->comm, rows_dset, s->row_file_type, packed_size, l->row_first, n, packed,
                        path, err);
    free(packed);
    if (!st && l->payload_total)
        st = write_part(s->comm, payload_dset, H5T_NATIVE_UINT8, 1, l->payload_first,
                        l->payload_mine, payload ? (const void *)payload : (const void *)rows, path,
                        err);
    if (rows_dset >= 0)
        H5Dclose(rows_dset);
    if (payload_dset >= 0)
        H5Dclose(payload_dset);
    return st ? st : write_fence(s->comm, file, rows, n, l, path, err);
}

/* A full file system. Space running out inside HDF5's collective writes fails on
 * some ranks only, and a parallel HDF5 file whose writes failed cannot always be
 * closed alike on every rank (a hang between ranks, or a crash at MPI_Finalize on
 * the file left open). So rank 0 makes sure the segment fits before HDF5 creates
 * it (check_room: an upper bound of its size, rows, payload, fences and HDF5's
 * metadata), then, the file created, allocates that bound in it (reserve_room):
 * a disk that fills meanwhile no longer fails the writes. Beside it, rank 0 holds
 * a reserve (PATH.reserve, hold_room) for a file system where writes still fail
 * (one without fallocate): after a failure agreed by every rank, rank 0 empties
 * the half-written segment and frees the reserve, so that H5Fclose finds room
 * for HDF5's metadata and closes alike on every rank; then it removes the file
 * (no manifest names it). fsutil.c; docs/reliability.md. */
static void discard_segment(MPI_Comm comm, hid_t file, const char *path, const char *reserve)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) {
        if (file >= 0 && truncate(path, 0) != 0) {
            /* nothing to free: the close below reports nothing either way */
        }
        unlink(reserve);
    }
    MPI_Barrier(comm);
    if (file >= 0)
        H5Fclose(file);
    MPI_Barrier(comm);
    if (rank == 0)
        unlink(path);
}

/* An earlier write of this epoch that was never published (its commit, reindex or
 * compaction failed after step 3) is still open here: closed before the file is
 * rewritten, or its cached extents would be read (and HDF5 would hand them to any
 * reader of the path in this process). */
static void close_unpublished(store *s, uint64_t epoch)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->count; i++) {
        if (s->segments[i].epoch == epoch)
            segment_close(&s->segments[i]);
        else
            s->segments[kept++] = s->segments[i];
    }
    s->count = kept;
}

/* Rank 0 checks that the segment fits (an upper bound of its rows, payload, fences and
 * HDF5's metadata: *room) and holds the reserve for its close beside it. Collective:
 * on failure every rank returns it and nothing is left. */
static strata_status make_room(store *s, const segment_layout *l, const char *path,
                               const char *reserve, uint64_t *room, strata_error *err)
{
    int rank = 0;
    MPI_Comm_rank(s->comm, &rank);
    uint64_t fences = (l->rows_total + STORE_FENCE_ROWS - 1) / STORE_FENCE_ROWS;
    *room = l->payload_total + l->rows_total * H5Tget_size(s->row_file_type) + fences * (8 + 64) +
            ((uint64_t)1 << 16);
    /* The reserve for the close: HDF5's metadata (removed with the segment's
     * MPI-IO leftovers, seg-E.h5.*, by the next writer if this job dies) */
    const uint64_t reserve_bytes = fences * (8 + 64) + ((uint64_t)1 << 16);
    strata_status st = STRATA_OK;
    if (rank == 0)
        st = check_room(path, *room + reserve_bytes, err); /* H5Fcreate truncates it */
    if (rank == 0 && !st)
        st = hold_room(reserve, reserve_bytes, err);
    st = error_agree(s->comm, st, err);
    if (st && rank == 0)
        unlink(path), unlink(reserve);
    return st;
}

/* The segment's file created for parallel writes (a leftover of a commit that died
 * before its manifest is truncated) and, on rank 0, room bytes allocated in it.
 * Collective; *file is the file or -1. */
static strata_status create_segment(store *s, const char *path, uint64_t room, hid_t *file,
                                    strata_error *err)
{
    int rank = 0;
    MPI_Comm_rank(s->comm, &rank);
    *file = -1;
    MPI_Info hints = MPI_INFO_NULL;
    strata_status st = error_agree(s->comm, store_mpiio_hints(&hints, err), err);
    hid_t fapl = st ? -1 : parallel_access(s->comm, hints);
    if (hints != MPI_INFO_NULL)
        MPI_Info_free(&hints); /* H5Pset_fapl_mpio keeps its own copy */
    if (st)
        return st;
    *file = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (*file < 0)
        st = store_hdf5_error(err, "cannot create segment", path);
    if (!st && strata_fault_point("segment-created"))
        st = error_set(err, STRATA_ERR_IO, "fault injected after creating %s", path);
    if (!st && rank == 0)
        st = reserve_room(path, room, err);
    return error_agree(s->comm, st, err);
}

/* The written segment closed and made durable before rank 0 publishes the manifest
 * that names it: the file is closed first (H5Fclose writes the superblock last), then
 * it is fsynced. Each rank's fsync flushes what that rank wrote, aggregators'
 * collective-buffering writes included, on a parallel file system (where one client's
 * fsync does not flush another's) as on a local one; it replaces MPI_File_sync, which
 * would have to come before the close. A node's ranks share its page cache (one
 * kernel, one file system client), and fsync flushes the file's dirty pages whoever
 * wrote them: once every rank of the node has closed the file (a barrier of the
 * node's ranks), one of them fsyncs it for all. P fsyncs of one file per commit were
 * P synchronous round trips to a parallel file system's storage servers; they are now
 * one per node (docs/scaling.md). Collective. */
static strata_status finish_segment(store *s, hid_t file, const char *path, const char *reserve,
                                    strata_error *err)
{
    int rank = 0;
    MPI_Comm_rank(s->comm, &rank);
    strata_status st = STRATA_OK;
    if (H5Fclose(file) < 0)
        st = store_hdf5_error(err, "cannot close segment", path);
    /* What the reservation held past the segment's end, and the reserve, go. */
    if (rank == 0) {
        uint64_t size = 0;
        if (!st)
            st = file_size(path, &size, err);
        if (!st && truncate(path, (off_t)size) != 0)
            st = error_set(err, STRATA_ERR_IO, "cannot truncate %s: %s", path,
                           error_errno_text(errno));
        unlink(reserve);
    }
    int node_rank = 0;
    if (s->has_node &&
        (MPI_Barrier(s->node) != MPI_SUCCESS || MPI_Comm_rank(s->node, &node_rank) != MPI_SUCCESS))
        node_rank = 0; /* a failed barrier: this rank fsyncs itself */
    if (!st && node_rank == 0)
        st = fsync_path(path, err);
    if (!st && strata_fault_point("segment-written"))
        st = error_set(err, STRATA_ERR_IO, "fault injected after writing %s", path);
    st = error_agree(s->comm, st, err);
    if (st && rank == 0)
        unlink(path); /* no manifest names it */
    return st;
}

strata_status store_write_segment(store *s, uint64_t epoch, int ranks_writing, store_row *rows,
                                  size_t n, const uint8_t *payload, uint64_t payload_bytes,
                                  strata_error *err)
{
    char name[64], path[STRATA_PATH_MAX], reserve[STRATA_PATH_MAX + 16];
    manifest_segment_name(epoch, name, sizeof name);
    strata_status st = path_join(path, sizeof path, s->dir, name, err);
    snprintf(reserve, sizeof reserve, "%s.reserve", path);
    segment_layout layout = {0, 0, 0, 0, 0};
    if (!st)
        st = plan_layout(s->comm, n, payload_bytes, &layout, err);
    st = error_agree(s->comm, st, err);
    if (st)
        return st;
    rebase_rows(rows, n, epoch, layout.payload_first);
    close_unpublished(s, epoch);
    uint64_t room;
    hid_t file = -1;
    st = make_room(s, &layout, path, reserve, &room, err);
    if (st)
        return st;
    st = create_segment(s, path, room, &file, err);
    if (!st)
        st =
            write_segment_file(s, file, epoch, ranks_writing, rows, n, payload, &layout, path, err);
    st = error_agree(s->comm, st, err);
    if (st) {
        discard_segment(s->comm, file, path, reserve);
        return st;
    }
    st = finish_segment(s, file, path, reserve, err);
    if (!st)
        st = store_open_segments(s, &epoch, 1, err);
    return error_agree(s->comm, st, err);
}

void store_remove_unpublished(const store *s, uint64_t epoch)
{
    char name[64], path[STRATA_PATH_MAX];
    int rank = 0;
    MPI_Comm_rank(s->comm, &rank);
    manifest_segment_name(epoch, name, sizeof name);
    if (rank == 0 && !path_join(path, sizeof path, s->dir, name, NULL))
        unlink(path);
}
