/*
 * The SigLIP towers, forward pass only, batch-first: a batch of n images (or texts) runs through
 * every layer as one [n * T, D] matrix so that each Linear is one GEMM (the packed rsclip__gemm
 * kernels, or OpenBLAS cblas_sgemm on CPUs without AVX-512F). Attention runs per (item, head)
 * (attention.c: scores kept in L1, vectorised exp), the heads and the layer-norm rows split over
 * the GEMM pool's threads: one pool owns the cores. Activations are float32.
 *
 * All activations live in one arena per encoder, carved in rsclip_encoder_new for max_batch items
 * and touched once there: a forward pass allocates nothing.
 *
 * An encoder on a CUDA device (rsclip_encoder_params.device) has no arena: it holds the CUDA
 * encoder (cuda/cuda_encoder.h), which runs this same layer sequence on the GPU, and the entry
 * points below hand it the checked arguments.
 *
 * Shapes in comments: R = n * T rows (n items in this chunk, T tokens each), D = hidden,
 * F = MLP width, H = heads, hd = D / H.
 */
#include "model/model_internal.h"

#include "cuda/cuda_encoder.h"
#include "gemm/gemm.h"
#include "model/blas_compat.h"

#include "status/status_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Stage profile (benchmark only) */

static int g_prof;
static double g_stage[RSCLIP__STAGE_N];

static double prof_now(void) {
    if (!g_prof) return 0.0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static void prof_add(int stage, double t0) {
    if (g_prof) g_stage[stage] += prof_now() - t0;
}

void rsclip__stage_profile(int on) {
    memset(g_stage, 0, sizeof(g_stage));
    g_prof = on;
}

void rsclip__stage_times(double seconds[RSCLIP__STAGE_N]) {
    memcpy(seconds, g_stage, sizeof(g_stage));
}

/* Linear weights of one tower packed for rsclip__gemm (bf16 or f32 panels), built the first time
 * the tower runs. lw[6 l + j]: q, k, v, o, fc1, fc2 of layer l. extra: vision patch embedding,
 * MAP k, v, out, fc1, fc2; text head. */
enum { PK_Q, PK_K, PK_V, PK_O, PK_FC1, PK_FC2, PK_PER_LAYER };
enum { PX_PATCH, PX_MAP_K, PX_MAP_V, PX_MAP_O, PX_MAP_FC1, PX_MAP_FC2, PX_TEXT_HEAD, PX_N };
typedef struct tower_pack {
    int ready;
    int n_layers;
    void *mem; /* one block (huge pages) holding every panel of the tower */
    rsclip__packed_w **lw;
    rsclip__packed_w *extra[PX_N];
} tower_pack;

struct rsclip_encoder {
    const rsclip_model *m;
    int max_batch;
    int n_threads;
    rsclip_precision precision; /* F32 or BF16 */
    int use_gemm;               /* 1: Linear layers through rsclip__gemm on g (packed weights);
                                   0: OpenBLAS sgemm (f32 on CPUs without AVX-512F) */
    rsclip__gemm_ctx *g;
    tower_pack text_pack, vision_pack;
    float *arena; /* 64-byte aligned, owns everything below */
    size_t arena_n;
    /* Per-row activations, rows = max_batch * max(T_text, T_vision). */
    float *x;         /* residual stream: [R, D] */
    float *xn;        /* layer-normed input of a block: [R, D] */
    float *q, *k, *v; /* attention projections: [R, D] */
    float *ao;        /* attention output, heads concatenated: [R, D] */
    float *h;         /* MLP hidden [R, F]; also the vision im2col patches [R, C*P*P] */
    float *att;       /* scores of one (item, head): [T, T] (OpenBLAS path, MAP head) */
    float *attn_tmp;  /* per-thread scratch of rsclip__attention_head: n_threads x attn_tmp_n */
    size_t attn_tmp_n;
    /* Pooled vectors, rows = max_batch. */
    float *pq;          /* MAP-head query (probe projection): [D] */
    float *pa;          /* pooled attention output / text pooled tokens: [n, D] */
    float *pn;          /* head layernorm output: [n, D] */
    float *ph;          /* head MLP hidden: [n, F] */
    rsclip__cuda *cuda; /* set: the encoder runs on this GPU (none of the above is allocated) */
};

/* ---------------------------------------------------------------------------------------------
 * Kernels */

/* gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place. */
void rsclip__gelu_tanh(float *x, size_t n) {
    const float k_beta = 0.7978845608028654f; /* sqrt(2 / pi) */
    const float k_kappa = 0.044715f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float inner = k_beta * (v + k_kappa * v * v * v);
        x[i] = 0.5f * v * (1.0f + tanhf(inner));
    }
}

