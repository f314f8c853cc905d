/*
 * The SigLIP towers, forward pass only, batch-first: a batch of n images (or texts) runs through
 * every layer as one [n * T, D] matrix so that each Linear is one GEMM (rsclip__gemm on the
 * encoder's path: AMX, AVX512_BF16, AVX-512, AVX2 or portable C). Attention runs per (item, head)
 * (attention.c), the heads and the layer-norm rows split over the same process pool as the GEMMs:
 * one pool owns the cores. Activations are float32 (rounded to bf16 where a bf16 GEMM packs
 * them).
 *
 * All activations live in one arena per encoder, carved in rsclip_encoder_new for max_batch items
 * and touched once there: a forward pass allocates nothing.
 *
 * An encoder on a CUDA device (rsclip_encoder_params.device) has no arena: it holds the CUDA
 * encoder (cuda/cuda_encoder.h), which runs this same layer sequence on the GPU, and the entry
 * points (encoder.c) hand it the checked arguments.
 *
 * Shapes in comments: R = n * T rows (n items in this chunk, T tokens each), D = hidden,
 * F = MLP width, H = heads, hd = D / H.
 */
#include "base/base.h"
#include "model/encoder_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * Stage profile (benchmark only) */

static int g_prof;
static double g_stage[RSCLIP__STAGE_N];

static void prof_add(int stage, double t0) {
    if (g_prof) g_stage[stage] += rsclip__mono_s() - t0;
}

void rsclip__stage_profile(int on) {
    memset(g_stage, 0, sizeof(g_stage));
    g_prof = on;
}

void rsclip__stage_times(double seconds[RSCLIP__STAGE_N]) {
    memcpy(seconds, g_stage, sizeof(g_stage));
}

/* ---------------------------------------------------------------------------------------------
 * Kernels */

void rsclip__linear(float *y, const float *x, const float *w, const float *b, int rows, int in,
                    int out, int accumulate) {
    /* y: [rows, out] = (y if accumulate) + b + x [rows, in] . W^T, W: [out, in]; 8 partial sums
     * per dot product */
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * in;
        float *yr = y + (size_t)r * out;
        for (int o = 0; o < out; o++) {
            const float *wr = w + (size_t)o * in;
            float p[8] = {0};
            int i = 0;
            for (; i + 8 <= in; i += 8)
                for (int j = 0; j < 8; j++) p[j] += xr[i + j] * wr[i + j];
            float s = 0.0f;
            for (; i < in; i++) s += xr[i] * wr[i];
            s += ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
            if (b) s += b[o];
            yr[o] = accumulate ? yr[o] + s : s;
        }
    }
}

