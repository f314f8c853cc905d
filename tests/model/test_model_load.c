/* Loading checkpoints built at run time in temp folders: hostile folders fail with a message
 * naming the file and tensor (never a crash); a sharded copy (2 shards + index json) and a BF16
 * copy load and give exactly the numbers of their single-file F32 equivalents. */
#include "model_test_util.h"

static const char *g_src; /* tests/fixtures/siglip-tiny */
static rsclip_st_file *g_st;
static mt_tensor *g_t;
static int g_n;
static float *g_pixels; /* one image [3, S, S] */
static int32_t *g_ids;  /* one text [64] */

/* A folder with the fixture's side files (each can be left out) and the given config text. */
static char *make_folder(const char *config, int with_spiece) {
    char *dir = mt_tempdir();
    char src[4200], dst[4200];
    const char *files[] = {"tokenizer_config.json", "preprocessor_config.json", "spiece.model"};
    for (int i = 0; i < 3; i++) {
        if (i == 2 && !with_spiece) continue;
        snprintf(src, sizeof(src), "%s/%s", g_src, files[i]);
        snprintf(dst, sizeof(dst), "%s/%s", dir, files[i]);
        mt_copy_file(src, dst);
    }
    snprintf(dst, sizeof(dst), "%s/config.json", dir);
    if (config) {
        mt_write_text(dst, config);
    } else {
        snprintf(src, sizeof(src), "%s/config.json", g_src);
        mt_copy_file(src, dst);
    }
    return dir;
}

static void write_model(const char *dir, const mt_tensor *t, int n) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    REQUIRE(mt_write_safetensors(path, t, n) == 0);
}

static int find_tensor(const char *name) {
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_t[i].name, name) == 0) return i;
    fprintf(stderr, "no tensor %s in the fixture\n", name);
    exit(1);
}

/* Load must fail with `code` and a message containing every string in `needles`. */
static void expect_fail(const char *dir, int code, const char *const *needles, const char *what) {
    rsclip_model *m = (rsclip_model *)1;
    int rc = rsclip_model_load(dir, NULL, &m);
    const char *msg = rsclip_last_error();
    printf("  %-28s -> %s: %s\n", what, rsclip_status_name(rc), msg);
    CHECK(rc == code);
    CHECK(m == NULL);
    for (int i = 0; needles[i]; i++) {
        if (!strstr(msg, needles[i])) {
            fprintf(stderr, "%s: message lacks '%s'\n", what, needles[i]);
            tu_failures++;
        }
    }
}

static void encode(const rsclip_model *m, float *img, float *txt) {
    rsclip_encoder *e = NULL;
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.n_threads = 1;
    CHECK_OK(rsclip_encoder_new(m, &ep, &e));
    REQUIRE(e);
    CHECK_OK(rsclip_encode_images(e, 1, g_pixels, img, NULL));
    CHECK_OK(rsclip_encode_texts(e, 1, g_ids, txt, NULL));
    rsclip_encoder_free(e);
}

