/* Loading only some towers and using F32 weights in place in the mapped checkpoint:
 *  - rsclip_model_params.towers = TEXT (or VISION) gives bit-identical text (image) embeddings to
 *    a full load, the same fingerprint, logit scale/bias and info, and leaves the other tower's
 *    weights unloaded (NULL; for a F16 checkpoint: fewer converted floats);
 *  - aligned little-endian F32 tensors point into the mapping (no converted buffer at all), while
 *    a copy of the same checkpoint whose tensors sit at a misaligned file offset is converted, and
 *    both give bit-identical embeddings (the reference values themselves are checked against
 *    transformers by test_model_reference);
 *  - unknown tower bits are refused;
 *  - the packed GEMM panels of a tower are made once per model and precision and shared by its
 *    encoders (two encoders: the same panels, the same outputs); in-place encoders keep none. */
#include "model_test_util.h"

#include "model/encoder_internal.h"
#include "model/model_internal.h"

#include <stdint.h>

#define N_TEXTS 3

static const char *const g_texts[N_TEXTS] = {"a satellite image of solar farms.", "river",
                                             "Airport with two runways, seen from above"};

static rsclip_model *load(const char *dir, int towers) {
    rsclip_model_params p = {.towers = towers};
    rsclip_model *m = NULL;
    int rc = rsclip_model_load(dir, &p, &m);
    if (rc != RSCLIP_OK)
        fprintf(stderr, "load %s (towers %d): %s\n", dir, towers, rsclip_last_error());
    REQUIRE(rc == RSCLIP_OK && m);
    return m;
}

/* A one-thread encoder at precision prec (the test stops if it cannot be made). */
static rsclip_encoder *encoder(const rsclip_model *m, rsclip_precision prec) {
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.precision = prec;
    ep.n_threads = 1;
    rsclip_encoder *e = NULL;
    CHECK_OK(rsclip_encoder_new(m, &ep, &e));
    REQUIRE(e);
    return e;
}

/* Text embeddings of g_texts: [N_TEXTS, dim] (malloc'd). */
static float *text_embeds(const rsclip_model *m, rsclip_precision prec) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)mi->text_ctx * N_TEXTS);
    float *out = malloc(sizeof(float) * (size_t)mi->embed_dim * N_TEXTS);
    REQUIRE(ids && out);
    for (int i = 0; i < N_TEXTS; i++)
        CHECK_OK(rsclip_model_tokenize(m, g_texts[i], -1, ids + (size_t)i * mi->text_ctx, NULL));
    rsclip_encoder *e = encoder(m, prec);
    CHECK_OK(rsclip_encode_texts(e, N_TEXTS, ids, out, NULL));
    rsclip_encoder_free(e);
    free(ids);
    return out;
}

