/* The tiler: one GDAL dataset, its tile grid, masks, scaling and footprints (see rsclip/tiler.h
 * for the design choices; this file only implements them). */
#include "base/base.h"
#include "rsclip/tiler.h"
#include "rsclip/time.h"
#include "status/status_internal.h"
#include "tiler_internal.h"

#include <gdal.h>
#include <gdal_utils.h>
#include <gdalwarper.h>
#include <ogr_srs_api.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rsclip_tiler_params rsclip_tiler_default_params(void) {
    rsclip_tiler_params p;
    memset(&p, 0, sizeof p);
    p.tile_size = 256;
    p.stride = 0;
    p.n_bands = 0;
    p.min_valid = 0.5;
    p.scale_mode = RSCLIP_TILER_SCALE_AUTO;
    p.pct_low = 2.0;
    p.pct_high = 98.0;
    p.stats_size = 1024;
    p.gsd = 0.0;
    p.resampling = NULL;
    p.mask_mode = RSCLIP_TILER_MASK_AUTO;
    p.allow_pixel_coords = 0;
    p.densify = 8;
    return p;
}

static int check_params(const char *path, rsclip_tiler_params *p) {
    if (p->tile_size < 1 || p->tile_size > 8192)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile_size %d out of range 1..8192", path,
                             p->tile_size);
    if (p->stride == 0) p->stride = p->tile_size;
    if (p->stride < 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: stride %d must be positive", path,
                             p->stride);
    if (p->n_bands != 0 && p->n_bands != 1 && p->n_bands != 3)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: n_bands %d must be 0, 1 or 3", path,
                             p->n_bands);
    if (!(p->min_valid >= 0.0 && p->min_valid <= 1.0))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: min_valid %g out of range 0..1", path,
                             p->min_valid);
    if (p->scale_mode < RSCLIP_TILER_SCALE_AUTO || p->scale_mode > RSCLIP_TILER_SCALE_PERCENTILE)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: unknown scale_mode %d", path,
                             p->scale_mode);
    if (p->scale_mode == RSCLIP_TILER_SCALE_RANGE) {
        for (int c = 0; c < 3; c++)
            if (!(p->scale_max[c] > p->scale_min[c]) || !isfinite(p->scale_min[c]) ||
                !isfinite(p->scale_max[c]))
                return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                     "%s: scale range %g..%g of channel %d is empty", path,
                                     p->scale_min[c], p->scale_max[c], c + 1);
    }
    if (!(p->pct_low >= 0.0 && p->pct_low < p->pct_high && p->pct_high <= 100.0))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: percentiles %g..%g invalid", path,
                             p->pct_low, p->pct_high);
    if (p->stats_size < 16 || p->stats_size > 16384)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: stats_size %d out of range 16..16384",
                             path, p->stats_size);
    if (!(p->gsd >= 0.0) || !isfinite(p->gsd))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: gsd %g invalid", path, p->gsd);
    if (p->mask_mode < RSCLIP_TILER_MASK_AUTO || p->mask_mode > RSCLIP_TILER_MASK_NONE)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: unknown mask_mode %d", path,
                             p->mask_mode);
    if (p->max_tiles < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: max_tiles %lld is negative", path,
                             (long long)p->max_tiles);
    if (p->densify < 1 || p->densify > RSCLIP_TILER_MAX_DENSIFY)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: densify %d out of range 1..%d", path,
                             p->densify, RSCLIP_TILER_MAX_DENSIFY);
    return RSCLIP_OK;
}

static void gt_apply(const double *gt, double px, double py, double *x, double *y) {
    *x = gt[0] + px * gt[1] + py * gt[2];
    *y = gt[3] + px * gt[4] + py * gt[5];
}

/* Ground distance in metres between two nearby lon/lat points on the WGS84 ellipsoid (radii of
 * curvature at their mean latitude; exact enough for a one-pixel step). */
static double ground_dist(double lon0, double lat0, double lon1, double lat1) {
    const double a = 6378137.0, e2 = 0.00669437999014;
    double phi = 0.5 * (lat0 + lat1) * M_PI / 180.0;
    double s = sin(phi), w = 1.0 - e2 * s * s;
    double m = a * (1.0 - e2) / (w * sqrt(w)), n = a / sqrt(w);
    double dlat = (lat1 - lat0) * M_PI / 180.0, dlon = (lon1 - lon0) * M_PI / 180.0;
    return hypot(dlat * m, dlon * n * cos(phi));
}

