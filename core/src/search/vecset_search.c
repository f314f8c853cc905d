/* The search over a vector set: the 4-bit and int8 scans with a bounded candidate heap, the
 * exact rerank, the exact sgemv path for small sets, and the candidate API a search over several
 * sets uses. Building a set is vecset.c; its cache file, cache.c. */
#include "base/base.h"
#include "base/pool.h"
#include "search/vecset_internal.h"
#include "status/status_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- search ---------------------------------------------------------------------------------- */

/* A scored row; candidates are ordered by score desc, then id asc. */
typedef struct cand {
    float s;
    uint32_t row;
    int64_t id;
} cand;

static inline int cand_better(const cand *a, const cand *b) {
    return a->s > b->s || (a->s == b->s && a->id < b->id);
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return rsclip__cmp_score_id(x->s, x->id, y->s, y->id);
}

/* Bounded heap of the best cap candidates; heap[0] is the worst kept. */
typedef struct cheap {
    cand *h;
    size_t n, cap;
} cheap;

static void heap_sift_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, w = i;
        if (l < n && cand_better(&h[w], &h[l])) w = l;
        if (l + 1 < n && cand_better(&h[w], &h[l + 1])) w = l + 1;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Would c enter the heap? */
static inline int heap_wants(const cheap *hp, const cand *c) {
    return hp->n < hp->cap || cand_better(c, &hp->h[0]);
}

static void heap_push(cheap *hp, const cand *c) {
    if (hp->n < hp->cap) {
        size_t i = hp->n++;
        hp->h[i] = *c;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!cand_better(&hp->h[p], &hp->h[i])) break;
            cand t = hp->h[p];
            hp->h[p] = hp->h[i];
            hp->h[i] = t;
            i = p;
        }
    } else {
        hp->h[0] = *c;
        heap_sift_down(hp->h, hp->n, 0);
    }
}

static inline float sanitize(float s) {
    return s == s ? s : -INFINITY;
}

/* Prepared queries: q[0] positive, q[1..] negatives; normalised floats and int8 codes. */
typedef struct qset {
    int nq;
    float lam;
    float *qf;     /* [nq, dim] */
    int8_t *qc;    /* [nq, stride] aligned */
    int32_t *qsum; /* [nq] */
    float *qscale; /* [nq] */
    double qnorm;  /* max |qf_j| (about 1) */
} qset;

static void qset_free(qset *qs) {
    free(qs->qf);
    free(qs->qc);
    free(qs->qsum);
    free(qs->qscale);
}

static int qset_prepare(const rsclip_vecset *vs, const float *query, const rsclip_search_params *p,
                        qset *qs) {
    memset(qs, 0, sizeof *qs);
    if (p->n_negatives < 0 || p->n_negatives > RSCLIP_SEARCH_MAX_NEGATIVES ||
        (p->n_negatives > 0 && !p->negatives))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "rsclip_vecset_search: n_negatives %d (at most %d, negatives needed)",
                             p->n_negatives, RSCLIP_SEARCH_MAX_NEGATIVES);
    if (!isfinite(p->neg_weight))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_search: neg_weight not finite");
    const size_t dim = (size_t)vs->dim, stride = vs->stride;
    qs->nq = 1 + p->n_negatives;
    qs->lam = p->neg_weight;
    qs->qf = rsclip__malloc((size_t)qs->nq * dim * sizeof(float));
    qs->qc = rsclip__alloc_huge((size_t)qs->nq * stride);
    qs->qsum = rsclip__malloc((size_t)qs->nq * sizeof(int32_t));
    qs->qscale = rsclip__malloc((size_t)qs->nq * sizeof(float));
    if (!qs->qf || !qs->qc || !qs->qsum || !qs->qscale) {
        qset_free(qs);
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    }
    memset(qs->qc, 0, (size_t)qs->nq * stride);
    for (int j = 0; j < qs->nq; j++) {
        const float *src = j == 0 ? query : p->negatives + (size_t)(j - 1) * dim;
        float *qf = qs->qf + (size_t)j * dim;
        int8_t *qc = qs->qc + (size_t)j * stride;
        double nn = 0.0;
        for (size_t t = 0; t < dim; t++) nn += (double)src[t] * (double)src[t];
        nn = sqrt(nn);
        if (!(nn > 0.0) || !isfinite(nn)) {
            qset_free(qs);
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "rsclip_vecset_search: %s %d is zero or not finite",
                                 j ? "negative" : "query", j ? j - 1 : 0);
        }
        float m = 0.0f;
        double n2 = 0.0;
        for (size_t t = 0; t < dim; t++) {
            qf[t] = (float)(src[t] / nn);
            n2 += (double)qf[t] * (double)qf[t];
            if (fabsf(qf[t]) > m) m = fabsf(qf[t]);
        }
        if (sqrt(n2) > qs->qnorm) qs->qnorm = sqrt(n2);
        float inv = 127.0f / m;
        int32_t sum = 0;
        for (size_t t = 0; t < dim; t++) {
            long c = lrintf(qf[t] * inv);
            if (c > 127) c = 127;
            if (c < -127) c = -127;
            qc[t] = (int8_t)c;
            sum += (int32_t)c;
        }
        qs->qsum[j] = sum;
        qs->qscale[j] = m / 127.0f;
    }
    return RSCLIP_OK;
}

