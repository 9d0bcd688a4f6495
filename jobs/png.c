/* png.c: slice images through libpng, with a legend drawn in a built-in 5x7 font. */
#include "png.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef STRATA_HAVE_PNG
/* libpng's own header by its versioned directory: "png.h" is this module's. */
#include <libpng16/png.h>
#endif

/* Legend geometry, in pixels. Glyphs are 5x7 drawn at FONT_SCALE. */
enum {
    FONT_SCALE = 2,
    GLYPH_W = 5 * FONT_SCALE,
    GLYPH_H = 7 * FONT_SCALE,
    GLYPH_ADVANCE = GLYPH_W + FONT_SCALE,
    LEGEND_PAD = 10,
    LEGEND_LINE = GLYPH_H + 8,
    SWATCH = GLYPH_H,
    LEGEND_MAX_CHARS = 6 + STRATA_MATERIAL_NAME_MAX, /* "65535 " and the longest name */
    TEXT_MAX_CHARS = 160                             /* titles */
};

/* One glyph: 7 rows of 5 bits, the leftmost pixel in bit 4. */
typedef struct {
    char c;
    uint8_t rows[7];
} glyph;

static const glyph font[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'&', {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D}},
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'"', {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},
    {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};

/* The glyph of c (lower case drawn as upper case; other characters, non-ASCII
 * bytes among them, as '?'); NULL for space. */
static const glyph *glyph_of(char c)
{
    if (c == ' ')
        return NULL;
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    const glyph *unknown = NULL;
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++) {
        if (font[i].c == c)
            return &font[i];
        if (font[i].c == '?')
            unknown = &font[i];
    }
    return unknown;
}

/* An RGB canvas. */
typedef struct {
    uint8_t *pixels;
    int64_t width, height;
} canvas;

static void fill_rect(canvas *c, int64_t x, int64_t y, int64_t w, int64_t h, const uint8_t rgb[3])
{
    for (int64_t j = y < 0 ? 0 : y; j < y + h && j < c->height; j++)
        for (int64_t i = x < 0 ? 0 : x; i < x + w && i < c->width; i++)
            memcpy(c->pixels + 3 * (j * c->width + i), rgb, 3);
}

static void draw_text(canvas *c, int64_t x, int64_t y, const char *text)
{
    static const uint8_t ink[3] = {0, 0, 0};
    for (size_t k = 0; text[k] && k < TEXT_MAX_CHARS; k++, x += GLYPH_ADVANCE) {
        const glyph *g = glyph_of(text[k]);
        for (int row = 0; g && row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g->rows[row] >> (4 - col) & 1)
                    fill_rect(c, x + col * FONT_SCALE, y + row * FONT_SCALE, FONT_SCALE, FONT_SCALE,
                              ink);
    }
}

int png_cell_scale(int64_t width, int64_t height)
{
    int64_t side = width > height ? width : height;
    int64_t s = side > 0 ? PNG_MIN_SIDE / side : 1;
    return s < 1 ? 1 : (int)s;
}

/* Legend lines: "id name" of every material present, by id. */
typedef struct {
    uint16_t id;
    strata_material m;
    char text[LEGEND_MAX_CHARS + 1];
} legend_entry;

static int collect_legend(const uint16_t *cells, size_t n, const strata_world *w,
                          legend_entry **out, size_t *count)
{
    uint8_t *present = calloc(65536, 1);
    if (!present)
        return -1;
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (!present[cells[i]]++)
            distinct++;
    legend_entry *e = calloc(distinct ? distinct : 1, sizeof *e);
    if (!e) {
        free(present);
        return -1;
    }
    size_t k = 0;
    for (uint32_t id = 0; id < 65536; id++) {
        if (!present[id])
            continue;
        e[k].id = (uint16_t)id;
        if (strata_material_get(w, (uint16_t)id, &e[k].m)) {
            snprintf(e[k].m.name, sizeof e[k].m.name, "material %u", id);
            memset(e[k].m.rgb, 128, 3);
        }
        snprintf(e[k].text, sizeof e[k].text, "%u %s", id, e[k].m.name);
        k++;
    }
    free(present);
    *out = e;
    *count = k;
    return 0;
}

