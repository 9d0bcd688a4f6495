#include "mpi_common.h"
#include "mpi_start.h"
#include "splitmix.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int mt_rank, mt_size, mt_failures;

const char *mt_init(int *argc, char ***argv)
{
    int provided;
    mpi_start(argc, argv, MPI_THREAD_SINGLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &mt_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mt_size);
    const char *dir = *argc > 1 ? (*argv)[1] : ".";
    if (mt_rank == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot create %s\n", dir);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return dir;
}

int mt_finish(const char *name)
{
    int total = 0;
    MPI_Allreduce(&mt_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (mt_rank == 0)
        fprintf(stderr, "%s: %d ranks, %d failures\n", name, mt_size, total);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}

uint64_t mt_random(uint64_t *state)
{
    return splitmix64(state);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void mt_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void mt_fresh_path(const char *dir, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    if (mt_rank == 0)
        mt_remove_tree(path);
    MPI_Barrier(MPI_COMM_WORLD);
}
