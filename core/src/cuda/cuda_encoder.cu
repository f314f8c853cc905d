/*
 * The CUDA encoder: model/forward.c's layer sequence on a GPU, batch-first ([n * T, D] rows per
 * GEMM), everything enqueued on one compute stream.
 *
 *   layer:  xn = LN1(x); qkv = xn Wqkv^T + b; S = q k^T / sqrt(hd); P = softmax(S);
 *           ao = P v; x += ao Wo^T + bo; xn = LN2(x); h = gelu(xn W1^T + b1); x += h W2^T + b2
 *   vision: patches (im2col) -> x = patches Wp^T + bp + pos -> layers -> post LN -> MAP head
 *           (k, v = xn Wkv^T + b; pooled by the probe's query; r = out_proj; r += MLP(LN(r)))
 *   text:   x = tok[ids] + pos -> layers -> final LN -> head(row T-1)
 *
 * Attention: S = q k^T / sqrt(hd) and ao = softmax(S) v as strided-batched cuBLAS products per
 * head (vision: 256 tokens), or one fused kernel for short sequences (text: 64 tokens), which
 * saves 2 H launches per layer for a one-text query.
 *
 * Images are fed in chunks of max_batch through two pinned staging buffers: the host copies the
 * next chunk into one (and an upload stream sends it) while the GPU encodes the previous one, and
 * each chunk's embeddings come back while the next one runs. Device buffers are allocated at
 * creation for max_batch items; the attention scores of as many items at a time as fit in a
 * sixteenth of the free device memory (256 MiB .. 4 GiB).
 */
#include "cuda/cuda_common.cuh"

#include "status/status_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

using namespace rsclip_cuda;

struct rsclip__cuda {
    const rsclip_model *m;
    int device;
    char name[320];
    rsclip_precision precision;
    dtype act;
    int max_batch;
    int fused_attention; /* short sequences (text) in one kernel; RSCLIP_CUDA_ATTENTION=gemm: no */
    cudaStream_t stream, upload;
    cudaEvent_t ev_up[2], ev_read[2], ev_out[2];
    gemm_ctx g;
    int g_ready;
    dtower text, vision;
    /* device activations (max_batch items, the longer tower's T tokens) */
    float *x;  /* f32 [R, D] residual stream */
    void *xn;  /* act [R, D] */
    void *qkv; /* act [R, 3D] (MAP head: k | v as [R, 2D]) */
    void *ao;  /* act [R, D] */
    void *h;   /* act [R, max(F, C*P*P)]: MLP hidden, im2col patches */
    float *S;  /* f32 [s_elems] attention scores */
    void *P;   /* act [s_elems] probabilities (== S in F32 mode) */
    size_t s_elems;
    float *pix[2];      /* f32 [B, C, S, S] */
    int32_t *ids;       /* [B, text_ctx] */
    float *r;           /* f32 [B, D] pooled / head output */
    void *pa, *pn, *ph; /* act [B, D], [B, D], [B, F] */
    /* pinned host staging */
    float *h_pix[2];
    int32_t *h_ids;
    float *h_emb[2];
};

namespace rsclip_cuda {

int cuda_fail(cudaError_t err, const char *what) {
    int code = RSCLIP_ERR_INTERNAL;
    if (err == cudaErrorMemoryAllocation)
        code = RSCLIP_ERR_NOMEM;
    else if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
             err == cudaErrorInvalidDevice)
        code = RSCLIP_ERR_NOT_FOUND;
    return rsclip__error(code, "CUDA: %s: %s (%s)", what, cudaGetErrorString(err),
                         cudaGetErrorName(err));
}

int cublas_fail(int status, const char *what) {
    const cublasStatus_t st = (cublasStatus_t)status;
    return rsclip__error(st == CUBLAS_STATUS_ALLOC_FAILED ? RSCLIP_ERR_NOMEM : RSCLIP_ERR_INTERNAL,
                         "cuBLAS: %s: %s (%d)", what, cublasGetStatusString(st), status);
}

} // namespace rsclip_cuda

namespace {

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != RSCLIP_OK) return rc_;                                                          \
    } while (0)

/* ---- the forward pass ---------------------------------------------------------------------- */

