/* Private JSON reader: RFC 8259 grammar, escapes and surrogates, UTF-8 validation, numbers, depth
 * limit, error offsets, file reading. */
#include "json/json.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <stdint.h>
#include <unistd.h>

/* Parse a NUL-terminated literal; returns the tree or NULL. */
static rsclip_json *parse(const char *s) {
    rsclip_json *j = NULL;
    if (rsclip_json_parse(s, strlen(s), &j) != RSCLIP_OK) return NULL;
    return j;
}

/* Expect a parse failure with FORMAT and a message starting "json: offset <off>:" (off < 0: any
 * offset) that contains `what` (NULL: anything). */
static void expect_fail_n(const char *s, size_t len, long off, const char *what, int line) {
    rsclip_json *j = (rsclip_json *)1;
    int rc = rsclip_json_parse(s, len, &j);
    const char *msg = rsclip_last_error();
    int ok = rc == RSCLIP_ERR_FORMAT && j == NULL && strncmp(msg, "json: offset ", 13) == 0;
    if (ok && off >= 0) {
        char want[64];
        snprintf(want, sizeof want, "json: offset %ld: ", off);
        ok = strncmp(msg, want, strlen(want)) == 0;
    }
    if (ok && what) ok = strstr(msg, what) != NULL;
    if (!ok) {
        fprintf(stderr, "line %d: input '%.*s': rc %d, message '%s'\n", line, (int)len, s, rc, msg);
        tu_failures++;
    }
    if (rc == RSCLIP_OK) rsclip_json_free(j);
}
#define FAIL(s, off, what) expect_fail_n(s, strlen(s), off, what, __LINE__)
#define FAIL_N(s, n, off, what) expect_fail_n(s, n, off, what, __LINE__)

/* The single string in a one-element array, or NULL. */
static int string_is(const char *doc, const char *want, size_t want_len) {
    rsclip_json *j = parse(doc);
    int ok = j && j->type == RSCLIP_JSON_ARRAY && j->len == 1 &&
             j->items[0].type == RSCLIP_JSON_STRING && j->items[0].len == want_len &&
             memcmp(j->items[0].str, want, want_len) == 0 && j->items[0].str[want_len] == '\0';
    if (!ok) fprintf(stderr, "string mismatch for %s (%s)\n", doc, rsclip_last_error());
    rsclip_json_free(j);
    return ok;
}
#define STR_IS(doc, want) CHECK(string_is(doc, want, sizeof(want) - 1))