/* Row-wise softmax of x: [rows, n], in place, with max subtraction. */
void rsclip__softmax_rows(float *x, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * n;
        float mx = xr[0];
        for (int i = 1; i < n; i++) mx = xr[i] > mx ? xr[i] : mx;
        float sum = 0.0f;
        for (int i = 0; i < n; i++) {
            xr[i] = expf(xr[i] - mx);
            sum += xr[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < n; i++) xr[i] *= inv;
    }
}

void rsclip__linear(float *y, const float *x, const float *w, const float *b, int rows, int in,
                    int out, int accumulate) {
    /* y: [rows, out] = (y if accumulate) + b + x [rows, in] . W^T, W: [out, in] */
    if (b) {
        for (int r = 0; r < rows; r++) {
            float *yr = y + (size_t)r * out;
            if (accumulate)
                for (int j = 0; j < out; j++) yr[j] += b[j];
            else
                memcpy(yr, b, sizeof(float) * (size_t)out);
        }
    }
    float beta = (b || accumulate) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w, in, beta, y,
                out);
}

/* y = act((acc ? y : 0) + x W^T + b) through the packed GEMM when pw is set, else OpenBLAS. */
static void lin(rsclip_encoder *e, const rsclip__packed_w *pw, float *y, const float *x,
                const float *w, const float *b, int rows, int in, int out, unsigned flags) {
    double t0 = prof_now();
    if (pw) {
        rsclip__gemm(e->g, (size_t)rows, x, (size_t)in, pw, y, (size_t)out, b, flags);
        prof_add(RSCLIP__STAGE_GEMM, t0);
        return;
    }
    rsclip__linear(y, x, w, b, rows, in, out, (flags & RSCLIP__GEMM_ACCUMULATE) != 0);
    prof_add(RSCLIP__STAGE_GEMM, t0);
    if (flags & RSCLIP__GEMM_GELU) {
        t0 = prof_now();
        rsclip__gelu_tanh(y, (size_t)rows * out);
        prof_add(RSCLIP__STAGE_GELU, t0);
    }
}

/* Part `part` of n_parts contiguous, near-equal shares of [0, n): [*lo, *hi). */
static void share(int n, int part, int n_parts, int *lo, int *hi) {
    *lo = (int)((long)n * part / n_parts);
    *hi = (int)((long)n * (part + 1) / n_parts);
}

typedef struct ln_args {
    float *out;
    const float *x, *w, *b;
    int rows, d;
    float eps;
} ln_args;

static void ln_part(void *arg, int part, int n_parts) {
    const ln_args *a = arg;
    int r0, r1;
    share(a->rows, part, n_parts, &r0, &r1);
    rsclip__layernorm(a->out + (size_t)r0 * a->d, a->x + (size_t)r0 * a->d, a->w, a->b, r1 - r0,
                      a->d, a->eps);
}

/* Rows split over the GEMM pool (a pass costs ~40 us per 64 rows: only worth it for many rows). */
static void layernorm_p(rsclip_encoder *e, float *out, const float *x, const float *w,
                        const float *b, int rows, int d, float eps) {
    double t0 = prof_now();
    ln_args a = {out, x, w, b, rows, d, eps};
    rsclip__gemm_run(e->g, rows >= 64 ? e->n_threads : 1, ln_part, &a);
    prof_add(RSCLIP__STAGE_LAYERNORM, t0);
}