/* ao = softmax(q k^T / sqrt(hd)) v for n items, as many items per score buffer as fit. */
int self_attention(rsclip__cuda *c, int n, int T, int D, int H) {
    const size_t per_item = (size_t)H * T * T;
    const int chunk = (int)(c->s_elems / per_item);
    const size_t es = dtype_size(c->act);
    const float scale = 1.0f / sqrtf((float)(D / H));
    if (c->fused_attention && attention_small_fits(T, D, H))
        return attention_small(c->stream, c->act, c->ao, c->qkv, n, T, D, H, scale);
    for (int i0 = 0; i0 < n; i0 += chunk) {
        const int nc = n - i0 < chunk ? n - i0 : chunk;
        const char *qkv = (const char *)c->qkv + (size_t)i0 * T * 3 * D * es;
        char *ao = (char *)c->ao + (size_t)i0 * T * D * es;
        TRY(attention_scores(&c->g, nc, T, D, H, qkv, c->S, scale));
        TRY(softmax_rows(c->stream, c->act, c->P, c->S, nc * H * T, T));
        TRY(attention_values(&c->g, nc, T, D, H, qkv, c->P, ao));
    }
    return RSCLIP_OK;
}

/* One pre-LN encoder layer on c->x: [n * T, D]. */
int layer(rsclip__cuda *c, const dlayer &L, const rsclip_tower_info *ti, int n, int T) {
    const int D = ti->hidden, F = ti->intermediate, R = n * T;
    const float eps = (float)ti->layer_norm_eps;
    const dtype a = c->act;
    TRY(layernorm(c->stream, a, c->xn, c->x, L.ln1_w, L.ln1_b, R, D, eps));
    TRY(linear(&c->g, R, c->xn, D, L.qkv, c->qkv, 3 * D, a, EPI_BIAS, 0));
    TRY(self_attention(c, n, T, D, ti->heads));
    TRY(linear(&c->g, R, c->ao, D, L.o, c->x, D, DT_F32, EPI_BIAS, 1));
    TRY(layernorm(c->stream, a, c->xn, c->x, L.ln2_w, L.ln2_b, R, D, eps));
    TRY(linear(&c->g, R, c->xn, D, L.fc1, c->h, F, a, EPI_GELU_BIAS, 0));
    TRY(linear(&c->g, R, c->h, F, L.fc2, c->x, D, DT_F32, EPI_BIAS, 1));
    return RSCLIP_OK;
}

/* Final layer norm into xn (act) and, when asked, the float32 last_hidden [R, D] to the host
 * (in F32 mode xn itself; in BF16 mode the norm again, in place on x, in float32). */
int final_norm(rsclip__cuda *c, const dtower &t, const rsclip_tower_info *ti, int R,
               float *last_hidden) {
    const int D = ti->hidden;
    const float eps = (float)ti->layer_norm_eps;
    TRY(layernorm(c->stream, c->act, c->xn, c->x, t.ln_w, t.ln_b, R, D, eps));
    if (!last_hidden) return RSCLIP_OK;
    const float *src = (const float *)c->xn;
    if (c->act != DT_F32) {
        TRY(layernorm(c->stream, DT_F32, c->x, c->x, t.ln_w, t.ln_b, R, D, eps));
        src = c->x;
    }
    RC_CUDA(cudaMemcpyAsync(last_hidden, src, sizeof(float) * (size_t)R * D, cudaMemcpyDeviceToHost,
                            c->stream),
            "last_hidden to the host");
    return RSCLIP_OK;
}

