/* safetensors reader: the real fixtures, every dtype, conversions, the fingerprint, and hostile
 * files generated at run time (each must fail with RSCLIP_ERR_FORMAT naming the file). */
#include "rsclip/safetensors.h"
#include "rsclip/status.h"
#include "test_util.h"

#include <stdint.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/rsclip_st_XXXXXX";
static char made[64][300];
static int n_made;

/* Write bytes to a fresh file in the temp dir; returns its path (kept until cleanup). */
static const char *write_file(const char *name, const void *buf, size_t len) {
    REQUIRE(n_made < 64);
    char *path = made[n_made++];
    snprintf(path, 300, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    REQUIRE(len == 0 || fwrite(buf, 1, len, fp) == len);
    REQUIRE(fclose(fp) == 0);
    return path;
}

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A safetensors image: 8-byte length (hlen_override if non-zero, else the JSON length), the JSON
 * and `data_len` bytes of data (value i & 0xff). Caller frees. */
static unsigned char *image(const char *json, size_t data_len, uint64_t hlen_override,
                            size_t *len) {
    size_t h = strlen(json);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len);
    REQUIRE(b);
    put_le64(b, hlen_override ? hlen_override : h);
    memcpy(b + 8, json, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)i;
    return b;
}

static const char *write_st(const char *name, const char *json, size_t data_len, uint64_t hlen) {
    size_t len;
    unsigned char *b = image(json, data_len, hlen, &len);
    const char *p = write_file(name, b, len);
    free(b);
    return p;
}

/* Opening must fail with `code`, leave *out NULL, and the message must name the path and contain
 * `what` (when given). */
static void expect_fail(const char *path, int code, const char *what, int line) {
    rsclip_st_file *f = (rsclip_st_file *)1;
    int rc = rsclip_st_open(path, &f);
    const char *msg = rsclip_last_error();
    if (rc != code || f != NULL || strncmp(msg, path, strlen(path)) != 0 ||
        (what && !strstr(msg, what))) {
        fprintf(stderr, "line %d: %s: rc %d (want %d), message '%s'\n", line, path, rc, code, msg);
        tu_failures++;
        if (rc == RSCLIP_OK) rsclip_st_close(f);
    }
}
#define EXPECT_FAIL(path, what) expect_fail(path, RSCLIP_ERR_FORMAT, what, __LINE__)
#define BAD(name, json, data_len, what) EXPECT_FAIL(write_st(name, json, data_len, 0), what)

static int64_t shape_elems(const rsclip_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->shape[i];
    return n;
}

