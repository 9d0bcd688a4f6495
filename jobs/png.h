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

/**
 * Write cells (width x height, row 0 at the bottom of the image, x to the right)
 * as an RGB PNG in the world's material colours, one square of png_cell_scale
 * pixels per cell, with a legend (colour swatch, id and name of every material
 * present) to the right. The image is width*s + legend wide and
 * max(height*s, legend height) tall; the area under a short slice is white.
 * Local. Returns 0, or -1 with a message in error.
 */
int png_write_slice(const char *path, const uint16_t *cells, int64_t width, int64_t height,
                    const strata_world *w, char *error, size_t error_size);

/**
 * Write an RGB picture (width x height, rows top to bottom) with a legend of the
 * materials of ids (one per pixel; 0, the sky, is not listed) to its right.
 * Local. Returns 0, or -1 with a message in error.
 */
int png_write_picture(const char *path, const uint8_t *rgb, const uint16_t *ids, int64_t width,
                      int64_t height, const strata_world *w, char *error, size_t error_size);

#endif
