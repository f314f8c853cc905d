/* The files `rsclip serve` sends as they are: its web app (apps/web/, compiled in) and Leaflet,
 * read once at start-up from the libjs-leaflet folder. No request path ever reaches the file
 * system: a path is served when it is one of these, else it is 404. */
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rsclip_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t size;
};
extern const struct rsclip_embedded_file rsclip_web_files[]; /* generated: rsclip_web.c */

static const char *type_of(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (strcmp(dot, ".png") == 0) return "image/png";
    if (strcmp(dot, ".svg") == 0) return "image/svg+xml";
    return "application/octet-stream";
}

static int add(serve_ctx *c, const char *path, const unsigned char *data, size_t n,
               unsigned char *owned) {
    if (c->n_assets == (int)(sizeof c->assets / sizeof c->assets[0]))
        return app_error("serve: too many static files");
    serve_asset *a = &c->assets[c->n_assets++];
    snprintf(a->path, sizeof a->path, "%s", path);
    a->type = type_of(path);
    a->data = data;
    a->size = n;
    a->owned = owned;
    return APP_OK;
}

/* One Leaflet file; a missing one is an error when required. */
static int add_leaflet(serve_ctx *c, const char *rel, int required) {
    char path[4096], url[64];
    snprintf(path, sizeof path, "%s/%s", c->cfg.leaflet_dir, rel);
    snprintf(url, sizeof url, "/leaflet/%s", rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!required) return APP_OK;
        return app_error("%s: %s (Leaflet: install libjs-leaflet or give --leaflet DIR)", path,
                         strerror(errno));
    }
    struct stat st;
    unsigned char *b = NULL;
    size_t got = 0;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && st.st_size < (16 << 20)) {
        b = malloc((size_t)st.st_size);
        if (b) got = fread(b, 1, (size_t)st.st_size, f);
    }
    fclose(f);
    if (!b || got != (size_t)st.st_size) {
        free(b);
        return app_error("%s: cannot read it", path);
    }
    return add(c, url, b, got, b);
}

int serve_load_assets(serve_ctx *c) {
    for (const struct rsclip_embedded_file *f = rsclip_web_files; f->name; f++) {
        char url[64];
        snprintf(url, sizeof url, "/%s", f->name);
        if (add(c, url, f->data, f->size, NULL)) return APP_ERROR;
    }
    static const char *const optional[] = {"images/layers.png", "images/layers-2x.png",
                                           "images/marker-icon.png", "images/marker-icon-2x.png",
                                           "images/marker-shadow.png"};
    if (add_leaflet(c, "leaflet.js", 1) || add_leaflet(c, "leaflet.css", 1)) return APP_ERROR;
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        if (add_leaflet(c, optional[i], 0)) return APP_ERROR;
    return APP_OK;
}

void serve_free_assets(serve_ctx *c) {
    for (int i = 0; i < c->n_assets; i++) free(c->assets[i].owned);
    c->n_assets = 0;
}

const serve_asset *serve_find_asset(const serve_ctx *c, const char *path) {
    for (int i = 0; i < c->n_assets; i++)
        if (strcmp(c->assets[i].path, path) == 0) return &c->assets[i];
    return NULL;
}
