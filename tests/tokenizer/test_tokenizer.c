/* Tokenizer against the fixtures produced by transformers' SiglipTokenizer: the 12 reference rows
 * of input_ids (both fixture folders), the pieces of texts_detail.json, and cases whose expected
 * ids follow from those rows or from the documented pipeline (truncation, empty and
 * whitespace-only text, special tokens, invalid UTF-8, argument checks). */
#include "json/json.h"
#include "rsclip/safetensors.h"
#include "rsclip/status.h"
#include "rsclip/tokenizer.h"
#include "test_util.h"

#include <stdint.h>

#define CAP 64

static const char *fx(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 1024, "%s/%s/%s", tu_fixtures(), dir, name);
    return p;
}

static int encode(const rsclip_tokenizer *tok, const char *text, int32_t *ids, int cap) {
    int n = -1;
    int rc = rsclip_tokenizer_encode(tok, text, -1, ids, cap, &n);
    if (rc) {
        fprintf(stderr, "encode(%s) failed: %s\n", text, rsclip_last_error());
        tu_failures++;
        return -1;
    }
    return n;
}

static int64_t i64_at(const rsclip_st_tensor *t, int64_t i) {
    int64_t v;
    memcpy(&v, (const char *)t->data + 8 * i, 8);
    return v;
}

/* Every row of reference input_ids, and every text's pieces, for one fixture folder. */
static void check_fixture(const char *dir) {
    rsclip_tokenizer *tok = NULL;
    CHECK_OK(rsclip_tokenizer_load(fx(dir, "spiece.model"), NULL, &tok));
    REQUIRE(tok);
    /* SIGLIP_SPEC.md 8: 0 <pad>, 1 </s> (EOS and pad), 2 <unk>; the tiny vocab has 1000 pieces */
    CHECK(rsclip_tokenizer_vocab_size(tok) == 1000);
    CHECK(rsclip_tokenizer_eos_id(tok) == 1);
    CHECK(rsclip_tokenizer_pad_id(tok) == 1);
    CHECK(rsclip_tokenizer_unk_id(tok) == 2);
    CHECK(rsclip_tokenizer_max_length(tok) == 64);
    CHECK(strcmp(rsclip_tokenizer_piece(tok, 0), "<pad>") == 0);
    CHECK(strcmp(rsclip_tokenizer_piece(tok, 1), "</s>") == 0);
    CHECK(strcmp(rsclip_tokenizer_piece(tok, 2), "<unk>") == 0);
    CHECK(rsclip_tokenizer_piece(tok, -1) == NULL);
    CHECK(rsclip_tokenizer_piece(tok, 1000) == NULL);

    rsclip_json *texts = NULL, *detail = NULL;
    CHECK_OK(rsclip_json_parse_file(fx(dir, "texts.json"), 1 << 20, &texts));
    CHECK_OK(rsclip_json_parse_file(fx(dir, "texts_detail.json"), 1 << 20, &detail));
    REQUIRE(texts && texts->type == RSCLIP_JSON_ARRAY && texts->len == 12);
    REQUIRE(detail && detail->type == RSCLIP_JSON_ARRAY && detail->len == 12);

    rsclip_st_file *ref = NULL;
    CHECK_OK(rsclip_st_open(fx(dir, "reference.safetensors"), &ref));
    REQUIRE(ref);
    const rsclip_st_tensor *t = rsclip_st_find(ref, "input_ids");
    REQUIRE(t && t->dtype == RSCLIP_DTYPE_I64 && t->n_dims == 2 && t->shape[0] == 12 &&
            t->shape[1] == CAP);

    for (int i = 0; i < 12; i++) {
        const rsclip_json *jt = &texts->items[i];
        REQUIRE(jt->type == RSCLIP_JSON_STRING);
        int32_t ids[CAP];
        int n = -1;
        CHECK_OK(rsclip_tokenizer_encode(tok, jt->str, (ptrdiff_t)jt->len, ids, CAP, &n));
        int same = 1;
        for (int k = 0; k < CAP; k++) same &= ids[k] == i64_at(t, (int64_t)i * CAP + k);
        if (!same) {
            fprintf(stderr, "%s: text %d ids differ\n  got:", dir, i);
            for (int k = 0; k < CAP; k++) fprintf(stderr, " %d", (int)ids[k]);
            fprintf(stderr, "\n  ref:");
            for (int k = 0; k < CAP; k++) fprintf(stderr, " %d", (int)i64_at(t, i * CAP + k));
            fprintf(stderr, "\n");
        }
        CHECK(same);

        /* pieces of texts_detail.json (they end with </s>; padding not listed) */
        const rsclip_json *d = &detail->items[i];
        int64_t index = -1;
        CHECK(rsclip_json_get_int(d, "index", &index) && index == i);
        const rsclip_json *pieces = rsclip_json_get(d, "pieces");
        REQUIRE(pieces && pieces->type == RSCLIP_JSON_ARRAY);
        CHECK((size_t)n == pieces->len);
        for (size_t k = 0; k < pieces->len && k < (size_t)n; k++) {
            const char *got = rsclip_tokenizer_piece(tok, ids[k]);
            if (!got || strcmp(got, pieces->items[k].str) != 0) {
                fprintf(stderr, "%s: text %d piece %zu: got '%s' want '%s'\n", dir, i, k,
                        got ? got : "(null)", pieces->items[k].str);
                tu_failures++;
            }
        }
    }
    rsclip_st_close(ref);
    rsclip_json_free(texts);
    rsclip_json_free(detail);
    rsclip_tokenizer_free(tok);
}

