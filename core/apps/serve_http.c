/* HTTP for `rsclip serve` on libmicrohttpd: a bounded pool of threads, limits on connections,
 * request size and idle time, GET/HEAD only, routing to the handlers, security headers. */
#include "serve.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* libmicrohttpd logs protocol trouble (clients that vanish, bad requests) here: only with
 * RSCLIP_LOG=debug, a server must not write a line per rude client. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    const char *env = getenv("RSCLIP_LOG");
    if (!env || strcmp(env, "debug") != 0) return;
    fputs("rsclip serve: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

typedef struct arg_list {
    serve_arg v[SERVE_MAX_ARGS];
    int n, overflow;
} arg_list;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    arg_list *a = cls;
    if (a->n == SERVE_MAX_ARGS) {
        a->overflow = 1;
        return MHD_NO;
    }
    a->v[a->n].key = key;
    a->v[a->n].value = value ? value : "";
    a->n++;
    return MHD_YES;
}

/* Host: must name the loopback address when that is what we listen on: a page on another site
 * cannot then reach the server through a DNS name rebound to 127.0.0.1. */
static int host_ok(const serve_ctx *c, struct MHD_Connection *conn) {
    if (!c->check_host) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h) return 0;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (strncasecmp(h, names[i], n) == 0 && (h[n] == '\0' || h[n] == ':')) return 1;
    }
    return 0;
}

static void route(serve_ctx *c, struct MHD_Connection *conn, const char *url, serve_reply *r) {
    if (strncmp(url, "/api/search", 11) == 0 && url[11] == '\0') {
        arg_list a = {.n = 0, .overflow = 0};
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
        if (a.overflow) {
            serve_error(r, 400, "more than %d arguments", SERVE_MAX_ARGS);
            return;
        }
        serve_search(c, a.v, a.n, r);
    } else if (strncmp(url, "/api/chip/", 10) == 0) {
        serve_chip(c, url + 10, r);
    } else if (strncmp(url, "/tiles/", 7) == 0) {
        serve_tile(c, url + 7, r);
    } else if (strcmp(url, "/api/info") == 0) {
        serve_info(c, r);
    } else {
        const serve_asset *f = serve_find_asset(c, strcmp(url, "/") == 0 ? "/index.html" : url);
        if (f) {
            serve_bytes(r, 200, f->type, (void *)f->data, f->size, 0);
            r->cache_s = strncmp(url, "/leaflet/", 9) == 0 ? 86400 : 0;
        } else {
            serve_error(r, 404, "no such page");
        }
    }
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
    (void)version;
    (void)upload_data;
    serve_ctx *c = cls;
    static int first;
    serve_reply r;
    memset(&r, 0, sizeof r);
    if (*con_cls == NULL) { /* headers are in: refuse what is never served before any body */
        *con_cls = &first;
        const char *len =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            serve_error(&r, 405, "only GET and HEAD");
        else if ((len && strcmp(len, "0") != 0) ||
                 MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_TRANSFER_ENCODING))
            serve_error(&r, 413, "requests carry no body");
        else
            return MHD_YES;
    } else if (*upload_data_size) {
        *upload_data_size = 0; /* cannot happen after the checks above; drop it */
        return MHD_YES;
    } else if (!host_ok(c, conn)) {
        serve_error(&r, 403, "Host must be localhost, 127.0.0.1 or [::1]");
    } else {
        route(c, conn, url, &r);
    }
    /* (libmicrohttpd sends the headers alone to HEAD) */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r.n, (void *)r.body, r.owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (r.owned) free((void *)r.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
    char cache[64];
    if (r.cache_s > 0)
        snprintf(cache, sizeof cache, "max-age=%d", r.cache_s);
    else
        snprintf(cache, sizeof cache, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self' "
                            "'unsafe-inline'; script-src 'self'; connect-src 'self'; "
                            "frame-ancestors 'none'");
    if (r.status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (r.disposition[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, r.disposition);
    if (r.why_empty[0]) MHD_add_response_header(resp, "X-Rsclip-Why-Empty", r.why_empty);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

int serve_http_start(serve_ctx *c, struct MHD_Daemon **out) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (inet_pton(AF_INET, c->cfg.bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)c->cfg.port);
        c->check_host = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, c->cfg.bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)c->cfg.port);
        flags |= MHD_USE_IPv6;
        c->check_host = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    } else {
        return app_usage_error("serve", "--bind wants an IPv4 or IPv6 address, not '%s'",
                               c->cfg.bind);
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)c->cfg.port, NULL, NULL, answer, c, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)c->cfg.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)SERVE_REQUEST_MEMORY, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!d)
        return app_error("cannot listen on %s port %d (in use? another address?)", c->cfg.bind,
                         c->cfg.port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    c->port = info ? info->port : c->cfg.port;
    *out = d;
    return APP_OK;
}

void serve_http_stop(struct MHD_Daemon *d) {
    if (d) MHD_stop_daemon(d);
}
