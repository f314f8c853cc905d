/* Index sets: one index file, or a folder of parts (part-IIIII-of-NNNNN.gpkg) written by the
 * workers of an array job. Opening a folder checks that its parts belong together (same shard
 * count, plan, settings, model); readers then treat the set as one index. */
#include "base/base.h"
#include "index/index_internal.h"
#include "status/status_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rsclip_index_set {
    char *path;
    int n, cap;
    rsclip_index **parts;
    int shard_count; /* N of the parts' names (0 for a single file) */
    int missing;     /* parts of 0..N-1 not in the folder */
    int incomplete;  /* parts whose worker has not finished (shard_complete != 1) */
};

int rsclip_index_set_count(const rsclip_index_set *s) {
    return s ? s->n : 0;
}

rsclip_index *rsclip_index_set_part(rsclip_index_set *s, int i) {
    return s && i >= 0 && i < s->n ? s->parts[i] : NULL;
}

const char *rsclip_index_set_path(const rsclip_index_set *s) {
    return s ? s->path : NULL;
}

int rsclip_index_set_shards(const rsclip_index_set *s, int *count, int *missing, int *incomplete) {
    if (!s) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_shards: NULL set");
    if (count) *count = s->shard_count;
    if (missing) *missing = s->missing;
    if (incomplete) *incomplete = s->incomplete;
    return RSCLIP_OK;
}

void rsclip_index_set_close(rsclip_index_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) rsclip_index_close(s->parts[i]);
    free(s->parts);
    free(s->path);
    free(s);
}

static int add_part(rsclip_index_set *s, rsclip_index *idx) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        rsclip_index **p = rsclip__realloc(s->parts, (size_t)cap * sizeof *p);
        if (!p) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", s->path);
        s->parts = p;
        s->cap = cap;
    }
    s->parts[s->n++] = idx;
    return RSCLIP_OK;
}

/* part-IIIII-of-NNNNN.gpkg: 1 and the numbers, or 0. */
static int part_name(const char *name, int *i, int *n) {
    char tail[8];
    if (sscanf(name, "part-%d-of-%d.gpk%7s", i, n, tail) != 3 || strcmp(tail, "g") != 0) return 0;
    char canon[64];
    snprintf(canon, sizeof canon, "part-%05d-of-%05d.gpkg", *i, *n);
    return strcmp(canon, name) == 0 && *n >= 1 && *i >= 0 && *i < *n;
}

int rsclip_index_set_check_shard(const char *folder, int index, int count) {
    if (!folder || count < 1 || index < 0 || index >= count)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "shard %d/%d: not a shard", index, count);
    DIR *d = opendir(folder);
    if (!d) return RSCLIP_OK; /* a new folder holds no other part */
    int rc = RSCLIP_OK;
    for (struct dirent *de; !rc && (de = readdir(d)) != NULL;) {
        int i, n;
        if (part_name(de->d_name, &i, &n) && n != count)
            rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                               "%s: holds %s, a part of %d shards; this run is shard %d/%d "
                               "(index into another folder, or remove the old parts)",
                               folder, de->d_name, n, index, count);
    }
    closedir(d);
    return rc;
}

static int is_gpkg(const char *name) {
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".gpkg") == 0;
}

/* Meta of a part as text ("" when absent). */
static void meta_text(rsclip_index *idx, const char *key, char *out, size_t cap) {
    char *v = NULL;
    out[0] = 0;
    if (rsclip_index_get_meta(idx, key, &v) == RSCLIP_OK) snprintf(out, cap, "%s", v);
    rsclip_free(v);
    rsclip_clear_error();
}

