/* Shared between the GEMM driver (gemm.c), the portable kernels (gemm_ref.c) and the vector
 * kernels (gemm_avx512.c, gemm_avx2.c, gemm_amx.c). */
#ifndef RSCLIP_GEMM_INTERNAL_H
#define RSCLIP_GEMM_INTERNAL_H

#include "gemm/gemm.h"

#include <stddef.h>
#include <stdint.h>

/* AVX-512 register tile: GEMM_MR rows of A (broadcast) x GEMM_NR columns of W (two 16-lane
 * vectors); 28 accumulators + 2 W vectors + 1 broadcast fit the 32 zmm registers. Every layout
 * stores one 4-byte unit per (k step, lane): an f32, or a pair of bf16 (k even, k odd), which is
 * the operand layout of vdpbf16ps and, read 16 steps x 16 lanes at a time, the VNNI layout of an
 * AMX B tile. */
#define GEMM_MR 14
#define GEMM_NR 32
/* AVX2 register tile: 6 rows x 16 columns (two 8-lane vectors): 12 accumulators + 2 + 1 of the 16
 * ymm registers; f32 weights for it are packed 16 lanes wide. */
#define GEMM_MR_AVX2 6
#define GEMM_NR_AVX2 16
/* AMX: 32 rows x 32 columns per call (2 x 2 tiles of 16 x 16 f32), k in tiles of 16 steps (32
 * bf16); bf16 panels packed for it have their steps padded with zeros to a multiple of 16. */
#define GEMM_MR_AMX 32
#define GEMM_AMX_KT 16
/* int8: a unit holds 4 consecutive k (unsigned activations, signed weights: vpdpbusd). */
#define GEMM_Q8_KPU 4

/* Packed W: panel j (columns j*nr .. j*nr+nr-1, zero-padded) holds steps x nr units, step-major;
 * the panels are contiguous, so the part of a panel for steps [s0, s0+ks) is contiguous too.
 * A direct W (data == NULL) is the caller's f32 matrix, packed panel by panel inside each call. */
struct rsclip__packed_w {
    size_t n, k;      /* logical shape [n, k] */
    size_t steps;     /* k steps per panel: k (F32), ceil(k / 2) (BF16), maybe padded (AMX) */
    size_t n_panels;  /* ceil(n / nr) */
    int format;       /* rsclip__gemm_format */
    int nr;           /* lanes per panel: GEMM_NR, or GEMM_NR_AVX2 for the AVX2 f32 layout */
    int owns_data;    /* 0: data lives in the caller's memory (rsclip__pack_weights_at) */
    uint32_t *data;   /* n_panels * steps * nr units, 64-byte aligned; NULL when direct */
    const float *src; /* direct: W [n, k], row stride ldw */
    size_t ldw;
    /* INT8: per output feature, the scale (max|w| / 127) and, per k block of the driver (n_kb
     * blocks of ks_blk steps), 128 x the sum of the quantised weights (the offset of the
     * unsigned activations), both after the panels: [n_panels * nr] and [n_panels * n_kb * nr] */
    float *wscale;
    int32_t *wcorr;
    size_t n_kb, ks_blk;
};

/* Kernel store modes. */
enum {
    GEMM_STORE_ADD_C = 1, /* add the C already in memory (accumulation across k blocks) */
    GEMM_STORE_LAST = 2   /* last k block: add bias (if any), apply GELU (if asked) */
};

/* c[r][j] (r < mr, j < nr) = epilogue(sum over ks steps of an A panel x a W panel).
 * a: one packed A panel (layout of the kernel's pack_a); w: ks steps of a W panel; mode:
 * GEMM_STORE_*. */
typedef void (*gemm_kernel_fn)(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                               size_t ldc, int mr, int nr, int mode, const float *bias, int gelu);

/* Pack rows [0, rows) of a (row stride lda) and k steps [s0, s0 + ks) into ceil(rows / mr) panels
 * of ks x mr units each (zero rows pad the last panel; a k beyond k_total reads as 0). */
typedef void (*gemm_pack_a_fn)(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                               size_t k_total, uint32_t *dst);

/* Pack rows [0, nrows) (nrows <= nr) of an f32 W (row stride ldw), k [k0, k0 + ks), into one
 * panel of ks x nr f32 units (missing rows and k >= k_total as 0): the direct-W path. */
typedef void (*gemm_pack_wpanel_fn)(const float *w, size_t ldw, size_t nrows, size_t k0, size_t ks,
                                    size_t k_total, uint32_t *dst);

/* int8 kernel: as gemm_kernel_fn, plus the per-row scales of the A panel (ascale[r], r < MR),
 * and the panel's per-column scales and offset sums for this k block. */
typedef void (*gemm_kernel_q8_fn)(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                  size_t ldc, int mr, int nr, int mode, const float *bias, int gelu,
                                  const float *ascale, const float *wscale, const int32_t *wcorr);
/* int8 A packing: as gemm_pack_a_fn (units of 4 k as unsigned bytes q + 128, q = round(a / s)),
 * and scales[i] = s of row i = max over the WHOLE row (k < k_total) of |a| / 127. */
typedef void (*gemm_pack_a_q8_fn)(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                  size_t k_total, uint32_t *dst, float *scales);

