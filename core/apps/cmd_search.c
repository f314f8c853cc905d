/* rsclip search: rank the tiles of an index against a text (or an example) and print or export
 * the hits. */
#include "app.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char app_usage_search[] =
    "usage: rsclip search INDEX [TEXT] [options]\n"
    "\n"
    "Rank the indexed tiles by similarity to TEXT (or to an example) and print the best hits\n"
    "with their SigLIP probability, tile centre and footprint.\n"
    "\n"
    "Query (exactly one of TEXT, --like-point, --like-image; or --like-tile alone):\n"
    "  TEXT                    what to look for, e.g. \"solar farms\"\n"
    "  --like-tile ID          tiles that look like indexed tile ID; repeatable, and with a\n"
    "                          query: more like these (the mean of the query and the tiles)\n"
    "  --like-point LON,LAT    tiles that look like the indexed tile containing this point\n"
    "  --like-image FILE       tiles that look like an image file (8-bit RGB or grey)\n"
    "Options:\n"
    "  -k N                    number of hits, 1.." APP_MAX_K_STR " (default 20)\n"
    "  --min-prob P            drop hits whose probability is below P (0..1)\n"
    "  --not TEXT              push down tiles that look like TEXT (repeatable)\n"
    "  --unlike-tile ID        push down tiles that look like indexed tile ID (repeatable)\n"
    "  --template T            prompt template, {} is the text (default\n"
    "                          \"" RSCLIP_DEFAULT_TEMPLATE "\"; \"{}\" for the raw text)\n"
    "  --bbox W,S,E,N          only tiles whose footprint meets this WGS84 box\n"
    "  --aoi FILE              only tiles whose footprint meets the polygons of FILE (any OGR\n"
    "                          vector format, any CRS)\n"
    "  --scene ID              only tiles of scene ID (see rsclip info)\n"
    "  --after T, --before T   only scenes taken in that time (ISO 8601: 2019, 2019-06,\n"
    "                          2019-06-01, 2019-06-01T10:00Z; both periods included); scenes\n"
    "                          without a time are left out (stderr says how many)\n"
    "  --latest                only the most recent tile at each place among the hits\n"
    "  --change FROM/TO        places seen in both periods (e.g. 2019/2023), ranked by the\n"
    "                          rise of the probability from the earlier to the later tiles of\n"
    "                          the same ground (footprint overlap); each hit has both\n"
    "                          probabilities, times and tile ids (layer \"changes\")\n"
    "  --merge                 dissolve touching/overlapping hits into regions (max and mean\n"
    "                          probability, tile count, area in m2)\n"
    "  -of FORMAT              GeoJSON, GPKG, CSV, KML, FlatGeobuf, ESRI Shapefile or any OGR\n"
    "                          vector driver (default: a table; with -o, from its extension)\n"
    "  -o FILE                 output file (GeoJSON goes to stdout without -o). An existing\n"
    "                          file is never replaced unless --overwrite; INDEX and its\n"
    "                          -wal/-shm/.rsvec files never are\n"
    "  -nln NAME               layer name; into an existing GeoPackage (or another\n"
    "                          multi-layer format with transactions) -o FILE -nln NAME adds\n"
    "                          the layer beside the others\n"
    "  --overwrite             replace an existing output file, or in a GeoPackage only the\n"
    "                          layer written (hits, regions or -nln NAME); an existing\n"
    "                          --sheet file; the chips of an earlier --chips run\n"
    "  --t_srs SRS             footprints in this CRS (default EPSG:4326; refused when every\n"
    "                          hit is in pixel coordinates: --allow-pixel-coords scenes)\n"
    "  --chips DIR             write each hit (region) as a GeoTIFF chip cut from its raster,\n"
    "                          the RGB view the model saw (PNG) and chips.geojson into DIR\n"
    "                          (a folder that is not empty only with --overwrite)\n"
    "  --sheet FILE            a contact sheet of the hits (regions): .png or .pdf (an\n"
    "                          existing file only with --overwrite)\n"
    "  --device D              text encoder on cpu (default), cuda or cuda:N (an NVIDIA GPU)\n"
    "  --no-cache              do not use or write the INDEX.rsvec vector cache\n" APP_USAGE_COMMON
        APP_USAGE_MODEL_OF_INDEX APP_USAGE_THREADS APP_USAGE_PRECISION;

