/*
 * rsclip/export.h -- search hits as GIS data: OGR export and merging of touching hits into regions.
 *
 * A hit is one ranked tile: its cosine score, SigLIP probability, tile centre (WGS84 lon/lat), the
 * scene it comes from, its pixel window and its WGS84 footprint ring. rsclip_export_hits writes
 * them through OGR (GeoJSON, GPKG, CSV, KML, FlatGeobuf, or any OGR vector driver that can create
 * a layer) with the properties rank, score, prob, lon, lat, scene, xoff, yoff, xsize, ysize,
 * tile_id, footprints (layer geometry type Polygon) in EPSG:4326 or reprojected to params.t_srs.
 *
 *     rsclip_export_params ep = rsclip_export_default_params();
 *     ep.format = "GeoJSON";
 *     const char *keep[] = {"city.gpkg"};        // the index searched: never written
 *     ep.protected_paths = keep;
 *     ep.n_protected = 1;
 *     rsclip_export_hits("hits.geojson", &ep, hits, n);   // "-" or NULL writes to stdout
 *
 * What an export writes (the rules of ogr2ogr, plus a few guarantees):
 *   - a file that does not exist is written to a private temporary folder beside it and renamed
 *     into place once complete and read back: a failed export (full disk, unwritable folder,
 *     killed process) never leaves a half-written file under the name asked for;
 *   - an existing file is refused (RSCLIP_ERR_EXISTS) unless params.overwrite is set; a file
 *     replaced keeps its permission bits; a folder, a device, a FIFO or a socket is never
 *     written whole (RSCLIP_ERR_INVALID_ARG);
 *   - an existing file of a format that holds several layers and has native transactions
 *     (SQLite-based: GeoPackage, SQLite/SpatiaLite) is written as one layer inside it:
 *     params.layer_name adds a layer beside the others; a layer of that name that exists already
 *     is refused unless params.overwrite, which replaces that layer only. Without layer_name the
 *     file is refused unless params.overwrite, which replaces (only) its layer "hits"/"regions".
 *     The layer is written in one dataset (SQLite) transaction: a failure leaves the file's
 *     content as it was (SQLite may leave different bytes in pages it does not use);
 *   - any other existing file (another format, a single-layer format, a file that does not open)
 *     is replaced whole with params.overwrite, through the same temporary folder and rename;
 *   - a protected path (params.protected_paths: e.g. the index being searched) is never written,
 *     not even with overwrite. A path is the protected file when it names the same file (device
 *     and inode: also through a symbolic link, a hard link or another spelling of the path) or one
 *     of its companions (FILE-wal, FILE-shm, FILE-journal, FILE.rsvec), existing or not. A
 *     protected folder protects every *.gpkg file below it and their companions.
 *
 * Hits in pixel coordinates (has_lonlat 0 and no footprint: scenes indexed with
 * allow_pixel_coords, which have no CRS, or a CRS PROJ cannot map to WGS84) have no lon/lat; their
 * corners are in pixels (x right, y down: what gdal_translate -srcwin counts) or, for a scene with
 * a geotransform but no usable CRS, in the coordinates of that geotransform. An export writes them
 * as a GIS user expects of data without a CRS:
 *   - every hit in pixel coordinates: a layer WITHOUT a CRS (GeoJSON without "crs", a shapefile
 *     without .prj; GeoPackage's "Undefined Cartesian SRS", srs_id -1), each footprint the
 *     polygon of its window's corners, lon and lat null. Each hit is in its own scene's pixels:
 *     hits of two such scenes share numbers, not ground. params.t_srs is refused
 *     (RSCLIP_ERR_INVALID_ARG: there is nothing to reproject from), and so are formats that hold
 *     WGS84 lon/lat only (KML, LIBKML, GPX);
 *   - some hits in pixel coordinates, some georeferenced: the layer is in EPSG:4326 (or t_srs)
 *     as usual; the hits in pixel coordinates are written with a null geometry and null lon/lat
 *     (their rank, scores, scene and window are there) and a warning is logged that counts them:
 *     coordinates in pixels have no place in a layer with a CRS. Export them alone (a search
 *     restricted to their scene) to get their pixel footprints.
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
                             corners are then in pixels (x right, y down), or in the scene's
                             geotransform coordinates when it has one but no usable CRS */
    double corners[8];    /* window corners in the scene CRS: UL, UR, LR, LL */
    const char *datetime; /* when the scene was taken (rsclip/time.h text: an instant, or
                             "start/end"), NULL if unknown (borrowed) */
    const char *stac_item, *stac_collection; /* the scene's STAC ids, NULL if not from STAC */
} rsclip_hit;

/* A change (rsclip/query.h, change queries): a place seen in two periods. */
typedef struct rsclip_change {
    int rank;        /* 1-based */
    float rise;      /* to.prob - prob_from */
    float prob_from; /* the earlier coverage's probability (area-weighted) */
    double coverage; /* share of to's footprint the earlier tiles cover, 0.5 .. 1 */
    int n_from;      /* earlier tiles meeting it */
    rsclip_hit to;   /* the later tile (its rank is the change's; strings borrowed) */
    rsclip_hit from; /* the earlier tile that covers most of it (prob: that tile's own) */
} rsclip_change;

