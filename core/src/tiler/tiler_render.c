/* Pictures of a scene for people (previews, web map tiles, region views) drawn with the tiler's
 * own bands, masks and scaling, and windows of the source copied to a new raster (chips). The
 * model's tiles stay with rsclip_tiler_read; this file only resamples what it reads. */
#include "base/base.h"
#include "rsclip/tiler.h"
#include "status/status_internal.h"
#include "tiler_internal.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest picture one call draws (pixels per side): a web map tile is 256 or 512. */
#define RENDER_MAX_SIDE 8192

static int resample_alg(const char *name, GDALRIOResampleAlg *alg) {
    static const struct {
        const char *name;
        GDALRIOResampleAlg alg;
    } algs[] = {{"near", GRIORA_NearestNeighbour},   {"nearest", GRIORA_NearestNeighbour},
                {"bilinear", GRIORA_Bilinear},       {"cubic", GRIORA_Cubic},
                {"cubicspline", GRIORA_CubicSpline}, {"lanczos", GRIORA_Lanczos},
                {"average", GRIORA_Average},         {"mode", GRIORA_Mode}};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strcmp(name, algs[i].name) == 0) {
            *alg = algs[i].alg;
            return 0;
        }
    return -1;
}

/* A picture under construction: the channels as float64 (NaN where nothing was read) and the
 * validity of each pixel. */
typedef struct picture {
    int w, h;
    size_t n;
    double *v[3];
    uint8_t *valid;
} picture;

static void picture_free(picture *p) {
    for (int c = 0; c < 3; c++) free(p->v[c]);
    free(p->valid);
}

static int picture_new(rsclip_tiler *t, int w, int h, picture *p) {
    memset(p, 0, sizeof *p);
    p->w = w;
    p->h = h;
    p->n = (size_t)w * (size_t)h;
    for (int c = 0; c < 3; c++) {
        p->v[c] = rsclip__malloc(p->n * sizeof(double));
        if (!p->v[c]) break;
        for (size_t i = 0; i < p->n; i++) p->v[c][i] = NAN;
    }
    p->valid = rsclip__calloc(p->n, 1);
    if (!p->v[0] || !p->v[1] || !p->v[2] || !p->valid) {
        picture_free(p);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory for a picture", t->path);
    }
    return RSCLIP_OK;
}

/* Scale the picture into rgba with the tiler's rule; invalid pixels are transparent black. */
static int64_t picture_to_rgba(rsclip_tiler *t, picture *p, uint8_t *rgba) {
    memset(rgba, 0, p->n * 4);
    for (int c = 0; c < 3; c++) {
        int src = t->dup_of[c] >= 0 ? t->dup_of[c] : c;
        rsclip__tiler_scale(t, c, p->v[src], p->n, rgba, 4, p->valid);
    }
    int64_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->valid[i]) {
            rgba[4 * i + 3] = 255;
            k++;
        } else {
            rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = 0;
        }
    }
    return k;
}

/* Output pixels [lo, hi) of a side of n pixels whose centres lie inside [0, extent) of the grid,
 * for an area starting at a0 with s grid pixels per output pixel. */
static void inside_range(double a0, double s, int n, int extent, int *lo, int *hi) {
    double f0 = ceil((0.0 - a0) / s - 0.5), f1 = ceil((extent - a0) / s - 0.5);
    *lo = f0 < 0 ? 0 : f0 > n ? n : (int)f0;
    *hi = f1 < *lo ? *lo : f1 > n ? n : (int)f1;
}

/* Read a grid window into the picture (window mode): the output pixels whose centres fall inside
 * the scene are read with GDAL's resampling, masks with nearest neighbour. */
