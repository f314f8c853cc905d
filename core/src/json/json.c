/* Private JSON reader (RFC 8259): recursive descent over a bounded-depth tree. See json.h. */
#include "base/base.h"
#include "json/json.h"
#include "status/status_internal.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    int depth;
} parser;

static int perr(const parser *p, size_t at, const char *what) {
    return rsclip__error(RSCLIP_ERR_FORMAT, "json: offset %zu: %s", at, what);
}

static int nomem(void) {
    return rsclip__error(RSCLIP_ERR_NOMEM, "json: out of memory");
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Does the input at the cursor start with the literal `lit`? */
static int match_lit(parser *p, const char *lit) {
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static void free_node(rsclip_json *v);

/* ---------------------------------------------------------------------------------------------
 * Strings
 */

static int hex4(const unsigned char *h, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = h[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at s[0..avail) (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if it is malformed. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

/* Cursor on the opening quote. Decodes into a fresh NUL-terminated buffer. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos + 1, end = start;
    /* First find the closing quote so the output can be allocated once (decoding never grows). */
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return perr(p, p->pos, "unterminated string");

    unsigned char *buf = rsclip__malloc(end - start + 1);
    if (!buf) return nomem();
    size_t o = 0, i = start;
    while (i < end) {
        unsigned char c = p->s[i];
        if (c == '\\') {
            unsigned char e = p->s[i + 1];
            unsigned cp;
            switch (e) {
            case '"':
                buf[o++] = '"';
                break;
            case '\\':
                buf[o++] = '\\';
                break;
            case '/':
                buf[o++] = '/';
                break;
            case 'b':
                buf[o++] = '\b';
                break;
            case 'f':
                buf[o++] = '\f';
                break;
            case 'n':
                buf[o++] = '\n';
                break;
            case 'r':
                buf[o++] = '\r';
                break;
            case 't':
                buf[o++] = '\t';
                break;
            case 'u':
                if (end - i < 6 || !hex4(p->s + i + 2, &cp)) {
                    free(buf);
                    return perr(p, i, "invalid \\u escape");
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(buf);
                    return perr(p, i, "lone low surrogate in \\u escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (end - i < 12 || p->s[i + 6] != '\\' || p->s[i + 7] != 'u' ||
                        !hex4(p->s + i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        free(buf);
                        return perr(p, i, "high surrogate not followed by a low surrogate");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                if (cp == 0) {
                    free(buf);
                    return perr(p, i, "\\u0000 (embedded NUL) in string");
                }
                o += put_utf8(buf + o, cp);
                i += 4;
                break;
            default:
                free(buf);
                return perr(p, i, "invalid escape in string");
            }
            i += 2;
        } else if (c < 0x20) {
            free(buf);
            return perr(p, i, c == 0 ? "NUL byte in string" : "control character in string");
        } else if (c < 0x80) {
            buf[o++] = c;
            i++;
        } else {
            size_t n = utf8_seq_len(p->s + i, end - i);
            if (n == 0) {
                free(buf);
                return perr(p, i, "invalid UTF-8 in string");
            }
            memcpy(buf + o, p->s + i, n);
            o += n;
            i += n;
        }
    }
    buf[o] = '\0';
    p->pos = end + 1;
    *out = (char *)buf;
    if (out_len) *out_len = o;
    return RSCLIP_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Numbers
 */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void init_c_locale(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* strtod in the "C" locale whatever the process locale is (GDAL hosts may set LC_NUMERIC). */
static double strtod_c(const char *s) {
    pthread_once(&c_locale_once, init_c_locale);
    if (c_locale) return strtod_l(s, NULL, c_locale);
    return strtod(s, NULL);
}

static int parse_number(parser *p, rsclip_json *v) {
    size_t start = p->pos, i = p->pos;
    const unsigned char *s = p->s;
    int neg = 0, integral = 1;
    if (i < p->len && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= p->len || s[i] < '0' || s[i] > '9') return perr(p, start, "invalid number");
    size_t int_start = i;
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9')
            return perr(p, start, "leading zero in number");
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    size_t int_end = i;
    if (i < p->len && s[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return perr(p, start, "expected digit after decimal point");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return perr(p, start, "expected digit in exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }

    /* Exact integer: accumulate towards the negative side so INT64_MIN fits. */
    v->is_int = 0;
    if (integral) {
        int64_t acc = 0;
        int ok = 1;
        for (size_t k = int_start; k < int_end; k++) {
            int d = s[k] - '0';
            if (acc < (INT64_MIN + d) / 10) {
                ok = 0;
                break;
            }
            acc = acc * 10 - d;
        }
        if (ok && !neg && acc == INT64_MIN) ok = 0;
        if (ok) {
            v->is_int = 1;
            v->inum = neg ? acc : -acc;
        }
    }

    size_t n = i - start;
    char small[64];
    char *tmp = n < sizeof small ? small : rsclip__malloc(n + 1);
    if (!tmp) return nomem();
    memcpy(tmp, s + start, n);
    tmp[n] = '\0';
    double d = strtod_c(tmp);
    if (tmp != small) free(tmp);
    if (!isfinite(d)) return perr(p, start, "number out of range");
    v->num = d;
    v->type = RSCLIP_JSON_NUMBER;
    p->pos = i;
    return RSCLIP_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Values
 */

static int parse_value(parser *p, rsclip_json *v);

/* Append one (zeroed) child slot to a container under construction. */
static int grow(rsclip_json *v, size_t *cap, int with_keys) {
    if (v->len < *cap) return RSCLIP_OK;
    size_t ncap = *cap ? *cap * 2 : 4, bytes;
    if (rsclip__mul_size(ncap, sizeof *v->items, &bytes)) return nomem();
    rsclip_json *items = rsclip__realloc(v->items, bytes);
    if (!items) return nomem();
    v->items = items;
    if (with_keys) {
        char **keys = rsclip__realloc(v->keys, ncap * sizeof *keys);
        if (!keys) return nomem();
        v->keys = keys;
    }
    *cap = ncap;
    return RSCLIP_OK;
}

static int parse_container(parser *p, rsclip_json *v, int is_obj) {
    size_t open_at = p->pos, cap = 0;
    char close = is_obj ? '}' : ']';
    if (++p->depth > RSCLIP_JSON_MAX_DEPTH) {
        char msg[64];
        snprintf(msg, sizeof msg, "nesting deeper than %d levels", RSCLIP_JSON_MAX_DEPTH);
        return perr(p, open_at, msg);
    }
    v->type = is_obj ? RSCLIP_JSON_OBJECT : RSCLIP_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return RSCLIP_OK;
    }
    for (;;) {
        int rc = grow(v, &cap, is_obj);
        if (rc) return rc;
        rsclip_json *child = &v->items[v->len];
        memset(child, 0, sizeof *child);
        if (is_obj) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return perr(p, p->pos, "expected string key");
            char *key;
            rc = parse_string(p, &key, NULL);
            if (rc) return rc;
            v->keys[v->len] = key;
            v->len++; /* owned from here on, freed with the container on error */
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return perr(p, p->pos, "expected ':'");
            p->pos++;
            rc = parse_value(p, child);
            if (rc) return rc;
        } else {
            v->len++;
            rc = parse_value(p, child);
            if (rc) return rc;
        }
        skip_ws(p);
        if (p->pos >= p->len)
            return perr(p, p->pos, is_obj ? "unterminated object" : "unterminated array");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            p->depth--;
            return RSCLIP_OK;
        }
        return perr(p, p->pos, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, rsclip_json *v) {
    skip_ws(p);
    if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of input");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{':
        return parse_container(p, v, 1);
    case '[':
        return parse_container(p, v, 0);
    case '"':
        v->type = RSCLIP_JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    case 't':
        if (!match_lit(p, "true")) break;
        v->type = RSCLIP_JSON_TRUE;
        return RSCLIP_OK;
    case 'f':
        if (!match_lit(p, "false")) break;
        v->type = RSCLIP_JSON_FALSE;
        return RSCLIP_OK;
    case 'n':
        if (!match_lit(p, "null")) break;
        v->type = RSCLIP_JSON_NULL;
        return RSCLIP_OK;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
        break;
    }
    return perr(p, p->pos, "unexpected character");
}

/* Children live in one array per container, so freeing recurses at most MAX_DEPTH levels. */
static void free_node(rsclip_json *v) {
    if (v->type == RSCLIP_JSON_ARRAY || v->type == RSCLIP_JSON_OBJECT) {
        for (size_t i = 0; i < v->len; i++) {
            free_node(&v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
    free(v->str);
}

int rsclip_json_parse(const char *text, size_t len, rsclip_json **out) {
    if (!out || (!text && len)) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "json: no input");
    *out = NULL;
    rsclip_json *root = rsclip__calloc(1, sizeof *root);
    if (!root) return nomem();
    parser p = {(const unsigned char *)(text ? text : ""), len, 0, 0};
    int rc = parse_value(&p, root);
    if (rc == RSCLIP_OK) {
        skip_ws(&p);
        if (p.pos != p.len) rc = perr(&p, p.pos, "trailing characters after the document");
    }
    if (rc) {
        rsclip_json_free(root);
        return rc;
    }
    *out = root;
    return RSCLIP_OK;
}

void rsclip_json_free(rsclip_json *root) {
    if (!root) return;
    free_node(root);
    free(root);
}

const rsclip_json *rsclip_json_get(const rsclip_json *obj, const char *key) {
    if (!obj || !key || obj->type != RSCLIP_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

int rsclip_json_get_int(const rsclip_json *obj, const char *key, int64_t *out) {
    const rsclip_json *v = rsclip_json_get(obj, key);
    if (!v || v->type != RSCLIP_JSON_NUMBER || !v->is_int) return 0;
    if (out) *out = v->inum;
    return 1;
}

int rsclip_json_get_num(const rsclip_json *obj, const char *key, double *out) {
    const rsclip_json *v = rsclip_json_get(obj, key);
    if (!v || v->type != RSCLIP_JSON_NUMBER) return 0;
    if (out) *out = v->num;
    return 1;
}

int rsclip_json_get_bool(const rsclip_json *obj, const char *key, int *out) {
    const rsclip_json *v = rsclip_json_get(obj, key);
    if (!v || (v->type != RSCLIP_JSON_TRUE && v->type != RSCLIP_JSON_FALSE)) return 0;
    if (out) *out = v->type == RSCLIP_JSON_TRUE;
    return 1;
}

const char *rsclip_json_get_str(const rsclip_json *obj, const char *key) {
    const rsclip_json *v = rsclip_json_get(obj, key);
    return v && v->type == RSCLIP_JSON_STRING ? v->str : NULL;
}

int rsclip_json_parse_file(const char *path, size_t max_bytes, rsclip_json **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "json: no output pointer");
    *out = NULL;
    if (!path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "json: no path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int rc = RSCLIP_OK;
    for (;;) {
        if (n == cap) {
            /* Grow geometrically, reading at most max_bytes + 1 to detect an oversized file. */
            size_t ncap = cap ? cap * 2 : 4096, limit;
            if (rsclip__add_size(max_bytes, 1, &limit)) limit = max_bytes;
            if (ncap > limit) ncap = limit;
            if (ncap <= cap) {
                rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: larger than the limit of %zu bytes",
                                   path, max_bytes);
                break;
            }
            char *nb = rsclip__realloc(buf, ncap);
            if (!nb) {
                rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp)) rc = rsclip__error(RSCLIP_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (rc == RSCLIP_OK && n > max_bytes)
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: larger than the limit of %zu bytes", path,
                           max_bytes);
    if (rc == RSCLIP_OK) {
        rc = rsclip_json_parse(buf, n, out);
        if (rc) rsclip__error_prefix(path);
    }
    free(buf);
    return rc;
}
