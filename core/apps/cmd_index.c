/* rsclip index: cut rasters into tiles, embed them, store them in an index file. */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char app_usage_index[] =
    "usage: rsclip index -m MODEL -o INDEX [options] INPUT...\n"
    "       rsclip index -m MODEL -o FOLDER/ --shard I/N|auto|auto/N [--plan PLAN] [INPUT...]\n"
    "\n"
    "Cut rasters (any GDAL raster: GeoTIFF, COG, VRT, JPEG2000, /vsicurl/ URLs; folders are\n"
    "searched recursively) into model-sized tiles, embed them and store them in INDEX (created\n"
    "or updated). Unchanged scenes are skipped; an interrupted run resumes where it stopped.\n"
    "\n"
    "  -o INDEX              index file (a GeoPackage, e.g. city.gpkg); with --shard a folder\n"
    "  --input-list FILE     read inputs from FILE, one per line ('#' comments)\n"
    "  --asset KEY           STAC inputs (.json: Item, ItemCollection, Catalog, Collection):\n"
    "                        the asset to index (default: visual, else the first raster "
    "asset)\n" APP_USAGE_TILING
    "  --datetime T          acquisition time of every input (ISO 8601: 2021-05-27T11:21Z,\n"
    "                        2021-05-27, or an interval 2021-05-01/2021-05-31); default from\n"
    "                        STAC items, then the rasters' metadata, then --datetime-from-name\n"
    "  --datetime-from-name P  time from the file name: sentinel2, landsat, or a pattern with\n"
    "                        named groups (?<year>..)(?<month>..)(?<day>..)[(?<hour>..)...]\n"
    "  --force               re-index scenes even when unchanged\n"
    "  --prune               first drop the scenes whose files are gone (local paths);\n"
    "                        with no INPUT (and no -m) only prune\n"
    "  --device D            cpu (default), cuda or cuda:N: encode on that NVIDIA "
    "GPU\n" APP_USAGE_COMMON APP_USAGE_MODEL APP_USAGE_BATCH APP_USAGE_THREADS APP_USAGE_PRECISION
        APP_USAGE_QUIET "\n"
    "Sharded indexing (array jobs; see README \"Scale out\"):\n"
    "  --shard I/N           index only shard I of N (0 <= I < N) of the TILES of the inputs,\n"
    "                        into FOLDER/part-IIIII-of-NNNNN.gpkg; every worker computes the\n"
    "                        same split from the same inputs\n"
    "  --shard auto[/N]      I and N from SLURM_ARRAY_TASK_ID/_MIN/_COUNT, or the index from\n"
    "                        JOB_COMPLETION_INDEX (Kubernetes) or AWS_BATCH_JOB_ARRAY_INDEX\n"
    "                        with N given\n"
    "  --plan PLAN           the scenes and tile counts from `rsclip plan` (no INPUT): each\n"
    "                        worker reads only its share\n"
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
    double last; /* elapsed_s of the last line printed */
    int last_scene;
    int failed; /* inputs and scenes reported through on_error */
} progress_state;

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int on_progress(const rsclip_indexer_progress *p, void *user) {
    progress_state *ps = user;
    if (ps->quiet) return 1;
    double t = p->elapsed_s; /* the library's clock: one monotonic clock in the process */
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

/* Print the summary and turn the report into the exit status. */
static int finish(const char *index, const progress_state *ps, rsclip_indexer_report rep,
                  int input_failures) {
    rep.scenes_failed += input_failures;
    rep.scenes_total += input_failures;
    if (!ps->quiet) {
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

/* The part file of shard I/N inside folder (created if missing). */
static int part_path(const char *folder, int index, int count, char *out, size_t cap) {
    struct stat st;
    if (stat(folder, &st) != 0) {
        if (errno != ENOENT || mkdir(folder, 0777) != 0)
            return app_error("%s: cannot create the index folder: %s", folder, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return app_error("%s: --shard writes a part into a folder, and this is a file", folder);
    }
    if (rsclip_index_set_check_shard(folder, index, count) != RSCLIP_OK) return app_fail();
    size_t n = strlen(folder);
    int w = snprintf(out, cap, "%s%spart-%05d-of-%05d.gpkg", folder,
                     n && folder[n - 1] == '/' ? "" : "/", index, count);
    if (w < 0 || (size_t)w >= cap) return app_error("%s: path too long", folder);
    return APP_OK;
}

typedef struct index_args {
    rsclip_indexer_params ip;
    const char *index, *list, *plan_file, *asset;
    int prune, shard_index, shard_count; /* shard_count 0: not sharded */
} index_args;

static int parse_args(int argc, char **argv, index_args *a, progress_state *ps) {
    enum {
        O_INPUT_LIST = 1000,
        O_FORCE,
        O_PRUNE,
        O_SHARD,
        O_PLAN,
        O_DATETIME,
        O_DATETIME_NAME,
        O_DEVICE,
        O_ASSET
    };
    static const struct option longopts[] = {
        APP_OPT_MODEL,
        APP_OPT_THREADS,
        APP_OPT_PRECISION,
        APP_OPT_BATCH,
        APP_OPT_QUIET,
        {"output", required_argument, NULL, 'o'},
        {"input-list", required_argument, NULL, O_INPUT_LIST},
        APP_TILING_LONGOPTS,
        {"force", no_argument, NULL, O_FORCE},
        {"prune", no_argument, NULL, O_PRUNE},
        {"shard", required_argument, NULL, O_SHARD},
        {"plan", required_argument, NULL, O_PLAN},
        {"datetime", required_argument, NULL, O_DATETIME},
        {"datetime-from-name", required_argument, NULL, O_DATETIME_NAME},
        {"device", required_argument, NULL, O_DEVICE},
        {"asset", required_argument, NULL, O_ASSET},
        {NULL, 0, NULL, 0}};
    const char *shard = NULL;
    int ch, rc;
    rsclip_device dev = {RSCLIP_DEVICE_CPU, 0};
    app_common co = app_common_default();
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(
                argc, argv, ":o:" APP_SHORT_MODEL APP_SHORT_THREADS APP_SHORT_BATCH APP_SHORT_QUIET,
                longopts, NULL)) != -1) {
        if ((rc = app_common_option("index", ch, optarg, &co)) < 0) return APP_USAGE;
        if (rc > 0) continue;
        switch (ch) {
        case 'o':
            a->index = optarg;
            break;
        case O_ASSET:
            a->asset = optarg;
            break;
        case O_DEVICE:
            if (app_parse_device("index", optarg, &dev)) return APP_USAGE;
            a->ip.device = optarg;
            break;
        case O_INPUT_LIST:
            a->list = optarg;
            break;
        case O_FORCE:
            a->ip.force = 1;
            break;
        case O_PRUNE:
            a->prune = 1;
            break;
        case O_SHARD:
            shard = optarg;
            break;
        case O_PLAN:
            a->plan_file = optarg;
            break;
        case O_DATETIME: {
            rsclip_time t;
            if (rsclip_time_parse(optarg, &t) != RSCLIP_OK)
                return app_usage_error("index", "--datetime: %s", rsclip_last_error());
            a->ip.datetime = optarg;
            break;
        }
        case O_DATETIME_NAME:
            if (rsclip_time_pattern_check(optarg) != RSCLIP_OK)
                return app_usage_error("index", "--datetime-from-name: %s", rsclip_last_error());
            a->ip.datetime_from_name = optarg;
            break;
        case APP_O_STRIDE:
        case APP_O_BANDS:
        case APP_O_MIN_VALID:
        case APP_O_SCALE:
        case APP_O_GSD:
        case APP_O_RESAMPLING:
        case APP_O_ALLOW_PIXEL:
        case APP_O_MAX_TILES:
            if ((rc = app_tiling_option("index", ch, optarg, &a->ip.tiler))) return rc;
            break;
        default:
            return app_bad_option("index", ch, argv);
        }
    }
    if (co.model) a->ip.model = co.model;
    a->ip.n_threads = co.threads;
    a->ip.precision = co.precision;
    ps->quiet = co.quiet;
    if (co.batch)
        a->ip.batch = co.batch;
    else if (dev.kind != RSCLIP_DEVICE_CPU)
        a->ip.batch = APP_GPU_BATCH;
    if (!a->index) return app_usage_error("index", "no index file given (-o)");
    if (shard && (rc = app_parse_shard("index", shard, &a->shard_index, &a->shard_count)))
        return rc;
    if (a->plan_file && (optind < argc || a->list))
        return app_usage_error("index", "--plan gives the inputs: no INPUT or --input-list");
    if ((a->shard_count || a->plan_file) && a->prune)
        return app_usage_error("index", "--prune works on one index file, not with --shard/--plan");
    return APP_OK;
}

/* Sharded (or planned) indexing: the plan from the plan file (only this worker's share) or from
 * the inputs (every worker opens every header: fine for small jobs). */
static int run_plan(index_args *a, progress_state *ps, const rsclip_input *inputs, int n_inputs) {
    rsclip_plan *plan = NULL;
    int rc;
    if (a->plan_file)
        rc = rsclip_plan_read(a->plan_file, a->shard_index, a->shard_count, &plan);
    else {
        rsclip_tiler_params tp = a->ip.tiler;
        rsclip_model *m = NULL;
        if ((rc = app_load_model(a->ip.model, &m)) != APP_OK) return rc;
        tp.tile_size = rsclip_model_get_info(m)->image_size;
        rsclip_model_free(m);
        /* an input that cannot be opened is named here and left out of the split */
        rc = rsclip_plan_make_inputs(inputs, n_inputs, &tp, on_error, ps, &plan);
    }
    if (rc) return app_fail();
    char part[4096];
    const char *out = a->index;
    if (a->shard_count &&
        (rc = part_path(a->index, a->shard_index, a->shard_count, part, sizeof part)) != APP_OK) {
        rsclip_plan_free(plan);
        return rc;
    }
    if (a->shard_count) out = part;
    if (!ps->quiet && a->shard_count) {
        int64_t first = 0, end = 0;
        rsclip_plan_shard(plan, a->shard_index, a->shard_count, &first, &end);
        fprintf(stderr, "rsclip: shard %d/%d: tiles %lld..%lld of %lld (plan %s) -> %s\n",
                a->shard_index, a->shard_count, (long long)first, (long long)end,
                (long long)plan->n_tiles, plan->digest, out);
    }
    rsclip_indexer_report rep;
    rc = rsclip_indexer_run_plan(out, plan, a->shard_index, a->shard_count, &a->ip, &rep);
    rsclip_plan_free(plan);
    if (ps->tty && !ps->quiet) fputc('\n', stderr);
    if (rc != RSCLIP_OK) return app_fail();
    /* inputs `rsclip plan` could not open were reported (exit 3) by it, not by every worker */
    return finish(out, ps, rep, ps->failed);
}

int cmd_index(int argc, char **argv) {
    index_args a;
    memset(&a, 0, sizeof a);
    a.ip = rsclip_indexer_default_params();
    a.ip.model = NULL;
    progress_state ps = {0, isatty(2), 0, 0, 0};
    int rc = parse_args(argc, argv, &a, &ps);
    if (rc != APP_OK) return rc;
    int have_inputs = optind < argc || a.list;
    if (a.prune && !have_inputs) return app_prune(a.index, ps.quiet);
    if (!a.ip.model) return app_usage_error("index", "no model given (-m)");
    if (!have_inputs && !a.plan_file) return app_usage_error("index", "no input rasters given");
    if (a.prune && access(a.index, F_OK) == 0 && (rc = app_prune(a.index, ps.quiet)) != APP_OK)
        return rc;
    a.ip.progress = on_progress;
    a.ip.on_error = on_error;
    a.ip.user = &ps;
    if (a.plan_file) return run_plan(&a, &ps, NULL, 0);

    /* A missing input or an unreadable folder fails that input only (on_error counts it). */
    rsclip_input *in = NULL;
    int n_in = 0;
    if ((rc = app_gather_inputs((const char *const *)argv + optind, argc - optind, a.list, a.asset,
                                on_error, &ps, &in, &n_in)) != APP_OK)
        return rc;
    int input_failures = ps.failed;
    if (n_in == 0) {
        rsclip_stac_free(in, n_in);
        return app_error(input_failures ? "none of the inputs could be read"
                                        : "no rasters found in the inputs");
    }
    if (a.shard_count) {
        rc = run_plan(&a, &ps, in, n_in);
        rsclip_stac_free(in, n_in);
        return rc;
    }
    rsclip_indexer_report rep;
    rc = rsclip_indexer_run_inputs(a.index, in, n_in, &a.ip, &rep);
    if (ps.tty && !ps.quiet) fputc('\n', stderr);
    rsclip_stac_free(in, n_in);
    if (rc != RSCLIP_OK) return app_fail();
    return finish(a.index, &ps, rep, input_failures);
}
