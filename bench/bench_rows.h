/* bench_rows.h: what every benchmark of the suite (bench_strata.c, bench_hdf5.c)
 * shares: the run's state, rows and their recording, timing agreement and a
 * deterministic generator. The suite (bench_suite.h) runs the benchmarks; they
 * include only this header, never the suite's. */
#ifndef STRATA_BENCH_ROWS_H
#define STRATA_BENCH_ROWS_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "strata.h"

/** Which figure of a row is better. */
enum { BENCH_HIGHER_IS_BETTER = 0, BENCH_LOWER_IS_BETTER = 1 };

/** Most repetitions a row keeps (best-of-N). */
#define BENCH_SAMPLES_MAX 16
#define BENCH_TEXT_MAX    256

/** One measured figure. Text fields are plain ASCII without quotes or backslashes. */
typedef struct {
    char id[64];               /**< stable name, e.g. "update_uniform_1e6" */
    char group[32];            /**< table it belongs to: updates, commit, storage, reads, peer... */
    char what[BENCH_TEXT_MAX]; /**< what was timed, in words */
    char volume[BENCH_TEXT_MAX];  /**< the world or dataset */
    char pattern[BENCH_TEXT_MAX]; /**< the access pattern */
    char peer[32];                /**< "strata", "hdf5", "openvdb", "zstd" */
    char unit[32];                /**< unit of value */
    char limit[BENCH_TEXT_MAX];   /**< what limits the figure (may be empty) */
    char target[64];              /**< the figure the issue asks for (may be empty) */
    char compare[3][64];          /**< ids of peer rows to give a ratio against */
    int ranks;
    int durable;  /**< 1 when the timed work ended with data on disk (fsync) */
    int better;   /**< BENCH_HIGHER_IS_BETTER or BENCH_LOWER_IS_BETTER */
    double value; /**< the figure (best of the samples) */
    double samples[BENCH_SAMPLES_MAX];
    int sample_count;
    uint64_t count; /**< operations or bytes behind the figure (0 if none) */
} bench_row;

/** The state of one suite run. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    int quick;         /**< 1: small sizes, finishes in well under a minute */
    int verbose;       /**< 1: rank 0 logs each row on stderr */
    char dir[3072];    /**< scratch directory (worlds and HDF5 files) */
    char command[512]; /**< the command line, recorded with each row */
    char only[256];    /**< comma-separated groups to run (empty: all); see bench_wants */
    int64_t dims[3];   /**< the terrain world measured */
    int chunk_edge;
    uint64_t seed;
    bench_row *rows;
    size_t row_count, row_capacity;
    strata_error error;
} bench;

/** A row with the common fields filled in (id, group, unit, ranks, compare empty). */
bench_row bench_row_start(const bench *b, const char *id, const char *group, const char *unit,
                          int better);
/**
 * Set a row's value from samples (the best one: max or min by row->better) and
 * add it to the results; rank 0 logs it. Local (call on every rank with the same
 * samples, normally agreed by bench_slowest).
 */
strata_status bench_add(bench *b, bench_row *row, const double *samples, int n);
/** The slowest rank's seconds (MPI_MAX). Collective. */
double bench_slowest(const bench *b, double seconds);
/** "512 x 512 x 256 terrain (seed 1, chunk 32)" for the suite's world. */
void bench_volume_text(const bench *b, char *out, size_t size);
/** Deterministic 64-bit generator (splitmix64). */
uint64_t bench_random(uint64_t *state);
/** Uniform integer in [0, n). */
static inline int64_t bench_random_below(uint64_t *state, int64_t n)
{
    return (int64_t)(bench_random(state) % (uint64_t)n);
}

/** 1 when group (commit, storage, updates, reads, index, extract, hdf5) is to run. */
int bench_wants(const bench *b, const char *group);
/** Bytes of every file in a directory (a world's: segments, MANIFEST, locks). Rank 0. */
strata_status bench_directory_bytes(bench *b, const char *path, uint64_t *bytes);

#endif