/* y = act((acc ? y : 0) + x W^T + b) on the encoder's GEMM path. */
static void lin(rsclip_encoder *e, const rsclip__packed_w *pw, float *y, const float *x,
                const float *b, int rows, int in, int out, unsigned flags) {
    const double t0 = rsclip__mono_s();
    rsclip__gemm(e->g, (size_t)rows, x, (size_t)in, pw, y, (size_t)out, b, flags);
    prof_add(RSCLIP__STAGE_GEMM, t0);
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

static void ln_part(void *arg, int part, int n_parts, void *scratch) {
    (void)scratch;
    const ln_args *a = arg;
    int r0, r1;
    share(a->rows, part, n_parts, &r0, &r1);
    rsclip__layernorm(a->out + (size_t)r0 * a->d, a->x + (size_t)r0 * a->d, a->w, a->b, r1 - r0,
                      a->d, a->eps);
}

/* Rows split over the GEMM pool (a pass costs ~40 us per 64 rows: only worth it for many rows). */
static void layernorm_p(rsclip_encoder *e, float *out, const float *x, const float *w,
                        const float *b, int rows, int d, float eps) {
    double t0 = rsclip__mono_s();
    ln_args a = {out, x, w, b, rows, d, eps};
    rsclip__gemm_run(e->g, rows >= 64 ? e->n_threads : 1, ln_part, &a);
    prof_add(RSCLIP__STAGE_LAYERNORM, t0);
}

static const rsclip__packed_w *layer_pw(const tower_pack *tp, int l, int j) {
    return tp->lw[l * PK_PER_LAYER + j];
}

/* ---------------------------------------------------------------------------------------------
 * Blocks */

/* Multi-head self-attention core, no mask: ao = softmax(q k^T / sqrt(hd)) v per (item, head).
 * q, k, v, ao: [n * T, D]; head hh uses columns hh*hd .. hh*hd+hd-1. The (item, head) pairs are
 * split over the pool, each part with its own scratch. */
typedef struct attn_args {
    rsclip_encoder *e;
    int n, T, D, H;
} attn_args;

static void attn_part(void *arg, int part, int n_parts, void *scratch) {
    const attn_args *a = arg;
    rsclip_encoder *e = a->e;
    const int hd = a->D / a->H, n_pairs = a->n * a->H;
    const float scale = 1.0f / sqrtf((float)hd);
    float *tmp = e->attn_tmp + (size_t)part * e->attn_tmp_n;
    const int format = e->attn == ATTN_GEMM_BF16 ? RSCLIP__GEMM_BF16 : RSCLIP__GEMM_F32;
    int t0, t1;
    share(n_pairs, part, n_parts, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        const size_t off = (size_t)(t / a->H) * a->T * a->D + (size_t)(t % a->H) * hd;
        if (e->attn == ATTN_KERNEL)
            rsclip__attention_head(e->q + off, e->k + off, e->v + off, (size_t)a->D, e->ao + off,
                                   (size_t)a->D, a->T, hd, scale, tmp);
        else
            rsclip__attention_head_gemm(e->q + off, e->k + off, e->v + off, (size_t)a->D,
                                        e->ao + off, (size_t)a->D, a->T, hd, scale, format, tmp,
                                        scratch);
    }
}

static void self_attention(rsclip_encoder *e, int n, int T, int D, int H) {
    const double t0 = rsclip__mono_s();
    attn_args a = {e, n, T, D, H};
    rsclip__gemm_run(e->g, n * H < e->n_threads ? n * H : e->n_threads, attn_part, &a);
    prof_add(RSCLIP__STAGE_ATTENTION, t0);
}
/* One pre-LN encoder layer on e->x: [n * T, D]:
 *   x = x + out_proj(attn(LN1(x)));  x = x + fc2(gelu(fc1(LN2(x)))) */
static void encoder_layer(rsclip_encoder *e, const rsclip__layer *L, const tower_pack *tp, int l,
                          const rsclip_tower_info *ti, int n, int T) {
    const int D = ti->hidden, F = ti->intermediate, R = n * T;
    const float eps = (float)ti->layer_norm_eps;
    const unsigned acc = RSCLIP__GEMM_ACCUMULATE;

    layernorm_p(e, e->xn, e->x, L->ln1_w, L->ln1_b, R, D, eps);       /* xn: [R, D] */
    lin(e, layer_pw(tp, l, PK_Q), e->q, e->xn, L->q_b, R, D, D, 0);   /* q: [R, D] */
    lin(e, layer_pw(tp, l, PK_K), e->k, e->xn, L->k_b, R, D, D, 0);   /* k: [R, D] */
    lin(e, layer_pw(tp, l, PK_V), e->v, e->xn, L->v_b, R, D, D, 0);   /* v: [R, D] */
    self_attention(e, n, T, D, ti->heads);                            /* ao: [R, D] */
    lin(e, layer_pw(tp, l, PK_O), e->x, e->ao, L->o_b, R, D, D, acc); /* x += ao Wo^T+bo */

    layernorm_p(e, e->xn, e->x, L->ln2_w, L->ln2_b, R, D, eps); /* xn: [R, D] */
    lin(e, layer_pw(tp, l, PK_FC1), e->h, e->xn, L->fc1_b, R, D, F,
        RSCLIP__GEMM_GELU); /* h = gelu(xn W1^T + b1): [R, F] */
    lin(e, layer_pw(tp, l, PK_FC2), e->x, e->h, L->fc2_b, R, F, D, acc); /* x += h W2^T + b2 */
}

/* ---------------------------------------------------------------------------------------------
 * Towers */

/* Text tower for n <= max_batch texts. ids: [n, T]; embeds: [n, D]; last_hidden: [n, T, D]. */
void rsclip__text_forward(rsclip_encoder *e, int n, const int32_t *ids, float *embeds,
                          float *last_hidden) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = &m->info.text;
    const rsclip__text_weights *W = &m->text;
    const int T = m->info.text_ctx, D = ti->hidden, R = n * T;

    /* x = token_embedding[ids] + position_embedding[t]: [R, D] */
    double t0 = rsclip__mono_s();
    for (int r = 0; r < R; r++) {
        const float *te = W->tok_emb + (size_t)ids[r] * D;
        const float *pe = W->pos_emb + (size_t)(r % T) * D;
        float *xr = e->x + (size_t)r * D;
        for (int i = 0; i < D; i++) xr[i] = te[i] + pe[i];
    }
    prof_add(RSCLIP__STAGE_COPY, t0);
    for (int l = 0; l < ti->layers; l++) encoder_layer(e, &W->layers[l], e->text_pack, l, ti, n, T);

    /* xn = final_layer_norm(x): [R, D] */
    layernorm_p(e, e->xn, e->x, W->ln_w, W->ln_b, R, D, (float)ti->layer_norm_eps);
    if (last_hidden) memcpy(last_hidden, e->xn, sizeof(float) * (size_t)R * D);

    /* pa = xn[b, T-1]: [n, D] (pooled at the last position, not at the first EOS) */
    for (int b = 0; b < n; b++)
        memcpy(e->pa + (size_t)b * D, e->xn + ((size_t)b * T + T - 1) * D, sizeof(float) * D);
    lin(e, e->text_pack->extra[PX_TEXT_HEAD], embeds, e->pa, W->head_b, n, D, D,
        0); /* embeds: [n, D] */
}

/* MAP head: attention pooling of xn: [n * T, D] with the learned probe as the only query (its
 * projection pq, scaled by 1/sqrt(hd), is computed once with the packed tower), then
 * y = r + MLP(LN(r)) with r the attention output. embeds: [n, D]. */
