/* rsclip search: rank the tiles of an index against a text (or an example) and print or export
 * the hits. */
#include "app.h"

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
    "Query (exactly one):\n"
    "  TEXT                    what to look for, e.g. \"solar farms\"\n"
    "  --like-tile ID          tiles that look like indexed tile ID\n"
    "  --like-point LON,LAT    tiles that look like the indexed tile containing this point\n"
    "  --like-image FILE       tiles that look like an image file (8-bit RGB or grey)\n"
    "Options:\n"
    "  -k N                    number of hits (default 20)\n"
    "  --min-prob P            drop hits whose probability is below P (0..1)\n"
    "  --not TEXT              push down tiles that look like TEXT (repeatable)\n"
    "  --template T            prompt template, {} is the text (default\n"
    "                          \"" RSCLIP_DEFAULT_TEMPLATE "\"; \"{}\" for the raw text)\n"
    "  --bbox W,S,E,N          only tiles whose footprint meets this WGS84 box\n"
    "  --aoi FILE              only tiles whose footprint meets the polygons of FILE (any OGR\n"
    "                          vector format, any CRS)\n"
    "  --scene ID              only tiles of scene ID (see rsclip info)\n"
    "  --merge                 dissolve touching/overlapping hits into regions (max and mean\n"
    "                          probability, tile count, area in m2)\n"
    "  -of FORMAT              GeoJSON, GPKG, CSV, KML, FlatGeobuf (default: a table; GeoJSON\n"
    "                          when -o names a .geojson file)\n"
    "  -o FILE                 output file (GeoJSON goes to stdout without -o)\n"
    "  --t_srs SRS             footprints in this CRS (default EPSG:4326)\n"
    "  -m MODEL                model (default: the one the index was built with)\n"
    "  -j N                    threads (default: all cores)\n"
    "  --precision P           text encoder: auto (default), f32, bf16\n"
    "  --no-cache              do not use or write the INDEX.rsvec vector cache\n";

/* Parse "a,b" or "a,b,c,d" numbers. */
static int parse_numbers(const char *s, double *v, int n) {
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        v[i] = strtod(p, &end);
        if (end == p || !isfinite(v[i])) return -1;
        p = end;
        if (i < n - 1) {
            if (*p != ',') return -1;
            p++;
        }
    }
    return *p == '\0' ? 0 : -1;
}

static void print_table(const rsclip_results *r) {
    printf("%4s  %6s  %7s  %12s  %11s  %-19s  %s\n", "rank", "prob", "score", "lon", "lat",
           "window", "scene");
    for (int i = 0; i < r->n; i++) {
        const rsclip_hit *h = &r->hits[i];
        char win[64];
        snprintf(win, sizeof win, "%d,%d %dx%d", h->xoff, h->yoff, h->xsize, h->ysize);
        printf("%4d  %6.4f  %7.4f  %12.7f  %11.7f  %-19s  %s\n", h->rank, h->prob, h->score, h->lon,
               h->lat, win, h->scene);
    }
}

static void print_regions(const rsclip_region *rg, int n) {
    printf("%6s  %5s  %8s  %9s  %12s  %11s  %14s\n", "region", "tiles", "max_prob", "mean_prob",
           "lon", "lat", "area_m2");
    for (int i = 0; i < n; i++)
        printf("%6d  %5d  %8.4f  %9.4f  %12.7f  %11.7f  %14.1f\n", rg[i].id, rg[i].n_tiles,
               rg[i].max_prob, rg[i].mean_prob, rg[i].lon, rg[i].lat, rg[i].area_m2);
}