/* Approximate score of a row from its integer dots (one place, so every kernel ranks alike). */
static inline float approx_score(const qset *qs, float scale, const int32_t *d) {
    float p = (float)d[0] * qs->qscale[0];
    if (qs->nq > 1) {
        float m = (float)d[1] * qs->qscale[1];
        for (int j = 2; j < qs->nq; j++) {
            float x = (float)d[j] * qs->qscale[j];
            if (x > m) m = x;
        }
        p = p - qs->lam * m;
    }
    return sanitize(scale * p);
}

#define SCAN_BLOCK 256

/* The checksums of the codes of positions [b, b + n) of rows (or rows b.. themselves), checked
 * before a kernel reads them (loaded sets; see rsclip__vecset_check_rows). */
static int check_rows(const rsclip_vecset *vs, int int4, const uint32_t *rows, size_t b, size_t n) {
    if (!vs->check) return 0;
    if (!rows) return rsclip__vecset_check_rows(vs, int4, b, n);
    for (size_t i = 0; i < n; i++)
        if (rsclip__vecset_check_rows(vs, int4, rows[b + i], 1)) return 1;
    return 0;
}

typedef struct scan_job {
    const rsclip_vecset *vs;
    const qset *qs;
    rsclip__dot_kernel kern;
    const uint8_t *codes; /* int8 or int4 codes, with their row size and scales */
    size_t stride;
    const float *scales;
    const uint32_t *rows; /* NULL: rows are begin..end-1 themselves */
    size_t begin, end;    /* positions in rows (or row numbers) */
    int int4;             /* the codes are the int4 ones */
    int damaged;          /* a block of the codes failed its checksum: the scan stopped */
    rsclip_filter_fn filter;
    void *filter_user;
    cheap heap; /* candidate mode */
    float *all; /* score-all mode: out[position] */
    int32_t *dots;
} scan_job;

static void *scan_run(void *arg) {
    scan_job *jb = arg;
    const rsclip_vecset *vs = jb->vs;
    const int nq = jb->qs->nq;
    for (size_t b = jb->begin; b < jb->end; b += SCAN_BLOCK) {
        size_t n = jb->end - b < SCAN_BLOCK ? jb->end - b : SCAN_BLOCK;
        if (check_rows(vs, jb->int4, jb->rows, b, n)) {
            jb->damaged = 1;
            return NULL;
        }
        jb->kern(jb->codes, jb->stride, jb->rows ? jb->rows + b : NULL, b, n, jb->qs->qc, nq,
                 jb->qs->qsum, jb->dots);
        for (size_t i = 0; i < n; i++) {
            uint32_t row = jb->rows ? jb->rows[b + i] : (uint32_t)(b + i);
            float s = approx_score(jb->qs, jb->scales[row], jb->dots + i * (size_t)nq);
            if (jb->all) {
                jb->all[b + i] = s;
                continue;
            }
            cand c = {s, row, vs->ids[row]};
            if (!heap_wants(&jb->heap, &c)) continue;
            if (jb->filter && !jb->filter(jb->filter_user, c.id)) continue;
            heap_push(&jb->heap, &c);
        }
    }
    return NULL;
}

static void scan_part(void *arg, int part, int n_parts) {
    (void)n_parts;
    (void)scan_run((scan_job *)arg + part);
}