/* A coordinate of the table, or "-" for a tile without one (a scene in pixel coordinates). */
static const char *coord(char *buf, size_t n, double v) {
    if (isfinite(v))
        snprintf(buf, n, "%.7f", v);
    else
        snprintf(buf, n, "-");
    return buf;
}

static void print_table(const rsclip_results *r) {
    printf("%4s  %6s  %7s  %12s  %11s  %8s  %-19s  %s\n", "rank", "prob", "score", "lon", "lat",
           "tile", "window", "scene");
    for (int i = 0; i < r->n; i++) {
        const rsclip_hit *h = &r->hits[i];
        char win[64], lon[32], lat[32];
        snprintf(win, sizeof win, "%d,%d %dx%d", h->xoff, h->yoff, h->xsize, h->ysize);
        printf("%4d  %6.4f  %7.4f  %12s  %11s  %8lld  %-19s  %s\n", h->rank, h->prob, h->score,
               coord(lon, sizeof lon, h->lon), coord(lat, sizeof lat, h->lat),
               (long long)h->tile_id, win, h->scene);
    }
}

static void print_regions(const rsclip_region *rg, int n) {
    printf("%6s  %5s  %8s  %9s  %12s  %11s  %14s  %9s\n", "region", "tiles", "max_prob",
           "mean_prob", "lon", "lat", "area_m2", "best_tile");
    for (int i = 0; i < n; i++)
        printf("%6d  %5d  %8.4f  %9.4f  %12.7f  %11.7f  %14.1f  %9lld\n", rg[i].id, rg[i].n_tiles,
               rg[i].max_prob, rg[i].mean_prob, rg[i].lon, rg[i].lat, rg[i].area_m2,
               (long long)rg[i].best_tile_id);
}

/* Everything the command line asked for. */
typedef struct search_args {
    rsclip_query q;
    rsclip_session_params sp;
    const char *negatives[RSCLIP_SEARCH_MAX_NEGATIVES];
    const char *index, *aoi, *format, *out, *t_srs, *layer_name;
    int merge, overwrite;
    const char *change; /* --change FROM/TO */
    rsclip_time from, to;
    int64_t likes[RSCLIP_QUERY_MAX_EXAMPLES], unlikes[RSCLIP_QUERY_MAX_EXAMPLES];
    int n_like, n_unlike;
    app_render_opts ro; /* --chips, --sheet */
    app_common co;      /* -m, -j, --precision */
} search_args;

enum {
    O_MIN_PROB = 1000,
    O_BBOX,
    O_AOI,
    O_NOT,
    O_TEMPLATE,
    O_MERGE,
    O_TSRS,
    O_LIKE_TILE,
    O_LIKE_POINT,
    O_LIKE_IMAGE,
    O_SCENE,
    O_NO_CACHE,
    O_OF,
    O_NLN,
    O_OVERWRITE,
    O_DEVICE,
    O_AFTER,
    O_BEFORE,
    O_LATEST,
    O_UNLIKE_TILE,
    O_CHIPS,
    O_SHEET,
    O_CHANGE
};

/* Parse a positive id (--like-tile, --scene); 0 on success. */
static int parse_id(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0) return -1;
    *out = v;
    return 0;
}

