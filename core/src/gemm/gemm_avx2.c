/* AVX2 + FMA f32 micro-kernel (6 rows x 16 columns) and its A packing, for CPUs without AVX-512.
 * Compiled for the baseline ISA with per-function target attributes; gemm.c calls them only
 * after the CPU check. */
#include "gemm/gemm_internal.h"

#if defined(RSCLIP_GEMM_HAVE_X86)

#include "gemm/simd_avx2.h"

#include <string.h>

#define T_AVX2 RSCLIP_T_AVX2
#define MR GEMM_MR_AVX2
#define NR GEMM_NR_AVX2

static inline T_AVX2 void store_row16(float *c, __m256 v0, __m256 v1, int nr, int mode,
                                      const float *bias, int gelu) {
    const __m256i m0 = rsclip__mask8(nr), m1 = rsclip__mask8(nr - 8);
    const int full = nr >= NR;
    if (mode & GEMM_STORE_ADD_C) {
        v0 = _mm256_add_ps(v0, full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, m0));
        v1 = _mm256_add_ps(v1, full ? _mm256_loadu_ps(c + 8) : _mm256_maskload_ps(c + 8, m1));
    }
    if (mode & GEMM_STORE_LAST) {
        if (bias) {
            v0 = _mm256_add_ps(v0, full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0));
            v1 = _mm256_add_ps(v1,
                               full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1));
        }
        if (gelu) {
            v0 = rsclip__gelu8(v0);
            v1 = rsclip__gelu8(v1);
        }
    }
    if (full) {
        _mm256_storeu_ps(c, v0);
        _mm256_storeu_ps(c + 8, v1);
    } else {
        _mm256_maskstore_ps(c, m0, v0);
        _mm256_maskstore_ps(c + 8, m1, v1);
    }
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define DECL(r) __m256 c##r##_0 = _mm256_setzero_ps(), c##r##_1 = _mm256_setzero_ps();
#define STEP(r)                                                                                    \
    {                                                                                              \
        const __m256 av = _mm256_broadcast_ss(af + r);                                             \
        c##r##_0 = _mm256_fmadd_ps(av, w0, c##r##_0);                                              \
        c##r##_1 = _mm256_fmadd_ps(av, w1, c##r##_1);                                              \
    }
#define STORE(r)                                                                                   \
    if (r < mr) store_row16(c + (size_t)r * ldc, c##r##_0, c##r##_1, nr, mode, bias, gelu);

T_AVX2 void rsclip__gemm_kernel_f32_avx2(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                         size_t ldc, int mr, int nr, int mode, const float *bias,
                                         int gelu) {
    ROWS(DECL)
    const float *af = (const float *)a, *wf = (const float *)w;
    for (size_t s = 0; s < ks; s++) {
        const __m256 w0 = _mm256_load_ps(wf), w1 = _mm256_load_ps(wf + 8);
        ROWS(STEP)
        af += MR;
        wf += NR;
    }
    ROWS(STORE)
}

/* In-register transpose of 8 vectors of 8 lanes: r[i][j] -> r[j][i]. */
static inline T_AVX2 void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* A panels of MR rows, step-major: 8 k at a time through an 8 x 8 transpose (rows past `rows` and
 * k past k_total read as 0); each step's MR floats are written by a masked store. */
T_AVX2 void rsclip__gemm_pack_a_f32_avx2(const float *a, size_t lda, size_t rows, size_t s0,
                                         size_t ks, size_t k_total, uint32_t *dst) {
    const size_t kend = s0 + ks < k_total ? s0 + ks : k_total;
    const __m256i mr_lanes = rsclip__mask8(MR);
    for (size_t p = 0; p * MR < rows; p++) {
        float *pd = (float *)(dst + p * ks * MR);
        const size_t nrows = rows - p * MR < MR ? rows - p * MR : MR;
        const float *ap = a + p * MR * lda;
        for (size_t s = 0; s < ks; s += 8) {
            const size_t k0 = s0 + s;
            const __m256i m = rsclip__mask8(kend > k0 ? (long)(kend - k0) : 0);
            __m256 r[8];
            for (size_t i = 0; i < 8; i++)
                r[i] = i < nrows && kend > k0 ? _mm256_maskload_ps(ap + i * lda + k0, m)
                                              : _mm256_setzero_ps();
            transpose8(r);
            const size_t n = ks - s < 8 ? ks - s : 8;
            for (size_t i = 0; i < n; i++) _mm256_maskstore_ps(pd + (s + i) * MR, mr_lanes, r[i]);
        }
    }
}

#else
typedef int rsclip__gemm_avx2_unused;
#endif
