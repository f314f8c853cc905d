/* SHA-256 of weight files and the digest cache (see digest.h). */
#include "base/base.h"
#include "model/digest.h"

#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CACHE_HEADER "rsclip sha256 digests 1\n"
#define CACHE_MAX_ENTRIES 256
#define CACHE_MAX_BYTES (64 * 1024)
#define RACY_SECONDS 1.0

/* ---- SHA-256 --------------------------------------------------------------------------------- */

struct rsclip__sha256 {
    EVP_MD_CTX *ctx;
};

static void to_hex(const unsigned char *md, char out[RSCLIP__SHA256_HEX]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void rsclip__sha256_hex(const void *p, size_t n, char out[RSCLIP__SHA256_HEX]) {
    unsigned char md[32];
    unsigned int len = 0;
    if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32) memset(md, 0, sizeof md);
    to_hex(md, out);
}

rsclip__sha256 *rsclip__sha256_new(void) {
    rsclip__sha256 *h = rsclip__calloc(1, sizeof *h);
    if (!h) return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void rsclip__sha256_update(rsclip__sha256 *h, const void *p, size_t n) {
    if (h && n) EVP_DigestUpdate(h->ctx, p, n);
}

void rsclip__sha256_final(rsclip__sha256 *h, char out[RSCLIP__SHA256_HEX]) {
    unsigned char md[32];
    unsigned int len = 0;
    if (!h || !EVP_DigestFinal_ex(h->ctx, md, &len) || len != 32) memset(md, 0, sizeof md);
    to_hex(md, out);
    if (h) EVP_MD_CTX_free(h->ctx);
    free(h);
}

int rsclip__sha256_fd(int fd, const char *path, off_t size, char out[RSCLIP__SHA256_HEX]) {
    const size_t chunk = (size_t)4 << 20;
    unsigned char *buf = rsclip__malloc(chunk);
    rsclip__sha256 *h = rsclip__sha256_new();
    if (!buf || !h) {
        free(buf);
        rsclip__sha256_final(h, out);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    }
    off_t off = 0;
    int rc = RSCLIP_OK;
    while (off < size) {
        size_t want = (size_t)(size - off) < chunk ? (size_t)(size - off) : chunk;
        ssize_t r = pread(fd, buf, want, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = rsclip__error(RSCLIP_ERR_IO, "%s: read failed at byte %lld: %s", path,
                               (long long)off, r < 0 ? strerror(errno) : "the file got shorter");
            break;
        }
        rsclip__sha256_update(h, buf, (size_t)r);
        off += r;
    }
    rsclip__sha256_final(h, out);
    free(buf);
    return rc;
}

/* ---- the cache file -------------------------------------------------------------------------- */

typedef struct entry {
    uint64_t dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns;
    char hex[RSCLIP__SHA256_HEX];
} entry;

double rsclip__digest_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void entry_of(const struct stat *st, entry *e) {
    memset(e, 0, sizeof *e);
    e->dev = (uint64_t)st->st_dev;
    e->ino = (uint64_t)st->st_ino;
    e->size = (uint64_t)st->st_size;
    e->mtime_s = (uint64_t)st->st_mtim.tv_sec;
    e->mtime_ns = (uint64_t)st->st_mtim.tv_nsec;
    e->ctime_s = (uint64_t)st->st_ctim.tv_sec;
    e->ctime_ns = (uint64_t)st->st_ctim.tv_nsec;
}

static int same_version(const entry *a, const entry *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
           a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* The folder and file names; 0 if there is no cache folder (no HOME). */
static int cache_paths(char *dir, size_t dn, char *file, size_t fn) {
    const char *r = getenv("RSCLIP_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (r && r[0])
        n = snprintf(dir, dn, "%s", r);
    else if (x && x[0])
        n = snprintf(dir, dn, "%s/rsclip", x);
    else if (h && h[0])
        n = snprintf(dir, dn, "%s/.cache/rsclip", h);
    else
        return 0;
    if (n < 0 || (size_t)n >= dn) return 0;
    n = snprintf(file, fn, "%s/.sha256-digests", dir);
    return n > 0 && (size_t)n < fn;
}

static int is_hex64(const char *s) {
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == '\0';
}

/* Parse the whole cache file; any malformed byte distrusts it all (*n = 0). */
static void parse_cache(const char *text, entry *v, size_t *n) {
    *n = 0;
    size_t hl = strlen(CACHE_HEADER);
    if (strncmp(text, CACHE_HEADER, hl) != 0) return;
    const char *p = text + hl;
    size_t k = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol || k == CACHE_MAX_ENTRIES || (size_t)(eol - p) > 200) return;
        char line[256], hex[80], tail;
        memcpy(line, p, (size_t)(eol - p));
        line[eol - p] = '\0';
        entry *e = &v[k];
        int got = sscanf(line,
                         "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 ".%9" SCNu64 " %" SCNu64
                         ".%9" SCNu64 " %79s%c",
                         &e->dev, &e->ino, &e->size, &e->mtime_s, &e->mtime_ns, &e->ctime_s,
                         &e->ctime_ns, hex, &tail);
        if (got != 8 || strlen(hex) != 64 || !is_hex64(hex) || strpbrk(line, "+-") ||
            line[0] < '0' || line[0] > '9')
            return;
        memcpy(e->hex, hex, RSCLIP__SHA256_HEX);
        k++;
        p = eol + 1;
    }
    *n = k;
}

/* Read and parse the cache; v has room for CACHE_MAX_ENTRIES. */
static void read_cache(const char *file, entry *v, size_t *n) {
    *n = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return;
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        st.st_size <= CACHE_MAX_BYTES && (text = rsclip__malloc((size_t)st.st_size + 1))) {
        ssize_t r = pread(fd, text, (size_t)st.st_size, 0);
        if (r == st.st_size) {
            text[r] = '\0';
            if (strlen(text) == (size_t)r) parse_cache(text, v, n);
        }
    }
    free(text);
    close(fd);
}

