/* spiece.model handling beyond the fixture: small models written here by hand (protobuf encoded
 * in the test) whose segmentations can be worked out on paper, a hand-built precompiled charsmap,
 * and hostile inputs: every malformed structure must give RSCLIP_ERR_FORMAT (or UNSUPPORTED)
 * naming the file, never a crash. The exhaustive truncation / byte-flip sweep over the real file
 * lives in test_tokenizer_hostile.c. */
#include "rsclip/status.h"
#include "rsclip/tokenizer.h"
#include "test_util.h"

#include <stdint.h>

/* ---- a tiny protobuf writer ---- */
typedef struct pbw {
    uint8_t *p;
    size_t n, cap;
} pbw;

static void w_bytes(pbw *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        REQUIRE(w->p);
    }
    memcpy(w->p + w->n, p, n);
    w->n += n;
}
static void w_varint(pbw *w, uint64_t v) {
    uint8_t b[10];
    int k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[k] |= 0x80;
        k++;
    } while (v);
    w_bytes(w, b, (size_t)k);
}
static void w_key(pbw *w, unsigned field, unsigned wire) {
    w_varint(w, (uint64_t)field << 3 | wire);
}
static void w_len(pbw *w, unsigned field, const void *p, size_t n) {
    w_key(w, field, 2);
    w_varint(w, n);
    w_bytes(w, p, n);
}
static void w_f32(pbw *w, unsigned field, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    w_key(w, field, 5);
    w_bytes(w, b, 4);
}
static void w_piece(pbw *w, const char *s, float score, int type) {
    pbw m = {0};
    w_len(&m, 1, s, strlen(s));
    w_f32(&m, 2, score);
    if (type != 1) {
        w_key(&m, 3, 0);
        w_varint(&m, (uint64_t)type);
    }
    w_len(w, 1, m.p, m.n);
    free(m.p);
}

enum { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER = 4, UNUSED = 5, BYTE = 6 };

/* <pad> </s> <unk> then the given normal pieces (NULL-terminated list of piece, score pairs). */
static void w_base(pbw *w) {
    w_piece(w, "<pad>", 0, CONTROL);
    w_piece(w, "</s>", 0, CONTROL);
    w_piece(w, "<unk>", 0, UNKNOWN);
}

static rsclip_tokenizer *load(const pbw *w, const rsclip_tokenizer_params *p) {
    rsclip_tokenizer *tok = NULL;
    int rc = rsclip_tokenizer_load_memory(w->p, w->n, "hand.model", p, &tok);
    if (rc) fprintf(stderr, "load failed: %s\n", rsclip_last_error());
    CHECK(rc == RSCLIP_OK);
    return tok;
}

static void expect_ids(const rsclip_tokenizer *tok, const char *text, const int *want, int n_want) {
    int32_t ids[32];
    int n = -1;
    CHECK_OK(rsclip_tokenizer_encode(tok, text, -1, ids, 32, &n));
    int ok = n == n_want;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    for (int i = n; ok && i < 32; i++) ok = ids[i] == rsclip_tokenizer_pad_id(tok);
    if (!ok) {
        fprintf(stderr, "'%s': got", text);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        tu_failures++;
    }
}

static void expect_fail(const pbw *w, int code, const char *needle) {
    rsclip_tokenizer *tok = (rsclip_tokenizer *)&tok;
    int rc = rsclip_tokenizer_load_memory(w->p, w->n, "evil.model", NULL, &tok);
    CHECK(rc == code);
    CHECK(tok == NULL);
    const char *msg = rsclip_last_error();
    if (rc != RSCLIP_OK &&
        (strncmp(msg, "evil.model: spiece.model: ", 26) != 0 || (needle && !strstr(msg, needle)))) {
        fprintf(stderr, "unexpected message '%s' (want '%s')\n", msg, needle ? needle : "");
        tu_failures++;
    }
    if (rc == RSCLIP_OK) rsclip_tokenizer_free(tok);
}

