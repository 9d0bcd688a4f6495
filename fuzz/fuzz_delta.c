/*
 * fuzz_delta.c: libFuzzer harness for the delta record decoder (docs/format.md,
 * "Delta records"): delta_apply, delta_changes and delta_chain_changes.
 *
 * Input: byte 0 picks the chunk edge (bit 0: 32, else 16) and the mode (bit 1).
 * Mode 0: a header made valid by the harness (magic, version 2 or with bit 2 version
 * 1, depth 1, count from bytes 1-2) followed by bytes 4.. as the body, so mutations
 * reach the body's parsers. Mode 1: bytes 4.. as changes (2 bytes voxel, 2 bytes
 * material, each 4 bytes) normalized and encoded by delta_encode (bit 3: zstd level
 * 1), which must decode to exactly those changes; then one byte (offset from bytes
 * 1-2) is flipped by byte 3, or with byte 3 bit 0 the record is cut there.
 * A record must be refused with STRATA_ERR_CORRUPT or STRATA_ERR_VERSION (a version-1
 * record is STRATA_ERR_ARG for delta_changes) or accepted; nothing outside the
 * record, the scratch and the voxels is read or written. An accepted record's
 * changes lie inside the chunk in ascending order, delta_apply writes exactly them,
 * and as a chain of one record delta_chain_changes hands the same changes over.
 *
 *   fuzz/run.sh delta 60      (builds with clang -fsanitize=fuzzer,address,undefined)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "delta.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

static int refused(strata_status st)
{
    return st == STRATA_ERR_CORRUPT || st == STRATA_ERR_VERSION;
}

typedef struct {
    const uint32_t *voxel;
    const uint16_t *material;
    size_t n, calls;
} expected_changes;

static int same_changes(void *ctx, const uint32_t *voxel, const uint16_t *material, size_t n)
{
    expected_changes *e = ctx;
    require(n == e->n);
    for (size_t i = 0; i < n; i++)
        require(voxel[i] == e->voxel[i] && material[i] == e->material[i]);
    e->calls++;
    return 1;
}

/* A record made from the input's changes by delta_encode, checked, then damaged. */
static uint8_t *encoded_record(const uint8_t *data, size_t size, int edge, uint8_t *scratch,
                               size_t *length)
{
    const size_t voxels = (size_t)edge * edge * edge;
    size_t n = (size - 4) / 4;
    if (n > delta_log_max(voxels))
        n = delta_log_max(voxels);
    if (n == 0)
        return NULL;
    uint64_t *log = malloc(n * sizeof *log);
    require(log != NULL);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = data + 4 + 4 * i;
        uint32_t v = (uint32_t)(c[0] | c[1] << 8) % (uint32_t)voxels;
        uint16_t m = (uint16_t)(c[2] | (data[0] & 4 ? c[3] << 8 : 0));
        log[i] = delta_log_entry(v, (uint32_t)i, m);
    }
    n = delta_log_normalize(log, n, voxels, scratch, chunk_scratch_size(edge));
    const delta_header h = {.depth = 1, .key = 7, .epoch = 3};
    const size_t capacity = delta_record_bound(edge, n);
    uint8_t *record = malloc(capacity);
    require(record != NULL);
    strata_error err;
    require(delta_encode(&h, log, n, edge, -1, data[0] & 8 ? 1 : 0, scratch, record, capacity,
                         length, &err) == STRATA_OK);
    const uint32_t *voxel;
    const uint16_t *material;
    size_t got;
    require(delta_changes(record, *length, edge, scratch, &voxel, &material, &got, &err) ==
                STRATA_OK &&
            got == n);
    for (size_t i = 0; i < n; i++)
        require(voxel[i] == log[i] >> 40 && material[i] == (uint16_t)log[i]);
    free(log);
    const size_t at = (size_t)(data[1] | data[2] << 8) % *length;
    if (data[3] & 1)
        *length = at; /* cut short */
    else
        record[at] ^= (uint8_t)(data[3] | 1);
    return record;
}

/* A valid version-1 or 2 header before the input's body bytes. */
static uint8_t *made_record(const uint8_t *data, size_t size, int edge, size_t *length)
{
    const size_t voxels = (size_t)edge * edge * edge;
    *length = DELTA_HEADER_BYTES + size - 4;
    uint8_t *record = calloc(*length, 1);
    require(record != NULL);
    memcpy(record, DELTA_MAGIC, 4);
    record[4] = (data[0] & 4) ? 1 : DELTA_VERSION;
    record[6] = 1; /* depth */
    const uint32_t count =
        1 + (uint32_t)(data[1] | data[2] << 8) % (uint32_t)(2 * delta_log_max(voxels));
    for (int i = 0; i < 4; i++)
        record[44 + i] = (uint8_t)(count >> (8 * i));
    memcpy(record + DELTA_HEADER_BYTES, data + 4, size - 4);
    return record;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    const int edge = (data[0] & 1) ? 32 : 16;
    const size_t voxels = (size_t)edge * edge * edge;
    uint8_t *scratch = malloc(chunk_scratch_size(edge));
    uint16_t *applied = calloc(voxels, sizeof *applied), *expect = calloc(voxels, sizeof *expect);
    require(scratch && applied && expect);
    size_t length = 0;
    uint8_t *record = (data[0] & 2) ? encoded_record(data, size, edge, scratch, &length)
                                    : made_record(data, size, edge, &length);
    if (!record)
        goto done;
    strata_error err;
    strata_status applied_st = delta_apply(record, length, edge, scratch, applied, &err);
    require(applied_st == STRATA_OK || refused(applied_st));
    const uint32_t *voxel;
    const uint16_t *material;
    size_t n = 0;
    strata_status st = delta_changes(record, length, edge, scratch, &voxel, &material, &n, &err);
    if (st == STRATA_ERR_ARG) { /* version 1: only applied */
        require(length >= 5 && record[4] == 1);
        goto done;
    }
    require(st == applied_st);
    if (st) {
        require(refused(st));
        goto done;
    }
    /* the changes: inside the chunk, ascending, exactly what delta_apply wrote */
    uint32_t *keep_voxel = malloc(n * sizeof *keep_voxel + 1);
    uint16_t *keep_material = malloc(n * sizeof *keep_material + 1);
    require(keep_voxel && keep_material);
    for (size_t i = 0; i < n; i++) {
        require(voxel[i] < voxels && (i == 0 || voxel[i] > voxel[i - 1]));
        keep_voxel[i] = voxel[i];
        keep_material[i] = material[i];
        expect[voxel[i]] = material[i];
    }
    require(memcmp(applied, expect, voxels * sizeof *applied) == 0);
    /* as a chain of one record: the same changes */
    uint8_t *chain = malloc(length + 4);
    require(chain != NULL);
    const uint32_t length32 = (uint32_t)length;
    memcpy(chain, &length32, 4);
    memcpy(chain + 4, record, length);
    expected_changes e = {keep_voxel, keep_material, n, 0};
    int stopped = 1;
    require(delta_chain_changes(chain, length + 4, 1, edge, scratch, same_changes, &e, &stopped,
                                &err) == STRATA_OK &&
            !stopped && e.calls == 1);
    free(chain);
    free(keep_voxel);
    free(keep_material);
done:
    free(record);
    free(scratch);
    free(applied);
    free(expect);
    return 0;
}
