/* Hits in pixel coordinates (scenes indexed without a CRS: has_lonlat 0, no footprint, corners in
 * pixels or in the scene's own geotransform coordinates) exported as a GIS user expects: all of
 * them -> a layer without CRS (GeoPackage: "Undefined Cartesian SRS"), footprints from the
 * corners, lon/lat null, --t_srs and WGS84-only formats refused; mixed with georeferenced hits ->
 * WGS84 layer, pixel hits with a null geometry and a warning counting them; regions skip them and
 * say so. */
#include "rsclip/export.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <sqlite3.h>

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define NP 3
static rsclip_hit pix[NP]; /* pixel coordinates, x right / y down */
static rsclip_hit loc[NP]; /* a scene with a geotransform but no CRS: metres, y up */
static rsclip_hit geo[2];  /* georeferenced */
static double geo_fp[2][10];

static int g_warnings;
static char g_warning[1024];

static void on_log(int level, const char *msg, void *user) {
    (void)user;
    if (level < RSCLIP_LOG_WARN) return;
    g_warnings++;
    snprintf(g_warning, sizeof g_warning, "%s", msg);
}

static void make_hits(void) {
    /* 525 x 429 raster, 256 px tiles: windows at x 0 / 269, y 0 / 173 */
    static const int win[NP][2] = {{0, 0}, {269, 0}, {0, 173}};
    for (int i = 0; i < NP; i++) {
        rsclip_hit *h = &pix[i];
        memset(h, 0, sizeof *h);
        h->tile_id = i + 1;
        h->rank = i + 1;
        h->score = 0.3f - 0.01f * (float)i;
        h->prob = 0.8f - 0.1f * (float)i;
        h->lon = h->lat = NAN;
        h->scene = "plain.tif";
        h->xoff = win[i][0];
        h->yoff = win[i][1];
        h->xsize = h->ysize = 256;
        double x0 = h->xoff, y0 = h->yoff, x1 = x0 + 256, y1 = y0 + 256;
        const double c[8] = {x0, y0, x1, y0, x1, y1, x0, y1};
        memcpy(h->corners, c, sizeof c);
        loc[i] = *h;
        loc[i].scene = "local.tif";
        /* geotransform (1000, 2, 0, 5000, 0, -2): metres, north up */
        for (int k = 0; k < 4; k++) {
            loc[i].corners[2 * k] = 1000 + 2 * c[2 * k];
            loc[i].corners[2 * k + 1] = 5000 - 2 * c[2 * k + 1];
        }
    }
    for (int i = 0; i < 2; i++) {
        double x = 10.0 + 0.01 * i, y = 45.0, d = 0.01;
        double r[10] = {x, y, x + d, y, x + d, y + d, x, y + d, x, y};
        memcpy(geo_fp[i], r, sizeof r);
        rsclip_hit *h = &geo[i];
        memset(h, 0, sizeof *h);
        h->tile_id = 100 + i;
        h->rank = i + 1;
        h->prob = 0.9f;
        h->lon = x + d / 2;
        h->lat = y + d / 2;
        h->scene = "geo.tif";
        h->xsize = h->ysize = 256;
        h->footprint = geo_fp[i];
        h->n_footprint = 5;
        h->has_lonlat = 1;
    }
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int gpkg_srs_id(const char *path) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int id = -999;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT srs_id FROM gpkg_geometry_columns", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return id;
}

/* Reopen a pixel export: no CRS (or GeoPackage's undefined Cartesian one), each footprint the
 * hit's corners, lon/lat null, attributes kept. */
