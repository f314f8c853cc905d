/* Bounded memory on a 20000 x 20000 VRT mosaic (the Landsat COG sample repeated 21 x 27 times):
 * open (statistics from a decimated read) and read a few hundred tiles spread over the whole
 * mosaic; the resident set must stay bounded (GDAL's block cache limited to 32 MiB), far below
 * the 800 MB a whole-scene read of the UInt16 band would need. */
#include "rsclip/tiler.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <unistd.h>

static long rss_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = atol(line + n);
    fclose(f);
    return v;
}

int main(void) {
    const char *src = getenv("RSCLIP_SOURCE_DIR");
    char sample[2048], dir[] = "/tmp/rsclip_tiler_mem_XXXXXX", vrt[512];
    snprintf(sample, sizeof sample, "%s/samples/l8_b7_memphis_30m_epsg32615.tif", src ? src : ".");
    REQUIRE(mkdtemp(dir));
    snprintf(vrt, sizeof vrt, "%s/mosaic.vrt", dir);
    FILE *f = fopen(vrt, "w");
    REQUIRE(f);
    const int W = 20000, H = 20000, sw = 963, sh = 754;
    fprintf(f,
            "<VRTDataset rasterXSize=\"%d\" rasterYSize=\"%d\">\n"
            "  <SRS>EPSG:32615</SRS><GeoTransform>752325,30,0,3895305,0,-30</GeoTransform>\n"
            "  <VRTRasterBand dataType=\"UInt16\" band=\"1\"><NoDataValue>0</NoDataValue>\n",
            W, H);
    for (int y = 0; y < H; y += sh)
        for (int x = 0; x < W; x += sw)
            fprintf(
                f,
                "    <SimpleSource><SourceFilename>%s</SourceFilename><SourceBand>1</SourceBand>"
                "<SrcRect xOff=\"0\" yOff=\"0\" xSize=\"%d\" ySize=\"%d\"/>"
                "<DstRect xOff=\"%d\" yOff=\"%d\" xSize=\"%d\" ySize=\"%d\"/></SimpleSource>\n",
                sample, sw, sh, x, y, sw, sh);
    fprintf(f, "  </VRTRasterBand>\n</VRTDataset>\n");
    fclose(f);

    rsclip_tiler_set_cache_max(32 << 20);
    long rss0 = rss_kib("VmRSS:");
    rsclip_tiler *t;
    CHECK_OK(rsclip_tiler_open(vrt, NULL, &t));
    if (t) {
        const rsclip_raster_info *si = rsclip_tiler_scene(t);
        CHECK(si->width == W && si->height == H && si->n_tiles == 79 * 79);
        CHECK(si->scale_mode == RSCLIP_TILER_SCALE_PERCENTILE);
        CHECK(si->scale_max[0] > si->scale_min[0] && si->scale_min[0] > 0);
        size_t bs = rsclip_tiler_buffer_size(t);
        uint8_t *rgb = (uint8_t *)malloc(bs);
        rsclip_tile tile;
        long rss_warm = 0, peak = 0;
        int n_read = 0;
        /* 300 tiles spread over the mosaic (a stride coprime with the grid width). */
        for (int64_t k = 0; k < 300; k++) {
            int64_t i = (k * 4099) % si->n_tiles;
            int rc = rsclip_tiler_read(t, i, rgb, bs, &tile);
            CHECK_OK(rc);
            if (rc) break;
            n_read += !tile.skipped;
            if (k == 20) rss_warm = rss_kib("VmRSS:");
            long r = rss_kib("VmRSS:");
            if (r > peak) peak = r;
        }
        printf("RSS: before open %ld KiB, after 20 tiles %ld KiB, peak %ld KiB; %d tiles read\n",
               rss0, rss_warm, peak, n_read);
        CHECK(n_read > 250);
        /* Cache 32 MiB + statistics (freed) + dataset pool: growth far below a whole-scene
         * read (20000^2 * 2 bytes = 800 MB). */
        CHECK(peak - rss0 < 200 * 1024);
        CHECK(peak - rss_warm < 64 * 1024);
        free(rgb);
        rsclip_tiler_close(t);
    }
    unlink(vrt);
    rmdir(dir);
    return tu_finish("test_tiler_memory");
}