/* A part must match the first one in everything that makes parts one index. */
static int check_part(rsclip_index_set *s, rsclip_index *first, rsclip_index *p, int name_i,
                      int name_n) {
    static const char *const keys[] = {"shard_count", "plan_digest", "settings",
                                       "model_fingerprint", "embed_dim"};
    char a[1024], b[1024];
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        meta_text(first, keys[k], a, sizeof a);
        meta_text(p, keys[k], b, sizeof b);
        if (strcmp(a, b) != 0)
            return rsclip__error(RSCLIP_ERR_MISMATCH,
                                 "%s: parts do not belong together: %s has %s %s, %s has %s",
                                 s->path, rsclip_index_path(first), keys[k], a[0] ? a : "(none)",
                                 rsclip_index_path(p), b[0] ? b : "(none)");
    }
    char want[32];
    meta_text(p, "shard_index", a, sizeof a);
    snprintf(want, sizeof want, "%d", name_i);
    meta_text(p, "shard_count", b, sizeof b);
    if (strcmp(a, want) != 0 || atoi(b) != name_n)
        return rsclip__error(RSCLIP_ERR_MISMATCH,
                             "%s: holds shard %s/%s, not the %d/%d its name says",
                             rsclip_index_path(p), a[0] ? a : "?", b[0] ? b : "?", name_i, name_n);
    meta_text(p, "shard_complete", a, sizeof a);
    if (strcmp(a, "1") != 0) s->incomplete++;
    return RSCLIP_OK;
}

static int open_folder(rsclip_index_set *s, unsigned flags) {
    DIR *d = opendir(s->path);
    if (!d)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot read the index folder: %s", s->path,
                             strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = RSCLIP_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (!is_gpkg(de->d_name)) continue; /* caches, -wal/-shm, plans, logs */
        int i, k;
        if (!part_name(de->d_name, &i, &k)) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT,
                               "%s: %s is not a part (part-IIIII-of-NNNNN.gpkg) of a sharded "
                               "index: a folder index holds only parts (rsclip merge makes one "
                               "file of them)",
                               s->path, de->d_name);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = rsclip__realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", s->path);
                break;
            }
            names = nn;
        }
        if (!(names[n] = rsclip__strdup(de->d_name)))
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (!rc && n == 0)
        rc = rsclip__error(RSCLIP_ERR_NOT_FOUND,
                           "%s: a folder without index parts (part-IIIII-of-NNNNN.gpkg)", s->path);
    if (!rc) qsort(names, n, sizeof *names, rsclip__cmp_str);
    for (size_t j = 0; j < n && !rc; j++) {
        int i, k;
        part_name(names[j], &i, &k);
        size_t len = strlen(s->path) + strlen(names[j]) + 2;
        char *full = rsclip__malloc(len);
        if (!full) {
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(full, len, "%s/%s", s->path, names[j]);
        rsclip_index *idx = NULL;
        rc = rsclip_index_open(full, flags, &idx);
        free(full);
        if (!rc) rc = add_part(s, idx);
        if (rc) {
            rsclip_index_close(idx);
            break;
        }
        if (j == 0) s->shard_count = k;
        rc = check_part(s, s->parts[0], idx, i, k);
    }
    for (size_t j = 0; j < n; j++) free(names[j]);
    free(names);
    if (!rc) s->missing = s->shard_count - s->n;
    return rc;
}

int rsclip_index_set_open(const char *path, unsigned flags, rsclip_index_set **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_open: no path");
    if (flags & RSCLIP_INDEX_CREATE)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: an index set is opened, not created",
                             path);
    rsclip_index_set *s = rsclip__calloc(1, sizeof *s);
    if (!s || !(s->path = rsclip__strdup(path))) {
        free(s);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t len = strlen(s->path);
    while (len > 1 && s->path[len - 1] == '/') s->path[--len] = 0;
    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = open_folder(s, flags);
    } else {
        rsclip_index *idx = NULL;
        rc = rsclip_index_open(path, flags, &idx);
        if (!rc && (rc = add_part(s, idx))) rsclip_index_close(idx);
    }
    if (rc) {
        rsclip_index_set_close(s);
        return rc;
    }
    *out = s;
    return RSCLIP_OK;
}

