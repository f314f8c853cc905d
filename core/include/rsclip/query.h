/*
 * rsclip/query.h -- queries against an index: the glue of index, model and search that the CLI
 * and the GDAL plugin share.
 *
 * A session is one open index (read-only), its vectors in memory (int8 codes mapped from the
 * derived cache INDEX.rsvec, rebuilt from the index whenever it is stale) and, loaded on first
 * need, the model the index was built with. A query is a text (through a prompt template), a tile
 * of the index, a point, or an image file, with optional negative texts and spatial filters; the
 * result is a ranked list of hits with scene, pixel window, WGS84 footprint, cosine score and
 * SigLIP probability.
 *
 *     rsclip_session *s;
 *     if (rsclip_session_open("city.gpkg", NULL, &s) != RSCLIP_OK) ...
 *     rsclip_query q = rsclip_query_default();
 *     q.text = "solar farms";
 *     q.k = 20;
 *     rsclip_results *r;
 *     if (rsclip_session_search(s, &q, &r) == RSCLIP_OK) {
 *         for (int i = 0; i < r->n; i++)
 *             printf("%d %.3f %s\n", r->hits[i].rank, r->hits[i].prob, r->hits[i].scene);
 *         rsclip_results_free(r);
 *     }
 *     rsclip_session_close(s);
 *
 * Scores: cosine of L2-normalised embeddings; probability = sigmoid(cos * exp(logit_scale) +
 * logit_bias), SigLIP's own calibration (the index records logit_scale/logit_bias, so queries by
 * example need no model weights). With negatives the ranking score is
 * cos(q, v) - 0.5 * max_j cos(neg_j, v) (see rsclip/search.h) and prob stays the positive's.
 *
 * Threading: a session is used by one thread at a time (it owns one SQLite connection and one
 * encoder); open one session per thread.
 */
#ifndef RSCLIP_QUERY_H
#define RSCLIP_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "rsclip/export.h"
#include "rsclip/index.h"
#include "rsclip/model.h"
#include "rsclip/time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The prompt template used when none is given: Git-RSCLIP's model card phrasing. */
#define RSCLIP_DEFAULT_TEMPLATE "a remote sensing image of {}"

/* The prompt for a text: tmpl with every "{}" replaced by text (NULL tmpl: the default template).
 * A new string (rsclip_free); NULL with RSCLIP_ERR_INVALID_ARG when tmpl has no "{}", or on
 * RSCLIP_ERR_NOMEM. */
char *rsclip_prompt_format(const char *tmpl, const char *text);

typedef struct rsclip_session_params {
    const char *model; /* model folder / name / repo id; NULL: the one recorded in the index */
    int n_threads;     /* encoder and scan threads; 0 = all cores */
    int use_cache;     /* map (and rebuild when stale) INDEX.rsvec; default 1. With 0 the
                          vectors are read from the index on every open */
    rsclip_precision precision; /* the text encoder's; 0 = RSCLIP_PRECISION_AUTO */
    /* Text encoder's device: NULL or "cpu" (default), "cuda", "cuda:N" (rsclip_device_parse). */
    const char *device;
} rsclip_session_params;

rsclip_session_params rsclip_session_default_params(void);

typedef struct rsclip_session rsclip_session;

/* Open an index for querying: one index file, or a folder of parts of a sharded index
 * (rsclip_index_set_open; its parts are searched in parallel and k is global: the hits are those
 * of the file merged from the parts, in the same order). params may be NULL. Fails if the file is
 * not an rsclip index or has no model bound yet, or the parts of a folder do not belong together.
 * The model itself is loaded lazily (first text or image query). */
int rsclip_session_open(const char *index_path, const rsclip_session_params *params,
                        rsclip_session **out);
void rsclip_session_close(rsclip_session *s); /* NULL-safe */

/* Number of indexed tiles (vectors) and the embedding dimension. */
size_t rsclip_session_count(const rsclip_session *s);
int rsclip_session_dim(const rsclip_session *s);
/* The index handle (owned by the session; rsclip/index.h): the first part of a sharded
 * folder. Code that must see every tile uses rsclip_session_set or the session functions below. */
