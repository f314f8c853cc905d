/* GEMM benchmark: OpenBLAS cblas_sgemm vs rsclip's packed bf16 (AMX or vdpbf16ps), f32 and int8
 * (vpdpbusd) kernels at the Linear-layer shapes of the SigLIP towers, 1 and 2 threads, in GFLOP/s
 * and as a fraction of the measured peak of this machine (an int8 multiply-add counts 2 ops).
 *
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/tests/bench/rsclip_bench_gemm [--quick]
 *       [--cpu-time] [--peak] [--one-thread]
 *
 * Run with OPENBLAS_CORETYPE unset: forcing Haswell halves OpenBLAS on AVX-512 machines. Only one
 * pool is active at a time: OpenBLAS runs with T threads for its rows, our context with T threads
 * for ours while OpenBLAS is set to 1 thread.
 */
#include "gemm/gemm.h"
#include "gemm/isa.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* Wall clock, or with --cpu-time this thread's CPU time: on a shared, oversubscribed machine
 * the single-thread figures then exclude the time other processes held the core (caches are
 * still disturbed). Multi-thread figures always use the wall clock. */
static int g_cpu_time;
static double now_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) {
    return now_clock(CLOCK_MONOTONIC);
}

/* ---- peak: independent FMA / vdpbf16ps chains, one per thread ---- */
#define PEAK_ITERS 20000000L
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) static float peak_fma_body(void) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < PEAK_ITERS; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static float peak_bf16_body(void) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = (__m512bh)_mm512_set1_epi32(1);
    for (long it = 0; it < PEAK_ITERS; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, i & 1 ? x : y);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static float peak_fma256_body(void) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < PEAK_ITERS; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
__attribute__((target("avx512f,avx512vnni"))) static float peak_vnni_body(void) {
    __m512i acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    const __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x01020304);
    for (long it = 0; it < PEAK_ITERS; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    }
    __m512i s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_epi32(s, acc[i]);
    return (float)_mm512_reduce_add_epi32(s);
}
#endif

static volatile float g_sink;
static void *peak_thread(void *arg) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int kind = *(int *)arg;
    g_sink = kind == 3   ? peak_fma256_body()
             : kind == 2 ? peak_vnni_body()
             : kind      ? peak_bf16_body()
                         : peak_fma_body();
#else
    (void)arg;
#endif
    return NULL;
}

/* GFLOP/s of n_threads copies of the chain loop (ops per instruction: 32 fma, 64 dpbf16, 128
 * dpbusd, 16 ymm fma); bf16: 0 f32, 1 bf16, 2 int8, 3 f32 on AVX2. */
static double measure_peak(int bf16, int n_threads) {
    pthread_t th[8];
    double dt;
    if (n_threads == 1 && g_cpu_time) {
        const double t0 = now_clock(CLOCK_THREAD_CPUTIME_ID);
        peak_thread(&bf16);
        dt = now_clock(CLOCK_THREAD_CPUTIME_ID) - t0;
    } else {
        const double t0 = now();
        for (int i = 0; i < n_threads; i++) pthread_create(&th[i], NULL, peak_thread, &bf16);
        for (int i = 0; i < n_threads; i++) pthread_join(th[i], NULL);
        dt = now() - t0;
    }
    return (double)n_threads * (double)PEAK_ITERS * 12.0 *
           (bf16 == 2 ? 128.0
            : bf16    ? 64.0
                      : 32.0) /
           dt * 1e-9;
}

/* ---- GEMM timing ---- */
typedef struct gshape {
    const char *what;
    int m, n, k;
} gshape;

typedef enum { IMPL_SGEMM, IMPL_BF16, IMPL_F32, IMPL_INT8, IMPL_N } impl;

