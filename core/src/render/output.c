/* Where chips may go: a folder that is new, empty, or (with overwrite) holds an earlier chips run,
 * and never the index's own folder. Files themselves follow the export module's rule (never over
 * a file unasked, never over the index, through a temporary folder renamed into place). */
#include "base/base.h"
#include "render/render_internal.h"
#include "status/status_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *parent_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return rsclip__strdup(".");
    if (slash == path) return rsclip__strdup("/");
    return rsclip__strndup(path, (size_t)(slash - path));
}

int rsclip__out_check_dir(const char *dir, const rsclip__out_rules *r) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", dir, strerror(errno));
        char *parent = parent_of(dir);
        int ok = parent && stat(parent, &st) == 0 && S_ISDIR(st.st_mode);
        free(parent);
        return ok ? RSCLIP_OK
                  : rsclip__error(RSCLIP_ERR_IO, "%s: its parent folder does not exist", dir);
    }
    if (!S_ISDIR(st.st_mode))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: exists and is not a folder", dir);
    char *real = realpath(dir, NULL);
    for (int i = 0; real && i < r->n_protected; i++) {
        char *p = r->protected_paths[i] ? realpath(r->protected_paths[i], NULL) : NULL;
        int same = p && strcmp(p, real) == 0;
        free(p);
        if (same) {
            free(real);
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "%s: is the index folder, never a chips folder", dir);
        }
    }
    free(real);
    if (r->overwrite) return RSCLIP_OK;
    DIR *d = opendir(dir);
    if (!d) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", dir, strerror(errno));
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_EXISTS,
                                 "%s: exists and is not empty; give --overwrite to replace the "
                                 "chips of an earlier run",
                                 dir);
}
