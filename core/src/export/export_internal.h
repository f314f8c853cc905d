/* Private: what export.c (writing layers) and regions.c (dissolving hits) share. */
#ifndef RSCLIP_EXPORT_INTERNAL_H
#define RSCLIP_EXPORT_INTERNAL_H

#include "gdal/gdal_util.h"
#include "rsclip/export.h"

#include <ogr_api.h>
#include <ogr_srs_api.h>

/* The first GDAL failure captured in e, or a fallback when GDAL said nothing. */
static inline const char *rsclip__gdal_msg(const rsclip__gdal_errors *e, const char *fallback) {
    return e->msg[0] ? e->msg : fallback;
}

/* A spatial reference from anything OSRSetFromUserInput takes, in x = lon / east order; NULL if
 * it does not parse. */
OGRSpatialReferenceH rsclip__export_srs(const char *def);

/* A hit in pixel coordinates: no lon/lat and no WGS84 footprint (see rsclip/export.h). */
static inline int rsclip__hit_is_pixel(const rsclip_hit *h) {
    return !h->has_lonlat && !(h->footprint && h->n_footprint >= 3);
}

/* A hit's WGS84 footprint as a polygon, or NULL when it has none (in pixel coordinates). */
OGRGeometryH rsclip__hit_lonlat_polygon(const rsclip_hit *h);

#endif