/* Vision tower for n <= max_batch images already in c->pix[slot]; embeddings to c->h_emb[slot]. */
int vision_forward(rsclip__cuda *c, int slot, int n, float *last_hidden) {
    const rsclip_model *m = c->m;
    const rsclip_model_info *mi = &m->info;
    const rsclip_tower_info *ti = &mi->vision;
    const dtower &V = c->vision;
    const int S = mi->image_size, P = mi->patch_size, C = m->channels;
    const int T = mi->n_patches, D = ti->hidden, F = ti->intermediate, R = n * T;
    const int K = C * P * P;
    const dtype a = c->act;

    TRY(im2col(c->stream, a, c->h, c->pix[slot], n, C, S, P)); /* h = patches [R, K] */
    RC_CUDA(cudaEventRecord(c->ev_read[slot], c->stream), "event");
    TRY(linear(&c->g, R, c->h, K, V.patch, c->x, D, DT_F32, EPI_BIAS, 0));
    TRY(add_positions(c->stream, c->x, V.pos, R, T, D));
    for (int l = 0; l < ti->layers; l++) TRY(layer(c, V.layers[l], ti, n, T));
    TRY(final_norm(c, V, ti, R, last_hidden));

    /* MAP head */
    TRY(linear(&c->g, R, c->xn, D, V.map_kv, c->qkv, 2 * D, a, EPI_BIAS, 0)); /* k | v */
    TRY(map_pool(c->stream, a, c->pa, c->qkv, V.map_q, n, T, D, ti->heads));
    TRY(linear(&c->g, n, c->pa, D, V.map_out, c->r, D, DT_F32, EPI_BIAS, 0)); /* r */
    TRY(layernorm(c->stream, a, c->pn, c->r, V.map_ln_w, V.map_ln_b, n, D,
                  (float)ti->layer_norm_eps));
    TRY(linear(&c->g, n, c->pn, D, V.map_fc1, c->ph, F, a, EPI_GELU_BIAS, 0));
    TRY(linear(&c->g, n, c->ph, F, V.map_fc2, c->r, D, DT_F32, EPI_BIAS, 1)); /* r += MLP */
    RC_CUDA(cudaMemcpyAsync(c->h_emb[slot], c->r, sizeof(float) * (size_t)n * D,
                            cudaMemcpyDeviceToHost, c->stream),
            "embeddings to the host");
    RC_CUDA(cudaEventRecord(c->ev_out[slot], c->stream), "event");
    return RSCLIP_OK;
}

/* Text tower for n <= max_batch texts already in c->ids; embeddings to c->h_emb[0]. */
int text_forward(rsclip__cuda *c, int n, float *last_hidden) {
    const rsclip_model_info *mi = &c->m->info;
    const rsclip_tower_info *ti = &mi->text;
    const dtower &W = c->text;
    const int T = mi->text_ctx, D = ti->hidden, R = n * T;
    TRY(embed_tokens(c->stream, c->x, c->ids, W.tok, W.pos, R, T, D));
    for (int l = 0; l < ti->layers; l++) TRY(layer(c, W.layers[l], ti, n, T));
    TRY(final_norm(c, W, ti, R, last_hidden));
    /* pooled = xn[item, T - 1]: rows T*D apart, read in place by the head GEMM */
    const char *last = (const char *)c->xn + (size_t)(T - 1) * D * dtype_size(c->act);
    TRY(linear(&c->g, n, last, T * D, W.head, c->r, D, DT_F32, EPI_BIAS, 0));
    RC_CUDA(cudaMemcpyAsync(c->h_emb[0], c->r, sizeof(float) * (size_t)n * D,
                            cudaMemcpyDeviceToHost, c->stream),
            "embeddings to the host");
    return RSCLIP_OK;
}

/* ---- buffers ------------------------------------------------------------------------------- */