static int shape_is(const rsclip_st_tensor *t, int n_dims, const int64_t *dims) {
    if (!t || t->n_dims != n_dims) return 0;
    for (int i = 0; i < n_dims; i++)
        if (t->shape[i] != dims[i]) return 0;
    return 1;
}
#define SHAPE(t, ...)                                                                              \
    shape_is(t, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

/* Invariants every successfully opened file must satisfy. */
static void check_invariants(const rsclip_st_file *f) {
    int n = rsclip_st_count(f);
    for (int i = 0; i < n; i++) {
        const rsclip_st_tensor *t = rsclip_st_get(f, i);
        REQUIRE(t && t->name);
        CHECK(rsclip_st_find(f, t->name) == t);
        CHECK(t->n_elements == shape_elems(t));
        CHECK(t->nbytes == (size_t)t->n_elements * rsclip_dtype_size(t->dtype));
    }
    CHECK(rsclip_st_get(f, -1) == NULL && rsclip_st_get(f, n) == NULL);
}

static void test_fixture_model(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/siglip-tiny/model.safetensors", tu_fixtures());
    rsclip_st_file *f = NULL;
    CHECK_OK(rsclip_st_open(path, &f));
    REQUIRE(f);
    CHECK(strcmp(rsclip_st_path(f), path) == 0);
    check_invariants(f);
    /* Shapes from the fixture README / config.json: hidden 32, patch 16, intermediate 64,
     * vocab 1000, 64 text positions, (256/16)^2 = 256 patches. */
    CHECK(SHAPE(rsclip_st_find(f, "logit_scale"), 1));
    CHECK(SHAPE(rsclip_st_find(f, "logit_bias"), 1));
    CHECK(
        SHAPE(rsclip_st_find(f, "vision_model.embeddings.patch_embedding.weight"), 32, 3, 16, 16));
    CHECK(SHAPE(rsclip_st_find(f, "vision_model.embeddings.position_embedding.weight"), 256, 32));
    CHECK(SHAPE(rsclip_st_find(f, "text_model.embeddings.token_embedding.weight"), 1000, 32));
    CHECK(SHAPE(rsclip_st_find(f, "text_model.embeddings.position_embedding.weight"), 64, 32));
    CHECK(SHAPE(rsclip_st_find(f, "text_model.encoder.layers.1.mlp.fc1.weight"), 64, 32));
    CHECK(rsclip_st_find(f, "text_model.encoder.layers.2.mlp.fc1.weight") == NULL);
    CHECK(rsclip_st_find(f, "") == NULL && rsclip_st_find(f, NULL) == NULL);
    const char *fmt = rsclip_st_metadata(f, "format");
    CHECK(fmt && strcmp(fmt, "pt") == 0);
    CHECK(rsclip_st_metadata(f, "missing") == NULL);
    int all_f32 = 1;
    for (int i = 0; i < rsclip_st_count(f); i++)
        all_f32 &= rsclip_st_get(f, i)->dtype == RSCLIP_DTYPE_F32;
    CHECK(all_f32);
    CHECK(rsclip_st_count(f) > 50);

    /* The reference file stores copies of the checkpoint scalars. */
    char rpath[1024];
    snprintf(rpath, sizeof rpath, "%s/siglip-tiny/reference.safetensors", tu_fixtures());
    rsclip_st_file *r = NULL;
    CHECK_OK(rsclip_st_open(rpath, &r));
    REQUIRE(r);
    check_invariants(r);
    CHECK(SHAPE(rsclip_st_find(r, "input_ids"), 12, 64));
    CHECK(SHAPE(rsclip_st_find(r, "pixel_values"), 6, 3, 256, 256));
    CHECK(SHAPE(rsclip_st_find(r, "logits_per_image"), 6, 12));
    CHECK(rsclip_st_find(r, "input_ids")->dtype == RSCLIP_DTYPE_I64);
    CHECK(rsclip_st_metadata(r, "producer") != NULL);
    const char *scalars[] = {"logit_scale", "logit_bias"};
    for (int k = 0; k < 2; k++) {
        float a = 0, b = 1;
        CHECK_OK(rsclip_st_to_f32(rsclip_st_find(f, scalars[k]), &a, 1));
        CHECK_OK(rsclip_st_to_f32(rsclip_st_find(r, scalars[k]), &b, 1));
        CHECK(a == b && a != 0);
    }
    /* Integer tensors are not converted; wrong element counts are refused. */
    const rsclip_st_tensor *ids = rsclip_st_find(r, "input_ids");
    float *buf = malloc(12 * 64 * sizeof *buf);
    REQUIRE(buf);
    CHECK(rsclip_st_to_f32(ids, buf, 12 * 64) == RSCLIP_ERR_UNSUPPORTED);
    CHECK(strstr(rsclip_last_error(), "input_ids") && strstr(rsclip_last_error(), "I64"));
    /* Token ids: EOS/padding id 1 ends every row (README), all ids < vocab 1000. */
    int ids_ok = 1;
    for (int64_t i = 0; i < ids->n_elements; i++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + 8 * i, 8);
        ids_ok &= v >= 0 && v < 1000;
        if (i % 64 == 63) ids_ok &= v == 1;
    }
    CHECK(ids_ok);
    CHECK(rsclip_st_to_f32(rsclip_st_find(f, "logit_scale"), buf, 2) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_st_to_f32(NULL, buf, 0) == RSCLIP_ERR_INVALID_ARG);
    free(buf);

    /* The loader convenience: shape check + conversion with file/tensor in every message. */
    float ls = 0;
    const int64_t one[1] = {1}, two[2] = {1, 1};
    CHECK_OK(rsclip_st_read_f32(f, "logit_scale", 1, one, &ls, 1));
    CHECK(ls != 0);
    CHECK_OK(rsclip_st_read_f32(f, "logit_scale", 0, NULL, &ls, 1));
    CHECK(rsclip_st_read_f32(f, "logit_scale", 2, two, &ls, 1) == RSCLIP_ERR_MISMATCH);
    CHECK(strstr(rsclip_last_error(), path) &&
          strstr(rsclip_last_error(), "tensor 'logit_scale': shape [1], expected [1, 1]"));
    CHECK(rsclip_st_read_f32(f, "logit_scale", 1, one, &ls, 2) == RSCLIP_ERR_MISMATCH);
    CHECK(rsclip_st_read_f32(f, "nope", 1, one, &ls, 1) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strncmp(rsclip_last_error(), path, strlen(path)) == 0 &&
          strstr(rsclip_last_error(), "tensor 'nope'"));
    const int64_t ids_shape[2] = {12, 64};
    float *ib = malloc(12 * 64 * sizeof *ib);
    REQUIRE(ib);
    CHECK(rsclip_st_read_f32(r, "input_ids", 2, ids_shape, ib, 12 * 64) == RSCLIP_ERR_UNSUPPORTED);
    CHECK(strncmp(rsclip_last_error(), rpath, strlen(rpath)) == 0 &&
          strstr(rsclip_last_error(), "input_ids"));
    free(ib);

    /* The pixel values are (u8/255 - 0.5)/0.5: within [-1, 1]. */
    const rsclip_st_tensor *pv = rsclip_st_find(r, "pixel_values");
    float *px = malloc((size_t)pv->n_elements * sizeof *px);
    REQUIRE(px);
    CHECK_OK(rsclip_st_to_f32(pv, px, (size_t)pv->n_elements));
    int px_ok = 1;
    for (int64_t i = 0; i < pv->n_elements; i++) px_ok &= px[i] >= -1.0f && px[i] <= 1.0f;
    CHECK(px_ok);
    free(px);

    /* Fingerprint: stable, 16 lowercase hex digits, equal for a mapped file and the same bytes in
     * memory, different between files. */
    char fp1[17], fp2[17], fp3[17];
    rsclip_st_fingerprint(f, fp1);
    rsclip_st_fingerprint(f, fp2);
    rsclip_st_fingerprint(r, fp3);
    CHECK(strlen(fp1) == 16 && strspn(fp1, "0123456789abcdef") == 16);
    CHECK(strcmp(fp1, fp2) == 0 && strcmp(fp1, fp3) != 0);
    rsclip_st_close(r);
    rsclip_st_close(f);
    rsclip_st_close(NULL);
}