static void test_hostile(void) {
    char *dir;
    mt_tensor *t = malloc(sizeof(mt_tensor) * (size_t)g_n);
    REQUIRE(t);

    /* missing tensor */
    dir = make_folder(NULL, 1);
    int k = find_tensor("text_model.head.bias"), n = 0;
    for (int i = 0; i < g_n; i++)
        if (i != k) t[n++] = g_t[i];
    write_model(dir, t, n);
    expect_fail(
        dir, RSCLIP_ERR_NOT_FOUND,
        (const char *[]){"model.safetensors", "missing tensor 'text_model.head.bias'", NULL},
        "missing tensor");
    mt_rmtree(dir);

    /* wrong shape (same byte count) */
    dir = make_folder(NULL, 1);
    memcpy(t, g_t, sizeof(mt_tensor) * (size_t)g_n);
    k = find_tensor("vision_model.head.attention.out_proj.weight");
    t[k].shape[0] = 16, t[k].shape[1] = 64;
    write_model(dir, t, g_n);
    expect_fail(dir, RSCLIP_ERR_MISMATCH,
                (const char *[]){"model.safetensors",
                                 "tensor 'vision_model.head.attention.out_proj.weight': expected "
                                 "shape [32, 32], found [16, 64]",
                                 NULL},
                "wrong shape");
    mt_rmtree(dir);

    /* a 4-D weight given as 2-D */
    dir = make_folder(NULL, 1);
    memcpy(t, g_t, sizeof(mt_tensor) * (size_t)g_n);
    k = find_tensor("vision_model.embeddings.patch_embedding.weight");
    t[k].nd = 2, t[k].shape[1] = 768;
    write_model(dir, t, g_n);
    expect_fail(dir, RSCLIP_ERR_MISMATCH,
                (const char *[]){"expected shape [32, 3, 16, 16], found [32, 768]", NULL},
                "wrong rank");
    mt_rmtree(dir);

    /* integer dtype for a weight */
    dir = make_folder(NULL, 1);
    memcpy(t, g_t, sizeof(mt_tensor) * (size_t)g_n);
    k = find_tensor("text_model.final_layer_norm.bias");
    static int64_t zeros[32];
    t[k].dtype = "I64", t[k].data = zeros, t[k].nbytes = sizeof(zeros);
    write_model(dir, t, g_n);
    expect_fail(
        dir, RSCLIP_ERR_UNSUPPORTED,
        (const char *[]){"model.safetensors", "text_model.final_layer_norm.bias", "I64", NULL},
        "I64 weight");
    mt_rmtree(dir);

    /* config.json garbage */
    dir = make_folder("{\"model_type\": \"siglip\", \"text_config\": {", 1);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_FORMAT, (const char *[]){"config.json", NULL}, "config garbage");
    mt_rmtree(dir);

    /* heads do not divide hidden */
    dir = make_folder("{\"model_type\": \"siglip\", \"text_config\": {\"hidden_size\": 32, "
                      "\"num_attention_heads\": 5}, \"vision_config\": {\"hidden_size\": 32}}",
                      1);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_FORMAT,
                (const char *[]){"config.json", "text_config", "not divisible", NULL},
                "heads do not divide hidden");
    mt_rmtree(dir);

    /* text and vision widths differ */
    dir = make_folder("{\"model_type\": \"siglip\", \"text_config\": {\"hidden_size\": 48}}", 1);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_MISMATCH, (const char *[]){"config.json", "48", "768", NULL},
                "text/vision widths differ");
    mt_rmtree(dir);

    /* a hostile size in the config must not allocate: the shapes disagree first */
    dir = make_folder("{\"model_type\": \"siglip\", \"text_config\": {\"hidden_size\": 32, "
                      "\"num_attention_heads\": 4, \"vocab_size\": 4000000, "
                      "\"intermediate_size\": 64, \"num_hidden_layers\": 2}, \"vision_config\": "
                      "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"image_size\": 256, "
                      "\"intermediate_size\": 64, \"num_hidden_layers\": 2}}",
                      1);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_MISMATCH,
                (const char *[]){"text_model.embeddings.token_embedding.weight",
                                 "expected shape [4000000, 32], found [1000, 32]", NULL},
                "huge vocab in config");
    mt_rmtree(dir);

    /* negative / non-integer values */
    dir = make_folder("{\"model_type\": \"siglip\", \"vision_config\": {\"patch_size\": -16}}", 1);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_FORMAT, (const char *[]){"config.json", "patch_size", NULL},
                "negative patch size");
    mt_rmtree(dir);

    /* not a SigLIP checkpoint */
    dir = make_folder("{\"model_type\": \"clip\"}", 1);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_UNSUPPORTED, (const char *[]){"config.json", "clip", NULL},
                "model_type clip");
    mt_rmtree(dir);

    /* missing spiece.model */
    dir = make_folder(NULL, 0);
    write_model(dir, g_t, g_n);
    expect_fail(dir, RSCLIP_ERR_NOT_FOUND, (const char *[]){"spiece.model", NULL},
                "missing spiece.model");
    mt_rmtree(dir);

    /* no checkpoint at all */
    dir = make_folder(NULL, 1);
    expect_fail(dir, RSCLIP_ERR_NOT_FOUND, (const char *[]){"model.safetensors", NULL},
                "no model.safetensors");
    mt_rmtree(dir);

    /* a truncated checkpoint: the safetensors module's message comes through */
    dir = make_folder(NULL, 1);
    {
        char path[4200];
        snprintf(path, sizeof(path), "%s/model.safetensors", dir);
        mt_write_text(path, "\x10\0\0\0\0\0\0\0{\"a\":");
    }
    {
        rsclip_model *m = NULL;
        CHECK(rsclip_model_load(dir, NULL, &m) != RSCLIP_OK && m == NULL);
        CHECK(strstr(rsclip_last_error(), "model.safetensors") != NULL);
    }
    mt_rmtree(dir);

    /* a folder without config.json, a file, a missing path */
    dir = mt_tempdir();
    expect_fail(dir, RSCLIP_ERR_NOT_FOUND, (const char *[]){dir, "config.json", NULL},
                "no config.json");
    char file[4200];
    snprintf(file, sizeof(file), "%s/some_file", dir);
    mt_write_text(file, "x");
    expect_fail(file, RSCLIP_ERR_INVALID_ARG, (const char *[]){file, "not a folder", NULL},
                "a file");
    snprintf(file, sizeof(file), "%s/nope", dir);
    expect_fail(file, RSCLIP_ERR_NOT_FOUND, (const char *[]){file, NULL}, "missing path");
    mt_rmtree(dir);

    rsclip_model *m = (rsclip_model *)1;
    CHECK(rsclip_model_load(NULL, NULL, &m) == RSCLIP_ERR_INVALID_ARG && m == NULL);
    CHECK(rsclip_model_load(g_src, NULL, NULL) == RSCLIP_ERR_INVALID_ARG);
    free(t);
}

