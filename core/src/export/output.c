/* Where an export may write, and new files through a temporary folder (see output_internal.h). */
#include "base/base.h"
#include "export/output_internal.h"
#include "index/index_files.h"
#include "rsclip/export.h"
#include "status/status_internal.h"

#include <cpl_vsi.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* How far below a protected folder its index files are looked for (hard links). */
#define WALK_MAX_DEPTH 8
#define WALK_MAX_ENTRIES 100000

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] == '/';
    char *s = rsclip__malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    if (!slash) s[a++] = '/';
    memcpy(s + a, name, b + 1);
    return s;
}

void rsclip__dest_free(rsclip__dest *d) {
    if (!d) return;
    free(d->real);
    free(d->folder);
    d->real = d->folder = NULL;
    d->name = NULL;
}

int rsclip__dest_resolve(const char *path, rsclip__dest *d) {
    memset(d, 0, sizeof *d);
    d->path = path;
    if (!path || !*path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "no output path");
    struct stat lst;
    d->exists = lstat(path, &lst) == 0;
    if (d->exists && stat(path, &d->st) != 0) memset(&d->st, 0, sizeof d->st); /* dangling */
    d->is_dir = d->exists && S_ISDIR(d->st.st_mode);
    d->is_special =
        d->exists && d->st.st_mode && !S_ISDIR(d->st.st_mode) && !S_ISREG(d->st.st_mode);
    errno = 0;
    d->real = rsclip__path_canon(path);
    if (!d->real)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot be written: %s", path,
                             errno == ENOENT || errno == ENOTDIR ? "its folder does not exist"
                             : errno                             ? strerror(errno)
                                                                 : "not a file name");
    char *slash = strrchr(d->real, '/');
    d->name = slash + 1;
    d->folder = slash == d->real ? rsclip__strdup("/")
                                 : rsclip__strndup(d->real, (size_t)(slash - d->real));
    if (!d->folder) {
        rsclip__dest_free(d);
        return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    }
    return RSCLIP_OK;
}

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* A GeoPackage (an index or one shard of one) or a file SQLite/rsclip keeps beside one. */
static int is_index_name(const char *name) {
    static const char *const k[] = {".gpkg", ".gpkg-wal", ".gpkg-shm", ".gpkg-journal", ".rsvec"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (ends_with(name, k[i])) return 1;
    return 0;
}

/* 1 when an index file below dir (depth-limited) is the same file as st. */
static int walk_finds(const char *dir, const struct stat *st, int depth, int *budget) {
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(dp)) != NULL && (*budget)-- > 0) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = join(dir, e->d_name);
        struct stat es;
        if (p && lstat(p, &es) == 0) {
            if (S_ISDIR(es.st_mode) && depth < WALK_MAX_DEPTH)
                found = walk_finds(p, st, depth + 1, budget);
            else if (is_index_name(e->d_name) && stat(p, &es) == 0 && same_file(&es, st))
                found = 1;
        }
        free(p);
    }
    closedir(dp);
    return found;
}

/* A protected folder: every index file below it (by name, and by inode for an existing d). */
static int in_protected_folder(const rsclip__dest *d, const char *dir) {
    char *rd = realpath(dir, NULL);
    if (!rd) return 0;
    size_t n = strlen(rd);
    int inside = strncmp(d->real, rd, n) == 0 && (d->real[n] == '/' || (n == 1 && rd[0] == '/'));
    int hit = inside && is_index_name(d->name);
    if (!hit && d->exists && !d->is_dir && d->st.st_ino) {
        int budget = WALK_MAX_ENTRIES;
        hit = walk_finds(rd, &d->st, 0, &budget);
    }
    free(rd);
    return hit;
}

int rsclip__dest_check_protected(const rsclip__dest *d, const char *const *prot, int n_prot) {
    for (int i = 0; i < n_prot && prot; i++) {
        const char *p = prot[i];
        if (!p || !*p) continue;
        struct stat ps;
        if (stat(p, &ps) == 0 && S_ISDIR(ps.st_mode)) {
            if (in_protected_folder(d, p))
                return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                     "%s: refusing to write over an index file inside %s, an "
                                     "input of this command (not even with --overwrite)",
                                     d->path, p);
        } else if (rsclip__path_is_index_file(d->real, d->exists ? &d->st : NULL, p)) {
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "%s: refusing to write over %s, an input of this command, or "
                                 "its -wal/-shm/-journal/.rsvec files (not even with --overwrite)",
                                 d->path, p);
        }
    }
    return RSCLIP_OK;
}

int rsclip__dest_check_replaceable(const rsclip__dest *d) {
    if (d->is_dir)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: is a folder, not replaced", d->path);
    if (d->is_special)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: is not a regular file (a device, FIFO or socket), not replaced "
                             "(-o - writes to stdout)",
                             d->path);
    return RSCLIP_OK;
}

int rsclip_output_check(const char *path, int overwrite, const char *const *protected_paths,
                        int n_protected) {
    rsclip__dest d;
    int rc = rsclip__dest_resolve(path, &d);
    if (!rc) rc = rsclip__dest_check_protected(&d, protected_paths, n_protected);
    if (!rc) rc = rsclip__dest_check_replaceable(&d);
    if (!rc && d.exists && !overwrite)
        rc = rsclip__error(RSCLIP_ERR_EXISTS, "%s: exists; give --overwrite to replace it", path);
    rsclip__dest_free(&d);
    return rc;
}

