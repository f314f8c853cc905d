/* Where an export may write (rsclip/export.h): protected paths (same file by any path, symbolic
 * and hard links, companions, index folders), existing files and layers only with overwrite,
 * layers added to / replaced in a GeoPackage beside the others, a failed export leaving the old
 * file byte-identical and no temporary folder, the driver from GDAL's extension lookup, typed
 * geometry columns and KML placemark names. */
#include "rsclip/export.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <gdal.h>
#include <ogr_api.h>

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define NH 3
static double fp[NH][10];
static rsclip_hit hits[NH];
static char dir[] = "/tmp/rsclip_export_out_XXXXXX";

static void make_hits(void) {
    for (int i = 0; i < NH; i++) {
        double x = 10.0 + 0.01 * i, y = 45.0, d = 0.01;
        double v[10] = {x, y, x + d, y, x + d, y + d, x, y + d, x, y};
        memcpy(fp[i], v, sizeof v);
        rsclip_hit *h = &hits[i];
        memset(h, 0, sizeof *h);
        h->tile_id = 10 + i;
        h->rank = i + 1;
        h->prob = 0.9f - 0.1f * (float)i;
        h->lon = x + d / 2;
        h->lat = y + d / 2;
        h->scene = "a.tif";
        h->xsize = h->ysize = 256;
        h->footprint = fp[i];
        h->n_footprint = 5;
    }
}

static const char *P(const char *name) {
    static char buf[64][600]; /* enough for every path one test holds at once */
    static int k;
    char *b = buf[k++ % 64];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

/* Whole file contents (new string), NULL if absent. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    REQUIRE(b);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static int same_bytes(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* No temporary folder of an export left anywhere below d. */
static int no_temp_left(const char *d) {
    DIR *dp = opendir(d);
    if (!dp) return 1;
    int clean = 1;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strncmp(e->d_name, ".rsclip-export-", 15) == 0) clean = 0;
    closedir(dp);
    return clean;
}

static rsclip_export_params params(const char *format, const char *const *prot, int n_prot) {
    rsclip_export_params ep = rsclip_export_default_params();
    ep.format = format;
    ep.protected_paths = prot;
    ep.n_protected = n_prot;
    return ep;
}

/* Feature count of a layer (by name, or the first when name is NULL); -1 if absent. */
static long long layer_count(const char *path, const char *name) {
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
    if (!ds) return -1;
    OGRLayerH l = name ? GDALDatasetGetLayerByName(ds, name) : GDALDatasetGetLayer(ds, 0);
    long long n = l ? (long long)OGR_L_GetFeatureCount(l, TRUE) : -1;
    GDALClose(ds);
    return n;
}

static int layer_gtype(const char *path, const char *name) {
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
    if (!ds) return -1;
    OGRLayerH l = name ? GDALDatasetGetLayerByName(ds, name) : GDALDatasetGetLayer(ds, 0);
    int t = l ? (int)wkbFlatten(OGR_L_GetGeomType(l)) : -1;
    GDALClose(ds);
    return t;
}

/* A GeoPackage with one line layer "roads" of one feature: the user's project file. */
static void make_project(const char *path) {
    GDALDriverH drv = GDALGetDriverByName("GPKG");
    GDALDatasetH ds = GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, NULL);
    REQUIRE(ds);
    OGRLayerH l = GDALDatasetCreateLayer(ds, "roads", NULL, wkbLineString, NULL);
    REQUIRE(l);
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
    OGRGeometryH g = NULL;
    char wkt[] = "LINESTRING (0 0,1 1)", *w = wkt;
    OGR_G_CreateFromWkt(&w, NULL, &g);
    OGR_F_SetGeometryDirectly(f, g);
    REQUIRE(OGR_L_CreateFeature(l, f) == OGRERR_NONE);
    OGR_F_Destroy(f);
    GDALClose(ds);
}

