/*
 * The encoder's non-GEMM kernels on the hot path: self-attention of one (item, head), softmax and
 * layer norm rows. Each has an AVX-512F version (per-function target attribute, chosen at run time
 * by the ISA ceiling, gemm/isa.h), the row kernels an AVX2 one too, and all a portable C version
 * of the same algorithm; they agree to float rounding.
 *
 * Attention for one head, q, k, v: [T, hd] (row stride ld), no mask:
 *     o = softmax(q k^T * scale) v
 * runs in blocks of AT_MR query rows, so the scores never leave L1: K is transposed once per
 * head into kT [hd, Tp] (Tp = T rounded up to 16, zero columns beyond T), then for each block
 *     s[r, :] = q[r, :] kT            (AT_MR x Tp, register tile AT_MR x 64 columns)
 *     s[r, :] = exp(s * scale - max)  (row max and sum over the T real columns)
 *     o[r, :] = (s[r, :] v) / sum     (register tile AT_MR x 64 head columns)
 * which is softmax-then-matmul with the 1/sum moved after the product. That is the f32 kernel of
 * the AVX-512 and portable paths. The other paths (AVX2, bf16 on AVX512_BF16 or AMX) run the two
 * products through the GEMM kernels instead (rsclip__attention_head_gemm): K and V packed as
 * weight panels, S = Q K^T, softmax rows, O = P V.
 */
#include "model/model_internal.h"

#include "gemm/gemm.h"
#include "gemm/isa.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define AT_HAVE_X86 1
#include "gemm/simd_avx2.h"
#include "gemm/simd_avx512.h"

#include <immintrin.h>
#endif

static int use_avx512(void) {
    return rsclip__isa_ceiling() >= RSCLIP__ISA_AVX512;
}
static int use_avx2(void) {
    return rsclip__isa_ceiling() >= RSCLIP__ISA_AVX2;
}

#define AT_MR 6 /* query rows per block: 6 x 4 accumulators + 4 operands fit 32 registers */

static size_t pad16(int n) {
    return ((size_t)n + 15) & ~(size_t)15;
}

size_t rsclip__attention_scratch_floats(int T, int hd) {
    /* kT [hd, Tp] + V packed [T, pad16(hd)] + scores [AT_MR, Tp] + 1/sum [AT_MR] (padded) */
    return (size_t)hd * pad16(T) + (size_t)T * pad16(hd) + (size_t)AT_MR * pad16(T) + 16;
}

/* kT[d * tp + j] = k[j * ld + d] for j < T, 0 for T <= j < tp. */
static void transpose_k(const float *k, size_t ld, int T, int hd, size_t tp, float *kT) {
    for (int d = 0; d < hd; d++) memset(kT + (size_t)d * tp + T, 0, sizeof(float) * (tp - T));
    for (int j = 0; j < T; j++) {
        const float *kr = k + (size_t)j * ld;
        for (int d = 0; d < hd; d++) kT[(size_t)d * tp + j] = kr[d];
    }
}

/* ---------------------------------------------------------------------------------------------
 * Portable C */

static void attention_block_c(const float *q, size_t ld, int mr, const float *kT, size_t tp,
                              const float *v, int T, int hd, float scale, float *s, float *inv,
                              float *o, size_t ldo) {
    for (int r = 0; r < mr; r++) {
        float *sr = s + (size_t)r * tp;
        const float *qr = q + (size_t)r * ld;
        for (size_t j = 0; j < tp; j++) sr[j] = 0.0f;
        for (int d = 0; d < hd; d++) {
            const float qd = qr[d];
            const float *kd = kT + (size_t)d * tp;
            for (size_t j = 0; j < tp; j++) sr[j] += qd * kd[j];
        }
        float mx = sr[0] * scale;
        for (int j = 1; j < T; j++) mx = sr[j] * scale > mx ? sr[j] * scale : mx;
        float sum = 0.0f;
        for (int j = 0; j < T; j++) {
            sr[j] = expf(sr[j] * scale - mx);
            sum += sr[j];
        }
        inv[r] = 1.0f / sum;
    }
    for (int r = 0; r < mr; r++) {
        float *orow = o + (size_t)r * ldo;
        const float *sr = s + (size_t)r * tp;
        for (int d = 0; d < hd; d++) orow[d] = 0.0f;
        for (int j = 0; j < T; j++) {
            const float p = sr[j];
            const float *vr = v + (size_t)j * ld;
            for (int d = 0; d < hd; d++) orow[d] += p * vr[d];
        }
        for (int d = 0; d < hd; d++) orow[d] *= inv[r];
    }
}

