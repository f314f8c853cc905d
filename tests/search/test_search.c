/* Search core: kernels against a plain integer dot, exact top-k against a double brute force,
 * recall of the int8 scan on 200k vectors, identical candidates for every kernel and thread count,
 * allow lists, filter callbacks, negatives, and the API's guard clauses. */
#include "rsclip/search.h"
#include "rsclip/status.h"
#include "search/search_internal.h"
#include "search_testutil.h"
#include "test_util.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct fetch_ctx {
    const float *vecs; /* [n, dim] in id order: id = base + stride_id * row */
    int64_t base, step;
    int dim;
    size_t n;
    size_t calls, fetched;
    int fail;
} fetch_ctx;

static int fetch_cb(void *user, size_t n, const int64_t *ids, float *out) {
    fetch_ctx *f = user;
    f->calls++;
    f->fetched += n;
    if (f->fail) return RSCLIP_ERR_DB;
    for (size_t i = 0; i < n; i++) {
        if (i && ids[i] <= ids[i - 1]) return RSCLIP_ERR_INTERNAL; /* promised ascending */
        int64_t r = (ids[i] - f->base) / f->step;
        if (r < 0 || (size_t)r >= f->n) return RSCLIP_ERR_NOT_FOUND;
        memcpy(out + i * (size_t)f->dim, f->vecs + (size_t)r * f->dim, sizeof(float) * f->dim);
    }
    return RSCLIP_OK;
}

static int keep_mod3(int64_t id, void *user) {
    (void)user;
    return id % 3 == 0;
}
static int filter_mod3(void *user, int64_t id) {
    return keep_mod3(id, user);
}

typedef struct allow_ctx {
    const int64_t *ids;
    size_t n;
} allow_ctx;
static int keep_allowed(int64_t id, void *user) {
    allow_ctx *a = user;
    for (size_t i = 0; i < a->n; i++)
        if (a->ids[i] == id) return 1;
    return 0;
}

static rsclip_vecset *build(const float *vecs, const int64_t *ids, size_t n, int dim, int floats,
                            size_t chunk) {
    rsclip_vecset_params vp = rsclip_vecset_default_params();
    vp.keep_floats = floats;
    rsclip_vecset *vs = NULL;
    REQUIRE(rsclip_vecset_new(dim, &vp, &vs) == RSCLIP_OK);
    for (size_t b = 0; b < n; b += chunk) {
        size_t m = n - b < chunk ? n - b : chunk;
        CHECK_OK(rsclip_vecset_add(vs, m, ids + b, vecs + b * (size_t)dim));
    }
    CHECK_OK(rsclip_vecset_finalize(vs));
    return vs;
}

