/* Hit chips: each hit's window cut from its raster (GeoTIFF), the model's view of it (PNG) and
 * chips.geojson, written through a temporary folder; regions the same at their extent. */
#include "base/base.h"
#include "render/render_internal.h"
#include "rsclip/export.h"
#include "export/output_internal.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Longest side of a region's view in chips (pixels). */
#define REGION_VIEW_MAX 2048

const rsclip_hit *rsclip__hit_find(const rsclip_hit *hits, int n, int64_t tile_id) {
    for (int i = 0; i < n; i++)
        if (hits[i].tile_id == tile_id) return &hits[i];
    return NULL;
}

rsclip_chips_params rsclip_chips_default_params(void) {
    rsclip_chips_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* ---- a region's window ----------------------------------------------------------------------- */

/* Grow box (min x, min y, max x, max y, in pixels) by every vertex of g through inv (the inverse
 * geotransform). */
static void vertices_box(OGRGeometryH g, const double inv[6], double box[4]) {
    int ng = OGR_G_GetGeometryCount(g);
    for (int i = 0; i < ng; i++) vertices_box(OGR_G_GetGeometryRef(g, i), inv, box);
    int np = ng ? 0 : OGR_G_GetPointCount(g);
    for (int i = 0; i < np; i++) {
        double x = OGR_G_GetX(g, i), y = OGR_G_GetY(g, i);
        double px = inv[0] + x * inv[1] + y * inv[2], py = inv[3] + x * inv[4] + y * inv[5];
        box[0] = fmin(box[0], px), box[1] = fmin(box[1], py);
        box[2] = fmax(box[2], px), box[3] = fmax(box[3], py);
    }
}

/* The region's polygon in the scene's source pixels: box clipped to the raster. */
static int region_box(const rsclip_raster_info *si, const rsclip_region *r, double box[4]) {
    OGRGeometryH g = NULL;
    char *w = r->wkt;
    if (!w || OGR_G_CreateFromWkt(&w, NULL, &g) != OGRERR_NONE || !g)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "region %d: its polygon is not WKT", r->id);
    OGRSpatialReferenceH ll = OSRNewSpatialReference(NULL), s = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(ll, 4326);
    OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
    int rc = OSRSetFromUserInput(s, si->crs_wkt) == OGRERR_NONE
                 ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: no CRS to place region %d in",
                                 si->path, r->id);
    OGRCoordinateTransformationH ct = NULL;
    if (!rc) {
        OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
        ct = OCTNewCoordinateTransformation(ll, s);
        if (!ct || OGR_G_Transform(g, ct) != OGRERR_NONE)
            rc = rsclip__error(RSCLIP_ERR_GDAL, "%s: cannot bring region %d into its CRS", si->path,
                               r->id);
    }
    double inv[6];
    if (!rc && !GDALInvGeoTransform((double *)si->src_geotransform, inv))
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: geotransform cannot be inverted", si->path);
    if (!rc) {
        box[0] = box[1] = INFINITY;
        box[2] = box[3] = -INFINITY;
        vertices_box(g, inv, box);
        box[0] = fmax(box[0], 0.0), box[1] = fmax(box[1], 0.0);
        box[2] = fmin(box[2], (double)si->src_width), box[3] = fmin(box[3], (double)si->src_height);
        if (!(box[2] > box[0] && box[3] > box[1]))
            rc = rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: region %d lies outside the scene",
                               si->path, r->id);
    }
    if (ct) OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(ll);
    OSRDestroySpatialReference(s);
    OGR_G_DestroyGeometry(g);
    return rc;
}

int rsclip__im_region(rsclip_imagery *im, const rsclip_region *r, const rsclip_hit *best,
                      int max_side, double src_window[4], uint8_t **rgba, int *w, int *h) {
    if (rgba) *rgba = NULL;
    const rsclip__im_scene *sc = rsclip__im_scene_get(im, best->scene_id);
    if (!sc) return rsclip_last_status();
    rsclip_tiler *t = NULL;
    int rc = rsclip__im_take(im, sc, &t);
    if (rc) return rc;
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    double box[4];
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    rc = region_box(si, r, box);
    rsclip__gdal_errors_pop(&e);
    if (!rc) {
        src_window[0] = box[0], src_window[1] = box[1];
        src_window[2] = box[2] - box[0], src_window[3] = box[3] - box[1];
    }
    if (!rc && rgba) {
        double fx = (double)si->width / si->src_width, fy = (double)si->height / si->src_height;
        double area[4] = {src_window[0] * fx, src_window[1] * fy, src_window[2] * fx,
                          src_window[3] * fy};
        double scale = fmin(1.0, max_side / fmax(area[2], area[3]));
        *w = (int)fmax(1.0, floor(area[2] * scale + 0.5));
        *h = (int)fmax(1.0, floor(area[3] * scale + 0.5));
        size_t n = (size_t)*w * (size_t)*h * 4;
        *rgba = rsclip__malloc(n);
        if (!*rgba) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        if (!rc)
            rc = rsclip_tiler_render(t, NULL, area, *w, *h, scale < 1.0 ? "average" : "near", *rgba,
                                     n, NULL);
        if (rc) {
            free(*rgba);
            *rgba = NULL;
        }
    }
    if (rc && rc != RSCLIP_ERR_INVALID_ARG) {
        rsclip_tiler_close(t);
        return rc;
    }
    rsclip__im_put(im, sc->id, t);
    return rc;
}

