/*
 * h5zstd_plugin.c: libh5zstd.so, the HDF5 plugin for filter 32015 (zstd), so
 * h5dump, h5py and ParaView read Strata's zstd datasets with HDF5_PLUGIN_PATH
 * pointing at it. Debian ships no such plugin. Does not link libstrata.
 */
#include <H5PLextern.h>

#include "h5zstd_filter.h"

H5PL_type_t H5PLget_plugin_type(void)
{
    return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
    return &h5zstd_class;
}
