/*
 * gemm/gemm.h -- private GEMM kernels for the encoder: C[M,N] (+)= A[M,K] * B^T (+ bias, GELU).
 *
 * The model's Linear layers hold weights W [N = out, K = in] and compute y = x W^T + b on
 * activations x [M = batch * tokens, K]. The weights are packed ONCE (when a tower is first used)
 * into panels that the micro-kernel streams without further work; the activations stay f32 and
 * are packed (and, for bf16 weights, rounded to bf16) block by block inside the call.
 *
 *     rsclip__gemm_ctx *g;
 *     rsclip__gemm_ctx_new(2, &g);                          // scratch for 2 parts
 *     rsclip__packed_w *w;
 *     rsclip__pack_weights(W, 3072, 768, 768, RSCLIP__GEMM_BF16, &w);   // fc1: [3072, 768]
 *     rsclip__gemm(g, m, x, 768, w, y, 3072, b, RSCLIP__GEMM_GELU);     // y = gelu(x W^T + b)
 *     rsclip__packed_w_free(w);
 *     rsclip__gemm_ctx_free(g);
 *
 * Two weight formats (chosen at pack time):
 * - RSCLIP__GEMM_BF16: weights rounded to bf16 (round to nearest even), activations rounded to
 *   bf16 while packing, products accumulated in f32 (AMX tdpbf16ps or AVX512_BF16 vdpbf16ps).
 *   Error per output element is bounded by about 2^-8 * sum_k |a_k| |w_k| (two bf16 roundings)
 *   plus f32 accumulation. The portable C kernel computes the same bf16 products in f32 (close
 *   to, not bit-identical with, the vector paths, which differ in summation order).
 * - RSCLIP__GEMM_F32: weights kept in f32: AVX-512F, AVX2 + FMA or portable C kernel; the
 *   accuracy of an ordinary sgemm.
 * - RSCLIP__GEMM_INT8 (W8A8): weights quantised to int8 per output feature (symmetric, scale
 *   max|w| / 127, round to nearest even), activations per row the same way inside the call (then
 *   offset by 128 to the unsigned bytes vpdpbusd takes, the offset taken back out exactly with
 *   the weights' column sums); products summed exactly in int32, scaled back to f32 in the
 *   epilogue. AVX512-VNNI kernel, or a portable C kernel with the same integer sums.
 * The path a call takes follows the CPU and RSCLIP_ISA (gemm/isa.h): rsclip__gemm_path_for. The
 * panel layout is chosen at pack time from the same ceiling (AVX2's f32 panels are 16 lanes wide,
 * AMX's bf16 panels have their k steps padded to a multiple of 16), so pack and call in the same
 * process.
 *
 * Threads: rsclip__gemm splits the product into parts run on the process's worker pool
 * (base/pool.h), the calling thread running part 0; it returns when the whole product is done.
 * The context holds one scratch block per part. The result does not depend on the thread count
 * (each output element is summed in the same order). A context is used by one caller at a time;
 * the packed weights are read-only and can be shared by any number of contexts and threads.
 *
 * No allocation happens inside rsclip__gemm: scratch is allocated and touched when the context is
 * created.
 */
#ifndef RSCLIP_GEMM_H
#define RSCLIP_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weight formats for rsclip__pack_weights. */
typedef enum rsclip__gemm_format {
    RSCLIP__GEMM_BF16 = 0,
    RSCLIP__GEMM_F32 = 1,
    RSCLIP__GEMM_INT8 = 2
} rsclip__gemm_format;

