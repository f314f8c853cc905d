/*
 * Private declarations of the model module: the weight structs (one field per checkpoint
 * tensor, named after it), the model object, and the pieces shared between config.c, load.c,
 * preprocess.c and forward.c.
 *
 * Weight pointers point either straight into the memory-mapped checkpoint (little-endian F32
 * tensors: only 4-byte alignment is guaranteed there, and no padding after a tensor) or into one
 * 64-byte-aligned float32 buffer owned by the model (converted F16/BF16 tensors). Never written
 * after load. The pointers of a tower that was not loaded (rsclip_model_params.towers) are NULL.
 * Linear weights keep the checkpoint layout [out_features, in_features] (y = x W^T + b).
 */
#ifndef RSCLIP_MODEL_INTERNAL_H
#define RSCLIP_MODEL_INTERNAL_H

#include "rsclip/model.h"
#include "rsclip/tokenizer.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest accepted sizes (a hostile config.json must not make us allocate terabytes or
 * overflow int arithmetic; real SigLIP models are far below these). */
#define RSCLIP__MAX_HIDDEN 16384
#define RSCLIP__MAX_LAYERS 256
#define RSCLIP__MAX_VOCAB 4000000
#define RSCLIP__MAX_CTX 4096
#define RSCLIP__MAX_IMAGE 8192

/* One pre-LN transformer encoder layer (text_model.encoder.layers.{i}.* or the vision one). */
typedef struct rsclip__layer {
    const float *ln1_w, *ln1_b; /* layer_norm1: [D] */
    const float *q_w, *q_b;     /* self_attn.q_proj: [D, D], [D] */
    const float *k_w, *k_b;     /* self_attn.k_proj */
    const float *v_w, *v_b;     /* self_attn.v_proj */
    const float *o_w, *o_b;     /* self_attn.out_proj */
    const float *ln2_w, *ln2_b; /* layer_norm2: [D] */
    const float *fc1_w, *fc1_b; /* mlp.fc1: [I, D], [I] */
    const float *fc2_w, *fc2_b; /* mlp.fc2: [D, I], [D] */
} rsclip__layer;

typedef struct rsclip__text_weights {
    const float *tok_emb;         /* embeddings.token_embedding.weight: [vocab, D] */
    const float *pos_emb;         /* embeddings.position_embedding.weight: [ctx, D] */
    rsclip__layer *layers;        /* [layers] */
    const float *ln_w, *ln_b;     /* final_layer_norm: [D] */
    const float *head_w, *head_b; /* head: [D, D], [D] */
} rsclip__text_weights;

typedef struct rsclip__vision_weights {
    const float *patch_w;  /* embeddings.patch_embedding.weight: [D, 3, P, P] = [D, 3PP] */
    const float *patch_b;  /* [D] */
    const float *pos_emb;  /* embeddings.position_embedding.weight: [n_patches, D] */
    rsclip__layer *layers; /* [layers] */
    const float *post_ln_w, *post_ln_b; /* post_layernorm: [D] */
    /* MAP head (head.*) */
    const float *probe;                 /* head.probe: [1, 1, D] */
    const float *in_proj_w;             /* head.attention.in_proj_weight: [3D, D] = [Wq; Wk; Wv] */
    const float *in_proj_b;             /* head.attention.in_proj_bias: [3D] */
    const float *out_w, *out_b;         /* head.attention.out_proj: [D, D], [D] */
    const float *head_ln_w, *head_ln_b; /* head.layernorm: [D] */
    const float *head_fc1_w, *head_fc1_b; /* head.mlp.fc1: [I, D], [I] */
    const float *head_fc2_w, *head_fc2_b; /* head.mlp.fc2: [D, I], [D] */
} rsclip__vision_weights;

/* RSCLIP_OK if the checkpoint files of a mapped model were not written since load, else
 * RSCLIP_ERR_MISMATCH naming the file (checkpoint.h). Called at the end of every encode call. */
int rsclip__model_unchanged(const rsclip_model *m);

