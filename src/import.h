/* import.h: helpers of the DEM and raw-volume imports shared with tests (not public). */
#ifndef STRATA_IMPORT_H
#define STRATA_IMPORT_H

#include "strata.h"

/** WGS84 semi-major axis (metres) and first eccentricity squared. */
#define IMPORT_WGS84_A  6378137.0
#define IMPORT_WGS84_E2 0.00669437999014

/**
 * Metres per degree of longitude and of latitude at geodetic latitude lat_deg on
 * the WGS84 ellipsoid (radius of the parallel, meridional radius of curvature).
 * @param[in]  lat_deg latitude in degrees
 * @param[out] lon_m   metres per degree east
 * @param[out] lat_m   metres per degree north
 */
void import_metres_per_degree(double lat_deg, double *lon_m, double *lat_m);

/**
 * Material of ground at depth metres below the surface of a column in zone,
 * by the layer table: the first layer whose cumulative bottom lies below depth;
 * the last layer that applies to the zone extends without limit.
 * @return the material id, or 0 if no layer applies to zone
 */
uint16_t import_layer_material(const strata_layer *layers, size_t count, int zone, double depth);

#endif
