/* Portable GEMM kernels and packers: any CPU, and the reference for the vector paths. The f32
 * kernels and packers exist for the two panel widths (32 lanes: AVX-512 / scalar layout, 16 lanes:
 * the AVX2 layout); a bf16 unit is the pair (k even, k odd). */
#include "gemm/gemm_internal.h"

#include <math.h>
#include <string.h>

static uint32_t bf16_pair(float lo, float hi) {
    return (uint32_t)rsclip__f32_to_bf16(lo) | (uint32_t)rsclip__f32_to_bf16(hi) << 16;
}

static float gelu_tanh(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

void rsclip__gemm_store_tile(const float *acc, int ld, float *c, size_t ldc, int mr, int nr,
                             int mode, const float *bias, int gelu) {
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < nr; j++) {
            float v = acc[r * ld + j];
            if (mode & GEMM_STORE_ADD_C) v += cr[j];
            if (mode & GEMM_STORE_LAST) {
                if (bias) v += bias[j];
                if (gelu) v = gelu_tanh(v);
            }
            cr[j] = v;
        }
    }
}

void rsclip__gemm_kernel_bf16_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                size_t ldc, int mr, int nr, int mode, const float *bias, int gelu) {
    float acc[GEMM_MR][GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (size_t s = 0; s < ks; s++) {
        float wlo[GEMM_NR], whi[GEMM_NR];
        for (int j = 0; j < GEMM_NR; j++) {
            wlo[j] = rsclip__bf16_to_f32((unsigned short)(w[j] & 0xFFFFu));
            whi[j] = rsclip__bf16_to_f32((unsigned short)(w[j] >> 16));
        }
        for (int r = 0; r < mr; r++) {
            const float alo = rsclip__bf16_to_f32((unsigned short)(a[r] & 0xFFFFu));
            const float ahi = rsclip__bf16_to_f32((unsigned short)(a[r] >> 16));
            /* bf16 x bf16 products are exact in f32; summed like vdpbf16ps (even, then odd) */
            for (int j = 0; j < GEMM_NR; j++) {
                acc[r][j] += alo * wlo[j];
                acc[r][j] += ahi * whi[j];
            }
        }
        a += GEMM_MR;
        w += GEMM_NR;
    }
    rsclip__gemm_store_tile(&acc[0][0], GEMM_NR, c, ldc, mr, nr, mode, bias, gelu);
}

/* f32 kernel for panels nrl lanes wide and A panels mrl rows high. */
static inline void kernel_f32(int mrl, int nrl, size_t ks, const uint32_t *a, const uint32_t *w,
                              float *c, size_t ldc, int mr, int nr, int mode, const float *bias,
                              int gelu) {
    float acc[GEMM_MR * GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (size_t s = 0; s < ks; s++) {
        const float *af = (const float *)a, *wf = (const float *)w;
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nrl; j++) acc[r * nrl + j] += af[r] * wf[j];
        a += mrl;
        w += nrl;
    }
    rsclip__gemm_store_tile(acc, nrl, c, ldc, mr, nr, mode, bias, gelu);
}

void rsclip__gemm_kernel_f32_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                               size_t ldc, int mr, int nr, int mode, const float *bias, int gelu) {
    kernel_f32(GEMM_MR, GEMM_NR, ks, a, w, c, ldc, mr, nr, mode, bias, gelu);
}

void rsclip__gemm_kernel_f32_c16(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                 size_t ldc, int mr, int nr, int mode, const float *bias,
                                 int gelu) {
    kernel_f32(GEMM_MR_AVX2, GEMM_NR_AVX2, ks, a, w, c, ldc, mr, nr, mode, bias, gelu);
}

void rsclip__gemm_pack_a_bf16_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
    for (size_t p = 0; p < panels; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        for (size_t r = 0; r < GEMM_MR; r++) {
            const size_t row = p * GEMM_MR + r;
            for (size_t s = 0; s < ks; s++) {
                const size_t k0 = 2 * (s0 + s);
                uint32_t u = 0;
                if (row < rows) {
                    const float *ar = a + row * lda;
                    if (k0 < k_total) u = rsclip__f32_to_bf16(ar[k0]);
                    if (k0 + 1 < k_total) u |= (uint32_t)rsclip__f32_to_bf16(ar[k0 + 1]) << 16;
                }
                pd[s * GEMM_MR + r] = u;
            }
        }
    }
}