/* Metres per pixel along columns (gx) and rows (gy) at the grid centre. */
static int pixel_metres(rsclip_tiler *t, const double *gt, int w, int h, double *gx, double *gy) {
    double x[3], y[3];
    double cx = 0.5 * w, cy = 0.5 * h;
    gt_apply(gt, cx, cy, &x[0], &y[0]);
    gt_apply(gt, cx + 1.0, cy, &x[1], &y[1]);
    gt_apply(gt, cx, cy + 1.0, &x[2], &y[2]);
    int ok[3] = {0, 0, 0};
    if (!OCTTransformEx(t->ct, 3, x, y, NULL, ok) || !ok[0] || !ok[1] || !ok[2]) return -1;
    *gx = ground_dist(x[0], y[0], x[1], y[1]);
    *gy = ground_dist(x[0], y[0], x[2], y[2]);
    return (*gx > 0 && *gy > 0) ? 0 : -1;
}

/* Lon/lat a little past the world's edge (an EPSG:4326 raster whose outer pixel edges overshoot
 * +-180/+-90 by half a pixel) are clamped onto it; further out is an error (-1). */
static int clamp_lonlat(double *lon, double *lat) {
    const double s = RSCLIP_TILER_LONLAT_SLACK;
    if (*lon < -180.0 - s || *lon > 180.0 + s || *lat < -90.0 - s || *lat > 90.0 + s) return -1;
    *lon = *lon < -180.0 ? -180.0 : *lon > 180.0 ? 180.0 : *lon;
    *lat = *lat < -90.0 ? -90.0 : *lat > 90.0 ? 90.0 : *lat;
    return 0;
}

static int grid_count(int w, int tile, int stride) {
    if (w <= tile) return 1;
    return (w - tile + stride - 1) / stride + 1;
}

static int grid_off(int i, int w, int tile, int stride) {
    if (w <= tile) return 0;
    int64_t o = (int64_t)i * stride;
    return o > w - tile ? w - tile : (int)o;
}

/* ---- the tile grid ------------------------------------------------------------------------ */

/* Windows of the grid, counted arithmetically (a size read from a file never drives a loop), and
 * refused past params.max_tiles: a 200-byte VRT can declare 2^31 x 2^31 pixels. */
static int setup_grid(rsclip_tiler *t) {
    rsclip_raster_info *si = &t->info;
    si->tile_size = t->p.tile_size;
    si->stride = t->p.stride;
    si->tiles_x = grid_count(si->width, si->tile_size, si->stride);
    si->tiles_y = grid_count(si->height, si->tile_size, si->stride);
    si->n_tiles = (int64_t)si->tiles_x * si->tiles_y;
    int64_t cap = t->p.max_tiles > 0 ? t->p.max_tiles : RSCLIP_TILER_MAX_TILES;
    if (si->n_tiles > cap)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: %d x %d pixels at stride %d make %lld tiles, more than the limit "
                             "of %lld per scene (raise it with max_tiles / --max-tiles if this "
                             "raster is real)",
                             t->path, si->width, si->height, si->stride, (long long)si->n_tiles,
                             (long long)cap);
    return RSCLIP_OK;
}

/* A geotransform that maps pixels onto a plane: finite, and an area per pixel that is not zero
 * (a zero pixel size would give every tile the same footprint). */
static int check_geotransform(const rsclip_tiler *t, const double gt[6]) {
    for (int i = 0; i < 6; i++)
        if (!isfinite(gt[i]))
            return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                                 "%s: geotransform has a non-finite coefficient (%g)", t->path,
                                 gt[i]);
    double det = gt[1] * gt[5] - gt[2] * gt[4];
    if (!(fabs(det) > 0.0))
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: degenerate geotransform (pixel size %g x %g, rotation %g, %g): a "
                             "pixel covers no ground",
                             t->path, gt[1], gt[5], gt[2], gt[4]);
    return RSCLIP_OK;
}

/* ---- band choice ------------------------------------------------------------------------ */

static void bands_text(rsclip_raster_info *si) {
    if (si->n_bands == 1)
        snprintf(si->bands_text, sizeof si->bands_text, "%d", si->bands[0]);
    else
        snprintf(si->bands_text, sizeof si->bands_text, "%d,%d,%d", si->bands[0], si->bands[1],
                 si->bands[2]);
}

