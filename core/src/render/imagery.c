/* The imagery behind an index: its scenes reopened as they were indexed, a pool of tilers shared
 * by threads, the model's view of a tile, web map tiles and PNG encoding. */
#include "base/base.h"
#include "render/render_internal.h"
#include "gdal/gdal_util.h"
#include "json/json.h"
#include "status/status_internal.h"

#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGERY_MAX_OPEN_DEFAULT 32
/* EPSG:3857: the sphere's radius and the latitude where the square world ends. */
#define MERC_R 6378137.0
#define MERC_MAX_LAT 85.0511287798066

rsclip_imagery_params rsclip_imagery_default_params(void) {
    rsclip_imagery_params p;
    memset(&p, 0, sizeof p);
    p.max_open = IMAGERY_MAX_OPEN_DEFAULT;
    return p;
}

/* ---- scenes ---------------------------------------------------------------------------------- */

/* Overwrite the scale of *p with what the index says was applied (scaling JSON: mode, min, max),
 * so reopening needs no statistics and scales exactly as indexing did. Unknown text: keep p. */
static void recorded_scaling(const char *scaling, rsclip_tiler_params *p) {
    rsclip_json *j = NULL;
    if (!scaling || rsclip_json_parse(scaling, strlen(scaling), &j) != RSCLIP_OK) {
        rsclip_clear_error();
        return;
    }
    const char *mode = rsclip_json_get_str(j, "mode");
    const rsclip_json *mn = rsclip_json_get(j, "min"), *mx = rsclip_json_get(j, "max");
    if (mode && strcmp(mode, "none") == 0) {
        p->scale_mode = RSCLIP_TILER_SCALE_NONE;
    } else if (mode && (strcmp(mode, "range") == 0 || strcmp(mode, "percentile") == 0) && mn &&
               mx && mn->type == RSCLIP_JSON_ARRAY && mx->type == RSCLIP_JSON_ARRAY &&
               mn->len == 3 && mx->len == 3) {
        double lo[3], hi[3];
        int ok = 1;
        for (int c = 0; c < 3; c++) {
            ok = ok && mn->items[c].type == RSCLIP_JSON_NUMBER &&
                 mx->items[c].type == RSCLIP_JSON_NUMBER;
            lo[c] = ok ? mn->items[c].num : 0;
            hi[c] = ok ? mx->items[c].num : 0;
            ok = ok && isfinite(lo[c]) && isfinite(hi[c]) && hi[c] > lo[c];
        }
        /* an empty range (a constant band) is left to the tiler's own rule */
        if (ok) {
            p->scale_mode = RSCLIP_TILER_SCALE_RANGE;
            memcpy(p->scale_min, lo, sizeof lo);
            memcpy(p->scale_max, hi, sizeof hi);
        }
    }
    rsclip_json_free(j);
}

/* Tiler parameters that reopen a scene as indexed: its settings (schema 2), else the grid and
 * bands it records; then the scaling it records. */
static int scene_params(const char *index, const rsclip_scene_info *si, rsclip_tiler_params *p) {
    *p = rsclip_tiler_default_params();
    if (si->settings && si->settings[0]) {
        if (rsclip_tiler_settings_parse(si->settings, p) != RSCLIP_OK)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: scene %lld (%s): bad tiling settings: %s",
                                 index, (long long)si->id, si->path, rsclip_last_error());
    } else {
        if (si->tile_size > 0) p->tile_size = si->tile_size;
        p->stride = si->stride > 0 ? si->stride : p->tile_size;
        int b[3], k = si->bands ? sscanf(si->bands, "%d,%d,%d", &b[0], &b[1], &b[2]) : 0;
        if (k == 1 || k == 3) {
            p->n_bands = k;
            memcpy(p->bands, b, sizeof(int) * (size_t)k);
        }
    }
    recorded_scaling(si->scaling, p);
    p->min_valid = 0.0; /* a view is never skipped */
    p->allow_pixel_coords = 1;
    p->defer_stats = 1;
    return RSCLIP_OK;
}

