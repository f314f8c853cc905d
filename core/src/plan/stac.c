/* STAC as input: an Item, an ItemCollection (a saved search), or a static Catalog/Collection whose
 * item and child links are followed, local or over HTTP (GDAL's /vsicurl/). Each item gives one
 * raster asset with its time and ids. A bad item (not JSON, wrong type, no usable asset, an
 * unreachable href) fails alone; the others go on. STAC 1.0.0. */
#include "base/base.h"
#include "json/json.h"
#include "rsclip/plan.h"
#include "rsclip/tiler.h"
#include "rsclip/time.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <cpl_vsi.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STAC_MAX_BYTES (64 << 20) /* one STAC document */
#define STAC_MAX_DEPTH 16         /* catalogue nesting */
#define STAC_MAX_DOCS 1000000     /* documents read in one walk */

typedef struct stac_walk {
    const char *asset_key; /* NULL: visual, else the first raster asset */
    void (*on_error)(const char *where, const char *message, void *user);
    void *user;
    rsclip_input *items;
    int n, cap;
    char **seen; /* documents read (cycles) */
    int n_seen, cap_seen;
    int failed;
} stac_walk;

static void fail_one(stac_walk *w, const char *where, const char *fmt, ...) RSCLIP_PRINTF(3, 4);
static void fail_one(stac_walk *w, const char *where, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->failed++;
    if (w->on_error) w->on_error(where, msg, w->user);
    rsclip_clear_error();
}

/* http(s) URLs are read through GDAL's /vsicurl/; anything else as given. */
static char *vsi_path(const char *href) {
    size_t n = strlen(href);
    char *p = rsclip__malloc(n + 10);
    if (!p) return NULL;
    if (strncmp(href, "http://", 7) == 0 || strncmp(href, "https://", 8) == 0)
        snprintf(p, n + 10, "/vsicurl/%s", href);
    else
        memcpy(p, href, n + 1);
    return p;
}

/* href resolved against the document base (its own href): absolute hrefs (a scheme, /, /vsi)
 * as they are; relative ones against the base's folder, "./" and "../" folded (RFC 3986 §5.2 for
 * the cases STAC catalogues use). */
static char *resolve(const char *base, const char *href) {
    if (strstr(href, "://") || href[0] == '/') return rsclip__strdup(href);
    const char *slash = strrchr(base, '/');
    size_t dir = slash ? (size_t)(slash - base + 1) : 0;
    size_t n = dir + strlen(href) + 1;
    char *out = rsclip__malloc(n);
    if (!out) return NULL;
    memcpy(out, base, dir);
    out[dir] = 0;
    const char *h = href;
    for (;;) {
        if (strncmp(h, "./", 2) == 0) {
            h += 2;
        } else if (strncmp(h, "../", 3) == 0) {
            size_t len = strlen(out);
            if (len > 0 && out[len - 1] == '/') out[--len] = 0;
            char *up = strrchr(out, '/');
            /* never above the scheme's authority ("https://host/") or the root */
            if (up && !(up > out && up[-1] == '/'))
                up[1] = 0;
            else if (len)
                out[len] = '/';
            h += 3;
        } else {
            break;
        }
    }
    strcat(out, h);
    return out;
}

static int read_doc(const char *href, rsclip_json **out) {
    char *p = vsi_path(href);
    if (!p) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    VSILFILE *f = VSIFOpenL(p, "rb");
    int rc = RSCLIP_OK;
    char *buf = NULL;
    size_t len = 0;
    if (!f) {
        rc = rsclip__gdal_error(&e, RSCLIP_ERR_IO, "%s: cannot read", href);
    } else {
        size_t cap = 1 << 16;
        buf = rsclip__malloc(cap);
        while (buf) {
            size_t got = VSIFReadL(buf + len, 1, cap - len, f);
            len += got;
            if (len < cap) break;
            if (cap >= STAC_MAX_BYTES) {
                rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: larger than %d MiB: not a STAC document",
                                   href, STAC_MAX_BYTES >> 20);
                break;
            }
            char *nb = rsclip__realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        if (!buf && !rc) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        VSIFCloseL(f);
    }
    rsclip__gdal_errors_pop(&e);
    free(p);
    if (!rc) {
        rc = rsclip_json_parse(buf, len, out);
        if (rc) rsclip__error_prefix(href);
    }
    free(buf);
    return rc;
}