static int choose_bands(rsclip_tiler *t) {
    const char *path = t->path;
    int nb = GDALGetRasterCount(t->opened); /* not the alpha band a GCP warp adds */
    rsclip_raster_info *si = &t->info;
    if (t->p.n_bands > 0) {
        for (int c = 0; c < t->p.n_bands; c++)
            if (t->p.bands[c] < 1 || t->p.bands[c] > nb)
                return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                     "%s: band %d out of range (the raster has %d band%s)", path,
                                     t->p.bands[c], nb, nb == 1 ? "" : "s");
        si->n_bands = t->p.n_bands;
        for (int c = 0; c < 3; c++) si->bands[c] = t->p.bands[t->p.n_bands == 1 ? 0 : c];
        bands_text(si);
        return RSCLIP_OK;
    }
    int r = 0, g = 0, b = 0, first[3] = {0, 0, 0}, n_color = 0;
    for (int i = 1; i <= nb; i++) {
        GDALColorInterp ci = GDALGetRasterColorInterpretation(GDALGetRasterBand(t->src, i));
        if (ci == GCI_RedBand && !r) r = i;
        if (ci == GCI_GreenBand && !g) g = i;
        if (ci == GCI_BlueBand && !b) b = i;
        if (ci != GCI_AlphaBand && n_color < 3) first[n_color++] = i;
    }
    if (r && g && b) {
        si->n_bands = 3;
        si->bands[0] = r;
        si->bands[1] = g;
        si->bands[2] = b;
    } else if (n_color == 3) {
        si->n_bands = 3;
        memcpy(si->bands, first, sizeof first);
        si->bands_assumed = nb > 3; /* e.g. blue, green, red of a Sentinel-2 stack as R, G, B */
    } else {
        si->n_bands = 1;
        si->bands[0] = si->bands[1] = si->bands[2] = n_color ? first[0] : 1;
        GDALRasterBandH b1 = GDALGetRasterBand(t->src, si->bands[0]);
        t->palette = GDALGetRasterColorInterpretation(b1) == GCI_PaletteIndex &&
                     GDALGetRasterColorTable(b1) != NULL;
    }
    bands_text(si);
    return RSCLIP_OK;
}

/* ---- CRS and georeferencing --------------------------------------------------------------- */

static int setup_crs(rsclip_tiler *t, rsclip__gdal_errors *e) {
    rsclip_raster_info *si = &t->info;
    double gt[6];
    int has_gt = GDALGetGeoTransform(t->src, gt) == CE_None;
    /* GDAL's default for "no geotransform": pixel coordinates with y down. */
    if (!has_gt) {
        gt[0] = 0.0, gt[1] = 1.0, gt[2] = 0.0, gt[3] = 0.0, gt[4] = 0.0, gt[5] = 1.0;
    }
    memcpy(si->src_geotransform, gt, sizeof gt);
    if (has_gt) {
        int rc = check_geotransform(t, gt);
        if (rc) return rc;
    }
    OGRSpatialReferenceH srs = has_gt ? GDALGetSpatialRef(t->src) : NULL;
    si->georef = !has_gt ? RSCLIP_GEOREF_NONE : srs ? RSCLIP_GEOREF_CRS : RSCLIP_GEOREF_LOCAL;
    if (srs) {
        t->srs = OSRClone(srs);
        if (!t->srs)
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path, "cannot copy the CRS");
        OSRSetAxisMappingStrategy(t->srs, OAMS_TRADITIONAL_GIS_ORDER);
        if (OSRExportToWkt(t->srs, &t->wkt) != OGRERR_NONE) {
            CPLFree(t->wkt);
            t->wkt = NULL;
        }
        const char *opts[] = {"FORMAT=WKT2_2019", NULL};
        if (OSRExportToWktEx(t->srs, &t->wkt2, opts) != OGRERR_NONE) {
            CPLFree(t->wkt2);
            t->wkt2 = NULL;
        }
        const char *an = OSRGetAuthorityName(t->srs, NULL);
        const char *ac = OSRGetAuthorityCode(t->srs, NULL);
        if (an && ac && EQUAL(an, "EPSG")) {
            si->epsg = atoi(ac);
        } else {
            int n = 0, *conf = NULL;
            OGRSpatialReferenceH *m = OSRFindMatches(t->srs, NULL, &n, &conf);
            if (m && n > 0 && conf && conf[0] >= 100) {
                an = OSRGetAuthorityName(m[0], NULL);
                ac = OSRGetAuthorityCode(m[0], NULL);
                if (an && ac && EQUAL(an, "EPSG")) si->epsg = atoi(ac);
            }
            OSRFreeSRSArray(m);
            CPLFree(conf);
        }
        OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
        if (wgs && OSRSetWellKnownGeogCS(wgs, "WGS84") == OGRERR_NONE) {
            OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
            t->ct = OCTNewCoordinateTransformation(t->srs, wgs);
        }
        OSRDestroySpatialReference(wgs);
        if (!t->ct) si->georef = RSCLIP_GEOREF_LOCAL;
    }
    si->crs_wkt = t->wkt ? t->wkt : "";
    si->crs_wkt2 = t->wkt2 ? t->wkt2 : "";
    if (si->georef != RSCLIP_GEOREF_CRS && !t->p.allow_pixel_coords) {
        if (si->georef == RSCLIP_GEOREF_NONE)
            return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                                 "%s: no georeferencing (no geotransform); allow pixel "
                                 "coordinates to index it anyway",
                                 t->path);
        return rsclip__gdal_error(e, RSCLIP_ERR_UNSUPPORTED, "%s: %s", t->path,
                                  "no usable CRS (cannot map it to WGS84); allow pixel "
                                  "coordinates to index it anyway");
    }
    return RSCLIP_OK;
}

