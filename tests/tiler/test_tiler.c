/* Tiler C API tests: parameters, input expansion, fingerprints, threads. Geometry, masks and
 * scaling are checked against GDAL/OSR/numpy in test_tiler_geo.py; memory in test_tiler_memory. */
#include "rsclip/tiler.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char g_tmp[256];

static const char *samples_dir(void) {
    static char buf[2048];
    const char *src = getenv("RSCLIP_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/samples", src ? src : ".");
    return buf;
}

static void sample_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", samples_dir(), name);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

static void patch_byte(const char *path, long off, int whence) {
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    REQUIRE(fseek(f, off, whence) == 0);
    int c = fgetc(f);
    REQUIRE(c != EOF);
    REQUIRE(fseek(f, -1, SEEK_CUR) == 0);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void test_params(void) {
    rsclip_tiler_params p = rsclip_tiler_default_params();
    CHECK(p.tile_size == 256 && p.stride == 0 && p.n_bands == 0);
    CHECK(p.min_valid == 0.5 && p.scale_mode == RSCLIP_TILER_SCALE_AUTO);
    CHECK(p.pct_low == 2.0 && p.pct_high == 98.0 && p.stats_size == 1024);
    CHECK(p.gsd == 0.0 && p.resampling == NULL && p.mask_mode == RSCLIP_TILER_MASK_AUTO);
    CHECK(p.allow_pixel_coords == 0 && p.densify == 8);

    char path[4096];
    sample_path(path, sizeof path, "naip_nd_20200831_rgbn_5m_epsg26914.tif");
    rsclip_tiler *t = (rsclip_tiler *)1;
    struct {
        const char *what;
        rsclip_tiler_params p;
    } bad[8];
    for (int i = 0; i < 8; i++) bad[i].p = rsclip_tiler_default_params();
    bad[0].what = "tile_size 0", bad[0].p.tile_size = 0;
    bad[1].what = "n_bands 2", bad[1].p.n_bands = 2;
    bad[2].what = "min_valid 1.5", bad[2].p.min_valid = 1.5;
    bad[3].what = "densify 0", bad[3].p.densify = 0;
    bad[4].what = "empty range", bad[4].p.scale_mode = RSCLIP_TILER_SCALE_RANGE;
    bad[5].what = "pct reversed", bad[5].p.pct_low = 98, bad[5].p.pct_high = 2;
    bad[6].what = "negative gsd", bad[6].p.gsd = -1;
    bad[7].what = "stride -1", bad[7].p.stride = -1;
    for (int i = 0; i < 8; i++) {
        int rc = rsclip_tiler_open(path, &bad[i].p, &t);
        if (rc != RSCLIP_ERR_INVALID_ARG) fprintf(stderr, "bad param %s accepted\n", bad[i].what);
        CHECK(rc == RSCLIP_ERR_INVALID_ARG);
        CHECK(t == NULL);
        CHECK(strstr(rsclip_last_error(), "naip_nd_") != NULL);
    }
    CHECK(rsclip_tiler_open(NULL, NULL, &t) == RSCLIP_ERR_INVALID_ARG);
    rsclip_tiler_close(NULL);
    rsclip_inputs_free(NULL, 0);

    /* NULL params = defaults; tile index out of range; small buffer. */
    CHECK_OK(rsclip_tiler_open(path, NULL, &t));
    if (t) {
        rsclip_tile tile;
        uint8_t small[16];
        const rsclip_raster_info *si = rsclip_tiler_scene(t);
        CHECK(si->tile_size == 256 && si->stride == 256);
        CHECK(rsclip_tiler_buffer_size(t) == 256 * 256 * 3);
        CHECK(rsclip_tiler_tile(t, si->n_tiles, &tile) == RSCLIP_ERR_INVALID_ARG);
        CHECK(rsclip_tiler_tile(t, -1, &tile) == RSCLIP_ERR_INVALID_ARG);
        CHECK(rsclip_tiler_read(t, 0, small, sizeof small, &tile) == RSCLIP_ERR_INVALID_ARG);
        CHECK_OK(rsclip_tiler_tile(t, 0, &tile));
        CHECK(tile.valid_fraction == -1.0 && tile.has_lonlat && tile.n_ring == 33);
        rsclip_tiler_close(t);
    }
}

/* The band and scale grammar (command line and settings texts alike). */
static void test_option_texts(void) {
    rsclip_tiler_params p = rsclip_tiler_default_params();
    CHECK_OK(rsclip_tiler_parse_bands("4,3,2", &p));
    CHECK(p.n_bands == 3 && p.bands[0] == 4 && p.bands[1] == 3 && p.bands[2] == 2);
    CHECK_OK(rsclip_tiler_parse_bands("7", &p));
    CHECK(p.n_bands == 1 && p.bands[0] == 7);
    CHECK_OK(rsclip_tiler_parse_bands("auto", &p));
    CHECK(p.n_bands == 0);
    const char *bad_bands[] = {"", "0", "1,2", "1,2,3,4", "1.5", "x", "1,,2", "65536", "3,"};
    for (size_t i = 0; i < sizeof bad_bands / sizeof *bad_bands; i++) {
        p.n_bands = 0;
        CHECK(rsclip_tiler_parse_bands(bad_bands[i], &p) == RSCLIP_ERR_INVALID_ARG);
        CHECK(p.n_bands == 0 && strstr(rsclip_last_error(), "bands") != NULL);
    }
    CHECK_OK(rsclip_tiler_parse_scale("0,3000", &p));
    CHECK(p.scale_mode == RSCLIP_TILER_SCALE_RANGE && p.scale_min[2] == 0 &&
          p.scale_max[2] == 3000);
    CHECK_OK(rsclip_tiler_parse_scale("1,2,3,4,5,6", &p));
    CHECK(p.scale_min[1] == 3 && p.scale_max[1] == 4 && p.scale_max[2] == 6);
    CHECK_OK(rsclip_tiler_parse_scale("none", &p));
    CHECK(p.scale_mode == RSCLIP_TILER_SCALE_NONE);
    CHECK_OK(rsclip_tiler_parse_scale("percentile", &p));
    CHECK(p.scale_mode == RSCLIP_TILER_SCALE_PERCENTILE);
    const char *bad_scale[] = {"", "5", "3,3", "4,1", "1,2,3", "1,2,3,4,6,5", "nan,1", "0,1x"};
    for (size_t i = 0; i < sizeof bad_scale / sizeof *bad_scale; i++) {
        p.scale_mode = RSCLIP_TILER_SCALE_AUTO;
        CHECK(rsclip_tiler_parse_scale(bad_scale[i], &p) == RSCLIP_ERR_INVALID_ARG);
        CHECK(p.scale_mode == RSCLIP_TILER_SCALE_AUTO && strstr(rsclip_last_error(), "scale"));
    }
    CHECK(rsclip_tiler_parse_scale(NULL, &p) == RSCLIP_ERR_INVALID_ARG);
    /* a settings text round-trips through the same grammar */
    rsclip_tiler_params a = rsclip_tiler_default_params(), b;
    CHECK_OK(rsclip_tiler_parse_bands("3,2,1", &a));
    CHECK_OK(rsclip_tiler_parse_scale("10,20", &a));
    char text[RSCLIP_TILER_SETTINGS_MAX], again[RSCLIP_TILER_SETTINGS_MAX];
    CHECK_OK(rsclip_tiler_settings(&a, text, sizeof text));
    CHECK_OK(rsclip_tiler_settings_parse(text, &b));
    CHECK_OK(rsclip_tiler_settings(&b, again, sizeof again));
    CHECK(strcmp(text, again) == 0 && b.n_bands == 3 && b.scale_max[0] == 20);
}

static int has(char **v, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return 1;
    return 0;
}

static void test_inputs(void) {
    char root[512], p[4096], real_root[PATH_MAX], outside[512];
    snprintf(root, sizeof root, "%s/in", g_tmp);
    snprintf(outside, sizeof outside, "%s/outside", g_tmp);
    REQUIRE(mkdir(root, 0755) == 0 && mkdir(outside, 0755) == 0);
    const char *dirs[] = {"sub", "sub/deeper", ".hidden"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        REQUIRE(mkdir(p, 0755) == 0);
    }
    const char *files[] = {"a.tif",      "B.TIFF",           "c.txt",
                           "sub/d.vrt",  "sub/deeper/e.JP2", ".hidden/f.tif",
                           "sub/.g.tif", "sub/x.tif.aux.xml"};
    for (int i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s/%s", root, files[i]);
        write_file(p, "x");
    }
    snprintf(p, sizeof p, "%s/h.tif", outside);
    write_file(p, "x");
    char link[4096];
    snprintf(link, sizeof link, "%s/ext", root);
    REQUIRE(symlink(outside, link) == 0);
    REQUIRE(realpath(root, real_root));

    char list[4096];
    snprintf(list, sizeof list, "%s/list.txt", root);
    write_file(list,
               "# rasters to index\n\n   sub/d.vrt  \nc.txt\n# a.tif\n/vsicurl/http://h/y.tif\n"
               "https://example.com/z.tif\r\n");
    char a_dup[4096];
    snprintf(a_dup, sizeof a_dup, "%s/sub/../a.tif", root);
    const char *inputs[] = {root, a_dup, "NETCDF:nothere.nc:var"};
    char **out = NULL;
    int n = -1;
    CHECK_OK(rsclip_inputs_expand(inputs, 3, list, &out, &n));
    char e[16][8192];
    const char *rel[] = {"B.TIFF", "a.tif", "c.txt", "sub/d.vrt", "sub/deeper/e.JP2"};
    int ne = 0;
    for (int i = 0; i < 5; i++) snprintf(e[ne++], sizeof e[0], "%s/%s", real_root, rel[i]);
    snprintf(e[ne++], sizeof e[0], "/vsicurl/http://h/y.tif");
    snprintf(e[ne++], sizeof e[0], "/vsicurl/https://example.com/z.tif");
    snprintf(e[ne++], sizeof e[0], "NETCDF:nothere.nc:var");
    CHECK(n == ne);
    for (int i = 0; i < ne; i++) {
        if (!has(out, n, e[i])) fprintf(stderr, "inputs: missing %s\n", e[i]);
        CHECK(has(out, n, e[i]));
    }
    for (int i = 1; i < n; i++) CHECK(strcmp(out[i - 1], out[i]) < 0); /* sorted, unique */
    for (int i = 0; i < n; i++)
        CHECK(strstr(out[i], "h.tif") == NULL && strstr(out[i], "f.tif") == NULL);
    rsclip_inputs_free(out, n);

    /* Missing inputs are errors naming them; so are bad lines of the list file. */
    const char *missing[] = {"/nonexistent/x.tif"};
    CHECK(rsclip_inputs_expand(missing, 1, NULL, &out, &n) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strstr(rsclip_last_error(), "/nonexistent/x.tif") != NULL);
    CHECK(out == NULL && n == 0);
    write_file(list, "a.tif\n# fine\nnope.tif\n");
    CHECK(rsclip_inputs_expand(NULL, 0, list, &out, &n) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strstr(rsclip_last_error(), "list.txt") && strstr(rsclip_last_error(), "line 3") &&
          strstr(rsclip_last_error(), "nope.tif"));
    snprintf(p, sizeof p, "%s/none.txt", root);
    CHECK(rsclip_inputs_expand(NULL, 0, p, &out, &n) == RSCLIP_ERR_NOT_FOUND);
    /* An empty folder is not an error. */
    snprintf(p, sizeof p, "%s/sub/deeper/empty", root);
    REQUIRE(mkdir(p, 0755) == 0);
    const char *empty[] = {p};
    CHECK_OK(rsclip_inputs_expand(empty, 1, NULL, &out, &n));
    CHECK(n == 0);
    rsclip_inputs_free(out, n);

    CHECK(rsclip_inputs_is_raster_name("x.TIF") && rsclip_inputs_is_raster_name("m.vrt"));
    CHECK(!rsclip_inputs_is_raster_name("x.tif.aux.xml") && !rsclip_inputs_is_raster_name(".tif"));
}

static void test_fingerprint(void) {
    char src[4096], a[4096], vrt[4096];
    sample_path(src, sizeof src, "naip_nd_20200831_rgbn_5m_epsg26914.tif");
    snprintf(a, sizeof a, "%s/fp.tif", g_tmp);
    snprintf(vrt, sizeof vrt, "%s/fp.vrt", g_tmp);
    tu_copy_file(src, a);
    rsclip_fingerprint f0, f1, f2;
    CHECK_OK(rsclip_file_fingerprint(a, &f0));
    CHECK_OK(rsclip_file_fingerprint(a, &f1));
    CHECK(f0.checksum == f1.checksum && f0.size == f1.size && f0.size > 2 * 1024 * 1024);
    struct stat st;
    REQUIRE(stat(a, &st) == 0);
    CHECK(f0.size == (int64_t)st.st_size);
    CHECK(f0.mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)f0.checksum);
    CHECK(strcmp(hex, f0.checksum_hex) == 0);

    patch_byte(a, 100, SEEK_SET); /* the head */
    CHECK_OK(rsclip_file_fingerprint(a, &f1));
    CHECK(f1.checksum != f0.checksum && f1.size == f0.size);
    patch_byte(a, 100, SEEK_SET);
    CHECK_OK(rsclip_file_fingerprint(a, &f1));
    CHECK(f1.checksum == f0.checksum);
    patch_byte(a, -1, SEEK_END); /* the tail */
    CHECK_OK(rsclip_file_fingerprint(a, &f1));
    CHECK(f1.checksum != f0.checksum);
    patch_byte(a, -1, SEEK_END);

    /* The tiler reports the same fingerprint. */
    rsclip_tiler *t;
    CHECK_OK(rsclip_tiler_open(a, NULL, &t));
    if (t) {
        CHECK(rsclip_tiler_scene(t)->fingerprint.checksum == f0.checksum);
        rsclip_tiler_close(t);
    }

    /* A VRT's checksum follows its sources. */
    char xml[2048];
    snprintf(xml, sizeof xml,
             "<VRTDataset rasterXSize=\"934\" rasterYSize=\"723\">\n"
             "  <SRS>EPSG:26914</SRS><GeoTransform>485899,5,0,5209246,0,-5</GeoTransform>\n"
             "  <VRTRasterBand dataType=\"Byte\" band=\"1\"><SimpleSource>\n"
             "    <SourceFilename relativeToVRT=\"1\">fp.tif</SourceFilename>\n"
             "    <SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>\n"
             "</VRTDataset>\n");
    write_file(vrt, xml);
    CHECK_OK(rsclip_file_fingerprint(vrt, &f1));
    FILE *f = fopen(a, "ab");
    REQUIRE(f);
    fputs("appended", f);
    fclose(f);
    CHECK_OK(rsclip_file_fingerprint(vrt, &f2));
    CHECK(f2.checksum != f1.checksum && f2.size == f1.size);

    char missing[4096];
    snprintf(missing, sizeof missing, "%s/nothere.tif", g_tmp);
    CHECK(rsclip_file_fingerprint(missing, &f1) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strstr(rsclip_last_error(), "nothere.tif") != NULL);
}

