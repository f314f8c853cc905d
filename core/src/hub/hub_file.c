/* One file of a snapshot: downloaded into "<file>.part", verified, renamed into place (see
 * rsclip/hub.h for the rules). "<file>.part.meta" records which upstream version the .part holds:
 *     rsclip-part 1
 *     identity <X-Linked-Etag or ETag the hub listed>
 *     validator <ETag of the server that sent the bytes, sent back as If-Range>
 * A .part without a matching record is never resumed. */
#include "hub/hub_internal.h"

#include "json/json.h"
#include "model/digest.h"
#include "gdal/gdal_util.h"
#include "rsclip/safetensors.h"
#include "rsclip/tokenizer.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_MAX_BYTES ((size_t)64 << 20)
#define META_MAX_BYTES 2048

/* ---- content ------------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int check_content(const char *path, const char *file) {
    int rc = RSCLIP_OK;
    if (ends_with(file, ".safetensors")) {
        rsclip_st_file *f = NULL;
        rc = rsclip_st_open(path, &f); /* header, dtypes, every tensor inside the file */
        rsclip_st_close(f);
    } else if (ends_with(file, ".json")) {
        rsclip_json *root = NULL;
        rc = rsclip_json_parse_file(path, JSON_MAX_BYTES, &root);
        if (!rc && root->type != RSCLIP_JSON_OBJECT)
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a JSON object", path);
        if (!rc && strcmp(file, "model.safetensors.index.json") == 0) {
            const rsclip_json *map = rsclip_json_get(root, "weight_map");
            if (!map || map->type != RSCLIP_JSON_OBJECT || map->len == 0)
                rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: no weight_map object", path);
        }
        rsclip_json_free(root);
    } else if (strcmp(file, "spiece.model") == 0) {
        rsclip_tokenizer_params tp = rsclip_tokenizer_default_params();
        rsclip_tokenizer *tok = NULL;
        rc = rsclip_tokenizer_load(path, &tp, &tok);
        rsclip_tokenizer_free(tok);
    }
    return rc;
}

/* ---- the .part file and its record ---------------------------------------------------------- */

typedef struct part_meta {
    char identity[HUB_TAG_MAX];
    char validator[HUB_TAG_MAX];
} part_meta;

/* 0 and *m filled when path holds a well-formed record. */
static int meta_read(const char *path, part_meta *m) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return 1;
    char buf[META_MAX_BYTES + 1];
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= META_MAX_BYTES)
        n = pread(fd, buf, META_MAX_BYTES, 0);
    close(fd);
    if (n <= 0) return 1;
    buf[n] = '\0';
    const char *id = strstr(buf, "\nidentity "), *va = strstr(buf, "\nvalidator ");
    if (strncmp(buf, "rsclip-part 1\n", 14) != 0 || !id || !va) return 1;
    const char *ide = strchr(id + 10, '\n'), *vae = strchr(va + 11, '\n');
    if (!ide || !vae || ide - (id + 10) >= HUB_TAG_MAX || vae - (va + 11) >= HUB_TAG_MAX) return 1;
    memcpy(m->identity, id + 10, (size_t)(ide - (id + 10)));
    memcpy(m->validator, va + 11, (size_t)(vae - (va + 11)));
    return 0;
}

/* Write the record atomically (a temporary file in the folder, renamed over path: a link
 * planted at path is replaced, never followed). */