static inline void pack_a_f32(size_t mrl, const float *a, size_t lda, size_t rows, size_t s0,
                              size_t ks, size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + mrl - 1) / mrl;
    for (size_t p = 0; p < panels; p++) {
        float *pd = (float *)(dst + p * ks * mrl);
        for (size_t r = 0; r < mrl; r++) {
            const size_t row = p * mrl + r;
            const float *ar = a + row * lda;
            for (size_t s = 0; s < ks; s++) {
                const size_t k = s0 + s;
                pd[s * mrl + r] = row < rows && k < k_total ? ar[k] : 0.0f;
            }
        }
    }
}

void rsclip__gemm_pack_a_f32_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                               size_t k_total, uint32_t *dst) {
    pack_a_f32(GEMM_MR, a, lda, rows, s0, ks, k_total, dst);
}

void rsclip__gemm_pack_a_f32_c6(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                size_t k_total, uint32_t *dst) {
    pack_a_f32(GEMM_MR_AVX2, a, lda, rows, s0, ks, k_total, dst);
}

static inline void pack_wpanel_f32(size_t nrl, const float *w, size_t ldw, size_t nrows, size_t k0,
                                   size_t ks, size_t k_total, uint32_t *dst) {
    float *d = (float *)dst;
    const size_t kend = k0 + ks < k_total ? k0 + ks : k_total;
    const size_t kv = kend > k0 ? kend - k0 : 0;
    for (size_t l = 0; l < nrl; l++) {
        const float *wr = w + l * ldw + k0;
        if (l >= nrows) {
            for (size_t s = 0; s < ks; s++) d[s * nrl + l] = 0.0f;
            continue;
        }
        for (size_t s = 0; s < kv; s++) d[s * nrl + l] = wr[s];
        for (size_t s = kv; s < ks; s++) d[s * nrl + l] = 0.0f;
    }
}

void rsclip__gemm_pack_wpanel_f32_c(const float *w, size_t ldw, size_t nrows, size_t k0, size_t ks,
                                    size_t k_total, uint32_t *dst) {
    pack_wpanel_f32(GEMM_NR, w, ldw, nrows, k0, ks, k_total, dst);
}

void rsclip__gemm_pack_wpanel_f32_c16(const float *w, size_t ldw, size_t nrows, size_t k0,
                                      size_t ks, size_t k_total, uint32_t *dst) {
    pack_wpanel_f32(GEMM_NR_AVX2, w, ldw, nrows, k0, ks, k_total, dst);
}

/* Panel j, lane l = row j * nr + l of W; step s holds k = s (F32) or the pair (2s, 2s + 1) (BF16);
 * steps beyond the data (padding) are zero. Row by row: contiguous reads, nr-strided writes. */
void rsclip__gemm_pack_w_c(const float *w, size_t n, size_t k, size_t ldw, int format, int nr,
                           size_t steps, size_t panels, uint32_t *data) {
    const size_t lanes = (size_t)nr;
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * lanes;
        for (size_t l = 0; l < lanes; l++) {
            const size_t row = j * lanes + l;
            uint32_t *col = pd + l;
            size_t s = 0;
            if (row < n) {
                const float *wr = w + row * ldw;
                if (format == RSCLIP__GEMM_F32) {
                    for (; s < k; s++) memcpy(&col[s * lanes], &wr[s], 4);
                } else {
                    for (; 2 * s + 1 < k; s++) col[s * lanes] = bf16_pair(wr[2 * s], wr[2 * s + 1]);
                    if (2 * s < k) col[s++ * lanes] = rsclip__f32_to_bf16(wr[k - 1]);
                }
            }
            for (; s < steps; s++) col[s * lanes] = 0;
        }
    }
}

void rsclip__gemm_pack_wt_c(const float *wt, size_t n, size_t k, size_t ldt, int format, int nr,
                            size_t steps, size_t panels, uint32_t *data) {
    const int bf16 = format == RSCLIP__GEMM_BF16;
    const size_t lanes = (size_t)nr;
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * lanes;
        const size_t c0 = j * lanes;
        for (size_t s = 0; s < steps; s++) {
            const size_t k0 = bf16 ? 2 * s : s;
            const float *r0 = k0 < k ? wt + k0 * ldt : NULL;
            const float *r1 = bf16 && k0 + 1 < k ? wt + (k0 + 1) * ldt : NULL;
            for (size_t l = 0; l < lanes; l++) {
                const size_t col = c0 + l;
                const float x0 = r0 && col < n ? r0[col] : 0.0f;
                const float x1 = r1 && col < n ? r1[col] : 0.0f;
                uint32_t u;
                if (bf16)
                    u = bf16_pair(x0, x1);
                else
                    memcpy(&u, &x0, 4);
                pd[s * lanes + l] = u;
            }
        }
    }
}
