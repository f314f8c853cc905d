/* Change queries: where did the thing asked for appear between two periods?
 *
 * Every tile of the later period (that passes the query's filters) is a candidate, taken in
 * order of its probability (from the int8 codes). For a candidate, the tiles of the earlier
 * period that meet its footprint (R-tree, then the exact intersection through OGR/GEOS) are its
 * earlier coverage: their probability weighted by the area each shares with it. A place counts
 * as seen in both periods when the earlier tiles cover at least half of its footprint. The rise
 * is the later probability minus the earlier one, both from the exact vectors. Since a rise never
 * exceeds the later probability, the walk stops once k rises beat every candidate left (or after
 * a bounded number of candidates, which the note then says). */
#include "base/base.h"
#include "query/examples.h"
#include "query/query_internal.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <ogr_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A place is seen in the earlier period when its tiles cover this share of the later footprint. */
#define CHANGE_MIN_COVERAGE 0.5
/* Candidates examined at most: this many plus CHANGE_CANDIDATES_PER_K per hit wanted. */
#define CHANGE_CANDIDATES_BASE 2000
#define CHANGE_CANDIDATES_PER_K 20
/* The int8 probabilities that order the candidates are within ~1e-3 of the exact ones. */
#define CHANGE_ORDER_SLACK 0.01f

int rsclip_change_periods(const char *text, rsclip_time *from, rsclip_time *to) {
    if (!text || !from || !to)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "change: no periods given");
    int slashes = 0;
    for (const char *c = text; *c; c++) slashes += *c == '/';
    if (slashes != 1 && slashes != 3)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "change periods '%s': expected FROM/TO, e.g. 2019/2023 or "
                             "2019-06/2023-06 (each side a time or, with 3 slashes, A/B/C/D: two "
                             "spans)",
                             text);
    /* the middle slash separates the periods */
    const char *mid = text;
    for (int seen = 0; *mid; mid++)
        if (*mid == '/' && ++seen == (slashes + 1) / 2) break;
    size_t n = (size_t)(mid - text);
    char *a = rsclip__malloc(n + 1);
    if (!a) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    memcpy(a, text, n);
    a[n] = 0;
    int rc = rsclip_time_parse(a, from);
    if (!rc) rc = rsclip_time_parse(mid + 1, to);
    free(a);
    if (rc) {
        char prefix[160];
        snprintf(prefix, sizeof prefix, "change periods '%.120s'", text);
        return rsclip__error_prefix(prefix);
    }
    if (from->start_ms == INT64_MIN || to->end_ms == INT64_MAX || from->end_ms == INT64_MAX ||
        to->start_ms == INT64_MIN)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "change periods '%s': both periods need both ends", text);
    if (from->end_ms >= to->start_ms)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "change periods '%s': the earlier period must end before the later "
                             "one begins",
                             text);
    return RSCLIP_OK;
}

/* ---- scoring --------------------------------------------------------------------------------- */

/* The ranking score of a unit vector v: cos with the query less the weighted strongest negative
 * (rsclip/search.h), from the exact vectors. */
static float exact_score(const float *qv, int n_neg, int dim, const float *v) {
    double c = 0;
    for (int d = 0; d < dim; d++) c += (double)qv[d] * v[d];
    double worst = -INFINITY;
    for (int j = 0; j < n_neg; j++) {
        const float *nv = qv + (size_t)(j + 1) * (size_t)dim;
        double cn = 0;
        for (int d = 0; d < dim; d++) cn += (double)nv[d] * v[d];
        if (cn > worst) worst = cn;
    }
    if (n_neg) c -= 0.5 * worst;
    return (float)c;
}

/* The same for one stored tile (its float vector read from the part). */
static int tile_score(rsclip_session *s, int part, int64_t id, const float *qv, int n_neg,
                      float *vbuf, float *score) {
    int rc = rsclip_index_get_embeddings(s->parts[part].idx, &id, 1, vbuf);
    if (!rc) *score = exact_score(qv, n_neg, s->info.embed_dim, vbuf);
    return rc;
}

static OGRGeometryH footprint_poly(const rsclip_tile_info *t) {
    return rsclip__ring_polygon(t->footprint, (int)t->n_footprint);
}