/* An option that shapes the query (what, where, when); -1 when ch is not one of them. */
static int parse_query_option(search_args *a, int ch) {
    rsclip_query *q = &a->q;
    switch (ch) {
    case O_MIN_PROB: {
        double v;
        if (app_parse_numbers(optarg, &v, 1))
            return app_usage_error("search", "--min-prob wants a probability in 0..1, not '%s'",
                                   optarg);
        q->min_prob = (float)v;
        return APP_OK;
    }
    case O_BBOX:
        if (app_parse_numbers(optarg, q->bbox, 4))
            return app_usage_error("search", "--bbox wants W,S,E,N in degrees, not '%s'", optarg);
        q->has_bbox = 1;
        return APP_OK;
    case O_AOI:
        a->aoi = optarg;
        return APP_OK;
    case O_NOT:
        if (q->n_negatives == RSCLIP_SEARCH_MAX_NEGATIVES)
            return app_usage_error("search", "at most %d --not texts", RSCLIP_SEARCH_MAX_NEGATIVES);
        a->negatives[q->n_negatives++] = optarg;
        return APP_OK;
    case O_TEMPLATE:
        q->template_str = optarg;
        return APP_OK;
    case O_LIKE_TILE:
    case O_UNLIKE_TILE: {
        const char *opt = ch == O_LIKE_TILE ? "--like-tile" : "--unlike-tile";
        int *n = ch == O_LIKE_TILE ? &a->n_like : &a->n_unlike;
        if (*n == RSCLIP_QUERY_MAX_EXAMPLES)
            return app_usage_error("search", "at most %d %s", RSCLIP_QUERY_MAX_EXAMPLES, opt);
        if (parse_id(optarg, &(ch == O_LIKE_TILE ? a->likes : a->unlikes)[*n]))
            return app_usage_error("search", "%s wants a tile id, not '%s'", opt, optarg);
        (*n)++;
        return APP_OK;
    }
    case O_LIKE_POINT: {
        double v[2];
        if (app_parse_numbers(optarg, v, 2))
            return app_usage_error("search", "--like-point wants LON,LAT, not '%s'", optarg);
        q->has_like_point = 1;
        q->like_lon = v[0];
        q->like_lat = v[1];
        return APP_OK;
    }
    case O_LIKE_IMAGE:
        q->like_image = optarg;
        return APP_OK;
    case O_SCENE:
        if (parse_id(optarg, &q->scene_id))
            return app_usage_error("search", "--scene wants a scene id, not '%s'", optarg);
        return APP_OK;
    case O_AFTER:
    case O_BEFORE: {
        rsclip_time t;
        if (rsclip_time_parse(optarg, &t) != RSCLIP_OK)
            return app_usage_error("search", "--%s: %s", ch == O_AFTER ? "after" : "before",
                                   rsclip_last_error());
        if (ch == O_AFTER)
            q->after = optarg;
        else
            q->before = optarg;
        return APP_OK;
    }
    case O_LATEST:
        q->latest = 1;
        return APP_OK;
    case O_CHANGE:
        if (rsclip_change_periods(optarg, &a->from, &a->to) != RSCLIP_OK)
            return app_usage_error("search", "--change: %s", rsclip_last_error());
        a->change = optarg;
        return APP_OK;
    default:
        return -1;
    }
}

/* One option into a; APP_OK or APP_USAGE (after printing why). */
static int parse_option(search_args *a, int ch, char **argv) {
    int r = parse_query_option(a, ch);
    if (r >= 0) return r;
    switch (ch) {
    case 'k': { /* a number here; its range is the library's (RSCLIP_QUERY_MAX_K) */
        char *end;
        errno = 0;
        long v = strtol(optarg, &end, 10);
        if (end == optarg || *end)
            return app_usage_error("search", "-k wants a number of hits, not '%s'", optarg);
        if (errno || v > INT_MAX || v < INT_MIN)
            return app_usage_error("search", "-k %s is out of range (1..%d)", optarg,
                                   RSCLIP_QUERY_MAX_K);
        a->q.k = (int)v;
        return APP_OK;
    }
    case 'o':
        a->out = optarg;
        return APP_OK;
    case O_OF:
        a->format = optarg;
        return APP_OK;
    case O_NLN:
        if (!*optarg) return app_usage_error("search", "-nln wants a layer name");
        a->layer_name = optarg;
        return APP_OK;
    case O_OVERWRITE:
        a->overwrite = 1;
        return APP_OK;
    case O_MERGE:
        a->merge = 1;
        return APP_OK;
    case O_TSRS:
        a->t_srs = optarg;
        return APP_OK;
    case O_CHIPS:
        a->ro.chips = optarg;
        return APP_OK;
    case O_SHEET:
        a->ro.sheet = optarg;
        return APP_OK;
    case O_NO_CACHE:
        a->sp.use_cache = 0;
        return APP_OK;
    case O_DEVICE: {
        rsclip_device dev;
        if (app_parse_device("search", optarg, &dev)) return APP_USAGE;
        a->sp.device = optarg;
        return APP_OK;
    }
    default:
        return app_bad_option("search", ch, argv);
    }
}