static const rsclip__packed_w *layer_pw(const tower_pack *tp, int l, int j) {
    return tp && tp->ready ? tp->lw[l * PK_PER_LAYER + j] : NULL;
}
static const rsclip__packed_w *extra_pw(const tower_pack *tp, int j) {
    return tp && tp->ready ? tp->extra[j] : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Blocks */

/* Multi-head self-attention core, no mask: ao = softmax(q k^T / sqrt(hd)) v per (item, head).
 * q, k, v, ao: [n * T, D]; head hh uses columns hh*hd .. hh*hd+hd-1. With the GEMM pool the
 * (item, head) pairs are split over its threads, each with its own scratch; without it (no
 * AVX-512F: the Linear layers run on OpenBLAS's threads) two OpenBLAS GEMMs per head. */
typedef struct attn_args {
    rsclip_encoder *e;
    int n, T, D, H;
} attn_args;

static void attn_part(void *arg, int part, int n_parts) {
    const attn_args *a = arg;
    rsclip_encoder *e = a->e;
    const int hd = a->D / a->H, n_pairs = a->n * a->H;
    const float scale = 1.0f / sqrtf((float)hd);
    float *tmp = e->attn_tmp + (size_t)part * e->attn_tmp_n;
    int t0, t1;
    share(n_pairs, part, n_parts, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        const size_t off = (size_t)(t / a->H) * a->T * a->D + (size_t)(t % a->H) * hd;
        rsclip__attention_head(e->q + off, e->k + off, e->v + off, (size_t)a->D, e->ao + off,
                               (size_t)a->D, a->T, hd, scale, tmp);
    }
}

static void self_attention(rsclip_encoder *e, int n, int T, int D, int H) {
    double t0 = prof_now();
    if (e->g) {
        attn_args a = {e, n, T, D, H};
        rsclip__gemm_run(e->g, n * H < e->n_threads ? n * H : e->n_threads, attn_part, &a);
        prof_add(RSCLIP__STAGE_ATTENTION, t0);
        return;
    }
    const int hd = D / H;
    const float scale = 1.0f / sqrtf((float)hd);
    float *s = e->att; /* [T, T] */
    for (int b = 0; b < n; b++) {
        size_t off = (size_t)b * T * D;
        for (int hh = 0; hh < H; hh++) {
            const float *qh = e->q + off + (size_t)hh * hd; /* [T, hd], row stride D */
            const float *kh = e->k + off + (size_t)hh * hd;
            const float *vh = e->v + off + (size_t)hh * hd;
            float *oh = e->ao + off + (size_t)hh * hd;
            /* s = q k^T * scale: [T, T] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qh, D, kh, D,
                        0.0f, s, T);
            rsclip__softmax_rows(s, T, T);
            /* o = s v: [T, hd] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, s, T, vh, D,
                        0.0f, oh, D);
        }
    }
    prof_add(RSCLIP__STAGE_ATTENTION, t0);
}

/* One pre-LN encoder layer on e->x: [n * T, D]:
 *   x = x + out_proj(attn(LN1(x)));  x = x + fc2(gelu(fc1(LN2(x)))) */
static void encoder_layer(rsclip_encoder *e, const rsclip__layer *L, const tower_pack *tp, int l,
                          const rsclip_tower_info *ti, int n, int T) {
    const int D = ti->hidden, F = ti->intermediate, R = n * T;
    const float eps = (float)ti->layer_norm_eps;
    const unsigned acc = RSCLIP__GEMM_ACCUMULATE;

    layernorm_p(e, e->xn, e->x, L->ln1_w, L->ln1_b, R, D, eps);               /* xn: [R, D] */
    lin(e, layer_pw(tp, l, PK_Q), e->q, e->xn, L->q_w, L->q_b, R, D, D, 0);   /* q: [R, D] */
    lin(e, layer_pw(tp, l, PK_K), e->k, e->xn, L->k_w, L->k_b, R, D, D, 0);   /* k: [R, D] */
    lin(e, layer_pw(tp, l, PK_V), e->v, e->xn, L->v_w, L->v_b, R, D, D, 0);   /* v: [R, D] */
    self_attention(e, n, T, D, ti->heads);                                    /* ao: [R, D] */
    lin(e, layer_pw(tp, l, PK_O), e->x, e->ao, L->o_w, L->o_b, R, D, D, acc); /* x += ao Wo^T+bo */

    layernorm_p(e, e->xn, e->x, L->ln2_w, L->ln2_b, R, D, eps); /* xn: [R, D] */
    lin(e, layer_pw(tp, l, PK_FC1), e->h, e->xn, L->fc1_w, L->fc1_b, R, D, F,
        RSCLIP__GEMM_GELU); /* h = gelu(xn W1^T + b1): [R, F] */
    lin(e, layer_pw(tp, l, PK_FC2), e->x, e->h, L->fc2_w, L->fc2_b, R, F, D,
        acc); /* x += h W2^T + b2 */
}

/* ---------------------------------------------------------------------------------------------
 * Towers */

/* Text tower for n <= max_batch texts. ids: [n, T]; embeds: [n, D]; last_hidden: [n, T, D]. */
static void text_forward(rsclip_encoder *e, int n, const int32_t *ids, float *embeds,
                         float *last_hidden) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = &m->info.text;
    const rsclip__text_weights *W = &m->text;
    const int T = m->info.text_ctx, D = ti->hidden, R = n * T;

    /* x = token_embedding[ids] + position_embedding[t]: [R, D] */
    double t0 = prof_now();
    for (int r = 0; r < R; r++) {
        const float *te = W->tok_emb + (size_t)ids[r] * D;
        const float *pe = W->pos_emb + (size_t)(r % T) * D;
        float *xr = e->x + (size_t)r * D;
        for (int i = 0; i < D; i++) xr[i] = te[i] + pe[i];
    }
    prof_add(RSCLIP__STAGE_COPY, t0);
    for (int l = 0; l < ti->layers; l++)
        encoder_layer(e, &W->layers[l], &e->text_pack, l, ti, n, T);

    /* xn = final_layer_norm(x): [R, D] */
    layernorm_p(e, e->xn, e->x, W->ln_w, W->ln_b, R, D, (float)ti->layer_norm_eps);
    if (last_hidden) memcpy(last_hidden, e->xn, sizeof(float) * (size_t)R * D);

    /* pa = xn[b, T-1]: [n, D] (pooled at the last position, not at the first EOS) */
    for (int b = 0; b < n; b++)
        memcpy(e->pa + (size_t)b * D, e->xn + ((size_t)b * T + T - 1) * D, sizeof(float) * D);
    lin(e, extra_pw(&e->text_pack, PX_TEXT_HEAD), embeds, e->pa, W->head_w, W->head_b, n, D, D,
        0); /* embeds: [n, D] */
}

/* MAP head: attention pooling of xn: [n * T, D] with the learned probe as the only query, then
 * y = r + MLP(LN(r)) with r the attention output. embeds: [n, D]. */
static void map_head(rsclip_encoder *e, int n, int T) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = &m->info.vision;
    const rsclip__vision_weights *W = &m->vision;
    const int D = ti->hidden, F = ti->intermediate, H = ti->heads, hd = D / H, R = n * T;
    const float *wq = W->in_proj_w, *wk = wq + (size_t)D * D, *wv = wk + (size_t)D * D;
    const float *bq = W->in_proj_b, *bk = bq + D, *bv = bk + D;

    /* pq = (probe Wq^T + bq) / sqrt(hd): [D] (torch's MultiheadAttention scales q) */
    rsclip__linear(e->pq, W->probe, wq, bq, 1, D, D, 0);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < D; i++) e->pq[i] *= scale;
    const tower_pack *tp = &e->vision_pack;
    lin(e, extra_pw(tp, PX_MAP_K), e->k, e->xn, wk, bk, R, D, D, 0); /* k: [R, D] */
    lin(e, extra_pw(tp, PX_MAP_V), e->v, e->xn, wv, bv, R, D, D, 0); /* v: [R, D] */

    float *s = e->att; /* [T] */
    double t0 = prof_now();
    for (int b = 0; b < n; b++) {
        for (int hh = 0; hh < H; hh++) {
            size_t off = (size_t)b * T * D + (size_t)hh * hd;
            /* s = k_bh q_h: [T] */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, T, hd, 1.0f, e->k + off, D, e->pq + hh * hd, 1,
                        0.0f, s, 1);
            rsclip__softmax_rows(s, 1, T);
            /* pa[b]_h = v_bh^T s: [hd] */
            cblas_sgemv(CblasRowMajor, CblasTrans, T, hd, 1.0f, e->v + off, D, s, 1, 0.0f,
                        e->pa + (size_t)b * D + hh * hd, 1);
        }
    }
    prof_add(RSCLIP__STAGE_ATTENTION, t0);
    /* r = pa Wo^T + bo: [n, D], kept in pq's neighbour pn after the MLP input is formed */
    lin(e, extra_pw(tp, PX_MAP_O), e->pn, e->pa, W->out_w, W->out_b, n, D, D, 0); /* pn = r */
    memcpy(e->pa, e->pn, sizeof(float) * (size_t)n * D); /* pa = r (residual) */
    layernorm_p(e, e->pn, e->pa, W->head_ln_w, W->head_ln_b, n, D,
                (float)ti->layer_norm_eps); /* pn = LN(r) */
    lin(e, extra_pw(tp, PX_MAP_FC1), e->ph, e->pn, W->head_fc1_w, W->head_fc1_b, n, D, F,
        RSCLIP__GEMM_GELU); /* ph: [n, F] */
    lin(e, extra_pw(tp, PX_MAP_FC2), e->pa, e->ph, W->head_fc2_w, W->head_fc2_b, n, F, D,
        RSCLIP__GEMM_ACCUMULATE); /* pa = r + MLP */
}

