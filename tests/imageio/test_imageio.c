/* imageio: pixels of the fixture PNGs against the reference pixel_values (an independent decoder:
 * Pillow), band mapping, palettes and refusals on images written here with GDAL. */
#include "rsclip/rsclip.h"
#include "test_util.h"

#include <gdal.h>
#include <stdint.h>
#include <unistd.h>

static char tmpdir[256];

/* The reference pixel_values are (u8 / 255 - 0.5) / 0.5 in float32: invert to bytes. */
static void check_fixture_png(const rsclip_st_tensor *pv, int i) {
    char path[512];
    snprintf(path, sizeof path, "%s/siglip-tiny/img%d.png", tu_fixtures(), i);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    CHECK_OK(rsclip_image_read_rgb8(path, &rgb, &w, &h));
    REQUIRE(rgb && w == 256 && h == 256);
    size_t plane = 256 * 256, bad = 0;
    float *ref = malloc(sizeof *ref * (size_t)pv->n_elements);
    REQUIRE(ref);
    CHECK_OK(rsclip_st_to_f32(pv, ref, (size_t)pv->n_elements));
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++) {
            float v = ref[(size_t)i * 3 * plane + c * plane + p];
            int u8 = (int)lrintf((v * 0.5f + 0.5f) * 255.0f);
            if (u8 != rgb[3 * p + c]) bad++;
        }
    CHECK(bad == 0);
    free(ref);
    rsclip_free(rgb);
}

/* Write a w x h GTiff with n bands of type t; band b pixel (x, y) = fill(b, x, y). */
static void write_tiff(const char *path, int w, int h, int n, GDALDataType t,
                       const GDALColorInterp *ci) {
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    REQUIRE(drv);
    GDALDatasetH ds = GDALCreate(drv, path, w, h, n, t, NULL);
    REQUIRE(ds);
    uint16_t *buf = malloc(sizeof *buf * (size_t)w * h);
    for (int b = 1; b <= n; b++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) buf[y * w + x] = (uint16_t)(b * 50 + x + 3 * y);
        GDALRasterBandH band = GDALGetRasterBand(ds, b);
        CHECK(GDALRasterIO(band, GF_Write, 0, 0, w, h, buf, w, h, GDT_UInt16, 0, 0) == CE_None);
        if (ci) GDALSetRasterColorInterpretation(band, ci[b - 1]);
    }
    free(buf);
    GDALClose(ds);
}

static uint8_t expect_band(int b, int x, int y) {
    return (uint8_t)(b * 50 + x + 3 * y);
}

static void test_band_mapping(void) {
    char path[512];
    uint8_t *rgb;
    int w, h;

    /* grey: replicated */
    snprintf(path, sizeof path, "%s/grey.tif", tmpdir);
    write_tiff(path, 7, 5, 1, GDT_Byte, NULL);
    CHECK_OK(rsclip_image_read_rgb8(path, &rgb, &w, &h));
    REQUIRE(rgb && w == 7 && h == 5);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) ok &= rgb[3 * (y * w + x) + c] == expect_band(1, x, y);
    CHECK(ok);
    rsclip_free(rgb);

    /* 4 bands without colour interpretation: bands 1, 2, 3 */
    snprintf(path, sizeof path, "%s/four.tif", tmpdir);
    write_tiff(path, 6, 4, 4, GDT_Byte, NULL);
    CHECK_OK(rsclip_image_read_rgb8(path, &rgb, &w, &h));
    REQUIRE(rgb && w == 6 && h == 4);
    ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) ok &= rgb[3 * (y * w + x) + c] == expect_band(c + 1, x, y);
    CHECK(ok);
    rsclip_free(rgb);

    /* NIR, blue, green, red: the colour interpretation decides */
    static const GDALColorInterp nbgr[4] = {GCI_Undefined, GCI_BlueBand, GCI_GreenBand,
                                            GCI_RedBand};
    snprintf(path, sizeof path, "%s/nbgr.tif", tmpdir);
    write_tiff(path, 6, 4, 4, GDT_Byte, nbgr);
    CHECK_OK(rsclip_image_read_rgb8(path, &rgb, &w, &h));
    REQUIRE(rgb);
    ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = rgb + 3 * (y * w + x);
            ok &= p[0] == expect_band(4, x, y) && p[1] == expect_band(3, x, y) &&
                  p[2] == expect_band(2, x, y);
        }
    CHECK(ok);
    rsclip_free(rgb);
}

