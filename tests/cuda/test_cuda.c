/* The encoder on a CUDA device (rsclip_encoder_params.device).
 *
 * Everywhere: device names parse ("cpu", "cuda", "cuda:N"; anything else refused), and a build
 * without CUDA refuses a CUDA encoder with RSCLIP_ERR_UNSUPPORTED and a message saying so; then
 * the test exits 77 (ctest: skipped) because nothing can run on a GPU here.
 *
 * `test_cuda --no-module WHY` (a build with CUDA, RSCLIP_CUDA_MODULE naming a missing file or a
 * module of another build): the library cannot use its CUDA module, so a CUDA encoder is refused
 * with RSCLIP_ERR_UNSUPPORTED naming the module's path and saying WHY, and the CPU encoder works
 * as ever.
 *
 * On a GPU (exit 77 "no CUDA device" when the build has CUDA but the machine no GPU):
 *  - F32 on the GPU against transformers' reference tensors of both fixtures (siglip-tiny F32,
 *    siglip-tiny-f16) within 1e-5 (max |a - b| / max |b|), as test_model_reference does on the
 *    CPU: vision/text last hidden states, image/text embeddings, logits; also with max_batch 2 and
 *    4 (chunked, the double-buffered image path) and texts and images interleaved; the text tower
 *    with its fused short-sequence attention and with the cuBLAS products
 *    (RSCLIP_CUDA_ATTENTION=gemm);
 *  - BF16 (the GPU's AUTO): every embedding within cosine 0.999 of the CPU's F32 one;
 *  - a generated model with real head width (hd 64, D 128, 256 tokens, 2 layers): GPU F32 within
 *    1e-5 of the CPU F32 encoder, GPU BF16 within cosine 0.999;
 *  - a missing device (cuda:<count>) is RSCLIP_ERR_NOT_FOUND.
 */
#include "model_test_util.h"

#define TOL 1e-5
#define COS_MIN 0.999

static double g_worst;

static void check_rel(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = mt_max_rel(got, want, n);
    printf("  %-40s max rel error %.3g\n", what, e);
    if (e > g_worst) g_worst = e;
    if (!(e <= tol)) {
        fprintf(stderr, "%s: max rel error %.3g > %.3g\n", what, e, tol);
        tu_failures++;
    }
}

static void check_ref(const rsclip_st_file *ref, const char *name, const char *what,
                      const float *got) {
    size_t n = 0;
    float *want = mt_ref_f32(ref, name, &n);
    check_rel(what, got, want, n, TOL);
    free(want);
}

/* Worst cosine between rows of a and b ([n, d]); fails below COS_MIN. */
static void check_cos(const char *what, const float *a, const float *b, int n, int d) {
    double worst = 1.0;
    for (int i = 0; i < n; i++) {
        double c = rsclip_cosine(a + (size_t)i * d, b + (size_t)i * d, d);
        if (!(c >= worst)) worst = c;
    }
    printf("  %-40s worst cosine %.6f\n", what, worst);
    if (!(worst >= COS_MIN)) {
        fprintf(stderr, "%s: worst cosine %.6f < %.3f\n", what, worst, COS_MIN);
        tu_failures++;
    }
}

static rsclip_encoder *gpu_encoder(const rsclip_model *m, rsclip_precision prec, int max_batch) {
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.precision = prec;
    ep.max_batch = max_batch;
    REQUIRE(rsclip_device_parse("cuda:0", &ep.device) == RSCLIP_OK);
    rsclip_encoder *e = NULL;
    CHECK_OK(rsclip_encoder_new(m, &ep, &e));
    REQUIRE(e);
    return e;
}

static rsclip_encoder *cpu_encoder(const rsclip_model *m) {
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.precision = RSCLIP_PRECISION_F32;
    ep.n_threads = 2;
    rsclip_encoder *e = NULL;
    CHECK_OK(rsclip_encoder_new(m, &ep, &e));
    REQUIRE(e);
    return e;
}