static void test_protected(void) {
    /* Any bytes do as the "index": the rule is about paths, not content. */
    const char *idx = P("idx.gpkg");
    write_file(idx, "the index");
    const char *prot[] = {idx};
    rsclip_export_params ep = params("GeoJSON", prot, 1);
    ep.overwrite = 1;
    REQUIRE(symlink(idx, P("link.geojson")) == 0);
    REQUIRE(link(idx, P("hard.geojson")) == 0);
    REQUIRE(mkdir(P("sub"), 0755) == 0);
    const char *targets[] = {idx,
                             P("link.geojson"),
                             P("hard.geojson"),
                             P("sub/../idx.gpkg"),
                             P("./idx.gpkg"),
                             P("idx.gpkg-wal"),
                             P("idx.gpkg-shm"),
                             P("idx.gpkg-journal"),
                             P("idx.gpkg.rsvec")};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        CHECK(rsclip_export_hits(targets[i], &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
        CHECK(strstr(rsclip_last_error(), "refusing") != NULL);
        CHECK(rsclip_export_check(targets[i], &ep, "hits") == RSCLIP_ERR_INVALID_ARG);
        CHECK(rsclip_output_check(targets[i], 1, prot, 1) == RSCLIP_ERR_INVALID_ARG);
        /* Regions too, and the layer rules do not open a way in. */
        ep.layer_name = "other";
        CHECK(rsclip_export_regions(targets[i], &ep, NULL, 0) == RSCLIP_ERR_INVALID_ARG);
        ep.layer_name = NULL;
    }
    size_t n = 0;
    char *b = slurp(idx, &n);
    CHECK(b && n == 9 && memcmp(b, "the index", 9) == 0);
    free(b);
    CHECK(access(P("idx.gpkg-wal"), F_OK) != 0 && access(P("idx.gpkg.rsvec"), F_OK) != 0);
    /* The protected path given another way (relative, through the symlink) protects the same. */
    char cwd[600];
    REQUIRE(getcwd(cwd, sizeof cwd));
    REQUIRE(chdir(dir) == 0);
    const char *rel[] = {"sub/../idx.gpkg"};
    CHECK(rsclip_output_check(idx, 1, rel, 1) == RSCLIP_ERR_INVALID_ARG);
    const char *vialink[] = {"link.geojson"};
    CHECK(rsclip_output_check("idx.gpkg-wal", 1, vialink, 1) == RSCLIP_ERR_INVALID_ARG);
    REQUIRE(chdir(cwd) == 0);
    /* Beside the index anything else may be written. */
    CHECK_OK(rsclip_export_hits(P("hits.geojson"), &ep, hits, NH));
    CHECK(layer_count(P("hits.geojson"), NULL) == NH);

    /* An index folder (shards): every GeoPackage below it and its companions. */
    REQUIRE(mkdir(P("shards"), 0755) == 0);
    REQUIRE(mkdir(P("shards/deep"), 0755) == 0);
    write_file(P("shards/a.gpkg"), "shard a");
    write_file(P("shards/deep/b.gpkg"), "shard b");
    REQUIRE(link(P("shards/deep/b.gpkg"), P("b_hard.geojson")) == 0);
    const char *fold[] = {P("shards")};
    ep = params("GeoJSON", fold, 1);
    ep.overwrite = 1;
    const char *in_folder[] = {
        P("shards/a.gpkg"),     P("shards/deep/b.gpkg"),       P("shards/new.gpkg"),
        P("shards/a.gpkg-wal"), P("shards/deep/b.gpkg.rsvec"), P("b_hard.geojson")};
    for (size_t i = 0; i < sizeof in_folder / sizeof in_folder[0]; i++)
        CHECK(rsclip_export_hits(in_folder[i], &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
    CHECK(access(P("shards/new.gpkg"), F_OK) != 0);
    CHECK(same_bytes(P("shards/deep/b.gpkg"), P("b_hard.geojson")));
    CHECK_OK(rsclip_export_hits(P("shards/hits.geojson"), &ep, hits, NH));
    CHECK(no_temp_left(dir) && no_temp_left(P("shards")));
}

static void test_existing(void) {
    rsclip_export_params ep = params(NULL, NULL, 0);
    /* A raster (any existing file) is refused, then replaced with overwrite. */
    const char *tif = P("scene.tif");
    write_file(tif, "II*\0 not really a tiff");
    tu_copy_file(tif, P("scene.orig"));
    ep.format = "GeoJSON";
    CHECK(rsclip_export_hits(tif, &ep, hits, NH) == RSCLIP_ERR_EXISTS);
    CHECK(strstr(rsclip_last_error(), "--overwrite") != NULL);
    CHECK(rsclip_export_check(tif, &ep, "hits") == RSCLIP_ERR_EXISTS);
    CHECK(rsclip_output_check(tif, 0, NULL, 0) == RSCLIP_ERR_EXISTS);
    CHECK_OK(rsclip_output_check(tif, 1, NULL, 0));
    CHECK(same_bytes(tif, P("scene.orig")));
    ep.layer_name = "x"; /* GeoJSON takes no second layer: -nln does not help */
    CHECK(rsclip_export_hits(tif, &ep, hits, NH) == RSCLIP_ERR_EXISTS);
    ep.layer_name = NULL;
    ep.overwrite = 1;
    CHECK_OK(rsclip_export_hits(tif, &ep, hits, NH));
    CHECK(layer_count(tif, NULL) == NH);
    /* A folder is never replaced; a missing folder is an error naming the path. */
    CHECK(rsclip_export_hits(P("sub"), &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_output_check(P("sub"), 1, NULL, 0) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_output_check(P("nope/x.geojson"), 1, NULL, 0) == RSCLIP_ERR_IO);
    /* A FIFO or a device is never written (nor opened: a FIFO would block). */
    REQUIRE(mkfifo(P("fifo.geojson"), 0644) == 0);
    CHECK(rsclip_export_hits(P("fifo.geojson"), &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_export_hits("/dev/null", &ep, hits, NH) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_output_check("/dev/null", 1, NULL, 0) == RSCLIP_ERR_INVALID_ARG);
    /* A private file replaced stays private. */
    write_file(P("private.geojson"), "{}");
    REQUIRE(chmod(P("private.geojson"), 0600) == 0);
    CHECK_OK(rsclip_export_hits(P("private.geojson"), &ep, hits, NH));
    struct stat st;
    CHECK(stat(P("private.geojson"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(layer_count(P("private.geojson"), NULL) == NH);
    /* A broken GeoPackage replaced whole loses its stale journal and WAL with it (SQLite would
     * replay them into the new file). */
    write_file(P("broken.gpkg"), "not a database");
    write_file(P("broken.gpkg-journal"), "a hot journal of another file");
    write_file(P("broken.gpkg-wal"), "a wal of another file");
    ep.format = NULL; /* GPKG, from the extension */
    CHECK_OK(rsclip_export_hits(P("broken.gpkg"), &ep, hits, NH));
    CHECK(access(P("broken.gpkg-journal"), F_OK) != 0 && access(P("broken.gpkg-wal"), F_OK) != 0);
    CHECK(layer_count(P("broken.gpkg"), "hits") == NH);
    /* An unwritable folder (not for root, who writes anyway): the old file stays as it was. */
    if (geteuid() != 0) {
        REQUIRE(mkdir(P("ro"), 0755) == 0);
        write_file(P("ro/old.geojson"), "old");
        REQUIRE(chmod(P("ro"), 0555) == 0);
        CHECK(rsclip_export_hits(P("ro/old.geojson"), &ep, hits, NH) == RSCLIP_ERR_IO);
        CHECK(strstr(rsclip_last_error(), "ro/old.geojson") != NULL);
        size_t n = 0;
        char *b = slurp(P("ro/old.geojson"), &n);
        CHECK(b && n == 3 && memcmp(b, "old", 3) == 0);
        free(b);
        CHECK(no_temp_left(P("ro")));
        REQUIRE(chmod(P("ro"), 0755) == 0);
    }
    /* The check writes nothing. */
    ep.overwrite = 0;
    CHECK_OK(rsclip_export_check(P("fresh.gpkg"), &ep, "hits"));
    CHECK(access(P("fresh.gpkg"), F_OK) != 0);
    CHECK(no_temp_left(dir));
}

static void test_layers(void) {
    const char *proj = P("project.gpkg");
    make_project(proj);
    rsclip_export_params ep = params(NULL, NULL, 0);
    /* An existing GeoPackage without -nln or overwrite is refused, untouched. */
    tu_copy_file(proj, P("project.orig"));
    CHECK(rsclip_export_hits(proj, &ep, hits, NH) == RSCLIP_ERR_EXISTS);
    CHECK(strstr(rsclip_last_error(), "-nln") != NULL);
    CHECK(same_bytes(proj, P("project.orig")));
    /* A named layer is added beside "roads". */
    ep.layer_name = "lakes";
    CHECK_OK(rsclip_export_hits(proj, &ep, hits, NH));
    CHECK(layer_count(proj, "roads") == 1 && layer_count(proj, "lakes") == NH);
    CHECK(layer_gtype(proj, "lakes") == wkbPolygon);
    /* The same name again: refused; with overwrite only that layer is replaced. */
    CHECK(rsclip_export_hits(proj, &ep, hits, NH) == RSCLIP_ERR_EXISTS);
    CHECK(rsclip_export_check(proj, &ep, "hits") == RSCLIP_ERR_EXISTS);
    ep.overwrite = 1;
    CHECK_OK(rsclip_export_check(proj, &ep, "hits"));
    CHECK_OK(rsclip_export_hits(proj, &ep, hits, 2));
    CHECK(layer_count(proj, "roads") == 1 && layer_count(proj, "lakes") == 2);
    /* overwrite without a name writes the default layer, keeping the others. */
    ep.layer_name = NULL;
    CHECK_OK(rsclip_export_hits(proj, &ep, hits, 1));
    CHECK(layer_count(proj, "roads") == 1 && layer_count(proj, "lakes") == 2 &&
          layer_count(proj, "hits") == 1);
    /* A failure while writing the layer (a footprint outside the target projection's domain)
     * leaves the file byte-identical: the transaction is rolled back. */
    tu_copy_file(proj, P("project.before"));
    ep.layer_name = "lakes";
    ep.t_srs = "+proj=ortho +lat_0=-60 +lon_0=-170";
    CHECK(rsclip_export_hits(proj, &ep, hits, NH) != RSCLIP_OK);
    ep.layer_name = "new_layer";
    CHECK(rsclip_export_hits(proj, &ep, hits, NH) != RSCLIP_OK);
    CHECK(same_bytes(proj, P("project.before")));
    CHECK(layer_count(proj, "lakes") == 2 && layer_count(proj, "new_layer") == -1);
    /* The same failure on a new file or a whole-file replacement: old bytes, no temp folder. */
    ep = params("GeoJSON", NULL, 0);
    ep.overwrite = 1;
    ep.t_srs = "+proj=ortho +lat_0=-60 +lon_0=-170";
    tu_copy_file(P("scene.tif"), P("scene.before"));
    CHECK(rsclip_export_hits(P("scene.tif"), &ep, hits, NH) != RSCLIP_OK);
    CHECK(same_bytes(P("scene.tif"), P("scene.before")));
    CHECK(rsclip_export_hits(P("never.geojson"), &ep, hits, NH) != RSCLIP_OK);
    CHECK(access(P("never.geojson"), F_OK) != 0);
    CHECK(no_temp_left(dir));
}

static void test_formats(void) {
    CHECK(strcmp(rsclip_export_format_from_path("out.shp"), "ESRI Shapefile") == 0);
    CHECK(strcmp(rsclip_export_format_from_path("a/OUT.SHP"), "ESRI Shapefile") == 0);
    CHECK(strcmp(rsclip_export_format_from_path("x.gml"), "GML") == 0);
    CHECK(strcmp(rsclip_export_format_from_path("x.sqlite"), "SQLite") == 0);
    CHECK(strcmp(rsclip_export_format_from_path("x.geojson"), "GeoJSON") == 0);
    CHECK(rsclip_export_format_from_path("scene.tif") == NULL); /* raster only */
    CHECK(rsclip_export_format_from_path("a.b/noext") == NULL);
    CHECK(rsclip_export_format_from_path("x.") == NULL);

    rsclip_export_params ep = params(NULL, NULL, 0);
    /* A shapefile from its extension; an overwrite drops the old dataset's stale files. */
    const char *shp = P("out.shp");
    CHECK_OK(rsclip_export_hits(shp, &ep, hits, NH));
    CHECK(layer_count(shp, NULL) == NH && layer_gtype(shp, NULL) == wkbPolygon);
    write_file(P("out.qix"), "stale spatial index");
    ep.overwrite = 1;
    CHECK_OK(rsclip_export_hits(shp, &ep, hits, 2));
    CHECK(layer_count(shp, NULL) == 2);
    CHECK(access(P("out.dbf"), F_OK) == 0 && access(P("out.qix"), F_OK) != 0);
    ep.overwrite = 0;

    /* Typed geometry columns: Polygon for hits, MultiPolygon for regions. */
    rsclip_region *regs = NULL;
    int nr = 0;
    CHECK_OK(rsclip_regions_merge(hits, NH, &regs, &nr));
    const char *fmts[][2] = {{"GPKG", "t.gpkg"}, {"FlatGeobuf", "t.fgb"}};
    for (int i = 0; i < 2; i++) {
        ep.format = fmts[i][0];
        CHECK_OK(rsclip_export_hits(P(fmts[i][1]), &ep, hits, NH));
        CHECK(layer_gtype(P(fmts[i][1]), NULL) == wkbPolygon);
        char name[64];
        snprintf(name, sizeof name, "r_%s", fmts[i][1]);
        CHECK_OK(rsclip_export_regions(P(name), &ep, regs, nr));
        CHECK(layer_gtype(P(name), NULL) == wkbMultiPolygon);
        CHECK(layer_count(P(name), NULL) == nr);
    }
    rsclip_regions_free(regs, nr);

    /* KML placemarks are named by rank. */
    ep.format = NULL;
    CHECK_OK(rsclip_export_hits(P("h.kml"), &ep, hits, NH));
    size_t n = 0;
    char *kml = slurp(P("h.kml"), &n);
    CHECK(kml && strstr(kml, "<name>1</name>") && strstr(kml, "<name>3</name>"));
    free(kml);
    CHECK(no_temp_left(dir));
}

int main(void) {
    GDALAllRegister();
    make_hits();
    REQUIRE(mkdtemp(dir));
    test_protected();
    test_existing();
    test_layers();
    test_formats();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    GDALDestroyDriverManager();
    return tu_finish("test_export_output");
}