static void test_palette(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/palette.tif", tmpdir);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, 4, 1, 1, GDT_Byte, NULL);
    REQUIRE(ds);
    GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
    GDALColorEntry e0 = {10, 20, 30, 255}, e1 = {200, 100, 50, 255}, e2 = {1, 2, 3, 255};
    GDALSetColorEntry(ct, 0, &e0);
    GDALSetColorEntry(ct, 1, &e1);
    GDALSetColorEntry(ct, 2, &e2);
    GDALRasterBandH band = GDALGetRasterBand(ds, 1);
    GDALSetRasterColorTable(band, ct);
    GDALSetRasterColorInterpretation(band, GCI_PaletteIndex);
    uint8_t idx[4] = {1, 0, 2, 1};
    CHECK(GDALRasterIO(band, GF_Write, 0, 0, 4, 1, idx, 4, 1, GDT_Byte, 0, 0) == CE_None);
    GDALDestroyColorTable(ct);
    GDALClose(ds);

    uint8_t *rgb;
    int w, h;
    CHECK_OK(rsclip_image_read_rgb8(path, &rgb, &w, &h));
    REQUIRE(rgb && w == 4 && h == 1);
    static const uint8_t want[12] = {200, 100, 50, 10, 20, 30, 1, 2, 3, 200, 100, 50};
    CHECK(memcmp(rgb, want, sizeof want) == 0);
    rsclip_free(rgb);
}

static void expect_error(const char *path, int code, const char *needle) {
    uint8_t *rgb = (uint8_t *)1;
    int w, h;
    int rc = rsclip_image_read_rgb8(path, &rgb, &w, &h);
    CHECK(rc == code);
    CHECK(rgb == NULL);
    const char *msg = rsclip_last_error();
    CHECK(strstr(msg, path) != NULL);
    if (needle) CHECK(strstr(msg, needle) != NULL);
    CHECK(strchr(msg, '\n') == NULL);
    if (rc != code || (needle && !strstr(msg, needle)))
        fprintf(stderr, "  %s -> %d: %s\n", path, rc, msg);
}

static void test_refusals(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/u16.tif", tmpdir);
    write_tiff(path, 3, 3, 3, GDT_UInt16, NULL);
    expect_error(path, RSCLIP_ERR_UNSUPPORTED, "band type UInt16 is not 8-bit");
    CHECK(strstr(rsclip_last_error(), "rsclip index --scale") != NULL);

    snprintf(path, sizeof path, "%s/two.tif", tmpdir);
    write_tiff(path, 3, 3, 2, GDT_Byte, NULL);
    expect_error(path, RSCLIP_ERR_UNSUPPORTED, "2 bands");

    snprintf(path, sizeof path, "%s/missing.png", tmpdir);
    expect_error(path, RSCLIP_ERR_NOT_FOUND, NULL);

    snprintf(path, sizeof path, "%s/text.png", tmpdir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("not an image\n", f);
    fclose(f);
    expect_error(path, RSCLIP_ERR_GDAL, NULL);

    /* a truncated PNG: GDAL opens it, reading the pixels fails */
    char src[512];
    snprintf(src, sizeof src, "%s/siglip-tiny/img0.png", tu_fixtures());
    snprintf(path, sizeof path, "%s/truncated.png", tmpdir);
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    REQUIRE(in && out);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    expect_error(path, RSCLIP_ERR_GDAL, NULL);

    expect_error(tmpdir, RSCLIP_ERR_IO, "folder");

    uint8_t *rgb;
    int w, h;
    CHECK(rsclip_image_read_rgb8(NULL, &rgb, &w, &h) == RSCLIP_ERR_INVALID_ARG);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rsclip_test_imageio_XXXXXX");
    REQUIRE(mkdtemp(tmpdir));
    GDALAllRegister();

    char ref[512];
    snprintf(ref, sizeof ref, "%s/siglip-tiny/reference.safetensors", tu_fixtures());
    rsclip_st_file *st;
    CHECK_OK(rsclip_st_open(ref, &st));
    const rsclip_st_tensor *pv = st ? rsclip_st_find(st, "pixel_values") : NULL;
    REQUIRE(pv && pv->n_dims == 4 && pv->shape[0] == 6);
    for (int i = 0; i < 6; i++) check_fixture_png(pv, i);
    rsclip_st_close(st);

    test_band_mapping();
    test_palette();
    test_refusals();

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
    return tu_finish("test_imageio");
}
