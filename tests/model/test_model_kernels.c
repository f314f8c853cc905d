/* The forward pass's kernels against naive double-precision references: the BLAS Linear
 * (plain C) against a triple loop, LayerNorm, one attention head, softmax (incl. large inputs),
 * GELU tanh, the scoring helpers, and resize edge cases (identity copy, channel counts, bad
 * arguments). */
#include "model_test_util.h"

#include "gemm/gemm.h"
#include "gemm/isa.h"
#include "model/model_internal.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;

static float frand(void) /* uniform in [-1, 1) */
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* y[r, o] = (y if acc) + b[o] + sum_i x[r, i] w[o, i], in double: the naive reference GEMM. */
static void naive_linear(double *y, const float *y0, const float *x, const float *w, const float *b,
                         int rows, int in, int out, int acc) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < out; o++) {
            double s = acc ? y0[(size_t)r * out + o] : 0.0;
            if (b) s += b[o];
            for (int i = 0; i < in; i++) s += (double)x[(size_t)r * in + i] * w[(size_t)o * in + i];
            y[(size_t)r * out + o] = s;
        }
    }
}

static void test_linear(void) {
    const int shapes[][3] = {{1, 1, 1},    {1, 32, 32},    {7, 33, 65},
                             {64, 32, 96}, {256, 768, 32}, {3, 1024, 5}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = malloc(sizeof(float) * rows * in), *w = malloc(sizeof(float) * out * in);
        float *b = malloc(sizeof(float) * out), *y = malloc(sizeof(float) * rows * out);
        float *y0 = malloc(sizeof(float) * rows * out);
        double *ref = malloc(sizeof(double) * rows * out);
        float *reff = malloc(sizeof(float) * rows * out);
        REQUIRE(x && w && b && y && y0 && ref && reff);
        for (int i = 0; i < rows * in; i++) x[i] = frand();
        for (int i = 0; i < out * in; i++) w[i] = frand();
        for (int i = 0; i < out; i++) b[i] = frand();
        for (int i = 0; i < rows * out; i++) y0[i] = frand();
        for (int mode = 0; mode < 4; mode++) {
            int acc = mode & 1;
            const float *bb = (mode & 2) ? b : NULL;
            memcpy(y, y0, sizeof(float) * rows * out);
            rsclip__linear(y, x, w, bb, rows, in, out, acc);
            naive_linear(ref, y0, x, w, bb, rows, in, out, acc);
            for (int i = 0; i < rows * out; i++) reff[i] = (float)ref[i];
            double e = mt_max_rel(y, reff, (size_t)rows * out);
            if (!(e < 1e-5)) {
                fprintf(stderr, "linear %dx%dx%d mode %d: rel error %.3g\n", rows, in, out, mode,
                        e);
                tu_failures++;
            }
        }
        free(x), free(w), free(b), free(y), free(y0), free(ref), free(reff);
    }
}

static void test_layernorm(void) {
    const int rows = 5, d = 96;
    float x[5 * 96], w[96], b[96], y[5 * 96], want[5 * 96];
    for (int i = 0; i < rows * d; i++) x[i] = 100.0f + 3.0f * frand(); /* large mean */
    for (int i = 0; i < d; i++) w[i] = 1.0f + 0.1f * frand(), b[i] = 0.1f * frand();
    rsclip__layernorm(y, x, w, b, rows, d, 1e-6f);
    for (int r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < d; i++) mean += x[r * d + i];
        mean /= d;
        for (int i = 0; i < d; i++) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
        var /= d;
        for (int i = 0; i < d; i++)
            want[r * d + i] = (float)((x[r * d + i] - mean) / sqrt(var + 1e-6) * w[i] + b[i]);
    }
    CHECK(mt_max_rel(y, want, (size_t)rows * d) < 1e-5);
}

/* bf16 rounding written independently of the library: 8 significant bits, ties to even. */
static float bf16_round(float x) {
    if (x == 0.0f) return 0.0f;
    int e;
    const double m = frexp((double)x, &e);
    return (float)ldexp(nearbyint(m * 256.0) / 256.0, e);
}

