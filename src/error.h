/* error.h: status values, error messages with context, and agreement across ranks. */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#include "strata.h"

/** An error slot: a status and a message naming what was wrong. */
typedef struct {
    strata_status status;
    char message[STRATA_ERROR_MAX];
} strata_error;

/**
 * Record a failure in err (may be NULL: then only the thread's slot) and in the
 * calling thread's last-error slot. Returns status, so callers can write
 * `return error_set(err, STRATA_ERR_IO, "open %s: %s", path, strerror(errno));`.
 */
strata_status error_set(strata_error *err, strata_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Copy err into the thread's last-error slot. */
void error_publish(const strata_error *err);
/** The thread's last-error message. */
const char *error_thread_message(void);
/** Clear err to STRATA_OK. */
void error_clear(strata_error *err);

/**
 * Agree on the outcome of a collective step. Collective over comm. Every rank
 * passes its local status; if any rank failed, every rank returns the status of
 * the lowest failing rank and err receives that rank's message (prefixed with
 * "rank R: "). Returns STRATA_ERR_MPI if the agreement itself fails.
 */
strata_status error_agree(MPI_Comm comm, strata_status local, strata_error *err);

/** Wrap an MPI return code: STRATA_OK or STRATA_ERR_MPI with the MPI error string. */
strata_status error_mpi(strata_error *err, int mpi_rc, const char *what);

/** strerror(e), except that a full file system is named by its errno as well:
 *  "no space left on device (ENOSPC)" (what the full-disk tests look for). */
const char *error_errno_text(int e);

#endif
