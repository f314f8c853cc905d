/* Queries against an index: text / example / image queries, hits (the filters: filter.c). */
#include "query/query_internal.h"
#include "rsclip/hub.h"
#include "rsclip/imageio.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Below this many vectors the set keeps its float32 copy and every search is exact. */
#define QUERY_EXACT_BELOW 32768

/* Phase times of a search go to the log at RSCLIP_LOG_INFO (`RSCLIP_LOG=info rsclip search ...`):
 * one line per phase, "search timing: <phase> <ms> ms". */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

rsclip_session_params rsclip_session_default_params(void) {
    rsclip_session_params p;
    memset(&p, 0, sizeof p);
    p.use_cache = 1;
    return p;
}

rsclip_query rsclip_query_default(void) {
    rsclip_query q;
    memset(&q, 0, sizeof q);
    q.k = 20;
    return q;
}

size_t rsclip_session_count(const rsclip_session *s) {
    return s && s->vs ? rsclip_vecset_count(s->vs) : 0;
}

int rsclip_session_dim(const rsclip_session *s) {
    return s ? s->info.embed_dim : 0;
}

struct rsclip_index *rsclip_session_index(rsclip_session *s) {
    return s ? s->idx : NULL;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* Identifies the index's content: any committed write changes updated_at or the counts. */
static uint64_t content_stamp(const rsclip_index_info *in) {
    uint64_t h = 1469598103934665603ULL;
    h = fnv1a(h, &in->n_embeddings, sizeof in->n_embeddings);
    h = fnv1a(h, &in->n_tiles, sizeof in->n_tiles);
    h = fnv1a(h, &in->n_scenes, sizeof in->n_scenes);
    h = fnv1a(h, &in->embed_dim, sizeof in->embed_dim);
    h = fnv1a(h, in->updated_at, strlen(in->updated_at));
    h = fnv1a(h, in->model_fingerprint, strlen(in->model_fingerprint));
    return h ? h : 1;
}

static int build_vecset(rsclip_session *s, rsclip_vecset **out) {
    rsclip_embeddings *e = NULL;
    int rc = rsclip_index_load_embeddings(s->idx, &e);
    if (rc) return rc;
    rsclip_vecset_params vp = rsclip_vecset_default_params();
    vp.keep_floats = e->n <= QUERY_EXACT_BELOW;
    vp.capacity_hint = e->n;
    rsclip_vecset *vs = NULL;
    rc = rsclip_vecset_new(s->info.embed_dim, &vp, &vs);
    if (!rc && e->n) rc = rsclip_vecset_add(vs, e->n, e->ids, e->vecs);
    if (!rc) rc = rsclip_vecset_finalize(vs);
    rsclip_embeddings_free(e);
    if (rc) {
        rsclip_vecset_free(vs);
        return rc;
    }
    *out = vs;
    return RSCLIP_OK;
}

static int load_vectors_impl(rsclip_session *s, const char **how) {
    *how = "from the index (no cache)";
    if (!s->params.use_cache) return build_vecset(s, &s->vs);
    uint64_t stamp = content_stamp(&s->info);
    size_t n = strlen(s->path);
    char *cache = malloc(n + 7);
    if (!cache) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    memcpy(cache, s->path, n);
    memcpy(cache + n, ".rsvec", 7);
    rsclip_vecset *vs = NULL;
    if (access(cache, R_OK) == 0 && rsclip_vecset_load(cache, &vs) == RSCLIP_OK) {
        if (rsclip_vecset_source_stamp(vs) == stamp && rsclip_vecset_dim(vs) == s->info.embed_dim &&
            (int64_t)rsclip_vecset_count(vs) == s->info.n_embeddings) {
            *how = "from the .rsvec cache";
            s->vs = vs;
            free(cache);
            return RSCLIP_OK;
        }
        rsclip_vecset_free(vs);
        vs = NULL;
    }
    rsclip_clear_error();
    *how = "from the index (cache rebuilt)";
    int rc = build_vecset(s, &vs);
    if (rc) {
        free(cache);
        return rc;
    }
    /* The cache is derived data: failing to write it (read-only folder, full disk) only costs
     * speed next time. */
    if (rsclip_vecset_save(vs, cache, stamp) != RSCLIP_OK)
        rsclip__log(RSCLIP_LOG_DEBUG, "%s: vector cache not written: %s", cache,
                    rsclip_last_error());
    rsclip_clear_error();
    free(cache);
    s->vs = vs;
    return RSCLIP_OK;
}

static int load_vectors(rsclip_session *s) {
    double t0 = now_ms();
    const char *how = "";
    int rc = load_vectors_impl(s, &how);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "search timing: vector load %.1f ms (%zu vectors %s)",
                    now_ms() - t0, rsclip_vecset_count(s->vs), how);
    return rc;
}

