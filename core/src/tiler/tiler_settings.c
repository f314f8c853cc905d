/* The tiling settings as canonical text: part of a scene's identity in the index (a run with
 * other settings re-indexes the scene) and what a sharded index records per part. */
#include "json/json.h"
#include "rsclip/tiler.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t cap, len;
    int overflow;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) RSCLIP_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    b->len += (size_t)n;
}

/* Shortest text that reads back as the same double. */
static void num_text(double v, char out[32]) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        double back;
        if (sscanf(out, "%lf", &back) == 1 && back == v) return;
    }
}

static void scale_text(const rsclip_tiler_params *p, char *out, size_t cap) {
    switch (p->scale_mode) {
    case RSCLIP_TILER_SCALE_NONE:
        snprintf(out, cap, "none");
        return;
    case RSCLIP_TILER_SCALE_PERCENTILE:
        snprintf(out, cap, "percentile");
        return;
    case RSCLIP_TILER_SCALE_RANGE: {
        int same = 1;
        for (int c = 1; c < 3; c++)
            same &= p->scale_min[c] == p->scale_min[0] && p->scale_max[c] == p->scale_max[0];
        size_t len = 0;
        for (int c = 0; c < (same ? 1 : 3) && len < cap; c++) {
            char lo[32], hi[32];
            num_text(p->scale_min[c], lo);
            num_text(p->scale_max[c], hi);
            int n = snprintf(out + len, cap - len, "%s%s,%s", c ? "," : "", lo, hi);
            if (n < 0) break;
            len += (size_t)n;
        }
        return;
    }
    default:
        snprintf(out, cap, "auto");
    }
}

int rsclip_tiler_settings(const rsclip_tiler_params *p, char *buf, size_t cap) {
    if (!p || !buf || cap == 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_settings: NULL argument");
    sbuf b = {buf, cap, 0, 0};
    buf[0] = 0;
    char bands[48] = "auto", scale[160], gsd[32] = "native", pct_lo[32], pct_hi[32], mv[32];
    if (p->n_bands == 1)
        snprintf(bands, sizeof bands, "%d", p->bands[0]);
    else if (p->n_bands == 3)
        snprintf(bands, sizeof bands, "%d,%d,%d", p->bands[0], p->bands[1], p->bands[2]);
    scale_text(p, scale, sizeof scale);
    if (p->gsd > 0) num_text(p->gsd, gsd);
    num_text(p->pct_low, pct_lo);
    num_text(p->pct_high, pct_hi);
    num_text(p->min_valid, mv);
    static const char *const masks[] = {"auto", "no_alpha", "none"};
    const char *mask =
        p->mask_mode >= 0 && p->mask_mode <= RSCLIP_TILER_MASK_NONE ? masks[p->mask_mode] : "?";
    sb_printf(&b, "{\"tile_size\":%d,\"stride\":%d,\"bands\":\"%s\",\"scale\":\"%s\"", p->tile_size,
              p->stride > 0 ? p->stride : p->tile_size, bands, scale);
    sb_printf(&b, ",\"pct\":\"%s,%s\",\"gsd\":\"%s\"", pct_lo, pct_hi, gsd);
    /* a resampling method only matters when resampling happens */
    const char *rs = p->gsd > 0 && p->resampling && *p->resampling ? p->resampling : "auto";
    sb_printf(&b, ",\"resampling\":\"");
    for (const char *c = rs; *c; c++) /* GDAL method names are plain words: keep the JSON valid */
        sb_printf(&b, "%c", (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) ? '_' : *c);
    sb_printf(&b, "\",\"min_valid\":%s,\"mask\":\"%s\",\"densify\":%d,\"stats_size\":%d}", mv, mask,
              p->densify, p->stats_size);
    if (b.overflow)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tiler settings: %zu bytes are too few", cap);
    return RSCLIP_OK;
}

/* A member's value as people read it: strings bare, numbers shortest, anything else as JSON-ish
 * placeholders (settings texts hold only strings and numbers). */
static void value_text(const rsclip_json *v, char *out, size_t cap) {
    if (!v) {
        snprintf(out, cap, "(none)");
    } else if (v->type == RSCLIP_JSON_STRING) {
        snprintf(out, cap, "%s", v->str);
    } else if (v->type == RSCLIP_JSON_NUMBER) {
        char t[32];
        num_text(v->num, t);
        snprintf(out, cap, "%s", t);
    } else {
        snprintf(out, cap, "(?)");
    }
}

int rsclip_tiler_settings_diff(const char *a, const char *b, char *buf, size_t cap) {
    if (buf && cap) buf[0] = 0;
    if (!a || !b)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_settings_diff: NULL argument");
    rsclip_json *ja = NULL, *jb = NULL;
    int rc = rsclip_json_parse(a, strlen(a), &ja);
    if (!rc) rc = rsclip_json_parse(b, strlen(b), &jb);
    if (!rc && (ja->type != RSCLIP_JSON_OBJECT || jb->type != RSCLIP_JSON_OBJECT))
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "tiler settings: not a JSON object");
    int n = 0;
    sbuf out = {buf, buf ? cap : 0, 0, 0};
    /* keys of b in order, then keys only a has */
    for (int pass = 0; !rc && pass < 2; pass++) {
        const rsclip_json *from = pass ? ja : jb, *other = pass ? jb : ja;
        for (size_t i = 0; i < from->len; i++) {
            const char *key = from->keys[i];
            if (pass && rsclip_json_get(other, key)) continue;
            const rsclip_json *va = pass ? &from->items[i] : rsclip_json_get(ja, key);
            const rsclip_json *vb = pass ? NULL : &from->items[i];
            char ta[160], tb[160];
            value_text(va, ta, sizeof ta);
            value_text(vb, tb, sizeof tb);
            if (strcmp(ta, tb) == 0) continue;
            if (buf) sb_printf(&out, "%s%s %s \xe2\x86\x92 %s", n ? ", " : "", key, ta, tb);
            n++;
        }
    }
    rsclip_json_free(ja);
    rsclip_json_free(jb);
    return rc ? rc : n;
}

