/*
 * plugin_ref -- the plugin tests' stand-in for `rsclip index` / `rsclip search`: builds an index
 * of the sample scenes with the model (index.h + model.h) and writes reference hits/regions
 * through the public C API (query.h, export.h), independently of the plugin's OGR layer code.
 *
 *   plugin_ref index INDEX MODEL SCENE...
 *   plugin_ref search INDEX TEXT K OUT.geojson [REGIONS.geojson] [w s e n]
 *   plugin_ref probs INDEX TEXT SCENE_ID        (prints "tile_id prob" lines)
 */
#include "rsclip/rsclip.h"
#include "rsclip/query.h"

#include <gdal.h>
#include <ogr_srs_api.h>

#include <inttypes.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "plugin_ref: %s: %s\n", what, rsclip_last_error());
    return 1;
}

/* A small indexer of its own (stand-in for `rsclip index`): the tiler's grid (tile = stride =
 * the model's image size, the last column/row shifted back to end at the raster edge), bands
 * 1,2,3 (or 1 replicated), non-Byte data scaled by the band's min/max, every tile kept, footprint
 * = the four window corners in WGS84. Enough for the plugin's tests, which compare the plugin
 * with what the index holds, not with the tiler. */
static int grid_count(int extent, int tile) {
    return extent <= tile ? 1 : (extent - tile + tile - 1) / tile + 1;
}