/* f16 checkpoint = f32 checkpoint rounded to nearest f16: every widened value must be within half
 * an f16 ulp of the f32 original (and tensors/shapes must agree). */
static void test_fixture_f16(void) {
    char p32[1024], p16[1024];
    snprintf(p32, sizeof p32, "%s/siglip-tiny/model.safetensors", tu_fixtures());
    snprintf(p16, sizeof p16, "%s/siglip-tiny-f16/model.safetensors", tu_fixtures());
    rsclip_st_file *a = NULL, *b = NULL;
    CHECK_OK(rsclip_st_open(p32, &a));
    CHECK_OK(rsclip_st_open(p16, &b));
    REQUIRE(a && b);
    check_invariants(b);
    CHECK(rsclip_st_count(a) == rsclip_st_count(b));
    long bad = 0, total = 0, nonzero = 0;
    for (int i = 0; i < rsclip_st_count(b); i++) {
        const rsclip_st_tensor *th = rsclip_st_get(b, i);
        const rsclip_st_tensor *tf = rsclip_st_find(a, th->name);
        REQUIRE(tf);
        CHECK(th->dtype == RSCLIP_DTYPE_F16 && tf->dtype == RSCLIP_DTYPE_F32);
        CHECK(th->n_dims == tf->n_dims && th->n_elements == tf->n_elements);
        size_t n = (size_t)th->n_elements;
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        REQUIRE(x && y);
        CHECK_OK(rsclip_st_to_f32(th, x, n));
        CHECK_OK(rsclip_st_to_f32(tf, y, n));
        for (size_t k = 0; k < n; k++) {
            double ref = y[k], m = fabs(ref);
            int e;
            frexp(m, &e); /* m in [2^(e-1), 2^e): f16 ulp there is 2^(e-11) */
            double half_ulp = m < 6.103515625e-05 ? ldexp(1, -25) : ldexp(1, e - 12);
            if (!(fabs((double)x[k] - ref) <= half_ulp)) bad++;
            if (x[k] != 0) nonzero++;
            total++;
        }
        free(x);
        free(y);
    }
    CHECK(bad == 0);
    CHECK(total > 10000 && nonzero > total / 2);
    if (bad)
        fprintf(stderr, "f16 fixture: %ld of %ld values off by more than half an ulp\n", bad,
                total);
    rsclip_st_close(a);
    rsclip_st_close(b);

    char pr[1024];
    snprintf(pr, sizeof pr, "%s/siglip-tiny-f16/reference.safetensors", tu_fixtures());
    CHECK_OK(rsclip_st_open(pr, &a));
    check_invariants(a);
    rsclip_st_close(a);
}

