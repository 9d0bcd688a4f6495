/* test_h5zstd.c: HDF5 zstd filter 32015: in-process registration, the plugin module, bad input. */
#include <check.h>
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5zstd.h"
#include "h5zstd_filter.h"
#include "mpi_start.h"

enum { ROWS = 64, COLUMNS = 100 };

static char path[64];

static void fill(uint16_t *values)
{
    for (int i = 0; i < ROWS * COLUMNS; i++)
        values[i] = (uint16_t)(i / 37 % 5 == 0 ? 1000 + i % 7 : 3);
}

START_TEST(test_dataset_round_trip)
{
    strata_error err = {0};
    ck_assert_int_eq(h5zstd_register(&err), STRATA_OK);
    ck_assert_int_eq(h5zstd_register(&err), STRATA_OK); /* idempotent */
    ck_assert_int_gt(H5Zfilter_avail(H5ZSTD_FILTER_ID), 0);

    static uint16_t values[ROWS * COLUMNS], back[ROWS * COLUMNS];
    fill(values);
    snprintf(path, sizeof path, "test_h5zstd_%ld.h5", (long)getpid());
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(file, 0);
    hsize_t dims[2] = {ROWS, COLUMNS}, chunk[2] = {16, 25};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    unsigned level = 5;
    ck_assert_int_ge(H5Pset_chunk(dcpl, 2, chunk), 0);
    ck_assert_int_ge(H5Pset_filter(dcpl, H5ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &level), 0);
    hid_t dset = H5Dcreate2(file, "voxels", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(dset, 0);
    ck_assert_int_ge(H5Dwrite(dset, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    /* A dataset with the filter but no cd_values uses the default level. */
    hid_t dcpl0 = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_chunk(dcpl0, 2, chunk), 0);
    ck_assert_int_ge(H5Pset_filter(dcpl0, H5ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 0, NULL), 0);
    hid_t dset0 =
        H5Dcreate2(file, "default_level", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl0, H5P_DEFAULT);
    ck_assert_int_ge(dset0, 0);
    ck_assert_int_ge(H5Dwrite(dset0, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    H5Dclose(dset0);
    H5Pclose(dcpl0);
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    ck_assert_int_ge(H5Fclose(file), 0);

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(file, 0);
    const char *names[2] = {"voxels", "default_level"};
    for (int d = 0; d < 2; d++) {
        dset = H5Dopen2(file, names[d], H5P_DEFAULT);
        ck_assert_int_ge(dset, 0);
        /* The filter actually ran: the stored chunks are smaller than raw. */
        ck_assert_uint_lt(H5Dget_storage_size(dset), sizeof values / 2);
        memset(back, 0, sizeof back);
        ck_assert_int_ge(H5Dread(dset, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, back), 0);
        ck_assert(memcmp(values, back, sizeof values) == 0);
        H5Dclose(dset);
    }
    H5Fclose(file);
    unlink(path);
}
END_TEST

/* Call a filter function both ways on a heap buffer, as HDF5 does. */
static void check_filter_round_trip(H5Z_func_t filter)
{
    size_t nbytes = 10000, size = nbytes;
    unsigned char *buf = malloc(nbytes);
    for (size_t i = 0; i < nbytes; i++)
        buf[i] = (unsigned char)(i / 100);
    void *p = buf;
    unsigned level = 1;
    size_t n = filter(0, 1, &level, nbytes, &size, &p);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, nbytes);
    ck_assert_uint_le(n, size);
    size_t compressed = n;
    n = filter(H5Z_FLAG_REVERSE, 1, &level, compressed, &size, &p);
    ck_assert_uint_eq(n, nbytes);
    for (size_t i = 0; i < nbytes; i++)
        ck_assert_uint_eq(((unsigned char *)p)[i], (unsigned char)(i / 100));
    free(p);
}

START_TEST(test_filter_rejects_bad_input)
{
    check_filter_round_trip(h5zstd_filter);
    unsigned char junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 13);
    for (size_t len = 0; len <= sizeof junk; len += 8) {
        void *p = malloc(sizeof junk);
        memcpy(p, junk, sizeof junk);
        size_t size = sizeof junk;
        ck_assert_uint_eq(h5zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, len, &size, &p), 0);
        ck_assert_uint_eq(size, sizeof junk); /* untouched on failure */
        free(p);
    }
    /* Truncated and trailing-garbage frames, with and without a recorded size. */
    unsigned char content[5000];
    memset(content, 'x', sizeof content);
    unsigned char frame[6000];
    size_t len = ZSTD_compress(frame, sizeof frame, content, sizeof content, 3);
    ck_assert(!ZSTD_isError(len));
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    unsigned char stream[6000];
    ZSTD_outBuffer out = {stream, sizeof stream, 0};
    ZSTD_inBuffer in = {content, sizeof content, 0};
    ck_assert_uint_eq(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end), 0);
    ZSTD_freeCCtx(cctx);
    const unsigned char *frames[2] = {frame, stream};
    size_t lengths[2] = {len, out.pos};
    for (int f = 0; f < 2; f++) {
        for (size_t cut = 0; cut <= lengths[f] + 1; cut++) {
            void *p = malloc(lengths[f] + 1);
            memcpy(p, frames[f], lengths[f]);
            ((unsigned char *)p)[lengths[f]] = 0;
            size_t size = lengths[f] + 1;
            size_t n = h5zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, cut, &size, &p);
            ck_assert_uint_eq(n, cut == lengths[f] ? sizeof content : 0);
            if (n)
                ck_assert(memcmp(p, content, sizeof content) == 0);
            free(p);
        }
    }
}
END_TEST

/* The plugin module ($HDF5_PLUGIN_PATH/libh5zstd.so) exports a working filter. */
START_TEST(test_plugin_module)
{
    const char *dir = getenv("HDF5_PLUGIN_PATH");
    if (!dir) {
        fprintf(stderr, "test_plugin_module: HDF5_PLUGIN_PATH unset, skipped\n");
        return;
    }
    char module[4096];
    snprintf(module, sizeof module, "%s/libh5zstd.so", dir);
    void *handle = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(handle != NULL, "dlopen %s: %s", module, dlerror());
    H5PL_type_t (*type_fn)(void);
    const void *(*info_fn)(void);
    *(void **)&type_fn = dlsym(handle, "H5PLget_plugin_type");
    *(void **)&info_fn = dlsym(handle, "H5PLget_plugin_info");
    ck_assert(type_fn && info_fn);
    ck_assert_int_eq(type_fn(), H5PL_TYPE_FILTER);
    const H5Z_class2_t *cls = info_fn();
    ck_assert_int_eq(cls->id, H5ZSTD_FILTER_ID);
    ck_assert_int_eq(cls->version, H5Z_CLASS_T_VERS);
    check_filter_round_trip(cls->filter);
    dlclose(handle);
}
END_TEST

int main(int argc, char **argv)
{
    int provided;
    mpi_start(&argc, &argv, MPI_THREAD_SINGLE, &provided);
    Suite *s = suite_create("h5zstd");
    TCase *tc = tcase_create("h5zstd");
    tcase_add_test(tc, test_dataset_round_trip);
    tcase_add_test(tc, test_filter_rejects_bad_input);
    tcase_add_test(tc, test_plugin_module);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* no fork() after MPI_Init */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
