/*
 * rsclip/export.h -- search hits as GIS data: OGR export and merging of touching hits into regions.
 *
 * A hit is one ranked tile: its cosine score, SigLIP probability, tile centre (WGS84 lon/lat), the
 * scene it comes from, its pixel window and its WGS84 footprint ring. rsclip_export_hits writes
 * them through OGR (GeoJSON, GPKG, CSV, KML, FlatGeobuf, or any OGR vector driver that can create
 * a layer) with the properties rank, score, prob, lon, lat, scene, xoff, yoff, xsize, ysize,
 * footprints in EPSG:4326 or reprojected to params.t_srs.
 *
 *     rsclip_export_params ep = rsclip_export_default_params();
 *     ep.format = "GeoJSON";
 *     rsclip_export_hits("hits.geojson", &ep, hits, n);   // "-" or NULL writes to stdout
 *
 * rsclip_regions_merge dissolves hits whose footprints touch or overlap into regions (connected
 * components), with max and mean probability, tile count and geodesic area in m^2 (computed in a
 * Lambert azimuthal equal-area projection centred on each region).
 *
 * Functions here call GDAL/OGR; they are safe to call from several threads on different outputs.
 */
#ifndef RSCLIP_EXPORT_H
#define RSCLIP_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rsclip_hit {
    int64_t tile_id;
    int rank;          /* 1-based */
    float score;       /* cosine similarity used for ranking */
    float prob;        /* SigLIP sigmoid probability */
    double lon, lat;   /* tile centre, WGS84 */
    const char *scene; /* scene path (borrowed) */
    int64_t scene_id;
    int xoff, yoff, xsize, ysize; /* window in the scene file's pixels (what `gdal_translate
                                     -srcwin` cuts): the tile at native resolution; after a
                                     resampling gsd, src_window rounded to whole pixels */
    const double
        *footprint; /* WGS84 ring as n_footprint (lon, lat) pairs (borrowed); may be NULL */
    int n_footprint;
    double src_window[4]; /* the window in source pixels, exact (fractional after a gsd) */
    int grid_window[4];   /* the window in the scene's tile grid (= xoff.. at native gsd) */
    int has_lonlat;       /* 0: a scene indexed in pixel coordinates: lon/lat NaN, no footprint;
                             corners are then in pixels (x right, y down) */
    double corners[8];    /* window corners in the scene CRS: UL, UR, LR, LL */
} rsclip_hit;

typedef struct rsclip_region {
    int id; /* 1-based, ordered by max_prob descending */
    int n_tiles;
    float max_prob, mean_prob, max_score;
    int64_t best_tile_id; /* the tile with max_prob */
    double lon, lat;      /* centroid of the dissolved polygon, WGS84 */
    double area_m2;
    char *wkt;         /* dissolved (multi)polygon, WGS84 lon/lat WKT (owned) */
    int64_t *tile_ids; /* n_tiles ids of the member tiles (owned) */
} rsclip_region;

/* Merge hits (all of them: the caller filters by threshold first) into regions. Hits without a
 * footprint are ignored. *out is freed with rsclip_regions_free. */
int rsclip_regions_merge(const rsclip_hit *hits, int n, rsclip_region **out, int *n_out);
void rsclip_regions_free(rsclip_region *regions, int n); /* NULL-safe */

typedef struct rsclip_export_params {
    const char *format; /* OGR driver name or alias: GeoJSON, GPKG, CSV, KML, FlatGeobuf (fgb) */
    const char *t_srs;  /* NULL: EPSG:4326; else anything OSRSetFromUserInput accepts */
    const char *layer_name; /* NULL: "hits" / "regions" */
} rsclip_export_params;

rsclip_export_params rsclip_export_default_params(void);

/* Guess a format from a file extension (".geojson" -> "GeoJSON", ".gpkg", ".csv", ".kml",
 * ".fgb"); NULL if unknown. */
const char *rsclip_export_format_from_path(const char *path);

/* Write hits to path (replacing an existing file). path NULL or "-" writes to stdout (formats
 * that can stream: GeoJSON, CSV). Errors name the path and the OGR problem. */
int rsclip_export_hits(const char *path, const rsclip_export_params *params, const rsclip_hit *hits,
                       int n);

/* Write regions (properties: region, tiles, max_prob, mean_prob, max_score, area_m2, lon, lat,
 * best_tile) the same way. */
int rsclip_export_regions(const char *path, const rsclip_export_params *params,
                          const rsclip_region *regions, int n);

#ifdef __cplusplus
}
#endif
#endif
