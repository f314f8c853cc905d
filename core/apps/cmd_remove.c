/* rsclip remove: take scenes out of an index; and the pruning of scenes whose files are gone
 * (rsclip index --prune). Both delete in one transaction: all of the scenes or none. */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char app_usage_remove[] =
    "usage: rsclip remove INDEX SCENE...\n"
    "\n"
    "Remove scenes from an index: their footprints and vectors go (the vector cache follows).\n"
    "SCENE is a scene id (see rsclip info) or the path of the indexed raster. All scenes are\n"
    "removed in one transaction: if one is not in the index, nothing is removed.\n" APP_USAGE_COMMON
        APP_USAGE_QUIET;

/* Scene id of a command-line SCENE: a number is an id, anything else a path (as stored, or the
 * canonical path of a local file). */
static int find_scene(rsclip_index *idx, const char *arg, int64_t *id) {
    char *end;
    long long v = strtoll(arg, &end, 10);
    rsclip_scene_info *si = NULL;
    if (*arg && !*end && v > 0) {
        if (rsclip_index_get_scene(idx, v, &si) == RSCLIP_OK) {
            *id = si->id;
            rsclip_free(si);
            return APP_OK;
        }
        return app_error("%s: no scene with id %s", rsclip_index_path(idx), arg);
    }
    if (rsclip_index_find_scene(idx, arg, &si) != RSCLIP_OK) {
        char *real = realpath(arg, NULL);
        int found = real && rsclip_index_find_scene(idx, real, &si) == RSCLIP_OK;
        free(real);
        if (!found) return app_error("%s: no scene %s in the index", rsclip_index_path(idx), arg);
    }
    *id = si->id;
    rsclip_free(si);
    return APP_OK;
}

static int delete_and_report(rsclip_index *idx, const int64_t *ids, size_t n, int quiet,
                             const char *verb) {
    int64_t tiles = 0;
    for (size_t i = 0; i < n; i++) {
        rsclip_scene_info *si = NULL;
        if (rsclip_index_get_scene(idx, ids[i], &si) != RSCLIP_OK) return app_fail();
        tiles += si->tiles_stored;
        if (!quiet)
            fprintf(stderr, "rsclip: %s scene %lld: %s\n", verb, (long long)si->id, si->path);
        rsclip_free(si);
    }
    if (rsclip_index_delete_scenes(idx, ids, n) != RSCLIP_OK) return app_fail();
    if (!quiet)
        fprintf(stderr, "rsclip: %s: %s %zu scene(s), %lld tile(s)\n", rsclip_index_path(idx), verb,
                n, (long long)tiles);
    return APP_OK;
}

int cmd_remove(int argc, char **argv) {
    static const struct option longopts[] = {APP_OPT_QUIET, {NULL, 0, NULL, 0}};
    app_common co = app_common_default();
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":" APP_SHORT_QUIET, longopts, NULL)) != -1)
        if (app_common_option("remove", ch, optarg, &co) == 0)
            return app_bad_option("remove", ch, argv);
    const int quiet = co.quiet;
    if (argc - optind < 2) return app_usage_error("remove", "give an index and the scenes");
    const char *path = argv[optind];
    if (access(path, F_OK) != 0) return app_error("%s: no such index file", path);
    rsclip_index *idx = NULL;
    if (rsclip_index_open(path, RSCLIP_INDEX_READWRITE, &idx) != RSCLIP_OK) return app_fail();
    size_t n = (size_t)(argc - optind - 1);
    int64_t *ids = calloc(n, sizeof *ids);
    int rc = ids ? APP_OK : app_error("out of memory");
    for (size_t i = 0; i < n && rc == APP_OK; i++)
        rc = find_scene(idx, argv[optind + 1 + i], &ids[i]);
    /* the same scene named twice (by id and by path) is removed once */
    size_t k = 0;
    for (size_t i = 0; i < n && rc == APP_OK; i++) {
        size_t j = 0;
        while (j < k && ids[j] != ids[i]) j++;
        if (j == k) ids[k++] = ids[i];
    }
    if (rc == APP_OK) rc = delete_and_report(idx, ids, k, quiet, "removed");
    free(ids);
    rsclip_index_close(idx);
    return rc;
}

/* A scene's file is gone: a local path that no longer exists. Remote and GDAL connection
 * strings are never judged gone (a network error is not a deletion). */
static int is_gone(const char *p) {
    if (p[0] != '/' || strncmp(p, "/vsi", 4) == 0) return 0;
    struct stat st;
    return stat(p, &st) != 0 && (errno == ENOENT || errno == ENOTDIR);
}

int app_prune(const char *index, int quiet) {
    if (access(index, F_OK) != 0) return app_error("%s: no such index file", index);
    rsclip_index *idx = NULL;
    if (rsclip_index_open(index, RSCLIP_INDEX_READWRITE, &idx) != RSCLIP_OK) return app_fail();
    int64_t *ids = NULL;
    size_t n = 0, k = 0;
    int rc = rsclip_index_list_scenes(idx, &ids, &n) == RSCLIP_OK ? APP_OK : app_fail();
    for (size_t i = 0; i < n && rc == APP_OK; i++) {
        rsclip_scene_info *si = NULL;
        if (rsclip_index_get_scene(idx, ids[i], &si) != RSCLIP_OK) {
            rc = app_fail();
            break;
        }
        if (is_gone(si->path)) ids[k++] = ids[i];
        rsclip_free(si);
    }
    if (rc == APP_OK && k > 0) rc = delete_and_report(idx, ids, k, quiet, "pruned");
    if (rc == APP_OK && k == 0 && !quiet) fprintf(stderr, "rsclip: %s: nothing to prune\n", index);
    rsclip_free(ids);
    rsclip_index_close(idx);
    return rc;
}
