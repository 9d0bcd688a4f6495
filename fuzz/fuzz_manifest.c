/*
 * fuzz_manifest.c: libFuzzer harness for the MANIFEST parser.
 *
 * Every input goes to manifest_parse as a whole file. The parser must never read
 * outside (data, size) or leak; on failure it leaves nothing allocated and sets
 * a message that names the manifest; on success the manifest must format and
 * parse back to the same bytes (a parsed manifest is always a writable one).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *         -I/usr/include/hdf5/openmpi -I/usr/lib/x86_64-linux-gnu/openmpi/include \
 *         fuzz/fuzz_manifest.c src/manifest.c src/error.c src/codec.c src/fault.c \
 *         src/fsutil.c $(mpicc -showme:link) -lz -lzstd -o fuzz_manifest
 *   ./fuzz_manifest -max_total_time=60 fuzz/corpus/manifest
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "manifest.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one(const char *data, size_t size);

/* The CRC gate stops almost every mutation at the checksum line, so each input
 * is also parsed with a valid checksum line appended: that reaches the line parser. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one((const char *)data, size);
    if (size > MANIFEST_MAX_BYTES)
        return 0;
    char *sealed = malloc(size + 32);
    if (!sealed)
        return 0;
    memcpy(sealed, data, size);
    int n = snprintf(sealed + size, 32, "checksum %08x\n", checksum_update(0, data, size));
    fuzz_one(sealed, size + (size_t)n);
    free(sealed);
    return 0;
}

static void fuzz_one(const char *data, size_t size)
{
    manifest m;
    strata_error err;
    strata_status st = manifest_parse(data, size, &m, &err);
    if (st != STRATA_OK) {
        require(m.split == NULL && m.segments == NULL && m.materials == NULL);
        require(err.status == st);
        require(st == STRATA_ERR_NOMEM || strstr(err.message, "MANIFEST") != NULL);
        return;
    }
    char *text = NULL;
    size_t length = 0;
    if (manifest_format(&m, &text, &length, &err) == STRATA_OK) {
        manifest again;
        require(manifest_parse(text, length, &again, &err) == STRATA_OK);
        char *text2 = NULL;
        size_t length2 = 0;
        require(manifest_format(&again, &text2, &length2, &err) == STRATA_OK);
        require(length2 == length && memcmp(text, text2, length) == 0);
        free(text2);
        manifest_free(&again);
        free(text);
    }
    manifest_free(&m);
}