int cmd_search(int argc, char **argv) {
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
        O_PRECISION
    };
    static const struct option longopts[] = {{"min-prob", required_argument, NULL, O_MIN_PROB},
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
                                             {"no-cache", no_argument, NULL, O_NO_CACHE},
                                             {"of", required_argument, NULL, O_OF},
                                             {"model", required_argument, NULL, 'm'},
                                             {"threads", required_argument, NULL, 'j'},
                                             {"precision", required_argument, NULL, O_PRECISION},
                                             {"output", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    rsclip_query q = rsclip_query_default();
    rsclip_session_params sp = rsclip_session_default_params();
    const char *negatives[RSCLIP_SEARCH_MAX_NEGATIVES];
    const char *aoi = NULL, *format = NULL, *out = NULL, *t_srs = NULL;
    int merge = 0;
    /* GDAL spells it -of: accept it as a long option with one dash. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-of") == 0) argv[i] = "--of";
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":k:m:j:o:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'k':
            if (app_parse_int("search", "-k", optarg, 1, 1000000, &q.k)) return APP_USAGE;
            break;
        case 'm':
            sp.model = optarg;
            break;
        case 'j':
            if (app_parse_int("search", "-j", optarg, 1, 1024, &sp.n_threads)) return APP_USAGE;
            break;
        case 'o':
            out = optarg;
            break;
        case O_OF:
            format = optarg;
            break;
        case O_MIN_PROB: {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v >= 0 && v <= 1))
                return app_usage_error("search", "--min-prob wants a probability in 0..1, not '%s'",
                                       optarg);
            q.min_prob = (float)v;
            break;
        }
        case O_BBOX:
            if (parse_numbers(optarg, q.bbox, 4) || q.bbox[0] > q.bbox[2] || q.bbox[1] > q.bbox[3])
                return app_usage_error("search", "--bbox wants W,S,E,N in degrees, not '%s'",
                                       optarg);
            q.has_bbox = 1;
            break;
        case O_AOI:
            aoi = optarg;
            break;
        case O_NOT:
            if (q.n_negatives == RSCLIP_SEARCH_MAX_NEGATIVES)
                return app_usage_error("search", "at most %d --not texts",
                                       RSCLIP_SEARCH_MAX_NEGATIVES);
            negatives[q.n_negatives++] = optarg;
            break;
        case O_TEMPLATE:
            q.template_str = optarg;
            break;
        case O_MERGE:
            merge = 1;
            break;
        case O_TSRS:
            t_srs = optarg;
            break;
        case O_LIKE_TILE: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v <= 0)
                return app_usage_error("search", "--like-tile wants a tile id, not '%s'", optarg);
            q.like_tile = v;
            break;
        }
        case O_LIKE_POINT: {
            double v[2];
            if (parse_numbers(optarg, v, 2) || fabs(v[0]) > 180 || fabs(v[1]) > 90)
                return app_usage_error("search", "--like-point wants LON,LAT, not '%s'", optarg);
            q.has_like_point = 1;
            q.like_lon = v[0];
            q.like_lat = v[1];
            break;
        }
        case O_LIKE_IMAGE:
            q.like_image = optarg;
            break;
        case O_SCENE: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v <= 0)
                return app_usage_error("search", "--scene wants a scene id, not '%s'", optarg);
            q.scene_id = v;
            break;
        }
        case O_NO_CACHE:
            sp.use_cache = 0;
            break;
        case O_PRECISION: {
            rsclip_precision pr;
            if (rsclip_precision_parse(optarg, &pr) != RSCLIP_OK)
                return app_usage_error("search", "--precision: %s", rsclip_last_error());
            sp.precision = (int)pr;
            break;
        }
        default:
            return app_bad_option("search", ch, argv);
        }
    }
    q.negatives = negatives;
    int npos = argc - optind;
    if (npos < 1) return app_usage_error("search", "no index given");
    const char *index = argv[optind];
    if (npos > 2) return app_usage_error("search", "one query text at a time (quote it)");
    if (npos == 2) q.text = argv[optind + 1];
    int n_kinds = (q.text != NULL) + (q.like_tile > 0) + q.has_like_point + (q.like_image != NULL);
    if (n_kinds == 0)
        return app_usage_error("search", "no query: give a TEXT or --like-tile/--like-point/"
                                         "--like-image");
    if (n_kinds > 1) return app_usage_error("search", "give only one query");
    if (q.text) {
        const char *p = q.text;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) return app_usage_error("search", "the query text is empty");
    }
    if (format && !out && strcasecmp(format, "GeoJSON") != 0 && strcasecmp(format, "CSV") != 0)
        return app_usage_error("search", "-of %s needs an output file (-o)", format);
    if (out && !format && !rsclip_export_format_from_path(out))
        return app_usage_error("search", "cannot tell the format of '%s': give -of", out);

    char *aoi_wkt = NULL;
    if (aoi) {
        if (rsclip_aoi_read(aoi, &aoi_wkt) != RSCLIP_OK) return app_fail();
        q.aoi_wkt = aoi_wkt;
    }
    if (access(index, F_OK) != 0) {
        rsclip_free(aoi_wkt);
        return app_error("%s: no such index file", index);
    }
    rsclip_session *s = NULL;
    if (rsclip_session_open(index, &sp, &s) != RSCLIP_OK) {
        rsclip_free(aoi_wkt);
        return app_fail();
    }
    rsclip_results *r = NULL;
    int rc = rsclip_session_search(s, &q, &r) == RSCLIP_OK ? APP_OK : app_fail();
    rsclip_region *regions = NULL;
    int n_regions = 0;
    if (rc == APP_OK && merge &&
        rsclip_regions_merge(r->hits, r->n, &regions, &n_regions) != RSCLIP_OK)
        rc = app_fail();
    if (rc == APP_OK) {
        if (!format && !out) {
            if (merge)
                print_regions(regions, n_regions);
            else
                print_table(r);
        } else {
            rsclip_export_params ep = rsclip_export_default_params();
            ep.format = format;
            ep.t_srs = t_srs;
            fflush(stdout);
            int e = merge ? rsclip_export_regions(out, &ep, regions, n_regions)
                          : rsclip_export_hits(out, &ep, r->hits, r->n);
            if (e != RSCLIP_OK) rc = app_fail();
        }
    }
    rsclip_regions_free(regions, n_regions);
    rsclip_results_free(r);
    rsclip_session_close(s);
    rsclip_free(aoi_wkt);
    return rc;
}
