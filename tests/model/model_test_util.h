/* Helpers shared by the model tests: reference tensors, PNG decoding (GDAL, tests only; absent in
 * the model-only build, which defines RSCLIP_TEST_NO_GDAL), error measures, and a small
 * safetensors writer for generated checkpoints. */
#ifndef RSCLIP_MODEL_TEST_UTIL_H
#define RSCLIP_MODEL_TEST_UTIL_H

#include "test_util.h"

#include "rsclip/model.h"
#include "rsclip/safetensors.h"
#include "rsclip/status.h"

#ifndef RSCLIP_TEST_NO_GDAL
#include <gdal.h>
#endif

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reference tensor `name` of `st` as float32 (malloc'd); *n receives its element count. Exits
 * when absent: every test needs its references. */
static inline float *mt_ref_f32(const rsclip_st_file *st, const char *name, size_t *n) {
    const rsclip_st_tensor *t = rsclip_st_find(st, name);
    if (!t) {
        fprintf(stderr, "reference tensor %s missing\n", name);
        exit(1);
    }
    float *v = malloc(sizeof(float) * (size_t)(t->n_elements ? t->n_elements : 1));
    REQUIRE(v);
    REQUIRE(rsclip_st_to_f32(t, v, (size_t)t->n_elements) == 0);
    if (n) *n = (size_t)t->n_elements;
    return v;
}

/* I64 reference tensor as int32 (ids). */
static inline int32_t *mt_ref_i32(const rsclip_st_file *st, const char *name, size_t *n) {
    const rsclip_st_tensor *t = rsclip_st_find(st, name);
    REQUIRE(t && t->dtype == RSCLIP_DTYPE_I64);
    int32_t *v = malloc(sizeof(int32_t) * (size_t)t->n_elements);
    REQUIRE(v);
    for (int64_t i = 0; i < t->n_elements; i++) {
        int64_t x;
        memcpy(&x, (const char *)t->data + i * 8, 8);
        v[i] = (int32_t)x;
    }
    if (n) *n = (size_t)t->n_elements;
    return v;
}

/* max |a - b| / max |b| over n values (the accuracy measure of the brief). */
static inline double mt_max_rel(const float *a, const float *b, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

#ifndef RSCLIP_TEST_NO_GDAL
/* Decode an 8-bit RGB PNG with GDAL into interleaved RGB (malloc'd). */
static inline uint8_t *mt_read_png(const char *path, int *w, int *h) {
    GDALAllRegister();
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    REQUIRE(GDALGetRasterCount(ds) >= 3);
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    uint8_t *rgb = malloc((size_t)*w * *h * 3);
    REQUIRE(rgb);
    int bands[3] = {1, 2, 3};
    CPLErr err = GDALDatasetRasterIO(ds, GF_Read, 0, 0, *w, *h, rgb, *w, *h, GDT_Byte, 3, bands, 3,
                                     (GSpacing)*w * 3, 1);
    REQUIRE(err == CE_None);
    GDALClose(ds);
    return rgb;
}
#endif

static inline const char *mt_fixture(const char *rel) {
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", tu_fixtures(), rel);
    return buf[k];
}

/* ----- a tiny safetensors writer (tests build hostile and sharded checkpoints with it) ----- */

typedef struct mt_tensor {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16", "I64" */
    int nd;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} mt_tensor;

/* Write tensors (in the given order) as a safetensors file with "__metadata__" first and the
 * header padded with spaces to a multiple of 8, as the reference writer does. */
static inline int mt_write_safetensors(const char *path, const mt_tensor *t, int n) {
    size_t cap = 256 + (size_t)n * 256, len = 0, off = 0;
    char *hdr = malloc(cap);
    REQUIRE(hdr);
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].nd; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)t[i].shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + t[i].nbytes);
        off += t[i].nbytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    REQUIRE(len < cap - 8);
    while (len % 8) hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return -1;
    }
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    for (int i = 0; i < n && ok; i++)
        ok = t[i].nbytes == 0 || fwrite(t[i].data, 1, t[i].nbytes, f) == t[i].nbytes;
    ok = (fclose(f) == 0) && ok;
    free(hdr);
    return ok ? 0 : -1;
}

/* Every tensor of an opened checkpoint as an mt_tensor list (views into st). */
static inline mt_tensor *mt_tensors_of(const rsclip_st_file *st, int *n) {
    *n = rsclip_st_count(st);
    mt_tensor *v = calloc((size_t)*n, sizeof(*v));
    REQUIRE(v);
    for (int i = 0; i < *n; i++) {
        const rsclip_st_tensor *t = rsclip_st_get(st, i);
        v[i].name = t->name;
        v[i].dtype = rsclip_dtype_name(t->dtype);
        v[i].nd = t->n_dims;
        for (int d = 0; d < t->n_dims && d < 4; d++) v[i].shape[d] = t->shape[d];
        v[i].data = t->data;
        v[i].nbytes = t->nbytes;
    }
    return v;
}

static inline void mt_copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    FILE *out = fopen(dst, "wb");
    REQUIRE(in && out);
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), in)) > 0) REQUIRE(fwrite(buf, 1, k, out) == k);
    fclose(in);
    REQUIRE(fclose(out) == 0);
}

static inline void mt_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    REQUIRE(fclose(f) == 0);
}

/* A fresh temp folder (mkdtemp); removed by mt_rmtree. */
static inline char *mt_tempdir(void) {
    const char *base = getenv("TMPDIR");
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/rsclip_model_XXXXXX", base ? base : "/tmp");
    REQUIRE(mkdtemp(buf[k]));
    return buf[k];
}

static inline void mt_rmtree(const char *dir) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