int rsclip_session_open(const char *index_path, const rsclip_session_params *params,
                        rsclip_session **out) {
    if (!out || !index_path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_session_open: no index path");
    *out = NULL;
    rsclip_session *s = calloc(1, sizeof *s);
    if (!s) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    s->params = params ? *params : rsclip_session_default_params();
    s->path = strdup(index_path);
    int rc = s->path ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    double t0 = now_ms();
    if (!rc) rc = rsclip_index_open(index_path, RSCLIP_INDEX_READONLY, &s->idx);
    if (!rc) rc = rsclip_index_get_info(s->idx, &s->info);
    if (!rc) rsclip__log(RSCLIP_LOG_INFO, "search timing: index open %.1f ms", now_ms() - t0);
    if (!rc && s->info.embed_dim <= 0)
        rc = rsclip__error(RSCLIP_ERR_NOT_FOUND,
                           "%s: the index holds no tiles yet (no model bound)", index_path);
    if (!rc) {
        char *a = NULL, *b = NULL;
        if (rsclip_index_get_meta(s->idx, "logit_scale", &a) == RSCLIP_OK &&
            rsclip_index_get_meta(s->idx, "logit_bias", &b) == RSCLIP_OK) {
            s->logit_scale = strtof(a, NULL);
            s->logit_bias = strtof(b, NULL);
            s->have_calibration = 1;
        }
        rsclip_free(a);
        rsclip_free(b);
        rsclip_clear_error();
        const char *name = s->params.model ? s->params.model : s->info.model_id;
        s->model_name = strdup(name);
        if (!s->model_name) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    }
    if (!rc) rc = load_vectors(s);
    if (rc) {
        rsclip_session_close(s);
        return rc;
    }
    *out = s;
    return RSCLIP_OK;
}

void rsclip_session_close(rsclip_session *s) {
    if (!s) return;
    rsclip_encoder_free(s->enc);
    rsclip_model_free(s->model);
    rsclip_vecset_free(s->vs);
    rsclip_index_close(s->idx);
    free(s->model_name);
    free(s->path);
    free(s);
}

/* A new encoder for s->model. When the encoder runs f32 (rsclip_precision_effective: asked for,
 * or what auto / bf16 run on this CPU), the session's first encode call gets an in-place one (f32
 * panels packed per product from the model's own weights: no copy of the tower, the fastest way to
 * encode one query in a process that then exits, e.g. a one-shot `rsclip search`); from the second
 * call on, the packed encoder (its one-time packing pays off over the queries that follow). Where
 * it runs bf16 it always packs: the query must be encoded as the index was. */
static int new_encoder(rsclip_session *s) {
    rsclip_encoder_free(s->enc);
    s->enc = NULL;
    double t0 = now_ms();
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    /* The arena is sized for max_batch vision-length inputs: a one-shot text query needs 1, and
     * every page of a bigger arena costs start-up time (~55 ms for 4 on the base model). */
    ep.max_batch = s->batch_hint < 1 ? 1 : s->batch_hint > 4 ? 4 : s->batch_hint;
    ep.n_threads = s->params.n_threads;
    ep.precision = (rsclip_precision)s->params.precision;
    ep.in_place =
        s->n_encodes == 0 && rsclip_precision_effective(ep.precision) == RSCLIP_PRECISION_F32;
    int rc = rsclip_encoder_new(s->model, &ep, &s->enc);
    if (rc) return rc;
    s->in_place = ep.in_place;
    rsclip__log(RSCLIP_LOG_INFO, "search timing: encoder setup %.1f ms (%s%s)", now_ms() - t0,
                rsclip_precision_name(rsclip_encoder_precision(s->enc)),
                ep.in_place ? ", weights in place" : ", packed weights");
    return RSCLIP_OK;
}

/* Load the index's model on first need, with the towers in `towers` (RSCLIP_MODEL_* bits; 0: any
 * loaded model will do, else the text tower), check it is the one the index was built with, and
 * have an encoder ready for the next encode call. A text query loads only the text tower; an
 * image query later reloads with both (the mapped F32 weights make that cheap). */
static int need_model(rsclip_session *s, int towers) {
    const int have = s->enc ? rsclip_model_towers(s->model) : 0;
    if (s->enc && (have & towers) == towers) {
        if (towers == 0 || !s->in_place || s->n_encodes == 0) return RSCLIP_OK;
        return new_encoder(s); /* a second encode: switch to the packed encoder */
    }
    rsclip_encoder_free(s->enc);
    s->enc = NULL;
    rsclip_model_free(s->model);
    s->model = NULL;
    double t0 = now_ms();
    char dir[4096];
    int rc = rsclip_hub_resolve(s->model_name, dir, sizeof dir);
    if (rc) return rc;
    rsclip_model_params mp = {0};
    mp.towers = (have | towers) ? (have | towers) : RSCLIP_MODEL_TEXT;
    rc = rsclip_model_load(dir, &mp, &s->model);
    if (rc) return rc;
    double t1 = now_ms();
    rsclip__log(RSCLIP_LOG_INFO, "search timing: model load %.1f ms (%s tower%s of %s)", t1 - t0,
                mp.towers == RSCLIP_MODEL_TEXT     ? "text"
                : mp.towers == RSCLIP_MODEL_VISION ? "vision"
                                                   : "text and vision",
                mp.towers == (RSCLIP_MODEL_TEXT | RSCLIP_MODEL_VISION) ? "s" : "", dir);
    const rsclip_model_info *mi = rsclip_model_get_info(s->model);
    rc = rsclip_index_check_model(s->idx, mi->fingerprint, mi->embed_dim);
    if (rc) return rc;
    if (!s->have_calibration) {
        s->logit_scale = mi->logit_scale;
        s->logit_bias = mi->logit_bias;
        s->have_calibration = 1;
    }
    return new_encoder(s);
}

static float prob_of(const rsclip_session *s, float cosine) {
    double z = (double)cosine * exp((double)s->logit_scale) + (double)s->logit_bias;
    return (float)(1.0 / (1.0 + exp(-z)));
}

char *rsclip_prompt_format(const char *tmpl, const char *text) {
    if (!tmpl) tmpl = RSCLIP_DEFAULT_TEMPLATE;
    if (!text) text = "";
    size_t n_holes = 0, tl = strlen(tmpl), xl = strlen(text), n;
    for (const char *p = strstr(tmpl, "{}"); p; p = strstr(p + 2, "{}")) n_holes++;
    if (!n_holes) {
        rsclip__error(RSCLIP_ERR_INVALID_ARG, "template '%s' has no {} where the text goes", tmpl);
        return NULL;
    }
    char *out = NULL;
    if (!rsclip__mul_size(n_holes, xl, &n) && !rsclip__add_size(n, tl + 1, &n)) out = malloc(n);
    if (!out) {
        rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char *o = out;
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, text, xl);
            o += xl;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* Embed texts through the template into out: [n, dim], L2-normalised. */
static int embed_texts(rsclip_session *s, const char *tmpl, const char *const *texts, int n,
                       float *out) {
    int rc = need_model(s, RSCLIP_MODEL_TEXT);
    if (rc) return rc;
    double t0 = now_ms();
    const rsclip_model_info *mi = rsclip_model_get_info(s->model);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)mi->text_ctx * (size_t)n);
    if (!ids) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        const char *p = texts[i];
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) {
            rc = rsclip__error(RSCLIP_ERR_INVALID_ARG, "empty query text");
            break;
        }
        char *full = rsclip_prompt_format(tmpl, texts[i]);
        if (!full) {
            rc = rsclip_last_status();
            break;
        }
        rc = rsclip_model_tokenize(s->model, full, -1, ids + (size_t)i * mi->text_ctx, NULL);
        free(full);
    }
    if (!rc) rc = rsclip_encode_texts(s->enc, n, ids, out, NULL);
    s->n_encodes++;
    free(ids);
    for (int i = 0; i < n && !rc; i++)
        rsclip_l2_normalize(out + (size_t)i * mi->embed_dim, mi->embed_dim);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "search timing: query encoding %.1f ms (%d text%s%s)",
                    now_ms() - t0, n, n == 1 ? "" : "s",
                    s->in_place ? "" : "; a packed encoder's first call packs the tower");
    return rc;
}