static void test_parse(void) {
    rsclip_device d;
    CHECK(rsclip_device_parse("cpu", &d) == RSCLIP_OK && d.kind == RSCLIP_DEVICE_CPU);
    CHECK(rsclip_device_parse("cuda", &d) == RSCLIP_OK && d.kind == RSCLIP_DEVICE_CUDA &&
          d.index == 0);
    CHECK(rsclip_device_parse("cuda:3", &d) == RSCLIP_OK && d.kind == RSCLIP_DEVICE_CUDA &&
          d.index == 3);
    const char *bad[] = {"gpu",        "CUDA",  "cuda:", "cuda:-1", "cuda:x", "cuda:1x",
                         "cuda:99999", "cuda0", "",      " cuda",   "cpu:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(rsclip_device_parse(bad[i], &d) == RSCLIP_ERR_INVALID_ARG);
        CHECK(strstr(rsclip_last_error(), "cpu, cuda, cuda:N") != NULL);
    }
    CHECK(rsclip_device_parse(NULL, &d) == RSCLIP_ERR_INVALID_ARG);
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    CHECK(ep.device.kind == RSCLIP_DEVICE_CPU); /* a GPU is never taken by default */
}

/* A CUDA encoder where there is none: the error and the message (for RSCLIP_ERR_UNSUPPORTED it
 * contains why_unsupported). */
static const char *why_unsupported = "without CUDA";
static void test_refused(const rsclip_model *m, int expect) {
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.device.kind = RSCLIP_DEVICE_CUDA;
    rsclip_encoder *e = (rsclip_encoder *)&ep; /* must be reset to NULL */
    int rc = rsclip_encoder_new(m, &ep, &e);
    printf("  cuda encoder refused: %s\n", rsclip_last_error());
    CHECK(rc == expect);
    CHECK(e == NULL);
    if (expect == RSCLIP_ERR_UNSUPPORTED)
        CHECK(strstr(rsclip_last_error(), why_unsupported) != NULL);
}

/* Both towers of one fixture on the GPU: F32 parity with the reference, BF16 against CPU F32. */
static void test_fixture(const char *fixture, const rsclip_st_file *px_ref) {
    char dir[4096], refp[4200];
    snprintf(dir, sizeof(dir), "%s/%s", tu_fixtures(), fixture);
    snprintf(refp, sizeof(refp), "%s/reference.safetensors", dir);
    printf("%s:\n", fixture);
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(dir, NULL, &m));
    REQUIRE(m);
    rsclip_st_file *ref = NULL;
    CHECK_OK(rsclip_st_open(refp, &ref));
    REQUIRE(ref);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int E = mi->embed_dim, T = mi->text_ctx, Np = mi->n_patches;
    size_t n;
    float *pixels = mt_ref_f32(px_ref, "pixel_values", &n);
    int32_t *ids = mt_ref_i32(ref, "input_ids", NULL);
    float *img = malloc(sizeof(float) * 6 * E), *txt = malloc(sizeof(float) * 12 * E);
    float *vlh = malloc(sizeof(float) * 6 * (size_t)Np * E);
    float *tlh = malloc(sizeof(float) * 12 * (size_t)T * E);
    REQUIRE(img && txt && vlh && tlh);

    for (int mb = 16; mb >= 2; mb /= 2) { /* 16: one chunk; 4 and 2: chunked, double-buffered */
        if (mb == 8) continue;
        rsclip_encoder *e = gpu_encoder(m, RSCLIP_PRECISION_F32, mb);
        CHECK(rsclip_encoder_precision(e) == RSCLIP_PRECISION_F32);
        CHECK(strncmp(rsclip_encoder_device_name(e), "cuda:0", 6) == 0);
        char what[64];
        snprintf(what, sizeof(what), "f32 max_batch %d", mb);
        printf(" %s on %s\n", what, rsclip_encoder_device_name(e));
        /* text first, then images, then text again: the towers share the buffers */
        CHECK_OK(rsclip_encode_texts(e, 12, ids, txt, tlh));
        CHECK_OK(rsclip_encode_images(e, 6, pixels, img, vlh));
        check_ref(ref, "vision_last_hidden_state", "vision_last_hidden_state", vlh);
        check_ref(ref, "image_embeds", "image_embeds", img);
        check_ref(ref, "text_last_hidden_state", "text_last_hidden_state", tlh);
        CHECK_OK(rsclip_encode_texts(e, 12, ids, txt, NULL));
        check_ref(ref, "text_embeds", "text_embeds", txt);
        rsclip_encoder_free(e);
    }
    /* the text tower's attention through the cuBLAS products instead of the fused kernel */
    setenv("RSCLIP_CUDA_ATTENTION", "gemm", 1);
    rsclip_encoder *eg = gpu_encoder(m, RSCLIP_PRECISION_F32, 16);
    unsetenv("RSCLIP_CUDA_ATTENTION");
    float *txt_g = malloc(sizeof(float) * 12 * E);
    REQUIRE(txt_g);
    CHECK_OK(rsclip_encode_texts(eg, 12, ids, txt_g, tlh));
    check_ref(ref, "text_last_hidden_state", "text_last_hidden (cuBLAS attention)", tlh);
    check_ref(ref, "text_embeds", "text_embeds (cuBLAS attention)", txt_g);
    free(txt_g);
    rsclip_encoder_free(eg);

    float logits[6 * 12];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 12; j++)
            logits[i * 12 + j] = rsclip_model_logit(m, rsclip_cosine(img + i * E, txt + j * E, E));
    check_ref(ref, "logits_per_image", "logits_per_image", logits);

    /* BF16 (AUTO on a GPU with bf16 tensor cores) against the CPU's F32 */
    rsclip_encoder *eb = gpu_encoder(m, RSCLIP_PRECISION_AUTO, 8);
    printf(" auto -> %s\n", rsclip_precision_name(rsclip_encoder_precision(eb)));
    float *img_b = malloc(sizeof(float) * 6 * E), *txt_b = malloc(sizeof(float) * 12 * E);
    REQUIRE(img_b && txt_b);
    CHECK_OK(rsclip_encode_images(eb, 6, pixels, img_b, NULL));
    CHECK_OK(rsclip_encode_texts(eb, 12, ids, txt_b, NULL));
    check_cos("bf16 image embeds vs f32", img_b, img, 6, E);
    check_cos("bf16 text embeds vs f32", txt_b, txt, 12, E);
    /* argument checks happen before the GPU */
    int32_t bad[64];
    memcpy(bad, ids, sizeof(bad));
    bad[5] = mi->vocab_size;
    CHECK(rsclip_encode_texts(eb, 1, bad, txt_b, NULL) == RSCLIP_ERR_INVALID_ARG);
    rsclip_encoder_free(eb);

    free(img_b), free(txt_b), free(img), free(txt), free(vlh), free(tlh), free(ids), free(pixels);
    rsclip_st_close(ref);
    rsclip_model_free(m);
}

