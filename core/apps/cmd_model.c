/* rsclip model: fetch snapshots from the Hugging Face hub; show where a model resolves. */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char app_usage_model[] =
    "usage: rsclip model fetch [-o DIR] [-q] [--max-size N] [--timeout S] base|large|REPO_ID\n"
    "       rsclip model path base|large|REPO_ID|FOLDER\n"
    "\n"
    "fetch  downloads config.json, model.safetensors (or model.safetensors.index.json and its\n"
    "       shards), spiece.model, and preprocessor_config.json, tokenizer_config.json,\n"
    "       special_tokens_map.json when the repo has them, from\n"
    "       $HF_ENDPOINT/REPO_ID/resolve/main/FILE ($HF_ENDPOINT defaults to\n"
    "       https://huggingface.co; $HF_TOKEN is sent when set). Each file is checked before\n"
    "       it is installed: the size and SHA-256 the hub announces, and that it parses; a file\n"
    "       that fails is not installed and is downloaded again next time. Valid files already\n"
    "       present are kept; an interrupted download leaves FILE.part and the next run resumes\n"
    "       it (when the hub still lists the same version). The folder is printed on stdout,\n"
    "       progress goes to stderr.\n"
    "path   prints the folder a -m argument resolves to (exit 1 when it is not there).\n"
    "\n"
    "The cache is $RSCLIP_CACHE/REPO_ID, else $XDG_CACHE_HOME/rsclip/models/REPO_ID, else\n"
    "~/.cache/rsclip/models/REPO_ID. base = lcybuaa/Git-RSCLIP-base, large = lcybuaa/Git-RSCLIP.\n"
    "\n"
    "  -o, --output DIR   download into DIR instead of the cache\n"
    "  --max-size N       refuse a file larger than N bytes (K, M, G, T suffixes; default\n"
    "                     $RSCLIP_FETCH_MAX_BYTES, else 64G)\n"
    "  --timeout S        give up after S seconds in all (default $RSCLIP_FETCH_TIMEOUT, else\n"
    "                     24 hours); run again to resume\n" APP_USAGE_COMMON APP_USAGE_QUIET;

static int progress(double frac, const char *msg, void *user) {
    app_progress_update(user, msg, frac);
    return 1;
}

/* "123", "64K", "1.5G" (powers of 1024) as bytes; 0 when it is not a size. */
static uint64_t parse_size(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 1)) return 0;
    const char *units = "KMGT", *u = *end ? strchr(units, *end) : NULL;
    if (*end && (!u || end[1])) return 0;
    if (u) v *= pow(1024.0, (double)(u - units + 1));
    return v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
}

static int model_fetch(int argc, char **argv) {
    enum { OPT_MAX_SIZE = 256, OPT_TIMEOUT };
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             APP_OPT_QUIET,
                                             {"max-size", required_argument, NULL, OPT_MAX_SIZE},
                                             {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                             {NULL, 0, NULL, 0}};
    const char *cmd = "model fetch", *dest = NULL;
    app_common co = app_common_default();
    int ch;
    rsclip_hub_fetch_params fp = rsclip_hub_fetch_default_params();
    char *end;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:" APP_SHORT_QUIET, longopts, NULL)) != -1) {
        if (app_common_option(cmd, ch, optarg, &co) > 0) continue;
        switch (ch) {
        case 'o':
            dest = optarg;
            break;
        case OPT_MAX_SIZE:
            if (!(fp.max_bytes = parse_size(optarg)))
                return app_usage_error(cmd, "--max-size %s: not a size (bytes, or K, M, G, T)",
                                       optarg);
            break;
        case OPT_TIMEOUT:
            fp.timeout_s = strtod(optarg, &end);
            if (end == optarg || *end || !(fp.timeout_s > 0) || !isfinite(fp.timeout_s))
                return app_usage_error(cmd, "--timeout %s: not a number of seconds > 0", optarg);
            break;
        default:
            return app_bad_option(cmd, ch, argv);
        }
    }
    if (optind >= argc) return app_usage_error(cmd, "no model given (base, large or REPO_ID)");
    if (argc - optind > 1) return app_usage_error(cmd, "one model at a time");
    app_progress p = {co.quiet ? NULL : stderr, "", 0, 0};
    char dir[4096];
    fp.progress = progress;
    fp.user = &p;
    int rc = rsclip_hub_fetch_ex(argv[optind], dest, &fp, dir, sizeof dir);
    app_progress_finish(&p);
    if (rc != RSCLIP_OK) return app_fail();
    puts(dir);
    return APP_OK;
}

static int model_path(int argc, char **argv) {
    if (argc != 2) return app_usage_error("model path", "expected one model name");
    char dir[4096];
    if (rsclip_hub_resolve(argv[1], dir, sizeof dir) != RSCLIP_OK) return app_fail();
    puts(dir);
    return APP_OK;
}

int cmd_model(int argc, char **argv) {
    if (argc < 2) return app_usage_error("model", "expected a subcommand: fetch or path");
    if (strcmp(argv[1], "fetch") == 0) return model_fetch(argc - 1, argv + 1);
    if (strcmp(argv[1], "path") == 0) return model_path(argc - 1, argv + 1);
    return app_usage_error("model", "unknown subcommand '%s' (fetch or path)", argv[1]);
}
