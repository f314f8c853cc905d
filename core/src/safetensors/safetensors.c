/* Safetensors reader: maps the file read-only, validates the whole header before exposing any view
 * (see rsclip/safetensors.h). The JSON tree is only needed during validation; the file object keeps
 * a flat tensor table, one blob of NUL-terminated names and the string metadata. */
#include "base/base.h"
#include "rsclip/safetensors.h"
#include "json/json.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers of real checkpoints are kilobytes to a few MB; this only bounds hostile input. */
#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)

struct rsclip_st_file {
    char *path;
    const unsigned char *base; /* whole file image */
    size_t size;
    int mapped;                /* base was mmapped by us (munmap on close) */
    size_t header_len;         /* N: JSON bytes after the 8-byte prefix */
    const unsigned char *data; /* base + 8 + N */
    size_t data_size;
    int n;
    rsclip_st_tensor *tensors; /* header order */
    int *by_name;              /* tensor indices sorted by name, for rsclip_st_find */
    char *names;               /* NUL-terminated names, tensors[i].name points in here */
    size_t n_meta;
    char **meta_keys;
    char **meta_vals;
};

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [RSCLIP_DTYPE_F32] = {"F32", 4},   [RSCLIP_DTYPE_F16] = {"F16", 2},
    [RSCLIP_DTYPE_BF16] = {"BF16", 2}, [RSCLIP_DTYPE_F64] = {"F64", 8},
    [RSCLIP_DTYPE_I64] = {"I64", 8},   [RSCLIP_DTYPE_I32] = {"I32", 4},
    [RSCLIP_DTYPE_I16] = {"I16", 2},   [RSCLIP_DTYPE_I8] = {"I8", 1},
    [RSCLIP_DTYPE_U8] = {"U8", 1},     [RSCLIP_DTYPE_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtype_info / sizeof dtype_info[0]))

const char *rsclip_dtype_name(rsclip_dtype t) {
    return (int)t >= 0 && (int)t < N_DTYPES ? dtype_info[t].name : "?";
}

size_t rsclip_dtype_size(rsclip_dtype t) {
    return (int)t >= 0 && (int)t < N_DTYPES ? dtype_info[t].size : 0;
}

static int dtype_from_name(const char *s, rsclip_dtype *out) {
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (rsclip_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Half-precision widening (exact: every f16/bf16 value is representable in f32)
 */

static float f32_from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

float rsclip_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = h >> 10 & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | man << 13); /* inf, nan + payload */
    if (exp != 0) return f32_from_bits(sign | (exp + 112) << 23 | man << 13);
    if (man == 0) return f32_from_bits(sign);
    /* Subnormal man * 2^-24: shift the leading 1 up to the implicit bit, adjusting the exponent. */
    uint32_t e = 113;
    while (!(man & 0x400)) {
        man <<= 1;
        e--;
    }
    return f32_from_bits(sign | e << 23 | (man & 0x3FF) << 13);
}

float rsclip_bf16_to_f32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

/* ---------------------------------------------------------------------------------------------
 * Open / validate
 */

static const char *label_or(const char *label) {
    return label ? label : "<memory>";
}

static void st_free(rsclip_st_file *f) {
    if (!f) return;
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->tensors);
    free(f->by_name);
    free(f->names);
    free(f->path);
    free(f);
}

/* Names as they appear in messages: cut at NAME_MAX_SHOWN bytes so one hostile name cannot fill
 * the message buffer, control characters shown as '?' so a message stays one line. */
#define NAME_MAX_SHOWN 200
typedef struct {
    char s[NAME_MAX_SHOWN + 4];
} shown_name;

