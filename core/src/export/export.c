/* Hits and regions to OGR data sources; merging touching hits into regions. */
#include "rsclip/export.h"
#include "imageio/gdal_util.h"
#include "status/status_internal.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

rsclip_export_params rsclip_export_default_params(void) {
    rsclip_export_params p = {"GeoJSON", NULL, NULL};
    return p;
}

static const struct {
    const char *alias, *driver, *ext;
} k_formats[] = {
    {"geojson", "GeoJSON", ".geojson"},
    {"json", "GeoJSON", ".json"},
    {"gpkg", "GPKG", ".gpkg"},
    {"csv", "CSV", ".csv"},
    {"kml", "KML", ".kml"},
    {"flatgeobuf", "FlatGeobuf", ".fgb"},
    {"fgb", "FlatGeobuf", ".fgb"},
};

const char *rsclip_export_format_from_path(const char *path) {
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot) return NULL;
    for (size_t i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
        if (strcasecmp(dot, k_formats[i].ext) == 0) return k_formats[i].driver;
    return NULL;
}

static const char *driver_name(const char *format) {
    for (size_t i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
        if (strcasecmp(format, k_formats[i].alias) == 0) return k_formats[i].driver;
    return format;
}

/* The first GDAL failure captured in e, or a fallback when GDAL said nothing. */
static const char *gdal_msg(const rsclip__gdal_errors *e, const char *fallback) {
    return e->msg[0] ? e->msg : fallback;
}

static OGRSpatialReferenceH make_srs(const char *def) {
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (OSRSetFromUserInput(srs, def) != OGRERR_NONE) {
        OSRDestroySpatialReference(srs);
        return NULL;
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    return srs;
}

/* Polygon from a lon/lat ring (closed here if the caller did not). */
static OGRGeometryH ring_polygon(const double *xy, int n) {
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    for (int i = 0; i < n; i++) OGR_G_AddPoint_2D(ring, xy[2 * i], xy[2 * i + 1]);
    if (n > 0 && (xy[0] != xy[2 * (n - 1)] || xy[1] != xy[2 * (n - 1) + 1]))
        OGR_G_AddPoint_2D(ring, xy[0], xy[1]);
    OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
    OGR_G_AddGeometryDirectly(poly, ring);
    return poly;
}

/* An output being written: data source, layer, optional reprojection. */
typedef struct out_ctx {
    GDALDatasetH ds;
    OGRLayerH layer;
    OGRCoordinateTransformationH ct; /* WGS84 -> t_srs, NULL when writing WGS84 */
    OGRSpatialReferenceH wgs84, dst;
    const char *path;
    rsclip__gdal_errors *err; /* GDAL failures of this export (the caller's scope) */
} out_ctx;

static void out_close(out_ctx *o) {
    if (o->ct) OCTDestroyCoordinateTransformation(o->ct);
    if (o->wgs84) OSRDestroySpatialReference(o->wgs84);
    if (o->dst) OSRDestroySpatialReference(o->dst);
    if (o->ds) GDALClose(o->ds);
    memset(o, 0, sizeof *o);
}

typedef struct field_def {
    const char *name;
    OGRFieldType type;
} field_def;

static int out_open(out_ctx *o, rsclip__gdal_errors *err, const char *path,
                    const rsclip_export_params *p, const char *default_layer,
                    const field_def *fields, int n_fields) {
    memset(o, 0, sizeof *o);
    o->err = err;
    int to_stdout = !path || strcmp(path, "-") == 0;
    const char *format = p && p->format ? p->format : NULL;
    if (!format) format = to_stdout ? "GeoJSON" : rsclip_export_format_from_path(path);
    if (!format) format = "GeoJSON";
    const char *dname = driver_name(format);
    const char *target = to_stdout ? "/vsistdout/" : path;
    o->path = to_stdout ? "<stdout>" : path;

    GDALDriverH drv = GDALGetDriverByName(dname);
    if (!drv || !GDALGetMetadataItem(drv, GDAL_DCAP_VECTOR, NULL) ||
        !GDALGetMetadataItem(drv, GDAL_DCAP_CREATE, NULL))
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: output format '%s' is not an OGR vector format that can be "
                             "created (try GeoJSON, GPKG, CSV, KML, FlatGeobuf)",
                             o->path, format);
    if (to_stdout && strcmp(dname, "GeoJSON") != 0 && strcmp(dname, "CSV") != 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "format %s cannot be written to stdout: give an output file (-o)",
                             dname);

    o->wgs84 = make_srs("EPSG:4326");
    if (p && p->t_srs && p->t_srs[0]) {
        o->dst = make_srs(p->t_srs);
        if (!o->dst) {
            out_close(o);
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "invalid target SRS '%s'", p->t_srs);
        }
        if (!OSRIsSame(o->dst, o->wgs84)) {
            o->ct = OCTNewCoordinateTransformation(o->wgs84, o->dst);
            if (!o->ct) {
                int rc = rsclip__error(RSCLIP_ERR_GDAL, "cannot transform EPSG:4326 to '%s': %s",
                                       p->t_srs, gdal_msg(o->err, "no transformation"));
                out_close(o);
                return rc;
            }
        }
    }

    if (!to_stdout) {
        VSIStatBufL st;
        if (VSIStatL(path, &st) == 0) {
            /* Replace, as a user re-running a query expects; Delete knows multi-file formats. */
            if (GDALDeleteDataset(drv, path) != CE_None) VSIUnlink(path);
        }
    }
    o->ds = GDALCreate(drv, target, 0, 0, 0, GDT_Unknown, NULL);
    if (!o->ds) {
        int rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot create %s output: %s", o->path, dname,
                               gdal_msg(o->err, "unknown error"));
        out_close(o);
        return rc;
    }
    char **lco = NULL;
    if (strcmp(dname, "CSV") == 0) lco = CSLSetNameValue(lco, "GEOMETRY", "AS_WKT");
    /* FlatGeobuf's spatial index sorts features along a curve: keep them in rank order. */
    if (strcmp(dname, "FlatGeobuf") == 0) lco = CSLSetNameValue(lco, "SPATIAL_INDEX", "NO");
    const char *lname = p && p->layer_name ? p->layer_name : default_layer;
    o->layer = GDALDatasetCreateLayer(o->ds, lname, o->dst ? o->dst : o->wgs84, wkbUnknown, lco);
    CSLDestroy(lco);
    if (!o->layer) {
        int rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot create layer '%s': %s", o->path, lname,
                               gdal_msg(o->err, "unknown error"));
        out_close(o);
        return rc;
    }
    for (int i = 0; i < n_fields; i++) {
        OGRFieldDefnH fd = OGR_Fld_Create(fields[i].name, fields[i].type);
        if (fields[i].type == OFTReal) OGR_Fld_SetPrecision(fd, 0);
        OGRErr oe = OGR_L_CreateField(o->layer, fd, TRUE);
        OGR_Fld_Destroy(fd);
        if (oe != OGRERR_NONE) {
            int rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot create field '%s': %s", o->path,
                                   fields[i].name, gdal_msg(o->err, "unknown error"));
            out_close(o);
            return rc;
        }
    }
    return RSCLIP_OK;
}

