/*
 * The CUDA encoder's own kernels (everything that is not a GEMM), each the device twin of a step
 * of model/forward.c and attention.c, computing in float32 whatever the storage type:
 *   im2col, add_positions, embed_tokens  the embeddings (copies and adds)
 *   layernorm     one warp per row; two passes (mean, then the biased variance of x - mean)
 *   softmax_rows  one warp per row of scores; max subtracted, accurate expf
 *   gelu_tanh     gelu_pytorch_tanh with tanhf, in place
 *   map_pool      the MAP head's attention pooling, one block per (item, head)
 * Rows are read and written by the lane that owns each element, after the warp's reductions: so
 * layernorm and softmax_rows may run in place (out == in, float32).
 */
#include "cuda/cuda_common.cuh"

#include <math.h>

namespace rsclip_cuda {

namespace {

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum (or max) over the block; red: 33 floats of shared memory. Every thread must call it. */
template <bool MAX> __device__ float block_reduce(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n_warps = (blockDim.x + 31) >> 5;
    v = MAX ? warp_max(v) : warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < n_warps ? red[lane] : (MAX ? -INFINITY : 0.0f);
        t = MAX ? warp_max(t) : warp_sum(t);
        if (lane == 0) red[32] = t;
    }
    __syncthreads();
    const float r = red[32];
    __syncthreads(); /* red is free again for the next call */
    return r;
}

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32; /* one warp per row */

/* Blocks for a grid-stride loop over `total` elements. */
unsigned grid_for(size_t total) {
    size_t b = (total + kThreads - 1) / kThreads;
    if (b < 1) b = 1;
    return b > (1u << 20) ? (1u << 20) : (unsigned)b;
}
unsigned grid_rows(int rows) {
    return (unsigned)((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

#define GRID_STRIDE(i, total)                                                                      \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (total);                    \
         i += (size_t)gridDim.x * blockDim.x)

template <typename T>
__global__ void im2col_k(T *out, const float *px, int n, int C, int S, int P) {
    const int G = S / P, Tn = G * G, K = C * P * P;
    const size_t total = (size_t)n * Tn * K;
    GRID_STRIDE(e, total) {
        const size_t r = e / K;
        const int col = (int)(e % K);
        const int c = col / (P * P), py = (col / P) % P, pxx = col % P;
        const size_t b = r / Tn;
        const int t = (int)(r % Tn), gy = t / G, gx = t % G;
        out[e] = from_f<T>(px[((b * C + c) * S + (size_t)gy * P + py) * S + (size_t)gx * P + pxx]);
    }
}

__global__ void add_positions_k(float *x, const float *pos, int R, int Tn, int D) {
    const size_t total = (size_t)R * D;
    GRID_STRIDE(e, total) {
        const size_t r = e / D;
        x[e] += pos[(r % Tn) * D + e % D];
    }
}

__global__ void embed_tokens_k(float *x, const int32_t *ids, const float *tok, const float *pos,
                               int R, int Tn, int D) {
    const size_t total = (size_t)R * D;
    GRID_STRIDE(e, total) {
        const size_t r = e / D, i = e % D;
        x[e] = tok[(size_t)ids[r] * D + i] + pos[(r % Tn) * D + i];
    }
}

template <typename TO>
__global__ void layernorm_k(TO *out, const float *x, const float *w, const float *b, int rows,
                            int d, float eps) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return; /* whole warps leave together */
    const float *xr = x + (size_t)row * d;
    float s = 0.0f;
    for (int i = lane; i < d; i += 32) s += xr[i];
    const float mean = warp_sum(s) / (float)d;
    float v = 0.0f;
    for (int i = lane; i < d; i += 32) {
        const float t = xr[i] - mean;
        v += t * t;
    }
    const float var = warp_sum(v) / (float)d; /* biased, as torch */
    const float rstd = 1.0f / sqrtf(var + eps);
    TO *o = out + (size_t)row * d;
    for (int i = lane; i < d; i += 32) o[i] = from_f<TO>((xr[i] - mean) * rstd * w[i] + b[i]);
}

template <typename TP> __global__ void softmax_k(TP *P, const float *S, int rows, int n) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const float *sr = S + (size_t)row * n;
    float mx = -INFINITY;
    for (int i = lane; i < n; i += 32) mx = fmaxf(mx, sr[i]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int i = lane; i < n; i += 32) sum += expf(sr[i] - mx);
    const float inv = 1.0f / warp_sum(sum);
    TP *pr = P + (size_t)row * n;
    for (int i = lane; i < n; i += 32) pr[i] = from_f<TP>(expf(sr[i] - mx) * inv);
}

template <typename T> __global__ void add_bias_k(T *y, int ldy, const T *b, int rows, int n) {
    const size_t total = (size_t)rows * n;
    GRID_STRIDE(e, total) {
        T *p = y + (e / n) * ldy + e % n;
        *p = from_f<T>(to_f<T>(*p) + to_f<T>(b[e % n]));
    }
}

template <typename T> __global__ void gelu_k(T *x, size_t n) {
    const float k_beta = 0.7978845608028654f; /* sqrt(2 / pi) */
    const float k_kappa = 0.044715f;
    GRID_STRIDE(i, n) {
        const float v = to_f<T>(x[i]);
        const float inner = k_beta * (v + k_kappa * v * v * v);
        x[i] = from_f<T>(0.5f * v * (1.0f + tanhf(inner)));
    }
}

/* Block (item, head): scores s_j = k_j . q_h over the item's Tn tokens (shared memory), softmax,
 * then pa[item, head cols] = sum_j p_j v_j. kv rows: [k (D) | v (D)]. */
template <typename T>
__global__ void map_pool_k(T *pa, const T *kv, const float *q, int Tn, int D, int H) {
    extern __shared__ float sm[]; /* [Tn] scores, then 33 floats of reduction scratch */
    float *sc = sm, *red = sm + Tn;
    const int item = blockIdx.x / H, h = blockIdx.x % H, hd = D / H;
    const size_t row0 = (size_t)item * Tn, ld = 2 * (size_t)D;
    const float *qh = q + (size_t)h * hd;
    for (int j = threadIdx.x; j < Tn; j += blockDim.x) {
        const T *kr = kv + (row0 + j) * ld + (size_t)h * hd;
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s += to_f<T>(kr[d]) * qh[d];
        sc[j] = s;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < Tn; j += blockDim.x) mx = fmaxf(mx, sc[j]);
    mx = block_reduce<true>(mx, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Tn; j += blockDim.x) {
        const float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_reduce<false>(sum, red); /* its barriers publish sc[] */
    const T *v = kv + row0 * ld + D + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.0f;
        for (int j = 0; j < Tn; j++) o += sc[j] * to_f<T>(v[(size_t)j * ld + d]);
        pa[(size_t)item * D + (size_t)h * hd + d] = from_f<T>(o * inv);
    }
}

/* Self-attention of short sequences (text: 64 tokens) in one launch: block (item, head) stages
 * the head's K (rows padded by one float: no bank conflicts) and V in shared memory as float and
 * each warp takes query rows in turn: scores (up to 4 per lane), softmax by warp reductions, then
 * o = p V with each lane owning head columns lane, lane + 32, ... Same arithmetic as the CPU's
 * attention_block_c (scale applied to the dot products, max subtracted, 1/sum last). */
template <typename T>
__global__ void attention_small_k(T *ao, const T *qkv, int Tn, int D, int H, float scale) {
    extern __shared__ float sm[];
    const int item = blockIdx.x / H, h = blockIdx.x % H, hd = D / H;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    const size_t ld = 3 * (size_t)D;
    const T *base = qkv + (size_t)item * Tn * ld + (size_t)h * hd;
    float *Ks = sm, *Vs = Ks + (size_t)Tn * (hd + 1), *Qs = Vs + (size_t)Tn * hd + warp * hd;
    for (int e = threadIdx.x; e < Tn * hd; e += blockDim.x) {
        const int j = e / hd, d = e % hd;
        Ks[j * (hd + 1) + d] = to_f<T>(base[(size_t)j * ld + D + d]);
        Vs[j * hd + d] = to_f<T>(base[(size_t)j * ld + 2 * D + d]);
    }
    __syncthreads();
    for (int i = warp; i < Tn; i += n_warps) {
        for (int d = lane; d < hd; d += 32) Qs[d] = to_f<T>(base[(size_t)i * ld + d]);
        __syncwarp();
        float s[4], mx = -INFINITY;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const int j = lane + 32 * c;
            float v = -INFINITY;
            if (j < Tn) {
                float acc = 0.0f;
                for (int d = 0; d < hd; d++) acc += Qs[d] * Ks[j * (hd + 1) + d];
                v = acc * scale;
            }
            s[c] = v;
            mx = fmaxf(mx, v);
        }
        mx = warp_max(mx);
        float sum = 0.0f;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const float e = lane + 32 * c < Tn ? expf(s[c] - mx) : 0.0f;
            s[c] = e;
            sum += e;
        }
        const float inv = 1.0f / warp_sum(sum);
        float o[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int c = 0; c < 4; c++) {
            for (int src = 0; src < 32; src++) {
                const int j = src + 32 * c;
                if (j >= Tn) break; /* the same for every lane */
                const float p = __shfl_sync(0xffffffffu, s[c], src);
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const int d = lane + 32 * k;
                    if (d < hd) o[k] += p * Vs[j * hd + d];
                }
            }
        }
        T *out = ao + ((size_t)item * Tn + i) * D + (size_t)h * hd;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int d = lane + 32 * k;
            if (d < hd) out[d] = from_f<T>(o[k] * inv);
        }
        __syncwarp(); /* Qs is rewritten for the warp's next row */
    }
}