static const char *show(const char *name, shown_name *b) {
    size_t i = 0;
    if (!name) name = "";
    for (; name[i] && i < NAME_MAX_SHOWN; i++) {
        unsigned char c = (unsigned char)name[i];
        b->s[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (name[i]) {
        memcpy(b->s + i, "...", 3);
        i += 3;
    }
    b->s[i] = '\0';
    return b->s;
}
#define SHOW(name) show(name, &(shown_name){{0}})

#define TERR(code, f, name, fmt, ...)                                                              \
    rsclip__error(code, "%s: tensor '%s': " fmt, (f)->path, SHOW(name), __VA_ARGS__)

static int get_nonneg_int(const rsclip_json *v, int64_t *out) {
    if (!v || v->type != RSCLIP_JSON_NUMBER || !v->is_int || v->inum < 0) return 0;
    *out = v->inum;
    return 1;
}

static int parse_metadata(rsclip_st_file *f, const rsclip_json *m) {
    if (m->type != RSCLIP_JSON_OBJECT)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
    if (m->len == 0) return RSCLIP_OK;
    f->meta_keys = rsclip__calloc(m->len, sizeof *f->meta_keys);
    f->meta_vals = rsclip__calloc(m->len, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < m->len; i++) {
        if (m->items[i].type != RSCLIP_JSON_STRING)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: __metadata__ '%s' is not a string",
                                 f->path, SHOW(m->keys[i]));
        f->meta_keys[i] = rsclip__strdup(m->keys[i]);
        f->meta_vals[i] = rsclip__strdup(m->items[i].str);
        f->n_meta = i + 1;
        if (!f->meta_keys[i] || !f->meta_vals[i])
            return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", f->path);
    }
    return RSCLIP_OK;
}

/* Fill t (name not yet set) from one header entry; offsets are relative to the data block. */
static int parse_tensor(rsclip_st_file *f, const char *name, const rsclip_json *e,
                        rsclip_st_tensor *t, size_t *begin_out) {
    if (e->type != RSCLIP_JSON_OBJECT)
        return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "entry is not an object");

    const char *dt = rsclip_json_get_str(e, "dtype");
    if (!dt) return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "missing or non-string dtype");
    if (!dtype_from_name(dt, &t->dtype))
        return TERR(RSCLIP_ERR_FORMAT, f, name, "unknown dtype '%s'", SHOW(dt));

    const rsclip_json *shape = rsclip_json_get(e, "shape");
    if (!shape || shape->type != RSCLIP_JSON_ARRAY)
        return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "missing or non-array shape");
    if (shape->len > RSCLIP_ST_MAX_DIMS)
        return TERR(RSCLIP_ERR_FORMAT, f, name, "shape has %zu dimensions (at most %d supported)",
                    shape->len, RSCLIP_ST_MAX_DIMS);
    t->n_dims = (int)shape->len;
    /* The product of the non-zero dimensions must fit too, so that callers may multiply any
     * subset of the dimensions without overflow even for an empty tensor. */
    size_t count = 1;
    int has_zero = 0;
    for (size_t i = 0; i < shape->len; i++) {
        int64_t d;
        if (!get_nonneg_int(&shape->items[i], &d))
            return TERR(RSCLIP_ERR_FORMAT, f, name, "shape[%zu] is not a non-negative integer", i);
        t->shape[i] = d;
        if (d == 0)
            has_zero = 1;
        else if ((uint64_t)d > SIZE_MAX || rsclip__mul_size(count, (size_t)d, &count) ||
                 count > (uint64_t)INT64_MAX)
            return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "element count overflows");
    }
    if (has_zero) count = 0;
    t->n_elements = (int64_t)count;
    size_t nbytes;
    if (rsclip__mul_size(count, rsclip_dtype_size(t->dtype), &nbytes))
        return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "byte size overflows");

    const rsclip_json *off = rsclip_json_get(e, "data_offsets");
    int64_t b, en;
    if (!off || off->type != RSCLIP_JSON_ARRAY || off->len != 2)
        return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "missing or malformed data_offsets");
    if (!get_nonneg_int(&off->items[0], &b) || !get_nonneg_int(&off->items[1], &en))
        return TERR(RSCLIP_ERR_FORMAT, f, name, "%s", "data_offsets are not non-negative integers");
    if (b > en)
        return TERR(RSCLIP_ERR_FORMAT, f, name, "data_offsets [%lld, %lld] begin after end",
                    (long long)b, (long long)en);
    if ((uint64_t)en > f->data_size)
        return TERR(RSCLIP_ERR_FORMAT, f, name,
                    "data_offsets [%lld, %lld] past the end of the data (%zu bytes)", (long long)b,
                    (long long)en, f->data_size);
    if ((uint64_t)(en - b) != nbytes)
        return TERR(RSCLIP_ERR_FORMAT, f, name,
                    "data_offsets span %lld bytes but %s shape needs %zu", (long long)(en - b),
                    rsclip_dtype_name(t->dtype), nbytes);
    t->data = f->data + b;
    t->nbytes = nbytes;
    *begin_out = (size_t)b;
    return RSCLIP_OK;
}

