/* A search over the session's parts (one index file, or the parts of a sharded folder): each part
 * is scanned for its own top k, in parallel, and the parts' hits are merged by score (ties by
 * tile id, as within one part), so a folder gives the hits its merged file gives. Also the hit
 * details, per-scene probabilities and the scene helpers that span parts. */
#include "base/base.h"
#include "query/examples.h"
#include "query/query_internal.h"
#include "status/status_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fetch_cb(void *user, size_t n, const int64_t *ids, float *out) {
    return rsclip_index_get_embeddings(user, ids, n, out);
}

/* Results own one block per hit: scene path, time and STAC ids, and footprint. */
typedef struct hit_store {
    char *scene, *datetime, *item, *collection;
    double *footprint;
} hit_store;

static void store_free(hit_store *st) {
    free(st->scene);
    free(st->datetime);
    free(st->item);
    free(st->collection);
    free(st->footprint);
}

struct results_impl {
    rsclip_results pub;
    hit_store *store;
    int n_store; /* filled stores (>= pub.n: --latest keeps fewer hits than it details) */
    char *why;   /* pub.why_empty */
    char *note;  /* pub.note */
};

void rsclip_results_free(rsclip_results *r) {
    if (!r) return;
    struct results_impl *ri = (struct results_impl *)r;
    for (int i = 0; i < ri->n_store; i++) store_free(&ri->store[i]);
    free(ri->why);
    free(ri->note);
    free(ri->store);
    free(r->hits);
    free(ri);
}

/* ---- the scan, part by part ---------------------------------------------------------------- */

/* One part's share of a search: its allow list and its k best. */
typedef struct part_search {
    rsclip__allow_list al;
    rsclip_vecset_hit *vh; /* [k] */
    int n_hits;
    int64_t *cid; /* two-phase search: the part's candidates (ids, approximate scores) ... */
    float *csc;
    size_t nc;
    int64_t *share; /* ... and those of the global best that are its own (sorted) */
    size_t n_share;
    int rc;
    char err[512];
} part_search;

typedef struct search_job {
    rsclip_session *s;
    const rsclip_query *q;
    int k;           /* hits per part: q->k, more for --latest */
    const float *qv; /* [1 + n_negatives, dim] */
    part_search *ps;
    int threads_per_part;
    atomic_int next;
    int phase;    /* search_part's step: PHASE_* */
    size_t ncand; /* candidates a search of one merged set would rerank */
    size_t npre;  /* and keep from its 4-bit pass (0: none) */
} search_job;

/* What search_part does: the whole search of its part, or one step of a search over the parts
 * as one set (see search_phased). */
enum { PHASE_ONE, PHASE_ALLOW, PHASE_COARSE, PHASE_FINE, PHASE_RERANK };

static void search_part(search_job *j, int p) {
    rsclip_session *s = j->s;
    part_search *ps = &j->ps[p];
    const rsclip_query *q = j->q;
    int rc = RSCLIP_OK;
    if (j->phase == PHASE_ONE || j->phase == PHASE_ALLOW)
        rc = rsclip__query_build_allow(s, p, q, &ps->al);
    int shared = j->phase == PHASE_RERANK || (j->phase == PHASE_FINE && j->npre);
    int live = (!ps->al.active || ps->al.n > 0) && s->parts[p].vs &&
               rsclip_vecset_count(s->parts[p].vs) > 0 && (!shared || ps->n_share > 0);
    ps->nc = 0;
    if (!rc && live && j->phase != PHASE_ALLOW) {
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = j->k;
        sp.n_threads = j->threads_per_part;
        int n_neg = q->n_negatives + q->n_unlike_tiles; /* texts, then unlike tiles */
        sp.negatives = n_neg ? j->qv + s->info.embed_dim : NULL;
        sp.n_negatives = n_neg;
        sp.fetch = fetch_cb;
        sp.fetch_user = s->parts[p].idx;
        if (ps->al.active) {
            sp.allow_ids = ps->al.ids;
            sp.n_allow = ps->al.n;
        }
        if (shared) { /* this part's share of the global cut */
            sp.allow_ids = ps->share;
            sp.n_allow = ps->n_share;
        }
        if (j->phase == PHASE_COARSE) sp.coarse = 1;
        if (j->phase == PHASE_FINE) sp.n_prefilter = -1; /* the 4-bit cut, if any, is global */
        if (j->phase == PHASE_RERANK) sp.n_candidates = (int)j->ncand; /* all of the share */
        /* a block of the cache found damaged: rebuild the part's vectors, then once more */
        for (int attempt = 0; attempt < 2; attempt++) {
            rsclip_vecset *vs = s->parts[p].vs;
            if (j->phase == PHASE_COARSE)
                rc = rsclip_vecset_candidates(vs, j->qv, &sp, ps->cid, ps->csc, j->npre, &ps->nc);
            else if (j->phase == PHASE_FINE)
                rc = rsclip_vecset_candidates(vs, j->qv, &sp, ps->cid, ps->csc, j->ncand, &ps->nc);
            else
                rc = rsclip_vecset_search(vs, j->qv, &sp, ps->vh, &ps->n_hits);
            if (!rc || attempt || (rc = rsclip__part_repair(s, p, rc))) break;
        }
    }
    ps->rc = rc;
    if (rc) snprintf(ps->err, sizeof ps->err, "%s", rsclip_last_error());
}