/* ---- resampling to a ground resolution ----------------------------------------------------- */

static int gsd_args(rsclip_tiler *t, char ***argv);

/* The view tiles are read from when it is not the source itself: resampled to params.gsd and/or
 * a palette expanded to RGB, as an in-memory VRT (gdal_translate -of VRT). */
static int setup_gsd(rsclip_tiler *t, rsclip__gdal_errors *e) {
    rsclip_raster_info *si = &t->info;
    double gx = 0, gy = 0;
    if (si->georef == RSCLIP_GEOREF_CRS &&
        pixel_metres(t, si->src_geotransform, si->src_width, si->src_height, &gx, &gy) == 0) {
        si->native_gsd = 0.5 * (gx + gy);
        si->gsd_x = gx;
        si->gsd_y = gy;
    }
    if (t->p.gsd <= 0.0 && !t->palette) return RSCLIP_OK;
    char **argv = NULL;
    argv = CSLAddString(argv, "-of");
    argv = CSLAddString(argv, "VRT");
    if (t->palette) {
        char b[16];
        snprintf(b, sizeof b, "%d", si->bands[0]);
        argv = CSLAddString(argv, "-b");
        argv = CSLAddString(argv, b);
        argv = CSLAddString(argv, "-expand");
        argv = CSLAddString(argv, "rgb");
    }
    int rc = t->p.gsd > 0.0 ? gsd_args(t, &argv) : RSCLIP_OK;
    if (rc) {
        CSLDestroy(argv);
        return rc;
    }
    GDALTranslateOptions *opt = GDALTranslateOptionsNew(argv, NULL);
    CSLDestroy(argv);
    if (!opt)
        return rsclip__gdal_error(e, RSCLIP_ERR_INVALID_ARG, "%s: %s", t->path,
                                  "invalid resampling method for gsd");
    int usage = 0;
    t->vrt = GDALTranslate("", t->src, opt, &usage);
    GDALTranslateOptionsFree(opt);
    if (!t->vrt)
        return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                  t->palette ? "cannot expand the palette"
                                             : "cannot resample to the target gsd");
    return RSCLIP_OK;
}

/* gdal_translate arguments that resample to params.gsd (appended to *argv). */
static int gsd_args(rsclip_tiler *t, char ***argv) {
    rsclip_raster_info *si = &t->info;
    int w = si->src_width, h = si->src_height;
    double gx = si->gsd_x, gy = si->gsd_y;
    if (si->native_gsd <= 0.0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: a target gsd needs a CRS to measure the ground resolution",
                             t->path);
    double nw = floor((double)w * gx / t->p.gsd + 0.5), nh = floor((double)h * gy / t->p.gsd + 0.5);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    if (nw > 1e9 || nh > 1e9)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: gsd %g m gives a %.0f x %.0f grid",
                             t->path, t->p.gsd, nw, nh);
    const char *alg =
        t->resampling ? t->resampling : (t->p.gsd > si->native_gsd ? "average" : "cubic");
    char sw[32], sh[32];
    snprintf(sw, sizeof sw, "%.0f", nw);
    snprintf(sh, sizeof sh, "%.0f", nh);
    *argv = CSLAddString(*argv, "-outsize");
    *argv = CSLAddString(*argv, sw);
    *argv = CSLAddString(*argv, sh);
    *argv = CSLAddString(*argv, "-r");
    *argv = CSLAddString(*argv, alg);
    return RSCLIP_OK;
}

/* ---- acquisition time -------------------------------------------------------------------- */

