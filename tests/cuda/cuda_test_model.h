/* A random SigLIP checkpoint folder with chosen widths (both towers: hidden D, MLP F, L layers,
 * H heads; 256 x 256 images in 16 x 16 patches, 64 text positions, the siglip-tiny tokenizer):
 * weights ~ U(-0.05, 0.05) (LayerNorm weights 1 + that), F32, from a fixed seed. For checks that
 * need real head widths (64) rather than the fixtures' 8. */
#ifndef RSCLIP_CUDA_TEST_MODEL_H
#define RSCLIP_CUDA_TEST_MODEL_H

#include "model_test_util.h"

typedef struct ctm_list {
    mt_tensor t[512];
    char names[512][96];
    float *data[512];
    int n;
    uint64_t rng;
} ctm_list;

static float ctm_rand(ctm_list *l) {
    l->rng = l->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(l->rng >> 11) / 9007199254740992.0) * 0.1f - 0.05f;
}

/* kind: 0 random, 1 LayerNorm weight (1 + random) */
static void ctm_add(ctm_list *l, const char *name, int kind, int nd, int64_t a, int64_t b,
                    int64_t c, int64_t d) {
    REQUIRE(l->n < 512);
    mt_tensor *t = &l->t[l->n];
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    const int64_t sh[4] = {a, b, c, d};
    size_t n = 1;
    for (int i = 0; i < nd; i++) t->shape[i] = sh[i], n *= (size_t)sh[i];
    float *v = malloc(sizeof(float) * n);
    REQUIRE(v);
    for (size_t i = 0; i < n; i++) v[i] = (kind == 1 ? 1.0f : 0.0f) + ctm_rand(l);
    l->data[l->n] = v;
    t->name = l->names[l->n];
    t->dtype = "F32";
    t->nd = nd;
    t->data = v;
    t->nbytes = sizeof(float) * n;
    l->n++;
}

static void ctm_layers(ctm_list *l, const char *tower, int L, int D, int F) {
    char nm[96];
    const char *proj[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int i = 0; i < L; i++) {
        const char *ln[2] = {"layer_norm1", "layer_norm2"};
        for (int k = 0; k < 2; k++) {
            snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.%s.weight", tower, i, ln[k]);
            ctm_add(l, nm, 1, 1, D, 0, 0, 0);
            snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.%s.bias", tower, i, ln[k]);
            ctm_add(l, nm, 0, 1, D, 0, 0, 0);
        }
        for (int k = 0; k < 4; k++) {
            snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.self_attn.%s.weight", tower, i, proj[k]);
            ctm_add(l, nm, 0, 2, D, D, 0, 0);
            snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.self_attn.%s.bias", tower, i, proj[k]);
            ctm_add(l, nm, 0, 1, D, 0, 0, 0);
        }
        snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.mlp.fc1.weight", tower, i);
        ctm_add(l, nm, 0, 2, F, D, 0, 0);
        snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.mlp.fc1.bias", tower, i);
        ctm_add(l, nm, 0, 1, F, 0, 0, 0);
        snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.mlp.fc2.weight", tower, i);
        ctm_add(l, nm, 0, 2, D, F, 0, 0);
        snprintf(nm, sizeof(nm), "%s.encoder.layers.%d.mlp.fc2.bias", tower, i);
        ctm_add(l, nm, 0, 1, D, 0, 0, 0);
    }
}

static void ctm_write(const char *dir, int D, int F, int L, int H) {
    ctm_list *l = calloc(1, sizeof(*l));
    REQUIRE(l);
    l->rng = 0x9E3779B97F4A7C15ULL;
    const int V = 1000, ctx = 64, G = 16, P = 16;
    ctm_add(l, "logit_scale", 0, 1, 1, 0, 0, 0);
    ctm_add(l, "logit_bias", 0, 1, 1, 0, 0, 0);
    ctm_add(l, "text_model.embeddings.token_embedding.weight", 0, 2, V, D, 0, 0);
    ctm_add(l, "text_model.embeddings.position_embedding.weight", 0, 2, ctx, D, 0, 0);
    ctm_layers(l, "text_model", L, D, F);
    ctm_add(l, "text_model.final_layer_norm.weight", 1, 1, D, 0, 0, 0);
    ctm_add(l, "text_model.final_layer_norm.bias", 0, 1, D, 0, 0, 0);
    ctm_add(l, "text_model.head.weight", 0, 2, D, D, 0, 0);
    ctm_add(l, "text_model.head.bias", 0, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.embeddings.patch_embedding.weight", 0, 4, D, 3, P, P);
    ctm_add(l, "vision_model.embeddings.patch_embedding.bias", 0, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.embeddings.position_embedding.weight", 0, 2, G * G, D, 0, 0);
    ctm_layers(l, "vision_model", L, D, F);
    ctm_add(l, "vision_model.post_layernorm.weight", 1, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.post_layernorm.bias", 0, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.head.probe", 0, 3, 1, 1, D, 0);
    ctm_add(l, "vision_model.head.attention.in_proj_weight", 0, 2, 3 * D, D, 0, 0);
    ctm_add(l, "vision_model.head.attention.in_proj_bias", 0, 1, 3 * D, 0, 0, 0);
    ctm_add(l, "vision_model.head.attention.out_proj.weight", 0, 2, D, D, 0, 0);
    ctm_add(l, "vision_model.head.attention.out_proj.bias", 0, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.head.layernorm.weight", 1, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.head.layernorm.bias", 0, 1, D, 0, 0, 0);
    ctm_add(l, "vision_model.head.mlp.fc1.weight", 0, 2, F, D, 0, 0);
    ctm_add(l, "vision_model.head.mlp.fc1.bias", 0, 1, F, 0, 0, 0);
    ctm_add(l, "vision_model.head.mlp.fc2.weight", 0, 2, D, F, 0, 0);
    ctm_add(l, "vision_model.head.mlp.fc2.bias", 0, 1, D, 0, 0, 0);
    char path[4200];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    REQUIRE(mt_write_safetensors(path, l->t, l->n) == 0);
    for (int i = 0; i < l->n; i++) free(l->data[i]);
    free(l);

    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"model_type\": \"siglip\",\n"
             " \"text_config\": {\"hidden_size\": %d, \"intermediate_size\": %d, "
             "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"vocab_size\": %d},\n"
             " \"vision_config\": {\"hidden_size\": %d, \"intermediate_size\": %d, "
             "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"image_size\": 256, "
             "\"patch_size\": 16}}\n",
             D, F, L, H, V, D, F, L, H);
    snprintf(path, sizeof(path), "%s/config.json", dir);
    mt_write_text(path, cfg);
    const char *copy[] = {"spiece.model", "tokenizer_config.json", "special_tokens_map.json",
                          "preprocessor_config.json"};
    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
        char src[4200];
        snprintf(src, sizeof(src), "%s/siglip-tiny/%s", tu_fixtures(), copy[i]);
        snprintf(path, sizeof(path), "%s/%s", dir, copy[i]);
        mt_copy_file(src, path);
    }
}

#endif
