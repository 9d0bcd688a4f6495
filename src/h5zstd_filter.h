/*
 * h5zstd_filter.h: the HDF5 filter callback for zstd (registered filter id 32015),
 * header-only so that the in-process registration (h5zstd.c, in libstrata) and
 * the standalone plugin (h5zstd_plugin.c, which must not link libstrata) share
 * one implementation.
 *
 * Compatible with the community zstd plugin (HDF5Plugin-Zstandard, hdf5plugin):
 * cd_values[0], when present, is the compression level; a chunk is one zstd frame.
 * The filter allocates its output with malloc and frees HDF5's buffer, as HDF5
 * expects; on any error it returns 0 and leaves *buf untouched.
 */
#ifndef STRATA_H5ZSTD_FILTER_H
#define STRATA_H5ZSTD_FILTER_H

#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <zstd.h>

/** Filter id of zstd in the HDF Group's registry. */
#define H5ZSTD_FILTER_ID 32015
/** Level used when the dataset's filter has no cd_values. */
#define H5ZSTD_DEFAULT_LEVEL 3
/** An HDF5 chunk is at most 4 GiB; a frame claiming more is refused. */
#define H5ZSTD_MAX_CHUNK_BYTES ((unsigned long long)UINT32_MAX)

/* Decompress a frame that does not record its size (streaming writers): grow the
 * output by doubling. Returns the size, or 0 on error (out untouched then). */
static inline size_t h5zstd_decompress_stream(const void *in, size_t nbytes, void **out,
                                              size_t *capacity)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t cap = nbytes < ((size_t)1 << 16) ? ((size_t)1 << 16) : 2 * nbytes;
    unsigned char *dst = malloc(cap);
    ZSTD_inBuffer input = {in, nbytes, 0};
    ZSTD_outBuffer output = {dst, cap, 0};
    size_t rc = 1;
    while (dctx && dst && rc != 0 && !ZSTD_isError(rc)) {
        if (output.pos == output.size) {
            if (cap >= H5ZSTD_MAX_CHUNK_BYTES)
                break;
            unsigned char *grown = realloc(dst, 2 * cap);
            if (!grown)
                break;
            dst = grown;
            cap *= 2;
            output.dst = dst;
            output.size = cap;
        }
        size_t before_in = input.pos, before_out = output.pos;
        rc = ZSTD_decompressStream(dctx, &output, &input);
        if (rc != 0 && input.pos == before_in && output.pos == before_out &&
            output.pos < output.size)
            break; /* truncated: no progress possible */
    }
    ZSTD_freeDCtx(dctx);
    if (rc != 0 || input.pos != input.size) {
        free(dst);
        return 0;
    }
    *out = dst;
    *capacity = cap;
    return output.pos;
}

/* Decompress *buf (nbytes); returns the content size, 0 on error. */
static inline size_t h5zstd_decompress(const void *in, size_t nbytes, void **out, size_t *capacity)
{
    unsigned long long size = ZSTD_getFrameContentSize(in, nbytes);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN)
        return h5zstd_decompress_stream(in, nbytes, out, capacity);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == 0 || size > H5ZSTD_MAX_CHUNK_BYTES)
        return 0;
    void *dst = malloc((size_t)size);
    if (!dst)
        return 0;
    size_t n = ZSTD_decompress(dst, (size_t)size, in, nbytes);
    if (ZSTD_isError(n) || n != size) {
        free(dst);
        return 0;
    }
    *out = dst;
    *capacity = (size_t)size;
    return n;
}

/* Compress nbytes at level into one frame with its content size and checksum. */
static inline size_t h5zstd_compress(const void *in, size_t nbytes, int level, void **out,
                                     size_t *capacity)
{
    size_t cap = ZSTD_compressBound(nbytes);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    void *dst = malloc(cap ? cap : 1);
    size_t n = (size_t)-1; /* a zstd error code until compression succeeds */
    if (cctx && dst &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)))
        n = ZSTD_compress2(cctx, dst, cap, in, nbytes);
    ZSTD_freeCCtx(cctx);
    if (!dst || ZSTD_isError(n)) {
        free(dst);
        return 0;
    }
    *out = dst;
    *capacity = cap;
    return n;
}

/**
 * The H5Z_func_t of filter 32015.
 * @param[in]     flags     H5Z_FLAG_REVERSE when reading (decompress)
 * @param[in]     cd_nelmts number of cd_values (0 or 1 used)
 * @param[in]     cd_values cd_values[0]: zstd level (as unsigned; negative levels wrap)
 * @param[in]     nbytes    valid bytes in *buf
 * @param[in,out] buf_size  allocated bytes of *buf
 * @param[in,out] buf       the chunk; replaced by a malloc'ed result on success
 * @return bytes of the result, 0 on failure
 */
static inline size_t h5zstd_filter(unsigned int flags, size_t cd_nelmts,
                                   const unsigned int cd_values[], size_t nbytes, size_t *buf_size,
                                   void **buf)
{
    void *out = NULL;
    size_t capacity = 0, n;
    if (!buf || !*buf || !buf_size)
        return 0;
    if (flags & H5Z_FLAG_REVERSE) {
        n = h5zstd_decompress(*buf, nbytes, &out, &capacity);
    } else {
        int level = cd_nelmts > 0 && cd_values ? (int)cd_values[0] : H5ZSTD_DEFAULT_LEVEL;
        n = h5zstd_compress(*buf, nbytes, level, &out, &capacity);
    }
    if (n == 0)
        return 0;
    free(*buf);
    *buf = out;
    *buf_size = capacity;
    return n;
}

/** Class of filter 32015 for H5Zregister and the plugin entry point. */
static const H5Z_class2_t h5zstd_class = {
    H5Z_CLASS_T_VERS, (H5Z_filter_t)H5ZSTD_FILTER_ID, 1, 1, "zstd", NULL, NULL, h5zstd_filter,
};

#endif
