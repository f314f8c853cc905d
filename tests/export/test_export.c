/* Export of hits/regions through OGR: every format reopens with the right features, geometry and
 * properties; reprojection matches the closed-form Web Mercator; regions dissolve touching tiles.
 */
#include "rsclip/export.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <gdal.h>
#include <ogr_api.h>

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define NH 5
static double fp[NH][10];
static rsclip_hit hits[NH];

/* Square tile footprint of side d degrees with lower-left corner (x, y), closed ring. */
static void square(double *r, double x, double y, double d) {
    double v[10] = {x, y, x + d, y, x + d, y + d, x, y + d, x, y};
    memcpy(r, v, sizeof v);
}

static void make_hits(void) {
    /* A 2x2 block of touching tiles, one tile touching the block at a corner, and one far away. */
    const double d = 0.01;
    square(fp[0], 10.00, 45.00, d);
    square(fp[1], 10.01, 45.00, d);
    square(fp[2], 10.00, 45.01, d);
    square(fp[3], 10.02, 45.02, d); /* touches tile of (10.01..10.02, 45.01..) only at a corner: */
    square(fp[4], 11.00, 46.00, d); /* isolated */
    static const char *scenes[NH] = {"a.tif", "a.tif", "a.tif", "b.tif", "c.tif"};
    for (int i = 0; i < NH; i++) {
        rsclip_hit *h = &hits[i];
        memset(h, 0, sizeof *h);
        h->tile_id = 100 + i;
        h->rank = i + 1;
        h->score = 0.5f - 0.05f * (float)i;
        h->prob = 0.9f - 0.1f * (float)i;
        h->lon = fp[i][0] + d / 2;
        h->lat = fp[i][1] + d / 2;
        h->scene = scenes[i];
        h->xoff = 256 * i;
        h->yoff = 7;
        h->xsize = h->ysize = 256;
        h->footprint = fp[i];
        h->n_footprint = 5;
    }
}

/* Reopen an export and check features in order. */
static void check_file(const char *path, int expect_geom_points) {
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
    REQUIRE(ds != NULL);
    OGRLayerH l = GDALDatasetGetLayer(ds, 0);
    REQUIRE(l != NULL);
    CHECK(OGR_L_GetFeatureCount(l, TRUE) == NH);
    OGR_L_ResetReading(l);
    OGRFeatureH f;
    int i = 0;
    while ((f = OGR_L_GetNextFeature(l)) != NULL) {
        OGRFeatureDefnH defn = OGR_F_GetDefnRef(f);
        CHECK(OGR_F_GetFieldAsInteger(f, OGR_FD_GetFieldIndex(defn, "rank")) == hits[i].rank);
        CHECK(fabs(OGR_F_GetFieldAsDouble(f, OGR_FD_GetFieldIndex(defn, "prob")) - hits[i].prob) <
              1e-6);
        CHECK(fabs(OGR_F_GetFieldAsDouble(f, OGR_FD_GetFieldIndex(defn, "score")) - hits[i].score) <
              1e-6);
        CHECK(fabs(OGR_F_GetFieldAsDouble(f, OGR_FD_GetFieldIndex(defn, "lon")) - hits[i].lon) <
              1e-9);
        CHECK(strcmp(OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(defn, "scene")),
                     hits[i].scene) == 0);
        CHECK(OGR_F_GetFieldAsInteger(f, OGR_FD_GetFieldIndex(defn, "xoff")) == hits[i].xoff);
        CHECK(OGR_F_GetFieldAsInteger(f, OGR_FD_GetFieldIndex(defn, "ysize")) == 256);
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        CHECK(g != NULL);
        if (g && expect_geom_points) {
            OGRGeometryH ring = OGR_G_GetGeometryRef(g, 0);
            CHECK(OGR_G_GetPointCount(ring) == 5);
            for (int k = 0; k < 5 && ring; k++) {
                CHECK(fabs(OGR_G_GetX(ring, k) - fp[i][2 * k]) < 1e-9);
                CHECK(fabs(OGR_G_GetY(ring, k) - fp[i][2 * k + 1]) < 1e-9);
            }
        }
        OGR_F_Destroy(f);
        i++;
    }
    CHECK(i == NH);
    GDALClose(ds);
}

