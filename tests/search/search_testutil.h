/* Helpers of the search tests: seeded random unit vectors and a brute-force double oracle. */
#ifndef RSCLIP_SEARCH_TESTUTIL_H
#define RSCLIP_SEARCH_TESTUTIL_H

#include "rsclip/search.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_rng {
    uint64_t s;
} st_rng;

static inline uint64_t st_next(st_rng *r) {
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double st_uniform(st_rng *r) {
    return ((double)(st_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static inline double st_gauss(st_rng *r) {
    double u = st_uniform(r), v = st_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* n unit vectors of dimension dim (float32, normalised in double). */
static inline void st_unit_vectors(st_rng *r, size_t n, int dim, float *out) {
    for (size_t i = 0; i < n; i++) {
        double nn = 0.0;
        float *v = out + i * (size_t)dim;
        double tmp[4096];
        for (int t = 0; t < dim; t++) {
            tmp[t] = st_gauss(r);
            nn += tmp[t] * tmp[t];
        }
        nn = sqrt(nn);
        for (int t = 0; t < dim; t++) v[t] = (float)(tmp[t] / nn);
    }
}

typedef struct st_scored {
    double s, cos;
    int64_t id;
} st_scored;

static inline int st_cmp_scored(const void *a, const void *b) {
    const st_scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

typedef int (*st_keep_fn)(int64_t id, void *user);

/* Brute-force top-k in double: score = cos(q, v) - lam * max_j cos(neg_j, v), the query and the
 * negatives normalised here in double. keep may be NULL. Returns the count (<= k). */
static inline size_t st_oracle(const float *vecs, const int64_t *ids, size_t n, int dim,
                               const float *q, const float *negs, int nneg, double lam,
                               st_keep_fn keep, void *user, size_t k, st_scored *out) {
    st_scored *all = malloc((n ? n : 1) * sizeof *all);
    double *qn = malloc((size_t)(1 + nneg) * (size_t)dim * sizeof(double));
    for (int j = 0; j <= nneg; j++) {
        const float *s = j == 0 ? q : negs + (size_t)(j - 1) * (size_t)dim;
        double nn = 0.0;
        for (int t = 0; t < dim; t++) nn += (double)s[t] * s[t];
        nn = sqrt(nn);
        for (int t = 0; t < dim; t++) qn[(size_t)j * dim + t] = s[t] / nn;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep && !keep(ids[i], user)) continue;
        const float *v = vecs + i * (size_t)dim;
        double pos = 0.0, neg = -INFINITY;
        for (int j = 0; j <= nneg; j++) {
            double s = 0.0;
            for (int t = 0; t < dim; t++) s += qn[(size_t)j * dim + t] * v[t];
            if (j == 0)
                pos = s;
            else if (s > neg)
                neg = s;
        }
        all[m].s = nneg ? pos - lam * neg : pos;
        all[m].cos = pos;
        all[m].id = ids[i];
        m++;
    }
    qsort(all, m, sizeof *all, st_cmp_scored);
    size_t r = m < k ? m : k;
    memcpy(out, all, r * sizeof *out);
    free(all);
    free(qn);
    return r;
}

/* Same ranking as the oracle: ids in order, except where two oracle scores are closer than the
 * float32 rounding of the query (then either order is right); scores within 1e-5. Returns the
 * number of mismatches. */
static inline int st_compare(const rsclip_vecset_hit *hits, int nh, const st_scored *o, size_t no) {
    int bad = 0;
    if ((size_t)nh != no) return 1000;
    for (size_t i = 0; i < no; i++) {
        if (fabs(hits[i].score - o[i].s) > 1e-5 || fabs(hits[i].cosine - o[i].cos) > 1e-5) bad++;
        if (hits[i].id != o[i].id) {
            int tie = (i + 1 < no && fabs(o[i].s - o[i + 1].s) < 1e-6) ||
                      (i > 0 && fabs(o[i].s - o[i - 1].s) < 1e-6);
            if (!tie) bad++;
        }
    }
    return bad;
}

/* |hits ∩ oracle| over the first k. */
static inline int st_overlap(const rsclip_vecset_hit *hits, int nh, const st_scored *o, size_t no) {
    int c = 0;
    for (int i = 0; i < nh; i++)
        for (size_t j = 0; j < no; j++)
            if (hits[i].id == o[j].id) {
                c++;
                break;
            }
    return c;
}

#endif
