/* Model snapshots from the Hugging Face hub (see rsclip/hub.h).
 *
 * Transfers go through GDAL's CPLHTTPFetchEx with a write callback, so bodies stream straight to
 * "<file>.part" on disk through libgdal's own curl (no new dependency, proxies and CA settings
 * from GDAL_HTTP_* apply). CPLHTTPFetchEx tells the response status and headers only after the
 * body, so every request is judged afterwards: the .part is cut back to what is known good
 * (error bodies, a 200 answer to a Range request) before the next attempt. */
#include "rsclip/hub.h"

#include "imageio/gdal_util.h"
#include "json/json.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_http.h>
#include <cpl_string.h>

#define HUB_PATH_MAX 4096
#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_INDEX_MAX_BYTES ((size_t)64 << 20)

const char *rsclip_hub_repo_id(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "base") == 0) return "lcybuaa/Git-RSCLIP-base";
    if (strcmp(name, "large") == 0) return "lcybuaa/Git-RSCLIP";
    return name;
}

static int name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* One path component as the hub spells names: [A-Za-z0-9._-]+, not starting with '.'. Names
 * come from the command line and from downloaded index files, so this is what keeps them inside
 * the destination folder. */
static int valid_component(const char *s, size_t n) {
    if (n == 0 || n > 255 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i])) return 0;
    return 1;
}

/* "owner/name" */
static int valid_repo_id(const char *repo) {
    const char *slash = strchr(repo, '/');
    if (!slash) return 0;
    return valid_component(repo, (size_t)(slash - repo)) &&
           valid_component(slash + 1, strlen(slash + 1));
}

static int path_join(char *out, size_t size, const char *a, const char *b) {
    int n = snprintf(out, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s/%s: path too long", a, b);
    return RSCLIP_OK;
}

int rsclip_hub_cache_dir(const char *repo_id, char *out, size_t out_size) {
    if (!repo_id || !out || out_size == 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_hub_cache_dir: NULL argument");
    const char *repo = rsclip_hub_repo_id(repo_id);
    if (!valid_repo_id(repo))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: not a model repo id (expected owner/name, or base or large)",
                             repo_id);
    const char *root = getenv("RSCLIP_CACHE");
    int n;
    if (root && root[0]) {
        n = snprintf(out, out_size, "%s/%s", root, repo);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0])
            n = snprintf(out, out_size, "%s/rsclip/models/%s", xdg, repo);
        else if (home && home[0])
            n = snprintf(out, out_size, "%s/.cache/rsclip/models/%s", home, repo);
        else
            return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                                 "%s: no cache folder (set RSCLIP_CACHE or HOME)", repo_id);
    }
    if (n < 0 || (size_t)n >= out_size)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: cache path too long", repo_id);
    return RSCLIP_OK;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int copy_out(const char *s, char *out, size_t out_size) {
    size_t n = strlen(s);
    if (!out || n >= out_size)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: path too long for the caller's buffer",
                             s);
    memcpy(out, s, n + 1);
    return RSCLIP_OK;
}

int rsclip_hub_resolve(const char *name, char *out_dir, size_t out_size) {
    if (!name || !name[0] || !out_dir)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_hub_resolve: empty model name");
    if (is_dir(name)) return copy_out(name, out_dir, out_size);
    struct stat st;
    if (stat(name, &st) == 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: not a folder; a model is a snapshot folder, base, large or a "
                             "repo id",
                             name);
    const char *repo = rsclip_hub_repo_id(name);
    if (!valid_repo_id(repo))
        return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                             "%s: no such model folder (a model is a snapshot folder, base, large "
                             "or a repo id owner/name)",
                             name);
    char dir[HUB_PATH_MAX], cfg[HUB_PATH_MAX];
    int rc = rsclip_hub_cache_dir(repo, dir, sizeof dir);
    if (rc) return rc;
    if ((rc = path_join(cfg, sizeof cfg, dir, "config.json"))) return rc;
    if (!is_file(cfg))
        return rsclip__error(
            RSCLIP_ERR_NOT_FOUND,
            "%s: model not found (no folder of that name, not in the cache at %s); "
            "run `rsclip model fetch %s` first",
            name, dir, name);
    return copy_out(dir, out_dir, out_size);
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char tmp[HUB_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: bad folder path", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create folder: %s", tmp,
                                 strerror(errno));
        tmp[i] = c;
    }
    if (!is_dir(path)) return rsclip__error(RSCLIP_ERR_IO, "%s: not a folder", path);
    return RSCLIP_OK;
}

