/* The vector set: building (add, quantise, finalize), the int8 scan with a bounded candidate
 * heap, the exact rerank, the exact sgemv path for small sets. The cache file lives in cache.c. */
#include "base/base.h"
#include "base/pool.h"
#include "search/vecset_internal.h"
#include "status/status_internal.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

rsclip_vecset_params rsclip_vecset_default_params(void) {
    rsclip_vecset_params p;
    memset(&p, 0, sizeof p);
    return p;
}

rsclip_search_params rsclip_search_default_params(void) {
    rsclip_search_params p;
    memset(&p, 0, sizeof p);
    p.k = 10;
    p.exact_below = 32768;
    p.n_threads = 1;
    p.neg_weight = 0.5f;
    return p;
}

size_t rsclip__vecset_stride(int dim) {
    return ((size_t)dim + RSCLIP__DIM_ALIGN - 1) / RSCLIP__DIM_ALIGN * RSCLIP__DIM_ALIGN;
}

int rsclip_vecset_new(int dim, const rsclip_vecset_params *params, rsclip_vecset **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_new: out is NULL");
    *out = NULL;
    if (dim < 1 || dim > RSCLIP_VECSET_MAX_DIM)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_new: dim %d not in 1..%d", dim,
                             RSCLIP_VECSET_MAX_DIM);
    rsclip_vecset_params p = params ? *params : rsclip_vecset_default_params();
    rsclip_vecset *vs = calloc(1, sizeof *vs);
    if (!vs) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_new: out of memory");
    vs->dim = dim;
    vs->stride = rsclip__vecset_stride(dim);
    vs->keep_floats = p.keep_floats != 0;
    vs->sorted = 1;
    if (p.capacity_hint > 0 && rsclip__vecset_reserve(vs, p.capacity_hint) != RSCLIP_OK) {
        rsclip_vecset_free(vs);
        return RSCLIP_ERR_NOMEM;
    }
    *out = vs;
    return RSCLIP_OK;
}

void rsclip_vecset_free(rsclip_vecset *vs) {
    if (!vs) return;
    if (vs->map) {
        rsclip__vecset_unmap(vs);
    } else {
        free(vs->ids);
        free(vs->scales);
        free(vs->scales4);
        free(vs->codes);
        free(vs->codes4);
        free(vs->floats);
    }
    rsclip__vcheck_free(vs->check);
    free(vs);
}

/* Grow the owned arrays to hold at least want vectors. */
int rsclip__vecset_reserve(rsclip_vecset *vs, size_t want) {
    if (want <= vs->cap) return RSCLIP_OK;
    size_t cap = vs->cap ? vs->cap : 1024;
    while (cap < want) cap = cap > ((size_t)-1) / 2 ? want : cap * 2;
    if (cap > UINT32_MAX) cap = want;
    if (cap > UINT32_MAX)
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset: more than %u vectors",
                             (unsigned)UINT32_MAX);
    size_t ids_b, sc_b, codes_b, fl_b = 0;
    if (rsclip__mul_size(cap, sizeof(int64_t), &ids_b) ||
        rsclip__mul_size(cap, sizeof(float), &sc_b) ||
        rsclip__mul_size(cap, vs->stride, &codes_b) ||
        (vs->keep_floats && (rsclip__mul_size(cap, (size_t)vs->dim, &fl_b) ||
                             rsclip__mul_size(fl_b, sizeof(float), &fl_b))))
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset: size overflow");
    /* realloc'd arrays only grow: a failure half way leaves the set consistent */
    int64_t *ids = realloc(vs->ids, ids_b);
    if (ids) vs->ids = ids;
    float *sc = ids ? realloc(vs->scales, sc_b) : NULL;
    if (sc) vs->scales = sc;
    float *sc4 = sc ? realloc(vs->scales4, sc_b) : NULL;
    if (sc4) vs->scales4 = sc4;
    uint8_t *codes = sc4 ? rsclip__alloc_huge(codes_b) : NULL;
    uint8_t *codes4 = codes ? rsclip__alloc_huge(codes_b / 2) : NULL;
    float *fl = NULL;
    if (codes4 && vs->keep_floats) fl = realloc(vs->floats, fl_b);
    if (!codes4 || (vs->keep_floats && !fl)) {
        free(codes);
        free(codes4);
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset: out of memory for %zu vectors", cap);
    }
    if (vs->codes) memcpy(codes, vs->codes, vs->count * vs->stride);
    if (vs->codes4) memcpy(codes4, vs->codes4, vs->count * vs->stride / 2);
    free(vs->codes);
    free(vs->codes4);
    vs->codes = codes;
    vs->codes4 = codes4;
    if (fl) vs->floats = fl;
    vs->cap = cap;
    return RSCLIP_OK;
}

