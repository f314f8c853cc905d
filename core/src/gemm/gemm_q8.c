/* int8 (W8A8) GEMM: quantisation, packing and kernels, portable C and AVX512-VNNI.
 *
 * A row x (activations, or a weight row = one output feature) is quantised symmetrically:
 * m = max |x|, q = round_to_nearest_even(x * (127 / m)) in [-127, 127], scale = m / 127 (m = 0:
 * all q = 0). vpdpbusd multiplies unsigned by signed bytes, so activations are stored as q + 128
 * and the products of the offset, 128 x sum_k qw, are taken back out per column and k block:
 *     c = ((acc - 128 sum qw) * scale_w) * scale_a        (acc = sum_k (qa + 128) qw, int32)
 * exact in int32 (|acc| <= K 255 127 < 2^31 for K up to 66000), then the usual epilogue. The C
 * and VNNI versions give the same bytes, the same int32 sums and the same f32 results. */
#include "gemm/gemm_internal.h"

#include <math.h>
#include <string.h>

/* k steps per block: one block for every K up to 16384 (the A block, MC x 4096 steps, fits the
 * same scratch as the f32 one). */
#define KS_MAX_Q8 4096

void rsclip__gemm_q8_blocks(size_t steps, size_t *n_kb, size_t *ks_blk) {
    *n_kb = (steps + KS_MAX_Q8 - 1) / KS_MAX_Q8;
    if (*n_kb == 0) *n_kb = 1;
    *ks_blk = (steps + *n_kb - 1) / *n_kb;
}

static float absmax(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

static inline int32_t quant(float x, float inv) {
    const float t = nearbyintf(x * inv);
    return t > 127.0f ? 127 : t < -127.0f ? -127 : (int32_t)t;
}

void rsclip__gemm_pack_w_q8_c(const float *w, size_t ldw, rsclip__packed_w *p) {
    const size_t nr = (size_t)p->nr;
    for (size_t j = 0; j < p->n_panels; j++) {
        uint32_t *pd = p->data + j * p->steps * nr;
        for (size_t l = 0; l < nr; l++) {
            const size_t row = j * nr + l;
            const float *wr = row < p->n ? w + row * ldw : NULL;
            const float m = wr ? absmax(wr, p->k) : 0.0f;
            const float inv = m > 0.0f ? 127.0f / m : 0.0f;
            p->wscale[j * nr + l] = m / 127.0f;
            for (size_t kb = 0; kb < p->n_kb; kb++) {
                int32_t sum = 0;
                const size_t s1 = (kb + 1) * p->ks_blk < p->steps ? (kb + 1) * p->ks_blk : p->steps;
                for (size_t s = kb * p->ks_blk; s < s1; s++) {
                    uint32_t u = 0;
                    for (size_t b = 0; b < GEMM_Q8_KPU; b++) {
                        const size_t k = s * GEMM_Q8_KPU + b;
                        const int32_t q = wr && k < p->k ? quant(wr[k], inv) : 0;
                        sum += q;
                        u |= (uint32_t)(uint8_t)(int8_t)q << (8 * b);
                    }
                    pd[s * nr + l] = u;
                }
                p->wcorr[(j * p->n_kb + kb) * nr + l] = 128 * sum;
            }
        }
    }
}

void rsclip__gemm_pack_a_q8_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                              size_t k_total, uint32_t *dst, float *scales) {
    const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
    for (size_t p = 0; p < panels; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        for (size_t r = 0; r < GEMM_MR; r++) {
            const size_t row = p * GEMM_MR + r;
            const float *ar = row < rows ? a + row * lda : NULL;
            const float m = ar ? absmax(ar, k_total) : 0.0f;
            const float inv = m > 0.0f ? 127.0f / m : 0.0f;
            if (ar) scales[row] = m / 127.0f;
            for (size_t s = 0; s < ks; s++) {
                uint32_t u = 0;
                for (size_t b = 0; b < GEMM_Q8_KPU; b++) {
                    const size_t k = (s0 + s) * GEMM_Q8_KPU + b;
                    const int32_t q = ar && k < k_total ? quant(ar[k], inv) : 0;
                    u |= (uint32_t)(q + 128) << (8 * b);
                }
                pd[s * GEMM_MR + r] = u;
            }
        }
    }
}

void rsclip__gemm_kernel_q8_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c, size_t ldc,
                              int mr, int nr, int mode, const float *bias, int gelu,
                              const float *ascale, const float *wscale, const int32_t *wcorr) {
    int32_t acc[GEMM_MR][GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (size_t s = 0; s < ks; s++) {
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < GEMM_NR; j++)
                for (int b = 0; b < GEMM_Q8_KPU; b++)
                    acc[r][j] += (int32_t)(uint8_t)(a[r] >> (8 * b)) *
                                 (int32_t)(int8_t)(uint8_t)(w[j] >> (8 * b));
        a += GEMM_MR;
        w += GEMM_NR;
    }
    float out[GEMM_MR * GEMM_NR];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < GEMM_NR; j++)
            out[r * GEMM_NR + j] = (float)(acc[r][j] - wcorr[j]) * wscale[j] * ascale[r];
    rsclip__gemm_store_tile(out, GEMM_NR, c, ldc, mr, nr, mode, bias, gelu);
}

