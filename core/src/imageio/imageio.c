/* Whole-image reading through GDAL (see rsclip/imageio.h): band mapping, palette expansion, and
 * GDAL's errors translated once into rsclip's per-thread error. */
#include "base/base.h"
#include "rsclip/imageio.h"

#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gdal.h>

/* Band indices (1-based) of R, G, B for a dataset with n >= 3 bands: the bands whose colour
 * interpretation says red/green/blue when all three are present, else 1, 2, 3. */
static void pick_rgb_bands(GDALDatasetH ds, int n, int map[3]) {
    int found[3] = {0, 0, 0};
    for (int b = 1; b <= n; b++) {
        GDALColorInterp ci = GDALGetRasterColorInterpretation(GDALGetRasterBand(ds, b));
        int k = ci == GCI_RedBand ? 0 : ci == GCI_GreenBand ? 1 : ci == GCI_BlueBand ? 2 : -1;
        if (k >= 0 && !found[k]) found[k] = b;
    }
    if (found[0] && found[1] && found[2]) {
        memcpy(map, found, sizeof found);
    } else {
        map[0] = 1;
        map[1] = 2;
        map[2] = 3;
    }
}

static int check_byte_band(GDALRasterBandH band, const char *path) {
    GDALDataType t = GDALGetRasterDataType(band);
    if (t != GDT_Byte)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: band type %s is not 8-bit; scaling comes with the tiler "
                             "(rsclip index --scale)",
                             path, GDALGetDataTypeName(t));
    return RSCLIP_OK;
}

/* Expand palette indices (already in rgb[3*i]) through the colour table, in place. */
static void expand_palette(GDALColorTableH ct, uint8_t *rgb, size_t n_pixels) {
    uint8_t lut[256][3];
    int n = GDALGetColorEntryCount(ct);
    memset(lut, 0, sizeof lut);
    for (int i = 0; i < n && i < 256; i++) {
        GDALColorEntry e;
        if (GDALGetColorEntryAsRGB(ct, i, &e)) {
            lut[i][0] = (uint8_t)e.c1;
            lut[i][1] = (uint8_t)e.c2;
            lut[i][2] = (uint8_t)e.c3;
        }
    }
    for (size_t i = 0; i < n_pixels; i++) memcpy(rgb + 3 * i, lut[rgb[3 * i]], 3);
}

static int read_dataset(GDALDatasetH ds, const char *path, rsclip__gdal_errors *errs, uint8_t **out,
                        int *width, int *height) {
    int n = GDALGetRasterCount(ds);
    int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
    if (n == 2 || n < 1)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: %d band%s; expected 1 (grey or palette) or 3 or more (RGB)", path,
                             n, n == 1 ? "" : "s");
    if (w <= 0 || h <= 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: empty image (%d x %d)", path, w, h);
    size_t n_pixels, n_bytes;
    if (rsclip__mul_size((size_t)w, (size_t)h, &n_pixels) || n_pixels > RSCLIP_IMAGE_MAX_PIXELS ||
        rsclip__mul_size(n_pixels, 3, &n_bytes))
        return rsclip__error(
            RSCLIP_ERR_UNSUPPORTED,
            "%s: image is %d x %d pixels, more than this reader takes; tile it with "
            "rsclip index",
            path, w, h);

    int map[3];
    GDALColorTableH ct = NULL;
    if (n >= 3) {
        pick_rgb_bands(ds, n, map);
    } else {
        GDALRasterBandH b = GDALGetRasterBand(ds, 1);
        if (GDALGetRasterColorInterpretation(b) == GCI_PaletteIndex)
            ct = GDALGetRasterColorTable(b);
        map[0] = map[1] = map[2] = 1;
    }
    for (int k = 0; k < 3; k++) {
        int rc = check_byte_band(GDALGetRasterBand(ds, map[k]), path);
        if (rc) return rc;
    }

    uint8_t *rgb = rsclip__malloc(n_bytes);
    if (!rgb)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, n_bytes);
    /* Pixel-interleaved destination: pixel space 3, line space 3w, band space 1. */
    CPLErr e = GDALDatasetRasterIOEx(ds, GF_Read, 0, 0, w, h, rgb, w, h, GDT_Byte, 3, map, 3,
                                     (GSpacing)3 * w, 1, NULL);
    if (e != CE_None) {
        free(rgb);
        return rsclip__gdal_error(errs, RSCLIP_ERR_GDAL, "%s: cannot read pixels", path);
    }
    if (ct) expand_palette(ct, rgb, n_pixels);
    *out = rgb;
    *width = w;
    *height = h;
    return RSCLIP_OK;
}

int rsclip_image_read_rgb8(const char *path, uint8_t **rgb, int *width, int *height) {
    if (rgb) *rgb = NULL;
    if (!path || !rgb || !width || !height)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_image_read_rgb8: NULL argument");
    if (strncmp(path, "/vsi", 4) != 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            return rsclip__error(errno == ENOENT ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_IO, "%s: %s",
                                 path, strerror(errno));
        if (S_ISDIR(st.st_mode))
            return rsclip__error(RSCLIP_ERR_IO, "%s: is a folder, not an image", path);
    }
    rsclip__gdal_init();

    rsclip__gdal_errors errs;
    rsclip__gdal_errors_push(&errs);
    int rc;
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        rc = rsclip__gdal_error(&errs, RSCLIP_ERR_GDAL, "%s: not an image GDAL can read", path);
    else
        rc = read_dataset(ds, path, &errs, rgb, width, height);
    if (ds) GDALClose(ds);
    rsclip__gdal_errors_pop(&errs);
    return rc;
}
