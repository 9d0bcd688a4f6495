/* fsutil.h: small POSIX file helpers with errors that name the path. */
#ifndef STRATA_FSUTIL_H
#define STRATA_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define STRATA_PATH_MAX 4096

/** fsync a directory so that renames and creations inside it are durable. */
strata_status fsync_directory(const char *dir, strata_error *err);
/** fsync a file by path. */
strata_status fsync_path(const char *path, strata_error *err);
/** Remove a directory tree (no symlinks followed). */
strata_status remove_tree(const char *path, strata_error *err);
/** Join dir and name into out; STRATA_ERR_ARG if it does not fit. */
strata_status path_join(char *out, size_t size, const char *dir, const char *name,
                        strata_error *err);
/** Size of a file in bytes. */
strata_status file_size(const char *path, uint64_t *size, strata_error *err);

/** Whether the file system holding PATH has room for BYTES more: allocates them in PATH
 *  (created or truncated) with posix_fallocate, then truncates PATH to 0 bytes. ENOSPC is
 *  STRATA_ERR_IO naming it and PATH; a file system without fallocate is not checked. */
strata_status check_room(const char *path, uint64_t bytes, strata_error *err);
/** check_room, but PATH keeps the BYTES allocated (a reserve to free when space runs out). */
strata_status hold_room(const char *path, uint64_t bytes, strata_error *err);
/** Allocate the first BYTES of the existing file PATH without changing its size
 *  (fallocate, FALLOC_FL_KEEP_SIZE): writes within them cannot run out of space.
 *  Truncating the file releases what lies past its end. Errors as check_room's. */
strata_status reserve_room(const char *path, uint64_t bytes, strata_error *err);

#endif