int main(void) {
    GDALAllRegister();
    make_hits();
    char dir[] = "/tmp/rsclip_export_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[512];
    static const char *fmts[][2] = {{"GeoJSON", "h.geojson"},
                                    {"GPKG", "h.gpkg"},
                                    {"CSV", "h.csv"},
                                    {"KML", "h.kml"},
                                    {"FlatGeobuf", "h.fgb"}};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, fmts[i][1]);
        rsclip_export_params ep = rsclip_export_default_params();
        ep.format = NULL; /* from the extension */
        CHECK_OK(rsclip_export_hits(path, &ep, hits, NH));
        /* Writing again is refused; with overwrite it replaces the file (or, in a GeoPackage,
         * its layer) instead of failing or appending. */
        CHECK(rsclip_export_hits(path, &ep, hits, NH) == RSCLIP_ERR_EXISTS);
        ep.overwrite = 1;
        CHECK_OK(rsclip_export_hits(path, &ep, hits, NH));
        if (strcmp(fmts[i][0], "CSV") == 0 || strcmp(fmts[i][0], "KML") == 0) {
            /* CSV keeps only attribute types as strings; KML drops types: check what is kept. */
            GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
            REQUIRE(ds);
            OGRLayerH l = GDALDatasetGetLayer(ds, 0);
            CHECK(OGR_L_GetFeatureCount(l, TRUE) == NH);
            GDALClose(ds);
        } else {
            check_file(path, 1);
        }
        /* The real ogrinfo reads it. */
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "ogrinfo -ro -so -al '%s' >/dev/null 2>&1", path);
        CHECK(system(cmd) == 0);
    }

    /* Reprojection to Web Mercator against the closed form. */
    snprintf(path, sizeof path, "%s/m.geojson", dir);
    rsclip_export_params ep = rsclip_export_default_params();
    ep.t_srs = "EPSG:3857";
    CHECK_OK(rsclip_export_hits(path, &ep, hits, 1));
    {
        GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
        REQUIRE(ds);
        OGRFeatureH f = OGR_L_GetNextFeature(GDALDatasetGetLayer(ds, 0));
        REQUIRE(f);
        OGRGeometryH ring = OGR_G_GetGeometryRef(OGR_F_GetGeometryRef(f), 0);
        const double R = 6378137.0, d2r = M_PI / 180.0;
        double x = R * fp[0][0] * d2r, y = R * log(tan(M_PI / 4 + fp[0][1] * d2r / 2));
        CHECK(fabs(OGR_G_GetX(ring, 0) - x) < 1e-3);
        CHECK(fabs(OGR_G_GetY(ring, 0) - y) < 1e-3);
        OGR_F_Destroy(f);
        GDALClose(ds);
    }

    /* Bad outputs: unwritable folder, unknown format, bad SRS, binary format to stdout. */
    ep = rsclip_export_default_params();
    CHECK(rsclip_export_hits("/nonexistent-dir/x/h.geojson", &ep, hits, NH) == RSCLIP_ERR_IO);
    CHECK(strstr(rsclip_last_error(), "/nonexistent-dir/x/h.geojson") != NULL);
    ep.format = "NoSuchFormat";
    snprintf(path, sizeof path, "%s/x.dat", dir);
    CHECK(rsclip_export_hits(path, &ep, hits, NH) == RSCLIP_ERR_UNSUPPORTED);
    ep = rsclip_export_default_params();
    ep.t_srs = "EPSG:999999";
    CHECK(rsclip_export_hits(path, &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
    ep = rsclip_export_default_params();
    ep.format = "GPKG";
    CHECK(rsclip_export_hits("-", &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strcmp(rsclip_export_format_from_path("a/b.FGB"), "FlatGeobuf") == 0);
    CHECK(rsclip_export_format_from_path("a/b") == NULL);

    /* Regions: {0,1,2} share edges, 3 touches the block's missing corner tile only at a point
     * (10.02, 45.02) which is the corner of tile 1's top-right? No: tile 1 spans 10.01..10.02 x
     * 45.00..45.01, so tile 3 (10.02.., 45.02..) does not touch it; it is its own region. */
    rsclip_region *regs = NULL;
    int nr = 0;
    CHECK_OK(rsclip_regions_merge(hits, NH, &regs, &nr));
    CHECK(nr == 3);
    if (nr == 3) {
        CHECK(regs[0].n_tiles == 3);
        CHECK(fabs(regs[0].max_prob - 0.9f) < 1e-6);
        CHECK(fabs(regs[0].mean_prob - (0.9f + 0.8f + 0.7f) / 3) < 1e-6);
        CHECK(regs[0].best_tile_id == 100);
        /* Area of three 0.01 x 0.01 degree cells at 45 N, from the ellipsoid's radii of
         * curvature: M (meridional) and N cos(phi) (parallel). */
        const double a = 6378137.0, e2 = 0.00669437999014, phi = 45.0075 * M_PI / 180.0;
        double w = 1 - e2 * sin(phi) * sin(phi);
        double M = a * (1 - e2) / pow(w, 1.5), N = a / sqrt(w);
        double cell = (0.01 * M_PI / 180.0 * M) * (0.01 * M_PI / 180.0 * N * cos(phi));
        CHECK(fabs(regs[0].area_m2 - 3 * cell) / (3 * cell) < 2e-3);
        CHECK(regs[1].n_tiles == 1 && regs[1].best_tile_id == 103);
        CHECK(regs[2].n_tiles == 1 && regs[2].best_tile_id == 104);
        CHECK(strncmp(regs[0].wkt, "POLYGON", 7) == 0);
        snprintf(path, sizeof path, "%s/r.gpkg", dir);
        ep = rsclip_export_default_params();
        ep.format = "GPKG";
        CHECK_OK(rsclip_export_regions(path, &ep, regs, nr));
        GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
        REQUIRE(ds);
        OGRLayerH l = GDALDatasetGetLayerByName(ds, "regions");
        REQUIRE(l);
        CHECK(OGR_L_GetFeatureCount(l, TRUE) == 3);
        GDALClose(ds);
    }
    rsclip_regions_free(regs, nr);

    /* Overlapping tiles (a stride smaller than the tile) merge too. */
    double ov[10];
    square(ov, 10.005, 45.005, 0.01);
    rsclip_hit two[2] = {hits[0], hits[4]};
    two[1].footprint = ov;
    two[1].tile_id = 7;
    CHECK_OK(rsclip_regions_merge(two, 2, &regs, &nr));
    CHECK(nr == 1 && regs[0].n_tiles == 2);
    rsclip_regions_free(regs, nr);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    GDALDestroyDriverManager();
    return tu_finish("test_export");
}
