/* Which paths are an index's files (see index_files.h). */
#include "base/base.h"
#include "index/index_files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const k_companions[] = {"", "-wal", "-shm", "-journal", ".rsvec"};
#define N_COMPANIONS (sizeof k_companions / sizeof k_companions[0])

static char *concat(const char *a, const char *sep, const char *b) {
    size_t n = strlen(a), s = strlen(sep), m = strlen(b);
    char *r = rsclip__malloc(n + s + m + 1);
    if (!r) return NULL;
    memcpy(r, a, n);
    memcpy(r + n, sep, s);
    memcpy(r + n + s, b, m + 1);
    return r;
}

char *rsclip__path_canon(const char *path) {
    char *r = realpath(path, NULL);
    if (r) return r;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return NULL;
    char *dir = slash ? rsclip__strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : rsclip__strdup(".");
    if (!dir) return NULL;
    char *rd = realpath(dir, NULL);
    free(dir);
    if (!rd) return NULL;
    size_t n = strlen(rd);
    char *out = concat(rd, n > 0 && rd[n - 1] == '/' ? "" : "/", name);
    free(rd);
    return out;
}

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int rsclip__path_is_index_file(const char *real, const struct stat *st, const char *index) {
    char *bases[2] = {rsclip__strdup(index), realpath(index, NULL)};
    int hit = 0;
    for (int b = 0; b < 2 && !hit; b++) {
        if (!bases[b] || (b == 1 && bases[0] && strcmp(bases[0], bases[1]) == 0)) continue;
        for (size_t c = 0; c < N_COMPANIONS && !hit; c++) {
            char *name = concat(bases[b], "", k_companions[c]);
            if (!name) continue;
            char *cn = rsclip__path_canon(name);
            struct stat cs;
            hit = (cn && strcmp(cn, real) == 0) ||
                  (st && st->st_ino && stat(name, &cs) == 0 && same_file(&cs, st));
            free(cn);
            free(name);
        }
    }
    free(bases[0]);
    free(bases[1]);
    return hit;
}

void rsclip__idx_remove_files(const char *path) {
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char *f = rsclip__malloc(strlen(path) + 10);
        if (!f) return;
        sprintf(f, "%s%s", path, suffix[i]);
        unlink(f);
        free(f);
    }
}
