/* The filters of a query (bbox, area of interest, scene) as an allow list of tile ids, why a
 * search found nothing, and reading an area of interest from a vector file. */
#include "base/base.h"
#include "query/query_internal.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* qsort of ids that may be NULL when n is 0 (an empty filter): qsort(NULL, 0) is undefined. */
static void sort_ids(int64_t *ids, size_t n) {
    if (n > 1) qsort(ids, n, sizeof *ids, rsclip__cmp_i64);
}

static void intersect_sorted(rsclip__allow_list *a, const int64_t *ids, size_t n) {
    size_t i = 0, j = 0, k = 0;
    while (i < a->n && j < n) {
        if (a->ids[i] < ids[j])
            i++;
        else if (a->ids[i] > ids[j])
            j++;
        else {
            a->ids[k++] = a->ids[i++];
            j++;
        }
    }
    a->n = k;
}

/* Restrict the allow list to tiles meeting the AOI polygon (R-tree on its envelope, then the
 * exact footprint test through OGR/GEOS). */
static int filter_aoi_impl(rsclip_index *idx, const char *wkt, rsclip__allow_list *al) {
    OGRGeometryH aoi = NULL;
    char *w = (char *)wkt;
    if (OGR_G_CreateFromWkt(&w, NULL, &aoi) != OGRERR_NONE || !aoi)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "area of interest is not valid WKT");
    OGREnvelope env;
    OGR_G_GetEnvelope(aoi, &env);
    double bb[4] = {env.MinX, env.MinY, env.MaxX, env.MaxY};
    memcpy(al->aoi_env, bb, sizeof bb);
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = rsclip_index_tiles_in_bbox(idx, bb, 0, &ids, &n);
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rsclip_tile_info *t = NULL;
        rc = rsclip_index_get_tile(idx, ids[i], &t);
        if (rc) break;
        OGRGeometryH poly = rsclip__ring_polygon(t->footprint, (int)t->n_footprint);
        if (OGR_G_Intersects(poly, aoi)) ids[k++] = ids[i];
        OGR_G_DestroyGeometry(poly);
        rsclip_free(t);
    }
    OGR_G_DestroyGeometry(aoi);
    if (!rc) {
        sort_ids(ids, k);
        al->n_aoi = k;
        if (!al->active) {
            al->active = 1;
            al->ids = ids;
            al->n = k;
            ids = NULL;
        } else {
            intersect_sorted(al, ids, k);
        }
    }
    rsclip_free(ids);
    return rc;
}

static int filter_aoi(rsclip_index *idx, const char *wkt, rsclip__allow_list *al) {
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = filter_aoi_impl(idx, wkt, al);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

/* A scene filter names a scene of the index: an unknown id is an error, not an empty result. */
int rsclip__query_check_scene(rsclip_session *s, int64_t scene_id) {
    int rc = RSCLIP_ERR_NOT_FOUND;
    for (int p = 0; p < s->n_parts && rc == RSCLIP_ERR_NOT_FOUND; p++) {
        rsclip_scene_info *si = NULL;
        rc = rsclip_index_get_scene(s->parts[p].idx, scene_id, &si);
        rsclip_free(si);
    }
    if (rc == RSCLIP_ERR_NOT_FOUND)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                             "%s: no such scene: %lld (rsclip info lists the scenes)", s->path,
                             (long long)scene_id);
    return rc;
}

/* A scene's time (instant or span); 0 when it has none. */
static int scene_time(const rsclip_scene_info *si, rsclip_time *t) {
    rsclip_time a, b;
    if (si->datetime && rsclip_time_parse(si->datetime, &a) == RSCLIP_OK) {
        *t = a;
        return 1;
    }
    if (si->start_datetime && si->end_datetime &&
        rsclip_time_parse(si->start_datetime, &a) == RSCLIP_OK &&
        rsclip_time_parse(si->end_datetime, &b) == RSCLIP_OK && b.end_ms >= a.start_ms) {
        t->start_ms = a.start_ms;
        t->end_ms = b.end_ms;
        return 1;
    }
    rsclip_clear_error(); /* a malformed stored time counts as none */
    return 0;
}

