/* Model snapshots from the Hugging Face hub (see rsclip/hub.h): names, cache folders, `-m`
 * resolution, and the fetch of a whole snapshot. One file's download is hub_file.c, the HTTP
 * requests (GDAL's CPL HTTP, i.e. libgdal's curl) hub_http.c. */
#include "base/base.h"
#include "hub/hub_internal.h"

#include "json/json.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_INDEX_MAX_BYTES ((size_t)64 << 20)
#define HUB_DEFAULT_MAX_BYTES ((uint64_t)64 << 30)
#define HUB_DEFAULT_TIMEOUT_S (24.0 * 3600.0)

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
        if (!seen) rc = rsclip__hub_fetch_file(q, v->str);
    }
    rsclip_json_free(root);
    return rc;
}

rsclip_hub_fetch_params rsclip_hub_fetch_default_params(void) {
    rsclip_hub_fetch_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* "123", "64K", "1.5G" (powers of 1024); 0 on anything else. */
static uint64_t parse_bytes(const char *s) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return 0;
    const char *units = "KMGT";
    const char *u = *end ? strchr(units, *end) : NULL;
    if (*end && (!u || end[1] != '\0')) return 0;
    if (u) v *= pow(1024.0, (double)(u - units + 1));
    return v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
}

/* The cap and deadline of params, else of the environment, else the defaults. */
static int fetch_bounds(const rsclip_hub_fetch_params *p, uint64_t *max_bytes, double *timeout) {
    *max_bytes = p->max_bytes;
    const char *e = getenv("RSCLIP_FETCH_MAX_BYTES");
    if (!*max_bytes && e && e[0] && !(*max_bytes = parse_bytes(e)))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "RSCLIP_FETCH_MAX_BYTES=%s: not a size (bytes, or with K, M, G, T)",
                             e);
    if (!*max_bytes) *max_bytes = HUB_DEFAULT_MAX_BYTES;
    *timeout = p->timeout_s;
    e = getenv("RSCLIP_FETCH_TIMEOUT");
    if (*timeout == 0 && e && e[0]) {
        char *end;
        *timeout = strtod(e, &end);
        if (end == e || *end || !(*timeout > 0))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "RSCLIP_FETCH_TIMEOUT=%s: not a number of seconds > 0", e);
    }
    if (*timeout == 0) *timeout = HUB_DEFAULT_TIMEOUT_S;
    return RSCLIP_OK;
}

/* The folder's lock file, opened without following a link planted there. */
static int open_lock(const char *path) {
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) return fd;
        if (fd >= 0) close(fd);
        if (fd < 0 && errno != ELOOP) break;
        unlink(path); /* a link or something else: never ours */
    }
    return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
}

/* Every file of the snapshot, in order. */
static int fetch_all(const hub_req *q, const char *name) {
    static const char *const optional[] = {"preprocessor_config.json", "tokenizer_config.json",
                                           "special_tokens_map.json"};
    int rc = rsclip__hub_fetch_file(q, "config.json");
    if (rc == RSCLIP_ERR_NOT_FOUND)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                             "%s: config.json not found at %s/%s (is the repo id right?)", name,
                             q->endpoint, q->repo);
    for (size_t i = 0; rc == RSCLIP_OK && i < sizeof optional / sizeof optional[0]; i++) {
        rc = rsclip__hub_fetch_file(q, optional[i]);
        if (rc == RSCLIP_ERR_NOT_FOUND) rc = RSCLIP_OK; /* defaults apply */
    }
    if (rc == RSCLIP_OK) rc = rsclip__hub_fetch_file(q, "spiece.model");
    if (rc) return rc;
    char index[HUB_PATH_MAX];
    if ((rc = path_join(index, sizeof index, q->dir, "model.safetensors.index.json"))) return rc;
    if (!is_file(index)) rc = rsclip__hub_fetch_file(q, "model.safetensors");
    if (rc == RSCLIP_ERR_NOT_FOUND || is_file(index)) {
        rc = rsclip__hub_fetch_file(q, "model.safetensors.index.json");
        if (rc == RSCLIP_ERR_NOT_FOUND)
            return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                                 "%s: neither model.safetensors nor model.safetensors.index.json "
                                 "found at %s/%s",
                                 name, q->endpoint, q->repo);
        if (rc == RSCLIP_OK) rc = fetch_shards(q);
    }
    return rc;
}

int rsclip_hub_fetch_ex(const char *name, const char *dest_dir,
                        const rsclip_hub_fetch_params *params, char *out_dir, size_t out_size) {
    if (!name || !name[0])
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_hub_fetch: empty model name");
    const char *repo = rsclip_hub_repo_id(name);
    if (!valid_repo_id(repo))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: not a model repo id (expected owner/name, or base or large)",
                             name);
    rsclip_hub_fetch_params p = params ? *params : rsclip_hub_fetch_default_params();
    uint64_t max_bytes = 0;
    double timeout = 0;
    int rc = fetch_bounds(&p, &max_bytes, &timeout);
    if (rc) return rc;
    char dir[HUB_PATH_MAX];
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
    int lock = open_lock(lock_path);
    if (lock < 0) return rsclip_last_status();
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        close(lock);
        return rsclip__error(RSCLIP_ERR_IO, "%s: another rsclip is downloading into this folder",
                             dir);
    }
    hub_req q = {endpoint, repo, dir, p.progress, p.user, max_bytes, 0, timeout};
    if (timeout > 0) q.deadline = rsclip__mono_s() + timeout;
    rc = fetch_all(&q, name);
    unlink(lock_path);
    close(lock);
    if (rc) return rc;
    if (out_dir) return copy_out(dir, out_dir, out_size);
    return RSCLIP_OK;
}

int rsclip_hub_fetch(const char *name, const char *dest_dir, rsclip_progress_fn progress,
                     void *user, char *out_dir, size_t out_size) {
    rsclip_hub_fetch_params p = rsclip_hub_fetch_default_params();
    p.progress = progress;
    p.user = user;
    return rsclip_hub_fetch_ex(name, dest_dir, &p, out_dir, out_size);
}