/* The first metadata key (in the order of rsclip/tiler.h) whose value parses as a time. */
static void read_datetime(rsclip_tiler *t) {
    static const struct {
        const char *domain, *key;
    } keys[] = {{"IMAGERY", "ACQUISITIONDATETIME"},
                {NULL, "ACQUISITIONDATETIME"},
                {NULL, "DATE_ACQUIRED"},
                {NULL, "SENSING_TIME"},
                {NULL, "DATATAKE_1_DATATAKE_SENSING_START"},
                {NULL, "PRODUCT_START_TIME"},
                {NULL, "ACQUISITION_DATE"},
                {NULL, "DATETIME"},
                {NULL, "TIFFTAG_DATETIME"}};
    rsclip_raster_info *si = &t->info;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v = GDALGetMetadataItem(t->opened, keys[k].key, keys[k].domain);
        if (!v || !*v) continue;
        char text[128];
        snprintf(text, sizeof text, "%s", v);
        if (strcmp(keys[k].key, "DATE_ACQUIRED") == 0) { /* Landsat MTL: the time apart */
            const char *tm = GDALGetMetadataItem(t->opened, "SCENE_CENTER_TIME", NULL);
            if (tm && *tm) {
                char clean[40];
                size_t j = 0;
                for (const char *c = tm; *c && j + 1 < sizeof clean; c++)
                    if (*c != '"') clean[j++] = *c;
                clean[j] = 0;
                char *dot = strchr(clean, '.'); /* 15:59:36.0551140Z: keep 3 decimals */
                if (dot && strlen(dot) > 4) memmove(dot + 4, "Z", 2);
                snprintf(text, sizeof text, "%.20sT%.39s", v, clean);
            }
        }
        rsclip_time tm;
        if (rsclip_time_parse(text, &tm) != RSCLIP_OK) {
            rsclip_clear_error();
            continue;
        }
        if (rsclip_time_format(&tm, si->datetime, sizeof si->datetime) != RSCLIP_OK) {
            rsclip_clear_error();
            si->datetime[0] = 0;
            continue;
        }
        snprintf(si->datetime_key, sizeof si->datetime_key, "%s%s%s",
                 keys[k].domain ? keys[k].domain : "", keys[k].domain ? ":" : "", keys[k].key);
        return;
    }
}

/* ---- open / close ------------------------------------------------------------------------- */

static int open_impl(rsclip_tiler *t, rsclip__gdal_errors *e) {
    rsclip_raster_info *si = &t->info;
    const char *path = t->path;
    VSIStatBufL st;
    int exists = VSIStatL(path, &st) == 0;
    if (exists && VSI_ISDIR(st.st_mode))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: is a folder, not a raster", path);
    t->opened = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    t->src = t->opened;
    if (!t->src) {
        /* Not there at all (and not a GDAL connection string such as NETCDF:"x.nc":v). */
        if (!exists && !strchr(path, ':'))
            return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no such file", path);
        return rsclip__gdal_error(e, RSCLIP_ERR_FORMAT, "%s: GDAL cannot open it as a raster",
                                  path);
    }
    GDALDriverH drv = GDALGetDatasetDriver(t->opened);
    double gt[6];
    if (GDALGetGeoTransform(t->opened, gt) != CE_None && GDALGetGCPCount(t->opened) >= 3 &&
        GDALGetGCPSpatialRef(t->opened) && GDALGetRasterCount(t->opened) > 0) {
        /* An alpha band after the source bands marks what lies outside the source image. */
        GDALWarpOptions *wo = GDALCreateWarpOptions();
        if (!wo) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
        wo->nDstAlphaBand = GDALGetRasterCount(t->opened) + 1;
        t->warped = GDALAutoCreateWarpedVRT(t->opened, NULL, NULL, GRA_Bilinear, 0.125, wo);
        GDALDestroyWarpOptions(wo);
        if (!t->warped)
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", path,
                                      "cannot warp it by its ground control points");
        t->src = t->warped;
    }
    si->path = t->path;
    si->driver = drv ? GDALGetDriverShortName(drv) : "";
    si->src_width = GDALGetRasterXSize(t->src);
    si->src_height = GDALGetRasterYSize(t->src);
    si->src_bands = GDALGetRasterCount(t->opened);
    if (si->src_bands < 1 || si->src_width < 1 || si->src_height < 1) {
        char **sub = GDALGetMetadata(t->src, "SUBDATASETS");
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: no raster bands%s", path,
                             sub ? " (it has subdatasets: open one of them)" : "");
    }
    int rc = choose_bands(t);
    if (rc) return rc;
    rc = setup_crs(t, e);
    if (rc) return rc;
    rc = setup_gsd(t, e);
    if (rc) return rc;
    t->ds = t->vrt ? t->vrt : t->src;
    si->width = GDALGetRasterXSize(t->ds);
    si->height = GDALGetRasterYSize(t->ds);
    if (t->vrt) {
        if (GDALGetGeoTransform(t->vrt, si->geotransform) != CE_None)
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", path,
                                      "resampled grid has no geotransform");
        double gx, gy;
        si->gsd = pixel_metres(t, si->geotransform, si->width, si->height, &gx, &gy) == 0
                      ? 0.5 * (gx + gy)
                      : 0.0;
    } else {
        memcpy(si->geotransform, si->src_geotransform, sizeof si->geotransform);
        si->gsd = si->native_gsd;
    }
    for (int c = 0; c < 3; c++) {
        /* An expanded palette is bands 1, 2, 3 of the VRT. */
        t->band[c] = GDALGetRasterBand(t->ds, t->palette ? c + 1 : si->bands[c]);
        if (!t->band[c])
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", path, "cannot get a band");
        t->dup_of[c] = -1;
        for (int d = 0; d < c && !t->palette; d++)
            if (si->bands[d] == si->bands[c] && t->dup_of[c] < 0) t->dup_of[c] = d;
    }
    si->data_type = GDALGetDataTypeName(GDALGetRasterDataType(t->band[0]));
    for (int c = 0; c < 3; c++) {
        GDALDataType dt = GDALGetRasterDataType(t->band[c]);
        if (GDALDataTypeIsComplex(dt))
            return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: band %d has complex data (%s)", path,
                                 si->bands[c], GDALGetDataTypeName(dt));
    }
    rsclip__tiler_setup_masks(t);
    read_datetime(t);
    rc = rsclip__fingerprint(path, t->opened, &si->fingerprint);
    if (rc) return rc;
    return setup_grid(t);
}