/* Image embeddings of two deterministic pseudo-random images: [2, dim] (malloc'd). */
static float *image_embeds(const rsclip_model *m, rsclip_precision prec) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const size_t npx = (size_t)3 * mi->image_size * mi->image_size;
    float *px = malloc(sizeof(float) * npx * 2);
    float *out = malloc(sizeof(float) * (size_t)mi->embed_dim * 2);
    REQUIRE(px && out);
    uint32_t s = 12345;
    for (size_t i = 0; i < npx * 2; i++) {
        s = s * 1664525u + 1013904223u;
        px[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    rsclip_encoder *e = encoder(m, prec);
    CHECK_OK(rsclip_encode_images(e, 2, px, out, NULL));
    rsclip_encoder_free(e);
    free(px);
    return out;
}

static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* Every pointer of a tower's layer weights is NULL (not loaded) or non-NULL (loaded). */
static int layers_all(const rsclip__layer *L, int n, int loaded) {
    for (int i = 0; i < n; i++) {
        const float *p[16] = {L[i].ln1_w, L[i].ln1_b, L[i].q_w,   L[i].q_b,  L[i].k_w,   L[i].k_b,
                              L[i].v_w,   L[i].v_b,   L[i].o_w,   L[i].o_b,  L[i].ln2_w, L[i].ln2_b,
                              L[i].fc1_w, L[i].fc1_b, L[i].fc2_w, L[i].fc2_b};
        for (int j = 0; j < 16; j++)
            if ((p[j] != NULL) != loaded) return 0;
    }
    return 1;
}

static void check_same_info(const rsclip_model *a, const rsclip_model *b) {
    const rsclip_model_info *x = rsclip_model_get_info(a), *y = rsclip_model_get_info(b);
    CHECK(strcmp(x->fingerprint, y->fingerprint) == 0);
    CHECK(strcmp(x->weights_dtype, y->weights_dtype) == 0);
    CHECK(x->logit_scale == y->logit_scale && x->logit_bias == y->logit_bias);
    CHECK(x->embed_dim == y->embed_dim && x->vocab_size == y->vocab_size);
}

/* Full vs text-only vs vision-only loads of one checkpoint folder. */
static void check_towers(const char *dir, int expect_in_place) {
    printf("%s\n", dir);
    rsclip_model *full = load(dir, 0), *text = load(dir, RSCLIP_MODEL_TEXT),
                 *vis = load(dir, RSCLIP_MODEL_VISION),
                 *both = load(dir, RSCLIP_MODEL_TEXT | RSCLIP_MODEL_VISION);
    const int all = RSCLIP_MODEL_TEXT | RSCLIP_MODEL_VISION;
    CHECK(rsclip_model_towers(full) == all);
    CHECK(rsclip_model_towers(both) == all);
    CHECK(rsclip_model_towers(text) == RSCLIP_MODEL_TEXT);
    CHECK(rsclip_model_towers(vis) == RSCLIP_MODEL_VISION);
    CHECK(rsclip_model_towers(NULL) == 0);
    check_same_info(full, text);
    check_same_info(full, vis);
    check_same_info(full, both);
    /* the legacy fingerprint is the checkpoint file's own (one file here) */
    char path[4200], fp[17];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rsclip_st_file *st = NULL;
    CHECK_OK(rsclip_st_open(path, &st));
    rsclip_st_fingerprint(st, fp);
    rsclip_st_close(st);
    CHECK(strcmp(fp, rsclip_model_get_info(full)->fingerprint_legacy) == 0);
    CHECK(strncmp(rsclip_model_get_info(full)->fingerprint, "sha256:", 7) == 0 &&
          strlen(rsclip_model_get_info(full)->fingerprint) == 71);

    const rsclip_model_info *mi = rsclip_model_get_info(full);
    CHECK(layers_all(full->text.layers, mi->text.layers, 1));
    CHECK(layers_all(full->vision.layers, mi->vision.layers, 1));
    CHECK(layers_all(text->text.layers, mi->text.layers, 1));
    CHECK(layers_all(text->vision.layers, mi->vision.layers, 0));
    CHECK(text->text.tok_emb && text->text.head_w && !text->vision.patch_w && !text->vision.probe);
    CHECK(layers_all(vis->text.layers, mi->text.layers, 0));
    CHECK(layers_all(vis->vision.layers, mi->vision.layers, 1));
    CHECK(!vis->text.tok_emb && !vis->text.head_w && vis->vision.patch_w && vis->vision.probe);
    if (expect_in_place) {
        /* aligned F32: nothing converted, every pointer lies in the mapping */
        CHECK(full->weights == NULL && full->weights_n == 0);
        CHECK(text->weights == NULL && vis->weights == NULL);
    } else {
        /* converted: a text-only load converts only the text tower (+ logit scale/bias) */
        CHECK(full->weights != NULL && text->weights != NULL && vis->weights != NULL);
        CHECK(text->weights_n < full->weights_n && vis->weights_n < full->weights_n);
        CHECK(text->weights_n + vis->weights_n == full->weights_n + 32);
    }

    for (int p = 0; p < 2; p++) {
        rsclip_precision prec = p ? RSCLIP_PRECISION_BF16 : RSCLIP_PRECISION_F32;
        float *a = text_embeds(full, prec), *b = text_embeds(text, prec);
        CHECK(same_bits(a, b, (size_t)mi->embed_dim * N_TEXTS));
        float *c = image_embeds(full, prec), *d = image_embeds(vis, prec);
        CHECK(same_bits(c, d, (size_t)mi->embed_dim * 2));
        free(a);
        free(b);
        free(c);
        free(d);
    }
    /* encoding with a tower that was not loaded is refused, not a NULL dereference */
    rsclip_encoder *et = encoder(text, RSCLIP_PRECISION_F32);
    rsclip_encoder *ev = encoder(vis, RSCLIP_PRECISION_F32);
    const size_t per = 3 * (size_t)mi->image_size * mi->image_size;
    float *px = calloc(per, sizeof(float)), emb[1024];
    int32_t ids[1024] = {0};
    REQUIRE(px && mi->embed_dim <= 1024 && mi->text_ctx <= 1024);
    CHECK(rsclip_encode_images(et, 1, px, emb, NULL) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "vision tower") != NULL);
    CHECK(rsclip_encode_texts(ev, 1, ids, emb, NULL) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "text tower") != NULL);
    free(px);
    rsclip_encoder_free(et);
    rsclip_encoder_free(ev);
    rsclip_model_free(full);
    rsclip_model_free(text);
    rsclip_model_free(vis);
    rsclip_model_free(both);
}

/* A copy of siglip-tiny with a 2-byte U8 tensor first: every F32 tensor after it sits at an
 * offset that is not a multiple of 4, so the loader must convert (copy) it. */