/* Every kernel against sum (c - 128) * q computed here, over odd row lists and extreme codes. */
static void test_kernels(void) {
    st_rng r = {1};
    const int dims[] = {1, 32, 63, 64, 100, 768};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t stride = (size_t)(dims[di] + 63) / 64 * 64;
        size_t nrows = 37;
        uint8_t *codes = NULL;
        int8_t *qc = NULL;
        REQUIRE(posix_memalign((void **)&codes, 64, nrows * stride) == 0);
        REQUIRE(posix_memalign((void **)&qc, 64, 3 * stride) == 0);
        for (size_t i = 0; i < nrows * stride; i++) {
            uint64_t x = st_next(&r);
            codes[i] = (uint8_t)(x % 7 == 0 ? (x & 1 ? 0 : 255) : (x >> 8));
        }
        int32_t qsum[3] = {0, 0, 0};
        for (int j = 0; j < 3; j++)
            for (size_t t = 0; t < stride; t++) {
                uint64_t x = st_next(&r);
                int v = (int)(x % 255) - 127;
                if (x % 11 == 0) v = (x & 1) ? 127 : -127;
                if (t >= (size_t)dims[di]) v = 0;
                qc[(size_t)j * stride + t] = (int8_t)v;
                qsum[j] += v;
            }
        uint32_t rows[13] = {36, 0, 5, 5, 17, 2, 33, 8, 9, 10, 11, 30, 1};
        int32_t want[37 * 3], got[37 * 3];
        for (int pass = 0; pass < 2; pass++) {
            size_t n = pass ? 13 : nrows;
            for (size_t i = 0; i < n; i++)
                for (int j = 0; j < 3; j++) {
                    size_t row = pass ? rows[i] : i;
                    int32_t s = 0;
                    for (size_t t = 0; t < stride; t++)
                        s += ((int32_t)codes[row * stride + t] - 128) * qc[(size_t)j * stride + t];
                    want[i * 3 + j] = s;
                }
            for (int k = RSCLIP_KERNEL_SCALAR; k <= RSCLIP_KERNEL_AVX512VNNI; k++) {
                rsclip__dot_kernel fn = rsclip__search_kernel(k);
                if (!fn) continue;
                for (int nq = 1; nq <= 3; nq += 2) {
                    memset(got, 0x55, sizeof got);
                    fn(codes, stride, pass ? rows : NULL, 0, n, qc, nq, qsum, got);
                    int bad = 0;
                    for (size_t i = 0; i < n; i++)
                        for (int j = 0; j < nq; j++) bad += got[i * nq + j] != want[i * 3 + j];
                    if (bad)
                        fprintf(stderr, "kernel %d dim %d nq %d pass %d: %d wrong dots\n", k,
                                dims[di], nq, pass, bad);
                    CHECK(bad == 0);
                }
            }
        }
        free(codes);
        free(qc);
    }
    /* int4 codes: in each 64-byte block b, byte j's low nibble is dim 128 b + j, its high
     * nibble dim 128 b + 64 + j, both stored + 8 */
    for (size_t s4 = 64; s4 <= 384; s4 += 320) {
        size_t nrows = 29, qlen = 2 * s4;
        uint8_t *codes = NULL;
        int8_t *qc = NULL;
        REQUIRE(posix_memalign((void **)&codes, 64, nrows * s4) == 0);
        REQUIRE(posix_memalign((void **)&qc, 64, 2 * qlen) == 0);
        for (size_t i = 0; i < nrows * s4; i++) codes[i] = (uint8_t)st_next(&r);
        codes[0] = 0x00; /* both nibbles -8 */
        codes[1] = 0xff;
        int32_t qsum[2] = {0, 0};
        for (int j = 0; j < 2; j++)
            for (size_t t = 0; t < qlen; t++) {
                int v = (int)(st_next(&r) % 255) - 127;
                if (t % 17 == 0) v = t % 2 ? 127 : -127;
                qc[(size_t)j * qlen + t] = (int8_t)v;
                qsum[j] += v;
            }
        uint32_t rows[5] = {28, 3, 3, 0, 11};
        int32_t want[29 * 2], got[29 * 2];
        for (int pass = 0; pass < 2; pass++) {
            size_t n = pass ? 5 : nrows;
            for (size_t i = 0; i < n; i++)
                for (int j = 0; j < 2; j++) {
                    const uint8_t *c = codes + (pass ? rows[i] : i) * s4;
                    int32_t sum = 0;
                    for (size_t d = 0; d < qlen; d++) {
                        size_t blk = d / 128, w = d % 128;
                        uint8_t byte = c[blk * 64 + (w & 63)];
                        int code = (w < 64 ? (byte & 15) : (byte >> 4)) - 8;
                        sum += code * qc[(size_t)j * qlen + d];
                    }
                    want[i * 2 + j] = sum;
                }
            for (int k = RSCLIP_KERNEL_SCALAR; k <= RSCLIP_KERNEL_AVX512VNNI; k++) {
                rsclip__dot_kernel fn = rsclip__search_kernel4(k);
                if (!fn) continue;
                for (int nq = 1; nq <= 2; nq++) {
                    memset(got, 0x55, sizeof got);
                    fn(codes, s4, pass ? rows : NULL, 0, n, qc, nq, qsum, got);
                    int bad = 0;
                    for (size_t i = 0; i < n; i++)
                        for (int j = 0; j < nq; j++) bad += got[i * nq + j] != want[i * 2 + j];
                    if (bad)
                        fprintf(stderr, "int4 kernel %d stride %zu nq %d pass %d: %d wrong\n", k,
                                s4, nq, pass, bad);
                    CHECK(bad == 0);
                }
            }
        }
        free(codes);
        free(qc);
    }
    printf("best kernel on this CPU: %d\n", rsclip__search_best_kernel());
}

