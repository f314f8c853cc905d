/* Shared helpers of the C tests that write rasters with GDAL (full build only). */
#ifndef RSCLIP_GDAL_TEST_UTIL_H
#define RSCLIP_GDAL_TEST_UTIL_H

#include "test_util.h"

#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <stdint.h>
#include <stdlib.h>

/* A w x h RGB GeoTIFF in UTM 32N (10 m pixels, scenes of different seeds side by side) whose
 * tiles all look different. */
static inline void tu_write_raster(const char *path, int w, int h, int seed) {
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    REQUIRE(drv);
    GDALDatasetH ds = GDALCreate(drv, path, w, h, 3, GDT_Byte, NULL);
    REQUIRE(ds);
    double gt[6] = {500000.0 + 20000.0 * seed, 10.0, 0.0, 4000000.0, 0.0, -10.0};
    GDALSetGeoTransform(ds, gt);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(srs, 32632);
    char *wkt = NULL;
    OSRExportToWkt(srs, &wkt);
    GDALSetProjection(ds, wkt);
    CPLFree(wkt);
    OSRDestroySpatialReference(srs);
    unsigned char *row = malloc((size_t)w);
    REQUIRE(row);
    uint32_t x = 2463534242u + (uint32_t)seed;
    for (int b = 1; b <= 3; b++)
        for (int y = 0; y < h; y++) {
            for (int i = 0; i < w; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                row[i] = (unsigned char)(((i / 64 + y / 64) * 37 * b + (x & 31)) & 0xff);
            }
            REQUIRE(GDALRasterIOEx(GDALGetRasterBand(ds, b), GF_Write, 0, y, w, 1, row, w, 1,
                                   GDT_Byte, 0, 0, NULL) == CE_None);
        }
    free(row);
    GDALClose(ds);
}

#endif