/* Independent formulas for the widening: value = (-1)^s * m * 2^(e - bias - mbits). */
static void test_half_exhaustive(void) {
    long bad16 = 0, badbf = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int s = h >> 15;
        /* IEEE binary16: 5-bit exponent (bias 15), 10-bit mantissa. */
        int e = h >> 10 & 31, m = h & 1023;
        double v = e == 0    ? ldexp(m, -24)
                   : e == 31 ? (m ? NAN : INFINITY)
                             : ldexp(1024 + m, e - 25);
        if (s) v = -v;
        float got = rsclip_f16_to_f32((uint16_t)h);
        uint32_t gb;
        memcpy(&gb, &got, 4);
        if (isnan(v)) {
            /* NaN stays NaN with its sign and payload (payload shifted into the top bits). */
            if (!isnan(got) || (gb >> 31) != (uint32_t)s || (gb >> 13 & 1023) != (uint32_t)m)
                bad16++;
        } else if ((double)got != v || (signbit(got) != 0) != s) {
            bad16++;
        }
        /* bfloat16: 8-bit exponent (bias 127), 7-bit mantissa. */
        int be = h >> 7 & 255, bm = h & 127;
        double bv = be == 0     ? ldexp(bm, -133)
                    : be == 255 ? (bm ? NAN : INFINITY)
                                : ldexp(128 + bm, be - 134);
        if (s) bv = -bv;
        float bgot = rsclip_bf16_to_f32((uint16_t)h);
        if (isnan(bv) ? !isnan(bgot) : ((double)bgot != bv || (signbit(bgot) != 0) != s)) badbf++;
    }
    CHECK(bad16 == 0);
    CHECK(badbf == 0);
    CHECK(rsclip_f16_to_f32(0x3C00) == 1.0f && rsclip_f16_to_f32(0xC000) == -2.0f);
    CHECK(rsclip_f16_to_f32(0x7BFF) == 65504.0f && rsclip_f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(rsclip_bf16_to_f32(0x3F80) == 1.0f);
}

