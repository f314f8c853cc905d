/* rsclip classify: zero-shot classification of images against text labels with SigLIP's sigmoid
 * scores (independent probabilities per label; they need not sum to one). */
#include "app.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char app_usage_classify[] =
    "usage: rsclip classify -m MODEL [options] -l LABEL [-l LABEL]... IMAGE...\n"
    "\n"
    "Score each IMAGE against every LABEL, as in the model card's zero-shot example:\n"
    "  logit = cos(image, text) * exp(logit_scale) + logit_bias,  prob = sigmoid(logit)\n"
    "where text is the template with {} replaced by the label. Labels are listed highest\n"
    "probability first. SigLIP's probabilities are independent per label (no softmax).\n"
    "\n"
    "  -l, --label LABEL       a class label (repeat for each class)\n"
    "  -t, --template TEXT     prompt template, {} is the label\n"
    "                          (default \"" RSCLIP_DEFAULT_TEMPLATE "\";\n"
    "                          --template \"{}\" uses the labels as they are)\n"
    "  --json                  print {\"image\": ..., \"labels\": [{\"label\": ..., \"prob\": p,\n"
    "                          \"logit\": l}, ...]} (one object per line per image)\n"
    "  --device D              cpu (default), cuda or cuda:N: encode on that NVIDIA "
    "GPU\n" APP_USAGE_COMMON APP_USAGE_MODEL APP_USAGE_THREADS APP_USAGE_PRECISION;

typedef struct score {
    int label;
    float logit, prob;
} score;

static int by_prob_desc(const void *a, const void *b) {
    const score *x = a, *y = b;
    if (x->prob != y->prob) return x->prob > y->prob ? -1 : 1;
    return x->label - y->label; /* stable: input order among ties */
}

static void print_scores(const char *image, const score *s, int n, char **labels, int json) {
    if (json) {
        fputs("{\"image\": ", stdout);
        app_json_string(stdout, image);
        fputs(", \"labels\": [", stdout);
        for (int i = 0; i < n; i++) {
            fputs(i ? ", {\"label\": " : "{\"label\": ", stdout);
            app_json_string(stdout, labels[s[i].label]);
            fputs(", \"prob\": ", stdout);
            app_json_float(stdout, s[i].prob);
            fputs(", \"logit\": ", stdout);
            app_json_float(stdout, s[i].logit);
            putchar('}');
        }
        puts("]}");
        return;
    }
    printf("%s\n", image);
    printf("  %8s %10s  %s\n", "prob", "logit", "label");
    for (int i = 0; i < n; i++)
        printf("  %8.6f %10.4f  %s\n", (double)s[i].prob, (double)s[i].logit, labels[s[i].label]);
}

/* What the command line asked for. */
typedef struct classify_args {
    app_common co; /* -m, -j, --precision */
    rsclip_device device;
    const char *tmpl;
    int json, n_labels;
    char **labels; /* [argc]: at most one label per argument */
} classify_args;

static int parse_classify(int argc, char **argv, classify_args *a) {
    enum { OPT_JSON = 1000, OPT_DEVICE };
    static const struct option longopts[] = {APP_OPT_MODEL,
                                             APP_OPT_THREADS,
                                             APP_OPT_PRECISION,
                                             {"label", required_argument, NULL, 'l'},
                                             {"template", required_argument, NULL, 't'},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"device", required_argument, NULL, OPT_DEVICE},
                                             {NULL, 0, NULL, 0}};
    const char *cmd = "classify";
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":l:t:" APP_SHORT_MODEL APP_SHORT_THREADS, longopts,
                             NULL)) != -1) {
        int bad = app_common_option(cmd, ch, optarg, &a->co);
        if (bad < 0) return APP_USAGE;
        if (bad > 0) continue;
        switch (ch) {
        case 'l':
            a->labels[a->n_labels++] = optarg;
            break;
        case 't':
            a->tmpl = optarg;
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_DEVICE:
            bad = app_parse_device(cmd, optarg, &a->device);
            break;
        default:
            bad = app_bad_option(cmd, ch, argv);
        }
        if (bad) return APP_USAGE;
    }
    const char *usage = NULL;
    if (!a->co.model)
        usage = "no model given (-m MODEL)";
    else if (a->n_labels == 0)
        usage = "no labels given (-l LABEL, once per class)";
    else if (optind >= argc)
        usage = "no IMAGE given";
    else if (!strstr(a->tmpl, "{}"))
        usage = "--template must contain {} (where the label goes)";
    return usage ? app_usage_error(cmd, "%s", usage) : APP_OK;
}

