/* rsclip merge: the parts of a sharded index (or several indexes of one model) into one file. */
#include "app.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char app_usage_merge[] =
    "usage: rsclip merge -o OUT.gpkg INPUT...\n"
    "\n"
    "Merge index parts (a folder written by `rsclip index --shard`), folders of them, or other\n"
    "rsclip indexes of the same model into one GeoPackage for QGIS and friends. Streams (memory\n"
    "stays bounded whatever the size), skips tiles OUT already holds (same scene and window), and\n"
    "can be killed and run again: it ends with the same file. OUT may exist (an index of the\n"
    "same model): the inputs are added to it. OUT is never an input, one of its\n"
    "-wal/-shm/.rsvec files or a file inside an input folder.\n"
    "\n"
    "  -o OUT        the merged index\n"
    "  --no-cache    do not build OUT.rsvec (the first search builds it)\n" APP_USAGE_COMMON
        APP_USAGE_QUIET;

typedef struct merge_state {
    int quiet, tty;
} merge_state;

static int on_progress(int64_t tiles, void *user) {
    merge_state *ms = user;
    if (!ms->quiet && ms->tty) {
        fprintf(stderr, "\rmerge: %lld tiles read", (long long)tiles);
        fflush(stderr);
    }
    return 1;
}

int cmd_merge(int argc, char **argv) {
    enum { O_NO_CACHE = 1000 };
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"no-cache", no_argument, NULL, O_NO_CACHE},
                                             APP_OPT_QUIET,
                                             {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int ch, cache = 1;
    merge_state ms = {0, isatty(2)};
    app_common co = app_common_default();
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":o:" APP_SHORT_QUIET, longopts, NULL)) != -1) {
        if (app_common_option("merge", ch, optarg, &co) > 0) {
            ms.quiet = co.quiet;
            continue;
        }
        switch (ch) {
        case 'o':
            out = optarg;
            break;
        case O_NO_CACHE:
            cache = 0;
            break;
        default:
            return app_bad_option("merge", ch, argv);
        }
    }
    if (!out) return app_usage_error("merge", "no output given (-o)");
    if (optind == argc) return app_usage_error("merge", "no inputs given");
    for (int i = optind; i < argc; i++)
        if (access(argv[i], F_OK) != 0) return app_error("%s: no such index or folder", argv[i]);
    /* The library's rule for an output file (OUT may exist: the inputs are added to it): never a
     * folder or a device, never an input, one of its -wal/-shm/-journal/.rsvec files or an index
     * file inside an input folder. The merge checks the inputs' files again itself. */
    if (rsclip_output_check(out, 1, (const char *const *)argv + optind, argc - optind) != RSCLIP_OK)
        return app_fail();
    rsclip_merge_report rep;
    int rc = rsclip_index_merge(out, (const char *const *)argv + optind, argc - optind, on_progress,
                                &ms, &rep);
    if (!ms.quiet && ms.tty) fputc('\n', stderr);
    if (rc != RSCLIP_OK) return app_fail();
    if (!ms.quiet)
        fprintf(stderr, "%s: %lld tiles added, %lld already there, in %.1f s (%.0f tiles/s)\n", out,
                (long long)rep.tiles_added, (long long)rep.tiles_duplicate, rep.seconds,
                rep.seconds > 0 ? (double)(rep.tiles_added + rep.tiles_duplicate) / rep.seconds
                                : 0.0);
    if (cache) { /* the vector cache, once, now rather than at the first search */
        rsclip_session_params sp = rsclip_session_default_params();
        rsclip_session *s = NULL;
        if (rsclip_session_open(out, &sp, &s) != RSCLIP_OK) return app_fail();
        rsclip_session_close(s);
    }
    return APP_OK;
}
