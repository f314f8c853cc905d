/* int8 dot-product kernels of the scan: a naive scalar reference and AVX2 / AVX-512 VNNI versions
 * compiled with target attributes and picked at run time. All return exact integer dots, so the
 * scan ranks identically whichever kernel runs (tests/search checks it). */
#include "search/search_internal.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RSCLIP_X86 1
#include <immintrin.h>
#endif

static inline const uint8_t *row_ptr(const uint8_t *codes, size_t stride, const uint32_t *rows,
                                     size_t first, size_t i) {
    return codes + (rows ? (size_t)rows[i] : first + i) * stride;
}

/* Reference: sum_t (byte_t - 128) * q_t, plain C. */
static void dot_scalar(const uint8_t *codes, size_t stride, const uint32_t *rows, size_t first,
                       size_t n, const int8_t *qc, int nq, const int32_t *qsum, int32_t *out) {
    (void)qsum;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = row_ptr(codes, stride, rows, first, i);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * stride;
            int32_t s = 0;
            for (size_t t = 0; t < stride; t++) s += ((int32_t)c[t] - 128) * (int32_t)q[t];
            out[i * (size_t)nq + (size_t)j] = s;
        }
    }
}

/* Reference for the int4 codes: low nibbles are dims 128 b + j, high nibbles 128 b + 64 + j. */
static void dot4_scalar(const uint8_t *codes, size_t stride, const uint32_t *rows, size_t first,
                        size_t n, const int8_t *qc, int nq, const int32_t *qsum, int32_t *out) {
    (void)qsum;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = row_ptr(codes, stride, rows, first, i);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * 2 * stride;
            int32_t s = 0;
            for (size_t b = 0; b < stride; b += 64)
                for (size_t t = 0; t < 64; t++) {
                    int32_t lo = (int32_t)(c[b + t] & 15) - 8, hi = (int32_t)(c[b + t] >> 4) - 8;
                    s += lo * q[2 * b + t] + hi * q[2 * b + 64 + t];
                }
            out[i * (size_t)nq + (size_t)j] = s;
        }
    }
}

#ifdef RSCLIP_X86

/* AVX2: c = byte ^ 0x80 (signed code); maddubs(|c|, sign(q, c)) multiplies u8 by s8 without
 * saturation because |c| <= 128 and |q| <= 127 (pairs stay below 32767). */
__attribute__((target("avx2"))) static inline __m256i dot32_avx2(__m256i acc, __m256i bytes,
                                                                 __m256i q) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c = _mm256_xor_si256(bytes, flip);
    __m256i a = _mm256_abs_epi8(c);
    __m256i b = _mm256_sign_epi8(q, c);
    __m256i p16 = _mm256_maddubs_epi16(a, b);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
}

__attribute__((target("avx2"))) static inline int32_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) static void dot_avx2(const uint8_t *codes, size_t stride,
                                                     const uint32_t *rows, size_t first, size_t n,
                                                     const int8_t *qc, int nq, const int32_t *qsum,
                                                     int32_t *out) {
    (void)qsum;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *c0 = row_ptr(codes, stride, rows, first, i);
        const uint8_t *c1 = row_ptr(codes, stride, rows, first, i + 1);
        const uint8_t *c2 = row_ptr(codes, stride, rows, first, i + 2);
        const uint8_t *c3 = row_ptr(codes, stride, rows, first, i + 3);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * stride;
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t t = 0; t < stride; t += 32) {
                __m256i qv = _mm256_load_si256((const __m256i *)(q + t));
                a0 = dot32_avx2(a0, _mm256_load_si256((const __m256i *)(c0 + t)), qv);
                a1 = dot32_avx2(a1, _mm256_load_si256((const __m256i *)(c1 + t)), qv);
                a2 = dot32_avx2(a2, _mm256_load_si256((const __m256i *)(c2 + t)), qv);
                a3 = dot32_avx2(a3, _mm256_load_si256((const __m256i *)(c3 + t)), qv);
            }
            out[(i + 0) * (size_t)nq + (size_t)j] = hsum256(a0);
            out[(i + 1) * (size_t)nq + (size_t)j] = hsum256(a1);
            out[(i + 2) * (size_t)nq + (size_t)j] = hsum256(a2);
            out[(i + 3) * (size_t)nq + (size_t)j] = hsum256(a3);
        }
    }
    for (; i < n; i++) {
        const uint8_t *c0 = row_ptr(codes, stride, rows, first, i);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * stride;
            __m256i a0 = _mm256_setzero_si256();
            for (size_t t = 0; t < stride; t += 32)
                a0 = dot32_avx2(a0, _mm256_load_si256((const __m256i *)(c0 + t)),
                                _mm256_load_si256((const __m256i *)(q + t)));
            out[i * (size_t)nq + (size_t)j] = hsum256(a0);
        }
    }
}