static int meta_write(const hub_req *q, const char *path, const part_meta *m) {
    char tmp[HUB_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s/.rsclip-meta.XXXXXX", q->dir);
    int fd = mkstemp(tmp);
    if (fd < 0) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    (void)fchmod(fd, 0644);
    char text[2 * HUB_TAG_MAX + 64];
    int n = snprintf(text, sizeof text, "rsclip-part 1\nidentity %s\nvalidator %s\n", m->identity,
                     m->validator);
    int bad = write(fd, text, (size_t)n) != n;
    if (close(fd) != 0) bad = 1;
    if (!bad && rename(tmp, path) != 0) bad = 1;
    if (bad) {
        int e = errno;
        unlink(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return RSCLIP_OK;
}

/* Open the .part for writing without following links: create it, or reuse our own regular file
 * (one link, ours). Anything else there (a symbolic link, a hard link to another file, a FIFO,
 * another user's file) is removed, never written through. */
static int part_open(const char *part, int *fd_out, uint64_t *size) {
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *fd_out = fd;
            *size = 0;
            return RSCLIP_OK;
        }
        if (errno != EEXIST)
            return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create: %s", part, strerror(errno));
        fd = open(part, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
            st.st_uid == geteuid()) {
            *fd_out = fd;
            *size = (uint64_t)st.st_size;
            return RSCLIP_OK;
        }
        if (fd >= 0) close(fd);
        rsclip__log(RSCLIP_LOG_WARN,
                    "%s: not a partial download of ours (a link or another "
                    "file): removed, not followed",
                    part);
        if (unlink(part) != 0 && errno != ENOENT)
            return rsclip__error(RSCLIP_ERR_IO, "%s: cannot remove: %s", part, strerror(errno));
    }
    return rsclip__error(RSCLIP_ERR_IO, "%s: keeps being replaced by something else", part);
}

static int truncate_to(int fd, uint64_t size, const char *part) {
    if (ftruncate(fd, (off_t)size) != 0)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot truncate: %s", part, strerror(errno));
    return RSCLIP_OK;
}

/* ---- the transfer --------------------------------------------------------------------------- */

/* Everything one file's download works on. */
typedef struct dl {
    const hub_req *q;
    const char *file, *url;
    char part[HUB_PATH_MAX + 8], meta[HUB_PATH_MAX + 16];
    int fd;
    uint64_t have;   /* good bytes in the .part */
    uint64_t size;   /* expected size, HUB_UNKNOWN if unknown */
    char sha256[65]; /* expected SHA-256, "" if unknown */
    part_meta pm;    /* the version the .part holds */
} dl;

/* The expectations an answer announces (the answer that sent the bytes has the last word). */
static void learn(dl *d, const http_outcome *o, int partial) {
    if (o->sha256[0]) memcpy(d->sha256, o->sha256, sizeof d->sha256);
    uint64_t sz = o->linked_size != HUB_UNKNOWN ? o->linked_size
                  : partial                     ? o->range_total
                                                : o->length;
    if (sz != HUB_UNKNOWN) d->size = sz;
}

static int deadline_error(const dl *d, uint64_t size) {
    return rsclip__error(RSCLIP_ERR_NETWORK,
                         "%s: the fetch's deadline of %g s passed after %llu bytes "
                         "(RSCLIP_FETCH_TIMEOUT or --timeout); run the command again to resume",
                         d->file, d->q->timeout_s, (unsigned long long)size);
}

static int cap_error(const dl *d, uint64_t size) {
    return rsclip__error(
        RSCLIP_ERR_UNSUPPORTED,
        "%s: %s%llu bytes, over the size cap of %llu bytes (RSCLIP_FETCH_MAX_BYTES "
        "or --max-size)",
        d->file, size == HUB_UNKNOWN ? "more than " : "",
        (unsigned long long)(size == HUB_UNKNOWN ? d->q->max_bytes : size),
        (unsigned long long)d->q->max_bytes);
}

/* A failed transfer: keep what arrived (resumable), say how far it got. */
static int interrupted(const dl *d, const http_outcome *o, uint64_t size) {
    if (size == 0)
        return rsclip__error(RSCLIP_ERR_NETWORK, "%s: download failed: %s (%s)", d->file, o->err,
                             d->url);
    if (d->size != HUB_UNKNOWN)
        return rsclip__error(RSCLIP_ERR_NETWORK,
                             "%s: transfer interrupted after %llu of %llu bytes (%s); run the "
                             "command again to resume from %s",
                             d->file, (unsigned long long)size, (unsigned long long)d->size, o->err,
                             d->part);
    return rsclip__error(RSCLIP_ERR_NETWORK,
                         "%s: transfer interrupted after %llu bytes (%s); run the command again "
                         "to resume from %s",
                         d->file, (unsigned long long)size, o->err, d->part);
}

/* GET until the .part holds the whole file (as far as the server's answers tell). */
static int transfer(dl *d) {
    int restarts = 0;
    for (;;) {
        if (d->size != HUB_UNKNOWN && d->have == d->size) return RSCLIP_OK;
        if (d->size != HUB_UNKNOWN && d->have > d->size) {
            if (truncate_to(d->fd, 0, d->part)) return RSCLIP_ERR_IO;
            d->have = 0;
        }
        hub_sink c = {d->fd, d->have, 0, d->size, 0, 0, 0, 0, d->file, d->q};
        if (d->q->progress &&
            !d->q->progress(d->size && d->size != HUB_UNKNOWN ? (double)d->have / (double)d->size
                                                              : 0.0,
                            d->file, d->q->user))
            return rsclip__error(RSCLIP_ERR_CANCELLED, "%s: download cancelled (kept %s)", d->file,
                                 d->part);
        http_outcome o;
        rsclip__hub_http(d->q, d->url, &c, d->pm.validator, &o);
        uint64_t size = d->have + c.written;
        int partial = o.range_first != HUB_UNKNOWN; /* a 206: the body starts at range_first */
        if (d->have == 0 && (o.identity[0] || o.validator[0])) {
            /* the bytes now in the .part are of the version this answer names */
            if (o.identity[0]) memcpy(d->pm.identity, o.identity, HUB_TAG_MAX);
            memcpy(d->pm.validator, o.validator, HUB_TAG_MAX);
            int rc = meta_write(d->q, d->meta, &d->pm);
            if (rc) return rc;
        }
        if (c.cancelled) {
            truncate_to(d->fd, size, d->part);
            return rsclip__error(RSCLIP_ERR_CANCELLED, "%s: download cancelled (kept %s)", d->file,
                                 d->part);
        }
        if (c.write_errno)
            return rsclip__error(RSCLIP_ERR_IO, "%s: write failed: %s", d->part,
                                 strerror(c.write_errno));
        if (c.over_cap) {
            truncate_to(d->fd, 0, d->part);
            return cap_error(d, HUB_UNKNOWN);
        }
        if (c.past_deadline) {
            truncate_to(d->fd, partial || d->have == 0 ? size : d->have, d->part);
            return deadline_error(d, size);
        }
        if (o.code == 416 && d->have > 0 && restarts == 0) {
            /* Asked for bytes past the end: the .part may already be whole (verified next). */
            if (o.range_total == d->have) return RSCLIP_OK;
            if (truncate_to(d->fd, 0, d->part)) return RSCLIP_ERR_IO;
            d->have = 0;
            restarts++;
            continue;
        }
        if (o.code != 0) {
            truncate_to(d->fd, d->have, d->part); /* drop the error page */
            return rsclip__error(o.code == 404 ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_NETWORK,
                                 "%s: HTTP error %d from %s", d->file, o.code, d->url);
        }
        if (d->have > 0 && (!partial || o.range_first != d->have)) {
            /* A 200 to a ranged request: the file changed upstream (If-Range did not match) or
             * Range is not supported. The body, the file from its start, went to the wrong
             * offset: start over, once, from byte 0 of this version. */
            if (truncate_to(d->fd, 0, d->part)) return RSCLIP_ERR_IO;
            d->have = 0;
            d->pm.identity[0] = d->pm.validator[0] = '\0';
            d->size = HUB_UNKNOWN;
            d->sha256[0] = '\0';
            learn(d, &o, 0);
            if (restarts++ > 0)
                return rsclip__error(RSCLIP_ERR_NETWORK,
                                     "%s: the server does not honour Range requests (%s)", d->file,
                                     d->url);
            rsclip__log(RSCLIP_LOG_INFO,
                        "%s: the server sent the whole file to a resume request (it changed "
                        "upstream, or cannot resume): starting over",
                        d->file);
            continue;
        }
        learn(d, &o, partial);
        if (o.failed) return interrupted(d, &o, size); /* the .part keeps what arrived */
        d->have = size;
        return truncate_to(d->fd, size, d->part);
    }
}

/* ---- verification and installation ---------------------------------------------------------- */

/* Size, SHA-256 (sha256 receives the file's) and content of the complete .part. */
static int verify(const dl *d, char sha256[65]) {
    if (d->size != HUB_UNKNOWN && d->have != d->size)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: %llu bytes, the hub announced %llu", d->part,
                             (unsigned long long)d->have, (unsigned long long)d->size);
    int rc = rsclip__sha256_fd(d->fd, d->part, (off_t)d->have, sha256);
    if (rc) return rc;
    if (d->sha256[0] && strcmp(sha256, d->sha256) != 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: SHA-256 %s, the hub announced %s", d->part,
                             sha256, d->sha256);
    return check_content(d->part, d->file);
}