int rsclip__tmpdir_new(const rsclip__dest *d, char **tmp) {
    *tmp = join(d->folder, ".rsclip-export-XXXXXX");
    if (!*tmp) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    if (!mkdtemp(*tmp)) {
        int rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot write in its folder %s: %s", d->path,
                               d->folder, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return rc;
    }
    return RSCLIP_OK;
}

void rsclip__tmpdir_remove(const char *tmp) {
    if (tmp) VSIRmdirRecursive(tmp);
}

static int sync_path(const char *path, int is_dir) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* The entries of folder tmp (names; the one named `last` moved to the end): a new
 * NULL-terminated array of new strings. */
static char **list_entries(const char *tmp, const char *last, int *n_out) {
    DIR *dp = opendir(tmp);
    if (!dp) return NULL;
    char **v = NULL;
    int n = 0, cap = 0, ok = 1;
    struct dirent *e;
    while (ok && (e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n + 2 > cap) {
            cap = cap ? 2 * cap : 8;
            char **nv = rsclip__realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                ok = 0;
                break;
            }
            v = nv;
        }
        if (!(v[n] = rsclip__strdup(e->d_name)))
            ok = 0;
        else
            n++;
    }
    closedir(dp);
    if (!ok) {
        for (int i = 0; i < n; i++) free(v[i]);
        free(v);
        return NULL;
    }
    if (!v && !(v = rsclip__calloc(1, sizeof *v))) return NULL;
    for (int i = 0; i < n - 1; i++)
        if (strcmp(v[i], last) == 0) {
            char *t = v[i];
            v[i] = v[n - 1];
            v[n - 1] = t;
            break;
        }
    v[n] = NULL;
    *n_out = n;
    return v;
}

static void free_list(char **v) {
    for (int i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

/* Each destination of the move: not protected, a regular file, and (without overwrite) new. */
static int check_targets(const char *tmp, char **names, const rsclip__dest *d, int overwrite,
                         const char *const *prot, int n_prot) {
    int rc = RSCLIP_OK;
    for (int i = 0; names[i] && !rc; i++) {
        char *dst = join(d->folder, names[i]);
        if (!dst) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        rsclip__dest t;
        rc = rsclip__dest_resolve(dst, &t);
        if (!rc) rc = rsclip__dest_check_protected(&t, prot, n_prot);
        if (!rc) rc = rsclip__dest_check_replaceable(&t);
        if (!rc && t.exists && !overwrite)
            rc =
                rsclip__error(RSCLIP_ERR_EXISTS, "%s: exists; give --overwrite to replace it", dst);
        /* The new file takes the permission bits of the one it replaces. */
        char *src = rc || !t.exists || !t.st.st_mode ? NULL : join(tmp, names[i]);
        if (src && chmod(src, t.st.st_mode & 07777) != 0)
            rc = rsclip__error(RSCLIP_ERR_IO, "%s: %s", src, strerror(errno));
        free(src);
        rsclip__dest_free(&t);
        free(dst);
    }
    return rc;
}

int rsclip__tmpdir_commit(const char *tmp, const rsclip__dest *d, int overwrite,
                          const char *const *prot, int n_prot, char **old_files) {
    int n = 0;
    char **names = list_entries(tmp, d->name, &n);
    if (!names) {
        rsclip__tmpdir_remove(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot list %s: %s", d->path, tmp,
                             strerror(errno));
    }
    int rc = n == 0 ? rsclip__error(RSCLIP_ERR_IO, "%s: the driver wrote no file", d->path)
                    : check_targets(tmp, names, d, overwrite, prot, n_prot);
    for (int i = 0; i < n && !rc; i++) {
        char *src = join(tmp, names[i]);
        struct stat st;
        if (!src || lstat(src, &st) != 0 || sync_path(src, S_ISDIR(st.st_mode)) != 0)
            rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot write %s: %s", d->path, names[i],
                               src ? strerror(errno) : "out of memory");
        free(src);
    }
    int moved = 0;
    for (; moved < n && !rc; moved++) {
        char *src = join(tmp, names[moved]), *dst = join(d->folder, names[moved]);
        if (!src || !dst)
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        else if (rsclip__rename(src, dst, overwrite) != 0)
            rc = rsclip__error(errno == EEXIST ? RSCLIP_ERR_EXISTS : RSCLIP_ERR_IO,
                               "%s: cannot move the new file into place as %s: %s", d->path, dst,
                               errno == EEXIST ? "it appeared meanwhile" : strerror(errno));
        free(src);
        free(dst);
    }
    if (!rc && sync_path(d->folder, 1) != 0 && errno != EINVAL)
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot sync its folder: %s", d->path,
                           strerror(errno));
    if (!rc && old_files) {
        /* Files of the replaced dataset that nothing new replaced (a shapefile's old .qix). */
        for (int i = 0; old_files[i]; i++) {
            rsclip__dest o;
            if (rsclip__dest_resolve(old_files[i], &o) != RSCLIP_OK) continue;
            int fresh = strcmp(o.folder, d->folder) != 0;
            for (int k = 0; k < n && !fresh; k++) fresh = strcmp(o.name, names[k]) == 0;
            if (!fresh && o.exists && !o.is_dir &&
                rsclip__dest_check_protected(&o, prot, n_prot) == RSCLIP_OK)
                unlink(o.real);
            rsclip__dest_free(&o);
        }
        rsclip_clear_error();
    }
    free_list(names);
    rsclip__tmpdir_remove(tmp);
    return rc;
}