size_t attention_small_smem(int T, int D, int H) {
    const size_t hd = (size_t)(D / H);
    return sizeof(float) * ((size_t)T * (hd + 1) + (size_t)T * hd + (kThreads / 32) * hd);
}

} // namespace

int attention_small_fits(int T, int D, int H) {
    return T <= 128 && D / H <= 128 && attention_small_smem(T, D, H) <= 48 * 1024;
}

int attention_small(cudaStream_t s, dtype act, void *ao, const void *qkv, int n, int T, int D,
                    int H, float scale) {
    const size_t smem = attention_small_smem(T, D, H);
    const unsigned blocks = (unsigned)(n * H);
    if (act == DT_F32)
        attention_small_k<float>
            <<<blocks, kThreads, smem, s>>>((float *)ao, (const float *)qkv, T, D, H, scale);
    else
        attention_small_k<__nv_bfloat16><<<blocks, kThreads, smem, s>>>(
            (__nv_bfloat16 *)ao, (const __nv_bfloat16 *)qkv, T, D, H, scale);
    RC_LAUNCH("attention_small");
    return RSCLIP_OK;
}

int im2col(cudaStream_t s, dtype act, void *patches, const float *pixels, int n, int C, int S,
           int P) {
    const size_t total = (size_t)n * (S / P) * (S / P) * C * P * P;
    if (act == DT_F32)
        im2col_k<float><<<grid_for(total), kThreads, 0, s>>>((float *)patches, pixels, n, C, S, P);
    else
        im2col_k<__nv_bfloat16>
            <<<grid_for(total), kThreads, 0, s>>>((__nv_bfloat16 *)patches, pixels, n, C, S, P);
    RC_LAUNCH("im2col");
    return RSCLIP_OK;
}