/* One code path of the driver. */
typedef struct gemm_kdesc {
    rsclip__gemm_path path;
    int mr;          /* rows per A panel */
    size_t mc;       /* rows per packed A block (a multiple of mr) */
    size_t ks_max;   /* k steps per block */
    size_t ks_align; /* k blocks are a multiple of this many steps */
    gemm_kernel_fn kernel;
    gemm_pack_a_fn pack_a;
    gemm_pack_wpanel_fn pack_wpanel; /* f32 layouts only */
    void (*begin)(void);             /* per part, before the first kernel (AMX tile config) */
    void (*end)(void);               /* per part, after the last one */
    gemm_kernel_q8_fn kernel_q8;     /* INT8 weights: these two instead of kernel / pack_a */
    gemm_pack_a_q8_fn pack_a_q8;
} gemm_kdesc;

/* The k blocks of an int8 W with `steps` steps: the driver's and the packer's (same sums). */
void rsclip__gemm_q8_blocks(size_t steps, size_t *n_kb, size_t *ks_blk);

/* Portable kernels and packers (gemm_ref.c). The epilogue of a tile acc [mr rows, row stride
 * ld] (GEMM_STORE_* modes). */
void rsclip__gemm_store_tile(const float *acc, int ld, float *c, size_t ldc, int mr, int nr,
                             int mode, const float *bias, int gelu);
void rsclip__gemm_kernel_bf16_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                size_t ldc, int mr, int nr, int mode, const float *bias, int gelu);
void rsclip__gemm_kernel_f32_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                               size_t ldc, int mr, int nr, int mode, const float *bias, int gelu);
void rsclip__gemm_kernel_f32_c16(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                 size_t ldc, int mr, int nr, int mode, const float *bias, int gelu);
void rsclip__gemm_pack_a_bf16_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_a_f32_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                               size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_a_f32_c6(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_wpanel_f32_c(const float *w, size_t ldw, size_t nrows, size_t k0, size_t ks,
                                    size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_wpanel_f32_c16(const float *w, size_t ldw, size_t nrows, size_t k0,
                                      size_t ks, size_t k_total, uint32_t *dst);
/* W [n, k] into packed panels of any layout (steps, panels, nr as in rsclip__packed_w). */
void rsclip__gemm_pack_w_c(const float *w, size_t n, size_t k, size_t ldw, int format, int nr,
                           size_t steps, size_t panels, uint32_t *data);
/* int8 (portable C): kernel, A packing, and W [n, k] into panels + scales + offset sums. */
void rsclip__gemm_kernel_q8_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c, size_t ldc,
                              int mr, int nr, int mode, const float *bias, int gelu,
                              const float *ascale, const float *wscale, const int32_t *wcorr);
void rsclip__gemm_pack_a_q8_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                              size_t k_total, uint32_t *dst, float *scales);
void rsclip__gemm_pack_w_q8_c(const float *w, size_t ldw, rsclip__packed_w *p);
/* W^T given as wt [k, n] (row stride ldt): the same panels as rsclip__gemm_pack_w_c of its
 * transpose (attention's V). */
void rsclip__gemm_pack_wt_c(const float *wt, size_t n, size_t k, size_t ldt, int format, int nr,
                            size_t steps, size_t panels, uint32_t *data);

#if defined(__x86_64__) && defined(__GNUC__)
#define RSCLIP_GEMM_HAVE_X86 1
/* gemm_avx512.c */
void rsclip__gemm_kernel_bf16_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                     size_t ldc, int mr, int nr, int mode, const float *bias,
                                     int gelu);
void rsclip__gemm_kernel_f32_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                    size_t ldc, int mr, int nr, int mode, const float *bias,
                                    int gelu);
void rsclip__gemm_pack_a_bf16_avx512(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                     size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_a_f32_avx512(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                    size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_w_bf16_avx512(const float *w, size_t n, size_t k, size_t ldw, size_t steps,
                                     size_t panels, uint32_t *data);
void rsclip__gemm_pack_w_f32_avx512(const float *w, size_t n, size_t k, size_t ldw, size_t steps,
                                    size_t panels, uint32_t *data);
void rsclip__gemm_pack_wpanel_f32_avx512(const float *w, size_t ldw, size_t nrows, size_t k0,
                                         size_t ks, size_t k_total, uint32_t *dst);
void rsclip__gemm_pack_wt_bf16_avx512(const float *wt, size_t n, size_t k, size_t ldt, size_t steps,
                                      size_t panels, uint32_t *data);
void rsclip__gemm_kernel_q8_avx512(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                   size_t ldc, int mr, int nr, int mode, const float *bias,
                                   int gelu, const float *ascale, const float *wscale,
                                   const int32_t *wcorr);
void rsclip__gemm_pack_a_q8_avx512(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                   size_t k_total, uint32_t *dst, float *scales);
/* gemm_avx2.c */
void rsclip__gemm_kernel_f32_avx2(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                  size_t ldc, int mr, int nr, int mode, const float *bias,
                                  int gelu);
void rsclip__gemm_pack_a_f32_avx2(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                                  size_t k_total, uint32_t *dst);
/* gemm_amx.c (real tiles) and gemm_amx_emu.c (the same code on the C emulation) */
void rsclip__gemm_amx_kernel(size_t ks, const uint32_t *a, const uint32_t *w, float *c, size_t ldc,
                             int mr, int nr, int mode, const float *bias, int gelu);
void rsclip__gemm_amx_begin(void);
void rsclip__gemm_amx_end(void);
void rsclip__gemm_amx_emu_kernel(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                                 size_t ldc, int mr, int nr, int mode, const float *bias, int gelu);
void rsclip__gemm_amx_emu_begin(void);
void rsclip__gemm_amx_emu_end(void);
void rsclip__gemm_pack_a_amx(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                             size_t k_total, uint32_t *dst);
#endif

#endif