static int seen_before(stac_walk *w, const char *href) {
    for (int i = 0; i < w->n_seen; i++)
        if (strcmp(w->seen[i], href) == 0) return 1;
    if (w->n_seen == w->cap_seen) {
        int cap = w->cap_seen ? w->cap_seen * 2 : 64;
        char **s = rsclip__realloc(w->seen, (size_t)cap * sizeof *s);
        if (!s) return 1;
        w->seen = s;
        w->cap_seen = cap;
    }
    w->seen[w->n_seen] = rsclip__strdup(href);
    if (w->seen[w->n_seen]) w->n_seen++;
    return 0;
}

/* ---- items -------------------------------------------------------------------------------- */

/* A media type or href a raster reader takes (GeoTIFF/COG, JPEG2000, ...). */
static int raster_asset(const rsclip_json *a) {
    const char *type = rsclip_json_get_str(a, "type"), *href = rsclip_json_get_str(a, "href");
    if (type &&
        (strncasecmp(type, "image/tiff", 10) == 0 || strncasecmp(type, "image/jp2", 9) == 0 ||
         strncasecmp(type, "image/vnd.stac.geotiff", 22) == 0 ||
         strncasecmp(type, "image/png", 9) == 0 || strncasecmp(type, "image/jpeg", 10) == 0))
        return 1;
    if (type) return 0; /* a type that says something else: metadata, thumbnails of other kinds */
    return href && rsclip_inputs_is_raster_name(href);
}

static int has_role(const rsclip_json *a, const char *role) {
    const rsclip_json *roles = rsclip_json_get(a, "roles");
    for (size_t i = 0; roles && roles->type == RSCLIP_JSON_ARRAY && i < roles->len; i++)
        if (roles->items[i].type == RSCLIP_JSON_STRING && strcmp(roles->items[i].str, role) == 0)
            return 1;
    return 0;
}

/* The asset to index: the one named, else "visual", else the first raster asset whose roles say
 * data or visual, else the first raster asset (not thumbnails or overviews). */
static const char *pick_asset(const stac_walk *w, const rsclip_json *assets,
                              const rsclip_json **out) {
    *out = NULL;
    if (!assets || assets->type != RSCLIP_JSON_OBJECT) return NULL;
    if (w->asset_key) {
        *out = rsclip_json_get(assets, w->asset_key);
        return *out ? w->asset_key : NULL;
    }
    if ((*out = rsclip_json_get(assets, "visual")) && (*out)->type == RSCLIP_JSON_OBJECT)
        return "visual";
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < assets->len; i++) {
            const rsclip_json *a = &assets->items[i];
            if (a->type != RSCLIP_JSON_OBJECT || !raster_asset(a)) continue;
            if (has_role(a, "thumbnail") || has_role(a, "overview")) continue;
            if (pass == 0 && !has_role(a, "data") && !has_role(a, "visual")) continue;
            *out = a;
            return assets->keys[i];
        }
    *out = NULL;
    return NULL;
}

