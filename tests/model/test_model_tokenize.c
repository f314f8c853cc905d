/* rsclip_model_tokenize (the model's SiglipTokenizer settings) on texts.json against the
 * reference input_ids, and text_embeds computed from OUR ids against the reference (the whole
 * text path: string -> ids -> embedding), for both fixtures. */
#include "model_test_util.h"

#include "json/json.h"

static void test_fixture(const char *fixture) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/%s", tu_fixtures(), fixture);
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(dir, NULL, &m));
    REQUIRE(m);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int T = mi->text_ctx, E = mi->embed_dim;
    snprintf(path, sizeof(path), "%s/reference.safetensors", dir);
    rsclip_st_file *ref = NULL;
    CHECK_OK(rsclip_st_open(path, &ref));
    REQUIRE(ref);
    size_t n;
    int32_t *want_ids = mt_ref_i32(ref, "input_ids", &n);
    float *want_emb = mt_ref_f32(ref, "text_embeds", NULL);
    int n_texts = (int)(n / T);

    snprintf(path, sizeof(path), "%s/texts.json", dir);
    rsclip_json *texts = NULL;
    CHECK_OK(rsclip_json_parse_file(path, 1 << 20, &texts));
    REQUIRE(texts && texts->type == RSCLIP_JSON_ARRAY && (int)texts->len == n_texts);

    int32_t *ids = malloc(sizeof(int32_t) * n);
    REQUIRE(ids);
    int bad = 0;
    for (int i = 0; i < n_texts; i++) {
        const rsclip_json *s = &texts->items[i];
        REQUIRE(s->type == RSCLIP_JSON_STRING);
        int nt = -1;
        CHECK_OK(rsclip_model_tokenize(m, s->str, (ptrdiff_t)s->len, ids + i * T, &nt));
        /* n_tokens = ids before the padding: through the EOS after the last non-EOS id (a text
         * may hold a literal "</s>" = 1 in the middle) */
        int last = T - 1;
        while (last >= 0 && want_ids[i * T + last] == 1) last--;
        int want_nt = last + 2 < T ? last + 2 : T;
        CHECK(nt == want_nt);
        if (memcmp(ids + i * T, want_ids + i * T, sizeof(int32_t) * T) != 0) {
            fprintf(stderr, "%s: text %d: ids differ from the reference\n", fixture, i);
            bad++;
        }
    }
    CHECK(bad == 0);
    /* NUL-terminated form gives the same ids */
    int32_t one[64];
    CHECK_OK(rsclip_model_tokenize(m, texts->items[0].str, -1, one, NULL));
    CHECK(memcmp(one, want_ids, sizeof(int32_t) * T) == 0);

    rsclip_encoder *e = NULL;
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.precision = RSCLIP_PRECISION_F32; /* parity with the float32 reference */
    CHECK_OK(rsclip_encoder_new(m, &ep, &e));
    REQUIRE(e);
    float *emb = malloc(sizeof(float) * n_texts * E);
    REQUIRE(emb);
    CHECK_OK(rsclip_encode_texts(e, n_texts, ids, emb, NULL));
    double err = mt_max_rel(emb, want_emb, (size_t)n_texts * E);
    printf("  %-16s ids %d/%d identical; text_embeds from our ids: max rel error %.3g\n", fixture,
           n_texts - bad, n_texts, err);
    CHECK(err <= 1e-5);

    CHECK(rsclip_model_tokenize(m, NULL, -1, one, NULL) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_model_tokenize(m, "\xff\xfe", -1, one, NULL) != RSCLIP_OK);

    free(emb);
    rsclip_encoder_free(e);
    rsclip_json_free(texts);
    free(ids), free(want_ids), free(want_emb);
    rsclip_st_close(ref);
    rsclip_model_free(m);
}

int main(void) {
    test_fixture("siglip-tiny");
    test_fixture("siglip-tiny-f16");
    return tu_finish("test_model_tokenize");
}