/* ---- state of one change query ----------------------------------------------------------------
 */

typedef struct cand {
    int64_t id;
    int part;
    float approx; /* probability from the int8 codes: the order of the walk */
} cand;

typedef struct found {
    rsclip__tile_ref to, from; /* the later tile; the earlier tile covering most of it */
    float prob_to, prob_from, rise;
    double coverage;
    int n_from;
} found;

typedef struct change_ctx {
    rsclip_session *s;
    const rsclip_query *q;
    const float *qv;
    int n_neg;
    rsclip__allow_list *early; /* [n_parts] */
    float **memo; /* [n_parts][early[p].n]: an earlier tile's exact score once read, else NAN (an
                     earlier tile meets several later ones: its vector is read once) */
    float *vbuf;  /* [dim] */
    found *top;   /* [k], best first */
    int n_top, k;
    size_t n_walked, n_unseen, n_pixel;
} change_ctx;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return rsclip__cmp_score_id(x->approx, x->id, y->approx, y->id);
}

/* Does f rank before g? (rise descending, then the later tile's id) */
static int better(const found *f, const found *g) {
    if (f->rise != g->rise) return f->rise > g->rise;
    return f->to.id < g->to.id;
}

static void keep_top(change_ctx *c, const found *f) {
    if (c->n_top == c->k && !better(f, &c->top[c->k - 1])) return;
    int i = c->n_top < c->k ? c->n_top++ : c->k - 1;
    while (i > 0 && better(f, &c->top[i - 1])) {
        c->top[i] = c->top[i - 1];
        i--;
    }
    c->top[i] = *f;
}

/* The earlier coverage of one later tile: *ok = 0 when it is not seen in the earlier period. */
static int cover_one(change_ctx *c, const rsclip_tile_info *t, OGRGeometryH poly, found *f,
                     int *ok) {
    *ok = 0;
    rsclip_session *s = c->s;
    const double area = OGR_G_Area(poly);
    if (!(area > 0)) return RSCLIP_OK;
    OGRGeometryH covered = NULL;
    double wsum = 0, psum = 0, best_area = 0;
    int rc = RSCLIP_OK;
    f->n_from = 0;
    for (int p = 0; p < s->n_parts && !rc; p++) {
        const rsclip__allow_list *al = &c->early[p];
        if (al->n == 0) continue;
        if (!c->memo[p]) {
            c->memo[p] = rsclip__malloc(sizeof(float) * al->n);
            if (!c->memo[p]) {
                rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
                break; /* covered (of earlier parts) is freed below */
            }
            for (size_t i = 0; i < al->n; i++) c->memo[p][i] = NAN;
        }
        int64_t *ids = NULL;
        size_t n = 0;
        rc = rsclip_index_tiles_in_bbox(s->parts[p].idx, t->bbox, 0, &ids, &n);
        for (size_t i = 0; i < n && !rc; i++) {
            const int64_t *at = bsearch(&ids[i], al->ids, al->n, sizeof *al->ids, rsclip__cmp_i64);
            if (!at) continue;
            float *memo = &c->memo[p][at - al->ids];
            rsclip_tile_info *e = NULL;
            if ((rc = rsclip_index_get_tile(s->parts[p].idx, ids[i], &e))) break;
            if (e->scene_id == t->scene_id || !e->has_lonlat || e->n_footprint < 3) {
                rsclip_free(e);
                continue;
            }
            OGRGeometryH ep = footprint_poly(e);
            OGRGeometryH x = OGR_G_Intersection(poly, ep);
            double a = x ? OGR_G_Area(x) : 0;
            if (a > 1e-9 * area) {
                float sc = *memo;
                if (isnan(sc)) {
                    rc = tile_score(s, p, ids[i], c->qv, c->n_neg, c->vbuf, &sc);
                    if (!rc) *memo = sc;
                }
                if (!rc) {
                    float pr = rsclip__prob_of(s, sc);
                    wsum += a;
                    psum += a * pr;
                    f->n_from++;
                    if (a > best_area) {
                        best_area = a;
                        f->from = (rsclip__tile_ref){ids[i], p, sc};
                    }
                    if (!covered) {
                        covered = x;
                        x = NULL;
                    } else {
                        OGRGeometryH u = OGR_G_Union(covered, x);
                        if (u) {
                            OGR_G_DestroyGeometry(covered);
                            covered = u;
                        }
                    }
                }
            }
            OGR_G_DestroyGeometry(x);
            OGR_G_DestroyGeometry(ep);
            rsclip_free(e);
        }
        rsclip_free(ids);
    }
    double cov = covered ? OGR_G_Area(covered) / area : 0;
    OGR_G_DestroyGeometry(covered);
    if (rc || wsum <= 0 || cov < CHANGE_MIN_COVERAGE) return rc;
    f->coverage = cov > 1 ? 1 : cov;
    f->prob_from = (float)(psum / wsum);
    *ok = 1;
    return RSCLIP_OK;
}

