/* Private header of the rsclip command-line tool: the command table's entry type, messages and
 * exit codes, and the small helpers every command shares (model loading, JSON output, progress).
 *
 * Conventions (GDAL-like): results on stdout, everything else on stderr as one line
 * "rsclip: <file>: <problem>"; exit 0 ok, 1 error, 2 usage. */
#ifndef RSCLIP_APP_H
#define RSCLIP_APP_H

#include "rsclip/rsclip.h"

#include <stdint.h>
#include <stdio.h>

/* A macro's value as a string literal: "..." APP_XSTR(RSCLIP_QUERY_MAX_K) "...". */
#define APP_STR(x) #x
#define APP_XSTR(x) APP_STR(x)
#define APP_MAX_K_STR APP_XSTR(RSCLIP_QUERY_MAX_K)

#define APP_OK 0
#define APP_ERROR 1
#define APP_USAGE 2

/* A command: run(argc, argv) gets argv[0] = the command name. usage is printed by
 * `rsclip CMD --help` and `rsclip help CMD`. */
typedef struct app_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} app_command;

/* Commands (one file each: cmd_<name>.c). New commands add a declaration here and a row in the
 * table in rsclip.c. */
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_serve(int argc, char **argv);
extern const char app_usage_tokenize[];
extern const char app_usage_embed[];
extern const char app_usage_classify[];
extern const char app_usage_model[];
extern const char app_usage_index[];
extern const char app_usage_search[];
extern const char app_usage_info[];
extern const char app_usage_remove[];
extern const char app_usage_plan[];
extern const char app_usage_merge[];
extern const char app_usage_serve[];

/* Pictures of the hits (app_render.c): --chips DIR and --sheet FILE of `search`. */
typedef struct app_render_opts {
    const char *index; /* searched; never written */
    const char *chips; /* folder, or NULL */
    const char *sheet; /* .png / .pdf file, or NULL */
    const char *title; /* the sheet's title */
    int overwrite;
} app_render_opts;
/* Refuse outputs that cannot be written before searching: APP_OK or APP_ERROR (printed). */
int app_render_check(const app_render_opts *o);
/* Write chips and sheet of the hits (or, merged, of the regions). */
int app_render_outputs(const app_render_opts *o, const rsclip_results *r, int merged,
                       const rsclip_region *regions, int n_regions);
/* The one rule `search` and `serve` map like/unlike tiles onto a query by: a like tile without a
 * text, point or image is the query (like_tile), the others are examples (like_tiles). The arrays
 * must outlive q. */
void app_query_examples(rsclip_query *q, const int64_t *likes, int n_like, const int64_t *unlikes,
                        int n_unlike);
/* A one-line description of q for people (the sheet's title). */
void app_query_title(const rsclip_query *q, char *buf, size_t cap);

/* Delete the scenes of INDEX whose local files are gone, in one transaction (cmd_remove.c). */
int app_prune(const char *index, int quiet);

/* Exit status when some inputs failed and the others were done (index, plan). */
#define APP_PARTIAL 3

/* The tiling options of `index` and `plan` (app_tiling.c): long options, usage text, parser. */
enum {
    APP_O_STRIDE = 900,
    APP_O_BANDS,
    APP_O_MIN_VALID,
    APP_O_SCALE,
    APP_O_GSD,
    APP_O_RESAMPLING,
    APP_O_ALLOW_PIXEL,
    APP_O_MAX_TILES
};
#define APP_TILING_LONGOPTS                                                                        \
    {"stride", required_argument, NULL, APP_O_STRIDE},                                             \
        {"bands", required_argument, NULL, APP_O_BANDS},                                           \
        {"min-valid", required_argument, NULL, APP_O_MIN_VALID},                                   \
        {"scale", required_argument, NULL, APP_O_SCALE},                                           \
        {"gsd", required_argument, NULL, APP_O_GSD},                                               \
        {"resampling", required_argument, NULL, APP_O_RESAMPLING},                                 \
        {"allow-pixel-coords", no_argument, NULL, APP_O_ALLOW_PIXEL}, {                            \
        "max-tiles", required_argument, NULL, APP_O_MAX_TILES                                      \
    }
