/*
 * rsclip/render.h -- see the hits: the indexed imagery as pictures, hit chips and contact sheets.
 *
 * An imagery handle holds the scenes of an index (one file or a sharded folder) ready to be drawn
 * the way they were indexed: each scene is opened with the tiling settings and the scaling the
 * index recorded for it, so a hit's picture is the very 8-bit RGB tile the model saw (same bands,
 * scaling, resampling and nodata fill; rsclip_tiler_read does the reading).
 *
 *     rsclip_imagery *im;
 *     if (rsclip_imagery_open("city.gpkg", NULL, &im) != RSCLIP_OK) ...
 *     rsclip_chips_params cp = rsclip_chips_default_params();
 *     rsclip_chips_write(im, r->hits, r->n, "chips", &cp);      // GeoTIFF + PNG per hit
 *     rsclip_sheet_params sp = rsclip_sheet_default_params();
 *     sp.title = "solar farms";
 *     rsclip_sheet_write(im, r->hits, r->n, "hits.pdf", &sp);   // contact sheet, PNG or PDF
 *     rsclip_imagery_close(im);
 *
 * Chips (rsclip_chips_write): for hit rank R of tile T, in folder DIR,
 *   rank_RRR_tile_T.tif  the hit's window cut from the original raster with GDAL: all bands, the
 *                        original data type, CRS, nodata and mask; its bounds are exactly the
 *                        hit's footprint (the window in source pixels, fractional after a gsd:
 *                        the chip is then round(size) pixels whose geotransform spans the window);
 *   rank_RRR_tile_T.png  the 8-bit RGB view the model saw (tile_size pixels, or the scene's size
 *                        for scenes smaller than a tile);
 *   chips.geojson        one feature per hit (rank, tile_id, score, prob, lon, lat, scene, chip,
 *                        view; the footprint, null for scenes in pixel coordinates), written last.
 * RRR has at least three digits (as many as the largest rank needs), so names sort by rank.
 * Regions (rsclip_chips_write_regions) are written as region_RRR_tile_B.tif/.png, B the region's
 * best tile: the window of the region's extent in the scene of its best tile (the envelope of the
 * region's polygon in that scene's pixels, clipped to the scene), its view drawn with the scene's
 * bands and scaling (rsclip_tiler_render), and chips.geojson with the region's properties.
 *
 * Contact sheet (rsclip_sheet_write): one page, PNG or PDF (cairo), the hits in rank order as a
 * grid of cells (a thumbnail of the model's view, then "#rank  p=prob", "lon, lat" and the scene's
 * file name), the title (the query) above, and an overview map of the hit footprints (WGS84,
 * equirectangular at the hits' mean latitude, coloured by probability and numbered by rank).
 *
 * Outputs follow the rule of every rsclip writer (rsclip/export.h: rsclip_output_check and the
 * temporary folder renamed into place): an existing file is never replaced unless overwrite is
 * set (RSCLIP_ERR_EXISTS); a chips folder that exists and is not empty is refused unless overwrite
 * (RSCLIP_ERR_EXISTS; overwrite replaces the files of an earlier chips run by their names, removes
 * the ones this run did not write again, and touches nothing else in it); files are written into a
 * private folder beside the destination and renamed into place when complete (a failure leaves
 * no partial output); protected paths (the index, its -wal/-shm/.rsvec, the index files of a
 * protected folder, and the folder itself as a chips folder) are never written.
 *
 * Web map (rsclip_imagery_xyz): the scenes warped to EPSG:3857 into the tile z/x/y of the usual
 * XYZ (Google/OSM) scheme, scaled as indexed, composited in scene-id order (transparent where no
 * scene has valid pixels).
 *
 * Threads: one handle may be used from any number of threads at once (a server's pool). It keeps
 * a pool of opened scenes (each used by one thread at a time; at most params.max_open idle) and
 * one index connection behind a mutex.
 */
#ifndef RSCLIP_RENDER_H
#define RSCLIP_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "rsclip/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest web map zoom drawn (about 1 cm per pixel at the equator). */
#define RSCLIP_XYZ_MAX_ZOOM 24

typedef struct rsclip_imagery rsclip_imagery;

typedef struct rsclip_imagery_params {
    int max_open; /* opened scenes kept idle for reuse; 0 (default) = 32 */
} rsclip_imagery_params;

rsclip_imagery_params rsclip_imagery_default_params(void);

/* Open the scenes of an index file or a sharded index folder (read-only). Scene files are opened
 * when first drawn, not here. *out: rsclip_imagery_close. */
int rsclip_imagery_open(const char *index_path, const rsclip_imagery_params *params,
                        rsclip_imagery **out);
void rsclip_imagery_close(rsclip_imagery *im); /* NULL-safe */

/* Number of scenes, and the WGS84 box {west, south, east, north} of those with a CRS (0 when
 * none has one; box may be NULL). */
int rsclip_imagery_scene_count(const rsclip_imagery *im);
int rsclip_imagery_extent(const rsclip_imagery *im, double box[4]);