/* The legend's width and height for these entries. */
static void legend_size(const legend_entry *legend, size_t entries, int64_t *w, int64_t *h)
{
    size_t longest = 0;
    for (size_t i = 0; i < entries; i++)
        longest = strlen(legend[i].text) > longest ? strlen(legend[i].text) : longest;
    *w = 3 * LEGEND_PAD + SWATCH + (int64_t)longest * GLYPH_ADVANCE;
    *h = 2 * LEGEND_PAD + (int64_t)entries * LEGEND_LINE;
}

/* The legend at column x0 of the canvas. */
static void draw_legend(canvas *c, int64_t x0, int64_t y0, const legend_entry *legend,
                        size_t entries)
{
    static const uint8_t border[3] = {0, 0, 0};
    int64_t x = x0 + LEGEND_PAD;
    for (size_t i = 0; i < entries; i++) {
        int64_t y = y0 + LEGEND_PAD + (int64_t)i * LEGEND_LINE;
        fill_rect(c, x, y, SWATCH, SWATCH, border);
        fill_rect(c, x + 1, y + 1, SWATCH - 2, SWATCH - 2, legend[i].m.rgb);
        draw_text(c, x + SWATCH + LEGEND_PAD, y, legend[i].text);
    }
}

/* A tick step of 1, 2 or 5 x 10^k giving about `parts` steps over span. */
static double nice_step(double span, int parts)
{
    double raw = span / parts, p = pow(10, floor(log10(raw)));
    return raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
}

/* A length in metres, short: "250 m", "12.5 km". */
static void metres_text(double v, char *out, size_t size)
{
    if (fabs(v) >= 10000)
        snprintf(out, size, "%g km", v / 1000);
    else
        snprintf(out, size, "%g m", v);
}

static int64_t text_width(const char *t)
{
    size_t n = strlen(t);
    return (int64_t)(n < TEXT_MAX_CHARS ? n : TEXT_MAX_CHARS) * GLYPH_ADVANCE;
}

/* Axes with ticks in metres along the slice's bottom and left edges, and a scale bar. */
static void draw_axes(canvas *c, const png_frame *f, int64_t width, int64_t height, int s)
{
    static const uint8_t ink[3] = {0, 0, 0};
    const int64_t left = PNG_FRAME_LEFT, bottom = PNG_FRAME_TOP + height * s;
    fill_rect(c, left - 1, PNG_FRAME_TOP, 1, height * s + 1, ink);
    fill_rect(c, left - 1, bottom, width * s + 1, 1, ink);
    char text[64];
    int64_t x_end = left + width * s + 12; /* the x axis's name goes past its last label */
    for (int axis = 0; axis < 2; axis++) {
        const double start = axis ? f->y0 : f->x0, per = axis ? f->dy : f->dx;
        const int64_t cells = axis ? height : width;
        const double span = per * (double)cells;
        /* As many steps (4 at most) as leave room between the widest labels. */
        double step = nice_step(span, 4);
        for (int parts = 3; parts >= 1; parts--) {
            char a[64], b[64];
            metres_text(floor(start / step) * step, a, sizeof a);
            metres_text(ceil((start + span) / step) * step, b, sizeof b);
            int64_t need =
                axis ? GLYPH_H + 8
                     : (text_width(a) > text_width(b) ? text_width(a) : text_width(b)) + 16;
            if (step / per * s >= (double)need)
                break;
            step = nice_step(span, parts);
        }
        for (double k = ceil(start / step);; k++) {
            double v = k * step;
            if (v > start + span + 1e-9 * span)
                break;
            int64_t at = (int64_t)llround((v - start) / per * s);
            metres_text(v, text, sizeof text);
            if (!axis) {
                fill_rect(c, left + at, bottom, 1, 6, ink);
                draw_text(c, left + at - text_width(text) / 2, bottom + 8, text);
                if (left + at - text_width(text) / 2 + text_width(text) + 12 > x_end)
                    x_end = left + at - text_width(text) / 2 + text_width(text) + 12;
            } else {
                fill_rect(c, left - 7, bottom - at, 6, 1, ink);
                draw_text(c, left - 10 - text_width(text), bottom - at - GLYPH_H / 2, text);
            }
        }
    }
    snprintf(text, sizeof text, "%c", f->x_name);
    draw_text(c, x_end, bottom + 8, text);
    snprintf(text, sizeof text, "%c", f->y_name);
    draw_text(c, LEGEND_PAD, PNG_FRAME_TOP, text);
    /* Scale bar: a round length about a fifth of the slice's width. */
    double bar = nice_step(f->dx * (double)width, 5);
    int64_t px = (int64_t)llround(bar / f->dx * s), y = bottom + 8 + GLYPH_H + 14;
    fill_rect(c, left, y, px, 4, ink);
    fill_rect(c, left, y - 4, 1, 12, ink);
    fill_rect(c, left + px - 1, y - 4, 1, 12, ink);
    metres_text(bar, text, sizeof text);
    draw_text(c, left + px + 8, y - GLYPH_H / 2 + 2, text);
}