/* Small sets: the exact path (floats held) and the all-candidates path (fetch) are exact. */
static void test_small_exact(void) {
    const int dim = 32;
    const size_t n = 3000;
    st_rng r = {2};
    float *vecs = malloc(n * dim * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    st_unit_vectors(&r, n, dim, vecs);
    for (size_t i = 0; i < n; i++) ids[i] = 1000 + 7 * (int64_t)i;
    rsclip_vecset *vf = build(vecs, ids, n, dim, 1, 500);
    rsclip_vecset *vq = build(vecs, ids, 200, dim, 0, 64); /* 200 <= 256 candidates */
    CHECK(rsclip_vecset_count(vf) == n && rsclip_vecset_dim(vf) == dim);
    CHECK(rsclip_vecset_has_floats(vf) == 1 && rsclip_vecset_has_floats(vq) == 0);
    fetch_ctx fc = {vecs, 1000, 7, dim, n, 0, 0, 0};
    float q[32];
    st_scored o[50];
    rsclip_vecset_hit hits[50];
    int bad = 0;
    for (int it = 0; it < 30; it++) {
        st_unit_vectors(&r, 1, dim, q);
        if (it % 3 == 0)
            for (int t = 0; t < dim; t++) q[t] *= 3.5f; /* not normalised: same ranking */
        int k = it % 2 ? 10 : 50;
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = k;
        int nh = -1;
        CHECK_OK(rsclip_vecset_search(vf, q, &sp, hits, &nh));
        size_t no = st_oracle(vecs, ids, n, dim, q, NULL, 0, 0, NULL, NULL, (size_t)k, o);
        bad += st_compare(hits, nh, o, no);
        /* forced exact with sgemv, and forced quant with floats, agree */
        sp.mode = RSCLIP_SEARCH_EXACT;
        CHECK_OK(rsclip_vecset_search(vf, q, &sp, hits, &nh));
        bad += st_compare(hits, nh, o, no);
        sp.mode = RSCLIP_SEARCH_QUANT;
        sp.n_candidates = (int)n; /* everything reranked: exact */
        CHECK_OK(rsclip_vecset_search(vf, q, &sp, hits, &nh));
        bad += st_compare(hits, nh, o, no);
        /* no floats, 200 vectors: every one is reranked through fetch */
        sp = rsclip_search_default_params();
        sp.k = k;
        sp.fetch = fetch_cb;
        sp.fetch_user = &fc;
        CHECK_OK(rsclip_vecset_search(vq, q, &sp, hits, &nh));
        no = st_oracle(vecs, ids, 200, dim, q, NULL, 0, 0, NULL, NULL, (size_t)k, o);
        bad += st_compare(hits, nh, o, no);
    }
    CHECK(bad == 0);
    CHECK(fc.calls == 30 && fc.fetched == 30 * 200);
    /* k larger than the set */
    rsclip_search_params sp = rsclip_search_default_params();
    sp.k = 50;
    rsclip_vecset *tiny = build(vecs, ids, 7, dim, 1, 7);
    int nh = -1;
    CHECK_OK(rsclip_vecset_search(tiny, q, &sp, hits, &nh));
    CHECK(nh == 7);
    size_t no = st_oracle(vecs, ids, 7, dim, q, NULL, 0, 0, NULL, NULL, 50, o);
    CHECK(st_compare(hits, nh, o, no) == 0);
    rsclip_vecset_free(tiny);
    /* an empty set */
    rsclip_vecset *empty = build(vecs, ids, 0, dim, 0, 1);
    sp.fetch = fetch_cb;
    sp.fetch_user = &fc;
    CHECK_OK(rsclip_vecset_search(empty, q, &sp, hits, &nh));
    CHECK(nh == 0);
    rsclip_vecset_free(empty);
    rsclip_vecset_free(vf);
    rsclip_vecset_free(vq);
    free(vecs);
    free(ids);
}

/* Ids added out of order are sorted by finalize; duplicates are refused. */
static void test_build_order(void) {
    const int dim = 8;
    float v[5 * 8];
    st_rng r = {3};
    st_unit_vectors(&r, 5, dim, v);
    int64_t ids[5] = {50, -3, 7, 1000000000000LL, 6};
    rsclip_vecset_params vp = rsclip_vecset_default_params();
    vp.keep_floats = 1;
    rsclip_vecset *vs;
    REQUIRE(rsclip_vecset_new(dim, &vp, &vs) == RSCLIP_OK);
    CHECK(rsclip_vecset_ids(vs) == NULL);
    CHECK_OK(rsclip_vecset_add(vs, 5, ids, v));
    float q[8];
    memcpy(q, v + 2 * dim, sizeof q); /* the vector of id 7 */
    rsclip_vecset_hit h[5];
    int nh;
    CHECK(rsclip_vecset_search(vs, q, NULL, h, &nh) == RSCLIP_ERR_INVALID_ARG); /* not final */
    CHECK_OK(rsclip_vecset_finalize(vs));
    CHECK_OK(rsclip_vecset_finalize(vs));
    const int64_t *s = rsclip_vecset_ids(vs);
    CHECK(s && s[0] == -3 && s[1] == 6 && s[2] == 7 && s[3] == 50 && s[4] == 1000000000000LL);
    CHECK(rsclip_vecset_add(vs, 5, ids, v) == RSCLIP_ERR_INVALID_ARG);
    rsclip_search_params sp = rsclip_search_default_params();
    sp.k = 5;
    CHECK_OK(rsclip_vecset_search(vs, q, &sp, h, &nh));
    CHECK(nh == 5 && h[0].id == 7 && fabsf(h[0].cosine - 1.0f) < 1e-6f);
    st_scored o[5];
    size_t no = st_oracle(v, ids, 5, dim, q, NULL, 0, 0, NULL, NULL, 5, o);
    CHECK(st_compare(h, nh, o, no) == 0);
    rsclip_vecset_free(vs);

    REQUIRE(rsclip_vecset_new(dim, NULL, &vs) == RSCLIP_OK);
    int64_t dup[5] = {1, 2, 3, 2, 5};
    CHECK_OK(rsclip_vecset_add(vs, 5, dup, v));
    CHECK(rsclip_vecset_finalize(vs) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "duplicate id 2") != NULL);
    rsclip_vecset_free(vs);

    /* guard clauses */
    rsclip_vecset_free(NULL);
    CHECK(rsclip_vecset_new(0, NULL, &vs) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_vecset_new(RSCLIP_VECSET_MAX_DIM + 1, NULL, &vs) == RSCLIP_ERR_INVALID_ARG);
    REQUIRE(rsclip_vecset_new(dim, NULL, &vs) == RSCLIP_OK);
    float bad[8] = {0, 0, NAN, 0, 0, 0, 0, 0};
    CHECK(rsclip_vecset_add(vs, 1, ids, bad) == RSCLIP_ERR_INVALID_ARG);
    CHECK_OK(rsclip_vecset_add(vs, 5, ids, v));
    CHECK_OK(rsclip_vecset_finalize(vs));
    CHECK(rsclip_vecset_search(vs, q, NULL, h, &nh) == RSCLIP_ERR_INVALID_ARG); /* no fetch */
    fetch_ctx fc = {v, 0, 1, dim, 5, 0, 0, 1};
    sp.fetch = fetch_cb;
    sp.fetch_user = &fc;
    CHECK(rsclip_vecset_search(vs, q, &sp, h, &nh) == RSCLIP_ERR_DB); /* fetch fails */
    fc.fail = 0;
    float zero[8] = {0};
    CHECK(rsclip_vecset_search(vs, zero, &sp, h, &nh) == RSCLIP_ERR_INVALID_ARG);
    sp.k = 0;
    CHECK(rsclip_vecset_search(vs, q, &sp, h, &nh) == RSCLIP_ERR_INVALID_ARG);
    sp.k = 3;
    sp.mode = RSCLIP_SEARCH_EXACT; /* no floats */
    CHECK(rsclip_vecset_search(vs, q, &sp, h, &nh) == RSCLIP_ERR_INVALID_ARG);
    sp.mode = RSCLIP_SEARCH_AUTO;
    sp.n_negatives = RSCLIP_SEARCH_MAX_NEGATIVES + 1;
    sp.negatives = v;
    CHECK(rsclip_vecset_search(vs, q, &sp, h, &nh) == RSCLIP_ERR_INVALID_ARG);
    rsclip_vecset_free(vs);
}