/* All dtypes, conversions of unaligned data, zero-size tensors, metadata, names with escapes. */
static void test_valid_synthetic(void) {
    /* F32 at data offset 1 (odd address), F16, BF16, F64, the integer types, an empty tensor
     * inside the range of others, a scalar. */
    const char *hdr =
        "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9\"},"
        "\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"f32\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]},"
        "\"f16\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[9,15]},"
        "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[15,19]},"
        "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[19,35]},"
        "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[35,43]},"
        "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[43,47]},"
        "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[47,49]},"
        "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[49,50]},"
        "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[50,52]},"
        "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
        "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[52,56]},"
        "\"we\\\"ird \\u2603\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[56,56]}}";
    size_t len;
    unsigned char *b = image(hdr, 56, 0, &len);
    unsigned char *d = b + 8 + strlen(hdr);
    /* f32: 1.5, -0.25 */
    float f32v[2] = {1.5f, -0.25f};
    memcpy(d + 1, f32v, 8);
    /* f16: 1.0, -2.0, smallest subnormal */
    const unsigned char f16v[6] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00};
    memcpy(d + 9, f16v, 6);
    /* bf16: 1.0, -3.0 (0xC040) */
    const unsigned char bfv[4] = {0x80, 0x3F, 0x40, 0xC0};
    memcpy(d + 15, bfv, 4);
    double f64v[2] = {0.1, 1e300};
    memcpy(d + 19, f64v, 16);
    float sc = 42.0f;
    memcpy(d + 52, &sc, 4);

    rsclip_st_file *f = NULL;
    const char *path = write_file("valid.safetensors", b, len);
    CHECK_OK(rsclip_st_open(path, &f));
    REQUIRE(f);
    check_invariants(f);
    CHECK(rsclip_st_count(f) == 13);
    CHECK(strcmp(rsclip_st_metadata(f, "note"), "caf\xc3\xa9") == 0);
    CHECK(strcmp(rsclip_st_get(f, 0)->name, "pad") == 0); /* header order */
    CHECK(strcmp(rsclip_st_get(f, 12)->name, "we\"ird \xe2\x98\x83") == 0);
    CHECK(rsclip_st_find(f, "we\"ird \xe2\x98\x83") != NULL);

    float out[3];
    const rsclip_st_tensor *t = rsclip_st_find(f, "f32");
    CHECK(((uintptr_t)t->data & 3) != 0 ||
          ((uintptr_t)d & 3) != 0); /* really unaligned somewhere */
    CHECK_OK(rsclip_st_to_f32(t, out, 2));
    CHECK(out[0] == 1.5f && out[1] == -0.25f);
    CHECK_OK(rsclip_st_to_f32(rsclip_st_find(f, "f16"), out, 3));
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1, -24));
    t = rsclip_st_find(f, "bf16");
    CHECK(t->n_elements == 2 && SHAPE(t, 1, 2));
    CHECK_OK(rsclip_st_to_f32(t, out, 2));
    CHECK(out[0] == 1.0f && out[1] == -3.0f);
    CHECK_OK(rsclip_st_to_f32(rsclip_st_find(f, "f64"), out, 2));
    CHECK(out[0] == 0.1f && isinf(out[1]));
    t = rsclip_st_find(f, "empty");
    CHECK(t->n_elements == 0 && t->nbytes == 0 && SHAPE(t, 0, 5));
    CHECK_OK(rsclip_st_to_f32(t, NULL, 0));
    t = rsclip_st_find(f, "scalar");
    CHECK(t->n_dims == 0 && t->n_elements == 1);
    CHECK_OK(rsclip_st_to_f32(t, out, 1));
    CHECK(out[0] == 42.0f);
    const char *ints[] = {"i64", "i32", "i16", "i8", "bool", "pad"};
    for (int i = 0; i < 6; i++)
        CHECK(rsclip_st_to_f32(rsclip_st_find(f, ints[i]), out,
                               (size_t)rsclip_st_find(f, ints[i])->n_elements) ==
              RSCLIP_ERR_UNSUPPORTED);
    CHECK(rsclip_st_find(f, "bool")->dtype == RSCLIP_DTYPE_BOOL);
    CHECK(strcmp(rsclip_dtype_name(RSCLIP_DTYPE_BF16), "BF16") == 0);
    CHECK(rsclip_dtype_size(RSCLIP_DTYPE_F64) == 8 && rsclip_dtype_size(RSCLIP_DTYPE_BOOL) == 1);

    /* The same bytes through the memory API give the same fingerprint; changing one data byte
     * changes it. */
    rsclip_st_file *m = NULL;
    CHECK_OK(rsclip_st_open_memory(b, len, "mem", &m));
    REQUIRE(m);
    CHECK(strcmp(rsclip_st_path(m), "mem") == 0);
    char fa[17], fb[17];
    rsclip_st_fingerprint(f, fa);
    rsclip_st_fingerprint(m, fb);
    CHECK(strcmp(fa, fb) == 0);
    rsclip_st_close(m);
    b[len - 1] ^= 1;
    CHECK_OK(rsclip_st_open_memory(b, len, NULL, &m));
    rsclip_st_fingerprint(m, fb);
    CHECK(strcmp(fa, fb) != 0);
    rsclip_st_close(m);
    rsclip_st_close(f);
    free(b);

    /* Empty header object and a header padded with trailing spaces (as writers do). */
    rsclip_st_file *e = NULL;
    CHECK_OK(rsclip_st_open(write_st("empty.safetensors", "{}", 0, 0), &e));
    CHECK(e && rsclip_st_count(e) == 0 && rsclip_st_get(e, 0) == NULL);
    rsclip_st_close(e);
    CHECK_OK(rsclip_st_open(
        write_st("padded.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}      ", 4, 0),
        &e));
    CHECK(e && rsclip_st_count(e) == 1);
    rsclip_st_close(e);
}