int add_positions(cudaStream_t s, float *x, const float *pos, int R, int T, int D) {
    add_positions_k<<<grid_for((size_t)R * D), kThreads, 0, s>>>(x, pos, R, T, D);
    RC_LAUNCH("add_positions");
    return RSCLIP_OK;
}

int embed_tokens(cudaStream_t s, float *x, const int32_t *ids, const float *tok, const float *pos,
                 int R, int T, int D) {
    embed_tokens_k<<<grid_for((size_t)R * D), kThreads, 0, s>>>(x, ids, tok, pos, R, T, D);
    RC_LAUNCH("embed_tokens");
    return RSCLIP_OK;
}

int layernorm(cudaStream_t s, dtype out_t, void *out, const float *x, const float *w,
              const float *b, int rows, int d, float eps) {
    if (rows <= 0) return RSCLIP_OK;
    if (out_t == DT_F32)
        layernorm_k<float>
            <<<grid_rows(rows), kThreads, 0, s>>>((float *)out, x, w, b, rows, d, eps);
    else
        layernorm_k<__nv_bfloat16>
            <<<grid_rows(rows), kThreads, 0, s>>>((__nv_bfloat16 *)out, x, w, b, rows, d, eps);
    RC_LAUNCH("layernorm");
    return RSCLIP_OK;
}

int softmax_rows(cudaStream_t s, dtype act, void *P, const float *S, int rows, int n) {
    if (rows <= 0) return RSCLIP_OK;
    if (act == DT_F32)
        softmax_k<float><<<grid_rows(rows), kThreads, 0, s>>>((float *)P, S, rows, n);
    else
        softmax_k<__nv_bfloat16>
            <<<grid_rows(rows), kThreads, 0, s>>>((__nv_bfloat16 *)P, S, rows, n);
    RC_LAUNCH("softmax");
    return RSCLIP_OK;
}

int add_bias(cudaStream_t s, dtype t, void *y, int ldy, const void *b, int rows, int n) {
    const size_t total = (size_t)rows * n;
    if (t == DT_F32)
        add_bias_k<float>
            <<<grid_for(total), kThreads, 0, s>>>((float *)y, ldy, (const float *)b, rows, n);
    else
        add_bias_k<__nv_bfloat16><<<grid_for(total), kThreads, 0, s>>>(
            (__nv_bfloat16 *)y, ldy, (const __nv_bfloat16 *)b, rows, n);
    RC_LAUNCH("add_bias");
    return RSCLIP_OK;
}

int gelu_tanh(cudaStream_t s, dtype act, void *x, size_t n) {
    if (act == DT_F32)
        gelu_k<float><<<grid_for(n), kThreads, 0, s>>>((float *)x, n);
    else
        gelu_k<__nv_bfloat16><<<grid_for(n), kThreads, 0, s>>>((__nv_bfloat16 *)x, n);
    RC_LAUNCH("gelu_tanh");
    return RSCLIP_OK;
}

int map_pool(cudaStream_t s, dtype act, void *pa, const void *kv, const float *q, int n, int T,
             int D, int H) {
    const size_t smem = sizeof(float) * ((size_t)T + 33);
    const unsigned blocks = (unsigned)(n * H);
    if (act == DT_F32)
        map_pool_k<float>
            <<<blocks, kThreads, smem, s>>>((float *)pa, (const float *)kv, q, T, D, H);
    else
        map_pool_k<__nv_bfloat16><<<blocks, kThreads, smem, s>>>(
            (__nv_bfloat16 *)pa, (const __nv_bfloat16 *)kv, q, T, D, H);
    RC_LAUNCH("map_pool");
    return RSCLIP_OK;
}

} // namespace rsclip_cuda