struct rsclip_model {
    rsclip_model_info info;
    int channels; /* vision num_channels (3) */
    rsclip__text_weights text;
    rsclip__vision_weights vision;
    float *weights;            /* aligned float32 buffer of the converted tensors (may be NULL) */
    size_t weights_n;          /* floats in it */
    struct rsclip__ckpt *ckpt; /* the open (mapped) checkpoint files, kept for the mapped weights */
    int towers;                /* RSCLIP_MODEL_TEXT / RSCLIP_MODEL_VISION bits loaded */
    rsclip__layer *layer_mem;  /* text layers then vision layers */
    rsclip_tokenizer *tok;
    struct rsclip__pack_cache *packs; /* encoder.c: the towers' GEMM panels, packed once per
                                         model at an encoder's first use (NULL until then) */
};

/* encoder.c: free the packed towers (rsclip_model_free). */
void rsclip__model_packs_free(rsclip_model *m);

/* config.c: read config.json into m->info (SiglipConfig defaults for missing keys) and validate
 * it; preprocessor_config.json (optional) into the preprocessing fields. Errors name the file. */
int rsclip__config_read(const char *config_path, rsclip_model *m);
int rsclip__preprocessor_read(const char *path, rsclip_model *m);
/* Defaults of SiglipConfig / SiglipImageProcessor (used for a missing file and by tests). */
void rsclip__config_defaults(rsclip_model_info *mi);

/* attention.c: layer norm rows, softmax, GELU and one attention head (AVX-512F, AVX2 or portable
 * C by the ISA ceiling, gemm/isa.h), exposed for tests (naive references live in the tests). */
void rsclip__layernorm(float *out, const float *x, const float *w, const float *b, int rows, int d,
                       float eps);
/* o = softmax(q k^T * scale) v for q, k, v: [T, hd] with row stride ld; o: [T, hd], row stride
 * ldo. scratch: rsclip__attention_scratch_floats(T, hd) floats, owned by the caller. */
void rsclip__attention_head(const float *q, const float *k, const float *v, size_t ld, float *o,
                            size_t ldo, int T, int hd, float scale, float *scratch);
size_t rsclip__attention_scratch_floats(int T, int hd);
/* The same head through the GEMM kernels (K and V^T packed as weight panels in format, an
 * rsclip__gemm_format: f32, or bf16 for the bf16 paths). scratch:
 * rsclip__attention_gemm_scratch_floats(T, hd, format) floats; gemm_scratch:
 * rsclip__gemm_scratch_bytes() bytes. Both owned by the caller. */
void rsclip__attention_head_gemm(const float *q, const float *k, const float *v, size_t ld,
                                 float *o, size_t ldo, int T, int hd, float scale, int format,
                                 float *scratch, void *gemm_scratch);
size_t rsclip__attention_gemm_scratch_floats(int T, int hd, int format);
void rsclip__gelu_tanh(float *x, size_t n);
void rsclip__softmax_rows(float *x, int rows, int n);

/* forward.c: the reference Linear (plain C, float accumulation), exposed for tests.
 * y[rows, out] (=|+=) x[rows, in] W^T + b, W: [out, in]. accumulate = 1 adds into y. */
void rsclip__linear(float *y, const float *x, const float *w, const float *b, int rows, int in,
                    int out, int accumulate);

/* Per-stage wall time of the forward passes, for the benchmark: process-wide counters, off by
 * default; rsclip__stage_profile(1) zeroes and starts them (not meant for concurrent encoders).
 * GELU is fused into the fc1 GEMM on the packed path (counted as GEMM there). */
enum {
    RSCLIP__STAGE_GEMM,
    RSCLIP__STAGE_ATTENTION,
    RSCLIP__STAGE_LAYERNORM,
    RSCLIP__STAGE_GELU,
    RSCLIP__STAGE_COPY,
    RSCLIP__STAGE_N
};
void rsclip__stage_profile(int on);
void rsclip__stage_times(double seconds[RSCLIP__STAGE_N]);

#ifdef __cplusplus
}
#endif
#endif