struct rsclip_index *rsclip_session_index(rsclip_session *s);
/* The index set (one file, or the parts of a sharded folder; owned by the session). */
rsclip_index_set *rsclip_session_set(rsclip_session *s);
/* A scene over all parts: its description, with tile counts summed over the parts that hold it
 * (*out: rsclip_free; NOT_FOUND naming the index if no part has it). */
int rsclip_session_get_scene(rsclip_session *s, int64_t scene_id, rsclip_scene_info **out);
/* The tiles of a scene over all parts, in id order: *ids and (if windows is not NULL) *windows
 * are new arrays of *n entries (rsclip_free). Windows are checked against the scene. */
int rsclip_session_scene_tiles(rsclip_session *s, int64_t scene_id, int64_t **ids,
                               rsclip_tile_window **windows, size_t *n);

typedef struct rsclip_query {
    const char *text;             /* positive text, or NULL for a query by example */
    const char *template_str;     /* NULL: RSCLIP_DEFAULT_TEMPLATE; "{}" uses the text as is */
    const char *const *negatives; /* texts to push down (same template) */
    int n_negatives;
    int64_t like_tile;  /* > 0: the embedding of this tile id is the query */
    int has_like_point; /* 1: the tile containing (like_lon, like_lat) is the query */
    double like_lon, like_lat;
    const char *like_image; /* an image file (any GDAL raster, 8-bit) is the query */
    int k;                  /* hits wanted; default 20 */
    float min_prob;         /* drop hits below this probability; default 0 */
    int has_bbox;           /* 1: only tiles whose footprint meets bbox */
    double bbox[4];         /* west, south, east, north (WGS84) */
    const char *aoi_wkt;    /* only tiles whose footprint meets this WGS84 (multi)polygon */
    int64_t scene_id;       /* > 0: only this scene (RSCLIP_ERR_NOT_FOUND if the index has no
                               such scene) */
    /* Time (rsclip/time.h text; NULL: no bound): only scenes whose time meets [after, before],
     * both periods included ("2019" is all of 2019). A scene without a time is left out when
     * either is given (rsclip_results.note says how many). */
    const char *after, *before;
    int latest; /* 1: among the hits, only the most recent tile at each place (footprints that
                   overlap: the later scene's tile wins; tiles without a time count as oldest) */
    /* Examples (the "more like this" / "not this" of a labelling loop): tiles of the index. */
    const int64_t *like_tiles;   /* more positive examples, with or instead of the query above */
    int n_like_tiles;            /* 0..RSCLIP_QUERY_MAX_EXAMPLES */
    const int64_t *unlike_tiles; /* negative examples, pushed down as negative texts are */
    int n_unlike_tiles;          /* 0..RSCLIP_QUERY_MAX_EXAMPLES; with the negative texts at most
                                    RSCLIP_SEARCH_MAX_NEGATIVES */
} rsclip_query;

/* Examples. The query vector is the L2-normalised mean of the positives, each normalised and
 * weighted alike: the query itself (text, tile, point or image; optional when like_tiles are
 * given) and the embedding of every like tile. The negatives are the negative texts and the
 * embeddings of the unlike tiles: tiles rank by cos(q, v) - 0.5 * max cos(neg, v) and prob is the
 * combined query's. A like or unlike tile the index does not hold is RSCLIP_ERR_NOT_FOUND naming
 * it. Heatmaps and scene probabilities take the like tiles (negatives do not apply there). */
#define RSCLIP_QUERY_MAX_EXAMPLES 64

/* The most hits one query may ask for (k): the CLI's -k, the plugin's TOP_K and the server's
 * --max-k share it. */
#define RSCLIP_QUERY_MAX_K 1000000

rsclip_query rsclip_query_default(void);

/* Every rule a query must meet, without opening anything: a query, and one of its own at most
 * (text, like_tile, point or image; like tiles may add to it or stand alone), a text and
 * negatives with something besides white space, a template with "{}", k in
 * 1..RSCLIP_QUERY_MAX_K, min_prob in 0..1, counts in range, a point and a bbox in WGS84 (west <=
 * east, south <= north), after/before that parse and are in order. RSCLIP_OK or
 * RSCLIP_ERR_INVALID_ARG with the reason. rsclip_session_search runs it first; the CLI, the
 * plugin and the server run it to refuse a query before opening an index, and only convert
 * their inputs. */
