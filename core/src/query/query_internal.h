/* Private to the query module: the session (query.c) and the filters of a query (filter.c). */
#ifndef RSCLIP_QUERY_INTERNAL_H
#define RSCLIP_QUERY_INTERNAL_H

#include "base/base.h"
#include "rsclip/index.h"
#include "rsclip/model.h"
#include "rsclip/query.h"
#include "rsclip/search.h"
#include "rsclip/time.h"

#include <stddef.h>
#include <stdint.h>

/* One index file of the session's set (the file itself, or a part of a sharded folder). */
typedef struct rsclip__part {
    rsclip_index *idx; /* owned by the set */
    const char *path;
    rsclip_index_info info;
    rsclip_vecset *vs;
} rsclip__part;

struct rsclip_session {
    char *path;
    rsclip_index_set *set;
    int n_parts;
    rsclip__part *parts;
    rsclip_index_info info; /* over all parts (rsclip_index_set_info) */
    int have_calibration;
    float logit_scale, logit_bias;
    rsclip_session_params params;
    char *model_name; /* params.model or the index's model id */
    rsclip_model *model;
    rsclip_encoder *enc;
    int batch_hint; /* most texts one call encodes in this search (1, or its negatives) */
    int n_encodes;  /* encode calls so far (the first one runs on an in-place encoder) */
    int in_place;   /* s->enc reads the model's weights in place (no packed copy) */
};

/* Spatial/scene filters as an allow-list of tile ids (NULL list = no filter), and what each
 * filter let through alone (to say why a search found nothing). */
typedef struct rsclip__allow_list {
    int active;
    int64_t *ids;
    size_t n;
    size_t n_bbox, n_aoi, n_scene; /* tiles meeting the bbox / the AOI / of the scene */
    size_t n_time;                 /* tiles of scenes whose time meets after/before */
    size_t n_untimed;              /* scenes left out by a time filter for having no time */
    double aoi_env[4];             /* the AOI's envelope: west, south, east, north */
} rsclip__allow_list;

/* The rules of rsclip_query_check on what is asked (kind, texts, template, negatives, examples),
 * without those on k, min_prob, filters and time. */
int rsclip__query_check_what(const rsclip_query *q);

/* RSCLIP_ERR_NOT_FOUND ("no such scene") when the index has no scene scene_id. */
int rsclip__query_check_scene(rsclip_session *s, int64_t scene_id);

/* The allow list of q's filters over one part (al->ids: rsclip_free). */
int rsclip__query_build_allow(rsclip_session *s, int part, const rsclip_query *q,
                              rsclip__allow_list *al);

/* The time window of q's after/before (open sides INT64_MIN/MAX); 0 when q has neither,
 * 1 when it has one, a negative status for text that is not a time. */
int rsclip__query_time_window(const rsclip_query *q, rsclip_time *w);

/* query_time.c: keep, of n ranked hits, those no later hit of the same place (footprints
 * overlapping by a tenth of the smaller one) supersedes, the first k of them renumbered;
 * *n_dropped: how many were superseded. Returns the count kept. */
int rsclip__latest_filter(rsclip_hit *hits, int n, int k, int *n_dropped);

/* The query vectors of q, normalised: *qv [(1 + *n_neg) x dim] (free()): the query (text, tile,
 * point, image, like tiles), then the negative texts and unlike tiles; the model loaded when
 * the calibration needs it. */
int rsclip__query_vectors(rsclip_session *s, const rsclip_query *q, float **qv, int *n_neg);

/* A tile of a part with a ranking score. */
typedef struct rsclip__tile_ref {
    int64_t id;
    int part;
    float score;
} rsclip__tile_ref;

/* Results (hits ranked 1..n in the order given, details as a search gives them, prob =
 * SigLIP's probability of the score) for tiles of the session. */
int rsclip__results_of(rsclip_session *s, const rsclip__tile_ref *t, int n, rsclip_results **out);

/* Vectors in the session (all parts). */
size_t rsclip__session_vectors(const rsclip_session *s);

/* The .rsvec cache is checked block by block as scans first read it (rsclip/search.h). When rc is
 * a scan of part p failing on a damaged block, rebuild that part's vectors from its index (the
 * source of truth; the cache is rewritten where it can be) and return the status of that (OK:
 * the caller scans again); any other rc is returned as it is. Uses the part's index handle: call
 * it from the thread that searches the part. */
int rsclip__part_repair(rsclip_session *s, int p, int rc);

/* query.c, for the search (query_search.c): the query vector of q (text, tile, point or image),
 * normalised: out [dim]; texts through the template; the model loaded on first need (towers:
 * RSCLIP_MODEL_* bits, 0 = any); SigLIP's probability of a cosine; the clock of the timing log. */
int rsclip__query_vector(rsclip_session *s, const rsclip_query *q, float *out);
int rsclip__embed_texts(rsclip_session *s, const char *tmpl, const char *const *texts, int n,
                        float *out);
int rsclip__need_model(rsclip_session *s, int towers);
float rsclip__prob_of(const rsclip_session *s, float cosine);
double rsclip__now_ms(void);

/* The sentence of rsclip_results.why_empty for a search that found nothing: n_hits tiles
 * ranked, n_below of them under q->min_prob (the best with best_below). NULL on no memory. */
char *rsclip__query_explain_empty(rsclip_session *s, const rsclip_query *q,
                                  const rsclip__allow_list *al, int n_hits, int n_below,
                                  float best_below);

#endif