static void *search_worker(void *arg) {
    search_job *j = arg;
    for (int p; (p = atomic_fetch_add(&j->next, 1)) < j->s->n_parts;) search_part(j, p);
    return NULL;
}

/* Every part searched; parts in parallel when there are several (each part's SQLite handle is
 * used by one thread only). */
static int search_parts(search_job *j, int n_threads) {
    rsclip_session *s = j->s;
    int workers = s->n_parts < n_threads ? s->n_parts : n_threads;
    if (workers < 1) workers = 1;
    j->threads_per_part = s->n_parts >= n_threads ? 1 : n_threads / s->n_parts;
    atomic_init(&j->next, 0);
    pthread_t tid[64];
    int started = 0;
    if (workers > 64) workers = 64;
    for (int t = 1; t < workers; t++)
        if (pthread_create(&tid[started], NULL, search_worker, j) == 0) started++;
    search_worker(j);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    for (int p = 0; p < s->n_parts; p++)
        if (j->ps[p].rc) return rsclip__error(j->ps[p].rc, "%s", j->ps[p].err);
    return RSCLIP_OK;
}

/* A candidate of one part, for the global cut of a two-phase search. */
typedef struct part_cand {
    int64_t id;
    float score;
    int part;
} part_cand;

static int cmp_part_cand(const void *a, const void *b) {
    const part_cand *x = a, *y = b;
    return rsclip__cmp_score_id(x->score, x->id, y->score, y->id);
}

/* The best keep of all parts' candidates (score descending, then id): each part's share, sorted
 * by id, in ps[p].share; the count kept. */
static int global_cut(search_job *j, size_t keep, size_t *n_kept) {
    rsclip_session *s = j->s;
    size_t total = 0, n = 0;
    for (int p = 0; p < s->n_parts; p++) total += j->ps[p].nc;
    part_cand *all = rsclip__malloc(sizeof *all * (total ? total : 1));
    if (!all) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    for (int p = 0; p < s->n_parts; p++)
        for (size_t i = 0; i < j->ps[p].nc; i++)
            all[n++] = (part_cand){j->ps[p].cid[i], j->ps[p].csc[i], p};
    if (n > 1) qsort(all, n, sizeof *all, cmp_part_cand);
    if (n > keep) n = keep;
    for (int p = 0; p < s->n_parts; p++) j->ps[p].n_share = 0;
    for (size_t i = 0; i < n; i++) {
        part_search *ps = &j->ps[all[i].part];
        ps->share[ps->n_share++] = all[i].id;
    }
    for (int p = 0; p < s->n_parts; p++)
        if (j->ps[p].n_share > 1)
            qsort(j->ps[p].share, j->ps[p].n_share, sizeof(int64_t), rsclip__cmp_i64);
    free(all);
    *n_kept = n;
    return RSCLIP_OK;
}