/* Walk the candidates (best first) until no candidate left can enter the top k. */
static int walk(change_ctx *c, const cand *cv, size_t n_cand) {
    rsclip_session *s = c->s;
    const size_t cap = CHANGE_CANDIDATES_BASE + (size_t)CHANGE_CANDIDATES_PER_K * (size_t)c->k;
    int rc = RSCLIP_OK;
    for (size_t i = 0; i < n_cand && !rc; i++) {
        if (c->n_top == c->k && c->top[c->k - 1].rise > cv[i].approx + CHANGE_ORDER_SLACK) break;
        if (c->n_walked == cap) break;
        c->n_walked++;
        rsclip_tile_info *t = NULL;
        if ((rc = rsclip_index_get_tile(s->parts[cv[i].part].idx, cv[i].id, &t))) break;
        if (!t->has_lonlat || t->n_footprint < 3) {
            c->n_pixel++; /* pixel coordinates: no ground to compare */
            rsclip_free(t);
            continue;
        }
        found f;
        memset(&f, 0, sizeof f);
        float sc = 0;
        rc = tile_score(s, cv[i].part, cv[i].id, c->qv, c->n_neg, c->vbuf, &sc);
        f.to = (rsclip__tile_ref){cv[i].id, cv[i].part, sc};
        f.prob_to = rsclip__prob_of(s, sc);
        int ok = 0;
        if (!rc && f.prob_to >= c->q->min_prob) {
            OGRGeometryH poly = footprint_poly(t);
            rc = cover_one(c, t, poly, &f, &ok);
            OGR_G_DestroyGeometry(poly);
        }
        rsclip_free(t);
        if (rc) break;
        if (f.prob_to < c->q->min_prob) continue;
        if (!ok) {
            c->n_unseen++;
            continue;
        }
        f.rise = f.prob_to - f.prob_from;
        keep_top(c, &f);
    }
    return rc;
}

/* ---- results ----------------------------------------------------------------------------------
 */

struct changes_impl {
    rsclip_changes pub;
    rsclip_results *to, *from; /* the hits the changes borrow from */
    char *why, *note;
};

void rsclip_changes_free(rsclip_changes *c) {
    if (!c) return;
    struct changes_impl *ci = (struct changes_impl *)c;
    rsclip_results_free(ci->to);
    rsclip_results_free(ci->from);
    free(ci->why);
    free(ci->note);
    free(c->changes);
    free(ci);
}

int rsclip_change_regions(const rsclip_changes *c, rsclip_region **out, int *n_out) {
    if (!c || !out || !n_out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "change regions: no changes");
    *out = NULL;
    *n_out = 0;
    rsclip_hit *hits = rsclip__malloc(sizeof *hits * (size_t)(c->n > 0 ? c->n : 1));
    if (!hits) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n; i++) hits[i] = c->changes[i].to;
    rsclip_region *rg = NULL;
    int n_rg = 0;
    int rc = rsclip_regions_merge(hits, c->n, &rg, &n_rg);
    free(hits);
    if (rc) return rc;
    for (int i = 0; i < n_rg; i++) {
        rsclip_region *r = &rg[i];
        double sum = 0;
        int n = 0;
        for (int t = 0; t < r->n_tiles; t++)
            for (int j = 0; j < c->n; j++)
                if (c->changes[j].to.tile_id == r->tile_ids[t]) {
                    float rise = c->changes[j].rise;
                    if (!n || rise > r->max_rise) r->max_rise = rise;
                    sum += rise;
                    n++;
                    break;
                }
        r->has_rise = n > 0;
        r->mean_rise = n ? (float)(sum / n) : 0;
    }
    *out = rg;
    *n_out = n_rg;
    return RSCLIP_OK;
}