/* Statistics and tile buffers: the part of opening that reads pixels. */
static int prepare_impl(rsclip_tiler *t, rsclip__gdal_errors *e) {
    int rc = rsclip__tiler_setup_scaling(t, e);
    if (rc) return rc;
    size_t npx = (size_t)t->p.tile_size * (size_t)t->p.tile_size, nbytes;
    if (rsclip__mul_size(npx, sizeof(double), &nbytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: tile buffers too large", t->path);
    t->valid = (uint8_t *)rsclip__malloc(npx);
    t->mtmp = (uint8_t *)rsclip__malloc(npx);
    t->vbuf = (double *)rsclip__malloc(nbytes);
    if (!t->valid || !t->mtmp || !t->vbuf)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory for tile buffers", t->path);
    t->prepared = 1;
    return RSCLIP_OK;
}

int rsclip_tiler_prepare(rsclip_tiler *t) {
    if (!t) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_prepare: tiler is NULL");
    if (t->prepared) return RSCLIP_OK;
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = prepare_impl(t, &e);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

int rsclip_tiler_open(const char *path, const rsclip_tiler_params *params, rsclip_tiler **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_open: no path");
    rsclip_tiler_params p = params ? *params : rsclip_tiler_default_params();
    int rc = check_params(path, &p);
    if (rc) return rc;
    rsclip__gdal_init();
    rsclip_tiler *t = (rsclip_tiler *)rsclip__calloc(1, sizeof *t);
    if (!t) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    t->p = p;
    t->path = rsclip__strdup(path);
    t->resampling = p.resampling ? rsclip__strdup(p.resampling) : NULL;
    t->p.resampling = t->resampling;
    if (!t->path || (p.resampling && !t->resampling)) {
        rsclip_tiler_close(t);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    }
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    rc = open_impl(t, &e);
    if (!rc && !p.defer_stats) rc = prepare_impl(t, &e);
    rsclip__gdal_errors_pop(&e);
    if (rc) {
        rsclip_tiler_close(t);
        return rc;
    }
    *out = t;
    return RSCLIP_OK;
}

void rsclip_tiler_close(rsclip_tiler *t) {
    if (!t) return;
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    if (t->ct) OCTDestroyCoordinateTransformation(t->ct);
    if (t->srs) OSRDestroySpatialReference(t->srs);
    if (t->view) GDALClose(t->view);
    if (t->vrt) GDALClose(t->vrt);
    if (t->warped) GDALClose(t->warped);
    if (t->opened) GDALClose(t->opened);
    rsclip__gdal_errors_pop(&e);
    CPLFree(t->wkt);
    CPLFree(t->wkt2);
    free(t->valid);
    free(t->mtmp);
    free(t->vbuf);
    free(t->resampling);
    free(t->path);
    free(t);
}

const rsclip_raster_info *rsclip_tiler_scene(const rsclip_tiler *t) {
    return t ? &t->info : NULL;
}

size_t rsclip_tiler_buffer_size(const rsclip_tiler *t) {
    return t ? (size_t)t->p.tile_size * (size_t)t->p.tile_size * 3u : 0;
}

/* ---- tiles -------------------------------------------------------------------------------- */

static int fill_tile(rsclip_tiler *t, int64_t i, rsclip_tile *tile) {
    const rsclip_raster_info *si = &t->info;
    if (i < 0 || i >= si->n_tiles)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile %lld out of range 0..%lld", t->path,
                             (long long)i, (long long)si->n_tiles - 1);
    memset(tile, 0, sizeof *tile);
    tile->index = i;
    tile->col = (int)(i % si->tiles_x);
    tile->row = (int)(i / si->tiles_x);
    int ts = si->tile_size;
    tile->xoff = grid_off(tile->col, si->width, ts, si->stride);
    tile->yoff = grid_off(tile->row, si->height, ts, si->stride);
    tile->xsize = si->width < ts ? si->width : ts;
    tile->ysize = si->height < ts ? si->height : ts;
    tile->out_width = tile->xsize;
    tile->out_height = tile->ysize;
    double fx = (double)si->src_width / si->width, fy = (double)si->src_height / si->height;
    tile->src_window[0] = tile->xoff * fx;
    tile->src_window[1] = tile->yoff * fy;
    tile->src_window[2] = tile->xsize * fx;
    tile->src_window[3] = tile->ysize * fy;
    tile->valid_fraction = -1.0;

    const double *gt = si->geotransform;
    double x0 = tile->xoff, y0 = tile->yoff, x1 = x0 + tile->xsize, y1 = y0 + tile->ysize;
    gt_apply(gt, x0, y0, &tile->corners[0][0], &tile->corners[0][1]);
    gt_apply(gt, x1, y0, &tile->corners[1][0], &tile->corners[1][1]);
    gt_apply(gt, x1, y1, &tile->corners[2][0], &tile->corners[2][1]);
    gt_apply(gt, x0, y1, &tile->corners[3][0], &tile->corners[3][1]);
    if (!t->ct || si->georef != RSCLIP_GEOREF_CRS) return RSCLIP_OK;

    /* Ring UL -> LL -> LR -> UR -> UL in pixel space, densified, then through the geotransform
     * and PROJ; the last slot is the centre. */
    const double px[5] = {x0, x0, x1, x1, x0}, py[5] = {y0, y1, y1, y0, y0};
    int d = t->p.densify, n = 4 * d + 1;
    double xs[RSCLIP_TILER_MAX_RING + 1], ys[RSCLIP_TILER_MAX_RING + 1];
    int ok[RSCLIP_TILER_MAX_RING + 1];
    for (int edge = 0; edge < 4; edge++)
        for (int j = 0; j < d; j++) {
            double f = (double)j / d;
            gt_apply(gt, px[edge] + (px[edge + 1] - px[edge]) * f,
                     py[edge] + (py[edge + 1] - py[edge]) * f, &xs[edge * d + j],
                     &ys[edge * d + j]);
        }
    xs[n - 1] = xs[0];
    ys[n - 1] = ys[0];
    gt_apply(gt, 0.5 * (x0 + x1), 0.5 * (y0 + y1), &xs[n], &ys[n]);
    int all = OCTTransformEx(t->ct, n + 1, xs, ys, NULL, ok);
    for (int j = 0; j <= n; j++) {
        if (!all || !ok[j] || !isfinite(xs[j]) || !isfinite(ys[j]))
            return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                                 "%s: tile %lld (window %d,%d %dx%d): PROJ cannot transform its "
                                 "footprint to WGS84 (outside the area the CRS is defined for?)",
                                 t->path, (long long)i, tile->xoff, tile->yoff, tile->xsize,
                                 tile->ysize);
        if (clamp_lonlat(&xs[j], &ys[j]) != 0)
            return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                                 "%s: tile %lld (window %d,%d %dx%d) reaches lon/lat %.9g, %.9g: "
                                 "outside the world by more than %g degrees",
                                 t->path, (long long)i, tile->xoff, tile->yoff, tile->xsize,
                                 tile->ysize, xs[j], ys[j], RSCLIP_TILER_LONLAT_SLACK);
    }
    for (int j = 0; j < n; j++) {
        tile->ring[j][0] = xs[j];
        tile->ring[j][1] = ys[j];
    }
    tile->n_ring = n;
    tile->center_lon = xs[n];
    tile->center_lat = ys[n];
    tile->has_lonlat = 1;
    return RSCLIP_OK;
}

