/* GEMM kernels against a float64 triple loop: odd shapes, both weight formats, the path this
 * process runs (the CPU's best, or the one RSCLIP_ISA forces: ctest runs this test once per
 * path, with --expect PATH_BF16 PATH_F32 naming the paths the weights must take) plus the forced
 * portable one, bias/GELU/accumulate epilogues, direct (unpacked) and transposed weights, the
 * serial entry point, and 1 vs 2 threads. With RSCLIP_ISA=amx and RSCLIP_AMX_EMULATE=1 it runs
 * the AMX driver, packing and epilogues on the tile emulation; on a CPU with AMX, plainly, on
 * the tiles. */
#include "gemm/amx_tile.h"
#include "gemm/gemm.h"
#include "gemm/isa.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <stdint.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* bf16 rounding written independently of the library: keep 8 significant bits, ties to even. */
static double bf16_round(float x) {
    if (x == 0.0f) return 0.0;
    int e;
    const double m = frexp((double)x, &e); /* x = m 2^e, 0.5 <= |m| < 1 */
    return ldexp(nearbyint(m * 256.0) / 256.0, e);
}

static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

typedef struct shape {
    size_t m, n, k;
} shape;

/* One product checked against two references: exact inputs (error bound of two bf16 roundings
 * plus f32 accumulation) and bf16-rounded inputs (f32 accumulation only). */
static int check_one(rsclip__gemm_ctx *g, shape s, int format, unsigned flags, int use_bias,
                     int pad, float **out_c) {
    const size_t lda = s.k + (size_t)pad, ldc = s.n + (size_t)(2 * pad), ldw = s.k + (size_t)pad;
    float *a = malloc(s.m * lda * sizeof(float));
    float *w = malloc(s.n * ldw * sizeof(float));
    float *bias = malloc(s.n * sizeof(float));
    float *c = malloc(s.m * ldc * sizeof(float));
    float *c0 = malloc(s.m * ldc * sizeof(float));
    REQUIRE(a && w && bias && c && c0);
    for (size_t i = 0; i < s.m * lda; i++) a[i] = frand();
    for (size_t i = 0; i < s.n * ldw; i++) w[i] = frand() * 0.5f;
    for (size_t i = 0; i < s.n; i++) bias[i] = frand();
    for (size_t i = 0; i < s.m * ldc; i++) c0[i] = c[i] = frand();
    rsclip__packed_w *pw = NULL;
    CHECK_OK(rsclip__pack_weights(w, s.n, s.k, ldw, (rsclip__gemm_format)format, &pw));
    REQUIRE(pw);
    CHECK(rsclip__packed_w_n(pw) == s.n && rsclip__packed_w_k(pw) == s.k);
    CHECK_OK(rsclip__gemm(g, s.m, a, lda, pw, c, ldc, use_bias ? bias : NULL, flags));
    const int bf16 = format == RSCLIP__GEMM_BF16;
    double *ar = malloc(s.m * lda * sizeof(double)), *wr = malloc(s.n * ldw * sizeof(double));
    REQUIRE(ar && wr);
    for (size_t i = 0; i < s.m * lda; i++) ar[i] = bf16 ? bf16_round(a[i]) : a[i];
    for (size_t i = 0; i < s.n * ldw; i++) wr[i] = bf16 ? bf16_round(w[i]) : w[i];
    const double u = bf16 ? 1.0 / 256.0 : 0.0;
    const double acc_eps = (double)(s.k + 2) * 0x1p-23;
    int bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < s.m && bad < 5; i++) {
        for (size_t j = 0; j < s.n; j++) {
            double exact = 0.0, rounded = 0.0, mag = 0.0;
            for (size_t l = 0; l < s.k; l++) {
                const double x = a[i * lda + l], y = w[j * ldw + l];
                exact += x * y;
                rounded += ar[i * lda + l] * wr[j * ldw + l];
                mag += fabs(x * y);
            }
            double pre = 0.0;
            if (flags & RSCLIP__GEMM_ACCUMULATE) pre += c0[i * ldc + j];
            if (use_bias) pre += bias[j];
            mag += fabs(pre);
            exact += pre;
            rounded += pre;
            const int gelu = (flags & RSCLIP__GEMM_GELU) != 0;
            /* GELU' is at most ~1.13 in magnitude */
            const double lip = gelu ? 1.2 : 1.0;
            const double ye = gelu ? gelu_ref(exact) : exact;
            const double yr = gelu ? gelu_ref(rounded) : rounded;
            const double got = c[i * ldc + j];
            const double tol_exact = lip * ((2.0 * u + u * u) * mag + acc_eps * mag) + 1e-6;
            const double tol_rounded = lip * acc_eps * mag + 2e-6 * fabs(yr) + 1e-6;
            const double e1 = fabs(got - ye), e2 = fabs(got - yr);
            if (e2 / (mag + 1e-30) > worst) worst = e2 / (mag + 1e-30);
            if (!(e1 <= tol_exact) || !(e2 <= tol_rounded)) {
                fprintf(stderr,
                        "  %zux%zux%zu fmt=%d flags=%u bias=%d: C[%zu][%zu]=%.9g want %.9g "
                        "(bf16 inputs %.9g)\n",
                        s.m, s.n, s.k, format, flags, use_bias, i, j, got, ye, yr);
                bad++;
                break;
            }
        }
    }
    /* padding columns of C are never written */
    for (size_t i = 0; i < s.m; i++)
        for (size_t j = s.n; j < ldc; j++)
            if (c[i * ldc + j] != c0[i * ldc + j]) bad++;
    CHECK(bad == 0);
    rsclip__packed_w_free(pw);
    free(ar);
    free(wr);
    free(a);
    free(w);
    free(bias);
    free(c0);
    if (out_c)
        *out_c = c;
    else
        free(c);
    return bad;
}