static void test_structure(void) {
    const char *doc = " {\"a\": [1, 2.5, \"x\", true, false, null, {}, []],\n"
                      "  \"b\": {\"c\": -3}, \"a\": 9, \"t\": true, \"s\": \"str\", \"f\": 0.25} ";
    rsclip_json *j = parse(doc);
    REQUIRE(j);
    CHECK(j->type == RSCLIP_JSON_OBJECT && j->len == 6);
    const rsclip_json *a = rsclip_json_get(j, "a"); /* first of the duplicates */
    REQUIRE(a && a->type == RSCLIP_JSON_ARRAY && a->len == 8);
    CHECK(a->items[0].type == RSCLIP_JSON_NUMBER && a->items[0].is_int && a->items[0].inum == 1);
    CHECK(a->items[1].type == RSCLIP_JSON_NUMBER && !a->items[1].is_int && a->items[1].num == 2.5);
    CHECK(a->items[2].type == RSCLIP_JSON_STRING && strcmp(a->items[2].str, "x") == 0);
    CHECK(a->items[3].type == RSCLIP_JSON_TRUE);
    CHECK(a->items[4].type == RSCLIP_JSON_FALSE);
    CHECK(a->items[5].type == RSCLIP_JSON_NULL);
    CHECK(a->items[6].type == RSCLIP_JSON_OBJECT && a->items[6].len == 0);
    CHECK(a->items[7].type == RSCLIP_JSON_ARRAY && a->items[7].len == 0);
    CHECK(strcmp(j->keys[0], "a") == 0 && strcmp(j->keys[2], "a") == 0);

    int64_t i = 0;
    double d = 0;
    int b = 0;
    CHECK(rsclip_json_get_int(rsclip_json_get(j, "b"), "c", &i) && i == -3);
    CHECK(!rsclip_json_get_int(j, "f", &i)); /* not integral */
    CHECK(rsclip_json_get_num(j, "f", &d) && d == 0.25);
    CHECK(rsclip_json_get_num(rsclip_json_get(j, "b"), "c", &d) && d == -3.0);
    CHECK(rsclip_json_get_bool(j, "t", &b) && b == 1);
    CHECK(!rsclip_json_get_bool(j, "s", &b));
    CHECK(rsclip_json_get_str(j, "s") && strcmp(rsclip_json_get_str(j, "s"), "str") == 0);
    CHECK(rsclip_json_get_str(j, "t") == NULL);
    CHECK(rsclip_json_get(j, "missing") == NULL);
    CHECK(rsclip_json_get(a, "a") == NULL); /* not an object */
    CHECK(rsclip_json_get(NULL, "a") == NULL);
    CHECK(rsclip_json_get_str(NULL, "a") == NULL);
    rsclip_json_free(j);
    rsclip_json_free(NULL);

    /* Scalars at top level, and input that is not NUL-terminated. */
    j = parse("\"top\"");
    CHECK(j && j->type == RSCLIP_JSON_STRING && strcmp(j->str, "top") == 0);
    rsclip_json_free(j);
    const char buf[] = {'[', '7', ']', 'x', 'y'};
    CHECK(rsclip_json_parse(buf, 3, &j) == RSCLIP_OK && j->len == 1 && j->items[0].inum == 7);
    rsclip_json_free(j);

    /* Large flat containers grow past the initial capacity. */
    char big[8192];
    size_t n = 0;
    big[n++] = '[';
    for (int k = 0; k < 1000; k++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s%d", k ? "," : "", k);
    big[n++] = ']';
    big[n] = '\0';
    j = parse(big);
    REQUIRE(j && j->len == 1000);
    int all = 1;
    for (int k = 0; k < 1000; k++) all &= j->items[k].is_int && j->items[k].inum == k;
    CHECK(all);
    rsclip_json_free(j);
}

static void test_syntax_errors(void) {
    FAIL("", 0, "unexpected end");
    FAIL("   ", 3, "unexpected end");
    FAIL("[1,]", 3, "unexpected character");
    FAIL("{\"a\" 1}", 5, "expected ':'");
    FAIL("{\"a\":1,}", 7, "expected string key");
    FAIL("{a:1}", 1, "expected string key");
    FAIL("[1 2]", 3, "expected ','");
    FAIL("{\"a\":1", 6, "unterminated object");
    FAIL("[1", 2, "unterminated array");
    FAIL("{} x", 3, "trailing");
    FAIL("1 2", 2, "trailing");
    FAIL("[] []", 3, "trailing");
    FAIL("tru", 0, NULL);
    FAIL("nul", 0, NULL);
    FAIL("True", 0, NULL);
    FAIL("'a'", 0, NULL);
    FAIL("[\"abc", 1, "unterminated string");
    FAIL("[\"abc\\\"]", 1, "unterminated string");
    FAIL("\xef\xbb\xbf{}", 0, NULL); /* a BOM is not JSON whitespace */
    FAIL("[1]\v", 3, "trailing");    /* neither is vertical tab */
    FAIL_N("[1]\0", 4, 3, "trailing");
    /* Whitespace that is allowed. */
    rsclip_json *j = parse("\t\r\n [ 1 ,\t2 ] \r\n");
    CHECK(j && j->len == 2);
    rsclip_json_free(j);
}

static void test_strings(void) {
    STR_IS("[\"\"]", "");
    STR_IS("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "\"\\/\b\f\n\r\t");
    STR_IS("[\"\\u0041\\u00e9\\u20AC\"]", "A\xc3\xa9\xe2\x82\xac");
    STR_IS("[\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"]",
           "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    STR_IS("[\"\\ud83d\\ude00\"]", "\xf0\x9f\x98\x80"); /* U+1F600 */
    STR_IS("[\"\\uD800\\uDC00\\uDBFF\\uDFFF\"]", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    STR_IS("[\"x\\ud83d\\ude00y\"]", "x\xf0\x9f\x98\x80y");
    /* Raw UTF-8 passes through unchanged, up to U+10FFFF. */
    STR_IS("[\"Z\xc3\xbcrich \xe6\xb0\xb4 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"]",
           "Z\xc3\xbcrich \xe6\xb0\xb4 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");

    FAIL("[\"\\ud83d\"]", 2, "surrogate"); /* lone high */
    FAIL("[\"\\ude00\"]", 2, "surrogate"); /* lone low */
    FAIL("[\"\\ud83dx\"]", 2, "surrogate");
    FAIL("[\"\\ud83d\\u0041\"]", 2, "surrogate"); /* high + non-low */
    FAIL("[\"\\ud83d\\ud83d\"]", 2, "surrogate"); /* high + high */
    FAIL("[\"\\ude00\\ud83d\"]", 2, "surrogate"); /* reversed pair */
    FAIL("[\"ab\\ud83d\\", -1, NULL);
    FAIL("[\"\\u0000\"]", 2, "NUL");
    FAIL("[\"\\u12\"]", 2, "\\u");
    FAIL("[\"\\u12g4\"]", 2, "\\u");
    FAIL("[\"\\x41\"]", 2, "escape");
    FAIL("[\"\\U0041\"]", 2, "escape");
    FAIL("[\"a\tb\"]", 3, "control");
    FAIL("[\"a\nb\"]", 3, "control");
    FAIL("[\"a\x1f\"]", 3, "control");
    FAIL_N("[\"a\0b\"]", 6, 3, "NUL");
    FAIL("{\"a\\u0000\":1}", 3, "NUL"); /* keys are decoded with the same rules */

    /* Invalid UTF-8: stray continuation, overlongs, UTF-16 surrogates, > U+10FFFF, truncation. */
    const char *bad[] = {"[\"\x80\"]",
                         "[\"\xbf\"]",
                         "[\"\xc0\x80\"]",
                         "[\"\xc1\xbf\"]",
                         "[\"\xe0\x80\xaf\"]",
                         "[\"\xe0\x9f\xbf\"]",
                         "[\"\xed\xa0\x80\"]",
                         "[\"\xed\xbf\xbf\"]",
                         "[\"\xf0\x8f\xbf\xbf\"]",
                         "[\"\xf4\x90\x80\x80\"]",
                         "[\"\xf5\x80\x80\x80\"]",
                         "[\"\xff\"]",
                         "[\"\xfe\"]",
                         "[\"\xe2\x82\"]",
                         "[\"\xc3\"]",
                         "[\"\xf0\x9f\x98\"]",
                         "[\"\xe2\x28\xa1\"]",
                         "[\"\xc3\x41\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) FAIL(bad[i], 2, "UTF-8");
    FAIL("{\"\xc0\xaf\":1}", 2, "UTF-8");
}

static int num_is(const char *doc, double want, int is_int, int64_t inum) {
    rsclip_json *j = parse(doc);
    int ok = j && j->type == RSCLIP_JSON_NUMBER && j->num == want && j->is_int == is_int &&
             (!is_int || j->inum == inum);
    if (!ok)
        fprintf(stderr, "number mismatch for %s: got %.17g is_int %d inum %lld (%s)\n", doc,
                j ? j->num : 0.0, j ? j->is_int : -1, j ? (long long)j->inum : 0LL,
                rsclip_last_error());
    rsclip_json_free(j);
    return ok;
}

static void test_numbers(void) {
    CHECK(num_is("0", 0.0, 1, 0));
    CHECK(num_is("-0", 0.0, 1, 0));
    CHECK(num_is("7", 7.0, 1, 7));
    CHECK(num_is("-42", -42.0, 1, -42));
    CHECK(num_is("9007199254740993", 9007199254740992.0, 1, INT64_C(9007199254740993)));
    CHECK(num_is("9223372036854775807", 9223372036854775807.0, 1, INT64_MAX));
    CHECK(num_is("-9223372036854775808", -9223372036854775808.0, 1, INT64_MIN));
    CHECK(num_is("9223372036854775808", 9223372036854775808.0, 0, 0));
    CHECK(num_is("-9223372036854775809", -9223372036854775808.0, 0, 0));
    CHECK(num_is("123456789012345678901234567890", 123456789012345678901234567890.0, 0, 0));
    CHECK(num_is("1.0", 1.0, 0, 0));
    CHECK(num_is("1e3", 1000.0, 0, 0));
    CHECK(num_is("1E+3", 1000.0, 0, 0));
    CHECK(num_is("-1.25e-2", -0.0125, 0, 0));
    CHECK(num_is("0.1", 0.1, 0, 0));
    CHECK(num_is("1e-6", 1e-6, 0, 0));
    CHECK(num_is("2.5e-400", 0.0, 0, 0)); /* underflow to zero is representable, not an error */
    CHECK(num_is("1.7976931348623157e308", 1.7976931348623157e308, 0, 0));
    /* Very long digit strings (longer than any stack buffer). */
    char lng[2100];
    lng[0] = '1';
    memset(lng + 1, '0', 2000);
    strcpy(lng + 2001, "e-2000");
    CHECK(num_is(lng, 1.0, 0, 0));

    FAIL("01", 0, "leading zero");
    FAIL("-01", 0, "leading zero");
    FAIL("1.", 0, "decimal point");
    FAIL("1.e5", 0, "decimal point");
    FAIL(".5", 0, "unexpected character");
    FAIL("+1", 0, "unexpected character");
    FAIL("-", 0, "invalid number");
    FAIL("- 1", 0, "invalid number");
    FAIL("1e", 0, "exponent");
    FAIL("1e+", 0, "exponent");
    FAIL("0x10", 1, "trailing");
    FAIL("NaN", 0, NULL);
    FAIL("Infinity", 0, NULL);
    FAIL("-Infinity", 0, NULL);
    FAIL("[1, 1e999]", 4, "out of range");
    FAIL("-1e400", 0, "out of range");
}

static void test_depth(void) {
    char doc[2 * RSCLIP_JSON_MAX_DEPTH + 8];
    /* Exactly the limit parses... */
    int d = RSCLIP_JSON_MAX_DEPTH;
    memset(doc, '[', (size_t)d);
    memset(doc + d, ']', (size_t)d);
    doc[2 * d] = '\0';
    rsclip_json *j = parse(doc);
    CHECK(j != NULL);
    rsclip_json_free(j);
    /* ...one more level does not, and the error points at the opening bracket too deep. */
    d = RSCLIP_JSON_MAX_DEPTH + 1;
    memset(doc, '[', (size_t)d);
    memset(doc + d, ']', (size_t)d);
    doc[2 * d] = '\0';
    FAIL(doc, RSCLIP_JSON_MAX_DEPTH, "nesting");
    /* Mixed objects/arrays count together. */
    char mixed[1024];
    size_t n = 0;
    for (int k = 0; k < 40; k++) n += (size_t)snprintf(mixed + n, sizeof mixed - n, "{\"a\":[");
    FAIL(mixed, -1, "nesting");
    /* A hostile run of a million brackets fails fast without exhausting the stack. */
    size_t big = 1000000;
    char *deep = malloc(big);
    REQUIRE(deep);
    memset(deep, '[', big);
    FAIL_N(deep, big, RSCLIP_JSON_MAX_DEPTH, "nesting");
    memset(deep, '{', big);
    FAIL_N(deep, big, 1, "expected string key");
    free(deep);
}

static void test_files(void) {
    char dir[] = "/tmp/rsclip_json_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/doc.json", dir);
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    fputs("{\"k\": [1, 2, 3]}", fp);
    fclose(fp);

    rsclip_json *j = NULL;
    CHECK_OK(rsclip_json_parse_file(path, 1024, &j));
    CHECK(j && rsclip_json_get(j, "k") && rsclip_json_get(j, "k")->len == 3);
    rsclip_json_free(j);
    /* The limit is inclusive: a 16-byte file passes with 16, fails with 15. */
    CHECK_OK(rsclip_json_parse_file(path, 16, &j));
    rsclip_json_free(j);
    j = (rsclip_json *)1;
    CHECK(rsclip_json_parse_file(path, 15, &j) == RSCLIP_ERR_FORMAT && j == NULL);
    CHECK(strstr(rsclip_last_error(), path) && strstr(rsclip_last_error(), "limit"));

    /* Parse errors keep the offset and gain the path. */
    fp = fopen(path, "wb");
    REQUIRE(fp);
    fputs("{\"k\": [1, 2,]}", fp);
    fclose(fp);
    CHECK(rsclip_json_parse_file(path, 1024, &j) == RSCLIP_ERR_FORMAT);
    char want[300];
    snprintf(want, sizeof want, "%s: json: offset 12: ", path);
    CHECK(strncmp(rsclip_last_error(), want, strlen(want)) == 0);

    /* Empty file. */
    fp = fopen(path, "wb");
    REQUIRE(fp);
    fclose(fp);
    CHECK(rsclip_json_parse_file(path, 1024, &j) == RSCLIP_ERR_FORMAT);
    CHECK(strstr(rsclip_last_error(), path) != NULL);
    unlink(path);

    /* Missing file and a directory are I/O errors naming the path. */
    CHECK(rsclip_json_parse_file(path, 1024, &j) == RSCLIP_ERR_IO);
    CHECK(strstr(rsclip_last_error(), path) != NULL);
    CHECK(rsclip_json_parse_file(dir, 1024, &j) == RSCLIP_ERR_IO);
    CHECK(strstr(rsclip_last_error(), dir) != NULL);
    rmdir(dir);

    /* Real documents from the fixtures. */
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/siglip-tiny/config.json", tu_fixtures());
    CHECK_OK(rsclip_json_parse_file(fx, 1 << 20, &j));
    const rsclip_json *vc = rsclip_json_get(j, "vision_config");
    int64_t v = 0;
    CHECK(rsclip_json_get_int(vc, "image_size", &v) && v == 256);
    CHECK(rsclip_json_get_int(rsclip_json_get(j, "text_config"), "vocab_size", &v) && v == 1000);
    CHECK(rsclip_json_get_str(j, "model_type") &&
          strcmp(rsclip_json_get_str(j, "model_type"), "siglip") == 0);
    rsclip_json_free(j);

    snprintf(fx, sizeof fx, "%s/siglip-tiny/texts.json", tu_fixtures());
    CHECK_OK(rsclip_json_parse_file(fx, 1 << 20, &j));
    REQUIRE(j && j->type == RSCLIP_JSON_ARRAY && j->len == 12);
    /* Text 8 of the fixture README, spelled out in UTF-8 bytes. */
    CHECK(strcmp(j->items[8].str, "the port of Z\xc3\xbcrich \xe2\x80\x94 45\xc2\xb0 north, near "
                                  "the \xe6\xb0\xb4\xe5\xba\x93 lake") == 0);
    CHECK(j->items[6].type == RSCLIP_JSON_STRING && j->items[6].len == 0);
    rsclip_json_free(j);
}

int main(void) {
    test_structure();
    test_syntax_errors();
    test_strings();
    test_numbers();
    test_depth();
    test_files();
    return tu_finish("test_json");
}