static void merc_of(double lon, double lat, double *x, double *y) {
    lat = lat > MERC_MAX_LAT ? MERC_MAX_LAT : lat < -MERC_MAX_LAT ? -MERC_MAX_LAT : lat;
    *x = MERC_R * lon * M_PI / 180.0;
    *y = MERC_R * log(tan(M_PI / 4.0 + lat * M_PI / 360.0));
}

/* The WGS84 and Web Mercator boxes of a scene: its grid outline (8 points per edge) through PROJ.
 * A scene without CRS, or one PROJ cannot map, has none (it is never on the web map). */
static void scene_boxes(const rsclip_scene_info *si, rsclip__im_scene *sc) {
    if (si->georef != RSCLIP_GEOREF_CRS || !si->crs_wkt || !si->crs_wkt[0] || si->width < 1 ||
        si->height < 1)
        return;
    OGRSpatialReferenceH src = OSRNewSpatialReference(NULL), dst = OSRNewSpatialReference(NULL);
    OGRCoordinateTransformationH ct = NULL;
    if (OSRSetFromUserInput(src, si->crs_wkt) == OGRERR_NONE && OSRImportFromEPSG(dst, 4326) == 0) {
        OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
        OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);
        ct = OCTNewCoordinateTransformation(src, dst);
    }
    enum { D = 8, N = 4 * D };
    double xs[N], ys[N];
    int ok[N];
    const double *gt = si->geotransform, W = si->width, H = si->height;
    const double px[5] = {0, W, W, 0, 0}, py[5] = {0, 0, H, H, 0};
    for (int e = 0; e < 4; e++)
        for (int j = 0; j < D; j++) {
            double f = (double)j / D, x = px[e] + (px[e + 1] - px[e]) * f,
                   y = py[e] + (py[e + 1] - py[e]) * f;
            xs[e * D + j] = gt[0] + x * gt[1] + y * gt[2];
            ys[e * D + j] = gt[3] + x * gt[4] + y * gt[5];
        }
    if (ct && OCTTransformEx(ct, N, xs, ys, NULL, ok)) {
        double w = 1e300, s = 1e300, e = -1e300, n = -1e300;
        int good = 0;
        for (int i = 0; i < N; i++) {
            if (!ok[i] || !isfinite(xs[i]) || !isfinite(ys[i])) continue;
            w = fmin(w, xs[i]), e = fmax(e, xs[i]), s = fmin(s, ys[i]), n = fmax(n, ys[i]);
            good++;
        }
        if (good == N && w >= -181 && e <= 181 && s >= -91 && n <= 91) {
            sc->has_ll = 1;
            sc->ll[0] = w, sc->ll[1] = s, sc->ll[2] = e, sc->ll[3] = n;
            merc_of(w, s, &sc->merc[0], &sc->merc[1]);
            merc_of(e, n, &sc->merc[2], &sc->merc[3]);
        }
    }
    if (ct) OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(src);
    OSRDestroySpatialReference(dst);
}

static int load_scenes(rsclip_imagery *im) {
    rsclip_scene_info **v = NULL;
    size_t n = 0;
    int rc = rsclip_index_set_scenes(im->set, &v, &n);
    if (rc) return rc;
    im->scenes = rsclip__calloc(n ? n : 1, sizeof *im->scenes);
    if (!im->scenes) rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", im->path);
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    for (size_t i = 0; i < n && !rc; i++) {
        rsclip__im_scene *sc = &im->scenes[i];
        sc->id = v[i]->id;
        sc->path = rsclip__strdup(v[i]->path ? v[i]->path : "");
        sc->checksum = v[i]->checksum ? rsclip__strdup(v[i]->checksum) : NULL;
        im->n_scenes = i + 1;
        if (!sc->path || (v[i]->checksum && !sc->checksum)) {
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", im->path);
            break;
        }
        rc = scene_params(im->path, v[i], &sc->tp);
        if (rc) break;
        scene_boxes(v[i], sc);
        if (!sc->has_ll) continue;
        if (!im->has_extent) memcpy(im->extent, sc->ll, sizeof im->extent);
        im->extent[0] = fmin(im->extent[0], sc->ll[0]);
        im->extent[1] = fmin(im->extent[1], sc->ll[1]);
        im->extent[2] = fmax(im->extent[2], sc->ll[2]);
        im->extent[3] = fmax(im->extent[3], sc->ll[3]);
        im->has_extent = 1;
    }
    rsclip__gdal_errors_pop(&e);
    rsclip_index_set_scenes_free(v, n);
    return rc;
}