/* Segmentation rules worked out by hand on a model without charsmap. */
static void check_hand_model(void) {
    pbw w = {0};
    w_base(&w);                         /* ids 0, 1, 2 */
    w_piece(&w, "\xe2\x96\x81", -1, 1); /* 3 "▁" */
    w_piece(&w, "a", -2, 1);            /* 4 */
    w_piece(&w, "b", -2, 1);            /* 5 */
    w_piece(&w, "ab", -3, 1);           /* 6: beats a+b (-4) */
    w_piece(&w, "ba", 0, UNUSED);       /* 7: best score but never matched */
    w_piece(&w, "c", -1, 1);            /* 8 */
    w_piece(&w, "cc", -2, 1);           /* 9: "ccc" ties three ways at -3 */
    w_piece(&w, "x", -5, 1);            /* 10 */
    w_piece(&w, "y", -5, 1);            /* 11 */
    w_piece(&w, "xy", -100, USER);      /* 12: scored 2 * max_score - 0.1 = -2.1 */
    w_piece(&w, "q", -50, 1);           /* 13: the lowest score: unk = -60 */
    rsclip_tokenizer *tok = load(&w, NULL);
    if (tok) {
        CHECK(rsclip_tokenizer_vocab_size(tok) == 14);
        CHECK(rsclip_tokenizer_eos_id(tok) == 1 && rsclip_tokenizer_unk_id(tok) == 2);
        /* "▁ab ba" -> ▁ ab ▁ b a </s>  (the unused "ba" is skipped) */
        expect_ids(tok, "ab ba", (int[]){3, 6, 3, 5, 4, 1}, 6);
        /* ties: best[2] keeps "cc" (found first, from start 0); best[3] keeps c|cc (start 1
         * found before start 2): ▁ c cc */
        expect_ids(tok, "ccc", (int[]){3, 8, 9, 1}, 4);
        /* user-defined "xy" (-2.1) beats x+y (-10) */
        expect_ids(tok, "xyx", (int[]){3, 12, 10, 1}, 4);
        /* unknown characters: each is one <unk>, a run of them is merged into one */
        expect_ids(tok, "a zz\xe6\xb0\xb4 a", (int[]){3, 4, 3, 2, 3, 4, 1}, 7);
        /* "<unk>" alone is 1 piece (all five characters unknown, merged), so a chunk after a
         * special token starts right after it; the "▁" chunk before a leading special vanishes */
        expect_ids(tok, "</s>ab", (int[]){1, 6, 1}, 3);
        /* "<unk>▁zz" -> <unk> ▁ <unk>(zz merged); the first piece is dropped */
        expect_ids(tok, "zz", (int[]){3, 2, 1}, 3);
        /* after a special token, "<unk>zz" is ONE piece, not more than unk_token_length (1):
         * transformers drops it, leaving nothing */
        expect_ids(tok, "</s>zz", (int[]){1}, 1);
        /* upper-case goes through str.lower() */
        expect_ids(tok, "AB", (int[]){3, 6, 1}, 3);
        rsclip_tokenizer_free(tok);
    }
    free(w.p);
}

/* Darts-clone double array with one rule "A" -> replacement at string offset `value`. */
static void w_charsmap(pbw *w, uint32_t value, const char *strings, size_t strings_len,
                       uint32_t trie_size_override) {
    uint32_t units[512];
    memset(units, 0, sizeof units);
    units[0] = 256u << 10;                                     /* root: base 0 ^ 256 = 256 */
    units[256 ^ 'A'] = (uint32_t)'A' | (1u << 8) | (1u << 10); /* label 'A', leaf, offset 1 */
    units[(256 ^ 'A') ^ 1] = (1u << 31) | value;               /* the value unit */
    size_t blob_len = 4 + sizeof units + strings_len;
    uint8_t *blob = malloc(blob_len);
    REQUIRE(blob);
    uint32_t ts = trie_size_override ? trie_size_override : (uint32_t)sizeof units;
    for (int i = 0; i < 4; i++) blob[i] = (uint8_t)(ts >> (8 * i));
    for (int u = 0; u < 512; u++)
        for (int i = 0; i < 4; i++) blob[4 + 4 * u + i] = (uint8_t)(units[u] >> (8 * i));
    memcpy(blob + 4 + sizeof units, strings, strings_len);
    pbw ns = {0};
    w_len(&ns, 1, "test", 4);
    w_len(&ns, 2, blob, blob_len);
    w_len(w, 3, ns.p, ns.n);
    free(ns.p);
    free(blob);
}