/* Vision tower for n <= max_batch images. pixels: [n, C, S, S]; embeds: [n, D];
 * last_hidden: [n, T, D] with T = (S/P)^2. */
static void vision_forward(rsclip_encoder *e, int n, const float *pixels, float *embeds,
                           float *last_hidden) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = &m->info.vision;
    const rsclip__vision_weights *W = &m->vision;
    const int S = m->info.image_size, P = m->info.patch_size, C = m->channels;
    const int G = S / P, T = G * G, D = ti->hidden, R = n * T, K = C * P * P;

    /* im2col: h = patches [R, K], row (b, gy, gx), column (c, py, px) as the conv weight */
    double t0 = prof_now();
    for (int b = 0; b < n; b++) {
        for (int gy = 0; gy < G; gy++) {
            for (int gx = 0; gx < G; gx++) {
                float *row = e->h + ((size_t)b * T + (size_t)gy * G + gx) * K;
                for (int c = 0; c < C; c++) {
                    const float *plane = pixels + ((size_t)b * C + c) * S * S;
                    for (int py = 0; py < P; py++)
                        memcpy(row + (c * P + py) * P,
                               plane + ((size_t)gy * P + py) * S + (size_t)gx * P,
                               sizeof(float) * P);
                }
            }
        }
    }
    prof_add(RSCLIP__STAGE_COPY, t0);
    /* x = patches Wp^T + bp + position_embedding[t]: [R, D] */
    lin(e, extra_pw(&e->vision_pack, PX_PATCH), e->x, e->h, W->patch_w, W->patch_b, R, K, D, 0);
    t0 = prof_now();
    for (int r = 0; r < R; r++) {
        const float *pe = W->pos_emb + (size_t)(r % T) * D;
        float *xr = e->x + (size_t)r * D;
        for (int i = 0; i < D; i++) xr[i] += pe[i];
    }
    prof_add(RSCLIP__STAGE_COPY, t0);
    for (int l = 0; l < ti->layers; l++)
        encoder_layer(e, &W->layers[l], &e->vision_pack, l, ti, n, T);

    /* xn = post_layernorm(x): [R, D] = last_hidden_state */
    layernorm_p(e, e->xn, e->x, W->post_ln_w, W->post_ln_b, R, D, (float)ti->layer_norm_eps);
    if (last_hidden) memcpy(last_hidden, e->xn, sizeof(float) * (size_t)R * D);

    map_head(e, n, T);
    memcpy(embeds, e->pa, sizeof(float) * (size_t)n * D);
}

