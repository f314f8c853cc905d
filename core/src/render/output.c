/* Where chips and sheets may write: never over a file unasked, never over the index, through
 * temporary names renamed into place (the rules of rsclip/render.h). */
#include "render/render_internal.h"
#include "status/status_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *rsclip__out_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* The canonical form of path, which may not exist yet (its folder must): a new string. */
static char *canonical(const char *path) {
    char *real = realpath(path, NULL);
    if (real) return real;
    char *folder = rsclip__out_folder(path);
    char *rf = folder ? realpath(folder, NULL) : NULL;
    free(folder);
    if (!rf) return NULL;
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    size_t n = strlen(rf) + strlen(name) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", rf, name);
    free(rf);
    return out;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Is the canonical path c one of the protected files, a companion of one (-wal, -shm, -journal,
 * .rsvec), or an index (*.gpkg and companions) inside a protected folder? */
static int is_protected(const char *c, const rsclip__out_rules *r) {
    static const char *const companions[] = {"", "-wal", "-shm", "-journal", ".rsvec"};
    struct stat cs;
    int c_exists = stat(c, &cs) == 0;
    for (int i = 0; i < r->n_protected; i++) {
        char *p = r->protected_paths[i] ? realpath(r->protected_paths[i], NULL) : NULL;
        if (!p) continue;
        struct stat ps;
        int hit = 0;
        if (stat(p, &ps) == 0 && S_ISDIR(ps.st_mode)) {
            size_t n = strlen(p);
            int inside = strncmp(c, p, n) == 0 && (c[n] == '/' || c[n] == '\0');
            for (size_t k = 0; k < 5 && inside && !hit; k++) {
                char ext[32];
                snprintf(ext, sizeof ext, ".gpkg%s", companions[k]);
                hit = ends_with(c, ext) || c[n] == '\0';
            }
        } else {
            hit = c_exists && cs.st_dev == ps.st_dev && cs.st_ino == ps.st_ino;
            for (size_t k = 0; k < 5 && !hit; k++) {
                size_t n = strlen(p);
                hit = strncmp(c, p, n) == 0 && strcmp(c + n, companions[k]) == 0;
            }
        }
        free(p);
        if (hit) return 1;
    }
    return 0;
}

int rsclip__out_check_file(const char *path, const rsclip__out_rules *r) {
    char *c = canonical(path);
    if (!c) return rsclip__error(RSCLIP_ERR_IO, "%s: its folder does not exist", path);
    int rc = RSCLIP_OK;
    struct stat st;
    if (is_protected(c, r))
        rc = rsclip__error(RSCLIP_ERR_INVALID_ARG,
                           "%s: is the index (or part of it): never "
                           "written",
                           path);
    else if (stat(c, &st) == 0 && !S_ISREG(st.st_mode))
        rc = rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: is %s, not a file rsclip may write", path,
                           S_ISDIR(st.st_mode) ? "a folder" : "a device, FIFO or socket");
    else if (!r->overwrite && lstat(c, &st) == 0)
        rc = rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: exists (give overwrite to replace it)",
                           path);
    free(c);
    return rc;
}

int rsclip__out_check_dir(const char *dir, const rsclip__out_rules *r) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", dir, strerror(errno));
        char *folder = rsclip__out_folder(dir);
        int ok = folder && stat(folder, &st) == 0 && S_ISDIR(st.st_mode);
        free(folder);
        return ok ? RSCLIP_OK
                  : rsclip__error(RSCLIP_ERR_IO, "%s: its parent folder does not exist", dir);
    }
    if (!S_ISDIR(st.st_mode))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: exists and is not a folder", dir);
    char *c = realpath(dir, NULL);
    int prot = c && is_protected(c, r);
    free(c);
    if (prot)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: is the index folder: never written", dir);
    if (r->overwrite) return RSCLIP_OK;
    DIR *d = opendir(dir);
    if (!d) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", dir, strerror(errno));
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "%s: exists and is not empty (give overwrite to replace the "
                                 "chips of an earlier run)",
                                 dir);
}

int rsclip__out_tmpdir(const char *folder, char **tmp) {
    size_t n = strlen(folder) + 32;
    char *t = malloc(n);
    if (!t) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    snprintf(t, n, "%s/.rsclip-tmp-XXXXXX", folder);
    if (!mkdtemp(t)) {
        int rc =
            rsclip__error(RSCLIP_ERR_IO, "%s: cannot write there: %s", folder, strerror(errno));
        free(t);
        return rc;
    }
    *tmp = t;
    return RSCLIP_OK;
}

void rsclip__out_tmpdir_remove(const char *tmp) {
    if (!tmp) return;
    DIR *d = opendir(tmp);
    if (d) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", tmp, e->d_name) < (int)sizeof p) unlink(p);
        }
        closedir(d);
    }
    rmdir(tmp);
}

int rsclip__out_install(const char *tmp, const char *name, const char *folder,
                        const rsclip__out_rules *r) {
    char from[PATH_MAX], to[PATH_MAX];
    if (snprintf(from, sizeof from, "%s/%s", tmp, name) >= (int)sizeof from ||
        snprintf(to, sizeof to, "%s/%s", folder, name) >= (int)sizeof to)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s/%s: path too long", folder, name);
    char *c = canonical(to);
    int prot = c && is_protected(c, r);
    free(c);
    if (prot) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: is the index: never written", to);
    int fd = open(from, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (r->overwrite) {
        if (rename(from, to) != 0)
            return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write it: %s", to, strerror(errno));
        return RSCLIP_OK;
    }
    /* never over an existing file, even one that appeared since the check */
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return RSCLIP_OK;
    if (errno == EINVAL || errno == ENOSYS) { /* a file system without it: link is exclusive */
        if (link(from, to) == 0) {
            unlink(from);
            return RSCLIP_OK;
        }
    }
    if (errno == EEXIST)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: exists (give overwrite to replace it)",
                             to);
    return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write it: %s", to, strerror(errno));
}