static int make_results(change_ctx *c, const rsclip_time *from, const rsclip_time *to,
                        size_t n_late, struct changes_impl *ci) {
    rsclip_session *s = c->s;
    rsclip__tile_ref *tr = rsclip__malloc(sizeof *tr * (size_t)(c->n_top ? c->n_top : 1));
    rsclip__tile_ref *fr = rsclip__malloc(sizeof *fr * (size_t)(c->n_top ? c->n_top : 1));
    ci->pub.changes = rsclip__calloc((size_t)(c->n_top ? c->n_top : 1), sizeof *ci->pub.changes);
    int rc =
        tr && fr && ci->pub.changes ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_top && !rc; i++) tr[i] = c->top[i].to, fr[i] = c->top[i].from;
    if (!rc) rc = rsclip__results_of(s, tr, c->n_top, &ci->to);
    if (!rc) rc = rsclip__results_of(s, fr, c->n_top, &ci->from);
    free(tr);
    free(fr);
    if (rc) return rc;
    for (int i = 0; i < c->n_top; i++) {
        rsclip_change *ch = &ci->pub.changes[i];
        ch->to = ci->to->hits[i];
        ch->from = ci->from->hits[i];
        ch->rank = i + 1;
        ch->rise = c->top[i].rise;
        ch->prob_from = c->top[i].prob_from;
        ch->coverage = c->top[i].coverage;
        ch->n_from = c->top[i].n_from;
    }
    ci->pub.n = c->n_top;
    char a[RSCLIP_TIME_TEXT_MAX], b[RSCLIP_TIME_TEXT_MAX], buf[768];
    rsclip_time_format(from, a, sizeof a);
    rsclip_time_format(to, b, sizeof b);
    const size_t cap = CHANGE_CANDIDATES_BASE + (size_t)CHANGE_CANDIDATES_PER_K * (size_t)c->k;
    int n = snprintf(buf, sizeof buf, "%zu later tile%s examined", c->n_walked,
                     c->n_walked == 1 ? "" : "s");
    if (c->n_unseen && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      "; %zu not seen in the earlier period (earlier tiles cover under half)",
                      c->n_unseen);
    if (c->n_pixel && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "; %zu in pixel coordinates (no ground)",
                      c->n_pixel);
    if (c->n_walked == cap && c->n_walked < n_late && n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n,
                 "; stopped there (of %zu): the rises are the best among the most probable "
                 "later tiles",
                 n_late);
    ci->note = rsclip__strdup(buf);
    ci->pub.note = ci->note;
    if (c->n_top == 0) {
        char w[512];
        if (n_late == 0)
            snprintf(w, sizeof w, "no tile of the later period %s passes the filters", b);
        else
            snprintf(w, sizeof w,
                     "no place of the later period %s was seen in the earlier period %s (tiles "
                     "covering at least half of it)%s",
                     b, a, c->q->min_prob > 0 ? " above --min-prob" : "");
        ci->why = rsclip__strdup(w);
        ci->pub.why_empty = ci->why;
    }
    if (!ci->note || (c->n_top == 0 && !ci->why))
        return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    return RSCLIP_OK;
}

/* A query restricted to a period: q's filters with after = before = the period. */
static rsclip_query period_query(const rsclip_query *q, const char *period) {
    rsclip_query p = *q;
    p.after = p.before = period;
    return p;
}

