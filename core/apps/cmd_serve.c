/* rsclip serve: a local web app on an index: search, map, gallery, more like this / not this,
 * downloads and a JSON API (serve_*.c), until Ctrl-C. */
#include "serve.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char app_usage_serve[] =
    "usage: rsclip serve INDEX [options]\n"
    "\n"
    "Serve a web app on INDEX (an index file or a sharded index folder), read-only: a search\n"
    "box, a map of the imagery (drawn from the indexed rasters, as indexed) with the hit\n"
    "footprints, a gallery of the hits with \"more like this\" / \"not this\", downloads of the\n"
    "hits (GeoJSON, GeoPackage) and a JSON API (see the README). Open the printed address in a\n"
    "browser; /?q=TEXT runs a query when the page loads. Ctrl-C stops it.\n"
    "\n"
    "Options:\n"
    "  --bind ADDR             address to listen on (default 127.0.0.1: this machine only)\n"
    "  --port N                port (default 8080; 0: any free port)\n"
    "  --http-threads N        requests served at once, 1..64 (default 4)\n"
    "  --timeout S             close a connection idle (or too slow) for S seconds (default 15)\n"
    "  --max-k N               most hits one search may ask for, 1.." APP_MAX_K_STR
    " (default 1000)\n"
    "  --leaflet DIR           Leaflet's folder (default " RSCLIP_LEAFLET_DIR ")\n"
    "  --no-cache              do not use or write the INDEX.rsvec vector cache\n"
    "-j (--threads) is the encoder's and the scan's threads; --http-threads the "
    "server's.\n" APP_USAGE_COMMON APP_USAGE_MODEL_OF_INDEX APP_USAGE_THREADS APP_USAGE_PRECISION;

static int parse_args(int argc, char **argv, serve_config *cfg) {
    enum { O_BIND = 1000, O_PORT, O_HTTP_THREADS, O_TIMEOUT, O_MAX_K, O_LEAFLET, O_NO_CACHE };
    static const struct option longopts[] = {
        APP_OPT_MODEL,
        APP_OPT_THREADS,
        APP_OPT_PRECISION,
        {"bind", required_argument, NULL, O_BIND},
        {"port", required_argument, NULL, O_PORT},
        {"http-threads", required_argument, NULL, O_HTTP_THREADS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"max-k", required_argument, NULL, O_MAX_K},
        {"leaflet", required_argument, NULL, O_LEAFLET},
        {"no-cache", no_argument, NULL, O_NO_CACHE},
        {NULL, 0, NULL, 0}};
    app_common co = app_common_default();
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":" APP_SHORT_MODEL APP_SHORT_THREADS, longopts, NULL)) !=
           -1) {
        int r = app_common_option("serve", ch, optarg, &co);
        if (r < 0) return APP_USAGE;
        if (r > 0) continue;
        switch (ch) {
        case O_BIND:
            cfg->bind = optarg;
            break;
        case O_PORT:
            if (app_parse_int("serve", "--port", optarg, 0, 65535, &cfg->port)) return APP_USAGE;
            break;
        case O_HTTP_THREADS:
            if (app_parse_int("serve", "--http-threads", optarg, 1, 64, &cfg->threads))
                return APP_USAGE;
            break;
        case O_TIMEOUT:
            if (app_parse_int("serve", "--timeout", optarg, 1, 3600, &cfg->timeout_s))
                return APP_USAGE;
            break;
        case O_MAX_K:
            if (app_parse_int("serve", "--max-k", optarg, 1, RSCLIP_QUERY_MAX_K, &cfg->max_k))
                return APP_USAGE;
            break;
        case O_LEAFLET:
            cfg->leaflet_dir = optarg;
            break;
        case O_NO_CACHE:
            cfg->session.use_cache = 0;
            break;
        default:
            return app_bad_option("serve", ch, argv);
        }
    }
    cfg->session.model = co.model;
    cfg->session.n_threads = co.threads;
    cfg->session.precision = co.precision;
    /* --threads meant the request threads before --http-threads existed: say what it is now */
    for (int i = 1; i < optind; i++)
        if (strncmp(argv[i], "--threads", 9) == 0 && (argv[i][9] == '\0' || argv[i][9] == '=')) {
            fprintf(stderr, "rsclip serve: note: --threads sets the encoder's and the scan's "
                            "threads (-j); requests served at once are --http-threads\n");
            break;
        }
    if (argc - optind < 1) return app_usage_error("serve", "no index given");
    if (argc - optind > 1)
        return app_usage_error("serve", "one index (a file or a sharded index folder); "
                                        "rsclip merge joins several");
    cfg->index = argv[optind];
    return APP_OK;
}

