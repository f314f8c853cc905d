/* Expansion of command-line inputs (files, folders, an input-list file) into a sorted list. */
#include "base/base.h"
#include "rsclip/tiler.h"
#include "status/status_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const k_exts[] = {".tif", ".tiff", ".vrt",  ".jp2", ".j2k",  ".img", ".png",
                                     ".jpg", ".jpeg", ".webp", ".ntf", ".nitf", ".bil", NULL};

int rsclip_inputs_is_raster_name(const char *name) {
    if (!name) return 0;
    size_t n = strlen(name);
    for (int i = 0; k_exts[i]; i++) {
        size_t m = strlen(k_exts[i]);
        if (n > m && strcasecmp(name + n - m, k_exts[i]) == 0) return 1;
    }
    return 0;
}

typedef struct strlist {
    char **v;
    size_t n, cap;
    rsclip_inputs_error_fn on_error; /* NULL: the first bad input fails the expansion */
    void *user;
} strlist;

/* A problem with one input (missing, unreadable): reported and skipped when the caller wants the
 * other inputs anyway, else the error. Out of memory is never soft. */
static int soft(strlist *l, const char *input, int rc) {
    if (rc == RSCLIP_OK || !l->on_error || rc == RSCLIP_ERR_NOMEM) return rc;
    l->on_error(input, rsclip_last_error(), l->user);
    rsclip_clear_error();
    return RSCLIP_OK;
}

static int list_push(strlist *l, char *s) {
    if (!s) return rsclip__error(RSCLIP_ERR_NOMEM, "inputs: out of memory");
    if (l->n == l->cap && rsclip__grow(&l->v, &l->cap, sizeof *l->v, 64)) {
        free(s);
        return rsclip__error(RSCLIP_ERR_NOMEM, "inputs: out of memory");
    }
    l->v[l->n++] = s;
    return RSCLIP_OK;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name), n;
    if (rsclip__add_size(a, b, &n) || rsclip__add_size(n, 2, &n)) return NULL;
    char *s = (char *)rsclip__malloc(n);
    if (!s) return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a == 0 || dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

/* Not a local file name: kept verbatim (/vsi..., URLs, GDAL connection strings such as
 * NETCDF:x.nc:var or HDF5:/p/x.h5://grid whose prefix is an upper-case driver name). */