/* Same inputs (same seed) through two contexts or two paths must give identical / close C. */
static void run_pair(rsclip__gemm_ctx *g1, unsigned f1, rsclip__gemm_ctx *g2, unsigned f2, shape s,
                     int format, int exact) {
    const uint64_t seed = rng;
    float *c1 = NULL, *c2 = NULL;
    check_one(g1, s, format, f1 | RSCLIP__GEMM_GELU, 1, 0, &c1);
    rng = seed;
    check_one(g2, s, format, f2 | RSCLIP__GEMM_GELU, 1, 0, &c2);
    if (exact) {
        CHECK(memcmp(c1, c2, s.m * s.n * sizeof(float)) == 0);
    } else {
        double md = 0.0, mx = 0.0;
        for (size_t i = 0; i < s.m * s.n; i++) {
            md = fmax(md, fabs((double)c1[i] - c2[i]));
            mx = fmax(mx, fabs((double)c1[i]));
        }
        CHECK(md <= 1e-4 * mx + 1e-6);
    }
    free(c1);
    free(c2);
}

/* int8 rounding as the library's (symmetric, per row, scale max|x| / 127, ties to even), written
 * out here: q[i] for x[0, n), returns the scale. */
static float quant_row(const float *x, size_t n, int32_t *q) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    const float inv = m > 0.0f ? 127.0f / m : 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float t = nearbyintf(x[i] * inv);
        q[i] = t > 127.0f ? 127 : t < -127.0f ? -127 : (int32_t)t;
    }
    return m / 127.0f;
}

/* INT8 weights: C against exact integer sums of the quantised inputs, scaled back in f32; the
 * flags' epilogues; returns C (caller frees). */