/* ---- files ----------------------------------------------------------------------------------- */

static int write_bytes(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(p, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    return ok ? RSCLIP_OK
              : rsclip__error(RSCLIP_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
}

static int write_png(const char *path, const uint8_t *px, int w, int h, int channels) {
    uint8_t *png = NULL;
    size_t n = 0;
    int rc = rsclip_png_encode(px, w, h, channels, &png, &n);
    if (!rc) rc = write_bytes(path, png, n);
    free(png);
    return rc;
}

/* "rank_007_tile_42" for i of n with ranks up to max_rank. */
static void chip_name(char *buf, size_t cap, const char *kind, int number, int max_number,
                      int64_t tile) {
    int digits = 3;
    for (int m = max_number; m >= 1000; m /= 10) digits++;
    snprintf(buf, cap, "%s_%0*d_tile_%lld", kind, digits, number, (long long)tile);
}

/* chips.geojson: one feature per chip. */
typedef struct index_writer {
    GDALDatasetH ds;
    OGRLayerH layer;
    OGRSpatialReferenceH ll;
    char path[PATH_MAX];
} index_writer;

static int index_open(index_writer *x, const char *tmp, int regions) {
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s/chips.geojson", tmp);
    GDALDriverH drv = GDALGetDriverByName("GeoJSON");
    x->ds = drv ? GDALCreate(drv, x->path, 0, 0, 0, GDT_Unknown, NULL) : NULL;
    x->ll = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(x->ll, 4326);
    OSRSetAxisMappingStrategy(x->ll, OAMS_TRADITIONAL_GIS_ORDER);
    x->layer = x->ds ? GDALDatasetCreateLayer(x->ds, "chips", x->ll, wkbUnknown, NULL) : NULL;
    if (!x->layer) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create", x->path);
    static const struct {
        const char *name;
        OGRFieldType type;
    } hit_fields[] = {{"rank", OFTInteger}, {"tile_id", OFTInteger64}, {"score", OFTReal},
                      {"prob", OFTReal},    {"lon", OFTReal},          {"lat", OFTReal},
                      {"scene", OFTString}, {"chip", OFTString},       {"view", OFTString}},
      region_fields[] = {{"region", OFTInteger}, {"tiles", OFTInteger},       {"max_prob", OFTReal},
                         {"mean_prob", OFTReal}, {"area_m2", OFTReal},        {"lon", OFTReal},
                         {"lat", OFTReal},       {"best_tile", OFTInteger64}, {"scene", OFTString},
                         {"chip", OFTString},    {"view", OFTString}};
    int n = regions ? (int)(sizeof region_fields / sizeof region_fields[0])
                    : (int)(sizeof hit_fields / sizeof hit_fields[0]);
    for (int i = 0; i < n; i++) {
        OGRFieldDefnH fd = OGR_Fld_Create(regions ? region_fields[i].name : hit_fields[i].name,
                                          regions ? region_fields[i].type : hit_fields[i].type);
        OGRErr oe = OGR_L_CreateField(x->layer, fd, TRUE);
        OGR_Fld_Destroy(fd);
        if (oe != OGRERR_NONE) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write", x->path);
    }
    return RSCLIP_OK;
}

static int index_close(index_writer *x, int rc, rsclip__gdal_errors *e) {
    int before = e->n_failures;
    if (x->ds) GDALClose(x->ds);
    if (x->ll) OSRDestroySpatialReference(x->ll);
    if (!rc && e->n_failures > before)
        rc = rsclip__gdal_error(e, RSCLIP_ERR_IO, "%s: cannot finish writing", x->path);
    return rc;
}

static int index_add(index_writer *x, OGRFeatureH f, OGRGeometryH g) {
    if (g) {
        OGR_G_AssignSpatialReference(g, x->ll);
        OGR_F_SetGeometryDirectly(f, g);
    }
    int rc = OGR_L_CreateFeature(x->layer, f) == OGRERR_NONE
                 ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_IO, "%s: cannot write a feature", x->path);
    OGR_F_Destroy(f);
    return rc;
}

static OGRGeometryH ring_polygon(const double *ring, int n) {
    return ring && n >= 4 ? rsclip__ring_polygon(ring, n) : NULL;
}

static void set_str(OGRFeatureH f, const char *name, const char *v) {
    OGR_F_SetFieldString(f, OGR_F_GetFieldIndex(f, name), v);
}

/* ---- one chip -------------------------------------------------------------------------------- */

static int hit_chip(rsclip_imagery *im, const rsclip_hit *h, const char *tmp, const char *name,
                    index_writer *x) {
    char path[PATH_MAX];
    const rsclip__im_scene *sc = rsclip__im_scene_get(im, h->scene_id);
    if (!sc) return rsclip_last_status();
    rsclip_tiler *t = NULL;
    int rc = rsclip__im_take(im, sc, &t);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/%s.tif", tmp, name);
    rc = rsclip_tiler_save_window(t, h->src_window, path, "GTiff");
    uint8_t *rgb = NULL;
    int w = 0, hh = 0;
    if (!rc)
        rsclip__im_put(im, sc->id, t);
    else
        rsclip_tiler_close(t);
    if (!rc) rc = rsclip__im_view(im, h->scene_id, h->grid_window, &rgb, &w, &hh);
    snprintf(path, sizeof path, "%s/%s.png", tmp, name);
    if (!rc) rc = write_png(path, rgb, w, hh, 3);
    free(rgb);
    if (rc) return rc;
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(x->layer));
    char file[PATH_MAX];
    rsclip_export_set_hit(f, h); /* the fields of an export's, where chips.geojson has them */
    set_str(f, "scene", h->scene ? h->scene : sc->path);
    snprintf(file, sizeof file, "%s.tif", name);
    set_str(f, "chip", file);
    snprintf(file, sizeof file, "%s.png", name);
    set_str(f, "view", file);
    return index_add(x, f, h->has_lonlat ? ring_polygon(h->footprint, h->n_footprint) : NULL);
}