int rsclip__query_time_window(const rsclip_query *q, rsclip_time *w) {
    w->start_ms = INT64_MIN;
    w->end_ms = INT64_MAX;
    rsclip_time t;
    if (q->after) {
        if (rsclip_time_parse(q->after, &t)) return rsclip__error_prefix("after");
        w->start_ms = t.start_ms;
    }
    if (q->before) {
        if (rsclip_time_parse(q->before, &t)) return rsclip__error_prefix("before");
        w->end_ms = t.end_ms;
    }
    if (w->end_ms < w->start_ms)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "after %s is later than before %s", q->after,
                             q->before);
    return q->after || q->before;
}

/* The tiles of the part's scenes whose time meets the window (sorted, in *ids). */
static int time_tiles(rsclip_index *idx, const rsclip_time *win, rsclip__allow_list *al,
                      int64_t **ids, size_t *n) {
    int64_t *scenes = NULL, *all = NULL;
    size_t ns = 0, total = 0;
    *ids = NULL;
    *n = 0;
    int rc = rsclip_index_list_scenes(idx, &scenes, &ns);
    for (size_t i = 0; i < ns && !rc; i++) {
        rsclip_scene_info *si = NULL;
        rsclip_time t;
        if ((rc = rsclip_index_get_scene(idx, scenes[i], &si))) break;
        int has = scene_time(si, &t);
        rsclip_free(si);
        if (!has) {
            al->n_untimed++;
            continue;
        }
        if (!rsclip_time_overlaps(&t, win)) continue;
        int64_t *mine = NULL;
        size_t m = 0;
        if ((rc = rsclip_index_scene_tiles(idx, scenes[i], &mine, NULL, &m))) break;
        if (m) {
            int64_t *na = rsclip__realloc(all, (total + m) * sizeof *na);
            if (!na)
                rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            else {
                memcpy(na + total, mine, m * sizeof *mine);
                all = na;
                total += m;
            }
        }
        rsclip_free(mine);
    }
    rsclip_free(scenes);
    if (rc) {
        free(all);
        return rc;
    }
    sort_ids(all, total);
    *ids = all;
    *n = total;
    return RSCLIP_OK;
}

int rsclip__query_build_allow(rsclip_session *s, int part, const rsclip_query *q,
                              rsclip__allow_list *al) {
    rsclip_index *idx = s->parts[part].idx;
    memset(al, 0, sizeof *al);
    int rc = RSCLIP_OK;
    if (q->has_bbox) {
        const double *b = q->bbox;
        if (!(b[0] <= b[2] && b[1] <= b[3]) || !isfinite(b[0]) || !isfinite(b[1]) ||
            !isfinite(b[2]) || !isfinite(b[3]))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "bbox must be west,south,east,north with west <= east and "
                                 "south <= north");
        rc = rsclip_index_tiles_in_bbox(idx, b, 1, &al->ids, &al->n);
        if (rc) return rc;
        sort_ids(al->ids, al->n);
        al->active = 1;
        al->n_bbox = al->n;
    }
    if (q->aoi_wkt && (rc = filter_aoi(idx, q->aoi_wkt, al))) return rc;
    if (q->scene_id > 0) {
        int64_t *mine = NULL;
        size_t m = 0;
        rc = rsclip_index_scene_tiles(idx, q->scene_id, &mine, NULL, &m);
        if (rc) return rc;
        al->n_scene = m;
        if (!al->active) {
            al->active = 1;
            al->ids = mine;
            al->n = m;
        } else {
            intersect_sorted(al, mine, m);
            rsclip_free(mine);
        }
    }
    rsclip_time win;
    int tw = rsclip__query_time_window(q, &win);
    if (tw < 0) return tw;
    if (tw) {
        int64_t *mine = NULL;
        size_t m = 0;
        if ((rc = time_tiles(idx, &win, al, &mine, &m))) return rc;
        al->n_time = m;
        if (!al->active) {
            al->active = 1;
            al->ids = mine;
            al->n = m;
        } else {
            intersect_sorted(al, mine, m);
            rsclip_free(mine);
        }
    }
    return RSCLIP_OK;
}