/* Round half away from zero (|x| is small here); the same on every machine. */
static inline int round_code(float x) {
    return (int)(x < 0.0f ? x - 0.5f : x + 0.5f);
}

/* Quantise v[0..dim) into both code sets (symmetric, scale = max|v| / levels). */
static void quantise(const float *v, size_t dim, size_t stride, uint8_t *c8, float *s8, uint8_t *c4,
                     float *s4) {
    float m = 0.0f;
    for (size_t t = 0; t < dim; t++) {
        float a = fabsf(v[t]);
        if (a > m) m = a;
    }
    float inv8 = m > 0.0f ? 127.0f / m : 0.0f, inv4 = m > 0.0f ? 7.0f / m : 0.0f;
    for (size_t t = 0; t < dim; t++) {
        int q = round_code(v[t] * inv8);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        c8[t] = (uint8_t)(q + 128);
    }
    memset(c8 + dim, 128, stride - dim);
    /* int4: codes of one 128-dim block, then low nibbles = dims 0..63, high = 64..127 */
    for (size_t b = 0; b < stride; b += 128) {
        uint8_t q4[128];
        for (size_t j = 0; j < 128; j++) {
            int q = b + j < dim ? round_code(v[b + j] * inv4) : 0;
            q = q > 7 ? 7 : q < -7 ? -7 : q;
            q4[j] = (uint8_t)(q + 8);
        }
        for (size_t j = 0; j < 64; j++) c4[b / 2 + j] = (uint8_t)(q4[j] | (q4[64 + j] << 4));
    }
    *s8 = m / 127.0f;
    *s4 = m / 7.0f;
}

int rsclip_vecset_add(rsclip_vecset *vs, size_t n, const int64_t *ids, const float *vecs) {
    if (!vs || (n && (!ids || !vecs)))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_add: NULL argument");
    if (vs->finalized)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "rsclip_vecset_add: the set is finalized (or loaded)");
    size_t want;
    if (rsclip__add_size(vs->count, n, &want) || want > UINT32_MAX)
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_add: more than %u vectors",
                             (unsigned)UINT32_MAX);
    const size_t dim = (size_t)vs->dim;
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < dim; t++)
            if (!isfinite(vecs[i * dim + t]))
                return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                     "rsclip_vecset_add: vector of id %lld has a non-finite value",
                                     (long long)ids[i]);
    int rc = rsclip__vecset_reserve(vs, want);
    if (rc != RSCLIP_OK) return rc;
    for (size_t i = 0; i < n; i++) {
        const float *v = vecs + i * dim;
        size_t r = vs->count + i;
        quantise(v, dim, vs->stride, vs->codes + r * vs->stride, &vs->scales[r],
                 vs->codes4 + r * (vs->stride / 2), &vs->scales4[r]);
        double nn = 0.0;
        for (size_t t = 0; t < dim; t++) nn += (double)v[t] * (double)v[t];
        vs->ids[r] = ids[i];
        if (vs->keep_floats) memcpy(vs->floats + r * dim, v, dim * sizeof(float));
        if (sqrt(nn) > vs->max_norm) vs->max_norm = sqrt(nn);
        if (r > 0 && vs->ids[r - 1] >= ids[i]) vs->sorted = 0;
    }
    vs->count += n;
    return RSCLIP_OK;
}

typedef struct id_row {
    int64_t id;
    uint32_t row;
} id_row;

static int cmp_id_row(const void *a, const void *b) {
    const id_row *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->row < y->row ? -1 : (x->row > y->row);
}