/* qsort contexts: file-local statics would not be thread-safe, so sort (key, index) pairs. */
typedef struct {
    size_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

typedef struct {
    const char *name;
    int idx;
} named;

static int cmp_named(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->idx - y->idx;
}

static int build(rsclip_st_file *f) {
    if (f->size < 8)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: %zu bytes, too small for a safetensors file (needs 8+)", f->path,
                             f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f->base[i];
    if (n > f->size - 8)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: header length %llu exceeds the file size (%zu bytes)", f->path,
                             (unsigned long long)n, f->size);
    if (n > ST_MAX_HEADER)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: header length %llu exceeds the %llu-byte limit", f->path,
                             (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
    f->header_len = (size_t)n;
    f->data = f->base + 8 + f->header_len;
    f->data_size = f->size - 8 - f->header_len;

    rsclip_json *root = NULL;
    int rc = rsclip_json_parse((const char *)f->base + 8, f->header_len, &root);
    if (rc) {
        /* Keep the JSON problem ("json: offset N: ...") and say where it was found. */
        rsclip__error_prefix("header");
        return rsclip__error_prefix(f->path);
    }
    if (root->type != RSCLIP_JSON_OBJECT) {
        rsclip_json_free(root);
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    }

    size_t n_tensors = 0, names_bytes = 0;
    for (size_t i = 0; i < root->len; i++) {
        if (strcmp(root->keys[i], "__metadata__") == 0) continue;
        n_tensors++;
        names_bytes += strlen(root->keys[i]) + 1; /* bounded by the header size */
    }
    if (n_tensors > (size_t)INT32_MAX) {
        rsclip_json_free(root);
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: too many tensors", f->path);
    }
    span *spans = NULL;
    named *nm = NULL;
    if (n_tensors) {
        f->tensors = rsclip__calloc(n_tensors, sizeof *f->tensors);
        f->by_name = rsclip__calloc(n_tensors, sizeof *f->by_name);
        spans = rsclip__calloc(n_tensors, sizeof *spans);
        nm = rsclip__calloc(n_tensors, sizeof *nm);
    }
    f->names = rsclip__malloc(names_bytes + 1);
    if ((n_tensors && (!f->tensors || !f->by_name || !spans || !nm)) || !f->names) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", f->path);
        goto done;
    }

    int seen_meta = 0;
    size_t pos = 0;
    for (size_t i = 0; i < root->len && rc == RSCLIP_OK; i++) {
        const char *key = root->keys[i];
        if (strcmp(key, "__metadata__") == 0) {
            if (seen_meta++)
                rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: duplicate __metadata__", f->path);
            else
                rc = parse_metadata(f, &root->items[i]);
            continue;
        }
        rsclip_st_tensor *t = &f->tensors[f->n];
        size_t begin = 0;
        rc = parse_tensor(f, key, &root->items[i], t, &begin);
        if (rc) break;
        size_t kl = strlen(key) + 1;
        memcpy(f->names + pos, key, kl);
        t->name = f->names + pos;
        pos += kl;
        spans[f->n] = (span){begin, begin + t->nbytes, f->n};
        nm[f->n] = (named){t->name, f->n};
        f->n++;
    }
    if (rc) goto done;

    /* No two non-empty tensors may share a byte. Empty tensors occupy nothing. */
    if (f->n) qsort(spans, (size_t)f->n, sizeof *spans, cmp_span);
    int prev = -1;
    size_t prev_end = 0;
    for (int i = 0; i < f->n; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev >= 0 && spans[i].begin < prev_end) {
            rc = TERR(RSCLIP_ERR_FORMAT, f, f->tensors[spans[i].idx].name,
                      "data [%zu, %zu) overlaps tensor '%s' [%zu, %zu)", spans[i].begin,
                      spans[i].end, SHOW(f->tensors[spans[prev].idx].name), spans[prev].begin,
                      prev_end);
            goto done;
        }
        prev = i;
        prev_end = spans[i].end;
    }

    if (f->n) qsort(nm, (size_t)f->n, sizeof *nm, cmp_named);
    for (int i = 0; i < f->n; i++) {
        if (i > 0 && strcmp(nm[i].name, nm[i - 1].name) == 0) {
            rc = TERR(RSCLIP_ERR_FORMAT, f, nm[i].name, "%s", "listed twice in the header");
            goto done;
        }
        f->by_name[i] = nm[i].idx;
    }

done:
    free(spans);
    free(nm);
    rsclip_json_free(root);
    return rc;
}

int rsclip_st_open_memory(const void *buf, size_t size, const char *label, rsclip_st_file **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_st_open_memory: out is NULL");
    *out = NULL;
    if (!buf && size)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: NULL buffer", label_or(label));
    rsclip_st_file *f = rsclip__calloc(1, sizeof *f);
    if (!f || !(f->path = rsclip__strdup(label_or(label)))) {
        free(f);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", label_or(label));
    }
    f->base = buf ? buf : (const unsigned char *)"";
    f->size = size;
    int rc = build(f);
    if (rc) {
        st_free(f);
        return rc;
    }
    *out = f;
    return RSCLIP_OK;
}

