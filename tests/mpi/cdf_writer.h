/* cdf_writer.h: a minimal netCDF classic (CDF-1) writer of one elevation grid, so that
 * the MPI tests of DEM import (mpi_import, mpi_alloc) need no netCDF library.
 * Static functions: include it in one test file each. */
#ifndef STRATA_TEST_CDF_WRITER_H
#define STRATA_TEST_CDF_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buffer;

static void put(buffer *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_u32(buffer *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, c, 4);
}

static void put_name(buffer *b, const char *s)
{
    size_t n = strlen(s);
    static const unsigned char zero[4] = {0};
    put_u32(b, (uint32_t)n);
    put(b, s, n);
    put(b, zero, (4 - n % 4) % 4);
}

static void put_f64(buffer *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u32(b, (uint32_t)(u >> 32));
    put_u32(b, (uint32_t)u);
}

static void put_f32(buffer *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(b, u);
}

static void put_units_attribute(buffer *b, const char *units)
{
    put_u32(b, 0x0C);
    put_u32(b, 1);
    put_name(b, "units");
    put_u32(b, 2); /* NC_CHAR */
    put_name(b, units);
}

/* Grid elev(lat, lon) with coordinate variables; lat_step < 0 stores rows north to south. */
static void write_cdf(const char *path, int nx, int ny, double lon0, double lon_step, double lat0,
                      double lat_step, const float *elev)
{
    buffer h = {0};
    put(&h, "CDF\x01", 4);
    put_u32(&h, 0);
    put_u32(&h, 0x0A);
    put_u32(&h, 2);
    put_name(&h, "lat");
    put_u32(&h, (uint32_t)ny);
    put_name(&h, "lon");
    put_u32(&h, (uint32_t)nx);
    put_u32(&h, 0), put_u32(&h, 0); /* no global attributes */
    put_u32(&h, 0x0B);
    put_u32(&h, 3);
    size_t begin_at[3];
    const char *names[2] = {"lat", "lon"}, *units[2] = {"degrees_north", "degrees_east"};
    int sizes[2] = {ny, nx};
    for (int v = 0; v < 2; v++) {
        put_name(&h, names[v]);
        put_u32(&h, 1);
        put_u32(&h, (uint32_t)v);
        put_units_attribute(&h, units[v]);
        put_u32(&h, 6); /* NC_DOUBLE */
        put_u32(&h, (uint32_t)(8 * sizes[v]));
        begin_at[v] = h.n;
        put_u32(&h, 0);
    }
    put_name(&h, "elev");
    put_u32(&h, 2);
    put_u32(&h, 0), put_u32(&h, 1);
    put_u32(&h, 0x0C);
    put_u32(&h, 2);
    put_name(&h, "units");
    put_u32(&h, 2);
    put_name(&h, "m");
    put_name(&h, "_FillValue");
    put_u32(&h, 5); /* NC_FLOAT */
    put_u32(&h, 1);
    put_f32(&h, -1e34f);
    put_u32(&h, 5);
    put_u32(&h, (uint32_t)(4 * nx * ny));
    begin_at[2] = h.n;
    put_u32(&h, 0);
    size_t offset = h.n;
    uint32_t begins[3] = {(uint32_t)offset, (uint32_t)(offset + 8 * (size_t)ny),
                          (uint32_t)(offset + 8 * (size_t)(ny + nx))};
    for (int v = 0; v < 3; v++)
        for (int k = 0; k < 4; k++)
            h.p[begin_at[v] + (size_t)k] = (unsigned char)(begins[v] >> (24 - 8 * k));
    for (int j = 0; j < ny; j++)
        put_f64(&h, lat0 + lat_step * j);
    for (int i = 0; i < nx; i++)
        put_f64(&h, lon0 + lon_step * i);
    for (int k = 0; k < nx * ny; k++)
        put_f32(&h, elev[k]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(h.p, 1, h.n, f) != h.n || fclose(f))
        abort();
    free(h.p);
}

#endif