int rsclip_vecset_finalize(rsclip_vecset *vs) {
    if (!vs) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_finalize: NULL set");
    if (vs->finalized) return RSCLIP_OK;
    if (vs->sorted) {
        vs->finalized = 1;
        return RSCLIP_OK;
    }
    /* Order rows by id so that ids can be found by binary search (allow lists) and the cache file
     * needs no separate lookup table. */
    const size_t n = vs->count, dim = (size_t)vs->dim;
    id_row *perm = malloc(n * sizeof *perm);
    if (!perm) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_finalize: out of memory");
    for (size_t r = 0; r < n; r++) {
        perm[r].id = vs->ids[r];
        perm[r].row = (uint32_t)r;
    }
    qsort(perm, n, sizeof *perm, cmp_id_row);
    for (size_t r = 1; r < n; r++)
        if (perm[r].id == perm[r - 1].id) {
            long long dup = (long long)perm[r].id;
            free(perm);
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "rsclip_vecset_finalize: duplicate id %lld", dup);
        }
    const size_t s4 = vs->stride / 2;
    uint8_t *codes = rsclip__alloc_huge(vs->cap * vs->stride);
    uint8_t *codes4 = rsclip__alloc_huge(vs->cap * s4);
    float *scales = malloc(vs->cap * sizeof(float));
    float *scales4 = malloc(vs->cap * sizeof(float));
    float *fl = vs->keep_floats ? malloc(vs->cap * dim * sizeof(float)) : NULL;
    if (!codes || !codes4 || !scales || !scales4 || (vs->keep_floats && !fl)) {
        free(codes);
        free(codes4);
        free(scales);
        free(scales4);
        free(fl);
        free(perm);
        return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_finalize: out of memory");
    }
    for (size_t r = 0; r < n; r++) {
        size_t src = perm[r].row;
        memcpy(codes + r * vs->stride, vs->codes + src * vs->stride, vs->stride);
        memcpy(codes4 + r * s4, vs->codes4 + src * s4, s4);
        scales[r] = vs->scales[src];
        scales4[r] = vs->scales4[src];
        if (fl) memcpy(fl + r * dim, vs->floats + src * dim, dim * sizeof(float));
        vs->ids[r] = perm[r].id;
    }
    free(perm);
    free(vs->codes);
    free(vs->codes4);
    free(vs->scales);
    free(vs->scales4);
    free(vs->floats);
    vs->codes = codes;
    vs->codes4 = codes4;
    vs->scales = scales;
    vs->scales4 = scales4;
    vs->floats = fl;
    vs->sorted = 1;
    vs->finalized = 1;
    return RSCLIP_OK;
}

size_t rsclip_vecset_count(const rsclip_vecset *vs) {
    return vs ? vs->count : 0;
}

int rsclip_vecset_dim(const rsclip_vecset *vs) {
    return vs ? vs->dim : 0;
}

int rsclip_vecset_has_floats(const rsclip_vecset *vs) {
    return vs && vs->floats ? 1 : 0;
}

const int64_t *rsclip_vecset_ids(const rsclip_vecset *vs) {
    return vs && vs->finalized ? vs->ids : NULL;
}

uint64_t rsclip_vecset_source_stamp(const rsclip_vecset *vs) {
    return vs ? vs->stamp : 0;
}

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
    if (cand_better(x, y)) return -1;
    if (cand_better(y, x)) return 1;
    return 0;
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
    qs->qf = malloc((size_t)qs->nq * dim * sizeof(float));
    qs->qc = rsclip__alloc_huge((size_t)qs->nq * stride);
    qs->qsum = malloc((size_t)qs->nq * sizeof(int32_t));
    qs->qscale = malloc((size_t)qs->nq * sizeof(float));
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
        jb->dots = malloc(SCAN_BLOCK * (size_t)qs->nq * sizeof(int32_t));
        if (!all) {
            jb->heap.cap = cap;
            jb->heap.h = malloc((cap ? cap : 1) * sizeof(cand));
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
        cand *m = malloc((tot ? tot : 1) * sizeof(cand));
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
    int32_t *dots = malloc(SCAN_BLOCK * (size_t)qs->nq * sizeof(int32_t));
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
    uint32_t *rows = malloc((n ? n : 1) * sizeof(uint32_t));
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
    scored *sc = malloc(nc * sizeof *sc);
    if (!sc) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    if (!vs->floats) {
        int64_t *ids = malloc(nc * sizeof(int64_t));
        size_t fb;
        if (rsclip__mul_size(nc, dim * sizeof(float), &fb)) fb = (size_t)-1;
        buf = ids ? malloc(fb) : NULL;
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
    float *tmp = malloc(blk * (size_t)nq * sizeof(float));
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
    float *f = malloc((npos ? npos : 1) * sizeof(float));
    if (!f) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_search: out of memory");
    int rc = exact_scores(vs, qs, rows, npos, f);
    if (rc != RSCLIP_OK) {
        free(f);
        return rc;
    }
    cheap hp = {malloc((size_t)p->k * sizeof(cand)), 0, (size_t)p->k};
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
    cand *cs = malloc(cap * sizeof(cand));
    for (size_t i = 0; cs && i < npos; i++) {
        if (!((double)f[i] >= thr)) continue;
        uint32_t row = rows ? rows[i] : (uint32_t)i;
        if (p->filter && !p->filter(p->filter_user, vs->ids[row])) continue;
        if (n == cap) {
            cand *g = realloc(cs, 2 * cap * sizeof(cand));
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
    cand *cs = malloc((npos ? npos : 1) * sizeof(cand));
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