static int render_window(rsclip_tiler *t, const double area[4], GDALRIOResampleAlg alg, picture *p,
                         rsclip__gdal_errors *e) {
    const rsclip_raster_info *si = &t->info;
    double sx = area[2] / p->w, sy = area[3] / p->h;
    int i0, i1, j0, j1;
    inside_range(area[0], sx, p->w, si->width, &i0, &i1);
    inside_range(area[1], sy, p->h, si->height, &j0, &j1);
    if (i0 >= i1 || j0 >= j1) return RSCLIP_OK; /* nothing of the scene in the area */
    double x = fmax(0.0, area[0] + i0 * sx), y = fmax(0.0, area[1] + j0 * sy);
    double w = fmin((double)si->width, area[0] + i1 * sx) - x;
    double h = fmin((double)si->height, area[1] + j1 * sy) - y;
    int nx = (int)floor(x), ny = (int)floor(y);
    int nw = (int)ceil(x + w) - nx, nh = (int)ceil(y + h) - ny;
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    if (nx + nw > si->width) nw = si->width - nx;
    if (ny + nh > si->height) nh = si->height - ny;
    GDALRasterIOExtraArg ex;
    INIT_RASTERIO_EXTRA_ARG(ex);
    ex.eResampleAlg = alg;
    ex.bFloatingPointWindowValidity = TRUE;
    ex.dfXOff = x;
    ex.dfYOff = y;
    ex.dfXSize = w;
    ex.dfYSize = h;
    int bw = i1 - i0, bh = j1 - j0;
    size_t off = (size_t)j0 * p->w + i0;
    GSpacing line = (GSpacing)p->w * (GSpacing)sizeof(double);
    for (int c = 0; c < 3; c++) {
        if (t->dup_of[c] >= 0) continue;
        if (GDALRasterIOEx(t->band[c], GF_Read, nx, ny, nw, nh, p->v[c] + off, bw, bh, GDT_Float64,
                           sizeof(double), line, &ex) != CE_None)
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                      "cannot read a window of the scene");
    }
    for (int j = j0; j < j1; j++) memset(p->valid + (size_t)j * p->w + i0, 1, (size_t)bw);
    uint8_t *m = rsclip__malloc((size_t)bw * (size_t)bh);
    if (!m) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", t->path);
    ex.eResampleAlg = GRIORA_NearestNeighbour;
    int rc = RSCLIP_OK;
    for (int k = 0; k < t->n_mask && !rc; k++) {
        if (GDALRasterIOEx(t->mask[k], GF_Read, nx, ny, nw, nh, m, bw, bh, GDT_Byte, 0, 0, &ex) !=
            CE_None) {
            rc = rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                    "cannot read the mask of a window");
            break;
        }
        for (int j = 0; j < bh; j++)
            for (int i = 0; i < bw; i++)
                if (!m[(size_t)j * bw + i]) p->valid[off + (size_t)j * p->w + i] = 0;
    }
    free(m);
    return rc;
}

/* The selected bands of the source as a VRT (kept for the tiler's life): what warps read. An
 * expanded palette is read from the expanded view. */
static int band_view(rsclip_tiler *t, rsclip__gdal_errors *e) {
    if (t->view) return RSCLIP_OK;
    const rsclip_raster_info *si = &t->info;
    char **argv = NULL;
    argv = CSLAddString(argv, "-of");
    argv = CSLAddString(argv, "VRT");
    int nb = t->palette ? 3 : si->n_bands;
    for (int c = 0; c < nb; c++) {
        char b[16];
        snprintf(b, sizeof b, "%d", t->palette ? c + 1 : si->bands[c]);
        argv = CSLAddString(argv, "-b");
        argv = CSLAddString(argv, b);
    }
    if (t->p.mask_mode == RSCLIP_TILER_MASK_NONE) {
        argv = CSLAddString(argv, "-a_nodata");
        argv = CSLAddString(argv, "none");
    }
    if (t->p.mask_mode == RSCLIP_TILER_MASK_NONE ||
        (t->p.mask_mode == RSCLIP_TILER_MASK_NO_ALPHA && (si->mask_flags & GMF_ALPHA))) {
        argv = CSLAddString(argv, "-mask");
        argv = CSLAddString(argv, "none");
    }
    GDALTranslateOptions *opt = GDALTranslateOptionsNew(argv, NULL);
    CSLDestroy(argv);
    if (!opt) return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path, "band selection");
    t->view = GDALTranslate("", t->palette ? t->ds : t->src, opt, NULL);
    GDALTranslateOptionsFree(opt);
    if (!t->view)
        return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                  "cannot select the bands to draw");
    return RSCLIP_OK;
}

/* Warp the selected bands into the area of crs (warp mode): float64 with NaN where no valid source
 * pixel lands (GDAL's warper honours nodata and mask bands). */
static int render_warp(rsclip_tiler *t, const char *crs, const double area[4], const char *alg,
                       picture *p, rsclip__gdal_errors *e) {
    if (t->info.georef != RSCLIP_GEOREF_CRS)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: no CRS, so it cannot be drawn in %s",
                             t->path, crs);
    int rc = band_view(t, e);
    if (rc) return rc;
    char te[4][40], ts[2][16];
    for (int i = 0; i < 4; i++) snprintf(te[i], sizeof te[i], "%.17g", area[i]);
    snprintf(ts[0], sizeof ts[0], "%d", p->w);
    snprintf(ts[1], sizeof ts[1], "%d", p->h);
    const char *args[] = {"-of",     "MEM",        "-t_srs", crs,   "-te",
                          te[0],     te[1],        te[2],    te[3], "-ts",
                          ts[0],     ts[1],        "-r",     alg,   "-ot",
                          "Float64", "-dstnodata", "nan",    "-wo", "INIT_DEST=NO_DATA",
                          "-nomd",   NULL};
    GDALWarpAppOptions *opt = GDALWarpAppOptionsNew((char **)args, NULL);
    if (!opt)
        return rsclip__gdal_error(e, RSCLIP_ERR_INVALID_ARG, "%s: cannot warp to %s", t->path, crs);
    GDALDatasetH src = t->view;
    GDALDatasetH out = GDALWarp("", NULL, 1, &src, opt, NULL);
    GDALWarpAppOptionsFree(opt);
    if (!out)
        return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: cannot warp it to %s", t->path, crs);
    int nb = GDALGetRasterCount(out);
    for (int c = 0; c < 3 && !rc; c++) {
        if (t->dup_of[c] >= 0) continue;
        GDALRasterBandH b = GDALGetRasterBand(out, c < nb ? c + 1 : nb);
        if (GDALRasterIO(b, GF_Read, 0, 0, p->w, p->h, p->v[c], p->w, p->h, GDT_Float64, 0, 0) !=
            CE_None)
            rc = rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path, "cannot read a warp");
    }
    GDALClose(out);
    memset(p->valid, 1, p->n); /* NaN (no source) clears validity when scaled */
    return rc;
}