/* Render title, slice, axes and legend into a canvas. */
static int render(canvas *c, const uint16_t *cells, int64_t width, int64_t height,
                  const png_frame *f, const legend_entry *legend, size_t entries)
{
    const int s = png_cell_scale(width, height);
    int64_t legend_w, legend_h;
    legend_size(legend, entries, &legend_w, &legend_h);
    c->width = PNG_FRAME_LEFT + width * s + legend_w;
    int64_t title_w = PNG_FRAME_LEFT + text_width(f->title) + LEGEND_PAD;
    c->width = c->width > title_w ? c->width : title_w;
    int64_t below = height * s + PNG_FRAME_BOTTOM;
    c->height = PNG_FRAME_TOP + (below > legend_h ? below : legend_h);
    c->pixels = malloc((size_t)(c->width * c->height * 3));
    if (!c->pixels)
        return -1;
    memset(c->pixels, 255, (size_t)(c->width * c->height * 3));
    draw_text(c, PNG_FRAME_LEFT, LEGEND_PAD, f->title);
    /* Row 0 of the slice is the bottom (south, or down) of the image. */
    for (int64_t row = 0; row < height; row++)
        for (int64_t col = 0; col < width; col++) {
            uint16_t id = cells[row * width + col];
            size_t lo = 0, hi = entries;
            while (hi - lo > 1) { /* legend is sorted by id */
                size_t mid = (lo + hi) / 2;
                if (legend[mid].id <= id)
                    lo = mid;
                else
                    hi = mid;
            }
            fill_rect(c, PNG_FRAME_LEFT + col * s, PNG_FRAME_TOP + (height - 1 - row) * s, s, s,
                      legend[lo].m.rgb);
        }
    draw_axes(c, f, width, height, s);
    draw_legend(c, PNG_FRAME_LEFT + width * s, PNG_FRAME_TOP, legend, entries);
    return 0;
}

#ifdef STRATA_HAVE_PNG
/* libpng's default writer says only "Write Error": this one keeps errno (a full
 * file system is named ENOSPC) and stays quiet, the caller reports. */
typedef struct {
    FILE *f;
    int error;
} png_sink;