/* Parts without float vectors (the quantised path) are searched as the one set a merge of them
 * would be: the same cuts, made over all parts. Each part's 4-bit pass keeps its best npre, the
 * best npre of all go on to the int8 pass (where the merged set's size calls for a 4-bit pass),
 * each part scores its share, the best ncand of all are reranked exactly by the parts that hold
 * them. The same candidates as the merged file's, and the exact rerank (float vectors read from
 * SQLite) runs once per candidate, not once per part. */
static int search_phased(search_job *j, int n_threads) {
    rsclip_session *s = j->s;
    const size_t k = (size_t)j->k;
    j->ncand = 10 * k > 256 ? 10 * k : 256;
    const size_t pre = 4 * j->ncand > 1024 ? 4 * j->ncand : 1024;
    for (int p = 0; p < s->n_parts; p++) {
        part_search *ps = &j->ps[p];
        ps->cid = rsclip__malloc(sizeof(int64_t) * pre);
        ps->csc = rsclip__malloc(sizeof(float) * pre);
        ps->share = rsclip__malloc(sizeof(int64_t) * pre);
        if (!ps->cid || !ps->csc || !ps->share)
            return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    }
    j->phase = PHASE_ALLOW;
    int rc = search_parts(j, n_threads);
    size_t npos = 0, n = 0;
    for (int p = 0; p < s->n_parts; p++) {
        const part_search *ps = &j->ps[p];
        npos += ps->al.active ? ps->al.n : s->parts[p].vs ? rsclip_vecset_count(s->parts[p].vs) : 0;
    }
    j->npre = npos >= 8 * pre ? pre : 0; /* the rule of one set's search */
    double t0 = rsclip__now_ms();
    if (!rc && j->npre) {
        j->phase = PHASE_COARSE;
        rc = search_parts(j, n_threads);
        if (!rc) rc = global_cut(j, j->npre, &n);
    }
    double t1 = rsclip__now_ms();
    if (!rc) {
        j->phase = PHASE_FINE;
        rc = search_parts(j, n_threads);
    }
    if (!rc) rc = global_cut(j, j->ncand, &n);
    double t2 = rsclip__now_ms();
    if (!rc) {
        j->phase = PHASE_RERANK;
        rc = search_parts(j, n_threads);
    }
    rsclip__log(RSCLIP_LOG_INFO,
                "search timing: 4-bit pass %.1f ms, int8 pass %.1f ms, rerank %.1f ms (%zu)",
                t1 - t0, t2 - t1, rsclip__now_ms() - t2, n);
    return rc;
}

typedef struct merged_hit {
    rsclip_vecset_hit h;
    int part;
} merged_hit;

/* Score descending, then tile id ascending: the order within one part, so a folder ranks its
 * hits exactly as the file merged from it. */
static int cmp_merged(const void *a, const void *b) {
    const merged_hit *x = a, *y = b;
    return rsclip__cmp_score_id(x->h.score, x->h.id, y->h.score, y->h.id);
}

/* ---- hit details ------------------------------------------------------------------------- */

/* A scene's time as one text: the instant, or "start/end". */
static char *scene_time_text(const rsclip_scene_info *si) {
    if (si->datetime) return rsclip__strdup(si->datetime);
    if (!si->start_datetime || !si->end_datetime) return NULL;
    size_t n = strlen(si->start_datetime) + strlen(si->end_datetime) + 2;
    char *t = rsclip__malloc(n);
    if (t) snprintf(t, n, "%s/%s", si->start_datetime, si->end_datetime);
    return t;
}

/* The details of the hits mh[0..n_hits) whose probability reaches q->min_prob, ranked, into ri;
 * *n_below hits were dropped by min_prob, the best of them with probability *best_below. */
