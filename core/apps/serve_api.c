/* The JSON API and pictures of `rsclip serve`: /api/search (the GeoJSON of `rsclip search -of
 * GeoJSON`, or a GeoPackage), /api/chip/ID.png, /tiles/Z/X/Y.png and /api/info. Every argument is
 * checked here; the index and the imagery are reached only through ids they know. */
#include "serve.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- replies --------------------------------------------------------------------------------- */

void serve_bytes(serve_reply *r, int status, const char *type, void *body, size_t n, int owned) {
    r->status = status;
    r->type = type;
    r->body = body;
    r->n = n;
    r->owned = owned;
}

void serve_error(serve_reply *r, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (f) {
        fputs("{\"error\": ", f);
        app_json_string(f, msg);
        fputs("}\n", f);
        fclose(f);
    }
    if (buf) {
        serve_bytes(r, status, "application/json", buf, n, 1);
    } else {
        static const char oom[] = "{\"error\": \"out of memory\"}\n";
        serve_bytes(r, status, "application/json", (void *)oom, sizeof oom - 1, 0);
    }
}

/* The library's last error as a reply: not found is 404, a bad argument 400, the rest 500. */
static void serve_fail(serve_reply *r) {
    int st = rsclip_last_status();
    int code = st == RSCLIP_ERR_NOT_FOUND ? 404 : st == RSCLIP_ERR_INVALID_ARG ? 400 : 500;
    serve_error(r, code, "%s", rsclip_last_error());
}

/* ---- arguments ------------------------------------------------------------------------------- */

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s || strlen(s) > 19) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int blank(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == '\0';
}

typedef struct search_req {
    rsclip_query q;
    const char *negatives[RSCLIP_SEARCH_MAX_NEGATIVES];
    int64_t likes[RSCLIP_QUERY_MAX_EXAMPLES], unlikes[RSCLIP_QUERY_MAX_EXAMPLES];
    int n_like, n_unlike;
    int gpkg;
} search_req;

/* One argument into the request; 0, or -1 after filling *r with the 400. */
static int search_arg(serve_ctx *c, search_req *s, const serve_arg *a, serve_reply *r) {
    const char *k = a->key, *v = a->value;
    int64_t i;
    double d[4];
    if ((strcmp(k, "q") == 0 || strcmp(k, "not") == 0 || strcmp(k, "template") == 0) &&
        strlen(v) > SERVE_MAX_QUERY_BYTES) {
        serve_error(r, 414, "%s is longer than %d bytes", k, SERVE_MAX_QUERY_BYTES);
        return -1;
    }
    if (strcmp(k, "q") == 0) {
        s->q.text = blank(v) ? NULL : v;
    } else if (strcmp(k, "not") == 0) { /* a blank one is the library's to refuse, as in search */
        if (s->q.n_negatives == RSCLIP_SEARCH_MAX_NEGATIVES) {
            serve_error(r, 400, "at most %d not texts", RSCLIP_SEARCH_MAX_NEGATIVES);
            return -1;
        }
        s->negatives[s->q.n_negatives++] = v;
    } else if (strcmp(k, "template") == 0) {
        s->q.template_str = v;        /* given: checked by the library (a blank one has no {}) */
    } else if (strcmp(k, "k") == 0) { /* --max-k: this server's own bound (<= the library's) */
        if (parse_i64(v, 1, c->cfg.max_k, &i)) {
            serve_error(r, 400, "k wants a number of hits in 1..%d, not '%.40s'", c->cfg.max_k, v);
            return -1;
        }
        s->q.k = (int)i;
    } else if (strcmp(k, "min_prob") == 0) {
        if (app_parse_numbers(v, d, 1)) {
            serve_error(r, 400, "min_prob wants a probability in 0..1, not '%.40s'", v);
            return -1;
        }
        s->q.min_prob = (float)d[0];
    } else if (strcmp(k, "bbox") == 0) {
        if (app_parse_numbers(v, s->q.bbox, 4)) {
            serve_error(r, 400, "bbox wants W,S,E,N in degrees, not '%.80s'", v);
            return -1;
        }
        s->q.has_bbox = 1;
    } else if (strcmp(k, "like") == 0 || strcmp(k, "unlike") == 0) {
        int like = k[0] == 'l';
        int *n = like ? &s->n_like : &s->n_unlike;
        if (parse_i64(v, 1, INT64_MAX, &i)) {
            serve_error(r, 400, "%s wants a tile id, not '%.40s'", k, v);
            return -1;
        }
        if (*n == RSCLIP_QUERY_MAX_EXAMPLES) {
            serve_error(r, 400, "at most %d %s tiles", RSCLIP_QUERY_MAX_EXAMPLES, k);
            return -1;
        }
        (like ? s->likes : s->unlikes)[(*n)++] = i;
    } else if (strcmp(k, "scene") == 0) {
        if (parse_i64(v, 1, INT64_MAX, &i)) {
            serve_error(r, 400, "scene wants a scene id, not '%.40s'", v);
            return -1;
        }
        s->q.scene_id = i;
    } else if (strcmp(k, "format") == 0) {
        if (strcmp(v, "geojson") != 0 && strcmp(v, "gpkg") != 0) {
            serve_error(r, 400, "format is geojson or gpkg, not '%.40s'", v);
            return -1;
        }
        s->gpkg = strcmp(v, "gpkg") == 0;
    } else {
        serve_error(r, 400, "unknown argument '%.40s'", k);
        return -1;
    }
    return 0;
}