static float *check_q8(rsclip__gemm_ctx *g, shape s, unsigned flags, int pad) {
    const size_t lda = s.k + (size_t)pad, ldc = s.n + (size_t)pad;
    float *a = malloc(s.m * lda * 4), *w = malloc(s.n * s.k * 4), *bias = malloc(s.n * 4);
    float *c = malloc(s.m * ldc * 4), *c0 = malloc(s.m * ldc * 4);
    int32_t *qa = malloc(s.m * s.k * 4), *qw = malloc(s.n * s.k * 4);
    float *sa = malloc(s.m * 4), *sw = malloc(s.n * 4);
    REQUIRE(a && w && bias && c && c0 && qa && qw && sa && sw);
    for (size_t i = 0; i < s.m * lda; i++) a[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
    for (size_t i = 0; i < s.n * s.k; i++) w[i] = frand() * 0.5f;
    for (size_t i = 0; i < s.n; i++) bias[i] = frand();
    for (size_t i = 0; i < s.m * ldc; i++) c0[i] = c[i] = frand();
    rsclip__packed_w *pw = NULL;
    CHECK_OK(rsclip__pack_weights(w, s.n, s.k, s.k, RSCLIP__GEMM_INT8, &pw));
    REQUIRE(pw);
    CHECK(rsclip__packed_w_bytes(pw) == rsclip__pack_weights_bytes(s.n, s.k, RSCLIP__GEMM_INT8));
    CHECK_OK(rsclip__gemm(g, s.m, a, lda, pw, c, ldc, bias, flags));
    for (size_t i = 0; i < s.m; i++) sa[i] = quant_row(a + i * lda, s.k, qa + i * s.k);
    for (size_t j = 0; j < s.n; j++) sw[j] = quant_row(w + j * s.k, s.k, qw + j * s.k);
    int bad = 0;
    for (size_t i = 0; i < s.m && bad < 5; i++)
        for (size_t j = 0; j < s.n; j++) {
            int64_t acc = 0;
            for (size_t l = 0; l < s.k; l++) acc += (int64_t)qa[i * s.k + l] * qw[j * s.k + l];
            double want = (double)((float)acc * sw[j] * sa[i]), mag = fabs(want);
            if (flags & RSCLIP__GEMM_ACCUMULATE)
                want += c0[i * ldc + j], mag += fabs(c0[i * ldc + j]);
            want += bias[j];
            mag += fabs(bias[j]);
            if (flags & RSCLIP__GEMM_GELU) want = gelu_ref(want);
            const double got = c[i * ldc + j];
            if (!(fabs(got - want) <= 3e-6 * mag + 1e-6)) {
                fprintf(stderr, "  int8 %zux%zux%zu flags=%u: C[%zu][%zu]=%.9g want %.9g\n", s.m,
                        s.n, s.k, flags, i, j, got, want);
                bad++;
                break;
            }
        }
    for (size_t i = 0; i < s.m; i++) /* padding columns of C are never written */
        for (size_t j = s.n; j < ldc; j++) bad += c[i * ldc + j] != c0[i * ldc + j];
    CHECK(bad == 0);
    rsclip__packed_w_free(pw);
    free(a), free(w), free(bias), free(c0), free(qa), free(qw), free(sa), free(sw);
    return c;
}

static void test_q8(rsclip__gemm_ctx *g1, rsclip__gemm_ctx *g2) {
    const shape shapes[] = {{1, 1, 1},     {15, 33, 7},    {29, 47, 64},   {64, 200, 385},
                            {3, 64, 1029}, {130, 70, 768}, {20, 40, 17000}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (unsigned fl = 0; fl < 4; fl++) {
            const unsigned flags =
                (fl & 1 ? RSCLIP__GEMM_GELU : 0) | (fl & 2 ? RSCLIP__GEMM_ACCUMULATE : 0);
            const uint64_t seed = rng;
            float *c1 = check_q8(fl % 2 ? g2 : g1, shapes[si], flags, (int)(si % 3));
            /* the vector path and the portable one: the very same bytes, sums and floats (the
             * GELU of the epilogues differs in the last bits: tanhf vs a vector exp) */
            rng = seed;
            float *c2 = check_q8(g1, shapes[si], flags | RSCLIP__GEMM_FORCE_SCALAR, (int)(si % 3));
            const size_t ldc = shapes[si].n + si % 3;
            if (!(flags & RSCLIP__GEMM_GELU)) CHECK(memcmp(c1, c2, shapes[si].m * ldc * 4) == 0);
            free(c1), free(c2);
        }
}

/* W given direct (unpacked, f32) and transposed (packed from W^T) against the packed result. */
static void check_direct_transposed(rsclip__gemm_ctx *g) {
    const shape shapes[] = {{1, 5, 3}, {20, 70, 33}, {64, 200, 300}, {130, 33, 2100}};
    for (size_t si = 0; si < 4; si++) {
        const shape sh = shapes[si];
        const size_t ldw = sh.k + 3;
        float *a = malloc(sh.m * sh.k * 4), *w = malloc(sh.n * ldw * 4),
              *wt = malloc(sh.k * sh.n * 4);
        float *c1 = malloc(sh.m * sh.n * 4), *c2 = malloc(sh.m * sh.n * 4);
        float *c3 = malloc(sh.m * sh.n * 4), *bias = malloc(sh.n * 4);
        REQUIRE(a && w && wt && c1 && c2 && c3 && bias);
        for (size_t i = 0; i < sh.m * sh.k; i++) a[i] = frand();
        for (size_t i = 0; i < sh.n * ldw; i++) w[i] = frand();
        for (size_t i = 0; i < sh.n; i++) bias[i] = frand();
        for (size_t i = 0; i < sh.n; i++)
            for (size_t j = 0; j < sh.k; j++) wt[j * sh.n + i] = w[i * ldw + j];
        rsclip__packed_w *pw = NULL, *dw = NULL;
        CHECK_OK(rsclip__pack_weights(w, sh.n, sh.k, ldw, RSCLIP__GEMM_F32, &pw));
        CHECK_OK(rsclip__packed_w_direct(w, sh.n, sh.k, ldw, &dw));
        REQUIRE(pw && dw);
        CHECK(rsclip__packed_w_bytes(dw) == 0 && rsclip__packed_w_n(dw) == sh.n);
        CHECK_OK(rsclip__gemm(g, sh.m, a, sh.k, pw, c1, sh.n, bias, RSCLIP__GEMM_GELU));
        CHECK_OK(rsclip__gemm(g, sh.m, a, sh.k, dw, c2, sh.n, bias, RSCLIP__GEMM_GELU));
        CHECK(memcmp(c1, c2, sh.m * sh.n * 4) == 0); /* same panels, same sums */
        for (int format = 0; format < 2; format++) {
            const rsclip__gemm_format f = (rsclip__gemm_format)format;
            const size_t bytes = rsclip__pack_weights_bytes(sh.n, sh.k, f);
            void *m1 = aligned_alloc(64, bytes), *m2 = aligned_alloc(64, bytes);
            void *scratch = aligned_alloc(64, rsclip__gemm_scratch_bytes());
            REQUIRE(m1 && m2 && scratch);
            rsclip__packed_w_storage s1, s2;
            const rsclip__packed_w *p1 =
                rsclip__pack_weights_into(&s1, w, sh.n, sh.k, ldw, 0, f, m1);
            const rsclip__packed_w *p2 =
                rsclip__pack_weights_into(&s2, wt, sh.n, sh.k, sh.n, 1, f, m2);
            REQUIRE(p1 && p2);
            CHECK(memcmp(m1, m2, bytes) == 0); /* transposed source: the very same panels */
            CHECK_OK(rsclip__gemm_serial(scratch, sh.m, a, sh.k, p1, c3, sh.n, bias, 0));
            if (f == RSCLIP__GEMM_F32) {
                CHECK_OK(rsclip__gemm(g, sh.m, a, sh.k, pw, c1, sh.n, bias, 0));
                CHECK(memcmp(c1, c3, sh.m * sh.n * 4) == 0); /* serial = pooled */
            }
            CHECK(rsclip__pack_weights_into(&s1, w, sh.n, sh.k, ldw, 0, f, (char *)m1 + 4) == NULL);
            free(m1), free(m2), free(scratch);
        }
        rsclip__packed_w_free(pw);
        rsclip__packed_w_free(dw);
        free(a), free(w), free(wt), free(c1), free(c2), free(c3), free(bias);
    }
}

int main(int argc, char **argv) {
    /* --expect BF16_PATH F32_PATH: the paths this process must take (set with RSCLIP_ISA) */
    const char *expect_bf16 = NULL, *expect_f32 = NULL;
    if (argc > 3 && strcmp(argv[1], "--expect") == 0) {
        expect_bf16 = argv[2];
        expect_f32 = argv[3];
    }
    const char *isa_err = rsclip__isa_env_error();
    if (isa_err) { /* e.g. RSCLIP_ISA=avx2 on a CPU without AVX2: nothing to test here */
        printf("skipped: %s\n", isa_err);
        return 77;
    }

    /* bf16 rounding of the library against the independent one (and specials) */
    CHECK(rsclip__f32_to_bf16(1.0f) == 0x3F80);
    CHECK(rsclip__f32_to_bf16(-2.0f) == 0xC000);
    {
        uint32_t u;
        float x;
        u = 0x3F808000u; /* tie, even below -> down */
        memcpy(&x, &u, 4);
        CHECK(rsclip__f32_to_bf16(x) == 0x3F80);
        u = 0x3F818000u; /* tie, odd below -> up */
        memcpy(&x, &u, 4);
        CHECK(rsclip__f32_to_bf16(x) == 0x3F82);
        u = 0x7F7FFFFFu; /* FLT_MAX rounds to inf */
        memcpy(&x, &u, 4);
        CHECK(rsclip__f32_to_bf16(x) == 0x7F80);
        u = 0x7FC00001u; /* NaN stays NaN */
        memcpy(&x, &u, 4);
        CHECK(isnan(rsclip__bf16_to_f32(rsclip__f32_to_bf16(x))));
        CHECK(rsclip__f32_to_bf16(INFINITY) == 0x7F80);
        for (int i = 0; i < 10000; i++) {
            const float v = frand() * 1000.0f;
            CHECK((double)rsclip__bf16_to_f32(rsclip__f32_to_bf16(v)) == bf16_round(v));
        }
    }

    /* argument checks */
    rsclip__gemm_ctx *g1 = NULL, *g2 = NULL;
    rsclip__packed_w *pw = NULL;
    float one = 1.0f;
    CHECK(rsclip__gemm_ctx_new(0, &g1) == RSCLIP_ERR_INVALID_ARG && g1 == NULL);
    CHECK(rsclip__pack_weights(&one, 1, 0, 1, RSCLIP__GEMM_BF16, &pw) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip__pack_weights(&one, 1, 2, 1, RSCLIP__GEMM_BF16, &pw) == RSCLIP_ERR_INVALID_ARG);
    CHECK(pw == NULL);
    rsclip__packed_w_free(NULL);
    rsclip__gemm_ctx_free(NULL);
    REQUIRE(rsclip__gemm_ctx_new(1, &g1) == RSCLIP_OK);
    REQUIRE(rsclip__gemm_ctx_new(2, &g2) == RSCLIP_OK);
    CHECK(rsclip__gemm_ctx_threads(g2) == 2);
    REQUIRE(rsclip__pack_weights(&one, 1, 1, 1, RSCLIP__GEMM_BF16, &pw) == RSCLIP_OK);
    float cc = 0.0f;
    CHECK(rsclip__gemm(g1, 1, &one, 0, pw, &cc, 1, NULL, 0) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip__gemm(g1, 0, NULL, 1, pw, NULL, 1, NULL, 0) == RSCLIP_OK);
    CHECK(rsclip__gemm(g1, 1, &one, 1, pw, &cc, 1, NULL, 0) == RSCLIP_OK && cc == 1.0f);

    /* which paths run here */
    const rsclip__gemm_path pb = rsclip__gemm_path_for(pw, 0);
    rsclip__packed_w_free(pw);
    REQUIRE(rsclip__pack_weights(&one, 1, 1, 1, RSCLIP__GEMM_F32, &pw) == RSCLIP_OK);
    const rsclip__gemm_path pf = rsclip__gemm_path_for(pw, 0);
    rsclip__packed_w_free(pw);
    printf("ceiling %s (%s): bf16 weights run %s, f32 weights run %s\n",
           rsclip__isa_name(rsclip__isa_ceiling()), rsclip__isa_forced() ? "RSCLIP_ISA" : "cpu",
           rsclip__gemm_path_name(pb), rsclip__gemm_path_name(pf));
    if (expect_bf16) {
        CHECK(strcmp(rsclip__gemm_path_name(pb), expect_bf16) == 0);
        CHECK(strcmp(rsclip__gemm_path_name(pf), expect_f32) == 0);
    } else {
        /* the CPU's best: AMX where usable, else vdpbf16ps, else the portable kernel */
        const rsclip__cpu *c = rsclip__cpu_get();
        const rsclip__gemm_path want =
            rsclip__cpu_runs(c, RSCLIP__ISA_AMX, NULL)          ? RSCLIP__GEMM_PATH_AMX
            : rsclip__cpu_runs(c, RSCLIP__ISA_AVX512BF16, NULL) ? RSCLIP__GEMM_PATH_AVX512BF16
                                                                : RSCLIP__GEMM_PATH_SCALAR;
        CHECK(pb == want);
        const char *why = NULL;
        if (!rsclip__cpu_runs(c, RSCLIP__ISA_AMX, &why))
            printf("real AMX tiles: not tested on this CPU (%s); see test_gemm_amx_emu\n", why);
    }
    CHECK(rsclip__gemm_path_for(NULL, 0) == RSCLIP__GEMM_PATH_SCALAR);

    const shape shapes[] = {{1, 1, 1},    {1, 33, 1},    {15, 1, 7},     {3, 2, 2},
                            {29, 47, 3},  {14, 32, 384}, {33, 65, 385},  {100, 31, 769},
                            {1, 200, 70}, {2, 64, 1025}, {250, 33, 200}, {20, 40, 4500}};
    const size_t n_shapes = sizeof shapes / sizeof shapes[0];
    const unsigned flag_sets[] = {0, RSCLIP__GEMM_GELU, RSCLIP__GEMM_ACCUMULATE,
                                  RSCLIP__GEMM_ACCUMULATE | RSCLIP__GEMM_GELU};
    for (int format = 0; format < 2; format++) {
        for (int forced = 0; forced < 2; forced++) {
            const unsigned fs = forced ? RSCLIP__GEMM_FORCE_SCALAR : 0;
            for (size_t si = 0; si < n_shapes; si++) {
                for (int fl = 0; fl < 4; fl++) {
                    rsclip__gemm_ctx *g = (si + (size_t)fl) % 2 ? g2 : g1;
                    check_one(g, shapes[si], format, flag_sets[fl] | fs, fl != 2 || si % 2,
                              (int)(si % 3), NULL);
                }
            }
        }
    }

    /* thread count does not change a single bit: row split (m large) and column split (m small) */
    const shape tshapes[] = {{300, 40, 150}, {5, 300, 129}, {29, 1, 17}, {300, 33, 65}};
    for (int format = 0; format < 2; format++)
        for (size_t i = 0; i < 4; i++) {
            run_pair(g1, 0, g2, 0, tshapes[i], format, 1);
            run_pair(g1, RSCLIP__GEMM_FORCE_SCALAR, g2, RSCLIP__GEMM_FORCE_SCALAR, tshapes[i],
                     format, 1);
            /* vector path vs portable path: close */
            run_pair(g2, 0, g1, RSCLIP__GEMM_FORCE_SCALAR, tshapes[i], format, 0);
        }

    check_direct_transposed(g2);
    test_q8(g1, g2);
    rsclip__gemm_ctx_free(g1);
    rsclip__gemm_ctx_free(g2);
    if (rsclip__isa_amx_emulated()) CHECK(rsclip__amx_emu_faults() == 0);
    return tu_finish("test_gemm");
}
