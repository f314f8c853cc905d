/* Private to `rsclip serve`: the server's state (cmd_serve.c), the HTTP layer on libmicrohttpd
 * (serve_http.c) and the request handlers (serve_api.c, serve_static.c). Handlers see requests as
 * a path and a list of arguments and answer with a serve_reply; only serve_http.c knows
 * libmicrohttpd. */
#ifndef RSCLIP_SERVE_H
#define RSCLIP_SERVE_H

#include "app.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on what a request may ask (see the README's "rsclip serve" section). */
#define SERVE_MAX_ARGS 128         /* query-string arguments */
#define SERVE_MAX_QUERY_BYTES 1024 /* one text (q, not, template) */
#define SERVE_REQUEST_MEMORY                                                                       \
    32768 /* request line + headers (libmicrohttpd's per-connection pool) */
#define SERVE_MAX_CONNECTIONS 256
#define SERVE_TILE_SIZE 256

typedef struct serve_config {
    const char *index;
    const char *bind; /* address to listen on */
    int port;         /* 0: any free port */
    int threads;      /* the pool serving requests */
    int timeout_s;    /* an idle (or slow) connection is closed after this */
    int max_k;
    const char *leaflet_dir;
    rsclip_session_params session;
} serve_config;

/* A file served from memory. */
typedef struct serve_asset {
    char path[64];    /* URL path */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t size;
    unsigned char *owned; /* data when read at start-up (freed at exit) */
} serve_asset;

typedef struct serve_ctx {
    serve_config cfg;
    rsclip_session *session; /* one thread at a time: search_mu */
    pthread_mutex_t search_mu;
    rsclip_imagery *imagery; /* thread-safe */
    char *tmpdir;            /* private folder for exports */
    atomic_uint_fast64_t seq;
    serve_asset assets[16];
    int n_assets;
    uint8_t *empty_tile; /* a transparent PNG tile */
    size_t empty_tile_n;
    char *info_json;
    size_t info_n;
    int check_host; /* bound to loopback: only Host: localhost / 127.0.0.1 / [::1] */
    int port;       /* the port bound */
} serve_ctx;

typedef struct serve_arg {
    const char *key, *value;
} serve_arg;

typedef struct serve_reply {
    int status;
    const char *type;
    const void *body; /* owned ? freed by the HTTP layer : static */
    size_t n;
    int owned;
    int cache_s;           /* Cache-Control max-age (0: no-store) */
    char disposition[128]; /* Content-Disposition, "" for none */
    char why_empty[512];   /* X-Rsclip-Why-Empty (percent-encoded UTF-8), "" for none */
} serve_reply;

/* Handlers (serve_api.c): fill *r; never fail to answer. */
void serve_search(serve_ctx *c, const serve_arg *args, int n_args, serve_reply *r);
void serve_chip(serve_ctx *c, const char *id, serve_reply *r);
void serve_tile(serve_ctx *c, const char *zxy, serve_reply *r);
void serve_info(serve_ctx *c, serve_reply *r);
/* The info document, built once at start-up (serve_api.c). */
int serve_build_info(serve_ctx *c);

/* Static files (serve_static.c): the embedded web app and Leaflet read at start-up. */
int serve_load_assets(serve_ctx *c);
void serve_free_assets(serve_ctx *c);
const serve_asset *serve_find_asset(const serve_ctx *c, const char *path);

/* Replies (serve_api.c): a JSON error {"error": msg}, or bytes. */
void serve_error(serve_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void serve_bytes(serve_reply *r, int status, const char *type, void *body, size_t n, int owned);

/* HTTP (serve_http.c): start on c->cfg.bind:port, set c->port; stop. */
struct MHD_Daemon;
int serve_http_start(serve_ctx *c, struct MHD_Daemon **out);
void serve_http_stop(struct MHD_Daemon *d);

#endif