/* ---- one file ---------------------------------------------------------------------------- */

typedef struct hub_req {
    const char *endpoint;
    const char *repo;
    const char *dir;
    rsclip_progress_fn progress;
    void *user;
} hub_req;

typedef struct fetch_ctx {
    int fd;
    uint64_t start;   /* offset of the first byte of this response in the .part */
    uint64_t written; /* body bytes of this response written so far */
    uint64_t total;   /* file size from the HEAD request, UINT64_MAX if unknown */
    int write_errno;
    int cancelled;
    const char *file;
    const hub_req *q;
} fetch_ctx;

static size_t write_cb(void *buf, size_t size, size_t nmemb, void *arg) {
    fetch_ctx *c = arg;
    const char *p = buf;
    size_t left = size * nmemb;
    while (left > 0) {
        ssize_t w = pwrite(c->fd, p, left, (off_t)(c->start + c->written));
        if (w < 0) {
            if (errno == EINTR) continue;
            c->write_errno = errno;
            return 0; /* makes curl stop with a write error */
        }
        p += w;
        left -= (size_t)w;
        c->written += (uint64_t)w;
    }
    return nmemb;
}

/* GDALProgressFunc: frac is this response's share; report the whole file's. */
static int CPL_STDCALL progress_cb(double frac, const char *msg, void *arg) {
    fetch_ctx *c = arg;
    (void)msg;
    if (!c->q->progress) return TRUE;
    double f = 0.0, done = (double)c->start + (double)c->written;
    if (c->total != UINT64_MAX && c->total > 0)
        f = done / (double)c->total;
    else if (frac > 0.0 && c->written > 0)
        f = done / ((double)c->start + (double)c->written / frac);
    if (f > 1.0) f = 1.0;
    if (!c->q->progress(f, c->file, c->q->user)) {
        c->cancelled = 1;
        return FALSE;
    }
    return TRUE;
}

/* Value of the last response header `key` (case-insensitive), so that headers of a redirect
 * (which CPLHTTPFetchEx also collects) do not shadow those of the final response. */
static const char *last_header(char **headers, const char *key) {
    const char *v = NULL;
    size_t kl = strlen(key);
    for (char **h = headers; h && *h; h++) {
        if (strncasecmp(*h, key, kl) == 0 && ((*h)[kl] == '=' || (*h)[kl] == ':')) {
            v = *h + kl + 1;
            while (*v == ' ') v++;
        }
    }
    return v;
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return 0;
    *out = v;
    return 1;
}

/* "bytes A-B/T", or "bytes *\/T" in a 416. Missing parts stay UINT64_MAX. */
static void parse_content_range(const char *s, uint64_t *first, uint64_t *total) {
    *first = *total = UINT64_MAX;
    if (!s || strncasecmp(s, "bytes", 5) != 0) return;
    s += 5;
    while (*s == ' ') s++;
    parse_u64(s, first);
    const char *slash = strchr(s, '/');
    if (slash) parse_u64(slash + 1, total);
}

static int truncate_to(int fd, uint64_t size, const char *part) {
    if (ftruncate(fd, (off_t)size) != 0)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot truncate: %s", part, strerror(errno));
    return RSCLIP_OK;
}

/* What one CPLHTTPFetchEx call ended with. */
typedef struct http_outcome {
    int code;        /* HTTP status when >= 400 (GDAL reports no other), else 0 */
    int failed;      /* the transfer itself failed (connection, timeout, write, abort) */
    uint64_t length; /* last Content-Length, UINT64_MAX if none */
    uint64_t range_first, range_total; /* last Content-Range, UINT64_MAX if none */
    char err[512];                     /* curl's or GDAL's message, one line */
} http_outcome;

/* One request through GDAL's curl. c == NULL: HEAD request. Else GET whose body goes to c->fd at
 * c->start, with "Range: bytes=<c->start>-" when c->start > 0. */