/* ---- /api/search ----------------------------------------------------------------------------- */

/* A whole file into memory (at most 1 GiB). */
static int slurp(const char *path, unsigned char **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f) return -1;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || st.st_size > (1 << 30)) {
        fclose(f);
        return -1;
    }
    unsigned char *b = malloc((size_t)st.st_size + 1);
    size_t got = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!b || got != (size_t)st.st_size) {
        free(b);
        return -1;
    }
    *out = b;
    *n = got;
    return 0;
}

/* The hits as `rsclip search -of FORMAT` writes them: through the same export, into a private
 * file that is read back and removed. */
static void export_reply(serve_ctx *c, const rsclip_results *res, int gpkg, serve_reply *r) {
    char path[4096];
    uint64_t seq = atomic_fetch_add(&c->seq, 1);
    snprintf(path, sizeof path, "%s/hits-%" PRIu64 ".%s", c->tmpdir, seq, gpkg ? "gpkg" : "json");
    rsclip_export_params ep = rsclip_export_default_params();
    ep.format = gpkg ? "GPKG" : "GeoJSON";
    unsigned char *body = NULL;
    size_t n = 0;
    if (rsclip_export_hits(path, &ep, res->hits, res->n) != RSCLIP_OK) {
        serve_fail(r);
    } else if (slurp(path, &body, &n) != 0) {
        serve_error(r, 500, "%s: cannot read the export back", path);
    } else if (gpkg) {
        serve_bytes(r, 200, "application/geopackage+sqlite3", body, n, 1);
        snprintf(r->disposition, sizeof r->disposition,
                 "attachment; filename=\"rsclip-hits.gpkg\"");
    } else {
        serve_bytes(r, 200, "application/geo+json", body, n, 1);
    }
    unlink(path);
    static const char *const sidecars[] = {"-journal", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, sidecars[i]);
        unlink(p);
    }
}

void serve_search(serve_ctx *c, const serve_arg *args, int n_args, serve_reply *r) {
    search_req s;
    memset(&s, 0, sizeof s);
    s.q = rsclip_query_default();
    if (s.q.k > c->cfg.max_k) s.q.k = c->cfg.max_k; /* the default k within --max-k too */
    for (int i = 0; i < n_args; i++)
        if (search_arg(c, &s, &args[i], r)) return;
    s.q.negatives = s.negatives;
    app_query_examples(&s.q, s.likes, s.n_like, s.unlikes, s.n_unlike);
    /* the query's rules are the library's: a refused query is the client's 400 */
    if (rsclip_query_check(&s.q) != RSCLIP_OK) {
        serve_fail(r);
        return;
    }
    rsclip_results *res = NULL;
    pthread_mutex_lock(&c->search_mu);
    int rc = rsclip_session_search(c->session, &s.q, &res);
    if (rc) serve_fail(r);
    pthread_mutex_unlock(&c->search_mu);
    if (rc) return;
    export_reply(c, res, s.gpkg, r);
    /* why nothing was found, for people (the GeoJSON stays the CLI's): percent-encoded, so that
     * any text fits in a header */
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(res->why_empty ? res->why_empty : "");
         *p && o + 4 < sizeof r->why_empty; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '%')
            r->why_empty[o++] = (char)*p;
        else
            o += (size_t)snprintf(r->why_empty + o, 4, "%%%02X", *p);
    }
    r->why_empty[o] = '\0';
    rsclip_results_free(res);
}

/* ---- pictures -------------------------------------------------------------------------------- */

static void png_reply(serve_reply *r, const uint8_t *px, int w, int h, int channels) {
    uint8_t *png = NULL;
    size_t n = 0;
    if (rsclip_png_encode(px, w, h, channels, &png, &n) != RSCLIP_OK) {
        serve_fail(r);
        return;
    }
    serve_bytes(r, 200, "image/png", png, n, 1);
    r->cache_s = 3600;
}

