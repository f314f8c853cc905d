/* rsclip index: cut rasters into tiles, embed them, store them in an index file. */
#include "app.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Exit status when some inputs could not be indexed but the others were. */
#define APP_PARTIAL 3

const char app_usage_index[] =
    "usage: rsclip index -m MODEL -o INDEX [options] INPUT...\n"
    "\n"
    "Cut rasters (any GDAL raster: GeoTIFF, COG, VRT, JPEG2000, /vsicurl/ URLs; folders are\n"
    "searched recursively) into model-sized tiles, embed them and store them in INDEX (created\n"
    "or updated). Unchanged scenes are skipped; an interrupted run resumes where it stopped.\n"
    "\n"
    "  -m MODEL              model folder, base, large or a repo id\n"
    "  -o INDEX              index file (a GeoPackage, e.g. city.gpkg)\n"
    "  --input-list FILE     read inputs from FILE, one per line ('#' comments)\n"
    "  --stride N            pixels between tiles (default: the tile size, no overlap)\n"
    "  --bands R,G,B         source bands for red, green, blue (or one band, replicated);\n"
    "                        default from colour interpretation, else the first three\n"
    "  --min-valid F         skip tiles with less than this valid (not nodata) fraction\n"
    "                        (default 0.5)\n"
    "  --scale auto|MIN,MAX|MIN1,MAX1,MIN2,MAX2,MIN3,MAX3\n"
    "                        non-8-bit data to 0..255: per-band 2-98 percentiles of the scene\n"
    "                        (auto, default), one range for all bands, or one per band\n"
    "  --gsd METRES          resample to this ground resolution (default native)\n"
    "  --resampling METHOD   GDAL resampling for --gsd (default average down, cubic up)\n"
    "  --allow-pixel-coords  accept rasters without georeferencing (footprints in pixels)\n"
    "  --max-tiles N         refuse scenes with more tiles than N (default 100000000)\n"
    "  --force               re-index scenes even when unchanged\n"
    "  --prune               first drop the scenes whose files are gone (local paths);\n"
    "                        with no INPUT (and no -m) only prune\n"
    "  --batch N             tiles per encoder batch (default 8)\n"
    "  -j N                  encoder threads (default: all cores)\n"
    "  --precision P         auto (default: bf16 where the CPU has AVX512_BF16), f32, bf16\n"
    "  -q                    quiet: no progress\n"
    "\n"
    "A scene is re-indexed when its file or the settings above (stride, bands, scale, gsd,\n"
    "resampling, min-valid) differ from those it was indexed with; stderr says why.\n"
    "\n"
    "Exit status: 0 all inputs indexed or unchanged, 1 error (nothing could be indexed, or the\n"
    "run could not go on: model, index, disk), 2 usage, 3 partial: some inputs failed (each\n"
    "named on stderr with the reason; the next run retries them), the others were indexed or\n"
    "unchanged.\n";

typedef struct progress_state {
    int quiet, tty;
    double last;
    int last_scene;
    int failed; /* inputs and scenes reported through on_error */
} progress_state;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int on_progress(const rsclip_indexer_progress *p, void *user) {
    progress_state *ps = user;
    if (ps->quiet) return 1;
    double t = mono_s();
    int new_scene = p->scene != ps->last_scene;
    if (!ps->tty && !new_scene && t - ps->last < 5.0 && p->tiles_done < p->tiles_total) return 1;
    if (ps->tty && !new_scene && t - ps->last < 0.2 && p->tiles_done < p->tiles_total) return 1;
    ps->last = t;
    ps->last_scene = p->scene;
    char eta[32] = "?";
    if (p->eta_s >= 0) {
        long e = (long)(p->eta_s + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", e / 3600, (e / 60) % 60, e % 60);
    }
    fprintf(stderr, "%s[%d/%d] %-40.40s tiles %lld/%lld  %.2f tiles/s  ETA %s%s",
            ps->tty ? "\r" : "", p->scene, p->n_scenes, base_name(p->path),
            (long long)p->tiles_done, (long long)p->tiles_total, p->tiles_per_s, eta,
            ps->tty ? "\033[K" : "\n");
    fflush(stderr);
    return 1;
}

static void on_error(const char *path, const char *message, void *user) {
    progress_state *ps = user;
    ps->failed++;
    if (ps->tty && !ps->quiet) fputc('\n', stderr);
    /* Messages from the library already start with the path; add it when they do not. */
    if (strstr(message, path))
        fprintf(stderr, "rsclip: %s\n", message);
    else
        fprintf(stderr, "rsclip: %s: %s\n", path, message);
}

static int parse_bands(const char *s, rsclip_tiler_params *tp) {
    int v[4], n = 0;
    const char *p = s;
    while (*p && n < 4) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || b > 65535) return -1;
        v[n++] = (int)b;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    if (*p || (n != 1 && n != 3)) return -1;
    tp->n_bands = n;
    for (int i = 0; i < n; i++) tp->bands[i] = v[i];
    return 0;
}