/* ---------------------------------------------------------------------------------------------
 * Encoder object */

rsclip_encoder_params rsclip_encoder_default_params(void) {
    rsclip_encoder_params p;
    memset(&p, 0, sizeof(p)); /* device: the CPU */
    p.max_batch = 8;
    p.n_threads = 0;
    p.precision = RSCLIP_PRECISION_AUTO;
    p.in_place = 0;
    return p;
}

int rsclip_precision_parse(const char *s, rsclip_precision *out) {
    if (!s || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "precision: NULL argument");
    if (!strcmp(s, "auto"))
        *out = RSCLIP_PRECISION_AUTO;
    else if (!strcmp(s, "f32"))
        *out = RSCLIP_PRECISION_F32;
    else if (!strcmp(s, "bf16"))
        *out = RSCLIP_PRECISION_BF16;
    else
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "precision '%s' is not one of auto, f32, bf16",
                             s);
    return RSCLIP_OK;
}

const char *rsclip_precision_name(rsclip_precision p) {
    switch (p) {
    case RSCLIP_PRECISION_AUTO:
        return "auto";
    case RSCLIP_PRECISION_F32:
        return "f32";
    case RSCLIP_PRECISION_BF16:
        return "bf16";
    }
    return "?";
}

rsclip_precision rsclip_precision_effective(rsclip_precision p) {
    /* BF16 only where the vdpbf16ps kernel runs: the portable bf16 kernel would be slower than
     * f32 */
    return p != RSCLIP_PRECISION_F32 && rsclip__gemm_cpu_has_avx512bf16() ? RSCLIP_PRECISION_BF16
                                                                          : RSCLIP_PRECISION_F32;
}

rsclip_precision rsclip_encoder_precision(const rsclip_encoder *e) {
    return e ? e->precision : RSCLIP_PRECISION_F32;
}

const char *rsclip_encoder_device_name(const rsclip_encoder *e) {
    return e && e->cuda ? rsclip__cuda_name(e->cuda) : "cpu";
}

static void tower_pack_free(tower_pack *tp) {
    if (tp->lw)
        for (int i = 0; i < tp->n_layers * PK_PER_LAYER; i++) rsclip__packed_w_free(tp->lw[i]);
    free(tp->lw);
    for (int i = 0; i < PX_N; i++) rsclip__packed_w_free(tp->extra[i]);
    free(tp->mem);
    memset(tp, 0, sizeof(*tp));
}

/* The Linear weights of one tower as packing jobs: [n, k] matrices (row stride k). */
typedef struct pack_job {
    const float *w;
    size_t n, k;
    rsclip__packed_w **out;
} pack_job;