/* ---- threads: a tiler read on another thread; two tilers on one file at once ----------------- */

typedef struct job {
    rsclip_tiler *t;  /* read all tiles of t (if set) ... */
    const char *path; /* ... or open path first */
    uint8_t *out;     /* n_tiles * buffer_size bytes */
    int rc;
} job;

static void *read_all(void *arg) {
    job *j = (job *)arg;
    rsclip_tiler *t = j->t;
    if (!t && (j->rc = rsclip_tiler_open(j->path, NULL, &t)) != RSCLIP_OK) return NULL;
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    size_t bs = rsclip_tiler_buffer_size(t);
    rsclip_tile tile;
    for (int64_t i = 0; i < si->n_tiles && j->rc == 0; i++) {
        memset(j->out + i * bs, 0, bs);
        j->rc = rsclip_tiler_read(t, i, j->out + i * bs, bs, &tile);
    }
    if (!j->t) rsclip_tiler_close(t);
    return NULL;
}

static void test_threads(void) {
    char path[4096];
    sample_path(path, sizeof path, "s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif");
    rsclip_tiler *t;
    CHECK_OK(rsclip_tiler_open(path, NULL, &t));
    if (!t) return;
    size_t total = (size_t)rsclip_tiler_scene(t)->n_tiles * rsclip_tiler_buffer_size(t);
    job ref = {t, NULL, (uint8_t *)malloc(total), 0};
    job a = {NULL, path, (uint8_t *)malloc(total), 0};
    job b = {NULL, path, (uint8_t *)malloc(total), 0};
    REQUIRE(ref.out && a.out && b.out);
    /* opened here, read on a reader thread */
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, read_all, &ref) == 0);
    pthread_join(th, NULL);
    CHECK_OK(ref.rc);
    rsclip_tiler_close(t);
    pthread_t ta, tb;
    REQUIRE(pthread_create(&ta, NULL, read_all, &a) == 0);
    REQUIRE(pthread_create(&tb, NULL, read_all, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_OK(a.rc);
    CHECK_OK(b.rc);
    CHECK(memcmp(ref.out, a.out, total) == 0);
    CHECK(memcmp(ref.out, b.out, total) == 0);
    free(ref.out);
    free(a.out);
    free(b.out);
}

/* Every sample, every tile, a resampled grid and broken files through the C API (so that the
 * sanitizer run, which skips the slow Python checks, still covers every read path). */
static void test_all_samples(void) {
    const char *names[] = {"naip_nd_20200831_rgbn_5m_epsg26914.tif",
                           "s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif",
                           "l7_rgb_300m_nodata_collar_epsg32618.tif",
                           "naip_milwaukee_airport_0.6m_epsg26916.tif",
                           "l8_b7_memphis_30m_epsg32615.tif",
                           "usgs_hro_colorado_springs_2014_0.15m_epsg26913.tif",
                           "naip_nd_20200831_rgbn_5m_epsg26914.tif"};
    for (int k = 0; k < 7; k++) {
        char path[4096];
        sample_path(path, sizeof path, names[k]);
        rsclip_tiler_params p = rsclip_tiler_default_params();
        if (k == 6) p.gsd = 7.5, p.stride = 200; /* resampled, overlapping */
        rsclip_tiler *t;
        CHECK_OK(rsclip_tiler_open(path, &p, &t));
        if (!t) continue;
        const rsclip_raster_info *si = rsclip_tiler_scene(t);
        CHECK(si->georef == RSCLIP_GEOREF_CRS && si->epsg > 0 && si->crs_wkt[0] && si->crs_wkt2[0]);
        CHECK(si->fingerprint.size > 0 && si->n_tiles == (int64_t)si->tiles_x * si->tiles_y);
        size_t bs = rsclip_tiler_buffer_size(t);
        uint8_t *rgb = (uint8_t *)malloc(bs);
        rsclip_tile tile;
        int n_skipped = 0;
        for (int64_t i = 0; rgb && i < si->n_tiles; i++) {
            CHECK_OK(rsclip_tiler_read(t, i, rgb, bs, &tile));
            CHECK(tile.xoff >= 0 && tile.yoff >= 0 && tile.xoff + tile.xsize <= si->width &&
                  tile.yoff + tile.ysize <= si->height);
            CHECK(tile.valid_fraction >= 0.0 && tile.valid_fraction <= 1.0);
            CHECK(tile.skipped == (tile.valid_fraction < 0.5));
            CHECK(tile.has_lonlat && tile.n_ring == 33);
            n_skipped += tile.skipped;
        }
        if (k == 2)
            CHECK(n_skipped == 2); /* the collar scene */
        else
            CHECK(n_skipped == 0);
        free(rgb);
        rsclip_tiler_close(t);
    }

    /* A truncated GeoTIFF opens (its header is intact) but its tiles fail with the file name. */
    char src[4096], trunc[4096], junk[4096];
    sample_path(src, sizeof src, "naip_nd_20200831_rgbn_5m_epsg26914.tif");
    snprintf(trunc, sizeof trunc, "%s/trunc.tif", g_tmp);
    snprintf(junk, sizeof junk, "%s/junk.tif", g_tmp);
    tu_copy_file(src, trunc);
    REQUIRE(truncate(trunc, 800000) == 0);
    rsclip_tiler_params p = rsclip_tiler_default_params();
    p.min_valid = 0.0;
    rsclip_tiler *t;
    int rc = rsclip_tiler_open(trunc, &p, &t);
    if (rc == RSCLIP_OK) {
        size_t bs = rsclip_tiler_buffer_size(t);
        uint8_t *rgb = (uint8_t *)malloc(bs);
        rsclip_tile tile;
        int n_err = 0;
        for (int64_t i = 0; rgb && i < rsclip_tiler_scene(t)->n_tiles; i++) {
            rc = rsclip_tiler_read(t, i, rgb, bs, &tile);
            if (rc) {
                n_err++;
                CHECK(rc == RSCLIP_ERR_GDAL && strstr(rsclip_last_error(), "trunc.tif"));
            }
        }
        CHECK(n_err > 0);
        free(rgb);
        rsclip_tiler_close(t);
    } else {
        CHECK(strstr(rsclip_last_error(), "trunc.tif") != NULL);
    }
    write_file(junk, "II*\x01garbage that is not a TIFF at all");
    CHECK(rsclip_tiler_open(junk, NULL, &t) == RSCLIP_ERR_FORMAT);
    CHECK(strstr(rsclip_last_error(), "junk.tif") != NULL);
    CHECK(rsclip_tiler_open(g_tmp, NULL, &t) == RSCLIP_ERR_INVALID_ARG); /* a folder */
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/rsclip_tiler_XXXXXX");
    REQUIRE(mkdtemp(g_tmp));
    test_params();
    test_option_texts();
    test_inputs();
    test_fingerprint();
    test_threads();
    test_all_samples();
    rm_rf(g_tmp);
    return tu_finish("test_tiler");
}