/* AVX2 on int4 codes: the nibbles minus 8 are signed codes in [-8, 7], then as dot32_avx2. */
__attribute__((target("avx2"))) static inline __m256i dot32s_avx2(__m256i acc, __m256i c,
                                                                  __m256i q) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(c), _mm256_sign_epi8(q, c));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
}

__attribute__((target("avx2"))) static void dot4_avx2(const uint8_t *codes, size_t stride,
                                                      const uint32_t *rows, size_t first, size_t n,
                                                      const int8_t *qc, int nq, const int32_t *qsum,
                                                      int32_t *out) {
    (void)qsum;
    const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = row_ptr(codes, stride, rows, first, i);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * 2 * stride;
            __m256i acc = _mm256_setzero_si256();
            for (size_t b = 0; b < stride; b += 64)
                for (size_t h = 0; h < 64; h += 32) {
                    __m256i x = _mm256_load_si256((const __m256i *)(c + b + h));
                    __m256i lo = _mm256_sub_epi8(_mm256_and_si256(x, m4), eight);
                    __m256i hi =
                        _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(x, 4), m4), eight);
                    acc = dot32s_avx2(acc, lo, _mm256_load_si256((const __m256i *)(q + 2 * b + h)));
                    acc = dot32s_avx2(acc, hi,
                                      _mm256_load_si256((const __m256i *)(q + 2 * b + 64 + h)));
                }
            out[i * (size_t)nq + (size_t)j] = hsum256(acc);
        }
    }
}

/* AVX-512 VNNI: vpdpbusd multiplies the unsigned stored bytes (c + 128) by the signed query codes
 * and accumulates 4 products per 32-bit lane without saturation; subtract 128 * sum(q) after. */
#define RSCLIP_VNNI_TARGET "avx512f,avx512bw,avx512vnni"

__attribute__((target(RSCLIP_VNNI_TARGET))) static void
dot_vnni(const uint8_t *codes, size_t stride, const uint32_t *rows, size_t first, size_t n,
         const int8_t *qc, int nq, const int32_t *qsum, int32_t *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *c0 = row_ptr(codes, stride, rows, first, i);
        const uint8_t *c1 = row_ptr(codes, stride, rows, first, i + 1);
        const uint8_t *c2 = row_ptr(codes, stride, rows, first, i + 2);
        const uint8_t *c3 = row_ptr(codes, stride, rows, first, i + 3);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * stride;
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t t = 0; t < stride; t += 64) {
                __m512i qv = _mm512_load_si512((const void *)(q + t));
                a0 = _mm512_dpbusd_epi32(a0, _mm512_load_si512((const void *)(c0 + t)), qv);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_load_si512((const void *)(c1 + t)), qv);
                a2 = _mm512_dpbusd_epi32(a2, _mm512_load_si512((const void *)(c2 + t)), qv);
                a3 = _mm512_dpbusd_epi32(a3, _mm512_load_si512((const void *)(c3 + t)), qv);
            }
            int32_t bias = 128 * qsum[j];
            out[(i + 0) * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a0) - bias;
            out[(i + 1) * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a1) - bias;
            out[(i + 2) * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a2) - bias;
            out[(i + 3) * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a3) - bias;
        }
    }
    for (; i < n; i++) {
        const uint8_t *c0 = row_ptr(codes, stride, rows, first, i);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * stride;
            __m512i a0 = _mm512_setzero_si512();
            for (size_t t = 0; t < stride; t += 64)
                a0 = _mm512_dpbusd_epi32(a0, _mm512_load_si512((const void *)(c0 + t)),
                                         _mm512_load_si512((const void *)(q + t)));
            out[i * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a0) - 128 * qsum[j];
        }
    }
}