static int install(dl *d, const char *dest) {
    char sha256[65];
    int rc = verify(d, sha256);
    if (rc) {
        /* never installed; the next run starts it afresh */
        char why[1024];
        snprintf(why, sizeof why, "%s", rsclip_last_error());
        unlink(d->part);
        unlink(d->meta);
        return rsclip__error(rc,
                             "%s: the download failed verification, not installed (the next "
                             "run downloads it again): %s",
                             d->file, why);
    }
    if (fsync(d->fd) != 0) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", d->part, strerror(errno));
    if (rename(d->part, dest) != 0)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot rename to %s: %s", d->part, dest,
                             strerror(errno));
    unlink(d->meta);
    /* the model loader will not hash this file again (rsclip/model.h: fingerprint) */
    struct stat st;
    if (ends_with(d->file, ".safetensors") && fstat(d->fd, &st) == 0)
        rsclip__digest_store(&st, sha256, 0);
    return RSCLIP_OK;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* HEAD first: existence, size and version before anything touches the disk (GDAL tells a GET's
 * status only after its body has been written). Servers without HEAD get a plain GET. */
static int head(dl *d, http_outcome *h) {
    if (rsclip__hub_time_left(d->q) <= 0) return deadline_error(d, 0);
    rsclip__hub_http(d->q, d->url, NULL, NULL, h);
    if (h->code == 404)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: not found (HTTP 404 from %s)", d->file,
                             d->url);
    if (h->failed && rsclip__hub_time_left(d->q) <= 0) return deadline_error(d, 0);
    if (h->failed)
        return rsclip__error(RSCLIP_ERR_NETWORK, "%s: cannot reach %s: %s", d->file, d->url,
                             h->err);
    if (h->code != 0 && h->code != 405 && h->code != 501)
        return rsclip__error(RSCLIP_ERR_NETWORK, "%s: HTTP error %d from %s", d->file, h->code,
                             d->url);
    if (h->code == 0) learn(d, h, 0);
    if (d->size != HUB_UNKNOWN && d->size > d->q->max_bytes) return cap_error(d, d->size);
    return RSCLIP_OK;
}