#define APP_USAGE_TILING                                                                           \
    "  --stride N            pixels between tiles (default: the tile size, no overlap)\n"          \
    "  --bands R,G,B         source bands for red, green, blue (or one band, replicated);\n"       \
    "                        default from colour interpretation, else the first three\n"           \
    "  --min-valid F         skip tiles with less than this valid (not nodata) fraction\n"         \
    "                        (default 0.5)\n"                                                      \
    "  --scale auto|none|MIN,MAX|MIN1,MAX1,MIN2,MAX2,MIN3,MAX3\n"                                  \
    "                        to 0..255: 8-bit data as it is, other types by per-band 2-98\n"       \
    "                        percentiles of the scene (auto, default); values as they are\n"       \
    "                        (none); one range for all bands or one per band (any type)\n"         \
    "  --gsd METRES          resample to this ground resolution (default native)\n"                \
    "  --resampling METHOD   GDAL resampling for --gsd (default average down, cubic up)\n"         \
    "  --allow-pixel-coords  accept rasters without georeferencing (footprints in pixels)\n"       \
    "  --max-tiles N         refuse scenes with more tiles than N (default 100000000)\n"
/* Apply one APP_O_* option to tp; 0, or APP_USAGE after printing the problem. */
int app_tiling_option(const char *cmd, int opt, const char *arg, rsclip_tiler_params *tp);
/* --shard I/N | auto | auto/N (Slurm array, Kubernetes Indexed Job, AWS Batch array); 0, or
 * APP_USAGE / APP_ERROR after printing the problem. */
int app_parse_shard(const char *cmd, const char *arg, int *index, int *count);

/* The inputs of index/plan (app_inputs.c): rasters, folders, list_file and STAC documents
 * (asset: the STAC asset key, NULL for the default), path order, each once. An input that cannot
 * be used goes to on_error and is left out. *out: rsclip_stac_free(*out, *n). */
/* -j N / --threads N, the same range for every command: 1..1024 (without it: all cores). */
int app_parse_threads(const char *cmd, const char *arg, int *out);

/* ---- the options commands share ----------------------------------------------------------------
 * -m/--model, -j/--threads, --precision, -b/--batch and -q/--quiet have one spelling, one range,
 * one message and one help line wherever they appear. A command puts the ones it takes in its
 * getopt table (APP_OPT_*), its short options (APP_SHORT_*) and its usage (APP_USAGE_*), and
 * hands every option to app_common_option before its own switch. */
typedef struct app_common {
    const char *model;          /* -m; NULL when not given */
    int threads;                /* -j; 0 (not given) = all cores */
    rsclip_precision precision; /* --precision; RSCLIP_PRECISION_AUTO when not given */
    int batch;                  /* -b; 0 (not given) = the command's default */
    int quiet;                  /* -q */
} app_common;

/* The most images, texts or tiles per encoder batch: what a GPU wants (128-256) and what the
 * indexer takes (rsclip/indexer.h caps its batch there); 256 tiles of 384 px are ~450 MB of
 * pixels per batch in flight. */
#define APP_BATCH_MAX 256
#define APP_BATCH_MAX_STR APP_XSTR(APP_BATCH_MAX)
/* Encoder batch when --device names a GPU and --batch is not given. */
#define APP_GPU_BATCH 256

enum { APP_O_PRECISION = 950 };
#define APP_OPT_MODEL                                                                              \
    { "model", required_argument, NULL, 'm' }
#define APP_OPT_THREADS                                                                            \
    { "threads", required_argument, NULL, 'j' }
#define APP_OPT_PRECISION                                                                          \
    { "precision", required_argument, NULL, APP_O_PRECISION }
#define APP_OPT_BATCH                                                                              \
    { "batch", required_argument, NULL, 'b' }
