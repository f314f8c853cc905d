/* Pictures for people, checked against what the model sees and against GDAL read directly:
 * rsclip_tiler_render at 1:1 with nearest neighbour gives exactly rsclip_tiler_read's tiles (8-bit,
 * 16-bit percentile scaling, a nodata collar, a gsd grid), warped into the scene's own CRS it
 * gives the same pixels, areas past the scene are transparent; rsclip_tiler_save_window copies
 * the source pixels and georeferences the copy to the window's exact bounds (also fractional);
 * PNG encoding round-trips through GDAL's PNG reader; sheet layouts and output rules; bad
 * arguments are refused with an error, never a crash. */
#include "test_util.h"

#include "rsclip/rsclip.h"

#include <gdal.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[512];

static const char *sample(const char *name) {
    static char buf[4][1024];
    static int k;
    const char *src = getenv("RSCLIP_SOURCE_DIR");
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/samples/%s", src ? src : ".", name);
    return b;
}

static rsclip_tiler *open_tiler(const char *path, double gsd) {
    rsclip_tiler_params tp = rsclip_tiler_default_params();
    tp.min_valid = 0.0;
    tp.gsd = gsd;
    rsclip_tiler *t = NULL;
    CHECK_OK(rsclip_tiler_open(path, &tp, &t));
    REQUIRE(t);
    return t;
}

/* Every tile drawn 1:1 with "near" equals the tile the model reads; alpha marks the same pixels
 * the tiler filled as invalid (black). */
static void check_render_equals_tiles(const char *name, double gsd) {
    rsclip_tiler *t = open_tiler(sample(name), gsd);
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    size_t cap = rsclip_tiler_buffer_size(t);
    uint8_t *rgb = malloc(cap), *rgba = malloc(cap / 3 * 4);
    REQUIRE(rgb && rgba);
    int64_t checked = 0, transparent = 0;
    for (int64_t i = 0; i < si->n_tiles; i++) {
        rsclip_tile tile;
        CHECK_OK(rsclip_tiler_read(t, i, rgb, cap, &tile));
        double area[4] = {tile.xoff, tile.yoff, tile.xsize, tile.ysize};
        int64_t nv = -1;
        CHECK_OK(rsclip_tiler_render(t, NULL, area, tile.xsize, tile.ysize, "near", rgba,
                                     cap / 3 * 4, &nv));
        size_t n = (size_t)tile.xsize * tile.ysize, diff = 0, valid = 0;
        for (size_t p = 0; p < n; p++) {
            const uint8_t *a = rgb + 3 * p, *b = rgba + 4 * p;
            if (b[3])
                valid++;
            else
                transparent++;
            if (a[0] != b[0] || a[1] != b[1] || a[2] != b[2]) diff++;
            if (!b[3] && (a[0] || a[1] || a[2])) diff++; /* invalid pixels are black tiles */
        }
        CHECK(diff == 0);
        CHECK(nv == (int64_t)valid);
        CHECK(fabs((double)valid / n - tile.valid_fraction) < 1e-12);
        if (diff) fprintf(stderr, "%s tile %lld: %zu pixels differ\n", name, (long long)i, diff);
        checked++;
    }
    CHECK(checked == si->n_tiles && checked > 0);
    printf("%s (gsd %g): %lld tiles drawn as read, %lld transparent pixels\n", name, gsd,
           (long long)checked, (long long)transparent);
    free(rgb);
    free(rgba);
    rsclip_tiler_close(t);
}

/* Warped into the scene's own CRS on its own pixel grid, the picture is the window read 1:1. */
static void check_warp_on_own_grid(const char *name) {
    rsclip_tiler *t = open_tiler(sample(name), 0);
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    const double *gt = si->geotransform;
    int w = si->width < 200 ? si->width : 200, h = si->height < 150 ? si->height : 150;
    int x0 = si->width - w, y0 = si->height - h;
    double box[4] = {gt[0] + x0 * gt[1], gt[3] + (y0 + h) * gt[5], gt[0] + (x0 + w) * gt[1],
                     gt[3] + y0 * gt[5]};
    size_t n = (size_t)w * h;
    uint8_t *a = malloc(n * 4), *b = malloc(n * 4);
    REQUIRE(a && b);
    double area[4] = {x0, y0, w, h};
    CHECK_OK(rsclip_tiler_render(t, NULL, area, w, h, "near", a, n * 4, NULL));
    char crs[64];
    snprintf(crs, sizeof crs, "EPSG:%d", si->epsg);
    CHECK(si->epsg > 0);
    CHECK_OK(rsclip_tiler_render(t, crs, box, w, h, "near", b, n * 4, NULL));
    size_t diff = 0;
    for (size_t p = 0; p < n * 4; p++) diff += a[p] != b[p];
    CHECK(diff == 0);
    printf("%s: warp onto its own grid == window read (%zu bytes differ)\n", name, diff);
    /* an area half off the scene: the outside half is transparent */
    double half[4] = {-w / 2.0, 0, w, h};
    CHECK_OK(rsclip_tiler_render(t, NULL, half, w, h, "bilinear", a, n * 4, NULL));
    int outside_clear = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w / 2 - 1; x++) outside_clear &= a[4 * ((size_t)y * w + x) + 3] == 0;
    CHECK(outside_clear);
    free(a);
    free(b);
    rsclip_tiler_close(t);
}