/* Code paths (what a call actually runs; see rsclip__gemm_path_for). */
typedef enum rsclip__gemm_path {
    RSCLIP__GEMM_PATH_SCALAR = 0,     /* portable C kernel (bf16 or f32 weights) */
    RSCLIP__GEMM_PATH_AVX512BF16 = 1, /* vdpbf16ps micro-kernel, bf16 weights */
    RSCLIP__GEMM_PATH_AVX512F = 2,    /* AVX-512F FMA micro-kernel, f32 weights */
    RSCLIP__GEMM_PATH_AVX2 = 3,       /* AVX2 + FMA micro-kernel, f32 weights (16-lane panels) */
    RSCLIP__GEMM_PATH_AMX = 4,        /* AMX-BF16 tiles, bf16 weights (real or emulated) */
    RSCLIP__GEMM_PATH_AVX512VNNI = 5  /* vpdpbusd micro-kernel, int8 weights */
} rsclip__gemm_path;

/* Flags for rsclip__gemm (bitwise or). */
enum {
    RSCLIP__GEMM_ACCUMULATE = 1,  /* C = act(C + A B^T + bias) instead of C = act(A B^T + bias) */
    RSCLIP__GEMM_GELU = 2,        /* act = GELU tanh approximation (gelu_pytorch_tanh) */
    RSCLIP__GEMM_FORCE_SCALAR = 4 /* run the portable C kernel even if a vector path exists */
};

/* Weights packed into kernel panels: read-only after rsclip__pack_weights. (The struct is
 * defined in gemm_internal.h; rsclip__packed_w_storage lets a caller hold one without allocating,
 * see rsclip__pack_weights_into.) */
typedef struct rsclip__packed_w rsclip__packed_w;
typedef struct rsclip__packed_w_storage {
    size_t words[16];
} rsclip__packed_w_storage;

/* Pack w [n, k] (row stride ldw >= k floats; w[i * ldw + j] = W[i][j], i.e. a Linear weight
 * [out, in]) into *out, converting to `format`. The packed copy does not reference w.
 * Free with rsclip__packed_w_free. Returns RSCLIP_OK, RSCLIP_ERR_INVALID_ARG or RSCLIP_ERR_NOMEM.
 */
int rsclip__pack_weights(const float *w, size_t n, size_t k, size_t ldw, rsclip__gemm_format format,
                         rsclip__packed_w **out);
/* The same into caller-owned memory (64-byte aligned, rsclip__pack_weights_bytes(n, k, format)
 * bytes, e.g. one block for a whole tower): *out then references mem, which must outlive it. */
int rsclip__pack_weights_at(const float *w, size_t n, size_t k, size_t ldw,
                            rsclip__gemm_format format, void *mem, rsclip__packed_w **out);
/* Bytes of panels for an [n, k] matrix (a multiple of 64), 0 on bad arguments or overflow. */
size_t rsclip__pack_weights_bytes(size_t n, size_t k, rsclip__gemm_format format);
/* Pack into caller-owned memory AND a caller-owned handle (no allocation at all, for use inside a
 * forward pass): *st becomes the rsclip__packed_w returned. transposed = 1 reads w as W^T, i.e.
 * w [k, n] with row stride ldw (attention's V: the product P V = P (V^T)^T).
 * Returns NULL on bad arguments. */
rsclip__packed_w *rsclip__pack_weights_into(rsclip__packed_w_storage *st, const float *w, size_t n,
                                            size_t k, size_t ldw, int transposed,
                                            rsclip__gemm_format format, void *mem);
/* A direct (unpacked) f32 W [n, k], row stride ldw: no copy is made; each call packs the panels
 * it needs into its scratch (for a process that encodes a few inputs and exits, where packing a
 * whole tower first would cost more than the products). w must outlive the handle. */
int rsclip__packed_w_direct(const float *w, size_t n, size_t k, size_t ldw, rsclip__packed_w **out);
/* NULL is a no-op (frees the panels only if rsclip__pack_weights allocated them). */
void rsclip__packed_w_free(rsclip__packed_w *p);

/* Packed panels live in rsclip__alloc_huge memory (base/base.h). */
/* Shape of the packed matrix (n = output features, k = input features). */
size_t rsclip__packed_w_n(const rsclip__packed_w *p);
size_t rsclip__packed_w_k(const rsclip__packed_w *p);
/* Bytes held by the packed panels. */
size_t rsclip__packed_w_bytes(const rsclip__packed_w *p);