static int tower_jobs(rsclip_encoder *e, int vision, tower_pack *tp, pack_job *jobs) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = vision ? &m->info.vision : &m->info.text;
    const rsclip__layer *L = vision ? m->vision.layers : m->text.layers;
    const size_t D = (size_t)ti->hidden, F = (size_t)ti->intermediate;
    int nj = 0;
    for (int l = 0; l < ti->layers; l++) {
        rsclip__packed_w **o = tp->lw + (size_t)l * PK_PER_LAYER;
        const float *w[PK_PER_LAYER] = {L[l].q_w, L[l].k_w,   L[l].v_w,
                                        L[l].o_w, L[l].fc1_w, L[l].fc2_w};
        const size_t nn[PK_PER_LAYER] = {D, D, D, D, F, D}, kk[PK_PER_LAYER] = {D, D, D, D, D, F};
        for (int j = 0; j < PK_PER_LAYER; j++) jobs[nj++] = (pack_job){w[j], nn[j], kk[j], &o[j]};
    }
    if (vision) {
        const rsclip__vision_weights *V = &m->vision;
        const size_t K = (size_t)m->channels * m->info.patch_size * m->info.patch_size;
        const float *wk = V->in_proj_w + D * D, *wv = wk + D * D;
        jobs[nj++] = (pack_job){V->patch_w, D, K, &tp->extra[PX_PATCH]};
        jobs[nj++] = (pack_job){wk, D, D, &tp->extra[PX_MAP_K]};
        jobs[nj++] = (pack_job){wv, D, D, &tp->extra[PX_MAP_V]};
        jobs[nj++] = (pack_job){V->out_w, D, D, &tp->extra[PX_MAP_O]};
        jobs[nj++] = (pack_job){V->head_fc1_w, F, D, &tp->extra[PX_MAP_FC1]};
        jobs[nj++] = (pack_job){V->head_fc2_w, D, F, &tp->extra[PX_MAP_FC2]};
    } else {
        jobs[nj++] = (pack_job){m->text.head_w, D, D, &tp->extra[PX_TEXT_HEAD]};
    }
    return nj;
}

/* Pack the Linear weights of one tower (vision != 0: the vision tower) the first time it runs,
 * into one huge-page block. */
static int tower_pack_build(rsclip_encoder *e, int vision) {
    tower_pack *tp = vision ? &e->vision_pack : &e->text_pack;
    if (!e->use_gemm || tp->ready) return RSCLIP_OK;
    const rsclip_tower_info *ti = vision ? &e->m->info.vision : &e->m->info.text;
    const rsclip__gemm_format fmt =
        e->precision == RSCLIP_PRECISION_BF16 ? RSCLIP__GEMM_BF16 : RSCLIP__GEMM_F32;
    const size_t n_jobs = (size_t)ti->layers * PK_PER_LAYER + PX_N;
    tp->n_layers = ti->layers;
    tp->lw = calloc((size_t)ti->layers * PK_PER_LAYER, sizeof(*tp->lw));
    pack_job *jobs = calloc(n_jobs, sizeof(*jobs));
    int rc = tp->lw && jobs ? RSCLIP_OK : RSCLIP_ERR_NOMEM;
    int nj = rc == RSCLIP_OK ? tower_jobs(e, vision, tp, jobs) : 0;
    size_t total = 0;
    for (int i = 0; i < nj && rc == RSCLIP_OK; i++) {
        const size_t b = rsclip__pack_weights_bytes(jobs[i].n, jobs[i].k, fmt);
        if (b == 0 || rsclip__add_size(total, b, &total)) rc = RSCLIP_ERR_NOMEM;
    }
    if (rc == RSCLIP_OK && !(tp->mem = rsclip__alloc_huge(total))) rc = RSCLIP_ERR_NOMEM;
    char *cur = tp->mem;
    for (int i = 0; i < nj && rc == RSCLIP_OK; i++) {
        rc = rsclip__pack_weights_at(jobs[i].w, jobs[i].n, jobs[i].k, jobs[i].k, fmt, cur,
                                     jobs[i].out);
        cur += rsclip__pack_weights_bytes(jobs[i].n, jobs[i].k, fmt);
    }
    free(jobs);
    if (rc != RSCLIP_OK) {
        tower_pack_free(tp);
        return rsclip__error(RSCLIP_ERR_NOMEM, "encoder: cannot pack the %s tower's weights",
                             vision ? "vision" : "text");
    }
    tp->ready = 1;
    return RSCLIP_OK;
}

/* An encoder that forwards to the CUDA encoder on p->device. */
static int encoder_new_cuda(const rsclip_model *m, const rsclip_encoder_params *p,
                            rsclip_encoder **out) {
    if (p->device.kind != RSCLIP_DEVICE_CUDA || p->device.index < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: unknown device (kind %d, %d)",
                             (int)p->device.kind, p->device.index);
    rsclip_encoder *e = calloc(1, sizeof(*e));
    if (!e) return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: out of memory");
    int rc = rsclip__cuda_new(m, p->device.index, p->max_batch, p->precision, &e->cuda);
    if (rc != RSCLIP_OK) {
        free(e);
        return rc;
    }
    e->m = m;
    e->max_batch = p->max_batch;
    e->n_threads = 1;
    e->precision = rsclip__cuda_precision(e->cuda);
    *out = e;
    return RSCLIP_OK;
}

static size_t round16(size_t n) {
    return (n + 15) & ~(size_t)15; /* 16 floats = 64 bytes: every buffer starts aligned */
}