static int index_scene(rsclip_index *idx, const rsclip_model *m, rsclip_encoder *enc,
                       const char *path) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int T = mi->image_size, dim = mi->embed_dim;
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "plugin_ref: cannot open %s\n", path);
        return 1;
    }
    const int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
    const int nb = GDALGetRasterCount(ds) >= 3 ? 3 : 1;
    double gt[6];
    GDALGetGeoTransform(ds, gt);
    double lo[3], hi[3];
    for (int b = 0; b < nb; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        double mm[2] = {0, 255};
        if (GDALGetRasterDataType(band) != GDT_Byte) GDALComputeRasterMinMax(band, FALSE, mm);
        lo[b] = mm[0];
        hi[b] = mm[1] > mm[0] ? mm[1] : mm[0] + 1;
    }
    OGRSpatialReferenceH srs = OSRNewSpatialReference(GDALGetProjectionRef(ds));
    OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
    OSRSetWellKnownGeogCS(wgs, "WGS84");
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(srs, wgs);

    const int nx = grid_count(W, T), ny = grid_count(H, T);
    const size_t n = (size_t)nx * (size_t)ny;
    rsclip_tile_record *recs = calloc(n, sizeof *recs);
    double *rings = calloc(n * 10, sizeof *rings);
    float *vecs = calloc(n * (size_t)dim, sizeof *vecs);
    float *win = malloc(sizeof(float) * (size_t)T * (size_t)T);
    uint8_t *rgb = malloc((size_t)T * (size_t)T * 3);
    float *pixels = malloc(sizeof(float) * 3 * (size_t)T * (size_t)T);
    int rc = (recs && rings && vecs && win && rgb && pixels && ct) ? 0 : 1;
    for (int r = 0; r < ny && !rc; r++) {
        for (int c = 0; c < nx && !rc; c++) {
            size_t i = (size_t)r * (size_t)nx + (size_t)c;
            rsclip_tile_record *t = &recs[i];
            t->window.xsize = W < T ? W : T;
            t->window.ysize = H < T ? H : T;
            t->window.xoff = c * T + t->window.xsize > W ? W - t->window.xsize : c * T;
            t->window.yoff = r * T + t->window.ysize > H ? H - t->window.ysize : r * T;
            const int xs = t->window.xsize, ys = t->window.ysize;
            for (int b = 0; b < 3 && !rc; b++) {
                if (b < nb &&
                    GDALRasterIO(GDALGetRasterBand(ds, b + 1), GF_Read, t->window.xoff,
                                 t->window.yoff, xs, ys, win, xs, ys, GDT_Float32, 0, 0) != CE_None)
                    rc = 1;
                const int sb = b < nb ? b : 0;
                for (int k = 0; k < xs * ys; k++) {
                    double v = ((double)win[k] - lo[sb]) / (hi[sb] - lo[sb]) * 255.0;
                    rgb[(size_t)k * 3 + (size_t)b] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
                }
            }
            if (!rc) rc = rsclip_preprocess_rgb8(m, rgb, xs, ys, (size_t)xs * 3, pixels);
            if (!rc) rc = rsclip_encode_images(enc, 1, pixels, vecs + i * (size_t)dim, NULL);
            /* corners UL, UR, LR, LL in the scene CRS; ring UL, LL, LR, UR, UL in lon/lat */
            const double px[4] = {t->window.xoff, t->window.xoff + xs, t->window.xoff + xs,
                                  t->window.xoff};
            const double py[4] = {t->window.yoff, t->window.yoff, t->window.yoff + ys,
                                  t->window.yoff + ys};
            double X[5], Y[5];
            for (int k = 0; k < 4; k++) {
                X[k] = gt[0] + px[k] * gt[1] + py[k] * gt[2];
                Y[k] = gt[3] + px[k] * gt[4] + py[k] * gt[5];
                t->corners[2 * k] = X[k];
                t->corners[2 * k + 1] = Y[k];
            }
            X[4] =
                gt[0] + (t->window.xoff + xs / 2.0) * gt[1] + (t->window.yoff + ys / 2.0) * gt[2];
            Y[4] =
                gt[3] + (t->window.xoff + xs / 2.0) * gt[4] + (t->window.yoff + ys / 2.0) * gt[5];
            if (!rc && !OCTTransform(ct, 5, X, Y, NULL)) rc = 1;
            const int order[5] = {0, 3, 2, 1, 0};
            double *ring = rings + i * 10;
            for (int k = 0; k < 5; k++) {
                ring[2 * k] = X[order[k]];
                ring[2 * k + 1] = Y[order[k]];
            }
            t->footprint = ring;
            t->n_footprint = 5;
            t->lon = X[4];
            t->lat = Y[4];
            t->valid_fraction = 1.0;
        }
    }
    struct stat st;
    rsclip_scene_info si;
    memset(&si, 0, sizeof si);
    si.path = path;
    if (stat(path, &st) == 0) {
        si.file_size = (int64_t)st.st_size;
        si.mtime_ns = (int64_t)st.st_mtime * 1000000000;
    }
    si.crs_wkt = GDALGetProjectionRef(ds);
    memcpy(si.geotransform, gt, sizeof gt);
    si.width = W;
    si.height = H;
    si.bands = nb == 3 ? "1,2,3" : "1";
    si.tiles_planned = (int64_t)n;
    int64_t sid = 0;
    int state = 0;
    if (!rc) rc = rsclip_index_begin_scene(idx, &si, 0, &sid, &state);
    if (!rc) rc = rsclip_index_add_tiles(idx, sid, n, recs, vecs, NULL);
    if (!rc) rc = rsclip_index_complete_scene(idx, sid, 0);
    if (rc) fprintf(stderr, "plugin_ref: %s: %s\n", path, rsclip_last_error());
    free(recs);
    free(rings);
    free(vecs);
    free(win);
    free(rgb);
    free(pixels);
    OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(srs);
    OSRDestroySpatialReference(wgs);
    GDALClose(ds);
    return rc ? 1 : 0;
}