static int is_virtual(const char *p) {
    if (strncmp(p, "/vsi", 4) == 0 || strstr(p, "://")) return 1;
    const char *colon = strchr(p, ':');
    if (!colon || colon - p < 2) return 0;
    for (const char *q = p; q < colon; q++)
        if (!(isupper((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_')) return 0;
    return 1;
}

static int walk(const char *dir, strlist *out, int depth) {
    if (depth > 64)
        return soft(out, dir,
                    rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: folders nested too deep", dir));
    DIR *d = opendir(dir);
    if (!d)
        return soft(
            out, dir,
            rsclip__error(RSCLIP_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno)));
    int rc = RSCLIP_OK;
    struct dirent *de;
    while (rc == RSCLIP_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *p = join_path(dir, de->d_name);
        if (!p) {
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "inputs: out of memory");
            break;
        }
        struct stat lst, st;
        if (lstat(p, &lst) != 0) {
            free(p);
            continue; /* vanished meanwhile */
        }
        if (S_ISDIR(lst.st_mode)) {
            rc = walk(p, out, depth + 1);
            free(p);
        } else if (rsclip_inputs_is_raster_name(de->d_name) && stat(p, &st) == 0 &&
                   S_ISREG(st.st_mode)) {
            rc = list_push(out, p);
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}

/* Add one input (file, folder, URL) to out. base: folder for relative paths (NULL: cwd). */
static int add_input(const char *in, const char *base, strlist *out) {
    if (strncmp(in, "http://", 7) == 0 || strncmp(in, "https://", 8) == 0 ||
        strncmp(in, "ftp://", 6) == 0) {
        char *s = (char *)rsclip__malloc(strlen(in) + 10);
        if (s) {
            memcpy(s, "/vsicurl/", 9);
            strcpy(s + 9, in);
        }
        return list_push(out, s);
    }
    char *joined = (base && in[0] != '/') ? join_path(base, in) : rsclip__strdup(in);
    if (!joined) return rsclip__error(RSCLIP_ERR_NOMEM, "inputs: out of memory");
    char *real = realpath(joined, NULL);
    if (!real && is_virtual(in)) {
        free(joined);
        return list_push(out, rsclip__strdup(in));
    }
    if (!real) {
        int rc = rsclip__error(errno == ENOENT || errno == ENOTDIR ? RSCLIP_ERR_NOT_FOUND
                                                                   : RSCLIP_ERR_IO,
                               "%s: %s", joined, strerror(errno));
        rc = soft(out, joined, rc);
        free(joined);
        return rc;
    }
    free(joined);
    struct stat st;
    if (stat(real, &st) != 0) {
        int rc = soft(out, real, rsclip__error(RSCLIP_ERR_IO, "%s: %s", real, strerror(errno)));
        free(real);
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        int rc = walk(real, out, 0);
        free(real);
        return rc;
    }
    return list_push(out, real);
}

static int add_list_file(const char *list_file, strlist *out) {
    FILE *f = fopen(list_file, "r");
    if (!f)
        return soft(out, list_file,
                    rsclip__error(errno == ENOENT ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_IO,
                                  "%s: cannot open input list: %s", list_file, strerror(errno)));
    char *base = rsclip__strdup(list_file);
    if (!base) {
        fclose(f);
        return rsclip__error(RSCLIP_ERR_NOMEM, "inputs: out of memory");
    }
    char *slash = strrchr(base, '/');
    if (slash)
        slash[slash == base ? 1 : 0] = '\0';
    else
        strcpy(base, ".");
    int rc = RSCLIP_OK, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (rc == RSCLIP_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *s = line, *e = line + len;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        *e = '\0';
        if (*s == '\0' || *s == '#') continue;
        rc = add_input(s, base, out);
        if (rc) {
            char where[64];
            snprintf(where, sizeof where, "line %d", lineno);
            rsclip__error_prefix(where);
            rsclip__error_prefix(list_file);
        }
    }
    if (rc == RSCLIP_OK && ferror(f))
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: read error", list_file);
    free(line);
    free(base);
    fclose(f);
    return rc;
}

void rsclip_inputs_free(char **paths, int n_paths) {
    if (!paths) return;
    for (int i = 0; i < n_paths; i++) free(paths[i]);
    free(paths);
}

int rsclip_inputs_expand(const char *const *inputs, int n_inputs, const char *list_file,
                         char ***paths, int *n_paths) {
    return rsclip_inputs_expand_ex(inputs, n_inputs, list_file, NULL, NULL, paths, n_paths);
}

int rsclip_inputs_expand_ex(const char *const *inputs, int n_inputs, const char *list_file,
                            rsclip_inputs_error_fn on_error, void *user, char ***paths,
                            int *n_paths) {
    if (!paths || !n_paths || n_inputs < 0 || (n_inputs > 0 && !inputs))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_inputs_expand: bad arguments");
    *paths = NULL;
    *n_paths = 0;
    strlist l = {NULL, 0, 0, on_error, user};
    int rc = RSCLIP_OK;
    for (int i = 0; rc == RSCLIP_OK && i < n_inputs; i++) {
        if (!inputs[i] || !*inputs[i]) {
            rc = soft(&l, "", rsclip__error(RSCLIP_ERR_INVALID_ARG, "inputs: empty input name"));
            continue;
        }
        rc = add_input(inputs[i], NULL, &l);
    }
    if (rc == RSCLIP_OK && list_file) rc = add_list_file(list_file, &l);
    if (rc == RSCLIP_OK && l.n > INT_MAX) rc = rsclip__error(RSCLIP_ERR_NOMEM, "inputs: too many");
    if (rc) {
        rsclip_inputs_free(l.v, (int)(l.n > INT_MAX ? INT_MAX : l.n));
        return rc;
    }
    if (l.n > 1) qsort(l.v, l.n, sizeof(char *), rsclip__cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (k > 0 && strcmp(l.v[k - 1], l.v[i]) == 0)
            free(l.v[i]);
        else
            l.v[k++] = l.v[i];
    }
    *paths = l.v;
    *n_paths = (int)k;
    return RSCLIP_OK;
}