/* One attention head against softmax(q k^T scale) v in double, for token counts and head widths
 * around the kernels' block sizes (6 query rows, 16-lane vectors, 64-column tiles, 32-row AMX
 * panels, 16-step AMX k tiles) and a row stride wider than the head. mode 0: the f32 kernel
 * (rsclip__attention_head); 1, 2: through the GEMM kernels with f32 / bf16 panels
 * (rsclip__attention_head_gemm), bf16 against a reference with q, k, v and the probabilities
 * rounded to bf16 as the kernel rounds them. ctest runs this once per ISA path (RSCLIP_ISA). */
static void check_head(int T, int hd, int mode) {
    const int ld = hd + 13, ldo = hd + 3, bf16 = mode == 2;
    const float scale = 1.0f / sqrtf((float)hd);
    float *q = malloc(sizeof(float) * T * ld), *k = malloc(sizeof(float) * T * ld);
    float *v = malloc(sizeof(float) * T * ld), *o = malloc(sizeof(float) * T * ldo);
    const size_t nt = mode ? rsclip__attention_gemm_scratch_floats(
                                 T, hd, bf16 ? RSCLIP__GEMM_BF16 : RSCLIP__GEMM_F32)
                           : rsclip__attention_scratch_floats(T, hd);
    float *tmp = malloc(sizeof(float) * nt);
    void *gs = aligned_alloc(64, rsclip__gemm_scratch_bytes());
    double *p = malloc(sizeof(double) * T);
    REQUIRE(q && k && v && o && tmp && p && gs);
    for (int i = 0; i < T * ld; i++) q[i] = 3.0f * frand(), k[i] = 3.0f * frand(), v[i] = frand();
    for (int i = 0; i < T * ldo; i++) o[i] = 1e30f; /* the gaps must stay untouched */
    if (mode)
        rsclip__attention_head_gemm(q, k, v, (size_t)ld, o, (size_t)ldo, T, hd, scale,
                                    bf16 ? RSCLIP__GEMM_BF16 : RSCLIP__GEMM_F32, tmp, gs);
    else
        rsclip__attention_head(q, k, v, (size_t)ld, o, (size_t)ldo, T, hd, scale, tmp);
#define R(x) (bf16 ? (double)bf16_round(x) : (double)(x))
    double worst = 0.0;
    int gaps_ok = 1;
    for (int i = 0; i < T; i++) {
        double mx = -1e300, sum = 0.0;
        for (int j = 0; j < T; j++) {
            double s = 0.0;
            for (int d = 0; d < hd; d++) s += R(q[i * ld + d]) * R(k[j * ld + d]);
            p[j] = s * scale;
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int j = 0; j < T; j++) sum += (p[j] = exp(p[j] - mx));
        for (int j = 0; j < T; j++) p[j] = R((float)(p[j] / sum));
        for (int d = 0; d < hd; d++) {
            double want = 0.0;
            for (int j = 0; j < T; j++) want += p[j] * R(v[j * ld + d]);
            const double err = fabs(o[i * ldo + d] - want);
            worst = err > worst ? err : worst;
        }
        for (int d = hd; d < ldo; d++) gaps_ok &= o[i * ldo + d] == 1e30f;
    }
#undef R
    /* |v| < 1: f32 rounding is ~1e-6; bf16: a probability may round to the neighbouring bf16
     * (2^-8 relative) where f32 and double land on two sides of a rounding boundary */
    if (worst > (bf16 ? 4e-3 : 1e-5) || !gaps_ok) {
        fprintf(stderr, "attention mode %d T=%d hd=%d: max abs error %.3g, gaps %s\n", mode, T, hd,
                worst, gaps_ok ? "intact" : "overwritten");
        tu_failures++;
    }
    free(q), free(k), free(v), free(o), free(tmp), free(p), free(gs);
}

static void test_attention(void) {
    const int Ts[] = {1, 5, 6, 7, 17, 33, 64, 65, 196, 257};
    const int hds[] = {8, 12, 16, 20, 64, 80};
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
        for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
            for (int mode = 0; mode < 3; mode++) check_head(Ts[ti], hds[hi], mode);
}

