/* The inputs of `rsclip index` and `rsclip plan`: rasters, folders, input lists and STAC
 * documents (.json: an Item, an ItemCollection, a Catalog or Collection) in one list, in path
 * order, each input once. */
#include "app.h"

#include <stdlib.h>
#include <string.h>

static int cmp_input(const void *a, const void *b) {
    return strcmp(((const rsclip_input *)a)->path, ((const rsclip_input *)b)->path);
}

static char *dup_opt(const char *s) {
    return s ? strdup(s) : NULL;
}

int app_gather_inputs(const char *const *args, int n_args, const char *list_file, const char *asset,
                      rsclip_inputs_error_fn on_error, void *user, rsclip_input **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    const char **plain = calloc((size_t)(n_args ? n_args : 1), sizeof *plain);
    rsclip_input *all = NULL;
    int n_plain = 0, n = 0, cap = 0, rc = plain ? APP_OK : app_error("out of memory");
    for (int i = 0; i < n_args && rc == APP_OK; i++) {
        if (!rsclip_stac_is_name(args[i])) {
            plain[n_plain++] = args[i];
            continue;
        }
        rsclip_input *items = NULL;
        int m = 0;
        if (rsclip_stac_read(args[i], asset, on_error, user, &items, &m) != RSCLIP_OK) {
            rc = app_fail();
            break;
        }
        if (n + m > cap) {
            cap = (n + m) * 2;
            rsclip_input *na = realloc(all, (size_t)cap * sizeof *na);
            if (!na) {
                rsclip_stac_free(items, m);
                rc = app_error("out of memory");
                break;
            }
            all = na;
        }
        if (m > 0) memcpy(all + n, items, (size_t)m * sizeof *items); /* strings move into all */
        n += m;
        free(items);
    }
    char **paths = NULL;
    int n_paths = 0;
    if (rc == APP_OK && (n_plain || list_file) &&
        rsclip_inputs_expand_ex(plain, n_plain, list_file, on_error, user, &paths, &n_paths) !=
            RSCLIP_OK)
        rc = app_fail();
    if (rc == APP_OK && n_paths) {
        rsclip_input *na = realloc(all, (size_t)(n + n_paths) * sizeof *na);
        if (!na) rc = app_error("out of memory");
        for (int i = 0; rc == APP_OK && i < n_paths; i++) {
            memset(&na[n], 0, sizeof na[n]);
            na[n].path = dup_opt(paths[i]);
            n++;
        }
        if (na) all = na;
    }
    rsclip_inputs_free(paths, n_paths);
    free(plain);
    if (rc != APP_OK) {
        rsclip_stac_free(all, n);
        return rc;
    }
    /* path order, each path once (a raster named directly and by a catalogue: the catalogue's,
     * which says more) */
    if (n > 1) qsort(all, (size_t)n, sizeof *all, cmp_input);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && strcmp(all[k - 1].path, all[i].path) == 0) {
            rsclip_input *keep = all[k - 1].stac_item ? &all[k - 1] : &all[i];
            rsclip_input *drop = keep == &all[i] ? &all[k - 1] : &all[i];
            rsclip_input tmp = *keep;
            free((char *)drop->path);
            free((char *)drop->datetime);
            free((char *)drop->stac_item);
            free((char *)drop->stac_collection);
            free((char *)drop->stac_asset);
            all[k - 1] = tmp;
            continue;
        }
        all[k++] = all[i];
    }
    *out = all;
    *n_out = k;
    return APP_OK;
}