static void layernorm_row_c(float *y, const float *x, const float *w, const float *b, int d,
                            float eps) {
    float ps[16] = {0}, pv[16] = {0};
    int i = 0;
    for (; i + 16 <= d; i += 16)
        for (int j = 0; j < 16; j++) ps[j] += x[i + j];
    float sum = 0.0f;
    for (; i < d; i++) sum += x[i];
    for (int j = 0; j < 16; j++) sum += ps[j];
    const float mean = sum / (float)d;
    for (i = 0; i + 16 <= d; i += 16)
        for (int j = 0; j < 16; j++) {
            const float t = x[i + j] - mean;
            pv[j] += t * t;
        }
    float var = 0.0f;
    for (; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    for (int j = 0; j < 16; j++) var += pv[j];
    const float rstd = 1.0f / sqrtf(var / (float)d + eps); /* biased variance, as torch */
    for (i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

/* ---------------------------------------------------------------------------------------------
 * AVX-512F */

#if defined(AT_HAVE_X86)
#define T_F RSCLIP_T_AVX512F
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

/* s[r, c0 .. c0 + 16 nv) = q_r . kT[:, c0 ..] for the AVX-512 block: rows r < AT_MR read
 * q + min(r, mr - 1) * ld (rows past mr compute a duplicate that is never stored). */
INLINE T_F void qk_tile(const float *const *qr, const float *kT, size_t tp, int hd, float *s,
                        int mr, size_t c0, int nv) {
    __m512 acc[AT_MR][4];
    UNROLL for (int r = 0; r < AT_MR; r++) UNROLL for (int c = 0; c < 4; c++) acc[r][c] =
        _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const float *kd = kT + (size_t)d * tp + c0;
        __m512 kv[4];
        UNROLL for (int c = 0; c < nv; c++) kv[c] = _mm512_loadu_ps(kd + 16 * c);
        UNROLL for (int r = 0; r < AT_MR; r++) {
            const __m512 qv = _mm512_set1_ps(qr[r][d]);
            UNROLL for (int c = 0; c < nv; c++) acc[r][c] = _mm512_fmadd_ps(qv, kv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nv; c++) _mm512_storeu_ps(s + (size_t)r * tp + c0 + 16 * c, acc[r][c]);
}

/* o[r, c0 .. c0 + 16 nv) = inv[r] * sum_j s_r[j] vp[j, c0 ..] (vp: [T, ldv], zero-padded
 * columns); the stores of the last vector are masked by m. Rows r >= mr read sr[r] = the row
 * mr - 1 (computed, never stored). */
INLINE T_F void pv_tile(const float *const *sr, const float *inv, const float *vp, size_t ldv,
                        int T, float *o, size_t ldo, int mr, int c0, int nv, __mmask16 m) {
    __m512 acc[AT_MR][4];
    UNROLL for (int r = 0; r < AT_MR; r++) UNROLL for (int c = 0; c < 4; c++) acc[r][c] =
        _mm512_setzero_ps();
    for (int j = 0; j < T; j++) {
        const float *vr = vp + (size_t)j * ldv + c0;
        __m512 vv[4];
        UNROLL for (int c = 0; c < nv; c++) vv[c] = _mm512_loadu_ps(vr + 16 * c);
        UNROLL for (int r = 0; r < AT_MR; r++) {
            const __m512 p = _mm512_set1_ps(sr[r][j]);
            UNROLL for (int c = 0; c < nv; c++) acc[r][c] = _mm512_fmadd_ps(p, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < mr; r++) {
        const __m512 iv = _mm512_set1_ps(inv[r]);
        float *orow = o + (size_t)r * ldo + c0;
        UNROLL for (int c = 0; c < nv; c++) _mm512_mask_storeu_ps(
            orow + 16 * c, c == nv - 1 ? m : (__mmask16)0xFFFF, _mm512_mul_ps(acc[r][c], iv));
    }
}

static T_F void attention_block_avx512(const float *q, size_t ld, int mr, const float *kT,
                                       size_t tp, const float *vp, size_t ldv, int T, int hd,
                                       float scale, float *s, float *inv, float *o, size_t ldo) {
    const float *qr[AT_MR];
    for (int r = 0; r < AT_MR; r++) qr[r] = q + (size_t)(r < mr ? r : mr - 1) * ld;
    /* scores, 48 or 64 columns at a time: vector groups of 4, and of 3 where a lone 1- or
     * 2-vector tail would otherwise be left (a narrow tile is bound by its 6 broadcasts) */
    int nvec = (int)(tp / 16);
    int n3 = (4 - nvec % 4) % 4; /* groups of 3 that leave a multiple of 4 (13 = 3+3+3+4) */
    if (3 * n3 > nvec) n3 = 0;   /* short rows: greedy */
    size_t col = 0;
    while (nvec > 0) {
        const int g = n3 > 0 ? 3 : nvec >= 4 ? 4 : nvec;
        if (n3 > 0) n3--;
        switch (g) {
        case 4:
            qk_tile(qr, kT, tp, hd, s, mr, col, 4);
            break;
        case 3:
            qk_tile(qr, kT, tp, hd, s, mr, col, 3);
            break;
        case 2:
            qk_tile(qr, kT, tp, hd, s, mr, col, 2);
            break;
        default:
            qk_tile(qr, kT, tp, hd, s, mr, col, 1);
            break;
        }
        nvec -= g;
        col += (size_t)g * 16;
    }
    /* softmax numerators over the T real columns */
    const __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < mr; r++) {
        float *sr = s + (size_t)r * tp;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < T; j += 16) {
            const __mmask16 m = rsclip__mask16(T - j);
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_loadu_ps(sr + j), sc));
        }
        const __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 sum = _mm512_setzero_ps();
        for (int j = 0; j < T; j += 16) {
            const __mmask16 m = rsclip__mask16(T - j);
            const __m512 e = rsclip__exp16(_mm512_fmsub_ps(_mm512_loadu_ps(sr + j), sc, vmx));
            sum = _mm512_mask_add_ps(sum, m, sum, e);
            _mm512_mask_storeu_ps(sr + j, m, e);
        }
        inv[r] = 1.0f / _mm512_reduce_add_ps(sum);
    }
    const float *srow[AT_MR];
    for (int r = 0; r < AT_MR; r++) srow[r] = s + (size_t)(r < mr ? r : mr - 1) * tp;
    /* o = s v / sum, 64 head columns at a time */
    for (int c0 = 0; c0 < hd; c0 += 64) {
        const int cols = hd - c0 >= 64 ? 64 : hd - c0;
        const int nv = (cols + 15) / 16;
        const __mmask16 m = rsclip__mask16(cols - 16 * (nv - 1));
        switch (nv) {
        case 4:
            pv_tile(srow, inv, vp, ldv, T, o, ldo, mr, c0, 4, m);
            break;
        case 3:
            pv_tile(srow, inv, vp, ldv, T, o, ldo, mr, c0, 3, m);
            break;
        case 2:
            pv_tile(srow, inv, vp, ldv, T, o, ldo, mr, c0, 2, m);
            break;
        default:
            pv_tile(srow, inv, vp, ldv, T, o, ldo, mr, c0, 1, m);
            break;
        }
    }
}

static T_F void layernorm_row_avx512(float *y, const float *x, const float *w, const float *b,
                                     int d, float eps) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < d; i += 16)
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(rsclip__mask16(d - i), x + i));
    const float mean = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)d;
    const __m512 vm = _mm512_set1_ps(mean);
    s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= d; i += 32) {
        const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
        const __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        s1 = _mm512_fmadd_ps(t1, t1, s1);
    }
    for (; i < d; i += 16) {
        const __mmask16 m = rsclip__mask16(d - i);
        const __m512 t = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    const float var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)d;
    const __m512 rs = _mm512_set1_ps(1.0f / sqrtf(var + eps));
    for (i = 0; i < d; i += 16) {
        const __mmask16 m = rsclip__mask16(d - i);
        const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), rs);
        const __m512 r =
            _mm512_fmadd_ps(t, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* Softmax of x[0, n) * scale in place: exp(x scale - max) / sum. */
static T_F void softmax_row_avx512(float *x, int n, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = rsclip__mask16(n - j);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), sc));
    }
    const __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = rsclip__mask16(n - j);
        const __m512 e = rsclip__exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + j), sc, vmx));
        sum = _mm512_mask_add_ps(sum, m, sum, e);
        _mm512_mask_storeu_ps(x + j, m, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = rsclip__mask16(n - j);
        _mm512_mask_storeu_ps(x + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), inv));
    }
}