int rsclip_st_open(const char *path, rsclip_st_file **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_st_open: out is NULL");
    *out = NULL;
    if (!path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_st_open: path is NULL");
    /* O_NONBLOCK: a FIFO must not block the open; it is refused as not regular just below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rsclip__error(RSCLIP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return rsclip__error(RSCLIP_ERR_IO, "%s: too large to map", path);
    }
    rsclip_st_file *f = rsclip__calloc(1, sizeof *f);
    if (!f || !(f->path = rsclip__strdup(path))) {
        free(f);
        close(fd);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size >= 8) {
        /* Too-small files are reported by build(); mmap of 0 bytes would fail with EINVAL. */
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            st_free(f);
            return rsclip__error(RSCLIP_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
        f->base = m;
        f->mapped = 1;
    } else {
        f->base = (const unsigned char *)"";
    }
    close(fd);
    int rc = build(f);
    if (rc) {
        st_free(f);
        return rc;
    }
    *out = f;
    return RSCLIP_OK;
}

void rsclip_st_close(rsclip_st_file *f) {
    st_free(f);
}

/* ---------------------------------------------------------------------------------------------
 * Queries
 */

const char *rsclip_st_path(const rsclip_st_file *f) {
    return f ? f->path : NULL;
}

int rsclip_st_count(const rsclip_st_file *f) {
    return f ? f->n : 0;
}

const rsclip_st_tensor *rsclip_st_get(const rsclip_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const rsclip_st_tensor *rsclip_st_find(const rsclip_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const rsclip_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rsclip_st_metadata(const rsclip_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Conversion
 */

static uint16_t ld16(const unsigned char *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t ld32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const unsigned char *p) {
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

int rsclip_st_to_f32(const rsclip_st_tensor *t, float *dst, size_t n) {
    if (!t) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_st_to_f32: tensor is NULL");
    if (n != (uint64_t)t->n_elements)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "tensor '%s': destination holds %zu values, tensor has %lld",
                             SHOW(t->name), n, (long long)t->n_elements);
    if (n && !dst)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tensor '%s': destination is NULL",
                             SHOW(t->name));
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case RSCLIP_DTYPE_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n) memcpy(dst, p, n * sizeof *dst);
#else
        for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits(ld32(p + 4 * i));
#endif
        return RSCLIP_OK;
    case RSCLIP_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = rsclip_f16_to_f32(ld16(p + 2 * i));
        return RSCLIP_OK;
    case RSCLIP_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = rsclip_bf16_to_f32(ld16(p + 2 * i));
        return RSCLIP_OK;
    case RSCLIP_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t b = ld64(p + 8 * i);
            double d;
            memcpy(&d, &b, sizeof d);
            dst[i] = (float)d; /* round to nearest; out-of-range values become +-inf */
        }
        return RSCLIP_OK;
    default:
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "tensor '%s': dtype %s is not a floating type, cannot convert to "
                             "F32",
                             SHOW(t->name), rsclip_dtype_name(t->dtype));
    }
}

static void format_shape(char *buf, size_t cap, int n_dims, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

int rsclip_st_read_f32(const rsclip_st_file *f, const char *name, int n_dims, const int64_t *shape,
                       float *dst, size_t n) {
    if (!f || !name)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_st_read_f32: file or name is NULL");
    const rsclip_st_tensor *t = rsclip_st_find(f, name);
    if (!t) return TERR(RSCLIP_ERR_NOT_FOUND, f, name, "%s", "not in the checkpoint");
    int same = !shape || t->n_dims == n_dims;
    for (int i = 0; shape && same && i < n_dims; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char have[200], want[200];
        format_shape(have, sizeof have, t->n_dims, t->shape);
        format_shape(want, sizeof want, n_dims < 0 ? 0 : n_dims, shape);
        return TERR(RSCLIP_ERR_MISMATCH, f, name, "shape %s, expected %s", have, want);
    }
    if (n != (uint64_t)t->n_elements)
        return TERR(RSCLIP_ERR_MISMATCH, f, name, "%lld elements, destination holds %zu",
                    (long long)t->n_elements, n);
    int rc = rsclip_st_to_f32(t, dst, n);
    if (rc) rsclip__error_prefix(f->path);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Fingerprint
 */

#define FP_BLOCKS 64
#define FP_BLOCK 4096

void rsclip_st_fingerprint(const rsclip_st_file *f, char out[17]) {
    if (!out) return;
    uint64_t h = RSCLIP__FNV_OFFSET;
    if (f) {
        h = rsclip__fnv1a(h, f->base, 8 + f->header_len);
        if (f->data_size <= (size_t)FP_BLOCKS * FP_BLOCK) {
            h = rsclip__fnv1a(h, f->data, f->data_size);
        } else {
            /* Block k starts at k/(FP_BLOCKS-1) of the way to the last full block: the first
             * block is the start of the data, the last ends at its end. */
            size_t span_ = f->data_size - FP_BLOCK, q = span_ / (FP_BLOCKS - 1),
                   r = span_ % (FP_BLOCKS - 1);
            for (size_t k = 0; k < FP_BLOCKS; k++) {
                size_t off = q * k + r * k / (FP_BLOCKS - 1);
                h = rsclip__fnv1a(h, f->data + off, FP_BLOCK);
            }
        }
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}