static char *misaligned_copy(const char *src) {
    char *dir = mt_tempdir();
    char a[4200], b[4200];
    const char *files[] = {"config.json", "tokenizer_config.json", "preprocessor_config.json",
                           "spiece.model"};
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        mt_copy_file(a, b);
    }
    snprintf(a, sizeof a, "%s/model.safetensors", src);
    rsclip_st_file *st = NULL;
    CHECK_OK(rsclip_st_open(a, &st));
    REQUIRE(st);
    int n = 0;
    mt_tensor *t = mt_tensors_of(st, &n);
    mt_tensor *all = calloc((size_t)n + 1, sizeof *all);
    REQUIRE(all);
    static const unsigned char pad[2] = {7, 9};
    all[0] = (mt_tensor){"aaa_misalign", "U8", 1, {2, 0, 0, 0}, pad, 2};
    memcpy(all + 1, t, sizeof(*t) * (size_t)n);
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    REQUIRE(mt_write_safetensors(b, all, n + 1) == 0);
    free(all);
    free(t);
    rsclip_st_close(st);
    /* the premise of the test: the tensors really are misaligned in the new file */
    CHECK_OK(rsclip_st_open(b, &st));
    const rsclip_st_tensor *q = rsclip_st_find(st, "text_model.head.weight");
    REQUIRE(q);
    CHECK(((uintptr_t)q->data & 3) != 0);
    rsclip_st_close(st);
    return dir;
}

/* Two encoders of one model share the tower packed by the first; another precision gets its own;
 * in place, an encoder packs nothing into the model. */
static void check_shared_packs(const char *dir) {
    rsclip_model *m = load(dir, 0);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const size_t npx = (size_t)3 * mi->image_size * mi->image_size;
    float *px = malloc(sizeof(float) * npx), *e1 = malloc(sizeof(float) * (size_t)mi->embed_dim),
          *e2 = malloc(sizeof(float) * (size_t)mi->embed_dim);
    REQUIRE(px && e1 && e2);
    for (size_t i = 0; i < npx; i++) px[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    rsclip_encoder_params ip = rsclip_encoder_default_params();
    ip.in_place = 1;
    rsclip_encoder *a = NULL, *b = encoder(m, RSCLIP_PRECISION_F32), *c = NULL;
    CHECK_OK(rsclip_encoder_new(m, &ip, &a));
    REQUIRE(a);
    CHECK_OK(rsclip_encode_images(a, 1, px, e1, NULL));
    CHECK(m->packs == NULL && a->vision_pack == &a->own_vision);
    CHECK_OK(rsclip_encode_images(b, 1, px, e1, NULL));
    REQUIRE(m->packs != NULL);
    c = encoder(m, RSCLIP_PRECISION_F32);
    CHECK_OK(rsclip_encode_images(c, 1, px, e2, NULL));
    CHECK(b->vision_pack && b->vision_pack == c->vision_pack && b->text_pack == NULL);
    CHECK(same_bits(e1, e2, (size_t)mi->embed_dim));
    rsclip_encoder *d = encoder(m, RSCLIP_PRECISION_BF16);
    CHECK_OK(rsclip_encode_images(d, 1, px, e2, NULL));
    CHECK(rsclip_encoder_precision(d) == RSCLIP_PRECISION_F32 || d->vision_pack != b->vision_pack);
    rsclip_encoder_free(b); /* the model keeps the panels: c still encodes */
    CHECK_OK(rsclip_encode_images(c, 1, px, e2, NULL));
    CHECK(same_bits(e1, e2, (size_t)mi->embed_dim));
    rsclip_encoder_free(a);
    rsclip_encoder_free(c);
    rsclip_encoder_free(d);
    rsclip_model_free(m);
    free(px), free(e1), free(e2);
}

int main(void) {
    const char *tiny = mt_fixture("siglip-tiny");
    check_shared_packs(tiny);
    check_towers(tiny, 1);
    check_towers(mt_fixture("siglip-tiny-f16"), 0);

    /* in place vs converted: the same floats, so the same embeddings */
    char *mis = misaligned_copy(tiny);
    check_towers(mis, 0);
    rsclip_model *mapped = load(tiny, 0), *copied = load(mis, 0);
    CHECK(strcmp(rsclip_model_get_info(copied)->weights_dtype, "F32") == 0);
    CHECK(copied->weights != NULL && mapped->weights == NULL);
    const int dim = rsclip_model_get_info(mapped)->embed_dim;
    for (int p = 0; p < 2; p++) {
        rsclip_precision prec = p ? RSCLIP_PRECISION_BF16 : RSCLIP_PRECISION_F32;
        float *a = text_embeds(mapped, prec), *b = text_embeds(copied, prec);
        CHECK(same_bits(a, b, (size_t)dim * N_TEXTS));
        float *c = image_embeds(mapped, prec), *d = image_embeds(copied, prec);
        CHECK(same_bits(c, d, (size_t)dim * 2));
        free(a);
        free(b);
        free(c);
        free(d);
    }
    rsclip_model_free(mapped);
    rsclip_model_free(copied);
    mt_rmtree(mis);

    /* unknown bits */
    rsclip_model_params bad = {.towers = 4};
    rsclip_model *m = (rsclip_model *)1;
    CHECK(rsclip_model_load(tiny, &bad, &m) == RSCLIP_ERR_INVALID_ARG);
    CHECK(m == NULL);
    printf("  towers 4 -> %s\n", rsclip_last_error());
    return tu_finish("test_model_towers");
}