int rsclip_encoder_new(const rsclip_model *m, const rsclip_encoder_params *params,
                       rsclip_encoder **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: out is NULL");
    *out = NULL;
    if (!m) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: model is NULL");
    rsclip_encoder_params p = params ? *params : rsclip_encoder_default_params();
    if (p.max_batch <= 0) p.max_batch = 8;
    if (p.max_batch > 65536)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: max_batch %d too large",
                             p.max_batch);
    if (p.n_threads < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: n_threads %d < 0", p.n_threads);
    if (p.precision != RSCLIP_PRECISION_AUTO && p.precision != RSCLIP_PRECISION_F32 &&
        p.precision != RSCLIP_PRECISION_BF16)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: unknown precision %d",
                             (int)p.precision);
    if (p.device.kind != RSCLIP_DEVICE_CPU) return encoder_new_cuda(m, &p, out);
    if (p.n_threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = nc > 0 ? (nc > 64 ? 64 : (int)nc) : 1;
    }
    if (p.n_threads > 64) p.n_threads = 64;

    const rsclip_model_info *mi = &m->info;
    const size_t B = (size_t)p.max_batch;
    const size_t Tv = (size_t)mi->n_patches, Tt = (size_t)mi->text_ctx;
    const size_t T = Tv > Tt ? Tv : Tt;
    const size_t D =
        (size_t)(mi->text.hidden > mi->vision.hidden ? mi->text.hidden : mi->vision.hidden);
    size_t F = (size_t)(mi->text.intermediate > mi->vision.intermediate ? mi->text.intermediate
                                                                        : mi->vision.intermediate);
    const size_t K = (size_t)m->channels * mi->patch_size * mi->patch_size;
    if (K > F) F = K;

    /* Sizes (floats) of each buffer, overflow-checked: the config bounds keep them modest, but a
     * huge max_batch must fail cleanly. */
    size_t rows = 0, rd = 0, ri = 0, tt = 0, bd = 0, bi = 0, total = 0;
    int bad = rsclip__mul_size(B, T, &rows) || rsclip__mul_size(rows, D, &rd) ||
              rsclip__mul_size(rows, F, &ri) || rsclip__mul_size(T, T, &tt) ||
              rsclip__mul_size(B, D, &bd) || rsclip__mul_size(B, F, &bi);
    /* per-thread attention scratch: the larger of the two towers' needs */
    size_t at1 =
        rsclip__attention_scratch_floats(mi->n_patches, mi->vision.hidden / mi->vision.heads);
    const size_t at_t =
        rsclip__attention_scratch_floats(mi->text_ctx, mi->text.hidden / mi->text.heads);
    if (at_t > at1) at1 = at_t;
    at1 = round16(at1);
    size_t at = 0;
    bad = bad || rsclip__mul_size(at1, (size_t)p.n_threads, &at);
    /* x, xn, q, k, v, ao, h, att, pq, pa, pn, ph, attn_tmp */
    const size_t sizes[13] = {rd, rd, rd, rd, rd, rd, ri, tt, D, bd, bd, bi, at};
    for (int i = 0; i < 13 && !bad; i++) bad = rsclip__add_size(total, round16(sizes[i]), &total);
    size_t bytes;
    if (bad || rsclip__mul_size(total, sizeof(float), &bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: arena size overflows (max_batch %d)",
                             p.max_batch);

    rsclip_encoder *e = calloc(1, sizeof(*e));
    if (!e) return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: out of memory");
    e->arena = rsclip__alloc_huge(bytes);
    if (!e->arena) {
        free(e);
        return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: cannot allocate %zu bytes", bytes);
    }
    memset(e->arena, 0, bytes); /* touch every page once, here, not in the first forward */
    e->m = m;
    e->max_batch = p.max_batch;
    e->n_threads = p.n_threads;
    e->arena_n = total;
    /* F32 through the packed AVX-512F kernel where it exists, else (and in place) OpenBLAS */
    e->precision = p.in_place ? RSCLIP_PRECISION_F32 : rsclip_precision_effective(p.precision);
    e->use_gemm =
        !p.in_place && (e->precision == RSCLIP_PRECISION_BF16 || rsclip__gemm_cpu_has_avx512f());
#if !defined(RSCLIP_HAVE_OPENBLAS)
    e->use_gemm = 1; /* no OpenBLAS in this build: rsclip's kernels run every Linear layer */
#endif
    if (e->use_gemm) {
        int rc = rsclip__gemm_ctx_new(p.n_threads, &e->g);
        if (rc != RSCLIP_OK) {
            free(e->arena);
            free(e);
            return rsclip__error(rc, "encoder_new: cannot start %d GEMM threads", p.n_threads);
        }
    }

    float *cur = e->arena;
    float **slots[13] = {&e->x,   &e->xn, &e->q,  &e->k,  &e->v,  &e->ao,      &e->h,
                         &e->att, &e->pq, &e->pa, &e->pn, &e->ph, &e->attn_tmp};
    e->attn_tmp_n = at1;
    for (int i = 0; i < 13; i++) {
        *slots[i] = cur;
        cur += round16(sizes[i]);
    }
    *out = e;
    return RSCLIP_OK;
}

