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
    int precision;     /* text encoder's rsclip_precision (rsclip/model.h); 0 = auto */
} rsclip_session_params;

rsclip_session_params rsclip_session_default_params(void);

typedef struct rsclip_session rsclip_session;

/* Open an index for querying. params may be NULL. Fails if the file is not an rsclip index or has
 * no model bound yet. The model itself is loaded lazily (first text or image query). */
int rsclip_session_open(const char *index_path, const rsclip_session_params *params,
                        rsclip_session **out);
void rsclip_session_close(rsclip_session *s); /* NULL-safe */

/* Number of indexed tiles (vectors) and the embedding dimension. */
size_t rsclip_session_count(const rsclip_session *s);
int rsclip_session_dim(const rsclip_session *s);
/* The index handle (owned by the session; rsclip/index.h). */
struct rsclip_index *rsclip_session_index(rsclip_session *s);

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
    int64_t scene_id;       /* > 0: only this scene */
} rsclip_query;

rsclip_query rsclip_query_default(void);

typedef struct rsclip_results {
    int n;
    rsclip_hit *hits; /* [n], ranked; strings and footprints owned by the results */
} rsclip_results;

int rsclip_session_search(rsclip_session *s, const rsclip_query *q, rsclip_results **out);
void rsclip_results_free(rsclip_results *r); /* NULL-safe */

/* Score every tile of one scene for a query (heatmaps): *probs and *tile_ids are new arrays of
 * *n entries (rsclip_free), in tile-id order; probabilities from the int8 codes (within ~1e-3 of
 * the exact ones). k, min_prob and spatial filters of q are ignored. */
int rsclip_session_scene_probs(rsclip_session *s, const rsclip_query *q, int64_t scene_id,
                               int64_t **tile_ids, float **probs, size_t *n);

/* Read an area of interest from any OGR vector file: the union of its (multi)polygons,
 * reprojected to WGS84, as WKT (*wkt: rsclip_free). Errors name the file. */
int rsclip_aoi_read(const char *path, char **wkt);

#ifdef __cplusplus
}
#endif
#endif