static void http_request(const char *url, fetch_ctx *c, http_outcome *o) {
    char headers[1024] = "";
    size_t hl = 0;
    const char *token = getenv("HF_TOKEN");
    for (const char *t = token; t && *t; t++)
        if ((unsigned char)*t < 0x21 || *t == 0x7f) token = NULL; /* no header injection */
    if (token && token[0])
        hl = (size_t)snprintf(headers, sizeof headers, "Authorization: Bearer %s", token);
    if (c && c->start > 0 && hl < sizeof headers)
        snprintf(headers + hl, sizeof headers - hl, "%sRange: bytes=%llu-", hl ? "\r\n" : "",
                 (unsigned long long)c->start);
    char **opts = NULL;
    if (headers[0]) opts = CSLSetNameValue(opts, "HEADERS", headers);
    if (!c) opts = CSLSetNameValue(opts, "NO_BODY", "YES");
    /* A failed attempt must not be retried inside GDAL: its body would follow the bytes already
     * written. Stalls end the transfer instead of hanging it. */
    opts = CSLSetNameValue(opts, "MAX_RETRY", "0");
    if (!CPLGetConfigOption("GDAL_HTTP_CONNECTTIMEOUT", NULL))
        opts = CSLSetNameValue(opts, "CONNECTTIMEOUT", "30");
    if (!CPLGetConfigOption("GDAL_HTTP_LOW_SPEED_TIME", NULL)) {
        opts = CSLSetNameValue(opts, "LOW_SPEED_TIME", "60");
        opts = CSLSetNameValue(opts, "LOW_SPEED_LIMIT", "1");
    }

    /* Byte counts must be the file's: no transparent gzip. */
    char *old_gzip = NULL;
    const char *g = CPLGetThreadLocalConfigOption("CPL_CURL_GZIP", NULL);
    if (g) old_gzip = CPLStrdup(g);
    CPLSetThreadLocalConfigOption("CPL_CURL_GZIP", "NO");
    rsclip__gdal_errors errs;
    rsclip__gdal_errors_push(&errs);
    CPLHTTPResult *r =
        c ? CPLHTTPFetchEx(url, opts, progress_cb, c, write_cb, c) : CPLHTTPFetch(url, opts);
    rsclip__gdal_errors_pop(&errs);
    CPLSetThreadLocalConfigOption("CPL_CURL_GZIP", old_gzip);
    CPLFree(old_gzip);
    CSLDestroy(opts);

    memset(o, 0, sizeof *o);
    o->length = o->range_first = o->range_total = UINT64_MAX;
    if (!r) {
        o->failed = 1;
        snprintf(o->err, sizeof o->err, "%s", errs.msg[0] ? errs.msg : "HTTP is not available");
        return;
    }
    if (r->pszErrBuf && sscanf(r->pszErrBuf, "HTTP error code : %d", &o->code) != 1) o->code = 0;
    o->failed = r->nStatus != 0 && o->code == 0;
    const char *cl = last_header(r->papszHeaders, "Content-Length");
    if (cl) parse_u64(cl, &o->length);
    parse_content_range(last_header(r->papszHeaders, "Content-Range"), &o->range_first,
                        &o->range_total);
    snprintf(o->err, sizeof o->err, "%s", r->pszErrBuf ? r->pszErrBuf : errs.msg);
    for (char *p = o->err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    CPLHTTPDestroyResult(r);
}

/* The GET loop on an open .part holding `have` good bytes. */
static int download(const char *url, const char *file, const char *part, int fd, uint64_t have,
                    uint64_t total, const hub_req *q) {
    int restarts = 0;
    for (;;) {
        if (total != UINT64_MAX && have == total) return truncate_to(fd, have, part);
        if (total != UINT64_MAX && have > total) {
            if (truncate_to(fd, 0, part)) return RSCLIP_ERR_IO;
            have = 0;
        }
        fetch_ctx c = {fd, have, 0, total, 0, 0, file, q};
        if (q->progress &&
            !q->progress(total && total != UINT64_MAX ? (double)have / total : 0.0, file, q->user))
            c.cancelled = 1;
        http_outcome o;
        if (!c.cancelled) http_request(url, &c, &o);
        if (c.cancelled) {
            truncate_to(fd, have + c.written, part);
            return rsclip__error(RSCLIP_ERR_CANCELLED, "%s: download cancelled (kept %s)", file,
                                 part);
        }
        if (c.write_errno)
            return rsclip__error(RSCLIP_ERR_IO, "%s: write failed: %s", part,
                                 strerror(c.write_errno));
        if (o.code == 416 && have > 0 && restarts == 0) {
            /* Asked for bytes past the end: the .part may already be whole. */
            if (o.range_total == have) return truncate_to(fd, have, part);
            if (truncate_to(fd, 0, part)) return RSCLIP_ERR_IO;
            have = 0;
            restarts++;
            continue;
        }
        if (o.code != 0) {
            truncate_to(fd, have, part); /* drop the error page */
            return rsclip__error(o.code == 404 ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_NETWORK,
                                 "%s: HTTP error %d from %s", file, o.code, url);
        }
        int partial = o.range_first != UINT64_MAX; /* a 206: the body starts at range_first */
        if (have > 0 && (!partial || o.range_first != have)) {
            /* The server ignored (or misread) the Range request and sent the file from its
             * start, now written at the wrong offset: start over from byte 0, once. */
            if (truncate_to(fd, 0, part)) return RSCLIP_ERR_IO;
            have = 0;
            if (restarts++ > 0)
                return rsclip__error(RSCLIP_ERR_NETWORK,
                                     "%s: the server does not honour Range requests (%s)", file,
                                     url);
            rsclip__log(RSCLIP_LOG_INFO, "%s: the server ignored the resume request; restarting",
                        file);
            continue;
        }
        uint64_t size = have + c.written;
        uint64_t expect = partial ? o.range_total : o.length;
        if (expect == UINT64_MAX) expect = total;
        if (o.failed) {
            if (size == 0)
                return rsclip__error(RSCLIP_ERR_NETWORK, "%s: download failed: %s (%s)", file,
                                     o.err, url);
            if (expect != UINT64_MAX)
                return rsclip__error(RSCLIP_ERR_NETWORK,
                                     "%s: transfer interrupted after %llu of %llu bytes (%s); run "
                                     "the command again to resume from %s",
                                     file, (unsigned long long)size, (unsigned long long)expect,
                                     o.err, part);
            return rsclip__error(RSCLIP_ERR_NETWORK,
                                 "%s: transfer interrupted after %llu bytes (%s); run the command "
                                 "again to resume from %s",
                                 file, (unsigned long long)size, o.err, part);
        }
        if (expect != UINT64_MAX && size != expect) {
            /* Longer than announced cannot be repaired by resuming: start afresh next time. */
            if (size > expect) truncate_to(fd, 0, part);
            return rsclip__error(RSCLIP_ERR_NETWORK,
                                 "%s: got %llu bytes, the server announced %llu (%s)", file,
                                 (unsigned long long)size, (unsigned long long)expect, url);
        }
        return truncate_to(fd, size, part);
    }
}

/* Download one file of the snapshot into dir/file (via dir/file.part); a file already there is
 * kept. RSCLIP_ERR_NOT_FOUND when the hub answers 404 (nothing is written then). */
static int fetch_file(const hub_req *q, const char *file) {
    char dest[HUB_PATH_MAX], part[HUB_PATH_MAX + 8], url[HUB_PATH_MAX];
    int rc = path_join(dest, sizeof dest, q->dir, file);
    if (rc) return rc;
    snprintf(part, sizeof part, "%s.part", dest);
    int n = snprintf(url, sizeof url, "%s/%s/resolve/main/%s", q->endpoint, q->repo, file);
    if (n < 0 || (size_t)n >= sizeof url)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: URL too long", file);
    if (is_file(dest)) {
        rsclip__log(RSCLIP_LOG_INFO, "%s: already present, not downloaded again", dest);
        return RSCLIP_OK;
    }
    rsclip__gdal_init();

    /* HEAD first: existence and size before anything touches the disk (GDAL tells a GET's
     * status only after its body has been written). Servers without HEAD get a plain GET. */
    http_outcome head;
    http_request(url, NULL, &head);
    if (head.code == 404)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: not found (HTTP 404 from %s)", file, url);
    if (head.failed)
        return rsclip__error(RSCLIP_ERR_NETWORK, "%s: cannot reach %s: %s", file, url, head.err);
    if (head.code != 0 && head.code != 405 && head.code != 501)
        return rsclip__error(RSCLIP_ERR_NETWORK, "%s: HTTP error %d from %s", file, head.code, url);
    uint64_t total = head.code == 0 ? head.length : UINT64_MAX;

    int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open: %s", part, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: %s", part, strerror(errno));
        close(fd);
        return rc;
    }
    rc = download(url, file, part, fd, (uint64_t)st.st_size, total, q);
    if (rc == RSCLIP_OK && fsync(fd) != 0)
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: %s", part, strerror(errno));
    int empty = fstat(fd, &st) == 0 && st.st_size == 0;
    close(fd);
    if (rc != RSCLIP_OK) {
        if (empty && rc != RSCLIP_ERR_CANCELLED) unlink(part); /* nothing to resume */
        return rc;
    }
    if (rename(part, dest) != 0)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot rename to %s: %s", part, dest,
                             strerror(errno));
    if (q->progress) q->progress(1.0, file, q->user);
    return RSCLIP_OK;
}

