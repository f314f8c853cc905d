/* The checkpoint files of a model: open (mapped or owned), identity, change detection (see
 * checkpoint.h). */
#include "base/base.h"
#include "model/checkpoint.h"

#include "model/digest.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define INDEX_MAX_BYTES ((size_t)64 << 20)

static int same_version(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int changed_error(const char *path, const char *when) {
    return rsclip__error(RSCLIP_ERR_MISMATCH,
                         "%s: the checkpoint was written to %s (its size or times changed); "
                         "nothing computed from it is used: run again once it is complete",
                         path, when);
}

/* A file written less than this before it is read may still be being written, and a write
 * within the same timestamp tick (milliseconds) leaves its mtime and ctime as they were: such a
 * file is read (hashed) a second time, and both passes must agree. */
#define RECENT_SECONDS 2.0

static int recently_written(const struct stat *st, double now) {
    double m = (double)st->st_mtim.tv_sec + st->st_mtim.tv_nsec * 1e-9;
    double c = (double)st->st_ctim.tv_sec + st->st_ctim.tv_nsec * 1e-9;
    return now - (m > c ? m : c) < RECENT_SECONDS;
}

/* The second pass over a recently written file: its SHA-256 from disk must be hex, and its
 * version unchanged. */
static int second_pass(int fd, const char *path, const rsclip__shard *s, const char *hex) {
    char again[RSCLIP__SHA256_HEX];
    int rc = rsclip__sha256_fd(fd, path, s->id.st_size, again);
    struct stat now;
    if (!rc && (strcmp(again, hex) != 0 || fstat(fd, &now) != 0 || !same_version(&now, &s->id)))
        rc = changed_error(path, "while it was being read");
    return rc;
}

static int read_whole(int fd, const char *path, unsigned char *p, size_t size) {
    size_t off = 0;
    while (off < size) {
        size_t want = size - off < ((size_t)1 << 30) ? size - off : ((size_t)1 << 30);
        ssize_t r = pread(fd, p + off, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return r == 0
                       ? changed_error(path, "while it was being read")
                       : rsclip__error(RSCLIP_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        off += (size_t)r;
    }
    return RSCLIP_OK;
}

/* Read the file into owned memory and hash that memory: one read for both, and what is hashed
 * is exactly what the model will use. */
static int shard_read_owned(rsclip__shard *s, int fd, const char *path) {
    double t0 = rsclip__digest_now();
    s->mem = rsclip__alloc_huge(s->size); /* the encoder streams through it */
    if (!s->mem)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: cannot allocate %zu bytes for the weights",
                             path, s->size);
    int rc = read_whole(fd, path, s->mem, s->size);
    struct stat now;
    if (!rc && (fstat(fd, &now) != 0 || !same_version(&now, &s->id)))
        rc = changed_error(path, "while it was being read");
    if (rc) return rc;
    rsclip__sha256_hex(s->mem, s->size, s->sha256);
    if (recently_written(&s->id, t0) && (rc = second_pass(fd, path, s, s->sha256))) return rc;
    rsclip__digest_store(&s->id, s->sha256, t0);
    return RSCLIP_OK;
}

/* Map the file; its digest comes from the digest cache, or from one pass over the file. */
static int shard_map(rsclip__shard *s, int fd, const char *path) {
    if (s->size >= 8) { /* smaller files are refused by the parser; mmap of 0 bytes fails */
        void *m = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            return rsclip__error(RSCLIP_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        s->mem = m;
        s->mapped = 1;
    }
    if (rsclip__digest_lookup(&s->id, s->sha256)) return RSCLIP_OK;
    double t0 = rsclip__digest_now();
    int rc = rsclip__sha256_fd(fd, path, s->id.st_size, s->sha256);
    struct stat now;
    if (!rc && (fstat(fd, &now) != 0 || !same_version(&now, &s->id)))
        rc = changed_error(path, "while it was being read");
    if (!rc && recently_written(&s->id, t0)) rc = second_pass(fd, path, s, s->sha256);
    if (!rc) rsclip__digest_store(&s->id, s->sha256, t0);
    return rc;
}

static int shard_open(rsclip__shard *s, const char *path, int owned) {
    s->fd = -1;
    /* O_NONBLOCK: a FIFO must not block the open; it is refused as not regular just below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = RSCLIP_OK;
    if (fstat(fd, &s->id) != 0)
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(s->id.st_mode))
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: not a regular file", path);
    else if ((uint64_t)s->id.st_size > SIZE_MAX / 2)
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: too large", path);
    if (!rc) {
        s->size = (size_t)s->id.st_size;
        rc = owned ? shard_read_owned(s, fd, path) : shard_map(s, fd, path);
    }
    if (!rc) rc = rsclip_st_open_memory(s->mem ? s->mem : "", s->size, path, &s->st);
    if (!rc && s->mapped)
        s->fd = fd; /* kept for rsclip__ckpt_unchanged */
    else
        close(fd);
    return rc;
}

static void shard_close(rsclip__shard *s) {
    rsclip_st_close(s->st);
    if (s->mapped)
        munmap(s->mem, s->size);
    else
        free(s->mem);
    if (s->fd >= 0) close(s->fd);
    free(s->name);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

void rsclip__ckpt_close(rsclip__ckpt *c) {
    for (int i = 0; i < c->n; i++) shard_close(&c->shards[i]);
    free(c->shards);
    rsclip_json_free(c->index);
    memset(c, 0, sizeof *c);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The distinct shard names of the weight_map, sorted (fixes the order of the fingerprints). */
static int shard_names(rsclip__ckpt *c, char ***out, size_t *n_out) {
    size_t n = c->weight_map->len, nn = 0;
    char **names = rsclip__calloc(n ? n : 1, sizeof(char *));
    if (!names) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", c->index_path);
    for (size_t i = 0; i < n; i++) {
        const rsclip_json *v = &c->weight_map->items[i];
        if (v->type != RSCLIP_JSON_STRING || v->len == 0 || strchr(v->str, '/') ||
            strcmp(v->str, "..") == 0 || strcmp(v->str, ".") == 0) {
            free(names);
            return rsclip__error(RSCLIP_ERR_FORMAT,
                                 "%s: weight_map['%s'] must name a file in the same folder",
                                 c->index_path, c->weight_map->keys[i]);
        }
        names[nn++] = v->str;
    }
    qsort(names, nn, sizeof(char *), rsclip__cmp_str);
    size_t nu = 0;
    for (size_t i = 0; i < nn; i++)
        if (nu == 0 || strcmp(names[nu - 1], names[i]) != 0) names[nu++] = names[i];
    *out = names;
    *n_out = nu;
    return RSCLIP_OK;
}

static int open_files(rsclip__ckpt *c, const char *dir, char **names, size_t n, int owned) {
    c->shards = rsclip__calloc(n ? n : 1, sizeof *c->shards);
    if (!c->shards) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", dir);
    char path[4096 + 256];
    for (size_t i = 0; i < n; i++) {
        rsclip__shard *s = &c->shards[i];
        s->fd = -1;
        c->n++;
        if (!(s->name = rsclip__strdup(names[i])))
            return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int rc = shard_open(s, path, owned);
        if (rc) return rc;
    }
    return RSCLIP_OK;
}

static void fingerprints(rsclip__ckpt *c) {
    if (c->n == 1) {
        snprintf(c->fingerprint, sizeof c->fingerprint, "sha256:%s", c->shards[0].sha256);
        rsclip_st_fingerprint(c->shards[0].st, c->legacy);
        return;
    }
    rsclip__sha256 *h = rsclip__sha256_new();
    uint64_t fnv = RSCLIP__FNV_OFFSET; /* legacy: FNV-1a 64 over the shard fingerprints */
    for (int i = 0; i < c->n; i++) {
        char line[4096 + 80], fp[17];
        int len = snprintf(line, sizeof line, "%s  %s\n", c->shards[i].sha256, c->shards[i].name);
        rsclip__sha256_update(h, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        rsclip_st_fingerprint(c->shards[i].st, fp);
        fnv = rsclip__fnv1a(fnv, fp, 16);
    }
    char hex[65];
    rsclip__sha256_final(h, hex);
    snprintf(c->fingerprint, sizeof c->fingerprint, "sha256:%s", hex);
    snprintf(c->legacy, sizeof c->legacy, "%016llx", (unsigned long long)fnv);
}

int rsclip__ckpt_open(rsclip__ckpt *c, const char *dir, int owned) {
    char path[4096 + 64];
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc;
    if (file_exists(path)) {
        char *one = "model.safetensors";
        rc = open_files(c, dir, &one, 1, owned);
    } else {
        snprintf(c->index_path, sizeof c->index_path, "%s/model.safetensors.index.json", dir);
        if (!file_exists(c->index_path))
            return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                                 "%s: no model.safetensors or model.safetensors.index.json", dir);
        rc = rsclip_json_parse_file(c->index_path, INDEX_MAX_BYTES, &c->index);
        if (rc) return rc;
        c->weight_map = rsclip_json_get(c->index, "weight_map");
        if (!c->weight_map || c->weight_map->type != RSCLIP_JSON_OBJECT) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: no \"weight_map\" object", c->index_path);
        } else {
            char **names = NULL;
            size_t n = 0;
            rc = shard_names(c, &names, &n);
            if (!rc) rc = open_files(c, dir, names, n, owned);
            free(names);
        }
    }
    if (rc) {
        rsclip__ckpt_close(c);
        return rc;
    }
    fingerprints(c);
    return RSCLIP_OK;
}

const rsclip_st_tensor *rsclip__ckpt_find(const rsclip__ckpt *c, const char *name,
                                          const char **file) {
    const rsclip_st_file *f = c->shards[0].st;
    if (c->index) {
        const char *shard = rsclip_json_get_str(c->weight_map, name);
        *file = c->index_path;
        if (!shard) {
            rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: missing tensor '%s'", c->index_path, name);
            return NULL;
        }
        int lo = 0, hi = c->n - 1; /* every weight_map value was opened */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (strcmp(c->shards[mid].name, shard) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        f = c->shards[lo].st;
    }
    *file = rsclip_st_path(f);
    const rsclip_st_tensor *t = rsclip_st_find(f, name);
    if (!t) rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: missing tensor '%s'", *file, name);
    return t;
}

int rsclip__ckpt_unchanged(const rsclip__ckpt *c) {
    for (int i = 0; i < c->n; i++) {
        const rsclip__shard *s = &c->shards[i];
        struct stat now;
        if (s->fd >= 0 && (fstat(s->fd, &now) != 0 || !same_version(&now, &s->id)))
            return changed_error(rsclip_st_path(s->st), "while it was in use");
    }
    return RSCLIP_OK;
}
