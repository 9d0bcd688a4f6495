/* mpi_common.h: tiny harness for MPI tests: failures counted on every rank, agreed at the end. */
#ifndef STRATA_MPI_COMMON_H
#define STRATA_MPI_COMMON_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

extern int mt_rank, mt_size, mt_failures;

/** Check a condition; on failure print file:line, rank and message, and count it. */
#define MT_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: rank %d: check failed: %s: ", __FILE__, __LINE__, mt_rank,     \
                    #cond);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            mt_failures++;                                                                         \
        }                                                                                          \
    } while (0)

/** MPI_Init, rank/size; returns argv[1] (a work directory) or "." */
const char *mt_init(int *argc, char ***argv);
/** Agree on failures, print a summary on rank 0, MPI_Finalize; returns the exit code. */
int mt_finish(const char *name);
/** Deterministic 64-bit generator (splitmix64). */
uint64_t mt_random(uint64_t *state);
/** Remove a directory tree (rank 0 only; used to reset a test world). */
void mt_remove_tree(const char *path);
/** path = dir/name, removed by rank 0 before every rank goes on: a fresh place for a
 *  test world. Collective over MPI_COMM_WORLD. */
void mt_fresh_path(const char *dir, const char *name, char *path, size_t size);

#endif