/* A large set (n vectors of 64 dims): int8 scan + rerank against the oracle; every kernel and
 * thread count give the same candidates; filters; negatives. */
static void test_large(size_t n) {
    const int dim = 64;
    st_rng r = {4};
    float *vecs = malloc(n * dim * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    st_unit_vectors(&r, n, dim, vecs);
    for (size_t i = 0; i < n; i++) ids[i] = 5 + 2 * (int64_t)i;
    rsclip_vecset *vs = build(vecs, ids, n, dim, 0, 4096);
    fetch_ctx fc = {vecs, 5, 2, dim, n, 0, 0, 0};
    const int nquery = 40, k = 10;
    float q[64], negs[3 * 64];
    st_scored o[10];
    rsclip_vecset_hit hits[10];
    int found = 0, total = 0, cand_bad = 0, ncmp = 0;
    const size_t ccap = 256;
    int64_t *cid0 = malloc(ccap * sizeof(int64_t)), *cid1 = malloc(ccap * sizeof(int64_t));
    float *cs0 = malloc(ccap * sizeof(float)), *cs1 = malloc(ccap * sizeof(float));
    clock_t t0 = clock();
    for (int it = 0; it < nquery; it++) {
        st_unit_vectors(&r, 1, dim, q);
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = k;
        sp.fetch = fetch_cb;
        sp.fetch_user = &fc;
        sp.n_threads = it % 2 ? 2 : 1;
        if (it % 4 == 3) sp.n_prefilter = -1; /* int8 scan only */
        int nh;
        CHECK_OK(rsclip_vecset_search(vs, q, &sp, hits, &nh));
        size_t no = st_oracle(vecs, ids, n, dim, q, NULL, 0, 0, NULL, NULL, (size_t)k, o);
        CHECK(nh == k);
        found += st_overlap(hits, nh, o, no);
        total += (int)no;
        /* candidate sets: scalar, 1 thread is the reference */
        if (it < 6) {
            rsclip_search_params cp = sp;
            cp.n_negatives = it % 3 == 2 ? 2 : 0;
            if (cp.n_negatives) {
                st_unit_vectors(&r, 2, dim, negs);
                cp.negatives = negs;
            }
            if (it % 3 == 1) {
                cp.filter = filter_mod3;
            }
            cp.kernel = RSCLIP_KERNEL_SCALAR;
            cp.n_threads = 1;
            size_t n0 = 0, n1 = 0;
            CHECK_OK(rsclip_vecset_candidates(vs, q, &cp, cid0, cs0, ccap, &n0));
            CHECK(n0 == ccap);
            for (int kern = RSCLIP_KERNEL_SCALAR; kern <= RSCLIP_KERNEL_AVX512VNNI; kern++) {
                if (!rsclip__search_kernel(kern)) continue;
                for (int nt = 1; nt <= 3; nt++) {
                    cp.kernel = kern;
                    cp.n_threads = nt;
                    CHECK_OK(rsclip_vecset_candidates(vs, q, &cp, cid1, cs1, ccap, &n1));
                    ncmp++;
                    if (n1 != n0 || memcmp(cid0, cid1, n0 * sizeof(int64_t)) != 0 ||
                        memcmp(cs0, cs1, n0 * sizeof(float)) != 0)
                        cand_bad++;
                }
            }
            if (it % 3 == 1)
                for (size_t i = 0; i < n0; i++) CHECK(cid0[i] % 3 == 0);
        }
    }
    double recall = (double)found / total;
    printf("%zu x 64: recall@10 = %.4f over %d queries (%.2f s incl. oracle); %d candidate-set "
           "comparisons\n",
           n, recall, nquery, (double)(clock() - t0) / CLOCKS_PER_SEC, ncmp);
    CHECK(recall >= 0.99);
    CHECK(cand_bad == 0);
    CHECK(ncmp >= 6);

    /* filter callback: ids divisible by 3 (a third of the set) */
    int fbad = 0;
    for (int it = 0; it < 5; it++) {
        st_unit_vectors(&r, 1, dim, q);
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = k;
        sp.fetch = fetch_cb;
        sp.fetch_user = &fc;
        sp.filter = filter_mod3;
        sp.n_threads = 2;
        int nh;
        CHECK_OK(rsclip_vecset_search(vs, q, &sp, hits, &nh));
        size_t no = st_oracle(vecs, ids, n, dim, q, NULL, 0, 0, keep_mod3, NULL, (size_t)k, o);
        fbad += st_compare(hits, nh, o, no);
    }
    CHECK(fbad == 0);

    /* allow lists: small (all reranked: exact) and large (scanned); unknown ids are ignored */
    size_t sizes[2] = {150, n / 3};
    for (int a = 0; a < 2; a++) {
        int64_t *allow = malloc(sizes[a] * sizeof(int64_t));
        for (size_t i = 0; i < sizes[a]; i++)
            allow[i] = (int64_t)(st_next(&r) % (2 * n + 10)); /* many not in the set */
        allow_ctx ac = {allow, sizes[a]};
        int abad = 0;
        for (int it = 0; it < 3; it++) {
            st_unit_vectors(&r, 1, dim, q);
            rsclip_search_params sp = rsclip_search_default_params();
            sp.k = k;
            sp.fetch = fetch_cb;
            sp.fetch_user = &fc;
            sp.allow_ids = allow;
            sp.n_allow = sizes[a];
            sp.n_threads = 2;
            int nh;
            CHECK_OK(rsclip_vecset_search(vs, q, &sp, hits, &nh));
            if (a == 0) {
                /* combined with the filter too */
                sp.filter = filter_mod3;
                rsclip_vecset_hit h2[10];
                int nh2;
                CHECK_OK(rsclip_vecset_search(vs, q, &sp, h2, &nh2));
                for (int i = 0; i < nh2; i++)
                    CHECK(h2[i].id % 3 == 0 && keep_allowed(h2[i].id, &ac));
                CHECK(nh2 > 0);
            }
            /* oracle over the allowed subset only (linear keep: build a small index instead) */
            size_t no = 0;
            {
                /* gather the allowed rows */
                float *sub = malloc(sizes[a] * dim * sizeof(float));
                int64_t *sid = malloc(sizes[a] * sizeof(int64_t));
                size_t m = 0;
                char *seen = calloc(n, 1);
                for (size_t i = 0; i < sizes[a]; i++) {
                    int64_t id = allow[i];
                    if (id < 5 || (id - 5) % 2) continue;
                    size_t row = (size_t)((id - 5) / 2);
                    if (row >= n || seen[row]) continue;
                    seen[row] = 1;
                    memcpy(sub + m * dim, vecs + row * dim, dim * sizeof(float));
                    sid[m++] = id;
                }
                no = st_oracle(sub, sid, m, dim, q, NULL, 0, 0, NULL, NULL, (size_t)k, o);
                free(seen);
                free(sub);
                free(sid);
            }
            abad += st_compare(hits, nh, o, no);
        }
        CHECK(abad == 0);
        free(allow);
    }

    /* negatives: score = cos(q) - lam * max cos(neg) against the oracle */
    int nbad = 0, nfound = 0, ntotal = 0;
    for (int it = 0; it < 6; it++) {
        st_unit_vectors(&r, 1, dim, q);
        int nn = 1 + it % 3;
        /* negatives near the query make the penalty matter */
        st_unit_vectors(&r, (size_t)nn, dim, negs);
        for (int j = 0; j < nn; j++)
            for (int t = 0; t < dim; t++)
                negs[j * dim + t] = 0.6f * q[t] + 0.8f * negs[j * dim + t];
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = k;
        sp.fetch = fetch_cb;
        sp.fetch_user = &fc;
        sp.negatives = negs;
        sp.n_negatives = nn;
        sp.neg_weight = it % 2 ? 1.0f : 0.5f;
        int nh;
        CHECK_OK(rsclip_vecset_search(vs, q, &sp, hits, &nh));
        size_t no =
            st_oracle(vecs, ids, n, dim, q, negs, nn, sp.neg_weight, NULL, NULL, (size_t)k, o);
        nfound += st_overlap(hits, nh, o, no);
        ntotal += (int)no;
        /* the hits that match carry the oracle's scores */
        for (int i = 0; i < nh; i++)
            for (size_t j = 0; j < no; j++)
                if (hits[i].id == o[j].id)
                    nbad += fabs(hits[i].score - o[j].s) > 1e-5 ||
                            fabs(hits[i].cosine - o[j].cos) > 1e-5;
    }
    printf("negatives: recall@10 = %.4f\n", (double)nfound / ntotal);
    CHECK((double)nfound / ntotal >= 0.99);
    CHECK(nbad == 0);

    /* score_all: approximate scores in id order, close to the exact cosines */
    float *all = malloc(n * sizeof(float));
    st_unit_vectors(&r, 1, dim, q);
    CHECK_OK(rsclip_vecset_score_all(vs, q, NULL, all));
    double maxerr = 0;
    for (size_t i = 0; i < n; i += 97) {
        double s = 0;
        for (int t = 0; t < dim; t++) s += (double)q[t] * vecs[i * dim + t];
        if (fabs(s - all[i]) > maxerr) maxerr = fabs(s - all[i]);
    }
    printf("score_all: max |approx - exact| = %.5f\n", maxerr);
    CHECK(maxerr < 0.01);
    free(all);

    free(cid0);
    free(cid1);
    free(cs0);
    free(cs1);
    rsclip_vecset_free(vs);
    free(vecs);
    free(ids);
}

/* The exact path with negatives and a filter on a set that holds floats. */
static void test_exact_negatives(void) {
    const int dim = 48;
    const size_t n = 20000;
    st_rng r = {5};
    float *vecs = malloc(n * dim * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    st_unit_vectors(&r, n, dim, vecs);
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
    rsclip_vecset *vs = build(vecs, ids, n, dim, 1, 3333);
    float q[48], negs[2 * 48];
    st_scored o[20];
    rsclip_vecset_hit hits[20];
    int bad = 0;
    for (int it = 0; it < 10; it++) {
        st_unit_vectors(&r, 1, dim, q);
        st_unit_vectors(&r, 2, dim, negs);
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = 20;
        sp.negatives = negs;
        sp.n_negatives = 1 + it % 2;
        sp.neg_weight = 0.75f;
        if (it % 3 == 0) sp.filter = filter_mod3;
        int nh;
        CHECK_OK(rsclip_vecset_search(vs, q, &sp, hits, &nh));
        size_t no = st_oracle(vecs, ids, n, dim, q, negs, sp.n_negatives, 0.75,
                              it % 3 == 0 ? keep_mod3 : NULL, NULL, 20, o);
        bad += st_compare(hits, nh, o, no);
    }
    CHECK(bad == 0);
    rsclip_vecset_free(vs);
    free(vecs);
    free(ids);
}

/* The scan threads are the process pool's: two searches with n_threads = 2 see the filter called
 * from the same threads (kernel thread ids), i.e. no thread is created per query. */
typedef struct tid_set {
    pthread_mutex_t mu;
    long tids[8];
    int n;
} tid_set;

static int filter_record_tid(void *user, int64_t id) {
    tid_set *t = user;
    const long me = (long)syscall(SYS_gettid);
    pthread_mutex_lock(&t->mu);
    int seen = 0;
    for (int i = 0; i < t->n; i++) seen |= t->tids[i] == me;
    if (!seen && t->n < 8) t->tids[t->n++] = me;
    pthread_mutex_unlock(&t->mu);
    return id % 2 == 0;
}

static void test_scan_threads(void) {
    const size_t n = 40000;
    const int dim = 64;
    st_rng r = {9};
    float *vecs = malloc(n * dim * sizeof(float)), q[64];
    int64_t *ids = malloc(n * sizeof(int64_t));
    REQUIRE(vecs && ids);
    st_unit_vectors(&r, n, dim, vecs);
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
    rsclip_vecset *vs = build(vecs, ids, n, dim, 0, 4096);
    fetch_ctx fc = {vecs, 0, 1, dim, n, 0, 0, 0};
    tid_set sets[3];
    for (int it = 0; it < 3; it++) {
        memset(&sets[it], 0, sizeof sets[it]);
        pthread_mutex_init(&sets[it].mu, NULL);
        st_unit_vectors(&r, 1, dim, q);
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = 10;
        sp.fetch = fetch_cb;
        sp.fetch_user = &fc;
        sp.filter = filter_record_tid;
        sp.filter_user = &sets[it];
        sp.n_threads = 2;
        rsclip_vecset_hit hits[10];
        int nh = 0;
        CHECK_OK(rsclip_vecset_search(vs, q, &sp, hits, &nh));
        CHECK(nh == 10);
        pthread_mutex_destroy(&sets[it].mu);
    }
    CHECK(sets[0].n == 2); /* the caller and one worker */
    for (int it = 1; it < 3; it++) {
        CHECK(sets[it].n == sets[0].n);
        for (int i = 0; i < sets[it].n; i++) {
            int found = 0;
            for (int j = 0; j < sets[0].n; j++) found |= sets[it].tids[i] == sets[0].tids[j];
            CHECK(found); /* a thread of the first query, not a new one */
        }
    }
    rsclip_vecset_free(vs);
    free(vecs);
    free(ids);
}

int main(void) {
    test_scan_threads();
    test_kernels();
    test_build_order();
    test_small_exact();
    test_exact_negatives();
#ifdef RSCLIP_TEST_LARGE
    test_large(200000); /* labelled slow: the sanitizer run skips it */
#else
    test_large(30000);
#endif
    return tu_finish("test_search");
}