int rsclip__digest_lookup(const struct stat *st, char out[RSCLIP__SHA256_HEX]) {
    char dir[4096], file[4200];
    if (!cache_paths(dir, sizeof dir, file, sizeof file)) return 0;
    entry *v = rsclip__malloc(CACHE_MAX_ENTRIES * sizeof *v), key;
    if (!v) return 0;
    size_t n;
    read_cache(file, v, &n);
    entry_of(st, &key);
    int found = 0;
    for (size_t i = n; i-- > 0 && !found;)
        if (same_version(&v[i], &key)) {
            memcpy(out, v[i].hex, RSCLIP__SHA256_HEX);
            found = 1;
        }
    free(v);
    return found;
}

/* mkdir -p, quietly. */
static void make_dirs(const char *path) {
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char c = tmp[i];
        tmp[i] = '\0';
        (void)mkdir(tmp, 0755);
        tmp[i] = c;
    }
}

static int write_cache(const char *dir, const char *file, const entry *v, size_t n) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s/.sha256-digests.XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) return 1;
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return 1;
    }
    int bad = fputs(CACHE_HEADER, f) < 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad = fprintf(f,
                      "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 ".%09" PRIu64 " %" PRIu64
                      ".%09" PRIu64 " %s\n",
                      v[i].dev, v[i].ino, v[i].size, v[i].mtime_s, v[i].mtime_ns, v[i].ctime_s,
                      v[i].ctime_ns, v[i].hex) < 0;
    if (fclose(f) != 0) bad = 1;
    if (!bad && rename(tmp, file) != 0) bad = 1;
    if (bad) unlink(tmp);
    return bad;
}

void rsclip__digest_store(const struct stat *st, const char *hex, double hash_started) {
    if (!is_hex64(hex)) return;
    double ctime = (double)st->st_ctim.tv_sec + st->st_ctim.tv_nsec * 1e-9;
    if (hash_started > 0 && ctime > hash_started - RACY_SECONDS) {
        rsclip__log(RSCLIP_LOG_DEBUG, "weights digest not cached: the file changed %.1f s before",
                    hash_started - ctime);
        return;
    }
    char dir[4096], file[4200];
    if (!cache_paths(dir, sizeof dir, file, sizeof file)) return;
    entry *v = rsclip__malloc((CACHE_MAX_ENTRIES + 1) * sizeof *v);
    if (!v) return;
    size_t n, k = 0;
    read_cache(file, v, &n);
    entry e;
    entry_of(st, &e);
    memcpy(e.hex, hex, RSCLIP__SHA256_HEX);
    /* drop older versions of the same file, keep the newest entries */
    for (size_t i = 0; i < n; i++)
        if (!(v[i].dev == e.dev && v[i].ino == e.ino)) v[k++] = v[i];
    v[k++] = e;
    size_t first = k > CACHE_MAX_ENTRIES ? k - CACHE_MAX_ENTRIES : 0;
    make_dirs(dir);
    if (write_cache(dir, file, v + first, k - first))
        rsclip__log(RSCLIP_LOG_DEBUG, "%s: cannot write the weights digest cache: %s", file,
                    strerror(errno));
    free(v);
}