static void check_charsmap(void) {
    rsclip_tokenizer_params p = rsclip_tokenizer_default_params();
    p.do_lower_case = 0;
    /* "A" -> "ab": then "▁", "ab" */
    pbw w = {0};
    w_base(&w);
    w_piece(&w, "\xe2\x96\x81", -1, 1); /* 3 */
    w_piece(&w, "a", -2, 1);            /* 4 */
    w_piece(&w, "b", -2, 1);            /* 5 */
    w_piece(&w, "ab", -3, 1);           /* 6 */
    size_t base_len = w.n;
    w_charsmap(&w, 2, "x\0ab\0", 5, 0);
    rsclip_tokenizer *tok = load(&w, &p);
    if (tok) {
        expect_ids(tok, "A", (int[]){3, 6, 1}, 3);
        expect_ids(tok, "bA", (int[]){3, 5, 6, 1}, 4);
        rsclip_tokenizer_free(tok);
    }
    /* "A" -> " " in the middle: a space, collapsed with neighbours; at the ends removed */
    w.n = base_len;
    w_charsmap(&w, 0, " \0", 2, 0);
    tok = load(&w, &p);
    if (tok) {
        expect_ids(tok, "aAb", (int[]){3, 4, 3, 5, 1}, 5);
        expect_ids(tok, "a A b", (int[]){3, 4, 3, 5, 1}, 5);
        expect_ids(tok, "A", (int[]){1}, 1);
        rsclip_tokenizer_free(tok);
    }
    /* the replacement offset points past the strings */
    w.n = base_len;
    w_charsmap(&w, 100, "ab\0", 3, 0);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "charsmap");
    /* ... or into a string without terminating NUL */
    w.n = base_len;
    w_charsmap(&w, 1, "\0abc", 4, 0);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "charsmap");
    /* trie size beyond the blob */
    w.n = base_len;
    w_charsmap(&w, 0, "a\0", 2, 1u << 30);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "charsmap");
    /* a charsmap blob of 4 bytes */
    w.n = base_len;
    pbw ns = {0};
    w_len(&ns, 2, "\0\0\0\0", 4);
    w_len(&w, 3, ns.p, ns.n);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "charsmap");
    free(ns.p);
    free(w.p);
}