static int push_item(stac_walk *w, const char *href, const char *datetime, const char *id,
                     const char *collection, const char *asset) {
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        rsclip_input *n = rsclip__realloc(w->items, (size_t)cap * sizeof *n);
        if (!n) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        w->items = n;
        w->cap = cap;
    }
    rsclip_input *in = &w->items[w->n];
    memset(in, 0, sizeof *in);
    /* a local asset by its canonical path, as a raster named on the command line would be */
    char *real =
        strncmp(href, "/vsi", 4) != 0 && !strstr(href, "://") ? realpath(href, NULL) : NULL;
    in->path = real ? real : vsi_path(href);
    in->datetime = datetime ? rsclip__strdup(datetime) : NULL;
    in->stac_item = id ? rsclip__strdup(id) : NULL;
    in->stac_collection = collection ? rsclip__strdup(collection) : NULL;
    in->stac_asset = asset ? rsclip__strdup(asset) : NULL;
    w->n++;
    if (!in->path || (datetime && !in->datetime) || (id && !in->stac_item) ||
        (collection && !in->stac_collection) || (asset && !in->stac_asset))
        return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    return RSCLIP_OK;
}

/* One Item (a GeoJSON Feature) read from base. */
static int add_item(stac_walk *w, const char *base, const rsclip_json *item) {
    const char *id = rsclip_json_get_str(item, "id");
    const char *type = rsclip_json_get_str(item, "type");
    const char *where = id ? id : base;
    if (!type || strcmp(type, "Feature") != 0 || !id) {
        fail_one(w, base, "not a STAC item (type Feature with an id)");
        return RSCLIP_OK;
    }
    const rsclip_json *props = rsclip_json_get(item, "properties");
    const char *dt = props ? rsclip_json_get_str(props, "datetime") : NULL;
    const char *st = props ? rsclip_json_get_str(props, "start_datetime") : NULL;
    const char *en = props ? rsclip_json_get_str(props, "end_datetime") : NULL;
    char span[2 * RSCLIP_TIME_TEXT_MAX];
    if (!dt && st && en) {
        snprintf(span, sizeof span, "%s/%s", st, en);
        dt = span;
    }
    rsclip_time t;
    if (dt && rsclip_time_parse(dt, &t) != RSCLIP_OK) {
        fail_one(w, where, "%s: item %s: bad datetime: %s", base, id, rsclip_last_error());
        return RSCLIP_OK;
    }
    const rsclip_json *asset = NULL;
    const char *key = pick_asset(w, rsclip_json_get(item, "assets"), &asset);
    const char *href =
        asset && asset->type == RSCLIP_JSON_OBJECT ? rsclip_json_get_str(asset, "href") : NULL;
    if (!key || !href || !*href) {
        fail_one(w, where, "%s: item %s has no %s%s%s asset with an href", base, id,
                 w->asset_key ? "'" : "raster", w->asset_key ? w->asset_key : "",
                 w->asset_key ? "'" : "");
        return RSCLIP_OK;
    }
    char *abs = resolve(base, href);
    if (!abs) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    int rc = push_item(w, abs, dt, id, rsclip_json_get_str(item, "collection"), key);
    free(abs);
    return rc;
}

static int walk_doc(stac_walk *w, const char *href, int depth);

/* Links of rel item and child (a static catalogue), resolved against base, in document order. */
static int follow_links(stac_walk *w, const char *base, const rsclip_json *doc, int depth) {
    const rsclip_json *links = rsclip_json_get(doc, "links");
    int rc = RSCLIP_OK;
    for (size_t i = 0; links && links->type == RSCLIP_JSON_ARRAY && i < links->len && !rc; i++) {
        const rsclip_json *l = &links->items[i];
        const char *rel = rsclip_json_get_str(l, "rel"), *href = rsclip_json_get_str(l, "href");
        if (!rel || !href || (strcmp(rel, "item") != 0 && strcmp(rel, "child") != 0)) continue;
        char *abs = resolve(base, href);
        if (!abs) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        rc = walk_doc(w, abs, depth + 1);
        free(abs);
    }
    return rc;
}