/* The 8-bit RGB view the model saw of a tile (by id) or of a hit (its scene_id and grid_window):
 * *rgb is a new [*h][*w][3] buffer (rsclip_free). Errors name the index, the scene or the tile:
 * RSCLIP_ERR_NOT_FOUND (no such tile or scene in the index), RSCLIP_ERR_IO (the scene's file is
 * gone), the tiler's errors (a file that changed: a window outside it is RSCLIP_ERR_FORMAT). */
int rsclip_imagery_tile_rgb(rsclip_imagery *im, int64_t tile_id, uint8_t **rgb, int *w, int *h);
int rsclip_imagery_hit_rgb(rsclip_imagery *im, const rsclip_hit *hit, uint8_t **rgb, int *w,
                           int *h);

/* Draw the web map tile z/x/y (0 <= z <= RSCLIP_XYZ_MAX_ZOOM, 0 <= x, y < 2^z) at size x size
 * pixels (1..1024) into rgba (size * size * 4 bytes): RSCLIP_ERR_INVALID_ARG outside those
 * ranges. *n_drawn (may be NULL): scenes drawn into it. A scene that cannot be drawn (file gone) is
 * left out with a warning in the log, once per scene. */
int rsclip_imagery_xyz(rsclip_imagery *im, int z, int x, int y, int size, uint8_t *rgba,
                       size_t rgba_size, int *n_drawn);

/* Encode pixels as PNG (GDAL's PNG driver, zlib level 1: made on request, so fast rather than
 * smallest): channels 3 (RGB) or 4 (RGBA, straight alpha; a picture without transparent pixels is
 * written as RGB), rows of w * channels bytes. *png: a new buffer of *n bytes (rsclip_free). */
int rsclip_png_encode(const uint8_t *px, int w, int h, int channels, uint8_t **png, size_t *n);

/* ---- chips ----------------------------------------------------------------------------------- */

typedef struct rsclip_chips_params {
    int overwrite;                      /* 1: replace an earlier chips run in the folder */
    const char *const *protected_paths; /* never written (the index being searched) */
    int n_protected;
} rsclip_chips_params;

rsclip_chips_params rsclip_chips_default_params(void);

/* Would rsclip_chips_write accept dir (missing, empty, or with overwrite; not protected)? Lets a
 * caller refuse before a search. RSCLIP_OK or the error the write would give. */
int rsclip_chips_check(const char *dir, const rsclip_chips_params *params);

/* Write the chips of n hits into dir (created when missing; see above). */
int rsclip_chips_write(rsclip_imagery *im, const rsclip_hit *hits, int n, const char *dir,
                       const rsclip_chips_params *params);

/* Write the chips of n regions (rsclip_regions_merge of hits[0..n_hits)) into dir. */
int rsclip_chips_write_regions(rsclip_imagery *im, const rsclip_region *regions, int n,
                               const rsclip_hit *hits, int n_hits, const char *dir,
                               const rsclip_chips_params *params);

/* ---- contact sheet --------------------------------------------------------------------------- */

typedef struct rsclip_sheet_params {
    const char *title;  /* the query, shown on top; NULL: none */
    const char *format; /* "png" or "pdf"; NULL: from the file's extension */
    int columns;        /* cells per row; 0 (default) = min(5, hits) */
    int thumb;          /* thumbnail side in pixels (PDF: points); 0 (default) = 192; 64..1024 */
    int overwrite;      /* 1: replace an existing file */
    const char *const *protected_paths;
    int n_protected;
} rsclip_sheet_params;

rsclip_sheet_params rsclip_sheet_default_params(void);

/* The page a sheet of n cells takes (pixels, or points for PDF), and where cell i lies (its
 * thumbnail's top-left corner): what rsclip_sheet_write draws. */
typedef struct rsclip_sheet_layout {
    int width, height; /* page */
    int columns, rows;
    int cell_w, cell_h;             /* one cell: thumbnail plus three lines of text */
    int thumb;                      /* thumbnail side */
    int grid_x, grid_y;             /* top-left corner of cell 0 */
    int map_x, map_y, map_w, map_h; /* the overview map */
} rsclip_sheet_layout;

int rsclip_sheet_layout_for(int n, const rsclip_sheet_params *params, rsclip_sheet_layout *out);

/* Would rsclip_sheet_write accept path (format known, not protected, not there unless
 * overwrite)? RSCLIP_OK or the error the write would give. */
int rsclip_sheet_check(const char *path, const rsclip_sheet_params *params);

/* Write a contact sheet of n hits (n >= 1) to path. */
int rsclip_sheet_write(rsclip_imagery *im, const rsclip_hit *hits, int n, const char *path,
                       const rsclip_sheet_params *params);

/* The same for regions: one cell per region (its view, "#region  p=max_prob", centre, tiles). */
int rsclip_sheet_write_regions(rsclip_imagery *im, const rsclip_region *regions, int n,
                               const rsclip_hit *hits, int n_hits, const char *path,
                               const rsclip_sheet_params *params);

#ifdef __cplusplus
}
#endif
#endif
