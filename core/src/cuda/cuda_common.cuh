/*
 * Declarations shared by the CUDA encoder's files:
 *   cuda_kernels.cu  own kernels: patch im2col, position/token embeddings, layer norm, softmax,
 *                    GELU-tanh, the MAP head's attention pooling
 *   cuda_gemm.cu     the Linear layers on cuBLASLt (bias / GELU epilogues) and the attention
 *                    products on cuBLAS (strided batched, one call per head)
 *   cuda_weights.cu  one upload of a tower's weights from the rsclip_model structs
 *   cuda_encoder.cu  the encoder object, the two towers' layer sequences, the entry points
 *
 * Activations: the residual stream x is always float32 [R, D] (R = n items * T tokens). Inputs of
 * GEMMs (layer-normed rows, q/k/v, attention output, MLP hidden) are `act` values: float32 in F32
 * mode, bfloat16 in BF16 mode. GEMMs accumulate in float32 either way; layer norm, softmax and
 * GELU compute in float32. Shapes in comments as in model/forward.c.
 */
#ifndef RSCLIP_CUDA_COMMON_CUH
#define RSCLIP_CUDA_COMMON_CUH

#include "cuda/cuda_encoder.h"
#include "model/model_internal.h"
#include "rsclip/status.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stddef.h>
#include <stdint.h>

