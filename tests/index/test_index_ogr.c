/* The index is a GeoPackage that GDAL reads: the real ogrinfo reports the tiles layer (count,
 * EPSG:4326), `ogrinfo -al` gives back the footprints and attributes written, GDAL's R-tree
 * spatial filter agrees with rsclip's bbox query, GDAL's own validate_gpkg.py passes, and a feature
 * deleted through GDAL leaves a consistent index. */
#include "index_test_util.h"
#include "test_util.h"

#define DIM 32
#define COLS 4
#define ROWS 3
static const double LON0 = -3.5, LAT0 = 52.4;

/* Run a command, capture stdout+stderr (malloc'd), return exit status. */
static int run(const char *cmd, char **out) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    REQUIRE(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    REQUIRE(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            REQUIRE(buf);
        }
    }
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return st;
}

static int no_gdal_complaints(const char *out) {
    return !strstr(out, "ERROR") && !strstr(out, "Warning") && !strstr(out, "FAILURE");
}

static long count_after(const char *out, const char *key) {
    const char *p = strstr(out, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

int main(void) {
    const char *tmp = ti_tmpdir("test_index_ogr");
    char dir[512], path[1024], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tmp);
    snprintf(path, sizeof path, "%s/small.gpkg", dir);

    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", "0123456789abcdef", DIM, NULL));
    rsclip_scene_info s = ti_scene("/data/aber.tif", 5, 6, NULL, COLS, ROWS);
    int64_t sid;
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    int n = COLS * ROWS;
    CHECK_OK(ti_add_batch(idx, sid, 1, LON0, LAT0, COLS, 0, 5, DIM));
    CHECK_OK(ti_add_batch(idx, sid, 1, LON0, LAT0, COLS, 5, n - 5, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    rsclip_embeddings *e;
    CHECK_OK(rsclip_index_load_embeddings(idx, &e));
    REQUIRE(e && e->n == (size_t)n);
    rsclip_index_close(idx);

    /* ogrinfo -so INDEX tiles (default: opened in update mode, as users will) */
    char *out;
    snprintf(cmd, sizeof cmd, "ogrinfo -so '%s' tiles", path);
    CHECK(run(cmd, &out) == 0);
    CHECK(count_after(out, "Feature Count: ") == n);
    CHECK(strstr(out, "Geometry: Polygon") != NULL);
    CHECK(strstr(out, "ID[\"EPSG\",4326]") != NULL);
    CHECK(strstr(out, "FID Column = fid") && strstr(out, "Geometry Column = geom"));
    CHECK(no_gdal_complaints(out));
    if (tu_failures) fprintf(stderr, "%s\n", out);
    free(out);

    /* ogrinfo -al: every feature's polygon and attributes equal what was written */
    snprintf(cmd, sizeof cmd, "ogrinfo -ro -al '%s' tiles", path);
    CHECK(run(cmd, &out) == 0);
    CHECK(no_gdal_complaints(out));
    int features = 0;
    for (const char *p = strstr(out, "OGRFeature(tiles):"); p;
         p = strstr(p + 1, "OGRFeature(tiles):")) {
        long fid = strtol(p + strlen("OGRFeature(tiles):"), NULL, 10);
        int i = -1;
        for (int k = 0; k < n; k++)
            if (e->ids[k] == fid) i = k;
        CHECK(i >= 0);
        if (i < 0) continue;
        rsclip_tile_record r;
        double xy[2 * TI_NPTS];
        float v[DIM];
        ti_record(1, LON0, LAT0, i % COLS, i / COLS, DIM, &r, xy, v);
        const char *next = strstr(p + 1, "OGRFeature(tiles):");
        const char *q = strstr(p, "xoff (Integer) = ");
        CHECK(q && (!next || q < next) && atoi(q + 17) == r.window.xoff);
        q = strstr(p, "yoff (Integer) = ");
        CHECK(q && (!next || q < next) && atoi(q + 17) == r.window.yoff);
        q = strstr(p, "scene_id (Integer64) = ");
        CHECK(q && (!next || q < next) && atoll(q + 23) == sid);
        q = strstr(p, "POLYGON ((");
        CHECK(q && (!next || q < next));
        if (!q) continue;
        q += strlen("POLYGON ((");
        double maxerr = 0;
        int pts = 0;
        for (;; pts++) {
            char *end;
            double x = strtod(q, &end);
            double y = strtod(end, &end);
            int k = pts % TI_NPTS; /* the closing point repeats the first */
            maxerr = fmax(maxerr, fmax(fabs(x - xy[2 * k]), fabs(y - xy[2 * k + 1])));
            q = end;
            if (*q != ',') break;
            q++;
        }
        CHECK(pts + 1 == TI_NPTS + 1);
        CHECK(maxerr < 1e-12); /* ogrinfo prints 15 significant digits */
        features++;
    }
    CHECK(features == n);
    free(out);

    /* GDAL's spatial filter (R-tree + its own geometry test) vs rsclip's exact bbox query */
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    const double boxes[3][4] = {{-3.49, 52.385, -3.475, 52.395},
                                {-3.6, 52.0, -3.0, 53.0},
                                {-3.4985, 52.3815, -3.4984, 52.3816}};
    for (int b = 0; b < 3; b++) {
        int64_t *ids;
        size_t nh;
        CHECK_OK(rsclip_index_tiles_in_bbox(idx, boxes[b], 1, &ids, &nh));
        /* list the features (GDAL's -so count with a filter is the R-tree's envelope count) */
        snprintf(cmd, sizeof cmd,
                 "ogrinfo -ro -q -geom=NO -spat %.10f %.10f %.10f %.10f '%s' tiles", boxes[b][0],
                 boxes[b][1], boxes[b][2], boxes[b][3], path);
        CHECK(run(cmd, &out) == 0);
        size_t gdal_n = 0, same = 0;
        for (const char *p = strstr(out, "OGRFeature(tiles):"); p;
             p = strstr(p + 1, "OGRFeature(tiles):")) {
            long fid = strtol(p + strlen("OGRFeature(tiles):"), NULL, 10);
            for (size_t k = 0; k < nh; k++) same += ids[k] == fid;
            gdal_n++;
        }
        if (gdal_n != nh || same != nh || nh == 0) {
            fprintf(stderr, "box %d: GDAL %zu features, rsclip %zu, common %zu\n", b, gdal_n, nh,
                    same);
            tu_failures++;
        }
        rsclip_free(ids);
        free(out);
    }
    rsclip_index_close(idx);

    /* GDAL's GeoPackage validator (requirement checks + extra content checks) */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 /usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py"
             " -k --extra '%s'",
             path);
    int vrc = run(cmd, &out);
    CHECK(vrc == 0);
    if (vrc) fprintf(stderr, "validate_gpkg: %s\n", out);
    free(out);

    /* a feature deleted through GDAL: R-tree, embedding and scene count follow */
    snprintf(cmd, sizeof cmd, "ogrinfo '%s' -sql \"DELETE FROM tiles WHERE fid = %lld\"", path,
             (long long)e->ids[3]);
    CHECK(run(cmd, &out) == 0);
    free(out);
    CHECK_OK(rsclip_index_open(path, 0, &idx));
    CHECK_OK(rsclip_index_verify(idx));
    rsclip_embeddings *e2;
    CHECK_OK(rsclip_index_load_embeddings(idx, &e2));
    CHECK(e2 && e2->n == (size_t)n - 1);
    rsclip_embeddings_free(e2);
    rsclip_scene_info *si;
    CHECK_OK(rsclip_index_get_scene(idx, sid, &si));
    CHECK(si && si->tiles_stored == n - 1);
    rsclip_free(si);
    /* rsclip keeps writing to a file GDAL has touched */
    rsclip_scene_info s2 = ti_scene("/data/more.tif", 1, 2, NULL, 2, 2);
    CHECK_OK(rsclip_index_begin_scene(idx, &s2, 0, &sid, &state));
    CHECK_OK(ti_add_batch(idx, sid, 2, LON0 + 0.1, LAT0, 2, 0, 4, DIM));
    CHECK_OK(rsclip_index_verify(idx));
    rsclip_index_close(idx);
    snprintf(cmd, sizeof cmd, "ogrinfo -ro -so '%s' tiles", path);
    CHECK(run(cmd, &out) == 0);
    CHECK(count_after(out, "Feature Count: ") == n - 1 + 4);
    free(out);

    rsclip_embeddings_free(e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!tu_failures && !getenv("RSCLIP_TEST_KEEP") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_index_ogr");
}