/* The query and the output: exactly one query, an output the format can go to. */
static int check_args(search_args *a, int argc, char **argv) {
    rsclip_query *q = &a->q;
    q->negatives = a->negatives;
    int npos = argc - optind;
    if (npos < 1) return app_usage_error("search", "no index given");
    a->index = argv[optind];
    if (npos > 2) return app_usage_error("search", "one query text at a time (quote it)");
    if (npos == 2) q->text = argv[optind + 1];
    app_query_examples(q, a->likes, a->n_like, a->unlikes, a->n_unlike);
    /* every rule of the query is the library's; a refused query is a usage error */
    int bad = a->change ? rsclip_change_check(q, &a->from, &a->to) : rsclip_query_check(q);
    if (bad) return app_usage_error("search", "%s", rsclip_last_error());
    if (a->format && !a->out && strcasecmp(a->format, "GeoJSON") != 0 &&
        strcasecmp(a->format, "CSV") != 0)
        return app_usage_error("search", "-of %s needs an output file (-o)", a->format);
    if (a->out && !a->format && strcmp(a->out, "-") != 0 && !rsclip_export_format_from_path(a->out))
        return app_usage_error("search", "cannot tell a vector format from the name '%s': give -of",
                               a->out);
    int to_file = a->out && strcmp(a->out, "-") != 0;
    if ((a->layer_name && !to_file) || (a->overwrite && !to_file && !a->ro.chips && !a->ro.sheet))
        return app_usage_error("search", "%s needs an output file (-o, --chips or --sheet)",
                               a->layer_name ? "-nln" : "--overwrite");
    a->ro.index = a->index;
    a->ro.overwrite = a->overwrite;
    return APP_OK;
}

