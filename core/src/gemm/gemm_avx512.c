/* AVX-512 micro-kernels and A packing. Compiled for the baseline ISA with per-function target
 * attributes; gemm.c calls them only after the cpuid check. */
#include "gemm/gemm_internal.h"

#if defined(RSCLIP_GEMM_HAVE_X86)

#include "gemm/simd_avx512.h"

#include <immintrin.h>
#include <string.h>

_Static_assert(GEMM_STORE_ADD_C == 1 && GEMM_STORE_LAST == 2, "rsclip__store_row32 modes");

#define T_F __attribute__((target("avx512f")))
#define T_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

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
    if (r < mr)                                                                                    \
        rsclip__store_row32(c + (size_t)r * ldc, c##r##_0, c##r##_1, m0, m1, mode, bias, gelu);

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
    const __mmask16 m0 = rsclip__mask16(nr), m1 = rsclip__mask16(nr - 16);
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
    const __mmask16 m0 = rsclip__mask16(nr), m1 = rsclip__mask16(nr - 16);
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

/* r[i] = 16 units of row i of m (row stride ld) from column c0, for i < nrows; columns from cend
 * on and rows from nrows on read as 0. f32: a unit is one float; bf16: a unit is the RNE bf16 pair
 * (c, c + 1), the operand layout of vdpbf16ps, so 32 columns are read. The bf16 loader is called
 * only on CPUs with AVX512_BF16 (out of line from the AVX-512F drivers below). */
static inline T_F void load16_f32(__m512 r[16], const float *m, size_t ld, size_t nrows, size_t c0,
                                  size_t cend) {
    const __mmask16 msk = rsclip__mask16(cend > c0 ? (long)(cend - c0) : 0);
    for (size_t i = 0; i < 16; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_ps(msk, m + i * ld + c0) : _mm512_setzero_ps();
}

static T_BF16 void load16_bf16(__m512 r[16], const float *m, size_t ld, size_t nrows, size_t c0,
                               size_t cend) {
    const long left = cend > c0 ? (long)(cend - c0) : 0;
    const __mmask16 lo = rsclip__mask16(left), hi = rsclip__mask16(left - 16);
    for (size_t i = 0; i < 16; i++) {
        if (i >= nrows) {
            r[i] = _mm512_setzero_ps();
            continue;
        }
        const float *mr = m + i * ld + c0;
        /* cvtne2ps2bf16(b, a): low 16 bf16 from a, high 16 from b -> (k even, k odd) pairs */
        r[i] = (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, mr + 16),
                                           _mm512_maskz_loadu_ps(lo, mr));
    }
}

static inline T_F void load16(__m512 r[16], int bf16, const float *m, size_t ld, size_t nrows,
                              size_t c0, size_t cend) {
    if (bf16)
        load16_bf16(r, m, ld, nrows, c0, cend);
    else
        load16_f32(r, m, ld, nrows, c0, cend);
}

/* Pack A: for each MR-row panel, 16 k steps at a time: one vector of 16 units per row (rows past
 * `rows` and k past k_total read as 0), a 16 x 16 transpose, then one MR-wide masked store per
 * step. (A per-row scatter was 12% of an N = 768 GEMM.) */
static T_F void pack_a(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                       size_t k_total, int bf16, uint32_t *dst) {
    const size_t upk = bf16 ? 2 : 1; /* k columns per unit */
    const size_t kend = upk * (s0 + ks) < k_total ? upk * (s0 + ks) : k_total;
    const __mmask16 mr_lanes = (__mmask16)((1u << GEMM_MR) - 1);
    for (size_t p = 0; p * GEMM_MR < rows; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        const size_t nrows = rows - p * GEMM_MR < GEMM_MR ? rows - p * GEMM_MR : GEMM_MR;
        for (size_t s = 0; s < ks; s += 16) {
            __m512 r[16];
            load16(r, bf16, a + p * GEMM_MR * lda, lda, nrows, upk * (s0 + s), kend);
            transpose16(r);
            const size_t n = ks - s < 16 ? ks - s : 16;
            for (size_t i = 0; i < n; i++)
                _mm512_mask_storeu_ps(pd + (s + i) * GEMM_MR, mr_lanes, r[i]);
        }
    }
}

T_BF16 void rsclip__gemm_pack_a_bf16_avx512(const float *a, size_t lda, size_t rows, size_t s0,
                                            size_t ks, size_t k_total, uint32_t *dst) {
    pack_a(a, lda, rows, s0, ks, k_total, 1, dst);
}

T_F void rsclip__gemm_pack_a_f32_avx512(const float *a, size_t lda, size_t rows, size_t s0,
                                        size_t ks, size_t k_total, uint32_t *dst) {
    pack_a(a, lda, rows, s0, ks, k_total, 0, dst);
}

/* Weight panels (layout in gemm_internal.h) from W [n, k]: for each NR-wide panel and 16 steps,
 * lanes 0-15 then 16-31 through a 16 x 16 transpose each (rows past n and k past the end read as
 * 0); a last block of fewer than 16 steps goes through a scratch block. */
static T_F void pack_w(const float *w, size_t n, size_t k, size_t ldw, size_t steps, size_t panels,
                       int bf16, uint32_t *data) {
    const size_t upk = bf16 ? 2 : 1;
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * GEMM_NR;
        for (size_t s = 0; s < steps; s += 16) {
            uint32_t tmp[16 * GEMM_NR] __attribute__((aligned(64)));
            uint32_t *dst = steps - s >= 16 ? pd + s * GEMM_NR : tmp;
            for (size_t h = 0; h < GEMM_NR; h += 16) {
                const size_t row0 = j * GEMM_NR + h;
                const size_t nrows = n <= row0 ? 0 : n - row0 < 16 ? n - row0 : 16;
                __m512 r[16];
                load16(r, bf16, nrows ? w + row0 * ldw : w, ldw, nrows, upk * s, k);
                transpose16(r);
                for (size_t i = 0; i < 16; i++)
                    _mm512_store_ps((float *)(dst + i * GEMM_NR + h), r[i]);
            }
            if (dst == tmp) memcpy(pd + s * GEMM_NR, tmp, (steps - s) * GEMM_NR * 4);
        }
    }
}