int rsclip_index_set_info(rsclip_index_set *s, rsclip_index_info *info) {
    if (!s || !info) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_info: NULL");
    memset(info, 0, sizeof *info);
    for (int i = 0; i < s->n; i++) {
        rsclip_index_info pi;
        int rc = rsclip_index_get_info(s->parts[i], &pi);
        if (rc) return rc;
        if (i == 0) {
            *info = pi;
            continue;
        }
        info->n_scenes += pi.n_scenes; /* per part: a scene spread over parts counts in each */
        info->n_scenes_complete += pi.n_scenes_complete;
        info->n_tiles += pi.n_tiles;
        info->n_embeddings += pi.n_embeddings;
        if (strcmp(pi.updated_at, info->updated_at) > 0)
            snprintf(info->updated_at, sizeof info->updated_at, "%s", pi.updated_at);
        if (strcmp(pi.created_at, info->created_at) < 0)
            snprintf(info->created_at, sizeof info->created_at, "%s", pi.created_at);
        if (pi.has_extent) {
            if (!info->has_extent) {
                memcpy(info->extent, pi.extent, sizeof pi.extent);
                info->has_extent = 1;
            } else {
                for (int k = 0; k < 2; k++) {
                    if (pi.extent[k] < info->extent[k]) info->extent[k] = pi.extent[k];
                    if (pi.extent[k + 2] > info->extent[k + 2])
                        info->extent[k + 2] = pi.extent[k + 2];
                }
            }
        }
    }
    return RSCLIP_OK;
}

static int cmp_scene(const void *a, const void *b) {
    const rsclip_scene_info *x = *(rsclip_scene_info *const *)a,
                            *y = *(rsclip_scene_info *const *)b;
    int c = strcmp(x->path, y->path);
    if (c) return c;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_scene_id(const void *a, const void *b) {
    const rsclip_scene_info *x = *(rsclip_scene_info *const *)a,
                            *y = *(rsclip_scene_info *const *)b;
    if (x->id != y->id) return (x->id > y->id) - (x->id < y->id);
    return strcmp(x->path, y->path);
}

void rsclip_index_set_scenes_free(rsclip_scene_info **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) rsclip_free(v[i]);
    free(v);
}

int rsclip_index_set_scenes(rsclip_index_set *s, rsclip_scene_info ***out, size_t *n_out) {
    if (!s || !out || !n_out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_scenes: NULL argument");
    *out = NULL;
    *n_out = 0;
    rsclip_scene_info **v = NULL;
    size_t n = 0, cap = 0;
    int rc = RSCLIP_OK;
    for (int p = 0; p < s->n && !rc; p++) {
        int64_t *ids = NULL;
        size_t m = 0;
        if ((rc = rsclip_index_list_scenes(s->parts[p], &ids, &m))) break;
        for (size_t i = 0; i < m && !rc; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                rsclip_scene_info **nv = rsclip__realloc(v, cap * sizeof *nv);
                if (!nv) {
                    rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", s->path);
                    break;
                }
                v = nv;
            }
            if ((rc = rsclip_index_get_scene(s->parts[p], ids[i], &v[n]))) break;
            n++;
        }
        rsclip_free(ids);
    }
    if (rc) {
        rsclip_index_set_scenes_free(v, n);
        return rc;
    }
    /* one entry per path: counts summed; complete once every planned window is in */
    if (n > 1) qsort(v, n, sizeof *v, cmp_scene);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(v[k - 1]->path, v[i]->path) == 0) {
            rsclip_scene_info *a = v[k - 1];
            a->tiles_stored += v[i]->tiles_stored;
            a->tiles_skipped += v[i]->tiles_skipped;
            if (v[i]->tiles_planned > a->tiles_planned) a->tiles_planned = v[i]->tiles_planned;
            rsclip_free(v[i]);
            continue;
        }
        v[k++] = v[i];
    }
    for (size_t i = 0; i < k && s->n > 1; i++) {
        rsclip_scene_info *a = v[i];
        a->status = a->tiles_planned > 0 && a->tiles_stored + a->tiles_skipped >= a->tiles_planned
                        ? RSCLIP_SCENE_COMPLETE
                        : RSCLIP_SCENE_INDEXING;
    }
    if (k > 1) qsort(v, k, sizeof *v, cmp_scene_id);
    *out = v;
    *n_out = k;
    return RSCLIP_OK;
}