/* "a,b,..." into at most max doubles: the count, or -1 if not such a list. */
static int parse_list(const char *s, double *v, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        v[n] = strtod(s, &end);
        if (end == s || !isfinite(v[n])) return -1;
        n++;
        s = end;
        if (*s == ',' && s[1])
            s++;
        else if (*s)
            return -1; /* anything else, or a trailing comma */
    }
    return *s ? -1 : n;
}

int rsclip_tiler_parse_scale(const char *s, rsclip_tiler_params *p) {
    static const char *const modes[] = {"auto", "none", NULL, "percentile"};
    if (!s || !p) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_parse_scale: NULL");
    for (int m = 0; m < 4; m++)
        if (modes[m] && strcmp(s, modes[m]) == 0) {
            p->scale_mode = (rsclip_tiler_scale_mode)m;
            return RSCLIP_OK;
        }
    double v[6];
    int n = parse_list(s, v, 6);
    for (int c = 0; c < 3 && (n == 2 || n == 6); c++)
        if (!(n == 2 ? v[1] > v[0] : v[2 * c + 1] > v[2 * c])) n = -1;
    if (n != 2 && n != 6)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "scale \"%s\": not auto, none, percentile, MIN,MAX or "
                             "MIN1,MAX1,MIN2,MAX2,MIN3,MAX3 (MAX > MIN)",
                             s);
    p->scale_mode = RSCLIP_TILER_SCALE_RANGE;
    for (int c = 0; c < 3; c++) {
        p->scale_min[c] = n == 2 ? v[0] : v[2 * c];
        p->scale_max[c] = n == 2 ? v[1] : v[2 * c + 1];
    }
    return RSCLIP_OK;
}