void serve_chip(serve_ctx *c, const char *name, serve_reply *r) {
    char digits[24];
    const char *dot = strchr(name, '.');
    int64_t id;
    size_t len = dot ? (size_t)(dot - name) : 0;
    if (!dot || strcmp(dot, ".png") != 0 || len == 0 || len >= sizeof digits) {
        serve_error(r, 404, "chips are /api/chip/TILE_ID.png");
        return;
    }
    memcpy(digits, name, len);
    digits[len] = '\0';
    if (parse_i64(digits, 1, INT64_MAX, &id)) {
        serve_error(r, 404, "chips are /api/chip/TILE_ID.png");
        return;
    }
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    if (rsclip_imagery_tile_rgb(c->imagery, id, &rgb, &w, &h) != RSCLIP_OK) {
        serve_fail(r);
        return;
    }
    png_reply(r, rgb, w, h, 3);
    rsclip_free(rgb);
}

void serve_tile(serve_ctx *c, const char *zxy, serve_reply *r) {
    char buf[48];
    size_t len = strlen(zxy);
    int64_t v[3];
    if (len < 9 || len >= sizeof buf || strcmp(zxy + len - 4, ".png") != 0) {
        serve_error(r, 404, "map tiles are /tiles/Z/X/Y.png");
        return;
    }
    memcpy(buf, zxy, len - 4);
    buf[len - 4] = '\0';
    char *x = strchr(buf, '/'), *y = x ? strchr(x + 1, '/') : NULL;
    if (x) *x++ = '\0';
    if (y) *y++ = '\0';
    if (!y || strchr(y, '/') || parse_i64(buf, 0, INT32_MAX, &v[0]) ||
        parse_i64(x, 0, INT32_MAX, &v[1]) || parse_i64(y, 0, INT32_MAX, &v[2])) {
        serve_error(r, 400, "map tiles are /tiles/Z/X/Y.png with whole numbers");
        return;
    }
    size_t px = (size_t)SERVE_TILE_SIZE * SERVE_TILE_SIZE * 4;
    uint8_t *rgba = malloc(px);
    int drawn = 0;
    if (!rgba) {
        serve_error(r, 500, "out of memory");
        return;
    }
    if (rsclip_imagery_xyz(c->imagery, (int)v[0], (int)v[1], (int)v[2], SERVE_TILE_SIZE, rgba, px,
                           &drawn) != RSCLIP_OK)
        serve_fail(r);
    else if (drawn == 0) {
        serve_bytes(r, 200, "image/png", c->empty_tile, c->empty_tile_n, 0);
        r->cache_s = 3600;
    } else
        png_reply(r, rgba, SERVE_TILE_SIZE, SERVE_TILE_SIZE, 4);
    free(rgba);
}

/* ---- /api/info ------------------------------------------------------------------------------- */

void serve_info(serve_ctx *c, serve_reply *r) {
    serve_bytes(r, 200, "application/json", c->info_json, c->info_n, 0);
}

int serve_build_info(serve_ctx *c) {
    rsclip_index_set *set = NULL;
    rsclip_index_info info;
    if (rsclip_index_set_open(c->cfg.index, RSCLIP_INDEX_READONLY, &set) != RSCLIP_OK ||
        rsclip_index_set_info(set, &info) != RSCLIP_OK) {
        rsclip_index_set_close(set);
        return app_fail();
    }
    rsclip_index_set_close(set);
    FILE *f = open_memstream(&c->info_json, &c->info_n);
    if (!f) return app_error("out of memory");
    double box[4];
    int has = rsclip_imagery_extent(c->imagery, box);
    fputs("{\"index\": ", f);
    app_json_string(f, c->cfg.index);
    fputs(", \"model\": ", f);
    app_json_string(f, info.model_id);
    fprintf(f, ", \"tiles\": %zu, \"dim\": %d, \"scenes\": %d", rsclip_session_count(c->session),
            rsclip_session_dim(c->session), rsclip_imagery_scene_count(c->imagery));
    if (has)
        fprintf(f, ", \"extent\": [%.9g, %.9g, %.9g, %.9g]", box[0], box[1], box[2], box[3]);
    else
        fputs(", \"extent\": null", f);
    fprintf(f,
            ", \"max_k\": %d, \"max_zoom\": %d, \"max_negatives\": %d, \"max_examples\": %d, "
            "\"template\": ",
            c->cfg.max_k, RSCLIP_XYZ_MAX_ZOOM, RSCLIP_SEARCH_MAX_NEGATIVES,
            RSCLIP_QUERY_MAX_EXAMPLES);
    app_json_string(f, RSCLIP_DEFAULT_TEMPLATE);
    fputs("}\n", f);
    return fclose(f) == 0 ? APP_OK : app_error("out of memory");
}