static int parse_scale(const char *s, rsclip_tiler_params *tp) {
    if (strcmp(s, "auto") == 0) {
        tp->scale_mode = RSCLIP_TILER_SCALE_AUTO;
        return 0;
    }
    double v[6];
    int n = 0;
    const char *p = s;
    while (*p && n < 6) {
        char *end;
        v[n] = strtod(p, &end);
        if (end == p || !isfinite(v[n])) return -1;
        n++;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    if (*p || (n != 2 && n != 6)) return -1;
    tp->scale_mode = RSCLIP_TILER_SCALE_RANGE;
    for (int c = 0; c < 3; c++) {
        tp->scale_min[c] = n == 2 ? v[0] : v[2 * c];
        tp->scale_max[c] = n == 2 ? v[1] : v[2 * c + 1];
        if (!(tp->scale_max[c] > tp->scale_min[c])) return -1;
    }
    return 0;
}

int cmd_index(int argc, char **argv) {
    enum {
        O_INPUT_LIST = 1000,
        O_STRIDE,
        O_BANDS,
        O_MIN_VALID,
        O_SCALE,
        O_GSD,
        O_RESAMPLING,
        O_ALLOW_PIXEL,
        O_FORCE,
        O_BATCH,
        O_PRECISION,
        O_MAX_TILES,
        O_PRUNE
    };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"input-list", required_argument, NULL, O_INPUT_LIST},
        {"stride", required_argument, NULL, O_STRIDE},
        {"bands", required_argument, NULL, O_BANDS},
        {"min-valid", required_argument, NULL, O_MIN_VALID},
        {"scale", required_argument, NULL, O_SCALE},
        {"gsd", required_argument, NULL, O_GSD},
        {"resampling", required_argument, NULL, O_RESAMPLING},
        {"allow-pixel-coords", no_argument, NULL, O_ALLOW_PIXEL},
        {"force", no_argument, NULL, O_FORCE},
        {"max-tiles", required_argument, NULL, O_MAX_TILES},
        {"prune", no_argument, NULL, O_PRUNE},
        {"batch", required_argument, NULL, O_BATCH},
        {"precision", required_argument, NULL, O_PRECISION},
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0}};
    rsclip_indexer_params ip = rsclip_indexer_default_params();
    ip.model = NULL;
    const char *index = NULL, *list = NULL;
    progress_state ps = {0, isatty(2), 0, 0, 0};
    int ch, prune = 0;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":m:o:j:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            ip.model = optarg;
            break;
        case 'o':
            index = optarg;
            break;
        case 'q':
            ps.quiet = 1;
            break;
        case 'j':
            if (app_parse_int("index", "-j", optarg, 1, 1024, &ip.n_threads)) return APP_USAGE;
            break;
        case O_BATCH:
            if (app_parse_int("index", "--batch", optarg, 1, 256, &ip.batch)) return APP_USAGE;
            break;
        case O_PRECISION: {
            rsclip_precision pr;
            if (rsclip_precision_parse(optarg, &pr) != RSCLIP_OK)
                return app_usage_error("index", "--precision: %s", rsclip_last_error());
            ip.precision = (int)pr;
            break;
        }
        case O_INPUT_LIST:
            list = optarg;
            break;
        case O_STRIDE:
            if (app_parse_int("index", "--stride", optarg, 1, 1 << 20, &ip.tiler.stride))
                return APP_USAGE;
            break;
        case O_BANDS:
            if (parse_bands(optarg, &ip.tiler))
                return app_usage_error("index", "--bands wants R,G,B or one band, e.g. 4,3,2");
            break;
        case O_MIN_VALID: {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v >= 0 && v <= 1))
                return app_usage_error("index", "--min-valid wants a fraction in 0..1");
            ip.tiler.min_valid = v;
            break;
        }
        case O_SCALE:
            if (parse_scale(optarg, &ip.tiler))
                return app_usage_error(
                    "index", "--scale wants auto, MIN,MAX or MIN1,MAX1,MIN2,MAX2,MIN3,MAX3");
            break;
        case O_GSD: {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0 && isfinite(v)))
                return app_usage_error("index", "--gsd wants a resolution in metres");
            ip.tiler.gsd = v;
            break;
        }
        case O_RESAMPLING:
            ip.tiler.resampling = optarg;
            break;
        case O_ALLOW_PIXEL:
            ip.tiler.allow_pixel_coords = 1;
            break;
        case O_FORCE:
            ip.force = 1;
            break;
        case O_PRUNE:
            prune = 1;
            break;
        case O_MAX_TILES: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v < 1)
                return app_usage_error("index", "--max-tiles wants a positive number of tiles");
            ip.tiler.max_tiles = v;
            break;
        }
        default:
            return app_bad_option("index", ch, argv);
        }
    }
    if (!index) return app_usage_error("index", "no index file given (-o)");
    int have_inputs = optind < argc || list;
    if (prune && !have_inputs) return app_prune(index, ps.quiet);
    if (!ip.model) return app_usage_error("index", "no model given (-m)");
    if (!have_inputs) return app_usage_error("index", "no input rasters given");
    if (prune && access(index, F_OK) == 0) {
        int rc = app_prune(index, ps.quiet);
        if (rc != APP_OK) return rc;
    }

    /* A missing input or an unreadable folder fails that input only (on_error counts it). */
    char **paths = NULL;
    int n_paths = 0;
    if (rsclip_inputs_expand_ex((const char *const *)argv + optind, argc - optind, list, on_error,
                                &ps, &paths, &n_paths) != RSCLIP_OK)
        return app_fail();
    int input_failures = ps.failed;
    if (n_paths == 0) {
        rsclip_inputs_free(paths, n_paths);
        return app_error(input_failures ? "none of the inputs could be read"
                                        : "no rasters found in the inputs");
    }
    ip.progress = on_progress;
    ip.on_error = on_error;
    ip.user = &ps;
    rsclip_indexer_report rep;
    int rc = rsclip_indexer_run(index, (const char *const *)paths, n_paths, &ip, &rep);
    if (ps.tty && !ps.quiet) fputc('\n', stderr);
    rsclip_inputs_free(paths, n_paths);
    if (rc != RSCLIP_OK) return app_fail();
    rep.scenes_failed += input_failures;
    rep.scenes_total += input_failures;
    if (!ps.quiet) {
        /* Indexing rate (after the model load) beside the encoder's own rate: reading,
         * preprocessing and storing hide behind encoding when the two are close. */
        double run_s = rep.seconds - rep.setup_seconds;
        fprintf(stderr,
                "%s: %d scene(s) indexed, %d unchanged, %d failed; %lld tiles added, %lld skipped "
                "(below --min-valid) in %.1f s (+%.1f s model load): %.2f tiles/s, encoder alone "
                "%.2f tiles/s\n",
                index, rep.scenes_indexed, rep.scenes_unchanged, rep.scenes_failed,
                (long long)rep.tiles_added, (long long)rep.tiles_skipped, run_s, rep.setup_seconds,
                run_s > 0 ? (double)rep.tiles_added / run_s : 0.0,
                rep.encode_seconds > 0 ? (double)rep.tiles_added / rep.encode_seconds : 0.0);
    }
    if (rep.scenes_failed && rep.scenes_failed == rep.scenes_total) {
        fprintf(stderr, "rsclip: none of the %d input(s) could be indexed\n", rep.scenes_total);
        return APP_ERROR;
    }
    if (rep.scenes_failed) {
        fprintf(stderr, "rsclip: %d of %d input(s) could not be indexed (partial run)\n",
                rep.scenes_failed, rep.scenes_total);
        return APP_PARTIAL;
    }
    return APP_OK;
}