/* Scan the int8 (or with int4 set, the int4) codes of positions [0, npos) of rows (or all rows)
 * with up to n_threads threads: either keep the best cap candidates (sorted best first into *out,
 * count *n_out), or write every approximate score into all[]. */
static int scan(const rsclip_vecset *vs, const qset *qs, const rsclip_search_params *p,
                const uint32_t *rows, size_t npos, size_t cap, cand **out, size_t *n_out,
                float *all, int int4) {
    rsclip__dot_kernel kern =
        int4 ? rsclip__search_kernel4(p->kernel) : rsclip__search_kernel(p->kernel);
    if (!kern)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "rsclip_vecset_search: kernel %d is not available on this CPU",
                             p->kernel);
    int nt = p->n_threads < 1 ? 1 : p->n_threads > 64 ? 64 : p->n_threads;
    /* Threads only pay off on large scans. */
    size_t min_per_thread = 8192;
    if ((size_t)nt > npos / min_per_thread) nt = (int)(npos / min_per_thread);
    if (nt < 1) nt = 1;
    scan_job jobs[64];
    int rc = RSCLIP_OK;
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < nt; t++) {
        scan_job *jb = &jobs[t];
        jb->vs = vs;
        jb->qs = qs;
        jb->kern = kern;
        jb->codes = int4 ? vs->codes4 : vs->codes;
        jb->stride = int4 ? vs->stride / 2 : vs->stride;
        jb->scales = int4 ? vs->scales4 : vs->scales;
        jb->rows = rows;
        jb->int4 = int4;
        /* Split on SCAN_BLOCK boundaries. */
        size_t nb = (npos + SCAN_BLOCK - 1) / SCAN_BLOCK;
        jb->begin = nb * (size_t)t / (size_t)nt * SCAN_BLOCK;
        jb->end = nb * (size_t)(t + 1) / (size_t)nt * SCAN_BLOCK;
        if (jb->end > npos) jb->end = npos;
        if (jb->begin > npos) jb->begin = npos;
        jb->filter = p->filter;
        jb->filter_user = p->filter_user;
        jb->all = all;
        jb->dots = rsclip__malloc(SCAN_BLOCK * (size_t)qs->nq * sizeof(int32_t));
        if (!all) {
            jb->heap.cap = cap;
            jb->heap.h = rsclip__malloc((cap ? cap : 1) * sizeof(cand));
        }
        if (!jb->dots || (!all && !jb->heap.h)) rc = RSCLIP_ERR_NOMEM;
    }
    /* the process's worker pool (shared with the encoder): no thread is created per query */
    if (rc == RSCLIP_OK) rsclip__pool_run(nt, scan_part, jobs);
    for (int t = 0; t < nt && rc == RSCLIP_OK; t++)
        if (jobs[t].damaged) rc = RSCLIP_ERR_FORMAT;
    if (rc == RSCLIP_OK && !all) {
        size_t tot = 0;
        for (int t = 0; t < nt; t++) tot += jobs[t].heap.n;
        cand *m = rsclip__malloc((tot ? tot : 1) * sizeof(cand));
        if (!m) {
            rc = RSCLIP_ERR_NOMEM;
        } else {
            size_t o = 0;
            for (int t = 0; t < nt; t++) {
                memcpy(m + o, jobs[t].heap.h, jobs[t].heap.n * sizeof(cand));
                o += jobs[t].heap.n;
            }
            qsort(m, tot, sizeof(cand), cmp_cand);
            *out = m;
            *n_out = tot < cap ? tot : cap;
        }
    }
    for (int t = 0; t < nt; t++) {
        free(jobs[t].dots);
        free(jobs[t].heap.h);
    }
    if (rc == RSCLIP_ERR_NOMEM)
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    if (rc == RSCLIP_ERR_FORMAT) return rsclip__vecset_damage_error(vs);
    return rc;
}

static int cmp_cand_row(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return x->row < y->row ? -1 : (x->row > y->row);
}