int rsclip_imagery_open(const char *index_path, const rsclip_imagery_params *params,
                        rsclip_imagery **out) {
    if (!out || !index_path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_imagery_open: no index path");
    *out = NULL;
    rsclip__gdal_init();
    rsclip_imagery *im = rsclip__calloc(1, sizeof *im);
    if (!im) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&im->mu, NULL);
    im->max_open = params && params->max_open > 0 ? params->max_open : IMAGERY_MAX_OPEN_DEFAULT;
    im->path = rsclip__strdup(index_path);
    int rc = im->path ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc) rc = rsclip_index_set_open(index_path, RSCLIP_INDEX_READONLY, &im->set);
    if (!rc) rc = load_scenes(im);
    if (rc) {
        rsclip_imagery_close(im);
        return rc;
    }
    *out = im;
    return RSCLIP_OK;
}

void rsclip_imagery_close(rsclip_imagery *im) {
    if (!im) return;
    for (rsclip__pooled *p = im->idle, *next; p; p = next) {
        next = p->next;
        rsclip_tiler_close(p->t);
        free(p);
    }
    for (size_t i = 0; i < im->n_scenes; i++) {
        free(im->scenes[i].path);
        free(im->scenes[i].checksum);
    }
    free(im->scenes);
    rsclip_index_set_close(im->set);
    pthread_mutex_destroy(&im->mu);
    free(im->path);
    free(im);
}

int rsclip_imagery_scene_count(const rsclip_imagery *im) {
    return im ? (int)im->n_scenes : 0;
}

int rsclip_imagery_extent(const rsclip_imagery *im, double box[4]) {
    if (!im || !im->has_extent) return 0;
    if (box) memcpy(box, im->extent, sizeof im->extent);
    return 1;
}

const rsclip__im_scene *rsclip__im_scene_get(rsclip_imagery *im, int64_t id) {
    size_t lo = 0, hi = im->n_scenes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (im->scenes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < im->n_scenes && im->scenes[lo].id == id) return &im->scenes[lo];
    rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no scene %lld in the index", im->path, (long long)id);
    return NULL;
}

/* ---- the pool of opened scenes --------------------------------------------------------------- */

int rsclip__im_take(rsclip_imagery *im, const rsclip__im_scene *sc, rsclip_tiler **t) {
    *t = NULL;
    pthread_mutex_lock(&im->mu);
    for (rsclip__pooled **pp = &im->idle; *pp; pp = &(*pp)->next) {
        if ((*pp)->scene_id != sc->id) continue;
        rsclip__pooled *p = *pp;
        *pp = p->next;
        im->n_idle--;
        *t = p->t;
        free(p);
        break;
    }
    pthread_mutex_unlock(&im->mu);
    if (*t) return RSCLIP_OK;
    int rc = rsclip_tiler_open(sc->path, &sc->tp, t);
    /* the index knows the tile: a file missing now is trouble, not "no such tile" */
    if (rc == RSCLIP_ERR_NOT_FOUND)
        return rsclip__error(RSCLIP_ERR_IO, "%s: the scene file is gone (indexed in %s)", sc->path,
                             im->path);
    if (rc) return rc;
    const rsclip_raster_info *ri = rsclip_tiler_scene(*t);
    if (sc->checksum && strcmp(sc->checksum, ri->fingerprint.checksum_hex) != 0 &&
        strcmp(sc->checksum, ri->fingerprint.legacy_hex) != 0)
        rsclip__log(RSCLIP_LOG_WARN,
                    "%s: the file changed since it was indexed in %s: pictures may not show what "
                    "the model saw",
                    sc->path, im->path);
    return RSCLIP_OK;
}