/* AVX-512 VNNI on int4 codes: the unsigned nibbles (c + 8) times the query; subtract 8 sum(q). */
__attribute__((target(RSCLIP_VNNI_TARGET))) static void
dot4_vnni(const uint8_t *codes, size_t stride, const uint32_t *rows, size_t first, size_t n,
          const int8_t *qc, int nq, const int32_t *qsum, int32_t *out) {
    const __m512i m4 = _mm512_set1_epi8(15);
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const uint8_t *c0 = row_ptr(codes, stride, rows, first, i);
        const uint8_t *c1 = row_ptr(codes, stride, rows, first, i + 1);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * 2 * stride;
            __m512i a0 = _mm512_setzero_si512(), a1 = a0;
            for (size_t b = 0; b < stride; b += 64) {
                __m512i qlo = _mm512_load_si512((const void *)(q + 2 * b));
                __m512i qhi = _mm512_load_si512((const void *)(q + 2 * b + 64));
                __m512i x0 = _mm512_load_si512((const void *)(c0 + b));
                __m512i x1 = _mm512_load_si512((const void *)(c1 + b));
                a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(x0, m4), qlo);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(x1, m4), qlo);
                a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(_mm512_srli_epi16(x0, 4), m4), qhi);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(_mm512_srli_epi16(x1, 4), m4), qhi);
            }
            out[i * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a0) - 8 * qsum[j];
            out[(i + 1) * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a1) - 8 * qsum[j];
        }
    }
    for (; i < n; i++) {
        const uint8_t *c0 = row_ptr(codes, stride, rows, first, i);
        for (int j = 0; j < nq; j++) {
            const int8_t *q = qc + (size_t)j * 2 * stride;
            __m512i a0 = _mm512_setzero_si512();
            for (size_t b = 0; b < stride; b += 64) {
                __m512i x0 = _mm512_load_si512((const void *)(c0 + b));
                a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(x0, m4),
                                         _mm512_load_si512((const void *)(q + 2 * b)));
                a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(_mm512_srli_epi16(x0, 4), m4),
                                         _mm512_load_si512((const void *)(q + 2 * b + 64)));
            }
            out[i * (size_t)nq + (size_t)j] = _mm512_reduce_add_epi32(a0) - 8 * qsum[j];
        }
    }
}

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static int cpu_has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

#endif /* RSCLIP_X86 */

rsclip__dot_kernel rsclip__search_kernel(int kernel) {
    if (kernel == RSCLIP_KERNEL_AUTO) kernel = rsclip__search_best_kernel();
    switch (kernel) {
    case RSCLIP_KERNEL_SCALAR:
        return dot_scalar;
#ifdef RSCLIP_X86
    case RSCLIP_KERNEL_AVX2:
        return cpu_has_avx2() ? dot_avx2 : NULL;
    case RSCLIP_KERNEL_AVX512VNNI:
        return cpu_has_vnni() ? dot_vnni : NULL;
#endif
    default:
        return NULL;
    }
}

rsclip__dot_kernel rsclip__search_kernel4(int kernel) {
    if (kernel == RSCLIP_KERNEL_AUTO) kernel = rsclip__search_best_kernel();
    switch (kernel) {
    case RSCLIP_KERNEL_SCALAR:
        return dot4_scalar;
#ifdef RSCLIP_X86
    case RSCLIP_KERNEL_AVX2:
        return cpu_has_avx2() ? dot4_avx2 : NULL;
    case RSCLIP_KERNEL_AVX512VNNI:
        return cpu_has_vnni() ? dot4_vnni : NULL;
#endif
    default:
        return NULL;
    }
}

int rsclip__search_best_kernel(void) {
#ifdef RSCLIP_X86
    if (cpu_has_vnni()) return RSCLIP_KERNEL_AVX512VNNI;
    if (cpu_has_avx2()) return RSCLIP_KERNEL_AVX2;
#endif
    return RSCLIP_KERNEL_SCALAR;
}
