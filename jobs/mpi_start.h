/* mpi_start.h: MPI_Init_thread for the programs built on libstrata (the jobs,
 * the tests), not used by the library itself (which never initialises MPI).
 *
 * Under AddressSanitizer, Open MPI's start-up allocations live until exit by
 * design: they are not Strata's leaks. Making LeakSanitizer ignore them here
 * (__lsan_disable on this thread) spares it matching thousands of them against
 * tests/lsan.supp at every exit, which took about a second of CPU per process.
 * Allocations Open MPI makes later, or on its own threads, still go through
 * the suppressions.
 */
#ifndef STRATA_MPI_START_H
#define STRATA_MPI_START_H

#include <mpi.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

static inline int mpi_start(int *argc, char ***argv, int required, int *provided)
{
#ifdef __SANITIZE_ADDRESS__
    __lsan_disable();
#endif
    int rc = MPI_Init_thread(argc, argv, required, provided);
#ifdef __SANITIZE_ADDRESS__
    __lsan_enable();
#endif
    return rc;
}

#endif
