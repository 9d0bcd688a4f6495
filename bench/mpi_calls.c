/*
 * mpi_calls.c: an MPI profiling shim (the standard PMPI interface) counting the
 * collective calls a program makes, and the time each rank spends in them.
 *
 * LD_PRELOADed into every rank (`mpirun -x LD_PRELOAD=build/bench/mpi_calls.so`),
 * it wraps the collectives Strata and HDF5 call (communication, communicator
 * creation, collective MPI-IO). A program marks its phases with MPI_Pcontrol:
 * MPI_Pcontrol(1, "name") makes rank 0 print the calls and seconds of the phase
 * just ended (its own: every rank makes the same collective calls) and restarts
 * the counters; MPI_Pcontrol(0) pauses counting (the program's own calls between
 * the ones it measures), MPI_Pcontrol(2) resumes it. Without the shim
 * MPI_Pcontrol does nothing. Used for the figures of tests/mpi/many_ranks.c
 * (docs/scaling.md, "Many ranks, measured").
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    ALLREDUCE,
    REDUCE,
    BCAST,
    BARRIER,
    ALLTOALL,
    ALLTOALLV,
    ALLGATHER,
    ALLGATHERV,
    GATHER,
    GATHERV,
    SCATTERV,
    EXSCAN,
    COMM_NEW,
    FILE_OPEN,
    FILE_COLLECTIVE,
    FILE_CLOSE,
    KINDS
};

static const char *const names[KINDS] = {
    "Allreduce", "Reduce",    "Bcast",      "Barrier",   "Alltoall",
    "Alltoallv", "Allgather", "Allgatherv", "Gather",    "Gatherv",
    "Scatterv",  "Exscan",    "Comm_new",   "File_open", "File_*_all/sync/set_size",
    "File_close"};

static unsigned long calls[KINDS], from_hdf5;
static double seconds[KINDS];
static int paused;

/* Was the wrapper called from HDF5 (a shared library named libhdf5...) or from
 * the program (Strata is linked in statically)? */
static int called_by_hdf5(void *return_address)
{
    Dl_info info;
    if (!dladdr(return_address, &info) || !info.dli_fname)
        return 0;
    const char *base = strrchr(info.dli_fname, '/');
    return strncmp(base ? base + 1 : info.dli_fname, "libhdf5", 7) == 0;
}

#define TIMED(kind, call)                                                                          \
    do {                                                                                           \
        double t0_ = PMPI_Wtime();                                                                 \
        int rc_ = (call);                                                                          \
        if (!paused) {                                                                             \
            seconds[kind] += PMPI_Wtime() - t0_;                                                   \
            calls[kind]++;                                                                         \
            from_hdf5 += called_by_hdf5(__builtin_return_address(0));                              \
        }                                                                                          \
        return rc_;                                                                                \
    } while (0)

int MPI_Allreduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c)
{
    TIMED(ALLREDUCE, PMPI_Allreduce(s, r, n, t, op, c));
}

int MPI_Reduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, int root, MPI_Comm c)
{
    TIMED(REDUCE, PMPI_Reduce(s, r, n, t, op, root, c));
}

int MPI_Bcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c)
{
    TIMED(BCAST, PMPI_Bcast(b, n, t, root, c));
}

int MPI_Barrier(MPI_Comm c)
{
    TIMED(BARRIER, PMPI_Barrier(c));
}

int MPI_Alltoall(const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt,
                 MPI_Comm c)
{
    TIMED(ALLTOALL, PMPI_Alltoall(s, sn, st, r, rn, rt, c));
}

int MPI_Alltoallv(const void *s, const int sn[], const int sd[], MPI_Datatype st, void *r,
                  const int rn[], const int rd[], MPI_Datatype rt, MPI_Comm c)
{
    TIMED(ALLTOALLV, PMPI_Alltoallv(s, sn, sd, st, r, rn, rd, rt, c));
}

int MPI_Allgather(const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt,
                  MPI_Comm c)
{
    TIMED(ALLGATHER, PMPI_Allgather(s, sn, st, r, rn, rt, c));
}

int MPI_Allgatherv(const void *s, int sn, MPI_Datatype st, void *r, const int rn[], const int rd[],
                   MPI_Datatype rt, MPI_Comm c)
{
    TIMED(ALLGATHERV, PMPI_Allgatherv(s, sn, st, r, rn, rd, rt, c));
}

