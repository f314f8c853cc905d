/* Queries against an index: text / example / image queries, hits (the filters: filter.c). */
#include "base/base.h"
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
double rsclip__now_ms(void) {
    return 1e3 * rsclip__mono_s();
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

size_t rsclip__session_vectors(const rsclip_session *s) {
    size_t n = 0;
    for (int p = 0; s && p < s->n_parts; p++)
        n += s->parts[p].vs ? rsclip_vecset_count(s->parts[p].vs) : 0;
    return n;
}

size_t rsclip_session_count(const rsclip_session *s) {
    return rsclip__session_vectors(s);
}

int rsclip_session_dim(const rsclip_session *s) {
    return s ? s->info.embed_dim : 0;
}

struct rsclip_index *rsclip_session_index(rsclip_session *s) {
    return s && s->n_parts ? s->parts[0].idx : NULL;
}

rsclip_index_set *rsclip_session_set(rsclip_session *s) {
    return s ? s->set : NULL;
}

/* Identifies the index's content: any committed write changes updated_at or the counts. */
static uint64_t content_stamp(const rsclip_index_info *in) {
    /* not RSCLIP__FNV_OFFSET (a digit short of it): the seed every .rsvec stamp was made with,
     * kept so that existing caches stay valid */
    uint64_t h = 1469598103934665603ULL;
    h = rsclip__fnv1a(h, &in->n_embeddings, sizeof in->n_embeddings);
    h = rsclip__fnv1a(h, &in->n_tiles, sizeof in->n_tiles);
    h = rsclip__fnv1a(h, &in->n_scenes, sizeof in->n_scenes);
    h = rsclip__fnv1a(h, &in->embed_dim, sizeof in->embed_dim);
    h = rsclip__fnv1a(h, in->updated_at, strlen(in->updated_at));
    h = rsclip__fnv1a(h, in->model_fingerprint, strlen(in->model_fingerprint));
    return h ? h : 1;
}

static int build_vecset(rsclip__part *pt, rsclip_vecset **out) {
    rsclip_embeddings *e = NULL;
    int rc = rsclip_index_load_embeddings(pt->idx, &e);
    if (rc) return rc;
    rsclip_vecset_params vp = rsclip_vecset_default_params();
    vp.keep_floats = e->n <= QUERY_EXACT_BELOW;
    vp.capacity_hint = e->n;
    rsclip_vecset *vs = NULL;
    rc = rsclip_vecset_new(pt->info.embed_dim, &vp, &vs);
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

/* The vectors of one part: its .rsvec cache beside it, else from the index (and the cache
 * written for next time). rebuild: do not even try the cache (it was found damaged). */
static int load_vectors_impl(rsclip_session *s, rsclip__part *pt, int rebuild, const char **how) {
    *how = "from the index (no cache)";
    if (!s->params.use_cache) return build_vecset(pt, &pt->vs);
    uint64_t stamp = content_stamp(&pt->info);
    size_t n = strlen(pt->path);
    char *cache = rsclip__malloc(n + 7);
    if (!cache) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    memcpy(cache, pt->path, n);
    memcpy(cache + n, ".rsvec", 7);
    rsclip_vecset *vs = NULL;
    if (!rebuild && access(cache, R_OK) == 0 && rsclip_vecset_load(cache, &vs) == RSCLIP_OK) {
        if (rsclip_vecset_source_stamp(vs) == stamp &&
            rsclip_vecset_dim(vs) == pt->info.embed_dim &&
            (int64_t)rsclip_vecset_count(vs) == pt->info.n_embeddings) {
            *how = "from the .rsvec cache";
            pt->vs = vs;
            free(cache);
            return RSCLIP_OK;
        }
        rsclip_vecset_free(vs);
        vs = NULL;
    }
    rsclip_clear_error();
    *how = "from the index (cache rebuilt)";
    int rc = build_vecset(pt, &vs);
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
    pt->vs = vs;
    return RSCLIP_OK;
}

static int load_vectors(rsclip_session *s) {
    double t0 = rsclip__now_ms();
    const char *how = "";
    int rc = RSCLIP_OK;
    for (int p = 0; p < s->n_parts && !rc; p++) rc = load_vectors_impl(s, &s->parts[p], 0, &how);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "search timing: vector load %.1f ms (%zu vectors %s%s)",
                    rsclip__now_ms() - t0, rsclip__session_vectors(s), how,
                    s->n_parts > 1 ? ", per part" : "");
    return rc;
}

int rsclip__part_repair(rsclip_session *s, int p, int rc) {
    rsclip__part *pt = &s->parts[p];
    if (rc != RSCLIP_ERR_FORMAT || !rsclip_vecset_damaged(pt->vs)) return rc;
    rsclip__log(RSCLIP_LOG_WARN, "%s: rebuilding the vectors from the index", rsclip_last_error());
    rsclip_vecset_free(pt->vs);
    pt->vs = NULL;
    rsclip_clear_error();
    const char *how;
    return load_vectors_impl(s, pt, 1, &how);
}

/* The set's parts, each with its own summary. */
static int open_parts(rsclip_session *s) {
    s->n_parts = rsclip_index_set_count(s->set);
    s->parts = rsclip__calloc((size_t)s->n_parts, sizeof *s->parts);
    if (!s->parts) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    for (int p = 0; p < s->n_parts; p++) {
        rsclip__part *pt = &s->parts[p];
        pt->idx = rsclip_index_set_part(s->set, p);
        pt->path = rsclip_index_path(pt->idx);
        int rc = rsclip_index_get_info(pt->idx, &pt->info);
        if (rc) return rc;
    }
    int shards = 0, missing = 0, incomplete = 0;
    rsclip_index_set_shards(s->set, &shards, &missing, &incomplete);
    if (missing || incomplete)
        rsclip__log(RSCLIP_LOG_WARN, "%s: %d of %d parts%s%s: searching the tiles that are there",
                    s->path, s->n_parts, shards, missing ? " (some missing)" : "",
                    incomplete ? " (some still being indexed)" : "");
    return rsclip_index_set_info(s->set, &s->info);
}

int rsclip_session_open(const char *index_path, const rsclip_session_params *params,
                        rsclip_session **out) {
    if (!out || !index_path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_session_open: no index path");
    *out = NULL;
    rsclip_session *s = rsclip__calloc(1, sizeof *s);
    if (!s) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    s->params = params ? *params : rsclip_session_default_params();
    s->path = rsclip__strdup(index_path);
    int rc = s->path ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    double t0 = rsclip__now_ms();
    if (!rc) rc = rsclip_index_set_open(index_path, RSCLIP_INDEX_READONLY, &s->set);
    if (!rc) rc = open_parts(s);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "search timing: index open %.1f ms", rsclip__now_ms() - t0);
    if (!rc && s->info.embed_dim <= 0)
        rc = rsclip__error(RSCLIP_ERR_NOT_FOUND,
                           "%s: the index holds no tiles yet (no model bound)", index_path);
    if (!rc) {
        /* the calibration recorded by the index; absent (an older index), the model's. Only
         * absence falls back: another error (out of memory) is the open's */
        char *a = NULL, *b = NULL;
        rsclip_index *idx0 = s->parts[0].idx;
        int ca = rsclip_index_get_meta(idx0, "logit_scale", &a);
        int cb = ca ? ca : rsclip_index_get_meta(idx0, "logit_bias", &b);
        if (!ca && !cb) {
            s->logit_scale = strtof(a, NULL);
            s->logit_bias = strtof(b, NULL);
            s->have_calibration = 1;
        } else if (cb != RSCLIP_ERR_NOT_FOUND) {
            rc = cb;
        }
        rsclip_free(a);
        rsclip_free(b);
        if (!rc) rsclip_clear_error();
    }
    if (!rc) {
        const char *name = s->params.model ? s->params.model : s->info.model_id;
        s->model_name = rsclip__strdup(name);
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
    for (int p = 0; p < s->n_parts && s->parts; p++) rsclip_vecset_free(s->parts[p].vs);
    free(s->parts);
    rsclip_index_set_close(s->set);
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
    double t0 = rsclip__now_ms();
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    /* The arena is sized for max_batch vision-length inputs: a one-shot text query needs 1, and
     * every page of a bigger arena costs start-up time (~55 ms for 4 on the base model). */
    ep.max_batch = s->batch_hint < 1 ? 1 : s->batch_hint > 4 ? 4 : s->batch_hint;
    ep.n_threads = s->params.n_threads;
    ep.precision = s->params.precision;
    int rc = s->params.device ? rsclip_device_parse(s->params.device, &ep.device) : RSCLIP_OK;
    if (rc) return rc;
    /* in place is a CPU matter: a GPU encoder is made once and kept */
    ep.in_place = ep.device.kind == RSCLIP_DEVICE_CPU && s->n_encodes == 0 &&
                  rsclip_precision_effective(ep.precision) == RSCLIP_PRECISION_F32;
    rc = rsclip_encoder_new(s->model, &ep, &s->enc);
    if (rc) return rc;
    s->in_place = ep.in_place;
    rsclip__log(RSCLIP_LOG_INFO, "search timing: encoder setup %.1f ms (%s%s)",
                rsclip__now_ms() - t0, rsclip_precision_name(rsclip_encoder_precision(s->enc)),
                ep.in_place ? ", weights in place" : ", packed weights");
    return RSCLIP_OK;
}

/* Load the index's model on first need, with the towers in `towers` (RSCLIP_MODEL_* bits; 0: any
 * loaded model will do, else the text tower), check it is the one the index was built with, and
 * have an encoder ready for the next encode call. A text query loads only the text tower; an
 * image query later reloads with both (the mapped F32 weights make that cheap). */
int rsclip__need_model(rsclip_session *s, int towers) {
    const int have = s->enc ? rsclip_model_towers(s->model) : 0;
    if (s->enc && (have & towers) == towers) {
        if (towers == 0 || !s->in_place || s->n_encodes == 0) return RSCLIP_OK;
        return new_encoder(s); /* a second encode: switch to the packed encoder */
    }
    rsclip_encoder_free(s->enc);
    s->enc = NULL;
    rsclip_model_free(s->model);
    s->model = NULL;
    double t0 = rsclip__now_ms();
    char dir[4096];
    int rc = rsclip_hub_resolve(s->model_name, dir, sizeof dir);
    if (rc) return rc;
    rsclip_model_params mp = {0};
    mp.towers = (have | towers) ? (have | towers) : RSCLIP_MODEL_TEXT;
    rc = rsclip_model_load(dir, &mp, &s->model);
    if (rc) return rc;
    double t1 = rsclip__now_ms();
    rsclip__log(RSCLIP_LOG_INFO, "search timing: model load %.1f ms (%s tower%s of %s)", t1 - t0,
                mp.towers == RSCLIP_MODEL_TEXT     ? "text"
                : mp.towers == RSCLIP_MODEL_VISION ? "vision"
                                                   : "text and vision",
                mp.towers == (RSCLIP_MODEL_TEXT | RSCLIP_MODEL_VISION) ? "s" : "", dir);
    const rsclip_model_info *mi = rsclip_model_get_info(s->model);
    rc = rsclip_index_check_model(s->parts[0].idx,
                                  rsclip_model_fingerprint_for(s->model, s->info.model_fingerprint),
                                  mi->embed_dim);
    if (rc) return rc;
    if (!s->have_calibration) {
        s->logit_scale = mi->logit_scale;
        s->logit_bias = mi->logit_bias;
        s->have_calibration = 1;
    }
    return new_encoder(s);
}

float rsclip__prob_of(const rsclip_session *s, float cosine) {
    return rsclip_siglip_prob(cosine, s->logit_scale, s->logit_bias);
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
    if (!rsclip__mul_size(n_holes, xl, &n) && !rsclip__add_size(n, tl + 1, &n))
        out = rsclip__malloc(n);
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
int rsclip__embed_texts(rsclip_session *s, const char *tmpl, const char *const *texts, int n,
                        float *out) {
    int rc = rsclip__need_model(s, RSCLIP_MODEL_TEXT);
    if (rc) return rc;
    double t0 = rsclip__now_ms();
    const rsclip_model_info *mi = rsclip_model_get_info(s->model);
    int32_t *ids = rsclip__malloc(sizeof(int32_t) * (size_t)mi->text_ctx * (size_t)n);
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
                    rsclip__now_ms() - t0, n, n == 1 ? "" : "s",
                    s->in_place ? "" : "; a packed encoder's first call packs the tower");
    return rc;
}

static int embed_image(rsclip_session *s, const char *path, float *out) {
    int rc = rsclip__need_model(s, RSCLIP_MODEL_VISION);
    if (rc) return rc;
    const rsclip_model_info *mi = rsclip_model_get_info(s->model);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    rc = rsclip_image_read_rgb8(path, &rgb, &w, &h);
    if (rc) return rc;
    size_t npx = (size_t)3 * (size_t)mi->image_size * (size_t)mi->image_size;
    float *px = rsclip__malloc(npx * sizeof(float));
    if (!px) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc) rc = rsclip_preprocess_rgb8(s->model, rgb, w, h, (size_t)w * 3, px);
    if (!rc) rc = rsclip_encode_images(s->enc, 1, px, out, NULL);
    s->n_encodes++;
    if (!rc) rsclip_l2_normalize(out, mi->embed_dim);
    free(px);
    rsclip_free(rgb);
    return rc;
}

/* The tile whose footprint contains (lon, lat) with the nearest centre, over all parts. */
static int tile_at(rsclip_session *s, double lon, double lat, int64_t *tile) {
    double best = INFINITY;
    *tile = 0;
    for (int p = 0; p < s->n_parts; p++) {
        int64_t *ids = NULL;
        size_t n = 0;
        int rc = rsclip_index_tiles_at(s->parts[p].idx, lon, lat, &ids, &n);
        rsclip_tile_info *t = NULL;
        if (!rc && n > 0) rc = rsclip_index_get_tile(s->parts[p].idx, ids[0], &t);
        if (!rc && t) {
            double d = (t->lon - lon) * (t->lon - lon) + (t->lat - lat) * (t->lat - lat);
            if (d < best || (d == best && t->id < *tile)) {
                best = d;
                *tile = t->id;
            }
        }
        rsclip_free(t);
        rsclip_free(ids);
        if (rc) return rc;
    }
    if (!*tile)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no indexed tile contains %.7g,%.7g",
                             s->path, lon, lat);
    return RSCLIP_OK;
}

/* The query vector of q (text, tile, point or image), normalised: out [dim]. */
int rsclip__query_vector(rsclip_session *s, const rsclip_query *q, float *out) {
    int n_kinds =
        (q->text != NULL) + (q->like_tile > 0) + (q->has_like_point != 0) + (q->like_image != NULL);
    if (n_kinds != 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "give exactly one query: a text, a tile id, a point or an image");
    if (q->text) return rsclip__embed_texts(s, q->template_str, &q->text, 1, out);
    if (q->like_image) return embed_image(s, q->like_image, out);
    int64_t tile = q->like_tile;
    if (q->has_like_point) {
        int rc = tile_at(s, q->like_lon, q->like_lat, &tile);
        if (rc) return rc;
    }
    int rc = RSCLIP_ERR_NOT_FOUND; /* tile ids are unique over the parts of a set */
    for (int p = 0; p < s->n_parts && rc == RSCLIP_ERR_NOT_FOUND; p++)
        rc = rsclip_index_get_embeddings(s->parts[p].idx, &tile, 1, out);
    if (rc == RSCLIP_ERR_NOT_FOUND)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no tile %lld in the index", s->path,
                             (long long)tile);
    return rc;
}