static void sink_write(png_structp png, png_bytep data, size_t length)
{
    png_sink *sink = png_get_io_ptr(png);
    if (fwrite(data, 1, length, sink->f) != length) {
        sink->error = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void sink_flush(png_structp png)
{
    png_sink *sink = png_get_io_ptr(png);
    if (fflush(sink->f) != 0) {
        sink->error = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void sink_message(png_structp png, png_const_charp message)
{
    (void)png, (void)message;
}

static void sink_error(png_structp png, png_const_charp message)
{
    (void)message;
    png_longjmp(png, 1);
}

/* Written to PATH.partial (created afresh: never through a link left at that
 * name) and renamed over PATH when whole, so that a file PATH links to is
 * never truncated and a failure leaves no half-written picture. */
static int encode(const char *path, const canvas *c, char *error, size_t error_size)
{
    char partial[4096];
    if ((size_t)snprintf(partial, sizeof partial, "%s.partial", path) >= sizeof partial) {
        snprintf(error, error_size, "picture path too long: %s", path);
        return -1;
    }
    if (unlink(partial) != 0 && errno != ENOENT) {
        snprintf(error, error_size, "cannot remove the leftover %s: %s", partial, strerror(errno));
        return -1;
    }
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        snprintf(error, error_size, "cannot create %s: %s", partial, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(partial);
        }
        return -1;
    }
    png_sink sink = {f, 0};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, sink_error, sink_message);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        unlink(partial);
        if (sink.error)
            snprintf(error, error_size, "cannot write %s: %s", partial,
                     error_errno_text(sink.error));
        else
            snprintf(error, error_size, "cannot encode %s (libpng failed)", path);
        return -1;
    }
    png_set_write_fn(png, &sink, sink_write, sink_flush);
    png_set_IHDR(png, info, (png_uint_32)c->width, (png_uint_32)c->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Slices are flat colour runs: unfiltered rows compress as well and decode simply. */
    png_set_filter(png, 0, PNG_FILTER_NONE);
    png_write_info(png, info);
    for (int64_t y = 0; y < c->height; y++)
        png_write_row(png, c->pixels + 3 * y * c->width);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f)) {
        snprintf(error, error_size, "cannot write %s: %s", partial, error_errno_text(errno));
        unlink(partial);
        return -1;
    }
    if (rename(partial, path)) {
        snprintf(error, error_size, "cannot rename %s to %s: %s", partial, path, strerror(errno));
        unlink(partial);
        return -1;
    }
    return 0;
}
#else
static int encode(const char *path, const canvas *c, char *error, size_t error_size)
{
    (void)c;
    snprintf(error, error_size,
             "cannot write %s: strata was built without libpng "
             "(install libpng-dev and rebuild)",
             path);
    return -1;
}
#endif

/* A drawing's last step: the canvas encoded to path unless drawing it failed (rc, out
 * of memory), then the canvas and the legend freed. */
static int finish(const char *path, int rc, canvas *c, legend_entry *legend, char *error,
                  size_t error_size)
{
    if (rc)
        snprintf(error, error_size, "cannot draw %s: out of memory", path);
    else
        rc = encode(path, c, error, error_size);
    free(c->pixels);
    free(legend);
    return rc;
}

int png_write_slice(const char *path, const uint16_t *cells, int64_t width, int64_t height,
                    const png_frame *frame, const strata_world *w, char *error, size_t error_size)
{
    /* libpng takes 32-bit sizes; beyond this a quick look is not quick. */
    if (width < 1 || height < 1 || width > 65536 || height > 65536) {
        snprintf(error, error_size,
                 "cannot draw a %" PRId64 " x %" PRId64 " slice to %s (each "
                 "side must be 1..65536 cells)",
                 width, height, path);
        return -1;
    }
    legend_entry *legend = NULL;
    size_t entries = 0;
    canvas c = {NULL, 0, 0};
    int rc = collect_legend(cells, (size_t)(width * height), w, &legend, &entries);
    if (!rc)
        rc = render(&c, cells, width, height, frame, legend, entries);
    return finish(path, rc, &c, legend, error, error_size);
}

int png_write_picture(const char *path, const uint8_t *rgb, const uint16_t *ids, int64_t width,
                      int64_t height, const strata_world *w, char *error, size_t error_size)
{
    if (width < 1 || height < 1 || width > 65536 || height > 65536) {
        snprintf(error, error_size, "cannot draw a %" PRId64 " x %" PRId64 " picture to %s", width,
                 height, path);
        return -1;
    }
    legend_entry *legend = NULL, *shown;
    size_t entries = 0;
    canvas c = {NULL, 0, 0};
    int rc = collect_legend(ids, (size_t)(width * height), w, &legend, &entries);
    shown = legend;
    if (!rc && entries && legend[0].id == 0) { /* 0 is the sky, not a material shown */
        shown++;
        entries--;
    }
    int64_t legend_w = 0, legend_h = 0;
    if (!rc) {
        legend_size(shown, entries, &legend_w, &legend_h);
        c.width = width + legend_w;
        c.height = height > legend_h ? height : legend_h;
        if (!(c.pixels = malloc((size_t)(c.width * c.height * 3))))
            rc = -1;
    }
    if (!rc) {
        memset(c.pixels, 255, (size_t)(c.width * c.height * 3));
        for (int64_t y = 0; y < height; y++)
            memcpy(c.pixels + 3 * y * c.width, rgb + 3 * y * width, (size_t)(3 * width));
        draw_legend(&c, width, 0, shown, entries);
    }
    return finish(path, rc, &c, legend, error, error_size);
}
