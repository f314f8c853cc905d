/* The C model against transformers' SiglipModel + SiglipProcessor (v4.44.2) reference tensors of
 * tests/fixtures/siglip-tiny (F32 weights) and siglip-tiny-f16 (F16 weights, its own references):
 * pixel values bit-exact, hidden states / embeddings / logits within 1e-5 relative error
 * (max |a - b| / max |b|), and batch / chunking invariance. */
#include "model_test_util.h"

#include "gemm/isa.h"

#ifdef RSCLIP_TEST_OPENBLAS /* a build with OpenBLAS (the model-only build may have none) */
#include <cblas.h>
#endif

#define TOL 1e-5

static double g_worst;

static void check_rel(const char *what, const char *fixture, const float *got, const float *want,
                      size_t n, double tol) {
    double e = mt_max_rel(got, want, n);
    printf("  %-16s %-28s max rel error %.3g\n", fixture, what, e);
    if (e > g_worst) g_worst = e;
    if (!(e <= tol)) {
        fprintf(stderr, "%s %s: max rel error %.3g > %.3g\n", fixture, what, e, tol);
        tu_failures++;
    }
}

/* check_rel of got against the whole reference tensor `name` (as many floats as it holds). */
static void check_ref(const rsclip_st_file *ref, const char *name, const char *what,
                      const char *fixture, const float *got) {
    size_t n = 0;
    float *want = mt_ref_f32(ref, name, &n);
    check_rel(what, fixture, got, want, n, TOL);
    free(want);
}

/* pixel_values of img0..img5 and of the resize case, bit-exact (the PNGs are decoded with GDAL:
 * not in the model-only build, whose encoder checks below use the reference pixel_values). */
#ifndef RSCLIP_TEST_NO_GDAL
static void test_preprocess(const rsclip_model *m, const rsclip_st_file *ref) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const size_t per = 3 * (size_t)mi->image_size * mi->image_size;
    size_t n;
    float *want = mt_ref_f32(ref, "pixel_values", &n);
    REQUIRE(n == 6 * per);
    float *got = malloc(sizeof(float) * per);
    REQUIRE(got);
    for (int i = 0; i < 6; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "siglip-tiny/img%d.png", i);
        int w, h;
        uint8_t *rgb = mt_read_png(mt_fixture(rel), &w, &h);
        CHECK_OK(rsclip_preprocess_rgb8(m, rgb, w, h, (size_t)w * 3, got));
        size_t diff = 0;
        for (size_t k = 0; k < per; k++) diff += got[k] != want[i * per + k];
        if (diff) fprintf(stderr, "img%d: %zu pixel values differ\n", i, diff);
        CHECK(diff == 0);
        free(rgb);
    }
    free(want);

    /* 300 x 200 -> 256 x 256: horizontal downscale (antialiased) then vertical upscale. */
    want = mt_ref_f32(ref, "resize_pixel_values", &n);
    REQUIRE(n == per);
    int w, h;
    uint8_t *rgb = mt_read_png(mt_fixture("siglip-tiny/resize_in.png"), &w, &h);
    CHECK(w == 300 && h == 200);
    /* through a padded stride too: the resize must honour it */
    size_t stride = (size_t)w * 3 + 5;
    uint8_t *padded = calloc(stride * h, 1);
    REQUIRE(padded);
    for (int y = 0; y < h; y++) memcpy(padded + y * stride, rgb + (size_t)y * w * 3, (size_t)w * 3);
    CHECK_OK(rsclip_preprocess_rgb8(m, padded, w, h, stride, got));
    size_t diff = 0;
    for (size_t k = 0; k < per; k++) diff += got[k] != want[k];
    if (diff) fprintf(stderr, "resize_in: %zu pixel values differ\n", diff);
    CHECK(diff == 0);
    printf("  pixel_values img0..5 and resize_in.png: %s\n", diff ? "DIFFER" : "bit-identical");
    free(padded);
    free(rgb);
    free(want);
    free(got);
}
#else
static void test_preprocess(const rsclip_model *m, const rsclip_st_file *ref) {
    (void)m, (void)ref;
    printf("  pixel_values: not checked (model-only build: no GDAL to decode the PNGs)\n");
}
#endif

/* All float outputs of one fixture. pixels/ids come from the F32 fixture's reference (the F16
 * fixture does not repeat pixel_values). */