/* Split the checkpoint into two shards + model.safetensors.index.json. */
static void test_sharded(const float *img_ref, const float *txt_ref) {
    /* unknown keys (including "_provenance") are ignored */
    char *dir = make_folder(
        "{\"_provenance\": {\"NOTE\": \"x\"}, \"architectures\": [\"SiglipModel\"], "
        "\"model_type\": \"siglip\", \"something_new\": [1, {\"a\": null}], \"text_config\": "
        "{\"hidden_size\": 32, \"intermediate_size\": 64, \"num_attention_heads\": 4, "
        "\"num_hidden_layers\": 2, \"vocab_size\": 1000, \"_x\": 1}, \"vision_config\": "
        "{\"hidden_size\": 32, \"image_size\": 256, \"intermediate_size\": 64, "
        "\"num_attention_heads\": 4, \"num_hidden_layers\": 2}}",
        1);
    int half = g_n / 2;
    char path[4200];
    snprintf(path, sizeof(path), "%s/model-00001-of-00002.safetensors", dir);
    REQUIRE(mt_write_safetensors(path, g_t, half) == 0);
    snprintf(path, sizeof(path), "%s/model-00002-of-00002.safetensors", dir);
    REQUIRE(mt_write_safetensors(path, g_t + half, g_n - half) == 0);
    size_t cap = 256 + (size_t)g_n * 160, len = 0;
    char *idx = malloc(cap);
    REQUIRE(idx);
    len += (size_t)snprintf(idx, cap, "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {");
    for (int i = 0; i < g_n; i++)
        len += (size_t)snprintf(idx + len, cap - len,
                                "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                                g_t[i].name, i < half ? 1 : 2);
    snprintf(idx + len, cap - len, "}}");
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    mt_write_text(path, idx);

    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(dir, NULL, &m));
    REQUIRE(m);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    CHECK(strlen(mi->fingerprint) == 71 && strcmp(mi->weights_dtype, "F32") == 0);
    CHECK(strlen(mi->fingerprint_legacy) == 16);
    /* sharded: the SHA-256 of sha256sum's listing of the shards, in name order */
    char cmd[4400], want[80] = "sha256:";
    snprintf(cmd, sizeof cmd, "cd '%s' && sha256sum model-0000*.safetensors | sha256sum", dir);
    FILE *pipe = popen(cmd, "r");
    REQUIRE(pipe && fread(want + 7, 1, 64, pipe) == 64);
    pclose(pipe);
    CHECK(strcmp(mi->fingerprint, want) == 0);
    float img[32], txt[32];
    encode(m, img, txt);
    CHECK(memcmp(img, img_ref, sizeof(img)) == 0);
    CHECK(memcmp(txt, txt_ref, sizeof(txt)) == 0);
    printf("  sharded (2 files + index): outputs %s, fingerprint %s\n",
           memcmp(img, img_ref, sizeof(img)) || memcmp(txt, txt_ref, sizeof(txt)) ? "DIFFER"
                                                                                  : "identical",
           mi->fingerprint);
    rsclip_model_free(m);

    /* the index names a tensor the shard does not hold */
    snprintf(idx + len, cap - len, ", \"extra\": \"model-00001-of-00002.safetensors\"}}");
    mt_write_text(path, idx);
    /* still loads: extra names are unused */
    m = NULL;
    CHECK_OK(rsclip_model_load(dir, NULL, &m));
    rsclip_model_free(m);

    /* a needed tensor mapped to the wrong shard */
    len = 0;
    len += (size_t)snprintf(idx, cap, "{\"weight_map\": {");
    for (int i = 0; i < g_n; i++)
        len +=
            (size_t)snprintf(idx + len, cap - len, "%s\"%s\": \"model-00001-of-00002.safetensors\"",
                             i ? ", " : "", g_t[i].name);
    snprintf(idx + len, cap - len, "}}");
    mt_write_text(path, idx);
    char needle[256];
    snprintf(needle, sizeof(needle), "missing tensor '%s'", g_t[half].name);
    expect_fail(dir, RSCLIP_ERR_NOT_FOUND,
                (const char *[]){"model-00001-of-00002.safetensors", needle, NULL},
                "shard lacks tensor");

    /* a tensor absent from the weight_map, and a path escaping the folder */
    mt_write_text(path,
                  "{\"weight_map\": {\"logit_scale\": \"model-00001-of-00002.safetensors\"}}");
    expect_fail(
        dir, RSCLIP_ERR_NOT_FOUND,
        (const char *[]){"model.safetensors.index.json", "missing tensor 'logit_bias'", NULL},
        "index lacks tensor");
    mt_write_text(path, "{\"weight_map\": {\"logit_scale\": \"../model.safetensors\"}}");
    expect_fail(dir, RSCLIP_ERR_FORMAT, (const char *[]){"model.safetensors.index.json", NULL},
                "shard outside folder");
    mt_write_text(path, "{\"weight_map\": 3}");
    expect_fail(dir, RSCLIP_ERR_FORMAT, (const char *[]){"weight_map", NULL}, "bad weight_map");
    free(idx);
    mt_rmtree(dir);
}

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even (no NaNs in the fixture) */
    return (uint16_t)(u >> 16);
}