/* Everything the handlers need, made before the first request. */
static int setup(serve_ctx *c) {
    if (access(c->cfg.index, F_OK) != 0) return app_error("%s: no such index", c->cfg.index);
    if (rsclip_session_open(c->cfg.index, &c->cfg.session, &c->session) != RSCLIP_OK ||
        rsclip_imagery_open(c->cfg.index, NULL, &c->imagery) != RSCLIP_OK)
        return app_fail();
    pthread_mutex_init(&c->search_mu, NULL);
    const char *tmp = getenv("TMPDIR");
    size_t n = strlen(tmp && *tmp ? tmp : "/tmp") + 32;
    c->tmpdir = malloc(n);
    if (!c->tmpdir) return app_error("out of memory");
    snprintf(c->tmpdir, n, "%s/rsclip-serve-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(c->tmpdir)) {
        int e = errno;
        free(c->tmpdir);
        c->tmpdir = NULL;
        return app_error("cannot make a temporary folder: %s", strerror(e));
    }
    static const uint8_t clear[SERVE_TILE_SIZE * SERVE_TILE_SIZE * 4];
    if (rsclip_png_encode(clear, SERVE_TILE_SIZE, SERVE_TILE_SIZE, 4, &c->empty_tile,
                          &c->empty_tile_n) != RSCLIP_OK)
        return app_fail();
    if (serve_load_assets(c) || serve_build_info(c)) return APP_ERROR;
    /* Load the model now (once): the first visitor does not wait for it, and a missing model is
     * said at start-up. Queries by example still work without one. */
    rsclip_query q = rsclip_query_default();
    q.text = "warm up";
    q.k = 1;
    /* twice: a session's first encode may run on the weights in place, the second packs them */
    for (int i = 0; i < 2; i++) {
        rsclip_results *r = NULL;
        if (rsclip_session_search(c->session, &q, &r) != RSCLIP_OK) {
            /* a model asked for by name (-m) must load, as in every other command; the index's
             * own model may be absent here (queries by example still work) */
            if (c->cfg.session.model) return app_fail();
            fprintf(stderr, "rsclip serve: warning: text queries will fail: %s\n",
                    rsclip_last_error());
            break;
        }
        rsclip_results_free(r);
    }
    return APP_OK;
}

static void teardown(serve_ctx *c) {
    if (c->tmpdir) {
        rmdir(c->tmpdir);
        free(c->tmpdir);
    }
    serve_free_assets(c);
    rsclip_free(c->empty_tile);
    free(c->info_json);
    rsclip_imagery_close(c->imagery);
    if (c->session) pthread_mutex_destroy(&c->search_mu);
    rsclip_session_close(c->session);
}

int cmd_serve(int argc, char **argv) {
    serve_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg.bind = "127.0.0.1";
    c.cfg.port = 8080;
    c.cfg.threads = 4;
    c.cfg.timeout_s = 15;
    c.cfg.max_k = 1000;
    c.cfg.leaflet_dir = RSCLIP_LEAFLET_DIR;
    c.cfg.session = rsclip_session_default_params();
    int rc = parse_args(argc, argv, &c.cfg);
    if (rc) return rc;
    /* Ctrl-C and SIGTERM are taken by sigwait below: block them before any thread starts so that
     * libmicrohttpd's threads inherit the mask; a closed client socket is not a signal. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = setup(&c);
    struct MHD_Daemon *d = NULL;
    if (!rc) rc = serve_http_start(&c, &d);
    if (!rc) {
        printf("rsclip serve: http://%s%s%s:%d/  (%s: %zu tiles, %d scenes; Ctrl-C stops)\n",
               strchr(c.cfg.bind, ':') ? "[" : "", c.cfg.bind, strchr(c.cfg.bind, ':') ? "]" : "",
               c.port, c.cfg.index, rsclip_session_count(c.session),
               rsclip_imagery_scene_count(c.imagery));
        fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
        fprintf(stderr, "rsclip serve: %s: stopping\n",
                sig == SIGINT ? "interrupted" : "terminated");
        serve_http_stop(d); /* waits for the requests in flight */
    }
    teardown(&c);
    return rc;
}