static int boxes_meet(const double *a, const double *b) {
    return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

/* Why a box (the bbox, or the envelope of the area of interest) meets no tile: it lies outside
 * the index extent or between its scenes; and whether it meets tiles with lon and lat swapped. */
static void explain_box(rsclip_session *s, const char *what, const double *b, char *buf,
                        size_t size) {
    const double *e = s->info.extent;
    int n;
    if (!s->info.has_extent)
        n = snprintf(buf, size, "%s meets no tile: the index has none", what);
    else if (!boxes_meet(b, e))
        n = snprintf(buf, size,
                     "%s %.7g,%.7g,%.7g,%.7g lies outside the index extent %.7g,%.7g,%.7g,%.7g "
                     "(W,S,E,N)",
                     what, b[0], b[1], b[2], b[3], e[0], e[1], e[2], e[3]);
    else
        n = snprintf(buf, size,
                     "no tile footprint meets %s %.7g,%.7g,%.7g,%.7g (inside the index extent "
                     "%.7g,%.7g,%.7g,%.7g, between its scenes)",
                     what, b[0], b[1], b[2], b[3], e[0], e[1], e[2], e[3]);
    const double sw[4] = {b[1], b[0], b[3], b[2]};
    if (n < 0 || (size_t)n >= size || !s->info.has_extent || fabs(sw[1]) > 90 || fabs(sw[3]) > 90)
        return;
    size_t m = 0;
    for (int p = 0; p < s->n_parts; p++) {
        int64_t *ids = NULL;
        size_t mp = 0;
        if (rsclip_index_tiles_in_bbox(s->parts[p].idx, sw, 1, &ids, &mp) == RSCLIP_OK) m += mp;
        rsclip_free(ids);
    }
    if (m > 0)
        snprintf(buf + n, size - (size_t)n,
                 "; lon/lat swapped? as W,S,E,N = %.7g,%.7g,%.7g,%.7g it meets %zu tile%s", sw[0],
                 sw[1], sw[2], sw[3], m, m == 1 ? "" : "s");
    rsclip_clear_error();
}

/* Each filter meets tiles, but not the same ones. */
static void explain_filters(const rsclip_query *q, const rsclip__allow_list *al, char *buf,
                            size_t size) {
    int n = snprintf(buf, size, "no tile meets all the filters at once (alone:");
    const char *sep = " ";
    if (q->has_bbox && n > 0 && (size_t)n < size) {
        n += snprintf(buf + n, size - (size_t)n, "%sthe bbox meets %zu", sep, al->n_bbox);
        sep = ", ";
    }
    if (q->aoi_wkt && n > 0 && (size_t)n < size) {
        n += snprintf(buf + n, size - (size_t)n, "%sthe area of interest %zu", sep, al->n_aoi);
        sep = ", ";
    }
    if (q->scene_id > 0 && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, "%sscene %lld has %zu", sep,
                      (long long)q->scene_id, al->n_scene);
    if (n > 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, ")");
}

/* A sentence saying why a search found nothing (rsclip_results.why_empty); NULL on no memory. */
char *rsclip__query_explain_empty(rsclip_session *s, const rsclip_query *q,
                                  const rsclip__allow_list *al, int n_hits, int n_below,
                                  float best_below) {
    char buf[1024];
    if (n_below > 0)
        snprintf(buf, sizeof buf,
                 "%s %d hit%s found %s below the minimum probability %.4g (the highest: %.4f)",
                 n_below == 1 ? "the" : "all", n_below, n_below == 1 ? "" : "s",
                 n_below == 1 ? "is" : "are", (double)q->min_prob, (double)best_below);
    else if (rsclip__session_vectors(s) == 0)
        snprintf(buf, sizeof buf, "%s holds no tiles yet", s->path);
    else if (al->active && q->has_bbox && al->n_bbox == 0)
        explain_box(s, "the bbox", q->bbox, buf, sizeof buf);
    else if (al->active && q->aoi_wkt && al->n_aoi == 0)
        explain_box(s, "the envelope of the area of interest", al->aoi_env, buf, sizeof buf);
    else if (al->active && q->scene_id > 0 && al->n_scene == 0)
        snprintf(buf, sizeof buf,
                 "scene %lld has no tiles (not indexed yet, or every window was nodata)",
                 (long long)q->scene_id);
    else if (al->active && (q->after || q->before) && al->n_time == 0)
        snprintf(buf, sizeof buf,
                 "no scene's time meets the time filter (after %s, before %s; %zu scene%s "
                 "without a time left out)",
                 q->after ? q->after : "-", q->before ? q->before : "-", al->n_untimed,
                 al->n_untimed == 1 ? "" : "s");
    else if (al->active && al->n == 0)
        explain_filters(q, al, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "none of the %zu tiles searched has an embedding (%d found)",
                 al->active ? al->n : rsclip__session_vectors(s), n_hits);
    return rsclip__strdup(buf);
}

static int aoi_read(const rsclip__gdal_errors *e, const char *path, char **wkt) {
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds) return rsclip__gdal_error(e, RSCLIP_ERR_IO, "%s: cannot open as a vector file", path);
    OGRSpatialReferenceH wgs84 = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(wgs84, 4326);
    OSRSetAxisMappingStrategy(wgs84, OAMS_TRADITIONAL_GIS_ORDER);
    OGRGeometryH coll = OGR_G_CreateGeometry(wkbMultiPolygon);
    int rc = RSCLIP_OK;
    for (int li = 0; li < GDALDatasetGetLayerCount(ds) && !rc; li++) {
        OGRLayerH l = GDALDatasetGetLayer(ds, li);
        OGRSpatialReferenceH lsrs = OGR_L_GetSpatialRef(l);
        OGRCoordinateTransformationH ct = NULL;
        if (lsrs && !OSRIsSame(lsrs, wgs84)) {
            OGRSpatialReferenceH src = OSRClone(lsrs);
            OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
            ct = OCTNewCoordinateTransformation(src, wgs84);
            OSRDestroySpatialReference(src);
            if (!ct)
                rc = rsclip__error(RSCLIP_ERR_GDAL, "%s: cannot transform its CRS to WGS84", path);
        }
        OGR_L_ResetReading(l);
        OGRFeatureH f;
        while (!rc && (f = OGR_L_GetNextFeature(l)) != NULL) {
            OGRGeometryH g = OGR_F_GetGeometryRef(f);
            OGRwkbGeometryType gt = g ? wkbFlatten(OGR_G_GetGeometryType(g)) : wkbUnknown;
            if (g && (gt == wkbPolygon || gt == wkbMultiPolygon)) {
                OGRGeometryH c = OGR_G_Clone(g);
                if (ct && OGR_G_Transform(c, ct) != OGRERR_NONE) {
                    rc = rsclip__error(RSCLIP_ERR_GDAL, "%s: cannot reproject a polygon to WGS84",
                                       path);
                } else if (gt == wkbPolygon) {
                    OGR_G_AddGeometry(coll, c);
                } else {
                    for (int k = 0; k < OGR_G_GetGeometryCount(c); k++)
                        OGR_G_AddGeometry(coll, OGR_G_GetGeometryRef(c, k));
                }
                OGR_G_DestroyGeometry(c);
            }
            OGR_F_Destroy(f);
        }
        if (ct) OCTDestroyCoordinateTransformation(ct);
    }
    GDALClose(ds);
    OSRDestroySpatialReference(wgs84);
    if (!rc && OGR_G_GetGeometryCount(coll) == 0)
        rc = rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: no polygon in the area-of-interest file",
                           path);
    OGRGeometryH u = NULL;
    if (!rc) {
        u = OGR_G_UnionCascaded(coll);
        if (!u) rc = rsclip__error(RSCLIP_ERR_GDAL, "%s: cannot union its polygons", path);
    }
    OGR_G_DestroyGeometry(coll);
    if (!rc) {
        char *w = NULL;
        OGR_G_ExportToWkt(u, &w);
        *wkt = w ? rsclip__strdup(w) : NULL;
        CPLFree(w);
        if (!*wkt) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    }
    if (u) OGR_G_DestroyGeometry(u);
    return rc;
}

int rsclip_aoi_read(const char *path, char **wkt) {
    if (!path || !wkt) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "aoi: no file");
    *wkt = NULL;
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = aoi_read(&e, path, wkt);
    rsclip__gdal_errors_pop(&e);
    return rc;
}