int rsclip_tiler_parse_bands(const char *s, rsclip_tiler_params *p) {
    if (!s || !p) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_parse_bands: NULL");
    if (strcmp(s, "auto") == 0) {
        p->n_bands = 0;
        return RSCLIP_OK;
    }
    double v[3];
    int n = parse_list(s, v, 3);
    for (int c = 0; c < n; c++)
        if (v[c] < 1 || v[c] > 65535 || v[c] != floor(v[c])) n = -1;
    if (n != 1 && n != 3)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "bands \"%s\": not auto, R,G,B or one band (1-based numbers)", s);
    p->n_bands = n;
    for (int c = 0; c < n; c++) p->bands[c] = (int)v[c];
    return RSCLIP_OK;
}

int rsclip_tiler_settings_parse(const char *text, rsclip_tiler_params *out) {
    if (!text || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tiler_settings_parse: NULL argument");
    rsclip_json *j = NULL;
    int rc = rsclip_json_parse(text, strlen(text), &j);
    if (rc) return rc;
    rsclip_tiler_params p = rsclip_tiler_default_params();
    int64_t ts = 0, stride = 0, densify = 0, stats = 0;
    double mv = 0, pct[2] = {0, 0}, gsd = 0;
    const char *bands = rsclip_json_get_str(j, "bands"), *scale = rsclip_json_get_str(j, "scale"),
               *pcts = rsclip_json_get_str(j, "pct"), *gsds = rsclip_json_get_str(j, "gsd"),
               *rs = rsclip_json_get_str(j, "resampling"), *mask = rsclip_json_get_str(j, "mask");
    int ok = j->type == RSCLIP_JSON_OBJECT && rsclip_json_get_int(j, "tile_size", &ts) &&
             rsclip_json_get_int(j, "stride", &stride) &&
             rsclip_json_get_num(j, "min_valid", &mv) &&
             rsclip_json_get_int(j, "densify", &densify) &&
             rsclip_json_get_int(j, "stats_size", &stats) && bands && scale && pcts && gsds && rs &&
             mask;
    ok = ok && ts > 0 && ts <= 8192 && stride > 0 && stride <= (1 << 30) && densify > 0 &&
         densify <= RSCLIP_TILER_MAX_DENSIFY && stats > 0 && stats <= 16384;
    ok = ok && rsclip_tiler_parse_bands(bands, &p) == 0 &&
         rsclip_tiler_parse_scale(scale, &p) == 0 && parse_list(pcts, pct, 2) == 2;
    if (ok && strcmp(gsds, "native") != 0) ok = parse_list(gsds, &gsd, 1) == 1 && gsd > 0;
    int mask_mode = -1;
    static const char *const masks[] = {"auto", "no_alpha", "none"};
    for (int m = 0; ok && m < 3; m++)
        if (strcmp(mask, masks[m]) == 0) mask_mode = m;
    ok = ok && mask_mode >= 0;
    if (ok) {
        p.tile_size = (int)ts;
        p.stride = (int)stride;
        p.min_valid = mv;
        p.densify = (int)densify;
        p.stats_size = (int)stats;
        p.pct_low = pct[0];
        p.pct_high = pct[1];
        p.gsd = gsd;
        p.mask_mode = mask_mode;
        /* the caller's copy must outlive the params: resampling points into a static table */
        static const char *const methods[] = {
            "near", "bilinear", "cubic", "cubicspline", "lanczos", "average", "rms", "mode",
            "min",  "max",      "med",   "q1",          "q3",      "sum",     NULL};
        p.resampling = NULL;
        if (strcmp(rs, "auto") != 0) {
            for (int m = 0; methods[m]; m++)
                if (strcmp(rs, methods[m]) == 0) p.resampling = methods[m];
            ok = p.resampling != NULL;
        }
    }
    rsclip_json_free(j);
    if (!ok) return rsclip__error(RSCLIP_ERR_FORMAT, "not a tiler settings text: %.200s", text);
    *out = p;
    return RSCLIP_OK;
}