static int fill_hits(rsclip_session *s, const rsclip_query *q, const merged_hit *mh, int n_hits,
                     struct results_impl *ri, int *n_below, float *best_below) {
    ri->pub.hits = rsclip__calloc((size_t)(n_hits ? n_hits : 1), sizeof *ri->pub.hits);
    ri->store = rsclip__calloc((size_t)(n_hits ? n_hits : 1), sizeof *ri->store);
    if (!ri->pub.hits || !ri->store) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    int rc = RSCLIP_OK;
    rsclip_scene_info *sc = NULL; /* the scene of the previous hit (ids agree over parts) */
    for (int i = 0; i < n_hits && !rc; i++) {
        const rsclip_vecset_hit *vh = &mh[i].h;
        rsclip_index *idx = s->parts[mh[i].part].idx;
        float prob = rsclip__prob_of(s, vh->cosine);
        if (prob < q->min_prob) {
            if ((*n_below)++ == 0 || prob > *best_below) *best_below = prob;
            continue;
        }
        rsclip_tile_info *t = NULL;
        rc = rsclip_index_get_tile(idx, vh->id, &t);
        if (rc) break;
        int j = ri->pub.n;
        rsclip_hit *h = &ri->pub.hits[j];
        hit_store *st = &ri->store[j];
        if (!sc || sc->id != t->scene_id) {
            rsclip_free(sc);
            sc = NULL;
            if ((rc = rsclip_index_get_scene(idx, t->scene_id, &sc))) {
                rsclip_free(t);
                break;
            }
        }
        st->scene = rsclip__strdup(sc->path);
        st->datetime = scene_time_text(sc);
        st->item = rsclip__strdup_opt(sc->stac_item);
        st->collection = rsclip__strdup_opt(sc->stac_collection);
        st->footprint = rsclip__malloc(sizeof(double) * 2 * (t->n_footprint ? t->n_footprint : 1));
        if (!st->scene || !st->footprint || (sc->stac_item && !st->item) ||
            (sc->stac_collection && !st->collection) ||
            ((sc->datetime || sc->start_datetime) && !st->datetime)) {
            rsclip_free(t);
            store_free(st);
            memset(st, 0, sizeof *st);
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            break;
        }
        if (t->n_footprint)
            memcpy(st->footprint, t->footprint, sizeof(double) * 2 * t->n_footprint);
        h->tile_id = vh->id;
        h->rank = j + 1;
        h->score = vh->score;
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
        h->datetime = st->datetime;
        h->stac_item = st->item;
        h->stac_collection = st->collection;
        ri->pub.n = j + 1;
        ri->n_store = j + 1;
        rsclip_free(t);
    }
    rsclip_free(sc);
    return rc;
}

/* ---- the search ---------------------------------------------------------------------------- */

/* rsclip_results.note: what the time filter left out, what --latest dropped. */
static int make_note(const rsclip_session *s, const rsclip_query *q, const part_search *ps,
                     int n_latest, struct results_impl *ri) {
    size_t untimed = 0;
    for (int p = 0; p < s->n_parts; p++) untimed += ps[p].al.n_untimed;
    char buf[512];
    int n = 0;
    buf[0] = 0;
    if ((q->after || q->before) && untimed)
        n += snprintf(buf, sizeof buf, "%zu scene%s without a time %s left out by the time filter",
                      untimed, untimed == 1 ? "" : "s", untimed == 1 ? "was" : "were");
    if (q->latest && n_latest && n >= 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n,
                 "%s%d older tile%s of the same places dropped (--latest)", n ? "; " : "", n_latest,
                 n_latest == 1 ? "" : "s");
    if (!buf[0]) return RSCLIP_OK;
    ri->note = rsclip__strdup(buf);
    ri->pub.note = ri->note;
    return ri->note ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
}

/* The parts' hits into one ranked list of at most k (mh: [n_parts * k]). */
static int merge_parts(const rsclip_session *s, const part_search *ps, int k, merged_hit *mh) {
    int n = 0;
    for (int p = 0; p < s->n_parts; p++)
        for (int i = 0; i < ps[p].n_hits; i++) mh[n++] = (merged_hit){ps[p].vh[i], p};
    if (n > 1) qsort(mh, (size_t)n, sizeof *mh, cmp_merged);
    return n < k ? n : k;
}