int MPI_Gather(const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, int root,
               MPI_Comm c)
{
    TIMED(GATHER, PMPI_Gather(s, sn, st, r, rn, rt, root, c));
}

int MPI_Gatherv(const void *s, int sn, MPI_Datatype st, void *r, const int rn[], const int rd[],
                MPI_Datatype rt, int root, MPI_Comm c)
{
    TIMED(GATHERV, PMPI_Gatherv(s, sn, st, r, rn, rd, rt, root, c));
}

int MPI_Scatterv(const void *s, const int sn[], const int sd[], MPI_Datatype st, void *r, int rn,
                 MPI_Datatype rt, int root, MPI_Comm c)
{
    TIMED(SCATTERV, PMPI_Scatterv(s, sn, sd, st, r, rn, rt, root, c));
}

int MPI_Exscan(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c)
{
    TIMED(EXSCAN, PMPI_Exscan(s, r, n, t, op, c));
}

int MPI_Comm_dup(MPI_Comm c, MPI_Comm *out)
{
    TIMED(COMM_NEW, PMPI_Comm_dup(c, out));
}

int MPI_Comm_split(MPI_Comm c, int color, int key, MPI_Comm *out)
{
    TIMED(COMM_NEW, PMPI_Comm_split(c, color, key, out));
}

int MPI_Comm_split_type(MPI_Comm c, int type, int key, MPI_Info info, MPI_Comm *out)
{
    TIMED(COMM_NEW, PMPI_Comm_split_type(c, type, key, info, out));
}

int MPI_File_open(MPI_Comm c, const char *name, int mode, MPI_Info info, MPI_File *f)
{
    TIMED(FILE_OPEN, PMPI_File_open(c, name, mode, info, f));
}

int MPI_File_close(MPI_File *f)
{
    TIMED(FILE_CLOSE, PMPI_File_close(f));
}

int MPI_File_write_at_all(MPI_File f, MPI_Offset at, const void *b, int n, MPI_Datatype t,
                          MPI_Status *s)
{
    TIMED(FILE_COLLECTIVE, PMPI_File_write_at_all(f, at, b, n, t, s));
}

int MPI_File_read_at_all(MPI_File f, MPI_Offset at, void *b, int n, MPI_Datatype t, MPI_Status *s)
{
    TIMED(FILE_COLLECTIVE, PMPI_File_read_at_all(f, at, b, n, t, s));
}

int MPI_File_set_size(MPI_File f, MPI_Offset size)
{
    TIMED(FILE_COLLECTIVE, PMPI_File_set_size(f, size));
}

int MPI_File_sync(MPI_File f)
{
    TIMED(FILE_COLLECTIVE, PMPI_File_sync(f));
}

int MPI_File_set_view(MPI_File f, MPI_Offset disp, MPI_Datatype e, MPI_Datatype ft, const char *rep,
                      MPI_Info info)
{
    TIMED(FILE_COLLECTIVE, PMPI_File_set_view(f, disp, e, ft, rep, info));
}

/* MPI_Pcontrol(1, "phase"): rank 0 prints the phase's calls; the counters restart.
 * MPI_Pcontrol(0): pause; MPI_Pcontrol(2): resume. */
int MPI_Pcontrol(const int level, ...)
{
    if (level != 1) {
        paused = level == 0;
        return MPI_SUCCESS;
    }
    const char *what = "";
    {
        va_list ap;
        va_start(ap, level);
        what = va_arg(ap, const char *);
        va_end(ap);
    }
    int rank = 0;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        unsigned long total = 0;
        double waited = 0;
        char line[1024];
        int at = 0;
        for (int k = 0; k < KINDS; k++) {
            total += calls[k];
            waited += seconds[k];
            if (calls[k] && at < (int)sizeof line)
                at += snprintf(line + at, sizeof line - (size_t)at, " %s %lu (%.3f s)", names[k],
                               calls[k], seconds[k]);
        }
        fprintf(stderr, "mpi_calls: %-28s %4lu collectives (%lu by HDF5), %.3f s in them:%s\n",
                what, total, from_hdf5, waited, at ? line : " none");
    }
    for (int k = 0; k < KINDS; k++)
        calls[k] = 0, seconds[k] = 0;
    from_hdf5 = 0;
    return MPI_SUCCESS;
}
