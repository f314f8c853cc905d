/* AVX-512 micro-kernels and A packing. Compiled for the baseline ISA with per-function target
 * attributes; gemm.c calls them only after the cpuid check. */
#include "gemm/gemm_internal.h"

#if defined(RSCLIP_GEMM_HAVE_X86)

#include "gemm/simd_avx512.h"

#include <immintrin.h>
#include <string.h>

#define T_F __attribute__((target("avx512f")))
#define T_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* GELU tanh form: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
static inline T_F __m512 gelu16(__m512 x) {
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 t = _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x);
    t = _mm512_mul_ps(t, _mm512_set1_ps(-1.5957691216057308f)); /* -2 sqrt(2/pi) */
    const __m512 e = rsclip__exp16(t);
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static inline T_F void store_row(float *c, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1,
                                 int mode, const float *bias, int gelu) {
    if (mode & GEMM_STORE_ADD_C) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
    }
    if (mode & GEMM_STORE_LAST) {
        if (bias) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, bias));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, bias + 16));
        }
        if (gelu) {
            v0 = gelu16(v0);
            v1 = gelu16(v1);
        }
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
}

/* The C tile's rows are 3-16 KiB apart and, for large m, no longer in L2 when the next k block
 * comes back to them: fetch them while the k loop runs instead of stalling at the store. */
static inline void prefetch_c(const float *c, size_t ldc, int mr) {
    for (int r = 0; r < mr; r++) {
        const char *p = (const char *)(c + (size_t)r * ldc);
        __builtin_prefetch(p, 1, 3);
        __builtin_prefetch(p + 64, 1, 3);
        __builtin_prefetch(p + 127, 1, 3);
    }
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define DECL(r) __m512 c##r##_0 = _mm512_setzero_ps(), c##r##_1 = _mm512_setzero_ps();
#define STORE(r)                                                                                   \
    if (r < mr) store_row(c + (size_t)r * ldc, c##r##_0, c##r##_1, m0, m1, mode, bias, gelu);

#define STEP_BF16(r)                                                                               \
    {                                                                                              \
        const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r]);                                \
        c##r##_0 = _mm512_dpbf16_ps(c##r##_0, av, w0);                                             \
        c##r##_1 = _mm512_dpbf16_ps(c##r##_1, av, w1);                                             \
    }

T_BF16 void rsclip__gemm_kernel_bf16_avx512(size_t ks, const uint32_t *a, const uint32_t *w,
                                            float *c, size_t ldc, int mr, int nr, int mode,
                                            const float *bias, int gelu) {
    prefetch_c(c, ldc, mr);
    ROWS(DECL)
    for (size_t s = 0; s < ks; s++) {
        const __m512bh w0 = (__m512bh)_mm512_load_si512((const void *)w);
        const __m512bh w1 = (__m512bh)_mm512_load_si512((const void *)(w + 16));
        ROWS(STEP_BF16)
        a += GEMM_MR;
        w += GEMM_NR;
    }
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32  ? (__mmask16)0xFFFF
                         : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1)
                                   : 0;
    ROWS(STORE)
}

#define STEP_F32(r)                                                                                \
    {                                                                                              \
        const __m512 av = _mm512_set1_ps(((const float *)a)[r]);                                   \
        c##r##_0 = _mm512_fmadd_ps(av, w0, c##r##_0);                                              \
        c##r##_1 = _mm512_fmadd_ps(av, w1, c##r##_1);                                              \
    }

T_F void rsclip__gemm_kernel_f32_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                        size_t ldc, int mr, int nr, int mode, const float *bias,
                                        int gelu) {
    prefetch_c(c, ldc, mr);
    ROWS(DECL)
    for (size_t s = 0; s < ks; s++) {
        const __m512 w0 = _mm512_load_ps((const void *)w);
        const __m512 w1 = _mm512_load_ps((const void *)(w + 16));
        ROWS(STEP_F32)
        a += GEMM_MR;
        w += GEMM_NR;
    }
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32  ? (__mmask16)0xFFFF
                         : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1)
                                   : 0;
    ROWS(STORE)
}

/* In-register transpose of 16 vectors of 16 32-bit lanes: r[i][j] -> r[j][i]. */
static inline T_F void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xDD);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

/* Store the first n (<= 16) transposed vectors as consecutive k steps of an MR-wide panel. */
static inline T_F void store_steps(uint32_t *pd, const __m512 r[16], size_t n) {
    const __mmask16 mr = (__mmask16)((1u << GEMM_MR) - 1);
    for (size_t i = 0; i < n; i++) _mm512_mask_storeu_ps(pd + i * GEMM_MR, mr, r[i]);
}

/* Pack: for each MR-row panel, 16 k steps at a time: one vector per row (16 steps of that row;
 * rows past `rows` and k past k_total read as 0), a 16 x 16 transpose, then one MR-wide store per
 * step. (A per-row scatter was 12% of an N = 768 GEMM.) */