/* What the parts' filters let through, summed (for the no-hits explanation). */
static void sum_allow(const rsclip_session *s, const part_search *ps, rsclip__allow_list *sum) {
    memset(sum, 0, sizeof *sum);
    for (int p = 0; p < s->n_parts; p++) {
        const rsclip__allow_list *a = &ps[p].al;
        sum->active |= a->active;
        sum->n += a->n;
        sum->n_bbox += a->n_bbox;
        sum->n_aoi += a->n_aoi;
        sum->n_scene += a->n_scene;
        sum->n_time += a->n_time;
        sum->n_untimed += a->n_untimed;
        if (a->n_aoi || p == 0) memcpy(sum->aoi_env, a->aoi_env, sizeof sum->aoi_env);
    }
}

static void free_parts(const rsclip_session *s, part_search *ps) {
    for (int p = 0; ps && p < s->n_parts; p++) {
        rsclip_free(ps[p].al.ids);
        free(ps[p].vh);
        free(ps[p].cid);
        free(ps[p].csc);
        free(ps[p].share);
    }
    free(ps);
}

int rsclip__query_vectors(rsclip_session *s, const rsclip_query *q, float **qv, int *n_neg) {
    const int dim = s->info.embed_dim;
    *n_neg = q->n_negatives + q->n_unlike_tiles;
    *qv = rsclip__malloc(sizeof(float) * (size_t)dim * (size_t)(1 + *n_neg));
    if (!*qv) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    s->batch_hint = q->n_negatives > 0 ? q->n_negatives : 1;
    int rc = RSCLIP_OK;
    if (rsclip__query_has_main(q)) rc = rsclip__query_vector(s, q, *qv);
    if (!rc && q->n_negatives > 0)
        rc = rsclip__embed_texts(s, q->template_str, q->negatives, q->n_negatives, *qv + dim);
    if (!rc)
        rc = rsclip__query_examples(s, q, *qv, *qv + (size_t)dim * (size_t)(1 + q->n_negatives));
    if (!rc && !s->have_calibration) rc = rsclip__need_model(s, 0);
    if (rc) {
        free(*qv);
        *qv = NULL;
    }
    return rc;
}

int rsclip__results_of(rsclip_session *s, const rsclip__tile_ref *t, int n, rsclip_results **out) {
    *out = NULL;
    struct results_impl *ri = rsclip__calloc(1, sizeof *ri);
    merged_hit *mh = rsclip__malloc(sizeof *mh * (size_t)(n ? n : 1));
    int rc = ri && mh ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++)
        mh[i] = (merged_hit){{t[i].id, t[i].score, t[i].score}, t[i].part};
    rsclip_query all = rsclip_query_default();
    all.min_prob = 0;
    int n_below = 0;
    float best_below = 0;
    if (!rc) rc = fill_hits(s, &all, mh, n, ri, &n_below, &best_below);
    free(mh);
    if (rc) {
        rsclip_results_free(ri ? &ri->pub : NULL);
        return rc;
    }
    *out = &ri->pub;
    return RSCLIP_OK;
}

