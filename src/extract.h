/* extract.h: region extraction to HDF5 + XDMF (strata_extract), its grid and sidecar. */
#ifndef STRATA_EXTRACT_H
#define STRATA_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/** Limit on the LOD level of an extraction (2^level must fit comfortably in int64). */
#define EXTRACT_LEVEL_MAX 40

/** The output grid of an extraction: which cells of which level cover the box. */
typedef struct {
    int64_t box[6]; /**< the requested box clipped to the world */
    int level;
    int64_t first[3]; /**< index of the first cell along x, y, z: floor(box / 2^level) */
    int64_t cells[3]; /**< cells along x, y, z: ceil(x1 / 2^level) - floor(x0 / 2^level) */
} extract_grid;

/**
 * Clip box to the world and compute the cells that cover it. Local.
 * @param[in]  dims  world dimensions in voxels
 * @param[in]  box   x0,y0,z0,x1,y1,z1 half-open, any integers
 * @param[in]  level LOD level in [0, EXTRACT_LEVEL_MAX]
 * @param[out] g     the grid
 * @return STRATA_ERR_RANGE when x0 >= x1 on an axis or nothing is left after
 *         clipping, STRATA_ERR_ARG for a bad level
 */
strata_status extract_grid_make(const int64_t dims[3], const int64_t box[6], int level,
                                extract_grid *g, strata_error *err);

/**
 * Write the XDMF 3 sidecar describing g as a 3DCoRectMesh with /material as a cell
 * field of h5_name (a path relative to the XDMF file, normally the basename), as a new
 * file (an existing xmf_path is an error: the caller writes a fresh partial name). Local.
 * @param[in] voxel_size metres per voxel, x y z
 * @param[in] origin     world position of voxel corner (0,0,0), x y z
 */
strata_status extract_write_xdmf(const char *xmf_path, const char *h5_name, const extract_grid *g,
                                 const double voxel_size[3], const double origin[3],
                                 strata_error *err);

/**
 * Refuse an output path that resolves inside the world's directory: extraction
 * only reads a world, and a file written there (W/MANIFEST, a segment, any new
 * name) would change or destroy it. Local: each rank resolves on its own view of
 * the file system, so callers agree on the outcome before creating anything.
 *
 * The directory holding path is the text before its last '/' ("." when there is
 * none), so that "W/", "W/." and "W/.." count as names in W, where their
 * ".partial" siblings would be created. That directory, and path itself when
 * something exists there (a symlink is followed: a PNG is written through it),
 * are resolved with realpath and compared with the resolved world directory, so
 * that "W/../W/x.h5", symlinks and trailing slashes are caught.
 * @param[in]  world_dir the world's directory
 * @param[in]  path      an output file; it need not exist yet
 * @param[out] err       the failure, naming both paths
 * @return STRATA_OK when path lies outside world_dir; STRATA_ERR_ARG when inside;
 *         STRATA_ERR_IO when world_dir, path's directory or an existing path
 *         cannot be resolved
 */
strata_status extract_check_output_path(const char *world_dir, const char *path, strata_error *err);

/** The sidecar's path: h5_path with a trailing ".h5"/".hdf5" replaced by ".xmf" (else appended). */
strata_status extract_xdmf_path(const char *h5_path, char *out, size_t size, strata_error *err);

#endif
