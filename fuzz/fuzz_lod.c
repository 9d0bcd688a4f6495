/*
 * fuzz_lod.c: libFuzzer harness for the LOD pyramid frame decoder (one pyramid,
 * a pack, a compact pack: docs/index.md).
 *
 * Input: byte 0 bit 0 picks the chunk edge (16 or 32), the rest is the content of
 * a pyramid frame (what zstd decompresses to); the harness wraps it in a zstd
 * frame (level 1, content size and checksum recorded) as a segment stores it.
 * lod_frame_content must never read or write outside its buffers and must refuse
 * every malformed content with STRATA_ERR_CORRUPT (or STRATA_ERR_VERSION); of a
 * content it accepts, every entry (each key of a pack) is parsed, and a parsed
 * pyramid's top cell agrees with its histogram. A compact pack (SLPC) the
 * library wrote again from the expanded pack (lod_pack) expands to the same.
 *
 *   fuzz/run.sh lod 60      (builds with clang -fsanitize=fuzzer,address,undefined)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "index/lod.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const int edge = (data[0] & 1) ? 32 : 16;
    const size_t length = size - 1;
    size_t bound = ZSTD_compressBound(length);
    uint8_t *frame = malloc(bound);
    require(frame != NULL);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    require(cctx != NULL);
    require(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)));
    size_t n = ZSTD_compress2(cctx, frame, bound, data + 1, length);
    ZSTD_freeCCtx(cctx);
    require(!ZSTD_isError(n));
    uint8_t *content = NULL;
    size_t content_size = 0;
    strata_error err;
    strata_status st = lod_frame_content(frame, n, edge, &content, &content_size, &err);
    require(st == STRATA_OK || st == STRATA_ERR_CORRUPT || st == STRATA_ERR_VERSION);
    if (st == STRATA_OK) {
        uint32_t count = 1;
        int pack = content_size >= 8 && !memcmp(content, LOD_PACK_MAGIC, 4);
        if (pack)
            memcpy(&count, content + 4, 4);
        for (uint32_t i = 0; i < count; i++) {
            uint64_t key = 0;
            if (pack)
                memcpy(&key, content + 8 + 8 * (size_t)i, 8);
            const uint8_t *entry;
            size_t entry_size;
            require(lod_content_entry(content, content_size, key, &entry, &entry_size, &err) ==
                    STRATA_OK);
            lod_pyramid pyr;
            lod_count *hist = NULL;
            size_t hist_n = 0;
            st = lod_parse(entry, entry_size, edge, &pyr, &hist, &hist_n, &err);
            require(st == STRATA_OK || st == STRATA_ERR_CORRUPT || st == STRATA_ERR_VERSION);
            if (st == STRATA_OK) {
                uint16_t dm;
                uint64_t dc;
                lod_dominant(hist, hist_n, &dm, &dc);
                size_t top = lod_cell_index(&pyr, pyr.levels, 0, 0, 0);
                require(pyr.mode[top] == dm && pyr.count[top] == dc);
                lod_pyramid_free(&pyr);
                free(hist);
            }
        }
        /* a compact pack that reads: packing its entries again gives a frame
         * whose content is the same expanded pack */
        if (pack && length >= 4 && !memcmp(data + 1, LOD_CPACK_MAGIC, 4)) {
            const uint8_t **entries = malloc(count * sizeof *entries);
            size_t *sizes = malloc(count * sizeof *sizes);
            uint64_t *keys = malloc(count * sizeof *keys);
            require(entries && sizes && keys);
            for (uint32_t i = 0; i < count; i++) {
                memcpy(&keys[i], content + 8 + 8 * (size_t)i, 8);
                require(lod_content_entry(content, content_size, keys[i], &entries[i], &sizes[i],
                                          &err) == STRATA_OK);
            }
            uint8_t *again = NULL, *back = NULL;
            size_t again_n = 0, back_size = 0;
            require(lod_pack(keys, entries, sizes, count, 1, &again, &again_n, &err) == STRATA_OK);
            require(lod_frame_content(again, again_n, edge, &back, &back_size, &err) == STRATA_OK);
            require(back_size == content_size && !memcmp(back, content, content_size));
            free(again);
            free(back);
            free(entries);
            free(sizes);
            free(keys);
        }
        free(content);
    }
    free(frame);
    return 0;
}