int rsclip_session_search(rsclip_session *s, const rsclip_query *q, rsclip_results **out) {
    if (!s || !q || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "search: no query");
    *out = NULL;
    if (rsclip_query_check(q)) return rsclip_last_status();
    /* --latest drops older tiles of the same places: rank more, keep k */
    const int k_scan = q->latest ? (q->k > 100000 ? 400000 : 4 * q->k + 16) : q->k;
    float *qv = NULL;
    int n_neg = 0;
    part_search *ps = rsclip__calloc((size_t)s->n_parts, sizeof *ps);
    merged_hit *mh = NULL;
    size_t n_mh = 0;
    struct results_impl *ri = rsclip__calloc(1, sizeof *ri);
    int rc = (ps && ri && !rsclip__mul_size((size_t)s->n_parts, (size_t)k_scan, &n_mh))
                 ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc) mh = rsclip__malloc(n_mh * sizeof *mh);
    for (int p = 0; p < s->n_parts && !rc; p++)
        if (!(ps[p].vh = rsclip__malloc(sizeof *ps[p].vh * (size_t)k_scan)) || !mh)
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    rsclip_time window;
    if (!rc && (rc = rsclip__query_time_window(q, &window)) > 0) rc = RSCLIP_OK;
    if (!rc && q->scene_id > 0) rc = rsclip__query_check_scene(s, q->scene_id);
    if (!rc) rc = rsclip__query_vectors(s, q, &qv, &n_neg);
    int n_hits = 0;
    if (!rc) {
        int n_threads =
            s->params.n_threads > 0 ? s->params.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        search_job job = {s, q, k_scan, qv, ps, 1, 0, PHASE_ONE, 0, 0};
        double t0 = rsclip__now_ms();
        int two_phase = s->n_parts > 1;
        for (int p = 0; p < s->n_parts; p++)
            if (s->parts[p].vs && rsclip_vecset_has_floats(s->parts[p].vs)) two_phase = 0;
        rc = two_phase ? search_phased(&job, n_threads < 1 ? 1 : n_threads)
                       : search_parts(&job, n_threads < 1 ? 1 : n_threads);
        if (!rc) n_hits = merge_parts(s, ps, k_scan, mh);
        if (!rc)
            rsclip__log(RSCLIP_LOG_INFO,
                        "search timing: scan %.1f ms (%zu vectors in %d part%s, k %d)",
                        rsclip__now_ms() - t0, rsclip__session_vectors(s), s->n_parts,
                        s->n_parts == 1 ? "" : "s", q->k);
    }
    double t_hits = rsclip__now_ms();
    int n_below = 0;
    float best_below = 0;
    if (!rc) rc = fill_hits(s, q, mh, n_hits, ri, &n_below, &best_below);
    int n_latest = 0;
    if (!rc && q->latest) {
        int kept = rsclip__latest_filter(ri->pub.hits, ri->pub.n, q->k, &n_latest);
        if (kept < 0)
            rc = kept;
        else
            ri->pub.n = kept;
    }
    if (!rc) rc = make_note(s, q, ps, n_latest, ri);
    if (!rc && ri->pub.n == 0) {
        rsclip__allow_list sum;
        sum_allow(s, ps, &sum);
        ri->why = rsclip__query_explain_empty(s, q, &sum, n_hits, n_below, best_below);
        if (!ri->why) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        ri->pub.why_empty = ri->why;
    }
    free(qv);
    free(mh);
    free_parts(s, ps);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "search timing: hit details %.1f ms (%d hits)",
                    rsclip__now_ms() - t_hits, ri->pub.n);
    if (rc) {
        rsclip_results_free(ri ? &ri->pub : NULL);
        return rc;
    }
    *out = &ri->pub;
    return RSCLIP_OK;
}

/* ---- one scene ----------------------------------------------------------------------------- */

