/*
 * fuzz_codec.c: libFuzzer harness for the chunk payload decoder.
 *
 * Input: byte 0 picks the codec (its value modulo 4: 0 uniform, which must be
 * refused, 1 shuffle, 2 palette, 3 an unknown codec id taken from byte 0
 * itself), byte 1 bit 0 picks the chunk edge (16 or 32), the rest is the
 * payload as stored in a segment. chunk_decode must never read or write outside
 * its buffers and must refuse every malformed payload with STRATA_ERR_CORRUPT.
 * A payload it accepts must survive a round trip: encoding the decoded voxels
 * with the same codec and decoding again gives the same voxels.
 *
 *   fuzz/run.sh codec 60      (builds with clang -fsanitize=fuzzer,address,undefined)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int selector = data[0] & 3;
    int codec = selector == 3 ? 3 + (data[0] >> 2) : selector;
    int edge = (data[1] & 1) ? 32 : 16;
    const uint8_t *payload = data + 2;
    size_t length = size - 2;
    size_t voxels = (size_t)edge * edge * edge;

    /* Copy the payload to an exact-size buffer so ASan sees any overread. */
    uint8_t *copy = malloc(length ? length : 1);
    void *scratch = malloc(chunk_scratch_size(edge));
    uint16_t *out = malloc(voxels * sizeof *out);
    uint16_t *again = malloc(voxels * sizeof *again);
    uint8_t *encoded = malloc(chunk_encode_bound(edge));
    require(copy && scratch && out && again && encoded);
    if (length)
        memcpy(copy, payload, length);

    strata_error err;
    strata_status st = chunk_decode(length ? copy : NULL, length, codec, edge, scratch, out, &err);
    if (codec != CODEC_SHUFFLE && codec != CODEC_PALETTE)
        require(st == STRATA_ERR_CORRUPT);
    require(st == STRATA_OK || st == STRATA_ERR_CORRUPT);
    if (st != STRATA_OK)
        require(err.status == st && err.message[0] != '\0');

    if (st == STRATA_OK) {
        chunk_encoding enc;
        st = chunk_encode_as(out, edge, 1, codec, scratch, encoded, &enc, &err);
        /* A decoded palette chunk holds at most CODEC_PALETTE_MAX values. */
        require(st == STRATA_OK);
        require(enc.codec == codec && enc.length > 0 && enc.length <= chunk_encode_bound(edge));
        require(chunk_decode(encoded, enc.length, enc.codec, edge, scratch, again, &err) ==
                STRATA_OK);
        require(memcmp(out, again, voxels * sizeof *out) == 0);
    }
    free(copy);
    free(scratch);
    free(out);
    free(again);
    free(encoded);
    return 0;
}