#define T_A2 RSCLIP_T_AVX2

static T_A2 void layernorm_row_avx2(float *y, const float *x, const float *w, const float *b, int d,
                                    float eps) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    }
    float tail = 0.0f;
    for (; i < d; i++) tail += x[i];
    const float mean = (rsclip__hsum8(_mm256_add_ps(s0, s1)) + tail) / (float)d;
    const __m256 vm = _mm256_set1_ps(mean);
    s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= d; i += 16) {
        const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        const __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    tail = 0.0f;
    for (; i < d; i++) tail += (x[i] - mean) * (x[i] - mean);
    const float var = (rsclip__hsum8(_mm256_add_ps(s0, s1)) + tail) / (float)d;
    const float rstd = 1.0f / sqrtf(var + eps);
    const __m256 rs = _mm256_set1_ps(rstd);
    for (i = 0; i + 8 <= d; i += 8) {
        const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), rs);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < d; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

static T_A2 void softmax_row_avx2(float *x, int n, float scale) {
    const __m256 sc = _mm256_set1_ps(scale);
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(mx, _mm256_mul_ps(_mm256_loadu_ps(x + j), sc));
    float m = rsclip__hmax8(mx);
    for (int t = j; t < n; t++) m = x[t] * scale > m ? x[t] * scale : m;
    const __m256 vmx = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256 e = rsclip__exp8(_mm256_fmsub_ps(_mm256_loadu_ps(x + j), sc, vmx));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(x + j, e);
    }
    float s = rsclip__hsum8(sum);
    for (int t = j; t < n; t++) s += (x[t] = expf(x[t] * scale - m));
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    for (j = 0; j + 8 <= n; j += 8)
        _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), inv));
    for (int t = j; t < n; t++) x[t] *= 1.0f / s;
}
#endif