/* The copy of a window holds the source pixels (whole windows) and exactly its bounds. */
static void check_save_window(const char *name, const double win[4], int exact_pixels) {
    rsclip_tiler *t = open_tiler(sample(name), 0);
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    char out[600];
    snprintf(out, sizeof out, "%s/chip.tif", g_tmp);
    unlink(out);
    CHECK_OK(rsclip_tiler_save_window(t, win, out, NULL));
    GDALDatasetH src = GDALOpen(sample(name), GA_ReadOnly), dst = GDALOpen(out, GA_ReadOnly);
    REQUIRE(src && dst);
    CHECK(GDALGetRasterCount(dst) == GDALGetRasterCount(src));
    double g[6];
    CHECK(GDALGetGeoTransform(dst, g) == CE_None);
    const double *s = si->src_geotransform;
    int ow = GDALGetRasterXSize(dst), oh = GDALGetRasterYSize(dst);
    double ulx = s[0] + win[0] * s[1] + win[1] * s[2], uly = s[3] + win[0] * s[4] + win[1] * s[5];
    double lrx = s[0] + (win[0] + win[2]) * s[1], lry = s[3] + (win[1] + win[3]) * s[5];
    double tol = 1e-6 * fabs(s[1]);
    CHECK(fabs(g[0] - ulx) < tol && fabs(g[3] - uly) < tol);
    CHECK(fabs(g[0] + ow * g[1] - lrx) < tol && fabs(g[3] + oh * g[5] - lry) < tol);
    CHECK(ow == (int)floor(win[2] + 0.5) && oh == (int)floor(win[3] + 0.5));
    for (int b = 1; b <= GDALGetRasterCount(src) && exact_pixels; b++) {
        GDALRasterBandH sb = GDALGetRasterBand(src, b), db = GDALGetRasterBand(dst, b);
        CHECK(GDALGetRasterDataType(sb) == GDALGetRasterDataType(db));
        int has_a = 0, has_b = 0;
        double nd_a = GDALGetRasterNoDataValue(sb, &has_a),
               nd_b = GDALGetRasterNoDataValue(db, &has_b);
        CHECK(has_a == has_b && (!has_a || nd_a == nd_b));
        size_t n = (size_t)ow * oh;
        double *va = malloc(n * sizeof(double)), *vb = malloc(n * sizeof(double));
        REQUIRE(va && vb);
        CHECK(GDALRasterIO(sb, GF_Read, (int)win[0], (int)win[1], ow, oh, va, ow, oh, GDT_Float64,
                           0, 0) == CE_None);
        CHECK(GDALRasterIO(db, GF_Read, 0, 0, ow, oh, vb, ow, oh, GDT_Float64, 0, 0) == CE_None);
        CHECK(memcmp(va, vb, n * sizeof(double)) == 0);
        free(va);
        free(vb);
    }
    printf("%s: window %g,%g %gx%g saved as %dx%d with its exact bounds\n", name, win[0], win[1],
           win[2], win[3], ow, oh);
    GDALClose(src);
    GDALClose(dst);
    /* never inside-out or outside the raster */
    double bad[4] = {win[0], win[1], si->src_width * 2.0, win[3]};
    CHECK(rsclip_tiler_save_window(t, bad, out, NULL) == RSCLIP_ERR_INVALID_ARG);
    double nan_win[4] = {NAN, 0, 10, 10};
    CHECK(rsclip_tiler_save_window(t, nan_win, out, NULL) == RSCLIP_ERR_INVALID_ARG);
    rsclip_tiler_close(t);
}