T_BF16 void rsclip__gemm_pack_a_bf16_avx512(const float *a, size_t lda, size_t rows, size_t s0,
                                            size_t ks, size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
    const size_t k0 = 2 * s0;
    const size_t kend = k0 + 2 * ks < k_total ? k0 + 2 * ks : k_total;
    for (size_t p = 0; p < panels; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        for (size_t s = 0; s < ks; s += 16) {
            const size_t kk = k0 + 2 * s; /* first k of this chunk of 32 */
            const size_t left = kend > kk ? kend - kk : 0;
            const __mmask16 lo = rsclip__mask16((long)left);
            const __mmask16 hi = rsclip__mask16((long)left - 16);
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                const size_t row = p * GEMM_MR + (size_t)i;
                if (i >= GEMM_MR || row >= rows) {
                    r[i] = _mm512_setzero_ps();
                    continue;
                }
                const float *ar = a + row * lda + kk;
                const __m512 x0 = _mm512_maskz_loadu_ps(lo, ar);
                const __m512 x1 = _mm512_maskz_loadu_ps(hi, ar + 16);
                /* cvtne2ps2bf16(b, a): low 16 bf16 from a, high 16 from b -> (k even, k odd)
                 * pairs in k order, one 32-bit unit per step */
                r[i] = (__m512)_mm512_cvtne2ps_pbh(x1, x0);
            }
            transpose16(r);
            store_steps(pd + s * GEMM_MR, r, ks - s < 16 ? ks - s : 16);
        }
    }
}

T_F void rsclip__gemm_pack_a_f32_avx512(const float *a, size_t lda, size_t rows, size_t s0,
                                        size_t ks, size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
    const size_t kend = s0 + ks < k_total ? s0 + ks : k_total;
    for (size_t p = 0; p < panels; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        for (size_t s = 0; s < ks; s += 16) {
            const size_t kk = s0 + s;
            const __mmask16 m = rsclip__mask16(kend > kk ? (long)(kend - kk) : 0);
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                const size_t row = p * GEMM_MR + (size_t)i;
                r[i] = i < GEMM_MR && row < rows ? _mm512_maskz_loadu_ps(m, a + row * lda + kk)
                                                 : _mm512_setzero_ps();
            }
            transpose16(r);
            store_steps(pd + s * GEMM_MR, r, ks - s < 16 ? ks - s : 16);
        }
    }
}

/* Weight panels (layout in gemm_internal.h) from W [n, k] by 16 x 16 transposes: for each panel
 * and 16 steps, lanes 0-15 then 16-31 (rows past n are zero). f32 and bf16 (RNE pairs, the
 * operand order of vdpbf16ps) variants; k past the end reads as 0. */
static inline T_BF16 void pack_w_block_bf16(const float *w, size_t ldw, size_t n, size_t k,
                                            size_t row0, size_t s, uint32_t *dst) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) {
        const size_t row = row0 + (size_t)i;
        if (row >= n) {
            r[i] = _mm512_setzero_ps();
            continue;
        }
        const float *wr = w + row * ldw;
        const size_t kk = 2 * s;
        const __m512 x0 = _mm512_maskz_loadu_ps(rsclip__mask16((long)k - (long)kk), wr + kk);
        const __m512 x1 =
            _mm512_maskz_loadu_ps(rsclip__mask16((long)k - (long)kk - 16), wr + kk + 16);
        r[i] = (__m512)_mm512_cvtne2ps_pbh(x1, x0);
    }
    transpose16(r);
    for (int i = 0; i < 16; i++) _mm512_store_ps((float *)(dst + (size_t)i * GEMM_NR), r[i]);
}

T_BF16 void rsclip__gemm_pack_w_bf16_avx512(const float *w, size_t n, size_t k, size_t ldw,
                                            size_t steps, size_t panels, uint32_t *data) {
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * GEMM_NR;
        for (size_t s = 0; s < steps; s += 16) {
            uint32_t tmp[16 * GEMM_NR] __attribute__((aligned(64)));
            uint32_t *dst = steps - s >= 16 ? pd + s * GEMM_NR : tmp;
            pack_w_block_bf16(w, ldw, n, k, j * GEMM_NR, s, dst);
            pack_w_block_bf16(w, ldw, n, k, j * GEMM_NR + 16, s, dst + 16);
            if (dst == tmp) memcpy(pd + s * GEMM_NR, tmp, (steps - s) * GEMM_NR * 4);
        }
    }
}

T_F void rsclip__gemm_pack_w_f32_avx512(const float *w, size_t n, size_t k, size_t ldw,
                                        size_t steps, size_t panels, uint32_t *data) {
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * GEMM_NR;
        for (size_t s = 0; s < steps; s += 16) {
            uint32_t tmp[16 * GEMM_NR] __attribute__((aligned(64)));
            uint32_t *dst = steps - s >= 16 ? pd + s * GEMM_NR : tmp;
            for (int h = 0; h < 2; h++) {
                __m512 r[16];
                for (int i = 0; i < 16; i++) {
                    const size_t row = j * GEMM_NR + (size_t)(16 * h + i);
                    r[i] = row < n ? _mm512_maskz_loadu_ps(rsclip__mask16((long)k - (long)s),
                                                           w + row * ldw + s)
                                   : _mm512_setzero_ps();
                }
                transpose16(r);
                for (int i = 0; i < 16; i++)
                    _mm512_store_ps((float *)(dst + (size_t)i * GEMM_NR + 16 * h), r[i]);
            }
            if (dst == tmp) memcpy(pd + s * GEMM_NR, tmp, (steps - s) * GEMM_NR * 4);
        }
    }
}

#else
/* Keep the translation unit non-empty on other architectures. */
typedef int rsclip__gemm_avx512_unused;
#endif