/* A BF16 checkpoint and the F32 checkpoint of the same (widened) values give identical outputs. */
static void test_bf16(void) {
    mt_tensor *tb = malloc(sizeof(mt_tensor) * (size_t)g_n);
    mt_tensor *tf = malloc(sizeof(mt_tensor) * (size_t)g_n);
    void **bufs = calloc((size_t)g_n * 2, sizeof(void *));
    REQUIRE(tb && tf && bufs);
    for (int i = 0; i < g_n; i++) {
        const rsclip_st_tensor *st = rsclip_st_find(g_st, g_t[i].name);
        size_t n = (size_t)st->n_elements;
        float *f = malloc(sizeof(float) * n);
        uint16_t *b = malloc(sizeof(uint16_t) * n);
        REQUIRE(f && b);
        REQUIRE(rsclip_st_to_f32(st, f, n) == 0);
        for (size_t j = 0; j < n; j++) {
            b[j] = f32_to_bf16(f[j]);
            uint32_t u = (uint32_t)b[j] << 16;
            memcpy(&f[j], &u, 4);
        }
        tb[i] = g_t[i], tb[i].dtype = "BF16", tb[i].data = b, tb[i].nbytes = n * 2;
        tf[i] = g_t[i], tf[i].dtype = "F32", tf[i].data = f, tf[i].nbytes = n * 4;
        bufs[2 * i] = f, bufs[2 * i + 1] = b;
    }
    char *db = make_folder(NULL, 1), *df = make_folder(NULL, 1);
    write_model(db, tb, g_n);
    write_model(df, tf, g_n);
    rsclip_model *mb = NULL, *mf = NULL;
    CHECK_OK(rsclip_model_load(db, NULL, &mb));
    CHECK_OK(rsclip_model_load(df, NULL, &mf));
    REQUIRE(mb && mf);
    CHECK(strcmp(rsclip_model_get_info(mb)->weights_dtype, "BF16") == 0);
    CHECK(strcmp(rsclip_model_get_info(mf)->weights_dtype, "F32") == 0);
    CHECK(strcmp(rsclip_model_get_info(mb)->fingerprint, rsclip_model_get_info(mf)->fingerprint));
    float ib[32], tbv[32], iff[32], tff[32];
    encode(mb, ib, tbv);
    encode(mf, iff, tff);
    CHECK(memcmp(ib, iff, sizeof(ib)) == 0 && memcmp(tbv, tff, sizeof(tbv)) == 0);
    printf("  BF16 checkpoint == F32 checkpoint of the widened values: %s\n",
           memcmp(ib, iff, sizeof(ib)) || memcmp(tbv, tff, sizeof(tbv)) ? "NO" : "yes");
    /* set_name */
    CHECK_OK(rsclip_model_set_name(mb, "lcybuaa/Git-RSCLIP"));
    CHECK(strcmp(rsclip_model_get_info(mb)->name, "lcybuaa/Git-RSCLIP") == 0);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(rsclip_model_set_name(mb, longname) == RSCLIP_ERR_INVALID_ARG);
    rsclip_model_free(mb);
    rsclip_model_free(mf);
    mt_rmtree(db);
    mt_rmtree(df);
    for (int i = 0; i < 2 * g_n; i++) free(bufs[i]);
    free(bufs), free(tb), free(tf);
}

