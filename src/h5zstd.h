/* h5zstd.h: in-process registration of HDF5 filter 32015 (zstd). */
#ifndef STRATA_H5ZSTD_H
#define STRATA_H5ZSTD_H

#include "error.h"

/**
 * Register the zstd filter (id 32015) with this process's HDF5 library, so
 * datasets using it are written and read without HDF5_PLUGIN_PATH. Local;
 * idempotent.
 * @param[out] err the HDF5 failure, if any
 * @return STRATA_OK or STRATA_ERR_HDF5
 */
strata_status h5zstd_register(strata_error *err);

#endif