/* FNV-1a over the first 8+N bytes, then the data: all of it when <= 256 KiB, else 64 blocks of
 * 4 KiB at offsets floor(k * (D - 4096) / 63). Recomputed here from the definition. */
static void test_fingerprint_definition(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/siglip-tiny/model.safetensors", tu_fixtures());
    FILE *fp = fopen(path, "rb");
    REQUIRE(fp);
    fseek(fp, 0, SEEK_END);
    size_t size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(size);
    REQUIRE(b && fread(b, 1, size, fp) == size);
    fclose(fp);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    size_t dsz = size - 8 - (size_t)n;
    REQUIRE(dsz > 64 * 4096); /* exercises the sampled path */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < 8 + n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    for (uint64_t k = 0; k < 64; k++) {
        uint64_t off = 8 + n + k * (dsz - 4096) / 63;
        for (size_t i = 0; i < 4096; i++) h = (h ^ b[off + i]) * 0x100000001b3ull;
    }
    char want[17], got[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)h);
    rsclip_st_file *f = NULL;
    CHECK_OK(rsclip_st_open_memory(b, size, path, &f));
    rsclip_st_fingerprint(f, got);
    CHECK(strcmp(want, got) == 0);
    rsclip_st_close(f);
    /* The last byte of the data is in the last block. */
    b[size - 1] ^= 0x80;
    CHECK_OK(rsclip_st_open_memory(b, size, path, &f));
    rsclip_st_fingerprint(f, got);
    CHECK(strcmp(want, got) != 0);
    rsclip_st_close(f);
    free(b);
}

static const char *T1 = "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";