int rsclip_tiler_render(rsclip_tiler *t, const char *crs, const double area[4], int out_w,
                        int out_h, const char *resampling, uint8_t *rgba, size_t rgba_size,
                        int64_t *n_valid) {
    if (n_valid) *n_valid = 0;
    if (!t || !area || !rgba)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_render: NULL argument");
    if (out_w < 1 || out_h < 1 || out_w > RENDER_MAX_SIDE || out_h > RENDER_MAX_SIDE)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: picture of %d x %d pixels (1..%d)",
                             t->path, out_w, out_h, RENDER_MAX_SIDE);
    if (rgba_size < (size_t)out_w * (size_t)out_h * 4)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: picture buffer of %zu bytes, %zu needed",
                             t->path, rgba_size, (size_t)out_w * (size_t)out_h * 4);
    for (int i = 0; i < 4; i++)
        if (!isfinite(area[i]))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: the area to draw is not finite",
                                 t->path);
    if (crs ? !(area[2] > area[0] && area[3] > area[1]) : !(area[2] > 0 && area[3] > 0))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: the area to draw is empty", t->path);
    const char *alg = resampling ? resampling : "bilinear";
    GDALRIOResampleAlg ralg;
    if (resample_alg(alg, &ralg))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: unknown resampling '%s'", t->path, alg);
    int rc = rsclip_tiler_prepare(t);
    if (rc) return rc;
    picture p;
    rc = picture_new(t, out_w, out_h, &p);
    if (rc) return rc;
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    rc = crs ? render_warp(t, crs, area, alg, &p, &e) : render_window(t, area, ralg, &p, &e);
    rsclip__gdal_errors_pop(&e);
    if (!rc) {
        int64_t k = picture_to_rgba(t, &p, rgba);
        if (n_valid) *n_valid = k;
    }
    picture_free(&p);
    return rc;
}

int rsclip_tiler_save_window(rsclip_tiler *t, const double src_window[4], const char *path,
                             const char *format) {
    if (!t || !src_window || !path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_save_window: NULL argument");
    const rsclip_raster_info *si = &t->info;
    const double *w = src_window;
    const double eps = 1e-6;
    for (int i = 0; i < 4; i++)
        if (!isfinite(w[i]))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: window is not finite", t->path);
    if (!(w[2] > 0 && w[3] > 0) || w[0] < -eps || w[1] < -eps ||
        w[0] + w[2] > si->src_width + eps || w[1] + w[3] > si->src_height + eps)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: window %.9g,%.9g %.9gx%.9g is not inside the %dx%d raster",
                             t->path, w[0], w[1], w[2], w[3], si->src_width, si->src_height);
    char win[4][40], size[2][16];
    for (int i = 0; i < 4; i++) snprintf(win[i], sizeof win[i], "%.17g", w[i]);
    /* Whole output pixels of about the source size; the geotransform then stretches them so that
     * the copy covers exactly the window (GDAL computes it from the fractional window). */
    int ow = (int)floor(w[2] + 0.5), oh = (int)floor(w[3] + 0.5);
    snprintf(size[0], sizeof size[0], "%d", ow < 1 ? 1 : ow);
    snprintf(size[1], sizeof size[1], "%d", oh < 1 ? 1 : oh);
    const char *args[] = {"-of",     format ? format : "GTiff",
                          "-srcwin", win[0],
                          win[1],    win[2],
                          win[3],    "-outsize",
                          size[0],   size[1],
                          NULL};
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = RSCLIP_OK;
    GDALTranslateOptions *opt = GDALTranslateOptionsNew((char **)args, NULL);
    if (!opt) rc = rsclip__gdal_error(&e, RSCLIP_ERR_INVALID_ARG, "%s: bad format", path);
    GDALDatasetH out = opt ? GDALTranslate(path, t->src, opt, NULL) : NULL;
    if (opt) GDALTranslateOptionsFree(opt);
    if (!rc && !out)
        rc =
            rsclip__gdal_error(&e, RSCLIP_ERR_IO, "%s: cannot write a window of %s", path, t->path);
    if (out) {
        GDALClose(out);
        if (!rc && e.n_failures)
            rc = rsclip__gdal_error(&e, RSCLIP_ERR_IO, "%s: cannot finish writing", path);
    }
    rsclip__gdal_errors_pop(&e);
    return rc;
}