T_BF16 void rsclip__gemm_pack_w_bf16_avx512(const float *w, size_t n, size_t k, size_t ldw,
                                            size_t steps, size_t panels, uint32_t *data) {
    pack_w(w, n, k, ldw, steps, panels, 1, data);
}

T_F void rsclip__gemm_pack_w_f32_avx512(const float *w, size_t n, size_t k, size_t ldw,
                                        size_t steps, size_t panels, uint32_t *data) {
    pack_w(w, n, k, ldw, steps, panels, 0, data);
}

/* One direct-W panel (f32, GEMM_NR lanes): rows [0, nrows) of w, k [k0, k0 + ks), as pack_w. */
T_F void rsclip__gemm_pack_wpanel_f32_avx512(const float *w, size_t ldw, size_t nrows, size_t k0,
                                             size_t ks, size_t k_total, uint32_t *dst) {
    const size_t kend = k0 + ks < k_total ? k0 + ks : k_total;
    for (size_t s = 0; s < ks; s += 16) {
        uint32_t tmp[16 * GEMM_NR] __attribute__((aligned(64)));
        uint32_t *d = ks - s >= 16 ? dst + s * GEMM_NR : tmp;
        for (size_t h = 0; h < GEMM_NR; h += 16) {
            const size_t nr = nrows <= h ? 0 : nrows - h < 16 ? nrows - h : 16;
            __m512 r[16];
            load16_f32(r, nr ? w + h * ldw : w, ldw, nr, k0 + s, kend);
            transpose16(r);
            for (size_t i = 0; i < 16; i++) _mm512_storeu_ps((float *)(d + i * GEMM_NR + h), r[i]);
        }
        if (d == tmp) memcpy(dst + s * GEMM_NR, tmp, (ks - s) * GEMM_NR * 4);
    }
}

/* bf16 panels of W = wt^T from wt [k, n] (row stride ldt): unit (step s, lane l) of panel j is the
 * RNE bf16 pair (wt[2s][j*NR + l], wt[2s + 1][j*NR + l]); rows past k and columns past n read as 0.
 * Two rows are converted at once and interleaved word by word. */
T_BF16 void rsclip__gemm_pack_wt_bf16_avx512(const float *wt, size_t n, size_t k, size_t ldt,
                                             size_t steps, size_t panels, uint32_t *data) {
    const __m512i inter =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * GEMM_NR;
        for (size_t h = 0; h < GEMM_NR; h += 16) {
            const size_t c0 = j * GEMM_NR + h;
            const __mmask16 m = rsclip__mask16(c0 < n ? (long)(n - c0) : 0);
            for (size_t s = 0; s < steps; s++) {
                const size_t k0 = 2 * s;
                const __m512 x0 = k0 < k ? _mm512_maskz_loadu_ps(m, wt + k0 * ldt + (m ? c0 : 0))
                                         : _mm512_setzero_ps();
                const __m512 x1 = k0 + 1 < k
                                      ? _mm512_maskz_loadu_ps(m, wt + (k0 + 1) * ldt + (m ? c0 : 0))
                                      : _mm512_setzero_ps();
                const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
                _mm512_store_si512((void *)(pd + s * GEMM_NR + h),
                                   _mm512_permutexvar_epi16(inter, v));
            }
        }
    }
}

/* A for the AMX kernel: panels of GEMM_MR_AMX rows; in a panel, for each tile of 16 steps, the 32
 * rows one after the other, 16 units (64 bytes: one tile row) each -- so each 16-row half of a
 * k tile is one contiguous 1 KiB A tile. ks must be a multiple of 16 (the driver aligns it). */
T_BF16 void rsclip__gemm_pack_a_amx(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                    size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + GEMM_MR_AMX - 1) / GEMM_MR_AMX;
    for (size_t p = 0; p < panels; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR_AMX;
        for (size_t r = 0; r < GEMM_MR_AMX; r++) {
            const size_t row = p * GEMM_MR_AMX + r;
            const float *ar = a + (row < rows ? row : 0) * lda;
            for (size_t t = 0; t * GEMM_AMX_KT < ks; t++) {
                const size_t c0 = 2 * (s0 + t * GEMM_AMX_KT); /* first k of the tile */
                const long left = row < rows && c0 < k_total ? (long)(k_total - c0) : 0;
                const __mmask16 lo = rsclip__mask16(left), hi = rsclip__mask16(left - 16);
                const __m512 x0 = _mm512_maskz_loadu_ps(lo, lo ? ar + c0 : ar);
                const __m512 x1 = _mm512_maskz_loadu_ps(hi, hi ? ar + c0 + 16 : ar);
                _mm512_store_si512((void *)(pd + (t * GEMM_MR_AMX + r) * GEMM_AMX_KT),
                                   (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
            }
        }
    }
}

#else
/* Keep the translation unit non-empty on other architectures. */
typedef int rsclip__gemm_avx512_unused;
#endif
