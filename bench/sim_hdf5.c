/* sim_hdf5.c: `strata simulate`'s step written with plain parallel HDF5, the peer
 * of the simulate rows in bench/simulate_bench.sh.
 *
 *   mpirun -np P sim_hdf5 FILE.h5 --steps N [--process P] [--seed S] [--commit-every K]
 *
 * FILE.h5 holds the world as one uint16 dataset /material [z][y][x], in any
 * layout HDF5 writes in parallel: contiguous as `strata extract` writes it, or
 * repacked into 64^3 chunks with the zstd filter (simulate_bench.sh runs both;
 * the filter then comes from HDF5_PLUGIN_PATH); it is updated in place. As a simulation code
 * without Strata would, each rank owns a slab of whole y rows (equal parts of
 * the y extent), and every step it reads its slab plus the halo the rules need
 * with one collective hyperslab read, computes the slab with the same rules as
 * `strata simulate` (jobs/simulate_rules.c), and writes the slab back with one
 * collective hyperslab write; every K steps, and at the end, H5Fflush and an
 * fsync of the file (MPI_File_sync) make the steps durable (Strata's commit).
 * The result is the world `strata simulate` makes from the same state and seed
 * at any rank count (simulate_bench.sh and test_simulate.sh compare them).
 *
 * Prints one line: steps, ranks, voxels read and changed, and per step the
 * slowest rank's seconds in hyperslab reads, compute, hyperslab writes and
 * flush + fsync. A bench program: any failure ends the job with a message.
 */
#include <hdf5.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulate_rules.h"

static int rank;

