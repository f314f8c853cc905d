/* AVX-512F helpers shared by the GEMM epilogue and the encoder's vector kernels. Include only in
 * x86-64 GCC/Clang translation units; every function carries its own target attribute, so the
 * file is compiled for the baseline ISA and called only after a cpuid check. */
#ifndef RSCLIP_SIMD_AVX512_H
#define RSCLIP_SIMD_AVX512_H

#include <immintrin.h>

#define RSCLIP_T_AVX512F __attribute__((target("avx512f")))

/* exp(t) for t in [-87, 87] (clamped): 2^n * p(r), n = round(t / ln2), r = t - n ln2 (ln2 split in
 * two for an exact product), p the degree-6 Taylor polynomial; relative error ~2e-7 over the
 * range. */
static inline RSCLIP_T_AVX512F __m512 rsclip__exp16(__m512 t) {
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.4426950408889634f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* GELU tanh form: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
static inline RSCLIP_T_AVX512F __m512 rsclip__gelu16(__m512 x) {
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 t = _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x);
    t = _mm512_mul_ps(t, _mm512_set1_ps(-1.5957691216057308f)); /* -2 sqrt(2/pi) */
    const __m512 e = rsclip__exp16(t);
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* The GEMM epilogue of one row of 32 columns (lanes masked by m0, m1): add the C in memory
 * (mode & 1: accumulation / residual), then on the last k block (mode & 2) the bias and GELU. */
static inline RSCLIP_T_AVX512F void rsclip__store_row32(float *c, __m512 v0, __m512 v1,
                                                        __mmask16 m0, __mmask16 m1, int mode,
                                                        const float *bias, int gelu) {
    if (mode & 1) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
    }
    if (mode & 2) {
        if (bias) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, bias));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, bias + 16));
        }
        if (gelu) {
            v0 = rsclip__gelu16(v0);
            v1 = rsclip__gelu16(v1);
        }
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
}

/* Lanes [0, n) set, n clamped to [0, 16]. */
static inline __mmask16 rsclip__mask16(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

#endif