/* ---------------------------------------------------------------------------------------------
 * Entry points */

void rsclip__attention_head(const float *q, const float *k, const float *v, size_t ld, float *o,
                            size_t ldo, int T, int hd, float scale, float *scratch) {
    const size_t tp = pad16(T), hdp = pad16(hd);
    float *kT = scratch, *vp = kT + (size_t)hd * tp, *s = vp + (size_t)T * hdp;
    float *inv = s + (size_t)AT_MR * tp;
    transpose_k(k, ld, T, hd, tp, kT);
#if defined(AT_HAVE_X86)
    if (use_avx512()) {
        /* V's rows of this head, contiguous and zero-padded to whole vectors: the P V loop then
         * streams one compact block instead of T rows D floats apart */
        for (int j = 0; j < T; j++) {
            memcpy(vp + (size_t)j * hdp, v + (size_t)j * ld, sizeof(float) * (size_t)hd);
            memset(vp + (size_t)j * hdp + hd, 0, sizeof(float) * (hdp - (size_t)hd));
        }
        for (int r0 = 0; r0 < T; r0 += AT_MR) {
            const int mr = T - r0 < AT_MR ? T - r0 : AT_MR;
            attention_block_avx512(q + (size_t)r0 * ld, ld, mr, kT, tp, vp, hdp, T, hd, scale, s,
                                   inv, o + (size_t)r0 * ldo, ldo);
        }
        return;
    }
#endif
    for (int r0 = 0; r0 < T; r0 += AT_MR) {
        const int mr = T - r0 < AT_MR ? T - r0 : AT_MR;
        attention_block_c(q + (size_t)r0 * ld, ld, mr, kT, tp, v, T, hd, scale, s, inv,
                          o + (size_t)r0 * ldo, ldo);
    }
}