/* Open the .part; keep its bytes only if they are of the version the hub lists now and can be
 * resumed with If-Range. */
static int open_part(dl *d, const http_outcome *h) {
    int rc = part_open(d->part, &d->fd, &d->have);
    if (rc) return rc;
    part_meta pm;
    int same = meta_read(d->meta, &pm) == 0 && h->code == 0 && h->identity[0] && pm.validator[0] &&
               strcmp(pm.identity, h->identity) == 0;
    if (d->have > 0 && !same) {
        rsclip__log(RSCLIP_LOG_INFO,
                    "%s: the partial download is of another version, or cannot be resumed "
                    "safely: starting over",
                    d->file);
        if (truncate_to(d->fd, 0, d->part)) return RSCLIP_ERR_IO;
        d->have = 0;
    }
    if (d->have > 0) {
        d->pm = pm;
        return RSCLIP_OK;
    }
    memcpy(d->pm.identity, h->identity, HUB_TAG_MAX);
    memcpy(d->pm.validator, h->validator, HUB_TAG_MAX);
    return meta_write(d->q, d->meta, &d->pm);
}

int rsclip__hub_fetch_file(const hub_req *q, const char *file) {
    dl d;
    memset(&d, 0, sizeof d);
    d.q = q;
    d.file = file;
    d.fd = -1;
    d.size = HUB_UNKNOWN;
    char dest[HUB_PATH_MAX], url[HUB_PATH_MAX];
    int n = snprintf(dest, sizeof dest, "%s/%s", q->dir, file);
    int m = snprintf(url, sizeof url, "%s/%s/resolve/main/%s", q->endpoint, q->repo, file);
    if (n < 0 || (size_t)n >= sizeof dest || m < 0 || (size_t)m >= sizeof url)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: path or URL too long", file);
    d.url = url;
    snprintf(d.part, sizeof d.part, "%s.part", dest);
    snprintf(d.meta, sizeof d.meta, "%s.part.meta", dest);
    if (is_file(dest)) {
        if (check_content(dest, file) == RSCLIP_OK) {
            rsclip__log(RSCLIP_LOG_INFO, "%s: already present, not downloaded again", dest);
            return RSCLIP_OK;
        }
        rsclip__log(RSCLIP_LOG_WARN, "%s: present but not valid (%s): downloading it again", dest,
                    rsclip_last_error());
        rsclip_clear_error();
    }
    rsclip__gdal_init();
    http_outcome h;
    int rc = head(&d, &h);
    if (rc == RSCLIP_ERR_UNSUPPORTED) { /* over the cap: nothing to resume either */
        unlink(d.part);
        unlink(d.meta);
    }
    if (!rc) rc = open_part(&d, &h);
    if (!rc) rc = transfer(&d);
    if (!rc) rc = install(&d, dest);
    if (d.fd >= 0) {
        struct stat st;
        int empty = rc && fstat(d.fd, &st) == 0 && st.st_size == 0;
        close(d.fd);
        if (empty && rc != RSCLIP_ERR_CANCELLED) { /* nothing to resume */
            unlink(d.part);
            unlink(d.meta);
        }
    }
    if (!rc && q->progress) q->progress(1.0, file, q->user);
    return rc;
}
