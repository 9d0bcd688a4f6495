/* bench_router.c: time route_records on random records (default 1e6 per rank). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "morton.h"
#include "partition.h"
#include "router.h"
#include "splitmix.h"

/* Usage: bench_router [records per rank] [chunks per axis of the world box] */
int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t edge = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
    uint64_t box[3] = {edge, edge, edge}, state = 12345 + (uint64_t)rank;
    uint64_t *split = malloc(((size_t)size + 1) * sizeof *split);
    route_record *send = malloc(n * sizeof *send);
    if (!split || !send)
        MPI_Abort(MPI_COMM_WORLD, 1);
    partition_balanced(box, size, split);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&state);
        send[i] =
            (route_record){.key = morton_encode3((uint32_t)(r % edge), (uint32_t)((r >> 21) % edge),
                                                 (uint32_t)((r >> 42) % edge)),
                           .voxel = (uint32_t)i,
                           .material = (uint16_t)r};
    }
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        route_record *recv = NULL;
        size_t recv_n = 0;
        int *from = NULL;
        strata_error err;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        strata_status st = route_records(MPI_COMM_WORLD, STRATA_OK, split, send, n, NULL, &recv,
                                         &recv_n, &from, &err);
        double t = MPI_Wtime() - t0, slowest;
        MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (st != STRATA_OK && rank == 0)
            fprintf(stderr, "route_records: %s\n", err.message);
        best = slowest < best ? slowest : best;
        free(recv);
        free(from);
    }
    if (rank == 0)
        printf("route_records: %d ranks, %zu records per rank, box %llu^3: best of 5 %.4f s\n",
               size, n, (unsigned long long)edge, best);
    free(split);
    free(send);
    MPI_Finalize();
    return 0;
}