void rsclip__im_put(rsclip_imagery *im, int64_t scene_id, rsclip_tiler *t) {
    if (!t) return;
    rsclip__pooled *p = NULL;
    pthread_mutex_lock(&im->mu);
    if (im->n_idle < im->max_open && (p = rsclip__malloc(sizeof *p)) != NULL) {
        p->scene_id = scene_id;
        p->t = t;
        p->next = im->idle;
        im->idle = p;
        im->n_idle++;
    }
    pthread_mutex_unlock(&im->mu);
    if (!p) rsclip_tiler_close(t);
}

/* ---- the model's view ------------------------------------------------------------------------ */

/* The tile of the tiler's grid whose window is w (the last column and row are shifted back to the
 * edge, so look at the regular position and at the last one); -1 when none is. */
static int64_t grid_tile(rsclip_tiler *t, const int w[4]) {
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    int cols[2] = {si->stride > 0 ? w[0] / si->stride : 0, si->tiles_x - 1};
    int rows[2] = {si->stride > 0 ? w[1] / si->stride : 0, si->tiles_y - 1};
    rsclip_tile tile;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            if (rows[a] < 0 || rows[a] >= si->tiles_y || cols[b] < 0 || cols[b] >= si->tiles_x)
                continue;
            int64_t i = (int64_t)rows[a] * si->tiles_x + cols[b];
            if (rsclip_tiler_tile(t, i, &tile) != RSCLIP_OK) {
                rsclip_clear_error();
                continue;
            }
            if (tile.xoff == w[0] && tile.yoff == w[1] && tile.xsize == w[2] && tile.ysize == w[3])
                return i;
        }
    return -1;
}

static int view_read(rsclip_tiler *t, const int gw[4], uint8_t **rgb, int *w, int *h) {
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    if (gw[0] < 0 || gw[1] < 0 || gw[2] < 1 || gw[3] < 1 || gw[0] > si->width - gw[2] ||
        gw[1] > si->height - gw[3])
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: window %d,%d %dx%d is outside the %dx%d grid (the file changed "
                             "since it was indexed?)",
                             si->path, gw[0], gw[1], gw[2], gw[3], si->width, si->height);
    int64_t i = grid_tile(t, gw);
    size_t n = (size_t)gw[2] * (size_t)gw[3];
    if (i >= 0) {
        size_t cap = rsclip_tiler_buffer_size(t);
        uint8_t *buf = rsclip__malloc(cap);
        rsclip_tile tile;
        if (!buf) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        int rc = rsclip_tiler_read(t, i, buf, cap, &tile);
        if (rc) {
            free(buf);
            return rc;
        }
        *rgb = buf;
        *w = tile.out_width;
        *h = tile.out_height;
        return RSCLIP_OK;
    }
    /* Not a window of this grid (an index from before recorded settings): the same pixels drawn
     * 1:1 with nearest neighbour. */
    uint8_t *rgba = rsclip__malloc(n * 4);
    if (!rgba) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    double area[4] = {gw[0], gw[1], gw[2], gw[3]};
    int rc = rsclip_tiler_render(t, NULL, area, gw[2], gw[3], "near", rgba, n * 4, NULL);
    if (rc) {
        free(rgba);
        return rc;
    }
    for (size_t k = 0; k < n; k++) memmove(rgba + 3 * k, rgba + 4 * k, 3);
    *rgb = rgba;
    *w = gw[2];
    *h = gw[3];
    return RSCLIP_OK;
}

