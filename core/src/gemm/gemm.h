/*
 * gemm/gemm.h -- private GEMM kernels for the encoder: C[M,N] (+)= A[M,K] * B^T (+ bias, GELU).
 *
 * The model's Linear layers hold weights W [N = out, K = in] and compute y = x W^T + b on
 * activations x [M = batch * tokens, K]. The weights are packed ONCE at load time into panels
 * that the micro-kernel streams without further work; the activations stay f32 and are packed
 * (and, for bf16 weights, rounded to bf16) block by block inside the call.
 *
 *     rsclip__gemm_ctx *g;
 *     rsclip__gemm_ctx_new(2, &g);                          // owns its threads and scratch
 *     rsclip__packed_w *w;
 *     rsclip__pack_weights(W, 3072, 768, 768, RSCLIP__GEMM_BF16, &w);   // fc1: [3072, 768]
 *     rsclip__gemm(g, m, x, 768, w, y, 3072, b, RSCLIP__GEMM_GELU);     // y = gelu(x W^T + b)
 *     rsclip__packed_w_free(w);
 *     rsclip__gemm_ctx_free(g);
 *
 * Two weight formats (chosen at pack time):
 * - RSCLIP__GEMM_BF16: weights rounded to bf16 (round to nearest even), activations rounded to
 *   bf16 while packing, products accumulated in f32 (AVX512_BF16 vdpbf16ps). Error per output
 *   element is bounded by about 2^-8 * sum_k |a_k| |w_k| (two bf16 roundings) plus f32
 *   accumulation. On CPUs without AVX512_BF16 a portable C kernel computes the same bf16 products
 *   in f32 (close to, not bit-identical with, the vector path).
 * - RSCLIP__GEMM_F32: weights kept in f32, AVX-512F FMA kernel (portable C kernel without
 *   AVX-512F); the accuracy of an ordinary sgemm.
 *
 * Threads: a context with n_threads > 1 owns n_threads - 1 worker pthreads; the calling thread is
 * worker 0 and rsclip__gemm returns when the whole product is done. This is the ONLY parallelism a
 * call uses: while a multi-threaded context is in use, keep OpenBLAS (or any other pool) at one
 * thread, or use a 1-thread context -- two pools on the same cores cost 1.3-2.4x here. The result
 * does not depend on the thread count (each output element is summed in the same order).
 * A context is used by one caller at a time (it holds the per-thread scratch); the packed weights
 * are read-only and can be shared by any number of contexts and threads.
 *
 * No allocation happens inside rsclip__gemm: scratch is allocated and touched when the context is
 * created.
 */
#ifndef RSCLIP_GEMM_H
#define RSCLIP_GEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weight formats for rsclip__pack_weights. */
typedef enum rsclip__gemm_format {
    RSCLIP__GEMM_BF16 = 0,
    RSCLIP__GEMM_F32 = 1
} rsclip__gemm_format;

/* Code paths (what a call actually runs; see rsclip__gemm_path). */
typedef enum rsclip__gemm_path {
    RSCLIP__GEMM_PATH_SCALAR = 0,     /* portable C kernel (bf16 or f32 weights) */
    RSCLIP__GEMM_PATH_AVX512BF16 = 1, /* vdpbf16ps micro-kernel, bf16 weights */
    RSCLIP__GEMM_PATH_AVX512F = 2     /* AVX-512F FMA micro-kernel, f32 weights */
} rsclip__gemm_path;

/* Flags for rsclip__gemm (bitwise or). */
enum {
    RSCLIP__GEMM_ACCUMULATE = 1,  /* C = act(C + A B^T + bias) instead of C = act(A B^T + bias) */
    RSCLIP__GEMM_GELU = 2,        /* act = GELU tanh approximation (gelu_pytorch_tanh) */
    RSCLIP__GEMM_FORCE_SCALAR = 4 /* run the portable C kernel even if a vector path exists */
};

/* Weights packed into kernel panels: read-only after rsclip__pack_weights. */
typedef struct rsclip__packed_w rsclip__packed_w;

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
/* Bytes of panels for an [n, k] matrix (a multiple of 128), 0 on bad arguments or overflow. */
size_t rsclip__pack_weights_bytes(size_t n, size_t k, rsclip__gemm_format format);
/* NULL is a no-op (frees the panels only if rsclip__pack_weights allocated them). */
void rsclip__packed_w_free(rsclip__packed_w *p);

