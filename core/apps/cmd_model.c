/* rsclip model: fetch snapshots from the Hugging Face hub; show where a model resolves. */
#include "app.h"

#include <getopt.h>
#include <string.h>

const char app_usage_model[] =
    "usage: rsclip model fetch [-o DIR] [-q] base|large|REPO_ID\n"
    "       rsclip model path base|large|REPO_ID|FOLDER\n"
    "\n"
    "fetch  downloads config.json, model.safetensors (or model.safetensors.index.json and its\n"
    "       shards), spiece.model, and preprocessor_config.json, tokenizer_config.json,\n"
    "       special_tokens_map.json when the repo has them, from\n"
    "       $HF_ENDPOINT/REPO_ID/resolve/main/FILE ($HF_ENDPOINT defaults to\n"
    "       https://huggingface.co; $HF_TOKEN is sent when set). Files already present are\n"
    "       kept; an interrupted download leaves FILE.part and the next run resumes it.\n"
    "       The folder is printed on stdout, progress goes to stderr.\n"
    "path   prints the folder a -m argument resolves to (exit 1 when it is not there).\n"
    "\n"
    "The cache is $RSCLIP_CACHE/REPO_ID, else $XDG_CACHE_HOME/rsclip/models/REPO_ID, else\n"
    "~/.cache/rsclip/models/REPO_ID. base = lcybuaa/Git-RSCLIP-base, large = lcybuaa/Git-RSCLIP.\n"
    "\n"
    "  -o, --output DIR   download into DIR instead of the cache\n"
    "  -q, --quiet        no progress\n";

static int progress(double frac, const char *msg, void *user) {
    app_progress_update(user, msg, frac);
    return 1;
}

static int model_fetch(int argc, char **argv) {
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {NULL, 0, NULL, 0}};
    const char *cmd = "model fetch", *dest = NULL;
    int quiet = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            dest = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            return app_bad_option(cmd, ch, argv);
        }
    }
    if (optind >= argc) return app_usage_error(cmd, "no model given (base, large or REPO_ID)");
    if (argc - optind > 1) return app_usage_error(cmd, "one model at a time");
    app_progress p = {quiet ? NULL : stderr, "", 0, 0};
    char dir[4096];
    int rc = rsclip_hub_fetch(argv[optind], dest, progress, &p, dir, sizeof dir);
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
