/* rsclip plan: count the work of an indexing run once (scenes, tile counts, settings) into a
 * plan file that the workers of an array job read (`rsclip index --plan PLAN --shard auto`). */
#include "app.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char app_usage_plan[] =
    "usage: rsclip plan -m MODEL -o PLAN [options] INPUT...\n"
    "\n"
    "Open the header of every input raster once and write the plan of an indexing run: the\n"
    "scenes in order with their tile counts and the tiling settings. Workers of an array job\n"
    "then run `rsclip index -m MODEL --plan PLAN --shard auto -o FOLDER/` and each reads only\n"
    "its own share of the plan (no worker lists or opens the other inputs). The model's input\n"
    "size is the tile size.\n"
    "\n"
    "  -o PLAN               the plan file to write (JSON Lines)\n"
    "  --input-list FILE     read inputs from FILE, one per line ('#' comments)\n"
    "  --asset KEY           STAC inputs: the asset to index (default visual, else the first\n"
    "                        raster asset)\n" APP_USAGE_TILING
    "  --overwrite           replace an existing PLAN\n" APP_USAGE_COMMON APP_USAGE_MODEL
        APP_USAGE_QUIET "\n"
    "Exit status: 0, 1 error (or no input could be opened), 2 usage, 3 some inputs could not be\n"
    "opened (named on stderr; they are not in the plan).\n";

typedef struct plan_state {
    int failed;
} plan_state;

static void on_error(const char *path, const char *message, void *user) {
    ((plan_state *)user)->failed++;
    if (strstr(message, path))
        fprintf(stderr, "rsclip: %s\n", message);
    else
        fprintf(stderr, "rsclip: %s: %s\n", path, message);
}

int cmd_plan(int argc, char **argv) {
    enum { O_INPUT_LIST = 1000, O_OVERWRITE, O_ASSET };
    static const struct option longopts[] = {APP_OPT_MODEL,
                                             APP_OPT_QUIET,
                                             {"output", required_argument, NULL, 'o'},
                                             {"input-list", required_argument, NULL, O_INPUT_LIST},
                                             {"overwrite", no_argument, NULL, O_OVERWRITE},
                                             {"asset", required_argument, NULL, O_ASSET},
                                             APP_TILING_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    rsclip_tiler_params tp = rsclip_tiler_default_params();
    const char *out = NULL, *list = NULL, *asset = NULL;
    int ch, rc, overwrite = 0;
    app_common co = app_common_default();
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":o:" APP_SHORT_MODEL APP_SHORT_QUIET, longopts, NULL)) !=
           -1) {
        if ((rc = app_common_option("plan", ch, optarg, &co)) < 0) return APP_USAGE;
        if (rc > 0) continue;
        switch (ch) {
        case 'o':
            out = optarg;
            break;
        case O_INPUT_LIST:
            list = optarg;
            break;
        case O_OVERWRITE:
            overwrite = 1;
            break;
        case O_ASSET:
            asset = optarg;
            break;
        case '?':
        case ':':
            return app_bad_option("plan", ch, argv);
        default:
            if ((rc = app_tiling_option("plan", ch, optarg, &tp))) return rc;
        }
    }
    const char *model = co.model;
    int quiet = co.quiet;
    if (!model) return app_usage_error("plan", "no model given (-m)");
    if (!out) return app_usage_error("plan", "no plan file given (-o)");
    if (optind == argc && !list) return app_usage_error("plan", "no input rasters given");
    /* The library's rule for a whole file: an existing PLAN only with --overwrite, never a
     * folder, a device or one of the inputs (as given here; again below once folders and the
     * input list are expanded). */
    if (rsclip_output_check(out, overwrite, (const char *const *)argv + optind, argc - optind) !=
            RSCLIP_OK ||
        (list && rsclip_output_check(out, overwrite, &list, 1) != RSCLIP_OK))
        return app_fail();
    rsclip_model *m = NULL;
    if ((rc = app_load_model(model, &m)) != APP_OK) return rc;
    tp.tile_size = rsclip_model_get_info(m)->image_size;
    rsclip_model_free(m);
    plan_state ps = {0};
    rsclip_input *in = NULL;
    int n_in = 0;
    if ((rc = app_gather_inputs((const char *const *)argv + optind, argc - optind, list, asset,
                                on_error, &ps, &in, &n_in)) != APP_OK)
        return rc;
    /* nor any raster found in a folder or named by the input list */
    const char **prot = calloc((size_t)n_in + 1, sizeof *prot);
    if (!prot) {
        rsclip_stac_free(in, n_in);
        return app_error("out of memory");
    }
    for (int i = 0; i < n_in; i++) prot[i] = in[i].path;
    rc = rsclip_output_check(out, overwrite, prot, n_in);
    free(prot);
    if (rc) {
        rsclip_stac_free(in, n_in);
        return app_fail();
    }
    rsclip_plan *plan = NULL;
    rc = rsclip_plan_make_inputs(in, n_in, &tp, on_error, &ps, &plan);
    rsclip_stac_free(in, n_in);
    if (rc) return app_fail();
    if (plan->n_scenes == 0) {
        rsclip_plan_free(plan);
        return app_error("no input could be opened: nothing to plan");
    }
    plan->n_failed = ps.failed;
    rc = rsclip_plan_write(plan, out) == RSCLIP_OK ? APP_OK : app_fail();
    if (rc == APP_OK && !quiet)
        fprintf(stderr, "%s: %d scene(s), %lld tiles (plan %s)%s\n", out, plan->n_scenes,
                (long long)plan->n_tiles, plan->digest,
                ps.failed ? "; some inputs could not be opened" : "");
    rsclip_plan_free(plan);
    if (rc == APP_OK && ps.failed) return APP_PARTIAL;
    return rc;
}