/* Reproject (if asked) and attach geom to feature f; takes ownership of geom. */
static int out_write(out_ctx *o, OGRFeatureH f, OGRGeometryH geom) {
    if (geom) {
        OGR_G_AssignSpatialReference(geom, o->wgs84);
        if (o->ct && OGR_G_Transform(geom, o->ct) != OGRERR_NONE) {
            OGR_G_DestroyGeometry(geom);
            return rsclip__error(RSCLIP_ERR_GDAL, "%s: cannot reproject a footprint: %s", o->path,
                                 gdal_msg(o->err, "transformation failed"));
        }
        OGR_F_SetGeometryDirectly(f, geom);
    }
    if (OGR_L_CreateFeature(o->layer, f) != OGRERR_NONE)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write a feature: %s", o->path,
                             gdal_msg(o->err, "write failed"));
    return RSCLIP_OK;
}

/* Close and check that everything reached the file (GDALClose flushes; a full disk shows here). */
static int out_finish(out_ctx *o) {
    int before = o->err->n_failures;
    if (o->ds) {
        GDALClose(o->ds);
        o->ds = NULL;
    }
    int rc = o->err->n_failures > before
                 ? rsclip__error(RSCLIP_ERR_IO, "%s: error while closing the output: %s", o->path,
                                 gdal_msg(o->err, "write failed"))
                 : RSCLIP_OK;
    out_close(o);
    return rc;
}