int rsclip_session_change(rsclip_session *s, const rsclip_query *q, const rsclip_time *from,
                          const rsclip_time *to, rsclip_changes **out) {
    if (!s || !q || !from || !to || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "change: invalid arguments");
    *out = NULL;
    int rc = rsclip_change_check(q, from, to);
    if (rc) return rc;
    char tf[RSCLIP_TIME_TEXT_MAX], tt[RSCLIP_TIME_TEXT_MAX];
    if (rsclip_time_format(from, tf, sizeof tf) || rsclip_time_format(to, tt, sizeof tt))
        return rsclip_last_status();
    const int dim = s->info.embed_dim;
    change_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.q = q;
    c.k = q->k;
    float *qv = NULL;
    rsclip__allow_list *late = rsclip__calloc((size_t)s->n_parts, sizeof *late);
    c.early = rsclip__calloc((size_t)s->n_parts, sizeof *c.early);
    c.memo = rsclip__calloc((size_t)s->n_parts, sizeof *c.memo);
    c.vbuf = rsclip__malloc(sizeof(float) * (size_t)dim);
    c.top = rsclip__malloc(sizeof *c.top * (size_t)q->k);
    struct changes_impl *ci = rsclip__calloc(1, sizeof *ci);
    if (!late || !c.early || !c.memo || !c.vbuf || !c.top || !ci)
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!rc && q->scene_id > 0) rc = rsclip__query_check_scene(s, q->scene_id);
    if (!rc) rc = rsclip__query_vectors(s, q, &qv, &c.n_neg);
    c.qv = qv;
    const rsclip_query ql = period_query(q, tt);
    rsclip_query qe = rsclip_query_default();
    qe.after = qe.before = tf;
    /* the later tiles (q's filters) and the earlier ones (any place), scored from the codes */
    cand *cv = NULL;
    size_t n_cand = 0;
    rsclip__gdal_errors ge;
    rsclip__gdal_errors_push(&ge);
    for (int p = 0; p < s->n_parts && !rc; p++) {
        rc = rsclip__query_build_allow(s, p, &ql, &late[p]);
        if (!rc) rc = rsclip__query_build_allow(s, p, &qe, &c.early[p]);
        /* every code is scored: check them all first (a damaged cache is rebuilt) */
        if (!rc && s->parts[p].vs)
            rc = rsclip__part_repair(s, p, rsclip_vecset_verify(s->parts[p].vs));
        rsclip_vecset *vs = s->parts[p].vs;
        size_t cnt = vs ? rsclip_vecset_count(vs) : 0;
        if (rc || !cnt || late[p].n == 0) continue;
        float *all = rsclip__malloc(sizeof(float) * cnt);
        cand *ncv = rsclip__realloc(cv, sizeof *cv * (n_cand + late[p].n));
        if (ncv) cv = ncv;
        if (!all || !ncv) {
            free(all);
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            break;
        }
        rsclip_search_params sp = rsclip_search_default_params();
        sp.negatives = c.n_neg ? qv + dim : NULL;
        sp.n_negatives = c.n_neg;
        rc = rsclip_vecset_score_all(vs, qv, &sp, all);
        const int64_t *vid = rsclip_vecset_ids(vs);
        for (size_t i = 0; i < late[p].n && !rc; i++) {
            const int64_t *h = bsearch(&late[p].ids[i], vid, cnt, sizeof *vid, rsclip__cmp_i64);
            if (h) cv[n_cand++] = (cand){late[p].ids[i], p, rsclip__prob_of(s, all[h - vid])};
        }
        free(all);
    }
    if (!rc && n_cand > 1) qsort(cv, n_cand, sizeof *cv, cmp_cand);
    double t0 = rsclip__now_ms();
    if (!rc) rc = walk(&c, cv, n_cand);
    rsclip__gdal_errors_pop(&ge);
    if (!rc)
        rsclip__log(RSCLIP_LOG_INFO, "change timing: %.1f ms for %zu of %zu later tiles",
                    rsclip__now_ms() - t0, c.n_walked, n_cand);
    if (!rc) rc = make_results(&c, from, to, n_cand, ci);
    for (int p = 0; p < s->n_parts; p++) {
        if (late) rsclip_free(late[p].ids);
        if (c.early) rsclip_free(c.early[p].ids);
        if (c.memo) free(c.memo[p]);
    }
    free(late);
    free(c.early);
    free(c.memo);
    free(c.vbuf);
    free(c.top);
    free(cv);
    free(qv);
    if (rc) {
        rsclip_changes_free(ci ? &ci->pub : NULL);
        return rc;
    }
    *out = &ci->pub;
    return RSCLIP_OK;
}