static int region_chip(rsclip_imagery *im, const rsclip_region *r, const rsclip_hit *best,
                       const char *tmp, const char *name, index_writer *x) {
    double win[4];
    uint8_t *rgba = NULL;
    int w = 0, h = 0;
    int rc = rsclip__im_region(im, r, best, REGION_VIEW_MAX, win, &rgba, &w, &h);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.png", tmp, name);
    if (!rc) rc = write_png(path, rgba, w, h, 4);
    free(rgba);
    const rsclip__im_scene *sc = rc ? NULL : rsclip__im_scene_get(im, best->scene_id);
    rsclip_tiler *t = NULL;
    if (!rc) rc = sc ? rsclip__im_take(im, sc, &t) : rsclip_last_status();
    snprintf(path, sizeof path, "%s/%s.tif", tmp, name);
    if (!rc) rc = rsclip_tiler_save_window(t, win, path, "GTiff");
    if (t) rsclip__im_put(im, sc->id, t);
    if (rc) return rc;
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(x->layer));
    char file[PATH_MAX];
    rsclip_export_set_region(f, r);
    set_str(f, "scene", sc->path);
    snprintf(file, sizeof file, "%s.tif", name);
    set_str(f, "chip", file);
    snprintf(file, sizeof file, "%s.png", name);
    set_str(f, "view", file);
    OGRGeometryH g = NULL;
    char *wkt = r->wkt;
    if (wkt && OGR_G_CreateFromWkt(&wkt, NULL, &g) != OGRERR_NONE) g = NULL;
    return index_add(x, f, g);
}

/* ---- the folder ------------------------------------------------------------------------------ */

/* A file an earlier chips run wrote: rank_N_tile_T.tif/.png, region_..., chips.geojson. */
static int is_chip_file(const char *name) {
    char kind[8], ext[8];
    int num;
    long long tile;
    if (strcmp(name, "chips.geojson") == 0) return 1;
    if (sscanf(name, "%7[a-z]_%d_tile_%lld.%7s", kind, &num, &tile, ext) != 4) return 0;
    return (strcmp(kind, "rank") == 0 || strcmp(kind, "region") == 0) &&
           (strcmp(ext, "tif") == 0 || strcmp(ext, "png") == 0);
}

/* The files an earlier chips run left in dir (with overwrite they go, unless this run writes the
 * same names): a NULL-terminated list of paths (free each, then the list), NULL when none. */
