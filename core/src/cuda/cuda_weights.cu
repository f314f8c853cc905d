/*
 * Uploading a tower's weights from the rsclip_model structs (the CPU encoder's own weights) into
 * one device allocation, once, at the tower's first use. Linear weights in the activation type
 * (bfloat16 rounded to nearest even on the host, as the CPU bf16 packer does, or float32); each
 * bias in the type of its GEMM's output (bf16 outputs take bf16 biases: cuBLASLt's rule);
 * embeddings, layer norms and the MAP probe query in float32.
 *
 * The same walk over the tensors runs twice: once to size the allocation (no copies), once to
 * copy. q, k, v projections are concatenated into one [3D, D] weight (one GEMM per layer); the MAP
 * head's query, which depends on the weights only, is computed here in double precision.
 */
#include "cuda/cuda_common.cuh"

#include "gemm/gemm.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

namespace rsclip_cuda {

namespace {

/* An upload cursor: sizing pass (base == NULL) or copy pass. */
struct cursor {
    char *base;
    size_t off;
    uint16_t *stage; /* bf16 conversion buffer of stage_n values */
    size_t stage_n;
    int rc;
};

size_t round256(size_t n) {
    return (n + 255) & ~(size_t)255;
}

/* Copy srcs[0..count) (n floats each, contiguous in the result) as type t; the device address. */
const void *put_cat(cursor *c, dtype t, const float *const *srcs, int count, size_t n) {
    const size_t es = dtype_size(t), bytes = (size_t)count * n * es;
    char *dst = c->base ? c->base + c->off : NULL;
    c->off += round256(bytes);
    if (!c->base || c->rc != RSCLIP_OK) return dst;
    for (int i = 0; i < count && c->rc == RSCLIP_OK; i++) {
        const void *src = srcs[i];
        if (t == DT_BF16) {
            if (n > c->stage_n) {
                free(c->stage);
                c->stage = (uint16_t *)malloc(n * sizeof(uint16_t));
                c->stage_n = c->stage ? n : 0;
                if (!c->stage) {
                    c->rc = rsclip__error(RSCLIP_ERR_NOMEM, "cuda: out of host memory");
                    return dst;
                }
            }
            for (size_t j = 0; j < n; j++) c->stage[j] = rsclip__f32_to_bf16(srcs[i][j]);
            src = c->stage;
        }
        cudaError_t err = cudaMemcpy(dst + (size_t)i * n * es, src, n * es, cudaMemcpyHostToDevice);
        if (err != cudaSuccess) c->rc = cuda_fail(err, "uploading weights");
    }
    return dst;
}

const void *put(cursor *c, dtype t, const float *src, size_t n) {
    return put_cat(c, t, &src, 1, n);
}
const float *put_f32(cursor *c, const float *src, size_t n) {
    return (const float *)put_cat(c, DT_F32, &src, 1, n);
}

/* A Linear layer [n, k]: weight as act, bias as out_t. */
dlinear put_linear(cursor *c, dtype act, dtype out_t, const float *w, const float *b, int n,
                   int k) {
    dlinear L;
    L.w = put(c, act, w, (size_t)n * k);
    L.b = put(c, out_t, b, (size_t)n);
    L.bias_t = out_t;
    L.n = n, L.k = k;
    return L;
}

void put_layers(cursor *c, dtype act, const rsclip__layer *src, int n_layers,
                const rsclip_tower_info *ti, dlayer *out) {
    const int D = ti->hidden, F = ti->intermediate;
    for (int l = 0; l < n_layers; l++) {
        const rsclip__layer *L = &src[l];
        dlayer *d = &out[l];
        d->ln1_w = put_f32(c, L->ln1_w, D), d->ln1_b = put_f32(c, L->ln1_b, D);
        d->ln2_w = put_f32(c, L->ln2_w, D), d->ln2_b = put_f32(c, L->ln2_b, D);
        const float *w3[3] = {L->q_w, L->k_w, L->v_w}, *b3[3] = {L->q_b, L->k_b, L->v_b};
        d->qkv.w = put_cat(c, act, w3, 3, (size_t)D * D);
        d->qkv.b = put_cat(c, act, b3, 3, (size_t)D);
        d->qkv.bias_t = act, d->qkv.n = 3 * D, d->qkv.k = D;
        d->o = put_linear(c, act, DT_F32, L->o_w, L->o_b, D, D);
        d->fc1 = put_linear(c, act, act, L->fc1_w, L->fc1_b, F, D);
        d->fc2 = put_linear(c, act, DT_F32, L->fc2_w, L->fc2_b, D, F);
    }
}

/* (probe Wq^T + bq) / sqrt(hd) in double, rounded once: the CPU's pq to float rounding. */
int map_query(const rsclip_model *m, float *q) {
    const rsclip__vision_weights *V = &m->vision;
    const int D = m->info.vision.hidden, hd = D / m->info.vision.heads;
    const double scale = 1.0 / sqrt((double)hd);
    for (int i = 0; i < D; i++) {
        double s = V->in_proj_b[i];
        const float *w = V->in_proj_w + (size_t)i * D;
        for (int j = 0; j < D; j++) s += (double)V->probe[j] * w[j];
        q[i] = (float)(s * scale);
    }
    return RSCLIP_OK;
}

void walk(const rsclip_model *m, int vision, dtype act, const float *map_q, cursor *c, dtower *t) {
    const rsclip_model_info *mi = &m->info;
    if (!vision) {
        const rsclip__text_weights *W = &m->text;
        const int D = mi->text.hidden;
        t->tok = put_f32(c, W->tok_emb, (size_t)mi->vocab_size * D);
        t->pos = put_f32(c, W->pos_emb, (size_t)mi->text_ctx * D);
        put_layers(c, act, W->layers, mi->text.layers, &mi->text, t->layers);
        t->ln_w = put_f32(c, W->ln_w, D), t->ln_b = put_f32(c, W->ln_b, D);
        t->head = put_linear(c, act, DT_F32, W->head_w, W->head_b, D, D);
        return;
    }
    const rsclip__vision_weights *W = &m->vision;
    const int D = mi->vision.hidden, F = mi->vision.intermediate;
    const int K = m->channels * mi->patch_size * mi->patch_size;
    t->patch = put_linear(c, act, DT_F32, W->patch_w, W->patch_b, D, K);
    t->pos = put_f32(c, W->pos_emb, (size_t)mi->n_patches * D);
    put_layers(c, act, W->layers, mi->vision.layers, &mi->vision, t->layers);
    t->ln_w = put_f32(c, W->post_ln_w, D), t->ln_b = put_f32(c, W->post_ln_b, D);
    t->map_q = put_f32(c, map_q, D);
    t->map_kv = put_linear(c, act, act, W->in_proj_w + (size_t)D * D, W->in_proj_b + D, 2 * D, D);
    t->map_out = put_linear(c, act, DT_F32, W->out_w, W->out_b, D, D);
    t->map_ln_w = put_f32(c, W->head_ln_w, D), t->map_ln_b = put_f32(c, W->head_ln_b, D);
    t->map_fc1 = put_linear(c, act, act, W->head_fc1_w, W->head_fc1_b, F, D);
    t->map_fc2 = put_linear(c, act, DT_F32, W->head_fc2_w, W->head_fc2_b, D, F);
}

} // namespace

int tower_upload(const rsclip_model *m, int vision, dtype act, dtower *t) {
    if (t->ready) return RSCLIP_OK;
    const rsclip_tower_info *ti = vision ? &m->info.vision : &m->info.text;
    memset(t, 0, sizeof(*t));
    t->n_layers = ti->layers;
    t->layers = (dlayer *)calloc((size_t)ti->layers, sizeof(dlayer));
    float *map_q = vision ? (float *)calloc((size_t)ti->hidden, sizeof(float)) : NULL;
    if (!t->layers || (vision && !map_q)) {
        free(map_q);
        tower_free(t);
        return rsclip__error(RSCLIP_ERR_NOMEM, "cuda: out of host memory");
    }
    if (vision) map_query(m, map_q);
    cursor c;
    memset(&c, 0, sizeof(c));
    walk(m, vision, act, map_q, &c, t); /* sizing */
    const size_t total = c.off;
    cudaError_t err = cudaMalloc(&t->mem, total);
    if (err != cudaSuccess) {
        free(map_q);
        tower_free(t);
        return cuda_fail(err, vision ? "vision tower weights" : "text tower weights");
    }
    c.base = (char *)t->mem;
    c.off = 0;
    walk(m, vision, act, map_q, &c, t); /* copies */
    free(c.stage);
    free(map_q);
    if (c.rc != RSCLIP_OK) {
        tower_free(t);
        return c.rc;
    }
    t->ready = 1;
    return RSCLIP_OK;
}

void tower_free(dtower *t) {
    cudaFree(t->mem);
    free(t->layers);
    memset(t, 0, sizeof(*t));
}

} // namespace rsclip_cuda