static void check_malformed(void) {
    pbw w = {0};
    /* structural errors */
    static const struct {
        const char *bytes;
        size_t n;
        const char *needle;
    } raw[] = {
        {"\x0a\xff", 2, "varint"}, /* truncated length varint */
        {"\x0a\x10"
         "abc",
         5, "past the end"},             /* length past the end */
        {"\x0b", 1, "wire type"},        /* start group */
        {"\x0e\x00", 2, "wire type"},    /* wire type 6 */
        {"\x00\x00", 2, "field number"}, /* field 0 */
        {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "varint"}, /* 11-byte varint */
        {"\x0d\x01\x02", 3, "32-bit"},                                      /* truncated fixed32 */
        {"\x09\x01\x02\x03", 4, "64-bit"},                                  /* truncated fixed64 */
        {"\x0a\x03\x0a\x05x", 5, "past the end"}, /* piece string past its message */
        {"", 0, "unk is not defined"},            /* empty file */
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        w.n = 0;
        w_bytes(&w, raw[i].bytes, raw[i].n);
        expect_fail(&w, RSCLIP_ERR_FORMAT, raw[i].needle);
    }
    /* vocabulary errors (sentencepiece's own load checks) */
    w.n = 0;
    w_piece(&w, "a", -1, 1);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "unk is not defined");
    w.n = 0;
    w_base(&w);
    w_piece(&w, "<unk2>", 0, UNKNOWN);
    w_piece(&w, "a", -1, 1);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "unk is already defined");
    w.n = 0;
    w_base(&w);
    w_piece(&w, "a", -1, 1);
    w_piece(&w, "a", -2, 1);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "already defined");
    w.n = 0;
    w_base(&w);
    w_piece(&w, "", -1, 1);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "empty");
    w.n = 0;
    w_base(&w);
    w_piece(&w, "<0x41>", 0, BYTE);
    w_piece(&w, "a", -1, 1);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "byte_fallback");
    w.n = 0;
    w_base(&w);
    expect_fail(&w, RSCLIP_ERR_FORMAT, "no normal");
    /* BPE (model_type 2) is valid but not handled */
    w.n = 0;
    w_base(&w);
    w_piece(&w, "a", -1, 1);
    pbw ts = {0};
    w_key(&ts, 3, 0);
    w_varint(&ts, 2);
    w_len(&w, 2, ts.p, ts.n);
    expect_fail(&w, RSCLIP_ERR_UNSUPPORTED, "model_type");
    free(ts.p);

    /* a normal piece may share its string with a control piece: transformers maps the piece
     * string back with piece_to_id, which finds the control one first */
    w.n = 0;
    w_base(&w);
    w_piece(&w, "\xe2\x96\x81x", -1, 1); /* 3 */
    w_piece(&w, "x", -1, 1);             /* 4 */
    w_piece(&w, "x", 0, CONTROL);        /* 5 */
    rsclip_tokenizer *tok = load(&w, NULL);
    if (tok) {
        expect_ids(tok, "x x", (int[]){3, 3, 1}, 3);   /* "<unk>▁x▁x" */
        expect_ids(tok, "</s>x", (int[]){1, 5, 1}, 3); /* "<unk>x": piece "x" -> id 5 */
        rsclip_tokenizer_free(tok);
    }

    /* unknown fields of every wire type are skipped; later scalar values win; unknown enum
     * values leave the type as it was */
    w.n = 0;
    w_key(&w, 99, 0);
    w_varint(&w, 12345);
    w_key(&w, 98, 1);
    w_bytes(&w, "12345678", 8);
    w_key(&w, 97, 5);
    w_bytes(&w, "1234", 4);
    w_len(&w, 96, "junk", 4);
    w_base(&w);
    pbw m = {0};
    w_len(&m, 1, "a", 1);
    w_f32(&m, 2, -1);
    w_key(&m, 3, 0);
    w_varint(&m, 77); /* not a Type: stays NORMAL */
    w_key(&m, 7, 2);  /* unknown LEN field inside the piece */
    w_varint(&m, 0);
    w_len(&w, 1, m.p, m.n);
    free(m.p);
    tok = load(&w, NULL);
    if (tok) {
        expect_ids(tok, "</s>a", (int[]){1, 3, 1}, 3);
        rsclip_tokenizer_free(tok);
    }
    free(w.p);
}

/* Random garbage must never crash. */
static void check_garbage(void) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    uint8_t buf[2048];
    for (int it = 0; it < 3000; it++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t n = (size_t)(s % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[i] = (uint8_t)s;
        }
        /* every third one starts like a piece list, to get past the first bytes */
        if (it % 3 == 0 && n > 4) buf[0] = 0x0a, buf[1] = (uint8_t)(n / 4 & 0x7f);
        rsclip_tokenizer *tok = NULL;
        int rc = rsclip_tokenizer_load_memory(buf, n, "garbage", NULL, &tok);
        if (rc == RSCLIP_OK) {
            int32_t ids[16];
            CHECK_OK(rsclip_tokenizer_encode(tok, "a b </s> c", -1, ids, 16, NULL));
            rsclip_tokenizer_free(tok);
        } else {
            CHECK(rc == RSCLIP_ERR_FORMAT || rc == RSCLIP_ERR_UNSUPPORTED);
            CHECK(strncmp(rsclip_last_error(), "garbage: spiece.model: ", 23) == 0);
        }
    }
}

int main(void) {
    check_hand_model();
    check_charsmap();
    check_malformed();
    check_garbage();
    return tu_finish("test_tokenizer_model");
}