/* ---------------------------------------------------------------------------------------------
 * AVX512-VNNI
 */
#if defined(RSCLIP_GEMM_HAVE_X86)
#include "gemm/simd_avx512.h"

#define T_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define DECL(r) __m512i c##r##_0 = _mm512_setzero_si512(), c##r##_1 = _mm512_setzero_si512();
#define STEP(r)                                                                                    \
    {                                                                                              \
        const __m512i av = _mm512_set1_epi32((int)a[r]);                                           \
        c##r##_0 = _mm512_dpbusd_epi32(c##r##_0, av, w0);                                          \
        c##r##_1 = _mm512_dpbusd_epi32(c##r##_1, av, w1);                                          \
    }
#define STORE(r)                                                                                   \
    if (r < mr) {                                                                                  \
        const __m512 sa = _mm512_set1_ps(ascale[r]);                                               \
        const __m512 v0 = _mm512_mul_ps(                                                           \
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c##r##_0, k0)), s0), sa);            \
        const __m512 v1 = _mm512_mul_ps(                                                           \
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c##r##_1, k1)), s1), sa);            \
        rsclip__store_row32(c + (size_t)r * ldc, v0, v1, m0, m1, mode, bias, gelu);                \
    }

T_VNNI void rsclip__gemm_kernel_q8_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                          size_t ldc, int mr, int nr, int mode, const float *bias,
                                          int gelu, const float *ascale, const float *wscale,
                                          const int32_t *wcorr) {
    ROWS(DECL)
    for (size_t s = 0; s < ks; s++) {
        const __m512i w0 = _mm512_load_si512((const void *)w);
        const __m512i w1 = _mm512_load_si512((const void *)(w + 16));
        ROWS(STEP)
        a += GEMM_MR;
        w += GEMM_NR;
    }
    const __mmask16 m0 = rsclip__mask16(nr), m1 = rsclip__mask16(nr - 16);
    const __m512i k0 = _mm512_loadu_si512((const void *)wcorr);
    const __m512i k1 = _mm512_loadu_si512((const void *)(wcorr + 16));
    const __m512 s0 = _mm512_loadu_ps(wscale), s1 = _mm512_loadu_ps(wscale + 16);
    ROWS(STORE)
}

/* In-register transpose of 16 vectors of 16 32-bit lanes (as gemm_avx512.c). */
static inline T_VNNI void transpose16i(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xDD);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
    }
}

static inline T_VNNI float absmax16(const float *x, size_t n) {
    __m512 m = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16)
        m = _mm512_max_ps(
            m, _mm512_abs_ps(_mm512_maskz_loadu_ps(rsclip__mask16((long)(n - i)), x + i)));
    return _mm512_reduce_max_ps(m);
}

/* 16 units (64 k from c0, k >= kend as q = 0) of one row as unsigned bytes q + 128. */
static inline T_VNNI __m512i units16(const float *x, size_t c0, size_t kend, __m512 inv) {
    const __m512i off = _mm512_set1_epi32(128), lo = _mm512_set1_epi32(-127),
                  hi = _mm512_set1_epi32(127);
    __m128i b[4];
    for (int v = 0; v < 4; v++) {
        const size_t k = c0 + 16 * (size_t)v;
        const __mmask16 m = rsclip__mask16(kend > k ? (long)(kend - k) : 0);
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, m ? x + k : x), inv));
        q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), off);
        b[v] = _mm512_cvtepi32_epi8(q);
    }
    __m512i out = _mm512_castsi128_si512(b[0]);
    out = _mm512_inserti32x4(out, b[1], 1);
    out = _mm512_inserti32x4(out, b[2], 2);
    return _mm512_inserti32x4(out, b[3], 3);
}

/* As rsclip__gemm_pack_a_q8_c: per 14-row panel, 16 steps at a time through a transpose. */
T_VNNI void rsclip__gemm_pack_a_q8_avx512(const float *a, size_t lda, size_t rows, size_t s0,
                                          size_t ks, size_t k_total, uint32_t *dst, float *scales) {
    const __mmask16 mr_lanes = (__mmask16)((1u << GEMM_MR) - 1);
    for (size_t p = 0; p * GEMM_MR < rows; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        const size_t nrows = rows - p * GEMM_MR < GEMM_MR ? rows - p * GEMM_MR : GEMM_MR;
        __m512 inv[GEMM_MR];
        for (size_t i = 0; i < GEMM_MR; i++) {
            const float m = i < nrows ? absmax16(a + (p * GEMM_MR + i) * lda, k_total) : 0.0f;
            if (i < nrows) scales[p * GEMM_MR + i] = m / 127.0f;
            inv[i] = _mm512_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
        }
        for (size_t s = 0; s < ks; s += 16) {
            __m512i r[16];
            for (size_t i = 0; i < 16; i++)
                r[i] = i < nrows ? units16(a + (p * GEMM_MR + i) * lda, (s0 + s) * GEMM_Q8_KPU,
                                           k_total, inv[i])
                                 : _mm512_set1_epi32((int)0x80808080u);
            transpose16i(r);
            const size_t n = ks - s < 16 ? ks - s : 16;
            for (size_t i = 0; i < n; i++)
                _mm512_mask_storeu_epi32(pd + (s + i) * GEMM_MR, mr_lanes, r[i]);
        }
    }
}
#endif
