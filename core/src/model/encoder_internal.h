/*
 * Private to the model module: the encoder object (encoder.c builds it, forward.c runs the towers
 * on it).
 */
#ifndef RSCLIP_ENCODER_INTERNAL_H
#define RSCLIP_ENCODER_INTERNAL_H

#include "gemm/gemm.h"
#include "gemm/isa.h"
#include "cuda/cuda_encoder.h"
#include "model/model_internal.h"

#include <stddef.h>
#include <stdint.h>

/* Linear weights of one tower for rsclip__gemm (bf16, int8 or f32 panels, kept by the model and
 * shared by its encoders; or direct f32 handles for an in-place encoder), built the first time
 * the tower runs. lw[6 l + j]: q, k, v, o, fc1, fc2 of
 * layer l. extra: vision patch embedding, MAP k, v, out, fc1, fc2; text head. */
enum { PK_Q, PK_K, PK_V, PK_O, PK_FC1, PK_FC2, PK_PER_LAYER };
enum { PX_PATCH, PX_MAP_K, PX_MAP_V, PX_MAP_O, PX_MAP_FC1, PX_MAP_FC2, PX_TEXT_HEAD, PX_N };
typedef struct tower_pack {
    int ready;
    int n_layers;
    void *mem; /* one block (huge pages) holding every panel of the tower (NULL in place) */
    rsclip__packed_w **lw;
    rsclip__packed_w *extra[PX_N];
} tower_pack;

/* How an encoder runs self-attention (per item and head). */
enum {
    ATTN_KERNEL = 0,   /* rsclip__attention_head: f32, scores in L1 (AVX-512F or portable C) */
    ATTN_GEMM_F32 = 1, /* rsclip__attention_head_gemm, f32 panels (AVX2) */
    ATTN_GEMM_BF16 = 2 /* rsclip__attention_head_gemm, bf16 panels (AVX512_BF16, AMX) */
};

struct rsclip_encoder {
    const rsclip_model *m;
    int max_batch;
    int n_threads;
    rsclip_precision precision; /* F32, BF16 or INT8 */
    rsclip__isa isa;            /* the path of its GEMMs */
    const char *isa_reason;     /* why (static string) */
    int in_place;               /* Linear weights read where they lie (direct f32 panels) */
    int attn;                   /* ATTN_* */
    rsclip__gemm_ctx *g;        /* per-part scratch; the threads are the process pool's */
    const tower_pack *text_pack, *vision_pack; /* NULL until the tower's first use: the model's
                                                  shared packs, or own_* in place */
    tower_pack own_text, own_vision;
    float *arena; /* 64-byte aligned, owns everything below */
    size_t arena_n;
    /* Per-row activations, rows = max_batch * max(T_text, T_vision). */
    float *x;         /* residual stream: [R, D] */
    float *xn;        /* layer-normed input of a block: [R, D] */
    float *q, *k, *v; /* attention projections: [R, D] */
    float *ao;        /* attention output, heads concatenated: [R, D] */
    float *h;         /* MLP hidden [R, F]; also the vision im2col patches [R, C*P*P] */
    float *attn_tmp;  /* per-part scratch of the attention kernels: n_threads x attn_tmp_n */
    size_t attn_tmp_n;
    /* Pooled vectors, rows = max_batch. */
    float *pq; /* MAP-head query (probe projection, scaled), computed when the tower is packed */
    float *pa; /* pooled attention output / text pooled tokens: [n, D] */
    float *pn; /* head layernorm output: [n, D] */
    float *ph; /* head MLP hidden: [n, F] */
    rsclip__cuda *cuda; /* set: the encoder runs on this GPU (none of the above is allocated) */
};

/* forward.c: one chunk of n <= max_batch inputs through a tower (packed weights ready).
 * Text: ids [n, T] -> embeds [n, D], last_hidden [n, T, D] (may be NULL). Vision: pixels
 * [n, C, S, S] -> embeds [n, D], last_hidden [n, T, D] (may be NULL). */
void rsclip__text_forward(rsclip_encoder *e, int n, const int32_t *ids, float *embeds,
                          float *last_hidden);
void rsclip__vision_forward(rsclip_encoder *e, int n, const float *pixels, float *embeds,
                            float *last_hidden);

#endif