static double run_impl(impl which, int threads, const gshape *s, const float *a, const float *w,
                       const float *bias, float *c, rsclip__packed_w *const pw[IMPL_N],
                       rsclip__gemm_ctx *ctx, double min_time) {
    const double flops = 2.0 * s->m * s->n * s->k;
    const clockid_t clk = g_cpu_time && threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    if (which == IMPL_SGEMM)
        openblas_set_num_threads(threads);
    else
        openblas_set_num_threads(1);
    double best = 1e30, total = 0.0;
    int reps = 0;
    do {
        const double t0 = now_clock(clk);
        if (which == IMPL_SGEMM) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->m, s->n, s->k, 1.0f, a, s->k, w,
                        s->k, 0.0f, c, s->n);
        } else {
            rsclip__gemm(ctx, (size_t)s->m, a, (size_t)s->k, pw[which], c, (size_t)s->n, bias, 0);
        }
        const double dt = now_clock(clk) - t0;
        if (dt < best) best = dt;
        total += dt;
        reps++;
    } while ((total < min_time || reps < 3) && reps < 1000);
    return flops / best * 1e-9;
}

int main(int argc, char **argv) {
    int quick = 0, only_peak = 0, max_threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--cpu-time") == 0)
            g_cpu_time = 1;
        else if (strcmp(argv[i], "--peak") == 0)
            only_peak = 1;
        else if (strcmp(argv[i], "--one-thread") == 0)
            max_threads = 1;
        else {
            fprintf(stderr, "usage: %s [--quick] [--cpu-time] [--peak] [--one-thread]\n", argv[0]);
            return 2;
        }
    }
    const double min_time = quick ? 0.15 : 0.6;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS: %s (core %s)%s\n", openblas_get_config(), openblas_get_corename(),
           ct ? "  WARNING: OPENBLAS_CORETYPE is set; unset it for real numbers" : "");
    const rsclip__isa top = rsclip__isa_ceiling();
    const int has_bf16 = top >= RSCLIP__ISA_AVX512BF16, has_f = top >= RSCLIP__ISA_AVX512;
    printf("rsclip gemm: kernels up to %s%s (RSCLIP_ISA to force one)\n", rsclip__isa_name(top),
           rsclip__isa_forced() ? ", forced" : "");
    const int has_vnni = rsclip__gemm_vnni_usable();
    double peak[3][IMPL_N] = {{0}}; /* per thread count, per impl (sgemm: the f32 one) */
    for (int t = 1; t <= max_threads; t++) {
        peak[t][IMPL_F32] = peak[t][IMPL_SGEMM] = has_f                     ? measure_peak(0, t)
                                                  : top >= RSCLIP__ISA_AVX2 ? measure_peak(3, t)
                                                                            : 0.0;
        peak[t][IMPL_BF16] = has_bf16 ? measure_peak(1, t) : 0.0;
        peak[t][IMPL_INT8] = has_vnni ? measure_peak(2, t) : 0.0;
        printf("measured peak, %d thread(s): f32 FMA %.0f GFLOP/s, bf16 dot %.0f GFLOP/s, int8 "
               "dot %.0f GOP/s\n",
               t, peak[t][IMPL_F32], peak[t][IMPL_BF16], peak[t][IMPL_INT8]);
    }

    if (only_peak) return 0;
    /* rows = batch x tokens; per encoder layer: q,k,v,out [D,D], fc1 [I,D], fc2 [D,I] */
    gshape shapes[64];
    int ns = 0;
    const struct {
        const char *name;
        int d, i, t;
        int batches[3];
    } models[] = {{"base224", 768, 3072, 196, {1, 8, 32}},
                  {"base256", 768, 3072, 256, {1, 8, 32}},
                  {"large256", 1024, 4096, 256, {1, 8, 32}},
                  {"text-base", 768, 3072, 64, {1, 32, 0}}};
    const int n_models = quick ? 2 : 4;
    for (int mi = 0; mi < n_models; mi++) {
        for (int bi = 0; bi < 3; bi++) {
            const int b = models[mi].batches[bi];
            if (b == 0 || (quick && b == 32)) continue;
            static char names[64][48];
            snprintf(names[ns], sizeof names[ns], "%s b%d", models[mi].name, b);
            const int m = b * models[mi].t, d = models[mi].d, in = models[mi].i;
            shapes[ns] = (gshape){names[ns], m, d, d};      /* q, k, v, out_proj */
            shapes[ns + 1] = (gshape){names[ns], m, in, d}; /* fc1 */
            shapes[ns + 2] = (gshape){names[ns], m, d, in}; /* fc2 */
            ns += 3;
        }
    }

    size_t max_a = 0, max_w = 0, max_c = 0;
    for (int i = 0; i < ns; i++) {
        const size_t m = (size_t)shapes[i].m, n = (size_t)shapes[i].n, k = (size_t)shapes[i].k;
        if (m * k > max_a) max_a = m * k;
        if (n * k > max_w) max_w = n * k;
        if (m * n > max_c) max_c = m * n;
    }
    float *a = malloc(max_a * 4), *w = malloc(max_w * 4), *c = malloc(max_c * 4);
    float *bias = malloc(8192 * 4);
    if (!a || !w || !c || !bias) return 1;
    uint64_t r = 88172645463325252ull;
    for (size_t i = 0; i < max_a; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        a[i] = (float)((double)(r >> 40) / 16777216.0 - 0.5);
    }
    for (size_t i = 0; i < max_w; i++) w[i] = a[i % max_a] * 0.05f;
    for (size_t i = 0; i < 8192; i++) bias[i] = 0.01f * (float)(i % 7);
    memset(c, 0, max_c * 4);

    rsclip__gemm_ctx *ctx[3] = {NULL, NULL, NULL};
    if (rsclip__gemm_ctx_new(1, &ctx[1]) || rsclip__gemm_ctx_new(2, &ctx[2])) return 1;

    static const char *const names[IMPL_N] = {"sgemm", "bf16", "f32", "int8"};
    printf("\n%-16s %5s %5s %5s |", "shape (M x N x K)", "M", "N", "K");
    for (int t = 1; t <= max_threads; t++)
        printf(" %d thread(s): sgemm bf16 f32 int8 (GFLOP/s, %% of peak) |", t);
    printf("\n");
    double sum_t[3][IMPL_N] = {{0}}; /* per thread count, per impl: seconds for all shapes */
    double sum_flops = 0.0;
    for (int i = 0; i < ns; i++) {
        const gshape *s = &shapes[i];
        rsclip__packed_w *pw[IMPL_N] = {NULL, NULL, NULL, NULL};
        const rsclip__gemm_format fmt[IMPL_N] = {RSCLIP__GEMM_F32, RSCLIP__GEMM_BF16,
                                                 RSCLIP__GEMM_F32, RSCLIP__GEMM_INT8};
        for (int im = 1; im < IMPL_N; im++)
            if (rsclip__pack_weights(w, (size_t)s->n, (size_t)s->k, (size_t)s->k, fmt[im], &pw[im]))
                return 1;
        sum_flops += 2.0 * s->m * s->n * s->k;
        printf("%-16s %5d %5d %5d |", s->what, s->m, s->n, s->k);
        for (int t = 1; t <= max_threads; t++) {
            for (int im = 0; im < IMPL_N; im++) {
                const double g = run_impl((impl)im, t, s, a, w, bias, c, pw, ctx[t], min_time);
                sum_t[t][im] += 2.0 * s->m * s->n * s->k / (g * 1e9);
                printf(" %5.0f", g);
                if (im && peak[t][im] > 0) printf(" (%2.0f%%)", 100.0 * g / peak[t][im]);
            }
            printf(" |");
        }
        printf("\n");
        for (int im = 1; im < IMPL_N; im++) rsclip__packed_w_free(pw[im]);
    }
    printf("(GFLOP/s, best of runs; %% = kernel / measured peak of its instruction)\n");
    for (int t = 1; t <= max_threads; t++)
        for (int im = 0; im < IMPL_N; im++)
            printf("all shapes, %d thread(s), %-5s: %.3f s, %.0f GFLOP/s (%.2fx sgemm, %.0f%% of "
                   "peak)\n",
                   t, names[im], sum_t[t][im], sum_flops / sum_t[t][im] * 1e-9,
                   sum_t[t][0] / sum_t[t][im],
                   peak[t][im] > 0 ? 100.0 * sum_flops / sum_t[t][im] * 1e-9 / peak[t][im] : 0.0);
    rsclip__gemm_ctx_free(ctx[1]);
    rsclip__gemm_ctx_free(ctx[2]);
    free(a);
    free(w);
    free(c);
    free(bias);
    return 0;
}