static int embed_image(rsclip_session *s, const char *path, float *out) {
    int rc = need_model(s, RSCLIP_MODEL_VISION);
    if (rc) return rc;
    const rsclip_model_info *mi = rsclip_model_get_info(s->model);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    rc = rsclip_image_read_rgb8(path, &rgb, &w, &h);
    if (rc) return rc;
    size_t npx = (size_t)3 * (size_t)mi->image_size * (size_t)mi->image_size;
    float *px = malloc(npx * sizeof(float));
    if (!px) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc) rc = rsclip_preprocess_rgb8(s->model, rgb, w, h, (size_t)w * 3, px);
    if (!rc) rc = rsclip_encode_images(s->enc, 1, px, out, NULL);
    s->n_encodes++;
    if (!rc) rsclip_l2_normalize(out, mi->embed_dim);
    free(px);
    rsclip_free(rgb);
    return rc;
}

/* The query vector of q (text, tile, point or image), normalised: out [dim]. */
static int query_vector(rsclip_session *s, const rsclip_query *q, float *out) {
    int n_kinds =
        (q->text != NULL) + (q->like_tile > 0) + (q->has_like_point != 0) + (q->like_image != NULL);
    if (n_kinds != 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "give exactly one query: a text, a tile id, a point or an image");
    if (q->text) return embed_texts(s, q->template_str, &q->text, 1, out);
    if (q->like_image) return embed_image(s, q->like_image, out);
    int64_t tile = q->like_tile;
    if (q->has_like_point) {
        int64_t *ids = NULL;
        size_t n = 0;
        int rc = rsclip_index_tiles_at(s->idx, q->like_lon, q->like_lat, &ids, &n);
        if (rc) return rc;
        if (n == 0) {
            rsclip_free(ids);
            return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no indexed tile contains %.7g,%.7g",
                                 s->path, q->like_lon, q->like_lat);
        }
        tile = ids[0];
        rsclip_free(ids);
    }
    int rc = rsclip_index_get_embeddings(s->idx, &tile, 1, out);
    if (rc == RSCLIP_ERR_NOT_FOUND)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no tile %lld in the index", s->path,
                             (long long)tile);
    return rc;
}