static int parse_args(search_args *a, int argc, char **argv) {
    static const struct option longopts[] = {
        {"min-prob", required_argument, NULL, O_MIN_PROB},
        {"bbox", required_argument, NULL, O_BBOX},
        {"aoi", required_argument, NULL, O_AOI},
        {"not", required_argument, NULL, O_NOT},
        {"template", required_argument, NULL, O_TEMPLATE},
        {"merge", no_argument, NULL, O_MERGE},
        {"t_srs", required_argument, NULL, O_TSRS},
        {"like-tile", required_argument, NULL, O_LIKE_TILE},
        {"like-point", required_argument, NULL, O_LIKE_POINT},
        {"like-image", required_argument, NULL, O_LIKE_IMAGE},
        {"scene", required_argument, NULL, O_SCENE},
        {"after", required_argument, NULL, O_AFTER},
        {"before", required_argument, NULL, O_BEFORE},
        {"latest", no_argument, NULL, O_LATEST},
        {"no-cache", no_argument, NULL, O_NO_CACHE},
        {"of", required_argument, NULL, O_OF},
        {"nln", required_argument, NULL, O_NLN},
        {"overwrite", no_argument, NULL, O_OVERWRITE},
        APP_OPT_MODEL,
        APP_OPT_THREADS,
        APP_OPT_PRECISION,
        {"device", required_argument, NULL, O_DEVICE},
        {"output", required_argument, NULL, 'o'},
        {"unlike-tile", required_argument, NULL, O_UNLIKE_TILE},
        {"chips", required_argument, NULL, O_CHIPS},
        {"sheet", required_argument, NULL, O_SHEET},
        {"change", required_argument, NULL, O_CHANGE},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->q = rsclip_query_default();
    a->sp = rsclip_session_default_params();
    a->co = app_common_default();
    /* GDAL spells them -of and -nln: accept them as long options with one dash. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-of") == 0)
            argv[i] = "--of";
        else if (strcmp(argv[i], "-nln") == 0)
            argv[i] = "--nln";
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":k:o:" APP_SHORT_MODEL APP_SHORT_THREADS, longopts,
                             NULL)) != -1) {
        int rc = app_common_option("search", ch, optarg, &a->co);
        if (rc < 0) return APP_USAGE;
        if (rc == 0 && (rc = parse_option(a, ch, argv))) return rc;
    }
    a->sp.model = a->co.model;
    a->sp.n_threads = a->co.threads;
    a->sp.precision = a->co.precision;
    return check_args(a, argc, argv);
}

static rsclip_export_params export_params(const search_args *a) {
    rsclip_export_params ep = rsclip_export_default_params();
    ep.format = a->format;
    ep.t_srs = a->t_srs;
    ep.layer_name = a->layer_name;
    ep.overwrite = a->overwrite;
    /* The index searched (and its -wal/-shm/.rsvec) is never an output. */
    ep.protected_paths = &a->index;
    ep.n_protected = 1;
    return ep;
}

/* Results to stdout (a table, or GeoJSON/CSV) or to the output file; a search without hits says
 * why on stderr. */
static int emit(const search_args *a, const rsclip_results *r, const rsclip_region *regions,
                int n_regions) {
    if (r->n == 0)
        fprintf(stderr, "rsclip: no hits: %s\n", r->why_empty ? r->why_empty : "none found");
    if (r->note) fprintf(stderr, "rsclip: note: %s\n", r->note);
    if (!a->format && !a->out) {
        if (a->merge)
            print_regions(regions, n_regions);
        else
            print_table(r);
        return APP_OK;
    }
    rsclip_export_params ep = export_params(a);
    fflush(stdout);
    int e = a->merge ? rsclip_export_regions(a->out, &ep, regions, n_regions)
                     : rsclip_export_hits(a->out, &ep, r->hits, r->n);
    return e == RSCLIP_OK ? APP_OK : app_fail();
}

/* ---- --change ------------------------------------------------------------------------------- */

static void print_changes(const rsclip_changes *c) {
    printf("%4s  %7s  %9s  %7s  %12s  %11s  %8s  %8s  %-24s  %-24s  %s\n", "rank", "rise",
           "prob_from", "prob", "lon", "lat", "from", "tile", "from_datetime", "datetime", "scene");
    for (int i = 0; i < c->n; i++) {
        const rsclip_change *ch = &c->changes[i];
        char lon[32], lat[32];
        printf("%4d  %+7.4f  %9.4f  %7.4f  %12s  %11s  %8lld  %8lld  %-24s  %-24s  %s\n", ch->rank,
               ch->rise, ch->prob_from, ch->to.prob, coord(lon, sizeof lon, ch->to.lon),
               coord(lat, sizeof lat, ch->to.lat), (long long)ch->from.tile_id,
               (long long)ch->to.tile_id, ch->from.datetime ? ch->from.datetime : "-",
               ch->to.datetime ? ch->to.datetime : "-", ch->to.scene);
    }
}

static void print_change_regions(const rsclip_region *rg, int n) {
    printf("%6s  %5s  %8s  %9s  %8s  %12s  %11s  %14s  %9s\n", "region", "tiles", "max_rise",
           "mean_rise", "max_prob", "lon", "lat", "area_m2", "best_tile");
    for (int i = 0; i < n; i++)
        printf("%6d  %5d  %+8.4f  %+9.4f  %8.4f  %12.7f  %11.7f  %14.1f  %9lld\n", rg[i].id,
               rg[i].n_tiles, rg[i].max_rise, rg[i].mean_rise, rg[i].max_prob, rg[i].lon, rg[i].lat,
               rg[i].area_m2, (long long)rg[i].best_tile_id);
}

static int run_change(search_args *a, rsclip_session *s) {
    rsclip_changes *c = NULL;
    if (rsclip_session_change(s, &a->q, &a->from, &a->to, &c) != RSCLIP_OK) return app_fail();
    if (c->n == 0)
        fprintf(stderr, "rsclip: no changes: %s\n", c->why_empty ? c->why_empty : "none found");
    if (c->note) fprintf(stderr, "rsclip: note: %s\n", c->note);
    /* the later tiles as hits: for regions, chips and sheets */
    rsclip_hit *hits = malloc(sizeof *hits * (size_t)(c->n ? c->n : 1));
    rsclip_region *regions = NULL;
    int n_regions = 0, rc = hits ? APP_OK : app_error("out of memory");
    for (int i = 0; i < c->n && hits; i++) hits[i] = c->changes[i].to;
    if (rc == APP_OK && a->merge && rsclip_change_regions(c, &regions, &n_regions) != RSCLIP_OK)
        rc = app_fail();
    if (rc == APP_OK && !a->format && !a->out) {
        if (a->merge)
            print_change_regions(regions, n_regions);
        else
            print_changes(c);
    } else if (rc == APP_OK) {
        rsclip_export_params ep = export_params(a);
        fflush(stdout);
        int e = a->merge ? rsclip_export_regions(a->out, &ep, regions, n_regions)
                         : rsclip_export_changes(a->out, &ep, c->changes, c->n);
        if (e != RSCLIP_OK) rc = app_fail();
    }
    if (rc == APP_OK) {
        rsclip_results r = {c->n, hits, NULL, NULL};
        rc = app_render_outputs(&a->ro, &r, a->merge, regions, n_regions);
    }
    rsclip_regions_free(regions, n_regions);
    free(hits);
    rsclip_changes_free(c);
    return rc;
}

static int run_search(search_args *a) {
    if (access(a->index, F_OK) != 0) return app_error("%s: no such index file", a->index);
    /* Refuse a forbidden output before the search, not after it. */
    if (a->out && strcmp(a->out, "-") != 0) {
        rsclip_export_params ep = export_params(a);
        const char *layer = a->merge ? "regions" : a->change ? "changes" : "hits";
        if (rsclip_export_check(a->out, &ep, layer) != RSCLIP_OK) return app_fail();
    }
    char title[1024];
    app_query_title(&a->q, title, sizeof title);
    a->ro.title = title;
    if (app_render_check(&a->ro) != APP_OK) return APP_ERROR;
    char *aoi_wkt = NULL;
    if (a->aoi) {
        if (rsclip_aoi_read(a->aoi, &aoi_wkt) != RSCLIP_OK) return app_fail();
        a->q.aoi_wkt = aoi_wkt;
    }
    rsclip_session *s = NULL;
    if (rsclip_session_open(a->index, &a->sp, &s) != RSCLIP_OK) {
        rsclip_free(aoi_wkt);
        return app_fail();
    }
    if (a->change) {
        int rc = run_change(a, s);
        rsclip_session_close(s);
        rsclip_free(aoi_wkt);
        return rc;
    }
    rsclip_results *r = NULL;
    int rc = rsclip_session_search(s, &a->q, &r) == RSCLIP_OK ? APP_OK : app_fail();
    rsclip_region *regions = NULL;
    int n_regions = 0;
    if (rc == APP_OK && a->merge &&
        rsclip_regions_merge(r->hits, r->n, &regions, &n_regions) != RSCLIP_OK)
        rc = app_fail();
    if (rc == APP_OK) rc = emit(a, r, regions, n_regions);
    if (rc == APP_OK) rc = app_render_outputs(&a->ro, r, a->merge, regions, n_regions);
    rsclip_regions_free(regions, n_regions);
    rsclip_results_free(r);
    rsclip_session_close(s);
    rsclip_free(aoi_wkt);
    return rc;
}

int cmd_search(int argc, char **argv) {
    search_args a;
    int rc = parse_args(&a, argc, argv);
    return rc ? rc : run_search(&a);
}