#define APP_OPT_QUIET                                                                              \
    { "quiet", no_argument, NULL, 'q' }
#define APP_SHORT_MODEL "m:"
#define APP_SHORT_THREADS "j:"
#define APP_SHORT_BATCH "b:"
#define APP_SHORT_QUIET "q"

#define APP_USAGE_COMMON "\nOptions every command spells and checks alike:\n"
#define APP_USAGE_MODEL                                                                            \
    "  -m, --model MODEL       snapshot folder, base, large or a repo id in the cache\n"
#define APP_USAGE_MODEL_OF_INDEX                                                                   \
    "  -m, --model MODEL       model (default: the one the index was built with)\n"
#define APP_USAGE_THREADS "  -j, --threads N         threads, 1..1024 (default: all cores)\n"
#define APP_USAGE_PRECISION                                                                        \
    "  --precision P           auto (default: the fastest path of this CPU, see\n"                 \
    "                          `rsclip --version --verbose`), f32, bf16, int8\n"
#define APP_USAGE_BATCH                                                                            \
    "  -b, --batch N           items per encoder batch, 1.." APP_BATCH_MAX_STR                     \
    " (default 8; 256 on a GPU)\n"
#define APP_USAGE_QUIET "  -q, --quiet             no progress\n"

/* c with nothing given. */
app_common app_common_default(void);
/* Apply option ch (getopt's value, arg its optarg) if it is a shared one: 1 done, 0 not a
 * shared option, -1 a bad value (printed as a usage error of cmd). */
int app_common_option(const char *cmd, int ch, const char *arg, app_common *c);

/* n comma-separated finite numbers ("a,b", "W,S,E,N") into v: 0, or -1 for anything else. */
int app_parse_numbers(const char *s, double *v, int n);

int app_gather_inputs(const char *const *args, int n_args, const char *list_file, const char *asset,
                      rsclip_inputs_error_fn on_error, void *user, rsclip_input **out, int *n);

/* "rsclip: <message>" on stderr; returns APP_ERROR. */
int app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "rsclip: <rsclip_last_error()>"; returns APP_ERROR. */
int app_fail(void);
/* "rsclip CMD: <message>" + a hint to --help on stderr; returns APP_USAGE. */
int app_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Install the log sink that prints library warnings (and, with RSCLIP_LOG=info|debug, more) to
 * stderr. */
void app_install_log(void);

/* Report getopt_long's '?' (unknown option) or ':' (missing value) for argv; returns APP_USAGE. */
int app_bad_option(const char *cmd, int ch, char **argv);

/* Parse a positive int option value; 0 on success, APP_USAGE after printing an error. */
int app_parse_int(const char *cmd, const char *opt, const char *s, int min, int max, int *out);

/* --device: "cpu", "cuda" or "cuda:N" into *out; 0, or APP_USAGE after printing an error. */
int app_parse_device(const char *cmd, const char *s, rsclip_device *out);
/* Resolve -m (rsclip_hub_resolve) and load the model; prints the error and returns APP_ERROR. */
int app_load_model(const char *name, rsclip_model **out);

/* JSON output helpers. */
void app_json_string(FILE *f, const char *s); /* quoted, escaped; invalid UTF-8 -> U+FFFD */
void app_json_float(FILE *f, float v);        /* %.9g (round-trips), null if not finite */

/* Read + preprocess one image into px[3*S*S]; prints the error and returns APP_ERROR. */
int app_image_pixels(const rsclip_model *m, const char *path, float *px);

/* GDAL-style progress on stderr: "<label> 0...10...20...30...40...50...60...70...80...90...100 -
 * done." One app_progress per line of output; feed it app_progress_update. */
typedef struct app_progress {
    FILE *f;
    char label[256];
    int ticks; /* number of 2.5 % ticks printed */
    int open;  /* a line is in progress */
} app_progress;

void app_progress_update(app_progress *p, const char *label, double frac);
void app_progress_finish(app_progress *p);

#endif