int rsclip__im_view(rsclip_imagery *im, int64_t scene_id, const int gw[4], uint8_t **rgb, int *w,
                    int *h) {
    *rgb = NULL;
    *w = *h = 0;
    const rsclip__im_scene *sc = rsclip__im_scene_get(im, scene_id);
    if (!sc) return rsclip_last_status();
    rsclip_tiler *t = NULL;
    int rc = rsclip__im_take(im, sc, &t);
    if (rc) return rc;
    rc = view_read(t, gw, rgb, w, h);
    if (rc) {
        rsclip_tiler_close(t);
        return rc;
    }
    rsclip__im_put(im, scene_id, t);
    return RSCLIP_OK;
}

int rsclip_imagery_hit_rgb(rsclip_imagery *im, const rsclip_hit *hit, uint8_t **rgb, int *w,
                           int *h) {
    if (!im || !hit || !rgb || !w || !h)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_imagery_hit_rgb: NULL argument");
    return rsclip__im_view(im, hit->scene_id, hit->grid_window, rgb, w, h);
}

int rsclip_imagery_tile_rgb(rsclip_imagery *im, int64_t tile_id, uint8_t **rgb, int *w, int *h) {
    if (!im || !rgb || !w || !h)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_imagery_tile_rgb: NULL argument");
    *rgb = NULL;
    rsclip_tile_info *ti = NULL;
    int rc = RSCLIP_ERR_NOT_FOUND;
    pthread_mutex_lock(&im->mu);
    for (int p = 0; p < rsclip_index_set_count(im->set) && rc == RSCLIP_ERR_NOT_FOUND; p++)
        rc = rsclip_index_get_tile(rsclip_index_set_part(im->set, p), tile_id, &ti);
    pthread_mutex_unlock(&im->mu);
    if (rc == RSCLIP_ERR_NOT_FOUND)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no tile %lld in the index", im->path,
                             (long long)tile_id);
    if (rc) return rc;
    int gw[4] = {ti->window.xoff, ti->window.yoff, ti->window.xsize, ti->window.ysize};
    int64_t scene = ti->scene_id;
    rsclip_free(ti);
    return rsclip__im_view(im, scene, gw, rgb, w, h);
}

/* ---- web map tiles --------------------------------------------------------------------------- */

/* Draw one scene into the tile (src over: its valid pixels replace what is there). */
static int xyz_scene(rsclip_imagery *im, rsclip__im_scene *sc, const double box[4], int size,
                     uint8_t *rgba, uint8_t *tmp) {
    rsclip_tiler *t = NULL;
    int rc = rsclip__im_take(im, sc, &t);
    int64_t k = 0;
    size_t n = (size_t)size * (size_t)size;
    if (!rc) rc = rsclip_tiler_render(t, "EPSG:3857", box, size, size, NULL, tmp, n * 4, &k);
    if (rc) {
        rsclip_tiler_close(t);
        pthread_mutex_lock(&im->mu);
        int first = !sc->warned;
        sc->warned = 1;
        pthread_mutex_unlock(&im->mu);
        if (first)
            rsclip__log(RSCLIP_LOG_WARN, "%s: scene %lld left off the map: %s", im->path,
                        (long long)sc->id, rsclip_last_error());
        rsclip_clear_error();
        return 0;
    }
    rsclip__im_put(im, sc->id, t);
    for (size_t i = 0; i < n && k > 0; i++)
        if (tmp[4 * i + 3]) memcpy(rgba + 4 * i, tmp + 4 * i, 4);
    return k > 0;
}

