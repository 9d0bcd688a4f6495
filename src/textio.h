/* textio.h: parsers for update files (text and binary) and point files. */
#ifndef STRATA_TEXTIO_H
#define STRATA_TEXTIO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Text update file: one update per line, "x y z material [expected]", fields
 * separated by blanks; '#' starts a comment; blank lines allowed. Integers are
 * decimal; coordinates are int64 >= 0, material and expected 0..65535.
 *
 * Binary update file (little endian):
 *   header 16 bytes: magic "STRUPD01" (8 bytes), uint64 record count
 *   records of 32 bytes: int64 x, int64 y, int64 z, uint16 material,
 *                        uint16 expected, uint8 has_expected (0|1), 3 zero bytes
 *   the file size must equal 16 + 32 * count exactly.
 *
 * Point file: "x y z" per line, comments and blank lines as above.
 */

#define TEXTIO_BINARY_MAGIC  "STRUPD01"
#define TEXTIO_BINARY_HEADER 16
#define TEXTIO_BINARY_RECORD 32

/**
 * Parse updates from a memory buffer holding whole lines of a text update file.
 * Not collective. The buffer need not be NUL-terminated; its last line may lack
 * a '\n'. A line with 4 fields is unconditional (has_expected 0, expected 0);
 * a 5th field makes it conditional. One trailing '\r' per line is ignored.
 * @param[in]  text      the bytes (may be NULL when length is 0)
 * @param[in]  length    bytes in text
 * @param[in]  line_base lines before text in the file: the first line of text is
 *                       line line_base + 1 in error messages
 * @param[in]  dims      the world's dims, or NULL: with them a coordinate at or past
 *                       them is STRATA_ERR_RANGE naming the line
 * @param[out] out       malloc'ed updates in input order, caller frees; NULL
 *                       when none were found or on failure
 * @param[out] n         number of updates (0 on failure)
 * @param[out] err       may be NULL
 * @return STRATA_OK; STRATA_ERR_PARSE naming the line ("line N: ...") and quoting
 *         it; STRATA_ERR_RANGE (with dims) likewise; STRATA_ERR_NOMEM
 */
strata_status textio_parse_updates(const char *text, size_t length, uint64_t line_base,
                                   const int64_t *dims, strata_update **out, size_t *n,
                                   strata_error *err);
/**
 * Parse binary records held in memory (no header: the caller validated it with
 * textio_check_binary_header). Not collective.
 * @param[in]  data        whole records, little endian
 * @param[in]  length      bytes in data, a multiple of TEXTIO_BINARY_RECORD
 * @param[in]  record_base 0-based index in the file of the first record of data;
 *                         errors say "record K (0-based)"
 * @param[in]  dims        the world's dims, or NULL (as textio_parse_updates)
 * @param[out] out         malloc'ed updates, caller frees; NULL when none or on failure
 * @param[out] n           number of updates (0 on failure)
 * @param[out] err         may be NULL
 * @return STRATA_OK; STRATA_ERR_PARSE for a partial record, a negative
 *         coordinate, has_expected other than 0/1 or non-zero padding; STRATA_ERR_NOMEM
 */
strata_status textio_parse_binary(const uint8_t *data, size_t length, uint64_t record_base,
                                  const int64_t *dims, strata_update **out, size_t *n,
                                  strata_error *err);
/**
 * Validate the header of a binary update file against the file's size. Not collective.
 * @param[in]  header    TEXTIO_BINARY_HEADER bytes (not read when file_size is smaller)
 * @param[in]  file_size the whole file's size in bytes
 * @param[out] count     the record count (0 on failure)
 * @param[out] err       may be NULL
 * @return STRATA_OK; STRATA_ERR_FORMAT for a short file, a wrong magic, or a size
 *         other than 16 + 32 * count
 */
strata_status textio_check_binary_header(const uint8_t *header, uint64_t file_size, uint64_t *count,
                                         strata_error *err);
/**
 * Parse a point file held in memory ("x y z" per line), with the rules and
 * errors of textio_parse_updates. Not collective.
 * @param[out] out malloc'ed n x 3 coordinates, caller frees; NULL when none or on failure
 */
strata_status textio_parse_points(const char *text, size_t length, uint64_t line_base,
                                  const int64_t *dims, int64_t (**out)[3], size_t *n,
                                  strata_error *err);
/**
 * This rank's slice of a file for parallel reading. Not collective (every rank
 * computes its own cuts, reading a few KiB around each with pread).
 * Text (binary == 0): rank r gets [*begin, *end), where the nominal cut
 * size * r / ranks moves forward to the next line start, so every line belongs
 * to exactly one rank, in order (a rank may get an empty slice). Binary: cuts
 * fall on record boundaries after the header, records shared evenly.
 * Line numbers for errors come from an MPI_Exscan of newline counts (the caller's).
 * @param[in]  path   the file
 * @param[in]  rank   0 <= rank < ranks
 * @param[in]  ranks  number of slices
 * @param[in]  binary nonzero for a binary update file
 * @param[out] begin  first byte of the slice
 * @param[out] end    one past its last byte
 * @param[out] err    may be NULL
 * @return STRATA_OK; STRATA_ERR_NOT_FOUND or STRATA_ERR_IO naming the path;
 *         STRATA_ERR_ARG; STRATA_ERR_FORMAT for a binary file of impossible size
 */
strata_status textio_slice(const char *path, int rank, int ranks, int binary, uint64_t *begin,
                           uint64_t *end, strata_error *err);
/** Count '\n' bytes in [text, text + length). */
uint64_t textio_count_lines(const char *text, size_t length);
/**
 * Tell a binary update file from a text one by its magic. Not collective.
 * @param[out] binary 1 when the file starts with TEXTIO_BINARY_MAGIC, else 0
 * @return STRATA_OK; STRATA_ERR_NOT_FOUND or STRATA_ERR_IO naming the path
 */
strata_status textio_is_binary(const char *path, int *binary, strata_error *err);
/**
 * Write updates as a binary update file, replacing path (for tests, bench and
 * tools). Not collective; not fsync'ed. A failed write removes the file.
 * @return STRATA_OK; STRATA_ERR_ARG for a negative coordinate; STRATA_ERR_IO
 */
strata_status textio_write_binary(const char *path, const strata_update *u, size_t n,
                                  strata_error *err);

#endif
