/* rsclip embed: image or text embeddings as JSON. */
#include "app.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char app_usage_embed[] =
    "usage: rsclip embed -m MODEL --image [options] FILE...\n"
    "       rsclip embed -m MODEL --text [options] [--] TEXT...\n"
    "\n"
    "Print the embeddings of images (any 8-bit RGB, grey or palette image GDAL reads) or texts as\n"
    "one JSON object on stdout:\n"
    "  {\"model\": \"MODEL\", \"dim\": D, \"embeddings\": [[...], ...]}\n"
    "one row per input, in order, floats printed with %.9g (they round-trip to float32). The\n"
    "vectors are the model's unnormalised features (get_image_features / get_text_features)\n"
    "unless --normalize is given. Inputs are encoded in batches through one encoder.\n"
    "\n"
    "  --image                 inputs are image files\n"
    "  --text                  inputs are texts (UTF-8; empty text is valid)\n"
    "  --normalize             scale every vector to unit length\n"
    "  --device D              cpu (default), cuda or cuda:N: encode on that NVIDIA GPU (a\n"
    "                          build with CUDA; auto is bf16 there, f32 is exact to 1e-5, int8\n"
    "                          runs f32)\n"
    "bf16, int8: within cosine 0.999 of f32; f32 where the CPU lacks them.\n" APP_USAGE_COMMON
        APP_USAGE_MODEL APP_USAGE_BATCH APP_USAGE_THREADS APP_USAGE_PRECISION;

static void print_embeddings(const char *model, int dim, int n, const float *e) {
    fputs("{\"model\": ", stdout);
    app_json_string(stdout, model);
    printf(", \"dim\": %d, \"embeddings\": [", dim);
    for (int i = 0; i < n; i++) {
        fputs(i ? ",\n[" : "\n[", stdout);
        for (int k = 0; k < dim; k++) {
            if (k) fputs(", ", stdout);
            app_json_float(stdout, e[(size_t)i * dim + k]);
        }
        putchar(']');
    }
    puts("\n]}");
}

static int embed_images(rsclip_model *m, rsclip_encoder *enc, int batch, int n, char **files,
                        float *out) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    size_t px_len = (size_t)3 * mi->image_size * mi->image_size;
    float *px = malloc(sizeof *px * px_len * (size_t)batch);
    if (!px) return app_error("out of memory");
    int rc = APP_OK;
    for (int i = 0; i < n && rc == APP_OK; i += batch) {
        int nb = n - i < batch ? n - i : batch;
        for (int k = 0; k < nb && rc == APP_OK; k++)
            rc = app_image_pixels(m, files[i + k], px + (size_t)k * px_len);
        if (rc == APP_OK &&
            rsclip_encode_images(enc, nb, px, out + (size_t)i * mi->embed_dim, NULL) != RSCLIP_OK)
            rc = app_fail();
    }
    free(px);
    return rc;
}

static int embed_texts(rsclip_model *m, rsclip_encoder *enc, int n, char **texts, float *out) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    size_t ctx = (size_t)mi->text_ctx;
    int32_t *ids = malloc(sizeof *ids * ctx * (size_t)n);
    if (!ids) return app_error("out of memory");
    int rc = APP_OK;
    for (int i = 0; i < n && rc == APP_OK; i++)
        if (rsclip_model_tokenize(m, texts[i], -1, ids + (size_t)i * ctx, NULL) != RSCLIP_OK)
            rc = app_error("text %d: %s", i + 1, rsclip_last_error());
    if (rc == APP_OK && rsclip_encode_texts(enc, n, ids, out, NULL) != RSCLIP_OK) rc = app_fail();
    free(ids);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    enum { OPT_IMAGE = 1000, OPT_TEXT, OPT_NORMALIZE, OPT_DEVICE };
    static const struct option longopts[] = {APP_OPT_MODEL,
                                             APP_OPT_BATCH,
                                             APP_OPT_THREADS,
                                             APP_OPT_PRECISION,
                                             {"image", no_argument, NULL, OPT_IMAGE},
                                             {"text", no_argument, NULL, OPT_TEXT},
                                             {"normalize", no_argument, NULL, OPT_NORMALIZE},
                                             {"device", required_argument, NULL, OPT_DEVICE},
                                             {NULL, 0, NULL, 0}};
    rsclip_device device = {RSCLIP_DEVICE_CPU, 0};
    const char *cmd = "embed";
    app_common co = app_common_default();
    int images = 0, texts = 0, normalize = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":" APP_SHORT_MODEL APP_SHORT_BATCH APP_SHORT_THREADS,
                             longopts, NULL)) != -1) {
        int r = app_common_option(cmd, ch, optarg, &co);
        if (r < 0) return APP_USAGE;
        if (r > 0) continue;
        switch (ch) {
        case OPT_IMAGE:
            images = 1;
            break;
        case OPT_TEXT:
            texts = 1;
            break;
        case OPT_NORMALIZE:
            normalize = 1;
            break;
        case OPT_DEVICE:
            if (app_parse_device(cmd, optarg, &device)) return APP_USAGE;
            break;
        default:
            return app_bad_option(cmd, ch, argv);
        }
    }
    const char *model_name = co.model;
    int batch = co.batch;
    if (!model_name) return app_usage_error(cmd, "no model given (-m MODEL)");
    if (images == texts) return app_usage_error(cmd, "give exactly one of --image or --text");
    int n = argc - optind;
    if (n <= 0) return app_usage_error(cmd, "no %s given", images ? "FILE" : "TEXT");
    if (batch == 0) batch = device.kind == RSCLIP_DEVICE_CPU ? 8 : APP_GPU_BATCH;
    if (batch > n) batch = n;

    rsclip_model *m;
    if (app_load_model(model_name, &m)) return APP_ERROR;
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.max_batch = batch;
    ep.n_threads = co.threads;
    ep.precision = co.precision;
    ep.device = device;
    rsclip_encoder *enc = NULL;
    float *out = calloc((size_t)n * (size_t)mi->embed_dim, sizeof *out);
    int rc = APP_OK;
    if (!out)
        rc = app_error("out of memory");
    else if (rsclip_encoder_new(m, &ep, &enc) != RSCLIP_OK)
        rc = app_fail();
    /* Everything is computed before anything is printed: a bad input leaves stdout empty. */
    if (rc == APP_OK)
        rc = images ? embed_images(m, enc, batch, n, argv + optind, out)
                    : embed_texts(m, enc, n, argv + optind, out);
    if (rc == APP_OK) {
        if (normalize)
            for (int i = 0; i < n; i++)
                rsclip_l2_normalize(out + (size_t)i * mi->embed_dim, mi->embed_dim);
        print_embeddings(model_name, mi->embed_dim, n, out);
    }
    free(out);
    rsclip_encoder_free(enc);
    rsclip_model_free(m);
    return rc;
}
