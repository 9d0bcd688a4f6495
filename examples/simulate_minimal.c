/* simulate_minimal.c: the smallest simulation on libstrata.
 *
 *   mpirun -np 4 ./simulate_minimal WORLD [STEPS]
 *
 * Creates WORLD (64 x 64 x 32 voxels of generated terrain) if it does not exist,
 * then every step every rank drops sand on random columns anywhere in the world:
 * it finds each column's surface with one routed read (strata_query_points),
 * stages a conditional update just above it (strata_stage_expect: applied only if
 * the voxel is still what this rank saw), and the library routes the updates to
 * the ranks owning them (strata_flush). It commits at the end, then prints the
 * epoch and the number of sand voxels added.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <strata.h>
#include <sys/stat.h>

enum { AIR = 0, WATER = 1, SAND = 3, COLUMNS = 16 };

#define CHECK(call)                                                                                \
    do {                                                                                           \
        strata_status st_ = (call);                                                                \
        if (st_ != STRATA_OK) {                                                                    \
            fprintf(stderr, "simulate_minimal: %s: %s\n", strata_strerror(st_),                    \
                    strata_last_error(w));                                                         \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

static strata_world *open_or_create(const char *path)
{
    strata_world *w = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0) {
        CHECK(strata_world_open(MPI_COMM_WORLD, path, STRATA_WRITE, NULL, &w));
        return w;
    }
    strata_config cfg;
    strata_config_init(&cfg);
    cfg.dims[0] = 64, cfg.dims[1] = 64, cfg.dims[2] = 32;
    cfg.chunk_edge = 16;
    CHECK(strata_world_create(MPI_COMM_WORLD, path, &cfg, NULL, 0, &w));
    CHECK(strata_generate_terrain(w, 42));
    CHECK(strata_commit(w, NULL));
    return w;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    strata_world *w = NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: simulate_minimal WORLD [STEPS]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int steps = argc > 2 ? atoi(argv[2]) : 5, rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    w = open_or_create(argv[1]);
    strata_config cfg;
    CHECK(strata_world_config(w, &cfg));
    const int64_t height = cfg.dims[2];
    int64_t(*points)[3] = malloc(COLUMNS * (size_t)height * sizeof *points);
    uint16_t *values = malloc(COLUMNS * (size_t)height * sizeof *values);
    int64_t xy[COLUMNS][2];
    uint64_t applied = 0;
    srand(1000u + (unsigned)rank);
    for (int step = 0; step < steps; step++) {
        /* Read whole columns: the owners answer, wherever the columns are. */
        for (int c = 0; c < COLUMNS; c++) {
            xy[c][0] = rand() % cfg.dims[0];
            xy[c][1] = rand() % cfg.dims[1];
            for (int64_t z = 0; z < height; z++) {
                int64_t *p = points[c * height + z];
                p[0] = xy[c][0], p[1] = xy[c][1], p[2] = z;
            }
        }
        CHECK(
            strata_query_points(w, (const int64_t(*)[3])points, COLUMNS * (size_t)height, values));
        for (int c = 0; c < COLUMNS; c++) {
            const uint16_t *col = values + c * height;
            int64_t top = height - 1;
            while (top >= 0 && (col[top] == AIR || col[top] == WATER))
                top--;
            if (top + 1 < height)
                CHECK(strata_stage_expect(w, xy[c][0], xy[c][1], top + 1, SAND, col[top + 1]));
        }
        strata_batch_stats stats;
        CHECK(strata_flush(w, &stats));
        applied += stats.applied;
    }
    strata_commit_stats commit;
    CHECK(strata_commit(w, &commit));
    if (rank == 0)
        printf("epoch %llu, %llu sand voxels added in %d steps\n", (unsigned long long)commit.epoch,
               (unsigned long long)applied, steps);
    free(points);
    free(values);
    CHECK(strata_world_close(w));
    MPI_Finalize();
    return 0;
}
