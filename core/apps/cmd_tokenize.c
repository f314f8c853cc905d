/* rsclip tokenize: the model's token ids of each text, one JSON array per line. */
#include "app.h"

#include <getopt.h>
#include <stdlib.h>

const char app_usage_tokenize[] =
    "usage: rsclip tokenize -m MODEL [--] TEXT...\n"
    "\n"
    "Print the token ids the text encoder sees for each TEXT: one JSON array per line, exactly\n"
    "text_ctx ids long (64 for Git-RSCLIP) with EOS and padding, as SiglipProcessor gives them\n"
    "(padding=\"max_length\", truncation=True). An empty text is valid; text that is not valid\n"
    "UTF-8 is an error.\n"
    "\n"
    "  --                      end of options (for texts starting with '-')\n" APP_USAGE_COMMON
        APP_USAGE_MODEL;

int cmd_tokenize(int argc, char **argv) {
    static const struct option longopts[] = {APP_OPT_MODEL, {NULL, 0, NULL, 0}};
    const char *cmd = "tokenize";
    app_common co = app_common_default();
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":" APP_SHORT_MODEL, longopts, NULL)) != -1) {
        int r = app_common_option(cmd, ch, optarg, &co);
        if (r < 0) return APP_USAGE;
        if (r == 0) return app_bad_option(cmd, ch, argv);
    }
    const char *model_name = co.model;
    if (!model_name) return app_usage_error(cmd, "no model given (-m MODEL)");
    if (optind >= argc) return app_usage_error(cmd, "no TEXT given");

    rsclip_model *m;
    if (app_load_model(model_name, &m)) return APP_ERROR;
    /* All texts first, then the output: a bad text leaves stdout empty. */
    size_t ctx = (size_t)rsclip_model_get_info(m)->text_ctx, n = (size_t)(argc - optind);
    int32_t *ids = calloc(n * ctx, sizeof *ids);
    int rc = ids ? APP_OK : app_error("out of memory");
    for (size_t i = 0; i < n && rc == APP_OK; i++)
        if (rsclip_model_tokenize(m, argv[optind + (int)i], -1, ids + i * ctx, NULL) != RSCLIP_OK)
            rc = app_error("text %zu: %s", i + 1, rsclip_last_error());
    for (size_t i = 0; i < n && rc == APP_OK; i++) {
        putchar('[');
        for (size_t k = 0; k < ctx; k++) printf(k ? ", %d" : "%d", (int)ids[i * ctx + k]);
        puts("]");
    }
    free(ids);
    rsclip_model_free(m);
    return rc;
}