static int export_hits(rsclip__gdal_errors *err, const char *path,
                       const rsclip_export_params *params, const rsclip_hit *hits, int n) {
    static const field_def fields[] = {
        {"rank", OFTInteger},  {"score", OFTReal},        {"prob", OFTReal},
        {"lon", OFTReal},      {"lat", OFTReal},          {"scene", OFTString},
        {"xoff", OFTInteger},  {"yoff", OFTInteger},      {"xsize", OFTInteger},
        {"ysize", OFTInteger}, {"tile_id", OFTInteger64},
    };
    if (n < 0 || (n > 0 && !hits)) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "export: no hits");
    out_ctx o;
    int rc =
        out_open(&o, err, path, params, "hits", fields, (int)(sizeof fields / sizeof fields[0]));
    if (rc) return rc;
    OGRFeatureDefnH defn = OGR_L_GetLayerDefn(o.layer);
    for (int i = 0; i < n && rc == RSCLIP_OK; i++) {
        const rsclip_hit *h = &hits[i];
        OGRFeatureH f = OGR_F_Create(defn);
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "rank"), h->rank);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "score"), h->score);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "prob"), h->prob);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "lon"), h->lon);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "lat"), h->lat);
        OGR_F_SetFieldString(f, OGR_F_GetFieldIndex(f, "scene"), h->scene ? h->scene : "");
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "xoff"), h->xoff);
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "yoff"), h->yoff);
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "xsize"), h->xsize);
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "ysize"), h->ysize);
        OGR_F_SetFieldInteger64(f, OGR_F_GetFieldIndex(f, "tile_id"), h->tile_id);
        OGRGeometryH g = NULL;
        if (h->footprint && h->n_footprint >= 3) g = ring_polygon(h->footprint, h->n_footprint);
        rc = out_write(&o, f, g);
        OGR_F_Destroy(f);
    }
    int rc2 = out_finish(&o);
    return rc ? rc : rc2;
}

static int export_regions(rsclip__gdal_errors *err, const char *path,
                          const rsclip_export_params *params, const rsclip_region *regions, int n) {
    static const field_def fields[] = {
        {"region", OFTInteger}, {"tiles", OFTInteger},  {"max_prob", OFTReal},
        {"mean_prob", OFTReal}, {"max_score", OFTReal}, {"area_m2", OFTReal},
        {"lon", OFTReal},       {"lat", OFTReal},       {"best_tile", OFTInteger64},
    };
    if (n < 0 || (n > 0 && !regions))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "export: no regions");
    rsclip_export_params p = params ? *params : rsclip_export_default_params();
    out_ctx o;
    int rc =
        out_open(&o, err, path, &p, "regions", fields, (int)(sizeof fields / sizeof fields[0]));
    if (rc) return rc;
    OGRFeatureDefnH defn = OGR_L_GetLayerDefn(o.layer);
    for (int i = 0; i < n && rc == RSCLIP_OK; i++) {
        const rsclip_region *r = &regions[i];
        OGRFeatureH f = OGR_F_Create(defn);
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "region"), r->id);
        OGR_F_SetFieldInteger(f, OGR_F_GetFieldIndex(f, "tiles"), r->n_tiles);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "max_prob"), r->max_prob);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "mean_prob"), r->mean_prob);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "max_score"), r->max_score);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "area_m2"), r->area_m2);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "lon"), r->lon);
        OGR_F_SetFieldDouble(f, OGR_F_GetFieldIndex(f, "lat"), r->lat);
        OGR_F_SetFieldInteger64(f, OGR_F_GetFieldIndex(f, "best_tile"), r->best_tile_id);
        OGRGeometryH g = NULL;
        if (r->wkt) {
            char *w = r->wkt;
            if (OGR_G_CreateFromWkt(&w, NULL, &g) != OGRERR_NONE) g = NULL;
        }
        rc = out_write(&o, f, g);
        OGR_F_Destroy(f);
    }
    int rc2 = out_finish(&o);
    return rc ? rc : rc2;
}