static char **earlier_chips(const char *dir) {
    DIR *d = opendir(dir);
    char **v = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (!is_chip_file(e->d_name)) continue;
        if (n + 2 > cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = rsclip__realloc(v, cap * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if ((v[n] = rsclip__malloc(len)) != NULL) snprintf(v[n++], len, "%s/%s", dir, e->d_name);
        v[n] = NULL;
    }
    if (d) closedir(d);
    return v;
}

static void free_list(char **v) {
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

typedef struct chips_job {
    rsclip_imagery *im;
    const rsclip_hit *hits;
    int n_hits;
    const rsclip_region *regions; /* set: chips of regions */
    int n_regions;
    int is_regions;
} chips_job;

static int write_all(const chips_job *j, const char *tmp, rsclip__gdal_errors *e) {
    index_writer x;
    int rc = index_open(&x, tmp, j->is_regions);
    int n = j->is_regions ? j->n_regions : j->n_hits;
    int max = 0;
    for (int i = 0; i < n; i++) {
        int num = j->is_regions ? j->regions[i].id : j->hits[i].rank;
        max = num > max ? num : max;
    }
    for (int i = 0; i < n && !rc; i++) {
        char name[96];
        if (j->is_regions) {
            const rsclip_region *r = &j->regions[i];
            const rsclip_hit *best = rsclip__hit_find(j->hits, j->n_hits, r->best_tile_id);
            if (!best)
                rc = rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                   "region %d: its best tile %lld is not among the hits", r->id,
                                   (long long)r->best_tile_id);
            chip_name(name, sizeof name, "region", r->id, max, r->best_tile_id);
            if (!rc) rc = region_chip(j->im, r, best, tmp, name, &x);
        } else {
            const rsclip_hit *h = &j->hits[i];
            chip_name(name, sizeof name, "rank", h->rank, max, h->tile_id);
            rc = hit_chip(j->im, h, tmp, name, &x);
        }
    }
    return index_close(&x, rc, e);
}

static int chips_run(const chips_job *j, const char *dir, const rsclip_chips_params *params) {
    if (!j->im || !dir || !*dir || (j->n_hits > 0 && !j->hits) || j->n_hits < 0 ||
        j->n_regions < 0 || (j->n_regions > 0 && !j->regions))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "chips: bad arguments");
    rsclip_chips_params p = params ? *params : rsclip_chips_default_params();
    rsclip__out_rules rules = {p.overwrite, p.protected_paths, p.n_protected};
    int rc = rsclip__out_check_dir(dir, &rules);
    if (rc) return rc;
    int made = 0;
    if (mkdir(dir, 0777) == 0)
        made = 1;
    else if (errno != EEXIST)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create the folder: %s", dir,
                             strerror(errno));
    /* Written into a private folder in dir, then moved into place by the export rule:
     * chips.geojson last, no existing file replaced without overwrite, never the index. */
    size_t len = strlen(dir) + sizeof "/chips.geojson";
    char *index_path = rsclip__malloc(len), *tmp = NULL;
    if (!index_path) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    snprintf(index_path, len, "%s/chips.geojson", dir);
    rsclip__dest dest;
    rc = rsclip__dest_resolve(index_path, &dest);
    if (!rc) rc = rsclip__tmpdir_new(&dest, &tmp);
    if (!rc) {
        rsclip__gdal_errors e;
        rsclip__gdal_errors_push(&e);
        rc = write_all(j, tmp, &e);
        rsclip__gdal_errors_pop(&e);
        if (rc) rsclip__tmpdir_remove(tmp);
    }
    char **old = !rc && p.overwrite ? earlier_chips(dir) : NULL;
    if (!rc)
        rc = rsclip__tmpdir_commit(tmp, &dest, p.overwrite, p.protected_paths, p.n_protected, old);
    free_list(old);
    free(tmp);
    free(index_path);
    rsclip__dest_free(&dest);
    if (rc && made) rmdir(dir); /* only succeeds when nothing was installed */
    return rc;
}

int rsclip_chips_check(const char *dir, const rsclip_chips_params *params) {
    if (!dir || !*dir) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "chips: no folder");
    rsclip_chips_params p = params ? *params : rsclip_chips_default_params();
    rsclip__out_rules rules = {p.overwrite, p.protected_paths, p.n_protected};
    return rsclip__out_check_dir(dir, &rules);
}

int rsclip_chips_write(rsclip_imagery *im, const rsclip_hit *hits, int n, const char *dir,
                       const rsclip_chips_params *params) {
    chips_job j = {im, hits, n, NULL, 0, 0};
    return chips_run(&j, dir, params);
}

int rsclip_chips_write_regions(rsclip_imagery *im, const rsclip_region *regions, int n,
                               const rsclip_hit *hits, int n_hits, const char *dir,
                               const rsclip_chips_params *params) {
    if (!regions && n > 0) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "chips: no regions");
    chips_job j = {im, hits, n_hits, regions, n, 1};
    return chips_run(&j, dir, params);
}