static void check_pixel_file(const char *path, const char *fmt, const rsclip_hit *h) {
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
    REQUIRE(ds);
    OGRLayerH l = GDALDatasetGetLayer(ds, 0);
    REQUIRE(l);
    OGRSpatialReferenceH srs = OGR_L_GetSpatialRef(l);
    if (strcmp(fmt, "GPKG") == 0) {
        CHECK(gpkg_srs_id(path) == -1);
        CHECK(!srs || (!OSRIsGeographic(srs) && !OSRIsProjected(srs)));
    } else if (srs && strcmp(fmt, "GeoJSON") != 0) { /* GeoJSON: see the text below */
        char *wkt = NULL;
        OSRExportToWkt(srs, &wkt);
        fprintf(stderr, "%s: a CRS where none was written: %s\n", path, wkt);
        CPLFree(wkt);
        tu_failures++;
    }
    CHECK(OGR_L_GetFeatureCount(l, TRUE) == NP);
    OGR_L_ResetReading(l);
    OGRFeatureH f;
    for (int i = 0; (f = OGR_L_GetNextFeature(l)) != NULL; i++) {
        OGRFeatureDefnH d = OGR_F_GetDefnRef(f);
        CHECK(i < NP && OGR_F_GetFieldAsInteger(f, OGR_FD_GetFieldIndex(d, "rank")) == h[i].rank);
        CHECK(OGR_F_GetFieldAsInteger(f, OGR_FD_GetFieldIndex(d, "xoff")) == h[i].xoff);
        CHECK(!OGR_F_IsFieldSetAndNotNull(f, OGR_FD_GetFieldIndex(d, "lon")));
        CHECK(!OGR_F_IsFieldSetAndNotNull(f, OGR_FD_GetFieldIndex(d, "lat")));
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        CHECK(g != NULL);
        if (g && i < NP) {
            OGREnvelope e;
            OGR_G_GetEnvelope(g, &e);
            double xs[4], ys[4];
            for (int k = 0; k < 4; k++)
                xs[k] = h[i].corners[2 * k], ys[k] = h[i].corners[2 * k + 1];
            CHECK(e.MinX == fmin(xs[0], xs[2]) && e.MaxX == fmax(xs[0], xs[2]));
            CHECK(e.MinY == fmin(ys[0], ys[2]) && e.MaxY == fmax(ys[0], ys[2]));
            CHECK(fabs(OGR_G_Area(g) - fabs((xs[1] - xs[0]) * (ys[2] - ys[1]))) < 1e-9);
        }
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
}

static void test_all_pixel(const char *dir) {
    static const char *fmts[][2] = {{"GeoJSON", "p.geojson"},
                                    {"GPKG", "p.gpkg"},
                                    {"FlatGeobuf", "p.fgb"},
                                    {"CSV", "p.csv"},
                                    {"ESRI Shapefile", "p.shp"}};
    char path[600];
    for (int set = 0; set < 2; set++) {
        const rsclip_hit *h = set ? loc : pix;
        for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
            snprintf(path, sizeof path, "%s/%d%s", dir, set, fmts[i][1]);
            rsclip_export_params ep = rsclip_export_default_params();
            ep.format = fmts[i][0];
            g_warnings = 0;
            CHECK_OK(rsclip_export_hits(path, &ep, h, NP));
            CHECK(g_warnings == 0);
            if (strcmp(fmts[i][0], "CSV") != 0) check_pixel_file(path, fmts[i][0], h);
        }
    }
    /* GeoJSON says nothing about a CRS (it cannot say "none": readers assume WGS84); a shapefile
     * has no .prj */
    snprintf(path, sizeof path, "%s/0p.geojson", dir);
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CHECK(strstr(buf, "\"crs\"") == NULL && strstr(buf, "\"lon\": null") != NULL);
    snprintf(path, sizeof path, "%s/0p.prj", dir);
    CHECK(!exists(path));

    /* nothing to reproject from; KML/GPX hold WGS84 only: refused, nothing written */
    rsclip_export_params ep = rsclip_export_default_params();
    ep.t_srs = "EPSG:3857";
    snprintf(path, sizeof path, "%s/t.geojson", dir);
    CHECK(rsclip_export_hits(path, &ep, pix, NP) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), path) && strstr(rsclip_last_error(), "pixel coordinates") &&
          strstr(rsclip_last_error(), "EPSG:3857"));
    CHECK(!exists(path));
    static const char *const lonlat_only[][2] = {{"KML", "p.kml"}, {"GPX", "p.gpx"}};
    for (int i = 0; i < 2; i++) {
        ep = rsclip_export_default_params();
        ep.format = lonlat_only[i][0];
        snprintf(path, sizeof path, "%s/%s", dir, lonlat_only[i][1]);
        CHECK(rsclip_export_hits(path, &ep, pix, NP) == RSCLIP_ERR_INVALID_ARG);
        CHECK(strstr(rsclip_last_error(), lonlat_only[i][0]) && !exists(path));
    }
}

