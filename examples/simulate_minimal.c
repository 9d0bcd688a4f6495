/* simulate_minimal.c: the smallest simulation on libstrata, owner-computes with halos.
 *
 *   mpirun -np 4 ./simulate_minimal WORLD [STEPS]
 *
 * Creates WORLD (64 x 64 x 32 voxels of generated terrain) if it does not exist.
 * Each rank asks for its own domain (strata_domain_boxes: the blocks of chunks it
 * owns). Every step it reads each block plus a one-voxel halo into a dense array
 * (strata_read_boxes: the halo comes from the neighbours' owners), drops sand on
 * every fourth surface column of the block (the voxel above the ground, chosen
 * by position and step, so any rank count gives the same world) and writes the
 * block back (strata_write_boxes). Only a block's owner writes it, so no two
 * ranks write one voxel. It commits at the end, then prints the epoch and the
 * number of sand voxels added.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <strata.h>
#include <sys/stat.h>

enum { AIR = 0, WATER = 1, SAND = 3 };

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

static int is_ground(uint16_t m)
{
    return m != AIR && m != WATER;
}

/* Drop sand on the block inside the halo'd box `in`; returns the voxels changed. */
static uint64_t drop_sand(const int64_t block[6], const int64_t box[6], const uint16_t *in,
                          uint16_t *out, int step)
{
    const int64_t nx = box[3] - box[0], ny = box[4] - box[1];
    const int64_t bx = block[3] - block[0], by = block[4] - block[1];
    uint64_t changed = 0;
    for (int64_t z = block[2]; z < block[5]; z++)
        for (int64_t y = block[1]; y < block[4]; y++)
            for (int64_t x = block[0]; x < block[3]; x++) {
                uint16_t v = in[((z - box[2]) * ny + (y - box[1])) * nx + (x - box[0])];
                /* Below the world counts as ground; z - 1 is in the halo otherwise. */
                int ground_below =
                    z == 0 ||
                    is_ground(in[((z - 1 - box[2]) * ny + (y - box[1])) * nx + (x - box[0])]);
                uint16_t next = v;
                if (!is_ground(v) && ground_below && (x + 2 * y + step) % 4 == 0)
                    next = SAND, changed++;
                out[((z - block[2]) * by + (y - block[1])) * bx + (x - block[0])] = next;
            }
    return changed;
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
    /* This rank's domain, and each block grown by a one-voxel halo (clipped). */
    int64_t(*blocks)[6] = NULL;
    size_t n = 0;
    CHECK(strata_domain_boxes(w, 4, &blocks, &n));
    int64_t(*boxes)[6] = malloc((n ? n : 1) * sizeof *boxes);
    uint16_t **in = malloc((n ? n : 1) * sizeof *in), **out = malloc((n ? n : 1) * sizeof *out);
    if (!boxes || !in || !out)
        MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = 0; i < n; i++) {
        int64_t voxels = 1, block_voxels = 1;
        for (int a = 0; a < 3; a++) {
            boxes[i][a] = blocks[i][a] > 0 ? blocks[i][a] - 1 : 0;
            boxes[i][a + 3] = blocks[i][a + 3] < cfg.dims[a] ? blocks[i][a + 3] + 1 : cfg.dims[a];
            voxels *= boxes[i][a + 3] - boxes[i][a];
            block_voxels *= blocks[i][a + 3] - blocks[i][a];
        }
        in[i] = malloc((size_t)voxels * sizeof **in);
        out[i] = malloc((size_t)block_voxels * sizeof **out);
        if (!in[i] || !out[i])
            MPI_Abort(MPI_COMM_WORLD, 2);
    }
    uint64_t added = 0;
    for (int step = 0; step < steps; step++) {
        /* Every read of a step comes before any write: each rank sees the old state. */
        CHECK(strata_read_boxes(w, (const int64_t(*)[6])boxes, n, 0, in, NULL));
        for (size_t i = 0; i < n; i++)
            added += drop_sand(blocks[i], boxes[i], in[i], out[i], step);
        CHECK(strata_write_boxes(w, (const int64_t(*)[6])blocks, n, (const uint16_t *const *)out,
                                 NULL, NULL));
    }
    strata_commit_stats commit;
    CHECK(strata_commit(w, &commit));
    MPI_Allreduce(MPI_IN_PLACE, &added, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("epoch %llu, %llu sand voxels added in %d steps\n", (unsigned long long)commit.epoch,
               (unsigned long long)added, steps);
    for (size_t i = 0; i < n; i++)
        free(in[i]), free(out[i]);
    free(in), free(out), free(boxes), free(blocks);
    CHECK(strata_world_close(w));
    MPI_Finalize();
    return 0;
}
