/* fsutil.c: fsync, tree removal and path helpers. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static strata_status fsync_open(const char *path, int flags, strata_error *err)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return error_set(err, STRATA_ERR_IO, "cannot fsync %s: %s", path, strerror(saved));
    return STRATA_OK;
}

strata_status fsync_directory(const char *dir, strata_error *err)
{
    return fsync_open(dir, O_RDONLY | O_DIRECTORY, err);
}

strata_status fsync_path(const char *path, strata_error *err)
{
    return fsync_open(path, O_RDONLY, err);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

strata_status remove_tree(const char *path, strata_error *err)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return error_set(err, STRATA_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return STRATA_OK;
}

strata_status path_join(char *out, size_t size, const char *dir, const char *name,
                        strata_error *err)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return error_set(err, STRATA_ERR_ARG, "path too long: %s/%s", dir, name);
    return STRATA_OK;
}

strata_status file_size(const char *path, uint64_t *size, strata_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return error_set(err, errno == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO,
                         "cannot stat %s: %s", path, strerror(errno));
    *size = (uint64_t)st.st_size;
    return STRATA_OK;
}

static strata_status room_error(const char *path, uint64_t bytes, int rc, strata_error *err)
{
    if (rc == ENOSPC)
        return error_set(err, STRATA_ERR_IO,
                         "no space left on device (ENOSPC) for %s: it needs up to %llu bytes", path,
                         (unsigned long long)bytes);
    if (rc && rc != EOPNOTSUPP && rc != EINVAL)
        return error_set(err, STRATA_ERR_IO, "cannot allocate %s: %s", path, strerror(rc));
    return STRATA_OK;
}

strata_status check_room(const char *path, uint64_t bytes, strata_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    int rc = posix_fallocate(fd, 0, (off_t)bytes);
    if (ftruncate(fd, 0) != 0 && !rc)
        rc = errno;
    close(fd);
    return room_error(path, bytes, rc, err);
}

strata_status hold_room(const char *path, uint64_t bytes, strata_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    int rc = posix_fallocate(fd, 0, (off_t)bytes);
    close(fd);
    return room_error(path, bytes, rc, err);
}

strata_status reserve_room(const char *path, uint64_t bytes, strata_error *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set(err, STRATA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    int rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)bytes) ? errno : 0;
    close(fd);
    return room_error(path, bytes, rc, err);
}