void rsclip__layernorm(float *out, const float *x, const float *w, const float *b, int rows, int d,
                       float eps) {
#if defined(AT_HAVE_X86)
    if (use_avx512()) {
        for (int r = 0; r < rows; r++)
            layernorm_row_avx512(out + (size_t)r * d, x + (size_t)r * d, w, b, d, eps);
        return;
    }
    if (use_avx2()) {
        for (int r = 0; r < rows; r++)
            layernorm_row_avx2(out + (size_t)r * d, x + (size_t)r * d, w, b, d, eps);
        return;
    }
#endif
    for (int r = 0; r < rows; r++)
        layernorm_row_c(out + (size_t)r * d, x + (size_t)r * d, w, b, d, eps);
}

/* x[0, n) * scale -> softmax, in place. */
static void softmax_row(float *x, int n, float scale) {
#if defined(AT_HAVE_X86)
    if (use_avx512()) {
        softmax_row_avx512(x, n, scale);
        return;
    }
    if (use_avx2()) {
        softmax_row_avx2(x, n, scale);
        return;
    }
#endif
    float mx = x[0] * scale;
    for (int i = 1; i < n; i++) mx = x[i] * scale > mx ? x[i] * scale : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] * scale - mx);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void rsclip__softmax_rows(float *x, int rows, int n) {
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * n, n, 1.0f);
}

#if defined(AT_HAVE_X86)
static T_F void gelu_avx512(float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = rsclip__mask16((long)(n - i));
        _mm512_mask_storeu_ps(x + i, m, rsclip__gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
static T_A2 void gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, rsclip__gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i m = rsclip__mask8((long)(n - i));
        _mm256_maskstore_ps(x + i, m, rsclip__gelu8(_mm256_maskload_ps(x + i, m)));
    }
}
#endif

/* gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place. */
void rsclip__gelu_tanh(float *x, size_t n) {
#if defined(AT_HAVE_X86)
    if (use_avx512()) {
        gelu_avx512(x, n);
        return;
    }
    if (use_avx2()) {
        gelu_avx2(x, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Attention through the GEMM kernels: K as weight panels [T, hd], V^T as weight panels [hd, T]
 * (both in the format asked for: f32, or bf16 for the AVX512_BF16 and AMX paths), then
 *     S = Q K^T  [T, tp]   (rsclip__gemm_serial)
 *     P = softmax(S * scale) rows, normalised
 *     O = P V    [T, hd]   (rsclip__gemm_serial; P rounded to bf16 by the A packing for bf16)
 */
static size_t pack_floats(size_t n, size_t k, int format) {
    return (rsclip__pack_weights_bytes(n, k, (rsclip__gemm_format)format) + 63) / 64 * 16;
}

size_t rsclip__attention_gemm_scratch_floats(int T, int hd, int format) {
    const size_t tp = pad16(T);
    return pack_floats((size_t)T, (size_t)hd, format) + pack_floats((size_t)hd, (size_t)T, format) +
           (size_t)T * tp + 16;
}

void rsclip__attention_head_gemm(const float *q, const float *k, const float *v, size_t ld,
                                 float *o, size_t ldo, int T, int hd, float scale, int format,
                                 float *scratch, void *gemm_scratch) {
    const size_t tp = pad16(T);
    const rsclip__gemm_format f = (rsclip__gemm_format)format;
    float *kmem = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *vmem = kmem + pack_floats((size_t)T, (size_t)hd, format);
    float *s = vmem + pack_floats((size_t)hd, (size_t)T, format);
    rsclip__packed_w_storage ks, vs;
    const rsclip__packed_w *kw =
        rsclip__pack_weights_into(&ks, k, (size_t)T, (size_t)hd, ld, 0, f, kmem);
    const rsclip__packed_w *vw =
        rsclip__pack_weights_into(&vs, v, (size_t)hd, (size_t)T, ld, 1, f, vmem);
    if (!kw || !vw) return; /* only on bad shapes, which the encoder never passes */
    rsclip__gemm_serial(gemm_scratch, (size_t)T, q, ld, kw, s, tp, NULL, 0);
    for (int r = 0; r < T; r++) softmax_row(s + (size_t)r * tp, T, scale);
    rsclip__gemm_serial(gemm_scratch, (size_t)T, s, tp, vw, o, ldo, NULL, 0);
}