int main(void) {
    static char src[4096];
    snprintf(src, sizeof(src), "%s/siglip-tiny", tu_fixtures());
    g_src = src;
    char path[4200];
    snprintf(path, sizeof(path), "%s/model.safetensors", g_src);
    CHECK_OK(rsclip_st_open(path, &g_st));
    REQUIRE(g_st);
    g_t = mt_tensors_of(g_st, &g_n);

    rsclip_st_file *ref = NULL;
    snprintf(path, sizeof(path), "%s/reference.safetensors", g_src);
    CHECK_OK(rsclip_st_open(path, &ref));
    REQUIRE(ref);
    g_pixels = mt_ref_f32(ref, "pixel_values", NULL);
    g_ids = mt_ref_i32(ref, "input_ids", NULL);

    /* the fixture folder itself: folder name, defaults for keys config.json leaves out */
    rsclip_model *m = NULL;
    snprintf(path, sizeof(path), "%s/", g_src); /* trailing slash: name is still the base name */
    CHECK_OK(rsclip_model_load(path, NULL, &m));
    REQUIRE(m);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    CHECK(strcmp(mi->name, "siglip-tiny") == 0);
    CHECK(mi->text_ctx == 64 && mi->vision.layer_norm_eps == 1e-6 && mi->patch_size == 16);
    CHECK(mi->do_resize && mi->do_rescale && mi->do_normalize);
    CHECK(mi->rescale_factor == 0.00392156862745098 && mi->image_mean[1] == 0.5f);
    CHECK(rsclip_model_tokenizer(m) != NULL);
    float img[32], txt[32];
    encode(m, img, txt);

    test_hostile();
    test_sharded(img, txt);
    test_bf16();

    rsclip_model_free(m);
    free(g_pixels);
    free(g_ids);
    free(g_t);
    rsclip_st_close(ref);
    rsclip_st_close(g_st);
    return tu_finish("test_model_load");
}