static void test_fixture(const char *fixture, const rsclip_st_file *px_ref) {
    char dir[4096], refp[4200];
    snprintf(dir, sizeof(dir), "%s/%s", tu_fixtures(), fixture);
    snprintf(refp, sizeof(refp), "%s/reference.safetensors", dir);
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(dir, NULL, &m));
    REQUIRE(m);
    rsclip_st_file *ref = NULL;
    CHECK_OK(rsclip_st_open(refp, &ref));
    REQUIRE(ref);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int E = mi->embed_dim, T = mi->text_ctx, Np = mi->n_patches;
    CHECK(strcmp(mi->name, fixture) == 0);
    CHECK(strlen(mi->fingerprint) == 71 && strncmp(mi->fingerprint, "sha256:", 7) == 0);
    CHECK(strlen(mi->fingerprint_legacy) == 16);
    CHECK(strcmp(mi->weights_dtype, strstr(fixture, "f16") ? "F16" : "F32") == 0);
    CHECK(E == 32 && T == 64 && Np == 256 && mi->image_size == 256 && mi->patch_size == 16);
    CHECK(mi->text.layers == 2 && mi->text.heads == 4 && mi->vision.intermediate == 64);
    CHECK(mi->text.layer_norm_eps == 1e-6 && mi->vocab_size == 1000);
    float ls, lb;
    size_t n;
    float *v = mt_ref_f32(ref, "logit_scale", &n);
    ls = v[0];
    free(v);
    v = mt_ref_f32(ref, "logit_bias", &n);
    lb = v[0];
    free(v);
    CHECK(mi->logit_scale == ls && mi->logit_bias == lb);

    if (!strstr(fixture, "f16")) test_preprocess(m, ref);

    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.precision = RSCLIP_PRECISION_F32; /* parity with the float32 reference */
    ep.n_threads = 1;
    rsclip_encoder *enc = NULL;
    CHECK_OK(rsclip_encoder_new(m, &ep, &enc));
    REQUIRE(enc);
    CHECK(rsclip_encoder_isa(enc, NULL) == rsclip_precision_isa(RSCLIP_PRECISION_F32, NULL));
#ifdef RSCLIP_TEST_OPENBLAS
    /* the encoder leaves OpenBLAS's process-wide thread count alone (a GDAL plugin in QGIS
     * shares the process with other OpenBLAS users) */
    openblas_set_num_threads(3);
#endif

    /* vision: 6 images in one batch */
    float *pixels = mt_ref_f32(px_ref, "pixel_values", &n);
    const size_t per = 3 * (size_t)mi->image_size * mi->image_size;
    REQUIRE(n == 6 * per);
    float *img = malloc(sizeof(float) * 6 * E);
    float *vlh = malloc(sizeof(float) * 6 * (size_t)Np * E);
    REQUIRE(img && vlh);
    CHECK_OK(rsclip_encode_images(enc, 6, pixels, img, vlh));
    float *want = mt_ref_f32(ref, "vision_last_hidden_state", &n);
    CHECK(n == 6 * (size_t)Np * E);
    check_rel("vision_last_hidden_state", fixture, vlh, want, n, TOL);
    free(want);
    check_ref(ref, "image_embeds", "image_embeds", fixture, img);

    /* resize case through the whole tower */
    float *rpx = mt_ref_f32(px_ref, "resize_pixel_values", &n);
    float remb[64];
    CHECK_OK(rsclip_encode_images(enc, 1, rpx, remb, NULL));
    check_ref(ref, "resize_image_embeds", "resize_image_embeds", fixture, remb);
    free(rpx);

    /* text: the reference input_ids, 12 texts */
    int32_t *ids = mt_ref_i32(ref, "input_ids", &n);
    REQUIRE(n == 12 * (size_t)T);
    float *txt = malloc(sizeof(float) * 12 * E);
    float *tlh = malloc(sizeof(float) * 12 * (size_t)T * E);
    REQUIRE(txt && tlh);
    CHECK_OK(rsclip_encode_texts(enc, 12, ids, txt, tlh));
    check_ref(ref, "text_last_hidden_state", "text_last_hidden_state", fixture, tlh);
    check_ref(ref, "text_embeds", "text_embeds", fixture, txt);

    /* joint output: normalised embeddings and logits_per_image [6, 12] */
    float *imgn = malloc(sizeof(float) * 6 * E), *txtn = malloc(sizeof(float) * 12 * E);
    float logits[6 * 12], probs_ok = 1;
    REQUIRE(imgn && txtn);
    memcpy(imgn, img, sizeof(float) * 6 * E);
    memcpy(txtn, txt, sizeof(float) * 12 * E);
    for (int i = 0; i < 6; i++) rsclip_l2_normalize(imgn + i * E, E);
    for (int j = 0; j < 12; j++) rsclip_l2_normalize(txtn + j * E, E);
    check_ref(ref, "image_embeds_normalized", "image_embeds_normalized", fixture, imgn);
    check_ref(ref, "text_embeds_normalized", "text_embeds_normalized", fixture, txtn);
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 12; j++) {
            float c = rsclip_cosine(img + i * E, txt + j * E, E);
            logits[i * 12 + j] = rsclip_model_logit(m, c);
            float p = rsclip_model_prob(m, c);
            double pw = 1.0 / (1.0 + exp(-(double)logits[i * 12 + j]));
            if (!(fabs(p - pw) < 1e-6)) probs_ok = 0;
        }
    }
    CHECK(probs_ok);
    want = mt_ref_f32(ref, "logits_per_image", &n);
    CHECK(n == 72);
    check_rel("logits_per_image", fixture, logits, want, n, TOL);
    free(want);

    /* batch invariance: one image / text at a time gives the batched numbers */
    float one[64];
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        CHECK_OK(rsclip_encode_images(enc, 1, pixels + i * per, one, NULL));
        double e = mt_max_rel(one, img + i * E, (size_t)E);
        worst = e > worst ? e : worst;
    }
    for (int j = 0; j < 12; j++) {
        CHECK_OK(rsclip_encode_texts(enc, 1, ids + j * T, one, NULL));
        double e = mt_max_rel(one, txt + j * E, (size_t)E);
        worst = e > worst ? e : worst;
    }
    printf("  %-16s n=1 vs batched: max rel difference %.3g\n", fixture, worst);
    CHECK(worst <= 1e-6);

    /* chunking: max_batch 4 runs 6 images as 4 + 2 and 12 texts as 3 x 4 */
    rsclip_encoder *e4 = NULL;
    ep.max_batch = 4;
    ep.n_threads = 2;
    CHECK_OK(rsclip_encoder_new(m, &ep, &e4));
    REQUIRE(e4);
    float *img4 = malloc(sizeof(float) * 6 * E), *vlh4 = malloc(sizeof(float) * 6 * (size_t)Np * E);
    float *txt4 = malloc(sizeof(float) * 12 * E);
    REQUIRE(img4 && vlh4 && txt4);
    CHECK_OK(rsclip_encode_images(e4, 6, pixels, img4, vlh4));
    CHECK_OK(rsclip_encode_texts(e4, 12, ids, txt4, NULL));
    double ec = mt_max_rel(img4, img, 6 * (size_t)E);
    double eh = mt_max_rel(vlh4, vlh, 6 * (size_t)Np * E);
    double et = mt_max_rel(txt4, txt, 12 * (size_t)E);
    printf("  %-16s chunked (max_batch 4): %.3g %.3g %.3g\n", fixture, ec, eh, et);
    CHECK(ec <= 1e-6 && eh <= 1e-6 && et <= 1e-6);