static int walk_doc(stac_walk *w, const char *href, int depth) {
    if (depth > STAC_MAX_DEPTH) {
        fail_one(w, href, "catalogue nested deeper than %d levels", STAC_MAX_DEPTH);
        return RSCLIP_OK;
    }
    if (w->n_seen >= STAC_MAX_DOCS) {
        fail_one(w, href, "more than %d STAC documents in one walk", STAC_MAX_DOCS);
        return RSCLIP_OK;
    }
    if (seen_before(w, href)) return RSCLIP_OK; /* a link cycle, or the same item twice */
    rsclip_json *doc = NULL;
    if (read_doc(href, &doc) != RSCLIP_OK) {
        if (rsclip_last_status() == RSCLIP_ERR_NOMEM) return RSCLIP_ERR_NOMEM;
        fail_one(w, href, "%s", rsclip_last_error());
        return RSCLIP_OK;
    }
    int rc = RSCLIP_OK;
    const char *type = doc->type == RSCLIP_JSON_OBJECT ? rsclip_json_get_str(doc, "type") : NULL;
    if (type && strcmp(type, "Feature") == 0) {
        rc = add_item(w, href, doc);
    } else if (type && strcmp(type, "FeatureCollection") == 0) {
        const rsclip_json *f = rsclip_json_get(doc, "features");
        if (!f || f->type != RSCLIP_JSON_ARRAY)
            fail_one(w, href, "%s: an ItemCollection without a features array", href);
        for (size_t i = 0; f && f->type == RSCLIP_JSON_ARRAY && i < f->len && !rc; i++)
            rc = add_item(w, href, &f->items[i]);
    } else if (type && (strcmp(type, "Catalog") == 0 || strcmp(type, "Collection") == 0)) {
        rc = follow_links(w, href, doc, depth);
    } else {
        fail_one(w, href, "%s: not a STAC Item, ItemCollection, Catalog or Collection (type %s)",
                 href, type ? type : "missing");
    }
    rsclip_json_free(doc);
    return rc;
}

void rsclip_stac_free(rsclip_input *items, int n) {
    for (int i = 0; items && i < n; i++) {
        free((char *)items[i].path);
        free((char *)items[i].datetime);
        free((char *)items[i].stac_item);
        free((char *)items[i].stac_collection);
        free((char *)items[i].stac_asset);
    }
    free(items);
}

static int cmp_input(const void *a, const void *b) {
    return strcmp(((const rsclip_input *)a)->path, ((const rsclip_input *)b)->path);
}

int rsclip_stac_read(const char *href, const char *asset_key,
                     void (*on_error)(const char *where, const char *message, void *user),
                     void *user, rsclip_input **items, int *n_items) {
    if (!href || !items || !n_items)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_stac_read: NULL argument");
    *items = NULL;
    *n_items = 0;
    stac_walk w = {asset_key, on_error, user, NULL, 0, 0, NULL, 0, 0, 0};
    int rc = walk_doc(&w, href, 0);
    for (int i = 0; i < w.n_seen; i++) free(w.seen[i]);
    free(w.seen);
    if (rc) {
        rsclip_stac_free(w.items, w.n);
        return rc;
    }
    /* one scene per asset href, in href order: every worker of an array job gets this order */
    if (w.n > 1) qsort(w.items, (size_t)w.n, sizeof *w.items, cmp_input);
    int k = 0;
    for (int i = 0; i < w.n; i++) {
        if (k > 0 && strcmp(w.items[k - 1].path, w.items[i].path) == 0) {
            free((char *)w.items[i].path);
            free((char *)w.items[i].datetime);
            free((char *)w.items[i].stac_item);
            free((char *)w.items[i].stac_collection);
            free((char *)w.items[i].stac_asset);
            continue;
        }
        w.items[k++] = w.items[i];
    }
    *items = w.items;
    *n_items = k;
    return RSCLIP_OK;
}

int rsclip_stac_is_name(const char *input) {
    if (!input) return 0;
    size_t n = strlen(input);
    return (n > 5 && strcasecmp(input + n - 5, ".json") == 0) ||
           (n > 8 && strcasecmp(input + n - 8, ".geojson") == 0);
}
