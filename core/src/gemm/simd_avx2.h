/* AVX2 + FMA helpers shared by the AVX2 GEMM epilogue and the encoder's AVX2 kernels. Include only
 * in x86-64 GCC/Clang translation units; every function carries its own target attribute, so the
 * file is compiled for the baseline ISA and called only after the CPU check (gemm/isa.h). */
#ifndef RSCLIP_SIMD_AVX2_H
#define RSCLIP_SIMD_AVX2_H

#include <immintrin.h>

#define RSCLIP_T_AVX2 __attribute__((target("avx2,fma")))

/* exp(t) for t in [-87, 87] (clamped), as rsclip__exp16: 2^n p(r), the power of two built in the
 * exponent field (n stays in [-126, 126]). */
static inline RSCLIP_T_AVX2 __m256 rsclip__exp8(__m256 t) {
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.4426950408889634f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* GELU tanh form, as rsclip__gelu16. */
static inline RSCLIP_T_AVX2 __m256 rsclip__gelu8(__m256 x) {
    const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x);
    t = _mm256_mul_ps(t, _mm256_set1_ps(-1.5957691216057308f));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), rsclip__exp8(t)));
}

/* Lanes [0, n) set (as an integer mask vector for maskload / maskstore), n clamped to [0, 8]. */
static inline RSCLIP_T_AVX2 __m256i rsclip__mask8(long n) {
    const int k = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Horizontal sum / max of 8 lanes. */
static inline RSCLIP_T_AVX2 float rsclip__hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline RSCLIP_T_AVX2 float rsclip__hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