#include "cuda_test_model.h"

/* The generated hd-64 model: GPU against the CPU encoder (gpu 0: the CPU half only, which checks
 * the generator itself where no GPU is). */
static void test_generated(int gpu) {
    char *dir = mt_tempdir();
    ctm_write(dir, 128, 256, 2, 2);
    printf("generated model (D 128, 2 heads of 64, MLP 256, 2 layers, 256 tokens):\n");
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(dir, NULL, &m));
    REQUIRE(m);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int E = mi->embed_dim, NI = 5, NT = 7;
    const size_t per = (size_t)3 * mi->image_size * mi->image_size;
    float *px = malloc(sizeof(float) * per * NI);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)mi->text_ctx * NT);
    float *a = malloc(sizeof(float) * (NI + NT) * E), *b = malloc(sizeof(float) * (NI + NT) * E);
    REQUIRE(px && ids && a && b);
    uint64_t s = 12345;
    for (size_t i = 0; i < per * NI; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        px[i] = (float)((s >> 40) % 2001) / 1000.0f - 1.0f;
    }
    for (int i = 0; i < NT * mi->text_ctx; i++) ids[i] = (i * 7919 + 3) % mi->vocab_size;
    rsclip_encoder *ec = cpu_encoder(m);
    CHECK_OK(rsclip_encode_images(ec, NI, px, a, NULL));
    CHECK_OK(rsclip_encode_texts(ec, NT, ids, a + NI * E, NULL));
    rsclip_encoder_free(ec);
    int finite = 1;
    for (int i = 0; i < (NI + NT) * E; i++) finite &= isfinite(a[i]) && fabsf(a[i]) < 1e4f;
    CHECK(finite);
    if (!gpu) {
        printf("  cpu f32 embeddings finite (no GPU: the comparison is skipped)\n");
        free(px), free(ids), free(a), free(b);
        rsclip_model_free(m);
        mt_rmtree(dir);
        return;
    }
    rsclip_encoder *eg = gpu_encoder(m, RSCLIP_PRECISION_F32, 4);
    CHECK_OK(rsclip_encode_images(eg, NI, px, b, NULL));
    CHECK_OK(rsclip_encode_texts(eg, NT, ids, b + NI * E, NULL));
    rsclip_encoder_free(eg);
    check_rel("gpu f32 vs cpu f32 (images)", b, a, (size_t)NI * E, TOL);
    check_rel("gpu f32 vs cpu f32 (texts)", b + NI * E, a + NI * E, (size_t)NT * E, TOL);
    eg = gpu_encoder(m, RSCLIP_PRECISION_BF16, 64);
    CHECK(rsclip_encoder_precision(eg) == RSCLIP_PRECISION_BF16);
    CHECK_OK(rsclip_encode_images(eg, NI, px, b, NULL));
    CHECK_OK(rsclip_encode_texts(eg, NT, ids, b + NI * E, NULL));
    rsclip_encoder_free(eg);
    check_cos("gpu bf16 vs cpu f32 (images)", b, a, NI, E);
    check_cos("gpu bf16 vs cpu f32 (texts)", b + NI * E, a + NI * E, NT, E);
    free(px), free(ids), free(a), free(b);
    rsclip_model_free(m);
    mt_rmtree(dir);
}