typedef struct pool_args {
    rsclip_encoder *e;
    int n, T, D, H;
} pool_args;

static void pool_part(void *arg, int part, int n_parts, void *scratch) {
    (void)scratch;
    const pool_args *a = arg;
    rsclip_encoder *e = a->e;
    const int T = a->T, D = a->D, hd = D / a->H;
    float *s = e->attn_tmp + (size_t)part * e->attn_tmp_n; /* [T] */
    int t0, t1;
    share(a->n * a->H, part, n_parts, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        const int b = t / a->H, hh = t % a->H;
        const size_t off = (size_t)b * T * D + (size_t)hh * hd;
        const float *q = e->pq + (size_t)hh * hd;
        for (int j = 0; j < T; j++) { /* s = k_bh q_h: [T] */
            const float *kr = e->k + off + (size_t)j * D;
            float acc = 0.0f;
            for (int d = 0; d < hd; d++) acc += kr[d] * q[d];
            s[j] = acc;
        }
        rsclip__softmax_rows(s, 1, T);
        float *o = e->pa + (size_t)b * D + (size_t)hh * hd; /* pa[b]_h = v_bh^T s: [hd] */
        for (int d = 0; d < hd; d++) o[d] = 0.0f;
        for (int j = 0; j < T; j++) {
            const float *vr = e->v + off + (size_t)j * D;
            for (int d = 0; d < hd; d++) o[d] += s[j] * vr[d];
        }
    }
}

static void map_head(rsclip_encoder *e, int n, int T) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = &m->info.vision;
    const rsclip__vision_weights *W = &m->vision;
    const int D = ti->hidden, F = ti->intermediate, H = ti->heads, R = n * T;
    const float *bk = W->in_proj_b + D, *bv = bk + D;
    const tower_pack *tp = e->vision_pack;
    lin(e, tp->extra[PX_MAP_K], e->k, e->xn, bk, R, D, D, 0); /* k: [R, D] */
    lin(e, tp->extra[PX_MAP_V], e->v, e->xn, bv, R, D, D, 0); /* v: [R, D] */
    const double t0 = rsclip__mono_s();
    pool_args a = {e, n, T, D, H};
    rsclip__gemm_run(e->g, n * H < e->n_threads ? n * H : e->n_threads, pool_part, &a);
    prof_add(RSCLIP__STAGE_ATTENTION, t0);
    lin(e, tp->extra[PX_MAP_O], e->pn, e->pa, W->out_b, n, D, D, 0); /* pn = r: [n, D] */
    memcpy(e->pa, e->pn, sizeof(float) * (size_t)n * D);             /* pa = r (residual) */
    layernorm_p(e, e->pn, e->pa, W->head_ln_w, W->head_ln_b, n, D,
                (float)ti->layer_norm_eps); /* pn = LN(r) */
    lin(e, tp->extra[PX_MAP_FC1], e->ph, e->pn, W->head_fc1_b, n, D, F,
        RSCLIP__GEMM_GELU); /* ph: [n, F] */
    lin(e, tp->extra[PX_MAP_FC2], e->pa, e->ph, W->head_fc2_b, n, F, D,
        RSCLIP__GEMM_ACCUMULATE); /* pa = r + MLP */
}

/* Vision tower for n <= max_batch images. pixels: [n, C, S, S]; embeds: [n, D];
 * last_hidden: [n, T, D] with T = (S/P)^2. */
void rsclip__vision_forward(rsclip_encoder *e, int n, const float *pixels, float *embeds,
                            float *last_hidden) {
    const rsclip_model *m = e->m;
    const rsclip_tower_info *ti = &m->info.vision;
    const rsclip__vision_weights *W = &m->vision;
    const int S = m->info.image_size, P = m->info.patch_size, C = m->channels;
    const int G = S / P, T = G * G, D = ti->hidden, R = n * T, K = C * P * P;

    /* im2col: h = patches [R, K], row (b, gy, gx), column (c, py, px) as the conv weight */
    double t0 = rsclip__mono_s();
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
    lin(e, e->vision_pack->extra[PX_PATCH], e->x, e->h, W->patch_b, R, K, D, 0);
    t0 = rsclip__mono_s();
    for (int r = 0; r < R; r++) {
        const float *pe = W->pos_emb + (size_t)(r % T) * D;
        float *xr = e->x + (size_t)r * D;
        for (int i = 0; i < D; i++) xr[i] += pe[i];
    }
    prof_add(RSCLIP__STAGE_COPY, t0);
    for (int l = 0; l < ti->layers; l++)
        encoder_layer(e, &W->layers[l], e->vision_pack, l, ti, n, T);

    /* xn = post_layernorm(x): [R, D] = last_hidden_state */
    layernorm_p(e, e->xn, e->x, W->post_ln_w, W->post_ln_b, R, D, (float)ti->layer_norm_eps);
    if (last_hidden) memcpy(last_hidden, e->xn, sizeof(float) * (size_t)R * D);

    map_head(e, n, T);
    memcpy(embeds, e->pa, sizeof(float) * (size_t)n * D);
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