static int fetch_cb(void *user, size_t n, const int64_t *ids, float *out) {
    return rsclip_index_get_embeddings(user, ids, n, out);
}

/* Results own one block per hit: scene path and footprint. */
typedef struct hit_store {
    char *scene;
    double *footprint;
} hit_store;

struct results_impl {
    rsclip_results pub;
    hit_store *store;
    char *why; /* pub.why_empty */
};

void rsclip_results_free(rsclip_results *r) {
    if (!r) return;
    struct results_impl *ri = (struct results_impl *)r;
    for (int i = 0; i < r->n; i++) {
        free(ri->store[i].scene);
        free(ri->store[i].footprint);
    }
    free(ri->why);
    free(ri->store);
    free(r->hits);
    free(ri);
}

/* Scene paths by id, fetched once per search. */
static char *scene_path(rsclip_session *s, int64_t scene_id) {
    rsclip_scene_info *si = NULL;
    if (rsclip_index_get_scene(s->idx, scene_id, &si) != RSCLIP_OK) return NULL;
    char *p = strdup(si->path);
    rsclip_free(si);
    return p;
}

/* The details of the hits vh[0..n_hits) whose probability reaches q->min_prob, ranked, into ri;
 * *n_below hits were dropped by min_prob, the best of them with probability *best_below. */