static void test_mixed(const char *dir) {
    rsclip_hit mixed[4] = {geo[0], pix[0], geo[1], pix[1]};
    char path[600];
    snprintf(path, sizeof path, "%s/mixed.gpkg", dir);
    rsclip_export_params ep = rsclip_export_default_params();
    ep.format = NULL; /* from the name */
    g_warnings = 0;
    CHECK_OK(rsclip_export_hits(path, &ep, mixed, 4));
    CHECK(g_warnings == 1 && strstr(g_warning, "2 of 4") && strstr(g_warning, path));
    CHECK(gpkg_srs_id(path) == 4326);
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
    REQUIRE(ds);
    OGRLayerH l = GDALDatasetGetLayer(ds, 0);
    OGRFeatureH f;
    for (int i = 0; (f = OGR_L_GetNextFeature(l)) != NULL; i++) {
        int is_pix = i % 2 == 1, lon = OGR_F_GetFieldIndex(f, "lon");
        CHECK((OGR_F_GetGeometryRef(f) == NULL) == is_pix);
        CHECK(OGR_F_IsFieldSetAndNotNull(f, lon) == !is_pix);
        if (!is_pix) CHECK(fabs(OGR_F_GetFieldAsDouble(f, lon) - mixed[i].lon) < 1e-12);
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
    /* every format keeps all four features, or refuses (a driver that drops features without a
     * geometry: in GDAL 3.6 FlatGeobuf's writer, KML's reader) naming itself, writing nothing */
    static const char *const names[] = {"m.geojson", "m.csv", "m.shp", "m.fgb", "m.kml"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int rc = rsclip_export_hits(path, &ep, mixed, 4);
        if (rc == RSCLIP_OK) {
            ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
            CHECK(ds && OGR_L_GetFeatureCount(GDALDatasetGetLayer(ds, 0), TRUE) == 4);
            if (ds) GDALClose(ds);
        } else {
            CHECK(rc == RSCLIP_ERR_UNSUPPORTED && strstr(rsclip_last_error(), "drops features"));
            CHECK((strcmp(names[i], "m.fgb") == 0 || strcmp(names[i], "m.kml") == 0) &&
                  !exists(path));
        }
    }
    /* the georeferenced ones still reproject */
    ep.t_srs = "EPSG:3857";
    snprintf(path, sizeof path, "%s/mixed3857.geojson", dir);
    g_warnings = 0;
    CHECK_OK(rsclip_export_hits(path, &ep, mixed, 4));
    CHECK(g_warnings == 1);

    /* regions: from lon/lat footprints only, and a warning counts the rest */
    rsclip_region *regs = NULL;
    int nr = -1;
    g_warnings = 0;
    CHECK_OK(rsclip_regions_merge(mixed, 4, &regs, &nr));
    CHECK(nr == 1 && regs && regs[0].n_tiles == 2);
    CHECK(g_warnings == 1 && strstr(g_warning, "2 of 4") && strstr(g_warning, "no region"));
    rsclip_regions_free(regs, nr);
    g_warnings = 0;
    CHECK_OK(rsclip_regions_merge(pix, NP, &regs, &nr));
    CHECK(nr == 0 && g_warnings == 1 && strstr(g_warning, "3 of 3"));
    rsclip_regions_free(regs, nr);
    g_warnings = 0;
    CHECK_OK(rsclip_regions_merge(geo, 2, &regs, &nr));
    CHECK(nr == 1 && g_warnings == 0);
    rsclip_regions_free(regs, nr);
}

int main(void) {
    GDALAllRegister();
    make_hits();
    rsclip_set_log(on_log, NULL);
    char dir[] = "/tmp/rsclip_export_pixel_XXXXXX";
    REQUIRE(mkdtemp(dir));
    test_all_pixel(dir);
    test_mixed(dir);
    rsclip_set_log(NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!tu_failures) CHECK(system(cmd) == 0);
    GDALDestroyDriverManager();
    return tu_finish("test_export_pixel");
}