int dev_alloc(void **p, size_t n, size_t es, const char *what) {
    size_t bytes;
    if (rsclip__mul_size(n, es, &bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "cuda: %s: size overflows", what);
    RC_CUDA(cudaMalloc(p, bytes ? bytes : 1), what);
    return RSCLIP_OK;
}

int host_alloc(void **p, size_t n, size_t es, const char *what) {
    size_t bytes;
    if (rsclip__mul_size(n, es, &bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "cuda: %s: size overflows", what);
    RC_CUDA(cudaMallocHost(p, bytes ? bytes : 1), what);
    return RSCLIP_OK;
}

/* Every buffer for max_batch items (sizes overflow-checked; the config bounds keep them sane). */
int alloc_buffers(rsclip__cuda *c) {
    const rsclip_model *m = c->m;
    const rsclip_model_info *mi = &m->info;
    const size_t B = (size_t)c->max_batch, es = dtype_size(c->act);
    const size_t Tv = (size_t)mi->n_patches, Tt = (size_t)mi->text_ctx, T = Tv > Tt ? Tv : Tt;
    const size_t D = (size_t)mi->vision.hidden,
                 K = (size_t)m->channels * mi->patch_size * mi->patch_size;
    size_t F = (size_t)(mi->vision.intermediate > mi->text.intermediate ? mi->vision.intermediate
                                                                        : mi->text.intermediate);
    if (K > F) F = K;
    size_t R, RD, RF, px;
    if (rsclip__mul_size(B, T, &R) || rsclip__mul_size(R, D, &RD) || rsclip__mul_size(R, F, &RF) ||
        rsclip__mul_size(B, (size_t)m->channels * mi->image_size * mi->image_size, &px) ||
        RD > ((size_t)1 << 40) / 3)
        return rsclip__error(RSCLIP_ERR_NOMEM, "cuda: buffers for max_batch %d overflow",
                             c->max_batch);
    /* attention scores (S + P): one item of the larger tower at least, max_batch at most, in
     * between a sixteenth of the free device memory, clamped to 256 MiB .. 4 GiB */
    const size_t need_v = (size_t)mi->vision.heads * Tv * Tv,
                 need_t = (size_t)mi->text.heads * Tt * Tt;
    const size_t need = need_v > need_t ? need_v : need_t;
    size_t free_b = 0, total_b = 0, budget = (size_t)1 << 30;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        budget = free_b / 16;
        if (budget < ((size_t)256 << 20)) budget = (size_t)256 << 20;
        if (budget > ((size_t)4 << 30)) budget = (size_t)4 << 30;
    }
    size_t items = budget / (need * (4 + (c->act == DT_F32 ? 0 : es)));
    if (items < 1) items = 1;
    if (items > B) items = B;
    c->s_elems = items * need;

    TRY(dev_alloc((void **)&c->x, RD, 4, "activations"));
    TRY(dev_alloc(&c->xn, RD, es, "activations"));
    TRY(dev_alloc(&c->qkv, RD * 3, es, "activations"));
    TRY(dev_alloc(&c->ao, RD, es, "activations"));
    TRY(dev_alloc(&c->h, RF, es, "activations"));
    TRY(dev_alloc((void **)&c->S, c->s_elems, 4, "attention scores"));
    if (c->act == DT_F32)
        c->P = c->S; /* softmax in place */
    else
        TRY(dev_alloc(&c->P, c->s_elems, es, "attention probabilities"));
    for (int i = 0; i < 2; i++) {
        TRY(dev_alloc((void **)&c->pix[i], px, 4, "pixels"));
        TRY(host_alloc((void **)&c->h_pix[i], px, 4, "pinned pixels"));
        TRY(host_alloc((void **)&c->h_emb[i], B * D, 4, "pinned embeddings"));
    }
    TRY(dev_alloc((void **)&c->ids, B * Tt, 4, "token ids"));
    TRY(host_alloc((void **)&c->h_ids, B * Tt, 4, "pinned token ids"));
    TRY(dev_alloc((void **)&c->r, B * D, 4, "pooled"));
    TRY(dev_alloc(&c->pa, B * D, es, "pooled"));
    TRY(dev_alloc(&c->pn, B * D, es, "pooled"));
    TRY(dev_alloc(&c->ph, B * F, es, "pooled"));
    return RSCLIP_OK;
}

int setup(rsclip__cuda *c, int device, rsclip_precision precision) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "cuda:%d: no usable CUDA driver or GPU: %s",
                             device, cudaGetErrorString(err));
    if (device >= count)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "cuda:%d: no such device (%d CUDA device%s)",
                             device, count, count == 1 ? "" : "s");
    RC_CUDA(cudaSetDevice(device), "cudaSetDevice");
    cudaDeviceProp prop;
    RC_CUDA(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    /* bf16 tensor cores from Ampere (8.0) on */
    const int bf16 = precision != RSCLIP_PRECISION_F32 && prop.major >= 8;
    c->precision = bf16 ? RSCLIP_PRECISION_BF16 : RSCLIP_PRECISION_F32;
    c->act = bf16 ? DT_BF16 : DT_F32;
    snprintf(c->name, sizeof(c->name), "cuda:%d (%s, sm_%d%d)", device, prop.name, prop.major,
             prop.minor);
    const rsclip_model_info *mi = &c->m->info;
    if (sizeof(float) * ((size_t)mi->n_patches + 33) > prop.sharedMemPerBlock)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "cuda: %d vision tokens: too many for the "
                             "MAP head kernel's shared memory",
                             mi->n_patches);
    RC_CUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "stream");
    RC_CUDA(cudaStreamCreateWithFlags(&c->upload, cudaStreamNonBlocking), "stream");
    for (int i = 0; i < 2; i++) {
        RC_CUDA(cudaEventCreateWithFlags(&c->ev_up[i], cudaEventDisableTiming), "event");
        RC_CUDA(cudaEventCreateWithFlags(&c->ev_read[i], cudaEventDisableTiming), "event");
        RC_CUDA(cudaEventCreateWithFlags(&c->ev_out[i], cudaEventDisableTiming), "event");
    }
    c->g_ready = 1; /* gemm_ctx_free undoes a partial init too */
    TRY(gemm_ctx_init(&c->g, c->stream, c->act));
    return alloc_buffers(c);
}