/* Second pass: re-score the int4 pass's candidates with the int8 codes, keep the best cap. */
static int rescore8(const rsclip_vecset *vs, const qset *qs, const rsclip_search_params *p, cand *c,
                    size_t nc, size_t cap, size_t *n_out) {
    rsclip__dot_kernel kern = rsclip__search_kernel(p->kernel);
    uint32_t rows[SCAN_BLOCK];
    int32_t *dots = rsclip__malloc(SCAN_BLOCK * (size_t)qs->nq * sizeof(int32_t));
    if (!kern || !dots) {
        free(dots);
        return rsclip__error(kern ? RSCLIP_ERR_NOMEM : RSCLIP_ERR_UNSUPPORTED,
                             "rsclip_vecset_search: %s", kern ? "out of memory" : "no kernel");
    }
    qsort(c, nc, sizeof(cand), cmp_cand_row); /* forward through memory */
    for (size_t b = 0; b < nc; b += SCAN_BLOCK) {
        size_t n = nc - b < SCAN_BLOCK ? nc - b : SCAN_BLOCK;
        for (size_t i = 0; i < n; i++) rows[i] = c[b + i].row;
        if (check_rows(vs, 0, rows, 0, n)) {
            free(dots);
            return rsclip__vecset_damage_error(vs);
        }
        kern(vs->codes, vs->stride, rows, 0, n, qs->qc, qs->nq, qs->qsum, dots);
        for (size_t i = 0; i < n; i++)
            c[b + i].s = approx_score(qs, vs->scales[rows[i]], dots + i * (size_t)qs->nq);
    }
    free(dots);
    qsort(c, nc, sizeof(cand), cmp_cand);
    *n_out = nc < cap ? nc : cap;
    return RSCLIP_OK;
}

static size_t find_row(const rsclip_vecset *vs, int64_t id) {
    size_t lo = 0, hi = vs->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vs->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < vs->count && vs->ids[lo] == id ? lo : (size_t)-1;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : (x > y);
}

/* Allowed rows, ascending and unique. */
static int allowed_rows(const rsclip_vecset *vs, const int64_t *ids, size_t n, uint32_t **out,
                        size_t *n_out) {
    uint32_t *rows = rsclip__malloc((n ? n : 1) * sizeof(uint32_t));
    if (!rows) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t r = find_row(vs, ids[i]);
        if (r != (size_t)-1) rows[m++] = (uint32_t)r;
    }
    qsort(rows, m, sizeof(uint32_t), cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || rows[u - 1] != rows[i]) rows[u++] = rows[i];
    *out = rows;
    *n_out = u;
    return RSCLIP_OK;
}