static void test_hostile(void) {
    /* Sizes and the length prefix. */
    EXPECT_FAIL(write_file("empty.st", "", 0), "too small");
    EXPECT_FAIL(write_file("seven.st", "\x02\0\0\0\0\0\0", 7), "too small");
    EXPECT_FAIL(write_file("zero_header.st", "\0\0\0\0\0\0\0\0", 8), "json");
    EXPECT_FAIL(write_st("past_end.st", T1, 16, strlen(T1) + 17), "exceeds the file size");
    EXPECT_FAIL(write_st("huge_len.st", T1, 16, (uint64_t)1 << 63), "exceeds the file size");
    EXPECT_FAIL(write_st("max_len.st", T1, 16, UINT64_MAX), "exceeds the file size");

    /* Truncated copies of the real checkpoint: inside the header, then inside the data. */
    char path[1024];
    snprintf(path, sizeof path, "%s/siglip-tiny/model.safetensors", tu_fixtures());
    FILE *fp = fopen(path, "rb");
    REQUIRE(fp);
    static unsigned char model[1 << 20];
    size_t msize = fread(model, 1, sizeof model, fp);
    fclose(fp);
    REQUIRE(msize > 10000 && msize < sizeof model);
    EXPECT_FAIL(write_file("trunc_header.st", model, 5000), "exceeds the file size");
    EXPECT_FAIL(write_file("trunc_data.st", model, msize - 1), "past the end of the data");
    EXPECT_FAIL(write_file("trunc_half.st", model, msize / 2), "past the end of the data");

    /* Header content. */
    BAD("not_json.st", "hello world", 0, "json: offset 0");
    BAD("trailing.st", "{} x", 0, "json: offset 3");
    BAD("array.st", "[1, 2]", 0, "not a JSON object");
    BAD("string.st", "\"x\"", 0, "not a JSON object");
    char deep[300];
    memset(deep, '[', 299);
    deep[299] = '\0';
    BAD("deep.st", deep, 0, "nesting");
    char deep_obj[800];
    size_t n = 0;
    for (int k = 0; k < 100; k++)
        n += (size_t)snprintf(deep_obj + n, sizeof deep_obj - n, "{\"a\":");
    BAD("deep_obj.st", deep_obj, 0, "nesting");
    BAD("bad_utf8.st", "{\"\xff\":{}}", 0, "UTF-8");
    BAD("nul_name.st", "{\"a\\u0000b\":{}}", 0, "NUL");
    EXPECT_FAIL(write_file("nul_header.st", "\x09\0\0\0\0\0\0\0{\"t\0\":{}}", 17), "NUL");

    /* Tensor entries: each message names the tensor. */
    BAD("entry_not_obj.st", "{\"w\":[1]}", 0, "tensor 'w': entry is not an object");
    BAD("no_dtype.st", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing");
    BAD("dtype_num.st", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'w'");
    BAD("unknown_dtype.st", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}",
        1, "tensor 'w': unknown dtype 'F8_E4M3'");
    BAD("lower_dtype.st", "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "unknown dtype");
    BAD("no_shape.st", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'w'");
    BAD("shape_obj.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4,
        "shape");
    BAD("neg_shape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'w': shape[0]");
    BAD("frac_shape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
        "shape[0]");
    BAD("exp_shape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4,
        "shape[0]");
    BAD("str_shape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
        "shape[0]");
    BAD("big_shape.st",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
        "shape[0]");
    BAD("overflow_count.st",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
        "\"data_offsets\":[0,4]}}",
        4, "overflow");
    BAD("overflow_bytes.st",
        "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
        "overflow");
    BAD("overflow_zero.st",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807,9223372036854775807],"
        "\"data_offsets\":[0,0]}}",
        0, "overflow"); /* the product is 0, but the non-zero dimensions overflow: refused */
    BAD("too_many_dims.st",
        "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
        "dimensions");
    BAD("no_offsets.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
        "tensor 'w': missing or malformed data_offsets");
    BAD("offsets_3.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
        "data_offsets");
    BAD("offsets_neg.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
        "data_offsets");
    BAD("offsets_frac.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4,
        "data_offsets");
    BAD("offsets_rev.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
        "begin after end");
    BAD("offsets_range.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
        "tensor 'w': data_offsets [0, 16] past the end of the data (8 bytes)");
    BAD("offsets_huge.st",
        "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551615,"
        "18446744073709551616]}}",
        1, "data_offsets");
    BAD("offsets_i64max.st",
        "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[9223372036854775807,"
        "9223372036854775807]}}",
        1, "past the end");
    BAD("wrong_size.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16,
        "tensor 'w': data_offsets span 16 bytes but F32 shape needs 12");
    BAD("overlap.st",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
        24, "overlaps tensor 'a'");
    BAD("overlap_same.st",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        4, "overlaps");
    BAD("overlap_inside.st",
        "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
        "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[16,18]}}",
        18, "overlaps");
    BAD("dup_name.st",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
        2, "tensor 'a': listed twice");
    BAD("meta_array.st", "{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    BAD("meta_num.st", "{\"__metadata__\":{\"a\":\"x\",\"n\":1}}", 0, "__metadata__ 'n'");
    BAD("meta_dup.st", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__");
    BAD("tensor_after_error.st",
        "{\"ok\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"bad\":1}", 1,
        "tensor 'bad'");

    /* Names in messages stay on one line and are cut to a bounded length. */
    BAD("ctl_name.st", "{\"a\\nb\\u0001\":1}", 0, "tensor 'a?b?': entry is not an object");
    char longhdr[1200];
    memset(longhdr, 0, sizeof longhdr);
    strcpy(longhdr, "{\"");
    memset(longhdr + 2, 'n', 1000);
    strcpy(longhdr + 1002, "\":1}");
    BAD("long_name.st", longhdr, 0, "nnn...': entry is not an object");
    CHECK(strlen(rsclip_last_error()) < 600);

    /* Files that are not regular (a FIFO must not block the open), or missing. */
    char fifo[400];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    if (mkfifo(fifo, 0600) == 0) {
        expect_fail(fifo, RSCLIP_ERR_IO, "not a regular file", __LINE__);
        unlink(fifo);
    }
    expect_fail(tmpdir, RSCLIP_ERR_IO, "not a regular file", __LINE__);
    char missing[400];
    snprintf(missing, sizeof missing, "%s/does_not_exist.safetensors", tmpdir);
    expect_fail(missing, RSCLIP_ERR_IO, "cannot open", __LINE__);

    /* The same checks through the memory API, which names the label (or "<memory>"). */
    rsclip_st_file *f = (rsclip_st_file *)1;
    CHECK(rsclip_st_open_memory("\x01\0\0", 3, "lbl", &f) == RSCLIP_ERR_FORMAT && f == NULL);
    CHECK(strncmp(rsclip_last_error(), "lbl: ", 5) == 0);
    CHECK(rsclip_st_open_memory(NULL, 0, NULL, &f) == RSCLIP_ERR_FORMAT);
    CHECK(strncmp(rsclip_last_error(), "<memory>: ", 10) == 0);
    CHECK(rsclip_st_open_memory(NULL, 5, NULL, &f) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_st_open(NULL, &f) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_st_open("x", NULL) == RSCLIP_ERR_INVALID_ARG);

    /* A header length above the 100 MB cap is refused even when the file is big enough: map
     * ~101 MB of untouched anonymous memory so the test costs no real memory. */
    size_t big = (size_t)101 << 20;
    unsigned char *m = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
        put_le64(m, (uint64_t)big - 8);
        m[8] = '{';
        CHECK(rsclip_st_open_memory(m, big, "big", &f) == RSCLIP_ERR_FORMAT);
        CHECK(strstr(rsclip_last_error(), "big: header length") &&
              strstr(rsclip_last_error(), "limit"));
        munmap(m, big);
    }
}

/* The fuzzer's seed files are valid checkpoints (they must stay so to seed anything useful). */
static void test_fuzz_seeds(void) {
    const char *src = getenv("RSCLIP_SOURCE_DIR");
    if (!src) return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/safetensors", src);
    DIR *d = opendir(dir);
    REQUIRE(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors") != 0) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rsclip_st_file *f = NULL;
        CHECK_OK(rsclip_st_open(path, &f));
        if (f) check_invariants(f);
        rsclip_st_close(f);
        n++;
    }
    closedir(d);
    CHECK(n >= 3);
}

int main(void) {
    REQUIRE(mkdtemp(tmpdir));
    test_fixture_model();
    test_fixture_f16();
    test_half_exhaustive();
    test_valid_synthetic();
    test_fingerprint_definition();
    test_hostile();
    test_fuzz_seeds();
    for (int i = 0; i < n_made; i++) unlink(made[i]);
    rmdir(tmpdir);
    return tu_finish("test_safetensors");
}