/* After a failure: let queued work finish so that no buffer is freed or reused under it. */
int settle(rsclip__cuda *c, int rc) {
    cudaStreamSynchronize(c->upload);
    cudaStreamSynchronize(c->stream);
    return rc;
}

int images(rsclip__cuda *c, int n, const float *pixels, float *embeds, float *last_hidden) {
    const rsclip_model_info *mi = &c->m->info;
    const size_t per_img = (size_t)c->m->channels * mi->image_size * mi->image_size;
    const size_t per_hidden = (size_t)mi->n_patches * mi->vision.hidden, E = mi->embed_dim;
    int slot = 0, prev_n = 0;
    size_t prev_at = 0;
    for (int i = 0; i < n; i += c->max_batch) {
        const int nb = n - i < c->max_batch ? n - i : c->max_batch;
        /* the staging buffer's previous upload, two chunks ago, is done; then refill it */
        RC_CUDA(cudaEventSynchronize(c->ev_up[slot]), "upload");
        memcpy(c->h_pix[slot], pixels + (size_t)i * per_img, sizeof(float) * nb * per_img);
        /* the device buffer is no longer read by the chunk two back */
        RC_CUDA(cudaStreamWaitEvent(c->upload, c->ev_read[slot], 0), "upload wait");
        RC_CUDA(cudaMemcpyAsync(c->pix[slot], c->h_pix[slot], sizeof(float) * nb * per_img,
                                cudaMemcpyHostToDevice, c->upload),
                "pixels to the GPU");
        RC_CUDA(cudaEventRecord(c->ev_up[slot], c->upload), "event");
        RC_CUDA(cudaStreamWaitEvent(c->stream, c->ev_up[slot], 0), "compute wait");
        TRY(vision_forward(c, slot, nb, last_hidden ? last_hidden + (size_t)i * per_hidden : NULL));
        if (prev_n > 0) { /* the previous chunk's embeddings, while this one runs */
            RC_CUDA(cudaEventSynchronize(c->ev_out[slot ^ 1]), "encode");
            memcpy(embeds + prev_at, c->h_emb[slot ^ 1], sizeof(float) * prev_n * E);
        }
        prev_n = nb, prev_at = (size_t)i * E;
        slot ^= 1;
    }
    RC_CUDA(cudaEventSynchronize(c->ev_out[slot ^ 1]), "encode");
    memcpy(embeds + prev_at, c->h_emb[slot ^ 1], sizeof(float) * prev_n * E);
    return RSCLIP_OK;
}

int texts(rsclip__cuda *c, int n, const int32_t *ids, float *embeds, float *last_hidden) {
    const rsclip_model_info *mi = &c->m->info;
    const size_t T = (size_t)mi->text_ctx, E = mi->embed_dim;
    const size_t per_hidden = T * mi->text.hidden;
    for (int i = 0; i < n; i += c->max_batch) {
        const int nb = n - i < c->max_batch ? n - i : c->max_batch;
        memcpy(c->h_ids, ids + (size_t)i * T, sizeof(int32_t) * nb * T);
        RC_CUDA(cudaMemcpyAsync(c->ids, c->h_ids, sizeof(int32_t) * nb * T, cudaMemcpyHostToDevice,
                                c->stream),
                "token ids to the GPU");
        TRY(text_forward(c, nb, last_hidden ? last_hidden + (size_t)i * per_hidden : NULL));
        RC_CUDA(cudaStreamSynchronize(c->stream), "encode");
        memcpy(embeds + (size_t)i * E, c->h_emb[0], sizeof(float) * nb * E);
    }
    return RSCLIP_OK;
}

} // namespace

