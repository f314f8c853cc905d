/* The vector set: building it (add, quantise, finalize) and its accessors. The search is
 * vecset_search.c; the cache file, cache.c. */
#include "base/base.h"
#include "search/vecset_internal.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static int vecset_reserve(rsclip_vecset *vs, size_t want);

int rsclip_vecset_new(int dim, const rsclip_vecset_params *params, rsclip_vecset **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_new: out is NULL");
    *out = NULL;
    if (dim < 1 || dim > RSCLIP_VECSET_MAX_DIM)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_new: dim %d not in 1..%d", dim,
                             RSCLIP_VECSET_MAX_DIM);
    rsclip_vecset_params p = params ? *params : rsclip_vecset_default_params();
    rsclip_vecset *vs = rsclip__calloc(1, sizeof *vs);
    if (!vs) return rsclip__error(RSCLIP_ERR_NOMEM, "rsclip_vecset_new: out of memory");
    vs->dim = dim;
    vs->stride = rsclip__vecset_stride(dim);
    vs->keep_floats = p.keep_floats != 0;
    vs->sorted = 1;
    if (p.capacity_hint > 0 && vecset_reserve(vs, p.capacity_hint) != RSCLIP_OK) {
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
static int vecset_reserve(rsclip_vecset *vs, size_t want) {
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
    int64_t *ids = rsclip__realloc(vs->ids, ids_b);
    if (ids) vs->ids = ids;
    float *sc = ids ? rsclip__realloc(vs->scales, sc_b) : NULL;
    if (sc) vs->scales = sc;
    float *sc4 = sc ? rsclip__realloc(vs->scales4, sc_b) : NULL;
    if (sc4) vs->scales4 = sc4;
    uint8_t *codes = sc4 ? rsclip__alloc_huge(codes_b) : NULL;
    uint8_t *codes4 = codes ? rsclip__alloc_huge(codes_b / 2) : NULL;
    float *fl = NULL;
    if (codes4 && vs->keep_floats) fl = rsclip__realloc(vs->floats, fl_b);
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
    int rc = vecset_reserve(vs, want);
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
    id_row *perm = rsclip__malloc(n * sizeof *perm);
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
    float *scales = rsclip__malloc(vs->cap * sizeof(float));
    float *scales4 = rsclip__malloc(vs->cap * sizeof(float));
    float *fl = vs->keep_floats ? rsclip__malloc(vs->cap * dim * sizeof(float)) : NULL;
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
