/* png.h: a quick-look PNG of a 2-D slice of materials, with a legend. */
#ifndef STRATA_PNG_H
#define STRATA_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

/** Minimum length of the image's longer side: small slices are scaled up to it. */
#define PNG_MIN_SIDE 512

/**
 * Pixels per cell for a width x height slice: max(1, PNG_MIN_SIDE / max(width, height)).
 */
int png_cell_scale(int64_t width, int64_t height);

/** Margins around a slice, in pixels: the title above, tick labels left and below
 *  (tests/scripts/check_extract.py reads the slice at this offset). */
#define PNG_FRAME_LEFT   150
#define PNG_FRAME_TOP    40
#define PNG_FRAME_BOTTOM 70

/** What a slice shows: a title, and where its cells lie in world metres. */
typedef struct {
    const char *title;   /**< e.g. "andes: y = 96 voxels (-2662000 m), LOD 0" */
    double x0, dx;       /**< metres at the left edge of column 0; metres per column */
    double y0, dy;       /**< metres at the bottom edge of row 0; metres per row */
    char x_name, y_name; /**< the world axes drawn right and up */
} png_frame;

/**
 * Write cells (width x height, row 0 at the bottom of the image, x to the right)
 * as an RGB PNG in the world's material colours, one square of png_cell_scale
 * pixels per cell, framed: the title above, axes with ticks labelled in metres
 * left and below, a scale bar under the slice, and a legend (colour swatch, id
 * and name of every material present) to the right. The slice's top-left corner
 * is at (PNG_FRAME_LEFT, PNG_FRAME_TOP).
 * Local. Returns 0, or -1 with a message in error.
 */
int png_write_slice(const char *path, const uint16_t *cells, int64_t width, int64_t height,
                    const png_frame *frame, const strata_world *w, char *error, size_t error_size);

/**
 * Write an RGB picture (width x height, rows top to bottom) with a legend of the
 * materials of ids (one per pixel; 0, the sky, is not listed) to its right.
 * Local. Returns 0, or -1 with a message in error.
 */
int png_write_picture(const char *path, const uint8_t *rgb, const uint16_t *ids, int64_t width,
                      int64_t height, const strata_world *w, char *error, size_t error_size);

#endif