#ifdef RSCLIP_TEST_OPENBLAS
    CHECK(openblas_get_num_threads() == 3);
#endif

    /* in place: f32 panels packed per product from the model's own weights, no packed copy */
    rsclip_encoder *eip = NULL;
    rsclip_encoder_params pip = rsclip_encoder_default_params();
    pip.in_place = 1;
    pip.precision = RSCLIP_PRECISION_BF16; /* ignored in place */
    CHECK_OK(rsclip_encoder_new(m, &pip, &eip));
    REQUIRE(eip);
    CHECK(rsclip_encoder_precision(eip) == RSCLIP_PRECISION_F32);
    CHECK_OK(rsclip_encode_images(eip, 6, pixels, img4, vlh4));
    CHECK_OK(rsclip_encode_texts(eip, 12, ids, txt4, NULL));
    check_ref(ref, "image_embeds", "in place image_embeds", fixture, img4);
    check_ref(ref, "vision_last_hidden_state", "in place vision_last_hidden", fixture, vlh4);
    check_ref(ref, "text_embeds", "in place text_embeds", fixture, txt4);
    rsclip_encoder_free(eip);

    /* argument checks */
    int32_t bad[64];
    memcpy(bad, ids, sizeof(bad));
    bad[3] = mi->vocab_size;
    CHECK(rsclip_encode_texts(enc, 1, bad, one, NULL) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "vocabulary") != NULL);
    bad[3] = -1;
    CHECK(rsclip_encode_texts(enc, 1, bad, one, NULL) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_encode_images(enc, 0, pixels, one, NULL) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_encode_images(NULL, 1, pixels, one, NULL) == RSCLIP_ERR_INVALID_ARG);

    free(img4), free(vlh4), free(txt4);
    rsclip_encoder_free(e4);
    free(imgn), free(txtn), free(txt), free(tlh), free(ids);
    free(img), free(vlh), free(pixels);
    rsclip_encoder_free(enc);
    rsclip_st_close(ref);
    rsclip_model_free(m);
}

int main(void) {
    const char *isa_err = rsclip__isa_env_error();
    if (isa_err) { /* RSCLIP_ISA names a path this CPU cannot run */
        printf("skipped: %s\n", isa_err);
        return 77;
    }
    const char *why = NULL;
    const rsclip_isa isa = rsclip_precision_isa(RSCLIP_PRECISION_F32, &why);
    printf("f32 path: %s (%s)\n", rsclip_isa_name(isa), why);
    if (rsclip__isa_forced()) /* RSCLIP_ISA=avx2 must run avx2, not the CPU's best */
        CHECK((int)isa == (int)rsclip__isa_best_f32(rsclip__cpu_get(), rsclip__isa_ceiling()) &&
              isa <= (rsclip_isa)rsclip__isa_ceiling());
    rsclip_st_file *px_ref = NULL;
    CHECK_OK(rsclip_st_open(mt_fixture("siglip-tiny/reference.safetensors"), &px_ref));
    REQUIRE(px_ref);
    test_fixture("siglip-tiny", px_ref);
    test_fixture("siglip-tiny-f16", px_ref);
    rsclip_st_close(px_ref);
    rsclip_encoder_free(NULL);
    rsclip_model_free(NULL);
    printf("worst max rel error over all tensors: %.3g (tolerance %.0e)\n", g_worst, TOL);
    return tu_finish("test_model_reference");
}