namespace rsclip_cuda {

/* Element types of device buffers. */
enum dtype { DT_F32 = 0, DT_BF16 = 1 };

static inline size_t dtype_size(dtype t) {
    return t == DT_F32 ? 4 : 2;
}
static inline cudaDataType_t dtype_cuda(dtype t) {
    return t == DT_F32 ? CUDA_R_32F : CUDA_R_16BF;
}

/* Status helpers: record the failure with rsclip__error and return its code. */
int cuda_fail(cudaError_t err, const char *what);
int cublas_fail(int status, const char *what);
#define RC_CUDA(call, what)                                                                        \
    do {                                                                                           \
        cudaError_t err_ = (call);                                                                 \
        if (err_ != cudaSuccess) return rsclip_cuda::cuda_fail(err_, what);                        \
    } while (0)
/* After kernel launches: launch errors (bad configuration) and earlier asynchronous faults. */
#define RC_LAUNCH(what) RC_CUDA(cudaGetLastError(), what)

/* ---- Linear layers ------------------------------------------------------------------------- */

/* One Linear layer on the device: y = x W^T + b. w: [n, k] in the weight type (the act type);
 * b: [n] in bias_t, the type of the GEMM's output (cuBLASLt adds a bias of the output's type). */
struct dlinear {
    const void *w;
    const void *b;
    dtype bias_t;
    int n, k;
};

/* Epilogues of a Linear GEMM. */
enum { EPI_BIAS = 0, EPI_GELU_BIAS = 1 };

struct gemm_plan; /* cuda_gemm.cu: a cached cuBLASLt matmul description + algorithm */

/* What the GEMM code needs: handles, workspace, the stream everything runs on, the plan cache. */
struct gemm_ctx {
    cublasLtHandle_t lt;
    cublasHandle_t blas;
    cudaStream_t stream;
    void *workspace;
    size_t workspace_bytes;
    dtype act;         /* activation / weight type of GEMM inputs */
    int gelu_epilogue; /* 1: fc1 uses cuBLASLt's GELU_BIAS (BF16 only; F32 keeps tanhf exact) */
    gemm_plan *plans;  /* [n_plans_cap] */
    int n_plans, next_evict;
};

int gemm_ctx_init(gemm_ctx *g, cudaStream_t stream, dtype act);
void gemm_ctx_free(gemm_ctx *g);

/* y[rows, L.n] (+)= epi(x[rows, L.k] W^T + b); x: act type, row stride ldx; y: y_t, row stride
 * ldy; accumulate: y += ... (beta = 1). Where cuBLASLt offers no algorithm with the fused
 * epilogue (or g->gelu_epilogue is 0 for GELU), the epilogue runs as own kernels after a plain
 * GEMM: GELU_BIAS -> BIAS + gelu_tanh -> DEFAULT + add_bias + gelu_tanh. */
int linear(gemm_ctx *g, int rows, const void *x, int ldx, const dlinear &L, void *y, int ldy,
           dtype y_t, int epi, int accumulate);

/* Self-attention products of nc items, head by head (strided batched over the items):
 *   S[i, h] = scale * Q_ih K_ih^T   S: f32 [nc, H, T, T]
 *   O_ih    = P[i, h] V_ih          P: act [nc, H, T, T]; O (= ao): act [nc*T, D]
 * qkv: act [nc*T, 3D] with q | k | v column blocks; head h = columns h*hd .. h*hd+hd-1. */
int attention_scores(gemm_ctx *g, int nc, int T, int D, int H, const void *qkv, float *S,
                     float scale);
int attention_values(gemm_ctx *g, int nc, int T, int D, int H, const void *qkv, const void *P,
                     void *ao);

/* ---- kernels (cuda_kernels.cu); every launcher reports launch errors ------------------------- */

/* patches [n*T, C*P*P] (act) from pixels f32 [n, C, S, S]: rows (item, gy, gx), columns (c, py, px)
 * as the Conv2d weight. */
int im2col(cudaStream_t s, dtype act, void *patches, const float *pixels, int n, int C, int S,
           int P);
/* x [R, D] += pos [R % T, D] */
int add_positions(cudaStream_t s, float *x, const float *pos, int R, int T, int D);
/* x [R, D] = tok [ids[r], D] + pos [r % T, D] */
int embed_tokens(cudaStream_t s, float *x, const int32_t *ids, const float *tok, const float *pos,
                 int R, int T, int D);
/* out [rows, d] (out_t) = LayerNorm(x [rows, d]); out may be x (f32, in place). */
int layernorm(cudaStream_t s, dtype out_t, void *out, const float *x, const float *w,
              const float *b, int rows, int d, float eps);
/* P [rows, n] (act) = softmax of each row of S [rows, n] (f32); P may be S when act is f32. */
int softmax_rows(cudaStream_t s, dtype act, void *P, const float *S, int rows, int n);
/* y [rows, n] (row stride ldy) += b [n], both of type t */
int add_bias(cudaStream_t s, dtype t, void *y, int ldy, const void *b, int rows, int n);
/* x [n] (act) = gelu_tanh(x), in place */
int gelu_tanh(cudaStream_t s, dtype act, void *x, size_t n);
/* ao = softmax(q k^T * scale) v for n items of T tokens in one launch (qkv: act [n*T, 3D]; ao:
 * act [n*T, D]), for short sequences: attention_small_fits(T, D, H) says when (T <= 128, head
 * width <= 128, K and V of a head within 48 KiB of shared memory). */
int attention_small_fits(int T, int D, int H);
int attention_small(cudaStream_t s, dtype act, void *ao, const void *qkv, int n, int T, int D,
                    int H, float scale);
/* MAP head pooling: pa [n, D] (act), per (item, head): softmax over the T tokens of k_j . q_h,
 * then the weighted sum of v_j. kv: act [n*T, 2D] (k | v); q: f32 [D], already scaled. */
int map_pool(cudaStream_t s, dtype act, void *pa, const void *kv, const float *q, int n, int T,
             int D, int H);

/* ---- weights (cuda_weights.cu) -------------------------------------------------------------- */

struct dlayer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* f32 [D] */
    dlinear qkv;                                /* [3D, D]: q_proj; k_proj; v_proj */
    dlinear o, fc1, fc2;
};

/* One tower on the device, uploaded at its first use into one allocation. */
struct dtower {
    int ready;
    void *mem;
    int n_layers;
    dlayer *layers;           /* host array [n_layers] of device pointers */
    const float *pos;         /* f32 [T, D] */
    const float *ln_w, *ln_b; /* text final_layer_norm / vision post_layernorm */
    /* text */
    const float *tok; /* f32 [vocab, D] */
    dlinear head;     /* [D, D] */
    /* vision */
    dlinear patch;      /* [D, C*P*P] */
    const float *map_q; /* f32 [D]: (probe Wq^T + bq) / sqrt(hd) */
    dlinear map_kv, map_out, map_fc1, map_fc2;
    const float *map_ln_w, *map_ln_b;
};

int tower_upload(const rsclip_model *m, int vision, dtype act, dtower *t);
void tower_free(dtower *t);

} // namespace rsclip_cuda

#endif