int rsclip_session_scene_tiles(rsclip_session *s, int64_t scene_id, int64_t **ids,
                               rsclip_tile_window **windows, size_t *n) {
    if (!s || !ids || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_session_scene_tiles: NULL argument");
    *ids = NULL;
    if (windows) *windows = NULL;
    *n = 0;
    int64_t *all = NULL;
    rsclip_tile_window *aw = NULL;
    size_t total = 0;
    int rc = RSCLIP_OK;
    for (int p = 0; p < s->n_parts && !rc; p++) {
        int64_t *pi = NULL;
        rsclip_tile_window *pw = NULL;
        size_t m = 0;
        rc = rsclip_index_scene_tiles(s->parts[p].idx, scene_id, &pi, &pw, &m);
        if (!rc && m) {
            int64_t *na = rsclip__realloc(all, (total + m) * sizeof *na);
            if (na) all = na;
            rsclip_tile_window *nw = na ? rsclip__realloc(aw, (total + m) * sizeof *nw) : NULL;
            if (nw) aw = nw;
            if (!na || !nw) {
                rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            } else {
                memcpy(all + total, pi, m * sizeof *pi);
                memcpy(aw + total, pw, m * sizeof *pw);
                total += m;
            }
        }
        rsclip_free(pi);
        rsclip_free(pw);
    }
    if (rc) {
        free(all);
        free(aw);
        return rc;
    }
    /* parts hold disjoint id ranges in part order: the concatenation is in id order */
    *ids = all;
    if (windows)
        *windows = aw;
    else
        free(aw);
    *n = total;
    return RSCLIP_OK;
}

int rsclip_session_get_scene(rsclip_session *s, int64_t scene_id, rsclip_scene_info **out) {
    if (!s || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_session_get_scene: NULL");
    *out = NULL;
    int rc = RSCLIP_ERR_NOT_FOUND;
    int64_t stored = 0, skipped = 0;
    for (int p = 0; p < s->n_parts; p++) {
        rsclip_scene_info *si = NULL;
        int r = rsclip_index_get_scene(s->parts[p].idx, scene_id, &si);
        if (r == RSCLIP_ERR_NOT_FOUND) continue;
        if (r) {
            rsclip_free(*out);
            *out = NULL;
            return r;
        }
        stored += si->tiles_stored;
        skipped += si->tiles_skipped;
        if (!*out)
            *out = si;
        else
            rsclip_free(si);
        rc = RSCLIP_OK;
    }
    if (rc)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no scene with id %lld", s->path,
                             (long long)scene_id);
    if (s->n_parts > 1) { /* a scene spread over parts: its counts over all of them */
        (*out)->tiles_stored = stored;
        (*out)->tiles_skipped = skipped;
        (*out)->status = stored + skipped >= (*out)->tiles_planned ? RSCLIP_SCENE_COMPLETE
                                                                   : RSCLIP_SCENE_INDEXING;
    }
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
    float *qv = rsclip__malloc(sizeof(float) * (size_t)dim);
    int64_t *out_ids = NULL;
    float *out_pr = NULL;
    size_t k = 0;
    int rc = qv ? rsclip__query_check_scene(s, scene_id)
                : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc) rc = rsclip__query_check_what(q);
    if (!rc && rsclip__query_has_main(q)) rc = rsclip__query_vector(s, q, qv);
    if (!rc) rc = rsclip__query_examples(s, q, qv, NULL);
    if (!rc && !s->have_calibration) rc = rsclip__need_model(s, 0);
    for (int p = 0; p < s->n_parts && !rc; p++) {
        /* the heatmap scans every code: check them all first (the same reads) */
        if (s->parts[p].vs) rc = rsclip__part_repair(s, p, rsclip_vecset_verify(s->parts[p].vs));
        if (rc) break;
        rsclip_vecset *vs = s->parts[p].vs;
        size_t cnt = vs ? rsclip_vecset_count(vs) : 0, m = 0;
        int64_t *ids = NULL;
        rc = rsclip_index_scene_tiles(s->parts[p].idx, scene_id, &ids, NULL, &m);
        float *all = rc || !m ? NULL : rsclip__malloc(sizeof(float) * (cnt ? cnt : 1));
        if (!rc && m && !all) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        /* The heatmap shows the positive query's probability: negatives do not apply. */
        if (!rc && m && cnt) rc = rsclip_vecset_score_all(vs, qv, NULL, all);
        int64_t *ni = !rc && m ? rsclip__realloc(out_ids, (k + m) * sizeof *ni) : out_ids;
        if (ni) out_ids = ni;
        float *np = !rc && m && ni ? rsclip__realloc(out_pr, (k + m) * sizeof *np) : out_pr;
        if (np) out_pr = np;
        if (!rc && m && (!ni || !np)) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        const int64_t *vid = vs ? rsclip_vecset_ids(vs) : NULL;
        for (size_t i = 0; i < m && !rc; i++) {
            const int64_t *hit =
                cnt ? bsearch(&ids[i], vid, cnt, sizeof *vid, rsclip__cmp_i64) : NULL;
            if (!hit) continue; /* a tile without embedding (being written): no value */
            out_ids[k] = ids[i];
            out_pr[k] = rsclip__prob_of(s, all[hit - vid]);
            k++;
        }
        free(all);
        rsclip_free(ids);
    }
    free(qv);
    if (rc) {
        free(out_ids);
        free(out_pr);
        return rc;
    }
    *tile_ids = out_ids;
    *probs = out_pr;
    *n = k;
    return RSCLIP_OK;
}