/* ---- entry points -------------------------------------------------------------------------- */

extern "C" {

int rsclip__cuda_device_count(int *n) {
    *n = 0;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError(); /* no driver / no GPU: clear the error, report none */
        return RSCLIP_OK;
    }
    *n = count;
    return RSCLIP_OK;
}

int rsclip__cuda_new(const rsclip_model *m, int device, int max_batch, rsclip_precision precision,
                     rsclip__cuda **out) {
    *out = NULL;
    const rsclip_model_info *mi = &m->info;
    if (mi->embed_dim != mi->vision.hidden || mi->embed_dim != mi->text.hidden)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "cuda: embedding size %d differs from the towers' widths %d / %d",
                             mi->embed_dim, mi->text.hidden, mi->vision.hidden);
    rsclip__cuda *c = (rsclip__cuda *)calloc(1, sizeof(*c));
    if (!c) return rsclip__error(RSCLIP_ERR_NOMEM, "cuda: out of memory");
    c->m = m;
    c->device = device;
    c->max_batch = max_batch > 0 ? max_batch : 8;
    const char *att = getenv("RSCLIP_CUDA_ATTENTION"); /* "gemm": cuBLAS products only (tests) */
    c->fused_attention = !(att && !strcmp(att, "gemm"));
    int rc = setup(c, device, precision);
    if (rc != RSCLIP_OK) {
        rsclip__cuda_free(c);
        return rc;
    }
    *out = c;
    return RSCLIP_OK;
}

void rsclip__cuda_free(rsclip__cuda *c) {
    if (!c) return;
    cudaSetDevice(c->device);
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->upload) cudaStreamSynchronize(c->upload);
    tower_free(&c->text);
    tower_free(&c->vision);
    if (c->g_ready) gemm_ctx_free(&c->g);
    void *dev[] = {c->x,   c->xn,     c->qkv,    c->ao, c->h,  c->S,  c->P == c->S ? NULL : c->P,
                   c->ids, c->pix[0], c->pix[1], c->r,  c->pa, c->pn, c->ph};
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) cudaFree(dev[i]);
    void *host[] = {c->h_pix[0], c->h_pix[1], c->h_emb[0], c->h_emb[1], c->h_ids};
    for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) cudaFreeHost(host[i]);
    for (int i = 0; i < 2; i++) {
        if (c->ev_up[i]) cudaEventDestroy(c->ev_up[i]);
        if (c->ev_read[i]) cudaEventDestroy(c->ev_read[i]);
        if (c->ev_out[i]) cudaEventDestroy(c->ev_out[i]);
    }
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->upload) cudaStreamDestroy(c->upload);
    free(c);
}

rsclip_precision rsclip__cuda_precision(const rsclip__cuda *c) {
    return c ? c->precision : RSCLIP_PRECISION_F32;
}

const char *rsclip__cuda_name(const rsclip__cuda *c) {
    return c ? c->name : "cuda";
}

int rsclip__cuda_encode_images(rsclip__cuda *c, int n, const float *pixels, float *embeds,
                               float *last_hidden) {
    RC_CUDA(cudaSetDevice(c->device), "cudaSetDevice");
    int rc = tower_upload(c->m, 1, c->act, &c->vision);
    if (rc == RSCLIP_OK) rc = images(c, n, pixels, embeds, last_hidden);
    return rc == RSCLIP_OK ? rc : settle(c, rc);
}

int rsclip__cuda_encode_texts(rsclip__cuda *c, int n, const int32_t *ids, float *embeds,
                              float *last_hidden) {
    RC_CUDA(cudaSetDevice(c->device), "cudaSetDevice");
    int rc = tower_upload(c->m, 0, c->act, &c->text);
    if (rc == RSCLIP_OK) rc = texts(c, n, ids, embeds, last_hidden);
    return rc == RSCLIP_OK ? rc : settle(c, rc);
}

} // extern "C"