/* Every GDAL call of an export runs inside one error scope: nothing is printed, the first failure
 * message goes into the rsclip error. */
int rsclip_export_hits(const char *path, const rsclip_export_params *params, const rsclip_hit *hits,
                       int n) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = export_hits(&e, path, params, hits, n);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

int rsclip_export_regions(const char *path, const rsclip_export_params *params,
                          const rsclip_region *regions, int n) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = export_regions(&e, path, params, regions, n);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

/* ---- regions ----------------------------------------------------------------------------------
 */

static int uf_find(int *parent, int i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/* Area in m^2 of a WGS84 geometry: reprojected to a Lambert azimuthal equal-area projection
 * centred on it (accurate for regions of a few hundred km). */
static double area_m2(OGRGeometryH g, OGRSpatialReferenceH wgs84, double lon, double lat) {
    char proj4[160];
    snprintf(proj4, sizeof proj4,
             "+proj=laea +lat_0=%.9f +lon_0=%.9f +datum=WGS84 +units=m +no_defs", lat, lon);
    OGRSpatialReferenceH laea = make_srs(proj4);
    if (!laea) return NAN;
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(wgs84, laea);
    double a = NAN;
    if (ct) {
        OGRGeometryH c = OGR_G_Clone(g);
        if (OGR_G_Transform(c, ct) == OGRERR_NONE) a = OGR_G_Area(c);
        OGR_G_DestroyGeometry(c);
        OCTDestroyCoordinateTransformation(ct);
    }
    OSRDestroySpatialReference(laea);
    return a;
}

static int cmp_region(const void *a, const void *b) {
    const rsclip_region *x = a, *y = b;
    if (x->max_prob != y->max_prob) return x->max_prob > y->max_prob ? -1 : 1;
    return x->best_tile_id < y->best_tile_id ? -1 : x->best_tile_id > y->best_tile_id;
}

void rsclip_regions_free(rsclip_region *regions, int n) {
    if (!regions) return;
    for (int i = 0; i < n; i++) {
        CPLFree(regions[i].wkt);
        free(regions[i].tile_ids);
    }
    free(regions);
}

static int regions_merge(rsclip__gdal_errors *err, const rsclip_hit *hits, int n,
                         rsclip_region **out, int *n_out) {
    if (!out || !n_out || n < 0 || (n > 0 && !hits))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "regions_merge: invalid arguments");
    *out = NULL;
    *n_out = 0;
    int rc = RSCLIP_OK, nr = 0;
    OGRGeometryH *geoms = calloc((size_t)n + 1, sizeof *geoms);
    OGREnvelope *env = calloc((size_t)n + 1, sizeof *env);
    int *parent = malloc(((size_t)n + 1) * sizeof *parent);
    int *root_region = malloc(((size_t)n + 1) * sizeof *root_region);
    rsclip_region *regs = calloc((size_t)n + 1, sizeof *regs);
    OGRSpatialReferenceH wgs84 = make_srs("EPSG:4326");
    if (!geoms || !env || !parent || !root_region || !regs || !wgs84) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "regions_merge: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        parent[i] = i;
        root_region[i] = -1;
        if (hits[i].footprint && hits[i].n_footprint >= 3) {
            geoms[i] = ring_polygon(hits[i].footprint, hits[i].n_footprint);
            OGR_G_GetEnvelope(geoms[i], &env[i]);
        }
    }
    /* Touching or overlapping footprints join one component. Adjacent tiles of one scene share
     * their edges exactly; a small tolerance absorbs rounding between scenes. */
    const double tol = 1e-9;
    for (int i = 0; i < n; i++) {
        if (!geoms[i]) continue;
        for (int j = i + 1; j < n; j++) {
            if (!geoms[j]) continue;
            if (env[j].MinX > env[i].MaxX + tol || env[j].MaxX < env[i].MinX - tol ||
                env[j].MinY > env[i].MaxY + tol || env[j].MaxY < env[i].MinY - tol)
                continue;
            if (OGR_G_Intersects(geoms[i], geoms[j]) || OGR_G_Distance(geoms[i], geoms[j]) <= tol) {
                int a = uf_find(parent, i), b = uf_find(parent, j);
                if (a != b) parent[b] = a;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (!geoms[i]) continue;
        int r = uf_find(parent, i);
        if (root_region[r] < 0) {
            root_region[r] = nr++;
            regs[root_region[r]].max_prob = -1.0f;
            regs[root_region[r]].max_score = -2.0f;
        }
        rsclip_region *R = &regs[root_region[r]];
        R->n_tiles++;
        R->mean_prob += hits[i].prob;
        if (hits[i].prob > R->max_prob ||
            (hits[i].prob == R->max_prob && hits[i].tile_id < R->best_tile_id)) {
            R->max_prob = hits[i].prob;
            R->best_tile_id = hits[i].tile_id;
        }
        if (hits[i].score > R->max_score) R->max_score = hits[i].score;
    }
    for (int k = 0; k < nr; k++) {
        regs[k].tile_ids = malloc((size_t)regs[k].n_tiles * sizeof(int64_t));
        if (!regs[k].tile_ids) {
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "regions_merge: out of memory");
            nr = k; /* free only what exists */
            goto done;
        }
        regs[k].mean_prob /= (float)regs[k].n_tiles;
        regs[k].n_tiles = 0; /* refilled below */
    }
    for (int k = 0; k < nr; k++) {
        OGRGeometryH coll = OGR_G_CreateGeometry(wkbMultiPolygon);
        for (int i = 0; i < n; i++) {
            if (!geoms[i] || root_region[uf_find(parent, i)] != k) continue;
            regs[k].tile_ids[regs[k].n_tiles++] = hits[i].tile_id;
            OGR_G_AddGeometry(coll, geoms[i]);
        }
        OGRGeometryH u = OGR_G_UnionCascaded(coll);
        OGR_G_DestroyGeometry(coll);
        if (!u) {
            rc = rsclip__error(RSCLIP_ERR_GDAL, "regions_merge: union failed: %s",
                               gdal_msg(err, "GEOS error"));
            nr = k + 1;
            goto done;
        }
        OGRGeometryH c = OGR_G_CreateGeometry(wkbPoint);
        if (OGR_G_Centroid(u, c) == OGRERR_NONE) {
            regs[k].lon = OGR_G_GetX(c, 0);
            regs[k].lat = OGR_G_GetY(c, 0);
        }
        OGR_G_DestroyGeometry(c);
        regs[k].area_m2 = area_m2(u, wgs84, regs[k].lon, regs[k].lat);
        OGR_G_ExportToWkt(u, &regs[k].wkt);
        OGR_G_DestroyGeometry(u);
    }
    qsort(regs, (size_t)nr, sizeof *regs, cmp_region);
    for (int k = 0; k < nr; k++) regs[k].id = k + 1;
    *out = regs;
    *n_out = nr;
    regs = NULL;
done:
    if (regs) rsclip_regions_free(regs, nr);
    if (geoms)
        for (int i = 0; i < n; i++)
            if (geoms[i]) OGR_G_DestroyGeometry(geoms[i]);
    free(geoms);
    free(env);
    free(parent);
    free(root_region);
    if (wgs84) OSRDestroySpatialReference(wgs84);
    return rc;
}

int rsclip_regions_merge(const rsclip_hit *hits, int n, rsclip_region **out, int *n_out) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = regions_merge(&e, hits, n, out, n_out);
    rsclip__gdal_errors_pop(&e);
    return rc;
}