static void check_png(void) {
    enum { W = 37, H = 23 };
    uint8_t px[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        px[4 * i] = (uint8_t)(i * 7), px[4 * i + 1] = (uint8_t)(i * 13);
        px[4 * i + 2] = (uint8_t)(i * 29), px[4 * i + 3] = i % 3 ? 255 : 0;
    }
    for (int ch = 3; ch <= 4; ch++) {
        uint8_t in[W * H * 4];
        for (int i = 0; i < W * H; i++) memcpy(in + ch * i, px + 4 * i, (size_t)ch);
        if (ch == 4) /* invisible pixels keep no colour in a premultiplied encoder */
            for (int i = 0; i < W * H; i++)
                if (!in[4 * i + 3]) in[4 * i] = in[4 * i + 1] = in[4 * i + 2] = 0;
        uint8_t *png = NULL;
        size_t n = 0;
        CHECK_OK(rsclip_png_encode(in, W, H, ch, &png, &n));
        REQUIRE(png && n > 8 && memcmp(png, "\x89PNG", 4) == 0);
        VSILFILE *f = VSIFileFromMemBuffer("/vsimem/t.png", png, n, FALSE);
        VSIFCloseL(f);
        GDALDatasetH ds = GDALOpen("/vsimem/t.png", GA_ReadOnly);
        REQUIRE(ds);
        CHECK(GDALGetRasterXSize(ds) == W && GDALGetRasterYSize(ds) == H);
        CHECK(GDALGetRasterCount(ds) == ch);
        uint8_t back[W * H * 4];
        CHECK(GDALDatasetRasterIO(ds, GF_Read, 0, 0, W, H, back, W, H, GDT_Byte, ch, NULL, ch,
                                  ch * W, 1) == CE_None);
        CHECK(memcmp(back, in, (size_t)W * H * ch) == 0);
        GDALClose(ds);
        VSIUnlink("/vsimem/t.png");
        rsclip_free(png);
    }
    uint8_t *png = NULL;
    size_t n = 0;
    CHECK(rsclip_png_encode(px, 0, 5, 3, &png, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_png_encode(px, 40000, 5, 3, &png, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_png_encode(px, 5, 5, 2, &png, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK(png == NULL);
}

static void check_render_args(void) {
    rsclip_tiler *t = open_tiler(sample("usgs_hro_colorado_springs_2014_0.15m_epsg26913.tif"), 0);
    uint8_t buf[64 * 64 * 4];
    double ok[4] = {0, 0, 64, 64}, inf[4] = {0, 0, INFINITY, 64}, empty[4] = {0, 0, 0, 64};
    CHECK(rsclip_tiler_render(t, NULL, ok, 64, 64, "near", buf, 10, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tiler_render(t, NULL, ok, 0, 64, "near", buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tiler_render(t, NULL, ok, 100000, 1, "near", buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tiler_render(t, NULL, inf, 64, 64, "near", buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tiler_render(t, NULL, empty, 64, 64, "near", buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tiler_render(t, NULL, ok, 64, 64, "bogus", buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    double inverted[4] = {10, 0, 0, 64}; /* min x > max x */
    CHECK(rsclip_tiler_render(t, "EPSG:3857", inverted, 64, 64, NULL, buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    double far[4] = {1e7, 1e7, 1e7 + 10, 1e7 + 10};
    int64_t nv = -1;
    CHECK_OK(rsclip_tiler_render(t, "EPSG:3857", far, 64, 64, NULL, buf, sizeof buf, &nv));
    CHECK(nv == 0); /* far from the scene: nothing */
    CHECK(rsclip_tiler_render(NULL, NULL, ok, 64, 64, NULL, buf, sizeof buf, NULL) ==
          RSCLIP_ERR_INVALID_ARG);
    rsclip_tiler_close(t);
    CHECK(rsclip_imagery_open(NULL, NULL, NULL) == RSCLIP_ERR_INVALID_ARG);
    rsclip_imagery *im = NULL;
    CHECK(rsclip_imagery_open(sample("README.md"), NULL, &im) != RSCLIP_OK && im == NULL);
    rsclip_imagery_close(NULL);
}

static void check_layout(void) {
    rsclip_sheet_params p = rsclip_sheet_default_params();
    rsclip_sheet_layout L;
    CHECK_OK(rsclip_sheet_layout_for(12, &p, &L));
    CHECK(L.columns == 5 && L.rows == 3 && L.thumb == 192);
    CHECK(L.width == 2 * 24 + 5 * 192 + 4 * 16);
    CHECK(L.grid_y + 3 * L.cell_h + 2 * 16 + 24 == L.height);
    CHECK_OK(rsclip_sheet_layout_for(2, &p, &L));
    CHECK(L.columns == 2 && L.rows == 1 && L.width == 2 * 24 + 560);
    p.thumb = 10;
    CHECK(rsclip_sheet_layout_for(2, &p, &L) == RSCLIP_ERR_INVALID_ARG);
    p.thumb = 1024;
    CHECK(rsclip_sheet_layout_for(100000, &p, &L) == RSCLIP_ERR_INVALID_ARG); /* too tall */
    CHECK(rsclip_sheet_layout_for(0, NULL, &L) == RSCLIP_ERR_INVALID_ARG);
}

/* What chips and sheets refuse to write: an existing file, a non-empty folder, the index. */
static void check_output_rules(void) {
    char file[600], dir[600], index[600];
    snprintf(file, sizeof file, "%s/sheet.png", g_tmp);
    snprintf(dir, sizeof dir, "%s/chips", g_tmp);
    snprintf(index, sizeof index, "%s/city.gpkg", g_tmp);
    FILE *f = fopen(index, "w");
    REQUIRE(f);
    fclose(f);
    const char *prot[] = {index};
    rsclip_sheet_params sp = rsclip_sheet_default_params();
    sp.protected_paths = prot;
    sp.n_protected = 1;
    CHECK_OK(rsclip_sheet_check(file, &sp)); /* new */
    f = fopen(file, "w");
    REQUIRE(f);
    fclose(f);
    CHECK(rsclip_sheet_check(file, &sp) == RSCLIP_ERR_EXISTS); /* exists */
    sp.overwrite = 1;
    CHECK_OK(rsclip_sheet_check(file, &sp));
    char bad[700];
    snprintf(bad, sizeof bad, "%s/sheet.jpg", g_tmp);
    CHECK(rsclip_sheet_check(bad, &sp) == RSCLIP_ERR_INVALID_ARG);   /* format */
    CHECK(rsclip_sheet_check(index, &sp) == RSCLIP_ERR_INVALID_ARG); /* not even as png */
    sp.format = "png";
    CHECK(rsclip_sheet_check(index, &sp) == RSCLIP_ERR_INVALID_ARG); /* the index: never */
    snprintf(bad, sizeof bad, "%s-wal", index);
    CHECK(rsclip_sheet_check(bad, &sp) == RSCLIP_ERR_INVALID_ARG);
    snprintf(bad, sizeof bad, "%s/no/such/folder/s.png", g_tmp);
    CHECK(rsclip_sheet_check(bad, &sp) == RSCLIP_ERR_IO);
    CHECK(rsclip_sheet_check(g_tmp, &sp) != RSCLIP_OK); /* a folder */

    rsclip_chips_params cp = rsclip_chips_default_params();
    cp.protected_paths = prot;
    cp.n_protected = 1;
    CHECK_OK(rsclip_chips_check(dir, &cp)); /* missing: made */
    CHECK(mkdir(dir, 0755) == 0);
    CHECK_OK(rsclip_chips_check(dir, &cp)); /* empty */
    snprintf(bad, sizeof bad, "%s/notes.txt", dir);
    f = fopen(bad, "w");
    REQUIRE(f);
    fclose(f);
    CHECK(rsclip_chips_check(dir, &cp) == RSCLIP_ERR_EXISTS); /* not empty */
    cp.overwrite = 1;
    CHECK_OK(rsclip_chips_check(dir, &cp));
    CHECK(rsclip_chips_check(file, &cp) == RSCLIP_ERR_INVALID_ARG); /* a file */
    const char *prot_dir[] = {g_tmp};
    cp.protected_paths = prot_dir; /* a sharded index folder is never a chips folder */
    CHECK(rsclip_chips_check(g_tmp, &cp) == RSCLIP_ERR_INVALID_ARG);
    unlink(bad);
    rmdir(dir);
    unlink(file);
    unlink(index);
}

int main(void) {
    GDALAllRegister();
    snprintf(g_tmp, sizeof g_tmp, "%s/rsclip_test_render_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    REQUIRE(mkdtemp(g_tmp));
    check_render_equals_tiles("usgs_hro_colorado_springs_2014_0.15m_epsg26913.tif", 0);
    check_render_equals_tiles("l7_rgb_300m_nodata_collar_epsg32618.tif", 0);
    check_render_equals_tiles("s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif", 0);
    check_render_equals_tiles("l8_b7_memphis_30m_epsg32615.tif", 0);
    check_render_equals_tiles("naip_milwaukee_airport_0.6m_epsg26916.tif", 0);
    check_render_equals_tiles("usgs_hro_colorado_springs_2014_0.15m_epsg26913.tif", 0.5);
    check_warp_on_own_grid("l7_rgb_300m_nodata_collar_epsg32618.tif");
    check_warp_on_own_grid("s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif");
    const double whole[4] = {100, 50, 256, 256}, frac[4] = {10.5, 20.25, 100.4, 50.6};
    check_save_window("s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif", whole, 1);
    check_save_window("l7_rgb_300m_nodata_collar_epsg32618.tif", whole, 1);
    check_save_window("usgs_hro_colorado_springs_2014_0.15m_epsg26913.tif", frac, 0);
    check_png();
    check_render_args();
    check_layout();
    check_output_rules();
    rmdir(g_tmp);
    return tu_finish("test_render");
}