int rsclip_query_check(const rsclip_query *q);

typedef struct rsclip_results {
    int n;
    rsclip_hit *hits; /* [n], ranked; strings and footprints owned by the results */
    /* When n is 0, why (NULL otherwise), as one sentence owned by the results: the bbox or area
     * of interest lies outside the index extent (and, when swapping lon and lat would meet
     * tiles, says so) or between its scenes; the scene has no tiles; the filters together leave
     * no tile; min_prob dropped every hit (with the highest probability found); the index holds
     * no tiles. */
    const char *why_empty;
    /* A remark on the hits for people (NULL if none), e.g. how many scenes without a time a time
     * filter left out, or how many hits --latest dropped. */
    const char *note;
} rsclip_results;

int rsclip_session_search(rsclip_session *s, const rsclip_query *q, rsclip_results **out);
void rsclip_results_free(rsclip_results *r); /* NULL-safe */

/* ---- change queries -------------------------------------------------------------------------
 * "Where did X appear between FROM and TO?" Places seen in both periods, ranked by the rise of
 * the probability from the earlier to the later coverage of the same ground. The later tiles
 * are those of scenes whose time meets `to` (and q's bbox, area of interest, scene); the earlier
 * coverage of one is every tile of a scene whose time meets `from` that meets its footprint,
 * weighted by the area it shares with it (scenes of different dates rarely share a grid), and
 * a place counts as seen in both when those tiles cover at least half of the later footprint.
 * Probabilities come from the exact vectors; with negatives (texts or unlike tiles) both sides
 * are scored as a search ranks (cos - 0.5 * the strongest negative's cos) and the probabilities
 * are those of that score. q->min_prob applies to the later tile; q->after, before and latest
 * must be unset. Tiles in pixel coordinates have no ground to compare and are skipped. */

typedef struct rsclip_changes {
    int n;
    rsclip_change *changes; /* [n], best rise first (ties: later tile id) */
    const char *why_empty;  /* when n is 0: why, one sentence */
    const char *note;       /* how many later tiles were examined, how many had no earlier
                               coverage, whether the walk was bounded */
} rsclip_changes;

/* Parse "FROM/TO": two times of rsclip/time.h ("2019/2023": all of 2019, all of 2023), or two
 * spans with three slashes ("2019-01/2019-06/2023-01/2023-06"). Both periods need both ends, and
 * FROM must end before TO begins. RSCLIP_ERR_INVALID_ARG naming the text otherwise. */
int rsclip_change_periods(const char *text, rsclip_time *from, rsclip_time *to);

/* Every rule a change query must meet (rsclip_session_change runs it first): those of
 * rsclip_query_check, no after, before or latest (the two periods replace them), and from ending
 * before to begins. RSCLIP_OK or RSCLIP_ERR_INVALID_ARG with the reason. */
int rsclip_change_check(const rsclip_query *q, const rsclip_time *from, const rsclip_time *to);

int rsclip_session_change(rsclip_session *s, const rsclip_query *q, const rsclip_time *from,
                          const rsclip_time *to, rsclip_changes **out);
void rsclip_changes_free(rsclip_changes *c); /* NULL-safe */

/* The later tiles of c dissolved into regions (rsclip_regions_merge over the changes' `to` hits),
 * each with has_rise set and the largest and mean rise of its changes (rsclip_export_regions
 * writes them as max_rise and mean_rise). *out: rsclip_regions_free. */
int rsclip_change_regions(const rsclip_changes *c, rsclip_region **out, int *n_out);

/* Score every tile of one scene for a query (heatmaps): *probs and *tile_ids are new arrays of
 * *n entries (rsclip_free), in tile-id order; probabilities from the int8 codes (within ~1e-3 of
 * the exact ones). k, min_prob and spatial filters of q are ignored; the rules of
 * rsclip_query_check on the query itself (kind, texts, template) apply. RSCLIP_ERR_NOT_FOUND when
 * the index has no scene scene_id. */
