/* Shared between gemm.c (driver, packing, portable kernels) and gemm_avx512.c (vector kernels). */
#ifndef RSCLIP_GEMM_INTERNAL_H
#define RSCLIP_GEMM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Register tile: GEMM_MR rows of A (broadcast) x GEMM_NR columns of W (two 16-lane vectors);
 * 28 accumulators + 2 W vectors + 1 broadcast fit the 32 zmm registers. Both formats store one
 * 4-byte unit per (k step, lane): an f32 for GEMM_F32, a pair of bf16 (k even, k odd) for BF16,
 * which is the operand layout of vdpbf16ps. */
#define GEMM_MR 14
#define GEMM_NR 32

/* Packed W: panel j (columns j*NR .. j*NR+NR-1, zero-padded) holds steps x NR units, step-major;
 * the panels are contiguous, so the part of a panel for steps [s0, s0+ks) is contiguous too. */
struct rsclip__packed_w {
    size_t n, k;     /* logical shape [n, k] */
    size_t steps;    /* k steps: k (F32) or ceil(k / 2) (BF16) */
    size_t n_panels; /* ceil(n / NR) */
    int format;      /* rsclip__gemm_format */
    int owns_data;   /* 0: data lives in the caller's memory (rsclip__pack_weights_at) */
    uint32_t *data;  /* n_panels * steps * NR units, 64-byte aligned */
};

/* Kernel store modes. */
enum {
    GEMM_STORE_ADD_C = 1, /* add the C already in memory (accumulation across k blocks) */
    GEMM_STORE_LAST = 2   /* last k block: add bias (if any), apply GELU (if asked) */
};

/* c[r][j] (r < mr, j < nr) = epilogue(sum over ks steps of a panel x w panel).
 * a: ks x MR units (step-major), w: ks x NR units; mode: GEMM_STORE_*. */
typedef void (*gemm_kernel_fn)(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                               size_t ldc, int mr, int nr, int mode, const float *bias, int gelu);

/* Pack rows [0, rows) of a (row stride lda) and k steps [s0, s0 + ks) into ceil(rows / MR)
 * panels of ks x MR units each (zero rows pad the last panel; a k beyond k_total reads as 0). */
typedef void (*gemm_pack_a_fn)(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                               size_t k_total, uint32_t *dst);

#if defined(__x86_64__) && defined(__GNUC__)
#define RSCLIP_GEMM_HAVE_X86 1
void rsclip__gemm_kernel_bf16_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                     size_t ldc, int mr, int nr, int mode, const float *bias,
                                     int gelu);
void rsclip__gemm_kernel_f32_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                    size_t ldc, int mr, int nr, int mode, const float *bias,
                                    int gelu);
void rsclip__gemm_pack_a_bf16_avx512(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                     size_t k_total, uint32_t *dst);
/* W [n, k] (row stride ldw) into the packed panels (steps, panels as in rsclip__packed_w). */
void rsclip__gemm_pack_w_bf16_avx512(const float *w, size_t n, size_t k, size_t ldw, size_t steps,
                                     size_t panels, uint32_t *data);
void rsclip__gemm_pack_w_f32_avx512(const float *w, size_t n, size_t k, size_t ldw, size_t steps,
                                    size_t panels, uint32_t *data);
void rsclip__gemm_pack_a_f32_avx512(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                    size_t k_total, uint32_t *dst);
#endif

#endif