void rsclip_encoder_free(rsclip_encoder *e) {
    if (!e) return;
    rsclip__cuda_free(e->cuda);
    tower_pack_free(&e->text_pack);
    tower_pack_free(&e->vision_pack);
    rsclip__gemm_ctx_free(e->g);
    free(e->arena);
    free(e);
}

/* One pool at a time: with the GEMM pool, OpenBLAS (attention, small products) runs on 1 thread. */
static void set_threads(const rsclip_encoder *e) {
    openblas_set_num_threads(e->use_gemm ? 1 : e->n_threads);
}

int rsclip_encode_images(rsclip_encoder *e, int n, const float *pixels, float *embeds,
                         float *last_hidden) {
    if (!e || n <= 0 || !pixels || !embeds)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encode_images: invalid arguments");
    if (!(rsclip_model_towers(e->m) & RSCLIP_MODEL_VISION))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "encode_images: the model was loaded without its vision tower");
    const rsclip_model_info *mi = &e->m->info;
    const size_t per_img = (size_t)e->m->channels * mi->image_size * mi->image_size;
    const size_t per_hidden = (size_t)mi->n_patches * mi->vision.hidden;
    if (e->cuda) return rsclip__cuda_encode_images(e->cuda, n, pixels, embeds, last_hidden);
    int rc = tower_pack_build(e, 1);
    if (rc != RSCLIP_OK) return rc;
    set_threads(e);
    for (int i = 0; i < n; i += e->max_batch) {
        int nb = n - i < e->max_batch ? n - i : e->max_batch;
        vision_forward(e, nb, pixels + (size_t)i * per_img, embeds + (size_t)i * mi->embed_dim,
                       last_hidden ? last_hidden + (size_t)i * per_hidden : NULL);
    }
    return rsclip__model_unchanged(e->m); /* the weights read were those loaded */
}

int rsclip_encode_texts(rsclip_encoder *e, int n, const int32_t *ids, float *embeds,
                        float *last_hidden) {
    if (!e || n <= 0 || !ids || !embeds)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encode_texts: invalid arguments");
    if (!(rsclip_model_towers(e->m) & RSCLIP_MODEL_TEXT))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "encode_texts: the model was loaded without its text tower");
    const rsclip_model_info *mi = &e->m->info;
    const size_t T = (size_t)mi->text_ctx;
    for (size_t i = 0; i < (size_t)n * T; i++) {
        if (ids[i] < 0 || ids[i] >= mi->vocab_size)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "encode_texts: text %zu position %zu: token id %d outside the "
                                 "vocabulary [0, %d)",
                                 i / T, i % T, (int)ids[i], mi->vocab_size);
    }
    const size_t per_hidden = T * mi->text.hidden;
    if (e->cuda) return rsclip__cuda_encode_texts(e->cuda, n, ids, embeds, last_hidden);
    int rc = tower_pack_build(e, 0);
    if (rc != RSCLIP_OK) return rc;
    set_threads(e);
    for (int i = 0; i < n; i += e->max_batch) {
        int nb = n - i < e->max_batch ? n - i : e->max_batch;
        text_forward(e, nb, ids + (size_t)i * T, embeds + (size_t)i * mi->embed_dim,
                     last_hidden ? last_hidden + (size_t)i * per_hidden : NULL);
    }
    return rsclip__model_unchanged(e->m); /* the weights read were those loaded */
}

/* ---------------------------------------------------------------------------------------------
 * Scoring */

void rsclip_l2_normalize(float *v, int n) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)v[i] * v[i];
    float norm = (float)sqrt(ss);
    for (int i = 0; i < n; i++) v[i] /= norm;
}

float rsclip_cosine(const float *a, const float *b, int n) {
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return (float)(ab / (sqrt(aa) * sqrt(bb)));
}

float rsclip_siglip_prob(float cosine, float logit_scale, float logit_bias) {
    double z = (double)cosine * exp((double)logit_scale) + (double)logit_bias;
    return (float)(1.0 / (1.0 + exp(-z)));
}

float rsclip_model_logit(const rsclip_model *m, float cosine) {
    return (float)((double)cosine * exp((double)m->info.logit_scale) + (double)m->info.logit_bias);
}

float rsclip_model_prob(const rsclip_model *m, float cosine) {
    return rsclip_siglip_prob(cosine, m->info.logit_scale, m->info.logit_bias);
}