typedef struct rsclip_region {
    int id; /* 1-based, ordered by max_prob descending */
    int n_tiles;
    float max_prob, mean_prob, max_score;
    int64_t best_tile_id; /* the tile with max_prob */
    double lon, lat;      /* centroid of the dissolved polygon, WGS84 */
    double area_m2;
    char *wkt;         /* dissolved (multi)polygon, WGS84 lon/lat WKT (owned) */
    int64_t *tile_ids; /* n_tiles ids of the member tiles (owned) */
    /* Regions of a change query (set by the caller, 0 otherwise): the largest and the mean rise
     * of the member changes; exported as max_rise and mean_rise. */
    int has_rise;
    float max_rise, mean_rise;
} rsclip_region;

/* Merge hits (all of them: the caller filters by threshold first) into regions. Hits without a
 * WGS84 footprint (in pixel coordinates) are in no region: a warning is logged that counts them.
 * *out is freed with rsclip_regions_free. */
int rsclip_regions_merge(const rsclip_hit *hits, int n, rsclip_region **out, int *n_out);
void rsclip_regions_free(rsclip_region *regions, int n); /* NULL-safe */

typedef struct rsclip_export_params {
    const char *format;     /* OGR driver name or alias: GeoJSON, GPKG, CSV, KML, FlatGeobuf (fgb),
                               ESRI Shapefile (shp), ...; NULL: from the file's extension */
    const char *t_srs;      /* NULL: EPSG:4326; else anything OSRSetFromUserInput accepts */
    const char *layer_name; /* NULL: "hits" / "regions". Set: the layer to add to (or, with
                               overwrite, replace in) an existing multi-layer file */
    int overwrite;          /* 1: replace an existing file, or the layer of that name in a
                               multi-layer file; 0 (default): refuse with RSCLIP_ERR_EXISTS */
    const char *const *protected_paths; /* files (or folders) never written, even with
                                           overwrite: the index being searched */
    int n_protected;
} rsclip_export_params;

rsclip_export_params rsclip_export_default_params(void);

/* The OGR driver for a file name: rsclip's own names first (".geojson"/".json" -> "GeoJSON",
 * ".gpkg", ".csv", ".kml", ".fgb"), then any GDAL vector driver that can create files and lists
 * the extension (".shp" -> "ESRI Shapefile", ".gml", ".sqlite", ...). NULL if none. The string
 * is static. */
const char *rsclip_export_format_from_path(const char *path);

/* Check, without writing anything, that rsclip_export_hits/regions(path, params, ...) would be
 * allowed to write path under the rules above (format known and writable, path not protected,
 * an existing file or layer only with overwrite); default_layer is "hits" or "regions" (the
 * layer used when params->layer_name is NULL). RSCLIP_OK, RSCLIP_ERR_EXISTS, or another error
 * naming the path. Lets a caller refuse before a long computation; the export checks again. */
int rsclip_export_check(const char *path, const rsclip_export_params *params,
                        const char *default_layer);

/* The rule for a whole file that any rsclip writer follows: RSCLIP_OK when path may be written
 * (it does not exist, or overwrite is set and it is a regular file); RSCLIP_ERR_EXISTS when it
 * exists and overwrite is 0; RSCLIP_ERR_INVALID_ARG when it is a folder, a device, a FIFO or a
 * socket, or one of the protected paths (see above: same file, companions, files in a protected
 * folder); RSCLIP_ERR_IO when its folder does not exist. */
int rsclip_output_check(const char *path, int overwrite, const char *const *protected_paths,
                        int n_protected);

/* Write hits to path under the rules above (hits in pixel coordinates: see above). path NULL or
 * "-" writes to stdout (formats that can stream: GeoJSON, CSV). Errors name the path and the OGR
 * problem. KML placemarks are named by rank. */
int rsclip_export_hits(const char *path, const rsclip_export_params *params, const rsclip_hit *hits,
                       int n);

/* Write regions (properties: region, tiles, max_prob, mean_prob, max_score, area_m2, lon, lat,
 * best_tile; geometry type MultiPolygon, since a region's tiles may touch only at a corner) the
 * same way. KML placemarks are named by region number. */
int rsclip_export_regions(const char *path, const rsclip_export_params *params,
                          const rsclip_region *regions, int n);

/* Write changes as rsclip_export_hits writes hits (same output rules; default layer "changes"):
 * one polygon per change, the later tile's footprint, with rank, rise, prob, prob_from,
 * coverage, from_tiles, tile_id, from_tile_id, datetime, from_datetime, lon, lat, scene,
 * from_scene, the later window (xoff, yoff, xsize, ysize) and the STAC ids. */
int rsclip_export_changes(const char *path, const rsclip_export_params *params,
                          const rsclip_change *changes, int n);

#ifdef __cplusplus
}
#endif
#endif