static void check_all_eos(const rsclip_tokenizer *tok, const char *text) {
    int32_t ids[CAP];
    int n = encode(tok, text, ids, CAP);
    CHECK(n == 1);
    int ok = 1;
    for (int k = 0; k < CAP; k++) ok &= ids[k] == 1;
    if (!ok) fprintf(stderr, "expected only EOS/padding for '%s'\n", text);
    CHECK(ok);
}

static void check_cases(void) {
    rsclip_tokenizer *tok = NULL;
    CHECK_OK(rsclip_tokenizer_load(fx("siglip-tiny", "spiece.model"), NULL, &tok));
    REQUIRE(tok);
    int32_t ids[CAP], ids2[CAP];

    /* empty / whitespace / punctuation only / "▁" only -> [EOS, pad...] */
    check_all_eos(tok, "");
    check_all_eos(tok, "   \t\n\r\v\f \xc2\xa0\xe3\x80\x80\xe2\x80\x83\x1c  ");
    check_all_eos(tok, "!!! ... -- ?!");
    check_all_eos(tok, "\xe2\x96\x81");
    check_all_eos(tok, " \xe2\x96\x81\xe2\x96\x81 ");
    int n = -1;
    CHECK_OK(rsclip_tokenizer_encode(tok, NULL, 0, ids, CAP, &n));
    CHECK(n == 1 && ids[0] == 1 && ids[CAP - 1] == 1);
    CHECK_OK(rsclip_tokenizer_encode(tok, "solar farm", 0, ids, CAP, &n)); /* len 0 = empty */
    CHECK(n == 1);

    /* explicit length: only the first 7 bytes count */
    int na = encode(tok, "a river", ids, CAP);
    CHECK_OK(rsclip_tokenizer_encode(tok, "a river and more", 7, ids2, CAP, &n));
    CHECK(n == na && memcmp(ids, ids2, sizeof ids) == 0);

    /* same text, different case and whitespace: the same ids (lower-casing, collapsing) */
    na = encode(tok, "aerial view of dense residential buildings near the highway", ids, CAP);
    n = encode(tok, "  AERIAL\tview OF\n\ndense residential, buildings near the HIGHWAY!  ", ids2,
               CAP);
    CHECK(n == na && memcmp(ids, ids2, sizeof ids) == 0);

    /* special tokens. Row 10 of the reference is "dense forest </s> with a lake":
     *   [▁, den, se, ▁forest, </s>, w, i, th, ▁a, ▁lake, </s>] */
    int32_t row10[CAP];
    int n10 = encode(tok, "dense forest </s> with a lake", row10, CAP);
    CHECK(n10 == 11 && row10[4] == 1);
    /* upper-case </S> is lower-cased first, then split out as the special token */
    n = encode(tok, "dense forest </S> with a lake", ids, CAP);
    CHECK(n == n10 && memcmp(ids, row10, sizeof ids) == 0);
    /* <unk> in the text becomes id 2 the same way; no whitespace matters around either */
    n = encode(tok, "dense forest   <unk>with a lake", ids, CAP);
    CHECK(n == n10);
    for (int k = 0; k < n10 && k < n; k++) CHECK(ids[k] == (k == 4 ? 2 : row10[k]));
    /* a text ending in </s> gets no second EOS */
    na = encode(tok, "dense forest", ids, CAP);
    n = encode(tok, "dense forest </s>", ids2, CAP);
    CHECK(na == 5 && n == 5 && memcmp(ids, ids2, sizeof ids) == 0);
    /* a leading special token: the "▁" before it vanishes, the next chunk has no word prefix */
    n = encode(tok, "</s> with a lake", ids, CAP);
    CHECK(n == 7 && ids[0] == 1);
    for (int k = 1; k < n; k++) CHECK(ids[k] == row10[k + 4]);
    /* consecutive special tokens */
    n = encode(tok, "</s></s><unk> </s>", ids, CAP);
    CHECK(n == 4 && ids[0] == 1 && ids[1] == 1 && ids[2] == 2 && ids[3] == 1);

    /* U+2581 in the text is a space */
    na = encode(tok, "dense forest", ids, CAP);
    n = encode(tok,
               "dense\xe2\x96\x81"
               "forest",
               ids2, CAP);
    CHECK(n == na && memcmp(ids, ids2, sizeof ids) == 0);

    /* truncation: 200 words -> the first 63 ids of the full encoding, then EOS */
    static const char *words[] = {"a",    "remote", "sensing",     "image",
                                  "of",   "dense",  "residential", "buildings",
                                  "near", "the",    "highway",     "river"};
    char longtext[4096] = "";
    for (int w = 0; w < 200; w++) {
        strcat(longtext, words[w % 12]);
        strcat(longtext, " ");
    }
    int32_t full[1024];
    int nfull = encode(tok, longtext, full, 1024);
    CHECK(nfull > 200 && nfull < 1024 && full[nfull - 1] == 1);
    n = encode(tok, longtext, ids, CAP);
    CHECK(n == CAP);
    CHECK(memcmp(ids, full, 63 * sizeof *ids) == 0);
    CHECK(ids[63] == 1);
    /* the same with cap 1 (only EOS) and 2 (one id + EOS) */
    n = encode(tok, longtext, ids, 1);
    CHECK(n == 1 && ids[0] == 1);
    n = encode(tok, longtext, ids, 2);
    CHECK(n == 2 && ids[0] == full[0] && ids[1] == 1);

    /* invalid UTF-8: refused with the byte offset */
    static const struct {
        const char *s;
        int at;
    } bad[] = {
        {"\xff", 0},
        {"ab\x80", 2},
        {"river \xc3", 6},                       /* truncated sequence */
        {"a\xc0\xaf", 1},                        /* overlong '/' */
        {"ok \xe0\x80\xaf", 3},                  /* overlong, 3 bytes */
        {"x\xed\xa0\x80y", 1},                   /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 0},                 /* > U+10FFFF */
        {"caf\xc3\xa9 \xe2\x82", 6},             /* valid then truncated */
        {"\xe6\xb0\xb4\xf8\x88\x80\x80\x80", 3}, /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = rsclip_tokenizer_encode(tok, bad[i].s, -1, ids, CAP, &n);
        CHECK(rc == RSCLIP_ERR_INVALID_ARG);
        char want[64];
        snprintf(want, sizeof want, "at byte %d", bad[i].at);
        if (!strstr(rsclip_last_error(), want)) {
            fprintf(stderr, "bad UTF-8 %zu: message '%s' lacks '%s'\n", i, rsclip_last_error(),
                    want);
            tu_failures++;
        }
    }
    /* a NUL inside an explicit length is a character like any other, not an error */
    CHECK_OK(rsclip_tokenizer_encode(tok, "a\0b", 3, ids, CAP, &n));

    /* argument checks */
    CHECK(rsclip_tokenizer_encode(NULL, "a", -1, ids, CAP, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tokenizer_encode(tok, "a", -1, NULL, CAP, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tokenizer_encode(tok, "a", -1, ids, 0, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tokenizer_encode(tok, NULL, 3, ids, CAP, &n) == RSCLIP_ERR_INVALID_ARG);
    CHECK_OK(rsclip_tokenizer_encode(tok, "a", -1, ids, CAP, NULL));

    rsclip_tokenizer_free(tok);
    rsclip_tokenizer_free(NULL);

    /* load errors name the file */
    rsclip_tokenizer *t2 = (rsclip_tokenizer *)&t2;
    CHECK(rsclip_tokenizer_load("/nonexistent/spiece.model", NULL, &t2) == RSCLIP_ERR_NOT_FOUND);
    CHECK(t2 == NULL);
    CHECK(strstr(rsclip_last_error(), "/nonexistent/spiece.model") != NULL);
    CHECK(rsclip_tokenizer_load(fx("siglip-tiny", "texts.json"), NULL, &t2) == RSCLIP_ERR_FORMAT);
    CHECK(strstr(rsclip_last_error(), "texts.json: spiece.model: ") != NULL);
    CHECK(rsclip_tokenizer_load(NULL, NULL, &t2) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_tokenizer_load(fx("siglip-tiny", "spiece.model"), NULL, NULL) ==
          RSCLIP_ERR_INVALID_ARG);

    /* params */
    rsclip_tokenizer_params p = rsclip_tokenizer_default_params();
    CHECK(p.do_lower_case == 1 && p.max_length == 64);
    CHECK(!strcmp(p.eos_token, "</s>") && !strcmp(p.unk_token, "<unk>") &&
          !strcmp(p.pad_token, "</s>"));
    p.max_length = 0;
    CHECK(rsclip_tokenizer_load(fx("siglip-tiny", "spiece.model"), &p, &t2) ==
          RSCLIP_ERR_INVALID_ARG);
    p = rsclip_tokenizer_default_params();
    memset(p.eos_token, 'x', sizeof p.eos_token);
    CHECK(rsclip_tokenizer_load(fx("siglip-tiny", "spiece.model"), &p, &t2) ==
          RSCLIP_ERR_INVALID_ARG);
    /* without lower-casing, lower-case text encodes as before and "</S>" is no special token */
    p = rsclip_tokenizer_default_params();
    p.do_lower_case = 0;
    p.max_length = 16;
    CHECK_OK(rsclip_tokenizer_load(fx("siglip-tiny", "spiece.model"), &p, &t2));
    if (t2) {
        CHECK(rsclip_tokenizer_max_length(t2) == 16);
        CHECK_OK(rsclip_tokenizer_encode(t2, "dense forest </s> with a lake", -1, ids, CAP, &n));
        CHECK(n == n10 && memcmp(ids, row10, sizeof ids) == 0);
        CHECK_OK(rsclip_tokenizer_encode(t2, "dense forest </S> with a lake", -1, ids, CAP, &n));
        CHECK(n != n10 || memcmp(ids, row10, sizeof ids) != 0);
        rsclip_tokenizer_free(t2);
    }
}

int main(void) {
    check_fixture("siglip-tiny");
    check_fixture("siglip-tiny-f16");
    check_cases();
    return tu_finish("test_tokenizer");
}
