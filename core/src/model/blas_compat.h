/*
 * The few BLAS products the model makes outside rsclip__gemm: OpenBLAS's <cblas.h> when the build
 * has it (RSCLIP_HAVE_OPENBLAS), else plain C versions of exactly the calls forward.c makes (a
 * model-only build without OpenBLAS). Without OpenBLAS every Linear layer runs on rsclip__gemm
 * (forward.c forces the packed path), so these serve only small products: the MAP head's probe
 * projection and its per-head score and pooling products, and the tests of rsclip__linear.
 */
#ifndef RSCLIP_MODEL_BLAS_COMPAT_H
#define RSCLIP_MODEL_BLAS_COMPAT_H

#if defined(RSCLIP_HAVE_OPENBLAS)
#include <cblas.h>
#else
#include <stddef.h>

enum CBLAS_ORDER { CblasRowMajor = 101 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

/* Row-major C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C (op(A) = A only: all callers). */
static inline void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta,
                               enum CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                               const float *a, int lda, const float *b, int ldb, float beta,
                               float *c, int ldc) {
    (void)order, (void)ta;
    for (int i = 0; i < m; i++) {
        const float *ar = a + (size_t)i * lda;
        float *cr = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            if (tb == CblasTrans) {
                const float *br = b + (size_t)j * ldb;
                for (int p = 0; p < k; p++) s += ar[p] * br[p];
            } else {
                for (int p = 0; p < k; p++) s += ar[p] * b[(size_t)p * ldb + j];
            }
            cr[j] = alpha * s + (beta == 0.0f ? 0.0f : beta * cr[j]);
        }
    }
}

/* Row-major y = alpha op(A) x + beta y, A: [m, n]; unit strides (all callers). */
static inline void cblas_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, int m, int n,
                               float alpha, const float *a, int lda, const float *x, int incx,
                               float beta, float *y, int incy) {
    (void)order, (void)incx, (void)incy;
    const int ny = ta == CblasTrans ? n : m;
    for (int i = 0; i < ny; i++) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
    for (int i = 0; i < m; i++) {
        const float *ar = a + (size_t)i * lda;
        if (ta == CblasTrans) {
            for (int j = 0; j < n; j++) y[j] += alpha * ar[j] * x[i];
        } else {
            float s = 0.0f;
            for (int j = 0; j < n; j++) s += ar[j] * x[j];
            y[i] += alpha * s;
        }
    }
}

static inline void openblas_set_num_threads(int n) {
    (void)n; /* no OpenBLAS pool to size */
}
#endif

#endif
