/* Merging touching hits into regions (connected components of their WGS84 footprints). */
#include "base/base.h"
#include "export/export_internal.h"
#include "rsclip/export.h"
#include "status/status_internal.h"

#include <cpl_conv.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    OGRSpatialReferenceH laea = rsclip__export_srs(proj4);
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

/* The work of one merge: each hit's footprint (NULL: in pixel coordinates, in no region), the
 * union-find forest over them and the region each root became. */
typedef struct merge_ctx {
    const rsclip_hit *hits;
    int n;
    OGRGeometryH *geoms;
    OGREnvelope *env;
    int *parent, *root_region;
} merge_ctx;

/* Touching or overlapping footprints join one component. Adjacent tiles of one scene share their
 * edges exactly; a small tolerance absorbs rounding between scenes. */
static void join_touching(merge_ctx *m) {
    const double tol = 1e-9;
    for (int i = 0; i < m->n; i++) {
        if (!m->geoms[i]) continue;
        const OGREnvelope *a = &m->env[i];
        for (int j = i + 1; j < m->n; j++) {
            const OGREnvelope *b = &m->env[j];
            if (!m->geoms[j] || b->MinX > a->MaxX + tol || b->MaxX < a->MinX - tol ||
                b->MinY > a->MaxY + tol || b->MaxY < a->MinY - tol)
                continue;
            if (OGR_G_Intersects(m->geoms[i], m->geoms[j]) ||
                OGR_G_Distance(m->geoms[i], m->geoms[j]) <= tol) {
                int r = uf_find(m->parent, i), q = uf_find(m->parent, j);
                if (r != q) m->parent[q] = r;
            }
        }
    }
}

/* Number the components (root_region), count and score their tiles; returns how many. */
static int number_regions(merge_ctx *m, rsclip_region *regs) {
    int nr = 0;
    for (int i = 0; i < m->n; i++) {
        if (!m->geoms[i]) continue;
        const rsclip_hit *h = &m->hits[i];
        int r = uf_find(m->parent, i);
        if (m->root_region[r] < 0) {
            m->root_region[r] = nr++;
            regs[m->root_region[r]].max_prob = -1.0f;
            regs[m->root_region[r]].max_score = -2.0f;
        }
        rsclip_region *R = &regs[m->root_region[r]];
        R->n_tiles++;
        R->mean_prob += h->prob;
        if (h->prob > R->max_prob || (h->prob == R->max_prob && h->tile_id < R->best_tile_id)) {
            R->max_prob = h->prob;
            R->best_tile_id = h->tile_id;
        }
        if (h->score > R->max_score) R->max_score = h->score;
    }
    return nr;
}

/* Region k's tile ids, dissolved polygon, centroid and area. */
static int dissolve(merge_ctx *m, rsclip_region *R, int k, OGRSpatialReferenceH wgs84,
                    rsclip__gdal_errors *err) {
    R->tile_ids = rsclip__malloc((size_t)R->n_tiles * sizeof(int64_t));
    if (!R->tile_ids) return rsclip__error(RSCLIP_ERR_NOMEM, "regions_merge: out of memory");
    R->mean_prob /= (float)R->n_tiles;
    R->n_tiles = 0; /* refilled below */
    OGRGeometryH coll = OGR_G_CreateGeometry(wkbMultiPolygon);
    for (int i = 0; i < m->n; i++) {
        if (!m->geoms[i] || m->root_region[uf_find(m->parent, i)] != k) continue;
        R->tile_ids[R->n_tiles++] = m->hits[i].tile_id;
        OGR_G_AddGeometry(coll, m->geoms[i]);
    }
    OGRGeometryH u = OGR_G_UnionCascaded(coll);
    OGR_G_DestroyGeometry(coll);
    if (!u)
        return rsclip__error(RSCLIP_ERR_GDAL, "regions_merge: union failed: %s",
                             rsclip__gdal_msg(err, "GEOS error"));
    OGRGeometryH c = OGR_G_CreateGeometry(wkbPoint);
    if (OGR_G_Centroid(u, c) == OGRERR_NONE) {
        R->lon = OGR_G_GetX(c, 0);
        R->lat = OGR_G_GetY(c, 0);
    }
    OGR_G_DestroyGeometry(c);
    R->area_m2 = area_m2(u, wgs84, R->lon, R->lat);
    OGR_G_ExportToWkt(u, &R->wkt);
    OGR_G_DestroyGeometry(u);
    return RSCLIP_OK;
}

static int regions_merge(rsclip__gdal_errors *err, const rsclip_hit *hits, int n,
                         rsclip_region **out, int *n_out) {
    if (!out || !n_out || n < 0 || (n > 0 && !hits))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "regions_merge: invalid arguments");
    *out = NULL;
    *n_out = 0;
    int rc = RSCLIP_OK, nr = 0, n_pixel = 0;
    merge_ctx m = {hits,
                   n,
                   rsclip__calloc((size_t)n + 1, sizeof(OGRGeometryH)),
                   rsclip__calloc((size_t)n + 1, sizeof(OGREnvelope)),
                   rsclip__malloc(((size_t)n + 1) * sizeof(int)),
                   rsclip__malloc(((size_t)n + 1) * sizeof(int))};
    rsclip_region *regs = rsclip__calloc((size_t)n + 1, sizeof *regs);
    OGRSpatialReferenceH wgs84 = rsclip__export_srs("EPSG:4326");
    if (!m.geoms || !m.env || !m.parent || !m.root_region || !regs || !wgs84) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "regions_merge: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        m.parent[i] = i;
        m.root_region[i] = -1;
        m.geoms[i] = rsclip__hit_lonlat_polygon(&hits[i]);
        if (m.geoms[i]) OGR_G_GetEnvelope(m.geoms[i], &m.env[i]);
        n_pixel += rsclip__hit_is_pixel(&hits[i]);
    }
    if (n_pixel)
        rsclip__log(RSCLIP_LOG_WARN,
                    "regions: %d of %d hits have no lon/lat footprint (scenes indexed in pixel "
                    "coordinates, without a CRS) and are in no region",
                    n_pixel, n);
    join_touching(&m);
    nr = number_regions(&m, regs);
    for (int k = 0; k < nr && !rc; k++) rc = dissolve(&m, &regs[k], k, wgs84, err);
    if (rc) goto done;
    qsort(regs, (size_t)nr, sizeof *regs, cmp_region);
    for (int k = 0; k < nr; k++) regs[k].id = k + 1;
    *out = regs;
    *n_out = nr;
    regs = NULL;
done:
    if (regs) rsclip_regions_free(regs, nr);
    if (m.geoms)
        for (int i = 0; i < n; i++)
            if (m.geoms[i]) OGR_G_DestroyGeometry(m.geoms[i]);
    free(m.geoms);
    free(m.env);
    free(m.parent);
    free(m.root_region);
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