static int fill_hits(rsclip_session *s, const rsclip_query *q, const rsclip_vecset_hit *vh,
                     int n_hits, struct results_impl *ri, int *n_below, float *best_below) {
    ri->pub.hits = calloc((size_t)(n_hits ? n_hits : 1), sizeof *ri->pub.hits);
    ri->store = calloc((size_t)(n_hits ? n_hits : 1), sizeof *ri->store);
    if (!ri->pub.hits || !ri->store) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    int rc = RSCLIP_OK;
    int64_t cached_scene = -1;
    char *cached_path = NULL;
    for (int i = 0; i < n_hits && !rc; i++) {
        float prob = prob_of(s, vh[i].cosine);
        if (prob < q->min_prob) {
            if ((*n_below)++ == 0 || prob > *best_below) *best_below = prob;
            continue;
        }
        rsclip_tile_info *t = NULL;
        rc = rsclip_index_get_tile(s->idx, vh[i].id, &t);
        if (rc) break;
        int j = ri->pub.n;
        rsclip_hit *h = &ri->pub.hits[j];
        hit_store *st = &ri->store[j];
        if (t->scene_id != cached_scene) {
            free(cached_path);
            cached_path = scene_path(s, t->scene_id);
            cached_scene = t->scene_id;
        }
        st->scene = strdup(cached_path ? cached_path : "");
        st->footprint = malloc(sizeof(double) * 2 * (t->n_footprint ? t->n_footprint : 1));
        if (!st->scene || !st->footprint) {
            rsclip_free(t);
            free(st->scene);
            free(st->footprint);
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            break;
        }
        if (t->n_footprint)
            memcpy(st->footprint, t->footprint, sizeof(double) * 2 * t->n_footprint);
        h->tile_id = vh[i].id;
        h->rank = j + 1;
        h->score = vh[i].score;
        h->prob = prob;
        h->lon = t->lon;
        h->lat = t->lat;
        h->scene = st->scene;
        h->scene_id = t->scene_id;
        /* the window a user cuts from the scene file: source pixels, also after a gsd */
        h->xoff = (int)floor(t->src_window[0] + 0.5);
        h->yoff = (int)floor(t->src_window[1] + 0.5);
        h->xsize = (int)floor(t->src_window[2] + 0.5);
        h->ysize = (int)floor(t->src_window[3] + 0.5);
        memcpy(h->src_window, t->src_window, sizeof h->src_window);
        h->grid_window[0] = t->window.xoff;
        h->grid_window[1] = t->window.yoff;
        h->grid_window[2] = t->window.xsize;
        h->grid_window[3] = t->window.ysize;
        h->has_lonlat = t->has_lonlat;
        memcpy(h->corners, t->corners, sizeof h->corners);
        h->footprint = t->n_footprint ? st->footprint : NULL;
        h->n_footprint = (int)t->n_footprint;
        ri->pub.n = j + 1;
        rsclip_free(t);
    }
    free(cached_path);
    return rc;
}