/* Per-caller GEMM context: the thread count and one scratch block per part. */
typedef struct rsclip__gemm_ctx rsclip__gemm_ctx;

/* Create a context splitting its products over n_threads threads (1..64; the caller counts as
 * one) of the process pool. Free with rsclip__gemm_ctx_free. Returns RSCLIP_OK,
 * RSCLIP_ERR_INVALID_ARG or RSCLIP_ERR_NOMEM. */
int rsclip__gemm_ctx_new(int n_threads, rsclip__gemm_ctx **out);
/* NULL is a no-op. */
void rsclip__gemm_ctx_free(rsclip__gemm_ctx *g);
int rsclip__gemm_ctx_threads(const rsclip__gemm_ctx *g);

/* C[m, n] = act((flags & ACCUMULATE ? C : 0) + A[m, k] * W^T + bias), where W [n, k] = b.
 * a: row stride lda >= k floats; c: row stride ldc >= n floats; bias: n floats or NULL.
 * a and c must not overlap. m == 0 is a no-op. Returns RSCLIP_OK or RSCLIP_ERR_INVALID_ARG. */
int rsclip__gemm(rsclip__gemm_ctx *g, size_t m, const float *a, size_t lda,
                 const rsclip__packed_w *b, float *c, size_t ldc, const float *bias,
                 unsigned flags);

/* The same product on the calling thread only, with scratch of rsclip__gemm_scratch_bytes()
 * bytes (64-byte aligned, e.g. a context's part scratch handed to a task): for products made
 * inside a task that already runs on the pool (attention's QK^T and PV per head). */
size_t rsclip__gemm_scratch_bytes(void);
int rsclip__gemm_serial(void *scratch, size_t m, const float *a, size_t lda,
                        const rsclip__packed_w *b, float *c, size_t ldc, const float *bias,
                        unsigned flags);

/* Run fn(arg, part, n_parts, scratch of that part) for part = 0 .. n_parts - 1 on the process
 * pool (part 0 on the calling thread; n_parts is clamped to the context's thread count) and
 * return when every part is done: the encoder's other parallel stages (attention heads, layer
 * norm rows) use the same pool and the same scratch. Same one-caller-at-a-time rule as
 * rsclip__gemm. g == NULL runs fn(arg, 0, 1, NULL) on the caller. */
typedef void (*rsclip__gemm_task_fn)(void *arg, int part, int n_parts, void *scratch);
void rsclip__gemm_run(rsclip__gemm_ctx *g, int n_parts, rsclip__gemm_task_fn fn, void *arg);

/* The path rsclip__gemm takes for weights b with these flags: the weights' format and layout, the
 * kernels this CPU runs and RSCLIP_ISA (gemm/isa.h); RSCLIP__GEMM_FORCE_SCALAR selects the C
 * kernel per call. */
rsclip__gemm_path rsclip__gemm_path_for(const rsclip__packed_w *b, unsigned flags);
/* "scalar", "avx512bf16", "avx512f", "avx2", "amx", "avx512vnni". */
const char *rsclip__gemm_path_name(rsclip__gemm_path p);

/* Round-to-nearest-even f32 -> bf16 (as vcvtne2ps2bf16: NaN stays a quiet NaN, denormal inputs
 * read as zero), and the exact bf16 -> f32 widening. Inline: the CUDA module uses them too. */
static inline unsigned short rsclip__f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u) {                              /* inf or NaN */
        if (u & 0x007FFFFFu) return (unsigned short)((u >> 16) | 0x40u); /* quiet NaN */
        return (unsigned short)(u >> 16);
    }
    if ((u & 0x7F800000u) == 0) return (unsigned short)((u >> 16) & 0x8000u); /* zero/denormal */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

static inline float rsclip__bf16_to_f32(unsigned short h) {
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

#ifdef __cplusplus
}
#endif
#endif