/* The labels' embeddings: temb [n_labels, dim]. */
static int embed_labels(rsclip_model *m, rsclip_encoder *enc, const classify_args *a, float *temb) {
    size_t ctx = (size_t)rsclip_model_get_info(m)->text_ctx;
    int32_t *ids = malloc(sizeof *ids * ctx * (size_t)a->n_labels);
    int rc = ids ? APP_OK : app_error("out of memory");
    for (int i = 0; i < a->n_labels && rc == APP_OK; i++) {
        char *text = rsclip_prompt_format(a->tmpl, a->labels[i]);
        if (!text) {
            rc = app_fail();
            break;
        }
        if (rsclip_model_tokenize(m, text, -1, ids + (size_t)i * ctx, NULL) != RSCLIP_OK)
            rc = app_error("label %d: %s", i + 1, rsclip_last_error());
        free(text);
    }
    if (rc == APP_OK && rsclip_encode_texts(enc, a->n_labels, ids, temb, NULL) != RSCLIP_OK)
        rc = app_fail();
    free(ids);
    return rc;
}

static int run_classify(rsclip_model *m, const classify_args *a, int argc, char **argv) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    size_t dim = (size_t)mi->embed_dim;
    size_t px_len = (size_t)3 * mi->image_size * mi->image_size;
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.n_threads = a->co.threads;
    ep.precision = a->co.precision;
    ep.device = a->device;
    if (a->device.kind != RSCLIP_DEVICE_CPU) ep.max_batch = APP_GPU_BATCH;
    if (ep.max_batch > a->n_labels) ep.max_batch = a->n_labels;
    rsclip_encoder *enc = NULL;
    float *temb = malloc(sizeof *temb * dim * (size_t)a->n_labels);
    float *iemb = malloc(sizeof *iemb * dim);
    float *px = malloc(sizeof *px * px_len);
    score *s = malloc(sizeof *s * (size_t)a->n_labels);
    int rc = APP_OK;
    if (!temb || !iemb || !px || !s)
        rc = app_error("out of memory");
    else if (rsclip_encoder_new(m, &ep, &enc) != RSCLIP_OK)
        rc = app_fail();
    if (rc == APP_OK) rc = embed_labels(m, enc, a, temb);
    for (int k = optind; k < argc && rc == APP_OK; k++) {
        if ((rc = app_image_pixels(m, argv[k], px))) break;
        if (rsclip_encode_images(enc, 1, px, iemb, NULL) != RSCLIP_OK) {
            rc = app_fail();
            break;
        }
        for (int i = 0; i < a->n_labels; i++) {
            float c = rsclip_cosine(iemb, temb + (size_t)i * dim, (int)dim);
            s[i].label = i;
            s[i].logit = rsclip_model_logit(m, c);
            s[i].prob = rsclip_model_prob(m, c);
        }
        qsort(s, (size_t)a->n_labels, sizeof *s, by_prob_desc);
        if (!a->json && k > optind) putchar('\n');
        print_scores(argv[k], s, a->n_labels, a->labels, a->json);
    }
    free(s);
    free(px);
    free(iemb);
    free(temb);
    rsclip_encoder_free(enc);
    return rc;
}

int cmd_classify(int argc, char **argv) {
    classify_args a = {
        app_common_default(), {RSCLIP_DEVICE_CPU, 0}, RSCLIP_DEFAULT_TEMPLATE, 0, 0, NULL};
    a.labels = calloc((size_t)argc, sizeof *a.labels);
    if (!a.labels) return app_error("out of memory");
    int rc = parse_classify(argc, argv, &a);
    rsclip_model *m = NULL;
    if (rc == APP_OK && app_load_model(a.co.model, &m)) rc = APP_ERROR;
    if (rc == APP_OK) rc = run_classify(m, &a, argc, argv);
    rsclip_model_free(m);
    free(a.labels);
    return rc;
}