/* The shard names of model.safetensors.index.json's weight_map, each once, in first-seen order. */
static int fetch_shards(const hub_req *q) {
    char index[HUB_PATH_MAX];
    int rc = path_join(index, sizeof index, q->dir, "model.safetensors.index.json");
    if (rc) return rc;
    rsclip_json *root = NULL;
    if ((rc = rsclip_json_parse_file(index, HUB_INDEX_MAX_BYTES, &root))) return rc;
    const rsclip_json *map = rsclip_json_get(root, "weight_map");
    if (!map || map->type != RSCLIP_JSON_OBJECT || map->len == 0) {
        rsclip_json_free(root);
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: no weight_map object", index);
    }
    for (size_t i = 0; i < map->len && rc == RSCLIP_OK; i++) {
        const rsclip_json *v = &map->items[i];
        if (v->type != RSCLIP_JSON_STRING || !valid_component(v->str, strlen(v->str))) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: weight_map[\"%s\"] is not a file name",
                               index, map->keys[i]);
            break;
        }
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = strcmp(map->items[j].str, v->str) == 0;
        if (!seen) rc = fetch_file(q, v->str);
    }
    rsclip_json_free(root);
    return rc;
}

int rsclip_hub_fetch(const char *name, const char *dest_dir, rsclip_progress_fn progress,
                     void *user, char *out_dir, size_t out_size) {
    if (!name || !name[0])
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_hub_fetch: empty model name");
    const char *repo = rsclip_hub_repo_id(name);
    if (!valid_repo_id(repo))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: not a model repo id (expected owner/name, or base or large)",
                             name);
    char dir[HUB_PATH_MAX];
    int rc;
    if (dest_dir) {
        if (strlen(dest_dir) >= sizeof dir)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: path too long", dest_dir);
        strcpy(dir, dest_dir);
    } else if ((rc = rsclip_hub_cache_dir(repo, dir, sizeof dir))) {
        return rc;
    }
    if ((rc = make_dirs(dir))) return rc;

    char endpoint[1024];
    const char *ep = getenv("HF_ENDPOINT");
    snprintf(endpoint, sizeof endpoint, "%s", ep && ep[0] ? ep : HUB_DEFAULT_ENDPOINT);
    for (size_t n = strlen(endpoint); n > 0 && endpoint[n - 1] == '/'; n--) endpoint[n - 1] = '\0';

    /* One fetch per folder at a time: two would write the same .part files. */
    char lock_path[HUB_PATH_MAX];
    if ((rc = path_join(lock_path, sizeof lock_path, dir, ".rsclip-fetch.lock"))) return rc;
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open: %s", lock_path, strerror(errno));
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        close(lock);
        return rsclip__error(RSCLIP_ERR_IO, "%s: another rsclip is downloading into this folder",
                             dir);
    }

    hub_req q = {endpoint, repo, dir, progress, user};
    static const char *const required_first[] = {"config.json"};
    static const char *const optional[] = {"preprocessor_config.json", "tokenizer_config.json",
                                           "special_tokens_map.json"};
    rc = fetch_file(&q, required_first[0]);
    if (rc == RSCLIP_ERR_NOT_FOUND)
        rsclip__error(RSCLIP_ERR_NOT_FOUND,
                      "%s: config.json not found at %s/%s (is the repo id "
                      "right?)",
                      name, endpoint, repo);
    for (size_t i = 0; rc == RSCLIP_OK && i < sizeof optional / sizeof optional[0]; i++) {
        rc = fetch_file(&q, optional[i]);
        if (rc == RSCLIP_ERR_NOT_FOUND) rc = RSCLIP_OK; /* defaults apply */
    }
    if (rc == RSCLIP_OK) rc = fetch_file(&q, "spiece.model");
    if (rc == RSCLIP_OK) {
        char index[HUB_PATH_MAX];
        if ((rc = path_join(index, sizeof index, dir, "model.safetensors.index.json")) == 0) {
            if (!is_file(index)) rc = fetch_file(&q, "model.safetensors");
            if (rc == RSCLIP_ERR_NOT_FOUND || is_file(index)) {
                rc = fetch_file(&q, "model.safetensors.index.json");
                if (rc == RSCLIP_ERR_NOT_FOUND)
                    rsclip__error(RSCLIP_ERR_NOT_FOUND,
                                  "%s: neither model.safetensors nor model.safetensors.index.json "
                                  "found at %s/%s",
                                  name, endpoint, repo);
                else if (rc == RSCLIP_OK)
                    rc = fetch_shards(&q);
            }
        }
    }
    close(lock);
    unlink(lock_path);
    if (rc) return rc;
    if (out_dir) return copy_out(dir, out_dir, out_size);
    return RSCLIP_OK;
}