int rsclip_session_search(rsclip_session *s, const rsclip_query *q, rsclip_results **out) {
    if (!s || !q || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "search: no query");
    *out = NULL;
    if (q->k < 1) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "k must be at least 1");
    if (q->n_negatives < 0 || q->n_negatives > RSCLIP_SEARCH_MAX_NEGATIVES)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "at most %d negative queries",
                             RSCLIP_SEARCH_MAX_NEGATIVES);
    const int dim = s->info.embed_dim;
    float *qv = malloc(sizeof(float) * (size_t)dim * (size_t)(1 + q->n_negatives));
    rsclip_vecset_hit *vh = malloc(sizeof *vh * (size_t)q->k);
    struct results_impl *ri = calloc(1, sizeof *ri);
    rsclip__allow_list al;
    memset(&al, 0, sizeof al);
    int rc = (qv && vh && ri) ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    s->batch_hint = q->n_negatives > 0 ? q->n_negatives : 1;
    if (!rc) rc = query_vector(s, q, qv);
    if (!rc && q->n_negatives > 0)
        rc = embed_texts(s, q->template_str, q->negatives, q->n_negatives, qv + dim);
    if (!rc && !s->have_calibration) rc = need_model(s, 0);
    if (!rc) rc = rsclip__query_build_allow(s, q, &al);
    int n_hits = 0;
    if (!rc) {
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = q->k;
        sp.n_threads =
            s->params.n_threads > 0 ? s->params.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (sp.n_threads < 1) sp.n_threads = 1;
        sp.negatives = q->n_negatives ? qv + dim : NULL;
        sp.n_negatives = q->n_negatives;
        sp.fetch = fetch_cb;
        sp.fetch_user = s->idx;
        if (al.active) {
            sp.allow_ids = al.ids;
            sp.n_allow = al.n;
        }
        double t0 = now_ms();
        if (!al.active || al.n > 0) rc = rsclip_vecset_search(s->vs, qv, &sp, vh, &n_hits);
        if (!rc)
            rsclip__log(RSCLIP_LOG_INFO, "search timing: scan %.1f ms (%zu vectors, k %d)",
                        now_ms() - t0, al.active ? al.n : rsclip_vecset_count(s->vs), q->k);
    }
    double t_hits = now_ms();
    int n_below = 0;
    float best_below = 0;
    if (!rc) rc = fill_hits(s, q, vh, n_hits, ri, &n_below, &best_below);
    if (!rc && ri->pub.n == 0) {
        ri->why = rsclip__query_explain_empty(s, q, &al, n_hits, n_below, best_below);
        if (!ri->why) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        ri->pub.why_empty = ri->why;
    }
    free(qv);
    free(vh);
    rsclip_free(al.ids);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "search timing: hit details %.1f ms (%d hits)",
                    now_ms() - t_hits, ri->pub.n);
    if (rc) {
        rsclip_results_free(ri ? &ri->pub : NULL);
        return rc;
    }
    *out = &ri->pub;
    return RSCLIP_OK;
}

int rsclip_session_scene_probs(rsclip_session *s, const rsclip_query *q, int64_t scene_id,
                               int64_t **tile_ids, float **probs, size_t *n) {
    if (!s || !q || !tile_ids || !probs || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "scene_probs: invalid arguments");
    *tile_ids = NULL;
    *probs = NULL;
    *n = 0;
    const int dim = s->info.embed_dim;
    size_t cnt = rsclip_vecset_count(s->vs);
    int64_t *ids = NULL;
    size_t m = 0;
    int rc = rsclip__query_check_scene(s, scene_id);
    if (!rc) rc = rsclip_index_scene_tiles(s->idx, scene_id, &ids, NULL, &m);
    if (rc) return rc;
    float *qv = malloc(sizeof(float) * (size_t)dim);
    float *all = malloc(sizeof(float) * (cnt ? cnt : 1));
    float *pr = malloc(sizeof(float) * (m ? m : 1));
    if (!qv || !all || !pr) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc) rc = query_vector(s, q, qv);
    if (!rc && !s->have_calibration) rc = need_model(s, 0);
    /* The heatmap shows the positive query's probability: negatives do not apply. */
    if (!rc) rc = rsclip_vecset_score_all(s->vs, qv, NULL, all);
    const int64_t *vid = rsclip_vecset_ids(s->vs);
    size_t k = 0;
    for (size_t i = 0; i < m && !rc; i++) {
        const int64_t *hit = cnt ? bsearch(&ids[i], vid, cnt, sizeof *vid, rsclip__cmp_i64) : NULL;
        if (!hit) continue; /* a tile without embedding (being written): no value */
        ids[k] = ids[i];
        pr[k] = prob_of(s, all[hit - vid]);
        k++;
    }
    free(qv);
    free(all);
    if (rc) {
        rsclip_free(ids);
        free(pr);
        return rc;
    }
    *tile_ids = ids;
    *probs = pr;
    *n = k;
    return RSCLIP_OK;
}