int rsclip_imagery_xyz(rsclip_imagery *im, int z, int x, int y, int size, uint8_t *rgba,
                       size_t rgba_size, int *n_drawn) {
    if (n_drawn) *n_drawn = 0;
    if (!im || !rgba) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_imagery_xyz: NULL");
    if (z < 0 || z > RSCLIP_XYZ_MAX_ZOOM)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tile zoom %d out of range 0..%d", z,
                             RSCLIP_XYZ_MAX_ZOOM);
    int64_t side = (int64_t)1 << z;
    if (x < 0 || y < 0 || x >= side || y >= side)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tile %d/%d/%d does not exist (0..%lld)", z, x,
                             y, (long long)side - 1);
    if (size < 1 || size > 1024)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tile size %d out of range 1..1024", size);
    size_t n = (size_t)size * (size_t)size;
    if (rgba_size < n * 4)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tile buffer of %zu bytes, %zu needed",
                             rgba_size, n * 4);
    memset(rgba, 0, n * 4);
    const double half = M_PI * MERC_R, res = 2.0 * half / (double)side;
    double box[4] = {-half + x * res, half - (y + 1) * res, -half + (x + 1) * res, half - y * res};
    uint8_t *tmp = NULL;
    int drawn = 0;
    for (size_t i = 0; i < im->n_scenes; i++) {
        rsclip__im_scene *sc = &im->scenes[i];
        if (!sc->has_ll || sc->merc[0] >= box[2] || sc->merc[2] <= box[0] ||
            sc->merc[1] >= box[3] || sc->merc[3] <= box[1])
            continue;
        if (!tmp && !(tmp = rsclip__malloc(n * 4)))
            return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        drawn += xyz_scene(im, sc, box, size, rgba, tmp);
    }
    free(tmp);
    if (n_drawn) *n_drawn = drawn;
    return RSCLIP_OK;
}

/* ---- PNG ------------------------------------------------------------------------------------- */

/* Through GDAL's PNG driver at zlib level 1: five times faster than the default level for about
 * 10 % more bytes, which is the right trade for pictures made on request (map tiles, chips). */
int rsclip_png_encode(const uint8_t *px, int w, int h, int channels, uint8_t **png, size_t *n) {
    if (!px || !png || !n || (channels != 3 && channels != 4))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_png_encode: bad arguments");
    *png = NULL;
    *n = 0;
    if (w < 1 || h < 1 || w > 32767 || h > 32767)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "PNG of %d x %d pixels (1..32767)", w, h);
    rsclip__gdal_init();
    size_t npx = (size_t)w * (size_t)h;
    int bands = channels;
    if (channels == 4) { /* opaque: RGB is enough */
        bands = 3;
        for (size_t i = 0; i < npx && bands == 3; i++)
            if (px[4 * i + 3] != 255) bands = 4;
    }
    static atomic_uint_fast64_t seq;
    char name[64];
    snprintf(name, sizeof name, "/vsimem/rsclip_png_%llu.png",
             (unsigned long long)atomic_fetch_add(&seq, 1));
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    GDALDriverH mem = GDALGetDriverByName("MEM"), pngd = GDALGetDriverByName("PNG");
    GDALDatasetH ds = mem ? GDALCreate(mem, "", w, h, bands, GDT_Byte, NULL) : NULL;
    int rc =
        ds && pngd ? RSCLIP_OK : rsclip__gdal_error(&e, RSCLIP_ERR_GDAL, "cannot encode a PNG");
    if (!rc && GDALDatasetRasterIO(ds, GF_Write, 0, 0, w, h, (void *)px, w, h, GDT_Byte, bands,
                                   NULL, channels, (GSpacing)channels * w, 1) != CE_None)
        rc = rsclip__gdal_error(&e, RSCLIP_ERR_GDAL, "cannot encode a PNG");
    char **opt = CSLSetNameValue(NULL, "ZLEVEL", "1");
    GDALDatasetH out = rc ? NULL : GDALCreateCopy(pngd, name, ds, FALSE, opt, NULL, NULL);
    CSLDestroy(opt);
    if (!rc && !out) rc = rsclip__gdal_error(&e, RSCLIP_ERR_GDAL, "cannot encode a PNG");
    if (out) GDALClose(out);
    if (ds) GDALClose(ds);
    vsi_l_offset len = 0;
    GByte *buf = rc ? NULL : VSIGetMemFileBuffer(name, &len, FALSE);
    if (!rc && (!buf || !(*png = rsclip__malloc((size_t)len))))
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory for a PNG");
    if (!rc) {
        memcpy(*png, buf, (size_t)len);
        *n = (size_t)len;
    }
    VSIUnlink(name);
    rsclip__gdal_errors_pop(&e);
    return rc;
}