int rsclip_session_scene_probs(rsclip_session *s, const rsclip_query *q, int64_t scene_id,
                               int64_t **tile_ids, float **probs, size_t *n);

/* ---- heatmaps -------------------------------------------------------------------------------- */

/* A scene's query heatmap: one cell per tiling step, the probability of the query per tile.
 *
 * Grid (per axis; E = the scene's extent, T = its tile size, S = the step, all in scene pixels):
 *  - S is params.step, else the stride the index records for the scene, else (schema-1 rows) the
 *    greatest common divisor of the offsets of the interior tiles, else (one or two tiles per
 *    axis) T. T is the recorded tile size, else the largest stored window.
 *  - E <= T (one tile spans the axis): one cell, the whole extent.
 *  - Otherwise cells are S pixels, centred on the tiles of the tiler's regular grid: the grid
 *    starts at a = max(0, (T - S) / 2) and holds the floor((E - 2a) / S) whole cells that fit in
 *    the scene (one cell of E - 2a when not even one fits): no cell reaches outside the scene.
 *    Where the scene is not a whole number of steps the tiler shifts its last column (row) of
 *    tiles back to end at the raster edge; the strip (narrower than S) past the last whole cell
 *    has no cell of its own, and that shifted tile counts in the last cell.
 *  - A tile counts in the cell that holds its centre, clamped to the grid; a cell holds the
 *    largest probability of its tiles, NaN where none. On an index tiled with stride S every tile
 *    but the shifted last ones has a cell of its own, centred on the tile's centre.
 * Values: SigLIP probabilities of the positive query, from the int8 codes (within ~1e-3 of the
 * exact ones); negatives, k, min_prob and the spatial filters of q do not apply.
 *
 * Trust: every stored window is checked against the scene before it is used: a window outside
 * the scene, an empty one, a scene without pixels or with a non-finite geotransform fail with
 * RSCLIP_ERR_FORMAT naming the index, the scene and the tile. The grid size comes from the
 * scene's extent alone and is capped (params.max_cells, RSCLIP_ERR_UNSUPPORTED beyond it), so
 * neither a hostile index nor a tiny step can make it allocate without bound. */

/* Default cap on the cells of one heatmap: 2^25 cells, 128 MiB of float32. */
#define RSCLIP_HEATMAP_MAX_CELLS ((int64_t)1 << 25)

typedef struct rsclip_heatmap_params {
    int step;          /* cell size S in scene pixels; 0 (default) = the scene's stride */
    int64_t max_cells; /* refuse a larger grid; 0 (default) = RSCLIP_HEATMAP_MAX_CELLS */
} rsclip_heatmap_params;

rsclip_heatmap_params rsclip_heatmap_default_params(void);

typedef struct rsclip_heatmap {
    int64_t scene_id;
    const char *scene;      /* scene path */
    const char *crs_wkt;    /* scene CRS as stored ("" when none) */
    int width, height;      /* cells */
    double geotransform[6]; /* GDAL geotransform of the grid in the scene CRS */
    double origin[2];       /* scene pixel (x, y) of the grid's top-left corner */
    double cell[2];         /* cell width and height in scene pixels */
    int step, tile_size;    /* S and T above */
    const char *step_from;  /* where S came from: "params", "index", "tile offsets", "tile size" */
    int64_t n_tiles;        /* tiles with a value (tiles not yet embedded have none) */
    float *values;          /* [height][width] row-major; NaN where no tile */
} rsclip_heatmap;

/* Compute the heatmap of scene_id for q (a text, tile, point or image query). params may be NULL.
 * *out: rsclip_heatmap_free. NOT_FOUND when the scene does not exist. */
int rsclip_session_heatmap(rsclip_session *s, const rsclip_query *q, int64_t scene_id,
                           const rsclip_heatmap_params *params, rsclip_heatmap **out);
void rsclip_heatmap_free(rsclip_heatmap *h); /* NULL-safe */

/* Read an area of interest from any OGR vector file: the union of its (multi)polygons,
 * reprojected to WGS84, as WKT (*wkt: rsclip_free). Errors name the file. */
int rsclip_aoi_read(const char *path, char **wkt);

#ifdef __cplusplus
}
#endif
#endif