/* malloc for big, long-lived blocks (packed weights, activation arenas): 64-byte aligned; from
 * 2 MiB up, 2 MiB aligned and advised as transparent huge pages (MADV_HUGEPAGE), because first
 * touching 4 KiB pages costs ~16 us each on the VMs measured -- more than packing the data.
 * Release with free(). */
void *rsclip__alloc_huge(size_t bytes);
/* Shape of the packed matrix (n = output features, k = input features). */
size_t rsclip__packed_w_n(const rsclip__packed_w *p);
size_t rsclip__packed_w_k(const rsclip__packed_w *p);
/* Bytes held by the packed panels. */
size_t rsclip__packed_w_bytes(const rsclip__packed_w *p);

/* Per-caller GEMM context: the worker threads and their scratch. */
typedef struct rsclip__gemm_ctx rsclip__gemm_ctx;

/* Create a context running on n_threads threads (1..64; the caller counts as one). Free with
 * rsclip__gemm_ctx_free. Returns RSCLIP_OK, RSCLIP_ERR_INVALID_ARG, RSCLIP_ERR_NOMEM or
 * RSCLIP_ERR_INTERNAL (thread creation failed). */
int rsclip__gemm_ctx_new(int n_threads, rsclip__gemm_ctx **out);
/* Joins the workers. NULL is a no-op. */
void rsclip__gemm_ctx_free(rsclip__gemm_ctx *g);
int rsclip__gemm_ctx_threads(const rsclip__gemm_ctx *g);

/* C[m, n] = act((flags & ACCUMULATE ? C : 0) + A[m, k] * W^T + bias), where W [n, k] = b.
 * a: row stride lda >= k floats; c: row stride ldc >= n floats; bias: n floats or NULL.
 * a and c must not overlap. m == 0 is a no-op. Returns RSCLIP_OK or RSCLIP_ERR_INVALID_ARG. */
int rsclip__gemm(rsclip__gemm_ctx *g, size_t m, const float *a, size_t lda,
                 const rsclip__packed_w *b, float *c, size_t ldc, const float *bias,
                 unsigned flags);

/* Run fn(arg, part, n_parts) for part = 0 .. n_parts - 1 on the context's threads (part 0 on the
 * calling thread; n_parts is clamped to the thread count) and return when every part is done:
 * the encoder's other parallel stages (attention heads, layer norm rows) share the GEMM pool, so
 * one pool owns the cores. Same one-caller-at-a-time rule as rsclip__gemm. g == NULL runs
 * fn(arg, 0, 1) on the caller. */
typedef void (*rsclip__gemm_task_fn)(void *arg, int part, int n_parts);
void rsclip__gemm_run(rsclip__gemm_ctx *g, int n_parts, rsclip__gemm_task_fn fn, void *arg);

/* 1 when the AVX-512F vector kernels are to be used: the CPU and OS support them and the
 * environment variable RSCLIP_GEMM_SCALAR is unset or "0" (the other kernels of the forward pass
 * follow the same switch, so one variable exercises every portable path). */
int rsclip__gemm_use_avx512f(void);

/* The path rsclip__gemm takes for weights b with these flags on this CPU. The vector paths are
 * used when the CPU (cpuid + OS register state) supports them and the environment variable
 * RSCLIP_GEMM_SCALAR is unset or "0"; RSCLIP__GEMM_FORCE_SCALAR selects the C kernel per call. */
rsclip__gemm_path rsclip__gemm_path_for(const rsclip__packed_w *b, unsigned flags);
/* "scalar", "avx512bf16", "avx512f". */
const char *rsclip__gemm_path_name(rsclip__gemm_path p);
/* 1 if this CPU and OS support the AVX512_BF16 (resp. AVX-512F) kernel, ignoring the env var. */
int rsclip__gemm_cpu_has_avx512bf16(void);
int rsclip__gemm_cpu_has_avx512f(void);

/* Round-to-nearest-even f32 -> bf16 (NaN stays NaN), and the exact bf16 -> f32 widening. */
unsigned short rsclip__f32_to_bf16(float x);
float rsclip__bf16_to_f32(unsigned short h);

#ifdef __cplusplus
}
#endif
#endif