static void die(const char *what)
{
    fprintf(stderr, "sim_hdf5: rank %d: %s\n", rank, what);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void check(int ok, const char *what)
{
    if (!ok)
        die(what);
}

static uint64_t parse_u64(const char *v, const char *option)
{
    char *end;
    if (!v || !*v)
        die(option);
    unsigned long long x = strtoull(v, &end, 10);
    if (*end)
        die(option);
    return (uint64_t)x;
}

/* The file and memory spaces of box b (x0, y0, z0, x1, y1, z1) of the [z][y][x]
 * dataset, or of nothing when the rank has no slab (it still takes part). */
static void box_spaces(hid_t dset, const int64_t b[6], int mine, hid_t *file_space,
                       hid_t *mem_space)
{
    hsize_t start[3] = {(hsize_t)b[2], (hsize_t)b[1], (hsize_t)b[0]};
    hsize_t count[3] = {(hsize_t)(b[5] - b[2]), (hsize_t)(b[4] - b[1]), (hsize_t)(b[3] - b[0])};
    hsize_t one = 1;
    *file_space = H5Dget_space(dset);
    *mem_space = H5Screate_simple(mine ? 3 : 1, mine ? count : &one, NULL);
    check(*file_space >= 0 && *mem_space >= 0, "dataspaces");
    if (mine)
        check(H5Sselect_hyperslab(*file_space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0,
              "selecting a hyperslab");
    else
        check(H5Sselect_none(*file_space) >= 0 && H5Sselect_none(*mem_space) >= 0,
              "selecting nothing");
}

static double slowest(double v)
{
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

/* The options after FILE.h5; dies on a bad one. */
static simulation parse_args(int argc, char **argv)
{
    if (argc < 2)
        die("usage: sim_hdf5 FILE.h5 --steps N [--process P] [--seed S] [--commit-every K]");
    simulation s = {.process = SIM_EROSION, .seed = 1, .commit_every = 1};
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--steps"))
            s.steps = parse_u64(v, "--steps wants a number");
        else if (!strcmp(argv[i], "--seed"))
            s.seed = parse_u64(v, "--seed wants a number");
        else if (!strcmp(argv[i], "--commit-every"))
            s.commit_every = parse_u64(v, "--commit-every wants a number");
        else if (!strcmp(argv[i], "--process"))
            check((s.process = sim_process_named(v)) >= 0, "unknown --process");
        else
            die("unexpected argument");
        i++;
    }
    check(s.steps > 0 && s.commit_every > 0, "--steps and --commit-every want positive numbers");
    return s;
}

/* The voxels of r's block (whole x rows of the world) the step changed,
 * counted as strata simulate counts them. */
static uint64_t count_changed(const simulation *s, const sim_region *r)
{
    const int64_t nx = r->box[3] - r->box[0], ny = r->box[4] - r->box[1];
    uint64_t at = 0, changed = 0;
    for (int64_t z = 0; z < s->dims[2]; z++)
        for (int64_t y = r->block[1]; y < r->block[4]; y++) {
            const uint16_t *old = r->in + ((z - r->box[2]) * ny + (y - r->box[1])) * nx - r->box[0];
            if (!memcmp(r->out + at, old, (size_t)s->dims[0] * 2)) {
                at += (uint64_t)s->dims[0];
                continue;
            }
            for (int64_t x = 0; x < s->dims[0]; x++, at++)
                changed += r->out[at] != old[x];
        }
    return changed;
}

/* The commit a code without Strata makes: HDF5's flush, then MPI_File_sync. */
static void commit_file(hid_t file, hid_t fapl)
{
    MPI_File *fh = NULL;
    check(H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0, "H5Fflush");
    check(H5Fget_vfd_handle(file, fapl, (void **)&fh) >= 0 && fh, "the MPI file handle");
    check(MPI_File_sync(*fh) == MPI_SUCCESS, "MPI_File_sync");
}

/* Rank 0 prints the run's line: totals over the ranks, the slowest rank's times
 * (read, compute, write, flush + fsync, in all). Collective. */
static void report(const simulation *s, int size, uint64_t read, uint64_t changed,
                   const double seconds[5])
{
    MPI_Allreduce(MPI_IN_PLACE, &changed, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &read, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    const double read_s = slowest(seconds[0]), compute_s = slowest(seconds[1]),
                 write_s = slowest(seconds[2]), sync_s = slowest(seconds[3]),
                 all_s = slowest(seconds[4]);
    const double n = (double)s->steps;
    if (rank == 0)
        printf("sim_hdf5: %s, %" PRIu64 " steps on %d ranks: %.3g voxels read, %" PRIu64
               " changed; per step %.3f s: hyperslab read %.3f s (%.3g voxels/s per rank), "
               "compute %.3f s, hyperslab write %.3f s, flush + fsync %.3f s\n",
               sim_process_name(s->process), s->steps, size, (double)read, changed, all_s / n,
               read_s / n, read_s > 0 ? (double)read / size / read_s : 0.0, compute_s / n,
               write_s / n, sync_s / n);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    simulation s = parse_args(argc, argv);

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    check(fapl >= 0 && H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL) >= 0,
          "MPI-IO file access");
    hid_t file = H5Fopen(argv[1], H5F_ACC_RDWR, fapl);
    check(file >= 0, "cannot open the file read-write");
    hid_t dset = H5Dopen2(file, "material", H5P_DEFAULT);
    check(dset >= 0, "no /material dataset");
    hid_t fspace = H5Dget_space(dset);
    hsize_t dims[3];
    check(fspace >= 0 && H5Sget_simple_extent_ndims(fspace) == 3 &&
              H5Sget_simple_extent_dims(fspace, dims, NULL) == 3,
          "/material is not 3-D");
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    check(dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) >= 0, "collective transfers");
    for (int a = 0; a < 3; a++)
        s.dims[a] = (int64_t)dims[2 - a];
    sim_place_vents(&s);

    /* This rank's slab of y rows and its halo box. */
    sim_region r = {0};
    const int64_t y0 = s.dims[1] * rank / size, y1 = s.dims[1] * (rank + 1) / size;
    const int64_t block[6] = {0, y0, 0, s.dims[0], y1, s.dims[2]};
    memcpy(r.block, block, sizeof block);
    sim_halo_box(&s, r.block, r.box);
    const int mine = y1 > y0;
    const uint64_t in_n = (uint64_t)((r.box[3] - r.box[0]) * (r.box[4] - r.box[1]) *
                                     (r.box[5] - r.box[2])),
                   out_n = (uint64_t)((y1 - y0) * s.dims[0] * s.dims[2]);
    r.in = malloc((in_n ? in_n : 1) * sizeof *r.in);
    r.out = malloc((out_n ? out_n : 1) * sizeof *r.out);
    check(r.in && r.out, "out of memory for the slab");
    hid_t in_file, in_mem, out_file, out_mem;
    box_spaces(dset, r.box, mine, &in_file, &in_mem);
    box_spaces(dset, r.block, mine, &out_file, &out_mem);
    H5Sclose(fspace);

    double read_s = 0, compute_s = 0, write_s = 0, sync_s = 0, start = MPI_Wtime();
    uint64_t changed = 0, read = 0;
    for (uint64_t step = 0; step < s.steps; step++) {
        double t0 = MPI_Wtime();
        check(H5Dread(dset, H5T_NATIVE_UINT16, in_mem, in_file, dxpl, r.in) >= 0, "hyperslab read");
        double t1 = MPI_Wtime();
        read += mine ? in_n : 0;
        if (mine) {
            sim_compute_block(&s, &r, step);
            changed += count_changed(&s, &r);
        }
        double t2 = MPI_Wtime();
        check(H5Dwrite(dset, H5T_NATIVE_UINT16, out_mem, out_file, dxpl, r.out) >= 0,
              "hyperslab write");
        double t3 = MPI_Wtime();
        if ((step + 1) % s.commit_every == 0 || step + 1 == s.steps)
            commit_file(file, fapl);
        double t4 = MPI_Wtime();
        read_s += t1 - t0, compute_s += t2 - t1, write_s += t3 - t2, sync_s += t4 - t3;
    }
    const double seconds[5] = {read_s, compute_s, write_s, sync_s, MPI_Wtime() - start};
    report(&s, size, read, changed, seconds);
    H5Sclose(in_file), H5Sclose(in_mem), H5Sclose(out_file), H5Sclose(out_mem);
    H5Pclose(dxpl), H5Pclose(fapl);
    H5Dclose(dset);
    check(H5Fclose(file) >= 0, "closing the file");
    free(r.in), free(r.out);
    MPI_Finalize();
    return 0;
}