typedef struct scored {
    double s;
    double cos;
    int64_t id;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* Exact scores of the candidates (float32 vectors, double accumulation); the k best into hits. */
static int rerank(const rsclip_vecset *vs, const qset *qs, const rsclip_search_params *p, cand *c,
                  size_t nc, rsclip_vecset_hit *hits, int *n_hits) {
    const size_t dim = (size_t)vs->dim;
    float *buf = NULL;
    *n_hits = 0;
    if (nc == 0) return RSCLIP_OK;
    /* Rows are in id order: fetching in row order walks the index's B-tree forwards. */
    qsort(c, nc, sizeof(cand), cmp_cand_row);
    scored *sc = rsclip__malloc(nc * sizeof *sc);
    if (!sc) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    if (!vs->floats) {
        int64_t *ids = rsclip__malloc(nc * sizeof(int64_t));
        size_t fb;
        if (rsclip__mul_size(nc, dim * sizeof(float), &fb)) fb = (size_t)-1;
        buf = ids ? rsclip__malloc(fb) : NULL;
        if (!ids || !buf) {
            free(ids);
            free(buf);
            free(sc);
            return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
        }
        for (size_t i = 0; i < nc; i++) ids[i] = c[i].id;
        rsclip_clear_error();
        int rc = p->fetch(p->fetch_user, nc, ids, buf);
        free(ids);
        if (rc != RSCLIP_OK) {
            free(buf);
            free(sc);
            if (rc > 0 || rc < RSCLIP_ERR_INTERNAL) rc = RSCLIP_ERR_INTERNAL;
            if (rsclip_last_status() == rc) return rsclip__error_prefix("fetch");
            return rsclip__error(rc, "rsclip_vecset_search: the fetch callback failed (%s)",
                                 rsclip_status_name(rc));
        }
    }
    for (size_t i = 0; i < nc; i++) {
        const float *v = vs->floats ? vs->floats + (size_t)c[i].row * dim : buf + i * dim;
        double best_neg = -INFINITY, pos = 0.0;
        for (int j = 0; j < qs->nq; j++) {
            const float *q = qs->qf + (size_t)j * dim;
            double s = 0.0;
            for (size_t t = 0; t < dim; t++) s += (double)q[t] * (double)v[t];
            if (j == 0)
                pos = s;
            else if (s > best_neg)
                best_neg = s;
        }
        double s = qs->nq > 1 ? pos - (double)qs->lam * best_neg : pos;
        sc[i].s = s == s ? s : -INFINITY;
        sc[i].cos = pos;
        sc[i].id = c[i].id;
    }
    free(buf);
    qsort(sc, nc, sizeof *sc, cmp_scored);
    size_t nh = nc < (size_t)p->k ? nc : (size_t)p->k;
    for (size_t i = 0; i < nh; i++) {
        hits[i].id = sc[i].id;
        hits[i].score = (float)sc[i].s;
        hits[i].cosine = (float)sc[i].cos;
    }
    free(sc);
    *n_hits = (int)nh;
    return RSCLIP_OK;
}

/* Float32 scores of positions [0, npos) (rows[] or all rows) with BLAS, combined as the approximate
 * score is: f[i] = s_pos - lam * max s_neg. */
static int exact_scores(const rsclip_vecset *vs, const qset *qs, const uint32_t *rows, size_t npos,
                        float *f) {
    const size_t dim = (size_t)vs->dim;
    const int nq = qs->nq;
    const size_t blk = (size_t)1 << 16;
    float *tmp = rsclip__malloc(blk * (size_t)nq * sizeof(float));
    if (!tmp) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    for (size_t b = 0; b < npos; b += blk) {
        size_t n = npos - b < blk ? npos - b : blk;
        if (!rows && nq == 1) {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)dim, 1.0f, vs->floats + b * dim,
                        (int)dim, qs->qf, 1, 0.0f, tmp, 1);
        } else if (!rows) {
            /* [n, dim] x [nq, dim]^T -> [n, nq]: one pass over the vectors for all queries. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, nq, (int)dim, 1.0f,
                        vs->floats + b * dim, (int)dim, qs->qf, (int)dim, 0.0f, tmp, nq);
        } else {
            for (size_t i = 0; i < n; i++)
                for (int j = 0; j < nq; j++)
                    tmp[i * (size_t)nq + (size_t)j] =
                        cblas_sdot((int)dim, vs->floats + (size_t)rows[b + i] * dim, 1,
                                   qs->qf + (size_t)j * dim, 1);
        }
        for (size_t i = 0; i < n; i++) {
            const float *d = tmp + i * (size_t)nq;
            float s = d[0];
            if (nq > 1) {
                float m = d[1];
                for (int j = 2; j < nq; j++)
                    if (d[j] > m) m = d[j];
                s = s - qs->lam * m;
            }
            f[b + i] = sanitize(s);
        }
    }
    free(tmp);
    return RSCLIP_OK;
}

/* Candidates of the exact path: every allowed row whose float32 score is within a proven error
 * margin of the k-th best, so that the double rerank yields the exact top k. */
static int exact_candidates(const rsclip_vecset *vs, const qset *qs, const rsclip_search_params *p,
                            const uint32_t *rows, size_t npos, cand **out, size_t *n_out) {
    float *f = rsclip__malloc((npos ? npos : 1) * sizeof(float));
    if (!f) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    int rc = exact_scores(vs, qs, rows, npos, f);
    if (rc != RSCLIP_OK) {
        free(f);
        return rc;
    }
    cheap hp = {rsclip__malloc((size_t)p->k * sizeof(cand)), 0, (size_t)p->k};
    if (!hp.h) {
        free(f);
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    }
    for (size_t i = 0; i < npos; i++) {
        uint32_t row = rows ? rows[i] : (uint32_t)i;
        cand c = {f[i], row, vs->ids[row]};
        if (!heap_wants(&hp, &c)) continue;
        if (p->filter && !p->filter(p->filter_user, c.id)) continue;
        heap_push(&hp, &c);
    }
    if (hp.n < hp.cap) { /* fewer than k rows pass: all of them are the answer */
        free(f);
        *out = hp.h;
        *n_out = hp.n;
        return RSCLIP_OK;
    }
    /* Any float32 dot of n terms is within gamma * |q| |v| of the exact one, whatever the BLAS
     * summation order (FMA included); doubled for the combination with negatives. */
    const double u = ldexp(1.0, -24);
    double gamma = (vs->dim + 16) * 2.0 * u / (1.0 - (vs->dim + 16) * 2.0 * u);
    double e = gamma * qs->qnorm * vs->max_norm * (1.0 + fabs((double)qs->lam)) + 1e-30;
    double thr = (double)hp.h[0].s - 2.0 * e;
    free(hp.h);
    size_t n = 0, cap = 64;
    cand *cs = rsclip__malloc(cap * sizeof(cand));
    for (size_t i = 0; cs && i < npos; i++) {
        if (!((double)f[i] >= thr)) continue;
        uint32_t row = rows ? rows[i] : (uint32_t)i;
        if (p->filter && !p->filter(p->filter_user, vs->ids[row])) continue;
        if (n == cap) {
            cand *g = rsclip__realloc(cs, 2 * cap * sizeof(cand));
            if (!g) {
                free(cs);
                cs = NULL;
                break;
            }
            cs = g;
            cap *= 2;
        }
        cs[n].s = f[i];
        cs[n].row = row;
        cs[n].id = vs->ids[row];
        n++;
    }
    free(f);
    if (!cs) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    *out = cs;
    *n_out = n;
    return RSCLIP_OK;
}

/* Every allowed row passing the filter (sets no larger than the candidate count). */
static int all_candidates(const rsclip_vecset *vs, const rsclip_search_params *p,
                          const uint32_t *rows, size_t npos, cand **out, size_t *n_out) {
    cand *cs = rsclip__malloc((npos ? npos : 1) * sizeof(cand));
    if (!cs) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < npos; i++) {
        uint32_t row = rows ? rows[i] : (uint32_t)i;
        if (p->filter && !p->filter(p->filter_user, vs->ids[row])) continue;
        cs[n].s = 0.0f;
        cs[n].row = row;
        cs[n].id = vs->ids[row];
        n++;
    }
    *out = cs;
    *n_out = n;
    return RSCLIP_OK;
}

/* Candidates of the int4 pass, or 0 when the int8 codes are scanned directly (small sets: the
 * int4 pass pays off only when it reads much more than its candidates). */
static size_t n_prefilter_of(const rsclip_search_params *p, size_t ncand, size_t npos) {
    if (p->n_prefilter < 0) return 0;
    size_t pre =
        p->n_prefilter > 0 ? (size_t)p->n_prefilter : (4 * ncand > 1024 ? 4 * ncand : 1024);
    if (pre < ncand) pre = ncand;
    return npos >= 8 * pre ? pre : 0;
}

/* The int8 candidates of a large scan: an int4 pass then int8 re-scoring, or int8 directly. */
static int scan_candidates(const rsclip_vecset *vs, const qset *qs, const rsclip_search_params *p,
                           const uint32_t *rows, size_t npos, size_t ncand, cand **out,
                           size_t *n_out) {
    size_t npre = n_prefilter_of(p, ncand, npos);
    if (!npre) return scan(vs, qs, p, rows, npos, ncand, out, n_out, NULL, 0);
    size_t n4 = 0;
    int rc = scan(vs, qs, p, rows, npos, npre, out, &n4, NULL, 1);
    if (rc != RSCLIP_OK) return rc;
    rc = rescore8(vs, qs, p, *out, n4, ncand, n_out);
    if (rc != RSCLIP_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int check_common(const rsclip_vecset *vs, const float *query, const char *fn) {
    if (!vs || !query) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: NULL argument", fn);
    if (!vs->finalized)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: the set is not finalized", fn);
    return RSCLIP_OK;
}

static size_t n_candidates_of(const rsclip_search_params *p) {
    size_t k = (size_t)p->k;
    size_t c = p->n_candidates > 0 ? (size_t)p->n_candidates : (10 * k > 256 ? 10 * k : 256);
    return c < k ? k : c;
}

int rsclip_vecset_search(const rsclip_vecset *vs, const float *query,
                         const rsclip_search_params *params, rsclip_vecset_hit *hits, int *n_hits) {
    int rc = check_common(vs, query, "rsclip_vecset_search");
    if (rc != RSCLIP_OK) return rc;
    if (!hits || !n_hits)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_search: NULL argument");
    *n_hits = 0;
    rsclip_search_params p = params ? *params : rsclip_search_default_params();
    if (p.k < 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_search: k %d < 1", p.k);
    if (p.mode < RSCLIP_SEARCH_AUTO || p.mode > RSCLIP_SEARCH_QUANT)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_search: bad mode %d", p.mode);
    if (!vs->floats && !p.fetch)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "rsclip_vecset_search: the set holds no float vectors: a fetch "
                             "callback is needed for the exact rerank");
    if (p.mode == RSCLIP_SEARCH_EXACT && !vs->floats)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "rsclip_vecset_search: exact mode needs the float vectors in the set");
    if (p.allow_ids == NULL && p.n_allow > 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_search: allow_ids is NULL");
    int exact = p.mode == RSCLIP_SEARCH_EXACT ||
                (p.mode == RSCLIP_SEARCH_AUTO && vs->floats && vs->count <= p.exact_below);
    qset qs;
    rc = qset_prepare(vs, query, &p, &qs);
    if (rc != RSCLIP_OK) return rc;
    uint32_t *rows = NULL;
    size_t npos = vs->count;
    if (p.allow_ids) rc = allowed_rows(vs, p.allow_ids, p.n_allow, &rows, &npos);
    cand *cs = NULL;
    size_t nc = 0;
    if (rc == RSCLIP_OK) {
        size_t ncand = n_candidates_of(&p);
        if (exact)
            rc = exact_candidates(vs, &qs, &p, rows, npos, &cs, &nc);
        else if (npos <= ncand)
            rc = all_candidates(vs, &p, rows, npos, &cs, &nc);
        else
            rc = scan_candidates(vs, &qs, &p, rows, npos, ncand, &cs, &nc);
    }
    if (rc == RSCLIP_OK) rc = rerank(vs, &qs, &p, cs, nc, hits, n_hits);
    free(cs);
    free(rows);
    qset_free(&qs);
    return rc;
}

int rsclip_vecset_score_all(const rsclip_vecset *vs, const float *query,
                            const rsclip_search_params *params, float *out) {
    int rc = check_common(vs, query, "rsclip_vecset_score_all");
    if (rc != RSCLIP_OK) return rc;
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_score_all: out is NULL");
    rsclip_search_params p = params ? *params : rsclip_search_default_params();
    qset qs;
    rc = qset_prepare(vs, query, &p, &qs);
    if (rc != RSCLIP_OK) return rc;
    if (vs->floats && p.mode != RSCLIP_SEARCH_QUANT)
        rc = exact_scores(vs, &qs, NULL, vs->count, out);
    else
        rc = scan(vs, &qs, &p, NULL, vs->count, 0, NULL, NULL, out, 0);
    qset_free(&qs);
    return rc;
}

int rsclip_vecset_candidates(const rsclip_vecset *vs, const float *query,
                             const rsclip_search_params *params, int64_t *ids, float *scores,
                             size_t cap, size_t *n) {
    int rc = check_common(vs, query, "rsclip_vecset_candidates");
    if (rc != RSCLIP_OK) return rc;
    if (!ids || !scores || !n || cap == 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_candidates: no room");
    *n = 0;
    rsclip_search_params p = params ? *params : rsclip_search_default_params();
    if (p.n_candidates <= 0) p.n_candidates = (int)cap;
    size_t ncand = (size_t)p.n_candidates < cap ? (size_t)p.n_candidates : cap;
    qset qs;
    rc = qset_prepare(vs, query, &p, &qs);
    if (rc != RSCLIP_OK) return rc;
    uint32_t *rows = NULL;
    size_t npos = vs->count;
    if (p.allow_ids) rc = allowed_rows(vs, p.allow_ids, p.n_allow, &rows, &npos);
    cand *cs = NULL;
    size_t nc = 0;
    if (rc == RSCLIP_OK)
        rc = p.coarse ? scan(vs, &qs, &p, rows, npos, ncand, &cs, &nc, NULL, 1)
                      : scan_candidates(vs, &qs, &p, rows, npos, ncand, &cs, &nc);
    if (rc == RSCLIP_OK) {
        for (size_t i = 0; i < nc; i++) {
            ids[i] = cs[i].id;
            scores[i] = cs[i].s;
        }
        *n = nc;
    }
    free(cs);
    free(rows);
    qset_free(&qs);
    return rc;
}