/* The CUDA module missing or foreign (--no-module): CUDA refused, naming the module; the CPU
 * unaffected. */
static int test_no_module(rsclip_model *m, const char *why) {
    const char *path = getenv("RSCLIP_CUDA_MODULE");
    REQUIRE(path && *path);
    int count = -1;
    CHECK(rsclip_cuda_device_count(&count) == RSCLIP_ERR_UNSUPPORTED && count == 0);
    printf("  device count refused: %s\n", rsclip_last_error());
    CHECK(strstr(rsclip_last_error(), why) != NULL);
    why_unsupported = path;
    test_refused(m, RSCLIP_ERR_UNSUPPORTED);
    test_generated(0); /* the CPU encoder */
    rsclip_model_free(m);
    return tu_finish("test_cuda --no-module");
}

int main(int argc, char **argv) {
    test_parse();
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(mt_fixture("siglip-tiny"), NULL, &m));
    REQUIRE(m);
    if (argc == 3 && !strcmp(argv[1], "--no-module")) return test_no_module(m, argv[2]);
    int count = -1;
    int rc = rsclip_cuda_device_count(&count);
    if (rc == RSCLIP_ERR_UNSUPPORTED) {
        test_refused(m, RSCLIP_ERR_UNSUPPORTED);
        rsclip_model_free(m);
        test_generated(0);
        if (tu_failures) return tu_finish("test_cuda");
        printf("SKIP: this build has no CUDA encoder (RSCLIP_CUDA=OFF or no nvcc/cuBLAS found)\n");
        return 77;
    }
    CHECK(rc == RSCLIP_OK && count >= 0);
    if (count <= 0) {
        test_refused(m, RSCLIP_ERR_NOT_FOUND);
        rsclip_model_free(m);
        test_generated(0);
        if (tu_failures) return tu_finish("test_cuda");
        printf("SKIP: built with CUDA, but no CUDA device is usable here\n");
        return 77;
    }
    /* one past the last device */
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.device.kind = RSCLIP_DEVICE_CUDA;
    ep.device.index = count;
    rsclip_encoder *e = NULL;
    CHECK(rsclip_encoder_new(m, &ep, &e) == RSCLIP_ERR_NOT_FOUND && e == NULL);
    CHECK(strstr(rsclip_last_error(), "no such device") != NULL);
    rsclip_model_free(m);

    rsclip_st_file *px_ref = NULL;
    CHECK_OK(rsclip_st_open(mt_fixture("siglip-tiny/reference.safetensors"), &px_ref));
    REQUIRE(px_ref);
    test_fixture("siglip-tiny", px_ref);
    test_fixture("siglip-tiny-f16", px_ref);
    rsclip_st_close(px_ref);
    test_generated(1);
    printf("worst max rel error (f32 on the GPU): %.3g (tolerance %.0e)\n", g_worst, TOL);
    return tu_finish("test_cuda");
}