static void test_softmax_gelu(void) {
    float x[3 * 50], want[3 * 50];
    for (int i = 0; i < 150; i++) x[i] = 10.0f * frand();
    for (int i = 50; i < 100; i++)
        x[i] += 1000.0f; /* would overflow expf without max subtraction */
    for (int r = 0; r < 3; r++) {
        double mx = -1e300, s = 0;
        for (int i = 0; i < 50; i++) mx = x[r * 50 + i] > mx ? x[r * 50 + i] : mx;
        for (int i = 0; i < 50; i++) s += exp(x[r * 50 + i] - mx);
        for (int i = 0; i < 50; i++) want[r * 50 + i] = (float)(exp(x[r * 50 + i] - mx) / s);
    }
    rsclip__softmax_rows(x, 3, 50);
    CHECK(mt_max_rel(x, want, 150) < 1e-5);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int i = 0; i < 50; i++) s += x[r * 50 + i];
        CHECK(fabs(s - 1.0) < 1e-5);
    }

    float g[200], gw[200];
    for (int i = 0; i < 200; i++) {
        g[i] = 8.0f * frand();
        double v = g[i];
        gw[i] = (float)(0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
    }
    rsclip__gelu_tanh(g, 200);
    CHECK(mt_max_rel(g, gw, 200) < 1e-6);
}

static void test_scoring(void) {
    float a[4] = {3, 0, 4, 0}, b[4] = {0, 2, 0, 0}, c[4] = {6, 0, 8, 0};
    CHECK(fabsf(rsclip_cosine(a, b, 4)) < 1e-7f);
    CHECK(fabsf(rsclip_cosine(a, c, 4) - 1.0f) < 1e-7f);
    rsclip_l2_normalize(a, 4);
    CHECK(a[0] == 0.6f && a[2] == 0.8f && a[1] == 0.0f);
}

static void test_resize_edges(void) {
    /* identity: an exact copy, stride honoured */
    uint8_t src[4 * 10], dst[3 * 4 * 3];
    for (int i = 0; i < 40; i++) src[i] = (uint8_t)(i * 7);
    CHECK_OK(rsclip_resize_bicubic_u8(src, 3, 4, 10, 3, dst, 3, 4));
    int same = 1;
    for (int y = 0; y < 4; y++)
        for (int i = 0; i < 9; i++) same &= dst[y * 9 + i] == src[y * 10 + i];
    CHECK(same);
    /* a constant image stays constant under any resize (weights sum to 1) */
    uint8_t flat[17 * 9 * 4], out[5 * 23 * 4];
    memset(flat, 200, sizeof(flat));
    for (int ch = 1; ch <= 4; ch++) {
        CHECK_OK(rsclip_resize_bicubic_u8(flat, 17, 9, 17 * ch, ch, out, 5, 23));
        int ok = 1;
        for (int i = 0; i < 5 * 23 * ch; i++) ok &= out[i] == 200;
        CHECK(ok);
    }
    CHECK(rsclip_resize_bicubic_u8(src, 3, 4, 5, 3, dst, 3, 4) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_resize_bicubic_u8(src, 0, 4, 10, 3, dst, 3, 4) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_resize_bicubic_u8(src, 3, 4, 10, 5, dst, 3, 4) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_resize_bicubic_u8(NULL, 3, 4, 10, 3, dst, 3, 4) == RSCLIP_ERR_INVALID_ARG);
}

int main(void) {
    const char *isa_err = rsclip__isa_env_error();
    if (isa_err) { /* RSCLIP_ISA names a path this CPU cannot run */
        printf("skipped: %s\n", isa_err);
        return 77;
    }
    printf("kernels up to %s\n", rsclip__isa_name(rsclip__isa_ceiling()));
    test_linear();
    test_layernorm();
    test_attention();
    test_softmax_gelu();
    test_scoring();
    test_resize_edges();
    return tu_finish("test_model_kernels");
}
