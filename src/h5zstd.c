/* h5zstd.c: in-process registration of HDF5 filter 32015 (zstd). */
#include "h5zstd.h"

#include "h5zstd_filter.h"

strata_status h5zstd_register(strata_error *err)
{
    if (H5Zregister(&h5zstd_class) < 0)
        return error_set(err, STRATA_ERR_HDF5, "H5Zregister of zstd filter %d failed",
                         H5ZSTD_FILTER_ID);
    return STRATA_OK;
}
