/* error.c: error slots, the thread's last error, and agreement across ranks. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local strata_error thread_error;

static const char *const status_names[STRATA_ERR_STATUS_COUNT] = {
    [STRATA_OK] = "success",
    [STRATA_ERR_ARG] = "invalid argument",
    [STRATA_ERR_RANGE] = "coordinate outside the world",
    [STRATA_ERR_NOMEM] = "out of memory",
    [STRATA_ERR_IO] = "I/O error",
    [STRATA_ERR_MPI] = "MPI error",
    [STRATA_ERR_HDF5] = "HDF5 error",
    [STRATA_ERR_FORMAT] = "malformed file (not a world, or not in the expected format)",
    [STRATA_ERR_CORRUPT] = "corrupted data (checksum mismatch)",
    [STRATA_ERR_VERSION] = "world written by a newer format version",
    [STRATA_ERR_EXISTS] = "world already exists",
    [STRATA_ERR_NOT_FOUND] = "not found",
    [STRATA_ERR_LOCKED] = "world is open for writing by another job",
    [STRATA_ERR_READ_ONLY] = "world is open read-only",
    [STRATA_ERR_PARSE] = "malformed input",
    [STRATA_ERR_OVERFLOW] = "size overflow",
    [STRATA_ERR_INTERRUPTED] = "interrupted by a signal",
    [STRATA_ERR_UNSYNCED] = "committed, but not known durable",
};

const char *strata_strerror(strata_status status)
{
    if ((int)status < 0 || status >= STRATA_ERR_STATUS_COUNT)
        return "unknown status";
    return status_names[status];
}

strata_status error_set(strata_error *err, strata_status status, const char *fmt, ...)
{
    strata_error local;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(local.message, sizeof local.message, fmt, ap);
    va_end(ap);
    local.status = status;
    if (err)
        *err = local;
    thread_error = local;
    return status;
}

void error_publish(const strata_error *err)
{
    if (err)
        thread_error = *err;
}

const char *error_thread_message(void)
{
    return thread_error.status == STRATA_OK && !thread_error.message[0] ? "no error"
                                                                        : thread_error.message;
}

void error_clear(strata_error *err)
{
    err->status = STRATA_OK;
    err->message[0] = '\0';
}

strata_status error_mpi(strata_error *err, int mpi_rc, const char *what)
{
    if (mpi_rc == MPI_SUCCESS)
        return STRATA_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "code %d", mpi_rc);
    return error_set(err, STRATA_ERR_MPI, "%s: %s", what, text);
}

strata_status error_agree(MPI_Comm comm, strata_status local, strata_error *err)
{
    int rank, size;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return error_set(err, STRATA_ERR_MPI, "cannot query the communicator");
    /* The lowest failing rank speaks for all: its status and message win. */
    int mine = local == STRATA_OK ? size : rank, first = size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (rc != MPI_SUCCESS)
        return error_mpi(err, rc, "agreeing on a collective status");
    if (first == size)
        return STRATA_OK;
    strata_error shared;
    if (rank == first) {
        shared = *err;
        shared.status = local;
        if (size > 1 && strncmp(err->message, "rank ", 5) != 0) {
            snprintf(shared.message, sizeof shared.message, "rank %d: %s", rank, err->message);
        }
    }
    rc = MPI_Bcast(&shared, (int)sizeof shared, MPI_BYTE, first, comm);
    if (rc != MPI_SUCCESS)
        return error_mpi(err, rc, "sharing a collective error");
    *err = shared;
    error_publish(err);
    return shared.status;
}

const char *error_errno_text(int e)
{
    return e == ENOSPC ? "no space left on device (ENOSPC)" : strerror(e);
}