int rsclip_tiler_tile(rsclip_tiler *t, int64_t i, rsclip_tile *tile) {
    if (!t || !tile)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_tile: NULL argument");
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = fill_tile(t, i, tile);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

int rsclip__tiler_scale(const rsclip_tiler *t, int c, const double *v, size_t n, uint8_t *out,
                        int px_stride, uint8_t *valid) {
    const double lo = t->lo[c], k = t->k[c];
    int any_invalid = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *o = out + i * (size_t)px_stride + c;
        if (!isfinite(v[i])) { /* NaN and +-Inf (only float bands hold them) are invalid */
            valid[i] = 0;
            any_invalid = 1;
            *o = 0;
            continue;
        }
        double s = floor((v[i] - lo) * k + 0.5);
        /* written so that NaN (an overflowing scale) maps to 0, never into the cast */
        *o = !(s > 0.0) ? 0 : s >= 255.0 ? 255 : (uint8_t)s;
    }
    return any_invalid;
}

static double count_valid(const uint8_t *v, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += v[i];
    return n ? (double)k / (double)n : 0.0;
}

static int read_impl(rsclip_tiler *t, rsclip_tile *tile, uint8_t *rgb, rsclip__gdal_errors *e) {
    int xo = tile->xoff, yo = tile->yoff, w = tile->xsize, h = tile->ysize;
    size_t n = (size_t)w * (size_t)h;
    int any_invalid = 0;
    memset(t->valid, 1, n);
    for (int m = 0; m < t->n_mask; m++) {
        if (GDALRasterIO(t->mask[m], GF_Read, xo, yo, w, h, t->mtmp, w, h, GDT_Byte, 0, 0) !=
            CE_None)
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                      "cannot read the mask of a tile");
        for (size_t i = 0; i < n; i++) t->valid[i] &= t->mtmp[i] != 0;
        any_invalid = 1;
    }
    double frac = any_invalid ? count_valid(t->valid, n) : 1.0;
    if (frac < t->p.min_valid) {
        tile->valid_fraction = frac;
        tile->skipped = 1;
        return RSCLIP_OK;
    }
    for (int c = 0; c < 3; c++) {
        if (t->dup_of[c] >= 0) {
            int s = t->dup_of[c];
            for (size_t i = 0; i < n; i++) rgb[3 * i + c] = rgb[3 * i + s];
            continue;
        }
        if (t->passthrough[c]) {
            if (GDALRasterIO(t->band[c], GF_Read, xo, yo, w, h, rgb + c, w, h, GDT_Byte, 3,
                             3 * w) != CE_None)
                return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                          "cannot read a tile");
            continue;
        }
        if (GDALRasterIO(t->band[c], GF_Read, xo, yo, w, h, t->vbuf, w, h, GDT_Float64, 0, 0) !=
            CE_None)
            return rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path, "cannot read a tile");
        if (rsclip__tiler_scale(t, c, t->vbuf, n, rgb, 3, t->valid)) any_invalid = 1;
    }
    if (any_invalid) {
        frac = count_valid(t->valid, n);
        for (size_t i = 0; i < n; i++)
            if (!t->valid[i]) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = 0;
    }
    tile->valid_fraction = frac;
    tile->skipped = frac < t->p.min_valid;
    return RSCLIP_OK;
}

int rsclip_tiler_read(rsclip_tiler *t, int64_t i, uint8_t *rgb, size_t rgb_size,
                      rsclip_tile *tile) {
    if (!t || !rgb || !tile)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_read: NULL argument");
    if (rgb_size < rsclip_tiler_buffer_size(t))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile buffer of %zu bytes, %zu needed",
                             t->path, rgb_size, rsclip_tiler_buffer_size(t));
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = t->prepared ? RSCLIP_OK : prepare_impl(t, &e);
    if (!rc) rc = fill_tile(t, i, tile);
    if (rc == RSCLIP_OK) {
        rc = read_impl(t, tile, rgb, &e);
        if (rc) {
            char where[64];
            snprintf(where, sizeof where, "tile %lld", (long long)i);
            rsclip__error_prefix(where);
        }
    }
    rsclip__gdal_errors_pop(&e);
    return rc;
}