static int cmd_index(int argc, char **argv) {
    GDALAllRegister();
    rsclip_model *m = NULL;
    rsclip_encoder *enc = NULL;
    rsclip_index *idx = NULL;
    if (rsclip_model_load(argv[3], NULL, &m) != RSCLIP_OK) return fail("model");
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    /* Recorded as given (a folder path), so that a session finds the model again. */
    int rc = rsclip_model_set_name(m, argv[3]);
    if (!rc) rc = rsclip_encoder_new(m, NULL, &enc);
    if (!rc) rc = rsclip_index_open(argv[2], RSCLIP_INDEX_CREATE, &idx);
    if (!rc) rc = rsclip_index_bind_model(idx, mi->name, mi->fingerprint, mi->embed_dim, NULL);
    char v[64];
    snprintf(v, sizeof v, "%.9g", (double)mi->logit_scale);
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_scale", v);
    snprintf(v, sizeof v, "%.9g", (double)mi->logit_bias);
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_bias", v);
    if (rc) fail("index");
    for (int i = 4; i < argc && !rc; i++) rc = index_scene(idx, m, enc, argv[i]);
    rsclip_index_close(idx);
    rsclip_encoder_free(enc);
    rsclip_model_free(m);
    return rc ? 1 : 0;
}

static int cmd_search(int argc, char **argv) {
    rsclip_session *s;
    if (rsclip_session_open(argv[2], NULL, &s) != RSCLIP_OK) return fail("open");
    rsclip_query q = rsclip_query_default();
    q.text = argv[3];
    q.k = atoi(argv[4]);
    int ai = 6;
    const char *regions_path = NULL;
    if (argc == 7 || argc == 11) regions_path = argv[ai++];
    if (argc - ai == 4) {
        q.has_bbox = 1;
        for (int i = 0; i < 4; i++) q.bbox[i] = atof(argv[ai + i]);
    }
    rsclip_results *r = NULL;
    int rc = rsclip_session_search(s, &q, &r);
    if (rc == RSCLIP_OK) {
        rsclip_export_params ep = rsclip_export_default_params();
        ep.format = "GeoJSON";
        rc = rsclip_export_hits(argv[5], &ep, r->hits, r->n);
    }
    if (rc == RSCLIP_OK && regions_path) {
        rsclip_region *reg = NULL;
        int n_reg = 0;
        rc = rsclip_regions_merge(r->hits, r->n, &reg, &n_reg);
        if (rc == RSCLIP_OK) {
            rsclip_export_params ep = rsclip_export_default_params();
            ep.format = "GeoJSON";
            rc = rsclip_export_regions(regions_path, &ep, reg, n_reg);
        }
        rsclip_regions_free(reg, n_reg);
    }
    rsclip_results_free(r);
    rsclip_session_close(s);
    return rc == RSCLIP_OK ? 0 : fail("search");
}

static int cmd_probs(char **argv) {
    rsclip_session *s;
    if (rsclip_session_open(argv[2], NULL, &s) != RSCLIP_OK) return fail("open");
    rsclip_query q = rsclip_query_default();
    q.text = argv[3];
    int64_t *ids = NULL;
    float *probs = NULL;
    size_t n = 0;
    int rc = rsclip_session_scene_probs(s, &q, strtoll(argv[4], NULL, 10), &ids, &probs, &n);
    for (size_t i = 0; rc == RSCLIP_OK && i < n; i++)
        printf("%" PRId64 " %.9g\n", ids[i], probs[i]);
    rsclip_free(ids);
    rsclip_free(probs);
    rsclip_session_close(s);
    return rc == RSCLIP_OK ? 0 : fail("probs");
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[1], "index") == 0) return cmd_index(argc, argv);
    if ((argc == 6 || argc == 7 || argc == 10 || argc == 11) && strcmp(argv[1], "search") == 0)
        return cmd_search(argc, argv);
    if (argc == 5 && strcmp(argv[1], "probs") == 0) return cmd_probs(argv);
    fprintf(stderr, "usage: plugin_ref index INDEX MODEL SCENE... | search INDEX TEXT K OUT "
                    "[REGIONS] [w s e n] | probs INDEX TEXT SCENE_ID\n");
    return 2;
}
