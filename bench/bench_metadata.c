/* bench_metadata: the metadata a rank holds for a world of 1,000,000 stored chunks.
 *
 *   mpirun -n W bench_metadata DIR --create     write the world (1600^3 voxels, chunk 16,
 *                                               every chunk uniform granite) at W ranks
 *   mpirun -n R bench_metadata DIR              open it at R ranks, print the largest
 *                                               rank's metadata bytes (strata_world_info)
 *
 * The world needs about 5 MB on disk. Metadata is the rank's own chunk-table rows,
 * the splitters, each live segment's fence and the cache tables: it must fall as
 * ranks grow (issue 3).
 */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "strata.h"

enum { GRANITE = 7 };

static strata_status granite(const int64_t bounds[6], int edge, uint16_t *voxels, void *ctx,
                             char *message)
{
    (void)bounds, (void)ctx, (void)message;
    size_t n = (size_t)edge * (size_t)edge * (size_t)edge;
    for (size_t i = 0; i < n; i++)
        voxels[i] = GRANITE;
    return STRATA_OK;
}

static int failed(const char *what, strata_status st, const strata_world *w)
{
    fprintf(stderr, "bench_metadata: %s: %s: %s\n", what, strata_strerror(st),
            strata_last_error(w));
    return 1;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2 || (argc > 2 && strcmp(argv[2], "--create"))) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_metadata DIR [--create]\n");
        MPI_Finalize();
        return 2;
    }
    const char *dir = argv[1];
    strata_world *w = NULL;
    strata_status st;
    int rc = 0;
    if (argc > 2) {
        strata_config cfg;
        strata_config_init(&cfg);
        cfg.dims[0] = cfg.dims[1] = cfg.dims[2] = 1600;
        cfg.chunk_edge = 16;
        double t0 = MPI_Wtime();
        st = strata_world_create(MPI_COMM_WORLD, dir, &cfg, NULL, STRATA_CREATE_FORCE, &w);
        if (!st)
            st = strata_fill(w, NULL, granite, NULL);
        if (!st)
            st = strata_commit(w, NULL);
        if (st)
            rc = failed("writing the world", st, w);
        else if (rank == 0)
            printf("wrote %s: 1600^3 voxels, chunk 16, 1,000,000 uniform chunks, %d ranks, "
                   "%.1f s\n",
                   dir, size, MPI_Wtime() - t0);
    } else {
        st = strata_world_open(MPI_COMM_WORLD, dir, STRATA_READ, NULL, &w);
        strata_info info;
        if (!st)
            st = strata_world_info(w, &info);
        if (st)
            rc = failed("opening the world", st, w);
        else if (rank == 0)
            printf("metadata per rank (largest rank): %" PRIu64 " bytes at %d ranks "
                   "(%" PRIu64 " stored chunks, %" PRIu64 " segment bytes)\n",
                   info.metadata_bytes, size, info.chunks_uniform + info.chunks_dense,
                   info.stored_bytes);
    }
    if (w)
        strata_world_close(w);
    MPI_Finalize();
    return rc;
}
